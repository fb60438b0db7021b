//! `vigil probe RTSP_URL`: connect to a camera as the agent would, print codec, profile,
//! resolution, measured frame rate, transport and time to first frame, and save a frame —
//! with a camera from the configuration (`--config FILE --camera ID`), its zones and lines
//! drawn on it. Wrong credentials, a wrong path, an unreachable host, a stream without video
//! and a codec vigil cannot decode each get their own plain message (exit 1).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use serde_json::json;

use crate::config::Transport;
use crate::config::url::redact;
use crate::evidence::{self, EvidenceSettings, Overlay};
use crate::ingest::probe::{self, Report};

/// Arguments of `vigil probe`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The camera's RTSP URL (credentials in it are never printed). Optional with --camera.
    #[arg(value_name = "RTSP_URL")]
    url: Option<String>,
    /// RTSP transport [default: the camera's in --config, else tcp].
    #[arg(long, value_enum)]
    transport: Option<TransportArg>,
    /// Save the last decoded frame as JPEG.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Configuration file holding --camera.
    #[arg(long, short, value_name = "FILE", requires = "camera")]
    config: Option<PathBuf>,
    /// Probe this camera of --config (its URL and transport), and draw its zones and lines
    /// on the saved frame.
    #[arg(long, value_name = "ID", requires = "config")]
    camera: Option<String>,
    /// Give up after this many seconds without a frame.
    #[arg(long, default_value_t = 15, value_name = "S")]
    timeout: u64,
    /// JSON output.
    #[arg(long)]
    json: bool,
}

/// `--transport` values.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum TransportArg {
    /// Interleaved in the RTSP connection.
    Tcp,
    /// RTP over UDP.
    Udp,
}

/// Probe and print.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let camera = match (&args.config, &args.camera) {
        (Some(cfg), Some(id)) => {
            let loaded = match crate::config::load(cfg) {
                Ok(l) => l,
                Err(e) => {
                    return Ok(super::report_start_error(
                        &crate::agent::StartError::Config(e),
                    ));
                }
            };
            let Some(cam) = loaded.config.cameras.iter().find(|c| &c.id == id).cloned() else {
                let ids: Vec<&str> = loaded
                    .config
                    .cameras
                    .iter()
                    .map(|c| c.id.as_str())
                    .collect();
                eprintln!(
                    "vigil probe: no camera \"{id}\" in {}; cameras: {}",
                    cfg.display(),
                    ids.join(", ")
                );
                return Ok(ExitCode::from(super::EXIT_CONFIG));
            };
            Some(cam)
        }
        _ => None,
    };
    let Some(url) = args
        .url
        .clone()
        .or_else(|| camera.as_ref().map(|c| c.url.clone()))
    else {
        eprintln!("vigil probe: give an RTSP URL, or --config FILE --camera ID");
        return Ok(ExitCode::from(2));
    };
    if let Err(e) = crate::config::url::check(&url) {
        eprintln!("vigil probe: {e}");
        return Ok(ExitCode::from(2));
    }
    let transport = match (args.transport, &camera) {
        (Some(TransportArg::Tcp), _) => Transport::Tcp,
        (Some(TransportArg::Udp), _) => Transport::Udp,
        (None, Some(c)) => c.transport,
        (None, None) => Transport::Tcp,
    };
    let timeout = Duration::from_secs(args.timeout.max(1));
    let report = match probe_stream(&url, transport, timeout, args.json) {
        Some(r) => r,
        None => return Ok(ExitCode::FAILURE),
    };
    // A camera with a sub-stream for analysis: that stream too, and whether it fits the main.
    let detect = match camera.as_ref().and_then(|c| c.detect_url.clone()) {
        Some(d) if args.url.is_none() => match probe_stream(&d, transport, timeout, args.json) {
            Some(r) => Some((d, r)),
            None => return Ok(ExitCode::FAILURE),
        },
        _ => None,
    };
    let saved = match &args.out {
        Some(path) => match save(&report, camera.as_ref(), path) {
            Ok(()) => Some(path.clone()),
            Err(e) => {
                eprintln!(
                    "vigil probe: cannot save the frame to {}: {e}",
                    path.display()
                );
                return Ok(ExitCode::FAILURE);
            }
        },
        None => None,
    };
    if args.json {
        let mut out = json_of(&url, &report);
        out["saved"] = json!(saved);
        if let Some((d, r)) = &detect {
            out["detect"] = json_of(d, r);
        }
        println!("{out}");
        return Ok(ExitCode::SUCCESS);
    }
    print(
        &url,
        &report,
        detect.is_some().then_some("main stream, url"),
    );
    if let Some(p) = saved {
        let drawn = camera
            .as_ref()
            .map(|c| format!(" (zones and lines of camera {} drawn)", c.id))
            .unwrap_or_default();
        println!("  frame        saved to {}{drawn}", p.display());
    }
    if let Some((d, r)) = &detect {
        print(d, r, Some("analysed, detect_url"));
        if let Some(why) = misfit(&report, r) {
            println!("  warning      {why}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Probe one stream; `None` after printing why it failed.
fn probe_stream(url: &str, transport: Transport, timeout: Duration, json: bool) -> Option<Report> {
    match probe::probe(url, transport, timeout, Duration::from_secs(2)) {
        Ok(r) => Some(r),
        Err(e) => {
            let shown = redact(url);
            if json {
                println!(
                    "{}",
                    json!({"url": shown, "ok": false, "error": e.to_string()})
                );
            } else {
                eprintln!("vigil probe: {shown}: {e}");
            }
            None
        }
    }
}

fn json_of(url: &str, report: &Report) -> serde_json::Value {
    json!({
        "url": redact(url), "ok": true, "codec": report.codec, "profile": report.profile,
        "level": report.level, "width": report.width, "height": report.height,
        "fps": report.fps.map(|f| (f * 100.0).round() / 100.0),
        "transport": report.transport.as_str(),
        "first_frame_s": (report.first_frame.as_secs_f64() * 1000.0).round() / 1000.0,
    })
}

fn print(url: &str, report: &Report, role: Option<&str>) {
    let role = role.map(|r| format!("  [{r}]")).unwrap_or_default();
    println!("{}  ({}){role}", redact(url), report.transport.as_str());
    let mut codec = report.codec.clone();
    if let Some(p) = &report.profile {
        codec.push_str(&format!(", profile {p}"));
    }
    if let Some(l) = &report.level {
        codec.push_str(&format!(", level {l}"));
    }
    println!("  codec        {codec}");
    println!("  resolution   {}×{}", report.width, report.height);
    match report.fps {
        Some(f) => println!("  frame rate   {f:.1} fps (measured over 2 s)"),
        None => println!("  frame rate   unknown (one frame in 2 s)"),
    }
    println!(
        "  first frame  {:.2} s after connecting",
        report.first_frame.as_secs_f64()
    );
}

/// Why a sub-stream does not fit its main stream for analysis, if it does not.
fn misfit(main: &Report, detect: &Report) -> Option<String> {
    probe::misfit((main.width, main.height), (detect.width, detect.height))
}

fn save(
    report: &Report,
    camera: Option<&crate::config::Camera>,
    path: &std::path::Path,
) -> anyhow::Result<()> {
    let mut overlays: Vec<Overlay<'_>> = Vec::new();
    if let Some(c) = camera {
        overlays.extend(c.zones.iter().map(|z| Overlay {
            polygon: &z.polygon,
            line: None,
        }));
        overlays.extend(c.lines.iter().map(|l| Overlay {
            polygon: &[],
            line: Some((l.a, l.b)),
        }));
    }
    let settings = EvidenceSettings {
        max_width: report.width.max(160),
        quality: 90,
        max_bytes: 16 << 20,
        on_update: false,
    };
    let view = report.frame.view();
    let jpeg = evidence::annotate(view, &overlays, &[], &settings)?;
    std::fs::write(path, &jpeg.bytes)?;
    Ok(())
}
