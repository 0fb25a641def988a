//! Bad input to `prescale run`: each case exits non-zero with a message naming the file, the line (or
//! row) and the field, and writes nothing to the results folder.

use crate::common;

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
        assert_eq!(files_under(&results).len(), 4, "scenario, time series, summary and completion record");
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
    check(
        &scenario(&trace_workload("value"), "-60", SERVICE, PRICE),
        Some(GOOD_TRACE),
        &["s.ron:4", "step_s: must be in (0, 86400], got -60"],
    );
    check(
        &scenario(&trace_workload("value"), "60", "(mean_service_s: 0)", PRICE),
        Some(GOOD_TRACE),
        &["s.ron:6", "service.mean_service_s", "> 0"],
    );
    check(
        &scenario(&trace_workload("value"), "60", SERVICE, "price_usd_per_hour: -3"),
        Some(GOOD_TRACE),
        &["s.ron:11", "cluster.instance_types[0].price_usd_per_hour: must be a finite number >= 0, got -3"],
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
        ("NaN", "missing value ('NaN'; expected a number >= 0): `policies: (missing: Drop)`"),
        ("inf", "finite and >= 0, got inf"),
        ("-4", "finite and >= 0, got -4"),
        ("", "missing value (an empty cell"),
    ] {
        let t = format!("timestamp,value\n0,10\n60,12\n120,{bad}\n180,13\n");
        check(&s, Some(&t), &["trace.csv:4", "column 'value'", needle]);
    }
}

/// A trace as a new user's exporter writes it — semicolons, no `timestamp` column, unix milliseconds, holes —
/// runs without editing the file: the report says how it was read; the holes are refused until the policy
/// says what to do with them, and then counted.
#[test]
fn a_trace_as_an_exporter_writes_it_runs_with_its_reading_reported() {
    let t = "time_ms;requests\n1700000000000;10\n1700000060000;\n1700000120000;NaN\n1700000180000;13\n";
    let refuse = scenario(&trace_workload("requests"), "60", SERVICE, PRICE);
    check(&refuse, Some(t), &["trace.csv:3", "column 'requests'", "missing value (an empty cell", "missing: Drop"]);
    let drop = refuse.replace("RequestsPerSecond)]", "RequestsPerSecond)], policies: (missing: Drop)");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("s.ron"), drop).unwrap();
    std::fs::write(dir.path().join("trace.csv"), t).unwrap();
    let out = prescale(&["validate", dir.path().join("s.ron").to_str().unwrap()]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    for needle in [
        "2 rows, unix-milliseconds timestamps (column 'time_ms'), nominal interval 60 s",
        "rows with a missing value 2 (dropped), gaps 1 (longest 180 s)",
        "missing: Drop",
    ] {
        assert!(stdout.contains(needle), "'{needle}' missing from: {stdout}");
    }
    // forecast-eval reads the same file as it is: its one column beside the timestamps.
    let series: String =
        (0..4400).map(|i| format!("{};{}\n", 1_700_000_000_000u64 + 60_000 * i, 100 + (i % 60))).collect();
    std::fs::write(dir.path().join("series.csv"), format!("time_ms;requests\n{series}")).unwrap();
    let out =
        prescale(&["forecast-eval", dir.path().join("series.csv").to_str().unwrap(), "--models", "seasonal-naive"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert!(stdout.contains("### series [requests]") && stdout.contains("4400 points at 60 s"), "{stdout}");
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
    // A named timestamp column that is not there is never replaced by another.
    let named = trace_workload("value").replace("metrics:", "timestamp_column: \"ts\", metrics:");
    check(
        &scenario(&named, "60", SERVICE, PRICE),
        Some(GOOD_TRACE),
        &["trace.csv:1", "column 'ts': no such column for the timestamps; the header has: timestamp, value"],
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

// ---- Reliability (issue 11): inputs that used to panic, pass silently or misread. ----

#[test]
fn multibyte_characters_in_a_timestamp_are_an_error_not_a_panic() {
    let s = scenario(&trace_workload("value"), "60", SERVICE, PRICE);
    for ts in ["2015-01-01T00:00:0é", "2015-01-01T00:00:00é", "2015-01-01T00:é0:00", "é015-01-01T00:00:00", "🕐"]
    {
        let t = format!("timestamp,value\n{ts},1\n2015-01-01T00:01:00,2\n");
        check(&s, Some(&t), &["trace.csv:2", "column 'timestamp'", "cannot parse timestamp"]);
    }
}

#[test]
fn a_quoted_cell_with_a_comma_is_one_cell_never_a_misread_number() {
    // RFC 4180: a quoted label holding commas does not shift the columns after it.
    let t = prescale_sim::trace::parse_csv(
        "timestamp,\"label, with comma\",value\n0,\"a, b, c\",7\n60,\"say \"\"hi\"\"\",\"5\"\n",
        "timestamp",
        &["value".to_string()],
        &Default::default(),
    )
    .unwrap();
    assert_eq!(t.columns[0], [7.0, 5.0]);
    // "1,234" is one cell; as a number it is ambiguous (a thousands separator or a decimal comma), so it is
    // an error naming the cell, never 1 (what splitting at every comma read).
    let s = scenario(&trace_workload("value"), "60", SERVICE, PRICE);
    check(
        &s,
        Some("timestamp,value\n0,\"1,234\"\n60,2\n"),
        &["trace.csv:2", "column 'value'", "'1,234' is not a number", "thousands separator"],
    );
}

#[test]
fn overflow_to_infinity_is_an_error_naming_the_step() {
    // Values near the largest double times an amplitude scale: the demand is infinite from step 0.
    let w = trace_workload("value").replace(")])", ")], amplitude_scale: 10)");
    let t = "timestamp,value\n0,1e308\n60,1e308\n120,1e308\n180,1e308\n";
    check(
        &scenario(&w, "60", SERVICE, PRICE),
        Some(t),
        &["s.ron", "workload.amplitude_scale", "request rate (per s) at step 0 (t = 0 s) is inf"],
    );
    // Finite but absurd: far above any real service.
    let t = "timestamp,value\n0,10\n60,1e20\n120,10\n180,10\n";
    check(&scenario(&trace_workload("value"), "60", SERVICE, PRICE), Some(t), &["at step 1 (t = 60 s) is 1e20"]);
}

#[test]
fn absurd_sizes_are_refused_before_any_work_with_the_figure() {
    let base = scenario(&trace_workload("value"), "60", SERVICE, PRICE);
    check(
        &base.replace("max_count: 10", "max_count: 4000000000"),
        Some(GOOD_TRACE),
        &["cluster.instance_types", "adds up to 4000000000 instances, more than 1000000"],
    );
    let failing = base.replace(
        "scaling_type: \"m\",",
        "scaling_type: \"m\", failures: (mean_time_between_failures_s: 1e-9, replacement_delay_s: 60),",
    );
    check(&failing, Some(GOOD_TRACE), &["cluster.failures.mean_time_between_failures_s", "failures expected"]);
}

#[test]
fn names_that_could_write_outside_the_results_folder_are_refused() {
    let base = scenario(&trace_workload("value"), "60", SERVICE, PRICE);
    for bad in ["..", ".", "../escape", "a/b", ".hidden", &"x".repeat(256)] {
        check(
            &base.replace("name: \"bad\"", &format!("name: {bad:?}")),
            Some(GOOD_TRACE),
            &["s.ron:2", "name: must be"],
        );
    }
}

#[test]
fn a_byte_order_mark_is_read_past() {
    let dir = tempfile::tempdir().unwrap();
    let body = format!("\u{feff}{}", scenario(&trace_workload("value"), "60", SERVICE, PRICE));
    std::fs::write(dir.path().join("s.ron"), body).unwrap();
    std::fs::write(dir.path().join("trace.csv"), format!("\u{feff}{GOOD_TRACE}")).unwrap();
    let out = prescale(&["validate", dir.path().join("s.ron").to_str().unwrap()]);
    assert!(out.status.success(), "{:?}", text(&out));
}

#[test]
fn non_utf8_files_are_named_with_their_line() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = scenario(&trace_workload("value"), "60", SERVICE, PRICE).into_bytes();
    let at = bytes.iter().position(|&b| b == b'b').unwrap(); // in `name: "bad"`, line 2
    bytes[at] = 0xff;
    std::fs::write(dir.path().join("s.ron"), bytes).unwrap();
    let out = prescale(&["validate", dir.path().join("s.ron").to_str().unwrap()]);
    let all = format!("{}{}", text(&out).0, text(&out).1);
    assert!(!out.status.success() && all.contains("s.ron:2") && all.contains("not UTF-8"), "{all}");
    let s = scenario(&trace_workload("value"), "60", SERVICE, PRICE);
    let (code, stderr) = run_bad_bytes(&s, b"timestamp,value\n0,1\n60,\xff\n");
    assert_ne!(code, Some(0));
    assert!(stderr.contains("trace.csv:3") && stderr.contains("not UTF-8"), "{stderr}");
}

fn run_bad_bytes(scenario_text: &str, trace: &[u8]) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("s.ron"), scenario_text).unwrap();
    std::fs::write(dir.path().join("trace.csv"), trace).unwrap();
    let out =
        prescale(&["run", dir.path().join("s.ron").to_str().unwrap(), "--out", dir.path().join("r").to_str().unwrap()]);
    assert!(files_under(&dir.path().join("r")).is_empty());
    (out.status.code(), text(&out).1)
}

#[test]
fn a_huge_cell_is_not_echoed_whole() {
    let s = scenario(&trace_workload("value"), "60", SERVICE, PRICE);
    let cell = "9".repeat(100_000) + "x";
    let (code, stderr) = run_bad(&s, Some(&format!("timestamp,value\n0,{cell}\n60,1\n")));
    assert_ne!(code, Some(0));
    assert!(stderr.contains("more characters") && stderr.len() < 2_000, "{} bytes: {}", stderr.len(), &stderr[..200]);
}

#[test]
fn a_gzip_bomb_is_capped_with_a_clear_error() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let s = scenario(&trace_workload("value"), "60", SERVICE, PRICE).replace("trace.csv", "trace.csv.gz");
    std::fs::write(dir.path().join("s.ron"), s).unwrap();
    // 300 MiB of one repeated row, compressed to well under a megabyte.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(b"timestamp,value\n").unwrap();
    let block = b"0,1\n".repeat(1 << 18);
    for _ in 0..300 {
        gz.write_all(&block).unwrap();
    }
    let bytes = gz.finish().unwrap();
    assert!(bytes.len() < 4 << 20, "{}", bytes.len());
    std::fs::write(dir.path().join("trace.csv.gz"), bytes).unwrap();
    let out = prescale(&["validate", dir.path().join("s.ron").to_str().unwrap()]);
    let all = format!("{}{}", text(&out).0, text(&out).1);
    assert!(!out.status.success() && all.contains("decompresses to more than"), "{all}");
}

/// One validation vocabulary: the same rule, broken in a field of the engine (the cluster), of a controller
/// (the agents crate) and of a training file (the front end), reads the same, each at its own path and line.
#[test]
fn the_same_rule_reads_the_same_in_every_crate() {
    let dir = tempfile::tempdir().unwrap();
    let body = scenario(&trace_workload("value"), "60", SERVICE, "price_usd_per_hour: -3").replace(
        "controller: Static(),",
        "controller: Predictive(\n        predictor: HoltWinters(period_s: 120, alpha: 1.5),\n        variance: Fixed(percent: -3),\n        allocator: (target_utilisation: 0.6),\n    ),",
    );
    std::fs::write(dir.path().join("s.ron"), &body).unwrap();
    std::fs::write(dir.path().join("trace.csv"), GOOD_TRACE).unwrap();
    std::fs::write(
        dir.path().join("t.ron"),
        r#"Train(
    name: "t",
    scenario: "s.ron",
    task: Forecast,
    model: (architecture: Mlp(hidden: [8]), inputs: [Rate], window_steps: 2, horizon_steps: 1),
    split: (train: 1.5, validation: 0.15),
)"#,
    )
    .unwrap();
    let s = prescale(&["validate", dir.path().join("s.ron").to_str().unwrap()]);
    let (s_out, s_err) = text(&s);
    let s_err = s_out + &s_err;
    assert_ne!(s.status.code(), Some(0));
    for needle in [
        "s.ron:11: cluster.instance_types[0].price_usd_per_hour: must be a finite number >= 0, got -3",
        "s.ron:21: controller.variance.percent: must be a finite number >= 0, got -3",
        "s.ron:20: controller.predictor.alpha: must be in (0, 1), got 1.5",
    ] {
        assert!(s_err.contains(needle), "'{needle}' missing from: {s_err}");
    }
    let t = prescale(&["validate", dir.path().join("t.ron").to_str().unwrap()]);
    let (t_out, t_err) = text(&t);
    let t_err = t_out + &t_err;
    assert_ne!(t.status.code(), Some(0));
    assert!(t_err.contains("t.ron:6: split.train: must be in (0, 1), got 1.5"), "{t_err}");
}

/// A trace the fleet's count limits decide is accepted with a warning by `prescale validate`, which also says
/// what the demand asks of the fleet: a peak of 400 requests/s needs 43 servers at 0.1 s for p99 <= 0.5 s (Erlang
/// C, `../shared/peers/erlang_c.py`), 11 instances of 4 — more than `max_count` 10; scaled to 4/s, the minimum
/// of 2 meets it; scaled to 200/s (23 servers, 6 instances) nothing is said.
#[test]
fn validate_sizes_the_demand_and_warns_where_the_count_limits_decide() {
    let trace = "timestamp,value\n0,100\n60,400\n120,250\n180,300\n";
    let validate = |scale: &str| {
        let dir = tempfile::tempdir().unwrap();
        let workload = format!(
            r#"Trace(path: "trace.csv", metrics: [(column: "value", meaning: RequestsPerSecond)], amplitude_scale: {scale})"#
        );
        let s = scenario(&workload, "60", SERVICE, PRICE).replace("max_count: 10", "min_count: 2, max_count: 10");
        std::fs::write(dir.path().join("s.ron"), s).unwrap();
        std::fs::write(dir.path().join("trace.csv"), trace).unwrap();
        let out = prescale(&["validate", dir.path().join("s.ron").to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(0), "a warning is no error: {}", text(&out).1);
        text(&out).0
    };
    let big = validate("1.0");
    assert!(big.contains("peak 400 per s; the SLO needs") && big.contains("/ 11 instances of m there"), "{big}");
    assert!(big.contains("warning: the peak needs 11 instances of m, more than max_count 10"), "{big}");
    let small = validate("0.01");
    assert!(small.contains("warning: min_count 2 alone meets the peak (1 needed)"), "{small}");
    let fitting = validate("0.5");
    assert!(fitting.contains("/ 6 instances of m there") && !fitting.contains("warning"), "{fitting}");
}
