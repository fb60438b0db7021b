//! Probing one RTSP URL the way a camera pipeline would pull it: connect, find the video
//! track, decode frames for a moment, and report codec, profile, resolution, measured frame
//! rate and time to first frame — or say in plain words why not (`vigil probe`, `doctor`).

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;

use super::slot::Frame;
use crate::config::Transport;
use crate::config::url::redact;

/// What a probe found.
#[derive(Debug, Clone)]
pub struct Report {
    /// RTP encoding name (`H264`, `H265`, `MP4V-ES`, …).
    pub codec: String,
    /// Profile, when the stream says (`high`, `main`, …).
    pub profile: Option<String>,
    /// Level, when the stream says.
    pub level: Option<String>,
    /// Decoded width.
    pub width: u32,
    /// Decoded height.
    pub height: u32,
    /// Frames per second measured from the timestamps of the frames received.
    pub fps: Option<f64>,
    /// Transport asked for (and so used: only that one is allowed).
    pub transport: Transport,
    /// From the start of the connection to the first decoded frame.
    pub first_frame: Duration,
    /// The last decoded frame.
    pub frame: Frame,
    /// Camera clock minus this box's clock, seconds, when the stream carries capture times
    /// (RTCP sender reports).
    pub clock_offset_s: Option<f64>,
}

/// Why a probe failed, in words an installer can act on.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ProbeError {
    /// 401.
    #[error(
        "the camera refused the credentials (401 Unauthorized): check the user and password in the URL ({0})"
    )]
    Unauthorized(String),
    /// 404.
    #[error("the camera has no stream at this path (404 Not Found): check the path of {0}")]
    NotFound(String),
    /// 401 without credentials in the URL.
    #[error(
        "the camera requires credentials (401 Unauthorized): give them in the URL, rtsp://USER:PASSWORD@host/…"
    )]
    NeedsCredentials,
    /// No TCP connection.
    #[error("cannot connect to {url}: {detail}")]
    Unreachable {
        /// Redacted URL.
        url: String,
        /// What the network said.
        detail: String,
    },
    /// Only audio (or metadata) tracks.
    #[error("the stream has no video track (it offers: {0})")]
    NoVideo(String),
    /// No decoder for the video.
    #[error(
        "no decoder for this stream's video ({0}): install gstreamer1.0-libav (H.264, H.265, MPEG-4), or set the camera to a codec this box decodes"
    )]
    Unsupported(String),
    /// Nothing within the time limit.
    #[error("no frame within {0} s: {1}")]
    Timeout(u64, String),
    /// Anything else GStreamer reported.
    #[error("{0}")]
    Other(String),
}

#[derive(Debug, Default)]
struct Seen {
    tracks: Vec<String>,
    codec: Option<String>,
    profile: Option<String>,
    level: Option<String>,
    unsupported: Option<String>,
    no_more_pads: bool,
    video: bool,
}

impl Seen {
    /// The stream has been described in full and has no video track.
    fn no_video(&self) -> Option<ProbeError> {
        (self.no_more_pads && !self.video).then(|| ProbeError::NoVideo(self.tracks.join(", ")))
    }
}

fn make(name: &str) -> Result<gst::Element, ProbeError> {
    gst::ElementFactory::make(name)
        .build()
        .map_err(|_| ProbeError::Other(format!("GStreamer element {name} is not installed")))
}

/// Probe `url` over `transport`, watching frames for up to `watch` after the first one (to
/// measure the frame rate); give up after `timeout` without a frame.
pub fn probe(
    url: &str,
    transport: Transport,
    timeout: Duration,
    watch: Duration,
) -> Result<Report, ProbeError> {
    gst::init().map_err(|e| ProbeError::Other(e.to_string()))?;
    super::decode_errors::install();
    let shown = redact(url);
    let pipeline = gst::Pipeline::with_name("probe");
    let src = super::pipeline::rtsp_source(url, transport).map_err(ProbeError::Other)?;
    let decode = make("decodebin")?;
    let convert = make("videoconvert")?;
    let sink = super::pipeline::frame_sink(2);
    pipeline
        .add_many([&src, &decode, &convert, sink.upcast_ref()])
        .map_err(|e| ProbeError::Other(e.to_string()))?;
    convert
        .link(&sink)
        .map_err(|e| ProbeError::Other(e.to_string()))?;
    let seen = Arc::new(Mutex::new(Seen::default()));
    {
        let seen_pads = Arc::clone(&seen);
        let decode_weak = decode.downgrade();
        src.connect_pad_added(move |_, pad| {
            let Some(s) = pad
                .current_caps()
                .and_then(|c| c.structure(0).map(|s| s.to_owned()))
            else {
                return;
            };
            let media = s.get::<String>("media").unwrap_or_default();
            let encoding = s.get::<String>("encoding-name").unwrap_or_default();
            let mut g = seen_pads.lock().unwrap_or_else(PoisonError::into_inner);
            g.tracks.push(format!("{media} {encoding}"));
            if media != "video" || g.video {
                return;
            }
            g.video = true;
            g.codec = Some(encoding);
            drop(g);
            if let Some(sinkpad) = decode_weak.upgrade().and_then(|d| d.static_pad("sink")) {
                let _ = pad.link(&sinkpad);
            }
        });
        let seen = Arc::clone(&seen);
        src.connect_no_more_pads(move |_| {
            seen.lock()
                .unwrap_or_else(PoisonError::into_inner)
                .no_more_pads = true;
        });
    }
    if let Some(bin) = decode.downcast_ref::<gst::Bin>() {
        let seen = Arc::clone(&seen);
        bin.connect_deep_element_added(move |_, _, element| {
            let parser = element
                .factory()
                .is_some_and(|f| f.metadata("klass").is_some_and(|k| k.contains("Parser")));
            let Some(pad) = element.static_pad("src").filter(|_| parser) else {
                return;
            };
            let seen = Arc::clone(&seen);
            pad.add_probe(gst::PadProbeType::EVENT_DOWNSTREAM, move |_, info| {
                if let Some(gst::PadProbeData::Event(ev)) = &info.data
                    && let gst::EventView::Caps(c) = ev.view()
                    && let Some(s) = c.caps().structure(0)
                {
                    let mut g = seen.lock().unwrap_or_else(PoisonError::into_inner);
                    g.profile = s.get::<String>("profile").ok().or(g.profile.take());
                    g.level = s.get::<String>("level").ok().or(g.level.take());
                }
                gst::PadProbeReturn::Ok
            });
        });
    }
    {
        let seen = Arc::clone(&seen);
        decode.connect("unknown-type", false, move |args| {
            let caps = args.get(2).and_then(|v| v.get::<gst::Caps>().ok());
            let name = caps
                .and_then(|c| c.structure(0).map(|s| s.name().to_string()))
                .unwrap_or_else(|| "unknown".into());
            seen.lock()
                .unwrap_or_else(PoisonError::into_inner)
                .unsupported = Some(name);
            None
        });
    }
    super::pipeline::link_decoded_video(&decode, &convert, |_| {});

    let started = Instant::now();
    let result = run(&pipeline, &sink, &seen, &shown, started, timeout, watch);
    let _ = pipeline.set_state(gst::State::Null);
    let (frame, first_frame, fps, clock_offset_s) = result?;
    let g = seen.lock().unwrap_or_else(PoisonError::into_inner);
    Ok(Report {
        codec: g.codec.clone().unwrap_or_else(|| "?".into()),
        profile: g.profile.clone(),
        level: g.level.clone(),
        width: frame.width,
        height: frame.height,
        fps,
        transport,
        first_frame,
        frame,
        clock_offset_s,
    })
}

type Pulled = (Frame, Duration, Option<f64>, Option<f64>);

fn run(
    pipeline: &gst::Pipeline,
    sink: &gst_app::AppSink,
    seen: &Mutex<Seen>,
    shown: &str,
    started: Instant,
    timeout: Duration,
    watch: Duration,
) -> Result<Pulled, ProbeError> {
    let bus = pipeline
        .bus()
        .ok_or_else(|| ProbeError::Other("pipeline has no bus".into()))?;
    pipeline
        .set_state(gst::State::Playing)
        .map_err(|e| ProbeError::Other(format!("cannot start: {e}")))?;
    let mut first: Option<(Duration, gst::ClockTime)> = None;
    let mut last: Option<(Frame, gst::ClockTime)> = None;
    let mut frames = 0u32;
    let mut offset = None;
    loop {
        let now = started.elapsed();
        if let Some((at, _)) = first
            && now >= at + watch
        {
            break;
        }
        if first.is_none() && now >= timeout {
            let g = seen.lock().unwrap_or_else(PoisonError::into_inner);
            let why = if g.tracks.is_empty() {
                "the camera answered but sent no stream description".to_string()
            } else {
                format!("tracks {}", g.tracks.join(", "))
            };
            return Err(ProbeError::Timeout(timeout.as_secs(), why));
        }
        while let Some(msg) = bus.pop() {
            if let Some(e) = classify(&msg, seen, shown) {
                // A stream without video fails as "not-linked" once its tracks are known (its
                // audio pad goes nowhere); that race with the check below must not decide
                // which message the installer gets.
                let g = seen.lock().unwrap_or_else(PoisonError::into_inner);
                return Err(g.no_video().unwrap_or(e));
            }
        }
        {
            let g = seen.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(u) = &g.unsupported {
                return Err(ProbeError::Unsupported(format!(
                    "{} over RTP, decoded as {u}",
                    g.codec.clone().unwrap_or_default()
                )));
            }
            if let Some(e) = g.no_video() {
                return Err(e);
            }
        }
        let Some(sample) = sink.try_pull_sample(gst::ClockTime::from_mseconds(100)) else {
            continue;
        };
        let pts = sample
            .buffer()
            .and_then(|b| b.pts())
            .unwrap_or(gst::ClockTime::ZERO);
        if let Some(stream) = sample.buffer().and_then(super::file::stream_time) {
            let now = std::time::SystemTime::now();
            offset = Some(match stream.duration_since(now) {
                Ok(ahead) => ahead.as_secs_f64(),
                Err(behind) => -behind.duration().as_secs_f64(),
            });
        }
        if let Some(frame) = super::file::sample_to_frame(&sample) {
            frames += 1;
            if first.is_none() {
                first = Some((started.elapsed(), pts));
            }
            last = Some((frame, pts));
        }
    }
    let Some(((frame, last_pts), (at, first_pts))) = last.zip(first) else {
        return Err(ProbeError::Other("no frame".into()));
    };
    let span = last_pts.saturating_sub(first_pts).seconds_f64();
    let fps = (frames > 1 && span > 0.0).then(|| f64::from(frames - 1) / span);
    Ok((frame, at, fps, offset))
}

/// Map a bus error to what it means for an installer.
fn classify(msg: &gst::Message, seen: &Mutex<Seen>, shown: &str) -> Option<ProbeError> {
    let gst::MessageView::Error(e) = msg.view() else {
        return None;
    };
    let err = e.error();
    let debug = e.debug().map(|d| d.to_string()).unwrap_or_default();
    let text = format!("{} {}", err.message(), debug).to_lowercase();
    let detail = debug
        .lines()
        .last()
        .map(|l| redact_all(l.trim()))
        .unwrap_or_else(|| err.message().to_string());
    if err.matches(gst::ResourceError::NotAuthorized) || text.contains("unauthorized") {
        if !shown.contains("***@") {
            return Some(ProbeError::NeedsCredentials);
        }
        return Some(ProbeError::Unauthorized(shown.to_string()));
    }
    if err.matches(gst::ResourceError::NotFound) || text.contains("not found") {
        return Some(ProbeError::NotFound(shown.to_string()));
    }
    if err.matches(gst::CoreError::MissingPlugin) || err.matches(gst::StreamError::CodecNotFound) {
        let g = seen.lock().unwrap_or_else(PoisonError::into_inner);
        let what = g
            .unsupported
            .clone()
            .or(g.codec.clone())
            .unwrap_or_default();
        return Some(ProbeError::Unsupported(what));
    }
    if err.matches(gst::ResourceError::OpenReadWrite)
        || err.matches(gst::ResourceError::OpenRead)
        || err.matches(gst::ResourceError::Read)
        || text.contains("could not connect")
        || text.contains("connection refused")
        || text.contains("resolve")
    {
        // GStreamer says little ("Failed to connect"); ask the network directly.
        let detail = tcp_diagnosis(shown).unwrap_or(detail);
        return Some(ProbeError::Unreachable {
            url: shown.to_string(),
            detail,
        });
    }
    Some(ProbeError::Other(redact_all(&format!(
        "{} ({detail})",
        err.message()
    ))))
}

/// `host:port` of an RTSP URL (port 554 unless given; IPv6 literals in brackets).
pub fn host_port(url: &str) -> Option<(String, u16)> {
    if !(url.starts_with("rtsp://") || url.starts_with("rtsps://")) {
        return None;
    }
    let hostport = crate::config::url::host_and_path(url)
        .split(['/', '?', '#'])
        .next()?;
    let default = if url.starts_with("rtsps://") {
        322
    } else {
        554
    };
    if let Some(v6) = hostport.strip_prefix('[') {
        let (host, after) = v6.split_once(']')?;
        let port = after
            .strip_prefix(':')
            .map_or(Some(default), |p| p.parse().ok())?;
        return Some((host.to_string(), port));
    }
    match hostport.rsplit_once(':') {
        Some((h, p)) => Some((h.to_string(), p.parse().ok()?)),
        None => Some((hostport.to_string(), default)),
    }
}

/// Why a TCP connection to the URL's host fails, in words: the name does not resolve, the
/// connection is refused, it times out, no route. None if it connects.
pub fn tcp_diagnosis(url: &str) -> Option<String> {
    use std::net::{TcpStream, ToSocketAddrs};
    let (host, port) = host_port(url)?;
    let addrs: Vec<_> = match (host.as_str(), port).to_socket_addrs() {
        Ok(a) => a.collect(),
        Err(_) => return Some(format!("the host name {host} does not resolve (DNS)")),
    };
    let mut last = None;
    for a in &addrs {
        match TcpStream::connect_timeout(a, Duration::from_secs(3)) {
            Ok(_) => return None,
            Err(e) => last = Some((a, e)),
        }
    }
    let (addr, e) = last?;
    Some(match e.kind() {
        std::io::ErrorKind::ConnectionRefused => {
            format!("connection refused by {addr} (nothing listens on port {port})")
        }
        std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock => {
            format!("no answer from {addr} within 3 s (firewall, or the camera is off)")
        }
        _ => format!("{addr}: {e}"),
    })
}

/// GStreamer's messages may quote the URL with its credentials: redact every `rtsp://` URL.
fn redact_all(text: &str) -> String {
    text.split(' ')
        .map(|w| {
            if w.contains("://") {
                redact(w)
            } else {
                w.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Whether analysing a `width`×`height` stream at `fps` costs most of a core in decoding alone
/// on an ARM box: more than 720p at more than 10 fps (a sub-stream, `detect_url`, is then
/// the cheaper thing to analyse).
pub fn heavy(width: u32, height: u32, fps: Option<f64>) -> bool {
    u64::from(width) * u64::from(height) > 1280 * 720 && fps.is_some_and(|f| f > 10.0)
}

/// Why a sub-stream of `detect` pixels does not fit the `main` stream it stands in for, if it
/// does not: another aspect ratio (normalised zones would fit only one of the pictures), or
/// no fewer pixels (nothing saved).
pub fn misfit(main: (u32, u32), detect: (u32, u32)) -> Option<String> {
    let aspect = |(w, h): (u32, u32)| f64::from(w) / f64::from(h.max(1));
    let (a, b) = (aspect(main), aspect(detect));
    if (a - b).abs() > 0.02 * a {
        return Some(format!(
            "the sub-stream is {}×{} ({b:.2}:1) and the main stream {}×{} ({a:.2}:1): zones, lines and masks are normalised, so they fit only one picture; set the sub-stream to the main stream's aspect ratio",
            detect.0, detect.1, main.0, main.1
        ));
    }
    if u64::from(detect.0) * u64::from(detect.1) >= u64::from(main.0) * u64::from(main.1) {
        return Some(format!(
            "the sub-stream ({}×{}) is not smaller than the main stream ({}×{}): detect_url saves nothing; give the camera's low-resolution stream",
            detect.0, detect.1, main.0, main.1
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_heavy_stream_is_above_720p_and_10_fps() {
        assert!(heavy(1920, 1080, Some(25.0)));
        assert!(!heavy(1920, 1080, Some(10.0)), "10 fps is not above 10");
        assert!(!heavy(1280, 720, Some(30.0)), "720p is not above 720p");
        assert!(!heavy(1920, 1080, None), "rate unknown");
        assert!(heavy(2688, 1520, Some(20.0)), "4 MP");
    }

    #[test]
    fn a_sub_stream_fits_when_smaller_at_the_same_aspect() {
        assert_eq!(misfit((1920, 1080), (640, 360)), None);
        assert_eq!(misfit((2560, 1440), (704, 396)), None, "within 2 %");
        let four_three = misfit((1920, 1080), (640, 480)).expect("4:3 under 16:9");
        assert!(
            four_three.contains("1.33:1") && four_three.contains("1.78:1"),
            "{four_three}"
        );
        let same = misfit((1280, 720), (1920, 1080)).expect("larger");
        assert!(same.contains("not smaller"), "{same}");
    }

    #[test]
    fn host_and_port_come_out_of_any_rtsp_url() {
        assert_eq!(
            host_port("rtsp://u:p@10.0.0.5/s1"),
            Some(("10.0.0.5".into(), 554))
        );
        assert_eq!(
            host_port("rtsp://cam.local:8554/a/b"),
            Some(("cam.local".into(), 8554))
        );
        assert_eq!(host_port("rtsp://[::1]:9000/x"), Some(("::1".into(), 9000)));
        assert_eq!(host_port("rtsps://h/x"), Some(("h".into(), 322)));
        assert_eq!(host_port("http://h/x"), None);
    }

    #[test]
    fn a_closed_port_and_an_unknown_name_are_told_apart() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
        let refused = tcp_diagnosis(&format!("rtsp://127.0.0.1:{port}/x")).unwrap_or_default();
        assert!(refused.contains("connection refused"), "{refused}");
        let dns = tcp_diagnosis("rtsp://no-such-host.invalid/x").unwrap_or_default();
        assert!(dns.contains("does not resolve"), "{dns}");
    }
}
