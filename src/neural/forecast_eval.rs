//! `prescale forecast-eval`: forecast accuracy of the neural architectures and the classical predictors on
//! real traces, by the rolling-origin protocol of `../shared/peers/forecast_baselines.py` (statsforecast), so
//! the figures stand beside the peers':
//!
//! * the series on a regular grid at its median interval `Δ` (mean per bin, gaps interpolated);
//! * season `m = round(1 day / Δ)`; 24 forecast origins `round(1 h / Δ)` steps apart, the last one `15` steps
//!   before the end; at each origin every model forecasts steps `1..=15`; for horizon `h` the absolute errors of
//!   steps `1..=h` of all origins are pooled (MAE);
//! * MASE = MAE / the in-sample MAE of the seasonal naive forecast (lag `m`) on the data before the first
//!   origin (Hyndman & Koehler 2006).
//!
//! Refits (`--refit`): `once` (default) runs the classical predictors online over all history before each
//! origin (Holt-Winters fits its smoothing parameters on the first four seasons) and trains each network once
//! on the data before the first origin (the last 15 % of it for early stopping), then only reads its input
//! window at each origin. `every-origin` refits as the peers do: at each origin the classical predictors start
//! afresh on the sliding window before it (`--refit-window-s`, 3 days as the peers'; Holt-Winters fits its
//! parameters on it), and each network is trained anew on all the data before the origin — 24 trainings per
//! network. `fine-tune` trains each network once as `once` does, then at each origin fine-tunes it on the
//! window before the origin (`--fine-tune-window-s`, 1 day; `--fine-tune-steps` full-batch Adam steps, 20, at
//! `--fine-tune-learning-rate`, 5e-4) before forecasting — the online fine-tuning a `Neural` predictor does in
//! simulation, by the same function. Networks named `NAME-window` (`gru-window`, …) scale inputs and outputs
//! by each window's mean rate (`level: Window`), so a level shift after training leaves their inputs in the
//! range they were trained on. `--horizons` chooses the horizons (default 1, 5, 15 steps); origins keep the largest one inside
//! the series.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, anyhow, bail};
use prescale_agents::neural::data::Frames;
use prescale_agents::neural::facts::FineTuneConfig;
use prescale_agents::neural::fit::TrainingConfig;
use prescale_agents::neural::forecast_cloning::{LabelledSeries, fit_forecaster};
use prescale_agents::neural::forecaster::fine_tune;
use prescale_agents::neural::model::Model;
use prescale_agents::neural::spec::{Architecture, Input, Level, ModelSpec, OutputKind};
use prescale_agents::predictor::{HoltWinters, Predictor, SeasonalNaive};
use prescale_sim::demand::DemandSeries;
use prescale_sim::trace::{DEFAULT_TIME_COLUMN, GapPolicy, TracePolicies, resample, time_column_index};

use crate::files::scenario_io::{parse_trace_text, read_trace_text};

/// The peers' horizons, steps: the default of `--horizons`.
pub const HORIZONS: [usize; 3] = [1, 5, 15];
const ORIGINS: usize = 24;

/// One series to evaluate.
pub struct Series {
    /// File name and column, for the table.
    pub label: String,
    /// Values on the grid.
    pub y: Vec<f64>,
    /// Grid interval, seconds.
    pub step_s: f64,
    /// Unix time of the first value.
    pub start_unix_s: f64,
    /// The peers' results file beside it, if one exists.
    pub peer: Option<PathBuf>,
}

/// `FILE[:COLUMN]` as the file and the column, if one is named (a colon followed by a path is part of the file
/// name).
pub fn split_column(spec: &str) -> (&str, Option<&str>) {
    match spec.rsplit_once(':') {
        Some((f, c)) if !c.contains('/') && !c.is_empty() => (f, Some(c)),
        _ => (spec, None),
    }
}

/// The column a `FILE` names no column of: `value` where the header has it (NAB's files), else the only column
/// besides the timestamps (`timestamp`, or the first column where there is none), else `value` (whose absence
/// the trace's error then names, with the header).
pub fn default_column(csv_text: &str) -> String {
    let mut header: Vec<String> = Vec::new();
    let first = csv_text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    let _ = prescale_sim::table::read_rows::<prescale_sim::table::TableError>(first, |_, fields| {
        header = fields.iter().map(|f| f.to_string()).collect();
        Ok(())
    });
    let time = time_column_index(&header, DEFAULT_TIME_COLUMN, &[]);
    let others: Vec<&String> = header.iter().enumerate().filter(|(i, _)| Some(*i) != time).map(|(_, h)| h).collect();
    match others.as_slice() {
        _ if header.iter().any(|h| h == "value") => "value".into(),
        [only] => (*only).clone(),
        _ => "value".into(),
    }
}

impl Series {
    /// The series as a training series of a global forecaster (its values as the demand's rate column).
    pub fn labelled(self) -> LabelledSeries {
        LabelledSeries {
            label: self.label,
            demand: DemandSeries {
                step_s: self.step_s,
                rate_per_s: self.y,
                start_unix_s: self.start_unix_s,
                ..DemandSeries::default()
            },
        }
    }
}

/// Loads `FILE[:COLUMN]` onto its grid.
///
/// # Errors
/// Trace problems, naming the file and line.
pub fn load(spec: &str) -> Result<Series> {
    let (file, named) = split_column(spec);
    let policies = TracePolicies { gaps: GapPolicy::Interpolate, ..TracePolicies::default() };
    let text = read_trace_text(Path::new(file)).map_err(|d| anyhow!("{d}"))?;
    let column = named.map_or_else(|| default_column(&text), str::to_string);
    let trace = parse_trace_text(Path::new(file), &text, DEFAULT_TIME_COLUMN, std::slice::from_ref(&column), &policies)
        .map_err(|d| {
            let hint = if named.is_none() { " (name the column: FILE:COLUMN)" } else { "" };
            anyhow!("{d}{hint}")
        })?;
    let step_s = trace.report.nominal_interval_s;
    let steps = (trace.report.span_s / step_s).floor() as usize;
    let y = resample(&trace, 0, GapPolicy::Interpolate, 0.0, 1.0, step_s, steps);
    let name = Path::new(file).file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let peers = Path::new(file).parent().unwrap_or(Path::new(".")).join("../peers/results");
    let peer = [
        ("nasa_http_jul95_requests_1min", "forecast_nasa_jul95_1min.json"),
        ("google2019_cluster_instance_usage_300s", "forecast_google2019_avg_cpu.json"),
    ]
    .iter()
    .find(|(n, _)| *n == name)
    .map(|(_, f)| peers.join(f))
    .filter(|p| p.is_file());
    Ok(Series { label: format!("{name} [{column}]"), y, step_s, start_unix_s: trace.report.first_timestamp_s, peer })
}

/// Pooled MAE per horizon of `forecasts[origin][step]` against the truth.
fn pooled(y: &[f64], origins: &[usize], forecasts: &[Vec<f64>], horizons: &[usize]) -> Vec<f64> {
    horizons
        .iter()
        .map(|&h| {
            let mut s = 0.0;
            for (o, f) in origins.iter().zip(forecasts) {
                for k in 0..h {
                    s += (f[k] - y[o + k]).abs();
                }
            }
            s / (h * origins.len()) as f64
        })
        .collect()
}

/// One model's row.
pub struct Row {
    /// Model name.
    pub model: String,
    /// MAE at each horizon of the evaluation.
    pub mae: Vec<f64>,
    /// Training (networks) or fit-and-forecast (classical) wall time, seconds.
    pub wall_s: f64,
}

/// The protocol's origins (indices of the first forecast step), season and MASE scale for a series, with the
/// peers' horizons.
///
/// # Errors
/// A series too short for 24 origins and two seasons before the first.
pub fn protocol(s: &Series) -> Result<(Vec<usize>, usize, f64)> {
    protocol_for(s, HORIZONS[2])
}

/// [`protocol`] with the last origin `hmax` steps before the end.
fn protocol_for(s: &Series, hmax: usize) -> Result<(Vec<usize>, usize, f64)> {
    let n = s.y.len();
    let m = ((86_400.0 / s.step_s).round() as usize).max(1);
    let every = ((3600.0 / s.step_s).round() as usize).max(1);
    let first = n.checked_sub(hmax + (ORIGINS - 1) * every).filter(|f| *f >= (2 * m).max(50)).ok_or_else(|| {
        anyhow!(
            "{}: {n} points are too few for {ORIGINS} origins every {every} steps, horizon {hmax} and season {m}",
            s.label
        )
    })?;
    let origins: Vec<usize> = (0..ORIGINS).map(|i| first + i * every).collect();
    let pre = &s.y[..first];
    let scale = pre.iter().skip(m).zip(pre).map(|(a, b)| (a - b).abs()).sum::<f64>() / (first - m) as f64;
    Ok((origins, m, scale))
}

/// MAE at horizons 1, 5, 15 of the seasonal naive forecast (lag one season), by the protocol.
///
/// # Errors
/// As [`protocol`].
pub fn seasonal_naive_mae(s: &Series) -> Result<Vec<f64>> {
    let (origins, m, _) = protocol(s)?;
    let forecasts: Vec<Vec<f64>> =
        origins.iter().map(|o| (0..HORIZONS[2]).map(|k| s.y[o + k - m * (k / m + 1)]).collect()).collect();
    Ok(pooled(&s.y, &origins, &forecasts, &HORIZONS))
}

/// Evaluates every model on one series.
///
/// # Errors
/// A series too short for the protocol, or training problems.
/// The models `forecast-eval` knows, by the names `--models` takes: the classical predictors, the networks,
/// and the networks with a window level ([`Level::Window`]: inputs and outputs scaled by each window's mean).
pub const MODELS: [&str; 10] = [
    "seasonal-naive",
    "holt-winters",
    "mlp",
    "gru",
    "lstm",
    "transformer",
    "mlp-window",
    "gru-window",
    "lstm-window",
    "transformer-window",
];

/// The models evaluated when `--models` names none: the classical predictors and the networks with the
/// global level.
pub const DEFAULT_MODELS: [&str; 6] = ["seasonal-naive", "holt-winters", "mlp", "gru", "lstm", "transformer"];

/// When models are fitted (see the module docs).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Refit {
    /// Classical predictors online over all history, networks trained before the first origin.
    #[default]
    Once,
    /// At every origin: classical predictors on the sliding window before it, networks on all data before it.
    EveryOrigin,
    /// Classical predictors online; networks trained before the first origin and fine-tuned at every origin on
    /// the recent window, as in simulation (`fine_tune` of a `Neural` predictor).
    FineTune,
}

/// What the networks of `forecast-eval` output and which point of it is scored.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum PointForecast {
    /// A Gaussian (negative log-likelihood), its mean scored.
    #[default]
    Mean,
    /// The median (the pinball loss at 0.5), scored as it is: the point that minimises the absolute error MASE
    /// measures; on skewed, bursty series the mean is pulled above it by the bursts.
    Median,
}

impl PointForecast {
    fn output(self) -> OutputKind {
        match self {
            PointForecast::Mean => OutputKind::Gaussian,
            PointForecast::Median => OutputKind::Quantiles(vec![0.5]),
        }
    }
}

/// What `forecast-eval` evaluates and how long networks train.
#[derive(Clone, Debug)]
pub struct EvalOptions {
    /// Models by name (of [`MODELS`]), in the report's order.
    pub models: Vec<String>,
    /// Most training epochs of a network.
    pub epochs: u32,
    /// Horizons, steps, increasing.
    pub horizons: Vec<usize>,
    /// When models are fitted.
    pub refit: Refit,
    /// With [`Refit::EveryOrigin`], the classical predictors' sliding window, seconds.
    pub refit_window_s: f64,
    /// With [`Refit::FineTune`], the fine-tune at each origin (its `every_s` is ignored: origins set the
    /// schedule).
    pub fine_tune: FineTuneConfig,
    /// Trained forecasters (model directories) evaluated beside the models: as they are, or fine-tuned at every
    /// origin with [`Refit::FineTune`].
    pub trained: Vec<PathBuf>,
    /// The networks' output and the point scored.
    pub point: PointForecast,
    /// Networks trained per model from seeds `1..=ensemble`, their point forecasts averaged (1: one network).
    pub ensemble: u32,
}

impl Default for EvalOptions {
    fn default() -> Self {
        EvalOptions {
            models: DEFAULT_MODELS.iter().map(|m| m.to_string()).collect(),
            epochs: 30,
            horizons: HORIZONS.to_vec(),
            refit: Refit::Once,
            refit_window_s: 3.0 * 86_400.0,
            fine_tune: FineTuneConfig { every_s: 3600.0, window_s: 86_400.0, steps: 20, learning_rate: 5e-4 },
            trained: Vec::new(),
            point: PointForecast::Mean,
            ensemble: 1,
        }
    }
}

/// Evaluates `models` (names of [`MODELS`]) on `s` by the peers' protocol: the report rows, the MASE scale and
/// the first origin.
///
/// # Errors
/// A trace too short for the protocol, or a network's training failing.
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
    Ok((rows, scale, first))
}

/// Network `name` of `spec` trained on `demand` before step `end` (its last 15 % stopping early), with a
/// progress bar unless `quiet`.
fn train_network(
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
fn load_trained(dir: &Path) -> Result<Model> {
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
        load_trained(dir)?;
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
