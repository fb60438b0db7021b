//! One MQTT round trip with the configured broker settings (`vigil mqtt-test`, `doctor`):
//! resolve the host, open TCP, connect (TLS, credentials), subscribe to the device's own test
//! topic, publish on it at QoS 1 and read it back. Each stage fails with its own error, so an
//! installer knows whether to look at DNS, the network, certificates, credentials or the ACL.
//! With `mqtt.protocol = "5"` it then connects once more over MQTT 5, as the agent will, and
//! reports the largest message the broker announces.

use std::net::ToSocketAddrs;
use std::time::{Duration, Instant};

use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS, SubscribeReasonCode};

use super::Identity;
use super::tls::Security;
use crate::config::Mqtt;

/// What a successful round trip measured.
#[derive(Debug, Clone, PartialEq)]
pub struct RoundTrip {
    /// `host:port`.
    pub broker: String,
    /// TLS in use.
    pub tls: bool,
    /// Until CONNACK.
    pub connect: Duration,
    /// From publishing to reading the message back.
    pub round_trip: Duration,
    /// The topic used.
    pub topic: String,
    /// The MQTT version checked last (`mqtt.protocol`).
    pub protocol: &'static str,
    /// The largest packet the broker announced over MQTT 5, if it did.
    pub max_packet: Option<usize>,
}

/// The stage that failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RoundTripError {
    /// The host name does not resolve.
    #[error("DNS: {host} does not resolve ({detail}); check mqtt.host and the box's DNS")]
    Dns {
        /// Host name.
        host: String,
        /// Resolver error.
        detail: String,
    },
    /// No TCP connection.
    #[error("TCP: cannot connect to {addr}: {detail}; check mqtt.port, the network and firewalls")]
    Tcp {
        /// Address tried.
        addr: String,
        /// OS error.
        detail: String,
    },
    /// The TLS handshake failed.
    #[error("TLS: {0}")]
    Tls(String),
    /// The broker refused the client (credentials or client id).
    #[error("authentication: {0}")]
    Auth(String),
    /// The broker refused the subscription.
    #[error(
        "ACL: the broker refused the subscription to {0}; allow this device to read its own topics"
    )]
    SubscribeDenied(String),
    /// Published and acknowledged, but never delivered back.
    #[error(
        "ACL: the broker acknowledged the test message on {0} but never delivered it back; its ACL probably does not let this device publish or read there (mosquitto grants every subscription and filters on delivery)"
    )]
    NotDelivered(String),
    /// The round trip worked over MQTT 3.1.1, but an MQTT 5 connection did not.
    #[error("MQTT 5: {0}")]
    Protocol(String),
    /// Anything else.
    #[error("{0}")]
    Other(String),
}

/// The longest wait for one stage: a larger `timeout` is lowered to it (the CONNACK wait is
/// three stages long, and a wait past a clock's range would panic).
pub const MAX_STAGE_WAIT: Duration = Duration::from_secs(600);

/// The settings of a round trip to each broker of `mqtt` (`mqtt.brokers`, or `host` and
/// `port`), in order, each with its own TLS name.
pub fn each_broker(mqtt: &Mqtt, security: &Security) -> Vec<(Mqtt, Security)> {
    mqtt.endpoints()
        .into_iter()
        .map(|b| {
            let one = Mqtt {
                host: b.host.clone(),
                port: b.port,
                brokers: Vec::new(),
                ..mqtt.clone()
            };
            (one, security.for_broker(&b))
        })
        .collect()
}

/// Run the round trip; gives up on each stage after `timeout` (1 s to [`MAX_STAGE_WAIT`]).
pub async fn round_trip(
    mqtt: &Mqtt,
    security: &Security,
    identity: &Identity,
    timeout: Duration,
) -> Result<RoundTrip, RoundTripError> {
    let timeout = timeout.clamp(Duration::from_secs(1), MAX_STAGE_WAIT);
    let broker = format!("{}:{}", mqtt.host, mqtt.port);
    let addrs: Vec<std::net::SocketAddr> = (mqtt.host.as_str(), mqtt.port)
        .to_socket_addrs()
        .map_err(|e| RoundTripError::Dns {
            host: mqtt.host.clone(),
            detail: e.to_string(),
        })?
        .collect();
    let Some(addr) = addrs.first().copied() else {
        return Err(RoundTripError::Dns {
            host: mqtt.host.clone(),
            detail: "no address".into(),
        });
    };
    match tokio::time::timeout(timeout, tokio::net::TcpStream::connect(addr)).await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => {
            return Err(RoundTripError::Tcp {
                addr: addr.to_string(),
                detail: e.to_string(),
            });
        }
        Err(_) => {
            return Err(RoundTripError::Tcp {
                addr: addr.to_string(),
                detail: format!("no answer within {} s", timeout.as_secs()),
            });
        }
    }

    // Not the device id: a second connection under it would push the running agent off.
    let mut opts = MqttOptions::new(
        format!("{}-mqtt-test", identity.device),
        mqtt.host.clone(),
        mqtt.port,
    );
    opts.set_keep_alive(Duration::from_secs(mqtt.keep_alive_s.max(5)));
    opts.set_clean_session(true);
    security.apply(&mut opts);
    let (client, mut events) = AsyncClient::new(opts, 10);
    let topic = identity.test_topic();
    let nonce = uuid::Uuid::now_v7().to_string();
    let started = Instant::now();
    let silent = |what: &str| {
        RoundTripError::Other(format!(
            "{what}: the broker did not answer within {} s",
            (timeout * 3).as_secs()
        ))
    };
    let mut connected_after = None;
    let mut published_at = None;
    let deadline = tokio::time::Instant::now() + timeout * 3;
    let result = loop {
        let ev = match tokio::time::timeout_at(deadline, events.poll()).await {
            Ok(ev) => ev,
            Err(_) => {
                break Err(match (connected_after, published_at) {
                    (None, _) => silent("connecting"),
                    (Some(_), None) => silent("subscribing"),
                    (Some(_), Some(_)) => RoundTripError::NotDelivered(topic.clone()),
                });
            }
        };
        match ev {
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                connected_after = Some(started.elapsed());
                if let Err(e) = client.try_subscribe(&topic, QoS::AtLeastOnce) {
                    break Err(RoundTripError::Other(e.to_string()));
                }
            }
            Ok(Event::Incoming(Packet::SubAck(ack))) => {
                if ack
                    .return_codes
                    .iter()
                    .any(|c| matches!(c, SubscribeReasonCode::Failure))
                {
                    break Err(RoundTripError::SubscribeDenied(topic.clone()));
                }
                published_at = Some(Instant::now());
                if let Err(e) =
                    client.try_publish(&topic, QoS::AtLeastOnce, false, nonce.clone().into_bytes())
                {
                    break Err(RoundTripError::Other(e.to_string()));
                }
            }
            Ok(Event::Incoming(Packet::Publish(p))) if p.payload.as_ref() == nonce.as_bytes() => {
                let (Some(connect), Some(at)) = (connected_after, published_at) else {
                    continue;
                };
                break Ok(RoundTrip {
                    broker: broker.clone(),
                    tls: security.tls.is_some(),
                    connect,
                    round_trip: at.elapsed(),
                    topic: topic.clone(),
                    protocol: "3.1.1",
                    max_packet: None,
                });
            }
            Ok(_) => {}
            Err(e) => break Err(classify(&e)),
        }
    };
    let _ = client.try_disconnect();
    let _ = tokio::time::timeout(Duration::from_millis(300), events.poll()).await;
    let mut done = result?;
    if mqtt.protocol == crate::config::MqttProtocol::V5 {
        done.max_packet = handshake5(mqtt, security, identity, timeout).await?;
        done.protocol = "5";
    }
    Ok(done)
}

/// Connect over MQTT 5 as the agent will and read the broker's announced maximum packet size.
async fn handshake5(
    mqtt: &Mqtt,
    security: &Security,
    identity: &Identity,
    timeout: Duration,
) -> Result<Option<usize>, RoundTripError> {
    use rumqttc::v5::mqttbytes::v5::Packet as P5;
    let id = format!("{}-mqtt-test", identity.device);
    let mut opts = rumqttc::v5::MqttOptions::new(id, mqtt.host.clone(), mqtt.port);
    opts.set_keep_alive(Duration::from_secs(mqtt.keep_alive_s.max(5)));
    security.apply5(&mut opts);
    let (client, mut events) = rumqttc::v5::AsyncClient::new(opts, 10);
    let deadline = tokio::time::Instant::now() + timeout * 3;
    let result = loop {
        match tokio::time::timeout_at(deadline, events.poll()).await {
            Err(_) => {
                break Err(RoundTripError::Protocol(format!(
                    "no CONNACK within {} s; {}",
                    (timeout * 3).as_secs(),
                    super::wire::OLD_BROKER
                )));
            }
            Ok(Ok(rumqttc::v5::Event::Incoming(P5::ConnAck(ack)))) => {
                break Ok(ack
                    .properties
                    .and_then(|p| p.max_packet_size)
                    .and_then(|n| usize::try_from(n).ok()));
            }
            Ok(Ok(_)) => {}
            // The 3.1.1 round trip just worked: an MQTT 5 failure is most likely the protocol.
            Ok(Err(e)) => {
                let why = super::wire::explain5(&e);
                break Err(RoundTripError::Protocol(if why.contains("mqtt.protocol") {
                    why
                } else {
                    format!("{why}; {}", super::wire::OLD_BROKER)
                }));
            }
        }
    };
    let _ = client.try_disconnect();
    let _ = tokio::time::timeout(Duration::from_millis(300), events.poll()).await;
    result
}

fn classify(e: &rumqttc::ConnectionError) -> RoundTripError {
    use rumqttc::ConnectionError as E;
    let text = super::wire::explain(e);
    match e {
        E::ConnectionRefused(_) => RoundTripError::Auth(text),
        _ if text.starts_with("TLS handshake failed") => RoundTripError::Tls(text),
        E::Tls(_) => RoundTripError::Tls(text),
        _ => RoundTripError::Other(text),
    }
}
