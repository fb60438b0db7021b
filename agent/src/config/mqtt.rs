//! The `[mqtt]` section: the broker or brokers, credentials, TLS, the protocol version and the
//! largest message the broker takes.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::ByteSize;

/// Broker connection.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Mqtt {
    /// Broker host name or address. Required unless `brokers` lists the brokers.
    pub host: String,
    /// Broker TCP port. Default 1883.
    pub port: u16,
    /// Brokers to use in this order, instead of `host` and `port`: when one cannot be reached
    /// the next is tried (with the usual backoff); while on a later one, the earlier ones are
    /// probed every `failback_s` and the agent returns to the first that answers. At most 8.
    pub brokers: Vec<BrokerEndpoint>,
    /// Seconds between probes of the earlier brokers while connected to a later one. Default
    /// 60, from 5 to 3600.
    pub failback_s: u64,
    /// MQTT keep-alive in seconds; the broker publishes the last will after 1.5× this without
    /// traffic. Default 30, at least 5.
    pub keep_alive_s: u64,
    /// Ask the broker to drop the session on connect. Default true. `false` is allowed, but
    /// delivery never relies on the broker's session: the outbox sends again whatever was not
    /// acknowledged.
    pub clean_session: bool,
    /// Username for the broker.
    pub username: Option<String>,
    /// File whose first line is the password (relative to the config's folder). Must not be
    /// readable by group or others.
    pub password_file: Option<PathBuf>,
    /// TLS to the broker: present means on.
    pub tls: Option<TlsSettings>,
    /// The largest MQTT message (whole PUBLISH packet) the broker takes: set it to the
    /// broker's limit (mosquitto `max_packet_size`; managed brokers often 128–256 KB).
    /// Evidence pictures are encoded to fit; larger messages are set aside, never sent.
    /// Default "256KiB", from 16 KiB to 256 MiB.
    pub max_message_bytes: ByteSize,
    /// MQTT protocol version: "5" (default) or "3.1.1" for a broker that does not speak 5.
    pub protocol: MqttProtocol,
}

/// One broker of `mqtt.brokers`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct BrokerEndpoint {
    /// Host name or address. Required.
    pub host: String,
    /// TCP port. Default 1883.
    pub port: u16,
    /// The name the broker's TLS certificate must carry, when it is not `host` (a broker
    /// reached by its address whose certificate names it). Default: `host`.
    pub tls_name: Option<String>,
}

impl Default for BrokerEndpoint {
    fn default() -> Self {
        BrokerEndpoint {
            host: String::new(),
            port: 1883,
            tls_name: None,
        }
    }
}

impl BrokerEndpoint {
    /// `host:port`, as logs and status show it.
    pub fn address(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

impl Mqtt {
    /// The brokers in the order they are tried: `brokers`, or `host` and `port` alone.
    pub fn endpoints(&self) -> Vec<BrokerEndpoint> {
        if self.brokers.is_empty() {
            vec![BrokerEndpoint {
                host: self.host.clone(),
                port: self.port,
                tls_name: None,
            }]
        } else {
            self.brokers.clone()
        }
    }
}

/// The MQTT protocol version spoken to the broker.
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq, Eq)]
pub enum MqttProtocol {
    /// MQTT 5: the broker says which message it refused and why (a PUBACK reason code, such
    /// as "not authorized" from an ACL) and announces its maximum packet size at connect.
    #[default]
    #[serde(rename = "5")]
    V5,
    /// MQTT 3.1.1: a broker acknowledges a message its ACL drops, and shows a size limit only
    /// by closing the connection.
    #[serde(rename = "3.1.1")]
    V311,
}

impl MqttProtocol {
    /// As written in the configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            MqttProtocol::V5 => "5",
            MqttProtocol::V311 => "3.1.1",
        }
    }
}

/// TLS settings of the broker connection.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct TlsSettings {
    /// CA certificate(s), PEM, that sign the broker's certificate. Default: the system's CA
    /// store.
    pub ca_file: Option<PathBuf>,
    /// Client certificate chain, PEM, for mutual TLS (with `key_file`).
    pub cert_file: Option<PathBuf>,
    /// Client private key, PEM, for mutual TLS. Must not be readable by group or others.
    pub key_file: Option<PathBuf>,
    /// Do not verify the broker's certificate. Default false; warned about at every start.
    pub insecure_skip_verify: bool,
}

impl Default for Mqtt {
    fn default() -> Self {
        Mqtt {
            host: String::new(),
            port: 1883,
            brokers: Vec::new(),
            failback_s: 60,
            keep_alive_s: 30,
            clean_session: true,
            username: None,
            password_file: None,
            tls: None,
            max_message_bytes: ByteSize(256 << 10),
            protocol: MqttProtocol::V5,
        }
    }
}
