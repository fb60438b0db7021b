//! Certificates for tests, made for each run with the `openssl` command: a CA, and leaf
//! certificates it signs for a broker (its address or name) or a client (its common name).

use std::path::Path;
use std::process::Command;

/// Run `openssl` with `args` in `dir`.
pub fn openssl(dir: &Path, args: &[&str]) -> anyhow::Result<()> {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()?;
    anyhow::ensure!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

/// A CA (`{name}-ca.pem`/`.key`) in `dir`.
pub fn ca(dir: &Path, name: &str) -> anyhow::Result<()> {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-keyout",
            &format!("{name}-ca.key"),
            "-out",
            &format!("{name}-ca.pem"),
            "-subj",
            &format!("/CN=vigil test {name} CA"),
        ],
    )
}

/// A certificate `{name}.pem`/`.key` signed by CA `ca`, valid for 127.0.0.1.
pub fn leaf(dir: &Path, ca: &str, name: &str) -> anyhow::Result<()> {
    leaf_for(dir, ca, name, "IP:127.0.0.1")
}

/// A certificate `{name}.pem`/`.key` (common name `name`) signed by CA `ca`, with the subject
/// alternative names `san` (`IP:127.0.0.1`, `DNS:broker.test`, …).
pub fn leaf_for(dir: &Path, ca: &str, name: &str, san: &str) -> anyhow::Result<()> {
    let ext = format!("{name}.ext.cnf");
    std::fs::write(
        dir.join(&ext),
        format!("subjectAltName={san}\nbasicConstraints=CA:FALSE\n"),
    )?;
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.csr"),
            "-subj",
            &format!("/CN={name}"),
        ],
    )?;
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &format!("{name}.csr"),
            "-CA",
            &format!("{ca}-ca.pem"),
            "-CAkey",
            &format!("{ca}-ca.key"),
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            &ext,
            "-out",
            &format!("{name}.pem"),
        ],
    )
}

/// Set `path`'s permission bits.
pub fn chmod(path: &Path, mode: u32) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
    Ok(())
}
