//! The main stream of a camera with a `detect_url`: received and parsed, never decoded.
//!
//! `rtspsrc` (the camera's `url`) → `parsebin` (depayload and parse H.264/H.265) → `fakesink`,
//! with a probe on the parsed stream that keeps each access unit (a reference, no copy) in the
//! camera's [`super::recorder::Recorder`]. Evidence stills are decoded from it on demand
//! ([`super::still`]) and clips cut from it, at the main stream's resolution, while the
//! analysis decodes only the sub-stream. Its own supervisor thread reconnects it like the
//! analysed stream ([`super::supervise`]); a main stream that is down costs evidence its
//! resolution (pictures then come from the analysed frame), never the analysis.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use gstreamer as gst;
use gstreamer::prelude::*;

use super::pipeline::{Outcome, link_first_video_stream, make, rtsp_source};
use super::slot::FrameBoard;
use crate::config::Camera;

/// Build the main-stream pipeline of `camera`, run it until it fails or `stop` is set, and
/// tear it down.
pub fn run_once(
    index: usize,
    camera: &Camera,
    board: &Arc<FrameBoard>,
    stop: &AtomicBool,
) -> Outcome {
    let built = build(index, camera, board)
        .map_err(|e| format!("cannot build the main-stream pipeline: {e}"));
    super::pipeline::run_built(built, camera, &board.main_counters(index), stop)
}

fn build(index: usize, camera: &Camera, board: &Arc<FrameBoard>) -> Result<gst::Pipeline, String> {
    let pipeline = gst::Pipeline::with_name(&format!("main-{}", camera.id));
    let src = rtsp_source(&camera.url, camera.transport)?;
    src.set_property("latency", camera.latency_ms);
    let parse = make("parsebin")?;
    let sink = make("fakesink")?;
    sink.set_property("sync", false);
    sink.set_property("async", false);
    pipeline
        .add_many([&src, &parse, &sink])
        .map_err(|e| e.to_string())?;
    link_first_video_stream(&src, &parse);
    let recorder = board
        .recorder(index)
        .ok_or_else(|| "no pre-event buffer for this camera".to_string())?;
    // A new connection's stream times start again.
    recorder.reset();
    let counters = board.main_counters(index);
    let sink_weak = sink.downgrade();
    parse.connect_pad_added(move |_, pad| {
        let Some(sinkpad) = sink_weak.upgrade().and_then(|s| s.static_pad("sink")) else {
            return;
        };
        // Only video streams are selected from the camera; a pad without caps yet is one, and
        // so is Motion JPEG (`image/jpeg`).
        let other = pad
            .current_caps()
            .and_then(|c| {
                c.structure(0).map(|s| {
                    let name = s.name();
                    !(name.starts_with("video/") || name.starts_with("image/"))
                })
            })
            .unwrap_or(false);
        if other || sinkpad.is_linked() {
            return;
        }
        if let Err(e) = pad.link(&sinkpad) {
            tracing::warn!("cannot link the main stream's parser: {e:?}");
            return;
        }
        let (recorder, counters) = (Arc::clone(&recorder), Arc::clone(&counters));
        pad.add_probe(gst::PadProbeType::BUFFER, move |pad, info| {
            if let Some(gst::PadProbeData::Buffer(b)) = &info.data {
                recorder.record(pad.current_caps(), b);
                counters.received.fetch_add(1, Ordering::Relaxed);
                *counters
                    .last_frame
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) =
                    Some(std::time::Instant::now());
            }
            gst::PadProbeReturn::Ok
        });
    });
    Ok(pipeline)
}
