//! `disarm` and `arm`: the centre stands a camera's rules down (a zone, a line, or every
//! security rule of the camera) until a time or until it arms them again. Fire and smoke stand
//! down only camera-wide, with `"fire": true` and an `until` at most [`MAX_FIRE_DISARM`] ahead.
//! Disarms are kept in the `disarms` table of `commands.db`, so they survive a restart, and end
//! by themselves at their `until`. What a request may name is checked against the running
//! configuration. The rule side is [`crate::rules::standdown`].

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, SystemTime};

use rusqlite::{Connection, params};
use serde_json::{Map, Value};

use crate::clock::{rfc3339_ms, unix_ms};
use crate::config::Camera;
use crate::rules::standdown::{Disarm, Target};

/// The longest fire and smoke may stand down.
pub const MAX_FIRE_DISARM: Duration = Duration::from_secs(12 * 3600);
/// The longest `by`, `reason` (and an `ack`'s `note`) kept, in characters.
pub const MAX_TEXT: usize = 200;
/// The longest name (camera, zone, line) or time a request may give, in bytes.
pub const MAX_NAME: usize = 256;

/// A request's free text as kept and shown: control characters dropped (no terminal escapes
/// in `vigil status` or logs), at most [`MAX_TEXT`] characters.
pub fn note(args: &Map<String, Value>, key: &str) -> Option<String> {
    let text: String = args
        .get(key)?
        .as_str()?
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_TEXT)
        .collect();
    (!text.is_empty()).then_some(text)
}

/// A request's name or time argument: absent, or a non-empty string of at most [`MAX_NAME`]
/// bytes.
pub fn name(args: &Map<String, Value>, key: &str) -> Result<Option<String>, Refused> {
    match args.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if !s.is_empty() && s.len() <= MAX_NAME => Ok(Some(s.clone())),
        Some(_) => Err((
            "bad_request",
            format!("\"{key}\" must be a non-empty string of at most {MAX_NAME} bytes"),
        )),
    }
}

/// A refusal: code and message.
pub type Refused = (&'static str, String);

/// Every camera's disarms, by camera id.
pub type Disarms = HashMap<String, Vec<Disarm>>;

/// What an `arm` or `disarm` request names: its camera and target.
fn target(args: &Map<String, Value>, cameras: &[Camera]) -> Result<(String, Target), Refused> {
    let text = |key: &str| name(args, key);
    let Some(camera) = text("camera")? else {
        return Err((
            "bad_request",
            "\"camera\" is needed: the camera's id".into(),
        ));
    };
    let Some(cam) = cameras.iter().find(|c| c.id == camera) else {
        let known: Vec<&str> = cameras.iter().map(|c| c.id.as_str()).collect();
        let message = format!("no camera {camera:?}; cameras: {}", known.join(", "));
        return Err(("unknown_camera", message));
    };
    let target = match (text("zone")?, text("line")?) {
        (Some(_), Some(_)) => {
            return Err(("bad_request", "name a zone or a line, not both".into()));
        }
        (Some(zone), None) => Target::Zone(zone),
        (None, Some(line)) => Target::Line(line),
        (None, None) => Target::Camera,
    };
    if exists(cameras, &camera, &target) {
        return Ok((camera, target));
    }
    let (code, kind, missing, known): (_, _, _, Vec<&str>) = match &target {
        Target::Line(line) => {
            let known = cam.lines.iter().map(|l| l.name.as_str()).collect();
            ("unknown_line", "line", line, known)
        }
        Target::Zone(zone) => {
            let known = cam.zones.iter().map(|z| z.name.as_str()).collect();
            ("unknown_zone", "zone", zone, known)
        }
        // The camera was found above: it exists.
        Target::Camera => return Ok((camera, Target::Camera)),
    };
    let message = format!(
        "camera {camera} has no {kind} {missing:?}; its {kind}s: {}",
        known.join(", ")
    );
    Err((code, message))
}

/// Read a `disarm` request's arguments at `now`: the camera and what stands down.
pub fn parse_disarm(
    args: &Map<String, Value>,
    cameras: &[Camera],
    now: SystemTime,
) -> Result<(String, Disarm), Refused> {
    let (camera, target) = target(args, cameras)?;
    let until = match name(args, "until")? {
        None => None,
        Some(s) => match humantime::parse_rfc3339_weak(&s) {
            Ok(t) if t > now => Some(t),
            Ok(_) => return Err(("bad_request", format!("until {s} has passed"))),
            Err(_) => {
                let message = format!("until {s:?} is not an RFC 3339 UTC time");
                return Err(("bad_request", message));
            }
        },
    };
    let fire = match args.get("fire") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(("bad_request", "\"fire\" must be true or false".into())),
    };
    if fire {
        if target != Target::Camera {
            let message = "fire and smoke stand down only camera-wide: leave out zone and line";
            return Err(("bad_request", message.into()));
        }
        let bound = now + MAX_FIRE_DISARM;
        if until.is_none_or(|u| u > bound) {
            let message = format!(
                "fire and smoke may stand down for at most {} h: give an \"until\" before {}",
                MAX_FIRE_DISARM.as_secs() / 3600,
                rfc3339_ms(bound)
            );
            return Err(("fire_unbounded", message));
        }
    }
    let disarm = Disarm {
        target,
        until,
        fire,
        by: note(args, "by"),
        reason: note(args, "reason"),
        since: now,
    };
    Ok((camera, disarm))
}

/// Read an `arm` request's arguments: the camera and what arms again (the camera: all of it).
pub fn parse_arm(
    args: &Map<String, Value>,
    cameras: &[Camera],
) -> Result<(String, Target), Refused> {
    target(args, cameras)
}

/// Whether `target` of `camera` exists in `cameras`.
pub fn exists(cameras: &[Camera], camera: &str, target: &Target) -> bool {
    cameras.iter().any(|c| {
        c.id == camera
            && match target {
                Target::Camera => true,
                Target::Zone(n) => c.zones.iter().any(|z| &z.name == n),
                Target::Line(n) => c.lines.iter().any(|l| &l.name == n),
            }
    })
}

/// `disarms` of a camera that still hold at `now`, as payloads show them.
pub fn describe(disarms: &[Disarm], now: SystemTime) -> Value {
    Value::Array(
        disarms
            .iter()
            .filter(|d| d.holds(now))
            .map(Disarm::to_json)
            .collect(),
    )
}

/// The `disarms` table of `commands.db` (none when commands are off: nothing can disarm).
pub struct Store {
    conn: Option<Connection>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Store({})", self.conn.is_some())
    }
}

impl Store {
    /// The table in `path`, made when missing; in memory only (with an ERROR: a restart arms
    /// everything again) when the file cannot be used.
    pub fn open(path: &Path) -> Store {
        let opened = Connection::open(path).and_then(|c| {
            c.busy_timeout(Duration::from_secs(5))?;
            c.execute_batch(
                "CREATE TABLE IF NOT EXISTS disarms (
                     camera TEXT NOT NULL,
                     target TEXT NOT NULL,
                     until_ms INTEGER,
                     fire INTEGER NOT NULL,
                     by TEXT,
                     reason TEXT,
                     since_ms INTEGER NOT NULL,
                     PRIMARY KEY (camera, target)
                 );",
            )?;
            Ok(c)
        });
        match opened {
            Ok(c) => Store { conn: Some(c) },
            Err(e) => {
                tracing::error!(
                    path = %path.display(),
                    "cannot keep disarms in the command ledger ({e}); they hold until the agent restarts"
                );
                Store { conn: None }
            }
        }
    }

    /// No file: disarms live in memory only.
    pub fn none() -> Store {
        Store { conn: None }
    }

    /// Every stored disarm that still holds at `now` (expired ones are deleted).
    pub fn load(&self, now: SystemTime) -> Disarms {
        let mut out = Disarms::new();
        let Some(c) = &self.conn else {
            return out;
        };
        let now_ms = unix_ms(now);
        let read = c
            .execute(
                "DELETE FROM disarms WHERE until_ms IS NOT NULL AND until_ms <= ?1",
                [now_ms],
            )
            .and_then(|_| {
                let mut q = c.prepare(
                    "SELECT camera, target, until_ms, fire, by, reason, since_ms FROM disarms",
                )?;
                let rows = q.query_map([], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, Option<u64>>(2)?,
                        r.get::<_, bool>(3)?,
                        r.get::<_, Option<String>>(4)?,
                        r.get::<_, Option<String>>(5)?,
                        r.get::<_, u64>(6)?,
                    ))
                })?;
                rows.collect::<rusqlite::Result<Vec<_>>>()
            });
        let at = |ms: u64| SystemTime::UNIX_EPOCH + Duration::from_millis(ms);
        match read {
            Ok(rows) => {
                for (camera, label, until, fire, by, reason, since) in rows {
                    let Some(target) = Target::parse(&label) else {
                        continue;
                    };
                    let d = Disarm {
                        target,
                        until: until.map(at),
                        fire,
                        by,
                        reason,
                        since: at(since),
                    };
                    out.entry(camera).or_default().push(d);
                }
            }
            Err(e) => tracing::error!("cannot read the stored disarms: {e}"),
        }
        out
    }

    /// Forget every stored disarm (commands are off: nothing could arm them again), each
    /// named in a WARN.
    pub fn clear(&self, now: SystemTime) {
        let Some(c) = &self.conn else { return };
        for (camera, list) in self.load(now) {
            for d in list {
                tracing::warn!(
                    camera,
                    target = d.target.label(),
                    "commands are off: the centre's disarm is dropped, the rules are armed"
                );
            }
        }
        if let Err(e) = c.execute("DELETE FROM disarms", []) {
            tracing::error!("cannot forget the stored disarms: {e}");
        }
    }

    /// Keep `d` for `camera` (replacing one of the same target).
    pub fn put(&self, camera: &str, d: &Disarm) {
        let Some(c) = &self.conn else { return };
        let done = c.execute(
            "INSERT OR REPLACE INTO disarms (camera, target, until_ms, fire, by, reason, since_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                camera,
                d.target.label(),
                d.until.map(unix_ms),
                d.fire,
                d.by,
                d.reason,
                unix_ms(d.since)
            ],
        );
        if let Err(e) = done {
            tracing::error!("cannot store a disarm: {e}; it holds until the agent restarts");
        }
    }

    /// Forget `camera`'s disarm of `target` (`Camera`: every one of the camera).
    pub fn remove(&self, camera: &str, target: &Target) {
        let Some(c) = &self.conn else { return };
        let done = match target {
            Target::Camera => c.execute("DELETE FROM disarms WHERE camera = ?1", [camera]),
            t => c.execute(
                "DELETE FROM disarms WHERE camera = ?1 AND target = ?2",
                params![camera, t.label()],
            ),
        };
        if let Err(e) = done {
            tracing::error!("cannot forget a disarm: {e}; it would come back after a restart");
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Camera `gate` with zone `door` and line `kerb`.
    pub(crate) fn cameras() -> Vec<Camera> {
        let toml = r#"
            [device]
            id = "b"
            district = "d"
            [mqtt]
            host = "127.0.0.1"
            [[models]]
            name = "m"
            card = "m.toml"
            [[cameras]]
            id = "gate"
            url = "rtsp://127.0.0.1/x"
            model = "m"
            [[cameras.zones]]
            name = "door"
            polygon = [[0, 0], [1, 0], [1, 1]]
            [[cameras.lines]]
            name = "kerb"
            a = [0, 0.5]
            b = [1, 0.5]
        "#;
        let cfg: crate::config::Config = toml::from_str(toml).expect("config");
        cfg.cameras
    }

    fn args(json: &str) -> Map<String, Value> {
        serde_json::from_str(json).expect("object")
    }

    #[test]
    fn disarm_arguments_are_checked_against_the_cameras_and_fire_is_bounded() {
        let cams = cameras();
        let now = humantime::parse_rfc3339("2026-12-06T10:00:00Z").expect("time");
        let code = |json: &str| parse_disarm(&args(json), &cams, now).map_err(|e| e.0);
        let (camera, d) = parse_disarm(
            &args(r#"{"camera":"gate","zone":"door","until":"2026-12-06T12:00:00Z","by":"op7"}"#),
            &cams,
            now,
        )
        .expect("accepted");
        assert_eq!(
            (camera.as_str(), d.target.label()),
            ("gate", "zone:door".into())
        );
        assert_eq!(d.by.as_deref(), Some("op7"));
        assert_eq!(code(r#"{"zone":"door"}"#), Err("bad_request"));
        assert_eq!(code(r#"{"camera":"yard"}"#), Err("unknown_camera"));
        assert_eq!(code(r#"{"camera":"gate","zone":"x"}"#), Err("unknown_zone"));
        assert_eq!(code(r#"{"camera":"gate","line":"x"}"#), Err("unknown_line"));
        assert_eq!(
            code(r#"{"camera":"gate","zone":"door","line":"kerb"}"#),
            Err("bad_request")
        );
        assert_eq!(
            code(r#"{"camera":"gate","until":"2026-12-06T09:00:00Z"}"#),
            Err("bad_request"),
            "in the past"
        );
        assert_eq!(
            code(r#"{"camera":"gate","fire":true}"#),
            Err("fire_unbounded")
        );
        assert_eq!(
            code(r#"{"camera":"gate","fire":true,"until":"2026-12-07T10:00:00Z"}"#),
            Err("fire_unbounded")
        );
        assert_eq!(
            code(r#"{"camera":"gate","zone":"door","fire":true,"until":"2026-12-06T11:00:00Z"}"#),
            Err("bad_request")
        );
        assert!(code(r#"{"camera":"gate","fire":true,"until":"2026-12-06T21:59:00Z"}"#).is_ok());
    }

    #[test]
    fn free_text_loses_control_characters_and_long_names_are_refused() {
        let a = args(r#"{"by":"op\u001b[31m7\n","camera":"x"}"#);
        assert_eq!(note(&a, "by").as_deref(), Some("op[31m7"));
        let long = format!(r#"{{"camera":"{}"}}"#, "c".repeat(MAX_NAME + 1));
        assert_eq!(
            name(&args(&long), "camera").map_err(|e| e.0),
            Err("bad_request")
        );
        assert!(exists(&cameras(), "gate", &Target::Line("kerb".into())));
        assert!(!exists(&cameras(), "gate", &Target::Zone("kerb".into())));
        assert!(!exists(&cameras(), "yard", &Target::Camera));
    }

    #[test]
    fn stored_disarms_come_back_after_reopening_and_expired_ones_do_not() {
        let dir = std::env::temp_dir().join(format!("vigil-disarms-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("commands.db");
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let d = |target, until| Disarm {
            target,
            until,
            fire: false,
            by: Some("op".into()),
            reason: None,
            since: t0,
        };
        {
            let s = Store::open(&path);
            s.put("gate", &d(Target::Zone("door".into()), None));
            s.put(
                "gate",
                &d(
                    Target::Line("kerb".into()),
                    Some(t0 + Duration::from_secs(60)),
                ),
            );
            s.put("yard", &d(Target::Camera, None));
            s.remove("yard", &Target::Camera);
        }
        let s = Store::open(&path);
        let back = s.load(t0 + Duration::from_secs(30));
        assert_eq!(back.get("gate").map(Vec::len), Some(2));
        assert!(!back.contains_key("yard"), "armed again");
        assert_eq!(back["gate"][0].by.as_deref(), Some("op"));
        let later = s.load(t0 + Duration::from_secs(61));
        assert_eq!(later["gate"].len(), 1, "the line's time has passed");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
