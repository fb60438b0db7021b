//! Each camera's [`Recorder`]: its pre-event [`Ring`] of encoded access units, fed by a probe
//! on the decoder's input (the parser's output: H.264/H.265 as the camera sent it) or, for a
//! camera with a `detect_url`, on the main stream's parser ([`super::record`]), with the
//! stream's caps, so that a clip can be muxed without decoding anything and an evidence still
//! decoded from the frames around one moment ([`super::still`]). The probe takes a
//! reference to each buffer (no copy, no allocation once the ring has grown) and holds the
//! lock for a push.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use gstreamer as gst;
use gstreamer::prelude::*;

use super::ring::{Gap, Ring, Unit};
use crate::config::FrameClock;

/// How far from the asked time the nearest picture of a still may be: more is a gap in the
/// stream (a reconnection), not the moment asked for.
pub const STILL_WITHIN: Duration = Duration::from_millis(500);

/// Units decoded past a still's picture, for decoders that hold pictures back to reorder
/// B-frames (cameras reorder by at most a few).
pub const STILL_AFTER: usize = 4;

/// How long a pre-event buffer kept only for evidence stills (clips off) reaches back.
pub const EVIDENCE_KEEP: Duration = Duration::from_secs(6);

/// The bytes such a buffer may hold (6 s of a 10 Mbit/s stream).
pub const EVIDENCE_BYTES: usize = 8 * 1024 * 1024;

/// What a clip is cut from: the stream's caps and its units.
#[derive(Debug)]
pub struct Cut {
    /// Caps of the encoded stream (`video/x-h264` or `video/x-h265`, parsed).
    pub caps: gst::Caps,
    /// The units, from a key frame.
    pub units: Vec<Unit<gst::Buffer>>,
}

#[derive(Debug)]
struct Inner {
    ring: Ring<gst::Buffer>,
    caps: Option<gst::Caps>,
}

/// One camera's pre-event buffer.
#[derive(Debug)]
pub struct Recorder {
    inner: Mutex<Inner>,
}

impl Recorder {
    /// A recorder keeping `keep` of stream in at most `max_bytes`.
    pub fn new(keep: Duration, max_bytes: usize) -> Arc<Recorder> {
        // 30 units a second for the time kept: the queue rarely grows after that.
        let capacity = usize::try_from(keep.as_secs().saturating_mul(30)).unwrap_or(1024);
        Arc::new(Recorder {
            inner: Mutex::new(Inner {
                ring: Ring::new(keep, max_bytes, capacity.min(16_384)),
                caps: None,
            }),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Keep `buffer` (with the stream's current `caps`); a change of caps starts the buffer
    /// again (a clip holds one format).
    pub fn record(&self, caps: Option<gst::Caps>, buffer: &gst::Buffer) {
        let mut inner = self.lock();
        if let Some(caps) = caps
            && inner.caps.as_ref().is_none_or(|c| *c != caps)
        {
            inner.ring.clear();
            inner.caps = Some(caps);
        }
        let unit = Unit {
            data: buffer.clone(),
            bytes: buffer.size(),
            at: SystemTime::now(),
            key: !buffer.flags().contains(gst::BufferFlags::DELTA_UNIT),
        };
        inner.ring.push(unit);
    }

    /// Forget what was buffered (a new connection: its times start again).
    pub fn reset(&self) {
        self.lock().ring.clear();
    }

    /// The units from the last key frame at or before `from` to `to`.
    pub fn cut(&self, from: SystemTime, to: SystemTime) -> Result<Cut, Gap> {
        let inner = self.lock();
        let units = inner.ring.cut(from, to)?;
        let caps = inner.caps.clone().ok_or(Gap::Empty)?;
        Ok(Cut { caps, units })
    }

    /// The units to decode for the picture nearest `at` (see [`Ring::around`]) and where that
    /// picture is among them, the capture time of each unit read by the camera's `clock`.
    pub fn around(&self, at: SystemTime, clock: FrameClock) -> Result<(Cut, usize), Gap> {
        let time = |u: &Unit<gst::Buffer>| match clock {
            FrameClock::Auto => {
                super::pipeline::capture_time(u.at, super::file::stream_time(&u.data)).0
            }
            FrameClock::Arrival => u.at,
        };
        let inner = self.lock();
        let (units, target) = inner.ring.around(at, STILL_WITHIN, STILL_AFTER, time)?;
        let caps = inner.caps.clone().ok_or(Gap::Empty)?;
        Ok((Cut { caps, units }, target))
    }

    /// Bytes held now.
    pub fn bytes(&self) -> usize {
        self.lock().ring.bytes()
    }
}

/// Record what flows into `decoder` (a decoder element just added to the camera's pipeline).
pub fn watch_decoder(decoder: &gst::Element, recorder: &Arc<Recorder>) {
    let Some(pad) = decoder.static_pad("sink") else {
        return;
    };
    let recorder = Arc::clone(recorder);
    pad.add_probe(gst::PadProbeType::BUFFER, move |pad, info| {
        if let Some(gst::PadProbeData::Buffer(b)) = &info.data {
            recorder.record(pad.current_caps(), b);
        }
        gst::PadProbeReturn::Ok
    });
}
