//! The hindsight expert that behavioural cloning imitates, and the scenario facts it and the learner share
//! ([`PolicySetting`]).
//!
//! **The hindsight expert.** At the decision that ends step `k` (time `(k + 1)·Δ`), capacity ordered now is
//! usable over the horizons `h ∈ [h_lo, h_hi]`, `h_lo = ⌈d/Δ⌉`, `h_hi = ⌈(d + Δ + w)/Δ⌉` (`d` the scaling
//! type's mean provisioning delay, `w` its warm-up), exactly as for the proactive allocator. The expert knows
//! the true future rates `λ(k + h)` and orders
//!
//! ```text
//! n*(k) = max over h in [1, h_hi] of  n_min( λ(k + h) + B / (h_hi · Δ) )
//! n_min(λ) = the least n in [min_count, max_count] such that, with c = n · servers_per_instance + static
//!            servers, λ < c·μ and the SLO quantile of the M/M/c sojourn time is at most the SLO threshold
//! ```
//!
//! where `B` is the backlog (waiting requests) at the decision: the expert also clears what is queued within
//! the horizon. Horizons before `h_lo` count too: what is needed then cannot be ordered any more, but it must
//! not be removed (the proactive allocator's scale-down rule). Its label depends on the state it is asked in (the backlog), which is what makes DAgger
//! (Ross, Gordon & Bagnell 2011) matter: a learner that under-provisions meets backlogs the expert never
//! produced, and is taught there.

use std::sync::Arc;

use prescale_sim::cluster::ClusterConfig;
use prescale_sim::controller::{Controller, Observation, ScaleDecision};
use prescale_sim::queueing::Latency;
use prescale_sim::scenario::InitContext;
use serde::{Deserialize, Serialize};

/// What the expert and the policy need to know about the scenario.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PolicySetting {
    /// Control step, seconds.
    pub step_s: f64,
    /// Wall-clock instant of step 0 (calendar inputs).
    pub start_unix_s: f64,
    /// Mean service time, seconds.
    pub mean_service_s: f64,
    /// Servers per instance of the scaling type.
    pub servers_per_instance: u32,
    /// Servers of the static (non-scaling) pools.
    pub static_servers: u32,
    /// Scaling type's count limits.
    pub min_instances: u32,
    /// See `min_instances`.
    pub max_instances: u32,
    /// Scaling type's mean provisioning delay, seconds.
    pub provisioning_delay_s: f64,
    /// Scaling type's warm-up, seconds.
    pub warmup_s: f64,
    /// SLO latency quantile (e.g. 0.99).
    pub slo_quantile: f64,
    /// SLO latency threshold, seconds.
    pub slo_threshold_s: f64,
}

impl PolicySetting {
    /// What a learned policy or the expert needs from the scenario a controller is built in.
    pub fn from_context(ctx: &InitContext<'_>) -> PolicySetting {
        let per_request = ctx.service.per_request();
        let st = ctx.cluster.scaling_index().expect("validated");
        let t = &ctx.cluster.instance_types[st];
        let static_servers = ctx.cluster.static_servers(&per_request);
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

    /// Horizons `(h_lo, h_hi)` in steps.
    pub fn horizons(&self) -> (usize, usize) {
        prescale_sim::controller::lead_time_steps(self.provisioning_delay_s, self.step_s, self.warmup_s)
    }

    /// Capacity of `n` instances, requests per second.
    pub fn capacity_per_s(&self, n: f64) -> f64 {
        n * self.servers_per_instance as f64 / self.mean_service_s
    }

    /// Instances for a capacity (rounded to the nearest, within the limits).
    pub fn instances(&self, capacity_per_s: f64) -> u32 {
        let n = (capacity_per_s * self.mean_service_s / self.servers_per_instance as f64).round();
        (n.max(0.0) as u32).clamp(self.min_instances, self.max_instances)
    }
}

/// The hindsight expert (see the module docs).
#[derive(Clone, Debug)]
pub struct HindsightExpert {
    s: PolicySetting,
    rates: Arc<Vec<f64>>,
    h_hi: usize,
}

impl HindsightExpert {
    /// An expert that knows `rates` (requests per second per step).
    pub fn new(s: PolicySetting, rates: Arc<Vec<f64>>) -> Self {
        let (_, h_hi) = s.horizons();
        HindsightExpert { s, rates, h_hi }
    }

    /// The least instances meeting the SLO at rate `lambda` (the max count when none does).
    pub fn n_min(&self, lambda: f64) -> u32 {
        let mu = 1.0 / self.s.mean_service_s;
        let spi = self.s.servers_per_instance;
        let q = self.s.slo_quantile;
        let lower = ((lambda / mu - self.s.static_servers as f64) / spi as f64).floor().max(0.0) as u32;
        // Within the scaling type's limits: an order the fleet cannot carry out is no label to learn from.
        let mut n = lower.max(self.s.min_instances).min(self.s.max_instances);
        while n < self.s.max_instances {
            let c = n * spi + self.s.static_servers;
            if c > 0
                && lambda < c as f64 * mu
                && (lambda <= 0.0 || Latency::mmc(lambda, mu, c).quantile(q) <= self.s.slo_threshold_s)
            {
                break;
            }
            n += 1;
        }
        n
    }

    /// The expert's order at the decision an observation belongs to (it ends step `now / Δ − 1`).
    pub fn order(&self, obs: &Observation) -> u32 {
        let k = ((obs.now_s / self.s.step_s).round() as usize).saturating_sub(1);
        self.label(k, obs.queue_len as f64)
    }

    /// The expert's order at the decision ending step `k`, with `backlog` requests waiting.
    pub fn label(&self, k: usize, backlog: f64) -> u32 {
        let last = self.rates.len().saturating_sub(1);
        let drain = backlog.max(0.0) / (self.h_hi as f64 * self.s.step_s);
        (1..=self.h_hi).map(|h| self.n_min(self.rates[(k + h).min(last)] + drain)).max().unwrap_or(0)
    }
}

/// The expert acting: `controller: HindsightExpert` (an upper bound, like the oracle).
impl Controller for HindsightExpert {
    fn name(&self) -> &str {
        "hindsight-expert"
    }
    fn decide(&mut self, obs: &Observation) -> ScaleDecision {
        ScaleDecision::To { instances: self.order(obs) }
    }
}
