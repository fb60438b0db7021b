//! Retry delays: exponential from a base, capped, with jitter. Used by each camera's
//! supervisor to reconnect and by the MQTT session to reconnect to its broker. A leaf: it
//! imports nothing of the crate.

use std::time::Duration;

/// Reconnect delays: exponential from `base`, capped, with ±25 % jitter so that many cameras
/// behind one failed switch do not reconnect in lockstep.
#[derive(Debug, Clone)]
pub struct Backoff {
    base: Duration,
    cap: Duration,
    attempt: u32,
}

impl Backoff {
    /// Start at `base`, never exceed `cap`.
    pub fn new(base: Duration, cap: Duration) -> Self {
        Backoff {
            base,
            cap,
            attempt: 0,
        }
    }

    /// The next delay (before jitter is applied by [`Backoff::jittered`]).
    pub fn next_delay(&mut self) -> Duration {
        let d = self
            .base
            .saturating_mul(1u32 << self.attempt.min(16))
            .min(self.cap);
        self.attempt = self.attempt.saturating_add(1);
        d
    }

    /// The next delay with ±25 % jitter, still capped.
    pub fn jittered(&mut self) -> Duration {
        let d = self.next_delay();
        let factor = 0.75 + rand::random::<f64>() * 0.5;
        d.mul_f64(factor).min(self.cap)
    }

    /// Back to the first delay (after a connection that delivered frames).
    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_to_the_cap_and_resets() {
        let mut b = Backoff::new(Duration::from_millis(500), Duration::from_secs(5));
        let seq: Vec<u64> = (0..6).map(|_| b.next_delay().as_millis() as u64).collect();
        assert_eq!(seq, vec![500, 1000, 2000, 4000, 5000, 5000]);
        b.reset();
        assert_eq!(b.next_delay(), Duration::from_millis(500));
        for _ in 0..100 {
            let j = b.jittered();
            assert!(j <= Duration::from_secs(5));
        }
        let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(60));
        let j = b.jittered();
        assert!(
            j >= Duration::from_millis(750) && j <= Duration::from_millis(1250),
            "{j:?}"
        );
    }
}
