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
use prescale_sim::controller::{Controller, Diagnostics, Observation, ScaleDecision};
use prescale_sim::validate::{Interval, Problems};

use crate::feedback::Feedback;
use crate::predictor::Predictor;
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
    memory: Option<MemoryForecast>,
    make_memory: MakeForecaster,
}

/// Builds a predictor and a variance controller (for a second forecast signal).
pub type MakeForecaster = Box<dyn Fn() -> (Box<dyn Predictor>, Box<dyn VarianceController>) + Send>;

/// The memory-demand forecaster, created at the first observation of an explicit memory demand.
struct MemoryForecast {
    predictor: Box<dyn Predictor>,
    variance: Box<dyn VarianceController>,
    feedback: Feedback,
    last: f64,
}

impl MemoryForecast {
    /// Learns `y`, then returns the largest need (forecast + margin, GiB) over horizons `lo..=hi` and
    /// `1..=lo`.
    fn step(&mut self, y: f64, lo: usize, hi: usize) -> (f64, f64) {
        self.feedback.judge(y, 0.0, self.variance.as_mut());
        self.predictor.observe(y);
        self.last = y;
        match self.predictor.forecast(hi) {
            Ok(fc) => {
                let need = |h: usize| fc.mean[h - 1] + self.variance.margin(fc.mean[h - 1], fc.sd[h - 1]);
                self.feedback.expect(fc.mean[0], self.variance.margin(fc.mean[0], fc.sd[0]));
                ((lo..=hi).map(need).fold(0.0, f64::max), (1..=lo).map(need).fold(0.0, f64::max))
            }
            Err(_) => (y, y),
        }
    }
}

impl PredictiveController {
    /// Assembles the pipeline; `make_memory` builds the predictor and variance controller for an explicit
    /// memory demand, should the workload state one.
    pub fn new(
        predictor: Box<dyn Predictor>,
        variance: Box<dyn VarianceController>,
        planner: ResourcePlanner,
        s: AllocatorSetting,
        make_memory: MakeForecaster,
    ) -> Self {
        let (h_lo, h_hi) = prescale_sim::controller::lead_time_steps(s.provisioning_delay_s, s.step_s, s.warmup_s);
        let name = format!("predictive({} + {})", predictor.name(), variance.name());
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
            memory: None,
            make_memory,
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
        self.predictor.observe(y);
        let (before, after) = self.predictor.take_update().unwrap_or((f64::NAN, f64::NAN));
        self.diag.fine_tune_mae_before_cores = before * cores_per_rate;
        self.diag.fine_tune_mae_after_cores = after * cores_per_rate;
        self.diag.coverage = self.feedback.coverage();
        self.diag.model_calls =
            self.predictor.model_calls() + self.memory.as_ref().map_or(0, |m| m.predictor.model_calls());
        // 2–3. Forecast and needs.
        self.diag.non_finite_output = false;
        let (far, near) = match self.predictor.forecast(self.h_hi) {
            Ok(fc) if fc.mean.iter().chain(&fc.sd).any(|x| !x.is_finite()) => {
                // A broken model: hold the fleet and report the step (the run fails with an error).
                self.diag.non_finite_output = true;
                return ScaleDecision::Hold;
            }
            Ok(fc) => {
                let need = |h: usize| fc.mean[h - 1] + self.variance.margin(fc.mean[h - 1], fc.sd[h - 1]);
                let far = (self.h_lo..=self.h_hi).map(need).fold(0.0, f64::max);
                let near = (1..=self.h_lo).map(need).fold(0.0, f64::max);
                let m1 = self.variance.margin(fc.mean[0], fc.sd[0]);
                self.feedback.expect(fc.mean[0], m1);
                self.predictor.after_forecast(&fc);
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
        if obs.memory_demand_gib.is_finite() {
            let (lo, hi) = (self.h_lo, self.h_hi);
            let make = &self.make_memory;
            let m = self.memory.get_or_insert_with(|| {
                let (predictor, variance) = make();
                MemoryForecast { predictor, variance, feedback: Feedback::new(), last: 0.0 }
            });
            let (mf, mn) = m.step(obs.memory_demand_gib, lo, hi);
            let t = self.s.target_utilisation;
            need_far.memory_gib = need_far.memory_gib.max(mf / t);
            need_near.memory_gib = need_near.memory_gib.max(mn / t);
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
        let own = self.predictor.fault().or_else(|| self.memory.as_ref().and_then(|m| m.predictor.fault()));
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
}
