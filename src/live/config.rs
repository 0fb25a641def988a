//! The serve config (`Serve(…)` in RON): where the inputs come from, the setting the controller is built in
//! (the same `service`, `cluster`, `slo` and `controller` blocks a scenario has, checked by the same code),
//! the mode, the fail-safe and the rate limits. Every problem is reported with its file, line and dotted path.

use std::path::{Path, PathBuf};

use prescale_agents::{ControllerConfig, PredictiveConfig, PredictorConfig};
use prescale_sim::cluster::ClusterConfig;
use prescale_sim::scenario::{ControllerSpec, Problem, Problems, ServiceSpec, SloConfig, StatedDemand};
use prescale_sim::validate::Interval;
use serde::{Deserialize, Serialize};

use crate::files::ron_paths::value_lines;
use crate::files::scenario_io::{Diagnostic, parse_ron, place_problems, read_text};

fn one() -> u64 {
    1
}
fn default_listen() -> String {
    "127.0.0.1:8080".into()
}
fn default_grpc_listen() -> String {
    "127.0.0.1:8081".into()
}
fn default_timeout_s() -> f64 {
    5.0
}
fn default_behavior() -> Option<Behavior> {
    Some(Behavior::default())
}

/// A `prescale serve` config file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename = "Serve")]
pub struct ServeConfig {
    /// The served workload's name (letters, digits, `.`, `_`, `-`): the `service` label of every exposed
    /// metric and the external scaler's metric name (`prescale-<name>`).
    pub name: String,
    /// The Prometheus server the inputs are read from.
    pub prometheus: PrometheusConfig,
    /// One PromQL query per input.
    pub queries: Queries,
    /// Control interval, seconds: the controller decides once per interval (as in the scenario it was
    /// evaluated in: its `step_s`).
    pub interval_s: f64,
    /// History replayed into the controller at start-up, seconds (a multiple of `interval_s`): the
    /// controller decides on every interval of it (answers discarded), so forecasters fit and margins
    /// calibrate before the first served decision. 0: start cold.
    #[serde(default)]
    pub history_s: f64,
    /// What one request costs (as in a scenario).
    pub service: ServiceSpec,
    /// The instance types (as in a scenario): the scaling type's capacity per replica, provisioning delay,
    /// warm-up, price and replica limits; other types are static pools assumed READY at their initial count.
    pub cluster: ClusterConfig,
    /// The SLO (shadow mode's counterfactual and the controllers that look at it).
    pub slo: SloConfig,
    /// The controller, exactly as a scenario names it.
    pub controller: ControllerConfig,
    /// `Act` (serve the controller's recommendation) or `Shadow` (serve the current replicas, expose what the
    /// controller would do beside them and keep the counterfactual summary).
    #[serde(default)]
    pub mode: Mode,
    /// HTTP listen address (JSON recommendation, `/metrics`, `/healthz`, `/readyz`).
    #[serde(default = "default_listen")]
    pub listen: String,
    /// gRPC listen address (the KEDA external scaler).
    #[serde(default = "default_grpc_listen")]
    pub grpc_listen: String,
    /// What happens when inputs or the model fail.
    #[serde(default)]
    pub fail_safe: FailSafe,
    /// Rate limits on the recommendation, like the HPA's `behavior` (default: Kubernetes' defaults);
    /// `None` serves the controller's answer as it is.
    #[serde(default = "default_behavior")]
    pub behavior: Option<Behavior>,
    /// The controller's seed (as a run's seed: the same controller object as `prescale run --seed`).
    #[serde(default = "one")]
    pub seed: u64,
}

/// Where Prometheus is.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrometheusConfig {
    /// Base URL, e.g. `http://127.0.0.1:9090` (the API is under `/api/v1/`).
    pub url: String,
    /// Timeout of one request, seconds.
    #[serde(default = "default_timeout_s")]
    pub timeout_s: f64,
}

/// The PromQL queries, one per input; each must return one series (aggregate with `sum` or `max`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Queries {
    /// Requests per second over the last interval (e.g. `sum(rate(http_requests_total[1m]))`).
    pub request_rate_per_s: String,
    /// READY replicas of the scaled workload.
    pub ready_replicas: String,
    /// Replicas ordered but not ready yet (default: 0).
    #[serde(default)]
    pub pending_replicas: Option<String>,
    /// Replicas terminating (default: 0).
    #[serde(default)]
    pub draining_replicas: Option<String>,
    /// CPU-seconds the workload used over the last interval (e.g.
    /// `sum(increase(container_cpu_usage_seconds_total{pod=~"web-.*"}[1m]))`; default: request rate × mean
    /// service time × cores per request × interval, at most the READY capacity's).
    #[serde(default)]
    pub busy_cpu_seconds: Option<String>,
    /// CPU cores usable on READY replicas (warming replicas in part; default: READY replicas × the cores a
    /// replica serves with).
    #[serde(default)]
    pub ready_capacity_cores: Option<String>,
    /// Requests waiting (default: 0).
    #[serde(default)]
    pub queue_length: Option<String>,
    /// Fraction of the interval's requests slower than the SLO threshold (default: 0, unknown).
    #[serde(default)]
    pub slow_fraction: Option<String>,
    /// Memory demand, GiB (for controllers that forecast memory; default: none stated).
    #[serde(default)]
    pub memory_gib: Option<String>,
    /// Network demand, Gbit/s (for controllers that forecast bandwidth; default: none stated).
    #[serde(default)]
    pub network_gbps: Option<String>,
    /// Latency at the SLO's quantile, seconds (shadow mode: whether the running replicas met the SLO;
    /// default: the M/M/c estimate at the observed rate).
    #[serde(default)]
    pub latency_s: Option<String>,
}

impl Queries {
    /// Every configured query with its input's name, in a fixed order.
    pub fn named(&self) -> Vec<(&'static str, &str)> {
        let mut v =
            vec![("request_rate_per_s", self.request_rate_per_s.as_str()), ("ready_replicas", &self.ready_replicas)];
        let optional = [
            ("pending_replicas", &self.pending_replicas),
            ("draining_replicas", &self.draining_replicas),
            ("busy_cpu_seconds", &self.busy_cpu_seconds),
            ("ready_capacity_cores", &self.ready_capacity_cores),
            ("queue_length", &self.queue_length),
            ("slow_fraction", &self.slow_fraction),
            ("memory_gib", &self.memory_gib),
            ("network_gbps", &self.network_gbps),
            ("latency_s", &self.latency_s),
        ];
        v.extend(optional.into_iter().filter_map(|(n, q)| q.as_deref().map(|q| (n, q))));
        v
    }
}

/// Act or watch.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Mode {
    /// Serve the controller's recommendation.
    #[default]
    Act,
    /// Serve the current replicas; expose and log the controller's recommendation beside them.
    Shadow,
}

/// The fail-safe.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FailSafe {
    /// An input whose newest sample is older than this (seconds) is stale: the tick holds.
    pub max_input_age_s: f64,
    /// After this long (seconds) of consecutive failed ticks the server answers HTTP 503 / gRPC
    /// `UNAVAILABLE`, so KEDA's fallback applies.
    pub grace_s: f64,
    /// The lowest recommendation (0 only if scaling to zero is wanted).
    pub min_replicas: u32,
}

impl Default for FailSafe {
    fn default() -> Self {
        FailSafe { max_input_age_s: 180.0, grace_s: 300.0, min_replicas: 1 }
    }
}

/// Rate limits like the Kubernetes HPA's `behavior` policies (defaults: Kubernetes' own): per period, up by
/// at most the larger of a percentage and a number of pods, down by at most a percentage; a scale-down goes
/// only as low as the highest recommendation within the stabilisation window.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Behavior {
    /// Scale-up: percent of the current replicas per period.
    pub scale_up_percent: f64,
    /// Scale-up: pods per period.
    pub scale_up_pods: u32,
    /// Scale-up policy period, seconds.
    pub scale_up_period_s: f64,
    /// Scale-down: percent of the current replicas per period.
    pub scale_down_percent: f64,
    /// Scale-down policy period, seconds.
    pub scale_down_period_s: f64,
    /// Scale-down stabilisation window, seconds.
    pub scale_down_stabilisation_s: f64,
}

impl Default for Behavior {
    fn default() -> Self {
        Behavior {
            scale_up_percent: 100.0,
            scale_up_pods: 4,
            scale_up_period_s: 15.0,
            scale_down_percent: 100.0,
            scale_down_period_s: 15.0,
            scale_down_stabilisation_s: 300.0,
        }
    }
}

impl ServeConfig {
    /// Every problem of the config, with dotted paths.
    pub fn problems(&self) -> Vec<Problem> {
        let mut p = Problems::new();
        if let Some(m) = prescale_sim::input::name_problem(&self.name) {
            p.add("name", m);
        }
        p.under("prometheus", |p| {
            let u = &self.prometheus.url;
            p.require("url", u.starts_with("http://") && u.len() > "http://".len(), || {
                format!("must be an http:// URL of a Prometheus server (e.g. http://127.0.0.1:9090), got '{u}'")
            });
            p.within("timeout_s", self.prometheus.timeout_s, Interval::open_closed(0.0, 300.0));
        });
        p.under("queries", |p| {
            for (name, q) in self.queries.named() {
                p.require(name, !q.trim().is_empty(), || "must be a PromQL query".into());
            }
        });
        let interval_ok = p.within("interval_s", self.interval_s, Interval::open_closed(0.0, 86400.0));
        if p.non_negative("history_s", self.history_s)
            && interval_ok
            && ((self.history_s / self.interval_s).round() * self.interval_s - self.history_s).abs()
                > 1e-9 * self.history_s
        {
            p.add(
                "history_s",
                format!("must be a multiple of interval_s ({}), got {}", self.interval_s, self.history_s),
            );
        }
        p.under("service", |p| self.service.check(p));
        p.under("cluster", |p| self.cluster.check(p));
        p.under("slo", |p| self.slo.check(p));
        if p.is_empty() {
            p.under("controller", |p| {
                self.controller.check(p, &self.cluster, self.interval_s, None);
                let stated = StatedDemand {
                    memory: self.queries.memory_gib.is_some(),
                    network: self.queries.network_gbps.is_some(),
                };
                self.controller.check_workload(p, stated);
                match &self.controller {
                    ControllerConfig::HindsightExpert
                    | ControllerConfig::PricedHindsightExpert(_)
                    | ControllerConfig::Predictive(PredictiveConfig { predictor: PredictorConfig::Oracle, .. }) => p
                        .add(
                            "",
                            "knows the future: it exists only in simulation (an upper bound), and cannot serve live",
                        ),
                    _ => {}
                }
            });
        }
        p.under("fail_safe", |p| {
            p.positive("max_input_age_s", self.fail_safe.max_input_age_s);
            p.non_negative("grace_s", self.fail_safe.grace_s);
            if let Some(max) = self.cluster.scaling_max_count() {
                p.require("min_replicas", self.fail_safe.min_replicas <= max, || {
                    format!("must be at most the scaling type's max_count ({max}), got {}", self.fail_safe.min_replicas)
                });
            }
        });
        if let Some(b) = &self.behavior {
            p.under("behavior", |p| {
                p.non_negative("scale_up_percent", b.scale_up_percent);
                p.positive("scale_up_period_s", b.scale_up_period_s);
                p.within("scale_down_percent", b.scale_down_percent, Interval::closed(0.0, 100.0));
                p.positive("scale_down_period_s", b.scale_down_period_s);
                p.non_negative("scale_down_stabilisation_s", b.scale_down_stabilisation_s);
            });
        }
        for (field, addr) in [("listen", &self.listen), ("grpc_listen", &self.grpc_listen)] {
            p.require(field, addr.parse::<std::net::SocketAddr>().is_ok(), || {
                format!("must be an address and port, e.g. 127.0.0.1:8080, got '{addr}'")
            });
        }
        p.into_vec()
    }

    /// The config as RON that [`load_serve_text`] reads back: the top-level name only (`Serve(…)`: how
    /// `prescale validate` tells the kind of a file), inner structs as plain `(…)`, as people write them.
    pub fn to_ron(&self) -> String {
        let pretty = ron::ser::PrettyConfig::default().extensions(
            ron::extensions::Extensions::IMPLICIT_SOME | ron::extensions::Extensions::UNWRAP_VARIANT_NEWTYPES,
        );
        let body = ron::ser::to_string_pretty(self, pretty).expect("serve configs serialise");
        body.replacen("\n(\n", "\nServe(\n", 1)
    }

    /// Index of the scaling type (validated configs have one).
    pub fn scaling_index(&self) -> usize {
        self.cluster.scaling_index().expect("validated")
    }
}

/// A serve config read from a file, checked, model paths made absolute.
#[derive(Clone, Debug)]
pub struct LoadedServe {
    /// The file.
    pub file: PathBuf,
    /// The config.
    pub config: ServeConfig,
}

/// Reads and checks a serve config: a syntax error with its line, or every problem with its line and path.
pub fn load_serve(file: &Path) -> Result<LoadedServe, Vec<Diagnostic>> {
    let text = read_text(file)?;
    load_serve_text(file, &text)
}

/// [`load_serve`] from text (`file` names it and anchors relative model paths).
pub fn load_serve_text(file: &Path, text: &str) -> Result<LoadedServe, Vec<Diagnostic>> {
    let mut config: ServeConfig = parse_ron(file, text)?;
    config.controller.resolve_paths(file.parent().unwrap_or(Path::new(".")));
    let problems = config.problems();
    if !problems.is_empty() {
        return Err(place_problems(file, &value_lines(text), problems));
    }
    Ok(LoadedServe { file: file.to_path_buf(), config })
}
