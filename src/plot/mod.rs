//! Figures (plotters; PNG and SVG; text in the embedded DejaVu Sans, so they render on a machine with no
//! fonts): `prescale plot DIR` redraws them from saved results, without running anything.
//!
//! * A run folder (`timeseries.csv`): `plots/timeseries.{png,svg}`, four panels over time — demand vs ready
//!   vs allocated capacity (cores), latency p99 with the SLO line (s), cost so far (USD), over- and
//!   under-provisioning (cores).
//! * A sweep folder (`runs.csv`): `plots/pareto.{png,svg}`, cost vs SLO-violation minutes per controller and
//!   axis combination, means with 95 % confidence bars over seeds; per axis `plots/whatif_<axis>.{png,svg}`,
//!   SLO-violation minutes and cost against the axis values, one line per controller; `plots/bars.{png,svg}`,
//!   SLO minutes, cost and over-provisioning per controller (mean over all its runs, 95 % CI);
//!   `plots/latency_cdf.{png,svg}`, the CDF of per-step p99 latency per controller over all its runs; and, when
//!   forecasting controllers ran, `plots/coverage_cost.{png,svg}`, their realised margin coverage against cost;
//!   and per scenario and axis values `plots/overlay[_k].{png,svg}`: the controllers' runs of one seed over one
//!   window (`--seed`, `--window-h`), demand against ready and allocated capacity, p99 latency with the SLO,
//!   cost so far.

pub mod data;
mod figures;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Result, bail};

use data::*;
use figures::*;

/// Draws a model directory's training curve (`curve.csv`, and `dagger.csv` when present) into
/// `dir/plots/curve.{png,svg}`.
///
/// # Errors
/// Unreadable CSV or drawing problems.
pub fn plot_curve(dir: &Path) -> Result<Vec<PathBuf>> {
    register_font();
    let t = Table::read(&dir.join("curve.csv"))?;
    let dagger = Table::read(&dir.join("dagger.csv")).ok();
    let size = if dagger.is_some() { (1400, 550) } else { (900, 550) };
    both(
        &dir.join("plots"),
        "curve",
        size,
        |r| draw_curve(r, &t, dagger.as_ref()),
        |r| draw_curve(r, &t, dagger.as_ref()),
    )
}

/// Draws the figures of a run folder (`timeseries.csv`) or a sweep folder (`runs.csv` + `experiment.json`)
/// into `dir/plots/`; returns the files written.
///
/// # Errors
/// Neither kind of folder, an unreadable or damaged table (named with its line), or a drawing problem.
pub fn plot(dir: &Path) -> Result<Vec<PathBuf>> {
    plot_with(dir, &PlotOptions::default())
}

/// What `prescale plot` may choose beyond the folder.
#[derive(Clone, Debug, Default)]
pub struct PlotOptions {
    /// The seed whose runs the overlay figures show (default: the first seed of `runs.csv`).
    pub seed: Option<u64>,
    /// The hours the overlay figures show, `(from, to)` (default: every step).
    pub window_h: Option<(f64, f64)>,
}

/// [`plot`] with options.
///
/// # Errors
/// As [`plot`]; a seed with no runs.
pub fn plot_with(dir: &Path, opts: &PlotOptions) -> Result<Vec<PathBuf>> {
    register_font();
    let out = dir.join("plots");
    if dir.join("timeseries.csv").exists() {
        let t = Table::read(&dir.join("timeseries.csv"))?;
        let slo = slo_threshold(dir);
        return both(&out, "timeseries", (1200, 1400), |r| draw_run(r, &t, slo), |r| draw_run(r, &t, slo));
    }
    if dir.join("runs.csv").exists() {
        let SweepFolder { runs: t, experiment: exp, axes } = SweepFolder::read(dir)?;
        // One colour per controller in every figure: the experiment's order, the baseline first.
        let ci = t.col("controller")?;
        let family_of = |c: &str| exp.family_of(c);
        if let Some(seed) = opts.seed {
            let si = t.col("seed")?;
            if !t.rows.iter().any(|(_, r)| r[si] == seed.to_string()) {
                let seeds: std::collections::BTreeSet<&str> = t.rows.iter().map(|(_, r)| r[si].as_str()).collect();
                bail!(
                    "--seed {seed}: no run of this sweep has it (seeds: {})",
                    seeds.into_iter().collect::<Vec<_>>().join(", ")
                );
            }
        }
        let colours = Colours::new(t.rows.iter().map(|(_, r)| r[ci].clone()), exp.baseline.as_deref(), family_of);
        let pts = sweep_points(&t, &axes, "cost_usd", "slo_violation_minutes")?;
        let mut files =
            both(&out, "pareto", (1100, 800), |r| draw_pareto(r, &pts, &colours), |r| draw_pareto(r, &pts, &colours))?;
        // Families (controllers sharing a `family`): their frontiers per group, when one has two members or
        // more. (The per-controller means serve the bars below.)
        let (slo_means, cost_means) = (per_controller(&t, "slo_violation_minutes")?, per_controller(&t, "cost_usd")?);
        let groups = group_families(&pts, &family_of);
        if groups.iter().any(|(_, fams)| fams.iter().any(|(_, m)| m.len() >= 2)) {
            let cols = groups.len().clamp(1, 3) as u32;
            let rows = groups.len().div_ceil(3).max(1) as u32;
            let size = if groups.len() > 1 { (560 * cols, 60 + 420 * rows) } else { (1100, 800) };
            files.extend(both(
                &out,
                "frontiers",
                size,
                |r| draw_frontiers(r, &groups, &colours),
                |r| draw_frontiers(r, &groups, &colours),
            )?);
        }
        for (k, axis) in axes.iter().enumerate() {
            let values = &exp.axes[k].values;
            // Points per controller along this axis (other axes pooled).
            let one = std::slice::from_ref(axis);
            let slo = sweep_points(&t, one, "cost_usd", "slo_violation_minutes")?;
            let cost = sweep_points(&t, one, "slo_violation_minutes", "cost_usd")?;
            let name = format!("whatif_{}", axis.rsplit('.').next().unwrap_or(axis).replace(['[', ']'], "_"));
            files.extend(both(
                &out,
                &name,
                (1400, 650),
                |r| draw_whatif(r, axis, values, &slo, &cost, &colours),
                |r| draw_whatif(r, axis, values, &slo, &cost, &colours),
            )?);
        }
        let bars = [
            ("SLO-violation minutes", slo_means),
            ("cost (USD)", cost_means),
            ("over-provisioning (core-h)", per_controller(&t, "over_provisioning_core_hours")?),
        ];
        files.extend(both(
            &out,
            "bars",
            (1500, 600),
            |r| draw_bars(r, &bars, &colours),
            |r| draw_bars(r, &bars, &colours),
        )?);
        // Per-step p99 latency of every run, pooled per controller.
        let ci = t.col("controller")?;
        let idc = t.col("cell_id")?;
        let mut p99: BTreeMap<String, Vec<f64>> = BTreeMap::new();
        for (_, row) in &t.rows {
            let ts = dir.join("runs").join(&row[idc]).join("timeseries.csv");
            let tt = Table::read(&ts)?;
            p99.entry(row[ci].clone()).or_default().extend(tt.f64s("latency_p99_s")?);
        }
        files.extend(both(
            &out,
            "latency_cdf",
            (1100, 750),
            |r| draw_cdf(r, "Per-step p99 latency, all runs", "p99 latency of a step (s, log scale)", &p99, &colours),
            |r| draw_cdf(r, "Per-step p99 latency, all runs", "p99 latency of a step (s, log scale)", &p99, &colours),
        )?);
        files.extend(overlays(dir, &out, &t, &axes, opts, &colours)?);
        // Margin coverage vs cost, for forecasting controllers.
        if t.col("coverage").is_ok() {
            let cov = sweep_points(&t, &axes, "cost_usd", "coverage")?;
            let cov: Points = cov.into_iter().filter(|(_, v)| v.iter().any(|(_, _, (m, _))| m.is_finite())).collect();
            if !cov.is_empty() {
                files.extend(both(
                    &out,
                    "coverage_cost",
                    (1100, 750),
                    |r| draw_coverage(r, &cov, &colours),
                    |r| draw_coverage(r, &cov, &colours),
                )?);
            }
        }
        return Ok(files);
    }
    bail!("{} holds neither a run (timeseries.csv) nor a sweep (runs.csv)", dir.display())
}

/// The overlay figures of a sweep: per scenario and axis values, the controllers' runs of one seed over the
/// same window (`plots/overlay.{png,svg}`, or `overlay_<k>` numbered in `runs.csv` order when there are
/// several groups).
fn overlays(
    dir: &Path,
    out: &Path,
    t: &Table,
    axes: &[String],
    opts: &PlotOptions,
    colours: &Colours,
) -> Result<Vec<PathBuf>> {
    let (ci, si, idc, fi) = (t.col("controller")?, t.col("seed")?, t.col("cell_id")?, t.col("scenario_file")?);
    let axis_cols: Vec<usize> = axes.iter().map(|a| t.col(a)).collect::<Result<_>>()?;
    let seed = match opts.seed {
        Some(s) => s.to_string(),
        None => t.rows[0].1[si].clone(),
    };
    // (scenario file and axis values) → [(controller, cell id)]
    type Group = (Vec<String>, Vec<(String, String)>);
    let mut groups: Vec<Group> = Vec::new();
    for (_, row) in t.rows.iter().filter(|(_, r)| r[si] == seed) {
        let key: Vec<String> =
            std::iter::once(row[fi].clone()).chain(axis_cols.iter().map(|&c| row[c].clone())).collect();
        let run = (row[ci].clone(), row[idc].clone());
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, runs)) => runs.push(run),
            None => groups.push((key, vec![run])),
        }
    }
    let mut files = Vec::new();
    let many = groups.len() > 1;
    for (k, (key, runs)) in groups.iter().enumerate() {
        let mut overlay: Overlay = Vec::new();
        for (c, id) in runs {
            overlay.push((c.clone(), Table::read(&dir.join("runs").join(id).join("timeseries.csv"))?));
        }
        let slo = slo_threshold(&dir.join("runs").join(&runs[0].1));
        let end_h = overlay.iter().flat_map(|(_, t)| t.f64s("t_end_s").ok()).flatten().fold(0.0, f64::max) / 3600.0;
        let window = opts.window_h.unwrap_or((0.0, end_h));
        if window.0 >= end_h {
            bail!("--window-h {}:{}: the runs end at {end_h:.2} h", window.0, window.1);
        }
        let window = (window.0, window.1.min(end_h));
        let stem = Path::new(&key[0]).file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        let values: Vec<String> =
            axes.iter().zip(&key[1..]).map(|(a, v)| format!("{} = {v}", a.rsplit('.').next().unwrap_or(a))).collect();
        let title = format!(
            "{stem}{}, seed {seed}",
            if values.is_empty() { String::new() } else { format!(" ({})", values.join(", ")) }
        );
        let name = if many { format!("overlay_{}", k + 1) } else { "overlay".to_string() };
        files.extend(both(
            out,
            &name,
            (1400, 1300),
            |r| draw_overlay(r, &title, &overlay, slo, window, colours),
            |r| draw_overlay(r, &title, &overlay, slo, window, colours),
        )?);
    }
    Ok(files)
}
