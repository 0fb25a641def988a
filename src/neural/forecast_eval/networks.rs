//! The networks of `prescale forecast-eval`: trained on the series before the first origin (or at every
//! origin, or fine-tuned), or given trained (`--trained`), and their forecasts at the protocol's origins:
//! [`NETWORKS`], which `prescale-torch` installs in the gate's table.

use std::path::Path;
use std::time::Instant;

use anyhow::{Result, anyhow, bail};
use prescale_agents::neural::data::Frames;
use prescale_agents::neural::facts::TrainingConfig;
use prescale_agents::neural::forecast_cloning::fit_forecaster;
use prescale_agents::neural::forecaster::fine_tune;
use prescale_agents::neural::model::Model;
use prescale_agents::neural::spec::{Architecture, Input, Level, ModelSpec};
use prescale_sim::demand::DemandSeries;

use super::options::{EvalOptions, NetworkEval, Refit, Row};
use super::protocol::*;

/// The networks' side of forecast-eval, for the gate's table.
pub const NETWORKS: NetworkEval = NetworkEval { evaluate, check_trained: |dir| load_trained(dir).map(|_| ()) };

/// The rows of the networks `opts` asks for (named in `opts.models` or trained in `opts.trained`) on `s`, at
/// `origins` with horizons up to `hmax`.
///
/// # Errors
/// A network's training failing, or a trained model unfit for the series.
fn evaluate(
    s: &Series,
    training: &TrainingConfig,
    opts: &EvalOptions,
    quiet: bool,
    (origins, hmax): (&[usize], usize),
) -> Result<Vec<Row>> {
    let (models, horizons) = (&opts.models, &opts.horizons);
    let first = origins[0];
    let origins = origins.to_vec();
    let mut rows = Vec::new();
    // Networks, trained once on the data before the first origin.
    let window = ((3600.0 / s.step_s).round() as usize).clamp(24, 60) as u32;
    let demand = DemandSeries {
        step_s: s.step_s,
        rate_per_s: s.y.clone(),
        start_unix_s: s.start_unix_s,
        ..DemandSeries::default()
    };
    for (arch, level) in [
        Architecture::Mlp { hidden: vec![64, 64] },
        Architecture::Gru { hidden: 32, layers: 1 },
        Architecture::Lstm { hidden: 32, layers: 1 },
        Architecture::Transformer { d_model: 32, heads: 4, layers: 2, feed_forward: Some(64) },
    ]
    .into_iter()
    .flat_map(|a| [(a.clone(), Level::Global), (a, Level::Window)])
    {
        let name = match level {
            Level::Global => arch.name().to_string(),
            Level::Window => format!("{}-window", arch.name()),
        };
        if !models.contains(&name) {
            continue;
        }
        let spec = ModelSpec {
            architecture: arch.clone(),
            inputs: vec![Input::Rate, Input::TimeOfDay, Input::DayOfWeek],
            window_steps: window,
            horizon_steps: hmax as u32,
            output: opts.point.output(),
            level,
            targets: prescale_agents::neural::spec::default_targets(),
        };
        // The trainings: once before the first origin, or before every origin; each forecasts its origins.
        let fits: Vec<(usize, Vec<usize>)> = match opts.refit {
            Refit::Once | Refit::FineTune => vec![(first, origins.clone())],
            Refit::EveryOrigin => origins.iter().map(|&o| (o, vec![o])).collect(),
        };
        let frames =
            prescale_agents::neural::forecast_cloning::forecast_frames(&spec, &demand).map_err(|e| anyhow!(e))?;
        let mut forecasts: Vec<Vec<f64>> = Vec::new();
        let mut wall_s = 0.0;
        for (k, (end, at)) in fits.iter().enumerate() {
            // One network per seed; their point forecasts averaged.
            let mut sum: Vec<Vec<f64>> = vec![vec![0.0; hmax]; at.len()];
            for seed in 1..=u64::from(opts.ensemble) {
                if !quiet {
                    let which =
                        if fits.len() > 1 { format!(" (origin {} of {})", k + 1, fits.len()) } else { String::new() };
                    let member = if opts.ensemble > 1 { format!(", seed {seed}") } else { String::new() };
                    eprintln!("[forecast-eval] {}: training {name}{which}{member}", s.label);
                }
                let training = TrainingConfig { seed, ..training.clone() };
                let f = train_network(&name, &spec, &demand, &s.label, *end, &training, quiet)?;
                wall_s += f.fit.wall_s;
                let t0 = Instant::now();
                for (acc, one) in sum.iter_mut().zip(forecast_origins(&f.model, &frames, at, hmax, opts, s.step_s)) {
                    for (a, v) in acc.iter_mut().zip(one) {
                        *a += v / f64::from(opts.ensemble);
                    }
                }
                if opts.refit == Refit::FineTune {
                    wall_s += t0.elapsed().as_secs_f64();
                }
            }
            forecasts.extend(sum);
        }
        rows.push(Row { model: name, mae: pooled(&s.y, &origins, &forecasts, horizons), wall_s });
    }
    // Trained forecasters, as they are (zero-shot where the trace is new to them) or fine-tuned at every origin.
    for dir in &opts.trained {
        let t0 = Instant::now();
        let model = trained_for(dir, s, hmax, opts.refit)?;
        let frames = prescale_agents::neural::forecast_cloning::forecast_frames(&model.card.spec, &demand)
            .map_err(|e| anyhow!("--trained {}: {e}", dir.display()))?;
        let l = model.card.spec.window_steps as usize;
        if first < l {
            bail!("--trained {}: its window of {l} steps reaches before {}'s first step", dir.display(), s.label);
        }
        let forecasts = forecast_origins(&model, &frames, &origins, hmax, opts, s.step_s);
        rows.push(Row {
            model: format!(
                "{} (trained{})",
                model.card.name,
                if opts.refit == Refit::FineTune { ", fine-tuned" } else { "" }
            ),
            mae: pooled(&s.y, &origins, &forecasts, horizons),
            wall_s: t0.elapsed().as_secs_f64(),
        });
    }
    Ok(rows)
}

/// Network `name` of `spec` trained on `demand` before step `end` (its last 15 % stopping early), with a
/// progress bar unless `quiet`.
pub(super) fn train_network(
    name: &str,
    spec: &ModelSpec,
    demand: &DemandSeries,
    label: &str,
    end: usize,
    training: &TrainingConfig,
    quiet: bool,
) -> Result<prescale_agents::neural::forecast_cloning::Forecaster> {
    use prescale_agents::neural::forecast_cloning::LearnError;
    let mut progress = crate::lab::progress::Progress::new(
        quiet,
        training.max_epochs as u64,
        &format!("forecast-eval {label}"),
        "epoch",
    );
    let cut = (end as f64 * 0.85) as usize;
    let fitted = fit_forecaster(name, spec, demand, label, [0..cut, cut..end, end..end], training, false, &mut |r| {
        progress.update(
            r.epoch as u64,
            &format!("{name}: train loss {:.4}, validation loss {:.4}", r.train_loss, r.validation_loss),
        )
    });
    progress.finish();
    fitted.map_err(|e| match e {
        LearnError::Data(m) => anyhow!(m),
        LearnError::NonFinite(_, m) => anyhow!("{label}: {name}: {m}"),
    })
}

/// The trained model in `dir`, loaded (every check of the model directory) and a forecaster.
pub(super) fn load_trained(dir: &Path) -> Result<Model> {
    let model = Model::load(dir).map_err(|e| anyhow!("--trained {}: {e}", dir.display()))?;
    if model.card.task != prescale_agents::neural::facts::Task::Forecast {
        bail!(
            "--trained {}: a {:?} model; forecast-eval evaluates forecasters (task: Forecast)",
            dir.display(),
            model.card.task
        );
    }
    Ok(model)
}

/// The trained forecaster in `dir`, checked for use on `s` with horizons up to `hmax` under `refit`.
fn trained_for(dir: &Path, s: &Series, hmax: usize, refit: Refit) -> Result<Model> {
    let model = load_trained(dir)?;
    let (card, at) = (&model.card, dir.display());
    if card.spec.targets.len() != 1 {
        bail!("--trained {at}: forecasts {:?}; forecast-eval scores one series (targets [Rate])", card.spec.targets);
    }
    if (card.spec.horizon_steps as usize) < hmax {
        bail!(
            "--trained {at}: forecasts {} steps ahead, the evaluation's horizons reach {hmax} (choose --horizons up to \
             {})",
            card.spec.horizon_steps,
            card.spec.horizon_steps
        );
    }
    if !card.any_step && (card.step_s - s.step_s).abs() > 1e-9 * s.step_s {
        bail!(
            "--trained {at}: trained at step_s {}, {} steps {} s (a model trained across series, with `series:`, \
             reads any step)",
            card.step_s,
            s.label,
            s.step_s
        );
    }
    if refit == Refit::EveryOrigin {
        bail!(
            "--trained {at}: --refit every-origin trains networks anew at each origin; a trained model is evaluated as \
             it is (--refit once) or fine-tuned at every origin (--refit fine-tune)"
        );
    }
    Ok(model)
}

/// `model`'s forecasts of steps `1..=hmax` at each origin of `at` (indices of the first forecast step) from the
/// frames before it: in one forward pass, or with [`Refit::FineTune`] after fine-tuning on the recent window
/// before each origin (the steps before it only).
fn forecast_origins(
    model: &Model,
    frames: &Frames,
    at: &[usize],
    hmax: usize,
    opts: &EvalOptions,
    step_s: f64,
) -> Vec<Vec<f64>> {
    let spec = &model.card.spec;
    let (l, width, k, horizons) =
        (spec.window_steps as usize, spec.width(), spec.output.width(), spec.horizon_steps as usize);
    let targets = spec.targets.len();
    let forecast_at = |at: &[usize]| -> Vec<Vec<f64>> {
        let mut x = Vec::with_capacity(at.len() * l * width);
        for &o in at {
            x.extend(frames.inputs[(o - l) * width..o * width].iter().map(|v| *v as f32));
        }
        let out = model.predict(&x, at.len());
        // Rows horizon-major, then target; the rate is target 0.
        (0..at.len()).map(|i| (0..hmax).map(|h| out[(i * horizons + h) * targets * k] as f64).collect()).collect()
    };
    if opts.refit != Refit::FineTune {
        return forecast_at(at);
    }
    let recent = ((opts.fine_tune.window_s / step_s).round() as usize).max(l + horizons + 1);
    let mut forecasts = Vec::with_capacity(at.len());
    for &o in at {
        let from = o.saturating_sub(recent);
        let part = Frames {
            width,
            inputs: frames.inputs[from * width..o * width].to_vec(),
            target: frames.target[from * targets..o * targets].to_vec(),
        };
        fine_tune(model, &part, &opts.fine_tune);
        forecasts.extend(forecast_at(&[o]));
    }
    forecasts
}
