//! `vigil-demo` (`make demo`): everything on one machine, for real. An embedded MQTT broker
//! (rumqttd) and an embedded RTSP server (gst-rtsp-server) looping the bundled plaza clip start
//! on free loopback ports; the agent runs with the bundled model and a zone on the walkway; a
//! subscriber prints each incident as it arrives and saves the evidence JPEGs into the output
//! folder. Its own binary, so the `vigil` that goes onto a box carries neither server.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};

use vigil::agent::{self, Plan};
use vigil::cmd::{logging, report_start_error, run::shutdown_signal};
use vigil_demo::{self as demo, rtsp};

/// vigil-demo — the vigil agent on one machine: an embedded RTSP server and MQTT broker on
/// loopback, incidents printed live (`make demo`).
#[derive(Debug, Parser)]
#[command(name = "vigil-demo", version)]
pub struct Args {
    /// Video served as the camera (H.264/H.265 in MP4/MKV), looped.
    #[arg(
        long,
        value_name = "FILE",
        default_value = "tests/fixtures/plaza_25s.mp4"
    )]
    pub clip: PathBuf,
    /// Video served as a second camera, a fire-watch camera on the built-in fire and smoke
    /// detector (real flames: the CC0 FURG clip), looped. An empty value leaves it out.
    #[arg(
        long,
        value_name = "FILE",
        default_value = "tests/fixtures/furg_house6_fire_smoke_cc0.mp4",
        // A path parser refuses an empty value, which is how the camera is left out.
        value_parser = clap::builder::ValueParser::os_string()
    )]
    pub fire_clip: std::ffi::OsString,
    /// Model card to use.
    #[arg(
        long,
        value_name = "FILE",
        default_value = "models/ssd_mobilenet_v2_coco/model.toml"
    )]
    pub card: PathBuf,
    /// Folder for the demo config and the evidence JPEGs.
    #[arg(long, value_name = "DIR", default_value = "demo-out")]
    pub out: PathBuf,
    /// Stop after this many seconds (default: run until Ctrl-C).
    #[arg(long, value_name = "SECONDS")]
    pub duration: Option<f64>,
    /// Log format on stderr.
    #[arg(long, value_enum, default_value = "auto")]
    pub log_format: logging::LogFormat,
}

fn main() -> ExitCode {
    let args = Args::parse();
    // The demo prints incidents on stdout; keep its log to warnings unless asked (RUST_LOG).
    logging::init(args.log_format, "warn,rumqttd=off,rumqttc=error");
    run(args).unwrap_or_else(|e| {
        eprintln!("vigil-demo: {e:#}");
        ExitCode::FAILURE
    })
}

/// Run the demo.
fn run(args: Args) -> anyhow::Result<ExitCode> {
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    let card = std::fs::canonicalize(&args.card).with_context(|| {
        format!(
            "model card {} not found (run from the repository root or pass --card)",
            args.card.display()
        )
    })?;
    let started = Instant::now();

    let clip = rtsp::Clip::load(&args.clip)
        .context("loading the demo clip (run from the repository root or pass --clip)")?;
    let mut mounts = vec![("plaza", Arc::new(clip))];
    let fire_clip = PathBuf::from(&args.fire_clip);
    let with_fire = !fire_clip.as_os_str().is_empty();
    if with_fire {
        let fire = rtsp::Clip::load(&fire_clip).context(
            "loading the demo's fire clip (run from the repository root, pass --fire-clip, or --fire-clip '' to leave it out)",
        )?;
        mounts.push(("hillside", Arc::new(fire)));
    }
    let server = rtsp::RtspServer::start(&mounts)?;
    let broker_port = demo::free_port()?;
    demo::start_broker(broker_port).map_err(anyhow::Error::msg)?;
    let camera_url = server.url("plaza");
    let fire_url = with_fire.then(|| server.url("hillside"));

    let config_path = args.out.join("vigil-demo.toml");
    std::fs::write(
        &config_path,
        demo::config_text(broker_port, &camera_url, fire_url.as_deref(), &card),
    )?;
    let loaded = match vigil::config::load(&config_path) {
        Ok(l) => l,
        Err(e) => return Ok(report_start_error(&agent::StartError::Config(e))),
    };
    let plan = match Plan::build(loaded) {
        Ok(p) => p,
        Err(e) => return Ok(report_start_error(&e)),
    };
    println!("vigil-demo");
    println!("  camera  {camera_url}  (looping {})", args.clip.display());
    if let Some(url) = &fire_url {
        println!(
            "  camera  {url}  (fire watch, built-in detector, looping {})",
            fire_clip.display()
        );
    }
    println!("  broker  mqtt://127.0.0.1:{broker_port}  (subscribe to vigil/v1/#)");
    println!("  config  {}", config_path.display());
    println!("  output  {}/", args.out.display());
    println!("Waiting for incidents (Ctrl-C to stop)…");

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let out_dir = args.out.clone();
    let first = Arc::new(std::sync::Mutex::new(None::<Duration>));
    let report = rt.block_on(async {
        let first2 = Arc::clone(&first);
        let subscriber = tokio::spawn(subscribe(broker_port, out_dir, started, first2));
        let duration = args.duration;
        let stop = async move {
            match duration {
                Some(s) => {
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_secs_f64(s)) => {}
                        _ = shutdown_signal() => {}
                    }
                }
                None => shutdown_signal().await,
            }
        };
        let report = agent::run(plan, stop).await;
        // Give the subscriber a moment to print the last messages.
        tokio::time::sleep(Duration::from_millis(300)).await;
        subscriber.abort();
        report
    });
    drop(server);
    let report = match report {
        Ok(r) => r,
        Err(e) => return Ok(report_start_error(&e)),
    };
    let elapsed = started.elapsed().as_secs_f64();
    println!();
    println!("Summary");
    match *first
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
    {
        Some(t) => println!("  first incident after   {:.1} s", t.as_secs_f64()),
        None => println!("  no incident received"),
    }
    for (cam, n) in &report.analysed {
        println!(
            "  {cam}: analysed {n} frames, {:.1} fps",
            *n as f64 / elapsed.max(0.001)
        );
    }
    println!("  incident events        {}", report.session.events);
    if let Some(kib) = vigil::os::memory::peak_rss_kib() {
        println!("  peak RSS (whole demo)  {:.0} MiB", kib as f64 / 1024.0);
    }
    Ok(ExitCode::SUCCESS)
}

async fn subscribe(
    port: u16,
    out: PathBuf,
    started: Instant,
    first: Arc<std::sync::Mutex<Option<Duration>>>,
) {
    let mut opts = MqttOptions::new("vigil-demo-viewer", "127.0.0.1", port);
    opts.set_max_packet_size(8 << 20, 8 << 20);
    let (client, mut events) = AsyncClient::new(opts, 16);
    let (mut pinged, mut snapped, mut clipped) = (false, false, false);
    // The clip the centre asked for: its answer, and the chunks received so far.
    let mut clip: Option<serde_json::Value> = None;
    let mut chunks: std::collections::HashMap<String, Vec<u8>> = Default::default();
    loop {
        match events.poll().await {
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                let _ = client.subscribe("vigil/v1/#", QoS::AtLeastOnce).await;
            }
            Ok(Event::Incoming(Packet::Publish(p))) => {
                if p.topic.ends_with("/status")
                    && !p.topic.contains("/cameras/")
                    && !pinged
                    && p.payload.windows(8).any(|w| w == b"\"online\"")
                {
                    // Once the box is online, command it as the centre would.
                    pinged = true;
                    let topic = p.topic.replace("/status", "/cmd/ping");
                    let body = serde_json::json!({
                        "id": uuid::Uuid::now_v7().to_string(),
                        "sent_at": vigil::clock::rfc3339_ms(std::time::SystemTime::now()),
                    });
                    println!("[command] ping sent to {topic}");
                    let _ = client
                        .publish(topic, QoS::AtLeastOnce, false, body.to_string())
                        .await;
                }
                if p.topic.ends_with("/cmd/ping/result") && !snapped {
                    // Then ask for a fresh picture of the camera, as an operator would.
                    snapped = true;
                    let topic = p.topic.replace("/cmd/ping/result", "/cmd/snapshot");
                    let body = serde_json::json!({
                        "id": uuid::Uuid::now_v7().to_string(),
                        "sent_at": vigil::clock::rfc3339_ms(std::time::SystemTime::now()),
                        "camera": "plaza",
                    });
                    println!("[command] snapshot of camera plaza asked on {topic}");
                    let _ = client
                        .publish(topic, QoS::AtLeastOnce, false, body.to_string())
                        .await;
                }
                if p.topic.contains("/incidents/") && !clipped {
                    // And for a clip of the first incident: from before it opened to after.
                    let open = serde_json::from_slice::<serde_json::Value>(&p.payload)
                        .ok()
                        .filter(|v| v["state"] == "open");
                    if let Some(v) = open {
                        clipped = true;
                        let root = p.topic.split("/incidents/").next().unwrap_or_default();
                        let topic = format!("{root}/cmd/clip");
                        let body = serde_json::json!({
                            "id": uuid::Uuid::now_v7().to_string(),
                            "sent_at": vigil::clock::rfc3339_ms(std::time::SystemTime::now()),
                            "incident": v["id"],
                        });
                        println!(
                            "[command] clip of incident {} asked on {topic}",
                            v["id"].as_str().unwrap_or("?")
                        );
                        let _ = client
                            .publish(topic, QoS::AtLeastOnce, false, body.to_string())
                            .await;
                    }
                }
                if p.topic.contains("/cmd/") && !p.topic.ends_with("/result") {
                    continue; // our own request, echoed by the subscription
                }
                if p.topic.contains("/clip/") && !p.topic.contains("/cmd/") {
                    chunks.insert(p.topic.clone(), p.payload.to_vec());
                    save_clip(&out, clip.as_ref(), &mut chunks);
                    continue;
                }
                if p.topic.ends_with("/cmd/clip/result") {
                    clip = serde_json::from_slice::<serde_json::Value>(&p.payload)
                        .ok()
                        .map(|v| v["answer"].clone())
                        .filter(|a| a.is_object());
                    save_clip(&out, clip.as_ref(), &mut chunks);
                }
                if p.topic.ends_with("/clip") {
                    // An incident's clip, announced after its chunks (fire opens get one).
                    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&p.payload) {
                        println!(
                            "[clip]    {} on {}: {:.1} s, {} frames, {} bytes",
                            v["type"].as_str().unwrap_or("?"),
                            v["camera"].as_str().unwrap_or("?"),
                            v["duration_s"].as_f64().unwrap_or(0.0),
                            v["frames"].as_u64().unwrap_or(0),
                            v["bytes"].as_u64().unwrap_or(0)
                        );
                        save_clip(&out, Some(&v), &mut chunks);
                    }
                    continue;
                }
                if p.topic.contains("/cameras/") && p.topic.contains("/snapshot/") {
                    let camera = p.topic.split('/').nth(5).unwrap_or("camera");
                    let path = out.join(format!("snapshot-{camera}.jpg"));
                    match std::fs::write(&path, &p.payload) {
                        Ok(()) => println!("          picture → {}", path.display()),
                        Err(e) => eprintln!("cannot write {}: {e}", path.display()),
                    }
                } else if p.topic.ends_with("/snapshot") {
                    let id = p.topic.rsplit('/').nth(1).unwrap_or("incident");
                    let path = out.join(format!("{id}.jpg"));
                    match std::fs::write(&path, &p.payload) {
                        Ok(()) => println!("          evidence → {}", path.display()),
                        Err(e) => eprintln!("cannot write {}: {e}", path.display()),
                    }
                } else if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&p.payload) {
                    if p.topic.contains("/incidents/") {
                        let mut f = first
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner);
                        if f.is_none() {
                            *f = Some(started.elapsed());
                        }
                    }
                    println!("{}", describe(&p.topic, &v));
                }
            }
            Ok(_) => {}
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

/// Once every chunk of the clip `answer` describes is in `chunks`, put them together, check
/// the sha256 and save the file as `clip-{incident}.mp4` (or `clip-{camera}.mp4`) in `out`.
fn save_clip(
    out: &std::path::Path,
    answer: Option<&serde_json::Value>,
    chunks: &mut std::collections::HashMap<String, Vec<u8>>,
) {
    let Some(a) = answer else {
        return;
    };
    let (Some(topic), Some(n)) = (a["topic"].as_str(), a["chunks"].as_array().map(Vec::len)) else {
        return;
    };
    let names: Vec<String> = (0..n).map(|i| format!("{topic}/{i}")).collect();
    if !names.iter().all(|t| chunks.contains_key(t)) {
        return;
    }
    let file: Vec<u8> = names
        .iter()
        .filter_map(|t| chunks.remove(t))
        .flatten()
        .collect();
    if a["sha256"].as_str() != Some(vigil::hash::sha256_hex(&file).as_str()) {
        eprintln!("the clip's chunks do not match its sha256");
        return;
    }
    let name = a["incident"]
        .as_str()
        .or(a["camera"].as_str())
        .unwrap_or("clip");
    let path = out.join(format!("clip-{name}.mp4"));
    match std::fs::write(&path, &file) {
        Ok(()) => println!(
            "          clip → {} ({} bytes, sha256 checked)",
            path.display(),
            file.len()
        ),
        Err(e) => eprintln!("cannot write {}: {e}", path.display()),
    }
}

/// One readable line for a message of the contract.
pub fn describe(topic: &str, v: &serde_json::Value) -> String {
    let s = |k: &str| v.get(k).and_then(|x| x.as_str()).unwrap_or("?").to_string();
    if topic.contains("/cameras/") && topic.ends_with("/status") {
        let why = v
            .get("reason")
            .and_then(|x| x.as_str())
            .map(|r| format!(" ({r})"));
        return format!(
            "[camera]  {} is {}{}",
            s("camera"),
            s("state").to_uppercase(),
            why.unwrap_or_default()
        );
    }
    if topic.ends_with("/status") {
        return format!("[status]  {} is {}", s("device"), s("state").to_uppercase());
    }
    if topic.ends_with("/result") {
        let a = &v["answer"];
        return match v["ok"].as_bool() {
            Some(true) if s("command") == "snapshot" => format!(
                "[command] snapshot answered: camera {}, {}×{}, {} bytes on {}",
                a["camera"].as_str().unwrap_or("?"),
                a["width"].as_u64().unwrap_or(0),
                a["height"].as_u64().unwrap_or(0),
                a["bytes"].as_u64().unwrap_or(0),
                a["topic"].as_str().unwrap_or("?")
            ),
            Some(true) if s("command") == "clip" => format!(
                "[command] clip answered: camera {}, {:.1} s, {} frames, {} bytes in {} chunk(s) on {}/…",
                a["camera"].as_str().unwrap_or("?"),
                a["duration_s"].as_f64().unwrap_or(0.0),
                a["frames"].as_u64().unwrap_or(0),
                a["bytes"].as_u64().unwrap_or(0),
                a["chunks"].as_array().map_or(0, Vec::len),
                a["topic"].as_str().unwrap_or("?")
            ),
            Some(true) if s("command") != "ping" => {
                format!("[command] {} answered: {a}", s("command"))
            }
            Some(true) => format!(
                "[command] {} answered: version {}, up {} s, config sha256 {:.12}…",
                s("command"),
                a["version"].as_str().unwrap_or("?"),
                a["uptime_s"].as_u64().unwrap_or(0),
                a["config_sha256"].as_str().unwrap_or("?")
            ),
            _ => format!(
                "[command] {} refused: {}",
                s("command"),
                v["error"]["message"].as_str().unwrap_or("?")
            ),
        };
    }
    if topic.ends_with("/health") {
        let cams: Vec<String> = v["cameras"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|c| {
                        format!(
                            "{} {:.1} fps, {:.0} ms",
                            c["camera"].as_str().unwrap_or("?"),
                            c["analysed_fps"].as_f64().unwrap_or(0.0),
                            c["inference_ms_p50"].as_f64().unwrap_or(0.0)
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        return format!("[health]  {}", cams.join("; "));
    }
    let time = s("frame_time");
    let clock = time.get(11..23).unwrap_or(&time).to_string();
    let objects: Vec<String> = v
        .get("objects")
        .and_then(|o| o.as_array())
        .map(|a| {
            a.iter()
                .map(|o| {
                    let track = o["track_id"].as_u64().map(|t| format!(" #{t}"));
                    format!(
                        "{}{} {:.2}",
                        o["label"].as_str().unwrap_or("?"),
                        track.unwrap_or_default(),
                        o["score"].as_f64().unwrap_or(0.0)
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    format!(
        "{clock}  {:<6} {} {:<9} {}/{}  {}  seq={} id={}",
        s("state").to_uppercase(),
        s("severity"),
        s("type"),
        s("camera"),
        v.get("zone")
            .or(v.get("line"))
            .and_then(|x| x.as_str())
            .unwrap_or("-"),
        if objects.is_empty() {
            "-".to_string()
        } else {
            objects.join(", ")
        },
        v.get("seq").and_then(|x| x.as_u64()).unwrap_or(0),
        s("id")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_results_read_as_one_line_each() {
        let topic = "vigil/v1/demo/b/cmd/snapshot/result";
        let snap = serde_json::json!({"command": "snapshot", "ok": true, "answer": {
            "camera": "plaza", "width": 768, "height": 576, "bytes": 73659,
            "topic": "vigil/v1/demo/b/cameras/plaza/snapshot/x"}});
        assert_eq!(
            describe(topic, &snap),
            "[command] snapshot answered: camera plaza, 768×576, 73659 bytes on vigil/v1/demo/b/cameras/plaza/snapshot/x"
        );
        let refused = serde_json::json!({"command": "snapshot", "ok": false,
            "error": {"code": "no_frame", "message": "no analysed frame"}});
        assert_eq!(
            describe(topic, &refused),
            "[command] snapshot refused: no analysed frame"
        );
    }
}
