//! What was sent and what reached the city. Every message is checked off one by one: an
//! incident event by (box, `seq`), stamped when its box gives it the `seq` (just before the
//! outbox commits it), which gives the end-to-end latency; an evidence picture by its topic
//! (one per incident); a health message by (device, `time`). A second arrival of any of them is
//! a duplicate, so a redelivery never hides a loss. Order is checked per box, within each
//! consumer's share and across all consumers.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use serde::Deserialize;

/// Counters of one kind of message.
#[derive(Debug, Default)]
pub struct Count {
    /// Made by the boxes (incident events: generated, before their `seq`).
    pub sent: AtomicU64,
    /// Received at the city, first arrivals only.
    pub received: AtomicU64,
    /// Received again.
    pub duplicates: AtomicU64,
}

impl Count {
    fn get(&self) -> (u64, u64, u64) {
        let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
        (l(&self.sent), l(&self.received), l(&self.duplicates))
    }
}

/// The highest seq received per (consumer, box), and per box over all consumers.
type Highest = (HashMap<(usize, u32), u64>, HashMap<u32, u64>);

/// The books of a run.
#[derive(Debug, Default)]
pub struct Ledger {
    /// Device id → box number.
    devices: HashMap<String, u32>,
    /// Incident events given a `seq` and not yet received: (box, seq) → when.
    awaited: Mutex<HashMap<(u32, u64), Instant>>,
    /// Incident events given a `seq` (the rest of those generated wait before the outbox).
    stamped: AtomicU64,
    /// Pictures (by topic) and health messages (by device and time) not yet received, with how
    /// many of each: a box that catches up on its schedule can make two health messages in the
    /// same millisecond, alike to the byte.
    expected: Mutex<HashMap<String, u32>>,
    /// Latencies of the events received since the last [`Ledger::take`], milliseconds.
    latencies: Mutex<Vec<f64>>,
    /// The highest seq received per (consumer, box), and per box over all consumers.
    last: Mutex<Highest>,
    /// When the latest message arrived.
    last_arrival: Mutex<Option<Instant>>,
    /// The boxes whose status (birth) message reached the city.
    births: Mutex<HashSet<String>>,
    /// Incident events.
    pub incidents: Count,
    /// Evidence pictures.
    pub pictures: Count,
    /// Health messages.
    pub health: Count,
    /// Payload bytes received (everything: births and duplicates too).
    pub bytes: AtomicU64,
    /// Events that reached a consumer after a later `seq` of the same box had reached it.
    pub out_of_order: AtomicU64,
    /// Events that reached the city after a later `seq` of the same box had reached any
    /// consumer (differs from `out_of_order` only with several consumers).
    pub out_of_order_across: AtomicU64,
}

/// What the run adds up to at one moment.
#[derive(Debug, Clone, Default)]
pub struct Tally {
    /// Incident events (generated, received, duplicates).
    pub incidents: (u64, u64, u64),
    /// Pictures (sent, received, duplicates).
    pub pictures: (u64, u64, u64),
    /// Health messages (sent, received, duplicates).
    pub health: (u64, u64, u64),
    /// Payload bytes received.
    pub bytes: u64,
    /// Out of order within a consumer, and across consumers.
    pub out_of_order: (u64, u64),
    /// Latencies, milliseconds, sorted (those since the previous tally).
    pub latencies: Vec<f64>,
    /// When the latest message arrived.
    pub last_arrival: Option<Instant>,
}

#[derive(Deserialize)]
struct Event {
    device: String,
    seq: u64,
}

#[derive(Deserialize)]
struct Health {
    device: String,
    time: String,
}

/// The key of a picture on `topic`.
pub fn picture_key(topic: &str) -> String {
    format!("picture {topic}")
}

/// The key of device `device`'s health message made at `time`.
pub fn health_key(device: &str, time: &str) -> String {
    format!("health {device} {time}")
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
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

    /// A box made an incident event (it gets its `seq` when the outbox stores it).
    pub fn generated(&self) {
        self.incidents.sent.fetch_add(1, Ordering::Relaxed);
    }

    /// Box `b` gave an incident event `seq`.
    pub fn stamp(&self, b: u32, seq: u64) {
        self.stamped.fetch_add(1, Ordering::Relaxed);
        lock(&self.awaited).insert((b, seq), Instant::now());
    }

    /// A picture or a health message (`key`) was handed to a box's session.
    pub fn expect(&self, key: String, count: &Count) {
        count.sent.fetch_add(1, Ordering::Relaxed);
        *lock(&self.expected).entry(key).or_default() += 1;
    }

    /// A message arrived at the city's `consumer` on `topic`.
    pub fn arrived(&self, consumer: usize, topic: &str, payload: &[u8]) {
        *lock(&self.last_arrival) = Some(Instant::now());
        self.bytes
            .fetch_add(payload.len() as u64, Ordering::Relaxed);
        let parts: Vec<&str> = topic.split('/').collect();
        match parts.as_slice() {
            [.., "snapshot"] => self.check_off(&picture_key(topic), &self.pictures),
            ["vigil", "v1", _, device, "status"] => {
                lock(&self.births).insert((*device).to_string());
            }
            [.., "health"] => {
                if let Ok(h) = serde_json::from_slice::<Health>(payload) {
                    self.check_off(&health_key(&h.device, &h.time), &self.health);
                }
            }
            ["vigil", "v1", _, _, "incidents", _] => self.incident(consumer, payload),
            _ => {}
        }
    }

    fn check_off(&self, key: &str, count: &Count) {
        let first = {
            let mut expected = lock(&self.expected);
            match expected.get_mut(key) {
                Some(1) => expected.remove(key).is_some(),
                Some(n) => {
                    *n -= 1;
                    true
                }
                None => false,
            }
        };
        let c = if first {
            &count.received
        } else {
            &count.duplicates
        };
        c.fetch_add(1, Ordering::Relaxed);
    }

    fn incident(&self, consumer: usize, payload: &[u8]) {
        let now = Instant::now();
        let Ok(e) = serde_json::from_slice::<Event>(payload) else {
            return;
        };
        let Some(&b) = self.devices.get(&e.device) else {
            return;
        };
        let Some(at) = lock(&self.awaited).remove(&(b, e.seq)) else {
            self.incidents.duplicates.fetch_add(1, Ordering::Relaxed);
            return;
        };
        self.incidents.received.fetch_add(1, Ordering::Relaxed);
        lock(&self.latencies).push(now.duration_since(at).as_secs_f64() * 1000.0);
        let mut last = lock(&self.last);
        let later = |slot: &mut u64, counter: &AtomicU64| {
            if e.seq < *slot {
                counter.fetch_add(1, Ordering::Relaxed);
            }
            *slot = (*slot).max(e.seq);
        };
        later(last.0.entry((consumer, b)).or_default(), &self.out_of_order);
        later(last.1.entry(b).or_default(), &self.out_of_order_across);
    }

    /// Boxes whose birth message reached the city.
    pub fn births(&self) -> usize {
        lock(&self.births).len()
    }

    /// Incident events given a `seq` and not received yet.
    pub fn awaited(&self) -> usize {
        lock(&self.awaited).len()
    }

    /// Everything made so far has arrived: every incident event generated got its `seq` and
    /// was received, and every picture and health message was received.
    pub fn settled(&self) -> bool {
        self.stamped.load(Ordering::Relaxed) == self.incidents.sent.load(Ordering::Relaxed)
            && self.awaited() == 0
            && lock(&self.expected).is_empty()
    }

    /// Events, pictures and health messages made and not received (an event still before its
    /// outbox counts).
    pub fn undelivered(&self) -> u64 {
        let (made, received, _) = self.incidents.get();
        let expected: u64 = lock(&self.expected).values().map(|&n| u64::from(n)).sum();
        made.saturating_sub(received) + expected
    }

    /// The totals so far, taking the latencies gathered since the last call.
    pub fn take(&self) -> Tally {
        let mut latencies = std::mem::take(&mut *lock(&self.latencies));
        latencies.sort_by(f64::total_cmp);
        let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
        Tally {
            incidents: self.incidents.get(),
            pictures: self.pictures.get(),
            health: self.health.get(),
            bytes: l(&self.bytes),
            out_of_order: (l(&self.out_of_order), l(&self.out_of_order_across)),
            latencies,
            last_arrival: *lock(&self.last_arrival),
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

    const TOPIC: &str = "vigil/v1/t1/a/incidents/cam-1";

    fn ev(d: &str, s: u64) -> Vec<u8> {
        format!("{{\"device\":\"{d}\",\"seq\":{s}}}").into_bytes()
    }

    #[test]
    fn an_event_is_checked_off_once_and_late_ones_are_counted() {
        let l = Ledger::new(&["a".into(), "b".into()]);
        for (b, s) in [(0, 1), (0, 2), (1, 1), (0, 3)] {
            l.generated();
            l.stamp(b, s);
        }
        l.generated();
        assert!(!l.settled(), "an event without its seq is not settled");
        l.arrived(0, TOPIC, &ev("a", 2));
        l.arrived(0, TOPIC, &ev("a", 1));
        l.arrived(0, TOPIC, &ev("a", 1));
        // Another consumer's share of the same box is ordered on its own, not across.
        l.arrived(1, TOPIC, &ev("a", 3));
        let t = l.take();
        assert_eq!(t.incidents, (5, 3, 1));
        assert_eq!(t.out_of_order, (1, 1));
        assert_eq!(t.latencies.len(), 3);
        assert_eq!(l.awaited(), 1, "b's event is still awaited");
        assert_eq!(l.undelivered(), 2, "b's, and the one without a seq");
        assert!(l.take().latencies.is_empty(), "latencies are taken once");
    }

    #[test]
    fn a_duplicate_picture_or_health_does_not_hide_a_lost_one() {
        let l = Ledger::new(&["a".into()]);
        let pic = "vigil/v1/t1/a/incidents/cam-1/x/snapshot";
        l.expect(picture_key(pic), &l.pictures);
        l.expect(
            picture_key("vigil/v1/t1/a/incidents/cam-1/y/snapshot"),
            &l.pictures,
        );
        l.arrived(0, pic, b"jpeg");
        l.arrived(0, pic, b"jpeg");
        // Two health messages of the same millisecond are two, a third arrival a duplicate.
        l.expect(health_key("a", "T1"), &l.health);
        l.expect(health_key("a", "T1"), &l.health);
        let h = br#"{"device":"a","time":"T1"}"#;
        for _ in 0..3 {
            l.arrived(0, "vigil/v1/t1/a/health", h);
        }
        let t = l.take();
        assert_eq!(t.pictures, (2, 1, 1));
        assert_eq!(t.health, (2, 2, 1));
        assert!(!l.settled(), "picture y never came");
        assert_eq!(l.undelivered(), 1);
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
