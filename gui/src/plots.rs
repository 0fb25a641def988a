//! Linked time-series plots of one run and, when one is pinned, of a second drawn over it: demand vs
//! allocated vs READY capacity, p99 latency with the SLO line, cost so far, and the forecast's margin and
//! coverage for forecasting controllers. The x axes (hours) and the cursor are linked: zooming or panning one
//! moves them all, and hovering shows the values.

use eframe::egui::{self, Color32};
use egui_plot::{HLine, Legend, Line, LineStyle, Plot, PlotPoints};

use crate::runs::RunResult;

/// The colour of the current run's lines; the pinned run is drawn dashed in [`PINNED`].
const CURRENT: [Color32; 3] =
    [Color32::from_rgb(31, 119, 180), Color32::from_rgb(44, 160, 44), Color32::from_rgb(255, 127, 14)];
const PINNED: [Color32; 3] =
    [Color32::from_rgb(148, 103, 189), Color32::from_rgb(140, 86, 75), Color32::from_rgb(227, 119, 194)];

fn points(t_h: &[f64], ys: &[f64]) -> PlotPoints<'static> {
    t_h.iter().zip(ys).filter(|(_, y)| y.is_finite()).map(|(&t, &y)| [t, y]).collect::<Vec<_>>().into()
}

/// Draws the panels for `current` (and `pinned` over it), `height` points each.
pub fn time_series(ui: &mut egui::Ui, current: &RunResult, pinned: Option<&RunResult>, height: f32) {
    let group = egui::Id::unique("prescale-gui linked time axes");
    let runs: Vec<(&RunResult, &[Color32; 3], LineStyle, &str)> =
        std::iter::once((current, &CURRENT, LineStyle::Solid, ""))
            .chain(pinned.map(|p| (p, &PINNED, LineStyle::dashed_dense(), " (pinned)")))
            .collect();
    let panel = |ui: &mut egui::Ui, id: &str, y_label: &str, draw: &dyn Fn(&mut egui_plot::PlotUi<'_>)| {
        Plot::new(id)
            .height(height)
            .legend(Legend::default())
            .link_axis(group, [true, false])
            .link_cursor(group, [true, false])
            .x_axis_label("time (h)")
            .y_axis_label(y_label)
            .show(ui, |p| draw(p));
    };
    ui.label("Capacity (cores): demand, allocated, READY");
    panel(ui, "capacity", "cores", &|p| {
        for (r, c, style, tag) in &runs {
            let s = &r.series;
            p.line(Line::new(format!("demand{tag}"), points(&s.t_h, &s.demand_cores)).color(c[0]).style(*style));
            p.line(Line::new(format!("allocated{tag}"), points(&s.t_h, &s.allocated_cores)).color(c[1]).style(*style));
            p.line(Line::new(format!("READY{tag}"), points(&s.t_h, &s.ready_cores)).color(c[2]).style(*style));
        }
    });
    ui.label("p99 latency (s) and the SLO threshold");
    panel(ui, "latency", "seconds", &|p| {
        for (r, c, style, tag) in &runs {
            p.line(Line::new(format!("p99{tag}"), points(&r.series.t_h, &r.series.p99_s)).color(c[0]).style(*style));
        }
        if current.slo_threshold_s.is_finite() {
            p.hline(HLine::new("SLO", current.slo_threshold_s).color(Color32::RED));
        }
    });
    ui.label("Cost so far (USD)");
    panel(ui, "cost", "USD", &|p| {
        for (r, c, style, tag) in &runs {
            let s = &r.series;
            p.line(Line::new(format!("cost{tag}"), points(&s.t_h, &s.cost_so_far_usd)).color(c[0]).style(*style));
        }
    });
    if runs.iter().any(|(r, ..)| r.series.has_forecast()) {
        ui.label("Forecast margin (cores) and its coverage (×100 %)");
        panel(ui, "margin", "cores / %", &|p| {
            for (r, c, style, tag) in &runs {
                let s = &r.series;
                p.line(Line::new(format!("margin{tag}"), points(&s.t_h, &s.margin_cores)).color(c[1]).style(*style));
                let pct: Vec<f64> = s.coverage.iter().map(|x| x * 100.0).collect();
                p.line(Line::new(format!("coverage %{tag}"), points(&s.t_h, &pct)).color(c[2]).style(*style));
            }
        });
    }
}

/// The summary table: each figure of the current run, the pinned run's, and the difference (each cell names
/// its figure, so that a screen reader — and a test — reads it alone).
pub fn summary_table(ui: &mut egui::Ui, current: &RunResult, pinned: Option<&RunResult>) {
    egui::Grid::new("summary").striped(true).num_columns(3).show(ui, |ui| {
        ui.strong(&current.label);
        if let Some(p) = pinned {
            ui.strong(format!("pinned: {}", p.label));
            ui.strong("difference");
        }
        ui.end_row();
        let pinned_rows = pinned.map(|p| p.figures.rows());
        for (k, (name, v)) in current.figures.rows().into_iter().enumerate() {
            ui.label(format!("{name}: {}", fmt(v)));
            if let Some(rows) = &pinned_rows {
                let w = rows[k].1;
                ui.label(format!("pinned {name}: {}", fmt(w)));
                ui.label(format!("{name} difference: {}", signed(v - w)));
            }
            ui.end_row();
        }
    });
}

/// A figure as the tables show it: up to 3 decimals, no trailing zeros.
pub fn fmt(v: f64) -> String {
    if !v.is_finite() {
        return "–".into();
    }
    let s = format!("{v:.3}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" { "0".into() } else { s.to_string() }
}

fn signed(v: f64) -> String {
    if v > 0.0 { format!("+{}", fmt(v)) } else { fmt(v) }
}

#[cfg(test)]
mod tests {
    #[test]
    fn figures_read_as_written() {
        assert_eq!(super::fmt(9.0), "9");
        assert_eq!(super::fmt(11.6234), "11.623");
        assert_eq!(super::fmt(-0.0001), "0");
        assert_eq!(super::signed(2.5), "+2.5");
        assert_eq!(super::fmt(f64::NAN), "–");
    }
}
