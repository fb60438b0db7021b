//! A serde `Deserializer` over toml's spanned document tree that does not stop at the first
//! problem.
//!
//! `toml::from_str` reports one error and gives up. An installer fixing a config by trial and
//! error wants every problem at once, each with `file:line:column` and the field path. This
//! deserializer walks the parsed tree ([`toml::de::DeTable`]) and, where serde's derived code
//! would fail, records a [`Problem`] and hands the visitor a harmless placeholder instead, so the
//! walk continues:
//!
//! - a value of the wrong type is recorded and replaced by a zero value of the expected type;
//! - a key that the struct does not declare (`deny_unknown_fields`) is recorded and skipped;
//! - an enum string that names no variant is recorded and replaced by the first variant.
//!
//! Structs are expected to carry `#[serde(default)]` at the container level, so a missing key
//! never aborts the walk; which keys are required is checked afterwards against [`Spans`], which
//! records the position of every value seen, by path. The same positions let later semantic
//! checks (an invalid polygon, an unknown model) point at the right line.
//!
//! Its own module, a leaf: the configuration and the model cards (`detect::card`) both read
//! their TOML through it. [`de`] is the walk, [`zero`] the placeholder values.

mod de;
mod zero;

use std::collections::HashMap;
use std::ops::Range;

use serde::de::DeserializeOwned;
use toml::de::{DeTable, DeValue};

use de::{Ctx, DeError, ValueDe};

/// One problem found in a document, located by byte span and field path.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    /// Byte range in the source the problem points at.
    pub span: Range<usize>,
    /// Field path such as `cameras[0].zones[1].polygon`; empty for the document itself.
    pub path: String,
    /// What is wrong, in plain words.
    pub message: String,
}

/// Where each value of a document sits, by field path.
#[derive(Debug, Default, Clone)]
pub struct Spans {
    values: HashMap<String, Range<usize>>,
}

impl Spans {
    /// The span of the value at `path`, if the document has one there.
    pub fn get(&self, path: &str) -> Option<Range<usize>> {
        self.values.get(path).cloned()
    }

    /// Whether the document sets a value at `path`.
    pub fn contains(&self, path: &str) -> bool {
        self.values.contains_key(path)
    }

    /// The span of `path` or, when it is absent, of its nearest parent that is present
    /// (the document start as a last resort). Used to point at a table that lacks a key.
    pub fn nearest(&self, path: &str) -> Range<usize> {
        let mut p = path;
        loop {
            if let Some(s) = self.values.get(p) {
                return s.clone();
            }
            match p.rfind(['.', '[']) {
                Some(i) => p = &p[..i],
                None => return 0..0,
            }
        }
    }
}

/// The result of a tolerant walk: the value (with placeholders where problems were found),
/// the positions of every value, and the problems.
#[derive(Debug)]
pub struct Parsed<T> {
    /// The value, unless the walk had to stop (a syntax error, or a visitor's own error).
    pub value: Option<T>,
    /// Positions of every value seen, by path.
    pub spans: Spans,
    /// Every problem found, in no particular order.
    pub problems: Vec<Problem>,
}

impl<T> Parsed<T> {
    /// The value and spans if there were no problems, else the problems.
    pub fn into_result(self) -> Result<(T, Spans), Vec<Problem>> {
        match self.value {
            Some(v) if self.problems.is_empty() => Ok((v, self.spans)),
            _ => Err(self.problems),
        }
    }
}

/// Deserialize `T` from TOML source, collecting every problem instead of stopping at the first.
pub fn from_str<T: DeserializeOwned>(src: &str) -> Parsed<T> {
    let root = match DeTable::parse(src) {
        Ok(root) => root,
        Err(e) => {
            let span = e.span().unwrap_or(0..0);
            return Parsed {
                value: None,
                spans: Spans::default(),
                problems: vec![Problem {
                    span,
                    path: String::new(),
                    message: format!("TOML syntax error: {}", e.message().trim()),
                }],
            };
        }
    };
    let ctx = Ctx::default();
    let span = root.span();
    let table = DeValue::Table(root.into_inner());
    let result = T::deserialize(ValueDe {
        ctx: &ctx,
        value: &table,
        span,
        path: String::new(),
    });
    let mut problems = ctx.problems.into_inner();
    let value = match result {
        Ok(v) => Some(v),
        Err(DeError::Recorded) => None,
        Err(DeError::Custom(message)) => {
            problems.push(Problem {
                span: 0..0,
                path: String::new(),
                message,
            });
            None
        }
    };
    Parsed {
        value,
        spans: Spans {
            values: ctx.spans.into_inner(),
        },
        problems,
    }
}

/// Add `semantic` problems to `structural` ones, leaving out those about a value (or a part or
/// a parent of a value) that already has a structural problem: a placeholder would only make
/// them misleading.
pub fn merge(mut structural: Vec<Problem>, semantic: Vec<Problem>) -> Vec<Problem> {
    let related = |a: &str, b: &str| {
        a == b
            || (a.starts_with(b) && matches!(a.as_bytes().get(b.len()), Some(b'.' | b'[')))
            || (b.starts_with(a) && matches!(b.as_bytes().get(a.len()), Some(b'.' | b'[')))
    };
    let keep: Vec<Problem> = semantic
        .into_iter()
        .filter(|p| {
            !structural
                .iter()
                .any(|s| !s.path.is_empty() && related(&s.path, &p.path))
        })
        .collect();
    structural.extend(keep);
    structural
}

/// Lines and columns of a source, for turning byte spans into `line:column` (both 1-based;
/// the column counts characters, as editors do).
pub struct LineIndex<'s> {
    src: &'s str,
    starts: Vec<usize>,
}

impl<'s> LineIndex<'s> {
    /// Index the line starts of `src`.
    pub fn new(src: &'s str) -> Self {
        let mut starts = vec![0];
        starts.extend(src.match_indices('\n').map(|(i, _)| i + 1));
        LineIndex { src, starts }
    }

    /// 1-based line and column of a byte offset.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.src.len());
        let line = self.starts.partition_point(|&s| s <= offset).max(1);
        let start = self.starts[line - 1];
        let col = self
            .src
            .get(start..offset)
            .map_or(offset - start, |s| s.chars().count())
            + 1;
        (line, col)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Default, Deserialize, PartialEq)]
    #[serde(default, deny_unknown_fields)]
    struct Inner {
        name: String,
        size: u16,
        point: [f32; 2],
        mode: Mode,
    }

    #[derive(Debug, Default, Deserialize, PartialEq)]
    #[serde(rename_all = "lowercase")]
    enum Mode {
        #[default]
        Tcp,
        Udp,
    }

    #[derive(Debug, Default, Deserialize, PartialEq)]
    #[serde(default, deny_unknown_fields)]
    struct Outer {
        title: String,
        inner: Vec<Inner>,
        ratio: Option<f64>,
    }

    #[test]
    fn a_valid_document_deserializes_with_spans() {
        let src = "title = \"x\"\nratio = 2\n[[inner]]\nname = \"a\"\nsize = 7\npoint = [0.5, 1]\nmode = \"udp\"\n";
        let (v, spans) = from_str::<Outer>(src).into_result().expect("valid");
        assert_eq!(v.title, "x");
        assert_eq!(v.ratio, Some(2.0));
        assert_eq!(
            v.inner,
            vec![Inner {
                name: "a".into(),
                size: 7,
                point: [0.5, 1.0],
                mode: Mode::Udp
            }]
        );
        let s = spans.get("inner[0].size").expect("span");
        assert_eq!(&src[s], "7");
        assert!(spans.contains("inner[0]"));
        assert!(!spans.contains("inner[0].nope"));
    }

    #[test]
    fn every_problem_is_reported_with_its_path() {
        let src = "title = 3\nextra = 1\n[[inner]]\nname = \"a\"\nsize = 70000\n[[inner]]\npoint = [1]\nmode = \"sctp\"\nbogus = true\n";
        let problems = from_str::<Outer>(src).into_result().expect_err("invalid");
        let mut found: Vec<(String, String)> = problems
            .iter()
            .map(|p| (p.path.clone(), p.message.clone()))
            .collect();
        found.sort();
        let paths: Vec<&str> = found.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(
            paths,
            vec![
                "extra",
                "inner[0].size",
                "inner[1].bogus",
                "inner[1].mode",
                "inner[1].point",
                "title"
            ],
            "{found:?}"
        );
        let title = problems.iter().find(|p| p.path == "title").expect("title");
        assert_eq!(title.message, "expected a string, found an integer");
        assert_eq!(&src[title.span.clone()], "3");
        let extra = problems.iter().find(|p| p.path == "extra").expect("extra");
        assert!(
            extra.message.starts_with("unknown field \"extra\""),
            "{}",
            extra.message
        );
        let size = problems
            .iter()
            .find(|p| p.path == "inner[0].size")
            .expect("size");
        assert!(size.message.contains("out of range"), "{}", size.message);
    }

    #[test]
    fn syntax_errors_are_located() {
        let problems = from_str::<Outer>("title = \"x\"\ninner = [\n")
            .into_result()
            .expect_err("syntax");
        assert_eq!(problems.len(), 1);
        assert!(problems[0].message.starts_with("TOML syntax error"));
    }

    #[test]
    fn nearest_falls_back_to_parent() {
        let src = "[[inner]]\nname = \"a\"\n";
        let (_, spans) = from_str::<Outer>(src).into_result().expect("valid");
        assert_eq!(
            spans.nearest("inner[0].size"),
            spans.get("inner[0]").expect("inner")
        );
        assert_eq!(spans.nearest("nothing.here"), 0..0);
    }

    #[test]
    fn line_index_counts_characters() {
        let idx = LineIndex::new("ab\ncé d\n");
        assert_eq!(idx.line_col(0), (1, 1));
        assert_eq!(idx.line_col(3), (2, 1));
        assert_eq!(idx.line_col(7), (2, 4));
    }
}
