//! What the rest of the crate needs to know of a model without libtorch: what it was trained to do ([`Task`]),
//! the facts a controller's checks read ([`ModelFacts`]), and the plain settings of the neural controllers
//! ([`BcConfig`], [`FineTuneConfig`], [`RefitConfig`]) as scenario files state them, and the training settings
//! training files state ([`TrainingConfig`], [`DaggerConfig`], [`LabelledSeries`]).
//!
//! The floor of `neural/`: it imports only `spec` and the simulator's validation, never a torch module, so a
//! configuration can be read, checked and printed by a binary that does not load libtorch.

use prescale_sim::demand::DemandSeries;
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

/// The name a BC policy reports for the model called `model_name` (runs, sweep tables, figures).
pub fn bc_name(model_name: &str) -> String {
    format!("bc({model_name})")
}

/// Optimiser settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainingConfig {
    /// Most epochs (passes over the training windows).
    #[serde(default = "epochs")]
    pub max_epochs: u32,
    /// Windows per Adam step.
    #[serde(default = "batch")]
    pub batch_size: u32,
    /// Adam learning rate.
    #[serde(default = "learning_rate")]
    pub learning_rate: f64,
    /// Stop after this many epochs without a better validation loss.
    #[serde(default = "patience")]
    pub patience: u32,
    /// Cap on Adam steps per epoch (long series): a random subset of batches each epoch.
    #[serde(default)]
    pub max_batches_per_epoch: Option<u32>,
    /// Seed of the initial weights and the batch order.
    #[serde(default = "one")]
    pub seed: u64,
    /// Where to train: `Cpu` (default; exact repeatability), `Cuda` or `Auto` (CUDA when libtorch sees a GPU).
    #[serde(default)]
    pub device: DeviceChoice,
}

fn epochs() -> u32 {
    40
}
fn batch() -> u32 {
    128
}
fn learning_rate() -> f64 {
    2e-3
}
fn patience() -> u32 {
    6
}
fn one() -> u64 {
    1
}

impl Default for TrainingConfig {
    fn default() -> Self {
        TrainingConfig {
            max_epochs: epochs(),
            batch_size: batch(),
            learning_rate: learning_rate(),
            patience: patience(),
            max_batches_per_epoch: None,
            seed: 1,
            device: DeviceChoice::Cpu,
        }
    }
}

impl TrainingConfig {
    /// Checks the settings into `p`.
    pub fn check(&self, p: &mut Problems) {
        p.count_within("max_epochs", self.max_epochs.into(), 1, 100_000);
        p.count_within("batch_size", self.batch_size.into(), 1, 65_536);
        p.within("learning_rate", self.learning_rate, Interval::open(0.0, 1.0));
        if let Some(n) = self.max_batches_per_epoch {
            p.at_least("max_batches_per_epoch", n.into(), 1.0, "");
        }
    }
}

/// Where training runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum DeviceChoice {
    /// The CPU.
    #[default]
    Cpu,
    /// The first CUDA device (an error when libtorch sees none).
    Cuda,
    /// CUDA when available, else the CPU.
    Auto,
}

/// DAgger settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DaggerConfig {
    /// DAgger rounds after the initial behavioural cloning (0: plain behavioural cloning).
    #[serde(default = "rounds")]
    pub rounds: u32,
    /// Mixture decay: the expert acts with probability `beta^round`.
    #[serde(default = "beta")]
    pub beta: f64,
    /// Epochs of continued training per round.
    #[serde(default = "round_epochs")]
    pub epochs_per_round: u32,
    /// Which round's policy to keep: the one with the least imitation error on the validation period of its
    /// own (learner-alone) rollouts — the error DAgger minimises, measured where the learner goes — as Ross et
    /// al. return the best policy on validation; or the last round's.
    #[serde(default)]
    pub keep: KeepRound,
}

/// Which DAgger round's policy to keep.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum KeepRound {
    /// Least validation imitation error (see [`DaggerConfig::keep`]).
    #[default]
    BestValidation,
    /// The last round.
    Last,
}

fn rounds() -> u32 {
    3
}
fn beta() -> f64 {
    0.5
}
fn round_epochs() -> u32 {
    10
}

impl Default for DaggerConfig {
    fn default() -> Self {
        DaggerConfig {
            rounds: rounds(),
            beta: beta(),
            epochs_per_round: round_epochs(),
            keep: KeepRound::BestValidation,
        }
    }
}

/// One series of a model trained across several (a global model): a label for tables and its demand.
pub struct LabelledSeries {
    /// File and column, as the training file names it.
    pub label: String,
    /// The values on their grid (`rate_per_s` holds the series, whatever its unit).
    pub demand: DemandSeries,
}
