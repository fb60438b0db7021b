//! Commands: the operations centre talks back over the MQTT session the agent already has.
//!
//! A request arrives on `vigil/v1/{district}/{device}/cmd/{command}` (QoS 1, JSON with a UUID
//! `id`, a `sent_at` time and the command's arguments; see docs/mqtt.md) and gets exactly one
//! result on `…/cmd/{command}/result` with the same `id`, `ok`, and the answer or an error code
//! with a message a person can act on. A repeated `id` gets the stored result back without the
//! command acting twice ([`ledger`]); a request sent longer ago than `commands.max_age_s` is
//! refused ([`request`]). Off unless `[commands] enabled = true`; the broker's ACL decides who
//! may publish to `…/cmd/#`.
//!
//! The session subscribes and hands the raw messages over; the agent's main loop calls
//! [`Commands::handle`] (off the async workers: the ledger commits to SQLite) and sends the
//! result through the outbox like any other message.

mod act;
pub mod disarm;
pub mod ledger;
pub mod request;
pub mod signature;

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, SystemTime};

use serde_json::{Value, json};

use crate::clock::{rfc3339_ms, unix_ms};
use crate::config::CommandSettings;
use crate::evidence::Jpeg;
use crate::publish::Identity;
use crate::publish::Message;
use crate::rules::standdown::Target;
pub use act::MAX_CLIP_SPAN;
use act::{Act, act};

/// Requests carried out at the same time (snapshots waiting for a frame); more are refused
/// as `busy`.
pub const MAX_JOBS: usize = 8;

/// A job not finished after this long is forgotten (a snapshot waits 60 s at most).
const JOB_EXPIRY: Duration = Duration::from_secs(120);

/// The longest configuration text a `config` request may carry.
pub const MAX_CONFIG_BYTES: usize = 256 * 1024;

/// Result payload schema id.
pub const RESULT_SCHEMA: &str = "vigil.command-result/1";

/// What a command may read of the running agent.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    /// The agent's version.
    pub version: &'a str,
    /// Since the agent started.
    pub uptime: Duration,
    /// The text of the configuration running now.
    pub config_source: &'a str,
    /// Its cameras (what `arm` and `disarm` may name).
    pub cameras: &'a [crate::config::Camera],
}

/// What the main loop does with a request.
#[derive(Debug)]
pub enum Reply {
    /// Send this result.
    Done(Message),
    /// Do the request's [`Job`] where the running agent is, then hand the outcome to
    /// [`Commands::finish`].
    Job(Pending),
    /// A repeat of a request still being carried out: its result goes out once more when
    /// that request finishes.
    Later,
}

/// A request being carried out outside the main loop (a snapshot waits for its camera's next
/// analysed frame; an ack looks for its incident among the cameras' rules).
#[derive(Debug)]
pub struct Pending {
    key: String,
    command: String,
    id: String,
    /// What is to be done.
    pub job: Job,
}

impl Pending {
    /// The request's key in the ledger (`command/id`).
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The request's `id`.
    pub fn id(&self) -> &str {
        &self.id
    }
}

/// What only the running agent can do.
#[derive(Debug, Clone)]
pub enum Job {
    /// Picture the camera's next analysed frame.
    Snapshot {
        /// The camera.
        camera: String,
    },
    /// Acknowledge an open incident.
    Ack {
        /// The incident's id.
        incident: uuid::Uuid,
        /// Who, when, why.
        ack: std::sync::Arc<crate::rules::Ack>,
    },
    /// Check, apply, try and keep a configuration.
    Config {
        /// Its text (its sha256 checked).
        text: std::sync::Arc<str>,
    },
    /// Cut a clip from a camera's pre-event buffer.
    Clip(ClipOf),
}

/// What a `clip` request covers.
#[derive(Debug, Clone)]
pub enum ClipOf {
    /// An open incident: `clips.pre_s` before its first frame to `clips.post_s` after.
    Incident(uuid::Uuid),
    /// A camera from one time to another.
    Span {
        /// The camera.
        camera: String,
        /// From.
        from: SystemTime,
        /// To.
        to: SystemTime,
    },
}

/// How a [`Job`] came out.
#[derive(Debug)]
pub enum Finished {
    /// The snapshot's picture.
    Picture {
        /// The camera.
        camera: String,
        /// Its picture.
        jpeg: Jpeg,
    },
    /// The incident was acknowledged.
    Acked {
        /// The incident.
        incident: uuid::Uuid,
        /// The camera it is open on.
        camera: String,
        /// Its type.
        kind: &'static str,
        /// The acknowledgement.
        ack: std::sync::Arc<crate::rules::Ack>,
    },
    /// The pushed configuration runs and is kept: what was applied.
    Configured(Value),
    /// A clip was written: what the result says of it, and its chunks (the desk sends them,
    /// in the lowest lane, before the result).
    Clip {
        /// The answer.
        answer: Value,
        /// The chunks' messages.
        chunks: Vec<Message>,
    },
}

/// The command handler of one agent.
#[derive(Debug)]
pub struct Commands {
    settings: CommandSettings,
    identity: Identity,
    prefix: String,
    ledger: ledger::Ledger,
    /// Requests being carried out: how many repeats arrived meanwhile, and since when.
    inflight: HashMap<String, (usize, std::time::Instant)>,
    /// What stands down, by camera, and where it is kept.
    disarms: disarm::Disarms,
    store: disarm::Store,
    /// Counts changes of `disarms`.
    disarms_version: u64,
    /// Who may sign [`signature::SIGNED`] commands (none: they need no signature).
    keys: Vec<ed25519_dalek::VerifyingKey>,
}

impl Commands {
    /// Commands for `identity` with `settings`, their ledger in `state_dir` (no file unless
    /// commands are enabled); stored disarms of what `cameras` no longer have are dropped.
    pub fn new(
        settings: CommandSettings,
        identity: Identity,
        state_dir: &Path,
        cameras: &[crate::config::Camera],
    ) -> Commands {
        let prefix = format!("{}/cmd/", identity.root());
        let path = state_dir.join("commands.db");
        let (ledger, store) = if settings.enabled {
            (ledger::Ledger::open(&path), disarm::Store::open(&path))
        } else {
            // Off: nothing could arm again, so nothing stored stands down, now or later.
            if path.exists() {
                disarm::Store::open(&path).clear(SystemTime::now());
            }
            (
                ledger::Ledger::Memory(Default::default()),
                disarm::Store::none(),
            )
        };
        let disarms = store.load(SystemTime::now());
        // Checked with the configuration: a key that does not read is skipped.
        let keys = settings
            .public_keys
            .iter()
            .filter_map(|k| signature::public_key(k).ok())
            .collect();
        let mut commands = Commands {
            settings,
            identity,
            prefix,
            ledger,
            inflight: HashMap::new(),
            disarms,
            store,
            disarms_version: 1,
            keys,
        };
        commands.prune(cameras);
        for (camera, list) in &commands.disarms {
            for d in list {
                tracing::warn!(
                    camera,
                    target = d.target.label(),
                    until = d.until.map(rfc3339_ms),
                    fire = d.fire,
                    "stood down by the centre before the restart, and still is"
                );
            }
        }
        commands
    }

    /// Why `req` (on `topic`) may not be acted on for want of a valid signature, if so.
    fn unsigned(&self, topic: &str, req: &request::Request) -> Option<(&'static str, String)> {
        // Configured keys that do not read (the check refuses them) leave nothing to verify
        // with: every signed command is then refused, never let through.
        let needs = !self.settings.public_keys.is_empty()
            && signature::SIGNED.contains(&req.command.as_str());
        needs
            .then(|| signature::verify(&self.keys, topic, &req.raw).err())
            .flatten()
    }

    /// Forget the disarms of cameras, zones and lines `cameras` no longer has (at start and
    /// after a reload), each with a WARN: a zone added again later under the same name starts
    /// armed.
    pub fn prune(&mut self, cameras: &[crate::config::Camera]) {
        let mut gone = Vec::new();
        for (camera, list) in &mut self.disarms {
            list.retain(|d| {
                let keep = disarm::exists(cameras, camera, &d.target);
                if !keep {
                    gone.push((camera.clone(), d.target.clone()));
                }
                keep
            });
        }
        self.disarms.retain(|_, list| !list.is_empty());
        for (camera, target) in &gone {
            tracing::warn!(
                camera,
                target = target.label(),
                "the configuration no longer has what the centre stood down: the disarm is dropped"
            );
            self.store.remove(camera, target);
        }
        if !gone.is_empty() {
            self.disarms_version += 1;
        }
    }

    /// What stands down, by camera, and a number that changes whenever that does.
    pub fn disarms(&self) -> (u64, &disarm::Disarms) {
        (self.disarms_version, &self.disarms)
    }

    /// `disarm` or `arm`: change what stands down, keep it, answer with the camera's list.
    fn stand(
        &mut self,
        req: &request::Request,
        ctx: &Context<'_>,
        now: SystemTime,
    ) -> Result<Value, disarm::Refused> {
        let mut armed = None;
        let camera = if req.command == "disarm" {
            let (camera, d) = disarm::parse_disarm(&req.args, ctx.cameras, now)?;
            tracing::warn!(
                camera,
                target = d.target.label(),
                until = d.until.map(rfc3339_ms),
                fire = d.fire,
                by = d.by,
                "the centre stands rules down"
            );
            self.store.put(&camera, &d);
            let list = self.disarms.entry(camera.clone()).or_default();
            list.retain(|x| x.target != d.target);
            list.push(d);
            camera
        } else {
            let (camera, target) = disarm::parse_arm(&req.args, ctx.cameras)?;
            armed = Some(target.clone());
            tracing::info!(
                camera,
                target = target.label(),
                "the centre arms rules again"
            );
            self.store.remove(&camera, &target);
            if let Some(list) = self.disarms.get_mut(&camera) {
                list.retain(|x| target != Target::Camera && x.target != target);
            }
            camera
        };
        self.disarms_version += 1;
        let list = self.disarms.get(&camera).map_or(&[][..], Vec::as_slice);
        let mut answer = json!({"camera": camera, "disarmed": disarm::describe(list, now)});
        if let Some(target) = armed {
            // A zone or line stays down while a camera-wide disarm holds.
            let covered = list
                .iter()
                .any(|d| d.holds(now) && (d.target == target || d.target == Target::Camera));
            answer["armed"] = json!(!covered);
        }
        Ok(answer)
    }

    /// Answer the request `payload` that arrived on `topic` at `now`: the result, or what is
    /// left to do.
    pub fn handle(
        &mut self,
        topic: &str,
        payload: &[u8],
        ctx: &Context<'_>,
        now: SystemTime,
    ) -> Reply {
        let command = topic
            .strip_prefix(&self.prefix)
            .unwrap_or(topic)
            .to_string();
        // Results are kept per command and id: an id reused on another command's topic is
        // another request.
        let key = |id: &str| format!("{command}/{id}");
        if let Some(id) = request_id(payload) {
            if let Some(stored) = self.ledger.get(&key(&id)) {
                tracing::info!(
                    command,
                    id,
                    "repeated request: its stored result is sent again"
                );
                return Reply::Done(self.result_message(&command, stored));
            }
            // A job that never reported back (it cannot take longer than a snapshot's longest
            // wait) no longer holds its id or a place among the MAX_JOBS.
            self.inflight
                .retain(|_, (_, since)| since.elapsed() < JOB_EXPIRY);
            if let Some((repeats, _)) = self.inflight.get_mut(&key(&id)) {
                *repeats += 1;
                return Reply::Later;
            }
        }
        let max_age = Duration::from_secs(self.settings.max_age_s);
        let req = request::parse(
            &self.prefix,
            topic,
            payload,
            now,
            max_age,
            &self.settings.allow,
        );
        let (id, outcome) = match req {
            Err(r) => (r.id, Err((r.code, r.message))),
            Ok(req) => match self.unsigned(topic, &req) {
                Some(refusal) => (Some(req.id), Err(refusal)),
                None if matches!(req.command.as_str(), "arm" | "disarm") => {
                    (Some(req.id.clone()), self.stand(&req, ctx, now))
                }
                None => match act(&req, ctx, now) {
                    Act::Now(outcome) => (Some(req.id), outcome),
                    Act::Job(_) if self.inflight.len() >= MAX_JOBS => {
                        let message = format!(
                            "{MAX_JOBS} requests are being carried out on this box; send this one again in a few seconds"
                        );
                        (Some(req.id), Err(("busy", message)))
                    }
                    Act::Job(job) => {
                        let started = std::time::Instant::now();
                        self.inflight.insert(key(&req.id), (0, started));
                        return Reply::Job(Pending {
                            key: key(&req.id),
                            command,
                            id: req.id,
                            job,
                        });
                    }
                },
            },
        };
        let body = self.conclude(&command, id.as_deref(), outcome, now);
        Reply::Done(self.result_message(&command, body))
    }

    /// The messages that end `pending`, whose job came out as `finished`: a snapshot's
    /// picture on `…/cameras/{camera}/snapshot/{id}`, then the result, once more for each
    /// repeat that arrived meanwhile.
    pub fn finish(
        &mut self,
        pending: Pending,
        finished: Result<Finished, (&'static str, String)>,
        now: SystemTime,
    ) -> Vec<Message> {
        // Every copy goes to the same topic: one more answers any number of repeats.
        let repeats = self
            .inflight
            .remove(&pending.key)
            .map_or(0, |(n, _)| n)
            .min(1);
        let mut messages = Vec::new();
        let outcome = finished.map(|f| match f {
            Finished::Picture { camera, jpeg } => {
                let topic = self.identity.camera_snapshot_topic(&camera, &pending.id);
                let answer = json!({
                    "camera": camera,
                    "topic": topic,
                    "bytes": jpeg.bytes.len(),
                    "sha256": jpeg.sha256(),
                    "width": jpeg.width,
                    "height": jpeg.height,
                });
                messages.push(Message {
                    topic,
                    payload: jpeg.bytes,
                    retain: false,
                });
                answer
            }
            Finished::Acked {
                incident,
                camera,
                kind,
                ack,
            } => {
                tracing::info!(camera, incident = %incident, by = ack.by, "incident acknowledged");
                json!({
                    "incident": incident.to_string(),
                    "camera": camera,
                    "type": kind,
                    "acked_at": rfc3339_ms(ack.at),
                })
            }
            Finished::Configured(answer) | Finished::Clip { answer, .. } => answer,
        });
        let body = self.conclude(&pending.command, Some(&pending.id), outcome, now);
        let result = self.result_message(&pending.command, body);
        messages.extend(std::iter::repeat_n(result, repeats + 1));
        messages
    }

    /// Forget the result kept for request `key` ([`Pending::key`]; its messages could not be
    /// handed to the session): a retry carries it out again instead of naming a picture never
    /// sent.
    pub fn forget(&mut self, key: &str) {
        self.ledger.forget(key);
    }

    /// Log the outcome of a request, build its result and keep it in the ledger.
    fn conclude(
        &mut self,
        command: &str,
        id: Option<&str>,
        outcome: Result<Value, (&'static str, String)>,
        now: SystemTime,
    ) -> Vec<u8> {
        let outcome_code = outcome.as_ref().err().map(|(code, _)| *code);
        match &outcome {
            Ok(_) => tracing::info!(command, id, "command done"),
            Err((code, why)) => tracing::warn!(command, id, code, "command refused: {why}"),
        }
        let body = result(&self.identity, command, id, outcome, now)
            .to_string()
            .into_bytes();
        // A refusal that says "not now" or "not from you" is not the request's answer: the
        // same id sent again (later, or properly signed) is taken afresh.
        let passing = matches!(&outcome_code, Some("busy" | "unsigned" | "bad_signature"));
        if let Some(id) = id.filter(|_| !passing) {
            let max_age = Duration::from_secs(self.settings.max_age_s);
            let key = format!("{command}/{id}");
            self.ledger.put(&key, &body, unix_ms(now), max_age * 2);
        }
        body
    }

    fn result_message(&self, command: &str, payload: Vec<u8>) -> Message {
        Message {
            topic: self.identity.command_result_topic(command),
            payload,
            retain: false,
        }
    }
}

/// The `id` of a request, if it has a readable one.
fn request_id(payload: &[u8]) -> Option<String> {
    let v: Value = serde_json::from_slice(payload).ok()?;
    v.get("id")?.as_str().map(str::to_string)
}

/// A result payload.
pub fn result(
    identity: &Identity,
    command: &str,
    id: Option<&str>,
    outcome: Result<Value, (&'static str, String)>,
    now: SystemTime,
) -> Value {
    let mut v = json!({
        "schema": RESULT_SCHEMA,
        "device": identity.device,
        "district": identity.district,
        "command": command,
        "id": id,
        "time": rfc3339_ms(now),
        "ok": outcome.is_ok(),
    });
    if let Some(o) = v.as_object_mut() {
        match outcome {
            Ok(answer) => o.insert("answer".into(), answer),
            Err((code, message)) => {
                o.insert("error".into(), json!({"code": code, "message": message}))
            }
        };
    }
    v
}

#[cfg(test)]
mod tests;
