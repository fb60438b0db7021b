//! File-level validation of a deserialized [`Config`]: required keys, identifiers, URLs,
//! polygons and references between sections. Pure: takes the config and its spans, returns
//! problems.

use std::collections::HashSet;

use super::shared::ObjectFilter;
use super::types::*;
mod camera;

use super::{Backend, Camera};
use crate::spanned::{Problem, Spans};

/// Longest Unix socket path (`sun_path` holds 108 bytes with the terminating NUL).
pub const MAX_SOCKET_PATH: usize = 107;

/// Keys that must be present, per table kind. `[]` stands for each element of an array.
const REQUIRED: &[(&str, &[&str])] = &[
    ("", &["device", "mqtt", "models", "cameras"]),
    ("device", &["id", "district"]),
    ("models[]", &["name"]),
    ("cameras[]", &["id", "url", "model"]),
    ("cameras[].zones[]", &["name", "polygon", "classes"]),
    ("cameras[].lines[]", &["name", "a", "b", "classes"]),
    ("cameras[].masks[]", &["polygon"]),
];

struct Checker<'a> {
    spans: &'a Spans,
    problems: Vec<Problem>,
}

impl Checker<'_> {
    fn err(&mut self, path: &str, message: impl Into<String>) {
        self.problems.push(Problem {
            span: self.spans.nearest(path),
            path: path.to_string(),
            message: message.into(),
        });
    }

    /// The name of a camera's zone or line (`what`) at `item`: not blank when set, and not the
    /// name of an earlier one of the camera (`seen`).
    fn unique_name<'n>(
        &mut self,
        item: &str,
        what: &str,
        name: &'n str,
        seen: &mut HashSet<&'n str>,
    ) {
        let path = format!("{item}.name");
        if self.spans.contains(&path) && name.trim().is_empty() {
            self.err(&path, "must not be empty");
        } else if !name.is_empty() && !seen.insert(name) {
            self.err(
                &path,
                format!("{what} \"{name}\" is defined twice on this camera"),
            );
        }
    }

    fn positive(&mut self, path: &str, v: f64) {
        if !(v.is_finite() && v > 0.0) {
            self.err(path, format!("{v} must be a positive number of seconds"));
        }
    }

    fn not_negative(&mut self, path: &str, v: f64) {
        if !(v.is_finite() && v >= 0.0) {
            self.err(
                path,
                format!("{v} must be zero or a positive number of seconds"),
            );
        }
    }

    fn score(&mut self, path: &str, v: Option<f32>) {
        if let Some(s) = v
            && !(s > 0.0 && s <= 1.0)
        {
            self.err(path, format!("{s} is outside (0, 1]"));
        }
    }

    fn filters(&mut self, path: &str, filters: &std::collections::BTreeMap<String, ObjectFilter>) {
        for (label, f) in filters {
            for (field, message) in f.problems() {
                self.err(&format!("{path}.{label}.{field}"), message);
            }
        }
    }

    fn require(&mut self, table: &str, keys: &[&str]) {
        for key in keys {
            let path = if table.is_empty() {
                (*key).to_string()
            } else {
                format!("{table}.{key}")
            };
            if !self.spans.contains(&path) {
                let what = if table.is_empty() {
                    "the document"
                } else {
                    table
                };
                self.err(&path, format!("missing required field \"{key}\" in {what}"));
            }
        }
    }

    /// `fuse_with` and `fusion` of model `m` (at `p`) among `models`.
    fn fusion(&mut self, p: &str, m: &crate::config::ModelRef, models: &[crate::config::ModelRef]) {
        let Some(partner) = &m.fuse_with else {
            if self.spans.contains(&format!("{p}.fusion")) {
                self.err(&format!("{p}.fusion"), "only used with fuse_with");
            }
            return;
        };
        let path = format!("{p}.fuse_with");
        if m.builtin.is_none() {
            self.err(
                &path,
                "only the built-in fire detector fuses with a model; put fuse_with in the [[models]] entry with builtin = \"fire\"",
            );
            return;
        }
        let Some(other) = models.iter().find(|o| &o.name == partner) else {
            let known: Vec<&str> = models.iter().map(|o| o.name.as_str()).collect();
            self.err(
                &path,
                format!(
                    "no model named \"{partner}\" in [[models]] (known: {})",
                    known.join(", ")
                ),
            );
            return;
        };
        if other.builtin.is_some() || other.fuse_with.is_some() {
            self.err(
                &path,
                format!("\"{partner}\" is a built-in detector; fuse_with names a model card's entry (an ONNX fire/smoke model)"),
            );
        }
    }

    /// Identifiers go into MQTT topics: no `/`, `+`, `#`, spaces or other surprises.
    fn ident(&mut self, path: &str, value: &str) {
        if !self.spans.contains(path) {
            return; // reported as missing
        }
        if value.is_empty() {
            self.err(path, "must not be empty");
        } else if value.len() > 64 {
            self.err(
                path,
                format!("is {} characters long, at most 64 allowed", value.len()),
            );
        } else if let Some(c) = value
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
        {
            self.err(
                path,
                format!(
                    "\"{value}\" contains {c:?}; use only letters, digits, '-', '_' and '.' (it is part of MQTT topics)"
                ),
            );
        }
    }
}

/// Every problem of `config` that can be seen without reading other files.
pub fn validate(config: &Config, spans: &Spans) -> Vec<Problem> {
    let mut c = Checker {
        spans,
        problems: Vec::new(),
    };
    for (table, keys) in REQUIRED {
        for concrete in expand(table, config) {
            if concrete.is_empty() || spans.contains(&concrete) {
                c.require(&concrete, keys);
            }
        }
    }
    c.ident("device.id", &config.device.id);
    c.ident("device.district", &config.device.district);
    session(config, &mut c);
    commands(config, &mut c);
    let most = config.mqtt.max_message_bytes.0;
    if !(16 << 10..=256 << 20).contains(&most) {
        c.err(
            "mqtt.max_message_bytes",
            format!("{most} bytes is outside 16 KiB to 256 MiB (the most MQTT can carry)"),
        );
    }

    let model_names = models(config, &mut c);
    camera::cameras(config, &mut c, &model_names);
    runtime(config, &mut c);
    c.problems
}

/// The broker connection: the brokers, credentials, mutual TLS and the keep-alive.
fn session(config: &Config, c: &mut Checker<'_>) {
    brokers(config, c);
    if config.mqtt.password_file.is_some() && config.mqtt.username.is_none() {
        c.err("mqtt.password_file", "needs mqtt.username");
    }
    if let Some(t) = &config.mqtt.tls
        && t.cert_file.is_some() != t.key_file.is_some()
    {
        let key = if t.cert_file.is_some() {
            "mqtt.tls.key_file"
        } else {
            "mqtt.tls.cert_file"
        };
        c.err(
            if t.cert_file.is_some() {
                "mqtt.tls.cert_file"
            } else {
                "mqtt.tls.key_file"
            },
            format!("mutual TLS needs both cert_file and key_file; {key} is missing"),
        );
    }
    if !(5..=65535).contains(&config.mqtt.keep_alive_s) {
        c.err(
            "mqtt.keep_alive_s",
            format!(
                "{} is outside 5 to 65535 seconds (the most MQTT can carry)",
                config.mqtt.keep_alive_s
            ),
        );
    }
}

/// Commands from the centre (and the clips they and incidents ask for).
fn commands(config: &Config, c: &mut Checker<'_>) {
    if !(5..=86_400).contains(&config.commands.max_age_s) {
        c.err(
            "commands.max_age_s",
            format!(
                "{} is outside 5 to 86400 seconds",
                config.commands.max_age_s
            ),
        );
    }
    clips(config, c);
    if !(5..=90).contains(&config.commands.config_trial_s) {
        c.err(
            "commands.config_trial_s",
            format!(
                "{} is outside 5 to 90 seconds",
                config.commands.config_trial_s
            ),
        );
    }
    for name in &config.commands.allow {
        if !COMMANDS.contains(&name.as_str()) {
            c.err(
                "commands.allow",
                format!("unknown command {name:?}; known: {}", COMMANDS.join(", ")),
            );
        }
    }
    for (i, key) in config.commands.public_keys.iter().enumerate() {
        if let Err(e) = super::keys::public_key(key) {
            c.err(
                &format!("commands.public_keys[{i}]"),
                format!("{e} (vigil keygen prints one)"),
            );
        }
    }
}

/// Each model: a card or a built-in detector, its engine, threads and fusion, none twice.
/// Returns the names defined.
fn models<'c>(config: &'c Config, c: &mut Checker<'_>) -> HashSet<&'c str> {
    let spans = c.spans;
    let mut model_names = HashSet::new();
    for (i, m) in config.models.iter().enumerate() {
        let p = format!("models[{i}]");
        c.ident(&format!("{p}.name"), &m.name);
        let has_card = spans.contains(&format!("{p}.card")) || !m.card.as_os_str().is_empty();
        match (has_card, m.builtin) {
            (false, None) => c.err(
                &format!("{p}.card"),
                format!("missing required field \"card\" in {p} (a model card's path; or builtin = \"fire\" for the built-in fire and smoke detector)"),
            ),
            (true, Some(_)) => c.err(
                &format!("{p}.builtin"),
                "a model is either a card or a built-in detector; remove \"card\" or \"builtin\"",
            ),
            (false, Some(_)) if m.backend == Backend::Ort => c.err(
                &format!("{p}.backend"),
                "a built-in detector runs in vigil itself, not in an inference engine; remove \"backend\"",
            ),
            _ => {}
        }
        if m.backend == Backend::Ort && !cfg!(feature = "ort") {
            c.err(
                &format!("{p}.backend"),
                "this vigil was built without the ONNX Runtime backend (cargo feature \"ort\"); use backend = \"tract\"",
            );
        }
        if !(1..=64).contains(&m.threads) {
            c.err(
                &format!("{p}.threads"),
                format!("{} is outside 1 to 64", m.threads),
            );
        }
        if m.ort_library.is_some() && m.backend == Backend::Tract {
            c.err(
                &format!("{p}.ort_library"),
                "only used with backend = \"ort\" or \"auto\"",
            );
        }
        if !m.name.is_empty() && !model_names.insert(m.name.as_str()) {
            c.err(
                &format!("{p}.name"),
                format!("model \"{}\" is defined twice", m.name),
            );
        }
    }
    for (i, m) in config.models.iter().enumerate() {
        c.fusion(&format!("models[{i}]"), m, &config.models);
    }
    if spans.contains("models") && config.models.is_empty() {
        c.err("models", "at least one model is needed");
    }

    model_names
}

/// What the running agent needs besides cameras and models: inference threads, health,
/// outbox, diagnostics socket, metrics endpoint, evidence pictures, at least one camera.
fn runtime(config: &Config, c: &mut Checker<'_>) {
    let spans = c.spans;
    if config.inference.threads > super::types::MAX_INFERENCE_THREADS {
        c.err(
            "inference.threads",
            format!(
                "{} is more than {} (0 chooses one per usable core)",
                config.inference.threads,
                super::types::MAX_INFERENCE_THREADS
            ),
        );
    }
    if !(config.health.interval_s.is_finite() && config.health.interval_s >= 1.0) {
        c.err(
            "health.interval_s",
            format!("{} must be at least 1 second", config.health.interval_s),
        );
    }
    if config.outbox.max_bytes.0 < 1 << 20 {
        c.err(
            "outbox.max_bytes",
            format!("{} bytes is below 1 MiB", config.outbox.max_bytes.0),
        );
    }
    if !(config.outbox.flush_s.is_finite() && config.outbox.flush_s >= 0.0) {
        c.err(
            "outbox.flush_s",
            format!("{} must be 0 or more seconds", config.outbox.flush_s),
        );
    }
    if config.diag.enabled {
        let len = config.diag.socket.as_os_str().len();
        if len == 0 {
            c.err(
                "diag.socket",
                "is empty; give a path or set diag.enabled = false".to_string(),
            );
        } else if len > MAX_SOCKET_PATH {
            c.err(
                "diag.socket",
                format!("is {len} bytes long; a Unix socket path holds at most {MAX_SOCKET_PATH}"),
            );
        }
    }
    if let Some(listen) = &config.metrics.listen {
        match listen.parse::<std::net::SocketAddr>() {
            Ok(a) if a.ip().is_loopback() => {}
            Ok(_) => c.err(
                "metrics.listen",
                format!("{listen} is not a loopback address; use 127.0.0.1 or [::1] (put an authenticating proxy in front to expose it)"),
            ),
            Err(_) => c.err(
                "metrics.listen",
                format!("\"{listen}\" is not an address:port such as \"127.0.0.1:9464\""),
            ),
        }
    }
    let ev = &config.evidence;
    if ev.max_width < 160 {
        c.err(
            "evidence.max_width",
            format!("{} is below 160 pixels", ev.max_width),
        );
    }
    if !(1..=100).contains(&ev.quality) {
        c.err(
            "evidence.quality",
            format!("{} is outside 1 to 100", ev.quality),
        );
    }
    if ev.max_bytes < 16 * 1024 {
        c.err(
            "evidence.max_bytes",
            format!("{} is below 16384 bytes", ev.max_bytes),
        );
    }
    if spans.contains("cameras") && config.cameras.is_empty() {
        c.err("cameras", "at least one camera is needed");
    }
}

/// `mqtt.host`/`mqtt.port`, or `[[mqtt.brokers]]`: one of them, each broker reachable by name
/// and port, none twice, and a usable TLS name.
fn brokers(config: &Config, c: &mut Checker<'_>) {
    let m = &config.mqtt;
    let spans = c.spans;
    if spans.contains("mqtt") && m.brokers.is_empty() && !spans.contains("mqtt.host") {
        c.err(
            "mqtt.host",
            "missing required field \"host\" in mqtt (or list the brokers in [[mqtt.brokers]])",
        );
    }
    if !m.brokers.is_empty() && (spans.contains("mqtt.host") || spans.contains("mqtt.port")) {
        c.err(
            "mqtt.brokers",
            "give either mqtt.host and mqtt.port (one broker) or [[mqtt.brokers]], not both",
        );
    }
    if spans.contains("mqtt.host") && m.host.trim().is_empty() {
        c.err("mqtt.host", "must not be empty");
    }
    if m.port == 0 {
        c.err("mqtt.port", "must be between 1 and 65535");
    }
    if m.brokers.len() > MAX_BROKERS {
        c.err(
            "mqtt.brokers",
            format!("lists {} brokers, at most {MAX_BROKERS}", m.brokers.len()),
        );
    }
    let mut seen = std::collections::HashSet::new();
    for (i, b) in m.brokers.iter().enumerate() {
        let at = format!("mqtt.brokers[{i}]");
        if !spans.contains(&format!("{at}.host")) || b.host.trim().is_empty() {
            c.err(
                &format!("{at}.host"),
                "a broker needs its host (name or address)",
            );
        }
        if b.port == 0 {
            c.err(&format!("{at}.port"), "must be between 1 and 65535");
        }
        if !seen.insert((b.host.as_str(), b.port)) {
            c.err(&at, format!("{} is listed twice", b.address()));
        }
        if b.tls_name.is_some() && m.tls.is_none() {
            c.err(
                &format!("{at}.tls_name"),
                "names the broker's certificate, but there is no [mqtt.tls]: the connection would not use TLS",
            );
        }
        if let Some(name) = &b.tls_name
            && rustls::pki_types::ServerName::try_from(name.as_str()).is_err()
        {
            c.err(
                &format!("{at}.tls_name"),
                format!("{name:?} is not a DNS name or IP address a certificate can carry"),
            );
        }
    }
    if !(5..=3600).contains(&m.failback_s) {
        c.err(
            "mqtt.failback_s",
            format!("{} is outside 5 to 3600 seconds", m.failback_s),
        );
    }
}

/// The most brokers `mqtt.brokers` may list.
pub const MAX_BROKERS: usize = 8;

/// Concrete paths of a `REQUIRED` table pattern (`cameras[].zones[]` → `cameras[0].zones[0]`, …).
/// `[clips]`: spans and sizes in range, known incident types.
fn clips(config: &Config, c: &mut Checker<'_>) {
    let k = &config.clips;
    for (path, v) in [("clips.pre_s", k.pre_s), ("clips.post_s", k.post_s)] {
        if !(1.0..=60.0).contains(&v) {
            c.err(path, format!("{v} is outside 1 to 60 seconds"));
        }
    }
    if !((1 << 20)..=(512 << 20)).contains(&k.buffer_bytes) {
        let message = format!(
            "{} is outside 1 MiB to 512 MiB (1048576 to 536870912)",
            k.buffer_bytes
        );
        c.err("clips.buffer_bytes", message);
    }
    if k.quota_bytes < k.buffer_bytes.max(16 << 20) {
        let message = format!(
            "{} is below 16 MiB (16777216) or below clips.buffer_bytes: a clip might not fit",
            k.quota_bytes
        );
        c.err("clips.quota_bytes", message);
    }
    for name in &k.on_open {
        if !CLIP_TYPES.contains(&name.as_str()) {
            let message = format!(
                "unknown incident type {name:?}; known: {}",
                CLIP_TYPES.join(", ")
            );
            c.err("clips.on_open", message);
        }
    }
}

fn expand(pattern: &str, config: &Config) -> Vec<String> {
    match pattern {
        "models[]" => (0..config.models.len())
            .map(|i| format!("models[{i}]"))
            .collect(),
        "cameras[]" => (0..config.cameras.len())
            .map(|i| format!("cameras[{i}]"))
            .collect(),
        "cameras[].zones[]" => per_camera(config, "zones", |c| c.zones.len()),
        "cameras[].lines[]" => per_camera(config, "lines", |c| c.lines.len()),
        "cameras[].masks[]" => per_camera(config, "masks", |c| c.masks.len()),
        other => vec![other.to_string()],
    }
}

fn per_camera(config: &Config, list: &str, len: impl Fn(&Camera) -> usize) -> Vec<String> {
    config
        .cameras
        .iter()
        .enumerate()
        .flat_map(|(i, cam)| (0..len(cam)).map(move |j| format!("cameras[{i}].{list}[{j}]")))
        .collect()
}

#[cfg(test)]
mod tests;
