//! A series as the protocol reads it (a trace column on a regular grid at its median interval) and the rolling
//! origins: where they fall, the pooled absolute errors per horizon, and the seasonal naive's MAE.

use std::path::{Path, PathBuf};

use anyhow::{Result, anyhow};
use prescale_agents::neural::facts::LabelledSeries;
use prescale_sim::demand::DemandSeries;
use prescale_sim::trace::{DEFAULT_TIME_COLUMN, GapPolicy, TracePolicies, resample, time_column_index};

use crate::files::scenario_io::{parse_trace_text, read_trace_text};

/// The peers' horizons, steps: the default of `--horizons`.
pub const HORIZONS: [usize; 3] = [1, 5, 15];

pub(super) const ORIGINS: usize = 24;

/// Pooled MAE per horizon of `forecasts[origin][step]` against the truth.
pub(super) fn pooled(y: &[f64], origins: &[usize], forecasts: &[Vec<f64>], horizons: &[usize]) -> Vec<f64> {
    horizons
        .iter()
        .map(|&h| {
            let mut s = 0.0;
            for (o, f) in origins.iter().zip(forecasts) {
                for k in 0..h {
                    s += (f[k] - y[o + k]).abs();
                }
            }
            s / (h * origins.len()) as f64
        })
        .collect()
}

/// One series to evaluate.
pub struct Series {
    /// File name and column, for the table.
    pub label: String,
    /// Values on the grid.
    pub y: Vec<f64>,
    /// Grid interval, seconds.
    pub step_s: f64,
    /// Unix time of the first value.
    pub start_unix_s: f64,
    /// The peers' results file beside it, if one exists.
    pub peer: Option<PathBuf>,
}

/// `FILE[:COLUMN]` as the file and the column, if one is named (a colon followed by a path is part of the file
/// name).
pub fn split_column(spec: &str) -> (&str, Option<&str>) {
    match spec.rsplit_once(':') {
        Some((f, c)) if !c.contains('/') && !c.is_empty() => (f, Some(c)),
        _ => (spec, None),
    }
}

/// The column a `FILE` names no column of: `value` where the header has it (NAB's files), else the only column
/// besides the timestamps (`timestamp`, or the first column where there is none), else `value` (whose absence
/// the trace's error then names, with the header).
pub fn default_column(csv_text: &str) -> String {
    let mut header: Vec<String> = Vec::new();
    let first = csv_text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    let _ = prescale_sim::table::read_rows::<prescale_sim::table::TableError>(first, |_, fields| {
        header = fields.iter().map(|f| f.to_string()).collect();
        Ok(())
    });
    let time = time_column_index(&header, DEFAULT_TIME_COLUMN, &[]);
    let others: Vec<&String> = header.iter().enumerate().filter(|(i, _)| Some(*i) != time).map(|(_, h)| h).collect();
    match others.as_slice() {
        _ if header.iter().any(|h| h == "value") => "value".into(),
        [only] => (*only).clone(),
        _ => "value".into(),
    }
}

impl Series {
    /// The series as a training series of a global forecaster (its values as the demand's rate column).
    pub fn labelled(self) -> LabelledSeries {
        LabelledSeries {
            label: self.label,
            demand: DemandSeries {
                step_s: self.step_s,
                rate_per_s: self.y,
                start_unix_s: self.start_unix_s,
                ..DemandSeries::default()
            },
        }
    }
}

/// Loads `FILE[:COLUMN]` onto its grid.
///
/// # Errors
/// Trace problems, naming the file and line.
pub fn load(spec: &str) -> Result<Series> {
    let (file, named) = split_column(spec);
    let policies = TracePolicies { gaps: GapPolicy::Interpolate, ..TracePolicies::default() };
    let text = read_trace_text(Path::new(file)).map_err(|d| anyhow!("{d}"))?;
    let column = named.map_or_else(|| default_column(&text), str::to_string);
    let trace = parse_trace_text(Path::new(file), &text, DEFAULT_TIME_COLUMN, std::slice::from_ref(&column), &policies)
        .map_err(|d| {
            let hint = if named.is_none() { " (name the column: FILE:COLUMN)" } else { "" };
            anyhow!("{d}{hint}")
        })?;
    let step_s = trace.report.nominal_interval_s;
    let steps = (trace.report.span_s / step_s).floor() as usize;
    let y = resample(&trace, 0, GapPolicy::Interpolate, 0.0, 1.0, step_s, steps);
    let name = Path::new(file).file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let peers = Path::new(file).parent().unwrap_or(Path::new(".")).join("../peers/results");
    let peer = [
        ("nasa_http_jul95_requests_1min", "forecast_nasa_jul95_1min.json"),
        ("google2019_cluster_instance_usage_300s", "forecast_google2019_avg_cpu.json"),
    ]
    .iter()
    .find(|(n, _)| *n == name)
    .map(|(_, f)| peers.join(f))
    .filter(|p| p.is_file());
    Ok(Series { label: format!("{name} [{column}]"), y, step_s, start_unix_s: trace.report.first_timestamp_s, peer })
}

/// The protocol's origins (indices of the first forecast step), season and MASE scale for a series, with the
/// peers' horizons.
///
/// # Errors
/// A series too short for 24 origins and two seasons before the first.
pub fn protocol(s: &Series) -> Result<(Vec<usize>, usize, f64)> {
    protocol_for(s, HORIZONS[2])
}

/// [`protocol`] with the last origin `hmax` steps before the end.
pub(super) fn protocol_for(s: &Series, hmax: usize) -> Result<(Vec<usize>, usize, f64)> {
    let n = s.y.len();
    let m = ((86_400.0 / s.step_s).round() as usize).max(1);
    let every = ((3600.0 / s.step_s).round() as usize).max(1);
    let first = n.checked_sub(hmax + (ORIGINS - 1) * every).filter(|f| *f >= (2 * m).max(50)).ok_or_else(|| {
        anyhow!(
            "{}: {n} points are too few for {ORIGINS} origins every {every} steps, horizon {hmax} and season {m}",
            s.label
        )
    })?;
    let origins: Vec<usize> = (0..ORIGINS).map(|i| first + i * every).collect();
    let pre = &s.y[..first];
    let scale = pre.iter().skip(m).zip(pre).map(|(a, b)| (a - b).abs()).sum::<f64>() / (first - m) as f64;
    Ok((origins, m, scale))
}

/// MAE at horizons 1, 5, 15 of the seasonal naive forecast (lag one season), by the protocol.
///
/// # Errors
/// As [`protocol`].
pub fn seasonal_naive_mae(s: &Series) -> Result<Vec<f64>> {
    let (origins, m, _) = protocol(s)?;
    let forecasts: Vec<Vec<f64>> =
        origins.iter().map(|o| (0..HORIZONS[2]).map(|k| s.y[o + k - m * (k / m + 1)]).collect()).collect();
    Ok(pooled(&s.y, &origins, &forecasts, &HORIZONS))
}
