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
use prescale_sim::validate::{Interval, Problems};
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

    /// Checks the predictor into `p` (paths below `predictor`); `needed_steps` is the allocator's farthest
    /// horizon.
    fn check(&self, p: &mut Problems, step_s: f64, horizon_s: Option<f64>, needed_steps: Option<u32>) {
        match *self {
            PredictorConfig::SeasonalNaive { period_s } => {
                p.at_least("period_s", period_s, step_s, "step_s");
            }
            PredictorConfig::MovingAverage { window_s } => {
                p.at_least("window_s", window_s, step_s, "step_s");
            }
            PredictorConfig::Ewma { alpha } => {
                p.within("alpha", alpha, Interval::open_closed(0.0, 1.0));
            }
            PredictorConfig::HoltWinters { period_s, alpha, beta, gamma, .. } => {
                p.at_least("period_s", period_s, 2.0 * step_s, "2 steps");
                p.within("alpha", alpha, Interval::open(0.0, 1.0));
                p.within("beta", beta, Interval::open(0.0, 1.0));
                p.within("gamma", gamma, Interval::open(0.0, 1.0));
            }
            PredictorConfig::Ar { p: order, window_s, refit_every_s } => {
                p.count_within("p", order.into(), 1, 48);
                let need = (3 * order + 2) as f64 * step_s;
                p.require("window_s", window_s >= need, || {
                    format!("must cover at least 3p + 2 steps ({need} s), got {window_s}")
                });
                p.at_least("refit_every_s", refit_every_s, step_s, "step_s");
            }
            PredictorConfig::LastValue | PredictorConfig::Oracle => {}
            PredictorConfig::Neural { ref model, ref fine_tune } => {
                // The model directory is read once here; every check below uses its card.
                let Some(card) = check_model(p, model, Task::Forecast, step_s) else { return };
                let (window, horizons) = (card.spec.window_steps as usize, card.spec.horizon_steps);
                if let Some(ft) = fine_tune {
                    p.under("fine_tune", |p| ft.check(p, step_s, window, horizons as usize));
                }
                if let Some(h_hi) = needed_steps {
                    p.require("model", horizons >= h_hi, || {
                        format!(
                            "{model}: forecasts {horizons} steps ahead, the allocator needs {h_hi} (provisioning \
                             delay, one step and warm-up); train with horizon_steps >= {h_hi}"
                        )
                    });
                }
                return;
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
                p.add(field, format!("needs {hist} s of history, but the run lasts {h} s: it would never forecast"));
            }
        }
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

    fn check_workload(&self, p: &mut Problems, states_memory: bool) {
        if let ControllerConfig::Predictive(PredictiveConfig {
            predictor: PredictorConfig::Neural { model, .. }, ..
        }) = self
            && states_memory
        {
            p.add(
                "predictor.model",
                format!(
                    "{model}: the workload states a memory demand, which the predictive controller forecasts with the \
                     same predictor, but this model was trained on request rates only; use a classical predictor for \
                     this workload"
                ),
            );
        }
    }

    fn check(&self, p: &mut Problems, cluster: &ClusterConfig, step_s: f64, horizon_s: Option<f64>) {
        match self {
            ControllerConfig::Static(c) => c.check(p, cluster.scaling_max_count()),
            ControllerConfig::ReferenceHpa(c) => c.check(p),
            ControllerConfig::Hpa(c) => c.check(p),
            ControllerConfig::TargetTracking(c) => c.check(p),
            ControllerConfig::StepScaling(c) => c.check(p),
            ControllerConfig::Bc(c) => {
                check_model(p, &c.model, Task::Policy, step_s);
                if let Some(q) = c.act_quantile {
                    p.within("act_quantile", q, Interval::open(0.0, 1.0));
                }
            }
            ControllerConfig::HindsightExpert => {}
            ControllerConfig::Predictive(c) => {
                // The allocator's farthest horizon (the lead time `PredictiveController::new` uses).
                let h_hi = cluster.scaling_index().map(|i| {
                    let t = &cluster.instance_types[i];
                    let w = if c.allocator.include_warmup { t.warmup_s } else { 0.0 };
                    prescale_sim::controller::lead_time_steps(t.provisioning_delay.mean_s(), step_s, w).1 as u32
                });
                p.under("predictor", |p| c.predictor.check(p, step_s, horizon_s, h_hi));
                p.under("variance", |p| c.variance.check(p));
                p.under("allocator", |p| c.allocator.check(p, cluster));
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

/// Checks a model directory named by a scenario into `p` (at `model`): it loads (card, hash, weights), was
/// trained for `task` at this step, and (as a predictor) takes no cluster-state inputs. Its card, if it loads.
fn check_model(p: &mut Problems, model: &str, task: Task, step_s: f64) -> Option<ModelCard> {
    let card = match Model::load(Path::new(model)) {
        Ok(m) => m.card,
        Err(e) => {
            p.add("model", e.to_string());
            return None;
        }
    };
    p.require("model", card.task == task, || {
        format!(
            "{model}: trained for {:?}, used here as a {}",
            card.task,
            if task == Task::Forecast { "predictor (needs Forecast)" } else { "policy (needs Policy)" }
        )
    });
    p.require("model", (card.step_s - step_s).abs() <= 1e-9 * step_s, || {
        format!("{model}: trained at step_s {}, the scenario steps {step_s} s", card.step_s)
    });
    if task == Task::Forecast
        && let Some(i) = card.spec.inputs.iter().find(|i| i.is_state())
    {
        p.add("model", format!("{model}: input {i:?} is cluster state, which a predictor does not see (use it as Bc)"));
    }
    Some(card)
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
