//! Per-step measurements and the metrics derived from them.
//!
//! Both fidelities record one [`StepSample`] per control step: raw measurements over `(start_s, end_s]`.
//! Every derived metric (time-series columns [`MetricsRow`], run summary [`RunSummary`](crate::scenario::RunSummary), totals over a span
//! [`PeriodMetrics`]) is defined here, once, from them and the [`MetricBasis`] of a scenario; the definitions
//! in words are in the module docs of [`crate::scenario`].

use serde::{Deserialize, Serialize};

use crate::demand::DemandSeries;
use crate::resources::Resources;

/// Raw measurements over one control step `(start_s, end_s]`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StepSample {
    /// Start of the step, seconds.
    pub start_s: f64,
    /// End of the step, seconds.
    pub end_s: f64,
    /// Requests that arrived in the step (fluid: expected number).
    pub arrivals: f64,
    /// Requests that completed in the step (fluid: expected number).
    pub completions: f64,
    /// Requests that failed in the step (lost on a failed instance, or refused for lack of memory).
    pub failed: f64,
    /// Completions slower than the SLO threshold (fluid: expected number).
    pub slo_violations: f64,
    /// Busy server-seconds in the step.
    pub busy_server_s: f64,
    /// Usable READY server-seconds in the step.
    pub ready_server_s: f64,
    /// Latency (sojourn) quantiles of the step's completions; NaN when none completed.
    pub latency_p50_s: f64,
    /// See `latency_p50_s`.
    pub latency_p95_s: f64,
    /// See `latency_p50_s`.
    pub latency_p99_s: f64,
    /// Requests waiting at the end of the step.
    pub queued: f64,
    /// READY instances at the end of the step.
    pub ready_instances: u32,
    /// PROVISIONING instances at the end of the step.
    pub provisioning_instances: u32,
    /// DRAINING or TERMINATING instances at the end of the step.
    pub draining_instances: u32,
    /// Effective capacity of READY instances at the end of the step.
    pub ready_capacity: Resources,
    /// Capacity of PROVISIONING instances at the end of the step.
    pub provisioning_capacity: Resources,
    /// Billed cost so far, USD.
    pub cost_usd: f64,
    /// Live instance-seconds so far (the integral of live instances).
    pub instance_s: f64,
    /// Instances ordered or removed by the decision at the end of the step.
    pub scaling_actions: u32,
    /// What the controller reported after its decision at the end of the step (forecasting controllers).
    pub diagnostics: Option<crate::controller::Diagnostics>,
}

/// One row of `timeseries.csv` (definitions in the module docs).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MetricsRow {
    /// Step start, seconds.
    pub t_start_s: f64,
    /// Step end, seconds.
    pub t_end_s: f64,
    /// Request rate asked by the workload.
    pub demand_rate_per_s: f64,
    /// Offered load, cores.
    pub demand_cpu_cores: f64,
    /// Memory demand, GiB.
    pub demand_memory_gib: f64,
    /// Storage demand, GiB.
    pub demand_storage_gib: f64,
    /// Network demand, Gbit/s.
    pub demand_network_gbps: f64,
    /// Requests that arrived.
    pub requests: f64,
    /// Requests that completed.
    pub completions: f64,
    /// Requests that failed.
    pub failed_requests: f64,
    /// Requests waiting at the end of the step.
    pub queued: f64,
    /// READY instances.
    pub ready_instances: u32,
    /// PROVISIONING instances.
    pub provisioning_instances: u32,
    /// DRAINING or TERMINATING instances.
    pub draining_instances: u32,
    /// READY cores (effective).
    pub ready_cpu_cores: f64,
    /// PROVISIONING cores.
    pub provisioning_cpu_cores: f64,
    /// READY + PROVISIONING cores.
    pub allocated_cpu_cores: f64,
    /// READY memory (effective), GiB.
    pub ready_memory_gib: f64,
    /// Busy / READY server-seconds.
    pub utilisation: f64,
    /// Step latency quantiles, seconds.
    pub latency_p50_s: f64,
    /// See `latency_p50_s`.
    pub latency_p95_s: f64,
    /// See `latency_p50_s`.
    pub latency_p99_s: f64,
    /// 1 if the SLO was violated in the step.
    pub slo_violated: u8,
    /// How far the SLO quantile exceeded the threshold, seconds.
    pub slo_excess_s: f64,
    /// Billed cost so far, USD.
    pub cost_usd: f64,
    /// Capacity paid for beyond the offered load, cores.
    pub over_provisioning_cores: f64,
    /// Offered load beyond READY capacity, cores.
    pub under_provisioning_cores: f64,
    /// Instances ordered or removed at the end of the step.
    pub scaling_actions: u32,
    /// Demand forecast for this step, cores (forecasting controllers; NaN otherwise).
    pub forecast_cpu_cores: f64,
    /// `demand_cpu_cores − forecast_cpu_cores`.
    pub forecast_error_cores: f64,
    /// Safety margin added at the decision that ended this step, cores.
    pub margin_cpu_cores: f64,
    /// Realised coverage so far (fraction of steps with demand ≤ forecast + margin).
    pub coverage: f64,
    /// Mean absolute one-step forecast error (cores) over the fine-tuning window just before an online
    /// update of a learned predictor at the decision ending this step (NaN when none).
    pub fine_tune_mae_before_cores: f64,
    /// The same, just after the update.
    pub fine_tune_mae_after_cores: f64,
    /// Memory demand forecast for this step by the controller's own memory loop, GiB (NaN without one).
    pub memory_forecast_gib: f64,
    /// Safety margin the memory loop added at the decision that ended this step, GiB.
    pub memory_margin_gib: f64,
    /// The memory loop's realised coverage so far.
    pub memory_coverage: f64,
    /// Network demand forecast for this step by the controller's own network loop, Gbit/s (NaN without one).
    pub network_forecast_gbps: f64,
    /// Safety margin the network loop added at the decision that ended this step, Gbit/s.
    pub network_margin_gbps: f64,
    /// The network loop's realised coverage so far.
    pub network_coverage: f64,
    /// Shadow controller (if any): capacity it would have had allocated, cores.
    pub shadow_allocated_cpu_cores: f64,
    /// Shadow controller: capacity it would have had READY, cores.
    pub shadow_ready_cpu_cores: f64,
    /// Shadow controller: whether its READY capacity would have violated the SLO (empty without a shadow).
    pub shadow_slo_violated: Option<u8>,
    /// Shadow controller: cost of its allocation so far, USD.
    pub shadow_cost_usd: f64,
}

/// Sum from +0.0 (std's float `sum` starts at −0.0, which would print as "-0").
pub(crate) fn sum(xs: impl Iterator<Item = f64>) -> f64 {
    xs.fold(0.0, |a, x| a + x)
}

/// What the metric definitions need of a scenario besides its steps and demand: the service's per-request
/// needs and the SLO. Runs, sweeps, shadow mode and training rollouts all measure through it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MetricBasis {
    /// Mean service time, seconds.
    pub mean_service_s: f64,
    /// CPU cores per request in service.
    pub cores_per_request: f64,
    /// Memory per request in service, GiB.
    pub memory_gib_per_request: f64,
    /// Network per request, Mbit/s.
    pub network_mbit_per_request: f64,
    /// SLO latency quantile (0.5, 0.95 or 0.99).
    pub slo_quantile: f64,
    /// SLO latency threshold, seconds.
    pub slo_threshold_s: f64,
}

/// Totals over a span of steps, by the one definition of each metric (the same as [`RunSummary`](crate::scenario::RunSummary)'s): a step
/// violates the SLO when its latency quantile exceeds the threshold or its failed share exceeds the quantile's
/// allowance; over-provisioning is allocated (READY + PROVISIONING) CPU above demand, under-provisioning
/// demand above READY; the cost is what was billed within the span.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PeriodMetrics {
    /// Length of the steps that violated the SLO, minutes.
    pub slo_violation_minutes: f64,
    /// Billed cost within the span, USD.
    pub cost_usd: f64,
    /// Allocated CPU cores above demand, core-hours.
    pub over_provisioning_core_hours: f64,
    /// Demand above READY CPU cores, core-hours.
    pub under_provisioning_core_hours: f64,
}

impl PeriodMetrics {
    /// Adds another span's (or series') figures.
    pub fn add(&mut self, o: &PeriodMetrics) {
        self.slo_violation_minutes += o.slo_violation_minutes;
        self.cost_usd += o.cost_usd;
        self.over_provisioning_core_hours += o.over_provisioning_core_hours;
        self.under_provisioning_core_hours += o.under_provisioning_core_hours;
    }

    /// The violated minutes at `price_usd_per_min` (a scenario's `slo.violation_price_usd_per_min`), USD.
    pub fn penalty_usd(&self, price_usd_per_min: f64) -> f64 {
        price_usd_per_min * self.slo_violation_minutes
    }

    /// The bill plus [`PeriodMetrics::penalty_usd`]: what the span cost in all, as the scenario prices
    /// violations, USD.
    pub fn total_cost_usd(&self, price_usd_per_min: f64) -> f64 {
        self.cost_usd + self.penalty_usd(price_usd_per_min)
    }

    /// The totals of the metrics rows `rows` (consecutive steps; `cost_before_usd`: the cumulative cost at
    /// the end of the step before the first, 0 at the start of a run).
    pub fn of_rows(rows: &[MetricsRow], cost_before_usd: f64) -> PeriodMetrics {
        let dt_h = |r: &MetricsRow| (r.t_end_s - r.t_start_s) / 3600.0;
        PeriodMetrics {
            slo_violation_minutes: sum(rows.iter().filter(|r| r.slo_violated == 1).map(|r| dt_h(r) * 60.0)),
            cost_usd: rows.last().map_or(0.0, |r| (r.cost_usd - cost_before_usd).max(0.0)),
            over_provisioning_core_hours: sum(rows.iter().map(|r| r.over_provisioning_cores * dt_h(r))),
            under_provisioning_core_hours: sum(rows.iter().map(|r| r.under_provisioning_cores * dt_h(r))),
        }
    }

    /// The totals of steps `range` of a run's samples `steps` against `demand`.
    pub fn measure(
        basis: &MetricBasis,
        demand: &DemandSeries,
        steps: &[StepSample],
        range: std::ops::Range<usize>,
    ) -> PeriodMetrics {
        let range = range.start.min(steps.len())..range.end.min(steps.len());
        let before = range.start.checked_sub(1).map_or(0.0, |k| steps[k].cost_usd);
        let rows: Vec<MetricsRow> = range.clone().map(|k| row(basis, demand, k, &steps[k])).collect();
        PeriodMetrics::of_rows(&rows, before)
    }
}

/// The workload's side of a step's sample, as the model measured it over the step; the fleet adds its own
/// side ([`crate::cluster::Fleet::step_sample`]), so both fidelities record a [`StepSample`] by one code path.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StepLoad {
    /// Step start, seconds.
    pub start_s: f64,
    /// Step end, seconds.
    pub end_s: f64,
    /// Requests that arrived.
    pub arrivals: f64,
    /// Requests that completed.
    pub completions: f64,
    /// Requests that failed.
    pub failed: f64,
    /// Completions slower than the SLO threshold.
    pub slo_violations: f64,
    /// Busy server-seconds.
    pub busy_server_s: f64,
    /// Usable READY server-seconds.
    pub ready_server_s: f64,
    /// p50, p95 and p99 latency of the step's completions, seconds (NaN without completions).
    pub latency_s: [f64; 3],
    /// Requests waiting at the step's end.
    pub queued: f64,
    /// Instances ordered or removed by the decision at the end of the step.
    pub scaling_actions: u32,
}

/// The metrics row of step `k`: every per-step metric's one definition.
pub fn row(basis: &MetricBasis, demand: &DemandSeries, k: usize, s: &StepSample) -> MetricsRow {
    let rate = demand.rate_per_s[k];
    let busy_per_s = rate * basis.mean_service_s;
    let pick = |o: &Option<Vec<f64>>, default: f64| o.as_ref().map_or(default, |v| v[k]);
    let demand_cpu = busy_per_s * basis.cores_per_request;
    let q_latency = match basis.slo_quantile {
        0.5 => s.latency_p50_s,
        0.95 => s.latency_p95_s,
        _ => s.latency_p99_s,
    };
    let threshold = basis.slo_threshold_s;
    let failed_share = if s.arrivals > 0.0 { s.failed / s.arrivals } else { 0.0 };
    let violated = q_latency > threshold || failed_share > 1.0 - basis.slo_quantile;
    let allocated = s.ready_capacity.cpu_cores + s.provisioning_capacity.cpu_cores;
    MetricsRow {
        t_start_s: s.start_s,
        t_end_s: s.end_s,
        demand_rate_per_s: rate,
        demand_cpu_cores: demand_cpu,
        demand_memory_gib: pick(&demand.memory_gib, busy_per_s * basis.memory_gib_per_request),
        demand_storage_gib: pick(&demand.storage_gib, 0.0),
        demand_network_gbps: pick(&demand.network_gbps, rate * basis.network_mbit_per_request / 1000.0),
        requests: s.arrivals,
        completions: s.completions,
        failed_requests: s.failed,
        queued: s.queued,
        ready_instances: s.ready_instances,
        provisioning_instances: s.provisioning_instances,
        draining_instances: s.draining_instances,
        ready_cpu_cores: s.ready_capacity.cpu_cores,
        provisioning_cpu_cores: s.provisioning_capacity.cpu_cores,
        allocated_cpu_cores: allocated,
        ready_memory_gib: s.ready_capacity.memory_gib,
        utilisation: if s.ready_server_s > 0.0 { s.busy_server_s / s.ready_server_s } else { 0.0 },
        latency_p50_s: s.latency_p50_s,
        latency_p95_s: s.latency_p95_s,
        latency_p99_s: s.latency_p99_s,
        slo_violated: violated as u8,
        slo_excess_s: if q_latency > threshold { q_latency - threshold } else { 0.0 },
        cost_usd: s.cost_usd,
        over_provisioning_cores: (allocated - demand_cpu).max(0.0),
        under_provisioning_cores: (demand_cpu - s.ready_capacity.cpu_cores).max(0.0),
        scaling_actions: s.scaling_actions,
        forecast_cpu_cores: s.diagnostics.map_or(f64::NAN, |d| d.forecast_cpu_cores),
        forecast_error_cores: s.diagnostics.map_or(f64::NAN, |d| demand_cpu - d.forecast_cpu_cores),
        margin_cpu_cores: s.diagnostics.map_or(f64::NAN, |d| d.margin_cpu_cores),
        coverage: s.diagnostics.map_or(f64::NAN, |d| d.coverage),
        fine_tune_mae_before_cores: s.diagnostics.map_or(f64::NAN, |d| d.fine_tune_mae_before_cores),
        fine_tune_mae_after_cores: s.diagnostics.map_or(f64::NAN, |d| d.fine_tune_mae_after_cores),
        memory_forecast_gib: demand_loop(s, |d| d.memory, |l| l.forecast),
        memory_margin_gib: demand_loop(s, |d| d.memory, |l| l.margin),
        memory_coverage: demand_loop(s, |d| d.memory, |l| l.coverage),
        network_forecast_gbps: demand_loop(s, |d| d.network, |l| l.forecast),
        network_margin_gbps: demand_loop(s, |d| d.network, |l| l.margin),
        network_coverage: demand_loop(s, |d| d.network, |l| l.coverage),
        shadow_allocated_cpu_cores: f64::NAN,
        shadow_ready_cpu_cores: f64::NAN,
        shadow_slo_violated: None,
        shadow_cost_usd: f64::NAN,
    }
}

/// A figure of a stated demand's loop in the step's diagnostics (NaN when the controller has none).
fn demand_loop(
    s: &StepSample,
    which: fn(&crate::controller::Diagnostics) -> Option<crate::controller::DemandDiagnostics>,
    figure: fn(&crate::controller::DemandDiagnostics) -> f64,
) -> f64 {
    s.diagnostics.as_ref().and_then(which).as_ref().map_or(f64::NAN, figure)
}

/// The time blocks a scored period of `steps` steps of `step_s` seconds is cut into: one per whole day when
/// it spans two days or more (the last block takes the remainder), else four equal parts (none under eight
/// steps); the blocks are consecutive, cover every scored step, and differ in length by at most one day's
/// steps plus the remainder.
pub fn score_blocks(steps: usize, step_s: f64) -> Vec<std::ops::Range<usize>> {
    let days = steps as f64 * step_s / 86_400.0;
    if days >= 2.0 {
        let (b, per_day) = (days.floor() as usize, (86_400.0 / step_s).round() as usize);
        (0..b).map(|k| k * per_day..if k + 1 == b { steps } else { (k + 1) * per_day }).collect()
    } else if steps >= 8 {
        (0..4).map(|k| k * steps / 4..(k + 1) * steps / 4).collect()
    } else {
        Vec::new()
    }
}
