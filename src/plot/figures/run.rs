//! A run's figure (demand, capacity, latency and cost over time) and the overlay of several controllers' runs.

use anyhow::{Result, anyhow};
use plotters::coord::Shift;
use plotters::prelude::*;

use crate::plot::data::*;

use super::chart::*;
pub(crate) fn draw_run<DB: DrawingBackend>(root: DrawingArea<DB, Shift>, t: &Table, slo: Option<f64>) -> Result<()> {
    let x: Vec<f64> = t.f64s("t_end_s")?.into_iter().map(|s| s / 3600.0).collect();
    let panels = root.split_evenly((4, 1));
    panel(
        &panels[0],
        "Capacity",
        "CPU cores",
        "time (h)",
        &x,
        &[
            ("demand", t.f64s("demand_cpu_cores")?),
            ("ready", t.f64s("ready_cpu_cores")?),
            ("allocated", t.f64s("allocated_cpu_cores")?),
        ],
        None,
    )?;
    panel(
        &panels[1],
        "Latency",
        "p99 latency (s)",
        "time (h)",
        &x,
        &[("p99", t.f64s("latency_p99_s")?)],
        slo.map(|s| ("SLO", s)),
    )?;
    panel(&panels[2], "Cost so far", "USD", "time (h)", &x, &[("cost", t.f64s("cost_usd")?)], None)?;
    panel(
        &panels[3],
        "Provisioning error",
        "CPU cores",
        "time (h)",
        &x,
        &[
            ("over-provisioning", t.f64s("over_provisioning_cores")?),
            ("under-provisioning", t.f64s("under_provisioning_cores")?),
        ],
        None,
    )?;
    Ok(())
}

/// The controllers of one scenario and seed over the same window: demand against each controller's ready
/// capacity (solid) and allocated capacity (faint), p99 latency with the SLO line (values above 10× the SLO
/// drawn at the top edge), cost so far. `window_h`: the hours shown.
pub(crate) fn draw_overlay<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    title: &str,
    runs: &Overlay,
    slo: Option<f64>,
    window_h: (f64, f64),
    colours: &Colours,
) -> Result<()> {
    let e = |e: DrawingAreaErrorKind<DB::ErrorType>| anyhow!("{e:?}");
    let root = root.titled(title, (FONT, 22)).map_err(e)?;
    let panels = root.split_evenly((3, 1));
    let (w0, w1) = window_h;
    // Each run's points inside the window, x in hours.
    let series = |t: &Table, col: &str| -> Result<Vec<(f64, f64)>> {
        let x = t.f64s("t_end_s")?;
        let y = t.f64s(col)?;
        Ok(x.iter()
            .zip(&y)
            .map(|(a, b)| (a / 3600.0, *b))
            .filter(|(h, v)| *h >= w0 && *h <= w1 && v.is_finite())
            .collect())
    };
    let chart = |area: &DrawingArea<DB, Shift>, caption: &str, y_desc: &str, y1: f64| {
        let mut c = ChartBuilder::on(area)
            .caption(caption, (FONT, 18))
            .margin(8)
            .x_label_area_size(32)
            .y_label_area_size(70)
            .build_cartesian_2d(w0..w1, 0.0..y1)
            .map_err(e)?;
        c.configure_mesh()
            .x_desc("time (h)")
            .y_desc(y_desc)
            .label_style((FONT, 13))
            .axis_desc_style((FONT, 14))
            .draw()
            .map_err(e)?;
        Ok::<_, anyhow::Error>(c)
    };
    // Capacity.
    let mut top: f64 = 0.0;
    for (_, t) in runs {
        for col in ["demand_cpu_cores", "ready_cpu_cores", "allocated_cpu_cores"] {
            top = top.max(series(t, col)?.iter().map(|p| p.1).fold(0.0, f64::max));
        }
    }
    let mut c = chart(&panels[0], "Demand and capacity", "CPU cores", top * 1.08 + 1e-9)?;
    if let Some((_, t)) = runs.first() {
        c.draw_series(LineSeries::new(series(t, "demand_cpu_cores")?, BLACK.stroke_width(2)))
            .map_err(e)?
            .label("demand")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], BLACK.stroke_width(2)));
    }
    for (name, t) in runs {
        let colour = colours.of(name);
        c.draw_series(LineSeries::new(series(t, "allocated_cpu_cores")?, colour.mix(0.35).stroke_width(1)))
            .map_err(e)?;
        c.draw_series(LineSeries::new(series(t, "ready_cpu_cores")?, colour.stroke_width(2)))
            .map_err(e)?
            .label(format!("{name} (ready; faint: allocated)"))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], colour.stroke_width(2)));
    }
    legend(&mut c, SeriesLabelPosition::UpperRight, 12)?;
    // Latency, capped at 10x the SLO so that one overloaded controller does not flatten the others.
    let cap = slo.map_or(f64::INFINITY, |s| 10.0 * s);
    let mut top: f64 = slo.unwrap_or(0.0);
    for (_, t) in runs {
        top = top.max(series(t, "latency_p99_s")?.iter().map(|p| p.1.min(cap)).fold(0.0, f64::max));
    }
    let mut c = chart(&panels[1], "p99 latency (capped at 10x the SLO)", "seconds", top * 1.08 + 1e-9)?;
    for (name, t) in runs {
        let colour = colours.of(name);
        let pts: Vec<(f64, f64)> = series(t, "latency_p99_s")?.into_iter().map(|(x, y)| (x, y.min(cap))).collect();
        c.draw_series(LineSeries::new(pts, colour.stroke_width(2)))
            .map_err(e)?
            .label(name.as_str())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], colour.stroke_width(2)));
    }
    if let Some(s) = slo {
        c.draw_series(LineSeries::new(vec![(w0, s), (w1, s)], BLACK.stroke_width(1)))
            .map_err(e)?
            .label("SLO")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], BLACK));
    }
    legend(&mut c, SeriesLabelPosition::UpperRight, 12)?;
    // Cost so far, from the window's start.
    let mut curves = Vec::new();
    let mut top: f64 = 0.0;
    for (name, t) in runs {
        let pts = series(t, "cost_usd")?;
        let base = pts.first().map_or(0.0, |p| p.1);
        let pts: Vec<(f64, f64)> = pts.into_iter().map(|(x, y)| (x, y - base)).collect();
        top = top.max(pts.last().map_or(0.0, |p| p.1));
        curves.push((name, pts));
    }
    let mut c = chart(&panels[2], "Cost since the window's start", "USD", top * 1.08 + 1e-9)?;
    for (name, pts) in curves {
        let colour = colours.of(name);
        c.draw_series(LineSeries::new(pts, colour.stroke_width(2)))
            .map_err(e)?
            .label(name.as_str())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], colour.stroke_width(2)));
    }
    legend(&mut c, SeriesLabelPosition::UpperLeft, 12)?;
    Ok(())
}
