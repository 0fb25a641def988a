//! Trace CSV parsing and resampling: any bytes, any policies, any step. No panic; an accepted trace has
//! strictly increasing finite times and finite values >= 0, and resamples to finite values >= 0.
#![no_main]

use libfuzzer_sys::fuzz_target;
use prescale_sim::trace::{
    DEFAULT_TIME_COLUMN, DuplicatePolicy, GapPolicy, MissingPolicy, OrderPolicy, TimestampFormat, TracePolicies,
    ZeroRunPolicy, parse_csv, parse_iso8601, resample,
};

fuzz_target!(|data: &[u8]| {
    if data.len() < 3 {
        return;
    }
    let (knobs, rest) = data.split_at(3);
    let Ok(text) = std::str::from_utf8(rest) else { return };
    let _ = parse_iso8601(text);
    let policies = TracePolicies {
        timestamp_format: [
            TimestampFormat::Auto,
            TimestampFormat::Iso8601,
            TimestampFormat::UnixSeconds,
            TimestampFormat::RelativeSeconds,
            TimestampFormat::UnixMilliseconds,
            TimestampFormat::UnixMicroseconds,
            TimestampFormat::UnixNanoseconds,
            TimestampFormat::DayFirst,
            TimestampFormat::MonthFirst,
        ][knobs[0] as usize % 9],
        out_of_order: [OrderPolicy::Sort, OrderPolicy::Drop, OrderPolicy::Reject][knobs[1] as usize % 3],
        duplicates: [
            DuplicatePolicy::Mean,
            DuplicatePolicy::Sum,
            DuplicatePolicy::First,
            DuplicatePolicy::Last,
            DuplicatePolicy::Reject,
        ][(knobs[1] / 3) as usize % 5],
        gaps: [GapPolicy::Hold, GapPolicy::Interpolate, GapPolicy::Zero, GapPolicy::Reject][knobs[2] as usize % 4],
        missing: [MissingPolicy::Refuse, MissingPolicy::Drop][(knobs[2] / 16) as usize % 2],
        zero_runs: [ZeroRunPolicy::Keep, ZeroRunPolicy::Missing, ZeroRunPolicy::Refuse][(knobs[0] / 4) as usize % 3],
        min_zero_run: 1 + (knobs[0] / 12) as usize % 4,
        min_plateau_run: 2 + (knobs[1] / 15) as usize % 12,
    };
    // The named column, or the default one (a header without it has its first column read as the timestamps).
    let time_column = if (knobs[2] / 32) % 2 == 0 { "t" } else { DEFAULT_TIME_COLUMN };
    let Ok(trace) = parse_csv(text, time_column, &["v".to_string()], &policies) else { return };
    assert!(trace.times_s.windows(2).all(|w| w[0] < w[1]), "times strictly increase");
    assert!(trace.times_s.iter().all(|t| t.is_finite()));
    assert!(trace.columns[0].iter().all(|v| v.is_finite() && *v >= 0.0));
    let step_s = [1.0, 7.5, 60.0, 3600.0][(knobs[2] / 4) as usize % 4];
    let steps = ((trace.report.span_s / step_s).floor() as usize).min(10_000);
    if steps == 0 {
        return;
    }
    let gaps = policies.gaps;
    let xs = resample(&trace, 0, gaps, 0.0, 1.0, step_s, steps);
    assert_eq!(xs.len(), steps);
    // Sums of values near the largest double may overflow to inf (the scenario refuses such demand);
    // anything else must come out a number >= 0.
    let big = trace.columns[0].iter().any(|v| *v > 1e300);
    assert!(xs.iter().all(|x| (x.is_finite() || big) && *x >= 0.0), "{xs:?}");
});
