//! The systemd side: the agent's sd_notify messages (READY, WATCHDOG, STATUS, STOPPING) on a
//! real datagram socket, and the unit file checked by systemd's own tools (verify, and the
//! offline security exposure score, which must stay at or below 1.5).

use std::os::unix::net::UnixDatagram;
use std::sync::Arc;
use std::time::{Duration, Instant};

use vigil_demo::rtsp::{Clip, RtspServer};
use vigil_tests::{Mosquitto, Proc, TempDir, fixture, repo, vigil_bin};

#[test]
fn the_agent_says_ready_pings_the_watchdog_and_says_stopping() -> anyhow::Result<()> {
    let broker = Mosquitto::start()?;
    let server = RtspServer::start(&[("plaza", Arc::new(Clip::load(&fixture("plaza_25s.mp4"))?))])?;
    let dir = TempDir::new("notify")?;
    let cfg = dir.join("vigil.toml");
    std::fs::write(
        &cfg,
        vigil_tests::scene::config(broker.port, &server.url("plaza"), ""),
    )?;
    let sock_path = dir.join("notify.sock");
    let systemd = UnixDatagram::bind(&sock_path)?;
    systemd.set_read_timeout(Some(Duration::from_secs(60)))?;
    let log = std::fs::File::create(dir.join("agent.log"))?;
    let mut agent = Proc(
        std::process::Command::new(vigil_bin!())
            .args(["run", "--config"])
            .arg(&cfg)
            .env("NOTIFY_SOCKET", &sock_path)
            .env("WATCHDOG_USEC", "4000000")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(log)
            .spawn()?,
    );
    let mut got: Vec<String> = Vec::new();
    let mut buf = [0u8; 4096];
    let end = Instant::now() + Duration::from_secs(60);
    let has = |got: &[String], needle: &str| got.iter().any(|m| m.lines().any(|l| l == needle));
    while Instant::now() < end && !(has(&got, "READY=1") && has(&got, "WATCHDOG=1")) {
        let n = systemd.recv(&mut buf)?;
        got.push(String::from_utf8_lossy(&buf[..n]).to_string());
    }
    assert!(has(&got, "READY=1"), "{got:#?}");
    assert!(has(&got, "WATCHDOG=1"), "{got:#?}");
    let ready = got
        .iter()
        .position(|m| m.contains("READY=1"))
        .unwrap_or(usize::MAX);
    let status = got
        .iter()
        .position(|m| m.contains("STATUS=running:") && m.contains("streaming"));
    assert!(
        got.iter().any(|m| m.starts_with("STATUS=loading")),
        "a status before READY: {got:#?}"
    );
    assert!(status.is_some_and(|s| s >= ready), "{got:#?}");
    agent.terminate(Duration::from_secs(30))?;
    let mut tail = Vec::new();
    systemd.set_read_timeout(Some(Duration::from_secs(2)))?;
    while let Ok(n) = systemd.recv(&mut buf) {
        tail.push(String::from_utf8_lossy(&buf[..n]).to_string());
    }
    assert!(has(&tail, "STOPPING=1"), "{tail:#?}");
    Ok(())
}

fn analyze(args: &[&str]) -> anyhow::Result<std::process::Output> {
    std::process::Command::new("systemd-analyze")
        .args(args)
        .output()
        .map_err(|e| anyhow::anyhow!("systemd-analyze is needed (apt-get install systemd): {e}"))
}

#[test]
fn the_unit_verifies_and_its_exposure_stays_at_or_below_one_and_a_half() -> anyhow::Result<()> {
    let unit = repo().join("systemd/vigil.service");
    let out = analyze(&["security", "--offline=true", &unit.to_string_lossy()])?;
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    let score: f64 = text
        .lines()
        .find_map(|l| l.split("Overall exposure level for vigil.service:").nth(1))
        .and_then(|r| r.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| anyhow::anyhow!("no exposure score in:\n{text}"))?;
    eprintln!("systemd-analyze security: exposure {score}");
    assert!(score <= 1.5, "exposure {score} > 1.5:\n{text}");

    // verify, with the unit's /usr/bin/vigil pointed at the binary under test and the man
    // page its Documentation= names generated into a temporary MANPATH.
    let dir = TempDir::new("unit")?;
    let text =
        std::fs::read_to_string(&unit)?.replace("/usr/bin/vigil", &vigil_bin!().to_string_lossy());
    let copy = dir.join("vigil.service");
    std::fs::write(&copy, text)?;
    let man = dir.join("man/man1");
    let (code, _, err) = vigil_tests::run_cli(vigil_bin!(), &["manpages", &man.to_string_lossy()])?;
    assert_eq!(code, 0, "{err}");
    let out = std::process::Command::new("systemd-analyze")
        .args(["verify", &copy.to_string_lossy()])
        .env("MANPATH", dir.join("man"))
        .output()?;
    assert!(
        out.status.success(),
        "systemd-analyze verify: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}
