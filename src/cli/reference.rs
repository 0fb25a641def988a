//! `prescale reference` and `prescale check-reference`: the reference workloads of REFERENCE_MODEL.md, one at a
//! time or all against their check values.

use std::process::ExitCode;

use anyhow::Result;
use prescale_sim::reference::{
    AUTOSCALE_CHECKS, AutoscaleParams, CheckLine, MMC_CHECKS, MmcParams, run_autoscale, run_mmc,
};
use serde_json::Value;

use super::args::ReferenceWorkload;
use super::output::{key_value_and_result, with_field};
use crate::bench::procinfo::peak_rss_mib;

/// `prescale reference WORKLOAD`: one reference workload, printed as `key: value` lines and a `RESULT` line.
pub(super) fn cmd_reference(workload: ReferenceWorkload) -> Result<ExitCode> {
    match workload {
        ReferenceWorkload::MmcSteady(a) => {
            let params = a.validate()?;
            let r = run_mmc(params, a.seed);
            print!("{}", key_value_and_result(&with_peak_rss(&r)));
        }
        ReferenceWorkload::AutoscaleSine(a) => {
            let r = run_autoscale(AutoscaleParams { horizon_s: a.horizon, ..AutoscaleParams::default() }, a.seed);
            print!("{}", key_value_and_result(&with_peak_rss(&r)));
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn with_peak_rss<T: serde::Serialize>(r: &T) -> Value {
    with_field(r, "peak_rss_mib", peak_rss_mib().map_or(Value::Null, Value::from))
}

/// Each reference workload, seed 1, against its check values.
pub(super) fn check_reference() -> Result<ExitCode> {
    println!(
        "prescale {}: reference workloads of REFERENCE_MODEL.md, seed 1, against the check values",
        env!("CARGO_PKG_VERSION")
    );
    println!(
        "(exact = bit-identical to SimPy, Ciw, nexosim and the hand-written loop; means: up to summation order)\n"
    );
    let mut all_ok = true;
    let mut report = |title: String, lines: Vec<CheckLine>, events: u64, wall_s: f64| {
        let ok = lines.iter().all(|l| l.ok);
        all_ok &= ok;
        println!(
            "{title}: {} ({} canonical events in {:.3} s, {:.2} M events/s)",
            if ok { "MATCH" } else { "MISMATCH" },
            events,
            wall_s,
            events as f64 / wall_s / 1e6
        );
        for l in lines.iter().filter(|l| !l.ok) {
            println!("    {}: got {:?}, want {:?}", l.metric, l.got, l.want);
        }
    };
    for check in &MMC_CHECKS {
        let p = MmcParams::set(check.set).expect("known set");
        let r = run_mmc(p, 1);
        report(
            format!("mmc-steady {} (λ={}, μ={}, c={}, T={})", check.set, p.lambda, p.mu, p.c, p.t),
            check.compare(&r),
            r.events,
            r.wall_s,
        );
    }
    for check in &AUTOSCALE_CHECKS {
        let r = run_autoscale(AutoscaleParams { horizon_s: check.horizon_s, ..AutoscaleParams::default() }, 1);
        report(format!("autoscale-sine H={}", check.horizon_s), check.compare(&r), r.events, r.wall_s);
    }
    println!("\n{}", if all_ok { "All check values reproduced." } else { "Some check values differ: see above." });
    Ok(if all_ok { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}
