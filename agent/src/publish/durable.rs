//! The durable outbox: the SQLite [`Store`] and the pure [`Outbox`] state kept in step. Every
//! message the session publishes goes through here: stored (committed, fsynced) first, handed
//! to the MQTT client when the state says so, deleted when the broker acknowledges the packet
//! that carried it. Evictions (the outbox is over its byte bound) are deleted, counted and
//! logged at ERROR: they are data loss.
//!
//! A message that cannot be carried (larger than the limit, or one the broker closed the
//! connection on every time it went alone, see [`super::outbox`]) is set aside: moved to the
//! store's dead letters, counted and logged at ERROR, and its lane moves on.
//!
//! The counters the health message reports are shared through [`OutboxGauge`].

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use super::limit::{MessageLimit, packet_bytes};
use super::outbox::{Blame, LANES, Lane, Outbox};
use super::spill::{SPILL_BYTES, Spill};
use super::store::{Store, StoreError};
use super::{Message, Outgoing};

/// Messages above this many bytes may be refused for their size: once the broker refused one,
/// each of them goes alone, once, before it is set aside.
const LARGE: usize = 16 * 1024;

/// The `reason` of a `close` sent at start for an incident the agent left open.
pub const ORPHAN_REASON: &str = "closed at start: the agent stopped (crash, kill or power cut) before it could close this incident";

/// The `reason` of such a `close` when the outbox file could only be read later than the start.
pub const LATE_ORPHAN_REASON: &str = "closed after start: the agent stopped (crash, kill or power cut) before it could close this incident, and its outbox file could not be used until now";

/// Outbox figures for the health message, updated by the session.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OutboxStats {
    /// Rows per lane (fire, security, health, telemetry).
    pub depth: [usize; 4],
    /// When the oldest row of each lane was stored (Unix milliseconds).
    pub oldest_ms: [Option<u64>; 4],
    /// Rows evicted per lane since start.
    pub evicted: [u64; 4],
    /// Rows set aside as dead letters per lane since start.
    pub dead_letters: [u64; 4],
    /// Dead letters kept in the file.
    pub dead_stored: u64,
    /// The smallest message the broker closed the connection on (bytes), if any.
    pub refused_at: Option<usize>,
    /// Stored bytes and the bound.
    pub bytes: usize,
    /// The configured bound.
    pub max_bytes: usize,
    /// Messages the broker acknowledged since start.
    pub acked: u64,
    /// Whether the session is connected to the broker.
    pub connected: bool,
    /// When the broker last acknowledged a message (Unix milliseconds).
    pub last_ack_ms: Option<u64>,
    /// Why the last connection attempt failed or the last connection ended.
    pub broker_error: Option<String>,
    /// The broker in use (`host:port`) and since when (Unix milliseconds); None while not
    /// connected.
    pub broker: Option<(String, u64)>,
    /// Why the outbox file is not storing messages now (None: it is, they are durable).
    pub store_error: Option<String>,
    /// Messages published without being on disk since start (kept in memory only).
    pub not_durable: u64,
}

/// Shared, read-mostly view of [`OutboxStats`].
#[derive(Debug, Default)]
pub struct OutboxGauge(Mutex<OutboxStats>);

impl OutboxGauge {
    /// The latest figures.
    pub fn get(&self) -> OutboxStats {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn set(&self, s: OutboxStats) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = s;
    }
}

/// The outbox: store + state.
#[derive(Debug)]
pub struct Durable {
    pub(super) store: Store,
    pub(super) state: Outbox,
    gauge: Arc<OutboxGauge>,
    acked: u64,
    link: (bool, Option<u64>, Option<String>),
    broker: Option<(String, u64)>,
    tap: Option<tokio::sync::broadcast::Sender<std::sync::Arc<str>>>,
    limit: Arc<MessageLimit>,
    dead: [u64; 4],
    dead_stored: u64,
    /// What the store could not take, published without durability.
    pub(super) spill: Spill,
    /// Why the store is in memory instead of the file (see `super::memory`).
    pub(super) memory: Option<String>,
    /// Why the last append failed, until one succeeds.
    store_error: Option<String>,
    not_durable: u64,
    /// `outbox.max_bytes`, for going back to the file.
    pub(super) file_max_bytes: usize,
}

impl Durable {
    /// Open the outbox file at `path` (created if missing; moved aside and started afresh if
    /// unreadable) and reload what it holds. Returns the outbox and, when the old file was
    /// unreadable, where it was moved.
    pub fn open(
        path: &Path,
        max_bytes: usize,
        max_in_flight: usize,
    ) -> Result<(Durable, Option<PathBuf>), StoreError> {
        let (store, aside) = Store::open(path)?;
        Ok((Durable::with_store(store, max_bytes, max_in_flight)?, aside))
    }

    /// An outbox over `store` (a file or in memory), rebuilt from what it holds.
    pub(super) fn with_store(
        store: Store,
        max_bytes: usize,
        max_in_flight: usize,
    ) -> Result<Durable, StoreError> {
        let mut d = Durable {
            store,
            state: Outbox::new(max_bytes, max_in_flight),
            gauge: Arc::new(OutboxGauge::default()),
            acked: 0,
            link: (false, None, None),
            broker: None,
            tap: None,
            limit: Arc::new(MessageLimit::new(usize::MAX)),
            dead: [0; 4],
            dead_stored: 0,
            spill: Spill::new(SPILL_BYTES),
            memory: None,
            store_error: None,
            not_durable: 0,
            file_max_bytes: max_bytes,
        };
        d.load()?;
        Ok(d)
    }

    /// Rebuild the state from what the store holds.
    pub(super) fn load(&mut self) -> Result<(), StoreError> {
        self.dead_stored = self.store.dead_letters()?;
        for row in self.store.rows()? {
            let evicted = self.state.insert(row);
            self.delete_evicted(&evicted);
        }
        self.update_gauge();
        Ok(())
    }

    /// Hold messages to `limit` (the session's, shared with the evidence makers).
    pub fn set_limit(&mut self, limit: Arc<MessageLimit>) {
        self.limit = limit;
    }

    /// Why `m` cannot be sent, if it cannot.
    pub fn too_large(&self, m: &Message) -> Option<String> {
        self.limit.check(packet_bytes(&m.topic, m.payload.len()))
    }

    /// The shared figures.
    pub fn gauge(&self) -> Arc<OutboxGauge> {
        Arc::clone(&self.gauge)
    }

    /// Send the payload of every stored incident event to `tap` (the diagnostics socket's
    /// live stream), when someone listens.
    pub fn tap_incidents(&mut self, tap: tokio::sync::broadcast::Sender<std::sync::Arc<str>>) {
        self.tap = Some(tap);
    }

    /// The session connected (`error` None) or lost / failed to get a connection.
    pub fn link_changed(&mut self, connected: bool, error: Option<String>) {
        self.link.0 = connected;
        if error.is_some() || connected {
            self.link.2 = error;
        }
        if !connected {
            self.broker = None;
        }
        self.update_gauge();
    }

    /// The session connected to the broker at `address`.
    pub fn connected_to(&mut self, address: &str) {
        let now = crate::clock::unix_ms(std::time::SystemTime::now());
        self.broker = Some((address.to_string(), now));
        self.link_changed(true, None);
    }

    /// The session left its connection itself (to move to another broker): whatever was
    /// handed over goes again on the next, and no message is blamed.
    pub fn left(&mut self) {
        self.state.requeue();
        self.link_changed(false, None);
    }

    /// The last incident `seq` given out.
    pub fn last_seq(&self) -> Result<u64, StoreError> {
        self.store.last_seq()
    }

    /// Raise the `seq` high-water mark to at least `n`.
    pub fn raise_seq(&self, n: u64) -> Result<(), StoreError> {
        self.store.raise_seq(n)
    }

    /// Rows stored.
    pub fn len(&self) -> usize {
        self.state.len()
    }

    /// Whether nothing waits in the store.
    pub fn is_empty(&self) -> bool {
        self.state.is_empty()
    }

    /// Whether nothing waits at all (store and spill).
    pub fn nothing_waits(&self) -> bool {
        self.state.is_empty() && self.spill.is_empty()
    }

    /// The oldest message the store could not take, to publish without durability.
    pub fn spilled(&self) -> Option<&Message> {
        self.spill.front()
    }

    /// The oldest spilled message was published (or dropped by the caller).
    pub fn pop_spilled(&mut self) {
        self.spill.pop_front();
        self.update_gauge();
    }

    /// Messages waiting in the spill.
    pub fn spilled_len(&self) -> usize {
        self.spill.len()
    }

    /// Store what the agent hands over (an incident gets its `seq` here, committed with its
    /// rows). On a store failure the messages go to the bounded spill, to be published without
    /// durability, and the error is returned for the caller to report.
    pub fn enqueue(&mut self, out: Outgoing) -> Result<Option<u64>, StoreError> {
        let lane = match &out {
            Outgoing::Incident { lane, .. } | Outgoing::Plain { lane, .. } => *lane,
        };
        let listening = self.tap.as_ref().filter(|t| t.receiver_count() > 0);
        let mut event: Option<std::sync::Arc<str>> = None;
        let result = match out {
            Outgoing::Incident { lane, build } => self.store.append(lane, true, |seq| {
                let messages = build(seq.unwrap_or(0));
                if listening.is_some() {
                    event = messages
                        .first()
                        .and_then(|m| std::str::from_utf8(&m.payload).ok())
                        .map(std::sync::Arc::from);
                }
                messages
            }),
            Outgoing::Plain { lane, messages } => self.store.append(lane, false, |_| messages),
        };
        if let (Some(tap), Some(e)) = (listening, event) {
            let _ = tap.send(e);
        }
        match result {
            Ok((seq, rows)) => {
                if self.memory.is_some() {
                    self.not_durable += rows.len() as u64;
                } else {
                    self.store_error = None;
                }
                for row in rows {
                    crate::prometheus::outbox_enqueued(lane_name(row.lane));
                    let evicted = self.state.insert(row);
                    self.delete_evicted(&evicted);
                }
                if self.limit.refused_at().is_some() {
                    self.state.suspect_above(LARGE);
                }
                self.update_gauge();
                Ok(seq)
            }
            Err(e) => {
                self.not_durable += e.messages.len() as u64;
                let dropped = self.spill.push(lane, e.messages);
                if dropped > 0 {
                    tracing::error!(
                        dropped,
                        "messages the outbox could not store exceed the memory bound ({SPILL_BYTES} bytes): the oldest of the lowest lanes were dropped undelivered; this is data loss"
                    );
                }
                self.store_error = Some(e.error.to_string());
                self.update_gauge();
                Err(e.error)
            }
        }
    }

    /// Close every incident the store holds open (the agent stopped without closing it: a crash,
    /// a power cut): a `close` event now, numbered like any other, with `reason`. Returns how
    /// many were closed; an error only when the open incidents cannot be read. Called at
    /// start, before any camera runs.
    pub fn close_orphans(&mut self, reason: &str) -> Result<usize, StoreError> {
        let open = self.store.open_incidents()?;
        let now = crate::clock::rfc3339_ms(std::time::SystemTime::now());
        let mut closed = 0;
        for (lane, topic, payload) in open {
            let Ok(mut v) = serde_json::from_slice::<serde_json::Value>(&payload) else {
                continue;
            };
            let (reason, now) = (reason.to_string(), now.clone());
            let build = Box::new(move |seq: u64| {
                if let Some(o) = v.as_object_mut() {
                    for key in ["snapshot", "count", "direction", "dwell_s"] {
                        o.remove(key);
                    }
                    o.insert("seq".into(), seq.into());
                    o.insert("state".into(), "close".into());
                    o.insert("frame_time".into(), now.into());
                    o.insert("objects".into(), serde_json::json!([]));
                    o.insert("reason".into(), reason.into());
                }
                vec![Message {
                    topic,
                    payload: v.to_string().into_bytes(),
                    retain: false,
                }]
            });
            // A store that cannot take the close keeps it in the spill, which still sends it:
            // a full disk must not stop the start (the file closes it again next time).
            if let Err(e) = self.enqueue(Outgoing::Incident { lane, build }) {
                tracing::error!(
                    "cannot store the close of an incident left open ({e}); it goes out without durability"
                );
            }
            closed += 1;
        }
        Ok(closed)
    }

    fn delete_evicted(&mut self, evicted: &[super::outbox::Row]) {
        for row in evicted {
            crate::prometheus::outbox_evicted(lane_name(row.lane));
            tracing::error!(
                lane = lane_name(row.lane),
                row = row.id,
                bytes = row.bytes,
                "outbox full (outbox.max_bytes): message evicted undelivered; this is data loss"
            );
            if let Err(e) = self.store.delete(row.id) {
                tracing::error!("cannot delete an evicted outbox row: {e}");
            }
        }
    }

    /// The next message to hand to the client (not yet marked handed). One that cannot fit
    /// the limit is set aside on the way.
    pub fn next_message(&mut self) -> Option<(u64, Message)> {
        loop {
            let row = self.state.next()?;
            match self.store.message(row.id) {
                Ok(Some(m)) => {
                    let bytes = packet_bytes(&m.topic, m.payload.len());
                    match self.limit.check(bytes) {
                        None => return Some((row.id, m)),
                        Some(why) => {
                            self.state.remove(row.id);
                            self.set_aside(row, &m.topic, &format!("too large to send: {why}"));
                        }
                    }
                }
                Ok(None) => {
                    // Deleted under us (by hand, with sqlite3): forget it.
                    tracing::warn!(row = row.id, "outbox row vanished from the file; skipped");
                    self.state.remove(row.id);
                }
                Err(e) => {
                    tracing::error!("cannot read the outbox: {e}");
                    return None;
                }
            }
        }
    }

    /// Row `id` was handed to the client.
    pub fn handed(&mut self, id: u64) {
        self.state.handed(id);
    }

    /// The client sent row `id` as packet `pkid`.
    pub fn sent(&mut self, id: u64, pkid: u16) {
        let now_ms = crate::clock::unix_ms(std::time::SystemTime::now());
        self.state.sent(id, pkid, now_ms);
    }

    /// The broker acknowledged `pkid`: delete the row it carried. True if it carried one.
    pub fn acked(&mut self, pkid: u16) -> bool {
        let Some(row) = self.state.acked(pkid) else {
            return false;
        };
        if let Err(e) = self.store.delete(row.id) {
            // It stays in the file and goes again after a restart: a duplicate, not a loss.
            tracing::error!("cannot delete an acknowledged outbox row: {e}");
        }
        self.acked += 1;
        let now_ms = crate::clock::unix_ms(std::time::SystemTime::now());
        crate::prometheus::outbox_acked(
            lane_name(row.lane),
            std::time::Duration::from_millis(now_ms.saturating_sub(row.created_ms)),
        );
        self.link.1 = Some(now_ms);
        self.update_gauge();
        true
    }

    /// The broker refused packet `pkid` with `reason` (MQTT 5): set the row aside as a dead
    /// letter when the refusal is `lasting` or came the fifth time in a row, else send it
    /// again after the returned pause (1, 2, 4, 8 s: a broker short of quota is not hammered).
    pub fn refused(
        &mut self,
        pkid: u16,
        reason: &str,
        lasting: bool,
    ) -> Option<std::time::Duration> {
        match self.state.refused(pkid, lasting) {
            Some(Blame::SetAside(row)) => {
                let topic = match self.store.message(row.id) {
                    Ok(Some(m)) => m.topic,
                    _ => String::new(),
                };
                self.set_aside(row, &topic, reason);
                None
            }
            Some(Blame::Strike(id)) => {
                let n = self.state.refusals(id).clamp(1, 7);
                let pause = std::time::Duration::from_secs(1 << (n - 1));
                tracing::warn!(
                    row = id,
                    pause_s = pause.as_secs(),
                    "{reason}; sending it again"
                );
                Some(pause)
            }
            Some(Blame::None) => None,
            None => {
                // The birth message, or one kept only in memory: no row to set aside.
                tracing::warn!(pkid, "{reason} (a message the outbox does not hold)");
                None
            }
        }
    }

    /// The connection dropped: whatever was handed goes again, except a row the broker
    /// closed the connection on every time it went alone: that one is set aside, and its size
    /// is remembered as one the broker refuses. True when a row was blamed for the drop (the
    /// cause is known and dealt with: no reason to wait longer before reconnecting).
    pub fn disconnected(&mut self) -> bool {
        let now_ms = crate::clock::unix_ms(std::time::SystemTime::now());
        let row = match self.state.disconnected(now_ms) {
            Blame::None => return false,
            Blame::Strike(_) => return true,
            Blame::SetAside(row) => row,
        };
        let (topic, bytes) = match self.store.message(row.id) {
            Ok(Some(m)) => {
                let bytes = packet_bytes(&m.topic, m.payload.len());
                (m.topic, bytes)
            }
            _ => (String::new(), row.bytes),
        };
        // Small messages are not refused for their size; do not shrink pictures for them.
        if bytes > LARGE {
            self.limit.refused(bytes);
            self.state.suspect_above(LARGE);
        }
        let why = format!(
            "the broker closed the connection each of the {} times this {bytes}-byte message was sent alone (a broker message size limit, or a topic it does not allow)",
            super::outbox::MAX_STRIKES
        );
        self.set_aside(row, &topic, &why);
        true
    }

    /// Move `row` (already out of the state) to the dead letters, count and report it.
    fn set_aside(&mut self, row: super::outbox::Row, topic: &str, why: &str) {
        crate::prometheus::outbox_dead_letter(lane_name(row.lane));
        self.dead[row.lane as usize] += 1;
        tracing::error!(
            lane = lane_name(row.lane),
            row = row.id,
            topic,
            "message set aside as a dead letter (vigil outbox dead lists it): {why}"
        );
        match self.store.set_aside(row.id, why) {
            Ok(()) => {
                self.dead_stored = self.store.dead_letters().unwrap_or(self.dead_stored + 1);
            }
            Err(e) => tracing::error!("cannot move a message to the dead letters: {e}"),
        }
        self.update_gauge();
    }

    pub(super) fn update_gauge(&self) {
        let spilled = self.spill.lost();
        self.gauge.set(OutboxStats {
            depth: LANES.map(|l| self.state.depth(l)),
            oldest_ms: LANES.map(|l| self.state.oldest_ms(l)),
            evicted: LANES.map(|l| self.state.evicted(l) + spilled[l as usize]),
            dead_letters: self.dead,
            dead_stored: self.dead_stored,
            refused_at: self.limit.refused_at(),
            bytes: self.state.bytes(),
            max_bytes: self.state.max_bytes(),
            acked: self.acked,
            connected: self.link.0,
            last_ack_ms: self.link.1,
            broker_error: self.link.2.clone(),
            broker: self.broker.clone(),
            store_error: self.memory.clone().or_else(|| self.store_error.clone()),
            not_durable: self.not_durable,
        });
    }
}

/// The name a lane has in logs, health and docs.
pub fn lane_name(lane: Lane) -> &'static str {
    match lane {
        Lane::Fire => "fire",
        Lane::Security => "security",
        Lane::Health => "health",
        Lane::Telemetry => "telemetry",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plain(lane: Lane, topic: &str, bytes: usize) -> Outgoing {
        Outgoing::Plain {
            lane,
            messages: vec![Message {
                topic: topic.into(),
                payload: vec![b'x'; bytes],
                retain: false,
            }],
        }
    }

    fn topics(path: &Path) -> Vec<String> {
        let db = rusqlite::Connection::open(path).expect("open with a second connection");
        let mut st = db
            .prepare("SELECT topic FROM outbox ORDER BY id")
            .expect("prepare");
        st.query_map([], |r| r.get::<_, String>(0))
            .expect("query")
            .filter_map(Result::ok)
            .collect()
    }

    #[test]
    fn a_full_outbox_on_disk_evicts_lowest_lane_oldest_first_and_keeps_fire() {
        let dir = std::env::temp_dir().join(format!("vigil-durable-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("outbox.db");
        // Room for four 1000-byte messages (topics are 2 bytes).
        let (mut d, _) = Durable::open(&path, 4 * 1002, 8).expect("open");
        d.enqueue(plain(Lane::Telemetry, "t1", 1000))
            .expect("store");
        d.enqueue(plain(Lane::Security, "s1", 1000)).expect("store");
        d.enqueue(plain(Lane::Health, "h1", 1000)).expect("store");
        d.enqueue(plain(Lane::Telemetry, "t2", 1000))
            .expect("store");
        let fire = |d: &mut Durable, n: u64| {
            d.enqueue(Outgoing::Incident {
                lane: Lane::Fire,
                build: Box::new(move |seq| {
                    assert_eq!(seq, n, "fire events are numbered in order");
                    vec![Message {
                        topic: format!("f{seq}"),
                        payload: vec![b'f'; 1000],
                        retain: false,
                    }]
                }),
            })
            .expect("store")
        };
        assert_eq!(fire(&mut d, 1), Some(1));
        assert_eq!(
            topics(&path),
            ["s1", "h1", "t2", "f1"],
            "oldest telemetry first"
        );
        fire(&mut d, 2);
        assert_eq!(
            topics(&path),
            ["s1", "h1", "f1", "f2"],
            "then the next telemetry"
        );
        fire(&mut d, 3);
        assert_eq!(topics(&path), ["s1", "f1", "f2", "f3"], "then health");
        fire(&mut d, 4);
        assert_eq!(topics(&path), ["f1", "f2", "f3", "f4"], "then security");
        fire(&mut d, 5);
        assert_eq!(
            topics(&path),
            ["f2", "f3", "f4", "f5"],
            "fire goes only when nothing else is left, oldest first"
        );
        let g = d.gauge().get();
        assert_eq!(g.evicted, [1, 1, 1, 2]);
        assert_eq!(g.depth, [4, 0, 0, 0]);
        // Reopened with the same bound, the file and the state agree, and numbering goes on.
        drop(d);
        let (mut d, aside) = Durable::open(&path, 4 * 1002, 8).expect("reopen");
        assert!(aside.is_none());
        assert_eq!(d.len(), 4);
        assert_eq!(
            d.next_message().map(|(_, m)| m.topic),
            Some("f2".to_string())
        );
        assert_eq!(fire(&mut d, 6), Some(6));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn rows_are_deleted_only_by_the_ack_of_the_packet_that_carried_them() {
        let dir = std::env::temp_dir().join(format!("vigil-durable-ack-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("outbox.db");
        let (mut d, _) = Durable::open(&path, 1 << 20, 8).expect("open");
        d.enqueue(plain(Lane::Security, "a", 10)).expect("store");
        d.enqueue(plain(Lane::Security, "b", 10)).expect("store");
        let (a, _) = d.next_message().expect("a");
        d.handed(a);
        let (b, _) = d.next_message().expect("b");
        d.handed(b);
        d.sent(a, 1);
        d.sent(b, 2);
        assert!(!d.acked(9), "unknown packet");
        assert!(d.acked(2));
        assert_eq!(topics(&path), ["a"]);
        // The connection drops before a's ack: a goes again, and survives a restart meanwhile.
        d.disconnected();
        drop(d);
        let (mut d, _) = Durable::open(&path, 1 << 20, 8).expect("reopen");
        assert_eq!(
            d.next_message().map(|(_, m)| m.topic),
            Some("a".to_string())
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn incidents_left_open_by_a_crash_are_closed_at_the_next_start() {
        let dir = std::env::temp_dir().join(format!("vigil-durable-orphan-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("outbox.db");
        let (mut d, _) = Durable::open(&path, 1 << 20, 8).expect("open");
        d.enqueue(Outgoing::Incident {
            lane: Lane::Fire,
            build: Box::new(|seq| {
                vec![
                    Message {
                        topic: "v/incidents/cam".into(),
                        payload: format!(
                            r#"{{"id":"x","seq":{seq},"state":"open","type":"fire","objects":[{{}}],"snapshot":{{}},"frame_time":"t0"}}"#
                        )
                        .into_bytes(),
                        retain: false,
                    },
                    Message {
                        topic: "v/incidents/cam/x/snapshot".into(),
                        payload: vec![0xFF],
                        retain: false,
                    },
                ]
            }),
        })
        .expect("store");
        drop(d); // a crash: nothing closed it
        let (mut d, _) = Durable::open(&path, 1 << 20, 8).expect("reopen");
        assert_eq!(d.close_orphans("agent crashed").expect("close"), 1);
        assert_eq!(d.close_orphans("again").expect("nothing left"), 0);
        let mut sent = Vec::new();
        while let Some((id, m)) = d.next_message() {
            d.handed(id);
            sent.push(m);
        }
        let close: serde_json::Value =
            serde_json::from_slice(&sent.last().expect("the close").payload).expect("json");
        assert_eq!(close["state"], "close");
        assert_eq!(close["seq"], 2);
        assert_eq!(close["id"], "x");
        assert_eq!(close["reason"], "agent crashed");
        assert_eq!(close["objects"], serde_json::json!([]));
        assert!(close.get("snapshot").is_none() && close["frame_time"] != "t0");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
