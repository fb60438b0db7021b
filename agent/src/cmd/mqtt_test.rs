//! `vigil mqtt-test [--config FILE]`: connect to the configured broker (each of
//! `mqtt.brokers`, in order) with the configured TLS and credentials, publish a message on the
//! device's own test topic and read it back; print the connect time and the round-trip
//! latency. A failure names its stage — DNS, TCP, TLS
//! (with the certificate problem), authentication or ACL — and exits 1.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use serde_json::json;

use crate::publish::roundtrip::{RoundTrip, RoundTripError, each_broker, round_trip};

/// Arguments of `vigil mqtt-test`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Configuration file (its [mqtt] section and [device] identity are used).
    #[arg(
        long,
        short,
        value_name = "FILE",
        default_value = crate::config::DEFAULT_CONFIG
    )]
    config: PathBuf,
    /// Seconds to wait at each stage (1–600).
    #[arg(long, default_value_t = 5, value_name = "S")]
    timeout: u64,
    /// JSON output.
    #[arg(long)]
    json: bool,
}

/// Connect, publish, read back.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let (loaded, security) = match super::broker_settings(&args.config) {
        Ok(both) => both,
        Err(code) => return Ok(code),
    };
    let identity = crate::publish::Identity {
        device: loaded.config.device.id.clone(),
        district: loaded.config.device.district.clone(),
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let timeout = Duration::from_secs(args.timeout);
    let brokers = each_broker(&loaded.config.mqtt, &security);
    let several = brokers.len() > 1;
    let mut reports = Vec::new();
    let mut all_ok = true;
    for (mqtt, security) in brokers {
        let result = rt.block_on(round_trip(&mqtt, &security, &identity, timeout));
        all_ok &= result.is_ok();
        let at = format!("{}:{}", mqtt.host, mqtt.port);
        reports.push(report(&at, result, args.json, several));
    }
    if args.json {
        let one = reports.first().cloned().unwrap_or_default();
        let v = if several {
            json!({"ok": all_ok, "brokers": reports})
        } else {
            one
        };
        println!("{v}");
    } else if all_ok {
        let which = if several {
            "every broker"
        } else {
            "the broker"
        };
        println!("OK: this box can publish incidents to {which}");
    }
    Ok(if all_ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// One broker's round trip, printed for a person (unless `json`) and as JSON.
fn report(
    at: &str,
    result: Result<RoundTrip, RoundTripError>,
    json: bool,
    several: bool,
) -> serde_json::Value {
    let ms = |d: Duration| (d.as_secs_f64() * 1_000_000.0).round() / 1000.0;
    match result {
        Ok(r) => {
            if !json {
                let tls = if r.tls { " (TLS)" } else { "" };
                println!(
                    "broker  {}{tls}  connected in {} ms",
                    r.broker,
                    ms(r.connect)
                );
                println!("topic   {}  round trip {} ms", r.topic, ms(r.round_trip));
                println!("mqtt    {}{}", r.protocol, max_packet_words(r.max_packet));
            }
            json!({"ok": true, "broker": r.broker, "tls": r.tls, "topic": r.topic,
                   "connect_ms": ms(r.connect), "round_trip_ms": ms(r.round_trip),
                   "protocol": r.protocol, "max_packet_bytes": r.max_packet})
        }
        Err(e) => {
            if !json {
                let prefix = if several {
                    format!("broker {at}: ")
                } else {
                    String::new()
                };
                eprintln!("vigil mqtt-test: {prefix}{e}");
            }
            json!({"ok": false, "broker": at, "error": e.to_string()})
        }
    }
}

/// What the broker said about its message size, for a person.
fn max_packet_words(max: Option<usize>) -> String {
    match max {
        Some(n) => {
            format!("  the broker takes messages up to {n} bytes (pictures are made to fit)")
        }
        None => String::new(),
    }
}
