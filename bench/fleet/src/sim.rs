//! A simulated box: vigil's own publish path (a SQLite outbox on disk, `publish::run` with its
//! TLS session, failover and redelivery), logged in as itself on its district broker, fed on a
//! schedule instead of by cameras. Each step draws a Poisson schedule per camera at the capacity
//! model's busy rate times the step's multiplier.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use rand::Rng;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use vigil::publish::{self, Durable, OutboxGauge, Outgoing, SessionConfig, SessionStats};
use vigil::publish::{Identity, Inventory, ModelLine};
use vigil::rules::EventState;

use crate::ledger::{Ledger, picture_key};
use crate::payloads::{self, Incident, Material};

/// The busy rate of the capacity model: an incident per camera every 5 minutes.
pub const INCIDENT_EVERY: Duration = Duration::from_secs(300);
/// Health: a message per box every 60 s.
pub const HEALTH_EVERY: Duration = Duration::from_secs(60);
/// An incident's `update` and `close` after its `open`.
const UPDATE_AFTER: Duration = Duration::from_secs(10);
const CLOSE_AFTER: Duration = Duration::from_secs(30);

/// One running box.
pub struct SimBox {
    /// Its number in the ledger.
    pub index: u32,
    /// Device and district.
    pub identity: Identity,
    cameras: Vec<String>,
    tx: mpsc::Sender<Outgoing>,
    gauge: Arc<OutboxGauge>,
    started: Instant,
    /// The session task.
    pub session: JoinHandle<SessionStats>,
}

/// What a box does at a moment of a step.
#[derive(Debug, Clone, Copy)]
enum Act {
    /// Incident `k` of the step on camera `cam` opens (with its picture).
    Open { k: usize, cam: usize },
    /// Incident `k` is updated.
    Update { k: usize },
    /// Incident `k` closes.
    Close { k: usize },
    /// A health message.
    Health,
}

/// Start a box `device` of district `district` on `mqtt`, its outbox in `state`.
pub fn start(
    index: u32,
    identity: Identity,
    cameras: usize,
    mqtt: vigil::config::Mqtt,
    state: &Path,
    shutdown: watch::Receiver<bool>,
) -> anyhow::Result<SimBox> {
    let security = publish::tls::load(&mqtt, |p| p.to_path_buf())?;
    let path = state.join(format!("{}.db", identity.device));
    let (mut outbox, _) = Durable::open(&path, 64 << 20, publish::MAX_IN_FLIGHT)?;
    let limit = Arc::new(publish::limit::MessageLimit::of(&mqtt));
    outbox.set_limit(Arc::clone(&limit));
    let gauge = outbox.gauge();
    let cameras: Vec<String> = (1..=cameras).map(|c| format!("cam-{c:02}")).collect();
    // The centre's commands are subscribed to as on a real box; none are sent here.
    let (command_tx, mut command_rx) = mpsc::channel(16);
    tokio::spawn(async move { while command_rx.recv().await.is_some() {} });
    let (tx, rx) = mpsc::channel(1024);
    let cfg = SessionConfig {
        mqtt,
        inbound: Some(publish::Inbound {
            filter: identity.command_filter(),
            tx: command_tx,
        }),
        identity: identity.clone(),
        inventory: Inventory {
            version: env!("CARGO_PKG_VERSION").into(),
            started_at: Some(SystemTime::now()),
            cameras: cameras.clone(),
            models: vec![ModelLine {
                name: "ssd_mobilenet_v1_coco".into(),
                version: "1.0".into(),
                engine: "ort",
            }],
            timezone: "Europe/Berlin".into(),
        },
        max_packet_bytes: 4 << 20,
        limit,
        flush: Duration::from_secs(10),
        security,
    };
    let session = tokio::spawn(publish::run(cfg, outbox, rx, shutdown));
    Ok(SimBox {
        index,
        identity,
        cameras,
        tx,
        gauge,
        started: Instant::now(),
        session,
    })
}

/// A step's schedule for a box: Poisson incidents on each camera at `rate` times the busy
/// rate opened within `length`, their updates and closes (up to [`CLOSE_AFTER`] later), and
/// health within `length`, in time order.
fn schedule(
    cameras: usize,
    rate: f64,
    length: Duration,
    rng: &mut impl Rng,
) -> Vec<(Duration, Act)> {
    let mut acts = Vec::new();
    let mut k = 0;
    let mean = INCIDENT_EVERY.as_secs_f64() / rate;
    for cam in 0..cameras {
        let mut t = 0.0;
        loop {
            // Exponential gaps: -ln(U) × mean.
            t += -(1.0 - rng.random::<f64>()).ln() * mean;
            // Compared before it becomes a Duration, which a huge gap would overflow.
            if t >= length.as_secs_f64() {
                break;
            }
            let at = Duration::from_secs_f64(t);
            acts.push((at, Act::Open { k, cam }));
            acts.push((at + UPDATE_AFTER, Act::Update { k }));
            acts.push((at + CLOSE_AFTER, Act::Close { k }));
            k += 1;
        }
    }
    let every = HEALTH_EVERY.as_secs_f64() / rate;
    let mut t = rng.random::<f64>() * every;
    while t < length.as_secs_f64() {
        acts.push((Duration::from_secs_f64(t), Act::Health));
        t += every;
    }
    // Incidents opened near the end are still updated and closed: the step runs on for up to
    // CLOSE_AFTER, so that every incident has its three events.
    acts.sort_by_key(|(at, _)| *at);
    acts
}

impl SimBox {
    /// Rows in the outbox (not yet acknowledged by the broker).
    pub fn queued(&self) -> usize {
        self.gauge.get().depth.iter().sum()
    }

    /// Whether its session is connected to its broker.
    pub fn connected(&self) -> bool {
        self.gauge.get().connected
    }

    /// Run one step of `length` at `rate` times the busy rate; returns how late the latest
    /// message was handed to the session, against its schedule, or why the box stopped.
    pub async fn step(
        &self,
        rate: f64,
        length: Duration,
        material: Arc<Material>,
        ledger: Arc<Ledger>,
    ) -> Result<Duration, String> {
        let acts = schedule(self.cameras.len(), rate, length, &mut rand::rng());
        let t0 = Instant::now();
        let mut open: Vec<Option<Incident>> = Vec::new();
        let mut late = Duration::ZERO;
        for (at, act) in acts {
            tokio::time::sleep_until(t0 + at).await;
            if let Act::Health = act {
                // As the agent does: health is dropped, never waited for, when the session
                // is backed up.
                let stats = self.gauge.get();
                let (out, key) = payloads::health(
                    &self.identity,
                    &self.cameras,
                    self.started.elapsed(),
                    &stats,
                );
                if self.tx.try_send(out).is_ok() {
                    ledger.expect(key, &ledger.health);
                }
            } else if let Some(out) = self.incident(act, &mut open, &material, &ledger) {
                self.tx
                    .send(out)
                    .await
                    .map_err(|_| format!("{}: its session ended", self.identity.device))?;
            }
            late = late.max(Instant::now().duration_since(t0 + at));
        }
        Ok(late)
    }

    /// The incident event `act`, booked in `ledger` (with its picture on `open`).
    fn incident(
        &self,
        act: Act,
        open: &mut Vec<Option<Incident>>,
        material: &Arc<Material>,
        ledger: &Arc<Ledger>,
    ) -> Option<Outgoing> {
        let (k, state) = match act {
            Act::Health => return None,
            Act::Open { k, cam } => {
                if open.len() <= k {
                    open.resize(k + 1, None);
                }
                let incident = Incident {
                    id: uuid::Uuid::now_v7(),
                    camera: self.cameras[cam].clone(),
                    opened_at: SystemTime::now(),
                };
                let topic = self.identity.snapshot_topic(&incident.camera, &incident.id);
                ledger.expect(picture_key(&topic), &ledger.pictures);
                open[k] = Some(incident);
                (k, EventState::Open)
            }
            Act::Update { k } => (k, EventState::Update),
            Act::Close { k } => (k, EventState::Close),
        };
        let incident = open.get(k)?.as_ref()?;
        ledger.generated();
        let (b, l) = (self.index, Arc::clone(ledger));
        let stamp = Box::new(move |seq| l.stamp(b, seq));
        Some(payloads::incident_event(
            &self.identity,
            material,
            incident,
            state,
            stamp,
        ))
    }

    /// Whether its session task has ended (it should run until the end of the run).
    pub fn ended(&self) -> bool {
        self.session.is_finished()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn a_schedule_holds_the_busy_rate_in_time_order() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let length = Duration::from_secs(3600);
        let acts = schedule(8, 1.0, length, &mut rng);
        assert!(acts.windows(2).all(|w| w[0].0 <= w[1].0));
        let opens = acts
            .iter()
            .filter(|(_, a)| matches!(a, Act::Open { .. }))
            .count();
        // 8 cameras × 12 an hour: 96 expected; Poisson, so within a wide margin.
        assert!((60..=140).contains(&opens), "{opens} opens");
        let health = acts
            .iter()
            .filter(|(_, a)| matches!(a, Act::Health))
            .count();
        assert_eq!(health, 60);
        let ten = schedule(8, 10.0, length, &mut rng);
        let health = ten.iter().filter(|(_, a)| matches!(a, Act::Health)).count();
        assert_eq!(health, 600, "the multiplier scales health too");
        assert!(ten.iter().all(|(at, a)| match a {
            Act::Open { .. } | Act::Health => *at < length,
            _ => *at < length + CLOSE_AFTER,
        }));
        let three = |acts: &[(Duration, Act)], f: fn(&Act) -> bool| {
            acts.iter().filter(|(_, a)| f(a)).count()
        };
        let opens = three(&ten, |a| matches!(a, Act::Open { .. }));
        assert_eq!(three(&ten, |a| matches!(a, Act::Update { .. })), opens);
        assert_eq!(three(&ten, |a| matches!(a, Act::Close { .. })), opens);
    }
}
