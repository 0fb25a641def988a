//! What the rest of the crate needs to know of a model without libtorch: what it was trained to do ([`Task`]),
//! the facts a controller's checks read ([`ModelFacts`]), and the plain settings of the neural controllers
//! ([`BcConfig`], [`FineTuneConfig`], [`RefitConfig`]) as scenario files state them.
//!
//! The floor of `neural/`: it imports only `spec` and the simulator's validation, never a torch module, so a
//! configuration can be read, checked and printed by a binary that does not load libtorch.

use prescale_sim::validate::{Interval, Problems};
use serde::{Deserialize, Serialize};

use super::spec::ModelSpec;

/// What a model was trained to do.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum Task {
    /// Forecast the request rate at horizons `1..=horizon_steps` (used as a predictor).
    Forecast,
    /// Imitate the hindsight expert: the capacity (requests per second at the SLO) to order now (used as a
    /// policy).
    Policy,
}

/// What a controller's checks need of a model: the task, the spec and the step it was trained at — read from
/// a model directory's card, or, for a model an experiment trains before its runs, taken from the training
/// stage that will write it.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelFacts {
    /// What it predicts.
    pub task: Task,
    /// Architecture, inputs, window, horizons, output.
    pub spec: ModelSpec,
    /// Control step it is (or will be) trained at, seconds.
    pub step_s: f64,
    /// Usable at any step (a model trained across series: [`ModelCard::any_step`](super::card::ModelCard::any_step)).
    pub any_step: bool,
}

/// Online fine-tuning settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FineTuneConfig {
    /// Fine-tune every this many seconds of virtual time.
    pub every_s: f64,
    /// On the windows of the last this many seconds.
    pub window_s: f64,
    /// Adam steps per fine-tune.
    #[serde(default = "steps")]
    pub steps: u32,
    /// Adam learning rate.
    #[serde(default = "lr")]
    pub learning_rate: f64,
}

fn steps() -> u32 {
    20
}
fn lr() -> f64 {
    5e-4
}

impl FineTuneConfig {
    /// Checks the parameters into `p`, given the model's window and horizon in steps.
    pub fn check(&self, p: &mut Problems, step_s: f64, window_steps: usize, horizon_steps: usize) {
        p.at_least("every_s", self.every_s, step_s, "step_s");
        let need = (window_steps + horizon_steps + 1) as f64 * step_s;
        p.require("window_s", self.window_s >= need, || {
            format!("must cover the model's window and horizons ({need} s), got {}", self.window_s)
        });
        p.count_within("steps", self.steps as u64, 1, 10_000);
        p.within("learning_rate", self.learning_rate, Interval::open(0.0, 1.0));
    }
}

/// Scheduled refits: every `every_s` seconds of virtual time the network is trained again from fresh weights
/// ([`Model::seeded`](super::model::Model::seeded) with the card's training seed plus the refit's number) on the last `window_s` seconds —
/// its first four fifths train, the last fifth stops early — with the normalisation fitted anew on that window,
/// for at most `epochs` epochs (batch size and learning rate as the card's training). Like `forecast-eval
/// --refit every-origin`, on a schedule.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RefitConfig {
    /// Refit every this many seconds of virtual time.
    pub every_s: f64,
    /// On the last this many seconds.
    pub window_s: f64,
    /// Most epochs per refit.
    #[serde(default = "refit_epochs")]
    pub epochs: u32,
}

fn refit_epochs() -> u32 {
    10
}

impl RefitConfig {
    /// Checks the parameters into `p`, given the model's window and horizon in steps.
    pub fn check(&self, p: &mut Problems, step_s: f64, window_steps: usize, horizon_steps: usize) {
        p.at_least("every_s", self.every_s, step_s, "step_s");
        let need = 5.0 * (window_steps + horizon_steps + 1) as f64 * step_s;
        p.require("window_s", self.window_s >= need, || {
            format!(
                "must hold training and validation windows: at least 5 x (window + horizons + 1) steps ({need} s), \
                 got {}",
                self.window_s
            )
        });
        p.count_within("epochs", self.epochs.into(), 1, 1000);
    }
}

/// A learned policy.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BcConfig {
    /// Model directory, relative to the file that names it.
    pub model: String,
    /// Act on this quantile of the model's predictive distribution (Gaussian or quantile output) instead of
    /// its centre: a safety margin learned with the policy.
    #[serde(default)]
    pub act_quantile: Option<f64>,
    /// Online fine-tuning, DAgger in the run: `fine_tune: (every_s: 3600, window_s: 14400, steps: 20,
    /// learning_rate: 5e-4)`. The policy logs its own states, the rate of each step and the backlog at each
    /// decision; every `every_s` of virtual time it labels the decisions of the last `window_s` whose horizons
    /// have passed with the hindsight expert over the *observed* rates, and takes `steps` full-batch Adam steps
    /// on them with its own loss. The time series records each fine-tune's order error before and after.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fine_tune: Option<FineTuneConfig>,
    /// Scheduled refits from fresh weights, DAgger in the run: `refit: (every_s: 21600, window_s: 86400,
    /// epochs: 10)`. Every `every_s` of virtual time the policy labels its decisions of the last `window_s`
    /// whose horizons have passed with the hindsight expert over the observed rates and trains its architecture
    /// again on them from fresh weights, with the normalisation fitted anew (what a level shift needs, which
    /// fine-tuning under the old normalisation cannot give).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refit: Option<RefitConfig>,
    /// Never order fewer instances than the memory and network the workload states at the decision need beside
    /// the static pools (`⌈(demand − pools) / per instance⌉`, the hindsight expert's floor at the current step;
    /// the workload must state memory or network). A guard for states the policy never learned from — a memory
    /// level beyond its training range — where the order it learned falls short of what the fleet must hold.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub resource_floor: bool,
}

impl BcConfig {
    /// Whether the policy changes its weights in the run (fine-tunes or refits): it then owns its model.
    pub fn adapts(&self) -> bool {
        self.fine_tune.is_some() || self.refit.is_some()
    }
}
