//! The diagnostics socket and the CLI on top of it, against a running agent (real RTSP server,
//! real broker): `vigil status`, `vigil tail`, `vigil outbox`, snapshots, and requests that
//! are malformed or oversized.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;
use vigil_tests::scene::{Scene, incidents};
use vigil_tests::{Proc, ask, run_cli, vigil_bin};

fn wait_until(what: &str, timeout: Duration, mut ok: impl FnMut() -> bool) -> anyhow::Result<()> {
    let end = Instant::now() + timeout;
    while Instant::now() < end {
        if ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    anyhow::bail!("timed out waiting for {what}")
}

#[test]
fn status_tail_outbox_and_snapshot_through_the_socket() -> anyhow::Result<()> {
    let mut scene = Scene::start(vigil_bin!(), "diag", "plaza_25s.mp4", "")?;
    let sock = scene.socket.clone();
    let socket_arg = sock.to_string_lossy().to_string();
    wait_until("the socket", Duration::from_secs(60), || sock.exists())
        .map_err(|e| anyhow::anyhow!("{e}\n{}", scene.log()))?;
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&sock)?.permissions().mode() & 0o777,
        0o660,
        "socket mode"
    );

    // Follow incidents from the start, as a technician would.
    let mut tail = Proc(
        Command::new(vigil_bin!())
            .args([
                "tail",
                "--json",
                "--camera",
                "plaza",
                "--socket",
                &socket_arg,
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?,
    );
    let (lines_tx, lines) = mpsc::channel::<String>();
    let out = tail
        .0
        .stdout
        .take()
        .ok_or_else(|| anyhow::anyhow!("no stdout"))?;
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if lines_tx.send(line).is_err() {
                return;
            }
        }
    });

    // Status: broker connected and the camera streaming, within the first seconds.
    let mut last = Value::Null;
    wait_until(
        "status: connected and streaming",
        Duration::from_secs(60),
        || {
            let (code, out, _) =
                run_cli(vigil_bin!(), &["status", "--json", "--socket", &socket_arg])
                    .unwrap_or_default();
            last = serde_json::from_str(&out).unwrap_or_default();
            code == 0
                && last["broker"]["connected"] == true
                && last["cameras"][0]["state"] == "streaming"
                && last["cameras"][0]["rates"].is_object()
        },
    )
    .map_err(|e| anyhow::anyhow!("{e}; last status {last}\n{}", scene.log()))?;
    assert_eq!(last["device"], "test-box-001");
    assert_eq!(last["cameras"][0]["camera"], "plaza");
    assert!(last["cameras"][0]["analysed"].as_u64() > Some(0), "{last}");
    assert!(last["outbox"]["lanes"]["fire"]["depth"].is_u64(), "{last}");
    let (code, screen, err) = run_cli(vigil_bin!(), &["status", "--socket", &socket_arg])?;
    assert_eq!(code, 0, "{err}");
    assert!(
        screen.contains("device test-box-001") && screen.contains("connected"),
        "{screen}"
    );
    eprintln!("vigil status:\n{screen}");
    let plaza = screen
        .lines()
        .find(|l| l.starts_with("plaza"))
        .unwrap_or_default();
    assert!(
        plaza.contains("streaming") && plaza.contains(" ms"),
        "{screen}"
    );

    // Tail shows the incidents the broker receives, with the same ids.
    let got = scene.wait("an intrusion", |m| !incidents(m).is_empty())?;
    let first = incidents(&got)[0]["id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let mut seen = Vec::new();
    let end = Instant::now() + Duration::from_secs(30);
    while Instant::now() < end && !seen.iter().any(|v: &Value| v["id"] == first.as_str()) {
        if let Ok(l) = lines.recv_timeout(Duration::from_millis(500)) {
            seen.push(serde_json::from_str(&l)?);
        }
    }
    assert!(
        seen.iter().any(|v| v["id"] == first.as_str()),
        "tail did not show incident {first}: {seen:?}"
    );
    assert!(seen.iter().all(|v| v["camera"] == "plaza"));

    // Snapshot: the next analysed frame, zones drawn, as JPEG.
    let snap = ask(&sock, r#"{"request":"snapshot","camera":"plaza"}"#)?;
    assert_eq!(snap["ok"], true, "{snap}");
    use base64::Engine;
    let jpeg = base64::engine::general_purpose::STANDARD
        .decode(snap["snapshot"]["jpeg_base64"].as_str().unwrap_or_default())?;
    let img = image::load_from_memory(&jpeg)?.to_rgb8();
    assert_eq!(
        u64::from(img.width()),
        snap["snapshot"]["width"].as_u64().unwrap_or(0)
    );
    // The walkway zone's outline is drawn in amber somewhere on the picture.
    let amber = img
        .pixels()
        .filter(|p| p[0] > 200 && p[1] > 150 && p[1] < 230 && p[2] < 60)
        .count();
    assert!(
        amber > 100,
        "no zone outline on the snapshot ({amber} amber pixels)"
    );
    let e = ask(&sock, r#"{"request":"snapshot","camera":"nope"}"#)?;
    assert!(
        e["error"]
            .as_str()
            .is_some_and(|m| m.contains("cameras: plaza")),
        "{e}"
    );

    // Outbox: over the socket and from the file.
    let o = ask(&sock, r#"{"request":"outbox","rows":5}"#)?;
    assert!(
        o["outbox"]["rows"].is_array() && o["outbox"]["lanes"]["security"].is_object(),
        "{o}"
    );
    let cfg = scene.cfg.to_string_lossy().to_string();
    let (code, out, err) = run_cli(vigil_bin!(), &["outbox", "--config", &cfg, "--json"])?;
    assert_eq!(code, 0, "{err}");
    let stats: Value = serde_json::from_str(&out)?;
    assert_eq!(stats["lanes"].as_array().map(Vec::len), Some(4), "{stats}");
    assert!(stats["last_seq"].as_u64() >= Some(1), "{stats}");

    // Bad requests get an error reply, and the connection (and the agent) carry on.
    let mut s = UnixStream::connect(&sock)?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    s.write_all(b"status\n{\"request\":\"reboot\"}\n{\"request\":\"cameras\"}\n")?;
    let mut r = BufReader::new(s.try_clone()?);
    let mut replies = Vec::new();
    for _ in 0..3 {
        let mut l = String::new();
        r.read_line(&mut l)?;
        replies.push(serde_json::from_str::<Value>(&l)?);
    }
    assert!(
        replies[0]["error"]
            .as_str()
            .is_some_and(|m| m.contains("not JSON")),
        "{replies:?}"
    );
    assert!(
        replies[1]["error"]
            .as_str()
            .is_some_and(|m| m.contains("unknown request"))
    );
    assert_eq!(replies[2]["cameras"][0]["camera"], "plaza", "{replies:?}");
    // An oversized request: an error, then the agent hangs up.
    let mut s = UnixStream::connect(&sock)?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    s.write_all(&vec![b'x'; 64 * 1024])?;
    let mut reply = String::new();
    BufReader::new(s.try_clone()?).read_line(&mut reply)?;
    assert!(reply.contains("over the 4096-byte limit"), "{reply}");
    let mut rest = Vec::new();
    let _ = s.read_to_end(&mut rest);
    assert!(scene.agent.running());
    assert_eq!(ask(&sock, r#"{"request":"status"}"#)?["ok"], true);

    // Clients that ask and never read: replies pile up until the agent hangs up on them
    // (vigil::diag::WRITE_TIMEOUT), which frees their slots. `tail` holds one slot.
    let mut flooders = Vec::new();
    for _ in 1..vigil::diag::MAX_CLIENTS {
        let mut s = UnixStream::connect(&sock)?;
        s.set_write_timeout(Some(Duration::from_secs(10)))?;
        s.write_all("{\"request\":\"status\"}\n".repeat(3000).as_bytes())?;
        flooders.push(s);
    }
    let busy = ask(&sock, r#"{"request":"status"}"#)?;
    assert!(
        busy["error"]
            .as_str()
            .is_some_and(|e| e.starts_with("busy")),
        "every slot taken: {busy}"
    );
    let mut last = Value::Null;
    wait_until(
        "a slot freed from a client that does not read",
        vigil::diag::WRITE_TIMEOUT * 3,
        || {
            last = ask(&sock, r#"{"request":"status"}"#).unwrap_or_default();
            last["ok"] == true
        },
    )
    .map_err(|e| anyhow::anyhow!("{e}; last reply {last}"))?;
    drop(flooders);

    // A clean stop ends the stream and removes the socket.
    scene.agent.terminate(Duration::from_secs(30))?;
    let status = tail.0.wait()?;
    assert!(status.success(), "tail exit {status:?}");
    assert!(!sock.exists(), "socket left behind");
    let (code, _, err) = run_cli(vigil_bin!(), &["status", "--socket", &socket_arg])?;
    assert_eq!(code, 1);
    assert!(err.contains("is vigil running"), "{err}");
    Ok(())
}

#[test]
fn no_secret_reaches_the_logs_of_a_full_run() -> anyhow::Result<()> {
    use std::sync::Arc;
    use vigil_demo::rtsp::{Clip, RtspServer};
    use vigil_tests::{Mosquitto, Recorder, TempDir, fixture};
    let broker = Mosquitto::start()?;
    let server = RtspServer::start(&[("plaza", Arc::new(Clip::load(&fixture("plaza_25s.mp4"))?))])?;
    let dir = TempDir::new("secrets")?;
    // Credentials in the camera URL (the test server ignores them) and a broker password
    // (mosquitto here accepts anyone, so the password travels but is not checked).
    let camera = server
        .url("plaza")
        .replacen("rtsp://", "rtsp://admin:cam-Secret-77@", 1);
    let dead = format!(
        "rtsp://root:dead-Secret-88@127.0.0.1:{}/x",
        vigil_tests::free_port()?
    );
    let pw = dir.join("mqtt.pw");
    std::fs::write(&pw, "mqtt-Secret-99\n")?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&pw, std::fs::Permissions::from_mode(0o600))?;
    let text = vigil_tests::scene::config(
        broker.port,
        &camera,
        &format!("\n[[cameras]]\nid = \"dead\"\nurl = \"{dead}\"\nmodel = \"coco\"\n"),
    )
    .replacen(
        "keep_alive_s = 5",
        &format!(
            "keep_alive_s = 5\nusername = \"box\"\npassword_file = \"{}\"",
            pw.display()
        ),
        1,
    );
    let cfg = dir.join("vigil.toml");
    std::fs::write(&cfg, text)?;
    let recorder = Recorder::start(broker.port, "vigil/v1/#")?;
    let mut logs = Vec::new();
    for format in ["text", "json", "journal"] {
        let log = dir.join(&format!("agent-{format}.log"));
        let mut agent = Proc(
            Command::new(vigil_bin!())
                .args(["--log-format", format, "run", "--config"])
                .arg(&cfg)
                // Everything vigil logs, at every level; GStreamer's own debug log too.
                .env("RUST_LOG", "trace")
                .env("GST_DEBUG", "2")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(&log)?)
                .spawn()?,
        );
        recorder.wait_for(Duration::from_secs(90), "an incident", |m| {
            incidents(m).iter().any(|e| e["camera"] == "plaza")
        })?;
        // Let the dead camera fail a few times, then stop cleanly.
        std::thread::sleep(Duration::from_secs(4));
        agent.terminate(Duration::from_secs(30))?;
        logs.push((format, std::fs::read_to_string(&log)?));
    }
    for (format, text) in &logs {
        // GStreamer's own debug lines (asked for with GST_DEBUG) start with its clock.
        let gst = |l: &str| {
            let t = l.trim_start();
            t.split(':')
                .next()
                .is_some_and(|h| !h.is_empty() && h.bytes().all(|b| b.is_ascii_digit()))
                && t.contains(" 0x")
        };
        let lines: Vec<&str> = text
            .lines()
            .filter(|l| !l.trim().is_empty() && !gst(l))
            .collect();
        match *format {
            "json" => {
                assert!(
                    lines
                        .iter()
                        .all(|l| serde_json::from_str::<Value>(l)
                            .is_ok_and(|v| v["level"].is_string())),
                    "json: a line is not a JSON log record"
                )
            }
            // journald: a priority prefix, no timestamp of our own.
            "journal" => assert!(
                lines.iter().all(|l| l.starts_with('<')
                    && l.as_bytes().get(2) == Some(&b'>')
                    && !l[3..].trim_start().starts_with("20")),
                "journal: {:?}",
                &lines[..lines.len().min(5)]
            ),
            _ => {}
        }
        assert!(
            text.lines().count() > 20,
            "{format}: the log is too short to prove anything"
        );
        assert!(
            text.contains("dead") && text.contains("plaza"),
            "{format}: the log does not talk about the cameras"
        );
        for secret in ["cam-Secret-77", "dead-Secret-88", "mqtt-Secret-99"] {
            let leaks: Vec<&str> = text.lines().filter(|l| l.contains(secret)).collect();
            assert!(leaks.is_empty(), "{format} log leaks {secret}: {leaks:#?}");
        }
    }
    Ok(())
}

#[test]
fn reload_applies_camera_changes_live_and_refuses_the_rest() -> anyhow::Result<()> {
    let scene = Scene::start(vigil_bin!(), "reload", "plaza_25s.mp4", "")?;
    let socket = scene.socket.to_string_lossy().to_string();
    let reload = || run_cli(vigil_bin!(), &["reload", "--socket", &socket]);
    let got = scene.wait("an intrusion open", |m| {
        incidents(m).iter().any(|e| e["state"] == "open")
    })?;
    let opened: Vec<String> = incidents(&got)
        .iter()
        .filter(|e| e["state"] == "open")
        .filter_map(|e| e["id"].as_str().map(String::from))
        .collect();
    let original = std::fs::read_to_string(&scene.cfg)?;

    // An invalid file: refused with the problem located, the agent unchanged.
    std::fs::write(&scene.cfg, original.replace("quiet_s = 3", "quiet_s = -3"))?;
    let (code, _, err) = reload()?;
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("invalid; nothing was applied") && err.contains("quiet_s"),
        "{err}"
    );
    // A change that needs a restart: refused, named.
    std::fs::write(
        &scene.cfg,
        original.replace("keep_alive_s = 5", "keep_alive_s = 9"),
    )?;
    let (code, _, err) = reload()?;
    assert_eq!(code, 1);
    assert!(
        err.contains("need a restart") && err.contains("mqtt"),
        "{err}"
    );
    // The same refusal for scripts: one JSON object on stdout.
    let (code, out, _) = run_cli(vigil_bin!(), &["reload", "--json", "--socket", &socket])?;
    assert_eq!(code, 1);
    let v: serde_json::Value = serde_json::from_str(out.trim())?;
    assert_eq!(v["ok"], false, "{out}");
    assert!(
        v["error"]
            .as_str()
            .is_some_and(|e| e.contains("need a restart")),
        "{out}"
    );

    // A zone moved: the rules are replaced, the open incidents closed, the stream untouched.
    let moved = original.replace(
        "polygon = [[0.0, 0.30], [1.0, 0.20], [1.0, 0.75], [0.0, 0.50]]",
        "polygon = [[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]]",
    );
    assert_ne!(moved, original);
    std::fs::write(&scene.cfg, &moved)?;
    let (code, out, err) = reload()?;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("camera plaza: rules replaced"), "{out}");
    assert!(!out.contains("pipeline rebuilt"), "{out}");
    let got = scene.wait("the open incidents closed", |m| {
        opened.iter().all(|id| {
            incidents(m)
                .iter()
                .any(|e| e["id"] == id.as_str() && e["state"] == "close")
        })
    })?;
    // Detection goes on under the new zone.
    let before = incidents(&got).len();
    scene.wait("a new incident under the new zone", |m| {
        incidents(m).len() > before && incidents(m).last().is_some_and(|e| e["state"] == "open")
    })?;
    // The published state follows the frame flow on the camera monitor's one-second tick: a
    // stream whose first frames came under a second ago may still show `connecting`.
    let mut status = Value::Null;
    let streaming = wait_until(
        "the camera published streaming",
        Duration::from_secs(5),
        || {
            status = ask(&scene.socket, r#"{"request":"cameras"}"#).unwrap_or_default();
            status["cameras"][0]["state"] == "streaming"
        },
    );
    assert!(streaming.is_ok(), "{status}");
    assert_eq!(status["cameras"][0]["reconnects"], 0, "{status}");

    // The analysis rate changed: the pipeline is rebuilt (and only that).
    std::fs::write(
        &scene.cfg,
        moved.replace("analysis_fps = 5", "analysis_fps = 4"),
    )?;
    let (code, out, err) = reload()?;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("camera plaza: pipeline rebuilt"), "{out}");
    wait_until("streaming again", Duration::from_secs(30), || {
        ask(&scene.socket, r#"{"request":"cameras"}"#)
            .is_ok_and(|v| v["cameras"][0]["analysis_fps"] == 4.0)
    })?;
    let (code, out, _) = run_cli(vigil_bin!(), &["reload", "--json", "--socket", &socket])?;
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(out.trim())?;
    assert_eq!(v["ok"], true, "{out}");
    assert!(
        v["reloaded"]
            .as_str()
            .is_some_and(|r| r.contains("unchanged")),
        "{out}"
    );
    scene.check_contract()?;
    Ok(())
}
