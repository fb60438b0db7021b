//! What the agent tells the operations centre besides incidents: the retained status of each
//! camera (`…/cameras/{camera}/status`, published when it changes) and periodic health
//! (`…/health`: per-camera frame counters, analysis rate, inference time, open incidents and
//! zone counts); their payloads are [`payload`]. The camera monitor here is the IO edge of
//! [`crate::health::Watch`]: it publishes each camera's status changes and fault incidents.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::mpsc;

use crate::health::{FaultEvent, Measures, Offline, Status, Watch, Watched};
use crate::ingest::slot::FrameBoard;
use crate::publish::{Identity, Lane, Message, ModelLine, OutboxGauge, Outgoing};
use crate::rules::CameraRules;
use payload::{CameraHealth, ZoneCount};

pub mod payload;

fn status_message(identity: &Identity, camera: &str, status: &Status) -> Message {
    let reason = status.reason();
    let body = payload::camera_status(
        identity,
        camera,
        status.name(),
        reason.as_deref(),
        SystemTime::now(),
    );
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
/// incidents still open and publish every camera `offline` ("agent stopped"). The IO edge of
/// [`crate::health::Watch`]: it reads the frame board every second and publishes what each
/// look returns.
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
    let mut watches: Vec<Watch> = cameras.iter().map(Watch::new).collect();
    let mut events = Vec::new();
    // Cameras seen enabled on the previous tick (a reload may switch them).
    let mut was_enabled: Vec<bool> = vec![true; cameras.len()];
    let started = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    while !stop.load(Ordering::Relaxed) {
        tick.tick().await;
        cameras = current();
        for ((c, watch), was) in cameras.iter().zip(&mut watches).zip(&mut was_enabled) {
            watch.update_thresholds(c);
            if *was && !c.enabled {
                let m = status_message(&identity, &c.id, &watch.disabled());
                if tx.send(health_lane(vec![m])).await.is_err() {
                    return;
                }
            }
            *was = c.enabled;
        }
        let now = (Instant::now(), started, SystemTime::now());
        for (c, watch) in cameras.iter().zip(&mut watches).filter(|(c, _)| c.enabled) {
            let counters = board.counters(c.index);
            let link = counters
                .link
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone();
            let measures = Measures {
                last_frame: *counters
                    .last_frame
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner),
                link: &link,
                condition: *counters
                    .condition
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner),
            };
            let change = watch.look(c, measures, now, &mut events);
            for e in events.drain(..) {
                if e.state == crate::rules::EventState::Open {
                    crate::prometheus::incident_opened(&c.id, e.kind.as_str());
                }
                tracing::warn!(camera = %c.id, incident = %e.id, reason = %e.reason, "{} {}", e.kind.as_str(), e.state.as_str());
                if tx.send(fault_incident(&identity, &c.id, e)).await.is_err() {
                    return;
                }
            }
            let Some(change) = change else { continue };
            let reason = change.status.reason();
            tracing::info!(camera = %c.id, state = change.status.name(), reason = reason.as_deref().unwrap_or("-"), "camera status");
            counters.publish_status(change.status.name(), reason, change.new_state);
            let m = status_message(&identity, &c.id, &change.status);
            if tx.send(health_lane(vec![m])).await.is_err() {
                return;
            }
        }
    }
    // Fault incidents still open close with the agent.
    for (c, watch) in cameras.iter().zip(&mut watches) {
        events.clear();
        watch.close_all(SystemTime::now(), &mut events);
        for e in events.drain(..) {
            let _ = tx.send(fault_incident(&identity, &c.id, e)).await;
        }
    }
    let stopped = Status::Offline(Offline::AgentStopped);
    let goodbye: Vec<Message> = cameras
        .iter()
        .filter(|c| c.enabled)
        .map(|c| status_message(&identity, &c.id, &stopped))
        .collect();
    let _ = tx.send(health_lane(goodbye)).await;
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
