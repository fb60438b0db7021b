//! The tract backend: pure-Rust ONNX inference, the default and the one used on ARM boxes.

use std::sync::Arc;
use std::time::Instant;

use tract_onnx::prelude::*;
use tract_onnx::tract_hir::infer::Factoid;
use tract_onnx::tract_hir::internal::DimLike;

use super::card::{DType, Layout, LoadedCard};
use super::post::Postprocess;
use super::preprocess::Preprocessor;
use super::{DetectError, Detection, Detector, ModelInfo, RgbView, StageTimes};

/// A loaded model ready to run on frames.
pub struct TractDetector {
    info: ModelInfo,
    card: LoadedCard,
    state: TypedSimpleState,
    pre: Preprocessor,
    shape: [usize; 4],
    post: Postprocess,
}

impl std::fmt::Debug for TractDetector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TractDetector")
            .field("info", &self.info)
            .finish_non_exhaustive()
    }
}

impl TractDetector {
    /// Load the card's model file with tract and check the model's input and outputs against
    /// the card. Every failure names the file. The caller has checked the file's checksum
    /// ([`super::verify_checksum`]).
    pub fn new(card: LoadedCard) -> Result<Self, DetectError> {
        let path = card.model_path.clone();
        let load_err = |e: TractError| DetectError::Load {
            path: path.clone(),
            reason: format!("{e:#}"),
        };
        let mismatch = |reason: String| DetectError::Mismatch {
            path: path.clone(),
            card: card.path.clone(),
            reason,
        };

        let mut model = tract_onnx::onnx().model_for_path(&path).map_err(load_err)?;
        let spec = &card.card.input;
        let inputs = model.input_outlets().map_err(load_err)?.to_vec();
        if inputs.len() != 1 {
            return Err(mismatch(format!(
                "the model has {} inputs; vigil feeds exactly one image",
                inputs.len()
            )));
        }
        let input_name = model.node(inputs[0].node).name.clone();
        if input_name != spec.name {
            return Err(mismatch(format!(
                "the card names input \"{}\" but the model's input is \"{input_name}\"",
                spec.name
            )));
        }
        let (dt, dt_name) = match spec.dtype {
            DType::U8 => (u8::datum_type(), "u8"),
            DType::F32 => (f32::datum_type(), "f32"),
        };
        let (w, h) = (spec.width as usize, spec.height as usize);
        let shape: [usize; 4] = match spec.layout {
            Layout::Nhwc => [1, h, w, 3],
            Layout::Nchw => [1, 3, h, w],
        };
        let declared = model.input_fact(0).map_err(load_err)?.clone();
        if let Some(model_dt) = declared.datum_type.concretize()
            && model_dt != dt
        {
            return Err(mismatch(format!(
                "the card says {dt_name} input, the model takes {model_dt:?}"
            )));
        }
        if let Some(dims) = declared.shape.concretize() {
            let fixed: Vec<Option<usize>> = dims.iter().map(|d| d.to_usize().ok()).collect();
            let fits = fixed.len() == 4
                && fixed
                    .iter()
                    .zip(shape)
                    .all(|(d, s)| d.is_none_or(|d| d == s));
            if !fits {
                return Err(mismatch(format!(
                    "the card describes input shape {shape:?} ({:?} layout), the model declares {}",
                    spec.layout,
                    declared.format_dt_shape()
                )));
            }
        }
        model
            .set_input_fact(
                0,
                InferenceFact::dt_shape(dt, tvec![shape[0], shape[1], shape[2], shape[3]]),
            )
            .map_err(load_err)?;
        let typed = model.into_optimized().map_err(load_err)?;
        let shapes = output_shapes(&typed).map_err(&mismatch)?;
        let post = Postprocess::new(&card.card, &card.labels, &shapes).map_err(&mismatch)?;
        let plan = typed.into_runnable().map_err(load_err)?;
        let state = plan.spawn().map_err(load_err)?;

        let labels = Arc::new(card.labels.clone());
        let info = ModelInfo {
            name: card.card.name.clone(),
            version: card.card.version.clone(),
            labels,
            score_threshold: card.card.score_threshold,
        };
        let pre = Preprocessor::new(spec.clone());
        Ok(TractDetector {
            info,
            card,
            state,
            pre,
            shape,
            post,
        })
    }

    /// The loaded card.
    pub fn card(&self) -> &LoadedCard {
        &self.card
    }
}

/// The fixed shapes of the model's outputs, in output order.
fn output_shapes(model: &TypedModel) -> Result<Vec<Vec<usize>>, String> {
    let outlets = model.output_outlets().map_err(|e| e.to_string())?;
    let mut shapes = Vec::new();
    for o in outlets {
        let fact = model.outlet_fact(*o).map_err(|e| e.to_string())?;
        let dims = fact
            .shape
            .as_concrete()
            .map(<[usize]>::to_vec)
            .ok_or_else(|| format!("output shape {:?} is not fixed", fact.shape))?;
        shapes.push(dims);
    }
    Ok(shapes)
}

impl Detector for TractDetector {
    fn info(&self) -> &ModelInfo {
        &self.info
    }

    fn lower_thresholds(&mut self, t: f32) {
        self.post.lower_thresholds(t);
    }

    fn detect_timed(
        &mut self,
        frame: RgbView<'_>,
        out: &mut Vec<Detection>,
    ) -> Result<StageTimes, DetectError> {
        out.clear();
        let t0 = Instant::now();
        let shape = self.shape;
        let tensor = if self.pre.is_f32() {
            Tensor::from_shape(&shape, self.pre.f32_tensor(frame))
        } else {
            Tensor::from_shape(&shape, self.pre.u8_tensor(frame))
        }
        .map_err(|e| DetectError::Run(e.to_string()))?;
        let t1 = Instant::now();
        let result = self
            .state
            .run(tvec![tensor.into()])
            .map_err(|e| DetectError::Run(format!("{e:#}")))?;
        let t2 = Instant::now();
        let outputs = result.iter().map(|t| {
            t.try_as_plain_ram()
                .and_then(|v| v.as_slice::<f32>())
                .map_err(|e| e.to_string())
        });
        self.post.run_outputs(&self.pre, outputs, out)?;
        Ok(StageTimes {
            pre: t1 - t0,
            inference: t2 - t1,
            post: t2.elapsed(),
        })
    }
}
