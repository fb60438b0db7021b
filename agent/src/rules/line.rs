//! Tripwires. A track crosses a line when its bottom-centre goes from one side to the other
//! through the segment. Each track remembers the side it was last seen clearly on: a point
//! closer to the line than `hysteresis` changes nothing, so an object standing on the line and
//! wobbling in the detector's jitter never counts twice.

use super::lifecycle::Policy;
pub use crate::config::Direction;
use crate::geometry::{self, Point};

/// A line rule as the engine uses it.
#[derive(Debug, Clone, PartialEq)]
pub struct LineRule {
    /// Line name.
    pub name: String,
    /// First point.
    pub a: Point,
    /// Second point.
    pub b: Point,
    /// Which crossings count.
    pub direction: Direction,
    /// Class ids that count.
    pub classes: Vec<u16>,
    /// Least score of the track's detection.
    pub min_score: f32,
    /// Dead band around the line, in normalised units.
    pub hysteresis: f64,
    /// Lifecycle of its incidents.
    pub policy: Policy,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    A,
    B,
}

/// The side each track was last clearly on, for one line.
#[derive(Debug, Clone, Default)]
pub struct Sides {
    tracks: Vec<(u64, Side, Point)>,
}

impl Sides {
    /// Track `track` stands at `foot`: the crossing it just made that `rule` counts, if any
    /// (`"a_to_b"` or `"b_to_a"`).
    pub fn step(&mut self, rule: &LineRule, track: u64, foot: Point) -> Option<&'static str> {
        let d = geometry::side(rule.a, rule.b, foot);
        if d.abs() < rule.hysteresis {
            return None;
        }
        let side = if d < 0.0 { Side::A } else { Side::B };
        let Some(entry) = self.tracks.iter_mut().find(|e| e.0 == track) else {
            self.tracks.push((track, side, foot));
            return None;
        };
        let (was, from) = (entry.1, entry.2);
        *entry = (track, side, foot);
        if was == side || !geometry::segments_cross(from, foot, rule.a, rule.b) {
            return None; // same side, or went round the end of the segment
        }
        let dir = if side == Side::B { "a_to_b" } else { "b_to_a" };
        let counted = match rule.direction {
            Direction::Both => true,
            Direction::AToB => dir == "a_to_b",
            Direction::BToA => dir == "b_to_a",
        };
        counted.then_some(dir)
    }

    /// Forget tracks for which `alive` is false.
    pub fn retain(&mut self, alive: impl Fn(u64) -> bool) {
        self.tracks.retain(|e| alive(e.0));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::Severity;
    use proptest::prelude::*;
    use std::time::Duration;

    fn rule(direction: Direction) -> LineRule {
        LineRule {
            name: "gate".into(),
            a: [0.2, 0.5],
            b: [0.8, 0.5],
            direction,
            classes: vec![0],
            min_score: 0.5,
            hysteresis: 0.02,
            policy: Policy {
                severity: Severity::Minor,
                quiet: Duration::from_secs(5),
                update_min_interval: Duration::from_secs(2),
                heartbeat: Duration::from_secs(30),
                cooldown: Duration::ZERO,
            },
        }
    }

    fn walk(rule: &LineRule, path: &[Point]) -> Vec<&'static str> {
        let mut s = Sides::default();
        path.iter().filter_map(|&p| s.step(rule, 7, p)).collect()
    }

    #[test]
    fn a_crossing_in_each_direction() {
        let down = [[0.5, 0.3], [0.5, 0.45], [0.5, 0.55], [0.5, 0.7]];
        assert_eq!(walk(&rule(Direction::Both), &down), vec!["a_to_b"]);
        assert_eq!(walk(&rule(Direction::AToB), &down), vec!["a_to_b"]);
        assert!(walk(&rule(Direction::BToA), &down).is_empty());
        let up: Vec<Point> = down.iter().rev().copied().collect();
        assert_eq!(walk(&rule(Direction::BToA), &up), vec!["b_to_a"]);
    }

    #[test]
    fn passing_beside_the_segment_is_not_a_crossing() {
        let beside = [[0.9, 0.3], [0.9, 0.7]];
        assert!(walk(&rule(Direction::Both), &beside).is_empty());
    }

    #[test]
    fn there_and_back_counts_twice() {
        let path = [[0.5, 0.3], [0.5, 0.7], [0.5, 0.3]];
        assert_eq!(
            walk(&rule(Direction::Both), &path),
            vec!["a_to_b", "b_to_a"]
        );
    }

    proptest! {
        #[test]
        fn jitter_on_the_line_never_counts(
            xs in proptest::collection::vec(0.25f64..0.75, 2..60),
            ys in proptest::collection::vec(-0.0199f64..0.0199, 2..60),
        ) {
            // Starts clearly above, then wobbles within the dead band: no crossing at all.
            let mut path = vec![[0.5, 0.3]];
            path.extend(xs.iter().zip(&ys).map(|(&x, &y)| [x, 0.5 + y]));
            prop_assert!(walk(&rule(Direction::Both), &path).is_empty());
        }

        #[test]
        fn a_straight_walk_across_counts_once_in_its_direction(
            x0 in 0.25f64..0.75, x1 in 0.25f64..0.75, steps in 2usize..40, downwards: bool,
        ) {
            let (y0, y1) = if downwards { (0.2, 0.8) } else { (0.8, 0.2) };
            let path: Vec<Point> = (0..=steps)
                .map(|i| {
                    let t = i as f64 / steps as f64;
                    [x0 + t * (x1 - x0), y0 + t * (y1 - y0)]
                })
                .collect();
            let want = if downwards { "a_to_b" } else { "b_to_a" };
            prop_assert_eq!(walk(&rule(Direction::Both), &path), vec![want]);
        }
    }
}
