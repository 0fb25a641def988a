//! Evaluating every model on one series at the protocol's origins: the classical predictors online, the
//! networks trained once, at every origin or fine-tuned, and the rows of MAE and MASE per horizon.

use std::time::Instant;

use anyhow::{Result, anyhow, bail};
use prescale_agents::neural::facts::TrainingConfig;
use prescale_agents::predictor::{HoltWinters, Predictor, SeasonalNaive};

use super::options::*;
use super::protocol::*;

/// Evaluates `models` (names of [`MODELS`]) on `s` by the peers' protocol: the report rows, the MASE scale and
/// the first origin.
///
/// # Errors
/// A trace too short for the protocol, or a network's training failing.
///
/// Why one function: the protocol's loop over models and origins, with the refit schedule deciding per model
/// what is trained when; each model kind is a short arm of one match over the same origins and rows.
pub fn evaluate(
    s: &Series,
    training: &TrainingConfig,
    opts: &EvalOptions,
    quiet: bool,
) -> Result<(Vec<Row>, f64, usize)> {
    let (models, horizons) = (&opts.models, &opts.horizons);
    let hmax = *horizons.last().expect("validated: at least one horizon");
    let (origins, m, scale) = protocol_for(s, hmax)?;
    let first = origins[0];
    let mut rows = Vec::new();
    // Classical predictors: online over all history, or afresh on the sliding window before each origin.
    type Make = fn(usize) -> Box<dyn Predictor>;
    let classical: [(&str, &str, Make); 2] = [
        ("seasonal-naive", "seasonal naive", |m| Box::new(SeasonalNaive::new(m))),
        ("holt-winters", "Holt-Winters (fitted)", |m| Box::new(HoltWinters::new(m, 0.2, 0.05, 0.15, true))),
    ];
    for (key, name, make) in classical {
        if !models.iter().any(|x| x == key) {
            continue;
        }
        let t0 = Instant::now();
        let mut forecasts = Vec::new();
        match opts.refit {
            Refit::Once | Refit::FineTune => {
                let mut p = make(m);
                let mut next = 0;
                for (t, y) in s.y.iter().enumerate() {
                    if next < origins.len() && t == origins[next] {
                        let f = p.forecast(hmax).map_err(|e| anyhow!("{}: {name}: {e}", s.label))?;
                        forecasts.push(f.mean);
                        next += 1;
                    }
                    p.observe(*y);
                }
            }
            Refit::EveryOrigin => {
                let window = ((opts.refit_window_s / s.step_s).round() as usize).max(1);
                for &o in &origins {
                    let mut p = make(m);
                    for y in &s.y[o.saturating_sub(window)..o] {
                        p.observe(*y);
                    }
                    let f = p.forecast(hmax).map_err(|e| {
                        anyhow!(
                            "{}: {name} on a {} s window: {e} (lengthen --refit-window-s)",
                            s.label,
                            opts.refit_window_s
                        )
                    })?;
                    forecasts.push(f.mean);
                }
            }
        }
        rows.push(Row {
            model: name.into(),
            mae: pooled(&s.y, &origins, &forecasts, horizons),
            wall_s: t0.elapsed().as_secs_f64(),
        });
    }
    if opts.needs_torch() {
        let Some(networks) = &opts.networks else {
            bail!("forecast-eval: {} need PyTorch, which this process has not loaded", opts.networks_named())
        };
        rows.extend((networks.evaluate)(s, training, opts, quiet, (&origins, hmax))?);
    }
    Ok((rows, scale, first))
}
