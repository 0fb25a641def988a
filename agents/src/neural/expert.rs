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
//! not be removed (the proactive allocator's scale-down rule).
//!
//! **Priced violations.** Where the scenario prices a minute of SLO violation (`slo.violation_price_usd_per_min`
//! = `p`), meeting every peak is no longer the goal: among the counts `n` from `min_count` up to the order
//! above, the expert orders the one whose window costs least (ties to the larger),
//!
//! ```text
//! cost(n) = (h_hi + h_lo) · n · c·Δ/3600  +  p·Δ/60 · (violated steps)  +  cost-to-go(k + h_hi + h_lo + 1, Q)
//! ```
//!
//! (`c` the scaling type's price per instance-hour). The violated steps come from a fluid queue held at the
//! capacity `C(n)` of `n` instances: `Q ← max(0, Q + (λ(k + h) − C(n))·Δ)` from the backlog `B`; a step of the
//! window is violated when `n < n_min(λ(k + h))` or what is still queued at its end waits longer than the SLO
//! threshold (`Q > C(n)·T`). What is ordered at the next decisions arrives only after the lead time, so the
//! queue runs on at `n` under the last rate for `h_lo` more steps (billed, each violated while `Q > C(n)·T`),
//! and what is then left queued costs the **cost-to-go** from there: the least cost of the rest of the run
//! with that backlog, computed once per expert by backward dynamic programming over a grid of backlogs
//! (`CostToGo`; the count free to change at every step — the window above carries the lead time). So the
//! expert weighs a spike's backlog against everything it will cost later: at `p = 0` it orders the least it
//! may; as `p` grows it leaves as few violated minutes as the hard order (and may save instances that would not
//! have prevented any); between the two it may leave a slight overload that only slows requests, or a whole
//! crowd, short when its minutes cost less than its instances. It is still a plan over a fluid model that
//! neglects warm-up, billing minimums and the randomness of provisioning (measured against the hard expert and
//! the cost-aware policies in `tests/neural.rs` and `experiments/cost-aware/`).
//!
//! **Stated memory and network.** Where the workload states memory or network demand per step (a trace's
//! columns), the expert also knows it ([`HindsightExpert::with_demand`]) and orders no fewer instances than the
//! horizons' largest demand needs beside the static pools (`⌈(demand − pools) / per instance⌉`, whichever
//! resource binds): requests a short memory or network turns away are failures, not a latency to trade, so
//! this floor holds with a price too.

use std::sync::{Arc, OnceLock};

use prescale_sim::cluster::ClusterConfig;
use prescale_sim::controller::{Controller, Observation, ScaleDecision};
use prescale_sim::scenario::{InitContext, instances_for_slo};
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
    /// CPU cores one request holds in service.
    pub cores_per_request: f64,
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
    /// Scaling type's price, USD per instance-hour.
    pub instance_price_usd_per_hour: f64,
    /// What a minute of SLO violation costs, USD (`None`: the SLO is a hard target).
    pub violation_price_usd_per_min: Option<f64>,
    /// Memory and network of the fleet: what a stated memory or network demand needs of it.
    #[serde(default)]
    pub resources: FleetResources,
}

/// `controller: PricedHindsightExpert(violation_price_usd_per_min: 0.05)`: the hindsight expert planning for
/// this price of a violated SLO minute instead of the scenario's (which still prices the run's
/// `total_cost_usd`). The price trades minutes for instance cost (module docs, "Priced violations"): swept over
/// a family of prices it traces the expert's cost–SLO frontier.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PricedExpert {
    /// What the expert counts a minute of SLO violation at, USD (≥ 0; 0 orders the least the fleet may hold).
    pub violation_price_usd_per_min: f64,
}

impl PricedExpert {
    /// Its problems, at paths below the controller.
    pub fn check(&self, p: &mut prescale_sim::validate::Problems) {
        p.non_negative("violation_price_usd_per_min", self.violation_price_usd_per_min);
    }
}

/// Memory and network bandwidth of an instance of the scaling type and of the static pools (READY from the
/// start): what a stated memory or network demand (a trace's column) needs of the fleet. Zero per instance: the
/// resource is not planned.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct FleetResources {
    /// Memory of one instance of the scaling type, GiB.
    pub memory_gib_per_instance: f64,
    /// Network bandwidth of one instance of the scaling type, Gbit/s.
    pub network_gbps_per_instance: f64,
    /// Memory of the static pools, GiB.
    pub static_memory_gib: f64,
    /// Network bandwidth of the static pools, Gbit/s.
    pub static_network_gbps: f64,
}

impl FleetResources {
    /// The scaling type's and the static pools' memory and network in `cluster`.
    pub fn of(cluster: &ClusterConfig) -> FleetResources {
        let scaling = cluster.scaling_index().map(|i| &cluster.instance_types[i]);
        let pools = cluster.static_capacity();
        FleetResources {
            memory_gib_per_instance: scaling.map_or(0.0, |t| t.capacity.memory_gib),
            network_gbps_per_instance: scaling.map_or(0.0, |t| t.capacity.network_gbps),
            static_memory_gib: pools.memory_gib,
            static_network_gbps: pools.network_gbps,
        }
    }

    /// The least instances of the scaling type that hold `memory_gib` and `network_gbps` beside the static
    /// pools (0 for a demand not stated: NaN).
    pub fn instances_for(&self, memory_gib: f64, network_gbps: f64) -> u32 {
        let need = |demand: f64, pools: f64, per: f64| {
            if demand.is_finite() && per > 0.0 { ((demand - pools).max(0.0) / per).ceil() } else { 0.0 }
        };
        let memory = need(memory_gib, self.static_memory_gib, self.memory_gib_per_instance);
        let network = need(network_gbps, self.static_network_gbps, self.network_gbps_per_instance);
        memory.max(network).min(f64::from(u32::MAX)) as u32
    }
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
            cores_per_request: ctx.service.cores_per_request,
            servers_per_instance: ClusterConfig::servers_per_instance(t, &per_request),
            static_servers,
            min_instances: t.min_count,
            max_instances: t.max_count,
            provisioning_delay_s: t.provisioning_delay.mean_s(),
            warmup_s: t.warmup_s,
            slo_quantile: ctx.slo.latency_quantile,
            slo_threshold_s: ctx.slo.latency_threshold_s,
            instance_price_usd_per_hour: t.price_usd_per_hour,
            violation_price_usd_per_min: ctx.slo.violation_price_usd_per_min,
            resources: FleetResources::of(ctx.cluster),
        }
    }

    /// The critical ratio of cost-aware cloning, `τ = u / (u + o)`: `u = p·Δ/60` what a step one instance
    /// short costs (a violated step, by `n_min`'s definition), `o = c·Δ/3600` what a step one instance over
    /// costs. Ordering the `τ`-quantile of the order needed minimises the expected sum of the two (the
    /// newsvendor's solution; the pinball loss at `τ` is that expected cost, scaled by `u + o`). `None`
    /// without a violation price, or when one of the two prices is zero (nothing to trade).
    pub fn cost_ratio(&self) -> Option<f64> {
        let under = self.violation_price_usd_per_min? * 60.0;
        let over = self.instance_price_usd_per_hour;
        (under > 0.0 && over > 0.0 && under.is_finite() && over.is_finite()).then(|| under / (under + over))
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
    /// Per step, the instances its stated memory and network demand need (empty: none stated).
    floors: Arc<Vec<u32>>,
    /// With a price of a violated minute, the optimal cost of a backlog from each step to the end of the run,
    /// computed at the first priced label (shared by clones; anew when the floors change).
    cost_to_go: Arc<OnceLock<CostToGo>>,
    h_lo: usize,
    h_hi: usize,
}

/// The least cost, USD, of the rest of a run from each step with a given backlog when a violated minute costs
/// `p` — backward dynamic programming over a grid of backlogs (0 and 64 geometric points from one request to
/// every arrival of the run), linear between its points: at each step and backlog, the best count from the
/// least the fleet may hold (`min_count`, or what a stated memory or network needs then) up to the least that
/// leaves no violated step ([`HindsightExpert::n_min`] of the rate and what is queued after the step within
/// the SLO threshold), in at most 48 evenly spaced counts; a step costs
/// its instances and, violated, its minutes, and moves the fluid backlog `Q ← max(0, Q + (λ − C(n))·Δ)`. It
/// assumes the count can change at every step (no lead time): the expert's window plans the lead time and
/// this prices what the window leaves queued.
#[derive(Debug)]
struct CostToGo {
    /// Backlog grid, requests.
    grid: Vec<f64>,
    /// `(steps + 1) × grid` values, USD (the last row zero: nothing counts after the run); single precision,
    /// so that a year of one-minute steps holds 137 MB.
    values: Vec<f32>,
}

impl CostToGo {
    const POINTS: usize = 65;
    const COUNTS: u32 = 48;

    fn new(e: &HindsightExpert, price_usd_per_min: f64) -> CostToGo {
        let s = &e.s;
        let k_max = e.rates.len();
        let top = (e.rates.iter().copied().fold(0.0, f64::max) * s.step_s * k_max as f64).max(2.0);
        let ratio = top.powf(1.0 / (Self::POINTS - 2) as f64);
        let grid: Vec<f64> = std::iter::once(0.0).chain((0..Self::POINTS - 1).map(|j| ratio.powi(j as i32))).collect();
        let hold_usd = s.instance_price_usd_per_hour * s.step_s / 3600.0;
        let minute_usd = price_usd_per_min * s.step_s / 60.0;
        let mut values = vec![0.0_f32; (k_max + 1) * grid.len()];
        for k in (0..k_max).rev() {
            let (now, next) = values[k * grid.len()..].split_at_mut(grid.len());
            let next = Row { grid: &grid, values: &next[..grid.len()] };
            let (rate, need) = (e.rates[k], e.n_min(e.rates[k]));
            let least = s.min_instances.max(e.floors.get(k).copied().unwrap_or(0)).min(s.max_instances);
            for (j, &q) in grid.iter().enumerate() {
                // The least count that leaves this step unviolated: what its rate needs, and a capacity that
                // leaves at most C·T queued: C ≥ (Q + λΔ) / (Δ + T).
                let c_ok = (q + rate * s.step_s) / (s.step_s + s.slo_threshold_s);
                let servers = (c_ok * s.mean_service_s - s.static_servers as f64).max(0.0);
                let n_ok = ((servers / s.servers_per_instance as f64).ceil() as u32).max(need);
                let (lo, hi) = (least, n_ok.clamp(least, s.max_instances));
                let stride = ((hi - lo) / Self::COUNTS).max(1);
                now[j] = (lo..=hi)
                    .step_by(stride as usize)
                    .chain(std::iter::once(hi))
                    .map(|n| {
                        let (queued, violated) = e.fluid_step(n, rate, need, q);
                        n as f64 * hold_usd + if violated { minute_usd } else { 0.0 } + next.at(queued)
                    })
                    .fold(f64::INFINITY, f64::min) as f32;
            }
        }
        CostToGo { grid, values }
    }

    /// The cost from step `k` (at or past the end: nothing) with `backlog` requests queued.
    fn at(&self, k: usize, backlog: f64) -> f64 {
        let j = self.grid.len();
        let k = k.min(self.values.len() / j - 1);
        Row { grid: &self.grid, values: &self.values[k * j..(k + 1) * j] }.at(backlog)
    }
}

/// One step's values over the backlog grid.
struct Row<'a> {
    grid: &'a [f64],
    values: &'a [f32],
}

impl Row<'_> {
    /// Linear between grid points; beyond the last, the last.
    fn at(&self, q: f64) -> f64 {
        let i = self.grid.partition_point(|&g| g <= q);
        let v = |i: usize| f64::from(self.values[i]);
        if i == 0 {
            return v(0);
        }
        if i == self.grid.len() {
            return v(i - 1);
        }
        let (g0, g1) = (self.grid[i - 1], self.grid[i]);
        v(i - 1) + (q - g0) / (g1 - g0) * (v(i) - v(i - 1))
    }
}

impl HindsightExpert {
    /// An expert that knows `rates` (requests per second per step).
    pub fn new(s: PolicySetting, rates: Arc<Vec<f64>>) -> Self {
        let (h_lo, h_hi) = s.horizons();
        HindsightExpert { s, rates, floors: Arc::new(Vec::new()), cost_to_go: Arc::default(), h_lo, h_hi }
    }

    /// The cost-to-go when a violated minute is priced.
    fn cost_to_go(&self) -> Option<&CostToGo> {
        let price = self.s.violation_price_usd_per_min?;
        Some(self.cost_to_go.get_or_init(|| CostToGo::new(self, price)))
    }

    /// The same expert knowing the stated memory (GiB) and network (Gbit/s) demand per step as well: no order
    /// is below what they need of the fleet over its horizons (module docs).
    pub fn with_demand(mut self, memory_gib: Option<&[f64]>, network_gbps: Option<&[f64]>) -> Self {
        if memory_gib.is_none() && network_gbps.is_none() {
            return self;
        }
        let at = |v: Option<&[f64]>, k: usize| v.and_then(|v| v.get(k)).copied().unwrap_or(f64::NAN);
        let floors =
            (0..self.rates.len()).map(|k| self.s.resources.instances_for(at(memory_gib, k), at(network_gbps, k)));
        self.floors = Arc::new(floors.collect());
        self.cost_to_go = Arc::default();
        self
    }

    /// The instances the stated memory and network need over the horizons of the decision ending step `k`.
    fn floor(&self, k: usize) -> u32 {
        let last = self.floors.len().saturating_sub(1);
        let floor = (1..=self.h_hi).filter_map(|h| self.floors.get((k + h).min(last))).max().copied().unwrap_or(0);
        floor.min(self.s.max_instances)
    }

    /// Capacity of `n` instances of the scaling type beside the static pools, requests per second.
    fn capacity(&self, n: u32) -> f64 {
        (n * self.s.servers_per_instance + self.s.static_servers) as f64 / self.s.mean_service_s
    }

    /// One fluid step at `n` instances from `queued` requests at `rate`: what is queued after it, and whether
    /// it is violated — the fleet under what the rate needs (`need`), or what is still queued at its end waits
    /// longer than the SLO allows (`Q > C(n)·T`). The window's costs and the cost-to-go both step by it.
    fn fluid_step(&self, n: u32, rate: f64, need: u32, queued: f64) -> (f64, bool) {
        let cap = self.capacity(n);
        let after = (queued + (rate - cap) * self.s.step_s).max(0.0);
        (after, n < need || after > cap * self.s.slo_threshold_s)
    }

    /// The least instances meeting the SLO at rate `lambda` (the max count when none does): the least count
    /// whose M/M/c sojourn-time quantile is within the threshold ([`prescale_sim::scenario::instances_for_slo`],
    /// what `prescale validate` sizes with), within the scaling type's limits — an order the fleet cannot carry
    /// out is no label to learn from.
    pub fn n_min(&self, lambda: f64) -> u32 {
        let s = &self.s;
        let mu = 1.0 / s.mean_service_s;
        let least =
            instances_for_slo(lambda, mu, s.servers_per_instance, s.static_servers, s.slo_quantile, s.slo_threshold_s);
        least.map_or(s.max_instances, |n| n.max(s.min_instances).min(s.max_instances))
    }

    /// The expert's order at the decision an observation belongs to (it ends step `now / Δ − 1`).
    pub fn order(&self, obs: &Observation) -> u32 {
        let k = ((obs.now_s / self.s.step_s).round() as usize).saturating_sub(1);
        self.label(k, obs.queue_len as f64)
    }

    /// The expert's order at the decision ending step `k`, with `backlog` requests waiting.
    pub fn label(&self, k: usize, backlog: f64) -> u32 {
        let floor = self.floor(k);
        let hard = (1..=self.h_hi).map(|h| self.label_at(k, h, backlog)).max().unwrap_or(0).max(floor);
        match self.s.violation_price_usd_per_min {
            None => hard,
            Some(price) => self.cheapest(k, backlog, hard, price).max(floor),
        }
    }

    /// What horizon `h` of the decision ending step `k` needs with `backlog` requests waiting: `n_min` of its
    /// rate plus the backlog drained over the window.
    pub fn label_at(&self, k: usize, h: usize, backlog: f64) -> u32 {
        let last = self.rates.len().saturating_sub(1);
        let drain = backlog.max(0.0) / (self.h_hi as f64 * self.s.step_s);
        self.n_min(self.rates[(k + h).min(last)] + drain)
    }

    /// The order that makes the window cheapest when a violated minute costs `price_usd_per_min`, among the
    /// counts up to the hard order `hard` (module docs).
    fn cheapest(&self, k: usize, backlog: f64, hard: u32, price_usd_per_min: f64) -> u32 {
        self.window_costs(k, backlog, hard, price_usd_per_min)
            .min_by(|a, b| a.1.total_cmp(&b.1).then(b.0.cmp(&a.0)))
            .map_or(hard, |(n, _)| n)
    }

    /// `(n, USD)` for every count from `min_count` to `hard`: the bill of holding `n` over the window and the
    /// lead time, the price of the minutes it leaves violated there, and the cost-to-go of what it leaves
    /// queued (module docs). An expert without a price of its own (the hard expert; only tests ask it) prices
    /// that backlog as the minutes the hard order's spare capacity takes to drain it, a bound for the rest of
    /// the run.
    pub fn window_costs(
        &self,
        k: usize,
        backlog: f64,
        hard: u32,
        price_usd_per_min: f64,
    ) -> impl Iterator<Item = (u32, f64)> + '_ {
        let s = &self.s;
        let last = self.rates.len().saturating_sub(1);
        let rates: Vec<f64> = (1..=self.h_hi).map(|h| self.rates[(k + h).min(last)]).collect();
        let needs: Vec<u32> = rates.iter().map(|&r| self.n_min(r)).collect();
        let hold_usd = self.h_hi as f64 * s.instance_price_usd_per_hour * s.step_s / 3600.0;
        let lead_hold_usd = self.h_lo as f64 * s.instance_price_usd_per_hour * s.step_s / 3600.0;
        let minute_usd = price_usd_per_min * s.step_s / 60.0;
        // After the window the backlog drains at what the hard order serves beyond the last rate, at worst for
        // the rest of the run.
        let rest_steps = (self.rates.len().saturating_sub(k + self.h_hi + self.h_lo)) as f64;
        let last_rate = rates.last().copied().unwrap_or(0.0);
        let spare = self.capacity(hard) - last_rate;
        let lo = s.min_instances.min(hard);
        (lo..=hard).map(move |n| {
            let (mut queued, mut violated) = (backlog.max(0.0), 0.0);
            // The window's steps, then the lead time of what is ordered at the next decisions: until it has
            // passed the fleet stays at `n` under the last rate (only the backlog counts there).
            let steps = rates.iter().zip(&needs).map(|(&r, &need)| (r, need));
            for (rate, need) in steps.chain(std::iter::repeat_n((last_rate, 0), self.h_lo)) {
                let (after, short) = self.fluid_step(n, rate, need, queued);
                queued = after;
                violated += if short { 1.0 } else { 0.0 };
            }
            match self.cost_to_go() {
                // What is left queued then costs what the rest of the run must pay for it at best.
                Some(v) => {
                    let after = v.at(k + 1 + self.h_hi + self.h_lo, queued);
                    (n, n as f64 * (hold_usd + lead_hold_usd) + violated * minute_usd + after)
                }
                None => {
                    if queued > self.capacity(hard) * s.slo_threshold_s {
                        violated += if spare > 0.0 { (queued / spare / s.step_s).min(rest_steps) } else { rest_steps };
                    }
                    (n, n as f64 * hold_usd + violated * minute_usd)
                }
            }
        })
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

/// A setting for unit tests: 4-server instances at 0.1 s (10 requests per second per server), p99 <= 0.5 s,
/// one-minute steps, a 2-minute delay and 1-minute warm-up (`h_hi` = 4), 1 to 200 instances at 0.12 USD an
/// hour, the SLO a hard target.
#[cfg(test)]
pub(crate) fn test_setting() -> PolicySetting {
    PolicySetting {
        step_s: 60.0,
        start_unix_s: 0.0,
        mean_service_s: 0.1,
        cores_per_request: 1.0,
        servers_per_instance: 4,
        static_servers: 0,
        min_instances: 1,
        max_instances: 200,
        provisioning_delay_s: 120.0,
        warmup_s: 60.0,
        slo_quantile: 0.99,
        slo_threshold_s: 0.5,
        instance_price_usd_per_hour: 0.12,
        violation_price_usd_per_min: None,
        resources: FleetResources::default(),
    }
}

#[cfg(test)]
mod tests;
