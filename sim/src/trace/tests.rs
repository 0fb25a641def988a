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
    for x in ["2024-01-01T", "2024-01-01T13", "2024-01-01 13:45.5", "2024-01/01", "2024-01-01T13:45+25", "01/02/2024"] {
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
