//! Located problems in a TOML file (config or model card), printed as `file:line:column: path: message`.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use crate::spanned::{LineIndex, Problem};

/// One located problem.
#[derive(Debug, Clone, PartialEq)]
pub struct Diagnostic {
    /// The file the problem is in.
    pub file: PathBuf,
    /// 1-based line.
    pub line: usize,
    /// 1-based column (characters).
    pub column: usize,
    /// Field path, e.g. `cameras[0].zones[0].polygon`; empty for the whole document.
    pub path: String,
    /// What is wrong.
    pub message: String,
}

impl Diagnostic {
    /// Locate `span` of `source` (read from `file`).
    pub fn at(file: &Path, source: &str, span: Range<usize>, path: &str, message: String) -> Self {
        let (line, column) = LineIndex::new(source).line_col(span.start);
        Diagnostic {
            file: file.to_path_buf(),
            line,
            column,
            path: path.to_string(),
            message,
        }
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: ", self.file.display(), self.line, self.column)?;
        if !self.path.is_empty() {
            write!(f, "{}: ", self.path)?;
        }
        f.write_str(&self.message)
    }
}

/// Every problem found in one pass, sorted by position.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl Diagnostics {
    /// Locate raw problems of `source` and sort them by position.
    pub fn from_problems(file: &Path, source: &str, problems: Vec<Problem>) -> Self {
        let idx = LineIndex::new(source);
        let mut out: Vec<Diagnostic> = problems
            .into_iter()
            .map(|p| {
                let (line, column) = idx.line_col(p.span.start);
                Diagnostic {
                    file: file.to_path_buf(),
                    line,
                    column,
                    path: p.path,
                    message: p.message,
                }
            })
            .collect();
        out.sort_by(|a, b| (a.line, a.column, &a.path).cmp(&(b.line, b.column, &b.path)));
        out.dedup();
        Diagnostics(out)
    }

    /// Whether nothing was found.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

/// Why a configuration (or a file it names) cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file cannot be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The IO error.
        source: std::io::Error,
    },
    /// The file was read and has problems; all of them are listed.
    #[error("{n} problem(s):\n{0}", n = .0.0.len())]
    Invalid(Diagnostics),
}
