//! `vigil tail [--camera ID] [--type T]`: incident events live, as the agent stores them for
//! the broker, one readable line each (or the event JSON with `--json`). Runs until
//! interrupted or until the agent stops.

use std::process::ExitCode;
use std::time::Duration;

use serde_json::{Value, json};

use super::SocketArgs;
use crate::diag::client::Client;

/// Arguments of `vigil tail`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    socket: SocketArgs,
    /// Only this camera's incidents.
    #[arg(long, value_name = "ID")]
    camera: Option<String>,
    /// Only incidents of this type (intrusion, line_crossing, loitering, crowd, fire, smoke,
    /// camera_offline, camera_frozen, camera_tamper).
    #[arg(long = "type", value_name = "T")]
    kind: Option<String>,
    /// Print each event's JSON payload (one per line) instead of a readable line.
    #[arg(long)]
    json: bool,
}

/// Follow the stream.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let path = match args.socket.path() {
        Ok(p) => p,
        Err(code) => return Ok(code),
    };
    let request = json!({"request": "incidents", "camera": args.camera, "type": args.kind});
    let mut client = match Client::connect(&path)
        .and_then(|mut c| c.request(&request, Duration::from_secs(10)).map(|_| c))
    {
        Ok(c) => c,
        Err(e) => {
            eprintln!("vigil tail: {e}");
            return Ok(ExitCode::FAILURE);
        }
    };
    if let Err(e) = client.no_timeout() {
        eprintln!("vigil tail: {e}");
        return Ok(ExitCode::FAILURE);
    }
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    loop {
        let line = match client.next_reply() {
            Ok(Some(v)) => v,
            Ok(None) => {
                eprintln!("vigil tail: the agent stopped");
                return Ok(ExitCode::SUCCESS);
            }
            Err(e) => {
                eprintln!("vigil tail: {e}");
                return Ok(ExitCode::FAILURE);
            }
        };
        let text = if let Some(n) = line["lagged"].as_u64() {
            format!("… {n} events skipped (this terminal fell behind)")
        } else if args.json {
            line["incident"].to_string()
        } else {
            readable(&line["incident"])
        };
        if writeln!(stdout, "{text}")
            .and_then(|_| stdout.flush())
            .is_err()
        {
            // The reader went away (`vigil tail | head`).
            return Ok(ExitCode::SUCCESS);
        }
    }
}

/// One incident event as one line: time, camera, type and state, severity, where, what.
pub fn readable(e: &Value) -> String {
    let s = |k: &str| e[k].as_str().unwrap_or("");
    let time = e["frame_time"]
        .as_str()
        .or(e["time"].as_str())
        .unwrap_or("");
    let mut out = format!(
        "{time}  {}  {} {}  {}",
        s("camera"),
        s("type"),
        s("state"),
        s("severity")
    );
    for key in ["zone", "line", "direction", "reason"] {
        if let Some(v) = e[key].as_str() {
            out.push_str(&format!("  {key} {v}"));
        }
    }
    let objects: Vec<String> = e["objects"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|o| {
            let label = o["label"].as_str().unwrap_or("?");
            let score = o["score"].as_f64().unwrap_or(0.0);
            match o["track_id"].as_u64() {
                Some(t) => format!("{label} #{t} {score:.2}"),
                None => format!("{label} {score:.2}"),
            }
        })
        .collect();
    if !objects.is_empty() {
        out.push_str(&format!("  [{}]", objects.join(", ")));
    }
    out.push_str(&format!(
        "  seq {}  id {}",
        e["seq"].as_u64().unwrap_or(0),
        s("id")
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_reads_on_one_line() {
        let e = json!({"id": "0190", "seq": 41, "camera": "plaza", "type": "intrusion",
            "state": "open", "severity": "major", "zone": "walkway",
            "frame_time": "2026-11-28T03:14:42.803Z",
            "objects": [{"label": "person", "score": 0.957, "track_id": 1}]});
        assert_eq!(
            readable(&e),
            "2026-11-28T03:14:42.803Z  plaza  intrusion open  major  zone walkway  [person #1 0.96]  seq 41  id 0190"
        );
    }
}
