//! Rules that stand down on the operations centre's word (the `disarm` and `arm` commands): a
//! zone, a line or a whole camera opens no incident until a time, or until it is armed again.
//! Tracking, zone counts and the fire confirmation windows go on while a rule stands down, and
//! an incident already open closes after its quiet period like any other. Fire and smoke stand
//! down only when a camera-wide disarm says `fire` explicitly (the command also bounds its
//! time). Pure: times are the frames' capture times.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::SystemTime;

use super::{IncidentType, RuleSet, Scope};

/// What a disarm covers.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Target {
    /// Every security rule of the camera (and fire and smoke with [`Disarm::fire`]).
    Camera,
    /// One zone, by name.
    Zone(String),
    /// One line, by name.
    Line(String),
}

impl Target {
    /// `camera`, `zone:NAME` or `line:NAME` (payloads, logs, the store's key).
    pub fn label(&self) -> String {
        match self {
            Target::Camera => "camera".into(),
            Target::Zone(n) => format!("zone:{n}"),
            Target::Line(n) => format!("line:{n}"),
        }
    }

    /// The target a [`Target::label`] names.
    pub fn parse(label: &str) -> Option<Target> {
        match label.split_once(':') {
            None if label == "camera" => Some(Target::Camera),
            Some(("zone", n)) if !n.is_empty() => Some(Target::Zone(n.into())),
            Some(("line", n)) if !n.is_empty() => Some(Target::Line(n.into())),
            _ => None,
        }
    }
}

/// One rule (or a camera's rules) standing down.
#[derive(Debug, Clone, PartialEq)]
pub struct Disarm {
    /// What stands down.
    pub target: Target,
    /// Until when; `None`: until armed again.
    pub until: Option<SystemTime>,
    /// Fire and smoke too (camera-wide only).
    pub fire: bool,
    /// Who asked (as the request said).
    pub by: Option<String>,
    /// Why (as the request said).
    pub reason: Option<String>,
    /// Since when.
    pub since: SystemTime,
}

impl Disarm {
    /// Whether it still holds at `at`.
    pub fn holds(&self, at: SystemTime) -> bool {
        self.until.is_none_or(|u| at < u)
    }

    /// As command results and the diagnostics socket show it: `target`, `fire`, `since`, and
    /// `until`, `by`, `reason` when known.
    pub fn to_json(&self) -> serde_json::Value {
        let ms = |t: SystemTime| humantime::format_rfc3339_millis(t).to_string();
        let mut v = serde_json::json!({
            "target": self.target.label(),
            "fire": self.fire,
            "since": ms(self.since),
        });
        if let Some(o) = v.as_object_mut() {
            if let Some(u) = self.until {
                o.insert("until".into(), ms(u).into());
            }
            if let Some(by) = &self.by {
                o.insert("by".into(), by.clone().into());
            }
            if let Some(r) = &self.reason {
                o.insert("reason".into(), r.clone().into());
            }
        }
        v
    }
}

/// One camera's disarms, resolved against its rules.
#[derive(Debug, Clone, Default)]
pub struct Standing {
    list: Vec<Disarm>,
    /// Until when, when standing down: every security rule.
    camera: Option<Option<SystemTime>>,
    /// Fire and smoke.
    fire: Option<Option<SystemTime>>,
    /// Per zone, in the rule set's order.
    zones: Vec<Option<Option<SystemTime>>>,
    /// Per line.
    lines: Vec<Option<Option<SystemTime>>>,
}

/// Whether a rule standing down until `until` (`None`: until armed) still does at `at`.
fn down(slot: Option<Option<SystemTime>>, at: SystemTime) -> bool {
    slot.is_some_and(|until| until.is_none_or(|u| at < u))
}

impl Standing {
    /// `list` resolved against `set` (a zone or line it does not have is ignored).
    pub fn resolve(set: &RuleSet, list: Vec<Disarm>) -> Standing {
        let mut s = Standing {
            zones: vec![None; set.zones.len()],
            lines: vec![None; set.lines.len()],
            ..Standing::default()
        };
        for d in &list {
            let slot = match &d.target {
                Target::Camera => {
                    if d.fire {
                        s.fire = Some(d.until);
                    }
                    Some(&mut s.camera)
                }
                Target::Zone(n) => set
                    .zones
                    .iter()
                    .position(|z| &z.name == n)
                    .and_then(|i| s.zones.get_mut(i)),
                Target::Line(n) => set
                    .lines
                    .iter()
                    .position(|l| &l.name == n)
                    .and_then(|i| s.lines.get_mut(i)),
            };
            if let Some(slot) = slot {
                *slot = Some(d.until);
            }
        }
        s.list = list;
        s
    }

    /// Whether an incident of `kind` in `scope` stands down on a frame taken at `at`.
    pub fn covers(&self, scope: Scope, kind: IncidentType, at: SystemTime) -> bool {
        if matches!(kind, IncidentType::Fire | IncidentType::Smoke) {
            return down(self.fire, at);
        }
        down(self.camera, at)
            || match scope {
                Scope::Zone(i) => down(self.zones.get(i).copied().flatten(), at),
                Scope::Line(i) => down(self.lines.get(i).copied().flatten(), at),
                Scope::Camera => false,
            }
    }

    /// The disarms that still hold at `at`.
    pub fn holding(&self, at: SystemTime) -> impl Iterator<Item = &Disarm> {
        self.list.iter().filter(move |d| d.holds(at))
    }
}

/// The centre's disarms as the inference threads see them: each camera takes its list again
/// when the version moved (one atomic load per frame otherwise).
#[derive(Debug, Default)]
pub struct Board {
    version: AtomicU64,
    disarms: Mutex<HashMap<String, Vec<Disarm>>>,
}

impl Board {
    /// Replace every camera's list; `version` is the count of changes of whoever keeps them.
    pub fn set(&self, version: u64, disarms: &HashMap<String, Vec<Disarm>>) {
        *self.disarms.lock().unwrap_or_else(PoisonError::into_inner) = disarms.clone();
        self.version.store(version, Ordering::Release);
    }

    /// The version set last.
    pub fn version(&self) -> u64 {
        self.version.load(Ordering::Acquire)
    }

    /// `camera`'s list now.
    pub fn of(&self, camera: &str) -> Vec<Disarm> {
        let all = self.disarms.lock().unwrap_or_else(PoisonError::into_inner);
        all.get(camera).cloned().unwrap_or_default()
    }

    /// `camera`'s list when it may have changed since `seen` (which is brought up to date).
    pub fn changed(&self, camera: &str, seen: &mut u64) -> Option<Vec<Disarm>> {
        let v = self.version.load(Ordering::Acquire);
        if v == *seen {
            return None;
        }
        *seen = v;
        Some(self.of(camera))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::rules::lifecycle::Policy;
    use crate::rules::line::LineRule;
    use std::time::Duration;

    /// A disarm of `target` with no `by` or `reason`, since the epoch.
    pub(crate) fn disarm(target: Target, until: Option<SystemTime>, fire: bool) -> Disarm {
        Disarm {
            target,
            until,
            fire,
            by: None,
            reason: None,
            since: SystemTime::UNIX_EPOCH,
        }
    }

    fn set() -> RuleSet {
        let zone = |name: &str| crate::rules::ZoneRule {
            name: name.into(),
            polygon: Vec::new(),
            classes: Vec::new(),
            min_score: 0.5,
            filters: Default::default(),
            intrusion: None,
            loitering: None,
            crowding: None,
            hysteresis: crate::rules::zone::Hysteresis {
                inertia: 1,
                margin: 0.0,
            },
        };
        let line = LineRule {
            name: "gate".into(),
            a: [0.0, 0.5],
            b: [1.0, 0.5],
            direction: Default::default(),
            classes: Vec::new(),
            min_score: 0.5,
            hysteresis: 0.0,
            policy: Policy {
                severity: crate::rules::Severity::Minor,
                quiet: Duration::ZERO,
                update_min_interval: Duration::ZERO,
                heartbeat: Duration::ZERO,
                cooldown: Duration::ZERO,
            },
        };
        RuleSet {
            zones: vec![zone("door"), zone("yard")],
            lines: vec![line],
            ..RuleSet::default()
        }
    }

    #[test]
    fn a_zone_stands_down_until_its_time_and_the_others_stay_armed() {
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
        let until = t0 + Duration::from_secs(60);
        let s = Standing::resolve(
            &set(),
            vec![disarm(Target::Zone("yard".into()), Some(until), false)],
        );
        let intrusion = IncidentType::Intrusion;
        assert!(s.covers(Scope::Zone(1), intrusion, t0));
        assert!(
            !s.covers(Scope::Zone(1), intrusion, until),
            "re-armed at its time"
        );
        assert!(!s.covers(Scope::Zone(0), intrusion, t0));
        assert!(!s.covers(Scope::Line(0), IncidentType::LineCrossing, t0));
        assert_eq!(s.holding(t0).count(), 1);
        assert_eq!(s.holding(until).count(), 0);
    }

    #[test]
    fn fire_stands_down_only_when_a_camera_wide_disarm_says_so() {
        let t0 = SystemTime::UNIX_EPOCH;
        let whole = Standing::resolve(&set(), vec![disarm(Target::Camera, None, false)]);
        assert!(whole.covers(Scope::Zone(0), IncidentType::Crowding, t0));
        assert!(whole.covers(Scope::Line(0), IncidentType::LineCrossing, t0));
        assert!(!whole.covers(Scope::Camera, IncidentType::Fire, t0));
        assert!(!whole.covers(Scope::Camera, IncidentType::Smoke, t0));
        let with_fire = Standing::resolve(&set(), vec![disarm(Target::Camera, None, true)]);
        assert!(with_fire.covers(Scope::Camera, IncidentType::Smoke, t0));
        // A zone or line it does not have is ignored, not an error.
        let stale = Standing::resolve(
            &set(),
            vec![disarm(Target::Zone("gone".into()), None, true)],
        );
        assert!(!stale.covers(Scope::Zone(0), IncidentType::Intrusion, t0));
        assert!(!stale.covers(Scope::Camera, IncidentType::Fire, t0));
    }

    #[test]
    fn labels_read_back() {
        for t in [
            Target::Camera,
            Target::Zone("a:b".into()),
            Target::Line("x".into()),
        ] {
            assert_eq!(Target::parse(&t.label()), Some(t));
        }
        assert_eq!(Target::parse("zone:"), None);
        assert_eq!(Target::parse("door"), None);
    }
}
