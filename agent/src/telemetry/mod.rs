//! What the agent tells the operations centre besides incidents: the retained status of each
//! camera (`…/cameras/{camera}/status`, published when it changes) and periodic health
//! (`…/health`: per-camera frame counters, analysis rate, inference time, open incidents and
//! zone counts).

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::mpsc;

use crate::faults::{FaultEvent, FaultTracker, Seen};
use crate::ingest::picture::Condition;
use crate::ingest::slot::FrameBoard;
use crate::ingest::status::{self, CameraState};
use crate::publish::{Identity, Lane, Message, ModelLine, OutboxGauge, Outgoing};
use crate::rules::CameraRules;
use payload::{CameraHealth, ZoneCount};

pub mod payload;

/// A camera as the monitor sees it.
#[derive(Debug, Clone)]
pub struct Watched {
    /// Index on the frame board.
    pub index: usize,
    /// Camera id.
    pub id: String,
    /// Whether it is pulled at all.
    pub enabled: bool,
    /// No frame for this long counts as offline.
    pub stall: Duration,
    /// No frame for this long opens a `camera_offline` incident.
    pub offline: Duration,
}

impl Watched {
    /// How the monitor watches camera `index` configured as `c`.
    pub fn of(index: usize, c: &crate::config::Camera) -> Self {
        Watched {
            index,
            id: c.id.clone(),
            enabled: c.enabled,
            stall: Duration::from_secs_f64((3.0 / c.analysis_fps).max(3.0)),
            offline: crate::config::duration(c.offline_s),
        }
    }
}

fn status_message(identity: &Identity, camera: &str, state: &str, reason: Option<&str>) -> Message {
    let body = payload::camera_status(identity, camera, state, reason, SystemTime::now());
    Message {
        topic: identity.camera_status_topic(camera),
        payload: body.to_string().into_bytes(),
        retain: true,
    }
}

fn health_lane(messages: Vec<Message>) -> Outgoing {
    Outgoing::Plain {
        lane: Lane::Health,
        messages,
    }
}

/// Publish each camera's status now and on every change, and its fault incidents
/// (`camera_offline`, `camera_frozen`, `camera_tamper`), until `stop`; then close the fault
/// incidents still open and publish every camera `offline` ("agent stopped").
pub async fn camera_monitor(
    board: Arc<FrameBoard>,
    watched: Arc<std::sync::Mutex<Vec<Watched>>>,
    identity: Identity,
    tx: mpsc::Sender<Outgoing>,
    stop: Arc<AtomicBool>,
) {
    let current = || {
        watched
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    };
    let mut cameras = current();
    let mut last: Vec<Option<(&'static str, Option<String>)>> = vec![None; cameras.len()];
    let mut faults: Vec<FaultTracker> = cameras
        .iter()
        .map(|c| FaultTracker::new(c.offline))
        .collect();
    let mut events = Vec::new();
    // Cameras seen enabled on the previous tick (a reload may switch them).
    let mut was_enabled: Vec<bool> = vec![true; cameras.len()];
    let started = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    while !stop.load(Ordering::Relaxed) {
        tick.tick().await;
        cameras = current();
        for (i, c) in cameras.iter().enumerate() {
            if let Some(t) = faults.get_mut(i) {
                t.set_offline_after(c.offline);
            }
            if was_enabled.get(i) == Some(&true) && !c.enabled {
                let m = status_message(
                    &identity,
                    &c.id,
                    "offline",
                    Some("disabled in the configuration"),
                );
                if tx.send(health_lane(vec![m])).await.is_err() {
                    return;
                }
                if let Some(p) = last.get_mut(i) {
                    *p = None;
                }
            }
            if let Some(w) = was_enabled.get_mut(i) {
                *w = c.enabled;
            }
        }
        let now = Instant::now();
        for ((c, prev), tracker) in cameras
            .iter()
            .zip(last.iter_mut())
            .zip(faults.iter_mut())
            .filter(|((c, _), _)| c.enabled)
        {
            let counters = board.counters(c.index);
            let last_frame = *counters
                .last_frame
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            let link = counters
                .link
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone();
            let condition = *counters
                .condition
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            let (state, reason) = status::assess(now, last_frame, &link, c.stall);
            tracker.update(
                Seen {
                    state,
                    silent_for: now.saturating_duration_since(last_frame.unwrap_or(started)),
                    reason: reason.as_deref(),
                    condition,
                },
                SystemTime::now(),
                &mut events,
            );
            for e in events.drain(..) {
                if e.state == crate::rules::EventState::Open {
                    crate::prometheus::incident_opened(&c.id, e.kind.as_str());
                }
                tracing::warn!(camera = %c.id, incident = %e.id, reason = %e.reason, "{} {}", e.kind.as_str(), e.state.as_str());
                if tx.send(fault_incident(&identity, &c.id, e)).await.is_err() {
                    return;
                }
            }
            let seen = published_status(state, reason, condition);
            // A growing "no frame for N s" is the same state: publish on state or cause change.
            let same = prev.as_ref().is_some_and(|(s, r)| {
                *s == seen.0
                    && (r == &seen.1
                        || (r.as_deref().is_some_and(|r| r.starts_with("no frame"))
                            && seen.1.as_deref().is_some_and(|r| r.starts_with("no frame"))))
            });
            if same {
                continue;
            }
            tracing::info!(camera = %c.id, state = seen.0, reason = seen.1.as_deref().unwrap_or("-"), "camera status");
            let state_changed = prev.as_ref().is_none_or(|(s, _)| *s != seen.0);
            {
                let mut published = counters
                    .published
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner);
                let since = match published.as_ref() {
                    Some(p) if !state_changed => p.since,
                    _ => SystemTime::now(),
                };
                *published = Some(crate::ingest::slot::Published {
                    state: seen.0,
                    reason: seen.1.clone(),
                    since,
                });
            }
            let m = status_message(&identity, &c.id, seen.0, seen.1.as_deref());
            if tx.send(health_lane(vec![m])).await.is_err() {
                return;
            }
            *prev = Some(seen);
        }
    }
    // Fault incidents still open close with the agent.
    for (c, tracker) in cameras.iter().zip(faults.iter_mut()) {
        events.clear();
        tracker.close_all(SystemTime::now(), &mut events);
        for e in events.drain(..) {
            let _ = tx.send(fault_incident(&identity, &c.id, e)).await;
        }
    }
    let goodbye: Vec<Message> = cameras
        .iter()
        .filter(|c| c.enabled)
        .map(|c| status_message(&identity, &c.id, "offline", Some("agent stopped")))
        .collect();
    let _ = tx.send(health_lane(goodbye)).await;
}

/// The published state: the frame flow's, unless frames flow and the picture checks say
/// frozen or tampered.
fn published_status(
    state: CameraState,
    reason: Option<String>,
    condition: Condition,
) -> (&'static str, Option<String>) {
    match (state, condition) {
        (CameraState::Streaming, Condition::Frozen) => {
            ("frozen", condition.reason().map(String::from))
        }
        (CameraState::Streaming, c) if c.is_tamper() => ("tampered", c.reason().map(String::from)),
        _ => (state.as_str(), reason),
    }
}

/// A fault incident event for the outbox (camera health lane).
fn fault_incident(identity: &Identity, camera: &str, e: FaultEvent) -> Outgoing {
    let identity = identity.clone();
    let camera = camera.to_string();
    Outgoing::Incident {
        lane: Lane::Health,
        build: Box::new(move |seq| {
            vec![Message {
                topic: identity.incident_topic(&camera),
                payload: crate::incident::payload::fault(&e, &identity, &camera, seq)
                    .to_string()
                    .into_bytes(),
                retain: false,
            }]
        }),
    }
}

/// The figures of the last health message, for the diagnostics socket.
#[derive(Debug, Default)]
pub struct LatestHealth(std::sync::Mutex<Option<(SystemTime, Vec<CameraHealth>)>>);

impl LatestHealth {
    /// When the last health was built and its camera lines.
    pub fn get(&self) -> Option<(SystemTime, Vec<CameraHealth>)> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn set(&self, lines: &[CameraHealth]) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) =
            Some((SystemTime::now(), lines.to_vec()));
    }
}

/// Collects inference times and builds the periodic health message (on the inference thread,
/// which owns the rules and so knows the zone counts).
#[derive(Debug)]
pub struct Health {
    interval: Duration,
    outbox: Arc<OutboxGauge>,
    state_dir: PathBuf,
    started: Instant,
    last: Instant,
    infer_ms: Vec<Vec<f32>>,
    before: Vec<(u64, u64, u64)>,
    latest: Arc<LatestHealth>,
    models: Vec<ModelLine>,
}

impl Health {
    /// Name `models` (and the engine running each) in every health message.
    pub fn with_models(mut self, models: Vec<ModelLine>) -> Self {
        self.models = models;
        self
    }

    /// Health for `cameras` cameras every `interval`, reporting the outbox figures and the free
    /// space of the file system holding `state_dir`.
    pub fn new(
        cameras: usize,
        interval: Duration,
        outbox: Arc<OutboxGauge>,
        state_dir: PathBuf,
    ) -> Self {
        let now = Instant::now();
        Health {
            interval,
            outbox,
            state_dir,
            started: now,
            last: now,
            infer_ms: vec![Vec::with_capacity(1024); cameras],
            before: vec![(0, 0, 0); cameras],
            latest: Arc::default(),
            models: Vec::new(),
        }
    }

    /// Where the figures of each health message are kept for the diagnostics socket.
    pub fn latest(&self) -> Arc<LatestHealth> {
        Arc::clone(&self.latest)
    }

    /// Record one inference of camera `i`.
    pub fn record(&mut self, i: usize, took: Duration) {
        if let Some(v) = self.infer_ms.get_mut(i)
            && v.len() < 100_000
        {
            v.push(took.as_secs_f32() * 1000.0);
        }
    }

    /// Whether the interval has passed.
    pub fn is_due(&self) -> bool {
        self.last.elapsed() >= self.interval
    }

    /// The health message (and the start of a new interval).
    pub fn build(
        &mut self,
        identity: &Identity,
        board: &FrameBoard,
        cameras: &[(String, &CameraRules, Option<&'static str>)],
    ) -> Message {
        let now = Instant::now();
        let span = now.duration_since(self.last);
        self.last = now;
        let mut lines = Vec::with_capacity(cameras.len());
        for (i, (id, rules, fire_cues)) in cameras.iter().enumerate() {
            let k = board.counters(i);
            let analysed = k.analysed.load(Ordering::Relaxed);
            let times = &mut self.infer_ms[i];
            times.sort_unstable_by(f32::total_cmp);
            let p50 = percentile(times, 0.50);
            let p99 = percentile(times, 0.99);
            times.clear();
            let received = k.received.load(Ordering::Relaxed);
            let secs = span.as_secs_f64().max(1e-3);
            let rate = |now: u64, then: u64| {
                (now.saturating_sub(then) as f64 / secs * 100.0).round() / 100.0
            };
            let decoded = k.decoded.load(Ordering::Relaxed);
            let (decoded_then, received_then, analysed_then) = self.before[i];
            self.before[i] = (decoded, received, analysed);
            let count = |c: &std::sync::atomic::AtomicU64| c.load(Ordering::Relaxed);
            lines.push(CameraHealth {
                camera: id.clone(),
                decoded,
                decoded_fps: rate(decoded, decoded_then),
                received,
                received_fps: rate(received, received_then),
                analysed,
                dropped: count(&k.dropped),
                thinned: count(&k.thinned),
                misordered: count(&k.misordered),
                missing: count(&k.missing),
                packets_lost: count(&k.packets_lost),
                packets_late: count(&k.packets_late),
                reconnects: k.reconnects.load(Ordering::Relaxed),
                decode_errors: k.decode_errors.load(Ordering::Relaxed),
                analysed_fps: rate(analysed, analysed_then),
                inference_ms_p50: (f64::from(p50) * 10.0).round() / 10.0,
                inference_ms_p99: (f64::from(p99) * 10.0).round() / 10.0,
                open_incidents: rules.open_incidents(),
                zones: rules
                    .zones()
                    .zip(rules.zone_counts())
                    .map(|(z, &count)| ZoneCount {
                        zone: z.name.clone(),
                        count,
                    })
                    .collect(),
                frame_time: if k.stream_clock.load(Ordering::Relaxed) {
                    "stream"
                } else {
                    "arrival"
                },
                fire_cues: *fire_cues,
                disarmed: rules
                    .standing()
                    .holding(SystemTime::now())
                    .map(|d| payload::Disarmed {
                        target: d.target.label(),
                        until: d.until.map(crate::clock::rfc3339_ms),
                        fire: d.fire,
                        by: d.by.clone(),
                    })
                    .collect(),
            });
        }
        self.latest.set(&lines);
        let body = payload::health(
            identity,
            self.started.elapsed(),
            (&lines, &self.models),
            &self.outbox.get(),
            disk_free(&self.state_dir),
        );
        Message {
            topic: identity.health_topic(),
            payload: body.to_string().into_bytes(),
            retain: false,
        }
    }
}

/// The `q` quantile of sorted `times` (nearest rank), 0 when empty.
fn percentile(sorted: &[f32], q: f64) -> f32 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// Bytes available to the agent on the file system holding `dir` (None if it cannot be read).
pub fn disk_free(dir: &std::path::Path) -> Option<u64> {
    let st = rustix::fs::statvfs(dir).ok()?;
    Some(st.f_bavail.saturating_mul(st.f_frsize))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let v: Vec<f32> = (1..=100).map(|i| i as f32).collect();
        assert_eq!(percentile(&v, 0.50), 50.0);
        assert_eq!(percentile(&v, 0.99), 99.0);
        assert_eq!(percentile(&[7.0], 0.99), 7.0);
        assert_eq!(percentile(&[], 0.5), 0.0);
    }

    #[test]
    fn disk_free_reads_the_file_system() {
        let free = disk_free(&std::env::temp_dir()).expect("statvfs on the temp dir");
        assert!(free > 0);
        assert_eq!(disk_free(std::path::Path::new("/no/such/dir")), None);
    }
}
