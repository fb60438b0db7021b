//! Model cards: the `model.toml` beside each ONNX file that says what the model is, where it
//! came from, and how to feed it and read it. Nothing in vigil is written for one model file;
//! the card is the contract. Validated like the config: every problem at once, located.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::config::{ConfigError, Diagnostics};
use crate::spanned;

/// A model card as written.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Card {
    /// Model name, reported in incidents. Required.
    pub name: String,
    /// Model version, reported in incidents. Required.
    pub version: String,
    /// SPDX licence id of the weights. Required.
    pub licence: String,
    /// Where the weights come from and how they were converted. Required.
    pub provenance: String,
    /// ONNX file, relative to the card. Required.
    pub file: PathBuf,
    /// Lower-case hex sha256 of the ONNX file, checked at load. Required.
    pub sha256: String,
    /// Labels file, relative to the card: one label per line, either `name` (the line number is
    /// the class id, from 0) or `id  name`. Required.
    pub labels: PathBuf,
    /// Default minimum score of a detection. Default 0.5.
    pub score_threshold: f32,
    /// How frames become the input tensor.
    pub input: InputSpec,
    /// How the output tensors become detections.
    pub output: OutputSpec,
    /// Per-class minimum scores overriding `score_threshold`, by label.
    pub thresholds: std::collections::BTreeMap<String, f32>,
    /// Incident type raised by each label: `"security"` (intrusion and other zone rules),
    /// `"fire"` or `"smoke"`. Labels not listed are `"security"`.
    pub incidents: std::collections::BTreeMap<String, IncidentClass>,
}

/// What kind of incident a class raises.
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum IncidentClass {
    /// Zone rules (intrusion, …).
    #[default]
    Security,
    /// Fire.
    Fire,
    /// Smoke.
    Smoke,
}

/// Memory layout of the image tensor.
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Layout {
    /// `[1, height, width, 3]`.
    #[default]
    Nhwc,
    /// `[1, 3, height, width]`.
    Nchw,
}

/// Element type of the image tensor.
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum DType {
    /// 0..255 bytes, no normalisation.
    #[default]
    U8,
    /// Floats: `(pixel * scale - mean) / std` per channel.
    F32,
}

/// Channel order.
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ColorOrder {
    /// Red, green, blue.
    #[default]
    Rgb,
    /// Blue, green, red.
    Bgr,
}

/// How a frame is fitted to the input size.
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ResizeMode {
    /// Scale each axis independently (bilinear, half-pixel centres).
    #[default]
    Stretch,
    /// Scale both axes by the same factor to fit, centre, and fill the rest with `pad`.
    Letterbox,
}

/// The model's image input.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct InputSpec {
    /// Input tensor name (documentation and a cross-check with the model). Required.
    pub name: String,
    /// Input width in pixels. Required.
    pub width: u32,
    /// Input height in pixels. Required.
    pub height: u32,
    /// `"nhwc"` (default) or `"nchw"`.
    pub layout: Layout,
    /// `"u8"` (default) or `"f32"`.
    pub dtype: DType,
    /// `"rgb"` (default) or `"bgr"`.
    pub color: ColorOrder,
    /// `"stretch"` (default) or `"letterbox"`.
    pub resize: ResizeMode,
    /// Letterbox only: value of the padding pixels (all channels, before normalisation).
    /// Default 114.
    pub pad: u8,
    /// f32 only: pixel values are multiplied by this first. Default 1.
    pub scale: f32,
    /// f32 only: per-channel mean subtracted after scaling, in the tensor's channel order.
    /// Default [0, 0, 0].
    pub mean: [f32; 3],
    /// f32 only: per-channel divisor applied last. Default [1, 1, 1].
    pub std: [f32; 3],
}

impl Default for InputSpec {
    fn default() -> Self {
        InputSpec {
            name: String::new(),
            width: 0,
            height: 0,
            layout: Layout::Nhwc,
            dtype: DType::U8,
            color: ColorOrder::Rgb,
            resize: ResizeMode::Stretch,
            pad: 114,
            scale: 1.0,
            mean: [0.0; 3],
            std: [1.0; 3],
        }
    }
}

/// Output decoder families (see `super::decode::Decoder` for the exact layouts).
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum DecoderKind {
    /// Decoded boxes `[1, N, 4]` as `[ymin, xmin, ymax, xmax]` (0..1) plus per-class scores
    /// `[1, C, N]` after sigmoid, without NMS (the shipped SSD MobileNet v2 cut before its NMS).
    #[default]
    Ssd,
    /// NanoDet: per-stride score maps and distribution-focal box maps.
    Nanodet,
    /// Ultralytics YOLOv8/YOLO11 `[1, 4 + C, N]`.
    Yolov8,
    /// YOLOv5 `[1, N, 5 + C]` with objectness.
    Yolov5,
    /// YOLOX `[1, N, 5 + C]`, grid and stride decoding with objectness.
    Yolox,
}

/// How the outputs become detections.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct OutputSpec {
    /// Decoder family. Default `"ssd"`.
    pub decoder: DecoderKind,
    /// IoU above which a lower-scored box of the same class is suppressed. Default 0.5.
    pub nms_iou: f32,
    /// Suppress across classes instead of per class. Default false.
    pub class_agnostic: bool,
    /// At most this many detections per frame, best first. Default 100.
    pub max_detections: usize,
    /// nanodet and yolox: strides of the output levels, in output order. Default [8, 16, 32].
    pub strides: Vec<u32>,
    /// nanodet: highest distance bin (bins per side = reg_max + 1). Default 7.
    pub reg_max: u32,
}

impl Default for OutputSpec {
    fn default() -> Self {
        OutputSpec {
            decoder: DecoderKind::Ssd,
            nms_iou: 0.5,
            class_agnostic: false,
            max_detections: 100,
            strides: vec![8, 16, 32],
            reg_max: 7,
        }
    }
}

/// Class names by id.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Labels {
    names: Vec<Option<String>>,
}

impl Labels {
    /// Parse a labels file: `name` per line, or `id<space>name` lines (ids may skip numbers).
    pub fn parse(text: &str) -> Result<Labels, String> {
        let mut names: Vec<Option<String>> = Vec::new();
        for (lineno, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            let (id, name) = match line.split_once(char::is_whitespace) {
                Some((first, rest)) if first.parse::<usize>().is_ok() => {
                    (first.parse::<usize>().unwrap_or(0), rest.trim())
                }
                _ => (names.len(), line),
            };
            if id > 100_000 {
                return Err(format!(
                    "line {}: class id {id} is implausibly large",
                    lineno + 1
                ));
            }
            if names.len() <= id {
                names.resize(id + 1, None);
            }
            if names[id].is_some() {
                return Err(format!("line {}: class id {id} appears twice", lineno + 1));
            }
            names[id] = Some(name.to_string());
        }
        if names.iter().all(Option::is_none) {
            return Err("no labels".into());
        }
        Ok(Labels { names })
    }

    /// Name of class `id`, if the file names it.
    pub fn name(&self, id: usize) -> Option<&str> {
        self.names.get(id).and_then(|n| n.as_deref())
    }

    /// Id of the class named `name`.
    pub fn id(&self, name: &str) -> Option<usize> {
        self.names.iter().position(|n| n.as_deref() == Some(name))
    }

    /// Number of class slots (highest id + 1).
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// Whether there are no labels (never true for a parsed file).
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// The named classes, in id order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.names.iter().filter_map(|n| n.as_deref())
    }
}

/// A card read and checked, with its files resolved (the ONNX file is not read yet).
#[derive(Debug, Clone)]
pub struct LoadedCard {
    /// The card.
    pub card: Card,
    /// The card file.
    pub path: PathBuf,
    /// The ONNX file.
    pub model_path: PathBuf,
    /// Parsed labels.
    pub labels: Labels,
    /// Set for a built-in detector's card (made in memory; no files, no checksum).
    pub builtin: Option<crate::config::Builtin>,
}

/// Read and validate a card and its labels file. Every problem of the card is reported at
/// once, located in the card file.
pub fn load(path: &Path) -> Result<LoadedCard, ConfigError> {
    let source = std::fs::read_to_string(path).map_err(|e| ConfigError::Read {
        path: path.to_path_buf(),
        source: e,
    })?;
    let invalid = |problems: Vec<spanned::Problem>| {
        ConfigError::Invalid(Diagnostics::from_problems(path, &source, problems))
    };
    let parsed = spanned::from_str::<Card>(&source);
    let spans = parsed.spans;
    let Some(card) = parsed.value else {
        return Err(invalid(parsed.problems));
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut problems = Vec::new();
    let mut problem = |p: &str, message: String| {
        problems.push(spanned::Problem {
            span: spans.nearest(p),
            path: p.to_string(),
            message,
        })
    };
    for key in [
        "name",
        "version",
        "licence",
        "provenance",
        "file",
        "sha256",
        "labels",
        "input",
        "input.name",
        "input.width",
        "input.height",
    ] {
        if !spans.contains(key) {
            problem(
                key,
                format!(
                    "missing required field \"{}\"",
                    key.rsplit('.').next().unwrap_or(key)
                ),
            );
        }
    }
    if spans.contains("sha256")
        && !(card.sha256.len() == 64
            && card
                .sha256
                .chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()))
    {
        problem("sha256", "must be 64 lower-case hex digits".into());
    }
    if !(card.score_threshold > 0.0 && card.score_threshold < 1.0) {
        problem(
            "score_threshold",
            format!("{} is outside (0, 1)", card.score_threshold),
        );
    }
    for (key, v) in [
        ("input.width", card.input.width),
        ("input.height", card.input.height),
    ] {
        if spans.contains(key) && !(8..=4096).contains(&v) {
            problem(key, format!("{v} is outside 8 to 4096 pixels"));
        }
    }
    if card.input.std.iter().any(|s| *s == 0.0 || !s.is_finite()) {
        problem(
            "input.std",
            "every std value must be a non-zero number".into(),
        );
    }
    if !(card.output.nms_iou > 0.0 && card.output.nms_iou <= 1.0) {
        problem(
            "output.nms_iou",
            format!("{} is outside (0, 1]", card.output.nms_iou),
        );
    }
    if card.output.max_detections == 0 || card.output.max_detections > 1000 {
        problem("output.max_detections", "must be between 1 and 1000".into());
    }
    let model_path = dir.join(&card.file);
    if spans.contains("file") && !model_path.is_file() {
        problem("file", format!("{} does not exist", model_path.display()));
    }
    let mut labels = Labels::default();
    if spans.contains("labels") {
        let labels_path = dir.join(&card.labels);
        match std::fs::read_to_string(&labels_path) {
            Ok(text) => match Labels::parse(&text) {
                Ok(l) => labels = l,
                Err(e) => problem("labels", format!("{}: {e}", labels_path.display())),
            },
            Err(e) => problem(
                "labels",
                format!("cannot read {}: {e}", labels_path.display()),
            ),
        }
    }
    if !card.output.strides.is_empty() && card.output.strides.iter().any(|s| *s == 0 || *s > 512) {
        problem(
            "output.strides",
            "every stride must be between 1 and 512".into(),
        );
    }
    if card.output.reg_max == 0 || card.output.reg_max > 64 {
        problem(
            "output.reg_max",
            format!("{} is outside 1 to 64", card.output.reg_max),
        );
    }
    if !labels.is_empty() {
        for (key, table) in [
            ("thresholds", card.thresholds.keys().collect::<Vec<_>>()),
            ("incidents", card.incidents.keys().collect()),
        ] {
            for label in table {
                if labels.id(label).is_none() {
                    problem(
                        &format!("{key}.{label}"),
                        format!("\"{label}\" is not in the labels file"),
                    );
                }
            }
        }
    }
    for (label, t) in &card.thresholds {
        if !(*t > 0.0 && *t < 1.0) {
            problem(
                &format!("thresholds.{label}"),
                format!("{t} is outside (0, 1)"),
            );
        }
    }
    let problems = spanned::merge(parsed.problems, problems);
    if !problems.is_empty() {
        return Err(invalid(problems));
    }
    Ok(LoadedCard {
        card,
        path: path.to_path_buf(),
        model_path,
        labels,
        builtin: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_with_and_without_ids() {
        let l = Labels::parse("0  person\n1  bicycle\n\n3  motorcycle\n").expect("labels");
        assert_eq!(l.name(0), Some("person"));
        assert_eq!(l.name(2), None);
        assert_eq!(l.id("motorcycle"), Some(3));
        assert_eq!(l.len(), 4);
        let l = Labels::parse("person\nbicycle\ntraffic light\n").expect("labels");
        assert_eq!(l.name(2), Some("traffic light"));
        assert!(Labels::parse("0 a\n0 b\n").unwrap_err().contains("twice"));
        assert!(Labels::parse("\n\n").is_err());
    }

    #[test]
    fn the_shipped_card_loads() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../models/ssd_mobilenet_v2_coco/model.toml");
        let card = load(&path).expect("shipped card is valid");
        assert_eq!(card.labels.name(0), Some("person"));
        assert_eq!(card.card.input.width, 300);
    }

    #[test]
    fn card_problems_are_all_reported() {
        let dir = std::env::temp_dir().join(format!("vigil-card-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("tmp");
        let path = dir.join("model.toml");
        std::fs::write(
            &path,
            "name = \"m\"\nversion = 1\nlicence = \"MIT\"\nprovenance = \"x\"\nfile = \"absent.onnx\"\nsha256 = \"ABC\"\nlabels = \"absent.txt\"\n[input]\nname = \"i\"\nwidth = 300\nheight = 300\ndtype = \"f16\"\n",
        )
        .expect("write");
        let err = load(&path).expect_err("invalid");
        let text = err.to_string();
        assert!(
            text.contains("model.toml:2:11: version: expected a string, found an integer"),
            "{text}"
        );
        assert!(
            text.contains("input.dtype: unknown value \"f16\""),
            "{text}"
        );
        std::fs::write(
            &path,
            "name = \"m\"\nversion = \"1\"\nlicence = \"MIT\"\nprovenance = \"x\"\nfile = \"absent.onnx\"\nsha256 = \"ABC\"\nlabels = \"absent.txt\"\n[input]\nname = \"i\"\nwidth = 3\n",
        )
        .expect("write");
        let text = load(&path).expect_err("invalid").to_string();
        for needle in [
            "file: ",
            "does not exist",
            "sha256: must be 64 lower-case hex digits",
            "labels: cannot read",
            "input.width: 3 is outside",
            "input.height: missing required field",
        ] {
            assert!(text.contains(needle), "{needle:?} not in {text}");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
