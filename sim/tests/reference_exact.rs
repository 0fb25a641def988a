//! Level-X conformance: REFERENCE_MODEL §3.5 and §4.9 check values, bit for bit.
//!
//! Counts, quantiles, `p_wait`, `end_time` and `instance_seconds` must be identical to the values produced by
//! SimPy 4.1.2, Ciw 3.2.7, nexosim 1.0.0 and the hand-written loop; means may differ by summation order
//! only (relative difference below 1e-12).

use prescale_sim::reference::{
    AUTOSCALE_CHECKS, AutoscaleParams, CheckLine, MMC_CHECKS, MmcParams, run_autoscale, run_mmc,
};

/// Every line of a comparison passes, every check value of the spec is compared (so a comparison cannot drop
/// one silently), and only the means are compared with a tolerance.
fn assert_all(what: &str, lines: &[CheckLine], exact: &[&str], means: &[&str]) {
    let names: Vec<&str> = lines.iter().map(|l| l.metric).collect();
    let mut want: Vec<&str> = exact.iter().chain(means).copied().collect();
    let mut got = names.clone();
    want.sort_unstable();
    got.sort_unstable();
    assert_eq!(got, want, "{what}: compared metrics");
    for l in lines {
        assert_eq!(l.exact, exact.contains(&l.metric), "{what} {}: exactness", l.metric);
        let d = ((l.got - l.want) / l.want).abs();
        assert!(l.ok, "{what} {}: got {:?}, want {:?} (relative difference {d:e})", l.metric, l.got, l.want);
    }
}

fn check_mmc(set: char) {
    let want = MMC_CHECKS.iter().find(|c| c.set == set).unwrap();
    let r = run_mmc(MmcParams::set(set).unwrap(), 1);
    // Conservation: every customer that arrived in the window departed.
    assert_eq!(r.departures, want.arrivals, "set {set} departures");
    assert_all(
        &format!("set {set}"),
        &want.compare(&r),
        &["customers", "arrivals", "events", "p_wait", "p50_sojourn", "p95_sojourn", "p99_sojourn", "end_time"],
        &["mean_wait", "mean_sojourn"],
    );
}

#[test]
fn mmc_steady_set_a_seed_1_is_exact() {
    check_mmc('A');
}

#[test]
fn mmc_steady_set_b_seed_1_is_exact() {
    check_mmc('B');
}

#[test]
fn mmc_steady_set_c_seed_1_is_exact() {
    check_mmc('C');
}

fn check_autoscale(horizon_s: f64) {
    let want = AUTOSCALE_CHECKS.iter().find(|c| c.horizon_s == horizon_s).unwrap();
    let r = run_autoscale(AutoscaleParams { horizon_s, ..AutoscaleParams::default() }, 1);
    assert_all(
        &format!("H={horizon_s}"),
        &want.compare(&r),
        &[
            "arrivals",
            "served",
            "ticks",
            "ready_events",
            "events",
            "p50_sojourn",
            "p99_sojourn",
            "instance_seconds",
            "max_instances",
            "final_instances",
            "launched",
            "cancelled",
            "drained",
        ],
        &["mean_sojourn", "mean_wait"],
    );
}

#[test]
fn autoscale_sine_seed_1_is_exact() {
    check_autoscale(7200.0);
}

/// The H = 900 means are given rounded to 12 significant digits in §4.9, hence the looser bound on them.
#[test]
fn autoscale_sine_h900_seed_1_is_exact() {
    check_autoscale(900.0);
}
