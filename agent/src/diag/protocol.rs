//! The diagnostics protocol, pure: parsing request lines, shaping reply lines, filtering the
//! live incident stream. Newline-delimited JSON both ways; see `docs/diagnostics.md`.

use serde::Deserialize;
use serde_json::{Value, json};

/// Longest request line accepted (requests are a few dozen bytes).
pub const MAX_REQUEST_BYTES: usize = 4096;

/// Rows `outbox` lists unless asked otherwise, and the most it lists.
pub const DEFAULT_ROWS: usize = 20;
/// See [`DEFAULT_ROWS`].
pub const MAX_ROWS: usize = 1000;

/// One request.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "request", rename_all = "snake_case")]
pub enum Request {
    /// Everything `vigil status` shows.
    Status,
    /// The cameras' part of the status.
    Cameras,
    /// Outbox figures and its first rows in delivery order.
    Outbox {
        /// How many rows (default 20, at most 1000).
        #[serde(default = "default_rows")]
        rows: usize,
    },
    /// Stream incident events as they are stored, until the client hangs up.
    Incidents {
        /// Only this camera's.
        #[serde(default)]
        camera: Option<String>,
        /// Only this incident type (`intrusion`, `fire`, …).
        #[serde(default, rename = "type")]
        kind: Option<String>,
    },
    /// The next analysed frame of a camera as JPEG, zones, lines and detections drawn.
    Snapshot {
        /// Camera id.
        camera: String,
    },
    /// Re-read the configuration file and apply it.
    Reload,
}

fn default_rows() -> usize {
    DEFAULT_ROWS
}

/// Parse one request line (without its newline).
pub fn parse(line: &[u8]) -> Result<Request, String> {
    if line.len() > MAX_REQUEST_BYTES {
        return Err(format!(
            "request of {} bytes is over the {MAX_REQUEST_BYTES}-byte limit",
            line.len()
        ));
    }
    let text = std::str::from_utf8(line).map_err(|_| "request is not UTF-8".to_string())?;
    let value: Value =
        serde_json::from_str(text).map_err(|e| format!("request is not JSON: {e}"))?;
    let Some(name) = value
        .get("request")
        .and_then(Value::as_str)
        .map(str::to_string)
    else {
        return Err(format!(
            "a request is a JSON object with a \"request\" field, one of {}",
            NAMES.join(", ")
        ));
    };
    if !NAMES.contains(&name.as_str()) {
        return Err(format!(
            "unknown request \"{name}\"; known: {}",
            NAMES.join(", ")
        ));
    }
    let mut req: Request =
        serde_json::from_value(value).map_err(|e| format!("bad \"{name}\" request: {e}"))?;
    if let Request::Outbox { rows } = &mut req {
        *rows = (*rows).min(MAX_ROWS);
    }
    Ok(req)
}

/// Every request name.
pub const NAMES: &[&str] = &[
    "status",
    "cameras",
    "outbox",
    "incidents",
    "snapshot",
    "reload",
];

/// A success reply carrying `body` under `key`.
pub fn ok(key: &str, body: Value) -> Value {
    let mut v = json!({ "ok": true });
    if let Some(o) = v.as_object_mut() {
        o.insert(key.to_string(), body);
    }
    v
}

/// An error reply.
pub fn error(message: impl Into<String>) -> Value {
    json!({ "ok": false, "error": message.into() })
}

/// One reply line (with its newline).
pub fn line(v: &Value) -> Vec<u8> {
    let mut out = v.to_string().into_bytes();
    out.push(b'\n');
    out
}

/// Whether an incident event payload passes the stream's filter.
pub fn wanted(event: &Value, camera: Option<&str>, kind: Option<&str>) -> bool {
    camera.is_none_or(|c| event["camera"] == c) && kind.is_none_or(|k| event["type"] == k)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_parse_with_defaults_and_limits() {
        assert_eq!(parse(br#"{"request":"status"}"#), Ok(Request::Status));
        assert_eq!(
            parse(br#"{"request":"outbox"}"#),
            Ok(Request::Outbox { rows: DEFAULT_ROWS })
        );
        assert_eq!(
            parse(br#"{"request":"outbox","rows":999999}"#),
            Ok(Request::Outbox { rows: MAX_ROWS })
        );
        assert_eq!(
            parse(br#"{"request":"incidents","camera":"gate","type":"fire"}"#),
            Ok(Request::Incidents {
                camera: Some("gate".into()),
                kind: Some("fire".into())
            })
        );
    }

    #[test]
    fn bad_requests_get_a_message_that_says_what_is_wrong() {
        let e = parse(b"status").unwrap_err();
        assert!(e.contains("not JSON"), "{e}");
        let e = parse(br#"{"cmd":"status"}"#).unwrap_err();
        assert!(
            e.contains("\"request\" field") && e.contains("snapshot"),
            "{e}"
        );
        let e = parse(br#"{"request":"reboot"}"#).unwrap_err();
        assert!(e.contains("unknown request \"reboot\""), "{e}");
        let e = parse(br#"{"request":"snapshot"}"#).unwrap_err();
        assert!(
            e.contains("bad \"snapshot\" request") && e.contains("camera"),
            "{e}"
        );
        let e = parse(&[b' '; MAX_REQUEST_BYTES + 1]).unwrap_err();
        assert!(e.contains("over the 4096-byte limit"), "{e}");
        assert!(parse(&[0xff, 0xfe]).unwrap_err().contains("UTF-8"));
    }

    #[test]
    fn the_stream_filter_matches_camera_and_type() {
        let e = json!({"camera": "gate", "type": "intrusion"});
        assert!(wanted(&e, None, None));
        assert!(wanted(&e, Some("gate"), Some("intrusion")));
        assert!(!wanted(&e, Some("yard"), None));
        assert!(!wanted(&e, None, Some("fire")));
    }

    #[test]
    fn replies_are_one_line_each() {
        let l = line(&ok("status", json!({"a": 1})));
        assert_eq!(l.iter().filter(|&&b| b == b'\n').count(), 1);
        assert_eq!(
            error("nope"),
            json!({"ok": false, "error": "nope"}),
            "error shape"
        );
    }
}
