//! From a rule event to what is published about it: the names of its zone or line and, for an
//! `open`, the evidence JPEG; and the incident payload ([`payload`]). Shared by the live agent
//! and `vigil replay`.

use crate::detect::{FrameView, Labels};
use crate::evidence::{self, EvidenceSettings, Jpeg, Mark, Overlay};
use crate::publish::Identity;
use crate::rules::{EventState, IncidentEvent, Object, RuleSet, Scope};
use payload::SnapshotRef;

pub mod payload;

/// What an event needs besides its own fields.
#[derive(Debug, Clone, Default)]
pub struct Rendered {
    /// Zone name (zone rules).
    pub zone: Option<String>,
    /// Line name (line crossing).
    pub line: Option<String>,
    /// Evidence of an `open`.
    pub snapshot: Option<Jpeg>,
    /// Why evidence was wanted and not made (the incident says so in its `snapshot` field).
    pub omitted: Option<String>,
}

/// How an incident event names its evidence image.
pub fn snapshot_ref(
    identity: &Identity,
    camera: &str,
    event: &IncidentEvent,
    j: &Jpeg,
) -> SnapshotRef {
    SnapshotRef {
        topic: identity.snapshot_topic(camera, &event.id),
        sha256: j.sha256(),
        bytes: j.bytes.len(),
        width: j.width,
        height: j.height,
    }
}

/// `person #12 0.87`.
pub fn caption(o: &Object, labels: &Labels) -> String {
    let label = labels.name(usize::from(o.det.class)).unwrap_or("?");
    match o.track {
        Some(t) => format!("{label} #{t} {:.2}", o.det.score),
        None => format!("{label} {:.2}", o.det.score),
    }
}

/// A camera's frame as a technician wants to see it: every zone and line of its rules and
/// every detection of this frame drawn (the diagnostics `snapshot`).
pub fn overview(
    set: &RuleSet,
    labels: &Labels,
    frame: FrameView<'_>,
    detections: &[crate::detect::Detection],
    settings: &EvidenceSettings,
) -> Result<evidence::Jpeg, evidence::EvidenceError> {
    let overlays: Vec<Overlay<'_>> = set
        .zones
        .iter()
        .map(|z| Overlay {
            polygon: z.polygon.as_slice(),
            line: None,
        })
        .chain(set.lines.iter().map(|l| Overlay {
            polygon: &[],
            line: Some((l.a, l.b)),
        }))
        .collect();
    let marks: Vec<Mark> = detections
        .iter()
        .map(|d| Mark {
            bbox: d.bbox,
            text: caption(
                &Object {
                    track: None,
                    det: *d,
                },
                labels,
            ),
        })
        .collect();
    evidence::annotate(frame, &overlays, &marks, settings)
}

/// Whether an event in `state` carries an evidence picture: every `open`, and an `update`
/// when `settings.on_update`.
pub fn wants_evidence(state: EventState, settings: &EvidenceSettings) -> bool {
    match state {
        EventState::Open => true,
        EventState::Update => settings.on_update,
        EventState::Close => false,
    }
}

/// Names and evidence of `event`, seen on `frame` (evidence for `open`, and for `update` when
/// `settings.on_update`).
pub fn render(
    set: &RuleSet,
    labels: &Labels,
    frame: FrameView<'_>,
    event: &IncidentEvent,
    settings: &EvidenceSettings,
) -> Rendered {
    let (zone, line) = match event.scope {
        Scope::Zone(i) => (set.zones.get(i), None),
        Scope::Line(i) => (None, set.lines.get(i)),
        Scope::Camera => (None, None),
    };
    let made = wants_evidence(event.state, settings).then(|| {
        let overlay = Overlay {
            polygon: zone.map(|z| z.polygon.as_slice()).unwrap_or_default(),
            line: line.map(|l| (l.a, l.b)),
        };
        let marks: Vec<Mark> = event
            .objects
            .iter()
            .map(|o| Mark {
                bbox: o.det.bbox,
                text: caption(o, labels),
            })
            .collect();
        evidence::annotate(frame, &[overlay], &marks, settings).map_err(|e| {
            tracing::warn!("cannot make the evidence image: {e}");
            format!("no evidence picture: {e}")
        })
    });
    let (snapshot, omitted) = match made {
        Some(Ok(j)) => (Some(j), None),
        Some(Err(why)) => (None, Some(why)),
        None => (None, None),
    };
    Rendered {
        zone: zone.map(|z| z.name.clone()),
        line: line.map(|l| l.name.clone()),
        snapshot,
        omitted,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::Detection;
    use crate::rules::lifecycle::Facts;
    use crate::rules::{IncidentType, Severity};
    use std::time::SystemTime;

    #[test]
    fn evidence_for_open_and_for_update_only_when_asked() {
        let labels = Labels::parse("person\n").expect("labels");
        let frame = vec![0u8; 320 * 240 * 3];
        let view = FrameView::rgb(320, 240, &frame);
        let mut event = IncidentEvent {
            id: uuid::Uuid::now_v7(),
            kind: IncidentType::Fire,
            state: EventState::Open,
            severity: Severity::Critical,
            scope: Scope::Camera,
            track: None,
            objects: vec![Object {
                track: None,
                det: Detection {
                    class: 0,
                    score: 0.7,
                    bbox: [0.1, 0.1, 0.3, 0.3],
                },
            }],
            frame_time: SystemTime::now(),
            opened_at: SystemTime::now(),
            facts: Facts::default(),
            ack: None,
            clip: None,
        };
        let set = RuleSet::default();
        let mut settings = EvidenceSettings::default();
        assert!(
            render(&set, &labels, view, &event, &settings)
                .snapshot
                .is_some()
        );
        event.state = EventState::Update;
        assert!(
            render(&set, &labels, view, &event, &settings)
                .snapshot
                .is_none()
        );
        settings.on_update = true;
        assert!(
            render(&set, &labels, view, &event, &settings)
                .snapshot
                .is_some()
        );
        event.state = EventState::Close;
        assert!(
            render(&set, &labels, view, &event, &settings)
                .snapshot
                .is_none()
        );
    }
}
