//! The tract backend: pure-Rust ONNX inference, the default and the one used on ARM boxes.

use std::time::Instant;

use tract_onnx::prelude::*;
use tract_onnx::tract_hir::infer::Factoid;
use tract_onnx::tract_hir::internal::DimLike;

use super::card::{DType, LoadedCard};
use super::post::Postprocess;
use super::preprocess::Preprocessor;
use super::{
    DeclaredInput, DetectError, Detections, Detector, FrameView, ModelInfo, StageTimes, check_input,
};

/// A loaded model ready to run on frames.
pub struct TractDetector {
    info: ModelInfo,
    card: LoadedCard,
    plan: std::sync::Arc<TypedSimplePlan>,
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
        let declared = model.input_fact(0).map_err(load_err)?.clone();
        let model_dt = declared.datum_type.concretize();
        let shape = check_input(
            spec,
            &DeclaredInput {
                count: inputs.len(),
                name: inputs
                    .first()
                    .map(|o| model.node(o.node).name.clone())
                    .unwrap_or_default(),
                dtype: model_dt.map(|t| {
                    let ours = [
                        (u8::datum_type(), DType::U8),
                        (f32::datum_type(), DType::F32),
                    ]
                    .into_iter()
                    .find_map(|(d, ours)| (d == t).then_some(ours));
                    (ours, format!("{t:?}"))
                }),
                dims: declared
                    .shape
                    .concretize()
                    .map(|dims| dims.iter().map(|d| d.to_usize().ok()).collect()),
                shown: declared.format_dt_shape(),
            },
        )
        .map_err(&mismatch)?;
        let dt = match spec.dtype {
            DType::U8 => u8::datum_type(),
            DType::F32 => f32::datum_type(),
        };
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

        let info = ModelInfo::of(&card);
        let pre = Preprocessor::new(spec.clone());
        Ok(TractDetector {
            info,
            card,
            plan,
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

    fn engine(&self) -> &'static str {
        "tract"
    }

    fn lower_thresholds(&mut self, t: f32) {
        self.post.lower_thresholds(t);
    }

    fn forker(&self) -> super::Forker {
        let (info, card, plan) = (self.info.clone(), self.card.clone(), self.plan.clone());
        let (shape, post) = (self.shape, self.post.clone());
        std::sync::Arc::new(move || {
            let state = plan.spawn().map_err(|e| DetectError::Load {
                path: card.model_path.clone(),
                reason: format!("{e:#}"),
            })?;
            Ok(Box::new(TractDetector {
                info: info.clone(),
                card: card.clone(),
                plan: plan.clone(),
                state,
                pre: Preprocessor::new(card.card.input.clone()),
                shape,
                post: post.clone(),
            }) as Box<dyn Detector>)
        })
    }

    fn detect_timed(
        &mut self,
        frame: FrameView<'_>,
        out: &mut Detections,
    ) -> Result<StageTimes, DetectError> {
        out.clear();
        frame.check().map_err(DetectError::Frame)?;
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
