//! The inference threads: each takes the freshest frame of any camera (one frame per camera at a
//! time, see [`FrameBoard`]), runs the camera's model, picture checks and rules, renders
//! evidence and hands events to the session over a bounded channel.
//!
//! One thread per core the process may use (fewer with fewer cameras), so a box analyses as
//! many frames as its cores allow. The threads share the cameras' rule state (one lock per
//! camera, uncontended: a camera's frames are claimed one at a time) and each holds its own
//! detector per model, forked from the loaded one on first use (tract shares the optimised
//! plan; see [`detect::Forker`]).
//!
//! Lock order: a camera's work, then the health lock. The health message (thread 0) takes the
//! cameras' locks in index order before the health lock.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::mpsc;

use super::{CameraWork, live};
use crate::clock::Clock;
use crate::detect::{self, Detections, Detector, FrameView};
use crate::diag;
use crate::evidence::EvidenceSettings;
use crate::incident::payload::{self, IncidentContext};
use crate::ingest::{self, slot::FrameBoard};
use crate::publish::Identity;
use crate::publish::{Lane, Message, Outgoing};
use crate::rules::{CameraRules, IncidentEvent, IncidentType};

mod pool;

pub use pool::{Pool, available_cores, count};

/// What the inference threads need besides the frames and the models.
pub struct LoopContext<'a> {
    pub identity: &'a Identity,
    pub tx: &'a mpsc::Sender<Outgoing>,
    pub stop: &'a AtomicBool,
    pub clock: &'a dyn Clock,
    pub evidence: &'a EvidenceSettings,
    /// The session's message limit: evidence pictures are made to fit it.
    pub limit: &'a crate::publish::limit::MessageLimit,
    pub snapshots: &'a diag::Snapshots,
    /// What the centre stands down.
    pub standing: &'a crate::rules::standdown::Board,
    /// Where clips of opening incidents are ordered.
    pub clips: &'a super::clipper::Orders,
    /// The evidence thread of cameras with a `detect_url` (see [`super::stills`]).
    pub stills: &'a std::sync::mpsc::SyncSender<super::stills::Job>,
}

impl LoopContext<'_> {
    /// The evidence settings with pictures kept within the message limit.
    fn evidence(&self) -> EvidenceSettings {
        self.limit.fit(*self.evidence)
    }

    /// Queue `job` for the evidence thread; false when it is gone (shutting down).
    fn send_job(&self, job: super::stills::Job) -> bool {
        self.stills.send(job).is_ok()
    }
}

/// What one inference thread keeps between frames.
struct ThreadState {
    models: ThreadModels,
    dets: Detections,
    events: Vec<IncidentEvent>,
}

/// One inference thread's detectors.
struct ThreadModels {
    thread: usize,
    /// Its detector per model, forked on first use.
    detectors: HashMap<String, Box<dyn Detector>>,
    /// The floor each of its detectors was last lowered to.
    applied: HashMap<String, f32>,
    last_error: Option<Instant>,
}

/// The session is gone (shutting down): the thread ends.
struct SessionGone;

impl ThreadModels {
    /// Log `message` at most once every 10 s of this thread.
    fn error(&mut self, message: std::fmt::Arguments<'_>) {
        if self
            .last_error
            .is_none_or(|t| t.elapsed() > Duration::from_secs(10))
        {
            tracing::error!("{message}");
            self.last_error = Some(Instant::now());
        }
    }

    /// This thread's detector of `model`, forked on first use.
    fn detector(&mut self, pool: &Pool, model: &str) -> Option<&mut Box<dyn Detector>> {
        if !self.detectors.contains_key(model) {
            let m = pool.models.get(model)?;
            let started = Instant::now();
            match (m.forker)() {
                Ok(d) => {
                    tracing::info!(
                        model,
                        thread = self.thread,
                        load_ms = started.elapsed().as_millis() as u64,
                        "model ready on another inference thread"
                    );
                    self.detectors.insert(model.to_string(), d);
                }
                Err(e) => {
                    self.error(format_args!(
                        "cannot prepare model {model} on a thread: {e}"
                    ));
                    return None;
                }
            }
        }
        let det = self.detectors.get_mut(model)?;
        let floor = pool.floor(model);
        if self.applied.get(model) != Some(&floor) {
            if floor.is_finite() {
                det.lower_thresholds(floor);
            }
            self.applied.insert(model.to_string(), floor);
        }
        Some(det)
    }
}

/// One inference thread's loop, until `stop` or the session is gone. Thread 0 also builds the
/// health message. A frame whose analysis panics (a bug: there should be none) is dropped and
/// counted, the camera's detector memory and this thread's detector of its model start afresh,
/// and the loop goes on with the next frame.
pub fn detect_loop(
    board: &FrameBoard,
    pool: &Pool,
    thread: usize,
    detectors: HashMap<String, Box<dyn Detector>>,
    ctx: &LoopContext<'_>,
) {
    // Start each thread at a different camera.
    let mut cursor = (board.len() + thread).saturating_sub(1) % board.len().max(1);
    let mut st = ThreadState {
        models: ThreadModels {
            thread,
            detectors,
            applied: HashMap::new(),
            last_error: None,
        },
        dets: Detections::new(),
        events: Vec::new(),
    };
    while !ctx.stop.load(Ordering::Relaxed) {
        pool.beat(thread);
        if let Ok(updates) = pool.updates.try_lock() {
            while let Ok(u) = updates.try_recv() {
                if !replace_work(board, pool, u, ctx) {
                    return; // session gone: shutting down
                }
            }
        }
        if thread == 0 && send_health(board, pool, ctx).is_err() {
            return;
        }
        let Some(claim) = board.take_next(&mut cursor, Duration::from_millis(200)) else {
            continue;
        };
        let frame = &claim.frame;
        let analysed = contain(|| analyse(board, pool, &mut st, ctx, frame));
        match analysed {
            Ok(Ok(())) => {}
            Ok(Err(SessionGone)) => return,
            Err(panic) => {
                // Events of the broken frame belong to its camera: never to the next frame's.
                st.events.clear();
                board
                    .counters(frame.camera)
                    .dropped
                    .fetch_add(1, Ordering::Relaxed);
                if let Some(mut cam) = pool.camera(frame.camera) {
                    cam.memory = None;
                    st.models.detectors.remove(&cam.model);
                    st.models.error(format_args!(
                        "camera {}: the analysis of a frame panicked ({panic}); the frame is dropped and counted, the camera goes on",
                        cam.id
                    ));
                }
            }
        }
    }
}

/// Run `f`, turning a panic into its message.
pub(super) fn contain<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).map_err(|p| {
        p.downcast_ref::<&str>()
            .map(|s| (*s).to_string())
            .or_else(|| p.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "no message".into())
    })
}

/// Thread 0: the health message when it is due. Health may be dropped when the session is
/// backed up; incidents never are.
fn send_health(board: &FrameBoard, pool: &Pool, ctx: &LoopContext<'_>) -> Result<(), SessionGone> {
    let due = pool
        .health
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .is_due();
    if !due {
        return Ok(());
    }
    let mut guards: Vec<_> = (0..pool.work.len())
        .filter_map(|i| pool.camera(i))
        .collect();
    // What stands down, as the centre set it, also for a camera with no frame to analyse.
    for w in &mut guards {
        w.refresh_standing(ctx.standing);
    }
    let cams: Vec<(String, &CameraRules, Option<&'static str>)> = guards
        .iter()
        .map(|w| (w.id.clone(), &w.rules, w.fire_cues()))
        .collect();
    let m = pool
        .health
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .build(ctx.identity, board, &cams);
    drop(cams);
    drop(guards);
    match ctx.tx.try_send(Outgoing::Plain {
        lane: Lane::Telemetry,
        messages: vec![m],
    }) {
        Err(mpsc::error::TrySendError::Closed(_)) => Err(SessionGone),
        _ => Ok(()),
    }
}

/// Analyse one claimed frame of a camera: its model, picture checks, rules and evidence.
fn analyse(
    board: &FrameBoard,
    pool: &Pool,
    st: &mut ThreadState,
    ctx: &LoopContext<'_>,
    frame: &ingest::slot::Frame,
) -> Result<(), SessionGone> {
    let Some(mut cam) = pool.camera(frame.camera) else {
        return Ok(());
    };
    let model = cam.model.clone();
    let Some(det) = st.models.detector(pool, &model) else {
        return Ok(());
    };
    let span = tracing::debug_span!("camera", id = %cam.id);
    let _e = span.enter();
    let view = frame.view();
    watch_picture(board, frame.camera, &mut cam, view, ctx.clock.monotonic());
    let t0 = Instant::now();
    det.swap_memory(&mut cam.memory);
    let result = det.detect_timed(view, &mut st.dets);
    det.swap_memory(&mut cam.memory);
    let stages = match result {
        Ok(stages) => stages,
        Err(e) => {
            st.models.error(format_args!("detection failed: {e}"));
            return Ok(());
        }
    };
    pool.health
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .record(frame.camera, t0.elapsed());
    cam.timers.inference.record(t0.elapsed().as_secs_f64());
    cam.timers.engine.record(stages.inference.as_secs_f64());
    tracing::trace!(
        inference_ms = t0.elapsed().as_millis() as u64,
        objects = st.dets.len(),
        "analysed"
    );
    let info = det.info();
    if ctx.snapshots.wanted(frame.camera) {
        ctx.snapshots.fulfil(frame.camera, || {
            // Within the message limit: a snapshot command publishes it.
            let evidence = ctx.evidence();
            crate::incident::overview(cam.rules.set(), &info.labels, view, &st.dets, &evidence)
                .map_err(|e| e.to_string())
        });
    }
    let aspect = f64::from(frame.width) / f64::from(frame.height.max(1));
    let now = ctx.clock.monotonic();
    cam.refresh_standing(ctx.standing);
    cam.rules
        .evaluate(now, frame.captured, aspect, &st.dets, &mut st.events);
    board
        .counters(frame.camera)
        .open_incidents
        .store(cam.rules.open_incidents() as u64, Ordering::Relaxed);
    for event in st.events.drain(..) {
        let opened = event.state == crate::rules::EventState::Open;
        if opened {
            crate::prometheus::incident_opened(&cam.id, event.kind.as_str());
            if ctx.clips.wants(event.kind.as_str()) {
                ctx.clips.order(super::clipper::Order {
                    index: frame.camera,
                    camera: cam.id.clone(),
                    incident: event.id,
                    kind: event.kind.as_str(),
                    at: event.frame_time,
                    seen: SystemTime::now(),
                });
            }
        }
        let evidence = ctx.evidence();
        let sent = match cam.main_stream {
            // Evidence from the main stream is decoded on the evidence thread; every event of
            // the camera goes that way, so that none overtakes its incident's `open`.
            Some(clock) if crate::incident::wants_evidence(event.state, &evidence) => ctx.send_job(
                super::stills::Job::Render(Box::new(super::stills::Render {
                    camera: cam.id.clone(),
                    set: cam.rules.set().clone(),
                    clock,
                    model: info.clone(),
                    frame: frame.copied(),
                    event,
                    evidence,
                    queued: Instant::now(),
                })),
            ),
            main => {
                let out = outgoing(
                    ctx.identity,
                    &cam.id,
                    cam.rules.set(),
                    info,
                    frame,
                    event,
                    &evidence,
                );
                if main.is_some() {
                    ctx.send_job(super::stills::Job::Pass(out))
                } else {
                    ctx.tx.blocking_send(out).is_ok()
                }
            }
        };
        if !sent {
            return Err(SessionGone);
        }
        if opened && let Ok(age) = SystemTime::now().duration_since(frame.captured) {
            cam.timers.latency.record(age.as_secs_f64());
        }
    }
    Ok(())
}

/// Give camera `u.index` new rules (closing its open incidents under the old ones) and make
/// sure its model reports down to what the new rules ask. False when the session is gone.
fn replace_work(
    board: &FrameBoard,
    pool: &Pool,
    u: live::WorkUpdate,
    ctx: &LoopContext<'_>,
) -> bool {
    let Some(mut old) = pool.camera(u.index) else {
        return true;
    };
    let main = old.main_stream.is_some();
    for out in pool.closing(u.index, &mut old, ctx.identity) {
        let sent = if main {
            ctx.send_job(super::stills::Job::Pass(out))
        } else {
            ctx.tx.blocking_send(out).is_ok()
        };
        if !sent {
            return false;
        }
    }
    *old = u.work;
    board
        .counters(u.index)
        .open_incidents
        .store(0, Ordering::Relaxed);
    pool.lower_floor(&old.model, u.floor);
    true
}

/// Run the picture checks on an analysed frame and post the result for the camera monitor.
fn watch_picture(
    board: &FrameBoard,
    i: usize,
    cam: &mut CameraWork,
    view: FrameView<'_>,
    now: Duration,
) {
    let k = board.counters(i);
    let restarts = k.reconnects.load(Ordering::Relaxed);
    if restarts != cam.restarts {
        cam.restarts = restarts;
        cam.picture.restart();
    }
    cam.gray.fill(view);
    let c = cam.picture.observe(now, &cam.gray);
    *k.condition
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner) = c;
}

/// Prepare the messages of one event (rendering evidence for `open`).
pub(super) fn outgoing(
    identity: &Identity,
    camera: &str,
    set: &crate::rules::RuleSet,
    model: &detect::ModelInfo,
    frame: &ingest::slot::Frame,
    event: IncidentEvent,
    evidence: &EvidenceSettings,
) -> Outgoing {
    let view = frame.view();
    let crate::incident::Rendered {
        zone: zone_name,
        line: line_name,
        snapshot,
        omitted,
    } = crate::incident::render(set, &model.labels, view, &event, evidence);
    let identity = identity.clone();
    let camera = camera.to_string();
    let (model_name, model_version, labels) = (
        model.name.clone(),
        model.version.clone(),
        Arc::clone(&model.labels),
    );
    tracing::info!(
        incident = %event.id,
        state = event.state.as_str(),
        zone = zone_name.as_deref().unwrap_or("-"),
        line = line_name.as_deref().unwrap_or("-"),
        objects = event.objects.len(),
        "{} {}",
        event.kind.as_str(),
        event.state.as_str()
    );
    let lane = match event.kind {
        IncidentType::Fire | IncidentType::Smoke => Lane::Fire,
        _ => Lane::Security,
    };
    Outgoing::Incident {
        lane,
        build: Box::new(move |seq| {
            let snap_ref = snapshot
                .as_ref()
                .map(|j| crate::incident::snapshot_ref(&identity, &camera, &event, j));
            let ctx = IncidentContext {
                identity: &identity,
                camera: &camera,
                zone: zone_name.as_deref(),
                line: line_name.as_deref(),
                model_name: &model_name,
                model_version: &model_version,
                labels: &labels,
            };
            let body = payload::incident(
                ctx,
                seq,
                &event,
                payload::Snapshot::of(snap_ref.as_ref(), omitted.as_deref()),
            );
            let mut msgs = vec![Message {
                topic: identity.incident_topic(&camera),
                payload: body.to_string().into_bytes(),
                retain: false,
            }];
            if let (Some(j), Some(r)) = (snapshot, snap_ref) {
                msgs.push(Message {
                    topic: r.topic,
                    payload: j.bytes,
                    retain: false,
                });
            }
            msgs
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::{contain, count};

    #[test]
    fn a_panic_is_contained_with_its_message() {
        assert_eq!(contain(|| 7), Ok(7));
        let fixed: Result<(), String> = contain(|| panic!("min > max"));
        assert_eq!(fixed, Err("min > max".to_string()));
        let limit = 3;
        let formatted: Result<(), String> = contain(|| panic!("index {limit} out of range"));
        assert_eq!(formatted, Err("index 3 out of range".to_string()));
    }

    #[test]
    fn one_thread_per_usable_core_and_no_more_than_cameras() {
        assert_eq!(count(0, 2, 1, 4), 2);
        assert_eq!(count(0, 2, 1, 1), 1, "one camera: one thread");
        assert_eq!(count(1, 2, 1, 4), 1, "configured");
        assert_eq!(count(3, 2, 1, 4), 3, "configured past the cores");
        assert_eq!(count(6, 2, 1, 4), 4, "never past the cameras");
        assert_eq!(
            count(0, 8, 2, 16),
            4,
            "ort models with 2 intra-op threads each"
        );
        assert_eq!(count(0, 1, 4, 3), 1, "never zero");
        assert_eq!(count(0, 8, 1, 0), 1, "no camera enabled: one idle thread");
    }
}
