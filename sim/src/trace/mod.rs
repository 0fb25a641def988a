//! Trace replay: real time series (CSV) turned into demand at the simulation step.
//!
//! [`parse_csv`] reads a CSV text (the caller opens and, for `.gz`, decompresses the file: this crate does no
//! I/O; comma-, tab- or semicolon-separated, see [`crate::table`]) with a header row, a timestamp column and
//! metric columns. The timestamp column is the one named; where that is the default `timestamp` and the header
//! has no such column, its first column is taken (the report names it). Timestamps may be ISO-8601
//! (`YYYY-MM-DDTHH:MM:SS[.fff][Z|±HH:MM]`, or NAB's `YYYY-MM-DD HH:MM:SS`), unix seconds, milliseconds,
//! microseconds or nanoseconds, or relative seconds ([`TimestampFormat::Auto`] tells them apart by the first
//! row: non-numeric → ISO-8601; numeric ≥ 1e17 → unix nanoseconds, ≥ 1e14 → microseconds, ≥ 1e11 →
//! milliseconds, ≥ 1e8 → unix seconds (1973 onwards; 1e11 s is the year 5138); else relative). Values must be
//! finite and ≥ 0: inf or a negative value is an error naming the file, the line and the column; a *missing*
//! value (an empty cell, `NaN`, `null`, `NA`, `N/A`, `None`) is one too, unless [`MissingPolicy::Drop`] drops
//! its row (counted) and leaves the gap to the gap policy.
//!
//! Irregularities are handled by declared policies and *counted*, never hidden ([`TraceReport`]):
//! out-of-order rows ([`OrderPolicy`]), repeated timestamps ([`DuplicatePolicy`]) and gaps longer than 1.5
//! nominal intervals ([`GapPolicy`]). The nominal interval is the (lower) median of the positive timestamp
//! differences. Runs of zeros (at least `min_zero_run` consecutive rows in which every metric is 0: a site
//! outage or a collector drop-out rather than demand) are counted and handled by [`ZeroRunPolicy`]; plateaus
//! (at least `min_plateau_run` consecutive rows repeating one non-zero value: a stuck exporter) are counted.
//! Each row's value holds over its own nominal interval; [`resample`] averages this piecewise
//! function (linear across gaps under `Interpolate`) exactly over each simulation step.

use serde::{Deserialize, Serialize};

pub use crate::iso8601::{civil_from_days, days_from_civil, parse_iso8601};
pub use csv::parse_csv;

mod csv;

/// The timestamp column a trace workload names unless told otherwise; a header without it has its first
/// column read as the timestamps.
pub const DEFAULT_TIME_COLUMN: &str = "timestamp";

/// Which of a header's columns `names` holds the timestamps when `time_column` is asked for and the columns
/// `metrics` are read: the one so named; where the default [`DEFAULT_TIME_COLUMN`] is asked for and missing,
/// the first column, unless it is the only one or a metric.
pub fn time_column_index<S: AsRef<str>>(names: &[S], time_column: &str, metrics: &[usize]) -> Option<usize> {
    names
        .iter()
        .position(|n| n.as_ref() == time_column)
        .or_else(|| (time_column == DEFAULT_TIME_COLUMN && names.len() > 1 && !metrics.contains(&0)).then_some(0))
}

/// Largest timestamp magnitude accepted, seconds (about 31,700 years: beyond any real trace, and small enough
/// that differences of timestamps stay exact to the millisecond).
pub const MAX_TIMESTAMP_S: f64 = 1e12;

impl From<crate::table::TableError> for TraceError {
    fn from(e: crate::table::TableError) -> Self {
        TraceError { line: e.line, column: None, message: e.message }
    }
}

/// How timestamps are written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum TimestampFormat {
    /// Decide from the first row (see the module docs).
    #[default]
    Auto,
    /// ISO-8601 date and time; without an offset, UTC is assumed.
    Iso8601,
    /// Seconds since 1970-01-01T00:00:00Z.
    UnixSeconds,
    /// Milliseconds since 1970-01-01T00:00:00Z (JavaScript's and Java's clocks, many exporters).
    UnixMilliseconds,
    /// Microseconds since 1970-01-01T00:00:00Z.
    UnixMicroseconds,
    /// Nanoseconds since 1970-01-01T00:00:00Z (e.g. InfluxDB; read to about a microsecond).
    UnixNanoseconds,
    /// Seconds since the start of the trace (or any origin).
    RelativeSeconds,
    /// A date written day first, `DD/MM/YYYY` (or with `.` or `-`), then the time as ISO-8601 writes it
    /// (`31/01/2024 13:45`): many European spreadsheets. Never chosen by `Auto` (`01/02/2024` reads both ways).
    DayFirst,
    /// A date written month first, `MM/DD/YYYY` (or with `.` or `-`), then the time as ISO-8601 writes it
    /// (`01/31/2024 13:45`): US spreadsheets. Never chosen by `Auto`.
    MonthFirst,
}

/// What to do with a row whose timestamp is earlier than a previous row's.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum OrderPolicy {
    /// Sort rows by time (stable): the row keeps its value (e.g. NAB's DST step-back).
    #[default]
    Sort,
    /// Drop such rows.
    Drop,
    /// Refuse the trace.
    Reject,
}

/// What to do with rows that share a timestamp.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum DuplicatePolicy {
    /// Their mean.
    #[default]
    Mean,
    /// Their sum (e.g. counts split over two rows).
    Sum,
    /// The first row.
    First,
    /// The last row.
    Last,
    /// Refuse the trace.
    Reject,
}

/// How to fill a gap longer than 1.5 nominal intervals.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum GapPolicy {
    /// The last value holds until the next row.
    #[default]
    Hold,
    /// Linear from the last value to the next one.
    Interpolate,
    /// Zero demand in the gap.
    Zero,
    /// Refuse the trace.
    Reject,
}

/// What to do with a row whose metric cell is missing: empty, or `NaN`, `null`, `NA`, `N/A` or `None` (in any
/// case).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum MissingPolicy {
    /// Refuse the trace, naming the first such cell's line and column.
    #[default]
    Refuse,
    /// Drop the row (every metric of it; counted): the gap it leaves is filled by the gap policy.
    Drop,
}

/// What to do with a run of zeros (see the module docs).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum ZeroRunPolicy {
    /// Replay the zeros as demand (counted and reported).
    #[default]
    Keep,
    /// Treat the run's rows as missing: they are dropped, and the gap they leave is filled by the gap policy.
    Missing,
    /// Refuse the trace, naming the first run's line.
    Refuse,
}

fn three() -> usize {
    3
}
fn twelve() -> usize {
    12
}

/// Policies for irregular traces.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TracePolicies {
    /// Timestamp format.
    #[serde(default)]
    pub timestamp_format: TimestampFormat,
    /// Out-of-order rows.
    #[serde(default)]
    pub out_of_order: OrderPolicy,
    /// Repeated timestamps.
    #[serde(default)]
    pub duplicates: DuplicatePolicy,
    /// Gaps.
    #[serde(default)]
    pub gaps: GapPolicy,
    /// Missing values.
    #[serde(default)]
    pub missing: MissingPolicy,
    /// Runs of zeros.
    #[serde(default)]
    pub zero_runs: ZeroRunPolicy,
    /// Fewest consecutive all-zero rows that make a run of zeros (default 3).
    #[serde(default = "three")]
    pub min_zero_run: usize,
    /// Fewest consecutive rows repeating one non-zero value that make a plateau (default 12).
    #[serde(default = "twelve")]
    pub min_plateau_run: usize,
}

impl Default for TracePolicies {
    fn default() -> Self {
        TracePolicies {
            timestamp_format: TimestampFormat::default(),
            out_of_order: OrderPolicy::default(),
            duplicates: DuplicatePolicy::default(),
            gaps: GapPolicy::default(),
            missing: MissingPolicy::default(),
            zero_runs: ZeroRunPolicy::default(),
            min_zero_run: three(),
            min_plateau_run: twelve(),
        }
    }
}

/// A parse or policy error, with its place.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TraceError {
    /// 1-based line in the file (0 when the error concerns the whole file).
    pub line: usize,
    /// Column name, when one is concerned.
    pub column: Option<String>,
    /// What is wrong and what was expected.
    pub message: String,
}

impl std::fmt::Display for TraceError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (&self.column, self.line) {
            (Some(c), 0) => write!(f, "column '{c}': {}", self.message),
            (Some(c), l) => write!(f, "line {l}, column '{c}': {}", self.message),
            (None, 0) => write!(f, "{}", self.message),
            (None, l) => write!(f, "line {l}: {}", self.message),
        }
    }
}

/// What loading found and did: counts of every irregularity and the policy applied.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct TraceReport {
    /// Data rows read (header excluded).
    pub rows: usize,
    /// The column read as the timestamps.
    pub timestamp_column: String,
    /// Timestamp format found or used.
    pub timestamp_format: String,
    /// Median positive difference between consecutive timestamps, seconds.
    pub nominal_interval_s: f64,
    /// Time span covered (first timestamp to last + one interval), seconds.
    pub span_s: f64,
    /// First timestamp (seconds in the format's own origin: unix, or relative).
    pub first_timestamp_s: f64,
    /// Rows earlier than a previous row.
    pub out_of_order_rows: usize,
    /// Rows dropped by the order policy.
    pub dropped_rows: usize,
    /// Rows with a missing value (dropped under [`MissingPolicy::Drop`]; not in `rows`).
    pub missing_rows: usize,
    /// Rows merged into another row with the same timestamp.
    pub duplicate_rows: usize,
    /// Gaps longer than 1.5 nominal intervals.
    pub gaps: usize,
    /// Longest gap, seconds.
    pub longest_gap_s: f64,
    /// Runs of zeros (at least `min_zero_run` consecutive all-zero rows).
    pub zero_runs: usize,
    /// Rows in runs of zeros.
    pub zero_run_rows: usize,
    /// Longest run of zeros, seconds (from its first row to the row after it).
    pub longest_zero_run_s: f64,
    /// Plateaus (at least `min_plateau_run` consecutive rows repeating one non-zero value).
    pub plateaus: usize,
    /// Longest plateau, seconds.
    pub longest_plateau_s: f64,
    /// Policies applied.
    pub policies: String,
}

impl TraceReport {
    /// One line for people: every irregularity and what was done about it.
    pub fn summary(&self) -> String {
        format!(
            "{} rows, {} timestamps (column '{}'), nominal interval {} s, span {:.1} h; out-of-order rows {} \
             (dropped {}), duplicate rows {}, rows with a missing value {} (dropped), gaps {} (longest {} s), runs \
             of zeros {} ({} rows, longest {} s), plateaus {} (longest {} s); policies: {}",
            self.rows,
            self.timestamp_format,
            self.timestamp_column,
            self.nominal_interval_s,
            self.span_s / 3600.0,
            self.out_of_order_rows,
            self.dropped_rows,
            self.duplicate_rows,
            self.missing_rows,
            self.gaps,
            self.longest_gap_s,
            self.zero_runs,
            self.zero_run_rows,
            self.longest_zero_run_s,
            self.plateaus,
            self.longest_plateau_s,
            self.policies
        )
    }
}

/// A parsed trace: times ascending and unique, one value vector per requested column.
#[derive(Clone, Debug, PartialEq)]
pub struct Trace {
    /// Timestamps, seconds, strictly increasing.
    pub times_s: Vec<f64>,
    /// Values per requested column, same length as `times_s`.
    pub columns: Vec<Vec<f64>>,
    /// What loading found.
    pub report: TraceReport,
}

/// Averages column `col` of `trace` over `steps` consecutive steps of `step_s` simulated seconds, starting
/// `start_offset_s` trace-seconds after the first row, with `time_scale` simulated seconds per trace second.
/// Each row holds its value over one nominal interval; a longer gap is filled by `gaps`. Beyond the last
/// row's interval the function is undefined: the caller keeps `steps` within the trace's span.
pub fn resample(
    trace: &Trace,
    col: usize,
    gaps: GapPolicy,
    start_offset_s: f64,
    time_scale: f64,
    step_s: f64,
    steps: usize,
) -> Vec<f64> {
    let t = &trace.times_s;
    let v = &trace.columns[col];
    let nominal = trace.report.nominal_interval_s;
    // Segments of the piecewise function in simulated time: (start, end, value at start, value at end).
    let origin = t[0] + start_offset_s;
    let mut segs: Vec<(f64, f64, f64, f64)> = Vec::with_capacity(t.len() * 2);
    for i in 0..t.len() {
        let a = (t[i] - origin) * time_scale;
        let next = if i + 1 < t.len() { t[i + 1] } else { t[i] + nominal };
        let held_until = if next - t[i] > 1.5 * nominal { t[i] + nominal } else { next };
        let b = (held_until - origin) * time_scale;
        segs.push((a, b, v[i], v[i]));
        if held_until < next {
            let c = (next - origin) * time_scale;
            let (x0, x1) = match gaps {
                GapPolicy::Hold | GapPolicy::Reject => (v[i], v[i]),
                GapPolicy::Zero => (0.0, 0.0),
                GapPolicy::Interpolate => (v[i], v[i + 1]),
            };
            segs.push((b, c, x0, x1));
        }
    }
    let mut out = Vec::with_capacity(steps);
    let mut s = 0usize;
    for k in 0..steps {
        let (lo, hi) = (k as f64 * step_s, (k + 1) as f64 * step_s);
        while s < segs.len() && segs[s].1 <= lo {
            s += 1;
        }
        let mut integral = 0.0;
        let mut j = s;
        while j < segs.len() && segs[j].0 < hi {
            let (a, b, x0, x1) = segs[j];
            let (l, h) = (a.max(lo), b.min(hi));
            if h > l && b > a {
                // Integral of the linear piece between l and h.
                let at = |x: f64| x0 + (x1 - x0) * (x - a) / (b - a);
                integral += 0.5 * (at(l) + at(h)) * (h - l);
            }
            j += 1;
        }
        out.push(integral / step_s);
    }
    out
}

#[cfg(test)]
mod tests;
