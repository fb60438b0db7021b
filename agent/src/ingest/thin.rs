//! Thinning a camera's decoded frames down to its analysis rate, and what the frames'
//! timestamps say about frames that never came out of the decoder.
//!
//! The stream's time is cut into intervals of `1 / analysis_fps`; the first frame of each
//! interval is analysed and the others are thinned out. Over any second this keeps exactly
//! `analysis_fps` frames of a faster stream (a gap-based filter keeps fewer whenever timestamps
//! jitter), every frame of a slower one, and works for fractional rates alike.
//!
//! The same timestamps show frames lost before this point (in the network, by the
//! depayloader or by the decoder): a camera's frames are a steady interval apart, so a gap of
//! several intervals is frames missing. Frames whose time is not after the previous one
//! (repeated or out of order) are dropped and counted: nothing leaves here uncounted. Pure
//! logic, no allocation: it runs on every decoded frame.

/// A gap longer than this is a break in the stream's timeline (a camera clock reset, a pause),
/// not frames lost.
pub const MAX_GAP_NS: u64 = 10_000_000_000;

/// What to do with one decoded frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Analyse it.
    Keep,
    /// Not needed at the analysis rate.
    Thin,
    /// Its time is at or before the previous frame's: dropped.
    Misordered,
}

/// The verdict on a frame and the frames its timestamp shows missing before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seen {
    /// What to do with the frame.
    pub verdict: Verdict,
    /// Frames that should have come between the previous frame and this one.
    pub missing: u64,
}

/// Per-pipeline thinning state (see the module docs).
#[derive(Debug, Clone)]
pub struct Thinner {
    interval: u64,
    last_slot: Option<u64>,
    last_pts: Option<u64>,
    /// The camera's frame interval, learnt from the gaps between frames.
    spacing: Option<u64>,
    /// The last gap that counted frames missing.
    last_wide: Option<u64>,
    /// Frames dropped as misordered in a row.
    misordered_run: u32,
}

/// After this many frames in a row with a time at or before the last kept one (a camera whose
/// clock stepped back or froze), the timeline starts again from the current frame: analysis
/// pauses for at most this many frames, never for good.
pub const MISORDERED_RESTART: u32 = 25;

impl Thinner {
    /// Thinning to `analysis_fps` frames a second (a rate that is not positive and finite
    /// keeps every frame).
    pub fn new(analysis_fps: f64) -> Thinner {
        let interval = if analysis_fps.is_finite() && analysis_fps > 0.0 {
            (1e9 / analysis_fps).clamp(1.0, u64::MAX as f64) as u64
        } else {
            1
        };
        Thinner {
            interval,
            last_slot: None,
            last_pts: None,
            spacing: None,
            last_wide: None,
            misordered_run: 0,
        }
    }

    /// Judge the frame presented at `pts` (nanoseconds on the stream's clock).
    pub fn offer(&mut self, pts: u64) -> Seen {
        let slot = pts / self.interval;
        let missing = match self.last_pts {
            Some(last)
                if pts <= last
                    && last - pts <= MAX_GAP_NS
                    && self.misordered_run + 1 < MISORDERED_RESTART =>
            {
                self.misordered_run += 1;
                return Seen {
                    verdict: Verdict::Misordered,
                    missing: 0,
                };
            }
            Some(last) if pts > last && pts - last <= MAX_GAP_NS => self.gap(pts - last),
            // The first frame, a break in the timeline, or a clock that went back for good:
            // start again from here.
            _ => {
                self.spacing = None;
                self.last_wide = None;
                self.last_slot = None;
                0
            }
        };
        self.misordered_run = 0;
        self.last_pts = Some(pts);
        let verdict = match self.last_slot {
            Some(s) if slot <= s => Verdict::Thin,
            _ => {
                self.last_slot = Some(slot);
                Verdict::Keep
            }
        };
        Seen { verdict, missing }
    }

    /// Learn the frame interval again from the next gaps, keeping the timeline: the frames'
    /// spacing changes on purpose (key-frame-only decoding started or stopped), which is not
    /// frames lost.
    pub fn relearn(&mut self) {
        self.spacing = None;
        self.last_wide = None;
    }

    /// Frames missing in a gap of `gap` ns, learning the frame interval from the gaps.
    ///
    /// The interval is a moving average of the shorter gaps (one stray short gap moves it by
    /// an eighth, so it cannot make every later gap look like a loss). A gap of one and a half
    /// intervals or more is frames missing (whole intervals, rounded, less the frame that ends
    /// it), shorter is timing jitter. Two such gaps in a row within a tenth of each other are
    /// a camera that lowered its frame rate: the second becomes the interval and counts
    /// nothing, so a rate change costs the frames of one gap (24 from 25 fps to 1), not one
    /// per frame forever.
    fn gap(&mut self, gap: u64) -> u64 {
        let Some(spacing) = self.spacing else {
            self.spacing = Some(gap);
            return 0;
        };
        let wide = gap.saturating_mul(2) >= spacing.saturating_mul(3);
        if !wide {
            self.last_wide = None;
            let averaged = (u128::from(spacing) * 7 + u128::from(gap)) / 8;
            self.spacing = Some(u64::try_from(averaged).unwrap_or(u64::MAX).max(1));
            return 0;
        }
        let steady = self
            .last_wide
            .is_some_and(|w| w.abs_diff(gap).saturating_mul(10) <= gap);
        if steady {
            self.spacing = Some(gap);
            self.last_wide = None;
            return 0;
        }
        self.last_wide = Some(gap);
        (gap.saturating_add(spacing / 2) / spacing).saturating_sub(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    fn run(t: &mut Thinner, times_ms: impl IntoIterator<Item = u64>) -> (u64, u64, u64, u64) {
        let (mut keep, mut thin, mut mis, mut missing) = (0, 0, 0, 0);
        for ms in times_ms {
            let s = t.offer(ms * MS);
            missing += s.missing;
            match s.verdict {
                Verdict::Keep => keep += 1,
                Verdict::Thin => thin += 1,
                Verdict::Misordered => mis += 1,
            }
        }
        (keep, thin, mis, missing)
    }

    #[test]
    fn a_faster_stream_is_kept_at_exactly_the_analysis_rate() {
        // 10 s of 25 fps at 5, of 10 fps at 5, of 7.5 fps at 5 and of 10 fps at 0.5.
        for (period_ms, frames, fps, want) in [
            (40, 250, 5.0, 50),
            (100, 100, 5.0, 50),
            (133, 75, 5.0, 50),
            (100, 100, 0.5, 5),
        ] {
            let mut t = Thinner::new(fps);
            let (keep, thin, mis, missing) = run(&mut t, (0..frames).map(|i| i * period_ms));
            assert_eq!(
                (keep, mis, missing),
                (want, 0, 0),
                "{period_ms} ms at {fps}"
            );
            assert_eq!(keep + thin, frames);
        }
    }

    #[test]
    fn jittered_timestamps_do_not_lower_the_rate() {
        // 10 fps at ±15 ms around its beat: a filter on the gap since the last kept frame
        // loses frames whenever a gap comes out short; intervals do not.
        let mut t = Thinner::new(5.0);
        let jitter = [0i64, 15, -15, 10, -10];
        let times = (0..100i64).map(|i| (1000 + i * 100 + jitter[(i % 5) as usize]) as u64);
        let (keep, _, mis, missing) = run(&mut t, times);
        assert!((49..=51).contains(&keep), "kept {keep}");
        assert_eq!((mis, missing), (0, 0));
    }

    #[test]
    fn a_slower_stream_keeps_every_frame() {
        let mut t = Thinner::new(5.0);
        assert_eq!(run(&mut t, (0..20).map(|i| i * 500)), (20, 0, 0, 0));
    }

    #[test]
    fn gaps_in_a_steady_stream_count_the_frames_missing() {
        let mut t = Thinner::new(5.0);
        // 10 fps with frames 3, 7, 8 and 9 lost.
        let times = (0..20)
            .filter(|i| ![3, 7, 8, 9].contains(i))
            .map(|i| i * 100);
        let (_, _, _, missing) = run(&mut t, times);
        assert_eq!(missing, 4);
    }

    #[test]
    fn a_camera_that_lowers_its_frame_rate_counts_few_frames_missing() {
        let mut t = Thinner::new(5.0);
        let times = (0..100)
            .map(|i| i * 40)
            .chain((0..200).map(|i| 4000 + i * 80));
        let (_, _, _, missing) = run(&mut t, times);
        assert!((1..=10).contains(&missing), "{missing}");
    }

    #[test]
    fn one_stray_short_gap_or_a_big_rate_drop_counts_little() {
        // 25 fps with one pair 10 µs apart.
        let mut t = Thinner::new(5.0);
        let mut times: Vec<u64> = (0..100).map(|i| i * 40 * MS).collect();
        times.insert(50, 50 * 40 * MS - 10_000);
        let missing: u64 = times.iter().map(|&p| t.offer(p).missing).sum();
        assert_eq!(missing, 0);
        // 25 fps, then 1 fps for good: the frames of one gap.
        let mut t = Thinner::new(5.0);
        let (_, _, _, missing) = run(
            &mut t,
            (0..100)
                .map(|i| i * 40)
                .chain((1..60).map(|i| 4000 + i * 1000)),
        );
        assert!((1..=25).contains(&missing), "{missing}");
    }

    #[test]
    fn a_clock_that_steps_back_or_freezes_pauses_analysis_only_briefly() {
        let mut t = Thinner::new(5.0);
        run(&mut t, (0..50).map(|i| 5000 + i * 40));
        // The camera's clock goes back 5 s and carries on from there.
        let (keep, _, mis, _) = run(&mut t, (0..100).map(|i| 2000 + i * 40));
        assert_eq!(mis, u64::from(MISORDERED_RESTART) - 1);
        assert!(keep >= 12, "analysis resumed: {keep}");
        // A frozen clock: every frame has the same time.
        let (keep, _, mis, _) = run(&mut t, std::iter::repeat_n(9000, 100));
        assert!(keep >= 3 && mis < 100, "{keep} kept, {mis} misordered");
    }

    #[test]
    fn repeated_or_backward_times_are_dropped_and_counted() {
        let mut t = Thinner::new(5.0);
        assert_eq!(t.offer(1000 * MS).verdict, Verdict::Keep);
        assert_eq!(t.offer(1000 * MS).verdict, Verdict::Misordered);
        assert_eq!(t.offer(900 * MS).verdict, Verdict::Misordered);
        assert_eq!(t.offer(1200 * MS).verdict, Verdict::Keep);
    }

    #[test]
    fn a_break_in_the_timeline_starts_again_without_counting_losses() {
        let mut t = Thinner::new(5.0);
        run(&mut t, (0..10).map(|i| 3_600_000 + i * 100));
        // The camera's clock restarts (back by an hour), then jumps ahead by a day.
        let s = t.offer(5 * MS);
        assert_eq!((s.verdict, s.missing), (Verdict::Keep, 0));
        let s = t.offer(86_400_000 * MS);
        assert_eq!((s.verdict, s.missing), (Verdict::Keep, 0));
        assert_eq!(t.offer(86_400_100 * MS).verdict, Verdict::Thin);
    }

    #[test]
    fn rates_at_the_edges_of_their_range_do_not_panic() {
        for fps in [0.0, -1.0, f64::NAN, f64::INFINITY, 1e-9, 1e12] {
            let mut t = Thinner::new(fps);
            run(&mut t, [0, 1, u64::MAX / MS, 0, 5]);
            let _ = t.offer(u64::MAX);
            let _ = t.offer(0);
        }
    }
}
