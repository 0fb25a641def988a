//! Forecast cloning, end to end: frames from a demand series, windows, training, and the test part's MAE and
//! MASE per horizon. Front ends (`prescale train`, `forecast-eval`, notebooks) call these and only add files
//! and progress bars.

use prescale_sim::demand::DemandSeries;
use tch::Kind;

use super::data::{Frames, Normaliser, Norms, Split, Windows, windows};
use super::fit::{EpochRow, FitReport, TrainingConfig, evaluate, fit, point};
use super::model::{FitSummary, Model, ModelCard, Task};
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
                Input::ReadyCapacity | Input::PendingCapacity | Input::Backlog => unreachable!("refused above"),
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
    let mut model = Model::seeded(c, training.seed, device);
    let result = fit(&model.vs, &model.net, spec, &wt, &wv, training, on_epoch);
    let (report, stopped) = match result {
        Ok(r) => (r, None),
        Err(e) => (e.report.clone(), Some(e.to_string())),
    };
    model.card.fit = FitSummary::from(&report);
    model.card.fit.stopped = stopped.clone();
    if device != tch::Device::Cpu {
        model.vs.set_device(tch::Device::Cpu);
        model = Model::rebuilt(model);
    }
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
