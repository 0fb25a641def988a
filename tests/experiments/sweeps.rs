//! Experiment files and sweeps: stable ids, validation, determinism, resume, plots, equal-cost families, progress.

use super::*;

#[test]
fn the_shipped_experiment_expands_with_stable_ids() {
    let e = load_experiment(&repo().join("experiments/provisioning-whatif.ron"), out_root())
        .unwrap_or_else(|d| panic!("{d:?}"));
    let (cfg, cells) = (e.config, e.cells);
    assert_eq!(cells.len(), 3 * 4 * 3);
    assert_eq!(cfg.baseline.as_deref(), Some("hpa"));
    let ids: std::collections::BTreeSet<&str> = cells.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids.len(), cells.len(), "ids are unique");
    // A readable prefix and a digest of the full coordinates (the digest pins the id scheme: results of
    // earlier sweeps are found again only while it holds).
    assert_eq!(cells[0].id, "flash-crowd__provisioning_delay=Constant_s_60__hpa__seed1__fa5dcd011f82");
    assert!(cells[35].id.starts_with("flash-crowd__provisioning_delay=Constant_s_300__oracle__seed3__"));
    // The axis value and the controller are applied to the scenario.
    let c = &cells[35];
    let delay = &c.scenario.config.cluster.instance_types[0].provisioning_delay;
    assert_eq!(*delay, prescale_sim::cluster::Delay::Constant { s: 300.0 });
    assert!(matches!(c.scenario.config.controller, prescale_agents::ControllerConfig::Predictive(_)));
    // Stable: the same file expands to the same ids.
    let again = load_experiment(&repo().join("experiments/provisioning-whatif.ron"), out_root()).unwrap().cells;
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

/// Same results on 1 and 2 threads, byte for byte (every table is written in expansion order).
#[test]
fn sweeps_are_deterministic_across_thread_counts() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("one"), dir.path().join("two"));
    assert!(sweep(&a, &["--threads", "1"], None).status.success());
    assert!(sweep(&b, &["--threads", "2"], None).status.success());
    let exp = "provisioning-whatif";
    assert_eq!(read(a.join(exp).join("runs.csv")), read(b.join(exp).join("runs.csv")));
    let report = read(a.join(exp).join("report.md"));
    assert_eq!(report, read(b.join(exp).join("report.md")));
    // The baseline first in every table, then the experiment's order; ratios to the baseline beside the
    // paired differences.
    // (Per axis value: the controllers' table and the time-block table.)
    let first_rows: Vec<&str> = report.lines().filter(|l| l.starts_with("| hpa |")).collect();
    assert_eq!(first_rows.len(), 2 * 3, "{report}");
    assert!(report.contains("Over 4 time blocks of the scored period"), "{report}");
    let table = report.split("## ").nth(1).unwrap();
    let order: Vec<&str> = table
        .lines()
        .filter(|l| l.starts_with("| ") && !l.starts_with("| controller"))
        .take(4)
        .map(|l| l.split(" | ").next().unwrap())
        .collect();
    assert_eq!(order, ["| hpa", "| reference-hpa", "| last-value-aci", "| oracle"], "{table}");
    assert!(table.contains("Ratios to `hpa` on the same seeds"), "{table}");
    let manifest: serde_json::Value = serde_json::from_str(&read(b.join(exp).join("manifest.json"))).unwrap();
    assert_eq!(manifest["threads"], 2);
    assert_eq!(manifest["finished"], 36);
    assert_eq!(read(a.join(exp).join("runs.csv")).lines().count(), 37);
}

/// A rerun skips finished cells; interrupted leftovers are not results; a failing cell does not stop the
/// others; a folder of a different experiment is refused.
#[test]
fn sweeps_resume_isolate_failures_and_refuse_to_mix() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path();
    let runs = out.join("provisioning-whatif").join("runs");
    let cells = load_experiment(&repo().join("experiments/provisioning-whatif.ron"), out).unwrap().cells;
    let id = |delay: &str, controller: &str, seed: u64| {
        cells
            .iter()
            .find(|c| c.axis_values[0].1.contains(delay) && c.controller == controller && c.seed == seed)
            .unwrap()
            .id
            .clone()
    };
    let victim = &id("120", "oracle", 2);
    let first = sweep(out, &[], Some(("PRESCALE_FAIL_CELL", victim)));
    let (stdout, _) = text(&first);
    assert_eq!(first.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("35 runs done now, 0 finished before (verified, skipped), 0 damaged (run again), 1 failed"),
        "{stdout}"
    );
    assert!(stdout.contains(victim) && !runs.join(victim).exists());
    let before = read(out.join("provisioning-whatif/runs.csv"));
    assert_eq!(before.lines().count(), 36);
    // Interrupted work: a half-written temporary folder and a removed finished cell.
    std::fs::create_dir_all(runs.join(".tmp-something-123")).unwrap();
    let removed = &id("(s: 60)", "hpa", 1);
    std::fs::remove_dir_all(runs.join(removed)).unwrap();
    let second = sweep(out, &[], None);
    let (stdout, _) = text(&second);
    assert!(second.status.success(), "{stdout}");
    assert!(
        stdout.contains("2 runs done now, 34 finished before (verified, skipped), 0 damaged (run again), 0 failed"),
        "{stdout}"
    );
    assert!(!runs.join(".tmp-something-123").exists());
    assert_eq!(read(out.join("provisioning-whatif/runs.csv")).lines().count(), 37);
    // Extending the experiment — one more seed — reuses every finished cell and runs only the new ones.
    let file = repo().join("experiments/provisioning-whatif.ron");
    // A copy beside a copy of the scenario, so the scenario path reads as the original's and cells keep their ids.
    std::fs::create_dir_all(dir.path().join("x/experiments")).unwrap();
    std::fs::create_dir_all(dir.path().join("x/scenarios")).unwrap();
    std::fs::copy(repo().join("scenarios/flash-crowd.ron"), dir.path().join("x/scenarios/flash-crowd.ron")).unwrap();
    let with = |from: &str, to: &str| {
        let p = dir.path().join("x/experiments/provisioning-whatif.ron");
        std::fs::write(&p, read(file.clone()).replace(from, to)).unwrap();
        p
    };
    let extended = with("seeds: [1, 2, 3]", "seeds: [1, 2, 3, 4]");
    let run_ext = |p: &Path| {
        std::process::Command::new(crate::common::exe("prescale"))
            .args(["sweep", p.to_str().unwrap(), "--quiet", "--out", out.to_str().unwrap()])
            .output()
            .unwrap()
    };
    let grown = run_ext(&extended);
    let (stdout, stderr) = text(&grown);
    assert!(grown.status.success(), "{stdout}{stderr}");
    assert!(
        stdout.contains("12 runs done now, 36 finished before (verified, skipped), 0 damaged (run again), 0 failed"),
        "{stdout}"
    );
    assert_eq!(read(out.join("provisioning-whatif/runs.csv")).lines().count(), 49);
    // A controller name given a new definition would let old cells answer for it: refused, nothing runs.
    let redefined =
        with("Hpa(target_utilisation: 0.6, max_replicas: 80)", "Hpa(target_utilisation: 0.7, max_replicas: 80)");
    let refused = run_ext(&redefined);
    assert_eq!(refused.status.code(), Some(2));
    let err = text(&refused).1;
    assert!(err.contains("that this file does not extend (controller 'hpa' is defined differently)"), "{err}");
    assert_eq!(std::fs::read_dir(&runs).unwrap().count(), 48, "nothing ran");
}

/// `prescale plot` redraws figures from saved results (a sweep and a run), as PNG and SVG with their text.
#[test]
fn plots_are_drawn_from_saved_results() {
    let dir = tempfile::tempdir().unwrap();
    assert!(sweep(dir.path(), &[], None).status.success());
    let sweep_dir = dir.path().join("provisioning-whatif");
    let out = prescale(&["plot", sweep_dir.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out).1);
    for name in ["pareto", "whatif_provisioning_delay", "bars", "latency_cdf"] {
        let png = std::fs::read(sweep_dir.join("plots").join(format!("{name}.png"))).unwrap();
        assert!(png.starts_with(b"\x89PNG") && png.len() > 10_000, "{name}.png");
        let svg = read(sweep_dir.join("plots").join(format!("{name}.svg")));
        for label in ["hpa", "oracle", "last-value-aci"] {
            assert!(svg.contains(label), "{name}.svg lacks '{label}'");
        }
    }
    // One overlay per axis value (three delays), every controller of the first seed in it.
    for k in 1..=3 {
        let svg = read(sweep_dir.join("plots").join(format!("overlay_{k}.svg")));
        for label in ["hpa", "oracle", "last-value-aci", "demand", "SLO", "seed 1", "Cost since the window"] {
            assert!(svg.contains(label), "overlay_{k}.svg lacks '{label}'");
        }
    }
    let out = prescale(&["plot", sweep_dir.to_str().unwrap(), "--seed", "2", "--window-h", "1.5:3"]);
    assert!(out.status.success(), "{}", text(&out).1);
    assert!(read(sweep_dir.join("plots/overlay_2.svg")).contains("seed 2"));
    let out = prescale(&["plot", sweep_dir.to_str().unwrap(), "--seed", "99"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).1.contains("--seed 99: no run of this sweep has it (seeds: 1, 2, 3)"), "{}", text(&out).1);
    let out = prescale(&["plot", sweep_dir.to_str().unwrap(), "--window-h", "3:1"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).1.contains("expected FROM:TO in hours"), "{}", text(&out).1);
    let cov = read(sweep_dir.join("plots/coverage_cost.svg"));
    assert!(cov.contains("coverage of forecast + margin") && cov.contains("last-value-aci") && !cov.contains(">hpa<"));
    let run = std::fs::read_dir(sweep_dir.join("runs")).unwrap().flatten().next().unwrap().path();
    let out = prescale(&["plot", run.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out).1);
    let svg = read(run.join("plots/timeseries.svg"));
    for label in ["CPU cores", "p99 latency (s)", "SLO", "USD", "under-provisioning", "time (h)"] {
        assert!(svg.contains(label), "timeseries.svg lacks '{label}'");
    }
    let bad = prescale(&["plot", dir.path().to_str().unwrap()]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(text(&bad).1.contains("holds neither a run"), "{}", text(&bad).1);
    // Empty and truncated tables are errors, not empty figures (issue 11).
    let ts = run.join("timeseries.csv");
    let whole = read(ts.clone());
    std::fs::write(&ts, whole.lines().next().unwrap()).unwrap();
    let out = prescale(&["plot", run.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).1.contains("a header and no rows: nothing to plot"), "{}", text(&out).1);
    std::fs::write(&ts, &whole[..whole.len() / 2]).unwrap();
    let out = prescale(&["plot", run.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).1.contains("the table is truncated or damaged"), "{}", text(&out).1);
    std::fs::write(sweep_dir.join("runs.csv"), "cell_id,controller\n").unwrap();
    let out = prescale(&["plot", sweep_dir.to_str().unwrap()]);
    assert!(!out.status.success() && text(&out).1.contains("nothing to plot"), "{}", text(&out).1);
}

/// Families compared at equal cost: a family swept over its knob is read on its cost–SLO frontier at each
/// baseline member's cost and SLO minutes. A twin of the baseline family (the same controllers under other
/// names) must read at most the member's own figures (a frontier is never worse than its family's points),
/// exactly them where the member lies on the frontier, and a single-member family is not a curve.
#[test]
fn families_are_compared_at_equal_cost() {
    let dir = tempfile::tempdir().unwrap();
    let hpa = |name: &str, family: &str, t: f64| {
        format!(
            "(name: \"{name}\", family: \"{family}\", controller: ReferenceHpa(target_utilisation: {t}, min_instances: 2, max_instances: 80)),"
        )
    };
    // The baseline family by one knob declaration (hpa-0.4, hpa-0.6, hpa-0.8), its twin written out.
    let controllers: String = [0.4, 0.6, 0.8].iter().map(|t| hpa(&format!("twin-{t}"), "twin", *t)).collect();
    let exp = format!(
        r#"Experiment(name: "families", scenarios: ["{}"], controllers: [
            (name: "hpa", controller: ReferenceHpa(target_utilisation: 0.5, min_instances: 2, max_instances: 80), knob: (values: [0.4, 0.6, 0.8])),
            {controllers}
            (name: "oracle", controller: Predictive(predictor: Oracle, variance: Fixed(), allocator: (target_utilisation: 0.6))),
            (name: "expert", controller: HindsightExpert)],
            seeds: [1, 2], baseline: "hpa-0.6")"#,
        repo().join("scenarios/flash-crowd.ron").display()
    );
    let report = sweep_report(dir.path(), "families", &exp);
    let section = report.split("Equal-cost comparison with the `hpa` family").nth(1).expect("the section");
    let (section, floor) = section.split_once("The cost floor: `expert`").expect("the cost-floor section");
    let rows: Vec<Vec<&str>> = section
        .lines()
        .filter(|l| l.starts_with("| twin") || l.starts_with("| oracle"))
        .map(|l| l.split(" | ").collect())
        .collect();
    assert_eq!(rows.len(), 6, "{section}");
    let mut exact = 0;
    for r in rows.iter().filter(|r| r[0] == "| twin") {
        assert_eq!(r[1], "3");
        for cell in [r[3], r[5]] {
            let x = ratio(cell).unwrap_or_else(|| panic!("no reading: {r:?}"));
            assert!(x <= 1.0 + 1e-12, "a frontier worse than its own point: {r:?}");
            exact += (x == 1.0) as usize;
        }
    }
    assert!(exact >= 2, "some baseline member lies on the frontier: {section}");
    // The oracle is one point: no reading at another cost.
    assert!(rows.iter().filter(|r| r[0] == "| oracle").all(|r| r[4] == "0"), "{section}");
    // Read at the hindsight expert's SLO minutes, the twin families are one frontier: the same ratio to the
    // expert's cost, over the same seeds.
    let floor_row = |f: &str| {
        floor.lines().find(|l| l.starts_with(&format!("| {f} |"))).unwrap_or_else(|| panic!("{f}: {floor}")).to_string()
    };
    assert_eq!(floor_row("hpa").replacen("hpa", "twin", 1), floor_row("twin"), "{floor}");
    assert!(!floor.contains("| expert |"), "the expert is the floor, not a family: {floor}");
    // The figure draws each family's frontier.
    let p = prescale(&["plot", dir.path().join("r/families").to_str().unwrap()]);
    assert!(p.status.success(), "{}", text(&p).1);
    let svg = read(dir.path().join("r/families/plots/frontiers.svg"));
    assert!(svg.contains("Cost–SLO frontiers") && svg.contains("twin") && svg.contains("hpa"), "frontiers.svg");
}

/// A family's knob swept by one declaration: each value becomes a controller `<name>-<value>` of family
/// `<name>`; a value the field refuses, a value listed twice, a path that names no field, a controller with
/// no knob and a name clash with another entry are each named at the knob's own line.
#[test]
fn knob_sweeps_are_checked_at_their_values() {
    let out = prescale(&["validate", "tests/data/knob-experiment.ron"]);
    let (stdout, _) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    for want in [
        "knob-experiment.ron:6: controllers[0].knob.values[2]: must be in (0, 1], got 1.5",
        "knob-experiment.ron:6: controllers[0].knob.values[3]: 0.4 is listed twice",
        "knob-experiment.ron:8: controllers[2].knob.values[1]: 'instances' does not take 20.5",
        "knob-experiment.ron:9: controllers[3].knob.path: hindsight-expert has no single aggressiveness knob",
        "knob-experiment.ron:11: controllers[5].knob.values[0]: 'behaviour.x' names no field of kubernetes-hpa",
        "knob-experiment.ron:10: controllers[4].name: 'hpa-0.8' is listed twice",
        "knob-experiment.ron: 6 problems",
    ] {
        assert!(stdout.contains(want), "'{want}' missing from:\n{stdout}");
    }
    // `variance.alpha` reaches through the variance controller's variant: no problem at line 7.
    assert!(!stdout.contains("ron:7:"), "{stdout}");
}

/// A sweep whose output is not a terminal prints progress lines (runs done, failures, time left), so a long
/// sweep in a log or CI is never silent; `--quiet` prints none.
#[test]
fn sweeps_report_progress_lines_when_not_on_a_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let o = std::process::Command::new(crate::common::exe("prescale"))
        .current_dir(repo())
        .args(["sweep", "experiments/provisioning-whatif.ron", "--out", dir.path().to_str().unwrap()])
        .env("PRESCALE_PROGRESS_EVERY_S", "0")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o).1);
    let err = text(&o).1;
    assert!(err.contains("[provisioning-whatif] runs 1/36 (0 failed)"), "{err}");
    assert!(err.contains("[provisioning-whatif] runs 36/36 (0 failed)") && err.contains("s left"), "{err}");
    let quiet = sweep(&dir.path().join("q"), &[], Some(("PRESCALE_PROGRESS_EVERY_S", "0")));
    assert!(!text(&quiet).1.contains("runs 36/36"), "{}", text(&quiet).1);
}
