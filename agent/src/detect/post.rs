//! Post-processing shared by every backend: decode the outputs, map boxes back to the frame,
//! drop degenerate boxes, per-class NMS, top-k.

use super::card::Card;
use super::decode::{Decoder, InputSize};
use super::preprocess::Preprocessor;
use super::{DetectError, Detections, Labels, nms};

/// Most outputs a model may have (NanoDet has six); outputs are gathered in a fixed array so
/// that no frame allocates.
pub const MAX_OUTPUTS: usize = 16;

/// Decoder plus per-class thresholds and NMS settings.
#[derive(Debug, Clone)]
pub struct Postprocess {
    decoder: Decoder,
    input: InputSize,
    thresholds: Vec<Option<f32>>,
    nms_iou: f32,
    class_agnostic: bool,
    max_detections: usize,
}

impl Postprocess {
    /// Bind the card's decoder to the model's output shapes and resolve class thresholds
    /// (classes without a label are never reported).
    pub fn new(card: &Card, labels: &Labels, output_shapes: &[Vec<usize>]) -> Result<Self, String> {
        if output_shapes.len() > MAX_OUTPUTS {
            return Err(format!(
                "the model has {} outputs; vigil reads at most {MAX_OUTPUTS}",
                output_shapes.len()
            ));
        }
        let input = InputSize {
            width: card.input.width,
            height: card.input.height,
        };
        let decoder = Decoder::bind(&card.output, input, output_shapes)?;
        let thresholds = (0..decoder.classes())
            .map(|c| {
                labels.name(c).map(|name| {
                    card.thresholds
                        .get(name)
                        .copied()
                        .unwrap_or(card.score_threshold)
                })
            })
            .collect();
        Ok(Postprocess {
            decoder,
            input,
            thresholds,
            nms_iou: card.output.nms_iou,
            class_agnostic: card.output.class_agnostic,
            max_detections: card.output.max_detections,
        })
    }

    /// Lower every class threshold to at most `t`.
    pub fn lower_thresholds(&mut self, t: f32) {
        for th in self.thresholds.iter_mut().flatten() {
            *th = th.min(t);
        }
    }

    /// The threshold of class `c`, if it is reported at all.
    pub fn threshold(&self, c: usize) -> Option<f32> {
        self.thresholds.get(c).copied().flatten()
    }

    /// Decode `outputs` (in model output order) into `out` in frame coordinates, best first.
    pub fn run(&self, pre: &Preprocessor, outputs: &[&[f32]], out: &mut Detections) {
        out.clear();
        let th = |c: usize| self.threshold(c);
        self.decoder.decode(outputs, self.input, &th, out);
        out.retain_mut(|d| {
            d.bbox = pre.to_frame(d.bbox);
            d.bbox[2] > d.bbox[0] && d.bbox[3] > d.bbox[1]
        });
        nms::nms(out, self.nms_iou, self.class_agnostic, self.max_detections);
    }

    /// Decode an engine's outputs, given in model output order as f32 data (or why an output
    /// is not f32), into `out` in frame coordinates, best first.
    pub fn run_outputs<'a>(
        &self,
        pre: &Preprocessor,
        outputs: impl IntoIterator<Item = Result<&'a [f32], String>>,
        out: &mut Detections,
    ) -> Result<(), DetectError> {
        let mut slices: [&[f32]; MAX_OUTPUTS] = [&[]; MAX_OUTPUTS];
        let mut n = 0;
        for (slot, output) in slices.iter_mut().zip(outputs) {
            *slot = output.map_err(|e| DetectError::Run(format!("output is not f32: {e}")))?;
            n += 1;
        }
        self.run(pre, &slices[..n], out);
        Ok(())
    }
}
