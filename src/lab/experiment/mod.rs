//! Experiments: a set of runs, described as a base scenario (or several) and axes to vary, expanded into
//! concrete cells with stable ids.
//!
//! An experiment file (`Experiment(…)` in RON, in `experiments/`) names scenario files, axes — any scenario
//! field by dotted path, each with a list of values written as RON — an optional list of named controllers
//! that replace the scenarios' own, the seeds, and an optional baseline controller for paired comparisons.
//! [`load_experiment`] validates it and [`expand`]s it: the cartesian product scenario × axis values ×
//! controller × seed, in that nesting order, each cell with an id built from its coordinates: a readable
//! prefix and a digest of the full coordinates (`flash-crowd__provisioning_delay=Constant_s_300__hpa__seed3__
//! 9f1c2a7be034`, see [`cell_id`]), unique by construction and stable across runs and machines so that results
//! can be resumed and compared. Validation refuses what would run one thing twice under two names (a scenario
//! file listed twice, an axis value repeated up to spacing, a seed or controller name listed twice) and
//! checks the experiment's controllers in every scenario they will run in, at the controllers' own lines.
//!
//! An axis value is applied to the scenario's *text* (the value at the path is replaced, or the field is
//! inserted into its parent), and the result is parsed and validated like any scenario, so a wrong type, an
//! unknown field or an out-of-range value is reported with the axis and value that caused it, before any run.

mod config;
mod expand;

use std::path::Path;

use crate::files::ron_paths::value_lines;
use crate::files::scenario_io::{Diagnostic, parse_ron, place_problems, read_text};
use crate::lab::stages::check_stage;
use prescale_sim::input::{clip, name_problem};
use prescale_sim::validate::Problems;

pub use config::{Axis, Cell, Experiment, ExperimentConfig, Knob, MAX_CELLS, NamedController, Origin, expand_knobs};
pub use expand::{cell_id, expand};

/// Reads an experiment file, validates it and expands it into cells and the trainings they need (models
/// under `<out_root>/<name>/models/`).
///
/// # Errors
/// Every problem found (each with the experiment's file, line and path, or the scenario's), before any run.
pub fn load_experiment(file: &Path, out_root: &Path) -> Result<Experiment, Vec<Diagnostic>> {
    load_experiment_text(file, &read_text(file)?, out_root)
}

/// Like [`load_experiment`], from text (`file` names it and anchors its relative scenario paths).
///
/// # Errors
/// As [`load_experiment`].
pub fn load_experiment_text(file: &Path, text: &str, out_root: &Path) -> Result<Experiment, Vec<Diagnostic>> {
    let mut cfg: ExperimentConfig = parse_ron(file, text)?;
    let lines = value_lines(text);
    // Swept knobs become controllers of their own; messages still point at the file's entries.
    let (controllers, origin, knob_problems) = expand_knobs(&cfg);
    cfg.controllers = controllers;
    let mut p = Problems::new();
    for k in knob_problems {
        p.add(&k.path, k.message);
    }
    if let Some(m) = name_problem(&cfg.name) {
        p.add("name", m);
    }
    p.require("scenarios", !cfg.scenarios.is_empty(), || "must name at least one scenario file".into());
    p.require("seeds", !cfg.seeds.is_empty(), || "must list at least one seed".into());
    for (i, s) in cfg.seeds.iter().enumerate() {
        p.require(&format!("seeds[{i}]"), !cfg.seeds[..i].contains(s), || format!("seed {s} is listed twice"));
    }
    for (i, a) in cfg.axes.iter().enumerate() {
        p.under(&format!("axes[{i}]"), |p| {
            p.require("values", !a.values.is_empty(), || format!("axis '{}' has no values", a.path));
            p.require("path", !cfg.axes[..i].iter().any(|b| b.path == a.path), || {
                format!("'{}' is already an axis", a.path)
            });
            // Two spellings of one value would be two cells running the same thing.
            for (j, v) in a.values.iter().enumerate() {
                if let Some(k) = a.values[..j].iter().position(|w| squeeze(w) == squeeze(v)) {
                    p.add(
                        &format!("values[{j}]"),
                        format!("'{}' is values[{k}] again ('{}'), up to spacing", clip(v, 60), clip(&a.values[k], 60)),
                    );
                }
            }
        });
    }
    for (i, c) in cfg.controllers.iter().enumerate() {
        let field = origin[i].name_path();
        if let Some(m) = name_problem(&c.name) {
            p.add(&field, m);
        }
        p.require(&field, !cfg.controllers[..i].iter().any(|d| d.name == c.name), || {
            format!("'{}' is listed twice", c.name)
        });
    }
    let axis_paths: Vec<String> = cfg.axes.iter().map(|a| a.path.clone()).collect();
    for (i, st) in cfg.training.iter().enumerate() {
        p.under(&format!("training[{i}]"), |p| check_stage(p, st, &axis_paths));
        p.require(&format!("training[{i}].name"), !cfg.training[..i].iter().any(|t| t.name == st.name), || {
            format!("'{}' is listed twice", st.name)
        });
    }
    if let Some(b) = &cfg.baseline {
        p.require("baseline", cfg.controllers.iter().any(|c| &c.name == b), || {
            let known: Vec<&str> = cfg.controllers.iter().map(|c| c.name.as_str()).collect();
            format!("names no controller of this experiment; known: {}", known.join(", "))
        });
    }
    let combos: usize = cfg.axes.iter().map(|a| a.values.len().max(1)).product::<usize>()
        * cfg.scenarios.len()
        * cfg.controllers.len().max(1)
        * cfg.seeds.len();
    p.require("axes", combos <= MAX_CELLS, || format!("expands to {combos} runs, more than {MAX_CELLS}"));
    let mut problems = place_problems(file, &lines, p.into_vec());
    // Expand even when the above found problems, so that every bad path and value is named at once (axes
    // without values are left out of this check: they are already reported).
    let mut checkable = cfg.clone();
    checkable.axes.retain(|a| !a.values.is_empty());
    // A repeated controller name is already reported: its second entry would only add an id clash.
    let (mut kept, mut kept_origin) = (Vec::new(), Vec::new());
    for (c, o) in cfg.controllers.iter().zip(&origin) {
        if !kept.iter().any(|k: &NamedController| k.name == c.name) {
            kept.push(c.clone());
            kept_origin.push(o.clone());
        }
    }
    checkable.controllers = kept;
    // Absolute: a bound model path is later resolved like any model path in the experiment (relative to the
    // experiment's folder), and a relative `--out` is relative to where the command runs, not to that folder.
    let models_root = out_root.join(&cfg.name).join("models");
    let models_root = std::path::absolute(&models_root).unwrap_or(models_root);
    if combos <= MAX_CELLS {
        match expand(file, &lines, &checkable, &kept_origin, &models_root) {
            Ok((cells, jobs)) if problems.is_empty() => return Ok(Experiment { config: cfg, cells, jobs }),
            Ok(_) => {}
            Err(more) => problems.extend(more),
        }
    }
    Err(problems)
}

/// `text` without whitespace outside string literals: two spellings of one RON value compare equal.
fn squeeze(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let (mut in_string, mut escaped) = (false, false);
    for c in text.chars() {
        if in_string {
            out.push(c);
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => in_string = false,
                _ => {}
            }
        } else if c == '"' {
            in_string = true;
            out.push(c);
        } else if !c.is_whitespace() {
            out.push(c);
        }
    }
    out
}
