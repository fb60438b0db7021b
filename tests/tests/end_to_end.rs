//! End to end on real components: the plaza fixture served by GStreamer's RTSP server, a real
//! mosquitto broker on a free loopback port, the real `vigil` binary with the shipped model,
//! and a real MQTT subscriber.

use std::time::Duration;

use vigil_demo::rtsp::Clip;
use vigil_tests::scene::{Scene, incidents, is_rfc3339_ms_utc};
use vigil_tests::{Recorder, fixture, free_port, vigil_bin};

#[test]
fn person_on_the_walkway_becomes_an_intrusion_incident_and_last_will_says_offline()
-> anyhow::Result<()> {
    let mut scene = Scene::start(vigil_bin!(), "e2e", "plaza_25s.mp4", "")?;
    let status_topic = "vigil/v1/t1/test-box-001/status";
    let got = scene.wait("two intrusion events and their snapshot", |m| {
        incidents(m).len() >= 2 && m.iter().any(|x| x.topic.ends_with("/snapshot"))
    })?;

    // The birth message is retained and says online.
    let status = got
        .iter()
        .find(|m| m.topic == status_topic)
        .expect("status message");
    let sv = status.json();
    assert_eq!(sv["state"], "online", "{sv}\n{}", scene.log());
    assert_eq!(sv["schema"], "vigil.status/1");
    assert_eq!(sv["cameras"][0], "plaza");

    let inc = incidents(&got);
    let open = &inc[0];
    for key in [
        "schema",
        "id",
        "seq",
        "device",
        "district",
        "camera",
        "type",
        "severity",
        "state",
        "zone",
        "frame_time",
        "objects",
        "model",
    ] {
        assert!(open.get(key).is_some(), "incident lacks {key}: {open}");
    }
    assert_eq!(open["schema"], "vigil.incident/1");
    assert_eq!(open["state"], "open");
    assert_eq!(open["type"], "intrusion");
    assert_eq!(open["severity"], "major");
    assert_eq!(open["device"], "test-box-001");
    assert_eq!(open["district"], "t1");
    assert_eq!(open["camera"], "plaza");
    assert_eq!(open["zone"], "walkway");
    let id = open["id"].as_str().expect("id is a string");
    let uuid = uuid::Uuid::parse_str(id).expect("id is a UUID");
    assert_eq!(uuid.get_version_num(), 7, "id is a UUIDv7");
    assert!(
        is_rfc3339_ms_utc(open["frame_time"].as_str().unwrap_or("")),
        "frame_time {}",
        open["frame_time"]
    );
    let objects = open["objects"].as_array().expect("objects array");
    assert!(!objects.is_empty());
    for o in objects {
        assert_eq!(o["label"], "person", "{o}");
        let score = o["score"].as_f64().expect("score");
        assert!((0.5..=1.0).contains(&score), "{o}");
        let b: Vec<f64> = o["box"]
            .as_array()
            .expect("box")
            .iter()
            .filter_map(|v| v.as_f64())
            .collect();
        assert_eq!(b.len(), 4, "{o}");
        assert!(
            b.iter().all(|v| (0.0..=1.0).contains(v)) && b[0] < b[2] && b[1] < b[3],
            "{o}"
        );
    }
    // seq strictly increases across events.
    let seqs: Vec<u64> = inc
        .iter()
        .map(|v| v["seq"].as_u64().expect("seq"))
        .collect();
    assert!(
        seqs.windows(2).all(|w| w[1] > w[0]),
        "seq not increasing: {seqs:?}"
    );
    // The snapshot named by the open event arrived, with the advertised size and hash.
    let snap = &open["snapshot"];
    let snap_msg = got
        .iter()
        .find(|m| Some(m.topic.as_str()) == snap["topic"].as_str())
        .expect("snapshot message");
    assert_eq!(
        snap_msg.payload.len() as u64,
        snap["bytes"].as_u64().expect("bytes")
    );
    assert_eq!(&snap_msg.payload[..2], &[0xFF, 0xD8], "a JPEG");
    assert_eq!(snap["width"], 768);

    // The camera reports streaming (retained) and health arrives every second, with the
    // analysis counters and the zone counts.
    let camera_topic = "vigil/v1/t1/test-box-001/cameras/plaza/status";
    let got = scene.wait("camera status streaming and a health message", |m| {
        m.iter()
            .any(|x| x.topic == camera_topic && x.json()["state"] == "streaming")
            && m.iter().any(|x| {
                x.topic.ends_with("/health")
                    && x.json()["cameras"][0]["analysed"].as_u64() > Some(0)
            })
    })?;
    let health = got
        .iter()
        .rev()
        .find(|x| x.topic.ends_with("/health"))
        .map(vigil_tests::Received::json)
        .unwrap_or_default();
    eprintln!("health: {health}");
    assert_eq!(health["cameras"][0]["camera"], "plaza", "{health}");
    assert_eq!(
        health["cameras"][0]["zones"][0]["zone"], "walkway",
        "{health}"
    );
    assert!(
        health["cameras"][0]["inference_ms_p50"].as_f64() > Some(0.0),
        "{health}"
    );

    // Kill the agent without a goodbye: the broker publishes the retained last will.
    scene.agent.kill();
    scene
        .recorder
        .wait_for(Duration::from_secs(20), "the last will", |m| {
            m.iter()
                .any(|x| x.topic == status_topic && x.json()["state"] == "offline")
        })?;
    // A new subscriber sees the retained offline status.
    let late = Recorder::start(scene.broker.port, status_topic)?;
    let retained = late.wait_for(Duration::from_secs(10), "the retained status", |m| {
        !m.is_empty()
    })?;
    assert!(retained[0].retain, "status is retained");
    assert_eq!(retained[0].json()["state"], "offline");
    scene.check_contract()?;
    Ok(())
}

#[test]
fn an_h265_camera_is_decoded_and_analysed() -> anyhow::Result<()> {
    let clip = Clip::load(&fixture("plaza_10s_h265.mp4"))?;
    assert_eq!(
        clip.caps
            .structure(0)
            .map(|s| s.name().to_string())
            .as_deref(),
        Some("video/x-h265")
    );
    let scene = Scene::start(vigil_bin!(), "h265", "plaza_10s_h265.mp4", "")?;
    let got = scene.wait("an intrusion from the H.265 stream", |m| {
        !incidents(m).is_empty()
    })?;
    let open = &incidents(&got)[0];
    assert_eq!(open["type"], "intrusion");
    assert_eq!(open["objects"][0]["label"], "person");
    scene.check_contract()?;
    Ok(())
}

#[test]
fn a_camera_that_refuses_connections_does_not_stop_the_other() -> anyhow::Result<()> {
    // A second camera on a port nothing listens on: connections are refused.
    let dead_port = free_port()?;
    let extra = format!(
        r#"
[[cameras]]
id = "dead"
url = "rtsp://user:hunter%2F22%40x%3A%25%20p%C3%A4ss@127.0.0.1:{dead_port}/nothing"
model = "coco"

[[cameras.zones]]
name = "all"
polygon = [[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]]
classes = ["person"]

# One inference thread for both cameras (two would be chosen on two cores).
[inference]
threads = 1
"#
    );
    // The live camera at 2.5 fps: half of what one inference thread of a debug build does on
    // a loaded two-core machine, so a lost slot is the dead camera's doing, not the machine's.
    let clip = std::path::Path::new("plaza_25s.mp4");
    let keys = "analysis_fps = 2.5";
    let mut scene = Scene::start_full(vigil_bin!(), "dead", clip, keys, &extra, false)?;
    // The dead camera is retried with backoff (0.5 s, 1 s, 2 s, …) while the live one keeps
    // producing incident events.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while scene.log().matches("camera stream failed").count() < 3
        && std::time::Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(200));
    }
    let log_text = scene.log();
    assert!(
        log_text.matches("camera stream failed").count() >= 3,
        "retries not logged:\n{log_text}"
    );
    assert!(
        log_text.contains("inference threads threads=1 configured=1"),
        "[inference] threads not applied:\n{log_text}"
    );
    let got = scene.wait("two incident events from the live camera", |m| {
        incidents(m).len() >= 2
    })?;
    // Detections come from the live camera; the dead one may only raise camera_offline.
    for v in incidents(&got) {
        let fault = v["type"].as_str().is_some_and(|t| t.starts_with("camera_"));
        if fault {
            assert_eq!(
                (&v["camera"], &v["type"]),
                (&"dead".into(), &"camera_offline".into()),
                "{v}"
            );
        } else {
            assert_eq!(v["camera"], "plaza", "{v}");
        }
    }
    // Full rate: the live camera's analysis keeps up with its frames while the other is
    // retried, judged from counters of its health messages over a window of them.
    let live = |m: &[vigil_tests::Received]| -> Vec<(std::time::Instant, serde_json::Value)> {
        m.iter()
            .filter(|x| x.topic.ends_with("/health"))
            .filter_map(|x| {
                let cams = x.json()["cameras"].as_array()?.clone();
                let c = cams.into_iter().find(|c| c["camera"] == "plaza")?;
                Some((x.at, c))
            })
            .collect()
    };
    let count = |c: &serde_json::Value, k: &str| c[k].as_u64().unwrap_or(0);
    let got = scene.wait("a health message after 30 live frames", |m| {
        live(m)
            .last()
            .is_some_and(|(_, c)| count(c, "received") >= 30)
    })?;
    let window = live(&got);
    let (Some((t0, first)), Some((t1, last))) = (
        window.iter().find(|(_, c)| count(c, "received") >= 6),
        window.last(),
    ) else {
        anyhow::bail!("no health messages of the live camera");
    };
    let delta = |k: &str| count(last, k).saturating_sub(count(first, k));
    let (received, analysed, dropped) = (delta("received"), delta("analysed"), delta("dropped"));
    // On loopback nothing is lost on the way and no frame comes out of order; `missing` may
    // count a hole the clip itself has, once per pass (150 to 250 frames).
    for k in ["misordered", "packets_lost"] {
        assert_eq!(count(last, k), 0, "{k}: {last}");
    }
    assert!(
        count(last, "missing") <= count(last, "decoded") / 150 + 1,
        "{last}"
    );
    // Frames may be dropped only when this camera's own inference fills the one thread (a slow
    // or loaded machine): the share of the window spent on its frames must then be near all.
    let secs = t1.duration_since(*t0).as_secs_f64().max(1e-3);
    let busy = analysed as f64 / secs * last["inference_ms_p50"].as_f64().unwrap_or(0.0) / 1000.0;
    eprintln!(
        "live camera beside a dead one, over {secs:.1} s: received {received}, analysed \
         {analysed}, dropped {dropped}; inference thread busy {busy:.2} with it"
    );
    let kept_up = dropped * 10 <= received && analysed * 10 >= received * 9;
    assert!(
        received >= 20 && (kept_up || busy >= 0.85),
        "the live camera lost analysis slots while the other was retried \
         (thread busy {busy:.2} with it): {first} -> {last}"
    );
    assert!(scene.agent.running(), "the agent kept running");
    // The dead camera's password (with '/', '@', ':', '%', a space and 'ä', percent-encoded)
    // never reached the log or a message, written or decoded.
    let log_text = scene.log();
    assert!(
        !log_text.contains("hunter"),
        "password leaked into the log:\n{log_text}"
    );
    let messages = scene.recorder.snapshot();
    let leaked: Vec<&str> = messages
        .iter()
        .filter(|m| String::from_utf8_lossy(&m.payload).contains("hunter"))
        .map(|m| m.topic.as_str())
        .collect();
    assert!(leaked.is_empty(), "password in messages on {leaked:?}");
    scene.check_contract()?;
    Ok(())
}

#[test]
fn seq_continues_after_the_agent_is_killed_and_restarted() -> anyhow::Result<()> {
    let mut scene = Scene::start(vigil_bin!(), "seq", "plaza_25s.mp4", "")?;
    let before = scene.wait("two incident events", |m| incidents(m).len() >= 2)?;
    let seqs = |events: &[serde_json::Value]| -> Vec<u64> {
        events.iter().filter_map(|e| e["seq"].as_u64()).collect()
    };
    let first_run = seqs(&incidents(&before));
    assert_eq!(first_run[..2], [1, 2], "{first_run:?}");
    scene.restart_after_kill()?;
    let n_before = incidents(&scene.recorder.snapshot()).len();
    let after = scene.wait("two more incident events after the restart", |m| {
        incidents(m).len() >= n_before + 2
    })?;
    let events = incidents(&after);
    let (old, later) = events.split_at(n_before);
    let key = |e: &serde_json::Value| (e["seq"].as_u64(), e["id"].clone(), e["state"].clone());
    let old_keys: Vec<_> = old.iter().map(key).collect();
    // An event stored before the kill may be delivered again after it (at least once): the
    // same seq, id and state. Every other event is new.
    let mut new: Vec<u64> = Vec::new();
    for e in later.iter().filter(|e| !old_keys.contains(&key(e))) {
        if let Some(n) = e["seq"].as_u64().filter(|n| !new.contains(n)) {
            new.push(n);
        }
    }
    let old = seqs(old);
    let high = old.iter().copied().max().unwrap_or(0);
    // Numbers handed out before the kill are never reused; the new run counts on from the
    // persisted high-water mark, one by one.
    assert!(
        new.first().is_some_and(|&n| n > high),
        "seq restarted: before {old:?}, after {new:?}"
    );
    assert!(new.windows(2).all(|w| w[1] == w[0] + 1), "{new:?}");
    scene.check_contract()?;
    Ok(())
}

#[test]
fn capture_times_come_from_the_stream_and_a_clean_stop_leaves_stopped_retained()
-> anyhow::Result<()> {
    let mut scene = Scene::start(vigil_bin!(), "stop", "plaza_25s.mp4", "")?;
    let camera_topic = "vigil/v1/t1/test-box-001/cameras/plaza/status";
    scene.wait("the camera streaming", |m| {
        m.iter()
            .any(|x| x.topic == camera_topic && x.json()["state"] == "streaming")
    })?;
    // Once the RTSP server's RTCP sender reports arrive, capture times come from its clock.
    scene.wait("frame_time from the stream's clock", |m| {
        m.iter().any(|x| {
            x.topic.ends_with("/health") && x.json()["cameras"][0]["frame_time"] == "stream"
        })
    })?;
    scene.agent.terminate(Duration::from_secs(20))?;
    // What a subscriber arriving later sees: stopped, not the last will, and the camera offline.
    let late = Recorder::start(scene.broker.port, "vigil/v1/t1/test-box-001/#")?;
    let retained = late.wait_for(Duration::from_secs(10), "the retained statuses", |m| {
        m.len() >= 2
    })?;
    let of = |topic: &str| {
        retained
            .iter()
            .find(|x| x.topic == topic)
            .map(vigil_tests::Received::json)
            .unwrap_or_default()
    };
    assert_eq!(of("vigil/v1/t1/test-box-001/status")["state"], "stopped");
    let cam = of(camera_topic);
    assert_eq!(
        (cam["state"].as_str(), cam["reason"].as_str()),
        (Some("offline"), Some("agent stopped"))
    );
    scene.check_contract()?;
    Ok(())
}

#[test]
fn durations_past_what_a_clock_holds_start_and_run() -> anyhow::Result<()> {
    // `vigil check` accepts any positive number of seconds; "never" written as 1e20 once
    // panicked at start (a Duration cannot hold it).
    let keys = "frozen_s = 1e20\ntamper_s = 1e300\nstall_s = 1e20\noffline_s = 1e20";
    let clip = std::path::Path::new("plaza_25s.mp4");
    let mut scene = Scene::start_full(vigil_bin!(), "never", clip, keys, "", false)?;
    let got = scene.wait("an intrusion and a health message", |m| {
        !incidents(m).is_empty() && m.iter().any(|x| x.topic.ends_with("/health"))
    })?;
    assert!(scene.agent.running(), "the agent kept running");
    let log = scene.log();
    assert!(!log.contains("panicked"), "{log}");
    assert_eq!(incidents(&got)[0]["type"], "intrusion");
    Ok(())
}

#[test]
fn cameras_of_128x96_and_64x64_with_zones_run_beside_a_normal_one() -> anyhow::Result<()> {
    // A 128×96 camera with a zone once panicked every inference thread at its first incident.
    let clips = vigil_tests::TempDir::new("small-clips")?;
    let plaza = fixture("plaza_25s.mp4");
    let small = [
        ("small", vigil_tests::scaled(&plaza, &clips, 128, 96)?),
        ("tiny", vigil_tests::scaled(&plaza, &clips, 64, 64)?),
    ];
    let mut mounts = Vec::new();
    for (id, clip) in &small {
        mounts.push((*id, std::sync::Arc::new(Clip::load(clip)?)));
    }
    let server = vigil_demo::rtsp::RtspServer::start(&mounts)?;
    let mut extra = String::new();
    for (id, _) in &small {
        extra.push_str(&format!(
            "\n[[cameras]]\nid = \"{id}\"\nurl = \"{}\"\nmodel = \"coco\"\nanalysis_fps = 5\n\n\
             [[cameras.zones]]\nname = \"all\"\npolygon = [[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]]\n\
             classes = [\"person\"]\nmin_score = 0.3\nquiet_s = 2\n",
            server.url(id)
        ));
    }
    let scene = Scene::start(vigil_bin!(), "small-cams", "plaza_25s.mp4", &extra)?;
    let analysed = vigil_tests::analysed_of;
    let cams = ["plaza", "small", "tiny"];
    let got = scene.wait(
        "an intrusion on the plaza and 40 frames of each camera",
        |m| {
            incidents(m).iter().any(|v| v["camera"] == "plaza")
                && cams.iter().all(|c| analysed(m, c) >= 40)
        },
    )?;
    // Whatever the small cameras opened carries a picture of their own size.
    let mut small_opens = 0;
    for (cam, width) in [("small", 128), ("tiny", 64)] {
        for open in incidents(&got)
            .iter()
            .filter(|v| v["camera"] == cam && v["state"] == "open")
        {
            small_opens += 1;
            assert_eq!(open["snapshot"]["width"], width, "{open}");
        }
    }
    println!("incidents opened by the 128 and 64 pixel cameras: {small_opens}");
    assert!(small_opens > 0, "the small cameras' evidence path ran");
    // Analysis goes on, on every camera.
    scene.wait("more analysed frames on every camera", |m| {
        cams.iter().all(|c| analysed(m, c) > analysed(&got, c))
    })?;
    let log = scene.log();
    assert!(!log.contains("panicked"), "{log}");
    scene.check_contract()?;
    Ok(())
}

#[test]
fn an_h265_camera_with_b_frames_reaches_its_analysis_rate() -> anyhow::Result<()> {
    // x265's own defaults reorder frames (B-frames, pyramid): 768×576 at 10 fps, analysed at 5.
    let dir = vigil_tests::TempDir::new("h265-b")?;
    let clip = dir.join("plaza_h265_b.mp4");
    vigil_tests::encode(
        &fixture("plaza_25s.mp4"),
        &clip,
        "videoconvert ! videorate ! video/x-raw,framerate=10/1 ! identity eos-after=150 ! \
         x265enc ! video/x-h265,profile=main ! h265parse ! mp4mux",
    )?;
    let extra = "\n[commands]\nenabled = true\n";
    let scene = Scene::start_full(vigil_bin!(), "h265-b", &clip, "", extra, false)?;
    // Each health message's own time (when its counts were taken: delivery may bunch them).
    let health = |m: &[vigil_tests::Received]| -> Vec<(f64, serde_json::Value)> {
        m.iter()
            .filter(|x| x.topic.ends_with("/health"))
            .filter_map(|x| {
                let v = x.json();
                let t = seconds_of_day(v["time"].as_str()?)?;
                Some((t, v["cameras"].as_array()?.first()?.clone()))
            })
            .collect()
    };
    let count = |c: &serde_json::Value, k: &str| c[k].as_u64().unwrap_or(0);
    let got = scene.wait("health after 80 analysed frames", |m| {
        health(m)
            .last()
            .is_some_and(|(_, c)| count(c, "analysed") >= 80)
    })?;
    let window = health(&got);
    let (Some((t0, first)), Some((t1, last))) = (
        window.iter().find(|(_, c)| count(c, "analysed") >= 5),
        window.last(),
    ) else {
        anyhow::bail!("no health messages");
    };
    let secs = (t1 - t0).rem_euclid(86_400.0).max(1e-3);
    let delta = |k: &str| count(last, k).saturating_sub(count(first, k));
    let (received, analysed, dropped) = (delta("received"), delta("analysed"), delta("dropped"));
    // No frame was dropped for its time (the test server's loop point once repeated two) or
    // lost on the way. The encoded clip itself has a hole (no frame at 15.1 s), which
    // `missing` counts each time the clip comes round.
    for k in ["misordered", "packets_lost"] {
        assert_eq!(count(last, k), 0, "{k}: {last}");
    }
    // One hole per pass of the 16 s clip.
    let passes = count(last, "decoded") / 150 + 1;
    assert!(count(last, "missing") <= passes, "{last}");
    let (rate, delivered) = (analysed as f64 / secs, received as f64 / secs);
    // Share of the window the one inference thread spent on this camera's frames.
    let busy = rate * last["inference_ms_p50"].as_f64().unwrap_or(0.0) / 1000.0;
    eprintln!(
        "H.265 with B-frames over {secs:.1} s: received {received} ({delivered:.2} fps), \
         analysed {analysed} ({rate:.2} fps of 5), dropped {dropped}, inference thread busy \
         {busy:.2}; last {last}"
    );
    // Ingest hands over 90 % of the analysis rate (B-frames once made it 3.72 fps of 5), and
    // analysis keeps up with it unless the machine is too slow for the model.
    assert!(
        delivered >= 4.5,
        "frames reach analysis at {delivered:.2} fps of 5: {first} -> {last}"
    );
    assert!(
        rate >= 0.9 * delivered || busy >= 0.85,
        "analysed {rate:.2} fps of {delivered:.2} with the thread busy {busy:.2}: {first} -> {last}"
    );
    // A clip of this stream (units in decode order, no decode times over RTP) plays in order.
    let now = std::time::SystemTime::now();
    let at = |s: u64| vigil::clock::rfc3339_ms(now - Duration::from_secs(s));
    let args = format!(
        r#"{{"camera":"plaza","from":"{}","to":"{}"}}"#,
        at(5),
        at(1)
    );
    let cfg = scene.cfg.to_string_lossy().to_string();
    let (code, out, err) = vigil_tests::run_cli(
        vigil_bin!(),
        &[
            "command", "clip", "--config", &cfg, "--args", &args, "--json",
        ],
    )?;
    assert_eq!(code, 0, "{out}{err}");
    let answer = serde_json::from_str::<serde_json::Value>(&out)?["answer"].clone();
    let got = scene.wait("the clip's chunks", |m| {
        vigil_tests::mp4::complete(m, &answer)
    })?;
    let file = vigil_tests::mp4::assemble(&got, &answer)?;
    let path = scene.state.with_file_name("h265-b.mp4");
    std::fs::write(&path, file)?;
    let played = vigil_tests::mp4::play(&path)?;
    assert!(played.starts_with_key && played.in_order, "{played:?}");
    assert_eq!(
        played.frames as u64,
        answer["frames"].as_u64().unwrap_or(0),
        "{answer}"
    );
    scene.check_contract()?;
    Ok(())
}

/// Seconds since midnight of an RFC 3339 UTC time (`…T23:50:01.123Z`).
fn seconds_of_day(t: &str) -> Option<f64> {
    let clock = t.split_once('T')?.1.trim_end_matches('Z');
    let mut parts = clock.split(':');
    let (h, m, s) = (parts.next()?, parts.next()?, parts.next()?);
    Some(h.parse::<f64>().ok()? * 3600.0 + m.parse::<f64>().ok()? * 60.0 + s.parse::<f64>().ok()?)
}

#[test]
fn frames_lost_on_the_way_are_counted_where_they_are_lost() -> anyhow::Result<()> {
    // A second camera behind a lossy network: its server loses every 40th RTP packet.
    let clip = std::sync::Arc::new(Clip::load(&fixture("plaza_25s.mp4"))?);
    let lossy = vigil_demo::rtsp::RtspServer::start_with(
        0,
        &[("lossy", clip)],
        &vigil_demo::rtsp::Extras {
            drop_every: Some(("lossy", 40)),
            ..Default::default()
        },
    )?;
    let extra = format!(
        "\n[[cameras]]\nid = \"lossy\"\nurl = \"{}\"\nmodel = \"coco\"\nanalysis_fps = 5\n",
        lossy.url("lossy")
    );
    let scene = Scene::start(vigil_bin!(), "lossy", "plaza_25s.mp4", &extra)?;
    let line = |m: &[vigil_tests::Received], cam: &str| vigil_tests::health_of(m, cam);
    let count = |c: &serde_json::Value, k: &str| c[k].as_u64().unwrap_or(0);
    let got = scene.wait("health with 100 decoded frames and losses", |m| {
        line(m, "plaza").is_some_and(|c| count(&c, "decoded") >= 100)
            && line(m, "lossy")
                .is_some_and(|c| count(&c, "decoded") >= 100 && count(&c, "packets_lost") >= 5)
    })?;
    let dropped = lossy.packets_dropped();
    let (plaza, bad) = (
        line(&got, "plaza").unwrap_or_default(),
        line(&got, "lossy").unwrap_or_default(),
    );
    eprintln!("server lost {dropped} packets\nplaza: {plaza}\nlossy: {bad}");
    // The clean camera: nothing lost, every decoded frame thinned or handed on.
    for k in ["packets_lost", "packets_late", "missing", "misordered"] {
        assert_eq!(count(&plaza, k), 0, "{k}: {plaza}");
    }
    let handed = count(&plaza, "thinned") + count(&plaza, "received");
    assert!(
        // (Counters are read one after the other: a frame or two may move in between.)
        handed <= count(&plaza, "decoded") + 2 && handed + 2 >= count(&plaza, "decoded"),
        "decoded = thinned + received: {plaza}"
    );
    // A 10 fps camera analysed at 5: half its frames are thinned, none lost.
    let thinned = count(&plaza, "thinned") as f64 / count(&plaza, "decoded") as f64;
    assert!((0.4..=0.6).contains(&thinned), "{plaza}");
    // The lossy camera: the jitter buffer counts what the network lost, no more than was lost,
    // and the damage shows after it (frames missing or concealed by the decoder).
    let lost = count(&bad, "packets_lost") + count(&bad, "packets_late");
    assert!(lost >= 5 && lost <= dropped, "{lost} of {dropped}: {bad}");
    assert!(
        count(&bad, "missing") + count(&bad, "decode_errors") > 0,
        "{bad}"
    );
    scene.check_contract()?;
    Ok(())
}
