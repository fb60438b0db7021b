//! `vigil run --config FILE`: run the agent until SIGINT/SIGTERM. The first signal starts a
//! graceful shutdown (stop cameras, finish detection, publish `stopped`, disconnect); a second
//! one exits at once.

use std::process::ExitCode;

use crate::agent;

/// Arguments of `vigil run`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The configuration file.
    #[command(flatten)]
    pub config: super::ConfigArgs,
}

/// Run the agent.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    limit_malloc_arenas();
    let plan = match super::load_effective_plan(&args.config.path, true) {
        Ok((p, _)) => p,
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

/// glibc gives threads their own malloc arenas (up to 8 per core). Camera pipelines are
/// rebuilt on every reconnect, each with new streaming threads, and the freed frame buffers
/// stay spread over ever more arenas: measured, RSS grew from 214 to 270 MiB over 20 camera
/// reconnects, and stayed flat at 183 MiB with two arenas. glibc reads `MALLOC_ARENA_MAX` when
/// the process starts, so `vigil run` re-executes itself once (same PID) with
/// `MALLOC_ARENA_MAX=2` unless the variable is already set (set it to keep another value).
fn limit_malloc_arenas() {
    use std::os::unix::process::CommandExt;
    if std::env::var_os("MALLOC_ARENA_MAX").is_some() {
        return;
    }
    let Ok(exe) = std::env::current_exe() else {
        return;
    };
    let err = std::process::Command::new(exe)
        .args(std::env::args_os().skip(1))
        .env("MALLOC_ARENA_MAX", "2")
        .exec();
    tracing::warn!("cannot re-execute with MALLOC_ARENA_MAX=2 ({err}); continuing without");
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
