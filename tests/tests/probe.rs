//! `vigil probe` against a real RTSP server (GStreamer's, with basic auth): what it reports on a
//! good stream, and its distinct message for each way a camera can be wrong.

use std::sync::Arc;

use serde_json::Value;
use vigil_demo::rtsp::{Clip, Extras, RtspServer};
use vigil_tests::{TempDir, fixture, free_port, run_cli, vigil_bin};

const AUDIO_ONLY: &str =
    "( audiotestsrc is-live=true ! audioconvert ! mulawenc ! rtppcmupay name=pay0 )";

fn server() -> anyhow::Result<RtspServer> {
    let plaza = Arc::new(Clip::load(&fixture("plaza_25s.mp4"))?);
    Ok(RtspServer::start_with(
        0,
        &[("plaza", plaza)],
        &Extras {
            launches: &[("audio", AUDIO_ONLY)],
            basic_auth: Some(("admin", "right-Pw-1")),
            ..Default::default()
        },
    )?)
}

fn with_creds(url: &str, user: &str, pass: &str) -> String {
    url.replacen("rtsp://", &format!("rtsp://{user}:{pass}@"), 1)
}

/// Probe; (exit code, JSON output or stderr text).
fn probe(args: &[&str]) -> anyhow::Result<(i32, Value, String)> {
    let mut all = vec!["probe", "--json", "--timeout", "10"];
    all.extend_from_slice(args);
    let (code, out, err) = run_cli(vigil_bin!(), &all)?;
    Ok((code, serde_json::from_str(&out).unwrap_or_default(), err))
}

#[test]
fn a_good_stream_is_described_and_a_frame_saved_with_the_zones() -> anyhow::Result<()> {
    let server = server()?;
    let dir = TempDir::new("probe")?;
    let url = with_creds(&server.url("plaza"), "admin", "right-Pw-1");
    let cfg = dir.join("vigil.toml");
    std::fs::write(&cfg, vigil_tests::scene::config(1883, &url, ""))?;
    let out = dir.join("frame.jpg");
    let (code, v, err) = probe(&[
        "--config",
        &cfg.to_string_lossy(),
        "--camera",
        "plaza",
        "--out",
        &out.to_string_lossy(),
    ])?;
    assert_eq!(code, 0, "{err}");
    eprintln!("probe: {v}");
    assert_eq!(v["codec"], "H264");
    assert_eq!(
        (v["width"].as_u64(), v["height"].as_u64()),
        (Some(768), Some(576))
    );
    assert!(v["profile"].is_string(), "{v}");
    assert_eq!(v["transport"], "tcp");
    // The clip is 10 fps; the measured rate comes from the stream's timestamps.
    let fps = v["fps"].as_f64().unwrap_or(0.0);
    assert!((8.0..=12.0).contains(&fps), "{v}");
    assert!(v["first_frame_s"].as_f64() > Some(0.0));
    assert!(
        !v.to_string().contains("right-Pw-1"),
        "password printed: {v}"
    );
    let img = image::open(&out)?.to_rgb8();
    assert_eq!(img.dimensions(), (768, 576));
    let amber = img
        .pixels()
        .filter(|p| p[0] > 200 && p[1] > 150 && p[1] < 230 && p[2] < 60)
        .count();
    assert!(
        amber > 100,
        "the walkway zone is not drawn ({amber} amber pixels)"
    );
    Ok(())
}

#[test]
fn each_kind_of_wrong_camera_gets_its_own_message() -> anyhow::Result<()> {
    let server = server()?;
    let closed = free_port()?;
    let cases = [
        (
            with_creds(&server.url("plaza"), "admin", "wrong-Pw-2"),
            "refused the credentials (401",
        ),
        (server.url("plaza"), "requires credentials (401"),
        (
            with_creds(&server.url("nothing-here"), "admin", "right-Pw-1"),
            "no stream at this path (404",
        ),
        (
            format!("rtsp://admin:right-Pw-1@127.0.0.1:{closed}/plaza"),
            "connection refused",
        ),
        (
            with_creds(&server.url("audio"), "admin", "right-Pw-1"),
            "no video track",
        ),
    ];
    for (url, expected) in &cases {
        let (code, v, _) = probe(&[url])?;
        let error = v["error"].as_str().unwrap_or_default();
        eprintln!("{}: {error}", vigil::config::url::redact(url));
        assert_eq!(code, 1, "{url}: {v}");
        assert!(
            error.contains(expected),
            "{url}: expected \"{expected}\", got \"{error}\""
        );
        assert!(
            !v.to_string().contains("Pw-"),
            "a password was printed: {v}"
        );
    }
    // A box whose GStreamer has no H.264 decoder (the decoders ranked out of autoplugging).
    // The answer comes as soon as the stream is described; the long timeout only keeps a
    // loaded test machine from turning it into "no frame within …".
    let out = std::process::Command::new(vigil_bin!())
        .args(["probe", "--json", "--timeout", "30"])
        .arg(with_creds(&server.url("plaza"), "admin", "right-Pw-1"))
        .env(
            "GST_PLUGIN_FEATURE_RANK",
            "avdec_h264:NONE,openh264dec:NONE",
        )
        .output()?;
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    let error = v["error"].as_str().unwrap_or_default();
    eprintln!("without an H.264 decoder: {error}");
    assert_eq!(out.status.code(), Some(1), "{v}");
    assert!(error.contains("no decoder for this stream's video"), "{v}");
    Ok(())
}
