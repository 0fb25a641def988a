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

use crate::input::clip;
pub use crate::iso8601::{civil_from_days, days_from_civil, parse_iso8601};

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

/// Whether a cell is a missing value: empty, or `NaN`, `null`, `NA`, `N/A` or `None` in any case.
fn is_missing(cell: &str) -> bool {
    cell.is_empty() || ["nan", "null", "na", "n/a", "none"].iter().any(|m| cell.eq_ignore_ascii_case(m))
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

/// Parses a CSV text (RFC 4180 quoting, see [`crate::table`]): `time_column` and each of `columns`, with
/// `policies`.
///
/// # Errors
/// A [`TraceError`] naming the line and column of the first problem: no header, a missing column (listing
/// the columns there are), an unparsable timestamp, an empty, non-numeric, NaN, infinite or negative value,
/// no data rows, malformed CSV, or an irregularity whose policy is `Reject`. Cells echoed in a message are
/// clipped to 80 characters.
pub fn parse_csv(
    text: &str,
    time_column: &str,
    columns: &[String],
    policies: &TracePolicies,
) -> Result<Trace, TraceError> {
    let err = |line: usize, column: Option<&str>, message: String| TraceError {
        line,
        column: column.map(String::from),
        message,
    };
    let mut t_idx = 0;
    let mut t_name = time_column.to_string();
    // Said after a timestamp that does not parse when the column was taken for want of a `timestamp` one.
    let mut t_note = String::new();
    let mut idx: Vec<usize> = Vec::new();
    let mut format = policies.timestamp_format;
    let mut rows: Vec<(f64, usize, Vec<f64>)> = Vec::new();
    // Timestamps of the rows dropped for a missing value: they still tell the nominal interval.
    let mut missing_times: Vec<f64> = Vec::new();
    let mut header_seen = false;
    crate::table::read_rows(text, |lineno, fields| {
        if !header_seen {
            header_seen = true;
            let names = fields;
            let no_column = |c: &str, what: &str| {
                err(lineno, Some(c), format!("no such column{what}; the header has: {}", clip(&names.join(", "), 200)))
            };
            let find = |c: &str| names.iter().position(|n| *n == c);
            idx = columns.iter().map(|c| find(c).ok_or_else(|| no_column(c, ""))).collect::<Result<_, _>>()?;
            t_idx = time_column_index(names, time_column, &idx)
                .ok_or_else(|| no_column(time_column, " for the timestamps"))?;
            if names[t_idx] != time_column {
                t_note = format!(" (the first column, read as the timestamps: the header has no '{time_column}')");
            }
            t_name = names[t_idx].to_string();
            return Ok(());
        }
        {
            let cell = |j: usize, name: &str| -> Result<&str, TraceError> {
                fields
                    .get(j)
                    .copied()
                    .ok_or_else(|| err(lineno, Some(name), format!("missing: the row has {} fields", fields.len())))
            };
            let ts = cell(t_idx, &t_name)?;
            if format == TimestampFormat::Auto {
                format = match ts.parse::<f64>() {
                    Ok(x) if x >= 1e17 => TimestampFormat::UnixNanoseconds,
                    Ok(x) if x >= 1e14 => TimestampFormat::UnixMicroseconds,
                    Ok(x) if x >= 1e11 => TimestampFormat::UnixMilliseconds,
                    Ok(x) if x >= 1e8 => TimestampFormat::UnixSeconds,
                    Ok(_) => TimestampFormat::RelativeSeconds,
                    Err(_) => TimestampFormat::Iso8601,
                };
            }
            let per_s = match format {
                TimestampFormat::UnixMilliseconds => 1e3,
                TimestampFormat::UnixMicroseconds => 1e6,
                TimestampFormat::UnixNanoseconds => 1e9,
                _ => 1.0,
            };
            let t = match format {
                TimestampFormat::Iso8601 => parse_iso8601(ts),
                TimestampFormat::DayFirst => parse_date_first(ts, true),
                TimestampFormat::MonthFirst => parse_date_first(ts, false),
                _ => ts.parse::<f64>().ok().map(|x| x / per_s).filter(|x| x.is_finite() && x.abs() <= MAX_TIMESTAMP_S),
            }
            .ok_or_else(|| {
                err(
                    lineno,
                    Some(&t_name),
                    format!(
                        "cannot parse timestamp '{}' as {}{}{t_note}",
                        clip(ts, 80),
                        format_name(format),
                        hint(ts, format)
                    ),
                )
            })?;
            let mut values = Vec::with_capacity(idx.len());
            for (&j, name) in idx.iter().zip(columns) {
                let c = cell(j, name)?;
                if is_missing(c) {
                    match policies.missing {
                        MissingPolicy::Drop => {
                            missing_times.push(t);
                            return Ok(());
                        }
                        MissingPolicy::Refuse => {
                            let what = if c.is_empty() { "an empty cell".to_string() } else { format!("'{c}'") };
                            return Err(err(
                                lineno,
                                Some(name),
                                format!(
                                    "missing value ({what}; expected a number >= 0): `policies: (missing: Drop)` \
                                     drops such rows and fills what they leave by the gap policy"
                                ),
                            ));
                        }
                    }
                }
                let v: f64 = c.parse().map_err(|_| {
                    let hint = if c.contains(',') {
                        " (a thousands separator or a decimal comma? write plain digits with a '.' decimal point)"
                    } else {
                        ""
                    };
                    err(lineno, Some(name), format!("'{}' is not a number{hint}", clip(c, 80)))
                })?;
                if !v.is_finite() || v < 0.0 {
                    return Err(err(lineno, Some(name), format!("value must be finite and >= 0, got {}", clip(c, 80))));
                }
                values.push(v);
            }
            rows.push((t, lineno, values));
            Ok(())
        }
    })?;
    if rows.is_empty() {
        let n = missing_times.len();
        let why = if n > 0 { format!(" ({n} rows with a missing value dropped)") } else { "".into() };
        return Err(err(0, None, format!("no data rows after the header{why}")));
    }
    let time_column = t_name.as_str();
    let mut report = TraceReport {
        rows: rows.len(),
        timestamp_column: t_name.clone(),
        timestamp_format: format_name(format).into(),
        missing_rows: missing_times.len(),
        ..Default::default()
    };
    report.policies = format!(
        "out_of_order: {:?}, duplicates: {:?}, gaps: {:?}, missing: {:?}, zero_runs: {:?}",
        policies.out_of_order, policies.duplicates, policies.gaps, policies.missing, policies.zero_runs
    );
    // Out-of-order rows.
    let mut max_t = f64::NEG_INFINITY;
    let mut kept = Vec::with_capacity(rows.len());
    for row in rows {
        if row.0 < max_t {
            report.out_of_order_rows += 1;
            match policies.out_of_order {
                OrderPolicy::Reject => {
                    return Err(err(
                        row.1,
                        Some(time_column),
                        format!("timestamp {} is earlier than a previous row's (policy Reject)", row.0),
                    ));
                }
                OrderPolicy::Drop => {
                    report.dropped_rows += 1;
                    continue;
                }
                OrderPolicy::Sort => {}
            }
        }
        max_t = max_t.max(row.0);
        kept.push(row);
    }
    kept.sort_by(|a, b| a.0.total_cmp(&b.0));
    // Duplicates.
    let mut times: Vec<f64> = Vec::with_capacity(kept.len());
    let mut lines: Vec<usize> = Vec::with_capacity(kept.len());
    let mut cols: Vec<Vec<f64>> = vec![Vec::with_capacity(kept.len()); columns.len()];
    let mut group = 1usize;
    for (t, lineno, values) in kept {
        if times.last() == Some(&t) {
            report.duplicate_rows += 1;
            group += 1;
            for (c, v) in cols.iter_mut().zip(values) {
                let last = c.last_mut().expect("a value");
                match policies.duplicates {
                    DuplicatePolicy::Reject => {
                        return Err(err(
                            lineno,
                            Some(time_column),
                            format!("timestamp {t} repeats a previous row's (policy Reject)"),
                        ));
                    }
                    DuplicatePolicy::Mean => *last += (v - *last) / group as f64,
                    DuplicatePolicy::Sum => *last += v,
                    DuplicatePolicy::First => {}
                    DuplicatePolicy::Last => *last = v,
                }
            }
        } else {
            group = 1;
            times.push(t);
            lines.push(lineno);
            for (c, v) in cols.iter_mut().zip(values) {
                c.push(v);
            }
        }
    }
    // The nominal interval: the (lower) median positive difference of every row's timestamp, those of rows
    // dropped as missing or in a run of zeros included (so that a trace with many holes keeps its interval).
    let nominal = {
        let mut all: Vec<f64> = times.iter().chain(&missing_times).copied().collect();
        all.sort_by(f64::total_cmp);
        all.dedup();
        let diffs = {
            let mut d: Vec<f64> = all.windows(2).map(|w| w[1] - w[0]).collect();
            d.sort_by(f64::total_cmp);
            d
        };
        if diffs.is_empty() { 1.0 } else { diffs[(diffs.len() - 1) / 2] }
    };
    // Runs of zeros and plateaus, over the merged rows.
    let runs = |same: &dyn Fn(usize, usize) -> bool, start_ok: &dyn Fn(usize) -> bool, min: usize| {
        let mut out: Vec<std::ops::Range<usize>> = Vec::new();
        let mut i = 0;
        while i < times.len() {
            if !start_ok(i) {
                i += 1;
                continue;
            }
            let mut j = i + 1;
            while j < times.len() && same(i, j) {
                j += 1;
            }
            if j - i >= min.max(1) {
                out.push(i..j);
            }
            i = j;
        }
        out
    };
    let all_zero = |i: usize| cols.iter().all(|c| c[i] == 0.0);
    let zero_runs = runs(&|_, j| all_zero(j), &all_zero, policies.min_zero_run);
    let plateaus = runs(&|i, j| cols.iter().all(|c| c[j] == c[i]), &|i| !all_zero(i), policies.min_plateau_run.max(2));
    let run_s = |r: &std::ops::Range<usize>| {
        let end = times.get(r.end).copied().unwrap_or(times[r.end - 1]);
        end - times[r.start]
    };
    report.zero_runs = zero_runs.len();
    report.zero_run_rows = zero_runs.iter().map(|r| r.len()).sum();
    report.longest_zero_run_s = zero_runs.iter().map(run_s).fold(0.0, f64::max);
    report.plateaus = plateaus.len();
    report.longest_plateau_s = plateaus.iter().map(run_s).fold(0.0, f64::max);
    if let Some(first) = zero_runs.first() {
        match policies.zero_runs {
            ZeroRunPolicy::Keep => {}
            ZeroRunPolicy::Refuse => {
                return Err(err(
                    lines[first.start],
                    None,
                    format!(
                        "a run of {} rows of zeros starts here (t = {}; {} runs, {} rows in all): an outage or a \
                         collector drop-out? (policy Refuse; Missing drops them, Keep replays them)",
                        first.len(),
                        times[first.start],
                        zero_runs.len(),
                        report.zero_run_rows
                    ),
                ));
            }
            ZeroRunPolicy::Missing => {
                let mut drop = vec![false; times.len()];
                for r in &zero_runs {
                    drop[r.clone()].iter_mut().for_each(|d| *d = true);
                }
                fn kept(v: &[f64], drop: &[bool]) -> Vec<f64> {
                    v.iter().zip(drop).filter(|(_, d)| !**d).map(|(x, _)| *x).collect()
                }
                times = kept(&times, &drop);
                cols = cols.iter().map(|c| kept(c, &drop)).collect();
                if times.is_empty() {
                    return Err(err(
                        0,
                        None,
                        "every row is in a run of zeros (policy Missing): nothing is left".into(),
                    ));
                }
            }
        }
    }
    for w in times.windows(2) {
        let d = w[1] - w[0];
        if d > 1.5 * nominal {
            report.gaps += 1;
            report.longest_gap_s = report.longest_gap_s.max(d);
            if policies.gaps == GapPolicy::Reject {
                return Err(err(0, Some(time_column), format!("gap of {d} s after t = {} (policy Reject)", w[0])));
            }
        }
    }
    report.nominal_interval_s = nominal;
    report.first_timestamp_s = times[0];
    report.span_s = times[times.len() - 1] + nominal - times[0];
    Ok(Trace { times_s: times, columns: cols, report })
}

/// The day, month and year of a date written `A/B/YYYY` (or with `.` or `-`; one- or two-digit `A` and `B`)
/// at the start of `ts`, and the rest of `ts` after it.
fn date_last_year(ts: &str) -> Option<([u32; 2], u32, &str)> {
    let ts = ts.trim();
    let end = ts.find([' ', 'T']).unwrap_or(ts.len());
    let (date, rest) = ts.split_at(end);
    let parts: Vec<&str> = date.split(['/', '.', '-']).collect();
    let digits = |p: &str| !p.is_empty() && p.len() <= 4 && p.bytes().all(|c| c.is_ascii_digit());
    if parts.len() != 3
        || !parts.iter().all(|p| digits(p))
        || parts[2].len() != 4
        || parts[0].len() > 2
        || parts[1].len() > 2
    {
        return None;
    }
    Some(([parts[0].parse().ok()?, parts[1].parse().ok()?], parts[2].parse().ok()?, rest))
}

/// A timestamp whose date is written day first (`day_first`) or month first, as unix seconds.
fn parse_date_first(ts: &str, day_first: bool) -> Option<f64> {
    let ([a, b], year, rest) = date_last_year(ts)?;
    let (day, month) = if day_first { (a, b) } else { (b, a) };
    parse_iso8601(&format!("{year:04}-{month:02}-{day:02}{rest}"))
}

/// What a timestamp that does not parse as ISO-8601 may be instead: a date written day or month first.
fn hint(ts: &str, format: TimestampFormat) -> &'static str {
    if format == TimestampFormat::Iso8601 && date_last_year(ts).is_some() {
        " (a date written day or month first: state which, `timestamp_format: DayFirst` or `MonthFirst`)"
    } else {
        ""
    }
}

fn format_name(f: TimestampFormat) -> &'static str {
    match f {
        TimestampFormat::Auto => "auto",
        TimestampFormat::Iso8601 => "ISO-8601",
        TimestampFormat::UnixSeconds => "unix-seconds",
        TimestampFormat::UnixMilliseconds => "unix-milliseconds",
        TimestampFormat::UnixMicroseconds => "unix-microseconds",
        TimestampFormat::UnixNanoseconds => "unix-nanoseconds",
        TimestampFormat::RelativeSeconds => "relative-seconds",
        TimestampFormat::DayFirst => "day-first",
        TimestampFormat::MonthFirst => "month-first",
    }
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
mod tests {
    use super::*;

    fn cols(c: &[&str]) -> Vec<String> {
        c.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn iso8601_variants() {
        assert_eq!(parse_iso8601("1970-01-01T00:00:00Z"), Some(0.0));
        assert_eq!(parse_iso8601("1995-07-01T04:00:00Z"), Some(804571200.0));
        assert_eq!(parse_iso8601("2014-02-14 14:30:00"), Some(1392388200.0));
        assert_eq!(parse_iso8601("2014-02-14T15:30:00+01:00"), Some(1392388200.0));
        assert_eq!(parse_iso8601("2014-02-14T14:30:00.25"), Some(1392388200.25));
        assert_eq!(parse_iso8601("2015-02-30T00:00:00"), None);
        assert_eq!(parse_iso8601("yesterday"), None);
        // The shorter and looser forms exporters write; the values are Python's
        // `datetime.fromisoformat(x).timestamp()` (UTC where no offset is given).
        for (x, unix_s) in [
            ("2024-01-01", 1704067200.0),
            ("2024-01-01T00:00Z", 1704067200.0),
            ("2024-01-01 13:45", 1704116700.0),
            ("2024-01-01T13:45:10.5+0130", 1704111310.5),
            ("2024-01-01T13:45:10-05", 1704134710.0),
            ("2024-01-01 00:00:00 +00:00", 1704067200.0),
            ("2024/01/01 13:45", 1704116700.0),
            ("2024-01-01 13:45:00 UTC", 1704116700.0),
        ] {
            assert_eq!(parse_iso8601(x), Some(unix_s), "{x}");
        }
        for x in
            ["2024-01-01T", "2024-01-01T13", "2024-01-01 13:45.5", "2024-01/01", "2024-01-01T13:45+25", "01/02/2024"]
        {
            assert_eq!(parse_iso8601(x), None, "{x}");
        }
        assert_eq!(civil_from_days(days_from_civil(2016, 2, 29)), (2016, 2, 29));
    }

    /// A collector drop-out: four rows of zeros in a busy series, and a stuck exporter repeating 7 for 12
    /// rows. Keep replays and counts them; Missing drops the zeros (the gap they leave is held at the last
    /// value); Refuse names the first zero row's line.
    #[test]
    fn runs_of_zeros_and_plateaus_are_counted_and_handled() {
        let mut text = String::from("timestamp,value\n");
        let mut v: Vec<f64> = (0..40).map(|k| 100.0 + k as f64).collect();
        v[10..14].fill(0.0); // rows at lines 12..=15
        v[20..32].fill(7.0);
        v[35] = 0.0; // a single zero is not a run
        for (k, x) in v.iter().enumerate() {
            text.push_str(&format!("{},{x}\n", k * 60));
        }
        let keep = parse_csv(&text, "timestamp", &cols(&["value"]), &TracePolicies::default()).unwrap();
        let r = &keep.report;
        assert_eq!((r.zero_runs, r.zero_run_rows, r.longest_zero_run_s), (1, 4, 240.0));
        assert_eq!((r.plateaus, r.longest_plateau_s), (1, 720.0));
        assert_eq!(keep.times_s.len(), 40);
        assert!(r.summary().contains("runs of zeros 1 (4 rows, longest 240 s)"), "{}", r.summary());
        let missing = TracePolicies { zero_runs: ZeroRunPolicy::Missing, ..Default::default() };
        let m = parse_csv(&text, "timestamp", &cols(&["value"]), &missing).unwrap();
        assert_eq!(m.times_s.len(), 36);
        assert_eq!((m.report.gaps, m.report.longest_gap_s), (1, 300.0));
        // Held at the last value before the drop-out (GapPolicy::Hold): the step 600..660 s replays 109.
        let held = resample(&m, 0, GapPolicy::Hold, 600.0, 1.0, 60.0, 1);
        assert_eq!(held, vec![109.0]);
        let refuse = TracePolicies { zero_runs: ZeroRunPolicy::Refuse, ..Default::default() };
        let e = parse_csv(&text, "timestamp", &cols(&["value"]), &refuse).unwrap_err();
        assert_eq!(e.line, 12, "{e}");
        assert!(e.message.contains("a run of 4 rows of zeros"), "{e}");
        let all_zero = "timestamp,value\n0,0\n60,0\n120,0\n";
        assert!(parse_csv(all_zero, "timestamp", &cols(&["value"]), &missing).is_err());
    }

    #[test]
    fn irregularities_are_counted_and_handled() {
        let text = "timestamp,value\n0,1\n60,2\n60,4\n120,3\n90,9\n600,5\n";
        let t = parse_csv(text, "timestamp", &cols(&["value"]), &TracePolicies::default()).unwrap();
        assert_eq!(t.report.out_of_order_rows, 1);
        assert_eq!(t.report.duplicate_rows, 1);
        assert_eq!(t.times_s, vec![0.0, 60.0, 90.0, 120.0, 600.0]);
        assert_eq!(t.columns[0], vec![1.0, 3.0, 9.0, 3.0, 5.0]);
        assert_eq!(t.report.nominal_interval_s, 30.0);
        assert_eq!(t.report.gaps, 2); // 0 -> 60 and 120 -> 600 exceed 1.5 · 30 s
        let reject = TracePolicies { out_of_order: OrderPolicy::Reject, ..Default::default() };
        let e = parse_csv(text, "timestamp", &cols(&["value"]), &reject).unwrap_err();
        assert_eq!(e.line, 6);
    }

    #[test]
    fn bad_cells_name_line_and_column() {
        let p = TracePolicies::default();
        for (text, line, needle) in [
            ("timestamp,value\n0,1\n1,-2\n", 3, "finite and >= 0"),
            ("timestamp,value\n0,1\n1,inf\n", 3, "finite and >= 0"),
            ("timestamp,value\n0,1\n1,nan\n", 3, "missing value ('nan'"),
            ("timestamp,value\n0,1\n1,\n", 3, "missing value (an empty cell"),
            ("timestamp,value\n0,abc\n", 2, "not a number"),
            ("timestamp,value\n2014-13-01 00:00:00,1\n", 2, "cannot parse timestamp"),
            ("timestamp,value\n03/04/2024 10:00,1\n", 2, "`timestamp_format: DayFirst` or `MonthFirst`"),
        ] {
            let e = parse_csv(text, "timestamp", &cols(&["value"]), &p).unwrap_err();
            assert_eq!(e.line, line, "{text}: {e}");
            assert!(e.to_string().contains(needle), "{e}");
        }
        let e = parse_csv("timestamp,value\n", "timestamp", &cols(&["value"]), &p).unwrap_err();
        assert!(e.message.contains("no data rows"));
        let e = parse_csv("timestamp,value\n0,1\n", "timestamp", &cols(&["cpu"]), &p).unwrap_err();
        assert!(e.to_string().contains("no such column; the header has: timestamp, value"), "{e}");
        let e = parse_csv("time,value\n0,1\n", "t", &cols(&["value"]), &p).unwrap_err();
        assert!(e.to_string().contains("column 't': no such column for the timestamps; the header has: time"), "{e}");
    }

    #[test]
    fn a_header_without_timestamp_has_its_first_column_read_as_the_timestamps() {
        let p = TracePolicies::default();
        let t = parse_csv("time,requests\n0,1\n60,2\n", DEFAULT_TIME_COLUMN, &cols(&["requests"]), &p).unwrap();
        assert_eq!((t.times_s.clone(), t.report.timestamp_column.as_str()), (vec![0.0, 60.0], "time"));
        assert!(t.report.summary().contains("(column 'time')"), "{}", t.report.summary());
        // Said where the first column is not a time.
        let e = parse_csv("host,requests\nweb-1,1\n", DEFAULT_TIME_COLUMN, &cols(&["requests"]), &p).unwrap_err();
        assert_eq!(e.column.as_deref(), Some("host"));
        assert!(e.message.contains("the first column, read as the timestamps: the header has no 'timestamp'"), "{e}");
        // Never a metric column, nor a column named otherwise than the default.
        assert!(parse_csv("requests,x\n1,2\n", DEFAULT_TIME_COLUMN, &cols(&["requests"]), &p).is_err());
        assert!(parse_csv("time,requests\n0,1\n", "ts", &cols(&["requests"]), &p).is_err());
    }

    #[test]
    fn unix_milli_micro_and_nanoseconds_are_told_apart_and_read_as_seconds() {
        let p = TracePolicies::default();
        for (scale, name) in
            [(1.0, "unix-seconds"), (1e3, "unix-milliseconds"), (1e6, "unix-microseconds"), (1e9, "unix-nanoseconds")]
        {
            let text = format!("timestamp,v\n{},1\n{},2\n", 1_700_000_000.0 * scale, 1_700_000_060.0 * scale);
            let t = parse_csv(&text, "timestamp", &cols(&["v"]), &p).unwrap();
            assert_eq!(t.report.timestamp_format, name);
            assert_eq!(t.times_s, vec![1_700_000_000.0, 1_700_000_060.0], "{name}");
            assert_eq!(t.report.nominal_interval_s, 60.0, "{name}");
        }
        // A stated format wins over the magnitude.
        let ms = TracePolicies { timestamp_format: TimestampFormat::UnixMilliseconds, ..p };
        let t = parse_csv("timestamp,v\n0,1\n500,2\n", "timestamp", &cols(&["v"]), &ms).unwrap();
        assert_eq!(t.times_s, vec![0.0, 0.5]);
        // Past the largest instant accepted, in any unit.
        let e = parse_csv("timestamp,v\n9e30,1\n", "timestamp", &cols(&["v"]), &p).unwrap_err();
        assert!(e.message.contains("as unix-nanoseconds"), "{e}");
    }

    #[test]
    fn dates_written_day_or_month_first_read_as_stated() {
        let text = "timestamp,v\n03/04/2024 10:00,1\n3.4.2024 10:01:30Z,2\n03-04-2024T10:03:00+01:00,3\n";
        let at = |f: TimestampFormat| {
            parse_csv(text, "timestamp", &cols(&["v"]), &TracePolicies { timestamp_format: f, ..Default::default() })
                .map(|t| t.times_s)
        };
        // 3 April and 4 March 2024, 10:00 UTC (Python: datetime(2024, 4, 3, 10, tzinfo=timezone.utc).timestamp()).
        let (april, march) = (1712138400.0, 1709546400.0);
        assert_eq!(at(TimestampFormat::DayFirst).unwrap(), vec![april - 3600.0 + 180.0, april, april + 90.0]);
        assert_eq!(at(TimestampFormat::MonthFirst).unwrap(), vec![march - 3600.0 + 180.0, march, march + 90.0]);
        // A day past 12 in the month's place is no date.
        let e = parse_csv(
            "timestamp,v\n13/01/2024,1\n",
            "timestamp",
            &cols(&["v"]),
            &TracePolicies { timestamp_format: TimestampFormat::MonthFirst, ..Default::default() },
        )
        .unwrap_err();
        assert!(e.message.contains("as month-first"), "{e}");
    }

    #[test]
    fn missing_values_are_refused_or_their_rows_dropped_and_filled_as_a_gap() {
        let text = "timestamp,a,b\n0,1,1\n60,,2\n120,3,NaN\n180,4,null\n240,5,5\n300,6,n/a\n";
        let e = parse_csv(text, "timestamp", &cols(&["a", "b"]), &TracePolicies::default()).unwrap_err();
        assert_eq!((e.line, e.column.as_deref()), (3, Some("a")));
        assert!(e.message.contains("missing: Drop"), "{e}");
        let drop = TracePolicies { missing: MissingPolicy::Drop, gaps: GapPolicy::Interpolate, ..Default::default() };
        let t = parse_csv(text, "timestamp", &cols(&["a", "b"]), &drop).unwrap();
        assert_eq!((t.report.rows, t.report.missing_rows), (2, 4));
        assert_eq!(t.times_s, vec![0.0, 240.0]);
        // The dropped rows still tell the nominal interval (60 s, not 240 s): the first row holds for one
        // interval, then a line runs from its value at 60 s to the next kept row's at 240 s, as across any gap.
        assert_eq!((t.report.nominal_interval_s, t.report.gaps), (60.0, 1));
        let r = resample(&t, 0, GapPolicy::Interpolate, 0.0, 1.0, 60.0, 5);
        let line = |at_s: f64| 1.0 + (at_s - 60.0) * 4.0 / 180.0;
        let want = [1.0, line(90.0), line(150.0), line(210.0), 5.0];
        assert!(r.iter().zip(want).all(|(a, b)| (a - b).abs() < 1e-12), "{r:?}");
        let e = parse_csv("timestamp,a\n0,\n60,NA\n", "timestamp", &cols(&["a"]), &drop).unwrap_err();
        assert!(e.message.contains("no data rows after the header (2 rows with a missing value dropped)"), "{e}");
    }

    #[test]
    fn resampling_averages_exactly() {
        // 10-s rows resampled to 30-s steps: means of three rows.
        let text = "t,v\n0,1\n10,2\n20,3\n30,4\n40,5\n50,6\n";
        let t = parse_csv(text, "t", &cols(&["v"]), &TracePolicies::default()).unwrap();
        assert_eq!(resample(&t, 0, GapPolicy::Hold, 0.0, 1.0, 30.0, 2), vec![2.0, 5.0]);
        // Time scale 0.5: the trace plays twice as fast; 15-s steps cover 30 trace-seconds.
        assert_eq!(resample(&t, 0, GapPolicy::Hold, 0.0, 0.5, 15.0, 2), vec![2.0, 5.0]);
        // A gap of 40 s after t=10 (nominal 10): Zero fills it, Interpolate draws a line.
        let g = parse_csv("t,v\n0,1\n10,1\n50,5\n60,5\n70,5\n", "t", &cols(&["v"]), &TracePolicies::default()).unwrap();
        assert_eq!(g.report.gaps, 1);
        assert_eq!(resample(&g, 0, GapPolicy::Zero, 0.0, 1.0, 10.0, 6), vec![1.0, 1.0, 0.0, 0.0, 0.0, 5.0]);
        // The row at 10 holds for one interval (to 20), then a line to 5 at 50.
        let lin = resample(&g, 0, GapPolicy::Interpolate, 0.0, 1.0, 10.0, 6);
        let want = [1.0, 1.0, 1.0 + 4.0 * 5.0 / 30.0, 3.0, 1.0 + 4.0 * 25.0 / 30.0, 5.0];
        assert!(lin.iter().zip(want).all(|(a, b)| (a - b).abs() < 1e-12), "{lin:?}");
    }
}
