//! The telemetry payloads of the `vigil/v1` contract (docs/mqtt.md): each camera's retained
//! status (`vigil.camera-status/1`) and the periodic health message (`vigil.health/1`), with a
//! line per camera and model and the outbox's figures. Pure functions.

use std::time::SystemTime;

use serde::Serialize;
use serde_json::json;

use crate::clock::rfc3339_ms;
use crate::publish::stats::outbox_json;
use crate::publish::{Identity, ModelLine, OutboxStats};

/// Camera status schema id.
pub const CAMERA_STATUS_SCHEMA: &str = "vigil.camera-status/1";
/// Health schema id.
pub const HEALTH_SCHEMA: &str = "vigil.health/1";

/// The retained status of one camera.
pub fn camera_status(
    identity: &Identity,
    camera: &str,
    state: &str,
    reason: Option<&str>,
    since: SystemTime,
) -> serde_json::Value {
    let mut v = json!({
        "schema": CAMERA_STATUS_SCHEMA,
        "device": identity.device,
        "district": identity.district,
        "camera": camera,
        "state": state,
        "since": rfc3339_ms(since),
    });
    if let (Some(r), Some(obj)) = (reason, v.as_object_mut()) {
        obj.insert("reason".into(), json!(r));
    }
    v
}

/// One camera's line in a health message.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CameraHealth {
    /// Camera id.
    pub camera: String,
    /// Frames that came out of the decoder since start (before thinning to the analysis rate).
    pub decoded: u64,
    /// Frames delivered by the pipeline since start (after thinning to the analysis rate).
    pub received: u64,
    /// Frames analysed since start.
    pub analysed: u64,
    /// Frames replaced before analysis since start (the detector was busy).
    pub dropped: u64,
    /// Decoded frames not needed at the analysis rate since start (expected, not a loss).
    pub thinned: u64,
    /// Decoded frames dropped since start because their time was not after the previous one's.
    pub misordered: u64,
    /// Frames missing before the decoder's output since start, by the gaps in the stream's
    /// timestamps (lost in the network, by the depayloader or by the decoder).
    pub missing: u64,
    /// RTP packets that never arrived since start (the jitter buffer's count).
    pub packets_lost: u64,
    /// RTP packets that arrived too late to be used since start.
    pub packets_late: u64,
    /// Pipeline restarts since start.
    pub reconnects: u64,
    /// Decoding errors since start, as the decoders report them.
    pub decode_errors: u64,
    /// Frames decoded per second over the last interval: the camera's own frame rate.
    pub decoded_fps: f64,
    /// Frames delivered per second over the last interval (after thinning).
    pub received_fps: f64,
    /// Frames analysed per second over the last interval.
    pub analysed_fps: f64,
    /// Median inference time over the last interval, milliseconds.
    pub inference_ms_p50: f64,
    /// 99th percentile inference time over the last interval, milliseconds.
    pub inference_ms_p99: f64,
    /// Incidents open now.
    pub open_incidents: usize,
    /// Confirmed tracks in each zone on the latest analysed frame.
    pub zones: Vec<ZoneCount>,
    /// Where the latest frame's `frame_time` came from: `"stream"` (the camera's clock, from
    /// RTCP sender reports) or `"arrival"` (this box's clock when the frame arrived).
    pub frame_time: &'static str,
    /// Cameras on the built-in fire detector: which of its cues this stream allows, `"colour"`
    /// (every cue) or `"greyscale"` (no colour in the picture: fire by hot spots only, smoke by
    /// its veil); absent for other models and before the first analysed frame.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fire_cues: Option<&'static str>,
    /// What the centre stood down on this camera (`disarm` commands) and still stands down;
    /// absent when nothing does.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub disarmed: Vec<Disarmed>,
}

/// One rule (or a camera's rules) standing down, as health shows it.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Disarmed {
    /// `camera`, `zone:NAME` or `line:NAME`.
    pub target: String,
    /// Until when (RFC 3339); absent: until armed again.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub until: Option<String>,
    /// Fire and smoke stand down too.
    pub fire: bool,
    /// Who asked, as the request said.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
}

/// Objects in one zone.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ZoneCount {
    /// Zone name.
    pub zone: String,
    /// Confirmed tracks standing in it.
    pub count: usize,
}

/// Periodic health telemetry.
pub fn health(
    identity: &Identity,
    uptime: std::time::Duration,
    (cameras, models): (&[CameraHealth], &[ModelLine]),
    outbox: &OutboxStats,
    disk_free: Option<u64>,
) -> serde_json::Value {
    let mut v = json!({
        "schema": HEALTH_SCHEMA,
        "device": identity.device,
        "district": identity.district,
        "time": rfc3339_ms(SystemTime::now()),
        "uptime_s": uptime.as_secs(),
        "cameras": cameras,
        "models": models,
        "outbox": outbox_json(outbox),
    });
    if let (Some(free), Some(obj)) = (disk_free, v.as_object_mut()) {
        obj.insert("disk_free_bytes".into(), json!(free));
    }
    if let (Some((at, since_ms)), Some(obj)) = (&outbox.broker, v.as_object_mut()) {
        let since = std::time::UNIX_EPOCH + std::time::Duration::from_millis(*since_ms);
        obj.insert(
            "broker".into(),
            json!({"address": at, "since": rfc3339_ms(since)}),
        );
    }
    v
}
