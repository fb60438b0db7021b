//! The ONNX Runtime backend (cargo feature `ort`). ONNX Runtime is loaded at start from a shared
//! library (`libonnxruntime.so`): the path comes from the config, else `ORT_DYLIB_PATH`, else
//! the `vigil-onnxruntime` package's [`PACKAGED_LIBRARY`]. A
//! missing or wrong library is a clear error at start, never a panic. About 4–6× faster than tract
//! on x86 for the shipped models (docs/performance.md); it does not run under qemu-user, so the
//! ARM builds use tract.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use std::time::Instant;

use ort::session::Session;
use ort::value::{TensorElementType, TensorRef};

use super::card::{DType, LoadedCard};
use super::post::Postprocess;
use super::preprocess::Preprocessor;
use super::{
    DeclaredInput, DetectError, Detections, Detector, FrameView, ModelInfo, StageTimes, check_input,
};

/// The ONNX Runtime environment of this process: loaded once, from one library.
static ENVIRONMENT: OnceLock<Mutex<Option<(PathBuf, ort::environment::Environment)>>> =
    OnceLock::new();

/// Where the `vigil-onnxruntime` package (packaging/onnxruntime-deb.sh) puts the library.
pub const PACKAGED_LIBRARY: &str = "/usr/lib/vigil/onnxruntime/libonnxruntime.so";

/// Where to find the library: the explicit path, else `ORT_DYLIB_PATH`, else the packaged one
/// when it is installed.
pub fn library_path(explicit: Option<&Path>) -> Result<PathBuf, DetectError> {
    let packaged = Path::new(PACKAGED_LIBRARY);
    match explicit {
        Some(p) => Ok(p.to_path_buf()),
        None => std::env::var_os("ORT_DYLIB_PATH")
            .map(PathBuf::from)
            .or_else(|| packaged.is_file().then(|| packaged.to_path_buf()))
            .ok_or_else(|| {
                DetectError::Backend(format!(
                    "the ort backend needs the ONNX Runtime library: install the vigil-onnxruntime package ({PACKAGED_LIBRARY}), or set [[models]] ort_library or ORT_DYLIB_PATH to libonnxruntime.so"
                ))
            }),
    }
}

fn environment(library: &Path) -> Result<ort::environment::Environment, DetectError> {
    if !library.is_file() {
        return Err(DetectError::Backend(format!(
            "ONNX Runtime library {} does not exist",
            library.display()
        )));
    }
    let cell = ENVIRONMENT.get_or_init(|| Mutex::new(None));
    let mut guard = cell
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some((loaded, env)) = guard.as_ref() {
        if loaded != library {
            return Err(DetectError::Backend(format!(
                "ONNX Runtime is already loaded from {}; one process loads one library (asked for {})",
                loaded.display(),
                library.display()
            )));
        }
        return Ok(env.clone());
    }
    let env = ort::init_from(library)
        .map_err(|e| {
            DetectError::Backend(format!(
                "cannot load ONNX Runtime from {}: {e}",
                library.display()
            ))
        })?
        .with_name("vigil")
        .build()
        .map_err(|e| {
            DetectError::Backend(format!(
                "cannot start ONNX Runtime from {}: {e}",
                library.display()
            ))
        })?;
    *guard = Some((library.to_path_buf(), env.clone()));
    Ok(env)
}

/// A model loaded into ONNX Runtime.
pub struct OrtDetector {
    info: ModelInfo,
    card: LoadedCard,
    library: std::path::PathBuf,
    threads: usize,
    session: Session,
    pre: Preprocessor,
    shape: [usize; 4],
    post: Postprocess,
}

impl std::fmt::Debug for OrtDetector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OrtDetector")
            .field("info", &self.info)
            .finish_non_exhaustive()
    }
}

impl OrtDetector {
    /// Load the card's (checksum-verified) model into ONNX Runtime from `library`, with
    /// `threads` intra-op threads, and check its input and outputs against the card.
    pub fn new(card: LoadedCard, library: &Path, threads: usize) -> Result<Self, DetectError> {
        let env = environment(library)?;
        let path = card.model_path.clone();
        let load_err = |e: String| DetectError::Load {
            path: path.clone(),
            reason: e,
        };
        let mismatch = |reason: String| DetectError::Mismatch {
            path: path.clone(),
            card: card.path.clone(),
            reason,
        };
        let session = Session::builder(&env)
            .map_err(|e| load_err(e.to_string()))?
            .with_intra_threads(threads.max(1))
            .map_err(|e| load_err(e.to_string()))?
            // The pool's threads sleep between frames instead of spinning: at cameras' rates a
            // spinning pool of 2 cost 32 % more CPU per frame, taken from the decoders
            // (docs/performance.md, "One copy of ONNX Runtime's weights").
            .with_intra_op_spinning(false)
            .map_err(|e| load_err(e.to_string()))?
            .with_inter_threads(1)
            .map_err(|e| load_err(e.to_string()))?
            .commit_from_file(&path)
            .map_err(|e| load_err(e.to_string()))?;
        let spec = &card.card.input;
        let inputs = session.inputs();
        let first = inputs.first();
        let shape = check_input(
            spec,
            &DeclaredInput {
                count: inputs.len(),
                name: first.map(|i| i.name().to_string()).unwrap_or_default(),
                dtype: first.and_then(|i| i.dtype().tensor_type()).map(|t| {
                    let ours = match t {
                        TensorElementType::Uint8 => Some(DType::U8),
                        TensorElementType::Float32 => Some(DType::F32),
                        _ => None,
                    };
                    (ours, format!("{t:?}"))
                }),
                dims: first
                    .and_then(|i| i.dtype().tensor_shape())
                    .map(|dims| dims.iter().map(|&d| usize::try_from(d).ok()).collect()),
                shown: first
                    .and_then(|i| i.dtype().tensor_shape())
                    .map(|dims| format!("{:?}", &dims[..]))
                    .unwrap_or_default(),
            },
        )
        .map_err(&mismatch)?;
        let mut shapes = Vec::new();
        for o in session.outputs() {
            let dims = o
                .dtype()
                .tensor_shape()
                .ok_or_else(|| mismatch(format!("output {} is not a tensor", o.name())))?;
            if dims.iter().any(|d| *d < 0) {
                return Err(mismatch(format!(
                    "output {} has no fixed shape ({:?})",
                    o.name(),
                    &dims[..]
                )));
            }
            shapes.push(dims.iter().map(|d| *d as usize).collect::<Vec<_>>());
        }
        let post = Postprocess::new(&card.card, &card.labels, &shapes).map_err(&mismatch)?;
        let info = ModelInfo::of(&card);
        let pre = Preprocessor::new(spec.clone());
        Ok(OrtDetector {
            info,
            card,
            library: library.to_path_buf(),
            threads,
            session,
            pre,
            shape,
            post,
        })
    }
}

impl Detector for OrtDetector {
    fn info(&self) -> &ModelInfo {
        &self.info
    }

    fn engine(&self) -> &'static str {
        "ort"
    }

    fn lower_thresholds(&mut self, t: f32) {
        self.post.lower_thresholds(t);
    }

    fn forker(&self) -> super::Forker {
        let (card, library, threads) = (self.card.clone(), self.library.clone(), self.threads);
        let post = self.post.clone();
        std::sync::Arc::new(move || {
            let mut det = OrtDetector::new(card.clone(), &library, threads)?;
            det.post = post.clone();
            Ok(Box::new(det) as Box<dyn Detector>)
        })
    }

    fn detect_timed(
        &mut self,
        frame: FrameView<'_>,
        out: &mut Detections,
    ) -> Result<StageTimes, DetectError> {
        out.clear();
        frame.check().map_err(DetectError::Frame)?;
        let run_err = |e: ort::Error| DetectError::Run(e.to_string());
        let t0 = Instant::now();
        let shape = self.shape;
        let input = if self.pre.is_f32() {
            TensorRef::from_array_view((shape, self.pre.f32_tensor(frame))).map(|t| t.into_dyn())
        } else {
            TensorRef::from_array_view((shape, self.pre.u8_tensor(frame))).map(|t| t.into_dyn())
        }
        .map_err(run_err)?;
        let t1 = Instant::now();
        let outputs = self.session.run(ort::inputs![input]).map_err(run_err)?;
        let t2 = Instant::now();
        let slices = (0..outputs.len()).map(|i| {
            outputs[i]
                .try_extract_tensor::<f32>()
                .map(|(_, data)| data)
                .map_err(|e| e.to_string())
        });
        self.post.run_outputs(&self.pre, slices, out)?;
        Ok(StageTimes {
            pre: t1 - t0,
            inference: t2 - t1,
            post: t2.elapsed(),
        })
    }
}
