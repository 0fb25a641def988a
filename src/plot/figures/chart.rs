//! The chart scaffold every figure shares: the font, the palette and one colour per controller or family
//! ([`Colours`]), PNG + SVG written side by side ([`both`]), the legend style, and a panel with its axes.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow};
use plotters::coord::Shift;
use plotters::prelude::*;

use crate::plot::data::*;

pub(crate) const FONT: &str = "sans-serif";

pub(crate) const PALETTE: [RGBColor; 8] = [
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
pub(crate) struct Colours {
    controllers: Vec<(String, RGBColor)>,
    families: Vec<(String, RGBColor)>,
}

impl Colours {
    /// From controller names in order of appearance (repeats ignored), `baseline` first, each in the family
    /// `family_of` names (a controller alone is its own family).
    pub(crate) fn new(
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
    pub(crate) fn of(&self, controller: &str) -> RGBColor {
        self.controllers.iter().find(|(c, _)| c == controller).map_or(BLACK, |(_, rgb)| *rgb)
    }

    /// The hue of `family` (black for one the sweep does not hold).
    pub(crate) fn of_family(&self, family: &str) -> RGBColor {
        self.families.iter().find(|(f, _)| f == family).map_or(BLACK, |(_, rgb)| *rgb)
    }
}

/// `c` mixed with black (`t < 0`) or white (`t > 0`) by `|t|`.
fn shade(c: RGBColor, t: f64) -> RGBColor {
    let target = if t < 0.0 { 0.0 } else { 255.0 };
    let mix = |x: u8| (x as f64 + (target - x as f64) * t.abs()).round() as u8;
    RGBColor(mix(c.0), mix(c.1), mix(c.2))
}

pub(crate) fn register_font() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = plotters::style::register_font(FONT, FontStyle::Normal, dejavu::sans::regular());
        let _ = plotters::style::register_font(FONT, FontStyle::Bold, dejavu::sans::bold());
    });
}

pub(crate) fn both(
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
pub(crate) fn legend<'a, DB: DrawingBackend + 'a, CT: CoordTranslate>(
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
pub(crate) fn panel<DB: DrawingBackend>(
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

/// One run's time series in an overlay: its controller and table.
pub(crate) type Overlay = Vec<(String, Table)>;
