//! `vigil status`: one screen about the running agent, read from its diagnostics socket —
//! version, uptime, broker link and last PUBACK, outbox per lane, and per camera its state,
//! frame rates, last frame, inference time, reconnects and open incidents. `--json` prints
//! the agent's reply as it is (documented in `docs/diagnostics.md`).

use std::fmt::Write as _;
use std::process::ExitCode;
use std::time::Duration;

use serde_json::{Value, json};

use super::SocketArgs;
use crate::diag::client::Client;

/// Arguments of `vigil status`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    socket: SocketArgs,
    /// Print the JSON reply instead of the readable screen.
    #[arg(long)]
    json: bool,
}

/// Ask the agent and print.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let path = match args.socket.path() {
        Ok(p) => p,
        Err(code) => return Ok(code),
    };
    let reply = Client::connect(&path)
        .and_then(|mut c| c.request(&json!({"request": "status"}), Duration::from_secs(10)));
    let status = match reply {
        Ok(v) => v["status"].clone(),
        Err(e) => {
            eprintln!("vigil status: {e}");
            return Ok(ExitCode::FAILURE);
        }
    };
    if args.json {
        println!("{status}");
    } else {
        print!("{}", render(&status));
    }
    Ok(ExitCode::SUCCESS)
}

/// `3h 02m`, `4m 10s`, `12s`.
pub fn human_duration(secs: u64) -> String {
    let (d, h, m, s) = (secs / 86400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, _) => format!("{m}m {s:02}s"),
        (0, _, _) => format!("{h}h {m:02}m"),
        _ => format!("{d}d {h:02}h"),
    }
}

/// `512 MiB`, `3.2 KiB`.
pub fn human_bytes(b: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = b as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{b} B")
    } else if v < 10.0 {
        format!("{v:.1} {}", UNITS[u])
    } else {
        format!("{v:.0} {}", UNITS[u])
    }
}

fn num(v: &Value) -> String {
    match v.as_f64() {
        Some(x) if x.fract() == 0.0 => format!("{x:.0}"),
        Some(x) => format!("{x:.1}"),
        None => "-".into(),
    }
}

/// The readable screen for a `status` reply.
pub fn render(s: &Value) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "vigil {} · device {} (district {}) · up {}",
        s["version"].as_str().unwrap_or("?"),
        s["device"].as_str().unwrap_or("?"),
        s["district"].as_str().unwrap_or("?"),
        human_duration(s["uptime_s"].as_u64().unwrap_or(0))
    );
    let b = &s["broker"];
    let link = if b["connected"] == true {
        match (b["in_use"].as_str(), b["since"].as_str()) {
            (Some(at), Some(since)) => format!("connected to {at} since {since}"),
            _ => "connected".to_string(),
        }
    } else {
        match b["last_error"].as_str() {
            Some(e) => format!("NOT CONNECTED ({e})"),
            None => "NOT CONNECTED (connecting)".into(),
        }
    };
    let ack = match b["last_puback_age_s"].as_f64() {
        Some(a) => format!("last PUBACK {} ago", human_duration(a as u64)),
        None => "no PUBACK yet".into(),
    };
    let _ = writeln!(
        out,
        "broker   {}  {link} · {ack}",
        b["address"].as_str().unwrap_or("?")
    );
    let o = &s["outbox"];
    let mut lanes = Vec::new();
    let mut evicted = 0;
    for lane in ["fire", "security", "health", "telemetry"] {
        let l = &o["lanes"][lane];
        evicted += l["evicted"].as_u64().unwrap_or(0);
        let mut t = format!("{lane} {}", l["depth"].as_u64().unwrap_or(0));
        if let Some(age) = l["oldest_age_s"].as_f64() {
            let _ = write!(t, " (oldest {})", human_duration(age as u64));
        }
        lanes.push(t);
    }
    let _ = writeln!(
        out,
        "outbox   {} · {} of {} · {} acked · {} evicted",
        lanes.join(" · "),
        human_bytes(o["bytes"].as_u64().unwrap_or(0)),
        human_bytes(o["max_bytes"].as_u64().unwrap_or(0)),
        o["acked"].as_u64().unwrap_or(0),
        evicted
    );
    let dead = o["dead_letters_stored"].as_u64().unwrap_or(0);
    if dead > 0 {
        let refused = o["broker_refused_bytes"]
            .as_u64()
            .map_or(String::new(), |b| {
                format!(" (the broker refused a {} message)", human_bytes(b))
            });
        let _ = writeln!(
            out,
            "         {dead} dead letter(s){refused}: vigil outbox dead"
        );
    }
    if o["durable"] == false {
        let _ = writeln!(
            out,
            "         NOT DURABLE: {}; {} message(s) kept in memory only since start",
            o["store_error"]
                .as_str()
                .unwrap_or("the outbox file cannot be used"),
            o["not_durable"].as_u64().unwrap_or(0)
        );
    }
    if let Some(free) = s["disk_free_bytes"].as_u64() {
        let _ = writeln!(out, "disk     {} free", human_bytes(free));
    }
    let _ = writeln!(out);
    let header = [
        "CAMERA",
        "STATE",
        "FPS CAM/IN/ANALYSED",
        "DROPPED",
        "LOST FR/PKT",
        "LAST FRAME",
        "INFER P50/P99",
        "RECONN",
        "DEC ERR",
        "OPEN",
    ];
    let mut rows: Vec<[String; 10]> = vec![header.map(String::from)];
    let mut reasons = Vec::new();
    let mut stood_down = Vec::new();
    let mut mains = Vec::new();
    for c in s["cameras"].as_array().into_iter().flatten() {
        let id = c["camera"].as_str().unwrap_or("?").to_string();
        if c["main_stream"].is_object() {
            mains.push(main_stream_line(&id, &c["main_stream"]));
        }
        let r = &c["rates"];
        let (fps, infer) = if r.is_object() {
            (
                format!(
                    "{}/{}/{}",
                    num(&r["decoded_fps"]),
                    num(&r["received_fps"]),
                    num(&r["analysed_fps"])
                ),
                format!(
                    "{}/{} ms",
                    num(&r["inference_ms_p50"]),
                    num(&r["inference_ms_p99"])
                ),
            )
        } else {
            ("-".into(), "-".into())
        };
        let last = c["last_frame_age_s"]
            .as_f64()
            .map_or("never".into(), |a| format!("{a:.1}s ago"));
        if let Some(reason) = c["reason"].as_str() {
            reasons.push(format!("  {id}: {reason}"));
        }
        for d in c["disarmed"].as_array().into_iter().flatten() {
            stood_down.push(stood_down_line(&id, d));
        }
        rows.push([
            id,
            c["state"].as_str().unwrap_or("?").to_string(),
            fps,
            num(&c["dropped"]),
            format!("{}/{}", num(&c["missing"]), num(&c["packets_lost"])),
            last,
            infer,
            num(&c["reconnects"]),
            num(&c["decode_errors"]),
            num(&c["open_incidents"]),
        ]);
    }
    let widths: Vec<usize> = (0..10)
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    for r in &rows {
        let line: Vec<String> = r
            .iter()
            .zip(&widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        let _ = writeln!(out, "{}", line.join("  ").trim_end());
    }
    if !reasons.is_empty() {
        let _ = writeln!(out, "\nwhy:\n{}", reasons.join("\n"));
    }
    if !stood_down.is_empty() {
        let _ = writeln!(
            out,
            "\nstood down by the centre (no incident opens):\n{}",
            stood_down.join("\n")
        );
    }
    if !mains.is_empty() {
        let _ = writeln!(
            out,
            "\nmain streams (detect_url cameras: evidence and clips):\n{}",
            mains.join("\n")
        );
    }
    out
}

/// `  CAMERA last unit 0.1s ago, N units, M reconnects[; last error: …]`.
fn main_stream_line(camera: &str, m: &Value) -> String {
    let last = m["last_unit_age_s"]
        .as_f64()
        .map_or("no unit yet".into(), |a| format!("last unit {a:.1}s ago"));
    let mut line = format!(
        "  {camera} {last}, {} units, {} reconnects",
        num(&m["received_units"]),
        num(&m["reconnects"])
    );
    if let Some(e) = m["last_error"].as_str() {
        line.push_str(&format!("; last error: {e}"));
    }
    line
}

/// `  CAMERA TARGET[ and fire] until T|until armed again[, by WHO][: REASON]`.
fn stood_down_line(camera: &str, d: &Value) -> String {
    let mut line = format!("  {camera} {}", d["target"].as_str().unwrap_or("?"));
    if d["fire"] == true {
        line.push_str(" and FIRE");
    }
    match d["until"].as_str() {
        Some(t) => line.push_str(&format!(" until {t}")),
        None => line.push_str(" until armed again"),
    }
    if let Some(by) = d["by"].as_str() {
        line.push_str(&format!(", by {by}"));
    }
    if let Some(r) = d["reason"].as_str() {
        line.push_str(&format!(": {r}"));
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_sizes_read_like_a_person_would_write_them() {
        assert_eq!(human_duration(12), "12s");
        assert_eq!(human_duration(250), "4m 10s");
        assert_eq!(human_duration(3 * 3600 + 120), "3h 02m");
        assert_eq!(human_duration(2 * 86400 + 3600), "2d 01h");
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(3 << 10), "3.0 KiB");
        assert_eq!(human_bytes(512 << 20), "512 MiB");
    }

    #[test]
    fn the_screen_shows_the_broker_lanes_and_each_camera() {
        let s = json!({
            "version": "0.1.0", "device": "box-1", "district": "d7", "uptime_s": 7322,
            "broker": {"address": "mqtt.local:8883", "connected": false, "last_error": "connection refused"},
            "outbox": {"bytes": 2048, "max_bytes": 536870912, "acked": 9,
                "dead_letters_stored": 2, "broker_refused_bytes": 74304,
                "durable": false, "not_durable": 12,
                "store_error": "outbox /var/lib/vigil/outbox.db: the file system is full: database or disk is full",
                "lanes": {"fire": {"depth": 1, "evicted": 0, "oldest_age_s": 65.0},
                          "security": {"depth": 0, "evicted": 2}, "health": {"depth": 0, "evicted": 0},
                          "telemetry": {"depth": 3, "evicted": 1}}},
            "disk_free_bytes": 1073741824u64,
            "cameras": [
                {"camera": "gate", "state": "streaming", "received": 10, "dropped": 0,
                 "missing": 3, "packets_lost": 41,
                 "reconnects": 1, "decode_errors": 0, "open_incidents": 2, "last_frame_age_s": 0.2,
                 "disarmed": [{"target": "zone:door", "fire": false, "since": "2026-12-06T10:00:00.000Z",
                               "until": "2026-12-06T22:00:00.000Z", "by": "op7", "reason": "festival"}],
                 "rates": {"decoded_fps": 25.0, "received_fps": 5.0, "analysed_fps": 4.9, "inference_ms_p50": 52.4, "inference_ms_p99": 61.0}},
                {"camera": "yard", "state": "offline", "reason": "connection refused", "dropped": 0,
                 "reconnects": 7, "decode_errors": 0, "open_incidents": 0,
                 "main_stream": {"received_units": 1500, "reconnects": 2, "last_unit_age_s": 31.5,
                                 "last_error": "no frame for 10 s (stall watchdog; the pipeline is rebuilt)"}}
            ]
        });
        let text = render(&s);
        assert!(
            text.contains("main streams (detect_url cameras: evidence and clips):\n  yard last unit 31.5s ago, 1500 units, 2 reconnects; last error: no frame for 10 s"),
            "{text}"
        );
        assert!(text.contains("up 2h 02m"), "{text}");
        assert!(
            text.contains("  gate zone:door until 2026-12-06T22:00:00.000Z, by op7: festival"),
            "{text}"
        );
        assert!(
            text.contains("NOT CONNECTED (connection refused) · no PUBACK yet"),
            "{text}"
        );
        assert!(text.contains("fire 1 (oldest 1m 05s)"), "{text}");
        assert!(
            text.contains("3 evicted") && text.contains("1.0 GiB free"),
            "{text}"
        );
        assert!(
            text.contains("2 dead letter(s) (the broker refused a 73 KiB message)"),
            "{text}"
        );
        assert!(
            text.contains("NOT DURABLE: outbox /var/lib/vigil/outbox.db: the file system is full")
                && text.contains("12 message(s) kept in memory only"),
            "{text}"
        );
        let gate = text
            .lines()
            .find(|l| l.starts_with("gate"))
            .unwrap_or_default();
        assert!(
            gate.contains("25/5/4.9")
                && gate.contains("3/41")
                && gate.contains("52.4/61 ms")
                && gate.contains("0.2s ago"),
            "{gate}"
        );
        let yard = text
            .lines()
            .find(|l| l.starts_with("yard"))
            .unwrap_or_default();
        assert!(yard.contains("offline") && yard.contains("never"), "{yard}");
        assert!(text.contains("yard: connection refused"), "{text}");
    }
}
