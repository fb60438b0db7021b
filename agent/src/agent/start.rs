//! The steps of a start, in order: load the models, open the outbox and start the session,
//! start the camera monitor (and the metrics), share the agent's state with the diagnostics
//! socket, then start the inference threads with the evidence and clip workers beside them.
//! Each step is a function of what the previous ones made; [`super::run`] calls them.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Instant, SystemTime};

use tokio::sync::{broadcast, mpsc, watch};
use tokio::task::JoinHandle as Task;

use super::{CameraWork, Plan, Services, StartError, clipper, live, metrics, stills, workers};
use crate::clock::SystemClock;
use crate::config::Config;
use crate::detect::Detector;
use crate::diag;
use crate::ingest::slot::FrameBoard;
use crate::publish::durable::ORPHAN_REASON;
use crate::publish::limit::MessageLimit;
use crate::publish::{self, Durable, Identity, Inventory, ModelLine, OutboxGauge, Outgoing};
use crate::publish::{SessionConfig, SessionStats};
use crate::telemetry;

/// The loaded detectors, by model name.
pub type Detectors = HashMap<String, Box<dyn Detector>>;

/// Load every model before touching a camera (a bad model refuses the start), lower each one's
/// thresholds to the weakest its cameras' rules ask for, and give the load's peak memory back.
/// Returns the detectors and each model's floor.
pub fn load_models(plan: &Plan) -> Result<(Detectors, HashMap<String, f32>), StartError> {
    let config = &plan.loaded.config;
    let mut detectors = plan.detectors(|_| true)?;
    let mut floors = HashMap::new();
    for (name, det) in &mut detectors {
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
    let (rss_loaded, rss_trimmed) = crate::os::memory::trim_and_measure();
    tracing::info!(
        rss_mib = rss_loaded,
        after_trim_mib = rss_trimmed,
        "models loaded; freed load memory returned"
    );
    Ok((detectors, floors))
}

/// The frame board of the config's cameras, with the pre-event buffers clips need.
pub fn frame_board(config: &Config) -> Arc<FrameBoard> {
    let clips = &config.clips;
    FrameBoard::recording(
        config.cameras.len(),
        clips.enabled.then(|| {
            (
                clips.keep(),
                usize::try_from(clips.buffer_bytes).unwrap_or(usize::MAX),
            )
        }),
    )
}

/// What the birth message lists: version, cameras, each model with the engine running it.
pub fn inventory(plan: &Plan, detectors: &Detectors) -> Inventory {
    let config = &plan.loaded.config;
    Inventory {
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
    }
}

/// The running session and what the rest of the agent takes from it.
pub struct Transport {
    /// The session task; it reports its counters when it ends.
    pub task: Task<SessionStats>,
    /// The outbox's figures, live.
    pub gauge: Arc<OutboxGauge>,
    /// The broker's message limit.
    pub limit: Arc<MessageLimit>,
    /// Every incident event as the outbox stores it (`vigil tail`).
    pub incidents: broadcast::Sender<Arc<str>>,
    /// Commands from the centre, as the session receives them.
    pub commands: mpsc::Receiver<publish::Received>,
    /// The state folder.
    pub state_dir: PathBuf,
}

/// Open the outbox and start the MQTT session on `rx` (commands subscribed when enabled).
pub fn session(
    plan: &Plan,
    identity: &Identity,
    inventory: Inventory,
    rx: mpsc::Receiver<Outgoing>,
    shutdown: watch::Receiver<bool>,
) -> Result<Transport, StartError> {
    let config = &plan.loaded.config;
    let security = publish::tls::load(&config.mqtt, |p| plan.loaded.resolve(p))
        .map_err(|e| StartError::Security(e.to_string()))?;
    let state_dir = plan.loaded.resolve(&config.storage.state_dir);
    let mut outbox = open_outbox(&state_dir, config)?;
    let limit = Arc::new(MessageLimit::of(&config.mqtt));
    outbox.set_limit(Arc::clone(&limit));
    let gauge = outbox.gauge();
    let (incidents, _) = broadcast::channel(256);
    outbox.tap_incidents(incidents.clone());
    let (command_tx, commands) = mpsc::channel(64);
    let inbound = config.commands.enabled.then(|| publish::Inbound {
        filter: identity.command_filter(),
        tx: command_tx,
    });
    let session = SessionConfig {
        mqtt: config.mqtt.clone(),
        identity: identity.clone(),
        inventory,
        max_packet_bytes: 4 << 20,
        limit: Arc::clone(&limit),
        flush: crate::config::duration(config.outbox.flush_s),
        security,
        inbound,
    };
    let task = tokio::spawn(publish::run(session, outbox, rx, shutdown));
    Ok(Transport {
        task,
        gauge,
        limit,
        incidents,
        commands,
        state_dir,
    })
}

/// Open the outbox in the state folder (created if missing).
pub fn open_outbox(state_dir: &Path, config: &Config) -> Result<Durable, StartError> {
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
    import_legacy_seq(&mut outbox, state_dir).map_err(|e| unusable(&e))?;
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

/// Before the outbox, `seq` was kept in a plain file: carry its number over (once), so that
/// numbers never go back on an upgraded box.
fn import_legacy_seq(
    outbox: &mut Durable,
    state_dir: &Path,
) -> Result<(), crate::publish::store::StoreError> {
    let legacy = state_dir.join("seq");
    if let Ok(text) = std::fs::read_to_string(&legacy)
        && let Ok(n) = text.trim().parse::<u64>()
    {
        outbox.raise_seq(n)?;
        let done = state_dir.join("seq.imported");
        if let Err(e) = std::fs::rename(&legacy, &done) {
            tracing::warn!("cannot rename {} after importing it: {e}", legacy.display());
        }
        tracing::info!(
            seq = n,
            "imported the sequence number of the previous state file"
        );
    }
    Ok(())
}

/// The camera monitor, and the metrics endpoint's mirror beside it.
pub struct Monitor {
    /// What the monitor watches (a reload changes it).
    pub watched: Arc<std::sync::Mutex<Vec<crate::health::Watched>>>,
    /// The monitor's task.
    pub task: Task<()>,
    /// Stops the monitor (and the mirror and the watchdog).
    pub stop: Arc<AtomicBool>,
}

/// Serve the metrics when configured, then start the camera monitor (and the metrics mirror).
pub fn monitor(
    config: &Config,
    board: &Arc<FrameBoard>,
    gauge: &Arc<OutboxGauge>,
    identity: &Identity,
    tx: &mpsc::Sender<Outgoing>,
) -> Result<Monitor, StartError> {
    // Before any metric handle is made: handles made earlier would stay no-ops.
    if let Some(listen) = &config.metrics.listen {
        crate::prometheus::install(listen).map_err(|e| StartError::Runtime(e.to_string()))?;
        tracing::info!(listen = %listen, "Prometheus metrics served on /metrics");
    }
    let watched = Arc::new(std::sync::Mutex::new(
        config
            .cameras
            .iter()
            .enumerate()
            .map(|(index, c)| crate::health::Watched::of(index, c))
            .collect::<Vec<_>>(),
    ));
    let stop = Arc::new(AtomicBool::new(false));
    if config.metrics.listen.is_some() {
        tokio::spawn(metrics::mirror(
            Arc::clone(board),
            config.cameras.iter().map(|c| c.id.clone()).collect(),
            Arc::clone(gauge),
            Arc::clone(&stop),
        ));
    }
    let task = tokio::spawn(telemetry::camera_monitor(
        Arc::clone(board),
        Arc::clone(&watched),
        identity.clone(),
        tx.clone(),
        Arc::clone(&stop),
    ));
    Ok(Monitor {
        watched,
        task,
        stop,
    })
}

/// What the diagnostics socket reads from the running agent.
pub fn diag_shared(
    plan: &Plan,
    (started, board): (Instant, &Arc<FrameBoard>),
    transport: &Transport,
    health: Arc<telemetry::LatestHealth>,
    standing: &Arc<crate::rules::standdown::Board>,
    reload: mpsc::Sender<diag::ReloadReply>,
) -> Arc<diag::Shared> {
    let config = &plan.loaded.config;
    let brokers: Vec<String> = config
        .mqtt
        .endpoints()
        .iter()
        .map(|b| b.address())
        .collect();
    Arc::new(diag::Shared {
        identity: plan.identity(),
        started_at: SystemTime::now(),
        started,
        broker: brokers.join(", "),
        cameras: std::sync::Mutex::new(config.cameras.iter().map(diag::CameraInfo::of).collect()),
        reload: Some(reload),
        board: Arc::clone(board),
        outbox: Arc::clone(&transport.gauge),
        outbox_path: transport.state_dir.join("outbox.db"),
        state_dir: transport.state_dir.clone(),
        health,
        incidents: transport.incidents.clone(),
        snapshots: diag::Snapshots::default(),
        standing: Arc::clone(standing),
    })
}

/// Serve the diagnostics socket when enabled; a socket that cannot be bound is logged and the
/// agent runs without it.
pub fn diag_socket(
    plan: &Plan,
    shared: &Arc<diag::Shared>,
    shutdown: &watch::Receiver<bool>,
) -> Option<Task<()>> {
    let config = &plan.loaded.config;
    if !config.diag.enabled {
        return None;
    }
    let path = plan.loaded.resolve(&config.diag.socket);
    match diag::bind(&path) {
        Ok(listener) => {
            tracing::info!(socket = %path.display(), "diagnostics socket listening");
            Some(tokio::spawn(diag::serve(
                listener,
                path,
                Arc::clone(shared),
                shutdown.clone(),
            )))
        }
        Err(e) => {
            tracing::error!(
                "diagnostics socket unavailable (vigil status and tail will not work): {e}"
            );
            None
        }
    }
}

/// How many inference threads: the configured count, else one per usable core, at most one
/// per enabled camera; ONNX Runtime runs a model on `threads` of its own, tract on the calling
/// thread.
pub fn inference_threads(config: &Config, detectors: &Detectors) -> usize {
    let max_threads = config
        .models
        .iter()
        .map(|m| match detectors.get(&m.name).map(|d| d.engine()) {
            Some("ort") => m.threads.max(1),
            _ => 1,
        })
        .max()
        .unwrap_or(1);
    let enabled = config.cameras.iter().filter(|c| c.enabled).count();
    let threads = workers::count(
        config.inference.threads,
        workers::available_cores(),
        max_threads,
        enabled,
    );
    tracing::info!(
        threads,
        configured = config.inference.threads,
        "inference threads"
    );
    threads
}

/// The threads and tasks that analyse frames and make evidence.
pub struct Analysis {
    /// The inference threads' shared state.
    pub pool: Arc<workers::Pool>,
    /// The inference threads.
    pub threads: Vec<JoinHandle<()>>,
    /// The evidence thread (stills from main streams); it ends after the inference threads.
    pub stills: JoinHandle<()>,
    /// Clip orders; dropped at shutdown, so that the clip task's handles on the session go.
    pub orders: Arc<clipper::Orders>,
    /// The clip task.
    pub clips: Task<()>,
    /// The clipper (commands ask it for clips).
    clipper: Arc<clipper::Clipper>,
    /// Stops the inference threads (and the evidence thread).
    pub stop: Arc<AtomicBool>,
    /// Where the stop is told to threads waiting for frames.
    board: Arc<FrameBoard>,
}

/// Start the clip task, the evidence thread and `pool`'s inference threads (thread 0 runs the
/// models loaded at start, the others fork them when they first need them). A thread that
/// cannot start stops the ones already started.
pub fn analysis(
    s: &Services,
    (pool, threads): (Arc<workers::Pool>, usize),
    detectors: Detectors,
) -> Result<Analysis, StartError> {
    let config = &s.config;
    let stop = Arc::new(AtomicBool::new(false));
    let clipper = Arc::new(clipper::Clipper::new(
        Arc::clone(&s.board),
        Arc::clone(&s.diag),
        config.clips.clone(),
        s.transport.state_dir.join("clips"),
    ));
    let (order_tx, order_rx) = mpsc::channel(16);
    let orders = Arc::new(clipper::Orders::new(&config.clips, order_tx));
    let clips = tokio::spawn(clipper::serve(
        Arc::clone(&clipper),
        order_rx,
        s.tx.clone(),
        s.identity.clone(),
        Arc::clone(&s.transport.limit),
        Arc::clone(&pool),
    ));
    let (jobs, stills) = stills::spawn(
        Arc::clone(&s.board),
        s.identity.clone(),
        s.tx.clone(),
        Arc::clone(&stop),
    )
    .map_err(|e| StartError::Runtime(format!("cannot start the evidence thread: {e}")))?;
    let mut analysis = Analysis {
        pool,
        threads: Vec::new(),
        stills,
        orders,
        clips,
        clipper,
        stop,
        board: Arc::clone(&s.board),
    };
    let mut first = Some(detectors);
    for n in 0..threads {
        let detectors = first.take().unwrap_or_default();
        match detect_thread(n, detectors, &analysis, s, jobs.clone()) {
            Ok(h) => analysis.threads.push(h),
            Err(e) => {
                analysis.halt();
                return Err(StartError::Runtime(format!(
                    "cannot start an inference thread: {e}"
                )));
            }
        }
    }
    // The inference threads hold the evidence thread's only senders: it ends after them.
    drop(jobs);
    Ok(analysis)
}

/// Start inference thread `n`.
fn detect_thread(
    n: usize,
    detectors: Detectors,
    a: &Analysis,
    s: &Services,
    stills: std::sync::mpsc::SyncSender<stills::Job>,
) -> std::io::Result<JoinHandle<()>> {
    let (orders, board, stop, pool) = (
        Arc::clone(&a.orders),
        Arc::clone(&s.board),
        Arc::clone(&a.stop),
        Arc::clone(&a.pool),
    );
    let (diag, standing, limit) = (
        Arc::clone(&s.diag),
        Arc::clone(&s.standing),
        Arc::clone(&s.transport.limit),
    );
    let (identity, tx, evidence) = (s.identity.clone(), s.tx.clone(), s.config.evidence);
    std::thread::Builder::new()
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
        })
}

impl Analysis {
    /// Tell the inference threads to stop (and wake those waiting for a frame).
    pub fn signal(&self) {
        self.stop.store(true, Ordering::Relaxed);
        self.board.wake_all();
    }

    /// Stop the inference threads and wait for them (the evidence thread ends after them).
    pub fn halt(&mut self) {
        self.signal();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// Start the enabled cameras' ingest threads; one that cannot start stops those already
/// started.
pub fn cameras(config: &Config, board: &Arc<FrameBoard>) -> Result<live::Cameras, StartError> {
    let mut cameras = live::Cameras::new(config.cameras.len(), Arc::clone(board));
    for (i, c) in config.cameras.iter().enumerate().filter(|(_, c)| c.enabled) {
        if let Err(e) = cameras.start(i, c) {
            cameras.stop_all();
            return Err(e.into());
        }
    }
    Ok(cameras)
}

/// The commands desk: `commands` from the centre, with what they act on; command results and
/// clips go out through `s.tx`.
pub fn desk(
    s: &Services,
    a: &Analysis,
    commands: crate::command::Commands,
) -> (super::desk::Desk, mpsc::Receiver<super::desk::JobDone>) {
    super::desk::Desk::new(
        commands,
        s.tx.clone(),
        Arc::clone(&s.diag),
        Arc::clone(&s.standing),
        Arc::clone(&a.pool),
        Arc::clone(&a.clipper),
        Arc::clone(&s.transport.limit),
    )
}

/// The per-camera state the inference threads own, in config order.
pub fn camera_work(plan: &Plan) -> Vec<CameraWork> {
    let cameras = &plan.loaded.config.cameras;
    cameras
        .iter()
        .zip(&plan.rules)
        .map(|(c, r)| CameraWork::new(c, r))
        .collect()
}
