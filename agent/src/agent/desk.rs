//! The agent's command desk: requests the session hands over are answered through the outbox
//! without ever holding the main loop. A `snapshot` waits for its camera's next analysed frame,
//! and a `clip` for the end of its span, each in a task of its own, and comes back to
//! [`Desk::finished`]. What `arm` and `disarm` change reaches the inference threads through the
//! [`Board`]. A pushed `config` goes back to the main loop, which runs the configuration
//! ([`super::push`]).

use std::sync::Arc;
use std::time::SystemTime;

use tokio::sync::mpsc;

use super::clipper::{self, Clipper, Span};
use crate::command::{ClipOf, Commands, Context, Finished, Job, Pending, Reply};
use crate::diag;
use crate::publish::{self, Lane, Message, Outgoing};
use crate::rules::standdown::Board;

/// A job carried out for a command: the request, and how it came out or why it could not.
pub type JobDone = (Pending, Result<Finished, (&'static str, String)>);

/// Answers commands.
pub struct Desk {
    commands: Commands,
    /// Into the session (results, pictures).
    out: mpsc::Sender<Outgoing>,
    /// Jobs done elsewhere (snapshots), back to the main loop.
    done: mpsc::Sender<JobDone>,
    diag: Arc<diag::Shared>,
    standing: Arc<Board>,
    /// The cameras' rules (to find an incident to acknowledge).
    pool: Arc<super::workers::Pool>,
    /// Cuts clips.
    clipper: Arc<Clipper>,
    /// The session's message limit (clip chunks fit it).
    limit: Arc<publish::limit::MessageLimit>,
}

/// How far ahead a `clip` request's `to` may be: its job must end well within the 120 s a job
/// may take.
const MAX_CLIP_AHEAD: std::time::Duration = std::time::Duration::from_secs(60);

impl Desk {
    /// A desk answering with `commands`, sending through `out`, taking snapshots from `diag`
    /// and telling `standing` what stands down; finished snapshots arrive on the receiver
    /// returned with it.
    pub fn new(
        commands: Commands,
        out: mpsc::Sender<Outgoing>,
        diag: Arc<diag::Shared>,
        standing: Arc<Board>,
        pool: Arc<super::workers::Pool>,
        clipper: Arc<Clipper>,
        limit: Arc<publish::limit::MessageLimit>,
    ) -> (Desk, mpsc::Receiver<JobDone>) {
        let (done, finished) = mpsc::channel(64);
        let (version, disarms) = commands.disarms();
        standing.set(version, disarms);
        let desk = Desk {
            commands,
            out,
            done,
            diag,
            standing,
            pool,
            clipper,
            limit,
        };
        (desk, finished)
    }

    /// Answer one request (or start what it asks). A pushed configuration is for the main
    /// loop, which runs the configuration: it comes back with its text, to be ended with
    /// [`Desk::finished`].
    pub fn request(
        &mut self,
        request: &publish::Received,
        ctx: &Context<'_>,
    ) -> Option<(Pending, Arc<str>)> {
        let reply = publish::off_runtime(|| {
            self.commands
                .handle(&request.topic, &request.payload, ctx, SystemTime::now())
        });
        self.sync();
        match reply {
            Reply::Done(result) => {
                self.send(vec![result]);
            }
            Reply::Later => {}
            Reply::Job(pending) => {
                if let Job::Config { text } = &pending.job {
                    let text = Arc::clone(text);
                    return Some((pending, text));
                }
                self.start(pending);
            }
        }
        None
    }

    /// Carry out a snapshot (in a task of its own) or an ack.
    fn start(&mut self, pending: Pending) {
        match pending.job.clone() {
            Job::Snapshot { camera } => {
                let diag = Arc::clone(&self.diag);
                let done = self.done.clone();
                tokio::spawn(async move {
                    let shot = diag::take_snapshot(&diag, &camera)
                        .await
                        .map(|jpeg| Finished::Picture { camera, jpeg })
                        .map_err(|e| (e.code(), e.to_string()));
                    let _ = done.send((pending, shot)).await;
                });
            }
            Job::Ack { incident, ack } => {
                let found = publish::off_runtime(|| self.pool.ack(incident, &ack));
                let outcome = found
                    .map(|(camera, kind)| Finished::Acked {
                        incident,
                        camera,
                        kind: kind.as_str(),
                        ack,
                    })
                    .ok_or((
                        "unknown_incident",
                        format!(
                            "no incident {incident} is open among this box's camera rules: it closed, it is another box's, or it is a camera fault (camera_offline, camera_frozen, camera_tamper), which closes by itself when the camera recovers"
                        ),
                    ));
                self.finished((pending, outcome));
            }
            Job::Clip(of) => match self.span(&of, &pending) {
                Ok(span) => self.clip(pending, span, of),
                Err(refused) => self.finished((pending, Err(refused))),
            },
            Job::Config { .. } => {}
        }
    }

    /// What stream a clip request covers.
    fn span(&self, of: &ClipOf, pending: &Pending) -> Result<Span, clipper::Refusal> {
        match of {
            ClipOf::Incident(id) => {
                let (index, camera, at) = publish::off_runtime(|| self.pool.opened(*id)).ok_or((
                    "unknown_incident",
                    format!("no incident {id} is open among this box's camera rules: for one that closed, ask for its camera from a time to a time"),
                ))?;
                self.clipper.camera(&camera)?;
                let name = format!("{camera}-{}", pending.id());
                Ok(self.clipper.around(index, &camera, at, name))
            }
            ClipOf::Span { camera, from, to } => {
                let index = self.clipper.camera(camera)?;
                if *to > SystemTime::now() + MAX_CLIP_AHEAD {
                    let message =
                        format!("\"to\" may be at most {} s ahead", MAX_CLIP_AHEAD.as_secs());
                    return Err(("bad_request", message));
                }
                let name = format!("{camera}-{}", pending.id());
                Ok(Span {
                    index,
                    camera: camera.clone(),
                    from: *from,
                    to: *to,
                    name,
                    clamp: false,
                })
            }
        }
    }

    /// Cut the clip of `span` once its end has come, send its chunks in the lowest lane, and
    /// come back with what the result says of it.
    fn clip(&self, pending: Pending, span: Span, of: ClipOf) {
        let incident = match of {
            ClipOf::Incident(id) => Some(id),
            ClipOf::Span { .. } => None,
        };
        // No handle on the session here: a clip waiting for its end must not hold a stopping
        // agent's session open. The chunks go out in `finished`.
        let (clipper, done) = (Arc::clone(&self.clipper), self.done.clone());
        let identity = self.diag.identity.clone();
        let chunk = self.limit.picture_bytes();
        tokio::spawn(async move {
            let camera = span.camera.clone();
            let outcome = clipper.make(span).await.map(|written| {
                // Its own topic, apart from the incident's own clip (clips.on_open).
                let topic = identity.clip_topic(&camera, None, pending.id());
                let (chunks, answer) =
                    clipper::publishable(&topic, &camera, incident.as_ref(), &written, chunk);
                Finished::Clip { answer, chunks }
            });
            let _ = done.send((pending, outcome)).await;
        });
    }

    /// Forget what the centre stood down that `cameras` (a reloaded configuration) no longer
    /// has.
    pub fn prune(&mut self, cameras: &[crate::config::Camera]) {
        self.commands.prune(cameras);
        self.sync();
    }

    /// Tell the inference threads when what stands down changed.
    fn sync(&self) {
        let (version, disarms) = self.commands.disarms();
        if self.standing.version() != version {
            self.standing.set(version, disarms);
        }
    }

    /// Send what ends a request carried out elsewhere (its result is forgotten when the
    /// session cannot take it, so a retry carries it out again).
    pub fn finished(&mut self, (pending, mut outcome): JobDone) {
        let key = pending.key().to_string();
        if let Ok(Finished::Clip { chunks, .. }) = &mut outcome {
            let lane = Lane::Telemetry;
            let messages = std::mem::take(chunks);
            if self
                .out
                .try_send(Outgoing::Plain { lane, messages })
                .is_err()
            {
                let message = "the session is backed up: the clip was written but not sent; send the request again in a few seconds";
                outcome = Err(("busy", message.to_string()));
            }
        }
        let messages =
            publish::off_runtime(|| self.commands.finish(pending, outcome, SystemTime::now()));
        if !self.send(messages) {
            self.commands.forget(&key);
        }
    }

    /// Into the health lane (behind incidents, ahead of telemetry), picture before result.
    /// Never waits: a session that is backed up must not hold the main loop; the centre's
    /// retry gets the stored result.
    fn send(&self, messages: Vec<Message>) -> bool {
        let lane = Lane::Health;
        let sent = self
            .out
            .try_send(Outgoing::Plain { lane, messages })
            .is_ok();
        if !sent {
            tracing::warn!("a command result was dropped: the session is backed up");
        }
        sent
    }
}
