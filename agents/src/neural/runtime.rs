//! The seam between the controllers and libtorch, for fast start.
//!
//! A binary links libtorch (and pays ~0.2 s and ~110 MB to load it at every start) only if code that calls it
//! is reachable from its `main`. The controller and predictor configurations reach the neural models only
//! through the function pointers of a [`NeuralRuntime`], which a binary installs with [`install`] — the
//! `prescale-torch` binary installs [`with_torch`]; the `prescale` binary installs nothing, so libtorch is not
//! among its libraries. When code of a binary without the runtime needs a model, [`runtime`] calls the
//! handler set by [`on_missing`] (the `prescale` binary's re-runs the same command line in `prescale-torch`,
//! before anything is written), or panics naming the cause.

use std::path::Path;
use std::sync::OnceLock;

use prescale_sim::controller::Controller;

use super::expert::PolicySetting;
use super::forecaster::{FineTuneConfig, RefitConfig};
use super::model::ModelFacts;
use super::policy::BcConfig;
use crate::predictor::Predictor;

/// The operations on neural models that the torch-free parts of the crate need.
#[derive(Clone, Copy)]
pub struct NeuralRuntime {
    /// Loads a model directory with every check ([`super::model::Model::load`]) and returns its facts.
    pub load_facts: fn(&Path) -> Result<ModelFacts, String>,
    /// A BC policy as `config` says (its model directory, `dir`, already checked) acting in `setting`.
    pub bc_policy: fn(&Path, PolicySetting, &BcConfig) -> Box<dyn Controller>,
    /// A neural forecaster from a model directory (already checked).
    pub forecaster: ForecasterBuilder,
    /// Per-thread libtorch set-up ([`super::init_torch`]).
    pub init_thread: fn(),
}

/// Builds a neural forecaster: model directory, start instant (Unix seconds), step, online fine-tuning,
/// scheduled refits.
pub type ForecasterBuilder = fn(&Path, f64, f64, Option<FineTuneConfig>, Option<RefitConfig>) -> Box<dyn Predictor>;

static RUNTIME: OnceLock<NeuralRuntime> = OnceLock::new();
static ON_MISSING: OnceLock<fn(&str) -> !> = OnceLock::new();

/// Installs the runtime (the first call wins; later calls are ignored).
pub fn install(rt: NeuralRuntime) {
    let _ = RUNTIME.set(rt);
}

/// Sets what happens when a binary without the runtime needs it (the first call wins).
pub fn on_missing(handler: fn(&str) -> !) {
    let _ = ON_MISSING.set(handler);
}

/// The installed runtime, if any (for optional per-thread set-up).
pub fn installed() -> Option<&'static NeuralRuntime> {
    RUNTIME.get()
}

/// The installed runtime; without one, the [`on_missing`] handler, told `why` (it does not return).
///
/// # Errors
/// Without a runtime and without a handler: what is missing, naming `why`.
pub fn runtime(why: &str) -> Result<&'static NeuralRuntime, String> {
    if let Some(rt) = RUNTIME.get() {
        return Ok(rt);
    }
    match ON_MISSING.get() {
        Some(handler) => handler(why),
        None => {
            Err(format!("{why} needs libtorch, but this program installed no neural runtime (prescale-torch does)"))
        }
    }
}

/// The runtime on libtorch: what `prescale-torch` (and tests that use models in process) install.
pub fn with_torch() -> NeuralRuntime {
    use super::model::Model;
    NeuralRuntime {
        load_facts: |dir| {
            Model::load(dir)
                .map(|m| ModelFacts {
                    task: m.card.task,
                    spec: m.card.spec,
                    step_s: m.card.step_s,
                    any_step: m.card.any_step,
                })
                .map_err(|e| e.to_string())
        },
        bc_policy: |dir, setting, config| {
            let policy = if config.adapts() {
                // Fine-tuning and refits change the weights: the policy owns its model.
                let m = Model::load(dir).expect("validated model directory");
                super::policy::BcPolicy::adapting(
                    m,
                    setting,
                    config.act_quantile,
                    config.fine_tune.clone(),
                    config.refit.clone(),
                )
            } else {
                // Shared through this thread's batcher when the run is part of a batched group.
                let m = super::batch::handle(dir).expect("validated model directory");
                super::policy::BcPolicy::new(m, setting, config.act_quantile)
            };
            Box::new(policy.with_resource_floor(config.resource_floor))
        },
        forecaster: |dir, start_unix_s, step_s, fine_tune, refit| {
            // Fine-tuning and refits change the weights, so such a forecaster owns its model; others may share.
            let m = if fine_tune.is_some() || refit.is_some() {
                super::batch::ModelHandle::Own(Box::new(Model::load(dir).expect("validated model directory")))
            } else {
                super::batch::handle(dir).expect("validated model directory")
            };
            Box::new(super::forecaster::NeuralForecaster::new(m, start_unix_s, step_s, fine_tune, refit))
        },
        init_thread: super::init_torch,
    }
}

/// Installs [`with_torch`] (idempotent): for tests and tools that use models in process.
pub fn install_torch() {
    install(with_torch());
}
