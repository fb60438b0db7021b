//! Object detection: model cards, pre-processing, the inference backend and decoding.
//!
//! A [`Detector`] turns one frame (RGB or I420, see [`crate::pixels`]) into [`Detection`]s in
//! normalised frame coordinates.
//! The backend is behind the trait so the rest of the agent never knows which engine runs;
//! [`tract`](self::tract) (pure Rust) is the one shipped today.

pub mod card;
pub mod decode;
pub mod firecue;
pub mod fusion;
pub mod nms;
#[cfg(feature = "ort")]
pub mod ort_backend;
pub mod post;
pub mod preprocess;
pub mod synthetic;
pub mod tract;

use std::path::PathBuf;
use std::sync::Arc;

pub use card::{Card, Labels, LoadedCard};

/// One detected object.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Detection {
    /// Class id (index into the model's labels).
    pub class: u16,
    /// Confidence, 0..1.
    pub score: f32,
    /// Box `[x1, y1, x2, y2]`, normalised to the frame (0..1, top-left origin), clipped.
    pub bbox: [f32; 4],
}

/// Most candidate boxes one frame may produce before NMS. Past this, a new candidate replaces
/// the weakest one when it scores higher (so the best boxes always survive), and memory per
/// frame stays fixed.
pub const MAX_CANDIDATES: usize = 1024;

/// A frame's detections: a fixed-capacity vector, allocated once with its detector's caller.
pub type Detections = heapless::Vec<Detection, MAX_CANDIDATES>;

/// Add `d` to `out`; when `out` is full, let it replace the weakest candidate if it scores
/// higher. Returns whether the vector was full.
pub fn offer(out: &mut Detections, d: Detection) -> bool {
    match out.push(d) {
        Ok(()) => false,
        Err(d) => {
            if let Some(weakest) = out.iter_mut().min_by(|a, b| a.score.total_cmp(&b.score))
                && weakest.score < d.score
            {
                *weakest = d;
            }
            true
        }
    }
}

pub use crate::pixels::FrameView;

/// What incidents say about the model that produced them.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelInfo {
    /// Card name.
    pub name: String,
    /// Card version.
    pub version: String,
    /// Class names.
    pub labels: Arc<Labels>,
    /// Default minimum score.
    pub score_threshold: f32,
}

/// Time spent in each stage of one detection.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct StageTimes {
    /// Resize, colour order, layout, normalisation.
    pub pre: std::time::Duration,
    /// The inference engine.
    pub inference: std::time::Duration,
    /// Decoding, un-mapping, NMS.
    pub post: std::time::Duration,
}

/// Turns frames into detections. One instance per inference thread; not shared.
pub trait Detector: Send {
    /// The model behind this detector.
    fn info(&self) -> &ModelInfo;

    /// The engine that runs it: `"tract"`, `"ort"`, or `"builtin"` for the built-in fire
    /// detector (fused with a model: that model's engine).
    fn engine(&self) -> &'static str;

    /// Detect objects in `frame`, replacing the contents of `out` (best first).
    fn detect(&mut self, frame: FrameView<'_>, out: &mut Detections) -> Result<(), DetectError> {
        self.detect_timed(frame, out).map(|_| ())
    }

    /// [`Detector::detect`], reporting how long each stage took.
    fn detect_timed(
        &mut self,
        frame: FrameView<'_>,
        out: &mut Detections,
    ) -> Result<StageTimes, DetectError>;

    /// Lower every class threshold to at most `t` (to see weaker detections, e.g. for a zone
    /// with a lower `min_score` than the card's default).
    fn lower_thresholds(&mut self, t: f32);

    /// What makes more detectors of this loaded model, one per extra inference thread.
    fn forker(&self) -> Forker;

    /// Exchange the detector's per-camera memory with `memory`. A detector that remembers past
    /// frames (the built-in fire detector: background, block histories) keeps them here; the
    /// agent swaps each camera's memory in before its frame and out after, so that the memory
    /// follows the camera from one inference thread to another. Swapping moves a pointer and
    /// allocates nothing. Models that see each frame alone keep nothing: the default does
    /// nothing.
    fn swap_memory(&mut self, memory: &mut firecue::CameraMemory) {
        let _ = memory;
    }
}

/// Makes another detector of a loaded model for another inference thread: it shares what the
/// engine can share (tract: the optimised plan, so a fork costs only its working memory; ONNX
/// Runtime: nothing, a fork is a second session of the same file) and has the thresholds the
/// model had when the forker was made.
pub type Forker = std::sync::Arc<dyn Fn() -> Result<Box<dyn Detector>, DetectError> + Send + Sync>;

/// Which engine runs a model, and how.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EngineOptions {
    /// The engine.
    pub backend: crate::config::Backend,
    /// Intra-op threads (ort).
    pub threads: usize,
    /// ort: the shared library (else `ORT_DYLIB_PATH`, else the packaged one).
    pub ort_library: Option<PathBuf>,
}

/// Build the detector a (checksum-verified) card describes on the chosen engine.
pub fn build(card: LoadedCard, opts: &EngineOptions) -> Result<Box<dyn Detector>, DetectError> {
    if let Some(crate::config::Builtin::Fire) = card.builtin {
        return Ok(Box::new(firecue::FireCue::new()));
    }
    match opts.backend {
        crate::config::Backend::Tract => Ok(Box::new(tract::TractDetector::new(card)?)),
        crate::config::Backend::Auto => auto(card, opts),
        #[cfg(feature = "ort")]
        crate::config::Backend::Ort => {
            let lib = ort_backend::library_path(opts.ort_library.as_deref())?;
            Ok(Box::new(ort_backend::OrtDetector::new(
                card,
                &lib,
                opts.threads,
            )?))
        }
        #[cfg(not(feature = "ort"))]
        crate::config::Backend::Ort => Err(DetectError::Backend(
            "this vigil was built without the ONNX Runtime backend (cargo feature \"ort\")".into(),
        )),
    }
}

/// `backend = "auto"`: ONNX Runtime when this vigil has it and its library loads and runs the
/// model, else tract; the choice and, for tract, why are logged.
fn auto(card: LoadedCard, opts: &EngineOptions) -> Result<Box<dyn Detector>, DetectError> {
    #[cfg(feature = "ort")]
    let why = match ort_backend::library_path(opts.ort_library.as_deref()) {
        // No library named: tract is what this box is meant to run.
        Err(e) => e.to_string(),
        // A library named that does not load or run the model: say so louder.
        Ok(lib) => match ort_backend::OrtDetector::new(card.clone(), &lib, opts.threads) {
            Ok(d) => {
                tracing::info!(model = %card.card.name, library = %lib.display(), "backend auto: ONNX Runtime");
                return Ok(Box::new(d));
            }
            Err(e) => {
                tracing::warn!(model = %card.card.name, "backend auto: ONNX Runtime is named but not usable, so tract runs the model: {e}");
                e.to_string()
            }
        },
    };
    #[cfg(not(feature = "ort"))]
    let why = {
        let _ = opts;
        "this vigil was built without ONNX Runtime (cargo feature \"ort\")".to_string()
    };
    tracing::info!(model = %card.card.name, "backend auto: tract ({why})");
    Ok(Box::new(tract::TractDetector::new(card)?))
}

/// Why a model cannot be loaded or run. Every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum DetectError {
    /// The card or its labels are invalid.
    #[error(transparent)]
    Card(#[from] crate::config::ConfigError),
    /// The ONNX file cannot be read.
    #[error("cannot read model file {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The IO error.
        source: std::io::Error,
    },
    /// The file is not the one the card describes.
    #[error("model file {} has sha256 {actual}, but its card says {expected}; the file is corrupt or the card is out of date", path.display())]
    Checksum {
        /// The file.
        path: PathBuf,
        /// From the card.
        expected: String,
        /// Computed.
        actual: String,
    },
    /// The engine refused the file (not ONNX, truncated, unsupported operator, …).
    #[error("model file {} cannot be loaded: {reason}", path.display())]
    Load {
        /// The file.
        path: PathBuf,
        /// The engine's explanation.
        reason: String,
    },
    /// The card and the model disagree (input shape, type, outputs).
    #[error("model file {} does not match its card {}: {reason}", path.display(), card.display())]
    Mismatch {
        /// The ONNX file.
        path: PathBuf,
        /// The card.
        card: PathBuf,
        /// What differs.
        reason: String,
    },
    /// Inference failed on a frame.
    #[error("inference failed: {0}")]
    Run(String),
    /// The frame handed in is incomplete (its bytes are short for its size and format).
    #[error("cannot analyse the frame: {0}")]
    Frame(String),
    /// The inference engine itself cannot be used (library missing, feature not built).
    #[error("{0}")]
    Backend(String),
}

/// What an engine declares about a model's inputs, for [`check_input`].
#[derive(Debug, Clone, PartialEq)]
pub struct DeclaredInput {
    /// How many inputs the model has.
    pub count: usize,
    /// Name of the first input.
    pub name: String,
    /// Its element type, when declared: vigil's type (`None`: one vigil never feeds) and the
    /// engine's own name for it (for the message).
    pub dtype: Option<(Option<card::DType>, String)>,
    /// Its dimensions, when declared (`None` for a symbolic dimension).
    pub dims: Option<Vec<Option<usize>>>,
    /// The declaration as the engine prints it (for the message).
    pub shown: String,
}

impl ModelInfo {
    /// What incidents say about the model of `card`.
    pub fn of(card: &LoadedCard) -> ModelInfo {
        ModelInfo {
            name: card.card.name.clone(),
            version: card.card.version.clone(),
            labels: Arc::new(card.labels.clone()),
            score_threshold: card.card.score_threshold,
        }
    }
}

/// Check a model's declared input against the card's; returns the tensor shape vigil will
/// feed, or what disagrees. Shared by every backend so their refusals read the same.
pub fn check_input(spec: &card::InputSpec, declared: &DeclaredInput) -> Result<[usize; 4], String> {
    if declared.count != 1 {
        return Err(format!(
            "the model has {} inputs; vigil feeds exactly one image",
            declared.count
        ));
    }
    if declared.name != spec.name {
        return Err(format!(
            "the card names input \"{}\" but the model's input is \"{}\"",
            spec.name, declared.name
        ));
    }
    if let Some((dtype, shown)) = &declared.dtype
        && *dtype != Some(spec.dtype)
    {
        let want = match spec.dtype {
            card::DType::U8 => "u8",
            card::DType::F32 => "f32",
        };
        return Err(format!(
            "the card says {want} input, the model takes {shown}"
        ));
    }
    let (w, h) = (spec.width as usize, spec.height as usize);
    let shape = match spec.layout {
        card::Layout::Nhwc => [1, h, w, 3],
        card::Layout::Nchw => [1, 3, h, w],
    };
    if let Some(dims) = &declared.dims {
        let fits = dims.len() == 4
            && dims
                .iter()
                .zip(shape)
                .all(|(d, s)| d.is_none_or(|d| d == s));
        if !fits {
            return Err(format!(
                "the card describes input shape {shape:?} ({:?} layout), the model declares {}",
                spec.layout, declared.shown
            ));
        }
    }
    Ok(shape)
}

/// sha256 of a file, lower-case hex.
pub fn sha256_file(path: &std::path::Path) -> std::io::Result<String> {
    use sha2::{Digest, Sha256};
    use std::io::Read;
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

/// Check that the card's model file is the one the card describes (sha256).
pub fn verify_checksum(card: &LoadedCard) -> Result<(), DetectError> {
    if card.builtin.is_some() {
        return Ok(()); // no file
    }
    let path = &card.model_path;
    let actual = sha256_file(path).map_err(|e| DetectError::Read {
        path: path.clone(),
        source: e,
    })?;
    if actual != card.card.sha256 {
        return Err(DetectError::Checksum {
            path: path.clone(),
            expected: card.card.sha256.clone(),
            actual,
        });
    }
    Ok(())
}

/// Load a card, verify its model file and build the detector it describes.
pub fn load(card_path: &std::path::Path) -> Result<Box<dyn Detector>, DetectError> {
    let card = card::load(card_path)?;
    verify_checksum(&card)?;
    build(card, &EngineOptions::default())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(score: f32) -> Detection {
        Detection {
            class: 0,
            score,
            bbox: [0.0, 0.0, 1.0, 1.0],
        }
    }

    #[test]
    fn a_full_candidate_list_keeps_the_best_boxes() {
        let mut out = Detections::new();
        // Scores 0.0 .. 0.1023 fill it; the weakest is 0.0.
        for i in 0..MAX_CANDIDATES {
            assert!(!offer(&mut out, d(i as f32 / 10_000.0)));
        }
        assert!(offer(&mut out, d(0.9)), "full");
        assert_eq!(out.len(), MAX_CANDIDATES);
        assert!(out.iter().any(|x| x.score == 0.9));
        assert!(
            out.iter().all(|x| x.score != 0.0),
            "the weakest was replaced"
        );
        // A candidate weaker than all of them changes nothing.
        let before = out.clone();
        assert!(offer(&mut out, d(-1.0)));
        assert_eq!(out, before);
    }
}
