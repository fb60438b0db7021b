//! `vigil run --config FILE`: run the agent until SIGINT/SIGTERM. The first signal starts a
//! graceful shutdown (stop cameras, finish detection, publish `stopped`, disconnect); a second
//! one exits at once.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::agent;

/// Arguments of `vigil run`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Configuration file.
    #[arg(
        long,
        short,
        value_name = "FILE",
        default_value = "/etc/vigil/vigil.toml"
    )]
    pub config: PathBuf,
}

/// Run the agent.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let plan = match super::load_plan(&args.config) {
        Ok(p) => p,
        Err(code) => return Ok(code),
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("vigil-io")
        .enable_all()
        .build()?;
    let result = rt.block_on(agent::run(plan, shutdown_signal()));
    match result {
        Ok(_) => Ok(ExitCode::SUCCESS),
        Err(e) => Ok(super::report_start_error(&e)),
    }
}

/// Resolves on the first SIGINT or SIGTERM; a second one exits the process immediately.
pub async fn shutdown_signal() {
    wait_signal().await;
    tracing::info!("signal received; shutting down (send it again to exit immediately)");
    tokio::spawn(async {
        wait_signal().await;
        eprintln!("vigil: second signal, exiting now");
        std::process::exit(130);
    });
}

async fn wait_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
