//! A sweep folder (`runs.csv`, `experiment.json`, `runs/<cell id>/`): the cost-vs-SLO Pareto with 95 %
//! confidence bars and the what-if curves per axis, computed by the same library functions as `prescale plot`
//! and `report.md` (means and CIs over seeds); clicking a point opens that group's first run.

use std::path::{Path, PathBuf};

use anyhow::Result;
use eframe::egui::{self, Color32};
use egui_plot::{Legend, Line, Plot, PlotPoints, Points};
use prescale::plot::data::{Points as Groups, SweepFolder, group_labels, sweep_points};

/// A sweep read from its folder.
pub struct SweepView {
    /// The folder.
    pub dir: PathBuf,
    /// The experiment's name.
    pub name: String,
    /// Per controller: (group label, (cost mean, CI), (SLO minutes mean, CI)).
    pub pareto: Groups,
    /// Per axis: its path, its values, and per controller (value, (SLO minutes mean, CI)) and (value, (cost mean,
    /// CI)).
    pub whatif: Vec<WhatIf>,
    /// Every run: (controller, group label, seed, cell id).
    pub cells: Vec<(String, String, String, String)>,
}

/// The what-if curves of one axis.
pub struct WhatIf {
    /// The axis's dotted path.
    pub axis: String,
    /// SLO minutes per controller and axis value.
    pub slo: Groups,
    /// Cost per controller and axis value.
    pub cost: Groups,
}

impl SweepView {
    /// Reads a sweep folder.
    ///
    /// # Errors
    /// A missing or damaged `runs.csv` or `experiment.json`, named.
    pub fn read(dir: &Path) -> Result<SweepView> {
        let SweepFolder { runs: t, experiment: exp, axes } = SweepFolder::read(dir)?;
        let pareto = sweep_points(&t, &axes, "cost_usd", "slo_violation_minutes")?;
        let mut whatif = Vec::new();
        for axis in &axes {
            let one = std::slice::from_ref(axis);
            whatif.push(WhatIf {
                axis: axis.clone(),
                slo: sweep_points(&t, one, "cost_usd", "slo_violation_minutes")?,
                cost: sweep_points(&t, one, "slo_violation_minutes", "cost_usd")?,
            });
        }
        let labels = group_labels(&t, &axes)?;
        let (ci, si, idi) = (t.col("controller")?, t.col("seed")?, t.col("cell_id")?);
        let cells =
            t.rows.iter().zip(labels).map(|((_, r), g)| (r[ci].clone(), g, r[si].clone(), r[idi].clone())).collect();
        Ok(SweepView { dir: dir.to_path_buf(), name: exp.name, pareto, whatif, cells })
    }

    /// The run folder of a group's first run (in `runs.csv` order).
    pub fn first_run(&self, controller: &str, group: &str) -> Option<PathBuf> {
        self.cells
            .iter()
            .find(|(c, g, ..)| c == controller && g == group)
            .map(|(.., id)| self.dir.join("runs").join(id))
    }

    /// Draws the view; returns the run folder of a clicked point.
    pub fn ui(&self, ui: &mut egui::Ui) -> Option<PathBuf> {
        let mut clicked = None;
        ui.heading(format!("Sweep {} ({} runs)", self.name, self.cells.len()))
            .on_hover_text(self.dir.display().to_string());
        egui::Grid::new("sweep table").striped(true).show(ui, |ui| {
            for h in ["controller", "group", "cost (USD), mean ± 95 % CI", "SLO-violation minutes, mean ± 95 % CI"] {
                ui.strong(h);
            }
            ui.end_row();
            for (c, groups) in &self.pareto {
                for (g, (cost, cost_hw), (slo, slo_hw)) in groups {
                    ui.label(c);
                    ui.label(g);
                    ui.label(format!("{c} {g} cost: {} ± {}", crate::plots::fmt(*cost), crate::plots::fmt(*cost_hw)));
                    ui.label(format!(
                        "{c} {g} SLO minutes: {} ± {}",
                        crate::plots::fmt(*slo),
                        crate::plots::fmt(*slo_hw)
                    ));
                    ui.end_row();
                }
            }
        });
        ui.label("Cost vs SLO-violation minutes (means over seeds, 95 % confidence bars); click a point to open its first run");
        let names: Vec<&String> = self.pareto.keys().collect();
        let r = Plot::new("pareto")
            .height(320.0)
            .legend(Legend::default())
            .x_axis_label("cost (USD)")
            .y_axis_label("SLO-violation minutes")
            .show(ui, |p| {
                for (k, (c, groups)) in self.pareto.iter().enumerate() {
                    let colour = palette(k);
                    let pts: Vec<[f64; 2]> = groups.iter().map(|(_, (x, _), (y, _))| [*x, *y]).collect();
                    p.points(Points::new(c.clone(), PlotPoints::from(pts)).radius(5.0).color(colour));
                    for (_, (x, xh), (y, yh)) in groups {
                        if xh.is_finite() && *xh > 0.0 {
                            p.line(
                                Line::new(c.clone(), PlotPoints::from(vec![[x - xh, *y], [x + xh, *y]])).color(colour),
                            );
                        }
                        if yh.is_finite() && *yh > 0.0 {
                            p.line(
                                Line::new(c.clone(), PlotPoints::from(vec![[*x, y - yh], [*x, y + yh]])).color(colour),
                            );
                        }
                    }
                }
                p.pointer_coordinate()
            });
        if r.response.clicked()
            && let Some(at) = r.inner
        {
            // The nearest point in screen terms.
            let tr = r.transform;
            let at = tr.position_from_point(&at);
            let mut best: Option<(f32, &str, &str)> = None;
            for (c, groups) in &self.pareto {
                for (g, (x, _), (y, _)) in groups {
                    let d = tr.position_from_point(&egui_plot::PlotPoint::new(*x, *y)).distance(at);
                    if best.is_none_or(|(b, ..)| d < b) {
                        best = Some((d, c, g));
                    }
                }
            }
            if let Some((d, c, g)) = best
                && d < 20.0
            {
                clicked = self.first_run(c, g);
            }
        }
        for w in &self.whatif {
            ui.label(format!("What-if: {} (SLO-violation minutes and cost against the axis values)", w.axis));
            // Numeric values on their own scale; others (e.g. `Constant(s: 60)`) at their positions 0, 1, ….
            let values: Vec<&String> = {
                let mut v: Vec<&String> = Vec::new();
                for gs in w.slo.values() {
                    for (g, ..) in gs {
                        if !v.contains(&g) {
                            v.push(g);
                        }
                    }
                }
                v
            };
            let numeric = values.iter().all(|v| v.parse::<f64>().is_ok());
            let x_of = |g: &String| -> Option<f64> {
                if numeric { g.parse().ok() } else { values.iter().position(|v| *v == g).map(|k| k as f64) }
            };
            if !numeric {
                let legend: Vec<String> = values.iter().enumerate().map(|(k, v)| format!("{k}: {v}")).collect();
                ui.weak(format!("x positions: {}", legend.join(" · ")));
            }
            ui.columns(2, |cols| {
                for (col, (groups, y, id)) in
                    cols.iter_mut().zip([(&w.slo, "SLO-violation minutes", "slo"), (&w.cost, "cost (USD)", "cost")])
                {
                    Plot::new(("whatif", &w.axis, id))
                        .height(220.0)
                        .legend(Legend::default())
                        .x_axis_label(w.axis.rsplit('.').next().unwrap_or(&w.axis).to_string())
                        .y_axis_label(y)
                        .show(col, |p| {
                            for (k, c) in names.iter().enumerate() {
                                let Some(gs) = groups.get(*c) else { continue };
                                let pts: Vec<[f64; 2]> =
                                    gs.iter().filter_map(|(g, _, (m, _))| x_of(g).map(|x| [x, *m])).collect();
                                p.line(Line::new((*c).clone(), PlotPoints::from(pts.clone())).color(palette(k)));
                                p.points(
                                    Points::new((*c).clone(), PlotPoints::from(pts)).radius(3.0).color(palette(k)),
                                );
                            }
                        });
                }
            });
        }
        clicked
    }
}

/// One colour per controller, in the sweep's order.
pub fn palette(k: usize) -> Color32 {
    const C: [Color32; 8] = [
        Color32::from_rgb(31, 119, 180),
        Color32::from_rgb(255, 127, 14),
        Color32::from_rgb(44, 160, 44),
        Color32::from_rgb(214, 39, 40),
        Color32::from_rgb(148, 103, 189),
        Color32::from_rgb(140, 86, 75),
        Color32::from_rgb(227, 119, 194),
        Color32::from_rgb(127, 127, 127),
    ];
    C[k % C.len()]
}
