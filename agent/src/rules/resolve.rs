//! From a camera's configuration and its model card to a [`RuleSet`]: labels become class ids,
//! seconds become durations, defaults come from the card. Every problem is returned, each with
//! the config path it belongs to (`cameras[0].zones[1].classes[0]`).

use std::collections::BTreeMap;
use std::time::Duration;

use super::filter::{ClassFilters, ObjectFilter};
use super::fire::FireRule;
use super::lifecycle::Policy;
use super::line::LineRule;
use super::track::TrackerConfig;
use super::{Crowding, IncidentType, RuleSet, ZoneRule};
use crate::config::{Camera, CameraKind};
use crate::detect::LoadedCard;
use crate::detect::card::IncidentClass;

/// A problem: (config path, message).
pub type Problem = (String, String);

fn secs(s: f64) -> Duration {
    crate::config::duration(s)
}

struct Resolver<'a> {
    card: &'a LoadedCard,
    model: &'a str,
    problems: Vec<Problem>,
}

impl Resolver<'_> {
    fn class(&mut self, path: String, name: &str) -> Option<u16> {
        match self.card.labels.id(name) {
            Some(id) => Some(id as u16),
            None => {
                let some: Vec<&str> = self.card.labels.names().take(5).collect();
                self.problems.push((
                    path,
                    format!(
                        "model \"{}\" has no class \"{name}\" (its labels file {} lists e.g. {})",
                        self.model,
                        self.card.card.labels.display(),
                        some.join(", ")
                    ),
                ));
                None
            }
        }
    }

    fn classes(&mut self, path: &str, names: &[String]) -> Vec<u16> {
        names
            .iter()
            .enumerate()
            .filter_map(|(k, n)| self.class(format!("{path}[{k}]"), n))
            .collect()
    }

    fn filters(&mut self, path: &str, by_label: &BTreeMap<String, ObjectFilter>) -> ClassFilters {
        let mut v = vec![None; self.card.labels.len().max(1)];
        for (label, f) in by_label {
            if let Some(id) = self.class(format!("{path}.{label}"), label) {
                if v.len() <= usize::from(id) {
                    v.resize(usize::from(id) + 1, None);
                }
                v[usize::from(id)] = Some(*f);
            }
        }
        ClassFilters(v)
    }
}

/// Resolve camera `ci` of the config against its model's card.
pub fn resolve(cam: &Camera, ci: usize, card: &LoadedCard) -> Result<RuleSet, Vec<Problem>> {
    let p = format!("cameras[{ci}]");
    let mut r = Resolver {
        card,
        model: &cam.model,
        problems: Vec::new(),
    };
    let threshold = card.card.score_threshold;
    let filters = r.filters(&format!("{p}.filters"), &cam.filters);
    let mut zones = Vec::new();
    for (zi, z) in cam.zones.iter().enumerate() {
        let zp = format!("{p}.zones[{zi}]");
        let policy = |severity| Policy {
            severity,
            quiet: secs(z.quiet_s),
            update_min_interval: secs(z.update_min_interval_s),
            heartbeat: secs(z.heartbeat_s),
            cooldown: secs(z.cooldown_s),
        };
        zones.push(ZoneRule {
            name: z.name.clone(),
            polygon: z.polygon.clone(),
            classes: r.classes(&format!("{zp}.classes"), &z.classes),
            min_score: z.min_score.unwrap_or(threshold),
            filters: r.filters(&format!("{zp}.filters"), &z.filters),
            intrusion: z.intrusion.then(|| policy(z.severity)),
            loitering: z.dwell_s.map(|d| (secs(d), policy(z.loitering_severity))),
            crowding: z.crowd_min_count.map(|n| Crowding {
                min_count: n,
                hold: secs(z.crowd_for_s),
                policy: policy(z.crowding_severity),
            }),
            hysteresis: super::zone::Hysteresis {
                inertia: u8::try_from(z.inertia).unwrap_or(u8::MAX),
                margin: z.exit_margin,
            },
        });
    }
    let mut lines = Vec::new();
    for (li, l) in cam.lines.iter().enumerate() {
        let lp = format!("{p}.lines[{li}]");
        lines.push(LineRule {
            name: l.name.clone(),
            a: l.a,
            b: l.b,
            direction: l.direction,
            classes: r.classes(&format!("{lp}.classes"), &l.classes),
            min_score: l.min_score.unwrap_or(threshold),
            hysteresis: l.hysteresis,
            policy: Policy {
                severity: l.severity,
                quiet: secs(l.quiet_s),
                update_min_interval: secs(l.quiet_s),
                heartbeat: Duration::MAX,
                cooldown: secs(l.cooldown_s),
            },
        });
    }
    let fire_classes: Vec<(u16, IncidentType)> = card
        .card
        .incidents
        .iter()
        .filter_map(|(label, class)| {
            let kind = match class {
                IncidentClass::Fire => IncidentType::Fire,
                IncidentClass::Smoke => IncidentType::Smoke,
                IncidentClass::Security => return None,
            };
            card.labels.id(label).map(|id| (id as u16, kind))
        })
        .collect();
    if cam.kind == CameraKind::Fire && fire_classes.is_empty() {
        r.problems.push((
            format!("{p}.kind"),
            format!(
                "a fire camera needs a model that maps classes to fire or smoke; model \"{}\" ({}) maps none (see [incidents] in its card)",
                cam.model,
                card.card.name
            ),
        ));
    }
    let f = &cam.fire;
    // The card's threshold of a label (its [thresholds] entry, else score_threshold).
    let card_threshold = |id: u16| {
        card.labels
            .name(usize::from(id))
            .and_then(|n| card.card.thresholds.get(n).copied())
            .unwrap_or(threshold)
    };
    let fire = (!fire_classes.is_empty()).then(|| FireRule {
        min_score: f.min_score.unwrap_or_else(|| {
            fire_classes
                .iter()
                .map(|&(id, _)| card_threshold(id))
                .fold(1.0, f32::min)
        }),
        classes: fire_classes,
        min_hits: f.min_hits,
        window_frames: f.window_frames,
        window: secs(f.window_s),
        same_region: f.same_region,
        growth: f.growth,
        policy: Policy {
            severity: f.severity,
            quiet: secs(f.quiet_s),
            update_min_interval: secs(f.update_min_interval_s),
            heartbeat: secs(f.heartbeat_s),
            cooldown: Duration::ZERO,
        },
    });
    // Detections from the weakest score a zone or line of this camera accepts start tracks;
    // weaker ones (down to tracker.low_score, when set) only keep tracks alive.
    let start = zones
        .iter()
        .map(|z| z.min_score)
        .chain(lines.iter().map(|l| l.min_score))
        .fold(threshold, f32::min);
    let t = &cam.tracker;
    let tracker = TrackerConfig {
        iou_min: t.iou_min,
        max_distance: t.max_distance,
        min_hits: t.min_hits,
        max_age: secs(t.max_age_s),
        high_score: start,
    };
    let floor = [Some(start), t.low_score, fire.as_ref().map(|f| f.min_score)]
        .into_iter()
        .flatten()
        .fold(1.0, f32::min);
    let set = RuleSet {
        filters,
        masks: cam.masks.iter().map(|m| m.polygon.clone()).collect(),
        zones,
        lines,
        fire,
        tracker,
        detector_floor: floor,
    };
    if r.problems.is_empty() {
        Ok(set)
    } else {
        Err(r.problems)
    }
}
