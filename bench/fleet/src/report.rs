//! One row per step: what was offered and delivered, latency, losses, and what the brokers and
//! the generator cost; printed as a Markdown table for docs/fleet.md and as JSON.

use std::time::Duration;

use serde_json::json;
use tokio::time::Instant;
use vigil_tests::tier::Tier;

use crate::ledger::{Ledger, Tally, quantile};
use crate::payloads::Material;
use crate::procstat::{cpu_s, rss_mib};

/// CPU seconds and resident memory of the brokers and of this process, with the ledger.
#[derive(Debug, Clone)]
pub struct Sample {
    at: Instant,
    district_cpu: f64,
    city_cpu: f64,
    own_cpu: f64,
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
            district_rss,
            districts: tier.districts.len(),
            city_rss: rss_mib(&city)?.0,
            own_rss: rss_mib("self")?.0,
            tally: ledger.take(),
        })
    }
}

/// How a step went.
#[derive(Debug, Clone)]
pub struct Row {
    rate: f64,
    boxes: usize,
    /// Seconds the schedule ran, and until everything arrived (or the drain ended).
    sent_s: f64,
    elapsed_s: f64,
    late_ms: f64,
    offered: f64,
    delivered: f64,
    mbytes: f64,
    p50: f64,
    p99: f64,
    max: f64,
    events: u64,
    undelivered: usize,
    queued: usize,
    missing_pictures: i64,
    missing_health: i64,
    duplicates: u64,
    out_of_order: u64,
    district_cpu: f64,
    district_rss: f64,
    broker_rss: f64,
    city_cpu: f64,
    city_rss: f64,
    own_cpu: f64,
    own_rss: f64,
}

/// The measurements of a step, for [`Row::new`].
pub struct Step {
    /// Multiplier of the busy rate.
    pub rate: f64,
    /// Boxes.
    pub boxes: usize,
    /// How long the schedule took to hand everything over.
    pub sent: Duration,
    /// The latest a message was handed over against its schedule.
    pub late: Duration,
    /// Events committed and not at the city when the drain ended.
    pub undelivered: usize,
    /// Rows still in the boxes' outboxes then.
    pub queued: usize,
}

fn delta(a: (u64, u64), b: (u64, u64)) -> (u64, u64) {
    (b.0 - a.0, b.1 - a.1)
}

fn pct(cpu: f64, wall: f64) -> f64 {
    100.0 * cpu / wall.max(1e-9)
}

impl Row {
    /// The row of step `s` between samples `a` and `b`.
    pub fn new(s: Step, a: Sample, b: Sample) -> Row {
        let wall = b.at.duration_since(a.at).as_secs_f64();
        let sent_s = s.sent.as_secs_f64();
        let (ta, tb) = (&a.tally, &b.tally);
        let inc = delta(ta.incidents, tb.incidents);
        let (pic, hea) = (delta(ta.pictures, tb.pictures), delta(ta.health, tb.health));
        let per100 = 100.0 / s.boxes as f64;
        let l = &tb.latencies;
        Row {
            rate: s.rate,
            boxes: s.boxes,
            sent_s,
            elapsed_s: wall,
            late_ms: s.late.as_secs_f64() * 1000.0,
            offered: (inc.0 + pic.0 + hea.0) as f64 / sent_s.max(1e-9),
            delivered: (tb.messages - ta.messages) as f64 / sent_s.max(1e-9),
            mbytes: (tb.bytes - ta.bytes) as f64 / sent_s.max(1e-9) / 1e6,
            p50: quantile(l, 0.5),
            p99: quantile(l, 0.99),
            max: quantile(l, 1.0),
            events: inc.0,
            undelivered: s.undelivered,
            queued: s.queued,
            // Since the start: what a step left undelivered stays missing in the next.
            missing_pictures: tb.pictures.0 as i64 - tb.pictures.1 as i64,
            missing_health: tb.health.0 as i64 - tb.health.1 as i64,
            duplicates: tb.duplicates - ta.duplicates,
            out_of_order: tb.out_of_order - ta.out_of_order,
            district_cpu: pct(b.district_cpu - a.district_cpu, wall) * per100,
            district_rss: b.district_rss * per100,
            broker_rss: b.district_rss / b.districts as f64,
            city_cpu: pct(b.city_cpu - a.city_cpu, wall),
            city_rss: b.city_rss,
            own_cpu: pct(b.own_cpu - a.own_cpu, wall) / s.boxes as f64,
            own_rss: b.own_rss * 1024.0 / s.boxes as f64,
        }
    }

    /// Everything arrived, once each at most in order, with p99 at most `p99_ms`.
    pub fn held(&self, p99_ms: f64) -> bool {
        self.undelivered == 0
            && self.missing_pictures <= 0
            && self.missing_health <= 0
            && self.out_of_order == 0
            && self.p99 <= p99_ms
    }
}

/// A one-line summary of a step, while the run goes on.
pub fn line(r: &Row) -> String {
    format!(
        "fleet-bench: {}× — {:.1} msg/s offered, {:.1} delivered ({:.2} MB/s); p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms; {} events, {} undelivered ({} still queued on boxes), {} pictures and {} health missing, {} out of order, {} duplicates; generator {:.0} ms late at most",
        r.rate,
        r.offered,
        r.delivered,
        r.mbytes,
        r.p50,
        r.p99,
        r.max,
        r.events,
        r.undelivered,
        r.queued,
        r.missing_pictures,
        r.missing_health,
        r.out_of_order,
        r.duplicates,
        r.late_ms
    )
}

/// The Markdown tables.
pub fn print(setup: &str, material: &Material, rows: &[Row]) {
    println!("\n### fleet-bench: {setup}\n");
    println!(
        "Evidence picture {} bytes. Latency: from the box's `seq` (just before its outbox commit) to a city consumer.\n",
        material.jpeg.bytes.len()
    );
    println!(
        "| load | boxes | offered msg/s | delivered msg/s | MB/s | p50 ms | p99 ms | max ms | events | undelivered | out of order | held |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|");
    for r in rows {
        println!(
            "| {}× | {} | {:.1} | {:.1} | {:.2} | {:.0} | {:.0} | {:.0} | {} | {} | {} | {} |",
            r.rate,
            r.boxes,
            r.offered,
            r.delivered,
            r.mbytes,
            r.p50,
            r.p99,
            r.max,
            r.events,
            r.undelivered,
            r.out_of_order,
            if r.held(crate::HELD_P99_MS) {
                "yes"
            } else {
                "no"
            }
        );
    }
    println!(
        "\n| load | district brokers CPU % per 100 boxes | district brokers RSS MiB per 100 boxes | RSS MiB per district broker | city broker CPU % | city broker RSS MiB | generator CPU % per box | generator RSS KiB per box | generator late ms |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for r in rows {
        println!(
            "| {}× | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {:.3} | {:.0} | {:.0} |",
            r.rate,
            r.district_cpu,
            r.district_rss,
            r.broker_rss,
            r.city_cpu,
            r.city_rss,
            r.own_cpu,
            r.own_rss,
            r.late_ms
        );
    }
}

/// The rows as JSON.
pub fn json(setup: &str, rows: &[Row]) -> serde_json::Value {
    json!({
        "setup": setup,
        "time": vigil::publish::payload::rfc3339_ms(std::time::SystemTime::now()),
        "steps": rows.iter().map(|r| json!({
            "rate": r.rate, "boxes": r.boxes, "sent_s": r.sent_s, "elapsed_s": r.elapsed_s,
            "offered_msg_s": r.offered, "delivered_msg_s": r.delivered, "mbytes_s": r.mbytes,
            "p50_ms": r.p50, "p99_ms": r.p99, "max_ms": r.max, "events": r.events,
            "undelivered": r.undelivered, "queued_on_boxes": r.queued,
            "missing_pictures": r.missing_pictures, "missing_health": r.missing_health,
            "duplicates": r.duplicates, "out_of_order": r.out_of_order,
            "district_cpu_pct_per_100_boxes": r.district_cpu,
            "district_rss_mib_per_100_boxes": r.district_rss,
            "district_broker_rss_mib": r.broker_rss,
            "city_cpu_pct": r.city_cpu, "city_rss_mib": r.city_rss,
            "generator_cpu_pct_per_box": r.own_cpu, "generator_rss_kib_per_box": r.own_rss,
            "generator_late_ms": r.late_ms, "held": r.held(crate::HELD_P99_MS),
        })).collect::<Vec<_>>(),
    })
}
