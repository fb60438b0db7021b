//! Building the detectors a plan's `[[models]]` describe: each card on its engine, the built-in
//! fire detector, and the built-in detector fused with another entry's model (`fuse_with`),
//! which is built from a fork of that model (tract shares its optimised plan).

use std::collections::HashMap;
use std::time::Instant;

use super::{Plan, StartError};
use crate::config::ModelRef;
use crate::detect::{self, Detector, fusion::Fused};

impl Plan {
    /// The detectors of the models `wanted` says yes to, by name, with the models they fuse
    /// with: plain models first, then the fused ones from forks of them. A model that cannot be
    /// built refuses the start, naming the model.
    pub fn detectors(
        &self,
        wanted: impl Fn(&str) -> bool,
    ) -> Result<HashMap<String, Box<dyn Detector>>, StartError> {
        let models = &self.loaded.config.models;
        let needed = |m: &ModelRef| {
            wanted(&m.name)
                || models
                    .iter()
                    .any(|f| wanted(&f.name) && f.fuse_with.as_ref() == Some(&m.name))
        };
        let mut out: HashMap<String, Box<dyn Detector>> = HashMap::new();
        for m in models.iter().filter(|m| m.fuse_with.is_none() && needed(m)) {
            let started = Instant::now();
            let det = self.build_plain(m)?;
            tracing::info!(model = %m.name, engine = det.engine(), load_ms = started.elapsed().as_millis() as u64, "model loaded");
            out.insert(m.name.clone(), det);
        }
        for m in models.iter().filter(|m| needed(m)) {
            let Some(partner) = &m.fuse_with else {
                continue;
            };
            let failed = |reason: String| StartError::Model {
                name: m.name.clone(),
                source: detect::DetectError::Backend(reason),
            };
            let (Some(model), Some(card)) = (out.get(partner), self.cards.get(partner)) else {
                return Err(failed(format!(
                    "the model it fuses with, \"{partner}\", is not loaded"
                )));
            };
            let fork = (model.forker())().map_err(|e| StartError::Model {
                name: partner.clone(),
                source: e,
            })?;
            let fused = Fused::new(fork, card, m.fusion).map_err(failed)?;
            tracing::info!(model = %m.name, with = %partner, fusion = m.fusion.as_str(), "built-in fire detector fused with a model");
            out.insert(m.name.clone(), Box::new(fused));
        }
        Ok(out)
    }

    fn build_plain(&self, m: &ModelRef) -> Result<Box<dyn Detector>, StartError> {
        let card = self
            .cards
            .get(&m.name)
            .cloned()
            .ok_or_else(|| StartError::Runtime(format!("no card for {}", m.name)))?;
        let opts = detect::EngineOptions {
            backend: m.backend,
            threads: m.threads,
            ort_library: m.ort_library.as_ref().map(|p| self.loaded.resolve(p)),
        };
        detect::build(card, &opts).map_err(|e| StartError::Model {
            name: m.name.clone(),
            source: e,
        })
    }
}
