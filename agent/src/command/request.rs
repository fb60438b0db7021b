//! A command request as it arrives on `vigil/v1/{district}/{device}/cmd/{command}`: which
//! command, its `id` and `sent_at`, and its arguments, or why it is refused. Pure.

use std::time::{Duration, SystemTime};

use serde_json::{Map, Value};

/// A request that may be acted on.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// The command (from the topic).
    pub command: String,
    /// The request id (a UUID, as sent).
    pub id: String,
    /// When the centre sent it.
    pub sent_at: SystemTime,
    /// The other fields of the request: the command's arguments.
    pub args: Map<String, Value>,
    /// The whole request as it came (for its signature).
    pub raw: Map<String, Value>,
}

/// Why a request is refused: an error code and a message a person can act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The command (from the topic), to address the result.
    pub command: String,
    /// The request id, when the request had a readable one.
    pub id: Option<String>,
    /// `bad_request`, `expired`, `unknown_command` or `disabled`.
    pub code: &'static str,
    /// What is wrong and what to do.
    pub message: String,
}

/// Read the request `payload` that arrived on `topic`, addressed under `prefix`
/// (`vigil/v1/{district}/{device}/cmd/`), at `now`: refused when it is not a JSON object with a
/// UUID `id` and an RFC 3339 `sent_at` within `max_age` of `now` (either way), or names a
/// command not in `allowed`.
pub fn parse(
    prefix: &str,
    topic: &str,
    payload: &[u8],
    now: SystemTime,
    max_age: Duration,
    allowed: &[String],
) -> Result<Request, Refusal> {
    let command = topic.strip_prefix(prefix).unwrap_or(topic).to_string();
    let refuse = |id: Option<String>, code, message: String| Refusal {
        command: command.clone(),
        id,
        code,
        message,
    };
    let Ok(Value::Object(raw)) = serde_json::from_slice::<Value>(payload) else {
        return Err(refuse(
            None,
            "bad_request",
            "the request is not a JSON object".into(),
        ));
    };
    let mut args = raw.clone();
    args.remove("sig");
    let id = match args.remove("id") {
        Some(Value::String(s)) if uuid::Uuid::parse_str(&s).is_ok() => s,
        _ => {
            let message = "the request needs an \"id\": a UUID, unique per request".into();
            return Err(refuse(None, "bad_request", message));
        }
    };
    let sent_at = match args.remove("sent_at") {
        Some(Value::String(s)) => humantime::parse_rfc3339_weak(&s).ok(),
        _ => None,
    };
    let Some(sent_at) = sent_at else {
        let message = "the request needs \"sent_at\": when it was sent, RFC 3339 UTC".into();
        return Err(refuse(Some(id), "bad_request", message));
    };
    let skew = now
        .duration_since(sent_at)
        .or_else(|e| Ok::<_, ()>(e.duration()))
        .unwrap_or_default();
    if skew > max_age {
        let message = format!(
            "sent_at is {} s from this box's clock, more than commands.max_age_s ({} s): send a fresh request, and check both clocks",
            skew.as_secs(),
            max_age.as_secs()
        );
        return Err(refuse(Some(id), "expired", message));
    }
    if !crate::config::COMMANDS.contains(&command.as_str()) {
        let message = format!(
            "unknown command {command:?}; this box knows: {}",
            crate::config::COMMANDS.join(", ")
        );
        return Err(refuse(Some(id), "unknown_command", message));
    }
    if !allowed.iter().any(|a| a == &command) {
        let message =
            format!("{command} is switched off on this box (commands.allow in its configuration)");
        return Err(refuse(Some(id), "disabled", message));
    }
    Ok(Request {
        command,
        id,
        sent_at,
        args,
        raw,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PREFIX: &str = "vigil/v1/d1/box/cmd/";
    const ID: &str = "0192f5d2-7c1e-7b3a-9e1f-5a6b7c8d9e0f";

    fn at(s: &str) -> SystemTime {
        humantime::parse_rfc3339(s).unwrap_or(SystemTime::UNIX_EPOCH)
    }

    fn try_parse(topic: &str, body: &str) -> Result<Request, Refusal> {
        let allowed = vec!["ping".to_string()];
        let now = at("2026-12-06T10:00:00Z");
        parse(
            PREFIX,
            topic,
            body.as_bytes(),
            now,
            Duration::from_secs(300),
            &allowed,
        )
    }

    #[test]
    fn a_fresh_request_is_read_with_its_arguments() {
        let body = format!(r#"{{"id":"{ID}","sent_at":"2026-12-06T09:59:58.250Z","x":1}}"#);
        let r = try_parse("vigil/v1/d1/box/cmd/ping", &body).expect("accepted");
        assert_eq!((r.command.as_str(), r.id.as_str()), ("ping", ID));
        assert_eq!(r.args.get("x"), Some(&Value::from(1)));
        assert_eq!(r.sent_at, at("2026-12-06T09:59:58.250Z"));
    }

    #[test]
    fn each_fault_has_its_code_and_keeps_the_id_when_it_can() {
        let code = |topic: &str, body: &str| {
            let r = try_parse(topic, body).expect_err("refused");
            (r.code, r.id.is_some())
        };
        let ping = "vigil/v1/d1/box/cmd/ping";
        assert_eq!(code(ping, "not json"), ("bad_request", false));
        assert_eq!(code(ping, "[1]"), ("bad_request", false));
        assert_eq!(
            code(ping, r#"{"id":"x","sent_at":"2026-12-06T10:00:00Z"}"#),
            ("bad_request", false)
        );
        let body = |sent: &str| format!(r#"{{"id":"{ID}","sent_at":"{sent}"}}"#);
        assert_eq!(
            code(ping, &format!(r#"{{"id":"{ID}"}}"#)),
            ("bad_request", true)
        );
        assert_eq!(code(ping, &body("yesterday")), ("bad_request", true));
        assert_eq!(code(ping, &body("2026-12-06T09:54:59Z")), ("expired", true));
        assert_eq!(
            code(ping, &body("2026-12-06T10:05:01Z")),
            ("expired", true),
            "future"
        );
        let fresh = body("2026-12-06T10:00:00Z");
        assert_eq!(
            code("vigil/v1/d1/box/cmd/reboot", &fresh),
            ("unknown_command", true)
        );
        let off = parse(
            PREFIX,
            "vigil/v1/d1/box/cmd/ping",
            fresh.as_bytes(),
            at("2026-12-06T10:00:00Z"),
            Duration::from_secs(300),
            &[],
        )
        .expect_err("switched off");
        assert_eq!(off.code, "disabled");
        assert!(off.message.contains("commands.allow"), "{}", off.message);
    }
}
