//! The request-level service model: instances of N servers behind one queue, scaled by a controller.
//!
//! This is the model of REFERENCE_MODEL §4.2–4.7, made general: any arrival process, any service-time
//! sampler, any [`Controller`], any number of servers per instance, a FIFO (or, for what-if studies and to
//! show that tests can tell them apart, LIFO) queue, an optional arrival window for statistics (the warm-up of
//! §3.3) and an optional horizon. `mmc-steady` is this model with one instance of `c` servers and no
//! controller; `autoscale-sine` is it with 4-server instances and [`crate::controller::ReferenceHpa`].
//!
//! Lifecycle: PROVISIONING → READY → DRAINING → gone. An instance costs from its creation until it is gone.
//! Dispatch (§4.3): an arrival takes an idle server on the READY instance with the lowest number, else joins
//! the queue; a freed server of a READY instance takes the head of the queue; a freed server of a DRAINING
//! instance stays idle and the instance is gone when its last request completes; an instance that becomes
//! READY takes requests from the queue, one per idle server. Controller ticks (§4.5): promote due
//! PROVISIONING instances, observe, decide, then create instances or remove them (PROVISIONING first,
//! highest number first; then READY ones, highest number first, which drain).
//!
//! What it keeps: busy server-seconds (for the controller), instance-seconds (cost), and per request its wait
//! and sojourn. It is not the cluster model of scenarios (instance types, resources, prices): that builds on
//! this one.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};

use serde::Serialize;

use crate::controller::{Controller, Observation, ScaleDecision};
use crate::engine::{Context, Model, Simulation};
use crate::stats::{mean, nearest_rank, sort_samples};
use crate::time::SimTime;
use crate::workload::{ArrivalProcess, ServiceTimes};

/// Order in which waiting requests are served.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub enum QueueDiscipline {
    /// First come, first served (REFERENCE_MODEL).
    #[default]
    Fifo,
    /// Last come, first served (non-preemptive).
    Lifo,
}

/// Plain parameters of a [`ServiceModel`].
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ServiceConfig {
    /// Servers (concurrent requests) per instance, ≥ 1.
    pub servers_per_instance: u32,
    /// Instances READY and idle at time zero.
    pub initial_instances: u32,
    /// Time from ordering an instance to it being READY.
    pub provisioning_delay_s: f64,
    /// Control interval; `None` runs without controller ticks. Ticks are at `k · interval` for k = 1, 2, …
    /// while before the horizon.
    pub control_interval_s: Option<f64>,
    /// End of the run: nothing at or after it is processed. Required when there are ticks.
    pub horizon_s: Option<f64>,
    /// Queue discipline.
    pub discipline: QueueDiscipline,
    /// Requests count in the statistics when `record_from_s <= arrival < record_until_s` (and they complete
    /// before the horizon).
    pub record_from_s: f64,
    /// See `record_from_s`.
    pub record_until_s: f64,
}

impl ServiceConfig {
    /// Every problem with these parameters, each naming its field.
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        if self.servers_per_instance == 0 {
            p.push("servers_per_instance: must be >= 1, got 0".to_string());
        }
        if !(self.provisioning_delay_s.is_finite() && self.provisioning_delay_s >= 0.0) {
            p.push(format!("provisioning_delay_s: must be a finite number >= 0, got {}", self.provisioning_delay_s));
        }
        if let Some(i) = self.control_interval_s {
            if !(i.is_finite() && i > 0.0) {
                p.push(format!("control_interval_s: must be a finite number > 0, got {i}"));
            }
            if self.horizon_s.is_none() {
                p.push("horizon_s: required when control_interval_s is set (ticks would never end)".to_string());
            }
        }
        if let Some(h) = self.horizon_s
            && !(h.is_finite() && h > 0.0)
        {
            p.push(format!("horizon_s: must be a finite number > 0, got {h}"));
        }
        if !(self.record_from_s.is_finite() && self.record_from_s >= 0.0) {
            p.push(format!("record_from_s: must be a finite number >= 0, got {}", self.record_from_s));
        }
        if self.record_until_s.is_nan() || self.record_until_s < self.record_from_s {
            p.push(format!("record_until_s: must be >= record_from_s, got {}", self.record_until_s));
        }
        p
    }
}

/// Lifecycle state of an instance.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum InstanceState {
    /// Ordered, costs money, takes no request yet.
    Provisioning,
    /// Takes requests.
    Ready,
    /// Takes no new request; gone when its last request completes.
    Draining,
    /// No longer exists (cancelled, or drained empty).
    Gone,
}

#[derive(Clone, Debug)]
struct Instance {
    state: InstanceState,
    busy: u32,
    ready_at_s: f64,
}

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
    /// `instance` reaches its ready time.
    Ready {
        /// Instance number.
        instance: u32,
    },
}

/// Counters of canonical events and scaling actions.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Counters {
    /// Requests that arrived.
    pub arrivals: u64,
    /// Requests that completed (before the horizon).
    pub departures: u64,
    /// Controller ticks.
    pub ticks: u64,
    /// PROVISIONING → READY changes.
    pub ready_events: u64,
    /// Instances ordered by the controller.
    pub launched: u64,
    /// PROVISIONING instances removed.
    pub cancelled: u64,
    /// READY instances switched to DRAINING.
    pub drained: u64,
}

impl Counters {
    /// Canonical events (REFERENCE_MODEL §1): arrivals + departures + ticks + ready events.
    pub fn canonical_events(&self) -> u64 {
        self.arrivals + self.departures + self.ticks + self.ready_events
    }
}

/// A snapshot of the model's occupancy, for invariant checks and live views.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Occupancy {
    /// Instances by state.
    pub provisioning: u32,
    /// READY instances.
    pub ready: u32,
    /// DRAINING instances.
    pub draining: u32,
    /// Busy servers on READY instances.
    pub busy_on_ready: u32,
    /// Busy servers on DRAINING instances.
    pub busy_on_draining: u32,
    /// Requests waiting.
    pub queued: usize,
}

/// The request-level service model (see the module docs).
pub struct ServiceModel<A, S> {
    cfg: ServiceConfig,
    arrivals: A,
    service: S,
    controller: Box<dyn Controller>,
    instances: Vec<Instance>,
    /// Numbers of instances that are not gone, ascending.
    live: Vec<u32>,
    /// Arrival instants of waiting requests.
    queue: VecDeque<f64>,
    /// READY instances that may have an idle server (lazily cleaned), lowest number on top.
    idle: BinaryHeap<Reverse<u32>>,
    busy_total: u32,
    busy_acc_s: f64,
    busy_since_s: f64,
    alive: u32,
    max_alive: u32,
    cost_acc_s: f64,
    cost_since_s: f64,
    counters: Counters,
    arrivals_since_tick: u64,
    completions_since_tick: u64,
    last_departure_s: f64,
    sojourn_s: Vec<f64>,
    wait_sum_s: f64,
    waited: u64,
}

impl<A: ArrivalProcess, S: ServiceTimes> ServiceModel<A, S> {
    /// A model in its state at time zero: `initial_instances` READY and idle, empty queue.
    ///
    /// # Errors
    /// Every problem of `cfg` (see [`ServiceConfig::problems`]), joined by newlines.
    pub fn new(cfg: ServiceConfig, arrivals: A, service: S, controller: Box<dyn Controller>) -> Result<Self, String> {
        let problems = cfg.problems();
        if !problems.is_empty() {
            return Err(problems.join("\n"));
        }
        let n0 = cfg.initial_instances;
        let mut m = ServiceModel {
            instances: Vec::with_capacity(n0 as usize),
            live: Vec::with_capacity(n0 as usize),
            queue: VecDeque::new(),
            idle: BinaryHeap::with_capacity(n0 as usize),
            busy_total: 0,
            busy_acc_s: 0.0,
            busy_since_s: 0.0,
            alive: 0,
            max_alive: 0,
            cost_acc_s: 0.0,
            cost_since_s: 0.0,
            counters: Counters::default(),
            arrivals_since_tick: 0,
            completions_since_tick: 0,
            last_departure_s: 0.0,
            sojourn_s: Vec::new(),
            wait_sum_s: 0.0,
            waited: 0,
            cfg,
            arrivals,
            service,
            controller,
        };
        for id in 0..n0 {
            m.instances.push(Instance { state: InstanceState::Ready, busy: 0, ready_at_s: 0.0 });
            m.live.push(id);
            m.alive_changed(0.0, true);
            m.idle.push(Reverse(id));
        }
        Ok(m)
    }

    /// Reserves room for `n` recorded requests (avoids reallocation when the count is known roughly).
    pub fn reserve_samples(&mut self, n: usize) {
        self.sojourn_s.reserve_exact(n);
    }

    /// A simulation of this model with its first arrival and first tick scheduled.
    pub fn into_simulation(mut self) -> Simulation<Self> {
        let first_arrival = self.arrivals.next_arrival_s();
        let first_tick = self.cfg.control_interval_s.filter(|&i| self.cfg.horizon_s.is_some_and(|h| i < h));
        let mut sim = Simulation::new(self);
        if let Some(t) = first_arrival {
            sim.schedule_at(SimTime::from_secs(t), ServiceEvent::Arrival);
        }
        if let Some(t) = first_tick {
            sim.schedule_at(SimTime::from_secs(t), ServiceEvent::Tick);
        }
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

    /// Counters so far.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// Requests in service now.
    pub fn in_service(&self) -> u32 {
        self.busy_total
    }

    /// State of instance `id`.
    pub fn instance_state(&self, id: u32) -> Option<InstanceState> {
        self.instances.get(id as usize).map(|i| i.state)
    }

    /// Occupancy now.
    pub fn occupancy(&self) -> Occupancy {
        let mut o = Occupancy { queued: self.queue.len(), ..Occupancy::default() };
        for &id in &self.live {
            let i = &self.instances[id as usize];
            match i.state {
                InstanceState::Provisioning => o.provisioning += 1,
                InstanceState::Ready => {
                    o.ready += 1;
                    o.busy_on_ready += i.busy;
                }
                InstanceState::Draining => {
                    o.draining += 1;
                    o.busy_on_draining += i.busy;
                }
                InstanceState::Gone => {}
            }
        }
        o
    }

    /// Checks the model's invariants; `Err` names the first one broken.
    ///
    /// Requests are conserved (`arrivals = departures + queued + in service`); busy servers never exceed the
    /// servers of READY (resp. DRAINING) instances; a DRAINING instance always has a busy server (else it
    /// would be gone); no server idles on a READY instance while requests wait; the live list holds exactly
    /// the instances that are not gone; cost-accruing instances = live instances.
    pub fn check_invariants(&self) -> Result<(), String> {
        let o = self.occupancy();
        let c = &self.counters;
        let spi = self.cfg.servers_per_instance;
        if c.arrivals != c.departures + o.queued as u64 + self.busy_total as u64 {
            return Err(format!(
                "requests not conserved: {} arrivals != {} departures + {} queued + {} in service",
                c.arrivals, c.departures, o.queued, self.busy_total
            ));
        }
        if o.busy_on_ready + o.busy_on_draining != self.busy_total {
            return Err(format!("busy total {} != per-instance sum", self.busy_total));
        }
        if o.busy_on_ready > o.ready * spi {
            return Err(format!("{} busy servers on {} ready instances of {spi}", o.busy_on_ready, o.ready));
        }
        if o.busy_on_draining > o.draining * spi {
            return Err(format!("{} busy servers on {} draining instances", o.busy_on_draining, o.draining));
        }
        if o.queued > 0 && o.busy_on_ready < o.ready * spi {
            return Err(format!("{} requests wait while a READY server is idle", o.queued));
        }
        for &id in &self.live {
            let i = &self.instances[id as usize];
            if i.state == InstanceState::Gone {
                return Err(format!("instance {id} is gone but listed live"));
            }
            if i.state == InstanceState::Draining && i.busy == 0 {
                return Err(format!("instance {id} drains with no busy server"));
            }
        }
        let live_states = self.instances.iter().filter(|i| i.state != InstanceState::Gone).count();
        if live_states != self.live.len() || self.alive as usize != self.live.len() {
            return Err(format!(
                "live list {} / alive {} / states {live_states} disagree",
                self.live.len(),
                self.alive
            ));
        }
        if !self.live.windows(2).all(|w| w[0] < w[1]) {
            return Err("live list not ascending".to_string());
        }
        Ok(())
    }

    /// Ends the run at `end_s` (closing the cost integral) and computes the statistics.
    pub fn finish(mut self, end_s: f64) -> ServiceReport {
        let instance_seconds = self.cost_acc_s + self.alive as f64 * (end_s - self.cost_since_s);
        let n = self.sojourn_s.len();
        let mean_sojourn_s = mean(&self.sojourn_s);
        sort_samples(&mut self.sojourn_s);
        let q = |p| nearest_rank(&self.sojourn_s, p);
        ServiceReport {
            recorded: n as u64,
            mean_wait_s: self.wait_sum_s / n as f64,
            p_wait: self.waited as f64 / n as f64,
            mean_sojourn_s,
            p50_sojourn_s: q(0.50),
            p95_sojourn_s: q(0.95),
            p99_sojourn_s: q(0.99),
            instance_seconds,
            max_instances: self.max_alive,
            final_instances: self.alive,
            counters: self.counters,
            last_departure_s: self.last_departure_s,
            end_s,
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

    fn alive_changed(&mut self, now_s: f64, up: bool) {
        self.cost_acc_s += self.alive as f64 * (now_s - self.cost_since_s);
        self.cost_since_s = now_s;
        if up {
            self.alive += 1;
            self.max_alive = self.max_alive.max(self.alive);
        } else {
            self.alive -= 1;
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

    fn gone(&mut self, id: u32, now_s: f64) {
        self.instances[id as usize].state = InstanceState::Gone;
        if let Ok(pos) = self.live.binary_search(&id) {
            self.live.remove(pos);
        }
        self.alive_changed(now_s, false);
    }

    fn promote(&mut self, id: u32, ctx: &mut Context<'_, ServiceEvent>) {
        let now = ctx.now();
        let spi = self.cfg.servers_per_instance;
        self.instances[id as usize].state = InstanceState::Ready;
        self.counters.ready_events += 1;
        while self.instances[id as usize].busy < spi {
            let Some(a) = self.pop_waiting() else { break };
            self.busy_changed(now.as_secs(), true);
            self.instances[id as usize].busy += 1;
            self.start_service(id, a, now, ctx);
        }
        if self.instances[id as usize].busy < spi {
            self.idle.push(Reverse(id));
        }
    }

    fn on_arrival(&mut self, ctx: &mut Context<'_, ServiceEvent>) {
        let now = ctx.now();
        self.counters.arrivals += 1;
        self.arrivals_since_tick += 1;
        let spi = self.cfg.servers_per_instance;
        let mut placed = false;
        while let Some(&Reverse(id)) = self.idle.peek() {
            let inst = &mut self.instances[id as usize];
            if inst.state == InstanceState::Ready && inst.busy < spi {
                inst.busy += 1;
                if inst.busy == spi {
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
        let now_s = ctx.now().as_secs();
        self.counters.departures += 1;
        self.completions_since_tick += 1;
        self.last_departure_s = now_s;
        if arrival_s >= self.cfg.record_from_s && arrival_s < self.cfg.record_until_s {
            let wait = start_s - arrival_s;
            self.wait_sum_s += wait;
            if wait > 0.0 {
                self.waited += 1;
            }
            self.sojourn_s.push(now_s - arrival_s);
        }
        let state = self.instances[id as usize].state;
        if state == InstanceState::Ready
            && let Some(a) = self.pop_waiting()
        {
            self.start_service(id, a, ctx.now(), ctx);
            return;
        }
        self.busy_changed(now_s, false);
        let spi = self.cfg.servers_per_instance;
        let inst = &mut self.instances[id as usize];
        let was_full = inst.busy == spi;
        inst.busy -= 1;
        match state {
            InstanceState::Ready if was_full => self.idle.push(Reverse(id)),
            InstanceState::Draining if inst.busy == 0 => self.gone(id, now_s),
            _ => {}
        }
    }

    fn on_tick(&mut self, ctx: &mut Context<'_, ServiceEvent>) {
        let now_s = ctx.now().as_secs();
        let interval_s = self.cfg.control_interval_s.expect("ticks only with an interval");
        self.counters.ticks += 1;
        // Step 1: due PROVISIONING instances become READY, in number order.
        let due: Vec<u32> = self
            .live
            .iter()
            .copied()
            .filter(|&id| {
                let i = &self.instances[id as usize];
                i.state == InstanceState::Provisioning && i.ready_at_s <= now_s
            })
            .collect();
        for id in due {
            self.promote(id, ctx);
        }
        // Step 2: observe.
        let busy_server_s = self.busy_acc_s + self.busy_total as f64 * (now_s - self.busy_since_s);
        self.busy_acc_s = 0.0;
        self.busy_since_s = now_s;
        let o = self.occupancy();
        let obs = Observation {
            now_s,
            interval_s,
            busy_server_s,
            ready_instances: o.ready,
            provisioning_instances: o.provisioning,
            draining_instances: o.draining,
            servers_per_instance: self.cfg.servers_per_instance,
            queue_len: o.queued,
            arrivals_in_interval: self.arrivals_since_tick,
            completions_in_interval: self.completions_since_tick,
        };
        self.arrivals_since_tick = 0;
        self.completions_since_tick = 0;
        // Steps 3-7: decide and act.
        if let ScaleDecision::To { instances: desired } = self.controller.decide(&obs) {
            self.scale_to(desired, &obs, ctx);
        }
        let next_s = interval_s * (self.counters.ticks + 1) as f64;
        if self.cfg.horizon_s.is_some_and(|h| next_s < h) {
            ctx.schedule_at(SimTime::from_secs(next_s), ServiceEvent::Tick);
        }
    }

    fn scale_to(&mut self, desired: u32, obs: &Observation, ctx: &mut Context<'_, ServiceEvent>) {
        let now = ctx.now();
        let n = obs.allocated_instances();
        if desired > n {
            let ready_at = now + self.cfg.provisioning_delay_s;
            for _ in n..desired {
                let id = self.instances.len() as u32;
                self.instances.push(Instance {
                    state: InstanceState::Provisioning,
                    busy: 0,
                    ready_at_s: ready_at.as_secs(),
                });
                self.live.push(id);
                self.alive_changed(now.as_secs(), true);
                self.counters.launched += 1;
                ctx.schedule_at(ready_at, ServiceEvent::Ready { instance: id });
            }
        } else if desired < n {
            let mut k = n - desired;
            let by_state = |m: &Self, s: InstanceState| -> Vec<u32> {
                m.live.iter().rev().copied().filter(|&id| m.instances[id as usize].state == s).collect()
            };
            for id in by_state(self, InstanceState::Provisioning) {
                if k == 0 {
                    break;
                }
                self.counters.cancelled += 1;
                self.gone(id, now.as_secs());
                k -= 1;
            }
            for id in by_state(self, InstanceState::Ready) {
                if k == 0 {
                    break;
                }
                self.instances[id as usize].state = InstanceState::Draining;
                self.counters.drained += 1;
                if self.instances[id as usize].busy == 0 {
                    self.gone(id, now.as_secs());
                }
                k -= 1;
            }
        }
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
            ServiceEvent::Ready { instance } => {
                if self.instances[instance as usize].state == InstanceState::Provisioning {
                    self.promote(instance, ctx);
                }
            }
        }
    }
}

/// Results of a service-model run.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ServiceReport {
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
    /// Integral of live (PROVISIONING + READY + DRAINING) instances over `[0, end]`.
    pub instance_seconds: f64,
    /// Most live instances at once.
    pub max_instances: u32,
    /// Live instances at the end.
    pub final_instances: u32,
    /// Event and action counters.
    pub counters: Counters,
    /// Instant of the last departure.
    pub last_departure_s: f64,
    /// Instant the run ended (horizon, or last event).
    pub end_s: f64,
}
