//! `prescale train` and `prescale forecast-eval`: the commands on networks. Training runs in `prescale-torch`
//! (through the gate's table that `install_torch` fills); forecast-eval runs in either binary, re-run in
//! `prescale-torch` when it evaluates networks.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;

#[cfg(feature = "torch")]
/// `prescale train`: the model folder, its metrics and its fit.
pub(crate) fn cmd_train(config: &Path, out: &Path, quiet: bool) -> Result<ExitCode> {
    let t = crate::neural::train::train(config, out, quiet)?;
    println!("model: {}", t.dir.display());
    for (k, v) in &t.model.card.metrics {
        println!("  {k}: {v:.6}");
    }
    let f = &t.model.card.fit;
    println!(
        "  {} parameters, {} epochs ({} kept), {} Adam steps in {:.1} s on {}",
        t.model.card.parameters, f.epochs, f.best_epoch, f.steps, f.wall_s, f.device
    );
    Ok(ExitCode::SUCCESS)
}

/// `prescale forecast-eval` (default: the peers' four traces in `../shared/traces`).
pub(crate) fn cmd_forecast_eval(
    traces: Vec<String>,
    opts: &crate::neural::forecast_eval::EvalOptions,
    out: Option<&Path>,
    csv: Option<&Path>,
    quiet: bool,
) -> Result<ExitCode> {
    let traces = if traces.is_empty() { crate::neural::forecast_eval::default_traces() } else { traces };
    let report = crate::neural::forecast_eval::run(&traces, opts, quiet, &mut |so_far| {
        if let Some(out) = out {
            crate::files::results::write_atomically(out, &so_far.md)?;
        }
        if let Some(csv) = csv {
            crate::files::results::write_atomically(csv, &so_far.csv)?;
        }
        Ok(())
    })?;
    print!("{}", report.md);
    Ok(ExitCode::SUCCESS)
}
