//! The request-level service model: requests queue in front of the servers of a [`Fleet`], scaled by a
//! controller.
//!
//! This is the model of REFERENCE_MODEL §4.2–4.7, made general: any arrival process, any service-time
//! sampler, any [`Controller`], heterogeneous instance types with warm-up, termination delays and failures
//! (the [`crate::cluster`] module), a FIFO (or, for what-if studies and to show that tests can tell them
//! apart, LIFO) queue, an optional arrival window for statistics (the warm-up of §3.3), an optional horizon and
//! optional per-control-step statistics. `mmc-steady` is this model with one instance of `c` servers and no
//! controller; `autoscale-sine` is it with 4-server instances and [`crate::controller::ReferenceHpa`].
//!
//! Dispatch (§4.3): an arrival takes an idle usable server on the READY instance with the lowest number, else
//! joins the queue; a freed server of a READY instance takes the head of the queue; a freed server of a
//! DRAINING instance stays idle and the instance leaves when its last request completes; an instance that
//! becomes READY (or finishes warming up) takes requests from the queue, one per idle usable server; requests
//! in service on an instance that fails are lost (counted as failed). Controller ticks (§4.5): promote due
//! PROVISIONING instances, observe, decide, act through the fleet.
//!
//! Invariant (checked by [`ServiceModel::check_invariants`] in property tests): requests are conserved
//! (`arrivals = departures + failed + queued + in service`), busy servers never exceed usable servers, and no
//! request waits while a READY server idles.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};

use serde::Serialize;

use crate::cluster::{Fleet, FleetChange, FleetCounters, FleetEvent, FleetOccupancy, InstanceState};
use crate::controller::{Controller, TickLoad};
use crate::engine::{Context, Model, Simulation};
use crate::metrics::{StepLoad, StepSample};
use crate::rng::{Draws, RandDraws, RunSeed, StreamRng};
use crate::stats::{mean, nearest_rank, sort_samples};
use crate::time::SimTime;
use crate::workload::{ArrivalProcess, ServiceTimes};

mod config;
pub use config::{QueueDiscipline, ServiceConfig};

/// Events of the service model.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ServiceEvent {
    /// A request arrives.
    Arrival,
    /// A request completes on `instance`; it arrived at `arrival_s` and started service at `start_s`.
    Departure {
        /// Instance number.
        instance: u32,
        /// Arrival instant of the request.
        arrival_s: f64,
        /// Start of service of the request.
        start_s: f64,
    },
    /// A control tick.
    Tick,
    /// A lifecycle event of the fleet.
    Fleet(FleetEvent),
}

impl From<FleetEvent> for ServiceEvent {
    fn from(e: FleetEvent) -> Self {
        ServiceEvent::Fleet(e)
    }
}

/// Counters of requests and ticks (the fleet counts its own events).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Counters {
    /// Requests that arrived.
    pub arrivals: u64,
    /// Requests that completed (before the horizon).
    pub departures: u64,
    /// Requests lost (in service on an instance that failed).
    pub failed: u64,
    /// Controller ticks.
    pub ticks: u64,
}

/// A snapshot of the model's occupancy, for invariant checks and live views.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Occupancy {
    /// Instances and servers by state.
    pub fleet: FleetOccupancy,
    /// Requests waiting.
    pub queued: usize,
    /// Requests in service.
    pub in_service: u32,
}

/// Per-step accumulators (only with step statistics on).
#[derive(Default)]
struct StepAcc {
    arrivals: f64,
    completions: f64,
    failed: f64,
    slo_violations: f64,
    sojourn_s: Vec<f64>,
}

/// The request-level service model (see the module docs).
pub struct ServiceModel<A, S> {
    cfg: ServiceConfig,
    arrivals: A,
    service: S,
    controller: Box<dyn Controller>,
    fleet: Fleet,
    /// Arrival instants of waiting requests.
    queue: VecDeque<f64>,
    /// READY instances that may have an idle usable server (lazily cleaned), lowest number on top.
    idle: BinaryHeap<Reverse<u32>>,
    busy_total: u32,
    busy_acc_s: f64,
    busy_since_s: f64,
    counters: Counters,
    arrivals_since_tick: u64,
    completions_since_tick: u64,
    last_departure_s: f64,
    sojourn_s: Vec<f64>,
    wait_sum_s: f64,
    waited: u64,
    step: Option<StepAcc>,
    steps: Vec<StepSample>,
    last_step_end_s: f64,
    memory_draws: RandDraws<StreamRng>,
}

impl<A: ArrivalProcess, S: ServiceTimes> ServiceModel<A, S> {
    /// A model before time zero; [`ServiceModel::into_simulation`] creates the initial instances.
    ///
    /// # Errors
    /// Every problem of `cfg` (see [`ServiceConfig::problems`]), joined by newlines.
    pub fn new(
        cfg: ServiceConfig,
        arrivals: A,
        service: S,
        controller: Box<dyn Controller>,
        seed: RunSeed,
    ) -> Result<Self, String> {
        let problems = cfg.problems();
        if !problems.is_empty() {
            return Err(problems.iter().map(|p| p.to_string()).collect::<Vec<_>>().join("\n"));
        }
        let fleet = cfg.cluster.init(&cfg.per_request, seed)?;
        Ok(ServiceModel {
            fleet,
            queue: VecDeque::new(),
            idle: BinaryHeap::new(),
            busy_total: 0,
            busy_acc_s: 0.0,
            busy_since_s: 0.0,
            counters: Counters::default(),
            arrivals_since_tick: 0,
            completions_since_tick: 0,
            last_departure_s: 0.0,
            sojourn_s: Vec::new(),
            wait_sum_s: 0.0,
            waited: 0,
            step: cfg.step_stats_slo_s.map(|_| StepAcc::default()),
            steps: Vec::new(),
            last_step_end_s: 0.0,
            memory_draws: seed.draws("memory"),
            cfg,
            arrivals,
            service,
            controller,
        })
    }

    /// Reserves room for `n` recorded requests (avoids reallocation when the count is known roughly).
    pub fn reserve_samples(&mut self, n: usize) {
        self.sojourn_s.reserve_exact(n.min(1 << 28));
    }

    /// A simulation of this model at time zero: initial instances READY, first arrival and first tick
    /// scheduled.
    pub fn into_simulation(self) -> Simulation<Self> {
        let mut sim = Simulation::new(self);
        sim.with_context(|m: &mut Self, ctx| {
            m.fleet.start(ctx);
            m.idle.extend(m.fleet.live.iter().map(|&id| Reverse(id)));
            if let Some(t) = m.arrivals.next_arrival_s() {
                ctx.schedule_at(SimTime::from_secs(t), ServiceEvent::Arrival);
            }
            if let Some(i) = m.cfg.control_interval_s.filter(|&i| m.cfg.horizon_s.is_some_and(|h| i < h)) {
                ctx.schedule_at(SimTime::from_secs(i), ServiceEvent::Tick);
            }
        });
        sim
    }

    /// Runs to the horizon (if any) or until no event is left, and returns the report.
    pub fn run(self) -> ServiceReport {
        let horizon = self.cfg.horizon_s;
        let mut sim = self.into_simulation();
        match horizon {
            Some(h) => {
                sim.run_until(SimTime::from_secs(h));
                sim.into_model().finish(h)
            }
            None => {
                sim.run_until_empty();
                let end = sim.now().as_secs();
                sim.into_model().finish(end)
            }
        }
    }

    /// Request counters so far.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// The fleet.
    pub fn fleet(&self) -> &Fleet {
        &self.fleet
    }

    /// Per-step samples so far (empty unless step statistics are on).
    pub fn steps(&self) -> &[StepSample] {
        &self.steps
    }

    /// Occupancy now.
    pub fn occupancy(&self) -> Occupancy {
        Occupancy { fleet: self.fleet.occupancy(), queued: self.queue.len(), in_service: self.busy_total }
    }

    /// Checks the model's invariants; `Err` names the first one broken (see the module docs).
    pub fn check_invariants(&self) -> Result<(), String> {
        self.fleet.check_invariants()?;
        let o = self.occupancy();
        let c = &self.counters;
        if c.arrivals != c.departures + c.failed + o.queued as u64 + self.busy_total as u64 {
            return Err(format!(
                "requests not conserved: {} arrivals != {} departures + {} failed + {} queued + {} in service",
                c.arrivals, c.departures, c.failed, o.queued, self.busy_total
            ));
        }
        let f = o.fleet;
        let (busy_on_ready, busy_on_draining) = self.fleet.busy_servers();
        if busy_on_ready + busy_on_draining != self.busy_total {
            return Err(format!("busy total {} != per-instance sum", self.busy_total));
        }
        if busy_on_ready > f.usable_on_ready {
            return Err(format!("{busy_on_ready} busy servers on READY instances with {} usable", f.usable_on_ready));
        }
        if o.queued > 0 && busy_on_ready < f.usable_on_ready {
            return Err(format!("{} requests wait while a READY server is idle", o.queued));
        }
        Ok(())
    }

    /// Ends the run at `end_s` and computes the statistics; with step statistics on, records the last
    /// (possibly partial) step first.
    pub fn finish(mut self, end_s: f64) -> ServiceReport {
        if self.step.is_some() && end_s > self.last_step_end_s {
            self.record_step(end_s, 0);
        }
        let n = self.sojourn_s.len();
        let mean_sojourn_s = mean(&self.sojourn_s);
        sort_samples(&mut self.sojourn_s);
        let q = |p| nearest_rank(&self.sojourn_s, p);
        ServiceReport {
            controller_fault: self.controller.fault(),
            recorded: n as u64,
            mean_wait_s: self.wait_sum_s / n as f64,
            p_wait: self.waited as f64 / n as f64,
            mean_sojourn_s,
            p50_sojourn_s: q(0.50),
            p95_sojourn_s: q(0.95),
            p99_sojourn_s: q(0.99),
            instance_seconds: self.fleet.instance_seconds(end_s),
            cost_usd: self.fleet.cost_usd(end_s),
            max_instances: self.fleet.max_alive(),
            final_instances: self.fleet.alive(),
            counters: self.counters,
            fleet: *self.fleet.counters(),
            last_departure_s: self.last_departure_s,
            end_s,
            sorted_sojourn_s: self.sojourn_s,
            steps: self.steps,
        }
    }

    #[inline]
    fn busy_changed(&mut self, now_s: f64, up: bool) {
        self.busy_acc_s += self.busy_total as f64 * (now_s - self.busy_since_s);
        self.busy_since_s = now_s;
        if up {
            self.busy_total += 1;
        } else {
            self.busy_total -= 1;
        }
    }

    #[inline]
    fn start_service(&mut self, instance: u32, arrival_s: f64, now: SimTime, ctx: &mut Context<'_, ServiceEvent>) {
        let d = now + self.service.sample_s();
        ctx.schedule_at(d, ServiceEvent::Departure { instance, arrival_s, start_s: now.as_secs() });
    }

    #[inline]
    fn pop_waiting(&mut self) -> Option<f64> {
        match self.cfg.discipline {
            QueueDiscipline::Fifo => self.queue.pop_front(),
            QueueDiscipline::Lifo => self.queue.pop_back(),
        }
    }

    /// Moves waiting requests onto the idle usable servers of READY instance `id`; lists it as idle if a
    /// server is left over and it was not listed (`was_listed`).
    fn fill_from_queue(&mut self, id: u32, was_listed: bool, ctx: &mut Context<'_, ServiceEvent>) {
        let now = ctx.now();
        loop {
            let inst = &self.fleet.instances[id as usize];
            if inst.busy >= inst.usable {
                return;
            }
            let Some(a) = self.pop_waiting() else { break };
            self.busy_changed(now.as_secs(), true);
            self.fleet.instances[id as usize].busy += 1;
            self.start_service(id, a, now, ctx);
        }
        if !was_listed {
            self.idle.push(Reverse(id));
        }
    }

    fn on_fleet_change(&mut self, change: FleetChange, ctx: &mut Context<'_, ServiceEvent>) {
        match change {
            FleetChange::Promoted(id) => self.fill_from_queue(id, false, ctx),
            FleetChange::WarmedUp { id, usable_before } => {
                // Listed already iff it had an idle server before (then nobody was waiting).
                let was_listed = self.fleet.instances[id as usize].busy < usable_before;
                self.fill_from_queue(id, was_listed, ctx);
            }
            FleetChange::Failed { lost, .. } => {
                let now_s = ctx.now().as_secs();
                self.busy_acc_s += self.busy_total as f64 * (now_s - self.busy_since_s);
                self.busy_since_s = now_s;
                self.busy_total -= lost;
                self.counters.failed += lost as u64;
                if let Some(s) = &mut self.step {
                    s.failed += lost as f64;
                }
            }
            FleetChange::Gone(_) | FleetChange::Nothing => {}
        }
    }

    fn on_arrival(&mut self, ctx: &mut Context<'_, ServiceEvent>) {
        let now = ctx.now();
        self.counters.arrivals += 1;
        self.arrivals_since_tick += 1;
        if let Some(s) = &mut self.step {
            s.arrivals += 1.0;
        }
        // A stated memory or network demand above the READY capacity: the share `1 − capacity / demand` of
        // the scarcer of the two fails (one draw on the "memory" stream).
        let short = |demand: &Option<(f64, Vec<f64>)>, capacity: f64| match demand {
            Some((step_s, d)) => {
                let k = ((now.as_secs() / step_s) as usize).min(d.len() - 1);
                if d[k] > capacity { 1.0 - capacity / d[k] } else { 0.0 }
            }
            None => 0.0,
        };
        if self.cfg.memory_demand_gib.is_some() || self.cfg.network_demand_gbps.is_some() {
            let ready = self.fleet.ready_capacity();
            let shortage = short(&self.cfg.memory_demand_gib, ready.memory_gib)
                .max(short(&self.cfg.network_demand_gbps, ready.network_gbps));
            if shortage > 0.0 && self.memory_draws.uniform() < shortage {
                self.counters.failed += 1;
                if let Some(s) = &mut self.step {
                    s.failed += 1.0;
                }
                if let Some(t) = self.arrivals.next_arrival_s() {
                    ctx.schedule_at(SimTime::from_secs(t), ServiceEvent::Arrival);
                }
                return;
            }
        }
        let mut placed = false;
        while let Some(&Reverse(id)) = self.idle.peek() {
            let inst = &mut self.fleet.instances[id as usize];
            if inst.state == InstanceState::Ready && inst.busy < inst.usable {
                inst.busy += 1;
                if inst.busy == inst.usable {
                    self.idle.pop();
                }
                self.busy_changed(now.as_secs(), true);
                self.start_service(id, now.as_secs(), now, ctx);
                placed = true;
                break;
            }
            // Stale entry: full, draining or gone.
            self.idle.pop();
        }
        if !placed {
            self.queue.push_back(now.as_secs());
        }
        if let Some(t) = self.arrivals.next_arrival_s() {
            ctx.schedule_at(SimTime::from_secs(t), ServiceEvent::Arrival);
        }
    }

    fn on_departure(&mut self, id: u32, arrival_s: f64, start_s: f64, ctx: &mut Context<'_, ServiceEvent>) {
        let state = self.fleet.instances[id as usize].state;
        if state == InstanceState::Gone {
            // The instance failed with this request in service: it was counted as failed then.
            return;
        }
        let now_s = ctx.now().as_secs();
        self.counters.departures += 1;
        self.completions_since_tick += 1;
        self.last_departure_s = now_s;
        let sojourn = now_s - arrival_s;
        if arrival_s >= self.cfg.record_from_s && arrival_s < self.cfg.record_until_s {
            let wait = start_s - arrival_s;
            self.wait_sum_s += wait;
            if wait > 0.0 {
                self.waited += 1;
            }
            self.sojourn_s.push(sojourn);
        }
        if let Some(s) = &mut self.step {
            s.completions += 1.0;
            s.sojourn_s.push(sojourn);
            if sojourn > self.cfg.step_stats_slo_s.unwrap_or(f64::INFINITY) {
                s.slo_violations += 1.0;
            }
        }
        if state == InstanceState::Ready
            && let Some(a) = self.pop_waiting()
        {
            self.start_service(id, a, ctx.now(), ctx);
            return;
        }
        self.busy_changed(now_s, false);
        let inst = &mut self.fleet.instances[id as usize];
        inst.busy -= 1;
        match state {
            InstanceState::Ready if inst.busy + 1 == inst.usable => self.idle.push(Reverse(id)),
            InstanceState::Draining => self.fleet.drained_one(id, ctx),
            _ => {}
        }
    }

    fn on_tick(&mut self, ctx: &mut Context<'_, ServiceEvent>) {
        let now_s = ctx.now().as_secs();
        let interval_s = self.cfg.control_interval_s.expect("ticks only with an interval");
        self.counters.ticks += 1;
        // Step 1: due PROVISIONING instances become READY, in number order.
        for id in self.fleet.due(now_s) {
            self.fleet.promote(id, ctx);
            self.fill_from_queue(id, false, ctx);
        }
        // Step 2: observe.
        let busy_server_s = self.busy_acc_s + self.busy_total as f64 * (now_s - self.busy_since_s);
        self.busy_acc_s = 0.0;
        self.busy_since_s = now_s;
        let load = TickLoad {
            busy_server_s,
            queue_len: self.queue.len(),
            arrivals_in_interval: self.arrivals_since_tick,
            completions_in_interval: self.completions_since_tick,
            slow_fraction: self
                .step
                .as_ref()
                .map_or(0.0, |s| if s.completions > 0.0 { s.slo_violations / s.completions } else { 0.0 }),
            memory_demand_gib: self.cfg.memory_demand_gib.as_ref().map_or(f64::NAN, |(step_s, d)| {
                d[((now_s / step_s).round() as usize).saturating_sub(1).min(d.len() - 1)]
            }),
            network_demand_gbps: self.cfg.network_demand_gbps.as_ref().map_or(f64::NAN, |(step_s, d)| {
                d[((now_s / step_s).round() as usize).saturating_sub(1).min(d.len() - 1)]
            }),
        };
        let obs = self.fleet.observation(now_s, interval_s, load);
        self.arrivals_since_tick = 0;
        self.completions_since_tick = 0;
        // Steps 3-7: decide and act.
        let actions = self.fleet.apply(self.controller.decide(&obs), ctx);
        if self.step.is_some() {
            self.record_step_with_busy(now_s, busy_server_s, actions);
            self.steps.last_mut().expect("just recorded").diagnostics = self.controller.diagnostics();
        }
        let next_s = interval_s * (self.counters.ticks + 1) as f64;
        if self.cfg.horizon_s.is_some_and(|h| next_s < h) {
            ctx.schedule_at(SimTime::from_secs(next_s), ServiceEvent::Tick);
        }
    }

    fn record_step(&mut self, end_s: f64, actions: u32) {
        let busy = self.busy_acc_s + self.busy_total as f64 * (end_s - self.busy_since_s);
        self.busy_acc_s = 0.0;
        self.busy_since_s = end_s;
        self.record_step_with_busy(end_s, busy, actions);
    }

    fn record_step_with_busy(&mut self, end_s: f64, busy_server_s: f64, actions: u32) {
        let mut acc = std::mem::take(self.step.as_mut().expect("step statistics on"));
        let mut q = [f64::NAN; 3];
        if !acc.sojourn_s.is_empty() {
            sort_samples(&mut acc.sojourn_s);
            q = [0.50, 0.95, 0.99].map(|p| nearest_rank(&acc.sojourn_s, p));
        }
        let ready_server_s = self.fleet.take_ready_server_s(end_s);
        self.steps.push(self.fleet.step_sample(StepLoad {
            start_s: self.last_step_end_s,
            end_s,
            arrivals: acc.arrivals,
            completions: acc.completions,
            failed: acc.failed,
            slo_violations: acc.slo_violations,
            busy_server_s,
            ready_server_s,
            latency_s: q,
            queued: self.queue.len() as f64,
            scaling_actions: actions,
        }));
        self.last_step_end_s = end_s;
        acc.sojourn_s.clear();
        *self.step.as_mut().expect("on") = StepAcc { sojourn_s: acc.sojourn_s, ..StepAcc::default() };
    }
}

impl<A: ArrivalProcess, S: ServiceTimes> Model for ServiceModel<A, S> {
    type Event = ServiceEvent;

    #[inline]
    fn handle(&mut self, event: ServiceEvent, ctx: &mut Context<'_, ServiceEvent>) {
        match event {
            ServiceEvent::Arrival => self.on_arrival(ctx),
            ServiceEvent::Departure { instance, arrival_s, start_s } => {
                self.on_departure(instance, arrival_s, start_s, ctx)
            }
            ServiceEvent::Tick => self.on_tick(ctx),
            ServiceEvent::Fleet(ev) => {
                let change = self.fleet.handle(ev, ctx);
                self.on_fleet_change(change, ctx);
            }
        }
    }
}

/// Results of a service-model run.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ServiceReport {
    /// The controller's fault at the end of the run ([`crate::controller::Controller::fault`]), if any.
    pub controller_fault: Option<String>,
    /// Requests in the statistics (arrived in the recording window, completed before the horizon).
    pub recorded: u64,
    /// Mean wait (start − arrival) over recorded requests.
    pub mean_wait_s: f64,
    /// Fraction of recorded requests that waited (wait > 0).
    pub p_wait: f64,
    /// Mean sojourn (departure − arrival).
    pub mean_sojourn_s: f64,
    /// Nearest-rank sojourn quantiles.
    pub p50_sojourn_s: f64,
    /// See `p50_sojourn_s`.
    pub p95_sojourn_s: f64,
    /// See `p50_sojourn_s`.
    pub p99_sojourn_s: f64,
    /// Integral of live instances over `[0, end]`.
    pub instance_seconds: f64,
    /// Billed cost, USD.
    pub cost_usd: f64,
    /// Most live instances at once.
    pub max_instances: u32,
    /// Live instances at the end.
    pub final_instances: u32,
    /// Request counters.
    pub counters: Counters,
    /// Fleet counters.
    pub fleet: FleetCounters,
    /// Instant of the last departure.
    pub last_departure_s: f64,
    /// Instant the run ended (horizon, or last event).
    pub end_s: f64,
    /// Recorded sojourn times, ascending (for run-level quantiles and SLO fractions).
    #[serde(skip)]
    pub sorted_sojourn_s: Vec<f64>,
    /// Per-step samples (empty unless step statistics were on).
    #[serde(skip)]
    pub steps: Vec<StepSample>,
}

impl ServiceReport {
    /// Canonical events (REFERENCE_MODEL §1): arrivals + departures + ticks + ready events.
    pub fn canonical_events(&self) -> u64 {
        self.counters.arrivals + self.counters.departures + self.counters.ticks + self.fleet.ready_events
    }
}
