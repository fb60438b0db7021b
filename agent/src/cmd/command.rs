//! `vigil command [--config FILE] COMMAND`: send one command to a box over MQTT, as the
//! operations centre does, and print its result (docs/mqtt.md, "Commands"). It connects with
//! the configuration's `[mqtt]` settings as client `{device}-command-{random}` (never the
//! device id, so a running agent is not pushed off), subscribes to the result topic, publishes
//! the request with a fresh `id` and `sent_at`, and waits for the result with that `id`.
//! With `--key FILE` the request is signed (docs/mqtt.md, "Signed commands").
//! With `--out FILE` it also waits for the picture a `snapshot` result names, checks its
//! sha256 and writes it to FILE. Exit 0 when the box answered `ok`, 1 when it refused (its
//! error code and message printed), 2 when no result (or no picture) came in time.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS, SubscribeFilter};
use serde_json::{Map, Value, json};

use crate::clock::rfc3339_ms;
use crate::publish::Identity;

/// Arguments of `vigil command`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The command (ping, snapshot, clip, ack, arm, disarm, config).
    #[arg(value_name = "COMMAND")]
    command: String,
    /// Configuration file: its [mqtt] section reaches the broker, its [device] names the box.
    #[arg(
        long,
        short,
        value_name = "FILE",
        default_value = crate::config::DEFAULT_CONFIG
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
    /// Seconds to wait for the result (1–3600) [default: 90 for clip and config, which wait
    /// for a clip's end or a configuration's cameras; else 10].
    #[arg(long, value_name = "S")]
    timeout: Option<u64>,
    /// Print the result as it came (JSON).
    #[arg(long)]
    json: bool,
    /// Write the picture a `snapshot` answers with to this file (JPEG).
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// For `config`: the configuration file to push (its text and sha256 become the request's
    /// `toml` and `sha256`).
    #[arg(long, value_name = "FILE")]
    file: Option<PathBuf>,
    /// Sign the request with this private key (from `vigil keygen`): boxes with
    /// `[commands] public_keys` take clip, arm, disarm and config only signed.
    #[arg(long, value_name = "FILE")]
    key: Option<PathBuf>,
}

/// Send the command and wait for its result.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let Ok(Value::Object(mut extra)) = serde_json::from_str::<Value>(&args.args) else {
        eprintln!("vigil command: --args must be a JSON object, e.g. '{{\"camera\":\"gate\"}}'");
        return Ok(ExitCode::from(64));
    };
    if let Some(path) = &args.file {
        match std::fs::read_to_string(path) {
            Ok(text) => {
                let sha = crate::hash::sha256_hex(text.as_bytes());
                extra.insert("toml".into(), json!(text));
                extra.insert("sha256".into(), json!(sha));
            }
            Err(e) => {
                eprintln!("vigil command: --file {}: {e}", path.display());
                return Ok(ExitCode::from(66));
            }
        }
    }
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
    // The first broker of the list: where the centre's commands are expected.
    let broker = mqtt.endpoints().swap_remove(0);
    let mut opts = MqttOptions::new(
        // A random suffix: two `vigil command` runs at once must not take each other's session.
        format!("{}-command-{:08x}", target.device, rand::random::<u32>()),
        broker.host.clone(),
        broker.port,
    );
    opts.set_keep_alive(Duration::from_secs(mqtt.keep_alive_s.max(5)));
    opts.set_max_packet_size(64 << 20, 64 << 20);
    security.for_broker(&broker).apply(&mut opts);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let slow = matches!(args.command.as_str(), "clip" | "config");
    let timeout = args.timeout.unwrap_or(if slow { 90 } else { 10 });
    let timeout = Duration::from_secs(timeout.clamp(1, 3600));
    let mut request = build_request(extra);
    if let Some(path) = &args.key {
        let key = std::fs::read_to_string(path)
            .map_err(|e| e.to_string())
            .and_then(|t| crate::config::keys::private_key(&t).map_err(|e| e.to_string()));
        match key {
            Ok(key) => {
                let topic = format!("{}/cmd/{}", target.root(), args.command);
                let sig = crate::command::signature::sign(&key, &topic, &request);
                request.insert("sig".into(), json!(sig));
            }
            Err(e) => {
                eprintln!("vigil command: --key {}: {e}", path.display());
                return Ok(ExitCode::from(64));
            }
        }
    }
    let want_picture = args.out.is_some();
    let result = rt.block_on(exchange(
        opts,
        &target,
        &args.command,
        request,
        timeout,
        want_picture,
    ));
    let result = match (result, &args.out) {
        (Ok((v, Some(jpeg))), Some(out)) => match std::fs::write(out, &jpeg) {
            Ok(()) => {
                eprintln!(
                    "picture written to {} ({} bytes)",
                    out.display(),
                    jpeg.len()
                );
                Ok(v)
            }
            Err(e) => Err(format!("cannot write {}: {e}", out.display())),
        },
        (r, _) => r.map(|(v, _)| v),
    };
    Ok(report(result, args.json, &args.command))
}

/// The request body: the arguments with a fresh `id` and `sent_at`.
fn build_request(mut body: Map<String, Value>) -> Map<String, Value> {
    body.insert("id".into(), json!(uuid::Uuid::now_v7().to_string()));
    body.insert("sent_at".into(), json!(rfc3339_ms(SystemTime::now())));
    body
}

/// What came back: the result, and the picture it names when one was asked for.
type Exchanged = (Value, Option<Vec<u8>>);

/// Subscribe to the result (and, with `want_picture`, to the request's snapshot topic), send
/// the request, wait for the result with its id (and the picture it names).
async fn exchange(
    opts: MqttOptions,
    target: &Identity,
    command: &str,
    request: Map<String, Value>,
    timeout: Duration,
    want_picture: bool,
) -> Result<Exchanged, String> {
    let (client, mut events) = AsyncClient::new(opts, 10);
    let result_topic = target.command_result_topic(command);
    let topic = format!("{}/cmd/{command}", target.root());
    let id = request.get("id").cloned().unwrap_or(Value::Null);
    let mut filters = vec![SubscribeFilter::new(result_topic.clone(), QoS::AtLeastOnce)];
    if want_picture {
        let picture = target.camera_snapshot_topic("+", id.as_str().unwrap_or_default());
        filters.push(SubscribeFilter::new(picture, QoS::AtLeastOnce));
    }
    let deadline = tokio::time::Instant::now() + timeout;
    let mut got = Got::default();
    let outcome = loop {
        if let Some(done) = got.complete(want_picture) {
            break done;
        }
        let ev = match tokio::time::timeout_at(deadline, events.poll()).await {
            Ok(ev) => ev,
            Err(_) => break Err(got.late(&result_topic, &topic, timeout)),
        };
        match ev {
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                if let Err(e) = client.try_subscribe_many(filters.clone()) {
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
                    Ok(v) if v["id"] == id => got.result = Some(v),
                    _ => {}
                }
            }
            Ok(Event::Incoming(Packet::Publish(p))) => {
                got.pictures.push((p.topic, p.payload.to_vec()));
            }
            Ok(_) => {}
            Err(e) => break Err(crate::publish::wire::explain(&e)),
        }
    };
    let _ = client.try_disconnect();
    let _ = tokio::time::timeout(Duration::from_millis(300), events.poll()).await;
    outcome
}

/// What arrived so far.
#[derive(Default)]
struct Got {
    result: Option<Value>,
    pictures: Vec<(String, Vec<u8>)>,
}

impl Got {
    /// The outcome, once everything awaited is here.
    fn complete(&mut self, want_picture: bool) -> Option<Result<Exchanged, String>> {
        let result = self.result.as_ref()?;
        let answer = &result["answer"];
        let named = answer["topic"].as_str().filter(|_| want_picture);
        let Some(named) = named else {
            return Some(Ok((result.clone(), None)));
        };
        let (_, bytes) = self.pictures.iter().find(|(t, _)| t == named)?;
        let sha = crate::hash::sha256_hex(bytes);
        Some(if answer["sha256"].as_str() == Some(&*sha) {
            Ok((result.clone(), Some(bytes.clone())))
        } else {
            Err(format!(
                "the picture on {named} does not match the sha256 of the result"
            ))
        })
    }

    /// Why waiting ended without everything.
    fn late(&self, result_topic: &str, topic: &str, timeout: Duration) -> String {
        match &self.result {
            Some(_) => format!(
                "the result came but not its picture within {} s",
                timeout.as_secs()
            ),
            None => format!(
                "no result on {result_topic} within {} s: is [commands] enabled on the box, is it connected, and may this client publish to {topic}?",
                timeout.as_secs()
            ),
        }
    }
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
