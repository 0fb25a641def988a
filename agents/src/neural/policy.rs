//! Behavioural cloning of a hindsight expert, and DAgger.
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
//!
//! **The learner** sees only observable state: a window of (rate, calendar, ready capacity, pending capacity,
//! backlog) and predicts the expert's order as capacity in requests per second (`n · servers / mean service
//! time`), turned into instances by the scenario's own instance size.
//!
//! **DAgger.** Round 0 rolls the expert out (plain behavioural cloning) and trains on its states. Round
//! `i ≥ 1` rolls out the mixture policy (expert with probability `β^i`, else the learner, drawn per decision
//! from a seeded generator), labels every visited state with the expert, aggregates all rounds' data and
//! continues training. Each round reports the validation loss and the learner's own run metrics.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use prescale_sim::cluster::ClusterConfig;
use prescale_sim::controller::{Controller, Diagnostics, Observation, ScaleDecision};
use prescale_sim::demand::DemandSeries;
use prescale_sim::fluid::{FluidModel, FluidParams, FluidReport, FluidStepper};
use prescale_sim::queueing::Latency;
use prescale_sim::rng::RunSeed;
use rand::{RngExt, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use serde::{Deserialize, Serialize};

use super::model::Model;
use super::spec::{Input, ModelSpec, OutputKind, calendar};
use super::train::Frames;

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

/// The inputs of one decision, unnormalised, in the spec's order.
pub fn state_row(inputs: &[Input], s: &PolicySetting, obs: &Observation) -> Vec<f64> {
    let cal = calendar(s.start_unix_s + obs.now_s);
    let per_server = 1.0 / s.mean_service_s;
    let spi = obs.servers_per_instance as f64;
    let mut r = Vec::with_capacity(inputs.len() + 2);
    for input in inputs {
        match input {
            Input::Rate => r.push(obs.arrivals_in_interval as f64 / obs.interval_s.max(1e-9)),
            Input::TimeOfDay => r.extend([cal[0] as f64, cal[1] as f64]),
            Input::DayOfWeek => r.extend([cal[2] as f64, cal[3] as f64]),
            Input::ReadyCapacity => r.push(obs.ready_servers as f64 * per_server),
            Input::PendingCapacity => r.push(obs.provisioning_instances as f64 * spi * per_server),
            Input::Backlog => r.push(obs.queue_len as f64 / obs.interval_s.max(1e-9)),
        }
    }
    r
}

/// What a BC policy remembers between decisions besides its weights: the window of observed states. Kept
/// apart from the model so that a lockstep driver can decide many runs with one forward pass
/// ([`run_lockstep`]).
pub struct PolicyState {
    s: PolicySetting,
    rows: VecDeque<Vec<f64>>,
    act_quantile: Option<f64>,
    diag: Diagnostics,
}

impl PolicyState {
    /// An empty window for a scenario's setting.
    pub fn new(s: PolicySetting, act_quantile: Option<f64>) -> Self {
        PolicyState { s, rows: VecDeque::new(), act_quantile, diag: Diagnostics::default() }
    }

    /// Adds the tick's state; the model's input window (raw, `window × width` floats) once it is full.
    pub fn observe(&mut self, spec: &ModelSpec, obs: &Observation) -> Option<Vec<f32>> {
        let l = spec.window_steps as usize;
        self.rows.push_back(state_row(&spec.inputs, &self.s, obs));
        if self.rows.len() > l {
            self.rows.pop_front();
        }
        (self.rows.len() == l).then(|| self.rows.iter().flatten().map(|v| *v as f32).collect())
    }

    /// The order, from the model's outputs for this window (`None`: window not full yet, so the reactive
    /// rule of the HPA at 70 % utilisation).
    pub fn decide(&mut self, spec: &ModelSpec, out: Option<&[f32]>, obs: &Observation) -> ScaleDecision {
        self.diag.fallback = out.is_none();
        self.diag.non_finite_output = out.is_some_and(|o| o.iter().any(|x| !x.is_finite()));
        if self.diag.non_finite_output {
            return ScaleDecision::Hold;
        }
        let n = match out {
            Some(out) => {
                let cap = match (&spec.output, self.act_quantile) {
                    (OutputKind::Gaussian, Some(q)) => {
                        out[0] as f64 + crate::variance::normal_quantile(q) * (0.5 * out[1] as f64).exp()
                    }
                    (OutputKind::Quantiles(levels), q) => {
                        out[super::spec::nearest_level(levels, q.unwrap_or(0.5))] as f64
                    }
                    _ => out[0] as f64,
                };
                self.s.instances(cap)
            }
            None => {
                let busy = obs.busy_server_s / obs.interval_s.max(1e-9);
                let servers = (busy / 0.7 - self.s.static_servers as f64).max(0.0);
                ((servers / self.s.servers_per_instance as f64).ceil() as u32)
                    .clamp(self.s.min_instances, self.s.max_instances)
            }
        };
        ScaleDecision::To { instances: n }
    }

    /// What the policy reports per step (only whether it fell back).
    pub fn diagnostics(&self) -> Diagnostics {
        Diagnostics {
            forecast_cpu_cores: f64::NAN,
            margin_cpu_cores: f64::NAN,
            coverage: f64::NAN,
            fallback: self.diag.fallback,
            clipped: false,
            fine_tune_mae_before_cores: f64::NAN,
            fine_tune_mae_after_cores: f64::NAN,
            non_finite_output: self.diag.non_finite_output,
        }
    }
}

/// A learned policy acting in the simulator (or a live system): the window of observed states in, an order
/// out. Until a full window has been seen it uses the reactive rule of the HPA (capacity for the busy servers
/// at 70 % utilisation) and says so in its diagnostics.
pub struct BcPolicy {
    model: Model,
    state: PolicyState,
    name: String,
}

impl BcPolicy {
    /// Wraps a policy model; `act_quantile` acts on that quantile of a Gaussian output (or the nearest
    /// quantile level) instead of the centre.
    pub fn new(model: Model, s: PolicySetting, act_quantile: Option<f64>) -> Self {
        let name = format!("bc({})", model.card.name);
        BcPolicy { model, state: PolicyState::new(s, act_quantile), name }
    }
}

impl Controller for BcPolicy {
    fn name(&self) -> &str {
        &self.name
    }

    fn decide(&mut self, obs: &Observation) -> ScaleDecision {
        let spec = &self.model.card.spec;
        let out = self.state.observe(spec, obs).map(|x| self.model.predict(&x, 1));
        self.state.decide(spec, out.as_deref(), obs)
    }

    fn diagnostics(&self) -> Option<Diagnostics> {
        Some(self.state.diagnostics())
    }
}

/// Runs several fluid runs under one BC model in lockstep: at every control tick, one forward pass over the
/// windows of every run that has a full window (batched over runs), then each run carries out its order.
/// Returns the runs' reports and the number of forward passes made. Each run's decisions are those a
/// [`BcPolicy`] would make alone, up to the floating-point differences of a batched matrix product.
pub fn run_lockstep(model: &Model, runs: Vec<(FluidStepper, PolicyState)>) -> (Vec<FluidReport>, u64) {
    let spec = &model.card.spec;
    let mut runs: Vec<(Option<FluidStepper>, PolicyState, Option<FluidReport>)> =
        runs.into_iter().map(|(st, p)| (Some(st), p, None)).collect();
    let mut calls = 0;
    loop {
        // Every live run to its next tick.
        let mut ticks: Vec<(usize, Observation, Option<Vec<f32>>)> = Vec::new();
        for (i, (stepper, state, report)) in runs.iter_mut().enumerate() {
            let Some(st) = stepper.as_mut() else { continue };
            match st.next_observation() {
                Some(obs) => {
                    let window = state.observe(spec, &obs);
                    ticks.push((i, obs, window));
                }
                None => *report = Some(stepper.take().expect("live").finish()),
            }
        }
        if ticks.is_empty() {
            break;
        }
        let full: Vec<f32> = ticks.iter().filter_map(|t| t.2.as_ref()).flatten().copied().collect();
        let n_full = ticks.iter().filter(|t| t.2.is_some()).count();
        let out = if n_full > 0 {
            calls += 1;
            model.predict(&full, n_full)
        } else {
            Vec::new()
        };
        let per = spec.horizon_steps as usize * spec.output.width();
        let mut j = 0;
        for (i, obs, window) in &ticks {
            let slice = window.as_ref().map(|_| {
                let s = &out[j * per..(j + 1) * per];
                j += 1;
                s
            });
            let (stepper, state, _) = &mut runs[*i];
            let d = state.decide(spec, slice, obs);
            stepper.as_mut().expect("live").decide(d, Some(state.diagnostics()));
        }
    }
    (runs.into_iter().map(|r| r.2.expect("every run finished")).collect(), calls)
}

/// Who acts during a rollout.
pub enum Actor<'a> {
    /// The hindsight expert.
    Expert,
    /// The learner, alone.
    Learner(&'a Model),
    /// Per decision: the expert with probability `beta`, else the learner (seeded draw).
    Mixture(&'a Model, f64, u64),
}

/// A rollout's visited states, labelled by the expert, and the run it made.
pub struct Rollout {
    /// Inputs per decision and the expert's order (as capacity, requests per second) as target.
    pub frames: Frames,
    /// The fluid run.
    pub report: FluidReport,
}

struct Recorder {
    expert: HindsightExpert,
    inputs: Vec<Input>,
    learner: Option<BcPolicy>,
    beta: f64,
    rng: Xoshiro256PlusPlus,
    log: Arc<Mutex<Frames>>,
    s: PolicySetting,
}

impl Controller for Recorder {
    fn name(&self) -> &str {
        "dagger-rollout"
    }

    fn decide(&mut self, obs: &Observation) -> ScaleDecision {
        let n_expert = self.expert.order(obs);
        let row = state_row(&self.inputs, &self.s, obs);
        let mut log = self.log.lock().expect("not poisoned");
        log.width = row.len();
        log.inputs.extend(&row);
        log.target.push(self.s.capacity_per_s(n_expert as f64));
        // The learner sees every state (its window must be current) but acts only when drawn.
        let learner = self.learner.as_mut().map(|l| l.decide(obs));
        let use_expert = self.beta >= 1.0 || self.rng.random::<f64>() < self.beta;
        match learner {
            Some(d) if !use_expert => d,
            _ => ScaleDecision::To { instances: n_expert },
        }
    }
}

/// Runs the fluid model over `demand` with `actor`, recording the visited states and the expert's labels.
/// The learner acts on `act_quantile` (see [`BcPolicy::new`]).
///
/// # Errors
/// Cluster or parameter problems (from the fluid model).
#[allow(clippy::too_many_arguments)]
pub fn rollout(
    cluster: &ClusterConfig,
    params: FluidParams,
    demand: &DemandSeries,
    s: &PolicySetting,
    inputs: &[Input],
    actor: Actor<'_>,
    seed: u64,
    act_quantile: Option<f64>,
) -> Result<Rollout, String> {
    let expert = HindsightExpert::new(s.clone(), Arc::new(demand.rate_per_s.clone()));
    let copy = |m: &Model| m.duplicate();
    let (learner, beta, draw_seed) = match actor {
        Actor::Expert => (None, 1.0, 0),
        Actor::Learner(m) => (Some(copy(m)), 0.0, 0),
        Actor::Mixture(m, beta, seed) => (Some(copy(m)), beta, seed),
    };
    let log = Arc::new(Mutex::new(Frames::default()));
    let recorder = Recorder {
        expert,
        inputs: inputs.to_vec(),
        learner: learner.map(|m| BcPolicy::new(m, s.clone(), act_quantile)),
        beta,
        rng: Xoshiro256PlusPlus::seed_from_u64(draw_seed ^ 0xda99e5),
        log: log.clone(),
        s: s.clone(),
    };
    let model = FluidModel::new(cluster, params, demand.clone(), Box::new(recorder), RunSeed(seed))?;
    let report = model.run(&mut |_| {});
    let frames = std::mem::take(&mut *log.lock().expect("not poisoned"));
    Ok(Rollout { frames, report })
}

/// A learned policy.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BcConfig {
    /// Model directory, relative to the file that names it.
    pub model: String,
    /// Act on this quantile of the model's predictive distribution (Gaussian or quantile output) instead of
    /// its centre: a safety margin learned with the policy.
    #[serde(default)]
    pub act_quantile: Option<f64>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::neural::model::ModelCard;

    #[test]
    fn batched_forward_equals_single_forward_to_float_rounding() {
        let spec = ModelSpec {
            architecture: super::super::spec::Architecture::Gru { hidden: 32, layers: 1 },
            inputs: vec![Input::Rate, Input::ReadyCapacity, Input::PendingCapacity, Input::Backlog],
            window_steps: 30,
            horizon_steps: 1,
            output: OutputKind::Gaussian,
        };
        let norm = crate::neural::train::Normaliser { mean: 200.0, sd: 100.0 };
        let card = ModelCard::new("t", crate::neural::model::Task::Policy, &spec, 60.0, norm, &Default::default());
        tch::manual_seed(5);
        let m = Model::fresh(card, tch::Device::Cpu);
        let per = 30 * spec.width();
        for n in [2usize, 3, 5, 8, 17, 64] {
            let x: Vec<f32> = (0..n * per).map(|i| 100.0 + ((i * 7919) % 1000) as f32 * 0.37).collect();
            let batched = m.predict(&x, n);
            // Not always the same bits (a batched matrix product sums in another order), hence lockstep
            // batching is opt-in (`prescale sweep --batch-runs`); the same to float rounding.
            for b in 0..n {
                let single = m.predict(&x[b * per..(b + 1) * per], 1);
                for (a, c) in single.iter().zip(&batched[b * 2..(b + 1) * 2]) {
                    assert!((a - c).abs() <= 1e-5 * a.abs().max(1.0), "batch {n}, row {b}: {a} vs {c}");
                }
            }
        }
    }
}
