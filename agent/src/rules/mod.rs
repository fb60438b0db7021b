//! Rules: detections of one camera in, incident events out. Pure code: no IO, no clock reads;
//! the caller passes the monotonic time of each analysed frame, so tests drive it with any
//! timeline they like.
//!
//! Today's rule is zone intrusion: a detection of a listed class, scoring at least the zone's
//! minimum, whose box bottom-centre (where the object stands) lies inside the zone's polygon.
//! One incident per (camera, zone): it opens on the first such detection, sends `update`s when
//! its objects change (rate-bounded) and as a periodic heartbeat, and closes after a quiet period
//! without one.

pub mod geometry;
pub mod track;

use std::time::{Duration, SystemTime};

use uuid::Uuid;

use crate::detect::Detection;
use geometry::Point;

/// Incident types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IncidentType {
    /// An object of a watched class inside a zone.
    Intrusion,
}

impl IncidentType {
    /// Name used in payloads.
    pub fn as_str(self) -> &'static str {
        match self {
            IncidentType::Intrusion => "intrusion",
        }
    }

    /// Default severity.
    pub fn severity(self) -> &'static str {
        match self {
            IncidentType::Intrusion => "major",
        }
    }
}

/// Lifecycle step of an incident.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventState {
    /// First event of an incident.
    Open,
    /// The incident is still active (objects changed, or heartbeat).
    Update,
    /// The incident ended (quiet period elapsed).
    Close,
}

impl EventState {
    /// Name used in payloads.
    pub fn as_str(self) -> &'static str {
        match self {
            EventState::Open => "open",
            EventState::Update => "update",
            EventState::Close => "close",
        }
    }
}

/// One incident event produced by the rules.
#[derive(Debug, Clone, PartialEq)]
pub struct IncidentEvent {
    /// Stable incident id (UUIDv7) shared by all events of the incident.
    pub id: Uuid,
    /// What happened.
    pub kind: IncidentType,
    /// Lifecycle step.
    pub state: EventState,
    /// Index of the zone in the camera's zone list.
    pub zone: usize,
    /// Objects in the zone on this frame (empty on close).
    pub objects: Vec<Detection>,
    /// Capture time of the frame that caused the event.
    pub frame_time: SystemTime,
    /// Capture time of the frame that opened the incident.
    pub opened_at: SystemTime,
}

/// A zone as the rules use it: class ids resolved, thresholds set.
#[derive(Debug, Clone)]
pub struct ZoneRule {
    /// Zone name.
    pub name: String,
    /// Polygon, normalised coordinates.
    pub polygon: Vec<Point>,
    /// Class ids that count.
    pub classes: Vec<u16>,
    /// Minimum score.
    pub min_score: f32,
    /// Close after this long without a matching detection.
    pub quiet: Duration,
    /// Minimum time between change-driven updates.
    pub update_min_interval: Duration,
    /// Update at least this often while open.
    pub heartbeat: Duration,
}

impl ZoneRule {
    /// Whether detection `d` counts in this zone.
    pub fn matches(&self, d: &Detection) -> bool {
        self.classes.contains(&d.class)
            && d.score >= self.min_score
            && geometry::contains(&self.polygon, geometry::bottom_centre(d.bbox))
    }
}

#[derive(Debug, Clone)]
struct OpenIncident {
    id: Uuid,
    opened_at: SystemTime,
    last_seen: Duration,
    last_event: Duration,
    reported_count: usize,
    reported_best: f32,
}

/// The rule state of one camera.
#[derive(Debug, Clone)]
pub struct CameraRules {
    zones: Vec<(ZoneRule, Option<OpenIncident>)>,
}

/// A better score than this much over the last reported one counts as a change.
const SCORE_STEP: f32 = 0.05;

impl CameraRules {
    /// Rules for one camera's zones.
    pub fn new(zones: Vec<ZoneRule>) -> Self {
        CameraRules {
            zones: zones.into_iter().map(|z| (z, None)).collect(),
        }
    }

    /// The zones, in config order.
    pub fn zones(&self) -> impl Iterator<Item = &ZoneRule> {
        self.zones.iter().map(|(z, _)| z)
    }

    /// Evaluate one analysed frame taken at monotonic time `now` (capture time `frame_time`),
    /// appending the resulting events to `out`.
    pub fn evaluate(
        &mut self,
        now: Duration,
        frame_time: SystemTime,
        dets: &[Detection],
        out: &mut Vec<IncidentEvent>,
    ) {
        for (zi, (zone, open)) in self.zones.iter_mut().enumerate() {
            let objects: Vec<Detection> =
                dets.iter().filter(|d| zone.matches(d)).copied().collect();
            let best = objects.iter().map(|d| d.score).fold(0.0f32, f32::max);
            match open {
                None if !objects.is_empty() => {
                    let inc = OpenIncident {
                        id: Uuid::now_v7(),
                        opened_at: frame_time,
                        last_seen: now,
                        last_event: now,
                        reported_count: objects.len(),
                        reported_best: best,
                    };
                    out.push(IncidentEvent {
                        id: inc.id,
                        kind: IncidentType::Intrusion,
                        state: EventState::Open,
                        zone: zi,
                        objects,
                        frame_time,
                        opened_at: frame_time,
                    });
                    *open = Some(inc);
                }
                None => {}
                Some(inc) if !objects.is_empty() => {
                    inc.last_seen = now;
                    let since = now.saturating_sub(inc.last_event);
                    let changed = objects.len() != inc.reported_count
                        || best > inc.reported_best + SCORE_STEP;
                    if (changed && since >= zone.update_min_interval) || since >= zone.heartbeat {
                        inc.last_event = now;
                        inc.reported_count = objects.len();
                        inc.reported_best = best;
                        out.push(IncidentEvent {
                            id: inc.id,
                            kind: IncidentType::Intrusion,
                            state: EventState::Update,
                            zone: zi,
                            objects,
                            frame_time,
                            opened_at: inc.opened_at,
                        });
                    }
                }
                Some(inc) if now.saturating_sub(inc.last_seen) >= zone.quiet => {
                    out.push(IncidentEvent {
                        id: inc.id,
                        kind: IncidentType::Intrusion,
                        state: EventState::Close,
                        zone: zi,
                        objects: Vec::new(),
                        frame_time,
                        opened_at: inc.opened_at,
                    });
                    *open = None;
                }
                Some(_) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PERSON: u16 = 0;
    const CAR: u16 = 2;

    fn zone() -> ZoneRule {
        ZoneRule {
            name: "lawn".into(),
            polygon: vec![[0.0, 0.5], [1.0, 0.5], [1.0, 1.0], [0.0, 1.0]],
            classes: vec![PERSON],
            min_score: 0.5,
            quiet: Duration::from_secs(10),
            update_min_interval: Duration::from_secs(2),
            heartbeat: Duration::from_secs(30),
        }
    }

    fn det(class: u16, score: f32, bottom_y: f32) -> Detection {
        Detection {
            class,
            score,
            bbox: [0.4, bottom_y - 0.2, 0.5, bottom_y],
        }
    }

    /// Drive the rules over `frames` (seconds, detections) and return the events' states.
    fn run(
        rules: &mut CameraRules,
        frames: &[(f64, Vec<Detection>)],
    ) -> Vec<(f64, EventState, usize)> {
        let mut out = Vec::new();
        let mut log = Vec::new();
        for (t, dets) in frames {
            rules.evaluate(
                Duration::from_secs_f64(*t),
                SystemTime::UNIX_EPOCH,
                dets,
                &mut out,
            );
            for e in out.drain(..) {
                log.push((*t, e.state, e.objects.len()));
            }
        }
        log
    }

    #[test]
    fn opens_updates_on_change_and_closes_after_quiet() {
        let mut r = CameraRules::new(vec![zone()]);
        let p = det(PERSON, 0.8, 0.9);
        let frames = vec![
            (0.0, vec![p]),
            (0.2, vec![p]),    // no change: nothing
            (1.0, vec![p, p]), // change, but within update_min_interval: nothing
            (2.2, vec![p, p]), // change still unreported and 2 s passed: update
            (5.0, vec![]),
            (12.1, vec![]), // 9.9 s after the last sighting at 2.2: still open
            (12.3, vec![]), // 10.1 s: close
            (13.0, vec![]),
        ];
        assert_eq!(
            run(&mut r, &frames),
            vec![
                (0.0, EventState::Open, 1),
                (2.2, EventState::Update, 2),
                (12.3, EventState::Close, 0)
            ]
        );
    }

    #[test]
    fn ignores_other_classes_low_scores_and_objects_outside() {
        let mut r = CameraRules::new(vec![zone()]);
        let frames = vec![
            (0.0, vec![det(CAR, 0.9, 0.9)]),
            (0.2, vec![det(PERSON, 0.4, 0.9)]),
            (0.4, vec![det(PERSON, 0.9, 0.3)]),
        ];
        assert!(run(&mut r, &frames).is_empty());
    }

    #[test]
    fn heartbeat_and_reopen_get_a_new_id() {
        let mut r = CameraRules::new(vec![zone()]);
        let p = det(PERSON, 0.8, 0.9);
        let mut out = Vec::new();
        for t in 0..=31 {
            r.evaluate(
                Duration::from_secs(t),
                SystemTime::UNIX_EPOCH,
                &[p],
                &mut out,
            );
        }
        let states: Vec<EventState> = out.iter().map(|e| e.state).collect();
        assert_eq!(states, vec![EventState::Open, EventState::Update]);
        assert_eq!(out[0].id, out[1].id);
        let first = out[0].id;
        out.clear();
        r.evaluate(
            Duration::from_secs(45),
            SystemTime::UNIX_EPOCH,
            &[],
            &mut out,
        );
        r.evaluate(
            Duration::from_secs(46),
            SystemTime::UNIX_EPOCH,
            &[p],
            &mut out,
        );
        assert_eq!(out.len(), 2);
        assert_eq!((out[0].state, out[0].id), (EventState::Close, first));
        assert_eq!(out[1].state, EventState::Open);
        assert_ne!(out[1].id, first);
    }

    #[test]
    fn zones_are_independent() {
        let mut upper = zone();
        upper.name = "path".into();
        upper.polygon = vec![[0.0, 0.0], [1.0, 0.0], [1.0, 0.5], [0.0, 0.5]];
        let mut r = CameraRules::new(vec![zone(), upper]);
        let mut out = Vec::new();
        r.evaluate(
            Duration::ZERO,
            SystemTime::UNIX_EPOCH,
            &[det(PERSON, 0.9, 0.3)],
            &mut out,
        );
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].zone, 1);
    }
}
