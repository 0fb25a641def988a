//! The neural runtime on libtorch ([`with_torch`]): the top floor of `neural/`, the one module that names the
//! models, the policy, the forecaster and the batcher together, so that `runtime` (the seam) stays below them.
//! `prescale-torch` and tests that use models in process install it ([`install_torch`]).

use super::facts::ModelFacts;
use super::runtime::{NeuralRuntime, install};

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
