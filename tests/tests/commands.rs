//! Commands from the centre, end to end: the real agent with `[commands]` enabled on a real
//! mosquitto, requests sent by `vigil command` and by `mosquitto_pub` (repeated ids, old,
//! unknown and malformed requests), results validated against docs/schemas/.

use std::process::Command;
use std::time::{Duration, SystemTime};

use sha2::{Digest, Sha256};
use vigil::clock::rfc3339_ms;
use vigil_tests::contract::Contract;
use vigil_tests::scene::Scene;
use vigil_tests::{Received, run_cli, vigil_bin};

const CMD: &str = "vigil/v1/t1/test-box-001/cmd";

/// Publish `body` on `topic` with mosquitto_pub (QoS 1).
fn publish(port: u16, topic: &str, body: &str) -> anyhow::Result<()> {
    let status = Command::new("mosquitto_pub")
        .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-q", "1"])
        .args(["-t", topic, "-m", body])
        .status()?;
    anyhow::ensure!(status.success(), "mosquitto_pub failed");
    Ok(())
}

/// Results received so far for request `id` (`None`: those without an id).
fn results<'a>(m: &'a [Received], id: Option<&str>) -> Vec<&'a Received> {
    m.iter()
        .filter(|x| x.topic.ends_with("/result"))
        .filter(|x| x.json()["id"].as_str() == id)
        .collect()
}

#[test]
fn commands_are_answered_once_each_and_refusals_say_why() -> anyhow::Result<()> {
    let extra = "\n[commands]\nenabled = true\nmax_age_s = 60\n";
    let mut scene = Scene::start(vigil_bin!(), "commands", "plaza_25s.mp4", extra)?;
    scene.wait("the agent's first health message", |m| {
        m.iter().any(|x| x.topic.ends_with("/health"))
    })?;
    // `vigil command ping`, as the centre would send it.
    let cfg = scene.cfg.to_string_lossy().to_string();
    let (code, out, err) = run_cli(
        vigil_bin!(),
        &["command", "ping", "--config", &cfg, "--json"],
    )?;
    assert_eq!(code, 0, "{out}{err}");
    let pong: serde_json::Value = serde_json::from_str(&out)?;
    let source = std::fs::read(&scene.cfg)?;
    let sha: String = Sha256::digest(&source)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(pong["ok"], true, "{pong}");
    assert_eq!(pong["answer"]["config_sha256"], sha.as_str(), "{pong}");
    assert_eq!(pong["answer"]["version"], env!("CARGO_PKG_VERSION"));

    // The same id twice: one result, sent again unchanged.
    let port = scene.broker.port;
    let id = uuid::Uuid::now_v7().to_string();
    let now = rfc3339_ms(SystemTime::now());
    let fresh = format!(r#"{{"id":"{id}","sent_at":"{now}"}}"#);
    publish(port, &format!("{CMD}/ping"), &fresh)?;
    publish(port, &format!("{CMD}/ping"), &fresh)?;
    // Refusals: an hour old, a command it does not know, not JSON.
    let old = rfc3339_ms(SystemTime::now() - Duration::from_secs(3600));
    let (old_id, unknown_id) = (uuid::Uuid::now_v7(), uuid::Uuid::now_v7());
    publish(
        port,
        &format!("{CMD}/ping"),
        &format!(r#"{{"id":"{old_id}","sent_at":"{old}"}}"#),
    )?;
    publish(
        port,
        &format!("{CMD}/reboot"),
        &format!(r#"{{"id":"{unknown_id}","sent_at":"{now}"}}"#),
    )?;
    publish(port, &format!("{CMD}/ping"), "not json")?;
    let (old_id, unknown_id) = (old_id.to_string(), unknown_id.to_string());
    let got = scene.wait("every result", |m| {
        results(m, Some(&id)).len() >= 2
            && !results(m, Some(&old_id)).is_empty()
            && !results(m, Some(&unknown_id)).is_empty()
            && !results(m, None).is_empty()
    })?;
    let twice = results(&got, Some(&id));
    assert_eq!(
        twice[0].payload, twice[1].payload,
        "the stored result, unchanged"
    );
    let code_of = |id: Option<&str>| results(&got, id)[0].json()["error"]["code"].clone();
    assert_eq!(code_of(Some(&old_id)), "expired");
    assert_eq!(code_of(Some(&unknown_id)), "unknown_command");
    assert_eq!(code_of(None), "bad_request");
    assert!(
        results(&got, Some(&unknown_id))[0]
            .topic
            .ends_with("/cmd/reboot/result")
    );
    let contract = Contract::load()?;
    for r in got.iter().filter(|x| x.topic.ends_with("/result")) {
        contract.check_message(&r.topic, &r.payload)?;
    }

    // After a kill and a restart the ledger still holds the result: a redelivered request is
    // not acted on again.
    scene.restart_after_kill()?;
    scene.wait("the agent online again", |m| {
        m.iter()
            .filter(|x| x.topic == "vigil/v1/t1/test-box-001/status")
            .filter(|x| x.json()["state"] == "online")
            .count()
            >= 2
    })?;
    // Sent until answered: the agent subscribes right after its birth message.
    let mut got = Vec::new();
    for _ in 0..30 {
        publish(port, &format!("{CMD}/ping"), &fresh)?;
        if let Ok(m) = scene.wait_for(Duration::from_secs(1), "the result again", |m| {
            results(m, Some(&id)).len() >= 3
        }) {
            got = m;
            break;
        }
    }
    let thrice = results(&got, Some(&id));
    assert!(thrice.len() >= 3, "no result after the restart");
    assert!(thrice.iter().all(|r| r.payload == thrice[0].payload));
    let log = scene.log();
    assert!(log.contains("repeated request"), "{log}");
    Ok(())
}

#[test]
fn a_snapshot_command_publishes_the_next_analysed_frame_and_names_it_in_the_result()
-> anyhow::Result<()> {
    let extra = "\n[commands]\nenabled = true\n";
    let scene = Scene::start(vigil_bin!(), "cmd-snapshot", "plaza_25s.mp4", extra)?;
    scene.wait("the agent's first health message", |m| {
        m.iter().any(|x| x.topic.ends_with("/health"))
    })?;
    let cfg = scene.cfg.to_string_lossy().to_string();
    let out = scene.state.join("plaza.jpg");
    let (code, stdout, err) = run_cli(
        vigil_bin!(),
        &[
            "command",
            "snapshot",
            "--config",
            &cfg,
            "--args",
            r#"{"camera":"plaza"}"#,
            "--out",
            &out.to_string_lossy(),
            "--json",
        ],
    )?;
    assert_eq!(code, 0, "{stdout}{err}");
    let result: serde_json::Value = serde_json::from_str(&stdout)?;
    let answer = &result["answer"];
    let jpeg = std::fs::read(&out)?;
    let sha: String = Sha256::digest(&jpeg)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(answer["sha256"], sha.as_str(), "{result}");
    assert_eq!(answer["bytes"], jpeg.len(), "{result}");
    let picture = image::load_from_memory(&jpeg)?;
    assert_eq!(
        (u64::from(picture.width()), u64::from(picture.height())),
        (
            answer["width"].as_u64().unwrap_or(0),
            answer["height"].as_u64().unwrap_or(0)
        ),
        "{result}"
    );
    // The centre's own subscriber saw the picture on the topic the result names, before it.
    let topic = answer["topic"].as_str().unwrap_or_default().to_string();
    let id = result["id"].as_str().unwrap_or_default().to_string();
    assert!(
        topic.ends_with(&format!("/cameras/plaza/snapshot/{id}")),
        "{topic}"
    );
    let got = scene.wait("the picture and the result", |m| {
        m.iter().any(|x| x.topic == topic) && !results(m, Some(&id)).is_empty()
    })?;
    let at = |t: &str| got.iter().position(|x| x.topic == t);
    let result_topic = format!("{CMD}/snapshot/result");
    assert!(at(&topic) < at(&result_topic), "the picture goes first");
    let contract = Contract::load()?;
    for r in got
        .iter()
        .filter(|x| x.topic == topic || x.topic.contains("/cmd/"))
    {
        contract.check_message(&r.topic, &r.payload)?;
    }
    // A camera the box does not have: refused with its code, the known cameras named.
    let (code, refused) = command(&scene, "snapshot", r#"{"camera":"nowhere"}"#)?;
    assert_eq!(
        (code, &refused["error"]["code"]),
        (1, &"unknown_camera".into())
    );
    assert!(
        refused["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("plaza")),
        "{refused}"
    );
    Ok(())
}

/// `vigil command COMMAND --args ARGS --json` against the scene's box: exit code, result.
fn command(scene: &Scene, name: &str, args: &str) -> anyhow::Result<(i32, serde_json::Value)> {
    let cfg = scene.cfg.to_string_lossy().to_string();
    let (code, out, err) = run_cli(
        vigil_bin!(),
        &["command", name, "--config", &cfg, "--args", args, "--json"],
    )?;
    let v = serde_json::from_str(&out).map_err(|e| anyhow::anyhow!("{e}: {out}{err}"))?;
    Ok((code, v))
}

/// Intrusion opens of the walkway whose frame was taken after `after` (RFC 3339).
fn opens_after(m: &[Received], after: &str) -> usize {
    m.iter()
        .filter(|x| x.topic.ends_with("/incidents/plaza"))
        .map(Received::json)
        .filter(|v| v["type"] == "intrusion" && v["state"] == "open")
        .filter(|v| v["frame_time"].as_str().is_some_and(|t| t > after))
        .count()
}

/// The newest intrusion opened and not closed yet.
fn still_open(m: &[Received]) -> Option<String> {
    let events: Vec<serde_json::Value> = m
        .iter()
        .filter(|x| x.topic.ends_with("/incidents/plaza"))
        .map(Received::json)
        .collect();
    let closed = |id: &serde_json::Value| {
        events
            .iter()
            .any(|v| v["id"] == *id && v["state"] == "close")
    };
    events
        .iter()
        .rev()
        .find(|v| v["state"] == "open" && !closed(&v["id"]))
        .and_then(|v| v["id"].as_str().map(str::to_string))
}

/// Whether a health message sent after `after` counted someone on the walkway.
fn walkway_counted_after(m: &[Received], after: &str) -> bool {
    m.iter()
        .filter(|x| x.topic.ends_with("/health"))
        .map(Received::json)
        .filter(|h| h["time"].as_str().is_some_and(|t| t > after))
        .any(|h| h["cameras"][0]["zones"][0]["count"].as_u64() > Some(0))
}

/// The walkway's disarms in the latest health message.
fn disarmed_in_health(m: &[Received]) -> Option<serde_json::Value> {
    m.iter()
        .rev()
        .find(|x| x.topic.ends_with("/health"))
        .map(|h| h.json()["cameras"][0]["disarmed"].clone())
}

#[test]
fn a_disarmed_zone_opens_nothing_across_a_restart_until_it_is_armed_again() -> anyhow::Result<()> {
    let extra = "\n[commands]\nenabled = true\n";
    let mut scene = Scene::start(vigil_bin!(), "cmd-disarm", "plaza_25s.mp4", extra)?;
    scene.wait("an intrusion on the walkway", |m| opens_after(m, "") > 0)?;
    // Fire never stands down without a bound; a zone the camera lacks is named.
    let (code, refused) = command(&scene, "disarm", r#"{"camera":"plaza","fire":true}"#)?;
    assert_eq!(
        (code, &refused["error"]["code"]),
        (1, &"fire_unbounded".into())
    );
    let (code, refused) = command(&scene, "disarm", r#"{"camera":"plaza","zone":"lawn"}"#)?;
    assert_eq!(code, 1, "{refused}");
    assert!(
        refused["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("walkway")),
        "{refused}"
    );
    let args = r#"{"camera":"plaza","zone":"walkway","by":"op7","reason":"festival"}"#;
    let (code, done) = command(&scene, "disarm", args)?;
    assert_eq!(code, 0, "{done}");
    assert_eq!(done["answer"]["disarmed"][0]["target"], "zone:walkway");
    // A frame in analysis when the result left may still open one: count from a second later.
    let from = rfc3339_ms(SystemTime::now() + Duration::from_secs(1));
    let got = scene.wait("health saying what stands down", |m| {
        disarmed_in_health(m).is_some_and(|d| d[0]["by"] == "op7")
    })?;
    std::thread::sleep(Duration::from_secs(10));
    let got_later = scene.recorder.snapshot();
    assert_eq!(opens_after(&got_later, &from), 0, "stood down");
    assert!(
        walkway_counted_after(&got_later, &from),
        "nobody on the walkway in the window: the test proved nothing"
    );
    assert!(got_later.len() > got.len(), "the agent went on publishing");

    // Killed and started again: still stood down, from the file.
    scene.restart_after_kill()?;
    let restarted = rfc3339_ms(SystemTime::now());
    scene.wait("health after the restart saying so", |m| {
        m.iter()
            .filter(|x| x.topic.ends_with("/health"))
            .filter(|x| x.json()["time"].as_str().is_some_and(|t| t > &*restarted))
            .any(|x| x.json()["cameras"][0]["disarmed"][0]["target"] == "zone:walkway")
    })?;
    std::thread::sleep(Duration::from_secs(8));
    let after_restart = scene.recorder.snapshot();
    assert_eq!(opens_after(&after_restart, &from), 0, "still stood down");
    assert!(walkway_counted_after(&after_restart, &restarted));
    assert!(
        scene
            .log()
            .contains("stood down by the centre before the restart")
    );

    // Armed again: intrusions open as before.
    let (code, armed) = command(&scene, "arm", r#"{"camera":"plaza"}"#)?;
    assert_eq!(code, 0, "{armed}");
    assert_eq!(armed["answer"]["disarmed"], serde_json::json!([]));
    assert_eq!(armed["answer"]["armed"], true);
    let rearmed = rfc3339_ms(SystemTime::now());
    scene.wait("an intrusion once armed again", |m| {
        opens_after(m, &rearmed) > 0
    })?;
    scene.check_contract()?;
    Ok(())
}

/// `config` logging in as `user` with the password in a private file next to it.
fn as_user(
    config: &str,
    dir: &std::path::Path,
    user: &str,
    password: &str,
) -> anyhow::Result<String> {
    use std::os::unix::fs::PermissionsExt;
    let file = dir.join(format!("{user}.password"));
    std::fs::write(&file, password)?;
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600))?;
    Ok(config.replace(
        "keep_alive_s = 5\n",
        &format!(
            "keep_alive_s = 5\nusername = \"{user}\"\npassword_file = \"{}\"\n",
            file.display()
        ),
    ))
}

#[test]
fn the_district_acl_lets_its_centre_command_a_box_and_keeps_other_boxes_out() -> anyhow::Result<()>
{
    // deploy/broker's district ACL, rendered for this box's district t1, on a listener of
    // its own; the recorder watches from the open one.
    let acl = std::fs::read_to_string(vigil_tests::repo().join("deploy/broker/district.acl.in"))?
        .replace("@DISTRICT@", "t1");
    let dir = vigil_tests::TempDir::new("acl-district")?;
    let (acl_file, passwords) = (dir.join("district.acl"), dir.join("passwd"));
    std::fs::write(&acl_file, acl)?;
    vigil_tests::mosquitto_users(
        &passwords,
        &[
            ("test-box-001", "box-pw-1"),
            ("other-box", "box-pw-2"),
            ("centre-t1", "centre-pw"),
        ],
    )?;
    let secured = vigil_tests::free_port()?;
    let broker = vigil_tests::Mosquitto::start_with(&format!(
        "listener {secured} 127.0.0.1\nallow_anonymous false\npassword_file {}\nacl_file {}\n",
        passwords.display(),
        acl_file.display()
    ))?;
    let extra = "\n[commands]\nenabled = true\n";
    let config = |_: u16, url: &str| {
        let plain = vigil_tests::scene::config_with(secured, url, "", extra);
        as_user(&plain, &dir.0, "test-box-001", "box-pw-1").unwrap_or(plain)
    };
    let scene = Scene::start_custom(
        vigil_bin!(),
        "acl-district",
        std::path::Path::new("plaza_25s.mp4"),
        broker,
        false,
        config,
    )?;
    scene.wait("the box's health through the ACL", |m| {
        m.iter().any(|x| x.topic.ends_with("/health"))
    })?;
    // The box's configuration without its login: the others log in as themselves.
    let base: String = std::fs::read_to_string(&scene.cfg)?
        .lines()
        .filter(|l| !l.starts_with("username =") && !l.starts_with("password_file ="))
        .map(|l| format!("{l}\n"))
        .collect();
    let send = |user: &str, password: &str| -> anyhow::Result<(i32, String)> {
        let cfg = dir.join(&format!("{user}.toml"));
        std::fs::write(&cfg, as_user(&base, &dir.0, user, password)?)?;
        let cfg = cfg.to_string_lossy().to_string();
        let args = [
            "command",
            "ping",
            "--config",
            &cfg,
            "--device",
            "test-box-001",
            "--timeout",
            "4",
        ];
        let (code, out, err) = run_cli(vigil_bin!(), &args)?;
        Ok((code, format!("{out}{err}")))
    };
    // The district's centre commands the box.
    let (code, out) = send("centre-t1", "centre-pw")?;
    assert_eq!(code, 0, "{out}");
    // Another box may not: its request never reaches the box, so no result comes.
    let (code, out) = send("other-box", "box-pw-2")?;
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("no result"), "{out}");
    let requests = scene
        .recorder
        .snapshot()
        .iter()
        .filter(|x| x.topic == format!("{CMD}/ping"))
        .count();
    assert_eq!(
        requests, 1,
        "only the centre's request reached the broker's topic"
    );
    let log = scene.log();
    assert_eq!(log.matches("command done").count(), 1, "{log}");
    Ok(())
}

#[test]
fn an_acknowledged_incident_carries_who_and_when_on_its_next_event() -> anyhow::Result<()> {
    let extra = "\n[commands]\nenabled = true\n";
    let scene = Scene::start(vigil_bin!(), "cmd-ack", "plaza_25s.mp4", extra)?;
    // An incident still open: one opened and not closed yet (they close 3 s after the person
    // leaves the walkway, so one may close before the ack arrives: then the next is taken).
    let mut attempt = None;
    for _ in 0..10 {
        let got = scene.wait("an open intrusion", |m| still_open(m).is_some())?;
        let incident = still_open(&got).unwrap_or_default();
        let args = format!(r#"{{"incident":"{incident}","by":"op7","note":"guard sent"}}"#);
        let (code, acked) = command(&scene, "ack", &args)?;
        if code == 0 {
            attempt = Some((incident, acked));
            break;
        }
        assert_eq!(acked["error"]["code"], "unknown_incident", "{acked}");
        std::thread::sleep(Duration::from_millis(500));
    }
    let Some((incident, acked)) = attempt else {
        anyhow::bail!("no incident stayed open long enough to be acknowledged, in 10 tries");
    };
    assert_eq!(
        (&acked["answer"]["incident"], &acked["answer"]["type"]),
        (&incident.as_str().into(), &"intrusion".into()),
        "{acked}"
    );
    // Its next event (an update or its close) says who acknowledged it and when.
    let got = scene.wait("the incident's next event, acknowledged", |m| {
        m.iter()
            .filter(|x| x.topic.ends_with("/incidents/plaza"))
            .map(Received::json)
            .any(|v| v["id"] == incident.as_str() && v["acked_by"] == "op7")
    })?;
    let later = got
        .iter()
        .filter(|x| x.topic.ends_with("/incidents/plaza"))
        .map(Received::json)
        .find(|v| v["id"] == incident.as_str() && v["acked_by"] == "op7")
        .unwrap_or_default();
    assert_eq!(later["acked_at"], acked["answer"]["acked_at"]);
    assert_eq!(later["ack_note"], "guard sent");
    // An incident this box never had.
    let unknown = format!(r#"{{"incident":"{}"}}"#, uuid::Uuid::now_v7());
    let (code, refused) = command(&scene, "ack", &unknown)?;
    assert_eq!(
        (code, &refused["error"]["code"]),
        (1, &"unknown_incident".into())
    );
    scene.check_contract()?;
    Ok(())
}

/// `vigil keygen --out FILE`: the public key it prints.
fn keygen(path: &std::path::Path) -> anyhow::Result<String> {
    let (code, out, err) = run_cli(vigil_bin!(), &["keygen", "--out", &path.to_string_lossy()])?;
    anyhow::ensure!(code == 0, "{out}{err}");
    out.lines()
        .find_map(|l| l.strip_prefix("public key: "))
        .map(str::to_string)
        .ok_or_else(|| anyhow::anyhow!("no public key in {out}"))
}

#[test]
fn with_public_keys_a_disarm_is_taken_only_signed_by_one_of_them() -> anyhow::Result<()> {
    let keys = vigil_tests::TempDir::new("cmd-keys")?;
    let (centre, stranger) = (keys.join("centre.key"), keys.join("stranger.key"));
    let public = keygen(&centre)?;
    keygen(&stranger)?;
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&centre)?.permissions().mode() & 0o777,
        0o600
    );
    let (code, _, err) = run_cli(
        vigil_bin!(),
        &["keygen", "--out", &centre.to_string_lossy()],
    )?;
    assert_ne!(code, 0, "an existing key is never replaced");
    assert!(err.contains("cannot create"), "{err}");

    let extra = format!("\n[commands]\nenabled = true\npublic_keys = [\"{public}\"]\n");
    let scene = Scene::start(vigil_bin!(), "cmd-signed", "plaza_25s.mp4", &extra)?;
    scene.wait("the agent's first health message", |m| {
        m.iter().any(|x| x.topic.ends_with("/health"))
    })?;
    let cfg = scene.cfg.to_string_lossy().to_string();
    let disarm = |key: Option<&std::path::Path>| -> anyhow::Result<serde_json::Value> {
        let mut args = vec!["command", "disarm", "--config", &cfg, "--json"];
        args.extend(["--args", r#"{"camera":"plaza","zone":"walkway"}"#]);
        let key = key.map(|k| k.to_string_lossy().to_string());
        if let Some(k) = &key {
            args.extend(["--key", k]);
        }
        let (_, out, err) = run_cli(vigil_bin!(), &args)?;
        serde_json::from_str(&out).map_err(|e| anyhow::anyhow!("{e}: {out}{err}"))
    };
    let code = |v: &serde_json::Value| v["error"]["code"].as_str().unwrap_or("ok").to_string();
    assert_eq!(code(&disarm(None)?), "unsigned");
    assert_eq!(code(&disarm(Some(&stranger))?), "bad_signature");
    let done = disarm(Some(&centre))?;
    assert_eq!(done["ok"], true, "{done}");
    // A signature over one request does not carry over to another: tamper with a signed one.
    let port = scene.broker.port;
    let signed = {
        let id = uuid::Uuid::now_v7();
        let now = rfc3339_ms(SystemTime::now());
        let body = format!(r#"{{"id":"{id}","sent_at":"{now}","camera":"plaza"}}"#);
        let sig_of = |b: &str| -> anyhow::Result<String> {
            // Sign through vigil itself: the box's own rule for what is signed.
            let v: serde_json::Map<String, serde_json::Value> = serde_json::from_str(b)?;
            let key = vigil::config::keys::private_key(&std::fs::read_to_string(&centre)?)
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            Ok(vigil::command::signature::sign(
                &key,
                &format!("{CMD}/arm"),
                &v,
            ))
        };
        let sig = sig_of(&body)?;
        (
            id,
            body.replace(
                "\"plaza\"}",
                &format!("\"plaza\",\"zone\":\"walkway\",\"sig\":\"{sig}\"}}"),
            ),
        )
    };
    publish(port, &format!("{CMD}/arm"), &signed.1)?;
    let id = signed.0.to_string();
    let got = scene.wait("the tampered request's result", |m| {
        !results(m, Some(&id)).is_empty()
    })?;
    assert_eq!(
        results(&got, Some(&id))[0].json()["error"]["code"],
        "bad_signature"
    );
    // Commands outside the signed set need none.
    let (code, pong) = command(&scene, "ping", "{}")?;
    assert_eq!(code, 0, "{pong}");
    scene.check_contract()?;
    Ok(())
}
