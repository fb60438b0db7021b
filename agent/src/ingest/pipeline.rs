//! One camera pipeline, built, run until it fails or is stopped, and torn down.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use gstreamer_video as gst_video;

use super::decode_errors;
use super::slot::{Frame, FrameBoard};
use crate::config::{Camera, FrameClock, Transport};

/// Elements every camera pipeline needs; checked once at start.
pub const REQUIRED_ELEMENTS: &[&str] = &[
    "rtspsrc",
    "decodebin",
    "videorate",
    "videoconvert",
    "appsink",
];

/// How one run of a pipeline ended.
#[derive(Debug)]
pub enum Outcome {
    /// The stop flag was set.
    Stopped,
    /// An error or end of stream; the reason may quote the URL (scrub before logging).
    Failed(String),
}

/// Build the pipeline of `camera`, run it until it fails or `stop` is set, and tear it down.
pub fn run_once(
    index: usize,
    camera: &Camera,
    board: &Arc<FrameBoard>,
    stop: &AtomicBool,
) -> Outcome {
    let pipeline = match build(index, camera, board) {
        Ok(p) => p,
        Err(e) => return Outcome::Failed(format!("cannot build pipeline: {e}")),
    };
    let counters = board.counters(index);
    let stall = crate::config::duration(camera.stall_s);
    let outcome = run(&pipeline, stop, &counters, stall);
    let _ = pipeline.set_state(gst::State::Null);
    outcome
}

/// A camera clock further than this from the box's is not trusted for `frame_time`.
pub const MAX_CLOCK_SKEW: std::time::Duration = std::time::Duration::from_secs(10);

/// A frame's capture time: the stream's clock when it has one within [`MAX_CLOCK_SKEW`] of
/// `arrival`, else `arrival`. Returns the time and whether it came from the stream.
pub fn capture_time(
    arrival: std::time::SystemTime,
    stream: Option<std::time::SystemTime>,
) -> (std::time::SystemTime, bool) {
    match stream {
        Some(t) => {
            let skew = t
                .duration_since(arrival)
                .or_else(|_| arrival.duration_since(t))
                .unwrap_or_default();
            if skew <= MAX_CLOCK_SKEW {
                (t, true)
            } else {
                (arrival, false)
            }
        }
        None => (arrival, false),
    }
}

fn make(name: &'static str) -> Result<gst::Element, String> {
    gst::ElementFactory::make(name)
        .build()
        .map_err(|_| format!("element {name} is not available"))
}

/// An `rtspsrc` for `url` over `transport` only, as cameras and `vigil probe` use it: it fails
/// within seconds when a server stops answering, and carries the camera's capture times
/// (RTCP sender reports) as reference timestamps when it sends them.
///
/// Buffer times follow the camera's RTP timestamps alone (`buffer-mode` none). The default
/// (slave to the arrival clock) never lets a time go back, so in a stream with B-frames, whose
/// units arrive in decode order, each B-frame got its predecessor's time: after the decoder,
/// frames carried repeated times with gaps between them, and the rate filter thinned a 10 fps
/// H.265 stream analysed at 5 fps down to 3.7 (measured). The analysis only needs the
/// camera's own spacing of frames; wall-clock capture times come from RTCP sender reports.
pub fn rtsp_source(url: &str, transport: Transport) -> Result<gst::Element, String> {
    let src = make("rtspsrc")?;
    src.set_property("location", url);
    src.set_property_from_str("protocols", transport.as_str());
    src.set_property("tcp-timeout", 5_000_000u64);
    src.set_property("timeout", 5_000_000u64);
    src.set_property("add-reference-timestamp-meta", true);
    src.set_property_from_str("buffer-mode", "none");
    Ok(src)
}

fn build(index: usize, camera: &Camera, board: &Arc<FrameBoard>) -> Result<gst::Pipeline, String> {
    let pipeline = gst::Pipeline::with_name(&format!("camera-{}", camera.id));
    let src = rtsp_source(&camera.url, camera.transport)?;
    src.set_property("latency", camera.latency_ms);
    let decode = make("decodebin")?;
    let counters = board.counters(index);
    if let Some(bin) = decode.downcast_ref::<gst::Bin>() {
        let counters = Arc::clone(&counters);
        bin.connect_deep_element_added(move |_, _, element| {
            if decode_errors::is_decoder(element) {
                decode_errors::watch_decoder(element, &counters);
            }
        });
    }
    // Decoders post their errors from the streaming thread: count them there, so one damaged
    // unit that libav also logged counts once.
    if let Some(bus) = pipeline.bus() {
        let counters = Arc::clone(&counters);
        bus.set_sync_handler(move |_, msg| {
            let decode = match msg.view() {
                gst::MessageView::Error(e) => e.error().matches(gst::StreamError::Decode),
                gst::MessageView::Warning(w) => w.error().matches(gst::StreamError::Decode),
                _ => false,
            };
            if decode {
                decode_errors::count(&counters);
            }
            gst::BusSyncReply::Pass
        });
    }
    let rate = make("videorate")?;
    rate.set_property("drop-only", true);
    // max-rate is a whole number of frames per second; fractional rates (0.5 fps, …) are
    // thinned further by timestamp in the appsink callback below.
    rate.set_property("max-rate", (camera.analysis_fps.ceil() as i32).max(1));
    let convert = make("videoconvert")?;
    let sink = gst_app::AppSink::builder()
        .caps(
            &gst_video::VideoCapsBuilder::new()
                .format(super::FRAME_FORMAT)
                .build(),
        )
        .max_buffers(1)
        .drop(true)
        .sync(false)
        .build();
    pipeline
        .add_many([&src, &decode, &rate, &convert, sink.upcast_ref()])
        .map_err(|e| e.to_string())?;
    gst::Element::link_many([&rate, &convert, sink.upcast_ref()]).map_err(|e| e.to_string())?;

    // rtspsrc exposes one pad per stream; only the first video stream goes to the decoder.
    let decode_weak = decode.downgrade();
    src.connect_pad_added(move |_, pad| {
        let Some(decode) = decode_weak.upgrade() else {
            return;
        };
        let is_video = pad
            .current_caps()
            .and_then(|c| c.structure(0).and_then(|s| s.get::<String>("media").ok()))
            .is_some_and(|m| m == "video");
        let Some(sinkpad) = decode.static_pad("sink") else {
            return;
        };
        if is_video
            && !sinkpad.is_linked()
            && let Err(e) = pad.link(&sinkpad)
        {
            tracing::warn!("cannot link the video stream to the decoder: {e:?}");
        }
    });
    let rate_weak = rate.downgrade();
    decode.connect_pad_added(move |_, pad| {
        let Some(rate) = rate_weak.upgrade() else {
            return;
        };
        let is_raw_video = pad
            .current_caps()
            .and_then(|c| c.structure(0).map(|s| s.name().starts_with("video/x-raw")))
            .unwrap_or(false);
        let Some(sinkpad) = rate.static_pad("sink") else {
            return;
        };
        if is_raw_video
            && !sinkpad.is_linked()
            && let Err(e) = pad.link(&sinkpad)
        {
            tracing::warn!("cannot link the decoder to the rate filter: {e:?}");
        }
        // Frames the decoder produced from damaged data (it concealed the damage) are
        // flagged corrupted: count them with the decoder's reported errors.
        let counters = Arc::clone(&counters);
        pad.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
            if let Some(gst::PadProbeData::Buffer(b)) = &info.data
                && b.flags().contains(gst::BufferFlags::CORRUPTED)
            {
                decode_errors::count(&counters);
            }
            gst::PadProbeReturn::Ok
        });
    });

    // 90 % of the analysis interval, so jitter in the camera's timestamps does not drop frames.
    let min_gap = gst::ClockTime::from_nseconds((0.9e9 / camera.analysis_fps) as u64);
    let mut last_pts: Option<gst::ClockTime> = None;
    let mut skew_warned = false;
    let clock = camera.frame_time;
    let board = Arc::clone(board);
    sink.set_callbacks(
        gst_app::AppSinkCallbacks::builder()
            .new_sample(move |sink| {
                let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                // Alive, even when this frame is thinned out below (slow analysis rates must
                // not trip the stall watchdog or the camera status).
                board.saw_frame(index);
                // Fractional analysis rates: drop frames closer than 1/fps by timestamp.
                if let Some(pts) = sample.buffer().and_then(|b| b.pts()) {
                    if let Some(prev) = last_pts
                        && pts > prev
                        && pts - prev < min_gap
                    {
                        return Ok(gst::FlowSuccess::Ok);
                    }
                    last_pts = Some(pts);
                }
                match super::file::sample_to_frame(&sample) {
                    Some(mut frame) => {
                        let stream = match clock {
                            FrameClock::Auto => sample.buffer().and_then(super::file::stream_time),
                            FrameClock::Arrival => None,
                        };
                        let (captured, from_stream) = capture_time(frame.captured, stream);
                        if stream.is_some() && !from_stream && !skew_warned {
                            skew_warned = true;
                            tracing::warn!(
                                "the camera's clock is more than {} s off this box's; frame_time uses arrival time",
                                MAX_CLOCK_SKEW.as_secs()
                            );
                        }
                        frame.captured = captured;
                        board.put_from(
                            Frame {
                                camera: index,
                                ..frame
                            },
                            from_stream,
                        );
                    }
                    None => tracing::debug!("dropped a sample without usable frame data"),
                }
                Ok(gst::FlowSuccess::Ok)
            })
            .build(),
    );
    Ok(pipeline)
}

/// Whether a pipeline started at `started` whose last frame came at `last_frame` has been
/// without frames for longer than `stall` at `now`.
pub fn stalled(
    now: std::time::Instant,
    started: std::time::Instant,
    last_frame: Option<std::time::Instant>,
    stall: std::time::Duration,
) -> bool {
    let since = last_frame.map_or(started, |t| t.max(started));
    now.saturating_duration_since(since) > stall
}

fn run(
    pipeline: &gst::Pipeline,
    stop: &AtomicBool,
    counters: &super::slot::Counters,
    stall: std::time::Duration,
) -> Outcome {
    let started = std::time::Instant::now();
    let Some(bus) = pipeline.bus() else {
        return Outcome::Failed("pipeline has no bus".into());
    };
    if let Err(e) = pipeline.set_state(gst::State::Playing) {
        return Outcome::Failed(format!("cannot start: {e}"));
    }
    loop {
        if stop.load(Ordering::Relaxed) {
            return Outcome::Stopped;
        }
        let last_frame = *counters
            .last_frame
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if stalled(std::time::Instant::now(), started, last_frame, stall) {
            return Outcome::Failed(format!(
                "no frame for {} s (stall watchdog; the pipeline is rebuilt)",
                stall.as_secs_f64()
            ));
        }
        let Some(msg) = bus.timed_pop(gst::ClockTime::from_mseconds(100)) else {
            continue;
        };
        use gst::MessageView;
        match msg.view() {
            MessageView::Error(e) => {
                let mut reason = e.error().to_string();
                if let Some(d) = e.debug() {
                    // The last line of the debug text names the cause (e.g. "Connection refused").
                    if let Some(last) = d.lines().last() {
                        reason = format!("{reason} ({})", last.trim());
                    }
                }
                return Outcome::Failed(reason);
            }
            MessageView::Eos(_) => return Outcome::Failed("end of stream".into()),
            MessageView::Warning(w) => {
                tracing::debug!("pipeline warning: {}", w.error());
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, SystemTime};

    #[test]
    fn the_stall_watchdog_counts_from_the_last_frame_of_this_attempt() {
        let t0 = std::time::Instant::now();
        let s = Duration::from_secs(10);
        let at = |secs: u64| t0 + Duration::from_secs(secs);
        assert!(!stalled(at(9), t0, None, s), "still connecting");
        assert!(stalled(at(11), t0, None, s), "never a frame");
        assert!(!stalled(at(15), t0, Some(at(8)), s));
        assert!(stalled(at(19), t0, Some(at(8)), s));
        // A frame from a previous attempt does not count against this one.
        assert!(!stalled(at(9), t0, Some(t0 - Duration::from_secs(60)), s));
    }

    #[test]
    fn the_camera_clock_is_used_only_when_close_to_ours() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_000_000);
        let cam = now - Duration::from_millis(300);
        assert_eq!(capture_time(now, Some(cam)), (cam, true));
        assert_eq!(capture_time(now, None), (now, false));
        let off = now + Duration::from_secs(3600);
        assert_eq!(
            capture_time(now, Some(off)),
            (now, false),
            "an hour off is not trusted"
        );
    }
}
