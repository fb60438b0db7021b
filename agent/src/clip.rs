//! Evidence clips: a [`Cut`] of a camera's pre-event buffer muxed into an MP4 file as the
//! camera encoded it (GStreamer's parser and `mp4mux`; nothing is decoded or re-encoded), kept
//! in the clips folder of the state folder under a byte quota (oldest removed first), and split
//! into chunks for MQTT, each with its sha256.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;

use crate::ingest::recorder::Cut;

/// Why no clip was written.
#[derive(Debug, thiserror::Error)]
pub enum ClipError {
    /// The stream's format cannot go into MP4 here.
    #[error("the camera's stream ({0}) cannot be put into an MP4 clip (H.264 and H.265 can)")]
    Format(String),
    /// GStreamer refused.
    #[error("muxing the clip failed: {0}")]
    Mux(String),
    /// The file could not be written.
    #[error("cannot write the clip {path}: {source}")]
    Write {
        /// The clip's path.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// A clip written to disk.
#[derive(Debug, Clone)]
pub struct Written {
    /// Where.
    pub path: PathBuf,
    /// Its bytes.
    pub bytes: Vec<u8>,
    /// sha256 (hex) of the file.
    pub sha256: String,
    /// When its first unit (a key frame) arrived.
    pub start: SystemTime,
    /// From its first frame's time to its last one's.
    pub duration: Duration,
    /// Frames in it.
    pub frames: usize,
}

fn parser_for(caps: &gst::Caps) -> Result<&'static str, ClipError> {
    let name = caps
        .structure(0)
        .map(|s| s.name().to_string())
        .unwrap_or_default();
    match name.as_str() {
        "video/x-h264" => Ok("h264parse"),
        "video/x-h265" => Ok("h265parse"),
        _ => Err(ClipError::Format(name)),
    }
}

/// Mux `cut` into an MP4 file at `path` (written beside it first, then renamed).
pub fn write(cut: &Cut, path: &Path) -> Result<Written, ClipError> {
    let parser = parser_for(&cut.caps)?;
    if cut.units.is_empty() {
        return Err(ClipError::Mux("nothing to put in the clip".into()));
    }
    let mux_err = |e: &dyn std::fmt::Display| ClipError::Mux(e.to_string());
    let write_err = |source| ClipError::Write {
        path: path.to_path_buf(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(write_err)?;
    }
    let tmp = path.with_extension("mp4.part");
    let pipeline = gst::Pipeline::new();
    let src = gst_app::AppSrc::builder()
        .caps(&cut.caps)
        .format(gst::Format::Time)
        .build();
    let make = |name: &str| {
        gst::ElementFactory::make(name)
            .build()
            .map_err(|e| mux_err(&e))
    };
    let (parse, mux, sink) = (make(parser)?, make("mp4mux")?, make("filesink")?);
    sink.set_property("location", tmp.to_string_lossy().to_string());
    pipeline
        .add_many([src.upcast_ref(), &parse, &mux, &sink])
        .map_err(|e| mux_err(&e))?;
    gst::Element::link_many([src.upcast_ref(), &parse, &mux, &sink]).map_err(|e| mux_err(&e))?;
    pipeline
        .set_state(gst::State::Playing)
        .map_err(|e| mux_err(&e))?;
    let (frames, duration) = push_units(&src, cut);
    let _ = src.end_of_stream();
    let ended = wait_end(&pipeline);
    let _ = pipeline.set_state(gst::State::Null);
    if let Err(e) = ended {
        let _ = std::fs::remove_file(&tmp);
        return Err(ClipError::Mux(e));
    }
    std::fs::rename(&tmp, path).map_err(write_err)?;
    let bytes = std::fs::read(path).map_err(write_err)?;
    Ok(Written {
        path: path.to_path_buf(),
        sha256: crate::hash::sha256_hex(&bytes),
        bytes,
        start: cut.units.first().map_or(SystemTime::UNIX_EPOCH, |u| u.at),
        duration,
        frames,
    })
}

/// Decode times for units in decode order with presentation times `pts` (nanoseconds): RTP
/// carries no decode time, and without one `mp4mux` takes each presentation time as its decode
/// time, which reorders the frames of a stream with B-frames. The i-th smallest presentation
/// time, less the largest reordering delay, rises with i and never passes the unit's own.
pub fn decode_times(pts: &[u64]) -> Vec<i128> {
    let mut sorted = pts.to_vec();
    sorted.sort_unstable();
    let delay = sorted
        .iter()
        .zip(pts)
        .map(|(s, p)| i128::from(*s) - i128::from(*p))
        .max()
        .unwrap_or(0)
        .max(0);
    sorted.iter().map(|s| i128::from(*s) - delay).collect()
}

/// Push the cut's units with their times moved to start at zero (decode times made up where
/// the stream has none); the frames pushed and the span of their presentation times.
fn push_units(src: &gst_app::AppSrc, cut: &Cut) -> (usize, Duration) {
    let pts: Vec<u64> = cut
        .units
        .iter()
        .map(|u| {
            u.data
                .pts()
                .or(u.data.dts())
                .map_or(0, gst::ClockTime::nseconds)
        })
        .collect();
    let dts: Vec<i128> = if cut.units.iter().all(|u| u.data.dts().is_some()) {
        cut.units
            .iter()
            .map(|u| u.data.dts().map_or(0, |t| i128::from(t.nseconds())))
            .collect()
    } else {
        decode_times(&pts)
    };
    let base = dts
        .iter()
        .copied()
        .chain(pts.iter().map(|p| i128::from(*p)))
        .min()
        .unwrap_or(0);
    let at = |t: i128| gst::ClockTime::from_nseconds(u64::try_from(t - base).unwrap_or(0));
    let first = pts.iter().min().copied().unwrap_or(0);
    let last = pts.iter().max().copied().unwrap_or(first);
    let mut frames = 0;
    for (i, unit) in cut.units.iter().enumerate() {
        let mut b = unit.data.copy();
        {
            let b = b.make_mut();
            b.set_pts(at(i128::from(pts[i])));
            b.set_dts(at(dts[i]));
        }
        if src.push_buffer(b).is_err() {
            break;
        }
        frames += 1;
    }
    (frames, Duration::from_nanos(last - first))
}

/// Wait for the muxer to finish the file (EOS) or fail.
fn wait_end(pipeline: &gst::Pipeline) -> Result<(), String> {
    let bus = pipeline.bus().ok_or("the pipeline has no bus")?;
    let deadline = gst::ClockTime::from_seconds(30);
    match bus.timed_pop_filtered(deadline, &[gst::MessageType::Eos, gst::MessageType::Error]) {
        Some(msg) => match msg.view() {
            gst::MessageView::Error(e) => Err(e.error().to_string()),
            _ => Ok(()),
        },
        None => Err("the muxer did not finish within 30 s".into()),
    }
}

/// Keep the clips folder `dir` under `quota` bytes once `incoming` more are written: the
/// oldest clips go first. Returns the files removed.
pub fn make_room(dir: &Path, quota: u64, incoming: u64) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut clips: Vec<(SystemTime, u64, PathBuf)> = entries
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "mp4"))
        .filter_map(|e| {
            let m = e.metadata().ok()?;
            Some((m.modified().ok()?, m.len(), e.path()))
        })
        .collect();
    clips.sort();
    let mut total: u64 = clips.iter().map(|c| c.1).sum::<u64>() + incoming;
    let mut removed = Vec::new();
    for (_, len, path) in clips {
        if total <= quota {
            break;
        }
        if std::fs::remove_file(&path).is_ok() {
            total = total.saturating_sub(len);
            removed.push(path);
        }
    }
    removed
}

/// `bytes` in chunks of at most `size` (at least 1 KiB), each with its sha256.
pub fn chunks(bytes: &[u8], size: usize) -> Vec<(&[u8], String)> {
    bytes
        .chunks(size.max(1024))
        .map(|c| (c, crate::hash::sha256_hex(c)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn made_up_decode_times_rise_and_never_pass_presentation() {
        // I P B B in decode order, presented I B B P (100 ms apart).
        let pts = [0, 300, 100, 200, 700, 500, 600];
        let dts = decode_times(&pts);
        assert!(dts.windows(2).all(|w| w[0] < w[1]), "{dts:?}");
        assert!(
            dts.iter().zip(pts).all(|(d, p)| *d <= i128::from(p)),
            "{dts:?}"
        );
        assert_eq!(
            decode_times(&[0, 100, 200]),
            vec![0, 100, 200],
            "no reordering"
        );
    }

    #[test]
    fn the_oldest_clips_make_room_first() {
        let dir = std::env::temp_dir().join(format!("vigil-clips-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("dir");
        for (i, name) in ["a.mp4", "b.mp4", "c.mp4"].iter().enumerate() {
            std::fs::write(dir.join(name), vec![0u8; 1000]).expect("write");
            let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1000 + i as u64);
            let f = std::fs::File::options()
                .write(true)
                .open(dir.join(name))
                .expect("open");
            f.set_modified(t).expect("mtime");
        }
        std::fs::write(dir.join("notes.txt"), vec![0u8; 5000]).expect("write");
        let removed = make_room(&dir, 2500, 500);
        assert_eq!(removed, vec![dir.join("a.mp4")]);
        assert!(dir.join("notes.txt").exists(), "only clips are removed");
        assert_eq!(make_room(&dir, 100_000, 500), Vec::<PathBuf>::new());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn chunks_cover_the_bytes_each_with_its_hash() {
        let bytes: Vec<u8> = (0..5000u32).map(|i| (i % 251) as u8).collect();
        let parts = chunks(&bytes, 2048);
        assert_eq!(parts.len(), 3);
        assert_eq!(
            parts.iter().map(|p| p.0).collect::<Vec<_>>().concat(),
            bytes
        );
        assert_eq!(parts[2].1, crate::hash::sha256_hex(&bytes[4096..]));
        assert_eq!(chunks(&bytes, 10).len(), 5, "at least 1 KiB each");
    }
}
