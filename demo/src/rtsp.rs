//! A real RTSP server (GStreamer's `gst-rtsp-server`) that serves a video file as an endless
//! live camera stream on loopback. Used by `vigil-demo` and by the integration tests.
//!
//! The file's H.264/H.265 access units are read once into memory; each served media gets a
//! feeder thread that pushes them into an `appsrc` at the file's frame rate, looping from the
//! first (key) frame, timestamped on arrival like a live camera. Because the stream is built
//! from access units, tests can later serve repeated or corrupted frames from the same place.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use gstreamer as gst;
use gstreamer::glib;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use gstreamer_rtsp_server as rtsp;
use gstreamer_rtsp_server::prelude::*;

/// Why a clip cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The file cannot be read as H.264/H.265.
    #[error("cannot read video {}: {reason}", path.display())]
    Clip {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The server cannot start.
    #[error("cannot start the RTSP server: {0}")]
    Server(String),
}

/// Encoded access units of a clip, with their caps and frame duration.
#[derive(Debug, Clone)]
pub struct Clip {
    /// `video/x-h264` or `video/x-h265` byte-stream caps, or `video/mpeg` (MPEG-4 Part 2).
    pub caps: gst::Caps,
    /// Access units in decode order (SPS/PPS repeated before key frames).
    pub units: Vec<(Vec<u8>, bool)>,
    /// How long after its decode time each unit is presented (non-zero only for streams with
    /// B-frames, whose units are served with these presentation times, like a camera's).
    pub pts_offsets: Vec<Duration>,
    /// Time between frames.
    pub frame_duration: Duration,
    /// How far one pass of the clip moves its presentation times: its frames' time, or more
    /// when the file skips frames (the feeder pauses that long at the loop point, so a looped
    /// clip never presents one time twice).
    pub period: Duration,
}

impl Clip {
    /// Read every access unit of a video file (MP4/MKV/AVI/… with H.264, H.265 or MPEG-4). Units
    /// are served at the file's frame rate, timestamped on arrival; with B-frames, each keeps
    /// its presentation offset from the file.
    pub fn load(path: &Path) -> Result<Clip, ServeError> {
        let err = |reason: String| ServeError::Clip {
            path: path.to_path_buf(),
            reason,
        };
        gst::init().map_err(|e| err(e.to_string()))?;
        if !path.is_file() {
            return Err(err("no such file".into()));
        }
        // parsebin demuxes whatever container it is; the codec's parser then converts to
        // byte-stream access units. Try H.264, then H.265, then MPEG-4 Part 2.
        let mut last = String::new();
        for codec in CODECS {
            match read_units(path, codec.parse) {
                Ok((caps, units, offsets, duration)) => {
                    return Clip::finish(caps, units, offsets, duration).map_err(err);
                }
                Err(e) => last = e,
            }
        }
        Err(err(format!("not H.264, H.265 or MPEG-4 video ({last})")))
    }

    fn finish(
        caps: gst::Caps,
        mut units: Vec<(Vec<u8>, bool)>,
        mut pts: Vec<Option<Duration>>,
        duration: Option<gst::ClockTime>,
    ) -> Result<Clip, String> {
        let first_key = units
            .iter()
            .position(|(_, k)| *k)
            .ok_or_else(|| "no key frame".to_string())?;
        units.drain(..first_key);
        pts.drain(..first_key.min(pts.len()));
        pts.resize(units.len(), None);
        let frame_duration = duration
            .map(|d| Duration::from_nanos(d.nseconds()))
            .filter(|d| !d.is_zero())
            .unwrap_or(Duration::from_millis(100));
        let (pts_offsets, period) = presentation(&pts, frame_duration);
        Ok(Clip {
            caps,
            units,
            pts_offsets,
            frame_duration,
            period,
        })
    }

    /// Whether units are presented out of decode order (B-frames).
    pub fn reorders(&self) -> bool {
        self.pts_offsets.iter().any(|d| !d.is_zero())
    }

    fn codec(&self) -> Option<&'static Codec> {
        let name = self.caps.structure(0)?.name().to_string();
        CODECS.iter().find(|c| c.name == name)
    }
}

/// How long after its decode time each unit is presented, when the units are served a steady
/// `frame` apart in decode order, and how far one pass of the clip moves the presentation times
/// ([`Clip::period`]). Offsets come from the file's presentation times, relative to the clip's
/// first, shifted so that no unit is presented before it is decoded; all zero when the file
/// presents its units in decode order (no B-frames) or lacks times. A looped clip's
/// presentation times then go on without a repeat at the loop point, like a camera's.
fn presentation(pts: &[Option<Duration>], frame: Duration) -> (Vec<Duration>, Duration) {
    let plain = (
        vec![Duration::ZERO; pts.len()],
        frame * u32::try_from(pts.len()).unwrap_or(u32::MAX),
    );
    let Some(times) = pts.iter().copied().collect::<Option<Vec<Duration>>>() else {
        return plain;
    };
    let (Some(&first), Some(&last)) = (times.iter().min(), times.iter().max()) else {
        return plain;
    };
    if times.windows(2).all(|w| w[0] < w[1]) {
        return plain;
    }
    let nanos = |d: Duration| i128::try_from(d.as_nanos()).unwrap_or(i128::MAX);
    // Presentation relative to the clip's start, less the unit's decode time.
    let ahead: Vec<i128> = times
        .iter()
        .enumerate()
        .map(|(i, &p)| nanos(p - first) - nanos(frame) * i as i128)
        .collect();
    let shift = ahead.iter().map(|a| -a).max().unwrap_or(0).max(0);
    let offsets = ahead
        .iter()
        .map(|a| Duration::from_nanos(u64::try_from(a + shift).unwrap_or(0)))
        .collect();
    (offsets, plain.1.max(last - first + frame))
}

/// A codec the server can serve: its caps name, the parser chain that reads it from a file,
/// and the parser and RTP payloader that serve it.
#[derive(Debug)]
struct Codec {
    name: &'static str,
    parse: &'static str,
    serve: (&'static str, &'static str),
}

const CODECS: &[Codec] = &[
    Codec {
        name: "video/x-h264",
        parse: "h264parse config-interval=-1 ! capsfilter caps=video/x-h264,stream-format=byte-stream,alignment=au",
        serve: ("h264parse", "rtph264pay"),
    },
    Codec {
        name: "video/x-h265",
        parse: "h265parse config-interval=-1 ! capsfilter caps=video/x-h265,stream-format=byte-stream,alignment=au",
        serve: ("h265parse", "rtph265pay"),
    },
    Codec {
        name: "video/mpeg",
        parse: "mpeg4videoparse config-interval=-1 ! capsfilter caps=video/mpeg,mpegversion=4,systemstream=false",
        serve: ("mpeg4videoparse", "rtpmp4vpay"),
    },
];

type Units = (
    gst::Caps,
    Vec<(Vec<u8>, bool)>,
    Vec<Option<Duration>>,
    Option<gst::ClockTime>,
);

/// Read all access units of `path` through the parser chain `parse`.
fn read_units(path: &Path, parse: &str) -> Result<Units, String> {
    let mut units = Vec::new();
    let mut offsets = Vec::new();
    let mut caps = None;
    let mut duration = None;
    vigil::ingest::file::pull_samples(
        &format!("filesrc name=src ! parsebin ! {parse} ! appsink name=sink sync=false"),
        path,
        |sample| {
            if caps.is_none() {
                caps = sample.caps().map(|c| c.to_owned());
            }
            if let Some(buf) = sample.buffer() {
                if duration.is_none() {
                    duration = buf.duration();
                }
                let key = !buf.flags().contains(gst::BufferFlags::DELTA_UNIT);
                if let Ok(map) = buf.map_readable() {
                    units.push((map.as_slice().to_vec(), key));
                    offsets.push(buf.pts().map(|p| Duration::from_nanos(p.nseconds())));
                }
            }
            true
        },
    )?;
    let caps = caps.ok_or("no video stream")?;
    Ok((caps, units, offsets, duration))
}

/// A running RTSP server on 127.0.0.1 with a free port.
pub struct RtspServer {
    port: u16,
    ctx: glib::MainContext,
    main_loop: glib::MainLoop,
    thread: Option<JoinHandle<()>>,
    source: Option<glib::SourceId>,
    dropped: Arc<AtomicU64>,
}

impl std::fmt::Debug for RtspServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RtspServer")
            .field("port", &self.port)
            .finish_non_exhaustive()
    }
}

/// Test knobs beyond clips.
#[derive(Debug, Default, Clone, Copy)]
pub struct Extras<'a> {
    /// `(mount, launch line)`: media built from a gst-rtsp-server launch line, e.g. an
    /// audio-only stream.
    pub launches: &'a [(&'a str, &'a str)],
    /// Require this user and password (basic auth) on every mount.
    pub basic_auth: Option<(&'a str, &'a str)>,
    /// `(mount, n)`: lose every `n`th RTP packet of that clip's stream before it is sent, as a
    /// lossy network would ([`RtspServer::packets_dropped`] counts them).
    pub drop_every: Option<(&'a str, u64)>,
}

impl RtspServer {
    /// Serve each `(mount, clip)` at `rtsp://127.0.0.1:{port}/{mount}` on a free port.
    pub fn start(mounts: &[(&str, Arc<Clip>)]) -> Result<RtspServer, ServeError> {
        RtspServer::start_on(0, mounts)
    }

    /// [`RtspServer::start`] on a given port (0: a free one).
    pub fn start_on(port: u16, mounts: &[(&str, Arc<Clip>)]) -> Result<RtspServer, ServeError> {
        RtspServer::start_with(port, mounts, &Extras::default())
    }

    /// [`RtspServer::start_on`] with [`Extras`]: mounts from launch lines, basic auth.
    pub fn start_with(
        port: u16,
        mounts: &[(&str, Arc<Clip>)],
        extras: &Extras<'_>,
    ) -> Result<RtspServer, ServeError> {
        gst::init().map_err(|e| ServeError::Server(e.to_string()))?;
        let server = rtsp::RTSPServer::new();
        server.set_address("127.0.0.1");
        server.set_service(&port.to_string());
        let points = server
            .mount_points()
            .ok_or_else(|| ServeError::Server("no mount points".into()))?;
        let permit = |factory: &rtsp::RTSPMediaFactory| {
            if extras.basic_auth.is_some() {
                factory.add_role_from_structure(
                    &gst::Structure::builder("user")
                        .field(rtsp::RTSP_PERM_MEDIA_FACTORY_ACCESS.as_str(), true)
                        .field(rtsp::RTSP_PERM_MEDIA_FACTORY_CONSTRUCT.as_str(), true)
                        .build(),
                );
            }
        };
        if let Some((user, pass)) = extras.basic_auth {
            let auth = rtsp::RTSPAuth::new();
            let token = rtsp::RTSPToken::builder()
                .field(rtsp::RTSP_TOKEN_MEDIA_FACTORY_ROLE.as_str(), "user")
                .build();
            let basic = rtsp::RTSPAuth::make_basic(user, pass);
            auth.add_basic(basic.as_str(), &token);
            server.set_auth(Some(&auth));
        }
        for (mount, launch) in extras.launches {
            let factory = rtsp::RTSPMediaFactory::new();
            factory.set_launch(launch);
            factory.set_shared(true);
            permit(&factory);
            points.add_factory(&format!("/{mount}"), factory);
        }
        let dropped = Arc::new(AtomicU64::new(0));
        for (mount, clip) in mounts {
            let factory = rtsp::RTSPMediaFactory::new();
            permit(&factory);
            let (parse, pay) = clip
                .codec()
                .map_or(("h264parse", "rtph264pay"), |c| c.serve);
            factory.set_launch(&format!(
                "( appsrc name=src is-live=true format=time do-timestamp=true ! {parse} ! {pay} name=pay0 pt=96 config-interval=-1 )"
            ));
            factory.set_shared(true);
            let clip = Arc::clone(clip);
            let lose = extras
                .drop_every
                .filter(|(m, n)| m == mount && *n > 0)
                .map(|(_, n)| (n, Arc::clone(&dropped)));
            factory.connect_media_configure(move |_, media| {
                let bin = media.element().downcast::<gst::Bin>().ok();
                if let (Some((n, dropped)), Some(pay)) = (
                    &lose,
                    bin.as_ref().and_then(|b| b.by_name_recurse_up("pay0")),
                ) {
                    lose_packets(&pay, *n, dropped);
                }
                let Some(src) = bin
                    .and_then(|b| b.by_name_recurse_up("src"))
                    .and_then(|e| e.downcast::<gst_app::AppSrc>().ok())
                else {
                    return;
                };
                src.set_caps(Some(&clip.caps));
                // A stream with B-frames gets its presentation times set by the feeder.
                src.set_property("do-timestamp", !clip.reorders());
                let clip = Arc::clone(&clip);
                let _ = std::thread::Builder::new()
                    .name("rtsp-feeder".into())
                    .spawn(move || feed(&src, &clip));
            });
            points.add_factory(&format!("/{mount}"), factory);
        }
        let ctx = glib::MainContext::new();
        let source = server
            .attach(Some(&ctx))
            .map_err(|e| ServeError::Server(e.to_string()))?;
        let port = u16::try_from(server.bound_port())
            .map_err(|_| ServeError::Server("no bound port".into()))?;
        let main_loop = glib::MainLoop::new(Some(&ctx), false);
        let ml = main_loop.clone();
        let loop_ctx = ctx.clone();
        let thread = std::thread::Builder::new()
            .name("rtsp-server".into())
            .spawn(move || {
                let _server = server; // kept alive while the loop runs
                let _ = loop_ctx.with_thread_default(|| ml.run());
            })
            .map_err(|e| ServeError::Server(e.to_string()))?;
        Ok(RtspServer {
            port,
            ctx,
            main_loop,
            thread: Some(thread),
            source: Some(source),
            dropped,
        })
    }

    /// RTP packets lost on purpose so far ([`Extras::drop_every`]).
    pub fn packets_dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// The TCP port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// URL of a mount.
    pub fn url(&self, mount: &str) -> String {
        format!("rtsp://127.0.0.1:{}/{mount}", self.port)
    }
}

impl Drop for RtspServer {
    fn drop(&mut self) {
        // The source lives on our own context, so it is destroyed there (SourceId::remove
        // looks in the default context and would panic).
        if let Some(source) = self
            .source
            .take()
            .and_then(|id| self.ctx.find_source_by_id(&id))
        {
            source.destroy();
        }
        self.main_loop.quit();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Push the clip's units into `src` at its frame rate, looping, until the media goes away.
/// Units are timestamped on arrival (`do-timestamp`), except in a stream with B-frames: there
/// the decode time is the running time and each unit is presented its offset later.
fn feed(src: &gst_app::AppSrc, clip: &Clip) {
    let reorders = clip.reorders();
    if !wait_playing(src) {
        return;
    }
    let base = src
        .current_running_time()
        .map_or(Duration::ZERO, |t| Duration::from_nanos(t.nseconds()));
    if clip.units.is_empty() {
        return;
    }
    let mut next = Instant::now();
    let units = clip.units.iter().zip(clip.pts_offsets.iter());
    for lap in 0u32.. {
        let lap_start = base + clip.period * lap;
        for (i, ((data, key), offset)) in units.clone().enumerate() {
            let dts = lap_start + clip.frame_duration * u32::try_from(i).unwrap_or(u32::MAX);
            if !push_unit(src, data, *key, reorders.then_some((dts, *offset))) {
                return; // flushing or shut down: the media is gone
            }
            pace(&mut next, clip.frame_duration);
        }
        // A file that skips frames: its last presentation time is further than its frames.
        let lap_frames = u32::try_from(clip.units.len()).unwrap_or(u32::MAX);
        if reorders && let Some(pause) = clip.period.checked_sub(clip.frame_duration * lap_frames) {
            pace(&mut next, pause);
        }
    }
}

/// Wait (a minute at most) until `src` plays. A unit pushed earlier is stamped from a clock
/// that has no base time yet, i.e. hours ahead of the stream, and rtsp-server's RTP sink,
/// which syncs to the clock, would hold it (and every unit behind it) for those hours.
fn wait_playing(src: &gst_app::AppSrc) -> bool {
    let give_up = Instant::now() + Duration::from_secs(60);
    while src.current_state() != gst::State::Playing || src.current_running_time().is_none() {
        if Instant::now() > give_up {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    true
}

/// Sleep until `next` moved on by `step` (or not at all when late).
fn pace(next: &mut Instant, step: Duration) {
    *next += step;
    let now = Instant::now();
    if *next > now {
        std::thread::sleep(*next - now);
    } else {
        *next = now;
    }
}

/// Push one unit, timestamped `(decode time, presentation offset)` when given; false when the
/// media is gone.
fn push_unit(
    src: &gst_app::AppSrc,
    data: &[u8],
    key: bool,
    times: Option<(Duration, Duration)>,
) -> bool {
    let mut buf = gst::Buffer::from_mut_slice(data.to_vec());
    if let Some(b) = buf.get_mut() {
        if !key {
            b.set_flags(gst::BufferFlags::DELTA_UNIT);
        }
        if let Some((dts, offset)) = times {
            // Decode times a steady frame duration apart, like an encoder's.
            let ns = |d: Duration| gst::ClockTime::from_nseconds(d.as_nanos() as u64);
            b.set_dts(ns(dts));
            b.set_pts(ns(dts + offset));
        }
    }
    src.push_buffer(buf).is_ok()
}

/// Drop every `n`th RTP packet leaving the payloader `pay`, counting each in `dropped`.
fn lose_packets(pay: &gst::Element, n: u64, dropped: &Arc<AtomicU64>) {
    let Some(pad) = pay.static_pad("src") else {
        return;
    };
    let (dropped, sent) = (Arc::clone(dropped), AtomicU64::new(0));
    let lose = move || {
        let k = sent.fetch_add(1, Ordering::Relaxed) + 1;
        let lost = k % n == 0;
        if lost {
            dropped.fetch_add(1, Ordering::Relaxed);
        }
        lost
    };
    let types = gst::PadProbeType::BUFFER | gst::PadProbeType::BUFFER_LIST;
    pad.add_probe(types, move |_, info| match &mut info.data {
        Some(gst::PadProbeData::Buffer(_)) if lose() => gst::PadProbeReturn::Drop,
        Some(gst::PadProbeData::BufferList(list)) => {
            list.make_mut().foreach_mut(|b, _| {
                std::ops::ControlFlow::Continue(if lose() { None } else { Some(b) })
            });
            gst::PadProbeReturn::Ok
        }
        _ => gst::PadProbeReturn::Ok,
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_looped_b_frame_clip_presents_each_time_once() {
        let ms = |v: u64| Some(Duration::from_millis(v * 100));
        // Decode order I P B B, presented 0 3 1 2 (an MP4's times may start anywhere).
        let pts = [ms(7), ms(10), ms(8), ms(9)];
        let frame = Duration::from_millis(100);
        let (offsets, period) = presentation(&pts, frame);
        assert_eq!(period, frame * 4);
        let mut shown: Vec<Duration> = (0..12)
            .map(|k: u32| frame * k + offsets[k as usize % 4])
            .collect();
        assert!(
            (0..12).all(|k: u32| shown[k as usize] >= frame * k),
            "{shown:?}"
        );
        shown.sort();
        shown.dedup();
        assert_eq!(shown.len(), 12, "three loops, twelve distinct times");
        assert_eq!(shown[11] - shown[0], frame * 11, "no gap either");
        // A file without a frame at 4: each pass moves the times by six frames, not five.
        let (offsets, period) = presentation(&[ms(0), ms(3), ms(1), ms(2), ms(5)], frame);
        assert_eq!(period, frame * 6);
        let shown: Vec<Duration> = (0..10u32)
            .map(|k| period * (k / 5) + frame * (k % 5) + offsets[k as usize % 5])
            .collect();
        let mut distinct = shown.clone();
        distinct.sort();
        distinct.dedup();
        assert_eq!(distinct.len(), 10, "{shown:?}");
        // In decode order, or without times: nothing to offset.
        let (plain, period) = presentation(&[ms(0), ms(1), ms(2)], frame);
        assert!(plain.iter().all(Duration::is_zero));
        assert_eq!(period, frame * 3);
        assert!(
            presentation(&[ms(1), None, ms(0)], frame)
                .0
                .iter()
                .all(Duration::is_zero)
        );
    }
}
