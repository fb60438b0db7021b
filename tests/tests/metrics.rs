//! The opt-in Prometheus endpoint on a running agent, and no listening port without it.

use std::io::{Read, Write};
use std::time::Duration;

use vigil_tests::scene::{Scene, incidents};
use vigil_tests::{free_port, vigil_bin};

fn scrape(port: u16) -> anyhow::Result<String> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    s.write_all(b"GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")?;
    let mut text = String::new();
    s.read_to_string(&mut text)?;
    Ok(text)
}

/// The value of the first sample whose line starts with `prefix`.
fn value(text: &str, prefix: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

/// Inodes of the TCP sockets in LISTEN state on this machine.
fn listening_inodes() -> Vec<String> {
    ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .flat_map(|t| {
            t.lines()
                .skip(1)
                .filter_map(|l| {
                    let f: Vec<&str> = l.split_whitespace().collect();
                    (f.get(3) == Some(&"0A")).then(|| f.get(9).map(|s| s.to_string()))?
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

/// TCP ports process `pid` listens on (by socket inode).
fn listens(pid: u32) -> usize {
    let listening = listening_inodes();
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .into_iter()
        .flatten()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter_map(|l| {
            l.to_string_lossy()
                .strip_prefix("socket:[")
                .and_then(|s| s.strip_suffix(']'))
                .map(str::to_string)
        })
        .filter(|inode| listening.contains(inode))
        .count()
}

#[test]
fn metrics_are_served_on_loopback_when_asked_and_no_port_is_opened_otherwise() -> anyhow::Result<()>
{
    let port = free_port()?;
    let scene = Scene::start(
        vigil_bin!(),
        "metrics",
        "plaza_25s.mp4",
        &format!("\n[metrics]\nlisten = \"127.0.0.1:{port}\"\n"),
    )?;
    scene.wait("an intrusion", |m| !incidents(m).is_empty())?;
    // Let the mirror copy the counters (every second) and the PUBACKs arrive.
    std::thread::sleep(Duration::from_secs(3));
    let text = scrape(port)?;
    assert!(
        text.starts_with("HTTP/1.") && text.contains(" 200 "),
        "{text}"
    );
    let plaza = |name: &str| value(&text, &format!("{name}{{camera=\"plaza\"}}"));
    assert!(plaza("vigil_frames_received_total") > Some(0.0), "{text}");
    assert!(plaza("vigil_frames_analysed_total") > Some(0.0), "{text}");
    assert_eq!(plaza("vigil_camera_streaming"), Some(1.0), "{text}");
    assert!(
        value(
            &text,
            "vigil_incidents_total{camera=\"plaza\",type=\"intrusion\"}"
        ) >= Some(1.0),
        "{text}"
    );
    assert!(
        value(&text, "vigil_outbox_acked_total{lane=\"security\"}") >= Some(1.0),
        "{text}"
    );
    assert!(
        text.contains("vigil_inference_seconds_bucket{camera=\"plaza\",le=\"0.1\"}"),
        "{text}"
    );
    assert!(
        value(&text, "vigil_inference_seconds_count{camera=\"plaza\"}") > Some(0.0),
        "{text}"
    );
    // The engine's share: counted once per analysed frame like the whole, and never more.
    let (engine, whole) = (
        value(
            &text,
            "vigil_engine_inference_seconds_sum{camera=\"plaza\"}",
        ),
        value(&text, "vigil_inference_seconds_sum{camera=\"plaza\"}"),
    );
    assert!(
        engine > Some(0.0) && engine <= whole,
        "engine {engine:?} vs detector {whole:?}: {text}"
    );
    assert!(
        text.contains("vigil_engine_inference_seconds_bucket{camera=\"plaza\",le=\"0.1\"}"),
        "{text}"
    );
    assert!(
        value(
            &text,
            "vigil_incident_latency_seconds_count{camera=\"plaza\"}"
        ) >= Some(1.0),
        "{text}"
    );
    assert!(
        value(&text, "vigil_delivery_seconds_count{lane=\"security\"}") >= Some(1.0),
        "{text}"
    );
    assert_eq!(value(&text, "vigil_broker_connected"), Some(1.0), "{text}");
    assert!(text.contains("# HELP vigil_incidents_total"), "{text}");
    // Exactly one listening port: the one asked for.
    assert_eq!(listens(scene.agent.0.id()), 1);

    // Without [metrics]: no TCP port at all.
    let plain = Scene::start(vigil_bin!(), "nometrics", "plaza_25s.mp4", "")?;
    plain.wait("an intrusion", |m| !incidents(m).is_empty())?;
    assert_eq!(
        listens(plain.agent.0.id()),
        0,
        "the agent listens on a TCP port"
    );
    Ok(())
}
