//! Property tests of everything that parses input a careless installer or an attacker controls:
//! the configuration, model cards and labels, the diagnostics protocol and camera URLs. None may
//! panic, whatever the bytes; errors are located; no password survives redaction. (The same
//! parsers are fuzzed by `make fuzz`, which runs longer, on nightly.)

use std::path::Path;

use proptest::prelude::*;
use vigil::config::url;
use vigil::config::{self, ConfigError};

const GOOD: &str = r#"[device]
id = "q1-box-001"
district = "q1"

[mqtt]
host = "127.0.0.1"
port = 1883
max_message_bytes = "128KiB"

[storage]
state_dir = "state"

[[models]]
name = "fire"
builtin = "fire"

[[cameras]]
id = "plaza"
url = "rtsp://admin:s%2Fcret@127.0.0.1:8554/plaza"
kind = "fire"
model = "fire"
analysis_fps = 5
frozen_s = 30

[[cameras.zones]]
name = "lawn"
polygon = [[0.0, 0.55], [1.0, 0.55], [1.0, 1.0], [0.0, 1.0]]
classes = ["fire"]
inertia = 3
"#;

/// Parse, and when refused check that every problem is located in the file.
fn parse_located(src: String) -> Result<(), TestCaseError> {
    match config::parse(Path::new("vigil.toml"), src) {
        Ok(_) => Ok(()),
        Err(ConfigError::Invalid(d)) => {
            for line in d.to_string().lines().filter(|l| l.contains(": ")) {
                if line.starts_with("  ") || line.starts_with(' ') {
                    continue; // a continuation or a source excerpt
                }
                prop_assert!(
                    line.starts_with("vigil.toml:"),
                    "a problem without its place: {line}"
                );
            }
            Ok(())
        }
        Err(_) => Ok(()),
    }
}

/// Values that have broken parsers before: extremes of every kind.
fn hostile_value() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("1e20".to_string()),
        Just("-1e308".to_string()),
        Just("nan".to_string()),
        Just("inf".to_string()),
        Just("18446744073709551615".to_string()),
        Just("-9223372036854775808".to_string()),
        Just("0".to_string()),
        Just("\"\"".to_string()),
        Just("\"\u{0}\"".to_string()),
        Just("[]".to_string()),
        Just("[[]]".to_string()),
        Just("{}".to_string()),
        Just("\"9999999999999999999 GiB\"".to_string()),
        "\"[^\"\\\\]{0,40}\"",
        any::<f64>().prop_map(|f| format!("{f:?}")),
        any::<i64>().prop_map(|i| i.to_string()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn any_text_is_a_config_or_located_problems(src in "\\PC{0,400}") {
        parse_located(src)?;
    }

    #[test]
    fn any_value_in_any_key_of_a_good_config_never_panics(
        line in 0usize..40,
        value in hostile_value(),
    ) {
        let lines: Vec<&str> = GOOD.lines().collect();
        let at = line % lines.len();
        let src: Vec<String> = lines
            .iter()
            .enumerate()
            .map(|(i, l)| match (i == at, l.split_once(" = ")) {
                (true, Some((key, _))) => format!("{key} = {value}"),
                _ => (*l).to_string(),
            })
            .collect();
        parse_located(src.join("\n"))?;
    }

    #[test]
    fn cutting_a_good_config_anywhere_never_panics(cut in 0usize..2000, len in 0usize..40) {
        let cut = cut.min(GOOD.len());
        let end = (cut + len).min(GOOD.len());
        if GOOD.is_char_boundary(cut) && GOOD.is_char_boundary(end) {
            parse_located(format!("{}{}", &GOOD[..cut], &GOOD[end..]))?;
        }
    }

    #[test]
    fn any_card_text_is_a_card_or_an_error(src in "\\PC{0,300}") {
        let dir = std::env::temp_dir().join(format!("vigil-prop-card-{}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let path = dir.join("model.toml");
        std::fs::write(&path, &src).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let _ = vigil::detect::card::load(&path);
    }

    #[test]
    fn any_labels_text_parses_or_is_refused(src in "\\PC{0,300}") {
        let _ = vigil::detect::Labels::parse(&src);
    }

    #[test]
    fn any_diagnostics_request_line_gets_an_answer(line in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = vigil::diag::protocol::parse(&line);
    }

    #[test]
    fn json_shaped_diagnostics_requests_never_panic(
        cmd in "[a-z_]{0,12}",
        camera in "\\PC{0,20}",
        n in any::<i64>(),
    ) {
        let line = serde_json::json!({"cmd": cmd, "camera": camera, "rows": n, "type": camera}).to_string();
        let _ = vigil::diag::protocol::parse(line.as_bytes());
    }

    #[test]
    fn any_url_is_checked_without_panic_and_its_errors_quote_no_password(
        user in "[a-z]{1,8}",
        password in "Zq[ -~\u{e4}\u{20ac}/@:%?#]{4,20}",
        host in "[a-z0-9.]{1,20}(:[0-9]{1,5})?",
        path in "(/[ -~]{0,20})?",
    ) {
        let raw = format!("rtsp://{user}:{password}@{host}{path}");
        for shown in [
            url::redact(&raw),
            url::scrub(&format!("could not open {raw}: 401 for {password}"), &raw),
            url::check(&raw).err().map(|e| e.to_string()).unwrap_or_default(),
        ] {
            prop_assert!(!shown.contains(&password), "{password:?} in {shown:?}");
        }
    }

    #[test]
    fn any_text_as_a_url_never_panics(raw in "\\PC{0,120}") {
        let _ = url::check(&raw);
        let _ = url::scrub(&raw, &raw);
        let _ = url::host_and_path(&raw);
    }
}
