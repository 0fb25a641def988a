//! The `prescale` command as a user runs it: output format, exit codes, and one-line errors for bad flags.

use std::process::{Command, Output};

fn prescale(args: &[&str]) -> Output {
    Command::new(crate::common::exe("prescale")).args(args).output().expect("prescale runs")
}

fn result_json(out: &Output) -> serde_json::Value {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout.lines().find_map(|l| l.strip_prefix("RESULT ")).expect("a RESULT line");
    serde_json::from_str(line).expect("RESULT is JSON")
}

#[test]
fn reference_mmc_prints_key_values_and_result() {
    let out = prescale(&[
        "reference",
        "mmc-steady",
        "--lambda",
        "8",
        "--mu",
        "1",
        "--c",
        "10",
        "--T",
        "20000",
        "--seed",
        "1",
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("customers: 159907\n"), "{stdout}");
    let r = result_json(&out);
    assert_eq!(r["engine"], format!("prescale {}", env!("CARGO_PKG_VERSION")));
    assert_eq!(r["p99_sojourn"], 4.98092418223132);
    assert_eq!(r["warmup"], 2000.0);
    assert_eq!(r["events"], 351782);
}

#[test]
fn reference_autoscale_short_horizon() {
    let out = prescale(&["reference", "autoscale-sine", "--seed", "1", "--horizon", "900"]);
    assert!(out.status.success());
    let r = result_json(&out);
    assert_eq!(r["served"], 1186992);
    assert_eq!(r["instance_seconds"], 47520.0);
    assert_eq!(r["launched"], 29);
}

/// Each bad value exits non-zero with one line on stderr that names the flag and what it accepts.
#[test]
fn bad_flags_give_one_line_naming_the_flag() {
    let base = ["reference", "mmc-steady"];
    let cases: &[(&[&str], &str, &str)] = &[
        (&["--lambda", "-1", "--mu", "1", "--c", "2", "--T", "10"], "--lambda", "from 1e-9 to 1e9"),
        (&["--lambda", "abc", "--mu", "1", "--c", "2", "--T", "10"], "--lambda", "expected a number"),
        (&["--lambda", "1", "--mu", "0", "--c", "2", "--T", "10"], "--mu", "from 1e-9 to 1e9"),
        (&["--lambda", "1", "--mu", "1", "--c", "0", "--T", "10"], "--c", "integer from 1"),
        (&["--lambda", "1", "--mu", "1", "--c", "2.5", "--T", "10"], "--c", "integer from 1"),
        (&["--lambda", "1", "--mu", "1", "--c", "2", "--T", "0"], "--T", "> 0"),
        (&["--lambda", "1", "--mu", "1", "--c", "2", "--T", "-5"], "--T", "> 0"),
        (&["--lambda", "1", "--mu", "1", "--c", "2", "--T", "inf"], "--T", "finite"),
        (&["--lambda", "1", "--mu", "1", "--c", "2", "--T", "10", "--warmup", "-1"], "--warmup", ">= 0"),
        (&["--lambda", "1", "--mu", "1", "--c", "2", "--T", "10", "--seed", "-1"], "--seed", "integer from 0"),
        (&["--lambda", "2", "--mu", "1", "--c", "2", "--T", "10"], "--lambda / (--c × --mu)", "< 1"),
        (&["--lambda", "3", "--mu", "1", "--c", "2", "--T", "10"], "ρ = 1.5", "< 1"),
        (&["--lambda", "1000", "--mu", "10", "--c", "200", "--T", "1e12"], "--T", "at most"),
        (&["--mu", "1", "--c", "2", "--T", "10"], "--lambda", "not provided"),
    ];
    for (args, flag, allowed) in cases {
        let all: Vec<&str> = base.iter().chain(args.iter()).copied().collect();
        let out = prescale(&all);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{all:?}: {stderr}");
        assert!(out.stdout.is_empty(), "{all:?} printed results");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{all:?}: not one line: {stderr}");
        assert!(stderr.contains(flag) && stderr.contains(allowed), "{all:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{all:?}: {stderr}");
    }
    for args in [&["--horizon", "0"][..], &["--horizon", "1e9"], &["--horizon", "nan"], &["--seed", "x"]] {
        let all: Vec<&str> = ["reference", "autoscale-sine"].iter().chain(args.iter()).copied().collect();
        let out = prescale(&all);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{all:?}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{all:?}: {stderr}");
        assert!(stderr.contains(args[0]), "{all:?}: {stderr}");
    }
}
