//! Scenarios end to end: the shipped scenario files, `prescale validate` (golden output), `prescale run`
//! (results written atomically), and every real trace of `../shared/traces` loading and running.

use crate::common;

use std::path::Path;

use ::prescale::files::scenario_io::{load_scenario, load_scenario_text, read_trace};
use common::{files_under, prescale, repo, shared_traces, text};
use prescale_sim::scenario::{self, Fidelity};
use prescale_sim::trace::TracePolicies;

fn shipped() -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(repo().join("scenarios"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "ron"))
        .collect();
    v.sort();
    v
}

#[test]
fn the_five_kinds_of_scenario_are_shipped() {
    let names: Vec<String> = shipped().iter().map(|p| p.file_stem().unwrap().to_string_lossy().into_owned()).collect();
    for want in ["steady-diurnal", "flash-crowd", "weekly-trend", "bursty-mmpp", "nab-elb-replay"] {
        assert!(names.contains(&want.to_string()), "{want} missing from {names:?}");
    }
}

#[test]
fn every_shipped_scenario_validates_and_runs() {
    for file in shipped() {
        let loaded = load_scenario(&file).unwrap_or_else(|d| panic!("{}: {d:?}", file.display()));
        let p = loaded.prepare(loaded.config.seed).unwrap_or_else(|d| panic!("{}: {d:?}", file.display()));
        let out = scenario::run(&p, 1, &mut |_| {});
        let s = &out.summary;
        assert_eq!(out.rows.len(), p.demand.steps(), "{}", file.display());
        // Requests generated match the demand series (request-level: Poisson, within 6 sd).
        let expected = p.demand.expected_requests();
        let tol = if p.config.fidelity == Fidelity::Fluid { 1e-6 * expected } else { 6.0 * expected.sqrt() };
        assert!((s.requests - expected).abs() <= tol, "{}: {} requests vs {expected}", file.display(), s.requests);
        assert!(s.cost_usd > 0.0 && s.latency_p99_s.is_finite() && s.latency_p99_s > 0.0, "{}: {s:?}", file.display());
        assert!((0.0..=1.0).contains(&s.mean_utilisation) && (0.0..=1.0).contains(&s.slo_violation_request_fraction));
        let last = out.rows.last().unwrap();
        assert!((last.t_end_s - p.config.horizon_s.unwrap()).abs() < 1e-6);
        assert!((last.cost_usd - s.cost_usd).abs() < 1e-9 * s.cost_usd);
    }
}

#[test]
fn validate_reports_every_problem_with_path_and_line() {
    let out = prescale(&["validate", "tests/data/broken-scenario.ron"]);
    let (stdout, _) = text(&out);
    assert_eq!(out.status.code(), Some(1));
    let golden_path = repo().join("tests/golden/broken-scenario.validate.txt");
    if std::env::var_os("PRESCALE_BLESS").is_some() {
        std::fs::write(&golden_path, &stdout).unwrap();
    }
    let golden = std::fs::read_to_string(&golden_path).expect("golden file (regenerate with PRESCALE_BLESS=1)");
    assert_eq!(stdout, golden, "validate output changed; if on purpose, rerun with PRESCALE_BLESS=1");
    let ok = prescale(&["validate", "scenarios/flash-crowd.ron", "scenarios/nab-elb-replay.ron"]);
    let (stdout, _) = text(&ok);
    assert!(ok.status.success(), "{stdout}");
    assert!(stdout.contains("gaps 8"), "trace quirks are reported: {stdout}");
}

#[test]
fn run_writes_complete_results_atomically() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().to_str().unwrap();
    let out = prescale(&["run", "scenarios/flash-crowd.ron", "--seed", "7", "--out", out_dir, "--quiet"]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}{stderr}");
    let files = files_under(dir.path());
    assert_eq!(files.len(), 4, "{files:?}");
    assert!(files.iter().all(|f| f.starts_with("flash-crowd/seed7-") && !f.contains(".tmp")), "{files:?}");
    let run_dir = dir.path().join(Path::new(&files[0]).parent().unwrap());
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run_dir.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["seed"], 7);
    assert_eq!(summary["prescale_version"], env!("CARGO_PKG_VERSION"));
    assert!(summary["git_revision"].is_string() && summary["wall_time_s"].as_f64().unwrap() > 0.0);
    let csv = std::fs::read_to_string(run_dir.join("timeseries.csv")).unwrap();
    assert_eq!(csv.lines().count(), 1 + 360);
    assert!(csv.lines().next().unwrap().contains("latency_p99_s"));
    // The resolved scenario reads back as the same scenario.
    let back = load_scenario(&run_dir.join("scenario.ron")).expect("resolved scenario loads");
    let orig = load_scenario(&repo().join("scenarios/flash-crowd.ron")).unwrap();
    assert_eq!(back.config, orig.config);
    // The same seed gives the same metrics (timestamps in the folder name differ).
    let again = prescale(&["run", "scenarios/flash-crowd.ron", "--seed", "7", "--out", out_dir, "--quiet"]);
    assert!(again.status.success());
    let runs: Vec<_> = std::fs::read_dir(dir.path().join("flash-crowd")).unwrap().flatten().map(|e| e.path()).collect();
    assert_eq!(runs.len(), 2);
    let csvs: Vec<String> = runs.iter().map(|r| std::fs::read_to_string(r.join("timeseries.csv")).unwrap()).collect();
    assert_eq!(csvs[0], csvs[1]);
}

/// The demo end to end in its quick form (two epochs, one DAgger round, one seed): every model trained, both
/// sweeps run, the combined report names every controller of both worlds, and a second run reuses everything.
#[test]
fn the_built_in_demo_runs_end_to_end_and_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let out = prescale(&["demo", "--out", dir.path().to_str().unwrap(), "--quick", "--quiet"]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}{stderr}");
    let demo = dir.path().join("demo");
    let report = std::fs::read_to_string(demo.join("report.md")).unwrap();
    for c in
        ["| hpa |", "| ar-aci |", "| holt-winters-aci |", "| gru-aci |", "| bc-dagger |", "| bc-only |", "| oracle |"]
    {
        assert!(report.contains(c), "{c} missing from the report");
    }
    for f in ["demo-flash-crowd/plots/pareto.png", "demo-elb/plots/bars.png", "models/bc-elb/card.json"] {
        assert!(demo.join(f).is_file(), "{f}");
    }
    let again = prescale(&["demo", "--out", dir.path().to_str().unwrap(), "--quick", "--quiet"]);
    let (stdout, _) = text(&again);
    assert!(again.status.success() && stdout.contains("reusing") && stdout.contains("(6 reused)"), "{stdout}");
    let _ = files_under;
}

/// The header's columns other than the timestamp.
fn value_columns(file: &Path) -> Vec<String> {
    let bytes = std::fs::read(file).unwrap();
    let text = if file.extension().is_some_and(|e| e == "gz") {
        use std::io::Read;
        let mut s = String::new();
        let mut d = flate2::read::GzDecoder::new(&bytes[..]);
        let mut buf = vec![0u8; 4096];
        let n = d.read(&mut buf).unwrap();
        s.push_str(&String::from_utf8_lossy(&buf[..n]));
        s
    } else {
        String::from_utf8_lossy(&bytes[..bytes.len().min(4096)]).into_owned()
    };
    text.lines().next().unwrap().split(',').skip(1).map(|c| c.trim().to_string()).collect()
}

/// Every file of `../shared/traces` loads with its quirks counted, and runs in fluid mode with its first
/// column as the request rate (scaled to a mean of 100 requests/s) and up to three more columns as memory,
/// network and storage demand.
#[test]
fn every_shared_trace_loads_and_runs_in_fluid_mode() {
    let Some(dir) = shared_traces() else {
        assert!(std::env::var_os("CI").is_none(), "../shared/traces is missing in CI");
        eprintln!("skipped: ../shared/traces not present");
        return;
    };
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.to_string_lossy().ends_with(".csv") || p.to_string_lossy().ends_with(".csv.gz"))
        .collect();
    files.sort();
    assert!(files.len() >= 29, "expected the 29 development traces, found {}", files.len());
    let tmp = tempfile::tempdir().unwrap();
    for file in files {
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        let cols = value_columns(&file);
        let trace = read_trace(&file, "timestamp", &cols[..1], &TracePolicies::default())
            .unwrap_or_else(|d| panic!("{name}: {d}"));
        let r = &trace.report;
        let mean = trace.columns[0].iter().sum::<f64>() / trace.columns[0].len() as f64;
        let scale = if mean > 0.0 { 100.0 / mean } else { 1.0 };
        let extra: Vec<String> = cols[1..]
            .iter()
            .zip(["Memory", "Network", "Storage"])
            .map(|(c, kind)| format!("(column: \"{c}\", meaning: Utilisation(resource: {kind}, percent: false, reference_capacity: 0.001)),"))
            .collect();
        let text = format!(
            r#"Scenario(name: "trace-walk", step_s: 300, workload: Trace(path: "{}",
                metrics: [(column: "{}", meaning: RequestsPerSecond), {}], amplitude_scale: {scale}),
              service: (mean_service_s: 0.1),
              cluster: (instance_types: [(name: "m", capacity: (cpu_cores: 4, memory_gib: 16, storage_gib: 100, network_gbps: 10),
                price_usd_per_hour: 0.2, provisioning_delay: Constant(s: 120), initial_count: 5, max_count: 200)],
                scaling_type: "m"),
              slo: (latency_quantile: 0.99, latency_threshold_s: 0.5),
              controller: ReferenceHpa(target_utilisation: 0.6, max_instances: 200))"#,
            file.display(),
            cols[0],
            extra.join(" ")
        );
        let loaded =
            load_scenario_text(&tmp.path().join("walk.ron"), &text).unwrap_or_else(|d| panic!("{name}: {d:?}"));
        let p = loaded.prepare(1).unwrap_or_else(|d| panic!("{name}: {d:?}"));
        let out = scenario::run(&p, 1, &mut |_| {});
        assert!(out.rows.len() >= 12, "{name}: {} steps", out.rows.len());
        assert!(out.summary.requests > 0.0 && out.summary.latency_p99_s.is_finite(), "{name}: {:?}", out.summary);
        eprintln!("{name}: {} ({} steps)", r.summary(), out.rows.len());
        // Quirks the traces' README documents must be found, not hidden.
        match name.as_str() {
            "alibaba_genai_api_qps_57s.csv" => assert_eq!(r.gaps, 58, "{name}: {}", r.summary()),
            "nab_ec2_disk_write_bytes_1ef3de.csv" => assert!(r.duplicate_rows >= 11, "{name}: {}", r.summary()),
            "nab_machine_temperature_system_failure.csv" => {
                assert!(r.out_of_order_rows >= 1, "{name}: {}", r.summary())
            }
            "alibaba2018_cluster_machine_usage_10s.csv" => {
                assert!(r.longest_gap_s >= 18000.0, "{name}: {}", r.summary())
            }
            "nasa_http_jul95_requests_1s.csv.gz" => assert_eq!(r.rows, 2_381_544),
            _ => {}
        }
    }
}

/// The resolved scenario written beside the results replays the same run from anywhere (its trace path is
/// absolute).
#[test]
fn a_resolved_trace_scenario_replays_identically() {
    let dir = tempfile::tempdir().unwrap();
    let first = dir.path().join("first");
    let out = prescale(&["run", "scenarios/nab-elb-replay.ron", "--out", first.to_str().unwrap(), "--quiet"]);
    assert!(out.status.success(), "{}", text(&out).1);
    let run_dir = std::fs::read_dir(first.join("nab-elb-replay")).unwrap().flatten().next().unwrap().path();
    let second = dir.path().join("second");
    let again = prescale(&[
        "run",
        run_dir.join("scenario.ron").to_str().unwrap(),
        "--out",
        second.to_str().unwrap(),
        "--quiet",
    ]);
    assert!(again.status.success(), "{}", text(&again).1);
    let run2 = std::fs::read_dir(second.join("nab-elb-replay")).unwrap().flatten().next().unwrap().path();
    let a = std::fs::read_to_string(run_dir.join("timeseries.csv")).unwrap();
    let b = std::fs::read_to_string(run2.join("timeseries.csv")).unwrap();
    assert_eq!(a, b);
}

/// `--fidelity` lives through the same world request by request; the override is recorded in the results.
#[test]
fn fidelity_override() {
    let dir = tempfile::tempdir().unwrap();
    let out = prescale(&[
        "run",
        "scenarios/flash-crowd.ron",
        "--fidelity",
        "request-level",
        "--out",
        dir.path().to_str().unwrap(),
        "--quiet",
    ]);
    assert!(out.status.success(), "{}", text(&out).1);
    let run_dir = std::fs::read_dir(dir.path().join("flash-crowd")).unwrap().flatten().next().unwrap().path();
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run_dir.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["summary"]["fidelity"], "RequestLevel");
    assert!(std::fs::read_to_string(run_dir.join("scenario.ron")).unwrap().contains("fidelity: RequestLevel"));
    let bad = prescale(&["run", "scenarios/flash-crowd.ron", "--fidelity", "exact", "--quiet"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(text(&bad).1.contains("--fidelity"), "{}", text(&bad).1);
}

fn sha256(text: &str) -> String {
    prescale::files::results::sha256_hex(text.as_bytes())
}

/// The results of every shipped scenario (its own seed: the per-step table and the summary, as `prescale run`
/// writes them) and of the shipped what-if experiment (`runs.csv`) are pinned by their SHA-256 in
/// `tests/golden/shipped-results.txt`, so a refactoring cannot change a number silently. A change on purpose
/// is blessed with `PRESCALE_BLESS=1` and explained in its commit.
#[test]
fn shipped_results_match_their_golden_digests() {
    let mut got = String::new();
    for file in shipped() {
        let loaded = load_scenario(&file).unwrap();
        let seed = loaded.config.seed;
        let out = scenario::run(&loaded.prepare(seed).unwrap(), seed, &mut |_| {});
        let summary = serde_json::to_string_pretty(&out.summary).unwrap();
        got.push_str(&format!(
            "scenarios/{} seed {seed}: timeseries.csv {} summary {}\n",
            file.file_name().unwrap().to_string_lossy(),
            sha256(&prescale::files::results::to_csv(&out.rows)),
            sha256(&summary),
        ));
    }
    let d = tempfile::tempdir().unwrap();
    let o = prescale(&["sweep", "experiments/provisioning-whatif.ron", "--quiet", "--out", d.path().to_str().unwrap()]);
    assert!(o.status.success(), "{:?}", text(&o));
    let runs = std::fs::read_to_string(d.path().join("provisioning-whatif/runs.csv")).unwrap();
    got.push_str(&format!("experiments/provisioning-whatif.ron: runs.csv {}\n", sha256(&runs)));
    let golden_path = repo().join("tests/golden/shipped-results.txt");
    if std::env::var_os("PRESCALE_BLESS").is_some() {
        std::fs::write(&golden_path, &got).unwrap();
    }
    let golden = std::fs::read_to_string(&golden_path).expect("golden file (regenerate with PRESCALE_BLESS=1)");
    assert_eq!(got, golden, "shipped results changed; if on purpose, rerun with PRESCALE_BLESS=1 and say why");
}
