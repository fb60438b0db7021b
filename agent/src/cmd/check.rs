//! `vigil check --config FILE`: validate the configuration and the model cards it names
//! (checksums, labels, zone classes) without connecting to anything. Exit 78 on any problem.

use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `vigil check`.
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

/// Run the check.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let plan = match super::load_plan(&args.config) {
        Ok(p) => p,
        Err(code) => return Ok(code),
    };
    let c = &plan.loaded.config;
    let zones: usize = c.cameras.iter().map(|c| c.zones.len()).sum();
    println!(
        "{}: OK — device {} in district {}, {} camera(s), {} zone(s), {} model(s)",
        args.config.display(),
        c.device.id,
        c.device.district,
        c.cameras.len(),
        zones,
        c.models.len()
    );
    Ok(ExitCode::SUCCESS)
}
