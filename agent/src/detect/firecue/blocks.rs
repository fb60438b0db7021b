//! One frame's block statistics: the frame is cut into square blocks (a fixed grid per frame
//! size) and each block gets counts and sums from a single pass over the I420 planes at chroma
//! resolution, one sample per 2×2 luma pixels. No RGB conversion; packed RGB frames (still
//! images, offline tools) are converted per sample on the way in.

use crate::pixels::{Format, FrameView};

/// Most blocks across or down: the grid's block size grows with the frame so that the work per
/// frame and the state per camera stay bounded for any frame size.
pub const MAX_GRID: usize = 128;

/// The block grid of one frame size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grid {
    /// Frame width and height in pixels.
    pub width: u32,
    /// Frame height.
    pub height: u32,
    /// Block side in chroma samples (2 luma pixels each).
    pub side: usize,
    /// Blocks across.
    pub cols: usize,
    /// Blocks down.
    pub rows: usize,
}

impl Grid {
    /// The grid of a `width`×`height` frame: blocks of 4 pixels or more (a power of two), at
    /// most [`MAX_GRID`] each way;
    /// `None` for a frame too small to hold one block (under 4 pixels).
    pub fn of(width: u32, height: u32) -> Option<Grid> {
        let (sw, sh) = ((width / 2) as usize, (height / 2) as usize);
        let mut side = 2;
        while sw / side > MAX_GRID || sh / side > MAX_GRID {
            side *= 2;
        }
        let (cols, rows) = (sw / side, sh / side);
        (cols > 0 && rows > 0).then_some(Grid {
            width,
            height,
            side,
            cols,
            rows,
        })
    }

    /// Blocks in the grid.
    pub fn len(&self) -> usize {
        self.cols * self.rows
    }

    /// Whether the grid has no block (never, for a grid made by [`Grid::of`]).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Samples per block.
    pub fn samples(&self) -> u32 {
        (self.side * self.side) as u32
    }

    /// The normalised box `[x1, y1, x2, y2]` of blocks `c0..=c1`, `r0..=r1`.
    pub fn bbox(&self, c0: usize, r0: usize, c1: usize, r1: usize) -> [f32; 4] {
        let px = (2 * self.side) as f32;
        let (w, h) = (self.width as f32, self.height as f32);
        [
            (c0 as f32 * px / w).min(1.0),
            (r0 as f32 * px / h).min(1.0),
            ((c1 + 1) as f32 * px / w).min(1.0),
            ((r1 + 1) as f32 * px / h).min(1.0),
        ]
    }
}

/// What one frame says about one block.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Block {
    /// Samples of fire colour (bright, red-orange-yellow, redder than the scene).
    pub fire: u32,
    /// Of those, samples as bright as a flame's core ([`SceneLevels::core`]): a flame has a
    /// core near the top of the camera's range, a traffic cone, a red coat or brickwork not.
    pub core: u32,
    /// Samples of low saturation and mid-to-high brightness (smoke, fog, steam, grey walls).
    pub grey: u32,
    /// Sum of luma (0–255 per sample).
    pub luma: u32,
    /// Sum of saturation `|U−128| + |V−128|`.
    pub sat: u32,
    /// Sum of luma detail: `|a−b| + |a−c|` of each 2×2 luma block's top-left `a`, top-right `b`
    /// and bottom-left `c` (what smoke blurs away).
    pub detail: u32,
    /// Sum of `|luma − previous frame's luma|` per sample (what moved or flickered).
    pub change: u32,
    /// The same sum over the samples of fire colour on this frame and the previous one (how
    /// much a flame's brightness flickers; a lamp or a red sign does not, and a person walking
    /// past a sand-coloured wall changes which samples have fire colour, not their brightness).
    pub fire_change: u32,
    /// Samples of fire colour on this frame and the previous one.
    pub fire_kept: u32,
    /// Sum of the background's luma (the slow per-sample background, see [`measure`]).
    pub bg: u32,
    /// Sums of squares of the luma, of the background, and of their product: the block's
    /// contrast against the background's and how alike their patterns are (a veil of smoke
    /// keeps the background's pattern, weaker; a person in front replaces it).
    pub luma2: u64,
    /// Σ background².
    pub bg2: u64,
    /// Σ luma × background.
    pub cross: u64,
}

impl Block {
    /// The block's contrast (standard deviation of luma), the background's, and the
    /// correlation of the two patterns (0 when either is flat).
    pub fn against_background(&self, samples: u32) -> (f32, f32, f32) {
        let n = f64::from(samples.max(1));
        let (c, b) = (f64::from(self.luma), f64::from(self.bg));
        let var_c = (self.luma2 as f64 - c * c / n).max(0.0);
        let var_b = (self.bg2 as f64 - b * b / n).max(0.0);
        let cov = self.cross as f64 - c * b / n;
        let corr = if var_c > n && var_b > n {
            cov / (var_c * var_b).sqrt()
        } else {
            0.0
        };
        (
            (var_c / n).sqrt() as f32,
            (var_b / n).sqrt() as f32,
            corr as f32,
        )
    }
}

/// Scene-wide figures of a frame, for the relative colour rules and the greyscale check.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct SceneLevels {
    /// Mean luma, Cb and Cr of the frame.
    pub mean: [f32; 3],
    /// Standard deviation of luma.
    pub luma_sd: f32,
    /// Fraction of samples with any colour (`|U−128|` or `|V−128|` above 6).
    pub coloured: f32,
    /// Least luma of a flame's core in this scene: a standard deviation above the mean, between
    /// 150 and 220.
    pub core: f32,
}

/// One chroma-resolution sample: mean luma of its 2×2 pixels, the chroma, the detail.
#[derive(Debug, Clone, Copy)]
struct Sample {
    y: u8,
    u: u8,
    v: u8,
    detail: u16,
}

/// Call `f(col, row, sample)` for every `step`-th sample each way of the grid's area, in row
/// order.
fn for_each_sample(
    frame: FrameView<'_>,
    grid: &Grid,
    step: usize,
    mut f: impl FnMut(usize, usize, Sample),
) {
    let (sw, sh) = (grid.cols * grid.side, grid.rows * grid.side);
    let w = frame.width as usize;
    match frame.format {
        Format::I420(_) => {
            let Some(p) = frame.planes() else { return };
            for j in (0..sh).step_by(step) {
                let (r0, r1) = (&p.y[2 * j * w..][..w], &p.y[(2 * j + 1) * w..][..w]);
                let (u, v) = (
                    &p.u[j * p.chroma_width..][..sw],
                    &p.v[j * p.chroma_width..][..sw],
                );
                for i in (0..sw).step_by(step) {
                    let (a, b) = (i32::from(r0[2 * i]), i32::from(r0[2 * i + 1]));
                    let (c, d) = (i32::from(r1[2 * i]), i32::from(r1[2 * i + 1]));
                    f(
                        i,
                        j,
                        Sample {
                            y: ((a + b + c + d + 2) >> 2) as u8,
                            u: u[i],
                            v: v[i],
                            detail: ((a - b).abs() + (a - c).abs()) as u16,
                        },
                    );
                }
            }
        }
        Format::Rgb => {
            if frame.check().is_err() {
                return;
            }
            let px = |x: usize, y: usize| {
                let o = 3 * (y * w + x);
                let d = &frame.data[o..o + 3];
                [i32::from(d[0]), i32::from(d[1]), i32::from(d[2])]
            };
            // BT.601 full range, fixed point (×256).
            let luma = |p: [i32; 3]| (77 * p[0] + 150 * p[1] + 29 * p[2] + 128) >> 8;
            for j in (0..sh).step_by(step) {
                for i in (0..sw).step_by(step) {
                    let q = [
                        px(2 * i, 2 * j),
                        px(2 * i + 1, 2 * j),
                        px(2 * i, 2 * j + 1),
                        px(2 * i + 1, 2 * j + 1),
                    ];
                    let m: [i32; 3] =
                        std::array::from_fn(|k| (q[0][k] + q[1][k] + q[2][k] + q[3][k] + 2) >> 2);
                    let (a, b, c) = (luma(q[0]), luma(q[1]), luma(q[2]));
                    let y = luma(m);
                    let u =
                        (((-43 * m[0] - 85 * m[1] + 128 * m[2] + 128) >> 8) + 128).clamp(0, 255);
                    let v =
                        (((128 * m[0] - 107 * m[1] - 21 * m[2] + 128) >> 8) + 128).clamp(0, 255);
                    f(
                        i,
                        j,
                        Sample {
                            y: y.clamp(0, 255) as u8,
                            u: u as u8,
                            v: v as u8,
                            detail: ((a - b).abs() + (a - c).abs()) as u16,
                        },
                    );
                }
            }
        }
    }
}

/// The scene-wide levels of `frame` (every other sample each way: the means need no more).
pub fn levels(frame: FrameView<'_>, grid: &Grid) -> SceneLevels {
    let (mut n, mut sy, mut syy, mut su, mut sv, mut col) = (0u64, 0u64, 0u64, 0u64, 0u64, 0u64);
    for_each_sample(frame, grid, 2, |_, _, s| {
        let y = u64::from(s.y);
        n += 1;
        sy += y;
        syy += y * y;
        su += u64::from(s.u);
        sv += u64::from(s.v);
        col += u64::from(s.u.abs_diff(128) > 6 || s.v.abs_diff(128) > 6);
    });
    let n = n.max(1) as f64;
    let my = sy as f64 / n;
    let sd = (syy as f64 / n - my * my).max(0.0).sqrt();
    SceneLevels {
        mean: [my as f32, (su as f64 / n) as f32, (sv as f64 / n) as f32],
        luma_sd: sd as f32,
        coloured: (col as f64 / n) as f32,
        core: (my + sd).clamp(150.0, 220.0) as f32,
    }
}

/// The fire-colour rule of one frame, after Çelik & Demirel's YCbCr rules: brighter than its
/// chroma, red over blue by a margin, brighter and redder and less blue than the scene. The
/// scene's means are rounded to whole levels once a frame.
#[derive(Debug, Clone, Copy)]
struct FireColour {
    /// Least luma: 90, or the scene's mean when higher.
    y_min: i32,
    /// Most blue chroma: the scene's mean.
    u_max: i32,
    /// Least red chroma: 136, or the scene's mean when higher.
    v_min: i32,
}

impl FireColour {
    fn of(scene: &SceneLevels) -> FireColour {
        FireColour {
            y_min: (scene.mean[0].ceil() as i32).max(90),
            u_max: scene.mean[1].floor() as i32,
            v_min: (scene.mean[2].ceil() as i32).max(136),
        }
    }

    #[inline]
    fn test(&self, y: u8, u: u8, v: u8) -> bool {
        let (y, u, v) = (i32::from(y), i32::from(u), i32::from(v));
        y >= self.y_min && y > u && v - u >= 32 && v >= self.v_min && u <= self.u_max
    }
}

/// Per-sample images a camera keeps: the previous frame's luma and the slow background.
#[derive(Debug, Clone)]
pub struct Images {
    /// The previous frame's luma, one byte per sample of the grid's area.
    pub last: Vec<u8>,
    /// Whether each sample had fire colour on the previous frame.
    pub was_fire: Vec<bool>,
    /// The background's luma per sample, fixed point (×256).
    pub background: Vec<u16>,
    /// Per block: how fast its samples' background follows the frame, as a right shift (5:
    /// 1/32 of the difference a frame; 9: 1/512).
    pub follow: Vec<u8>,
}

impl Images {
    /// Images for `grid`, to be filled by the first frame ([`measure`] with `first`).
    pub fn new(grid: &Grid) -> Images {
        let n = grid.cols * grid.side * grid.rows * grid.side;
        Images {
            last: vec![0; n],
            was_fire: vec![false; n],
            background: vec![0; n],
            follow: vec![5; grid.len()],
        }
    }
}

/// Fill `blocks` (one per grid block, row order) from `frame`; compare each sample with the
/// previous frame's and with the background in `images`, then update both (the background by
/// its block's `follow` rate). `first`: the camera's first frame, which becomes the previous
/// frame and the background.
pub fn measure(
    frame: FrameView<'_>,
    grid: &Grid,
    scene: &SceneLevels,
    images: &mut Images,
    first: bool,
    blocks: &mut [Block],
) {
    blocks.fill(Block::default());
    let sw = grid.cols * grid.side;
    let shift = grid.side.trailing_zeros(); // side is a power of two
    let colour = FireColour::of(scene);
    let core = scene.core.ceil() as u8;
    let Images {
        last,
        was_fire,
        background,
        follow,
    } = images;
    for_each_sample(frame, grid, 1, |i, j, s| {
        let k = (j >> shift) * grid.cols + (i >> shift);
        let b = &mut blocks[k];
        let at = j * sw + i;
        let y = s.y;
        if first {
            last[at] = y;
            background[at] = u16::from(y) << 8;
        }
        let change = u32::from(y.abs_diff(last[at]));
        last[at] = y;
        let bg = &mut background[at];
        let bv = u32::from((*bg + 128) >> 8).min(255);
        let y32 = u32::from(y);
        let target = i32::from(y) << 8;
        *bg = (i32::from(*bg) + ((target - i32::from(*bg)) >> follow[k])) as u16;
        let sat = u32::from(s.u.abs_diff(128)) + u32::from(s.v.abs_diff(128));
        let fire = colour.test(y, s.u, s.v);
        let kept = fire && was_fire[at];
        was_fire[at] = fire;
        b.change += change;
        b.fire_change += if kept { change } else { 0 };
        b.fire_kept += u32::from(kept);
        b.luma += y32;
        b.bg += bv;
        b.luma2 += u64::from(y32 * y32);
        b.bg2 += u64::from(bv * bv);
        b.cross += u64::from(y32 * bv);
        b.sat += sat;
        b.detail += u32::from(s.detail);
        b.fire += u32::from(fire);
        b.core += u32::from(fire && y >= core);
        b.grey += u32::from(sat <= 20 && y >= 70);
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pixels::Yuv;

    #[test]
    fn grids_stay_bounded_for_any_frame_size() {
        for (w, h) in [
            (4, 4),
            (80, 60),
            (128, 96),
            (426, 240),
            (768, 576),
            (1920, 1080),
            (3840, 2160),
            (8192, 8192),
            (65535, 2),
        ] {
            let g = Grid::of(w, h);
            if let Some(g) = g {
                assert!(g.cols <= MAX_GRID && g.rows <= MAX_GRID, "{w}×{h}: {g:?}");
                assert!(g.cols * g.side * 2 <= w as usize && g.rows * g.side * 2 <= h as usize);
            } else {
                assert!(w < 4 || h < 4, "{w}×{h} has no grid");
            }
        }
        assert_eq!(Grid::of(768, 576).map(|g| g.side), Some(4));
        assert_eq!(Grid::of(2, 2), None);
    }

    #[test]
    fn odd_sizes_read_inside_the_planes() {
        let (w, h) = (13u32, 9u32);
        let data = vec![128u8; FrameView::i420(w, h, &[], Yuv::BT601).expected_len()];
        let f = FrameView::i420(w, h, &data, Yuv::BT601);
        let g = Grid::of(w, h).expect("grid");
        let mut images = Images::new(&g);
        let mut blocks = vec![Block::default(); g.len()];
        measure(f, &g, &levels(f, &g), &mut images, true, &mut blocks);
        assert!(blocks.iter().all(|b| b.luma == 128 * g.samples()));
        assert!(
            blocks
                .iter()
                .all(|b| b.bg == 128 * g.samples() && b.change == 0)
        );
    }

    #[test]
    fn a_veil_keeps_the_backgrounds_pattern_and_a_cover_does_not() {
        // A striped background; then the same stripes at a third of their contrast, brighter
        // (smoke); then a flat grey cover (a person's coat).
        let (w, h) = (16u32, 16u32);
        let frame = |f: &dyn Fn(usize) -> u8| {
            let mut d = vec![128u8; FrameView::i420(w, h, &[], Yuv::BT601).expected_len()];
            for (i, p) in d[..(w * h) as usize].iter_mut().enumerate() {
                *p = f(i % w as usize);
            }
            d
        };
        let stripes = frame(&|x| if (x / 2).is_multiple_of(2) { 60 } else { 180 });
        let veiled = frame(&|x| if (x / 2).is_multiple_of(2) { 140 } else { 180 });
        let covered = frame(&|_| 150);
        let g = Grid::of(w, h).expect("grid");
        let mut images = Images::new(&g);
        images.follow.fill(15); // keep the background still
        let mut blocks = vec![Block::default(); g.len()];
        let mut run = |d: &[u8], first| {
            let f = FrameView::i420(w, h, d, Yuv::BT601);
            measure(f, &g, &levels(f, &g), &mut images, first, &mut blocks);
            blocks[0].against_background(g.samples())
        };
        let (c, b, r) = run(&stripes, true);
        assert!(c > 50.0 && (c - b).abs() < 1.0 && r > 0.99, "{c} {b} {r}");
        let (c, b, r) = run(&veiled, false);
        assert!(c < b / 2.0 && r > 0.9, "veil: {c} {b} {r}");
        let (c, _, r) = run(&covered, false);
        assert!(c < 1.0 && r == 0.0, "cover: {c} {r}");
    }
}
