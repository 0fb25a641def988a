//! A model directory's card (`card.json`): what the model is (task, spec, step, normalisation), how it was
//! trained (data, settings, fit), its metrics and the SHA-256 of its weights; reading, checking and writing it,
//! and whether a directory holds a finished model ([`is_trained`]) — all without libtorch.
//!
//! What it is not: it never touches the weights' tensors (that is [`super::model::Model`]).

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::data::{Normaliser, Norms};
use super::facts::Task;
use super::facts::TrainingConfig;
use super::spec::{Level, ModelSpec, OutputKind, Signal};

/// The card's format tag.
pub const FORMAT: &str = "prescale-model/1";

/// File names in a model directory.
pub const CARD_FILE: &str = "card.json";

/// Weights, safetensors.
pub const WEIGHTS_FILE: &str = "weights.safetensors";

/// TorchScript, written by export.
pub const TORCHSCRIPT_FILE: &str = "model.pt";

/// Where the training data came from and how it was split.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DataSummary {
    /// The source (scenario file, trace, rollouts).
    pub source: String,
    /// Steps (or decisions) in all series.
    pub steps: usize,
    /// Series (1 for a trace; rollouts × seeds for imitation).
    pub series: usize,
    /// Fractions: training, validation, test (time-ordered).
    pub split: [f64; 3],
    /// Training windows, validation windows, test windows.
    pub windows: [usize; 3],
    /// Mean and standard deviation of the training target, requests per second.
    pub target_mean_per_s: f64,
    /// See `target_mean_per_s`.
    pub target_sd_per_s: f64,
}

/// The model card: everything needed to use, check and reproduce a model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelCard {
    /// Always [`FORMAT`].
    pub format: String,
    /// Model name.
    pub name: String,
    /// What it predicts.
    pub task: Task,
    /// Architecture, inputs, window, horizons, output kind.
    pub spec: ModelSpec,
    /// Input columns in tensor order (`[batch, window, columns]`, raw units).
    pub input_columns: Vec<String>,
    /// Outputs per horizon, in order (requests per second; `log_variance` in (requests/s)²).
    pub output_columns: Vec<String>,
    /// Control step the model was trained at, seconds (for a model trained across series, the first series').
    pub step_s: f64,
    /// Trained across series of several steps (a global model): used at any step, since the network reads
    /// `window_steps` steps whatever their length. Absent (false) in other cards.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub any_step: bool,
    /// Normalisation of rate-like inputs and targets, fitted on training data.
    pub normalisation: Normaliser,
    /// Normalisation of the memory demand (input and target), GiB, for a model that sees it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_normalisation: Option<Normaliser>,
    /// Normalisation of the network demand (input and target), Gbit/s, for a model that sees it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_normalisation: Option<Normaliser>,
    /// Training data.
    pub data: DataSummary,
    /// Optimiser settings.
    pub training: TrainingConfig,
    /// What training reported (curve is in `curve.csv`).
    pub fit: FitSummary,
    /// Validation and test metrics (`test_mae_per_s`, `test_mase`, …); one that could not be computed (no
    /// validation windows, a series shorter than one seasonal period) is left out when the card is saved
    /// (cards written before that hold JSON `null`, read as NaN).
    #[serde(deserialize_with = "null_as_nan::map")]
    pub metrics: BTreeMap<String, f64>,
    /// Trainable parameters.
    pub parameters: u64,
    /// prescale version that wrote the card.
    pub prescale_version: String,
    /// SHA-256 of `weights.safetensors`, hex.
    pub weights_sha256: String,
    /// SHA-256 of `model.pt` once exported.
    #[serde(default)]
    pub torchscript_sha256: Option<String>,
}

impl ModelCard {
    /// A card for a network about to be trained: spec, step, normalisation and optimiser filled; data, fit,
    /// metrics and hashes left for training and saving to fill.
    pub fn new(
        name: &str,
        task: Task,
        spec: &ModelSpec,
        step_s: f64,
        norms: impl Into<Norms>,
        training: &TrainingConfig,
    ) -> ModelCard {
        let norms: Norms = norms.into();
        let norm = norms.rate;
        ModelCard {
            format: FORMAT.into(),
            name: name.into(),
            task,
            spec: spec.clone(),
            input_columns: spec.columns(),
            output_columns: output_columns(&spec.output),
            step_s,
            any_step: false,
            normalisation: norm,
            memory_normalisation: norms.memory,
            network_normalisation: norms.network,
            data: DataSummary {
                source: String::new(),
                steps: 0,
                series: 0,
                split: [0.0; 3],
                windows: [0; 3],
                target_mean_per_s: norm.mean,
                target_sd_per_s: norm.sd,
            },
            training: training.clone(),
            fit: FitSummary {
                best_epoch: 0,
                best_validation_loss: f64::NAN,
                epochs: 0,
                steps: 0,
                wall_s: 0.0,
                device: String::new(),
                stopped: None,
            },
            metrics: BTreeMap::new(),
            parameters: 0,
            prescale_version: String::new(),
            weights_sha256: String::new(),
            torchscript_sha256: None,
        }
    }

    /// The normalisers of every signal the model sees.
    pub fn norms(&self) -> Norms {
        Norms { rate: self.normalisation, memory: self.memory_normalisation, network: self.network_normalisation }
    }

    /// Sets [`ModelCard::norms`].
    pub fn set_norms(&mut self, norms: Norms) {
        (self.normalisation, self.memory_normalisation, self.network_normalisation) =
            (norms.rate, norms.memory, norms.network);
    }
}

/// serde_json writes a NaN `f64` as `null`; these read it back as NaN, so that every card prescale writes can
/// be read again.
mod null_as_nan {
    use std::collections::BTreeMap;

    use serde::{Deserialize, Deserializer};

    pub fn value<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
    }

    pub fn map<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, f64>, D::Error> {
        let m = BTreeMap::<String, Option<f64>>::deserialize(d)?;
        Ok(m.into_iter().map(|(k, v)| (k, v.unwrap_or(f64::NAN))).collect())
    }
}

/// A training's report (`fit::FitReport`) without its curve.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FitSummary {
    /// Epoch kept.
    pub best_epoch: u32,
    /// Its validation loss (NaN, written as `null`, without validation windows).
    #[serde(deserialize_with = "null_as_nan::value")]
    pub best_validation_loss: f64,
    /// Epochs run.
    pub epochs: u32,
    /// Adam steps.
    pub steps: u64,
    /// Wall time, seconds.
    pub wall_s: f64,
    /// Device (`cpu`, `cuda(0)`).
    pub device: String,
    /// Why training stopped early, if it did not finish normally (e.g. a non-finite loss).
    #[serde(default)]
    pub stopped: Option<String>,
}

/// A model could not be loaded or saved; the message names the file and what was wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelError(pub String);

impl fmt::Display for ModelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ModelError {}

pub(super) fn err(msg: impl Into<String>) -> ModelError {
    ModelError(msg.into())
}

/// Output column names for an output kind.
pub fn output_columns(kind: &OutputKind) -> Vec<String> {
    match kind {
        OutputKind::Point => vec!["mean_per_s".into()],
        OutputKind::Gaussian => vec!["mean_per_s".into(), "log_variance".into()],
        OutputKind::Quantiles(q) => q.iter().map(|l| format!("q{l}_per_s")).collect(),
    }
}

/// SHA-256 of a file, hex.
pub fn sha256_file(path: &Path) -> Result<String, ModelError> {
    let bytes = std::fs::read(path).map_err(|e| err(format!("{}: cannot read: {e}", path.display())))?;
    Ok(Sha256::digest(&bytes).iter().map(|b| format!("{b:02x}")).collect())
}

/// Reads and checks `dir/card.json` ([`read_card`]) and that the weights file is the one the card describes
/// (SHA-256), without libtorch.
///
/// # Errors
/// Those of [`read_card`], a missing weights file, or weights whose SHA-256 is not the card's.
pub fn read_verified_card(dir: &Path) -> Result<ModelCard, ModelError> {
    let card = read_card(dir)?;
    let weights = dir.join(WEIGHTS_FILE);
    if !weights.is_file() {
        return Err(err(format!(
            "{}: missing (a model directory holds {CARD_FILE} and {WEIGHTS_FILE})",
            weights.display()
        )));
    }
    let hash = sha256_file(&weights)?;
    if hash != card.weights_sha256 {
        return Err(err(format!(
            "{}: SHA-256 {hash} does not match weights_sha256 {} in {}: the weights are not the ones the card \
             describes",
            weights.display(),
            card.weights_sha256,
            dir.join(CARD_FILE).display()
        )));
    }
    Ok(card)
}

/// Whether `dir` holds a finished model: its card reads and its weights are the ones the card describes
/// (SHA-256). Without libtorch: what sweeps and Slurm scripts ask to decide whether to train; loading it
/// ([`Model::load`](super::model::Model::load)) checks the tensors too.
pub fn is_trained(dir: &Path) -> bool {
    read_verified_card(dir).is_ok()
}

/// Reads and checks `dir/card.json` (format, spec, input list) without touching the weights.
///
/// # Errors
/// A missing directory or card, a parse error with line and column, or a card that contradicts itself.
pub fn read_card(dir: &Path) -> Result<ModelCard, ModelError> {
    if !dir.is_dir() {
        return Err(err(format!("{}: no such model directory", dir.display())));
    }
    let path = dir.join(CARD_FILE);
    let text = std::fs::read_to_string(&path).map_err(|e| {
        err(format!(
            "{}: missing or unreadable ({e}); a model directory holds {CARD_FILE} and {WEIGHTS_FILE}",
            path.display()
        ))
    })?;
    let card: ModelCard =
        serde_json::from_str(&text).map_err(|e| err(format!("{}:{}: {e}", path.display(), e.line())))?;
    if card.format != FORMAT {
        return Err(err(format!("{}: format is {:?}, this prescale reads {FORMAT:?}", path.display(), card.format)));
    }
    if let Some(p) = card.spec.problems().into_iter().next() {
        return Err(err(format!("{}: spec.{p}", path.display())));
    }
    if card.input_columns != card.spec.columns() {
        return Err(err(format!(
            "{}: input_columns {:?} do not match the inputs of spec.inputs {:?}",
            path.display(),
            card.input_columns,
            card.spec.columns()
        )));
    }
    if card.output_columns != output_columns(&card.spec.output) {
        return Err(err(format!(
            "{}: output_columns {:?} do not match spec.output (expected {:?})",
            path.display(),
            card.output_columns,
            output_columns(&card.spec.output)
        )));
    }
    if !(card.step_s > 0.0 && card.normalisation.sd > 0.0 && card.normalisation.mean.is_finite()) {
        return Err(err(format!("{}: step_s and normalisation must be positive and finite", path.display())));
    }
    for (signal, norm, field) in [
        (Signal::Memory, card.memory_normalisation, "memory_normalisation"),
        (Signal::Network, card.network_normalisation, "network_normalisation"),
    ] {
        let seen = card.spec.signals().contains(&signal);
        match norm {
            None if seen => {
                return Err(err(format!("{}: {field} is missing; the spec sees {signal:?}", path.display())));
            }
            Some(_) if !seen => {
                return Err(err(format!("{}: {field} is given, but the spec does not see {signal:?}", path.display())));
            }
            Some(n) if !(n.sd > 0.0 && n.mean.is_finite() && n.sd.is_finite()) => {
                return Err(err(format!(
                    "{}: {field} must have a finite mean and a positive finite sd",
                    path.display()
                )));
            }
            Some(n)
                if n.level_floor_per_s.is_some_and(|f| f > 0.0 && f.is_finite())
                    != (card.spec.level == Level::Window) =>
            {
                return Err(err(format!(
                    "{}: {field}.level_floor_per_s must be {} for spec.level {:?}, got {:?}",
                    path.display(),
                    if card.spec.level == Level::Window { "a positive number" } else { "absent" },
                    card.spec.level,
                    n.level_floor_per_s
                )));
            }
            _ => {}
        }
    }
    let floor = card.normalisation.level_floor_per_s;
    let floor_ok = match card.spec.level {
        Level::Global => floor.is_none(),
        Level::Window => floor.is_some_and(|f| f > 0.0 && f.is_finite()),
    };
    if !floor_ok {
        return Err(err(format!(
            "{}: normalisation.level_floor_per_s must be {} for spec.level {:?}, got {floor:?}",
            path.display(),
            if card.spec.level == Level::Window { "a positive number" } else { "absent" },
            card.spec.level
        )));
    }
    Ok(card)
}

/// Writes `dir/card.json` through a temporary file and a rename: a reader never sees half a card.
#[cfg_attr(not(feature = "torch"), allow(dead_code))]
pub(super) fn write_card(dir: &Path, card: &ModelCard) -> Result<(), ModelError> {
    let path = dir.join(CARD_FILE);
    let tmp = dir.join(format!(".{CARD_FILE}.tmp"));
    let text = serde_json::to_string_pretty(card).expect("a card serialises");
    std::fs::write(&tmp, text + "\n")
        .and_then(|()| std::fs::rename(&tmp, &path))
        .map_err(|e| err(format!("{}: {e}", path.display())))
}
