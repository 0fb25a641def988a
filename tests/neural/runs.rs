//! Models inside runs and sweeps: batched groups equal unbatched runs, non-finite weights and outputs are errors, rollouts equal runs, cards hold numbers, progress lines.

use super::*;

/// `prescale sweep --batch-runs` runs every cell with a neural model — BC policies at two act quantiles and a
/// neural predictor, over seeds — in batched groups with one forward pass per model per round: the same
/// decisions as one run at a time here (tables equal), the same bits on 1 and 2 threads and after a resume, and
/// the pass counts the group reports are those of one pass per model per tick.
#[test]
fn batched_sweeps_match_unbatched_ones() {
    let d = tempfile::tempdir().unwrap();
    scenario(d.path(), "HindsightExpert");
    let t = d.path().join("bc.ron");
    std::fs::write(
        &t,
        r#"Train(
    name: "bc",
    scenario: "nn-test.ron",
    task: Imitate(seeds: [3], dagger: (rounds: 0)),
    model: (architecture: Gru(hidden: 8), inputs: [Rate, ReadyCapacity, PendingCapacity, Backlog], window_steps: 8, horizon_steps: 1),
    training: (max_epochs: 2, batch_size: 128, seed: 1),
)
"#,
    )
    .unwrap();
    train(d.path(), &t);
    train(d.path(), &train_file(d.path(), "mlp", "Mlp(hidden: [8])", ""));
    let e = d.path().join("exp.ron");
    std::fs::write(
        &e,
        r#"Experiment(
    name: "batched",
    description: "BC and a neural predictor over seeds",
    scenarios: ["nn-test.ron"],
    axes: [],
    controllers: [
        (name: "bc", controller: Bc(model: "models/bc", act_quantile: Some(0.9)),
            knob: (values: [0.5, 0.9])),
        (name: "mlp", controller: Predictive(predictor: Neural(model: "models/mlp"), variance: Fixed(),
            allocator: (target_utilisation: 0.6))),
        (name: "hpa", controller: ReferenceHpa(target_utilisation: 0.6, max_instances: 80)),
    ],
    seeds: [1, 2, 3, 4],
    baseline: "hpa",
)
"#,
    )
    .unwrap();
    let sweep = |out: &str, extra: &[&str]| {
        let out = d.path().join(out);
        let mut args = vec!["sweep", e.to_str().unwrap(), "--out", out.to_str().unwrap(), "--quiet"];
        args.extend_from_slice(extra);
        let o = prescale(&args);
        assert!(o.status.success(), "{}", text(&o).1);
        std::fs::read_to_string(out.join("batched/runs.csv")).unwrap()
    };
    let plain = sweep("plain", &[]);
    let batched = sweep("batched", &["--batch-runs", "--threads", "1"]);
    let batched2 = sweep("batched2", &["--batch-runs", "--threads", "2"]);
    assert_eq!(batched, batched2, "same bits on any thread count");
    // The decisions are those of one run at a time here: every column equal but the forecast error, which
    // carries the forward pass's float rounding (a batched matrix product sums in another order).
    let (p_lines, b_lines): (Vec<&str>, Vec<&str>) = (plain.lines().collect(), batched.lines().collect());
    assert_eq!(p_lines.len(), b_lines.len());
    let header: Vec<&str> = p_lines[0].split(',').collect();
    for (p, b) in p_lines.iter().zip(&b_lines) {
        for ((col, x), y) in header.iter().zip(p.split(',')).zip(b.split(',')) {
            if *col == "forecast_mae_cores" && x != y {
                let (x, y): (f64, f64) = (x.parse().unwrap(), y.parse().unwrap());
                assert!((x - y).abs() <= 1e-6 * x.abs(), "{col}: {x} vs {y}");
            } else {
                assert_eq!(x, y, "{col} of {}", &p[..40]);
            }
        }
    }
    // The group's counts: runs of equal length call once per tick, so the passes are the calls / runs.
    let runs = d.path().join("batched/batched/runs");
    let cells: Vec<serde_json::Value> = std::fs::read_dir(&runs)
        .unwrap()
        .map(|e| {
            serde_json::from_str(&std::fs::read_to_string(e.unwrap().path().join("summary.json")).unwrap()).unwrap()
        })
        .collect();
    let batch = |controller: &str| {
        let c = cells.iter().find(|c| c["cell"]["controller"].as_str().unwrap().starts_with(controller)).unwrap();
        let b = &c["cell"]["batch"];
        (
            b["group_runs"].as_u64().unwrap(),
            b["group_model_calls"].as_u64().unwrap(),
            b["group_forward_passes"].as_u64().unwrap(),
        )
    };
    let (n, calls, passes) = batch("bc");
    assert_eq!(n, 8, "both BC settings and every seed share one group");
    assert!(passes > 100 && calls == n * passes, "{calls} calls in {passes} passes");
    let (n, calls, passes) = batch("mlp");
    assert_eq!(n, 4);
    assert!(passes > 100 && calls == n * passes, "{calls} calls in {passes} passes");
    assert!(
        cells
            .iter()
            .filter(|c| c["cell"]["controller"].as_str().unwrap().starts_with("hpa"))
            .all(|c| c["cell"]["batch"].is_null())
    );
    // A resumed sweep runs an unfinished group whole again and writes only what is missing: the same table.
    let gone = std::fs::read_dir(&runs)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| std::fs::read_to_string(p.join("summary.json")).unwrap().contains("\"bc"))
        .unwrap();
    std::fs::remove_dir_all(&gone).unwrap();
    assert_eq!(sweep("batched", &["--batch-runs", "--threads", "2"]), batched, "resumed");
    // Shards keep a group in one process (a group is one work unit): two shards and a collect, the same table.
    let out = d.path().join("sharded");
    for k in ["0/2", "1/2"] {
        let o = prescale(&[
            "sweep",
            e.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--quiet",
            "--batch-runs",
            "--shard",
            k,
        ]);
        assert!(o.status.success(), "{}", text(&o).1);
    }
    let o = prescale(&["sweep", e.to_str().unwrap(), "--out", out.to_str().unwrap(), "--collect"]);
    assert!(o.status.success(), "{}", text(&o).1);
    assert_eq!(std::fs::read_to_string(out.join("batched/runs.csv")).unwrap(), batched, "sharded");
}

/// A model whose weights hold NaN (card hash updated, so only the numbers are wrong) is refused at export and
/// wherever a scenario names it, never run with its NaN forecasts turned into zeros (issue 11).
#[test]
fn models_with_non_finite_weights_are_refused() {
    let d = tempfile::tempdir().unwrap();
    scenario(d.path(), "HindsightExpert");
    let m = train(d.path(), &train_file(d.path(), "nan", "Mlp(hidden: [8])", ""));
    let w = m.join("weights.safetensors");
    let tensors = tch::Tensor::read_safetensors(&w).unwrap();
    let poisoned: Vec<(String, tch::Tensor)> =
        tensors.into_iter().map(|(k, t)| if k.contains("head") { (k, t.fill(f64::NAN)) } else { (k, t) }).collect();
    tch::Tensor::write_safetensors(&poisoned, &w).unwrap();
    let hash = sha256_file(&w).unwrap();
    let card = std::fs::read_to_string(m.join("card.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&card).unwrap();
    let old = v["weights_sha256"].as_str().unwrap().to_string();
    std::fs::write(m.join("card.json"), card.replace(&old, &hash)).unwrap();
    let o = prescale(&["export", m.to_str().unwrap()]);
    let (_, se) = text(&o);
    assert!(!o.status.success() && se.contains("non-finite") && se.contains("head"), "{se}");
    assert!(!m.join("model.pt").exists());
    let s = scenario(d.path(), &neural_predictive(&m));
    let o = prescale(&["validate", s.to_str().unwrap()]);
    let (so, se) = text(&o);
    assert!(!o.status.success() && (so + &se).contains("non-finite"));
}

/// A NaN output at run time holds the fleet, is flagged in the diagnostics and fails the run naming the step.
#[test]
fn a_non_finite_policy_output_is_an_error_not_a_zero() {
    use prescale_agents::neural::policy::PolicyState;
    use prescale_agents::neural::spec::{Architecture, Input, ModelSpec, OutputKind};
    use prescale_sim::controller::{Observation, ScaleDecision};
    let spec = ModelSpec {
        architecture: Architecture::Mlp { hidden: vec![4] },
        inputs: vec![Input::Rate],
        window_steps: 1,
        horizon_steps: 1,
        output: OutputKind::Point,
        level: Default::default(),
        targets: prescale_agents::neural::spec::default_targets(),
    };
    let mut state = PolicyState::new(setting(10, 60.0, 0.0), None);
    let obs = Observation { interval_s: 60.0, ..Observation::default() };
    assert_eq!(state.decide(&spec, Some(&[f32::NAN]), &obs), ScaleDecision::Hold);
    assert!(state.diagnostics().non_finite_output);
    assert!(matches!(state.decide(&spec, Some(&[12.0]), &obs), ScaleDecision::To { .. }));
    assert!(!state.diagnostics().non_finite_output);
}

#[test]
fn training_files_that_would_exhaust_memory_or_name_no_scenario_are_refused_with_their_line() {
    let d = tempfile::tempdir().unwrap();
    scenario(d.path(), "HindsightExpert");
    // A network too big to train here: the figure is in the message, before anything is built.
    let p = train_file(d.path(), "huge", "Gru(hidden: 4096, layers: 8)", "");
    let o = prescale(&["validate", p.to_str().unwrap()]);
    let (so, _) = text(&o);
    assert!(!o.status.success() && so.contains("huge.ron:5: model.architecture") && so.contains("parameters"), "{so}");
    // Windows too long for the data they would copy.
    let p = train_file(d.path(), "long", "Mlp(hidden: [4])", "");
    let t = std::fs::read_to_string(&p)
        .unwrap()
        .replace("window_steps: 16, horizon_steps: 5", "window_steps: 4096, horizon_steps: 5");
    std::fs::write(
        &p,
        t.replace("Mlp(hidden: [4])", "Gru(hidden: 4)")
            .replace("task: Forecast", "task: Imitate(seeds: [1, 2, 3, 4, 5, 6, 7, 8], dagger: (rounds: 20))")
            .replace("horizon_steps: 5", "horizon_steps: 1"),
    )
    .unwrap();
    let o = prescale(&["validate", p.to_str().unwrap()]);
    let (so, _) = text(&o);
    assert!(!o.status.success() && so.contains("model.window_steps") && so.contains("GiB"), "{so}");
    // A name that would put the model outside --out.
    let t = std::fs::read_to_string(&p).unwrap();
    std::fs::write(d.path().join("escape.ron"), t.replace("name: \"long\"", "name: \"../escape\"")).unwrap();
    let o = prescale(&["validate", d.path().join("escape.ron").to_str().unwrap()]);
    let (so, _) = text(&o);
    assert!(!o.status.success() && so.contains("escape.ron:2: name: must be 1 to 255 bytes"), "{so}");
    // A scenario file that does not exist: named at the training file's own line.
    let t = std::fs::read_to_string(&p).unwrap().replace("nn-test.ron", "missing.ron");
    std::fs::write(&p, t).unwrap();
    let o = prescale(&["train", p.to_str().unwrap(), "--out", d.path().join("m").to_str().unwrap(), "--quiet"]);
    let (_, se) = text(&o);
    assert!(!o.status.success() && se.contains("long.ron:3: scenario: cannot read the scenario file"), "{se}");
}

/// One metric definition (issue 10): the figures a training rollout reports (DAgger's validation and test
/// columns) are those `prescale run` reports for the same steps. The expert's rollout of the flash-crowd
/// history and a run of the same scenario under `controller: HindsightExpert` with the same seed, measured over
/// the whole run and over a slice, by `PeriodMetrics` and by the run summary.
#[test]
fn a_rollout_report_and_a_run_of_the_same_steps_give_the_same_numbers() {
    use prescale_agents::neural::dagger::{Actor, rollout};
    use prescale_sim::scenario::{MetricBasis, PeriodMetrics};
    let d = tempfile::tempdir().unwrap();
    let file = scenario(d.path(), "HindsightExpert");
    // A fleet capped below the daily peak (7.5 instances' worth), so that the expert too violates the SLO there.
    let tight = std::fs::read_to_string(&file)
        .unwrap()
        .replace("max_count: 80", "max_count: 7")
        .replace("initial_count: 10", "initial_count: 5");
    std::fs::write(&file, tight).unwrap();
    let loaded = prescale::files::scenario_io::load_scenario(&file).unwrap();
    let seed = 5;
    let p = loaded.prepare(seed).unwrap();
    let c = &p.config;
    let ctx = p.init_context(seed);
    let params = p.fluid_params();
    let setting = prescale_agents::neural::expert::PolicySetting::from_context(&ctx);
    let r = rollout(
        &c.cluster,
        params,
        &p.demand,
        &setting,
        &[prescale_agents::neural::spec::Input::Rate],
        Actor::Expert,
        seed,
        None,
    )
    .unwrap();
    let run = prescale_sim::scenario::run(&p, seed, &mut |_| {});
    let basis = MetricBasis::of(c);
    let n = p.demand.steps();
    let whole = PeriodMetrics::measure(&basis, &p.demand, &r.report.steps, 0..n);
    let s = &run.summary;
    assert!(s.slo_violation_minutes > 0.0 && s.over_provisioning_core_hours > 0.0, "{s:?}");
    assert_eq!(whole.slo_violation_minutes, s.slo_violation_minutes);
    assert_eq!(whole.over_provisioning_core_hours, s.over_provisioning_core_hours);
    assert_eq!(whole.under_provisioning_core_hours, s.under_provisioning_core_hours);
    assert!((whole.cost_usd - s.cost_usd).abs() <= 1e-9 * s.cost_usd, "{} vs {}", whole.cost_usd, s.cost_usd);
    // A slice (the test part of a 70/15/15 split) equals the same rows of the run's time series.
    let slice = (n * 85 / 100)..n;
    let part = PeriodMetrics::measure(&basis, &p.demand, &r.report.steps, slice.clone());
    let rows = &run.rows[slice.clone()];
    let by_rows = PeriodMetrics::of_rows(rows, run.rows[slice.start - 1].cost_usd);
    assert_eq!(part, by_rows);
    let minutes: f64 = rows.iter().filter(|r| r.slo_violated == 1).map(|r| (r.t_end_s - r.t_start_s) / 60.0).sum();
    assert!((part.slo_violation_minutes - minutes).abs() < 1e-9);
}

/// A series shorter than one seasonal period has no MASE scale: the card leaves the MASE metrics out
/// rather than holding `null` where a number is promised, and a scenario using the model validates and runs.
#[test]
fn a_card_never_holds_a_non_number() {
    let d = tempfile::tempdir().unwrap();
    let s = scenario(d.path(), "HindsightExpert");
    let short = std::fs::read_to_string(&s).unwrap().replace("horizon_s: 259200", "horizon_s: 43200");
    std::fs::write(&s, short).unwrap();
    let m = train(d.path(), &train_file(d.path(), "short", "Mlp(hidden: [8])", ""));
    let card: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(m.join("card.json")).unwrap()).unwrap();
    let metrics = card["metrics"].as_object().expect("metrics");
    assert!(metrics.values().all(|v| v.as_f64().is_some_and(f64::is_finite)), "{metrics:?}");
    assert!(!metrics.contains_key("mase_scale_per_s") && metrics.contains_key("test_mae_h1_per_s"), "{metrics:?}");
    let controller = "Predictive(predictor: Neural(model: \"models/short\"), variance: Fixed(percent: 10), \
                      allocator: (target_utilisation: 0.7))";
    let s = scenario(d.path(), controller);
    let v = prescale(&["validate", s.to_str().unwrap()]);
    assert!(v.status.success(), "{}", text(&v).0);
    let out = d.path().join("results");
    let o = prescale(&["run", s.to_str().unwrap(), "--out", out.to_str().unwrap(), "--quiet"]);
    assert!(o.status.success(), "{}", text(&o).1);
}

/// When standard error is not a terminal, `prescale train` prints plain progress lines (epoch, losses,
/// elapsed, estimate left) instead of staying silent for minutes.
#[test]
fn training_reports_progress_lines_when_not_on_a_terminal() {
    let d = tempfile::tempdir().unwrap();
    scenario(d.path(), "HindsightExpert");
    let file = train_file(d.path(), "lines", "Mlp(hidden: [8])", "");
    let o = std::process::Command::new(crate::common::exe("prescale"))
        .args(["train", file.to_str().unwrap(), "--out", d.path().join("models").to_str().unwrap()])
        .env("PRESCALE_PROGRESS_EVERY_S", "0")
        .output()
        .unwrap();
    let (_, stderr) = text(&o);
    assert!(o.status.success(), "{stderr}");
    assert!(stderr.contains("[lines] epoch 1/3 (train loss "), "{stderr}");
    assert!(stderr.contains("s elapsed, about ") && stderr.contains(" s left"), "{stderr}");
}
