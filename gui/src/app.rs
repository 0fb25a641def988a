//! The workbench window: open (a scenario, a run folder, a sweep folder; recent files remembered), edit with
//! validation at every change, run in the background, watch, pin and compare, read a sweep.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use eframe::egui;
use serde::{Deserialize, Serialize};

use crate::doc::ScenarioDoc;
use crate::form::{FormState, Presets};
use crate::runs::{JobEnd, RunJob, RunResult};
use crate::sweep::SweepView;

/// What the workbench remembers between sessions (eframe persistence): no runtime handles, only paths and
/// choices.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Persisted {
    /// Files and folders opened, most recent first (at most [`RECENT`]).
    pub recent: Vec<PathBuf>,
    /// The seed runs use.
    pub seed: u64,
}

/// How many recent files are remembered.
pub const RECENT: usize = 10;

/// The scenario editor's two faces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EditView {
    /// The form generated from the scenario's structure.
    Form,
    /// The RON text.
    Source,
}

/// What the main area shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MainView {
    /// Runs of the scenario (or a run folder): summary and time series.
    Runs,
    /// A sweep folder.
    Sweep,
}

/// A screenshot to take and then close the window (`prescale-gui --screenshot FILE`): the CI's real-window check.
struct ScreenshotPlan {
    file: PathBuf,
    /// Frames drawn since there was nothing left to wait for.
    settled_frames: u32,
    requested: bool,
}

/// The workbench.
pub struct Workbench {
    /// What is remembered between sessions.
    pub persisted: Persisted,
    /// The path field.
    pub path_text: String,
    /// The open scenario.
    pub doc: Option<ScenarioDoc>,
    form: FormState,
    presets: Presets,
    /// The editor's face.
    pub edit_view: EditView,
    /// The main area's view.
    pub main_view: MainView,
    /// The run in progress.
    pub job: Option<RunJob>,
    /// The last finished (or opened) run.
    pub current: Option<RunResult>,
    /// The pinned run, drawn under the current one.
    pub pinned: Option<RunResult>,
    /// The open sweep.
    pub sweep: Option<SweepView>,
    /// The last message (what happened, or what went wrong).
    pub message: String,
    screenshot: Option<ScreenshotPlan>,
    /// The seed field's text.
    seed_text: String,
}

impl Workbench {
    /// A workbench with remembered state (eframe's storage, when there is one).
    pub fn new(cc: &eframe::CreationContext<'_>) -> Workbench {
        let persisted: Persisted = cc.storage.and_then(|s| eframe::get_value(s, eframe::APP_KEY)).unwrap_or_default();
        Workbench::with(persisted)
    }

    /// A workbench with the given remembered state.
    pub fn with(persisted: Persisted) -> Workbench {
        let seed = if persisted.seed == 0 { 1 } else { persisted.seed };
        Workbench {
            persisted: Persisted { seed, ..persisted },
            path_text: String::new(),
            doc: None,
            form: FormState::default(),
            presets: crate::doc::presets(),
            edit_view: EditView::Form,
            main_view: MainView::Runs,
            job: None,
            current: None,
            pinned: None,
            sweep: None,
            message: "Open a scenario, a run folder or a sweep folder, or pick a shipped scenario.".into(),
            screenshot: None,
            seed_text: seed.to_string(),
        }
    }

    /// Takes a screenshot into `file` once nothing is running, then closes the window.
    pub fn screenshot_then_close(&mut self, file: PathBuf) {
        self.screenshot = Some(ScreenshotPlan { file, settled_frames: 0, requested: false });
    }

    /// The seed runs use.
    pub fn seed(&self) -> u64 {
        self.persisted.seed
    }

    /// Whether a run is in progress.
    pub fn is_running(&self) -> bool {
        self.job.is_some()
    }

    /// Opens a scenario file, a run folder (`timeseries.csv`) or a sweep folder (`runs.csv`).
    pub fn open(&mut self, path: &Path) {
        let result = if path.join("runs.csv").is_file() {
            SweepView::read(path).map(|s| {
                self.message = format!("opened sweep {} ({} runs)", s.name, s.cells.len());
                self.sweep = Some(s);
                self.main_view = MainView::Sweep;
            })
        } else if path.join("timeseries.csv").is_file() {
            RunResult::read_folder(path).map(|r| {
                self.message = format!("opened run {}", r.label);
                self.current = Some(r);
                self.main_view = MainView::Runs;
            })
        } else if path.is_dir() {
            Err(anyhow::anyhow!(
                "{}: neither a run folder (timeseries.csv) nor a sweep folder (runs.csv)",
                path.display()
            ))
        } else {
            ScenarioDoc::open(path).map_err(|e| anyhow::anyhow!(e)).map(|d| {
                self.message = if d.diagnostics.is_empty() {
                    format!("opened {}", path.display())
                } else {
                    format!("opened {} with {} problem(s)", path.display(), d.diagnostics.len())
                };
                if d.tree.is_null() {
                    self.edit_view = EditView::Source;
                }
                self.doc = Some(d);
                self.form.reset();
                self.main_view = MainView::Runs;
            })
        };
        match result {
            Ok(()) => {
                self.path_text = path.display().to_string();
                self.remember(path);
            }
            Err(e) => self.message = format!("cannot open: {e:#}"),
        }
    }

    fn remember(&mut self, path: &Path) {
        let p = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
        self.persisted.recent.retain(|r| r != &p);
        self.persisted.recent.insert(0, p);
        self.persisted.recent.truncate(RECENT);
    }

    /// Starts running the open scenario (when it passes every check) in the background.
    pub fn start_run(&mut self, ctx: &egui::Context) {
        if self.job.is_some() {
            return;
        }
        let Some(loaded) = self.doc.as_ref().and_then(|d| d.loaded.clone()) else {
            self.message = "the scenario has problems: fix them before running".into();
            return;
        };
        let ctx = ctx.clone();
        let job = RunJob::start(loaded, self.seed(), move || ctx.request_repaint());
        self.message = format!("running {}", job.label);
        self.job = Some(job);
        self.main_view = MainView::Runs;
    }

    /// Pins the current run (it stays drawn while others run).
    pub fn pin(&mut self) {
        if let Some(c) = &self.current {
            self.pinned = Some(c.clone());
            self.message = format!("pinned {}", c.label);
        }
    }

    fn poll_job(&mut self) {
        let Some(job) = &mut self.job else { return };
        let Some(end) = job.poll() else { return };
        let label = job.label.clone();
        self.job = None;
        match end {
            JobEnd::Done(r) => {
                self.message = format!(
                    "finished {label}: {} SLO-violation minutes, {} USD",
                    crate::plots::fmt(r.figures.slo_violation_minutes),
                    crate::plots::fmt(r.figures.cost_usd)
                );
                self.current = Some(*r);
            }
            JobEnd::Cancelled => self.message = format!("cancelled {label}"),
            JobEnd::Failed(e) => self.message = format!("{label}: {e}"),
        }
    }

    /// Draws one frame.
    pub fn show(&mut self, ui: &mut egui::Ui) {
        self.poll_job();
        let ctx = ui.ctx().clone();
        egui::Panel::top("top").show(ui, |ui| self.top_bar(ui));
        if self.doc.is_some() {
            egui::Panel::left("editor").default_size(430.0).resizable(true).show(ui, |ui| self.editor(ui));
        }
        egui::CentralPanel::default().show(ui, |ui| {
            egui::ScrollArea::vertical().id_salt("main").show(ui, |ui| match self.main_view {
                MainView::Sweep => self.sweep_view(ui),
                MainView::Runs => self.runs_view(ui, &ctx),
            });
        });
        self.take_screenshot(&ctx);
    }

    fn top_bar(&mut self, ui: &mut egui::Ui) {
        ui.horizontal(|ui| {
            ui.heading("prescale workbench");
            let label = ui.label("path");
            let r = ui.add(egui::TextEdit::singleline(&mut self.path_text).desired_width(360.0)).labelled_by(label.id);
            let enter = r.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
            if ui.button("Open").clicked() || enter {
                let p = PathBuf::from(self.path_text.trim());
                self.open(&p);
            }
            ui.menu_button("Recent", |ui| {
                if self.persisted.recent.is_empty() {
                    ui.weak("nothing yet");
                }
                for p in self.persisted.recent.clone() {
                    if ui.button(p.display().to_string()).clicked() {
                        self.open(&p);
                        ui.close();
                    }
                }
            });
            ui.menu_button("Shipped scenarios", |ui| {
                for p in shipped_scenarios() {
                    let name = p.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
                    if ui.button(name).clicked() {
                        self.open(&p);
                        ui.close();
                    }
                }
            });
            if self.doc.is_some() {
                if ui.button("Save").clicked() {
                    self.save(None);
                }
                if ui.button("Save as path").on_hover_text("save the scenario to the path field's file").clicked() {
                    let p = PathBuf::from(self.path_text.trim());
                    self.save(Some(p));
                }
            }
            if self.sweep.is_some() || self.doc.is_some() || self.current.is_some() {
                ui.separator();
                ui.selectable_value(&mut self.main_view, MainView::Runs, "Runs");
                if self.sweep.is_some() {
                    ui.selectable_value(&mut self.main_view, MainView::Sweep, "Sweep");
                }
            }
        });
        ui.label(&self.message);
    }

    fn save(&mut self, to: Option<PathBuf>) {
        let Some(doc) = &mut self.doc else { return };
        let file = to.unwrap_or_else(|| doc.file.clone());
        match doc.save_as(&file) {
            Ok(()) => {
                self.message = format!("saved {}", file.display());
                self.remember(&file);
            }
            Err(e) => self.message = format!("not saved: {e:#}"),
        }
    }

    fn editor(&mut self, ui: &mut egui::Ui) {
        let Some(doc) = &mut self.doc else { return };
        ui.horizontal(|ui| {
            ui.strong(doc.file.display().to_string());
            if doc.dirty {
                ui.weak("(changed)");
            }
        });
        ui.horizontal(|ui| {
            ui.selectable_value(&mut self.edit_view, EditView::Form, "Form");
            ui.selectable_value(&mut self.edit_view, EditView::Source, "Source");
        });
        if doc.diagnostics.is_empty() {
            ui.colored_label(egui::Color32::from_rgb(0, 140, 60), "valid: every check passed");
        } else {
            ui.colored_label(ui.visuals().error_fg_color, format!("{} problem(s):", doc.diagnostics.len()));
            for d in &doc.diagnostics {
                let mut s = String::new();
                if let Some(l) = d.line {
                    s.push_str(&format!("line {l}: "));
                }
                if let Some(p) = &d.path {
                    s.push_str(&format!("{p}: "));
                }
                s.push_str(&d.message);
                ui.colored_label(ui.visuals().error_fg_color, s);
            }
        }
        ui.separator();
        egui::ScrollArea::vertical().id_salt("editor").show(ui, |ui| match self.edit_view {
            EditView::Form => {
                if doc.tree.is_null() {
                    ui.label("The text does not parse: edit it in the source view.");
                    return;
                }
                let problems = doc.field_problems();
                let mut tree = std::mem::take(&mut doc.tree);
                let changed =
                    crate::form::edit(ui, &mut self.form, &problems, &self.presets, "scenario", "", &mut tree);
                doc.tree = tree;
                if changed {
                    doc.tree_changed();
                }
            }
            EditView::Source => {
                let r = ui.add(
                    egui::TextEdit::multiline(&mut doc.source)
                        .code_editor()
                        .desired_width(f32::INFINITY)
                        .desired_rows(40),
                );
                if r.changed() {
                    doc.source_changed();
                    self.form.reset();
                }
            }
        });
    }

    fn runs_view(&mut self, ui: &mut egui::Ui, ctx: &egui::Context) {
        ui.horizontal(|ui| {
            let label = ui.label("seed");
            let r = ui.add(egui::TextEdit::singleline(&mut self.seed_text).desired_width(60.0)).labelled_by(label.id);
            if r.changed()
                && let Ok(s) = self.seed_text.trim().parse::<u64>()
            {
                self.persisted.seed = s;
            }
            let can_run = self.job.is_none() && self.doc.as_ref().is_some_and(|d| d.loaded.is_some());
            if ui.add_enabled(can_run, egui::Button::new("Run")).clicked() {
                self.start_run(ctx);
            }
            if let Some(job) = &self.job {
                ui.add(egui::ProgressBar::new(job.progress() as f32).desired_width(200.0).show_percentage());
                if ui.button("Cancel").clicked() {
                    job.cancel();
                }
            }
            if ui.add_enabled(self.current.is_some(), egui::Button::new("Pin this run")).clicked() {
                self.pin();
            }
            if ui.add_enabled(self.pinned.is_some(), egui::Button::new("Unpin")).clicked() {
                self.pinned = None;
            }
        });
        let Some(current) = &self.current else {
            ui.label("No run yet: open a scenario and press Run, or open a run folder.");
            return;
        };
        ui.separator();
        crate::plots::summary_table(ui, current, self.pinned.as_ref());
        ui.separator();
        crate::plots::time_series(ui, current, self.pinned.as_ref(), 170.0);
    }

    fn sweep_view(&mut self, ui: &mut egui::Ui) {
        let Some(sweep) = &self.sweep else {
            ui.label("No sweep open.");
            return;
        };
        if let Some(run) = sweep.ui(ui) {
            self.open(&run);
        }
    }

    fn take_screenshot(&mut self, ctx: &egui::Context) {
        let busy = self.job.is_some();
        let Some(plan) = &mut self.screenshot else { return };
        if busy || plan.requested {
            ctx.request_repaint();
            return;
        }
        plan.settled_frames += 1;
        if plan.settled_frames < 3 {
            ctx.request_repaint();
            return;
        }
        plan.requested = true;
        let file = plan.file.clone();
        let closer = ctx.clone();
        ctx.send_viewport_cmd(egui::ViewportCommand::Screenshot(egui::ScreenshotCallback::new(
            move |image: Arc<egui::ColorImage>| {
                match crate::write_png(&file, &image) {
                    Ok(()) => {
                        eprintln!("prescale-gui: screenshot {} ({}x{})", file.display(), image.width(), image.height())
                    }
                    Err(e) => eprintln!("prescale-gui: screenshot not written: {e:#}"),
                }
                closer.send_viewport_cmd(egui::ViewportCommand::Close);
                closer.request_repaint();
            },
        )));
    }
}

impl eframe::App for Workbench {
    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        self.show(ui);
    }

    fn save(&mut self, storage: &mut dyn eframe::Storage) {
        eframe::set_value(storage, eframe::APP_KEY, &self.persisted);
    }
}

/// The shipped scenarios (`scenarios/*.ron` next to the executable's repository, or under the working
/// directory), sorted.
pub fn shipped_scenarios() -> Vec<PathBuf> {
    let dirs = [PathBuf::from("scenarios"), Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios")];
    let Some(dir) = dirs.iter().find(|d| d.is_dir()) else { return Vec::new() };
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.extension().is_some_and(|e| e == "ron")).collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}
