//! What an accepted request asks for: an answer at once (`ping`, or a refusal of its
//! arguments) or a job only the running agent can do (`snapshot`, `ack`, `clip`, `config`),
//! with each command's arguments read and checked here.

use std::time::{Duration, SystemTime};

use serde_json::{Map, Value, json};

use super::{ClipOf, Context, Job, MAX_CONFIG_BYTES, disarm, request};
use crate::clock::rfc3339_ms;

/// What an accepted request leads to.
pub(super) enum Act {
    /// Its outcome, at once.
    Now(Result<Value, (&'static str, String)>),
    /// Something only the running agent can do.
    Job(Job),
}

/// Do what an accepted request asks (see [`crate::config::COMMANDS`]).
pub(super) fn act(req: &request::Request, ctx: &Context<'_>, now: SystemTime) -> Act {
    match req.command.as_str() {
        "snapshot" => match disarm::name(&req.args, "camera") {
            Ok(Some(camera)) => Act::Job(Job::Snapshot { camera }),
            Ok(None) => Act::Now(Err((
                "bad_request",
                "snapshot needs \"camera\": the id of one of this box's cameras".into(),
            ))),
            Err(refused) => Act::Now(Err(refused)),
        },
        "ack" => match ack_job(&req.args, now) {
            Ok(job) => Act::Job(job),
            Err(refused) => Act::Now(Err(refused)),
        },
        "clip" => match clip_job(&req.args) {
            Ok(job) => Act::Job(job),
            Err(refused) => Act::Now(Err(refused)),
        },
        "config" => match config_job(&req.args) {
            Ok(job) => Act::Job(job),
            Err(refused) => Act::Now(Err(refused)),
        },
        // ping: the round trip, with what the box runs.
        _ => Act::Now(Ok(json!({
            "version": ctx.version,
            "uptime_s": ctx.uptime.as_secs(),
            "config_sha256": crate::hash::sha256_hex(ctx.config_source.as_bytes()),
            "sent_at": rfc3339_ms(req.sent_at),
            "received_at": rfc3339_ms(now),
        }))),
    }
}

/// The incident an `ack` names, and who acknowledges it why, at `now`.
fn ack_job(args: &Map<String, Value>, now: SystemTime) -> Result<Job, (&'static str, String)> {
    let incident = args
        .get("incident")
        .and_then(Value::as_str)
        .and_then(|s| uuid::Uuid::parse_str(s).ok())
        .ok_or((
            "bad_request",
            "ack needs \"incident\": the id of an open incident".to_string(),
        ))?;
    let ack = crate::rules::Ack {
        by: disarm::note(args, "by"),
        note: disarm::note(args, "note"),
        at: now,
    };
    Ok(Job::Ack {
        incident,
        ack: std::sync::Arc::new(ack),
    })
}

/// The longest span a `clip` request may ask for.
pub const MAX_CLIP_SPAN: Duration = Duration::from_secs(120);

/// What a `clip` request asks for: an open incident, or a camera from one time to another.
fn clip_job(args: &Map<String, Value>) -> Result<Job, (&'static str, String)> {
    if let Some(v) = args.get("incident") {
        return v
            .as_str()
            .and_then(|s| uuid::Uuid::parse_str(s).ok())
            .map(|id| Job::Clip(ClipOf::Incident(id)))
            .ok_or((
                "bad_request",
                "\"incident\" must be the id of an open incident".to_string(),
            ));
    }
    let needs = || {
        (
            "bad_request",
            "clip needs \"incident\" (an open incident's id), or \"camera\" with \"from\" and \"to\" (RFC 3339 UTC times)".to_string(),
        )
    };
    let camera = disarm::name(args, "camera")?.ok_or_else(needs)?;
    let time = |key: &str| -> Result<SystemTime, (&'static str, String)> {
        let s = disarm::name(args, key)?.ok_or_else(needs)?;
        humantime::parse_rfc3339_weak(&s).map_err(|_| {
            (
                "bad_request",
                format!("{key} {s:?} is not an RFC 3339 UTC time"),
            )
        })
    };
    let (from, to) = (time("from")?, time("to")?);
    match to.duration_since(from) {
        Ok(d) if d > Duration::ZERO && d <= MAX_CLIP_SPAN => {
            Ok(Job::Clip(ClipOf::Span { camera, from, to }))
        }
        _ => Err((
            "bad_request",
            format!(
                "\"to\" must come after \"from\", by at most {} s",
                MAX_CLIP_SPAN.as_secs()
            ),
        )),
    }
}

/// The configuration a `config` request carries, its sha256 checked.
fn config_job(args: &Map<String, Value>) -> Result<Job, (&'static str, String)> {
    let needs = || {
        (
            "bad_request",
            "config needs \"toml\": the complete configuration's text, and \"sha256\": the sha256 of that text (hex)".to_string(),
        )
    };
    let text = args.get("toml").and_then(Value::as_str).ok_or_else(needs)?;
    let sha = args
        .get("sha256")
        .and_then(Value::as_str)
        .ok_or_else(needs)?;
    if text.len() > MAX_CONFIG_BYTES {
        let message = format!(
            "the configuration is {} bytes; a box takes at most {MAX_CONFIG_BYTES}",
            text.len()
        );
        return Err(("bad_request", message));
    }
    let actual = crate::hash::sha256_hex(text.as_bytes());
    if !actual.eq_ignore_ascii_case(sha) {
        let message = format!(
            "the text of \"toml\" has sha256 {actual}, not the {sha} the request names: it was changed or cut on the way; nothing changed"
        );
        return Err(("sha256_mismatch", message));
    }
    Ok(Job::Config {
        text: std::sync::Arc::from(text),
    })
}
