//! Multi-resource learning: a policy that sees the stated memory learns the expert's memory floor.

use super::*;

/// A memory-bound service on a synthetic trace: 4 days at 5-minute rows, CPU swinging through the day (20–80 %
/// of 200 cores) while the memory stays high (80–90 % of 1,000 GiB, a quarter day out of phase), on general
/// (8 cores, 32 GiB) and memory-optimised (8 cores, 64 GiB) instances.
fn memory_scenario(dir: &Path, controller: &str) -> PathBuf {
    let mut csv = String::from("timestamp,cpu,mem\n");
    for k in 0..4 * 288 {
        let day = std::f64::consts::TAU * k as f64 / 288.0;
        let wobble = 0.02 * ((k as f64 * 12.9898).sin() * 43_758.545).fract();
        csv += &format!("{},{:.4},{:.4}\n", k * 300, 50.0 + 30.0 * day.sin() + 100.0 * wobble, 85.0 + 5.0 * day.cos());
    }
    std::fs::write(dir.join("mem-trace.csv"), csv).unwrap();
    let text = format!(
        r#"Scenario(
    name: "mem-test",
    seed: 1,
    step_s: 300,
    history_s: 86400,
    fidelity: Fluid,
    workload: Trace(
        path: "mem-trace.csv",
        metrics: [
            (column: "cpu", meaning: Utilisation(resource: Cpu, percent: true, reference_capacity: 200)),
            (column: "mem", meaning: Utilisation(resource: Memory, percent: true, reference_capacity: 1000)),
        ],
        policies: (timestamp_format: RelativeSeconds),
        slice: Fraction(from: 0.5, to: 1.0),
    ),
    service: (mean_service_s: 0.1, cores_per_request: 1.0, memory_gib_per_request: 0.05),
    cluster: (
        instance_types: [
            (name: "general", capacity: (cpu_cores: 8, memory_gib: 32), price_usd_per_hour: 0.384,
             provisioning_delay: Constant(s: 120), initial_count: 20, min_count: 1, max_count: 200),
            (name: "memory", capacity: (cpu_cores: 8, memory_gib: 64), price_usd_per_hour: 0.504,
             provisioning_delay: Constant(s: 120), initial_count: 10, min_count: 0, max_count: 200),
        ],
        scaling_type: "general",
    ),
    slo: (latency_quantile: 0.99, latency_threshold_s: 0.5),
    controller: {controller},
)
"#
    );
    let p = dir.join("mem-test.ron");
    std::fs::write(&p, text).unwrap();
    p
}

fn memory_train_file(dir: &Path, name: &str, model: &str) -> PathBuf {
    let text = format!(
        r#"Train(name: "{name}", scenario: "mem-test.ron", task: Forecast, slice: Fraction(from: 0.0, to: 0.5),
    model: (architecture: Mlp(hidden: [32]), window_steps: 12, horizon_steps: 2, output: Gaussian, {model}),
    training: (max_epochs: 60, batch_size: 32, learning_rate: 0.003, patience: 60, seed: 7))"#
    );
    let p = dir.join(format!("{name}.ron"));
    std::fs::write(&p, text).unwrap();
    p
}

/// BC policies and a stated memory: the hindsight expert knows it (its order never leaves the memory short: no
/// failed request), a policy that sees it (`inputs: [Memory, …]`) learns the expert's memory floor and turns far
/// fewer requests away than one that sees only the rate, and exports; the rate-only policy held to the stated
/// memory's floor (`resource_floor: true`) turns far fewer away too; a memory input with a window level, one on
/// a scenario that states no memory (training), and a memory policy or a floor on such a scenario (validation)
/// are refused at their paths.
#[test]
fn a_policy_that_sees_the_stated_memory_learns_the_experts_memory_floor() {
    let d = tempfile::tempdir().unwrap();
    // memory_scenario's CPU, but a memory that holds one of four levels (60–98 % of 1,000 GiB) for six hours at
    // a time, at random: nothing but the memory itself tells it.
    let mut csv = String::from("timestamp,cpu,mem\n");
    for k in 0..4 * 288u64 {
        let day = std::f64::consts::TAU * k as f64 / 288.0;
        let u = ((((k / 72) as f64 + 0.5) * 12.9898).sin() * 43_758.545).fract().abs();
        csv +=
            &format!("{},{:.4},{}\n", k * 300, 50.0 + 30.0 * day.sin(), [60.0, 75.0, 90.0, 98.0][(u * 4.0) as usize]);
    }
    let failed = |controller: &str, name: &str| {
        let s = memory_scenario(d.path(), controller);
        std::fs::write(d.path().join("mem-trace.csv"), &csv).unwrap();
        let out = d.path().join(format!("out-{name}"));
        let o = prescale(&["run", s.to_str().unwrap(), "--out", out.to_str().unwrap(), "--quiet"]);
        assert!(o.status.success(), "{}", text(&o).1);
        let run = std::fs::read_dir(out.join("mem-test")).unwrap().next().unwrap().unwrap().path();
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(run.join("summary.json")).unwrap()).unwrap();
        v["summary"]["failed_requests"].as_f64().unwrap()
    };
    assert_eq!(failed("HindsightExpert", "expert"), 0.0, "the expert covers the stated memory");
    let policy = |name: &str, inputs: &str, level: &str| {
        let text = format!(
            r#"Train(name: "{name}", scenario: "mem-test.ron", slice: Fraction(from: 0.0, to: 0.5),
    task: Imitate(seeds: [11], dagger: (rounds: 1, epochs_per_round: 4), act_quantile: Some(0.9)),
    model: (architecture: Gru(hidden: 16), inputs: {inputs}, window_steps: 12, horizon_steps: 1, output: Gaussian, level: {level}),
    training: (max_epochs: 20, batch_size: 64, learning_rate: 0.003, patience: 6, seed: 1))"#
        );
        let p = d.path().join(format!("{name}.ron"));
        std::fs::write(&p, text).unwrap();
        p
    };
    let rate = train(d.path(), &policy("bc-rate", "[Rate, ReadyCapacity, PendingCapacity, LogBacklog]", "Global"));
    let mem = train(d.path(), &policy("bc-mem", "[Memory, ReadyCapacity, PendingCapacity, LogBacklog]", "Global"));
    let bc = |m: &Path| format!("Bc(model: \"{}\", act_quantile: Some(0.9))", m.display());
    let (by_rate, by_memory) = (failed(&bc(&rate), "rate"), failed(&bc(&mem), "mem"));
    // Measured: 0 against 3.7 million.
    assert!(by_memory < 0.1 * by_rate, "failed requests: seeing the memory {by_memory}, the rate only {by_rate}");
    // The rate-only policy held to the stated memory's floor: short only while a new level's instances start.
    let floored = format!("Bc(model: \"{}\", act_quantile: Some(0.9), resource_floor: true)", rate.display());
    let by_floor = failed(&floored, "rate-floor");
    assert!(
        by_floor < 0.1 * by_rate,
        "failed requests: the rate-only policy with the floor {by_floor}, without {by_rate}"
    );
    let card: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(mem.join("card.json")).unwrap()).unwrap();
    let memory_mean = card["memory_normalisation"]["mean"].as_f64().unwrap();
    assert!((600.0..980.0).contains(&memory_mean), "memory normalisation mean {memory_mean} GiB");
    let o = prescale(&["export", mem.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o).1);

    // Refusals: a window level; a scenario without memory (training); a memory policy on it (validation).
    let o = prescale(&["validate", policy("bc-w", "[Memory, ReadyCapacity]", "Window").to_str().unwrap()]);
    assert!(text(&o).0.contains("model.inputs[0]: Memory: a policy sees a stated memory"), "{}", text(&o).0);
    let rate_only = scenario(d.path(), "HindsightExpert");
    let no_memory = policy("bc-none", "[Memory, ReadyCapacity]", "Global");
    std::fs::write(
        &no_memory,
        std::fs::read_to_string(&no_memory)
            .unwrap()
            .replace("mem-test.ron", rate_only.file_name().unwrap().to_str().unwrap())
            .replace(" slice: Fraction(from: 0.0, to: 0.5),", ""),
    )
    .unwrap();
    let o = prescale(&["train", no_memory.to_str().unwrap(), "--out", d.path().join("m").to_str().unwrap(), "--quiet"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o).1);
    assert!(
        text(&o).1.contains("model.inputs[0]: Memory:") && text(&o).1.contains("states no such demand"),
        "{}",
        text(&o).1
    );
    let s = scenario(d.path(), &bc(&mem));
    let o = prescale(&["validate", s.to_str().unwrap()]);
    assert!(!o.status.success() && text(&o).0.contains("the policy sees the memory demand"), "{}", text(&o).0);
    // A floor on a workload that states no memory or network would be no floor.
    let s = scenario(d.path(), &floored);
    let o = prescale(&["validate", s.to_str().unwrap()]);
    assert!(!o.status.success() && text(&o).0.contains("controller.resource_floor: the floor is"), "{}", text(&o).0);
}

/// The multi-resource agent end to end: a model with targets `[Rate, Memory]` trains on a trace's CPU and
/// memory columns (its card states both normalisations and errors), exports to TorchScript that Python runs
/// with Rust's outputs (a row per horizon and target), and, as the predictive controller's predictor, plans the
/// memory the workload states: far fewer SLO-violation minutes and failed requests than the same controller
/// with a rate-only model that plans memory from the requests in service (`memory: FromRate`). Validation
/// refuses a rate-only model that would silently ignore the stated memory, and a memory model on a workload
/// without memory.
#[test]
fn a_rate_and_memory_model_plans_the_memory_a_rate_only_one_misses() {
    let d = tempfile::tempdir().unwrap();
    memory_scenario(d.path(), "HindsightExpert");
    let mem = train(
        d.path(),
        &memory_train_file(d.path(), "mem", "inputs: [Rate, Memory, TimeOfDay], targets: [Rate, Memory]"),
    );
    let rate = train(d.path(), &memory_train_file(d.path(), "rate", "inputs: [Rate, TimeOfDay]"));
    let card: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(mem.join("card.json")).unwrap()).unwrap();
    let memory_mean = card["memory_normalisation"]["mean"].as_f64().unwrap();
    assert!((memory_mean - 850.0).abs() < 30.0, "memory normalisation mean {memory_mean} GiB");
    let (mae, spread) =
        (card["metrics"]["test_mae_h1_memory_gib"].as_f64().unwrap(), 50.0 * 2.0 / std::f64::consts::PI);
    assert!(mae < 0.5 * spread, "memory MAE {mae} GiB vs the memory's mean absolute deviation {spread}");
    // With a window level each signal is scaled by its own level: the memory's normaliser is of ratios.
    let windowed = train(
        d.path(),
        &memory_train_file(
            d.path(),
            "mem-window",
            "inputs: [Rate, Memory, TimeOfDay], targets: [Rate, Memory], level: Window",
        ),
    );
    let card: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(windowed.join("card.json")).unwrap()).unwrap();
    let (ratio_mean, floor) = (
        card["memory_normalisation"]["mean"].as_f64().unwrap(),
        card["memory_normalisation"]["level_floor_per_s"].as_f64().unwrap(),
    );
    let share = prescale_agents::neural::data::WINDOW_FLOOR_SHARE;
    assert!((ratio_mean - 1.0).abs() < 0.05 && (floor / (share * 850.0) - 1.0).abs() < 0.05, "{ratio_mean} {floor}");
    let mae = card["metrics"]["test_mae_h1_memory_gib"].as_f64().unwrap();
    assert!(mae < 0.5 * spread, "window-level memory MAE {mae} GiB vs the memory's mean absolute deviation {spread}");

    // Export: Python gives Rust's outputs, [batch, 2 horizons x 2 targets, mean and log-variance], for both
    // (the window-level one scales each signal inside the traced function).
    let site = std::process::Command::new(repo().join("scripts/setup-torch.sh")).arg("--python").output().unwrap();
    let site = String::from_utf8(site.stdout).unwrap().trim().to_string();
    for mem in [&mem, &windowed] {
        let o = prescale(&["export", mem.to_str().unwrap()]);
        assert!(o.status.success(), "{}", text(&o).1);
        let model = Model::load(mem).unwrap();
        let (l, f) = (model.card.spec.window_steps as usize, model.card.spec.width());
        for batch in [1usize, 5] {
            let x: Vec<f32> = (0..batch * l * f).map(|i| 500.0 + 300.0 * ((i as f32) * 0.37).sin()).collect();
            let rust = model.predict(&x, batch);
            let input = d.path().join("in.json");
            std::fs::write(&input, serde_json::json!({"shape": [batch, l, f], "data": x}).to_string()).unwrap();
            let py = std::process::Command::new("python3")
                .arg(repo().join("scripts/check_export.py"))
                .args([mem, &input])
                .env("PYTHONPATH", &site)
                .output()
                .unwrap();
            assert!(py.status.success(), "python: {}", String::from_utf8_lossy(&py.stderr));
            let out: serde_json::Value = serde_json::from_slice(&py.stdout).unwrap();
            assert_eq!(out["shape"], serde_json::json!([batch, 4, 2]));
            let data: Vec<f64> = out["data"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
            let worst = data.iter().zip(&rust).map(|(a, b)| (a - *b as f64).abs()).fold(0.0, f64::max);
            assert!(data.len() == rust.len() && worst <= 1e-3, "batch {batch}: Python differs from Rust by {worst}");
        }
    }

    let predictive = |model: &Path, memory: &str| {
        format!(
            "Predictive(predictor: Neural(model: \"{}\"), variance: AdaptiveConformal(alpha: 0.05), allocator: (target_utilisation: \
             0.7){memory})",
            model.display()
        )
    };
    let validate = |s: &Path| {
        let o = prescale(&["validate", s.to_str().unwrap()]);
        (o.status.success(), text(&o).0 + &text(&o).1)
    };
    // A rate-only model must say how the stated memory is planned.
    let (ok, msg) = validate(&memory_scenario(d.path(), &predictive(&rate, "")));
    assert!(!ok && msg.contains("controller.predictor.model") && msg.contains("memory: FromRate"), "{msg}");
    // A memory model needs a workload that states memory.
    let (ok, msg) = validate(&scenario(d.path(), &predictive(&mem, "")));
    assert!(!ok && msg.contains("the workload states none"), "{msg}");

    let run = |tag: &str, controller: String| {
        let s = memory_scenario(d.path(), &controller);
        let out = d.path().join(format!("results-{tag}"));
        let o = prescale(&["run", s.to_str().unwrap(), "--out", out.to_str().unwrap(), "--quiet"]);
        assert!(o.status.success(), "{}", text(&o).1);
        let run = std::fs::read_dir(out.join("mem-test")).unwrap().next().unwrap().unwrap().path();
        let series = std::fs::read_to_string(run.join("timeseries.csv")).unwrap();
        let header: Vec<String> = series.lines().next().unwrap().split(',').map(String::from).collect();
        let rows: Vec<Vec<String>> = series.lines().skip(1).map(|l| l.split(',').map(String::from).collect()).collect();
        let column = move |name: &str| -> Vec<f64> {
            let c = header.iter().position(|h| h == name).unwrap_or_else(|| panic!("no {name} column"));
            rows.iter().map(|r| r[c].parse().unwrap_or(f64::NAN)).collect()
        };
        let summary =
            serde_json::from_str::<serde_json::Value>(&std::fs::read_to_string(run.join("summary.json")).unwrap())
                .unwrap();
        (summary, column)
    };
    let ((multi, multi_column), (rate_only, rate_column)) =
        (run("multi", predictive(&mem, "")), run("rate", predictive(&rate, ", memory: FromRate")));
    // The memory loop's own forecast, margin and coverage per step (GiB); none for the rate-only agent.
    let (forecast, margin, coverage) =
        (multi_column("memory_forecast_gib"), multi_column("memory_margin_gib"), multi_column("memory_coverage"));
    let judged = forecast.iter().filter(|x| x.is_finite()).count();
    assert!(judged > forecast.len() / 2, "{judged} of {} steps with a memory forecast", forecast.len());
    // Adaptive conformal margins may dip below zero; they stay a small part of the ~850 GiB demand.
    let finite: Vec<f64> = margin.iter().copied().filter(|x| x.is_finite()).collect();
    let mean = finite.iter().sum::<f64>() / finite.len() as f64;
    assert!(finite.iter().all(|m| m.abs() < 100.0) && mean > 0.0, "memory margins: mean {mean} GiB");
    let last = coverage.iter().rev().copied().find(|x| x.is_finite()).expect("a coverage");
    assert!(last > 0.8 && last <= 1.0, "memory coverage {last} at alpha 0.05");
    assert!(rate_column("memory_margin_gib").iter().all(|x| x.is_nan()), "the rate-only agent has no memory loop");
    assert!(multi_column("network_margin_gbps").iter().all(|x| x.is_nan()), "no network demand stated");
    let f = |r: &serde_json::Value, k: &str| r["summary"][k].as_f64().unwrap_or_else(|| panic!("{k} in {r}"));
    let (slo_multi, slo_rate) = (f(&multi, "slo_violation_minutes"), f(&rate_only, "slo_violation_minutes"));
    assert!(slo_rate > 600.0, "the rate-only agent runs short of memory most of the time: {slo_rate} min");
    assert!(slo_multi <= 0.2 * slo_rate, "SLO minutes: multi-resource {slo_multi} vs rate-only {slo_rate}");
    assert!(f(&multi, "failed_requests") < 0.1 * f(&rate_only, "failed_requests"), "{multi}\n{rate_only}");
}
