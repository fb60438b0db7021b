//! The outbox's figures as JSON: what the health message and the diagnostics socket report of
//! the transport.

use std::time::SystemTime;

use serde_json::json;

use crate::clock::unix_ms;

/// The outbox figures as health (and the diagnostics socket) report them: bytes, bound,
/// acknowledged messages, dead letters (kept in the file, and the smallest message the broker
/// refused) and per lane depth, evictions, dead letters and age of the oldest row.
pub fn outbox_json(outbox: &super::OutboxStats) -> serde_json::Value {
    let now_ms = unix_ms(SystemTime::now());
    let mut lanes = serde_json::Map::new();
    for (i, lane) in super::outbox::LANES.iter().enumerate() {
        let mut l = json!({
            "depth": outbox.depth[i],
            "evicted": outbox.evicted[i],
            "dead_letters": outbox.dead_letters[i],
        });
        if let (Some(t), Some(obj)) = (outbox.oldest_ms[i], l.as_object_mut()) {
            let age = now_ms.saturating_sub(t) as f64 / 1000.0;
            obj.insert("oldest_age_s".into(), json!((age * 10.0).round() / 10.0));
        }
        lanes.insert(super::durable::lane_name(*lane).into(), l);
    }
    let mut v = json!({
        "bytes": outbox.bytes,
        "max_bytes": outbox.max_bytes,
        "acked": outbox.acked,
        "dead_letters_stored": outbox.dead_stored,
        "durable": outbox.store_error.is_none(),
        "not_durable": outbox.not_durable,
        "lanes": lanes,
    });
    if let Some(obj) = v.as_object_mut() {
        if let Some(r) = outbox.refused_at {
            obj.insert("broker_refused_bytes".into(), json!(r));
        }
        if let Some(e) = &outbox.store_error {
            obj.insert("store_error".into(), json!(e));
        }
    }
    v
}
