//! Forecast cloning, end to end: frames from a demand series, windows, training, and the test part's MAE and
//! MASE per horizon. Front ends (`prescale train`, `forecast-eval`, notebooks) call these and only add files
//! and progress bars.

use prescale_sim::demand::DemandSeries;
use tch::Kind;

use super::data::{Frames, Normaliser, Split, Windows, windows};
use super::fit::{EpochRow, FitReport, TrainingConfig, evaluate, fit, point};
use super::model::{FitSummary, Model, ModelCard, Task};
use super::spec::{Input, ModelSpec, calendar};

/// Training failed: a non-finite loss (the model holds the last good weights) or bad data.
pub enum LearnError {
    /// The loss became non-finite; the model with the last good weights and the message.
    NonFinite(Box<Model>, String),
    /// The data cannot train this spec (too short, etc.).
    Data(String),
}

/// Per-step frames of a demand series for a forecasting spec (state inputs are refused).
///
/// # Errors
/// A spec that asks for cluster-state inputs.
pub fn forecast_frames(spec: &ModelSpec, demand: &DemandSeries) -> Result<Frames, String> {
    if let Some(i) = spec.inputs.iter().find(|i| i.is_state()) {
        return Err(format!("input {i:?} is cluster state; a forecasting model sees demand and calendar only"));
    }
    let mut f = Frames { width: spec.width(), ..Frames::default() };
    for (k, y) in demand.rate_per_s.iter().enumerate() {
        let cal = calendar(demand.start_unix_s + (k + 1) as f64 * demand.step_s);
        for input in &spec.inputs {
            match input {
                Input::Rate => f.inputs.push(*y),
                Input::TimeOfDay => f.inputs.extend([cal[0] as f64, cal[1] as f64]),
                Input::DayOfWeek => f.inputs.extend([cal[2] as f64, cal[3] as f64]),
                _ => unreachable!("refused above"),
            }
        }
        f.target.push(*y);
    }
    Ok(f)
}

/// Mean absolute error (requests per second) per horizon of `model`'s point forecast over `w`.
pub fn mae_per_horizon(model: &Model, w: &Windows) -> Vec<f64> {
    let spec = &model.card.spec;
    let h = spec.horizon_steps as i64;
    if w.n == 0 {
        return vec![f64::NAN; h as usize];
    }
    let x = tch::Tensor::from_slice(&w.x).view([w.n as i64, spec.window_steps as i64, spec.width() as i64]);
    let y = tch::Tensor::from_slice(&w.y).view([w.n as i64, h]);
    let e = tch::no_grad(|| {
        let abs = (point(&model.net.forward(&x), &spec.output) - y).abs();
        per_window_level(abs, model, w).mean_dim(0, false, Kind::Float)
    });
    Vec::<f32>::try_from(&e).expect("floats").iter().map(|v| *v as f64 * model.card.normalisation.sd).collect()
}

/// Errors `[n, …]` in normalised units, times each window's level when the model scales by it (so that times
/// `sd` they are requests per second); unchanged otherwise.
pub fn per_window_level(e: tch::Tensor, model: &Model, w: &Windows) -> tch::Tensor {
    if model.card.normalisation.level_floor_per_s.is_none() {
        return e;
    }
    let level = tch::Tensor::from_slice(&w.level).to_device(e.device());
    let shape: Vec<i64> = std::iter::once(w.n as i64).chain(std::iter::repeat_n(1, e.dim() - 1)).collect();
    e * level.view(shape.as_slice())
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
    let raw = Normaliser::fit(&frames.target[tr.clone()]);
    let norm = Normaliser::fit_for(spec, raw, |unit| windows(&frames, spec, unit, 1, Split::ends(&tr, 1, h)));
    let cut = |r: &std::ops::Range<usize>| windows(&frames, spec, &norm, 1, Split::ends(r, 1, h));
    let (wt, wv, ws) = (cut(&tr), cut(&va), cut(&te));
    if wt.n == 0 || wv.n == 0 || (need_test && ws.n == 0) {
        return Err(LearnError::Data(format!(
            "{source}: {n} steps give {} training, {} validation and {} test windows of {} + {h} steps; every part \
             needs at least one (a longer series or a shorter window)",
            wt.n, wv.n, ws.n, spec.window_steps
        )));
    }
    let device = training.device.device().map_err(LearnError::Data)?;
    tch::manual_seed(training.seed as i64);
    let mut c = ModelCard::new(name, Task::Forecast, spec, demand.step_s, norm, training);
    (c.data.target_mean_per_s, c.data.target_sd_per_s) = (raw.mean, raw.sd);
    c.data.source = source.into();
    c.data.steps = n;
    c.data.series = 1;
    c.data.split = [tr.len() as f64 / n as f64, va.len() as f64 / n as f64, te.len() as f64 / n as f64];
    c.data.windows = [wt.n, wv.n, ws.n];
    let mut model = Model::fresh(c, device);
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
    let scale = mase_scale(&frames.target[tr.clone()], m);
    let met = &mut model.card.metrics;
    met.insert("validation_loss".into(), report.best_validation_loss);
    met.insert("test_loss".into(), evaluate(&model.net, spec, &ws, tch::Device::Cpu));
    met.insert("test_mae_h1_per_s".into(), mae[0]);
    met.insert(format!("test_mae_h{h}_per_s"), mae[h - 1]);
    met.insert("mase_scale_per_s".into(), scale);
    met.insert("test_mase_h1".into(), mae[0] / scale);
    met.insert(format!("test_mase_h{h}"), mae[h - 1] / scale);
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
        };
        let training = TrainingConfig { max_epochs: 60, batch_size: 32, patience: 60, ..TrainingConfig::default() };
        match train_forecaster("t", &spec, demand, "synthetic", split, &training, &mut |_| {}) {
            Ok(f) => f,
            Err(_) => panic!("training failed"),
        }
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
