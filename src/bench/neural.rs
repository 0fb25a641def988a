//! The neural agents' costs: libtorch forward passes by batch size and torch calls per simulated step.

use anyhow::Result;

/// Neural agents: the cost of one libtorch forward pass of the demo's GRU (window 30, 6 horizons, Gaussian) by
/// batch size — what batching buys — and, over the 6,100-step NAB ELB test period, the torch calls per
/// simulated step and the time per decision of a neural predictor and of a BC policy (weights untrained: the
/// cost does not depend on them).
pub(super) fn costs() -> Result<Vec<String>> {
    use prescale_agents::neural::model::Model;
    use prescale_sim::scenario::ControllerSpec;
    let dir = tempfile_dir("prescale-bench-neural")?;
    let mut out = Vec::new();
    fresh_forecaster(&dir.join("gru"))?;
    let m = Model::load(&dir.join("gru"))?;
    // Forward cost by batch size.
    let per = 30 * m.card.spec.width();
    for batch in [1usize, 8, 64, 256] {
        let x: Vec<f32> = (0..batch * per).map(|i| 200.0 + (i % 17) as f32).collect();
        let reps = (2000 / batch).max(20);
        let _ = m.predict(&x, batch);
        let t0 = std::time::Instant::now();
        for _ in 0..reps {
            std::hint::black_box(m.predict(&x, batch));
        }
        let us = t0.elapsed().as_secs_f64() / reps as f64 * 1e6;
        out.push(format!(
            "GRU(32) forward, window 30, 6 horizons, batch {batch}: {us:.0} µs per call, {:.1} µs per window",
            us / batch as f64
        ));
    }
    fresh_policy(&dir.join("bc"))?;
    // Runs over the ELB test period (the demo's embedded inputs).
    let inputs = dir.join("inputs");
    crate::files::embedded::write_inputs(&inputs, |t| t.to_string())?;
    let scenario = inputs.join("scenarios/nab-elb-test.ron");
    let base = std::fs::read_to_string(&scenario)?;
    let hpa = "controller: ReferenceHpa(target_utilisation: 0.6, max_instances: 150),";
    for (label, controller) in [
        ("HPA (no torch)", hpa.to_string()),
        (
            "GRU + ACI (neural predictor)",
            format!(
                "controller: Predictive(predictor: Neural(model: \"{}\"), variance: AdaptiveConformal(alpha: 0.05), allocator: (target_utilisation: 0.6)),",
                dir.join("gru").display()
            ),
        ),
        ("BC policy", format!("controller: Bc(model: \"{}\"),", dir.join("bc").display())),
    ] {
        let text = base.replace(hpa, &controller);
        let loaded =
            crate::files::scenario_io::load_scenario_text(&scenario, &text).map_err(|d| anyhow::anyhow!("{}", d[0]))?;
        let p = loaded.prepare(1).map_err(|d| anyhow::anyhow!("{}", d[0]))?;
        // Driven step by step so that the controller's own count of forward passes can be read at the end.
        let t0 = std::time::Instant::now();
        let mut controller = p.config.controller.init(&p.init_context(1));
        let mut stepper = p.fluid_stepper(1);
        let mut steps = 0u64;
        while let Some(obs) = stepper.next_observation() {
            let d = controller.decide(&obs);
            stepper.decide(d, controller.diagnostics());
            steps += 1;
        }
        let _ = stepper.finish();
        let wall = t0.elapsed().as_secs_f64();
        let calls = controller.diagnostics().map_or(0, |d| d.model_calls);
        out.push(format!(
            "{label} on the ELB test period: {steps} steps, {calls} torch calls ({:.3} per simulated step), {wall:.3} s ({:.1} µs per step)",
            calls as f64 / steps as f64,
            wall / steps as f64 * 1e6
        ));
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(out)
}

/// The card of an untrained GRU(32) model (window 30, Gaussian output): the cost of a forward pass does not
/// depend on the weights.
fn bench_card(
    name: &str,
    inputs: Vec<prescale_agents::neural::spec::Input>,
    horizons: u32,
    task: prescale_agents::neural::model::Task,
) -> prescale_agents::neural::model::ModelCard {
    use prescale_agents::neural::spec::{Architecture, ModelSpec, OutputKind};
    let spec = ModelSpec {
        architecture: Architecture::Gru { hidden: 32, layers: 1 },
        inputs,
        window_steps: 30,
        horizon_steps: horizons,
        output: OutputKind::Gaussian,
        level: Default::default(),
        targets: prescale_agents::neural::spec::default_targets(),
    };
    let norm = prescale_agents::neural::data::Normaliser { mean: 200.0, sd: 100.0, level_floor_per_s: None };
    prescale_agents::neural::model::ModelCard::new(name, task, &spec, 60.0, norm, &Default::default())
}

/// Writes an untrained GRU(32) forecaster (rate and calendar in, 6 horizons; seed 1) to `dir`.
pub(super) fn fresh_forecaster(dir: &std::path::Path) -> Result<()> {
    use prescale_agents::neural::model::{Model, Task};
    use prescale_agents::neural::spec::Input;
    tch::manual_seed(1);
    let card = bench_card("bench-gru", vec![Input::Rate, Input::TimeOfDay, Input::DayOfWeek], 6, Task::Forecast);
    Model::fresh(card, tch::Device::Cpu).save(dir, &|_| Ok(()))?;
    Ok(())
}

/// Writes an untrained GRU(32) BC policy (rate, calendar, capacities and backlog in) to `dir`.
pub(super) fn fresh_policy(dir: &std::path::Path) -> Result<()> {
    use prescale_agents::neural::model::{Model, Task};
    use prescale_agents::neural::spec::Input;
    let inputs = vec![
        Input::Rate,
        Input::TimeOfDay,
        Input::DayOfWeek,
        Input::ReadyCapacity,
        Input::PendingCapacity,
        Input::Backlog,
    ];
    Model::fresh(bench_card("bench-bc", inputs, 1, Task::Policy), tch::Device::Cpu).save(dir, &|_| Ok(()))?;
    Ok(())
}

/// A fresh folder under the system's temporary directory.
pub(super) fn tempfile_dir(prefix: &str) -> Result<std::path::PathBuf> {
    let d = std::env::temp_dir().join(format!("{prefix}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d)?;
    Ok(d)
}
