//! Latest-wins frame hand-over between camera pipelines and the inference threads.
//!
//! Each camera owns one slot holding at most one frame. A pipeline writing a new frame replaces
//! an unconsumed one (counted as dropped): only fresh frames matter, and a slow detector never
//! makes a camera queue up. The inference threads take the freshest frame of each camera in
//! turn, so an overloaded box shares its inference time fairly between cameras. A taken frame
//! is a [`Claimed`] one: until it is dropped no other thread gets a frame of that camera, so
//! each camera's frames are analysed one at a time and in order, whatever the thread count.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use crate::pixels::{Format, FrameView};

/// The pixel bytes of a frame: the pipeline's own buffer, mapped, when its rows are packed (no
/// copy per frame), else a packed copy.
pub enum FrameData {
    /// Bytes owned here.
    Owned(Vec<u8>),
    /// A GStreamer buffer mapped for reading; `len` bytes of it are the picture.
    Mapped {
        /// The mapping (the buffer is kept alive by it).
        map: gstreamer::MappedBuffer<gstreamer::buffer::Readable>,
        /// Bytes of picture data at its start.
        len: usize,
    },
}

impl std::ops::Deref for FrameData {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match self {
            FrameData::Owned(v) => v,
            FrameData::Mapped { map, len } => &map.as_slice()[..*len],
        }
    }
}

impl Clone for FrameData {
    fn clone(&self) -> Self {
        FrameData::Owned(self.to_vec())
    }
}

impl std::fmt::Debug for FrameData {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self {
            FrameData::Owned(_) => "owned",
            FrameData::Mapped { .. } => "mapped",
        };
        write!(f, "FrameData({kind}, {} bytes)", self.len())
    }
}

impl From<Vec<u8>> for FrameData {
    fn from(v: Vec<u8>) -> Self {
        FrameData::Owned(v)
    }
}

/// One decoded frame: I420 from cameras, packed RGB from still images.
#[derive(Debug, Clone)]
pub struct Frame {
    /// Index of the camera in the config.
    pub camera: usize,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// The pixels, laid out as `format` says.
    pub data: FrameData,
    /// How `data` is laid out.
    pub format: Format,
    /// When the frame reached vigil (UTC).
    pub captured: SystemTime,
}

impl Frame {
    /// The frame borrowed as a view.
    pub fn view(&self) -> FrameView<'_> {
        FrameView {
            width: self.width,
            height: self.height,
            data: &self.data,
            format: self.format,
        }
    }

    /// A copy of the frame with its bytes owned, leaving the pipeline's buffer to it.
    pub fn copied(&self) -> Frame {
        Frame {
            data: FrameData::Owned(self.data.to_vec()),
            ..*self
        }
    }

    /// The frame with its bytes owned (copied out of a pipeline buffer if mapped), for keeping
    /// frames after their pipeline stopped or in numbers a pipeline's buffer pool may not have.
    pub fn into_owned(self) -> Frame {
        match self.data {
            FrameData::Owned(_) => self,
            FrameData::Mapped { .. } => Frame {
                data: FrameData::Owned(self.data.to_vec()),
                ..self
            },
        }
    }
}

/// Per-camera counters, readable without locking.
#[derive(Debug, Default)]
pub struct Counters {
    /// Frames that came out of the decoder (before thinning to the analysis rate).
    pub decoded: AtomicU64,
    /// Frames not needed at the analysis rate (see [`super::thin`]), including the
    /// [`Counters::skipped`] ones.
    pub thinned: AtomicU64,
    /// Units not decoded at all: only key frames are decoded at this analysis rate (see
    /// [`super::keyonly`]).
    pub skipped: AtomicU64,
    /// Decoded frames dropped because their time was at or before the previous frame's.
    pub misordered: AtomicU64,
    /// Frames missing before the decoder's output, by the gaps in the stream's timestamps
    /// (lost in the network, by the depayloader or the decoder).
    pub missing: AtomicU64,
    /// RTP packets that never arrived (the jitter buffer's count).
    pub packets_lost: AtomicU64,
    /// RTP packets that arrived too late to be used and were dropped by the jitter buffer.
    pub packets_late: AtomicU64,
    /// Frames delivered by the pipeline (after thinning to the analysis rate).
    pub received: AtomicU64,
    /// Frames replaced before the detector took them.
    pub dropped: AtomicU64,
    /// Frames the detector analysed.
    pub analysed: AtomicU64,
    /// Pipeline (re)starts after the first.
    pub reconnects: AtomicU64,
    /// Damaged input units the decoder reported: bus decode warnings/errors, frames flagged
    /// corrupted and libav's logged (concealed) errors, one count per unit
    /// (see [`super::decode_errors`]).
    pub decode_errors: AtomicU64,
    /// When the last frame arrived.
    pub last_frame: Mutex<Option<Instant>>,
    /// Whether the last frame's capture time came from the camera's clock (else arrival).
    pub stream_clock: std::sync::atomic::AtomicBool,
    /// What the supervisor is doing.
    pub link: Mutex<Link>,
    /// What the picture checks say (written by the inference thread).
    pub condition: Mutex<super::picture::Condition>,
    /// Incidents open now (written by the inference thread).
    pub open_incidents: AtomicU64,
    /// The status last published for the camera (written by the camera monitor).
    pub published: Mutex<Option<Published>>,
}

impl Counters {
    /// Record the status the camera monitor publishes (`state` and `reason`); `since` moves
    /// only when the state's name changed (`new_state`), not when only its reason did.
    pub fn publish_status(&self, state: &'static str, reason: Option<String>, new_state: bool) {
        let mut published = self
            .published
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let since = match published.as_ref() {
            Some(p) if !new_state => p.since,
            _ => SystemTime::now(),
        };
        *published = Some(Published {
            state,
            reason,
            since,
        });
    }
}

/// A camera status as published on `…/cameras/{camera}/status`.
#[derive(Debug, Clone, PartialEq)]
pub struct Published {
    /// `streaming`, `connecting`, `offline`, `frozen` or `tampered`.
    pub state: &'static str,
    /// Why, when not streaming.
    pub reason: Option<String>,
    /// When the camera entered this state.
    pub since: SystemTime,
}

/// The supervisor's view of a camera's connection.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Link {
    /// When the current connection attempt started.
    pub attempt_started: Option<Instant>,
    /// Why the last attempt failed (credentials scrubbed).
    pub last_error: Option<String>,
    /// Whether it was the stall watchdog that ended it (frames stopped), not an error.
    pub stalled: bool,
}

/// The slots of all cameras plus the signal that wakes the detector.
#[derive(Debug)]
pub struct FrameBoard {
    slots: Vec<Mutex<Option<Frame>>>,
    /// Whether a thread holds a [`Claimed`] frame of the camera.
    busy: Vec<AtomicBool>,
    counters: Vec<Arc<Counters>>,
    ready: Mutex<u64>,
    cv: Condvar,
    /// Each camera's pre-event buffer: clips when they are on, evidence stills of cameras
    /// with a `detect_url` always (empty for the others).
    recorders: Vec<Arc<super::recorder::Recorder>>,
    /// Whether clips are on (the analysed stream feeds the buffer of a camera without a
    /// `detect_url`).
    clips: bool,
    /// The main stream's counters of each camera with a `detect_url` (received units, link).
    main: Vec<Arc<Counters>>,
}

impl FrameBoard {
    /// A board for `cameras` cameras, clips off.
    pub fn new(cameras: usize) -> Arc<Self> {
        Self::recording(cameras, None)
    }

    /// A board for `cameras` cameras, each with a pre-event buffer of `clips` (time kept,
    /// bytes), or only for evidence stills ([`super::recorder::EVIDENCE_KEEP`]) when that is
    /// `None`.
    pub fn recording(cameras: usize, clips: Option<(std::time::Duration, usize)>) -> Arc<Self> {
        use super::recorder::{EVIDENCE_BYTES, EVIDENCE_KEEP, Recorder};
        let (keep, bytes) = clips.unwrap_or((EVIDENCE_KEEP, EVIDENCE_BYTES));
        let fresh = || -> Vec<Arc<Counters>> {
            (0..cameras)
                .map(|_| Arc::new(Counters::default()))
                .collect()
        };
        Arc::new(FrameBoard {
            recorders: (0..cameras).map(|_| Recorder::new(keep, bytes)).collect(),
            clips: clips.is_some(),
            slots: (0..cameras).map(|_| Mutex::new(None)).collect(),
            busy: (0..cameras).map(|_| AtomicBool::new(false)).collect(),
            counters: fresh(),
            main: fresh(),
            ready: Mutex::new(0),
            cv: Condvar::new(),
        })
    }

    /// The pre-event buffer of camera `i`.
    pub fn recorder(&self, i: usize) -> Option<Arc<super::recorder::Recorder>> {
        self.recorders.get(i).cloned()
    }

    /// Whether clips are on.
    pub fn clips(&self) -> bool {
        self.clips
    }

    /// The main stream's counters of camera `i` (used when it has a `detect_url`).
    pub fn main_counters(&self, i: usize) -> Arc<Counters> {
        Arc::clone(&self.main[i])
    }

    /// Counters of camera `i`.
    pub fn counters(&self, i: usize) -> Arc<Counters> {
        Arc::clone(&self.counters[i])
    }

    /// Number of cameras.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether the board has no cameras.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// A decoded frame of camera `i` arrived (kept or thinned out): the camera is alive.
    pub fn saw_frame(&self, i: usize) {
        if let Some(c) = self.counters.get(i) {
            *c.last_frame.lock().unwrap_or_else(PoisonError::into_inner) = Some(Instant::now());
        }
    }

    /// [`FrameBoard::put`], noting whether the capture time came from the camera's clock.
    pub fn put_from(&self, frame: Frame, stream_clock: bool) {
        if let Some(c) = self.counters.get(frame.camera) {
            c.stream_clock.store(stream_clock, Ordering::Relaxed);
        }
        self.put(frame);
    }

    /// Store the newest frame of its camera, replacing (and counting) an unconsumed one.
    pub fn put(&self, frame: Frame) {
        let i = frame.camera;
        let Some(slot) = self.slots.get(i) else {
            return;
        };
        self.counters[i].received.fetch_add(1, Ordering::Relaxed);
        *self.counters[i]
            .last_frame
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(Instant::now());
        let old = slot
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .replace(frame);
        if old.is_some() {
            self.counters[i].dropped.fetch_add(1, Ordering::Relaxed);
        }
        *self.ready.lock().unwrap_or_else(PoisonError::into_inner) += 1;
        self.cv.notify_all();
    }

    /// Take the next frame in round-robin order starting after camera `*cursor`, skipping
    /// cameras whose previous frame another thread still holds, waiting up to `timeout` for one
    /// to arrive. Advances `cursor` to the camera served.
    pub fn take_next(&self, cursor: &mut usize, timeout: Duration) -> Option<Claimed<'_>> {
        // Read the generation before scanning: a frame put after the scan bumps it, so the
        // wait below cannot miss it.
        let guard = self.ready.lock().unwrap_or_else(PoisonError::into_inner);
        let seen = *guard;
        if let Some(f) = self.scan(cursor) {
            return Some(f);
        }
        let _unused = self
            .cv
            .wait_timeout_while(guard, timeout, |n| *n == seen)
            .unwrap_or_else(PoisonError::into_inner);
        self.scan(cursor)
    }

    fn scan(&self, cursor: &mut usize) -> Option<Claimed<'_>> {
        let n = self.slots.len();
        for k in 1..=n {
            let i = (*cursor + k) % n;
            // Claim the camera first: only the claim's holder takes its frames.
            if self.busy[i]
                .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
                .is_err()
            {
                continue;
            }
            let taken = self.slots[i]
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take();
            match taken {
                Some(frame) => {
                    *cursor = i;
                    self.counters[i].analysed.fetch_add(1, Ordering::Relaxed);
                    return Some(Claimed { frame, board: self });
                }
                None => self.busy[i].store(false, Ordering::Release),
            }
        }
        None
    }

    /// The claim on camera `i` ended: its waiting frame (if any) is free for any thread.
    fn release(&self, i: usize) {
        self.busy[i].store(false, Ordering::Release);
        *self.ready.lock().unwrap_or_else(PoisonError::into_inner) += 1;
        self.cv.notify_all();
    }

    /// Wake every waiting detector (used at shutdown).
    pub fn wake_all(&self) {
        *self.ready.lock().unwrap_or_else(PoisonError::into_inner) += 1;
        self.cv.notify_all();
    }
}

/// A frame taken for analysis. While it lives, no other thread is handed a frame of its camera.
#[derive(Debug)]
pub struct Claimed<'a> {
    /// The frame.
    pub frame: Frame,
    board: &'a FrameBoard,
}

impl Drop for Claimed<'_> {
    fn drop(&mut self) {
        self.board.release(self.frame.camera);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(camera: usize, tag: u8) -> Frame {
        Frame {
            camera,
            width: 1,
            height: 1,
            data: vec![tag, 0, 0].into(),
            format: Format::Rgb,
            captured: SystemTime::UNIX_EPOCH,
        }
    }

    #[test]
    fn newest_frame_wins_and_replacements_are_counted() {
        let b = FrameBoard::new(1);
        b.put(frame(0, 1));
        b.put(frame(0, 2));
        let mut cur = 0;
        let f = b.take_next(&mut cur, Duration::ZERO).expect("frame");
        assert_eq!(f.frame.data[0], 2);
        drop(f);
        let c = b.counters(0);
        assert_eq!(c.received.load(Ordering::Relaxed), 2);
        assert_eq!(c.dropped.load(Ordering::Relaxed), 1);
        assert_eq!(c.analysed.load(Ordering::Relaxed), 1);
        assert!(b.take_next(&mut cur, Duration::from_millis(1)).is_none());
    }

    #[test]
    fn cameras_are_served_in_turn() {
        let b = FrameBoard::new(3);
        let mut cur = 2;
        for round in 0..3u8 {
            for cam in 0..3 {
                b.put(frame(cam, round));
            }
            let order: Vec<usize> = (0..3)
                .map(|_| {
                    let c = b.take_next(&mut cur, Duration::ZERO).expect("frame");
                    c.frame.camera
                })
                .collect();
            assert_eq!(order, vec![0, 1, 2]);
        }
    }

    #[test]
    fn a_waiting_taker_wakes_on_put() {
        let b = FrameBoard::new(2);
        let b2 = Arc::clone(&b);
        let t = std::thread::spawn(move || {
            let mut cur = 0;
            b2.take_next(&mut cur, Duration::from_secs(10))
                .map(|f| f.frame.camera)
        });
        std::thread::sleep(Duration::from_millis(50));
        b.put(frame(1, 0));
        assert_eq!(t.join().expect("join"), Some(1));
    }

    #[test]
    fn a_claimed_camera_is_not_served_twice_at_once() {
        let b = FrameBoard::new(2);
        let (mut cur_a, mut cur_b) = (1, 1);
        b.put(frame(0, 1));
        let a = b.take_next(&mut cur_a, Duration::ZERO).expect("frame");
        assert_eq!((a.frame.camera, a.frame.data[0]), (0, 1));
        // Camera 0's next frame waits while the first is held; camera 1's is served.
        b.put(frame(0, 2));
        b.put(frame(1, 7));
        let other = b.take_next(&mut cur_b, Duration::ZERO).expect("frame");
        assert_eq!(other.frame.camera, 1);
        assert!(b.take_next(&mut cur_b, Duration::from_millis(1)).is_none());
        // A thread waiting for work wakes when the claim ends, and gets the waiting frame.
        std::thread::scope(|s| {
            let waiter = s.spawn(|| {
                let mut cur = 1;
                b.take_next(&mut cur, Duration::from_secs(10))
                    .map(|c| (c.frame.camera, c.frame.data[0]))
            });
            std::thread::sleep(Duration::from_millis(50));
            drop(a);
            assert_eq!(waiter.join().expect("join"), Some((0, 2)));
        });
        drop(other);
    }

    #[test]
    fn mapped_frames_read_like_owned_ones_and_copy_out() {
        gstreamer::init().expect("GStreamer");
        let buffer = gstreamer::Buffer::from_mut_slice(vec![1u8, 2, 3, 4, 5, 6, 0]);
        let map = buffer.into_mapped_buffer_readable().expect("map");
        let f = Frame {
            camera: 2,
            width: 2,
            height: 1,
            data: FrameData::Mapped { map, len: 6 },
            format: Format::Rgb,
            captured: SystemTime::UNIX_EPOCH,
        };
        // Only the picture's bytes, not the buffer's padding.
        assert_eq!(&*f.data, &[1, 2, 3, 4, 5, 6]);
        assert!(matches!(f.clone().data, FrameData::Owned(ref v) if v[..] == [1, 2, 3, 4, 5, 6]));
        let owned = f.into_owned();
        assert_eq!(owned.camera, 2);
        assert!(matches!(owned.data, FrameData::Owned(ref v) if v[..] == [1, 2, 3, 4, 5, 6]));
    }
}
