//! Fire cameras on a fresh install, on real components: real fire footage (the CC0 FURG clip)
//! and a still photo of warm lamps, each served by GStreamer's RTSP server; a real mosquitto;
//! the real `vigil` binary with the built-in fire and smoke detector (`builtin = "fire"`, no
//! model file); a real subscriber that validates what arrives against docs/schemas/.

use std::sync::Arc;
use std::time::Duration;

use vigil_demo::rtsp::{Clip, RtspServer};
use vigil_tests::{Mosquitto, Received, Recorder, TempDir, fixture, vigil_bin};

/// A broker, the clip served at `/cam`, the agent with one fire camera on it, a recorder.
struct FireScene {
    recorder: Recorder,
    log: std::path::PathBuf,
    _agent: vigil_tests::Proc,
    _server: RtspServer,
    _broker: Mosquitto,
    _dir: TempDir,
}

impl FireScene {
    fn start(tag: &str, clip: &str) -> anyhow::Result<FireScene> {
        FireScene::cameras(tag, &[("hill", fixture(clip))])
    }

    /// One fire camera per `(id, clip)`, each clip served at `/<id>`.
    fn cameras(tag: &str, clips: &[(&str, std::path::PathBuf)]) -> anyhow::Result<FireScene> {
        vigil_tests::init_logs();
        let broker = Mosquitto::start()?;
        let mut mounts = Vec::new();
        for (id, clip) in clips {
            mounts.push((*id, Arc::new(Clip::load(clip)?)));
        }
        let server = RtspServer::start(&mounts)?;
        let dir = TempDir::new(tag)?;
        let cfg = dir.join("vigil.toml");
        let urls: Vec<(&str, String)> = clips.iter().map(|(id, _)| (*id, server.url(id))).collect();
        let config = vigil_tests::scene::fire_config(broker.port, &urls);
        std::fs::write(&cfg, config)?;
        let recorder = Recorder::start(broker.port, "vigil/v1/#")?;
        let log = dir.join("agent.log");
        let agent = vigil_tests::spawn_agent(vigil_bin!(), &cfg, &log)?;
        Ok(FireScene {
            recorder,
            log,
            _agent: agent,
            _server: server,
            _broker: broker,
            _dir: dir,
        })
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

fn fire_events(msgs: &[Received]) -> Vec<serde_json::Value> {
    fire_events_of(msgs, "hill")
}

fn fire_events_of(msgs: &[Received], camera: &str) -> Vec<serde_json::Value> {
    msgs.iter()
        .filter(|m| m.topic == format!("vigil/v1/t1/fire-box-001/incidents/{camera}"))
        .map(Received::json)
        .filter(|v| v["type"] == "fire" || v["type"] == "smoke")
        .collect()
}

/// Frames the camera has had analysed, from the latest health message.
fn analysed(msgs: &[Received]) -> u64 {
    msgs.iter()
        .rev()
        .find(|m| m.topic.ends_with("/health"))
        .and_then(|m| m.json()["cameras"][0]["analysed"].as_u64())
        .unwrap_or(0)
}

#[test]
fn real_flames_become_a_fire_incident_with_evidence() -> anyhow::Result<()> {
    let scene = FireScene::start("fire-furg", "furg_house6_fire_smoke_cc0.mp4")?;
    let got = scene
        .recorder
        .wait_for(
            Duration::from_secs(90),
            "a fire open and its snapshot",
            |m| {
                fire_events(m)
                    .iter()
                    .any(|v| v["type"] == "fire" && v["state"] == "open")
                    && m.iter().any(|x| x.topic.ends_with("/snapshot"))
            },
        )
        .map_err(|e| anyhow::anyhow!("{e}\n{}", scene.log()))?;
    let events = fire_events(&got);
    let open = events
        .iter()
        .find(|v| v["type"] == "fire" && v["state"] == "open")
        .expect("fire open");
    assert_eq!(open["severity"], "critical", "{open}");
    assert_eq!(open["model"]["name"], "vigil-firecue", "{open}");
    assert_eq!(
        open["model"]["version"],
        vigil::detect::firecue::VERSION,
        "{open}"
    );
    let objects = open["objects"].as_array().expect("objects");
    assert!(objects.iter().any(|o| o["label"] == "fire"), "{open}");
    // The FURG flames are in the house's windows: in the middle third of the picture.
    for o in objects.iter().filter(|o| o["label"] == "fire") {
        let b: Vec<f64> = o["box"]
            .as_array()
            .expect("box")
            .iter()
            .filter_map(serde_json::Value::as_f64)
            .collect();
        assert!(b[0] < b[2] && b[1] < b[3], "{o}");
        let cx = (b[0] + b[2]) / 2.0;
        assert!((0.2..0.8).contains(&cx), "flame box off the house: {o}");
    }
    let snap = got
        .iter()
        .find(|m| Some(m.topic.as_str()) == open["snapshot"]["topic"].as_str())
        .expect("the open's snapshot");
    assert_eq!(&snap.payload[..2], &[0xFF, 0xD8], "a JPEG");
    assert_eq!(open["snapshot"]["width"], 426);
    // Health says the stream has colour: every cue of the built-in detector is at work.
    let got = scene
        .recorder
        .wait_for(Duration::from_secs(30), "health with fire_cues", |m| {
            m.iter().any(|x| {
                x.topic.ends_with("/health") && x.json()["cameras"][0]["fire_cues"].is_string()
            })
        })?;
    let health = got
        .iter()
        .rev()
        .find(|x| x.topic.ends_with("/health") && x.json()["cameras"][0]["fire_cues"].is_string())
        .map(Received::json)
        .unwrap_or_default();
    assert_eq!(health["cameras"][0]["fire_cues"], "colour", "{health}");
    // Fire opens get a clip by default: 10 s before the open to 10 s after, in chunks, then
    // announced; put together, it plays from a key frame.
    let clip_topic = format!(
        "vigil/v1/t1/fire-box-001/incidents/hill/{}/clip",
        open["id"].as_str().unwrap_or_default()
    );
    let got = scene
        .recorder
        .wait_for(Duration::from_secs(60), "the fire's clip", |m| {
            m.iter().any(|x| x.topic == clip_topic)
        })
        .map_err(|e| anyhow::anyhow!("{e}\n{}", scene.log()))?;
    let announced = got
        .iter()
        .find(|x| x.topic == clip_topic)
        .map(Received::json)
        .unwrap_or_default();
    assert_eq!(announced["type"], "fire", "{announced}");
    let file = vigil_tests::mp4::assemble(&got, &announced)?;
    let dir = TempDir::new("fire-clip")?;
    std::fs::write(dir.join("fire.mp4"), &file)?;
    let played = vigil_tests::mp4::play(&dir.join("fire.mp4"))?;
    assert!(played.starts_with_key && played.frames > 0, "{played:?}");
    // The incident's next event names it.
    let got =
        scene
            .recorder
            .wait_for(Duration::from_secs(30), "an event naming the clip", |m| {
                fire_events(m)
                    .iter()
                    .any(|v| v["id"] == open["id"] && v["clip"]["sha256"] == announced["sha256"])
            })?;
    let n = vigil_tests::contract::Contract::load()?.check_all(&got)?;
    assert!(n > 0);
    Ok(())
}

#[test]
fn a_still_picture_of_warm_lamps_raises_nothing() -> anyhow::Result<()> {
    let scene = FireScene::start("fire-lamp", "warm_lamps_still_10s.mp4")?;
    // 30 s of stream at 5 analysed frames a second: 150 frames, every fire cue at work.
    let got = scene
        .recorder
        .wait_for(Duration::from_secs(120), "150 analysed frames", |m| {
            analysed(m) >= 150
        })
        .map_err(|e| anyhow::anyhow!("{e}\n{}", scene.log()))?;
    let events = fire_events(&got);
    assert!(
        events.is_empty(),
        "false alarm on a still picture: {events:?}"
    );
    assert!(
        got.iter()
            .any(|m| m.topic.ends_with("/cameras/hill/status") && m.json()["state"] == "streaming"),
        "the camera streamed"
    );
    Ok(())
}

/// The FURG clip scaled to `w`×`h` (H.264), made with GStreamer in `dir`.
fn furg_at(dir: &TempDir, w: u32, h: u32) -> anyhow::Result<std::path::PathBuf> {
    vigil_tests::scaled(&fixture("furg_house6_fire_smoke_cc0.mp4"), dir, w, h)
}

#[test]
fn small_thermal_sized_cameras_are_analysed_and_alarm_beside_a_normal_one() -> anyhow::Result<()> {
    // Thermal fire cameras are 80×60 to 384×288; a picture narrower than the evidence's least
    // width once panicked every inference thread at the first incident.
    let clips = TempDir::new("fire-small-clips")?;
    let cameras = [
        ("hill", fixture("furg_house6_fire_smoke_cc0.mp4")),
        ("thermal", furg_at(&clips, 128, 96)?),
        ("tiny", furg_at(&clips, 80, 60)?),
        ("micro", furg_at(&clips, 16, 16)?),
    ];
    let scene = FireScene::cameras("fire-small", &cameras)?;
    let opened = |m: &[Received], cam: &str| {
        fire_events_of(m, cam)
            .iter()
            .any(|v| v["type"] == "fire" && v["state"] == "open")
    };
    let frames = vigil_tests::analysed_of;
    let got = scene
        .recorder
        .wait_for(
            Duration::from_secs(120),
            "fire from the 426, 128 and 80 pixel wide cameras, 50 frames of the 16 pixel one",
            |m| {
                ["hill", "thermal", "tiny"].iter().all(|c| opened(m, c)) && frames(m, "micro") >= 50
            },
        )
        .map_err(|e| anyhow::anyhow!("{e}\n{}", scene.log()))?;
    for (cam, width) in [("hill", 426), ("thermal", 128), ("tiny", 80)] {
        let events = fire_events_of(&got, cam);
        let open = events
            .iter()
            .find(|v| v["type"] == "fire" && v["state"] == "open")
            .expect("fire open");
        assert_eq!(open["snapshot"]["width"], width, "{open}");
        let snap = got
            .iter()
            .find(|m| Some(m.topic.as_str()) == open["snapshot"]["topic"].as_str());
        assert!(
            snap.is_some_and(|s| s.payload.starts_with(&[0xFF, 0xD8])),
            "{cam}: the open's JPEG arrived"
        );
    }
    // Analysis went on after the small cameras' incidents, on every camera.
    let later = scene
        .recorder
        .wait_for(Duration::from_secs(30), "more analysed frames", |m| {
            cameras.iter().all(|(c, _)| frames(m, c) > frames(&got, c))
        })
        .map_err(|e| anyhow::anyhow!("{e}\n{}", scene.log()))?;
    let log = scene.log();
    assert!(!log.contains("panicked"), "{log}");
    let n = vigil_tests::contract::Contract::load()?.check_all(&later)?;
    assert!(n > 0);
    Ok(())
}
