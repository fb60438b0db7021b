//! The MQTT contract, checked: every message a test receives is validated against the JSON
//! Schemas in `docs/schemas/` (the source of truth), chosen by its topic.

use std::path::Path;

use anyhow::{Context, bail};

use crate::{Received, repo};

/// The compiled schemas.
pub struct Contract {
    incident: jsonschema::Validator,
    status: jsonschema::Validator,
    camera_status: jsonschema::Validator,
    health: jsonschema::Validator,
    command_request: jsonschema::Validator,
    command_result: jsonschema::Validator,
    clip: jsonschema::Validator,
}

fn compile(name: &str) -> anyhow::Result<jsonschema::Validator> {
    let path = repo().join("docs/schemas").join(name);
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let schema: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    jsonschema::validator_for(&schema).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}

impl Contract {
    /// Compile the schemas under `docs/schemas/`.
    pub fn load() -> anyhow::Result<Contract> {
        Ok(Contract {
            incident: compile("incident.schema.json")?,
            status: compile("status.schema.json")?,
            camera_status: compile("camera-status.schema.json")?,
            health: compile("health.schema.json")?,
            command_request: compile("command-request.schema.json")?,
            command_result: compile("command-result.schema.json")?,
            clip: compile("clip.schema.json")?,
        })
    }

    /// The validator of command requests (they carry no `schema` id: the centre writes them).
    pub fn command_request(&self) -> &jsonschema::Validator {
        &self.command_request
    }

    /// The validator of a payload's `schema` id.
    pub fn by_id(&self, id: &str) -> Option<&jsonschema::Validator> {
        match id {
            "vigil.incident/1" => Some(&self.incident),
            "vigil.status/1" => Some(&self.status),
            "vigil.camera-status/1" => Some(&self.camera_status),
            "vigil.health/1" => Some(&self.health),
            "vigil.command-result/1" => Some(&self.command_result),
            "vigil.clip/1" => Some(&self.clip),
            _ => None,
        }
    }

    /// Validate a JSON value against a validator; every error, one per line.
    pub fn check(v: &jsonschema::Validator, value: &serde_json::Value) -> Result<(), String> {
        let errors: Vec<String> = v
            .iter_errors(value)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect();
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors.join("\n"))
        }
    }

    /// Validate one message by its topic (`vigil/v1/{district}/{device}/…`).
    pub fn check_message(&self, topic: &str, payload: &[u8]) -> anyhow::Result<()> {
        let parts: Vec<&str> = topic.split('/').collect();
        if parts.len() < 5 || parts[0] != "vigil" || parts[1] != "v1" {
            bail!("{topic}: not a vigil v1 topic");
        }
        let validator = match &parts[4..] {
            ["status"] => &self.status,
            ["health"] => &self.health,
            ["cameras", _, "status"] => &self.camera_status,
            ["incidents", _] => &self.incident,
            ["cmd", _] => &self.command_request,
            ["cmd", _, "result"] => &self.command_result,
            ["incidents", _, _, "snapshot"] | ["cameras", _, "snapshot", _] => {
                if !payload.starts_with(&[0xFF, 0xD8]) || !payload.ends_with(&[0xFF, 0xD9]) {
                    bail!("{topic}: the snapshot is not a JPEG");
                }
                return Ok(());
            }
            ["incidents", _, _, "clip"] => &self.clip,
            ["incidents", _, _, "clip", n] | ["cameras", _, "clip", _, n] => {
                // Slices of an MP4 file: the first starts with its `ftyp` box.
                if payload.is_empty() || (*n == "0" && payload.get(4..8) != Some(b"ftyp")) {
                    bail!("{topic}: not a slice of an MP4 clip");
                }
                return Ok(());
            }
            _ => bail!("{topic}: a topic the contract does not describe"),
        };
        let value: serde_json::Value =
            serde_json::from_slice(payload).with_context(|| format!("{topic}: not JSON"))?;
        Contract::check(validator, &value).map_err(|e| anyhow::anyhow!("{topic}: {e}\n{value}"))
    }

    /// Validate every received message; returns how many were checked.
    pub fn check_all(&self, messages: &[Received]) -> anyhow::Result<usize> {
        for m in messages {
            self.check_message(&m.topic, &m.payload)?;
        }
        Ok(messages.len())
    }

    /// Validate every line of a JSON-lines file of incidents (as `vigil replay` writes).
    pub fn check_jsonl(&self, path: &Path) -> anyhow::Result<usize> {
        let text = std::fs::read_to_string(path)?;
        for (i, line) in text.lines().enumerate() {
            let value: serde_json::Value = serde_json::from_str(line)?;
            Contract::check(&self.incident, &value)
                .map_err(|e| anyhow::anyhow!("{}:{}: {e}", path.display(), i + 1))?;
        }
        Ok(text.lines().count())
    }
}
