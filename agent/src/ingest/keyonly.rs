//! Key-frame-only decoding for slow analysis rates: when a camera is analysed at most once a
//! second and its stream sends key frames at least as often as the analysis wants a frame, the
//! frames between key frames are dropped before the decoder (they would all be thinned out
//! after it), so the decoder works on one frame per group of pictures instead of all of them.
//!
//! The key frames' spacing is learnt from the stream's own timestamps, unit by unit; the skip
//! starts at a key frame after two groups short enough and is decided per group: a group is
//! skipped or decoded whole, since a frame decoded without the frames before it in its group
//! would be damaged. A group found longer than allowed (a camera whose GOP was changed) is
//! still skipped to its end, and the next is decoded in full: a stream with long groups is
//! always decoded in full. Pure logic on the units' flags and times, no allocation.

/// What to do with one encoded unit before the decoder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// Decode it.
    Decode,
    /// Not needed: only key frames are decoded now.
    Skip,
}

/// Per-pipeline state (see the module docs).
#[derive(Debug, Clone)]
pub struct KeyOnly {
    /// The longest group of pictures that still gives the analysis a frame when it wants one
    /// (nanoseconds); `None`: never skip (analysis faster than 1 fps).
    longest: Option<u64>,
    last_key: Option<u64>,
    short_groups: u32,
    /// The deltas of the current group are skipped (decided at its key frame).
    group_skipped: bool,
    /// The key frame (its time) where skipping started or stopped, not yet taken.
    change: Option<u64>,
}

/// Groups in a row short enough before the skip starts.
const SETTLE: u32 = 2;

/// The slowest analysis rate at which frames are never skipped: above 1 fps a group of
/// pictures rarely holds a single analysed frame.
pub const MAX_ANALYSIS_FPS: f64 = 1.0;

impl KeyOnly {
    /// For a camera analysed at `analysis_fps`.
    pub fn new(analysis_fps: f64) -> KeyOnly {
        let longest =
            (analysis_fps.is_finite() && analysis_fps > 0.0 && analysis_fps <= MAX_ANALYSIS_FPS)
                // 5 % over the analysis interval: a camera's 25-frame GOP at 25 fps is 1 s give or
                // take a timestamp's jitter.
                .then(|| (1.05e9 / analysis_fps).min(u64::MAX as f64) as u64);
        KeyOnly {
            longest,
            last_key: None,
            short_groups: 0,
            group_skipped: false,
            change: None,
        }
    }

    /// The time of the key frame where skipping last started or stopped, once: from that
    /// frame on the decoder's output changes its spacing (see [`super::thin::Thinner::relearn`]).
    pub fn take_change(&mut self) -> Option<u64> {
        self.change.take()
    }

    /// Whether the groups starting now are skipped (enough short groups in a row).
    pub fn engaged(&self) -> bool {
        self.short_groups >= SETTLE
    }

    /// Judge a unit: a key frame (`key`) or not, presented at `pts` (nanoseconds on the
    /// stream's clock; `None` when the unit has no time, which stops the skip from the next
    /// group on).
    pub fn offer(&mut self, key: bool, pts: Option<u64>) -> Unit {
        let Some(longest) = self.longest else {
            return Unit::Decode;
        };
        if key {
            match (self.last_key, pts) {
                (Some(prev), Some(t)) if t > prev && t - prev <= longest => {
                    self.short_groups = self.short_groups.saturating_add(1);
                }
                _ => self.short_groups = 0,
            }
            self.last_key = pts;
            let skipped = self.engaged();
            if skipped != self.group_skipped {
                self.change = pts;
            }
            self.group_skipped = skipped;
            return Unit::Decode;
        }
        // A unit with no time, or long past the last key frame: this group is too long (or
        // cannot be told), so the next ones are decoded in full.
        let long = match (self.last_key, pts) {
            (Some(k), Some(t)) => t > k && t - k > longest,
            _ => true,
        };
        if long {
            self.short_groups = 0;
        }
        if self.group_skipped {
            Unit::Skip
        } else {
            Unit::Decode
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    /// Feed `seconds` of a 25 fps stream with a key frame every `gop` frames; the verdicts.
    fn feed(k: &mut KeyOnly, from_frame: u64, frames: u64, gop: u64) -> Vec<Unit> {
        (from_frame..from_frame + frames)
            .map(|n| k.offer(n % gop == 0, Some(n * 40 * MS)))
            .collect()
    }

    #[test]
    fn one_fps_analysis_of_a_one_second_gop_decodes_key_frames_only_once_learnt() {
        let mut k = KeyOnly::new(1.0);
        let v = feed(&mut k, 0, 100, 25);
        // Groups 0-1 s and 1-2 s are learnt; from the third key frame (2 s) deltas are skipped.
        assert!(v[..51].iter().all(|u| *u == Unit::Decode), "{v:?}");
        assert_eq!(v[50], Unit::Decode, "the key frame itself");
        assert!(v[51..75].iter().all(|u| *u == Unit::Skip));
        assert_eq!(v[75], Unit::Decode);
        assert_eq!(v.iter().filter(|u| **u == Unit::Decode).count(), 51 + 1);
        assert_eq!(
            k.take_change(),
            Some(2000 * MS),
            "skipping started at the key frame at 2 s"
        );
        assert_eq!(k.take_change(), None, "once");
    }

    #[test]
    fn long_groups_and_fast_analysis_are_decoded_in_full() {
        let mut k = KeyOnly::new(1.0);
        assert!(
            feed(&mut k, 0, 200, 50).iter().all(|u| *u == Unit::Decode),
            "2 s GOP at 1 fps"
        );
        let mut k = KeyOnly::new(0.5);
        let v = feed(&mut k, 0, 250, 50);
        assert!(v.contains(&Unit::Skip), "2 s GOP at 0.5 fps");
        for fps in [5.0, 1.5, 0.0, -1.0, f64::NAN, f64::INFINITY] {
            let mut k = KeyOnly::new(fps);
            assert!(
                feed(&mut k, 0, 100, 25).iter().all(|u| *u == Unit::Decode),
                "{fps}"
            );
        }
    }

    #[test]
    fn a_gop_grown_long_is_skipped_to_its_end_and_the_next_decoded_whole() {
        let mut k = KeyOnly::new(1.0);
        feed(&mut k, 0, 100, 25);
        assert!(k.engaged());
        // The camera's GOP becomes 4 s from the key frame at 4 s (frame 100).
        let v = feed(&mut k, 100, 100, 100);
        assert_eq!(v[0], Unit::Decode);
        assert!(
            v[1..].iter().all(|u| *u == Unit::Skip),
            "the group started skipped: its deltas cannot be decoded halfway"
        );
        assert!(!k.engaged(), "found long");
        let _ = k.take_change();
        let v = feed(&mut k, 200, 100, 100);
        assert!(v.iter().all(|u| *u == Unit::Decode), "{v:?}");
        assert_eq!(
            k.take_change(),
            Some(8000 * MS),
            "stopped at the key frame at 8 s"
        );
    }

    #[test]
    fn no_time_or_a_time_going_back_starts_learning_again() {
        let mut k = KeyOnly::new(1.0);
        feed(&mut k, 0, 100, 25);
        assert_eq!(
            k.offer(false, None),
            Unit::Skip,
            "its group goes on skipped"
        );
        assert!(!k.engaged());
        assert_eq!(k.offer(true, Some(4000 * MS)), Unit::Decode);
        assert_eq!(
            k.offer(false, Some(4040 * MS)),
            Unit::Decode,
            "the next group whole"
        );
        let mut k = KeyOnly::new(1.0);
        feed(&mut k, 0, 100, 25);
        assert_eq!(k.offer(true, Some(0)), Unit::Decode, "a clock reset");
        assert!(!k.engaged());
    }
}
