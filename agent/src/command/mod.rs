//! Commands: the operations centre talks back over the MQTT session the agent already has.
//!
//! A request arrives on `vigil/v1/{district}/{device}/cmd/{command}` (QoS 1, JSON with a UUID
//! `id`, a `sent_at` time and the command's arguments; see docs/mqtt.md) and gets exactly one
//! result on `…/cmd/{command}/result` with the same `id`, `ok`, and the answer or an error code
//! with a message a person can act on. A repeated `id` gets the stored result back without the
//! command acting twice ([`ledger`]); a request sent longer ago than `commands.max_age_s` is
//! refused ([`request`]). Off unless `[commands] enabled = true`; the broker's ACL decides who
//! may publish to `…/cmd/#`.
//!
//! The session subscribes and hands the raw messages over; the agent's main loop calls
//! [`Commands::handle`] (off the async workers: the ledger commits to SQLite) and sends the
//! result through the outbox like any other message.

pub mod ledger;
pub mod request;

use std::path::Path;
use std::time::{Duration, SystemTime};

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::config::CommandSettings;
use crate::publish::Message;
use crate::publish::payload::{Identity, rfc3339_ms, unix_ms};

/// Result payload schema id.
pub const RESULT_SCHEMA: &str = "vigil.command-result/1";

/// What a command may read of the running agent.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    /// The agent's version.
    pub version: &'a str,
    /// Since the agent started.
    pub uptime: Duration,
    /// The text of the configuration running now.
    pub config_source: &'a str,
}

/// The command handler of one agent.
#[derive(Debug)]
pub struct Commands {
    settings: CommandSettings,
    identity: Identity,
    prefix: String,
    ledger: ledger::Ledger,
}

impl Commands {
    /// Commands for `identity` with `settings`, their ledger in `state_dir` (no file unless
    /// commands are enabled).
    pub fn new(settings: CommandSettings, identity: Identity, state_dir: &Path) -> Commands {
        let prefix = format!("{}/cmd/", identity.root());
        let ledger = if settings.enabled {
            ledger::Ledger::open(&state_dir.join("commands.db"))
        } else {
            ledger::Ledger::Memory(Default::default())
        };
        Commands {
            settings,
            identity,
            prefix,
            ledger,
        }
    }

    /// Answer the request `payload` that arrived on `topic` at `now`: the result message.
    pub fn handle(
        &mut self,
        topic: &str,
        payload: &[u8],
        ctx: &Context<'_>,
        now: SystemTime,
    ) -> Message {
        let command = topic
            .strip_prefix(&self.prefix)
            .unwrap_or(topic)
            .to_string();
        let result_topic = self.identity.command_result_topic(&command);
        let message = |payload: Vec<u8>| Message {
            topic: result_topic.clone(),
            payload,
            retain: false,
        };
        // Results are kept per command and id: an id reused on another command's topic is
        // another request.
        let key = |id: &str| format!("{command}/{id}");
        if let Some(id) = request_id(payload)
            && let Some(stored) = self.ledger.get(&key(&id))
        {
            tracing::info!(
                command,
                id,
                "repeated request: its stored result is sent again"
            );
            return message(stored);
        }
        let max_age = Duration::from_secs(self.settings.max_age_s);
        let (id, outcome) = match request::parse(
            &self.prefix,
            topic,
            payload,
            now,
            max_age,
            &self.settings.allow,
        ) {
            Ok(req) => (Some(req.id.clone()), Ok(act(&req, ctx, now))),
            Err(r) => (r.id, Err((r.code, r.message))),
        };
        match &outcome {
            Ok(_) => tracing::info!(command, id, "command done"),
            Err((code, why)) => tracing::warn!(command, id, code, "command refused: {why}"),
        }
        let body = result(&self.identity, &command, id.as_deref(), outcome, now)
            .to_string()
            .into_bytes();
        if let Some(id) = &id {
            self.ledger.put(&key(id), &body, unix_ms(now), max_age * 2);
        }
        message(body)
    }
}

/// The `id` of a request, if it has a readable one.
fn request_id(payload: &[u8]) -> Option<String> {
    let v: Value = serde_json::from_slice(payload).ok()?;
    v.get("id")?.as_str().map(str::to_string)
}

/// Do what an accepted request asks: its answer. `ping` is the only command so far
/// ([`crate::config::COMMANDS`]): the round trip, with what the box runs.
fn act(req: &request::Request, ctx: &Context<'_>, now: SystemTime) -> Value {
    json!({
        "version": ctx.version,
        "uptime_s": ctx.uptime.as_secs(),
        "config_sha256": hex_sha256(ctx.config_source.as_bytes()),
        "sent_at": rfc3339_ms(req.sent_at),
        "received_at": rfc3339_ms(now),
    })
}

/// A result payload.
pub fn result(
    identity: &Identity,
    command: &str,
    id: Option<&str>,
    outcome: Result<Value, (&'static str, String)>,
    now: SystemTime,
) -> Value {
    let mut v = json!({
        "schema": RESULT_SCHEMA,
        "device": identity.device,
        "district": identity.district,
        "command": command,
        "id": id,
        "time": rfc3339_ms(now),
        "ok": outcome.is_ok(),
    });
    if let Some(o) = v.as_object_mut() {
        match outcome {
            Ok(answer) => o.insert("answer".into(), answer),
            Err((code, message)) => {
                o.insert("error".into(), json!({"code": code, "message": message}))
            }
        };
    }
    v
}

fn hex_sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn commands(dir: &Path) -> Commands {
        let identity = Identity {
            device: "box".into(),
            district: "d1".into(),
        };
        let settings = CommandSettings {
            enabled: true,
            ..CommandSettings::default()
        };
        Commands::new(settings, identity, dir)
    }

    #[test]
    fn a_ping_is_answered_once_and_a_repeat_gets_the_same_result() {
        let dir = std::env::temp_dir().join(format!("vigil-cmd-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let mut c = commands(&dir);
        let now = SystemTime::now();
        let ctx = Context {
            version: "9.9.9",
            uptime: Duration::from_secs(42),
            config_source: "x",
        };
        let id = uuid::Uuid::now_v7().to_string();
        let body = format!(r#"{{"id":"{id}","sent_at":"{}"}}"#, rfc3339_ms(now));
        let first = c.handle("vigil/v1/d1/box/cmd/ping", body.as_bytes(), &ctx, now);
        assert_eq!(first.topic, "vigil/v1/d1/box/cmd/ping/result");
        let v: Value = serde_json::from_slice(&first.payload).expect("json");
        assert_eq!(
            (v["ok"].as_bool(), v["id"].as_str()),
            (Some(true), Some(&*id))
        );
        assert_eq!(v["answer"]["uptime_s"], 42);
        assert_eq!(
            v["answer"]["config_sha256"].as_str().map(str::len),
            Some(64)
        );
        // Later, with another uptime: the stored result comes back unchanged.
        let later = Context {
            uptime: Duration::from_secs(99),
            ..ctx
        };
        let again = c.handle("vigil/v1/d1/box/cmd/ping", body.as_bytes(), &later, now);
        assert_eq!(again.payload, first.payload);
        // A refusal carries its code; one without an id still gets a result.
        let bad = c.handle("vigil/v1/d1/box/cmd/ping", b"{}", &ctx, now);
        let v: Value = serde_json::from_slice(&bad.payload).expect("json");
        assert_eq!(
            (v["ok"].as_bool(), v["error"]["code"].as_str()),
            (Some(false), Some("bad_request"))
        );
        assert!(v["id"].is_null());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
