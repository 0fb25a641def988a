//! The sweep's figures: the cost–SLO Pareto points, the families' frontiers, coverage, the what-if lines, bars
//! with confidence intervals, the latency CDF, and a training curve.

use std::collections::BTreeMap;

use anyhow::{Result, anyhow};
use plotters::coord::Shift;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;

use crate::plot::data::*;

use super::chart::*;
/// The frame every linear cost figure shares (pareto, frontiers, coverage): caption, margins, axes with their
/// descriptions, the mesh in the common style.
fn cost_chart<'a, DB: DrawingBackend>(
    root: &'a DrawingArea<DB, Shift>,
    caption: &str,
    x: std::ops::Range<f64>,
    y: std::ops::Range<f64>,
    y_desc: &str,
) -> Result<ChartContext<'a, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>> {
    let e = |e: DrawingAreaErrorKind<DB::ErrorType>| anyhow!("{e:?}");
    let mut chart = ChartBuilder::on(root)
        .caption(caption, (FONT, 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(x, y)
        .map_err(e)?;
    chart
        .configure_mesh()
        .x_desc("cost (USD)")
        .y_desc(y_desc)
        .label_style((FONT, 14))
        .axis_desc_style((FONT, 15))
        .draw()
        .map_err(e)?;
    Ok(chart)
}

pub(crate) fn draw_pareto<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    pts: &Points,
    colours: &Colours,
) -> Result<()> {
    let e = |e: DrawingAreaErrorKind<DB::ErrorType>| anyhow!("{e:?}");
    let all = pts.values().flatten();
    let (x0, x1) = tight(all.clone().flat_map(|(_, (m, h), _)| [m - h.max(0.0), m + h.max(0.0)]));
    let (y0, y1) = range(all.flat_map(|(_, _, (m, h))| [m - h.max(0.0), m + h.max(0.0)]));
    let mut chart = cost_chart(
        &root,
        "Cost vs SLO violations (mean, 95 % CI over seeds)",
        x0..x1,
        y0..y1 * 1.15,
        "SLO-violation minutes",
    )?;
    for (c, ps) in pts.iter() {
        let color = colours.of(c);
        let z = |h: f64| if h.is_finite() { h } else { 0.0 };
        chart
            .draw_series(ps.iter().map(|(_, (xm, _), (ym, yh))| {
                ErrorBar::new_vertical(*xm, ym - z(*yh), *ym, ym + z(*yh), color.filled(), 8)
            }))
            .map_err(e)?;
        chart
            .draw_series(ps.iter().map(|(_, (xm, xh), (ym, _))| {
                ErrorBar::new_horizontal(*ym, xm - z(*xh), *xm, xm + z(*xh), color.filled(), 8)
            }))
            .map_err(e)?;
        chart
            .draw_series(ps.iter().map(|(_, (xm, _), (ym, _))| Circle::new((*xm, *ym), 5, color.filled())))
            .map_err(e)?
            .label(c.as_str())
            .legend(move |(x, y)| Circle::new((x + 8, y), 5, color.filled()));
    }
    legend(&mut chart, SeriesLabelPosition::UpperLeft, 14)?;
    Ok(())
}

/// The cost–SLO frontier of each controller family (its members' means over seeds, nothing beaten on both
/// axes, joined by straight lines), members as points, one panel per group (scenario file and axis values):
/// what each family reaches at each cost where the traffic and the setting are the same.
pub(crate) fn draw_frontiers<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    groups: &[(String, Families)],
    colours: &Colours,
) -> Result<()> {
    let e = |e: DrawingAreaErrorKind<DB::ErrorType>| anyhow!("{e:?}");
    let cols = groups.len().clamp(1, 3);
    let rows = groups.len().div_ceil(cols).max(1);
    let root = if groups.len() > 1 {
        root.titled("Cost–SLO frontiers of the controller families (each member: mean over seeds)", (FONT, 22))
            .map_err(e)?
    } else {
        root
    };
    let panels = root.split_evenly((rows, cols));
    for ((label, families), area) in groups.iter().zip(&panels) {
        let all = families.iter().flat_map(|(_, m)| m.iter());
        let (x0, x1) = tight(all.clone().map(|(_, c, _)| *c));
        let (y0, y1) = range(all.map(|(_, _, s)| *s));
        let caption = if groups.len() > 1 {
            label.clone()
        } else {
            "Cost–SLO frontiers of the controller families (each member: mean over seeds)".to_string()
        };
        let mut chart = cost_chart(area, &caption, x0..x1, y0..y1 * 1.15, "SLO-violation minutes")?;
        for (family, members) in families {
            // The family's hue; its members are shades of it in the other figures.
            let color = colours.of_family(family);
            let points: Vec<(f64, f64)> = members.iter().map(|(_, c, s)| (*c, *s)).collect();
            let front = crate::lab::frontier::frontier(&points);
            chart
                .draw_series(LineSeries::new(front, color.stroke_width(2)))
                .map_err(e)?
                .label(family.as_str())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2)));
            chart.draw_series(points.iter().map(|&(x, y)| Circle::new((x, y), 4, color.filled()))).map_err(e)?;
        }
        legend(&mut chart, SeriesLabelPosition::UpperRight, 12)?;
    }
    Ok(())
}

pub(crate) fn draw_coverage<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    pts: &Points,
    colours: &Colours,
) -> Result<()> {
    let e = |e: DrawingAreaErrorKind<DB::ErrorType>| anyhow!("{e:?}");
    let all = pts.values().flatten();
    let (x0, x1) = tight(all.clone().map(|(_, (m, _), _)| *m));
    let (y0, y1) = tight(all.map(|(_, _, (m, _))| *m));
    let mut chart = cost_chart(
        &root,
        "Margin coverage vs cost (forecasting controllers)",
        x0..x1,
        y0.max(0.0)..y1.min(1.0).max(y0 + 1e-3),
        "coverage of forecast + margin",
    )?;
    for (c, ps) in pts.iter() {
        let color = colours.of(c);
        chart
            .draw_series(
                ps.iter()
                    .filter(|(_, _, (m, _))| m.is_finite())
                    .map(|(_, (xm, _), (ym, _))| Circle::new((*xm, *ym), 5, color.filled())),
            )
            .map_err(e)?
            .label(c.as_str())
            .legend(move |(x, y)| Circle::new((x + 8, y), 5, color.filled()));
    }
    legend(&mut chart, SeriesLabelPosition::MiddleLeft, 14)?;
    Ok(())
}

pub(crate) fn draw_whatif<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    axis: &str,
    values: &[String],
    slo: &Points,
    cost: &Points,
    colours: &Colours,
) -> Result<()> {
    let e = |e: DrawingAreaErrorKind<DB::ErrorType>| anyhow!("{e:?}");
    let halves = root.split_evenly((1, 2));
    for (k, (title, y_desc, pts)) in
        [("SLO violations", "SLO-violation minutes", slo), ("Cost", "cost (USD)", cost)].into_iter().enumerate()
    {
        let (y0, y1) =
            range(pts.values().flatten().flat_map(|(_, _, (m, h))| [*m, m + if h.is_finite() { *h } else { 0.0 }]));
        let n = values.len();
        let mut chart = ChartBuilder::on(&halves[k])
            .caption(format!("{title} vs {axis}"), (FONT, 16))
            .margin(10)
            .x_label_area_size(60)
            .y_label_area_size(70)
            // Headroom above the data for the legend.
            .build_cartesian_2d(-0.5f64..(n as f64 - 0.5), y0.max(0.0)..y1 * 1.35)
            .map_err(e)?;
        let labels = values.to_vec();
        chart
            .configure_mesh()
            .x_labels(n)
            .x_label_formatter(&|x| {
                let i = x.round();
                if (x - i).abs() < 1e-6 && i >= 0.0 && (i as usize) < labels.len() {
                    labels[i as usize].clone()
                } else {
                    String::new()
                }
            })
            .x_desc(axis)
            .y_desc(y_desc)
            .label_style((FONT, 12))
            .axis_desc_style((FONT, 13))
            .draw()
            .map_err(e)?;
        for (c, ps) in pts.iter() {
            let color = colours.of(c);
            let line: Vec<(f64, f64)> = ps.iter().enumerate().map(|(j, (_, _, (m, _)))| (j as f64, *m)).collect();
            chart
                .draw_series(LineSeries::new(line, color.stroke_width(2)))
                .map_err(e)?
                .label(c.as_str())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2)));
            chart
                .draw_series(ps.iter().enumerate().map(|(j, (_, _, (m, h)))| {
                    let h = if h.is_finite() { *h } else { 0.0 };
                    ErrorBar::new_vertical(j as f64, m - h, *m, m + h, color.filled(), 8)
                }))
                .map_err(e)?;
        }
        legend(&mut chart, SeriesLabelPosition::UpperRight, 12)?;
    }
    Ok(())
}

pub(crate) fn draw_bars<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    panels: &[(&str, Bars)],
    colours: &Colours,
) -> Result<()> {
    let e = |e: DrawingAreaErrorKind<DB::ErrorType>| anyhow!("{e:?}");
    let areas = root.split_evenly((1, panels.len()));
    for (area, (title, bars)) in areas.iter().zip(panels) {
        let n = bars.len();
        let (_, y1) = range(bars.iter().map(|(_, (m, h))| m + if h.is_finite() { *h } else { 0.0 }));
        let mut chart = ChartBuilder::on(area)
            .caption(*title, (FONT, 16))
            .margin(10)
            .x_label_area_size(40)
            .y_label_area_size(70)
            .build_cartesian_2d(-0.5f64..(n as f64 - 0.5), 0f64..y1)
            .map_err(e)?;
        let names: Vec<String> = bars.iter().map(|(c, _)| c.clone()).collect();
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(n)
            .x_label_formatter(&|x| {
                let i = x.round();
                if (x - i).abs() < 1e-6 && i >= 0.0 && (i as usize) < names.len() {
                    names[i as usize].clone()
                } else {
                    String::new()
                }
            })
            .y_desc("mean over runs (95 % CI)")
            .label_style((FONT, 12))
            .axis_desc_style((FONT, 13))
            .draw()
            .map_err(e)?;
        for (i, (c, (m, h))) in bars.iter().enumerate() {
            let color = colours.of(c);
            let x = i as f64;
            chart
                .draw_series(std::iter::once(Rectangle::new([(x - 0.3, 0.0), (x + 0.3, *m)], color.mix(0.8).filled())))
                .map_err(e)?;
            if h.is_finite() {
                chart
                    .draw_series(std::iter::once(ErrorBar::new_vertical(x, m - h, *m, m + h, BLACK.filled(), 10)))
                    .map_err(e)?;
            }
        }
    }
    Ok(())
}

/// Empirical CDFs, one line per named sample.
pub(crate) fn draw_cdf<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    title: &str,
    x_desc: &str,
    samples: &BTreeMap<String, Vec<f64>>,
    colours: &Colours,
) -> Result<()> {
    let e = |e: DrawingAreaErrorKind<DB::ErrorType>| anyhow!("{e:?}");
    let all: Vec<f64> = samples.values().flatten().copied().filter(|x| x.is_finite() && *x > 0.0).collect();
    let (lo, hi) = span(all.iter().copied());
    let (lo, hi) = (lo.max(1e-6), hi.max(lo * 10.0));
    let mut chart = ChartBuilder::on(&root)
        .caption(title, (FONT, 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d((lo..hi).log_scale(), 0f64..1.0)
        .map_err(e)?;
    chart
        .configure_mesh()
        .x_desc(x_desc)
        .y_desc("fraction of steps")
        .label_style((FONT, 14))
        .axis_desc_style((FONT, 15))
        .draw()
        .map_err(e)?;
    for (name, xs) in samples.iter() {
        let color = colours.of(name);
        let mut v: Vec<f64> = xs.iter().copied().filter(|x| x.is_finite() && *x > 0.0).collect();
        v.sort_by(f64::total_cmp);
        let n = v.len() as f64;
        let pts: Vec<(f64, f64)> = v.iter().enumerate().map(|(k, x)| (*x, (k + 1) as f64 / n)).collect();
        chart
            .draw_series(LineSeries::new(pts, color.stroke_width(2)))
            .map_err(e)?
            .label(name.as_str())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2)));
    }
    legend(&mut chart, SeriesLabelPosition::LowerRight, 14)?;
    Ok(())
}

pub(crate) fn draw_curve<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    t: &Table,
    dagger: Option<&Table>,
) -> Result<()> {
    let x = t.f64s("epoch")?;
    let lines = [("training", t.f64s("train_loss")?), ("validation", t.f64s("validation_loss")?)];
    let areas = if dagger.is_some() { root.split_evenly((1, 2)) } else { vec![root] };
    panel(
        &areas[0],
        "Training curve",
        "loss (normalised units; NLL may be < 0)",
        "epoch (counted across DAgger rounds)",
        &x,
        &lines,
        None,
    )?;
    if let (Some(d), Some(a)) = (dagger, areas.get(1)) {
        let r = d.f64s("round")?;
        panel(
            a,
            "DAgger: the learner acting alone",
            "SLO-violation minutes",
            "DAgger round",
            &r,
            &[
                ("validation period", d.f64s("validation_slo_violation_minutes")?),
                ("test period", d.f64s("test_slo_violation_minutes")?),
            ],
            None,
        )?;
    }
    Ok(())
}
