//! What a configuration reload may change in a running agent, and how (pure). Cameras can be
//! re-pointed (URL, transport, rates: their pipeline is rebuilt) and their rules replaced
//! (zones, lines, masks, filters, model, picture checks: open incidents of that camera are
//! closed first); the other cameras are not touched. Anything else — the device, the broker,
//! models, storage, the outbox, the inference threads, the set of cameras — needs a restart,
//! and such a reload is refused as a whole: nothing is applied.

use crate::config::{Camera, Config};

/// What changes for one camera.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CameraChange {
    /// Index in the configuration.
    pub index: usize,
    /// The pipeline must be rebuilt (URL, transport, latency, frame clock, analysis rate, stall,
    /// enabled).
    pub stream: bool,
    /// The detection side changes (model, zones, lines, masks, filters, tracker, fire, picture
    /// and offline thresholds, kind).
    pub rules: bool,
}

type StreamPart<'a> = (
    &'a str,
    Option<&'a str>,
    crate::config::Transport,
    u32,
    crate::config::FrameClock,
    u64,
    u64,
    bool,
);

fn stream_part(c: &Camera) -> StreamPart<'_> {
    (
        c.url.as_str(),
        c.detect_url.as_deref(),
        c.transport,
        c.latency_ms,
        c.frame_time,
        c.analysis_fps.to_bits(),
        c.stall_s.to_bits(),
        c.enabled,
    )
}

/// The camera changes from `old` to `new`, or why the reload needs a restart instead.
pub fn plan(old: &Config, new: &Config) -> Result<Vec<CameraChange>, String> {
    let mut needs_restart = Vec::new();
    let sections: [(&str, bool); 13] = [
        ("device", old.device == new.device),
        ("mqtt", old.mqtt == new.mqtt),
        ("models", old.models == new.models),
        ("evidence", old.evidence == new.evidence),
        ("storage", old.storage == new.storage),
        ("health", old.health == new.health),
        ("outbox", old.outbox == new.outbox),
        ("diag", old.diag == new.diag),
        ("metrics", old.metrics == new.metrics),
        ("inference", old.inference == new.inference),
        ("commands", old.commands == new.commands),
        ("clips", old.clips == new.clips),
        (
            "the list of cameras (added, removed or reordered)",
            old.cameras
                .iter()
                .map(|c| &c.id)
                .eq(new.cameras.iter().map(|c| &c.id)),
        ),
    ];
    for (name, same) in sections {
        if !same {
            needs_restart.push(name);
        }
    }
    if !needs_restart.is_empty() {
        return Err(format!(
            "these changes need a restart (systemctl restart vigil): {}; nothing was applied",
            needs_restart.join(", ")
        ));
    }
    Ok(old
        .cameras
        .iter()
        .zip(&new.cameras)
        .enumerate()
        .filter(|(_, (a, b))| a != b)
        .map(|(index, (a, b))| {
            let stream = stream_part(a) != stream_part(b);
            let mut b_with_old_stream = b.clone();
            b_with_old_stream.url = a.url.clone();
            // Whether there is a detect_url, and with one the frame clock, are the inference
            // thread's business too: where evidence comes from and how the main stream's
            // times are read.
            if a.detect_url.is_some() == b.detect_url.is_some() {
                b_with_old_stream.detect_url = a.detect_url.clone();
            }
            let stills_clock = a.frame_time != b.frame_time && b.detect_url.is_some();
            b_with_old_stream.transport = a.transport;
            b_with_old_stream.latency_ms = a.latency_ms;
            b_with_old_stream.frame_time = a.frame_time;
            b_with_old_stream.analysis_fps = a.analysis_fps;
            b_with_old_stream.stall_s = a.stall_s;
            b_with_old_stream.enabled = a.enabled;
            CameraChange {
                index,
                stream,
                rules: *a != b_with_old_stream || stills_clock,
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        toml::from_str(TEXT).expect("config")
    }

    const TEXT: &str = r#"
[device]
id = "b"
district = "d"
[mqtt]
host = "h"
[[models]]
name = "m"
card = "c.toml"
[[cameras]]
id = "gate"
url = "rtsp://10.0.0.5/s"
model = "m"
[[cameras]]
id = "yard"
url = "rtsp://10.0.0.6/s"
model = "m"
"#;

    #[test]
    fn an_unchanged_config_changes_nothing() {
        assert_eq!(plan(&config(), &config()), Ok(vec![]));
    }

    #[test]
    fn stream_and_rule_changes_are_told_apart_per_camera() {
        let old = config();
        let mut new = config();
        new.cameras[0].url = "rtsp://10.0.0.9/s".into();
        new.cameras[1].frozen_s = 60.0;
        assert_eq!(
            plan(&old, &new),
            Ok(vec![
                CameraChange {
                    index: 0,
                    stream: true,
                    rules: false
                },
                CameraChange {
                    index: 1,
                    stream: false,
                    rules: true
                },
            ])
        );
        new.cameras[0].offline_s = 5.0;
        assert_eq!(
            plan(&old, &new).map(|c| c[0]),
            Ok(CameraChange {
                index: 0,
                stream: true,
                rules: true
            })
        );
    }

    #[test]
    fn a_new_frame_clock_rebuilds_the_pipeline_only() {
        let old = config();
        let mut new: Config = toml::from_str(&TEXT.replacen(
            "id = \"gate\"",
            "id = \"gate\"\nframe_time = \"arrival\"",
            1,
        ))
        .expect("config with frame_time");
        assert_eq!(
            new.cameras[0].frame_time,
            crate::config::FrameClock::Arrival
        );
        assert_eq!(
            plan(&old, &new),
            Ok(vec![CameraChange {
                index: 0,
                stream: true,
                rules: false
            }])
        );
        new.cameras[0].frame_time = crate::config::FrameClock::Auto;
        assert_eq!(plan(&old, &new), Ok(vec![]));
    }

    #[test]
    fn a_detect_url_added_or_removed_reaches_the_rules_a_new_one_only_the_streams() {
        let old = config();
        let mut new = config();
        new.cameras[0].detect_url = Some("rtsp://10.0.0.9/sub".into());
        let both = CameraChange {
            index: 0,
            stream: true,
            rules: true,
        };
        assert_eq!(plan(&old, &new), Ok(vec![both]), "added");
        assert_eq!(plan(&new, &old), Ok(vec![both]), "removed");
        let mut moved = new.clone();
        moved.cameras[0].detect_url = Some("rtsp://10.0.0.9/sub2".into());
        assert_eq!(
            plan(&new, &moved),
            Ok(vec![CameraChange {
                index: 0,
                stream: true,
                rules: false
            }])
        );
        moved.cameras[0].frame_time = crate::config::FrameClock::Arrival;
        assert_eq!(
            plan(&new, &moved),
            Ok(vec![both]),
            "the clock its main stream is read by"
        );
    }

    #[test]
    fn other_sections_and_new_cameras_need_a_restart() {
        let old = config();
        let mut new = config();
        new.mqtt.port = 8883;
        new.cameras.pop();
        new.inference.threads = 1;
        let e = plan(&old, &new).unwrap_err();
        assert!(e.contains("mqtt") && e.contains("list of cameras"), "{e}");
        assert!(e.contains("inference"), "{e}");
        assert!(e.contains("nothing was applied"), "{e}");
    }
}
