//! The camera's pre-event buffer (`[clips]`, docs/mqtt.md "Clips"): the encoded stream as the
//! camera sent it (H.264/H.265 access units out of the parser, never decoded or re-encoded),
//! a few seconds deep, bounded in bytes, always starting at a key frame, so that a clip of what
//! happened before an incident can be cut from it. Pure: the units are anything with a size
//! (GStreamer buffers in the agent, numbers in the tests); the pipeline's probe pushes them.
//!
//! No allocation per unit once the queue has grown to its working size: units leave from the
//! front a whole group of pictures (key frame to key frame) at a time.

use std::collections::VecDeque;
use std::time::{Duration, SystemTime};

/// One access unit.
#[derive(Debug, Clone)]
pub struct Unit<T> {
    /// The unit (a reference to the camera's bytes).
    pub data: T,
    /// Its size in bytes.
    pub bytes: usize,
    /// When it arrived.
    pub at: SystemTime,
    /// A key frame (a clip may start here).
    pub key: bool,
}

/// Why a clip cannot be cut (yet).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Gap {
    /// Nothing is buffered (the camera sends nothing, or no key frame came yet).
    Empty,
    /// The buffer no longer reaches back to the start: it holds `oldest` to `newest`.
    RolledPast {
        /// The oldest unit buffered.
        oldest: SystemTime,
        /// The newest.
        newest: SystemTime,
    },
    /// The end has not arrived yet.
    NotYet {
        /// The newest unit buffered.
        newest: SystemTime,
    },
}

/// The buffer.
#[derive(Debug)]
pub struct Ring<T> {
    units: VecDeque<Unit<T>>,
    bytes: usize,
    max_bytes: usize,
    keep: Duration,
}

impl<T: Clone> Ring<T> {
    /// A buffer keeping `keep` of stream in at most `max_bytes`, with room for `capacity`
    /// units before it grows.
    pub fn new(keep: Duration, max_bytes: usize, capacity: usize) -> Self {
        Ring {
            units: VecDeque::with_capacity(capacity),
            bytes: 0,
            max_bytes,
            keep,
        }
    }

    /// Forget everything (the stream's format changed, or the camera reconnected).
    pub fn clear(&mut self) {
        self.units.clear();
        self.bytes = 0;
    }

    /// Bytes held.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// The oldest and newest arrival held.
    pub fn span(&self) -> Option<(SystemTime, SystemTime)> {
        Some((self.units.front()?.at, self.units.back()?.at))
    }

    /// Add the next unit. Units before the first key frame are not kept; whole groups of
    /// pictures leave from the front while the buffer holds more than its time or its bytes.
    /// A single group larger than the bytes is dropped whole: the buffer starts again at the
    /// next key frame rather than grow without bound.
    pub fn push(&mut self, unit: Unit<T>) {
        if self.units.is_empty() && !unit.key {
            return;
        }
        self.bytes += unit.bytes;
        self.units.push_back(unit);
        while self.over() {
            self.drop_group();
        }
    }

    fn over(&self) -> bool {
        let Some(last) = self.units.back() else {
            return false;
        };
        // The oldest group goes once the next one alone reaches back far enough.
        let next_key = self.units.iter().skip(1).find(|u| u.key);
        let spare =
            next_key.is_some_and(|k| last.at.duration_since(k.at).is_ok_and(|d| d >= self.keep));
        self.bytes > self.max_bytes || spare
    }

    /// Drop the oldest group of pictures (everything up to the next key frame).
    fn drop_group(&mut self) {
        while let Some(u) = self.units.pop_front() {
            self.bytes -= u.bytes;
            if self.units.front().is_none_or(|n| n.key) {
                break;
            }
        }
    }

    /// The units from the last key frame at or before `from` to the last unit at or before
    /// `to`.
    pub fn cut(&self, from: SystemTime, to: SystemTime) -> Result<Vec<Unit<T>>, Gap> {
        let (oldest, newest) = self.span().ok_or(Gap::Empty)?;
        if newest < to {
            return Err(Gap::NotYet { newest });
        }
        let start = self
            .units
            .iter()
            .rposition(|u| u.key && u.at <= from)
            .ok_or(Gap::RolledPast { oldest, newest })?;
        let units: Vec<Unit<T>> = self
            .units
            .iter()
            .skip(start)
            .take_while(|u| u.at <= to)
            .cloned()
            .collect();
        if units.is_empty() {
            return Err(Gap::RolledPast { oldest, newest });
        }
        Ok(units)
    }

    /// What a decoder needs for the picture nearest `at` (an evidence still): the units from
    /// the last key frame before that picture to `after` units past it (a decoder that
    /// reorders B-frames holds pictures back until later units arrive), and where the picture
    /// is among them. `time` gives a unit's capture time; units are in decode order, so with
    /// B-frames their times go back and forth. The nearest picture must lie within `within`
    /// of `at`, and a unit at or after `at` must have arrived.
    pub fn around(
        &self,
        at: SystemTime,
        within: Duration,
        after: usize,
        time: impl Fn(&Unit<T>) -> SystemTime,
    ) -> Result<(Vec<Unit<T>>, usize), Gap> {
        let (oldest, newest) = self.span().ok_or(Gap::Empty)?;
        if !self.units.iter().any(|u| time(u) >= at) {
            return Err(Gap::NotYet { newest });
        }
        let off = |u: &Unit<T>| {
            let t = time(u);
            t.duration_since(at)
                .or_else(|_| at.duration_since(t))
                .unwrap_or_default()
        };
        let (nearest, distance) = self
            .units
            .iter()
            .enumerate()
            .map(|(i, u)| (i, off(u)))
            .min_by_key(|&(_, d)| d)
            .ok_or(Gap::Empty)?;
        let key = self
            .units
            .iter()
            .take(nearest + 1)
            .rposition(|u| u.key)
            .filter(|_| distance <= within)
            .ok_or(Gap::RolledPast { oldest, newest })?;
        let end = nearest.saturating_add(after).saturating_add(1);
        let units = self.units.range(key..end.min(self.units.len()));
        Ok((units.cloned().collect(), nearest - key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: SystemTime = SystemTime::UNIX_EPOCH;

    /// 10 units a second, a key frame every `gop`, 1 000 bytes each.
    fn filled(ring: &mut Ring<u32>, seconds: u32, gop: u32) {
        for n in 0..seconds * 10 {
            ring.push(Unit {
                data: n,
                bytes: 1000,
                at: T0 + Duration::from_millis(u64::from(n) * 100),
                key: n % gop == 0,
            });
        }
    }

    fn at(ms: u64) -> SystemTime {
        T0 + Duration::from_millis(ms)
    }

    #[test]
    fn it_starts_at_a_key_frame_and_keeps_its_time_in_whole_groups() {
        let mut ring = Ring::new(Duration::from_secs(10), 1 << 30, 16);
        ring.push(Unit {
            data: 99,
            bytes: 5,
            at: T0,
            key: false,
        });
        assert_eq!(ring.span(), None, "no key frame yet: nothing kept");
        filled(&mut ring, 30, 20);
        let (oldest, newest) = ring.span().expect("held");
        assert_eq!(newest, at(29_900));
        // The oldest is a key frame (every 2 s), at most one group more than 10 s back.
        let back = newest.duration_since(oldest).expect("order");
        assert!(
            back >= Duration::from_secs(10) && back < Duration::from_secs(12),
            "{back:?}"
        );
        assert_eq!(oldest.duration_since(T0).expect("t").as_millis() % 2000, 0);
        assert_eq!(ring.bytes(), ring.units.len() * 1000);
    }

    #[test]
    fn a_cut_starts_at_the_key_frame_before_its_start_and_ends_at_its_end() {
        let mut ring = Ring::new(Duration::from_secs(10), 1 << 30, 16);
        filled(&mut ring, 30, 20);
        let cut = ring.cut(at(21_000), at(25_000)).expect("cut");
        assert!(cut[0].key);
        assert_eq!(cut[0].data, 200, "the key frame at 20 s");
        assert_eq!(cut.last().map(|u| u.data), Some(250));
        assert_eq!(
            ring.cut(at(5_000), at(25_000))
                .map(|c| c.len())
                .unwrap_err(),
            Gap::RolledPast {
                oldest: at(18_000),
                newest: at(29_900)
            }
        );
        assert!(matches!(
            ring.cut(at(25_000), at(31_000)),
            Err(Gap::NotYet { .. })
        ));
        assert_eq!(
            Ring::<u32>::new(Duration::from_secs(1), 1, 1)
                .cut(T0, T0)
                .unwrap_err(),
            Gap::Empty
        );
    }

    #[test]
    fn a_still_is_decoded_from_the_key_frame_before_the_nearest_picture() {
        let mut ring = Ring::new(Duration::from_secs(10), 1 << 30, 16);
        filled(&mut ring, 30, 20);
        let by_arrival = |u: &Unit<u32>| u.at;
        let near = Duration::from_millis(500);
        let (units, target) = ring.around(at(21_040), near, 2, by_arrival).expect("held");
        assert_eq!(units[0].data, 200, "from the key frame at 20 s");
        assert!(units[0].key);
        assert_eq!(units[target].data, 210, "21.0 s is nearest 21.04 s");
        assert_eq!(units.len(), 13, "two units past the picture for reordering");
        // At the newest unit there is nothing past it to add.
        let (units, target) = ring.around(at(29_900), near, 2, by_arrival).expect("held");
        assert_eq!(units[target].data, 299);
        assert_eq!(units.len(), target + 1);
        assert!(matches!(
            ring.around(at(30_500), near, 2, by_arrival),
            Err(Gap::NotYet { .. })
        ));
        assert!(
            matches!(
                ring.around(at(10_000), near, 2, by_arrival),
                Err(Gap::RolledPast { .. })
            ),
            "long gone: the nearest held picture is seconds away"
        );
        // Capture times out of decode order (B-frames): the nearest by time, not by place.
        let shuffled = |u: &Unit<u32>| match u.data {
            211 => at(21_200),
            212 => at(21_100),
            _ => u.at,
        };
        let (units, target) = ring.around(at(21_190), near, 0, shuffled).expect("held");
        assert_eq!(units[target].data, 211);
        assert_eq!(
            Ring::<u32>::new(Duration::from_secs(1), 1, 1)
                .around(T0, near, 0, by_arrival)
                .unwrap_err(),
            Gap::Empty
        );
    }

    #[test]
    fn bytes_bound_it_even_when_one_group_is_longer_than_its_time() {
        // A key frame once a minute and room for 5 s: bounded by bytes, never by waiting.
        let mut ring = Ring::new(Duration::from_secs(5), 50_000, 16);
        filled(&mut ring, 130, 600);
        assert!(ring.bytes() <= 50_000, "{}", ring.bytes());
        // A long group over the time but under the bytes is kept whole (a clip needs its key).
        let mut ring = Ring::new(Duration::from_secs(5), 1 << 30, 16);
        filled(&mut ring, 30, 600);
        assert_eq!(ring.span().map(|s| s.0), Some(T0));
    }
}
