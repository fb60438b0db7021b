//! The `vigil` command line, built inside the test crate so the integration tests can run the
//! real binary as a child process (and kill it) through `CARGO_BIN_EXE_vigil-under-test`.
//! Identical to `agent/src/main.rs`.

fn main() -> std::process::ExitCode {
    vigil::cmd::main()
}
