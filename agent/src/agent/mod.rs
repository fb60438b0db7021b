//! The running agent: wires ingest → detect → rules → publish for a validated config.
//!
//! Threads and tasks:
//! - one `ingest-{camera}` thread per camera supervises its GStreamer pipeline;
//! - `detect-{n}` threads, one per usable core (at most one per camera), take the freshest
//!   frame of each camera in turn, run the camera's model and rules, render evidence and hand
//!   events to the session over a bounded channel ([`workers`]);
//! - one tokio task owns the MQTT session; others serve the camera monitor, the diagnostics
//!   socket, clips and the systemd watchdog.
//!
//! [`run`] is a few named steps: [`start`]'s functions make the services and the analysis in
//! order, [`serve`] answers reloads and commands, [`Running::stop`] takes it all down.
//!
//! Shutdown: the trigger future resolves → the stop flag halts ingest and inference → the
//! session drains the channel, publishes `stopped` and disconnects.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};

use crate::diag;
use crate::ingest::{self, slot::FrameBoard};
use crate::publish::Identity;
use crate::publish::{self, Outgoing, SessionStats};
use crate::telemetry;

mod clipper;
mod desk;
mod live;
mod metrics;
mod models;
mod plan;
mod push;
mod start;
mod stills;
mod workers;

pub use plan::{CameraWork, Plan, RunReport, StartError};

/// Run the agent until `shutdown` resolves: start its services ([`services`]), then the
/// analysis and the cameras ([`analyse`]); serve reloads, commands and pushed configurations
/// ([`serve`]); then stop in order ([`Running::stop`]).
pub async fn run(
    plan: Plan,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<RunReport, StartError> {
    let (services, models) = services(&plan)?;
    let (running, mut reloader, desk, mut inbox) = analyse(plan, services, models)?;
    serve(shutdown, &mut reloader, desk, &mut inbox).await;
    let report = running.stop(reloader).await;
    // The inbox's receivers live until the agent has stopped: a reload or a command that
    // arrives meanwhile waits, as jobs and trials still finishing may send their end.
    drop(inbox);
    Ok(report)
}

/// What runs before the analysis: the session, the camera monitor and the diagnostics socket,
/// with what they and the analysis share.
struct Services {
    config: crate::config::Config,
    identity: Identity,
    started: Instant,
    board: Arc<FrameBoard>,
    tx: mpsc::Sender<Outgoing>,
    shutdown: watch::Sender<bool>,
    transport: start::Transport,
    monitor: start::Monitor,
    standing: Arc<crate::rules::standdown::Board>,
    reloads: mpsc::Receiver<diag::ReloadReply>,
    diag: Arc<diag::Shared>,
    diag_task: Option<tokio::task::JoinHandle<()>>,
}

/// The loaded models, with what the analysis takes from the start.
struct Models {
    notifier: crate::os::notify::Notifier,
    detectors: start::Detectors,
    floors: HashMap<String, f32>,
    health: telemetry::Health,
    /// Commands from the centre: their settings, ledger and standing disarms, read at start.
    commands: crate::command::Commands,
}

/// Load the models (a bad one refuses the start), start the session, the camera monitor and
/// the diagnostics socket.
fn services(plan: &Plan) -> Result<(Services, Models), StartError> {
    let notifier = crate::os::notify::Notifier::from_env();
    notifier.status("loading the models");
    ingest::init()?;
    let (detectors, floors) = start::load_models(plan)?;
    let config = plan.loaded.config.clone();
    let identity = plan.identity();
    let started = Instant::now();
    let board = start::frame_board(&config);
    let (tx, rx) = mpsc::channel::<Outgoing>(1024);
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let inventory = start::inventory(plan, &detectors);
    let lines = inventory.models.clone();
    let transport = start::session(plan, &identity, inventory, rx, shutdown_rx.clone())?;
    let commands = crate::command::Commands::new(
        config.commands.clone(),
        identity.clone(),
        &transport.state_dir,
        &config.cameras,
    );
    // Before any metric handle is made (the cameras' work below has some).
    let monitor = start::monitor(&config, &board, &transport.gauge, &identity, &tx)?;
    let health = telemetry::Health::new(
        config.cameras.len(),
        crate::config::duration(config.health.interval_s),
        Arc::clone(&transport.gauge),
        transport.state_dir.clone(),
    )
    .with_models(lines);
    // What the centre stands down: the desk fills it before the first frame is analysed.
    let standing = Arc::new(crate::rules::standdown::Board::default());
    let (reload_tx, reload_rx) = mpsc::channel::<diag::ReloadReply>(4);
    let diag = start::diag_shared(
        plan,
        (started, &board),
        &transport,
        health.latest(),
        &standing,
        reload_tx,
    );
    let diag_task = start::diag_socket(plan, &diag, &shutdown_rx);
    let services = Services {
        config,
        identity,
        started,
        board,
        tx,
        shutdown: shutdown_tx,
        transport,
        monitor,
        standing,
        reloads: reload_rx,
        diag,
        diag_task,
    };
    let models = Models {
        notifier,
        detectors,
        floors,
        health,
        commands,
    };
    Ok((services, models))
}

/// Start the inference threads (with the evidence and clip workers), the commands desk and the
/// cameras; what serving and stopping need.
fn analyse(
    plan: Plan,
    v: Services,
    m: Models,
) -> Result<(Running, live::Reloader, desk::Desk, Inbox), StartError> {
    let threads = start::inference_threads(&v.config, &m.detectors);
    let (work_tx, work_rx) = std::sync::mpsc::channel::<live::WorkUpdate>();
    let work = start::camera_work(&plan);
    let pool = workers::Pool::new(
        threads,
        work,
        &m.detectors,
        &m.floors,
        m.health,
        work_rx,
        v.started,
    );
    let mut analysis = start::analysis(&v, (Arc::new(pool), threads), m.detectors)?;
    // Before the cameras: the desk fills what the centre stands down before a frame arrives.
    let (desk, jobs_done) = start::desk(&v, &analysis, m.commands);
    let cameras = start::cameras(&v.config, &v.board).inspect_err(|_| analysis.halt())?;
    let watchdog = running(m.notifier, &v, &analysis);
    let reloader = live::Reloader {
        plan,
        cameras,
        work: work_tx,
        watched: Arc::clone(&v.monitor.watched),
        diag: Arc::clone(&v.diag),
        trial: None,
    };
    let inbox = Inbox {
        reloads: v.reloads,
        commands: v.transport.commands,
        jobs_done,
        tried: mpsc::channel(1),
        started: v.started,
    };
    let running = Running {
        analysis,
        // Kept for command results and the `close` events of a clean stop.
        closer: v.tx,
        monitor: v.monitor,
        watchdog,
        shutdown: v.shutdown,
        diag: v.diag_task,
        session: v.transport.task,
        board: v.board,
        identity: v.identity,
        started: v.started,
        config: v.config,
    };
    Ok((running, reloader, desk, inbox))
}

/// Tell systemd the agent runs, and start the watchdog task that keeps telling it how.
fn running(
    notifier: crate::os::notify::Notifier,
    v: &Services,
    analysis: &start::Analysis,
) -> tokio::task::JoinHandle<()> {
    let enabled = v.config.cameras.iter().filter(|c| c.enabled).count();
    tracing::info!(cameras = enabled, "vigil running");
    notifier.send(&format!(
        "READY=1\nSTATUS=running: {enabled} camera(s) starting"
    ));
    tokio::spawn(watchdog(
        notifier,
        Arc::clone(&v.board),
        Arc::clone(&analysis.pool),
        Arc::clone(&v.diag),
        Arc::clone(&v.monitor.stop),
    ))
}

/// What the running agent answers besides frames.
struct Inbox {
    /// `vigil reload` over the diagnostics socket.
    reloads: mpsc::Receiver<diag::ReloadReply>,
    /// Commands from the centre.
    commands: mpsc::Receiver<publish::Received>,
    /// The end of the desk's jobs.
    jobs_done: mpsc::Receiver<desk::JobDone>,
    /// Pushed configurations tried: the sender for the trials, the receiver for their end.
    tried: (mpsc::Sender<push::Tried>, mpsc::Receiver<push::Tried>),
    /// When the agent started (a command's `uptime`).
    started: Instant,
}

/// Serve reloads, commands from the centre and their jobs, and pushed configurations on trial,
/// until `shutdown` resolves. The desk goes with it: its handle on the session must go, or the
/// session would wait for it forever.
async fn serve(
    shutdown: impl std::future::Future<Output = ()>,
    reloader: &mut live::Reloader,
    mut desk: desk::Desk,
    inbox: &mut Inbox,
) {
    let Inbox {
        reloads,
        commands,
        jobs_done: done,
        tried: (tried_tx, tried_rx),
        started,
    } = inbox;
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            Some(reply) = reloads.recv() => {
                let result = reloader.reload().await;
                match &result {
                    Ok(_) => desk.prune(&reloader.plan.loaded.config.cameras),
                    Err(e) => tracing::warn!("configuration reload refused: {e}"),
                }
                let _ = reply.send(result);
            }
            Some(request) = commands.recv() => {
                let ctx = crate::command::Context {
                    version: env!("CARGO_PKG_VERSION"),
                    uptime: started.elapsed(),
                    config_source: &reloader.plan.loaded.source,
                    cameras: &reloader.plan.loaded.config.cameras,
                };
                if let Some((pending, text)) = desk.request(&request, &ctx) {
                    push::take(reloader, &mut desk, tried_tx, pending, text).await;
                }
            }
            Some(finished) = done.recv() => desk.finished(finished),
            Some(tried) = tried_rx.recv() => push::settled(reloader, &mut desk, tried).await,
        }
    }
    tracing::info!("shutting down");
}

/// What a clean stop takes down, in order.
struct Running {
    analysis: start::Analysis,
    closer: mpsc::Sender<Outgoing>,
    monitor: start::Monitor,
    watchdog: tokio::task::JoinHandle<()>,
    shutdown: watch::Sender<bool>,
    diag: Option<tokio::task::JoinHandle<()>>,
    session: tokio::task::JoinHandle<SessionStats>,
    board: Arc<FrameBoard>,
    identity: Identity,
    started: Instant,
    config: crate::config::Config,
}

impl Running {
    /// Stop in order: cameras and inference, evidence and clips, the `close` of every open
    /// incident, the cameras' goodbyes, then the session (which delivers what it can for
    /// `outbox.flush_s` and says `stopped`).
    async fn stop(mut self, reloader: live::Reloader) -> RunReport {
        let bye = crate::os::notify::Notifier::from_env();
        bye.send("STOPPING=1\nSTATUS=stopping: finishing analysis, delivering the outbox");
        // Inference stops taking frames, the cameras stop, then the inference threads end.
        self.analysis.signal();
        reloader.cameras.stop_all();
        self.analysis.halt();
        let a = self.analysis;
        // Evidence still being drawn goes out before the `close` events below.
        let _ = a.stills.join();
        // Clips still waiting for their end are not made: their handles on the session go.
        drop(a.orders);
        a.clips.abort();
        let _ = a.clips.await;
        // Every incident still open gets its `close` before the session flushes the outbox.
        let closing = a.pool.close_all(&self.identity);
        if !closing.is_empty() {
            tracing::info!(
                incidents = closing.len(),
                "closing open incidents before stopping"
            );
        }
        for out in closing {
            let _ = self.closer.send(out).await;
        }
        drop(self.closer);
        // Cameras say goodbye (retained offline) before the session says `stopped`.
        self.monitor.stop.store(true, Ordering::Relaxed);
        let _ = self.monitor.task.await;
        self.watchdog.abort();
        let _ = self.shutdown.send(true);
        if let Some(task) = self.diag {
            let _ = task.await;
        }
        let session = self.session.await.unwrap_or_default();
        let analysed = camera_totals(&self.config, &self.board, self.started);
        RunReport { session, analysed }
    }
}

/// Log each camera's totals; the frames each analysed, in config order.
fn camera_totals(
    config: &crate::config::Config,
    board: &FrameBoard,
    started: Instant,
) -> Vec<(String, u64)> {
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
    analysed
}

/// Tell systemd how the agent is doing (`STATUS=`) every few seconds, and ping its watchdog
/// (`WATCHDOG=1`) only while the inference loop turns: a wedged detector or a wedged event
/// loop (this task stops running) stops the pings, and systemd restarts the service.
async fn watchdog(
    notifier: crate::os::notify::Notifier,
    board: Arc<FrameBoard>,
    pool: Arc<workers::Pool>,
    diag: Arc<diag::Shared>,
    stop: Arc<AtomicBool>,
) {
    if !notifier.active() {
        return;
    }
    let ping = crate::os::notify::watchdog_interval();
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
        let outbox = start::open_outbox(&dir, &config).expect("open");
        assert_eq!(outbox.last_seq().expect("seq"), 41);
        assert!(!dir.join("seq").exists() && dir.join("seq.imported").exists());
        drop(outbox);
        // A second start does not import again (and never lowers the mark).
        std::fs::write(dir.join("seq"), "3\n").expect("stale file");
        let outbox = start::open_outbox(&dir, &config).expect("reopen");
        assert_eq!(outbox.last_seq().expect("seq"), 41);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
