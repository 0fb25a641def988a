//! prescale-agents: the autoscalers that plug into the simulator's controller seam
//! ([`prescale_sim::controller::Controller`]): the predictive pipeline of the seed — predictors
//! ([`predictor`]), variance controllers ([`variance`]), the resource prediction module ([`resource`]), the
//! proactive allocator with its feedback loop ([`predictive`]) — and the reactive baselines it is measured
//! against: the Kubernetes HPA ([`hpa`]), target tracking and step scaling ([`reactive`]), plus the
//! simulator's own `Static` and `ReferenceHpa`.
//!
//! Seed component → file:
//!
//! | seed component | module |
//! |---|---|
//! | behavioural-cloning agent | [`neural::policy`] (policy, hindsight expert, rollouts), [`neural::learn`] (BC + DAgger) |
//! | predictors (forecast with uncertainty) | [`predictor`], [`neural::forecaster`] |
//! | variance controller | [`variance`] |
//! | resource prediction module | [`resource`] |
//! | proactive allocator | [`predictive`] |
//! | feedback loop | [`feedback`] |
//!
//! [`ControllerConfig`] is the `controller:` part of a scenario file: every controller by name with its
//! parameters, validated with dotted paths, built with [`prescale_sim::scenario::ControllerSpec::init`].
//! Unknown names are refused by the parser with the list of known ones.
// Validation writes `!(x > 0.0)` on purpose: unlike `x <= 0.0`, it also rejects NaN.
#![allow(clippy::neg_cmp_op_on_partial_ord)]

pub mod feedback;
pub mod hpa;
pub mod neural;
pub mod predictive;
pub mod predictor;
pub mod reactive;
pub mod resource;
pub mod variance;

use std::sync::Arc;

use prescale_sim::cluster::ClusterConfig;
use prescale_sim::controller::{Controller, ReferenceHpa, Static};
use prescale_sim::scenario::{ControllerSpec, InitContext};
use serde::{Deserialize, Serialize};

pub use prescale_sim::controller::{Observation, ScaleDecision};

pub use crate::hpa::HpaConfig;
use crate::hpa::KubernetesHpa;
pub use crate::neural::policy::BcConfig;
pub use crate::predictive::{AllocatorConfig, PredictiveConfig};
use crate::predictive::{AllocatorSetting, PredictiveController};
use crate::predictor::Predictor;
use crate::reactive::{StepScaling, StepScalingConfig, TargetTracking, TargetTrackingConfig};
use crate::resource::ResourcePlanner;
pub use crate::variance::VarianceConfig;
use neural::forecaster::{FineTuneConfig, NeuralForecaster};
use neural::model::{Model, ModelCard, Task};
use neural::policy::{BcPolicy, HindsightExpert, PolicySetting};
use std::path::Path;

/// A predictor by name (periods and windows in seconds; they become steps of the scenario's `step_s`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum PredictorConfig {
    /// `ŷ = y(t)`.
    LastValue,
    /// The value one period ago (daily: 86400, weekly: 604800).
    SeasonalNaive {
        /// Period, seconds.
        period_s: f64,
    },
    /// Mean of the last window.
    MovingAverage {
        /// Window, seconds.
        window_s: f64,
    },
    /// Exponentially weighted moving average.
    Ewma {
        /// Smoothing in (0, 1].
        alpha: f64,
    },
    /// Additive Holt-Winters.
    HoltWinters {
        /// Season, seconds.
        period_s: f64,
        /// Level smoothing in (0, 1).
        #[serde(default = "hw_alpha")]
        alpha: f64,
        /// Trend smoothing in (0, 1).
        #[serde(default = "hw_beta")]
        beta: f64,
        /// Seasonal smoothing in (0, 1).
        #[serde(default = "hw_gamma")]
        gamma: f64,
        /// Choose the smoothing parameters from the first four seasons.
        #[serde(default)]
        fit: bool,
    },
    /// Autoregression by least squares.
    Ar {
        /// Order.
        p: u32,
        /// Fitting window, seconds.
        window_s: f64,
        /// Refit schedule, seconds.
        refit_every_s: f64,
    },
    /// Reads the true future (upper bound).
    Oracle,
    /// A trained forecasting model (forecast cloning): a model directory written by `prescale train`,
    /// relative to the file that names it; optionally fine-tuned online.
    Neural {
        /// Model directory.
        model: String,
        /// Online fine-tuning.
        #[serde(default)]
        fine_tune: Option<FineTuneConfig>,
    },
}

fn hw_alpha() -> f64 {
    0.2
}
fn hw_beta() -> f64 {
    0.05
}
fn hw_gamma() -> f64 {
    0.15
}

/// The `controller:` part of a scenario.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum ControllerConfig {
    /// A fixed allocation of the scaling type (`Static(instances: 10)`; `Static()` leaves the cluster as it starts).
    Static(Static),
    /// The HPA-style rule of REFERENCE_MODEL §4.5.
    ReferenceHpa(ReferenceHpa),
    /// The Kubernetes HPA (autoscaling/v2).
    Hpa(HpaConfig),
    /// AWS-style target tracking.
    TargetTracking(TargetTrackingConfig),
    /// AWS-style step scaling.
    StepScaling(StepScalingConfig),
    /// The predictive pipeline.
    Predictive(PredictiveConfig),
    /// A behavioural-cloning policy (a model directory written by `prescale train` for the `Imitate` task).
    Bc(BcConfig),
    /// The hindsight expert BC policies imitate: knows the future (an upper bound, like the oracle).
    HindsightExpert,
}

impl PredictorConfig {
    /// History the predictor needs, seconds.
    pub fn history_s(&self, step_s: f64) -> f64 {
        match self {
            PredictorConfig::LastValue | PredictorConfig::Ewma { .. } => step_s,
            PredictorConfig::SeasonalNaive { period_s } => *period_s,
            PredictorConfig::MovingAverage { window_s } => *window_s,
            PredictorConfig::HoltWinters { period_s, .. } => 2.0 * period_s,
            PredictorConfig::Ar { p, .. } => (3 * p + 2) as f64 * step_s,
            PredictorConfig::Oracle => 0.0,
            PredictorConfig::Neural { model, .. } => {
                neural::model::read_card(Path::new(model)).map_or(0.0, |c| c.spec.window_steps as f64 * step_s)
            }
        }
    }

    fn init(&self, step_s: f64, oracle_future: &Arc<Vec<f64>>, start_unix_s: f64) -> Box<dyn Predictor> {
        let steps = |s: f64| ((s / step_s).round() as usize).max(1);
        use crate::predictor::*;
        match *self {
            PredictorConfig::LastValue => Box::new(LastValue::new()),
            PredictorConfig::SeasonalNaive { period_s } => Box::new(SeasonalNaive::new(steps(period_s))),
            PredictorConfig::MovingAverage { window_s } => Box::new(MovingAverage::new(steps(window_s))),
            PredictorConfig::Ewma { alpha } => Box::new(Ewma::new(alpha)),
            PredictorConfig::HoltWinters { period_s, alpha, beta, gamma, fit } => {
                Box::new(HoltWinters::new(steps(period_s), alpha, beta, gamma, fit))
            }
            PredictorConfig::Ar { p, window_s, refit_every_s } => {
                Box::new(Ar::new(p as usize, steps(window_s), steps(refit_every_s)))
            }
            PredictorConfig::Oracle => Box::new(Oracle::new(oracle_future.clone())),
            PredictorConfig::Neural { ref model, ref fine_tune } => {
                let m = Model::load(Path::new(model)).expect("validated model directory");
                Box::new(NeuralForecaster::new(m, start_unix_s, step_s, fine_tune.clone()))
            }
        }
    }

    /// Problems as `(path below "predictor", message)`; `needed_steps` is the allocator's farthest horizon.
    fn problems(&self, step_s: f64, horizon_s: Option<f64>, needed_steps: Option<u32>) -> Vec<(String, String)> {
        let mut p = Vec::new();
        let mut need = |f: &str, ok: bool, msg: String| {
            if !ok {
                p.push((f.to_string(), msg));
            }
        };
        let unit = |x: f64| x > 0.0 && x < 1.0;
        match *self {
            PredictorConfig::SeasonalNaive { period_s } => {
                need("period_s", period_s >= step_s, format!("must be >= step_s ({step_s}), got {period_s}"))
            }
            PredictorConfig::MovingAverage { window_s } => {
                need("window_s", window_s >= step_s, format!("must be >= step_s ({step_s}), got {window_s}"))
            }
            PredictorConfig::Ewma { alpha } => {
                need("alpha", alpha > 0.0 && alpha <= 1.0, format!("must be in (0, 1], got {alpha}"))
            }
            PredictorConfig::HoltWinters { period_s, alpha, beta, gamma, .. } => {
                need(
                    "period_s",
                    period_s >= 2.0 * step_s,
                    format!("must be >= 2 steps ({}), got {period_s}", 2.0 * step_s),
                );
                need("alpha", unit(alpha), format!("must be in (0, 1), got {alpha}"));
                need("beta", unit(beta), format!("must be in (0, 1), got {beta}"));
                need("gamma", unit(gamma), format!("must be in (0, 1), got {gamma}"));
            }
            PredictorConfig::Ar { p: order, window_s, refit_every_s } => {
                need("p", (1..=48).contains(&order), format!("must be from 1 to 48, got {order}"));
                need(
                    "window_s",
                    window_s >= (3 * order + 2) as f64 * step_s,
                    format!("must cover at least 3p + 2 steps ({} s), got {window_s}", (3 * order + 2) as f64 * step_s),
                );
                need(
                    "refit_every_s",
                    refit_every_s >= step_s,
                    format!("must be >= step_s ({step_s}), got {refit_every_s}"),
                );
            }
            PredictorConfig::LastValue | PredictorConfig::Oracle => {}
            PredictorConfig::Neural { ref model, ref fine_tune } => {
                // The model directory is read once here; every check below uses its card.
                let card = match neural_problems(model, Task::Forecast, step_s) {
                    Ok((card, problems)) => {
                        p.extend(problems);
                        card
                    }
                    Err(problem) => return vec![problem],
                };
                let (window, horizons) = (card.spec.window_steps as usize, card.spec.horizon_steps);
                if let Some(ft) = fine_tune {
                    for (f, m) in ft.problems(step_s, window, horizons as usize) {
                        p.push((format!("fine_tune.{f}"), m));
                    }
                }
                if let Some(h_hi) = needed_steps
                    && horizons < h_hi
                {
                    p.push((
                        "model".into(),
                        format!(
                            "{model}: forecasts {horizons} steps ahead, the allocator needs {h_hi} (provisioning delay, \
                             one step and warm-up); train with horizon_steps >= {h_hi}"
                        ),
                    ));
                }
                return p;
            }
        }
        if let Some(h) = horizon_s {
            let hist = self.history_s(step_s);
            if hist >= h {
                let field = match self {
                    PredictorConfig::SeasonalNaive { .. } | PredictorConfig::HoltWinters { .. } => "period_s",
                    PredictorConfig::MovingAverage { .. } | PredictorConfig::Ar { .. } => "window_s",
                    _ => "",
                };
                p.push((
                    field.trim_end_matches('.').to_string(),
                    format!("needs {hist} s of history, but the run lasts {h} s: it would never forecast"),
                ));
            }
        }
        p
    }
}

impl ControllerSpec for ControllerConfig {
    fn name(&self) -> String {
        match self {
            ControllerConfig::Static(_) => "static".into(),
            ControllerConfig::ReferenceHpa(_) => "reference-hpa".into(),
            ControllerConfig::Hpa(_) => "kubernetes-hpa".into(),
            ControllerConfig::TargetTracking(_) => "target-tracking".into(),
            ControllerConfig::StepScaling(_) => "step-scaling".into(),
            ControllerConfig::Predictive(p) => {
                format!("predictive({} + {})", variant(&p.predictor), variant(&p.variance))
            }
            ControllerConfig::Bc(c) => format!(
                "bc({})",
                Path::new(&c.model).file_name().map_or(c.model.clone(), |n| n.to_string_lossy().into_owned())
            ),
            ControllerConfig::HindsightExpert => "hindsight-expert".into(),
        }
    }

    fn resolve_paths(&mut self, base: &Path) {
        let fix = |m: &mut String| {
            let p = Path::new(m.as_str());
            if p.is_relative() {
                let joined = base.join(p);
                *m = joined.canonicalize().unwrap_or(joined).display().to_string();
            }
        };
        match self {
            ControllerConfig::Bc(c) => fix(&mut c.model),
            ControllerConfig::Predictive(PredictiveConfig {
                predictor: PredictorConfig::Neural { model, .. }, ..
            }) => fix(model),
            _ => {}
        }
    }

    fn workload_problems(&self, states_memory: bool) -> Vec<(String, String)> {
        match self {
            ControllerConfig::Predictive(PredictiveConfig {
                predictor: PredictorConfig::Neural { model, .. }, ..
            }) if states_memory => {
                vec![(
                    "predictor.model".into(),
                    format!(
                        "{model}: the workload states a memory demand, which the predictive controller forecasts with \
                         the same predictor, but this model was trained on request rates only; use a classical \
                         predictor for this workload"
                    ),
                )]
            }
            _ => Vec::new(),
        }
    }

    fn problems(&self, cluster: &ClusterConfig, step_s: f64, horizon_s: Option<f64>) -> Vec<(String, String)> {
        let prefix = |pre: &str, v: Vec<(String, String)>| -> Vec<(String, String)> {
            v.into_iter().map(|(f, m)| (if f.is_empty() { pre.to_string() } else { format!("{pre}.{f}") }, m)).collect()
        };
        match self {
            ControllerConfig::Static(c) => {
                c.problems(cluster.scaling_index().map(|i| cluster.instance_types[i].max_count))
            }
            ControllerConfig::ReferenceHpa(c) => c.problems(),
            ControllerConfig::Hpa(c) => c.problems(),
            ControllerConfig::TargetTracking(c) => {
                let mut p = Vec::new();
                if !(c.target_utilisation > 0.0 && c.target_utilisation <= 1.0) {
                    p.push(("target_utilisation".into(), format!("must be in (0, 1], got {}", c.target_utilisation)));
                }
                if c.min_instances > c.max_instances || c.max_instances == 0 {
                    p.push((
                        "max_instances".into(),
                        format!("must be >= 1 and >= min_instances, got {}", c.max_instances),
                    ));
                }
                if !(0.0..=1.0).contains(&c.scale_in_fraction) {
                    p.push(("scale_in_fraction".into(), format!("must be in [0, 1], got {}", c.scale_in_fraction)));
                }
                p
            }
            ControllerConfig::StepScaling(c) => {
                let mut p = Vec::new();
                if !(c.scale_in_threshold < c.scale_out_threshold) {
                    p.push((
                        "scale_in_threshold".into(),
                        format!(
                            "must be below scale_out_threshold ({}), got {}",
                            c.scale_out_threshold, c.scale_in_threshold
                        ),
                    ));
                }
                if c.min_instances > c.max_instances || c.max_instances == 0 {
                    p.push((
                        "max_instances".into(),
                        format!("must be >= 1 and >= min_instances, got {}", c.max_instances),
                    ));
                }
                p
            }
            ControllerConfig::Bc(c) => {
                let mut p = match neural_problems(&c.model, Task::Policy, step_s) {
                    Ok((_, problems)) => problems,
                    Err(problem) => vec![problem],
                };
                if let Some(q) = c.act_quantile
                    && !(q > 0.0 && q < 1.0)
                {
                    p.push(("act_quantile".into(), format!("must be in (0, 1), got {q}")));
                }
                p
            }
            ControllerConfig::HindsightExpert => Vec::new(),
            ControllerConfig::Predictive(c) => {
                // The allocator's farthest horizon (the lead time `PredictiveController::new` uses).
                let h_hi = cluster.scaling_index().map(|i| {
                    let t = &cluster.instance_types[i];
                    let w = if c.allocator.include_warmup { t.warmup_s } else { 0.0 };
                    prescale_sim::controller::lead_time_steps(t.provisioning_delay.mean_s(), step_s, w).1 as u32
                });
                let mut p = prefix("predictor", c.predictor.problems(step_s, horizon_s, h_hi));
                p.extend(prefix("variance", c.variance.problems()));
                let a = &c.allocator;
                if !(a.target_utilisation > 0.0 && a.target_utilisation <= 1.0) {
                    p.push((
                        "allocator.target_utilisation".into(),
                        format!("must be in (0, 1], got {}", a.target_utilisation),
                    ));
                }
                if !(a.scale_down_stabilisation_s >= 0.0) {
                    p.push((
                        "allocator.scale_down_stabilisation_s".into(),
                        format!("must be >= 0, got {}", a.scale_down_stabilisation_s),
                    ));
                }
                if let Some(cap) = a.cost_cap_usd_per_hour {
                    let min_price = ResourcePlanner::new(cluster, None).minimum_usd_per_hour();
                    if !(cap >= min_price) {
                        p.push((
                            "allocator.cost_cap_usd_per_hour".into(),
                            format!(
                                "must be at least the price of the minimum fleet ({min_price:.4} USD/h), got {cap}"
                            ),
                        ));
                    }
                }
                p
            }
        }
    }

    fn init(&self, ctx: &InitContext<'_>) -> Box<dyn Controller> {
        match self {
            ControllerConfig::Static(c) => Box::new(c.clone()),
            ControllerConfig::ReferenceHpa(c) => Box::new(c.clone()),
            ControllerConfig::Hpa(c) => Box::new(KubernetesHpa::new(c.clone())),
            ControllerConfig::TargetTracking(c) => Box::new(TargetTracking::new(c.clone())),
            ControllerConfig::StepScaling(c) => Box::new(StepScaling::new(c.clone())),
            ControllerConfig::Predictive(c) => {
                let st = ctx.cluster.scaling_index().expect("validated");
                let t = &ctx.cluster.instance_types[st];
                let setting = AllocatorSetting {
                    target_utilisation: c.allocator.target_utilisation,
                    mean_service_s: ctx.service.mean_service_s,
                    per_request: prescale_sim::cluster::Resources {
                        cpu_cores: ctx.service.cores_per_request,
                        memory_gib: ctx.service.memory_gib_per_request,
                        ..Default::default()
                    },
                    step_s: ctx.step_s,
                    provisioning_delay_s: t.provisioning_delay.mean_s(),
                    warmup_s: if c.allocator.include_warmup { t.warmup_s } else { 0.0 },
                    scale_down_stabilisation_s: c.allocator.scale_down_stabilisation_s,
                };
                let future = Arc::new(ctx.demand.rate_per_s.clone());
                let memory_future = Arc::new(ctx.demand.memory_gib.clone().unwrap_or_default());
                let (pc, vc, step_s, t0) =
                    (c.predictor.clone(), c.variance.clone(), ctx.step_s, ctx.demand.start_unix_s);
                Box::new(PredictiveController::new(
                    c.predictor.init(ctx.step_s, &future, t0),
                    c.variance.init(ctx.step_s),
                    ResourcePlanner::new(ctx.cluster, c.allocator.cost_cap_usd_per_hour),
                    setting,
                    Box::new(move || (pc.init(step_s, &memory_future, t0), vc.init(step_s))),
                ))
            }
            ControllerConfig::Bc(c) => {
                let m = Model::load(Path::new(&c.model)).expect("validated model directory");
                Box::new(BcPolicy::new(m, policy_setting(ctx), c.act_quantile))
            }
            ControllerConfig::HindsightExpert => {
                Box::new(HindsightExpert::new(policy_setting(ctx), Arc::new(ctx.demand.rate_per_s.clone())))
            }
        }
    }
}

/// What a learned policy or the expert needs from the scenario.
pub fn policy_setting(ctx: &InitContext<'_>) -> PolicySetting {
    let per_request = prescale_sim::cluster::Resources {
        cpu_cores: ctx.service.cores_per_request,
        memory_gib: ctx.service.memory_gib_per_request,
        ..Default::default()
    };
    let st = ctx.cluster.scaling_index().expect("validated");
    let t = &ctx.cluster.instance_types[st];
    let static_servers = ctx
        .cluster
        .instance_types
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != st)
        .map(|(_, o)| o.initial_count * ClusterConfig::servers_per_instance(o, &per_request))
        .sum();
    PolicySetting {
        step_s: ctx.step_s,
        start_unix_s: ctx.demand.start_unix_s,
        mean_service_s: ctx.service.mean_service_s,
        servers_per_instance: ClusterConfig::servers_per_instance(t, &per_request),
        static_servers,
        min_instances: t.min_count,
        max_instances: t.max_count,
        provisioning_delay_s: t.provisioning_delay.mean_s(),
        warmup_s: t.warmup_s,
        slo_quantile: ctx.slo.latency_quantile,
        slo_threshold_s: ctx.slo.latency_threshold_s,
    }
}

/// A problem as `(dotted path, message)`.
type PathProblem = (String, String);

/// Checks a model directory named by a scenario: it loads (card, hash, weights), was trained for `task` at
/// this step, and (as a predictor) takes no cluster-state inputs. Its card and the problems found, or the
/// one problem that it does not load.
fn neural_problems(model: &str, task: Task, step_s: f64) -> Result<(ModelCard, Vec<PathProblem>), PathProblem> {
    let field = "model";
    let card = Model::load(Path::new(model)).map_err(|e| (field.to_string(), e.to_string()))?.card;
    let mut p = Vec::new();
    if card.task != task {
        p.push((
            field.into(),
            format!(
                "{model}: trained for {:?}, used here as a {}",
                card.task,
                if task == Task::Forecast { "predictor (needs Forecast)" } else { "policy (needs Policy)" }
            ),
        ));
    }
    if (card.step_s - step_s).abs() > 1e-9 * step_s {
        p.push((field.into(), format!("{model}: trained at step_s {}, the scenario steps {step_s} s", card.step_s)));
    }
    if task == Task::Forecast
        && let Some(i) = card.spec.inputs.iter().find(|i| i.is_state())
    {
        p.push((
            field.into(),
            format!("{model}: input {i:?} is cluster state, which a predictor does not see (use it as Bc)"),
        ));
    }
    Ok((card, p))
}

/// The variant name of a serialisable enum value, in kebab case (`HoltWinters` → `holt-winters`), as the
/// runtime parts name themselves.
fn variant<T: Serialize>(v: &T) -> String {
    let s = ron::to_string(v).unwrap_or_default();
    let name = s.split(['(', ' ']).next().unwrap_or("");
    let mut out = String::new();
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('-');
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}
