//! A model that cannot be used is refused at start with a message naming the file and the
//! problem, exit code 78; nothing starts half-working.

use std::path::PathBuf;

use vigil_tests::{TempDir, repo, run_cli, vigil_bin};

/// Copy a shipped model folder's card and labels into `dir`, with `model_bytes` as its ONNX
/// file and the card's sha256 updated to match; `edit` may change the card text further.
fn card_with(
    dir: &TempDir,
    folder: &str,
    model_bytes: &[u8],
    edit: impl Fn(String) -> String,
) -> anyhow::Result<PathBuf> {
    let src = repo().join("models").join(folder);
    let card_text = std::fs::read_to_string(src.join("model.toml"))?;
    let file = card_text
        .lines()
        .find_map(|l| {
            l.strip_prefix("file = \"")
                .and_then(|r| r.strip_suffix('"'))
        })
        .unwrap_or_default()
        .to_string();
    let labels = card_text
        .lines()
        .find_map(|l| {
            l.strip_prefix("labels = \"")
                .and_then(|r| r.strip_suffix('"'))
        })
        .unwrap_or_default()
        .to_string();
    std::fs::copy(src.join(&labels), dir.join(&labels))?;
    std::fs::write(dir.join(&file), model_bytes)?;
    let sum = vigil::detect::sha256_file(&dir.join(&file))?;
    let old_sum = card_text
        .lines()
        .find_map(|l| {
            l.strip_prefix("sha256 = \"")
                .and_then(|r| r.strip_suffix('"'))
        })
        .unwrap_or_default()
        .to_string();
    let card = dir.join("model.toml");
    std::fs::write(&card, edit(card_text.replace(&old_sum, &sum)))?;
    Ok(card)
}

fn detect(card: &std::path::Path) -> anyhow::Result<(i32, String)> {
    let photo = repo().join("tests/fixtures/grace_hopper.png");
    let (code, _out, err) = run_cli(
        vigil_bin!(),
        &[
            "detect",
            "--card",
            &card.to_string_lossy(),
            &photo.to_string_lossy(),
        ],
    )?;
    Ok((code, err))
}

#[test]
fn a_file_that_is_not_onnx_is_refused() -> anyhow::Result<()> {
    let dir = TempDir::new("bad-notonnx")?;
    let card = card_with(
        &dir,
        "ssd_mobilenet_v2_coco",
        b"<html>404 Not Found</html>",
        |c| c,
    )?;
    let (code, err) = detect(&card)?;
    assert_eq!(code, 78, "{err}");
    assert!(
        err.contains("ssd_mobilenet_v2_coco_f32_prenms.onnx cannot be loaded"),
        "{err}"
    );
    Ok(())
}

#[test]
fn a_truncated_model_is_refused() -> anyhow::Result<()> {
    let dir = TempDir::new("bad-truncated")?;
    let full = std::fs::read(
        repo().join("models/ssd_mobilenet_v2_coco/ssd_mobilenet_v2_coco_f32_prenms.onnx"),
    )?;
    let card = card_with(
        &dir,
        "ssd_mobilenet_v2_coco",
        &full[..full.len() / 3],
        |c| c,
    )?;
    let (code, err) = detect(&card)?;
    assert_eq!(code, 78, "{err}");
    assert!(err.contains("cannot be loaded"), "{err}");
    Ok(())
}

#[test]
fn an_operator_tract_cannot_run_is_refused() -> anyhow::Result<()> {
    let dir = TempDir::new("bad-op")?;
    let model = std::fs::read(repo().join("tests/fixtures/unsupported_op.onnx"))?;
    let card = card_with(&dir, "ssd_mobilenet_v2_coco", &model, |c| c)?;
    let (code, err) = detect(&card)?;
    assert_eq!(code, 78, "{err}");
    assert!(
        err.contains("ssd_mobilenet_v2_coco_f32_prenms.onnx cannot be loaded"),
        "{err}"
    );
    assert!(
        err.contains("Unimplemented(Det)"),
        "the message names the operator: {err}"
    );
    Ok(())
}

#[test]
fn a_checksum_mismatch_is_refused() -> anyhow::Result<()> {
    let dir = TempDir::new("bad-sum")?;
    let card = card_with(&dir, "ssd_mobilenet_v2_coco", b"tampered", |c| {
        let i = c.find("sha256 = \"").map(|i| i + 10).unwrap_or(0);
        format!("{}{}{}", &c[..i], "0".repeat(64), &c[i + 64..])
    })?;
    let (code, err) = detect(&card)?;
    assert_eq!(code, 78, "{err}");
    assert!(err.contains("but its card says 0000"), "{err}");
    Ok(())
}

#[test]
fn a_card_whose_input_disagrees_with_the_model_is_refused() -> anyhow::Result<()> {
    let model = std::fs::read(repo().join("models/nanodet_m_416/nanodet_m_416.onnx"))?;
    // Wrong element type.
    let dir = TempDir::new("bad-dtype")?;
    let card = card_with(&dir, "nanodet_m_416", &model, |c| {
        c.replace("dtype = \"f32\"", "dtype = \"u8\"")
    })?;
    let (code, err) = detect(&card)?;
    assert_eq!(code, 78, "{err}");
    assert!(
        err.contains("does not match its card")
            && err.contains("the card says u8 input, the model takes F32"),
        "{err}"
    );
    // Wrong size.
    let dir = TempDir::new("bad-shape")?;
    let card = card_with(&dir, "nanodet_m_416", &model, |c| {
        c.replace("width = 416", "width = 320")
    })?;
    let (code, err) = detect(&card)?;
    assert_eq!(code, 78, "{err}");
    assert!(
        err.contains("the card describes input shape [1, 3, 416, 320]"),
        "{err}"
    );
    // Wrong input name.
    let dir = TempDir::new("bad-name")?;
    let card = card_with(&dir, "nanodet_m_416", &model, |c| {
        c.replace("name = \"input_1:0\"", "name = \"images\"")
    })?;
    let (code, err) = detect(&card)?;
    assert_eq!(code, 78, "{err}");
    assert!(
        err.contains("the card names input \"images\" but the model's input is \"input_1:0\""),
        "{err}"
    );
    // Wrong decoder for the outputs.
    let dir = TempDir::new("bad-decoder")?;
    let card = card_with(&dir, "nanodet_m_416", &model, |c| {
        c.replace("decoder = \"nanodet\"", "decoder = \"yolov8\"")
    })?;
    let (code, err) = detect(&card)?;
    assert_eq!(code, 78, "{err}");
    assert!(
        err.contains("the yolov8 decoder needs a [1, 4 + C, N] output"),
        "{err}"
    );
    Ok(())
}
