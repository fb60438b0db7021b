//! The configuration checks, on documents with every kind of problem.

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
        p[0].starts_with("vigil.toml:2:1: device.district: missing required field \"district\""),
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
fn zone_and_line_names_are_set_and_unique_per_camera() {
    let src = format!(
        "{GOOD}{}",
        r#"
[[cameras.zones]]
name = "lawn"
polygon = [[0.0, 0.0], [0.5, 0.0], [0.5, 0.5]]
classes = ["person"]

[[cameras.zones]]
name = " "
polygon = [[0.0, 0.0], [0.5, 0.0], [0.5, 0.5]]
classes = ["person"]

[[cameras.lines]]
name = "gate"
a = [0.1, 0.5]
b = [0.9, 0.5]
classes = ["person"]

[[cameras.lines]]
name = "gate"
a = [0.1, 0.6]
b = [0.9, 0.6]
classes = ["person"]

[[cameras.lines]]
name = ""
a = [0.1, 0.7]
b = [0.9, 0.7]
classes = ["person"]
"#
    );
    let p = problems(&src);
    let has = |what: &str| p.iter().any(|l| l.contains(what));
    assert!(
        has("cameras[0].zones[1].name: zone \"lawn\" is defined twice on this camera"),
        "{p:#?}"
    );
    assert!(has("cameras[0].zones[2].name: must not be empty"), "{p:#?}");
    assert!(
        has("cameras[0].lines[1].name: line \"gate\" is defined twice on this camera"),
        "{p:#?}"
    );
    assert!(has("cameras[0].lines[2].name: must not be empty"), "{p:#?}");
    assert_eq!(p.len(), 4, "{p:#?}");
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
