//! Bring your own predictor (issue 16): a predictor outside Rust, a child process speaking JSON lines, inside the
//! same control loop as the built-in ones. The Python port of the built-in last-value predictor gives the same
//! run bit for bit (numbers cross the protocol exactly); statsforecast's AutoETS runs deterministically through
//! the project's Python environment; a child that crashes, hangs, or answers nonsense fails the run with the
//! controller, the step, the command and what it received, and a sweep keeps its other cells. A whole controller
//! outside Rust (observation in, decision out) works the same way: the Python port of the reference HPA rule
//! gives the built-in's run bit for bit.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Output;

use common::{repo, text};

fn scenario(predictor: &str, horizon_s: u32) -> String {
    with_controller(
        &format!(
            "Predictive(predictor: {predictor}, variance: AdaptiveConformal(alpha: 0.05), allocator: (target_utilisation: 0.6))"
        ),
        horizon_s,
    )
}

fn with_controller(controller: &str, horizon_s: u32) -> String {
    format!(
        r#"Scenario(
    name: "ext",
    horizon_s: {horizon_s},
    step_s: 300,
    workload: Synthetic(base_rate_per_s: 50, components: [Daily(amplitude: 0.5, peak_hour: 14.0), Noise(sd: 0.1, correlation_s: 600)]),
    service: (mean_service_s: 0.1),
    cluster: (
        instance_types: [(name: "m", capacity: (cpu_cores: 4), price_usd_per_hour: 0.2,
            provisioning_delay: Constant(s: 600), initial_count: 2, max_count: 40)],
        scaling_type: "m",
    ),
    slo: (latency_quantile: 0.99, latency_threshold_s: 0.5),
    controller: {controller},
)
"#
    )
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

fn run(file: &Path, out: &Path) -> (Output, String) {
    run_env(file, out, &[])
}

/// [`run`] with environment variables `env` set.
fn run_env(file: &Path, out: &Path, env: &[(&str, &Path)]) -> (Output, String) {
    let mut cmd = std::process::Command::new(crate::common::exe("prescale"));
    cmd.args(["run", file.to_str().unwrap(), "--out", out.to_str().unwrap(), "--quiet"]).current_dir(repo());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let o = cmd.output().expect("prescale runs");
    let (a, b) = text(&o);
    (o, format!("{a}{b}"))
}

/// The one run folder under `out/ext/`.
fn run_dir(out: &Path) -> PathBuf {
    let mut dirs: Vec<PathBuf> =
        std::fs::read_dir(out.join("ext")).unwrap().flatten().map(|e| e.path()).filter(|p| p.is_dir()).collect();
    assert_eq!(dirs.len(), 1, "{dirs:?}");
    dirs.pop().unwrap()
}

fn summary_without_controller(dir: &Path) -> serde_json::Value {
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap();
    let s = v["summary"].as_object_mut().unwrap();
    assert!(s.remove("controller").is_some());
    v["summary"].take()
}

fn example(name: &str) -> String {
    repo().join("examples/external").join(name).display().to_string()
}

#[test]
fn a_python_port_of_last_value_gives_the_built_in_run_bit_for_bit() {
    let d = tempfile::tempdir().unwrap();
    let ext = write(
        d.path(),
        "ext.ron",
        &scenario(&format!(r#"External(command: ["python3", "{}"])"#, example("last_value.py")), 2 * 86400),
    );
    let builtin = write(d.path(), "builtin.ron", &scenario("LastValue", 2 * 86400));
    let (o, all) = run(&ext, &d.path().join("a"));
    assert!(o.status.success(), "{all}");
    assert!(all.contains("predictive(external + adaptive-conformal)"), "{all}");
    let (o, all) = run(&builtin, &d.path().join("b"));
    assert!(o.status.success(), "{all}");
    let (a, b) = (run_dir(&d.path().join("a")), run_dir(&d.path().join("b")));
    assert!(
        std::fs::read(a.join("timeseries.csv")).unwrap() == std::fs::read(b.join("timeseries.csv")).unwrap(),
        "every step, forecast and margin equal"
    );
    assert_eq!(summary_without_controller(&a), summary_without_controller(&b));
}

#[test]
fn statsforecast_autoets_runs_through_the_project_python_deterministically() {
    let d = tempfile::tempdir().unwrap();
    let python = repo().join("scripts/python").display().to_string();
    let f = write(
        d.path(),
        "ext.ron",
        &scenario(
            &format!(
                r#"External(command: ["{python}", "{}", "--refit-every-s", "21600"], timeout_s: 300)"#,
                example("autoets.py")
            ),
            86400,
        ),
    );
    let (o, all) = run(&f, &d.path().join("a"));
    assert!(o.status.success(), "{all}");
    let (o, all2) = run(&f, &d.path().join("b"));
    assert!(o.status.success(), "{all2}");
    let (a, b) = (run_dir(&d.path().join("a")), run_dir(&d.path().join("b")));
    assert!(std::fs::read(a.join("timeseries.csv")).unwrap() == std::fs::read(b.join("timeseries.csv")).unwrap());
    // It forecast (the reactive fallback only while it waited for its first hour of history).
    let s = summary_without_controller(&a);
    let fallback = s["fallback_steps"].as_u64().unwrap();
    assert!((1..=13).contains(&fallback), "{fallback} fallback steps: {all}");
    assert!(s["forecast_mae_cores"].as_f64().unwrap().is_finite(), "{s}");
}

#[test]
fn a_misbehaving_child_fails_the_run_naming_the_step_and_what_it_received() {
    let d = tempfile::tempdir().unwrap();
    let cases: [(&str, &str); 7] = [
        ("crash", "at step 5 (t = 1500 s): it exited (exit status: 3); its stderr ends: misbehaving (crash) at step 5"),
        ("hang", "at step 5 (t = 1500 s): no answer within 3 s (timeout_s)"),
        ("garbage", "at step 5 (t = 1500 s): expected one JSON object per line, got 'this is not json'"),
        ("nan", "expected one JSON object per line, got '{\"mean\": [NaN"),
        ("count", "'mean' has 2 values, 3 were asked for"),
        ("negative", "sd[0] is -1 (< 0)"),
        ("noname", "at start-up: expected {\"name\": \"...\"} (1-64 characters), got {\"hello\":1}"),
    ];
    for (mode, want) in cases {
        // A short timeout only where the hang is the point (Python's start on a loaded machine takes its time).
        let timeout_s = if mode == "hang" { 3 } else { 60 };
        let f = write(
            d.path(),
            &format!("{mode}.ron"),
            &scenario(
                &format!(
                    r#"External(command: ["python3", "{}", "{mode}", "5"], timeout_s: {timeout_s})"#,
                    example("misbehave.py")
                ),
                86400,
            ),
        );
        let out = d.path().join(mode);
        let t0 = std::time::Instant::now();
        let (o, all) = run(&f, &out);
        assert!(!o.status.success(), "{mode}: {all}");
        assert!(
            all.contains("controller predictive(external + adaptive-conformal): external predictor `python3"),
            "{all}"
        );
        assert!(all.contains(&format!("misbehave.py {mode} 5` ")) && all.contains(want), "{mode}: {all}");
        assert!(all.contains("nothing was written") && !out.join("ext").exists(), "{mode}: {all}");
        assert!(t0.elapsed().as_secs() < 30, "{mode}: a hang is cut by the timeout");
    }
    // A program that does not exist: named, at start-up.
    let f = write(d.path(), "none.ron", &scenario(r#"External(command: ["no-such-program-prescale"])"#, 86400));
    let (o, all) = run(&f, &d.path().join("none"));
    assert!(!o.status.success() && all.contains("`no-such-program-prescale`: cannot start it"), "{all}");
}

#[test]
fn a_childs_stderr_leaves_no_file_behind_and_only_its_end_is_quoted() {
    // Its stderr goes to an unnamed temporary file: nothing in TMPDIR during or after the run, so nothing can
    // be planted in its place, and a killed prescale leaves nothing behind.
    let d = tempfile::tempdir().unwrap();
    let tmp = d.path().join("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    let f = write(
        d.path(),
        "crash.ron",
        &scenario(
            &format!(r#"External(command: ["python3", "{}", "crash", "5"], timeout_s: 60)"#, example("misbehave.py")),
            86400,
        ),
    );
    let (o, all) = run_env(&f, &d.path().join("out"), &[("TMPDIR", &tmp)]);
    assert!(!o.status.success(), "{all}");
    assert!(all.contains("its stderr ends: misbehaving (crash) at step 5"), "{all}");
    let left: Vec<_> = std::fs::read_dir(&tmp).unwrap().flatten().map(|e| e.path()).collect();
    assert!(left.is_empty(), "files left in TMPDIR: {left:?}");
}

#[test]
fn bad_external_predictor_fields_are_named_at_their_lines() {
    let d = tempfile::tempdir().unwrap();
    for (predictor, want) in [
        (r#"External(command: [])"#, "predictor.command: must name a program"),
        (r#"External(command: ["./missing.py"])"#, "predictor.command[0]: ./missing.py: no such program"),
        (r#"External(command: ["python3"], timeout_s: 0)"#, "predictor.timeout_s"),
        (r#"External(command: ["python3"], dir: "nowhere")"#, "predictor.dir"),
    ] {
        let f = write(d.path(), "bad.ron", &scenario(predictor, 86400));
        let o = common::prescale(&["validate", f.to_str().unwrap()]);
        let (so, se) = text(&o);
        assert!(!o.status.success() && (so.clone() + &se).contains(want), "{predictor}: {so}{se}");
        assert!((so + &se).contains("bad.ron:13:"), "the controller's line");
    }
}

#[test]
fn a_sweep_keeps_the_other_cells_when_an_external_predictor_fails() {
    let d = tempfile::tempdir().unwrap();
    write(d.path(), "s.ron", &scenario("LastValue", 86400));
    let exp = write(
        d.path(),
        "e.ron",
        &format!(
            r#"Experiment(
    name: "byo",
    scenarios: ["s.ron"],
    controllers: [
        (name: "last-value", controller: Predictive(predictor: LastValue, variance: AdaptiveConformal(alpha: 0.05), allocator: (target_utilisation: 0.6))),
        (name: "python-last-value", controller: Predictive(predictor: External(command: ["python3", "{lv}"]), variance: AdaptiveConformal(alpha: 0.05), allocator: (target_utilisation: 0.6))),
        (name: "crashes", controller: Predictive(predictor: External(command: ["python3", "{mb}", "crash", "3"]), variance: AdaptiveConformal(alpha: 0.05), allocator: (target_utilisation: 0.6))),
    ],
    seeds: [1, 2],
    baseline: "last-value",
)"#,
            lv = example("last_value.py"),
            mb = example("misbehave.py")
        ),
    );
    let out = d.path().join("out");
    let o = common::prescale(&["sweep", exp.to_str().unwrap(), "--quiet", "--out", out.to_str().unwrap()]);
    let (so, se) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{so}{se}");
    assert!(so.contains("4 runs done now") && so.contains("2 failed"), "{so}");
    assert!(so.contains("failed: s__crashes__seed1__") && so.contains("at step 3 (t = 900 s): it exited"), "{so}");
    // The Python port's rows equal the built-in's (same seeds, same numbers).
    let csv = std::fs::read_to_string(out.join("byo/runs.csv")).unwrap();
    let rows: Vec<Vec<&str>> = csv.lines().skip(1).map(|l| l.split(',').collect()).collect();
    assert_eq!(rows.len(), 4, "{csv}");
    let figures = |ctl: &str, seed: &str| -> Vec<String> {
        let r = rows.iter().find(|r| r[2] == ctl && r[3] == seed).unwrap();
        r[4..].iter().map(|s| s.to_string()).filter(|s| !s.starts_with("predictive(")).collect()
    };
    for seed in ["1", "2"] {
        assert_eq!(figures("last-value", seed), figures("python-last-value", seed), "seed {seed}");
    }
}

#[test]
fn an_external_controller_decides_like_the_built_in_rule_it_ports() {
    let d = tempfile::tempdir().unwrap();
    let rule = "target_utilisation: 0.6, tolerance: 0.1, min_instances: 1, max_instances: 40";
    let ext = write(
        d.path(),
        "ext.ron",
        &with_controller(
            &format!(
                r#"External(command: ["python3", "{}", "--target", "0.6", "--tolerance", "0.1", "--min", "1", "--max", "40"])"#,
                example("reference_hpa.py")
            ),
            2 * 86400,
        ),
    );
    let builtin = write(d.path(), "builtin.ron", &with_controller(&format!("ReferenceHpa({rule})"), 2 * 86400));
    let (o, all) = run(&ext, &d.path().join("a"));
    assert!(o.status.success() && all.contains("controller external:reference-hpa.py"), "{all}");
    let (o, all) = run(&builtin, &d.path().join("b"));
    assert!(o.status.success(), "{all}");
    let (a, b) = (run_dir(&d.path().join("a")), run_dir(&d.path().join("b")));
    assert!(std::fs::read(a.join("timeseries.csv")).unwrap() == std::fs::read(b.join("timeseries.csv")).unwrap());
    assert_eq!(summary_without_controller(&a), summary_without_controller(&b));
    assert!(summary_without_controller(&a)["scaling_actions"].as_u64().unwrap() > 0, "it acted");
    // A controller that answers a forecast instead of a decision: named, with the step and the answer.
    let bad = write(
        d.path(),
        "bad.ron",
        &with_controller(
            &format!(r#"External(command: ["python3", "{}", "count", "2"])"#, example("misbehave_controller.py")),
            86400,
        ),
    );
    let (o, all) = run(&bad, &d.path().join("c"));
    assert!(!o.status.success(), "{all}");
    assert!(
        all.contains("controller external:misbehave-controller: external controller `python3")
            && all.contains(
                "at step 2 (t = 600 s): expected {\"instances\": N}, {\"mix\": [1 counts]} or {\"hold\": true}"
            )
            && all.contains("got '{\"instances\":-3}'"),
        "{all}"
    );
}
