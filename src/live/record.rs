//! A simulated run as Prometheus data: `prescale run SCENARIO --record-live` writes, beside the run's results,
//! `live/observations.om` (every tick's observation as the inputs `prescale serve` queries, OpenMetrics text
//! for `promtool tsdb create-blocks-from openmetrics`), `live/decisions.csv` (what the controller decided at
//! each tick) and `live/serve.ron` (a serve config that queries exactly those series with the run's
//! controller, cluster, service and seed). Loading the data into Prometheus and running `prescale serve
//! live/serve.ron --replay FROM..TO` must give the decisions of `decisions.csv`: the proof that the controller
//! evaluated in simulation is the one that serves.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Result;
use prescale_sim::scenario::RecordedTick;

use super::config::{FailSafe, Mode, PrometheusConfig, Queries, ServeConfig};
use super::inputs::{LiveInputs, Setting, inputs_of};
use crate::files::scenario_io::Prepared;

/// The metric name a recorded input is stored under.
pub fn metric_name(input: &str) -> String {
    format!("prescale_sim_{input}")
}

/// The files of a recording, as text.
pub struct Recording {
    /// OpenMetrics text (ends with `# EOF`).
    pub openmetrics: String,
    /// The decisions, CSV.
    pub decisions_csv: String,
    /// The serve config, RON.
    pub serve_ron: String,
    /// First and last tick, Unix seconds.
    pub span_unix_s: (f64, f64),
    /// Ticks whose busy time has no exact preimage (their replay may differ in the last bit).
    pub inexact_ticks: usize,
}

/// The recording of a run of `p` with `seed` whose acting controller lived `ticks`.
pub fn recording(p: &Prepared, seed: u64, ticks: &[RecordedTick]) -> Recording {
    let cfg = &p.config;
    let step_s = p.demand.step_s;
    let setting = Setting::new(step_s, &cfg.cluster, &cfg.service);
    let st = cfg.cluster.scaling_index().expect("validated");
    let t0 = p.demand.start_unix_s;
    let labels = format!("scenario=\"{}\",seed=\"{seed}\"", cfg.name);
    let mut inexact_ticks = 0;
    let inputs: Vec<(f64, LiveInputs)> = ticks
        .iter()
        .map(|t| {
            let (x, exact) = inputs_of(&t.obs, &setting);
            inexact_ticks += !exact as usize;
            (t0 + t.obs.now_s, x)
        })
        .collect();
    type Field = (&'static str, fn(&LiveInputs) -> Option<f64>);
    let fields: [Field; 10] = [
        ("request_rate_per_s", |x| Some(x.request_rate_per_s)),
        ("ready_replicas", |x| Some(x.ready_replicas as f64)),
        ("pending_replicas", |x| Some(x.pending_replicas as f64)),
        ("draining_replicas", |x| Some(x.draining_replicas as f64)),
        ("busy_cpu_seconds", |x| x.busy_cpu_seconds),
        ("ready_capacity_cores", |x| x.ready_capacity_cores),
        ("queue_length", |x| x.queue_length),
        ("slow_fraction", |x| x.slow_fraction),
        ("memory_gib", |x| x.memory_gib),
        ("network_gbps", |x| x.network_gbps),
    ];
    let mut om = String::new();
    let mut present = Vec::new();
    for (name, get) in fields {
        if !inputs.iter().any(|(_, x)| get(x).is_some()) {
            continue;
        }
        present.push(name);
        let metric = metric_name(name);
        writeln!(om, "# TYPE {metric} gauge").expect("writing to memory");
        for (t, x) in &inputs {
            if let Some(v) = get(x) {
                // `{v:?}` is the shortest text that reads back as the same double.
                writeln!(om, "{metric}{{{labels}}} {v:?} {}", timestamp(*t)).expect("writing to memory");
            }
        }
    }
    om.push_str("# EOF\n");

    let csv = prescale_sim::table::write_rows(
        &DECISION_COLUMNS,
        ticks.iter().zip(&inputs).map(|(t, (t_unix, x))| {
            let n = t.decision.scaling_count(x.current_replicas(), st);
            decision_cells(*t_unix, t.obs.now_s, Some(x.current_replicas()), Some(n), t.diagnostics.as_ref())
        }),
    );

    let selector = |name: &str| format!("{}{{{labels}}}", metric_name(name));
    let has = |name: &str| present.contains(&name).then(|| selector(name));
    let serve = ServeConfig {
        name: cfg.name.clone(),
        prometheus: PrometheusConfig { url: "http://127.0.0.1:9090".into(), timeout_s: 5.0 },
        queries: Queries {
            request_rate_per_s: selector("request_rate_per_s"),
            ready_replicas: selector("ready_replicas"),
            pending_replicas: has("pending_replicas"),
            draining_replicas: has("draining_replicas"),
            busy_cpu_seconds: has("busy_cpu_seconds"),
            ready_capacity_cores: has("ready_capacity_cores"),
            queue_length: has("queue_length"),
            slow_fraction: has("slow_fraction"),
            memory_gib: has("memory_gib"),
            network_gbps: has("network_gbps"),
            latency_s: None,
        },
        interval_s: step_s,
        history_s: 0.0,
        service: cfg.service.clone(),
        cluster: cfg.cluster.clone(),
        slo: cfg.slo.clone(),
        controller: cfg.controller.clone(),
        mode: Mode::Act,
        listen: "127.0.0.1:8080".into(),
        grpc_listen: "127.0.0.1:8081".into(),
        fail_safe: FailSafe {
            max_input_age_s: 3.0 * step_s,
            grace_s: 5.0 * step_s,
            min_replicas: cfg.cluster.instance_types[st].min_count,
        },
        behavior: None,
        seed,
    };
    let body = serve.to_ron();
    let span = inputs.first().zip(inputs.last()).map_or((t0, t0), |(a, b)| (a.0, b.0));
    let serve_ron = format!(
        "// Written by `prescale run --record-live` for scenario {} (seed {seed}): replays the recorded run's\n\
         // observations (observations.om, loaded into Prometheus) through the same controller, without rate\n\
         // limits, so that `prescale serve serve.ron --replay {}..{}` decides as the run did (decisions.csv).\n{body}\n",
        cfg.name,
        timestamp(span.0),
        timestamp(span.1),
    );
    Recording { openmetrics: om, decisions_csv: csv, serve_ron, span_unix_s: span, inexact_ticks }
}

/// A Unix time as written in the recording: whole seconds without a fraction, else milliseconds.
pub fn timestamp(t: f64) -> String {
    if t.fract() == 0.0 { format!("{t:.0}") } else { format!("{t:.3}") }
}

/// The columns of `decisions.csv`, which the replay CSV starts with (the rate's loop, then each resource's).
pub const DECISION_COLUMNS: [&str; 13] = [
    "t_unix_s",
    "now_s",
    "current_replicas",
    "controller_replicas",
    "forecast_cpu_cores",
    "margin_cpu_cores",
    "coverage",
    "memory_forecast_gib",
    "memory_margin_gib",
    "memory_coverage",
    "network_forecast_gbps",
    "network_margin_gbps",
    "network_coverage",
];

/// The cells of [`DECISION_COLUMNS`] for one tick: when, the controller's clock, the current replicas and the
/// controller's answer (empty where unknown), and its diagnostics (the per-resource loops as in a run's
/// `timeseries.csv`; empty where the controller plans no such resource). The one writer of those columns, for
/// the recording and the replay.
pub fn decision_cells(
    t_unix_s: f64,
    now_s: f64,
    current_replicas: Option<u32>,
    controller_replicas: Option<u32>,
    d: Option<&prescale_sim::controller::Diagnostics>,
) -> Vec<String> {
    let n = |x: Option<u32>| x.map(|v| v.to_string()).unwrap_or_default();
    let mut cells = vec![
        timestamp(t_unix_s),
        now_s.to_string(),
        n(current_replicas),
        n(controller_replicas),
        cell(d.map(|d| d.forecast_cpu_cores)),
        cell(d.map(|d| d.margin_cpu_cores)),
        cell(d.map(|d| d.coverage)),
    ];
    for r in [d.and_then(|d| d.memory), d.and_then(|d| d.network)] {
        cells.extend([r.map(|r| r.forecast), r.map(|r| r.margin), r.map(|r| r.coverage)].map(cell));
    }
    cells
}

/// A float cell: the shortest text that reads back as the same double; empty when absent or not finite.
pub fn cell(x: Option<f64>) -> String {
    match x {
        Some(v) if v.is_finite() => format!("{v:?}"),
        _ => String::new(),
    }
}

/// Writes the recording into `dir` (created; each file atomically).
pub fn write_recording(dir: &Path, r: &Recording) -> Result<()> {
    std::fs::create_dir_all(dir)?;
    crate::files::results::write_atomically(&dir.join("observations.om"), &r.openmetrics)?;
    crate::files::results::write_atomically(&dir.join("decisions.csv"), &r.decisions_csv)?;
    crate::files::results::write_atomically(&dir.join("serve.ron"), &r.serve_ron)?;
    Ok(())
}
