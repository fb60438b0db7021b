//! Ingest: one GStreamer pipeline per camera, supervised by its own thread.
//!
//! `rtspsrc` (TCP by default, video streams only) → `decodebin` (depayload, parse and decode
//! H.264/H.265; hardware decoders win by GStreamer's ranking when present) → thinning to
//! `analysis_fps` on the decoder's output, *before* conversion ([`thin`]) → `videoconvert` to
//! I420 ([`FRAME_FORMAT`]: what software decoders produce, so it passes through untouched; a
//! hardware decoder's NV12 is converted) → `appsink` holding at most one buffer.
//!
//! Every frame lost between the socket and the analysis is counted where it is lost (see
//! [`slot::Counters`]): RTP packets the jitter buffer lost or dropped late, frames missing from
//! the decoder's output by their timestamps, damaged units the decoder concealed, frames
//! thinned to the analysis rate or dropped for a time out of order, and frames replaced in the
//! slot before analysis took them. Each frame lands in the camera's latest-wins slot
//! ([`slot::FrameBoard`]) as the decoder's own buffer, without a copy; the full frame is never
//! converted to RGB on the way in (see [`crate::pixels`]).
//!
//! At analysis rates of 1 fps or less on streams with key frames at least that often, only
//! key frames are decoded ([`keyonly`]): the frames between them are dropped before the
//! decoder, counted as thinned.
//!
//! A camera with a `detect_url` has a second pipeline and thread for its main stream
//! ([`record`]): received and parsed into the camera's pre-event buffer without decoding, for
//! evidence stills ([`still`]) and clips at full resolution.
//!
//! rtspsrc does not recover by going NULL→PLAYING after a server dies, so on ERROR or EOS the
//! supervisor tears the pipeline down and builds a new one after a jittered, capped exponential
//! backoff, forever. One camera's failures never touch another: each has its own pipeline,
//! thread and slot.

pub mod decode_errors;
pub mod file;
pub mod keyonly;
pub mod picture;
pub mod pipeline;
pub mod probe;
pub mod record;
pub mod recorder;
pub mod ring;
pub mod slot;
pub mod still;
pub mod thin;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::backoff::Backoff;
use crate::config::Camera;
use slot::FrameBoard;

/// The pixel format frames are handed over in, from cameras and from video files alike.
pub const FRAME_FORMAT: gstreamer_video::VideoFormat = gstreamer_video::VideoFormat::I420;

/// [`FRAME_FORMAT`] as caps in a launch line.
pub const FRAME_CAPS: &str = "video/x-raw,format=I420";

/// Error from setting up GStreamer itself (not from a camera: those are retried).
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// `gst::init` failed.
    #[error("GStreamer cannot start: {0}")]
    Init(String),
    /// An element vigil needs is not installed.
    #[error(
        "GStreamer element \"{0}\" is missing; install gstreamer1.0-plugins-base/-good/-bad and gstreamer1.0-libav"
    )]
    MissingElement(&'static str),
    /// The supervisor thread could not be spawned.
    #[error("cannot start the ingest thread for camera {camera}: {source}")]
    Thread {
        /// Camera id.
        camera: String,
        /// OS error.
        source: std::io::Error,
    },
}

/// Initialise GStreamer and check that the elements vigil builds pipelines from exist.
pub fn init() -> Result<(), IngestError> {
    gstreamer::init().map_err(|e| IngestError::Init(e.to_string()))?;
    decode_errors::install();
    for name in pipeline::REQUIRED_ELEMENTS {
        if gstreamer::ElementFactory::find(name).is_none() {
            return Err(IngestError::MissingElement(name));
        }
    }
    Ok(())
}

/// A running camera: its supervisor thread, and the main stream's when it has a `detect_url`.
#[derive(Debug)]
pub struct CameraHandle {
    /// Camera id.
    pub id: String,
    threads: Vec<JoinHandle<()>>,
}

impl CameraHandle {
    /// Wait for the supervisors to finish (after the stop flag was set).
    pub fn join(mut self) {
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// Which of a camera's streams a supervisor keeps up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stream {
    /// The analysed stream (`detect_url`, else `url`): decoded, thinned, into the slot.
    Analysed,
    /// The main stream of a camera with a `detect_url`: parsed into the pre-event buffer.
    Main,
}

/// Start the supervisor threads of camera `index`.
pub fn spawn_camera(
    index: usize,
    camera: Camera,
    board: Arc<FrameBoard>,
    stop: Arc<AtomicBool>,
) -> Result<CameraHandle, IngestError> {
    let id = camera.id.clone();
    let mut streams = vec![Stream::Analysed];
    if camera.detect_url.is_some() {
        streams.push(Stream::Main);
    }
    let camera = Arc::new(camera);
    let mut handle = CameraHandle {
        id: id.clone(),
        threads: Vec::new(),
    };
    for stream in streams {
        let (cam, shared, flag) = (Arc::clone(&camera), Arc::clone(&board), Arc::clone(&stop));
        let name = match stream {
            Stream::Analysed => format!("ingest-{id}"),
            Stream::Main => format!("main-{id}"),
        };
        let spawned = std::thread::Builder::new()
            .name(name)
            .spawn(move || supervise(index, &cam, &shared, &flag, stream));
        match spawned {
            Ok(t) => handle.threads.push(t),
            Err(e) => {
                stop.store(true, Ordering::Relaxed);
                handle.join();
                return Err(IngestError::Thread {
                    camera: id,
                    source: e,
                });
            }
        }
    }
    Ok(handle)
}

fn supervise(
    index: usize,
    camera: &Camera,
    board: &Arc<FrameBoard>,
    stop: &AtomicBool,
    stream: Stream,
) {
    let (url, counters, which, label) = match stream {
        Stream::Analysed => (
            camera.analysed_url(),
            board.counters(index),
            "analysed",
            "camera stream",
        ),
        Stream::Main => (
            camera.url.as_str(),
            board.main_counters(index),
            "main",
            "main stream",
        ),
    };
    let span = tracing::info_span!("camera", id = %camera.id, stream = which);
    let _enter = span.enter();
    let shown = crate::config::url::redact(url);
    let mut backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(5));
    let mut first = true;
    while !stop.load(Ordering::Relaxed) {
        if !first {
            counters.reconnects.fetch_add(1, Ordering::Relaxed);
        }
        first = false;
        let before = counters.received.load(Ordering::Relaxed);
        let started = Instant::now();
        counters
            .link
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .attempt_started = Some(started);
        tracing::info!(url = %shown, "connecting");
        let outcome = match stream {
            Stream::Analysed => pipeline::run_once(index, camera, board, stop),
            Stream::Main => record::run_once(index, camera, board, stop),
        };
        if counters.received.load(Ordering::Relaxed) > before {
            backoff.reset();
        }
        let (reason, stalled) = match outcome {
            pipeline::Outcome::Stopped => break,
            pipeline::Outcome::Failed(reason) => (reason, false),
            pipeline::Outcome::Stalled(reason) => (reason, true),
        };
        let delay = backoff.jittered();
        let reason = crate::config::url::scrub(&reason, url);
        tracing::warn!(
            url = %shown,
            after_s = started.elapsed().as_secs_f32(),
            retry_in_ms = delay.as_millis() as u64,
            "{label} failed: {reason}"
        );
        {
            let mut link = counters
                .link
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            link.last_error = Some(reason);
            link.stalled = stalled;
        }
        sleep_unless_stopped(delay, stop);
    }
    tracing::info!("{label} stopped");
}

fn sleep_unless_stopped(d: Duration, stop: &AtomicBool) {
    let end = Instant::now() + d;
    while Instant::now() < end && !stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(50).min(end - Instant::now()));
    }
}
