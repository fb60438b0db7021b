//! The running agent: wires ingest → detect → rules → publish for a validated config.
//!
//! Threads and tasks:
//! - one `ingest-{camera}` thread per camera supervises its GStreamer pipeline;
//! - `detect-{n}` threads, one per usable core (at most one per camera), take the freshest
//!   frame of each camera in turn, run the camera's model and rules, render evidence and hand
//!   events to the session over a bounded channel ([`workers`]);
//! - one tokio task owns the MQTT session.
//!
//! Shutdown: the trigger future resolves → the stop flag halts ingest and inference → the
//! session drains the channel, publishes `stopped` and disconnects.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::{mpsc, watch};

use crate::clock::SystemClock;
use crate::config::{ConfigError, Diagnostics, Loaded};
use crate::detect::{self, DetectError, LoadedCard};
use crate::diag;
use crate::ingest::picture::{Gray, PictureSettings, PictureWatch};
use crate::ingest::{self, IngestError, slot::FrameBoard};
use crate::publish::durable::ORPHAN_REASON;
use crate::publish::{self, Durable, Outgoing, SessionConfig, SessionStats};
use crate::publish::{Identity, Inventory, ModelLine};
use crate::rules::{CameraRules, RuleSet};
use crate::telemetry;

mod clipper;
mod desk;
mod live;
mod metrics;
mod models;
mod push;
mod stills;
mod workers;

/// Why the agent cannot start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The config or a card it names is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A model cannot be loaded.
    #[error("model \"{name}\": {source}")]
    Model {
        /// Model name in the config.
        name: String,
        /// What is wrong.
        source: DetectError,
    },
    /// GStreamer is not usable.
    #[error(transparent)]
    Ingest(#[from] IngestError),
    /// The broker's TLS or credential files are unusable or exposed.
    #[error("{0}")]
    Security(String),
    /// A thread or the runtime could not start.
    #[error("cannot start: {0}")]
    Runtime(String),
}

/// A config whose model cards were read and whose rules were resolved against the labels.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The validated config.
    pub loaded: Loaded,
    /// Card of each model, by model name.
    pub cards: HashMap<String, LoadedCard>,
    /// Rules per camera (config order).
    pub rules: Vec<RuleSet>,
}

impl Plan {
    /// Read the model cards (checking the model files' checksums) and resolve every zone's
    /// classes. All problems are reported together, located in the config.
    pub fn build(loaded: Loaded) -> Result<Plan, StartError> {
        let mut cards = HashMap::new();
        for m in &loaded.config.models {
            let card = match m.builtin {
                Some(crate::config::Builtin::Fire) => detect::firecue::card(),
                None => detect::card::load(&loaded.resolve(&m.card))?,
            };
            detect::verify_checksum(&card).map_err(|e| StartError::Model {
                name: m.name.clone(),
                source: e,
            })?;
            cards.insert(m.name.clone(), card);
        }
        let mut problems = Vec::new();
        for (i, m) in loaded.config.models.iter().enumerate() {
            let Some(card) = m.fuse_with.as_ref().and_then(|p| cards.get(p)) else {
                continue;
            };
            if detect::fusion::kinds_of(card).iter().all(Option::is_none) {
                problems.push(loaded.diagnostic(
                    &format!("models[{i}].fuse_with"),
                    format!(
                        "model \"{}\" ({}) maps no class to fire or smoke (see [incidents] in its card); the built-in fire detector fuses only with a fire/smoke model",
                        card.card.name, card.path.display()
                    ),
                ));
            }
        }
        let mut rules = Vec::new();
        for (ci, cam) in loaded.config.cameras.iter().enumerate() {
            let Some(card) = cards.get(&cam.model) else {
                return Err(StartError::Runtime(format!(
                    "camera {} names unknown model {}",
                    cam.id, cam.model
                )));
            };
            match crate::rules::resolve::resolve(cam, ci, card) {
                Ok(set) => rules.push(set),
                Err(found) => problems.extend(
                    found
                        .into_iter()
                        .map(|(path, message)| loaded.diagnostic(&path, message)),
                ),
            }
        }
        if !problems.is_empty() {
            return Err(StartError::Config(ConfigError::Invalid(Diagnostics(
                problems,
            ))));
        }
        Ok(Plan {
            loaded,
            cards,
            rules,
        })
    }

    /// The device identity.
    pub fn identity(&self) -> Identity {
        Identity {
            device: self.loaded.config.device.id.clone(),
            district: self.loaded.config.device.district.clone(),
        }
    }
}

/// What a finished run reports.
#[derive(Debug, Clone, Default)]
pub struct RunReport {
    /// Session counters.
    pub session: SessionStats,
    /// Frames analysed per camera id.
    pub analysed: Vec<(String, u64)>,
}

/// Per-camera state owned by the inference thread.
pub struct CameraWork {
    id: String,
    model: String,
    rules: CameraRules,
    picture: PictureWatch,
    gray: Gray,
    restarts: u64,
    timers: crate::prometheus::CameraTimers,
    /// What the camera's detector remembers of it between frames (see
    /// [`Detector::swap_memory`]).
    memory: detect::firecue::CameraMemory,
    /// The [`crate::rules::standdown::Board`] version its rules last took their disarms from.
    standing_seen: u64,
    /// Evidence comes from the main stream (the camera analyses a `detect_url`), its units'
    /// times read by this clock.
    main_stream: Option<crate::config::FrameClock>,
}

impl CameraWork {
    /// On the built-in fire detector: which of its cues the stream allows (`"colour"` or
    /// `"greyscale"`), once a frame was analysed; `None` for other models.
    fn fire_cues(&self) -> Option<&'static str> {
        let scene = detect::fusion::scene_of(&self.memory)?;
        Some(if scene.greyscale() {
            "greyscale"
        } else {
            "colour"
        })
    }

    /// Take what the centre stands down on this camera from `board`, when it changed since
    /// last time (one atomic load otherwise).
    fn refresh_standing(&mut self, board: &crate::rules::standdown::Board) {
        if let Some(disarms) = board.changed(&self.id, &mut self.standing_seen) {
            self.rules.stand_down(disarms);
        }
    }

    fn new(c: &crate::config::Camera, r: &RuleSet) -> Self {
        CameraWork {
            main_stream: c.detect_url.as_ref().map(|_| c.frame_time),
            id: c.id.clone(),
            model: c.model.clone(),
            rules: CameraRules::new(r.clone()),
            picture: PictureWatch::new(PictureSettings {
                frozen: crate::config::duration(c.frozen_s),
                tamper: crate::config::duration(c.tamper_s),
            }),
            gray: Gray::default(),
            restarts: 0,
            timers: crate::prometheus::CameraTimers::new(&c.id),
            memory: None,
            standing_seen: 0,
        }
    }
}

/// Run the agent until `shutdown` resolves.
pub async fn run(
    plan: Plan,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<RunReport, StartError> {
    let notifier = crate::notify::Notifier::from_env();
    notifier.status("loading the models");
    ingest::init()?;
    let config = plan.loaded.config.clone();
    let identity = plan.identity();

    // Load every model before touching a camera: a bad model refuses the start.
    let mut detectors = plan.detectors(|_| true)?;
    let mut floors: HashMap<String, f32> = HashMap::new();
    for (name, det) in &mut detectors {
        // Rules may ask for weaker detections than the card's default.
        let floor = config
            .cameras
            .iter()
            .zip(&plan.rules)
            .filter(|(c, _)| &c.model == name)
            .map(|(_, r)| r.detector_floor)
            .fold(f32::INFINITY, f32::min);
        if floor.is_finite() {
            det.lower_thresholds(floor);
        }
        floors.insert(name.clone(), floor);
    }

    // The load's peak (protobuf, graph, optimisation) is freed by now; give it back.
    let (rss_loaded, rss_trimmed) = crate::memory::trim_and_measure();
    tracing::info!(
        rss_mib = rss_loaded,
        after_trim_mib = rss_trimmed,
        "models loaded; freed load memory returned"
    );

    let started = Instant::now();
    let enabled: Vec<usize> = (0..config.cameras.len())
        .filter(|&i| config.cameras[i].enabled)
        .collect();
    let clips = &config.clips;
    let board = FrameBoard::recording(
        config.cameras.len(),
        clips.enabled.then(|| {
            (
                clips.keep(),
                usize::try_from(clips.buffer_bytes).unwrap_or(usize::MAX),
            )
        }),
    );
    let stop = Arc::new(AtomicBool::new(false));
    let (tx, rx) = mpsc::channel::<Outgoing>(1024);
    let (shutdown_tx, shutdown_rx) = watch::channel(false);

    let inventory = Inventory {
        version: env!("CARGO_PKG_VERSION").to_string(),
        started_at: Some(SystemTime::now()),
        cameras: config.cameras.iter().map(|c| c.id.clone()).collect(),
        models: config
            .models
            .iter()
            .filter_map(|m| {
                plan.cards.get(&m.name).map(|c| ModelLine {
                    name: c.card.name.clone(),
                    version: c.card.version.clone(),
                    engine: detectors.get(&m.name).map_or("none", |d| d.engine()),
                })
            })
            .collect(),
        timezone: crate::clock::timezone(),
    };
    let models = inventory.models.clone();
    let security = publish::tls::load(&config.mqtt, |p| plan.loaded.resolve(p))
        .map_err(|e| StartError::Security(e.to_string()))?;
    let state_dir = plan.loaded.resolve(&config.storage.state_dir);
    let mut outbox = open_outbox(&state_dir, &config)?;
    let limit = Arc::new(publish::limit::MessageLimit::of(&config.mqtt));
    outbox.set_limit(Arc::clone(&limit));
    let gauge = outbox.gauge();
    let (incident_tap, _) = tokio::sync::broadcast::channel(256);
    outbox.tap_incidents(incident_tap.clone());
    // Commands from the centre: the session hands them over, the main loop below answers.
    let (command_tx, mut command_rx) = mpsc::channel::<publish::Received>(64);
    let inbound = config.commands.enabled.then(|| publish::Inbound {
        filter: identity.command_filter(),
        tx: command_tx,
    });
    let commands = crate::command::Commands::new(
        config.commands.clone(),
        identity.clone(),
        &state_dir,
        &config.cameras,
    );
    let session = tokio::spawn(publish::run(
        SessionConfig {
            mqtt: config.mqtt.clone(),
            identity: identity.clone(),
            inventory,
            max_packet_bytes: 4 << 20,
            limit: Arc::clone(&limit),
            flush: crate::config::duration(config.outbox.flush_s),
            security,
            inbound,
        },
        outbox,
        rx,
        shutdown_rx.clone(),
    ));

    // Before any metric handle is made below: handles made earlier would stay no-ops.
    if let Some(listen) = &config.metrics.listen {
        crate::prometheus::install(listen).map_err(|e| StartError::Runtime(e.to_string()))?;
        tracing::info!(listen = %listen, "Prometheus metrics served on /metrics");
    }
    let work: Vec<CameraWork> = config
        .cameras
        .iter()
        .zip(plan.rules.iter())
        .map(|(c, r)| CameraWork::new(c, r))
        .collect();
    let watched = Arc::new(std::sync::Mutex::new(
        config
            .cameras
            .iter()
            .enumerate()
            .map(|(index, c)| crate::health::Watched::of(index, c))
            .collect::<Vec<_>>(),
    ));
    let monitor_stop = Arc::new(AtomicBool::new(false));
    if config.metrics.listen.is_some() {
        tokio::spawn(metrics::mirror(
            Arc::clone(&board),
            config.cameras.iter().map(|c| c.id.clone()).collect(),
            Arc::clone(&gauge),
            Arc::clone(&monitor_stop),
        ));
    }
    let monitor = tokio::spawn(telemetry::camera_monitor(
        Arc::clone(&board),
        Arc::clone(&watched),
        identity.clone(),
        tx.clone(),
        Arc::clone(&monitor_stop),
    ));
    let (reload_tx, mut reload_rx) = mpsc::channel::<diag::ReloadReply>(4);
    let (work_tx, work_rx) = std::sync::mpsc::channel::<live::WorkUpdate>();
    let health = telemetry::Health::new(
        config.cameras.len(),
        crate::config::duration(config.health.interval_s),
        Arc::clone(&gauge),
        state_dir.clone(),
    )
    .with_models(models);
    // What the centre stands down: the desk fills it before the first frame is analysed.
    let standing = Arc::new(crate::rules::standdown::Board::default());
    let diag = Arc::new(diag::Shared {
        identity: identity.clone(),
        started_at: SystemTime::now(),
        started,
        broker: config
            .mqtt
            .endpoints()
            .iter()
            .map(|b| b.address())
            .collect::<Vec<_>>()
            .join(", "),
        cameras: std::sync::Mutex::new(config.cameras.iter().map(diag::CameraInfo::of).collect()),
        reload: Some(reload_tx),
        board: Arc::clone(&board),
        outbox: gauge,
        outbox_path: state_dir.join("outbox.db"),
        state_dir: state_dir.clone(),
        health: health.latest(),
        incidents: incident_tap,
        snapshots: diag::Snapshots::default(),
        standing: Arc::clone(&standing),
    });
    let diag_task = config.diag.enabled.then(|| {
        let path = plan.loaded.resolve(&config.diag.socket);
        match diag::bind(&path) {
            Ok(listener) => {
                tracing::info!(socket = %path.display(), "diagnostics socket listening");
                Some(tokio::spawn(diag::serve(
                    listener,
                    path,
                    Arc::clone(&diag),
                    shutdown_rx.clone(),
                )))
            }
            Err(e) => {
                tracing::error!(
                    "diagnostics socket unavailable (vigil status and tail will not work): {e}"
                );
                None
            }
        }
    });
    // ONNX Runtime runs a model on `threads` of its own; tract on the calling thread.
    let max_threads = config
        .models
        .iter()
        .map(|m| match detectors.get(&m.name).map(|d| d.engine()) {
            Some("ort") => m.threads.max(1),
            _ => 1,
        })
        .max()
        .unwrap_or(1);
    let threads = workers::count(
        config.inference.threads,
        workers::available_cores(),
        max_threads,
        enabled.len(),
    );
    let pool = Arc::new(workers::Pool::new(
        threads, work, &detectors, &floors, health, work_rx, started,
    ));
    tracing::info!(
        threads,
        configured = config.inference.threads,
        "inference threads"
    );
    // Thread 0 runs the models loaded above; the others fork them when they first need them.
    let mut first = Some(detectors);
    let mut detect_threads = Vec::with_capacity(threads);
    // A start that fails half-way stops the inference threads it already started.
    let abandon = |threads: Vec<std::thread::JoinHandle<()>>| {
        stop.store(true, Ordering::Relaxed);
        board.wake_all();
        for t in threads {
            let _ = t.join();
        }
    };
    let clipper = Arc::new(clipper::Clipper::new(
        Arc::clone(&board),
        Arc::clone(&diag),
        config.clips.clone(),
        state_dir.join("clips"),
    ));
    let (order_tx, order_rx) = mpsc::channel(16);
    let orders = Arc::new(clipper::Orders::new(&config.clips, order_tx));
    let clip_task = tokio::spawn(clipper::serve(
        Arc::clone(&clipper),
        order_rx,
        tx.clone(),
        identity.clone(),
        Arc::clone(&limit),
        Arc::clone(&pool),
    ));
    let (stills, stills_thread) = stills::spawn(
        Arc::clone(&board),
        identity.clone(),
        tx.clone(),
        Arc::clone(&stop),
    )
    .map_err(|e| StartError::Runtime(format!("cannot start the evidence thread: {e}")))?;
    for n in 0..threads {
        let stills = stills.clone();
        let orders = Arc::clone(&orders);
        let board = Arc::clone(&board);
        let stop = Arc::clone(&stop);
        let evidence = config.evidence;
        let diag = Arc::clone(&diag);
        let pool = Arc::clone(&pool);
        let identity = identity.clone();
        let tx = tx.clone();
        let limit = Arc::clone(&limit);
        let standing = Arc::clone(&standing);
        let detectors = first.take().unwrap_or_default();
        let handle = std::thread::Builder::new()
            .name(format!("detect-{n}"))
            .spawn(move || {
                let ctx = workers::LoopContext {
                    identity: &identity,
                    tx: &tx,
                    stop: &stop,
                    clock: &SystemClock::new(),
                    evidence: &evidence,
                    limit: &limit,
                    snapshots: &diag.snapshots,
                    standing: &standing,
                    clips: &orders,
                    stills: &stills,
                };
                workers::detect_loop(&board, &pool, n, detectors, &ctx);
            });
        match handle {
            Ok(h) => detect_threads.push(h),
            Err(e) => {
                abandon(detect_threads);
                return Err(StartError::Runtime(format!(
                    "cannot start an inference thread: {e}"
                )));
            }
        }
    }
    // The inference threads hold the evidence thread's only senders: it ends after them.
    drop(stills);
    // Kept for command results and the `close` events of a clean stop.
    let closer = tx.clone();
    drop(tx);
    let (mut desk, mut jobs_done) = desk::Desk::new(
        commands,
        closer.clone(),
        Arc::clone(&diag),
        Arc::clone(&standing),
        Arc::clone(&pool),
        clipper,
        Arc::clone(&limit),
    );
    let mut cameras = live::Cameras::new(config.cameras.len(), Arc::clone(&board));
    for &i in &enabled {
        if let Err(e) = cameras.start(i, &config.cameras[i]) {
            cameras.stop_all();
            abandon(detect_threads);
            return Err(e.into());
        }
    }
    tracing::info!(cameras = enabled.len(), "vigil running");
    notifier.send(&format!(
        "READY=1\nSTATUS=running: {} camera(s) starting",
        enabled.len()
    ));
    let watchdog = tokio::spawn(watchdog(
        notifier,
        Arc::clone(&board),
        Arc::clone(&pool),
        Arc::clone(&diag),
        Arc::clone(&monitor_stop),
    ));
    let mut reloader = live::Reloader {
        plan,
        cameras,
        work: work_tx,
        watched,
        diag: Arc::clone(&diag),
        trial: None,
    };
    let (tried_tx, mut tried_rx) = mpsc::channel::<push::Tried>(1);
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            Some(reply) = reload_rx.recv() => {
                let result = reloader.reload().await;
                match &result {
                    Ok(_) => desk.prune(&reloader.plan.loaded.config.cameras),
                    Err(e) => tracing::warn!("configuration reload refused: {e}"),
                }
                let _ = reply.send(result);
            }
            Some(request) = command_rx.recv() => {
                let ctx = crate::command::Context {
                    version: env!("CARGO_PKG_VERSION"),
                    uptime: started.elapsed(),
                    config_source: &reloader.plan.loaded.source,
                    cameras: &reloader.plan.loaded.config.cameras,
                };
                if let Some((pending, text)) = desk.request(&request, &ctx) {
                    push::take(&mut reloader, &mut desk, &tried_tx, pending, text).await;
                }
            }
            Some(done) = jobs_done.recv() => desk.finished(done),
            Some(tried) = tried_rx.recv() => push::settled(&mut reloader, &mut desk, tried).await,
        }
    }
    tracing::info!("shutting down");
    // The desk's handle on the session must go, or the session would wait for it forever.
    drop(desk);
    let bye = crate::notify::Notifier::from_env();
    bye.send("STOPPING=1\nSTATUS=stopping: finishing analysis, delivering the outbox");
    stop.store(true, Ordering::Relaxed);
    board.wake_all();
    reloader.cameras.stop_all();
    for t in detect_threads {
        let _ = t.join();
    }
    // Evidence still being drawn goes out before the `close` events below.
    let _ = stills_thread.join();
    // Clips still waiting for their end are not made: their handles on the session go.
    drop(orders);
    clip_task.abort();
    let _ = clip_task.await;
    // Every incident still open gets its `close` before the session flushes the outbox.
    let closing = pool.close_all(&identity);
    if !closing.is_empty() {
        tracing::info!(
            incidents = closing.len(),
            "closing open incidents before stopping"
        );
    }
    for out in closing {
        let _ = closer.send(out).await;
    }
    drop(closer);
    // Cameras say goodbye (retained offline) before the session says `stopped`.
    monitor_stop.store(true, Ordering::Relaxed);
    let _ = monitor.await;
    watchdog.abort();
    let _ = shutdown_tx.send(true);
    if let Some(Some(task)) = diag_task {
        let _ = task.await;
    }
    let session = session.await.unwrap_or_default();
    let uptime = started.elapsed().as_secs_f64().max(1e-3);
    let mut analysed = Vec::new();
    for (i, c) in config.cameras.iter().enumerate() {
        let k = board.counters(i);
        let n = k.analysed.load(Ordering::Relaxed);
        tracing::info!(
            camera = %c.id,
            analysed = n,
            analysed_fps = format!("{:.2}", n as f64 / uptime),
            received = k.received.load(Ordering::Relaxed),
            dropped = k.dropped.load(Ordering::Relaxed),
            reconnects = k.reconnects.load(Ordering::Relaxed),
            "camera totals"
        );
        analysed.push((c.id.clone(), n));
    }
    Ok(RunReport { session, analysed })
}

/// Open the outbox in the state folder (created if missing).
fn open_outbox(
    state_dir: &std::path::Path,
    config: &crate::config::Config,
) -> Result<Durable, StartError> {
    let unusable = |e: &dyn std::fmt::Display| {
        StartError::Runtime(format!(
            "cannot use the state folder {} (storage.state_dir): {e}",
            state_dir.display()
        ))
    };
    // A folder that cannot be made is reported by the outbox below, which then runs in memory:
    // fire and smoke must still go out.
    if let Err(e) = std::fs::create_dir_all(state_dir) {
        tracing::error!(
            "cannot create the state folder {} (storage.state_dir): {e}",
            state_dir.display()
        );
    }
    let path = state_dir.join("outbox.db");
    let max_bytes = usize::try_from(config.outbox.max_bytes.0).unwrap_or(usize::MAX);
    let (mut outbox, _aside) = Durable::open_or_memory(&path, max_bytes, publish::MAX_IN_FLIGHT)
        .map_err(|e| unusable(&e))?;
    // Before the outbox, `seq` was kept in a plain file: carry its number over (once), so that
    // numbers never go back on an upgraded box.
    let legacy = state_dir.join("seq");
    if let Ok(text) = std::fs::read_to_string(&legacy)
        && let Ok(n) = text.trim().parse::<u64>()
    {
        outbox.raise_seq(n).map_err(|e| unusable(&e))?;
        let done = state_dir.join("seq.imported");
        if let Err(e) = std::fs::rename(&legacy, &done) {
            tracing::warn!("cannot rename {} after importing it: {e}", legacy.display());
        }
        tracing::info!(
            seq = n,
            "imported the sequence number of the previous state file"
        );
    }
    // Incidents a crash or a power cut left open: the centre must not hold them open forever.
    let orphans = outbox
        .close_orphans(ORPHAN_REASON)
        .map_err(|e| unusable(&e))?;
    if orphans > 0 {
        tracing::warn!(
            incidents = orphans,
            "closing incidents left open when the agent last stopped without closing them"
        );
    }
    let last_seq = outbox.last_seq().map_err(|e| unusable(&e))?;
    tracing::info!(
        outbox = %path.display(),
        waiting = outbox.len(),
        last_seq,
        "outbox opened"
    );
    Ok(outbox)
}

/// Tell systemd how the agent is doing (`STATUS=`) every few seconds, and ping its watchdog
/// (`WATCHDOG=1`) only while the inference loop turns: a wedged detector or a wedged event
/// loop (this task stops running) stops the pings, and systemd restarts the service.
async fn watchdog(
    notifier: crate::notify::Notifier,
    board: Arc<FrameBoard>,
    pool: Arc<workers::Pool>,
    diag: Arc<diag::Shared>,
    stop: Arc<AtomicBool>,
) {
    if !notifier.active() {
        return;
    }
    let ping = crate::notify::watchdog_interval();
    let every = ping
        .unwrap_or(Duration::from_secs(10))
        .min(Duration::from_secs(10));
    let mut tick = tokio::time::interval(every);
    while !stop.load(Ordering::Relaxed) {
        tick.tick().await;
        // How long ago the stalest inference thread last turned its loop.
        let stale = pool.stalest();
        let cameras = diag
            .cameras
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .len();
        let streaming = (0..cameras)
            .filter(|&i| {
                board
                    .counters(i)
                    .published
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .as_ref()
                    .is_some_and(|p| p.state == "streaming")
            })
            .count();
        let o = diag.outbox.get();
        let waiting: usize = o.depth.iter().sum();
        let mut msg = format!(
            "STATUS=running: {streaming}/{cameras} camera(s) streaming, broker {}, {waiting} message(s) waiting",
            if o.connected {
                "connected"
            } else {
                "NOT connected"
            }
        );
        // Progress: the inference loop turned within the ping interval.
        if let Some(p) = ping
            && stale < p.max(Duration::from_secs(2))
        {
            msg.push_str("\nWATCHDOG=1");
        }
        notifier.send(&msg);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sequence_number_of_the_old_state_file_is_carried_over_once() {
        let dir = std::env::temp_dir().join(format!("vigil-legacy-seq-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        std::fs::write(dir.join("seq"), "41\n").expect("legacy file");
        let config = crate::config::Config::default();
        let outbox = open_outbox(&dir, &config).expect("open");
        assert_eq!(outbox.last_seq().expect("seq"), 41);
        assert!(!dir.join("seq").exists() && dir.join("seq.imported").exists());
        drop(outbox);
        // A second start does not import again (and never lowers the mark).
        std::fs::write(dir.join("seq"), "3\n").expect("stale file");
        let outbox = open_outbox(&dir, &config).expect("reopen");
        assert_eq!(outbox.last_seq().expect("seq"), 41);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
