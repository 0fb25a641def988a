//! Training stages of an experiment: the models its learned controllers need, trained before the runs, per
//! scenario file (and per value of the axes a stage names), cached by content hash.
//!
//! ```ron
//! training: [
//!     (name: "gru", slice: Fraction(from: 0.0, to: 0.7), task: Forecast,
//!      model: (architecture: Gru(hidden: 32), window_steps: 24, horizon_steps: 6, output: Gaussian)),
//!     (name: "bc", slice: Fraction(from: 0.0, to: 0.7), per_axes: ["cluster.instance_types[0].provisioning_delay"],
//!      task: Imitate(seeds: [11, 12]), model: (architecture: Gru(hidden: 32), window_steps: 30, horizon_steps: 1)),
//! ],
//! controllers: [
//!     (name: "gru-aci", controller: Predictive(predictor: Neural(model: "@gru"), variance: AdaptiveConformal(alpha: 0.05), allocator: (target_utilisation: 0.6))),
//!     (name: "bc", controller: Bc(model: "@bc", act_quantile: Some(0.9))),
//! ],
//! ```
//!
//! A stage is a training file (`prescale train`'s `Train(…)`) without its name and scenario: it learns from
//! each run's own scenario file — or from `scenario` — with the values of the axes in `per_axes` applied (other
//! axes keep the file's values), playing `slice` of its trace. A controller names a stage's model as
//! `"@<stage>"`; each run gets the model trained for its scenario and axis values. Each distinct training is
//! a [`Job`] whose model directory is `<results>/<experiment>/models/<stage>-<hash>`, `hash` the first 12 hex
//! digits of the SHA-256 of everything the training reads (the stage, the training scenario as parsed, the
//! trace's timestamps and values, the prescale version): a rerun reuses a model whose inputs are unchanged and
//! trains again one whose inputs changed. The hash is also part of the ids of the runs that use the model, so
//! a retrained model never answers for results of the old one.
//!
//! Validation: a stage is checked like a training file (at `training[i]…`), its training scenario must load,
//! a trace stage must not train on the period the runs score (the slices may not overlap), and every
//! controller naming `@stage` is checked against what the stage will train ([`ModelFacts`]), before anything
//! trains.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

#[cfg(feature = "torch")]
use anyhow::Context;
use anyhow::Result;
use prescale_agents::neural::facts::{ModelFacts, Task};
use prescale_sim::scenario::WorkloadConfig;
use prescale_sim::validate::{Problem, Problems};
use serde::{Deserialize, Serialize};

use crate::files::ron_paths::set_path;
use crate::files::scenario_io::{Loaded, load_scenario_text, read_text};
use crate::neural::train::{TaskConfig, TrainFile, apply_slice, data_problem, with_training_block};
#[cfg(feature = "torch")]
use crate::neural::train::{Trained, train_loaded};

/// What a controller writes as its model to name a stage's: `"@<stage>"`.
pub const STAGE_PREFIX: char = '@';

with_training_block! {
    /// A training stage (see the module docs).
    #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Stage {
        /// Name (controllers write `"@<name>"`).
        pub name: String,
        /// Learn from this scenario file (relative to the experiment) instead of each run's own.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub scenario: Option<String>,
        /// Axes (paths, as in `axes`) whose values the training scenario takes: one model per value. Default
        /// none: one model per scenario file, whatever the axes.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        pub per_axes: Vec<String>,
    }
}

impl Stage {
    /// The training file this stage is, learning from `scenario`.
    pub fn train_file(&self, scenario: &str) -> TrainFile {
        TrainFile {
            name: self.name.clone(),
            scenario: Some(scenario.to_string()),
            series: Vec::new(),
            max_windows_per_series: None,
            slice: self.slice.clone(),
            task: self.task.clone(),
            model: self.model.clone(),
            split: self.split,
            training: self.training.clone(),
        }
    }

    /// What the model will be, for checking the controllers that use it before it is trained.
    pub fn facts(&self, step_s: f64) -> ModelFacts {
        let task = match self.task {
            TaskConfig::Forecast => Task::Forecast,
            TaskConfig::Imitate { .. } => Task::Policy,
        };
        ModelFacts { task, spec: self.model.clone(), step_s, any_step: false }
    }
}

/// One training to do: a stage on one training scenario.
#[derive(Clone, Debug)]
pub struct Job {
    /// Index of the stage in `training`.
    pub stage: usize,
    /// The stage's name.
    pub name: String,
    /// The scenario file learned from, and the per-stage axis values applied to it.
    pub scenario_file: PathBuf,
    /// `(axis path, value)` of the stage's `per_axes`.
    pub axis_values: Vec<(String, String)>,
    /// The training scenario, its slice applied.
    pub loaded: Loaded,
    /// The training file it amounts to.
    pub train: TrainFile,
    /// The first 12 hex digits of the SHA-256 of everything the training reads.
    pub hash: String,
    /// The model directory.
    pub dir: PathBuf,
    /// The trace seconds the training plays (`None` for a synthetic workload), for the overlap check.
    pub window: Option<(f64, f64)>,
}

impl Job {
    /// The folder name of its model: `<stage>-<hash>`.
    pub fn folder(&self) -> String {
        format!("{}-{}", self.name, self.hash)
    }
}

/// A training's identity: (stage index, scenario file learned from, the stage's axis values).
type JobKey = (usize, PathBuf, Vec<(String, String)>);

/// The jobs of an experiment's cells, each planned once: a key per (stage, scenario file, per-stage axis
/// values), the job's index for each.
#[derive(Default)]
pub struct Planner {
    /// Jobs in the order first needed.
    pub jobs: Vec<Job>,
    by_key: HashMap<JobKey, Result<usize, Vec<Problem>>>,
}

impl Planner {
    /// The job that trains `stages[si]` for a run of `cell_file` with `cell_axes` (all the run's axis
    /// values), its model under `models_root`; planned once per distinct training. `exp_dir` anchors the
    /// stage's own `scenario`.
    ///
    /// # Errors
    /// The training scenario's problems (paths below `training[si]`).
    pub fn job(
        &mut self,
        stages: &[Stage],
        si: usize,
        exp_dir: &Path,
        cell_file: &Path,
        cell_axes: &[(String, String)],
        models_root: &Path,
    ) -> Result<usize, Vec<Problem>> {
        let stage = &stages[si];
        let file = stage.scenario.as_ref().map_or_else(|| cell_file.to_path_buf(), |s| exp_dir.join(s));
        let axes: Vec<(String, String)> =
            cell_axes.iter().filter(|(p, _)| stage.per_axes.contains(p)).cloned().collect();
        let key = (si, file.clone(), axes.clone());
        if let Some(r) = self.by_key.get(&key) {
            return r.clone();
        }
        let r = plan(stage, si, &file, &axes, models_root).map(|job| {
            self.jobs.push(job);
            self.jobs.len() - 1
        });
        self.by_key.insert(key, r.clone());
        r
    }
}

/// Plans one training (see [`Planner::job`]).
fn plan(
    stage: &Stage,
    si: usize,
    file: &Path,
    axes: &[(String, String)],
    models_root: &Path,
) -> Result<Job, Vec<Problem>> {
    let at = |path: &str, message: String| Problem { path: format!("training[{si}].{path}"), message };
    let mut text = read_text(file).map_err(|d| {
        vec![at("scenario", d.first().map(|d| d.to_string()).unwrap_or_else(|| file.display().to_string()))]
    })?;
    for (path, value) in axes {
        text = set_path(&text, path, value)
            .ok_or_else(|| vec![at("per_axes", format!("'{path}' names no field of {}", file.display()))])?;
    }
    let mut loaded = load_scenario_text(file, &text)
        .map_err(|d| d.iter().map(|d| at("scenario", format!("training scenario {d}"))).collect::<Vec<_>>())?;
    let train = stage.train_file(&file.display().to_string());
    if let Some(slice) = &stage.slice {
        apply_slice(&mut loaded, slice, &file.display().to_string()).map_err(|p| vec![at(&p.path, p.message)])?;
    }
    let prepared = loaded
        .prepare(loaded.config.seed)
        .map_err(|d| d.iter().map(|d| at("slice", format!("training scenario {d}"))).collect::<Vec<_>>())?;
    if let Some(p) = data_problem(&train, prepared.demand.steps()) {
        return Err(vec![at(&p.path, p.message)]);
    }
    let hash = content_hash(stage, &loaded);
    let name = stage.name.clone();
    let dir = models_root.join(format!("{name}-{hash}"));
    let window = trace_window(&loaded, &prepared.demand, 0.0);
    Ok(Job {
        stage: si,
        name,
        scenario_file: file.to_path_buf(),
        axis_values: axes.to_vec(),
        loaded,
        train,
        hash,
        dir,
        window,
    })
}

/// The first 12 hex digits of the SHA-256 of what a training reads: the stage (name included), the training
/// scenario as parsed (its slice applied), the trace's timestamps and values (bit patterns), and the prescale
/// version (a new version may train differently).
fn content_hash(stage: &Stage, loaded: &Loaded) -> String {
    let mut bytes = Vec::new();
    bytes.extend_from_slice(b"prescale-stage-1\0");
    bytes.extend_from_slice(env!("CARGO_PKG_VERSION").as_bytes());
    bytes.push(0);
    bytes.extend_from_slice(serde_json::to_string(stage).unwrap_or_default().as_bytes());
    bytes.push(0);
    // The trace path is the file the trace came from, not what it holds: the values below stand for it.
    let mut config = loaded.config.clone();
    if let WorkloadConfig::Trace(t) = &mut config.workload {
        t.path = String::new();
    }
    bytes.extend_from_slice(serde_json::to_string(&config).unwrap_or_default().as_bytes());
    if let Some(trace) = &loaded.trace {
        for x in trace.times_s.iter().chain(trace.columns.iter().flatten()) {
            bytes.extend_from_slice(&x.to_bits().to_le_bytes());
        }
    }
    crate::files::results::sha256_hex(&bytes)[..12].to_string()
}

/// Checks a stage's own fields into `p` (paths below the stage): what a training file checks (its name
/// included), and its axes being axes of the experiment.
pub fn check_stage(p: &mut Problems, stage: &Stage, axes: &[String]) {
    // The scenario is each run's own or the stage's, checked where it is read; a stand-in here.
    for Problem { path, message } in
        crate::neural::train::problems(&stage.train_file("<the run's scenario>")).into_vec()
    {
        p.add(&path, message);
    }
    for (i, a) in stage.per_axes.iter().enumerate() {
        p.require(&format!("per_axes[{i}]"), axes.contains(a), || {
            format!("'{a}' is not an axis of this experiment (axes: {})", axes.join(", "))
        });
    }
}

/// The trace seconds `[from, to)` a prepared run plays of its trace from `scored_from_s` simulated seconds on
/// (the scored period when that is the warm history's length), or `None` for a synthetic workload.
pub fn trace_window(
    loaded: &Loaded,
    demand: &prescale_sim::demand::DemandSeries,
    scored_from_s: f64,
) -> Option<(f64, f64)> {
    let WorkloadConfig::Trace(t) = &loaded.config.workload else { return None };
    let start = demand.start_unix_s + scored_from_s / t.time_scale;
    let end = demand.start_unix_s + demand.steps() as f64 * demand.step_s / t.time_scale;
    Some((start, end))
}

/// Trains the jobs `needed` (indices into `jobs`) one after the other, each unless its model directory already
/// holds it: per job a manifest row (stage, scenario, axes, folder, `trained`/`reused`/`failed`), and the
/// failures by job (a failed training fails the runs that need it, not the sweep).
#[cfg(feature = "torch")]
pub fn train_jobs(
    jobs: &[Job],
    needed: &std::collections::BTreeSet<usize>,
    quiet: bool,
) -> (Vec<serde_json::Value>, std::collections::BTreeMap<usize, String>) {
    let (mut rows, mut failed) = (Vec::new(), std::collections::BTreeMap::new());
    for (k, &j) in needed.iter().enumerate() {
        let job = &jobs[j];
        let axes: Vec<String> = job.axis_values.iter().map(|(p, v)| format!("{p} = {v}")).collect();
        let place = format!(
            "'{}' on {}{}",
            job.name,
            job.scenario_file.display(),
            if axes.is_empty() { String::new() } else { format!(" with {}", axes.join(", ")) }
        );
        if !quiet {
            eprintln!("model {} of {}: {place} -> {}", k + 1, needed.len(), job.dir.display());
        }
        // One trainer per model at a time: shards and a training job running side by side wait here, and the
        // ones after the first find the model and reuse it.
        let _lock = match lock_model(&job.dir) {
            Ok(l) => l,
            Err(e) => {
                let why = format!("{e:#}");
                eprintln!("model {} of {}: {place}: {why}", k + 1, needed.len());
                failed.insert(j, why);
                continue;
            }
        };
        let state = match run_job(job, quiet) {
            Ok(Some(_)) => "trained",
            Ok(None) => {
                if !quiet {
                    eprintln!("  trained before (same inputs): reused");
                }
                "reused"
            }
            Err(e) => {
                let why = format!("{e:#}");
                eprintln!("model {} of {}: {place}: training failed: {why}", k + 1, needed.len());
                failed.insert(j, why);
                "failed"
            }
        };
        rows.push(serde_json::json!({
            "stage": job.name,
            "scenario_file": job.scenario_file.display().to_string(),
            "axes": job.axis_values.iter().map(|(p, v)| serde_json::json!({"path": p, "value": v})).collect::<Vec<_>>(),
            "dir": job.dir.display().to_string(),
            "state": state,
        }));
    }
    (rows, failed)
}

/// Takes (waiting for it) the lock of the model directory `dir`: `.<dir name>.lock` beside it.
#[cfg(feature = "torch")]
fn lock_model(dir: &Path) -> Result<std::fs::File> {
    let parent = dir.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let path = parent.join(format!(".{name}.lock"));
    let f = crate::files::results::open_lock(&path)?;
    f.lock().with_context(|| format!("locking {}", path.display()))?;
    Ok(f)
}

/// Trains `job` unless its model directory already holds a model that loads; `Ok(None)` when reused.
///
/// # Errors
/// As [`train_loaded`].
#[cfg(feature = "torch")]
pub fn run_job(job: &Job, quiet: bool) -> Result<Option<Trained>> {
    if prescale_agents::neural::card::is_trained(&job.dir) {
        return Ok(None);
    }
    let what = format!("training stage '{}' on {}", job.name, job.scenario_file.display());
    let source = crate::neural::train::Source::Scenario(Box::new(job.loaded.clone()), job.scenario_file.clone());
    train_loaded(&job.train, &source, &job.dir, &what, quiet).map(Some)
}
