//! Per-step measurements and the metrics derived from them.
//!
//! Both fidelities record one [`StepSample`] per control step: raw measurements over `(start_s, end_s]`.
//! The definitions of every derived metric (time-series columns and run summary) are in
//! [`crate::scenario`], in one place.

use serde::Serialize;

use crate::cluster::Resources;

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
    /// Instances ordered or removed by the decision at the end of the step.
    pub scaling_actions: u32,
    /// What the controller reported after its decision at the end of the step (forecasting controllers).
    pub diagnostics: Option<crate::controller::Diagnostics>,
}
