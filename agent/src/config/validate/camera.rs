//! The checks of each `[[cameras]]` entry: its id, streams, model and rates, then its zones,
//! lines, masks, object filters, tracker and fire settings, each located by path.

use std::collections::HashSet;

use super::Checker;
use crate::config::shared::MAX_WINDOW_FRAMES;
use crate::config::{Camera, Config};
use crate::geometry;

/// Every camera's problems; `model_names` are the models the configuration defines.
pub(super) fn cameras(config: &Config, c: &mut Checker<'_>, model_names: &HashSet<&str>) {
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
        basics(&p, cam, c, (config, model_names));
        zones(&p, cam, c);
        lines(&p, cam, c);
        masks(&p, cam, c);
        c.filters(&format!("{p}.filters"), &cam.filters);
        tracker(&p, cam, c);
        fire(&p, cam, c);
    }
}

/// Its streams, model, analysis rate and durations.
fn basics(
    p: &str,
    cam: &Camera,
    c: &mut Checker<'_>,
    (config, model_names): (&Config, &HashSet<&str>),
) {
    let spans = c.spans;
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
}

/// Its zones: names (none twice), polygons, rules and filters.
fn zones(p: &str, cam: &Camera, c: &mut Checker<'_>) {
    let spans = c.spans;
    let mut zone_names = HashSet::new();
    for (j, z) in cam.zones.iter().enumerate() {
        let zp = format!("{p}.zones[{j}]");
        c.unique_name(&zp, "zone", &z.name, &mut zone_names);
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
}

/// Its lines: names (none twice), ends, rules.
fn lines(p: &str, cam: &Camera, c: &mut Checker<'_>) {
    let spans = c.spans;
    let mut line_names = HashSet::new();
    for (j, l) in cam.lines.iter().enumerate() {
        let lp = format!("{p}.lines[{j}]");
        c.unique_name(&lp, "line", &l.name, &mut line_names);
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
}

/// Its masks' polygons.
fn masks(p: &str, cam: &Camera, c: &mut Checker<'_>) {
    let spans = c.spans;
    for (j, m) in cam.masks.iter().enumerate() {
        let mp = format!("{p}.masks[{j}].polygon");
        if spans.contains(&mp)
            && let Err(e) = geometry::check_polygon(&m.polygon)
        {
            c.err(&mp, e);
        }
    }
}

/// Its tracker's settings.
fn tracker(p: &str, cam: &Camera, c: &mut Checker<'_>) {
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
}

/// Its fire and smoke confirmation settings.
fn fire(p: &str, cam: &Camera, c: &mut Checker<'_>) {
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
