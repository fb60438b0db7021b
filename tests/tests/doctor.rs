//! `vigil doctor` on a real installation in a temp folder: a camera served by GStreamer's RTSP
//! server, one camera nobody serves, mosquitto as the broker.

use std::sync::Arc;

use serde_json::Value;
use vigil_demo::rtsp::{Clip, RtspServer};
use vigil_tests::{Mosquitto, TempDir, fixture, free_port, run_cli, vigil_bin};

fn doctor(cfg: &std::path::Path) -> anyhow::Result<(i32, Value, String)> {
    let (code, out, err) = run_cli(
        vigil_bin!(),
        &[
            "doctor",
            "--json",
            "--timeout",
            "5",
            "--config",
            &cfg.to_string_lossy(),
        ],
    )?;
    Ok((code, serde_json::from_str(&out).unwrap_or_default(), err))
}

fn find<'a>(v: &'a Value, start: &str) -> Option<&'a Value> {
    v["checks"]
        .as_array()?
        .iter()
        .find(|c| c["what"].as_str().is_some_and(|w| w.starts_with(start)))
}

#[test]
fn doctor_checks_cameras_broker_and_storage_and_says_what_to_fix() -> anyhow::Result<()> {
    let broker = Mosquitto::start()?;
    let server = RtspServer::start(&[("plaza", Arc::new(Clip::load(&fixture("plaza_25s.mp4"))?))])?;
    let dir = TempDir::new("doctor")?;
    let dead = format!("rtsp://127.0.0.1:{}/gone", free_port()?);
    let extra = format!("\n[[cameras]]\nid = \"gate\"\nurl = \"{dead}\"\nmodel = \"coco\"\n");
    let cfg = dir.join("vigil.toml");
    std::fs::write(
        &cfg,
        vigil_tests::scene::config(broker.port, &server.url("plaza"), &extra),
    )?;
    let (code, v, err) = doctor(&cfg)?;
    eprintln!("{v:#}");
    assert_eq!(code, 1, "a dead camera is a failure: {v}{err}");
    assert_eq!(v["ok"], false);
    let ok = |start: &str| find(&v, start).is_some_and(|c| c["status"] == "ok");
    assert!(ok("configuration"), "{v}");
    assert!(ok("model coco: ssd_mobilenet_v2_coco"), "{v}");
    let plaza = find(&v, "camera plaza:").cloned().unwrap_or_default();
    assert_eq!(plaza["status"], "ok", "{plaza}");
    assert!(
        plaza["what"]
            .as_str()
            .is_some_and(|w| w.contains("H264 768×576")),
        "{plaza}"
    );
    let gate = find(&v, "camera gate:").cloned().unwrap_or_default();
    assert_eq!(gate["status"], "fail", "{gate}");
    assert!(
        gate["what"]
            .as_str()
            .is_some_and(|w| w.contains("connection refused")),
        "{gate}"
    );
    assert!(
        gate["fix"]
            .as_str()
            .is_some_and(|f| f.contains("vigil probe")),
        "{gate}"
    );
    assert!(ok("broker 127.0.0.1"), "{v}");
    assert!(ok("state folder"), "{v}");
    assert!(find(&v, "clock").is_some(), "{v}");
    assert!(find(&v, "service user").is_some(), "{v}");

    // Without the dead camera and with the broker gone: only the broker fails, with its stage.
    std::fs::write(
        &cfg,
        vigil_tests::scene::config(broker.port, &server.url("plaza"), ""),
    )?;
    drop(broker);
    let (code, v, _) = doctor(&cfg)?;
    assert_eq!(code, 1);
    let fails: Vec<&str> = v["checks"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|c| c["status"] == "fail")
        .filter_map(|c| c["what"].as_str())
        .collect();
    assert_eq!(fails.len(), 1, "{fails:?}");
    assert!(
        fails[0].starts_with("broker 127.0.0.1:") && fails[0].contains(": TCP:"),
        "{fails:?}"
    );
    Ok(())
}
