//! The `config` command in the running agent. A configuration the centre pushed is checked
//! exactly like `vigil check` (the file, then the model cards and zone classes), refused as a
//! whole when it changes anything a live reload cannot apply, applied through the live reload
//! path, and tried: every camera whose pipeline it rebuilt must deliver a frame within
//! `commands.config_trial_s`. Only then is it kept, atomically, in the state folder
//! ([`crate::config::pushed`]); a camera that stays silent, or a file that cannot be written,
//! puts the previous configuration back, live, and nothing of the push is kept.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime};

use serde_json::{Value, json};

use super::Plan;
use super::desk::Desk;
use super::live::Reloader;
use crate::clock::rfc3339_ms;
use crate::command::{Finished, Pending};
use crate::config::pushed::{self, Meta};
use crate::ingest::slot::FrameBoard;

/// A refusal: its code and a message a person can act on.
pub type Refusal = (&'static str, String);

/// A pushed configuration whose trial ended: its request and the cameras that stayed silent.
pub type Tried = (Pending, Vec<String>);

/// Take the configuration `text` that `pending` pushed, in the main loop: its result goes out
/// through `desk` now, or once its trial ends (the trial reports on `tried`, and the main loop
/// hands that to [`settled`]).
pub async fn take(
    reloader: &mut Reloader,
    desk: &mut Desk,
    tried: &tokio::sync::mpsc::Sender<Tried>,
    pending: Pending,
    text: Arc<str>,
) {
    let pushed = reloader.push(text, pending.id(), SystemTime::now()).await;
    desk.prune(&reloader.plan.loaded.config.cameras);
    match pushed {
        Ok(Pushed::Trying(wait)) => {
            let tried = tried.clone();
            tokio::spawn(async move {
                let silent = wait.run().await;
                let _ = tried.send((pending, silent)).await;
            });
        }
        Ok(Pushed::Done(answer)) => desk.finished((pending, Ok(Finished::Configured(answer)))),
        Err(refused) => desk.finished((pending, Err(refused))),
    }
}

/// End the trial of a pushed configuration and send its result.
pub async fn settled(reloader: &mut Reloader, desk: &mut Desk, (pending, silent): Tried) {
    let outcome = reloader.settle(silent).await;
    desk.prune(&reloader.plan.loaded.config.cameras);
    desk.finished((pending, outcome.map(Finished::Configured)));
}

/// A pushed configuration running on trial.
#[derive(Debug)]
pub struct Trial {
    /// What ran before it.
    previous: Plan,
    /// Its text and record, kept once it passes.
    text: Arc<str>,
    meta: Meta,
    state: PathBuf,
    /// The answer, once it passes.
    answer: Value,
    /// The cameras it rebuilt.
    cameras: Vec<String>,
}

/// How a push goes on.
#[derive(Debug)]
pub enum Pushed {
    /// Applied and kept: the answer.
    Done(Value),
    /// Applied; its rebuilt cameras must deliver a frame first.
    Trying(Wait),
}

/// Waits for the cameras a push rebuilt to deliver a frame.
#[derive(Debug)]
pub struct Wait {
    board: Arc<FrameBoard>,
    /// Index, id and the decoded count when rebuilt.
    cameras: Vec<(usize, String, u64)>,
    deadline: Instant,
}

impl Wait {
    /// The cameras that delivered no frame before the deadline (none: all started).
    pub async fn run(self) -> Vec<String> {
        loop {
            let silent: Vec<String> = self
                .cameras
                .iter()
                .filter(|(i, _, at)| self.board.counters(*i).decoded.load(Ordering::Relaxed) <= *at)
                .map(|(_, id, _)| id.clone())
                .collect();
            if silent.is_empty() || Instant::now() >= self.deadline {
                return silent;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

impl Reloader {
    /// Take the configuration `text` that request `id` pushed at `now`: check it, apply it,
    /// and keep it, or start its trial.
    pub async fn push(
        &mut self,
        text: Arc<str>,
        id: &str,
        now: SystemTime,
    ) -> Result<Pushed, Refusal> {
        if let Some(trial) = &self.trial {
            let message = format!(
                "the configuration request {} pushed is still being tried (cameras {} must deliver a frame); send this one again once its result has come",
                trial.meta.request,
                trial.cameras.join(", ")
            );
            return Err(("busy", message));
        }
        let running = &self.plan.loaded;
        let state = running.resolve(&running.config.storage.state_dir);
        if state.join(pushed::FILE) == running.installed {
            let message = format!(
                "the installed configuration is {}, where a pushed one would be kept: move it (or storage.state_dir) on the box first",
                running.installed.display()
            );
            return Err(("write_failed", message));
        }
        let new = check(&text, &state, running).await?;
        // The installed text the running configuration stands for: an edit of the installed
        // file since then (not reloaded yet) wins over this push at the next reload or start.
        let meta = Meta {
            sha256: crate::hash::sha256_hex(text.as_bytes()),
            base_sha256: running.installed_sha256.clone(),
            pushed_at: rfc3339_ms(now),
            request: id.to_string(),
        };
        let previous = self.plan.clone();
        let applied = self.apply(new).await.map_err(|why| {
            let Some(sections) = why
                .strip_prefix("these changes need a restart (systemctl restart vigil): ")
                .map(|s| s.trim_end_matches("; nothing was applied"))
            else {
                return ("stopping", why);
            };
            let message = format!(
                "a pushed configuration may change only the cameras' sections, and this one changes {sections}: nothing was applied or kept (such a change cannot be tried and put back from afar: it needs a technician on the box)"
            );
            ("needs_restart", message)
        })?;
        if !applied.failed.is_empty() {
            self.back_to(previous).await;
            let message = format!(
                "{}: the previous configuration runs again and nothing of the push is kept",
                applied.failed.join("; ")
            );
            return Err(("rolled_back", message));
        }
        let path = state.join(pushed::FILE);
        let answer = json!({
            "sha256": meta.sha256,
            "path": path.display().to_string(),
            "applied": applied.done,
        });
        let board = Arc::clone(&self.diag.board);
        let cameras: Vec<(usize, String, u64)> = applied
            .started
            .iter()
            .map(|&i| {
                let id = self.plan.loaded.config.cameras[i].id.clone();
                (i, id, board.counters(i).decoded.load(Ordering::Relaxed))
            })
            .collect();
        let trial = Trial {
            previous,
            text,
            meta,
            state,
            answer,
            cameras: cameras.iter().map(|(_, id, _)| id.clone()).collect(),
        };
        if cameras.is_empty() {
            self.trial = Some(trial);
            return self.settle(Vec::new()).await.map(Pushed::Done);
        }
        let secs = self.plan.loaded.config.commands.config_trial_s;
        tracing::info!(
            request = id,
            cameras = %trial.cameras.join(", "),
            trial_s = secs,
            "pushed configuration applied: waiting for its cameras' first frames"
        );
        self.trial = Some(trial);
        Ok(Pushed::Trying(Wait {
            board,
            cameras,
            deadline: Instant::now() + Duration::from_secs(secs),
        }))
    }

    /// End the trial: keep the configuration when no camera stayed `silent` and its files
    /// were written, else put the previous one back.
    pub async fn settle(&mut self, silent: Vec<String>) -> Result<Value, Refusal> {
        let Some(trial) = self.trial.take() else {
            return Err(("internal", "no configuration is on trial".into()));
        };
        if !silent.is_empty() {
            self.back_to(trial.previous).await;
            let message = format!(
                "camera(s) {} delivered no frame within {} s of the new configuration: the previous configuration runs again and nothing of the push is kept",
                silent.join(", "),
                self.plan.loaded.config.commands.config_trial_s
            );
            return Err(("rolled_back", message));
        }
        let (state, text, meta) = (
            trial.state.clone(),
            Arc::clone(&trial.text),
            trial.meta.clone(),
        );
        let kept = tokio::task::spawn_blocking(move || pushed::store(&state, &text, &meta))
            .await
            .map_err(|e| e.to_string())
            .and_then(|r| r.map_err(|e| e.to_string()));
        if let Err(e) = kept {
            self.back_to(trial.previous).await;
            let message = format!(
                "cannot keep the configuration in {}: {e}; the previous configuration runs again",
                trial.state.display()
            );
            return Err(("write_failed", message));
        }
        tracing::info!(
            request = trial.meta.request,
            sha256 = trial.meta.sha256,
            "pushed configuration kept"
        );
        let mut answer = trial.answer;
        answer["cameras_started"] = json!(trial.cameras);
        Ok(answer)
    }

    /// Run `previous` again (a push is rolled back).
    async fn back_to(&mut self, previous: Plan) {
        tracing::warn!("the pushed configuration is rolled back");
        match self.apply(previous).await {
            Ok(a) if a.failed.is_empty() => {}
            Ok(a) => tracing::error!("rolling back: {}", a.failed.join("; ")),
            Err(e) => tracing::error!("rolling back: {e}"),
        }
    }
}

/// `text` checked as `vigil check` would, as the file `state/config.toml` standing for the
/// installed file of `running` (relative paths resolve where that file's do).
async fn check(
    text: &Arc<str>,
    state: &std::path::Path,
    running: &crate::config::Loaded,
) -> Result<Plan, Refusal> {
    let (text, state, running) = (text.to_string(), state.to_path_buf(), running.clone());
    let built = tokio::task::spawn_blocking(move || {
        let loaded = pushed::parse(&state, text, &running).map_err(|e| e.to_string())?;
        Plan::build(loaded).map_err(|e| e.to_string())
    })
    .await
    .map_err(|e| ("internal", e.to_string()))?;
    built.map_err(|e| {
        (
            "invalid_config",
            format!("the configuration does not pass vigil check; nothing changed:\n{e}"),
        )
    })
}
