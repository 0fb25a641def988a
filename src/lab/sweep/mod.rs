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

use anyhow::{Context, Result};
use rayon::prelude::*;
use serde_json::{Value, json};

mod cell;
pub mod group;
mod lock;
pub mod shard;
pub mod tables;

pub use cell::{FAIL_CELL_ENV, KILL_AT_CELL_ENV};
pub use group::{BATCH_GROUP_MAX, BatchTotals, GroupOutcome, batch_groups};
pub(crate) use lock::{host_name, lock_experiment};
pub use shard::{CollectOutcome, MAX_SHARDS, Shard, collect, shard_assignment, work_units};
pub use tables::{extension_problem, unfinished};
pub(crate) use tables::{jobs_of, open_results};

use crate::files::results::build_info;
use crate::lab::experiment::{Cell, Experiment, load_experiment};
use cell::{panic_text, run_cell, uses_model};
use lock::lock_part;
use tables::{collect_rows, runs_csv, temp_of, verify_cells};

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

/// [`crate::lab::stages::train_jobs`] for the `needed` jobs, through the gate to libtorch only when there is one.
fn train_needed(
    jobs: &[crate::lab::stages::Job],
    needed: &std::collections::BTreeSet<usize>,
    quiet: bool,
) -> (Vec<Value>, BTreeMap<usize, String>) {
    if needed.is_empty() {
        return (Vec::new(), BTreeMap::new());
    }
    (crate::neural::gate::require("training an experiment's models").train_jobs)(jobs, needed, quiet)
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
        load_experiment(file, &opts.out_root).map_err(|d| crate::files::scenario_io::diagnostics_error(&d))?;
    // Models to train or to run need libtorch: in `prescale` this re-runs the command line in `prescale-torch`
    // now, before anything is locked or written (see `torch_gate`).
    if !jobs.is_empty() || cells.iter().any(uses_model) {
        crate::neural::gate::require("an experiment with neural models");
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
    let items = work_items(&cells, &mine, &done, opts.batch_runs);
    let title = match opts.shard {
        None => cfg.name.clone(),
        Some(s) => format!("{} shard {s}", cfg.name),
    };
    let Ran { results, threads, interrupted, batched } = run_items(
        &items,
        &Work { dir: &dir, jobs: &jobs, failed_jobs: &failed_jobs, done: &done, todo: todo.len(), title: &title, opts },
    )?;
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
        crate::files::results::write_atomically(
            &shards.join(format!("{}.json", s.label())),
            &serde_json::to_string_pretty(&manifest)?,
        )?;
    } else {
        let rows = collect_rows(&dir, &cells, &ok)?;
        crate::files::results::write_atomically(&dir.join("runs.csv"), &runs_csv(&cfg, &rows))?;
        crate::files::results::write_atomically(&dir.join("report.md"), &crate::lab::report::report(&cfg, &rows))?;
        manifest["cells"] = json!(cells.len());
        manifest["finished"] = json!(rows.len());
        merge(&mut manifest, runs);
        crate::files::results::write_atomically(&dir.join("manifest.json"), &serde_json::to_string_pretty(&manifest)?)?;
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

/// A sweep's work items: single cells to do, or (with `batch_runs`) each batched group with a cell to do, whole.
fn work_items<'a>(
    cells: &'a [Cell],
    mine: &[&'a Cell],
    done: &dyn Fn(&Cell) -> bool,
    batch_runs: bool,
) -> Vec<Vec<&'a Cell>> {
    let group_of: HashMap<&str, usize> = if batch_runs {
        cells.iter().zip(batch_groups(cells)).filter_map(|(c, g)| g.map(|g| (c.id.as_str(), g))).collect()
    } else {
        HashMap::new()
    };
    let mut items: Vec<Vec<&Cell>> = Vec::new();
    let mut groups: BTreeMap<usize, Vec<&Cell>> = BTreeMap::new();
    for &cell in mine {
        match group_of.get(cell.id.as_str()) {
            Some(&g) => groups.entry(g).or_default().push(cell),
            None if !done(cell) => items.push(vec![cell]),
            None => {}
        }
    }
    items.extend(groups.into_values().filter(|g| g.iter().any(|c| !done(c))));
    items
}

/// What the work items need besides themselves.
struct Work<'a> {
    /// The experiment's results folder.
    dir: &'a Path,
    /// The training jobs, and those that failed with why.
    jobs: &'a [crate::lab::stages::Job],
    failed_jobs: &'a BTreeMap<usize, String>,
    /// Whether a cell was finished before this sweep.
    done: &'a (dyn Fn(&Cell) -> bool + Sync),
    /// Cells to run now, and the progress bar's title.
    todo: usize,
    title: &'a str,
    opts: &'a SweepOptions,
}

/// What running the work items gave.
struct Ran {
    /// Each cell run now, by id: `Ok`, or its error (a panic's message included).
    results: Vec<(String, Result<(), String>)>,
    /// Worker threads.
    threads: usize,
    /// Whether Ctrl-C stopped the sweep before every item started.
    interrupted: bool,
    /// The batched groups' totals.
    batched: BatchTotals,
}

/// Runs the work items on a rayon pool (`opts.threads`), each in `catch_unwind` so that a failing cell fails
/// alone; Ctrl-C stops starting items. A bar on a terminal, periodic plain lines otherwise.
fn run_items(items: &[Vec<&Cell>], w: &Work<'_>) -> Result<Ran> {
    // A bar on a terminal, periodic plain lines otherwise (a long sweep is never silent in a log).
    let bar = std::sync::Mutex::new(crate::lab::progress::Progress::new(w.opts.quiet, w.todo as u64, w.title, "runs"));
    let failed_now = AtomicUsize::new(0);
    let pool = rayon::ThreadPoolBuilder::new()
        .start_handler(|_| {
            if let Some(rt) = prescale_agents::neural::runtime::installed() {
                (rt.init_thread)();
            }
        })
        .num_threads(w.opts.threads.unwrap_or(0))
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
                        item.iter().flat_map(|c| c.jobs.iter()).find_map(|j| w.failed_jobs.get_key_value(j))
                    {
                        anyhow::bail!("its model (training stage '{}') did not train: {why}", w.jobs[*j].name);
                    }
                    if item.len() == 1 {
                        Ok(vec![run_cell(item[0], &w.dir.join("runs").join(&item[0].id))])
                    } else {
                        let g = (crate::neural::gate::require("a batched group of runs").run_group)(item, w.dir);
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
                    item.iter().zip(per_cell).filter(|(c, _)| !(w.done)(c)).map(|(c, r)| (c.id.clone(), r)).collect();
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
    Ok(Ran {
        results,
        threads,
        interrupted,
        batched: BatchTotals {
            groups: groups_run.load(Ordering::SeqCst),
            model_calls: model_calls.load(Ordering::SeqCst),
            forward_passes: forward_passes.load(Ordering::SeqCst),
        },
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
        load_experiment(file, out_root).map_err(|d| crate::files::scenario_io::diagnostics_error(&d))?;
    let dir = out_root.join(&cfg.name);
    let _locks = lock_part(out_root, &cfg.name, "train")?;
    open_results(&cfg, &dir)?;
    let todo = unfinished(&cells, &dir);
    let needed = jobs_of(cells.iter().zip(&todo).filter(|(_, t)| **t).map(|(c, _)| c));
    let (rows, failed) = train_needed(&jobs, &needed, quiet);
    Ok((rows, failed.into_iter().map(|(j, e)| (jobs[j].name.clone(), e)).collect()))
}
