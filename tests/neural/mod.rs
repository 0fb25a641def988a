//! The neural agents end to end, through the `prescale` binary and the library: repeatable training, every
//! architecture, TorchScript export checked in real Python PyTorch, model directories that do not match
//! their card refused, forecast cloning inside a scenario with online fine-tuning, and the hindsight expert
//! against queueing theory and the reactive baseline.

mod forecasting;
mod memory;
mod policies;
mod runs;
mod training;

use crate::common;

use std::path::{Path, PathBuf};

use common::{prescale, repo, text};
use prescale_agents::neural::model::{Model, sha256_file};

/// A 3-day synthetic diurnal service at 1-minute steps (small and fast to train on).
fn scenario(dir: &Path, controller: &str) -> PathBuf {
    let text = format!(
        r#"Scenario(
    name: "nn-test",
    description: "diurnal service for neural tests",
    seed: 1,
    horizon_s: 259200,
    step_s: 60,
    fidelity: Fluid,
    workload: Synthetic(
        base_rate_per_s: 200.0,
        components: [Daily(amplitude: 0.5, peak_hour: 14.0), Noise(sd: 0.03, correlation_s: 300)],
    ),
    service: (mean_service_s: 0.1, cores_per_request: 1.0),
    cluster: (
        instance_types: [(
            name: "m5.xlarge",
            capacity: (cpu_cores: 4, memory_gib: 16, storage_gib: 100, network_gbps: 10),
            price_usd_per_hour: 0.192,
            provisioning_delay: Constant(s: 120),
            warmup_s: 60,
            initial_count: 10,
            min_count: 2,
            max_count: 80,
        )],
        scaling_type: "m5.xlarge",
    ),
    slo: (latency_quantile: 0.99, latency_threshold_s: 0.5),
    controller: {controller},
)
"#
    );
    let p = dir.join("nn-test.ron");
    std::fs::write(&p, text).unwrap();
    p
}

/// A predictive controller on the neural predictor in `model` (fixed margin, 60 % target utilisation).
fn neural_predictive(model: &Path) -> String {
    format!(
        "Predictive(predictor: Neural(model: \"{}\"), variance: Fixed(), allocator: (target_utilisation: 0.6))",
        model.display()
    )
}

fn train_file(dir: &Path, name: &str, arch: &str, extra: &str) -> PathBuf {
    let text = format!(
        r#"Train(
    name: "{name}",
    scenario: "nn-test.ron",
    task: Forecast,
    model: (architecture: {arch}, window_steps: 16, horizon_steps: 5, output: Gaussian),
    training: (max_epochs: 3, batch_size: 128, learning_rate: 0.003, patience: 3, seed: 7, max_batches_per_epoch: 10{extra}),
)
"#
    );
    let p = dir.join(format!("{name}.ron"));
    std::fs::write(&p, text).unwrap();
    p
}

/// A training file for a small BC policy on `nn-test.ron` (one DAgger round, the log-scaled backlog), with
/// `task` appended to the `Imitate` task and the given output.
fn policy_file(dir: &Path, name: &str, task: &str, output: &str) -> PathBuf {
    let text = format!(
        r#"Train(
    name: "{name}",
    scenario: "nn-test.ron",
    task: Imitate(seeds: [3], dagger: (rounds: 1, epochs_per_round: 2){task}),
    model: (architecture: Gru(hidden: 8), inputs: [Rate, ReadyCapacity, PendingCapacity, LogBacklog], window_steps: 8, horizon_steps: 1, output: {output}),
    training: (max_epochs: 4, batch_size: 128, seed: 1),
)
"#
    );
    let p = dir.join(format!("{name}.ron"));
    std::fs::write(&p, text).unwrap();
    p
}

/// A policy setting of 4-server instances at 0.1 s per request, SLO p99 <= 0.5 s, at one-minute steps.
fn setting(
    max_instances: u32,
    provisioning_delay_s: f64,
    warmup_s: f64,
) -> prescale_agents::neural::expert::PolicySetting {
    prescale_agents::neural::expert::PolicySetting {
        step_s: 60.0,
        start_unix_s: 0.0,
        mean_service_s: 0.1,
        cores_per_request: 1.0,
        servers_per_instance: 4,
        static_servers: 0,
        min_instances: 1,
        max_instances,
        provisioning_delay_s,
        warmup_s,
        slo_quantile: 0.99,
        slo_threshold_s: 0.5,
        instance_price_usd_per_hour: 0.1,
        violation_price_usd_per_min: None,
        resources: Default::default(),
    }
}

fn train(dir: &Path, file: &Path) -> PathBuf {
    let out = dir.join("models");
    let o = prescale(&["train", file.to_str().unwrap(), "--out", out.to_str().unwrap(), "--quiet"]);
    let (so, se) = text(&o);
    assert!(o.status.success(), "train failed: {so}\n{se}");
    let stem = file.file_stem().unwrap().to_string_lossy().into_owned();
    out.join(stem)
}
