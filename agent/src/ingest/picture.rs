//! Is the camera still seeing? Checks on the content of analysed frames, pure (the caller
//! passes the time): a frame is reduced to a 160×90 grey image by block means, and compared
//! with the previous one and with what the camera learned about its own view.
//!
//! - **frozen**: frames keep arriving but the picture does not change at all (no grey pixel
//!   moves by a whole level) for `frozen_s`. A live camera's sensor noise and every key frame
//!   change some pixels; an encoder or camera stuck on one image does not.
//! - **covered**: very dark (mean below 16 of 255) or flat (spread below 4 levels) for
//!   `tamper_s`: a hand, a bag, paint or a lens cap.
//! - **defocused**: sharpness (mean absolute Laplacian) below a third of the camera's learned
//!   baseline for `tamper_s`.
//! - **moved**: the picture no longer correlates with the learned reference view (zero-mean
//!   normalised correlation below 0.4) for `tamper_s`.
//!
//! The baseline and reference are learned from the first [`LEARN_FRAMES`] clear frames and
//! then follow slow changes (light over the day) while the picture is clear.

use std::time::Duration;

use crate::pixels::FrameView;

/// Width of the grey image.
pub const GRAY_W: usize = 160;
/// Height of the grey image.
pub const GRAY_H: usize = 90;
/// Clear frames needed before defocus and movement are judged.
pub const LEARN_FRAMES: u32 = 25;

/// What the picture says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Condition {
    /// Nothing wrong.
    #[default]
    Clear,
    /// The picture does not change.
    Frozen,
    /// Dark or flat.
    Covered,
    /// Far less sharp than usual.
    Defocused,
    /// Not the usual view.
    Moved,
}

impl Condition {
    /// The reason as published (`None` when clear).
    pub fn reason(self) -> Option<&'static str> {
        match self {
            Condition::Clear => None,
            Condition::Frozen => Some("the picture has not changed"),
            Condition::Covered => Some("covered: the picture is dark or flat"),
            Condition::Defocused => Some("defocused: far less sharp than usual"),
            Condition::Moved => Some("moved: the view no longer matches the reference"),
        }
    }

    /// Whether this is tampering (as opposed to frozen or clear).
    pub fn is_tamper(self) -> bool {
        matches!(
            self,
            Condition::Covered | Condition::Defocused | Condition::Moved
        )
    }
}

/// A frame reduced to grey block means, row-major, 0..255.
#[derive(Debug, Clone)]
pub struct Gray {
    /// `GRAY_W * GRAY_H` block means.
    pub cells: Vec<f32>,
    /// Column sums of the rows of one block row (luma planes), reused between frames.
    columns: Vec<u32>,
}

impl Default for Gray {
    fn default() -> Self {
        Gray {
            cells: vec![0.0; GRAY_W * GRAY_H],
            columns: Vec::new(),
        }
    }
}

/// First pixel of block `k` along a side of `n` pixels cut into `blocks`: ⌈k·n / blocks⌉.
fn block_start(k: usize, n: usize, blocks: usize) -> usize {
    (k * n).div_ceil(blocks)
}

impl Gray {
    /// Fill from a frame by block means of its luma (full-range grey); reuses the buffer. An
    /// I420 frame's luma plane is read as it is; an incomplete frame gives a black picture.
    pub fn fill(&mut self, frame: FrameView<'_>) {
        let (w, h) = (frame.width as usize, frame.height as usize);
        match frame.planes() {
            Some(p) => {
                self.fill_from_luma(w, h, p.y);
                self.cells.iter_mut().for_each(|v| *v = p.yuv.grey(*v));
            }
            None => self.fill_from_rgb(w, h, frame.data),
        }
    }

    /// Block means of a luma plane (`width`×`height` bytes), as bytes. The rows of a block row
    /// are first added column by column (which the compiler vectorises), then each block's
    /// run of those column sums; the sums are integers, so the means equal the per-pixel ones.
    pub fn fill_from_luma(&mut self, width: usize, height: usize, luma: &[u8]) {
        self.cells.iter_mut().for_each(|v| *v = 0.0);
        if width == 0 || height == 0 || luma.len() < width * height {
            return;
        }
        self.columns.resize(width, 0);
        for gy in 0..GRAY_H {
            let (y0, y1) = (
                block_start(gy, height, GRAY_H),
                block_start(gy + 1, height, GRAY_H),
            );
            self.columns.iter_mut().for_each(|c| *c = 0);
            for row in luma[y0 * width..y1 * width].chunks_exact(width) {
                for (c, &v) in self.columns.iter_mut().zip(row) {
                    *c += u32::from(v);
                }
            }
            let cells = &mut self.cells[gy * GRAY_W..(gy + 1) * GRAY_W];
            for (gx, cell) in cells.iter_mut().enumerate() {
                let (x0, x1) = (
                    block_start(gx, width, GRAY_W),
                    block_start(gx + 1, width, GRAY_W),
                );
                let n = (y1 - y0) * (x1 - x0);
                if n > 0 {
                    *cell = self.columns[x0..x1].iter().sum::<u32>() as f32 / n as f32;
                }
            }
        }
    }

    /// Fill from packed RGB (`width`×`height`×3) by block means of BT.601 luma. Each block's
    /// luma sum is an integer (exact in f32 below 2²⁴), so summing by runs of a row gives the
    /// per-pixel sum exactly.
    pub fn fill_from_rgb(&mut self, width: usize, height: usize, rgb: &[u8]) {
        self.cells.iter_mut().for_each(|v| *v = 0.0);
        if width == 0 || height == 0 || rgb.len() < width * height * 3 {
            return;
        }
        for gy in 0..GRAY_H {
            let (y0, y1) = (
                block_start(gy, height, GRAY_H),
                block_start(gy + 1, height, GRAY_H),
            );
            let cells = &mut self.cells[gy * GRAY_W..(gy + 1) * GRAY_W];
            for y in y0..y1 {
                let row = &rgb[y * width * 3..(y + 1) * width * 3];
                for (gx, cell) in cells.iter_mut().enumerate() {
                    let (x0, x1) = (
                        block_start(gx, width, GRAY_W),
                        block_start(gx + 1, width, GRAY_W),
                    );
                    let sum: u32 = row[x0 * 3..x1 * 3]
                        .chunks_exact(3)
                        // ITU-R BT.601 luma, integer weights.
                        .map(|px| {
                            (77 * u32::from(px[0]) + 150 * u32::from(px[1]) + 29 * u32::from(px[2]))
                                >> 8
                        })
                        .sum();
                    *cell += sum as f32;
                }
            }
            let rows = y1 - y0;
            for (gx, cell) in cells.iter_mut().enumerate() {
                let n =
                    rows * (block_start(gx + 1, width, GRAY_W) - block_start(gx, width, GRAY_W));
                if n > 0 {
                    *cell /= n as f32;
                }
            }
        }
    }

    fn mean_std(&self) -> (f32, f32) {
        let n = self.cells.len() as f32;
        let mean = self.cells.iter().sum::<f32>() / n;
        let var = self
            .cells
            .iter()
            .map(|v| (v - mean) * (v - mean))
            .sum::<f32>()
            / n;
        (mean, var.sqrt())
    }

    fn sharpness(&self) -> f32 {
        let mut sum = 0.0;
        for y in 1..GRAY_H - 1 {
            for x in 1..GRAY_W - 1 {
                let c = self.cells[y * GRAY_W + x];
                let lap = self.cells[(y - 1) * GRAY_W + x]
                    + self.cells[(y + 1) * GRAY_W + x]
                    + self.cells[y * GRAY_W + x - 1]
                    + self.cells[y * GRAY_W + x + 1]
                    - 4.0 * c;
                sum += lap.abs();
            }
        }
        sum / ((GRAY_W - 2) * (GRAY_H - 2)) as f32
    }

    fn max_abs_diff(&self, other: &Gray) -> f32 {
        self.cells
            .iter()
            .zip(&other.cells)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f32::max)
    }

    fn correlation(&self, other: &Gray) -> f32 {
        let (ma, sa) = self.mean_std();
        let (mb, sb) = other.mean_std();
        if sa < 1e-3 || sb < 1e-3 {
            return 0.0;
        }
        let n = self.cells.len() as f32;
        let cov = self
            .cells
            .iter()
            .zip(&other.cells)
            .map(|(a, b)| (a - ma) * (b - mb))
            .sum::<f32>()
            / n;
        cov / (sa * sb)
    }
}

/// Per-camera settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PictureSettings {
    /// Unchanged this long → frozen.
    pub frozen: Duration,
    /// Covered, defocused or moved this long → tampered.
    pub tamper: Duration,
}

/// The watcher of one camera.
#[derive(Debug)]
pub struct PictureWatch {
    settings: PictureSettings,
    prev: Option<Gray>,
    reference: Option<Gray>,
    baseline_sharpness: f32,
    learned: u32,
    unchanged_since: Option<Duration>,
    suspect: Option<(Condition, Duration)>,
    confirmed: Condition,
}

impl PictureWatch {
    /// A watcher that has learned nothing yet.
    pub fn new(settings: PictureSettings) -> Self {
        PictureWatch {
            settings,
            prev: None,
            reference: None,
            baseline_sharpness: 0.0,
            learned: 0,
            unchanged_since: None,
            suspect: None,
            confirmed: Condition::Clear,
        }
    }

    /// The confirmed condition.
    pub fn condition(&self) -> Condition {
        self.confirmed
    }

    /// Forget the previous frame (the pipeline restarted): a gap is not a frozen picture.
    pub fn restart(&mut self) {
        self.prev = None;
        self.unchanged_since = None;
        self.suspect = None;
        self.confirmed = Condition::Clear;
    }

    /// Look at one analysed frame at `now` (monotonic time); returns the confirmed condition.
    pub fn observe(&mut self, now: Duration, g: &Gray) -> Condition {
        let unchanged = self.prev.as_ref().is_some_and(|p| p.max_abs_diff(g) < 1.0);
        if !unchanged {
            self.unchanged_since = None;
        } else if self.unchanged_since.is_none() {
            // Unchanged since the previous frame was taken, at the latest.
            self.unchanged_since = Some(now);
        }
        match &mut self.prev {
            Some(p) => p.cells.copy_from_slice(&g.cells),
            None => self.prev = Some(g.clone()),
        }

        let (mean, std) = g.mean_std();
        let sharp = g.sharpness();
        let seen = if mean < 16.0 || std < 4.0 {
            Condition::Covered
        } else if self
            .unchanged_since
            .is_some_and(|t| now.saturating_sub(t) >= self.settings.frozen)
        {
            Condition::Frozen
        } else if self.learned >= LEARN_FRAMES
            && self
                .reference
                .as_ref()
                .is_some_and(|r| r.correlation(g) < 0.4)
        {
            Condition::Moved
        } else if self.learned >= LEARN_FRAMES && sharp < self.baseline_sharpness / 3.0 {
            Condition::Defocused
        } else {
            Condition::Clear
        };

        if seen == Condition::Clear && self.unchanged_since.is_none() {
            self.learn(g, sharp);
        }
        // Frozen is confirmed by its own timer; the others need to last `tamper`.
        self.confirmed = match seen {
            Condition::Clear => {
                self.suspect = None;
                Condition::Clear
            }
            Condition::Frozen => {
                self.suspect = None;
                Condition::Frozen
            }
            c => {
                let since = match self.suspect {
                    Some((s, t)) if s == c => t,
                    _ => {
                        self.suspect = Some((c, now));
                        now
                    }
                };
                if now.saturating_sub(since) >= self.settings.tamper || self.confirmed == c {
                    c
                } else {
                    Condition::Clear
                }
            }
        };
        self.confirmed
    }

    fn learn(&mut self, g: &Gray, sharp: f32) {
        self.learned = self.learned.saturating_add(1);
        // Fast at first (a plain mean), then a slow exponential average.
        let alpha = if self.learned <= LEARN_FRAMES {
            1.0 / self.learned as f32
        } else {
            0.01
        };
        self.baseline_sharpness += alpha * (sharp - self.baseline_sharpness);
        match &mut self.reference {
            Some(r) => r
                .cells
                .iter_mut()
                .zip(&g.cells)
                .for_each(|(r, v)| *r += alpha * (v - *r)),
            None => self.reference = Some(g.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pixels::Yuv;

    /// The per-pixel block mean [`Gray::fill_from_rgb`] and [`Gray::fill_from_luma`] must equal.
    fn gray_per_pixel(width: usize, height: usize, rgb: &[u8]) -> Vec<f32> {
        let mut sums = vec![0.0f32; GRAY_W * GRAY_H];
        let mut counts = vec![0u32; GRAY_W * GRAY_H];
        for y in 0..height {
            for x in 0..width {
                let px = &rgb[(y * width + x) * 3..][..3];
                let g = (y * GRAY_H / height) * GRAY_W + x * GRAY_W / width;
                let l =
                    (77 * u32::from(px[0]) + 150 * u32::from(px[1]) + 29 * u32::from(px[2])) >> 8;
                sums[g] += l as f32;
                counts[g] += 1;
            }
        }
        for (v, &n) in sums.iter_mut().zip(&counts) {
            if n > 0 {
                *v /= n as f32;
            }
        }
        sums
    }

    /// Whether two grey images are equal bit for bit.
    fn same_bits(a: &[f32], b: &[f32]) -> bool {
        a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())
    }

    #[test]
    fn block_means_equal_the_per_pixel_ones_bit_for_bit() {
        let mut seed = 99u32;
        for (w, h) in [
            (768, 576),
            (1920, 1080),
            (161, 91),
            (100, 50),
            (7, 5),
            (1, 1),
        ] {
            let rgb: Vec<u8> = (0..w * h * 3)
                .map(|_| {
                    seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                    (seed >> 24) as u8
                })
                .collect();
            let mut g = Gray::default();
            g.fill_from_rgb(w, h, &rgb);
            let want = gray_per_pixel(w, h, &rgb);
            let same = same_bits(&g.cells, &want);
            assert!(same, "{w}×{h}: block means differ from the per-pixel ones");
            // A luma plane against the grey RGB picture of the same bytes (BT.601's integer
            // luma of (v, v, v) is v).
            let luma: Vec<u8> = rgb.iter().step_by(3).copied().collect();
            let grey: Vec<u8> = luma.iter().flat_map(|&v| [v, v, v]).collect();
            g.fill_from_luma(w, h, &luma);
            let want = gray_per_pixel(w, h, &grey);
            let same = same_bits(&g.cells, &want);
            assert!(
                same,
                "{w}×{h}: luma block means differ from the per-pixel ones"
            );
        }
    }

    const SETTINGS: PictureSettings = PictureSettings {
        frozen: Duration::from_secs(10),
        tamper: Duration::from_secs(5),
    };

    /// A textured scene (a grid of squares, shifted by `phase`), plus `noise` levels of
    /// per-frame noise from `seed`.
    fn scene(phase: usize, noise: u32, seed: u32) -> Gray {
        let mut g = Gray::default();
        let mut s = seed.wrapping_mul(2).wrapping_add(1);
        for y in 0..GRAY_H {
            for x in 0..GRAY_W {
                s ^= s << 13;
                s ^= s >> 17;
                s ^= s << 5;
                let base = if ((x + phase) / 8 + y / 8).is_multiple_of(2) {
                    60.0
                } else {
                    190.0
                };
                let n = if noise > 0 {
                    (s % (2 * noise + 1)) as f32 - noise as f32
                } else {
                    0.0
                };
                g.cells[y * GRAY_W + x] = base + n;
            }
        }
        g
    }

    fn blur(g: &Gray, rounds: usize) -> Gray {
        let mut out = g.clone();
        for _ in 0..rounds {
            let src = out.clone();
            for y in 1..GRAY_H - 1 {
                for x in 1..GRAY_W - 1 {
                    let i = y * GRAY_W + x;
                    out.cells[i] = (src.cells[i - 1]
                        + src.cells[i + 1]
                        + src.cells[i - GRAY_W]
                        + src.cells[i + GRAY_W]
                        + src.cells[i])
                        / 5.0;
                }
            }
        }
        out
    }

    /// Feed `n` frames at 5 fps from `t`, returning the last condition and the new time.
    fn feed(
        w: &mut PictureWatch,
        t: &mut Duration,
        n: usize,
        frame: impl Fn(usize) -> Gray,
    ) -> Condition {
        let mut c = Condition::Clear;
        for i in 0..n {
            *t += Duration::from_millis(200);
            c = w.observe(*t, &frame(i));
        }
        c
    }

    #[test]
    fn a_live_noisy_scene_stays_clear() {
        let mut w = PictureWatch::new(SETTINGS);
        let mut t = Duration::ZERO;
        assert_eq!(
            feed(&mut w, &mut t, 300, |i| scene(0, 2, i as u32 + 7)),
            Condition::Clear
        );
    }

    #[test]
    fn an_identical_picture_is_frozen_after_frozen_s_and_clears_when_it_moves_again() {
        let mut w = PictureWatch::new(SETTINGS);
        let mut t = Duration::ZERO;
        feed(&mut w, &mut t, 30, |i| scene(0, 2, i as u32 + 1));
        let still = scene(0, 2, 99);
        // 9.8 s of the same picture: not yet.
        assert_eq!(
            feed(&mut w, &mut t, 50, |_| still.clone()),
            Condition::Clear
        );
        assert_eq!(
            feed(&mut w, &mut t, 2, |_| still.clone()),
            Condition::Frozen
        );
        assert_eq!(
            feed(&mut w, &mut t, 1, |i| scene(0, 2, i as u32 + 5)),
            Condition::Clear
        );
    }

    #[test]
    fn a_black_picture_is_covered_after_tamper_s() {
        let mut w = PictureWatch::new(SETTINGS);
        let mut t = Duration::ZERO;
        feed(&mut w, &mut t, 30, |i| scene(0, 2, i as u32 + 1));
        let black = Gray {
            cells: vec![3.0; GRAY_W * GRAY_H],
            ..Gray::default()
        };
        assert_eq!(
            feed(&mut w, &mut t, 20, |_| black.clone()),
            Condition::Clear
        );
        assert_eq!(
            feed(&mut w, &mut t, 6, |_| black.clone()),
            Condition::Covered
        );
        assert_eq!(
            w.condition().reason(),
            Some("covered: the picture is dark or flat")
        );
        // A uniform grey card is flat too, even though it is bright.
        let mut w = PictureWatch::new(SETTINGS);
        let grey = Gray {
            cells: vec![128.0; GRAY_W * GRAY_H],
            ..Gray::default()
        };
        assert_eq!(
            feed(&mut w, &mut t, 30, |_| grey.clone()),
            Condition::Covered
        );
    }

    #[test]
    fn a_blurred_view_is_defocused_and_a_different_view_is_moved() {
        let mut w = PictureWatch::new(SETTINGS);
        let mut t = Duration::ZERO;
        feed(&mut w, &mut t, 40, |i| scene(0, 2, i as u32 + 1));
        let blurred: Vec<Gray> = (0..4).map(|i| blur(&scene(0, 2, i + 50), 20)).collect();
        assert_eq!(
            feed(&mut w, &mut t, 30, |i| blurred[i % 4].clone()),
            Condition::Defocused
        );

        let mut w = PictureWatch::new(SETTINGS);
        feed(&mut w, &mut t, 40, |i| scene(0, 2, i as u32 + 1));
        // The camera was turned: the grid is shifted by half a square.
        assert_eq!(
            feed(&mut w, &mut t, 30, |i| scene(4, 2, i as u32 + 3)),
            Condition::Moved
        );
    }

    #[test]
    fn a_short_cover_is_not_reported() {
        let mut w = PictureWatch::new(SETTINGS);
        let mut t = Duration::ZERO;
        feed(&mut w, &mut t, 30, |i| scene(0, 2, i as u32 + 1));
        let black = Gray {
            cells: vec![3.0; GRAY_W * GRAY_H],
            ..Gray::default()
        };
        feed(&mut w, &mut t, 10, |_| black.clone());
        assert_eq!(
            feed(&mut w, &mut t, 5, |i| scene(0, 2, i as u32 + 9)),
            Condition::Clear
        );
    }

    #[test]
    fn rgb_frames_are_reduced_to_block_means() {
        let (w, h) = (320, 180);
        let mut rgb = vec![0u8; w * h * 3];
        for y in 0..h {
            for x in w / 2..w {
                rgb[(y * w + x) * 3..(y * w + x) * 3 + 3].copy_from_slice(&[255, 255, 255]);
            }
        }
        let mut g = Gray::default();
        g.fill_from_rgb(w, h, &rgb);
        assert_eq!(g.cells[0], 0.0);
        assert!(
            (g.cells[GRAY_W - 1] - 255.0).abs() < 1.0,
            "{}",
            g.cells[GRAY_W - 1]
        );
        // A short buffer leaves a black picture instead of panicking.
        g.fill_from_rgb(w, h, &rgb[..10]);
        assert!(g.cells.iter().all(|&v| v == 0.0));
    }

    #[test]
    fn i420_frames_give_the_grey_of_their_rgb() {
        // Half black, half white, and a mid-grey band: the luma plane's block means, mapped
        // from limited range, equal the RGB frame's within a level.
        let (w, h) = (320u32, 180u32);
        let mut rgb = vec![0u8; (w * h * 3) as usize];
        for (i, px) in rgb.chunks_exact_mut(3).enumerate() {
            let (x, y) = (i as u32 % w, i as u32 / w);
            let v = if y < 60 {
                128
            } else if x >= w / 2 {
                255
            } else {
                0
            };
            px.copy_from_slice(&[v, v, v]);
        }
        let (mut from_rgb, mut from_i420) = (Gray::default(), Gray::default());
        from_rgb.fill(FrameView::rgb(w, h, &rgb));
        let planar = crate::pixels::rgb_to_i420(w, h, &rgb, Yuv::BT601);
        from_i420.fill(FrameView::i420(w, h, &planar, Yuv::BT601));
        let worst = from_rgb
            .cells
            .iter()
            .zip(&from_i420.cells)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f32::max);
        assert!(worst <= 1.0, "worst {worst}");
        assert_eq!(
            from_i420.cells[GRAY_W * (GRAY_H - 1)],
            0.0,
            "black stays black"
        );
        // An incomplete I420 frame is a black picture.
        from_i420.fill(FrameView::i420(w, h, &planar[..100], Yuv::BT601));
        assert!(from_i420.cells.iter().all(|&v| v == 0.0));
    }
}
