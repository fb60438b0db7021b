//! The evidence thread (`stills`) of cameras that analyse a `detect_url` sub-stream: it draws
//! each evidence picture on the main stream's picture nearest the event, decoded on demand
//! ([`crate::ingest::still`]: up to one group of pictures of the main stream, and a wait for
//! the main stream to reach the event's time), so that the inference threads never wait on it.
//!
//! Every event of such a camera passes through this thread in the order the inference threads
//! made them ([`Job::Pass`] for those without a picture), so no `update` or `close` overtakes
//! its incident's `open`. When the main stream holds no picture near the event (down, or not
//! yet at its first key frame), the picture is drawn on the analysed frame, with a warning;
//! so it is when the queue has fallen behind ([`BEHIND`]) or the agent is stopping, so that
//! the inference threads, which wait when the queue is full, are never held for long, and a
//! panic while drawing a still costs that still only.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use crate::config::FrameClock;
use crate::detect::ModelInfo;
use crate::evidence::EvidenceSettings;
use crate::ingest::slot::{Frame, FrameBoard};
use crate::publish::Identity;
use crate::publish::Outgoing;
use crate::rules::{IncidentEvent, RuleSet};

/// Events queued before the inference threads wait (each render holds a copy of its analysed
/// frame: 345 KB at 640×360).
const QUEUE: usize = 32;

/// How long a still waits for the main stream to reach the analysed frame's time (both
/// streams come through jitter buffers of the same latency).
const STILL_WAIT: Duration = Duration::from_secs(1);

/// A job queued longer than this is drawn on its analysed frame: the queue is behind.
pub const BEHIND: Duration = Duration::from_secs(2);

/// What the evidence thread is asked to do, in order.
pub enum Job {
    /// Draw the evidence of an event on the main stream, then send its messages.
    Render(Box<Render>),
    /// Send the messages of an event that carries no picture, after those queued before it.
    Pass(Outgoing),
}

/// An event whose evidence comes from the main stream.
pub struct Render {
    /// Camera id.
    pub camera: String,
    /// The camera's rules (names and outlines of zones and lines).
    pub set: RuleSet,
    /// The clock of the camera's `frame_time`, to read the main stream's unit times by.
    pub clock: FrameClock,
    /// The model that saw it.
    pub model: ModelInfo,
    /// The analysed frame (owned), for its time, camera and the fallback picture.
    pub frame: Frame,
    /// The event.
    pub event: IncidentEvent,
    /// Evidence settings within the message limit.
    pub evidence: EvidenceSettings,
    /// When it was queued.
    pub queued: Instant,
}

/// Start the evidence thread; it ends once every sender is dropped and its queue is sent.
/// Once `stop` is set, it no longer waits for main streams.
pub fn spawn(
    board: Arc<FrameBoard>,
    identity: Identity,
    tx: mpsc::Sender<Outgoing>,
    stop: Arc<AtomicBool>,
) -> std::io::Result<(SyncSender<Job>, JoinHandle<()>)> {
    let (jobs, rx) = sync_channel(QUEUE);
    let handle = std::thread::Builder::new()
        .name("stills".into())
        .spawn(move || run(&rx, &board, &identity, &tx, &stop))?;
    Ok((jobs, handle))
}

fn run(
    rx: &Receiver<Job>,
    board: &FrameBoard,
    identity: &Identity,
    tx: &mpsc::Sender<Outgoing>,
    stop: &AtomicBool,
) {
    for job in rx {
        let out = match job {
            Job::Pass(out) => out,
            Job::Render(r) => {
                let span = tracing::debug_span!("camera", id = %r.camera);
                let _e = span.enter();
                let still = still_of(board, &r, stop);
                match drawn(identity, &r, still.as_ref()) {
                    Some(out) => out,
                    None => continue,
                }
            }
        };
        if tx.blocking_send(out).is_err() {
            break;
        }
    }
}

/// The main stream's picture for `r`, unless the queue is behind or the agent is stopping
/// (then, and when drawing it panics, `None` with a warning: the analysed frame is drawn).
fn still_of(board: &FrameBoard, r: &Render, stop: &AtomicBool) -> Option<Frame> {
    if r.queued.elapsed() > BEHIND || stop.load(Ordering::Relaxed) {
        tracing::warn!(
            "evidence from the analysed stream instead: the evidence queue is behind (or the agent is stopping)"
        );
        return None;
    }
    super::workers::contain(|| main_still(board, &r.frame, r.clock)).unwrap_or_else(|why| {
        tracing::error!(
            "evidence from the analysed stream instead: drawing the main stream's picture failed ({why})"
        );
        None
    })
}

/// The event's messages with its evidence drawn on `still`, else on its analysed frame; if
/// drawing panics, the messages without a picture (the incident says why); `None` only if
/// even that panics.
fn drawn(identity: &Identity, r: &Render, still: Option<&Frame>) -> Option<Outgoing> {
    let render = |frame: &Frame| {
        super::workers::outgoing(
            identity,
            &r.camera,
            &r.set,
            &r.model,
            frame,
            r.event.clone(),
            &r.evidence,
        )
    };
    let why = match super::workers::contain(|| render(still.unwrap_or(&r.frame))) {
        Ok(out) => return Some(out),
        Err(why) => why,
    };
    tracing::error!(
        "the evidence picture could not be drawn ({why}); the incident goes without it"
    );
    let blank = Frame {
        camera: r.frame.camera,
        width: 0,
        height: 0,
        data: Vec::new().into(),
        format: crate::pixels::Format::Rgb,
        captured: r.frame.captured,
    };
    super::workers::contain(|| render(&blank))
        .map_err(|why| tracing::error!("incident {} lost: {why}", r.event.id))
        .ok()
}

/// The main stream's picture nearest the analysed `frame`; `None` (with a warning) when it
/// has none.
fn main_still(board: &FrameBoard, frame: &Frame, clock: FrameClock) -> Option<Frame> {
    let recorder = board.recorder(frame.camera)?;
    let started = Instant::now();
    // Wait for the main stream only while it delivers: one that is down (its supervisor logs
    // why) must not hold up the events queued behind this one.
    let last = *board
        .main_counters(frame.camera)
        .last_frame
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let wait = match last {
        Some(t) if t.elapsed() < STILL_WAIT => STILL_WAIT,
        _ => Duration::ZERO,
    };
    match crate::ingest::still::nearest(&recorder, frame.captured, clock, wait) {
        Ok(still) => {
            tracing::debug!(
                width = still.width,
                height = still.height,
                decode_ms = started.elapsed().as_millis() as u64,
                "evidence from the main stream"
            );
            Some(Frame {
                camera: frame.camera,
                ..still
            })
        }
        Err(e) => {
            tracing::warn!("evidence from the analysed stream instead: {e}");
            None
        }
    }
}
