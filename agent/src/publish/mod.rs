//! Publish: the MQTT session towards the operations centre.
//!
//! One tokio task owns the rumqttc client and event loop. Incident events arrive on a bounded
//! channel from the inference thread; the task gives each its per-device sequence number,
//! serialises it and publishes it QoS 1 (its snapshot right after). On every (re)connect it
//! publishes the retained birth message; the broker publishes the retained last will
//! (`offline`) if the connection drops; a clean shutdown publishes `stopped`.
//!
//! Messages wait in an in-memory queue while the broker is unreachable. The durable outbox
//! (SQLite, deleted on PUBACK) replaces that queue in a later step; until then a process
//! restart loses what was queued, and a publish in flight when the connection drops may be
//! lost too (rumqttc drops unacknowledged QoS 1 publishes on a session-less reconnect).

pub mod outbox;
pub mod payload;
pub mod seq;
pub mod store;

use std::collections::VecDeque;
use std::time::Duration;

use rumqttc::{AsyncClient, ClientError, Event, LastWill, MqttOptions, Packet, QoS};
use tokio::sync::{mpsc, watch};

use crate::config::Mqtt;
use crate::ingest::Backoff;
use payload::{DeviceState, Identity, Inventory};
pub use seq::SeqStore;

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

/// What the agent hands to the session.
pub enum Outgoing {
    /// An incident event: a function of its sequence number, so that numbers are given in
    /// publish order by the one task that publishes. Builds the incident, then its snapshot.
    Incident(Box<dyn FnOnce(u64) -> Vec<Message> + Send>),
    /// Messages without a sequence number (camera status, health).
    Plain(Vec<Message>),
}

impl Outgoing {
    /// The messages, numbering an incident from `seqs`.
    fn messages(self, seqs: &mut SeqStore, stats: &mut SessionStats) -> Vec<Message> {
        match self {
            Outgoing::Incident(build) => {
                stats.events += 1;
                build(seqs.take_next())
            }
            Outgoing::Plain(m) => m,
        }
    }
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
    /// Largest message accepted (snapshots are the big ones).
    pub max_packet_bytes: usize,
}

/// Counters of the session, for tests and health.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct SessionStats {
    /// Incident events given a sequence number.
    pub events: u64,
    /// Messages handed to the MQTT client.
    pub handed_over: u64,
    /// Connections established.
    pub connects: u64,
}

/// Run the session until `shutdown` turns true; then publish `stopped`, disconnect and return.
pub async fn run(
    cfg: SessionConfig,
    mut seqs: SeqStore,
    mut rx: mpsc::Receiver<Outgoing>,
    mut shutdown: watch::Receiver<bool>,
) -> SessionStats {
    let id = &cfg.identity;
    let status_topic = id.status_topic();
    let json = |state| {
        payload::status(id, state, &cfg.inventory)
            .to_string()
            .into_bytes()
    };
    let mut opts = MqttOptions::new(id.device.clone(), cfg.mqtt.host.clone(), cfg.mqtt.port);
    opts.set_keep_alive(Duration::from_secs(cfg.mqtt.keep_alive_s));
    opts.set_max_packet_size(cfg.max_packet_bytes, cfg.max_packet_bytes);
    opts.set_last_will(LastWill::new(
        &status_topic,
        json(DeviceState::Offline),
        QoS::AtLeastOnce,
        true,
    ));
    let (client, eventloop) = AsyncClient::new(opts, 64);
    let broker = format!("{}:{}", cfg.mqtt.host, cfg.mqtt.port);
    // The event loop runs in its own task: a poll is never cancelled half-way through a
    // connection handshake (the broker would see an abrupt close and publish the last will).
    let stopping = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (ev_tx, mut events) = mpsc::channel::<Result<Event, String>>(256);
    let poller = tokio::spawn(poll_loop(
        eventloop,
        ev_tx,
        std::sync::Arc::clone(&stopping),
    ));

    let mut queue: VecDeque<Message> = VecDeque::new();
    let mut connected = false;
    let mut stats = SessionStats::default();

    loop {
        tokio::select! {
            biased;
            // A dropped sender also means shutdown (never spin on a closed channel).
            changed = shutdown.changed() => {
                if changed.is_err() || *shutdown.borrow() { break; }
            }
            ev = events.recv() => match ev {
                Some(Ok(Event::Incoming(Packet::ConnAck(ack)))) => {
                    tracing::info!(broker = %broker, code = ?ack.code, "connected to the MQTT broker");
                    connected = true;
                    stats.connects += 1;
                    // Birth first, ahead of anything queued.
                    queue.push_front(Message { topic: status_topic.clone(), payload: json(DeviceState::Online), retain: true });
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => {
                    if connected {
                        tracing::warn!(broker = %broker, "MQTT connection lost: {e}");
                    } else {
                        tracing::warn!(broker = %broker, "cannot reach the MQTT broker: {e}");
                    }
                    connected = false;
                }
                None => break, // the poller ended: nothing more can be sent
            },
            Some(out) = rx.recv() => queue.extend(out.messages(&mut seqs, &mut stats)),
        }
        if connected {
            stats.handed_over += flush(&client, &mut queue);
        }
    }

    // Clean shutdown: take what is still in the channel, say goodbye, disconnect.
    while let Ok(out) = rx.try_recv() {
        queue.extend(out.messages(&mut seqs, &mut stats));
    }
    if connected {
        stats.handed_over += flush(&client, &mut queue);
    }
    if !queue.is_empty() {
        tracing::error!(
            messages = queue.len(),
            "shutting down with undelivered messages; they are lost"
        );
    }
    let _ = client.try_publish(
        &status_topic,
        QoS::AtLeastOnce,
        true,
        json(DeviceState::Stopped),
    );
    stopping.store(true, std::sync::atomic::Ordering::Relaxed);
    let _ = client.try_disconnect();
    // The poller ends when the connection closes, so that `stopped` and DISCONNECT reach the
    // broker before the socket goes away (else the broker publishes the last will).
    let drain = async { while events.recv().await.is_some() {} };
    if tokio::time::timeout(Duration::from_secs(3), drain)
        .await
        .is_err()
    {
        poller.abort();
    }
    stats
}

/// Poll the MQTT event loop forever, handing every event (or error) to the session; wait with
/// jittered exponential backoff after an error. Ends once `stopping` is set and the connection
/// is gone, or when the session is gone.
async fn poll_loop(
    mut eventloop: rumqttc::EventLoop,
    events: mpsc::Sender<Result<Event, String>>,
    stopping: std::sync::Arc<std::sync::atomic::AtomicBool>,
) {
    let mut backoff = Backoff::new(Duration::from_millis(250), Duration::from_secs(10));
    loop {
        match eventloop.poll().await {
            Ok(ev) => {
                if matches!(ev, Event::Incoming(Packet::ConnAck(_))) {
                    backoff.reset();
                }
                if events.send(Ok(ev)).await.is_err() {
                    return;
                }
            }
            Err(e) => {
                if stopping.load(std::sync::atomic::Ordering::Relaxed)
                    || events.send(Err(e.to_string())).await.is_err()
                {
                    return;
                }
                tokio::time::sleep(backoff.jittered()).await;
            }
        }
    }
}

/// Hand queued messages to the client until its request channel is full.
fn flush(client: &AsyncClient, queue: &mut VecDeque<Message>) -> u64 {
    let mut n = 0;
    while let Some(m) = queue.front() {
        match client.try_publish(&m.topic, QoS::AtLeastOnce, m.retain, m.payload.clone()) {
            Ok(()) => {
                queue.pop_front();
                n += 1;
            }
            Err(ClientError::TryRequest(_)) => break,
            Err(e) => {
                tracing::error!(topic = %m.topic, "cannot publish: {e}");
                queue.pop_front();
            }
        }
    }
    n
}
