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
    let Ok(f) = train_forecaster("m", &two_target_spec(), &demand, "synthetic", &split, &training, &mut |_| {}) else {
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
    let Err(LearnError::Data(e)) = train_global_forecaster("g", &global, &series, &split, &training, None, &mut |_| {})
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
