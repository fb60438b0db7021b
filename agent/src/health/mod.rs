//! Camera health in one place: what a camera's frames and picture say about it, as typed
//! states, and what follows from them.
//!
//! - [`status`]: the status the centre sees (`connecting`, `streaming`, `offline` with its
//!   cause, `frozen`, `tampered`), assessed from when frames last arrived and the pipeline
//!   supervisor's view, then from the picture checks' verdict.
//! - [`faults`]: the camera-fault incidents that follow (`camera_offline`, `camera_frozen`,
//!   `camera_tamper`).
//! - [`Watch`]: one camera's watcher, both together: each look gives the fault events and the
//!   status when it changed. The camera monitor (`telemetry::camera_monitor`) is its IO edge: it
//!   reads the frame board every second and publishes what a look returns.
//!
//! The measures themselves come from `ingest`: frame arrival, the supervisor's link and its
//! errors, the picture checks (`ingest/picture.rs`) and decode errors. Pure: the caller passes
//! the time.

pub mod faults;
pub mod status;

use std::time::{Duration, Instant, SystemTime};

pub use faults::{FaultEvent, FaultKind, FaultTracker};
pub use status::{Offline, Status, assess};

use crate::ingest::picture::Condition;
use crate::ingest::slot::Link;

/// A camera as the monitor watches it.
#[derive(Debug, Clone)]
pub struct Watched {
    /// Index on the frame board.
    pub index: usize,
    /// Camera id.
    pub id: String,
    /// Whether it is pulled at all.
    pub enabled: bool,
    /// No frame for this long counts as offline.
    pub stall: Duration,
    /// No frame for this long opens a `camera_offline` incident.
    pub offline: Duration,
}

impl Watched {
    /// How the monitor watches camera `index` configured as `c`: offline after three analysis
    /// intervals without a frame (at least 3 s), a `camera_offline` incident after `offline_s`.
    pub fn of(index: usize, c: &crate::config::Camera) -> Self {
        Watched {
            index,
            id: c.id.clone(),
            enabled: c.enabled,
            stall: Duration::from_secs_f64((3.0 / c.analysis_fps).max(3.0)),
            offline: crate::config::duration(c.offline_s),
        }
    }
}

/// What the camera's measures were at one look.
#[derive(Debug, Clone, Copy)]
pub struct Measures<'a> {
    /// When its last frame arrived (none yet: `None`).
    pub last_frame: Option<Instant>,
    /// The pipeline supervisor's view.
    pub link: &'a Link,
    /// What the picture checks say.
    pub condition: Condition,
}

/// A status to publish: the new status, and whether its name changed (a new `since`) or only
/// its reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// The status now.
    pub status: Status,
    /// Its name differs from the last one published (or nothing was published yet).
    pub new_state: bool,
}

/// One camera's watcher: its open fault incidents and the status last published.
#[derive(Debug)]
pub struct Watch {
    faults: FaultTracker,
    published: Option<Status>,
}

impl Watch {
    /// A watcher for `w`.
    pub fn new(w: &Watched) -> Self {
        Watch {
            faults: FaultTracker::new(w.offline),
            published: None,
        }
    }

    /// Take a reload's thresholds; open incidents stay open.
    pub fn update_thresholds(&mut self, w: &Watched) {
        self.faults.set_offline_after(w.offline);
    }

    /// The camera was switched off: publish [`Offline::Disabled`] now, and its next status
    /// whatever it is.
    pub fn disabled(&mut self) -> Status {
        self.published = None;
        Status::Offline(Offline::Disabled)
    }

    /// Look at the camera at `now` (`wall` for the incidents), `started` being when watching
    /// began: its fault events go to `events`; its status is returned when it changed.
    pub fn look(
        &mut self,
        w: &Watched,
        m: Measures<'_>,
        (now, started, wall): (Instant, Instant, SystemTime),
        events: &mut Vec<FaultEvent>,
    ) -> Option<Change> {
        let flow = assess(now, m.last_frame, m.link, w.stall);
        self.faults.update(
            faults::Seen {
                flow: &flow,
                silent_for: now.saturating_duration_since(m.last_frame.unwrap_or(started)),
                condition: m.condition,
            },
            wall,
            events,
        );
        let status = flow.with_picture(m.condition);
        if self.published.as_ref().is_some_and(|p| p.same_as(&status)) {
            return None;
        }
        let new_state = self
            .published
            .as_ref()
            .is_none_or(|p| p.name() != status.name());
        self.published = Some(status.clone());
        Some(Change { status, new_state })
    }

    /// The agent stops: close every open fault incident at `wall`.
    pub fn close_all(&mut self, wall: SystemTime, events: &mut Vec<FaultEvent>) {
        self.faults.close_all(wall, events);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn watched() -> Watched {
        Watched {
            index: 0,
            id: "gate".into(),
            enabled: true,
            stall: Duration::from_secs(3),
            offline: Duration::from_secs(30),
        }
    }

    #[test]
    fn a_look_publishes_changes_only_and_opens_faults_on_time() {
        let w = watched();
        let mut watch = Watch::new(&w);
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        let link = Link {
            attempt_started: Some(t0),
            ..Link::default()
        };
        let mut events = Vec::new();
        let mut look = |watch: &mut Watch, s: u64, last: Option<u64>, c: Condition| {
            let m = Measures {
                last_frame: last.map(at),
                link: &link,
                condition: c,
            };
            let mut out = Vec::new();
            let change = watch.look(&w, m, (at(s), t0, SystemTime::UNIX_EPOCH), &mut out);
            events.extend(out);
            change
        };
        let first = look(&mut watch, 1, Some(1), Condition::Clear).expect("first status");
        assert_eq!((first.status, first.new_state), (Status::Streaming, true));
        assert_eq!(look(&mut watch, 2, Some(2), Condition::Clear), None);
        let frozen = look(&mut watch, 3, Some(3), Condition::Frozen).expect("frozen");
        assert_eq!(frozen.status, Status::Frozen);
        // Silent: published once, not again as the silence grows.
        let silent = look(&mut watch, 10, Some(3), Condition::Frozen).expect("silent");
        assert_eq!(silent.status.name(), "offline");
        assert_eq!(look(&mut watch, 20, Some(3), Condition::Clear), None);
        assert!(look(&mut watch, 33, Some(3), Condition::Clear).is_none());
        assert_eq!(
            watch.disabled().reason().as_deref(),
            Some("disabled in the configuration")
        );
        let again = look(&mut watch, 34, Some(34), Condition::Clear).expect("after disable");
        assert!(again.new_state);
        let kinds: Vec<_> = events.iter().map(|e| (e.kind, e.state)).collect();
        use crate::rules::EventState::{Close, Open};
        assert_eq!(
            kinds,
            [
                (FaultKind::Frozen, Open),
                (FaultKind::Frozen, Close),
                (FaultKind::Offline, Open),
                (FaultKind::Offline, Close)
            ]
        );
    }
}
