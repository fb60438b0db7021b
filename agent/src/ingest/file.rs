//! Decode frames from a video file (any container/codec GStreamer can play) to packed RGB, for
//! offline commands (`vigil detect`, benchmarks). Not used by live cameras.

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use gstreamer_video as gst_video;

use super::slot::{Frame, FrameData};

/// Play `path` through `launch` (a pipeline with a `filesrc` named `src` and an `appsink`
/// named `sink`) as fast as possible, handing each sample to `on_sample` until it returns
/// false or the file ends. Errors carry GStreamer's reason.
pub fn pull_samples(
    launch: &str,
    path: &std::path::Path,
    mut on_sample: impl FnMut(&gst::Sample) -> bool,
) -> Result<(), String> {
    gst::init().map_err(|e| e.to_string())?;
    if !path.is_file() {
        return Err(format!("{} does not exist", path.display()));
    }
    let pipeline = gst::parse::launch(launch)
        .map_err(|e| e.to_string())?
        .downcast::<gst::Pipeline>()
        .map_err(|_| "not a pipeline".to_string())?;
    let src = pipeline.by_name("src").ok_or("no filesrc")?;
    src.set_property("location", path.to_string_lossy().as_ref());
    let sink = pipeline
        .by_name("sink")
        .and_then(|s| s.downcast::<gst_app::AppSink>().ok())
        .ok_or("no appsink")?;
    pipeline
        .set_state(gst::State::Playing)
        .map_err(|e| e.to_string())?;
    let result = loop {
        match sink.try_pull_sample(gst::ClockTime::from_seconds(10)) {
            Some(sample) => {
                if !on_sample(&sample) {
                    break Ok(());
                }
            }
            None if sink.is_eos() => break Ok(()),
            None => {
                let reason = pipeline
                    .bus()
                    .and_then(|b| {
                        std::iter::from_fn(|| b.pop()).find_map(|m| match m.view() {
                            gst::MessageView::Error(e) => Some(e.error().to_string()),
                            _ => None,
                        })
                    })
                    .unwrap_or_else(|| "timed out".into());
                break Err(reason);
            }
        }
    };
    let _ = pipeline.set_state(gst::State::Null);
    result
}

/// Decode up to `max` frames of `path`, keeping one frame in `every`.
pub fn decode_frames(
    path: &std::path::Path,
    every: usize,
    max: usize,
) -> Result<Vec<Frame>, String> {
    let mut frames = Vec::new();
    let mut index = 0usize;
    pull_samples(
        "filesrc name=src ! decodebin ! videoconvert ! video/x-raw,format=RGB ! appsink name=sink sync=false max-buffers=4",
        path,
        |sample| {
            if index.is_multiple_of(every.max(1))
                && let Some(f) = sample_to_frame(sample)
            {
                // Kept beyond the pipeline's life: copied out of its buffers.
                frames.push(f.into_owned());
            }
            index += 1;
            frames.len() < max
        },
    )
    .map_err(|e| format!("cannot decode {}: {e}", path.display()))?;
    Ok(frames)
}

/// Seconds from the NTP epoch (1900) to the Unix epoch (1970).
const NTP_TO_UNIX_S: u64 = 2_208_988_800;

/// The capture time a buffer carries from the camera's clock: the NTP reference timestamp that
/// rtspsrc attaches (`add-reference-timestamp-meta`) once RTCP sender reports have synchronised
/// the stream. `None` before that, and for sources without sender reports.
pub fn stream_time(buffer: &gst::BufferRef) -> Option<std::time::SystemTime> {
    buffer
        .iter_meta::<gst::ReferenceTimestampMeta>()
        .find(|m| {
            m.reference()
                .structure(0)
                .is_some_and(|s| s.name() == "timestamp/x-ntp")
        })
        .and_then(|m| {
            m.timestamp()
                .nseconds()
                .checked_sub(NTP_TO_UNIX_S * 1_000_000_000)
        })
        .map(|ns| std::time::UNIX_EPOCH + std::time::Duration::from_nanos(ns))
}

/// Copy an RGB sample into a packed frame (rows may be padded in the buffer), captured now.
pub fn sample_to_frame(sample: &gst::Sample) -> Option<Frame> {
    let info = gst_video::VideoInfo::from_caps(sample.caps()?).ok()?;
    let (w, h) = (info.width() as usize, info.height() as usize);
    let stride = usize::try_from(*info.stride().first()?).ok()?;
    let row = w * 3;
    let len = row * h;
    let buffer = sample.buffer_owned()?;
    let data = if stride == row && buffer.size() >= len {
        // Packed rows (the usual case: a width of a multiple of 4): hand the buffer itself on.
        let map = buffer.into_mapped_buffer_readable().ok()?;
        FrameData::Mapped { map, len }
    } else {
        let map = buffer.map_readable().ok()?;
        let mut data = Vec::with_capacity(len);
        for y in 0..h {
            data.extend_from_slice(map.get(y * stride..y * stride + row)?);
        }
        FrameData::Owned(data)
    };
    Some(Frame {
        camera: 0,
        width: w as u32,
        height: h as u32,
        data,
        captured: std::time::SystemTime::now(),
    })
}
