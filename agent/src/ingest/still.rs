//! Evidence stills from a camera's main stream: the picture nearest one moment, decoded on
//! demand from the encoded units its [`Recorder`] keeps, for cameras that analyse a
//! `detect_url` sub-stream and never decode the main stream otherwise.
//!
//! The units from the key frame before the picture to a few past it (for decoders that hold
//! pictures back to reorder B-frames) go through a short-lived `appsrc → decodebin →
//! videoconvert → appsink` pipeline; the decoded picture whose presentation time is the
//! chosen unit's is kept. The cost is up to one group of pictures decoded per evidence picture
//! (one per `open`), on the evidence thread (`stills`), within [`DECODE_DEADLINE`].

use std::time::{Duration, Instant, SystemTime};

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;

use super::recorder::{Cut, Recorder};
use super::ring::Gap;
use super::slot::Frame;
use crate::config::FrameClock;

/// The most a still's decoding may take: a decoder that fails or stalls costs no more.
pub const DECODE_DEADLINE: Duration = Duration::from_secs(2);

/// Why no still could be made from the main stream.
#[derive(Debug, thiserror::Error)]
pub enum StillError {
    /// The main stream holds nothing near the moment.
    #[error("the main stream has no picture near the event: {0}")]
    Gap(String),
    /// The units did not decode.
    #[error("the main stream's picture did not decode: {0}")]
    Decode(String),
}

/// The main stream's picture nearest `at`, waiting up to `wait` for it to arrive (also for the
/// first key frame of a connection, when nothing is held yet).
pub fn nearest(
    recorder: &Recorder,
    at: SystemTime,
    clock: FrameClock,
    wait: Duration,
) -> Result<Frame, StillError> {
    let deadline = Instant::now() + wait;
    let (cut, target) = loop {
        match recorder.around(at, clock) {
            Ok(found) => break found,
            Err(Gap::NotYet { .. } | Gap::Empty) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(gap) => return Err(StillError::Gap(describe(&gap, at))),
        }
    };
    decode(&cut, target)
}

fn describe(gap: &Gap, at: SystemTime) -> String {
    let ms = |t: SystemTime| match t.duration_since(at) {
        Ok(d) => format!("{} ms after it", d.as_millis()),
        Err(e) => format!("{} ms before it", e.duration().as_millis()),
    };
    match gap {
        Gap::Empty => "nothing received (the main stream is not connected)".into(),
        Gap::NotYet { newest } => format!("the newest unit is {}", ms(*newest)),
        Gap::RolledPast { oldest, newest } => format!(
            "it holds {} to {}",
            ms(*oldest).replace(" it", " the event"),
            ms(*newest).replace(" it", " the event")
        ),
    }
}

/// Decode `cut` and return the picture of unit `target`, owned.
pub fn decode(cut: &Cut, target: usize) -> Result<Frame, StillError> {
    let err = StillError::Decode;
    let wanted = cut.units.get(target).ok_or_else(|| err("no unit".into()))?;
    let wanted_pts = wanted.data.pts();
    // The appsrc's streaming thread (and the decoder's threads it starts) are named
    // `still:src`: their CPU can be told from the cameras' in a per-thread profile.
    let pipeline = gst::parse::launch(&format!(
        "appsrc name=still format=time ! decodebin ! videoconvert ! {} ! appsink name=sink sync=false",
        super::FRAME_CAPS
    ))
    .map_err(|e| err(e.to_string()))?
    .downcast::<gst::Pipeline>()
    .map_err(|_| err("not a pipeline".into()))?;
    let result = run(&pipeline, cut, target, wanted_pts);
    let _ = pipeline.set_state(gst::State::Null);
    let mut frame = result?;
    frame.captured = wanted.at;
    Ok(frame)
}

fn run(
    pipeline: &gst::Pipeline,
    cut: &Cut,
    target: usize,
    wanted: Option<gst::ClockTime>,
) -> Result<Frame, StillError> {
    let err = StillError::Decode;
    let src = pipeline
        .by_name("still")
        .and_then(|s| s.downcast::<gst_app::AppSrc>().ok())
        .ok_or_else(|| err("no appsrc".into()))?;
    let sink = pipeline
        .by_name("sink")
        .and_then(|s| s.downcast::<gst_app::AppSink>().ok())
        .ok_or_else(|| err("no appsink".into()))?;
    src.set_caps(Some(&cut.caps));
    src.set_max_bytes(0);
    pipeline
        .set_state(gst::State::Playing)
        .map_err(|e| err(e.to_string()))?;
    for unit in &cut.units {
        src.push_buffer(unit.data.clone())
            .map_err(|e| err(format!("{e:?}")))?;
    }
    src.end_of_stream().map_err(|e| err(format!("{e:?}")))?;
    let deadline = Instant::now() + DECODE_DEADLINE;
    let mut best: Option<(u64, gst::Sample)> = None;
    let mut index = 0usize;
    while !sink.is_eos() {
        if let Some(e) = super::file::bus_error(pipeline) {
            return Err(err(e));
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(err(format!(
                "not decoded within {} s",
                DECODE_DEADLINE.as_secs()
            )));
        }
        let wait = gst::ClockTime::from_mseconds(left.as_millis().min(100) as u64);
        let Some(sample) = sink.try_pull_sample(wait) else {
            continue;
        };
        // By presentation time when the units carry it (B-frames leave the decoder in another
        // order than they entered), else by place; a picture without a time never beats one
        // with it.
        let pts = sample.buffer().and_then(gst::BufferRef::pts);
        let off = match (wanted, pts) {
            (Some(w), Some(p)) => w.nseconds().abs_diff(p.nseconds()),
            (Some(_), None) => u64::MAX,
            (None, _) => index.abs_diff(target) as u64,
        };
        if best.as_ref().is_none_or(|(d, _)| off < *d) {
            best = Some((off, sample));
        }
        index += 1;
    }
    let (_, sample) = best.ok_or_else(|| {
        err(super::file::bus_error(pipeline)
            .unwrap_or_else(|| "the decoder gave no picture".into()))
    })?;
    super::file::sample_to_frame(&sample)
        .map(Frame::into_owned)
        .ok_or_else(|| err("a picture in an unexpected format".into()))
}
