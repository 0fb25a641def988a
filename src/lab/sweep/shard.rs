//! Beyond one process: `--shard K/N` runs a fixed part of the cells ([`shard_assignment`], whole batched groups
//! together) and writes `shards/K-of-N.json`; [`collect`] then writes the tables from the finished cells with the
//! same functions as a whole sweep, so they are equal byte for byte.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use super::group::batch_groups;
use super::lock::lock_experiment;
use super::tables::{collect_rows, open_results, runs_csv, verify_cells};
use crate::files::results::build_info;
use crate::lab::experiment::{Cell, Experiment, load_experiment};

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
    pub(super) fn label(&self) -> String {
        format!("{}-of-{}", self.index, self.count)
    }
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
pub(super) fn unit_indices(cells: &[Cell], batched: bool) -> Vec<usize> {
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
        load_experiment(file, out_root).map_err(|d| crate::files::scenario_io::diagnostics_error(&d))?;
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
    crate::files::results::write_atomically(&dir.join("runs.csv"), &runs_csv(&cfg, &rows))?;
    crate::files::results::write_atomically(&dir.join("report.md"), &crate::lab::report::report(&cfg, &rows))?;
    let (version, revision) = build_info();
    let models: Vec<Value> = jobs
        .iter()
        .map(|j| {
            let present = prescale_agents::neural::card::is_trained(&j.dir);
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
    crate::files::results::write_atomically(&dir.join("manifest.json"), &serde_json::to_string_pretty(&manifest)?)?;
    Ok(CollectOutcome { dir, cells: cells.len(), finished: rows.len(), missing })
}

/// The shard reports in `dir/shards/` (`K-of-N.json`), by label, sorted.
pub(super) fn shard_reports(dir: &Path) -> Result<Vec<(String, Value)>> {
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
