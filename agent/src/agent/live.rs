//! The parts of a running agent a reload touches: each camera's ingest thread with its own stop
//! flag, and [`Reloader`], which re-reads the configuration, refuses what needs a restart (see
//! [`crate::reload`]) and applies the rest camera by camera — rebuilding a pipeline, or handing
//! new rules to the inference thread — without touching the other cameras.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use super::{CameraWork, Plan};
use crate::config::Camera;
use crate::diag;
use crate::ingest::{self, CameraHandle, IngestError, slot::FrameBoard};
use crate::telemetry::Watched;

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
}

impl Reloader {
    /// Re-read the configuration file and apply it; the reply says what was done, or why
    /// nothing was.
    pub async fn reload(&mut self) -> Result<String, String> {
        let path = self.plan.loaded.path.clone();
        let loaded = tokio::task::spawn_blocking(move || {
            crate::config::load(&path)
                .map_err(|e| e.to_string())
                .and_then(|l| Plan::build(l).map_err(|e| e.to_string()))
        })
        .await
        .map_err(|e| e.to_string())?;
        let new = loaded
            .map_err(|e| format!("the new configuration is invalid; nothing was applied:\n{e}"))?;
        let changes = crate::reload::plan(&self.plan.loaded.config, &new.loaded.config)?;
        let mut done = Vec::new();
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
                done.push(format!(
                    "camera {}: rules replaced (its open incidents closed)",
                    cam.id
                ));
            }
            if ch.stream {
                self.cameras.stop(ch.index).await;
                self.cameras
                    .start(ch.index, cam)
                    .map_err(|e| format!("camera {}: {e}", cam.id))?;
                done.push(format!(
                    "camera {}: {}",
                    cam.id,
                    if cam.enabled {
                        "pipeline rebuilt"
                    } else {
                        "stopped (disabled)"
                    }
                ));
            }
            if let Some(w) = self
                .watched
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .get_mut(ch.index)
            {
                *w = Watched::of(ch.index, cam);
            }
            if let Some(c) = self
                .diag
                .cameras
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .get_mut(ch.index)
            {
                *c = diag::CameraInfo::of(cam);
            }
        }
        self.plan = new;
        if done.is_empty() {
            Ok("the configuration is unchanged".into())
        } else {
            tracing::info!(changes = %done.join("; "), "configuration reloaded");
            Ok(done.join("; "))
        }
    }
}
