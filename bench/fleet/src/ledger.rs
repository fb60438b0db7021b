//! What was sent and what reached the city: every incident event is stamped when its box gives
//! it a `seq` (just before the outbox commits it) and checked off when a city consumer receives
//! it, which gives the end-to-end latency, the losses, duplicates and order per box.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use serde::Deserialize;

/// Counters of one kind of message.
#[derive(Debug, Default)]
pub struct Count {
    /// Handed to a box's session.
    pub sent: AtomicU64,
    /// Received at the city.
    pub received: AtomicU64,
}

impl Count {
    fn get(&self) -> (u64, u64) {
        (
            self.sent.load(Ordering::Relaxed),
            self.received.load(Ordering::Relaxed),
        )
    }
}

/// The books of a run.
#[derive(Debug, Default)]
pub struct Ledger {
    /// Device id → box number.
    devices: HashMap<String, u32>,
    /// Incident events committed and not yet received: (box, seq) → when.
    awaited: Mutex<HashMap<(u32, u64), Instant>>,
    /// Latencies of the events received since the last [`Ledger::take`], milliseconds.
    latencies: Mutex<Vec<f64>>,
    /// The highest seq received per consumer and box (a shared subscription splits a box's
    /// messages over the consumers; each one's share must be in order).
    last: Mutex<HashMap<(usize, u32), u64>>,
    /// Incident events.
    pub incidents: Count,
    /// Evidence pictures.
    pub pictures: Count,
    /// Health messages.
    pub health: Count,
    /// Everything received, messages and payload bytes.
    pub messages: AtomicU64,
    /// Payload bytes received.
    pub bytes: AtomicU64,
    /// Incident events received that were not awaited (again, or never stamped).
    pub duplicates: AtomicU64,
    /// Incident events whose seq was below one already received from the same box.
    pub out_of_order: AtomicU64,
}

/// What one stretch of the run adds up to.
#[derive(Debug, Clone, Default)]
pub struct Tally {
    /// Incident events (sent, received).
    pub incidents: (u64, u64),
    /// Pictures (sent, received).
    pub pictures: (u64, u64),
    /// Health messages (sent, received).
    pub health: (u64, u64),
    /// Messages received.
    pub messages: u64,
    /// Payload bytes received.
    pub bytes: u64,
    /// Duplicates received.
    pub duplicates: u64,
    /// First arrivals out of order.
    pub out_of_order: u64,
    /// Latencies, milliseconds, sorted.
    pub latencies: Vec<f64>,
}

#[derive(Deserialize)]
struct Event {
    device: String,
    seq: u64,
}

impl Ledger {
    /// Books for the boxes `devices`, numbered in order.
    pub fn new(devices: &[String]) -> Ledger {
        Ledger {
            devices: devices
                .iter()
                .enumerate()
                .map(|(i, d)| (d.clone(), i as u32))
                .collect(),
            ..Default::default()
        }
    }

    /// Box `b` gave an incident event `seq`.
    pub fn stamp(&self, b: u32, seq: u64) {
        self.incidents.sent.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut m) = self.awaited.lock() {
            m.insert((b, seq), Instant::now());
        }
    }

    /// A message arrived at the city's `consumer` on `topic`.
    pub fn arrived(&self, consumer: usize, topic: &str, payload: &[u8]) {
        self.messages.fetch_add(1, Ordering::Relaxed);
        self.bytes
            .fetch_add(payload.len() as u64, Ordering::Relaxed);
        let parts: Vec<&str> = topic.split('/').collect();
        match parts.as_slice() {
            [.., "snapshot"] => {
                self.pictures.received.fetch_add(1, Ordering::Relaxed);
            }
            [.., "health"] => {
                self.health.received.fetch_add(1, Ordering::Relaxed);
            }
            ["vigil", "v1", _, _, "incidents", _] => self.incident(consumer, payload),
            _ => {}
        }
    }

    fn incident(&self, consumer: usize, payload: &[u8]) {
        let now = Instant::now();
        let Ok(e) = serde_json::from_slice::<Event>(payload) else {
            return;
        };
        let Some(&b) = self.devices.get(&e.device) else {
            return;
        };
        let at = self
            .awaited
            .lock()
            .ok()
            .and_then(|mut m| m.remove(&(b, e.seq)));
        let Some(at) = at else {
            self.duplicates.fetch_add(1, Ordering::Relaxed);
            return;
        };
        self.incidents.received.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut l) = self.latencies.lock() {
            l.push(now.duration_since(at).as_secs_f64() * 1000.0);
        }
        if let Ok(mut last) = self.last.lock() {
            let slot = last.entry((consumer, b)).or_default();
            if e.seq < *slot {
                let n = self.out_of_order.fetch_add(1, Ordering::Relaxed);
                if n < 10 {
                    eprintln!(
                        "fleet-bench: out of order at city consumer {consumer}: {} seq {} after {}",
                        e.device, e.seq, *slot
                    );
                }
            }
            *slot = (*slot).max(e.seq);
        }
    }

    /// Incident events committed and not received yet.
    pub fn awaited(&self) -> usize {
        self.awaited.lock().map(|m| m.len()).unwrap_or(0)
    }

    /// Everything sent so far has arrived: incident events, pictures and health.
    pub fn settled(&self) -> bool {
        let done = |c: &Count| {
            let (sent, received) = c.get();
            received >= sent
        };
        self.awaited() == 0 && done(&self.pictures) && done(&self.health)
    }

    /// The totals so far, taking the latencies gathered since the last call.
    pub fn take(&self) -> Tally {
        let mut latencies = self
            .latencies
            .lock()
            .map(|mut l| std::mem::take(&mut *l))
            .unwrap_or_default();
        latencies.sort_by(f64::total_cmp);
        Tally {
            incidents: self.incidents.get(),
            pictures: self.pictures.get(),
            health: self.health.get(),
            messages: self.messages.load(Ordering::Relaxed),
            bytes: self.bytes.load(Ordering::Relaxed),
            duplicates: self.duplicates.load(Ordering::Relaxed),
            out_of_order: self.out_of_order.load(Ordering::Relaxed),
            latencies,
        }
    }
}

/// The `q` quantile (0..=1) of sorted `v`, nearest rank; 0 for none.
pub fn quantile(v: &[f64], q: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
    v[rank - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_is_checked_off_once_and_late_ones_are_counted() {
        let l = Ledger::new(&["a".into(), "b".into()]);
        l.stamp(0, 1);
        l.stamp(0, 2);
        l.stamp(1, 1);
        let ev = |d: &str, s: u64| format!("{{\"device\":\"{d}\",\"seq\":{s}}}");
        l.stamp(0, 3);
        l.arrived(0, "vigil/v1/t1/a/incidents/cam-1", ev("a", 2).as_bytes());
        l.arrived(0, "vigil/v1/t1/a/incidents/cam-1", ev("a", 1).as_bytes());
        l.arrived(0, "vigil/v1/t1/a/incidents/cam-1", ev("a", 1).as_bytes());
        // Another consumer's share of the same box is ordered on its own.
        l.arrived(1, "vigil/v1/t1/a/incidents/cam-1", ev("a", 3).as_bytes());
        l.arrived(0, "vigil/v1/t1/a/incidents/cam-1/x/snapshot", b"jpeg");
        let t = l.take();
        assert_eq!(t.incidents, (4, 3));
        assert_eq!(t.pictures, (0, 1));
        assert_eq!((t.duplicates, t.out_of_order), (1, 1));
        assert_eq!(t.latencies.len(), 3);
        assert_eq!(l.awaited(), 1, "b's event is still awaited");
        assert!(l.take().latencies.is_empty(), "latencies are taken once");
    }

    #[test]
    fn quantiles_by_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(quantile(&v, 0.5), 50.0);
        assert_eq!(quantile(&v, 0.99), 99.0);
        assert_eq!(quantile(&v, 1.0), 100.0);
        assert_eq!(quantile(&[], 0.5), 0.0);
    }
}
