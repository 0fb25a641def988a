//! Reading a trace's CSV text ([`parse_csv`]): the header, the timestamp column and its format, each row's
//! values, then the declared policies on order, repeated timestamps, runs of zeros and gaps, every irregularity
//! counted in the [`TraceReport`].

use super::{
    DuplicatePolicy, GapPolicy, MAX_TIMESTAMP_S, MissingPolicy, OrderPolicy, TimestampFormat, Trace, TraceError,
    TracePolicies, TraceReport, ZeroRunPolicy, parse_iso8601, time_column_index,
};
use crate::input::clip;

/// Whether a cell is a missing value: empty, or `NaN`, `null`, `NA`, `N/A` or `None` in any case.
fn is_missing(cell: &str) -> bool {
    cell.is_empty() || ["nan", "null", "na", "n/a", "none"].iter().any(|m| cell.eq_ignore_ascii_case(m))
}

/// A [`TraceError`] at `line` (0: the file as a whole) and `column`.
fn err(line: usize, column: Option<&str>, message: String) -> TraceError {
    TraceError { line, column: column.map(String::from), message }
}

/// Rows as read from the text, before any policy: `(timestamp, line, values)`.
type Rows = Vec<(f64, usize, Vec<f64>)>;

/// What reading the text gives: the rows, the timestamps of rows dropped for a missing value (they still tell
/// the nominal interval), the timestamp column's name and the format its first row decided.
struct Read {
    rows: Rows,
    missing_times: Vec<f64>,
    time_column: String,
    format: TimestampFormat,
}

/// Parses a CSV text (RFC 4180 quoting, see [`crate::table`]): `time_column` and each of `columns`, with
/// `policies`. The steps, in order: `read` the rows, put them `in_order`, `merge_duplicates`, take the
/// `nominal_interval`, count and handle `zero_runs` and plateaus, and count `gaps`.
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
    let Read { rows, missing_times, time_column: t_name, format } = read(text, time_column, columns, policies)?;
    if rows.is_empty() {
        let n = missing_times.len();
        let why = if n > 0 { format!(" ({n} rows with a missing value dropped)") } else { "".into() };
        return Err(err(0, None, format!("no data rows after the header{why}")));
    }
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
    let kept = in_order(rows, policies.out_of_order, &t_name, &mut report)?;
    let Merged { mut times, lines, mut cols } =
        merge_duplicates(kept, columns.len(), policies.duplicates, &t_name, &mut report)?;
    let nominal = nominal_interval(&times, &missing_times);
    zero_runs(&mut times, &mut cols, &lines, policies, &mut report)?;
    gaps(&times, nominal, policies.gaps, &t_name, &mut report)?;
    report.nominal_interval_s = nominal;
    report.first_timestamp_s = times[0];
    report.span_s = times[times.len() - 1] + nominal - times[0];
    Ok(Trace { times_s: times, columns: cols, report })
}

/// Reads the header (the timestamp column and each of `columns`) and every row: its timestamp in the format
/// the first row decides (unless `policies` states one) and its values, each finite and >= 0; a row with a
/// missing value is dropped (its timestamp kept apart) or refused, as `policies.missing` says.
fn read(text: &str, time_column: &str, columns: &[String], policies: &TracePolicies) -> Result<Read, TraceError> {
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
    Ok(Read { rows, missing_times, time_column: t_name, format })
}

/// The rows in time order: a row earlier than a previous one is counted, then refused, dropped or sorted into
/// place as `policy` says.
fn in_order(rows: Rows, policy: OrderPolicy, time_column: &str, report: &mut TraceReport) -> Result<Rows, TraceError> {
    let mut max_t = f64::NEG_INFINITY;
    let mut kept = Vec::with_capacity(rows.len());
    for row in rows {
        if row.0 < max_t {
            report.out_of_order_rows += 1;
            match policy {
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
    Ok(kept)
}

/// The rows after merging repeated timestamps: the timestamps, each row's line, and each column's values.
struct Merged {
    times: Vec<f64>,
    lines: Vec<usize>,
    cols: Vec<Vec<f64>>,
}

/// Rows of one timestamp merged into one (counted; refused, averaged, summed, the first or the last kept, as
/// `policy` says): the timestamps, each row's line, and each column's values.
fn merge_duplicates(
    kept: Rows,
    n_columns: usize,
    policy: DuplicatePolicy,
    time_column: &str,
    report: &mut TraceReport,
) -> Result<Merged, TraceError> {
    let mut times: Vec<f64> = Vec::with_capacity(kept.len());
    let mut lines: Vec<usize> = Vec::with_capacity(kept.len());
    let mut cols: Vec<Vec<f64>> = vec![Vec::with_capacity(kept.len()); n_columns];
    let mut group = 1usize;
    for (t, lineno, values) in kept {
        if times.last() == Some(&t) {
            report.duplicate_rows += 1;
            group += 1;
            for (c, v) in cols.iter_mut().zip(values) {
                let last = c.last_mut().expect("a value");
                match policy {
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
    Ok(Merged { times, lines, cols })
}

/// The nominal interval: the (lower) median positive difference of every row's timestamp, those of rows dropped
/// as missing or in a run of zeros included (so that a trace with many holes keeps its interval).
fn nominal_interval(times: &[f64], missing_times: &[f64]) -> f64 {
    let mut all: Vec<f64> = times.iter().chain(missing_times).copied().collect();
    all.sort_by(f64::total_cmp);
    all.dedup();
    let diffs = {
        let mut d: Vec<f64> = all.windows(2).map(|w| w[1] - w[0]).collect();
        d.sort_by(f64::total_cmp);
        d
    };
    if diffs.is_empty() { 1.0 } else { diffs[(diffs.len() - 1) / 2] }
}

/// Runs of zeros (at least `min_zero_run` rows in which every column is 0) and plateaus (at least
/// `min_plateau_run` rows repeating one non-zero value), counted; the runs of zeros kept, refused or dropped as
/// missing, as `policies.zero_runs` says.
fn zero_runs(
    times: &mut Vec<f64>,
    cols: &mut Vec<Vec<f64>>,
    lines: &[usize],
    policies: &TracePolicies,
    report: &mut TraceReport,
) -> Result<(), TraceError> {
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
                *times = kept(times, &drop);
                *cols = cols.iter().map(|c| kept(c, &drop)).collect();
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
    Ok(())
}

/// Gaps longer than 1.5 nominal intervals, counted (the longest kept), or refused as `policy` says.
fn gaps(
    times: &[f64],
    nominal: f64,
    policy: GapPolicy,
    time_column: &str,
    report: &mut TraceReport,
) -> Result<(), TraceError> {
    for w in times.windows(2) {
        let d = w[1] - w[0];
        if d > 1.5 * nominal {
            report.gaps += 1;
            report.longest_gap_s = report.longest_gap_s.max(d);
            if policy == GapPolicy::Reject {
                return Err(err(0, Some(time_column), format!("gap of {d} s after t = {} (policy Reject)", w[0])));
            }
        }
    }
    Ok(())
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
