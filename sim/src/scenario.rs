//! Scenarios: the single description of a world to simulate, and how it is lived through.
//!
//! A [`ScenarioConfig`] (plain serde data, written in RON in `scenarios/`) names the workload, the service
//! (what a request costs), the cluster, the SLO, the controller, the control step, the horizon, the fidelity
//! and the seed. [`ScenarioConfig::problems`] lists *every* problem with its dotted path;
//! [`prepare`] turns a valid config (and its loaded trace, if it replays one) into a [`Prepared`] scenario
//! whose [`DemandSeries`] both fidelities share; [`run`] lives through it and derives the metrics.
//!
//! # Metrics (the one place they are defined)
//! Per control step `(t_start, t_end]` ([`MetricsRow`]):
//! * `demand_rate_per_s`: the workload's request rate; `demand_cpu_cores = rate · mean_service_s ·
//!   cores_per_request` (the offered load in cores); memory, storage and network demand are the trace's
//!   explicit columns where given, else `rate · mean_service_s · memory_gib_per_request`, 0, and
//!   `rate · network_mbit_per_request / 1000`.
//! * `ready_*`, `provisioning_*`: capacity of READY instances (warming ones at their reduced share) and of
//!   PROVISIONING ones at the end of the step; `allocated_cpu_cores = ready + provisioning`.
//! * `utilisation = busy server-seconds / READY server-seconds` over the step (busy time on DRAINING
//!   instances counts, as in REFERENCE_MODEL §4.5, so it can exceed 1 briefly while they finish).
//! * `latency_p50_s`, `latency_p95_s`, `latency_p99_s`: of the requests completing in the step
//!   (request-level: nearest rank of their sojourns; fluid: of the step's latency distribution).
//! * `slo_violated`: the latency at the SLO's quantile exceeds the threshold, or more than `1 − quantile` of
//!   the step's requests failed; `slo_excess_s = max(0, latency at the quantile − threshold)`.
//! * `cost_usd`: billed cost so far (billing granularity and minimum applied).
//! * `over_provisioning_cores = max(0, allocated − demand_cpu)` (capacity paid for beyond the offered
//!   load); `under_provisioning_cores = max(0, demand_cpu − ready)` (offered load beyond what can serve).
//!   Both can be positive at once: capacity ordered but not yet ready.
//! * `scaling_actions`: instances ordered or removed by the decision at the end of the step;
//!   `failed_requests`: lost on failed instances or refused for lack of memory.
//! * Forecasting controllers only (NaN otherwise): `forecast_cpu_cores`, the one-step-ahead forecast made
//!   for this step (as offered load in cores); `forecast_error_cores = demand_cpu_cores −
//!   forecast_cpu_cores`; `margin_cpu_cores`, the margin added at the decision ending the step; `coverage`,
//!   the fraction of steps so far whose demand stayed within forecast + margin.
//! * With a shadow controller (`shadow:`; empty otherwise): `shadow_allocated_cpu_cores` and
//!   `shadow_ready_cpu_cores`, the capacity its decisions would have allocated and had READY (READY = what it
//!   decided one mean provisioning delay earlier; removals take effect at once); `shadow_slo_violated`, whether
//!   that READY capacity would have missed the SLO at the step's rate (M/M/c); `shadow_cost_usd`, its
//!   allocation's price so far (per step, no billing minimum). Its decisions are made on the acting
//!   cluster's observations, as a shadow deployment's would be. The estimate ignores the backlog carried
//!   between steps and warm-up, so during an overload it is optimistic (a controller shadowing itself counts
//!   6 of its 9 violated minutes on `scenarios/flash-crowd.ron`).
//!
//! Run summary ([`RunSummary`]): `slo_violation_minutes` (total length of violated steps),
//! `slo_violation_request_fraction` ((slow completions + failed) / requests; fluid: expected numbers),
//! `cost_usd`, `over_/under_provisioning_core_hours` (integrals of the per-step values),
//! `scaling_actions`, `latency_p99_s` over the whole run (request-level: nearest rank of every completion;
//! fluid: quantile of the request-weighted mixture of the step distributions) and mean utilisation; for
//! forecasting controllers `forecast_mae_cores`, the final `coverage` and `fallback_steps` (decided by the
//! reactive fallback while history was short); with a shadow, [`ShadowSummary`]: its cost and SLO minutes,
//! and the minutes in which it would have prevented (acting violated, shadow not) or caused (the reverse) a
//! violation.

use serde::{Deserialize, Serialize};

use crate::cluster::{ClusterConfig, FleetCounters, Resources};
use crate::controller::{Controller, ReferenceHpa, Static};
use crate::demand::{Component, DemandSeries, PiecewiseArrivals, arrival_draws, synthetic_rates};
use crate::fluid::{FluidModel, FluidParams, FluidReport};
use crate::metrics::StepSample;
use crate::queueing::mixture_quantile;
use crate::rng::RunSeed;
use crate::service::{QueueDiscipline, ServiceConfig, ServiceModel};
use crate::stats::nearest_rank;
use crate::trace::{Trace, TracePolicies, TraceReport, resample};
use crate::workload::ExpServiceTimes;

fn one() -> f64 {
    1.0
}
fn default_seed() -> u64 {
    1
}
fn timestamp() -> String {
    "timestamp".into()
}

/// How requests are simulated.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Fidelity {
    /// Flows per control step with an Erlang C latency model (long traces).
    #[default]
    Fluid,
    /// Every request an event (exact queueing; mid-sized runs).
    RequestLevel,
}

/// What the workload is.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum WorkloadConfig {
    /// A synthetic rate curve: `base_rate_per_s · Π components` (see [`Component`]).
    Synthetic {
        /// Base rate, requests per second.
        base_rate_per_s: f64,
        /// Multiplicative components.
        #[serde(default)]
        components: Vec<Component>,
    },
    /// A replayed CSV trace.
    Trace(TraceWorkload),
}

/// A replayed trace and how its columns become demand.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TraceWorkload {
    /// CSV file (plain or `.gz`), relative to the scenario file.
    pub path: String,
    /// Name of the timestamp column.
    #[serde(default = "timestamp")]
    pub timestamp_column: String,
    /// Columns and what they mean.
    pub metrics: Vec<TraceMetric>,
    /// Timestamp format and irregularity policies.
    #[serde(default)]
    pub policies: TracePolicies,
    /// Simulated seconds per trace second (0.5 plays a day in 12 hours; rates are unchanged).
    #[serde(default = "one")]
    pub time_scale: f64,
    /// Multiplies every demand (what-if: "twice the traffic").
    #[serde(default = "one")]
    pub amplitude_scale: f64,
    /// Trace-seconds skipped at the start.
    #[serde(default)]
    pub start_offset_s: f64,
}

/// One trace column and its meaning.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TraceMetric {
    /// Column name.
    pub column: String,
    /// What its values are.
    pub meaning: MetricMeaning,
}

/// A resource.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ResourceKind {
    /// CPU cores.
    Cpu,
    /// Memory, GiB.
    Memory,
    /// Storage, GiB.
    Storage,
    /// Network, Gbit/s.
    Network,
}

/// What a trace column's values are.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum MetricMeaning {
    /// Requests counted per row (per nominal interval): rate = value / interval.
    RequestsPerInterval,
    /// Requests per second.
    RequestsPerSecond,
    /// Utilisation of a reference capacity: demand = value (÷ 100 if `percent`) · `reference_capacity`, in
    /// the resource's unit. CPU demand sets the request rate (`cores / (mean_service_s · cores_per_request)`).
    Utilisation {
        /// Which resource.
        resource: ResourceKind,
        /// Values are percentages (0–100) rather than fractions.
        percent: bool,
        /// Capacity that 100 % means, in the resource's unit.
        reference_capacity: f64,
    },
}

/// What one request costs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceSpec {
    /// Mean service time on one server (exponential), seconds.
    pub mean_service_s: f64,
    /// CPU cores a request holds in service.
    #[serde(default = "one")]
    pub cores_per_request: f64,
    /// Memory a request holds in service, GiB (0: memory does not limit concurrency).
    #[serde(default)]
    pub memory_gib_per_request: f64,
    /// Network bandwidth per request per second of rate, Mbit.
    #[serde(default)]
    pub network_mbit_per_request: f64,
}

/// The service-level objective.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SloConfig {
    /// Latency quantile the SLO is about: 0.5, 0.95 or 0.99.
    pub latency_quantile: f64,
    /// Latency that quantile must not exceed, seconds.
    pub latency_threshold_s: f64,
}

/// The autoscaler, by name with its parameters: the simulator's own two (the agents crate has the full set).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum ControllerConfig {
    /// A fixed allocation.
    Static(Static),
    /// The HPA-style rule of REFERENCE_MODEL §4.5.
    ReferenceHpa(ReferenceHpa),
}

/// What a controller may know when it is built: the run's setting (and, for an oracle, the true demand).
pub struct InitContext<'a> {
    /// Control interval, seconds.
    pub step_s: f64,
    /// The demand series (the future: only an oracle may read it).
    pub demand: &'a DemandSeries,
    /// What a request costs.
    pub service: &'a ServiceSpec,
    /// The cluster.
    pub cluster: &'a ClusterConfig,
    /// The run seed.
    pub seed: u64,
    /// The service-level objective.
    pub slo: &'a SloConfig,
}

/// The controller part of a scenario: plain serde data that validates itself and builds the runtime
/// controller. `prescale-sim` implements it for [`ControllerConfig`] (its own two controllers); the agents
/// crate implements it for the full set, so that scenarios name any controller without this crate knowing
/// them.
pub trait ControllerSpec: Clone + std::fmt::Debug + PartialEq + Serialize + for<'de> Deserialize<'de> {
    /// Problems as `(path below "controller", message)`; the cluster, step and horizon give the setting.
    fn problems(&self, cluster: &ClusterConfig, step_s: f64, horizon_s: Option<f64>) -> Vec<(String, String)>;
    /// A short name for reports.
    fn name(&self) -> String;
    /// The runtime controller.
    fn init(&self, ctx: &InitContext<'_>) -> Box<dyn Controller>;
    /// Makes file paths in the config (model directories) absolute, relative to `base` (the folder of the file
    /// that names them); called before validation. Nothing by default.
    fn resolve_paths(&mut self, _base: &std::path::Path) {}
    /// Problems that depend on what the workload states (`states_memory`: the workload gives an explicit
    /// memory demand, which a forecasting controller must also forecast). None by default.
    fn workload_problems(&self, _states_memory: bool) -> Vec<(String, String)> {
        Vec::new()
    }
}

impl ControllerSpec for ControllerConfig {
    fn name(&self) -> String {
        match self {
            ControllerConfig::Static(_) => "static".into(),
            ControllerConfig::ReferenceHpa(_) => "reference-hpa".into(),
        }
    }

    fn problems(&self, cluster: &ClusterConfig, _step_s: f64, _horizon_s: Option<f64>) -> Vec<(String, String)> {
        match self {
            ControllerConfig::Static(c) => {
                c.problems(cluster.scaling_index().map(|i| cluster.instance_types[i].max_count))
            }
            ControllerConfig::ReferenceHpa(c) => c.problems(),
        }
    }

    fn init(&self, _ctx: &InitContext<'_>) -> Box<dyn Controller> {
        match self {
            ControllerConfig::Static(c) => Box::new(c.clone()),
            ControllerConfig::ReferenceHpa(c) => Box::new(c.clone()),
        }
    }
}

/// A scenario file (`Scenario(…)` in RON), generic over the controller part (see [`ControllerSpec`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename = "Scenario", bound(deserialize = "C: ControllerSpec"))]
pub struct ScenarioConfig<C = ControllerConfig> {
    /// Name (letters, digits, `.`, `_`, `-`): results go to `results/<name>/`.
    pub name: String,
    /// What the scenario is about.
    #[serde(default)]
    pub description: String,
    /// Default seed (`prescale run --seed` overrides it).
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// Length of the run, seconds (a multiple of `step_s`); for a trace, defaults to the trace's length.
    #[serde(default)]
    pub horizon_s: Option<f64>,
    /// Control interval and metrics step, seconds.
    pub step_s: f64,
    /// Fluid or request-level.
    #[serde(default)]
    pub fidelity: Fidelity,
    /// The workload.
    pub workload: WorkloadConfig,
    /// What a request costs.
    pub service: ServiceSpec,
    /// The cluster.
    pub cluster: ClusterConfig,
    /// The SLO.
    pub slo: SloConfig,
    /// The autoscaler.
    pub controller: C,
    /// A controller run in shadow (forecast-only): it sees every observation of the acting controller's
    /// cluster but never acts; the run reports what it would have allocated and cost, and where it would
    /// have prevented or caused SLO violations (see [`ShadowSummary`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shadow: Option<C>,
}

/// One problem of a scenario, with its dotted path (`cluster.instance_types[1].price_usd_per_hour`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// Dotted path of the field.
    pub path: String,
    /// What is wrong and what was expected.
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// Highest request rate a run may be asked to serve, requests per second (a thousand times the busiest
/// services on Earth; far above it, sums of costs and latencies lose their precision or overflow).
pub const MAX_RATE_PER_S: f64 = 1e12;

/// The first step whose demand is not a finite number within [`MAX_RATE_PER_S`] (e.g. trace values near the
/// largest double times an amplitude scale), named by step, time and quantity.
fn demand_problem(d: &DemandSeries, from_trace: bool) -> Option<Problem> {
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
fn failures_problem(cluster: &ClusterConfig, horizon_s: f64) -> Option<String> {
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
        let states_memory = matches!(&self.workload, WorkloadConfig::Trace(t)
            if t.metrics.iter().any(|m| matches!(m.meaning, MetricMeaning::Utilisation { resource: ResourceKind::Memory, .. })));
        for (path, m) in self.controller.problems(&self.cluster, self.step_s, self.horizon_s) {
            add(&format!("controller.{path}"), m);
        }
        for (path, m) in self.controller.workload_problems(states_memory) {
            add(&format!("controller.{path}"), m);
        }
        if let Some(shadow) = &self.shadow {
            for (path, m) in shadow.problems(&self.cluster, self.step_s, self.horizon_s) {
                add(&format!("shadow.{path}"), m);
            }
        }
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

/// A scenario ready to run: valid config and its demand series.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(bound(serialize = "C: ControllerSpec"))]
pub struct Prepared<C = ControllerConfig> {
    /// The config, with `horizon_s` resolved.
    pub config: ScenarioConfig<C>,
    /// Demand per step (seed-dependent for random synthetic components).
    pub demand: DemandSeries,
    /// What loading the trace found, if the workload is a trace.
    pub trace_report: Option<TraceReport>,
}

/// Validates `config` and builds its demand for run `seed`; `trace` must be the loaded trace for a trace
/// workload (columns in the order of [`ScenarioConfig::trace_columns`]).
///
/// # Errors
/// Every problem found, with its path.
pub fn prepare<C: ControllerSpec>(
    mut config: ScenarioConfig<C>,
    trace: Option<&Trace>,
    seed: u64,
) -> Result<Prepared<C>, Vec<Problem>> {
    let mut problems = config.problems();
    if !problems.is_empty() {
        return Err(problems);
    }
    let step = config.step_s;
    let demand = match (&config.workload, trace) {
        (WorkloadConfig::Synthetic { base_rate_per_s, components }, _) => {
            let steps = (config.horizon_s.expect("validated") / step).round() as usize;
            DemandSeries {
                step_s: step,
                rate_per_s: synthetic_rates(*base_rate_per_s, components, step, steps, RunSeed(seed)),
                ..DemandSeries::default()
            }
        }
        (WorkloadConfig::Trace(t), Some(trace)) => {
            let available_s = (trace.report.span_s - t.start_offset_s) * t.time_scale;
            let max_steps = (available_s / step + 1e-9).floor().max(0.0) as usize;
            let steps = match config.horizon_s {
                Some(h) => {
                    let want = (h / step).round() as usize;
                    if want > max_steps {
                        problems.push(Problem {
                            path: "horizon_s".into(),
                            message: format!(
                                "{h} s exceeds the trace: {available_s} s available after start_offset_s and time_scale"
                            ),
                        });
                    }
                    want
                }
                None if available_s > MAX_HORIZON_S || available_s / step > MAX_STEPS => {
                    return Err(vec![Problem {
                        path: "workload.time_scale".into(),
                        message: format!(
                            "the trace lasts {available_s:.4e} simulated s ({:.3e} steps of {step} s), more than 400 days or \
                             {MAX_STEPS:e} steps; set horizon_s or a smaller time_scale",
                            available_s / step
                        ),
                    }]);
                }
                None => max_steps,
            };
            if steps == 0 {
                problems.push(Problem {
                    path: "workload.path".into(),
                    message: format!("the trace covers {available_s} s, less than one step of {step} s"),
                });
            }
            if !problems.is_empty() {
                return Err(problems);
            }
            config.horizon_s = Some(steps as f64 * step);
            trace_demand(t, trace, &config.service, step, steps)
        }
        (WorkloadConfig::Trace(_), None) => {
            return Err(vec![Problem { path: "workload.path".into(), message: "the trace was not loaded".into() }]);
        }
    };
    if let Some(m) = failures_problem(&config.cluster, demand.steps() as f64 * step) {
        return Err(vec![Problem { path: "cluster.failures.mean_time_between_failures_s".into(), message: m }]);
    }
    if let Some(p) = demand_problem(&demand, matches!(config.workload, WorkloadConfig::Trace(_))) {
        return Err(vec![p]);
    }
    if config.fidelity == Fidelity::RequestLevel && demand.expected_requests() > MAX_REQUEST_LEVEL_REQUESTS {
        return Err(vec![Problem {
            path: "fidelity".into(),
            message: format!(
                "RequestLevel would simulate about {:.2e} requests (at most {MAX_REQUEST_LEVEL_REQUESTS:e}); use Fluid \
                 or a shorter horizon_s",
                demand.expected_requests()
            ),
        }]);
    }
    Ok(Prepared { trace_report: trace.map(|t| t.report.clone()), config, demand })
}

fn trace_demand(t: &TraceWorkload, trace: &Trace, service: &ServiceSpec, step: f64, steps: usize) -> DemandSeries {
    let mut d = DemandSeries {
        step_s: step,
        start_unix_s: trace.report.first_timestamp_s + t.start_offset_s,
        ..DemandSeries::default()
    };
    for (col, m) in t.metrics.iter().enumerate() {
        let mut v = resample(trace, col, t.policies.gaps, t.start_offset_s, t.time_scale, step, steps);
        for x in v.iter_mut() {
            *x *= t.amplitude_scale;
        }
        match &m.meaning {
            MetricMeaning::RequestsPerInterval => {
                let per = 1.0 / trace.report.nominal_interval_s;
                d.rate_per_s = v.into_iter().map(|x| x * per).collect();
            }
            MetricMeaning::RequestsPerSecond => d.rate_per_s = v,
            MetricMeaning::Utilisation { resource, percent, reference_capacity } => {
                let k = reference_capacity / if *percent { 100.0 } else { 1.0 };
                let amount: Vec<f64> = v.into_iter().map(|x| x * k).collect();
                match resource {
                    ResourceKind::Cpu => {
                        let per_core = 1.0 / (service.mean_service_s * service.cores_per_request);
                        d.rate_per_s = amount.into_iter().map(|c| c * per_core).collect();
                    }
                    ResourceKind::Memory => d.memory_gib = Some(amount),
                    ResourceKind::Storage => d.storage_gib = Some(amount),
                    ResourceKind::Network => d.network_gbps = Some(amount),
                }
            }
        }
    }
    d
}

/// What a shadow controller would have done (definitions in the module docs).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ShadowSummary {
    /// The shadow controller.
    pub controller: String,
    /// What its allocation would have cost, USD (billed per step, no minimum).
    pub cost_usd: f64,
    /// Minutes in which its capacity would have violated the SLO (M/M/c estimate).
    pub slo_violation_minutes: f64,
    /// Minutes the acting controller violated the SLO and the shadow would not have.
    pub prevented_minutes: f64,
    /// Minutes the shadow would have violated the SLO and the acting controller did not.
    pub caused_minutes: f64,
}

/// The acting controller with a shadow beside it: the shadow decides on every observation, its decisions are
/// logged, and only the acting controller's decision is carried out.
struct Shadowed {
    acting: Box<dyn Controller>,
    shadow: Box<dyn Controller>,
    log: std::sync::Arc<std::sync::Mutex<Vec<crate::controller::ScaleDecision>>>,
}

impl Controller for Shadowed {
    fn name(&self) -> &str {
        self.acting.name()
    }
    fn decide(&mut self, obs: &crate::controller::Observation) -> crate::controller::ScaleDecision {
        let s = self.shadow.decide(obs);
        self.log.lock().expect("not poisoned").push(s);
        self.acting.decide(obs)
    }
    fn diagnostics(&self) -> Option<crate::controller::Diagnostics> {
        self.acting.diagnostics()
    }
}

/// Replays a shadow's decisions on the cluster's types: per step its allocated and ready capacity (ready =
/// what it decided ⌈d/Δ⌉ steps earlier, `d` the scaling type's mean provisioning delay), whether its capacity
/// would have met the SLO (M/M/c at the step's rate), and its cost.
fn shadow_rows<C: ControllerSpec>(
    cfg: &ScenarioConfig<C>,
    demand: &DemandSeries,
    decisions: &[crate::controller::ScaleDecision],
    rows: &mut [MetricsRow],
) -> ShadowSummary {
    use crate::controller::ScaleDecision;
    let types = &cfg.cluster.instance_types;
    let st = cfg.cluster.scaling_index().expect("validated");
    let per = cfg.per_request();
    let servers: Vec<f64> = types.iter().map(|t| ClusterConfig::servers_per_instance(t, &per) as f64).collect();
    let lag = ((types[st].provisioning_delay.mean_s() / demand.step_s).ceil() as usize).max(1);
    let mut counts: Vec<Vec<f64>> = Vec::with_capacity(rows.len());
    let mut cur: Vec<f64> = types.iter().map(|t| t.initial_count as f64).collect();
    for k in 0..rows.len() {
        counts.push(cur.clone());
        match decisions.get(k) {
            Some(ScaleDecision::To { instances }) => cur[st] = *instances as f64,
            Some(ScaleDecision::Mix { instances }) => {
                for (c, n) in cur.iter_mut().zip(instances) {
                    *c = *n as f64;
                }
            }
            _ => {}
        }
    }
    let mu = 1.0 / cfg.service.mean_service_s;
    let q = cfg.slo.latency_quantile;
    let mut sum = ShadowSummary {
        controller: cfg.shadow.as_ref().map(|c| c.name()).unwrap_or_default(),
        cost_usd: 0.0,
        slo_violation_minutes: 0.0,
        prevented_minutes: 0.0,
        caused_minutes: 0.0,
    };
    for (j, row) in rows.iter_mut().enumerate() {
        let allocated = &counts[j];
        let ready = &counts[j.saturating_sub(lag)];
        let cores = |c: &[f64]| c.iter().zip(types).map(|(n, t)| n * t.capacity.cpu_cores).sum::<f64>();
        let c_servers: f64 = ready.iter().zip(&servers).map(|(n, s)| n * s).sum();
        let lambda = demand.rate_per_s[j];
        let violated = if lambda <= 0.0 {
            false
        } else if lambda < c_servers * mu {
            crate::queueing::Latency::mmc(lambda, mu, c_servers as u32).quantile(q) > cfg.slo.latency_threshold_s
        } else {
            true
        };
        let dt_min = (row.t_end_s - row.t_start_s) / 60.0;
        sum.cost_usd += allocated.iter().zip(types).map(|(n, t)| n * t.price_usd_per_hour).sum::<f64>() * dt_min / 60.0;
        row.shadow_allocated_cpu_cores = cores(allocated);
        row.shadow_ready_cpu_cores = cores(ready);
        row.shadow_slo_violated = Some(violated as u8);
        row.shadow_cost_usd = sum.cost_usd;
        if violated {
            sum.slo_violation_minutes += dt_min;
        }
        match (row.slo_violated == 1, violated) {
            (true, false) => sum.prevented_minutes += dt_min,
            (false, true) => sum.caused_minutes += dt_min,
            _ => {}
        }
    }
    sum
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
    /// Shadow controller (if any): capacity it would have had allocated, cores.
    pub shadow_allocated_cpu_cores: f64,
    /// Shadow controller: capacity it would have had READY, cores.
    pub shadow_ready_cpu_cores: f64,
    /// Shadow controller: whether its READY capacity would have violated the SLO (empty without a shadow).
    pub shadow_slo_violated: Option<u8>,
    /// Shadow controller: cost of its allocation so far, USD.
    pub shadow_cost_usd: f64,
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
}

/// The outcome of a run.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RunOutput {
    /// One row per control step.
    pub rows: Vec<MetricsRow>,
    /// The run summary.
    pub summary: RunSummary,
    /// The first step at which the controller's model gave a non-finite value (see
    /// [`Diagnostics::non_finite_output`](crate::controller::Diagnostics)), as "step k (t = … s): …".
    #[serde(skip)]
    pub fault: Option<String>,
}

impl RunOutput {
    /// The first quantity that must be a number and is not (NaN or infinite), as "step k (t = … s):
    /// quantity = value" or "summary: quantity = value", or the model fault of [`RunOutput::fault`]. Forecast, margin, coverage, fine-tuning and shadow
    /// columns are NaN by definition where they do not apply and are not checked; every other column is.
    pub fn first_non_finite(&self) -> Option<String> {
        if let Some(f) = &self.fault {
            return Some(f.clone());
        }
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

/// Lives through a prepared scenario with `seed`, calling `progress(fraction done)` now and then.
pub fn run<C: ControllerSpec>(p: &Prepared<C>, seed: u64, progress: &mut dyn FnMut(f64)) -> RunOutput {
    let cfg = &p.config;
    let horizon_s = p.demand.steps() as f64 * p.demand.step_s;
    let ctx = InitContext {
        step_s: p.demand.step_s,
        demand: &p.demand,
        service: &cfg.service,
        cluster: &cfg.cluster,
        seed,
        slo: &cfg.slo,
    };
    let controller = cfg.controller.init(&ctx);
    let controller_name = controller.name().to_string();
    let shadow_log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let controller: Box<dyn Controller> = match &cfg.shadow {
        Some(sc) => Box::new(Shadowed { acting: controller, shadow: sc.init(&ctx), log: shadow_log.clone() }),
        None => controller,
    };
    let (steps, fleet, cost_usd, inst_s, max_i, final_i, p50, p99) = match cfg.fidelity {
        Fidelity::Fluid => fluid_parts(fluid_model(p, seed, controller).run(progress)),
        Fidelity::RequestLevel => {
            let seed = RunSeed(seed);
            let scfg = ServiceConfig {
                cluster: cfg.cluster.clone(),
                per_request: cfg.per_request(),
                control_interval_s: Some(p.demand.step_s),
                horizon_s: Some(horizon_s),
                discipline: QueueDiscipline::Fifo,
                record_from_s: 0.0,
                record_until_s: f64::INFINITY,
                memory_demand_gib: p.demand.memory_gib.clone().map(|m| (p.demand.step_s, m)),
                step_stats_slo_s: Some(cfg.slo.latency_threshold_s),
            };
            let arrivals = PiecewiseArrivals::new(arrival_draws(seed), p.demand.rate_per_s.clone(), p.demand.step_s);
            let service = ExpServiceTimes::new(seed.draws("service"), 1.0 / cfg.service.mean_service_s);
            let mut model =
                ServiceModel::new(scfg, arrivals, service, controller, seed).expect("prepared scenarios are valid");
            model.reserve_samples(p.demand.expected_requests() as usize);
            let mut sim = model.into_simulation();
            let n = p.demand.steps();
            let chunk = (n / 100).max(1);
            for k in (chunk..n).step_by(chunk) {
                sim.run_until(crate::SimTime::from_secs(k as f64 * p.demand.step_s));
                progress(k as f64 / n as f64);
            }
            sim.run_until(crate::SimTime::from_secs(horizon_s));
            progress(1.0);
            let r = sim.into_model().finish(horizon_s);
            let s = &r.sorted_sojourn_s;
            (
                r.steps,
                r.fleet,
                r.cost_usd,
                r.instance_seconds,
                r.max_instances,
                r.final_instances,
                nearest_rank(s, 0.5),
                nearest_rank(s, 0.99),
            )
        }
    };
    let log = shadow_log.lock().expect("not poisoned");
    assemble(
        p,
        seed,
        controller_name,
        (steps, fleet, cost_usd, inst_s, max_i, final_i, p50, p99),
        cfg.shadow.as_ref().map(|_| &log[..]),
    )
}

/// The fluid model of a prepared scenario, with `controller` deciding.
pub fn fluid_model<C: ControllerSpec>(p: &Prepared<C>, seed: u64, controller: Box<dyn Controller>) -> FluidModel {
    let cfg = &p.config;
    let params = FluidParams {
        mean_service_s: cfg.service.mean_service_s,
        per_request: cfg.per_request(),
        slo_threshold_s: cfg.slo.latency_threshold_s,
    };
    FluidModel::new(&cfg.cluster, params, p.demand.clone(), controller, RunSeed(seed))
        .expect("prepared scenarios are valid")
}

/// The output of a fluid run of `p` made elsewhere (e.g. driven tick by tick through [`FluidModel::stepper`]
/// by a lockstep driver), exactly as [`run`] would report it; `controller_name` names who decided.
/// (Scenarios with a shadow controller are run by [`run`].)
pub fn fluid_output<C: ControllerSpec>(
    p: &Prepared<C>,
    seed: u64,
    controller_name: String,
    report: FluidReport,
) -> RunOutput {
    assemble(p, seed, controller_name, fluid_parts(report), None)
}

type Parts = (Vec<StepSample>, crate::cluster::FleetCounters, f64, f64, u32, u32, f64, f64);

fn fluid_parts(r: FluidReport) -> Parts {
    // The steps' own quantiles bracket the run's and start the search.
    let p50s: Vec<f64> = r.steps.iter().map(|s| s.latency_p50_s).collect();
    let p99s: Vec<f64> = r.steps.iter().map(|s| s.latency_p99_s).collect();
    let p50 = mixture_quantile(&r.latencies, 0.5, Some(&p50s));
    let p99 = mixture_quantile(&r.latencies, 0.99, Some(&p99s));
    (r.steps, r.fleet, r.cost_usd, r.instance_seconds, r.max_instances, r.final_instances, p50, p99)
}

fn assemble<C: ControllerSpec>(
    p: &Prepared<C>,
    seed: u64,
    controller_name: String,
    (steps, fleet, cost_usd, inst_s, max_i, final_i, p50, p99): Parts,
    shadow_log: Option<&[crate::controller::ScaleDecision]>,
) -> RunOutput {
    let cfg = &p.config;
    let horizon_s = p.demand.steps() as f64 * p.demand.step_s;
    let basis = MetricBasis::of(cfg);
    let mut rows: Vec<MetricsRow> = steps.iter().enumerate().map(|(k, s)| row(&basis, &p.demand, k, s)).collect();
    let shadow = shadow_log.map(|log| shadow_rows(cfg, &p.demand, log, &mut rows));
    // The span metrics by their one definition (cost: the fleet's bill, equal to the last row's to 1e-9).
    let period = PeriodMetrics::of_rows(&rows, 0.0);
    let requests = sum(steps.iter().map(|s| s.arrivals));
    let slow = sum(steps.iter().map(|s| s.slo_violations));
    let failed = sum(steps.iter().map(|s| s.failed));
    let unfinished = steps.last().map_or(0.0, |s| s.queued);
    let busy = sum(steps.iter().map(|s| s.busy_server_s));
    let ready = sum(steps.iter().map(|s| s.ready_server_s));
    let summary = RunSummary {
        scenario: cfg.name.clone(),
        fidelity: cfg.fidelity,
        seed,
        horizon_s,
        step_s: p.demand.step_s,
        controller: controller_name,
        requests,
        completions: sum(steps.iter().map(|s| s.completions)),
        failed_requests: failed,
        unfinished_requests: unfinished,
        slo_violation_minutes: period.slo_violation_minutes,
        slo_violation_request_fraction: if requests > 0.0 { (slow + failed + unfinished) / requests } else { 0.0 },
        cost_usd,
        instance_hours: inst_s / 3600.0,
        over_provisioning_core_hours: period.over_provisioning_core_hours,
        under_provisioning_core_hours: period.under_provisioning_core_hours,
        scaling_actions: rows.iter().map(|r| r.scaling_actions as u64).sum(),
        latency_p50_s: p50,
        latency_p99_s: p99,
        mean_utilisation: if ready > 0.0 { busy / ready } else { 0.0 },
        max_instances: max_i,
        final_instances: final_i,
        fleet,
        forecast_mae_cores: {
            let errs: Vec<f64> = rows.iter().map(|r| r.forecast_error_cores.abs()).filter(|e| e.is_finite()).collect();
            if errs.is_empty() { f64::NAN } else { sum(errs.iter().copied()) / errs.len() as f64 }
        },
        coverage: steps.iter().rev().find_map(|s| s.diagnostics.map(|d| d.coverage)).unwrap_or(f64::NAN),
        fallback_steps: steps.iter().filter(|s| s.diagnostics.is_some_and(|d| d.fallback)).count() as u64,
        shadow,
    };
    let fault =
        steps.iter().enumerate().find(|(_, s)| s.diagnostics.is_some_and(|d| d.non_finite_output)).map(|(k, s)| {
            format!("step {k} (t = {} s): the controller's model gave a non-finite output (NaN or inf)", s.start_s)
        });
    RunOutput { rows, summary, fault }
}

/// Sum from +0.0 (std's float `sum` starts at −0.0, which would print as "-0").
fn sum(xs: impl Iterator<Item = f64>) -> f64 {
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

/// Totals over a span of steps, by the one definition of each metric (the same as [`RunSummary`]'s): a step
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
        shadow_allocated_cpu_cores: f64::NAN,
        shadow_ready_cpu_cores: f64::NAN,
        shadow_slo_violated: None,
        shadow_cost_usd: f64::NAN,
    }
}
