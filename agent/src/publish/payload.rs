//! MQTT topics and JSON payloads of the `vigil/v1` contract (see docs/mqtt.md). Pure functions.

use std::time::SystemTime;

use serde::Serialize;
use serde_json::json;

use crate::detect::Labels;
use crate::rules::{IncidentEvent, Object};

/// Incident payload schema id.
pub const INCIDENT_SCHEMA: &str = "vigil.incident/1";
/// Status payload schema id.
pub const STATUS_SCHEMA: &str = "vigil.status/1";

/// Who is speaking: the parts of every topic and payload that identify the box.
#[derive(Debug, Clone, PartialEq)]
pub struct Identity {
    /// Device id.
    pub device: String,
    /// District id.
    pub district: String,
}

impl Identity {
    /// `vigil/v1/{district}/{device}`.
    pub fn root(&self) -> String {
        format!("vigil/v1/{}/{}", self.district, self.device)
    }

    /// Retained device status topic.
    pub fn status_topic(&self) -> String {
        format!("{}/status", self.root())
    }

    /// Incident topic of a camera.
    pub fn incident_topic(&self, camera: &str) -> String {
        format!("{}/incidents/{camera}", self.root())
    }

    /// Snapshot topic of an incident.
    pub fn snapshot_topic(&self, camera: &str, id: &uuid::Uuid) -> String {
        format!("{}/incidents/{camera}/{id}/snapshot", self.root())
    }

    /// Where the picture a `snapshot` command (request `id`) asked of a camera goes.
    pub fn camera_snapshot_topic(&self, camera: &str, id: &str) -> String {
        format!("{}/cameras/{camera}/snapshot/{id}", self.root())
    }

    /// Where the chunks of a clip go (`{topic}/{n}`): an incident's, or the clip a `clip`
    /// command (request `request`) asked of a camera.
    pub fn clip_topic(&self, camera: &str, incident: Option<&uuid::Uuid>, request: &str) -> String {
        match incident {
            Some(id) => format!("{}/incidents/{camera}/{id}/clip", self.root()),
            None => format!("{}/cameras/{camera}/clip/{request}", self.root()),
        }
    }

    /// Retained status topic of a camera.
    pub fn camera_status_topic(&self, camera: &str) -> String {
        format!("{}/cameras/{camera}/status", self.root())
    }

    /// Health telemetry topic.
    pub fn health_topic(&self) -> String {
        format!("{}/health", self.root())
    }

    /// The device's own test topic (`vigil mqtt-test` publishes and reads it back).
    pub fn test_topic(&self) -> String {
        format!("{}/test", self.root())
    }

    /// The filter of the commands addressed to this box: `…/cmd/+` (one level: the results
    /// on `…/cmd/{command}/result` are not matched).
    pub fn command_filter(&self) -> String {
        format!("{}/cmd/+", self.root())
    }

    /// Where the result of `command` goes.
    pub fn command_result_topic(&self, command: &str) -> String {
        format!("{}/cmd/{command}/result", self.root())
    }
}

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
    outbox: &super::OutboxStats,
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

/// The outbox figures as health (and the diagnostics socket) report them: bytes, bound,
/// acknowledged messages, dead letters (kept in the file, and the smallest message the broker
/// refused) and per lane depth, evictions, dead letters and age of the oldest row.
pub fn outbox_json(outbox: &super::OutboxStats) -> serde_json::Value {
    let now_ms = unix_ms(SystemTime::now());
    let mut lanes = serde_json::Map::new();
    for (i, lane) in super::outbox::LANES.iter().enumerate() {
        let mut l = json!({
            "depth": outbox.depth[i],
            "evicted": outbox.evicted[i],
            "dead_letters": outbox.dead_letters[i],
        });
        if let (Some(t), Some(obj)) = (outbox.oldest_ms[i], l.as_object_mut()) {
            let age = now_ms.saturating_sub(t) as f64 / 1000.0;
            obj.insert("oldest_age_s".into(), json!((age * 10.0).round() / 10.0));
        }
        lanes.insert(super::durable::lane_name(*lane).into(), l);
    }
    let mut v = json!({
        "bytes": outbox.bytes,
        "max_bytes": outbox.max_bytes,
        "acked": outbox.acked,
        "dead_letters_stored": outbox.dead_stored,
        "durable": outbox.store_error.is_none(),
        "not_durable": outbox.not_durable,
        "lanes": lanes,
    });
    if let Some(obj) = v.as_object_mut() {
        if let Some(r) = outbox.refused_at {
            obj.insert("broker_refused_bytes".into(), json!(r));
        }
        if let Some(e) = &outbox.store_error {
            obj.insert("store_error".into(), json!(e));
        }
    }
    v
}

/// Milliseconds since the Unix epoch (0 before it).
pub fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default()
}

/// The box's time zone: `TZ`, else `/etc/timezone`, else the zone `/etc/localtime` links to,
/// else `UTC`. Payload times are always UTC; this tells people the box's local clock.
pub fn timezone() -> String {
    if let Ok(tz) = std::env::var("TZ")
        && !tz.trim().is_empty()
    {
        return tz.trim().trim_start_matches(':').to_string();
    }
    if let Ok(tz) = std::fs::read_to_string("/etc/timezone")
        && !tz.trim().is_empty()
    {
        return tz.trim().to_string();
    }
    std::fs::read_link("/etc/localtime")
        .ok()
        .and_then(|p| {
            let s = p.to_string_lossy().to_string();
            s.split_once("zoneinfo/").map(|(_, z)| z.to_string())
        })
        .unwrap_or_else(|| "UTC".into())
}

/// UTC RFC 3339 with milliseconds, e.g. `2026-11-27T23:50:01.123Z`.
pub fn rfc3339_ms(t: SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}

/// Evidence image published beside an `open` event.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SnapshotRef {
    /// Topic the JPEG is published on.
    pub topic: String,
    /// sha256 of the JPEG, lower-case hex.
    pub sha256: String,
    /// JPEG size in bytes.
    pub bytes: usize,
    /// Image width.
    pub width: u32,
    /// Image height.
    pub height: u32,
}

/// Everything an incident payload needs besides the event itself.
#[derive(Debug, Clone, Copy)]
pub struct IncidentContext<'a> {
    /// The box.
    pub identity: &'a Identity,
    /// Camera id.
    pub camera: &'a str,
    /// Zone name, for zone rules.
    pub zone: Option<&'a str>,
    /// Line name, for line crossing.
    pub line: Option<&'a str>,
    /// Model name.
    pub model_name: &'a str,
    /// Model version.
    pub model_version: &'a str,
    /// Model labels, to name classes.
    pub labels: &'a Labels,
}

fn round(v: f32, digits: i32) -> f64 {
    let m = 10f64.powi(digits);
    (f64::from(v) * m).round() / m
}

fn object_json(o: &Object, labels: &Labels) -> serde_json::Value {
    let d = &o.det;
    let mut v = json!({
        "label": labels.name(d.class as usize).unwrap_or("unknown"),
        "class_id": d.class,
        "score": round(d.score, 3),
        "box": [round(d.bbox[0], 4), round(d.bbox[1], 4), round(d.bbox[2], 4), round(d.bbox[3], 4)],
    });
    if let (Some(t), Some(obj)) = (o.track, v.as_object_mut()) {
        obj.insert("track_id".into(), json!(t));
    }
    v
}

/// What an incident event's `snapshot` field says.
#[derive(Debug, Clone, Copy)]
pub enum Snapshot<'a> {
    /// No picture was wanted (no field).
    None,
    /// The picture, published on its own topic.
    Sent(&'a SnapshotRef),
    /// A picture was wanted and cannot be sent: why (`{"omitted": why}`).
    Omitted(&'a str),
}

impl<'a> Snapshot<'a> {
    /// `Sent` for a reference, `Omitted` for a reason, `None` for neither.
    pub fn of(sent: Option<&'a SnapshotRef>, omitted: Option<&'a str>) -> Self {
        match (sent, omitted) {
            (Some(r), _) => Snapshot::Sent(r),
            (None, Some(why)) => Snapshot::Omitted(why),
            (None, None) => Snapshot::None,
        }
    }
}

/// The JSON of one incident event with sequence number `seq`.
pub fn incident(
    ctx: IncidentContext<'_>,
    seq: u64,
    e: &IncidentEvent,
    snapshot: Snapshot<'_>,
) -> serde_json::Value {
    let mut v = json!({
        "schema": INCIDENT_SCHEMA,
        "id": e.id.to_string(),
        "seq": seq,
        "device": ctx.identity.device,
        "district": ctx.identity.district,
        "camera": ctx.camera,
        "type": e.kind.as_str(),
        "severity": e.severity.as_str(),
        "state": e.state.as_str(),
        "frame_time": rfc3339_ms(e.frame_time),
        "opened_at": rfc3339_ms(e.opened_at),
        "objects": e.objects.iter().map(|o| object_json(o, ctx.labels)).collect::<Vec<_>>(),
        "model": { "name": ctx.model_name, "version": ctx.model_version },
    });
    if let Some(obj) = v.as_object_mut() {
        let mut put = |k: &str, val: serde_json::Value| {
            obj.insert(k.into(), val);
        };
        if let Some(z) = ctx.zone {
            put("zone", json!(z));
        }
        if let Some(l) = ctx.line {
            put("line", json!(l));
        }
        if let Some(t) = e.track {
            put("track_id", json!(t));
        }
        if let Some(d) = e.facts.direction {
            put("direction", json!(d));
        }
        if let Some(c) = e.facts.count {
            put("count", json!(c));
        }
        if let Some(d) = e.facts.dwell {
            put("dwell_s", json!((d.as_secs_f64() * 10.0).round() / 10.0));
        }
        if let Some(a) = &e.ack {
            put("acked_at", json!(rfc3339_ms(a.at)));
            if let Some(by) = &a.by {
                put("acked_by", json!(by));
            }
            if let Some(note) = &a.note {
                put("ack_note", json!(note));
            }
        }
        if let Some(c) = &e.clip {
            put(
                "clip",
                json!({
                    "topic": c.topic,
                    "start": rfc3339_ms(c.start),
                    "duration_s": c.duration_s,
                    "bytes": c.bytes,
                    "sha256": c.sha256,
                    "chunks": c.chunks,
                }),
            );
        }
        match snapshot {
            Snapshot::None => {}
            Snapshot::Sent(s) => put("snapshot", json!(s)),
            Snapshot::Omitted(why) => put("snapshot", json!({ "omitted": why })),
        }
    }
    v
}

/// Device status states.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceState {
    /// Connected and running (birth message).
    Online,
    /// Connection lost without a goodbye (last will, published by the broker).
    Offline,
    /// Clean shutdown.
    Stopped,
}

/// A model as the status and health messages name it.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ModelLine {
    /// Its card's name.
    pub name: String,
    /// Its card's version.
    pub version: String,
    /// The engine running it: `tract`, `ort` or `builtin` (`backend = "auto"` says here which
    /// one it chose).
    pub engine: &'static str,
}

/// What the birth message lists.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Inventory {
    /// Agent version.
    pub version: String,
    /// Process start time.
    pub started_at: Option<SystemTime>,
    /// Camera ids.
    pub cameras: Vec<String>,
    /// Each model, with its engine.
    pub models: Vec<ModelLine>,
    /// The box's time zone (IANA name).
    pub timezone: String,
}

/// The retained status payload.
pub fn status(identity: &Identity, state: DeviceState, inv: &Inventory) -> serde_json::Value {
    let name = match state {
        DeviceState::Online => "online",
        DeviceState::Offline => "offline",
        DeviceState::Stopped => "stopped",
    };
    let mut v = json!({
        "schema": STATUS_SCHEMA,
        "state": name,
        "device": identity.device,
        "district": identity.district,
        "version": inv.version,
    });
    if state != DeviceState::Offline
        && let Some(obj) = v.as_object_mut()
    {
        obj.insert("time".into(), json!(rfc3339_ms(SystemTime::now())));
        if let Some(t) = inv.started_at {
            obj.insert("started_at".into(), json!(rfc3339_ms(t)));
        }
        obj.insert("cameras".into(), json!(inv.cameras));
        obj.insert("timezone".into(), json!(inv.timezone));
        obj.insert("models".into(), json!(inv.models));
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::Detection;
    use crate::rules::lifecycle::Facts;
    use crate::rules::{EventState, IncidentType, Scope, Severity};
    use std::time::Duration;

    #[test]
    fn incident_payload_has_the_contract_fields() {
        let id = Identity {
            device: "q1-box-001".into(),
            district: "q1".into(),
        };
        let labels = Labels::parse("0 person\n").expect("labels");
        let t = SystemTime::UNIX_EPOCH + Duration::from_millis(1_795_000_000_123);
        let e = IncidentEvent {
            id: uuid::Uuid::now_v7(),
            kind: IncidentType::LineCrossing,
            state: EventState::Open,
            severity: Severity::Major,
            scope: Scope::Line(0),
            track: Some(42),
            objects: vec![Object {
                track: Some(42),
                det: Detection {
                    class: 0,
                    score: 0.87654,
                    bbox: [0.1, 0.2, 0.3, 0.456789],
                },
            }],
            frame_time: t,
            opened_at: t,
            facts: Facts {
                direction: Some("a_to_b"),
                ..Facts::default()
            },
            ack: None,
            clip: None,
        };
        let ctx = IncidentContext {
            identity: &id,
            camera: "plaza",
            zone: None,
            line: Some("gate"),
            model_name: "ssd",
            model_version: "1",
            labels: &labels,
        };
        let v = incident(ctx, 7, &e, Snapshot::None);
        assert_eq!(v["schema"], "vigil.incident/1");
        assert_eq!(v["seq"], 7);
        assert_eq!(v["state"], "open");
        assert_eq!(v["frame_time"], "2026-11-18T11:06:40.123Z");
        assert_eq!(v["objects"][0]["label"], "person");
        assert_eq!(v["objects"][0]["score"], 0.877);
        assert_eq!(v["objects"][0]["box"][3], 0.4568);
        assert_eq!(v["objects"][0]["track_id"], 42);
        assert_eq!(v["type"], "line_crossing");
        assert_eq!(v["severity"], "major");
        assert_eq!(v["line"], "gate");
        assert_eq!(v["direction"], "a_to_b");
        assert_eq!(v["track_id"], 42);
        assert!(v.get("zone").is_none() && v.get("count").is_none());
        assert_eq!(
            id.incident_topic("plaza"),
            "vigil/v1/q1/q1-box-001/incidents/plaza"
        );
        assert!(v.get("snapshot").is_none());
        let why = "the picture does not fit mqtt.max_message_bytes";
        let v = incident(ctx, 8, &e, Snapshot::of(None, Some(why)));
        assert_eq!(v["snapshot"], json!({ "omitted": why }));
    }

    #[test]
    fn status_payloads() {
        let id = Identity {
            device: "d".into(),
            district: "q".into(),
        };
        let inv = Inventory {
            version: "0.1.0".into(),
            cameras: vec!["a".into()],
            ..Inventory::default()
        };
        let on = status(&id, DeviceState::Online, &inv);
        assert_eq!(on["state"], "online");
        assert_eq!(on["cameras"][0], "a");
        let off = status(&id, DeviceState::Offline, &inv);
        assert_eq!(off["state"], "offline");
        assert!(
            off.get("cameras").is_none(),
            "the last will is fixed at connect and says only who"
        );
    }
}
