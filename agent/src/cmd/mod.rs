//! The command-line interface: one module per subcommand, each with an `Args` struct and a
//! `run` function. Exit codes follow sysexits: 0 success, 1 failure, 2 usage,
//! 69 a required system component is missing, 78 configuration (or model card) error.

pub mod bench;
pub mod check;
pub mod command;
pub mod completions;
pub mod detect;
pub mod doctor;
pub mod keygen;
pub mod logging;
pub mod mqtt_test;
pub mod outbox;
pub mod probe;
pub mod provision;
pub mod reload;
pub mod replay;
pub mod run;
pub mod status;
pub mod tail;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::agent::StartError;

/// Exit code for a bad configuration (EX_CONFIG).
pub const EXIT_CONFIG: u8 = 78;
/// Exit code for a missing system component (EX_UNAVAILABLE).
pub const EXIT_UNAVAILABLE: u8 = 69;

/// vigil — edge camera analytics: RTSP cameras in, incidents over MQTT out.
#[derive(Debug, Parser)]
#[command(name = "vigil", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
    /// Log format on stderr: auto is journal when started by systemd (JOURNAL_STREAM set),
    /// text otherwise.
    #[arg(long, value_enum, default_value = "auto", global = true)]
    pub log_format: logging::LogFormat,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the agent with a configuration file.
    Run(run::Args),
    /// Validate a configuration file and the model cards it names, without starting anything.
    Check(check::Args),
    /// Run a model on a photo or a video file and print the detections.
    Detect(detect::Args),
    /// Time each stage of a model on real frames (pre-process, inference, post-process).
    Bench(bench::Args),
    /// Run a camera's model, tracker and rules on a video file; write the incidents and their
    /// evidence to a folder (tune zones and lines before going live).
    Replay(replay::Args),
    /// Show what the running agent is doing: broker, outbox, cameras (diagnostics socket).
    Status(status::Args),
    /// Follow incidents live as the running agent raises them (diagnostics socket).
    Tail(tail::Args),
    /// Make the running agent re-read its configuration and apply camera changes live.
    Reload(reload::Args),
    /// Show or export what waits in the outbox for the broker (reads the file).
    Outbox(outbox::Args),
    /// Connect to a camera; print codec, resolution, frame rate, time to first frame; save a
    /// frame (with a configured camera's zones and lines drawn).
    Probe(probe::Args),
    /// Connect to the configured broker (TLS, credentials), publish on the device's test
    /// topic and read it back; print the latency or which stage failed.
    MqttTest(mqtt_test::Args),
    /// Send a command to a box over MQTT, as the operations centre does, and print its result.
    Command(command::Args),
    /// Make an Ed25519 key pair for signing commands (private key to a file, public key shown).
    Keygen(keygen::Args),
    /// Check everything an installation needs (config, models, cameras, broker, disk, clock,
    /// secrets, service user) and print the fix for each problem.
    Doctor(doctor::Args),
    /// Write /etc/vigil/vigil.toml and the broker password file from flags or prompts,
    /// validate them and run doctor.
    Provision(provision::Args),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions(completions::Args),
    /// Write man pages for vigil and every subcommand into a folder.
    Manpages(completions::ManArgs),
    /// Not part of this binary: says where the demo went (`make demo`, the `vigil-demo` binary).
    #[command(hide = true, disable_help_flag = true)]
    Demo {
        /// Whatever followed `demo`, ignored.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, hide = true)]
        rest: Vec<std::ffi::OsString>,
    },
}

/// Parse the command line, set up logging and run the subcommand.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    // The tools print their results on stdout; keep their log to warnings unless asked.
    let default_filter = match cli.command {
        Command::Detect(_)
        | Command::Bench(_)
        | Command::Replay(_)
        | Command::Status(_)
        | Command::Tail(_)
        | Command::Reload(_)
        | Command::Outbox(_)
        | Command::Probe(_)
        | Command::MqttTest(_)
        | Command::Command(_)
        | Command::Keygen(_)
        | Command::Doctor(_)
        | Command::Provision(_)
        | Command::Completions(_)
        | Command::Manpages(_)
        | Command::Demo { .. } => "warn,rumqttc=error",
        _ => "info,rumqttc=warn",
    };
    logging::init(cli.log_format, default_filter);
    let result = match cli.command {
        Command::Run(a) => run::run(a),
        Command::Check(a) => check::run(a),
        Command::Detect(a) => detect::run(a),
        Command::Bench(a) => bench::run(a),
        Command::Replay(a) => replay::run(a),
        Command::Status(a) => status::run(a),
        Command::Tail(a) => tail::run(a),
        Command::Reload(a) => reload::run(a),
        Command::Outbox(a) => outbox::run(a),
        Command::Probe(a) => probe::run(a),
        Command::MqttTest(a) => mqtt_test::run(a),
        Command::Command(a) => command::run(a),
        Command::Keygen(a) => keygen::run(a),
        Command::Doctor(a) => doctor::run(a),
        Command::Provision(a) => provision::run(a),
        Command::Completions(a) => completions::run(a),
        Command::Manpages(a) => completions::manpages(a),
        Command::Demo { .. } => {
            eprintln!(
                "vigil: the demo is not part of this binary; in the source tree, `make demo` \
                 builds and runs it (the vigil-demo binary)"
            );
            Ok(ExitCode::from(2))
        }
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("vigil: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The configuration at `path` and its broker security (TLS, credentials), for the commands
/// that talk to the broker; on a problem, the exit code after the problem was reported.
pub fn broker_settings(
    path: &std::path::Path,
) -> Result<(crate::config::Loaded, crate::publish::tls::Security), ExitCode> {
    let loaded =
        crate::config::load(path).map_err(|e| report_start_error(&StartError::Config(e)))?;
    let security = crate::publish::tls::load(&loaded.config.mqtt, |p| loaded.resolve(p))
        .map_err(|e| report_start_error(&StartError::Security(e.to_string())))?;
    Ok((loaded, security))
}

/// Print a start error the way an installer needs to read it and choose the exit code.
pub fn report_start_error(e: &StartError) -> ExitCode {
    eprintln!("vigil: {e}");
    start_error_code(e)
}

/// The exit code for a start error: 78 for the config or a model, 69 for an unreachable
/// camera, 1 otherwise.
pub fn start_error_code(e: &StartError) -> ExitCode {
    match e {
        StartError::Config(_) | StartError::Model { .. } | StartError::Security(_) => {
            ExitCode::from(EXIT_CONFIG)
        }
        StartError::Ingest(_) => ExitCode::from(EXIT_UNAVAILABLE),
        StartError::Runtime(_) => ExitCode::FAILURE,
    }
}

/// Read a config file and its model cards into a [`crate::agent::Plan`]; on a problem, print
/// it and return the exit code (78 for the config or a model).
pub fn load_plan(config: &std::path::Path) -> Result<crate::agent::Plan, ExitCode> {
    let loaded =
        crate::config::load(config).map_err(|e| report_start_error(&StartError::Config(e)))?;
    crate::agent::Plan::build(loaded).map_err(|e| report_start_error(&e))
}

/// What `vigil run` (with `retire`) or `vigil check` runs for the installed file `config`:
/// that file, or the configuration the centre pushed while that file is unchanged since
/// ([`crate::config::pushed`]), with its record; a pushed configuration that does not build
/// (a model card changed since) gives way to the installed file. Problems are printed as by
/// [`load_plan`].
pub fn load_effective_plan(
    config: &std::path::Path,
    retire: bool,
) -> Result<(crate::agent::Plan, Option<crate::config::pushed::Meta>), ExitCode> {
    let effective = crate::config::pushed::effective(config, retire)
        .map_err(|e| report_start_error(&StartError::Config(e)))?;
    if let Some(why) = &effective.set_aside {
        tracing::warn!("the configuration the centre pushed is not used: {why}");
    }
    let Some(meta) = effective.pushed else {
        return crate::agent::Plan::build(effective.loaded)
            .map(|p| (p, None))
            .map_err(|e| report_start_error(&e));
    };
    match crate::agent::Plan::build(effective.loaded) {
        Ok(plan) => {
            tracing::info!(
                file = %plan.loaded.path.display(),
                pushed_at = meta.pushed_at,
                request = meta.request,
                "running the configuration the centre pushed (the installed file is unchanged since)"
            );
            Ok((plan, Some(meta)))
        }
        Err(e) => {
            tracing::warn!("the configuration the centre pushed is not used: {e}");
            load_plan(config).map(|p| (p, None))
        }
    }
}

/// Where the running agent's diagnostics socket is: `--socket`, else `diag.socket` of
/// `--config`, else the default path.
#[derive(Debug, Clone, clap::Args)]
pub struct SocketArgs {
    /// The agent's diagnostics socket [default: diag.socket of --config, else
    /// /run/vigil/diag.sock].
    #[arg(long, value_name = "PATH")]
    pub socket: Option<std::path::PathBuf>,
    /// Configuration file to read diag.socket from.
    #[arg(long, short, value_name = "FILE")]
    pub config: Option<std::path::PathBuf>,
}

impl SocketArgs {
    /// The socket path; a config that cannot be read is reported (exit 78).
    pub fn path(&self) -> Result<std::path::PathBuf, ExitCode> {
        if let Some(p) = &self.socket {
            return Ok(p.clone());
        }
        match &self.config {
            Some(c) => {
                let loaded = crate::config::load(c)
                    .map_err(|e| report_start_error(&StartError::Config(e)))?;
                Ok(loaded.resolve(&loaded.config.diag.socket))
            }
            None => Ok(crate::config::DEFAULT_DIAG_SOCKET.into()),
        }
    }
}

/// The installed configuration file, for the commands that read it (`run`, `check`, `doctor`).
#[derive(Debug, Clone, clap::Args)]
pub struct ConfigArgs {
    /// Configuration file.
    #[arg(
        long = "config",
        short = 'c',
        value_name = "FILE",
        default_value = crate::config::DEFAULT_CONFIG
    )]
    pub path: std::path::PathBuf,
}

/// Engine choice shared by the offline commands (`detect`, `bench`).
#[derive(Debug, Clone, clap::Args)]
pub struct EngineArgs {
    /// Inference engine: tract (pure Rust, default) or ort (ONNX Runtime; needs the `ort` build).
    #[arg(long, value_enum, default_value = "tract")]
    pub backend: BackendArg,
    /// Intra-op threads of the engine (ort).
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub threads: usize,
    /// ort: path of libonnxruntime.so (default: ORT_DYLIB_PATH, else
    /// /usr/lib/vigil/onnxruntime/libonnxruntime.so when the vigil-onnxruntime package is
    /// installed).
    #[arg(long, value_name = "FILE")]
    pub ort_library: Option<std::path::PathBuf>,
}

/// `--backend` values.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum BackendArg {
    /// ONNX Runtime if it loads, else tract (the agent's default; the offline commands default
    /// to tract so that their output is the same on every box).
    Auto,
    /// tract.
    Tract,
    /// ONNX Runtime.
    Ort,
}

impl EngineArgs {
    /// As engine options.
    pub fn options(&self) -> crate::detect::EngineOptions {
        crate::detect::EngineOptions {
            backend: match self.backend {
                BackendArg::Auto => crate::config::Backend::Auto,
                BackendArg::Tract => crate::config::Backend::Tract,
                BackendArg::Ort => crate::config::Backend::Ort,
            },
            threads: self.threads,
            ort_library: self.ort_library.clone(),
        }
    }
}

/// What `--card` takes to name the built-in fire and smoke detector instead of a card file.
pub const BUILTIN_FIRE_CARD: &str = "builtin:fire";

/// Load a model card, verify its file and build the detector, for the offline commands
/// (`--card builtin:fire`: the built-in fire and smoke detector). A failure is printed like a
/// start error and returned as the exit code to use.
pub fn load_detector(
    card_path: &std::path::Path,
    engine: &EngineArgs,
) -> Result<Box<dyn crate::detect::Detector>, ExitCode> {
    use crate::detect;
    let card = if card_path.as_os_str() == BUILTIN_FIRE_CARD {
        detect::firecue::card()
    } else {
        detect::card::load(card_path).map_err(|e| report_start_error(&StartError::Config(e)))?
    };
    let name = card.card.name.clone();
    let model_error = |source| {
        report_start_error(&StartError::Model {
            name: name.clone(),
            source,
        })
    };
    detect::verify_checksum(&card).map_err(model_error)?;
    detect::build(card, &engine.options()).map_err(model_error)
}
