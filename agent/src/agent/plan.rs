//! What a run is made of before it starts: the [`Plan`] (a validated config with its model
//! cards read and its rules resolved), why a start can fail ([`StartError`]), each camera's
//! work on the inference threads ([`CameraWork`]) and what a finished run reports.

use std::collections::HashMap;

use crate::config::{ConfigError, Diagnostics, Loaded};
use crate::detect::{self, DetectError, LoadedCard};
use crate::ingest::IngestError;
use crate::ingest::picture::{Gray, PictureSettings, PictureWatch};
use crate::publish::{Identity, SessionStats};
use crate::rules::{CameraRules, RuleSet};

/// Why the agent cannot start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The config or a card it names is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A model cannot be loaded.
    #[error("model \"{name}\": {source}")]
    Model {
        /// Model name in the config.
        name: String,
        /// What is wrong.
        source: DetectError,
    },
    /// GStreamer is not usable.
    #[error(transparent)]
    Ingest(#[from] IngestError),
    /// The broker's TLS or credential files are unusable or exposed.
    #[error("{0}")]
    Security(String),
    /// A thread or the runtime could not start.
    #[error("cannot start: {0}")]
    Runtime(String),
}

/// A config whose model cards were read and whose rules were resolved against the labels.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The validated config.
    pub loaded: Loaded,
    /// Card of each model, by model name.
    pub cards: HashMap<String, LoadedCard>,
    /// Rules per camera (config order).
    pub rules: Vec<RuleSet>,
}

impl Plan {
    /// Read the model cards (checking the model files' checksums) and resolve every zone's
    /// classes. All problems are reported together, located in the config.
    pub fn build(loaded: Loaded) -> Result<Plan, StartError> {
        let mut cards = HashMap::new();
        for m in &loaded.config.models {
            let card = match m.builtin {
                Some(crate::config::Builtin::Fire) => detect::firecue::card(),
                None => detect::card::load(&loaded.resolve(&m.card))?,
            };
            detect::verify_checksum(&card).map_err(|e| StartError::Model {
                name: m.name.clone(),
                source: e,
            })?;
            cards.insert(m.name.clone(), card);
        }
        let mut problems = Vec::new();
        for (i, m) in loaded.config.models.iter().enumerate() {
            let Some(card) = m.fuse_with.as_ref().and_then(|p| cards.get(p)) else {
                continue;
            };
            if detect::fusion::kinds_of(card).iter().all(Option::is_none) {
                problems.push(loaded.diagnostic(
                    &format!("models[{i}].fuse_with"),
                    format!(
                        "model \"{}\" ({}) maps no class to fire or smoke (see [incidents] in its card); the built-in fire detector fuses only with a fire/smoke model",
                        card.card.name, card.path.display()
                    ),
                ));
            }
        }
        let mut rules = Vec::new();
        for (ci, cam) in loaded.config.cameras.iter().enumerate() {
            let Some(card) = cards.get(&cam.model) else {
                return Err(StartError::Runtime(format!(
                    "camera {} names unknown model {}",
                    cam.id, cam.model
                )));
            };
            match crate::rules::resolve::resolve(cam, ci, card) {
                Ok(set) => rules.push(set),
                Err(found) => problems.extend(
                    found
                        .into_iter()
                        .map(|(path, message)| loaded.diagnostic(&path, message)),
                ),
            }
        }
        if !problems.is_empty() {
            return Err(StartError::Config(ConfigError::Invalid(Diagnostics(
                problems,
            ))));
        }
        Ok(Plan {
            loaded,
            cards,
            rules,
        })
    }

    /// The device identity.
    pub fn identity(&self) -> Identity {
        Identity {
            device: self.loaded.config.device.id.clone(),
            district: self.loaded.config.device.district.clone(),
        }
    }
}

/// What a finished run reports.
#[derive(Debug, Clone, Default)]
pub struct RunReport {
    /// Session counters.
    pub session: SessionStats,
    /// Frames analysed per camera id.
    pub analysed: Vec<(String, u64)>,
}

/// Per-camera state owned by the inference thread.
pub struct CameraWork {
    pub(super) id: String,
    pub(super) model: String,
    pub(super) rules: CameraRules,
    pub(super) picture: PictureWatch,
    pub(super) gray: Gray,
    pub(super) restarts: u64,
    pub(super) timers: crate::prometheus::CameraTimers,
    /// What the camera's detector remembers of it between frames (see
    /// [`Detector::swap_memory`]).
    pub(super) memory: detect::firecue::CameraMemory,
    /// The [`crate::rules::standdown::Board`] version its rules last took their disarms from.
    pub(super) standing_seen: u64,
    /// Evidence comes from the main stream (the camera analyses a `detect_url`), its units'
    /// times read by this clock.
    pub(super) main_stream: Option<crate::config::FrameClock>,
}

impl CameraWork {
    /// On the built-in fire detector: which of its cues the stream allows (`"colour"` or
    /// `"greyscale"`), once a frame was analysed; `None` for other models.
    pub(super) fn fire_cues(&self) -> Option<&'static str> {
        let scene = detect::fusion::scene_of(&self.memory)?;
        Some(if scene.greyscale() {
            "greyscale"
        } else {
            "colour"
        })
    }

    /// Take what the centre stands down on this camera from `board`, when it changed since
    /// last time (one atomic load otherwise).
    pub(super) fn refresh_standing(&mut self, board: &crate::rules::standdown::Board) {
        if let Some(disarms) = board.changed(&self.id, &mut self.standing_seen) {
            self.rules.stand_down(disarms);
        }
    }

    pub(super) fn new(c: &crate::config::Camera, r: &RuleSet) -> Self {
        CameraWork {
            main_stream: c.detect_url.as_ref().map(|_| c.frame_time),
            id: c.id.clone(),
            model: c.model.clone(),
            rules: CameraRules::new(r.clone()),
            picture: PictureWatch::new(PictureSettings {
                frozen: crate::config::duration(c.frozen_s),
                tamper: crate::config::duration(c.tamper_s),
            }),
            gray: Gray::default(),
            restarts: 0,
            timers: crate::prometheus::CameraTimers::new(&c.id),
            memory: None,
            standing_seen: 0,
        }
    }
}
