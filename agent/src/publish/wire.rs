//! The MQTT connection under the session: one rumqttc client and event loop per connection,
//! speaking MQTT 5 (the default) or 3.1.1 (`mqtt.protocol`), reduced to the few events the
//! session acts on ([`Wire`]).
//!
//! MQTT 5 is what lets a broker say no: a PUBACK carries a reason code (mosquitto answers
//! "not authorized" for a topic its ACL refuses, where 3.1.1 acknowledges the message and drops
//! it unseen), a CONNACK announces the broker's maximum packet size, and a broker's DISCONNECT
//! says why. The session and the outbox see the same events either way.

use std::time::Duration;

use rumqttc::v5::mqttbytes::QoS as QoS5;
use rumqttc::v5::mqttbytes::v5 as v5p;
use tokio::sync::mpsc;

use super::SessionConfig;
use crate::config::{BrokerEndpoint, MqttProtocol};

/// What happened on a connection, as far as the session cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Wire {
    /// The broker accepted the connection.
    Connected {
        /// Whether the broker kept a session (never relied upon).
        session_present: bool,
        /// The largest packet the broker takes, when it says (MQTT 5).
        max_packet: Option<usize>,
    },
    /// The client sent a publish as packet `pkid`.
    Sent(u16),
    /// The broker took packet `pkid`.
    Acked(u16),
    /// The broker answered packet `pkid` with a refusal (MQTT 5 reason code).
    Refused {
        /// The packet.
        pkid: u16,
        /// The reason, in words, with its code.
        reason: String,
        /// Whether sending it again cannot help (not authorized, invalid topic or payload).
        lasting: bool,
    },
    /// A message on a subscribed topic.
    Message {
        /// Its topic.
        topic: String,
        /// Its payload.
        payload: Vec<u8>,
    },
    /// Anything else (pings, …).
    Other,
}

/// Connection options for either protocol (boxed: built once a session, hundreds of bytes).
#[derive(Clone)]
pub enum Options {
    /// MQTT 3.1.1.
    V311(Box<rumqttc::MqttOptions>),
    /// MQTT 5.
    V5(Box<rumqttc::v5::MqttOptions>),
}

/// Why a publish could not be handed to the client.
#[derive(Debug)]
pub enum HandError {
    /// The client's request queue is full: try again after the next event.
    Full,
    /// The client is gone (its connection ended).
    Closed(String),
}

/// The client of one connection.
enum Client {
    V311(rumqttc::AsyncClient),
    V5(rumqttc::v5::AsyncClient),
}

/// One connection: its client, and the events of its event loop (polled in its own task, so
/// that a poll is never cancelled half-way through a handshake).
pub struct Link {
    client: Client,
    /// Events in order; an `Err` (in plain words) ends the connection.
    pub events: mpsc::Receiver<Result<Wire, String>>,
    poller: tokio::task::JoinHandle<()>,
}

impl Link {
    /// Connect with `opts`, the client queueing up to `cap` requests.
    pub fn start(opts: &Options, cap: usize) -> Link {
        let (tx, events) = mpsc::channel(256);
        let (client, poller) = match opts {
            Options::V311(o) => {
                let (client, mut eventloop) = rumqttc::AsyncClient::new(o.as_ref().clone(), cap);
                let poller = tokio::spawn(async move {
                    loop {
                        let ev = eventloop
                            .poll()
                            .await
                            .map(from_v311)
                            .map_err(|e| explain(&e));
                        if forward(&tx, ev).await {
                            return;
                        }
                    }
                });
                (Client::V311(client), poller)
            }
            Options::V5(o) => {
                let (client, mut eventloop) =
                    rumqttc::v5::AsyncClient::new(o.as_ref().clone(), cap);
                let poller = tokio::spawn(async move {
                    let mut accepted = false;
                    loop {
                        let ev = eventloop.poll().await.map(from_v5);
                        accepted |= matches!(ev, Ok(Wire::Connected { .. }));
                        let ev = ev.map_err(|e| before_connack(explain5(&e), &e, accepted));
                        if forward(&tx, ev).await {
                            return;
                        }
                    }
                });
                (Client::V5(client), poller)
            }
        };
        Link {
            client,
            events,
            poller,
        }
    }

    /// Hand a QoS 1 publish to the client.
    pub fn publish(&self, topic: &str, retain: bool, payload: Vec<u8>) -> Result<(), HandError> {
        match &self.client {
            Client::V311(c) => c
                .try_publish(topic, rumqttc::QoS::AtLeastOnce, retain, payload)
                .map_err(|e| match e {
                    rumqttc::ClientError::TryRequest(_) => HandError::Full,
                    other => HandError::Closed(other.to_string()),
                }),
            Client::V5(c) => c
                .try_publish(topic, QoS5::AtLeastOnce, retain, payload)
                .map_err(|e| match e {
                    rumqttc::v5::ClientError::TryRequest(_) => HandError::Full,
                    other => HandError::Closed(other.to_string()),
                }),
        }
    }

    /// Subscribe to `filter` at QoS 1.
    pub fn subscribe(&self, filter: &str) -> Result<(), HandError> {
        let closed = |e: String| HandError::Closed(e);
        match &self.client {
            Client::V311(c) => c
                .try_subscribe(filter, rumqttc::QoS::AtLeastOnce)
                .map_err(|e| closed(e.to_string())),
            Client::V5(c) => c
                .try_subscribe(filter, QoS5::AtLeastOnce)
                .map_err(|e| closed(e.to_string())),
        }
    }

    /// Say `stopped`, disconnect, and wait (briefly) until the connection is closed, so that
    /// the broker sees a clean DISCONNECT and does not publish the last will.
    pub async fn close(self, stopped: Vec<u8>, topic: &str) {
        let _ = self.publish(topic, true, stopped);
        self.leave(|_, _| {}).await;
    }

    /// Disconnect cleanly (the broker does not publish the last will) and wait briefly until
    /// the connection is closed; a message the broker still delivers meanwhile (it was
    /// acknowledged) goes to `on_message`.
    pub async fn leave(mut self, mut on_message: impl FnMut(String, Vec<u8>)) {
        let _ = match &self.client {
            Client::V311(c) => c.try_disconnect().map_err(|e| e.to_string()),
            Client::V5(c) => c.try_disconnect().map_err(|e| e.to_string()),
        };
        let drain = async {
            while let Some(ev) = self.events.recv().await {
                if let Ok(Wire::Message { topic, payload }) = ev {
                    on_message(topic, payload);
                }
            }
        };
        let _ = tokio::time::timeout(Duration::from_secs(3), drain).await;
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        self.poller.abort();
    }
}

/// Pass one event on; true when the connection is over (an error, or nobody listens).
async fn forward(tx: &mpsc::Sender<Result<Wire, String>>, ev: Result<Wire, String>) -> bool {
    let over = ev.is_err();
    tx.send(ev).await.is_err() || over
}

fn from_v311(ev: rumqttc::Event) -> Wire {
    use rumqttc::{Event, Outgoing, Packet};
    match ev {
        Event::Incoming(Packet::ConnAck(ack)) => Wire::Connected {
            session_present: ack.session_present,
            max_packet: None,
        },
        Event::Incoming(Packet::PubAck(ack)) => Wire::Acked(ack.pkid),
        Event::Incoming(Packet::Publish(p)) => Wire::Message {
            topic: p.topic,
            payload: p.payload.to_vec(),
        },
        Event::Outgoing(Outgoing::Publish(pkid)) => Wire::Sent(pkid),
        _ => Wire::Other,
    }
}

fn from_v5(ev: rumqttc::v5::Event) -> Wire {
    use rumqttc::Outgoing;
    use rumqttc::v5::Event;
    match ev {
        Event::Incoming(v5p::Packet::ConnAck(ack)) => Wire::Connected {
            session_present: ack.session_present,
            max_packet: ack
                .properties
                .and_then(|p| p.max_packet_size)
                .and_then(|n| usize::try_from(n).ok()),
        },
        Event::Incoming(v5p::Packet::PubAck(ack)) => puback(ack.pkid, ack.reason),
        Event::Incoming(v5p::Packet::Publish(p)) => Wire::Message {
            topic: String::from_utf8_lossy(&p.topic).into_owned(),
            payload: p.payload.to_vec(),
        },
        Event::Outgoing(Outgoing::Publish(pkid)) => Wire::Sent(pkid),
        _ => Wire::Other,
    }
}

/// A PUBACK's reason code as the session sees it.
fn puback(pkid: u16, reason: v5p::PubAckReason) -> Wire {
    use v5p::PubAckReason as R;
    let (words, code, lasting) = match reason {
        R::Success | R::NoMatchingSubscribers => return Wire::Acked(pkid),
        R::NotAuthorized => (
            "not authorized (the broker's ACL refuses this topic)",
            0x87,
            true,
        ),
        R::TopicNameInvalid => ("topic name invalid", 0x90, true),
        R::PayloadFormatInvalid => ("payload format invalid", 0x99, true),
        R::QuotaExceeded => ("quota exceeded", 0x97, false),
        R::PacketIdentifierInUse => ("packet identifier in use", 0x91, false),
        R::ImplementationSpecificError => ("implementation-specific error", 0x83, false),
        R::UnspecifiedError => ("unspecified error", 0x80, false),
    };
    Wire::Refused {
        pkid,
        reason: format!("the broker refused it: {words} (reason code 0x{code:02x})"),
        lasting,
    }
}

/// The options of every connection of a session to `broker`.
pub fn options(cfg: &SessionConfig, broker: &BrokerEndpoint, will: Vec<u8>) -> Options {
    let id = &cfg.identity;
    let (host, port) = (broker.host.clone(), broker.port);
    let security = cfg.security.for_broker(broker);
    let keep_alive = Duration::from_secs(cfg.mqtt.keep_alive_s);
    // Room above the outbox's window for the birth and `stopped` messages.
    let inflight = u16::try_from(super::MAX_IN_FLIGHT + 8).unwrap_or(u16::MAX);
    match cfg.mqtt.protocol {
        MqttProtocol::V311 => {
            let mut o = rumqttc::MqttOptions::new(id.device.clone(), host, port);
            o.set_keep_alive(keep_alive);
            o.set_clean_session(cfg.mqtt.clean_session);
            // Larger messages never reach the client (the outbox sets them aside): for
            // rumqttc, an oversize publish is an error that ends the connection.
            o.set_max_packet_size(cfg.max_packet_bytes, cfg.limit.configured());
            o.set_inflight(inflight);
            security.apply(&mut o);
            let qos = rumqttc::QoS::AtLeastOnce;
            o.set_last_will(rumqttc::LastWill::new(id.status_topic(), will, qos, true));
            Options::V311(Box::new(o))
        }
        MqttProtocol::V5 => {
            let mut o = rumqttc::v5::MqttOptions::new(id.device.clone(), host, port);
            o.set_keep_alive(keep_alive);
            o.set_clean_start(cfg.mqtt.clean_session);
            if !cfg.mqtt.clean_session {
                // 3.1.1's kept session: one that does not expire.
                o.set_session_expiry_interval(Some(u32::MAX));
            }
            o.set_max_packet_size(u32::try_from(cfg.max_packet_bytes).ok());
            o.set_outgoing_inflight_upper_limit(inflight);
            security.apply5(&mut o);
            let will = v5p::LastWill::new(id.status_topic(), will, QoS5::AtLeastOnce, true, None);
            o.set_last_will(will);
            Options::V5(Box::new(o))
        }
    }
}

/// `why` a connection ended, with the MQTT 5 hint when a broker closed it before accepting
/// it: what a broker that only speaks 3.1.1 does with an MQTT 5 CONNECT.
fn before_connack(why: String, e: &rumqttc::v5::ConnectionError, accepted: bool) -> String {
    use rumqttc::v5::{ConnectionError as E, StateError as S};
    let closed = matches!(e, E::MqttState(S::ConnectionAborted))
        || matches!(e, E::Io(io) if io.kind() == std::io::ErrorKind::UnexpectedEof);
    if closed && !accepted && !why.contains("mqtt.protocol") {
        format!("{why}; {OLD_BROKER}")
    } else {
        why
    }
}

/// A 3.1.1 connection error in plain words, with the config keys to check.
pub fn explain(e: &rumqttc::ConnectionError) -> String {
    use rumqttc::{ConnectReturnCode as Code, ConnectionError as E};
    match e {
        E::ConnectionRefused(Code::BadUserNamePassword) => BAD_PASSWORD.into(),
        E::ConnectionRefused(Code::NotAuthorized) => NOT_AUTHORIZED.into(),
        E::ConnectionRefused(code) => format!("the broker refused the connection ({code:?})"),
        other => tls_hint(other.to_string()),
    }
}

/// An MQTT 5 connection error in plain words, with the config keys to check.
pub fn explain5(e: &rumqttc::v5::ConnectionError) -> String {
    use rumqttc::v5::mqttbytes::v5::ConnectReturnCode as Code;
    use rumqttc::v5::{ConnectionError as E, StateError as S};
    match e {
        E::ConnectionRefused(Code::BadUserNamePassword)
        | E::MqttState(S::ConnFail {
            reason: Code::BadUserNamePassword,
        }) => BAD_PASSWORD.into(),
        E::ConnectionRefused(Code::NotAuthorized)
        | E::MqttState(S::ConnFail {
            reason: Code::NotAuthorized,
        }) => NOT_AUTHORIZED.into(),
        E::ConnectionRefused(Code::UnsupportedProtocolVersion | Code::RefusedProtocolVersion) => {
            OLD_BROKER.into()
        }
        E::ConnectionRefused(code) => format!("the broker refused the connection ({code:?})"),
        E::MqttState(S::ServerDisconnect {
            reason_code,
            reason_string,
        }) => match reason_string {
            Some(r) => format!("the broker closed the connection: {reason_code:?} ({r})"),
            None => format!("the broker closed the connection: {reason_code:?}"),
        },
        // A 3.1.1 broker answers an MQTT 5 CONNECT with a CONNACK that MQTT 5 cannot read.
        E::MqttState(S::Deserialization(d)) => format!("{d}; {OLD_BROKER}"),
        other => tls_hint(other.to_string()),
    }
}

const BAD_PASSWORD: &str =
    "the broker refused the username or password (check mqtt.username and mqtt.password_file)";
const NOT_AUTHORIZED: &str = "the broker refused this client as not authorized: a wrong username or password, or the broker does not admit this device id (check mqtt.username and mqtt.password_file)";
/// The hint for a broker that does not answer MQTT 5.
pub const OLD_BROKER: &str =
    "the broker may not speak MQTT 5: set mqtt.protocol = \"3.1.1\" for it";

fn tls_hint(text: String) -> String {
    if text.contains("certificate") || text.contains("Tls") || text.contains("TLS") {
        format!(
            "TLS handshake failed: {text} (check mqtt.tls: ca_file must sign the broker's certificate, whose name must match mqtt.host)"
        )
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connection_closed_before_its_connack_names_the_protocol_setting() {
        use rumqttc::v5::{ConnectionError as E, StateError as S};
        let aborted = E::MqttState(S::ConnectionAborted);
        let why = before_connack(explain5(&aborted), &aborted, false);
        assert!(why.contains("mqtt.protocol = \"3.1.1\""), "{why}");
        // Once accepted, a closed connection is just that.
        let why = before_connack(explain5(&aborted), &aborted, true);
        assert!(!why.contains("mqtt.protocol"), "{why}");
        let refused = E::ConnectionRefused(v5p::ConnectReturnCode::BadUserNamePassword);
        let why = before_connack(explain5(&refused), &refused, false);
        assert!(why.contains("mqtt.password_file") && !why.contains("mqtt.protocol"));
    }

    #[test]
    fn puback_reason_codes_say_what_the_broker_refused() {
        assert_eq!(puback(7, v5p::PubAckReason::Success), Wire::Acked(7));
        assert_eq!(
            puback(7, v5p::PubAckReason::NoMatchingSubscribers),
            Wire::Acked(7)
        );
        let Wire::Refused {
            pkid,
            reason,
            lasting,
        } = puback(9, v5p::PubAckReason::NotAuthorized)
        else {
            panic!("a refusal");
        };
        assert_eq!((pkid, lasting), (9, true));
        assert!(
            reason.contains("not authorized") && reason.contains("0x87"),
            "{reason}"
        );
        assert!(matches!(
            puback(9, v5p::PubAckReason::QuotaExceeded),
            Wire::Refused { lasting: false, .. }
        ));
    }
}
