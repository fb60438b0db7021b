//! Configuration types: the whole file ([`Config`]) and its small sections (device, storage,
//! outbox, clips, commands, inference, metrics, diagnostics, health); the larger ones have their
//! own files (`mqtt.rs`, `model.rs`, `camera.rs`). Every struct denies unknown keys and carries
//! container-level defaults; keys without a sensible default are listed in `validate::REQUIRED`
//! and reported when absent. The defaults stated here are the ones `docs/config.md` documents.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::shared::EvidenceSettings;
use super::{Camera, ModelRef, Mqtt};

/// The whole configuration file.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Identity of this box. Required.
    pub device: Device,
    /// The operations centre's broker. Required.
    pub mqtt: Mqtt,
    /// Models the cameras can use. At least one.
    pub models: Vec<ModelRef>,
    /// Cameras wired to this box. At least one.
    pub cameras: Vec<Camera>,
    /// Evidence images.
    pub evidence: EvidenceSettings,
    /// Where the agent keeps its state.
    pub storage: Storage,
    /// Health telemetry.
    pub health: HealthSettings,
    /// The durable outbox of messages waiting for the broker.
    pub outbox: OutboxSettings,
    /// The local diagnostics socket (`vigil status`, `vigil tail`, …).
    pub diag: DiagSettings,
    /// The opt-in Prometheus endpoint.
    pub metrics: MetricsSettings,
    /// The inference threads.
    pub inference: InferenceSettings,
    /// Commands from the operations centre over MQTT (off unless enabled).
    pub commands: CommandSettings,
    /// Evidence clips from each camera's pre-event buffer.
    pub clips: ClipSettings,
}

/// The incident types a clip may be made for when they open (`clips.on_open`).
pub const CLIP_TYPES: &[&str] = &[
    "intrusion",
    "line_crossing",
    "loitering",
    "crowding",
    "fire",
    "smoke",
];

/// Evidence clips (`[clips]`): each camera keeps the last seconds of its stream as the camera
/// encoded it, and an MP4 clip of an incident is cut from that.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ClipSettings {
    /// Keep a pre-event buffer per camera. Default true.
    pub enabled: bool,
    /// Seconds of stream before an incident's frame a clip starts. Default 10, 1 to 60.
    pub pre_s: f64,
    /// Seconds after it a clip ends. Default 10, 1 to 60.
    pub post_s: f64,
    /// Bytes each camera's buffer may hold. Default 16 MiB, 1 MiB to 512 MiB.
    pub buffer_bytes: u64,
    /// Bytes the clips folder (`clips` in `storage.state_dir`) may hold: the oldest clips are
    /// removed first. Default 256 MiB, at least 16 MiB.
    pub quota_bytes: u64,
    /// Incident types whose `open` gets a clip, from [`CLIP_TYPES`]. Default fire and smoke.
    pub on_open: Vec<String>,
}

impl Default for ClipSettings {
    fn default() -> Self {
        ClipSettings {
            enabled: true,
            pre_s: 10.0,
            post_s: 10.0,
            buffer_bytes: 16 << 20,
            quota_bytes: 256 << 20,
            on_open: vec!["fire".into(), "smoke".into()],
        }
    }
}

impl ClipSettings {
    /// How much stream each camera keeps: the clip's span and a group of pictures' margin.
    pub fn keep(&self) -> std::time::Duration {
        super::duration(self.pre_s + self.post_s + 5.0)
    }
}

/// The commands this agent knows (`…/cmd/{command}`).
pub const COMMANDS: &[&str] = &["ping", "snapshot", "clip", "ack", "arm", "disarm", "config"];

/// Commands from the operations centre (`[commands]`).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct CommandSettings {
    /// Subscribe to `…/cmd/+` and answer. Default false: a box takes no command unless its
    /// configuration says so (the broker's ACL decides who may send them).
    pub enabled: bool,
    /// A request sent longer ago than this (by its `sent_at`), or this far in the future, is
    /// refused (`expired`): a captured request cannot be replayed later. Default 300, from 5 to
    /// 86400.
    pub max_age_s: u64,
    /// The commands allowed, from [`COMMANDS`]. Default: all of them but `config`, which
    /// replaces the configuration and is taken only when named here.
    pub allow: Vec<String>,
    /// Ed25519 public keys (base64 of 32 bytes). When any is given, `clip`, `arm`, `disarm`
    /// and `config` are taken only signed by one of them. Default: none.
    pub public_keys: Vec<String>,
    /// Seconds a pushed configuration's rebuilt cameras have to deliver a frame before it is
    /// rolled back (`config` command). Default 30, from 5 to 90 (a request is answered within
    /// the 120 s a job may take).
    pub config_trial_s: u64,
}

impl Default for CommandSettings {
    fn default() -> Self {
        CommandSettings {
            enabled: false,
            max_age_s: 300,
            allow: COMMANDS
                .iter()
                .filter(|c| **c != "config")
                .map(|c| (*c).to_string())
                .collect(),
            public_keys: Vec::new(),
            config_trial_s: 30,
        }
    }
}

/// The inference threads (`[inference]`).
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct InferenceSettings {
    /// How many inference threads to run. 0 (the default): one per core the service may use,
    /// divided by the most intra-op `threads` a model asks for. Never more than the enabled
    /// cameras. At most [`MAX_INFERENCE_THREADS`].
    pub threads: usize,
}

/// The most inference threads `[inference] threads` may ask for.
pub const MAX_INFERENCE_THREADS: usize = 64;

/// Prometheus metrics (off unless `listen` is set).
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsSettings {
    /// Loopback address and port to serve `/metrics` on, e.g. `"127.0.0.1:9464"`. Absent: no
    /// endpoint, no listening port.
    pub listen: Option<String>,
}

/// The local diagnostics socket.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct DiagSettings {
    /// Whether the agent listens on the socket. Default true.
    pub enabled: bool,
    /// The Unix socket's path, relative to the config's folder. Default
    /// `/run/vigil/diag.sock` (systemd's `RuntimeDirectory=vigil`). Mode 0660.
    pub socket: PathBuf,
}

impl Default for DiagSettings {
    fn default() -> Self {
        DiagSettings {
            enabled: true,
            socket: PathBuf::from(DEFAULT_DIAG_SOCKET),
        }
    }
}

/// Where the configuration is installed (`vigil provision` writes it there; every command that
/// reads it looks there unless told otherwise).
pub const DEFAULT_CONFIG: &str = "/etc/vigil/vigil.toml";

/// Where the diagnostics socket is unless the config says otherwise.
pub const DEFAULT_DIAG_SOCKET: &str = "/run/vigil/diag.sock";

/// Durable outbox settings.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct OutboxSettings {
    /// Largest size of the stored messages (an integer in bytes, or a string with a unit:
    /// `"512MiB"`, `"2GB"`). When full, the lowest lane's oldest message is evicted (fire and
    /// smoke last). Default `"512MiB"`, at least 1 MiB.
    pub max_bytes: ByteSize,
    /// On shutdown, keep delivering the outbox for at most this many seconds before
    /// disconnecting (what is left goes at the next start). Default 5.
    pub flush_s: f64,
}

impl Default for OutboxSettings {
    fn default() -> Self {
        OutboxSettings {
            max_bytes: ByteSize(512 << 20),
            flush_s: 5.0,
        }
    }
}

/// A size in bytes, written as an integer or as a string with a unit (`B`, `KB`, `MB`, `GB`,
/// `KiB`, `MiB`, `GiB`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(into = "u64")]
pub struct ByteSize(pub u64);

impl From<ByteSize> for u64 {
    fn from(b: ByteSize) -> u64 {
        b.0
    }
}

impl std::str::FromStr for ByteSize {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let t = s.trim();
        let split = t
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(t.len());
        let (num, unit) = t.split_at(split);
        let unit_bytes: u64 = match unit.trim() {
            "" | "B" => 1,
            "KB" | "kB" => 1000,
            "MB" => 1_000_000,
            "GB" => 1_000_000_000,
            "KiB" => 1 << 10,
            "MiB" => 1 << 20,
            "GiB" => 1 << 30,
            other => {
                return Err(format!(
                    "unknown unit \"{other}\" in \"{s}\" (use B, KB, MB, GB, KiB, MiB or GiB)"
                ));
            }
        };
        let n: f64 = num
            .parse()
            .map_err(|_| format!("\"{s}\" is not a size like \"512MiB\""))?;
        let bytes = n * unit_bytes as f64;
        if !bytes.is_finite() || bytes < 0.0 || bytes > u64::MAX as f64 {
            return Err(format!("\"{s}\" is out of range"));
        }
        Ok(ByteSize(bytes as u64))
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = ByteSize;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a size: bytes as an integer, or a string like \"512MiB\"")
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<ByteSize, E> {
                u64::try_from(v)
                    .map(ByteSize)
                    .map_err(|_| E::custom("a size cannot be negative"))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<ByteSize, E> {
                Ok(ByteSize(v))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<ByteSize, E> {
                v.parse().map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

/// Health telemetry settings.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct HealthSettings {
    /// Seconds between health messages on `…/health`. Default 60, at least 1.
    pub interval_s: f64,
}

impl Default for HealthSettings {
    fn default() -> Self {
        HealthSettings { interval_s: 60.0 }
    }
}

/// Persistent state.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Storage {
    /// Folder for the agent's state (the outbox `outbox.db`, which also keeps the incident
    /// sequence number), relative to the config's
    /// folder. Created if missing; must be writable. Default `/var/lib/vigil` (systemd's
    /// `StateDirectory=vigil`).
    pub state_dir: PathBuf,
}

impl Default for Storage {
    fn default() -> Self {
        Storage {
            state_dir: PathBuf::from("/var/lib/vigil"),
        }
    }
}

/// Identity of the box; both parts appear in every MQTT topic.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Device {
    /// Device id, unique in the city; also the MQTT client id. Required; letters, digits, `-`,
    /// `_`, `.`; at most 64 characters.
    pub id: String,
    /// District id. Required; same character rules as `id`.
    pub district: String,
}
