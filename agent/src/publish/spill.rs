//! Messages the outbox file could not store (full disk, I/O error): kept in memory, in order,
//! and published without durability. Bounded in bytes: when over, the oldest message of the
//! lowest lane present goes first (telemetry, then health, then security), fire and smoke last,
//! each one counted as lost. A store that cannot write never turns into an unbounded queue.

use std::collections::VecDeque;

use super::Message;
use super::outbox::Lane;

/// Bytes the spill holds at most.
pub const SPILL_BYTES: usize = 8 << 20;

/// The bounded in-memory queue.
#[derive(Debug)]
pub struct Spill {
    queue: VecDeque<(Lane, Message)>,
    bytes: usize,
    max_bytes: usize,
    taken: u64,
    lost: [u64; 4],
}

fn size(m: &Message) -> usize {
    m.topic.len() + m.payload.len()
}

impl Spill {
    /// An empty spill of at most `max_bytes`.
    pub fn new(max_bytes: usize) -> Spill {
        Spill {
            queue: VecDeque::new(),
            bytes: 0,
            max_bytes,
            taken: 0,
            lost: [0; 4],
        }
    }

    /// Keep `messages` of `lane`; returns how many messages (of any lane) were dropped to stay
    /// within the bound.
    pub fn push(&mut self, lane: Lane, messages: Vec<Message>) -> usize {
        for m in messages {
            self.bytes += size(&m);
            self.taken += 1;
            self.queue.push_back((lane, m));
        }
        let mut dropped = 0;
        while self.bytes > self.max_bytes {
            let Some(lowest) = self.queue.iter().map(|(l, _)| *l as usize).max() else {
                break;
            };
            let Some(at) = self.queue.iter().position(|(l, _)| *l as usize == lowest) else {
                break;
            };
            if let Some((l, m)) = self.queue.remove(at) {
                self.bytes -= size(&m);
                self.lost[l as usize] += 1;
                dropped += 1;
            }
        }
        dropped
    }

    /// The oldest message waiting.
    pub fn front(&self) -> Option<&Message> {
        self.queue.front().map(|(_, m)| m)
    }

    /// Take the oldest message away (sent, or dropped by the caller).
    pub fn pop_front(&mut self) -> Option<Message> {
        let (_, m) = self.queue.pop_front()?;
        self.bytes -= size(&m);
        Some(m)
    }

    /// Messages waiting.
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// Whether nothing waits.
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Messages taken in since start (each one not durable).
    pub fn taken(&self) -> u64 {
        self.taken
    }

    /// Messages dropped for the bound since start, per lane.
    pub fn lost(&self) -> [u64; 4] {
        self.lost
    }
}

/// How often a run of store failures is reported while it lasts.
pub const REPORT_EVERY: std::time::Duration = std::time::Duration::from_secs(60);

/// Reports of messages the store refused: the first of a run at once, then one line a
/// [`REPORT_EVERY`] with how many more, and one when storing works again, instead of a line per
/// message (health every second on a full disk made one ERROR a second).
#[derive(Debug, Default)]
pub struct Unstored {
    run: u64,
    run_reported: bool,
    unreported: u64,
    last_report: Option<std::time::Instant>,
}

impl Unstored {
    /// The store refused a message at `now`: how many to report now (with this one), if due.
    pub fn failed(&mut self, now: std::time::Instant) -> Option<u64> {
        self.run += 1;
        self.unreported += 1;
        let due = self
            .last_report
            .is_none_or(|t| now.saturating_duration_since(t) >= REPORT_EVERY);
        if !due {
            return None;
        }
        self.last_report = Some(now);
        self.run_reported = true;
        Some(std::mem::take(&mut self.unreported))
    }

    /// The store took a message: the length of the run of failures it ends, if one did and
    /// was reported (a store failing every other message still logs once a minute; failures
    /// not reported yet are counted into the next report).
    pub fn stored(&mut self) -> Option<u64> {
        let run = std::mem::take(&mut self.run);
        let reported = std::mem::take(&mut self.run_reported);
        (run > 0 && reported).then_some(run)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(n: usize) -> Message {
        Message {
            topic: "t".into(),
            payload: vec![b'x'; n - 1],
            retain: false,
        }
    }

    #[test]
    fn over_its_bound_it_drops_the_lowest_lane_first_and_fire_last() {
        let mut s = Spill::new(300);
        assert_eq!(s.push(Lane::Fire, vec![msg(100)]), 0);
        assert_eq!(s.push(Lane::Telemetry, vec![msg(100)]), 0);
        assert_eq!(s.push(Lane::Security, vec![msg(100)]), 0);
        assert_eq!(s.push(Lane::Fire, vec![msg(100)]), 1, "telemetry goes");
        assert_eq!(
            s.push(Lane::Health, vec![msg(100)]),
            1,
            "the new health goes"
        );
        assert_eq!(s.push(Lane::Fire, vec![msg(100)]), 1, "then security");
        assert_eq!(s.lost(), [0, 1, 1, 1]);
        assert_eq!(s.len(), 3);
        assert_eq!(
            s.push(Lane::Fire, vec![msg(100)]),
            1,
            "fire only when alone"
        );
        assert_eq!(s.lost()[0], 1);
        assert_eq!(s.taken(), 7);
        while s.pop_front().is_some() {}
        assert!(s.is_empty() && s.front().is_none());
        assert_eq!(
            s.push(Lane::Fire, vec![msg(1000)]),
            1,
            "larger than the bound"
        );
    }

    #[test]
    fn a_run_of_store_failures_is_reported_once_a_minute_and_when_it_ends() {
        let t0 = std::time::Instant::now();
        let mut u = Unstored::default();
        assert_eq!(u.failed(t0), Some(1), "the first at once");
        for s in 1..60 {
            assert_eq!(u.failed(t0 + std::time::Duration::from_secs(s)), None);
        }
        assert_eq!(u.failed(t0 + REPORT_EVERY), Some(60));
        assert_eq!(u.stored(), Some(61));
        assert_eq!(u.stored(), None);
        // Failing every other message: one report a minute with the count, no line per
        // recovery in between.
        let mut lines = 0;
        let mut counted = 0;
        for k in 1..=120 {
            let at = t0 + REPORT_EVERY + std::time::Duration::from_secs(k);
            if let Some(n) = u.failed(at) {
                lines += 1;
                counted += n;
            }
            lines += usize::from(u.stored().is_some());
        }
        assert_eq!(
            (lines, counted),
            (4, 120),
            "two reports, two recoveries, every failure counted once"
        );
    }
}
