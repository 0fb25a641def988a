//! Forecast cloning, end to end: frames from a demand series, windows, training, and the test part's MAE and
//! MASE per horizon. Front ends (`prescale train`, `forecast-eval`, notebooks) call these and only add files
//! and progress bars.

use prescale_sim::demand::DemandSeries;
use serde::Serialize;
use tch::Kind;

use super::data::series_floor;
use super::data::{Frames, Normaliser, Norms, Split, Windows, windows};
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

/// One series of a model trained across several (a global model): a label for tables and its demand.
pub struct LabelledSeries {
    /// File and column, as the training file names it.
    pub label: String,
    /// The values on their grid (`rate_per_s` holds the series, whatever its unit).
    pub demand: DemandSeries,
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
/// Training cuts each series' windows at its own floor ([`series_floor`](super::data::series_floor)), so no training target is a ratio to
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
mod tests {
    use super::*;
    use crate::neural::spec::{Architecture, Level, OutputKind};

    /// Hourly steps with a daily shape and a little deterministic noise, whose level triples from step
    /// `shift` on.
    fn series(steps: usize, shift: usize) -> DemandSeries {
        let rate_per_s = (0..steps)
            .map(|k| {
                let level = if k >= shift { 300.0 } else { 100.0 };
                let day = (std::f64::consts::TAU * k as f64 / 24.0).sin();
                let noise = 0.03 * ((k as f64 * 12.9898).sin() * 43_758.545).fract();
                level * (1.0 + 0.4 * day + noise)
            })
            .collect();
        DemandSeries { step_s: 3600.0, rate_per_s, ..DemandSeries::default() }
    }

    fn fitted(level: Level, demand: &DemandSeries, split: &Split) -> Forecaster {
        let spec = ModelSpec {
            architecture: Architecture::Mlp { hidden: vec![32] },
            inputs: vec![Input::Rate],
            window_steps: 24,
            horizon_steps: 3,
            output: OutputKind::Point,
            level,
            targets: crate::neural::spec::default_targets(),
        };
        let training = TrainingConfig { max_epochs: 60, batch_size: 32, patience: 60, ..TrainingConfig::default() };
        match train_forecaster("t", &spec, demand, "synthetic", split, &training, &mut |_| {}) {
            Ok(f) => f,
            Err(_) => panic!("training failed"),
        }
    }

    /// A daily series of a memory demand with its own phase and base (a quarter day behind the rate, on 400
    /// GiB the rate does not have), so that it cannot be read off the rate.
    fn with_memory(mut d: DemandSeries) -> DemandSeries {
        let tau = std::f64::consts::TAU;
        d.memory_gib = Some((0..d.steps()).map(|k| 500.0 + 100.0 * (tau * (k as f64 - 6.0) / 24.0).sin()).collect());
        d
    }

    fn two_target_spec() -> ModelSpec {
        ModelSpec {
            architecture: Architecture::Mlp { hidden: vec![32] },
            inputs: vec![Input::Rate, Input::Memory, Input::TimeOfDay],
            window_steps: 24,
            horizon_steps: 3,
            output: OutputKind::Gaussian,
            level: Level::Global,
            targets: vec![Signal::Rate, Signal::Memory],
        }
    }

    /// A `[Rate, Memory]` model forecasts both signals, each in its own unit and normalisation, from one
    /// forward pass: its memory error is a small part of the memory's own spread, its rate error is like a
    /// rate-only model's, and as a predictor it gives the memory forecast beside the rate's.
    #[test]
    fn a_two_target_model_forecasts_rate_and_memory_each_in_its_unit() {
        let demand = with_memory(series(24 * 40, usize::MAX));
        let training = TrainingConfig { max_epochs: 80, batch_size: 32, patience: 80, ..TrainingConfig::default() };
        let split = Split { train: 0.6, validation: 0.2 };
        let Ok(f) = train_forecaster("m", &two_target_spec(), &demand, "synthetic", &split, &training, &mut |_| {})
        else {
            panic!("training failed")
        };
        let card = &f.model.card;
        let memory_norm = card.memory_normalisation.expect("the card keeps the memory's normalisation");
        assert!((memory_norm.mean - 500.0).abs() < 10.0 && (memory_norm.sd - 70.7).abs() < 5.0, "{memory_norm:?}");
        // The memory's mean absolute deviation is 100 · 2/π ≈ 64 GiB; the model is far better than its mean.
        let (mem_h1, mem_h3) = (card.metrics["test_mae_h1_memory_gib"], card.metrics["test_mae_h3_memory_gib"]);
        assert!(mem_h1 < 10.0 && mem_h3 < 10.0, "memory MAE {mem_h1} / {mem_h3} GiB");
        assert!(card.metrics["test_mase_h1_memory"].is_finite());
        let rate_only = fitted(Level::Global, &series(24 * 40, usize::MAX), &split);
        let (rate, alone) = (card.metrics["test_mae_h1_per_s"], rate_only.model.card.metrics["test_mae_h1_per_s"]);
        assert!(rate < 2.0 * alone + 1.0, "rate MAE {rate} with memory vs {alone} alone");

        // As a predictor: told the memory of each step, it forecasts both from one call (its first observed
        // step is `end - 30`, so its clock starts there).
        let end = demand.steps() - 5;
        let mut p = crate::neural::forecaster::NeuralForecaster::new(
            crate::neural::batch::ModelHandle::Own(Box::new(f.model)),
            (end - 30) as f64 * 3600.0,
            3600.0,
            None,
            None,
        );
        use crate::predictor::Predictor;
        assert_eq!(p.other_targets(), [Signal::Memory]);
        let (rates, memory) = (&demand.rate_per_s, demand.memory_gib.as_ref().expect("set"));
        for k in end - 30..end {
            p.observe_demand(memory[k], f64::NAN);
            p.observe(rates[k]);
        }
        let calls = p.model_calls();
        let all = p.forecast_all(3).expect("enough history");
        assert_eq!((all.len(), p.model_calls()), (2, calls + 1), "two forecasts, one forward pass");
        for h in 0..3 {
            let (m, sd) = (all[1].mean[h], all[1].sd[h]);
            assert!((m - memory[end + h]).abs() < 15.0, "h{}: memory {m} vs {}", h + 1, memory[end + h]);
            assert!(sd > 0.0 && sd < 50.0, "memory sd {sd} GiB");
            assert!((all[0].mean[h] - rates[end + h]).abs() < 30.0, "rate {} vs {}", all[0].mean[h], rates[end + h]);
        }
        assert_eq!(p.forecast(3).expect("enough history"), all[0], "the rate's forecast alone is the same");
    }

    /// A daily series at `level` with its own phase (hours) and step, a little deterministic noise.
    fn daily(level: f64, phase_h: f64, step_s: f64, days: usize, seed: f64) -> DemandSeries {
        let per_day = (86_400.0 / step_s) as usize;
        let rate_per_s = (0..days * per_day)
            .map(|k| {
                let t_h = k as f64 * step_s / 3600.0;
                let day = (std::f64::consts::TAU * (t_h - phase_h) / 24.0).sin();
                let noise = 0.03 * ((k as f64 * 12.9898 + seed).sin() * 43_758.545).fract();
                level * (1.0 + 0.5 * day + noise)
            })
            .collect();
        DemandSeries { step_s, rate_per_s, ..DemandSeries::default() }
    }

    /// One network trained across series in units four orders of magnitude apart and at two steps learns each
    /// (every series' test MASE under the seasonal naive's 1, its error in the series' own unit), and forecasts a
    /// third series it never saw, at another level and phase, about as well as a network trained on that series
    /// alone. A global level across series is refused.
    #[test]
    fn a_global_model_learns_series_of_any_scale_and_forecasts_a_new_one() {
        let spec = ModelSpec {
            architecture: Architecture::Mlp { hidden: vec![32] },
            inputs: vec![Input::Rate],
            window_steps: 24,
            horizon_steps: 3,
            output: OutputKind::Point,
            level: Level::Window,
            targets: crate::neural::spec::default_targets(),
        };
        let series = vec![
            LabelledSeries { label: "small".into(), demand: daily(0.05, 0.0, 3600.0, 30, 1.0) },
            LabelledSeries { label: "large".into(), demand: daily(800.0, 5.0, 1800.0, 15, 2.0) },
        ];
        let split = Split { train: 0.7, validation: 0.15 };
        let training = TrainingConfig { max_epochs: 60, batch_size: 32, patience: 60, ..TrainingConfig::default() };
        let Ok(g) = train_global_forecaster("g", &spec, &series, &split, &training, None, &mut |_| {}) else {
            panic!("training failed")
        };
        let card = &g.forecaster.model.card;
        assert!(card.any_step && card.data.series == 2, "{:?}", card.data);
        assert_eq!(card.normalisation.level_floor_per_s, Some(GLOBAL_LEVEL_FLOOR));
        // Better than the seasonal naive on each (whose error here is the day-to-day noise), in each series'
        // own unit: the MAE a small part of the level (0.05 and 800).
        for (f, level) in g.series.iter().zip([0.05, 800.0]) {
            assert!(f.test_windows > 0 && f.test_mase_h1 < 1.0, "{f:?}");
            assert!(f.test_mae_h1 < 0.03 * level, "{f:?}");
        }

        // A series it never saw, at 30 000 and with its own phase: its forecast one step ahead over the last
        // 15 %, against a network trained on the first 70 % of that series alone.
        let new = daily(30_000.0, 9.0, 1800.0, 15, 3.0);
        let alone = fitted(Level::Window, &new, &split);
        let frames = forecast_frames(&spec, &new).expect("frames");
        let [_, _, te] = split.ranges(new.steps());
        let w = windows(&frames, &spec, &g.forecaster.model.card.norms(), 1, Split::ends(&te, 1, 3));
        let zero_shot = mae_per_horizon(&g.forecaster.model, &w)[0];
        let own = alone.model.card.metrics["test_mae_h1_per_s"];
        assert!(zero_shot < 0.03 * 30_000.0, "zero-shot MAE {zero_shot} at a level of 30 000");
        assert!(zero_shot < 1.5 * own, "zero-shot MAE {zero_shot} vs {own} trained on the series");

        let global = ModelSpec { level: Level::Global, ..spec };
        let Err(LearnError::Data(e)) =
            train_global_forecaster("g", &global, &series, &split, &training, None, &mut |_| {})
        else {
            panic!("a global level across series was accepted")
        };
        assert!(e.contains("level: Window"), "{e}");
    }

    /// A model that sees the memory demand cannot learn from a workload that states none: the error says so.
    #[test]
    fn a_memory_input_needs_a_stated_memory_demand() {
        let Err(e) = forecast_frames(&two_target_spec(), &series(100, usize::MAX)) else { panic!("accepted") };
        assert!(e.contains("Memory") && e.contains("states no"), "{e}");
    }

    /// Trained at one level and tested at three times it, the window-level model forecasts the test period
    /// far better than the global one, whose inputs lie outside anything it was trained on; the card still
    /// states the training target's mean and deviation in requests per second.
    #[test]
    fn a_window_level_survives_a_level_shift_the_global_one_does_not() {
        let split = Split { train: 0.5, validation: 0.15 };
        let demand = series(24 * 30, (24.0 * 30.0 * 0.65) as usize);
        let (g, w) = (fitted(Level::Global, &demand, &split), fitted(Level::Window, &demand, &split));
        let mae = |f: &Forecaster| f.model.card.metrics["test_mae_h1_per_s"];
        assert!(mae(&w) < 0.3 * mae(&g), "window level {} vs global {} requests/s", mae(&w), mae(&g));
        assert_eq!(g.model.card.data.target_mean_per_s, w.model.card.data.target_mean_per_s);
        assert!(w.model.card.normalisation.level_floor_per_s.is_some_and(|f| f > 0.0));
        assert!((w.model.card.normalisation.mean - 1.0).abs() < 0.1, "ratios average about 1");
        // Without the shift the two are alike: the window level costs nothing on a stationary series.
        let flat = series(24 * 30, usize::MAX);
        let (g, w) = (fitted(Level::Global, &flat, &split), fitted(Level::Window, &flat, &split));
        assert!(mae(&w) < 2.0 * mae(&g) + 1.0, "window level {} vs global {} requests/s", mae(&w), mae(&g));
    }
}
