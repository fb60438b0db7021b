//! A broker that cannot take every message: mosquitto with `max_packet_size` below the size of
//! an evidence picture, or with an ACL that refuses a topic. Over MQTT 3.1.1 it closes the
//! connection on an oversize message; over MQTT 5 it announces its limit at connect and answers
//! an ACL refusal with a reason code. The agent must not resend forever (that blocked its lane
//! and everything behind it), nor lose an incident event, and must count what was refused.
//! Real mosquitto, the RTSP test server on the plaza footage, the real binary.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use vigil_tests::scene::{Scene, config_with, incidents};
use vigil_tests::{Mosquitto, Received, vigil_bin};

/// The broker's limit on a whole packet: well below the plaza's evidence pictures.
const BROKER_LIMIT: usize = 30_000;

/// The agent on a broker limited to [`BROKER_LIMIT`]; `mqtt_keys` go into `[mqtt]`.
fn scene(tag: &str, mqtt_keys: &str) -> anyhow::Result<Scene> {
    let broker = Mosquitto::start_with(&format!("max_packet_size {BROKER_LIMIT}"))?;
    Scene::start_custom(
        vigil_bin!(),
        tag,
        Path::new("plaza_25s.mp4"),
        broker,
        false,
        |port, url| {
            config_with(port, url, "", "").replace(
                "keep_alive_s = 5\n",
                &format!("keep_alive_s = 5\n{mqtt_keys}\n"),
            )
        },
    )
}

fn snapshots(m: &[Received]) -> Vec<&Received> {
    m.iter()
        .filter(|x| x.topic.ends_with("/snapshot"))
        .collect()
}

/// `vigil outbox <action> --json` on the scene's outbox file, one JSON value per line.
fn outbox(scene: &Scene, action: &[&str]) -> anyhow::Result<Vec<serde_json::Value>> {
    let out = Command::new(vigil_bin!())
        .arg("outbox")
        .args(action)
        .arg("--json")
        .arg("--file")
        .arg(scene.state.join("outbox.db"))
        .output()?;
    anyhow::ensure!(
        out.status.success(),
        "vigil outbox {action:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| Ok(serde_json::from_str(l)?))
        .collect()
}

/// Every incident `seq` from 1 to the highest received arrived.
fn assert_gap_free(m: &[Received]) -> u64 {
    let seqs: BTreeSet<u64> = incidents(m)
        .iter()
        .filter_map(|e| e["seq"].as_u64())
        .collect();
    let last = seqs.last().copied().unwrap_or(0);
    let missing: Vec<u64> = (1..=last).filter(|s| !seqs.contains(s)).collect();
    assert!(missing.is_empty(), "incident events lost: seq {missing:?}");
    last
}

#[test]
fn a_message_the_broker_refuses_is_set_aside_and_nothing_behind_it_waits() -> anyhow::Result<()> {
    // MQTT 3.1.1: the broker shows its limit only by closing the connection.
    let mut scene = scene("refusing-broker", "protocol = \"3.1.1\"")?;
    // Wait for a picture that got through after the refusals, a few more incident events and
    // a health message that counts the dead letters.
    scene.wait_for(
        Duration::from_secs(120),
        "a dead letter counted in health, then pictures that fit and more incident events",
        |m| {
            let health_dead = m.iter().any(|x| {
                x.topic.ends_with("/health")
                    && x.json()["outbox"]["lanes"]["security"]["dead_letters"]
                        .as_u64()
                        .is_some_and(|n| n >= 1)
            });
            health_dead && snapshots(m).len() >= 3 && incidents(m).len() >= 10
        },
    )?;
    let connects = scene.log().matches("connected to the MQTT broker").count();
    scene.agent.terminate(Duration::from_secs(20))?;
    std::thread::sleep(Duration::from_millis(500));
    let got = scene.recorder.snapshot();
    let last = assert_gap_free(&got);
    eprintln!(
        "refusing broker: {last} incident events, {} pictures delivered, {connects} connections",
        snapshots(&got).len()
    );
    // A handful of connections (6 measured here): three for the first refused size, one for
    // each later one, never one per second as before.
    assert!(
        connects <= 12,
        "{connects} connections: the agent keeps resending what the broker refuses\n{}",
        scene.log()
    );
    // Every picture an incident names was delivered, set aside (with why) or still waits.
    let dead = outbox(&scene, &["dead", "--rows", "1000"])?;
    assert!(!dead.is_empty(), "no dead letter listed");
    assert!(
        dead.iter().all(|d| d["reason"]
            .as_str()
            .is_some_and(|r| r.contains("closed the connection") || r.contains("refused"))),
        "{dead:?}"
    );
    let waiting = outbox(&scene, &["list", "--rows", "1000"])?;
    let topic_in = |v: &[serde_json::Value], t: &str| v.iter().any(|d| d["topic"] == t);
    let delivered: BTreeSet<&str> = snapshots(&got).iter().map(|x| x.topic.as_str()).collect();
    for e in incidents(&got) {
        let Some(t) = e["snapshot"]["topic"].as_str() else {
            continue;
        };
        assert!(
            delivered.contains(t) || topic_in(&dead, t) || topic_in(&waiting, t),
            "the picture {t} is neither delivered, set aside nor waiting"
        );
    }
    // Pictures made after the refusal fit the broker.
    assert!(
        snapshots(&got)
            .iter()
            .all(|x| x.payload.len() < BROKER_LIMIT)
    );
    let health = got
        .iter()
        .rev()
        .find(|x| x.topic.ends_with("/health"))
        .map(Received::json)
        .unwrap_or_default();
    let refused = health["outbox"]["broker_refused_bytes"]
        .as_u64()
        .unwrap_or(0);
    assert!(
        refused as usize > BROKER_LIMIT,
        "health names the refused size: {}",
        health["outbox"]
    );
    scene.check_contract()?;
    Ok(())
}

#[test]
fn an_mqtt5_broker_announces_its_limit_so_pictures_fit_and_nothing_is_set_aside()
-> anyhow::Result<()> {
    // Nothing configured: mosquitto announces its maximum packet size in its CONNACK.
    let mut scene = scene("limited-broker", "")?;
    let got = scene.wait_for(Duration::from_secs(90), "three pictures", |m| {
        snapshots(m).len() >= 3
    })?;
    scene.agent.terminate(Duration::from_secs(20))?;
    let log = scene.log();
    let connects = log.matches("connected to the MQTT broker").count();
    assert_eq!(connects, 1, "{log}");
    assert!(log.contains(&format!("max_packet={BROKER_LIMIT}")), "{log}");
    assert!(outbox(&scene, &["dead"])?.is_empty());
    let last = assert_gap_free(&got);
    let sizes: Vec<usize> = snapshots(&got).iter().map(|x| x.payload.len()).collect();
    eprintln!("limited broker: {last} incident events, picture sizes {sizes:?}");
    assert!(sizes.iter().all(|&n| n < BROKER_LIMIT));
    // Every picture an incident names arrived and matches its reference.
    for e in incidents(&got) {
        let Some(t) = e["snapshot"]["topic"].as_str() else {
            continue;
        };
        if let Some(s) = got.iter().find(|x| x.topic == t) {
            assert_eq!(
                e["snapshot"]["bytes"].as_u64(),
                Some(s.payload.len() as u64)
            );
        }
    }
    scene.check_contract()?;
    Ok(())
}

#[test]
fn a_topic_the_broker_acl_refuses_does_not_loop_or_hold_back_the_others() -> anyhow::Result<()> {
    // The device may publish everything of its own but the evidence pictures (one level deeper
    // than the incidents: `+` does not match them). Everyone may read.
    let acl = "topic read vigil/#\n\
               pattern write vigil/v1/t1/%c/status\n\
               pattern write vigil/v1/t1/%c/health\n\
               pattern write vigil/v1/t1/%c/cameras/#\n\
               pattern write vigil/v1/t1/%c/incidents/+\n";
    let acl_dir = vigil_tests::TempDir::new("acl")?;
    let file = acl_dir.join("vigil.acl");
    std::fs::write(&file, acl)?;
    let broker = Mosquitto::start_with(&format!("acl_file {}", file.display()))?;
    let mut scene = Scene::start_custom(
        vigil_bin!(),
        "acl-broker",
        Path::new("plaza_25s.mp4"),
        broker,
        false,
        |port, url| config_with(port, url, "", ""),
    )?;
    scene.wait_for(
        Duration::from_secs(90),
        "ten incident events and five health messages past the refused pictures",
        |m| {
            incidents(m).len() >= 10
                && m.iter().filter(|x| x.topic.ends_with("/health")).count() >= 5
        },
    )?;
    let connects = scene.log().matches("connected to the MQTT broker").count();
    scene.agent.terminate(Duration::from_secs(20))?;
    std::thread::sleep(Duration::from_millis(500));
    let got = scene.recorder.snapshot();
    let last = assert_gap_free(&got);
    let named = incidents(&got)
        .iter()
        .filter(|e| e["snapshot"]["topic"].is_string())
        .count();
    eprintln!(
        "ACL refusing pictures: {last} incident events, {named} naming a picture, {} pictures \
         arrived, {connects} connection(s)",
        snapshots(&got).len()
    );
    assert!(named > 0, "incidents named pictures");
    assert!(snapshots(&got).is_empty(), "the ACL let a picture through");
    // MQTT 5: mosquitto answers each refused picture "not authorized"; it is set aside at
    // once (never resent), counted in health and listed, and the connection stays.
    assert_eq!(connects, 1, "{}", scene.log());
    assert_eq!(
        outbox(&scene, &["list", "--rows", "1000"])?.len(),
        0,
        "nothing waits: the refused pictures were set aside, not retried"
    );
    let dead = outbox(&scene, &["dead", "--rows", "1000"])?;
    let events = incidents(&got);
    let pictures: BTreeSet<&str> = events
        .iter()
        .filter_map(|e| e["snapshot"]["topic"].as_str())
        .collect();
    let refused: BTreeSet<&str> = dead.iter().filter_map(|d| d["topic"].as_str()).collect();
    assert!(
        pictures.is_subset(&refused),
        "every refused picture is listed: {pictures:?} of {dead:?}"
    );
    assert!(
        dead.iter().all(|d| d["reason"]
            .as_str()
            .is_some_and(|r| r.contains("not authorized") && r.contains("0x87"))),
        "{dead:?}"
    );
    let counted = got
        .iter()
        .rev()
        .find(|x| x.topic.ends_with("/health"))
        .and_then(|x| x.json()["outbox"]["lanes"]["security"]["dead_letters"].as_u64())
        .unwrap_or(0);
    assert!(counted > 0, "health counts the refusals");
    eprintln!(
        "{} pictures refused and listed; the last health counted {counted}",
        dead.len()
    );
    scene.check_contract()?;
    Ok(())
}
