//! A trained model and its directory: `card.json` (what the model is, how it was trained, a content hash of
//! the weights), `weights.safetensors`, and after `export` a traced, frozen TorchScript `model.pt` that takes
//! raw inputs and gives outputs in requests per second, with normalisation inside.
//!
//! Loading checks everything it can before a number is produced: the files exist, the card parses and is of
//! this format, its input list matches its spec, the weights' SHA-256 matches the card, and the weights hold
//! exactly the tensors (names and shapes) the card's architecture needs.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tch::nn::VarStore;
use tch::{Device, Kind, Tensor};

use super::data::{Normaliser, Norms, Windows, rate_mask};
pub use super::facts::Task;
use super::fit::{FitReport, TrainingConfig};
use super::net::Net;
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

/// [`FitReport`] without its curve.
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

impl From<&FitReport> for FitSummary {
    fn from(r: &FitReport) -> Self {
        FitSummary {
            best_epoch: r.best_epoch,
            best_validation_loss: r.best_validation_loss,
            epochs: r.curve.len() as u32,
            steps: r.steps,
            wall_s: r.wall_s,
            device: r.device.clone(),
            stopped: None,
        }
    }
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

fn err(msg: impl Into<String>) -> ModelError {
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

/// A network with its card and weights.
#[derive(Debug)]
pub struct Model {
    /// The card (hash fields filled when saved or loaded).
    pub card: ModelCard,
    /// The variables.
    pub vs: VarStore,
    /// The network.
    pub net: Net,
    shift: Tensor,
    scale: Tensor,
    /// 1 for rate-like columns, 0 for the others (`[columns]`).
    rate_mask: Tensor,
    /// Per output row (horizons × targets), each target's mean and standard deviation (`[rows]`): used to
    /// scale back a model with more than one target.
    row_mean: Tensor,
    row_sd: Tensor,
    /// With a window level and several signals: per column, 1 + the index of its signal in
    /// [`ModelSpec::signals`] (0: calendar), and per output row 1 + its target's (int64).
    column_signal: Tensor,
    row_signal: Tensor,
    /// With a window level: each signal's own input column and level floor, in [`ModelSpec::signals`] order
    /// (read once here, not at every forward pass).
    level_columns: Vec<(i64, f64)>,
    /// Forward passes made through [`Model::predict`] (this model only).
    calls: std::sync::atomic::AtomicU64,
}

impl Model {
    /// A fresh network for `card` (weights drawn from libtorch's generator: call `tch::manual_seed` first for
    /// repeatable weights).
    pub fn fresh(card: ModelCard, device: Device) -> Model {
        let vs = VarStore::new(device);
        let net = Net::new(&vs.root(), &card.spec);
        Model::assemble(card, vs, net)
    }

    fn assemble(card: ModelCard, vs: VarStore, net: Net) -> Model {
        let norms = card.norms();
        let columns = norms.columns(&card.spec);
        let shift: Vec<f32> = columns.iter().map(|c| c.0 as f32).collect();
        let scale: Vec<f32> = columns.iter().map(|c| c.1 as f32).collect();
        let rate_mask: Vec<f32> = rate_mask(&card.spec).iter().map(|r| if *r { 1.0 } else { 0.0 }).collect();
        let rows = norms.rows(&card.spec);
        let row_mean: Vec<f32> = rows.iter().map(|r| r.0 as f32).collect();
        let row_sd: Vec<f32> = rows.iter().map(|r| r.1 as f32).collect();
        let signals = card.spec.signals();
        let index = |s: Signal| 1 + signals.iter().position(|x| *x == s).expect("every signal of the spec") as i64;
        let column_signal: Vec<i64> = card
            .spec
            .inputs
            .iter()
            .flat_map(|i| std::iter::repeat_n(i.signal().map_or(0, index), i.columns().len()))
            .collect();
        let row_signal: Vec<i64> =
            (0..card.spec.horizon_steps).flat_map(|_| card.spec.targets.iter().map(|s| index(*s))).collect();
        let level_columns: Vec<(i64, f64)> = signals
            .iter()
            .filter_map(|s| Some((card.spec.column_of(*s)? as i64, norms.of(*s).level_floor_per_s?)))
            .collect();
        let device = vs.device();
        Model {
            card,
            net,
            shift: Tensor::from_slice(&shift).to_device(device),
            scale: Tensor::from_slice(&scale).to_device(device),
            rate_mask: Tensor::from_slice(&rate_mask).to_device(device),
            row_mean: Tensor::from_slice(&row_mean).to_device(device),
            row_sd: Tensor::from_slice(&row_sd).to_device(device),
            column_signal: Tensor::from_slice(&column_signal).to_device(device),
            row_signal: Tensor::from_slice(&row_signal).to_device(device),
            level_columns,
            vs,
            calls: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// A fresh network for `card` on `device` with weights drawn from libtorch's generator seeded with `seed`,
    /// under a process-wide lock: the generator is global, so runs on several threads that draw fresh weights
    /// at the same time still get the weights their seeds give, whatever the timing.
    pub fn seeded(card: ModelCard, seed: u64, device: Device) -> Model {
        static DRAW: std::sync::Mutex<()> = std::sync::Mutex::new(());
        let _guard = DRAW.lock().unwrap_or_else(|e| e.into_inner());
        tch::manual_seed(seed as i64);
        Model::fresh(card, device)
    }

    /// An independent copy (own variables), e.g. for a learner acting inside a rollout while training goes on.
    pub fn duplicate(&self) -> Model {
        let mut vs = VarStore::new(self.vs.device());
        let net = Net::new(&vs.root(), &self.card.spec);
        vs.copy(&self.vs).expect("the same architecture has the same variables");
        Model::assemble(self.card.clone(), vs, net)
    }

    /// The same model after its `VarStore` moved device (rebuilds the normalisation constants there).
    pub fn rebuilt(m: Model) -> Model {
        Model::assemble(m.card, m.vs, m.net)
    }

    /// Forward passes this model has made through [`Model::predict`] (batched calls count once).
    pub fn forward_calls(&self) -> u64 {
        self.calls.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Trainable parameters.
    pub fn parameters(&self) -> u64 {
        self.vs.trainable_variables().iter().map(|t| t.numel() as u64).sum()
    }

    /// Raw inputs `[batch, window, columns]` → outputs `[batch, horizons × targets, outputs]` in each target's
    /// unit (requests per second, GiB, Gbit/s; log-variance in that unit squared), rows horizon-major. The
    /// exported TorchScript is a trace of exactly this function.
    pub fn forward_raw(&self, x: &Tensor) -> Tensor {
        let n = self.card.normalisation;
        match n.level_floor_per_s {
            None => self.forward_normalised(&((x - &self.shift) / &self.scale)),
            Some(_) if self.level_columns.len() > 1 || self.card.any_step => {
                // Each signal's level per window (its column's mean, floored): `[batch, 1 + signals]` with a 1
                // first for calendar columns; each column divided by its signal's, each row multiplied back.
                // Also a model trained across series: its tiny floor would vanish in the other path's
                // `(level − 1) · mask + 1` in single precision (a window of zeros would divide 0 by 0).
                let mut levels = vec![x.select(2, 0).select(1, 0).ones_like().unsqueeze(1)];
                for &(col, floor) in &self.level_columns {
                    levels.push(x.select(2, col).mean_dim(1, true, Kind::Float).clamp_min(floor));
                }
                let levels = Tensor::cat(&levels, 1);
                let divisor = levels.index_select(1, &self.column_signal).unsqueeze(1);
                let out = self.forward_normalised(&((x / divisor - &self.shift) / &self.scale));
                let row_level = levels.index_select(1, &self.row_signal);
                match self.card.spec.output {
                    OutputKind::Point | OutputKind::Quantiles(_) => out * row_level.unsqueeze(2),
                    OutputKind::Gaussian => {
                        let mean = out.select(2, 0) * &row_level;
                        let log_var = out.select(2, 1) + row_level.log() * 2.0;
                        Tensor::stack(&[mean, log_var], 2)
                    }
                }
            }
            Some(floor) => {
                // The rate alone: the path window-level models had before there were other signals, kept as it
                // is so that their outputs stay the same to the bit (the general path above divides by a
                // gathered level where this one scales by `(level − 1) · mask + 1`).
                // Each window's level (its mean rate, floored), `[batch, 1, 1]`; rate-like columns divided by it.
                let col = self.card.spec.rate_column().expect("checked at load: a Window level has a Rate input");
                let level = x.select(2, col as i64).mean_dim(1, true, Kind::Float).clamp_min(floor).unsqueeze(2);
                let divisor = (&level - 1.0) * &self.rate_mask + 1.0;
                let out = self.forward_normalised(&((x / divisor - &self.shift) / &self.scale));
                match self.card.spec.output {
                    OutputKind::Point | OutputKind::Quantiles(_) => out * &level,
                    OutputKind::Gaussian => {
                        let level = level.squeeze_dim(2);
                        let mean = out.select(2, 0) * &level;
                        let log_var = out.select(2, 1) + level.log() * 2.0;
                        Tensor::stack(&[mean, log_var], 2)
                    }
                }
            }
        }
    }

    /// Normalised inputs → outputs in the units the normaliser scales back to (requests per second, or ratios
    /// to the window's level).
    fn forward_normalised(&self, z: &Tensor) -> Tensor {
        let out = self.net.forward(z);
        if self.card.spec.targets.len() > 1 {
            // Each row by its target's normaliser (`[rows]` broadcast over the batch).
            return match self.card.spec.output {
                OutputKind::Point | OutputKind::Quantiles(_) => {
                    out * self.row_sd.unsqueeze(1) + self.row_mean.unsqueeze(1)
                }
                OutputKind::Gaussian => {
                    let mean = out.select(2, 0) * &self.row_sd + &self.row_mean;
                    let log_var = out.select(2, 1).clamp(-12.0, 12.0) + self.row_sd.log() * 2.0;
                    Tensor::stack(&[mean, log_var], 2)
                }
            };
        }
        let n = self.card.normalisation;
        match self.card.spec.output {
            OutputKind::Point | OutputKind::Quantiles(_) => out * n.sd + n.mean,
            OutputKind::Gaussian => {
                let mean = out.select(2, 0) * n.sd + n.mean;
                let log_var = out.select(2, 1).clamp(-12.0, 12.0) + 2.0 * n.sd.ln();
                Tensor::stack(&[mean, log_var], 2)
            }
        }
    }

    /// Runs [`Model::forward_raw`] without gradients on `n` windows given as rows of floats; `n × rows ×
    /// outputs` values.
    pub fn predict(&self, x: &[f32], n: usize) -> Vec<f32> {
        let (l, f) = (self.card.spec.window_steps as i64, self.card.spec.width() as i64);
        self.calls.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let t = Tensor::from_slice(x).view([n as i64, l, f]).to_device(self.vs.device());
        let out = tch::no_grad(|| self.forward_raw(&t)).to_device(Device::Cpu).to_kind(Kind::Float).flatten(0, -1);
        Vec::<f32>::try_from(&out).expect("a float tensor converts")
    }

    /// Loads and checks a model directory (see the module docs).
    ///
    /// # Errors
    /// The first problem found, naming the file.
    pub fn load(dir: &Path) -> Result<Model, ModelError> {
        let card = read_verified_card(dir)?;
        let weights = dir.join(WEIGHTS_FILE);
        let mut vs = VarStore::new(Device::Cpu);
        let net = Net::new(&vs.root(), &card.spec);
        let stored = Tensor::read_safetensors(&weights).map_err(|e| err(format!("{}: {e}", weights.display())))?;
        let stored: BTreeMap<String, Vec<i64>> = stored.iter().map(|(k, t)| (k.clone(), t.size())).collect();
        let wanted: BTreeMap<String, Vec<i64>> = vs.variables().iter().map(|(k, t)| (k.clone(), t.size())).collect();
        if stored != wanted {
            let missing: Vec<&String> = wanted.keys().filter(|k| !stored.contains_key(*k)).collect();
            let extra: Vec<&String> = stored.keys().filter(|k| !wanted.contains_key(*k)).collect();
            let shape: Vec<String> = wanted
                .iter()
                .filter_map(|(k, s)| stored.get(k).filter(|t| *t != s).map(|t| format!("{k} is {t:?}, needs {s:?}")))
                .collect();
            return Err(err(format!(
                "{}: the weights do not fit the card's architecture ({}): missing {missing:?}, unexpected {extra:?}, \
                 wrong shape {shape:?}",
                weights.display(),
                card.spec.architecture.name()
            )));
        }
        vs.load(&weights).map_err(|e| err(format!("{}: {e}", weights.display())))?;
        // Weights that are not numbers would give NaN forecasts or orders: refuse them here, by name, and
        // check the outputs on a probe window of raw zeros too.
        let mut names: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
        names.sort_by(|a, b| a.0.cmp(&b.0));
        for (name, t) in &names {
            let bad = t.isfinite().logical_not().sum(Kind::Int64).int64_value(&[]);
            if bad > 0 {
                return Err(err(format!(
                    "{}: tensor '{name}' holds {bad} non-finite value(s) (NaN or inf): the model is broken; retrain it",
                    weights.display()
                )));
            }
        }
        let model = Model::assemble(card, vs, net);
        let probe: Vec<f32> = vec![0.0; (model.card.spec.window_steps as usize) * model.card.spec.width()];
        if let Some(x) = model.predict(&probe, 1).iter().find(|x| !x.is_finite()) {
            return Err(err(format!(
                "{}: the model gives a non-finite output ({x}) on a probe window of zeros: the model is broken; \
                 retrain it",
                dir.display()
            )));
        }
        Ok(model)
    }

    /// Writes `card.json` and `weights.safetensors` into `dir`, atomically (a temporary sibling renamed over
    /// `dir`), filling the card's hash and parameter count. Extra files (`curve.csv`, plots) are written by the
    /// caller through `extra` into the temporary folder first.
    ///
    /// # Errors
    /// I/O problems, naming the path.
    pub fn save(&mut self, dir: &Path, extra: &dyn Fn(&Path) -> std::io::Result<()>) -> Result<(), ModelError> {
        let parent = dir.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        std::fs::create_dir_all(parent).map_err(|e| err(format!("{}: cannot create: {e}", parent.display())))?;
        let name = dir.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_else(|| "model".into());
        let tmp = parent.join(format!(".{name}.tmp-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&tmp);
        std::fs::create_dir_all(&tmp).map_err(|e| err(format!("{}: cannot create: {e}", tmp.display())))?;
        let result = (|| {
            let weights = tmp.join(WEIGHTS_FILE);
            self.vs.save(&weights).map_err(|e| err(format!("{}: {e}", weights.display())))?;
            self.card.weights_sha256 = sha256_file(&weights)?;
            // A card never holds a non-number where a number is promised: a metric that could not be
            // computed (no validation windows, a series shorter than one seasonal period) is left out.
            self.card.metrics.retain(|_, v| v.is_finite());
            self.card.parameters = self.parameters();
            self.card.torchscript_sha256 = None;
            write_card(&tmp, &self.card)?;
            extra(&tmp).map_err(|e| err(format!("{}: {e}", tmp.display())))?;
            replace_dir(&tmp, dir)
        })();
        if result.is_err() {
            let _ = std::fs::remove_dir_all(&tmp);
        }
        result
    }

    /// Traces [`Model::forward_raw`] with frozen weights into TorchScript at `dir/model.pt` and records its
    /// hash in the card. The weights are checked again first, so an export never describes other weights.
    ///
    /// # Errors
    /// Loading or tracing problems, naming the path.
    pub fn export(dir: &Path) -> Result<ModelCard, ModelError> {
        let mut model = Model::load(dir)?;
        model.vs.freeze();
        let (l, f) = (model.card.spec.window_steps as i64, model.card.spec.width() as i64);
        let example = Tensor::zeros([2, l, f], (Kind::Float, Device::Cpu));
        let traced = tch::CModule::create_by_tracing("PrescaleModel", "forward", &[example], &mut |x| {
            vec![model.forward_raw(&x[0])]
        })
        .map_err(|e| err(format!("{}: tracing failed: {e}", dir.display())))?;
        let tmp = dir.join(format!(".{TORCHSCRIPT_FILE}.tmp"));
        traced.save(&tmp).map_err(|e| err(format!("{}: {e}", tmp.display())))?;
        let hash = sha256_file(&tmp)?;
        std::fs::rename(&tmp, dir.join(TORCHSCRIPT_FILE))
            .map_err(|e| err(format!("{}: {e}", dir.join(TORCHSCRIPT_FILE).display())))?;
        model.card.torchscript_sha256 = Some(hash);
        write_card(dir, &model.card)?;
        Ok(model.card)
    }
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
/// ([`Model::load`]) checks the tensors too.
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
fn write_card(dir: &Path, card: &ModelCard) -> Result<(), ModelError> {
    let path = dir.join(CARD_FILE);
    let tmp = dir.join(format!(".{CARD_FILE}.tmp"));
    let text = serde_json::to_string_pretty(card).expect("a card serialises");
    std::fs::write(&tmp, text + "\n")
        .and_then(|()| std::fs::rename(&tmp, &path))
        .map_err(|e| err(format!("{}: {e}", path.display())))
}

/// Puts `tmp` in the place of `dir` (removing an older `dir`).
fn replace_dir(tmp: &Path, dir: &Path) -> Result<(), ModelError> {
    if dir.exists() {
        let old: PathBuf = dir.with_extension(format!("old-{}", std::process::id()));
        std::fs::rename(dir, &old).map_err(|e| err(format!("{}: {e}", dir.display())))?;
        std::fs::rename(tmp, dir).map_err(|e| err(format!("{}: {e}", dir.display())))?;
        let _ = std::fs::remove_dir_all(&old);
    } else {
        std::fs::rename(tmp, dir).map_err(|e| err(format!("{}: {e}", dir.display())))?;
    }
    Ok(())
}

/// Errors in normalised units (`[n]`: the rate one step on; `[n, rows]`: every row), times each window's level
/// of the row's target when the model scales by it (so that times `sd` they are in the target's unit);
/// unchanged otherwise.
pub fn per_window_level(e: tch::Tensor, model: &Model, w: &Windows) -> tch::Tensor {
    if model.card.normalisation.level_floor_per_s.is_none() {
        return e;
    }
    // `[n, targets]`; errors are `[n]` (the rate one step on) or `[n, rows]` (rows horizon-major).
    let targets = model.card.spec.targets.len() as i64;
    let level = tch::Tensor::from_slice(&w.level).to_device(e.device()).view([w.n as i64, targets]);
    match e.dim() {
        1 => e * level.select(1, 0),
        _ => {
            let horizons = e.size()[1] / targets;
            e * level.repeat([1, horizons])
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::neural::data::Norms;
    use crate::neural::fit::TrainingConfig;
    use crate::neural::spec::{Architecture, Input};

    /// Outputs of an untrained model for the window `c ×` a fixed one (rate and backlog scaled, calendar not).
    fn outputs(level: Level, floor: Option<f64>, c: f32) -> Vec<f32> {
        tch::manual_seed(3);
        let spec = ModelSpec {
            architecture: Architecture::Gru { hidden: 8, layers: 1 },
            inputs: vec![Input::Rate, Input::TimeOfDay, Input::Backlog],
            window_steps: 6,
            horizon_steps: 2,
            output: OutputKind::Gaussian,
            level,
            targets: crate::neural::spec::default_targets(),
        };
        let norm = Normaliser { mean: 1.0, sd: 0.3, level_floor_per_s: floor };
        let card = ModelCard::new("w", Task::Forecast, &spec, 60.0, norm, &TrainingConfig::default());
        let m = Model::fresh(card, Device::Cpu);
        let x: Vec<f32> = (0..6)
            .flat_map(|k| {
                let t = k as f32 * 0.3;
                [c * (100.0 + 10.0 * k as f32), t.sin(), t.cos(), c * (5.0 + k as f32)]
            })
            .collect();
        m.predict(&x, 1)
    }

    /// With a window level and two signals, each is scaled by its own level: memory three times as high gives
    /// a memory forecast three times as high (log-variance + 2 ln 3) and leaves the rate's forecast as it was.
    #[test]
    fn a_window_level_scales_each_signal_by_its_own_level() {
        tch::manual_seed(5);
        let spec = ModelSpec {
            architecture: Architecture::Mlp { hidden: vec![8] },
            inputs: vec![Input::Rate, Input::Memory, Input::TimeOfDay],
            window_steps: 4,
            horizon_steps: 2,
            output: OutputKind::Gaussian,
            level: Level::Window,
            targets: vec![Signal::Rate, Signal::Memory],
        };
        let norms = Norms {
            rate: Normaliser { mean: 1.0, sd: 0.2, level_floor_per_s: Some(0.1) },
            memory: Some(Normaliser { mean: 1.0, sd: 0.1, level_floor_per_s: Some(0.5) }),
            network: None,
        };
        let card = ModelCard::new("w2", Task::Forecast, &spec, 60.0, norms, &TrainingConfig::default());
        let m = Model::fresh(card, Device::Cpu);
        let window = |memory: f32| -> Vec<f32> {
            (0..4)
                .flat_map(|k| [100.0 + 5.0 * k as f32, memory * (400.0 + k as f32), (k as f32).sin(), (k as f32).cos()])
                .collect()
        };
        let (a, b) = (m.predict(&window(1.0), 1), m.predict(&window(3.0), 1));
        // Rows: (h1, rate), (h1, memory), (h2, rate), (h2, memory); two outputs each.
        for h in 0..2 {
            let (rate, memory) = (4 * h, 4 * h + 2);
            assert!((a[rate] - b[rate]).abs() <= 1e-4 * a[rate].abs(), "h{h} rate: {} -> {}", a[rate], b[rate]);
            assert!(
                (b[memory] as f64 / a[memory] as f64 - 3.0).abs() < 1e-5,
                "h{h} memory: {} -> {}",
                a[memory],
                b[memory]
            );
            let (lv_a, lv_b) = (a[memory + 1] as f64, b[memory + 1] as f64);
            assert!((lv_b - lv_a - 2.0 * 3f64.ln()).abs() < 1e-4, "h{h}: {lv_a} -> {lv_b}");
        }
    }

    /// With a window level, a window three times as high gives a forecast three times as high and a variance
    /// nine times as large (the network sees the same ratios); with the global level it does not.
    #[test]
    fn a_window_level_model_scales_with_its_input() {
        let (a, b) = (outputs(Level::Window, Some(0.1), 1.0), outputs(Level::Window, Some(0.1), 3.0));
        for h in 0..2 {
            let (mean_a, mean_b) = (a[2 * h] as f64, b[2 * h] as f64);
            assert!((mean_b / mean_a - 3.0).abs() < 1e-5, "h{h}: {mean_a} -> {mean_b}");
            let (lv_a, lv_b) = (a[2 * h + 1] as f64, b[2 * h + 1] as f64);
            assert!((lv_b - lv_a - 2.0 * 3f64.ln()).abs() < 1e-4, "h{h}: {lv_a} -> {lv_b}");
        }
        let (g1, g3) = (outputs(Level::Global, None, 1.0), outputs(Level::Global, None, 3.0));
        assert!((g3[0] as f64 / g1[0] as f64 - 3.0).abs() > 1e-2, "{g1:?} {g3:?}");
    }
}
