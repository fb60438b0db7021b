//! The `vigil` binary's configuration handling: `check` on good and bad files, exit codes.

use vigil_tests::{TempDir, repo, run_cli, vigil_bin};

fn good_config() -> String {
    let card = repo().join("models/ssd_mobilenet_v2_coco/model.toml");
    format!(
        r#"[device]
id = "q1-box-001"
district = "q1"

[mqtt]
host = "127.0.0.1"
port = 1883

[[models]]
name = "coco"
card = "{}"

[[cameras]]
id = "plaza"
url = "rtsp://admin:secret@127.0.0.1:8554/plaza"
kind = "security"
model = "coco"
analysis_fps = 5

[[cameras.zones]]
name = "lawn"
polygon = [[0.0, 0.55], [1.0, 0.55], [1.0, 1.0], [0.0, 1.0]]
classes = ["person"]
"#,
        card.display()
    )
}

#[test]
fn check_accepts_a_good_config() -> anyhow::Result<()> {
    let dir = TempDir::new("cli-good")?;
    let cfg = dir.join("vigil.toml");
    std::fs::write(&cfg, good_config())?;
    let (code, out, err) = run_cli(
        vigil_bin!(),
        &["check", "--config", cfg.to_str().unwrap_or_default()],
    )?;
    assert_eq!(code, 0, "stdout: {out}\nstderr: {err}");
    assert!(out.contains("OK"), "{out}");
    assert!(out.contains("1 camera(s), 1 zone(s), 1 model(s)"), "{out}");
    Ok(())
}

#[test]
fn check_reports_every_problem_with_location_and_exits_78() -> anyhow::Result<()> {
    let dir = TempDir::new("cli-bad")?;
    let cfg = dir.join("vigil.toml");
    let bad = good_config()
        .replace("district = \"q1\"\n", "")
        .replace("port = 1883", "port = 1883\ncolour = \"red\"")
        .replace("analysis_fps = 5", "analysis_fps = \"5\"")
        .replace(
            "[[0.0, 0.55], [1.0, 0.55], [1.0, 1.0], [0.0, 1.0]]",
            "[[0.0, 0.55], [1.0, 0.55]]",
        );
    std::fs::write(&cfg, bad)?;
    let (code, out, err) = run_cli(
        vigil_bin!(),
        &["check", "--config", cfg.to_str().unwrap_or_default()],
    )?;
    assert_eq!(code, 78, "stdout: {out}\nstderr: {err}");
    let path = cfg.display().to_string();
    for expected in [
        format!("{path}:1:1: device.district: missing required field \"district\""),
        format!("{path}:7:1: mqtt.colour: unknown field \"colour\""),
        format!("{path}:18:16: cameras[0].analysis_fps: expected a number, found a string"),
        format!("{path}:22:11: cameras[0].zones[0].polygon: a polygon needs at least 3 points"),
    ] {
        assert!(err.contains(&expected), "missing {expected:?} in:\n{err}");
    }
    assert!(err.contains("4 problem(s)"), "{err}");
    assert!(!err.contains("secret"), "a password leaked: {err}");
    Ok(())
}

#[test]
fn unknown_zone_class_is_located_in_the_config() -> anyhow::Result<()> {
    let dir = TempDir::new("cli-class")?;
    let cfg = dir.join("vigil.toml");
    std::fs::write(
        &cfg,
        good_config().replace(
            "classes = [\"person\"]",
            "classes = [\"person\", \"unicorn\"]",
        ),
    )?;
    let (code, _out, err) = run_cli(
        vigil_bin!(),
        &["check", "--config", cfg.to_str().unwrap_or_default()],
    )?;
    assert_eq!(code, 78, "{err}");
    assert!(
        err.contains(
            ":23:22: cameras[0].zones[0].classes[1]: model \"coco\" has no class \"unicorn\""
        ),
        "{err}"
    );
    Ok(())
}

#[test]
fn check_explains_a_password_gstreamer_would_misread_without_showing_it() -> anyhow::Result<()> {
    let dir = TempDir::new("cli-password")?;
    let cfg = dir.join("vigil.toml");
    for (password, what) in [
        ("se/cr3tPW", "a raw '/'"),
        ("s3cr@tPW", "a raw '@'"),
        ("50%offPW", "a '%' not followed by two hex digits"),
        ("pässPW", "a non-ASCII character"),
        ("my secretPW", "spaces or control characters"),
    ] {
        let url = format!("rtsp://tech:{password}@127.0.0.1:8554/plaza");
        let config = good_config().replace("rtsp://admin:secret@127.0.0.1:8554/plaza", &url);
        std::fs::write(&cfg, config)?;
        let (code, out, err) = run_cli(
            vigil_bin!(),
            &["check", "--config", cfg.to_str().unwrap_or_default()],
        )?;
        assert_eq!(code, 78, "{password}: stdout: {out}\nstderr: {err}");
        assert!(
            err.contains(":15:7: cameras[0].url: \"rtsp://***@127.0.0.1:8554/plaza\"")
                && err.contains(what)
                && err.contains("%20"),
            "{password}: {err}"
        );
        assert!(
            !err.contains("PW") && !out.contains("PW"),
            "{password} shown: {err}"
        );
    }
    Ok(())
}

#[test]
fn the_builtin_fire_detector_fuses_only_with_a_fire_model() -> anyhow::Result<()> {
    let dir = TempDir::new("cli-fuse")?;
    let cfg = dir.join("vigil.toml");
    let fused = good_config().replace(
        "[[cameras]]",
        "[[models]]\nname = \"fire\"\nbuiltin = \"fire\"\nfuse_with = \"coco\"\n\n[[cameras]]",
    );
    std::fs::write(&cfg, fused)?;
    let (code, out, err) = run_cli(
        vigil_bin!(),
        &["check", "--config", cfg.to_str().unwrap_or_default()],
    )?;
    assert_eq!(code, 78, "stdout: {out}\nstderr: {err}");
    assert!(
        err.contains(":16:13: models[1].fuse_with: model \"ssd_mobilenet_v2_coco\"")
            && err.contains("maps no class to fire or smoke"),
        "{err}"
    );
    Ok(())
}

#[test]
fn a_model_file_that_does_not_match_its_card_is_refused() -> anyhow::Result<()> {
    let dir = TempDir::new("cli-model")?;
    let src = repo().join("models/ssd_mobilenet_v2_coco");
    std::fs::copy(src.join("model.toml"), dir.join("model.toml"))?;
    std::fs::copy(src.join("coco_labels.txt"), dir.join("coco_labels.txt"))?;
    std::fs::write(
        dir.join("ssd_mobilenet_v2_coco_f32_prenms.onnx"),
        b"not an onnx file",
    )?;
    let cfg = dir.join("vigil.toml");
    let card = dir.join("model.toml");
    let text = good_config().replace(
        &repo()
            .join("models/ssd_mobilenet_v2_coco/model.toml")
            .display()
            .to_string(),
        &card.display().to_string(),
    );
    std::fs::write(&cfg, text)?;
    let (code, _out, err) = run_cli(
        vigil_bin!(),
        &["check", "--config", cfg.to_str().unwrap_or_default()],
    )?;
    assert_eq!(code, 78, "{err}");
    assert!(
        err.contains("ssd_mobilenet_v2_coco_f32_prenms.onnx has sha256"),
        "{err}"
    );
    assert!(
        err.contains("the file is corrupt or the card is out of date"),
        "{err}"
    );
    Ok(())
}

#[test]
fn a_missing_config_file_is_a_clear_error() -> anyhow::Result<()> {
    let (code, _out, err) = run_cli(
        vigil_bin!(),
        &["check", "--config", "/nonexistent/vigil.toml"],
    )?;
    assert_eq!(code, 78);
    assert!(err.contains("cannot read /nonexistent/vigil.toml"), "{err}");
    Ok(())
}

#[test]
fn completions_and_man_pages_come_from_the_command_line_definitions() -> anyhow::Result<()> {
    let (code, out, err) = vigil_tests::run_cli(vigil_bin!(), &["completions", "bash"])?;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("_vigil()") && out.contains("doctor") && out.contains("--log-format"));
    let dir = vigil_tests::TempDir::new("man")?;
    let (code, _, err) =
        vigil_tests::run_cli(vigil_bin!(), &["manpages", &dir.0.to_string_lossy()])?;
    assert_eq!(code, 0, "{err}");
    let page = std::fs::read_to_string(dir.join("vigil-status.1"))?;
    assert!(page.contains(".TH") && page.contains("socket"), "{page}");
    assert!(dir.join("vigil.1").exists() && dir.join("vigil-outbox-export.1").exists());
    Ok(())
}
