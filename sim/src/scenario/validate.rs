//! Validation of a scenario: every problem with its dotted path, and the size limits derived from what a run
//! would allocate (checked before any work starts).

use super::*;

/// Highest request rate a run may be asked to serve, requests per second (a thousand times the busiest
/// services on Earth; far above it, sums of costs and latencies lose their precision or overflow).
pub const MAX_RATE_PER_S: f64 = 1e12;

/// The first step whose demand is not a finite number within [`MAX_RATE_PER_S`] (e.g. trace values near the
/// largest double times an amplitude scale), named by step, time and quantity.
pub(super) fn demand_problem(d: &DemandSeries, from_trace: bool) -> Option<Problem> {
    let path = if from_trace { "workload.amplitude_scale" } else { "workload" };
    let series = [
        ("request rate (per s)", Some(&d.rate_per_s)),
        ("memory demand (GiB)", d.memory_gib.as_ref()),
        ("storage demand (GiB)", d.storage_gib.as_ref()),
        ("network demand (Gbit/s)", d.network_gbps.as_ref()),
    ];
    for (what, xs) in series {
        let Some(xs) = xs else { continue };
        if let Some((k, x)) = xs.iter().enumerate().find(|(_, x)| !(x.is_finite() && **x <= MAX_RATE_PER_S)) {
            return Some(Problem {
                path: path.into(),
                message: format!(
                    "the {what} at step {k} (t = {} s) is {x:e}, not a finite number <= {MAX_RATE_PER_S:e}",
                    k as f64 * d.step_s
                ),
            });
        }
    }
    None
}

/// Why the failures of `cluster` over `horizon_s` would be too many to simulate, if they would.
pub(super) fn failures_problem(cluster: &ClusterConfig, horizon_s: f64) -> Option<String> {
    let n = cluster.expected_failures(horizon_s);
    (n > crate::cluster::MAX_EXPECTED_FAILURES).then(|| {
        format!(
            "up to {n:.3e} failures expected over {horizon_s} s (every type at max_count), more than {:e}; use a \
             longer mean time between failures",
            crate::cluster::MAX_EXPECTED_FAILURES
        )
    })
}

/// Most requests a request-level run may simulate (each is an event pair; every sojourn is kept).
pub const MAX_REQUEST_LEVEL_REQUESTS: f64 = 2e8;
/// Longest horizon, seconds (400 days).
pub const MAX_HORIZON_S: f64 = 400.0 * 86400.0;
/// Most control steps in one run (the per-step series are kept in memory).
pub const MAX_STEPS: f64 = 5e6;

impl<C: ControllerSpec> ScenarioConfig<C> {
    /// Every problem of the config itself (the trace file is checked by [`prepare`]).
    pub fn problems(&self) -> Vec<Problem> {
        let mut p = Vec::new();
        let mut add = |path: &str, message: String| p.push(Problem { path: path.to_string(), message });
        if let Some(m) = crate::input::name_problem(&self.name) {
            add("name", m);
        }
        let step_ok = self.step_s.is_finite() && self.step_s > 0.0 && self.step_s <= 86400.0;
        if !step_ok {
            add("step_s", format!("must be a number > 0 and <= 86400, got {}", self.step_s));
        }
        match self.horizon_s {
            Some(h) if !(h.is_finite() && h > 0.0 && h <= MAX_HORIZON_S) => {
                add("horizon_s", format!("must be a number > 0 and <= {MAX_HORIZON_S} (400 days), got {h}"))
            }
            Some(h) if step_ok && ((h / self.step_s).round() * self.step_s - h).abs() > 1e-9 * h => {
                add("horizon_s", format!("must be a multiple of step_s ({}), got {h}", self.step_s))
            }
            Some(h) if step_ok && h < self.step_s => {
                add("horizon_s", format!("must be at least step_s ({}), got {h}", self.step_s))
            }
            Some(h) if step_ok && h / self.step_s > MAX_STEPS => add(
                "step_s",
                format!(
                    "{h} s in steps of {} s is {:.3e} steps, more than {MAX_STEPS:e}; use a longer step",
                    self.step_s,
                    h / self.step_s
                ),
            ),
            None if matches!(self.workload, WorkloadConfig::Synthetic { .. }) => {
                add("horizon_s", "required for a synthetic workload".into())
            }
            _ => {}
        }
        match &self.workload {
            WorkloadConfig::Synthetic { base_rate_per_s, components } => {
                if !(base_rate_per_s.is_finite() && *base_rate_per_s >= 0.0) {
                    add("workload.base_rate_per_s", format!("must be a finite number >= 0, got {base_rate_per_s}"));
                }
                for (i, c) in components.iter().enumerate() {
                    for (f, m) in c.problems() {
                        add(&format!("workload.components[{i}].{f}"), m);
                    }
                }
            }
            WorkloadConfig::Trace(t) => {
                if t.path.trim().is_empty() {
                    add("workload.path", "must name a CSV file".into());
                }
                if !(t.time_scale.is_finite() && t.time_scale > 0.0) {
                    add("workload.time_scale", format!("must be a finite number > 0, got {}", t.time_scale));
                }
                if !(t.amplitude_scale.is_finite() && t.amplitude_scale >= 0.0) {
                    add("workload.amplitude_scale", format!("must be a finite number >= 0, got {}", t.amplitude_scale));
                }
                if !(t.start_offset_s.is_finite() && t.start_offset_s >= 0.0) {
                    add("workload.start_offset_s", format!("must be a finite number >= 0, got {}", t.start_offset_s));
                }
                let mut rate_setters = 0;
                let mut seen = Vec::new();
                for (i, m) in t.metrics.iter().enumerate() {
                    let kind = match &m.meaning {
                        MetricMeaning::RequestsPerInterval | MetricMeaning::RequestsPerSecond => ResourceKind::Cpu,
                        MetricMeaning::Utilisation { resource, reference_capacity, .. } => {
                            if !(reference_capacity.is_finite() && *reference_capacity > 0.0) {
                                add(
                                    &format!("workload.metrics[{i}].meaning.reference_capacity"),
                                    format!("must be a finite number > 0, got {reference_capacity}"),
                                );
                            }
                            *resource
                        }
                    };
                    if kind == ResourceKind::Cpu {
                        rate_setters += 1;
                    }
                    if seen.contains(&kind) {
                        add(
                            &format!("workload.metrics[{i}]"),
                            format!("a second metric for {kind:?}: give each resource one column"),
                        );
                    }
                    seen.push(kind);
                }
                if rate_setters != 1 {
                    add(
                        "workload.metrics",
                        format!(
                            "exactly one metric must set the request rate (RequestsPerInterval, RequestsPerSecond or \
                             a Cpu Utilisation), found {rate_setters}"
                        ),
                    );
                }
            }
        }
        let s = &self.service;
        if !(s.mean_service_s.is_finite() && s.mean_service_s > 0.0) {
            add("service.mean_service_s", format!("must be a finite number > 0, got {}", s.mean_service_s));
        }
        if !(s.cores_per_request.is_finite() && s.cores_per_request > 0.0) {
            add("service.cores_per_request", format!("must be a finite number > 0, got {}", s.cores_per_request));
        }
        if !(s.memory_gib_per_request.is_finite() && s.memory_gib_per_request >= 0.0) {
            add(
                "service.memory_gib_per_request",
                format!("must be a finite number >= 0, got {}", s.memory_gib_per_request),
            );
        }
        if !(s.network_mbit_per_request.is_finite() && s.network_mbit_per_request >= 0.0) {
            add(
                "service.network_mbit_per_request",
                format!("must be a finite number >= 0, got {}", s.network_mbit_per_request),
            );
        }
        for (path, m) in self.cluster.problems() {
            add(&format!("cluster.{path}"), m);
        }
        if let Some(h) = self.horizon_s
            && let Some(m) = failures_problem(&self.cluster, h)
        {
            add("cluster.failures.mean_time_between_failures_s", m);
        }
        if ![0.5, 0.95, 0.99].contains(&self.slo.latency_quantile) {
            add("slo.latency_quantile", format!("must be 0.5, 0.95 or 0.99, got {}", self.slo.latency_quantile));
        }
        if !(self.slo.latency_threshold_s.is_finite() && self.slo.latency_threshold_s > 0.0) {
            add(
                "slo.latency_threshold_s",
                format!("must be a finite number > 0, got {}", self.slo.latency_threshold_s),
            );
        }
        for (path, m) in self.controller_problems(&self.controller) {
            add(&format!("controller.{path}"), m);
        }
        if let Some(shadow) = &self.shadow {
            for (path, m) in shadow.problems(&self.cluster, self.step_s, self.horizon_s) {
                add(&format!("shadow.{path}"), m);
            }
        }
        p
    }

    /// The problems of `controller` acting in this scenario (its parameters against the cluster, step and
    /// horizon, and against what the workload states), as `(dotted path below the controller, message)`:
    /// what [`ScenarioConfig::problems`] reports under `controller.`, for any controller (an experiment checks
    /// its own controllers with it).
    pub fn controller_problems(&self, controller: &C) -> Vec<(String, String)> {
        let states_memory = matches!(&self.workload, WorkloadConfig::Trace(t)
            if t.metrics.iter().any(|m| matches!(m.meaning, MetricMeaning::Utilisation { resource: ResourceKind::Memory, .. })));
        let mut p = controller.problems(&self.cluster, self.step_s, self.horizon_s);
        p.extend(controller.workload_problems(states_memory));
        p
    }

    /// The run seed: `override_seed` if given, else the file's.
    pub fn seed_or(&self, override_seed: Option<u64>) -> u64 {
        override_seed.unwrap_or(self.seed)
    }

    /// What one request holds in service.
    pub fn per_request(&self) -> Resources {
        Resources {
            cpu_cores: self.service.cores_per_request,
            memory_gib: self.service.memory_gib_per_request,
            ..Resources::default()
        }
    }

    /// The CSV columns a trace workload reads.
    pub fn trace_columns(&self) -> Vec<String> {
        match &self.workload {
            WorkloadConfig::Trace(t) => t.metrics.iter().map(|m| m.column.clone()).collect(),
            WorkloadConfig::Synthetic { .. } => Vec::new(),
        }
    }
}
