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
use vigil::publish::Identity;
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

/// The least and the greatest multiplier of the busy rate a step may have.
const MIN_RATE: f64 = 0.001;
const MAX_RATE: f64 = 10_000.0;

/// A step holds when everything arrived, in order, with p99 under this.
const HELD_P99_MS: f64 = 1000.0;

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    anyhow::ensure!(
        args.districts > 0 && args.boxes >= args.districts,
        "--boxes must be at least --districts (and there must be a district)"
    );
    // Past MAX_RATE a schedule would be millions of messages a box (and a gap below one part in
    // 1e-300 overflows a Duration).
    anyhow::ensure!(
        args.rates.iter().all(|r| (MIN_RATE..=MAX_RATE).contains(r)),
        "--rates must be numbers from {MIN_RATE} to {MAX_RATE}"
    );
    anyhow::ensure!(
        args.beyond <= MAX_RATE,
        "--beyond must be at most {MAX_RATE}"
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
    let devices: Vec<String> = specs.iter().flat_map(|s| s.boxes.clone()).collect();
    let ledger = Arc::new(Ledger::new(&devices));
    let _consumers = (0..args.consumers)
        .map(|n| consumer(&tier, n, Arc::clone(&ledger)))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let material = Arc::new(payloads::Material::load(&vigil_tests::fixture(
        "plaza_t12.png",
    ))?);
    let state = state_dir(&args, &tier)?;
    let baseline_rss = procstat::rss_mib("self")?.0;
    let (shutdown_tx, shutdown) = watch::channel(false);
    let mut boxes = Vec::new();
    let numbered = specs
        .iter()
        .enumerate()
        .flat_map(|(d, s)| s.boxes.iter().map(move |b| (d, s, b)));
    for (index, (d, spec, device)) in numbered.enumerate() {
        let identity = Identity {
            device: device.clone(),
            district: spec.id.clone(),
        };
        let mqtt = tier.mqtt(At::District(d), device)?;
        let b = sim::start(
            index as u32,
            identity,
            args.cameras,
            mqtt,
            &state,
            shutdown.clone(),
        )?;
        boxes.push(Arc::new(b));
    }
    wait_connected(&ledger, &boxes).await?;
    let setup_text = format!(
        "{}; evidence picture {} bytes; outboxes on {}",
        args_text(&args),
        material.jpeg.bytes.len(),
        fs_type(&state)
    );
    eprintln!(
        "fleet-bench: {} boxes connected in {:.1} s; {setup_text}",
        boxes.len(),
        setup.elapsed().as_secs_f64()
    );
    let ctx = Ctx {
        args: &args,
        tier: &tier,
        boxes: &boxes,
        material: &material,
        ledger: &ledger,
        baseline_rss,
    };
    let rows = steps(&ctx, &setup_text).await;
    let _ = shutdown_tx.send(true);
    STOPPING.store(true, Ordering::Relaxed);
    let _ = tokio::time::timeout(Duration::from_secs(30), async {
        while !boxes.iter().all(|b| b.ended()) {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    report::print(&setup_text, &rows?);
    Ok(())
}

/// What every step needs.
struct Ctx<'a> {
    args: &'a Args,
    tier: &'a Tier,
    boxes: &'a [Arc<SimBox>],
    material: &'a Arc<payloads::Material>,
    ledger: &'a Arc<Ledger>,
    baseline_rss: f64,
}

/// The steps: the listed rates, then doubling while each step holds. The JSON is written after
/// every step, so that a run that breaks keeps what it measured.
async fn steps(ctx: &Ctx<'_>, setup_text: &str) -> anyhow::Result<Vec<Row>> {
    let mut rows = Vec::new();
    let mut rates = ctx.args.rates.clone();
    let mut i = 0;
    while i < rates.len() {
        let rate = rates[i];
        let row = step(ctx, rate).await?;
        eprintln!("{}", report::line(&row));
        let held = row.held(HELD_P99_MS);
        rows.push(row);
        if let Some(path) = &ctx.args.json {
            std::fs::write(path, report::json(setup_text, &rows).to_string())
                .with_context(|| path.display().to_string())?;
        }
        if i + 1 == rates.len() && held && rate * 2.0 <= ctx.args.beyond {
            rates.push(rate * 2.0);
        }
        i += 1;
    }
    Ok(rows)
}

/// The outboxes' folder: `--state-dir` (which must be empty: an old outbox would be sent again
/// and counted), or a fresh one.
fn state_dir(args: &Args, tier: &Tier) -> anyhow::Result<PathBuf> {
    let state = match &args.state_dir {
        Some(d) => d.clone(),
        None => tier.dir.join("outboxes"),
    };
    std::fs::create_dir_all(&state).with_context(|| state.display().to_string())?;
    anyhow::ensure!(
        std::fs::read_dir(&state)?.next().is_none(),
        "--state-dir {} is not empty: an earlier run's outboxes would be sent again",
        state.display()
    );
    Ok(state)
}

/// The file system type of `dir` (`stat -f`), for the report.
fn fs_type(dir: &std::path::Path) -> String {
    std::process::Command::new("stat")
        .args(["-f", "-c", "%T"])
        .arg(dir)
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| "an unknown file system".into())
}

fn args_text(args: &Args) -> String {
    format!(
        "{} boxes × {} cameras in {} districts, steps of {} s (drain up to {} s), {} city consumer(s)",
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
    let name = format!("{}-{n}", report::CONSUMER_THREAD);
    std::thread::Builder::new().name(name).spawn(move || {
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
    })?;
    subscribed
        .recv_timeout(Duration::from_secs(20))
        .context("a city consumer was not subscribed within 20 s")?;
    Ok(client)
}

/// Wait until every box is connected and the city has every box's birth message (the bridges
/// are up).
async fn wait_connected(ledger: &Ledger, boxes: &[Arc<SimBox>]) -> anyhow::Result<()> {
    let end = Instant::now() + Duration::from_secs(120);
    loop {
        let births = ledger.births();
        let up = boxes.iter().filter(|b| b.connected()).count();
        if up == boxes.len() && births == boxes.len() {
            return Ok(());
        }
        anyhow::ensure!(
            Instant::now() < end,
            "after 120 s, {up} of {} boxes connected and {births} boxes' birth messages at the city",
            boxes.len()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Run one step at `rate` and measure it. A box whose session ended fails the run.
async fn step(ctx: &Ctx<'_>, rate: f64) -> anyhow::Result<Row> {
    let (boxes, ledger) = (ctx.boxes, ctx.ledger);
    let length = Duration::from_secs(ctx.args.step_s);
    let before = Sample::take(ctx.tier, ledger)?;
    let start = Instant::now();
    let tasks: Vec<_> = boxes
        .iter()
        .map(|b| {
            let (b, m, l) = (Arc::clone(b), Arc::clone(ctx.material), Arc::clone(ledger));
            tokio::spawn(async move { b.step(rate, length, m, l).await })
        })
        .collect();
    let mut late = Duration::ZERO;
    for t in tasks {
        late = late.max(t.await?.map_err(anyhow::Error::msg)?);
    }
    let sent = start.elapsed();
    let end = Instant::now() + Duration::from_secs(ctx.args.drain_s);
    while (!ledger.settled() || boxes.iter().any(|b| b.queued() > 0)) && Instant::now() < end {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    if let Some(b) = boxes.iter().find(|b| b.ended()) {
        anyhow::bail!("{}: its session ended during the step", b.identity.device);
    }
    let after = Sample::take(ctx.tier, ledger)?;
    let s = report::Step {
        rate,
        boxes: boxes.len(),
        length,
        sent,
        late,
        undelivered: ledger.undelivered(),
        queued: boxes.iter().map(|b| b.queued()).sum(),
        baseline_rss: ctx.baseline_rss,
    };
    Ok(Row::new(s, before, after))
}
