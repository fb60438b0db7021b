//! The `vigil` binary: parses the command line and runs a subcommand (see `vigil --help`).

fn main() -> std::process::ExitCode {
    vigil::cmd::main()
}
