//! Time as the rules and the inference loop see it. Everything that decides with time (quiet
//! periods, dwell, confirmation windows, cooldowns) reads it through [`Clock`], so tests run on
//! a [`ManualClock`] and never sleep. Also how the box writes time in payloads and records:
//! [`rfc3339_ms`] (UTC), [`unix_ms`], and its time zone ([`timezone`]).

use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

/// A source of monotonic and wall-clock time.
pub trait Clock: Send + Sync {
    /// Time since an arbitrary fixed start; never goes backwards.
    fn monotonic(&self) -> Duration;
    /// Wall-clock time (UTC).
    fn wall(&self) -> SystemTime;
}

/// The real clocks.
#[derive(Debug, Clone, Copy)]
pub struct SystemClock {
    epoch: Instant,
}

impl SystemClock {
    /// Monotonic time counts from now.
    pub fn new() -> Self {
        SystemClock {
            epoch: Instant::now(),
        }
    }
}

impl Default for SystemClock {
    fn default() -> Self {
        SystemClock::new()
    }
}

impl Clock for SystemClock {
    fn monotonic(&self) -> Duration {
        self.epoch.elapsed()
    }

    fn wall(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// A clock that moves only when told to.
#[derive(Debug)]
pub struct ManualClock {
    now: Mutex<(Duration, SystemTime)>,
}

impl ManualClock {
    /// A clock at monotonic zero and wall time `wall`.
    pub fn new(wall: SystemTime) -> Self {
        ManualClock {
            now: Mutex::new((Duration::ZERO, wall)),
        }
    }

    /// Move both clocks forward by `by`.
    pub fn advance(&self, by: Duration) {
        let mut g = self.now.lock().unwrap_or_else(|p| p.into_inner());
        g.0 += by;
        g.1 += by;
    }
}

impl Clock for ManualClock {
    fn monotonic(&self) -> Duration {
        self.now.lock().unwrap_or_else(|p| p.into_inner()).0
    }

    fn wall(&self) -> SystemTime {
        self.now.lock().unwrap_or_else(|p| p.into_inner()).1
    }
}

/// Milliseconds since the Unix epoch (0 before it).
pub fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default()
}

/// The box's time zone: `TZ`, else `/etc/timezone`, else the zone `/etc/localtime` links to,
/// else `UTC`. Payload times are always UTC; this tells people the box's local clock.
pub fn timezone() -> String {
    if let Ok(tz) = std::env::var("TZ")
        && !tz.trim().is_empty()
    {
        return tz.trim().trim_start_matches(':').to_string();
    }
    if let Ok(tz) = std::fs::read_to_string("/etc/timezone")
        && !tz.trim().is_empty()
    {
        return tz.trim().to_string();
    }
    std::fs::read_link("/etc/localtime")
        .ok()
        .and_then(|p| {
            let s = p.to_string_lossy().to_string();
            s.split_once("zoneinfo/").map(|(_, z)| z.to_string())
        })
        .unwrap_or_else(|| "UTC".into())
}

/// UTC RFC 3339 with milliseconds, e.g. `2026-11-27T23:50:01.123Z`.
pub fn rfc3339_ms(t: SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_told() {
        let c = ManualClock::new(SystemTime::UNIX_EPOCH);
        assert_eq!(c.monotonic(), Duration::ZERO);
        c.advance(Duration::from_millis(1500));
        assert_eq!(c.monotonic(), Duration::from_millis(1500));
        assert_eq!(
            c.wall(),
            SystemTime::UNIX_EPOCH + Duration::from_millis(1500)
        );
    }

    #[test]
    fn system_clock_is_monotonic() {
        let c = SystemClock::new();
        let a = c.monotonic();
        assert!(c.monotonic() >= a);
    }
}
