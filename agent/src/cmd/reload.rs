//! `vigil reload`: ask the running agent to re-read its configuration file and apply what can
//! change live (cameras' URLs, rates, zones, lines and other rules); everything else, or an
//! invalid file, is refused and the agent keeps running as it was. systemd's `ExecReload`.
//! `--json` prints `{"ok":true,"reloaded":"…"}` or `{"ok":false,"error":"…"}` on stdout.

use std::process::ExitCode;
use std::time::Duration;

use serde_json::json;

use super::SocketArgs;
use crate::diag::client::Client;

/// Arguments of `vigil reload`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    socket: SocketArgs,
    /// Print the outcome as one JSON object on stdout.
    #[arg(long)]
    json: bool,
}

/// Ask and print the answer.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let path = match args.socket.path() {
        Ok(p) => p,
        Err(code) => return Ok(code),
    };
    match Client::connect(&path)
        .and_then(|mut c| c.request(&json!({"request": "reload"}), Duration::from_secs(60)))
    {
        Ok(v) => {
            let done = v["reloaded"].as_str().unwrap_or("");
            if args.json {
                println!("{}", json!({"ok": true, "reloaded": done}));
            } else {
                println!("reloaded: {done}");
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            if args.json {
                println!("{}", json!({"ok": false, "error": e.to_string()}));
            } else {
                eprintln!("vigil reload: {e}");
            }
            Ok(ExitCode::FAILURE)
        }
    }
}
