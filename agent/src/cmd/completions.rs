//! `vigil completions SHELL` and `vigil manpages DIR`: shell completion scripts and man pages
//! generated from the command-line definitions, so they never drift from `--help`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::CommandFactory;

/// Arguments of `vigil completions`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The shell to complete for.
    #[arg(value_enum)]
    shell: clap_complete::Shell,
}

/// Arguments of `vigil manpages`.
#[derive(Debug, clap::Args)]
pub struct ManArgs {
    /// Folder to write `vigil.1` and `vigil-SUBCOMMAND.1` into (created if missing).
    #[arg(value_name = "DIR")]
    dir: PathBuf,
}

/// Print the completion script on stdout.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let mut cmd = super::Cli::command();
    clap_complete::generate(args.shell, &mut cmd, "vigil", &mut std::io::stdout());
    Ok(ExitCode::SUCCESS)
}

/// Write the man pages.
pub fn manpages(args: ManArgs) -> anyhow::Result<ExitCode> {
    std::fs::create_dir_all(&args.dir)
        .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", args.dir.display()))?;
    let cmd = super::Cli::command();
    clap_mangen::generate_to(cmd, &args.dir)
        .map_err(|e| anyhow::anyhow!("cannot write man pages to {}: {e}", args.dir.display()))?;
    let n = std::fs::read_dir(&args.dir)?.count();
    eprintln!("{n} man pages in {}", args.dir.display());
    Ok(ExitCode::SUCCESS)
}
