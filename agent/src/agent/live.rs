//! The parts of a running agent a reload touches: each camera's ingest thread with its own stop
//! flag, and [`Reloader`], which re-reads the configuration, refuses what needs a restart (see
//! [`crate::reload`]) and applies the rest camera by camera — rebuilding a pipeline, or handing
//! new rules to the inference thread — without touching the other cameras.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use super::{CameraWork, Plan};
use crate::config::Camera;
use crate::diag;
use crate::health::Watched;
use crate::ingest::{self, CameraHandle, IngestError, slot::FrameBoard};

/// New detection state for one camera, for the inference thread.
pub struct WorkUpdate {
    /// Camera index.
    pub index: usize,
    /// Its new rules, model and picture checks.
    pub work: CameraWork,
    /// The weakest score its rules want from the model.
    pub floor: f32,
}

/// The cameras' ingest threads.
pub struct Cameras {
    running: Vec<Option<(CameraHandle, Arc<AtomicBool>)>>,
    board: Arc<FrameBoard>,
}

impl Cameras {
    /// No camera running yet, room for `n`.
    pub fn new(n: usize, board: Arc<FrameBoard>) -> Self {
        Cameras {
            running: (0..n).map(|_| None).collect(),
            board,
        }
    }

    /// Start camera `i` (when enabled).
    pub fn start(&mut self, i: usize, camera: &Camera) -> Result<(), IngestError> {
        if !camera.enabled || i >= self.running.len() {
            return Ok(());
        }
        let stop = Arc::new(AtomicBool::new(false));
        let handle = ingest::spawn_camera(
            i,
            camera.clone(),
            Arc::clone(&self.board),
            Arc::clone(&stop),
        )?;
        self.running[i] = Some((handle, stop));
        Ok(())
    }

    /// Stop camera `i` and wait for its pipeline to be torn down.
    pub async fn stop(&mut self, i: usize) {
        if let Some((handle, stop)) = self.running.get_mut(i).and_then(Option::take) {
            stop.store(true, Ordering::Relaxed);
            let _ = tokio::task::spawn_blocking(move || handle.join()).await;
        }
    }

    /// Stop every camera (all flags first, then wait).
    pub fn stop_all(self) {
        let running: Vec<_> = self.running.into_iter().flatten().collect();
        for (_, stop) in &running {
            stop.store(true, Ordering::Relaxed);
        }
        for (handle, _) in running {
            handle.join();
        }
    }
}

/// Everything a reload updates.
pub struct Reloader {
    /// The configuration running now.
    pub plan: Plan,
    /// Ingest threads.
    pub cameras: Cameras,
    /// To the inference thread.
    pub work: std::sync::mpsc::Sender<WorkUpdate>,
    /// The camera monitor's view.
    pub watched: Arc<Mutex<Vec<Watched>>>,
    /// The diagnostics socket's view.
    pub diag: Arc<diag::Shared>,
    /// A configuration the centre pushed, running on trial ([`super::push`]).
    pub trial: Option<super::push::Trial>,
}

/// What applying a configuration did.
#[derive(Debug, Default)]
pub struct Applied {
    /// One line per change, for people.
    pub done: Vec<String>,
    /// Cameras whose pipeline was rebuilt and that should deliver frames again.
    pub started: Vec<usize>,
    /// Cameras whose pipeline could not be started, and why.
    pub failed: Vec<String>,
}

impl Reloader {
    /// Re-read the configuration (the installed file, or what the centre pushed while that is
    /// unchanged: [`crate::config::pushed`]) and apply it; the reply says what was done, or why
    /// nothing was.
    pub async fn reload(&mut self) -> Result<String, String> {
        if self.trial.is_some() {
            return Err(
                "a configuration the centre pushed is being tried; reload again in a minute".into(),
            );
        }
        let installed = self.plan.loaded.installed.clone();
        let loaded = tokio::task::spawn_blocking(move || {
            let effective =
                crate::config::pushed::effective(&installed, true).map_err(|e| e.to_string())?;
            if let Some(why) = &effective.set_aside {
                tracing::warn!("the configuration the centre pushed is not used: {why}");
            }
            Plan::build(effective.loaded).map_err(|e| e.to_string())
        })
        .await
        .map_err(|e| e.to_string())?;
        let new = loaded
            .map_err(|e| format!("the new configuration is invalid; nothing was applied:\n{e}"))?;
        let applied = self.apply(new).await?;
        if !applied.failed.is_empty() {
            // Applied all the same: the cameras that could not start are named.
            let failed = applied.failed.join("; ");
            tracing::warn!("configuration reloaded, but cameras could not start: {failed}");
            let mut done = applied.done;
            done.push(format!("could not start: {failed}"));
            return Ok(done.join("; "));
        }
        if applied.done.is_empty() {
            Ok("the configuration is unchanged".into())
        } else {
            Ok(applied.done.join("; "))
        }
    }

    /// Apply `new` (checked) live, camera by camera, or say why it needs a restart (then
    /// nothing is applied). A camera whose pipeline cannot start is named in
    /// [`Applied::failed`]; `new` is what runs either way.
    pub async fn apply(&mut self, new: Plan) -> Result<Applied, String> {
        let changes = crate::reload::plan(&self.plan.loaded.config, &new.loaded.config)?;
        let mut applied = Applied::default();
        for ch in &changes {
            let cam = &new.loaded.config.cameras[ch.index];
            let Some(rules) = new.rules.get(ch.index) else {
                continue;
            };
            if ch.rules {
                let update = WorkUpdate {
                    index: ch.index,
                    work: CameraWork::new(cam, rules),
                    floor: rules.detector_floor,
                };
                if self.work.send(update).is_err() {
                    return Err("the inference thread is stopping".into());
                }
                applied.done.push(format!(
                    "camera {}: rules replaced (its open incidents closed)",
                    cam.id
                ));
            }
            if ch.stream {
                self.cameras.stop(ch.index).await;
                match self.cameras.start(ch.index, cam) {
                    Err(e) => applied.failed.push(format!("camera {}: {e}", cam.id)),
                    Ok(()) if cam.enabled => {
                        applied.started.push(ch.index);
                        applied
                            .done
                            .push(format!("camera {}: pipeline rebuilt", cam.id));
                    }
                    Ok(()) => applied
                        .done
                        .push(format!("camera {}: stopped (disabled)", cam.id)),
                }
            }
            self.show(ch.index, cam);
        }
        self.plan = new;
        if !applied.done.is_empty() {
            tracing::info!(changes = %applied.done.join("; "), "configuration applied");
        }
        Ok(applied)
    }

    /// The camera monitor's and the diagnostics socket's view of camera `index`.
    fn show(&self, index: usize, cam: &Camera) {
        if let Some(w) = self
            .watched
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get_mut(index)
        {
            *w = Watched::of(index, cam);
        }
        if let Some(c) = self
            .diag
            .cameras
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get_mut(index)
        {
            *c = diag::CameraInfo::of(cam);
        }
    }
}
