//! The training loop: losses per output kind, Adam with a seeded batch order and early stopping on the
//! validation loss, evaluation, and a stop with the last good checkpoint when the loss stops being finite.

use std::time::Instant;

use rand::{RngExt, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use serde::{Deserialize, Serialize};
use tch::nn::{self, OptimizerConfig};
use tch::{Device, Kind, Tensor};

use super::data::*;
pub use super::facts::{DeviceChoice, TrainingConfig};
use super::net::Net;
use super::spec::{ModelSpec, OutputKind};

impl DeviceChoice {
    /// The libtorch device.
    ///
    /// # Errors
    /// `Cuda` on a machine where libtorch sees no GPU.
    pub fn device(self) -> Result<Device, String> {
        match self {
            DeviceChoice::Cpu => Ok(Device::Cpu),
            DeviceChoice::Auto => Ok(Device::cuda_if_available()),
            DeviceChoice::Cuda if tch::Cuda::is_available() => Ok(Device::Cuda(0)),
            DeviceChoice::Cuda => Err("device Cuda asked for, but libtorch sees no CUDA device (build with \
                                       PRESCALE_TORCH_CUDA=1 on a GPU machine)"
                .into()),
        }
    }
}

/// The loss of a batch: `out` is `[B, R, K]`, `y` is `[B, R]` (`R` rows: horizons × targets), both
/// normalised.
pub fn loss(out: &Tensor, y: &Tensor, kind: &OutputKind) -> Tensor {
    match kind {
        OutputKind::Point => (out.select(2, 0) - y).square().mean(Kind::Float),
        OutputKind::Gaussian => {
            let mean = out.select(2, 0);
            let log_var = out.select(2, 1).clamp(-12.0, 12.0);
            (((y - mean).square() * (-&log_var).exp() + log_var) * 0.5).mean(Kind::Float)
        }
        OutputKind::Quantiles(levels) => {
            let q = Tensor::from_slice(&levels.iter().map(|v| *v as f32).collect::<Vec<_>>()).to_device(out.device());
            let e = y.unsqueeze(-1) - out; // [B, H, K]
            (&e * &q).maximum(&(&e * (&q - 1.0))).mean(Kind::Float)
        }
    }
}

/// One epoch of the training curve.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochRow {
    /// Epoch (1-based).
    pub epoch: u32,
    /// Mean training loss over the epoch's batches.
    pub train_loss: f64,
    /// Validation loss after the epoch.
    pub validation_loss: f64,
    /// Seconds since training started.
    pub wall_s: f64,
}

/// What a finished training reports.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FitReport {
    /// The curve.
    pub curve: Vec<EpochRow>,
    /// Epoch whose weights were kept (best validation loss).
    pub best_epoch: u32,
    /// Its validation loss.
    pub best_validation_loss: f64,
    /// Adam steps taken.
    pub steps: u64,
    /// Training windows.
    pub train_windows: usize,
    /// Validation windows.
    pub validation_windows: usize,
    /// Wall time, seconds.
    pub wall_s: f64,
    /// Where it ran (`cpu`, `cuda:0`).
    pub device: String,
}

impl From<&FitReport> for super::card::FitSummary {
    fn from(r: &FitReport) -> Self {
        super::card::FitSummary {
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

/// Training stopped because the loss was not finite; the weights are those of the last good epoch.
#[derive(Clone, Debug, PartialEq)]
pub struct NonFiniteLoss {
    /// Adam step (1-based, over the whole run) whose loss was not finite.
    pub step: u64,
    /// Its epoch.
    pub epoch: u32,
    /// The report up to the last good epoch.
    pub report: FitReport,
}

impl std::fmt::Display for NonFiniteLoss {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "training loss became non-finite at Adam step {} (epoch {}); kept the last good checkpoint (epoch {}, \
             validation loss {:.6})",
            self.step, self.epoch, self.report.best_epoch, self.report.best_validation_loss
        )
    }
}

pub(crate) fn tensors(w: &Windows, spec: &ModelSpec, device: Device) -> (Tensor, Tensor) {
    let (l, f, h) = (spec.window_steps as i64, spec.width() as i64, spec.output_rows() as i64);
    let x = Tensor::from_slice(&w.x).view([w.n as i64, l, f]).to_device(device);
    let y = Tensor::from_slice(&w.y).view([w.n as i64, h]).to_device(device);
    (x, y)
}

/// Mean loss of `net` over `w`, without gradients, in batches of 4096.
pub fn evaluate(net: &Net, spec: &ModelSpec, w: &Windows, device: Device) -> f64 {
    if w.n == 0 {
        return f64::NAN;
    }
    let (x, y) = tensors(w, spec, device);
    tch::no_grad(|| {
        let mut total = 0.0;
        let n = w.n as i64;
        let mut i = 0;
        while i < n {
            let b = (n - i).min(4096);
            let out = net.forward(&x.narrow(0, i, b));
            total += loss(&out, &y.narrow(0, i, b), &spec.output).double_value(&[]) * b as f64;
            i += b;
        }
        total / n as f64
    })
}

/// Snapshot of a `VarStore`'s variables (deep copies), to restore the best epoch.
pub fn snapshot(vs: &nn::VarStore) -> Vec<(String, Tensor)> {
    tch::no_grad(|| {
        let mut v: Vec<(String, Tensor)> = vs.variables().into_iter().map(|(k, t)| (k, t.copy())).collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    })
}

/// Restores a [`snapshot`].
pub fn restore(vs: &nn::VarStore, snap: &[(String, Tensor)]) {
    let vars = vs.variables();
    tch::no_grad(|| {
        for (k, t) in snap {
            if let Some(v) = vars.get(k) {
                v.shallow_clone().copy_(t);
            }
        }
    });
}

/// Trains `net` (whose variables live in `vs`) on `train`, early-stopping on `validation`; `on_epoch` sees
/// each epoch's row (for a progress bar). The best epoch's weights are left in `vs`.
///
/// # Errors
/// [`NonFiniteLoss`] when a batch loss is NaN or infinite (the best weights so far are restored first).
pub fn fit(
    vs: &nn::VarStore,
    net: &Net,
    spec: &ModelSpec,
    train: &Windows,
    validation: &Windows,
    cfg: &TrainingConfig,
    on_epoch: &mut dyn FnMut(&EpochRow),
) -> Result<FitReport, NonFiniteLoss> {
    let started = Instant::now();
    let device = vs.device();
    let mut opt = nn::Adam::default().build(vs, cfg.learning_rate).expect("Adam builds on a VarStore");
    let (x, y) = tensors(train, spec, device);
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(cfg.seed ^ 0x5eed_ba7c);
    let n = train.n;
    let batch = (cfg.batch_size as usize).min(n.max(1));
    let mut order: Vec<i64> = (0..n as i64).collect();
    let mut best = (evaluate(net, spec, validation, device), 0u32, snapshot(vs));
    let mut report = FitReport {
        curve: Vec::new(),
        best_epoch: 0,
        best_validation_loss: best.0,
        steps: 0,
        train_windows: train.n,
        validation_windows: validation.n,
        wall_s: 0.0,
        device: format!("{device:?}").to_lowercase(),
    };
    let mut since_best = 0;
    for epoch in 1..=cfg.max_epochs {
        // Fisher-Yates with our own generator: the batch order is a function of the seed alone.
        for i in (1..order.len()).rev() {
            let j = rng.random_range(0..=i);
            order.swap(i, j);
        }
        let batches = n.div_ceil(batch);
        let take = cfg.max_batches_per_epoch.map_or(batches, |m| (m as usize).min(batches));
        let mut sum = 0.0;
        for b in 0..take {
            let idx = &order[b * batch..((b + 1) * batch).min(n)];
            let idx = Tensor::from_slice(idx).to_device(device);
            let out = net.forward(&x.index_select(0, &idx));
            let l = loss(&out, &y.index_select(0, &idx), &spec.output);
            let lv = l.double_value(&[]);
            report.steps += 1;
            if !lv.is_finite() {
                restore(vs, &best.2);
                report.wall_s = started.elapsed().as_secs_f64();
                return Err(NonFiniteLoss { step: report.steps, epoch, report });
            }
            opt.backward_step(&l);
            sum += lv;
        }
        let val = evaluate(net, spec, validation, device);
        let row = EpochRow {
            epoch,
            train_loss: sum / take as f64,
            validation_loss: val,
            wall_s: started.elapsed().as_secs_f64(),
        };
        report.curve.push(row);
        on_epoch(&row);
        if val < best.0 || best.1 == 0 && !best.0.is_finite() {
            best = (val, epoch, snapshot(vs));
            since_best = 0;
        } else {
            since_best += 1;
            if since_best >= cfg.patience {
                break;
            }
        }
    }
    restore(vs, &best.2);
    report.best_epoch = best.1;
    report.best_validation_loss = best.0;
    report.wall_s = started.elapsed().as_secs_f64();
    Ok(report)
}

/// The point forecast (normalised) of each window and horizon from the network's outputs `[B, H, K]`: the
/// mean (point, Gaussian) or the quantile level nearest 0.5.
pub fn point(out: &Tensor, kind: &OutputKind) -> Tensor {
    match kind {
        OutputKind::Point | OutputKind::Gaussian => out.select(2, 0),
        OutputKind::Quantiles(levels) => {
            let mid = super::spec::nearest_level(levels, 0.5);
            out.select(2, mid as i64)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::neural::net::Net;

    #[test]
    fn split_leaves_no_target_in_another_part() {
        let s = Split::default();
        let [tr, va, te] = s.ranges(1000);
        assert_eq!((tr.end, va.end, te.end), (700, 850, 1000));
        for (part, offset, h) in [(&tr, 1, 5), (&va, 1, 5), (&te, 0, 1)] {
            let ends = Split::ends(part, offset, h);
            for k in ends {
                assert!(k + offset >= part.start && k + offset + h <= part.end, "{k}");
            }
        }
        // The last training window predicts up to step 699 exactly.
        let e = Split::ends(&tr, 1, 5);
        assert_eq!(e.end - 1 + 1 + 5, 700);
    }

    #[test]
    fn a_non_finite_loss_stops_training_and_keeps_the_last_good_weights() {
        use super::super::spec::{Architecture, Input};
        let spec = ModelSpec {
            architecture: Architecture::Mlp { hidden: vec![4] },
            inputs: vec![Input::Rate],
            window_steps: 2,
            horizon_steps: 1,
            output: OutputKind::Point,
            level: Default::default(),
            targets: crate::neural::spec::default_targets(),
        };
        tch::manual_seed(3);
        let vs = nn::VarStore::new(Device::Cpu);
        let net = Net::new(&vs.root(), &spec);
        let good = Windows { x: vec![0.1, 0.2, 0.3, 0.4], y: vec![0.3, 0.5], level: vec![1.0; 2], n: 2 };
        // The second epoch meets a NaN target: training stops there, with the first epoch's weights.
        let before = snapshot(&vs);
        let cfg = TrainingConfig { max_epochs: 1, batch_size: 2, ..TrainingConfig::default() };
        fit(&vs, &net, &spec, &good, &good, &cfg, &mut |_| {}).expect("finite data trains");
        let after_good = snapshot(&vs);
        assert!(before.iter().zip(&after_good).any(|(a, b)| !a.1.equal(&b.1)), "one epoch changed the weights");
        let bad = Windows { x: vec![0.1, 0.2, 0.3, 0.4], y: vec![f32::NAN, 0.5], level: vec![1.0; 2], n: 2 };
        let e = fit(&vs, &net, &spec, &bad, &good, &cfg, &mut |_| {}).expect_err("a NaN loss stops training");
        assert_eq!((e.step, e.epoch), (1, 1));
        assert!(e.to_string().contains("non-finite at Adam step 1"));
        let kept = snapshot(&vs);
        assert!(after_good.iter().zip(&kept).all(|(a, b)| a.1.equal(&b.1)), "the last good weights are kept");
    }

    #[test]
    fn windows_cut_and_normalise() {
        let f = Frames { width: 1, inputs: (0..10).map(f64::from).collect(), target: (0..10).map(f64::from).collect() };
        let spec = ModelSpec {
            architecture: super::super::spec::Architecture::Mlp { hidden: vec![4] },
            inputs: vec![super::super::spec::Input::Rate],
            window_steps: 3,
            horizon_steps: 2,
            output: OutputKind::Point,
            level: Default::default(),
            targets: crate::neural::spec::default_targets(),
        };
        let norm = Normaliser { mean: 1.0, sd: 2.0, level_floor_per_s: None };
        let w = windows(&f, &spec, &Norms::from(norm), 1, 0..10);
        // Ends 2..=7 (inputs need 3 steps, targets k+1..k+2 < 10).
        assert_eq!(w.n, 6);
        assert_eq!(&w.x[..3], &[-0.5, 0.0, 0.5]);
        assert_eq!(&w.y[..2], &[1.0, 1.5]);
    }
}
