use super::*;
use crate::neural::data::{Normaliser, Norms};
use crate::neural::fit::TrainingConfig;
use crate::neural::spec::{Architecture, Input, Level, ModelSpec};

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
