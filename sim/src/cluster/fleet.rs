//! The runtime fleet: every instance and its lifecycle, scale actions, billing, capacity integrals, and the
//! one tick protocol both fidelities share (`Fleet::observation`, `Fleet::apply`). What the lifecycle adds up
//! to (instances by state, usable servers, the bill) is kept in the [`Ledger`] on every change, so a tick and
//! a step cost O(types), not O(instances).

use super::ledger::Ledger;
use super::*;

/// Lifecycle state of an instance.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum InstanceState {
    /// Ordered, billed, serves nothing yet.
    Provisioning,
    /// Serves requests (at reduced capacity while warming up).
    Ready,
    /// Takes no new request; leaves when its last request completes.
    Draining,
    /// Empty and removed, still billed until its termination delay ends.
    Terminating,
    /// No longer exists.
    Gone,
}

/// One instance.
#[derive(Clone, Debug)]
pub(crate) struct Instance {
    pub(crate) ty: u16,
    pub(crate) state: InstanceState,
    pub(crate) busy: u32,
    /// Servers usable now (reduced while warming up).
    pub(crate) usable: u32,
    pub(crate) created_s: f64,
    pub(crate) ready_at_s: f64,
    /// When it became gone (NaN while it is not).
    pub(crate) gone_s: f64,
}

/// Lifecycle events the fleet schedules for itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FleetEvent {
    /// The instance reaches its ready time.
    Ready(u32),
    /// The instance's warm-up ends.
    WarmedUp(u32),
    /// The instance's termination delay ends.
    Terminated(u32),
    /// The instance fails.
    Failed(u32),
}

/// What a fleet event changed, for the model that owns the fleet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FleetChange {
    /// Nothing (a stale event).
    Nothing,
    /// The instance became READY: it may take waiting work.
    Promoted(u32),
    /// The instance gained servers: it may take waiting work.
    WarmedUp {
        /// Instance number.
        id: u32,
        /// Its usable servers before.
        usable_before: u32,
    },
    /// The instance failed; it had `lost` requests in service, which are lost.
    Failed {
        /// Instance number.
        id: u32,
        /// Requests in service on it.
        lost: u32,
    },
    /// The instance is gone.
    Gone(u32),
}

/// Counters of lifecycle events and scale actions.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct FleetCounters {
    /// PROVISIONING → READY changes.
    pub ready_events: u64,
    /// Instances ordered by the controller.
    pub launched: u64,
    /// PROVISIONING instances removed.
    pub cancelled: u64,
    /// READY instances switched to DRAINING.
    pub drained: u64,
    /// Instance failures.
    pub failures: u64,
    /// Replacement instances ordered after failures.
    pub replacements: u64,
    /// Scale-ups clipped by max_count or the quota.
    pub clipped: u64,
}

/// Instances per state now.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct FleetOccupancy {
    /// PROVISIONING instances.
    pub provisioning: u32,
    /// READY instances.
    pub ready: u32,
    /// DRAINING instances.
    pub draining: u32,
    /// TERMINATING instances.
    pub terminating: u32,
    /// Usable servers on READY instances.
    pub usable_on_ready: u32,
    /// PROVISIONING + READY instances of the scaling type (what a decision is measured against).
    pub scaling_allocated: u32,
    /// READY instances of the scaling type.
    pub scaling_ready: u32,
    /// Usable servers on READY instances of other types.
    pub static_usable_on_ready: u32,
    /// PROVISIONING instances of the scaling type.
    pub scaling_provisioning: u32,
}

/// The runtime cluster (see the module docs).
pub struct Fleet {
    pub(super) types: Vec<InstanceTypeConfig>,
    pub(super) servers: Vec<u32>,
    pub(super) scaling_type: usize,
    pub(super) quota: Quota,
    pub(super) failures: Option<Failures>,
    pub(crate) instances: Vec<Instance>,
    /// Numbers of instances that are not gone, ascending.
    pub(crate) live: Vec<u32>,
    /// Instances by state, usable servers and the bill, per type (see [`Ledger`]).
    pub(super) ledger: Ledger,
    pub(super) alive: u32,
    pub(super) max_alive: u32,
    pub(super) inst_s_acc: f64,
    pub(super) inst_since_s: f64,
    pub(super) ready_servers: u32,
    pub(super) ready_server_s_acc: f64,
    pub(super) ready_since_s: f64,
    pub(super) counters: FleetCounters,
    pub(super) delay_draws: RandDraws<StreamRng>,
    pub(super) failure_draws: RandDraws<StreamRng>,
    /// Scaling-type instances promoted to READY within the last [`RECENT_READY_S`], oldest first.
    pub(super) recent_ready: std::collections::VecDeque<u32>,
}

/// How far back an [`Observation`] lists the instants at which instances became READY (for controllers that
/// treat new instances apart, as the Kubernetes HPA's readiness rules do), seconds.
pub const RECENT_READY_S: f64 = 600.0;

impl Fleet {
    /// Creates the initial instances, READY at time zero, in type order.
    pub fn start<E: From<FleetEvent>>(&mut self, ctx: &mut Context<'_, E>) {
        for ty in 0..self.types.len() {
            for _ in 0..self.types[ty].initial_count {
                let id = self.create(ty, InstanceState::Provisioning, 0.0, ctx);
                self.make_ready(id, ctx);
            }
        }
    }

    /// Servers of one instance of type `ty` at full capacity.
    pub fn servers_of_type(&self, ty: usize) -> u32 {
        self.servers[ty]
    }

    /// Servers per instance of the scaling type.
    pub fn scaling_servers(&self) -> u32 {
        self.servers[self.scaling_type]
    }

    /// The instance types.
    pub fn types(&self) -> &[InstanceTypeConfig] {
        &self.types
    }

    /// Counters so far.
    pub fn counters(&self) -> &FleetCounters {
        &self.counters
    }

    /// Live instances (PROVISIONING, READY, DRAINING or TERMINATING) now.
    pub fn alive(&self) -> u32 {
        self.alive
    }

    /// Most live instances at once so far.
    pub fn max_alive(&self) -> u32 {
        self.max_alive
    }

    /// Usable servers on READY instances now.
    pub fn ready_servers(&self) -> u32 {
        self.ready_servers
    }

    /// State of instance `id`.
    pub fn state(&self, id: u32) -> Option<InstanceState> {
        self.instances.get(id as usize).map(|i| i.state)
    }

    /// Integral of live instances over `[0, now]` (instance-seconds).
    pub fn instance_seconds(&self, now_s: f64) -> f64 {
        self.inst_s_acc + self.alive as f64 * (now_s - self.inst_since_s)
    }

    /// Usable READY server-seconds since the last call (and resets the integral).
    pub fn take_ready_server_s(&mut self, now_s: f64) -> f64 {
        let x = self.ready_server_s_acc + self.ready_servers as f64 * (now_s - self.ready_since_s);
        self.ready_server_s_acc = 0.0;
        self.ready_since_s = now_s;
        x
    }

    /// Cost so far: gone instances as billed, live ones as billed if they ended now. Billed seconds are summed
    /// per type, then priced (exactly, from integer period counts kept on every lifecycle change); only
    /// instances younger than the largest minimum billed time are visited.
    pub fn cost_usd(&self, now_s: f64) -> f64 {
        let mut cost = 0.0;
        for (ty, t) in self.types.iter().enumerate() {
            let mut billed = self.ledger.billed_before_minimum_s(ty, now_s);
            for &id in self.live.iter().rev() {
                let i = &self.instances[id as usize];
                if now_s - i.created_s > self.ledger.max_minimum_s {
                    break;
                }
                if i.ty as usize == ty {
                    billed += self.ledger.minimum_lift_s(ty, i.created_s, now_s);
                }
            }
            cost += billed / 3600.0 * t.price_usd_per_hour;
        }
        cost
    }

    /// The sample of a step that ends now: the model's `load` and the fleet's own side (instances by state,
    /// READY and PROVISIONING capacity, the bill and the instance-seconds so far).
    pub fn step_sample(&self, load: StepLoad) -> StepSample {
        let occ = self.occupancy();
        let (ready_capacity, provisioning_capacity) = self.capacity();
        StepSample {
            start_s: load.start_s,
            end_s: load.end_s,
            arrivals: load.arrivals,
            completions: load.completions,
            failed: load.failed,
            slo_violations: load.slo_violations,
            busy_server_s: load.busy_server_s,
            ready_server_s: load.ready_server_s,
            latency_p50_s: load.latency_s[0],
            latency_p95_s: load.latency_s[1],
            latency_p99_s: load.latency_s[2],
            queued: load.queued,
            ready_instances: occ.ready,
            provisioning_instances: occ.provisioning,
            draining_instances: occ.draining + occ.terminating,
            ready_capacity,
            provisioning_capacity,
            cost_usd: self.cost_usd(load.end_s),
            instance_s: self.instance_seconds(load.end_s),
            scaling_actions: load.scaling_actions,
            diagnostics: None,
        }
    }

    /// Effective capacity of READY instances (warming ones at their reduced fraction) and nominal capacity of
    /// PROVISIONING instances (summed
    /// per type: each type's capacity times its usable READY servers over its servers per instance).
    pub fn capacity(&self) -> (Resources, Resources) {
        let (mut ready, mut prov) = (Resources::default(), Resources::default());
        for (ty, (t, c)) in self.types.iter().zip(&self.ledger.counts).enumerate() {
            ready.add_scaled(&t.capacity, c.usable_ready as f64 / self.servers[ty] as f64);
            prov.add_scaled(&t.capacity, f64::from(c.provisioning));
        }
        (ready, prov)
    }

    /// Capacity of the live instances (what the quota limits).
    pub fn allocated(&self) -> Resources {
        let mut a = Resources::default();
        for (t, c) in self.types.iter().zip(&self.ledger.counts) {
            a.add_scaled(&t.capacity, f64::from(c.live()));
        }
        a
    }

    /// Instances per state now.
    pub fn occupancy(&self) -> FleetOccupancy {
        let mut o = FleetOccupancy::default();
        for (ty, c) in self.ledger.counts.iter().enumerate() {
            o.provisioning += c.provisioning;
            o.ready += c.ready;
            o.draining += c.draining;
            o.terminating += c.terminating;
            o.usable_on_ready += c.usable_ready as u32;
            if ty == self.scaling_type {
                o.scaling_ready = c.ready;
                o.scaling_provisioning = c.provisioning;
            } else {
                o.static_usable_on_ready += c.usable_ready as u32;
            }
        }
        o.scaling_allocated = o.scaling_ready + o.scaling_provisioning;
        o
    }

    /// PROVISIONING instances whose ready time has come, in number order (REFERENCE_MODEL §4.5 step 1).
    pub fn due(&self, now_s: f64) -> Vec<u32> {
        self.ledger.due(now_s)
    }

    /// Moves instance `id` to `state`, in the instance and in the ledger.
    fn set_state(&mut self, id: u32, state: InstanceState, now_s: f64) {
        let i = &mut self.instances[id as usize];
        let from = std::mem::replace(&mut i.state, state);
        if state == InstanceState::Gone {
            i.gone_s = now_s;
        }
        let (ty, ready_at_s, created_s) = (i.ty as usize, i.ready_at_s, i.created_s);
        self.ledger.moved(id, ty, from, state, ready_at_s, created_s, now_s);
    }

    fn alive_changed(&mut self, now_s: f64, up: bool) {
        self.inst_s_acc += self.alive as f64 * (now_s - self.inst_since_s);
        self.inst_since_s = now_s;
        if up {
            self.alive += 1;
            self.max_alive = self.max_alive.max(self.alive);
        } else {
            self.alive -= 1;
        }
    }

    /// READY instance `id` of type `ty` gains (`+`) or loses (`-`) `delta` usable servers.
    fn ready_servers_changed(&mut self, now_s: f64, ty: usize, delta: i64) {
        self.ready_server_s_acc += self.ready_servers as f64 * (now_s - self.ready_since_s);
        self.ready_since_s = now_s;
        self.ready_servers = (self.ready_servers as i64 + delta) as u32;
        self.ledger.usable_changed(ty, delta);
    }

    /// Effective capacity of READY instances now (warming ones at their reduced share).
    pub fn ready_capacity(&self) -> Resources {
        self.capacity().0
    }

    fn create<E: From<FleetEvent>>(
        &mut self,
        ty: usize,
        state: InstanceState,
        delay_s: f64,
        ctx: &mut Context<'_, E>,
    ) -> u32 {
        let now = ctx.now();
        let id = self.instances.len() as u32;
        let ready_at = now + delay_s;
        self.instances.push(Instance {
            ty: ty as u16,
            state,
            busy: 0,
            usable: 0,
            created_s: now.as_secs(),
            ready_at_s: ready_at.as_secs(),
            gone_s: f64::NAN,
        });
        self.live.push(id);
        self.ledger.created(id, ty, state, now.as_secs(), ready_at.as_secs());
        self.alive_changed(now.as_secs(), true);
        if delay_s > 0.0 {
            ctx.schedule_at(ready_at, FleetEvent::Ready(id).into());
        }
        if let Some(f) = self.failures {
            let ttf = self.failure_draws.exp(1.0 / f.mean_time_between_failures_s);
            if let Some(at) = SimTime::try_from_secs(now.as_secs() + ttf) {
                ctx.schedule_at(at, FleetEvent::Failed(id).into());
            }
        }
        id
    }

    /// Makes `id` READY now (at reduced capacity while warming up) and counts a ready event. The owner then
    /// moves waiting work to it.
    pub fn promote<E: From<FleetEvent>>(&mut self, id: u32, ctx: &mut Context<'_, E>) {
        self.make_ready(id, ctx);
        self.counters.ready_events += 1;
        if self.instances[id as usize].ty as usize == self.scaling_type {
            let now_s = ctx.now().as_secs();
            while self
                .recent_ready
                .front()
                .is_some_and(|&i| self.instances[i as usize].ready_at_s <= now_s - RECENT_READY_S)
            {
                self.recent_ready.pop_front();
            }
            self.recent_ready.push_back(id);
        }
    }

    /// READY without counting a ready event (initial instances are READY from the start).
    fn make_ready<E: From<FleetEvent>>(&mut self, id: u32, ctx: &mut Context<'_, E>) {
        let now = ctx.now();
        let ty = self.instances[id as usize].ty as usize;
        let t = &self.types[ty];
        let full = self.servers[ty];
        let usable = if t.warmup_s > 0.0 { (full as f64 * t.warmup_capacity_fraction).floor() as u32 } else { full };
        if t.warmup_s > 0.0 {
            ctx.schedule_at(now + t.warmup_s, FleetEvent::WarmedUp(id).into());
        }
        self.set_state(id, InstanceState::Ready, now.as_secs());
        self.instances[id as usize].usable = usable;
        self.ready_servers_changed(now.as_secs(), ty, usable as i64);
    }

    /// Handles a lifecycle event and says what changed.
    pub fn handle<E: From<FleetEvent>>(&mut self, ev: FleetEvent, ctx: &mut Context<'_, E>) -> FleetChange {
        let now_s = ctx.now().as_secs();
        match ev {
            FleetEvent::Ready(id) => {
                if self.instances[id as usize].state != InstanceState::Provisioning {
                    return FleetChange::Nothing;
                }
                self.promote(id, ctx);
                FleetChange::Promoted(id)
            }
            FleetEvent::WarmedUp(id) => {
                let ty = self.instances[id as usize].ty as usize;
                let full = self.servers[ty];
                let inst = &mut self.instances[id as usize];
                if inst.state == InstanceState::Gone || inst.usable == full {
                    return FleetChange::Nothing;
                }
                let usable_before = inst.usable;
                inst.usable = full;
                if inst.state == InstanceState::Ready {
                    self.ready_servers_changed(now_s, ty, (full - usable_before) as i64);
                    FleetChange::WarmedUp { id, usable_before }
                } else {
                    FleetChange::Nothing
                }
            }
            FleetEvent::Terminated(id) => {
                if self.instances[id as usize].state != InstanceState::Terminating {
                    return FleetChange::Nothing;
                }
                self.gone(id, now_s);
                FleetChange::Gone(id)
            }
            FleetEvent::Failed(id) => {
                let state = self.instances[id as usize].state;
                if matches!(state, InstanceState::Gone | InstanceState::Terminating) {
                    return FleetChange::Nothing;
                }
                let lost = self.instances[id as usize].busy;
                if state == InstanceState::Ready {
                    let (usable, ty) = (self.instances[id as usize].usable, self.instances[id as usize].ty as usize);
                    self.ready_servers_changed(now_s, ty, -(usable as i64));
                }
                self.instances[id as usize].busy = 0;
                self.counters.failures += 1;
                self.gone(id, now_s);
                if state != InstanceState::Draining {
                    let ty = self.instances[id as usize].ty as usize;
                    let delay = self.failures.map_or(0.0, |f| f.replacement_delay_s);
                    let new = self.create(ty, InstanceState::Provisioning, delay, ctx);
                    self.counters.replacements += 1;
                    if delay == 0.0 {
                        self.promote(new, ctx);
                    }
                }
                FleetChange::Failed { id, lost }
            }
        }
    }

    fn gone(&mut self, id: u32, now_s: f64) {
        self.set_state(id, InstanceState::Gone, now_s);
        if let Ok(pos) = self.live.binary_search(&id) {
            self.live.remove(pos);
        }
        self.alive_changed(now_s, false);
    }

    /// Removes an instance that serves nothing: gone now, or after the type's termination delay.
    fn terminate<E: From<FleetEvent>>(&mut self, id: u32, ctx: &mut Context<'_, E>) {
        let delay = self.types[self.instances[id as usize].ty as usize].termination_delay_s;
        if delay > 0.0 {
            self.set_state(id, InstanceState::Terminating, ctx.now().as_secs());
            ctx.schedule_in(delay, FleetEvent::Terminated(id).into());
        } else {
            self.gone(id, ctx.now().as_secs());
        }
    }

    /// A request finished on DRAINING instance `id` (its busy count already decremented): the instance leaves
    /// if that was its last one.
    pub fn drained_one<E: From<FleetEvent>>(&mut self, id: u32, ctx: &mut Context<'_, E>) {
        if self.instances[id as usize].busy == 0 {
            self.terminate(id, ctx);
        }
    }

    /// Brings PROVISIONING + READY instances of the scaling type to `desired` (see
    /// [`Fleet::scale_type_to`]).
    pub fn scale_to<E: From<FleetEvent>>(&mut self, desired: u32, ctx: &mut Context<'_, E>) -> i64 {
        self.scale_type_to(self.scaling_type, desired, ctx)
    }

    /// PROVISIONING + READY instances of type `ty`.
    pub fn allocated_of_type(&self, ty: usize) -> u32 {
        let c = &self.ledger.counts[ty];
        c.provisioning + c.ready
    }

    /// Carries a controller's decision out (the one tick protocol both fidelities share); returns the number of
    /// instances ordered or removed.
    pub fn apply<E: From<FleetEvent>>(&mut self, decision: ScaleDecision, ctx: &mut Context<'_, E>) -> u32 {
        match decision {
            ScaleDecision::Hold => 0,
            ScaleDecision::To { instances } => self.scale_to(instances, ctx).unsigned_abs() as u32,
            ScaleDecision::Mix { instances } => {
                instances.iter().enumerate().map(|(ty, &n)| self.scale_type_to(ty, n, ctx).unsigned_abs() as u32).sum()
            }
        }
    }

    /// What a controller sees at a tick: the fleet's side (instances and servers by state) with the model's
    /// `load` over the interval `interval_s` that ends at `now_s` (the one observation builder both fidelities
    /// share).
    pub fn observation(&self, now_s: f64, interval_s: f64, load: TickLoad) -> Observation {
        let occ = self.occupancy();
        Observation {
            now_s,
            interval_s,
            busy_server_s: load.busy_server_s,
            ready_instances: occ.scaling_ready,
            provisioning_instances: occ.scaling_provisioning,
            draining_instances: occ.draining,
            servers_per_instance: self.scaling_servers(),
            ready_servers: occ.usable_on_ready,
            static_ready_servers: occ.static_usable_on_ready,
            queue_len: load.queue_len,
            arrivals_in_interval: load.arrivals_in_interval,
            completions_in_interval: load.completions_in_interval,
            slow_fraction: load.slow_fraction,
            memory_demand_gib: load.memory_demand_gib,
            network_demand_gbps: load.network_demand_gbps,
            recent_ready_s: self
                .recent_ready
                .iter()
                .map(|&i| &self.instances[i as usize])
                .filter(|i| i.state == InstanceState::Ready && i.ready_at_s > now_s - RECENT_READY_S)
                .map(|i| i.ready_at_s)
                .collect(),
        }
    }

    /// Brings PROVISIONING + READY instances of type `ty` to `desired`, clipped to the type's
    /// `[min_count, max_count]` (counting its live instances) and to the quota. Scale-down order of
    /// REFERENCE_MODEL §4.5 step 7. Returns the number of instances ordered (> 0) or removed (< 0).
    pub fn scale_type_to<E: From<FleetEvent>>(&mut self, st: usize, desired: u32, ctx: &mut Context<'_, E>) -> i64 {
        let n = self.allocated_of_type(st);
        let t = &self.types[st];
        if desired > n {
            let room_max = t.max_count.saturating_sub(self.ledger.counts[st].live());
            let mut k = (desired - n).min(room_max);
            if k < desired - n {
                self.counters.clipped += 1;
            }
            let mut launched = 0;
            while k > 0 {
                let mut after = self.allocated();
                after.add_scaled(&self.types[st].capacity, 1.0);
                if !self.quota.admits(&after) {
                    self.counters.clipped += 1;
                    break;
                }
                let delay = self.types[st].provisioning_delay.sample(&mut self.delay_draws);
                let id = self.create(st, InstanceState::Provisioning, delay, ctx);
                if delay == 0.0 {
                    self.promote(id, ctx);
                }
                self.counters.launched += 1;
                launched += 1;
                k -= 1;
            }
            launched
        } else if desired < n {
            let floor = t.min_count;
            let mut k = (n - desired).min(n.saturating_sub(floor));
            let mut removed = 0;
            // Highest numbers first; the walk from the newest stops once `k` are found.
            let by_state = |f: &Fleet, s: InstanceState, k: u32| -> Vec<u32> {
                f.live
                    .iter()
                    .rev()
                    .copied()
                    .filter(|&id| {
                        let i = &f.instances[id as usize];
                        i.state == s && i.ty as usize == st
                    })
                    .take(k as usize)
                    .collect()
            };
            let cancel = if self.ledger.counts[st].provisioning > 0 {
                by_state(self, InstanceState::Provisioning, k)
            } else {
                Vec::new()
            };
            for id in cancel {
                self.counters.cancelled += 1;
                self.terminate(id, ctx);
                k -= 1;
                removed += 1;
            }
            for id in by_state(self, InstanceState::Ready, k) {
                let usable = self.instances[id as usize].usable;
                self.ready_servers_changed(ctx.now().as_secs(), st, -(usable as i64));
                self.set_state(id, InstanceState::Draining, ctx.now().as_secs());
                self.counters.drained += 1;
                if self.instances[id as usize].busy == 0 {
                    self.terminate(id, ctx);
                }
                removed += 1;
            }
            -removed
        } else {
            0
        }
    }
}
