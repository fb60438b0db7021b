//! `vigil command [--config FILE] COMMAND`: send one command to a box over MQTT, as the
//! operations centre does, and print its result (docs/mqtt.md, "Commands"). It connects with
//! the configuration's `[mqtt]` settings as client `{device}-command-{random}` (never the
//! device id, so a running agent is not pushed off), subscribes to the result topic, publishes
//! the request with a fresh `id` and `sent_at`, and waits for the result with that `id`.
//! Exit 0 when the box answered `ok`, 1 when it refused (its error code and message printed),
//! 2 when no result came in time.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use serde_json::{Map, Value, json};

use crate::publish::payload::{Identity, rfc3339_ms};

/// Arguments of `vigil command`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The command (`ping`).
    #[arg(value_name = "COMMAND")]
    command: String,
    /// Configuration file: its [mqtt] section reaches the broker, its [device] names the box.
    #[arg(
        long,
        short,
        value_name = "FILE",
        default_value = "/etc/vigil/vigil.toml"
    )]
    config: PathBuf,
    /// The box to command, if not the configuration's own device.
    #[arg(long, value_name = "ID")]
    device: Option<String>,
    /// Its district, if not the configuration's.
    #[arg(long, value_name = "ID")]
    district: Option<String>,
    /// The command's arguments, a JSON object.
    #[arg(long, value_name = "JSON", default_value = "{}")]
    args: String,
    /// Seconds to wait for the result (1–3600).
    #[arg(long, default_value_t = 10, value_name = "S")]
    timeout: u64,
    /// Print the result as it came (JSON).
    #[arg(long)]
    json: bool,
}

/// Send the command and wait for its result.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let Ok(Value::Object(extra)) = serde_json::from_str::<Value>(&args.args) else {
        eprintln!("vigil command: --args must be a JSON object, e.g. '{{\"camera\":\"gate\"}}'");
        return Ok(ExitCode::from(64));
    };
    let (loaded, security) = match super::broker_settings(&args.config) {
        Ok(both) => both,
        Err(code) => return Ok(code),
    };
    let mqtt = loaded.config.mqtt.clone();
    let target = Identity {
        device: args.device.unwrap_or(loaded.config.device.id.clone()),
        district: args
            .district
            .unwrap_or(loaded.config.device.district.clone()),
    };
    let mut opts = MqttOptions::new(
        format!(
            "{}-command-{}",
            target.device,
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        ),
        mqtt.host.clone(),
        mqtt.port,
    );
    opts.set_keep_alive(Duration::from_secs(mqtt.keep_alive_s.max(5)));
    opts.set_max_packet_size(64 << 20, 64 << 20);
    security.apply(&mut opts);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let timeout = Duration::from_secs(args.timeout.clamp(1, 3600));
    let request = build_request(extra);
    let result = rt.block_on(exchange(opts, &target, &args.command, request, timeout));
    Ok(report(result, args.json, &args.command))
}

/// The request body: the arguments with a fresh `id` and `sent_at`.
fn build_request(mut body: Map<String, Value>) -> Map<String, Value> {
    body.insert("id".into(), json!(uuid::Uuid::now_v7().to_string()));
    body.insert("sent_at".into(), json!(rfc3339_ms(SystemTime::now())));
    body
}

/// Subscribe to the result, send the request, wait for the result with its id.
async fn exchange(
    opts: MqttOptions,
    target: &Identity,
    command: &str,
    request: Map<String, Value>,
    timeout: Duration,
) -> Result<Value, String> {
    let (client, mut events) = AsyncClient::new(opts, 10);
    let result_topic = target.command_result_topic(command);
    let topic = format!("{}/cmd/{command}", target.root());
    let id = request.get("id").cloned().unwrap_or(Value::Null);
    let deadline = tokio::time::Instant::now() + timeout;
    let outcome = loop {
        let ev = match tokio::time::timeout_at(deadline, events.poll()).await {
            Ok(ev) => ev,
            Err(_) => {
                break Err(format!(
                    "no result on {result_topic} within {} s: is [commands] enabled on the box, is it connected, and may this client publish to {topic}?",
                    timeout.as_secs()
                ));
            }
        };
        match ev {
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                if let Err(e) = client.try_subscribe(&result_topic, QoS::AtLeastOnce) {
                    break Err(e.to_string());
                }
            }
            Ok(Event::Incoming(Packet::SubAck(_))) => {
                let body = Value::Object(request.clone()).to_string();
                if let Err(e) = client.try_publish(&topic, QoS::AtLeastOnce, false, body) {
                    break Err(e.to_string());
                }
            }
            Ok(Event::Incoming(Packet::Publish(p))) if p.topic == result_topic => {
                match serde_json::from_slice::<Value>(&p.payload) {
                    Ok(v) if v["id"] == id => break Ok(v),
                    _ => {}
                }
            }
            Ok(_) => {}
            Err(e) => break Err(crate::publish::wire::explain(&e)),
        }
    };
    let _ = client.try_disconnect();
    let _ = tokio::time::timeout(Duration::from_millis(300), events.poll()).await;
    outcome
}

/// Print the result and choose the exit code.
fn report(result: Result<Value, String>, as_json: bool, command: &str) -> ExitCode {
    let v = match result {
        Ok(v) => v,
        Err(e) => {
            eprintln!("vigil command: {e}");
            return ExitCode::from(2);
        }
    };
    let ok = v["ok"].as_bool() == Some(true);
    if as_json {
        println!("{v}");
    } else if ok {
        println!("{command}: ok");
        if let Some(answer) = v["answer"].as_object() {
            for (k, val) in answer {
                println!(
                    "  {k}: {}",
                    val.as_str().map_or_else(|| val.to_string(), str::to_string)
                );
            }
        }
    } else {
        eprintln!(
            "{command}: refused ({}): {}",
            v["error"]["code"].as_str().unwrap_or("?"),
            v["error"]["message"].as_str().unwrap_or("")
        );
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
