//! `vigil mqtt-test [--config FILE]`: connect to the configured broker with the configured TLS
//! and credentials, publish a message on the device's own test topic and read it back; print
//! the connect time and the round-trip latency. A failure names its stage — DNS, TCP, TLS
//! (with the certificate problem), authentication or ACL — and exits 1.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use serde_json::json;

use crate::publish::roundtrip::round_trip;

/// Arguments of `vigil mqtt-test`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Configuration file (its [mqtt] section and [device] identity are used).
    #[arg(
        long,
        short,
        value_name = "FILE",
        default_value = "/etc/vigil/vigil.toml"
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
    let mqtt = loaded.config.mqtt.clone();
    let identity = crate::publish::payload::Identity {
        device: loaded.config.device.id.clone(),
        district: loaded.config.device.district.clone(),
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let timeout = Duration::from_secs(args.timeout);
    let result = rt.block_on(round_trip(&mqtt, &security, &identity, timeout));
    let ms = |d: Duration| (d.as_secs_f64() * 1_000_000.0).round() / 1000.0;
    match result {
        Ok(r) => {
            if args.json {
                println!(
                    "{}",
                    json!({"ok": true, "broker": r.broker, "tls": r.tls, "topic": r.topic,
                           "connect_ms": ms(r.connect), "round_trip_ms": ms(r.round_trip),
                           "protocol": r.protocol, "max_packet_bytes": r.max_packet})
                );
            } else {
                let tls = if r.tls { " (TLS)" } else { "" };
                println!(
                    "broker  {}{tls}  connected in {} ms",
                    r.broker,
                    ms(r.connect)
                );
                println!("topic   {}  round trip {} ms", r.topic, ms(r.round_trip));
                println!("mqtt    {}{}", r.protocol, max_packet_words(r.max_packet));
                println!("OK: this box can publish incidents to the broker");
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            if args.json {
                println!("{}", json!({"ok": false, "error": e.to_string()}));
            } else {
                eprintln!("vigil mqtt-test: {e}");
            }
            Ok(ExitCode::FAILURE)
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
