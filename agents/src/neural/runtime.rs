//! The seam between the controllers and libtorch, for fast start.
//!
//! A binary links libtorch (and pays ~0.2 s and ~110 MB to load it at every start) only if code that calls it
//! is reachable from its `main`. The controller and predictor configurations reach the neural models only
//! through the function pointers of a [`NeuralRuntime`], which a binary installs with [`install`] — the
//! `prescale-torch` binary installs [`with_torch`](super::torch::with_torch); the `prescale` binary installs nothing, so libtorch is not
//! among its libraries. When code of a binary without the runtime needs a model, [`runtime`] calls the
//! handler set by [`on_missing`] (the `prescale` binary's re-runs the same command line in `prescale-torch`,
//! before anything is written), or panics naming the cause.

use std::path::Path;
use std::sync::OnceLock;

use prescale_sim::controller::Controller;

use prescale_sim::validate::Problems;

use super::expert::PolicySetting;
use super::facts::{BcConfig, FineTuneConfig, ModelFacts, RefitConfig, Task};
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
    if !cfg!(feature = "torch") {
        return Err(format!(
            "{why} needs PyTorch, but this prescale was built without it (the `torch` cargo feature); build with \
             the default features"
        ));
    }
    match ON_MISSING.get() {
        Some(handler) => handler(why),
        None => {
            Err(format!("{why} needs libtorch, but this program installed no neural runtime (prescale-torch does)"))
        }
    }
}

/// Checks a model named by a scenario into `p` (at `model`): it loads (card, hash, weights) — or, with
/// `planned`, will be trained as those facts say — was trained for `task` at this step, and (as a predictor)
/// takes no cluster-state inputs. Its facts, if it loads.
pub fn check_model(
    p: &mut Problems,
    model: &str,
    task: Task,
    step_s: f64,
    planned: Option<&ModelFacts>,
) -> Option<ModelFacts> {
    let facts = match planned {
        Some(f) => f.clone(),
        None => match super::runtime::runtime("checking a model directory")
            .and_then(|rt| (rt.load_facts)(Path::new(model)))
        {
            Ok(facts) => facts,
            Err(e) => {
                p.add("model", e);
                return None;
            }
        },
    };
    p.require("model", facts.task == task, || {
        format!(
            "{model}: trained for {:?}, used here as a {}",
            facts.task,
            if task == Task::Forecast { "predictor (needs Forecast)" } else { "policy (needs Policy)" }
        )
    });
    p.require("model", facts.any_step || (facts.step_s - step_s).abs() <= 1e-9 * step_s, || {
        format!("{model}: trained at step_s {}, the scenario steps {step_s} s", facts.step_s)
    });
    if task == Task::Forecast
        && let Some(i) = facts.spec.inputs.iter().find(|i| i.is_state())
    {
        p.add("model", format!("{model}: input {i:?} is cluster state, which a predictor does not see (use it as Bc)"));
    }
    Some(facts)
}
