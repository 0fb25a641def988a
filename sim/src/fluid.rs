//! The fluid model: the same cluster and controller as the request-level model, with requests replaced by
//! flows, for long traces (months at minute resolution) in milliseconds.
//!
//! Per control step of length Δ (the demand series' step): `λΔ` requests arrive (rate from the
//! [`DemandSeries`]); a fraction `1 − cap/need` of them fails when an explicit memory demand exceeds the READY
//! memory capacity; READY servers (their time-average `c̄` over the step, warm-up included) serve up to `c̄μΔ`
//! requests; the excess waits as a backlog carried to the next step.
//!
//! Latency per step: with no backlog at either end of the step and `λ < cμ` (`c = ⌊c̄⌋`), the stationary M/M/c
//! sojourn distribution (Erlang C, [`crate::queueing`]); otherwise the backlog ahead delays every request by
//! `d = (B_start + B_end) / (2 c̄ μ)`, and latency is `d + Exp(μ)` (with no READY server at all, `d = Δ`).
//! p50/p95/p99, the expected number of completions slower than the SLO, and the run's p99 (the quantile of the
//! request-weighted mixture of the steps' distributions) follow from these distributions.
//!
//! Where it is not the request-level model (see the agreement test): it ignores the time the queue takes to
//! reach steady state within a step, so after sudden changes it is optimistic for a few service times; it
//! assumes exponential service; a drained instance stops serving at once (its last requests are assumed
//! done within the step); requests lost on a failed instance are estimated as the last step's utilisation
//! times its servers (at most the step's served requests), and count as failed instead of completed.

use crate::cluster::{ClusterConfig, Fleet, FleetChange, FleetEvent, Resources};
use crate::controller::{Controller, Diagnostics, Observation, ScaleDecision, TickLoad};
use crate::demand::DemandSeries;
use crate::engine::{Context, Model, Simulation};
use crate::metrics::{StepLoad, StepSample};
use crate::queueing::Latency;
use crate::rng::RunSeed;
use crate::time::SimTime;

/// Events of the fluid model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FluidEvent {
    /// End of a control step.
    Tick,
    /// A lifecycle event of the fleet.
    Fleet(FleetEvent),
}

impl From<FleetEvent> for FluidEvent {
    fn from(e: FleetEvent) -> Self {
        FluidEvent::Fleet(e)
    }
}

/// Parameters of a fluid run besides the cluster and the demand.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FluidParams {
    /// Mean service time of one request on one server, seconds.
    pub mean_service_s: f64,
    /// Resources one request holds in service (they set the servers per instance).
    pub per_request: Resources,
    /// SLO latency threshold, seconds (for the count of slow requests).
    pub slo_threshold_s: f64,
}

/// The fluid model (see the module docs).
pub struct FluidModel {
    fleet: Fleet,
    params: FluidParams,
    demand: DemandSeries,
    /// `None` for a model built with [`FluidModel::external`]: every decision comes from outside.
    controller: Option<Box<dyn Controller>>,
    horizon_s: f64,
    backlog: f64,
    last_utilisation: f64,
    lost_this_step: f64,
    ticks: u64,
    steps: Vec<StepSample>,
    latencies: Vec<(f64, Latency)>,
    /// Decisions come from outside ([`FluidStepper`]): a tick stops at its observation.
    external: bool,
    pending: Option<Observation>,
}

impl FluidModel {
    /// A model over `demand` (its steps define the control interval and the horizon).
    ///
    /// # Errors
    /// Problems of the cluster or the parameters.
    pub fn new(
        cluster: &ClusterConfig,
        params: FluidParams,
        demand: DemandSeries,
        controller: Box<dyn Controller>,
        seed: RunSeed,
    ) -> Result<Self, String> {
        Self::build(cluster, params, demand, Some(controller), seed)
    }

    /// A model with no controller of its own, every decision made outside one tick at a time: its
    /// [`FluidStepper`] (what lockstep drivers and live loops use).
    ///
    /// # Errors
    /// As [`FluidModel::new`].
    pub fn external(
        cluster: &ClusterConfig,
        params: FluidParams,
        demand: DemandSeries,
        seed: RunSeed,
    ) -> Result<FluidStepper, String> {
        Ok(Self::build(cluster, params, demand, None, seed)?.stepper())
    }

    fn build(
        cluster: &ClusterConfig,
        params: FluidParams,
        demand: DemandSeries,
        controller: Option<Box<dyn Controller>>,
        seed: RunSeed,
    ) -> Result<Self, String> {
        if !(params.mean_service_s.is_finite() && params.mean_service_s > 0.0) {
            return Err(format!("mean_service_s: must be > 0, got {}", params.mean_service_s));
        }
        if demand.steps() == 0 || demand.step_s.is_nan() || demand.step_s <= 0.0 {
            return Err("the demand series is empty".into());
        }
        let fleet = cluster.init(&params.per_request, seed)?;
        let horizon_s = demand.steps() as f64 * demand.step_s;
        Ok(FluidModel {
            fleet,
            params,
            controller,
            horizon_s,
            backlog: 0.0,
            last_utilisation: 0.0,
            lost_this_step: 0.0,
            ticks: 0,
            steps: Vec::with_capacity(demand.steps()),
            latencies: Vec::with_capacity(demand.steps()),
            demand,
            external: false,
            pending: None,
        })
    }

    fn started(self) -> Simulation<FluidModel> {
        let step = self.demand.step_s;
        let n = self.demand.steps();
        let mut sim = Simulation::new(self);
        sim.with_context(|m: &mut Self, ctx| {
            m.fleet.start(ctx);
            if n > 1 {
                ctx.schedule_at(SimTime::from_secs(step), FluidEvent::Tick);
            }
        });
        sim
    }

    /// Runs the whole horizon, calling `progress(done_fraction)` now and then.
    pub fn run(self, progress: &mut dyn FnMut(f64)) -> FluidReport {
        self.run_unless(progress, &|| false).expect("never cancelled")
    }

    /// [`FluidModel::run`], asking `cancel()` whenever it reports progress (every 1 % of the steps) and
    /// stopping with `None` once it says yes.
    pub fn run_unless(self, progress: &mut dyn FnMut(f64), cancel: &dyn Fn() -> bool) -> Option<FluidReport> {
        self.run_observed(progress, cancel, &mut |_| {})
    }

    /// [`FluidModel::run_unless`], handing `closed` the steps closed since its last call whenever it reports
    /// progress, and the last ones at the end: each step once, in order (what a writer streams to disk while
    /// the run goes on). The same run, the same bits.
    pub fn run_observed(
        self,
        progress: &mut dyn FnMut(f64),
        cancel: &dyn Fn() -> bool,
        closed: &mut dyn FnMut(&[StepSample]),
    ) -> Option<FluidReport> {
        let h = self.horizon_s;
        let step = self.demand.step_s;
        let n = self.demand.steps();
        let mut sim = self.started();
        let chunk = (n / 100).max(1);
        let mut handed = 0;
        for k in (chunk..n).step_by(chunk) {
            sim.run_until(SimTime::from_secs(k as f64 * step));
            let steps = &sim.model().steps;
            closed(&steps[handed..]);
            handed = steps.len();
            progress(k as f64 / n as f64);
            if cancel() {
                return None;
            }
        }
        sim.run_until(SimTime::from_secs(h));
        progress(1.0);
        let report = sim.into_model().report();
        closed(&report.steps[handed..]);
        Some(report)
    }

    /// The same run with its decisions made outside, one tick at a time ([`FluidStepper`]); the model's own
    /// controller is not asked. Given the same decisions, the run is the same bits as [`FluidModel::run`].
    pub fn stepper(mut self) -> FluidStepper {
        self.external = true;
        let horizon_s = self.horizon_s;
        FluidStepper { sim: self.started(), horizon_s }
    }

    fn report(mut self) -> FluidReport {
        self.close_step(self.horizon_s, 0);
        let (h, m) = (self.horizon_s, self);
        let controller_fault = m.controller.as_ref().and_then(|c| c.fault());
        FluidReport {
            controller_fault,
            cost_usd: m.fleet.cost_usd(h),
            instance_seconds: m.fleet.instance_seconds(h),
            max_instances: m.fleet.max_alive(),
            final_instances: m.fleet.alive(),
            fleet: *m.fleet.counters(),
            ticks: m.ticks,
            steps: m.steps,
            latencies: m.latencies,
        }
    }

    /// The fleet.
    pub fn fleet(&self) -> &Fleet {
        &self.fleet
    }

    fn close_step(&mut self, end_s: f64, actions: u32) {
        let k = self.steps.len();
        let start_s = k as f64 * self.demand.step_s;
        let dt = end_s - start_s;
        let mu = 1.0 / self.params.mean_service_s;
        let arrivals = self.demand.rate_per_s[k] * dt;
        let ready_server_s = self.fleet.take_ready_server_s(end_s);
        let c_bar = ready_server_s / dt;
        let (ready_capacity, _) = self.fleet.capacity();
        // A stated memory or network demand above the READY capacity turns requests away: the share
        // `1 − capacity / demand` of the scarcest of the two.
        let short = |demand: &Option<Vec<f64>>, capacity: f64| match demand {
            Some(d) if d[k] > capacity => 1.0 - capacity / d[k],
            _ => 0.0,
        };
        let shortage = short(&self.demand.memory_gib, ready_capacity.memory_gib)
            .max(short(&self.demand.network_gbps, ready_capacity.network_gbps));
        let failed_memory = if shortage > 0.0 { arrivals * shortage } else { 0.0 };
        let admitted = arrivals - failed_memory;
        let b0 = self.backlog;
        let served = (b0 + admitted).min(c_bar * mu * dt);
        let b1 = b0 + admitted - served;
        // Requests in service on an instance that failed in the step were lost, not completed (counted once:
        // as failed).
        let lost = std::mem::take(&mut self.lost_this_step).min(served);
        let completed = served - lost;
        let lambda = admitted / dt;
        let c = c_bar.floor() as u32;
        let latency = if b0 <= 1e-9 && b1 <= 1e-9 && lambda < c as f64 * mu {
            Latency::mmc(lambda, mu, c)
        } else {
            let delay_s = if c_bar > 0.0 { (b0 + b1) / (2.0 * c_bar * mu) } else { dt };
            Latency::Shifted { delay_s, mu }
        };
        self.backlog = b1;
        let busy_server_s = served * self.params.mean_service_s;
        self.last_utilisation = if ready_server_s > 0.0 { busy_server_s / ready_server_s } else { 0.0 };
        let q = [0.50, 0.95, 0.99].map(|p| if completed > 0.0 { latency.quantile(p) } else { f64::NAN });
        self.steps.push(self.fleet.step_sample(StepLoad {
            start_s,
            end_s,
            arrivals,
            completions: completed,
            failed: failed_memory + lost,
            slo_violations: completed * latency.tail(self.params.slo_threshold_s),
            busy_server_s,
            ready_server_s,
            latency_s: q,
            queued: b1,
            scaling_actions: actions,
        }));
        self.latencies.push((completed, latency));
    }

    fn on_tick(&mut self, ctx: &mut Context<'_, FluidEvent>) {
        let now_s = ctx.now().as_secs();
        self.ticks += 1;
        for id in self.fleet.due(now_s) {
            self.fleet.promote(id, ctx);
        }
        self.close_step(now_s, 0);
        let s = self.steps.last().expect("just closed");
        let load = TickLoad {
            busy_server_s: s.busy_server_s,
            queue_len: s.queued as usize,
            arrivals_in_interval: s.arrivals as u64,
            completions_in_interval: s.completions as u64,
            slow_fraction: if s.completions > 0.0 { s.slo_violations / s.completions } else { 0.0 },
            memory_demand_gib: self.demand.memory_gib.as_ref().map_or(f64::NAN, |m| m[self.steps.len() - 1]),
            network_demand_gbps: self.demand.network_gbps.as_ref().map_or(f64::NAN, |m| m[self.steps.len() - 1]),
        };
        let obs = self.fleet.observation(now_s, self.demand.step_s, load);
        if self.external {
            self.pending = Some(obs);
            return;
        }
        let controller = self.controller.as_mut().expect("a model without a controller is external");
        let decision = controller.decide(&obs);
        let diagnostics = controller.diagnostics();
        self.act(decision, diagnostics, ctx);
    }

    /// Carries out the decision of the tick just observed and schedules the next tick.
    fn act(&mut self, decision: ScaleDecision, diagnostics: Option<Diagnostics>, ctx: &mut Context<'_, FluidEvent>) {
        let actions = self.fleet.apply(decision, ctx);
        let last = self.steps.last_mut().expect("just closed");
        last.scaling_actions = actions;
        last.diagnostics = diagnostics;
        let next = self.demand.step_s * (self.ticks + 1) as f64;
        if next < self.horizon_s {
            ctx.schedule_at(SimTime::from_secs(next), FluidEvent::Tick);
        }
    }
}

impl Model for FluidModel {
    type Event = FluidEvent;

    fn handle(&mut self, event: FluidEvent, ctx: &mut Context<'_, FluidEvent>) {
        match event {
            FluidEvent::Tick => self.on_tick(ctx),
            FluidEvent::Fleet(ev) => {
                if let FleetChange::Failed { id, .. } = self.fleet.handle(ev, ctx) {
                    let usable = self.fleet.instances[id as usize].usable as f64;
                    self.lost_this_step += self.last_utilisation * usable;
                }
            }
        }
    }
}

/// A fluid run driven one decision at a time from outside: [`FluidStepper::next_observation`] runs to the next
/// control tick and returns what a controller sees there; [`FluidStepper::decide`] carries out the answer.
/// Lockstep drivers use it to decide many runs at once (one batched forward pass of a learned policy).
pub struct FluidStepper {
    sim: Simulation<FluidModel>,
    horizon_s: f64,
}

impl FluidStepper {
    /// Runs to the next control tick; `None` once the horizon is reached. Call [`FluidStepper::decide`] before
    /// asking again.
    pub fn next_observation(&mut self) -> Option<Observation> {
        assert!(self.sim.model().pending.is_none(), "decide the pending tick first");
        let end = SimTime::from_secs(self.horizon_s);
        while self.sim.peek_time().is_some_and(|t| t < end) {
            self.sim.step();
            if let Some(obs) = &self.sim.model().pending {
                return Some(obs.clone());
            }
        }
        None
    }

    /// Carries out the decision for the pending tick (with the controller's diagnostics, if any).
    pub fn decide(&mut self, decision: ScaleDecision, diagnostics: Option<Diagnostics>) {
        self.sim.with_context(|m, ctx| {
            m.pending.take().expect("a pending tick");
            m.act(decision, diagnostics, ctx);
        });
    }

    /// Ends the run at the horizon.
    pub fn finish(mut self) -> FluidReport {
        self.sim.run_until(SimTime::from_secs(self.horizon_s));
        self.sim.into_model().report()
    }
}

/// Results of a fluid run.
#[derive(Clone, Debug, PartialEq)]
pub struct FluidReport {
    /// Billed cost, USD.
    pub cost_usd: f64,
    /// Integral of live instances.
    pub instance_seconds: f64,
    /// Most live instances at once.
    pub max_instances: u32,
    /// Live instances at the end.
    pub final_instances: u32,
    /// Fleet counters.
    pub fleet: crate::cluster::FleetCounters,
    /// Controller ticks.
    pub ticks: u64,
    /// Per-step samples.
    pub steps: Vec<StepSample>,
    /// Per step: completions and their latency distribution (for run-level quantiles).
    pub latencies: Vec<(f64, Latency)>,
    /// The controller's fault at the end of the run ([`Controller::fault`]), if any.
    pub controller_fault: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::ReferenceHpa;

    fn model(controller: Box<dyn Controller>) -> FluidModel {
        let cluster = ClusterConfig::homogeneous(4, 3, 120.0, 60);
        let params = FluidParams {
            mean_service_s: 0.1,
            per_request: Resources { cpu_cores: 1.0, ..Resources::default() },
            slo_threshold_s: 0.5,
        };
        let rates: Vec<f64> =
            (0..600).map(|k| 100.0 + 80.0 * (k as f64 / 60.0).sin() + if k > 300 { 150.0 } else { 0.0 }).collect();
        let demand = DemandSeries { step_s: 60.0, rate_per_s: rates, ..DemandSeries::default() };
        FluidModel::new(&cluster, params, demand, controller, RunSeed(7)).unwrap()
    }

    /// Deciding from outside, tick by tick, with the same controller gives the same bits as `run`.
    #[test]
    fn stepping_with_external_decisions_equals_running() {
        let hpa = || ReferenceHpa { target_utilisation: 0.6, tolerance: 0.1, min_instances: 1, max_instances: 60 };
        let reference = model(Box::new(hpa())).run(&mut |_| {});
        let mut outside: Box<dyn Controller> = Box::new(hpa());
        let mut stepper = model(Box::new(crate::controller::Static::default())).stepper();
        let mut ticks = 0;
        while let Some(obs) = stepper.next_observation() {
            let d = outside.decide(&obs);
            stepper.decide(d, outside.diagnostics());
            ticks += 1;
        }
        let stepped = stepper.finish();
        assert_eq!(ticks, 599);
        assert_eq!(stepped, reference);
        assert!(reference.steps.iter().any(|s| s.scaling_actions > 0), "the controller acted");
    }
}
