//! The built-in fire detector fused with an ONNX fire/smoke model (`fuse_with` in `[[models]]`,
//! docs/fire.md): one detector whose boxes are the built-in detector's `fire` and `smoke`
//! (class ids 0 and 1), combined with the model's by the [`Fusion`] mode.
//!
//! - **agree**: a built-in box is reported only when the model saw the same kind overlapping
//!   it on this frame or one of the [`AGREE_FRAMES`] frames before. The model runs only on
//!   frames where the built-in detector reports something, so a quiet fire camera costs what
//!   the built-in detector costs.
//! - **either**: both detectors run on every frame and every box of either is reported; the
//!   model's scores are rescaled so that its card threshold meets the built-in one.
//!
//! Either way the result goes through the camera's filters and the fire confirmation like any
//! model's boxes, and fire and smoke are never muted, rate-limited or evicted.

use super::firecue::{self, CameraMemory, FireCue};
use super::{
    DetectError, Detection, Detections, Detector, Forker, FrameView, LoadedCard, ModelInfo,
    StageTimes,
};
use crate::config::Fusion;
use crate::detect::card::IncidentClass;

/// Frames (of the camera, analysed) a model sighting stays valid for agreement: at 5 fps,
/// 1.6 s. A model misses flames on some frames; the built-in detector's boxes flicker too.
pub const AGREE_FRAMES: u64 = 8;

/// What the fused detector remembers of one camera.
struct Memory {
    /// The built-in detector's own memory of the camera.
    cue: CameraMemory,
    /// Frames analysed.
    frame: u64,
    /// Per kind (fire, smoke): the frame of the model's last sighting and the union of its boxes.
    seen: [Option<(u64, [f32; 4])>; 2],
}

/// The built-in detector fused with a model.
pub struct Fused {
    cue: FireCue,
    model: Box<dyn Detector>,
    /// Per model class id: the kind it is (firecue's class id), if fire or smoke.
    kinds: Vec<Option<u16>>,
    /// The model's least score of a fire or smoke class (from its card).
    model_threshold: f32,
    mode: Fusion,
    info: ModelInfo,
    /// The model's boxes of the current frame (boxed: a frame's worth of candidates).
    scratch: Box<Detections>,
    memory: CameraMemory,
}

/// Per class id of `card`: the built-in class (fire 0, smoke 1) its `[incidents]` maps it to.
pub fn kinds_of(card: &LoadedCard) -> Vec<Option<u16>> {
    let mut kinds = vec![None; card.labels.len()];
    for (label, class) in &card.card.incidents {
        let kind = match class {
            IncidentClass::Fire => firecue::FIRE,
            IncidentClass::Smoke => firecue::SMOKE,
            IncidentClass::Security => continue,
        };
        if let Some(k) = card.labels.id(label).and_then(|id| kinds.get_mut(id)) {
            *k = Some(kind);
        }
    }
    kinds
}

/// The least score `card` reports of a class that is fire or smoke.
fn fire_threshold(card: &LoadedCard, kinds: &[Option<u16>]) -> f32 {
    kinds
        .iter()
        .enumerate()
        .filter(|(_, k)| k.is_some())
        .filter_map(|(id, _)| card.labels.name(id))
        .map(|n| {
            card.card
                .thresholds
                .get(n)
                .copied()
                .unwrap_or(card.card.score_threshold)
        })
        .fold(1.0, f32::min)
}

impl Fused {
    /// The built-in detector fused with `model` (built from `card`). Fails when the card maps
    /// no class to fire or smoke.
    pub fn new(model: Box<dyn Detector>, card: &LoadedCard, mode: Fusion) -> Result<Fused, String> {
        let kinds = kinds_of(card);
        if kinds.iter().all(Option::is_none) {
            return Err(format!(
                "model \"{}\" maps no class to fire or smoke (see [incidents] in its card)",
                card.card.name
            ));
        }
        let model_threshold = fire_threshold(card, &kinds);
        Ok(Fused::assemble(
            FireCue::new(),
            model,
            kinds,
            model_threshold,
            mode,
        ))
    }

    fn assemble(
        cue: FireCue,
        model: Box<dyn Detector>,
        kinds: Vec<Option<u16>>,
        model_threshold: f32,
        mode: Fusion,
    ) -> Fused {
        let (c, m) = (cue.info(), model.info());
        let info = ModelInfo {
            name: format!("{}+{}", c.name, m.name),
            version: format!("{}+{}", c.version, m.version),
            labels: c.labels.clone(),
            score_threshold: c.score_threshold,
        };
        Fused {
            cue,
            model,
            kinds,
            model_threshold,
            mode,
            info,
            scratch: Box::new(Detections::new()),
            memory: None,
        }
    }

    /// The model's score on the built-in scale: its threshold maps to the built-in one, 1 to 1.
    fn rescale(&self, score: f32) -> f32 {
        let (t, floor) = (self.model_threshold.min(0.999), firecue::SCORE_THRESHOLD);
        (floor + (score - t) / (1.0 - t) * (1.0 - floor)).clamp(0.0, 1.0)
    }

    /// Run the model on `frame` into the scratch list, as built-in classes; the union of its
    /// boxes per kind.
    fn run_model(
        &mut self,
        frame: FrameView<'_>,
        times: &mut StageTimes,
    ) -> Result<[Option<[f32; 4]>; 2], DetectError> {
        let t = self.model.detect_timed(frame, &mut self.scratch)?;
        times.pre += t.pre;
        times.inference += t.inference;
        times.post += t.post;
        let mut union: [Option<[f32; 4]>; 2] = [None, None];
        let mut kept = 0;
        for i in 0..self.scratch.len() {
            let d = self.scratch[i];
            let Some(kind) = self.kinds.get(usize::from(d.class)).copied().flatten() else {
                continue;
            };
            let u = &mut union[usize::from(kind)];
            *u = Some(u.map_or(d.bbox, |u| join(u, d.bbox)));
            self.scratch[kept] = Detection {
                class: kind,
                score: self.rescale(d.score),
                bbox: d.bbox,
            };
            kept += 1;
        }
        self.scratch.truncate(kept);
        Ok(union)
    }
}

fn join(a: [f32; 4], b: [f32; 4]) -> [f32; 4] {
    [
        a[0].min(b[0]),
        a[1].min(b[1]),
        a[2].max(b[2]),
        a[3].max(b[3]),
    ]
}

fn overlaps(a: [f32; 4], b: [f32; 4]) -> bool {
    a[0] < b[2] && b[0] < a[2] && a[1] < b[3] && b[1] < a[3]
}

/// Combine the built-in detector's boxes (`out`) with the model's of this frame (`model`, in
/// built-in classes; `union` per kind), remembering the model's sightings in `mem`.
fn combine(
    mode: Fusion,
    mem: &mut Memory,
    union: [Option<[f32; 4]>; 2],
    model: &[Detection],
    out: &mut Detections,
) {
    for (seen, u) in mem.seen.iter_mut().zip(union) {
        if let Some(u) = u {
            *seen = Some((mem.frame, u));
        }
    }
    match mode {
        Fusion::Agree => {
            let (seen, now) = (mem.seen, mem.frame);
            out.retain(|d| {
                seen.get(usize::from(d.class))
                    .copied()
                    .flatten()
                    .is_some_and(|(at, b)| now - at < AGREE_FRAMES && overlaps(b, d.bbox))
            });
        }
        Fusion::Either => {
            for &d in model {
                super::offer(out, d);
            }
            out.sort_unstable_by(|a, b| b.score.total_cmp(&a.score));
        }
    }
}

/// The built-in detector's memory of a camera inside `memory`, whether the camera runs the
/// built-in detector alone or fused.
pub fn scene_of(memory: &CameraMemory) -> Option<&firecue::Scene> {
    let m = memory.as_ref()?;
    m.downcast_ref::<firecue::Scene>().or_else(|| {
        m.downcast_ref::<Memory>()?
            .cue
            .as_ref()?
            .downcast_ref::<firecue::Scene>()
    })
}

impl Detector for Fused {
    fn info(&self) -> &ModelInfo {
        &self.info
    }

    fn engine(&self) -> &'static str {
        self.model.engine()
    }

    fn detect_timed(
        &mut self,
        frame: FrameView<'_>,
        out: &mut Detections,
    ) -> Result<StageTimes, DetectError> {
        let fresh = || Memory {
            cue: None,
            frame: 0,
            seen: [None, None],
        };
        let mem = firecue::memory_of(&mut self.memory, |_: &Memory| true, fresh);
        mem.frame += 1;
        self.cue.swap_memory(&mut mem.cue);
        let cued = self.cue.detect_timed(frame, out);
        self.cue.swap_memory(&mut mem.cue);
        let mut times = cued?;
        if self.mode == Fusion::Agree && out.is_empty() {
            return Ok(times); // nothing to corroborate: the model need not run
        }
        let union = self.run_model(frame, &mut times)?;
        let mem = firecue::memory_of(&mut self.memory, |_: &Memory| true, fresh);
        combine(self.mode, mem, union, &self.scratch, out);
        Ok(times)
    }

    fn lower_thresholds(&mut self, t: f32) {
        self.cue.lower_thresholds(t);
    }

    fn swap_memory(&mut self, memory: &mut CameraMemory) {
        std::mem::swap(&mut self.memory, memory);
    }

    fn forker(&self) -> Forker {
        let (floor, model) = (self.cue.floor(), self.model.forker());
        let (kinds, threshold, mode) = (self.kinds.clone(), self.model_threshold, self.mode);
        std::sync::Arc::new(move || {
            let mut cue = FireCue::new();
            cue.lower_thresholds(floor);
            let fused = Fused::assemble(cue, model()?, kinds.clone(), threshold, mode);
            Ok(Box::new(fused) as Box<dyn Detector>)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::firecue::{FIRE, SMOKE};
    use crate::pixels::Yuv;

    fn det(class: u16, score: f32, bbox: [f32; 4]) -> Detection {
        Detection { class, score, bbox }
    }

    fn memory(frame: u64) -> Memory {
        Memory {
            cue: None,
            frame,
            seen: [None, None],
        }
    }

    const LEFT: [f32; 4] = [0.1, 0.1, 0.3, 0.3];
    const RIGHT: [f32; 4] = [0.6, 0.1, 0.8, 0.3];

    #[test]
    fn agreement_needs_the_same_kind_overlapping_within_a_few_frames() {
        let mut mem = memory(1);
        let mut out = Detections::new();
        // The model sees fire on the left on frame 1.
        combine(Fusion::Agree, &mut mem, [Some(LEFT), None], &[], &mut out);
        // Frame 2: the built-in detector sees fire left and right, smoke left.
        mem.frame = 2;
        for d in [
            det(FIRE, 0.7, LEFT),
            det(FIRE, 0.9, RIGHT),
            det(SMOKE, 0.8, LEFT),
        ] {
            out.push(d).expect("room");
        }
        combine(Fusion::Agree, &mut mem, [None, None], &[], &mut out);
        assert_eq!(
            out.as_slice(),
            [det(FIRE, 0.7, LEFT)],
            "only the corroborated box"
        );
        // The sighting of frame 1 still counts on frame 8, no longer on frame 9.
        for (frame, kept) in [(1 + AGREE_FRAMES - 1, 1), (1 + AGREE_FRAMES, 0)] {
            mem.frame = frame;
            out.clear();
            out.push(det(FIRE, 0.7, LEFT)).expect("room");
            combine(Fusion::Agree, &mut mem, [None, None], &[], &mut out);
            assert_eq!(out.len(), kept, "frame {frame}");
        }
    }

    #[test]
    fn either_reports_every_box_of_both_best_first() {
        let mut mem = memory(1);
        let mut out = Detections::new();
        out.push(det(FIRE, 0.6, LEFT)).expect("room");
        let model = [det(SMOKE, 0.8, RIGHT)];
        combine(
            Fusion::Either,
            &mut mem,
            [None, Some(RIGHT)],
            &model,
            &mut out,
        );
        assert_eq!(
            out.as_slice(),
            [det(SMOKE, 0.8, RIGHT), det(FIRE, 0.6, LEFT)]
        );
        assert_eq!(mem.seen, [None, Some((1, RIGHT))]);
    }

    /// A model that reports one box of class `class` on every frame and counts its calls.
    struct Fixed {
        info: ModelInfo,
        class: u16,
        calls: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    }

    impl Detector for Fixed {
        fn info(&self) -> &ModelInfo {
            &self.info
        }
        fn engine(&self) -> &'static str {
            "test"
        }
        fn detect_timed(
            &mut self,
            _: FrameView<'_>,
            out: &mut Detections,
        ) -> Result<StageTimes, DetectError> {
            self.calls
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            out.clear();
            out.push(det(self.class, 0.3, LEFT)).expect("room");
            out.push(det(0, 0.9, RIGHT)).expect("room");
            Ok(StageTimes::default())
        }
        fn lower_thresholds(&mut self, _: f32) {}
        fn forker(&self) -> Forker {
            let (info, class, calls) = (self.info.clone(), self.class, self.calls.clone());
            std::sync::Arc::new(move || {
                let (info, calls) = (info.clone(), calls.clone());
                Ok(Box::new(Fixed { info, class, calls }) as Box<dyn Detector>)
            })
        }
    }

    /// A card with labels person, smoke, flame; flame is fire and smoke is smoke.
    fn card() -> LoadedCard {
        let mut c = firecue::card();
        c.card.name = "flames".into();
        c.card.score_threshold = 0.3;
        c.card.incidents.clear();
        c.card.incidents.insert("flame".into(), IncidentClass::Fire);
        c.card
            .incidents
            .insert("smoke".into(), IncidentClass::Smoke);
        c.labels = crate::detect::Labels::parse("person\nsmoke\nflame").expect("labels");
        c
    }

    fn fused(mode: Fusion, calls: &std::sync::Arc<std::sync::atomic::AtomicUsize>) -> Fused {
        let c = card();
        let model = Fixed {
            info: ModelInfo::of(&c),
            class: 2,
            calls: calls.clone(),
        };
        Fused::new(Box::new(model), &c, mode).expect("maps fire")
    }

    #[test]
    fn a_quiet_scene_never_runs_the_model_in_agreement_and_always_in_either() {
        let grey = vec![100u8; 64 * 64 * 3 / 2];
        let frame = FrameView::i420(64, 64, &grey, Yuv::BT601);
        let mut out = Detections::new();
        for (mode, runs) in [(Fusion::Agree, 0), (Fusion::Either, 10)] {
            let calls = std::sync::Arc::default();
            let mut d = fused(mode, &calls);
            assert_eq!(d.info().name, "vigil-firecue+flames");
            for _ in 0..10 {
                d.detect(frame, &mut out).expect("detect");
            }
            assert_eq!(
                calls.load(std::sync::atomic::Ordering::Relaxed),
                runs,
                "{mode:?}"
            );
            if mode == Fusion::Either {
                // The model's flame as built-in fire, its threshold (0.3) on the built-in one;
                // its person is not fire.
                assert_eq!(out.as_slice(), [det(FIRE, firecue::SCORE_THRESHOLD, LEFT)]);
            } else {
                assert!(out.is_empty());
            }
        }
        // A fork (another inference thread) fuses with a fork of the model, in the same mode.
        let calls = std::sync::Arc::default();
        let mut fork = (fused(Fusion::Either, &calls).forker())().expect("fork");
        assert_eq!(fork.info().name, "vigil-firecue+flames");
        fork.detect(frame, &mut out).expect("detect");
        assert_eq!(calls.load(std::sync::atomic::Ordering::Relaxed), 1);
        assert_eq!(out.as_slice(), [det(FIRE, firecue::SCORE_THRESHOLD, LEFT)]);
        // The built-in detector's memory of the camera is inside the fused one's.
        let calls = std::sync::Arc::default();
        let mut d = fused(Fusion::Agree, &calls);
        d.detect(frame, &mut out).expect("detect");
        let mut memory: CameraMemory = None;
        d.swap_memory(&mut memory);
        assert_eq!(scene_of(&memory).map(firecue::Scene::frames), Some(1));
    }

    #[test]
    fn a_model_without_fire_or_smoke_is_refused() {
        let mut c = card();
        c.card.incidents.clear();
        let calls = std::sync::Arc::default();
        let model = Fixed {
            info: ModelInfo::of(&c),
            class: 2,
            calls,
        };
        let e = Fused::new(Box::new(model), &c, Fusion::Agree).err();
        assert_eq!(
            e.as_deref(),
            Some("model \"flames\" maps no class to fire or smoke (see [incidents] in its card)")
        );
    }
}
