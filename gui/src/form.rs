//! A form generated from a scenario's structure: the scenario as a JSON tree (its serde form: structs are
//! objects, an enum's variant an object with one capitalised key or a string, `None` null), drawn field by
//! field. Nothing here knows a scenario's fields: a new field of the config appears in the form by itself.
//!
//! Paths are the library's dotted paths (`cluster.instance_types[0].provisioning_delay.median_s`: a variant's
//! name is not part of the path), so a problem the library reports is shown beside its field.

use std::collections::HashMap;

use eframe::egui;
use serde_json::Value;

/// One problem to show beside the field at `path`.
#[derive(Clone, Debug, PartialEq)]
pub struct FieldProblem {
    /// The dotted path of the field.
    pub path: String,
    /// What is wrong.
    pub message: String,
}

/// Where whole variants can be swapped for a preset: a path's last segment and the presets (label, value).
pub type Presets = Vec<(&'static str, Vec<(String, Value)>)>;

/// The form's state that is not the value itself: the text of number fields while they are typed (so that
/// "-" or "1e" can be typed on the way to a number), by path.
#[derive(Default)]
pub struct FormState {
    texts: HashMap<String, String>,
}

impl FormState {
    /// Forgets typed text (after the value was replaced from elsewhere).
    pub fn reset(&mut self) {
        self.texts.clear();
    }

    /// Forgets typed text at and under `path` (a value replaced by a preset).
    fn forget_under(&mut self, path: &str) {
        self.texts
            .retain(|p, _| !(p == path || p.starts_with(&format!("{path}.")) || p.starts_with(&format!("{path}["))));
    }
}

/// Draws `value` (at `path`, titled `name`) and returns whether the user changed it.
pub fn edit(
    ui: &mut egui::Ui,
    state: &mut FormState,
    problems: &[FieldProblem],
    presets: &Presets,
    name: &str,
    path: &str,
    value: &mut Value,
) -> bool {
    match value {
        Value::Object(map) if is_variant(map) => {
            let variant = map.keys().next().expect("one key").clone();
            let mut chosen = None;
            ui.horizontal(|ui| {
                ui.label(name).on_hover_text(path);
                ui.strong(&variant);
                chosen = preset_menu(ui, presets, name, path, &variant);
            });
            if let Some(v) = chosen {
                *value = v;
                state.forget_under(path);
                return true;
            }
            let Value::Object(map) = value else { unreachable!("a variant") };
            let inner = map.values_mut().next().expect("one key");
            show_problems(ui, problems, path);
            let mut changed = false;
            ui.indent(path, |ui| changed |= edit_children(ui, state, problems, presets, path, inner));
            changed
        }
        Value::Object(map) => {
            let mut changed = false;
            let id = ui.make_persistent_id(path);
            egui::collapsing_header::CollapsingState::load_with_default_open(ui.ctx(), id, depth(path) < 6)
                .show_header(ui, |ui| {
                    ui.label(name);
                })
                .body(|ui| {
                    show_problems(ui, problems, path);
                    for (k, v) in map.iter_mut() {
                        let p = join(path, k);
                        changed |= edit(ui, state, problems, presets, k, &p, v);
                    }
                });
            changed
        }
        Value::Array(items) => {
            let mut changed = false;
            let id = ui.make_persistent_id(path);
            egui::collapsing_header::CollapsingState::load_with_default_open(ui.ctx(), id, true)
                .show_header(ui, |ui| {
                    ui.label(format!("{name} ({} items)", items.len()));
                })
                .body(|ui| {
                    show_problems(ui, problems, path);
                    for (k, v) in items.iter_mut().enumerate() {
                        let p = format!("{path}[{k}]");
                        changed |= edit(ui, state, problems, presets, &format!("[{k}]"), &p, v);
                    }
                });
            changed
        }
        Value::Number(n) => {
            let text = state.texts.entry(path.to_string()).or_insert_with(|| n.to_string());
            let mut changed = false;
            ui.horizontal(|ui| {
                let label = ui.label(name).on_hover_text(path);
                let r = ui.add(egui::TextEdit::singleline(text).desired_width(140.0)).labelled_by(label.id);
                if r.changed()
                    && let Some(x) = parse_number(text)
                {
                    *value = x;
                    changed = true;
                }
                if parse_number(text).is_none() {
                    ui.colored_label(ui.visuals().error_fg_color, "expected a number");
                }
            });
            show_problems(ui, problems, path);
            changed
        }
        Value::String(s) => {
            let mut changed = false;
            let mut chosen = None;
            ui.horizontal(|ui| {
                let label = ui.label(name).on_hover_text(path);
                changed |= ui.add(egui::TextEdit::singleline(s).desired_width(260.0)).labelled_by(label.id).changed();
                let variant = s.clone();
                chosen = preset_menu(ui, presets, name, path, &variant);
            });
            if let Some(v) = chosen {
                *value = v;
                state.forget_under(path);
                return true;
            }
            show_problems(ui, problems, path);
            changed
        }
        Value::Bool(b) => {
            let changed = ui.checkbox(b, name).changed();
            show_problems(ui, problems, path);
            changed
        }
        Value::Null => {
            ui.horizontal(|ui| {
                ui.label(name).on_hover_text(path);
                ui.weak("none");
            });
            show_problems(ui, problems, path);
            false
        }
    }
}

fn edit_children(
    ui: &mut egui::Ui,
    state: &mut FormState,
    problems: &[FieldProblem],
    presets: &Presets,
    path: &str,
    inner: &mut Value,
) -> bool {
    match inner {
        Value::Object(fields) if !is_variant(fields) => {
            let mut changed = false;
            for (k, v) in fields.iter_mut() {
                let p = join(path, k);
                changed |= edit(ui, state, problems, presets, k, &p, v);
            }
            changed
        }
        Value::Array(items) => {
            let mut changed = false;
            for (k, v) in items.iter_mut().enumerate() {
                changed |= edit(ui, state, problems, presets, &format!("[{k}]"), &format!("{path}[{k}]"), v);
            }
            changed
        }
        other => edit(ui, state, problems, presets, "value", path, other),
    }
}

/// The preset menu of a value whose path has presets (`change controller`); the preset chosen, if one was.
fn preset_menu(ui: &mut egui::Ui, presets: &Presets, name: &str, path: &str, current: &str) -> Option<Value> {
    let (_, list) = presets.iter().find(|(k, _)| last_segment(path) == *k)?;
    let mut chosen = None;
    egui::ComboBox::new(("preset", path), format!("change {name}")).selected_text("presets").show_ui(ui, |ui| {
        for (label, v) in list {
            if ui.selectable_label(label == current, label).clicked() {
                chosen = Some(v.clone());
            }
        }
    });
    chosen
}

fn show_problems(ui: &mut egui::Ui, problems: &[FieldProblem], path: &str) {
    for p in problems.iter().filter(|p| p.path == path) {
        ui.colored_label(ui.visuals().error_fg_color, format!("problem: {}: {}", p.path, p.message));
    }
}

/// An enum variant in serde's external tagging: an object with one key that starts with a capital letter.
fn is_variant(map: &serde_json::Map<String, Value>) -> bool {
    map.len() == 1 && map.keys().next().is_some_and(|k| k.starts_with(|c: char| c.is_ascii_uppercase()))
}

fn parse_number(text: &str) -> Option<Value> {
    let t = text.trim();
    if let Ok(i) = t.parse::<i64>() {
        return Some(Value::from(i));
    }
    t.parse::<f64>().ok().filter(|x| x.is_finite()).and_then(serde_json::Number::from_f64).map(Value::Number)
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() { key.to_string() } else { format!("{path}.{key}") }
}

fn last_segment(path: &str) -> &str {
    path.rsplit('.').next().unwrap_or(path)
}

fn depth(path: &str) -> usize {
    if path.is_empty() { 0 } else { path.matches('.').count() + 1 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_variants() {
        assert_eq!(parse_number("-5"), Some(Value::from(-5)));
        assert_eq!(parse_number("1.5e2"), Some(serde_json::json!(150.0)));
        assert_eq!(parse_number("1e"), None);
        assert_eq!(parse_number("inf"), None);
        let v = serde_json::json!({"LogNormal": {"median_s": 110.0}});
        assert!(is_variant(v.as_object().unwrap()));
        assert!(!is_variant(serde_json::json!({"name": "x"}).as_object().unwrap()));
        assert_eq!(last_segment("cluster.instance_types[0].provisioning_delay"), "provisioning_delay");
        assert_eq!(depth("a.b"), 2);
    }
}
