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
//! With `batch_runs`, the seeds of each behavioural-cloning combination form one work item run in lockstep
//! (`run_group`): one batched libtorch forward pass per control tick for all of them.

use std::collections::{BTreeMap, HashSet};
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use rayon::prelude::*;
use serde_json::{Value, json};

use crate::experiment::{Cell, Experiment, ExperimentConfig, load_experiment};
use crate::results::{build_info, cell_text, verify_complete, write_run_to};

/// Options of a sweep.
#[derive(Clone, Debug)]
pub struct SweepOptions {
    /// Results root (the experiment's folder goes below it).
    pub out_root: PathBuf,
    /// Worker threads (`None`: all cores).
    pub threads: Option<usize>,
    /// No progress bar.
    pub quiet: bool,
    /// Run the seeds of each behavioural-cloning cell combination in lockstep, one batched forward pass per
    /// control tick (see `run_group`).
    pub batch_runs: bool,
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
}

/// Environment variable naming a cell id that fails on purpose (to test failure isolation).
pub const FAIL_CELL_ENV: &str = "PRESCALE_FAIL_CELL";
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

/// The model directory and act quantile of a cell that lockstep batching can run: a BC policy, fluid
/// fidelity, no shadow.
fn batchable(cell: &Cell) -> Option<(String, Option<f64>)> {
    let c = &cell.scenario.config;
    match &c.controller {
        prescale_agents::ControllerConfig::Bc(bc)
            if c.fidelity == prescale_sim::scenario::Fidelity::Fluid && c.shadow.is_none() =>
        {
            Some((bc.model.clone(), bc.act_quantile))
        }
        _ => None,
    }
}

/// Runs the cells of one group (the seeds of one BC combination) in lockstep under one model: one forward
/// pass per control tick for all of them. A cell's decisions are its own; only the policy's forward passes
/// are batched, which changes their float rounding (a batched matrix product sums in another order), so a
/// cell's bits depend on its group — which is fixed by the experiment (all seeds of its scenario, axis values
/// and controller), hence the same on any thread count and on a resumed sweep (an unfinished group is run
/// whole again and only its missing cells are written).
fn run_group(cells: &[&Cell], dir: &Path) -> Result<()> {
    use prescale_agents::neural::model::Model;
    use prescale_agents::neural::policy::{PolicyState, run_lockstep};
    let (model_dir, act_quantile) = batchable(cells[0]).expect("grouped as batchable");
    let model = Model::load(Path::new(&model_dir)).map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut prepared = Vec::new();
    let mut runs = Vec::new();
    for cell in cells {
        let p = cell.scenario.prepare(cell.seed).map_err(|d| crate::scenario_io::diagnostics_error(&d))?;
        let state = PolicyState::new(
            prescale_agents::neural::expert::PolicySetting::from_context(&p.init_context(cell.seed)),
            act_quantile,
        );
        runs.push((p.fluid_stepper(cell.seed), state));
        prepared.push(p);
    }
    let t0 = Instant::now();
    let (reports, _calls) = run_lockstep(&model, runs);
    let wall = t0.elapsed().as_secs_f64() / cells.len() as f64;
    let name = prescale_agents::neural::policy::bc_name(&model.card.name);
    for ((cell, p), report) in cells.iter().zip(&prepared).zip(reports) {
        let dest = dir.join("runs").join(&cell.id);
        if dest.exists() {
            continue;
        }
        let out = prescale_sim::scenario::fluid_output(p, cell.seed, name.clone(), report);
        let mut extra = cell_json(cell);
        extra["lockstep_group"] = json!(cells.len());
        write_run_to(&dest, p, &out, cell.seed, wall, extra)?;
    }
    Ok(())
}

fn run_cell(cell: &Cell, dest: &Path) -> Result<()> {
    if std::env::var(FAIL_CELL_ENV).is_ok_and(|id| id == cell.id) {
        panic!("failure injected by {FAIL_CELL_ENV} for cell {}", cell.id);
    }
    let prepared = cell.scenario.prepare(cell.seed).map_err(|d| crate::scenario_io::diagnostics_error(&d))?;
    let t0 = Instant::now();
    let out = prescale_sim::scenario::run(&prepared, cell.seed, &mut |_| {});
    write_run_to(dest, &prepared, &out, cell.seed, t0.elapsed().as_secs_f64(), cell_json(cell))
}

/// The exclusive lock of `<out_root>/<name>/`: a file `.<name>.lock` beside the folder, locked for as long as
/// the returned handle lives (the operating system releases it when the process ends, however it ends).
///
/// # Errors
/// Another sweep holds it (named by the process id and start time it wrote), or the file cannot be made.
fn lock_experiment(out_root: &Path, name: &str) -> Result<std::fs::File> {
    use std::io::{Read, Seek, Write};
    std::fs::create_dir_all(out_root).with_context(|| format!("creating {}", out_root.display()))?;
    let path = out_root.join(format!(".{name}.lock"));
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .with_context(|| format!("opening the lock file {}", path.display()))?;
    match f.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            let mut holder = String::new();
            let _ = f.read_to_string(&mut holder);
            let holder = holder.trim();
            bail!(
                "{} is being written by another sweep ({}); wait for it to finish or use another --out",
                out_root.join(name).display(),
                if holder.is_empty() { "holder unknown" } else { holder }
            );
        }
        Err(std::fs::TryLockError::Error(e)) => {
            return Err(e).with_context(|| format!("locking {}", path.display()));
        }
    }
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    f.set_len(0)?;
    f.rewind()?;
    write!(f, "process {} since {}", std::process::id(), crate::results::utc_stamp(now))?;
    f.flush()?;
    Ok(f)
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

/// Runs the experiment in `file`.
///
/// # Errors
/// An invalid experiment (every problem), or an output folder holding a different experiment — before any
/// run; I/O errors writing the tables.
pub fn sweep(file: &Path, opts: &SweepOptions) -> Result<SweepOutcome> {
    let t0 = Instant::now();
    let Experiment { config: cfg, cells, jobs } =
        load_experiment(file, &opts.out_root).map_err(|d| crate::scenario_io::diagnostics_error(&d))?;
    let dir = opts.out_root.join(&cfg.name);
    let _lock = lock_experiment(&opts.out_root, &cfg.name)?;
    let exp_json = serde_json::to_string_pretty(&cfg)?;
    let stored = dir.join("experiment.json");
    if stored.exists() {
        let old = std::fs::read_to_string(&stored).with_context(|| format!("reading {}", stored.display()))?;
        let why = match serde_json::from_str::<ExperimentConfig>(&old) {
            Ok(old) => extension_problem(&old, &cfg),
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
    } else if dir.exists() && std::fs::read_dir(&dir)?.next().is_some() {
        bail!("{} exists and holds no experiment.json: refusing to mix results", dir.display());
    }
    std::fs::create_dir_all(dir.join("runs")).with_context(|| format!("creating {}", dir.display()))?;
    crate::results::write_atomically(&stored, &exp_json)?;
    // Leftovers of an interrupted sweep: temporary folders are never results.
    for e in std::fs::read_dir(dir.join("runs"))?.flatten() {
        if e.file_name().to_string_lossy().starts_with(".tmp-") {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
    // Finished cells are verified against their completion records; a damaged one is named, removed and run
    // again, never counted as finished nor silently left out of the tables.
    let mut finished: HashSet<&str> = HashSet::new();
    let mut damaged: Vec<(String, String)> = Vec::new();
    for c in &cells {
        let d = dir.join("runs").join(&c.id);
        if d.exists() {
            match verify_complete(&d) {
                Ok(()) => {
                    finished.insert(&c.id);
                }
                Err(why) => {
                    std::fs::remove_dir_all(&d).with_context(|| format!("removing damaged {}", d.display()))?;
                    damaged.push((c.id.clone(), why));
                }
            }
        }
    }
    let done = |c: &Cell| finished.contains(c.id.as_str());
    let todo: Vec<&Cell> = cells.iter().filter(|c| !done(c)).collect();
    let skipped = cells.len() - todo.len();
    // Models first: each training the unfinished runs need, unless its folder already holds the model (the
    // folder is named by the content hash of what the training reads). A failed training fails its runs.
    let needed: std::collections::BTreeSet<usize> = todo.iter().flat_map(|c| c.jobs.iter().copied()).collect();
    let (model_rows, failed_jobs) = crate::stages::train_jobs(&jobs, &needed, opts.quiet);
    // Work items: single cells, or (with --batch-runs) every seed of a BC combination with a cell to do.
    let mut items: Vec<Vec<&Cell>> = Vec::new();
    let mut groups: BTreeMap<(String, String, String), Vec<&Cell>> = BTreeMap::new();
    for cell in &cells {
        if opts.batch_runs && batchable(cell).is_some() {
            let key =
                (cell.scenario_file.display().to_string(), format!("{:?}", cell.axis_values), cell.controller.clone());
            groups.entry(key).or_default().push(cell);
        } else if !done(cell) {
            items.push(vec![cell]);
        }
    }
    items.extend(groups.into_values().filter(|g| g.iter().any(|c| !done(c))));
    // A bar on a terminal, periodic plain lines otherwise (a long sweep is never silent in a log).
    let bar = std::sync::Mutex::new(crate::progress::Progress::new(opts.quiet, todo.len() as u64, &cfg.name, "runs"));
    let failed_now = AtomicUsize::new(0);
    let pool = rayon::ThreadPoolBuilder::new()
        .start_handler(|_| prescale_agents::neural::init_torch())
        .num_threads(opts.threads.unwrap_or(0))
        .build()?;
    let threads = pool.current_num_threads();
    let previous_sigint = install_sigint_handler();
    let interrupt_after: Option<usize> = std::env::var(INTERRUPT_AFTER_ENV).ok().and_then(|v| v.parse().ok());
    let finished_now = AtomicUsize::new(0);
    let results: Vec<(String, Result<(), String>)> = pool.install(|| {
        items
            .par_iter()
            .flat_map_iter(|item| {
                if INTERRUPTED.load(Ordering::SeqCst) {
                    return Vec::new();
                }
                let missing: Vec<&Cell> = item.iter().copied().filter(|c| !done(c)).collect();
                let r = std::panic::catch_unwind(AssertUnwindSafe(|| {
                    if let Some((j, why)) =
                        item.iter().flat_map(|c| c.jobs.iter()).find_map(|j| failed_jobs.get_key_value(j))
                    {
                        anyhow::bail!("its model (training stage '{}') did not train: {why}", jobs[*j].name);
                    }
                    if item.len() == 1 {
                        run_cell(item[0], &dir.join("runs").join(&item[0].id))
                    } else {
                        run_group(item, &dir)
                    }
                }));
                let r = match r {
                    Ok(Ok(())) => Ok(()),
                    Ok(Err(e)) => Err(format!("{e:#}")),
                    Err(p) => Err(p
                        .downcast_ref::<String>()
                        .cloned()
                        .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                        .unwrap_or_else(|| "panicked".into())),
                };
                let n = finished_now.fetch_add(missing.len(), Ordering::SeqCst) + missing.len();
                if r.is_err() {
                    failed_now.fetch_add(missing.len(), Ordering::SeqCst);
                }
                if let Ok(mut b) = bar.lock() {
                    b.update(n as u64, &format!("{} failed", failed_now.load(Ordering::SeqCst)));
                }
                if interrupt_after.is_some_and(|k| n >= k) {
                    // SAFETY: raising a signal in this process; the handler above is installed.
                    unsafe { libc::raise(libc::SIGINT) };
                }
                missing.into_iter().map(|c| (c.id.clone(), r.clone())).collect::<Vec<_>>()
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
    let rows = collect_rows(&dir, &cells, &ok)?;
    crate::results::write_atomically(&dir.join("runs.csv"), &runs_csv(&cfg, &rows))?;
    crate::results::write_atomically(&dir.join("report.md"), &crate::report::report(&cfg, &rows))?;
    let (version, revision) = build_info();
    let manifest = json!({
        "prescale_version": version,
        "git_revision": revision,
        "experiment": cfg.name,
        "seeds": cfg.seeds,
        "cells": cells.len(),
        "finished": rows.len(),
        "ran_now": ran,
        "skipped_finished": skipped,
        "damaged_rerun": damaged.iter().map(|(id, e)| json!({"id": id, "damage": e})).collect::<Vec<_>>(),
        "failed": failed.iter().map(|(id, e)| json!({"id": id, "error": e})).collect::<Vec<_>>(),
        "threads": threads,
        "models": model_rows,
        "interrupted": interrupted,
        "wall_time_s": t0.elapsed().as_secs_f64(),
    });
    crate::results::write_atomically(&dir.join("manifest.json"), &serde_json::to_string_pretty(&manifest)?)?;
    Ok(SweepOutcome { dir, ran, skipped, damaged, failed, interrupted, cells: cells.len(), finished: rows.len() })
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
