//! How large a message may be: the configured `mqtt.max_message_bytes`, the maximum packet
//! size the broker announced at connect (MQTT 5), and what the broker showed by closing the
//! connection on a message (the set-aside [`super::outbox`] rows).
//! Shared by the session, which sets aside what cannot fit, and the evidence makers, which
//! encode pictures to fit.
//!
//! Sizes are whole MQTT PUBLISH packets (fixed header, topic, packet id, payload), which is
//! what brokers limit (mosquitto's `max_packet_size`).

use std::sync::atomic::{AtomicUsize, Ordering};

/// Room kept for a snapshot's topic and packet header below the limit.
pub const TOPIC_ROOM: usize = 512;

/// The size of the QoS 1 PUBLISH packet carrying `payload` bytes on `topic`, as MQTT 5 sends
/// it (one byte more than 3.1.1, for its empty property list: a safe overestimate there).
pub fn packet_bytes(topic: &str, payload: usize) -> usize {
    // Topic length prefix, topic, packet id, property length, payload.
    let remaining = 2 + topic.len() + 2 + 1 + payload;
    let length_bytes = match remaining {
        0..=127 => 1,
        128..=16_383 => 2,
        16_384..=2_097_151 => 3,
        _ => 4,
    };
    1 + length_bytes + remaining
}

/// The message size limit of one session.
#[derive(Debug)]
pub struct MessageLimit {
    configured: usize,
    /// The smallest packet the broker closed the connection on (`usize::MAX`: none).
    refused: AtomicUsize,
    /// The largest packet the broker said it takes, at the last connect (`usize::MAX`: none).
    announced: AtomicUsize,
}

impl MessageLimit {
    /// A limit of `configured` bytes per packet.
    pub fn new(configured: usize) -> Self {
        MessageLimit {
            configured,
            refused: AtomicUsize::new(usize::MAX),
            announced: AtomicUsize::new(usize::MAX),
        }
    }

    /// The limit `mqtt.max_message_bytes` sets.
    pub fn of(mqtt: &crate::config::Mqtt) -> Self {
        MessageLimit::new(usize::try_from(mqtt.max_message_bytes.0).unwrap_or(usize::MAX))
    }

    /// `evidence` with its size cap lowered to [`MessageLimit::picture_bytes`].
    pub fn fit(
        &self,
        mut evidence: crate::config::EvidenceSettings,
    ) -> crate::config::EvidenceSettings {
        evidence.max_bytes = evidence.max_bytes.min(self.picture_bytes());
        evidence
    }

    /// The configured limit.
    pub fn configured(&self) -> usize {
        self.configured
    }

    /// The broker closed the connection on a `packet`-byte message every time it went alone.
    pub fn refused(&self, packet: usize) {
        self.refused.fetch_min(packet, Ordering::Relaxed);
    }

    /// The broker announced its maximum packet size at connect (MQTT 5), or did not.
    pub fn announced(&self, max_packet: Option<usize>) {
        self.announced
            .store(max_packet.unwrap_or(usize::MAX), Ordering::Relaxed);
    }

    /// The maximum packet size the broker announced at the last connect, if it did.
    pub fn announced_at(&self) -> Option<usize> {
        let a = self.announced.load(Ordering::Relaxed);
        (a != usize::MAX).then_some(a)
    }

    /// The smallest packet the broker refused, if any.
    pub fn refused_at(&self) -> Option<usize> {
        let r = self.refused.load(Ordering::Relaxed);
        (r != usize::MAX).then_some(r)
    }

    /// Why a `packet`-byte message cannot be sent, or `None` if it may be.
    pub fn check(&self, packet: usize) -> Option<String> {
        if packet > self.configured {
            return Some(format!(
                "{packet} bytes, above mqtt.max_message_bytes ({})",
                self.configured
            ));
        }
        if let Some(a) = self.announced_at().filter(|&a| packet > a) {
            return Some(format!(
                "{packet} bytes, above the broker's maximum packet size ({a}, announced when it accepted the connection)"
            ));
        }
        self.refused_at()
            .filter(|&r| packet >= r)
            .map(|r| format!("{packet} bytes, not below a {r}-byte message the broker refused"))
    }

    /// The largest evidence JPEG to make: under the configured limit and the broker's announced
    /// one, less room for its topic, and, once the broker refused a message, under half of that
    /// message (pictures then stay small enough to pass on the first try, whatever the broker's
    /// real limit).
    pub fn picture_bytes(&self) -> usize {
        let limit = self
            .configured
            .min(self.announced_at().unwrap_or(usize::MAX));
        let configured = limit.saturating_sub(TOPIC_ROOM);
        match self.refused_at() {
            Some(r) => configured.min(r / 2),
            None => configured,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packet_sizes_count_the_header_like_the_mqtt_encoder() {
        // rumqttc's encoder test: an 11-byte topic and 265 bytes make 281 bytes without a
        // packet id; QoS 1 adds its 2 and MQTT 5 its empty property list's length byte.
        assert_eq!(packet_bytes("hello/world", 265), 284);
        assert_eq!(packet_bytes("t", 0), 1 + 1 + 6);
        assert_eq!(packet_bytes("t", 200), 1 + 2 + 206);
    }

    #[test]
    fn a_refused_size_lowers_the_picture_target_and_stops_larger_messages() {
        let l = MessageLimit::new(256 * 1024);
        assert_eq!(l.picture_bytes(), 256 * 1024 - TOPIC_ROOM);
        assert!(l.check(256 * 1024).is_none());
        assert!(
            l.check(256 * 1024 + 1)
                .is_some_and(|m| m.contains("mqtt.max_message_bytes"))
        );
        l.refused(60_000);
        l.refused(90_000);
        assert_eq!(l.refused_at(), Some(60_000), "the smallest refusal counts");
        assert_eq!(l.picture_bytes(), 30_000);
        assert!(l.check(59_999).is_none());
        assert!(l.check(60_000).is_some_and(|m| m.contains("refused")));
    }

    #[test]
    fn an_announced_maximum_bounds_pictures_and_messages_until_the_next_connect() {
        let l = MessageLimit::new(256 * 1024);
        l.announced(Some(30_000));
        assert_eq!(l.picture_bytes(), 30_000 - TOPIC_ROOM);
        assert!(l.check(30_000).is_none());
        assert!(l.check(30_001).is_some_and(|m| m.contains("announced")));
        l.announced(None);
        assert_eq!(l.picture_bytes(), 256 * 1024 - TOPIC_ROOM);
        assert!(l.check(30_001).is_none());
    }
}
