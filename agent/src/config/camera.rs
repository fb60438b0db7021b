//! The `[[cameras]]` entries: what a camera is and watches for, how its stream is pulled and
//! timed, and its zones, lines, masks, tracker and fire settings.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::shared::{Direction, ObjectFilter, Severity};

/// What a camera watches for; decides the incident types its detections can raise.
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum CameraKind {
    /// People and vehicles in zones.
    #[default]
    Security,
    /// Fire and smoke.
    Fire,
}

/// RTSP transport.
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    /// RTP interleaved in the RTSP TCP connection: works through NAT and firewalls. Default.
    #[default]
    Tcp,
    /// RTP over UDP.
    Udp,
}

impl Transport {
    /// The name in the configuration and in rtspsrc's `protocols` (`tcp`, `udp`).
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Tcp => "tcp",
            Transport::Udp => "udp",
        }
    }
}

/// Which clock stamps a frame's `frame_time`.
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum FrameClock {
    /// The camera's clock when the stream carries it (RTCP sender reports) and it is within
    /// 10 s of the box's; else the frame's arrival at vigil. Default.
    #[default]
    Auto,
    /// Always the frame's arrival at vigil (the box's clock), for cameras whose clock is not
    /// trusted even when close.
    Arrival,
}

/// One camera.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Camera {
    /// Camera id, unique on this box; appears in topics. Required; same character rules as
    /// `device.id`.
    pub id: String,
    /// `rtsp://` or `rtsps://` URL; credentials may be embedded (`rtsp://user:pass@host/…`) and are
    /// never logged. Required.
    pub url: String,
    /// The camera's low-resolution sub-stream (`rtsp://` or `rtsps://`, credentials as in
    /// `url`), decoded and analysed instead of `url`. With it, `url` (the main stream) is
    /// received but never decoded except for evidence: each evidence picture is decoded from
    /// the main stream's frame nearest the event's `frame_time`, and clips are cut from it.
    /// Zones, lines and masks are normalised, so they fit both streams when both show the same
    /// view (the same aspect ratio). Optional; without it `url` is analysed.
    pub detect_url: Option<String>,
    /// `"security"` (default) or `"fire"`.
    pub kind: CameraKind,
    /// Name of an entry of `[[models]]`. Required.
    pub model: String,
    /// Frames analysed per second; extra decoded frames are dropped before conversion.
    /// Default 5, between 0.1 and 30.
    pub analysis_fps: f64,
    /// RTSP transport, `"tcp"` (default) or `"udp"`.
    pub transport: Transport,
    /// RTSP jitter-buffer latency in milliseconds. Default 200.
    pub latency_ms: u32,
    /// The clock of `frame_time`: `"auto"` (default: the camera's when close to the box's, else
    /// arrival) or `"arrival"`.
    pub frame_time: FrameClock,
    /// Rebuild the pipeline when no frame arrived for this many seconds (stall watchdog).
    /// Default 10, at least 2.
    pub stall_s: f64,
    /// Open a `camera_offline` incident after this many seconds without frames; it closes when
    /// frames return. Default 30, at least 1.
    pub offline_s: f64,
    /// Frames keep arriving but the picture does not change for this many seconds →
    /// status `frozen` and a `camera_frozen` incident. Default 30, at least 1.
    pub frozen_s: f64,
    /// The picture is covered, defocused or moved for this many seconds → status `tampered`
    /// and a `camera_tamper` incident. Default 10, at least 1.
    pub tamper_s: f64,
    /// Set to false to keep a camera in the file without pulling it. Default true.
    pub enabled: bool,
    /// Zones: intrusion, loitering and crowding.
    pub zones: Vec<Zone>,
    /// Tripwires: line crossing.
    pub lines: Vec<Line>,
    /// Polygons where no detection counts (posters, screens, trees).
    pub masks: Vec<Mask>,
    /// Limits per class (by label) for every rule of this camera.
    pub filters: BTreeMap<String, ObjectFilter>,
    /// Object tracking.
    pub tracker: TrackerSettings,
    /// Fire and smoke confirmation (cameras whose model maps classes to fire or smoke).
    pub fire: FireSettings,
}

impl Default for Camera {
    fn default() -> Self {
        Camera {
            id: String::new(),
            url: String::new(),
            detect_url: None,
            kind: CameraKind::Security,
            model: String::new(),
            analysis_fps: 5.0,
            transport: Transport::Tcp,
            latency_ms: 200,
            frame_time: FrameClock::Auto,
            stall_s: 10.0,
            offline_s: 30.0,
            frozen_s: 30.0,
            tamper_s: 10.0,
            enabled: true,
            zones: Vec::new(),
            lines: Vec::new(),
            masks: Vec::new(),
            filters: BTreeMap::new(),
            tracker: TrackerSettings::default(),
            fire: FireSettings::default(),
        }
    }
}

impl Camera {
    /// The stream analysed: `detect_url` when given, else `url`.
    pub fn analysed_url(&self) -> &str {
        self.detect_url.as_deref().unwrap_or(&self.url)
    }
}

/// A polygon in normalised frame coordinates watched for tracked objects of the listed
/// classes: `intrusion` when one stands in it, `loitering` when one stays `dwell_s`,
/// `crowding` when `crowd_min_count` are in it for `crowd_for_s`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Zone {
    /// Zone name, unique per camera; appears in incidents. Required.
    pub name: String,
    /// At least 3 points `[x, y]`, each 0..=1 (0,0 is the top-left corner), not
    /// self-intersecting. Required.
    pub polygon: Vec<[f64; 2]>,
    /// Labels (from the model's labels file) that count in this zone. Required, not empty.
    pub classes: Vec<String>,
    /// Minimum detection score; default: the model card's `score_threshold`.
    pub min_score: Option<f32>,
    /// Seconds without a matching detection before the incident closes. Default 10.
    pub quiet_s: f64,
    /// While an incident is open, an `update` is sent when its objects change, at most once per
    /// this many seconds, and at least once per `heartbeat_s`. Default 2.
    pub update_min_interval_s: f64,
    /// Seconds between periodic `update`s of an open incident. Default 30.
    pub heartbeat_s: f64,
    /// Raise `intrusion` (one incident per track that enters). Default true.
    pub intrusion: bool,
    /// Severity of `intrusion`. Default `"major"`.
    pub severity: Severity,
    /// Raise `loitering` when a track stays this many seconds. Default: off.
    pub dwell_s: Option<f64>,
    /// Severity of `loitering`. Default `"minor"`.
    pub loitering_severity: Severity,
    /// Raise `crowding` when at least this many tracked objects are inside. Default: off.
    pub crowd_min_count: Option<u32>,
    /// … for at least this many seconds. Default 10.
    pub crowd_for_s: f64,
    /// Severity of `crowding`. Default `"minor"`.
    pub crowding_severity: Severity,
    /// Seconds after a close before the same incident (rule, zone, track) may reopen. Default 0.
    pub cooldown_s: f64,
    /// Consecutive analysed frames a track must be inside to count as entered, and outside to
    /// count as gone. Default 3, from 1 (at once) to 30.
    pub inertia: u32,
    /// A track that entered stays inside while its bottom centre is within this distance of
    /// the zone's edge (a fraction of the picture, 0 to 0.5). Default 0.05.
    pub exit_margin: f64,
    /// Limits per class (by label) in this zone, on top of the camera's.
    pub filters: BTreeMap<String, ObjectFilter>,
}

impl Default for Zone {
    fn default() -> Self {
        Zone {
            name: String::new(),
            polygon: Vec::new(),
            classes: Vec::new(),
            min_score: None,
            quiet_s: 10.0,
            update_min_interval_s: 2.0,
            heartbeat_s: 30.0,
            intrusion: true,
            severity: Severity::Major,
            dwell_s: None,
            loitering_severity: Severity::Minor,
            crowd_min_count: None,
            crowd_for_s: 10.0,
            crowding_severity: Severity::Minor,
            cooldown_s: 0.0,
            inertia: 3,
            exit_margin: 0.05,
            filters: BTreeMap::new(),
        }
    }
}

/// A tripwire: `line_crossing` when a tracked object's bottom-centre crosses the segment.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Line {
    /// Line name, unique per camera; appears in incidents. Required.
    pub name: String,
    /// First point `[x, y]`, 0..=1. Required.
    pub a: [f64; 2],
    /// Second point `[x, y]`, 0..=1. Required.
    pub b: [f64; 2],
    /// `"a_to_b"`, `"b_to_a"` or `"both"` (default). Side a is on the left walking from a to b
    /// (for a line drawn left to right: above it).
    pub direction: Direction,
    /// Labels that count. Required, not empty.
    pub classes: Vec<String>,
    /// Minimum detection score; default: the model card's `score_threshold`.
    pub min_score: Option<f32>,
    /// Severity. Default `"minor"`; `"major"` for a line into a restricted area.
    pub severity: Severity,
    /// Dead band around the line (fraction of the frame) inside which a wobbling object does
    /// not change side. Default 0.01.
    pub hysteresis: f64,
    /// Seconds a crossing incident stays open (further crossings by the same track update it).
    /// Default 5.
    pub quiet_s: f64,
    /// Seconds after a close before the same track may raise a crossing of this line again.
    /// Default 0.
    pub cooldown_s: f64,
}

impl Default for Line {
    fn default() -> Self {
        Line {
            name: String::new(),
            a: [0.0, 0.0],
            b: [0.0, 0.0],
            direction: Direction::Both,
            classes: Vec::new(),
            min_score: None,
            severity: Severity::Minor,
            hysteresis: 0.01,
            quiet_s: 5.0,
            cooldown_s: 0.0,
        }
    }
}

/// A polygon where no detection counts (by its bottom-centre).
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Mask {
    /// Optional name, for people.
    pub name: String,
    /// At least 3 points `[x, y]`, 0..=1. Required.
    pub polygon: Vec<[f64; 2]>,
}

/// Object tracker settings.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct TrackerSettings {
    /// Least IoU between a track's predicted box and a detection. Default 0.3.
    pub iou_min: f32,
    /// Farthest match by distance, in box heights, when boxes do not overlap enough (low frame
    /// rates). Default 1.0.
    pub max_distance: f32,
    /// Frames a track must be matched before rules see it. Default 2.
    pub min_hits: u32,
    /// Seconds a lost track survives (occlusion). Default 2.
    pub max_age_s: f64,
    /// Detections from this score up (below the card's threshold) keep existing tracks alive
    /// without starting new ones. Default: off.
    pub low_score: Option<f32>,
}

impl Default for TrackerSettings {
    fn default() -> Self {
        TrackerSettings {
            iou_min: 0.3,
            max_distance: 1.0,
            min_hits: 2,
            max_age_s: 2.0,
            low_score: None,
        }
    }
}

/// Fire and smoke confirmation: an incident opens when at least `min_hits` of the last
/// `window_frames` analysed frames, within `window_s`, had a detection.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct FireSettings {
    /// K. Default 3.
    pub min_hits: u32,
    /// N, at most 64. Default 5.
    pub window_frames: u32,
    /// T in seconds. Default 10.
    pub window_s: f64,
    /// Count only hits overlapping the latest one. Default true.
    pub same_region: bool,
    /// Require the region not to shrink over the window. Default false.
    pub growth: bool,
    /// Minimum detection score; default: the model card's thresholds.
    pub min_score: Option<f32>,
    /// Seconds without a detection before the incident closes. Default 60.
    pub quiet_s: f64,
    /// Least seconds between change-driven updates. Default 2.
    pub update_min_interval_s: f64,
    /// Seconds between periodic updates. Default 30.
    pub heartbeat_s: f64,
    /// Severity. Default `"critical"`.
    pub severity: Severity,
}

impl Default for FireSettings {
    fn default() -> Self {
        FireSettings {
            min_hits: 3,
            window_frames: 5,
            window_s: 10.0,
            same_region: true,
            growth: false,
            min_score: None,
            quiet_s: 60.0,
            update_min_interval_s: 2.0,
            heartbeat_s: 30.0,
            severity: Severity::Critical,
        }
    }
}
