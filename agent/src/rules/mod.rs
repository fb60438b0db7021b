//! Rules: detections of one camera in, incident events out. Pure code: no IO, no clock reads;
//! the caller passes the monotonic time of each analysed frame (from a [`crate::clock::Clock`]),
//! so tests drive it with any timeline they like.
//!
//! Per frame: detections pass the camera's class filters and masks → the [`track::Tracker`]
//! gives them stable ids → zone rules (intrusion, loitering, crowding), line rules (crossing)
//! and the fire/smoke confirmation decide which incidents are active → the
//! [`lifecycle::Lifecycle`] turns that into `open` / `update` / `close` events, one incident
//! per (rule, zone or line, track) for object rules and per (rule, zone) for crowding and fire.

pub mod filter;
pub mod fire;
pub mod lifecycle;
pub mod line;
pub mod resolve;
pub mod standdown;
pub mod track;
pub mod zone;

use std::time::{Duration, SystemTime};

use uuid::Uuid;

pub use crate::config::Severity;
use crate::detect::Detection;
use crate::geometry::{self, Point};
use filter::ClassFilters;
use fire::{FireRule, Window};
use lifecycle::{Facts, Key, Lifecycle, Policy};
use line::{LineRule, Sides};
use standdown::{Disarm, Standing};
use track::{Tracker, TrackerConfig};

/// Incident types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IncidentType {
    /// A tracked object of a watched class inside a zone.
    Intrusion,
    /// A tracked object crossed a line in a watched direction.
    LineCrossing,
    /// A tracked object stayed in a zone for at least its dwell time.
    Loitering,
    /// At least a number of objects in a zone for a while.
    Crowding,
    /// Confirmed fire.
    Fire,
    /// Confirmed smoke.
    Smoke,
}

impl IncidentType {
    /// Name used in payloads.
    pub fn as_str(self) -> &'static str {
        match self {
            IncidentType::Intrusion => "intrusion",
            IncidentType::LineCrossing => "line_crossing",
            IncidentType::Loitering => "loitering",
            IncidentType::Crowding => "crowding",
            IncidentType::Fire => "fire",
            IncidentType::Smoke => "smoke",
        }
    }
}

/// Where an incident happens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// The whole view (fire, smoke).
    Camera,
    /// A zone, by index in the camera's zones.
    Zone(usize),
    /// A line, by index in the camera's lines.
    Line(usize),
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

/// A detection, with its track when it has one.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Object {
    /// Track id (none for fire and smoke, which are not tracked).
    pub track: Option<u64>,
    /// The detection on the frame.
    pub det: Detection,
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
    /// How urgent.
    pub severity: Severity,
    /// Where.
    pub scope: Scope,
    /// The track, for per-object rules.
    pub track: Option<u64>,
    /// Objects involved on this frame (empty on close).
    pub objects: Vec<Object>,
    /// Capture time of the frame that caused the event.
    pub frame_time: SystemTime,
    /// Capture time of the frame that opened the incident.
    pub opened_at: SystemTime,
    /// Count, direction or dwell, by rule.
    pub facts: Facts,
    /// The operator's acknowledgement (`ack` command), on every event after it.
    pub ack: Option<std::sync::Arc<Ack>>,
    /// The incident's evidence clip, once written and sent: on every event after it.
    pub clip: Option<std::sync::Arc<ClipRef>>,
}

/// An incident's evidence clip, as its events name it.
#[derive(Debug, Clone, PartialEq)]
pub struct ClipRef {
    /// Where it was announced (its chunks are on `{topic}/{n}`).
    pub topic: String,
    /// When its first frame arrived.
    pub start: std::time::SystemTime,
    /// From its first frame to its last, in seconds.
    pub duration_s: f64,
    /// The file's size.
    pub bytes: u64,
    /// The file's sha256 (hex).
    pub sha256: String,
    /// How many chunks.
    pub chunks: usize,
}

/// An operator's acknowledgement of an open incident.
#[derive(Debug, Clone, PartialEq)]
pub struct Ack {
    /// Who, as the request said.
    pub by: Option<String>,
    /// A note, as the request said.
    pub note: Option<String>,
    /// When the box took it.
    pub at: SystemTime,
}

/// Crowding settings of a zone.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Crowding {
    /// Least number of objects.
    pub min_count: u32,
    /// For at least this long.
    pub hold: Duration,
    /// Lifecycle.
    pub policy: Policy,
}

/// A zone as the rules use it: class ids resolved, thresholds set.
#[derive(Debug, Clone, PartialEq)]
pub struct ZoneRule {
    /// Zone name.
    pub name: String,
    /// Polygon, normalised coordinates.
    pub polygon: Vec<Point>,
    /// Class ids that count.
    pub classes: Vec<u16>,
    /// Least score of the track's latest detection.
    pub min_score: f32,
    /// Per-class limits in this zone.
    pub filters: ClassFilters,
    /// Intrusion, if raised.
    pub intrusion: Option<Policy>,
    /// Loitering: dwell time and lifecycle, if raised.
    pub loitering: Option<(Duration, Policy)>,
    /// Crowding, if raised.
    pub crowding: Option<Crowding>,
    /// How a track's membership changes.
    pub hysteresis: zone::Hysteresis,
}

/// Every rule of one camera, resolved against its model's labels.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RuleSet {
    /// Per-class limits for everything on this camera.
    pub filters: ClassFilters,
    /// Where nothing counts.
    pub masks: Vec<Vec<Point>>,
    /// Zones, in config order.
    pub zones: Vec<ZoneRule>,
    /// Lines, in config order.
    pub lines: Vec<LineRule>,
    /// Fire and smoke, when the model has such classes.
    pub fire: Option<FireRule>,
    /// Tracker settings.
    pub tracker: TrackerConfig,
    /// The weakest score any rule of this camera wants to see: the detector must report down
    /// to it.
    pub detector_floor: f32,
}

/// The rule state of one camera.
#[derive(Debug, Clone)]
pub struct CameraRules {
    set: RuleSet,
    tracker: Tracker,
    life: Lifecycle,
    sides: Vec<Sides>,
    /// (zone, track, entered at, last seen inside).
    dwell: Vec<(usize, u64, Duration, Duration)>,
    /// Per zone: since when the crowd has been large enough.
    crowd_since: Vec<Option<Duration>>,
    /// Per fire/smoke class kind (fire, smoke): its confirmation window.
    windows: [Window; 2],
    /// Scratch: the frame's detections after filters and masks.
    kept: Vec<Detection>,
    /// Scratch: objects of one rule on this frame.
    objs: Vec<Object>,
    /// Per zone: confirmed tracks in it on the latest frame.
    counts: Vec<usize>,
    /// Which tracks count as inside which zone (with hysteresis).
    membership: zone::Membership,
    /// What the centre has stood down.
    standing: Standing,
}

/// What this frame shows of object `o` against zone `z`.
fn zone_seen(z: &ZoneRule, o: &Object, aspect: f64) -> zone::Seen {
    let qualifies = z.classes.contains(&o.det.class)
        && o.det.score >= z.min_score
        && z.filters.passes(&o.det, aspect);
    if !qualifies {
        return zone::Seen {
            inside: false,
            near: false,
        };
    }
    let anchor = geometry::bottom_centre(o.det.bbox);
    let inside = geometry::contains(&z.polygon, anchor);
    zone::Seen {
        inside,
        near: !inside && geometry::distance_to_edge(&z.polygon, anchor) <= z.hysteresis.margin,
    }
}

impl CameraRules {
    /// Rules for one camera.
    pub fn new(set: RuleSet) -> Self {
        CameraRules {
            tracker: Tracker::new(set.tracker),
            life: Lifecycle::default(),
            sides: vec![Sides::default(); set.lines.len()],
            dwell: Vec::new(),
            crowd_since: vec![None; set.zones.len()],
            windows: Default::default(),
            kept: Vec::with_capacity(64),
            objs: Vec::with_capacity(64),
            counts: vec![0; set.zones.len()],
            membership: zone::Membership::default(),
            standing: Standing::resolve(&set, Vec::new()),
            set,
        }
    }

    /// Stand down what `disarms` name (replacing the previous list).
    pub fn stand_down(&mut self, disarms: Vec<Disarm>) {
        self.standing = Standing::resolve(&self.set, disarms);
    }

    /// What stands down.
    pub fn standing(&self) -> &Standing {
        &self.standing
    }

    /// Acknowledge open incident `id`: its type, or `None` when no incident of that id is
    /// open here.
    pub fn ack(&mut self, id: Uuid, ack: std::sync::Arc<Ack>) -> Option<IncidentType> {
        self.life.ack(id, ack)
    }

    /// Name `clip` on the next event of open incident `id` (and every later one); false when it
    /// is no longer open.
    pub fn attach_clip(&mut self, id: Uuid, clip: std::sync::Arc<ClipRef>) -> bool {
        self.life.attach_clip(id, clip)
    }

    /// When open incident `id` opened (the time of its first frame).
    pub fn opened_at(&self, id: Uuid) -> Option<std::time::SystemTime> {
        self.life.opened_at(id)
    }

    /// The rules.
    pub fn set(&self) -> &RuleSet {
        &self.set
    }

    /// The zones, in config order.
    pub fn zones(&self) -> impl Iterator<Item = &ZoneRule> {
        self.set.zones.iter()
    }

    /// The tracker (for its live tracks).
    pub fn tracker(&self) -> &Tracker {
        &self.tracker
    }

    /// Close every open incident (the camera's rules are being replaced), at `frame_time`.
    pub fn close_all(&mut self, frame_time: SystemTime, out: &mut Vec<IncidentEvent>) {
        self.life.close_all(frame_time, out);
    }

    /// Incidents open now.
    pub fn open_incidents(&self) -> usize {
        self.life.open_count()
    }

    /// Confirmed tracks in each zone on the latest frame, in zone order.
    pub fn zone_counts(&self) -> &[usize] {
        &self.counts
    }

    /// Evaluate one analysed frame taken at monotonic time `now` (capture time `frame_time`,
    /// `aspect` = width / height in pixels), appending the resulting events to `out`.
    pub fn evaluate(
        &mut self,
        now: Duration,
        frame_time: SystemTime,
        aspect: f64,
        dets: &[Detection],
        out: &mut Vec<IncidentEvent>,
    ) {
        let set = &self.set;
        self.kept.clear();
        self.kept.extend(
            dets.iter()
                .filter(|d| set.filters.passes(d, aspect) && !filter::masked(&set.masks, d))
                .copied(),
        );
        self.tracker.update(now, &self.kept);
        let visible = || {
            self.tracker.visible().map(|t| Object {
                track: Some(t.id),
                det: Detection {
                    class: t.class,
                    score: t.score,
                    bbox: t.bbox,
                },
            })
        };

        let standing = &self.standing;
        for (zi, z) in set.zones.iter().enumerate() {
            let down = |kind| standing.covers(Scope::Zone(zi), kind, frame_time);
            self.objs.clear();
            let membership = &mut self.membership;
            self.objs.extend(visible().filter(|o| {
                let seen = zone_seen(z, o, aspect);
                match o.track {
                    Some(id) => membership.update(zi, id, seen, z.hysteresis, now),
                    None => seen.inside,
                }
            }));
            self.counts[zi] = self.objs.len();
            for o in &self.objs {
                let track = o.track;
                if let Some(policy) = z.intrusion.filter(|_| !down(IncidentType::Intrusion)) {
                    let key = Key {
                        kind: IncidentType::Intrusion,
                        scope: Scope::Zone(zi),
                        track,
                    };
                    self.life.seen(
                        key,
                        policy,
                        now,
                        frame_time,
                        std::slice::from_ref(o),
                        Facts::default(),
                        out,
                    );
                }
                if let (Some((dwell, policy)), Some(id)) = (z.loitering, track) {
                    let entered = match self.dwell.iter_mut().find(|e| e.0 == zi && e.1 == id) {
                        Some(e) => {
                            e.3 = now;
                            e.2
                        }
                        None => {
                            self.dwell.push((zi, id, now, now));
                            now
                        }
                    };
                    let stayed = now.saturating_sub(entered);
                    if stayed >= dwell && !down(IncidentType::Loitering) {
                        let key = Key {
                            kind: IncidentType::Loitering,
                            scope: Scope::Zone(zi),
                            track,
                        };
                        let facts = Facts {
                            dwell: Some(stayed),
                            ..Facts::default()
                        };
                        self.life.seen(
                            key,
                            policy,
                            now,
                            frame_time,
                            std::slice::from_ref(o),
                            facts,
                            out,
                        );
                    }
                }
            }
            if let Some(c) = z.crowding {
                let n = self.objs.len() as u32;
                if n >= c.min_count {
                    let since = *self.crowd_since[zi].get_or_insert(now);
                    if now.saturating_sub(since) >= c.hold && !down(IncidentType::Crowding) {
                        let key = Key {
                            kind: IncidentType::Crowding,
                            scope: Scope::Zone(zi),
                            track: None,
                        };
                        let facts = Facts {
                            count: Some(n),
                            ..Facts::default()
                        };
                        self.life
                            .seen(key, c.policy, now, frame_time, &self.objs, facts, out);
                    }
                } else {
                    self.crowd_since[zi] = None;
                }
            }
        }
        // A track out of a zone for longer than the quiet period starts its dwell afresh.
        let zones = &set.zones;
        self.dwell.retain(|e| {
            let quiet = zones
                .get(e.0)
                .and_then(|z| z.loitering)
                .map_or(Duration::ZERO, |(_, p)| p.quiet);
            now.saturating_sub(e.3) <= quiet
        });
        self.membership.forget_old(now);

        for (li, l) in set.lines.iter().enumerate() {
            let down = standing.covers(Scope::Line(li), IncidentType::LineCrossing, frame_time);
            for o in visible() {
                let Some(id) = o.track else { continue };
                if !l.classes.contains(&o.det.class) || o.det.score < l.min_score {
                    continue;
                }
                let foot = geometry::bottom_centre(o.det.bbox);
                if let Some(dir) = self.sides[li].step(l, id, foot).filter(|_| !down) {
                    let key = Key {
                        kind: IncidentType::LineCrossing,
                        scope: Scope::Line(li),
                        track: Some(id),
                    };
                    let facts = Facts {
                        direction: Some(dir),
                        ..Facts::default()
                    };
                    self.life
                        .seen(key, l.policy, now, frame_time, &[o], facts, out);
                }
            }
            let tracks = self.tracker.tracks();
            self.sides[li].retain(|id| tracks.iter().any(|t| t.id == id));
        }

        if let Some(rule) = &set.fire {
            for (wi, kind) in [IncidentType::Fire, IncidentType::Smoke]
                .into_iter()
                .enumerate()
            {
                let of_kind = |d: &&Detection| {
                    d.score >= rule.min_score
                        && rule.classes.iter().any(|&(c, k)| c == d.class && k == kind)
                };
                if !rule.classes.iter().any(|&(_, k)| k == kind) {
                    continue;
                }
                let best = self
                    .kept
                    .iter()
                    .filter(of_kind)
                    .max_by(|a, b| a.score.total_cmp(&b.score));
                let confirmed = self.windows[wi].push(rule, now, best);
                let key = Key {
                    kind,
                    scope: Scope::Camera,
                    track: None,
                };
                let active = confirmed || (best.is_some() && self.life.is_open(&key));
                if active && !standing.covers(Scope::Camera, kind, frame_time) {
                    self.objs.clear();
                    self.objs.extend(
                        self.kept
                            .iter()
                            .filter(of_kind)
                            .map(|&det| Object { track: None, det }),
                    );
                    self.life.seen(
                        key,
                        rule.policy,
                        now,
                        frame_time,
                        &self.objs,
                        Facts::default(),
                        out,
                    );
                }
            }
        }

        self.life.sweep(now, frame_time, out);
    }
}

#[cfg(test)]
mod tests;
