//! What the figures are drawn from: saved CSV tables read whole (a damaged one is an error naming its line),
//! per-controller means with 95 % confidence intervals over seeds, and the SLO of a run's resolved scenario.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};

use prescale_agents::ControllerConfig;
use prescale_sim::scenario::ScenarioConfig;

use crate::lab::stats::mean_ci95;

/// A sweep folder as the figures read it: its `runs.csv` and the experiment it ran (`experiment.json`), with
/// the axes' dotted paths in the experiment's order.
pub struct SweepFolder {
    pub runs: Table,
    pub experiment: crate::lab::experiment::ExperimentConfig,
    pub axes: Vec<String>,
}

impl SweepFolder {
    /// Reads `dir/runs.csv` and `dir/experiment.json`.
    ///
    /// # Errors
    /// Either file missing or damaged, named.
    pub fn read(dir: &Path) -> Result<SweepFolder> {
        let runs = Table::read(&dir.join("runs.csv"))?;
        let exp_file = dir.join("experiment.json");
        let text = std::fs::read_to_string(&exp_file).with_context(|| format!("reading {}", exp_file.display()))?;
        let experiment: crate::lab::experiment::ExperimentConfig =
            serde_json::from_str(&text).with_context(|| format!("reading {}", exp_file.display()))?;
        let axes = experiment.axes.iter().map(|a| a.path.clone()).collect();
        Ok(SweepFolder { runs, experiment, axes })
    }
}

/// A CSV file as columns by name: whole (every row as long as the header) and not empty, or an error.
pub struct Table {
    pub path: PathBuf,
    pub header: Vec<String>,
    pub rows: Vec<(usize, Vec<String>)>,
}

impl Table {
    pub fn read(path: &Path) -> Result<Table> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let mut header: Vec<String> = Vec::new();
        let mut rows = Vec::new();
        prescale_sim::table::read_rows(&text, |line, fields| {
            if header.is_empty() {
                header = fields.iter().map(|f| f.to_string()).collect();
            } else if fields.len() != header.len() {
                return Err(prescale_sim::table::TableError {
                    line,
                    message: format!(
                        "{} fields where the header has {}: the table is truncated or damaged",
                        fields.len(),
                        header.len()
                    ),
                });
            } else {
                rows.push((line, fields.iter().map(|f| f.to_string()).collect()));
            }
            Ok(())
        })
        .map_err(|e| anyhow!("{}: {e}", path.display()))?;
        if rows.is_empty() {
            bail!("{}: a header and no rows: nothing to plot", path.display());
        }
        Ok(Table { path: path.to_path_buf(), header, rows })
    }
    pub fn col(&self, name: &str) -> Result<usize> {
        self.header.iter().position(|h| h == name).ok_or_else(|| anyhow!("{}: no column '{name}'", self.path.display()))
    }
    /// A column as numbers; an empty cell is NaN (not applicable), any other non-number an error.
    pub fn f64s(&self, name: &str) -> Result<Vec<f64>> {
        let i = self.col(name)?;
        self.rows
            .iter()
            .map(|(line, r)| match r[i].as_str() {
                "" => Ok(f64::NAN),
                x => x.parse().map_err(|_| {
                    anyhow!(
                        "{}:{line}: column '{name}': '{}' is not a number",
                        self.path.display(),
                        prescale_sim::input::clip(x, 40)
                    )
                }),
            })
            .collect()
    }
}

/// An axis range covering `xs` with 5 % padding, starting at 0 for non-negative data.
pub fn range(xs: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = span(xs);
    let pad = ((hi - lo) * 0.05).max(1e-9);
    (if lo >= 0.0 { 0.0 } else { lo - pad }, hi + pad)
}

/// An axis range tight around `xs` (10 % padding).
pub fn tight(xs: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = span(xs);
    let pad = ((hi - lo) * 0.1).max(1e-6 * hi.abs().max(1.0));
    (lo - pad, hi + pad)
}

pub fn span(xs: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) =
        xs.filter(|x| x.is_finite()).fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), x| (a.min(x), b.max(x)));
    if lo.is_finite() { (lo, hi) } else { (0.0, 1.0) }
}

/// The SLO threshold of a run folder's resolved scenario, if it can be read.
/// (The run wrote the scenario it ran, so it parses as a scenario; an edited or foreign file just leaves the
/// SLO line out of the figure.)
pub fn slo_threshold(dir: &Path) -> Option<f64> {
    let file = dir.join("scenario.ron");
    let text = std::fs::read_to_string(&file).ok()?;
    let config: ScenarioConfig<ControllerConfig> = crate::files::scenario_io::parse_ron(&file, &text).ok()?;
    Some(config.slo.latency_threshold_s)
}

/// Per controller and axis combination: (mean, half-width) of a metric over seeds.
pub type Points = BTreeMap<String, Vec<(String, (f64, f64), (f64, f64))>>;

/// Per controller and group — the scenario file (named by its stem when the sweep has several) and the values
/// of `axes` — the mean and 95 % CI of two metrics over the group's runs (seeds, and the other axes' values).
pub fn sweep_points(t: &Table, axes: &[String], x_metric: &str, y_metric: &str) -> Result<Points> {
    let ci = t.col("controller")?;
    let combos = group_labels(t, axes)?;
    let (xs, ys) = (t.f64s(x_metric)?, t.f64s(y_metric)?);
    let mut groups: BTreeMap<(String, String), (Vec<f64>, Vec<f64>)> = BTreeMap::new();
    let mut order: Vec<String> = Vec::new();
    for (k, ((_, row), combo)) in t.rows.iter().zip(&combos).enumerate() {
        if !order.contains(combo) {
            order.push(combo.clone());
        }
        let g = groups.entry((row[ci].clone(), combo.clone())).or_default();
        g.0.push(xs[k]);
        g.1.push(ys[k]);
    }
    let mut out: Points = BTreeMap::new();
    for combo in &order {
        for ((c, cb), (x, y)) in &groups {
            if cb == combo {
                out.entry(c.clone()).or_default().push((combo.clone(), mean_ci95(x), mean_ci95(y)));
            }
        }
    }
    Ok(out)
}

/// Each row's group label in [`sweep_points`]: the scenario file's stem (when the sweep has several) and the
/// values of `axes`, joined by ", ".
pub fn group_labels(t: &Table, axes: &[String]) -> Result<Vec<String>> {
    let fi = t.col("scenario_file")?;
    let axis_cols: Vec<usize> = axes.iter().map(|a| t.col(a)).collect::<Result<_>>()?;
    let several_files = t.rows.iter().any(|(_, r)| r[fi] != t.rows[0].1[fi]);
    Ok(t.rows
        .iter()
        .map(|(_, row)| {
            let stem = Path::new(&row[fi]).file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
            several_files
                .then_some(stem)
                .into_iter()
                .chain(axis_cols.iter().map(|&c| row[c].clone()))
                .collect::<Vec<_>>()
                .join(", ")
        })
        .collect())
}

/// Per controller: (name, (mean, CI half-width)).
pub type Bars = Vec<(String, (f64, f64))>;

/// Per controller: mean and CI of `metric` over all its runs.
pub fn per_controller(t: &Table, metric: &str) -> Result<Bars> {
    let ci = t.col("controller")?;
    let xs = t.f64s(metric)?;
    let mut by: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for ((_, row), x) in t.rows.iter().zip(xs) {
        if x.is_finite() {
            by.entry(row[ci].clone()).or_default().push(x);
        }
    }
    Ok(by.into_iter().map(|(c, v)| (c, mean_ci95(&v))).collect())
}

/// Controller families: a family's name and its members as (controller, mean cost, mean SLO minutes).
pub type Families = Vec<(String, Vec<(String, f64, f64)>)>;

/// The families of each group (scenario file and axis values) of a sweep, with the group's label, from
/// [`sweep_points`] of cost and SLO minutes; `family_of` names a controller's family.
pub fn group_families(pts: &Points, family_of: &dyn Fn(&str) -> String) -> Vec<(String, Families)> {
    let mut out: Vec<(String, Families)> = Vec::new();
    for (c, ps) in pts {
        for (label, (cost, _), (slo, _)) in ps {
            let i = match out.iter().position(|(l, _)| l == label) {
                Some(i) => i,
                None => {
                    out.push((label.clone(), Vec::new()));
                    out.len() - 1
                }
            };
            let f = family_of(c);
            let fams = &mut out[i].1;
            match fams.iter_mut().find(|(g, _)| *g == f) {
                Some((_, m)) => m.push((c.clone(), *cost, *slo)),
                None => fams.push((f, vec![(c.clone(), *cost, *slo)])),
            }
        }
    }
    out
}
