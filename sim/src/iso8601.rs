//! Calendar arithmetic and ISO-8601 date-times, for trace timestamps and trace slices (re-exported by
//! [`crate::trace`]).

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's `days_from_civil`).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m as i64 + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

/// The date `(year, month, day)` of a day count since 1970-01-01 (inverse of [`days_from_civil`]).
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719468;
    let era = if z >= 0 { z } else { z - 146096 } / 146097;
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + (m <= 2) as i64, m, d)
}

/// Parses an ISO-8601 date or date-time into unix seconds (UTC unless an offset is given): `YYYY-MM-DD`
/// (midnight), then optionally `T` or a space, `HH:MM`, `:SS`, a fraction of a second, and an offset — `Z`,
/// `±HH:MM`, `±HHMM` or `±HH`, or `UTC`/`GMT`, optionally after a space. The date may also be written with `/`
/// (`YYYY/MM/DD`, year first, as spreadsheets export it). Dates that do not exist (2015-02-30) are refused.
pub fn parse_iso8601(s: &str) -> Option<f64> {
    let s = s.trim();
    // Every character of an ISO-8601 date-time is ASCII; checking this first also keeps the byte slicing
    // below on character boundaries.
    if !s.is_ascii() {
        return None;
    }
    let b = s.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let t = s.get(r)?;
        t.bytes().all(|c| c.is_ascii_digit()).then(|| t.parse().ok()).flatten()
    };
    if b.len() < 10 || !(b[4] == b'-' || b[4] == b'/') || b[7] != b[4] {
        return None;
    }
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (mut h, mut mi, mut se, mut frac) = (0, 0, 0, 0.0);
    let mut rest = &s[10..];
    if !rest.is_empty() {
        if !(b[10] == b'T' || b[10] == b' ') || b.len() < 16 || b[13] != b':' {
            return None;
        }
        (h, mi) = (num(11..13)?, num(14..16)?);
        rest = &s[16..];
        if let Some(r) = rest.strip_prefix(':') {
            se = num(17..19)?;
            rest = &r[2..];
            if let Some(r) = rest.strip_prefix('.') {
                let n = r.bytes().take_while(|c| c.is_ascii_digit()).count();
                if n == 0 {
                    return None;
                }
                frac = format!("0.{}", &r[..n]).parse().ok()?;
                rest = &r[n..];
            }
        }
    }
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    let offset_s = offset_s(rest.strip_prefix(' ').unwrap_or(rest))?;
    let days = days_from_civil(y, mo as u32, d as u32);
    // Reject dates like 2015-02-30 (they would silently roll over).
    if civil_from_days(days) != (y, mo as u32, d as u32) {
        return None;
    }
    Some((days * 86400 + h * 3600 + mi * 60 + se - offset_s) as f64 + frac)
}

/// A UTC offset, seconds east: empty, `Z`, `UTC` or `GMT` (0), `±HH:MM`, `±HHMM` or `±HH` (at most 18 h).
fn offset_s(o: &str) -> Option<i64> {
    if o.is_empty() || ["Z", "UTC", "GMT"].iter().any(|z| o.eq_ignore_ascii_case(z)) {
        return Some(0);
    }
    let sign = match o.as_bytes()[0] {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let digits = |t: &str| t.bytes().all(|c| c.is_ascii_digit()).then(|| t.parse::<i64>().ok()).flatten();
    let (oh, om) = match o.len() {
        3 => (digits(&o[1..3])?, 0),
        5 => (digits(&o[1..3])?, digits(&o[3..5])?),
        6 if o.as_bytes()[3] == b':' => (digits(&o[1..3])?, digits(&o[4..6])?),
        _ => return None,
    };
    (oh <= 18 && om <= 59).then_some(sign * (oh * 3600 + om * 60))
}
