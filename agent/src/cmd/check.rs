//! `vigil check --config FILE`: validate the configuration and the model cards it names
//! (checksums, labels, zone classes) without connecting to anything. Exit 78 on any problem.
//! Where the centre pushed a configuration that `vigil run` would use instead, that one is
//! checked too and named.

use std::process::ExitCode;

/// Arguments of `vigil check`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The configuration file.
    #[command(flatten)]
    pub config: super::ConfigArgs,
}

/// Run the check.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    // The installed file first: a technician's edit is checked even while a pushed
    // configuration runs.
    if let Err(code) = super::load_plan(&args.config.path) {
        return Ok(code);
    }
    let (plan, pushed) = match super::load_effective_plan(&args.config.path, false) {
        Ok(both) => both,
        Err(code) => return Ok(code),
    };
    if let Some(meta) = &pushed {
        println!(
            "note: vigil run uses {}, the configuration the centre pushed at {} (request {}), while {} is unchanged",
            plan.loaded.path.display(),
            meta.pushed_at,
            meta.request,
            args.config.path.display()
        );
    }
    let c = &plan.loaded.config;
    let zones: usize = c.cameras.iter().map(|c| c.zones.len()).sum();
    println!(
        "{}: OK — device {} in district {}, {} camera(s), {} zone(s), {} model(s)",
        plan.loaded.path.display(),
        c.device.id,
        c.device.district,
        c.cameras.len(),
        zones,
        c.models.len()
    );
    Ok(ExitCode::SUCCESS)
}
