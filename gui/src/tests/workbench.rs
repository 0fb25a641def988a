//! The workbench driven as a user drives it, through its accessibility labels (egui_kittest), with no window
//! and no GPU (snapshots render with wgpu on Mesa's software GL). Every figure it shows is compared with the
//! library's own result for the same file.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use egui_kittest::Harness;
use egui_kittest::kittest::{NodeT, Queryable};
use prescale_gui::Workbench;
use prescale_gui::app::Persisted;

/// The shipped flash crowd, by a path relative to the package (cargo runs tests there), so that the snapshots
/// do not depend on where the repository is checked out.
fn flash_crowd() -> PathBuf {
    assert!(Path::new("Cargo.toml").is_file() && Path::new("../scenarios").is_dir(), "tests run in gui/");
    PathBuf::from("../scenarios/flash-crowd.ron")
}

fn harness() -> Harness<'static, Workbench> {
    // As the binary does: learned controllers' model directories are checked with libtorch.
    prescale::cli::install_torch();
    Harness::builder()
        .with_size([1400.0, 1000.0])
        .build_ui_state(|ui, app: &mut Workbench| app.show(ui), Workbench::with(Persisted::default()))
}

/// Replaces the text of the text field labelled `label` by `text`, as a screen reader does (so that a field
/// scrolled out of view can be set too).
fn set_text(h: &mut Harness<'_, Workbench>, label: &str, text: &str) {
    h.get_by_label(label).focus();
    h.run();
    h.get_by_label(label).set_text_value_accesskit(text);
    h.run();
    assert_eq!(h.get_by_label(label).value().as_deref(), Some(text), "the field {label} took the text");
}

fn open(h: &mut Harness<'_, Workbench>, path: &Path) {
    set_text(h, "path", &path.display().to_string());
    h.get_by_label("Open").click_accesskit();
    h.run();
}

/// Steps the UI until the background run has finished.
fn wait_for_run(h: &mut Harness<'_, Workbench>) {
    let t0 = Instant::now();
    while h.state().is_running() {
        h.step();
        std::thread::sleep(Duration::from_millis(5));
        assert!(t0.elapsed() < Duration::from_secs(120), "the run did not finish");
    }
    h.run();
}

/// The SLO-violation minutes of `text` run with seed 1 by the library, as the workbench writes them.
fn library_slo_minutes(file: &Path, text: &str) -> String {
    let loaded = prescale::files::scenario_io::load_scenario_text(file, text).expect("valid");
    let prepared = loaded.prepare(1).expect("prepares");
    let out = prescale_sim::scenario::run(&prepared, 1, &mut |_| {});
    prescale_gui::plots::fmt(out.summary.slo_violation_minutes)
}

/// The rest of the one label that starts with `prefix`.
fn label_value(h: &Harness<'_, Workbench>, prefix: &str) -> String {
    // A label's text is its accesskit value.
    let found: Vec<String> = h
        .query_all_by_label_contains(prefix)
        .filter_map(|n| n.accesskit_node().value().map(|v| v.to_string()))
        .filter(|v| v.starts_with(prefix))
        .collect();
    assert_eq!(found.len(), 1, "labels starting with {prefix:?}: {found:?}");
    found[0][prefix.len()..].trim().to_string()
}

/// Open the shipped flash crowd, type a negative provisioning delay (the library's problem shows beside the
/// field, with its dotted path, and Run is refused), type a valid one, run, and read the SLO minutes: the
/// library's figure for the same text. Then save, and read the saved file back with the library.
#[test]
fn edit_validate_run_and_save() {
    let mut h = harness();
    open(&mut h, &flash_crowd());
    assert!(h.state().doc.is_some(), "{}", h.state().message);

    set_text(&mut h, "median_s", "-5");
    let problems = h.query_all_by_label_contains("provisioning_delay.median_s: must be a finite number > 0").count();
    assert!(problems >= 1, "the problem is shown");
    assert!(h.state().doc.as_ref().unwrap().loaded.is_none());
    h.get_by_label("Run").click();
    h.run();
    assert!(!h.state().is_running(), "a scenario with problems does not run");

    set_text(&mut h, "median_s", "300");
    assert!(
        h.state().doc.as_ref().unwrap().diagnostics.is_empty(),
        "{:?}",
        h.state().doc.as_ref().unwrap().diagnostics
    );
    h.get_by_label("Run").click();
    h.step();
    wait_for_run(&mut h);

    let shown = label_value(&h, "SLO-violation minutes: ");
    let text = std::fs::read_to_string(flash_crowd()).unwrap().replace("median_s: 110", "median_s: 300");
    assert_eq!(shown, library_slo_minutes(&flash_crowd(), &text));
    // A 5-minute provisioning delay makes the crowd worse than the shipped 110 s (9 minutes).
    let unchanged = std::fs::read_to_string(flash_crowd()).unwrap();
    assert!(shown.parse::<f64>().unwrap() > library_slo_minutes(&flash_crowd(), &unchanged).parse::<f64>().unwrap());
    // The cost panel ends at the bill the summary reports (the flash crowd has no history period).
    let r = h.state().current.as_ref().unwrap();
    assert_eq!(r.series.cost_so_far_usd.last().copied(), Some(r.figures.cost_usd));
    h.snapshot("flash-crowd-run");

    let dir = tempfile::tempdir().unwrap();
    let saved = dir.path().join("slow-provisioning.ron");
    set_text(&mut h, "path", &saved.display().to_string());
    h.get_by_label("Save as path").click_accesskit();
    h.run();
    let loaded = prescale::files::scenario_io::load_scenario(&saved).expect("the saved file is a valid scenario");
    let delay = serde_json::to_value(&loaded.config.cluster.instance_types[0].provisioning_delay).unwrap();
    assert_eq!(delay["LogNormal"]["median_s"], serde_json::json!(300.0), "{delay}");
}

/// Run the flash crowd under its HPA, pin it, switch the controller to the oracle from the preset menu, run
/// again: both runs' figures are the library's, and the table shows their difference.
#[test]
fn pin_and_compare_two_controllers() {
    let mut h = harness();
    open(&mut h, &flash_crowd());
    h.get_by_label("Run").click();
    h.step();
    wait_for_run(&mut h);
    let hpa = label_value(&h, "SLO-violation minutes: ");
    let text = std::fs::read_to_string(flash_crowd()).unwrap();
    assert_eq!(hpa, library_slo_minutes(&flash_crowd(), &text));
    h.get_by_label("Pin this run").click();
    h.run();

    h.get_by_label("change controller").click_accesskit();
    h.run();
    h.get_by_label("Predictive: oracle").click_accesskit();
    h.run();
    let controller = &h.state().doc.as_ref().unwrap().tree["controller"];
    assert!(controller.get("Predictive").is_some(), "{controller}");
    h.get_by_label("Run").click();
    h.step();
    wait_for_run(&mut h);

    let oracle = label_value(&h, "SLO-violation minutes: ");
    let start = text.find("controller: ReferenceHpa").expect("the shipped controller");
    let end = start + text[start..].find('\n').unwrap();
    let oracle_text = format!(
        "{}controller: Predictive(predictor: Oracle, variance: Fixed(), allocator: (target_utilisation: 0.6)),{}",
        &text[..start],
        &text[end..]
    );
    assert_eq!(oracle, library_slo_minutes(&flash_crowd(), &oracle_text));
    assert_eq!(label_value(&h, "pinned SLO-violation minutes: "), hpa);
    let diff: f64 = label_value(&h, "SLO-violation minutes difference: ").parse().unwrap();
    assert!((diff - (oracle.parse::<f64>().unwrap() - hpa.parse::<f64>().unwrap())).abs() < 1e-3, "{diff}");
    assert!(diff < 0.0, "the oracle violates the SLO less than the HPA");
    h.snapshot("compare");
}

/// Run a small sweep with the library, open its folder: the Pareto table shows the same means as the
/// library's per-controller statistics, and opening a group's first run shows that run.
#[test]
fn open_a_sweep_folder() {
    let dir = tempfile::tempdir().unwrap();
    let exp = dir.path().join("whatif.ron");
    std::fs::write(
        &exp,
        format!(
            r#"Experiment(
    name: "gui-whatif",
    scenarios: ["{}"],
    axes: [(path: "cluster.instance_types[0].provisioning_delay", values: ["Constant(s: 60)", "Constant(s: 300)"])],
    controllers: [
        (name: "reference-hpa", controller: ReferenceHpa(target_utilisation: 0.6, min_instances: 2, max_instances: 80)),
        (name: "oracle", controller: Predictive(predictor: Oracle, variance: Fixed(), allocator: (target_utilisation: 0.6))),
    ],
    seeds: [1, 2, 3],
    baseline: "reference-hpa",
)"#,
            std::fs::canonicalize(flash_crowd()).unwrap().display()
        ),
    )
    .unwrap();
    let out = dir.path().join("results");
    let opts = prescale::lab::sweep::SweepOptions {
        out_root: out.clone(),
        threads: Some(2),
        quiet: true,
        batch_runs: false,
        shard: None,
    };
    prescale::lab::sweep::sweep(&exp, &opts).expect("the sweep runs");
    let folder = out.join("gui-whatif");

    let mut h = harness();
    open(&mut h, &folder);
    assert!(h.state().sweep.is_some(), "{}", h.state().message);
    // The oracle at 300 s: mean over the three seeds of runs.csv, as the library computes it.
    let t = prescale::plot::data::Table::read(&folder.join("runs.csv")).unwrap();
    let pts = prescale::plot::data::sweep_points(
        &t,
        &["cluster.instance_types[0].provisioning_delay".to_string()],
        "cost_usd",
        "slo_violation_minutes",
    )
    .unwrap();
    let (_, (cost, cost_hw), _) =
        pts["oracle"].iter().find(|(g, ..)| g == "Constant(s: 300)").expect("the group").clone();
    let shown = label_value(&h, "oracle Constant(s: 300) cost: ");
    assert_eq!(shown, format!("{} ± {}", prescale_gui::plots::fmt(cost), prescale_gui::plots::fmt(cost_hw)));
    // The folder is a temporary one: the path field shows a fixed text in the snapshot.
    h.state_mut().path_text = "results/gui-whatif".into();
    h.run();
    h.snapshot("sweep");

    let run = h.state().sweep.as_ref().unwrap().first_run("oracle", "Constant(s: 300)").expect("a run");
    h.state_mut().open(&run);
    h.run();
    let r = h.state().current.as_ref().expect("the run is open");
    assert!(r.label.contains("seed 1"), "{}", r.label);
    assert_eq!(h.state().main_view, prescale_gui::app::MainView::Runs);
}

/// Learned controllers name a model directory: one that does not exist is refused with its path.
#[test]
fn a_missing_model_directory_is_named() {
    prescale::cli::install_torch();
    let text = std::fs::read_to_string(flash_crowd()).unwrap();
    let start = text.find("controller: ReferenceHpa").unwrap();
    let end = start + text[start..].find('\n').unwrap();
    let bc = format!("{}controller: Bc(model: \"no/such/model\"),{}", &text[..start], &text[end..]);
    let doc = prescale_gui::doc::ScenarioDoc::from_text(&flash_crowd(), bc);
    assert!(doc.loaded.is_none());
    let all: String = doc.diagnostics.iter().map(|d| d.to_string()).collect();
    assert!(all.contains("no/such/model"), "{all}");
}

/// A request-level day (8.6 M requests) runs in the background with a progress bar; Cancel stops it, the window
/// answering all the while, and nothing is shown as its result.
#[test]
fn a_long_run_can_be_cancelled() {
    let mut h = harness();
    open(&mut h, Path::new("../scenarios/steady-diurnal.ron"));
    h.get_by_label("Run").click();
    h.step();
    assert!(h.state().is_running());
    h.get_by_label("Cancel").click();
    wait_for_run(&mut h);
    assert!(h.state().message.starts_with("cancelled"), "{}", h.state().message);
    assert!(h.state().current.is_none());
}
