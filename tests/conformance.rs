//! Controller conformance (the `check_env` of prescale's agent seam): every controller variant a scenario can
//! name — reactive, predictive with every predictor and variance controller, learned (forecast cloning and
//! behavioural cloning), and the hindsight expert — is built from a scenario and driven through edge
//! observations: no history yet, zero READY capacity, a cluster with everything provisioning, extreme but
//! finite arrivals and queues, a long silence. Each answer must be a valid decision: `Hold`, `To` at most the
//! scaling type's `max_count`, or a `Mix` with one count per instance type, each at most its type's
//! `max_count` (below `min_count` is allowed: keeping the floor is the fleet's rule, as for the Kubernetes HPA
//! whose own `minReplicas` defaults to 1); and a controller that reports diagnostics must not flag a
//! non-finite model output.

use crate::common;

use std::path::Path;

use ::prescale::files::scenario_io::load_scenario_text;
use common::{prescale, text};
use prescale_sim::controller::{Observation, ScaleDecision};
use prescale_sim::scenario::{ControllerSpec, InitContext};

/// Two instance types (a static pool and the scaling type), one day at one-minute steps.
fn scenario(controller: &str) -> String {
    format!(
        r#"Scenario(
    name: "conformance",
    seed: 3,
    horizon_s: 86400,
    step_s: 60,
    workload: Synthetic(base_rate_per_s: 120.0, components: [Daily(amplitude: 0.5, peak_hour: 14.0),
        FlashCrowd(start_s: 30000, ramp_s: 300, hold_s: 1200, decay_s: 1800, peak_multiplier: 4.0)]),
    service: (mean_service_s: 0.1, cores_per_request: 1.0, memory_gib_per_request: 0.1),
    cluster: (
        instance_types: [
            (name: "static", capacity: (cpu_cores: 8, memory_gib: 32), price_usd_per_hour: 0.4,
             provisioning_delay: Constant(s: 60), initial_count: 1, min_count: 1, max_count: 1),
            (name: "m", capacity: (cpu_cores: 4, memory_gib: 16), price_usd_per_hour: 0.2,
             provisioning_delay: Constant(s: 120), warmup_s: 60, initial_count: 3, min_count: 2, max_count: 50),
        ],
        scaling_type: "m",
    ),
    slo: (latency_quantile: 0.99, latency_threshold_s: 0.5),
    controller: {controller},
)"#
    )
}

fn controllers(forecaster: &Path, policy: &Path) -> Vec<String> {
    let alloc = "allocator: (target_utilisation: 0.6)";
    let mut v: Vec<String> = [
        "Static()",
        "Static(instances: 10)",
        "ReferenceHpa(target_utilisation: 0.6, min_instances: 2, max_instances: 50)",
        "Hpa(target_utilisation: 0.6, max_replicas: 50)",
        "TargetTracking(target_utilisation: 0.6, max_instances: 50)",
        "StepScaling(scale_out_threshold: 0.7, scale_out_steps: [(lower: 0, upper: Some(0.2), adjustment: ChangeInCapacity(1)), \
         (lower: 0.2, adjustment: PercentChangeInCapacity(50))], scale_in_threshold: 0.3, \
         scale_in_steps: [(lower: 0, adjustment: ExactCapacity(2))], max_instances: 50)",
        "HindsightExpert",
        "PricedHindsightExpert(violation_price_usd_per_min: 0.05)",
    ]
    .map(String::from)
    .to_vec();
    for predictor in [
        "LastValue",
        "SeasonalNaive(period_s: 3600)",
        "MovingAverage(window_s: 600)",
        "Ewma(alpha: 0.3)",
        "HoltWinters(period_s: 3600, fit: true)",
        "Ar(p: 3, window_s: 7200, refit_every_s: 3600)",
        "Oracle",
        &format!("Neural(model: \"{}\")", forecaster.display()),
    ] {
        v.push(format!("Predictive(predictor: {predictor}, variance: AdaptiveConformal(alpha: 0.05), {alloc})"));
    }
    for variance in [
        "Fixed()",
        "Fixed(percent: 20)",
        "KSigma(k: 2, window_s: 3600)",
        "PredictedQuantile(quantile: 0.95)",
        "SloFeedback()",
    ] {
        v.push(format!("Predictive(predictor: LastValue, variance: {variance}, {alloc})"));
    }
    v.push(format!("Bc(model: \"{}\")", policy.display()));
    v.push(format!("Bc(model: \"{}\", act_quantile: 0.9)", policy.display()));
    v
}

/// The observations: a run's life squeezed into edge cases (times advance one step each).
fn edge_observations() -> Vec<(&'static str, Observation)> {
    let base =
        Observation { interval_s: 60.0, servers_per_instance: 4, static_ready_servers: 8, ..Observation::default() };
    let mut v = vec![
        ("first tick, no history", Observation { ready_instances: 3, ready_servers: 20, ..base.clone() }),
        (
            "zero READY capacity",
            Observation {
                ready_instances: 0,
                ready_servers: 0,
                static_ready_servers: 0,
                arrivals_in_interval: 7200,
                queue_len: 5000,
                ..base.clone()
            },
        ),
        (
            "all provisioning",
            Observation {
                ready_instances: 0,
                provisioning_instances: 50,
                ready_servers: 0,
                arrivals_in_interval: 100,
                ..base.clone()
            },
        ),
        (
            "extreme arrivals",
            Observation {
                ready_instances: 3,
                ready_servers: 20,
                busy_server_s: 1200.0,
                arrivals_in_interval: 1_000_000_000,
                queue_len: 1_000_000_000,
                completions_in_interval: 12_000,
                slow_fraction: 1.0,
                ..base.clone()
            },
        ),
        ("silence", Observation { ready_instances: 50, ready_servers: 208, ..base.clone() }),
        (
            "draining",
            Observation {
                ready_instances: 2,
                draining_instances: 10,
                ready_servers: 16,
                busy_server_s: 900.0,
                arrivals_in_interval: 9000,
                completions_in_interval: 9000,
                ..base.clone()
            },
        ),
    ];
    // Then a long steady stretch, so that every predictor gets its history and every learned model a full window.
    for k in 0..200 {
        v.push((
            "steady",
            Observation {
                ready_instances: 5,
                ready_servers: 28,
                busy_server_s: 900.0,
                arrivals_in_interval: 9000 + 60 * (k % 7),
                completions_in_interval: 9000,
                ..base.clone()
            },
        ));
    }
    v.push(("zero READY after history", v[1].1.clone()));
    v.push(("extreme after history", v[3].1.clone()));
    for (k, (_, o)) in v.iter_mut().enumerate() {
        o.now_s = 60.0 * (k + 1) as f64;
    }
    v
}

fn train(dir: &Path, name: &str, task: &str, inputs: &str, horizons: u32) -> std::path::PathBuf {
    std::fs::write(dir.join("conformance.ron"), scenario("HindsightExpert")).unwrap();
    let file = dir.join(format!("{name}.ron"));
    std::fs::write(
        &file,
        format!(
            r#"Train(name: "{name}", scenario: "conformance.ron", task: {task},
    model: (architecture: Mlp(hidden: [8]), inputs: {inputs}, window_steps: 8, horizon_steps: {horizons}, output: Gaussian),
    training: (max_epochs: 1, batch_size: 64, seed: 1, max_batches_per_epoch: 4))"#
        ),
    )
    .unwrap();
    let out = dir.join("models");
    let o = prescale(&["train", file.to_str().unwrap(), "--out", out.to_str().unwrap(), "--quiet"]);
    assert!(o.status.success(), "{:?}", text(&o));
    out.join(name)
}

#[test]
fn every_controller_variant_answers_edge_observations_with_a_valid_decision() {
    // Models used in this process: libtorch's side installed, as `prescale-torch` does.
    prescale::cli::install_torch();
    let d = tempfile::tempdir().unwrap();
    let forecaster = train(d.path(), "f", "Forecast", "[Rate, TimeOfDay]", 4);
    let policy = train(d.path(), "p", "Imitate(seeds: [1])", "[Rate, ReadyCapacity, PendingCapacity, Backlog]", 1);
    let mut all = controllers(&forecaster, &policy);
    assert!(all.len() >= 22, "every kind is covered");
    // The learned ones again on models scaled by their window's level: an idle window meets the level's floor,
    // not a division by zero.
    let forecaster_w = train(d.path(), "fw", "Forecast", "[Rate, TimeOfDay], level: Window", 4);
    let policy_w = train(
        d.path(),
        "pw",
        "Imitate(seeds: [1])",
        "[Rate, ReadyCapacity, PendingCapacity, Backlog], level: Window",
        1,
    );
    let windowed = [forecaster_w.display().to_string(), policy_w.display().to_string()];
    let learned: Vec<String> = controllers(&forecaster_w, &policy_w)
        .into_iter()
        .filter(|c| windowed.iter().any(|w| c.contains(&format!("\"{w}\""))))
        .collect();
    assert!(learned.len() >= 3, "{learned:?}");
    all.extend(learned);
    for c in &all {
        let loaded = load_scenario_text(&d.path().join("conformance.ron"), &scenario(c))
            .unwrap_or_else(|e| panic!("{c}: {}", e.iter().map(|d| d.to_string()).collect::<Vec<_>>().join("\n")));
        let p = loaded.prepare(3).unwrap();
        let cfg = &p.config;
        let ctx = InitContext {
            step_s: p.demand.step_s,
            demand: &p.demand,
            service: &cfg.service,
            cluster: &cfg.cluster,
            seed: 3,
            slo: &cfg.slo,
        };
        let mut controller = cfg.controller.init(&ctx);
        let types = &cfg.cluster.instance_types;
        for (what, obs) in edge_observations() {
            let decision = controller.decide(&obs);
            let ok = match &decision {
                ScaleDecision::Hold => true,
                ScaleDecision::To { instances } => *instances <= types[1].max_count,
                ScaleDecision::Mix { instances } => {
                    instances.len() == types.len() && instances.iter().zip(types).all(|(n, t)| *n <= t.max_count)
                }
            };
            assert!(
                ok,
                "{c}: at '{what}' decided {decision:?}, outside the limits {:?}",
                types.iter().map(|t| (t.min_count, t.max_count)).collect::<Vec<_>>()
            );
            if let Some(diag) = controller.diagnostics() {
                assert!(!diag.non_finite_output, "{c}: at '{what}' its model gave a non-finite output");
            }
        }
    }
}
