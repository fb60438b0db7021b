//! `vigil bench`: per-stage timings of a model on real frames — decode (GStreamer, from a video
//! file), pre-process, inference, post-process — with min/median/p99, frames per second and
//! peak RSS. Numbers for humans and for docs/performance.md; never asserted by tests.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::detect::{Detections, StageTimes};

/// Arguments of `vigil bench`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Model card to benchmark, or `builtin:fire` for the built-in fire and smoke detector.
    #[arg(
        long,
        value_name = "FILE",
        default_value = "models/ssd_mobilenet_v2_coco/model.toml"
    )]
    pub card: PathBuf,
    /// Video (or photo) whose frames are analysed.
    #[arg(
        long,
        value_name = "FILE",
        default_value = "tests/fixtures/plaza_25s.mp4"
    )]
    pub input: PathBuf,
    /// Frames to analyse (after a warm-up of 3).
    #[arg(long, default_value_t = 50, value_name = "N")]
    pub frames: usize,
    /// Engine.
    #[command(flatten)]
    pub engine: super::EngineArgs,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// min, median, p99 and mean of a set of durations, in milliseconds.
pub fn summary(mut v: Vec<Duration>) -> [f64; 4] {
    if v.is_empty() {
        return [0.0; 4];
    }
    v.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let pick = |q: f64| ms(v[((v.len() - 1) as f64 * q).round() as usize]);
    let mean = v.iter().map(|d| ms(*d)).sum::<f64>() / v.len() as f64;
    [ms(v[0]), pick(0.5), pick(0.99), mean]
}

/// Run the benchmark.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let load_start = Instant::now();
    let mut det = match super::load_detector(&args.card, &args.engine) {
        Ok(d) => d,
        Err(code) => return Ok(code),
    };
    let load = load_start.elapsed();

    let decode_start = Instant::now();
    let warmup = 3;
    let frames = super::detect::load_frames(&args.input, 1, args.frames + warmup)?;
    let decode_per_frame = decode_start.elapsed() / frames.len().max(1) as u32;
    anyhow::ensure!(!frames.is_empty(), "no frames in {}", args.input.display());

    let mut out = Detections::new();
    let mut times: Vec<StageTimes> = Vec::new();
    let mut totals = Vec::new();
    let run_start = Instant::now();
    for (i, f) in frames.iter().cycle().take(args.frames + warmup).enumerate() {
        let t = Instant::now();
        let st = det.detect_timed(f.view(), &mut out)?;
        if i >= warmup {
            times.push(st);
            totals.push(t.elapsed());
        }
    }
    let measured = run_start.elapsed();
    let pre = summary(times.iter().map(|t| t.pre).collect());
    let inf = summary(times.iter().map(|t| t.inference).collect());
    let post = summary(times.iter().map(|t| t.post).collect());
    let total = summary(totals.clone());
    let fps = times.len() as f64 / totals.iter().sum::<Duration>().as_secs_f64().max(1e-9);
    let rss = crate::os::memory::peak_rss_kib().unwrap_or(0);
    let info = det.info();
    if args.json {
        let stage = |s: [f64; 4]| json!({"min_ms": s[0], "median_ms": s[1], "p99_ms": s[2], "mean_ms": s[3]});
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "model": {"name": info.name, "version": info.version},
                "backend": det.engine(),
                "threads": args.engine.threads,
                "frames": times.len(),
                "load_ms": load.as_secs_f64() * 1e3,
                "decode_ms_per_frame": decode_per_frame.as_secs_f64() * 1e3,
                "pre": stage(pre), "inference": stage(inf), "post": stage(post), "total": stage(total),
                "fps": fps,
                "peak_rss_kib": rss,
            }))?
        );
    } else {
        println!(
            "{} ({}), {} x{}, {} frames of {}",
            info.name,
            info.version,
            det.engine(),
            args.engine.threads,
            times.len(),
            args.input.display()
        );
        println!(
            "  model load            {:8.1} ms",
            load.as_secs_f64() * 1e3
        );
        println!(
            "  decode (GStreamer)    {:8.2} ms/frame (mean, to I420 frames)",
            decode_per_frame.as_secs_f64() * 1e3
        );
        println!(
            "  {:<20} {:>8} {:>8} {:>8} {:>8}",
            "stage", "min", "median", "p99", "mean"
        );
        for (n, s) in [
            ("pre-process", pre),
            ("inference", inf),
            ("post-process", post),
            ("total", total),
        ] {
            println!(
                "  {n:<20} {:>8.2} {:>8.2} {:>8.2} {:>8.2}  ms",
                s[0], s[1], s[2], s[3]
            );
        }
        println!(
            "  throughput            {fps:8.1} frames/s on one thread ({:.1} s measured)",
            measured.as_secs_f64()
        );
        println!("  peak RSS              {:8.1} MiB", rss as f64 / 1024.0);
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_picks_quantiles() {
        let v: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        let [min, med, p99, mean] = summary(v);
        assert_eq!((min, med, p99), (1.0, 51.0, 99.0));
        assert!((mean - 50.5).abs() < 1e-9);
        assert_eq!(summary(Vec::new()), [0.0; 4]);
    }
}
