//! A configuration the operations centre pushed with the `config` command (docs/mqtt.md).
//!
//! The systemd unit keeps `/etc` read-only to the service, so a pushed configuration lives in
//! the state folder of the installed one: [`FILE`], with [`META`] beside it (its sha256, when
//! and by which request it came, and the sha256 of the installed file's text it replaced).
//! [`effective`] is what `vigil run`, `vigil reload` and `vigil check` read: the installed
//! file, or the pushed one while the installed file is unchanged since the push. Once someone
//! edits the installed file on the box, the edit wins and the pushed files are retired
//! (renamed `*.retired`) by the agent. A pushed configuration's relative paths (model cards,
//! the socket, the state folder) resolve against the installed file's folder, like the
//! installed one's.
//!
//! A pushed configuration differs from the running one only where a live reload can apply it
//! (the `config` command refuses anything else), so running it after a restart is running
//! what ran before the restart.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::{ConfigError, Loaded};

/// The pushed configuration's file name in the state folder.
pub const FILE: &str = "config.toml";
/// Its record's file name in the state folder.
pub const META: &str = "config.pushed.json";

/// What is known of a pushed configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Meta {
    /// sha256 (hex) of the pushed text.
    pub sha256: String,
    /// sha256 (hex) of the installed file's text when it was pushed.
    pub base_sha256: String,
    /// When it was pushed (RFC 3339).
    pub pushed_at: String,
    /// The `id` of the request that pushed it.
    pub request: String,
}

/// The configuration to run, and where it came from.
#[derive(Debug)]
pub struct Effective {
    /// The configuration (its `installed` is the installed file either way).
    pub loaded: Loaded,
    /// The record of the pushed configuration, when that is what runs.
    pub pushed: Option<Meta>,
    /// Why a pushed configuration in the state folder is not used, if there is one.
    pub set_aside: Option<String>,
}

/// The configuration to run for the installed file `installed`: the pushed one in its state
/// folder while the installed file is as it was when that was pushed, else the installed one.
/// With `retire`, a pushed configuration that the installed file has since replaced is renamed
/// out of the way (the agent does; `vigil check` only tells).
pub fn effective(installed: &Path, retire: bool) -> Result<Effective, ConfigError> {
    let base = super::load(installed)?;
    let state = base.resolve(&base.config.storage.state_dir);
    let installed_only = |set_aside| Effective {
        loaded: base.clone(),
        pushed: None,
        set_aside,
    };
    let meta = match std::fs::read(state.join(META)) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(installed_only(None)),
        Err(e) => {
            let why = format!(
                "its record {} cannot be read: {e}",
                state.join(META).display()
            );
            return Ok(installed_only(Some(why)));
        }
        Ok(bytes) => match serde_json::from_slice::<Meta>(&bytes) {
            Ok(m) => m,
            Err(e) => {
                let why = format!("its record {} is damaged: {e}", state.join(META).display());
                return Ok(installed_only(Some(why)));
            }
        },
    };
    if meta.base_sha256 != base.installed_sha256 {
        let why = format!(
            "{} was changed on the box after the centre pushed a configuration ({}, request {}): the installed file wins",
            installed.display(),
            meta.pushed_at,
            meta.request
        );
        if retire {
            retire_files(&state);
        }
        return Ok(installed_only(Some(why)));
    }
    let path = state.join(FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) if crate::hash::sha256_hex(t.as_bytes()) == meta.sha256 => t,
        Ok(_) => {
            let why = format!(
                "{} does not match its record {} (a write that was cut short?)",
                path.display(),
                META
            );
            return Ok(installed_only(Some(why)));
        }
        Err(e) => {
            let why = format!("{} cannot be read: {e}", path.display());
            return Ok(installed_only(Some(why)));
        }
    };
    match parse(&state, text, &base) {
        Ok(loaded) => Ok(Effective {
            loaded,
            pushed: Some(meta),
            set_aside: None,
        }),
        Err(e) => Ok(installed_only(Some(format!("it is not valid: {e}")))),
    }
}

/// `text` read as the pushed configuration kept in `state` for the installed configuration
/// `base`: located as that file, its relative paths resolving where `base`'s do, and standing
/// for `base`'s installed file.
pub fn parse(state: &Path, text: String, base: &Loaded) -> Result<Loaded, ConfigError> {
    let mut loaded = super::parse(&state.join(FILE), text)?;
    loaded.base_dir.clone_from(&base.base_dir);
    loaded.installed.clone_from(&base.installed);
    loaded.installed_sha256.clone_from(&base.installed_sha256);
    Ok(loaded)
}

/// Rename the pushed files in `state` to `*.retired` (a later push replaces them).
fn retire_files(state: &Path) {
    for name in [FILE, META] {
        let from = state.join(name);
        let to = state.join(format!("{name}.retired"));
        match std::fs::rename(&from, &to) {
            Ok(()) => tracing::warn!(
                file = %from.display(),
                now = %to.display(),
                "the installed configuration was edited after the centre pushed one: the pushed one is retired"
            ),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => tracing::warn!(file = %from.display(), "cannot retire: {e}"),
        }
    }
}

/// Keep `text` as the pushed configuration in `state`, with `meta`, each file written
/// atomically (the record last: until it is renamed in place, the old record does not match the
/// new text, and [`effective`] runs the installed file).
pub fn store(state: &Path, text: &str, meta: &Meta) -> std::io::Result<()> {
    std::fs::create_dir_all(state)?;
    let record = serde_json::to_vec_pretty(meta).map_err(std::io::Error::other)?;
    write_atomic(&state.join(FILE), text.as_bytes(), 0o640)?;
    write_atomic(&state.join(META), &record, 0o640)
}

/// Write `bytes` to `path` with `mode`, atomically: a new file beside it, synced, renamed over
/// it, and the folder synced, so that a crash or a full disk leaves the old file or the new
/// one, never half of one.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.new-{}", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    let written = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        std::fs::File::open(dir)?.sync_all()
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::path::PathBuf;

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("vigil-pushed-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        dir
    }

    fn installed(dir: &Path, extra: &str) -> PathBuf {
        let text = format!(
            "[device]\nid = \"b\"\ndistrict = \"d\"\n[mqtt]\nhost = \"h\"\n[storage]\nstate_dir = \"state\"\n[[models]]\nname = \"m\"\ncard = \"m.toml\"\n[[cameras]]\nid = \"c\"\nurl = \"rtsp://10.0.0.5/s\"\nmodel = \"m\"\n{extra}"
        );
        let path = dir.join("vigil.toml");
        std::fs::write(&path, text).expect("installed");
        path
    }

    fn push(path: &Path, text: &str) -> Meta {
        let base = std::fs::read(path).expect("installed");
        let meta = Meta {
            sha256: crate::hash::sha256_hex(text.as_bytes()),
            base_sha256: crate::hash::sha256_hex(&base),
            pushed_at: "2026-12-06T10:00:00.000Z".into(),
            request: "r1".into(),
        };
        let state = path.parent().expect("dir").join("state");
        store(&state, text, &meta).expect("store");
        meta
    }

    #[test]
    fn a_pushed_configuration_runs_until_the_installed_file_is_edited() {
        let dir = temp_dir("edited");
        let path = installed(&dir, "");
        let text = std::fs::read_to_string(&path).expect("read") + "# pushed\n";
        let meta = push(&path, &text);
        let e = effective(&path, true).expect("effective");
        assert_eq!(e.pushed, Some(meta));
        assert_eq!(e.loaded.source, text);
        assert_eq!(e.loaded.path, dir.join("state").join(FILE));
        assert_eq!(e.loaded.installed, path);
        // Relative paths resolve where the installed file's do.
        assert_eq!(e.loaded.resolve(Path::new("m.toml")), dir.join("m.toml"));
        installed(&dir, "# edited on the box\n");
        let e = effective(&path, true).expect("effective");
        assert!(e.pushed.is_none());
        assert!(e.set_aside.expect("why").contains("changed on the box"));
        assert!(dir.join("state").join("config.toml.retired").exists());
        assert!(!dir.join("state").join(META).exists());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_pushed_file_that_does_not_match_its_record_is_not_run() {
        let dir = temp_dir("mismatch");
        let path = installed(&dir, "");
        let text = std::fs::read_to_string(&path).expect("read");
        push(&path, &text);
        std::fs::write(dir.join("state").join(FILE), "garbage").expect("write");
        let e = effective(&path, false).expect("effective");
        assert!(e.pushed.is_none());
        assert!(e.set_aside.expect("why").contains("does not match"), "why");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
