//! The temporal cues of one block, frame after frame: a slow background (luma, saturation,
//! detail), and short bit histories of when the block had fire colour, smoke's look, or a hot
//! spot. A block's confidence for each kind comes from all of its cues together, so that colour
//! alone (a red coat, a sunset, a lamp) never makes fire and greyness alone never makes smoke.
//!
//! The cues count analysed frames, not seconds: the rates they need are in `docs/fire.md`.

use super::blocks::{Block, SceneLevels};

/// Frames of fire and hot-spot history that count (the last 8).
pub const FIRE_FRAMES: u32 = 8;
/// Frames of smoke history that count (the last 16): smoke builds up slower than flame.
pub const SMOKE_FRAMES: u32 = 16;
/// Frame-to-frame change (see [`Memory::flicker`]) at which flicker counts in full.
pub const FLICKER_FULL: f32 = 0.45;
/// Least flicker a fire block needs at all: still pictures, steady lamps, signs and traffic
/// cones under a video codec's noise stay below it.
pub const FLICKER_MIN: f32 = 0.2;
/// Mean luma change of the fire-coloured samples from one frame to the next that counts as
/// full flicker (flames: tens of levels; a lamp under codec noise: 2–3).
pub const FLICKER_LUMA: f32 = 24.0;
/// Least [`Memory::shape`] of a flame's core block: a fire region needs a bright block whose
/// fire-coloured extent keeps changing.
pub const SHAPE_MIN: f32 = 0.1;
/// Least share of the last [`FIRE_FRAMES`] frames on which a flame's core block turned
/// brighter after darker or darker after brighter ([`Memory::turn_bits`]).
pub const TURNS_MIN: f32 = 0.25;
/// Least mean frame-to-frame luma change of a block of dense smoke (codec noise on a still
/// surface stays near 1–2).
pub const DENSE_CHURN: f32 = 1.5;
/// A block has fire colour when this fraction of its samples has.
pub const FIRE_COLOUR_MIN: f32 = 0.15;
/// Frames the background takes to follow a change of a block that is not a candidate (about
/// 1/e after this many frames).
pub const BACKGROUND_FRAMES: f32 = 32.0;
/// … and of a block that is one: slow enough that smoke building up for a minute at 5 fps is
/// not absorbed.
pub const FOREGROUND_FRAMES: f32 = 512.0;

/// What a block remembers between frames. Plain data, fixed size.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Memory {
    /// Background mean luma, saturation and detail per sample.
    pub bg: [f32; 3],
    /// Bit k: the frame k frames ago had fire colour in this block.
    pub fire_bits: u16,
    /// Bit k: smoke's look k frames ago.
    pub smoke_bits: u16,
    /// Bit k: a hot spot k frames ago (greyscale streams).
    pub hot_bits: u16,
    /// The previous frame's fire-colour fraction and mean luma.
    pub last: [f32; 2],
    /// The previous frame-to-frame change of the block's mean luma.
    pub last_step: f32,
    /// Bit k: on the frame k frames ago, the block's brightness turned (rose after falling or
    /// fell after rising) by a visible step: flames flicker irregularly, a moving object's
    /// shading changes smoothly.
    pub turn_bits: u16,
    /// Moving average of the frame-to-frame change of the block's fire colour and brightness:
    /// flames flicker, lamps, signs and red objects do not.
    pub flicker: f32,
    /// Moving average of the change of the fire colour's extent alone (`|Δ fraction|`, ×2):
    /// a flame's edge moves; a sign whose pixels shimmer under codec noise keeps its shape.
    pub shape: f32,
}

/// A block's confidence in each kind on this frame, 0..1.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Confidence {
    /// Flame (colour + flicker + persistence), or a hot spot on a greyscale stream.
    pub fire: f32,
    /// Smoke (grey veil + lost detail + persistence).
    pub smoke: f32,
    /// Something is going on in the block: its background should follow it only slowly.
    pub busy: bool,
    /// The block holds a flame's bright core (see [`Block::core`]) whose extent changes from
    /// frame to frame ([`Memory::shape`]), or a hot spot; a fire region needs one.
    pub core: bool,
}

fn ones(bits: u16, frames: u32) -> f32 {
    (u32::from(bits) & ((1u32 << frames) - 1)).count_ones() as f32 / frames as f32
}

impl Memory {
    /// A block seen for the first time: its background is what it shows now.
    pub fn start(b: &Block, samples: u32) -> Memory {
        let n = samples as f32;
        let (luma, sat, detail) = (b.luma as f32 / n, b.sat as f32 / n, b.detail as f32 / n);
        Memory {
            bg: [luma, sat, detail],
            last: [b.fire as f32 / n, luma],
            ..Memory::default()
        }
    }

    /// Take this frame's block `b` (of `samples` samples) into account and return the block's
    /// confidences. `greyscale`: the stream has no colour (night IR, thermal).
    pub fn step(
        &mut self,
        b: &Block,
        samples: u32,
        scene: &SceneLevels,
        greyscale: bool,
    ) -> Confidence {
        let n = samples as f32;
        let fire = b.fire as f32 / n;
        let luma = b.luma as f32 / n;
        let sat = b.sat as f32 / n;
        let detail = b.detail as f32 / n;

        let coloured = fire >= FIRE_COLOUR_MIN;
        // Flicker: how much the fire-coloured samples' brightness jumps from frame to frame,
        // and the colour's extent; on a greyscale stream, the block's brightness.
        let jump = if greyscale {
            b.change as f32 / n
        } else {
            b.fire_change as f32 / (b.fire_kept.max(1) as f32)
        };
        let d = (jump / FLICKER_LUMA).min(1.0) * 0.7
            + ((fire - self.last[0]).abs() * 2.0).min(1.0) * 0.3;
        if coloured || self.last[0] >= FIRE_COLOUR_MIN || greyscale {
            self.flicker += (d.min(1.0) - self.flicker) * 0.25;
            let s = ((fire - self.last[0]).abs() * 2.0).min(1.0);
            self.shape += (s - self.shape) * 0.25;
        } else {
            self.flicker *= 0.6;
            self.shape *= 0.6;
        }
        let step = luma - self.last[1];
        let turned =
            step.abs() >= 2.0 && self.last_step.abs() >= 2.0 && step * self.last_step < 0.0;
        self.turn_bits = (self.turn_bits << 1) | u16::from(turned);
        self.last_step = step;
        self.last = [fire, luma];
        self.fire_bits = (self.fire_bits << 1) | u16::from(coloured);

        let [bg_luma, bg_sat, bg_detail] = self.bg;
        let grey = b.grey as f32 / n;
        // Smoke is a veil: the background's pattern still shows through it (correlation),
        // with less contrast and less fine detail; an opaque object replaces the pattern.
        let (contrast, bg_contrast, alike) = b.against_background(samples);
        let lost = if bg_contrast >= 8.0 {
            (1.0 - contrast / bg_contrast).max(0.0)
        } else {
            0.0
        };
        let blurred = bg_detail >= 2.0 && detail <= 0.8 * bg_detail;
        // A light veil: brighter than the background, or as bright and less colourful (dark
        // smoke is not seen: docs/fire.md).
        let veiled = luma >= bg_luma + 4.0 || (luma >= bg_luma - 4.0 && sat + 2.0 < bg_sat * 0.7);
        // Thin smoke shows the background through it; dense smoke or fog is a bright, even,
        // grey cover that lightened the scene a lot and churns (the ground a parked car or a
        // standing person uncovered is as bright and even, but still).
        let thin = alike >= 0.6 && veiled;
        let churn = b.change as f32 / n;
        let dense = lost >= 0.6 && luma >= 150.0 && luma >= bg_luma + 20.0 && churn >= DENSE_CHURN;
        let smoky = grey >= 0.6 && lost >= 0.35 && blurred && (thin || dense);
        self.smoke_bits = (self.smoke_bits << 1) | u16::from(smoky);

        let hot =
            greyscale && luma >= 160.0 && luma >= scene.mean[0] + 3.0 * scene.luma_sd.max(8.0);
        self.hot_bits = (self.hot_bits << 1) | u16::from(hot);

        let mut c = Confidence {
            core: b.core * 16 >= samples
                && b.core > 0
                && self.shape >= SHAPE_MIN
                && ones(self.turn_bits, FIRE_FRAMES) >= TURNS_MIN,
            ..Confidence::default()
        };
        let flicker = ((self.flicker - FLICKER_MIN) / (FLICKER_FULL - FLICKER_MIN)).clamp(0.0, 1.0);
        if coloured && self.flicker >= FLICKER_MIN {
            let persist = ones(self.fire_bits, FIRE_FRAMES);
            c.fire = persist * flicker * (fire / 0.3).clamp(0.5, 1.0);
        }
        if hot {
            c.core = true;
            let persist = ones(self.hot_bits, FIRE_FRAMES);
            c.fire = c.fire.max(persist * (0.6 + 0.4 * flicker));
        }
        if smoky {
            let persist = ones(self.smoke_bits, SMOKE_FRAMES);
            c.smoke = (persist * 1.25 - 0.125).clamp(0.0, 1.0) * (lost / 0.5).min(1.0);
        }

        // The background follows the scene, slowly where something is going on.
        c.busy = coloured || smoky || hot;
        let k = 1.0
            / if c.busy {
                FOREGROUND_FRAMES
            } else {
                BACKGROUND_FRAMES
            };
        for (bg, now) in self.bg.iter_mut().zip([luma, sat, detail]) {
            *bg += (now - *bg) * k;
        }
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const N: u32 = 16;

    /// A block of `N` samples: `fire`, `grey` sample counts, mean luma, saturation, detail and
    /// change per sample (every fire sample changing by `change`), its contrast equal to the
    /// background's, which it matches.
    fn block(fire: u32, grey: u32, luma: u32, sat: u32, detail: u32, change: u32) -> Block {
        let mut b = Block {
            fire,
            grey,
            sat: sat * N,
            detail: detail * N,
            change: change * N,
            fire_change: change * fire,
            fire_kept: fire,
            core: if luma >= 180 { fire } else { 0 },
            ..Block::default()
        };
        sums(&mut b, luma as f64, 10.0, luma as f64, 10.0, 1.0);
        b
    }

    /// Set the luma and background sums for means, standard deviations and correlation.
    fn sums(b: &mut Block, c: f64, sc: f64, bg: f64, sb: f64, rho: f64) {
        let n = f64::from(N);
        b.luma = (n * c) as u32;
        b.bg = (n * bg) as u32;
        b.luma2 = (n * (sc * sc + c * c)) as u64;
        b.bg2 = (n * (sb * sb + bg * bg)) as u64;
        b.cross = (n * (rho * sc * sb + c * bg)) as u64;
    }

    fn run(frames: &[Block], greyscale: bool) -> Vec<Confidence> {
        let scene = SceneLevels {
            mean: [100.0, 128.0, 128.0],
            luma_sd: 20.0,
            coloured: if greyscale { 0.0 } else { 0.5 },
            core: 180.0,
        };
        let mut m = Memory::start(&frames[0], N);
        frames
            .iter()
            .map(|b| m.step(b, N, &scene, greyscale))
            .collect()
    }

    #[test]
    fn flickering_fire_colour_becomes_fire_within_a_few_frames() {
        // The flame's extent and brightness jump from frame to frame.
        let frames: Vec<Block> = (0..12)
            .map(|k: u32| {
                if k.is_multiple_of(2) {
                    block(12, 0, 200, 60, 10, 30)
                } else {
                    block(6, 0, 160, 60, 10, 30)
                }
            })
            .collect();
        let c = run(&frames, false);
        let first = c.iter().position(|c| c.fire >= 0.5);
        assert!(first.is_some_and(|f| f <= 6), "{c:?}");
        assert!(c.iter().all(|c| c.smoke == 0.0));
    }

    #[test]
    fn steady_fire_colour_is_not_fire() {
        // A red coat, a sodium lamp, a sunset: the colour is there on every frame, unchanging.
        let frames = vec![block(12, 0, 200, 60, 10, 1); 40];
        assert!(run(&frames, false).iter().all(|c| c.fire == 0.0));
    }

    #[test]
    fn a_flash_of_fire_colour_is_not_fire() {
        // Fire colour on two frames only (a passing red car's headlights).
        let mut frames = vec![block(0, 0, 100, 10, 10, 1); 20];
        frames[5] = block(12, 0, 200, 60, 10, 40);
        frames[6] = block(8, 0, 160, 60, 10, 40);
        assert!(run(&frames, false).iter().all(|c| c.fire < 0.5));
    }

    #[test]
    fn a_grey_veil_over_detail_becomes_smoke_and_a_grey_wall_or_a_coat_does_not() {
        // A textured background (contrast 12), then a grey veil: brighter, a third of the
        // contrast and the fine detail, the background's pattern still showing through.
        let mut frames = vec![block(0, 4, 90, 20, 12, 1); 10];
        let mut veil = block(0, 16, 140, 6, 3, 2);
        sums(&mut veil, 140.0, 4.0, 90.0, 12.0, 0.8);
        frames.extend(vec![veil; 20]);
        let c = run(&frames, false);
        let first = c.iter().position(|c| c.smoke >= 0.5);
        assert!(first.is_some_and(|f| (12..=22).contains(&f)), "{first:?}");
        // A grey, smooth wall that was always there: no veil, no lost detail.
        let wall = vec![block(0, 16, 140, 6, 3, 1); 30];
        assert!(run(&wall, false).iter().all(|c| c.smoke == 0.0));
        // A grey coat standing in front of the texture: the pattern is gone, not veiled.
        let mut coat = veil;
        sums(&mut coat, 140.0, 4.0, 90.0, 12.0, 0.05);
        let mut frames = vec![block(0, 4, 90, 20, 12, 1); 10];
        frames.extend(vec![coat; 20]);
        assert!(run(&frames, false).iter().all(|c| c.smoke == 0.0));
    }

    #[test]
    fn a_hot_spot_counts_only_on_a_greyscale_stream() {
        let mut frames = vec![block(0, 16, 90, 0, 5, 1); 5];
        frames.extend(vec![block(0, 0, 240, 0, 5, 10); 12]);
        let c = run(&frames, true);
        assert!(c.iter().any(|c| c.fire >= 0.5), "{c:?}");
        assert!(run(&frames, false).iter().all(|c| c.fire == 0.0));
    }
}
