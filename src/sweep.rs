//! `prescale sweep`: every cell of an experiment, in parallel, deterministic, resumable, with statistics.
//!
//! Layout of `results/<experiment>/`: `experiment.json` (the experiment as validated), `runs/<cell id>/`
//! (each cell's `scenario.ron`, `timeseries.csv`, `summary.json`, written atomically: a cell is finished
//! exactly when its folder exists), `runs.csv` (one row per finished cell: coordinates and summary metrics,
//! in expansion order), `report.md` (means with 95 % confidence intervals over seeds, and paired differences
//! against the baseline controller on the same seeds) and `manifest.json` (version, git revision, seeds,
//! cells finished, failed and skipped, threads, wall time).
//!
//! Determinism: a cell is a pure function of its scenario, controller and seed, and every file but the
//! manifest is written in expansion order, so the results do not depend on the number of threads. A rerun
//! skips finished cells, and an *extended* experiment (seeds, scenarios, axis values or controllers added) reuses
//! every finished cell it still holds ([`extension_problem`]); a folder holding a different experiment (a
//! controller name redefined, other axes) is refused before anything runs. A cell
//! that fails (or panics) is reported and the others go on.
//!
//! Beyond one process: `--shard K/N` runs a fixed part of the cells ([`shard_assignment`]) and writes only
//! its cells and `shards/K-of-N.json`; [`collect`] then writes the tables from the finished cells with the same
//! functions, so they equal a whole sweep's byte for byte (`prescale slurm` runs the shards as a job array).
//!
//! With `batch_runs`, the cells that use neural models (BC policies and neural predictors, across controllers,
//! axis values and seeds) form batched groups ([`batch_groups`]), each run as one work item (`run_group`):
//! one libtorch forward pass per model per round of calls serves every run of the group.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use rayon::prelude::*;
use serde_json::{Value, json};

use crate::experiment::{Cell, Experiment, ExperimentConfig, load_experiment};
use crate::results::{build_info, cell_text, open_lock, verify_complete, write_run_to};

/// Options of a sweep.
#[derive(Clone, Debug)]
pub struct SweepOptions {
    /// Results root (the experiment's folder goes below it).
    pub out_root: PathBuf,
    /// Worker threads (`None`: all cores).
    pub threads: Option<usize>,
    /// No progress bar.
    pub quiet: bool,
    /// Run the cells with neural models in batched groups ([`batch_groups`]): one forward pass per model per
    /// round of calls for the whole group (see `run_group`).
    pub batch_runs: bool,
    /// Run only this shard's cells ([`shard_assignment`]); the tables are left to [`collect`].
    pub shard: Option<Shard>,
}

/// One of `count` disjoint parts of an experiment's cells: `index/count`, 0-based like
/// `$SLURM_ARRAY_TASK_ID` in a job array `--array=0-(count-1)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    /// Which part, `0..count`.
    pub index: usize,
    /// How many parts.
    pub count: usize,
}

/// Most shards an experiment may be cut into (Slurm's default `MaxArraySize` is 1001).
pub const MAX_SHARDS: usize = 100_000;

impl std::str::FromStr for Shard {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || {
            format!(
                "'{}': expected K/N with 0 <= K < N <= {MAX_SHARDS} (K 0-based, as $SLURM_ARRAY_TASK_ID), e.g. 0/4",
                prescale_sim::input::clip(s, 40)
            )
        };
        let (k, n) = s.split_once('/').ok_or_else(bad)?;
        let (index, count): (usize, usize) =
            (k.trim().parse().map_err(|_| bad())?, n.trim().parse().map_err(|_| bad())?);
        if count == 0 || count > MAX_SHARDS || index >= count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl Shard {
    /// The file name of this shard's report and lock: `K-of-N`.
    fn label(&self) -> String {
        format!("{}-of-{}", self.index, self.count)
    }
}

/// The most runs in one batched group (`--batch-runs`): each runs on its own thread, so this bounds a group's
/// threads and memory; batches of this size already amortise a forward pass's fixed cost.
pub const BATCH_GROUP_MAX: usize = 64;

/// Whether a cell can join a batched group: a controller or shadow with a neural model, and no model whose
/// weights change during the run (an online fine-tuning forecaster owns its model).
fn batchable(cell: &Cell) -> bool {
    let c = &cell.scenario.config;
    let shares = |k: &prescale_agents::ControllerConfig| k.model().is_none() || k.shares_model();
    uses_model(cell) && shares(&c.controller) && c.shadow.as_ref().is_none_or(shares)
}

/// The batched group (`--batch-runs`) of each cell, by position in `cells`: the batchable cells, by the models
/// they use and then in expansion order, in groups of at most [`BATCH_GROUP_MAX`] — across controllers, axis
/// values and seeds. A function of the experiment alone, so a cell's group (hence its bits: batching changes
/// float rounding) is the same on any thread count, in any shard and on a resumed sweep.
pub fn batch_groups(cells: &[Cell]) -> Vec<Option<usize>> {
    let mut by_models: BTreeMap<(Option<&str>, Option<&str>), Vec<usize>> = BTreeMap::new();
    for (i, c) in cells.iter().enumerate() {
        if batchable(c) {
            let cfg = &c.scenario.config;
            by_models.entry((cfg.controller.model(), cfg.shadow.as_ref().and_then(|s| s.model()))).or_default().push(i);
        }
    }
    let mut group = vec![None; cells.len()];
    for (g, chunk) in by_models.values().flat_map(|v| v.chunks(BATCH_GROUP_MAX)).enumerate() {
        for &i in chunk {
            group[i] = Some(g);
        }
    }
    group
}

/// The shard (`0..count`) of each cell, by position in `cells`: the work units in expansion order (the order of
/// their first cell) dealt round-robin. A work unit is one cell, or with `batched` (`--batch-runs`) one batched
/// group ([`batch_groups`]), which must run in one process. A function of the experiment alone — not of which
/// cells are finished, the thread count or the machine — so every shard of one `count` computes the same split:
/// their union is every cell, and no cell is in two. Balanced to one unit in count; since expansion puts the
/// seeds of a combination next to each other, each shard also gets an even share of every (scenario, axis
/// values, controller), hence of the cost when combinations differ in cost.
pub fn shard_assignment(cells: &[Cell], count: usize, batched: bool) -> Vec<usize> {
    assert!(count >= 1, "a shard count is at least 1");
    unit_indices(cells, batched).into_iter().map(|u| u % count).collect()
}

/// How many work units (see [`shard_assignment`]) the cells form: the most shards that each get a cell.
pub fn work_units(cells: &[Cell], batched: bool) -> usize {
    unit_indices(cells, batched).into_iter().max().map_or(0, |u| u + 1)
}

/// The work unit of each cell, numbered in the order of the units' first cells.
fn unit_indices(cells: &[Cell], batched: bool) -> Vec<usize> {
    let groups = if batched { batch_groups(cells) } else { vec![None; cells.len()] };
    let mut units: std::collections::HashMap<Result<usize, usize>, usize> = std::collections::HashMap::new();
    groups
        .into_iter()
        .enumerate()
        .map(|(i, g)| {
            let n = units.len();
            *units.entry(g.ok_or(i)).or_insert(n)
        })
        .collect()
}

/// What a sweep did.
#[derive(Clone, Debug, PartialEq)]
pub struct SweepOutcome {
    /// The experiment's results folder.
    pub dir: PathBuf,
    /// Cells run now.
    pub ran: usize,
    /// Cells finished before (skipped).
    pub skipped: usize,
    /// Finished cells found damaged (a file missing or changed since it was written) and run again:
    /// `(id, what was wrong)`.
    pub damaged: Vec<(String, String)>,
    /// Cells that failed: `(id, message)`.
    pub failed: Vec<(String, String)>,
    /// Whether Ctrl-C stopped the sweep before every cell was run (the finished ones are whole; a rerun of
    /// the same command resumes).
    pub interrupted: bool,
    /// Cells of the experiment, and of those, finished now or before.
    pub cells: usize,
    /// See `cells`.
    pub finished: usize,
    /// Batched groups run now (`--batch-runs`), the model calls their runs made (the forward passes of
    /// unbatched runs) and the forward passes really made.
    pub batched: BatchTotals,
}

/// What the batched groups of a sweep did (see `run_group`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BatchTotals {
    /// Groups run.
    pub groups: u64,
    /// Model calls of their runs: the forward passes one run at a time would make.
    pub model_calls: u64,
    /// Forward passes made.
    pub forward_passes: u64,
}

/// One batched group's outcome: each cell's (in order) and the group's counts.
pub struct GroupOutcome {
    /// Per cell, in the group's order.
    pub cells: Vec<Result<()>>,
    /// Model calls the runs made.
    pub model_calls: u64,
    /// Forward passes made.
    pub forward_passes: u64,
}

/// Environment variable naming a cell id that fails on purpose (to test failure isolation).
pub const FAIL_CELL_ENV: &str = "PRESCALE_FAIL_CELL";
/// Environment variable naming a cell id at whose start the sweep process kills itself with SIGKILL — as a
/// node failure, the OOM killer or `scancel --signal=KILL` would — to test that a killed shard leaves its
/// finished cells whole and that a rerun completes the experiment.
pub const KILL_AT_CELL_ENV: &str = "PRESCALE_KILL_AT_CELL";
/// Environment variable: after this many cells have finished, the sweep sends itself SIGINT (to test the
/// Ctrl-C path with a real signal, deterministically).
pub const INTERRUPT_AFTER_ENV: &str = "PRESCALE_INTERRUPT_AFTER";

/// Set by the first Ctrl-C (SIGINT): cells not yet started are left for a rerun; a second Ctrl-C ends the
/// process at once (exit 130; finished cells are whole, a cell being written leaves only a `.tmp-` folder).
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_sigint(_: libc::c_int) {
    // Only async-signal-safe calls here: an atomic swap, and _exit.
    if INTERRUPTED.swap(true, Ordering::SeqCst) {
        unsafe { libc::_exit(130) };
    }
}

/// Installs [`on_sigint`] for the duration of the cells and returns the handler it replaced (to restore).
fn install_sigint_handler() -> libc::sighandler_t {
    let handler: extern "C" fn(libc::c_int) = on_sigint;
    // SAFETY: the handler only touches an atomic and calls _exit, both async-signal-safe.
    unsafe { libc::signal(libc::SIGINT, handler as libc::sighandler_t) }
}

fn cell_json(cell: &Cell) -> Value {
    json!({
        "id": cell.id,
        "index": cell.index,
        "controller": cell.controller,
        "axes": cell.axis_values.iter().map(|(p, v)| json!({"path": p, "value": v})).collect::<Vec<_>>(),
        "scenario_file": cell.scenario_file.display().to_string(),
    })
}

/// Whether a cell's controller (or its shadow) runs a neural model.
fn uses_model(cell: &Cell) -> bool {
    let c = &cell.scenario.config;
    c.controller.model().is_some() || c.shadow.as_ref().is_some_and(|s| s.model().is_some())
}

/// [`crate::stages::train_jobs`] for the `needed` jobs, through the gate to libtorch only when there is one.
fn train_needed(
    jobs: &[crate::stages::Job],
    needed: &std::collections::BTreeSet<usize>,
    quiet: bool,
) -> (Vec<Value>, BTreeMap<usize, String>) {
    if needed.is_empty() {
        return (Vec::new(), BTreeMap::new());
    }
    (crate::torch_gate::require("training an experiment's models").train_jobs)(jobs, needed, quiet)
}

/// Runs the cells of one batched group ([`batch_groups`]), each on its own thread as a plain run, with every
/// forward pass of their models going through one [`prescale_agents::neural::batch::Batcher`]: one pass per
/// model per round of calls (see that module). A cell's decisions are its own; only the forward passes are
/// batched, which changes their float rounding, so a cell's bits depend on its group — fixed by the experiment,
/// hence the same on any thread count and on a resumed sweep (an unfinished group is run whole again and only
/// its missing cells are written). Returns each cell's outcome, in order.
pub(crate) fn run_group(cells: &[&Cell], dir: &Path) -> GroupOutcome {
    use prescale_agents::neural::batch::{Batcher, Participation};
    let batcher = Batcher::new(cells.len());
    type Ran =
        (prescale_sim::scenario::Prepared<prescale_agents::ControllerConfig>, prescale_sim::scenario::RunOutput, f64);
    let runs: Vec<Result<Ran>> = std::thread::scope(|scope| {
        let handles: Vec<_> = cells
            .iter()
            .enumerate()
            .map(|(p, cell)| {
                let batcher = batcher.clone();
                scope.spawn(move || {
                    if let Some(rt) = prescale_agents::neural::runtime::installed() {
                        (rt.init_thread)();
                    }
                    let _member = Participation::enter(batcher, p);
                    let prepared =
                        cell.scenario.prepare(cell.seed).map_err(|d| crate::scenario_io::diagnostics_error(&d))?;
                    let t0 = Instant::now();
                    let out = prescale_sim::scenario::run(&prepared, cell.seed, &mut |_| {});
                    Ok((prepared, out, t0.elapsed().as_secs_f64()))
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or_else(|p| Err(anyhow::anyhow!(panic_text(&*p))))).collect()
    });
    let counts = batcher.counts();
    let cells = cells
        .iter()
        .zip(runs)
        .map(|(cell, run)| {
            let dest = dir.join("runs").join(&cell.id);
            if dest.exists() {
                return Ok(());
            }
            let (prepared, out, wall_s) = run?;
            let mut extra = cell_json(cell);
            extra["batch"] = json!({
                "group_runs": cells.len(),
                "group_model_calls": counts.calls,
                "group_forward_passes": counts.forward_passes,
            });
            write_run_to(&dest, &prepared, &out, cell.seed, wall_s, extra)
        })
        .collect();
    GroupOutcome { cells, model_calls: counts.calls, forward_passes: counts.forward_passes }
}

/// The message of a caught panic.
fn panic_text(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<String>()
        .cloned()
        .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "panicked".into())
}

fn run_cell(cell: &Cell, dest: &Path) -> Result<()> {
    if std::env::var(FAIL_CELL_ENV).is_ok_and(|id| id == cell.id) {
        panic!("failure injected by {FAIL_CELL_ENV} for cell {}", cell.id);
    }
    if std::env::var(KILL_AT_CELL_ENV).is_ok_and(|id| id == cell.id) {
        // SAFETY: sending a signal to this process.
        unsafe { libc::kill(libc::getpid(), libc::SIGKILL) };
    }
    let prepared = cell.scenario.prepare(cell.seed).map_err(|d| crate::scenario_io::diagnostics_error(&d))?;
    let t0 = Instant::now();
    let out = prescale_sim::scenario::run(&prepared, cell.seed, &mut |_| {});
    write_run_to(dest, &prepared, &out, cell.seed, t0.elapsed().as_secs_f64(), cell_json(cell))
}

/// Takes the lock of `f` (at `path`, for messages) without waiting, `shared` or exclusive: `Ok(false)` when
/// another process holds it in a way that excludes this one.
fn take(f: &std::fs::File, path: &Path, shared: bool) -> Result<bool> {
    let r = if shared { f.try_lock_shared() } else { f.try_lock() };
    match r {
        Ok(()) => Ok(true),
        Err(std::fs::TryLockError::WouldBlock) => Ok(false),
        Err(std::fs::TryLockError::Error(e)) => Err(e).with_context(|| format!("locking {}", path.display())),
    }
}

/// Writes who holds `f` (process id and start time), for the message of the next one that cannot take it.
fn write_holder(f: &mut std::fs::File, what: &str) -> Result<()> {
    use std::io::{Seek, Write};
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    f.set_len(0)?;
    f.rewind()?;
    write!(f, "{what}process {} on {} since {}", std::process::id(), host_name(), crate::results::utc_stamp(now))?;
    f.flush()?;
    Ok(())
}

fn read_holder(f: &mut std::fs::File) -> String {
    use std::io::{Read, Seek};
    let mut holder = String::new();
    let _ = f.rewind();
    let _ = f.read_to_string(&mut holder);
    let holder = holder.trim();
    if holder.is_empty() { "holder unknown".to_string() } else { holder.to_string() }
}

/// This machine's host name (for lock holders and shard reports; "unknown" if it cannot be read).
pub(crate) fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown".into())
}

/// The exclusive lock of `<out_root>/<name>/`: a file `.<name>.lock` beside the folder, locked for as long as
/// the returned handle lives (the operating system releases it when the process ends, however it ends). A whole
/// sweep, a collect and `prescale slurm` take it; shards share it ([`lock_part`]).
///
/// # Errors
/// Another sweep holds it, or shards do (each named by the process id, host and start time it wrote), or the
/// file cannot be made.
pub(crate) fn lock_experiment(out_root: &Path, name: &str) -> Result<std::fs::File> {
    std::fs::create_dir_all(out_root).with_context(|| format!("creating {}", out_root.display()))?;
    let path = out_root.join(format!(".{name}.lock"));
    let mut f = open_lock(&path)?;
    if !take(&f, &path, false)? {
        // Shards hold it shared and name themselves in their own lock files.
        let prefix = format!(".{name}.");
        let mut holders = Vec::new();
        for e in std::fs::read_dir(out_root)?.flatten() {
            let file = e.file_name().to_string_lossy().into_owned();
            if let Some(part) = file.strip_prefix(&prefix).and_then(|r| r.strip_suffix(".lock"))
                && let Ok(mut g) = open_lock(&e.path())
                && !take(&g, &e.path(), false).unwrap_or(true)
            {
                holders.push(format!("{part}: {}", read_holder(&mut g)));
            }
        }
        holders.sort();
        let holder = if holders.is_empty() { read_holder(&mut f) } else { holders.join("; ") };
        bail!(
            "{} is being written by another sweep ({holder}); wait for it to finish or use another --out",
            out_root.join(name).display(),
        );
    }
    write_holder(&mut f, "")?;
    Ok(f)
}

/// The locks of one part of a sweep (a shard `K-of-N`, or `train`): the experiment's lock shared (so parts run
/// side by side but never beside a whole sweep or a collect) and the part's own `.<name>.<part>.lock`
/// exclusively (so one part never runs twice at once).
///
/// # Errors
/// A whole sweep or collect holds the experiment, or another process runs this part.
fn lock_part(out_root: &Path, name: &str, part: &str) -> Result<[std::fs::File; 2]> {
    std::fs::create_dir_all(out_root).with_context(|| format!("creating {}", out_root.display()))?;
    let path = out_root.join(format!(".{name}.lock"));
    let mut whole = open_lock(&path)?;
    if !take(&whole, &path, true)? {
        bail!(
            "{} is being written by another sweep ({}); wait for it to finish or use another --out",
            out_root.join(name).display(),
            read_holder(&mut whole)
        );
    }
    let own_path = out_root.join(format!(".{name}.{part}.lock"));
    let mut own = open_lock(&own_path)?;
    if !take(&own, &own_path, false)? {
        bail!(
            "{} {part} is already running ({}); wait for it to finish",
            out_root.join(name).display(),
            read_holder(&mut own)
        );
    }
    let slurm = std::env::var("SLURM_JOB_ID").map(|j| format!("Slurm job {j}, ")).unwrap_or_default();
    write_holder(&mut own, &slurm)?;
    Ok([whole, own])
}

/// Why `new` cannot reuse the finished cells of `old` (results of the same name), if it cannot. An experiment
/// may be extended — seeds, scenarios, axis values and controllers added or left out — since a cell's id names
/// every coordinate: a finished cell whose coordinates are in the new expansion is reused. It may not give a
/// controller name a new definition (its finished cells would answer for the old one) or change the set of
/// axes (every cell would be a different run).
pub fn extension_problem(old: &ExperimentConfig, new: &ExperimentConfig) -> Option<String> {
    for o in &old.controllers {
        if let Some(n) = new.controllers.iter().find(|n| n.name == o.name)
            && n.controller != o.controller
        {
            return Some(format!("controller '{}' is defined differently", o.name));
        }
    }
    let paths = |e: &ExperimentConfig| {
        let mut p: Vec<String> = e.axes.iter().map(|a| a.path.clone()).collect();
        p.sort();
        p
    };
    if paths(old) != paths(new) {
        return Some(format!("its axes are [{}], this file's [{}]", paths(old).join(", "), paths(new).join(", ")));
    }
    None
}

/// Makes `dir` the results folder of `cfg`: refuses a folder holding another experiment (one this file does not
/// extend, see [`extension_problem`]) or files but no `experiment.json`, then writes `experiment.json` and
/// `runs/`. Shards starting side by side may all do this: they write the same bytes, atomically, and a folder
/// holding nothing but hidden temporary files counts as empty.
///
/// # Errors
/// As above, and I/O errors.
pub(crate) fn open_results(cfg: &ExperimentConfig, dir: &Path) -> Result<()> {
    let exp_json = serde_json::to_string_pretty(cfg)?;
    let stored = dir.join("experiment.json");
    if stored.exists() {
        let old = std::fs::read_to_string(&stored).with_context(|| format!("reading {}", stored.display()))?;
        let why = match serde_json::from_str::<ExperimentConfig>(&old) {
            Ok(old) => extension_problem(&old, cfg),
            Err(_) => Some("its experiment.json is not one this prescale reads".to_string()),
        };
        if let Some(why) = why {
            bail!(
                "{} holds results of an experiment named '{}' that this file does not extend ({why}); use another \
                 --out or remove that folder",
                dir.display(),
                cfg.name
            );
        }
    } else if dir.exists()
        && std::fs::read_dir(dir)?.flatten().any(|e| !e.file_name().to_string_lossy().starts_with('.'))
    {
        bail!("{} exists and holds no experiment.json: refusing to mix results", dir.display());
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    // Rewritten only when it changes (shards starting side by side find it written by `prescale slurm`).
    if std::fs::read_to_string(&stored).ok().as_deref() != Some(exp_json.as_str()) {
        crate::results::write_atomically(&stored, &exp_json)?;
    }
    std::fs::create_dir_all(dir.join("runs")).with_context(|| format!("creating {}", dir.display()))?;
    Ok(())
}

/// Which finished cells of `cells` are whole: `(finished ids, damaged (id, what is wrong))`, each finished
/// folder verified against its completion record.
fn verify_cells<'a>(dir: &Path, cells: &[&'a Cell]) -> (HashSet<&'a str>, Vec<(String, String)>) {
    let mut finished = HashSet::new();
    let mut damaged = Vec::new();
    for c in cells {
        let d = dir.join("runs").join(&c.id);
        if d.exists() {
            match verify_complete(&d) {
                Ok(()) => {
                    finished.insert(c.id.as_str());
                }
                Err(why) => damaged.push((c.id.clone(), why)),
            }
        }
    }
    (finished, damaged)
}

/// Whether a file name in `runs/` is a cell's temporary folder (`.tmp-<id>-<pid>`), and whose.
fn temp_of(file: &str) -> Option<&str> {
    let rest = file.strip_prefix(".tmp-")?;
    rest.rsplit_once('-').map(|(id, _)| id)
}

/// Runs the experiment in `file` (or, with [`SweepOptions::shard`], that shard's cells).
///
/// A shard writes its cells and `shards/K-of-N.json` (what it ran, skipped and failed, and where); the tables
/// are then built by [`collect`], equal byte for byte to a whole sweep's.
///
/// # Errors
/// An invalid experiment (every problem), or an output folder holding a different experiment — before any
/// run; I/O errors writing the tables.
pub fn sweep(file: &Path, opts: &SweepOptions) -> Result<SweepOutcome> {
    let t0 = Instant::now();
    let Experiment { config: cfg, cells, jobs } =
        load_experiment(file, &opts.out_root).map_err(|d| crate::scenario_io::diagnostics_error(&d))?;
    // Models to train or to run need libtorch: in `prescale` this re-runs the command line in `prescale-torch`
    // now, before anything is locked or written (see `torch_gate`).
    if !jobs.is_empty() || cells.iter().any(uses_model) {
        crate::torch_gate::require("an experiment with neural models");
    }
    let dir = opts.out_root.join(&cfg.name);
    let _locks = match opts.shard {
        None => vec![lock_experiment(&opts.out_root, &cfg.name)?],
        Some(s) => lock_part(&opts.out_root, &cfg.name, &format!("shard-{}", s.label()))?.into(),
    };
    open_results(&cfg, &dir)?;
    let mine: Vec<&Cell> = match opts.shard {
        None => cells.iter().collect(),
        Some(s) => {
            let shard_of = shard_assignment(&cells, s.count, opts.batch_runs);
            cells.iter().zip(shard_of).filter(|(_, k)| *k == s.index).map(|(c, _)| c).collect()
        }
    };
    // Leftovers of an interrupted sweep: temporary folders are never results (a shard removes only its own).
    let own: HashSet<&str> = mine.iter().map(|c| c.id.as_str()).collect();
    for e in std::fs::read_dir(dir.join("runs"))?.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if let Some(id) = temp_of(&name)
            && (opts.shard.is_none() || own.contains(id))
        {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
    // Finished cells are verified against their completion records; a damaged one is named, removed and run
    // again, never counted as finished nor silently left out of the tables.
    let (finished, damaged) = verify_cells(&dir, &mine);
    for (id, _) in &damaged {
        let d = dir.join("runs").join(id);
        std::fs::remove_dir_all(&d).with_context(|| format!("removing damaged {}", d.display()))?;
    }
    let done = |c: &Cell| finished.contains(c.id.as_str());
    let todo: Vec<&Cell> = mine.iter().copied().filter(|c| !done(c)).collect();
    let skipped = mine.len() - todo.len();
    // Models first: each training the unfinished runs need, unless its folder already holds the model (the
    // folder is named by the content hash of what the training reads). A failed training fails its runs.
    let needed = jobs_of(todo.iter().copied());
    let (model_rows, failed_jobs) = train_needed(&jobs, &needed, opts.quiet);
    // Work items: single cells, or (with --batch-runs) a batched group with a cell to do.
    let group_of: HashMap<&str, usize> = if opts.batch_runs {
        cells.iter().zip(batch_groups(&cells)).filter_map(|(c, g)| g.map(|g| (c.id.as_str(), g))).collect()
    } else {
        HashMap::new()
    };
    let mut items: Vec<Vec<&Cell>> = Vec::new();
    let mut groups: BTreeMap<usize, Vec<&Cell>> = BTreeMap::new();
    for &cell in &mine {
        match group_of.get(cell.id.as_str()) {
            Some(&g) => groups.entry(g).or_default().push(cell),
            None if !done(cell) => items.push(vec![cell]),
            None => {}
        }
    }
    items.extend(groups.into_values().filter(|g| g.iter().any(|c| !done(c))));
    // A bar on a terminal, periodic plain lines otherwise (a long sweep is never silent in a log).
    let title = match opts.shard {
        None => cfg.name.clone(),
        Some(s) => format!("{} shard {s}", cfg.name),
    };
    let bar = std::sync::Mutex::new(crate::progress::Progress::new(opts.quiet, todo.len() as u64, &title, "runs"));
    let failed_now = AtomicUsize::new(0);
    let pool = rayon::ThreadPoolBuilder::new()
        .start_handler(|_| {
            if let Some(rt) = prescale_agents::neural::runtime::installed() {
                (rt.init_thread)();
            }
        })
        .num_threads(opts.threads.unwrap_or(0))
        .build()?;
    let threads = pool.current_num_threads();
    let previous_sigint = install_sigint_handler();
    let interrupt_after: Option<usize> = std::env::var(INTERRUPT_AFTER_ENV).ok().and_then(|v| v.parse().ok());
    let finished_now = AtomicUsize::new(0);
    let (groups_run, model_calls, forward_passes) = (AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0));
    let results: Vec<(String, Result<(), String>)> = pool.install(|| {
        items
            .par_iter()
            .flat_map_iter(|item| {
                if INTERRUPTED.load(Ordering::SeqCst) {
                    return Vec::new();
                }
                let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| -> Result<Vec<Result<()>>> {
                    if let Some((j, why)) =
                        item.iter().flat_map(|c| c.jobs.iter()).find_map(|j| failed_jobs.get_key_value(j))
                    {
                        anyhow::bail!("its model (training stage '{}') did not train: {why}", jobs[*j].name);
                    }
                    if item.len() == 1 {
                        Ok(vec![run_cell(item[0], &dir.join("runs").join(&item[0].id))])
                    } else {
                        let g = (crate::torch_gate::require("a batched group of runs").run_group)(item, &dir);
                        groups_run.fetch_add(1, Ordering::SeqCst);
                        model_calls.fetch_add(g.model_calls, Ordering::SeqCst);
                        forward_passes.fetch_add(g.forward_passes, Ordering::SeqCst);
                        Ok(g.cells)
                    }
                }));
                let per_cell: Vec<Result<(), String>> = match outcome {
                    Ok(Ok(rs)) => rs.into_iter().map(|r| r.map_err(|e| format!("{e:#}"))).collect(),
                    Ok(Err(e)) => vec![Err(format!("{e:#}")); item.len()],
                    Err(p) => vec![Err(panic_text(&*p)); item.len()],
                };
                let results: Vec<(String, Result<(), String>)> =
                    item.iter().zip(per_cell).filter(|(c, _)| !done(c)).map(|(c, r)| (c.id.clone(), r)).collect();
                let n = finished_now.fetch_add(results.len(), Ordering::SeqCst) + results.len();
                failed_now.fetch_add(results.iter().filter(|(_, r)| r.is_err()).count(), Ordering::SeqCst);
                if let Ok(mut b) = bar.lock() {
                    b.update(n as u64, &format!("{} failed", failed_now.load(Ordering::SeqCst)));
                }
                if interrupt_after.is_some_and(|k| n >= k) {
                    // SAFETY: raising a signal in this process; the handler above is installed.
                    unsafe { libc::raise(libc::SIGINT) };
                }
                results
            })
            .collect()
    });
    // Ctrl-C means what it meant before the sweep again (the tables below are written atomically).
    // SAFETY: restoring the handler `signal` returned.
    unsafe { libc::signal(libc::SIGINT, previous_sigint) };
    let interrupted = INTERRUPTED.load(Ordering::SeqCst);
    if let Ok(b) = bar.lock() {
        b.finish();
    }
    let failed: Vec<(String, String)> =
        results.iter().filter_map(|(id, r)| r.as_ref().err().map(|e| (id.clone(), e.clone()))).collect();
    let ran = results.len() - failed.len();
    let ok: HashSet<&str> =
        finished.iter().copied().chain(results.iter().filter(|(_, r)| r.is_ok()).map(|(id, _)| id.as_str())).collect();
    let (version, revision) = build_info();
    let runs = json!({
        "ran_now": ran,
        "skipped_finished": skipped,
        "damaged_rerun": damaged.iter().map(|(id, e)| json!({"id": id, "damage": e})).collect::<Vec<_>>(),
        "failed": failed.iter().map(|(id, e)| json!({"id": id, "error": e})).collect::<Vec<_>>(),
        "threads": threads,
        "models": model_rows,
        "interrupted": interrupted,
        "wall_time_s": t0.elapsed().as_secs_f64(),
    });
    let batched = BatchTotals {
        groups: groups_run.load(Ordering::SeqCst),
        model_calls: model_calls.load(Ordering::SeqCst),
        forward_passes: forward_passes.load(Ordering::SeqCst),
    };
    let mut runs = runs;
    if opts.batch_runs {
        runs["batched_inference"] = json!({
            "groups": batched.groups,
            "model_calls": batched.model_calls,
            "forward_passes": batched.forward_passes,
        });
    }
    let mut manifest = json!({
        "prescale_version": version,
        "git_revision": revision,
        "experiment": cfg.name,
        "seeds": cfg.seeds,
    });
    let finished_count = mine.iter().filter(|c| ok.contains(c.id.as_str())).count();
    if let Some(s) = opts.shard {
        // A shard's own report; the tables are the collect's.
        manifest["shard"] = json!(s.to_string());
        manifest["cells"] = json!(mine.len());
        manifest["finished"] = json!(finished_count);
        manifest["host"] = json!(host_name());
        manifest["slurm_job"] = json!(slurm_job());
        merge(&mut manifest, runs);
        let shards = dir.join("shards");
        std::fs::create_dir_all(&shards).with_context(|| format!("creating {}", shards.display()))?;
        crate::results::write_atomically(
            &shards.join(format!("{}.json", s.label())),
            &serde_json::to_string_pretty(&manifest)?,
        )?;
    } else {
        let rows = collect_rows(&dir, &cells, &ok)?;
        crate::results::write_atomically(&dir.join("runs.csv"), &runs_csv(&cfg, &rows))?;
        crate::results::write_atomically(&dir.join("report.md"), &crate::report::report(&cfg, &rows))?;
        manifest["cells"] = json!(cells.len());
        manifest["finished"] = json!(rows.len());
        merge(&mut manifest, runs);
        crate::results::write_atomically(&dir.join("manifest.json"), &serde_json::to_string_pretty(&manifest)?)?;
    }
    Ok(SweepOutcome {
        dir,
        ran,
        skipped,
        damaged,
        failed,
        interrupted,
        cells: mine.len(),
        finished: finished_count,
        batched,
    })
}

/// Adds the fields of `extra` (an object) to `into` (an object), in order.
fn merge(into: &mut Value, extra: Value) {
    if let (Value::Object(a), Value::Object(b)) = (into, extra) {
        a.extend(b);
    }
}

/// The Slurm job this process runs in, if any: `{job, array_job, array_task}` from Slurm's environment.
fn slurm_job() -> Value {
    let var = |k: &str| std::env::var(k).ok();
    match var("SLURM_JOB_ID") {
        None => Value::Null,
        Some(job) => json!({
            "job": job,
            "array_job": var("SLURM_ARRAY_JOB_ID"),
            "array_task": var("SLURM_ARRAY_TASK_ID"),
        }),
    }
}

/// What a collect found.
#[derive(Clone, Debug, PartialEq)]
pub struct CollectOutcome {
    /// The experiment's results folder.
    pub dir: PathBuf,
    /// Cells of the experiment.
    pub cells: usize,
    /// Of those, finished and whole (in the tables).
    pub finished: usize,
    /// The others, in expansion order: `(id, why it is not finished)` — failed in a shard (with its error),
    /// damaged, or never run (its shard was stopped or has not run).
    pub missing: Vec<(String, String)>,
}

/// Builds `runs.csv`, `report.md` and `manifest.json` of the experiment in `file` from its finished cells —
/// after its shards ran — without running anything. The tables are those a whole sweep writes, byte for byte
/// (same rows, same order, same functions); the manifest lists the shard reports instead of one run's threads
/// and wall time. Cells not finished are named with the reason the shard reports give.
///
/// # Errors
/// An invalid experiment; a results folder without this experiment's `experiment.json` (nothing ran) or holding
/// another experiment; a sweep or shard still writing it; I/O errors.
pub fn collect(file: &Path, out_root: &Path) -> Result<CollectOutcome> {
    let t0 = Instant::now();
    let Experiment { config: cfg, cells, jobs } =
        load_experiment(file, out_root).map_err(|d| crate::scenario_io::diagnostics_error(&d))?;
    let dir = out_root.join(&cfg.name);
    let _lock = lock_experiment(out_root, &cfg.name)?;
    if !dir.join("experiment.json").exists() {
        bail!(
            "{} holds no sweep of experiment '{}': nothing to collect (run `prescale sweep {} --shard K/N` or \
             `prescale slurm` first)",
            dir.display(),
            cfg.name,
            file.display()
        );
    }
    open_results(&cfg, &dir)?;
    let all: Vec<&Cell> = cells.iter().collect();
    let (finished, damaged) = verify_cells(&dir, &all);
    let reports = shard_reports(&dir)?;
    let mut failed_in: BTreeMap<String, (String, String)> = BTreeMap::new();
    for (label, r) in &reports {
        for f in r.get("failed").and_then(Value::as_array).into_iter().flatten() {
            if let (Some(id), Some(e)) = (f.get("id").and_then(Value::as_str), f.get("error").and_then(Value::as_str)) {
                failed_in.insert(id.to_string(), (label.clone(), e.to_string()));
            }
        }
    }
    let damaged: BTreeMap<String, String> = damaged.into_iter().collect();
    let missing: Vec<(String, String)> = cells
        .iter()
        .filter(|c| !finished.contains(c.id.as_str()))
        .map(|c| {
            let why = if let Some(d) = damaged.get(&c.id) {
                format!("damaged ({d}); a rerun of its shard runs it again")
            } else if let Some((label, e)) = failed_in.get(&c.id) {
                format!("failed in shard {}: {e}", label.replace("-of-", "/"))
            } else {
                "not run (its shard was stopped before it, or has not run)".to_string()
            };
            (c.id.clone(), why)
        })
        .collect();
    let rows = collect_rows(&dir, &cells, &finished)?;
    crate::results::write_atomically(&dir.join("runs.csv"), &runs_csv(&cfg, &rows))?;
    crate::results::write_atomically(&dir.join("report.md"), &crate::report::report(&cfg, &rows))?;
    let (version, revision) = build_info();
    let models: Vec<Value> = jobs
        .iter()
        .map(|j| {
            let present = prescale_agents::neural::model::is_trained(&j.dir);
            json!({"stage": j.name, "dir": j.dir.display().to_string(), "state": if present { "present" } else { "missing" }})
        })
        .collect();
    let manifest = json!({
        "prescale_version": version,
        "git_revision": revision,
        "experiment": cfg.name,
        "seeds": cfg.seeds,
        "cells": cells.len(),
        "finished": rows.len(),
        "collected": true,
        "missing": missing.iter().map(|(id, why)| json!({"id": id, "why": why})).collect::<Vec<_>>(),
        "models": models,
        "shards": reports.into_iter().map(|(label, mut r)| {
            if let Value::Object(m) = &mut r {
                m.retain(|k, _| matches!(k.as_str(), "shard" | "cells" | "finished" | "ran_now" | "failed" | "host"
                    | "slurm_job" | "threads" | "interrupted" | "wall_time_s" | "git_revision"));
            }
            json!({"report": format!("shards/{label}.json"), "summary": r})
        }).collect::<Vec<_>>(),
        "wall_time_s": t0.elapsed().as_secs_f64(),
    });
    crate::results::write_atomically(&dir.join("manifest.json"), &serde_json::to_string_pretty(&manifest)?)?;
    Ok(CollectOutcome { dir, cells: cells.len(), finished: rows.len(), missing })
}

/// The shard reports in `dir/shards/` (`K-of-N.json`), by label, sorted.
fn shard_reports(dir: &Path) -> Result<Vec<(String, Value)>> {
    let mut out = Vec::new();
    let shards = dir.join("shards");
    if let Ok(rd) = std::fs::read_dir(&shards) {
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let Some(label) = name.strip_suffix(".json").filter(|l| !l.starts_with('.')) else { continue };
            let text = std::fs::read_to_string(e.path()).with_context(|| format!("reading {}", e.path().display()))?;
            let v: Value =
                serde_json::from_str(&text).with_context(|| format!("{}: not a shard report", e.path().display()))?;
            out.push((label.to_string(), v));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

/// What [`train_models`] did: per model `{stage, dir, state}` (`trained`, `reused`, `failed`), and the
/// failures `(stage, error)`.
pub type TrainOutcome = (Vec<Value>, Vec<(String, String)>);

/// Trains every model the unfinished cells of the experiment in `file` need (`prescale sweep --train-only`: the
/// first job of a Slurm submission, so that shards find their models trained). Runs beside shards (each model
/// is trained under its own lock, so a shard that needs it waits for it and then reuses it).
///
/// # Errors
/// An invalid experiment, a results folder holding another experiment, a whole sweep writing it.
pub fn train_models(file: &Path, out_root: &Path, quiet: bool) -> Result<TrainOutcome> {
    let Experiment { config: cfg, cells, jobs } =
        load_experiment(file, out_root).map_err(|d| crate::scenario_io::diagnostics_error(&d))?;
    let dir = out_root.join(&cfg.name);
    let _locks = lock_part(out_root, &cfg.name, "train")?;
    open_results(&cfg, &dir)?;
    let todo = unfinished(&cells, &dir);
    let needed = jobs_of(cells.iter().zip(&todo).filter(|(_, t)| **t).map(|(c, _)| c));
    let (rows, failed) = train_needed(&jobs, &needed, quiet);
    Ok((rows, failed.into_iter().map(|(j, e)| (jobs[j].name.clone(), e)).collect()))
}

/// Whether each of `cells` is still to run: not finished, or finished but damaged (its completion record does
/// not verify) in the results folder `dir`. Reads only.
pub fn unfinished(cells: &[Cell], dir: &Path) -> Vec<bool> {
    let all: Vec<&Cell> = cells.iter().collect();
    let (finished, _) = verify_cells(dir, &all);
    cells.iter().map(|c| !finished.contains(c.id.as_str())).collect()
}

/// The training jobs the `cells` use (indices into [`Experiment::jobs`]).
pub(crate) fn jobs_of<'a>(cells: impl IntoIterator<Item = &'a Cell>) -> std::collections::BTreeSet<usize> {
    cells.into_iter().flat_map(|c| c.jobs.iter().copied()).collect()
}

/// A finished cell: its coordinates and its summary.
pub(crate) struct Row<'a> {
    pub(crate) cell: &'a Cell,
    pub(crate) summary: serde_json::Map<String, Value>,
    /// The run's time blocks (`summary.blocks`): per block, its figures by name.
    pub(crate) blocks: Vec<serde_json::Map<String, Value>>,
}

/// The rows of the cells in `ok` (verified or just written), in expansion order.
fn collect_rows<'a>(dir: &Path, cells: &'a [Cell], ok: &HashSet<&str>) -> Result<Vec<Row<'a>>> {
    let mut rows = Vec::new();
    for cell in cells.iter().filter(|c| ok.contains(c.id.as_str())) {
        let f = dir.join("runs").join(&cell.id).join("summary.json");
        let text = std::fs::read_to_string(&f).with_context(|| format!("reading {}", f.display()))?;
        let v: Value = serde_json::from_str(&text).with_context(|| format!("reading {}", f.display()))?;
        let mut flat = serde_json::Map::new();
        let mut blocks = Vec::new();
        if let Some(Value::Object(m)) = v.get("summary") {
            for (k, x) in m {
                match x {
                    // Time blocks are a list: the report reads them; runs.csv keeps one row per run.
                    Value::Array(items) if k == "blocks" => {
                        blocks = items.iter().filter_map(|b| b.as_object().cloned()).collect();
                    }
                    Value::Object(inner) => {
                        for (k2, y) in inner {
                            flat.insert(format!("{k}_{k2}"), y.clone());
                        }
                    }
                    other => {
                        flat.insert(k.clone(), other.clone());
                    }
                }
            }
        }
        rows.push(Row { cell, summary: flat, blocks });
    }
    Ok(rows)
}

fn runs_csv(cfg: &ExperimentConfig, rows: &[Row<'_>]) -> String {
    let keys: Vec<String> = rows.first().map(|r| r.summary.keys().cloned().collect()).unwrap_or_default();
    let mut header = vec!["cell_id".to_string(), "scenario_file".to_string()];
    header.extend(cfg.axes.iter().map(|a| a.path.clone()));
    header.extend(["controller".to_string(), "seed".to_string()]);
    header.extend(keys.iter().filter(|k| !matches!(k.as_str(), "seed" | "controller")).cloned());
    let lines = rows.iter().map(|r| {
        let mut line = vec![r.cell.id.clone(), r.cell.scenario_file.display().to_string()];
        line.extend(r.cell.axis_values.iter().map(|(_, v)| v.clone()));
        line.extend([r.cell.controller.clone(), r.cell.seed.to_string()]);
        line.extend(
            keys.iter()
                .filter(|k| !matches!(k.as_str(), "seed" | "controller"))
                .map(|k| cell_text(r.summary.get(k).unwrap_or(&Value::Null))),
        );
        line
    });
    prescale_sim::table::write_rows(&header, lines)
}
