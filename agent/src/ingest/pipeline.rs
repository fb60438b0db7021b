//! One camera pipeline, built, run until it fails or is stopped, and torn down.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use gstreamer_video as gst_video;

use super::decode_errors;
use super::keyonly::{KeyOnly, Unit};
use super::slot::{Frame, FrameBoard};
use super::thin::{Thinner, Verdict};
use crate::config::{Camera, FrameClock, Transport};

/// Elements every camera pipeline needs; checked once at start.
pub const REQUIRED_ELEMENTS: &[&str] = &[
    "rtspsrc",
    "decodebin",
    "parsebin",
    "videoconvert",
    "appsink",
    "appsrc",
    "fakesink",
];

/// How one run of a pipeline ended.
#[derive(Debug)]
pub enum Outcome {
    /// The stop flag was set.
    Stopped,
    /// An error or end of stream; the reason may quote the URL (scrub before logging).
    Failed(String),
    /// No frame for the stall watchdog's time (`stall_s`): the pipeline is torn down to be
    /// rebuilt; the reason says so.
    Stalled(String),
}

/// Build the pipeline of `camera`, run it until it fails or `stop` is set, and tear it down.
pub fn run_once(
    index: usize,
    camera: &Camera,
    board: &Arc<FrameBoard>,
    stop: &AtomicBool,
) -> Outcome {
    let built = build(index, camera, board).map_err(|e| format!("cannot build pipeline: {e}"));
    run_built(built, camera, &board.counters(index), stop)
}

/// Run a built pipeline (or report why it was not built) until it fails, stalls past the
/// camera's `stall_s` or `stop` is set, and tear it down.
pub(super) fn run_built(
    built: Result<gst::Pipeline, String>,
    camera: &Camera,
    counters: &super::slot::Counters,
    stop: &AtomicBool,
) -> Outcome {
    let pipeline = match built {
        Ok(p) => p,
        Err(e) => return Outcome::Failed(e),
    };
    let stall = crate::config::duration(camera.stall_s);
    let outcome = run(&pipeline, stop, counters, stall);
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

pub(super) fn make(name: &'static str) -> Result<gst::Element, String> {
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
    let src = rtsp_source(camera.analysed_url(), camera.transport)?;
    src.set_property("latency", camera.latency_ms);
    let decode = make("decodebin")?;
    let counters = board.counters(index);
    // Clips come from the analysed stream unless the main stream is received for them.
    let recorder = board
        .recorder(index)
        .filter(|_| board.clips() && camera.detect_url.is_none());
    // A new connection's stream times start again: a clip holds one connection's units.
    if let Some(r) = &recorder {
        r.reset();
    }
    let skip = Arc::new(Skipping::new(&camera.id, camera.analysis_fps));
    if let Some(bin) = decode.downcast_ref::<gst::Bin>() {
        let counters = Arc::clone(&counters);
        let skip = Arc::clone(&skip);
        bin.connect_deep_element_added(move |_, _, element| {
            if decode_errors::is_decoder(element) {
                decode_errors::watch_decoder(element, &counters);
                // The pre-event buffer sees every unit: its probe goes before the skipping.
                if let Some(r) = &recorder {
                    super::recorder::watch_decoder(element, r);
                }
                skip_before(element, &skip, &counters);
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
    let convert = make("videoconvert")?;
    let sink = frame_sink(1);
    pipeline
        .add_many([&src, &decode, &convert, sink.upcast_ref()])
        .map_err(|e| e.to_string())?;
    gst::Element::link_many([&convert, sink.upcast_ref()]).map_err(|e| e.to_string())?;
    link_first_video_stream(&src, &decode);
    let thinner = Arc::new(Mutex::new(Thinner::new(camera.analysis_fps)));
    let board_for_pads = Arc::clone(board);
    link_decoded_video(&decode, &convert, move |pad| {
        let (board, thinner) = (Arc::clone(&board_for_pads), Arc::clone(&thinner));
        let counters = board.counters(index);
        let skip = Arc::clone(&skip);
        pad.add_probe(gst::PadProbeType::BUFFER, move |_, info| match &info.data {
            Some(gst::PadProbeData::Buffer(b)) => {
                decoded(&board, &counters, index, &thinner, &skip, b)
            }
            _ => gst::PadProbeReturn::Ok,
        });
    });
    sink.set_callbacks(frame_callbacks(index, camera.frame_time, board));
    Ok(pipeline)
}

/// The end of a decoding pipeline: an appsink of frames in [`super::FRAME_FORMAT`] that keeps
/// the newest `max_buffers` (dropping older ones) and never waits for the clock.
pub(super) fn frame_sink(max_buffers: u32) -> gst_app::AppSink {
    gst_app::AppSink::builder()
        .caps(
            &gst_video::VideoCapsBuilder::new()
                .format(super::FRAME_FORMAT)
                .build(),
        )
        .max_buffers(max_buffers)
        .drop(true)
        .sync(false)
        .build()
}

/// Link the first raw-video pad `decode` (a `decodebin`) exposes to `convert`'s sink, once
/// the stream is known; `on_linked` runs with that pad (a failed link is logged, and then it
/// does not run).
pub(super) fn link_decoded_video(
    decode: &gst::Element,
    convert: &gst::Element,
    on_linked: impl Fn(&gst::Pad) + Send + Sync + 'static,
) {
    let convert_weak = convert.downgrade();
    decode.connect_pad_added(move |_, pad| {
        let Some(sinkpad) = convert_weak.upgrade().and_then(|c| c.static_pad("sink")) else {
            return;
        };
        let is_raw_video = pad
            .current_caps()
            .and_then(|c| c.structure(0).map(|s| s.name().starts_with("video/x-raw")))
            .unwrap_or(false);
        if !is_raw_video || sinkpad.is_linked() {
            return;
        }
        match pad.link(&sinkpad) {
            Ok(_) => on_linked(pad),
            Err(e) => tracing::warn!("cannot link the decoder to the converter: {e:?}"),
        }
    });
}

/// Ask the camera for its video streams only (no audio or metadata to receive and drop), and
/// link the first one to the decoder.
pub(super) fn link_first_video_stream(src: &gst::Element, decode: &gst::Element) {
    let video = |caps: Option<gst::Caps>| {
        caps.and_then(|c| c.structure(0).and_then(|s| s.get::<String>("media").ok()))
            .is_some_and(|m| m == "video")
    };
    src.connect("select-stream", false, move |args| {
        let caps = args.get(2).and_then(|v| v.get::<gst::Caps>().ok());
        Some(video(caps).to_value())
    });
    let decode_weak = decode.downgrade();
    src.connect_pad_added(move |_, pad| {
        let Some(decode) = decode_weak.upgrade() else {
            return;
        };
        let Some(sinkpad) = decode.static_pad("sink") else {
            return;
        };
        if video(pad.current_caps())
            && !sinkpad.is_linked()
            && let Err(e) = pad.link(&sinkpad)
        {
            tracing::warn!("cannot link the video stream to the decoder: {e:?}");
        }
    });
}

/// One frame out of the decoder: count it (and damage the decoder concealed), note that the
/// camera is alive, and let it on only if the analysis rate needs it.
fn decoded(
    board: &FrameBoard,
    counters: &super::slot::Counters,
    index: usize,
    thinner: &Mutex<Thinner>,
    skip: &Skipping,
    buffer: &gst::Buffer,
) -> gst::PadProbeReturn {
    counters.decoded.fetch_add(1, Ordering::Relaxed);
    // Frames the decoder produced from damaged data (it concealed the damage) are flagged
    // corrupted: count them with the decoder's reported errors.
    if buffer.flags().contains(gst::BufferFlags::CORRUPTED) {
        decode_errors::count(counters);
    }
    // Alive, even when this frame is thinned out (slow analysis rates must not trip the stall
    // watchdog or the camera status).
    board.saw_frame(index);
    let pts = buffer
        .pts()
        .map_or_else(arrival_ns, gst::ClockTime::nseconds);
    let mut thinner = thinner
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let seen = thinner.offer(pts);
    // After the key frame where skipping started or stopped, frames come a group or a frame
    // apart: a new spacing to learn, not frames lost (the gap up to that key frame is the
    // old spacing).
    if skip.changed.load(Ordering::Relaxed)
        && pts >= skip.change_pts.load(Ordering::Relaxed)
        && skip.changed.swap(false, Ordering::Relaxed)
    {
        thinner.relearn();
    }
    drop(thinner);
    counters.missing.fetch_add(seen.missing, Ordering::Relaxed);
    match seen.verdict {
        Verdict::Keep => gst::PadProbeReturn::Ok,
        Verdict::Thin => {
            counters.thinned.fetch_add(1, Ordering::Relaxed);
            gst::PadProbeReturn::Drop
        }
        Verdict::Misordered => {
            counters.misordered.fetch_add(1, Ordering::Relaxed);
            gst::PadProbeReturn::Drop
        }
    }
}

/// Key-frame-only decoding of one pipeline ([`super::keyonly`]), shared by the probe before
/// the decoder and the one after it.
struct Skipping {
    /// Camera id, for the log (the probes run on GStreamer's threads, outside its span).
    camera: String,
    state: Mutex<KeyOnly>,
    /// Skipping started or stopped at the key frame presented at `change_pts`, and the
    /// thinner has not relearnt the spacing since.
    changed: AtomicBool,
    change_pts: std::sync::atomic::AtomicU64,
}

impl Skipping {
    fn new(camera: &str, analysis_fps: f64) -> Skipping {
        Skipping {
            camera: camera.to_string(),
            state: Mutex::new(KeyOnly::new(analysis_fps)),
            changed: AtomicBool::new(false),
            change_pts: std::sync::atomic::AtomicU64::new(0),
        }
    }
}

/// Drop the units `skip` says are not needed before `decoder` decodes them, counting them.
fn skip_before(
    decoder: &gst::Element,
    skip: &Arc<Skipping>,
    counters: &Arc<super::slot::Counters>,
) {
    let Some(pad) = decoder.static_pad("sink") else {
        return;
    };
    let (skip, counters) = (Arc::clone(skip), Arc::clone(counters));
    pad.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
        let Some(gst::PadProbeData::Buffer(b)) = &info.data else {
            return gst::PadProbeReturn::Ok;
        };
        let key = !b.flags().contains(gst::BufferFlags::DELTA_UNIT);
        let mut state = skip
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let verdict = state.offer(key, b.pts().map(gst::ClockTime::nseconds));
        if let Some(at) = state.take_change() {
            skip.change_pts.store(at, Ordering::Relaxed);
            skip.changed.store(true, Ordering::Relaxed);
            tracing::info!(
                camera = %skip.camera,
                key_frames_only = state.engaged(),
                "decoding {} (analysis_fps at most 1 and key frames at least as often)",
                if state.engaged() { "key frames only" } else { "every frame again" }
            );
        }
        match verdict {
            Unit::Decode => gst::PadProbeReturn::Ok,
            Unit::Skip => {
                counters.skipped.fetch_add(1, Ordering::Relaxed);
                counters.thinned.fetch_add(1, Ordering::Relaxed);
                gst::PadProbeReturn::Drop
            }
        }
    });
}

/// Nanoseconds on a monotonic clock, for a frame without a presentation time.
fn arrival_ns() -> u64 {
    static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    let start = *START.get_or_init(std::time::Instant::now);
    u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

/// The appsink's callbacks: each kept frame goes to the camera's slot with its capture time.
fn frame_callbacks(
    index: usize,
    clock: FrameClock,
    board: &Arc<FrameBoard>,
) -> gst_app::AppSinkCallbacks {
    let mut skew_warned = false;
    let board = Arc::clone(board);
    gst_app::AppSinkCallbacks::builder()
        .new_sample(move |sink| {
            let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
            let Some(mut frame) = super::file::sample_to_frame(&sample) else {
                tracing::debug!("dropped a sample without usable frame data");
                return Ok(gst::FlowSuccess::Ok);
            };
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
            Ok(gst::FlowSuccess::Ok)
        })
        .build()
}

/// RTP packets lost and late so far in the jitter buffers of `bin` (one per stream received).
fn rtp_losses(bin: &gst::Bin) -> (u64, u64) {
    let (mut lost, mut late) = (0, 0);
    for element in bin.iterate_recurse().into_iter().flatten() {
        let is_jitterbuffer = element
            .factory()
            .is_some_and(|f| f.name() == "rtpjitterbuffer");
        if !is_jitterbuffer {
            continue;
        }
        let stats = element.property::<gst::Structure>("stats");
        lost += stats.get::<u64>("num-lost").unwrap_or(0);
        late += stats.get::<u64>("num-late").unwrap_or(0);
    }
    (lost, late)
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
    let Some(bus) = pipeline.bus() else {
        return Outcome::Failed("pipeline has no bus".into());
    };
    if let Err(e) = pipeline.set_state(gst::State::Playing) {
        return Outcome::Failed(format!("cannot start: {e}"));
    }
    let mut rtp = RtpTally::new();
    let outcome = watch(pipeline, &bus, stop, counters, stall, &mut rtp);
    rtp.update(pipeline, counters);
    outcome
}

/// The jitter buffers' RTP losses added to the camera's lifetime counts, as the differences
/// between readings: a pipeline's (or a rebuilt jitter buffer's) own counts start at zero
/// again, and the lifetime counts never go back.
struct RtpTally {
    last: (u64, u64),
    next: std::time::Instant,
}

impl RtpTally {
    fn new() -> RtpTally {
        RtpTally {
            last: (0, 0),
            next: std::time::Instant::now(),
        }
    }

    /// Read the jitter buffers at most once a second.
    fn tick(&mut self, pipeline: &gst::Pipeline, counters: &super::slot::Counters) {
        if std::time::Instant::now() >= self.next {
            self.next = std::time::Instant::now() + std::time::Duration::from_secs(1);
            self.update(pipeline, counters);
        }
    }

    fn update(&mut self, pipeline: &gst::Pipeline, counters: &super::slot::Counters) {
        let now = rtp_losses(pipeline.upcast_ref());
        let grew = |now: u64, last: u64| if now >= last { now - last } else { now };
        counters
            .packets_lost
            .fetch_add(grew(now.0, self.last.0), Ordering::Relaxed);
        counters
            .packets_late
            .fetch_add(grew(now.1, self.last.1), Ordering::Relaxed);
        self.last = now;
    }
}

/// Watch a playing pipeline's bus until it fails, stalls or `stop` is set.
fn watch(
    pipeline: &gst::Pipeline,
    bus: &gst::Bus,
    stop: &AtomicBool,
    counters: &super::slot::Counters,
    stall: std::time::Duration,
    rtp: &mut RtpTally,
) -> Outcome {
    let started = std::time::Instant::now();
    loop {
        if stop.load(Ordering::Relaxed) {
            return Outcome::Stopped;
        }
        rtp.tick(pipeline, counters);
        let last_frame = *counters
            .last_frame
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if stalled(std::time::Instant::now(), started, last_frame, stall) {
            return Outcome::Stalled(format!(
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
