//! Configuration types. Every struct denies unknown keys and carries container-level defaults;
//! keys without a sensible default are listed in `validate::REQUIRED` and reported when absent.
//! The defaults stated here are the ones `docs/config.md` documents.

use std::path::PathBuf;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::shared::{Direction, EvidenceSettings, ObjectFilter, Severity};

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

/// Broker connection.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Mqtt {
    /// Broker host name or address. Required unless `brokers` lists the brokers.
    pub host: String,
    /// Broker TCP port. Default 1883.
    pub port: u16,
    /// Brokers to use in this order, instead of `host` and `port`: when one cannot be reached
    /// the next is tried (with the usual backoff); while on a later one, the earlier ones are
    /// probed every `failback_s` and the agent returns to the first that answers. At most 8.
    pub brokers: Vec<BrokerEndpoint>,
    /// Seconds between probes of the earlier brokers while connected to a later one. Default
    /// 60, from 5 to 3600.
    pub failback_s: u64,
    /// MQTT keep-alive in seconds; the broker publishes the last will after 1.5× this without
    /// traffic. Default 30, at least 5.
    pub keep_alive_s: u64,
    /// Ask the broker to drop the session on connect. Default true. `false` is allowed, but
    /// delivery never relies on the broker's session: the outbox sends again whatever was not
    /// acknowledged.
    pub clean_session: bool,
    /// Username for the broker.
    pub username: Option<String>,
    /// File whose first line is the password (relative to the config's folder). Must not be
    /// readable by group or others.
    pub password_file: Option<PathBuf>,
    /// TLS to the broker: present means on.
    pub tls: Option<TlsSettings>,
    /// The largest MQTT message (whole PUBLISH packet) the broker takes: set it to the
    /// broker's limit (mosquitto `max_packet_size`; managed brokers often 128–256 KB).
    /// Evidence pictures are encoded to fit; larger messages are set aside, never sent.
    /// Default "256KiB", from 16 KiB to 256 MiB.
    pub max_message_bytes: ByteSize,
    /// MQTT protocol version: "5" (default) or "3.1.1" for a broker that does not speak 5.
    pub protocol: MqttProtocol,
}

/// One broker of `mqtt.brokers`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct BrokerEndpoint {
    /// Host name or address. Required.
    pub host: String,
    /// TCP port. Default 1883.
    pub port: u16,
    /// The name the broker's TLS certificate must carry, when it is not `host` (a broker
    /// reached by its address whose certificate names it). Default: `host`.
    pub tls_name: Option<String>,
}

impl Default for BrokerEndpoint {
    fn default() -> Self {
        BrokerEndpoint {
            host: String::new(),
            port: 1883,
            tls_name: None,
        }
    }
}

impl BrokerEndpoint {
    /// `host:port`, as logs and status show it.
    pub fn address(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

impl Mqtt {
    /// The brokers in the order they are tried: `brokers`, or `host` and `port` alone.
    pub fn endpoints(&self) -> Vec<BrokerEndpoint> {
        if self.brokers.is_empty() {
            vec![BrokerEndpoint {
                host: self.host.clone(),
                port: self.port,
                tls_name: None,
            }]
        } else {
            self.brokers.clone()
        }
    }
}

/// The MQTT protocol version spoken to the broker.
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq, Eq)]
pub enum MqttProtocol {
    /// MQTT 5: the broker says which message it refused and why (a PUBACK reason code, such
    /// as "not authorized" from an ACL) and announces its maximum packet size at connect.
    #[default]
    #[serde(rename = "5")]
    V5,
    /// MQTT 3.1.1: a broker acknowledges a message its ACL drops, and shows a size limit only
    /// by closing the connection.
    #[serde(rename = "3.1.1")]
    V311,
}

impl MqttProtocol {
    /// As written in the configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            MqttProtocol::V5 => "5",
            MqttProtocol::V311 => "3.1.1",
        }
    }
}

/// TLS settings of the broker connection.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct TlsSettings {
    /// CA certificate(s), PEM, that sign the broker's certificate. Default: the system's CA
    /// store.
    pub ca_file: Option<PathBuf>,
    /// Client certificate chain, PEM, for mutual TLS (with `key_file`).
    pub cert_file: Option<PathBuf>,
    /// Client private key, PEM, for mutual TLS. Must not be readable by group or others.
    pub key_file: Option<PathBuf>,
    /// Do not verify the broker's certificate. Default false; warned about at every start.
    pub insecure_skip_verify: bool,
}

impl Default for Mqtt {
    fn default() -> Self {
        Mqtt {
            host: String::new(),
            port: 1883,
            brokers: Vec::new(),
            failback_s: 60,
            keep_alive_s: 30,
            clean_session: true,
            username: None,
            password_file: None,
            tls: None,
            max_message_bytes: ByteSize(256 << 10),
            protocol: MqttProtocol::V5,
        }
    }
}

/// Which inference engine runs a model.
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// The default: ONNX Runtime when this vigil has it (cargo feature `ort`) and its library
    /// (`ort_library`, else `ORT_DYLIB_PATH`, else the `vigil-onnxruntime` package's) loads and
    /// runs the model; otherwise tract, saying why at start.
    #[default]
    Auto,
    /// tract, pure Rust; what runs on armhf and under qemu.
    Tract,
    /// ONNX Runtime, loaded from `libonnxruntime.so` (needs the `ort` cargo feature); a start
    /// without it is refused.
    Ort,
}

impl Backend {
    /// Its name in the configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Auto => "auto",
            Backend::Tract => "tract",
            Backend::Ort => "ort",
        }
    }
}

/// A model the cameras can refer to by name.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ModelRef {
    /// Name the cameras use. Required, unique.
    pub name: String,
    /// Path of the model card (`model.toml`), relative to the config file's folder. Required
    /// unless `builtin` is set.
    pub card: PathBuf,
    /// A detector built into vigil instead of a model file: `"fire"`, the video fire and smoke
    /// detector (docs/fire.md). Exclusive with `card`.
    pub builtin: Option<Builtin>,
    /// With `builtin = "fire"`: the name of another `[[models]]` entry, an ONNX fire/smoke
    /// model, whose boxes are fused with the built-in detector's (docs/fire.md).
    pub fuse_with: Option<String>,
    /// How a fused model's boxes combine with the built-in detector's: `"agree"` (default) or
    /// `"either"`.
    pub fusion: Fusion,
    /// Inference engine: `"auto"` (default), `"tract"` or `"ort"`.
    pub backend: Backend,
    /// Intra-op threads of the inference engine (ort). Default 1.
    pub threads: usize,
    /// `ort` and `auto`: path of `libonnxruntime.so`; default: the `ORT_DYLIB_PATH` environment
    /// variable, else `/usr/lib/vigil/onnxruntime/libonnxruntime.so` (the `vigil-onnxruntime`
    /// package) when installed.
    pub ort_library: Option<PathBuf>,
}

impl Default for ModelRef {
    fn default() -> Self {
        ModelRef {
            name: String::new(),
            card: PathBuf::new(),
            builtin: None,
            fuse_with: None,
            fusion: Fusion::default(),
            backend: Backend::Tract,
            threads: 1,
            ort_library: None,
        }
    }
}

/// A detector built into vigil.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Builtin {
    /// Video fire and smoke detection from colour, flicker, background and detail cues
    /// (labels `fire` and `smoke`); needs no model file.
    Fire,
}

/// How the built-in fire detector and a fused model combine (`fusion` in `[[models]]`).
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Fusion {
    /// A box counts only where both saw the same kind (the model within a few frames); the
    /// model runs only on frames where the built-in detector sees something.
    #[default]
    Agree,
    /// Every box of either counts; both run on every frame.
    Either,
}

impl Fusion {
    /// The name in the config file.
    pub fn as_str(self) -> &'static str {
        match self {
            Fusion::Agree => "agree",
            Fusion::Either => "either",
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

impl Transport {
    /// The name in the configuration and in rtspsrc's `protocols` (`tcp`, `udp`).
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Tcp => "tcp",
            Transport::Udp => "udp",
        }
    }
}

/// Which clock stamps a frame's `frame_time`.
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum FrameClock {
    /// The camera's clock when the stream carries it (RTCP sender reports) and it is within
    /// 10 s of the box's; else the frame's arrival at vigil. Default.
    #[default]
    Auto,
    /// Always the frame's arrival at vigil (the box's clock), for cameras whose clock is not
    /// trusted even when close.
    Arrival,
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
    /// The camera's low-resolution sub-stream (`rtsp://` or `rtsps://`, credentials as in
    /// `url`), decoded and analysed instead of `url`. With it, `url` (the main stream) is
    /// received but never decoded except for evidence: each evidence picture is decoded from
    /// the main stream's frame nearest the event's `frame_time`, and clips are cut from it.
    /// Zones, lines and masks are normalised, so they fit both streams when both show the same
    /// view (the same aspect ratio). Optional; without it `url` is analysed.
    pub detect_url: Option<String>,
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
    /// The clock of `frame_time`: `"auto"` (default: the camera's when close to the box's, else
    /// arrival) or `"arrival"`.
    pub frame_time: FrameClock,
    /// Rebuild the pipeline when no frame arrived for this many seconds (stall watchdog).
    /// Default 10, at least 2.
    pub stall_s: f64,
    /// Open a `camera_offline` incident after this many seconds without frames; it closes when
    /// frames return. Default 30, at least 1.
    pub offline_s: f64,
    /// Frames keep arriving but the picture does not change for this many seconds →
    /// status `frozen` and a `camera_frozen` incident. Default 30, at least 1.
    pub frozen_s: f64,
    /// The picture is covered, defocused or moved for this many seconds → status `tampered`
    /// and a `camera_tamper` incident. Default 10, at least 1.
    pub tamper_s: f64,
    /// Set to false to keep a camera in the file without pulling it. Default true.
    pub enabled: bool,
    /// Zones: intrusion, loitering and crowding.
    pub zones: Vec<Zone>,
    /// Tripwires: line crossing.
    pub lines: Vec<Line>,
    /// Polygons where no detection counts (posters, screens, trees).
    pub masks: Vec<Mask>,
    /// Limits per class (by label) for every rule of this camera.
    pub filters: BTreeMap<String, ObjectFilter>,
    /// Object tracking.
    pub tracker: TrackerSettings,
    /// Fire and smoke confirmation (cameras whose model maps classes to fire or smoke).
    pub fire: FireSettings,
}

impl Default for Camera {
    fn default() -> Self {
        Camera {
            id: String::new(),
            url: String::new(),
            detect_url: None,
            kind: CameraKind::Security,
            model: String::new(),
            analysis_fps: 5.0,
            transport: Transport::Tcp,
            latency_ms: 200,
            frame_time: FrameClock::Auto,
            stall_s: 10.0,
            offline_s: 30.0,
            frozen_s: 30.0,
            tamper_s: 10.0,
            enabled: true,
            zones: Vec::new(),
            lines: Vec::new(),
            masks: Vec::new(),
            filters: BTreeMap::new(),
            tracker: TrackerSettings::default(),
            fire: FireSettings::default(),
        }
    }
}

impl Camera {
    /// The stream analysed: `detect_url` when given, else `url`.
    pub fn analysed_url(&self) -> &str {
        self.detect_url.as_deref().unwrap_or(&self.url)
    }
}

/// A polygon in normalised frame coordinates watched for tracked objects of the listed
/// classes: `intrusion` when one stands in it, `loitering` when one stays `dwell_s`,
/// `crowding` when `crowd_min_count` are in it for `crowd_for_s`.
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
    /// Raise `intrusion` (one incident per track that enters). Default true.
    pub intrusion: bool,
    /// Severity of `intrusion`. Default `"major"`.
    pub severity: Severity,
    /// Raise `loitering` when a track stays this many seconds. Default: off.
    pub dwell_s: Option<f64>,
    /// Severity of `loitering`. Default `"minor"`.
    pub loitering_severity: Severity,
    /// Raise `crowding` when at least this many tracked objects are inside. Default: off.
    pub crowd_min_count: Option<u32>,
    /// … for at least this many seconds. Default 10.
    pub crowd_for_s: f64,
    /// Severity of `crowding`. Default `"minor"`.
    pub crowding_severity: Severity,
    /// Seconds after a close before the same incident (rule, zone, track) may reopen. Default 0.
    pub cooldown_s: f64,
    /// Consecutive analysed frames a track must be inside to count as entered, and outside to
    /// count as gone. Default 3, from 1 (at once) to 30.
    pub inertia: u32,
    /// A track that entered stays inside while its bottom centre is within this distance of
    /// the zone's edge (a fraction of the picture, 0 to 0.5). Default 0.05.
    pub exit_margin: f64,
    /// Limits per class (by label) in this zone, on top of the camera's.
    pub filters: BTreeMap<String, ObjectFilter>,
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
            intrusion: true,
            severity: Severity::Major,
            dwell_s: None,
            loitering_severity: Severity::Minor,
            crowd_min_count: None,
            crowd_for_s: 10.0,
            crowding_severity: Severity::Minor,
            cooldown_s: 0.0,
            inertia: 3,
            exit_margin: 0.05,
            filters: BTreeMap::new(),
        }
    }
}

/// A tripwire: `line_crossing` when a tracked object's bottom-centre crosses the segment.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Line {
    /// Line name, unique per camera; appears in incidents. Required.
    pub name: String,
    /// First point `[x, y]`, 0..=1. Required.
    pub a: [f64; 2],
    /// Second point `[x, y]`, 0..=1. Required.
    pub b: [f64; 2],
    /// `"a_to_b"`, `"b_to_a"` or `"both"` (default). Side a is on the left walking from a to b
    /// (for a line drawn left to right: above it).
    pub direction: Direction,
    /// Labels that count. Required, not empty.
    pub classes: Vec<String>,
    /// Minimum detection score; default: the model card's `score_threshold`.
    pub min_score: Option<f32>,
    /// Severity. Default `"minor"`; `"major"` for a line into a restricted area.
    pub severity: Severity,
    /// Dead band around the line (fraction of the frame) inside which a wobbling object does
    /// not change side. Default 0.01.
    pub hysteresis: f64,
    /// Seconds a crossing incident stays open (further crossings by the same track update it).
    /// Default 5.
    pub quiet_s: f64,
    /// Seconds after a close before the same track may raise a crossing of this line again.
    /// Default 0.
    pub cooldown_s: f64,
}

impl Default for Line {
    fn default() -> Self {
        Line {
            name: String::new(),
            a: [0.0, 0.0],
            b: [0.0, 0.0],
            direction: Direction::Both,
            classes: Vec::new(),
            min_score: None,
            severity: Severity::Minor,
            hysteresis: 0.01,
            quiet_s: 5.0,
            cooldown_s: 0.0,
        }
    }
}

/// A polygon where no detection counts (by its bottom-centre).
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Mask {
    /// Optional name, for people.
    pub name: String,
    /// At least 3 points `[x, y]`, 0..=1. Required.
    pub polygon: Vec<[f64; 2]>,
}

/// Object tracker settings.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct TrackerSettings {
    /// Least IoU between a track's predicted box and a detection. Default 0.3.
    pub iou_min: f32,
    /// Farthest match by distance, in box heights, when boxes do not overlap enough (low frame
    /// rates). Default 1.0.
    pub max_distance: f32,
    /// Frames a track must be matched before rules see it. Default 2.
    pub min_hits: u32,
    /// Seconds a lost track survives (occlusion). Default 2.
    pub max_age_s: f64,
    /// Detections from this score up (below the card's threshold) keep existing tracks alive
    /// without starting new ones. Default: off.
    pub low_score: Option<f32>,
}

impl Default for TrackerSettings {
    fn default() -> Self {
        TrackerSettings {
            iou_min: 0.3,
            max_distance: 1.0,
            min_hits: 2,
            max_age_s: 2.0,
            low_score: None,
        }
    }
}

/// Fire and smoke confirmation: an incident opens when at least `min_hits` of the last
/// `window_frames` analysed frames, within `window_s`, had a detection.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct FireSettings {
    /// K. Default 3.
    pub min_hits: u32,
    /// N, at most 64. Default 5.
    pub window_frames: u32,
    /// T in seconds. Default 10.
    pub window_s: f64,
    /// Count only hits overlapping the latest one. Default true.
    pub same_region: bool,
    /// Require the region not to shrink over the window. Default false.
    pub growth: bool,
    /// Minimum detection score; default: the model card's thresholds.
    pub min_score: Option<f32>,
    /// Seconds without a detection before the incident closes. Default 60.
    pub quiet_s: f64,
    /// Least seconds between change-driven updates. Default 2.
    pub update_min_interval_s: f64,
    /// Seconds between periodic updates. Default 30.
    pub heartbeat_s: f64,
    /// Severity. Default `"critical"`.
    pub severity: Severity,
}

impl Default for FireSettings {
    fn default() -> Self {
        FireSettings {
            min_hits: 3,
            window_frames: 5,
            window_s: 10.0,
            same_region: true,
            growth: false,
            min_score: None,
            quiet_s: 60.0,
            update_min_interval_s: 2.0,
            heartbeat_s: 30.0,
            severity: Severity::Critical,
        }
    }
}
