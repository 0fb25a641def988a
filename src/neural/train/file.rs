//! A training file: its types ([`TrainFile`], [`TaskConfig`]), reading and checking it with every problem at
//! its line, the scenario or series it learns from ([`Source`]), and the size limits of the data it asks for.

use std::path::{Path, PathBuf};

use anyhow::Result;
use prescale_agents::neural::facts::DaggerConfig;
use prescale_agents::neural::facts::LabelledSeries;
use prescale_agents::neural::spec::{Input, Level, OutputKind, Signal};
use serde::{Deserialize, Serialize};

use crate::files::ron_paths::value_lines;
use crate::files::scenario_io::{Diagnostic, Prepared, load_scenario, parse_ron, place_problems, read_text};
use prescale_sim::scenario::{TraceSlice, WorkloadConfig};
use prescale_sim::validate::{Interval, Problem, Problems};

/// What to learn.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum TaskConfig {
    /// Forecast cloning: future request rates from history.
    Forecast,
    /// Behavioural cloning of the hindsight expert over simulator rollouts of the scenario, with DAgger.
    Imitate {
        /// Rollout seeds (synthetic workloads draw their noise from them).
        #[serde(default = "seeds")]
        seeds: Vec<u64>,
        /// DAgger rounds and mixture.
        #[serde(default)]
        dagger: DaggerConfig,
        /// Act on this quantile when evaluating (Gaussian / quantile outputs).
        #[serde(default)]
        act_quantile: Option<f64>,
        /// Cost-aware cloning: the scenario must price SLO violations (`slo.violation_price_usd_per_min`; with
        /// a price the expert trades them against the bill whether or not this is set), and the learner (a
        /// `Point` output) is trained with the pinball loss at the critical ratio `τ = u / (u + o)` of the two
        /// prices and acts on it: it orders the
        /// `τ`-quantile of the expert's order, which minimises the expected cost of its errors
        /// ([`PolicySetting::cost_ratio`](prescale_agents::neural::expert::PolicySetting::cost_ratio)). The
        /// model card records the output as `Quantiles([τ])`.
        #[serde(default)]
        cost_aware: bool,
    },
}

fn seeds() -> Vec<u64> {
    vec![1]
}

/// Declares a file format's struct: its own fields, then the **training block** — `slice`, `task`, `model`,
/// `split`, `training`, what a learned model is made from. A training file ([`TrainFile`]) and an experiment's
/// training stage ([`crate::lab::stages::Stage`]) are both declared through it, so the block has one
/// definition (fields, defaults, documentation). A macro rather than a nested struct with `#[serde(flatten)]`:
/// serde cannot combine `flatten` with `deny_unknown_fields`, and both formats reject unknown fields.
macro_rules! with_training_block {
    ($(#[$attr:meta])* pub struct $name:ident { $($(#[$fattr:meta])* pub $field:ident: $ty:ty,)* }) => {
        $(#[$attr])*
        pub struct $name {
            $($(#[$fattr])* pub $field: $ty,)*
            /// The part of the scenario's trace to learn from (instead of the scenario's own start and horizon;
            /// its warm history is not used): `Fraction(from: 0.0, to: 0.7)` trains on the first 70 % and leaves
            /// the rest to a test scenario that names `Fraction(from: 0.7, to: 1.0)`.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub slice: Option<::prescale_sim::scenario::TraceSlice>,
            /// The task.
            pub task: $crate::neural::train::TaskConfig,
            /// The network.
            pub model: ::prescale_agents::neural::spec::ModelSpec,
            /// Time-ordered split.
            #[serde(default)]
            pub split: ::prescale_agents::neural::data::Split,
            /// The optimiser.
            #[serde(default)]
            pub training: ::prescale_agents::neural::facts::TrainingConfig,
        }
    };
}
pub(crate) use with_training_block;

with_training_block! {
    /// A training file.
    #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
    #[serde(deny_unknown_fields, rename = "Train")]
    pub struct TrainFile {
        /// Model name (folder name under the output root).
        pub name: String,
        /// Scenario file whose demand is learned from, relative to this file (or `series`).
        #[serde(default)]
        pub scenario: Option<String>,
        /// Instead of a scenario: the series a global forecaster learns from together, each `FILE[:COLUMN]`
        /// (column `value` by default) relative to this file, read as `forecast-eval` reads a trace (onto a
        /// grid at its median interval, gaps interpolated). Each series is split in time by `split`; the model
        /// must scale by each window's level (`model.level: Window`), and may then be used on any trace at any
        /// step.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        pub series: Vec<String>,
        /// With `series`: at most this many training windows from each series (a seeded sample; validation
        /// windows in the split's proportion), so that a long or fine-grained series weighs no more than the
        /// others.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub max_windows_per_series: Option<u32>,
    }
}

/// The training file's own problems (not its scenario's), paths from its root.
pub fn problems(cfg: &TrainFile) -> Problems {
    let mut p = Problems::new();
    if let Some(m) = prescale_sim::input::name_problem(&cfg.name) {
        p.add("name", m);
    }
    if let Some(TraceSlice::Fraction { from, to }) = &cfg.slice {
        p.within("slice.from", *from, Interval::closed_open(0.0, 1.0));
        p.within("slice.to", *to, Interval::open_closed(0.0, 1.0));
        p.require("slice.to", to > from, || format!("must be above slice.from ({from}), got {to}"));
    }
    match (&cfg.scenario, cfg.series.is_empty()) {
        (None, true) => p.add("scenario", "name the scenario to learn from (or `series`: traces, for a global model)"),
        (Some(_), false) => p.add("series", "name a scenario or series, not both"),
        (Some(s), true) if s.is_empty() => p.add("scenario", "must name a scenario file, got an empty path"),
        _ => {}
    }
    if !cfg.series.is_empty() {
        p.require("task", cfg.task == TaskConfig::Forecast, || {
            "a model across series is a forecaster (task: Forecast); policies learn from a scenario's rollouts".into()
        });
        p.require("model.level", cfg.model.level == Level::Window, || {
            "a model across series needs level: Window (each series scaled by its own recent level); with Global, \
             series in different units would share one mean and deviation"
                .into()
        });
        p.require("model.targets", cfg.model.targets == [Signal::Rate], || {
            format!(
                "a model across series forecasts each series' own values (targets [Rate]), got {:?}",
                cfg.model.targets
            )
        });
        p.require("slice", cfg.slice.is_none(), || {
            "a slice names part of a scenario's trace; series are read whole".into()
        });
        for (i, s) in cfg.series.iter().enumerate() {
            p.require(&format!("series[{i}]"), !s.trim().is_empty(), || {
                "must name a trace file (FILE[:COLUMN])".into()
            });
        }
    }
    if let Some(n) = cfg.max_windows_per_series {
        p.require("max_windows_per_series", !cfg.series.is_empty(), || {
            "balances the series of a model across series: name `series` or leave it out".into()
        });
        p.count_within("max_windows_per_series", n.into(), 1, 100_000_000);
    }
    p.under("model", |p| cfg.model.check(p));
    p.under("split", |p| cfg.split.check(p));
    p.under("training", |p| cfg.training.check(p));
    match &cfg.task {
        TaskConfig::Forecast => {
            if let Some((i, input)) = cfg.model.inputs.iter().enumerate().find(|(_, i)| i.is_state()) {
                p.add(
                    &format!("model.inputs[{i}]"),
                    format!("{input:?} is cluster state; Forecast learns from demand only"),
                );
            }
        }
        TaskConfig::Imitate { seeds, dagger, act_quantile, cost_aware } => {
            p.require("task.seeds", !seeds.is_empty(), || "must list at least one seed".into());
            if *cost_aware {
                p.require("model.output", cfg.model.output == OutputKind::Point, || {
                    format!(
                        "cost-aware cloning (task.cost_aware) trains the order's quantile at the scenario's cost \
                         ratio: must be Point, got {:?}",
                        cfg.model.output
                    )
                });
                p.require("task.act_quantile", act_quantile.is_none(), || {
                    "cost-aware cloning acts on the scenario's cost ratio: leave act_quantile out".into()
                });
            }
            p.require("model.horizon_steps", cfg.model.horizon_steps == 1, || {
                format!("a policy predicts one order: must be 1, got {}", cfg.model.horizon_steps)
            });
            if let Some((i, input)) =
                cfg.model.inputs.iter().enumerate().find(|(_, i)| matches!(i, Input::Memory | Input::Network))
                && cfg.model.level != Level::Global
            {
                p.add(
                    &format!("model.inputs[{i}]"),
                    format!(
                        "{input:?}: a policy sees a stated memory or network demand with level: Global (its order \
                         is an absolute count, scaled by the training data), got {:?}",
                        cfg.model.level
                    ),
                );
            }
            p.require("model.targets", cfg.model.targets == [Signal::Rate], || {
                format!("a policy predicts one order (targets [Rate]), got {:?}", cfg.model.targets)
            });
            p.under("task", |p| {
                p.within("dagger.beta", dagger.beta, Interval::closed(0.0, 1.0));
                p.count_within("dagger.rounds", dagger.rounds.into(), 0, 50);
                if let Some(q) = act_quantile {
                    p.within("act_quantile", *q, Interval::open(0.0, 1.0));
                }
            });
        }
    }
    p
}

/// Reads and checks a training file.
///
/// # Errors
/// Every problem, with file, line and dotted path.
pub fn load_train(file: &Path) -> Result<TrainFile, Vec<Diagnostic>> {
    load_train_text(file, &read_text(file)?)
}

/// Like [`load_train`], from text (`file` names it and anchors the scenario path).
///
/// # Errors
/// As [`load_train`].
pub fn load_train_text(file: &Path, text: &str) -> Result<TrainFile, Vec<Diagnostic>> {
    let cfg: TrainFile = parse_ron(file, text)?;
    let mut ps = problems(&cfg);
    let base = file.parent().unwrap_or(Path::new("."));
    if let Some(scenario) = &cfg.scenario {
        let scenario_file = base.join(scenario);
        if let Err(e) = std::fs::metadata(&scenario_file) {
            ps.add("scenario", format!("cannot read the scenario file {}: {e}", scenario_file.display()));
        }
    }
    for (i, s) in cfg.series.iter().enumerate() {
        let path = series_path(base, s);
        let (trace, _) = crate::neural::forecast_eval::split_column(&path);
        if let Err(e) = std::fs::metadata(trace) {
            ps.add(&format!("series[{i}]"), format!("cannot read the trace {trace}: {e}"));
        }
    }
    if !ps.is_empty() {
        return Err(place_problems(file, &value_lines(text), ps.into_vec()));
    }
    Ok(cfg)
}

/// A series of a training file (`FILE[:COLUMN]`, relative to the file's folder `base`) as a path from here.
fn series_path(base: &Path, spec: &str) -> String {
    let (file, column) = crate::neural::forecast_eval::split_column(spec);
    let path = base.join(file).display().to_string();
    match column {
        Some(c) => format!("{path}:{c}"),
        None => path,
    }
}

/// What a training learns from, loaded.
pub enum Source {
    /// A scenario (its slice applied) and its file.
    Scenario(Box<crate::files::scenario_io::Loaded>, PathBuf),
    /// Series of traces (a global forecaster).
    Series(Vec<LabelledSeries>),
}

/// [`load_train`], then what it learns from: the scenario it names (prepared with the scenario's seed), or
/// its series; the training data's size is checked against [`MAX_TRAINING_BYTES`] before any is built.
pub(super) fn load_source(file: &Path) -> Result<(TrainFile, Source, usize), Vec<Diagnostic>> {
    let cfg = load_train(file)?;
    let placed = |problem: Problem| -> Vec<Diagnostic> {
        match read_text(file) {
            Ok(text) => place_problems(file, &value_lines(&text), vec![problem]),
            Err(d) => d,
        }
    };
    let Some(scenario) = &cfg.scenario else {
        let base = file.parent().unwrap_or(Path::new("."));
        let mut series = Vec::with_capacity(cfg.series.len());
        for (i, spec) in cfg.series.iter().enumerate() {
            let s = crate::neural::forecast_eval::load(&series_path(base, spec))
                .map_err(|e| placed(Problem { path: format!("series[{i}]"), message: format!("{e:#}") }))?;
            series.push(s.labelled());
        }
        let steps = series.iter().map(|s| s.demand.steps()).sum();
        if let Some(p) = data_problem(&cfg, steps) {
            return Err(placed(p));
        }
        return Ok((cfg, Source::Series(series), steps));
    };
    let (loaded, scenario_file, p) = load_scenario_of(file, &cfg, scenario, &placed)?;
    Ok((cfg, Source::Scenario(Box::new(loaded), scenario_file), p.demand.steps()))
}

/// The scenario `scenario` of the training file `file` (`cfg`), its slice applied, and prepared.
fn load_scenario_of(
    file: &Path,
    cfg: &TrainFile,
    scenario: &str,
    placed: &dyn Fn(Problem) -> Vec<Diagnostic>,
) -> Result<(crate::files::scenario_io::Loaded, PathBuf, Prepared), Vec<Diagnostic>> {
    let scenario_file = file.parent().unwrap_or(Path::new(".")).join(scenario);
    let mut loaded = load_scenario(&scenario_file)?;
    if let Some(slice) = &cfg.slice {
        apply_slice(&mut loaded, slice, scenario).map_err(placed)?;
    }
    let prepared = loaded.prepare(loaded.config.seed)?;
    if let Some(p) = data_problem(cfg, prepared.demand.steps()) {
        return Err(placed(p));
    }
    if let (TaskConfig::Imitate { cost_aware: true, .. }, Some(why)) = (&cfg.task, unpriced(&loaded.config)) {
        return Err(placed(Problem { path: "task.cost_aware".into(), message: format!("{scenario}: {why}") }));
    }
    if let Some(p) = unstated(cfg, &loaded.config, scenario) {
        return Err(placed(p));
    }
    Ok((loaded, scenario_file, prepared))
}

/// A policy (`Imitate`) that sees a memory or network demand `config`'s workload does not state, at the input's
/// path (`None`: every demand it sees is stated). Forecasters are checked where they are used.
pub(super) fn unstated(
    cfg: &TrainFile,
    config: &crate::files::scenario_io::ScenarioConfig,
    scenario: &str,
) -> Option<Problem> {
    if !matches!(cfg.task, TaskConfig::Imitate { .. }) {
        return None;
    }
    let stated = config.stated_demand();
    let (i, input) = cfg
        .model
        .inputs
        .iter()
        .enumerate()
        .find(|(_, i)| (**i == Input::Memory && !stated.memory) || (**i == Input::Network && !stated.network))?;
    Some(Problem {
        path: format!("model.inputs[{i}]"),
        message: format!(
            "{input:?}: {scenario} states no such demand; give its trace's column (meaning: Utilisation(resource: \
             {input:?}, ...)) or leave the input out"
        ),
    })
}

/// Why a cost-aware policy cannot learn from `config` (`None`: it prices both a violated minute and an
/// instance of the scaling type above zero).
pub(super) fn unpriced(config: &crate::files::scenario_io::ScenarioConfig) -> Option<String> {
    let violation = config.slo.violation_price_usd_per_min;
    let instance = config.cluster.scaling_index().map_or(0.0, |i| config.cluster.instance_types[i].price_usd_per_hour);
    (!(violation.is_some_and(|p| p > 0.0) && instance > 0.0)).then(|| {
        format!(
            "cost-aware cloning weighs SLO-violation minutes against the bill, so the scenario must price both above \
             zero: slo.violation_price_usd_per_min is {}, the scaling type's price_usd_per_hour {instance}",
            violation.map_or("not set".to_string(), |p| p.to_string())
        )
    })
}

/// Makes `loaded` play `slice` of its trace from its start (its own start, horizon and warm history are left
/// aside): what a training learns from. `scenario` names it in the message.
///
/// # Errors
/// A synthetic workload (at `slice`): a slice names part of a trace.
pub fn apply_slice(
    loaded: &mut crate::files::scenario_io::Loaded,
    slice: &TraceSlice,
    scenario: &str,
) -> Result<(), Problem> {
    let c = &mut loaded.config;
    let WorkloadConfig::Trace(t) = &mut c.workload else {
        return Err(Problem {
            path: "slice".into(),
            message: format!("{scenario}: the scenario's workload is synthetic; a slice names part of a trace"),
        });
    };
    t.slice = Some(slice.clone());
    t.start_offset_s = 0.0;
    c.horizon_s = None;
    c.history_s = 0.0;
    Ok(())
}

/// Most bytes of training windows a training may hold (inputs and targets, `f32`).
pub const MAX_TRAINING_BYTES: f64 = 4.0 * (1u64 << 30) as f64;

/// The training windows' size when the scenario has `steps` steps, if over [`MAX_TRAINING_BYTES`]: one window
/// per step of `window_steps × inputs` values and `horizon_steps` targets, for each seed and DAgger round
/// (whose windows are aggregated).
pub fn data_problem(cfg: &TrainFile, steps: usize) -> Option<Problem> {
    let per_window = cfg.model.window_steps as f64 * cfg.model.width() as f64 + cfg.model.horizon_steps as f64;
    let copies = match &cfg.task {
        TaskConfig::Forecast => 1.0,
        TaskConfig::Imitate { seeds, dagger, .. } => seeds.len() as f64 * (dagger.rounds as f64 + 1.0),
    };
    let bytes = steps as f64 * per_window * 4.0 * copies;
    (bytes > MAX_TRAINING_BYTES).then(|| Problem {
        path: "model.window_steps".into(),
        message: format!(
            "{steps} steps of windows of {} x {} inputs{} would take {:.1} GiB, more than {:.0} GiB; use a shorter \
                 window, fewer seeds or rounds, or a shorter scenario",
            cfg.model.window_steps,
            cfg.model.width(),
            if copies > 1.0 { format!(" over {copies} seed-rounds") } else { String::new() },
            bytes / (1u64 << 30) as f64,
            MAX_TRAINING_BYTES / (1u64 << 30) as f64
        ),
    })
}

/// `prescale validate` for a training file: the file itself, then the scenario it names (with its trace).
///
/// # Errors
/// Every problem of the file, or the scenario's.
pub fn check(file: &Path) -> Result<String, Vec<Diagnostic>> {
    let (cfg, source, steps) = load_source(file)?;
    let task = match &cfg.task {
        TaskConfig::Forecast => "Forecast".to_string(),
        TaskConfig::Imitate { seeds, dagger, .. } => {
            format!("Imitate over {} seed(s), {} DAgger round(s)", seeds.len(), dagger.rounds)
        }
    };
    let from = match &source {
        Source::Scenario(loaded, scenario_file) => {
            format!("of {} s from {}", loaded.config.step_s, scenario_file.display())
        }
        Source::Series(series) => format!("from {} series", series.len()),
    };
    Ok(format!(
        "{task}, {} (window {}, {} horizon(s)), on {steps} steps {from}",
        cfg.model.architecture.name(),
        cfg.model.window_steps,
        cfg.model.horizon_steps,
    ))
}
