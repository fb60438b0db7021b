//! One row per step: what was offered and delivered, latency, losses, and what the brokers, the
//! city consumer and the generator cost; printed as Markdown tables for docs/fleet.md and as
//! JSON.

use std::time::Duration;

use serde_json::json;
use tokio::time::Instant;
use vigil_tests::tier::Tier;

use crate::ledger::{Ledger, Tally, quantile};
use crate::procstat::{cpu_s, rss_mib, threads_cpu_s};

/// The name of the city consumers' threads (their CPU is told apart from the generator's).
pub const CONSUMER_THREAD: &str = "city-consumer";

/// CPU seconds and resident memory of the brokers and of this process, with the ledger.
#[derive(Debug, Clone)]
pub struct Sample {
    at: Instant,
    district_cpu: f64,
    city_cpu: f64,
    own_cpu: f64,
    consumer_cpu: f64,
    district_rss: f64,
    districts: usize,
    city_rss: f64,
    own_rss: f64,
    tally: Tally,
}

fn pid(m: &vigil_tests::Mosquitto) -> anyhow::Result<String> {
    m.pid()
        .map(|p| p.to_string())
        .ok_or_else(|| anyhow::anyhow!("a broker is not running"))
}

impl Sample {
    /// Now.
    pub fn take(tier: &Tier, ledger: &Ledger) -> anyhow::Result<Sample> {
        let (mut district_cpu, mut district_rss) = (0.0, 0.0);
        for d in &tier.districts {
            let p = pid(&d.broker)?;
            district_cpu += cpu_s(&p)?;
            district_rss += rss_mib(&p)?.0;
        }
        let city = pid(&tier.city)?;
        Ok(Sample {
            at: Instant::now(),
            district_cpu,
            city_cpu: cpu_s(&city)?,
            own_cpu: cpu_s("self")?,
            consumer_cpu: threads_cpu_s(CONSUMER_THREAD)?,
            district_rss,
            districts: tier.districts.len(),
            city_rss: rss_mib(&city)?.0,
            own_rss: rss_mib("self")?.0,
            tally: ledger.take(),
        })
    }
}

/// The measurements of a step, for [`Row::new`].
pub struct Step {
    /// Multiplier of the busy rate.
    pub rate: f64,
    /// Boxes.
    pub boxes: usize,
    /// The step's length: incidents open and health is sent within it (updates and closes
    /// follow for up to 30 s more).
    pub length: Duration,
    /// How long the schedule took to hand everything over.
    pub sent: Duration,
    /// The latest a message was handed over against its schedule.
    pub late: Duration,
    /// Messages made and not at the city when the drain ended (since the start of the run).
    pub undelivered: u64,
    /// Rows still in the boxes' outboxes then.
    pub queued: usize,
    /// This process's RSS before the boxes started, MiB.
    pub baseline_rss: f64,
}

/// How a step went.
#[derive(Debug, Clone)]
pub struct Row {
    s: StepFigures,
    p50: f64,
    p99: f64,
    max: f64,
    cost: Cost,
}

#[derive(Debug, Clone)]
struct StepFigures {
    rate: f64,
    boxes: usize,
    sent_s: f64,
    arrival_s: f64,
    late_ms: f64,
    offered: f64,
    delivered: f64,
    mbytes: f64,
    events: u64,
    undelivered: u64,
    queued: usize,
    duplicates: u64,
    out_of_order: u64,
    out_of_order_across: u64,
}

#[derive(Debug, Clone)]
struct Cost {
    district_cpu: f64,
    district_rss: f64,
    broker_rss: f64,
    city_cpu: f64,
    city_rss: f64,
    consumer_cpu: f64,
    own_cpu: f64,
    own_rss: f64,
}

fn pct(cpu: f64, wall: f64) -> f64 {
    100.0 * cpu / wall.max(1e-9)
}

fn sum3(t: &Tally, i: usize) -> u64 {
    let pick = |x: (u64, u64, u64)| [x.0, x.1, x.2][i];
    pick(t.incidents) + pick(t.pictures) + pick(t.health)
}

impl Row {
    /// The row of step `s` between samples `a` and `b`.
    pub fn new(s: Step, a: Sample, b: Sample) -> Row {
        let wall = b.at.duration_since(a.at).as_secs_f64();
        let sent_s = s.sent.as_secs_f64();
        let (ta, tb) = (&a.tally, &b.tally);
        // Rates per second of the step's length (each incident opened in it brings its four
        // messages); from the step's start to its last arrival shows a backlog.
        let length = s.length.as_secs_f64().max(1e-9);
        let arrival_s = tb
            .last_arrival
            .map_or(sent_s, |t| t.duration_since(a.at.into_std()).as_secs_f64());
        let per100 = 100.0 / s.boxes as f64;
        let l = &tb.latencies;
        Row {
            s: StepFigures {
                rate: s.rate,
                boxes: s.boxes,
                sent_s,
                arrival_s,
                late_ms: s.late.as_secs_f64() * 1000.0,
                offered: (sum3(tb, 0) - sum3(ta, 0)) as f64 / length,
                delivered: (sum3(tb, 1) - sum3(ta, 1)) as f64 / length,
                mbytes: (tb.bytes - ta.bytes) as f64 / length / 1e6,
                events: tb.incidents.0 - ta.incidents.0,
                undelivered: s.undelivered,
                queued: s.queued,
                duplicates: sum3(tb, 2) - sum3(ta, 2),
                out_of_order: tb.out_of_order.0 - ta.out_of_order.0,
                out_of_order_across: tb.out_of_order.1 - ta.out_of_order.1,
            },
            p50: quantile(l, 0.5),
            p99: quantile(l, 0.99),
            max: quantile(l, 1.0),
            cost: Cost {
                district_cpu: pct(b.district_cpu - a.district_cpu, wall) * per100,
                district_rss: b.district_rss * per100,
                broker_rss: b.district_rss / b.districts as f64,
                city_cpu: pct(b.city_cpu - a.city_cpu, wall),
                city_rss: b.city_rss,
                consumer_cpu: pct(b.consumer_cpu - a.consumer_cpu, wall),
                own_cpu: pct(
                    (b.own_cpu - b.consumer_cpu) - (a.own_cpu - a.consumer_cpu),
                    wall,
                ) / s.boxes as f64,
                own_rss: (b.own_rss - s.baseline_rss).max(0.0) * 1024.0 / s.boxes as f64,
            },
        }
    }

    /// Everything made arrived, once at least and in order within each consumer, with p99
    /// below `p99_ms`.
    pub fn held(&self, p99_ms: f64) -> bool {
        self.s.undelivered == 0 && self.s.out_of_order == 0 && self.p99 < p99_ms
    }
}

/// A one-line summary of a step, while the run goes on.
pub fn line(r: &Row) -> String {
    let s = &r.s;
    format!(
        "fleet-bench: {}× — {:.1} msg/s offered, {:.1} delivered ({:.2} MB/s); schedule done after {:.0} s, last arrival after {:.0} s; p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms; {} events; {} messages undelivered ({} rows still queued on boxes), {} duplicates, {} out of order ({} across consumers); generator {:.0} ms late at most",
        s.rate,
        s.offered,
        s.delivered,
        s.mbytes,
        s.sent_s,
        s.arrival_s,
        r.p50,
        r.p99,
        r.max,
        s.events,
        s.undelivered,
        s.queued,
        s.duplicates,
        s.out_of_order,
        s.out_of_order_across,
        s.late_ms
    )
}

/// A Markdown table of `header` and `rows`.
fn table(header: &[&str], rows: impl Iterator<Item = Vec<String>>) {
    println!("\n| {} |", header.join(" | "));
    println!("|{}", "---|".repeat(header.len()));
    for r in rows {
        println!("| {} |", r.join(" | "));
    }
}

/// The Markdown tables.
pub fn print(setup: &str, rows: &[Row]) {
    println!("\n### fleet-bench: {setup}");
    table(
        &[
            "load",
            "boxes",
            "offered msg/s",
            "delivered msg/s",
            "MB/s",
            "last arrival s",
            "p50 ms",
            "p99 ms",
            "max ms",
            "events",
            "undelivered",
            "duplicates",
            "out of order",
            "held",
        ],
        rows.iter().map(|r| {
            let s = &r.s;
            let held = if r.held(crate::HELD_P99_MS) {
                "yes"
            } else {
                "no"
            };
            vec![
                format!("{}×", s.rate),
                s.boxes.to_string(),
                format!("{:.1}", s.offered),
                format!("{:.1}", s.delivered),
                format!("{:.2}", s.mbytes),
                format!("{:.0}", s.arrival_s),
                format!("{:.0}", r.p50),
                format!("{:.0}", r.p99),
                format!("{:.0}", r.max),
                s.events.to_string(),
                s.undelivered.to_string(),
                s.duplicates.to_string(),
                s.out_of_order.to_string(),
                held.to_string(),
            ]
        }),
    );
    table(
        &[
            "load",
            "district brokers CPU % per 100 boxes",
            "RSS MiB per district broker",
            "city broker CPU %",
            "city broker RSS MiB",
            "city consumer CPU %",
            "generator CPU % per box",
            "generator RSS KiB per box",
            "generator late ms",
        ],
        rows.iter().map(|r| {
            let c = &r.cost;
            vec![
                format!("{}×", r.s.rate),
                format!("{:.1}", c.district_cpu),
                format!("{:.1}", c.broker_rss),
                format!("{:.1}", c.city_cpu),
                format!("{:.1}", c.city_rss),
                format!("{:.1}", c.consumer_cpu),
                format!("{:.3}", c.own_cpu),
                format!("{:.0}", c.own_rss),
                format!("{:.0}", r.s.late_ms),
            ]
        }),
    );
}

/// The rows as JSON.
pub fn json(setup: &str, rows: &[Row]) -> serde_json::Value {
    json!({
        "setup": setup,
        "time": vigil::clock::rfc3339_ms(std::time::SystemTime::now()),
        "steps": rows.iter().map(|r| {
            let (s, c) = (&r.s, &r.cost);
            json!({
                "rate": s.rate, "boxes": s.boxes, "sent_s": s.sent_s, "arrival_s": s.arrival_s,
                "offered_msg_s": s.offered, "delivered_msg_s": s.delivered, "mbytes_s": s.mbytes,
                "p50_ms": r.p50, "p99_ms": r.p99, "max_ms": r.max, "events": s.events,
                "undelivered": s.undelivered, "queued_on_boxes": s.queued,
                "duplicates": s.duplicates, "out_of_order": s.out_of_order,
                "out_of_order_across_consumers": s.out_of_order_across,
                "district_cpu_pct_per_100_boxes": c.district_cpu,
                "district_rss_mib_per_100_boxes": c.district_rss,
                "district_broker_rss_mib": c.broker_rss,
                "city_cpu_pct": c.city_cpu, "city_rss_mib": c.city_rss,
                "city_consumer_cpu_pct": c.consumer_cpu,
                "generator_cpu_pct_per_box": c.own_cpu, "generator_rss_kib_per_box": c.own_rss,
                "generator_late_ms": s.late_ms, "held": r.held(crate::HELD_P99_MS),
            })
        }).collect::<Vec<_>>(),
    })
}
