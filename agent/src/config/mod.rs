//! The agent's configuration: one TOML file, its types, and its validation.
//!
//! Loading is two-level, like `vector validate`:
//! 1. [`load`] parses the file and checks everything that needs only the file itself (types,
//!    unknown keys, required keys, ids, URLs, polygons, references between sections). Every
//!    problem is reported at once, each with `file:line:column` and the field path.
//! 2. Building the agent (`crate::agent::Plan::build`) loads the model cards the config names and
//!    checks what needs them (zone classes against the model's labels), reporting in the same form.
//!
//! Paths inside the config (model cards) are relative to the config file's folder.

mod camera;
mod diag;
pub mod keys;
mod model;
mod mqtt;
pub mod pushed;
mod shared;
mod types;
pub mod url;
mod validate;

use std::path::{Path, PathBuf};

pub use camera::*;
pub use diag::{ConfigError, Diagnostic, Diagnostics};
pub use model::*;
pub use mqtt::*;
pub use pushed::write_atomic;
pub use shared::*;
pub use types::*;

/// A configuration that passed file-level validation, with what is needed to point back into it.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The validated configuration.
    pub config: Config,
    /// The file it came from.
    pub path: PathBuf,
    /// The installed file it stands for: `path` itself, or the installed file a configuration
    /// pushed by the centre replaces ([`pushed`]).
    pub installed: PathBuf,
    /// sha256 (hex) of the installed file's text as it was read.
    pub installed_sha256: String,
    /// The folder relative paths are resolved against.
    pub base_dir: PathBuf,
    /// The source text (kept to locate problems found later, e.g. against model labels).
    pub source: String,
    /// Positions of every value, by field path.
    pub spans: crate::spanned::Spans,
}

impl Loaded {
    /// Resolve a path written in the config relative to the config's folder.
    pub fn resolve(&self, p: &Path) -> PathBuf {
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.base_dir.join(p)
        }
    }

    /// A diagnostic located at the value at `path` (or its nearest present parent).
    pub fn diagnostic(&self, path: &str, message: impl Into<String>) -> Diagnostic {
        Diagnostic::at(
            &self.path,
            &self.source,
            self.spans.nearest(path),
            path,
            message.into(),
        )
    }
}

/// Read, parse and validate a configuration file.
pub fn load(path: &Path) -> Result<Loaded, ConfigError> {
    let source = std::fs::read_to_string(path).map_err(|e| ConfigError::Read {
        path: path.to_path_buf(),
        source: e,
    })?;
    parse(path, source)
}

/// Parse and validate configuration text that claims to come from `path`.
pub fn parse(path: &Path, source: String) -> Result<Loaded, ConfigError> {
    let parsed = crate::spanned::from_str::<Config>(&source);
    let mut problems = parsed.problems;
    let spans = parsed.spans;
    // Semantic checks run even when some values were wrong (they hold placeholders then), so
    // that one pass reports everything; checks on a path that already has a problem are dropped.
    let config = parsed.value;
    if let Some(config) = &config {
        let semantic = validate::validate(config, &spans);
        problems = crate::spanned::merge(problems, semantic);
    }
    let config = match config {
        Some(c) if problems.is_empty() => c,
        _ => {
            return Err(ConfigError::Invalid(Diagnostics::from_problems(
                path, &source, problems,
            )));
        }
    };
    if !problems.is_empty() {
        return Err(ConfigError::Invalid(Diagnostics::from_problems(
            path, &source, problems,
        )));
    }
    let base_dir = path
        .parent()
        .map(Path::to_path_buf)
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or_else(|| PathBuf::from("."));
    Ok(Loaded {
        config,
        path: path.to_path_buf(),
        installed: path.to_path_buf(),
        installed_sha256: crate::hash::sha256_hex(source.as_bytes()),
        base_dir,
        source,
        spans,
    })
}

/// Longest duration a setting is read as: 100 years. A longer one (`frozen_s = 1e20`, "never")
/// is read as this, so that adding it to a clock reading cannot overflow.
pub const LONGEST: std::time::Duration = std::time::Duration::from_secs(100 * 365 * 24 * 3600);

/// A duration setting in seconds as a [`std::time::Duration`]: negative or not a number is zero
/// (validation refuses those), longer than [`LONGEST`] is [`LONGEST`].
pub fn duration(seconds: f64) -> std::time::Duration {
    if seconds.is_nan() || seconds <= 0.0 {
        return std::time::Duration::ZERO;
    }
    std::time::Duration::try_from_secs_f64(seconds).map_or(LONGEST, |d| d.min(LONGEST))
}

#[cfg(test)]
mod duration_tests {
    use super::{LONGEST, duration};
    use std::time::{Duration, Instant};

    #[test]
    fn any_number_of_seconds_is_a_duration_a_clock_can_take() {
        assert_eq!(duration(1.5), Duration::from_millis(1500));
        for never in [1e20, f64::INFINITY, f64::MAX, 3.2e9] {
            assert_eq!(duration(never), LONGEST, "{never}");
            let _ = Instant::now() + duration(never);
            let _ = duration(never) + duration(never);
        }
        for nothing in [0.0, -1.0, f64::NAN, f64::NEG_INFINITY, 1e-300] {
            assert!(duration(nothing) < Duration::from_nanos(1), "{nothing}");
        }
    }
}
