//! The figures themselves (plotters): one chart scaffold per kind, the common legend style, and PNG + SVG
//! written side by side.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow};
use plotters::coord::Shift;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;

use super::data::*;

pub(super) const FONT: &str = "sans-serif";

pub(super) const PALETTE: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(255, 127, 14),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(23, 190, 207),
];

/// One colour per controller across every figure of a sweep (the Pareto front, the what-if lines, the bars,
/// the latency CDF, coverage, the overlays): the controllers in the experiment's order, the baseline first,
/// each keeping its colour whatever subset a figure shows. A family (a knob swept) shares one hue, its
/// members in shades from dark to light, so that a sweep of twenty settings stays readable.
pub(super) struct Colours {
    controllers: Vec<(String, RGBColor)>,
    families: Vec<(String, RGBColor)>,
}

impl Colours {
    /// From controller names in order of appearance (repeats ignored), `baseline` first, each in the family
    /// `family_of` names (a controller alone is its own family).
    pub(super) fn new(
        names: impl IntoIterator<Item = String>,
        baseline: Option<&str>,
        family_of: impl Fn(&str) -> String,
    ) -> Self {
        let mut order: Vec<String> = baseline.map(String::from).into_iter().collect();
        for n in names {
            if !order.contains(&n) {
                order.push(n);
            }
        }
        let mut families: Vec<(String, Vec<String>)> = Vec::new();
        for n in order {
            let f = family_of(&n);
            match families.iter_mut().find(|(g, _)| *g == f) {
                Some((_, m)) => m.push(n),
                None => families.push((f, vec![n])),
            }
        }
        let (mut controllers, mut hues) = (Vec::new(), Vec::new());
        for (i, (f, members)) in families.into_iter().enumerate() {
            let hue = PALETTE[i % PALETTE.len()];
            let k = members.len();
            for (j, m) in members.into_iter().enumerate() {
                // From 30 % darker to 45 % lighter across the family; a controller alone keeps the hue.
                let amount = if k == 1 { 0.0 } else { -0.3 + 0.75 * j as f64 / (k - 1) as f64 };
                controllers.push((m, shade(hue, amount)));
            }
            hues.push((f, hue));
        }
        Colours { controllers, families: hues }
    }

    /// The colour of `controller` (black for one the sweep does not hold).
    pub(super) fn of(&self, controller: &str) -> RGBColor {
        self.controllers.iter().find(|(c, _)| c == controller).map_or(BLACK, |(_, rgb)| *rgb)
    }

    /// The hue of `family` (black for one the sweep does not hold).
    pub(super) fn of_family(&self, family: &str) -> RGBColor {
        self.families.iter().find(|(f, _)| f == family).map_or(BLACK, |(_, rgb)| *rgb)
    }
}

/// `c` mixed with black (`t < 0`) or white (`t > 0`) by `|t|`.
fn shade(c: RGBColor, t: f64) -> RGBColor {
    let target = if t < 0.0 { 0.0 } else { 255.0 };
    let mix = |x: u8| (x as f64 + (target - x as f64) * t.abs()).round() as u8;
    RGBColor(mix(c.0), mix(c.1), mix(c.2))
}

pub(super) fn register_font() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = plotters::style::register_font(FONT, FontStyle::Normal, dejavu::sans::regular());
        let _ = plotters::style::register_font(FONT, FontStyle::Bold, dejavu::sans::bold());
    });
}

pub(super) fn both(
    dir: &Path,
    name: &str,
    size: (u32, u32),
    draw: impl Fn(DrawingArea<SVGBackend, Shift>) -> Result<()>,
    draw_png: impl Fn(DrawingArea<BitMapBackend, Shift>) -> Result<()>,
) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let (png, svg) = (dir.join(format!("{name}.png")), dir.join(format!("{name}.svg")));
    {
        let root = BitMapBackend::new(&png, size).into_drawing_area();
        root.fill(&WHITE).map_err(|e| anyhow!("{e:?}"))?;
        draw_png(root.clone())?;
        root.present().map_err(|e| anyhow!("{}: {e:?}", png.display()))?;
    }
    {
        let root = SVGBackend::new(&svg, size).into_drawing_area();
        root.fill(&WHITE).map_err(|e| anyhow!("{e:?}"))?;
        draw(root.clone())?;
        root.present().map_err(|e| anyhow!("{}: {e:?}", svg.display()))?;
    }
    Ok(vec![png, svg])
}

/// Draws the legend of `chart` in the figures' common style.
pub(super) fn legend<'a, DB: DrawingBackend + 'a, CT: CoordTranslate>(
    chart: &mut ChartContext<'a, DB, CT>,
    position: SeriesLabelPosition,
    font_size: u32,
) -> Result<()> {
    chart
        .configure_series_labels()
        .position(position)
        .label_font((FONT, font_size))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(|e| anyhow!("{e:?}"))
}

/// One panel: named lines over a shared x.
pub(super) fn panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    title: &str,
    y_desc: &str,
    x_desc: &str,
    x: &[f64],
    lines: &[(&str, Vec<f64>)],
    hline: Option<(&str, f64)>,
) -> Result<()> {
    let (x0, x1) = range(x.iter().copied());
    let (mut y0, mut y1) = range(lines.iter().flat_map(|(_, v)| v.iter().copied()));
    if let Some((_, h)) = hline {
        y0 = y0.min(h);
        y1 = y1.max(h * 1.1);
    }
    let e = |e: DrawingAreaErrorKind<DB::ErrorType>| anyhow!("{e:?}");
    let mut chart = ChartBuilder::on(area)
        .caption(title, (FONT, 18))
        .margin(8)
        .x_label_area_size(32)
        .y_label_area_size(64)
        .build_cartesian_2d(x0.max(0.0)..x1, y0..y1)
        .map_err(e)?;
    chart
        .configure_mesh()
        .x_desc(x_desc)
        .y_desc(y_desc)
        .label_style((FONT, 13))
        .axis_desc_style((FONT, 14))
        .draw()
        .map_err(e)?;
    for (i, (name, ys)) in lines.iter().enumerate() {
        let color = PALETTE[i % PALETTE.len()];
        let pts: Vec<(f64, f64)> = x.iter().zip(ys).filter(|(_, y)| y.is_finite()).map(|(a, b)| (*a, *b)).collect();
        chart
            .draw_series(LineSeries::new(pts, color.stroke_width(2)))
            .map_err(e)?
            .label(*name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2)));
    }
    if let Some((name, h)) = hline {
        chart
            .draw_series(LineSeries::new(vec![(x0.max(0.0), h), (x1, h)], BLACK.stroke_width(1)))
            .map_err(e)?
            .label(name)
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], BLACK));
    }
    legend(&mut chart, SeriesLabelPosition::UpperRight, 13)?;
    Ok(())
}

pub(super) fn draw_run<DB: DrawingBackend>(root: DrawingArea<DB, Shift>, t: &Table, slo: Option<f64>) -> Result<()> {
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

pub(super) fn draw_pareto<DB: DrawingBackend>(
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
pub(super) fn draw_frontiers<DB: DrawingBackend>(
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

pub(super) fn draw_coverage<DB: DrawingBackend>(
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

pub(super) fn draw_whatif<DB: DrawingBackend>(
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

pub(super) fn draw_bars<DB: DrawingBackend>(
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
pub(super) fn draw_cdf<DB: DrawingBackend>(
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

pub(super) fn draw_curve<DB: DrawingBackend>(
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

/// One run's time series in an overlay: its controller and table.
pub(super) type Overlay = Vec<(String, Table)>;

/// The controllers of one scenario and seed over the same window: demand against each controller's ready
/// capacity (solid) and allocated capacity (faint), p99 latency with the SLO line (values above 10× the SLO
/// drawn at the top edge), cost so far. `window_h`: the hours shown.
pub(super) fn draw_overlay<DB: DrawingBackend>(
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A controller's colour depends only on the experiment's order (the baseline first), never on which
    /// controllers a figure happens to show.
    #[test]
    fn colours_follow_the_experiment_not_the_figure() {
        let names = ["b", "a", "b", "c"].map(String::from);
        let c = Colours::new(names, Some("c"), |n: &str| n.to_string());
        assert_eq!((c.of("c"), c.of("b"), c.of("a")), (PALETTE[0], PALETTE[1], PALETTE[2]));
        assert_eq!(c.of("not-in-the-sweep"), BLACK);
    }

    /// A family shares its hue: members are distinct shades of it, dark to light, and never another
    /// family's colour.
    #[test]
    fn a_family_is_one_hue_in_shades() {
        let names = ["hpa-0.4", "hpa-0.6", "hpa-0.8", "aci"].map(String::from);
        let fam = |n: &str| n.split('-').next().unwrap().to_string();
        let c = Colours::new(names, Some("hpa-0.6"), fam);
        assert_eq!(c.of_family("hpa"), PALETTE[0]);
        assert_eq!(c.of("aci"), PALETTE[1]);
        let shades: Vec<RGBColor> = ["hpa-0.6", "hpa-0.4", "hpa-0.8"].iter().map(|n| c.of(n)).collect();
        let lum = |c: &RGBColor| c.0 as u32 + c.1 as u32 + c.2 as u32;
        assert!(lum(&shades[0]) < lum(&shades[1]) && lum(&shades[1]) < lum(&shades[2]), "{shades:?}");
        assert!(shades.iter().all(|s| *s != PALETTE[1]));
    }
}
