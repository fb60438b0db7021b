//! The `config` command end to end: the real agent on a real mosquitto and the RTSP test
//! server, configurations pushed by `vigil command config --file`: one that fails `vigil check`
//! (nothing changes), one that needs a restart (refused), one whose camera delivers nothing
//! (rolled back, live), and one that applies live, is kept in the state folder and runs again
//! after the agent is killed and started again. Results validated against docs/schemas/.

use std::time::SystemTime;

use vigil::clock::rfc3339_ms;
use vigil_tests::scene::Scene;
use vigil_tests::{Received, run_cli, vigil_bin};

/// `vigil command config --file FILE` against the scene's box: exit code and result.
fn push(scene: &Scene, text: &str, name: &str) -> anyhow::Result<(i32, serde_json::Value)> {
    let file = scene.state.with_file_name(name);
    std::fs::write(&file, text)?;
    let cfg = scene.cfg.to_string_lossy().to_string();
    let file = file.to_string_lossy().to_string();
    let args = ["command", "config", "--config", &cfg, "--file", &file];
    let (code, out, err) = run_cli(
        vigil_bin!(),
        &[&args[..], &["--json", "--timeout", "90"]].concat(),
    )?;
    let v = serde_json::from_str(&out).map_err(|e| anyhow::anyhow!("{e}: {out}{err}"))?;
    Ok((code, v))
}

/// The sha256 of the configuration the box runs, from a ping.
fn running_sha(scene: &Scene) -> anyhow::Result<String> {
    let cfg = scene.cfg.to_string_lossy().to_string();
    let (code, out, err) = run_cli(
        vigil_bin!(),
        &["command", "ping", "--config", &cfg, "--json"],
    )?;
    anyhow::ensure!(code == 0, "{out}{err}");
    let v: serde_json::Value = serde_json::from_str(&out)?;
    Ok(v["answer"]["config_sha256"]
        .as_str()
        .unwrap_or_default()
        .to_string())
}

fn sha(text: &str) -> String {
    vigil::hash::sha256_hex(text.as_bytes())
}

/// Whether a health message sent after `after` shows the plaza camera's zone `zone` and
/// frames analysed.
fn zone_in_health_after(m: &[Received], after: &str, zone: &str) -> bool {
    m.iter()
        .filter(|x| x.topic.ends_with("/health"))
        .map(Received::json)
        .filter(|h| h["time"].as_str().is_some_and(|t| t > after))
        .any(|h| h["cameras"][0]["zones"][0]["zone"] == zone)
}

fn code(v: &serde_json::Value) -> &str {
    v["error"]["code"].as_str().unwrap_or("ok")
}

fn message(v: &serde_json::Value) -> &str {
    v["error"]["message"].as_str().unwrap_or_default()
}

#[test]
fn a_pushed_configuration_is_checked_tried_kept_or_rolled_back() -> anyhow::Result<()> {
    let extra =
        "\n[commands]\nenabled = true\nconfig_trial_s = 10\nallow = [\"ping\", \"config\"]\n";
    let mut scene = Scene::start(vigil_bin!(), "cmd-config", "plaza_25s.mp4", extra)?;
    scene.wait("the agent's first health message", |m| {
        m.iter().any(|x| x.topic.ends_with("/health"))
    })?;
    let installed = std::fs::read_to_string(&scene.cfg)?;
    assert_eq!(running_sha(&scene)?, sha(&installed));

    // Two problems: both located in the error, nothing changes.
    let bad = installed
        .replace("quiet_s = 3", "quiet_s = -3")
        .replace("analysis_fps = 5", "analysis_fps = \"five\"");
    let (code_, refused) = push(&scene, &bad, "bad.toml")?;
    assert_eq!((code_, code(&refused)), (1, "invalid_config"), "{refused}");
    let m = message(&refused);
    assert!(m.contains("config.toml:") && m.contains("quiet_s"), "{m}");
    assert!(m.contains("analysis_fps"), "{m}");
    assert_eq!(running_sha(&scene)?, sha(&installed), "nothing changed");

    // Beyond the cameras: refused as a whole, the section named.
    let restart = installed.replace(
        "[commands]",
        "[outbox]\nmax_bytes = 123456789\n\n[commands]",
    );
    let (_, refused) = push(&scene, &restart, "restart.toml")?;
    assert_eq!(code(&refused), "needs_restart", "{refused}");
    assert!(message(&refused).contains("outbox"), "{refused}");

    // A camera that delivers nothing under the new configuration: put back, live.
    let url = installed
        .lines()
        .find_map(|l| l.strip_prefix("url = "))
        .unwrap_or_default()
        .to_string();
    let dead = installed.replace(&url, "\"rtsp://127.0.0.1:9/nothing\"");
    let (code_, refused) = push(&scene, &dead, "dead.toml")?;
    assert_eq!((code_, code(&refused)), (1, "rolled_back"), "{refused}");
    assert!(message(&refused).contains("plaza"), "{refused}");
    let back = rfc3339_ms(SystemTime::now());
    scene.wait("frames analysed again after the rollback", |m| {
        m.iter()
            .filter(|x| x.topic.ends_with("/health"))
            .map(Received::json)
            .filter(|h| h["time"].as_str().is_some_and(|t| t > &*back))
            .any(|h| h["cameras"][0]["analysed_fps"].as_f64() > Some(0.0))
    })?;
    assert_eq!(running_sha(&scene)?, sha(&installed));
    assert!(!scene.state.join("config.toml").exists(), "nothing kept");

    // New rules and a new rate: applied live, tried, kept.
    let good = installed
        .replace("name = \"walkway\"", "name = \"path\"")
        .replace("analysis_fps = 5", "analysis_fps = 4");
    let pushed_at = rfc3339_ms(SystemTime::now());
    let (code_, done) = push(&scene, &good, "good.toml")?;
    assert_eq!(code_, 0, "{done}");
    let answer = &done["answer"];
    assert_eq!(answer["sha256"], sha(&good));
    assert_eq!(answer["cameras_started"], serde_json::json!(["plaza"]));
    let applied = answer["applied"].to_string();
    assert!(
        applied.contains("rules replaced") && applied.contains("pipeline rebuilt"),
        "{applied}"
    );
    assert_eq!(
        std::fs::read_to_string(scene.state.join("config.toml"))?,
        good
    );
    assert_eq!(running_sha(&scene)?, sha(&good));
    scene.wait("health with the new zone", |m| {
        zone_in_health_after(m, &pushed_at, "path")
    })?;
    // The same request id again gets the stored answer (vigil command makes a new id, so
    // this is a new request: it applies the same text and changes nothing).
    let (code_, again) = push(&scene, &good, "good.toml")?;
    assert_eq!(code_, 0, "{again}");
    assert_eq!(again["answer"]["applied"], serde_json::json!([]));

    // Killed and started again: the pushed configuration runs, and vigil check says so.
    scene.restart_after_kill()?;
    let restarted = rfc3339_ms(SystemTime::now());
    scene.wait("health after the restart with the pushed zone", |m| {
        zone_in_health_after(m, &restarted, "path")
    })?;
    assert!(
        scene
            .log()
            .contains("running the configuration the centre pushed")
    );
    let cfg = scene.cfg.to_string_lossy().to_string();
    let (code_, out, err) = run_cli(vigil_bin!(), &["check", "--config", &cfg])?;
    assert_eq!(code_, 0, "{out}{err}");
    assert!(
        out.contains("note: vigil run uses") && out.contains("config.toml"),
        "{out}"
    );

    // Edited on the box: the edit wins at the next start, the pushed files are retired.
    std::fs::write(&scene.cfg, installed.replace("quiet_s = 3", "quiet_s = 4"))?;
    scene.restart_after_kill()?;
    let edited = rfc3339_ms(SystemTime::now());
    scene.wait("health after the edit with the installed zone", |m| {
        zone_in_health_after(m, &edited, "walkway")
    })?;
    assert!(scene.state.join("config.toml.retired").exists());
    scene.check_contract()?;
    Ok(())
}
