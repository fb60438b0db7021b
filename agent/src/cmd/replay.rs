//! `vigil replay CLIP --config FILE [--camera ID] [--out DIR] [--realtime]`: run one camera's
//! model, tracker and rules on a video file exactly as the live agent would, and write the
//! incident events as JSON lines (the MQTT payloads, `incidents.jsonl`) and the evidence JPEGs
//! (`<incident id>.jpg`), so an installer can tune zones and lines before going live.
//!
//! Time is the clip's: a frame's monotonic time is its timestamp, its `frame_time` the replay's
//! start plus that timestamp. Frames are thinned to the camera's `analysis_fps` by timestamp.
//! After the last frame, time runs on with empty frames until every incident has closed (at
//! most ten minutes of clip time), so the output holds whole incidents.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context;
use gstreamer as gst;

use crate::agent::{Plan, StartError};
use crate::detect::{Detections, Detector, FrameView};
use crate::incident;
use crate::incident::payload::{self, IncidentContext};
use crate::ingest::file;
use crate::rules::{CameraRules, EventState, IncidentEvent};

/// Arguments of `vigil replay`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// A video file (anything GStreamer decodes).
    pub clip: PathBuf,
    /// Configuration file whose camera's model, zones and lines to use.
    #[arg(long, short, value_name = "FILE")]
    pub config: PathBuf,
    /// Camera id in the config (default: the first camera).
    #[arg(long, value_name = "ID")]
    pub camera: Option<String>,
    /// Folder for incidents.jsonl and the evidence JPEGs (created; old files are replaced).
    #[arg(long, value_name = "DIR", default_value = "replay-out")]
    pub out: PathBuf,
    /// Play at the clip's own pace instead of as fast as possible.
    #[arg(long)]
    pub realtime: bool,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
    /// Also write every analysed frame's detections (after the model's thresholds, before the
    /// rules) to `detections.jsonl` in the output folder: `{"t": clip seconds, "objects":
    /// [{"label", "score", "box"}]}` per frame, to measure a detector against annotations.
    #[arg(long)]
    pub detections: bool,
    /// Play the clip this many times back to back, clip time running on (hours of footage from
    /// a short clip, e.g. to count false alarms per hour).
    #[arg(long, default_value_t = 1, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub repeat: u32,
}

/// What a replay found.
#[derive(Debug, Default)]
struct Summary {
    frames: u64,
    events: u64,
    opened: BTreeMap<&'static str, u64>,
    tracks: BTreeSet<u64>,
    snapshots: u64,
    /// Each `open`: incident type and clip time in seconds.
    opens: Vec<(&'static str, f64)>,
}

struct Replay<'a> {
    plan: &'a Plan,
    camera: usize,
    detector: Box<dyn Detector>,
    rules: CameraRules,
    dets: Detections,
    events: Vec<IncidentEvent>,
    start_wall: SystemTime,
    /// The configured evidence, with pictures kept within `mqtt.max_message_bytes` as the
    /// agent keeps them.
    evidence: crate::evidence::EvidenceSettings,
    seq: u64,
    jsonl: std::io::BufWriter<std::fs::File>,
    boxes: Option<std::io::BufWriter<std::fs::File>>,
    out: PathBuf,
    summary: Summary,
}

impl Replay<'_> {
    fn frame(&mut self, now: Duration, frame: FrameView<'_>) -> anyhow::Result<()> {
        self.detector.detect(frame, &mut self.dets)?;
        if let Some(w) = &mut self.boxes {
            let labels = &self.detector.info().labels;
            let objects: Vec<_> = self
                .dets
                .iter()
                .map(|d| {
                    serde_json::json!({
                        "label": labels.name(usize::from(d.class)).unwrap_or("?"),
                        "score": d.score,
                        "box": d.bbox,
                    })
                })
                .collect();
            let line = serde_json::json!({"t": now.as_secs_f64(), "objects": objects});
            writeln!(w, "{line}")?;
        }
        let aspect = f64::from(frame.width) / f64::from(frame.height.max(1));
        self.rules.evaluate(
            now,
            self.start_wall + now,
            aspect,
            &self.dets,
            &mut self.events,
        );
        self.summary.frames += 1;
        self.flush(frame)
    }

    fn flush(&mut self, frame: FrameView<'_>) -> anyhow::Result<()> {
        let config = &self.plan.loaded.config;
        let cam = &config.cameras[self.camera];
        let identity = self.plan.identity();
        let info = self.detector.info();
        for event in std::mem::take(&mut self.events) {
            let r = incident::render(
                self.rules.set(),
                &info.labels,
                frame,
                &event,
                &self.evidence,
            );
            self.seq += 1;
            let snap = r
                .snapshot
                .as_ref()
                .map(|j| incident::snapshot_ref(&identity, &cam.id, &event, j));
            let ctx = IncidentContext {
                identity: &identity,
                camera: &cam.id,
                zone: r.zone.as_deref(),
                line: r.line.as_deref(),
                model_name: &info.name,
                model_version: &info.version,
                labels: &info.labels,
            };
            let body = payload::incident(
                ctx,
                self.seq,
                &event,
                payload::Snapshot::of(snap.as_ref(), r.omitted.as_deref()),
            );
            writeln!(self.jsonl, "{body}")?;
            if let Some(j) = &r.snapshot {
                let path = self.out.join(format!("{}.jpg", event.id));
                std::fs::write(&path, &j.bytes)
                    .with_context(|| format!("cannot write {}", path.display()))?;
                self.summary.snapshots += 1;
            }
            self.summary.events += 1;
            if event.state == EventState::Open {
                *self.summary.opened.entry(event.kind.as_str()).or_default() += 1;
                let at = event
                    .frame_time
                    .duration_since(self.start_wall)
                    .unwrap_or_default();
                self.summary
                    .opens
                    .push((event.kind.as_str(), at.as_secs_f64()));
            }
            self.summary.tracks.extend(event.track);
        }
        Ok(())
    }
}

/// Run the command.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let plan = match super::load_plan(&args.config) {
        Ok(p) => p,
        Err(code) => return Ok(code),
    };
    let config = &plan.loaded.config;
    let camera = match &args.camera {
        None => 0,
        Some(id) => match config.cameras.iter().position(|c| &c.id == id) {
            Some(i) => i,
            None => {
                let known: Vec<&str> = config.cameras.iter().map(|c| c.id.as_str()).collect();
                eprintln!(
                    "vigil: no camera \"{id}\" in {} (known: {})",
                    args.config.display(),
                    known.join(", ")
                );
                return Ok(ExitCode::from(super::EXIT_CONFIG));
            }
        },
    };
    let cam = &config.cameras[camera];
    let built = plan.detectors(|name| name == cam.model).and_then(|mut d| {
        d.remove(&cam.model)
            .ok_or_else(|| StartError::Runtime(format!("model {} not built", cam.model)))
    });
    let mut detector = match built {
        Ok(d) => d,
        Err(e) => return Ok(super::report_start_error(&e)),
    };
    let set = plan.rules[camera].clone();
    detector.lower_thresholds(set.detector_floor);
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    let jsonl_path = args.out.join("incidents.jsonl");
    let jsonl = std::fs::File::create(&jsonl_path)
        .with_context(|| format!("cannot create {}", jsonl_path.display()))?;
    let boxes = if args.detections {
        let path = args.out.join("detections.jsonl");
        let f = std::fs::File::create(&path)
            .with_context(|| format!("cannot create {}", path.display()))?;
        Some(std::io::BufWriter::new(f))
    } else {
        None
    };
    let period = Duration::from_secs_f64(1.0 / cam.analysis_fps);
    let mut replay = Replay {
        plan: &plan,
        camera,
        detector,
        rules: CameraRules::new(set),
        dets: Detections::new(),
        events: Vec::new(),
        start_wall: SystemTime::now(),
        evidence: crate::publish::limit::MessageLimit::of(&plan.loaded.config.mqtt)
            .fit(plan.loaded.config.evidence),
        seq: 0,
        jsonl: std::io::BufWriter::new(jsonl),
        boxes,
        out: args.out.clone(),
        summary: Summary::default(),
    };
    let started = Instant::now();
    let mut due = Duration::ZERO;
    let mut last = Duration::ZERO;
    let mut last_frame: Option<crate::ingest::slot::Frame> = None;
    let mut failure: Option<anyhow::Error> = None;
    let mut offset = Duration::ZERO;
    for _ in 0..args.repeat {
        file::pull_samples(
        &format!(
            "filesrc name=src ! decodebin ! videoconvert ! {} ! appsink name=sink sync=false max-buffers=4",
            crate::ingest::FRAME_CAPS
        ),
        &args.clip,
        |sample| {
            let pts = offset
                + sample
                    .buffer()
                    .and_then(|b| b.pts())
                    .map_or(last.saturating_sub(offset), |t: gst::ClockTime| {
                        Duration::from_nanos(t.nseconds())
                    });
            if pts < due {
                return true;
            }
            while due <= pts {
                due += period;
            }
            last = pts;
            let Some(f) = file::sample_to_frame(sample) else {
                return true;
            };
            if args.realtime {
                std::thread::sleep(pts.saturating_sub(started.elapsed()));
            }
            let view = f.view();
            if let Err(e) = replay.frame(pts, view) {
                failure = Some(e);
                return false;
            }
            last_frame = Some(f);
            true
        },
    )
    .map_err(|e| anyhow::anyhow!("cannot replay {}: {e}", args.clip.display()))?;
        if let Some(e) = failure {
            return Err(e);
        }
        offset = last + period;
    }
    // Let time run on without detections so that open incidents close.
    if let Some(f) = &last_frame {
        let view = f.view();
        let (w, h) = (&f.width, &f.height);
        let end = last + Duration::from_secs(600);
        let mut now = last;
        while replay.rules.open_incidents() > 0 && now < end {
            now += period;
            replay.dets.clear();
            let aspect = f64::from(*w) / f64::from((*h).max(1));
            replay.rules.evaluate(
                now,
                replay.start_wall + now,
                aspect,
                &[],
                &mut replay.events,
            );
            replay.flush(view)?;
        }
    }
    replay.jsonl.flush()?;
    if let Some(w) = &mut replay.boxes {
        w.flush()?;
    }
    let s = &replay.summary;
    let elapsed = started.elapsed().as_secs_f64();
    if args.json {
        let v = serde_json::json!({
            "clip": args.clip,
            "camera": cam.id,
            "frames": s.frames,
            "clip_seconds": last.as_secs_f64(),
            "seconds": elapsed,
            "events": s.events,
            "opened": s.opened,
            "tracks": s.tracks.len(),
            "snapshots": s.snapshots,
            "opens": s.opens.iter().map(|(kind, at)| serde_json::json!({"type": kind, "at_s": at})).collect::<Vec<_>>(),
            "out": args.out,
        });
        println!("{v}");
    } else {
        println!(
            "replayed {} ({:.1} s of clip) on camera {}: {} frames analysed in {:.1} s",
            args.clip.display(),
            last.as_secs_f64(),
            cam.id,
            s.frames,
            elapsed
        );
        if s.opened.is_empty() {
            println!("no incident");
        }
        for (kind, n) in &s.opened {
            println!("  {kind:<14} {n} incident(s)");
        }
        println!(
            "{} event(s), {} distinct track(s), {} evidence image(s) → {}",
            s.events,
            s.tracks.len(),
            s.snapshots,
            jsonl_path.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}
