//! Expanding a valid experiment into cells: the cartesian product scenario × axis values × controller × seed
//! (in that nesting order), each axis value applied to the scenario's text and the result validated, each
//! controller checked in each scenario, each cell's models bound to the training stage that writes them, and
//! each cell given its stable id ([`cell_id`]).

use std::path::{Path, PathBuf};

use prescale_agents::ControllerConfig;
use prescale_sim::input::clip;
use prescale_sim::scenario::ControllerSpec as _;
use prescale_sim::validate::{Problem, Problems};

use super::config::{Axis, Cell, ExperimentConfig, Origin};
use crate::files::ron_paths::{line_of, set_path};
use crate::files::scenario_io::{Diagnostic, Loaded, load_scenario_text, read_text};
use crate::lab::stages::{Job, Planner, STAGE_PREFIX, Stage, trace_window};

fn safe(s: &str, max: usize) -> String {
    let t: String = s.chars().map(|c| if c.is_ascii_alphanumeric() || ".-".contains(c) { c } else { '_' }).collect();
    let t = t.trim_matches('_').replace("__", "_");
    t.chars().take(max).collect()
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

/// A cell's id: a readable prefix (scenario file stem, each axis field and value, controller, seed; each part
/// shortened to a folder-safe form) and the first 12 hex digits of the SHA-256 of its full coordinates
/// (scenario file as the experiment names it, every axis path and value verbatim, controller, seed, and the
/// folders — content hashes — of the trained models the controller uses), so that cells differing anywhere,
/// even past the shortened parts, get different ids, and a retrained model never answers for the old one.
pub fn cell_id(
    scenario: &str,
    axis_values: &[(String, String)],
    controller: &str,
    seed: u64,
    models: &[String],
) -> String {
    let stem = Path::new(scenario).file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let mut parts = vec![safe(&stem, 40)];
    for (p, v) in axis_values {
        parts.push(format!("{}={}", safe(p.rsplit('.').next().unwrap_or(p), 24), safe(v, 24)));
    }
    parts.push(safe(controller, 40));
    parts.push(format!("seed{seed}"));
    let mut coordinates = format!("scenario\u{0}{scenario}\u{0}");
    for (p, v) in axis_values {
        coordinates.push_str(&format!("axis\u{0}{p}\u{0}{v}\u{0}"));
    }
    coordinates.push_str(&format!("controller\u{0}{controller}\u{0}seed\u{0}{seed}"));
    for m in models {
        coordinates.push_str(&format!("\u{0}model\u{0}{m}"));
    }
    let digest = &crate::files::results::sha256_hex(coordinates.as_bytes())[..12];
    let mut id = parts.join("__");
    // Folder names stay within 255 bytes whatever the number of axes.
    id.truncate(200);
    format!("{id}__{digest}")
}

/// The cells of a valid experiment read from `file` (`exp_lines`: the line of each of its fields, for
/// messages; see the module docs for order and ids).
///
/// # Errors
/// Every problem: an unreadable or repeated scenario file, an axis path that names no field, a value that
/// makes the scenario invalid, a controller that is invalid in a scenario (placed at the controller's own
/// line), or two cells with one id (naming both).
///
/// Why one function: one walk over scenario × axis values × controller × seed, in the order that fixes the cells'
/// indices and ids; every level adds to the same problems, models and cells, which a split would pass around.
pub fn expand(
    file: &Path,
    exp_lines: &std::collections::HashMap<String, usize>,
    cfg: &ExperimentConfig,
    origin: &[Origin],
    models_root: &Path,
) -> Result<(Vec<Cell>, Vec<Job>), Vec<Diagnostic>> {
    let dir = file.parent().unwrap_or(Path::new("."));
    let exp_diag = |path: String, message: String| Diagnostic {
        file: file.to_path_buf(),
        line: line_of(exp_lines, &path),
        path: Some(path),
        message,
    };
    let mut problems = Vec::new();
    let mut cells = Vec::new();
    // Problems of the experiment's controllers: (controller index, path, message) → the scenario and axis
    // values where each arose, so that a controller wrong everywhere is reported once.
    let mut controller_problems: Vec<((usize, String, String), Vec<String>)> = Vec::new();
    let mut combos_checked = 0usize;
    let mut seen_files: Vec<(PathBuf, usize)> = Vec::new();
    let mut planner = Planner::default();
    // Stage problems (training scenarios, overlaps with scored periods) are reported once each.
    let mut stage_problems: Vec<Problem> = Vec::new();
    for (si, rel) in cfg.scenarios.iter().enumerate() {
        let sfile = dir.join(rel);
        let base = match read_text(&sfile) {
            Ok(t) => t,
            Err(d) => {
                let why = d.first().map(|d| d.message.clone()).unwrap_or_default();
                problems.push(exp_diag(format!("scenarios[{si}]"), format!("{}: {why}", sfile.display())));
                continue;
            }
        };
        let canonical = sfile.canonicalize().unwrap_or_else(|_| sfile.clone());
        if let Some((_, first)) = seen_files.iter().find(|(f, _)| *f == canonical) {
            problems.push(exp_diag(
                format!("scenarios[{si}]"),
                format!("'{rel}' is the file of scenarios[{first}] again ('{}')", cfg.scenarios[*first]),
            ));
            continue;
        }
        seen_files.push((canonical, si));
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
            let where_ = values.iter().map(|(p, v)| format!("{p} = {}", clip(v, 60))).collect::<Vec<_>>().join(", ");
            if ok {
                let controllers: Vec<(String, Option<&ControllerConfig>)> = if cfg.controllers.is_empty() {
                    vec![("scenario".into(), None)]
                } else {
                    cfg.controllers.iter().map(|c| (c.name.clone(), Some(&c.controller))).collect()
                };
                let mut loaded_base = load_scenario_text(&sfile, &text);
                if let Err(d) = &loaded_base {
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
                    combos_checked += 1;
                    // The trace seconds this combination scores, computed when a stage needs them.
                    let mut scored: Option<Option<(f64, f64)>> = None;
                    for (ci, (cname, c)) in controllers.iter().enumerate() {
                        let mut l = l.clone();
                        let mut jobs = Vec::new();
                        if let Some(c) = c {
                            // Model directories in the experiment's controllers are relative to the experiment;
                            // "@stage" names a model the experiment trains for this scenario and these values.
                            let mut c = (*c).clone();
                            let model_field =
                                if matches!(c, ControllerConfig::Bc(_)) { "model" } else { "predictor.model" };
                            let site = StageSite { exp_dir: dir, scenario: &sfile, axes: &values, models_root };
                            let (mut found, mut planned, mut missing_stage) = (Vec::new(), None, false);
                            match bind_stage(&mut c, &cfg.training, &mut planner, &site, l.config.step_s) {
                                StageModel::NotNamed => {}
                                StageModel::Unknown(message) => {
                                    missing_stage = true;
                                    found.push(Problem { path: model_field.into(), message });
                                }
                                StageModel::Unplanned(ps) => stage_problems.extend(ps),
                                StageModel::Bound { job, facts } => {
                                    jobs.push(job);
                                    planned = Some(facts);
                                    let scored = scored.get_or_insert_with(|| {
                                        l.prepare(l.config.seed)
                                            .ok()
                                            .and_then(|p| trace_window(&l, &p.demand, l.config.history_s))
                                    });
                                    stage_problems.extend(overlap_problem(&planner.jobs[job], *scored, &l, rel));
                                }
                            }
                            c.resolve_paths(dir);
                            // The controller in this scenario: its problems belong to the experiment's lines.
                            match &planned {
                                Some(facts) => {
                                    let mut p = Problems::new();
                                    c.check_with(
                                        &mut p,
                                        &l.config.cluster,
                                        l.config.step_s,
                                        l.config.horizon_s,
                                        Some(facts),
                                    );
                                    c.check_workload_with(&mut p, l.config.stated_demand(), Some(facts));
                                    found.extend(p.into_vec());
                                }
                                // A stage name that names no stage is reported above, not as a missing folder.
                                None => found.extend(
                                    l.config
                                        .controller_problems(&c)
                                        .into_iter()
                                        .filter(|p| !(missing_stage && p.path == model_field)),
                                ),
                            }
                            l.config.controller = c;
                            for Problem { path: rest, message } in found {
                                let key = (ci, origin[ci].problem_path(&rest), message);
                                let context =
                                    if where_.is_empty() { rel.clone() } else { format!("{rel} with {where_}") };
                                match controller_problems.iter_mut().find(|(k, _)| *k == key) {
                                    Some((_, at)) => at.push(context),
                                    None => controller_problems.push((key, vec![context])),
                                }
                            }
                        }
                        let folders: Vec<String> = jobs.iter().map(|&j| planner.jobs[j].folder()).collect();
                        let shared = std::sync::Arc::new(l.clone());
                        for &seed in &cfg.seeds {
                            cells.push(Cell {
                                id: cell_id(rel, &values, cname, seed, &folders),
                                index: cells.len(),
                                scenario_file: sfile.clone(),
                                axis_values: values.clone(),
                                controller: cname.clone(),
                                seed,
                                scenario: shared.clone(),
                                jobs: jobs.clone(),
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
    for ((_, path, message), at) in controller_problems {
        let message = if at.len() == combos_checked {
            message
        } else {
            let shown: Vec<&str> = at.iter().take(3).map(String::as_str).collect();
            let more = if at.len() > 3 { format!(" and {} more", at.len() - 3) } else { String::new() };
            format!("{message} (in {}{more})", shown.join("; "))
        };
        problems.push(exp_diag(path, message));
    }
    for p in stage_problems {
        let d = exp_diag(p.path, p.message);
        if !problems.contains(&d) {
            problems.push(d);
        }
    }
    // Ids are unique by construction (the digest covers every coordinate); a collision is still refused.
    let mut by_id: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    for (i, c) in cells.iter().enumerate() {
        if let Some(&j) = by_id.get(c.id.as_str()) {
            problems.push(exp_diag(
                "axes".into(),
                format!("cells {j} ({}) and {i} ({}) would share the id '{}'", describe(&cells[j]), describe(c), c.id),
            ));
        } else {
            by_id.insert(&c.id, i);
        }
    }
    let mut unique = Vec::new();
    for p in problems {
        if !unique.contains(&p) {
            unique.push(p);
        }
    }
    if unique.is_empty() { Ok((cells, planner.jobs)) } else { Err(unique) }
}

/// Where a run's `"@stage"` model is trained for: the experiment's folder (a stage's own `scenario` is
/// relative to it), the run's scenario file and axis values, and the models' root folder.
struct StageSite<'a> {
    exp_dir: &'a Path,
    scenario: &'a Path,
    axes: &'a [(String, String)],
    models_root: &'a Path,
}

/// What a controller's model reference is.
enum StageModel {
    /// A model directory (or no model): nothing to bind.
    NotNamed,
    /// `"@name"` names no stage (the message).
    Unknown(String),
    /// The stage's training could not be planned (its problems, paths below the experiment).
    Unplanned(Vec<Problem>),
    /// Bound to the job that trains it (its index in the planner) and what that model will be.
    Bound { job: usize, facts: prescale_agents::neural::facts::ModelFacts },
}

/// Binds `c`'s `"@stage"` model, if it names one, to the job that trains that stage for `site`: the model
/// path becomes the job's folder, and the stage's facts stand in for the card until it is trained.
fn bind_stage(
    c: &mut ControllerConfig,
    training: &[Stage],
    planner: &mut Planner,
    site: &StageSite<'_>,
    step_s: f64,
) -> StageModel {
    let Some(m) = c.model_mut() else { return StageModel::NotNamed };
    let Some(name) = m.strip_prefix(STAGE_PREFIX) else { return StageModel::NotNamed };
    let Some(si) = training.iter().position(|st| st.name == name) else {
        let known: Vec<&str> = training.iter().map(|t| t.name.as_str()).collect();
        return StageModel::Unknown(format!(
            "'{m}' names no training stage of this experiment (stages: {})",
            if known.is_empty() { "none".to_string() } else { known.join(", ") }
        ));
    };
    match planner.job(training, si, site.exp_dir, site.scenario, site.axes, site.models_root) {
        Ok(job) => {
            *m = planner.jobs[job].dir.display().to_string();
            StageModel::Bound { job, facts: training[si].facts(step_s) }
        }
        Err(ps) => StageModel::Unplanned(ps),
    }
}

/// A stage that would learn from the period a run scores (the same trace, overlapping trace seconds): the
/// comparison would reward memory, not prediction. `scored`: the run's scored trace seconds.
fn overlap_problem(job: &Job, scored: Option<(f64, f64)>, run: &Loaded, rel: &str) -> Option<Problem> {
    let (s0, s1) = scored?;
    let (trained, ran) = (job.loaded.trace.as_ref()?, run.trace.as_ref()?);
    if trained.times_s != ran.times_s || trained.columns != ran.columns {
        return None; // another trace: nothing of the scored period is learned from
    }
    let (t0, t1) = job.window?;
    let overlap = t1.min(s1) - t0.max(s0);
    let first = ran.report.first_timestamp_s;
    (overlap > 1e-6).then(|| Problem {
        path: format!("training[{}].slice", job.stage),
        message: format!(
            "learns from trace seconds {:.0}–{:.0} of {}, {overlap:.0} s of which the runs of {rel} score ({:.0}–{:.0}): \
             give the stage a slice that ends by the scored period's start (at most Fraction(from: 0.0, to: {:.4}))",
            t0 - first,
            t1 - first,
            job.scenario_file.display(),
            s0 - first,
            s1 - first,
            ((s0 - first) / ran.report.span_s * 1e4).floor() / 1e4
        ),
    })
}

/// A cell's coordinates in words, for messages.
fn describe(c: &Cell) -> String {
    let axes: Vec<String> = c.axis_values.iter().map(|(p, v)| format!("{p} = {}", clip(v, 40))).collect();
    format!(
        "{}{}, controller {}, seed {}",
        c.scenario_file.display(),
        if axes.is_empty() { String::new() } else { format!(" with {}", axes.join(", ")) },
        c.controller,
        c.seed
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_safe_folder_names() {
        assert_eq!(safe("Constant(s: 300)", 24), "Constant_s_300");
        assert_eq!(safe("provisioning_delay", 24), "provisioning_delay");
    }
}
