//! What the inference threads share ([`Pool`]): each camera's work under its own lock, the
//! health statistics, reload updates, each model's forker and score floor, and each thread's
//! heartbeat; and how many threads to run.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use super::super::{CameraWork, live};
use super::outgoing;
use crate::detect::{Detector, Forker, ModelInfo};
use crate::evidence::EvidenceSettings;
use crate::ingest;
use crate::publish::{Identity, Outgoing};
use crate::rules::IncidentType;
use crate::telemetry;

/// How many inference threads to run: `configured` (`[inference] threads`) when not 0, else one
/// per core this process may use (`taskset`, cgroup CPU quota, systemd
/// `CPUQuota=`/`AllowedCPUs=`) divided by the most intra-op threads a model asks for; never
/// more than there are cameras to analyse (a camera's frames go to one thread at a time).
pub fn count(configured: usize, cores: usize, max_model_threads: usize, cameras: usize) -> usize {
    let wanted = match configured {
        0 => cores / max_model_threads.max(1),
        n => n,
    };
    wanted.clamp(1, cameras.max(1))
}

/// The cores this process may use (1 when the system cannot tell).
pub fn available_cores() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
}

/// What the inference threads share.
pub struct Pool {
    /// Per camera: its rules and picture checks.
    pub(super) work: Vec<Mutex<CameraWork>>,
    /// Health statistics (lock after a camera's work, never before).
    pub(super) health: Mutex<telemetry::Health>,
    /// Rule replacements from reloads; whichever thread gets the lock applies them.
    pub(super) updates: Mutex<std::sync::mpsc::Receiver<live::WorkUpdate>>,
    /// Per model: its description, what forks it, and the weakest score the cameras' rules
    /// want from it (f32 bits; only ever lowered).
    pub(super) models: HashMap<String, PoolModel>,
    /// Per thread: milliseconds since `started` at its loop's last turn.
    pub(super) heartbeats: Vec<AtomicU64>,
    pub(super) started: Instant,
}

pub(super) struct PoolModel {
    pub(super) info: ModelInfo,
    pub(super) forker: Forker,
    pub(super) floor: AtomicU32,
}

impl Pool {
    /// A pool of `threads` threads for the cameras' `work`, with the loaded `detectors` (whose
    /// thresholds are already lowered to `floors`).
    pub fn new(
        threads: usize,
        work: Vec<CameraWork>,
        detectors: &HashMap<String, Box<dyn Detector>>,
        floors: &HashMap<String, f32>,
        health: telemetry::Health,
        updates: std::sync::mpsc::Receiver<live::WorkUpdate>,
        started: Instant,
    ) -> Pool {
        let models = detectors
            .iter()
            .map(|(name, d)| {
                let floor = floors.get(name).copied().unwrap_or(f32::INFINITY);
                let m = PoolModel {
                    info: d.info().clone(),
                    forker: d.forker(),
                    floor: AtomicU32::new(floor.to_bits()),
                };
                (name.clone(), m)
            })
            .collect();
        Pool {
            work: work.into_iter().map(Mutex::new).collect(),
            health: Mutex::new(health),
            updates: Mutex::new(updates),
            models,
            heartbeats: (0..threads.max(1)).map(|_| AtomicU64::new(0)).collect(),
            started,
        }
    }

    /// How long ago the stalest thread last turned its loop.
    pub fn stalest(&self) -> Duration {
        let now = self.started.elapsed().as_millis() as u64;
        let oldest = self
            .heartbeats
            .iter()
            .map(|h| h.load(Ordering::Relaxed))
            .min()
            .unwrap_or(now);
        Duration::from_millis(now.saturating_sub(oldest))
    }

    pub(super) fn beat(&self, thread: usize) {
        if let Some(h) = self.heartbeats.get(thread) {
            h.store(self.started.elapsed().as_millis() as u64, Ordering::Relaxed);
        }
    }

    pub(super) fn floor(&self, model: &str) -> f32 {
        self.models.get(model).map_or(f32::INFINITY, |m| {
            f32::from_bits(m.floor.load(Ordering::Relaxed))
        })
    }

    pub(super) fn lower_floor(&self, model: &str, t: f32) {
        if let Some(m) = self.models.get(model) {
            let _ = m
                .floor
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |b| {
                    (t < f32::from_bits(b)).then_some(t.to_bits())
                });
        }
    }

    /// The `close` events of every open incident of camera `index` (whose work is `cam`), which
    /// forgets them.
    pub(super) fn closing(
        &self,
        index: usize,
        cam: &mut CameraWork,
        identity: &Identity,
    ) -> Vec<Outgoing> {
        let mut closing = Vec::new();
        cam.rules.close_all(SystemTime::now(), &mut closing);
        let Some(m) = self.models.get(&cam.model) else {
            return Vec::new();
        };
        let nothing = ingest::slot::Frame {
            camera: index,
            width: 0,
            height: 0,
            data: Vec::new().into(),
            format: crate::pixels::Format::Rgb,
            captured: SystemTime::now(),
        };
        // A close has no picture: the settings are not used.
        let evidence = EvidenceSettings::default();
        closing
            .into_iter()
            .map(|event| {
                outgoing(
                    identity,
                    &cam.id,
                    cam.rules.set(),
                    &m.info,
                    &nothing,
                    event,
                    &evidence,
                )
            })
            .collect()
    }

    /// The `close` events of every open incident of every camera (a clean stop, once the
    /// inference threads have ended).
    pub fn close_all(&self, identity: &Identity) -> Vec<Outgoing> {
        let mut out = Vec::new();
        for i in 0..self.work.len() {
            if let Some(mut cam) = self.camera(i) {
                out.extend(self.closing(i, &mut cam, identity));
            }
        }
        out
    }

    /// Acknowledge open incident `id`, wherever it is open: its camera and type.
    pub fn ack(
        &self,
        id: uuid::Uuid,
        ack: &Arc<crate::rules::Ack>,
    ) -> Option<(String, IncidentType)> {
        (0..self.work.len()).find_map(|i| {
            let mut cam = self.camera(i)?;
            let kind = cam.rules.ack(id, Arc::clone(ack))?;
            Some((cam.id.clone(), kind))
        })
    }

    /// Name `clip` on the next event of open incident `id` (on camera `index`); false when it
    /// is no longer open.
    pub fn attach_clip(
        &self,
        index: usize,
        id: uuid::Uuid,
        clip: Arc<crate::rules::ClipRef>,
    ) -> bool {
        self.camera(index)
            .is_some_and(|mut cam| cam.rules.attach_clip(id, clip))
    }

    /// Open incident `id`, wherever it is open: its camera's index and id, and when it opened.
    pub fn opened(&self, id: uuid::Uuid) -> Option<(usize, String, std::time::SystemTime)> {
        (0..self.work.len()).find_map(|i| {
            let cam = self.camera(i)?;
            let at = cam.rules.opened_at(id)?;
            Some((i, cam.id.clone(), at))
        })
    }

    pub(super) fn camera(&self, i: usize) -> Option<MutexGuard<'_, CameraWork>> {
        self.work
            .get(i)
            .map(|m| m.lock().unwrap_or_else(PoisonError::into_inner))
    }
}
