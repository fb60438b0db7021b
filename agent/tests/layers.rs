//! The import directions of docs/architecture.md, checked on the source: every `crate::module`
//! that a top-level module of `agent/src` names in its code (comments and `#[cfg(test)]` code
//! aside) must be one it may import. Today's exceptions are listed in [`DEBTS`], each to be
//! paid off; the list may only shrink: an exception that no longer occurs fails the test until
//! it is removed from the list.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The shared leaves: anyone may import them, they import nothing of the crate.
const LEAVES: &[&str] = &[
    "backoff", "clock", "geometry", "hash", "memory", "notify", "pixels",
];

/// What each top-level module may import besides the leaves (docs/architecture.md, "The
/// modules"). A module missing here fails the test: place it in the map first.
const ALLOWED: &[(&str, &[&str])] = &[
    // Leaves.
    ("backoff", &[]),
    ("clock", &[]),
    ("geometry", &[]),
    ("hash", &[]),
    ("memory", &[]),
    ("notify", &[]),
    ("pixels", &[]),
    // The configuration: below every stage.
    ("config", &[]),
    // The stages, in data-flow order, and what they share.
    ("ingest", &["config"]),
    ("detect", &["config"]),
    ("rules", &["config", "detect"]),
    ("evidence", &["config", "detect", "rules"]),
    ("clip", &["config", "ingest", "evidence"]),
    ("faults", &["config", "ingest", "rules"]),
    (
        "incident",
        &["config", "detect", "rules", "evidence", "publish"],
    ),
    ("prometheus", &[]),
    ("publish", &["config", "prometheus"]),
    // Around the stages: what the agent reports and how it changes while running.
    ("reload", &["config"]),
    (
        "telemetry",
        &[
            "config",
            "ingest",
            "rules",
            "faults",
            "publish",
            "prometheus",
        ],
    ),
    (
        "diag",
        &[
            "config",
            "ingest",
            "rules",
            "evidence",
            "publish",
            "telemetry",
        ],
    ),
    ("command", &["config", "rules", "evidence", "publish"]),
    ("demo", &["config", "ingest"]),
    // The wiring: the running agent, and the command line above it (which also has `demo`
    // and `agent`, see `ABOVE_AGENT`).
    ("agent", WIRED),
    ("cmd", WIRED),
];

/// What the running agent wires together: every module but `cmd` and `demo`.
const WIRED: &[&str] = &[
    "config",
    "ingest",
    "detect",
    "rules",
    "evidence",
    "clip",
    "faults",
    "incident",
    "prometheus",
    "publish",
    "reload",
    "telemetry",
    "diag",
    "command",
];

/// What only `cmd` imports besides [`WIRED`].
const ABOVE_AGENT: &[&str] = &["agent", "demo"];

/// Imports against the map that are still in the code (issue 24), each (from, to). Remove an
/// entry when its import is gone; never add one.
const DEBTS: &[(&str, &str)] = &[
    // Camera health names the transport's payload types.
    ("faults", "publish"),
    // The transport knows the content: payloads of detections and incidents.
    ("publish", "detect"),
    ("publish", "rules"),
];

/// Top-level module of a file under `src`.
fn top_module(rel: &Path) -> Option<String> {
    let first = rel.components().next()?.as_os_str().to_str()?;
    let name = first.strip_suffix(".rs").unwrap_or(first);
    (name != "lib" && name != "main").then(|| name.to_string())
}

/// The code of a file without its comments and its `#[cfg(test)]` module (at the end of the
/// file, by this crate's convention).
fn code_of(text: &str) -> String {
    let body = match text.find("#[cfg(test)]\nmod tests") {
        Some(i) => &text[..i],
        None => text,
    };
    body.lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The modules `code` names as `crate::name` or inside `use crate::{…}`.
fn imports(code: &str, modules: &BTreeSet<String>) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let words = |s: &str| -> Vec<String> {
        s.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .map(str::to_string)
            .collect()
    };
    for (i, _) in code.match_indices("crate::") {
        let rest = &code[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            // Only the first segment of each path in the group.
            for path in group[..end].split(',') {
                if let Some(first) = words(path.trim()).into_iter().find(|w| !w.is_empty()) {
                    out.insert(first);
                }
            }
        } else if let Some(first) = words(rest).into_iter().next() {
            out.insert(first);
        }
    }
    out.retain(|m| modules.contains(m));
    out
}

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Every (from, to) import between top-level modules, with a file that makes it.
fn edges() -> BTreeMap<(String, String), String> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let modules: BTreeSet<String> = files
        .iter()
        .filter_map(|f| top_module(f.strip_prefix(&src).ok()?))
        .collect();
    let mut out = BTreeMap::new();
    for file in &files {
        let rel = file.strip_prefix(&src).expect("under src");
        let Some(from) = top_module(rel) else {
            continue;
        };
        // Test-only files (declared under #[cfg(test)]): rules/tests.rs.
        if rel.file_name().is_some_and(|n| n == "tests.rs") {
            continue;
        }
        let text = std::fs::read_to_string(file).expect("read source");
        for to in imports(&code_of(&text), &modules) {
            if to != from {
                out.entry((from.clone(), to))
                    .or_insert_with(|| rel.display().to_string());
            }
        }
    }
    out
}

#[test]
fn every_import_between_top_level_modules_follows_the_map() {
    let allowed: BTreeMap<&str, &[&str]> = ALLOWED.iter().copied().collect();
    let found = edges();
    let mut wrong = Vec::new();
    for ((from, to), file) in &found {
        let Some(may) = allowed.get(from.as_str()) else {
            wrong.push(format!(
                "{from} (in {file}) is not in the map: add it to ALLOWED and docs/architecture.md"
            ));
            continue;
        };
        let fine = LEAVES.contains(&to.as_str()) && !LEAVES.contains(&from.as_str())
            || may.contains(&to.as_str())
            || from == "cmd" && ABOVE_AGENT.contains(&to.as_str())
            || DEBTS.contains(&(from.as_str(), to.as_str()));
        if !fine {
            wrong.push(format!(
                "{from} imports {to} ({file}): not allowed by docs/architecture.md"
            ));
        }
    }
    for (from, to) in DEBTS {
        if !found.contains_key(&(from.to_string(), to.to_string())) {
            wrong.push(format!(
                "{from} no longer imports {to}: remove it from DEBTS (the list only shrinks)"
            ));
        }
    }
    assert!(wrong.is_empty(), "\n{}", wrong.join("\n"));
}

#[test]
fn the_scanner_sees_paths_groups_and_ignores_comments_and_tests() {
    let modules: BTreeSet<String> = ["config", "rules", "publish", "detect", "ingest"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let code = code_of(
        "use crate::config::Camera;\n\
         use crate::{rules::Severity, publish as p};\n\
         // crate::ingest in a comment\n\
         fn f() { crate::detect::run(); }\n\
         #[cfg(test)]\nmod tests { use crate::ingest::x; }\n",
    );
    let got: Vec<String> = imports(&code, &modules).into_iter().collect();
    assert_eq!(got, ["config", "detect", "publish", "rules"]);
}
