//! The `[[models]]` entries: which card or built-in detector, the engine that runs it, its
//! threads, and how the built-in fire detector and a fire model are fused.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Which inference engine runs a model.
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// The default: ONNX Runtime when this vigil has it (cargo feature `ort`) and its library
    /// (`ort_library`, else `ORT_DYLIB_PATH`, else the `vigil-onnxruntime` package's) loads and
    /// runs the model; otherwise tract, saying why at start.
    #[default]
    Auto,
    /// tract, pure Rust; what runs on armhf and under qemu.
    Tract,
    /// ONNX Runtime, loaded from `libonnxruntime.so` (needs the `ort` cargo feature); a start
    /// without it is refused.
    Ort,
}

impl Backend {
    /// Its name in the configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Auto => "auto",
            Backend::Tract => "tract",
            Backend::Ort => "ort",
        }
    }
}

/// A model the cameras can refer to by name.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ModelRef {
    /// Name the cameras use. Required, unique.
    pub name: String,
    /// Path of the model card (`model.toml`), relative to the config file's folder. Required
    /// unless `builtin` is set.
    pub card: PathBuf,
    /// A detector built into vigil instead of a model file: `"fire"`, the video fire and smoke
    /// detector (docs/fire.md). Exclusive with `card`.
    pub builtin: Option<Builtin>,
    /// With `builtin = "fire"`: the name of another `[[models]]` entry, an ONNX fire/smoke
    /// model, whose boxes are fused with the built-in detector's (docs/fire.md).
    pub fuse_with: Option<String>,
    /// How a fused model's boxes combine with the built-in detector's: `"agree"` (default) or
    /// `"either"`.
    pub fusion: Fusion,
    /// Inference engine: `"auto"` (default), `"tract"` or `"ort"`.
    pub backend: Backend,
    /// Intra-op threads of the inference engine (ort). Default 1.
    pub threads: usize,
    /// `ort` and `auto`: path of `libonnxruntime.so`; default: the `ORT_DYLIB_PATH` environment
    /// variable, else `/usr/lib/vigil/onnxruntime/libonnxruntime.so` (the `vigil-onnxruntime`
    /// package) when installed.
    pub ort_library: Option<PathBuf>,
}

impl Default for ModelRef {
    fn default() -> Self {
        ModelRef {
            name: String::new(),
            card: PathBuf::new(),
            builtin: None,
            fuse_with: None,
            fusion: Fusion::default(),
            backend: Backend::Tract,
            threads: 1,
            ort_library: None,
        }
    }
}

/// A detector built into vigil.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Builtin {
    /// Video fire and smoke detection from colour, flicker, background and detail cues
    /// (labels `fire` and `smoke`); needs no model file.
    Fire,
}

/// How the built-in fire detector and a fused model combine (`fusion` in `[[models]]`).
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Fusion {
    /// A box counts only where both saw the same kind (the model within a few frames); the
    /// model runs only on frames where the built-in detector sees something.
    #[default]
    Agree,
    /// Every box of either counts; both run on every frame.
    Either,
}

impl Fusion {
    /// The name in the config file.
    pub fn as_str(self) -> &'static str {
        match self {
            Fusion::Agree => "agree",
            Fusion::Either => "either",
        }
    }
}
