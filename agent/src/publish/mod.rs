//! Publish: the transport, the MQTT session towards the operations centre. It carries
//! messages as topic and bytes; what they say is their owners' (the incident payload in
//! `incident`, health and camera status in `telemetry`). What it writes itself is about
//! itself: the device's status ([`presence`]), the outbox's figures ([`stats`]), and the
//! `close` of an incident left open by a crash ([`durable`]). The topics are [`topics`].
//!
//! One tokio task owns the session. Everything it publishes, except the retained device
//! status, goes through the durable outbox ([`durable`]): an incident event gets its `seq` and
//! is committed to SQLite (with its snapshot) before it is handed to the MQTT client, and its
//! row is deleted only when the broker's PUBACK for that exact packet arrives. Rows go out by
//! lane (fire/smoke, security, camera health, telemetry), in store order within a lane.
//!
//! Each connection gets a fresh rumqttc client and event loop: when a connection drops, the old
//! one is dropped with whatever it still held, every unacknowledged row becomes pending again,
//! and the next connection sends it again. Redelivery is the outbox's job: rumqttc discards
//! unacknowledged QoS 1 publishes when the broker comes back without a session, and the
//! broker's session is never relied upon. Packet ids are matched to rows through the order in
//! which the client reports sending them (`Outgoing::Publish(pkid)`), which is the order they
//! were handed over on that connection.
//!
//! A message the broker cannot take does not block its lane: one larger than
//! `mqtt.max_message_bytes` is never sent, and one the broker closes the connection on is
//! isolated and, at the third time, set aside as a dead letter ([`outbox`], [`durable`]). The
//! reconnect backoff starts again only after a connection has stayed up for [`STABLE`] or was
//! ended by a message now isolated or set aside, so a broker that drops every connection right
//! after CONNACK for no known reason is not hammered.
//!
//! On every connect the retained birth message (`online`) goes first; the broker publishes the
//! retained last will (`offline`) if the connection drops; on shutdown the session keeps
//! delivering for up to `outbox.flush_s`, publishes `stopped` and disconnects. What is not
//! delivered by then stays in the outbox for the next start.

pub mod durable;
pub mod failover;
pub mod inspect;
pub mod limit;
pub mod memory;
pub mod outbox;
pub mod presence;
pub mod roundtrip;
pub mod spill;
pub mod stats;
pub mod store;
pub mod store_error;
pub mod tls;
pub mod topics;
pub mod wire;

use std::collections::VecDeque;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use crate::backoff::Backoff;
use crate::config::Mqtt;
pub use durable::{Durable, OutboxGauge, OutboxStats};
use failover::Brokers;
pub use outbox::Lane;
use presence::DeviceState;
pub use presence::{Inventory, ModelLine};
pub use topics::Identity;
use wire::{HandError, Link, Wire};

/// A message ready to publish.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    /// Topic.
    pub topic: String,
    /// Payload bytes.
    pub payload: Vec<u8>,
    /// Retained flag.
    pub retain: bool,
}

/// A function building an incident event's messages from its sequence number.
pub type BuildIncident = Box<dyn FnOnce(u64) -> Vec<Message> + Send>;

/// What the agent hands to the session.
pub enum Outgoing {
    /// An incident event: a function of its sequence number, so that numbers are given in the
    /// order events are stored. Builds the incident, then its snapshot.
    Incident {
        /// Its lane.
        lane: Lane,
        /// Builds the messages.
        build: BuildIncident,
    },
    /// Messages without a sequence number (camera status, health).
    Plain {
        /// Their lane.
        lane: Lane,
        /// The messages.
        messages: Vec<Message>,
    },
}

impl std::fmt::Debug for Outgoing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Outgoing")
    }
}

/// Session settings derived from the config.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// Broker settings.
    pub mqtt: Mqtt,
    /// Device identity (the client id is the device id).
    pub identity: Identity,
    /// What the birth message lists.
    pub inventory: Inventory,
    /// Largest message accepted from the broker.
    pub max_packet_bytes: usize,
    /// Largest message sent (`mqtt.max_message_bytes`, and what the broker refused).
    pub limit: std::sync::Arc<limit::MessageLimit>,
    /// How long a shutdown keeps delivering.
    pub flush: Duration,
    /// TLS and credentials, read at start.
    pub security: tls::Security,
    /// Messages to receive (the centre's commands), if any.
    pub inbound: Option<Inbound>,
}

/// A subscription of the session: what arrives on `filter` goes to `tx`.
#[derive(Debug, Clone)]
pub struct Inbound {
    /// The topic filter, subscribed at QoS 1 on every connection.
    pub filter: String,
    /// Where the messages go (bounded: when it is full, a message is dropped and logged).
    pub tx: mpsc::Sender<Received>,
}

/// A message received on a subscription.
#[derive(Debug, Clone, PartialEq)]
pub struct Received {
    /// Its topic.
    pub topic: String,
    /// Its payload.
    pub payload: Vec<u8>,
}

/// Counters of the session, for tests and reports.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct SessionStats {
    /// Incident events given a sequence number.
    pub events: u64,
    /// Messages handed to the MQTT client.
    pub handed_over: u64,
    /// Messages the broker acknowledged.
    pub acked: u64,
    /// Connections established.
    pub connects: u64,
    /// Rows left in the outbox at the end (delivered at the next start).
    pub left: usize,
}

/// Run `f`, which reads or commits the outbox (SQLite, with an fsync per commit), off the async
/// runtime's worker threads: on the multi-threaded runtime the current worker hands its other
/// tasks to another thread first (`block_in_place`), so a slow disk never stalls the
/// diagnostics socket, the camera monitor or the MQTT event loop. Elsewhere (a current-thread
/// runtime in tests) it simply runs.
pub fn off_runtime<R>(f: impl FnOnce() -> R) -> R {
    match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(f),
        _ => f(),
    }
}

/// A connection that stayed up this long starts the reconnect backoff again from its shortest
/// delay when it ends.
pub const STABLE: Duration = Duration::from_secs(10);

/// Whether a connection's end starts the reconnect backoff again from its shortest delay: when a
/// message was blamed for it (and is now isolated or set aside), or when the connection had
/// been up (`up_for`, `None` if it never got its CONNACK) for at least [`STABLE`].
fn restart_backoff(blamed: bool, up_for: Option<Duration>) -> bool {
    blamed || up_for.is_some_and(|d| d >= STABLE)
}

/// Unacknowledged messages at a time (the outbox's window).
pub const MAX_IN_FLIGHT: usize = 32;

async fn next_event(link: &mut Option<Link>) -> Option<Result<Wire, String>> {
    match link {
        Some(l) => l.events.recv().await,
        None => std::future::pending().await,
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}

/// The next event of the failback candidate, with its broker's index (pending without one).
async fn next_candidate(
    candidate: &mut Option<(usize, Link)>,
) -> (usize, Option<Result<Wire, String>>) {
    match candidate {
        Some((i, l)) => (*i, l.events.recv().await),
        None => std::future::pending().await,
    }
}

/// Run the session until `shutdown` turns true and the outbox is delivered (or `cfg.flush`
/// has passed); then publish `stopped`, disconnect and return.
pub async fn run(
    cfg: SessionConfig,
    mut outbox: Durable,
    mut rx: mpsc::Receiver<Outgoing>,
    mut shutdown: watch::Receiver<bool>,
) -> SessionStats {
    let id = &cfg.identity;
    let status_topic = id.status_topic();
    let json = |state| {
        presence::status(id, state, &cfg.inventory)
            .to_string()
            .into_bytes()
    };
    let endpoints = cfg.mqtt.endpoints();
    let opts: Vec<wire::Options> = endpoints
        .iter()
        .map(|b| wire::options(&cfg, b, json(DeviceState::Offline)))
        .collect();
    let mut brokers = Brokers::new(endpoints.len(), Duration::from_secs(cfg.mqtt.failback_s));
    let mut backoff = Backoff::new(Duration::from_millis(250), Duration::from_secs(10));
    let mut stats = SessionStats::default();
    let mut link: Option<Link> = None;
    // A second connection to an earlier broker, taken over once it is accepted.
    let mut candidate: Option<(usize, Link)> = None;
    let mut retry_at: Option<Instant> = Some(Instant::now());
    let mut connected = false;
    let mut connected_at = Instant::now();
    // Rows handed to the current client, in order; `None` for messages outside the outbox.
    let mut handed: VecDeque<Option<u64>> = VecDeque::new();
    let mut next_file_try = Instant::now() + memory::RETRY;
    let mut deadline: Option<Instant> = None;
    let mut unstored = spill::Unstored::default();
    // After a passing refusal, nothing new is handed over until then.
    let mut paused_until: Option<Instant> = None;

    loop {
        if link.is_none() && candidate.is_none() && retry_at.is_some_and(|t| t <= Instant::now()) {
            link = Some(Link::start(&opts[brokers.current()], LINK_QUEUE));
            retry_at = None;
        }
        if connected
            && candidate.is_none()
            && deadline.is_none()
            && let Some(i) = brokers.failback_due(Instant::now())
        {
            tracing::info!(broker = %endpoints[i].address(), "trying an earlier broker of mqtt.brokers again");
            candidate = Some((i, Link::start(&opts[i], LINK_QUEUE)));
        }
        if let Some(d) = deadline
            && ((connected && outbox.nothing_waits()) || Instant::now() >= d)
        {
            break;
        }
        tokio::select! {
            biased;
            // A dropped sender also means shutdown (never spin on a closed channel).
            changed = shutdown.changed(), if deadline.is_none() => {
                if changed.is_err() || *shutdown.borrow() {
                    // Everything the agent handed over is stored before the flush starts.
                    while let Ok(out) = rx.try_recv() {
                        off_runtime(|| enqueue(&mut outbox, out, &mut stats, &mut unstored));
                    }
                    deadline = Some(Instant::now() + cfg.flush);
                    // Closed cleanly: an earlier broker that already accepted it must not
                    // publish the last will while this box says goodbye on the other.
                    if let Some((_, c)) = candidate.take() {
                        tokio::spawn(c.leave(|_, _| {}));
                    }
                    if !outbox.is_empty() {
                        tracing::info!(rows = outbox.len(), flush_s = cfg.flush.as_secs_f64(), "delivering the outbox before stopping");
                    }
                }
            }
            ev = next_event(&mut link) => match ev {
                Some(Ok(Wire::Connected { session_present, max_packet })) => {
                    let at = &endpoints[brokers.current()];
                    if let Some(l) = &link {
                        accepted(l, &at.address(), &cfg, &mut outbox, &mut stats, &mut handed, (session_present, max_packet));
                    }
                    connected = true;
                    connected_at = Instant::now();
                    brokers.connected(connected_at);
                }
                Some(Ok(Wire::Sent(pkid))) => {
                    if let Some(Some(row)) = handed.pop_front() {
                        outbox.sent(row, pkid);
                    }
                }
                Some(Ok(Wire::Acked(pkid))) => {
                    if off_runtime(|| outbox.acked(pkid)) {
                        stats.acked += 1;
                    }
                }
                Some(Ok(Wire::Refused { pkid, reason, lasting })) => {
                    if let Some(pause) = off_runtime(|| outbox.refused(pkid, &reason, lasting)) {
                        paused_until = Some(Instant::now() + pause);
                    }
                }
                Some(Ok(Wire::Message { topic, payload })) => receive(cfg.inbound.as_ref(), topic, payload),
                Some(Ok(_)) => {}
                // An error, or the event loop's task ended: this connection is over.
                lost @ (Some(Err(_)) | None) => {
                    let error = match lost {
                        Some(Err(e)) => Some(e),
                        _ => None,
                    };
                    let address = endpoints[brokers.current()].address();
                    let blamed = connection_over(&address, error, connected, &mut outbox);
                    // A stable connection, or one ended by a message now isolated or set
                    // aside: reconnect soon. A connection that dies right after CONNACK for no
                    // known reason backs off further each time.
                    if restart_backoff(blamed, connected.then(|| connected_at.elapsed())) {
                        backoff.reset();
                    }
                    if connected {
                        brokers.lost();
                    } else {
                        brokers.attempt_failed();
                    }
                    connected = false;
                    link = None;
                    handed.clear();
                    retry_at = Some(Instant::now() + backoff.jittered());
                }
            },
            (i, ev) = next_candidate(&mut candidate) => match ev {
                Some(Ok(Wire::Connected { session_present, max_packet })) => {
                    if let Some((_, new)) = candidate.take() {
                        if let Some(old) = link.take() {
                            // A command the old broker still delivers is not lost.
                            let inbound = cfg.inbound.clone();
                            tokio::spawn(old.leave(move |topic, payload| receive(inbound.as_ref(), topic, payload)));
                        }
                        tracing::info!(from = %endpoints[brokers.current()].address(), to = %endpoints[i].address(), "moving back to an earlier broker of mqtt.brokers");
                        outbox.left();
                        handed.clear();
                        accepted(&new, &endpoints[i].address(), &cfg, &mut outbox, &mut stats, &mut handed, (session_present, max_packet));
                        link = Some(new);
                        connected = true;
                        connected_at = Instant::now();
                        brokers.moved_to(i, connected_at);
                    }
                }
                Some(Ok(_)) => {}
                other => {
                    let why = match other {
                        Some(Err(e)) => e,
                        _ => "its connection ended".into(),
                    };
                    candidate = None;
                    tracing::info!(broker = %endpoints[i].address(), "an earlier broker is still not usable: {why}");
                    brokers.candidate_failed(i, Instant::now());
                }
            },
            Some(out) = rx.recv(), if deadline.is_none() => {
                off_runtime(|| enqueue(&mut outbox, out, &mut stats, &mut unstored));
            }
            _ = sleep_until(retry_at), if link.is_none() && candidate.is_none() => {}
            _ = sleep_until(brokers.failback_at()), if connected && candidate.is_none() && deadline.is_none() => {}
            _ = sleep_until(paused_until), if paused_until.is_some() => paused_until = None,
            _ = sleep_until(deadline) => {}
        }
        if connected
            && paused_until.is_none()
            && let Some(l) = &link
        {
            off_runtime(|| pump(l, &mut outbox, &mut handed, &mut stats));
        }
        if outbox.in_memory() && Instant::now() >= next_file_try {
            next_file_try = Instant::now() + memory::RETRY;
            off_runtime(|| outbox.retry_file());
        }
    }
    finish(&mut outbox, &mut stats);
    if let Some(l) = link.take()
        && connected
    {
        l.close(json(DeviceState::Stopped), &status_topic).await;
    }
    stats
}

/// Room in a connection's client queue above the outbox's window.
const LINK_QUEUE: usize = MAX_IN_FLIGHT + 16;

/// The broker at `address` accepted a connection (`(session_present, max_packet)` from its
/// CONNACK): note it, say it, send the birth first, ahead of anything stored, and subscribe.
fn accepted(
    l: &Link,
    address: &str,
    cfg: &SessionConfig,
    outbox: &mut Durable,
    stats: &mut SessionStats,
    handed: &mut VecDeque<Option<u64>>,
    (session_present, max_packet): (bool, Option<usize>),
) {
    tracing::info!(broker = %address, protocol = cfg.mqtt.protocol.as_str(), session_present, max_packet, waiting = outbox.len(), "connected to the MQTT broker");
    cfg.limit.announced(max_packet);
    outbox.connected_to(address);
    stats.connects += 1;
    let birth = presence::status(&cfg.identity, DeviceState::Online, &cfg.inventory);
    if l.publish(
        &cfg.identity.status_topic(),
        true,
        birth.to_string().into_bytes(),
    )
    .is_ok()
    {
        handed.push_back(None);
    }
    if let Some(inbound) = &cfg.inbound
        && let Err(e) = l.subscribe(&inbound.filter)
    {
        tracing::error!(filter = %inbound.filter, "cannot subscribe: {e:?}");
    }
}

/// The connection to `address` ended (`error`, None when its event loop stopped): say so and
/// make whatever was handed over pending again. True when a message was blamed for it.
fn connection_over(
    address: &str,
    error: Option<String>,
    connected: bool,
    outbox: &mut Durable,
) -> bool {
    if let Some(e) = &error {
        if connected {
            tracing::warn!(broker = %address, waiting = outbox.len(), "MQTT connection lost: {e}");
        } else {
            tracing::warn!(broker = %address, "cannot reach the MQTT broker: {e}");
        }
    }
    outbox.link_changed(false, error);
    off_runtime(|| outbox.disconnected())
}

/// At the end of the session: what is left, and what could not be stored.
fn finish(outbox: &mut Durable, stats: &mut SessionStats) {
    stats.left = outbox.len();
    if stats.left > 0 && !outbox.in_memory() {
        tracing::warn!(
            rows = stats.left,
            "stopping with undelivered messages; they stay in the outbox and go at the next start"
        );
    }
    if outbox.spilled_len() > 0 || (outbox.in_memory() && !outbox.is_empty()) {
        tracing::error!(
            messages = outbox.spilled_len() + if outbox.in_memory() { outbox.len() } else { 0 },
            "stopping with messages the outbox could not store on disk; they are lost"
        );
    }
}

/// Store one hand-over; if the store fails, its messages wait in memory (and it says so, once
/// a minute while it lasts: see [`spill::Unstored`]).
fn enqueue(
    outbox: &mut Durable,
    out: Outgoing,
    stats: &mut SessionStats,
    unstored: &mut spill::Unstored,
) {
    let incident = matches!(out, Outgoing::Incident { .. });
    match outbox.enqueue(out) {
        Err(e) => {
            if let Some(n) = unstored.failed(std::time::Instant::now()) {
                tracing::error!(
                    messages = n,
                    "cannot store in the outbox ({e}); publishing without durability: a restart before delivery loses it"
                );
            }
        }
        Ok(_) => {
            if let Some(n) = unstored.stored() {
                tracing::info!(messages = n, "storing in the outbox again");
            }
        }
    }
    if incident {
        stats.events += 1;
    }
}

/// Pass a message received on the subscription on; never wait for its reader.
fn receive(inbound: Option<&Inbound>, topic: String, payload: Vec<u8>) {
    let Some(inbound) = inbound else {
        return;
    };
    if let Err(e) = inbound.tx.try_send(Received { topic, payload }) {
        let topic = match &e {
            mpsc::error::TrySendError::Full(r) | mpsc::error::TrySendError::Closed(r) => {
                r.topic.clone()
            }
        };
        tracing::warn!(
            topic,
            "a received message was dropped: its reader is busy or gone"
        );
    }
}

/// Hand what the window allows to the client.
fn pump(
    link: &Link,
    outbox: &mut Durable,
    handed: &mut VecDeque<Option<u64>>,
    stats: &mut SessionStats,
) {
    while let Some(m) = outbox.spilled() {
        if let Some(why) = outbox.too_large(m) {
            tracing::error!(topic = %m.topic, "message not stored and too large to send, dropped: {why}");
            outbox.pop_spilled();
            continue;
        }
        if !hand(link, &m.topic, m.retain, m.payload.clone()) {
            return;
        }
        outbox.pop_spilled();
        handed.push_back(None);
        stats.handed_over += 1;
    }
    while let Some((row, m)) = outbox.next_message() {
        if !hand(link, &m.topic, m.retain, m.payload) {
            return;
        }
        outbox.handed(row);
        handed.push_back(Some(row));
        stats.handed_over += 1;
    }
}

/// Hand one message to the client; false when it cannot take more now.
fn hand(link: &Link, topic: &str, retain: bool, payload: Vec<u8>) -> bool {
    match link.publish(topic, retain, payload) {
        Ok(()) => true,
        Err(HandError::Full) => false,
        Err(HandError::Closed(e)) => {
            tracing::error!(topic, "cannot publish: {e}");
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_backoff_restarts_only_after_a_stable_connection_or_a_blamed_message() {
        assert!(!restart_backoff(false, None), "refused before CONNACK");
        assert!(
            !restart_backoff(false, Some(Duration::from_millis(30))),
            "dropped right after CONNACK"
        );
        assert!(restart_backoff(false, Some(STABLE)));
        assert!(restart_backoff(true, Some(Duration::from_millis(30))));
    }
}
