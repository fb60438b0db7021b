//! The configuration's values that the stages also use, so that they import them from here
//! and `config` imports no stage: the `[evidence]` settings, incident severities, the
//! directions a line counts, per-class object filters and the longest fire confirmation window.
//! Their behaviour stays with the stage (`ObjectFilter::passes` is in `rules::filter`).

use serde::{Deserialize, Serialize};

/// Evidence settings (`[evidence]` in the config).
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct EvidenceSettings {
    /// Frames wider than this are scaled down (aspect kept). Default 1280, at least 160.
    pub max_width: u32,
    /// JPEG quality 1–100. Default 80.
    pub quality: u8,
    /// Largest JPEG in bytes; above it the quality, then the size, is lowered. Default 512 KiB,
    /// at least 16 KiB.
    pub max_bytes: usize,
    /// Also publish an evidence image with every `update` (not only `open`). Default false.
    pub on_update: bool,
}

impl Default for EvidenceSettings {
    fn default() -> Self {
        EvidenceSettings {
            max_width: 1280,
            quality: 80,
            max_bytes: 512 * 1024,
            on_update: false,
        }
    }
}

/// How urgent an incident is.
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Fire and smoke.
    Critical,
    /// Intrusion, crossings into restricted areas.
    #[default]
    Major,
    /// Loitering, crowding, ordinary crossings.
    Minor,
    /// For the record.
    Info,
}

impl Severity {
    /// Name used in payloads.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Critical => "critical",
            Severity::Major => "major",
            Severity::Minor => "minor",
            Severity::Info => "info",
        }
    }
}

/// Which crossings count. Side `a` is on the left when walking from point `a` to point `b` in
/// image coordinates (for a line drawn left to right: above it).
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// From side a to side b.
    AToB,
    /// From side b to side a.
    BToA,
    /// Either way.
    #[default]
    Both,
}

/// Limits on one class's detections. Areas are fractions of the frame area; ratios are
/// width / height in pixels.
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ObjectFilter {
    /// Least score.
    pub min_score: Option<f32>,
    /// Least box area, fraction of the frame (0..1).
    pub min_area: Option<f64>,
    /// Largest box area, fraction of the frame (0..1).
    pub max_area: Option<f64>,
    /// Least width / height.
    pub min_ratio: Option<f64>,
    /// Largest width / height.
    pub max_ratio: Option<f64>,
}

/// Most frames a confirmation window may span.
pub const MAX_WINDOW_FRAMES: u32 = 64;
