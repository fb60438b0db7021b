//! Multi-object tracking: detections of successive analysed frames of one camera in, objects
//! with stable `track_id`s out. Pure code, no clock reads: the caller passes each frame's
//! monotonic time, so tests script any timeline (1–10 fps, gaps, occlusions).
//!
//! ByteTrack-style association with a constant-velocity prediction:
//! - every track predicts where its box is now (last box moved by its velocity, an alpha-beta
//!   filter of its centre, times the time since it was last seen);
//! - stage 1 matches detections scoring at least `high_score` to tracks of the same class,
//!   greedily by similarity: IoU with the predicted box when it reaches `iou_min`, else the
//!   distance between centres in box heights when it is within `max_distance` (at 1 fps a
//!   walking person moves more than its own width, so IoU alone would lose it);
//! - stage 2 lets the weaker detections (below `high_score`) keep *existing* tracks alive,
//!   but never start one;
//! - unmatched strong detections start tentative tracks; a track is confirmed after `min_hits`
//!   matched frames; a tentative track that misses a frame is dropped; a confirmed one survives
//!   `max_age` without a match (occlusion), then is dropped.
//!
//! Memory is reused across frames: no allocation per frame once warm.

use std::time::Duration;

use crate::detect::Detection;
use crate::detect::nms::iou;

/// Tracker settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrackerConfig {
    /// Least IoU between a predicted box and a detection for an overlap match.
    pub iou_min: f32,
    /// Farthest a detection's centre may be from a prediction's, in box heights, for a
    /// distance match when the boxes do not overlap enough.
    pub max_distance: f32,
    /// Matched frames before a track is confirmed (reported to the rules).
    pub min_hits: u32,
    /// How long a confirmed track survives without a match.
    pub max_age: Duration,
    /// Detections from this score up may start tracks; weaker ones only extend them.
    pub high_score: f32,
}

impl Default for TrackerConfig {
    fn default() -> Self {
        TrackerConfig {
            iou_min: 0.3,
            max_distance: 1.0,
            min_hits: 2,
            max_age: Duration::from_secs(2),
            high_score: 0.0,
        }
    }
}

/// One tracked object.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Track {
    /// Stable id, unique per camera for the life of the process (from 1).
    pub id: u64,
    /// Class id.
    pub class: u16,
    /// The last matched detection's box (normalised frame coordinates).
    pub bbox: [f32; 4],
    /// The last matched detection's score.
    pub score: f32,
    /// Best score over the track's life.
    pub best_score: f32,
    /// Matched frames.
    pub hits: u32,
    /// Whether it has been matched on `min_hits` frames.
    pub confirmed: bool,
    /// Time of the first match.
    pub first_seen: Duration,
    /// Time of the last match.
    pub last_seen: Duration,
    /// Whether it was matched on the latest frame.
    pub seen_now: bool,
    /// Centre velocity, normalised units per second.
    velocity: [f32; 2],
}

impl Track {
    /// The box predicted at time `now`.
    pub fn predicted(&self, now: Duration) -> [f32; 4] {
        let dt = now.saturating_sub(self.last_seen).as_secs_f32();
        let (dx, dy) = (self.velocity[0] * dt, self.velocity[1] * dt);
        let b = self.bbox;
        [b[0] + dx, b[1] + dy, b[2] + dx, b[3] + dy]
    }
}

fn centre(b: [f32; 4]) -> [f32; 2] {
    [(b[0] + b[2]) / 2.0, (b[1] + b[3]) / 2.0]
}

/// Weight of a new velocity measurement in the alpha-beta filter.
const VELOCITY_GAIN: f32 = 0.5;

/// The tracker of one camera.
#[derive(Debug, Clone, Default)]
pub struct Tracker {
    config: TrackerConfig,
    tracks: Vec<Track>,
    next_id: u64,
    /// Scratch: candidate (similarity, track, detection) pairs.
    pairs: Vec<(f32, usize, usize)>,
    /// Scratch: whether each detection of the frame is taken.
    taken: Vec<bool>,
}

impl Tracker {
    /// An empty tracker.
    pub fn new(config: TrackerConfig) -> Self {
        Tracker {
            config,
            tracks: Vec::with_capacity(64),
            next_id: 1,
            pairs: Vec::with_capacity(256),
            taken: Vec::with_capacity(128),
        }
    }

    /// Every live track, confirmed or not.
    pub fn tracks(&self) -> &[Track] {
        &self.tracks
    }

    /// Confirmed tracks matched on the latest frame: the objects the rules see.
    pub fn visible(&self) -> impl Iterator<Item = &Track> {
        self.tracks.iter().filter(|t| t.confirmed && t.seen_now)
    }

    /// Feed the detections of the frame analysed at `now`.
    pub fn update(&mut self, now: Duration, dets: &[Detection]) {
        for t in &mut self.tracks {
            t.seen_now = false;
        }
        self.taken.clear();
        self.taken.resize(dets.len(), false);
        let high = self.config.high_score;
        self.associate(now, dets, |d| d.score >= high);
        self.associate(now, dets, |d| d.score < high);
        // Unmatched strong detections start tentative tracks.
        for (j, d) in dets.iter().enumerate() {
            if !self.taken[j] && d.score >= high {
                let id = self.next_id;
                self.next_id += 1;
                self.tracks.push(Track {
                    id,
                    class: d.class,
                    bbox: d.bbox,
                    score: d.score,
                    best_score: d.score,
                    hits: 1,
                    confirmed: self.config.min_hits <= 1,
                    first_seen: now,
                    last_seen: now,
                    seen_now: true,
                    velocity: [0.0, 0.0],
                });
            }
        }
        let max_age = self.config.max_age;
        self.tracks
            .retain(|t| t.seen_now || (t.confirmed && now.saturating_sub(t.last_seen) <= max_age));
    }

    /// Match the detections selected by `eligible` to the tracks not matched yet.
    fn associate(
        &mut self,
        now: Duration,
        dets: &[Detection],
        eligible: impl Fn(&Detection) -> bool,
    ) {
        let cfg = self.config;
        self.pairs.clear();
        for (i, t) in self.tracks.iter().enumerate() {
            if t.seen_now {
                continue;
            }
            let pred = t.predicted(now);
            for (j, d) in dets.iter().enumerate() {
                if self.taken[j] || d.class != t.class || !eligible(d) {
                    continue;
                }
                let overlap = iou(pred, d.bbox);
                let sim = if overlap >= cfg.iou_min {
                    1.0 + overlap
                } else {
                    let (a, b) = (centre(pred), centre(d.bbox));
                    let h = ((pred[3] - pred[1]) + (d.bbox[3] - d.bbox[1])) / 2.0;
                    let dist = ((a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2)).sqrt() / h.max(1e-3);
                    if dist > cfg.max_distance {
                        continue;
                    }
                    1.0 - dist / cfg.max_distance.max(1e-3)
                };
                self.pairs.push((sim, i, j));
            }
        }
        // Best pairs first; ties broken by index so the result does not depend on sort order.
        self.pairs
            .sort_unstable_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
        for k in 0..self.pairs.len() {
            let (_, i, j) = self.pairs[k];
            if self.taken[j] || self.tracks[i].seen_now {
                continue;
            }
            self.taken[j] = true;
            let d = dets[j];
            let t = &mut self.tracks[i];
            let dt = now.saturating_sub(t.last_seen).as_secs_f32();
            if dt > 0.0 {
                let (old, new) = (centre(t.bbox), centre(d.bbox));
                for axis in 0..2 {
                    let measured = (new[axis] - old[axis]) / dt;
                    t.velocity[axis] += VELOCITY_GAIN * (measured - t.velocity[axis]);
                }
            }
            t.bbox = d.bbox;
            t.score = d.score;
            t.best_score = t.best_score.max(d.score);
            t.hits += 1;
            t.confirmed |= t.hits >= cfg.min_hits;
            t.last_seen = now;
            t.seen_now = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PERSON: u16 = 0;
    const CAR: u16 = 2;

    fn det(class: u16, cx: f32, cy: f32) -> Detection {
        Detection {
            class,
            score: 0.8,
            bbox: [cx - 0.03, cy - 0.08, cx + 0.03, cy + 0.08],
        }
    }

    fn at(fps: f32, frame: u32) -> Duration {
        Duration::from_secs_f32(frame as f32 / fps)
    }

    /// The ids of the visible tracks, by x position of their box.
    fn ids_by_x(t: &Tracker) -> Vec<(u64, f32)> {
        let mut v: Vec<(u64, f32)> = t.visible().map(|t| (t.id, t.bbox[0])).collect();
        v.sort_by(|a, b| a.1.total_cmp(&b.1));
        v
    }

    #[test]
    fn a_walker_keeps_one_id_at_1_5_and_10_fps() {
        for fps in [1.0f32, 5.0, 10.0] {
            let mut t = Tracker::new(TrackerConfig::default());
            // 0.12 of the frame width per second: at 1 fps that is twice its box width.
            for f in 0..(10.0 * fps) as u32 {
                let x = 0.1 + 0.12 * f as f32 / fps;
                t.update(at(fps, f), &[det(PERSON, x, 0.5)]);
            }
            let ids: Vec<u64> = t.tracks().iter().map(|t| t.id).collect();
            assert_eq!(ids, vec![1], "at {fps} fps");
        }
    }

    #[test]
    fn confirmation_needs_min_hits() {
        let mut t = Tracker::new(TrackerConfig {
            min_hits: 3,
            ..TrackerConfig::default()
        });
        t.update(at(5.0, 0), &[det(PERSON, 0.5, 0.5)]);
        t.update(at(5.0, 1), &[det(PERSON, 0.5, 0.5)]);
        assert_eq!(t.visible().count(), 0);
        t.update(at(5.0, 2), &[det(PERSON, 0.5, 0.5)]);
        assert_eq!(t.visible().count(), 1);
    }

    #[test]
    fn a_tentative_track_that_misses_a_frame_is_dropped() {
        let mut t = Tracker::new(TrackerConfig {
            min_hits: 3,
            ..TrackerConfig::default()
        });
        t.update(at(5.0, 0), &[det(PERSON, 0.5, 0.5)]);
        t.update(at(5.0, 1), &[]);
        assert!(t.tracks().is_empty());
        t.update(at(5.0, 2), &[det(PERSON, 0.5, 0.5)]);
        assert_eq!(t.tracks()[0].id, 2);
    }

    #[test]
    fn crossing_paths_keep_their_ids() {
        let fps = 5.0;
        let mut t = Tracker::new(TrackerConfig::default());
        let mut left_to_right = None;
        for f in 0..25 {
            // Two people walk towards each other on the same line and pass at frame 12.
            let s = f as f32 / fps;
            let a = det(PERSON, 0.2 + 0.12 * s, 0.5);
            let b = det(PERSON, 0.8 - 0.12 * s, 0.5);
            t.update(at(fps, f), &[a, b]);
            let v = ids_by_x(&t);
            if f == 3 {
                left_to_right = Some(v[0].0);
            }
            if f == 24 {
                // After passing, the one that started on the left is on the right.
                assert_eq!(v.len(), 2);
                assert_eq!(Some(v[1].0), left_to_right, "{v:?}");
            }
        }
        assert_eq!(t.tracks().len(), 2, "no new tracks at the crossing");
        assert!(t.tracks().iter().all(|t| t.id <= 2));
    }

    #[test]
    fn an_occlusion_shorter_than_max_age_keeps_the_id() {
        let fps = 5.0;
        let mut t = Tracker::new(TrackerConfig::default());
        let mut f = 0;
        let mut step = |t: &mut Tracker, visible: bool| {
            let x = 0.1 + 0.05 * f as f32 / fps;
            let dets = if visible {
                vec![det(PERSON, x, 0.5)]
            } else {
                vec![]
            };
            t.update(at(fps, f), &dets);
            f += 1;
        };
        for _ in 0..5 {
            step(&mut t, true);
        }
        for _ in 0..8 {
            step(&mut t, false); // 1.6 s behind a pillar, still moving
        }
        assert_eq!(t.visible().count(), 0);
        assert_eq!(t.tracks().len(), 1, "kept while occluded");
        step(&mut t, true);
        assert_eq!(t.visible().map(|t| t.id).collect::<Vec<_>>(), vec![1]);
    }

    #[test]
    fn a_gap_longer_than_max_age_gives_a_new_id() {
        let mut t = Tracker::new(TrackerConfig::default());
        for f in 0..5 {
            t.update(at(5.0, f), &[det(PERSON, 0.5, 0.5)]);
        }
        t.update(at(5.0, 5), &[]);
        t.update(Duration::from_secs(4), &[]);
        assert!(t.tracks().is_empty());
        t.update(Duration::from_secs(5), &[det(PERSON, 0.5, 0.5)]);
        assert_eq!(t.tracks()[0].id, 2);
    }

    #[test]
    fn classes_never_share_a_track() {
        let mut t = Tracker::new(TrackerConfig::default());
        t.update(at(5.0, 0), &[det(PERSON, 0.5, 0.5)]);
        t.update(at(5.0, 1), &[det(CAR, 0.5, 0.5)]);
        let ids: Vec<(u64, u16)> = t.tracks().iter().map(|t| (t.id, t.class)).collect();
        assert_eq!(
            ids,
            vec![(2, CAR)],
            "the person track was tentative and missed"
        );
    }

    #[test]
    fn weak_detections_extend_tracks_but_never_start_them() {
        let mut t = Tracker::new(TrackerConfig {
            high_score: 0.6,
            ..TrackerConfig::default()
        });
        let weak = |x| Detection {
            score: 0.4,
            ..det(PERSON, x, 0.5)
        };
        t.update(at(5.0, 0), &[weak(0.2)]);
        assert!(t.tracks().is_empty());
        t.update(at(5.0, 1), &[det(PERSON, 0.5, 0.5)]);
        t.update(at(5.0, 2), &[det(PERSON, 0.5, 0.5)]);
        t.update(at(5.0, 3), &[weak(0.51)]);
        // The weak first detection used no id: the strong one is track 1, kept by a weak one.
        assert_eq!(t.visible().map(|t| t.id).collect::<Vec<_>>(), vec![1]);
    }

    #[test]
    fn far_apart_detections_are_different_objects() {
        let mut t = Tracker::new(TrackerConfig::default());
        t.update(at(5.0, 0), &[det(PERSON, 0.1, 0.5)]);
        t.update(at(5.0, 1), &[det(PERSON, 0.1, 0.5)]);
        // A jump of 0.8 of the frame in 0.2 s is 5 box heights away: not the same person.
        t.update(at(5.0, 2), &[det(PERSON, 0.9, 0.5)]);
        let ids: Vec<u64> = t.tracks().iter().map(|t| t.id).collect();
        assert_eq!(ids, vec![1, 2]);
        assert_eq!(
            t.visible().count(),
            0,
            "the new one is tentative, the old one unseen"
        );
    }
}
