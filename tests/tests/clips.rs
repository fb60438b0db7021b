//! Evidence clips end to end: the real agent keeps each camera's pre-event buffer from the
//! RTSP test server's plaza stream; clips of opening intrusions (`clips.on_open`) and of `clip`
//! commands arrive in chunks on a real mosquitto, are put back together, checked against their
//! sha256 and played by GStreamer; a clip from before the buffer is refused with its code.

use std::time::{Duration, SystemTime};

use vigil::clock::rfc3339_ms;
use vigil_tests::scene::Scene;
use vigil_tests::{Received, mp4, run_cli, vigil_bin};

fn time(s: &serde_json::Value) -> SystemTime {
    s.as_str()
        .and_then(|s| humantime::parse_rfc3339(s).ok())
        .unwrap_or(SystemTime::UNIX_EPOCH)
}

/// `vigil command clip --args ARGS --json`: exit code and result.
fn clip(scene: &Scene, args: &str) -> anyhow::Result<(i32, serde_json::Value)> {
    let cfg = scene.cfg.to_string_lossy().to_string();
    let (code, out, err) = run_cli(
        vigil_bin!(),
        &[
            "command",
            "clip",
            "--config",
            &cfg,
            "--args",
            args,
            "--json",
            "--timeout",
            "60",
        ],
    )?;
    let v = serde_json::from_str(&out).map_err(|e| anyhow::anyhow!("{e}: {out}{err}"))?;
    Ok((code, v))
}

/// Put the clip `answer` describes together from `got`, write it beside the scene's state and
/// play it: frames decoded.
fn played(scene: &Scene, got: &[Received], answer: &serde_json::Value) -> anyhow::Result<usize> {
    let file = mp4::assemble(got, answer)?;
    let path = scene.state.with_file_name("clip.mp4");
    std::fs::write(&path, &file)?;
    let played = mp4::play(&path)?;
    assert!(played.starts_with_key, "a clip starts with a key frame");
    assert!(played.in_order, "its frames come out in their order");
    assert_eq!(
        played.frames as u64,
        answer["frames"].as_u64().unwrap_or(0),
        "{answer}"
    );
    Ok(played.frames)
}

#[test]
fn clips_of_opening_incidents_and_of_commands_arrive_whole_and_play() -> anyhow::Result<()> {
    let extra = "\n[commands]\nenabled = true\n\n[clips]\npre_s = 3\npost_s = 2\non_open = [\"intrusion\"]\n";
    let scene = Scene::start(vigil_bin!(), "clips", "plaza_25s.mp4", extra)?;
    // An intrusion opens; its clip is announced after its chunks.
    let got = scene.wait("an intrusion's clip", |m| {
        m.iter().any(|x| x.topic.ends_with("/clip"))
    })?;
    let announced = got
        .iter()
        .find(|x| x.topic.ends_with("/clip"))
        .map(Received::json)
        .unwrap_or_default();
    assert!(mp4::complete(&got, &announced), "the chunks came before it");
    let open = got
        .iter()
        .filter(|x| x.topic.ends_with("/incidents/plaza"))
        .map(Received::json)
        .find(|v| v["id"] == announced["incident"] && v["state"] == "open")
        .expect("the incident's open event");
    assert_eq!(announced["incident_at"], open["frame_time"]);
    eprintln!("the intrusion's clip: {announced}");
    let frames = played(&scene, &got, &announced)?;
    assert!(frames >= 20, "about 5 s at 10 fps: {frames}");
    // It covers the incident's frame: from a key frame at most pre_s (and a group of
    // pictures) before it to about post_s after it.
    let (start, at) = (time(&announced["start"]), time(&open["frame_time"]));
    let end = start + Duration::from_secs_f64(announced["duration_s"].as_f64().unwrap_or(0.0));
    assert!(start <= at && at <= end, "{announced}");
    assert!(
        end + Duration::from_secs(1) >= at + Duration::from_secs(2),
        "{announced}"
    );

    // A clip by time, asked with a command, once the buffer reaches back far enough: 8 s of
    // stream analysed at 5 fps (the plaza clip has a key frame every 2 s).
    scene.wait("8 s of stream", |m| {
        vigil_tests::analysed_of(m, "plaza") >= 40
    })?;
    let now = SystemTime::now();
    let args = format!(
        r#"{{"camera":"plaza","from":"{}","to":"{}"}}"#,
        rfc3339_ms(now - Duration::from_secs(4)),
        rfc3339_ms(now - Duration::from_secs(1))
    );
    let (code, result) = clip(&scene, &args)?;
    assert_eq!(code, 0, "{result}");
    let answer = result["answer"].clone();
    let id = result["id"].as_str().unwrap_or_default().to_string();
    assert!(
        answer["topic"]
            .as_str()
            .is_some_and(|t| t.ends_with(&format!("/cameras/plaza/clip/{id}")))
    );
    let got = scene.wait("the clip's chunks", |m| mp4::complete(m, &answer))?;
    played(&scene, &got, &answer)?;

    // From before what the buffer holds (3 + 2 + 5 s): refused, with what it holds.
    let args = format!(
        r#"{{"camera":"plaza","from":"{}","to":"{}"}}"#,
        rfc3339_ms(now - Duration::from_secs(60)),
        rfc3339_ms(now - Duration::from_secs(50))
    );
    let (code, refused) = clip(&scene, &args)?;
    assert_eq!(
        (code, &refused["error"]["code"]),
        (1, &"rolled_past".into()),
        "{refused}"
    );
    assert!(
        refused["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("holds"))
    );
    scene.check_contract()?;
    Ok(())
}
