//! The sweep's tables and folder checks: `runs.csv` (one row per finished cell, in expansion order), the rows
//! the report reads, which cells are finished (verified) or damaged, and whether a results folder holds this
//! experiment or one it extends.

use std::collections::HashSet;
use std::path::Path;

use anyhow::{Context, Result, bail};
use serde_json::Value;

use crate::files::csv_rows::cell_text;
use crate::files::results::verify_complete;
use crate::lab::experiment::{Cell, ExperimentConfig};

/// A finished cell: its coordinates and its summary.
pub(crate) struct Row<'a> {
    pub(crate) cell: &'a Cell,
    pub(crate) summary: serde_json::Map<String, Value>,
    /// The run's time blocks (`summary.blocks`): per block, its figures by name.
    pub(crate) blocks: Vec<serde_json::Map<String, Value>>,
}

/// The rows of the cells in `ok` (verified or just written), in expansion order.
pub(super) fn collect_rows<'a>(dir: &Path, cells: &'a [Cell], ok: &HashSet<&str>) -> Result<Vec<Row<'a>>> {
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

pub(super) fn runs_csv(cfg: &ExperimentConfig, rows: &[Row<'_>]) -> String {
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
        crate::files::results::write_atomically(&stored, &exp_json)?;
    }
    std::fs::create_dir_all(dir.join("runs")).with_context(|| format!("creating {}", dir.display()))?;
    Ok(())
}

/// Which finished cells of `cells` are whole: `(finished ids, damaged (id, what is wrong))`, each finished
/// folder verified against its completion record.
pub(super) fn verify_cells<'a>(dir: &Path, cells: &[&'a Cell]) -> (HashSet<&'a str>, Vec<(String, String)>) {
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
pub(super) fn temp_of(file: &str) -> Option<&str> {
    let rest = file.strip_prefix(".tmp-")?;
    rest.rsplit_once('-').map(|(id, _)| id)
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
