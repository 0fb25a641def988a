//! What `prescale forecast-eval` evaluates: the models by name, when they are fitted, what the networks
//! output, and the networks' side ([`NetworkEval`]), which only `prescale-torch` provides.

use std::path::{Path, PathBuf};

use anyhow::Result;
use prescale_agents::neural::facts::{FineTuneConfig, TrainingConfig};
use prescale_agents::neural::spec::OutputKind;

use super::protocol::{HORIZONS, Series};

/// One model's row.
pub struct Row {
    /// Model name.
    pub model: String,
    /// MAE at each horizon of the evaluation.
    pub mae: Vec<f64>,
    /// Training (networks) or fit-and-forecast (classical) wall time, seconds.
    pub wall_s: f64,
}

/// The models `forecast-eval` knows, by the names `--models` takes: the classical predictors, the networks,
/// and the networks with a window level ([`Level::Window`](prescale_agents::neural::spec::Level::Window): inputs and outputs scaled by each window's mean).
pub const MODELS: [&str; 10] = [
    "seasonal-naive",
    "holt-winters",
    "mlp",
    "gru",
    "lstm",
    "transformer",
    "mlp-window",
    "gru-window",
    "lstm-window",
    "transformer-window",
];

/// The classical predictors among [`MODELS`] (the rest are networks, which need PyTorch).
pub const CLASSICAL: [&str; 2] = ["seasonal-naive", "holt-winters"];

/// The models evaluated when `--models` names none: the classical predictors and the networks with the
/// global level.
pub const DEFAULT_MODELS: [&str; 6] = ["seasonal-naive", "holt-winters", "mlp", "gru", "lstm", "transformer"];

/// When models are fitted (see the module docs).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Refit {
    /// Classical predictors online over all history, networks trained before the first origin.
    #[default]
    Once,
    /// At every origin: classical predictors on the sliding window before it, networks on all data before it.
    EveryOrigin,
    /// Classical predictors online; networks trained before the first origin and fine-tuned at every origin on
    /// the recent window, as in simulation (`fine_tune` of a `Neural` predictor).
    FineTune,
}

/// What the networks of `forecast-eval` output and which point of it is scored.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum PointForecast {
    /// A Gaussian (negative log-likelihood), its mean scored.
    #[default]
    Mean,
    /// The median (the pinball loss at 0.5), scored as it is: the point that minimises the absolute error MASE
    /// measures; on skewed, bursty series the mean is pulled above it by the bursts.
    Median,
}

impl PointForecast {
    #[cfg_attr(not(feature = "torch"), allow(dead_code))]
    pub(super) fn output(self) -> OutputKind {
        match self {
            PointForecast::Mean => OutputKind::Gaussian,
            PointForecast::Median => OutputKind::Quantiles(vec![0.5]),
        }
    }
}

/// What `forecast-eval` evaluates and how long networks train.
#[derive(Clone, Debug)]
pub struct EvalOptions {
    /// Models by name (of [`MODELS`]), in the report's order.
    pub models: Vec<String>,
    /// Most training epochs of a network.
    pub epochs: u32,
    /// Horizons, steps, increasing.
    pub horizons: Vec<usize>,
    /// When models are fitted.
    pub refit: Refit,
    /// With [`Refit::EveryOrigin`], the classical predictors' sliding window, seconds.
    pub refit_window_s: f64,
    /// With [`Refit::FineTune`], the fine-tune at each origin (its `every_s` is ignored: origins set the
    /// schedule).
    pub fine_tune: FineTuneConfig,
    /// Trained forecasters (model directories) evaluated beside the models: as they are, or fine-tuned at every
    /// origin with [`Refit::FineTune`].
    pub trained: Vec<PathBuf>,
    /// The networks' output and the point scored.
    pub point: PointForecast,
    /// Networks trained per model from seeds `1..=ensemble`, their point forecasts averaged (1: one network).
    pub ensemble: u32,
    /// The networks' side, when [`Self::needs_torch`]: the front end takes it from the gate's table (in
    /// `prescale-torch`); `None` evaluates the classical predictors only.
    pub networks: Option<NetworkEval>,
}

/// The rows of the networks `EvalOptions` asks for on a series, trained with the given settings (quiet or not),
/// at its origins `(origins, hmax)`: forecasts from each origin up to `hmax` steps ahead.
pub type NetworkRows = fn(&Series, &TrainingConfig, &EvalOptions, bool, (&[usize], usize)) -> Result<Vec<Row>>;

/// Evaluating networks: only `prescale-torch` has it (the gate's table), so that `prescale` links no libtorch.
#[derive(Clone, Copy, Debug)]
pub struct NetworkEval {
    /// The rows of the networks the options ask for on a series.
    pub evaluate: NetworkRows,
    /// Checks a trained model directory (`--trained`) before anything is read or trained.
    pub check_trained: fn(&Path) -> Result<()>,
}

impl EvalOptions {
    /// What [`Self::needs_torch`] names in messages: the networks and trained models asked for.
    pub fn networks_named(&self) -> String {
        let mut named: Vec<String> = self.networks().iter().map(|n| format!("`{n}`")).collect();
        named.extend(self.trained.iter().map(|d| format!("--trained {}", d.display())));
        named.join(", ")
    }

    /// The networks it names (models not in [`CLASSICAL`]).
    pub fn networks(&self) -> Vec<&str> {
        self.models.iter().map(String::as_str).filter(|m| !CLASSICAL.contains(m)).collect()
    }

    /// Whether it needs PyTorch: a network to train or a trained model to load.
    pub fn needs_torch(&self) -> bool {
        !self.networks().is_empty() || !self.trained.is_empty()
    }
}

impl Default for EvalOptions {
    fn default() -> Self {
        EvalOptions {
            models: DEFAULT_MODELS.iter().map(|m| m.to_string()).collect(),
            epochs: 30,
            horizons: HORIZONS.to_vec(),
            refit: Refit::Once,
            refit_window_s: 3.0 * 86_400.0,
            fine_tune: FineTuneConfig { every_s: 3600.0, window_s: 86_400.0, steps: 20, learning_rate: 5e-4 },
            trained: Vec::new(),
            point: PointForecast::Mean,
            ensemble: 1,
            networks: None,
        }
    }
}
