//! The incident payload of the `vigil/v1` contract (`vigil.incident/1`, docs/mqtt.md): rule
//! events with their objects, names, evidence and clip, and camera-fault events. Pure functions.

use serde::Serialize;
use serde_json::json;

use crate::clock::rfc3339_ms;
use crate::detect::Labels;
use crate::health::FaultEvent;
use crate::publish::Identity;
use crate::rules::{IncidentEvent, Object};

/// Incident payload schema id.
pub const INCIDENT_SCHEMA: &str = "vigil.incident/1";

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

/// The incident payload of a camera-fault event (`camera_offline`, `camera_frozen`,
/// `camera_tamper`), with sequence number `seq`.
pub fn fault(e: &FaultEvent, identity: &Identity, camera: &str, seq: u64) -> serde_json::Value {
    json!({
        "schema": INCIDENT_SCHEMA,
        "id": e.id.to_string(),
        "seq": seq,
        "device": identity.device,
        "district": identity.district,
        "camera": camera,
        "type": e.kind.as_str(),
        "severity": "major",
        "state": e.state.as_str(),
        "reason": e.reason,
        "frame_time": rfc3339_ms(e.at),
        "opened_at": rfc3339_ms(e.opened_at),
        "objects": [],
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::Detection;
    use crate::rules::lifecycle::Facts;
    use crate::rules::{EventState, IncidentType, Scope, Severity};
    use std::time::{Duration, SystemTime};

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
    fn the_payload_names_the_fault_and_has_no_objects() {
        let e = FaultEvent {
            id: uuid::Uuid::now_v7(),
            kind: crate::health::FaultKind::Tamper,
            state: EventState::Open,
            reason: "covered: the picture is dark or flat".into(),
            opened_at: SystemTime::UNIX_EPOCH,
            at: SystemTime::UNIX_EPOCH,
        };
        let id = Identity {
            device: "b1".into(),
            district: "d1".into(),
        };
        let v = fault(&e, &id, "gate", 9);
        assert_eq!(v["type"], "camera_tamper");
        assert_eq!(v["seq"], 9);
        assert_eq!(v["objects"], json!([]));
        assert!(v.get("model").is_none());
    }
}
