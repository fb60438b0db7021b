//! The agent's command desk: requests the session hands over are answered through the outbox
//! without ever holding the main loop. A `snapshot` waits for its camera's next analysed frame
//! in a task of its own and comes back to [`Desk::finished`] with the picture. What `arm` and
//! `disarm` change reaches the inference threads through the [`Board`].

use std::sync::Arc;
use std::time::SystemTime;

use tokio::sync::mpsc;

use crate::command::{Commands, Context, Finished, Job, Pending, Reply};
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
}

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
        };
        (desk, finished)
    }

    /// Answer one request (or start what it asks).
    pub fn request(&mut self, request: &publish::Received, ctx: &Context<'_>) {
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
            Reply::Job(pending) => match pending.job.clone() {
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
            },
        }
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
    pub fn finished(&mut self, (pending, outcome): JobDone) {
        let key = pending.key().to_string();
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
