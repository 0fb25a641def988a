//! An experiment file's types: the experiment as written ([`ExperimentConfig`]: scenarios, axes, controllers
//! and their knobs, seeds, baseline, training stages), and what it expands into ([`Experiment`]: its
//! [`Cell`]s and training jobs).

use std::path::PathBuf;

use prescale_agents::ControllerConfig;
use serde::{Deserialize, Serialize};

use crate::files::scenario_io::Loaded;
use crate::lab::stages::{Job, Stage};
use prescale_sim::scenario::ControllerSpec as _;
use prescale_sim::validate::{Problem, Problems, join_path};

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
    /// The family it belongs to: one controller swept over its aggressiveness knob (`hpa-50`, `hpa-60`, …
    /// all `family: "hpa"`); the report compares families at equal cost (default: its own name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family: Option<String>,
    /// Sweep the family's aggressiveness knob: this entry becomes one controller per value, named
    /// `<name>-<value>`, all of family `<name>` (or `family`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub knob: Option<Knob>,
}

/// A knob swept by one declaration: `knob: (values: [0.4, 0.5, 0.6])` sets the controller's own knob
/// ([`ControllerConfig::knob`]: the HPA's target utilisation, the predictive allocator's, a BC policy's action
/// quantile, a static pool's count); `path` names another number below the controller (`variance.alpha`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Knob {
    /// The settings, one controller each.
    pub values: Vec<f64>,
    /// A dotted path below the controller's variant; default: the controller's own knob.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
}

/// Where an expanded controller came from: its entry in the file and, for a swept knob, the value's index.
#[derive(Clone, Debug, PartialEq)]
pub struct Origin {
    /// Index in the file's `controllers`.
    pub entry: usize,
    /// Index in that entry's `knob.values`, and the path it sets.
    pub knob_value: Option<(usize, String)>,
}

impl Origin {
    /// Where the expanded controller's name is decided: its entry's name, or the knob value that made it.
    pub(super) fn name_path(&self) -> String {
        match &self.knob_value {
            Some((j, _)) => format!("controllers[{}].knob.values[{j}]", self.entry),
            None => format!("controllers[{}].name", self.entry),
        }
    }

    /// Where a problem at `rest` (below the controller) of the expanded controller belongs: at the knob
    /// value when `rest` is the swept field, else in the entry's controller.
    pub(super) fn problem_path(&self, rest: &str) -> String {
        match &self.knob_value {
            Some((j, path)) if path == rest => {
                format!("controllers[{}].knob.values[{j}]", self.entry)
            }
            _ => join_path(&format!("controllers[{}].controller", self.entry), rest),
        }
    }
}

/// The controllers of `cfg` with every swept knob expanded (one controller per value, in the file's order),
/// each with its [`Origin`], and the problems of the knobs (paths below the experiment).
pub fn expand_knobs(cfg: &ExperimentConfig) -> (Vec<NamedController>, Vec<Origin>, Vec<Problem>) {
    let (mut out, mut origin, mut p) = (Vec::new(), Vec::new(), Problems::new());
    for (i, c) in cfg.controllers.iter().enumerate() {
        let Some(knob) = &c.knob else {
            out.push(c.clone());
            origin.push(Origin { entry: i, knob_value: None });
            continue;
        };
        p.under(&format!("controllers[{i}].knob"), |p| {
            let path = match (&knob.path, c.controller.knob()) {
                (Some(path), _) => path.clone(),
                (None, Some(k)) => k.to_string(),
                (None, None) => {
                    p.add(
                        "path",
                        format!("{} has no single aggressiveness knob: name the number to sweep", c.controller.name()),
                    );
                    return;
                }
            };
            p.require("values", !knob.values.is_empty(), || "must list at least one value".into());
            for (j, &v) in knob.values.iter().enumerate() {
                if knob.values[..j].contains(&v) {
                    p.add(&format!("values[{j}]"), format!("{v} is listed twice"));
                    continue;
                }
                match c.controller.with_setting(&path, v) {
                    Ok(controller) => {
                        out.push(NamedController {
                            name: format!("{}-{v}", c.name),
                            controller,
                            family: Some(c.family.clone().unwrap_or_else(|| c.name.clone())),
                            knob: None,
                        });
                        origin.push(Origin { entry: i, knob_value: Some((j, path.clone())) });
                    }
                    Err(m) => p.add(&format!("values[{j}]"), m),
                }
            }
        });
    }
    (out, origin, p.into_vec())
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
    /// Models trained before the runs, per scenario (and per value of the axes a stage names); controllers
    /// name them `"@<stage>"` (see [`crate::lab::stages`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub training: Vec<Stage>,
}

impl ExperimentConfig {
    /// The family of the controller named `controller`: its `family`, else its own name (a controller alone,
    /// or one the experiment does not list, is a family of one).
    pub fn family_of(&self, controller: &str) -> String {
        self.controllers
            .iter()
            .find(|n| n.name == controller)
            .and_then(|n| n.family.clone())
            .unwrap_or_else(|| controller.to_string())
    }
}

/// An experiment read and expanded: its config (swept knobs expanded), its runs and the trainings they need.
#[derive(Debug)]
pub struct Experiment {
    /// The config.
    pub config: ExperimentConfig,
    /// The runs, in expansion order.
    pub cells: Vec<Cell>,
    /// The trainings the runs need, each once (see [`crate::lab::stages`]).
    pub jobs: Vec<Job>,
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
    /// The scenario with the axis values and controller applied, validated, its trace loaded: one value shared
    /// by the seeds of a combination (an experiment of 10^5 cells holds one per combination, not per cell).
    pub scenario: std::sync::Arc<Loaded>,
    /// The training jobs whose models the controller uses (indices into [`Experiment::jobs`]).
    pub jobs: Vec<usize>,
}
