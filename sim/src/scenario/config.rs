//! The scenario schema: workload, service, SLO, fidelity, the controller seam (`ControllerSpec`,
//! `InitContext`) and `ScenarioConfig` itself; plain serde data.

use super::*;

fn is_zero(x: &f64) -> bool {
    *x == 0.0
}

fn one() -> f64 {
    1.0
}
fn default_seed() -> u64 {
    1
}
fn timestamp() -> String {
    crate::trace::DEFAULT_TIME_COLUMN.into()
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
    /// Name of the timestamp column (default `timestamp`; a header without one has its first column read as
    /// the timestamps, as the trace report says).
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
    /// The part of the trace the scored period replays; the run starts `history_s` earlier in the trace and
    /// lasts to the slice's end. Instead of `start_offset_s` and `horizon_s`: one trace, two scenarios (train
    /// on `Fraction(from: 0.0, to: 0.7)`, test on `Fraction(from: 0.7, to: 1.0)` with a warm history).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slice: Option<TraceSlice>,
}

/// A part of a trace.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum TraceSlice {
    /// Fractions of the trace's span, `0 <= from < to <= 1`: `Fraction(from: 0.7, to: 1.0)` is its last 30 %.
    Fraction {
        /// Start, as a fraction of the span.
        from: f64,
        /// End, as a fraction of the span.
        to: f64,
    },
    /// Instants: ISO-8601 (`"2014-04-10T00:00:00Z"`) or seconds in the trace's own timestamp unit.
    Between {
        /// Start (included).
        from: String,
        /// End (excluded).
        to: String,
    },
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

impl ServiceSpec {
    /// What one request holds in service (CPU and memory; the one place these fields become [`Resources`]).
    pub fn per_request(&self) -> Resources {
        Resources { cpu_cores: self.cores_per_request, memory_gib: self.memory_gib_per_request, ..Resources::default() }
    }
}

/// The service-level objective.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SloConfig {
    /// Latency quantile the SLO is about: 0.5, 0.95 or 0.99.
    pub latency_quantile: f64,
    /// Latency that quantile must not exceed, seconds.
    pub latency_threshold_s: f64,
    /// What a minute of SLO violation costs, USD (a penalty, a lost-revenue estimate): the price that weighs
    /// violations against the bill. With it, run summaries add `slo_penalty_usd` and `total_cost_usd`, and the
    /// hindsight expert and cost-aware cloning trade instances against violation minutes (`agents::neural::
    /// expert`); without it the SLO is a hard target (the expert meets it whatever it costs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub violation_price_usd_per_min: Option<f64>,
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
    /// Checks the controller into `p` (paths below the controller); the cluster, step and horizon give the
    /// setting.
    fn check(&self, p: &mut Problems, cluster: &ClusterConfig, step_s: f64, horizon_s: Option<f64>);
    /// A short name for reports.
    fn name(&self) -> String;
    /// The runtime controller.
    fn init(&self, ctx: &InitContext<'_>) -> Box<dyn Controller>;
    /// Makes file paths in the config (model directories) absolute, relative to `base` (the folder of the file
    /// that names them); called before validation. Nothing by default.
    fn resolve_paths(&mut self, _base: &std::path::Path) {}
    /// Problems that depend on what the workload states (an explicit memory or network demand, which a
    /// forecasting controller must plan too). None by default.
    fn check_workload(&self, _p: &mut Problems, _stated: StatedDemand) {}
}

/// Which demands beyond the request rate a workload states (a trace column of memory or network use, or a
/// live query for it).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StatedDemand {
    /// A memory demand, GiB.
    pub memory: bool,
    /// A network demand, Gbit/s.
    pub network: bool,
}

impl ControllerSpec for ControllerConfig {
    fn name(&self) -> String {
        match self {
            ControllerConfig::Static(_) => "static".into(),
            ControllerConfig::ReferenceHpa(_) => "reference-hpa".into(),
        }
    }

    fn check(&self, p: &mut Problems, cluster: &ClusterConfig, _step_s: f64, _horizon_s: Option<f64>) {
        match self {
            ControllerConfig::Static(c) => c.check(p, cluster.scaling_max_count()),
            ControllerConfig::ReferenceHpa(c) => c.check(p),
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
    /// Length of the run, seconds (a multiple of `step_s`); for a trace, defaults to the trace's length (or its
    /// slice's, plus `history_s`).
    #[serde(default)]
    pub horizon_s: Option<f64>,
    /// Warm history, seconds (a multiple of `step_s`, default 0): the run's first `history_s` are played and
    /// controlled like the rest — forecasters fit, margins calibrate, the fleet settles — but the summary scores
    /// only what follows (`scored_from_s` in `summary.json`; the history's own figures are reported apart,
    /// under `history`). With a trace `slice`, the history is the trace just before the slice.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub history_s: f64,
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
