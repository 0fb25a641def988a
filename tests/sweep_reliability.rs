//! Sweeps that cannot report wrong numbers (issue 11): cell ids unique by construction, damaged finished cells
//! found and rerun, one sweep at a time per results folder, controllers checked with the experiment, names
//! that cannot leave the results root, and Ctrl-C that says what was finished.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Output;

use common::{prescale, repo, text};

/// A small fluid scenario (one day, 5-minute steps) with a synthetic diurnal workload at `rate` per second.
fn scenario_text(name: &str, rate: f64) -> String {
    format!(
        r#"Scenario(
    name: "{name}",
    horizon_s: 86400,
    step_s: 300,
    workload: Synthetic(base_rate_per_s: {rate}, components: [Daily(amplitude: 0.5, peak_hour: 14.0)]),
    service: (mean_service_s: 0.1),
    cluster: (
        instance_types: [(name: "m", capacity: (cpu_cores: 4), price_usd_per_hour: 0.2,
            provisioning_delay: Constant(s: 60), initial_count: 2, max_count: 40)],
        scaling_type: "m",
    ),
    slo: (latency_quantile: 0.99, latency_threshold_s: 0.5),
    controller: Hpa(target_utilisation: 0.6, max_replicas: 40),
)
"#
    )
}

fn write(p: &Path, text: &str) -> PathBuf {
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
    p.to_path_buf()
}

fn run(args: &[&str]) -> (Output, String) {
    let o = prescale(args);
    let (a, b) = text(&o);
    (o, format!("{a}{b}"))
}

fn sweep(exp: &Path, out: &Path, env: &[(&str, &str)]) -> (Output, String) {
    let mut cmd = std::process::Command::new(crate::common::exe("prescale"));
    cmd.current_dir(repo()).args(["sweep", exp.to_str().unwrap(), "--quiet", "--out", out.to_str().unwrap()]);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let o = cmd.output().unwrap();
    let (a, b) = text(&o);
    (o, format!("{a}{b}"))
}

fn read(p: PathBuf) -> String {
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// Column `col` of runs.csv, by cell id.
fn column(runs_csv: &str, col: &str) -> Vec<(String, String)> {
    let mut lines = runs_csv.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let i = header.iter().position(|h| *h == col).unwrap();
    lines.map(|l| l.split(',').collect::<Vec<_>>()).map(|f| (f[0].to_string(), f[i].to_string())).collect()
}

#[test]
fn ids_are_unique_by_construction() {
    use ::prescale::lab::experiment::cell_id;
    let ax = |v: &str| vec![("slo.latency_threshold_s".to_string(), v.to_string())];
    // Values alike in their first 24 characters, values alike once made folder-safe, same-stem files.
    let a = cell_id("s.ron", &ax("0.2500000000000000000000001"), "hpa", 1, &[]);
    let b = cell_id("s.ron", &ax("0.2500000000000000000000002"), "hpa", 1, &[]);
    assert_ne!(a, b);
    assert_ne!(cell_id("s.ron", &ax("a b"), "hpa", 1, &[]), cell_id("s.ron", &ax("a_b"), "hpa", 1, &[]));
    assert_ne!(cell_id("x/s.ron", &[], "hpa", 1, &[]), cell_id("y/s.ron", &[], "hpa", 1, &[]));
    assert!(a.starts_with("s__latency_threshold_s=0.2500000000000000000000__hpa__seed1__"), "{a}");
    assert!(cell_id("s.ron", &ax(&"9".repeat(10_000)), &"c".repeat(255), 1, &[]).len() <= 255);
}

#[test]
fn same_stem_scenarios_in_two_folders_keep_their_own_rows() {
    let d = tempfile::tempdir().unwrap();
    write(&d.path().join("a/s.ron"), &scenario_text("same-name", 50.0));
    write(&d.path().join("b/s.ron"), &scenario_text("same-name", 150.0));
    let exp =
        write(&d.path().join("e.ron"), r#"Experiment(name: "twins", scenarios: ["a/s.ron", "b/s.ron"], seeds: [1])"#);
    let out = d.path().join("out");
    let (o, all) = sweep(&exp, &out, &[("RAYON_NUM_THREADS", "1")]);
    assert!(o.status.success(), "{all}");
    let csv = read(out.join("twins/runs.csv"));
    let requests = column(&csv, "requests");
    assert_eq!(requests.len(), 2, "{csv}");
    assert_ne!(requests[0].0, requests[1].0, "two cells, two ids");
    let (x, y): (f64, f64) = (requests[0].1.parse().unwrap(), requests[1].1.parse().unwrap());
    assert!((y / x - 3.0).abs() < 1e-9, "each cell has its own scenario's demand: {x} vs {y}");
    // The report keeps them apart too (titled by path where stems are shared).
    let report = read(out.join("twins/report.md"));
    assert!(report.contains("a/s.ron") && report.contains("b/s.ron"), "{report}");
}

#[test]
fn cells_that_would_run_the_same_thing_twice_are_refused_naming_both() {
    let d = tempfile::tempdir().unwrap();
    write(&d.path().join("s.ron"), &scenario_text("s", 50.0));
    let exp = write(
        &d.path().join("e.ron"),
        r#"Experiment(
    name: "dup",
    scenarios: ["s.ron", "./s.ron"],
    axes: [(path: "cluster.instance_types[0].provisioning_delay", values: ["Constant(s: 60)", "Constant( s:60 )"])],
    seeds: [1],
)"#,
    );
    let (o, all) = run(&["validate", exp.to_str().unwrap()]);
    assert!(!o.status.success(), "{all}");
    assert!(all.contains("e.ron:3: scenarios[1]: './s.ron' is the file of scenarios[0] again ('s.ron')"), "{all}");
    assert!(all.contains("e.ron:4: axes[0].values[1]") && all.contains("is values[0] again"), "{all}");
}

#[test]
fn controllers_of_an_experiment_are_validated_at_their_own_lines() {
    let d = tempfile::tempdir().unwrap();
    write(&d.path().join("s.ron"), &scenario_text("s", 50.0));
    let exp = write(
        &d.path().join("e.ron"),
        r#"Experiment(
    name: "ctl",
    scenarios: ["s.ron"],
    controllers: [
        (name: "ok", controller: Hpa(target_utilisation: 0.6, max_replicas: 40)),
        (name: "bad", controller: Hpa(target_utilisation: -1, max_replicas: 40)),
        (name: "gone", controller: Bc(model: "no-such-model")),
    ],
    seeds: [1, 2],
)"#,
    );
    let (o, all) = run(&["validate", exp.to_str().unwrap()]);
    assert!(!o.status.success(), "{all}");
    assert!(all.contains("e.ron:6: controllers[1].controller.target_utilisation"), "{all}");
    assert!(all.contains("e.ron:7: controllers[2].controller.model") && all.contains("no-such-model"), "{all}");
    assert!(!all.contains("s.ron:"), "problems of the experiment's controllers point at the experiment: {all}");
    // Reported once, not once per seed or cell.
    assert_eq!(all.matches("controllers[1].controller.target_utilisation").count(), 1, "{all}");
}

#[test]
fn names_that_could_leave_the_results_root_are_refused() {
    let d = tempfile::tempdir().unwrap();
    write(&d.path().join("s.ron"), &scenario_text("s", 50.0));
    for (name, controller) in [("..", "c"), ("../up", "c"), ("ok", "."), ("ok", "a/b"), (".hidden", "c")] {
        let exp = write(
            &d.path().join("e.ron"),
            &format!(
                r#"Experiment(name: "{name}", scenarios: ["s.ron"], controllers: [(name: "{controller}", controller: Hpa(target_utilisation: 0.6, max_replicas: 40))], seeds: [1])"#
            ),
        );
        let (o, all) = run(&["validate", exp.to_str().unwrap()]);
        assert!(!o.status.success() && all.contains("must be 1 to 255 bytes"), "{name}/{controller}: {all}");
    }
}

#[test]
fn damaged_finished_cells_are_named_and_run_again() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("out");
    let exp = repo().join("experiments/provisioning-whatif.ron");
    let (o, all) = sweep(&exp, &out, &[]);
    assert!(o.status.success(), "{all}");
    let dir = out.join("provisioning-whatif");
    let clean = read(dir.join("runs.csv"));
    let ids: Vec<String> = column(&clean, "seed").into_iter().map(|(id, _)| id).collect();
    // One summary deleted, one time series deleted, one summary truncated, one time series edited.
    std::fs::remove_file(dir.join("runs").join(&ids[0]).join("summary.json")).unwrap();
    std::fs::remove_file(dir.join("runs").join(&ids[5]).join("timeseries.csv")).unwrap();
    let s = dir.join("runs").join(&ids[9]).join("summary.json");
    let text9 = read(s.clone());
    std::fs::write(&s, &text9[..text9.len() / 2]).unwrap();
    let t = dir.join("runs").join(&ids[20]).join("timeseries.csv");
    let edited = read(t.clone()).replacen('0', "1", 1);
    std::fs::write(&t, edited).unwrap();
    let (o, all) = sweep(&exp, &out, &[]);
    assert!(o.status.success(), "{all}");
    assert!(
        all.contains("4 runs done now, 32 finished before (verified, skipped), 4 damaged (run again), 0 failed"),
        "{all}"
    );
    for (i, why) in [
        (0, "summary.json is missing"),
        (5, "timeseries.csv is missing"),
        (9, "summary.json has"),
        (20, "timeseries.csv differs"),
    ] {
        assert!(all.contains(&format!("damaged: {}: {why}", ids[i])), "cell {i} ({why}) not named: {all}");
    }
    assert_eq!(read(dir.join("runs.csv")), clean, "every row is back, with the same numbers");
    let manifest: serde_json::Value = serde_json::from_str(&read(dir.join("manifest.json"))).unwrap();
    assert_eq!(manifest["damaged_rerun"].as_array().unwrap().len(), 4);
    // A completion record that lies about nothing but is itself gone: the cell is rerun too.
    std::fs::remove_file(dir.join("runs").join(&ids[3]).join("complete.json")).unwrap();
    let (o, all) = sweep(&exp, &out, &[]);
    assert!(o.status.success() && all.contains("1 damaged") && all.contains("complete.json unreadable"), "{all}");
}

#[test]
fn a_second_sweep_into_the_same_folder_is_refused_naming_the_holder() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    // Another process holds the experiment's lock (this test process, through the same file lock a sweep takes).
    let lock = out.join(".provisioning-whatif.lock");
    let f = std::fs::OpenOptions::new().create(true).truncate(false).read(true).write(true).open(&lock).unwrap();
    f.try_lock().unwrap();
    std::fs::write(&lock, "process 4242 since 20261130T000000Z").unwrap();
    let (o, all) = sweep(&repo().join("experiments/provisioning-whatif.ron"), &out, &[]);
    assert!(!o.status.success(), "{all}");
    assert!(all.contains("being written by another sweep (process 4242 since 20261130T000000Z)"), "{all}");
    assert!(!out.join("provisioning-whatif").exists(), "nothing was written");
    // Released: the same command now runs.
    drop(f);
    let (o, all) = sweep(&repo().join("experiments/provisioning-whatif.ron"), &out, &[]);
    assert!(o.status.success(), "{all}");
}

#[test]
fn a_planted_symbolic_link_in_place_of_the_lock_is_refused_and_its_target_untouched() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    // Another user of a shared results root plants a link where the sweep's lock file goes.
    let victim = d.path().join("victim.txt");
    std::fs::write(&victim, "keep me").unwrap();
    std::os::unix::fs::symlink(&victim, out.join(".provisioning-whatif.lock")).unwrap();
    let (o, all) = sweep(&repo().join("experiments/provisioning-whatif.ron"), &out, &[]);
    assert_eq!(o.status.code(), Some(2), "{all}");
    assert!(all.contains(".provisioning-whatif.lock is a symbolic link; refusing to follow it"), "{all}");
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep me", "the link's target was not touched");
    assert!(!out.join("provisioning-whatif").exists(), "nothing was written");
    // A FIFO (not a regular file) is refused too, without blocking.
    std::fs::remove_file(out.join(".provisioning-whatif.lock")).unwrap();
    let fifo = std::ffi::CString::new(out.join(".provisioning-whatif.lock").to_str().unwrap()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
    let (o, all) = sweep(&repo().join("experiments/provisioning-whatif.ron"), &out, &[]);
    assert_eq!(o.status.code(), Some(2), "{all}");
    assert!(all.contains("is not a regular file"), "{all}");
}

#[test]
fn two_concurrent_sweeps_never_both_write() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("out");
    let exp = repo().join("experiments/provisioning-whatif.ron");
    let spawn = || {
        std::process::Command::new(crate::common::exe("prescale"))
            .current_dir(repo())
            .args(["sweep", exp.to_str().unwrap(), "--quiet", "--out", out.to_str().unwrap()])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (spawn(), spawn());
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    let ran = |o: &Output| text(o).0.lines().find(|l| l.contains("runs done now")).map(str::to_string);
    // Either the second waited for nothing and was refused, or it started after the first had finished and
    // skipped every cell: never two writers.
    for (x, y) in [(&a, &b), (&b, &a)] {
        if !x.status.success() {
            assert!(text(x).1.contains("being written by another sweep"), "{:?}", text(x));
            assert!(y.status.success());
        }
    }
    let done: usize = [&a, &b]
        .iter()
        .filter_map(|o| ran(o))
        .map(|l| l.split(": ").nth(1).unwrap().split(' ').next().unwrap().parse::<usize>().unwrap())
        .sum();
    assert_eq!(done, 36, "each cell ran exactly once: {:?} {:?}", text(&a), text(&b));
}

#[test]
fn ctrl_c_says_what_was_finished_and_a_rerun_resumes_to_the_same_bytes() {
    let d = tempfile::tempdir().unwrap();
    let exp = repo().join("experiments/provisioning-whatif.ron");
    let (o, all) = sweep(&exp, &d.path().join("clean"), &[]);
    assert!(o.status.success(), "{all}");
    let out = d.path().join("cut");
    let (o, all) = sweep(&exp, &out, &[("PRESCALE_INTERRUPT_AFTER", "5"), ("RAYON_NUM_THREADS", "1")]);
    assert_eq!(o.status.code(), Some(130), "{all}");
    assert!(
        all.contains("interrupted (Ctrl-C): ")
            && all.contains("of 36 runs are finished")
            && all.contains("run the same command again"),
        "{all}"
    );
    let (o, all) = sweep(&exp, &out, &[]);
    assert!(o.status.success(), "{all}");
    let name = "provisioning-whatif";
    assert_eq!(read(out.join(name).join("runs.csv")), read(d.path().join("clean").join(name).join("runs.csv")));
}

#[test]
fn a_byte_order_mark_does_not_change_what_a_file_is_read_as() {
    let d = tempfile::tempdir().unwrap();
    write(&d.path().join("s.ron"), &scenario_text("s", 50.0));
    let exp = write(&d.path().join("e.ron"), "\u{feff}Experiment(name: \"bom\", scenarios: [\"s.ron\"], seeds: [1])");
    let (o, all) = run(&["validate", exp.to_str().unwrap()]);
    assert!(o.status.success() && all.contains("experiment 'bom': 1 runs"), "{all}");
}
