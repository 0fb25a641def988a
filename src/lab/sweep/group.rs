//! Batched groups: the cells that use neural models (BC policies and neural predictors, across controllers,
//! axis values and seeds) form groups of at most [`BATCH_GROUP_MAX`] runs, each run as one work item on its own
//! threads, with one libtorch forward pass per model per round of calls (`run_group`, installed in the gate's
//! table by `prescale-torch`).

use std::collections::BTreeMap;
#[cfg(feature = "torch")]
use std::path::Path;
#[cfg(feature = "torch")]
use std::time::Instant;

use anyhow::Result;
#[cfg(feature = "torch")]
use serde_json::json;

use super::cell::uses_model;
#[cfg(feature = "torch")]
use super::cell::{cell_json, panic_text};
#[cfg(feature = "torch")]
use crate::files::results::write_run_to;
use crate::lab::experiment::Cell;

/// The most runs in one batched group (`--batch-runs`): each runs on its own thread, so this bounds a group's
/// threads and memory; batches of this size already amortise a forward pass's fixed cost.
pub const BATCH_GROUP_MAX: usize = 64;

/// Whether a cell can join a batched group: a controller or shadow with a neural model, and no model whose
/// weights change during the run (an online fine-tuning forecaster owns its model).
pub(super) fn batchable(cell: &Cell) -> bool {
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

/// Runs the cells of one batched group ([`batch_groups`]), each on its own thread as a plain run, with every
/// forward pass of their models going through one [`prescale_agents::neural::batch::Batcher`]: one pass per
/// model per round of calls (see that module). A cell's decisions are its own; only the forward passes are
/// batched, which changes their float rounding, so a cell's bits depend on its group — fixed by the experiment,
/// hence the same on any thread count and on a resumed sweep (an unfinished group is run whole again and only
/// its missing cells are written). Returns each cell's outcome, in order.
#[cfg(feature = "torch")]
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
                    let prepared = cell
                        .scenario
                        .prepare(cell.seed)
                        .map_err(|d| crate::files::scenario_io::diagnostics_error(&d))?;
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
