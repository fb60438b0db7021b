//! `vigil mqtt-test` against a real mosquitto: a round trip on the device's test topic, and a
//! distinct message for DNS, TCP and ACL failures (TLS and credentials: tests/tls.rs).

use serde_json::Value;
use vigil_tests::{Mosquitto, TempDir, free_port, run_cli, vigil_bin};

/// Write a config for a broker at `host:port` and run `vigil mqtt-test --json` on it.
fn mqtt_test(dir: &TempDir, host: &str, port: u16) -> anyhow::Result<(i32, Value)> {
    let cfg = dir.join("vigil.toml");
    let text = vigil_tests::scene::config(port, "rtsp://127.0.0.1:9/none", "").replacen(
        "host = \"127.0.0.1\"",
        &format!("host = \"{host}\""),
        1,
    );
    std::fs::write(&cfg, text)?;
    let (code, out, err) = run_cli(
        vigil_bin!(),
        &[
            "mqtt-test",
            "--json",
            "--timeout",
            "3",
            "--config",
            &cfg.to_string_lossy(),
        ],
    )?;
    let v: Value =
        serde_json::from_str(&out).unwrap_or_else(|_| serde_json::json!({"stderr": err}));
    Ok((code, v))
}

#[test]
fn a_round_trip_through_the_broker_is_timed() -> anyhow::Result<()> {
    let broker = Mosquitto::start()?;
    let dir = TempDir::new("mqtt-test-ok")?;
    let (code, v) = mqtt_test(&dir, "127.0.0.1", broker.port)?;
    eprintln!("mqtt-test: {v}");
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["topic"], "vigil/v1/t1/test-box-001/test");
    assert!(v["round_trip_ms"].as_f64() > Some(0.0), "{v}");
    assert_eq!(v["tls"], false);
    // The agent's own protocol was checked too.
    assert_eq!(v["protocol"], "5", "{v}");
    Ok(())
}

#[test]
fn a_broker_without_mqtt_5_is_named_and_3_1_1_works_with_it() -> anyhow::Result<()> {
    // The demo's embedded broker (rumqttd) speaks MQTT 3.1.1 only.
    let port = free_port()?;
    vigil_demo::start_broker(port).map_err(anyhow::Error::msg)?;
    let dir = TempDir::new("mqtt-test-311")?;
    let (code, v) = mqtt_test(&dir, "127.0.0.1", port)?;
    eprintln!("MQTT 5 against a 3.1.1 broker: {v}");
    assert_eq!(code, 1, "{v}");
    assert!(
        v["error"]
            .as_str()
            .is_some_and(|e| e.starts_with("MQTT 5:") && e.contains("mqtt.protocol = \"3.1.1\"")),
        "{v}"
    );
    let cfg = dir.join("vigil.toml");
    let text = std::fs::read_to_string(&cfg)?;
    std::fs::write(
        &cfg,
        text.replacen("[mqtt]\n", "[mqtt]\nprotocol = \"3.1.1\"\n", 1),
    )?;
    let (code, out, err) = run_cli(
        vigil_bin!(),
        &["mqtt-test", "--json", "--config", &cfg.to_string_lossy()],
    )?;
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("\"protocol\":\"3.1.1\""), "{out}");
    Ok(())
}

#[test]
fn dns_tcp_and_acl_failures_are_told_apart() -> anyhow::Result<()> {
    let dir = TempDir::new("mqtt-test-bad")?;
    let (code, v) = mqtt_test(&dir, "no-such-broker.invalid", 1883)?;
    assert_eq!(code, 1);
    assert!(
        v["error"].as_str().is_some_and(|e| e.starts_with("DNS:")),
        "{v}"
    );
    let (code, v) = mqtt_test(&dir, "127.0.0.1", free_port()?)?;
    assert_eq!(code, 1);
    assert!(
        v["error"]
            .as_str()
            .is_some_and(|e| e.starts_with("TCP:") && e.contains("refused")),
        "{v}"
    );
    // A broker whose ACL lets anonymous clients read but not write the device's topics, and
    // one that denies them. mosquitto grants every subscription and filters on delivery, so
    // both show as a message acknowledged but never delivered (a broker that refuses the
    // subscription outright gets its own message; mosquitto cannot produce it).
    let read_only = dir.join("read-only.acl");
    std::fs::write(&read_only, "topic read vigil/v1/#\n")?;
    let denied = dir.join("denied.acl");
    std::fs::write(&denied, "topic deny vigil/v1/#\n")?;
    let (ro_port, wo_port) = (free_port()?, free_port()?);
    let _broker = Mosquitto::start_with(&format!(
        "listener {ro_port} 127.0.0.1\nallow_anonymous true\nacl_file {}\nlistener {wo_port} 127.0.0.1\nallow_anonymous true\nacl_file {}\n",
        read_only.display(),
        denied.display()
    ))?;
    anyhow::ensure!(vigil_tests::wait_for_port(
        wo_port,
        std::time::Duration::from_secs(10)
    ));
    let (code, v) = mqtt_test(&dir, "127.0.0.1", ro_port)?;
    assert_eq!(code, 1);
    assert!(
        v["error"]
            .as_str()
            .is_some_and(|e| e.starts_with("ACL:") && e.contains("never delivered")),
        "{v}"
    );
    let (code, v) = mqtt_test(&dir, "127.0.0.1", wo_port)?;
    assert_eq!(code, 1);
    assert!(
        v["error"]
            .as_str()
            .is_some_and(|e| e.starts_with("ACL:") && e.contains("subscription")),
        "{v}"
    );
    Ok(())
}
