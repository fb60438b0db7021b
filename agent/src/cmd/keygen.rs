//! `vigil keygen --out FILE`: a new Ed25519 key pair for signing commands. The private key
//! (the base64 of its 32-byte seed) goes to FILE, mode 0600, never over an existing file; the
//! public key is printed with the `[commands] public_keys` line for the boxes' configuration.
//! `vigil command --key FILE` signs with it (docs/mqtt.md, "Signed commands").

use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::PathBuf;
use std::process::ExitCode;

use crate::config::keys::encode_key;

/// Arguments of `vigil keygen`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Where to write the private key (mode 0600; an existing file is never replaced).
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
}

/// Make the key pair.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let seed: [u8; 32] = rand::random();
    let key = ed25519_dalek::SigningKey::from_bytes(&seed);
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&args.out);
    let mut file = match file {
        Ok(f) => f,
        Err(e) => {
            eprintln!("vigil keygen: cannot create {}: {e}", args.out.display());
            return Ok(ExitCode::FAILURE);
        }
    };
    writeln!(file, "{}", encode_key(&key.to_bytes()))?;
    file.sync_all()?;
    let public = encode_key(key.verifying_key().as_bytes());
    println!(
        "private key written to {} (mode 600): keep it where commands are signed",
        args.out.display()
    );
    println!("public key: {public}");
    println!("in each box's configuration:\n\n[commands]\npublic_keys = [\"{public}\"]");
    Ok(ExitCode::SUCCESS)
}
