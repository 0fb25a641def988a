//! One cell's run: prepared from its scenario and seed, run, and written into `runs/<cell id>/` atomically; the
//! failure-injection switches the reliability tests use.

use std::path::Path;
use std::time::Instant;

use anyhow::Result;
use serde_json::{Value, json};

use crate::files::results::write_run_to;
use crate::lab::experiment::Cell;

/// Environment variable naming a cell id that fails on purpose (to test failure isolation).
pub const FAIL_CELL_ENV: &str = "PRESCALE_FAIL_CELL";

/// Environment variable naming a cell id at whose start the sweep process kills itself with SIGKILL — as a
/// node failure, the OOM killer or `scancel --signal=KILL` would — to test that a killed shard leaves its
/// finished cells whole and that a rerun completes the experiment.
pub const KILL_AT_CELL_ENV: &str = "PRESCALE_KILL_AT_CELL";

pub(super) fn cell_json(cell: &Cell) -> Value {
    json!({
        "id": cell.id,
        "index": cell.index,
        "controller": cell.controller,
        "axes": cell.axis_values.iter().map(|(p, v)| json!({"path": p, "value": v})).collect::<Vec<_>>(),
        "scenario_file": cell.scenario_file.display().to_string(),
    })
}

/// The message of a caught panic.
pub(super) fn panic_text(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<String>()
        .cloned()
        .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "panicked".into())
}

pub(super) fn run_cell(cell: &Cell, dest: &Path) -> Result<()> {
    if std::env::var(FAIL_CELL_ENV).is_ok_and(|id| id == cell.id) {
        panic!("failure injected by {FAIL_CELL_ENV} for cell {}", cell.id);
    }
    if std::env::var(KILL_AT_CELL_ENV).is_ok_and(|id| id == cell.id) {
        // SAFETY: sending a signal to this process.
        unsafe { libc::kill(libc::getpid(), libc::SIGKILL) };
    }
    let prepared = cell.scenario.prepare(cell.seed).map_err(|d| crate::files::scenario_io::diagnostics_error(&d))?;
    let t0 = Instant::now();
    let out = prescale_sim::scenario::run(&prepared, cell.seed, &mut |_| {});
    write_run_to(dest, &prepared, &out, cell.seed, t0.elapsed().as_secs_f64(), cell_json(cell))
}

/// Whether a cell's controller (or its shadow) runs a neural model.
pub(super) fn uses_model(cell: &Cell) -> bool {
    let c = &cell.scenario.config;
    c.controller.model().is_some() || c.shadow.as_ref().is_some_and(|s| s.model().is_some())
}
