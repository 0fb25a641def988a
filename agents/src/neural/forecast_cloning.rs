//! Forecast cloning, end to end: frames from a demand series, windows, training, and the test part's MAE and
//! MASE per horizon. Front ends (`prescale train`, `forecast-eval`, notebooks) call these and only add files
//! and progress bars.

use prescale_sim::demand::DemandSeries;
use serde::Serialize;
use tch::Kind;

use super::data::series_floor;
use super::data::{Frames, Normaliser, Norms, Split, Windows, windows};
pub use super::facts::LabelledSeries;
use super::fit::{EpochRow, FitReport, TrainingConfig, evaluate, fit, point};
use super::model::{FitSummary, Model, ModelCard, Task, per_window_level};
use super::spec::{Input, ModelSpec, Signal, calendar};

/// Training failed: a non-finite loss (the model holds the last good weights) or bad data.
pub enum LearnError {
    /// The loss became non-finite; the model with the last good weights and the message.
    NonFinite(Box<Model>, String),
    /// The data cannot train this spec (too short, etc.).
    Data(String),
}

/// A demand series' values of `signal` per step, if the workload states it (the rate always).
pub fn signal_series(demand: &DemandSeries, signal: Signal) -> Option<&[f64]> {
    match signal {
        Signal::Rate => Some(&demand.rate_per_s),
        Signal::Memory => demand.memory_gib.as_deref(),
        Signal::Network => demand.network_gbps.as_deref(),
    }
}

/// Per-step frames of a demand series for a forecasting spec (state inputs are refused): the inputs, and
/// each target of the spec per step.
///
/// # Errors
/// A spec that asks for cluster-state inputs, or for a signal the workload does not state (memory or network
/// demand without a trace column for it).
pub fn forecast_frames(spec: &ModelSpec, demand: &DemandSeries) -> Result<Frames, String> {
    if let Some(i) = spec.inputs.iter().find(|i| i.is_state()) {
        return Err(format!("input {i:?} is cluster state; a forecasting model sees demand and calendar only"));
    }
    let series = |s: Signal| {
        signal_series(demand, s).ok_or_else(|| {
            format!(
                "the model sees {s:?}, but the workload states no {s:?} demand (a trace column with meaning \
                 Utilisation(resource: {s:?}, ...))"
            )
        })
    };
    let memory = spec.column_of(Signal::Memory).map(|_| series(Signal::Memory)).transpose()?;
    let network = spec.column_of(Signal::Network).map(|_| series(Signal::Network)).transpose()?;
    let targets: Vec<&[f64]> = spec.targets.iter().map(|s| series(*s)).collect::<Result<_, _>>()?;
    let mut f = Frames { width: spec.width(), ..Frames::default() };
    for (k, y) in demand.rate_per_s.iter().enumerate() {
        let cal = calendar(demand.start_unix_s + (k + 1) as f64 * demand.step_s);
        for input in &spec.inputs {
            match input {
                Input::Rate => f.inputs.push(*y),
                Input::TimeOfDay => f.inputs.extend([cal[0] as f64, cal[1] as f64]),
                Input::DayOfWeek => f.inputs.extend([cal[2] as f64, cal[3] as f64]),
                Input::Memory => f.inputs.push(memory.expect("looked up above")[k]),
                Input::Network => f.inputs.push(network.expect("looked up above")[k]),
                Input::ReadyCapacity | Input::PendingCapacity | Input::Backlog | Input::LogBacklog => {
                    unreachable!("refused above")
                }
            }
        }
        f.target.extend(targets.iter().map(|t| t[k]));
    }
    Ok(f)
}

/// Mean absolute error per output row (horizon-major, then target; in each target's unit: requests per
/// second, GiB, Gbit/s) of `model`'s point forecast over `w`.
pub fn mae_per_horizon(model: &Model, w: &Windows) -> Vec<f64> {
    let spec = &model.card.spec;
    let rows = spec.output_rows() as i64;
    if w.n == 0 {
        return vec![f64::NAN; rows as usize];
    }
    let x = tch::Tensor::from_slice(&w.x).view([w.n as i64, spec.window_steps as i64, spec.width() as i64]);
    let y = tch::Tensor::from_slice(&w.y).view([w.n as i64, rows]);
    let e = tch::no_grad(|| {
        let abs = (point(&model.net.forward(&x), &spec.output) - y).abs();
        per_window_level(abs, model, w).mean_dim(0, false, Kind::Float)
    });
    let sd: Vec<f64> = model.card.norms().rows(spec).into_iter().map(|(_, sd)| sd).collect();
    Vec::<f32>::try_from(&e).expect("floats").iter().zip(sd).map(|(v, sd)| *v as f64 * sd).collect()
}

/// A fresh network for `card` (weights from the training seed) fitted on `wt` (early stopping on `wv`) on
/// `device`, its fit summary in the card, back on the CPU: the model, the report, and why it stopped if the
/// loss became non-finite (the model then holds the last good weights).
fn fit_new(
    card: ModelCard,
    spec: &ModelSpec,
    wt: &Windows,
    wv: &Windows,
    training: &TrainingConfig,
    device: tch::Device,
    on_epoch: &mut dyn FnMut(&EpochRow),
) -> (Model, FitReport, Option<String>) {
    let mut model = Model::seeded(card, training.seed, device);
    let (report, stopped) = match fit(&model.vs, &model.net, spec, wt, wv, training, on_epoch) {
        Ok(r) => (r, None),
        Err(e) => (e.report.clone(), Some(e.to_string())),
    };
    model.card.fit = FitSummary::from(&report);
    model.card.fit.stopped = stopped.clone();
    if device != tch::Device::Cpu {
        model.vs.set_device(tch::Device::Cpu);
        model = Model::rebuilt(model);
    }
    (model, report, stopped)
}

/// The in-sample seasonal-naive MAE (lag `m`) of `ys`: the MASE scale of Hyndman & Koehler (2006).
pub fn mase_scale(ys: &[f64], m: usize) -> f64 {
    let m = m.max(1);
    if ys.len() <= m {
        return f64::NAN;
    }
    ys.iter().skip(m).zip(ys).map(|(a, b)| (a - b).abs()).sum::<f64>() / (ys.len() - m) as f64
}

/// A trained forecaster and how it did.
pub struct Forecaster {
    /// The model (card filled but for hashes).
    pub model: Model,
    /// The training report.
    pub fit: FitReport,
}

/// Forecast cloning: trains `spec` on `demand` (time-ordered split, normalisation on the training part only),
/// and measures the test period: MAE per horizon and MASE (scale: seasonal naive over one day, in sample).
///
/// # Errors
/// Bad data or a non-finite loss.
pub fn train_forecaster(
    name: &str,
    spec: &ModelSpec,
    demand: &DemandSeries,
    source: &str,
    split: &Split,
    training: &TrainingConfig,
    on_epoch: &mut dyn FnMut(&EpochRow),
) -> Result<Forecaster, LearnError> {
    let ranges = split.ranges(demand.steps());
    let mut f = fit_forecaster(name, spec, demand, source, ranges, training, true, on_epoch)?;
    f.model.card.data.split = [split.train, split.validation, 1.0 - split.train - split.validation];
    Ok(f)
}

/// Like [`train_forecaster`], on explicit step ranges `[train, validation, test]` (rolling-origin
/// evaluations train on everything before the first origin). With `need_test`, a test part too short for one
/// window is an error; otherwise its metrics are NaN.
///
/// # Errors
/// Bad data or a non-finite loss.
#[allow(clippy::too_many_arguments)]
pub fn fit_forecaster(
    name: &str,
    spec: &ModelSpec,
    demand: &DemandSeries,
    source: &str,
    [tr, va, te]: [std::ops::Range<usize>; 3],
    training: &TrainingConfig,
    need_test: bool,
    on_epoch: &mut dyn FnMut(&EpochRow),
) -> Result<Forecaster, LearnError> {
    let frames = forecast_frames(spec, demand).map_err(LearnError::Data)?;
    let n = frames.steps();
    let h = spec.horizon_steps as usize;
    let raw = Normaliser::fit(&frames.target_series(0, tr.clone()));
    let norms = Norms::fit(spec, raw, &frames, tr.clone());
    let cut = |r: &std::ops::Range<usize>| windows(&frames, spec, &norms, 1, Split::ends(r, 1, h));
    let (wt, wv, ws) = (cut(&tr), cut(&va), cut(&te));
    if wt.n == 0 || wv.n == 0 || (need_test && ws.n == 0) {
        return Err(LearnError::Data(format!(
            "{source}: {n} steps give {} training, {} validation and {} test windows of {} + {h} steps; every part \
             needs at least one (a longer series or a shorter window)",
            wt.n, wv.n, ws.n, spec.window_steps
        )));
    }
    let device = training.device.device().map_err(LearnError::Data)?;
    let mut c = ModelCard::new(name, Task::Forecast, spec, demand.step_s, norms, training);
    (c.data.target_mean_per_s, c.data.target_sd_per_s) = (raw.mean, raw.sd);
    c.data.source = source.into();
    c.data.steps = n;
    c.data.series = 1;
    c.data.split = [tr.len() as f64 / n as f64, va.len() as f64 / n as f64, te.len() as f64 / n as f64];
    c.data.windows = [wt.n, wv.n, ws.n];
    let (mut model, report, stopped) = fit_new(c, spec, &wt, &wv, training, device, on_epoch);
    let mae = mae_per_horizon(&model, &ws);
    let m = ((86_400.0 / demand.step_s).round() as usize).max(1);
    let test_loss = evaluate(&model.net, spec, &ws, tch::Device::Cpu);
    let met = &mut model.card.metrics;
    met.insert("validation_loss".into(), report.best_validation_loss);
    met.insert("test_loss".into(), test_loss);
    // Per target: the rate's figures keep their names (`test_mae_h1_per_s`, `test_mase_h1`); another
    // target's carry its name and unit (`test_mae_h1_memory_gib`, `test_mase_h1_memory`).
    let nt = spec.targets.len();
    for (t, signal) in spec.targets.iter().enumerate() {
        let scale = mase_scale(&frames.target_series(t, tr.clone()), m);
        let lower = format!("{signal:?}").to_lowercase();
        let (name, unit) = match signal {
            Signal::Rate => (String::new(), "per_s".to_string()),
            s => (format!("_{lower}"), format!("{lower}_{}", s.unit())),
        };
        let (first, last) = (mae[t], mae[(h - 1) * nt + t]);
        met.insert(format!("test_mae_h1_{unit}"), first);
        met.insert(format!("test_mae_h{h}_{unit}"), last);
        met.insert(format!("mase_scale_{unit}"), scale);
        met.insert(format!("test_mase_h1{name}"), first / scale);
        met.insert(format!("test_mase_h{h}{name}"), last / scale);
    }
    match stopped {
        Some(msg) => Err(LearnError::NonFinite(Box::new(model), msg)),
        None => Ok(Forecaster { model, fit: report }),
    }
}

/// How a model trained across series did on one of them: its own test part (the last fraction the split
/// leaves), in the series' own unit, and its MASE against the series' in-sample seasonal naive (one day).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SeriesFit {
    /// File and column.
    pub label: String,
    /// Steps in the series.
    pub steps: usize,
    /// Its grid interval, seconds.
    pub step_s: f64,
    /// Training, validation and test windows it gave.
    pub train_windows: usize,
    /// See `train_windows`.
    pub validation_windows: usize,
    /// See `train_windows`.
    pub test_windows: usize,
    /// Test MAE one step ahead, the series' unit.
    pub test_mae_h1: f64,
    /// Test MAE at the last horizon, the series' unit.
    pub test_mae_last: f64,
    /// `test_mae_h1` over the MASE scale (NaN for a series shorter than a day and a step).
    pub test_mase_h1: f64,
    /// `test_mae_last` over the MASE scale.
    pub test_mase_last: f64,
}

/// A model trained across series and how it did on each.
pub struct GlobalForecaster {
    /// The model and its training report; the card's `test_mase_h1` / `test_mase_h{H}` are means over the
    /// series that have one.
    pub forecaster: Forecaster,
    /// Per series, in the order given.
    pub series: Vec<SeriesFit>,
}

/// The window-level floor a model trained across series keeps in its card: no one series' floor fits the
/// others, so the card's is tiny in any unit and only an idle window (mean below it) is floored at inference.
/// Training cuts each series' windows at its own floor ([`series_floor`]), so no training target is a ratio to
/// a near-zero level.
pub const GLOBAL_LEVEL_FLOOR: f64 = 1e-9;

/// The share of a series' mean below which a model trained across series does not scale a window while it
/// learns: intermittent series (mostly zeros, such as requests per 5 minutes of a rarely used service, or disk
/// writes) otherwise give bursts thousands of times their window's level, which swamp the loss of every other
/// series. Measured on the shared traces: with 0.1 % the validation loss of a 21-series GRU rose from the first
/// epoch on; with 5 % it falls. The same share as a single-series model's ([`super::data::WINDOW_FLOOR_SHARE`]).
pub const GLOBAL_TRAINING_FLOOR_SHARE: f64 = super::data::WINDOW_FLOOR_SHARE;

/// A global forecaster: one network trained on the windows of every series in `series` together, each series
/// split in time by `split` (its own first part trains, the next stops early, the last tests) and scaled by
/// each window's own level (`spec.level` must be [`Level::Window`](super::spec::Level::Window): series of
/// requests per second, CPU percentages and bytes share one network only as ratios to their recent level);
/// the ratio normalisation is fitted on the pooled training windows. The card may be used at any step
/// (`any_step`): the network reads `window_steps` steps, whatever their length. Targets: the rate only. With
/// `max_windows_per_series`, each series gives at most that many training windows and the same share of
/// validation windows (`split.validation / split.train` of it), a seeded sample: long or fine-grained series
/// then weigh no more than the others.
///
/// # Errors
/// A spec this cannot train (global level, other targets, memory or network inputs), a series too short to
/// give a training and a validation window (named), or a non-finite loss.
pub fn train_global_forecaster(
    name: &str,
    spec: &ModelSpec,
    series: &[LabelledSeries],
    split: &Split,
    training: &TrainingConfig,
    max_windows_per_series: Option<usize>,
    on_epoch: &mut dyn FnMut(&EpochRow),
) -> Result<GlobalForecaster, LearnError> {
    use super::spec::Level;
    if spec.level != Level::Window {
        return Err(LearnError::Data(
            "a model across series needs model.level: Window (each series scaled by its own recent level); with \
             Global, series in different units would share one mean and deviation"
                .into(),
        ));
    }
    if spec.targets != [Signal::Rate] || spec.inputs.iter().any(|i| matches!(i, Input::Memory | Input::Network)) {
        return Err(LearnError::Data(
            "a model across series forecasts each series' own values (targets [Rate], no Memory or Network input)"
                .into(),
        ));
    }
    if series.is_empty() {
        return Err(LearnError::Data("no series to learn from".into()));
    }
    let h = spec.horizon_steps as usize;
    // Per series: frames, step ranges and the window unit at the series' own floor.
    struct Part {
        frames: Frames,
        ranges: [std::ops::Range<usize>; 3],
        floor: Normaliser,
    }
    let mut parts = Vec::with_capacity(series.len());
    let mut ratios = Vec::new();
    for s in series {
        let frames = forecast_frames(spec, &s.demand).map_err(|e| LearnError::Data(format!("{}: {e}", s.label)))?;
        let ranges = split.ranges(frames.steps());
        let raw = Normaliser::fit(&frames.target_series(0, ranges[0].clone()));
        let floor = series_floor(raw.mean);
        let w = windows(&frames, spec, &Norms::from(floor), 1, Split::ends(&ranges[0], 1, h));
        ratios.extend(w.y.iter().map(|v| *v as f64));
        parts.push(Part { frames, ranges, floor });
    }
    let pooled = Normaliser::fit(&ratios);
    let card_norm = Normaliser { level_floor_per_s: Some(GLOBAL_LEVEL_FLOOR), ..pooled };
    let (mut wt, mut wv) = (Windows::default(), Windows::default());
    let mut tests = Vec::with_capacity(parts.len());
    for (i, (s, part)) in series.iter().zip(&parts).enumerate() {
        let norms = Norms::from(Normaliser { level_floor_per_s: part.floor.level_floor_per_s, ..pooled });
        let cut = |r: &std::ops::Range<usize>| windows(&part.frames, spec, &norms, 1, Split::ends(r, 1, h));
        let (mut t, mut v, te) = (cut(&part.ranges[0]), cut(&part.ranges[1]), cut(&part.ranges[2]));
        if let Some(cap) = max_windows_per_series {
            let seed = training.seed ^ (i as u64) << 32;
            t = t.sample(cap, seed);
            v = v.sample(((cap as f64 * split.validation / split.train).ceil() as usize).max(1), seed ^ 1);
        }
        if t.n == 0 || v.n == 0 {
            return Err(LearnError::Data(format!(
                "{}: {} steps give {} training and {} validation windows of {} + {h} steps; every series needs at \
                 least one of each (a longer series or a shorter window)",
                s.label,
                part.frames.steps(),
                t.n,
                v.n,
                spec.window_steps
            )));
        }
        wt.extend(&t);
        wv.extend(&v);
        tests.push((t.n, v.n, te));
    }
    let device = training.device.device().map_err(LearnError::Data)?;
    let mut c = ModelCard::new(name, Task::Forecast, spec, series[0].demand.step_s, card_norm, training);
    (c.data.target_mean_per_s, c.data.target_sd_per_s) = (pooled.mean, pooled.sd);
    c.any_step = true;
    c.data.source = series.iter().map(|s| s.label.as_str()).collect::<Vec<_>>().join("; ");
    c.data.steps = parts.iter().map(|p| p.frames.steps()).sum();
    c.data.series = series.len();
    c.data.split = [split.train, split.validation, 1.0 - split.train - split.validation];
    c.data.windows = [wt.n, wv.n, tests.iter().map(|t| t.2.n).sum()];
    let (mut model, report, stopped) = fit_new(c, spec, &wt, &wv, training, device, on_epoch);
    let mut fits = Vec::with_capacity(series.len());
    for ((s, part), (tn, vn, te)) in series.iter().zip(&parts).zip(&tests) {
        let mae = mae_per_horizon(&model, te);
        let m = ((86_400.0 / s.demand.step_s).round() as usize).max(1);
        let scale = mase_scale(&part.frames.target_series(0, part.ranges[0].clone()), m);
        fits.push(SeriesFit {
            label: s.label.clone(),
            steps: part.frames.steps(),
            step_s: s.demand.step_s,
            train_windows: *tn,
            validation_windows: *vn,
            test_windows: te.n,
            test_mae_h1: mae[0],
            test_mae_last: mae[h - 1],
            test_mase_h1: mae[0] / scale,
            test_mase_last: mae[h - 1] / scale,
        });
    }
    let mean = |f: fn(&SeriesFit) -> f64| {
        let xs: Vec<f64> = fits.iter().map(f).filter(|x| x.is_finite()).collect();
        if xs.is_empty() { f64::NAN } else { xs.iter().sum::<f64>() / xs.len() as f64 }
    };
    let met = &mut model.card.metrics;
    met.insert("validation_loss".into(), report.best_validation_loss);
    met.insert("test_mase_h1".into(), mean(|f| f.test_mase_h1));
    met.insert(format!("test_mase_h{h}"), mean(|f| f.test_mase_last));
    met.insert("series_with_test_mase".into(), fits.iter().filter(|f| f.test_mase_h1.is_finite()).count() as f64);
    match stopped {
        Some(msg) => Err(LearnError::NonFinite(Box::new(model), msg)),
        None => Ok(GlobalForecaster { forecaster: Forecaster { model, fit: report }, series: fits }),
    }
}

#[cfg(test)]
mod tests;
