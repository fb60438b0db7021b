//! `vigil outbox [stats|list|dead|export FILE]`: what waits for the broker, and what was set
//! aside as undeliverable, read straight from the outbox file (read-only; works whether the
//! agent runs or not).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use serde_json::json;

use super::status::{human_bytes, human_duration};
use crate::clock::unix_ms;
use crate::publish::inspect::{Inspect, export_line};

/// Arguments of `vigil outbox`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// What to show.
    #[command(subcommand)]
    action: Option<Action>,
    /// Configuration file (its storage.state_dir holds outbox.db).
    #[arg(
        long,
        short,
        value_name = "FILE",
        default_value = crate::config::DEFAULT_CONFIG,
        global = true
    )]
    config: PathBuf,
    /// The outbox file itself, instead of the one the configuration names.
    #[arg(long, value_name = "PATH", global = true)]
    file: Option<PathBuf>,
    /// JSON output.
    #[arg(long, global = true)]
    json: bool,
}

/// `vigil outbox` actions.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum Action {
    /// Rows, bytes and the oldest row per lane (the default).
    Stats,
    /// The first rows in delivery order (fire lane first).
    List {
        /// How many rows.
        #[arg(long, default_value_t = 20, value_name = "N")]
        rows: usize,
    },
    /// Messages set aside as undeliverable (dead letters), newest first, with why.
    Dead {
        /// How many rows.
        #[arg(long, default_value_t = 20, value_name = "N")]
        rows: usize,
    },
    /// Every row with its payload to FILE as JSON lines ("-" for stdout).
    Export {
        /// Where to write.
        file: PathBuf,
        /// Export the dead letters instead (with their reasons), to recover them by hand.
        #[arg(long)]
        dead: bool,
    },
}

/// Read and print.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let path = match &args.file {
        Some(p) => p.clone(),
        None => match crate::config::load(&args.config) {
            Ok(l) => l.resolve(&l.config.storage.state_dir).join("outbox.db"),
            Err(e) => {
                return Ok(super::report_start_error(
                    &crate::agent::StartError::Config(e),
                ));
            }
        },
    };
    let view = match Inspect::open(&path) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("vigil outbox: {e}");
            return Ok(ExitCode::FAILURE);
        }
    };
    let result = match args.action.clone().unwrap_or(Action::Stats) {
        Action::Stats => stats(&view, &path, args.json),
        Action::List { rows } => list(&view, rows, args.json),
        Action::Dead { rows } => dead(&view, rows, args.json),
        Action::Export { file, dead } => export(&view, &file, dead),
    };
    match result {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(e) => {
            eprintln!("vigil outbox: {e}");
            Ok(ExitCode::FAILURE)
        }
    }
}

fn age(created_ms: u64) -> String {
    human_duration(unix_ms(std::time::SystemTime::now()).saturating_sub(created_ms) / 1000)
}

fn stats(view: &Inspect, path: &std::path::Path, as_json: bool) -> anyhow::Result<()> {
    let lanes = view.stats()?;
    let seq = view.last_seq()?;
    let dead = view.dead(usize::MAX, false)?.len();
    if as_json {
        println!(
            "{}",
            json!({"file": path, "last_seq": seq, "lanes": lanes, "dead_letters": dead})
        );
        return Ok(());
    }
    println!("{}  (last incident seq {seq})", path.display());
    for l in &lanes {
        let oldest = l
            .oldest_ms
            .map_or(String::new(), |t| format!(", oldest {} ago", age(t)));
        println!(
            "  {:<10} {:>6} rows  {:>9}{oldest}",
            l.lane,
            l.rows,
            human_bytes(l.bytes)
        );
    }
    if dead > 0 {
        println!(
            "  {dead} dead letter(s): messages set aside as undeliverable (vigil outbox dead)"
        );
    }
    Ok(())
}

fn dead(view: &Inspect, rows: usize, as_json: bool) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    for (d, _) in view.dead(rows, false)? {
        let r = &d.row;
        let line = if as_json {
            json!(d).to_string()
        } else {
            format!(
                "{:>8}  {:<9}  seq {:<6}  {:>9}  set aside {:>7} ago  {}\n          {}",
                r.id,
                r.lane,
                r.seq.map_or("-".into(), |s| s.to_string()),
                human_bytes(r.bytes),
                age(d.dead_ms),
                r.topic,
                d.reason
            )
        };
        if writeln!(out, "{line}").is_err() {
            break;
        }
    }
    Ok(())
}

fn list(view: &Inspect, rows: usize, as_json: bool) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    for (r, _) in view.rows(rows, false)? {
        let line = if as_json {
            json!(r).to_string()
        } else {
            format!(
                "{:>8}  {:<9}  seq {:<6}  {:>9}  {:>7} ago  {}",
                r.id,
                r.lane,
                r.seq.map_or("-".into(), |s| s.to_string()),
                human_bytes(r.bytes),
                age(r.created_ms),
                r.topic
            )
        };
        if writeln!(out, "{line}").is_err() {
            break;
        }
    }
    Ok(())
}

fn export(view: &Inspect, file: &std::path::Path, dead: bool) -> anyhow::Result<()> {
    let rows: Vec<serde_json::Value> = if dead {
        view.dead(usize::MAX, true)?
            .iter()
            .map(|(d, payload)| {
                let mut v = export_line(&d.row, payload);
                if let Some(o) = v.as_object_mut() {
                    o.insert("dead_ms".into(), json!(d.dead_ms));
                    o.insert("reason".into(), json!(d.reason));
                }
                v
            })
            .collect()
    } else {
        view.rows(usize::MAX, true)?
            .iter()
            .map(|(r, payload)| export_line(r, payload))
            .collect()
    };
    let mut out: Box<dyn Write> = if file == std::path::Path::new("-") {
        Box::new(std::io::stdout().lock())
    } else {
        Box::new(std::io::BufWriter::new(
            std::fs::File::create(file)
                .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", file.display()))?,
        ))
    };
    for v in &rows {
        writeln!(out, "{v}")?;
    }
    out.flush()?;
    if file != std::path::Path::new("-") {
        eprintln!("{} rows written to {}", rows.len(), file.display());
    }
    Ok(())
}
