//! Fire and smoke confirmation. A single frame's fire box is not an incident (floodlights,
//! sunsets and red jackets score too): a `fire` or `smoke` incident opens only when at least
//! `min_hits` of the last `window_frames` analysed frames, all within `window`, had one —
//! optionally in the same region (each hit's box overlapping the latest one), optionally
//! growing. Once open it stays open while the class is seen, and closes after its quiet period.
//! No cooldown and no rate limit ever delays the `open`.

use std::collections::VecDeque;
use std::time::Duration;

use super::IncidentType;
use super::lifecycle::Policy;
pub use crate::config::MAX_WINDOW_FRAMES;
use crate::detect::Detection;

/// The fire/smoke rule of one camera.
#[derive(Debug, Clone, PartialEq)]
pub struct FireRule {
    /// Class ids and the incident type each raises (`Fire` or `Smoke`).
    pub classes: Vec<(u16, IncidentType)>,
    /// Least score of a hit.
    pub min_score: f32,
    /// Hits needed among the window's frames (K).
    pub min_hits: u32,
    /// Frames in the window (N).
    pub window_frames: u32,
    /// Longest time the window may span (T).
    pub window: Duration,
    /// Count only hits whose box overlaps the latest hit's.
    pub same_region: bool,
    /// Require the latest hit's box to be at least as large as the window's first counted hit.
    pub growth: bool,
    /// Lifecycle (severity `critical` by default, no cooldown).
    pub policy: Policy,
}

/// The recent frames of one incident type.
#[derive(Debug, Clone, Default)]
pub struct Window {
    /// (time, best box of the kind on that frame).
    frames: VecDeque<(Duration, Option<[f32; 4]>)>,
}

fn overlaps(a: [f32; 4], b: [f32; 4]) -> bool {
    a[0] < b[2] && b[0] < a[2] && a[1] < b[3] && b[1] < a[3]
}

fn area(b: [f32; 4]) -> f32 {
    (b[2] - b[0]).max(0.0) * (b[3] - b[1]).max(0.0)
}

impl Window {
    /// Record the frame at `now` and whether it is confirmed: `hit` is the best box of the kind
    /// on this frame.
    pub fn push(&mut self, rule: &FireRule, now: Duration, hit: Option<&Detection>) -> bool {
        if self.frames.capacity() == 0 {
            self.frames.reserve_exact(MAX_WINDOW_FRAMES as usize + 1);
        }
        self.frames.push_back((now, hit.map(|d| d.bbox)));
        while self.frames.len() > rule.window_frames as usize {
            self.frames.pop_front();
        }
        let Some(latest) = hit.map(|d| d.bbox) else {
            return false;
        };
        let from = now.saturating_sub(rule.window);
        let mut hits = 0;
        let mut first = None;
        for &(t, b) in &self.frames {
            let Some(b) = b else { continue };
            if t < from || (rule.same_region && !overlaps(b, latest)) {
                continue;
            }
            hits += 1;
            first.get_or_insert(b);
        }
        let grew = !rule.growth || first.is_some_and(|f| area(latest) >= area(f));
        hits >= rule.min_hits && grew
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::Severity;

    fn rule() -> FireRule {
        FireRule {
            classes: vec![(1, IncidentType::Fire)],
            min_score: 0.3,
            min_hits: 3,
            window_frames: 5,
            window: Duration::from_secs(10),
            same_region: true,
            growth: false,
            policy: Policy {
                severity: Severity::Critical,
                quiet: Duration::from_secs(30),
                update_min_interval: Duration::from_secs(2),
                heartbeat: Duration::from_secs(30),
                cooldown: Duration::ZERO,
            },
        }
    }

    fn fire(x: f32, size: f32) -> Detection {
        Detection {
            class: 1,
            score: 0.6,
            bbox: [x, 0.5, x + size, 0.5 + size],
        }
    }

    /// Feed `hits` (None: no fire on that frame) at `fps`; return the first confirmed frame.
    fn confirm_at(rule: &FireRule, fps: f64, hits: &[Option<Detection>]) -> Option<usize> {
        let mut w = Window::default();
        hits.iter().enumerate().find_map(|(i, h)| {
            w.push(rule, Duration::from_secs_f64(i as f64 / fps), h.as_ref())
                .then_some(i)
        })
    }

    #[test]
    fn three_of_five_frames_confirm() {
        let f = Some(fire(0.2, 0.1));
        assert_eq!(confirm_at(&rule(), 5.0, &[f, None, f, None, f]), Some(4));
        assert_eq!(
            confirm_at(&rule(), 5.0, &[f, None, None, None, None, f, None, f]),
            None
        );
        assert_eq!(confirm_at(&rule(), 5.0, &[f, f, f]), Some(2));
    }

    #[test]
    fn hits_spread_over_more_than_the_window_time_do_not_confirm() {
        let f = Some(fire(0.2, 0.1));
        // At 0.15 fps three consecutive hits span 13.3 s: the first falls out of the window.
        assert_eq!(confirm_at(&rule(), 0.15, &[f, f, f]), None);
        assert_eq!(confirm_at(&rule(), 0.5, &[f, f, f]), Some(2));
    }

    #[test]
    fn hits_hopping_around_the_frame_do_not_confirm_a_region() {
        let hops = [
            Some(fire(0.0, 0.1)),
            Some(fire(0.4, 0.1)),
            Some(fire(0.8, 0.1)),
        ];
        assert_eq!(confirm_at(&rule(), 5.0, &hops), None);
        let anywhere = FireRule {
            same_region: false,
            ..rule()
        };
        assert_eq!(confirm_at(&anywhere, 5.0, &hops), Some(2));
    }

    #[test]
    fn growth_when_required() {
        let growing = FireRule {
            growth: true,
            ..rule()
        };
        let shrinking = [
            Some(fire(0.2, 0.2)),
            Some(fire(0.2, 0.15)),
            Some(fire(0.2, 0.1)),
        ];
        assert_eq!(confirm_at(&growing, 5.0, &shrinking), None);
        let rising = [
            Some(fire(0.2, 0.1)),
            Some(fire(0.2, 0.15)),
            Some(fire(0.2, 0.2)),
        ];
        assert_eq!(confirm_at(&growing, 5.0, &rising), Some(2));
    }
}
