//! `vigil replay` on real footage through the real decoder, model, tracker and rules.
//!
//! The plaza clip with a zone over the east part of the walkway and a line across it: incidents
//! must not flap — no (rule, zone or line, track) opens twice, incidents are no more than the
//! distinct tracks involved, every open closes, `seq` runs 1, 2, 3 … without a gap, and every
//! open's evidence file matches the sha256 its payload names. A clip without a person gives no
//! incident.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use sha2::{Digest, Sha256};
use vigil_tests::{TempDir, fixture, repo, run_cli, vigil_bin};

/// A configuration of one plaza camera on the SSD card at 5 fps, followed by `rules` (its zones
/// and lines).
fn config_text(rules: &str) -> String {
    let card = repo().join("models/ssd_mobilenet_v2_coco/model.toml");
    format!(
        r#"[device]
id = "q1-box-001"
district = "q1"

[mqtt]
host = "127.0.0.1"

[[models]]
name = "coco"
card = "{}"

[[cameras]]
id = "plaza"
url = "rtsp://127.0.0.1:8554/plaza"
model = "coco"
analysis_fps = 5
{rules}"#,
        card.display()
    )
}

fn config(dir: &TempDir) -> anyhow::Result<std::path::PathBuf> {
    let text = config_text(
        r#"
[[cameras.zones]]
name = "walkway-east"
polygon = [[0.55, 0.30], [0.90, 0.30], [0.90, 0.60], [0.55, 0.60]]
classes = ["person"]
cooldown_s = 30

[[cameras.lines]]
name = "crossing"
a = [0.60, 0.25]
b = [0.60, 0.65]
classes = ["person"]
cooldown_s = 30
"#,
    );
    let path = dir.join("vigil.toml");
    std::fs::write(&path, text)?;
    Ok(path)
}

fn replay(clip: &str, dir: &TempDir) -> anyhow::Result<Vec<serde_json::Value>> {
    let cfg = config(dir)?;
    let out = dir.join("out");
    let (code, stdout, stderr) = run_cli(
        vigil_bin!(),
        &[
            "replay",
            fixture(clip).to_str().unwrap_or_default(),
            "--config",
            cfg.to_str().unwrap_or_default(),
            "--out",
            out.to_str().unwrap_or_default(),
        ],
    )?;
    assert_eq!(code, 0, "stdout: {stdout}\nstderr: {stderr}");
    eprintln!("{stdout}");
    vigil_tests::contract::Contract::load()?.check_jsonl(&out.join("incidents.jsonl"))?;
    let text = std::fs::read_to_string(out.join("incidents.jsonl"))?;
    text.lines().map(|l| Ok(serde_json::from_str(l)?)).collect()
}

#[test]
fn the_plaza_clip_gives_one_incident_per_track_without_flapping() -> anyhow::Result<()> {
    let dir = TempDir::new("replay")?;
    let events = replay("plaza_25s.mp4", &dir)?;
    let seqs: Vec<u64> = events.iter().filter_map(|e| e["seq"].as_u64()).collect();
    assert_eq!(
        seqs,
        (1..=events.len() as u64).collect::<Vec<_>>(),
        "seq has a gap"
    );

    let mut opens: HashMap<(String, String, u64), u32> = HashMap::new();
    let mut tracks: BTreeMap<String, BTreeSet<u64>> = BTreeMap::new();
    let mut states: HashMap<String, Vec<String>> = HashMap::new();
    for e in &events {
        let kind = e["type"].as_str().unwrap_or_default().to_string();
        let place = e["zone"]
            .as_str()
            .or(e["line"].as_str())
            .unwrap_or_default()
            .to_string();
        let track = e["track_id"].as_u64().unwrap_or(0);
        let state = e["state"].as_str().unwrap_or_default().to_string();
        states
            .entry(e["id"].as_str().unwrap_or_default().to_string())
            .or_default()
            .push(state.clone());
        tracks.entry(kind.clone()).or_default().insert(track);
        if state == "open" {
            *opens.entry((kind, place, track)).or_default() += 1;
            let snap = &e["snapshot"];
            let id = e["id"].as_str().unwrap_or_default();
            let bytes = std::fs::read(dir.join("out").join(format!("{id}.jpg")))?;
            let sha: String = Sha256::digest(&bytes)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            assert_eq!(
                snap["sha256"].as_str(),
                Some(sha.as_str()),
                "evidence of {id}"
            );
            assert_eq!(snap["bytes"].as_u64(), Some(bytes.len() as u64));
        }
    }
    let twice: Vec<_> = opens.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "opened more than once: {twice:?}");
    for (id, s) in &states {
        assert_eq!(s.first().map(String::as_str), Some("open"), "{id}: {s:?}");
        assert_eq!(s.last().map(String::as_str), Some("close"), "{id}: {s:?}");
        assert_eq!(s.iter().filter(|x| *x == "open").count(), 1, "{id}: {s:?}");
    }
    let count = |kind: &str| opens.keys().filter(|k| k.0 == kind).count();
    let (intrusions, crossings) = (count("intrusion"), count("line_crossing"));
    eprintln!(
        "plaza: {intrusions} intrusion(s) from {} track(s), {crossings} crossing(s) from {} track(s), {} event(s)",
        tracks.get("intrusion").map_or(0, BTreeSet::len),
        tracks.get("line_crossing").map_or(0, BTreeSet::len),
        events.len()
    );
    // People walk through that part of the walkway and across the line in this clip.
    assert!(intrusions >= 3, "{intrusions} intrusions");
    assert!(crossings >= 1, "{crossings} crossings");
    assert!(intrusions <= tracks.get("intrusion").map_or(0, BTreeSet::len));
    assert!(crossings <= tracks.get("line_crossing").map_or(0, BTreeSet::len));
    Ok(())
}

/// Intrusion opens per track of the plaza clip with a zone on the picture below y = 0.45 (many
/// people walk along that edge) and `zone_keys` added to the zone.
fn edge_opens(tag: &str, zone_keys: &str) -> anyhow::Result<BTreeMap<u64, u32>> {
    let dir = TempDir::new(tag)?;
    let cfg = dir.join("vigil.toml");
    std::fs::write(
        &cfg,
        config_text(&format!(
            r#"[[cameras.zones]]
name = "lower"
polygon = [[0.0, 0.45], [1.0, 0.45], [1.0, 1.0], [0.0, 1.0]]
classes = ["person"]
quiet_s = 3
{zone_keys}
"#
        )),
    )?;
    let out = dir.join("out");
    replay_json(&fixture("plaza_25s.mp4"), &cfg, &out, &[])?;
    let mut opens = BTreeMap::new();
    for line in std::fs::read_to_string(out.join("incidents.jsonl"))?.lines() {
        let e: serde_json::Value = serde_json::from_str(line)?;
        if e["state"] == "open" {
            *opens
                .entry(e["track_id"].as_u64().unwrap_or(0))
                .or_default() += 1;
        }
    }
    Ok(opens)
}

#[test]
fn people_walking_along_a_zone_edge_are_one_intrusion_each() -> anyhow::Result<()> {
    let repeats = |o: &BTreeMap<u64, u32>| o.values().map(|n| n - 1).sum::<u32>();
    // Membership at once, as before zone hysteresis: the footage does flap at this edge.
    let instant = edge_opens("edge-instant", "inertia = 1\nexit_margin = 0.0")?;
    let default = edge_opens("edge-default", "")?;
    eprintln!(
        "zone edge at y = 0.45, quiet_s = 3: without hysteresis {} opens from {} tracks, with the defaults {} opens from {} tracks",
        instant.values().sum::<u32>(),
        instant.len(),
        default.values().sum::<u32>(),
        default.len()
    );
    assert!(
        repeats(&instant) >= 1,
        "the clip no longer exercises the edge: {instant:?}"
    );
    assert_eq!(repeats(&default), 0, "a track opened twice: {default:?}");
    assert!(
        default.len() >= 5,
        "people in the zone are still seen: {default:?}"
    );
    Ok(())
}

#[test]
fn a_clip_without_people_gives_no_incident() -> anyhow::Result<()> {
    let dir = TempDir::new("replay-neg")?;
    let events = replay("coffee_5s.mp4", &dir)?;
    assert!(events.is_empty(), "{events:?}");
    Ok(())
}

#[test]
fn an_unknown_camera_is_a_clear_error() -> anyhow::Result<()> {
    let dir = TempDir::new("replay-cam")?;
    let cfg = config(&dir)?;
    let (code, _, stderr) = run_cli(
        vigil_bin!(),
        &[
            "replay",
            fixture("plaza_25s.mp4").to_str().unwrap_or_default(),
            "--config",
            cfg.to_str().unwrap_or_default(),
            "--camera",
            "gate",
        ],
    )?;
    assert_eq!(code, 78);
    assert!(
        stderr.contains("no camera \"gate\"") && stderr.contains("known: plaza"),
        "{stderr}"
    );
    Ok(())
}

/// The built-in fire detector on the real FURG clip, played twice back to back: the summary
/// names when each incident opened in clip time, `--detections` writes one line per analysed
/// frame, and `--repeat 2` plays twice the clip.
#[test]
fn replaying_a_fire_clip_reports_open_times_and_per_frame_detections() -> anyhow::Result<()> {
    let dir = TempDir::new("replay-fire")?;
    let cfg = dir.join("fire.toml");
    std::fs::write(
        &cfg,
        r#"[device]
id = "q1-box-001"
district = "q1"

[mqtt]
host = "127.0.0.1"

[[models]]
name = "fire"
builtin = "fire"

[[cameras]]
id = "hill"
url = "rtsp://127.0.0.1:8554/hill"
kind = "fire"
model = "fire"
analysis_fps = 5
"#,
    )?;
    let out = dir.join("out");
    let clip = fixture("furg_house6_fire_smoke_cc0.mp4");
    let run = |repeat: &str| replay_json(&clip, &cfg, &out, &["--detections", "--repeat", repeat]);
    let once = run("1")?;
    let first_fire = once["opens"]
        .as_array()
        .expect("opens")
        .iter()
        .filter(|o| o["type"] == "fire")
        .filter_map(|o| o["at_s"].as_f64())
        .fold(f64::INFINITY, f64::min);
    assert!(first_fire <= 5.0, "the flames alarm within 5 s: {once}");
    let lines = std::fs::read_to_string(out.join("detections.jsonl"))?;
    let frames: Vec<serde_json::Value> = lines
        .lines()
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()?;
    assert_eq!(frames.len() as u64, once["frames"].as_u64().unwrap_or(0));
    assert!(
        frames.iter().any(|f| f["objects"]
            .as_array()
            .is_some_and(|o| o.iter().any(|o| o["label"] == "fire"))),
        "some frame has a fire box"
    );
    let twice = run("2")?;
    let (a, b) = (
        once["clip_seconds"].as_f64().unwrap_or(0.0),
        twice["clip_seconds"].as_f64().unwrap_or(0.0),
    );
    assert!(
        (b - 2.0 * a).abs() < 1.0,
        "twice the clip: {a} s, then {b} s"
    );
    assert!(twice["frames"].as_u64() >= Some(2 * once["frames"].as_u64().unwrap_or(0) - 2));
    Ok(())
}

/// Opt-in (`make test-fire`, the AGPL model's ONNX file in models/fire_smoke_yolov8/): the
/// built-in detector fused with the YOLOv8 flame model, in agreement, alarms on the FURG flames
/// and its incidents name both detectors.
#[cfg(feature = "fire-model")]
#[test]
fn fire_fused_with_the_yolov8_model_in_agreement_alarms_on_real_flames() -> anyhow::Result<()> {
    let dir = TempDir::new("replay-fused")?;
    let cfg = dir.join("fused.toml");
    let card = vigil_tests::repo().join("models/fire_smoke_yolov8/model.toml");
    std::fs::write(
        &cfg,
        format!(
            r#"[device]
id = "q1-box-001"
district = "q1"

[mqtt]
host = "127.0.0.1"

[[models]]
name = "flame"
card = "{}"
backend = "ort"

[[models]]
name = "fire"
builtin = "fire"
fuse_with = "flame"
fusion = "agree"

[[cameras]]
id = "hill"
url = "rtsp://127.0.0.1:8554/hill"
kind = "fire"
model = "fire"
analysis_fps = 5
"#,
            card.display()
        ),
    )?;
    let out = dir.join("out");
    let clip = fixture("furg_house6_fire_smoke_cc0.mp4");
    let summary = replay_json(&clip, &cfg, &out, &[])?;
    assert!(summary["opened"]["fire"].as_u64() >= Some(1), "{summary}");
    let incidents = std::fs::read_to_string(out.join("incidents.jsonl"))?;
    let first: serde_json::Value = serde_json::from_str(incidents.lines().next().unwrap_or("{}"))?;
    assert_eq!(
        first["model"]["name"], "vigil-firecue+fire_smoke_yolov8",
        "{first}"
    );
    Ok(())
}

/// `vigil replay CLIP --config CFG --out OUT --json EXTRA…`, which must succeed: its summary.
fn replay_json(
    clip: &std::path::Path,
    cfg: &std::path::Path,
    out: &std::path::Path,
    extra: &[&str],
) -> anyhow::Result<serde_json::Value> {
    let mut args = vec![
        "replay",
        clip.to_str().unwrap_or_default(),
        "--config",
        cfg.to_str().unwrap_or_default(),
        "--out",
        out.to_str().unwrap_or_default(),
        "--json",
    ];
    args.extend_from_slice(extra);
    let (code, stdout, stderr) = run_cli(vigil_bin!(), &args)?;
    assert_eq!(code, 0, "stdout: {stdout}\nstderr: {stderr}");
    Ok(serde_json::from_str(
        stdout.trim().lines().last().unwrap_or(""),
    )?)
}
