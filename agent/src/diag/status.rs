//! The `status`, `cameras` and `outbox` replies, read from the shared counters and gauges.

use std::path::Path;
use std::sync::PoisonError;
use std::sync::atomic::Ordering;
use std::time::{Instant, SystemTime};

use serde_json::{Value, json};

use super::Shared;
use crate::clock::{rfc3339_ms, unix_ms};
use crate::publish::inspect::Inspect;
use crate::publish::stats::outbox_json;

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

fn ms_time(ms: u64) -> SystemTime {
    std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms)
}

fn age_s(then_ms: u64) -> f64 {
    round1(unix_ms(SystemTime::now()).saturating_sub(then_ms) as f64 / 1000.0)
}

/// The whole status.
pub fn status(shared: &Shared) -> Value {
    let ob = shared.outbox.get();
    let mut broker = json!({
        "address": shared.broker,
        "connected": ob.connected,
    });
    if let Some(o) = broker.as_object_mut() {
        if let Some((at, since_ms)) = &ob.broker {
            o.insert("in_use".into(), json!(at));
            o.insert("since".into(), json!(rfc3339_ms(ms_time(*since_ms))));
        }
        if let Some(t) = ob.last_ack_ms {
            o.insert("last_puback_age_s".into(), json!(age_s(t)));
        }
        if let Some(e) = &ob.broker_error {
            o.insert("last_error".into(), json!(e));
        }
    }
    let mut v = json!({
        "version": env!("CARGO_PKG_VERSION"),
        "device": shared.identity.device,
        "district": shared.identity.district,
        "started_at": rfc3339_ms(shared.started_at),
        "uptime_s": shared.started.elapsed().as_secs(),
        "broker": broker,
        "outbox": outbox_json(&ob),
        "cameras": cameras(shared),
    });
    if let (Some(free), Some(o)) = (
        crate::telemetry::disk_free(&shared.state_dir),
        v.as_object_mut(),
    ) {
        o.insert("disk_free_bytes".into(), json!(free));
    }
    v
}

/// The camera's published state and reason, e.g. `streaming` or `offline: connection refused`.
pub fn camera_state(shared: &Shared, index: usize) -> String {
    let k = shared.board.counters(index);
    let p = k
        .published
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    match p {
        Some(p) => match p.reason {
            Some(r) => format!("{}: {r}", p.state),
            None => p.state.to_string(),
        },
        None => "connecting".into(),
    }
}

/// The main stream of a camera with a `detect_url` (received for evidence and clips only):
/// units received, reconnections, the last unit's age and the last failure.
fn main_stream(shared: &Shared, index: usize, now: Instant) -> Value {
    let k = shared.board.main_counters(index);
    let mut v = json!({
        "received_units": k.received.load(Ordering::Relaxed),
        "reconnects": k.reconnects.load(Ordering::Relaxed),
    });
    let last = *k.last_frame.lock().unwrap_or_else(PoisonError::into_inner);
    let error = k
        .link
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .last_error
        .clone();
    if let Some(o) = v.as_object_mut() {
        if let Some(t) = last {
            let age = now.saturating_duration_since(t).as_secs_f64();
            o.insert("last_unit_age_s".into(), json!(round1(age)));
        }
        if let Some(e) = error {
            o.insert("last_error".into(), json!(e));
        }
    }
    v
}

/// One line per camera.
pub fn cameras(shared: &Shared) -> Value {
    let latest = shared.health.get();
    let now = Instant::now();
    let configured = shared
        .cameras
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    let lines: Vec<Value> = configured
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let k = shared.board.counters(i);
            let published = k
                .published
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone();
            let (state, reason, since) = match (&published, c.enabled) {
                (_, false) => (
                    "offline",
                    Some("disabled in the configuration".to_string()),
                    None,
                ),
                (Some(p), true) => (p.state, p.reason.clone(), Some(p.since)),
                (None, true) => ("connecting", None, None),
            };
            let last_frame = *k.last_frame.lock().unwrap_or_else(PoisonError::into_inner);
            let mut v = json!({
                "camera": c.id,
                "enabled": c.enabled,
                "model": c.model,
                "state": state,
                "analysis_fps": c.analysis_fps,
                "decoded": k.decoded.load(Ordering::Relaxed),
                "thinned": k.thinned.load(Ordering::Relaxed),
                "skipped": k.skipped.load(Ordering::Relaxed),
                "misordered": k.misordered.load(Ordering::Relaxed),
                "missing": k.missing.load(Ordering::Relaxed),
                "packets_lost": k.packets_lost.load(Ordering::Relaxed),
                "packets_late": k.packets_late.load(Ordering::Relaxed),
                "received": k.received.load(Ordering::Relaxed),
                "analysed": k.analysed.load(Ordering::Relaxed),
                "dropped": k.dropped.load(Ordering::Relaxed),
                "reconnects": k.reconnects.load(Ordering::Relaxed),
                "decode_errors": k.decode_errors.load(Ordering::Relaxed),
                "open_incidents": k.open_incidents.load(Ordering::Relaxed),
            });
            let Some(o) = v.as_object_mut() else {
                return v;
            };
            if let Some(r) = reason {
                o.insert("reason".into(), json!(r));
            }
            if let Some(s) = since {
                o.insert("since".into(), json!(rfc3339_ms(s)));
            }
            let disarmed: Vec<Value> = shared
                .standing
                .of(&c.id)
                .iter()
                .filter(|d| d.holds(SystemTime::now()))
                .map(|d| d.to_json())
                .collect();
            if !disarmed.is_empty() {
                o.insert("disarmed".into(), Value::Array(disarmed));
            }
            if let Some(t) = last_frame {
                let age = now.saturating_duration_since(t).as_secs_f64();
                o.insert("last_frame_age_s".into(), json!(round1(age)));
            }
            if c.two_streams {
                o.insert("main_stream".into(), main_stream(shared, i, now));
            }
            if let Some((at, h)) = &latest
                && let Some(h) = h.iter().find(|h| h.camera == c.id)
            {
                let ago = SystemTime::now()
                    .duration_since(*at)
                    .unwrap_or_default()
                    .as_secs();
                o.insert(
                    "rates".into(),
                    json!({
                        "decoded_fps": h.decoded_fps,
                        "received_fps": h.received_fps,
                        "analysed_fps": h.analysed_fps,
                        "inference_ms_p50": h.inference_ms_p50,
                        "inference_ms_p99": h.inference_ms_p99,
                        "measured_s_ago": ago,
                    }),
                );
            }
            v
        })
        .collect();
    Value::Array(lines)
}

/// The first `n` outbox rows in delivery order, without payloads.
pub fn outbox_rows(path: &Path, n: usize) -> Result<Value, String> {
    let view = Inspect::open(path).map_err(|e| e.to_string())?;
    let rows = view.rows(n, false).map_err(|e| e.to_string())?;
    Ok(Value::Array(
        rows.into_iter()
            .map(|(r, _)| {
                let mut v = json!(r);
                if let Some(o) = v.as_object_mut() {
                    o.insert("age_s".into(), json!(age_s(r.created_ms)));
                }
                v
            })
            .collect(),
    ))
}
