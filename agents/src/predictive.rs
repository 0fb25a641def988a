//! The proactive allocator (the seed's §3) with its feedback loop (§4): the predictive pipeline as one
//! controller.
//!
//! At each control tick, in this order:
//! 1. **Feedback** ([`crate::feedback`]). The request rate of the step that just ended (`arrivals / Δ`) is
//!    compared with the one-step forecast made for it; the variance controller learns the error (and the
//!    step's SLO misses), the realised coverage is counted, and the predictor observes the value (online
//!    learning: EWMA/Holt-Winters state, AR refits on schedule). An explicit memory demand has its own loop.
//! 2. **Forecast** for horizons `1..=h_hi` steps, `h_lo = ⌈d / Δ⌉`, `h_hi = ⌈(d + Δ + w) / Δ⌉`, where `d` is the
//!    scaling type's mean provisioning delay and `w` its warm-up: capacity ordered now serves from about
//!    `t + d` on, and must carry the load until the next decision's capacity arrives.
//! 3. **Need** per horizon = forecast + margin (variance controller); the order covers the largest need over
//!    `[h_lo, h_hi]`, and nothing is removed that the largest need over `[1, h_lo]` still requires (it could
//!    not come back in time). Needs become resources (`rate · mean_service_s · per-request resources /
//!    target_utilisation`) and then an instance mix (resource prediction module, [`ResourcePlanner`]).
//! 4. **Stabilisation.** A type's count only falls to the highest count asked within the last
//!    `scale_down_stabilisation_s`.
//!
//! A learned predictor may update its model online while it observes (fine-tuning); the one-step error just
//! before and after such an update is reported in the diagnostics.
//!
//! With too little history for the predictor, the controller falls back to a stated reactive rule: capacity
//! for the busy servers seen over the last interval at the target utilisation (the HPA's rule), and reports
//! `fallback` in its diagnostics.

use crate::predictor::PredictorConfig;
use crate::variance::VarianceConfig;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

use prescale_sim::cluster::{ClusterConfig, Resources};
use prescale_sim::controller::{Controller, DemandDiagnostics, Diagnostics, Observation, ScaleDecision};
use prescale_sim::validate::{Interval, Problems};

use crate::feedback::Feedback;
use crate::neural::spec::Signal;
use crate::predictor::{Forecast, Predictor};
use crate::resource::ResourcePlanner;
use crate::variance::VarianceController;

/// Static facts the allocator needs about the service and cluster.
#[derive(Clone, Debug)]
pub struct AllocatorSetting {
    /// Target utilisation of the capacity ordered, in (0, 1].
    pub target_utilisation: f64,
    /// Mean service time, seconds.
    pub mean_service_s: f64,
    /// Resources a request holds in service.
    pub per_request: Resources,
    /// Control interval, seconds.
    pub step_s: f64,
    /// Mean provisioning delay of the scaling type, seconds.
    pub provisioning_delay_s: f64,
    /// Warm-up of the scaling type, seconds (0 to ignore).
    pub warmup_s: f64,
    /// Scale-down stabilisation, seconds.
    pub scale_down_stabilisation_s: f64,
}

/// The predictive controller (see the module docs).
pub struct PredictiveController {
    name: String,
    predictor: Box<dyn Predictor>,
    variance: Box<dyn VarianceController>,
    planner: ResourcePlanner,
    s: AllocatorSetting,
    h_lo: usize,
    h_hi: usize,
    feedback: Feedback,
    asked: VecDeque<(f64, Vec<u32>)>,
    diag: Diagnostics,
    /// One loop per demand beyond the rate that the controller plans when the workload states it.
    demands: Vec<DemandLoop>,
}

/// What builds a stated demand's loop when the workload first states it: its variance controller always, its
/// predictor only when the rate's predictor does not forecast the signal itself (a neural model's predictor
/// would load the model once more for nothing).
pub struct DemandBuilder {
    /// The demand's own predictor.
    pub predictor: Box<dyn Fn() -> Box<dyn Predictor> + Send>,
    /// The demand's own variance controller.
    pub variance: Box<dyn Fn() -> Box<dyn VarianceController> + Send>,
}

/// The loop of a stated demand (memory GiB, network Gbit/s): its own variance controller and feedback, and
/// its own predictor unless the rate's predictor forecasts the signal too (`shared`: its index in
/// [`Predictor::forecast_all`]). Created at the first step that states the demand.
struct DemandLoop {
    signal: Signal,
    build: DemandBuilder,
    shared: Option<usize>,
    state: Option<DemandForecast>,
}

struct DemandForecast {
    predictor: Option<Box<dyn Predictor>>,
    variance: Box<dyn VarianceController>,
    feedback: Feedback,
}

impl DemandForecast {
    /// Judges the pending forecast against `y` and, with a predictor of its own, learns `y`; the forecast
    /// judged (NaN when none was pending).
    fn learn(&mut self, y: f64) -> f64 {
        let judged = self.feedback.judge(y, 0.0, self.variance.as_mut()).unwrap_or(f64::NAN);
        if let Some(p) = self.predictor.as_mut() {
            p.observe(y);
        }
        judged
    }

    /// The largest need (forecast + margin) over horizons `lo..=hi` and `1..=lo` from `fc`, and the margin at
    /// `hi`; the last value `y` for both needs and no margin before the first forecast.
    fn needs(&mut self, fc: Option<&Forecast>, y: f64, lo: usize, hi: usize) -> (f64, f64, f64) {
        match fc {
            Some(fc) => {
                let margin = |h: usize| self.variance.margin(fc.mean[h - 1], fc.sd[h - 1]);
                let need = |h: usize| fc.mean[h - 1] + margin(h);
                self.feedback.expect(fc.mean[0], margin(1));
                let far = (lo..=hi).map(need).fold(0.0, f64::max);
                (far, (1..=lo).map(need).fold(0.0, f64::max), margin(hi))
            }
            None => (y, y, 0.0),
        }
    }
}

/// The step's stated demand of `signal` (NaN when the workload states none).
fn stated(obs: &Observation, signal: Signal) -> f64 {
    match signal {
        Signal::Memory => obs.memory_demand_gib,
        Signal::Network => obs.network_demand_gbps,
        Signal::Rate => f64::NAN,
    }
}

impl PredictiveController {
    /// Assembles the pipeline; `demands` lists the stated demands it plans (memory, network), each with what
    /// builds its predictor and variance controller, should the workload state it (a predictor that
    /// forecasts the signal itself gets only the variance controller from it). A demand not listed is planned
    /// from the requests in service alone (a rate-only agent), whatever the workload states.
    pub fn new(
        predictor: Box<dyn Predictor>,
        variance: Box<dyn VarianceController>,
        planner: ResourcePlanner,
        s: AllocatorSetting,
        demands: Vec<(Signal, DemandBuilder)>,
    ) -> Self {
        let (h_lo, h_hi) = prescale_sim::controller::lead_time_steps(s.provisioning_delay_s, s.step_s, s.warmup_s);
        let name = format!("predictive({} + {})", predictor.name(), variance.name());
        let others = predictor.other_targets();
        let demands = demands
            .into_iter()
            .map(|(signal, build)| {
                let shared = others.iter().position(|o| *o == signal).map(|i| i + 1);
                DemandLoop { signal, build, shared, state: None }
            })
            .collect();
        PredictiveController {
            name,
            predictor,
            variance,
            planner,
            s,
            h_lo,
            h_hi,
            feedback: Feedback::new(),
            asked: VecDeque::new(),
            diag: Diagnostics::default(),
            demands,
        }
    }

    /// Horizons `(h_lo, h_hi)` in steps.
    pub fn horizons(&self) -> (usize, usize) {
        (self.h_lo, self.h_hi)
    }

    fn resources(&self, rate_per_s: f64) -> Resources {
        let busy = rate_per_s.max(0.0) * self.s.mean_service_s / self.s.target_utilisation;
        let r = &self.s.per_request;
        Resources {
            cpu_cores: busy * r.cpu_cores,
            memory_gib: busy * r.memory_gib,
            storage_gib: busy * r.storage_gib,
            network_gbps: busy * r.network_gbps,
        }
    }
}

impl Controller for PredictiveController {
    fn name(&self) -> &str {
        &self.name
    }

    fn decide(&mut self, obs: &Observation) -> ScaleDecision {
        let y = obs.arrivals_in_interval as f64 / obs.interval_s;
        let cores_per_rate = self.s.mean_service_s * self.s.per_request.cpu_cores;
        // 1. Feedback.
        self.diag.forecast_cpu_cores = f64::NAN;
        if let Some(f) = self.feedback.judge(y, obs.slow_fraction, self.variance.as_mut()) {
            self.diag.forecast_cpu_cores = f * cores_per_rate;
        }
        // The stated demands' feedback first: the step's values are what the forecasts of each are judged on.
        let mut planned: Vec<(usize, f64, f64)> = Vec::new();
        (self.diag.memory, self.diag.network) = (None, None);
        for (i, d) in self.demands.iter_mut().enumerate() {
            let v = stated(obs, d.signal);
            if !v.is_finite() {
                continue;
            }
            let (build, shared) = (&d.build, d.shared);
            let st = d.state.get_or_insert_with(|| DemandForecast {
                predictor: shared.is_none().then(|| (build.predictor)()),
                variance: (build.variance)(),
                feedback: Feedback::new(),
            });
            let judged = st.learn(v);
            planned.push((i, v, judged));
        }
        self.predictor.observe_demand(obs.memory_demand_gib, obs.network_demand_gbps);
        self.predictor.observe(y);
        let (before, after) = self.predictor.take_update().unwrap_or((f64::NAN, f64::NAN));
        self.diag.fine_tune_mae_before_cores = before * cores_per_rate;
        self.diag.fine_tune_mae_after_cores = after * cores_per_rate;
        self.diag.coverage = self.feedback.coverage();
        let own_calls =
            |d: &DemandLoop| d.state.as_ref().and_then(|s| s.predictor.as_ref()).map_or(0, |p| p.model_calls());
        self.diag.model_calls = self.predictor.model_calls() + self.demands.iter().map(own_calls).sum::<u64>();
        // 2–3. Forecast and needs (one model call for every target of a multi-target model).
        self.diag.non_finite_output = false;
        let all_targets = planned.iter().any(|(i, _, _)| self.demands[*i].shared.is_some());
        let forecasts = if all_targets {
            self.predictor.forecast_all(self.h_hi)
        } else {
            self.predictor.forecast(self.h_hi).map(|f| vec![f])
        };
        let (far, near) = match &forecasts {
            Ok(all) if all.iter().flat_map(|fc| fc.mean.iter().chain(&fc.sd)).any(|x| !x.is_finite()) => {
                // A broken model: hold the fleet and report the step (the run fails with an error).
                self.diag.non_finite_output = true;
                return ScaleDecision::Hold;
            }
            Ok(all) => {
                let fc = &all[0];
                let need = |h: usize| fc.mean[h - 1] + self.variance.margin(fc.mean[h - 1], fc.sd[h - 1]);
                let far = (self.h_lo..=self.h_hi).map(need).fold(0.0, f64::max);
                let near = (1..=self.h_lo).map(need).fold(0.0, f64::max);
                let m1 = self.variance.margin(fc.mean[0], fc.sd[0]);
                self.feedback.expect(fc.mean[0], m1);
                self.predictor.after_forecast_all(all);
                self.diag.margin_cpu_cores = (need(self.h_hi) - fc.mean[self.h_hi - 1]) * cores_per_rate;
                self.diag.fallback = false;
                (far, near)
            }
            Err(_) => {
                // Reactive rule: the rate the busy servers of the last interval were serving.
                let served_rate = obs.busy_servers() / self.s.mean_service_s;
                self.diag.fallback = true;
                self.diag.margin_cpu_cores = 0.0;
                (served_rate, served_rate)
            }
        };
        let (mut need_far, mut need_near) = (self.resources(far), self.resources(near));
        let (lo, hi, t) = (self.h_lo, self.h_hi, self.s.target_utilisation);
        for (i, v, judged) in planned {
            let d = &mut self.demands[i];
            let st = d.state.as_mut().expect("created above");
            let own: Option<Forecast> = st.predictor.as_ref().and_then(|p| p.forecast(hi).ok());
            let fc = match (d.shared, &forecasts) {
                (None, _) => own.as_ref(),
                (Some(j), Ok(all)) => all.get(j),
                (Some(_), Err(_)) => None,
            };
            let (f, n, margin) = st.needs(fc, v, lo, hi);
            if let (Some(p), Some(fc)) = (st.predictor.as_mut(), &own) {
                p.after_forecast(fc);
            }
            let report = Some(DemandDiagnostics { forecast: judged, margin, coverage: st.feedback.coverage() });
            let (far, near) = match d.signal {
                Signal::Memory => {
                    self.diag.memory = report;
                    (&mut need_far.memory_gib, &mut need_near.memory_gib)
                }
                Signal::Network => {
                    self.diag.network = report;
                    (&mut need_far.network_gbps, &mut need_near.network_gbps)
                }
                Signal::Rate => unreachable!("the rate is the main loop"),
            };
            *far = far.max(f / t);
            *near = near.max(n / t);
        }
        let plan_far = self.planner.plan(&need_far);
        let plan_near = self.planner.plan(&need_near);
        self.diag.clipped = plan_far.clipped.is_some();
        let mut counts: Vec<u32> = plan_far.counts.iter().zip(&plan_near.counts).map(|(a, b)| *a.max(b)).collect();
        // 4. Scale-down stabilisation.
        let now = obs.now_s;
        self.asked.retain(|(t, _)| *t > now - self.s.scale_down_stabilisation_s);
        self.asked.push_back((now, counts.clone()));
        for (_, past) in &self.asked {
            for (c, p) in counts.iter_mut().zip(past) {
                *c = (*c).max(*p);
            }
        }
        ScaleDecision::Mix { instances: counts }
    }

    fn diagnostics(&self) -> Option<Diagnostics> {
        Some(self.diag)
    }

    fn fault(&self) -> Option<String> {
        let own = self.predictor.fault().or_else(|| {
            self.demands
                .iter()
                .find_map(|d| d.state.as_ref().and_then(|s| s.predictor.as_ref()).and_then(|p| p.fault()))
        });
        own.map(|f| format!("controller {}: {f}", self.name))
    }
}

/// The allocator's parameters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AllocatorConfig {
    /// Utilisation the ordered capacity should run at, in (0, 1].
    pub target_utilisation: f64,
    /// Scale-down stabilisation, seconds.
    #[serde(default = "stab")]
    pub scale_down_stabilisation_s: f64,
    /// Cap on the fleet's price, USD per hour.
    #[serde(default)]
    pub cost_cap_usd_per_hour: Option<f64>,
    /// Count the warm-up in the horizon.
    #[serde(default = "yes")]
    pub include_warmup: bool,
}

impl AllocatorConfig {
    /// Checks the parameters into `p` (paths below `allocator`), the cost cap against `cluster`.
    pub fn check(&self, p: &mut Problems, cluster: &ClusterConfig) {
        p.within("target_utilisation", self.target_utilisation, Interval::open_closed(0.0, 1.0));
        p.non_negative("scale_down_stabilisation_s", self.scale_down_stabilisation_s);
        if let Some(cap) = self.cost_cap_usd_per_hour {
            let min_price = ResourcePlanner::new(cluster, None).minimum_usd_per_hour();
            p.require("cost_cap_usd_per_hour", cap >= min_price, || {
                format!("must be >= the price of the minimum fleet ({min_price:.4} USD/h), got {cap}")
            });
        }
    }
}

fn stab() -> f64 {
    300.0
}
fn yes() -> bool {
    true
}

/// The predictive pipeline: predictor, variance controller, allocator.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PredictiveConfig {
    /// The predictor.
    pub predictor: PredictorConfig,
    /// The variance controller.
    pub variance: VarianceConfig,
    /// The allocator.
    pub allocator: AllocatorConfig,
    /// How a memory demand the workload states (a trace's memory column) is planned (default `Forecast`).
    #[serde(default, skip_serializing_if = "DemandPlan::is_forecast")]
    pub memory: DemandPlan,
    /// How a network demand the workload states (a trace's network column) is planned (default `Forecast`).
    #[serde(default, skip_serializing_if = "DemandPlan::is_forecast")]
    pub network: DemandPlan,
}

/// How the predictive controller plans a demand beyond the rate that the workload states (memory, network).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum DemandPlan {
    /// Forecast it with its own margin (its own variance controller of the same kind): from the predictor's
    /// own output for it when it has one (a neural model with targets `[Rate, Memory]`), otherwise with a
    /// second predictor of the same kind (classical and external predictors); the order covers whichever
    /// resource binds.
    #[default]
    Forecast,
    /// Ignore it, as for a workload that states none: memory follows from the requests in service (`rate ·
    /// mean_service_s · memory_gib_per_request`), bandwidth is whatever the instances bought for the other
    /// resources carry — a rate-only agent, the baseline of the multi-resource one.
    FromRate,
}

impl DemandPlan {
    /// Whether this is the default (left out when a config is written, so older configs hash the same).
    pub fn is_forecast(&self) -> bool {
        *self == DemandPlan::Forecast
    }
}
