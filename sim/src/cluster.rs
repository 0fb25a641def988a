//! The cluster: instance types, their lifecycle, cost and capacity — shared by both fidelities.
//!
//! [`ClusterConfig`] is plain serde data (what a scenario file says); [`ClusterConfig::init`] turns it into a
//! [`Fleet`], the runtime value that owns every instance ever created. The fleet implements the lifecycle
//! PROVISIONING → READY (warming, then full capacity) → DRAINING → TERMINATING → gone, random failures with
//! replacement, scale actions in the order of REFERENCE_MODEL §4.5 step 7 (cancel PROVISIONING highest number
//! first, then drain READY highest number first), quotas, and billing with granularity and minimum billed
//! time. It schedules its own lifecycle events ([`FleetEvent`]) into the engine through any event type that
//! wraps them, and tells the model owning it what changed ([`FleetChange`]) so that the model can move
//! requests (the request-level model) or work (the fluid model).
//!
//! What it is not: it does not know requests. Busy servers per instance are kept here only because a
//! draining instance leaves when its last request completes.

use serde::{Deserialize, Serialize};

use crate::controller::{Observation, ScaleDecision, TickLoad};
use crate::engine::Context;
use crate::rng::{Draws, RandDraws, RunSeed, StreamRng};
use crate::time::SimTime;

/// An amount of each resource an instance offers or a workload needs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Resources {
    /// CPU cores.
    #[serde(default)]
    pub cpu_cores: f64,
    /// Memory, GiB.
    #[serde(default)]
    pub memory_gib: f64,
    /// Local storage, GiB.
    #[serde(default)]
    pub storage_gib: f64,
    /// Network bandwidth, Gbit/s.
    #[serde(default)]
    pub network_gbps: f64,
}

impl Resources {
    /// `self + k · other`, resource by resource.
    pub fn add_scaled(&mut self, other: &Resources, k: f64) {
        self.cpu_cores += k * other.cpu_cores;
        self.memory_gib += k * other.memory_gib;
        self.storage_gib += k * other.storage_gib;
        self.network_gbps += k * other.network_gbps;
    }

    /// The four amounts in the order cpu, memory, storage, network, with their names.
    pub fn named(&self) -> [(&'static str, f64); 4] {
        [
            ("cpu_cores", self.cpu_cores),
            ("memory_gib", self.memory_gib),
            ("storage_gib", self.storage_gib),
            ("network_gbps", self.network_gbps),
        ]
    }
}

/// Upper limits on the total resources of live instances; `None` = unlimited.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Quota {
    /// Most CPU cores in total.
    #[serde(default)]
    pub cpu_cores: Option<f64>,
    /// Most memory in total, GiB.
    #[serde(default)]
    pub memory_gib: Option<f64>,
    /// Most storage in total, GiB.
    #[serde(default)]
    pub storage_gib: Option<f64>,
    /// Most network bandwidth in total, Gbit/s.
    #[serde(default)]
    pub network_gbps: Option<f64>,
}

impl Quota {
    /// Whether `total` stays within every limit.
    pub fn admits(&self, total: &Resources) -> bool {
        let ok = |limit: Option<f64>, x: f64| limit.is_none_or(|l| x <= l + 1e-9);
        ok(self.cpu_cores, total.cpu_cores)
            && ok(self.memory_gib, total.memory_gib)
            && ok(self.storage_gib, total.storage_gib)
            && ok(self.network_gbps, total.network_gbps)
    }
}

/// A distribution of delays, seconds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum Delay {
    /// Always `s`.
    Constant {
        /// Seconds.
        s: f64,
    },
    /// Uniform on `[min_s, max_s]`.
    Uniform {
        /// Lower bound.
        min_s: f64,
        /// Upper bound.
        max_s: f64,
    },
    /// Log-normal with median `median_s` and log-space standard deviation `sigma`:
    /// `median · exp(sigma · Z)`, `Z ~ N(0, 1)`.
    LogNormal {
        /// Median, seconds.
        median_s: f64,
        /// Standard deviation of the logarithm.
        sigma: f64,
    },
    /// Uniformly one of the observed samples (e.g. measured boot times).
    Empirical {
        /// Observed delays, seconds.
        samples_s: Vec<f64>,
    },
}

impl Delay {
    /// One delay. Draws from `draws` only when the distribution is random.
    pub fn sample(&self, draws: &mut RandDraws<StreamRng>) -> f64 {
        match self {
            Delay::Constant { s } => *s,
            Delay::Uniform { min_s, max_s } => min_s + (max_s - min_s) * draws.uniform(),
            Delay::LogNormal { median_s, sigma } => {
                let z: f64 = draws.sample(&rand_distr::StandardNormal);
                median_s * (sigma * z).exp()
            }
            Delay::Empirical { samples_s } => {
                let i = ((draws.uniform() * samples_s.len() as f64) as usize).min(samples_s.len() - 1);
                samples_s[i]
            }
        }
    }

    /// The mean delay.
    pub fn mean_s(&self) -> f64 {
        match self {
            Delay::Constant { s } => *s,
            Delay::Uniform { min_s, max_s } => 0.5 * (min_s + max_s),
            Delay::LogNormal { median_s, sigma } => median_s * (0.5 * sigma * sigma).exp(),
            Delay::Empirical { samples_s } => samples_s.iter().sum::<f64>() / samples_s.len() as f64,
        }
    }

    /// Problems with the parameters, as `(field, message)`.
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut p = Vec::new();
        let mut need = |field: &str, ok: bool, what: &str, got: f64| {
            if !ok {
                p.push((field.to_string(), format!("must be {what}, got {got}")));
            }
        };
        match self {
            Delay::Constant { s } => need("s", s.is_finite() && *s >= 0.0, "a finite number >= 0", *s),
            Delay::Uniform { min_s, max_s } => {
                need("min_s", min_s.is_finite() && *min_s >= 0.0, "a finite number >= 0", *min_s);
                need("max_s", max_s.is_finite() && *max_s >= *min_s, "a finite number >= min_s", *max_s);
            }
            Delay::LogNormal { median_s, sigma } => {
                need("median_s", median_s.is_finite() && *median_s > 0.0, "a finite number > 0", *median_s);
                need("sigma", sigma.is_finite() && *sigma >= 0.0 && *sigma <= 5.0, "a number from 0 to 5", *sigma);
            }
            Delay::Empirical { samples_s } => {
                if samples_s.is_empty() {
                    need("samples_s", false, "a list of at least one sample", 0.0);
                }
                for (i, s) in samples_s.iter().enumerate() {
                    need(&format!("samples_s[{i}]"), s.is_finite() && *s >= 0.0, "a finite number >= 0", *s);
                }
            }
        }
        p
    }
}

/// How a cloud bills an instance's lifetime.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Billing {
    /// Lifetime is rounded up to a multiple of this (1 = per second, 3600 = per hour).
    pub granularity_s: f64,
    /// Every instance is billed at least this long.
    pub minimum_s: f64,
}

impl Default for Billing {
    fn default() -> Self {
        Billing { granularity_s: 1.0, minimum_s: 60.0 }
    }
}

impl Billing {
    /// Billed seconds for a lifetime: `max(minimum, ceil(lifetime / granularity) · granularity)`.
    pub fn billed_s(&self, lifetime_s: f64) -> f64 {
        let rounded = (lifetime_s / self.granularity_s).ceil() * self.granularity_s;
        rounded.max(self.minimum_s)
    }
}

fn default_one() -> f64 {
    1.0
}

/// One instance type of a scenario's cluster.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InstanceTypeConfig {
    /// Name, unique in the cluster (e.g. `"m5.xlarge"`).
    pub name: String,
    /// What one instance offers.
    pub capacity: Resources,
    /// Price, USD per hour.
    pub price_usd_per_hour: f64,
    /// Billing rules.
    #[serde(default)]
    pub billing: Billing,
    /// From order to READY.
    pub provisioning_delay: Delay,
    /// Time after READY during which the instance serves at reduced capacity (caches, JIT, connections).
    #[serde(default)]
    pub warmup_s: f64,
    /// Fraction of capacity available while warming up, in [0, 1].
    #[serde(default = "default_one")]
    pub warmup_capacity_fraction: f64,
    /// From empty-and-removed to gone (still billed meanwhile).
    #[serde(default)]
    pub termination_delay_s: f64,
    /// Instances READY at time zero.
    pub initial_count: u32,
    /// Fewest live instances of this type the fleet keeps.
    #[serde(default)]
    pub min_count: u32,
    /// Most live instances of this type.
    pub max_count: u32,
}

/// Most instances a cluster may hold at once (the sum of every type's `max_count`).
pub const MAX_INSTANCES: u64 = 1_000_000;
/// Most instance failures a run may expect (each is an event and a replacement instance).
pub const MAX_EXPECTED_FAILURES: f64 = 1e7;

/// Random instance failures.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Failures {
    /// Mean time between failures of one instance (exponential lifetimes).
    pub mean_time_between_failures_s: f64,
    /// A failed instance is replaced by a new one of its type, READY after this delay.
    pub replacement_delay_s: f64,
}

/// A scenario's cluster.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterConfig {
    /// Instance types.
    pub instance_types: Vec<InstanceTypeConfig>,
    /// The type the controller scales (by name); the others stay at their initial count.
    pub scaling_type: String,
    /// Limits on the total resources of live instances.
    #[serde(default)]
    pub quota: Quota,
    /// Random failures; `None` = instances never fail.
    #[serde(default)]
    pub failures: Option<Failures>,
}

impl ClusterConfig {
    /// A cluster of one type with `servers` servers per instance, free and never failing, `initial` instances
    /// READY at time zero, a constant provisioning delay and `max` instances at most (the reference model's).
    pub fn homogeneous(servers: u32, initial: u32, provisioning_delay_s: f64, max: u32) -> Self {
        ClusterConfig {
            instance_types: vec![InstanceTypeConfig {
                name: "default".into(),
                capacity: Resources { cpu_cores: servers as f64, ..Resources::default() },
                price_usd_per_hour: 0.0,
                billing: Billing { granularity_s: 1.0, minimum_s: 0.0 },
                provisioning_delay: Delay::Constant { s: provisioning_delay_s },
                warmup_s: 0.0,
                warmup_capacity_fraction: 1.0,
                termination_delay_s: 0.0,
                initial_count: initial,
                min_count: 0,
                max_count: max,
            }],
            scaling_type: "default".into(),
            quota: Quota::default(),
            failures: None,
        }
    }

    /// Index of the scaling type, if it names one.
    pub fn scaling_index(&self) -> Option<usize> {
        self.instance_types.iter().position(|t| t.name == self.scaling_type)
    }

    /// Failures expected over `horizon_s` if every instance type ran at its `max_count` (each one an event and
    /// a replacement instance).
    pub fn expected_failures(&self, horizon_s: f64) -> f64 {
        let most: f64 = self.instance_types.iter().map(|t| t.max_count as f64).sum();
        self.failures.as_ref().map_or(0.0, |f| most * horizon_s / f.mean_time_between_failures_s)
    }

    /// Every problem, as `(dotted path below the cluster, message)`.
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut p = Vec::new();
        if self.instance_types.is_empty() {
            p.push(("instance_types".into(), "must list at least one instance type".into()));
        }
        for (i, t) in self.instance_types.iter().enumerate() {
            let at = |f: &str| format!("instance_types[{i}].{f}");
            if t.name.trim().is_empty() {
                p.push((at("name"), "must not be empty".into()));
            }
            if self.instance_types[..i].iter().any(|u| u.name == t.name) {
                p.push((at("name"), format!("duplicate instance type name '{}'", t.name)));
            }
            for (name, x) in t.capacity.named() {
                if !(x.is_finite() && x >= 0.0) {
                    p.push((at(&format!("capacity.{name}")), format!("must be a finite number >= 0, got {x}")));
                }
            }
            if !(t.capacity.cpu_cores > 0.0) {
                p.push((at("capacity.cpu_cores"), format!("must be > 0, got {}", t.capacity.cpu_cores)));
            }
            if !(t.price_usd_per_hour.is_finite() && t.price_usd_per_hour >= 0.0) {
                p.push((at("price_usd_per_hour"), format!("must be >= 0, got {}", t.price_usd_per_hour)));
            }
            if !(t.billing.granularity_s.is_finite() && t.billing.granularity_s > 0.0) {
                p.push((at("billing.granularity_s"), format!("must be > 0, got {}", t.billing.granularity_s)));
            }
            if !(t.billing.minimum_s.is_finite() && t.billing.minimum_s >= 0.0) {
                p.push((at("billing.minimum_s"), format!("must be >= 0, got {}", t.billing.minimum_s)));
            }
            for (f, m) in t.provisioning_delay.problems() {
                p.push((at(&format!("provisioning_delay.{f}")), m));
            }
            if !(t.warmup_s.is_finite() && t.warmup_s >= 0.0) {
                p.push((at("warmup_s"), format!("must be >= 0, got {}", t.warmup_s)));
            }
            if !(0.0..=1.0).contains(&t.warmup_capacity_fraction) {
                p.push((
                    at("warmup_capacity_fraction"),
                    format!("must be in [0, 1], got {}", t.warmup_capacity_fraction),
                ));
            }
            if !(t.termination_delay_s.is_finite() && t.termination_delay_s >= 0.0) {
                p.push((at("termination_delay_s"), format!("must be >= 0, got {}", t.termination_delay_s)));
            }
            if t.max_count == 0 {
                p.push((at("max_count"), "must be >= 1, got 0".into()));
            }
            if t.min_count > t.max_count {
                p.push((at("min_count"), format!("must be <= max_count ({}), got {}", t.max_count, t.min_count)));
            }
            if t.initial_count > t.max_count {
                p.push((
                    at("initial_count"),
                    format!("must be <= max_count ({}), got {}", t.max_count, t.initial_count),
                ));
            }
        }
        // The fleet keeps a record per instance (and the request-level model a slot per server): bound what a
        // run could hold before it starts.
        let most: u64 = self.instance_types.iter().map(|t| t.max_count as u64).sum();
        if most > MAX_INSTANCES {
            p.push((
                "instance_types".into(),
                format!(
                    "max_count adds up to {most} instances, more than {MAX_INSTANCES} (a fleet of that size would \
                     need about {:.0} GiB); lower max_count",
                    most as f64 * 200.0 / (1u64 << 30) as f64
                ),
            ));
        }
        if self.scaling_index().is_none() && !self.instance_types.is_empty() {
            let known: Vec<&str> = self.instance_types.iter().map(|t| t.name.as_str()).collect();
            p.push(("scaling_type".into(), format!("names no instance type; known: {}", known.join(", "))));
        }
        for (name, limit) in [
            ("cpu_cores", self.quota.cpu_cores),
            ("memory_gib", self.quota.memory_gib),
            ("storage_gib", self.quota.storage_gib),
            ("network_gbps", self.quota.network_gbps),
        ] {
            if let Some(l) = limit
                && !(l.is_finite() && l >= 0.0)
            {
                p.push((format!("quota.{name}"), format!("must be a finite number >= 0, got {l}")));
            }
        }
        let mut initial = Resources::default();
        for t in &self.instance_types {
            initial.add_scaled(&t.capacity, t.initial_count as f64);
        }
        if !self.quota.admits(&initial) {
            p.push(("quota".into(), "the initial instances already exceed the quota".into()));
        }
        if let Some(f) = &self.failures {
            if !(f.mean_time_between_failures_s.is_finite() && f.mean_time_between_failures_s > 0.0) {
                p.push((
                    "failures.mean_time_between_failures_s".into(),
                    format!("must be a finite number > 0, got {}", f.mean_time_between_failures_s),
                ));
            }
            if !(f.replacement_delay_s.is_finite() && f.replacement_delay_s >= 0.0) {
                p.push((
                    "failures.replacement_delay_s".into(),
                    format!("must be a finite number >= 0, got {}", f.replacement_delay_s),
                ));
            }
        }
        p
    }

    /// Servers (concurrent requests) of one instance of type `t` when each request in service holds
    /// `per_request`: the least over the resources a request uses of `floor(capacity / per_request)`, at
    /// least 1.
    pub fn servers_per_instance(t: &InstanceTypeConfig, per_request: &Resources) -> u32 {
        let fit = |cap: f64, need: f64| if need > 0.0 { (cap / need).floor() } else { f64::INFINITY };
        let n = fit(t.capacity.cpu_cores, per_request.cpu_cores)
            .min(fit(t.capacity.memory_gib, per_request.memory_gib))
            .min(fit(t.capacity.storage_gib, per_request.storage_gib))
            .min(fit(t.capacity.network_gbps, per_request.network_gbps));
        if n.is_finite() { (n as u32).max(1) } else { 1 }
    }

    /// The runtime fleet (nothing created yet: call [`Fleet::start`] inside the simulation), with servers
    /// per instance from [`ClusterConfig::servers_per_instance`].
    ///
    /// # Errors
    /// The problems of [`ClusterConfig::problems`], or a request that uses no CPU.
    pub fn init(&self, per_request: &Resources, seed: RunSeed) -> Result<Fleet, String> {
        let problems = self.problems();
        if !problems.is_empty() {
            return Err(problems.iter().map(|(p, m)| format!("{p}: {m}")).collect::<Vec<_>>().join("\n"));
        }
        if !(per_request.cpu_cores.is_finite() && per_request.cpu_cores > 0.0) {
            return Err(format!("cores_per_request: must be > 0, got {}", per_request.cpu_cores));
        }
        let servers = self.instance_types.iter().map(|t| Self::servers_per_instance(t, per_request)).collect();
        Ok(Fleet {
            types: self.instance_types.clone(),
            servers,
            scaling_type: self.scaling_index().expect("validated"),
            quota: self.quota,
            failures: self.failures,
            instances: Vec::new(),
            live: Vec::new(),
            live_per_type: vec![0; self.instance_types.len()],
            alive: 0,
            max_alive: 0,
            inst_s_acc: 0.0,
            inst_since_s: 0.0,
            ready_servers: 0,
            ready_server_s_acc: 0.0,
            ready_since_s: 0.0,
            ready_capacity: Resources::default(),
            allocated: Resources::default(),
            billed_gone_usd: 0.0,
            counters: FleetCounters::default(),
            delay_draws: seed.draws("provisioning"),
            failure_draws: seed.draws("failures"),
        })
    }
}

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
    /// Busy servers on READY instances.
    pub busy_on_ready: u32,
    /// Busy servers on DRAINING instances.
    pub busy_on_draining: u32,
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
    types: Vec<InstanceTypeConfig>,
    servers: Vec<u32>,
    scaling_type: usize,
    quota: Quota,
    failures: Option<Failures>,
    pub(crate) instances: Vec<Instance>,
    /// Numbers of instances that are not gone, ascending.
    pub(crate) live: Vec<u32>,
    live_per_type: Vec<u32>,
    alive: u32,
    max_alive: u32,
    inst_s_acc: f64,
    inst_since_s: f64,
    ready_servers: u32,
    ready_server_s_acc: f64,
    ready_since_s: f64,
    /// Effective capacity of READY instances (kept incrementally).
    ready_capacity: Resources,
    /// Capacity of live instances (what the quota limits).
    allocated: Resources,
    billed_gone_usd: f64,
    counters: FleetCounters,
    delay_draws: RandDraws<StreamRng>,
    failure_draws: RandDraws<StreamRng>,
}

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

    /// Cost so far: gone instances as billed, live ones as billed if they ended now.
    pub fn cost_usd(&self, now_s: f64) -> f64 {
        let live: f64 = self.live.iter().map(|&id| self.bill(&self.instances[id as usize], now_s)).sum();
        self.billed_gone_usd + live
    }

    fn bill(&self, inst: &Instance, end_s: f64) -> f64 {
        let t = &self.types[inst.ty as usize];
        t.billing.billed_s(end_s - inst.created_s) / 3600.0 * t.price_usd_per_hour
    }

    /// Effective capacity of READY instances (warming ones at their reduced fraction) and nominal capacity of
    /// PROVISIONING instances.
    pub fn capacity(&self) -> (Resources, Resources) {
        let (mut ready, mut prov) = (Resources::default(), Resources::default());
        for &id in &self.live {
            let i = &self.instances[id as usize];
            let t = &self.types[i.ty as usize];
            match i.state {
                InstanceState::Ready => {
                    ready.add_scaled(&t.capacity, i.usable as f64 / self.servers[i.ty as usize] as f64)
                }
                InstanceState::Provisioning => prov.add_scaled(&t.capacity, 1.0),
                _ => {}
            }
        }
        (ready, prov)
    }

    /// Instances per state now.
    pub fn occupancy(&self) -> FleetOccupancy {
        let mut o = FleetOccupancy::default();
        for &id in &self.live {
            let i = &self.instances[id as usize];
            let scaling = i.ty as usize == self.scaling_type;
            match i.state {
                InstanceState::Provisioning => {
                    o.provisioning += 1;
                    o.scaling_provisioning += scaling as u32;
                }
                InstanceState::Ready => {
                    o.ready += 1;
                    o.busy_on_ready += i.busy;
                    o.usable_on_ready += i.usable;
                    o.scaling_ready += scaling as u32;
                    if !scaling {
                        o.static_usable_on_ready += i.usable;
                    }
                }
                InstanceState::Draining => {
                    o.draining += 1;
                    o.busy_on_draining += i.busy;
                }
                InstanceState::Terminating => o.terminating += 1,
                InstanceState::Gone => {}
            }
        }
        o.scaling_allocated = o.scaling_ready + o.scaling_provisioning;
        o
    }

    /// PROVISIONING instances whose ready time has come, in number order (REFERENCE_MODEL §4.5 step 1).
    pub fn due(&self, now_s: f64) -> Vec<u32> {
        self.live
            .iter()
            .copied()
            .filter(|&id| {
                let i = &self.instances[id as usize];
                i.state == InstanceState::Provisioning && i.ready_at_s <= now_s
            })
            .collect()
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
        let share = delta as f64 / self.servers[ty] as f64;
        self.ready_capacity.add_scaled(&self.types[ty].capacity, share);
    }

    /// Effective capacity of READY instances now (warming ones at their reduced share).
    pub fn ready_capacity(&self) -> Resources {
        self.ready_capacity
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
        });
        self.live.push(id);
        self.live_per_type[ty] += 1;
        self.allocated.add_scaled(&self.types[ty].capacity, 1.0);
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
        let inst = &mut self.instances[id as usize];
        inst.state = InstanceState::Ready;
        inst.usable = usable;
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
        let ty = self.instances[id as usize].ty as usize;
        self.instances[id as usize].state = InstanceState::Gone;
        if let Ok(pos) = self.live.binary_search(&id) {
            self.live.remove(pos);
        }
        self.live_per_type[ty] -= 1;
        self.allocated.add_scaled(&self.types[ty].capacity, -1.0);
        self.billed_gone_usd += self.bill(&self.instances[id as usize], now_s);
        self.alive_changed(now_s, false);
    }

    /// Removes an instance that serves nothing: gone now, or after the type's termination delay.
    fn terminate<E: From<FleetEvent>>(&mut self, id: u32, ctx: &mut Context<'_, E>) {
        let delay = self.types[self.instances[id as usize].ty as usize].termination_delay_s;
        if delay > 0.0 {
            self.instances[id as usize].state = InstanceState::Terminating;
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
        self.live
            .iter()
            .map(|&id| &self.instances[id as usize])
            .filter(|i| i.ty as usize == ty && matches!(i.state, InstanceState::Provisioning | InstanceState::Ready))
            .count() as u32
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
        }
    }

    /// Brings PROVISIONING + READY instances of type `ty` to `desired`, clipped to the type's
    /// `[min_count, max_count]` (counting its live instances) and to the quota. Scale-down order of
    /// REFERENCE_MODEL §4.5 step 7. Returns the number of instances ordered (> 0) or removed (< 0).
    pub fn scale_type_to<E: From<FleetEvent>>(&mut self, st: usize, desired: u32, ctx: &mut Context<'_, E>) -> i64 {
        let n = self.allocated_of_type(st);
        let t = &self.types[st];
        if desired > n {
            let room_max = t.max_count.saturating_sub(self.live_per_type[st]);
            let mut k = (desired - n).min(room_max);
            if k < desired - n {
                self.counters.clipped += 1;
            }
            let mut launched = 0;
            while k > 0 {
                let mut after = self.allocated;
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
            let by_state = |f: &Fleet, s: InstanceState| -> Vec<u32> {
                f.live
                    .iter()
                    .rev()
                    .copied()
                    .filter(|&id| {
                        let i = &f.instances[id as usize];
                        i.state == s && i.ty as usize == st
                    })
                    .collect()
            };
            for id in by_state(self, InstanceState::Provisioning) {
                if k == 0 {
                    break;
                }
                self.counters.cancelled += 1;
                self.terminate(id, ctx);
                k -= 1;
                removed += 1;
            }
            for id in by_state(self, InstanceState::Ready) {
                if k == 0 {
                    break;
                }
                let usable = self.instances[id as usize].usable;
                self.ready_servers_changed(ctx.now().as_secs(), st, -(usable as i64));
                self.instances[id as usize].state = InstanceState::Draining;
                self.counters.drained += 1;
                if self.instances[id as usize].busy == 0 {
                    self.terminate(id, ctx);
                }
                k -= 1;
                removed += 1;
            }
            -removed
        } else {
            0
        }
    }

    /// Checks the fleet's own invariants.
    pub fn check_invariants(&self) -> Result<(), String> {
        for &id in &self.live {
            let i = &self.instances[id as usize];
            if i.state == InstanceState::Gone {
                return Err(format!("instance {id} is gone but listed live"));
            }
            if i.state == InstanceState::Draining && i.busy == 0 {
                return Err(format!("instance {id} drains with no busy server"));
            }
            if i.busy > i.usable.max(if i.state == InstanceState::Draining { i.busy } else { 0 }) {
                return Err(format!("instance {id} has {} busy of {} usable servers", i.busy, i.usable));
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
        let usable: u32 = self
            .live
            .iter()
            .map(|&id| &self.instances[id as usize])
            .filter(|i| i.state == InstanceState::Ready)
            .map(|i| i.usable)
            .sum();
        if usable != self.ready_servers {
            return Err(format!("ready servers {} != sum of usable {usable}", self.ready_servers));
        }
        for (ty, t) in self.types.iter().enumerate() {
            let n = self.live.iter().filter(|&&id| self.instances[id as usize].ty as usize == ty).count() as u32;
            if n != self.live_per_type[ty] {
                return Err(format!("type {}: {n} live instances, counted {}", t.name, self.live_per_type[ty]));
            }
            if n > t.max_count.max(t.initial_count) {
                return Err(format!("type {}: {n} live instances exceed max_count {}", t.name, t.max_count));
            }
        }
        if !self.quota.admits(&self.allocated) {
            return Err(format!("live capacity {:?} exceeds the quota {:?}", self.allocated, self.quota));
        }
        Ok(())
    }
}
