//! The built-in fire and smoke detector (`builtin = "fire"` in `[[models]]`): video fire
//! detection without a model file, from the cues commercial video fire detectors use.
//!
//! Each frame is cut into blocks ([`blocks`]); each block keeps a slow background and short
//! histories ([`cues`]); blocks whose cues agree are grouped into boxes ([`regions`]) labelled
//! `fire` (class 0) or `smoke` (class 1). The boxes go through the camera's filters, masks and
//! the fire confirmation like any model's detections, so incidents are the same.
//!
//! - **fire**: fire colour (YCbCr, relative to the scene) that flickers (its extent and
//!   brightness change from frame to frame) and persists in the same block;
//! - **smoke**: a grey, low-saturation veil in front of the background that washes its detail
//!   out, persisting;
//! - **hot spot** (greyscale streams only: night IR, white-hot thermal): a block far brighter
//!   than the scene that persists; relative, not radiometric.
//!
//! The state is per camera ([`Scene`], sized once per frame size): the agent hands each
//! camera's scene to the detector with [`crate::detect::Detector::swap_memory`]. Nothing
//! allocates per frame once a camera's scene exists.

pub mod blocks;
pub mod cues;
pub mod regions;

use std::path::PathBuf;
use std::time::Instant;

use blocks::{Block, Grid, Images, SceneLevels};
use cues::{Confidence, Memory};
use regions::{Accept, Regions};

use super::card::{Card, IncidentClass, LoadedCard};
use super::{DetectError, Detections, Detector, Forker, FrameView, ModelInfo, StageTimes};

/// Name incidents carry in `model.name`.
pub const NAME: &str = "vigil-firecue";
/// Version incidents carry in `model.version`: bumped whenever a threshold or cue changes.
pub const VERSION: &str = "1";
/// Class id of `fire`.
pub const FIRE: u16 = 0;
/// Class id of `smoke`.
pub const SMOKE: u16 = 1;
/// Default least score of a reported box (the card's `score_threshold`).
pub const SCORE_THRESHOLD: f32 = 0.5;
/// Fewest blocks of a smoke region, and the least share of the frame's blocks (1 %): smoke is
/// diffuse and spreads; a grey coat or a person standing in front of a wall is small.
pub const SMOKE_MIN_BLOCKS: u32 = 8;
/// Fewest blocks of a fire region (a flame smaller than four blocks, about 16×16 pixels of a
/// 768×576 frame, is not reported: a traffic cone beside passers-by is as large).
pub const FIRE_MIN_BLOCKS: u32 = 4;
/// Frames in a row without (with) colour before a stream counts as greyscale (colour again).
const GREYSCALE_FRAMES: u32 = 5;

/// The card of the built-in detector, as if it had one: labels, incident classes, threshold.
pub fn card() -> LoadedCard {
    let mut c = Card {
        name: NAME.into(),
        version: VERSION.into(),
        licence: "Apache-2.0".into(),
        provenance: "built into vigil (agent/src/detect/firecue): no weights".into(),
        score_threshold: SCORE_THRESHOLD,
        ..Card::default()
    };
    c.incidents.insert("fire".into(), IncidentClass::Fire);
    c.incidents.insert("smoke".into(), IncidentClass::Smoke);
    LoadedCard {
        card: c,
        path: PathBuf::from("builtin:fire"),
        model_path: PathBuf::new(),
        labels: super::Labels::parse("fire\nsmoke").unwrap_or_default(),
        builtin: Some(crate::config::Builtin::Fire),
    }
}

/// What the detector remembers of one camera: the grid of its frame size and every block's
/// memory, plus reusable working space.
#[derive(Debug)]
pub struct Scene {
    grid: Grid,
    images: Images,
    blocks: Vec<Block>,
    memory: Vec<Memory>,
    fire: Vec<f32>,
    smoke: Vec<f32>,
    core: Vec<bool>,
    regions: Regions,
    frames: u64,
    /// Frames in a row whose colour disagreed with `greyscale`.
    run: u32,
    greyscale: bool,
}

impl Scene {
    fn new(grid: Grid) -> Scene {
        let n = grid.len();
        Scene {
            grid,
            images: Images::new(&grid),
            blocks: vec![Block::default(); n],
            memory: vec![Memory::default(); n],
            fire: vec![0.0; n],
            smoke: vec![0.0; n],
            core: vec![false; n],
            regions: Regions::new(&grid),
            frames: 0,
            run: 0,
            greyscale: false,
        }
    }

    /// Whether the stream is greyscale (no colour for several frames): the colour cues cannot
    /// see anything, the hot-spot cue takes over for fire.
    pub fn greyscale(&self) -> bool {
        self.greyscale
    }

    /// Frames analysed since the scene started.
    pub fn frames(&self) -> u64 {
        self.frames
    }

    fn track_colour(&mut self, scene: &SceneLevels) {
        let grey_now = scene.coloured < 0.02;
        if grey_now == self.greyscale {
            self.run = 0;
            return;
        }
        self.run += 1;
        if self.run >= GREYSCALE_FRAMES || self.frames == 0 {
            self.greyscale = grey_now;
            self.run = 0;
            tracing::info!(
                greyscale = grey_now,
                "{}",
                if grey_now {
                    "the stream has no colour: fire by hot spots (relative brightness), smoke by lost detail; the colour cues are off"
                } else {
                    "the stream has colour: every fire and smoke cue is on"
                }
            );
        }
    }

    /// Analyse one frame into `out` (appended).
    fn analyse(&mut self, frame: FrameView<'_>, floor: f32, out: &mut Detections) -> StageTimes {
        let t0 = Instant::now();
        let levels = blocks::levels(frame, &self.grid);
        let first = self.frames == 0;
        blocks::measure(
            frame,
            &self.grid,
            &levels,
            &mut self.images,
            first,
            &mut self.blocks,
        );
        let t1 = Instant::now();
        self.track_colour(&levels);
        let samples = self.grid.samples();
        for (i, b) in self.blocks.iter().enumerate() {
            let m = &mut self.memory[i];
            let c = if self.frames == 0 {
                *m = Memory::start(b, samples);
                Confidence::default()
            } else {
                m.step(b, samples, &levels, self.greyscale)
            };
            self.fire[i] = c.fire;
            self.smoke[i] = c.smoke;
            self.core[i] = c.core;
            self.images.follow[i] = if c.busy { 9 } else { 5 };
        }
        self.frames += 1;
        let t2 = Instant::now();
        let g = self.grid;
        let fire = Accept {
            class: FIRE,
            floor,
            min_blocks: FIRE_MIN_BLOCKS,
        };
        let smoke = Accept {
            class: SMOKE,
            floor,
            min_blocks: SMOKE_MIN_BLOCKS.max((g.len() / 200) as u32),
        };
        self.regions
            .find(&g, &self.fire, Some(&self.core), fire, out);
        self.regions.find(&g, &self.smoke, None, smoke, out);
        out.sort_unstable_by(|a, b| b.score.total_cmp(&a.score));
        StageTimes {
            pre: t1 - t0,
            inference: t2 - t1,
            post: t2.elapsed(),
        }
    }
}

/// Per-camera memory a detector keeps between frames; see [`Detector::swap_memory`].
pub type CameraMemory = Option<Box<dyn std::any::Any + Send>>;

/// The `T` in `memory`, made afresh by `fresh` when there is none, it is of another type, or
/// it does not `fit` (the camera's frame size changed). Allocates only then.
pub fn memory_of<T: std::any::Any + Send>(
    memory: &mut CameraMemory,
    fits: impl Fn(&T) -> bool,
    fresh: impl FnOnce() -> T,
) -> &mut T {
    let keep = memory
        .as_ref()
        .and_then(|m| m.downcast_ref::<T>())
        .is_some_and(fits);
    if !keep {
        *memory = Some(Box::new(fresh()));
    }
    match memory.as_mut().and_then(|m| m.downcast_mut::<T>()) {
        Some(t) => t,
        None => unreachable!("just stored a T"),
    }
}

/// The built-in detector. One per inference thread, like a model's; the per-camera state
/// travels with the camera ([`Detector::swap_memory`]).
pub struct FireCue {
    info: ModelInfo,
    floor: f32,
    memory: CameraMemory,
}

impl FireCue {
    /// A detector with the default threshold.
    pub fn new() -> FireCue {
        FireCue {
            info: ModelInfo::of(&card()),
            floor: SCORE_THRESHOLD,
            memory: None,
        }
    }

    /// The least score of a reported box.
    pub fn floor(&self) -> f32 {
        self.floor
    }

    /// The current camera's scene, if a frame was analysed since its memory was handed in.
    pub fn scene(&self) -> Option<&Scene> {
        self.memory.as_ref()?.downcast_ref::<Scene>()
    }
}

impl Default for FireCue {
    fn default() -> Self {
        FireCue::new()
    }
}

impl Detector for FireCue {
    fn info(&self) -> &ModelInfo {
        &self.info
    }

    fn engine(&self) -> &'static str {
        "builtin"
    }

    fn detect_timed(
        &mut self,
        frame: FrameView<'_>,
        out: &mut Detections,
    ) -> Result<StageTimes, DetectError> {
        out.clear();
        frame.check().map_err(DetectError::Frame)?;
        let Some(grid) = Grid::of(frame.width, frame.height) else {
            return Ok(StageTimes::default()); // under 4 pixels: nothing to see
        };
        // First frame of this camera, or its frame size changed: start over.
        let scene = memory_of(
            &mut self.memory,
            |s: &Scene| s.grid == grid,
            || Scene::new(grid),
        );
        Ok(scene.analyse(frame, self.floor, out))
    }

    fn lower_thresholds(&mut self, t: f32) {
        self.floor = self.floor.min(t.max(regions::JOIN));
    }

    fn swap_memory(&mut self, memory: &mut CameraMemory) {
        std::mem::swap(&mut self.memory, memory);
    }

    fn forker(&self) -> Forker {
        let floor = self.floor;
        std::sync::Arc::new(move || {
            let mut d = FireCue::new();
            d.floor = floor;
            Ok(Box::new(d) as Box<dyn Detector>)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pixels::Yuv;

    /// A grey 64×64 I420 frame with an orange square whose size and brightness flicker: its
    /// edge moves inside a column of blocks (as a flame's does), its core brightens and dims.
    fn frame(k: usize, flame: bool) -> Vec<u8> {
        let (w, h) = (64usize, 64usize);
        let mut d = vec![0u8; w * h + 2 * (w / 2) * (h / 2)];
        let (y, uv) = d.split_at_mut(w * h);
        let (u, v) = uv.split_at_mut((w / 2) * (h / 2));
        y.fill(90);
        u.fill(128);
        v.fill(128);
        if flame {
            let side = if k.is_multiple_of(2) { 22 } else { 18 };
            let bright = if k.is_multiple_of(2) { 230 } else { 190 };
            for r in 16..16 + side {
                for c in 16..16 + side {
                    y[r * w + c] = bright;
                    u[(r / 2) * (w / 2) + c / 2] = 80;
                    v[(r / 2) * (w / 2) + c / 2] = 190;
                }
            }
        }
        d
    }

    #[test]
    fn a_flickering_orange_patch_is_reported_as_fire_and_its_memory_moves() {
        let mut det = FireCue::new();
        let mut out = Detections::new();
        let mut seen = None;
        for k in 0..12 {
            let f = frame(k, true);
            det.detect(FrameView::i420(64, 64, &f, Yuv::BT601), &mut out)
                .expect("detect");
            if seen.is_none() && out.iter().any(|d| d.class == FIRE) {
                seen = Some(k);
            }
        }
        assert!(seen.is_some_and(|k| k <= 6), "{seen:?}");
        let d = out.iter().find(|d| d.class == FIRE).expect("fire");
        // The patch's steady core (16–32 px of 64) at least, nothing outside the patch.
        let [x1, y1, x2, y2] = d.bbox;
        assert!(x1 == 0.25 && y1 == 0.25, "{:?}", d.bbox);
        assert!(
            (0.5..=0.625).contains(&x2) && (0.5..=0.625).contains(&y2),
            "{:?}",
            d.bbox
        );
        // The memory belongs to the camera: swapping in another camera's (none) starts fresh.
        let mut other: CameraMemory = None;
        det.swap_memory(&mut other);
        assert!(det.scene().is_none());
        let f = frame(0, true);
        det.detect(FrameView::i420(64, 64, &f, Yuv::BT601), &mut out)
            .expect("detect");
        assert!(out.is_empty(), "a fresh scene has no history: {out:?}");
        det.swap_memory(&mut other);
        assert_eq!(det.scene().map(Scene::frames), Some(12));
    }

    #[test]
    fn a_stream_without_colour_is_seen_as_greyscale_and_back() {
        let mut det = FireCue::new();
        let mut out = Detections::new();
        let grey = vec![128u8; 64 * 64 * 3 / 2];
        let colour = frame(0, true);
        let mut run = |d: &[u8], n: usize| {
            for _ in 0..n {
                det.detect(FrameView::i420(64, 64, d, Yuv::BT601), &mut out)
                    .expect("detect");
            }
            det.scene().map(Scene::greyscale)
        };
        assert_eq!(run(&grey, 1), Some(true), "from the first frame");
        assert_eq!(run(&colour, 4), Some(true), "not before 5 coloured frames");
        assert_eq!(run(&colour, 1), Some(false));
        assert_eq!(run(&grey, 5), Some(true));
    }

    #[test]
    fn a_still_picture_raises_nothing_and_tiny_frames_are_fine() {
        let mut det = FireCue::new();
        let mut out = Detections::new();
        let f = frame(0, true);
        for _ in 0..40 {
            det.detect(FrameView::i420(64, 64, &f, Yuv::BT601), &mut out)
                .expect("detect");
            assert!(out.is_empty(), "{out:?}");
        }
        for (w, h) in [(1u32, 1u32), (3, 2), (4, 4), (5, 7)] {
            let d = vec![128u8; FrameView::i420(w, h, &[], Yuv::BT601).expected_len()];
            det.detect(FrameView::i420(w, h, &d, Yuv::BT601), &mut out)
                .expect("detect");
        }
        assert!(
            det.detect(FrameView::i420(64, 64, &f[..10], Yuv::BT601), &mut out)
                .is_err()
        );
    }
}
