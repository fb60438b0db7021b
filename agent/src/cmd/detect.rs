//! `vigil detect IMAGE_OR_VIDEO`: run a model on a photo or on frames of a video file and print
//! the detections (a table, or JSON with `--json`); optionally write an annotated JPEG.

use std::path::PathBuf;
use std::process::ExitCode;

use std::fmt::Write as _;
use std::io::Write as _;

use anyhow::Context;
use serde_json::json;

use crate::detect::Detections;
use crate::evidence;
use crate::ingest::slot::Frame;

/// Arguments of `vigil detect`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// A photo (JPEG, PNG) or a video file (anything GStreamer decodes).
    pub input: PathBuf,
    /// Model card to use, or `builtin:fire` for the built-in fire and smoke detector.
    #[arg(
        long,
        value_name = "FILE",
        default_value = "models/ssd_mobilenet_v2_coco/model.toml"
    )]
    pub card: PathBuf,
    /// Print JSON (one object with every frame) instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Write the (first) frame with its boxes drawn to this JPEG file.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Videos: analyse one frame in this many.
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub every: usize,
    /// Videos: analyse at most this many frames.
    #[arg(long, default_value_t = 10, value_name = "N")]
    pub frames: usize,
    /// Engine.
    #[command(flatten)]
    pub engine: super::EngineArgs,
    /// Report detections down to this score instead of the card's thresholds.
    #[arg(long, value_name = "SCORE")]
    pub min_score: Option<f32>,
}

fn is_image(p: &std::path::Path) -> bool {
    matches!(
        p.extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
            .as_deref(),
        Some("jpg" | "jpeg" | "png")
    )
}

/// Load the frames to analyse from a photo or a video.
pub fn load_frames(
    input: &std::path::Path,
    every: usize,
    max: usize,
) -> anyhow::Result<Vec<Frame>> {
    if is_image(input) {
        let img = image::open(input)
            .with_context(|| format!("cannot read image {}", input.display()))?
            .to_rgb8();
        let (width, height) = img.dimensions();
        Ok(vec![Frame {
            camera: 0,
            width,
            height,
            data: img.into_raw().into(),
            format: crate::pixels::Format::Rgb,
            captured: std::time::SystemTime::now(),
        }])
    } else {
        crate::ingest::file::decode_frames(input, every, max).map_err(anyhow::Error::msg)
    }
}

/// Run the command.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let mut detector = match super::load_detector(&args.card, &args.engine) {
        Ok(d) => d,
        Err(code) => return Ok(code),
    };
    if let Some(t) = args.min_score {
        detector.lower_thresholds(t);
    }
    let frames = load_frames(&args.input, args.every, args.frames)?;
    let labels = std::sync::Arc::clone(&detector.info().labels);
    let mut all = Vec::new();
    let mut dets = Detections::new();
    for (i, f) in frames.iter().enumerate() {
        let view = f.view();
        detector.detect(view, &mut dets)?;
        if i == 0
            && let Some(out) = &args.out
        {
            let marks: Vec<evidence::Mark> = dets
                .iter()
                .map(|&det| evidence::Mark {
                    bbox: det.bbox,
                    text: crate::incident::caption(
                        &crate::rules::Object { track: None, det },
                        &detector.info().labels,
                    ),
                })
                .collect();
            let settings = evidence::EvidenceSettings {
                max_width: f.width.max(160),
                quality: 90,
                max_bytes: 16 << 20,
                on_update: false,
            };
            let jpeg = evidence::annotate(view, &[], &marks, &settings)?;
            std::fs::write(out, &jpeg.bytes)
                .with_context(|| format!("cannot write {}", out.display()))?;
        }
        all.push((f.width, f.height, dets.to_vec()));
    }
    let info = detector.info();
    let mut text = String::new();
    if args.json {
        let frames: Vec<_> = all
            .iter()
            .enumerate()
            .map(|(i, (w, h, d))| {
                json!({
                    "frame": i,
                    "width": w,
                    "height": h,
                    "detections": d.iter().map(|d| json!({
                        "label": labels.name(d.class as usize).unwrap_or("?"),
                        "class_id": d.class,
                        "score": d.score,
                        "box": d.bbox,
                    })).collect::<Vec<_>>(),
                })
            })
            .collect();
        let doc = json!({"model": {"name": info.name, "version": info.version}, "input": args.input, "frames": frames});
        text = serde_json::to_string_pretty(&doc)?;
        text.push('\n');
    } else {
        writeln!(
            text,
            "{} ({}) on {}",
            info.name,
            info.version,
            args.input.display()
        )?;
        writeln!(
            text,
            "{:>5}  {:<16} {:>6}  {:>6} {:>6} {:>6} {:>6}",
            "frame", "label", "score", "x1", "y1", "x2", "y2"
        )?;
        for (i, (_, _, d)) in all.iter().enumerate() {
            for d in d {
                let b = d.bbox;
                writeln!(
                    text,
                    "{i:>5}  {:<16} {:>6.3}  {:>6.3} {:>6.3} {:>6.3} {:>6.3}",
                    labels.name(d.class as usize).unwrap_or("?"),
                    d.score,
                    b[0],
                    b[1],
                    b[2],
                    b[3]
                )?;
            }
        }
    }
    // A closed pipe (`vigil detect … | head`) is not an error worth a panic.
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
    Ok(ExitCode::SUCCESS)
}
