//! Rule engine tests on scripted detections and a simulated clock.

use std::time::{Duration, SystemTime};

use super::filter::{ClassFilters, ObjectFilter};
use super::fire::FireRule;
use super::lifecycle::Policy;
use super::line::{Direction, LineRule};
use super::track::TrackerConfig;
use super::*;
use crate::clock::{Clock, ManualClock};

const PERSON: u16 = 0;
const CAR: u16 = 2;
const FIRE: u16 = 1;

fn policy(severity: Severity) -> Policy {
    Policy {
        severity,
        quiet: Duration::from_secs(10),
        update_min_interval: Duration::from_secs(2),
        heartbeat: Duration::from_secs(30),
        cooldown: Duration::ZERO,
    }
}

/// The lower half of the frame.
fn lawn() -> ZoneRule {
    ZoneRule {
        name: "lawn".into(),
        polygon: vec![[0.0, 0.5], [1.0, 0.5], [1.0, 1.0], [0.0, 1.0]],
        classes: vec![PERSON],
        min_score: 0.5,
        filters: ClassFilters::default(),
        intrusion: Some(policy(Severity::Major)),
        loitering: None,
        crowding: None,
        // Membership at once: the tests below script exact frames.
        hysteresis: zone::Hysteresis {
            inertia: 1,
            margin: 0.0,
        },
    }
}

fn set(zones: Vec<ZoneRule>) -> RuleSet {
    RuleSet {
        zones,
        tracker: TrackerConfig {
            min_hits: 2,
            ..TrackerConfig::default()
        },
        detector_floor: 0.5,
        ..RuleSet::default()
    }
}

/// A person standing with feet at (x, foot_y).
fn person(x: f32, foot_y: f32) -> Detection {
    Detection {
        class: PERSON,
        score: 0.8,
        bbox: [x - 0.03, foot_y - 0.16, x + 0.03, foot_y],
    }
}

/// Drives rules on a simulated clock at `fps`.
struct Sim {
    rules: CameraRules,
    clock: ManualClock,
    step: Duration,
    log: Vec<IncidentEvent>,
}

impl Sim {
    fn new(set: RuleSet, fps: f64) -> Self {
        Sim {
            rules: CameraRules::new(set),
            clock: ManualClock::new(SystemTime::UNIX_EPOCH),
            step: Duration::from_secs_f64(1.0 / fps),
            log: Vec::new(),
        }
    }

    /// One analysed frame; returns the events it produced as (type, state).
    fn frame(&mut self, dets: &[Detection]) -> Vec<(&'static str, &'static str)> {
        let mut out = Vec::new();
        self.rules.evaluate(
            self.clock.monotonic(),
            self.clock.wall(),
            16.0 / 9.0,
            dets,
            &mut out,
        );
        self.clock.advance(self.step);
        let r = out
            .iter()
            .map(|e| (e.kind.as_str(), e.state.as_str()))
            .collect();
        self.log.extend(out);
        r
    }

    fn frames(&mut self, n: usize, dets: &[Detection]) {
        for _ in 0..n {
            self.frame(dets);
        }
    }

    fn count(&self, kind: &str, state: &str) -> usize {
        self.log
            .iter()
            .filter(|e| e.kind.as_str() == kind && e.state.as_str() == state)
            .count()
    }
}

#[test]
fn intrusion_opens_once_per_track_after_confirmation_and_closes_after_quiet() {
    let mut s = Sim::new(set(vec![lawn()]), 5.0);
    assert!(s.frame(&[person(0.3, 0.8)]).is_empty(), "tentative track");
    assert_eq!(s.frame(&[person(0.3, 0.8)]), vec![("intrusion", "open")]);
    s.frames(20, &[person(0.3, 0.8)]);
    assert_eq!(
        s.count("intrusion", "open"),
        1,
        "no flapping while it stays"
    );
    // Gone: the track survives max_age, the incident closes 10 s after the last sighting.
    s.frames(49, &[]);
    assert_eq!(s.count("intrusion", "close"), 0);
    s.frames(2, &[]);
    assert_eq!(s.count("intrusion", "close"), 1);
    let ids: std::collections::HashSet<_> = s.log.iter().map(|e| e.id).collect();
    assert_eq!(ids.len(), 1, "every event of the incident has one id");
    assert_eq!(s.log[0].track, Some(1));
    assert_eq!(s.log[0].severity, Severity::Major);
}

#[test]
fn two_people_are_two_incidents_and_other_classes_scores_and_places_none() {
    let mut s = Sim::new(set(vec![lawn()]), 5.0);
    let car = Detection {
        class: CAR,
        ..person(0.7, 0.9)
    };
    let weak = Detection {
        score: 0.4,
        ..person(0.5, 0.9)
    };
    let outside = person(0.9, 0.3);
    s.frames(3, &[person(0.2, 0.8), person(0.4, 0.8), car, weak, outside]);
    assert_eq!(s.count("intrusion", "open"), 2);
    let tracks: Vec<Option<u64>> = s.log.iter().map(|e| e.track).collect();
    assert_ne!(tracks[0], tracks[1]);
}

#[test]
fn updates_are_rate_bounded_and_heartbeats_come() {
    let mut s = Sim::new(set(vec![lawn()]), 5.0);
    let mut p = Detection {
        score: 0.5,
        ..person(0.3, 0.8)
    };
    s.frames(2, &[p]);
    // The score climbs every frame: updates at most every 2 s.
    for i in 0..50 {
        p.score = 0.5 + 0.01 * i as f32;
        s.frame(&[p]);
    }
    let updates = s.count("intrusion", "update");
    assert!((4..=5).contains(&updates), "{updates} updates in 10 s");
    // Steady for 40 s: heartbeat updates every 30 s.
    let before = s.count("intrusion", "update");
    s.frames(200, &[p]);
    assert_eq!(s.count("intrusion", "update") - before, 1);
}

#[test]
fn cooldown_delays_a_reopen_of_the_same_track() {
    let mut z = lawn();
    z.intrusion = Some(Policy {
        quiet: Duration::from_secs(1),
        cooldown: Duration::from_secs(20),
        ..policy(Severity::Major)
    });
    let mut s = Sim::new(set(vec![z]), 5.0);
    s.frames(3, &[person(0.3, 0.8)]);
    // Steps out of the zone (still tracked) for 2 s: closes.
    s.frames(10, &[person(0.3, 0.45)]);
    assert_eq!(s.count("intrusion", "close"), 1);
    // Back in at once: cooling down, no incident.
    s.frames(25, &[person(0.3, 0.8)]);
    assert_eq!(s.count("intrusion", "open"), 1);
    // Still inside after the cooldown: opens again.
    s.frames(100, &[person(0.3, 0.8)]);
    assert_eq!(s.count("intrusion", "open"), 2);
}

#[test]
fn loitering_opens_after_the_dwell_time() {
    let mut z = lawn();
    z.intrusion = None;
    z.loitering = Some((Duration::from_secs(20), policy(Severity::Minor)));
    let mut s = Sim::new(set(vec![z]), 2.0);
    s.frames(40, &[person(0.3, 0.8)]); // 19.5 s
    assert_eq!(s.count("loitering", "open"), 0);
    s.frames(2, &[person(0.3, 0.8)]);
    assert_eq!(s.count("loitering", "open"), 1);
    let e = s
        .log
        .iter()
        .find(|e| e.kind == IncidentType::Loitering)
        .expect("loitering");
    assert!(e.facts.dwell.is_some_and(|d| d >= Duration::from_secs(20)));
    assert_eq!(e.severity, Severity::Minor);
}

#[test]
fn crowding_needs_the_count_for_the_hold_time() {
    let mut z = lawn();
    z.intrusion = None;
    z.crowding = Some(Crowding {
        min_count: 3,
        hold: Duration::from_secs(5),
        policy: Policy {
            quiet: Duration::from_secs(3),
            ..policy(Severity::Minor)
        },
    });
    let mut s = Sim::new(set(vec![z]), 5.0);
    let three = [person(0.2, 0.8), person(0.5, 0.8), person(0.8, 0.8)];
    s.frames(20, &three[..2]);
    assert_eq!(s.count("crowding", "open"), 0, "two are not a crowd");
    s.frames(20, &three); // 4 s with three
    assert_eq!(s.count("crowding", "open"), 0);
    s.frames(10, &three);
    assert_eq!(s.count("crowding", "open"), 1);
    let open = s
        .log
        .iter()
        .find(|e| e.kind == IncidentType::Crowding)
        .expect("crowding");
    assert_eq!(open.facts.count, Some(3));
    assert_eq!(open.track, None);
    s.frames(20, &three[..1]);
    assert_eq!(s.count("crowding", "close"), 1);
}

fn gate(direction: Direction) -> LineRule {
    LineRule {
        name: "gate".into(),
        a: [0.1, 0.6],
        b: [0.9, 0.6],
        direction,
        classes: vec![PERSON],
        min_score: 0.5,
        hysteresis: 0.01,
        policy: Policy {
            quiet: Duration::from_secs(5),
            update_min_interval: Duration::from_secs(5),
            heartbeat: Duration::MAX,
            ..policy(Severity::Minor)
        },
    }
}

#[test]
fn a_walk_across_the_line_is_one_crossing_in_its_direction() {
    let mut rs = set(vec![]);
    rs.lines = vec![gate(Direction::AToB)];
    let mut s = Sim::new(rs, 5.0);
    for i in 0..30 {
        s.frame(&[person(0.5, 0.3 + 0.02 * i as f32)]); // walks down across y = 0.6
    }
    assert_eq!(s.count("line_crossing", "open"), 1);
    let e = &s.log[0];
    assert_eq!(e.facts.direction, Some("a_to_b"));
    assert_eq!(e.scope, Scope::Line(0));
    // Walking back up is b_to_a: not watched.
    for i in 0..30 {
        s.frame(&[person(0.5, 0.88 - 0.02 * i as f32)]);
    }
    assert_eq!(s.count("line_crossing", "open"), 1);
}

#[test]
fn wobbling_on_the_line_does_not_count_again() {
    let mut rs = set(vec![]);
    rs.lines = vec![gate(Direction::Both)];
    let mut s = Sim::new(rs, 5.0);
    for i in 0..10 {
        s.frame(&[person(0.5, 0.4 + 0.02 * i as f32)]); // arrives at the line
    }
    for i in 0..100 {
        let wobble = if i % 2 == 0 { 0.008 } else { -0.008 };
        s.frame(&[person(0.5, 0.6 + wobble)]);
    }
    assert_eq!(s.count("line_crossing", "open"), 0);
}

fn fire_set() -> RuleSet {
    RuleSet {
        fire: Some(FireRule {
            classes: vec![(FIRE, IncidentType::Fire)],
            min_score: 0.3,
            min_hits: 3,
            window_frames: 5,
            window: Duration::from_secs(10),
            same_region: true,
            growth: false,
            policy: Policy {
                quiet: Duration::from_secs(30),
                cooldown: Duration::ZERO,
                ..policy(Severity::Critical)
            },
        }),
        ..set(vec![])
    }
}

fn flame() -> Detection {
    Detection {
        class: FIRE,
        score: 0.45,
        bbox: [0.4, 0.4, 0.5, 0.55],
    }
}

#[test]
fn fire_needs_confirmation_then_opens_exactly_once_as_critical_and_closes_after_quiet() {
    let mut s = Sim::new(fire_set(), 5.0);
    // Single flickers never confirm.
    for _ in 0..10 {
        s.frame(&[flame()]);
        s.frames(4, &[]);
    }
    assert_eq!(s.count("fire", "open"), 0);
    // A real fire: seen on most frames for a minute.
    let burning = [flame()];
    for i in 0..300 {
        s.frame(if i % 4 == 3 { &[] } else { &burning });
    }
    assert_eq!(s.count("fire", "open"), 1);
    let open = s
        .log
        .iter()
        .find(|e| e.kind == IncidentType::Fire)
        .expect("fire");
    assert_eq!(open.severity, Severity::Critical);
    assert_eq!(open.scope, Scope::Camera);
    // The last flame was on frame 298 of the burst; 29.8 s later it is still open.
    s.frames(148, &[]);
    assert_eq!(s.count("fire", "close"), 0);
    s.frames(2, &[]);
    assert_eq!(s.count("fire", "close"), 1);
    // It flares up again right after: no cooldown, a new incident at the third hit.
    assert_eq!(s.frame(&[flame()]), vec![]);
    s.frame(&[flame()]);
    assert_eq!(s.frame(&[flame()]), vec![("fire", "open")]);
}

#[test]
fn a_camera_cooldown_never_delays_fire() {
    // Zones with long cooldowns on the same camera change nothing for fire.
    let mut z = lawn();
    z.intrusion = Some(Policy {
        cooldown: Duration::from_secs(3600),
        ..policy(Severity::Major)
    });
    let mut rs = fire_set();
    rs.zones = vec![z];
    let mut s = Sim::new(rs, 5.0);
    s.frames(2, &[flame()]);
    assert_eq!(s.frame(&[flame()]), vec![("fire", "open")]);
}

#[test]
fn masks_and_filters_remove_detections_before_tracking() {
    let mut rs = set(vec![lawn()]);
    rs.masks = vec![vec![[0.0, 0.5], [0.5, 0.5], [0.5, 1.0], [0.0, 1.0]]];
    let mut filters = vec![None; 3];
    filters[usize::from(PERSON)] = Some(ObjectFilter {
        min_area: Some(0.005),
        ..ObjectFilter::default()
    });
    rs.filters = ClassFilters(filters);
    let mut s = Sim::new(rs, 5.0);
    let tiny = Detection {
        bbox: [0.7, 0.78, 0.71, 0.8],
        ..person(0.7, 0.8)
    };
    s.frames(5, &[person(0.3, 0.8), tiny]);
    assert!(s.log.is_empty(), "{:?}", s.log);
    s.frames(2, &[person(0.7, 0.8)]);
    assert_eq!(s.count("intrusion", "open"), 1);
}

#[test]
fn a_person_walking_along_a_zone_edge_is_one_intrusion_with_hysteresis() {
    // In, then 12 s along the edge with the feet just above it (0.47 against 0.5), then in.
    let walk = |s: &mut Sim| {
        s.frames(10, &[person(0.3, 0.6)]);
        for i in 0..60 {
            s.frame(&[person(0.3 + i as f32 * 0.005, 0.47)]);
        }
        s.frames(10, &[person(0.6, 0.6)]);
    };
    let mut plain = Sim::new(set(vec![lawn()]), 5.0);
    walk(&mut plain);
    assert_eq!(
        plain.count("intrusion", "open"),
        2,
        "without hysteresis: closed and reopened"
    );
    let mut zone = lawn();
    zone.hysteresis = zone::Hysteresis {
        inertia: 3,
        margin: 0.05,
    };
    let mut s = Sim::new(set(vec![zone.clone()]), 5.0);
    walk(&mut s);
    assert_eq!(s.count("intrusion", "open"), 1);
    assert_eq!(s.count("intrusion", "close"), 0);
    // Leaving for real (feet well above the margin) still closes after the quiet period.
    s.frames(60, &[person(0.6, 0.3)]);
    assert_eq!(s.count("intrusion", "close"), 1);
    // Entering takes the inertia: the open comes on the third frame inside.
    let mut s = Sim::new(set(vec![zone]), 5.0);
    s.frames(2, &[person(0.3, 0.46)]);
    assert!(s.frame(&[person(0.3, 0.52)]).is_empty());
    assert!(s.frame(&[person(0.3, 0.52)]).is_empty());
    assert_eq!(s.frame(&[person(0.3, 0.52)]), vec![("intrusion", "open")]);
}

use standdown::tests::disarm;

#[test]
fn a_disarmed_zone_opens_nothing_until_its_time_and_then_opens_as_usual() {
    let mut s = Sim::new(set(vec![lawn()]), 5.0);
    let until = SystemTime::UNIX_EPOCH + Duration::from_secs(20);
    let lawn = standdown::Target::Zone("lawn".into());
    s.rules.stand_down(vec![disarm(lawn, Some(until), false)]);
    s.frames(99, &[person(0.3, 0.8)]);
    assert_eq!(s.count("intrusion", "open"), 0, "stood down for 20 s");
    assert_eq!(s.rules.zone_counts(), &[1], "the zone still counts");
    s.frames(2, &[person(0.3, 0.8)]);
    assert_eq!(s.count("intrusion", "open"), 1, "armed again at its time");
}

#[test]
fn a_camera_wide_disarm_leaves_fire_armed_unless_it_says_fire() {
    let burning = [flame()];
    let mut s = Sim::new(fire_set(), 5.0);
    s.rules
        .stand_down(vec![disarm(standdown::Target::Camera, None, false)]);
    s.frames(20, &burning);
    assert_eq!(
        s.count("fire", "open"),
        1,
        "fire is never stood down silently"
    );
    let mut s = Sim::new(fire_set(), 5.0);
    s.rules
        .stand_down(vec![disarm(standdown::Target::Camera, None, true)]);
    s.frames(20, &burning);
    assert_eq!(s.count("fire", "open"), 0);
    // Armed again (an empty list): the next confirmation opens it.
    s.rules.stand_down(Vec::new());
    s.frames(5, &burning);
    assert_eq!(s.count("fire", "open"), 1);
}

#[test]
fn an_ack_is_carried_by_later_events_and_slows_only_a_security_heartbeat() {
    let mut s = Sim::new(set(vec![lawn()]), 5.0);
    s.frames(2, &[person(0.3, 0.8)]);
    let id = s.log[0].id;
    let ack = std::sync::Arc::new(Ack {
        by: Some("op7".into()),
        note: None,
        at: SystemTime::UNIX_EPOCH,
    });
    assert_eq!(
        s.rules.ack(uuid::Uuid::now_v7(), ack.clone()),
        None,
        "not open"
    );
    assert_eq!(s.rules.ack(id, ack.clone()), Some(IncidentType::Intrusion));
    // Heartbeat 30 s, 4 times slower once acknowledged: no update within 119 s of standing still.
    s.frames(5 * 119, &[person(0.3, 0.8)]);
    assert_eq!(s.count("intrusion", "update"), 0);
    s.frames(10, &[person(0.3, 0.8)]);
    assert_eq!(s.count("intrusion", "update"), 1);
    let update = s.log.iter().find(|e| e.state == EventState::Update);
    assert_eq!(update.and_then(|e| e.ack.as_ref()), Some(&ack));
    // Fire: annotated, never quietened.
    let mut f = Sim::new(fire_set(), 5.0);
    f.frames(5, &[flame()]);
    let fire = f.log[0].id;
    assert_eq!(f.rules.ack(fire, ack), Some(IncidentType::Fire));
    f.frames(5 * 31, &[flame()]);
    assert_eq!(f.count("fire", "update"), 1, "its 30 s heartbeat");
    assert!(f.log.iter().skip(1).all(|e| e.ack.is_some()));
}
