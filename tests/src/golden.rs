//! Comparing vigil's detections with the reference's goldens (`tests/goldens/`, written by
//! `tools/reference/reference.py`), and reading the raw output tensors it recorded
//! (`tests/fixtures/outputs/`, numpy `.npy`).

use std::path::Path;

use anyhow::Context;
use vigil::detect::Detection;
use vigil::detect::nms::iou;

/// How close vigil's boxes must be to the reference's.
#[derive(Debug, Clone, Copy)]
pub struct Tolerance {
    /// Least IoU between a golden box and vigil's.
    pub iou_min: f32,
    /// How scores may differ.
    pub score: ScoreTol,
}

/// How scores may differ.
#[derive(Debug, Clone, Copy)]
pub enum ScoreTol {
    /// |Δscore| ≤ this; extra boxes count from threshold + [`EXTRA_MARGIN`].
    Absolute(f32),
    /// The scores' logits within one quantisation step `logit` of each other, after undoing
    /// the scores' own quantisation (`output`, half a step each side); extra boxes count from
    /// one logit step above the threshold.
    LogitStep {
        /// One step of the quantised logit.
        logit: f32,
        /// One step of the quantised score.
        output: f32,
    },
}

/// A vigil box the reference lacks is an error from threshold + this up.
pub const EXTRA_MARGIN: f32 = 0.05;

/// The tolerance the parity requirement sets: IoU ≥ 0.95, |Δscore| ≤ 0.02.
pub const EXACT: Tolerance = Tolerance {
    iou_min: 0.95,
    score: ScoreTol::Absolute(0.02),
};

fn logit(p: f32) -> f32 {
    let p = p.clamp(1e-6, 1.0 - 1e-6);
    (p / (1.0 - p)).ln()
}

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

impl Tolerance {
    fn scores_match(&self, got: f32, want: f32) -> bool {
        match self.score {
            ScoreTol::Absolute(d) => (got - want).abs() <= d,
            ScoreTol::LogitStep {
                logit: step,
                output,
            } => {
                // d logit / dp = 1 / (p (1 - p)): half an output step, seen in logit units.
                let slack = |p: f32| 0.5 * output / (p * (1.0 - p)).max(1e-6);
                (logit(got) - logit(want)).abs() <= step + slack(got) + slack(want)
            }
        }
    }

    /// Scores from here up must be in the reference (a box below may straddle the threshold).
    pub fn extra_from(&self, threshold: f32) -> f32 {
        match self.score {
            ScoreTol::Absolute(_) => threshold + EXTRA_MARGIN,
            ScoreTol::LogitStep { logit: step, .. } => sigmoid(logit(threshold) + step),
        }
    }

    /// Scores from here up should be reported, to tell "missing" from "just under".
    pub fn look_from(&self, threshold: f32) -> f32 {
        match self.score {
            ScoreTol::Absolute(_) => threshold - EXTRA_MARGIN,
            ScoreTol::LogitStep { logit: step, .. } => sigmoid(logit(threshold) - step),
        }
    }
}

/// One golden file.
#[derive(Debug)]
pub struct GoldenFile {
    /// The input image, relative to the repository.
    pub input: String,
    /// The reference's detections.
    pub detections: Vec<Golden>,
}

/// One golden detection.
#[derive(Debug)]
pub struct Golden {
    /// Class id.
    pub class: u16,
    /// Score.
    pub score: f32,
    /// `[x1, y1, x2, y2]`, normalised to the frame.
    pub bbox: [f32; 4],
}

/// Read a golden JSON file.
pub fn read(path: &Path) -> anyhow::Result<GoldenFile> {
    let doc: serde_json::Value = serde_json::from_slice(
        &std::fs::read(path).with_context(|| format!("reading {}", path.display()))?,
    )
    .with_context(|| format!("parsing {}", path.display()))?;
    let detections = doc["detections"]
        .as_array()
        .with_context(|| format!("{}: no detections array", path.display()))?
        .iter()
        .map(|d| Golden {
            class: d["class_id"].as_u64().unwrap_or(u64::MAX) as u16,
            score: d["score"].as_f64().unwrap_or(-1.0) as f32,
            bbox: [0, 1, 2, 3].map(|i| d["box"][i].as_f64().unwrap_or(-1.0) as f32),
        })
        .collect();
    Ok(GoldenFile {
        input: doc["input"].as_str().unwrap_or_default().to_string(),
        detections,
    })
}

/// Every way `got` differs from `want` beyond `tol`, each line prefixed with `name`: a golden
/// box with no vigil box of its class close enough, or a vigil box the reference lacks.
pub fn compare(
    name: &str,
    want: &[Golden],
    got: &[Detection],
    threshold: f32,
    tol: Tolerance,
) -> Vec<String> {
    let mut problems = Vec::new();
    let mut used = vec![false; got.len()];
    for g in want {
        let best = got
            .iter()
            .enumerate()
            .filter(|(i, d)| !used[*i] && d.class == g.class)
            .map(|(i, d)| (i, iou(d.bbox, g.bbox), d.score))
            .max_by(|a, b| a.1.total_cmp(&b.1));
        match best {
            Some((i, overlap, score)) if overlap >= tol.iou_min && tol.scores_match(score, g.score) => {
                used[i] = true
            }
            Some((_, overlap, score)) => problems.push(format!(
                "{name}: golden class {} score {:.4} {:?}: best match IoU {overlap:.4}, score {score:.4}",
                g.class, g.score, g.bbox
            )),
            None => problems.push(format!(
                "{name}: golden class {} score {:.4} {:?} not found",
                g.class, g.score, g.bbox
            )),
        }
    }
    for (i, d) in got.iter().enumerate() {
        if !used[i] && d.score >= tol.extra_from(threshold) {
            problems.push(format!(
                "{name}: extra box class {} score {:.4} {:?}",
                d.class, d.score, d.bbox
            ));
        }
    }
    problems
}

pub use crate::npy::Npy;

/// Read a `.npy` file of `<f4` values.
pub fn read_npy(path: &Path) -> anyhow::Result<Npy> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    crate::npy::parse(&bytes).map_err(|why| anyhow::anyhow!("{}: {why}", path.display()))
}
