//! The import directions of docs/architecture.md, checked on the source: every top-level
//! module that a top-level module of `agent/src` names in its code (`crate::x`, the items of
//! `use crate::{…}` groups, nested ones too, and `super::` chains that climb to the crate root;
//! comment lines, `#[cfg(test)] mod` blocks and test-only files aside) must be one it may
//! import; a glob or a rename of the crate root is refused. Exceptions would be listed in
//! [`DEBTS`]; there are none left, and [`MAX_DEBTS`] (0) keeps a new one from being added
//! quietly. The list may only shrink: an exception that no longer occurs fails the test until it
//! is removed from the list. The agent crate's manifest is checked too: the demo's servers stay
//! out of it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The shared leaves: anyone may import them, they import nothing of the crate.
const LEAVES: &[&str] = &[
    "backoff", "clock", "geometry", "hash", "os", "pixels", "spanned",
];

/// What each top-level module may import besides the leaves (docs/architecture.md, "The
/// modules"). A module missing here fails the test: place it in the map first.
const ALLOWED: &[(&str, &[&str])] = &[
    // Leaves.
    ("backoff", &[]),
    ("clock", &[]),
    ("geometry", &[]),
    ("hash", &[]),
    ("os", &[]),
    ("spanned", &[]),
    ("pixels", &[]),
    // The configuration: below every stage.
    ("config", &[]),
    // The stages, in data-flow order, and what they share.
    ("ingest", &["config"]),
    ("detect", &["config"]),
    ("rules", &["config", "detect"]),
    ("evidence", &["config", "detect"]),
    ("clip", &["config", "ingest"]),
    ("health", &["config", "ingest", "rules"]),
    (
        "incident",
        &["config", "detect", "rules", "evidence", "health", "publish"],
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
            "health",
            "incident",
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
    // The wiring: the running agent, and the command line above it (which also has `agent`,
    // see `ABOVE_AGENT`).
    ("agent", WIRED),
    ("cmd", WIRED),
];

/// What the running agent wires together: every module but `cmd`.
const WIRED: &[&str] = &[
    "config",
    "ingest",
    "detect",
    "rules",
    "evidence",
    "clip",
    "health",
    "incident",
    "prometheus",
    "publish",
    "reload",
    "telemetry",
    "diag",
    "command",
];

/// What only `cmd` imports besides [`WIRED`].
const ABOVE_AGENT: &[&str] = &["agent"];

/// Imports against the map that are still in the code, each (from, to). Remove an entry when
/// its import is gone; never add one. Issue 24 paid the last of them.
const DEBTS: &[(&str, &str)] = &[];

/// At most this many debts: lower it with each one paid (the list never grows).
const MAX_DEBTS: usize = 0;

/// The module path of a file under `src` (`ingest/probe.rs` → `["ingest", "probe"]`,
/// `ingest/mod.rs` → `["ingest"]`); empty for `lib.rs` and `main.rs`.
fn module_path(rel: &Path) -> Vec<String> {
    let mut parts: Vec<String> = rel
        .iter()
        .filter_map(|c| c.to_str())
        .map(|c| c.strip_suffix(".rs").unwrap_or(c).to_string())
        .collect();
    if parts.last().is_some_and(|l| l == "mod") || parts == ["lib"] || parts == ["main"] {
        parts.pop();
    }
    parts
}

/// The end of the item that opens with the `{` at `open` (brace-balanced), or the text's end.
fn block_end(text: &str, open: usize) -> usize {
    let mut depth = 0usize;
    for (i, c) in text[open..].char_indices() {
        match c {
            '{' => depth += 1,
            '}' => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return open + i + 1;
                }
            }
            _ => {}
        }
    }
    text.len()
}

/// The code of a file without its comment lines and without its `#[cfg(test)] mod … { … }`
/// blocks, wherever they are; and the names of the files it declares test-only
/// (`#[cfg(test)] mod name;`).
fn code_of(text: &str) -> (String, Vec<String>) {
    let uncommented: String = text
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n");
    let (mut code, mut test_files, mut rest) = (String::new(), Vec::new(), uncommented.as_str());
    while let Some(at) = rest.find("#[cfg(test)]") {
        code.push_str(&rest[..at]);
        let after = rest[at + "#[cfg(test)]".len()..].trim_start();
        let skipped = rest.len() - after.len();
        let Some(decl) = after.strip_prefix("mod ") else {
            // Another item under cfg(test) (a field, a function, a use): its code is scanned,
            // so nothing hides behind the attribute.
            rest = after;
            continue;
        };
        let name: String = decl
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        let tail = decl[name.len()..].trim_start();
        if let Some(after_decl) = tail.strip_prefix(';') {
            test_files.push(name);
            rest = after_decl;
        } else if tail.starts_with('{') {
            let open = rest.len() - tail.len();
            rest = &rest[block_end(rest, open)..];
        } else {
            rest = &rest[skipped..];
        }
    }
    code.push_str(rest);
    (code, test_files)
}

/// The first path segment of each item of a `use` group that starts at `group` (just after
/// its `{`), at the group's own depth.
fn group_heads(group: &str) -> Vec<String> {
    let mut heads = Vec::new();
    let (mut depth, mut item) = (0usize, String::new());
    for c in group.chars() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => break,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                heads.push(std::mem::take(&mut item));
                continue;
            }
            _ => {}
        }
        if depth == 0 {
            item.push(c);
        }
    }
    heads.push(item);
    heads
        .iter()
        .filter_map(|i| {
            let head: String = i
                .trim()
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            (!head.is_empty()).then_some(head)
        })
        .collect()
}

/// The top-level modules `code` (of the module at `path`) names: `crate::name`, the items of
/// `use crate::{…}` (nested groups too), and `super::` chains that climb to the crate root.
/// A glob or a rename of the crate root (`crate::*`, `crate as …`) hides what is imported
/// and is reported as `*`.
fn imports(code: &str, path: &[String], modules: &BTreeSet<String>) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let word = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    };
    let mut roots: Vec<&str> = code
        .match_indices("crate::")
        .filter(|(i, _)| {
            !code[..*i]
                .chars()
                .next_back()
                .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$')
        })
        .map(|(i, m)| &code[i + m.len()..])
        .collect();
    // `super::` chains as long as the module path reach the crate root.
    let climb = "super::".repeat(path.len());
    if !climb.is_empty() {
        for (i, m) in code.match_indices(climb.as_str()) {
            let before = &code[..i];
            if !before.ends_with("super::") && !before.ends_with(|c: char| c.is_alphanumeric()) {
                roots.push(&code[i + m.len()..]);
            }
        }
    }
    for rest in roots {
        if let Some(group) = rest.strip_prefix('{') {
            out.extend(group_heads(group));
        } else if rest.starts_with('*') {
            out.insert("*".to_string());
        } else {
            out.insert(word(rest));
        }
    }
    if code.contains("crate as ") {
        out.insert("*".to_string());
    }
    out.retain(|m| m == "*" || modules.contains(m));
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

/// The top-level modules, and every (from, to) import between them with a file that makes it.
fn edges() -> (BTreeSet<String>, BTreeMap<(String, String), String>) {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    let rel = |f: &std::path::PathBuf| f.strip_prefix(&src).expect("under src").to_path_buf();
    let modules: BTreeSet<String> = files
        .iter()
        .filter_map(|f| module_path(&rel(f)).first().cloned())
        .collect();
    let mut sources = BTreeMap::new();
    let mut test_only = BTreeSet::new();
    for file in &files {
        let r = rel(file);
        let (code, tests) = code_of(&std::fs::read_to_string(file).expect("read source"));
        // A file declared test-only lives beside a mod.rs, or under a folder named after its
        // declaring file.
        let dir = match r.file_name().and_then(|n| n.to_str()) {
            Some("mod.rs" | "lib.rs" | "main.rs") => r.parent().map(Path::to_path_buf),
            _ => Some(r.with_extension("")),
        }
        .unwrap_or_default();
        for t in tests {
            test_only.insert(dir.join(format!("{t}.rs")));
            test_only.insert(dir.join(&t).join("mod.rs"));
        }
        sources.insert(r, code);
    }
    let mut out = BTreeMap::new();
    for (r, code) in sources.iter().filter(|(r, _)| !test_only.contains(*r)) {
        let path = module_path(r);
        let Some(from) = path.first() else {
            continue;
        };
        for to in imports(code, &path, &modules) {
            if &to != from {
                out.entry((from.clone(), to))
                    .or_insert_with(|| r.display().to_string());
            }
        }
    }
    (modules, out)
}

#[test]
fn every_import_between_top_level_modules_follows_the_map() {
    let allowed: BTreeMap<&str, &[&str]> = ALLOWED.iter().copied().collect();
    let (modules, found) = edges();
    let mut wrong = Vec::new();
    for m in &modules {
        if !allowed.contains_key(m.as_str()) {
            wrong.push(format!(
                "{m} is not in the map: add it to ALLOWED and docs/architecture.md"
            ));
        }
    }
    for ((from, to), file) in &found {
        let may = allowed.get(from.as_str()).copied().unwrap_or(&[]);
        let fine = LEAVES.contains(&to.as_str()) && !LEAVES.contains(&from.as_str())
            || may.contains(&to.as_str())
            || from == "cmd" && ABOVE_AGENT.contains(&to.as_str())
            || DEBTS.contains(&(from.as_str(), to.as_str()));
        if to == "*" {
            wrong.push(format!(
                "{from} ({file}) imports the crate root by a glob or a rename: name the modules"
            ));
        } else if !fine {
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
    if DEBTS.len() > MAX_DEBTS {
        wrong.push(format!(
            "{} debts, more than the {MAX_DEBTS} allowed: the list never grows",
            DEBTS.len()
        ));
    }
    assert!(wrong.is_empty(), "\n{}", wrong.join("\n"));
}

#[test]
fn the_scanner_sees_paths_groups_and_super_chains_and_ignores_comments_and_tests() {
    let modules: BTreeSet<String> = ["config", "rules", "publish", "detect", "ingest", "clock"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let (code, test_files) = code_of(
        "use crate::config::Camera;\n\
         use crate::{rules::{Severity, line::Direction}, publish as p};\n\
         // crate::ingest in a comment\n\
         #[cfg(test)]\nmod helpers;\n\
         #[cfg(test)]\nmod early { use crate::ingest::x; }\n\
         fn f() { crate::detect::run(); super::super::clock::now(); }\n\
         #[cfg(test)]\nmod tests { use crate::ingest::y; }\n",
    );
    assert_eq!(test_files, ["helpers"]);
    let path = ["ingest".to_string(), "probe".to_string()];
    let got: Vec<String> = imports(&code, &path, &modules).into_iter().collect();
    assert_eq!(got, ["clock", "config", "detect", "publish", "rules"]);
    // One `super::` from a second-level file stays in its own module.
    let (code, _) = code_of("use super::publish::x;\n");
    assert!(imports(&code, &path, &modules).is_empty());
    let top = ["faults".to_string()];
    let got: Vec<String> = imports(&code, &top, &modules).into_iter().collect();
    assert_eq!(
        got,
        ["publish"],
        "from faults.rs, super:: is the crate root"
    );
    let (code, _) = code_of("use crate::*;\n");
    assert!(imports(&code, &top, &modules).contains("*"));
}

/// The demo's servers stay out of the binary that goes onto a box: `vigil` depends on neither
/// the embedded broker nor the RTSP server (they are in the `vigil-demo` crate).
#[test]
fn the_agent_crate_does_not_depend_on_the_demo_servers() {
    let manifest =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml"))
            .expect("agent/Cargo.toml is readable");
    let manifest: toml::Table = toml::from_str(&manifest).expect("agent/Cargo.toml parses");
    let mut deps = Vec::new();
    for table in ["dependencies", "build-dependencies"] {
        if let Some(t) = manifest.get(table).and_then(|t| t.as_table()) {
            deps.extend(t.keys().cloned());
        }
    }
    assert!(
        deps.len() > 10,
        "the manifest's dependencies were not read: {deps:?}"
    );
    for demo_only in ["rumqttd", "gstreamer-rtsp-server"] {
        assert!(
            !deps.iter().any(|d| d == demo_only),
            "agent/Cargo.toml depends on {demo_only}: it belongs to the vigil-demo crate (demo/)"
        );
    }
}
