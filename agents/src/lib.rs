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
//! | behavioural-cloning agent | [`neural::policy`] (the policy acting), [`neural::expert`] (the hindsight expert it imitates), [`neural::dagger`] (rollouts, BC + DAgger rounds) |
//! | predictors (forecast with uncertainty) | [`predictor`] (config in `predictor/config.rs`), [`neural::forecaster`], trained by [`neural::forecast_cloning`] |
//! | variance controller | [`variance`] |
//! | resource prediction module | [`resource`] |
//! | proactive allocator | [`predictive`] |
//! | feedback loop | [`feedback`] |
//!
//! [`ControllerConfig`] is the `controller:` part of a scenario file: every controller by name with its
//! parameters, validated with dotted paths, built with [`prescale_sim::scenario::ControllerSpec::init`].
//! Unknown names are refused by the parser with the list of known ones.

mod child;
pub mod external;
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
use prescale_sim::scenario::{ControllerSpec, InitContext, StatedDemand};
use prescale_sim::validate::{Interval, Problems};
use serde::{Deserialize, Serialize};

pub use prescale_sim::controller::{Observation, ScaleDecision};

pub use crate::hpa::HpaConfig;
use crate::hpa::KubernetesHpa;
pub use crate::neural::facts::BcConfig;
pub use crate::predictive::{AllocatorConfig, DemandPlan, PredictiveConfig};
use crate::predictive::{AllocatorSetting, PredictiveController};
pub use crate::predictor::PredictorConfig;
use crate::reactive::{StepScaling, StepScalingConfig, TargetTracking, TargetTrackingConfig};
use crate::resource::ResourcePlanner;
pub use crate::variance::VarianceConfig;
pub use neural::expert::PricedExpert;
use neural::expert::{HindsightExpert, PolicySetting};
use neural::facts::{ModelFacts, Task};
use neural::runtime::check_model;
use neural::spec::Signal;
use std::path::Path;

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
    /// The hindsight expert planning for its own price of a violated SLO minute instead of the scenario's
    /// (`slo.violation_price_usd_per_min`): swept as a family (`knob: (values: [0.01, 0.05, 1.0])`) it traces
    /// the expert's cost–SLO frontier, so that other families can be read against it at equal SLO minutes.
    PricedHindsightExpert(PricedExpert),
    /// A controller outside Rust: a child process answering each tick's observation with a decision
    /// (`examples/external/README.md`).
    External(external::ExternalConfig),
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
            ControllerConfig::Bc(c) => neural::facts::bc_name(
                &Path::new(&c.model).file_name().map_or(c.model.clone(), |n| n.to_string_lossy().into_owned()),
            ),
            ControllerConfig::HindsightExpert => "hindsight-expert".into(),
            ControllerConfig::PricedHindsightExpert(_) => "priced-hindsight-expert".into(),
            ControllerConfig::External(_) => "external".into(),
        }
    }

    fn resolve_paths(&mut self, base: &Path) {
        if let Some(m) = self.model_mut() {
            let p = Path::new(m.as_str());
            if p.is_relative() {
                let joined = base.join(p);
                *m = joined.canonicalize().unwrap_or(joined).display().to_string();
            }
        }
        // An external predictor or controller runs in the folder of the file that names it (or `dir` below it).
        let dir = match self {
            ControllerConfig::Predictive(PredictiveConfig {
                predictor: PredictorConfig::External { dir, .. }, ..
            }) => Some(dir),
            ControllerConfig::External(c) => Some(&mut c.dir),
            _ => None,
        };
        if let Some(dir) = dir {
            let joined = base.join(dir.as_deref().unwrap_or("."));
            *dir = Some(joined.canonicalize().unwrap_or(joined).display().to_string());
        }
    }

    fn check_workload(&self, p: &mut Problems, stated: StatedDemand) {
        self.check_workload_with(p, stated, None);
    }

    fn check(&self, p: &mut Problems, cluster: &ClusterConfig, step_s: f64, horizon_s: Option<f64>) {
        self.check_with(p, cluster, step_s, horizon_s, None);
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
                    per_request: ctx.service.per_request(),
                    step_s: ctx.step_s,
                    provisioning_delay_s: t.provisioning_delay.mean_s(),
                    warmup_s: if c.allocator.include_warmup { t.warmup_s } else { 0.0 },
                    scale_down_stabilisation_s: c.allocator.scale_down_stabilisation_s,
                };
                let future = Arc::new(ctx.demand.rate_per_s.clone());
                let (step_s, t0, seed) = (ctx.step_s, ctx.demand.start_unix_s, ctx.seed);
                // A loop per stated demand the config plans (an oracle reads that demand's own future).
                let demands = [
                    (Signal::Memory, c.memory, &ctx.demand.memory_gib, "memory_gib"),
                    (Signal::Network, c.network, &ctx.demand.network_gbps, "network_gbps"),
                ]
                .into_iter()
                .filter(|(_, plan, _, _)| *plan == DemandPlan::Forecast)
                .map(|(signal, _, series, name)| {
                    let (pc, vc) = (c.predictor.clone(), c.variance.clone());
                    let future = Arc::new(series.clone().unwrap_or_default());
                    let build = predictive::DemandBuilder {
                        predictor: Box::new(move || pc.init(step_s, &future, t0, seed, name)),
                        variance: Box::new(move || vc.init(step_s)),
                    };
                    (signal, build)
                })
                .collect();
                Box::new(PredictiveController::new(
                    c.predictor.init(ctx.step_s, &future, t0, seed, "requests_per_s"),
                    c.variance.init(ctx.step_s),
                    ResourcePlanner::new(ctx.cluster, c.allocator.cost_cap_usd_per_hour),
                    setting,
                    demands,
                ))
            }
            ControllerConfig::Bc(c) => (neural::runtime::runtime("a BC policy")
                .expect("checked when validated")
                .bc_policy)(
                Path::new(&c.model), PolicySetting::from_context(ctx), c
            ),
            ControllerConfig::HindsightExpert | ControllerConfig::PricedHindsightExpert(_) => {
                let mut setting = PolicySetting::from_context(ctx);
                if let ControllerConfig::PricedHindsightExpert(c) = self {
                    setting.violation_price_usd_per_min = Some(c.violation_price_usd_per_min);
                }
                Box::new(
                    HindsightExpert::new(setting, Arc::new(ctx.demand.rate_per_s.clone()))
                        .with_demand(ctx.demand.memory_gib.as_deref(), ctx.demand.network_gbps.as_deref()),
                )
            }
            ControllerConfig::External(c) => Box::new(external::ExternalController::start(c, ctx)),
        }
    }
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

impl ControllerConfig {
    /// [`ControllerSpec::check`], with the facts of a model that is not trained yet (`planned`: an experiment's
    /// training stage will write it before the runs) standing in for the model directory's card.
    pub fn check_with(
        &self,
        p: &mut Problems,
        cluster: &ClusterConfig,
        step_s: f64,
        horizon_s: Option<f64>,
        planned: Option<&ModelFacts>,
    ) {
        match self {
            ControllerConfig::Static(c) => c.check(p, cluster.scaling_max_count()),
            ControllerConfig::ReferenceHpa(c) => c.check(p),
            ControllerConfig::Hpa(c) => c.check(p),
            ControllerConfig::TargetTracking(c) => c.check(p),
            ControllerConfig::StepScaling(c) => c.check(p),
            ControllerConfig::External(c) => c.check(p),
            ControllerConfig::Bc(c) => {
                let card = check_model(p, &c.model, Task::Policy, step_s, planned);
                if let Some(q) = c.act_quantile {
                    p.within("act_quantile", q, Interval::open(0.0, 1.0));
                }
                // Fine-tunes and refits label decisions once the expert's horizons after them have passed.
                let h_hi = cluster.scaling_index().map_or(1, |i| {
                    let t = &cluster.instance_types[i];
                    prescale_sim::controller::lead_time_steps(t.provisioning_delay.mean_s(), step_s, t.warmup_s).1
                });
                if let Some(card) = card {
                    let l = card.spec.window_steps as usize;
                    if let Some(ft) = &c.fine_tune {
                        p.under("fine_tune", |p| ft.check(p, step_s, l, h_hi));
                    }
                    if let Some(r) = &c.refit {
                        p.under("refit", |p| r.check(p, step_s, l, h_hi));
                    }
                }
            }
            ControllerConfig::HindsightExpert => {}
            ControllerConfig::PricedHindsightExpert(c) => c.check(p),
            ControllerConfig::Predictive(c) => {
                // The allocator's farthest horizon (the lead time `PredictiveController::new` uses).
                let h_hi = cluster.scaling_index().map(|i| {
                    let t = &cluster.instance_types[i];
                    let w = if c.allocator.include_warmup { t.warmup_s } else { 0.0 };
                    prescale_sim::controller::lead_time_steps(t.provisioning_delay.mean_s(), step_s, w).1 as u32
                });
                p.under("predictor", |p| c.predictor.check(p, step_s, horizon_s, h_hi, planned));
                p.under("variance", |p| c.variance.check(p));
                p.under("allocator", |p| c.allocator.check(p, cluster));
            }
        }
    }

    /// [`ControllerSpec::check_workload`] with the facts of a model an experiment will train (`planned`;
    /// otherwise a neural predictor's card is read from its folder, and a folder that cannot be read is left to
    /// [`ControllerConfig::check_with`]): a workload that states a memory or network demand needs a controller
    /// that plans it — a neural predictor that forecasts it (targets `[Rate, Memory]`, …), or `FromRate` for
    /// it — and a model (a predictor's or a BC policy's) that sees such a demand needs a workload that states it,
    /// as does a BC policy's `resource_floor`.
    pub fn check_workload_with(&self, p: &mut Problems, stated: StatedDemand, planned: Option<&ModelFacts>) {
        if let ControllerConfig::Bc(c) = self
            && c.resource_floor
            && !stated.memory
            && !stated.network
        {
            p.add(
                "resource_floor",
                "the floor is what the memory or network the workload states needs, but it states neither; give \
                 the trace's memory or network column (meaning: Utilisation(resource: Memory, ...)) or drop \
                 resource_floor",
            );
        }
        // The model's path and what it is; a predictive controller also plans what the workload states.
        let (model, path, what, plans) = match self {
            ControllerConfig::Bc(c) => (c.model.as_str(), "model", "policy", None),
            ControllerConfig::Predictive(c) => match &c.predictor {
                PredictorConfig::Neural { model, .. } => (model.as_str(), "predictor.model", "model", Some(c)),
                _ => return,
            },
            _ => return,
        };
        let spec = match planned {
            Some(f) => f.spec.clone(),
            None => match neural::card::read_card(Path::new(model)) {
                Ok(card) => card.spec,
                Err(_) => return,
            },
        };
        for (signal, states, field) in
            [(Signal::Memory, stated.memory, "memory"), (Signal::Network, stated.network, "network")]
        {
            if spec.inputs.contains(&signal.input()) && !states {
                p.add(
                    path,
                    format!(
                        "{model}: the {what} sees the {field} demand (input {signal:?}), but the workload states \
                         none; give the trace's {field} column (meaning: Utilisation(resource: {signal:?}, ...)) or \
                         use a {what} without it"
                    ),
                );
            }
            let plan = plans.map(|c| if signal == Signal::Memory { c.memory } else { c.network });
            if states && plan == Some(DemandPlan::Forecast) && !spec.targets.contains(&signal) {
                p.add(
                    path,
                    format!(
                        "{model}: the workload states a {field} demand, which the controller must plan for, but \
                         this model does not forecast it (targets {:?}); train it with {signal:?} among its targets \
                         (and inputs), or set {field}: FromRate to plan without it (a rate-only agent)",
                        spec.targets
                    ),
                );
            }
        }
    }

    /// The model directory this controller names (a BC policy's, a neural predictor's), if any.
    pub fn model(&self) -> Option<&str> {
        match self {
            ControllerConfig::Bc(c) => Some(&c.model),
            ControllerConfig::Predictive(PredictiveConfig {
                predictor: PredictorConfig::Neural { model, .. }, ..
            }) => Some(model),
            _ => None,
        }
    }

    /// Whether this controller's model may be shared with other runs (batched inference across a sweep,
    /// `neural::batch`): it names one and does not change its weights (no online fine-tuning, no refits).
    pub fn shares_model(&self) -> bool {
        match self {
            ControllerConfig::Predictive(PredictiveConfig {
                predictor: PredictorConfig::Neural { fine_tune, refit, .. },
                ..
            }) => fine_tune.is_none() && refit.is_none(),
            ControllerConfig::Bc(c) => !c.adapts(),
            c => c.model().is_some(),
        }
    }

    /// [`ControllerConfig::model`], to be rewritten (a relative path resolved).
    pub fn model_mut(&mut self) -> Option<&mut String> {
        match self {
            ControllerConfig::Bc(c) => Some(&mut c.model),
            ControllerConfig::Predictive(PredictiveConfig {
                predictor: PredictorConfig::Neural { model, .. }, ..
            }) => Some(model),
            _ => None,
        }
    }

    /// The aggressiveness knob of this controller's family — the field, below the variant, that trades cost for
    /// SLO violations and that an experiment sweeps to draw the family's cost–SLO frontier: the target
    /// utilisation of the HPAs, target tracking and the predictive allocator, the action quantile of a BC
    /// policy, the instance count of a static pool. `None` for controllers with no single knob (step scaling's
    /// thresholds come in pairs; the hindsight expert is a bound, not a setting).
    pub fn knob(&self) -> Option<&'static str> {
        match self {
            ControllerConfig::Static(_) => Some("instances"),
            ControllerConfig::Hpa(c) if c.metric != hpa::HpaMetric::Cpu => Some("metric.target_per_pod"),
            ControllerConfig::ReferenceHpa(_) | ControllerConfig::Hpa(_) | ControllerConfig::TargetTracking(_) => {
                Some("target_utilisation")
            }
            ControllerConfig::Predictive(_) => Some("allocator.target_utilisation"),
            ControllerConfig::Bc(_) => Some("act_quantile"),
            ControllerConfig::PricedHindsightExpert(_) => Some("violation_price_usd_per_min"),
            ControllerConfig::StepScaling(_) | ControllerConfig::HindsightExpert | ControllerConfig::External(_) => {
                None
            }
        }
    }

    /// This controller with the number at `path` (dotted, below the variant: `target_utilisation`,
    /// `variance.alpha`) set to `value`; a whole value is written as an integer, so count fields take it.
    ///
    /// # Errors
    /// A path that names no field of this controller, or a value the field does not take (its type's words).
    pub fn with_setting(&self, path: &str, value: f64) -> Result<Self, String> {
        use serde_json::Value;
        let mut json = serde_json::to_value(self).map_err(|e| e.to_string())?;
        let Some(body) = json.as_object_mut().and_then(|o| o.values_mut().next()) else {
            return Err(format!("{} has no settings", self.name()));
        };
        let (parents, last) = path.rsplit_once('.').map_or((None, path), |(a, b)| (Some(a), b));
        // An enum inside (`variance: AdaptiveConformal(…)`) is a one-key map named by its variant: the path
        // goes through it, as RON's reader writes it.
        fn fields_of(v: &mut Value) -> &mut Value {
            let tagged = v
                .as_object()
                .is_some_and(|o| o.len() == 1 && o.keys().all(|k| k.starts_with(|c: char| c.is_ascii_uppercase())));
            if tagged { v.as_object_mut().and_then(|o| o.values_mut().next()).expect("one key") } else { v }
        }
        let mut at = fields_of(body);
        for seg in parents.into_iter().flat_map(|p| p.split('.')) {
            at = match at.get_mut(seg) {
                Some(v) if v.is_object() => fields_of(v),
                _ => return Err(format!("'{path}' names no field of {}", self.name())),
            };
        }
        let Some(fields) = at.as_object_mut() else {
            return Err(format!("'{path}' names no field of {}", self.name()));
        };
        let number = if value.fract() == 0.0 && value.abs() < 9.0e15 {
            Value::from(value as i64)
        } else {
            serde_json::Number::from_f64(value).map(Value::Number).ok_or_else(|| format!("{value} is not a number"))?
        };
        let known = fields.contains_key(last);
        fields.insert(last.to_string(), number);
        serde_json::from_value(json).map_err(|e| {
            if known {
                format!("'{path}' does not take {value}: {e}")
            } else {
                format!("'{path}' names no field of {}: {e}", self.name())
            }
        })
    }
}

// The tests beyond the modules' own (agents/tests/: the HPA against its documented behaviour, the reactive
// controllers) are modules of the library's one test binary, naming the crate as users do: one link, not two.
#[cfg(test)]
extern crate self as prescale_agents;
#[cfg(test)]
#[path = "../tests/main.rs"]
mod integration;
