//! Experiment files: validation names every bad path and value before any run; expansion yields stable,
//! unique cell ids with the axis values and controllers applied.

mod common;

use common::{prescale, repo, text};
use prescale::experiment::load_experiment;

#[test]
fn the_shipped_experiment_expands_with_stable_ids() {
    let (cfg, cells) =
        load_experiment(&repo().join("experiments/provisioning-whatif.ron")).unwrap_or_else(|d| panic!("{d:?}"));
    assert_eq!(cells.len(), 3 * 4 * 3);
    assert_eq!(cfg.baseline.as_deref(), Some("hpa"));
    let ids: std::collections::BTreeSet<&str> = cells.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids.len(), cells.len(), "ids are unique");
    assert_eq!(cells[0].id, "flash-crowd__provisioning_delay=Constant_s_60__hpa__seed1");
    assert_eq!(cells[35].id, "flash-crowd__provisioning_delay=Constant_s_300__oracle__seed3");
    // The axis value and the controller are applied to the scenario.
    let c = &cells[35];
    let delay = &c.scenario.config.cluster.instance_types[0].provisioning_delay;
    assert_eq!(*delay, prescale_sim::cluster::Delay::Constant { s: 300.0 });
    assert!(matches!(c.scenario.config.controller, prescale_agents::ControllerConfig::Predictive(_)));
    // Stable: the same file expands to the same ids.
    let (_, again) = load_experiment(&repo().join("experiments/provisioning-whatif.ron")).unwrap();
    assert!(again.iter().zip(&cells).all(|(a, b)| a.id == b.id && a.seed == b.seed));
}

#[test]
fn validate_names_every_bad_path_and_value() {
    let out = prescale(&["validate", "tests/data/broken-experiment.ron", "tests/data/wrong-type-experiment.ron"]);
    let (stdout, _) = text(&out);
    assert_eq!(out.status.code(), Some(1));
    for want in [
        "broken-experiment.ron: 5 problems",
        "broken-experiment.ron:13: seeds[2]: seed 1 is listed twice",
        "broken-experiment.ron:7: axes[1].values: axis 'slo.latency_threshold_s' has no values",
        "broken-experiment.ron:11: controllers[1].name: 'hpa' is listed twice",
        "broken-experiment.ron:14: baseline: names no controller of this experiment",
        "broken-experiment.ron:6: axes[0].path: 'cluster.instance_types[0].provisioning_delayy' names no field",
        "wrong-type-experiment.ron:5: axes[0].values[1]: with service.mean_service_s = \"fast\": Expected float",
        "wrong-type-experiment.ron:5: axes[0].values[2]: with service.mean_service_s = -1: service.mean_service_s: must be a finite number > 0",
    ] {
        assert!(stdout.contains(want), "'{want}' missing from:\n{stdout}");
    }
    let ok = prescale(&["validate", "experiments/provisioning-whatif.ron"]);
    assert!(ok.status.success(), "{}", text(&ok).0);
    assert!(text(&ok).0.contains("36 runs"));
}
