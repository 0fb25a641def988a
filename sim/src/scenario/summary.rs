//! What a run returns: one [`MetricsRow`] per step and a [`RunSummary`] ([`RunOutput`]), by the definitions of
//! [`crate::metrics`] (in words in the module docs of [`crate::scenario`]), and the [`MetricBasis`] of a
//! scenario.
//!
//! What it is not: it does not compute the figures (that is `metrics`, from the step samples) nor run anything.

use serde::Serialize;

use super::config::{Fidelity, ScenarioConfig};
use super::shadow::ShadowSummary;
use crate::cluster::FleetCounters;
use crate::metrics::{MetricBasis, MetricsRow, PeriodMetrics};

impl MetricBasis {
    /// The basis of a scenario.
    pub fn of<C>(cfg: &ScenarioConfig<C>) -> MetricBasis {
        MetricBasis {
            mean_service_s: cfg.service.mean_service_s,
            cores_per_request: cfg.service.cores_per_request,
            memory_gib_per_request: cfg.service.memory_gib_per_request,
            network_mbit_per_request: cfg.service.network_mbit_per_request,
            slo_quantile: cfg.slo.latency_quantile,
            slo_threshold_s: cfg.slo.latency_threshold_s,
        }
    }
}

fn is_zero(x: &f64) -> bool {
    *x == 0.0
}

/// The summary of one run (definitions in the module docs).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RunSummary {
    /// Scenario name.
    pub scenario: String,
    /// Fidelity.
    pub fidelity: Fidelity,
    /// Run seed.
    pub seed: u64,
    /// Horizon, seconds.
    pub horizon_s: f64,
    /// Where scoring starts, seconds: the scenario's `history_s` (absent when 0, the whole run scored). Every
    /// figure below covers `[scored_from_s, horizon_s)` only.
    #[serde(skip_serializing_if = "is_zero")]
    pub scored_from_s: f64,
    /// The warm history's own figures, by the same definitions (absent without a history).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub history: Option<PeriodMetrics>,
    /// Step, seconds.
    pub step_s: f64,
    /// Controller.
    pub controller: String,
    /// Requests that arrived.
    pub requests: f64,
    /// Requests that completed.
    pub completions: f64,
    /// Requests that failed.
    pub failed_requests: f64,
    /// Requests still waiting in the queue at the horizon (never served within the run).
    pub unfinished_requests: f64,
    /// Total length of steps that violated the SLO, minutes.
    pub slo_violation_minutes: f64,
    /// (Slow completions + failed requests + unfinished requests) / requests. A request still waiting at the
    /// horizon counts as violating: it was not served within the run, and leaving it out would make the share
    /// *fall* as overload grows (the worse the overload, the more requests are still waiting). Requests in
    /// service at the horizon (at most one per server) count as neither.
    pub slo_violation_request_fraction: f64,
    /// Billed cost, USD.
    pub cost_usd: f64,
    /// The SLO-violation minutes at the scenario's `slo.violation_price_usd_per_min`, USD (absent without a
    /// price).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub slo_penalty_usd: Option<f64>,
    /// `cost_usd + slo_penalty_usd`: what the run cost in all, as the scenario prices violations (absent
    /// without a price).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total_cost_usd: Option<f64>,
    /// Instance-hours (live instances integrated over the run).
    pub instance_hours: f64,
    /// Over-provisioning integral, core-hours.
    pub over_provisioning_core_hours: f64,
    /// Under-provisioning integral, core-hours.
    pub under_provisioning_core_hours: f64,
    /// Instances ordered or removed by the controller.
    pub scaling_actions: u64,
    /// Median latency over the run, seconds.
    pub latency_p50_s: f64,
    /// p99 latency over the run, seconds.
    pub latency_p99_s: f64,
    /// Busy / READY server-seconds over the run.
    pub mean_utilisation: f64,
    /// Most live instances at once.
    pub max_instances: u32,
    /// Live instances at the end.
    pub final_instances: u32,
    /// Fleet counters (launched, cancelled, drained, failures, replacements, clipped).
    pub fleet: FleetCounters,
    /// Mean absolute one-step forecast error, cores (forecasting controllers; NaN otherwise).
    pub forecast_mae_cores: f64,
    /// Final realised coverage of forecast + margin (forecasting controllers; NaN otherwise).
    pub coverage: f64,
    /// Steps decided by the reactive fallback (too little history).
    pub fallback_steps: u64,
    /// What the shadow controller would have done, if the scenario has one.
    pub shadow: Option<ShadowSummary>,
    /// The scored period cut into consecutive time blocks ([`score_blocks`](crate::metrics::score_blocks)), each with its own figures by
    /// the same definitions: several test windows of one run, for confidence intervals over time where seeds
    /// of a deterministic trace replay measure only simulation noise.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub blocks: Vec<PeriodMetrics>,
}

/// The outcome of a run.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RunOutput {
    /// One row per control step.
    pub rows: Vec<MetricsRow>,
    /// The run summary.
    pub summary: RunSummary,
    /// Why the run failed, if it did: the controller's own account ([`Controller::fault`](crate::controller::Controller::fault),
    /// e.g. an external predictor that crashed), else the first step at which its model gave a non-finite value
    /// (see [`Diagnostics::non_finite_output`](crate::controller::Diagnostics)), as "step k (t = … s): …".
    #[serde(skip)]
    pub fault: Option<String>,
}

impl RunOutput {
    /// The first quantity that must be a number and is not (NaN or infinite), as "step k (t = … s):
    /// quantity = value" or "summary: quantity = value" ([`RunOutput::fault`] is checked apart). Forecast, margin,
    /// coverage, fine-tuning and shadow columns are NaN by definition where they do not apply and are not checked;
    /// every other column is.
    pub fn first_non_finite(&self) -> Option<String> {
        for (k, r) in self.rows.iter().enumerate() {
            let promised = [
                ("t_start_s", r.t_start_s),
                ("t_end_s", r.t_end_s),
                ("demand_rate_per_s", r.demand_rate_per_s),
                ("demand_cpu_cores", r.demand_cpu_cores),
                ("demand_memory_gib", r.demand_memory_gib),
                ("demand_storage_gib", r.demand_storage_gib),
                ("demand_network_gbps", r.demand_network_gbps),
                ("requests", r.requests),
                ("completions", r.completions),
                ("failed_requests", r.failed_requests),
                ("queued", r.queued),
                ("ready_cpu_cores", r.ready_cpu_cores),
                ("provisioning_cpu_cores", r.provisioning_cpu_cores),
                ("allocated_cpu_cores", r.allocated_cpu_cores),
                ("ready_memory_gib", r.ready_memory_gib),
                ("utilisation", r.utilisation),
                // Latencies of a step are NaN by definition when nothing completed in it.
                ("latency_p50_s", if r.completions > 0.0 { r.latency_p50_s } else { 0.0 }),
                ("latency_p95_s", if r.completions > 0.0 { r.latency_p95_s } else { 0.0 }),
                ("latency_p99_s", if r.completions > 0.0 { r.latency_p99_s } else { 0.0 }),
                ("slo_excess_s", r.slo_excess_s),
                ("cost_usd", r.cost_usd),
                ("over_provisioning_cores", r.over_provisioning_cores),
                ("under_provisioning_cores", r.under_provisioning_cores),
            ];
            if let Some((name, x)) = promised.iter().find(|(_, x)| !x.is_finite()) {
                return Some(format!("step {k} (t = {} s): {name} = {x}", r.t_start_s));
            }
        }
        let s = &self.summary;
        let promised = [
            ("requests", s.requests),
            ("completions", s.completions),
            ("failed_requests", s.failed_requests),
            ("slo_violation_minutes", s.slo_violation_minutes),
            ("slo_violation_request_fraction", s.slo_violation_request_fraction),
            ("cost_usd", s.cost_usd),
            ("slo_penalty_usd", s.slo_penalty_usd.unwrap_or(0.0)),
            ("instance_hours", s.instance_hours),
            ("over_provisioning_core_hours", s.over_provisioning_core_hours),
            ("under_provisioning_core_hours", s.under_provisioning_core_hours),
            ("unfinished_requests", s.unfinished_requests),
            ("latency_p50_s", if s.completions > 0.0 { s.latency_p50_s } else { 0.0 }),
            ("latency_p99_s", if s.completions > 0.0 { s.latency_p99_s } else { 0.0 }),
            ("mean_utilisation", s.mean_utilisation),
        ];
        promised.iter().find(|(_, x)| !x.is_finite()).map(|(name, x)| format!("summary: {name} = {x}"))
    }
}
