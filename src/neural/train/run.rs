//! Training a model from a checked training file (forecast cloning, imitation with DAgger, or one forecaster
//! across series), writing its directory atomically, and exporting it as TorchScript.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use prescale_agents::neural::dagger::{RolloutWorld, RoundRow, train_policy};
use prescale_agents::neural::fit::EpochRow;
use prescale_agents::neural::forecast_cloning::{LearnError, SeriesFit, train_forecaster, train_global_forecaster};
use prescale_agents::neural::model::Model;
use prescale_agents::neural::spec::{ModelSpec, OutputKind};

use super::file::*;
/// What a training produced.
pub struct Trained {
    /// The model directory.
    pub dir: PathBuf,
    /// The card's metrics, for printing.
    pub model: Model,
    /// DAgger rounds (imitation).
    pub rounds: Vec<RoundRow>,
}

/// Trains as `file` says into `<out_root>/<name>/`.
///
/// # Errors
/// Bad config (with file and line), bad data, a non-finite loss (after writing the last good checkpoint),
/// or I/O.
pub fn train(file: &Path, out_root: &Path, quiet: bool) -> Result<Trained> {
    let (cfg, source, _) = load_source(file).map_err(|d| crate::files::scenario_io::diagnostics_error(&d))?;
    train_loaded(&cfg, &source, &out_root.join(&cfg.name), &file.display().to_string(), quiet)
}

/// Trains `cfg` on `source` (a scenario, its slice applied and its file named in the card; or series) into
/// `dir` (written whole or not at all; series add `series.csv`, one row per series with its test figures); a
/// non-finite loss writes the last good checkpoint beside it (`<dir>.last-good`). `what` names the training
/// in messages (its file, or an experiment's stage).
///
/// # Errors
/// Bad data, a non-finite loss, or I/O.
///
/// Why one function: the model folder is written whole or not at all, so the training, its curve, its card
/// and the checkpoint on failure all happen between making the temporary folder and renaming it.
pub fn train_loaded(cfg: &TrainFile, source: &Source, dir: &Path, what: &str, quiet: bool) -> Result<Trained> {
    let dir = dir.to_path_buf();
    let mut per_series: Vec<SeriesFit> = Vec::new();
    let mut curve: Vec<EpochRow> = Vec::new();
    let epochs = cfg.training.max_epochs as u64
        + match &cfg.task {
            TaskConfig::Imitate { dagger, .. } => dagger.rounds as u64 * dagger.epochs_per_round as u64,
            TaskConfig::Forecast => 0,
        };
    let pb = std::cell::RefCell::new(crate::lab::progress::Progress::new(quiet, epochs, &cfg.name, "epoch"));
    let mut on_epoch = |r: &EpochRow| {
        // Epochs count on across DAgger rounds, so the curve reads left to right.
        let mut r = *r;
        r.epoch = curve.len() as u32 + 1;
        curve.push(r);
        pb.borrow_mut().update(
            r.epoch as u64,
            &format!("train loss {:.4}, validation loss {:.4}", r.train_loss, r.validation_loss),
        );
    };
    let mut rounds: Vec<RoundRow> = Vec::new();
    let result = match (&cfg.task, source) {
        (TaskConfig::Forecast, Source::Series(series)) => train_global_forecaster(
            &cfg.name,
            &cfg.model,
            series,
            &cfg.split,
            &cfg.training,
            cfg.max_windows_per_series.map(|n| n as usize),
            &mut on_epoch,
        )
        .map(|g| {
            per_series = g.series;
            g.forecaster.model
        }),
        (TaskConfig::Imitate { .. }, Source::Series(_)) => bail!("{what}: series train forecasters only (checked)"),
        (TaskConfig::Forecast, Source::Scenario(loaded, scenario_file)) => {
            let source = scenario_file.display().to_string();
            let seed = loaded.config.seed_or(None);
            let prepared = loaded.prepare(seed).map_err(|d| anyhow!("{}", d[0]))?;
            train_forecaster(&cfg.name, &cfg.model, &prepared.demand, &source, &cfg.split, &cfg.training, &mut on_epoch)
                .map(|f| f.model)
        }
        (TaskConfig::Imitate { seeds, dagger, act_quantile, cost_aware }, Source::Scenario(loaded, scenario_file)) => {
            let source = scenario_file.display().to_string();
            let mut demands = Vec::new();
            for &s in seeds {
                let p = loaded.prepare(s).map_err(|d| anyhow!("{}", d[0]))?;
                demands.push((s, p.demand));
            }
            let mut world = RolloutWorld::from_scenario(&loaded.config, demands.clone(), *act_quantile);
            let cost_ratio = world.setting.cost_ratio();
            if let (true, Some(why)) = (*cost_aware, unpriced(&loaded.config)) {
                bail!("{what}: task.cost_aware: {source}: {why}");
            }
            if let Some(p) = unstated(cfg, &loaded.config, &source) {
                bail!("{what}: {}: {}", p.path, p.message);
            }
            let spec = match cost_ratio {
                Some(tau) if *cost_aware => {
                    world.act_quantile = Some(tau);
                    ModelSpec { output: OutputKind::Quantiles(vec![tau]), ..cfg.model.clone() }
                }
                _ => cfg.model.clone(),
            };
            let price = world.setting.violation_price_usd_per_min;
            let total = move |m: &prescale_sim::scenario::PeriodMetrics| {
                price.map_or(String::new(), |p| format!(" ({:.2} USD with violations)", m.total_cost_usd(p)))
            };
            let mut on_round = |r: &RoundRow| {
                pb.borrow().println(format!(
                    "  round {} (expert acts {:.0} %): {} windows, val loss {:.4}, validation: {:.0} SLO-violation min, \
                     {:.2} USD{}; test: order error {:.2} instances, {:.0} SLO-violation min, {:.2} USD{}",
                    r.round,
                    r.beta * 100.0,
                    r.train_windows,
                    r.validation_loss,
                    r.validation.slo_violation_minutes,
                    r.validation.cost_usd,
                    total(&r.validation),
                    r.test_order_mae_instances,
                    r.test.slo_violation_minutes,
                    r.test.cost_usd,
                    total(&r.test)
                ));
                rounds.push(r.clone());
            };
            train_policy(
                &cfg.name,
                &spec,
                &world,
                &source,
                &cfg.split,
                &cfg.training,
                dagger,
                &mut on_epoch,
                &mut on_round,
            )
            .map(|p| {
                let mut model = p.model;
                if let (true, Some(tau)) = (*cost_aware, cost_ratio) {
                    model.card.metrics.insert("cost_ratio".into(), tau);
                }
                model
            })
        }
    };
    pb.borrow().finish();
    let version = env!("CARGO_PKG_VERSION").to_string();
    let series_text = if per_series.is_empty() { None } else { Some(crate::files::results::to_csv(&per_series)) };
    let write_extra = |curve: &[EpochRow], rounds: &[RoundRow]| {
        let curve_text = crate::files::results::to_csv(curve);
        let rounds_text = if rounds.is_empty() { None } else { Some(dagger_csv(rounds)) };
        let series_text = series_text.clone();
        move |tmp: &Path| -> std::io::Result<()> {
            std::fs::write(tmp.join("curve.csv"), &curve_text)?;
            if let Some(t) = &rounds_text {
                std::fs::write(tmp.join("dagger.csv"), t)?;
            }
            if let Some(t) = &series_text {
                std::fs::write(tmp.join("series.csv"), t)?;
            }
            crate::plot::plot_curve(tmp).map_err(std::io::Error::other)?;
            Ok(())
        }
    };
    match result {
        Ok(mut model) => {
            model.card.prescale_version = version;
            model.save(&dir, &write_extra(&curve, &rounds))?;
            Ok(Trained { dir, model, rounds })
        }
        Err(LearnError::Data(msg)) => bail!("{what}: {msg}"),
        Err(LearnError::NonFinite(mut model, msg)) => {
            model.card.prescale_version = version;
            let keep = PathBuf::from(format!("{}.last-good", dir.display()));
            model.save(&keep, &write_extra(&curve, &rounds))?;
            bail!("{what}: {msg}; the last good checkpoint is in {}", keep.display())
        }
    }
}

fn dagger_csv(rounds: &[RoundRow]) -> String {
    let header = [
        "round",
        "expert_probability",
        "train_windows",
        "validation_loss",
        "validation_order_mae_instances",
        "validation_slo_violation_minutes",
        "validation_cost_usd",
        "test_order_mae_instances",
        "test_slo_violation_minutes",
        "test_cost_usd",
        "test_over_provisioning_core_hours",
    ];
    let rows = rounds.iter().map(|r| {
        vec![
            r.round.to_string(),
            r.beta.to_string(),
            r.train_windows.to_string(),
            r.validation_loss.to_string(),
            r.validation_order_mae_instances.to_string(),
            r.validation.slo_violation_minutes.to_string(),
            r.validation.cost_usd.to_string(),
            r.test_order_mae_instances.to_string(),
            r.test.slo_violation_minutes.to_string(),
            r.test.cost_usd.to_string(),
            r.test.over_provisioning_core_hours.to_string(),
        ]
    });
    prescale_sim::table::write_rows(&header, rows)
}

/// `prescale export MODEL_DIR`: checks the model and writes `model.pt` (traced, frozen TorchScript).
///
/// # Errors
/// A model directory that does not load (missing files, hash or architecture mismatch) or tracing problems.
pub fn export(dir: &Path) -> Result<()> {
    let card = Model::export(dir).with_context(|| format!("exporting {}", dir.display()))?;
    println!(
        "{}: TorchScript {} (inputs [batch, {}, {}]: {}; outputs [batch, {}, {}]: {}), sha256 {}",
        dir.display(),
        dir.join(prescale_agents::neural::model::TORCHSCRIPT_FILE).display(),
        card.spec.window_steps,
        card.input_columns.len(),
        card.input_columns.join(", "),
        card.spec.horizon_steps,
        card.output_columns.len(),
        card.output_columns.join(", "),
        card.torchscript_sha256.as_deref().unwrap_or("?")
    );
    Ok(())
}
