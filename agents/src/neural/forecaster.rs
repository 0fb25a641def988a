//! Forecast cloning used online: a trained forecasting model behind the [`Predictor`] interface, so it works
//! with every variance controller and the proactive allocator; optionally fine-tuned in virtual time.
//!
//! The `k`-th observed value is the rate of step `k − 1`; its calendar inputs are those of the step's end,
//! `start_unix_s + k · step_s`, as in training; a model that sees the memory or network demand is told the
//! step's first ([`Predictor::observe_demand`]). One forward pass gives every horizon and target (one libtorch
//! call per control step): a model with targets `[Rate, Memory]` forecasts the memory demand with its own
//! uncertainty from the same call ([`Predictor::forecast_all`]). The forecast's standard deviation per horizon
//! is the model's own for a Gaussian output, `(q_hi − q_lo) / (z_hi − z_lo)` from the outermost quantile levels, and for a point output the exponentially
//! weighted one-step residual deviation times `√h` (as the classical predictors).
//!
//! **Online fine-tuning** (the feedback loop): every `every_s` seconds of virtual time the model takes `steps`
//! Adam steps (a fresh optimiser each time, learning rate `learning_rate`) on the windows of the last
//! `window_s` seconds, with the normalisation of training. The mean absolute one-step error over that window
//! is measured just before and just after, and reported through [`Predictor::take_update`] into the run's
//! time series.

use std::collections::VecDeque;

use tch::nn::OptimizerConfig;

use super::batch::ModelHandle;
use super::data::{Frames, Normaliser, Norms, Split, Windows, windows};
use super::facts::{FineTuneConfig, RefitConfig};
use super::fit::{DeviceChoice, TrainingConfig, fit, loss, point, restore, snapshot, tensors};
use super::model::{Model, ModelCard};

use super::spec::{Input, OutputKind, Signal, calendar, nearest_level};
use crate::predictor::{Forecast, NotEnoughHistory, Predictor, Residuals};
use tch::Kind;
use tch::nn;

/// Trains `model`'s architecture again from fresh weights (seeded with `seed`) on `frames` (unnormalised, in
/// the spec's order): steps `0..train_end` train (with the normalisation fitted on them), the rest stops early;
/// at most `epochs` epochs. `None` when the frames hold no training or no validation window, or the loss
/// stopped being finite.
pub fn refit(model: &Model, frames: &Frames, train_end: usize, epochs: u32, seed: u64) -> Option<Model> {
    let spec = &model.card.spec;
    let (n, h) = (frames.steps(), spec.horizon_steps as usize);
    let (tr, va) = (0..train_end.min(n), train_end.min(n)..n);
    let raw = Normaliser::fit(&frames.target_series(0, tr.clone()));
    let norms = Norms::fit(spec, raw, frames, tr.clone());
    let (wt, wv) = (
        windows(frames, spec, &norms, 1, Split::ends(&tr, 1, h)),
        windows(frames, spec, &norms, 1, Split::ends(&va, 1, h)),
    );
    if wt.n == 0 || wv.n == 0 {
        return None;
    }
    let mut card = model.card.clone();
    card.set_norms(norms);
    fit_fresh(card, &wt, &wv, epochs, seed)
}

/// A model of `card` (its architecture, normalisation and training settings) from fresh weights seeded with
/// `seed`, trained on the windows `wt` with early stopping on `wv` for at most `epochs` epochs, on the CPU:
/// the refits of forecasters and policies. `None` when the loss stopped being finite.
pub(super) fn fit_fresh(card: ModelCard, wt: &Windows, wv: &Windows, epochs: u32, seed: u64) -> Option<Model> {
    let training = TrainingConfig { max_epochs: epochs, seed, device: DeviceChoice::Cpu, ..card.training.clone() };
    let spec = card.spec.clone();
    let fresh = Model::seeded(card, seed, tch::Device::Cpu);
    fit(&fresh.vs, &fresh.net, &spec, wt, wv, &training, &mut |_| {}).ok()?;
    Some(fresh)
}

/// Scheduled refits in observations: every how many, on how many steps, at most how many epochs, and how many
/// so far.
#[derive(Clone, Copy, Debug)]
pub(super) struct RefitSchedule {
    pub(super) every: usize,
    pub(super) steps: usize,
    pub(super) epochs: u32,
    pub(super) done: u64,
}

impl RefitSchedule {
    /// `r` at steps of `step_s`, none done yet.
    pub(super) fn new(r: &RefitConfig, step_s: f64) -> Self {
        RefitSchedule {
            every: ((r.every_s / step_s).round() as usize).max(1),
            steps: (r.window_s / step_s).round() as usize,
            epochs: r.epochs,
            done: 0,
        }
    }
}

/// A trained forecasting model as a [`Predictor`].
pub struct NeuralForecaster {
    model: ModelHandle,
    name: &'static str,
    start_unix_s: f64,
    step_s: f64,
    /// Unnormalised input rows, newest last.
    rows: VecDeque<Vec<f64>>,
    /// Each kept step's targets (the spec's order), newest last: what fine-tuning learns.
    targets: VecDeque<Vec<f64>>,
    /// The memory and network demand told for the step about to be observed (NaN until told).
    memory_gib: f64,
    network_gbps: f64,
    /// The targets besides the rate.
    others: Vec<Signal>,
    /// Each other target's residuals (point outputs: their standard deviation).
    other_residuals: Vec<Residuals>,
    last_others: Vec<f64>,
    cap: usize,
    seen: usize,
    residuals: Residuals,
    last_one_step: Option<f64>,
    fine_tune: Option<(FineTuneConfig, usize)>,
    refit: Option<RefitSchedule>,
    update: Option<(f64, f64)>,
}

impl NeuralForecaster {
    /// Wraps a forecasting model; `start_unix_s` is the wall-clock instant of step 0.
    ///
    /// # Panics
    /// If the model takes cluster-state inputs (validation refuses such a model as a predictor first).
    pub fn new(
        model: ModelHandle,
        start_unix_s: f64,
        step_s: f64,
        fine_tune: Option<FineTuneConfig>,
        refit: Option<RefitConfig>,
    ) -> Self {
        assert!(!model.card().spec.inputs.iter().any(|i| i.is_state()), "validated: a predictor sees no cluster state");
        let l = model.card().spec.window_steps as usize;
        let ft_steps = fine_tune.as_ref().map_or(0, |f| (f.window_s / step_s).round() as usize);
        let every = fine_tune.as_ref().map_or(0, |f| ((f.every_s / step_s).round() as usize).max(1));
        let refit = refit.map(|r| RefitSchedule::new(&r, step_s));
        let name = model.card().spec.architecture.name();
        let others: Vec<Signal> = model.card().spec.targets[1..].to_vec();
        NeuralForecaster {
            name,
            start_unix_s,
            step_s,
            rows: VecDeque::new(),
            targets: VecDeque::new(),
            memory_gib: f64::NAN,
            network_gbps: f64::NAN,
            other_residuals: vec![Residuals::default(); others.len()],
            last_others: Vec::new(),
            others,
            cap: l.max(ft_steps).max(refit.map_or(0, |r| r.steps)),
            seen: 0,
            residuals: Residuals::default(),
            last_one_step: None,
            fine_tune: fine_tune.map(|f| (f, every)),
            refit,
            update: None,
            model,
        }
    }

    fn row(&self, y: f64, k: usize) -> Vec<f64> {
        let cal = calendar(self.start_unix_s + k as f64 * self.step_s);
        let mut r = Vec::with_capacity(self.model.card().spec.width());
        for input in &self.model.card().spec.inputs {
            match input {
                Input::Rate => r.push(y),
                Input::TimeOfDay => r.extend([cal[0] as f64, cal[1] as f64]),
                Input::DayOfWeek => r.extend([cal[2] as f64, cal[3] as f64]),
                Input::Memory => r.push(self.memory_gib),
                Input::Network => r.push(self.network_gbps),
                Input::ReadyCapacity | Input::PendingCapacity | Input::Backlog | Input::LogBacklog => r.push(0.0),
            }
        }
        r
    }

    /// The value of `signal` at the step being observed (rate `y`).
    fn value(&self, signal: Signal, y: f64) -> f64 {
        match signal {
            Signal::Rate => y,
            Signal::Memory => self.memory_gib,
            Signal::Network => self.network_gbps,
        }
    }

    /// Forecasts of every target for horizons `1..=horizon` from one forward pass: the rate's first.
    fn forecasts(&self, horizon: usize) -> Result<Vec<Forecast>, NotEnoughHistory> {
        let spec = &self.model.card().spec;
        let l = spec.window_steps as usize;
        if self.rows.len() < l {
            return Err(NotEnoughHistory { have: self.seen, need: l });
        }
        let out = self.model.predict(&self.window(), 1);
        let (h_model, k, nt) = (spec.horizon_steps as usize, spec.output.width(), spec.targets.len());
        let forecast = |t: usize, residuals: &Residuals| {
            let at = |h: usize, j: usize| out[((h.min(h_model) - 1) * nt + t) * k + j] as f64;
            let mut fc = Forecast { mean: Vec::with_capacity(horizon), sd: Vec::with_capacity(horizon) };
            for h in 1..=horizon {
                let (mean, sd) = match &spec.output {
                    OutputKind::Point => (at(h, 0), residuals.sd() * (h as f64).sqrt()),
                    OutputKind::Gaussian => (at(h, 0), (0.5 * at(h, 1)).exp()),
                    OutputKind::Quantiles(levels) => {
                        let mid = nearest_level(levels, 0.5);
                        let sd = if levels.len() >= 2 {
                            let (lo, hi) = (levels[0], levels[levels.len() - 1]);
                            let z = |p: f64| crate::variance::normal_quantile(p);
                            ((at(h, levels.len() - 1) - at(h, 0)) / (z(hi) - z(lo))).max(0.0)
                        } else {
                            residuals.sd() * (h as f64).sqrt()
                        };
                        (at(h, mid), sd)
                    }
                };
                // A non-finite output stays non-finite: the controller reports it rather than acting on a zero.
                if !(mean.is_finite() && sd.is_finite()) {
                    fc.mean.push(f64::NAN);
                    fc.sd.push(f64::NAN);
                    continue;
                }
                fc.mean.push(mean.max(0.0));
                fc.sd.push(sd);
            }
            fc
        };
        let mut all = vec![forecast(0, &self.residuals)];
        all.extend(self.other_residuals.iter().enumerate().map(|(i, r)| forecast(i + 1, r)));
        Ok(all)
    }

    fn window(&self) -> Vec<f32> {
        let l = self.model.card().spec.window_steps as usize;
        self.rows.iter().skip(self.rows.len() - l).flat_map(|r| r.iter().map(|v| *v as f32)).collect()
    }

    fn fine_tune_now(&mut self, cfg: &FineTuneConfig) {
        let frames = Frames {
            width: self.model.card().spec.width(),
            inputs: self.rows.iter().flatten().copied().collect(),
            target: self.targets.iter().flatten().copied().collect(),
        };
        if let Some(update) = fine_tune(self.model.own(), &frames, cfg) {
            self.update = Some(update);
        }
    }

    /// A scheduled refit on the last `steps` observations: the one-step error over their windows before (the
    /// current model) and after (the refitted one, under its own normalisation) is reported as an update; a
    /// refit that fails keeps the current model.
    fn refit_now(&mut self, steps: usize, epochs: u32, number: u64) {
        let skip = self.rows.len() - steps;
        let frames = Frames {
            width: self.model.card().spec.width(),
            inputs: self.rows.iter().skip(skip).flatten().copied().collect(),
            target: self.targets.iter().skip(skip).flatten().copied().collect(),
        };
        let (current, n) = (self.model.own(), frames.steps());
        let h = current.card.spec.horizon_steps as usize;
        let all = |m: &Model| windows(&frames, &m.card.spec, &m.card.norms(), 1, Split::ends(&(0..n), 1, h));
        let before = evaluate_mae(current, &all(current));
        let seed = current.card.training.seed.wrapping_add(number);
        if let Some(fresh) = refit(current, &frames, n * 4 / 5, epochs, seed) {
            self.update = Some((before, evaluate_mae(&fresh, &all(&fresh))));
            self.model = ModelHandle::Own(Box::new(fresh));
        }
    }
}

/// The normalisers to cut `frames`' windows with for learning: the card's, but for a model trained across
/// series (whose card keeps a tiny window-level floor,
/// [`GLOBAL_LEVEL_FLOOR`](super::forecast_cloning::GLOBAL_LEVEL_FLOOR)) the rate's level floored as its
/// training floored each series ([`series_floor`](super::data::series_floor) of these frames'
/// mean), so that no target is a ratio to a near-zero level.
fn tuning_norms(model: &Model, frames: &Frames) -> Norms {
    let mut norms = model.card.norms();
    if model.card.any_step && norms.rate.level_floor_per_s.is_some() {
        let ys = frames.target_series(0, 0..frames.steps());
        let mean = ys.iter().sum::<f64>() / ys.len().max(1) as f64;
        norms.rate.level_floor_per_s = super::data::series_floor(mean).level_floor_per_s;
    }
    norms
}

/// One online fine-tune of `model` on every forecasting window of `frames` (unnormalised, in the spec's
/// column order; normalised as in training): `cfg.steps` full-batch Adam steps with a fresh optimiser. The
/// mean absolute one-step error over those windows before and after, requests per second; `None` when the
/// frames hold no whole window. A non-finite loss leaves the weights as they were (after = before).
pub fn fine_tune(model: &Model, frames: &Frames, cfg: &FineTuneConfig) -> Option<(f64, f64)> {
    let spec = &model.card.spec;
    let n = frames.steps();
    let w =
        windows(frames, spec, &tuning_norms(model, frames), 1, Split::ends(&(0..n), 1, spec.horizon_steps as usize));
    if w.n == 0 {
        return None;
    }
    Some(tune_on(model, &w, cfg))
}

/// `cfg.steps` full-batch Adam steps of `model` on the normalised windows `w` with a fresh optimiser: the mean
/// absolute one-step error over them before and after (after = before when the loss stopped being finite,
/// the weights then left as they were). The one fine-tuning step of forecasters and BC policies.
pub fn tune_on(model: &Model, w: &Windows, cfg: &FineTuneConfig) -> (f64, f64) {
    let before = evaluate_mae(model, w);
    let mut opt = tch::nn::Adam::default().build(&model.vs, cfg.learning_rate).expect("Adam builds");
    match fit_steps(model, &mut opt, w, cfg.steps) {
        Ok(()) => (before, evaluate_mae(model, w)),
        Err(_) => (before, before),
    }
}

impl Predictor for NeuralForecaster {
    fn name(&self) -> &'static str {
        self.name
    }

    fn model_calls(&self) -> u64 {
        self.model.forward_calls()
    }

    fn min_history(&self) -> usize {
        self.model.card().spec.window_steps as usize
    }

    fn observe(&mut self, y: f64) {
        if let Some(f) = self.last_one_step.take() {
            self.residuals.push(y - f);
        }
        for (i, f) in std::mem::take(&mut self.last_others).into_iter().enumerate() {
            let actual = self.value(self.others[i], y);
            if actual.is_finite() {
                self.other_residuals[i].push(actual - f);
            }
        }
        self.seen += 1;
        let row = self.row(y, self.seen);
        let targets: Vec<f64> = self.model.card().spec.targets.iter().map(|s| self.value(*s, y)).collect();
        if self.rows.len() == self.cap {
            self.rows.pop_front();
            self.targets.pop_front();
        }
        self.rows.push_back(row);
        self.targets.push_back(targets);
        if let Some((cfg, every)) = self.fine_tune.clone()
            && self.seen.is_multiple_of(every)
            && self.rows.len() == self.cap
        {
            self.fine_tune_now(&cfg);
        }
        if let Some(r) = self.refit.as_mut()
            && self.seen.is_multiple_of(r.every)
            && self.rows.len() >= r.steps
        {
            r.done += 1;
            let RefitSchedule { steps, epochs, done, .. } = *r;
            self.refit_now(steps, epochs, done);
        }
    }

    fn observe_demand(&mut self, memory_gib: f64, network_gbps: f64) {
        (self.memory_gib, self.network_gbps) = (memory_gib, network_gbps);
    }

    fn other_targets(&self) -> &[Signal] {
        &self.others
    }

    fn forecast(&self, horizon: usize) -> Result<Forecast, NotEnoughHistory> {
        Ok(self.forecasts(horizon)?.swap_remove(0))
    }

    fn forecast_all(&self, horizon: usize) -> Result<Vec<Forecast>, NotEnoughHistory> {
        self.forecasts(horizon)
    }

    fn after_forecast(&mut self, fc: &Forecast) {
        self.last_one_step = fc.mean.first().copied();
    }

    fn after_forecast_all(&mut self, all: &[Forecast]) {
        self.last_one_step = all.first().and_then(|f| f.mean.first().copied());
        self.last_others = all.iter().skip(1).map(|f| f.mean.first().copied().unwrap_or(f64::NAN)).collect();
    }

    fn take_update(&mut self) -> Option<(f64, f64)> {
        self.update.take()
    }
}

/// Mean absolute one-step error (requests per second) of `model`'s point forecast over normalised windows.
pub fn evaluate_mae(model: &Model, w: &Windows) -> f64 {
    if w.n == 0 {
        return f64::NAN;
    }
    let spec = &model.card.spec;
    let (x, y) = tensors(w, spec, model.vs.device());
    tch::no_grad(|| {
        let p = point(&model.net.forward(&x), &spec.output).select(1, 0);
        let abs = super::model::per_window_level((p - y.select(1, 0)).abs(), model, w);
        abs.mean(Kind::Float).double_value(&[]) * model.card.normalisation.sd
    })
}

/// `steps` full-batch optimiser steps on `w` (online fine-tuning).
///
/// # Errors
/// A non-finite loss: the weights are restored to what they were before the call.
pub fn fit_steps(model: &Model, opt: &mut nn::Optimizer, w: &Windows, steps: u32) -> Result<(), u32> {
    let spec = &model.card.spec;
    let (x, y) = tensors(w, spec, model.vs.device());
    let before = snapshot(&model.vs);
    for s in 1..=steps {
        let l = loss(&model.net.forward(&x), &y, &spec.output);
        if !l.double_value(&[]).is_finite() {
            restore(&model.vs, &before);
            return Err(s);
        }
        opt.backward_step(&l);
    }
    Ok(())
}
