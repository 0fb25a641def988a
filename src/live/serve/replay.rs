//! Reading the inputs from Prometheus over a range or at one time, warming a decider over its history window,
//! and `prescale serve --replay`: the same decider over a virtual clock, its ticks as CSV.

use std::collections::BTreeMap;

use anyhow::{Result, bail};

use crate::live::config::ServeConfig;
use crate::live::decider::{Counterfactual, Decider, Tick};
use crate::live::inputs::{Checked, RawInputs, check};
use crate::live::prom::{Prometheus, millis};
use crate::live::record::{DECISION_COLUMNS, decision_cells};

/// The inputs of every tick from `start` to `end` (Unix seconds, step `interval_s`), each checked.
///
/// # Errors
/// None: a query that fails makes every tick of the range fail with its cause (as a live tick would).
pub fn fetch_range(prom: &Prometheus, cfg: &ServeConfig, start: f64, end: f64) -> Vec<(f64, Checked)> {
    let step = cfg.interval_s;
    let series: Vec<_> = cfg.queries.named().into_iter().map(|(n, q)| (n, prom.range(q, start, end, step))).collect();
    let n = if end >= start { ((end - start) / step).round() as usize + 1 } else { 0 };
    (0..n)
        .map(|k| {
            let t = start + k as f64 * step;
            let raw: RawInputs = series
                .iter()
                .map(|(name, r)| (*name, r.as_ref().map(|m| m.get(&millis(t)).copied()).map_err(Clone::clone)))
                .collect();
            (t, check(&raw, t, cfg.fail_safe.max_input_age_s))
        })
        .collect()
}

/// The inputs as of `t` (instant queries).
pub fn fetch_at(prom: &Prometheus, cfg: &ServeConfig, t: f64) -> Checked {
    let raw: RawInputs = cfg.queries.named().into_iter().map(|(n, q)| (n, prom.instant(q, t))).collect();
    check(&raw, t, cfg.fail_safe.max_input_age_s)
}

/// The decider of `cfg` for a first served tick at `first_unix_s`, warmed over `history_s` before it.
/// Returns it with the number of history ticks it decided on.
pub fn warmed_decider(prom: &Prometheus, cfg: &ServeConfig, first_unix_s: f64) -> (Decider, usize) {
    let origin = first_unix_s - cfg.history_s - cfg.interval_s;
    let mut d = Decider::new(cfg, origin);
    let mut fed = 0;
    if cfg.history_s > 0.0 {
        for (t, c) in fetch_range(prom, cfg, first_unix_s - cfg.history_s, first_unix_s - cfg.interval_s) {
            if let Ok(x) = c.inputs {
                d.warm(t, &x);
                fed += 1;
            }
        }
    }
    (d, fed)
}

/// Replays `[from, to]` (Unix seconds): every tick as the live server would have decided it.
///
/// # Errors
/// Prometheus not reachable at all (a replay of nothing is refused rather than written as failed ticks).
pub fn replay(cfg: &ServeConfig, from: f64, to: f64) -> Result<Replay> {
    let prom = Prometheus::new(&cfg.prometheus.url, cfg.prometheus.timeout_s);
    if !prom.ready() {
        bail!("Prometheus at {} is not reachable or not ready (GET /-/ready)", cfg.prometheus.url);
    }
    let (mut d, history_ticks) = warmed_decider(&prom, cfg, from);
    let ticks = fetch_range(&prom, cfg, from, to).into_iter().map(|(t, c)| d.tick(t, c)).collect();
    Ok(Replay { ticks, history_ticks, counterfactual: d.counterfactual().clone() })
}

/// What a replay gives.
pub struct Replay {
    /// Every tick of the span.
    pub ticks: Vec<Tick>,
    /// History ticks the controller decided on before the span.
    pub history_ticks: usize,
    /// Shadow mode's counterfactual over the span (zeros when acting).
    pub counterfactual: Counterfactual,
}

/// The replay CSV: the recording's columns first (`decisions.csv` of `prescale run --record-live`, by the same
/// [`decision_cells`]), then what the server would have served and why a tick failed.
pub fn ticks_csv(ticks: &[Tick]) -> String {
    let header: Vec<&str> = DECISION_COLUMNS
        .iter()
        .copied()
        .chain(["recommended_replicas", "served_replicas", "available", "fault_kind", "fault"])
        .collect();
    let n = |x: Option<u32>| x.map(|v| v.to_string()).unwrap_or_default();
    prescale_sim::table::write_rows(
        &header,
        ticks.iter().map(|t| {
            let mut cells =
                decision_cells(t.t_unix_s, t.now_s, t.current_replicas, t.controller_replicas, t.diagnostics.as_ref());
            let fault = t.fault.as_ref();
            cells.extend([
                n(t.recommended_replicas),
                n(t.served_replicas),
                (t.available as u8).to_string(),
                fault.map_or("", |f| f.kind.label()).to_string(),
                fault.map(|f| f.message.clone()).unwrap_or_default(),
            ]);
            cells
        }),
    )
}

/// `FROM..TO` of `--replay`: Unix seconds or ISO-8601 instants.
pub fn parse_span(s: &str) -> Result<(f64, f64), String> {
    let bad = || {
        format!(
            "'{}': expected FROM..TO, each Unix seconds or an ISO-8601 instant (e.g. 2014-04-10T00:00:00Z), FROM <= TO",
            prescale_sim::input::clip(s, 60)
        )
    };
    let (a, b) = s.split_once("..").ok_or_else(bad)?;
    let one = |x: &str| {
        let x = x.trim();
        x.parse::<f64>().ok().filter(|v| v.is_finite()).or_else(|| prescale_sim::iso8601::parse_iso8601(x))
    };
    match (one(a), one(b)) {
        (Some(a), Some(b)) if a <= b => Ok((a, b)),
        _ => Err(bad()),
    }
}

/// Summary figures of a replay (for the command's output).
pub fn replay_summary(ticks: &[Tick]) -> BTreeMap<&'static str, usize> {
    let mut m = BTreeMap::new();
    m.insert("ticks", ticks.len());
    m.insert("failed", ticks.iter().filter(|t| t.fault.is_some()).count());
    m.insert("unavailable", ticks.iter().filter(|t| !t.available).count());
    m
}
