//! A trained model (its card is [`super::card`]) and its directory: `card.json` (what the model is, how it was trained, a content hash of
//! the weights), `weights.safetensors`, and after `export` a traced, frozen TorchScript `model.pt` that takes
//! raw inputs and gives outputs in requests per second, with normalisation inside.
//!
//! Loading checks everything it can before a number is produced: the files exist, the card parses and is of
//! this format, its input list matches its spec, the weights' SHA-256 matches the card, and the weights hold
//! exactly the tensors (names and shapes) the card's architecture needs.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use tch::nn::VarStore;
use tch::{Device, Kind, Tensor};

pub use super::card::{
    CARD_FILE, DataSummary, FORMAT, FitSummary, ModelCard, ModelError, TORCHSCRIPT_FILE, WEIGHTS_FILE, is_trained,
    output_columns, read_card, read_verified_card, sha256_file,
};
use super::card::{err, write_card};
use super::data::{Windows, rate_mask};
pub use super::facts::Task;
use super::net::Net;
use super::spec::{OutputKind, Signal};

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
mod tests;
