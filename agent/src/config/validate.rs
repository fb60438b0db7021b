//! File-level validation of a deserialized [`Config`]: required keys, identifiers, URLs,
//! polygons and references between sections. Pure: takes the config and its spans, returns
//! problems.

use std::collections::HashSet;

use super::shared::{MAX_WINDOW_FRAMES, ObjectFilter};
use super::types::*;
use crate::geometry;
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
    brokers(config, &mut c);
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
    if !(5..=86_400).contains(&config.commands.max_age_s) {
        c.err(
            "commands.max_age_s",
            format!(
                "{} is outside 5 to 86400 seconds",
                config.commands.max_age_s
            ),
        );
    }
    clips(config, &mut c);
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
    let most = config.mqtt.max_message_bytes.0;
    if !(16 << 10..=256 << 20).contains(&most) {
        c.err(
            "mqtt.max_message_bytes",
            format!("{most} bytes is outside 16 KiB to 256 MiB (the most MQTT can carry)"),
        );
    }

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

    let mut camera_ids = HashSet::new();
    for (i, cam) in config.cameras.iter().enumerate() {
        let p = format!("cameras[{i}]");
        c.ident(&format!("{p}.id"), &cam.id);
        if !cam.id.is_empty() && !camera_ids.insert(cam.id.as_str()) {
            c.err(
                &format!("{p}.id"),
                format!("camera \"{}\" is defined twice", cam.id),
            );
        }
        if spans.contains(&format!("{p}.url"))
            && let Err(e) = crate::config::url::check(&cam.url)
        {
            c.err(&format!("{p}.url"), e.to_string());
        }
        if let Some(detect) = &cam.detect_url {
            if let Err(e) = crate::config::url::check(detect) {
                c.err(&format!("{p}.detect_url"), e.to_string());
            } else if *detect == cam.url {
                c.err(
                    &format!("{p}.detect_url"),
                    "is the same stream as url; give the camera's sub-stream, or leave detect_url out to analyse url",
                );
            }
        }
        if spans.contains(&format!("{p}.model")) && !model_names.contains(cam.model.as_str()) {
            let known: Vec<&str> = config.models.iter().map(|m| m.name.as_str()).collect();
            c.err(
                &format!("{p}.model"),
                format!(
                    "no model named \"{}\" in [[models]] (known: {})",
                    cam.model,
                    known.join(", ")
                ),
            );
        }
        if !(0.1..=30.0).contains(&cam.analysis_fps) {
            c.err(
                &format!("{p}.analysis_fps"),
                format!(
                    "{} is outside 0.1 to 30 frames per second",
                    cam.analysis_fps
                ),
            );
        }
        for (key, v) in [
            ("offline_s", cam.offline_s),
            ("frozen_s", cam.frozen_s),
            ("tamper_s", cam.tamper_s),
        ] {
            if !(v.is_finite() && v >= 1.0) {
                c.err(
                    &format!("{p}.{key}"),
                    format!("{v} must be at least 1 second"),
                );
            }
        }
        if !(cam.stall_s.is_finite() && cam.stall_s >= 2.0) {
            c.err(
                &format!("{p}.stall_s"),
                format!("{} must be at least 2 seconds", cam.stall_s),
            );
        }
        let mut zone_names = HashSet::new();
        for (j, z) in cam.zones.iter().enumerate() {
            let zp = format!("{p}.zones[{j}]");
            if spans.contains(&format!("{zp}.name")) && z.name.trim().is_empty() {
                c.err(&format!("{zp}.name"), "must not be empty");
            } else if !z.name.is_empty() && !zone_names.insert(z.name.as_str()) {
                c.err(
                    &format!("{zp}.name"),
                    format!("zone \"{}\" is defined twice on this camera", z.name),
                );
            }
            if spans.contains(&format!("{zp}.polygon"))
                && let Err(e) = geometry::check_polygon(&z.polygon)
            {
                c.err(&format!("{zp}.polygon"), e);
            }
            if spans.contains(&format!("{zp}.classes")) && z.classes.is_empty() {
                c.err(
                    &format!("{zp}.classes"),
                    "list at least one class, e.g. [\"person\"]",
                );
            }
            c.score(&format!("{zp}.min_score"), z.min_score);
            for (key, v) in [
                ("quiet_s", z.quiet_s),
                ("update_min_interval_s", z.update_min_interval_s),
                ("heartbeat_s", z.heartbeat_s),
                ("crowd_for_s", z.crowd_for_s),
            ] {
                c.positive(&format!("{zp}.{key}"), v);
            }
            if let Some(d) = z.dwell_s {
                c.positive(&format!("{zp}.dwell_s"), d);
            }
            c.not_negative(&format!("{zp}.cooldown_s"), z.cooldown_s);
            if !(1..=30).contains(&z.inertia) {
                c.err(
                    &format!("{zp}.inertia"),
                    format!("{} is outside 1 to 30 frames", z.inertia),
                );
            }
            if !(0.0..=0.5).contains(&z.exit_margin) {
                c.err(
                    &format!("{zp}.exit_margin"),
                    format!(
                        "{} is outside 0 to 0.5 (a fraction of the picture)",
                        z.exit_margin
                    ),
                );
            }
            if z.crowd_min_count == Some(0) {
                c.err(&format!("{zp}.crowd_min_count"), "must be at least 1");
            }
            if !z.intrusion && z.dwell_s.is_none() && z.crowd_min_count.is_none() {
                c.err(
                    &format!("{zp}.intrusion"),
                    "the zone raises nothing: keep intrusion = true, or set dwell_s or crowd_min_count",
                );
            }
            c.filters(&format!("{zp}.filters"), &z.filters);
        }
        let mut line_names = HashSet::new();
        for (j, l) in cam.lines.iter().enumerate() {
            let lp = format!("{p}.lines[{j}]");
            if spans.contains(&format!("{lp}.name")) && l.name.trim().is_empty() {
                c.err(&format!("{lp}.name"), "must not be empty");
            } else if !l.name.is_empty() && !line_names.insert(l.name.as_str()) {
                c.err(
                    &format!("{lp}.name"),
                    format!("line \"{}\" is defined twice on this camera", l.name),
                );
            }
            if spans.contains(&format!("{lp}.a"))
                && spans.contains(&format!("{lp}.b"))
                && let Err(e) = geometry::check_line(l.a, l.b)
            {
                c.err(&format!("{lp}.b"), e);
            }
            if spans.contains(&format!("{lp}.classes")) && l.classes.is_empty() {
                c.err(
                    &format!("{lp}.classes"),
                    "list at least one class, e.g. [\"person\"]",
                );
            }
            c.score(&format!("{lp}.min_score"), l.min_score);
            if !(l.hysteresis.is_finite() && (0.0..=0.2).contains(&l.hysteresis)) {
                c.err(
                    &format!("{lp}.hysteresis"),
                    format!(
                        "{} is outside 0 to 0.2 (a fraction of the frame)",
                        l.hysteresis
                    ),
                );
            }
            c.positive(&format!("{lp}.quiet_s"), l.quiet_s);
            c.not_negative(&format!("{lp}.cooldown_s"), l.cooldown_s);
        }
        for (j, m) in cam.masks.iter().enumerate() {
            let mp = format!("{p}.masks[{j}].polygon");
            if spans.contains(&mp)
                && let Err(e) = geometry::check_polygon(&m.polygon)
            {
                c.err(&mp, e);
            }
        }
        c.filters(&format!("{p}.filters"), &cam.filters);
        let t = &cam.tracker;
        if !(t.iou_min > 0.0 && t.iou_min <= 1.0) {
            c.err(
                &format!("{p}.tracker.iou_min"),
                format!("{} is outside (0, 1]", t.iou_min),
            );
        }
        if !(t.max_distance.is_finite() && t.max_distance >= 0.0) {
            c.err(
                &format!("{p}.tracker.max_distance"),
                format!("{} must be zero or more box heights", t.max_distance),
            );
        }
        if !(1..=100).contains(&t.min_hits) {
            c.err(
                &format!("{p}.tracker.min_hits"),
                format!("{} is outside 1 to 100", t.min_hits),
            );
        }
        c.positive(&format!("{p}.tracker.max_age_s"), t.max_age_s);
        c.score(&format!("{p}.tracker.low_score"), t.low_score);
        let f = &cam.fire;
        if !(1..=MAX_WINDOW_FRAMES).contains(&f.window_frames) {
            c.err(
                &format!("{p}.fire.window_frames"),
                format!("{} is outside 1 to {}", f.window_frames, MAX_WINDOW_FRAMES),
            );
        }
        if f.min_hits == 0 || f.min_hits > f.window_frames {
            c.err(
                &format!("{p}.fire.min_hits"),
                format!(
                    "{} must be between 1 and window_frames ({})",
                    f.min_hits, f.window_frames
                ),
            );
        }
        for (key, v) in [
            ("window_s", f.window_s),
            ("quiet_s", f.quiet_s),
            ("update_min_interval_s", f.update_min_interval_s),
            ("heartbeat_s", f.heartbeat_s),
        ] {
            c.positive(&format!("{p}.fire.{key}"), v);
        }
        c.score(&format!("{p}.fire.min_score"), f.min_score);
    }
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
    c.problems
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
mod tests {
    use super::super::{ConfigError, parse};
    use std::path::Path;

    const GOOD: &str = r#"
[device]
id = "q1-box-001"
district = "q1"

[mqtt]
host = "127.0.0.1"
port = 1883

[[models]]
name = "coco"
card = "models/ssd_mobilenet_v2_coco/model.toml"

[[cameras]]
id = "plaza"
url = "rtsp://admin:secret@127.0.0.1:8554/plaza"
kind = "security"
model = "coco"
analysis_fps = 5

[[cameras.zones]]
name = "lawn"
polygon = [[0.0, 0.55], [1.0, 0.55], [1.0, 1.0], [0.0, 1.0]]
classes = ["person"]
"#;

    fn problems(src: &str) -> Vec<String> {
        match parse(Path::new("vigil.toml"), src.to_string()) {
            Ok(_) => Vec::new(),
            Err(ConfigError::Invalid(d)) => d.0.iter().map(|d| d.to_string()).collect(),
            Err(e) => vec![e.to_string()],
        }
    }

    #[test]
    fn brokers_replace_host_and_port_and_each_is_checked() {
        let mqtt = "[mqtt]\nhost = \"127.0.0.1\"\nport = 1883\n";
        assert!(GOOD.contains(mqtt));
        let with = |list: &str| GOOD.replace(mqtt, &format!("[mqtt]\n{list}\n"));
        let two = with(
            "brokers = [{ host = \"10.0.0.1\", port = 8883, tls_name = \"mqtt-a.test\" }, { host = \"10.0.0.2\" }]\n[mqtt.tls]",
        );
        let plain = with("brokers = [{ host = \"10.0.0.1\", tls_name = \"mqtt-a.test\" }]");
        let p = problems(&plain);
        assert!(
            p.iter()
                .any(|p| p.contains("mqtt.brokers[0].tls_name") && p.contains("no [mqtt.tls]")),
            "{p:?}"
        );
        assert_eq!(problems(&two), Vec::<String>::new());
        let loaded = parse(Path::new("vigil.toml"), two).expect("valid");
        let e = loaded.config.mqtt.endpoints();
        assert_eq!(e.len(), 2);
        assert_eq!(
            (e[1].address(), e[1].tls_name.clone()),
            ("10.0.0.2:1883".into(), None)
        );
        let neither = with("keep_alive_s = 30");
        let p = problems(&neither);
        assert!(
            p.iter()
                .any(|p| p.contains("mqtt.host") && p.contains("[[mqtt.brokers]]")),
            "{p:?}"
        );
        let both = GOOD.replace(
            mqtt,
            &format!("{mqtt}brokers = [{{ host = \"10.0.0.2\" }}]\n"),
        );
        let p = problems(&both);
        assert!(
            p.iter()
                .any(|p| p.contains("mqtt.brokers") && p.contains("not both")),
            "{p:?}"
        );
        let bad = with(
            "failback_s = 1\nbrokers = [{ host = \"a\" }, { host = \"a\" }, { host = \"\", port = 0 }, { host = \"b\", tls_name = \"not a name!\" }]",
        );
        let p = problems(&bad).join("\n");
        for needle in [
            "mqtt.brokers[1]: a:1883 is listed twice",
            "mqtt.brokers[2].host",
            "mqtt.brokers[2].port",
            "mqtt.brokers[3].tls_name",
            "mqtt.failback_s: 1 is outside 5 to 3600",
        ] {
            assert!(p.contains(needle), "{needle} in:\n{p}");
        }
        let many = (0..9)
            .map(|i| format!("{{ host = \"h{i}\" }}"))
            .collect::<Vec<_>>()
            .join(", ");
        let p = problems(&with(&format!("brokers = [{many}]")));
        assert!(p.iter().any(|p| p.contains("at most 8")), "{p:?}");
    }

    #[test]
    fn a_model_is_a_card_or_the_builtin_fire_detector() {
        let builtin = GOOD.replace(
            "name = \"coco\"\ncard = \"models/ssd_mobilenet_v2_coco/model.toml\"",
            "name = \"coco\"\nbuiltin = \"fire\"",
        );
        assert_ne!(builtin, GOOD);
        assert_eq!(problems(&builtin), Vec::<String>::new());
        let neither = GOOD.replace("card = \"models/ssd_mobilenet_v2_coco/model.toml\"\n", "");
        assert_eq!(
            problems(&neither),
            [
                "vigil.toml:10:1: models[0].card: missing required field \"card\" in models[0] (a model card's path; or builtin = \"fire\" for the built-in fire and smoke detector)"
            ]
        );
        let both = GOOD.replace("name = \"coco\"\n", "name = \"coco\"\nbuiltin = \"fire\"\n");
        assert_eq!(
            problems(&both),
            [
                "vigil.toml:12:11: models[0].builtin: a model is either a card or a built-in detector; remove \"card\" or \"builtin\""
            ]
        );
        let unknown = builtin.replace("builtin = \"fire\"", "builtin = \"flame\"");
        assert!(
            problems(&unknown)[0].contains("unknown variant `flame`, expected `fire`")
                || problems(&unknown)[0].contains("unknown value \"flame\""),
            "{:?}",
            problems(&unknown)
        );
    }

    #[test]
    fn only_the_builtin_detector_fuses_and_only_with_a_card() {
        let fused = GOOD.replace(
            "[[cameras]]",
            "[[models]]\nname = \"fire\"\nbuiltin = \"fire\"\nfuse_with = \"coco\"\nfusion = \"either\"\n\n[[cameras]]",
        );
        assert_eq!(problems(&fused), Vec::<String>::new());
        let loaded = parse(Path::new("vigil.toml"), fused.clone()).expect("valid");
        assert_eq!(
            loaded.config.models[1].fusion,
            crate::config::Fusion::Either
        );
        let default = fused.replace("fusion = \"either\"\n", "");
        let loaded = parse(Path::new("vigil.toml"), default).expect("valid");
        assert_eq!(loaded.config.models[1].fusion, crate::config::Fusion::Agree);
        let unknown = fused.replace("fuse_with = \"coco\"", "fuse_with = \"yolo\"");
        assert_eq!(
            problems(&unknown),
            [
                "vigil.toml:17:13: models[1].fuse_with: no model named \"yolo\" in [[models]] (known: coco, fire)"
            ]
        );
        let itself = fused.replace("fuse_with = \"coco\"", "fuse_with = \"fire\"");
        assert!(
            problems(&itself)[0].contains("\"fire\" is a built-in detector; fuse_with names"),
            "{:?}",
            problems(&itself)
        );
        let on_a_card = GOOD.replace(
            "card = \"models/ssd_mobilenet_v2_coco/model.toml\"",
            "card = \"models/ssd_mobilenet_v2_coco/model.toml\"\nfuse_with = \"coco\"",
        );
        assert!(
            problems(&on_a_card)[0]
                .contains("models[0].fuse_with: only the built-in fire detector fuses"),
            "{:?}",
            problems(&on_a_card)
        );
        let alone = GOOD.replace("name = \"coco\"\n", "name = \"coco\"\nfusion = \"agree\"\n");
        assert!(
            problems(&alone)[0].contains("models[0].fusion: only used with fuse_with"),
            "{:?}",
            problems(&alone)
        );
    }

    #[test]
    fn the_documented_example_is_valid() {
        let loaded = parse(Path::new("/etc/vigil/vigil.toml"), GOOD.to_string()).expect("valid");
        assert_eq!(loaded.config.cameras[0].analysis_fps, 5.0);
        assert_eq!(loaded.config.cameras[0].zones[0].quiet_s, 10.0);
        assert_eq!(loaded.config.mqtt.keep_alive_s, 30);
        assert_eq!(
            loaded.resolve(Path::new("models/x/model.toml")),
            Path::new("/etc/vigil/models/x/model.toml")
        );
    }

    #[test]
    fn missing_unknown_wrong_type_and_bad_polygon_are_reported_together() {
        let src = GOOD
            .replace("district = \"q1\"\n", "")
            .replace("port = 1883", "port = 1883\nprot = 1")
            .replace("analysis_fps = 5", "analysis_fps = \"five\"")
            .replace(
                "[[0.0, 0.55], [1.0, 0.55], [1.0, 1.0], [0.0, 1.0]]",
                "[[0.0, 0.0], [1.0, 1.0], [1.0, 0.0], [0.0, 0.5]]",
            );
        let p = problems(&src);
        assert_eq!(p.len(), 4, "{p:#?}");
        assert!(
            p[0].starts_with(
                "vigil.toml:2:1: device.district: missing required field \"district\""
            ),
            "{}",
            p[0]
        );
        assert!(
            p[1].starts_with("vigil.toml:8:1: mqtt.prot: unknown field \"prot\""),
            "{}",
            p[1]
        );
        assert_eq!(
            p[2],
            "vigil.toml:19:16: cameras[0].analysis_fps: expected a number, found a string"
        );
        assert!(
            p[3].starts_with("vigil.toml:23:11: cameras[0].zones[0].polygon: "),
            "{}",
            p[3]
        );
        assert!(p[3].contains("crosses itself"), "{}", p[3]);
    }

    #[test]
    fn clip_settings_are_checked() {
        let loaded = parse(Path::new("vigil.toml"), GOOD.to_string()).expect("valid");
        assert_eq!(loaded.config.clips.on_open, ["fire", "smoke"]);
        let src = format!(
            "{GOOD}\n[clips]\npre_s = 0.5\npost_s = 61\nbuffer_bytes = 100\nquota_bytes = 1000\non_open = [\"fire\", \"explosion\"]\n"
        );
        let p = problems(&src);
        assert_eq!(p.len(), 5, "{p:#?}");
        for path in ["pre_s", "post_s", "buffer_bytes", "quota_bytes"] {
            assert!(
                p.iter().any(|m| m.contains(&format!("clips.{path}: "))),
                "{path}: {p:#?}"
            );
        }
        assert!(
            p.iter()
                .any(|m| m.contains("unknown incident type \"explosion\"")),
            "{p:#?}"
        );
    }

    #[test]
    fn commands_are_off_by_default_and_their_settings_are_checked() {
        let loaded = parse(Path::new("vigil.toml"), GOOD.to_string()).expect("valid");
        assert!(!loaded.config.commands.enabled);
        assert_eq!(
            loaded.config.commands.allow,
            ["ping", "snapshot", "clip", "ack", "arm", "disarm"]
                .map(String::from)
                .to_vec()
        );
        let src = format!(
            "{GOOD}\n[commands]\nenabled = true\nmax_age_s = 1\nconfig_trial_s = 91\nallow = [\"ping\", \"reboot\"]\n"
        );
        let p = problems(&src);
        assert_eq!(p.len(), 3, "{p:#?}");
        assert!(
            p.iter()
                .any(|m| m.contains("commands.config_trial_s: 91 is outside 5 to 90")),
            "{p:#?}"
        );
        assert!(
            p.iter()
                .any(|m| m.contains("commands.max_age_s: 1 is outside 5 to 86400")),
            "{p:#?}"
        );
        assert!(
            p.iter().any(|m| m.contains(
                "commands.allow: unknown command \"reboot\"; known: ping, snapshot, clip, ack, arm, disarm, config"
            )),
            "{p:#?}"
        );
    }

    #[test]
    fn inference_threads_are_bounded_and_located() {
        let ok = format!("{GOOD}\n[inference]\nthreads = 2\n");
        let loaded = parse(Path::new("vigil.toml"), ok).expect("valid");
        assert_eq!(loaded.config.inference.threads, 2);
        let src = format!("{GOOD}\n[inference]\nthreads = 65\n");
        let p = problems(&src);
        assert_eq!(p.len(), 1, "{p:#?}");
        assert!(
            p[0].starts_with("vigil.toml:27:11: inference.threads: 65 is more than 64"),
            "{}",
            p[0]
        );
    }

    #[test]
    fn a_detect_url_is_checked_like_url_and_must_be_another_stream() {
        let with = |detect: &str| {
            GOOD.replace(
                "url = \"rtsp://admin:secret@127.0.0.1:8554/plaza\"",
                &format!(
                    "url = \"rtsp://admin:secret@127.0.0.1:8554/plaza\"\ndetect_url = \"{detect}\""
                ),
            )
        };
        assert_eq!(
            problems(&with("rtsp://admin:secret@127.0.0.1:8554/plaza-sub")),
            Vec::<String>::new()
        );
        let p = problems(&with("http://admin:hunter2@cam/sub"));
        assert_eq!(p.len(), 1, "{p:#?}");
        assert!(p[0].contains("cameras[0].detect_url: "), "{}", p[0]);
        assert!(!p[0].contains("hunter2"), "a password leaked: {}", p[0]);
        let p = problems(&with("rtsp://admin:secret@127.0.0.1:8554/plaza"));
        assert_eq!(p.len(), 1, "{p:#?}");
        assert!(p[0].contains("is the same stream as url"), "{}", p[0]);
    }

    #[test]
    fn identifiers_references_and_urls_are_checked() {
        let src = GOOD
            .replace("id = \"q1-box-001\"", "id = \"q1/box\"")
            .replace("model = \"coco\"", "model = \"yolo\"")
            .replace(
                "rtsp://admin:secret@127.0.0.1:8554/plaza",
                "http://admin:secret@cam/plaza",
            )
            .replace("kind = \"security\"", "kind = \"thermal\"");
        let p = problems(&src);
        assert_eq!(p.len(), 4, "{p:#?}");
        assert!(
            p[0].contains("device.id: \"q1/box\" contains '/'"),
            "{}",
            p[0]
        );
        assert!(p[1].contains("cameras[0].url: "), "{}", p[1]);
        assert!(
            !p[1].contains("secret"),
            "a password leaked into an error: {}",
            p[1]
        );
        assert!(
            p[2].contains(
                "cameras[0].kind: unknown value \"thermal\", expected one of \"security\", \"fire\""
            ),
            "{}",
            p[2]
        );
        assert!(
            p[3].contains("cameras[0].model: no model named \"yolo\""),
            "{}",
            p[3]
        );
    }

    #[test]
    fn the_metrics_endpoint_and_the_socket_path_are_checked() {
        let ok = format!("{GOOD}\n[metrics]\nlisten = \"127.0.0.1:9464\"\n");
        assert!(parse(Path::new("vigil.toml"), ok).is_ok());
        let v6 = format!("{GOOD}\n[metrics]\nlisten = \"[::1]:9464\"\n");
        assert!(parse(Path::new("vigil.toml"), v6).is_ok());
        let long = "x".repeat(120);
        let bad = format!(
            "{GOOD}\n[metrics]\nlisten = \"0.0.0.0:9464\"\n[diag]\nsocket = \"/run/{long}.sock\"\n"
        );
        let p = problems(&bad);
        assert_eq!(p.len(), 2, "{p:#?}");
        assert!(
            p.iter()
                .any(|m| m.contains("metrics.listen: 0.0.0.0:9464 is not a loopback address")),
            "{p:#?}"
        );
        assert!(
            p.iter()
                .any(|m| m.contains("diag.socket: is 130 bytes long")),
            "{p:#?}"
        );
        let junk = format!("{GOOD}\n[metrics]\nlisten = \"localhost\"\n");
        assert!(problems(&junk)[0].contains("is not an address:port"));
    }

    #[test]
    fn outbox_sizes_take_units_and_bad_ones_are_pointed_at() {
        let ok = format!("{GOOD}\n[outbox]\nmax_bytes = \"1.5GiB\"\nflush_s = 2\n");
        let loaded = parse(Path::new("vigil.toml"), ok).expect("valid");
        assert_eq!(loaded.config.outbox.max_bytes.0, 3 << 29);
        let plain = format!("{GOOD}\n[outbox]\nmax_bytes = 4194304\n");
        let loaded = parse(Path::new("vigil.toml"), plain).expect("valid");
        assert_eq!(loaded.config.outbox.max_bytes.0, 4 << 20);
        assert_eq!(loaded.config.outbox.flush_s, 5.0, "default");
        let bad = format!("{GOOD}\n[outbox]\nmax_bytes = \"512 parsecs\"\nflush_s = -1\n");
        let p = problems(&bad);
        assert_eq!(p.len(), 1, "{p:#?}");
        assert!(
            p[0].starts_with("vigil.toml:27:13: outbox.max_bytes: unknown unit \"parsecs\""),
            "{}",
            p[0]
        );
        let small = format!("{GOOD}\n[outbox]\nmax_bytes = \"1KiB\"\nflush_s = -1\n");
        let p = problems(&small);
        assert_eq!(p.len(), 2, "{p:#?}");
        assert!(
            p[0].contains("outbox.max_bytes: 1024 bytes is below 1 MiB"),
            "{}",
            p[0]
        );
        assert!(
            p[1].contains("outbox.flush_s: -1 must be 0 or more"),
            "{}",
            p[1]
        );
    }

    #[test]
    fn the_message_limit_takes_units_and_is_refused_outside_what_mqtt_carries() {
        let with = |v: &str| {
            GOOD.replace(
                "port = 1883\n",
                &format!("port = 1883\nmax_message_bytes = {v}\n"),
            )
        };
        let loaded = parse(Path::new("vigil.toml"), with("\"128KB\"")).expect("valid");
        assert_eq!(loaded.config.mqtt.max_message_bytes.0, 128_000);
        let loaded = parse(Path::new("vigil.toml"), GOOD.to_string()).expect("valid");
        assert_eq!(loaded.config.mqtt.max_message_bytes.0, 256 << 10, "default");
        for bad in ["1000", "\"300MiB\""] {
            let p = problems(&with(bad));
            assert_eq!(p.len(), 1, "{p:#?}");
            assert!(
                p[0].starts_with("vigil.toml:9:21: mqtt.max_message_bytes: ")
                    && p[0].contains("outside 16 KiB to 256 MiB"),
                "{}",
                p[0]
            );
        }
    }

    #[test]
    fn an_empty_file_lists_the_missing_sections() {
        let p = problems("");
        assert_eq!(p.len(), 4, "{p:#?}");
        assert!(p.iter().all(|l| l.starts_with("vigil.toml:1:1: ")));
    }

    #[test]
    fn duplicates_are_refused() {
        let cam = GOOD.split("[[cameras]]").nth(1).expect("camera section");
        let src = format!("{GOOD}\n[[cameras]]{cam}");
        let p = problems(&src);
        assert_eq!(p.len(), 1, "{p:#?}");
        assert!(
            p[0].contains("cameras[1].id: camera \"plaza\" is defined twice"),
            "{}",
            p[0]
        );
    }

    #[test]
    fn lines_masks_filters_tracker_and_fire_are_checked_together() {
        let src = format!(
            "{GOOD}{}",
            r#"dwell_s = -1
crowd_min_count = 0
inertia = 0
exit_margin = 0.6

[cameras.zones.filters.person]
min_area = 2.0

[[cameras.lines]]
name = "gate"
a = [0.1, 0.5]
b = [0.1, 0.5]
direction = "sideways"
classes = []

[[cameras.masks]]
polygon = [[0.0, 0.0], [0.1, 0.0]]

[cameras.tracker]
min_hits = 0

[cameras.fire]
window_frames = 4
min_hits = 5
"#
        );
        let p = problems(&src);
        let want = [
            "cameras[0].lines[0].direction: unknown value \"sideways\"",
            "cameras[0].zones[0].dwell_s: -1 must be a positive number of seconds",
            "cameras[0].zones[0].crowd_min_count: must be at least 1",
            "cameras[0].zones[0].inertia: 0 is outside 1 to 30 frames",
            "cameras[0].zones[0].exit_margin: 0.6 is outside 0 to 0.5",
            "cameras[0].zones[0].filters.person.min_area: 2 is outside 0 to 1",
            "cameras[0].lines[0].b: a and b are the same point",
            "cameras[0].lines[0].classes: list at least one class",
            "cameras[0].masks[0].polygon: a polygon needs at least 3 points",
            "cameras[0].tracker.min_hits: 0 is outside 1 to 100",
            "cameras[0].fire.min_hits: 5 must be between 1 and window_frames (4)",
        ];
        for w in want {
            assert!(p.iter().any(|l| l.contains(w)), "missing {w:?} in {p:#?}");
        }
        assert_eq!(p.len(), want.len(), "{p:#?}");
        assert!(p.iter().all(|l| l.starts_with("vigil.toml:")), "{p:#?}");
    }
}
