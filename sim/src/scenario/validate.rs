//! Validation of a scenario: every problem with its dotted path, and the size limits derived from what a run
//! would allocate (checked before any work starts).

use super::*;
use crate::validate::Interval;

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
        let mut p = Problems::new();
        self.check(&mut p);
        p.into_vec()
    }

    /// Checks the config into `p` (paths from the scenario's root).
    pub fn check(&self, p: &mut Problems) {
        if let Some(m) = crate::input::name_problem(&self.name) {
            p.add("name", m);
        }
        let step_ok = p.within("step_s", self.step_s, Interval::open_closed(0.0, 86400.0));
        match self.horizon_s {
            Some(h) if !(h.is_finite() && h > 0.0 && h <= MAX_HORIZON_S) => {
                p.add("horizon_s", format!("must be in (0, {MAX_HORIZON_S}] (400 days), got {h}"))
            }
            Some(h) if step_ok && ((h / self.step_s).round() * self.step_s - h).abs() > 1e-9 * h => {
                p.add("horizon_s", format!("must be a multiple of step_s ({}), got {h}", self.step_s))
            }
            Some(h) if step_ok && h < self.step_s => {
                p.add("horizon_s", format!("must be >= step_s ({}), got {h}", self.step_s))
            }
            Some(h) if step_ok && h / self.step_s > MAX_STEPS => p.add(
                "step_s",
                format!(
                    "{h} s in steps of {} s is {:.3e} steps, more than {MAX_STEPS:e}; use a longer step",
                    self.step_s,
                    h / self.step_s
                ),
            ),
            None if matches!(self.workload, WorkloadConfig::Synthetic { .. }) => {
                p.add("horizon_s", "required for a synthetic workload")
            }
            _ => {}
        }
        if p.non_negative("history_s", self.history_s)
            && step_ok
            && ((self.history_s / self.step_s).round() * self.step_s - self.history_s).abs() > 1e-9 * self.history_s
        {
            p.add("history_s", format!("must be a multiple of step_s ({}), got {}", self.step_s, self.history_s));
        }
        if let WorkloadConfig::Trace(t) = &self.workload
            && t.slice.is_some()
        {
            p.require("horizon_s", self.horizon_s.is_none(), || {
                "must be left out with a trace slice (the run lasts history_s plus the slice)".into()
            });
        }
        p.under("workload", |p| self.workload.check(p));
        p.under("service", |p| self.service.check(p));
        p.under("cluster", |p| self.cluster.check(p));
        if let Some(h) = self.horizon_s
            && let Some(m) = failures_problem(&self.cluster, h)
        {
            p.add("cluster.failures.mean_time_between_failures_s", m);
        }
        p.under("slo", |p| self.slo.check(p));
        p.under("controller", |p| self.check_controller(p, &self.controller));
        if let Some(shadow) = &self.shadow {
            p.under("shadow", |p| shadow.check(p, &self.cluster, self.step_s, self.horizon_s));
        }
    }

    /// Checks `controller` acting in this scenario into `p` (its parameters against the cluster, step and
    /// horizon, and against what the workload states; paths below the controller): what
    /// [`ScenarioConfig::problems`] reports under `controller.`, for any controller (an experiment checks its own
    /// controllers with it).
    pub fn check_controller(&self, p: &mut Problems, controller: &C) {
        controller.check(p, &self.cluster, self.step_s, self.horizon_s);
        controller.check_workload(p, self.stated_demand());
    }

    /// Which demands beyond the rate the workload states (trace columns of memory or network utilisation),
    /// which a forecasting controller must then plan too.
    pub fn stated_demand(&self) -> StatedDemand {
        let states = |kind: ResourceKind| {
            matches!(&self.workload, WorkloadConfig::Trace(t)
                if t.metrics.iter().any(|m| matches!(m.meaning, MetricMeaning::Utilisation { resource, .. } if resource == kind)))
        };
        StatedDemand { memory: states(ResourceKind::Memory), network: states(ResourceKind::Network) }
    }

    /// The problems of `controller` acting in this scenario, paths below the controller (see
    /// [`ScenarioConfig::check_controller`]).
    pub fn controller_problems(&self, controller: &C) -> Vec<Problem> {
        let mut p = Problems::new();
        self.check_controller(&mut p, controller);
        p.into_vec()
    }

    /// The run seed: `override_seed` if given, else the file's.
    pub fn seed_or(&self, override_seed: Option<u64>) -> u64 {
        override_seed.unwrap_or(self.seed)
    }

    /// What one request holds in service.
    pub fn per_request(&self) -> Resources {
        self.service.per_request()
    }

    /// What a controller of run `seed` is built from, over `demand` (this scenario's demand series for that
    /// seed).
    pub fn init_context<'a>(&'a self, demand: &'a DemandSeries, seed: u64) -> InitContext<'a> {
        InitContext {
            step_s: demand.step_s,
            demand,
            service: &self.service,
            cluster: &self.cluster,
            seed,
            slo: &self.slo,
        }
    }

    /// The fluid model's parameters: service time, per-request needs, SLO threshold.
    pub fn fluid_params(&self) -> FluidParams {
        FluidParams {
            mean_service_s: self.service.mean_service_s,
            per_request: self.per_request(),
            slo_threshold_s: self.slo.latency_threshold_s,
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

impl ServiceSpec {
    /// Checks the service into `p` (paths below `service`).
    pub fn check(&self, p: &mut Problems) {
        p.positive("mean_service_s", self.mean_service_s);
        p.positive("cores_per_request", self.cores_per_request);
        p.non_negative("memory_gib_per_request", self.memory_gib_per_request);
        p.non_negative("network_mbit_per_request", self.network_mbit_per_request);
    }
}

impl SloConfig {
    /// Checks the SLO into `p` (paths below `slo`).
    pub fn check(&self, p: &mut Problems) {
        let q = self.latency_quantile;
        p.require("latency_quantile", [0.5, 0.95, 0.99].contains(&q), || format!("must be 0.5, 0.95 or 0.99, got {q}"));
        p.positive("latency_threshold_s", self.latency_threshold_s);
        if let Some(price) = self.violation_price_usd_per_min {
            p.non_negative("violation_price_usd_per_min", price);
        }
    }
}

impl WorkloadConfig {
    /// Checks the workload into `p` (paths below `workload`).
    pub fn check(&self, p: &mut Problems) {
        match self {
            WorkloadConfig::Synthetic { base_rate_per_s, components } => {
                p.non_negative("base_rate_per_s", *base_rate_per_s);
                for (i, c) in components.iter().enumerate() {
                    p.under(&format!("components[{i}]"), |p| c.check(p));
                }
            }
            WorkloadConfig::Trace(t) => {
                p.require("path", !t.path.trim().is_empty(), || "must name a CSV file".into());
                p.positive("time_scale", t.time_scale);
                p.non_negative("amplitude_scale", t.amplitude_scale);
                p.non_negative("start_offset_s", t.start_offset_s);
                p.at_least("policies.min_zero_run", t.policies.min_zero_run as f64, 1.0, "");
                p.at_least("policies.min_plateau_run", t.policies.min_plateau_run as f64, 2.0, "");
                match &t.slice {
                    Some(TraceSlice::Fraction { from, to }) => {
                        p.within("slice.from", *from, Interval::closed_open(0.0, 1.0));
                        p.within("slice.to", *to, Interval::open_closed(0.0, 1.0));
                        p.require("slice.to", to > from, || format!("must be above slice.from ({from}), got {to}"));
                    }
                    Some(TraceSlice::Between { .. }) | None => {}
                }
                if t.slice.is_some() {
                    p.require("start_offset_s", t.start_offset_s == 0.0, || {
                        "must be left out with a slice (the slice says where the run starts)".into()
                    });
                }
                let mut rate_setters = 0;
                let mut seen = Vec::new();
                for (i, m) in t.metrics.iter().enumerate() {
                    let kind = match &m.meaning {
                        MetricMeaning::RequestsPerInterval | MetricMeaning::RequestsPerSecond => ResourceKind::Cpu,
                        MetricMeaning::Utilisation { resource, reference_capacity, .. } => {
                            p.positive(&format!("metrics[{i}].meaning.reference_capacity"), *reference_capacity);
                            *resource
                        }
                    };
                    if kind == ResourceKind::Cpu {
                        rate_setters += 1;
                    }
                    if seen.contains(&kind) {
                        p.add(
                            &format!("metrics[{i}]"),
                            format!("a second metric for {kind:?}: give each resource one column"),
                        );
                    }
                    seen.push(kind);
                }
                p.require("metrics", rate_setters == 1, || {
                    format!(
                        "exactly one metric must set the request rate (RequestsPerInterval, RequestsPerSecond or a \
                         Cpu Utilisation), found {rate_setters}"
                    )
                });
            }
        }
    }
}
