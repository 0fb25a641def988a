//! Experiments that train what they need: training stages per scenario and per axis value, cached by content
//! hash, bound to the runs that use them (issue 12, item 2).

use crate::common;

use common::{prescale, repo, text};
use std::path::Path;

/// A tiny experiment on the shipped NAB ELB test scenario: a forecaster trained once per scenario, a BC
/// policy once per provisioning delay. `gru_epochs` changes the forecaster's stage.
fn experiment(dir: &Path, gru_epochs: u32, slice_to: f64) -> std::path::PathBuf {
    let text = format!(
        r#"Experiment(
    name: "staged",
    scenarios: ["{scenario}"],
    axes: [(path: "cluster.instance_types[0].provisioning_delay", values: ["Constant(s: 60)", "Constant(s: 300)"])],
    training: [
        (name: "gru", slice: Fraction(from: 0.0, to: {slice_to}), task: Forecast,
         model: (architecture: Gru(hidden: 8), window_steps: 24, horizon_steps: 8, output: Gaussian),
         training: (max_epochs: {gru_epochs}, batch_size: 256, max_batches_per_epoch: 4)),
        (name: "bc", slice: Fraction(from: 0.0, to: 0.69), per_axes: ["cluster.instance_types[0].provisioning_delay"],
         task: Imitate(seeds: [11], dagger: (rounds: 0)),
         model: (architecture: Mlp(hidden: [16]), inputs: [Rate, ReadyCapacity, PendingCapacity], window_steps: 10, horizon_steps: 1, output: Gaussian),
         training: (max_epochs: 2, batch_size: 256, max_batches_per_epoch: 4)),
    ],
    controllers: [
        (name: "hpa", controller: Hpa(target_utilisation: 0.6, max_replicas: 150)),
        (name: "gru-aci", controller: Predictive(predictor: Neural(model: "@gru"), variance: AdaptiveConformal(alpha: 0.05), allocator: (target_utilisation: 0.6))),
        (name: "bc", controller: Bc(model: "@bc", act_quantile: 0.9)),
    ],
    seeds: [1],
    baseline: "hpa",
)
"#,
        scenario = repo().join("scenarios/nab-elb-test.ron").display()
    );
    let f = dir.join("staged.ron");
    std::fs::write(&f, text).unwrap();
    f
}

fn sweep(file: &Path, out: &Path) -> serde_json::Value {
    let o = prescale(&["sweep", file.to_str().unwrap(), "--out", out.to_str().unwrap(), "--quiet"]);
    assert!(o.status.success(), "{}", text(&o).1);
    serde_json::from_str(&std::fs::read_to_string(out.join("staged/manifest.json")).unwrap()).unwrap()
}

fn states(manifest: &serde_json::Value) -> Vec<(String, String)> {
    manifest["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["stage"].as_str().unwrap().to_string(), m["state"].as_str().unwrap().to_string()))
        .collect()
}

/// One training per scenario for the forecaster, one per delay for the policy; each run uses the model
/// trained for its own scenario and delay; a rerun reuses models whose inputs are unchanged and trains again
/// one whose stage changed, and the runs of a retrained model are new runs (their ids name the model).
#[test]
fn stages_train_once_per_binding_and_are_reused_by_content() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("r");
    let file = experiment(d.path(), 2, 0.69);
    let v = prescale(&["validate", file.to_str().unwrap()]);
    assert!(text(&v).0.contains("6 runs") && text(&v).0.contains("3 training(s) first"), "{}", text(&v).0);
    let m = sweep(&file, &out);
    let trained = states(&m);
    assert_eq!(trained.len(), 3, "{m}");
    assert!(trained.iter().all(|(_, s)| s == "trained"), "{trained:?}");
    assert_eq!(trained.iter().filter(|(s, _)| s == "bc").count(), 2, "one policy per delay");
    // Each BC run uses the policy trained under its own delay.
    let models = m["models"].as_array().unwrap();
    let runs = std::fs::read_dir(out.join("staged/runs")).unwrap();
    let mut checked = 0;
    for r in runs.flatten().filter(|r| r.file_name().to_string_lossy().contains("__bc__")) {
        let scenario = std::fs::read_to_string(r.path().join("scenario.ron")).unwrap();
        let name = r.file_name().to_string_lossy().into_owned();
        let delay = if name.contains("Constant_s_60_") { "Constant(s: 60)" } else { "Constant(s: 300)" };
        let want = models
            .iter()
            .find(|m| m["stage"] == "bc" && m["axes"][0]["value"] == delay)
            .map(|m| m["dir"].as_str().unwrap().to_string())
            .unwrap();
        assert!(scenario.contains(&want), "{} does not use {want}", r.path().display());
        checked += 1;
    }
    assert_eq!(checked, 2);
    // A lost run: its model is reused, not trained again.
    let gru_run = std::fs::read_dir(out.join("staged/runs"))
        .unwrap()
        .flatten()
        .find(|r| r.file_name().to_string_lossy().contains("__gru-aci__"))
        .unwrap()
        .path();
    std::fs::remove_dir_all(&gru_run).unwrap();
    assert_eq!(states(&sweep(&file, &out)), vec![("gru".to_string(), "reused".to_string())]);
    // A changed stage: a new model, and new runs for it; the other models and runs stay.
    let file = experiment(d.path(), 3, 0.69);
    let m = sweep(&file, &out);
    assert_eq!(states(&m), vec![("gru".to_string(), "trained".to_string())]);
    assert_eq!((m["ran_now"].as_u64(), m["skipped_finished"].as_u64()), (Some(2), Some(4)), "{m}");
    // The table holds the runs of this experiment as it now is: six, none with the old model.
    let runs = std::fs::read_to_string(out.join("staged/runs.csv")).unwrap();
    assert_eq!(runs.lines().count(), 1 + 6, "{runs}");
    assert!(!runs.contains(&*gru_run.file_name().unwrap().to_string_lossy()), "{runs}");
}

/// Before anything trains: a stage that would learn from the scored period, a controller naming no stage,
/// a stage axis that is not an axis, and a model the controller cannot use (a forecaster that does not see
/// as far as the allocator needs) are each named at their lines.
#[test]
fn stages_are_validated_before_anything_trains() {
    let d = tempfile::tempdir().unwrap();
    let file = experiment(d.path(), 2, 0.7);
    let t = std::fs::read_to_string(&file)
        .unwrap()
        .replace("horizon_steps: 8", "horizon_steps: 1")
        .replace("(name: \"bc\", controller: Bc(model: \"@bc\"", "(name: \"bc\", controller: Bc(model: \"@policy\"")
        .replace("per_axes: [\"cluster.instance_types[0].provisioning_delay\"]", "per_axes: [\"step_s\"]");
    std::fs::write(&file, t).unwrap();
    let v = prescale(&["validate", file.to_str().unwrap()]);
    let (stdout, _) = text(&v);
    assert_eq!(v.status.code(), Some(1), "{stdout}");
    for want in [
        "staged.ron:6: training[0].slice: learns from trace seconds 0–848400 of",
        "(at most Fraction(from: 0.0, to: 0.698",
        "staged.ron:9: training[1].per_axes[0]: 'step_s' is not an axis of this experiment",
        "staged.ron:16: controllers[1].controller.predictor.model:",
        "forecasts 1 steps ahead, the allocator needs",
        "staged.ron:17: controllers[2].controller.model: '@policy' names no training stage of this experiment (stages: gru, bc)",
    ] {
        assert!(stdout.contains(want), "'{want}' missing from:\n{stdout}");
    }
    assert!(!d.path().join("results").exists());
}

/// Shards started side by side that need the same model train it once: each model is trained under its own
/// lock, and the shard that waited finds it and reuses it. `--train-only` trains what the runs need and no more.
#[test]
fn shards_side_by_side_train_each_model_once() {
    let d = tempfile::tempdir().unwrap();
    let file = experiment(d.path(), 2, 0.69);
    let (f, out) = (file.to_str().unwrap(), d.path().join("r"));
    let outs = out.to_str().unwrap();
    let spawn = |shard: &str| {
        std::process::Command::new(crate::common::exe("prescale"))
            .args(["sweep", f, "--out", outs, "--quiet", "--shard", shard])
            .current_dir(repo())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (spawn("0/2"), spawn("1/2"));
    for c in [a, b] {
        let o = c.wait_with_output().unwrap();
        assert!(o.status.success(), "{}", text(&o).1);
    }
    let report = |k: u32| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(out.join(format!("staged/shards/{k}-of-2.json"))).unwrap())
            .unwrap()
    };
    let mut gru = Vec::new();
    let mut bc = Vec::new();
    for k in 0..2 {
        for (stage, state) in states(&report(k)) {
            if stage == "gru" { gru.push(state) } else { bc.push(state) }
        }
    }
    gru.sort();
    assert_eq!(gru, ["reused", "trained"], "both shards need the forecaster; one trains it, the other waits");
    assert_eq!(bc, ["trained", "trained"], "one policy per delay, each in the shard of its runs");
    let o = prescale(&["sweep", f, "--out", outs, "--collect"]);
    assert!(o.status.success() && text(&o).0.contains("6 of 6 cells finished"), "{}", text(&o).1);
    // --train-only: nothing to train when every run is finished; after a stage changed, only its model (the
    // policies' runs are still finished).
    let o = prescale(&["sweep", f, "--out", outs, "--train-only", "--quiet"]);
    assert!(o.status.success() && text(&o).0.is_empty(), "{}", text(&o).0);
    let file = experiment(d.path(), 3, 0.69);
    let o = prescale(&["sweep", file.to_str().unwrap(), "--out", outs, "--train-only", "--quiet"]);
    let said = text(&o).0;
    assert!(o.status.success() && said.lines().count() == 1 && said.starts_with("model gru: "), "{said}");
    assert!(said.trim_end().ends_with("(trained)"), "{said}");
}
