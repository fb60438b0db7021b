//! Which broker of `mqtt.brokers` the session uses, as a pure state: the order they are tried
//! in, when to move on, and when to try to go back to an earlier one.
//!
//! - A connection attempt that fails (no CONNACK) moves to the next broker in the list (after
//!   the last, the first again); the session's backoff paces the attempts as with one broker.
//! - A connection that was up and is lost is tried again on the same broker first: a broker
//!   that restarts is usually back within the backoff, and a dead one fails that attempt and
//!   the next broker is tried.
//! - While connected to a later broker, every `mqtt.failback_s` the session opens a second
//!   connection to an earlier one (a *candidate*, first broker first) and moves over only once
//!   that broker has accepted it, closing the old connection cleanly (no last will). A broker
//!   that accepts TCP but refuses MQTT never takes the session away from one that works.
//!
//! The outbox carries over unchanged: what was in flight on the old connection is sent again on
//! the new one (at least once; `seq` tells a consumer what it has seen).

use std::time::Duration;

use tokio::time::Instant;

/// The brokers' order and the one in use.
#[derive(Debug, Clone)]
pub struct Brokers {
    count: usize,
    current: usize,
    failback: Duration,
    /// The next failback candidate to try, and when.
    next_failback: Option<(usize, Instant)>,
}

impl Brokers {
    /// `count` brokers (at least one), starting with the first.
    pub fn new(count: usize, failback: Duration) -> Brokers {
        Brokers {
            count: count.max(1),
            current: 0,
            failback,
            next_failback: None,
        }
    }

    /// The broker the next connection attempt goes to.
    pub fn current(&self) -> usize {
        self.current
    }

    /// An attempt on the current broker failed before its CONNACK: the next one is tried.
    pub fn attempt_failed(&mut self) {
        self.current = (self.current + 1) % self.count;
        self.next_failback = None;
    }

    /// The current broker accepted the connection at `now`: an earlier one is tried again
    /// after the failback period.
    pub fn connected(&mut self, now: Instant) {
        self.next_failback = (self.current > 0).then(|| (0, now + self.failback));
    }

    /// A connection that was up is lost: the same broker is tried first.
    pub fn lost(&mut self) {
        self.next_failback = None;
    }

    /// When the next failback candidate is due (None: on the first broker, or not connected).
    pub fn failback_at(&self) -> Option<Instant> {
        self.next_failback.map(|(_, at)| at)
    }

    /// The earlier broker to try now, if one is due at `now`.
    pub fn failback_due(&mut self, now: Instant) -> Option<usize> {
        match self.next_failback {
            Some((i, at)) if at <= now => {
                self.next_failback = None;
                Some(i)
            }
            _ => None,
        }
    }

    /// Candidate broker `i` failed: the next earlier one is tried at once, or, after the last
    /// of them, the first again after the failback period.
    pub fn candidate_failed(&mut self, i: usize, now: Instant) {
        self.next_failback = if i + 1 < self.current {
            Some((i + 1, now))
        } else {
            Some((0, now + self.failback))
        };
    }

    /// Candidate broker `i` accepted the connection at `now`: it is the one in use.
    pub fn moved_to(&mut self, i: usize, now: Instant) {
        self.current = i.min(self.count - 1);
        self.connected(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FB: Duration = Duration::from_secs(60);

    #[test]
    fn a_failed_attempt_moves_on_and_wraps_around() {
        let mut b = Brokers::new(3, FB);
        assert_eq!(b.current(), 0);
        b.attempt_failed();
        assert_eq!(b.current(), 1);
        b.attempt_failed();
        b.attempt_failed();
        assert_eq!(b.current(), 0, "after the last, the first again");
        let mut one = Brokers::new(1, FB);
        one.attempt_failed();
        assert_eq!(one.current(), 0);
    }

    #[test]
    fn a_lost_connection_tries_the_same_broker_first() {
        let mut b = Brokers::new(2, FB);
        b.attempt_failed();
        b.connected(Instant::now());
        b.lost();
        assert_eq!(b.current(), 1);
        assert_eq!(b.failback_at(), None, "no failback while not connected");
    }

    #[test]
    fn no_failback_on_the_first_broker() {
        let mut b = Brokers::new(2, FB);
        let now = Instant::now();
        b.connected(now);
        assert_eq!(b.failback_at(), None);
        assert_eq!(b.failback_due(now + FB * 10), None);
    }

    #[test]
    fn failback_tries_the_earlier_brokers_in_order_then_waits() {
        let mut b = Brokers::new(3, FB);
        b.attempt_failed();
        b.attempt_failed();
        let t0 = Instant::now();
        b.connected(t0);
        assert_eq!(b.failback_due(t0), None, "not before the period");
        assert_eq!(b.failback_due(t0 + FB), Some(0));
        assert_eq!(b.failback_due(t0 + FB), None, "one candidate at a time");
        b.candidate_failed(0, t0 + FB);
        assert_eq!(
            b.failback_due(t0 + FB),
            Some(1),
            "the next earlier one at once"
        );
        b.candidate_failed(1, t0 + FB);
        assert_eq!(b.failback_due(t0 + FB), None);
        assert_eq!(b.failback_at(), Some(t0 + FB + FB), "the first again later");
        assert_eq!(b.current(), 2, "still on the broker that works");
        b.moved_to(1, t0 + FB * 2);
        assert_eq!(b.current(), 1);
        assert_eq!(b.failback_at(), Some(t0 + FB * 3), "still not the first");
        b.moved_to(0, t0 + FB * 3);
        assert_eq!(b.failback_at(), None);
    }
}
