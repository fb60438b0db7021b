//! Zone membership with hysteresis: whether each track counts as inside each zone. A track's
//! membership changes only after `inertia` consecutive analysed frames say so, and a track
//! inside stays inside while its anchor (bottom centre) is within `margin` of the zone's edge.
//! A person walking along an edge, or a box that jitters across it, is then one incident,
//! not a close and a reopen every few seconds. Pure: the rules pass in what each frame shows.

use std::time::Duration;

/// How the membership of one zone changes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Hysteresis {
    /// Consecutive frames needed to enter or to leave (1: at once).
    pub inertia: u8,
    /// A member stays inside while its anchor is this close to the edge (normalised).
    pub margin: f64,
}

/// What one frame shows of a track against a zone.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Seen {
    /// It qualifies (class, score, size) and its anchor is inside the polygon.
    pub inside: bool,
    /// It qualifies and its anchor is within the margin outside the polygon.
    pub near: bool,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    zone: usize,
    track: u64,
    inside: bool,
    streak: u8,
    last: Duration,
}

/// Entries of tracks not seen for this long are forgotten (track ids are never reused).
const FORGET_AFTER: Duration = Duration::from_secs(60);

/// The membership of every (zone, track) seen lately.
#[derive(Debug, Clone)]
pub struct Membership {
    entries: Vec<Entry>,
}

impl Default for Membership {
    fn default() -> Self {
        Membership {
            entries: Vec::with_capacity(64),
        }
    }
}

impl Membership {
    /// Track `track` seen against zone `zone` at `now`: whether it counts as inside.
    pub fn update(
        &mut self,
        zone: usize,
        track: u64,
        seen: Seen,
        h: Hysteresis,
        now: Duration,
    ) -> bool {
        let pos = self
            .entries
            .iter()
            .position(|e| e.zone == zone && e.track == track);
        let e = match pos {
            Some(i) => &mut self.entries[i],
            None => {
                self.entries.push(Entry {
                    zone,
                    track,
                    inside: false,
                    streak: 0,
                    last: now,
                });
                let last = self.entries.len() - 1;
                &mut self.entries[last]
            }
        };
        e.last = now;
        let wants = if e.inside {
            seen.inside || seen.near
        } else {
            seen.inside
        };
        if wants == e.inside {
            e.streak = 0;
        } else {
            e.streak = e.streak.saturating_add(1);
            if e.streak >= h.inertia.max(1) {
                e.inside = wants;
                e.streak = 0;
            }
        }
        e.inside
    }

    /// Forget tracks not seen for a minute.
    pub fn forget_old(&mut self, now: Duration) {
        self.entries
            .retain(|e| now.saturating_sub(e.last) <= FORGET_AFTER);
    }

    /// Entries kept (for tests).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no entry is kept.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: Hysteresis = Hysteresis {
        inertia: 3,
        margin: 0.05,
    };
    const IN: Seen = Seen {
        inside: true,
        near: false,
    };
    const NEAR: Seen = Seen {
        inside: false,
        near: true,
    };
    const OUT: Seen = Seen {
        inside: false,
        near: false,
    };

    fn run(m: &mut Membership, frames: &[Seen], h: Hysteresis) -> Vec<bool> {
        frames
            .iter()
            .enumerate()
            .map(|(i, s)| m.update(0, 7, *s, h, Duration::from_millis(200 * i as u64)))
            .collect()
    }

    #[test]
    fn entering_and_leaving_take_inertia_frames() {
        let mut m = Membership::default();
        let got = run(&mut m, &[IN, IN, IN, IN, OUT, OUT, OUT, OUT], H);
        assert_eq!(got, [false, false, true, true, true, true, false, false]);
    }

    #[test]
    fn a_jitter_across_the_edge_changes_nothing() {
        let mut m = Membership::default();
        let got = run(&mut m, &[IN, IN, IN, OUT, IN, OUT, OUT, IN, IN], H);
        assert!(got[2..].iter().all(|&x| x), "{got:?}");
        let mut m = Membership::default();
        let got = run(&mut m, &[OUT, IN, OUT, IN, IN, OUT], H);
        assert!(
            got.iter().all(|&x| !x),
            "a brush past the edge is not an entry: {got:?}"
        );
    }

    #[test]
    fn a_member_walking_along_the_edge_stays_inside_but_does_not_enter_from_near() {
        let mut m = Membership::default();
        let got = run(&mut m, &[IN, IN, IN, NEAR, NEAR, NEAR, NEAR, NEAR], H);
        assert!(got[2..].iter().all(|&x| x), "{got:?}");
        let mut m = Membership::default();
        let got = run(&mut m, &[NEAR, NEAR, NEAR, NEAR], H);
        assert!(got.iter().all(|&x| !x));
    }

    #[test]
    fn inertia_one_is_at_once_and_zones_and_tracks_are_apart() {
        let once = Hysteresis {
            inertia: 1,
            margin: 0.0,
        };
        let mut m = Membership::default();
        assert_eq!(run(&mut m, &[IN, OUT, IN], once), [true, false, true]);
        assert!(!m.update(1, 7, IN, H, Duration::ZERO), "zone 1 is its own");
        assert!(!m.update(0, 8, IN, H, Duration::ZERO), "track 8 is its own");
        assert_eq!(m.len(), 3);
        m.forget_old(Duration::from_secs(61));
        assert!(m.is_empty());
    }
}
