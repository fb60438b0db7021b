//! Decode frames from a video file (any container/codec GStreamer can play) for offline
//! commands (`vigil detect`, benchmarks). Not used by live cameras.

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use gstreamer_video as gst_video;

use super::slot::{Frame, FrameData};
use crate::pixels::{Format, Yuv, chroma_size};

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
            None => break Err(bus_error(&pipeline).unwrap_or_else(|| "timed out".into())),
        }
    };
    let _ = pipeline.set_state(gst::State::Null);
    result
}

/// The first error message waiting on `pipeline`'s bus (the messages before it are dropped).
pub fn bus_error(pipeline: &gst::Pipeline) -> Option<String> {
    let bus = pipeline.bus()?;
    std::iter::from_fn(|| bus.pop()).find_map(|m| match m.view() {
        gst::MessageView::Error(e) => Some(e.error().to_string()),
        _ => None,
    })
}

/// Decode up to `max` frames of `path`, keeping one frame in `every`, in the cameras' format.
pub fn decode_frames(
    path: &std::path::Path,
    every: usize,
    max: usize,
) -> Result<Vec<Frame>, String> {
    let mut frames = Vec::new();
    let mut index = 0usize;
    pull_samples(
        &format!(
            "filesrc name=src ! decodebin ! videoconvert ! {} ! appsink name=sink sync=false max-buffers=4",
            super::FRAME_CAPS
        ),
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

/// The colour matrix of a stream's colorimetry; a stream that names none gets GStreamer's
/// default for its size (BT.601 up to 576 lines, BT.709 above).
pub fn yuv_of(colorimetry: &gst_video::VideoColorimetry, height: u32) -> Yuv {
    let full = colorimetry.range() == gst_video::VideoColorRange::Range0_255;
    match colorimetry.matrix().kr_kb() {
        Ok((kr, kb)) => Yuv::new(kr as f32, kb as f32, full),
        Err(_) if height > 576 => Yuv::new(0.2126, 0.0722, full),
        Err(_) => Yuv::new(0.299, 0.114, full),
    }
}

/// A sample as a frame captured now: packed RGB or I420, as its caps say (`None` for other
/// formats or a buffer too short for them). The buffer itself is handed on when its rows and
/// planes are packed (the usual case), else a packed copy is made.
pub fn sample_to_frame(sample: &gst::Sample) -> Option<Frame> {
    let info = gst_video::VideoInfo::from_caps(sample.caps()?).ok()?;
    let (w, h) = (info.width(), info.height());
    let format = match info.format() {
        gst_video::VideoFormat::Rgb => Format::Rgb,
        gst_video::VideoFormat::I420 => Format::I420(yuv_of(&info.colorimetry(), h)),
        _ => return None,
    };
    // Packed bytes per row and rows, per plane.
    let (cw, ch) = chroma_size(w, h);
    let (w, h) = (w as usize, h as usize);
    let planes: &[(usize, usize)] = match format {
        Format::Rgb => &[(w * 3, h)],
        Format::I420(_) => &[(w, h), (cw, ch), (cw, ch)],
    };
    let len = format.len(info.width(), info.height());
    let buffer = sample.buffer_owned()?;
    // Where each plane starts and its stride: the buffer's video meta when it carries one.
    let mut at = [(0usize, 0usize); 3];
    {
        let meta = buffer.meta::<gst_video::VideoMeta>();
        let (offsets, strides) = match &meta {
            Some(m) => (m.offset(), m.stride()),
            None => (info.offset(), info.stride()),
        };
        for (i, slot) in at.iter_mut().enumerate().take(planes.len()) {
            *slot = (*offsets.get(i)?, usize::try_from(*strides.get(i)?).ok()?);
        }
    }
    let at = &at[..planes.len()];
    let mut start = 0;
    let packed = planes
        .iter()
        .zip(at)
        .all(|(&(row, rows), &(offset, stride))| {
            let ok = offset == start && stride == row;
            start += row * rows;
            ok
        });
    let data = if packed && buffer.size() >= len {
        let map = buffer.into_mapped_buffer_readable().ok()?;
        FrameData::Mapped { map, len }
    } else {
        let map = buffer.map_readable().ok()?;
        let mut data = Vec::with_capacity(len);
        for (&(row, rows), &(offset, stride)) in planes.iter().zip(at) {
            for y in 0..rows {
                data.extend_from_slice(map.get(offset + y * stride..offset + y * stride + row)?);
            }
        }
        FrameData::Owned(data)
    };
    Some(Frame {
        camera: 0,
        width: w as u32,
        height: h as u32,
        data,
        format,
        captured: std::time::SystemTime::now(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A sample of `format` laid out as GStreamer lays it out (rows padded to 4 bytes), each
    /// byte of plane `p`, row `y`, column `x` set to `p·64 + y + x` (mod 256), padding 0xEE.
    fn padded_sample(format: gst_video::VideoFormat, w: u32, h: u32) -> (gst::Sample, Vec<u8>) {
        let info = gst_video::VideoInfo::builder(format, w, h)
            .build()
            .expect("video info");
        let mut bytes = vec![0xEEu8; info.size()];
        let mut packed = Vec::new();
        let planes: Vec<(usize, usize)> = match format {
            gst_video::VideoFormat::Rgb => vec![(w as usize * 3, h as usize)],
            gst_video::VideoFormat::I420 => {
                let (cw, ch) = chroma_size(w, h);
                vec![(w as usize, h as usize), (cw, ch), (cw, ch)]
            }
            _ => Vec::new(), // left as padding
        };
        for (p, &(row, rows)) in planes.iter().enumerate() {
            let (offset, stride) = (info.offset()[p], info.stride()[p] as usize);
            for y in 0..rows {
                for x in 0..row {
                    let v = (p * 64 + y + x) as u8;
                    bytes[offset + y * stride + x] = v;
                    packed.push(v);
                }
            }
        }
        let caps = info.to_caps().expect("caps");
        let sample = gst::Sample::builder()
            .buffer(&gst::Buffer::from_mut_slice(bytes))
            .caps(&caps)
            .build();
        (sample, packed)
    }

    #[test]
    fn padded_rows_and_planes_are_packed_and_packed_ones_handed_on() {
        gst::init().expect("GStreamer");
        for format in [gst_video::VideoFormat::I420, gst_video::VideoFormat::Rgb] {
            // 97 wide: rows padded (Y 100, chroma 49 → 52, RGB 291 → 292); 96: packed.
            for (w, h) in [(97u32, 61u32), (96, 60)] {
                let (sample, want) = padded_sample(format, w, h);
                let f = sample_to_frame(&sample).expect("a frame");
                assert_eq!((f.width, f.height), (w, h));
                assert_eq!(&f.data[..], &want[..], "{format:?} {w}×{h}");
                assert_eq!(f.view().check(), Ok(()));
                let mapped = matches!(f.data, FrameData::Mapped { .. });
                assert_eq!(mapped, w == 96, "{format:?} {w}×{h}: mapped {mapped}");
                match (format, f.format) {
                    (gst_video::VideoFormat::Rgb, Format::Rgb) => {}
                    // No colorimetry in the caps: GStreamer's default for SD, BT.601 limited.
                    (gst_video::VideoFormat::I420, Format::I420(yuv)) => {
                        assert_eq!(yuv, Yuv::BT601)
                    }
                    other => panic!("{other:?}"),
                }
            }
        }
        // Other formats are not frames.
        let (sample, _) = padded_sample(gst_video::VideoFormat::Nv12, 16, 16);
        assert!(sample_to_frame(&sample).is_none());
    }
}
