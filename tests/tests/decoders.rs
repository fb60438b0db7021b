//! The decoders on real model outputs, with no inference engine involved.
//!
//! `tools/reference/reference.py` recorded the raw output tensors of real models (ONNX Runtime
//! 1.32, default optimisation) under `tests/fixtures/outputs/<model>/<card>--<input>/`, next to
//! the goldens it decoded from the same tensors with its own numpy code. Here vigil's
//! post-processing (decoder bound by shape, thresholds, mapping back to the frame, NMS) runs on
//! those very tensors and must give the goldens: same class, IoU ≥ 0.95, |Δscore| ≤ 0.02.
//!
//! This covers `ssd` (SSD MobileNet v2), `nanodet` (NanoDet-m, six outputs in shuffled order)
//! and `yolov8` (the opt-in fire/smoke model, whose weights are not in the repository but whose
//! outputs are). No real YOLOv5 or YOLOX export is available here: those decoders are tested on
//! hand-made tensors only (agent/src/detect/decode.rs).

use std::path::{Path, PathBuf};

use vigil::detect::post::Postprocess;
use vigil::detect::preprocess::Preprocessor;
use vigil::detect::{Detections, card};
use vigil_tests::golden::{self, EXACT};
use vigil_tests::{TempDir, repo};

/// The card read without its ONNX file, which these tests never touch (and which, for the
/// opt-in fire model, is not in the repository): card and labels are copied beside an empty
/// stand-in file.
fn card_without_model(card_path: &Path) -> anyhow::Result<(card::LoadedCard, TempDir)> {
    let text = std::fs::read_to_string(card_path)?;
    let parsed: toml::Table = toml::from_str(&text)?;
    let field = |k: &str| {
        parsed
            .get(k)
            .and_then(|v| v.as_str())
            .unwrap_or_default()
            .to_string()
    };
    let dir = TempDir::new("card")?;
    let src = card_path.parent().unwrap_or(Path::new("."));
    std::fs::copy(src.join(field("labels")), dir.join(&field("labels")))?;
    std::fs::write(dir.join(&field("file")), b"")?;
    let copy = dir.join("model.toml");
    std::fs::write(&copy, text)?;
    Ok((card::load(&copy)?, dir))
}

/// Decode the recorded outputs of `card` on `input` and compare with its golden.
fn check(card_rel: &str, input: &str) -> anyhow::Result<()> {
    let card_path = repo().join(card_rel);
    let (loaded, _dir) = card_without_model(&card_path)?;
    let folder = card_path
        .parent()
        .and_then(Path::file_name)
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    let stem = card_path
        .file_stem()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    let run = format!("{stem}--{input}");
    let dir: PathBuf = repo()
        .join("tests/fixtures/outputs")
        .join(&folder)
        .join(&run);
    let mut outputs = Vec::new();
    while let Ok(npy) = golden::read_npy(&dir.join(format!("output{}.npy", outputs.len()))) {
        outputs.push(npy);
    }
    assert!(
        !outputs.is_empty(),
        "no recorded outputs in {}",
        dir.display()
    );
    let shapes: Vec<Vec<usize>> = outputs.iter().map(|o| o.shape.clone()).collect();
    let post = Postprocess::new(&loaded.card, &loaded.labels, &shapes)
        .map_err(|e| anyhow::anyhow!("{card_rel}: {e}"))?;
    // The pre-processor only places the frame in the input (for un-mapping the boxes).
    let want = golden::read(
        &repo()
            .join("tests/goldens")
            .join(&folder)
            .join(format!("{run}.json")),
    )?;
    let frames = vigil::cmd::detect::load_frames(&repo().join(&want.input), 1, 1)?;
    let f = &frames[0];
    let mut pre = Preprocessor::new(loaded.card.input.clone());
    let view = f.view();
    if pre.is_f32() {
        pre.f32_tensor(view);
    } else {
        pre.u8_tensor(view);
    }
    let slices: Vec<&[f32]> = outputs.iter().map(|o| o.data.as_slice()).collect();
    let mut got = Detections::new();
    post.run(&pre, &slices, &mut got);
    assert!(
        !want.detections.is_empty(),
        "{run}: the golden has no detections, nothing would be compared"
    );
    let problems = golden::compare(
        &run,
        &want.detections,
        &got,
        loaded.card.score_threshold,
        EXACT,
    );
    assert!(problems.is_empty(), "{card_rel}:\n{}", problems.join("\n"));
    eprintln!("{run}: {} golden boxes matched", want.detections.len());
    Ok(())
}

#[test]
fn ssd_decoder_on_recorded_outputs() -> anyhow::Result<()> {
    check("models/ssd_mobilenet_v2_coco/model.toml", "plaza_t12")
}

#[test]
fn nanodet_decoder_on_recorded_outputs() -> anyhow::Result<()> {
    check("models/nanodet_m_416/model.toml", "plaza_t12")
}

#[test]
fn yolov8_decoder_on_recorded_fire_model_outputs() -> anyhow::Result<()> {
    check("models/fire_smoke_yolov8/model.toml", "astronaut")
}

#[test]
fn a_file_that_is_not_npy_is_refused_with_its_name() {
    let path = repo().join("tests/fixtures/coffee.png");
    let err = golden::read_npy(&path).map(|_| ()).unwrap_err().to_string();
    assert!(
        err.contains("coffee.png") && err.contains("no NUMPY magic"),
        "{err}"
    );
}
