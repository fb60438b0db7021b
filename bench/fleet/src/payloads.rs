//! What a simulated box publishes, built by the agent's own code: incident events by
//! `vigil::incident::payload::incident`, the evidence picture by `vigil::evidence::annotate` from
//! a real frame of the plaza footage, health by `vigil::telemetry::payload::health` with a line per
//! camera. Only the detections are made up, and the one picture is drawn once and sent with
//! every `open`.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use vigil::detect::{Detection, Labels};
use vigil::evidence::{EvidenceSettings, Jpeg, Mark, Overlay};
use vigil::incident::payload::{self, IncidentContext};
use vigil::pixels::{Format, FrameView};
use vigil::publish::{BuildIncident, Lane, Message, Outgoing};
use vigil::publish::{Identity, ModelLine};
use vigil::rules::lifecycle::Facts;
use vigil::rules::{EventState, IncidentEvent, IncidentType, Object, Scope, Severity};
use vigil::telemetry::payload::{self as telemetry, CameraHealth};

/// What every box shares: the evidence picture and the labels.
pub struct Material {
    /// The evidence JPEG published with every `open`.
    pub jpeg: Jpeg,
    labels: Arc<Labels>,
}

impl Material {
    /// The evidence picture of a person on the plaza frame `png`, as the agent draws it.
    pub fn load(png: &std::path::Path) -> anyhow::Result<Material> {
        let rgb = image::open(png)?.to_rgb8();
        let frame = FrameView {
            width: rgb.width(),
            height: rgb.height(),
            data: rgb.as_raw(),
            format: Format::Rgb,
        };
        let marks = [Mark {
            bbox: [0.42, 0.35, 0.50, 0.62],
            text: "person #12 0.87".into(),
        }];
        let zone = [[0.3, 0.3], [0.7, 0.3], [0.7, 0.9]];
        let overlay = Overlay {
            polygon: &zone,
            line: None,
        };
        let jpeg =
            vigil::evidence::annotate(frame, &[overlay], &marks, &EvidenceSettings::default())?;
        let labels = Labels::parse("person\nbicycle\ncar\n").map_err(anyhow::Error::msg)?;
        Ok(Material {
            jpeg,
            labels: Arc::new(labels),
        })
    }
}

/// One incident of a camera, from `open` to `close`.
#[derive(Debug, Clone)]
pub struct Incident {
    /// Its id.
    pub id: uuid::Uuid,
    /// Its camera.
    pub camera: String,
    /// When it opened.
    pub opened_at: SystemTime,
}

/// The event `state` of `incident`: an incident message (and the picture on `open`), built
/// with its `seq`; `stamp` is called with the `seq` just before the outbox commits it.
pub fn incident_event(
    identity: &Identity,
    material: &Arc<Material>,
    incident: &Incident,
    state: EventState,
    stamp: Box<dyn FnOnce(u64) + Send>,
) -> Outgoing {
    let event = IncidentEvent {
        id: incident.id,
        kind: IncidentType::Intrusion,
        state,
        severity: Severity::Major,
        scope: Scope::Zone(0),
        track: Some(12),
        objects: match state {
            EventState::Close => Vec::new(),
            _ => vec![Object {
                track: Some(12),
                det: Detection {
                    class: 0,
                    score: 0.87,
                    bbox: [0.42, 0.35, 0.50, 0.62],
                },
            }],
        },
        frame_time: SystemTime::now(),
        opened_at: incident.opened_at,
        facts: Facts::default(),
        ack: None,
        clip: None,
    };
    let (identity, material, camera) = (
        identity.clone(),
        Arc::clone(material),
        incident.camera.clone(),
    );
    let build: BuildIncident = Box::new(move |seq| {
        stamp(seq);
        let picture = (state == EventState::Open)
            .then(|| vigil::incident::snapshot_ref(&identity, &camera, &event, &material.jpeg));
        let ctx = IncidentContext {
            identity: &identity,
            camera: &camera,
            zone: Some("entrance"),
            line: None,
            model_name: "ssd_mobilenet_v1_coco",
            model_version: "1.0",
            labels: &material.labels,
        };
        let snapshot = payload::Snapshot::of(picture.as_ref(), None);
        let body = payload::incident(ctx, seq, &event, snapshot);
        let mut msgs = vec![Message {
            topic: identity.incident_topic(&camera),
            payload: body.to_string().into_bytes(),
            retain: false,
        }];
        if let Some(r) = picture {
            msgs.push(Message {
                topic: r.topic,
                payload: material.jpeg.bytes.clone(),
                retain: false,
            });
        }
        msgs
    });
    Outgoing::Incident {
        lane: Lane::Security,
        build,
    }
}

/// A health message of a box with `cameras`, as the agent sends it every 60 s, and its key in
/// the ledger.
pub fn health(
    identity: &Identity,
    cameras: &[String],
    uptime: Duration,
    outbox: &vigil::publish::OutboxStats,
) -> (Outgoing, String) {
    let lines: Vec<CameraHealth> = cameras
        .iter()
        .map(|c| CameraHealth {
            camera: c.clone(),
            decoded: uptime.as_secs() * 25,
            received: uptime.as_secs() * 5,
            analysed: uptime.as_secs() * 5,
            decoded_fps: 25.0,
            received_fps: 5.0,
            analysed_fps: 5.0,
            inference_ms_p50: 38.2,
            inference_ms_p99: 61.7,
            frame_time: "stream",
            ..Default::default()
        })
        .collect();
    let models = [ModelLine {
        name: "ssd_mobilenet_v1_coco".into(),
        version: "1.0".into(),
        engine: "ort",
    }];
    let body = telemetry::health(identity, uptime, (&lines, &models), outbox, Some(20 << 30));
    let key = crate::ledger::health_key(&identity.device, body["time"].as_str().unwrap_or(""));
    let out = Outgoing::Plain {
        lane: Lane::Telemetry,
        messages: vec![Message {
            topic: identity.health_topic(),
            payload: body.to_string().into_bytes(),
            retain: false,
        }],
    };
    (out, key)
}
