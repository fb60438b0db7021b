//! Configuration types. Every struct denies unknown keys and carries container-level defaults;
//! keys without a sensible default are listed in `validate::REQUIRED` and reported when absent.
//! The defaults stated here are the ones `docs/config.md` documents.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

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

/// Broker connection.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Mqtt {
    /// Broker host name or address. Required.
    pub host: String,
    /// Broker TCP port. Default 1883.
    pub port: u16,
    /// MQTT keep-alive in seconds; the broker publishes the last will after 1.5× this without
    /// traffic. Default 30, at least 5.
    pub keep_alive_s: u64,
}

impl Default for Mqtt {
    fn default() -> Self {
        Mqtt {
            host: String::new(),
            port: 1883,
            keep_alive_s: 30,
        }
    }
}

/// Which inference engine runs a model.
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// tract, pure Rust; the default and the one used on ARM.
    #[default]
    Tract,
    /// ONNX Runtime, loaded from `libonnxruntime.so` (needs the `ort` cargo feature).
    Ort,
}

/// A model the cameras can refer to by name.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ModelRef {
    /// Name the cameras use. Required, unique.
    pub name: String,
    /// Path of the model card (`model.toml`), relative to the config file's folder. Required.
    pub card: PathBuf,
    /// Inference engine: `"tract"` (default) or `"ort"`.
    pub backend: Backend,
    /// Intra-op threads of the inference engine (ort). Default 1.
    pub threads: usize,
    /// ort only: path of `libonnxruntime.so`; default: the `ORT_DYLIB_PATH` environment
    /// variable.
    pub ort_library: Option<PathBuf>,
}

impl Default for ModelRef {
    fn default() -> Self {
        ModelRef {
            name: String::new(),
            card: PathBuf::new(),
            backend: Backend::Tract,
            threads: 1,
            ort_library: None,
        }
    }
}

/// What a camera watches for; decides the incident types its detections can raise.
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum CameraKind {
    /// People and vehicles in zones.
    #[default]
    Security,
    /// Fire and smoke.
    Fire,
}

/// RTSP transport.
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    /// RTP interleaved in the RTSP TCP connection: works through NAT and firewalls. Default.
    #[default]
    Tcp,
    /// RTP over UDP.
    Udp,
}

/// One camera.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Camera {
    /// Camera id, unique on this box; appears in topics. Required; same character rules as
    /// `device.id`.
    pub id: String,
    /// `rtsp://` or `rtsps://` URL; credentials may be embedded (`rtsp://user:pass@host/…`) and are
    /// never logged. Required.
    pub url: String,
    /// `"security"` (default) or `"fire"`.
    pub kind: CameraKind,
    /// Name of an entry of `[[models]]`. Required.
    pub model: String,
    /// Frames analysed per second; extra decoded frames are dropped before conversion.
    /// Default 5, between 0.1 and 30.
    pub analysis_fps: f64,
    /// RTSP transport, `"tcp"` (default) or `"udp"`.
    pub transport: Transport,
    /// RTSP jitter-buffer latency in milliseconds. Default 200.
    pub latency_ms: u32,
    /// Set to false to keep a camera in the file without pulling it. Default true.
    pub enabled: bool,
    /// Zones watched for intrusion.
    pub zones: Vec<Zone>,
}

impl Default for Camera {
    fn default() -> Self {
        Camera {
            id: String::new(),
            url: String::new(),
            kind: CameraKind::Security,
            model: String::new(),
            analysis_fps: 5.0,
            transport: Transport::Tcp,
            latency_ms: 200,
            enabled: true,
            zones: Vec::new(),
        }
    }
}

/// A polygon in normalised frame coordinates where listed classes raise `intrusion`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Zone {
    /// Zone name, unique per camera; appears in incidents. Required.
    pub name: String,
    /// At least 3 points `[x, y]`, each 0..=1 (0,0 is the top-left corner), not
    /// self-intersecting. Required.
    pub polygon: Vec<[f64; 2]>,
    /// Labels (from the model's labels file) that count in this zone. Required, not empty.
    pub classes: Vec<String>,
    /// Minimum detection score; default: the model card's `score_threshold`.
    pub min_score: Option<f32>,
    /// Seconds without a matching detection before the incident closes. Default 10.
    pub quiet_s: f64,
    /// While an incident is open, an `update` is sent when its objects change, at most once per
    /// this many seconds, and at least once per `heartbeat_s`. Default 2.
    pub update_min_interval_s: f64,
    /// Seconds between periodic `update`s of an open incident. Default 30.
    pub heartbeat_s: f64,
}

impl Default for Zone {
    fn default() -> Self {
        Zone {
            name: String::new(),
            polygon: Vec::new(),
            classes: Vec::new(),
            min_score: None,
            quiet_s: 10.0,
            update_min_interval_s: 2.0,
            heartbeat_s: 30.0,
        }
    }
}
