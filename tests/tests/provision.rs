//! `vigil provision` without a terminal: from flags and a password on stdin, into a temp folder,
//! validated and checked by doctor against a real camera server and broker.

use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::Arc;

use vigil::demo::rtsp::{Clip, RtspServer};
use vigil_tests::{Mosquitto, TempDir, fixture, repo, vigil_bin};

#[test]
fn provision_writes_a_valid_config_and_a_private_password_file() -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let broker = Mosquitto::start()?;
    let server = RtspServer::start(&[("plaza", Arc::new(Clip::load(&fixture("plaza_25s.mp4"))?))])?;
    let dir = TempDir::new("provision")?;
    let out = dir.join("etc/vigil.toml");
    let card = repo().join("models/ssd_mobilenet_v2_coco/model.toml");
    let camera = server
        .url("plaza")
        .replacen("rtsp://", "rtsp://viewer:cam-Pass-3@", 1);
    let args = [
        "provision".to_string(),
        "--out".into(),
        out.to_string_lossy().into(),
        "--device-id".into(),
        "box-042".into(),
        "--district".into(),
        "d7".into(),
        "--broker".into(),
        format!("mqtt://127.0.0.1:{}", broker.port),
        "--username".into(),
        "box-042".into(),
        "--password-stdin".into(),
        "--camera".into(),
        format!("plaza={camera}"),
        "--model-card".into(),
        card.to_string_lossy().into(),
        "--state-dir".into(),
        dir.join("state").to_string_lossy().into(),
    ];
    let run = |args: &[String]| -> anyhow::Result<std::process::Output> {
        let mut child = Command::new(vigil_bin!())
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin.write_all(b"mqtt-Pass-4\n")?;
        }
        Ok(child.wait_with_output()?)
    };
    let done = run(&args)?;
    let (stdout, stderr) = (
        String::from_utf8_lossy(&done.stdout).to_string(),
        String::from_utf8_lossy(&done.stderr).to_string(),
    );
    eprintln!("{stdout}{stderr}");
    // doctor runs; with no clock service here it may warn, but nothing fails.
    assert!(done.status.success(), "{stdout}{stderr}");
    assert!(
        stdout.contains("configuration valid: device box-042 in district d7"),
        "{stdout}"
    );
    assert!(stdout.contains("✓ camera plaza: H264 768×576"), "{stdout}");
    assert!(stdout.contains("✓ broker 127.0.0.1"), "{stdout}");
    assert!(stdout.contains("next:"), "{stdout}");
    for secret in ["mqtt-Pass-4", "cam-Pass-3"] {
        assert!(
            !stdout.contains(secret) && !stderr.contains(secret),
            "{secret} printed"
        );
    }
    let pw = dir.join("etc/mqtt.password");
    assert_eq!(std::fs::read_to_string(&pw)?, "mqtt-Pass-4\n");
    assert_eq!(std::fs::metadata(&pw)?.permissions().mode() & 0o777, 0o600);
    assert_eq!(std::fs::metadata(&out)?.permissions().mode() & 0o777, 0o640);
    let (code, check, err) =
        vigil_tests::run_cli(vigil_bin!(), &["check", "--config", &out.to_string_lossy()])?;
    assert_eq!(code, 0, "{check}{err}");

    // A second run does not overwrite without --force; missing values are listed, not guessed.
    let again = run(&args)?;
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("use --force"));
    let bare = run(&[
        "provision".into(),
        "--out".into(),
        dir.join("x.toml").to_string_lossy().into(),
    ])?;
    assert_eq!(bare.status.code(), Some(2));
    let msg = String::from_utf8_lossy(&bare.stderr).to_string();
    assert!(
        msg.contains("--device-id") && msg.contains("--broker") && msg.contains("--camera"),
        "{msg}"
    );
    Ok(())
}
