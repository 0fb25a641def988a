//! Bad input to `prescale run`: each case exits non-zero with a message naming the file, the line (or
//! row) and the field, and writes nothing to the results folder.

mod common;

use common::{files_under, prescale, text};

const GOOD_TRACE: &str = "timestamp,value\n0,10\n60,12\n120,11\n180,13\n";

fn scenario(workload: &str, step: &str, service: &str, price: &str) -> String {
    format!(
        r#"Scenario(
    name: "bad",
    horizon_s: 180,
    step_s: {step},
    workload: {workload},
    service: {service},
    cluster: (
        instance_types: [(
            name: "m",
            capacity: (cpu_cores: 4),
            {price},
            provisioning_delay: Constant(s: 60),
            initial_count: 2,
            max_count: 10,
        )],
        scaling_type: "m",
    ),
    slo: (latency_quantile: 0.99, latency_threshold_s: 0.5),
    controller: Static(),
)"#
    )
}

fn trace_workload(column: &str) -> String {
    format!(r#"Trace(path: "trace.csv", metrics: [(column: "{column}", meaning: RequestsPerSecond)])"#)
}

/// Runs `prescale run` on `scenario_text` (with `trace` beside it, if any) and returns (exit code, stderr),
/// checking that nothing was written.
fn run_bad(scenario_text: &str, trace: Option<&str>) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("s.ron"), scenario_text).unwrap();
    if let Some(t) = trace {
        std::fs::write(dir.path().join("trace.csv"), t).unwrap();
    }
    let results = dir.path().join("results");
    let out =
        prescale(&["run", dir.path().join("s.ron").to_str().unwrap(), "--out", results.to_str().unwrap(), "--quiet"]);
    let (stdout, stderr) = text(&out);
    assert!(files_under(&results).is_empty(), "results written despite an error: {stdout}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    (out.status.code(), stderr)
}

fn check(scenario_text: &str, trace: Option<&str>, needles: &[&str]) {
    let (code, stderr) = run_bad(scenario_text, trace);
    assert_ne!(code, Some(0), "accepted: {scenario_text}");
    for n in needles {
        assert!(stderr.contains(n), "'{n}' missing from: {stderr}");
    }
}

const PRICE: &str = "price_usd_per_hour: 0.1";
const SERVICE: &str = "(mean_service_s: 0.1)";

#[test]
fn the_good_case_runs() {
    let (code, stderr) = {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("s.ron"), scenario(&trace_workload("value"), "60", SERVICE, PRICE)).unwrap();
        std::fs::write(dir.path().join("trace.csv"), GOOD_TRACE).unwrap();
        let results = dir.path().join("results");
        let out = prescale(&[
            "run",
            dir.path().join("s.ron").to_str().unwrap(),
            "--out",
            results.to_str().unwrap(),
            "--quiet",
        ]);
        assert_eq!(files_under(&results).len(), 3);
        (out.status.code(), text(&out).1)
    };
    assert_eq!(code, Some(0), "{stderr}");
}

#[test]
fn unknown_field() {
    let s = scenario(&trace_workload("value"), "60", SERVICE, "pricee_usd_per_hour: 0.1");
    check(&s, Some(GOOD_TRACE), &["s.ron:11", "pricee_usd_per_hour"]);
}

#[test]
fn wrong_type() {
    check(
        &scenario(&trace_workload("value"), "\"sixty\"", SERVICE, PRICE),
        Some(GOOD_TRACE),
        &["s.ron:4", "Expected float"],
    );
}

#[test]
fn negative_and_zero_where_positive_is_needed() {
    check(&scenario(&trace_workload("value"), "-60", SERVICE, PRICE), Some(GOOD_TRACE), &["s.ron:4", "step_s", "> 0"]);
    check(
        &scenario(&trace_workload("value"), "60", "(mean_service_s: 0)", PRICE),
        Some(GOOD_TRACE),
        &["s.ron:6", "service.mean_service_s", "> 0"],
    );
    check(
        &scenario(&trace_workload("value"), "60", SERVICE, "price_usd_per_hour: -3"),
        Some(GOOD_TRACE),
        &["s.ron:11", "cluster.instance_types[0].price_usd_per_hour: must be >= 0, got -3"],
    );
}

#[test]
fn missing_trace_file() {
    check(
        &scenario(&trace_workload("value"), "60", SERVICE, PRICE),
        None,
        &["trace.csv", "cannot read trace", "s.ron:5"],
    );
}

#[test]
fn empty_trace_and_no_usable_rows() {
    let s = scenario(&trace_workload("value"), "60", SERVICE, PRICE);
    check(&s, Some(""), &["trace.csv", "empty"]);
    check(&s, Some("timestamp,value\n"), &["trace.csv", "no data rows"]);
}

#[test]
fn bad_values_name_row_and_column() {
    let s = scenario(&trace_workload("value"), "60", SERVICE, PRICE);
    for (bad, needle) in [
        ("NaN", "finite and >= 0, got NaN"),
        ("inf", "finite and >= 0, got inf"),
        ("-4", "finite and >= 0, got -4"),
        ("", "empty value"),
    ] {
        let t = format!("timestamp,value\n0,10\n60,12\n120,{bad}\n180,13\n");
        check(&s, Some(&t), &["trace.csv:4", "column 'value'", needle]);
    }
}

#[test]
fn unparsable_timestamp() {
    let s = scenario(&trace_workload("value"), "60", SERVICE, PRICE);
    check(
        &s,
        Some("timestamp,value\n2014-02-14 14:30:00,1\n2014-02-31 14:35:00,2\n"),
        &["trace.csv:3", "column 'timestamp'", "cannot parse timestamp '2014-02-31 14:35:00'"],
    );
}

#[test]
fn missing_column() {
    check(
        &scenario(&trace_workload("cpu"), "60", SERVICE, PRICE),
        Some(GOOD_TRACE),
        &["trace.csv:1", "column 'cpu'", "no such column; the header has: timestamp, value"],
    );
}

#[test]
fn horizon_beyond_the_trace() {
    let s = scenario(&trace_workload("value"), "60", SERVICE, PRICE).replace("horizon_s: 180", "horizon_s: 3600");
    check(&s, Some(GOOD_TRACE), &["s.ron:3", "horizon_s", "exceeds the trace"]);
}

#[test]
fn missing_scenario_file() {
    let out = prescale(&["run", "no/such/scenario.ron", "--quiet", "--out", "/nonexistent-results"]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr.contains("no/such/scenario.ron") && stderr.contains("cannot read"), "{stderr}");
}

#[test]
fn runs_too_long_for_memory_are_refused_before_they_start() {
    // A trace stretched a millionfold.
    let s = scenario(&trace_workload("value").replace(")])", ")], time_scale: 1e9)"), "60", SERVICE, PRICE)
        .replace("horizon_s: 180,", "");
    check(&s, Some(GOOD_TRACE), &["workload.time_scale", "more than 400 days"]);
    // A 180-s horizon in steps of a microsecond.
    check(
        &scenario(&trace_workload("value"), "1e-6", SERVICE, PRICE),
        Some(GOOD_TRACE),
        &["s.ron:4", "step_s", "use a longer step"],
    );
}
