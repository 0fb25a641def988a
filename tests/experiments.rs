//! Experiment files: validation names every bad path and value before any run; expansion yields stable,
//! unique cell ids with the axis values and controllers applied.

mod common;

use std::path::Path;

use common::{prescale, repo, text};
use prescale::experiment::load_experiment;

fn out_root() -> &'static std::path::Path {
    std::path::Path::new("results")
}

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

fn sweep(out: &std::path::Path, extra: &[&str], env: Option<(&str, &str)>) -> std::process::Output {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_prescale"));
    cmd.current_dir(repo())
        .args(["sweep", "experiments/provisioning-whatif.ron", "--quiet", "--out", out.to_str().unwrap()])
        .args(extra);
    if let Some((k, v)) = env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

/// Writes the experiment `exp` (named `name`) into `dir`, sweeps it into `dir/r` and returns its report.
fn sweep_report(dir: &std::path::Path, name: &str, exp: &str) -> String {
    let file = dir.join(format!("{name}.ron"));
    std::fs::write(&file, exp).unwrap();
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_prescale"))
        .args(["sweep", file.to_str().unwrap(), "--quiet", "--out", dir.join("r").to_str().unwrap()])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o).1);
    read(dir.join("r").join(name).join("report.md"))
}

fn read(p: std::path::PathBuf) -> String {
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
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
        std::process::Command::new(env!("CARGO_BIN_EXE_prescale"))
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
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_prescale"))
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

/// The fair fight of `experiments/fair-fight/` (four real traces of ../shared/traces, three delays, families
/// swept over their knobs, a trained GRU per trace) validates as shipped: every scenario, stage and
/// controller, and no stage learns from a scored period.
#[test]
fn the_fair_fight_validates_on_the_shared_traces() {
    if common::shared_traces().is_none() {
        eprintln!("skipped: ../shared/traces is not beside the repository");
        return;
    }
    validates_as_shipped(
        "experiments/fair-fight/fair-fight.ron",
        "936 runs = 4 scenario(s) x 3 axis combination(s) x 26 controller(s) x 3 seed(s); 4 training(s) first",
    );
}

/// The level-shift experiment of `experiments/level-shift/` validates as shipped, and its trace is what its
/// README says: the scored last 30 % runs at a mean at least 3x below the first 35 % its models learn from.
#[test]
fn the_level_shift_experiment_validates_and_its_trace_shifts_threefold() {
    let Some(traces) = common::shared_traces() else {
        eprintln!("skipped: ../shared/traces is not beside the repository");
        return;
    };
    validates_as_shipped(
        "experiments/level-shift/level-shift.ron",
        "138 runs = 1 scenario(s) x 1 axis combination(s) x 46 controller(s) x 3 seed(s); 3 training(s) first",
    );
    let text = std::fs::read_to_string(traces.join("nab_ec2_network_in_257a54.csv")).unwrap();
    let v: Vec<f64> = text.lines().skip(1).map(|l| l.rsplit(',').next().unwrap().parse().unwrap()).collect();
    let mean = |x: &[f64]| x.iter().sum::<f64>() / x.len() as f64;
    let n = v.len();
    let (train, test) = (mean(&v[..n * 35 / 100]), mean(&v[n * 70 / 100..]));
    assert!(train / test >= 3.0, "training mean {train}, test mean {test}");
}

/// What level adaptation can reach on that shift (`experiments/level-shift/level-oracle.ron`, README "What level
/// adaptation can reach"): a predictor told the future level exactly — it fails the run if its reading of the
/// trace disagrees with what the run observes — tracks the demand to a few percent of its mean, and yet at the
/// hindsight expert's SLO minutes it costs well over 1.3x the expert: the gap the issue's goal measures is the
/// bursts, not the level. Reduced grid: one seed, three settings.
#[test]
fn knowing_the_future_level_does_not_bring_the_cost_near_the_clairvoyant_expert() {
    let Some(traces) = common::shared_traces() else {
        eprintln!("skipped: ../shared/traces is not beside the repository");
        return;
    };
    validates_as_shipped(
        "experiments/level-shift/level-oracle.ron",
        "45 runs = 1 scenario(s) x 1 axis combination(s) x 15 controller(s) x 3 seed(s)",
    );
    let dir = tempfile::tempdir().unwrap();
    let exp = format!(
        r#"Experiment(name: "level", scenarios: ["{scenario}"], axes: [],
            controllers: [
                (name: "level", controller: Predictive(
                    predictor: External(command: ["python3", "{oracle}", "{trace}", "--scale", "0.4"], timeout_s: 60),
                    variance: AdaptiveConformal(alpha: 0.05, gamma: 0.005, window_s: 86400),
                    allocator: (target_utilisation: 0.6)), knob: (values: [0.2, 0.3, 0.6])),
                (name: "expert", controller: HindsightExpert),
            ],
            seeds: [1], baseline: "level-0.6")"#,
        scenario = repo().join("experiments/level-shift/ec2-network-in.ron").display(),
        oracle = repo().join("experiments/level-shift/level_oracle.py").display(),
        trace = traces.join("nab_ec2_network_in_257a54.csv").display(),
    );
    let report = sweep_report(dir.path(), "level", &exp);
    for run in runs_csv(&dir.path().join("r/level/runs.csv")).iter().filter(|r| r["controller"].starts_with("level-")) {
        // The test period's mean demand is about 30 cores; its bursts reach 166.
        let m: f64 = run["forecast_mae_cores"].parse().unwrap();
        assert!(m < 2.0, "{}: forecast MAE {m} cores", run["controller"]);
    }
    let floor = report.split("The cost floor").nth(1).expect("the cost floor section");
    let row = floor.lines().find(|l| l.starts_with("| level |")).unwrap_or_else(|| panic!("{floor}"));
    let r =
        ratio(row.split(" | ").nth(2).unwrap()).unwrap_or_else(|| panic!("not read at the expert's minutes: {row}"));
    assert!(r > 2.0, "the level oracle at {r}x the expert's cost at its SLO minutes: {row}");
}

/// The expert's frontier (`PricedHindsightExpert` swept over its price): a dearer violated minute buys fewer
/// violated minutes for more instance cost, the dearest is the hard expert (which meets every peak it can), and
/// report.md reads another family at each point — at or above the expert's cost (it knows the future), and on
/// this shift the HPA within 1.5x of it at the cheapest point's minutes (README, level-shift: 1.13x). A negative
/// price is refused by its path.
#[test]
fn the_priced_expert_traces_the_experts_frontier_and_families_are_read_against_it() {
    if common::shared_traces().is_none() {
        eprintln!("skipped: ../shared/traces is not beside the repository");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let exp = format!(
        r#"Experiment(name: "frontier", scenarios: ["{}"], axes: [],
            controllers: [
                (name: "hpa", controller: Hpa(target_utilisation: 0.6, min_replicas: 2, max_replicas: 400), knob: (values: [0.6, 0.7, 0.8, 0.9])),
                (name: "expert", controller: HindsightExpert),
                (name: "priced", controller: PricedHindsightExpert(violation_price_usd_per_min: 1.0), knob: (values: [0.03, 0.1, 1000])),
            ],
            seeds: [1], baseline: "hpa-0.6")"#,
        repo().join("experiments/level-shift/ec2-network-in.ron").display()
    );
    let report = sweep_report(dir.path(), "frontier", &exp);
    let runs = runs_csv(&dir.path().join("r/frontier/runs.csv"));
    let point = |name: &str| {
        let r = runs.iter().find(|r| r["controller"] == name).unwrap_or_else(|| panic!("no run of {name}"));
        (r["slo_violation_minutes"].parse::<f64>().unwrap(), r["cost_usd"].parse::<f64>().unwrap())
    };
    let (cheap, mid, dear, hard) = (point("priced-0.03"), point("priced-0.1"), point("priced-1000"), point("expert"));
    assert!(cheap.0 > mid.0 && mid.0 > dear.0, "minutes fall as the price rises: {cheap:?} {mid:?} {dear:?}");
    assert!(cheap.1 < mid.1 && mid.1 < dear.1, "cost rises with the price: {cheap:?} {mid:?} {dear:?}");
    assert_eq!(dear.0, hard.0, "at a price no instance outweighs, the priced expert is the hard one");
    assert!((dear.1 - hard.1).abs() <= 1e-9 * hard.1, "{dear:?} vs {hard:?}");

    let section = report.split("The expert's frontier: `priced`").nth(1).expect("the expert's frontier section");
    let rows: Vec<&str> = section.lines().filter(|l| l.starts_with("| hpa |")).collect();
    assert_eq!(rows.len(), 3, "one row per point of the frontier: {section}");
    for r in &rows {
        if let Some(x) = ratio(r.split(" | ").nth(5).unwrap()) {
            assert!(x >= 1.0, "a family under the clairvoyant expert's frontier: {r}");
        }
    }
    let at_cheap = rows.iter().find(|r| r.contains("| priced-0.03 |")).unwrap();
    let x = ratio(at_cheap.split(" | ").nth(5).unwrap()).unwrap_or_else(|| panic!("not read: {at_cheap}"));
    assert!(x < 1.5, "the HPA at {x}x the expert at the expert's {} minutes: {at_cheap}", cheap.0);

    let bad = exp.replace("knob: (values: [0.03, 0.1, 1000])", "knob: (values: [-0.5])");
    std::fs::write(dir.path().join("bad.ron"), bad).unwrap();
    let o = prescale(&["validate", dir.path().join("bad.ron").to_str().unwrap()]);
    let (out, err) = text(&o);
    assert!(!o.status.success(), "{out}");
    assert!(
        format!("{out}{err}").contains("controllers[2].knob.values[0]") && format!("{out}{err}").contains(">= 0"),
        "{out}{err}"
    );
}

/// Issue 13's level-shift goal, end to end on one seed (`experiments/level-shift/README.md`, "Read on the
/// expert's frontier"): the window-level GRU trained for the median on the busy first 35 % of the EC2 trace
/// (about 6 s), run on the quiet last 30 % (3.3x lower) with a conformal margin, costs at most 1.3x the
/// hindsight expert at equal SLO minutes — read at the expert's point near 90 minutes (priced at 0.03 USD a
/// violated minute), which its settings 0.85–0.9 bracket (README: 1.23x, measured at 0.875 directly).
#[test]
fn after_a_threefold_level_shift_the_median_gru_costs_within_1_3x_of_the_expert_at_equal_slo_minutes() {
    let Some(traces) = common::shared_traces() else {
        eprintln!("skipped: ../shared/traces is not beside the repository");
        return;
    };
    assert!(traces.join("nab_ec2_network_in_257a54.csv").exists());
    let dir = tempfile::tempdir().unwrap();
    let exp = format!(
        r#"Experiment(name: "shift", scenarios: ["{}"], axes: [],
            training: [
                (name: "gru-window-median", slice: Fraction(from: 0.0, to: 0.35), task: Forecast,
                 model: (architecture: Gru(hidden: 32), inputs: [Rate, TimeOfDay], window_steps: 60, horizon_steps: 6, output: Quantiles([0.5]), level: Window),
                 training: (max_epochs: 15, batch_size: 256, learning_rate: 0.003, patience: 4, seed: 1, max_batches_per_epoch: 60)),
            ],
            controllers: [
                (name: "gru", controller: Predictive(predictor: Neural(model: "@gru-window-median"),
                    variance: AdaptiveConformal(alpha: 0.05, gamma: 0.005, window_s: 86400),
                    allocator: (target_utilisation: 0.6)), knob: (values: [0.85, 0.9])),
                (name: "expert", controller: PricedHindsightExpert(violation_price_usd_per_min: 0.03), knob: (values: [0.03, 0.5])),
            ],
            seeds: [1], baseline: "gru-0.85")"#,
        repo().join("experiments/level-shift/ec2-network-in.ron").display()
    );
    let report = sweep_report(dir.path(), "shift", &exp);
    let section = report.split("The expert's frontier: `expert`").nth(1).expect("the expert's frontier section");
    let row = section.lines().find(|l| l.starts_with("| gru |") && l.contains("| expert-0.03 |")).unwrap();
    let r = ratio(row.split(" | ").nth(5).unwrap()).unwrap_or_else(|| panic!("the GRU is not read there: {row}"));
    assert!((1.0..=1.3).contains(&r), "the median GRU at {r}x the expert at equal SLO minutes: {row}");
}

/// A sweep's `runs.csv` as one map of column to cell per run (no cell there holds a comma).
fn runs_csv(path: &Path) -> Vec<std::collections::HashMap<String, String>> {
    let text = read(path.to_path_buf());
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().expect("a header").split(',').collect();
    lines.map(|l| header.iter().map(|h| h.to_string()).zip(l.split(',').map(String::from)).collect()).collect()
}

/// `prescale validate FILE` succeeds and states `plan` (runs and trainings).
fn validates_as_shipped(file: &str, plan: &str) {
    let o = prescale(&["validate", file]);
    let (out, _) = text(&o);
    assert!(o.status.success() && out.contains(plan), "{file}: {out}");
}

/// The fair fight's claim on the NASA HTTP trace, end to end on a reduced grid (one delay, one seed, no
/// training): Holt-Winters + conformal margin, read on its cost–SLO frontier at the HPA's own costs, has at most
/// half the HPA's SLO-violation minutes (experiments/fair-fight/README.md measures 0.07–0.14), and no family
/// undercuts the hindsight expert's cost at the expert's SLO minutes.
#[test]
fn on_nasa_http_prediction_beats_the_hpa_at_equal_cost() {
    if common::shared_traces().is_none() {
        eprintln!("skipped: ../shared/traces is not beside the repository");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let exp = format!(
        r#"Experiment(name: "nasa", scenarios: ["{}"],
            axes: [(path: "cluster.instance_types[0].provisioning_delay", values: ["LogNormal(median_s: 120, sigma: 0.25)"])],
            controllers: [
                (name: "hpa", controller: Hpa(target_utilisation: 0.6, min_replicas: 2, max_replicas: 400), knob: (values: [0.4, 0.5, 0.6, 0.7])),
                (name: "hw", controller: Predictive(predictor: HoltWinters(period_s: 86400, fit: true),
                    variance: AdaptiveConformal(alpha: 0.05, gamma: 0.005, window_s: 86400), allocator: (target_utilisation: 0.6)),
                 knob: (values: [0.5, 0.6, 0.7, 0.8, 0.9])),
                (name: "expert", controller: HindsightExpert),
            ],
            seeds: [1], baseline: "hpa-0.6")"#,
        repo().join("experiments/fair-fight/nasa-http.ron").display()
    );
    let report = sweep_report(dir.path(), "nasa", &exp);
    let section = report.split("Equal-cost comparison with the `hpa` family").nth(1).expect("the section");
    let (section, floor) = section.split_once("The cost floor").expect("the cost floor");
    let read_at = slo_ratios_at_equal_cost(section, "hw");
    assert!(!read_at.is_empty(), "the frontier is read at some HPA setting: {section}");
    assert!(read_at.iter().all(|r| *r <= 0.5), "SLO minutes at equal cost over 0.5x the HPA's: {read_at:?}\n{section}");
    for l in floor.lines().filter(|l| l.starts_with("| hpa |") || l.starts_with("| hw |")) {
        if let Some(r) = ratio(l.split(" | ").nth(2).unwrap()) {
            assert!(r >= 1.0, "a family under the clairvoyant expert's cost: {l}");
        }
    }
}

/// The memory- and network-bound experiments of `experiments/multi-resource/` validate as shipped (their two
/// training stages, one with targets [Rate, Memory] or [Rate, Network], bound to the scenario's stated
/// demand), and the memory-bound claim holds on a reduced grid without training: the classical multi-resource
/// family (a second Holt-Winters for the memory, its own margin), read at the rate-only family's costs, has at
/// most half its SLO-violation minutes (experiments/multi-resource/README.md measures 0.0009x). The sweep runs
/// from another folder with a relative `--out`, as a user would.
#[test]
fn on_a_memory_bound_trace_the_multi_resource_agent_beats_the_rate_only_one_at_equal_cost() {
    if common::shared_traces().is_none() {
        eprintln!("skipped: ../shared/traces is not beside the repository");
        return;
    }
    let plan = "102 runs = 1 scenario(s) x 1 axis combination(s) x 34 controller(s) x 3 seed(s); 2 training(s) first";
    validates_as_shipped("experiments/multi-resource/memory-bound.ron", plan);
    validates_as_shipped("experiments/multi-resource/network-bound.ron", plan);
    validates_as_shipped(
        "experiments/multi-resource/bc-memory.ron",
        "38 runs = 1 scenario(s) x 1 axis combination(s) x 19 controller(s) x 2 seed(s); 9 training(s) first",
    );
    // A stage's model, with a relative results folder, is where the sweep trains it (relative to where the
    // command runs), not below the experiment's folder.
    let e = load_experiment(&repo().join("experiments/multi-resource/memory-bound.ron"), Path::new("results")).unwrap();
    let models = std::env::current_dir().unwrap().join("results/memory-bound/models");
    let cell = e.cells.iter().find(|c| c.controller == "gru-mem-0.6").expect("a gru-mem cell");
    let model = cell.scenario.config.controller.model().expect("a model").to_string();
    assert!(Path::new(&model).starts_with(&models), "{model} is not under {}", models.display());
    let dir = tempfile::tempdir().unwrap();
    let predictive = |memory: &str| {
        format!(
            "Predictive(predictor: HoltWinters(period_s: 86400, fit: true), variance: AdaptiveConformal(alpha: 0.05, \
             gamma: 0.005, window_s: 86400), allocator: (target_utilisation: 0.6){memory})"
        )
    };
    let exp = format!(
        r#"Experiment(name: "mem", scenarios: ["{}"],
            controllers: [
                (name: "rate-only", controller: {}, knob: (values: [0.3, 0.4, 0.5, 0.6])),
                (name: "mem", controller: {}, knob: (values: [0.6, 0.8, 0.9, 0.95])),
            ],
            seeds: [1], baseline: "rate-only-0.5")"#,
        repo().join("experiments/multi-resource/alibaba-memory.ron").display(),
        predictive(", memory: FromRate"),
        predictive("")
    );
    let file = dir.path().join("mem.ron");
    std::fs::write(&file, exp).unwrap();
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_prescale"))
        .args(["sweep", file.to_str().unwrap(), "--quiet", "--out", "r"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o).1);
    let report = read(dir.path().join("r/mem/report.md"));
    let section = report.split("Equal-cost comparison with the `rate-only` family").nth(1).expect("the section");
    let read_at = slo_ratios_at_equal_cost(section, "mem");
    assert!(!read_at.is_empty(), "the frontier is read at some rate-only setting: {section}");
    assert!(read_at.iter().all(|r| *r <= 0.5), "SLO minutes at equal cost over 0.5x the rate-only's: {read_at:?}");
}

/// A report's equal-cost table, the rows of `family`: the SLO-minute ratios read at a baseline member's cost
/// (the mean before any `±`), where the family's range allowed a reading.
fn slo_ratios_at_equal_cost(section: &str, family: &str) -> Vec<f64> {
    section
        .lines()
        .filter(|l| l.starts_with(&format!("| {family} |")))
        .filter_map(|l| ratio(l.split(" | ").nth(3).unwrap()))
        .collect()
}

/// A report cell's mean (`0.41 ± 0.03` → 0.41); `None` for `–`.
fn ratio(cell: &str) -> Option<f64> {
    cell.split(" ± ").next().unwrap().trim().parse::<f64>().ok()
}

/// `prescale scaffold` on a trace as an exporter writes it (semicolons, unix milliseconds, a hole, a run of
/// zeros): two files that validate, a scenario sized by validate's own sizing around the scaffold's target, that
/// runs; nothing overwritten without `--force`; a trace too short or without demand refused by name.
#[test]
fn a_new_trace_is_scaffolded_into_a_scenario_and_a_fight_that_validate_and_run() {
    let d = tempfile::tempdir().unwrap();
    // Five days at five minutes: a daily cycle, one empty cell, an hour of zeros.
    let mut csv = String::from("time_ms;rps\n");
    for i in 0..1440u64 {
        let t_ms = 1_700_000_000_000 + 300_000 * i;
        let day = (i % 288) as f64 / 288.0;
        let v = 50.0 + 30.0 * (2.0 * std::f64::consts::PI * day).sin() + (i % 7) as f64;
        let cell = match i {
            100 => String::new(),
            500..=511 => "0".to_string(),
            _ => format!("{v:.2}"),
        };
        csv.push_str(&format!("{t_ms};{cell}\n"));
    }
    std::fs::write(d.path().join("exported.csv"), &csv).unwrap();
    let out = d.path().join("cfg");
    let args = |extra: &[&str]| {
        let mut a: Vec<String> =
            vec!["scaffold".into(), d.path().join("exported.csv").to_str().unwrap().into(), "--out".into()];
        a.push(out.to_str().unwrap().to_string());
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };
    let run = |a: Vec<String>| prescale(&a.iter().map(String::as_str).collect::<Vec<_>>());
    let o = run(args(&["--meaning", "requests-per-second"]));
    let (stdout, stderr) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{stdout}{stderr}");
    for needle in [
        "unix-milliseconds timestamps (column 'time_ms'), nominal interval 300 s",
        "rows with a missing value 1 (dropped)",
        "column 'rps' as RequestsPerSecond, amplitude_scale ",
        "runs and one GRU training",
        "prescale sweep ",
    ] {
        assert!(stdout.contains(needle), "'{needle}' missing from: {stdout}");
    }
    let (scenario, fight) = (out.join("exported.ron"), out.join("exported-fight.ron"));
    // 26 controllers (three families of six settings, the HPA's seven, the hard expert) and the expert's
    // frontier: five or six prices (two multiples may round to one 1-2-5 number), rising; three seeds each.
    let fight_text = std::fs::read_to_string(&fight).unwrap();
    let prices: Vec<f64> = fight_text
        .split("PricedHindsightExpert(")
        .nth(1)
        .and_then(|t| t.split("values: [").nth(1))
        .and_then(|t| t.split(']').next())
        .unwrap_or_else(|| panic!("no expert's frontier in {fight_text}"))
        .split(", ")
        .map(|v| v.parse().unwrap())
        .collect();
    assert!((5..=6).contains(&prices.len()) && prices.windows(2).all(|w| w[0] < w[1]), "{prices:?}");
    let runs = 3 * (26 + prices.len());
    assert!(stdout.contains(&format!("({runs} runs and one GRU training)")), "{runs} runs: {stdout}");
    let scenario_text = std::fs::read_to_string(&scenario).unwrap();
    assert!(scenario_text.contains("policies: (missing: Drop)"), "{scenario_text}");
    assert!(scenario_text.contains("1 runs of zeros (12 rows)"), "{scenario_text}");
    assert!(scenario_text.contains("path: \"../exported.csv\""), "relative to the scenario: {scenario_text}");
    // Both validate; the p99 rate needs about the target (a 1-2-5 amplitude: within a factor of 1.6 of it).
    let v = prescale(&["validate", scenario.to_str().unwrap(), fight.to_str().unwrap()]);
    let (vout, verr) = text(&v);
    assert_eq!(v.status.code(), Some(0), "{vout}{verr}");
    assert!(!vout.contains("warning"), "{vout}");
    let p99_need: u32 = vout
        .split("the SLO needs ")
        .nth(1)
        .and_then(|s| s.split(" / ").nth(1))
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or_else(|| panic!("no sizing in: {vout}"));
    let target = prescale::scaffold::TARGET_P99_INSTANCES as f64;
    assert!((target / 1.6..=target * 1.6).contains(&(p99_need as f64)), "p99 needs {p99_need}: {vout}");
    // The scenario runs as it is.
    let r =
        prescale(&["run", scenario.to_str().unwrap(), "--out", d.path().join("results").to_str().unwrap(), "--quiet"]);
    assert_eq!(r.status.code(), Some(0), "{:?}", text(&r));
    // Nothing is overwritten unless asked.
    let before = std::fs::read_to_string(&fight).unwrap();
    let again = run(args(&[]));
    assert_ne!(again.status.code(), Some(0));
    assert!(text(&again).1.contains("exist; --force replaces them"), "{:?}", text(&again));
    assert_eq!(std::fs::read_to_string(&fight).unwrap(), before);
    assert_eq!(run(args(&["--force"])).status.code(), Some(0));
    // A trace too short to split, and one without demand.
    std::fs::write(d.path().join("short.csv"), "timestamp,value\n0,1\n60,2\n120,3\n").unwrap();
    std::fs::write(
        d.path().join("idle.csv"),
        (0..2000).fold("timestamp,value\n".to_string(), |s, i| s + &format!("{},0\n", 60 * i)),
    )
    .unwrap();
    for (file, needle) in [("short.csv", "too short to learn from"), ("idle.csv", "99th percentile is 0")] {
        let o = prescale(&["scaffold", d.path().join(file).to_str().unwrap(), "--out", out.to_str().unwrap()]);
        assert_ne!(o.status.code(), Some(0), "{file}");
        assert!(text(&o).1.contains(needle), "{file}: {:?}", text(&o));
    }
    // Dates written day first: refused with the flag to say so, then read as stated.
    let day_first: String = (0..1440u32).fold("Date,Requests\n".to_string(), |s, i| {
        let (day, minute) = (1 + i / 288, (i % 288) * 5);
        s + &format!("{day:02}/03/2024 {:02}:{:02},{}\n", minute / 60, minute % 60, 40 + i % 13)
    });
    std::fs::write(d.path().join("day-first.csv"), day_first).unwrap();
    let df = |extra: &[&str]| {
        let (trace, to) = (d.path().join("day-first.csv"), d.path().join("df"));
        let mut a = vec!["scaffold", trace.to_str().unwrap(), "--out", to.to_str().unwrap()];
        a.extend_from_slice(extra);
        prescale(&a)
    };
    let o = df(&[]);
    assert!(text(&o).1.contains("--date-order day-first or month-first"), "{:?}", text(&o));
    let o = df(&["--date-order", "day-first"]);
    assert_eq!(o.status.code(), Some(0), "{:?}", text(&o));
    assert!(
        text(&o).0.contains("1440 rows, day-first timestamps (column 'Date'), nominal interval 300 s"),
        "{:?}",
        text(&o)
    );
    let names: Vec<String> =
        std::fs::read_dir(&out).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    assert_eq!(names.len(), 2, "only the two files, no temporary ones: {names:?}");
}
