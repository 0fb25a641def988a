//! Experiments: a set of runs, described as a base scenario (or several) and axes to vary, expanded into
//! concrete cells with stable ids.
//!
//! An experiment file (`Experiment(…)` in RON, in `experiments/`) names scenario files, axes — any scenario
//! field by dotted path, each with a list of values written as RON — an optional list of named controllers
//! that replace the scenarios' own, the seeds, and an optional baseline controller for paired comparisons.
//! [`load_experiment`] validates it and [`expand`]s it: the cartesian product scenario × axis values ×
//! controller × seed, in that nesting order, each cell with an id built from its coordinates
//! (`flash-crowd__delay=Constant(s_300)__hpa__seed3`), stable across runs and machines so that results can
//! be resumed and compared.
//!
//! An axis value is applied to the scenario's *text* (the value at the path is replaced, or the field is
//! inserted into its parent), and the result is parsed and validated like any scenario, so a wrong type, an
//! unknown field or an out-of-range value is reported with the axis and value that caused it, before any run.

use std::path::{Path, PathBuf};

use prescale_agents::ControllerConfig;
use serde::{Deserialize, Serialize};

use crate::ron_paths::{Span, line_of, value_lines, value_spans};
use crate::scenario_io::{Diagnostic, Loaded, load_scenario_text, parse_ron, read_text};
use prescale_sim::scenario::ControllerSpec;

/// One axis: a scenario field by dotted path and the values it takes (RON text each).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Axis {
    /// Dotted path, as `prescale validate` prints them (`cluster.instance_types[0].provisioning_delay`).
    pub path: String,
    /// Values, as RON (`"Constant(s: 300)"`, `"0.5"`).
    pub values: Vec<String>,
}

/// A controller with the name it has in results and comparisons.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NamedController {
    /// Short name (letters, digits, `.`, `_`, `-`).
    pub name: String,
    /// The controller.
    pub controller: ControllerConfig,
}

/// An experiment file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename = "Experiment")]
pub struct ExperimentConfig {
    /// Name (results go to `results/<name>/`).
    pub name: String,
    /// What it asks.
    #[serde(default)]
    pub description: String,
    /// Scenario files, relative to the experiment file.
    pub scenarios: Vec<String>,
    /// Axes to vary.
    #[serde(default)]
    pub axes: Vec<Axis>,
    /// Controllers replacing each scenario's own (empty: keep the scenario's).
    #[serde(default)]
    pub controllers: Vec<NamedController>,
    /// Seeds (each cell runs once per seed).
    pub seeds: Vec<u64>,
    /// The controller the others are compared with, pairwise on the same seeds.
    #[serde(default)]
    pub baseline: Option<String>,
}

/// Most cells an experiment may expand to.
pub const MAX_CELLS: usize = 100_000;

/// One concrete run.
#[derive(Clone, Debug)]
pub struct Cell {
    /// Stable id (also the results sub-folder).
    pub id: String,
    /// Position in the expansion.
    pub index: usize,
    /// Scenario file.
    pub scenario_file: PathBuf,
    /// `(axis path, value)` per axis.
    pub axis_values: Vec<(String, String)>,
    /// Controller name (`scenario` when the scenario's own is kept).
    pub controller: String,
    /// Run seed.
    pub seed: u64,
    /// The scenario with the axis values and controller applied, validated, its trace loaded.
    pub scenario: Loaded,
}

fn safe(s: &str, max: usize) -> String {
    let t: String = s.chars().map(|c| if c.is_ascii_alphanumeric() || ".-".contains(c) { c } else { '_' }).collect();
    let t = t.trim_matches('_').replace("__", "_");
    t.chars().take(max).collect()
}

/// Applies `value` (RON text) at `path` of the scenario text `src`: replaces the value there, or inserts the
/// field into its parent struct. `None` if neither the path nor its parent is in the text.
pub fn set_path(src: &str, path: &str, value: &str) -> Option<String> {
    let spans = value_spans(src);
    if let Some(Span { start, end, .. }) = spans.get(path) {
        return Some(format!("{}{value}{}", &src[..*start], &src[*end..]));
    }
    let (parent, field) = path.rsplit_once('.').unwrap_or(("", path));
    if field.contains('[') {
        return None; // a list element that does not exist
    }
    let close = spans.get(parent)?.close?;
    let before = src[..close].trim_end();
    let sep = if before.ends_with('(') || before.ends_with(',') { "" } else { ", " };
    Some(format!("{before}{sep}{field}: {value}, {}", &src[close..]))
}

/// Moves `combo` (one value index per axis) to the next combination, last axis fastest; `false` after the
/// last one.
fn advance(combo: &mut [usize], axes: &[Axis]) -> bool {
    for k in (0..combo.len()).rev() {
        combo[k] += 1;
        if combo[k] < axes[k].values.len() {
            return true;
        }
        combo[k] = 0;
    }
    false
}

fn is_name(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
}

/// Reads an experiment file, validates it and expands it into cells.
///
/// # Errors
/// Every problem found (each with the experiment's file, line and path, or the scenario's), before any run.
pub fn load_experiment(file: &Path) -> Result<(ExperimentConfig, Vec<Cell>), Vec<Diagnostic>> {
    let text = read_text(file)?;
    let cfg: ExperimentConfig = parse_ron(file, &text)?;
    let lines = value_lines(&text);
    let diag = |path: String, message: String| Diagnostic {
        file: file.to_path_buf(),
        line: line_of(&lines, &path),
        path: Some(path),
        message,
    };
    let mut problems = Vec::new();
    if !is_name(&cfg.name) {
        problems.push(diag("name".into(), format!("must be letters, digits, '.', '_' or '-', got '{}'", cfg.name)));
    }
    if cfg.scenarios.is_empty() {
        problems.push(diag("scenarios".into(), "must name at least one scenario file".into()));
    }
    if cfg.seeds.is_empty() {
        problems.push(diag("seeds".into(), "must list at least one seed".into()));
    }
    for (i, s) in cfg.seeds.iter().enumerate() {
        if cfg.seeds[..i].contains(s) {
            problems.push(diag(format!("seeds[{i}]"), format!("seed {s} is listed twice")));
        }
    }
    for (i, a) in cfg.axes.iter().enumerate() {
        if a.values.is_empty() {
            problems.push(diag(format!("axes[{i}].values"), format!("axis '{}' has no values", a.path)));
        }
        if cfg.axes[..i].iter().any(|b| b.path == a.path) {
            problems.push(diag(format!("axes[{i}].path"), format!("'{}' is already an axis", a.path)));
        }
    }
    for (i, c) in cfg.controllers.iter().enumerate() {
        if !is_name(&c.name) {
            problems.push(diag(
                format!("controllers[{i}].name"),
                format!("must be letters, digits, '.', '_' or '-', got '{}'", c.name),
            ));
        }
        if cfg.controllers[..i].iter().any(|d| d.name == c.name) {
            problems.push(diag(format!("controllers[{i}].name"), format!("'{}' is listed twice", c.name)));
        }
    }
    if let Some(b) = &cfg.baseline
        && !cfg.controllers.iter().any(|c| &c.name == b)
    {
        let known: Vec<&str> = cfg.controllers.iter().map(|c| c.name.as_str()).collect();
        problems.push(diag(
            "baseline".into(),
            format!("names no controller of this experiment; known: {}", known.join(", ")),
        ));
    }
    let combos: usize = cfg.axes.iter().map(|a| a.values.len().max(1)).product::<usize>()
        * cfg.scenarios.len()
        * cfg.controllers.len().max(1)
        * cfg.seeds.len();
    if combos > MAX_CELLS {
        problems.push(diag("axes".into(), format!("expands to {combos} runs, more than {MAX_CELLS}")));
    }
    // Expand even when the above found problems, so that every bad path and value is named at once (axes
    // without values are left out of this check: they are already reported).
    let mut checkable = cfg.clone();
    checkable.axes.retain(|a| !a.values.is_empty());
    if combos <= MAX_CELLS {
        match expand(file, &lines, &checkable) {
            Ok(cells) if problems.is_empty() => return Ok((cfg, cells)),
            Ok(_) => {}
            Err(more) => problems.extend(more),
        }
    }
    Err(problems)
}

/// The cells of a valid experiment read from `file` (`exp_lines`: the line of each of its fields, for
/// messages; see the module docs for order and ids).
pub fn expand(
    file: &Path,
    exp_lines: &std::collections::HashMap<String, usize>,
    cfg: &ExperimentConfig,
) -> Result<Vec<Cell>, Vec<Diagnostic>> {
    let dir = file.parent().unwrap_or(Path::new("."));
    let exp_diag = |path: String, message: String| Diagnostic {
        file: file.to_path_buf(),
        line: line_of(exp_lines, &path),
        path: Some(path),
        message,
    };
    let mut problems = Vec::new();
    let mut cells = Vec::new();
    for (si, rel) in cfg.scenarios.iter().enumerate() {
        let sfile = dir.join(rel);
        let Ok(base) = std::fs::read_to_string(&sfile) else {
            problems
                .push(exp_diag(format!("scenarios[{si}]"), format!("cannot read scenario file {}", sfile.display())));
            continue;
        };
        let stem = sfile.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        // Every combination of axis values, first axis slowest.
        let mut combo = vec![0usize; cfg.axes.len()];
        loop {
            let mut text = base.clone();
            let mut ok = true;
            let mut values = Vec::new();
            for (ai, (axis, &vi)) in cfg.axes.iter().zip(&combo).enumerate() {
                let v = &axis.values[vi];
                values.push((axis.path.clone(), v.clone()));
                match set_path(&text, &axis.path, v) {
                    Some(t) => text = t,
                    None => {
                        problems.push(exp_diag(
                            format!("axes[{ai}].path"),
                            format!(
                                "'{}' names no field of {} (paths as `prescale validate` prints them)",
                                axis.path,
                                sfile.display()
                            ),
                        ));
                        ok = false;
                        break;
                    }
                }
            }
            if ok {
                let controllers: Vec<(String, Option<&ControllerConfig>)> = if cfg.controllers.is_empty() {
                    vec![("scenario".into(), None)]
                } else {
                    cfg.controllers.iter().map(|c| (c.name.clone(), Some(&c.controller))).collect()
                };
                let mut loaded_base = load_scenario_text(&sfile, &text);
                if let Err(d) = &loaded_base {
                    let where_ = values.iter().map(|(p, v)| format!("{p} = {v}")).collect::<Vec<_>>().join(", ");
                    let path =
                        if cfg.axes.len() == 1 { format!("axes[0].values[{}]", combo[0]) } else { "axes".to_string() };
                    for dd in d {
                        // An inserted field the scenario does not know: the axis path is wrong, not its value.
                        if let Some(ai) = cfg.axes.iter().position(|a| {
                            let last = a.path.rsplit('.').next().unwrap_or(&a.path);
                            dd.message.contains(&format!("Unexpected field named `{last}`"))
                        }) {
                            problems.push(exp_diag(
                                format!("axes[{ai}].path"),
                                format!(
                                    "'{}' names no field of {}: {}",
                                    cfg.axes[ai].path,
                                    sfile.display(),
                                    dd.message
                                ),
                            ));
                            continue;
                        }
                        let field = dd.path.as_deref().map(|p| format!("{p}: ")).unwrap_or_default();
                        let message = if where_.is_empty() {
                            format!("{}: {field}{}", sfile.display(), dd.message)
                        } else {
                            format!("with {where_}: {field}{}", dd.message)
                        };
                        problems.push(exp_diag(path.clone(), message));
                    }
                }
                if let Ok(l) = &mut loaded_base {
                    for (cname, c) in &controllers {
                        let mut l = l.clone();
                        if let Some(c) = c {
                            // Model directories in the experiment's controllers are relative to the experiment.
                            let mut c = (*c).clone();
                            c.resolve_paths(dir);
                            l.config.controller = c;
                        }
                        for &seed in &cfg.seeds {
                            let axes_id: Vec<String> = values
                                .iter()
                                .map(|(p, v)| {
                                    format!("{}={}", safe(p.rsplit('.').next().unwrap_or(p), 24), safe(v, 24))
                                })
                                .collect();
                            let mut parts = vec![safe(&stem, 40)];
                            parts.extend(axes_id);
                            parts.push(safe(cname, 40));
                            parts.push(format!("seed{seed}"));
                            cells.push(Cell {
                                id: parts.join("__"),
                                index: cells.len(),
                                scenario_file: sfile.clone(),
                                axis_values: values.clone(),
                                controller: cname.clone(),
                                seed,
                                scenario: l.clone(),
                            });
                        }
                    }
                }
            }
            if !advance(&mut combo, &cfg.axes) {
                break;
            }
        }
    }
    problems.dedup();
    if problems.is_empty() { Ok(cells) } else { Err(problems) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_path_replaces_and_inserts() {
        let src = "Scenario(\n  name: \"x\",\n  cluster: (quota: (cpu_cores: 3), scaling_type: \"m\"),\n  slo: (latency_quantile: 0.99)\n)";
        let t = set_path(src, "cluster.quota.cpu_cores", "40").unwrap();
        assert!(t.contains("quota: (cpu_cores: 40)"), "{t}");
        let t = set_path(src, "slo.latency_threshold_s", "0.25").unwrap();
        assert!(t.contains("slo: (latency_quantile: 0.99, latency_threshold_s: 0.25, )"), "{t}");
        assert!(set_path(src, "nowhere.at_all", "1").is_none());
        assert!(set_path(src, "cluster.instance_types[3].name", "\"a\"").is_none());
    }

    #[test]
    fn ids_are_safe_folder_names() {
        assert_eq!(safe("Constant(s: 300)", 24), "Constant_s_300");
        assert_eq!(safe("provisioning_delay", 24), "provisioning_delay");
    }
}
