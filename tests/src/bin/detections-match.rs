//! `detections-match WANT.json GOT.json THRESHOLD`: do the detections of `vigil detect --json`
//! in GOT equal WANT's within the parity tolerance (same class, IoU ≥ 0.95, |Δscore| ≤ 0.02; no
//! extra box unless within 0.05 of THRESHOLD)? WANT is another `vigil detect --json` output
//! (first frame) or a golden file of the independent reference (`tests/goldens/`). Exit 0 and
//! a one-line summary when they match, 1 with every difference when not. Used by
//! `cross/test.sh` to hold an ARM build under qemu to the native x86 run and the reference.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use vigil::detect::Detection;
use vigil_tests::golden::{self, EXACT, Golden};

fn detections(doc: &serde_json::Value) -> Option<&Vec<serde_json::Value>> {
    doc["frames"][0]["detections"]
        .as_array()
        .or_else(|| doc["detections"].as_array())
}

fn read(path: &Path) -> anyhow::Result<Vec<Detection>> {
    let doc: serde_json::Value = serde_json::from_slice(
        &std::fs::read(path).with_context(|| format!("reading {}", path.display()))?,
    )
    .with_context(|| format!("parsing {}", path.display()))?;
    let list = detections(&doc).with_context(|| format!("{}: no detections", path.display()))?;
    list.iter()
        .map(|d| {
            let class = d["class_id"].as_u64().context("class_id")?;
            let score = d["score"].as_f64().context("score")?;
            let mut bbox = [0f32; 4];
            for (i, v) in bbox.iter_mut().enumerate() {
                *v = d["box"][i].as_f64().context("box")? as f32;
            }
            Ok(Detection {
                class: u16::try_from(class).context("class_id")?,
                score: score as f32,
                bbox,
            })
        })
        .collect()
}

fn run(want: &Path, got: &Path, threshold: f32) -> anyhow::Result<Vec<String>> {
    let want: Vec<Golden> = read(want)?
        .into_iter()
        .map(|d| Golden {
            class: d.class,
            score: d.score,
            bbox: d.bbox,
        })
        .collect();
    let got = read(got)?;
    anyhow::ensure!(
        !want.is_empty(),
        "the wanted file has no detection to compare"
    );
    let problems = golden::compare("", &want, &got, threshold, EXACT);
    if problems.is_empty() {
        println!(
            "detections match: {} wanted, {} found (IoU ≥ {}, |Δscore| ≤ 0.02)",
            want.len(),
            got.len(),
            EXACT.iou_min
        );
    }
    Ok(problems)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let (Some(want), Some(got), Some(threshold)) = (args.get(1), args.get(2), args.get(3)) else {
        eprintln!("usage: detections-match WANT.json GOT.json THRESHOLD");
        return ExitCode::from(2);
    };
    let Ok(threshold) = threshold.parse::<f32>() else {
        eprintln!("detections-match: {threshold} is not a score threshold");
        return ExitCode::from(2);
    };
    match run(Path::new(want), Path::new(got), threshold) {
        Ok(problems) if problems.is_empty() => ExitCode::SUCCESS,
        Ok(problems) => {
            for p in problems {
                eprintln!("detections-match{p}");
            }
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("detections-match: {e:#}");
            ExitCode::from(2)
        }
    }
}
