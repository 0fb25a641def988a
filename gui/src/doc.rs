//! The scenario being edited: its file, its form (the config as a JSON tree), its RON text, and what the
//! library says of it. Every change goes through the library's own reading and validation
//! ([`prescale::files::scenario_io::load_scenario_text`], then `prepare`, as `prescale validate` and `prescale run`
//! do), so the workbench accepts exactly what the CLI accepts.

use std::path::{Path, PathBuf};

use prescale::files::scenario_io::{Diagnostic, Loaded, ScenarioConfig};
use serde_json::Value;

use crate::form::FieldProblem;

/// A scenario open in the workbench.
pub struct ScenarioDoc {
    /// The file it was read from (relative paths in it, e.g. a trace, resolve against it), and saved to.
    pub file: PathBuf,
    /// The config as a tree, for the form (`Null` when the text does not parse).
    pub tree: Value,
    /// The RON text (the source view; what is saved).
    pub source: String,
    /// Every problem the library reports with the current text.
    pub diagnostics: Vec<Diagnostic>,
    /// The last version that passed every check (what a run uses), when the current one does.
    pub loaded: Option<Loaded>,
    /// Changed since opened or saved.
    pub dirty: bool,
}

impl ScenarioDoc {
    /// Opens a scenario file. A file that does not parse still opens (in the source view, with its problems).
    ///
    /// # Errors
    /// A file that cannot be read.
    pub fn open(file: &Path) -> Result<ScenarioDoc, String> {
        let text = prescale::files::scenario_io::read_text(file)
            .map_err(|d| d.iter().map(|d| d.to_string()).collect::<Vec<_>>().join("\n"))?;
        Ok(ScenarioDoc::from_text(file, text))
    }

    /// A scenario from text, as if read from `file`.
    pub fn from_text(file: &Path, text: String) -> ScenarioDoc {
        let mut doc = ScenarioDoc {
            file: file.to_path_buf(),
            tree: Value::Null,
            source: text,
            diagnostics: Vec::new(),
            loaded: None,
            dirty: false,
        };
        doc.source_changed();
        doc.dirty = false;
        doc
    }

    /// Re-reads the source text (after it was edited in the source view), and rebuilds the form from it.
    pub fn source_changed(&mut self) {
        self.dirty = true;
        match prescale::files::scenario_io::parse_ron::<ScenarioConfig>(&self.file, &self.source) {
            Ok(cfg) => self.tree = serde_json::to_value(&cfg).unwrap_or(Value::Null),
            Err(_) => self.tree = Value::Null,
        }
        self.check();
    }

    /// Takes the form's tree (after an edit in the form): rewrites the source from it and checks it.
    pub fn tree_changed(&mut self) {
        self.dirty = true;
        match serde_json::from_value::<ScenarioConfig>(self.tree.clone()) {
            Ok(cfg) => {
                self.source = to_ron(&cfg);
                self.check();
            }
            Err(e) => {
                self.loaded = None;
                self.diagnostics = vec![Diagnostic {
                    file: self.file.clone(),
                    line: None,
                    path: None,
                    message: format!("the form does not make a scenario: {e}"),
                }];
            }
        }
    }

    /// Runs the library's checks on the source text.
    fn check(&mut self) {
        match prescale::files::scenario_io::load_scenario_text(&self.file, &self.source) {
            Ok(loaded) => match loaded.prepare(loaded.config.seed) {
                Ok(_) => {
                    self.diagnostics.clear();
                    self.loaded = Some(loaded);
                }
                Err(d) => {
                    self.diagnostics = d;
                    self.loaded = None;
                }
            },
            Err(d) => {
                self.diagnostics = d;
                self.loaded = None;
            }
        }
    }

    /// The problems that name a field, for the form.
    pub fn field_problems(&self) -> Vec<FieldProblem> {
        self.diagnostics
            .iter()
            .filter_map(|d| d.path.as_ref().map(|p| FieldProblem { path: p.clone(), message: d.message.clone() }))
            .collect()
    }

    /// Saves the source text to `file` (atomically: a temporary file renamed over it).
    ///
    /// # Errors
    /// The write's error.
    pub fn save_as(&mut self, file: &Path) -> anyhow::Result<()> {
        prescale::files::results::write_atomically(file, &self.source)?;
        self.file = file.to_path_buf();
        self.dirty = false;
        Ok(())
    }
}

/// A scenario as RON, as the CLI writes a run's resolved `scenario.ron`.
pub fn to_ron(cfg: &ScenarioConfig) -> String {
    let pretty = ron::ser::PrettyConfig::default()
        .extensions(ron::extensions::Extensions::IMPLICIT_SOME | ron::extensions::Extensions::UNWRAP_VARIANT_NEWTYPES);
    ron::ser::to_string_pretty(cfg, pretty).unwrap_or_else(|e| format!("// cannot be written as RON: {e}"))
}

/// The presets the form offers where a whole variant is better replaced than edited: controllers (the ones
/// the shipped scenarios and experiments use, with their parameters) and provisioning-delay distributions.
pub fn presets() -> crate::form::Presets {
    let controllers: &[(&str, &str)] = &[
        ("ReferenceHpa", "ReferenceHpa(target_utilisation: 0.6, tolerance: 0.1, min_instances: 2, max_instances: 80)"),
        ("Hpa", "Hpa(target_utilisation: 0.6, min_replicas: 2, max_replicas: 80)"),
        (
            "Predictive: AR + conformal",
            "Predictive(predictor: Ar(p: 6, window_s: 3600, refit_every_s: 600), variance: AdaptiveConformal(alpha: 0.05, gamma: 0.01, window_s: 3600), allocator: (target_utilisation: 0.6))",
        ),
        (
            "Predictive: Holt-Winters + conformal",
            "Predictive(predictor: HoltWinters(period_s: 86400), variance: AdaptiveConformal(alpha: 0.05, gamma: 0.005, window_s: 86400), allocator: (target_utilisation: 0.6))",
        ),
        (
            "Predictive: oracle",
            "Predictive(predictor: Oracle, variance: Fixed(), allocator: (target_utilisation: 0.6))",
        ),
        ("HindsightExpert", "HindsightExpert"),
        ("Bc (model directory)", "Bc(model: \"results/demo/models/bc-flash-crowd\", act_quantile: Some(0.9))"),
    ];
    let delays: &[(&str, &str)] = &[
        ("Constant", "Constant(s: 120)"),
        ("Uniform", "Uniform(min_s: 60, max_s: 180)"),
        ("LogNormal", "LogNormal(median_s: 110, sigma: 0.2)"),
    ];
    let parse = |list: &[(&str, &str)], f: &dyn Fn(&str) -> Option<Value>| -> Vec<(String, Value)> {
        list.iter().filter_map(|(label, ron)| f(ron).map(|v| (label.to_string(), v))).collect()
    };
    vec![
        (
            "controller",
            parse(controllers, &|t| {
                prescale::files::scenario_io::ron_options()
                    .from_str::<prescale_agents::ControllerConfig>(t)
                    .ok()
                    .and_then(|c| serde_json::to_value(c).ok())
            }),
        ),
        (
            "provisioning_delay",
            parse(delays, &|t| {
                prescale::files::scenario_io::ron_options()
                    .from_str::<prescale_sim::cluster::Delay>(t)
                    .ok()
                    .and_then(|c| serde_json::to_value(c).ok())
            }),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shipped(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios").join(name)
    }

    /// Every shipped scenario goes through the form's tree and back to the same config.
    #[test]
    fn shipped_scenarios_round_trip_through_the_form() {
        for entry in std::fs::read_dir(shipped("")).expect("scenarios/") {
            let file = entry.expect("entry").path();
            if file.extension().is_none_or(|e| e != "ron") {
                continue;
            }
            let doc = ScenarioDoc::open(&file).expect("readable");
            assert!(doc.diagnostics.is_empty(), "{}: {:?}", file.display(), doc.diagnostics);
            let cfg: ScenarioConfig = serde_json::from_value(doc.tree.clone()).expect("the tree is a scenario");
            let again = ScenarioDoc::from_text(&file, to_ron(&cfg));
            assert!(again.diagnostics.is_empty(), "{}: {:?}", file.display(), again.diagnostics);
            assert_eq!(again.tree, doc.tree, "{}", file.display());
        }
    }

    /// Every preset parses (a renamed parameter would drop it from the menu silently otherwise).
    #[test]
    fn every_preset_parses() {
        let p = presets();
        assert_eq!(p[0].1.len(), 7);
        assert_eq!(p[1].1.len(), 3);
    }

    /// A form edit is checked by the library: the problem comes back with its dotted path.
    #[test]
    fn a_negative_delay_is_reported_at_its_path() {
        let mut doc = ScenarioDoc::open(&shipped("flash-crowd.ron")).expect("readable");
        doc.tree["cluster"]["instance_types"][0]["provisioning_delay"]["LogNormal"]["median_s"] = (-5.0).into();
        doc.tree_changed();
        let problems = doc.field_problems();
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(problems[0].path, "cluster.instance_types[0].provisioning_delay.median_s");
        assert!(doc.loaded.is_none());
    }
}
