//! The broker connection's security against a real mosquitto with a TLS listener that requires
//! a client certificate and a password: the right CA and credentials connect; a wrong CA, a
//! wrong password, an exposed key file each fail with a message that says what is wrong.
//! Certificates are made for each run with the `openssl` command.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use vigil_tests::certs::{ca, chmod, leaf, leaf_for};
use vigil_tests::{
    Mosquitto, Recorder, TempDir, free_port, run_cli, spawn_agent, vigil_bin, wait_for_port,
};

/// The agent's config for the TLS listener; the camera points nowhere (not under test).
fn config(tls_port: u16, mqtt_extra: &str) -> anyhow::Result<String> {
    let card = vigil_tests::repo().join("models/ssd_mobilenet_v2_coco/model.toml");
    let dead = free_port()?;
    Ok(format!(
        r#"
[device]
id = "tls-box-001"
district = "t1"

[mqtt]
host = "127.0.0.1"
port = {tls_port}
keep_alive_s = 5
{mqtt_extra}

[storage]
state_dir = "state"

[diag]
socket = "diag.sock"

[[models]]
name = "coco"
card = "{card}"

[[cameras]]
id = "gate"
url = "rtsp://127.0.0.1:{dead}/none"
model = "coco"
"#,
        card = card.display()
    ))
}

/// Run the agent with `mqtt_extra` until its log contains `needle` (or 20 s pass); returns the
/// log.
/// `vigil mqtt-test --timeout 3 --config CFG`: (exit code, stdout, stderr).
fn mqtt_test_with(cfg: &Path) -> anyhow::Result<(i32, String, String)> {
    run_cli(
        vigil_bin!(),
        &[
            "mqtt-test",
            "--timeout",
            "3",
            "--config",
            &cfg.to_string_lossy(),
        ],
    )
}

fn agent_log_until(
    dir: &Path,
    tag: &str,
    tls_port: u16,
    mqtt_extra: &str,
    needle: &str,
) -> anyhow::Result<String> {
    let cfg = dir.join(format!("{tag}.toml"));
    std::fs::write(&cfg, config(tls_port, mqtt_extra)?)?;
    let log = dir.join(format!("{tag}.log"));
    let mut agent = spawn_agent(vigil_bin!(), &cfg, &log)?;
    let end = Instant::now() + Duration::from_secs(20);
    let mut text = String::new();
    while Instant::now() < end {
        text = std::fs::read_to_string(&log).unwrap_or_default();
        if text.contains(needle) || !agent.running() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    agent.kill();
    Ok(text)
}

#[test]
fn tls_with_the_right_ca_client_certificate_and_password_connects_and_wrong_ones_are_explained()
-> anyhow::Result<()> {
    let work = TempDir::new("tls")?;
    let d: PathBuf = work.0.clone();
    ca(&d, "good")?;
    ca(&d, "other")?;
    leaf(&d, "good", "server")?;
    leaf(&d, "good", "client")?;
    // The broker's files must be readable by the user mosquitto drops to when run as root.
    for f in ["good-ca.pem", "server.pem", "server.key"] {
        chmod(&d.join(f), 0o644)?;
    }
    let passwd = d.join("passwd");
    std::fs::write(&passwd, "")?;
    let status = Command::new("mosquitto_passwd")
        .args(["-b"])
        .arg(&passwd)
        .args(["tls-box-001", "right horse battery"])
        .status()?;
    anyhow::ensure!(status.success(), "mosquitto_passwd failed");
    chmod(&passwd, 0o644)?;
    let tls_port = free_port()?;
    let broker = Mosquitto::start_with(&format!(
        "listener {tls_port} 127.0.0.1\ncafile {ca}\ncertfile {cert}\nkeyfile {key}\nrequire_certificate true\nallow_anonymous false\npassword_file {pw}\n",
        ca = d.join("good-ca.pem").display(),
        cert = d.join("server.pem").display(),
        key = d.join("server.key").display(),
        pw = passwd.display(),
    ))?;
    anyhow::ensure!(
        wait_for_port(tls_port, Duration::from_secs(10)),
        "no TLS listener"
    );
    // The agent's own secrets are private to it.
    chmod(&d.join("client.key"), 0o600)?;
    let pw_file = d.join("mqtt-password");
    std::fs::write(&pw_file, "right horse battery\n")?;
    chmod(&pw_file, 0o600)?;
    let wrong_pw = d.join("wrong-password");
    std::fs::write(&wrong_pw, "wrong\n")?;
    chmod(&wrong_pw, 0o600)?;
    let tls = |ca: &str| {
        format!(
            "username = \"tls-box-001\"\npassword_file = \"{pw}\"\n\n[mqtt.tls]\nca_file = \"{ca}\"\ncert_file = \"{cert}\"\nkey_file = \"{key}\"\n",
            pw = pw_file.display(),
            ca = d.join(ca).display(),
            cert = d.join("client.pem").display(),
            key = d.join("client.key").display(),
        )
    };

    // Right CA, client certificate, password: connected, and the birth message arrives.
    let recorder = Recorder::start(broker.port, "vigil/v1/t1/tls-box-001/status")?;
    let log = agent_log_until(
        &d,
        "good",
        tls_port,
        &tls("good-ca.pem"),
        "connected to the MQTT broker",
    )?;
    assert!(log.contains("connected to the MQTT broker"), "{log}");
    recorder.wait_for(Duration::from_secs(10), "the birth message over TLS", |m| {
        m.iter().any(|x| x.json()["state"] == "online")
    })?;
    assert!(
        !log.contains("right horse battery"),
        "the password reached the log"
    );

    // A CA that did not sign the broker's certificate: refused, and the log says why.
    let log = agent_log_until(
        &d,
        "wrongca",
        tls_port,
        &tls("other-ca.pem"),
        "TLS handshake failed",
    )?;
    assert!(log.contains("TLS handshake failed"), "{log}");
    assert!(log.contains("mqtt.tls"), "{log}");
    assert!(!log.contains("connected to the MQTT broker"), "{log}");

    // The right CA but a wrong password (mosquitto answers "not authorized", code 5).
    let bad = tls("good-ca.pem").replace(
        &pw_file.display().to_string(),
        &wrong_pw.display().to_string(),
    );
    let log = agent_log_until(&d, "badpw", tls_port, &bad, "the broker refused")?;
    assert!(
        log.contains("wrong username or password")
            || log.contains("refused the username or password"),
        "{log}"
    );

    // `vigil mqtt-test` names the stage that fails: TLS with the certificate problem, or the
    // credentials; and times a round trip when all is right.
    let mqtt_test = |tag: &str, extra: &str| -> anyhow::Result<(i32, String, String)> {
        let cfg = d.join(format!("mqtt-test-{tag}.toml"));
        std::fs::write(&cfg, config(tls_port, extra)?)?;
        mqtt_test_with(&cfg)
    };
    let (code, out, err) = mqtt_test("good", &tls("good-ca.pem"))?;
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("(TLS)") && out.contains("round trip"), "{out}");
    let (code, _, err) = mqtt_test("wrongca", &tls("other-ca.pem"))?;
    assert_eq!(code, 1);
    assert!(
        err.contains("TLS:") && err.to_lowercase().contains("certificate"),
        "{err}"
    );
    let (code, _, err) = mqtt_test("badpw", &bad)?;
    assert_eq!(code, 1);
    assert!(err.contains("authentication:"), "{err}");
    assert!(
        !err.contains("wrong\n") && !err.contains("right horse"),
        "{err}"
    );

    // Without a client certificate the broker (require_certificate) refuses the handshake.
    let no_cert = format!(
        "username = \"tls-box-001\"\npassword_file = \"{}\"\n\n[mqtt.tls]\nca_file = \"{}\"\n",
        pw_file.display(),
        d.join("good-ca.pem").display()
    );
    let log = agent_log_until(&d, "nocert", tls_port, &no_cert, "MQTT broker")?;
    assert!(!log.contains("connected to the MQTT broker"), "{log}");

    // Verification switched off: connects even with the wrong CA, and says so loudly.
    let insecure = tls("other-ca.pem") + "insecure_skip_verify = true\n";
    let log = agent_log_until(
        &d,
        "insecure",
        tls_port,
        &insecure,
        "connected to the MQTT broker",
    )?;
    assert!(log.contains("insecure_skip_verify is set"), "{log}");
    assert!(log.contains("connected to the MQTT broker"), "{log}");

    // A key file other users can read: the agent refuses to start (exit 78) and says how to fix it.
    chmod(&d.join("client.key"), 0o644)?;
    let cfg = d.join("exposed.toml");
    std::fs::write(&cfg, config(tls_port, &tls("good-ca.pem"))?)?;
    let (code, _out, err) = run_cli(vigil_bin!(), &["run", "--config", &cfg.to_string_lossy()])?;
    assert_eq!(code, 78, "{err}");
    assert!(
        err.contains("mqtt.tls.key_file") && err.contains("chmod 600"),
        "{err}"
    );
    drop(broker);
    Ok(())
}

/// `[[mqtt.brokers]]` with `tls_name`: a broker reached by its address whose certificate names
/// it is verified against that name; without `tls_name` the same connection is refused.
/// `vigil mqtt-test` checks every listed broker and names the one that fails.
#[test]
fn a_broker_reached_by_address_is_verified_against_its_tls_name() -> anyhow::Result<()> {
    let work = TempDir::new("tls-name")?;
    let d: PathBuf = work.0.clone();
    ca(&d, "good")?;
    leaf_for(&d, "good", "named", "DNS:broker-a.district.test")?;
    for f in ["good-ca.pem", "named.pem", "named.key"] {
        chmod(&d.join(f), 0o644)?;
    }
    let tls_port = free_port()?;
    let _broker = Mosquitto::start_with(&format!(
        "listener {tls_port} 127.0.0.1\ncafile {ca}\ncertfile {cert}\nkeyfile {key}\nallow_anonymous true\n",
        ca = d.join("good-ca.pem").display(),
        cert = d.join("named.pem").display(),
        key = d.join("named.key").display(),
    ))?;
    anyhow::ensure!(
        wait_for_port(tls_port, Duration::from_secs(10)),
        "no TLS listener"
    );
    let dead = free_port()?;
    let mqtt_test = |tag: &str, brokers: &str| -> anyhow::Result<(i32, String, String)> {
        let cfg = d.join(format!("{tag}.toml"));
        let tls = format!(
            "brokers = [{brokers}]\n\n[mqtt.tls]\nca_file = \"{}\"\n",
            d.join("good-ca.pem").display()
        );
        let text = config(tls_port, &tls)?
            .replace(&format!("host = \"127.0.0.1\"\nport = {tls_port}\n"), "");
        std::fs::write(&cfg, text)?;
        mqtt_test_with(&cfg)
    };
    let named = format!(
        "{{ host = \"127.0.0.1\", port = {tls_port}, tls_name = \"broker-a.district.test\" }}"
    );
    let (code, out, err) = mqtt_test("named", &named)?;
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("(TLS)") && out.contains("round trip"), "{out}");

    let bare = format!("{{ host = \"127.0.0.1\", port = {tls_port} }}");
    let (code, _, err) = mqtt_test("bare", &bare)?;
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("TLS:") && err.contains("certificate"), "{err}");

    let both = format!("{named}, {{ host = \"127.0.0.1\", port = {dead} }}");
    let (code, out, err) = mqtt_test("both", &both)?;
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        out.contains("round trip"),
        "the first broker was checked: {out}"
    );
    assert!(
        err.contains(&format!("broker 127.0.0.1:{dead}: TCP:")),
        "the second broker is named: {err}"
    );
    Ok(())
}
