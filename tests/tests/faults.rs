//! Fault injection on real processes, loopback only: the broker killed during an outage, the
//! agent killed at random moments. Every incident event the agent numbered (its `seq`, given in
//! the same SQLite transaction that stores it) must reach a subscriber: none lost, order kept
//! within the lane, duplicates only as exact repeats of the same event.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use vigil_tests::scene::{Scene, incidents};
use vigil_tests::{Received, vigil_bin};

/// The outbox after the agent stopped: (last seq given out, rows left undelivered).
fn outbox_state(state: &Path) -> anyhow::Result<(u64, u64)> {
    let db = rusqlite::Connection::open(state.join("outbox.db"))?;
    let seq: i64 = db.query_row("SELECT value FROM meta WHERE key = 'seq'", [], |r| r.get(0))?;
    let left: i64 = db.query_row("SELECT count(*) FROM outbox", [], |r| r.get(0))?;
    Ok((seq as u64, left as u64))
}

/// What a subscriber received of the incident events numbered 1..=produced.
#[derive(Debug)]
struct Delivery {
    produced: u64,
    distinct: usize,
    duplicates: usize,
}

/// Check that every seq in 1..=`produced` arrived, that repeats are the same event, and that
/// first arrivals come in seq order (all of these events are in one lane: the plaza footage
/// raises no camera fault, which is checked too).
fn check_delivery(received: &[Received], produced: u64) -> Delivery {
    let events = incidents(received);
    let mut first: BTreeMap<u64, (String, String)> = BTreeMap::new();
    let mut order = Vec::new();
    let mut duplicates = 0;
    for e in &events {
        if e["type"].as_str().is_some_and(|t| t.starts_with("camera_")) {
            // Another lane (camera health); none is expected in these scenes.
            panic!("unexpected camera fault incident on the plaza footage: {e}");
        }
        let seq = e["seq"].as_u64().unwrap_or(0);
        let key = (e["id"].to_string(), e["state"].to_string());
        match first.get(&seq) {
            Some(k) => {
                assert_eq!(k, &key, "seq {seq} arrived twice as two different events");
                duplicates += 1;
            }
            None => {
                first.insert(seq, key);
                order.push(seq);
            }
        }
    }
    let missing: Vec<u64> = (1..=produced).filter(|s| !first.contains_key(s)).collect();
    assert!(
        missing.is_empty(),
        "lost {} of {produced} incident events: seq {missing:?}",
        missing.len()
    );
    assert!(
        order.windows(2).all(|w| w[0] < w[1]),
        "first arrivals out of order: {order:?}"
    );
    Delivery {
        produced,
        distinct: first.len(),
        duplicates,
    }
}

/// After a clean stop: read what the agent numbered, wait for all of it, check it.
fn all_delivered(scene: &Scene) -> anyhow::Result<Delivery> {
    let (produced, left) = outbox_state(&scene.state)?;
    assert_eq!(
        left, 0,
        "rows left in the outbox after a clean stop with the broker up"
    );
    assert!(produced > 0, "no incident event was produced");
    let got = scene.wait_for(Duration::from_secs(30), "every numbered event", |m| {
        let seqs: std::collections::HashSet<u64> = incidents(m)
            .iter()
            .filter_map(|e| e["seq"].as_u64())
            .collect();
        (1..=produced).all(|s| seqs.contains(&s))
    });
    let got = got.unwrap_or_else(|_| scene.recorder.snapshot());
    Ok(check_delivery(&got, produced))
}

fn count(log: &str, needle: &str) -> usize {
    log.matches(needle).count()
}

#[test]
fn a_broker_outage_of_a_minute_loses_no_incident() -> anyhow::Result<()> {
    let mut scene = Scene::start_with(vigil_bin!(), "outage", "plaza_25s.mp4", "", true)?;
    scene.wait("two incident events", |m| incidents(m).len() >= 2)?;
    let proxy = scene.proxy.as_ref().map(|p| p.port);
    assert!(proxy.is_some());
    // The broker dies; the network to it stays cut until the subscriber is back, so that
    // nothing the agent sends after the restart can reach the broker before the subscriber.
    if let Some(p) = &scene.proxy {
        p.cut();
    }
    scene.broker.kill();
    let opened_before = count(&scene.log(), "intrusion open");
    std::thread::sleep(Duration::from_secs(60));
    let during = count(&scene.log(), "intrusion open") - opened_before;
    assert!(
        during > 0,
        "no incident opened during the outage:\n{}",
        scene.log()
    );
    scene.broker.restart()?;
    scene.recorder.wait_subscribed(2, Duration::from_secs(20))?;
    let back = Instant::now();
    if let Some(p) = &scene.proxy {
        p.restore();
    }
    let n = incidents(&scene.recorder.snapshot()).len();
    scene.wait("the events kept during the outage", |m| {
        incidents(m).len() >= n + during
    })?;
    let delivered_after = back.elapsed();
    scene.agent.terminate(Duration::from_secs(30))?;
    let d = all_delivered(&scene)?;
    eprintln!(
        "broker outage 60 s: {} incident events produced ({during} opened during the outage), {} received, {} duplicates; backlog delivered {:.1} s after the broker returned",
        d.produced,
        d.distinct,
        d.duplicates,
        delivered_after.as_secs_f64()
    );
    scene.check_contract()?;
    Ok(())
}

#[test]
fn the_agent_killed_ten_times_while_publishing_loses_no_incident() -> anyhow::Result<()> {
    let mut scene = Scene::start(vigil_bin!(), "kill9", "plaza_25s.mp4", "")?;
    let mut seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos() as u64)
        .unwrap_or(1)
        | 1;
    let mut delays = Vec::new();
    for round in 0..10 {
        let n = incidents(&scene.recorder.snapshot()).len();
        scene.wait(&format!("an incident event in round {round}"), |m| {
            incidents(m).len() > n
        })?;
        // xorshift: a random moment within the next 1.5 s, while events are being published.
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let delay = Duration::from_millis(seed % 1500);
        delays.push(delay.as_millis());
        std::thread::sleep(delay);
        scene.restart_after_kill()?;
    }
    let n = incidents(&scene.recorder.snapshot()).len();
    scene.wait("an incident event after the last restart", |m| {
        incidents(m).len() > n
    })?;
    scene.agent.terminate(Duration::from_secs(30))?;
    let d = all_delivered(&scene)?;
    let log = scene.log();
    assert_eq!(count(&log, "outbox opened"), 11, "{log}");
    assert_eq!(count(&log, "moved aside"), 0, "{log}");
    eprintln!(
        "10 × SIGKILL (after {delays:?} ms): {} incident events produced, {} received, {} duplicates",
        d.produced, d.distinct, d.duplicates
    );
    scene.check_contract()?;
    Ok(())
}

/// Make a 10 s H.264 clip of a still GStreamer test pattern (`smpte75`, `black`; not `smpte`,
/// whose corner carries moving noise), encoded at a
/// constant quantiser so that every frame decodes to the same picture.
fn still_clip(dir: &Path, pattern: &str) -> anyhow::Result<std::path::PathBuf> {
    let out = dir.join(format!("{pattern}.mp4"));
    let status = std::process::Command::new("gst-launch-1.0")
        .args([
            "-q",
            "videotestsrc",
            &format!("pattern={pattern}"),
            "num-buffers=100",
            "!",
        ])
        .args([
            "video/x-raw,width=320,height=240,framerate=10/1",
            "!",
            "videoconvert",
            "!",
        ])
        .args([
            "x264enc",
            "pass=quant",
            "quantizer=20",
            "key-int-max=10",
            "!",
            "h264parse",
        ])
        .args(["!", "mp4mux", "!", "filesink"])
        .arg(format!("location={}", out.display()))
        .status()?;
    anyhow::ensure!(
        status.success(),
        "gst-launch-1.0 could not make {pattern}.mp4"
    );
    Ok(out)
}

/// Start a scene on a generated still clip and wait for a camera fault incident of `kind`
/// and the camera status `state`; returns the seconds from the first `streaming` status.
fn fault_scene(tag: &str, pattern: &str, kind: &str, state: &str) -> anyhow::Result<f64> {
    let dir = vigil_tests::TempDir::new(&format!("{tag}-clip"))?;
    let clip = still_clip(&dir.0, pattern)?;
    let scene = Scene::start_full(
        vigil_bin!(),
        tag,
        &clip,
        // These scenes are about frozen and covered pictures: a camera slow to deliver its
        // first frame on a loaded machine (CI: 7 scenes on 2 cores) is not what they test, so
        // `offline_s` keeps its default of 30 s.
        "frozen_s = 3\ntamper_s = 2",
        "",
        false,
    )?;
    let camera_topic = "vigil/v1/t1/test-box-001/cameras/plaza/status";
    let got = scene.wait("the camera streaming", |m| {
        m.iter()
            .any(|x| x.topic == camera_topic && x.json()["state"] == "streaming")
    })?;
    let streaming_at = got
        .iter()
        .find(|x| x.topic == camera_topic && x.json()["state"] == "streaming")
        .map(|x| x.at)
        .unwrap_or_else(Instant::now);
    let got = scene.wait_for(
        Duration::from_secs(30),
        &format!("a {kind} incident"),
        |m| {
            incidents(m)
                .iter()
                .any(|e| e["type"] == kind && e["state"] == "open")
        },
    )?;
    let inc = incidents(&got);
    let open = inc
        .iter()
        .find(|e| e["type"] == kind)
        .cloned()
        .unwrap_or_default();
    let at = got
        .iter()
        .find(|x| x.topic.contains("/incidents/") && x.json()["type"] == kind)
        .map(|x| x.at)
        .unwrap_or_else(Instant::now);
    assert_eq!(open["severity"], "major", "{open}");
    assert!(
        open["reason"].as_str().is_some_and(|r| !r.is_empty()),
        "{open}"
    );
    scene.wait(&format!("camera status {state}"), |m| {
        m.iter()
            .any(|x| x.topic == camera_topic && x.json()["state"] == state)
    })?;
    // No detection incident from a test pattern, and no other fault.
    assert!(
        inc.iter().all(|e| e["type"] == kind),
        "unexpected incidents: {inc:?}"
    );
    scene.check_contract()?;
    Ok(at.saturating_duration_since(streaming_at).as_secs_f64())
}

#[test]
fn a_camera_repeating_one_picture_is_reported_frozen() -> anyhow::Result<()> {
    let after = fault_scene("frozen", "smpte75", "camera_frozen", "frozen")?;
    eprintln!("frozen (frozen_s = 3): camera_frozen opened {after:.1} s after streaming began");
    Ok(())
}

#[test]
fn a_black_camera_is_reported_covered() -> anyhow::Result<()> {
    let after = fault_scene("covered", "black", "camera_tamper", "tampered")?;
    eprintln!("covered (tamper_s = 2): camera_tamper opened {after:.1} s after streaming began");
    Ok(())
}

/// Open file descriptors, threads and resident memory (KiB) of process `pid`.
fn footprint(pid: u32) -> (usize, usize, u64) {
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0);
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| -> u64 {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (fds, field("Threads:") as usize, field("VmRSS:"))
}

#[test]
fn a_camera_server_killed_twenty_times_comes_back_each_time() -> anyhow::Result<()> {
    use vigil_tests::{Mosquitto, Proc, Recorder, TempDir, fixture, free_port, wait_for_port};
    vigil_tests::init_logs();
    let broker = Mosquitto::start()?;
    let rtsp_port = free_port()?;
    let clip = fixture("plaza_25s.mp4");
    let serve = || -> anyhow::Result<Proc> {
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_rtsp-serve"))
            .arg(&clip)
            .arg(rtsp_port.to_string())
            .arg("plaza")
            .stdin(std::process::Stdio::null())
            .spawn()?;
        anyhow::ensure!(
            wait_for_port(rtsp_port, Duration::from_secs(10)),
            "rtsp-serve did not listen on {rtsp_port}"
        );
        Ok(Proc(child))
    };
    let mut server = serve()?;
    let dir = TempDir::new("camkill")?;
    let cfg = dir.join("vigil.toml");
    std::fs::write(
        &cfg,
        vigil_tests::scene::config_with(
            broker.port,
            &format!("rtsp://127.0.0.1:{rtsp_port}/plaza"),
            "offline_s = 2\nstall_s = 3",
            "",
        ),
    )?;
    let recorder = Recorder::start(broker.port, "vigil/v1/#")?;
    let log = dir.join("agent.log");
    let agent = vigil_tests::spawn_agent(vigil_bin!(), &cfg, &log)?;
    let pid = agent.0.id();
    let camera_topic = "vigil/v1/t1/test-box-001/cameras/plaza/status";
    let streaming = |m: &[Received]| {
        m.iter()
            .filter(|x| x.topic == camera_topic && x.json()["state"] == "streaming")
            .count()
    };
    let faults = |m: &[Received], state: &str| {
        incidents(m)
            .iter()
            .filter(|e| e["type"] == "camera_offline" && e["state"] == state)
            .count()
    };
    let wait = |what: &str, pred: &dyn Fn(&[Received]) -> bool| {
        recorder
            .wait_for(Duration::from_secs(60), what, pred)
            .map_err(|_| {
                let states: Vec<String> = recorder
                    .snapshot()
                    .iter()
                    .filter(|x| x.topic == camera_topic)
                    .map(|x| x.json().to_string())
                    .collect();
                let log = std::fs::read_to_string(&log).unwrap_or_default();
                anyhow::anyhow!(
                    "timed out waiting for {what}; camera statuses: {states:#?}\nagent log:\n{log}"
                )
            })
    };
    wait("the camera streaming", &|m| streaming(m) >= 1)?;
    // Let the agent settle (model warm, first health) before taking its footprint.
    std::thread::sleep(Duration::from_secs(3));
    let before = footprint(pid);
    // Counts so far: a slow first connection (a loaded machine) may already have opened and
    // closed a camera_offline, and each round must see its own.
    let seen = recorder.snapshot();
    let (streamed, opened, closed) = (
        streaming(&seen),
        faults(&seen, "open"),
        faults(&seen, "close"),
    );
    let mut back_after = Vec::new();
    let mut halfway = before;
    let mut rounds = Vec::new();
    for round in 0..20 {
        server.kill();
        wait(&format!("camera_offline opened, round {round}"), &|m| {
            faults(m, "open") > opened + round
        })?;
        server = serve()?;
        let returned = Instant::now();
        wait(&format!("streaming again, round {round}"), &|m| {
            streaming(m) > streamed + round
        })?;
        back_after.push(returned.elapsed().as_secs_f64());
        wait(&format!("camera_offline closed, round {round}"), &|m| {
            faults(m, "close") > closed + round
        })?;
        let now = footprint(pid);
        eprintln!("round {round}: footprint {now:?}");
        rounds.push(now.2);
        if round == 9 {
            halfway = now;
        }
    }
    // Let the last reconnect settle as the first one did.
    std::thread::sleep(Duration::from_secs(3));
    let after = footprint(pid);
    let mut sorted = back_after.clone();
    sorted.sort_by(f64::total_cmp);
    let median = sorted[sorted.len() / 2];
    let max = sorted[sorted.len() - 1];
    eprintln!(
        "RTSP server killed 20 times: streaming again after median {median:.1} s, max {max:.1} s (each: {back_after:.1?}); fds {} -> {}, threads {} -> {}, RSS {} -> {} (after 10 rounds) -> {} KiB",
        before.0, after.0, before.1, after.1, before.2, halfway.2, after.2
    );
    assert!(after.0 <= before.0 + 2, "fds grew: {before:?} -> {after:?}");
    assert!(
        after.1 <= before.1 + 2,
        "threads grew: {before:?} -> {after:?}"
    );
    // The first reconnects warm the allocator up (new pipelines, new streaming threads);
    // what must not happen is growth that goes on: the second ten rounds may add < 2 %, or,
    // when one step of the allocator's falls among them (seen once: +6.7 MB at round 10, then
    // flat to round 19), the last five rounds must not grow (< 0.5 %): a leak per reconnect
    // grows every round.
    let last_five = rounds[15..].iter().max().copied().unwrap_or(0);
    assert!(
        after.2 <= halfway.2 + halfway.2 / 50 || last_five <= rounds[14] + rounds[14] / 200,
        "RSS kept growing over the second ten reconnects: {halfway:?} -> {after:?} (start {before:?}; each round {rounds:?})"
    );
    let n = vigil_tests::contract::Contract::load()?.check_all(&recorder.snapshot())?;
    assert!(n > 0);
    drop(agent);
    drop(server);
    Ok(())
}

/// Damage every `every`-th delta access unit: flip a run of bytes in its second half (start
/// codes and headers stay intact, so the stream still parses and the damage lands in slice
/// data, as bit errors on a radio link would).
fn corrupt(clip: &mut vigil_demo::rtsp::Clip, every: usize) -> usize {
    let mut damaged = 0;
    for (i, (unit, key)) in clip.units.iter_mut().enumerate() {
        if *key || i % every != 0 || unit.len() < 64 {
            continue;
        }
        let from = unit.len() / 2;
        let to = (from + 24).min(unit.len());
        for b in &mut unit[from..to] {
            *b ^= 0x5A;
        }
        damaged += 1;
    }
    damaged
}

#[test]
fn corrupted_streams_are_decoded_around_their_damage() -> anyhow::Result<()> {
    use std::sync::Arc;
    use vigil_demo::rtsp::{Clip, RtspServer};
    use vigil_tests::{Mosquitto, Recorder, TempDir, fixture};
    vigil_tests::init_logs();
    let broker = Mosquitto::start()?;
    let mut plaza = Clip::load(&fixture("plaza_25s.mp4"))?;
    let damaged = corrupt(&mut plaza, 4);
    let megamind = Clip::load(&fixture("Megamind_bugy.avi"))?;
    let server =
        RtspServer::start(&[("plaza", Arc::new(plaza)), ("megamind", Arc::new(megamind))])?;
    let dir = TempDir::new("corrupt")?;
    let cfg = dir.join("vigil.toml");
    let extra = format!(
        "\n[[cameras]]\nid = \"megamind\"\nurl = \"{}\"\nmodel = \"coco\"\nanalysis_fps = 5\n",
        server.url("megamind")
    );
    std::fs::write(
        &cfg,
        vigil_tests::scene::config(broker.port, &server.url("plaza"), &extra),
    )?;
    let recorder = Recorder::start(broker.port, "vigil/v1/#")?;
    let log = dir.join("agent.log");
    let mut agent = vigil_tests::spawn_agent(vigil_bin!(), &cfg, &log)?;
    let health = |m: &[Received]| -> serde_json::Value {
        m.iter()
            .rev()
            .find(|x| x.topic.ends_with("/health"))
            .map(Received::json)
            .unwrap_or_default()
    };
    let got = recorder
        .wait_for(
            Duration::from_secs(90),
            "both damaged cameras analysed, intrusions on the damaged plaza",
            |m| {
                let h = health(m);
                h["cameras"][0]["analysed"].as_u64() > Some(50)
                    && h["cameras"][1]["analysed"].as_u64() > Some(20)
                    && incidents(m).len() >= 2
            },
        )
        .map_err(|e| {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            let last = health(&recorder.snapshot());
            anyhow::anyhow!("{e}\nlast health: {last}\nagent log:\n{text}")
        })?;
    assert!(agent.running(), "the agent died on corrupt input");
    let h = health(&got);
    // The damage is concealed by libav and reported only to its log; vigil counts it there,
    // at most once per damaged unit.
    let errors = h["cameras"][0]["decode_errors"].as_u64().unwrap_or(0);
    assert!(
        errors > 0,
        "no decode error counted on the damaged plaza: {h}"
    );
    assert!(
        errors <= damaged as u64,
        "more decode errors ({errors}) than damaged units ({damaged}): {h}"
    );
    eprintln!(
        "corrupted streams: plaza ({damaged} units damaged) decode_errors {} analysed {} reconnects {}; Megamind_bugy.avi decode_errors {} analysed {} reconnects {}",
        h["cameras"][0]["decode_errors"],
        h["cameras"][0]["analysed"],
        h["cameras"][0]["reconnects"],
        h["cameras"][1]["decode_errors"],
        h["cameras"][1]["analysed"],
        h["cameras"][1]["reconnects"]
    );
    // Detections only where there is a zone (the plaza); a camera fault on the trailer's
    // scene cuts would be legitimate and is not what this test is about.
    assert!(
        incidents(&got)
            .iter()
            .filter(|e| !e["type"].as_str().is_some_and(|t| t.starts_with("camera_")))
            .all(|e| e["camera"] == "plaza")
    );
    let n = vigil_tests::contract::Contract::load()?.check_all(&got)?;
    assert!(n > 0);
    Ok(())
}

#[test]
fn a_camera_that_hangs_without_hanging_up_is_rebuilt_by_the_stall_watchdog() -> anyhow::Result<()> {
    use std::sync::Arc;
    use vigil_demo::rtsp::{Clip, RtspServer};
    use vigil_tests::{Mosquitto, Proxy, Recorder, TempDir, fixture};
    vigil_tests::init_logs();
    let broker = Mosquitto::start()?;
    let server = RtspServer::start(&[("plaza", Arc::new(Clip::load(&fixture("plaza_25s.mp4"))?))])?;
    // The camera is reached through a relay that can stop passing bytes while keeping the
    // TCP connection open: rtspsrc sees no error, only silence.
    let relay = Proxy::start(server.port())?;
    let dir = TempDir::new("stall")?;
    let cfg = dir.join("vigil.toml");
    std::fs::write(
        &cfg,
        vigil_tests::scene::config_with(
            broker.port,
            &format!("rtsp://127.0.0.1:{}/plaza", relay.port),
            "stall_s = 2\noffline_s = 3",
            "",
        ),
    )?;
    let recorder = Recorder::start(broker.port, "vigil/v1/#")?;
    let log = dir.join("agent.log");
    let _agent = vigil_tests::spawn_agent(vigil_bin!(), &cfg, &log)?;
    let topic = "vigil/v1/t1/test-box-001/cameras/plaza/status";
    let streaming = |m: &[Received]| {
        m.iter()
            .filter(|x| x.topic == topic && x.json()["state"] == "streaming")
            .count()
    };
    let dump = || std::fs::read_to_string(&log).unwrap_or_default();
    recorder
        .wait_for(Duration::from_secs(60), "streaming", |m| streaming(m) >= 1)
        .map_err(|e| anyhow::anyhow!("{e}\n{}", dump()))?;
    relay.freeze();
    let frozen_at = Instant::now();
    recorder
        .wait_for(Duration::from_secs(60), "camera_offline opened", |m| {
            incidents(m)
                .iter()
                .any(|e| e["type"] == "camera_offline" && e["state"] == "open")
        })
        .map_err(|e| anyhow::anyhow!("{e}\n{}", dump()))?;
    // The watchdog (stall_s = 2), not rtspsrc's own 5 s timeouts, rebuilt the pipeline.
    let text = dump();
    assert!(count(&text, "stall watchdog") >= 1, "{text}");
    eprintln!(
        "stalled camera: camera_offline after {:.1} s, {} watchdog rebuild(s) logged",
        frozen_at.elapsed().as_secs_f64(),
        count(&text, "stall watchdog")
    );
    relay.thaw();
    recorder
        .wait_for(
            Duration::from_secs(60),
            "streaming again and camera_offline closed",
            |m| {
                streaming(m) >= 2
                    && incidents(m)
                        .iter()
                        .any(|e| e["type"] == "camera_offline" && e["state"] == "close")
            },
        )
        .map_err(|e| anyhow::anyhow!("{e}\n{}", dump()))?;
    Ok(())
}

/// Ids of the incidents opened, and of those closed, in `m`, with each close's reason.
fn opened_and_closed(
    m: &[Received],
) -> (
    std::collections::BTreeSet<String>,
    BTreeMap<String, Option<String>>,
) {
    let mut opened = std::collections::BTreeSet::new();
    let mut closed = BTreeMap::new();
    for e in incidents(m) {
        let id = e["id"].as_str().unwrap_or_default().to_string();
        match e["state"].as_str() {
            Some("open") => {
                opened.insert(id);
            }
            Some("close") => {
                closed.insert(id, e["reason"].as_str().map(String::from));
            }
            _ => {}
        }
    }
    (opened, closed)
}

#[test]
fn open_incidents_are_closed_after_a_kill_and_by_a_clean_stop() -> anyhow::Result<()> {
    let mut scene = Scene::start(vigil_bin!(), "closing", "plaza_25s.mp4", "")?;
    let got = scene.wait("an intrusion open", |m| {
        incidents(m).iter().any(|e| e["state"] == "open")
    })?;
    scene.restart_after_kill()?;
    let (before, closed) = opened_and_closed(&got);
    let left_open: Vec<String> = before
        .iter()
        .filter(|id| !closed.contains_key(*id))
        .cloned()
        .collect();
    assert!(!left_open.is_empty(), "the kill came after every close");
    let got = scene.wait("a close for every incident the kill left open", |m| {
        let (_, closed) = opened_and_closed(m);
        left_open.iter().all(|id| closed.contains_key(id))
    })?;
    let (_, closed) = opened_and_closed(&got);
    for id in &left_open {
        let reason = closed.get(id).cloned().flatten().unwrap_or_default();
        assert!(
            reason.starts_with("closed at start"),
            "{id} closed without saying why: {reason:?}"
        );
    }
    // The restarted agent opens new incidents; a clean stop closes each one still open.
    let got = scene.wait("an incident opened after the restart", |m| {
        let (opened, _) = opened_and_closed(m);
        opened.iter().any(|id| !before.contains(id))
    })?;
    scene.agent.terminate(Duration::from_secs(20))?;
    let (opened, _) = opened_and_closed(&got);
    let after = scene.wait_for(Duration::from_secs(10), "a close for every incident", |m| {
        let (_, closed) = opened_and_closed(m);
        opened.iter().all(|id| closed.contains_key(id))
    })?;
    let (opened, closed) = opened_and_closed(&after);
    eprintln!(
        "closing: {} left open by the kill and closed at start, {} incidents in all, {} closed",
        left_open.len(),
        opened.len(),
        closed.len()
    );
    scene.check_contract()?;
    Ok(())
}
