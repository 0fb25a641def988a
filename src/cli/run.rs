//! `prescale run`: one scenario, one seed, its files and the summary printed.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;
use indicatif::{ProgressBar, ProgressStyle};

use super::args::FidelityArg;
use crate::files::results::write_run;
use crate::files::scenario_io::{Loaded, load_scenario};

/// `prescale run`.
pub(super) fn cmd_run(
    scenario: &Path,
    seed: Option<u64>,
    fidelity: Option<FidelityArg>,
    out: &Path,
    quiet: bool,
    record_live: bool,
) -> Result<ExitCode> {
    let mut loaded = load_scenario(scenario).map_err(|d| crate::files::scenario_io::diagnostics_error(&d))?;
    if let Some(f) = fidelity {
        loaded.config.fidelity = match f {
            FidelityArg::Fluid => prescale_sim::scenario::Fidelity::Fluid,
            FidelityArg::RequestLevel => prescale_sim::scenario::Fidelity::RequestLevel,
        };
    }
    run_loaded(&loaded, seed, out, quiet, record_live)
}

pub(super) fn run_loaded(
    loaded: &Loaded,
    seed: Option<u64>,
    out: &Path,
    quiet: bool,
    record_live: bool,
) -> Result<ExitCode> {
    let seed = loaded.config.seed_or(seed);
    let prepared = loaded.prepare(seed).map_err(|d| crate::files::scenario_io::diagnostics_error(&d))?;
    if let Some(t) = &prepared.trace_report {
        println!("trace: {}", t.summary());
    }
    let bar = if quiet { ProgressBar::hidden() } else { ProgressBar::new(1000) };
    bar.set_style(
        ProgressStyle::with_template("{spinner} {msg} [{bar:40}] {percent}% (eta {eta})")
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar.set_message(format!("{} seed {seed}", prepared.config.name));
    let mut progress = |f: f64| bar.set_position((f * 1000.0) as u64);
    let (dir, output, wall_s, ticks) = if record_live {
        let t0 = std::time::Instant::now();
        let (o, t) = prescale_sim::scenario::run_recorded(&prepared, seed, &mut progress);
        let wall_s = t0.elapsed().as_secs_f64();
        bar.finish_and_clear();
        (write_run(out, &prepared, &o, seed, wall_s)?, o, wall_s, Some(t))
    } else {
        // The per-step table is formatted and written on another thread while the simulation runs.
        let (dir, o, wall_s) = crate::files::results::run_and_write(out, &prepared, seed, &mut progress)?;
        bar.finish_and_clear();
        (dir, o, wall_s, None)
    };
    if let Some(ticks) = ticks {
        let r = crate::live::record::recording(&prepared, seed, &ticks);
        crate::live::record::write_recording(&dir.join("live"), &r)?;
        println!(
            "recorded for live replay: {} ticks from {} to {} in {}{}",
            ticks.len(),
            crate::live::record::timestamp(r.span_unix_s.0),
            crate::live::record::timestamp(r.span_unix_s.1),
            dir.join("live").display(),
            if r.inexact_ticks > 0 {
                format!(" ({} ticks not exactly representable)", r.inexact_ticks)
            } else {
                String::new()
            }
        );
    }
    let s = &output.summary;
    println!(
        "{} ({:?}, {} steps of {} s, controller {}, seed {seed}) in {:.1} ms",
        s.scenario,
        s.fidelity,
        output.rows.len(),
        s.step_s,
        s.controller,
        wall_s * 1e3
    );
    println!(
        "  requests {:.0}, failed {:.0}, p50 {:.4} s, p99 {:.4} s",
        s.requests, s.failed_requests, s.latency_p50_s, s.latency_p99_s
    );
    println!(
        "  SLO violated {:.1} min, {:.4} % of requests; cost {:.2} USD; mean utilisation {:.1} %",
        s.slo_violation_minutes,
        100.0 * s.slo_violation_request_fraction,
        s.cost_usd,
        100.0 * s.mean_utilisation
    );
    println!(
        "  over-provisioning {:.1} core-h, under-provisioning {:.1} core-h, {} scaling actions, max {} instances",
        s.over_provisioning_core_hours, s.under_provisioning_core_hours, s.scaling_actions, s.max_instances
    );
    if let Some(sh) = &s.shadow {
        println!(
            "  shadow {}: would have cost {:.2} USD, violated the SLO {:.1} min; prevented {:.1} min, caused {:.1} min",
            sh.controller, sh.cost_usd, sh.slo_violation_minutes, sh.prevented_minutes, sh.caused_minutes
        );
    }
    if s.coverage.is_finite() {
        println!(
            "  forecast MAE {:.2} cores, coverage of forecast + margin {:.1} %, {} steps on the reactive fallback",
            s.forecast_mae_cores,
            100.0 * s.coverage,
            s.fallback_steps
        );
    }
    println!("results: {}", dir.display());
    Ok(ExitCode::SUCCESS)
}
