//! `make fleet-bench`: a city of simulated boxes on this machine. The district brokers and the
//! city broker of `deploy/broker/` run as rendered (one mosquitto per district, each bridged to
//! the city over mutual TLS); each simulated box runs vigil's real publish path (its own SQLite
//! outbox, `publish::run`, TLS, its own login) and publishes real payloads (incident events,
//! evidence pictures, health) at the capacity model's busy rate times each step's multiplier;
//! consumers on a shared subscription at the city check every event off. Each step reports the
//! messages per second held, end-to-end latency from the box's `seq` commit to the city, losses,
//! broker CPU and memory per 100 boxes and the generator's own cost per box (docs/fleet.md).

mod ledger;
mod payloads;
mod procstat;
mod report;
mod sim;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use rumqttc::{Client, Event, Packet, QoS};
use tokio::sync::watch;
use tokio::time::Instant;
use vigil::publish::payload::Identity;
use vigil_tests::tier::{At, DistrictSpec, Tier};

use ledger::Ledger;
use report::{Row, Sample};
use sim::SimBox;

/// Simulated boxes through vigil's real publish path against the rendered broker tier.
#[derive(Debug, Parser)]
#[command(name = "fleet-bench")]
struct Args {
    /// Boxes in all, spread evenly over the districts.
    #[arg(long, default_value_t = 480)]
    boxes: usize,
    /// District brokers (each a mosquitto bridged to the city's).
    #[arg(long, default_value_t = 24)]
    districts: usize,
    /// Cameras per box.
    #[arg(long, default_value_t = 8)]
    cameras: usize,
    /// Load multipliers of the busy rate, one step each, in order.
    #[arg(long, value_delimiter = ',', default_value = "1,10")]
    rates: Vec<f64>,
    /// After the listed steps, keep doubling the multiplier up to this while every step holds.
    #[arg(long, default_value_t = 0.0)]
    beyond: f64,
    /// Length of a step, seconds (the schedule; delivery may take longer).
    #[arg(long, default_value_t = 120)]
    step_s: u64,
    /// How long after a step everything may take to arrive before it counts as undelivered.
    #[arg(long, default_value_t = 120)]
    drain_s: u64,
    /// Consumers at the city, on one shared subscription (with more than one, mosquitto does
    /// not keep a box's order within each consumer's share: see docs/fleet.md).
    #[arg(long, default_value_t = 1)]
    consumers: usize,
    /// Where the boxes' outboxes go (default: a fresh folder under the temporary folder).
    #[arg(long)]
    state_dir: Option<PathBuf>,
    /// Write the results as JSON here too.
    #[arg(long)]
    json: Option<PathBuf>,
}

/// Set at the end of the run, when the brokers go away under the consumers.
static STOPPING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// A step holds when everything arrived, in order, with p99 under this.
const HELD_P99_MS: f64 = 1000.0;

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    anyhow::ensure!(
        args.districts > 0 && args.boxes >= args.districts,
        "--boxes must be at least --districts (and there must be a district)"
    );
    anyhow::ensure!(
        args.rates.iter().all(|r| r.is_finite() && *r > 0.0),
        "--rates must be positive numbers"
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(run(args))
}

/// The district of each box and the boxes' device ids.
fn layout(args: &Args) -> Vec<DistrictSpec> {
    (0..args.districts)
        .map(|d| DistrictSpec {
            id: format!("d{:02}", d + 1),
            boxes: (0..args.boxes)
                .filter(|b| b % args.districts == d)
                .map(|b| format!("box-{:04}", b + 1))
                .collect(),
        })
        .collect()
}

async fn run(args: Args) -> anyhow::Result<()> {
    let specs = layout(&args);
    let setup = Instant::now();
    let tier = Tier::start("fleet-bench", &specs)?;
    eprintln!(
        "fleet-bench: {} district brokers and the city broker up in {:.1} s",
        specs.len(),
        setup.elapsed().as_secs_f64()
    );
    let devices: Vec<String> = (0..args.boxes)
        .map(|b| format!("box-{:04}", b + 1))
        .collect();
    let ledger = Arc::new(Ledger::new(&devices));
    let _consumers = (0..args.consumers)
        .map(|n| consumer(&tier, n, Arc::clone(&ledger)))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let material = Arc::new(payloads::Material::load(&vigil_tests::fixture(
        "plaza_t12.png",
    ))?);
    let state = match &args.state_dir {
        Some(d) => d.clone(),
        None => tier.dir.join("outboxes"),
    };
    std::fs::create_dir_all(&state).with_context(|| state.display().to_string())?;
    let (shutdown_tx, shutdown) = watch::channel(false);
    let mut boxes = Vec::new();
    for (d, spec) in specs.iter().enumerate() {
        for device in &spec.boxes {
            let index = devices
                .iter()
                .position(|x| x == device)
                .context("a box missing from the device list")? as u32;
            let identity = Identity {
                device: device.clone(),
                district: spec.id.clone(),
            };
            let mqtt = tier.mqtt(At::District(d), device)?;
            let b = sim::start(
                index,
                identity,
                args.cameras,
                mqtt,
                &state,
                shutdown.clone(),
            )?;
            boxes.push(Arc::new(b));
        }
    }
    wait_connected(&ledger, &boxes).await?;
    eprintln!(
        "fleet-bench: {} boxes × {} cameras connected in {:.1} s; evidence picture {} bytes",
        boxes.len(),
        args.cameras,
        setup.elapsed().as_secs_f64(),
        material.jpeg.bytes.len()
    );
    let mut rows = Vec::new();
    let mut rates = args.rates.clone();
    let mut i = 0;
    while i < rates.len() {
        let rate = rates[i];
        let row = step(&args, &tier, &boxes, rate, &material, &ledger).await?;
        eprintln!("{}", report::line(&row));
        let held = row.held(HELD_P99_MS);
        rows.push(row);
        if i + 1 == rates.len() && held && rate * 2.0 <= args.beyond {
            rates.push(rate * 2.0);
        }
        i += 1;
    }
    let _ = shutdown_tx.send(true);
    STOPPING.store(true, Ordering::Relaxed);
    for b in &boxes {
        let _ = tokio::time::timeout(Duration::from_secs(15), async {
            while !b.session.is_finished() {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
        .await;
    }
    report::print(&args_text(&args), &material, &rows);
    if let Some(path) = &args.json {
        std::fs::write(path, report::json(&args_text(&args), &rows).to_string())?;
    }
    Ok(())
}

fn args_text(args: &Args) -> String {
    format!(
        "{} boxes × {} cameras in {} districts, steps of {} s (drain up to {} s), {} city consumers",
        args.boxes, args.cameras, args.districts, args.step_s, args.drain_s, args.consumers
    )
}

/// A consumer at the city on `$share/city/vigil/v1/#`, with a kept session, that books every
/// message in `ledger`.
fn consumer(tier: &Tier, n: usize, ledger: Arc<Ledger>) -> anyhow::Result<Client> {
    let mut opts = tier.client(At::City, "city", &format!("city-consumer-{n}"))?;
    opts.set_clean_session(false);
    opts.set_keep_alive(Duration::from_secs(30));
    opts.set_max_packet_size(16 << 20, 16 << 20);
    let (client, mut conn) = Client::new(opts, 256);
    let (subscribed_tx, subscribed) = std::sync::mpsc::channel();
    let c = client.clone();
    std::thread::spawn(move || {
        for ev in conn.iter() {
            match ev {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    let _ = c.try_subscribe("$share/city/vigil/v1/#", QoS::AtLeastOnce);
                }
                Ok(Event::Incoming(Packet::SubAck(_))) => {
                    let _ = subscribed_tx.send(());
                }
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    ledger.arrived(n, &p.topic, &p.payload);
                }
                Ok(_) => {}
                Err(e) => {
                    if !STOPPING.load(Ordering::Relaxed) {
                        eprintln!("fleet-bench: city consumer {n}: {e}");
                    }
                    std::thread::sleep(Duration::from_millis(200));
                }
            }
        }
    });
    subscribed
        .recv_timeout(Duration::from_secs(20))
        .context("a city consumer was not subscribed within 20 s")?;
    Ok(client)
}

/// Wait until every box is connected and the city has as many messages as boxes (their retained
/// birth messages: the bridges are up).
async fn wait_connected(ledger: &Ledger, boxes: &[Arc<SimBox>]) -> anyhow::Result<()> {
    let end = Instant::now() + Duration::from_secs(120);
    loop {
        let statuses = ledger.messages.load(Ordering::Relaxed);
        let up = boxes.iter().filter(|b| b.connected()).count();
        if up == boxes.len() && statuses >= boxes.len() as u64 {
            return Ok(());
        }
        anyhow::ensure!(
            Instant::now() < end,
            "after 120 s, {up} of {} boxes connected and {statuses} birth messages at the city",
            boxes.len()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Run one step at `rate` and measure it.
async fn step(
    args: &Args,
    tier: &Tier,
    boxes: &[Arc<SimBox>],
    rate: f64,
    material: &Arc<payloads::Material>,
    ledger: &Arc<Ledger>,
) -> anyhow::Result<Row> {
    let length = Duration::from_secs(args.step_s);
    let before = Sample::take(tier, ledger)?;
    let start = Instant::now();
    let tasks: Vec<_> = boxes
        .iter()
        .map(|b| {
            let (b, m, l) = (Arc::clone(b), Arc::clone(material), Arc::clone(ledger));
            tokio::spawn(async move { b.step(rate, length, m, l).await })
        })
        .collect();
    let mut late = Duration::ZERO;
    for t in tasks {
        late = late.max(t.await?);
    }
    let sent = start.elapsed();
    let end = Instant::now() + Duration::from_secs(args.drain_s);
    while (!ledger.settled() || boxes.iter().any(|b| b.queued() > 0)) && Instant::now() < end {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let after = Sample::take(tier, ledger)?;
    let queued: usize = boxes.iter().map(|b| b.queued()).sum();
    let s = report::Step {
        rate,
        boxes: boxes.len(),
        sent,
        late,
        undelivered: ledger.awaited(),
        queued,
    };
    Ok(Row::new(s, before, after))
}
