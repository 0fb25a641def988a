//! The `prescale forecast-eval` run over several traces: the peers' rows beside prescale's, the Markdown
//! report and the CSV table, rewritten after each trace so a long evaluation is never lost.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result, bail};
use prescale_agents::neural::facts::TrainingConfig;

use super::evaluate::*;
use super::options::*;
use super::protocol::*;
/// The peers' rows (model, h, MAE, MASE) from their JSON results.
fn peer_rows(path: &Path) -> Result<Vec<(String, u64, f64, f64)>> {
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path)?)?;
    Ok(v["results"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|r| {
                    (
                        r["model"].as_str().unwrap_or("?").to_string(),
                        r["h"].as_u64().unwrap_or(0),
                        r["MAE"].as_f64().unwrap_or(f64::NAN),
                        r["MASE"].as_f64().unwrap_or(f64::NAN),
                    )
                })
                .collect()
        })
        .unwrap_or_default())
}

/// The traces the peers evaluated (`../shared/traces` beside the repository), the default of
/// `prescale forecast-eval`.
pub fn default_traces() -> Vec<String> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/traces");
    [
        "nasa_http_jul95_requests_1min.csv",
        "google2019_cluster_instance_usage_300s.csv:avg_cpu",
        "nab_elb_request_count_8c0756.csv",
        "wikipedia_en_pagecounts_hourly_2016_01.csv",
    ]
    .iter()
    .map(|t| dir.join(t).display().to_string())
    .collect()
}

/// The evaluation so far: the Markdown report and the same figures as CSV rows (`trace, model, source,
/// horizon_steps, mae, mase, fit_s`; `source` is `prescale` or `statsforecast (peers)`).
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// The report (Markdown).
    pub md: String,
    /// The table (CSV text, with its header).
    pub csv: String,
}

/// CSV header of [`Report::csv`].
pub const CSV_HEADER: [&str; 7] = ["trace", "model", "source", "horizon_steps", "mae", "mase", "fit_s"];

/// Runs the evaluation on `traces` and returns the report; `after_trace` gets the report so far after each trace
/// (the command writes it out, so a long evaluation leaves its finished traces behind).
///
/// # Errors
/// Unknown model names, trace, protocol or training problems.
///
/// Why one function: the report is rebuilt after each trace from everything so far (peers' rows beside
/// prescale's), so the loop over traces and the table it writes stay together.
pub fn run(
    traces: &[String],
    opts: &EvalOptions,
    quiet: bool,
    after_trace: &mut dyn FnMut(&Report) -> Result<()>,
) -> Result<Report> {
    if let Some(bad) = opts.models.iter().find(|m| !MODELS.contains(&m.as_str())) {
        bail!("--models: unknown model '{}'; known: {}", prescale_sim::input::clip(bad, 40), MODELS.join(", "));
    }
    if opts.models.is_empty() {
        bail!("--models: name at least one model; known: {}", MODELS.join(", "));
    }
    if opts.horizons.is_empty() || opts.horizons.windows(2).any(|w| w[0] >= w[1]) || opts.horizons[0] == 0 {
        bail!("--horizons: steps ahead, increasing, at least 1 (e.g. 1,5,15), got {:?}", opts.horizons);
    }
    if !(opts.refit_window_s.is_finite() && opts.refit_window_s > 0.0) {
        bail!("--refit-window-s: must be a number of seconds > 0, got {}", opts.refit_window_s);
    }
    let ft = &opts.fine_tune;
    if !(ft.window_s.is_finite() && ft.window_s > 0.0) {
        bail!("--fine-tune-window-s: must be a number of seconds > 0, got {}", ft.window_s);
    }
    if !(1..=10_000).contains(&ft.steps) {
        bail!("--fine-tune-steps: must be 1 to 10000, got {}", ft.steps);
    }
    if !(ft.learning_rate > 0.0 && ft.learning_rate < 1.0) {
        bail!("--fine-tune-learning-rate: must be in (0, 1), got {}", ft.learning_rate);
    }
    if !(1..=100).contains(&opts.ensemble) {
        bail!("--ensemble: must be 1 to 100 networks per model, got {}", opts.ensemble);
    }
    let training = TrainingConfig {
        max_epochs: opts.epochs,
        batch_size: 256,
        learning_rate: 3e-3,
        patience: 5,
        ..TrainingConfig::default()
    };
    for dir in &opts.trained {
        // Each trained model loads (and is a forecaster) before any trace is read or network trained.
        match &opts.networks {
            Some(n) => (n.check_trained)(dir)?,
            None => {
                bail!("forecast-eval: --trained {} needs PyTorch, which this process has not loaded", dir.display())
            }
        }
    }
    let mut md = String::new();
    let mut table: Vec<Vec<String>> = Vec::new();
    let csv_row = |trace: &str, model: &str, source: &str, h: usize, mae: f64, scale: f64, fit_s: Option<f64>| {
        let num = |x: f64| if x.is_finite() { format!("{x}") } else { String::new() };
        vec![
            trace.to_string(),
            model.to_string(),
            source.to_string(),
            h.to_string(),
            num(mae),
            num(mae / scale),
            fit_s.map(num).unwrap_or_default(),
        ]
    };
    let hs: Vec<String> = opts.horizons.iter().map(|h| h.to_string()).collect();
    let fitting = match opts.refit {
        Refit::Once => "Classical predictors online over all history; networks trained once on the data before the \
                        first origin"
            .to_string(),
        Refit::EveryOrigin => format!(
            "Refitted at every origin: classical predictors afresh on the {} s before it, networks trained anew on all \
             the data before it",
            opts.refit_window_s
        ),
        Refit::FineTune => format!(
            "Classical predictors online over all history; networks trained once on the data before the first origin \
             and fine-tuned at every origin ({} Adam steps at learning rate {} on the {} s before it)",
            ft.steps, ft.learning_rate, ft.window_s
        ),
    };
    writeln!(
        md,
        "Rolling origin as ../shared/peers/forecast_baselines.py: {ORIGINS} origins 1 h apart, horizons {} steps \
         (errors of steps 1..h pooled), MASE scale = in-sample seasonal-naive MAE before the first origin. \
         {fitting} (networks: CPU, 1 thread, {seeds}, window 1 h (24..60 steps), {point}).\n",
        hs.join("/"),
        seeds = if opts.ensemble > 1 {
            format!("seeds 1..{} with their point forecasts averaged", opts.ensemble)
        } else {
            "seed 1".into()
        },
        point = match opts.point {
            PointForecast::Mean => "Gaussian output, its mean scored",
            PointForecast::Median => "the median output (pinball loss at 0.5) scored",
        }
    )?;
    for t in traces {
        let s = load(t).with_context(|| format!("loading {t}"))?;
        let (rows, scale, first) = evaluate(&s, &training, opts, quiet)?;
        writeln!(
            md,
            "### {}\n\n{} points at {} s, first origin at point {first}, MASE scale {scale:.4}\n",
            s.label,
            s.y.len(),
            s.step_s
        )?;
        let heads: Vec<String> =
            hs.iter().map(|h| format!("MAE h={h}")).chain(hs.iter().map(|h| format!("MASE h={h}"))).collect();
        writeln!(md, "| model | {} | train / fit s |", heads.join(" | "))?;
        writeln!(md, "|---|{}---|", "---|".repeat(heads.len()))?;
        let cells = |mae: &[f64]| -> String {
            let shown = |x: f64, digits: usize| if x.is_finite() { format!("{x:.digits$}") } else { "–".into() };
            mae.iter()
                .map(|m| shown(*m, 4))
                .chain(mae.iter().map(|m| shown(m / scale, 3)))
                .collect::<Vec<_>>()
                .join(" | ")
        };
        for r in &rows {
            writeln!(md, "| {} | {} | {:.1} |", r.model, cells(&r.mae), r.wall_s)?;
            for (h, mae) in opts.horizons.iter().zip(&r.mae) {
                table.push(csv_row(&s.label, &r.model, "prescale", *h, *mae, scale, Some(r.wall_s)));
            }
        }
        if let Some(p) = &s.peer {
            let pr = peer_rows(p)?;
            let mut models: Vec<&String> = pr.iter().map(|r| &r.0).collect();
            models.dedup();
            for model in models {
                // The peers' own figures at the horizons they report (a horizon they do not: –).
                let mae: Vec<f64> = opts
                    .horizons
                    .iter()
                    .map(|&h| pr.iter().find(|r| &r.0 == model && r.1 == h as u64).map_or(f64::NAN, |r| r.2))
                    .collect();
                writeln!(md, "| statsforecast {model} (peers) | {} | |", cells(&mae))?;
                for (h, m) in opts.horizons.iter().zip(&mae) {
                    table.push(csv_row(&s.label, model, "statsforecast (peers)", *h, *m, scale, None));
                }
            }
        }
        writeln!(md)?;
        after_trace(&report(&md, &table))?;
    }
    Ok(report(&md, &table))
}

fn report(md: &str, table: &[Vec<String>]) -> Report {
    let header: Vec<String> = CSV_HEADER.iter().map(|h| h.to_string()).collect();
    Report { md: md.to_string(), csv: prescale_sim::table::write_rows(&header, table.iter().cloned()) }
}
