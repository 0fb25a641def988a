//! The cluster as a scenario describes it: resources, instance types, provisioning delays, billing, quotas,
//! failures; validation with every path and the size limits; `ClusterConfig::init` → [`Fleet`].

use super::*;

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

    /// Checks the parameters into `p` (fields named below the delay).
    pub fn check(&self, p: &mut Problems) {
        match self {
            Delay::Constant { s } => {
                p.non_negative("s", *s);
            }
            Delay::Uniform { min_s, max_s } => {
                p.non_negative("min_s", *min_s);
                p.require("max_s", max_s.is_finite() && *max_s >= *min_s, || {
                    format!("must be a finite number >= min_s ({min_s}), got {max_s}")
                });
            }
            Delay::LogNormal { median_s, sigma } => {
                p.positive("median_s", *median_s);
                p.within("sigma", *sigma, Interval::closed(0.0, 5.0));
            }
            Delay::Empirical { samples_s } => {
                if samples_s.is_empty() {
                    p.add("samples_s", "must list at least one sample");
                }
                for (i, s) in samples_s.iter().enumerate() {
                    p.non_negative(&format!("samples_s[{i}]"), *s);
                }
            }
        }
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

    /// The scaling type's `max_count` (`None` if `scaling_type` names no type).
    pub fn scaling_max_count(&self) -> Option<u32> {
        self.scaling_index().map(|i| self.instance_types[i].max_count)
    }

    /// Failures expected over `horizon_s` if every instance type ran at its `max_count` (each one an event and
    /// a replacement instance).
    pub fn expected_failures(&self, horizon_s: f64) -> f64 {
        let most: f64 = self.instance_types.iter().map(|t| t.max_count as f64).sum();
        self.failures.as_ref().map_or(0.0, |f| most * horizon_s / f.mean_time_between_failures_s)
    }

    /// Checks every field into `p` (paths below the cluster).
    pub fn check(&self, p: &mut Problems) {
        if self.instance_types.is_empty() {
            p.add("instance_types", "must list at least one instance type");
        }
        for (i, t) in self.instance_types.iter().enumerate() {
            p.under(&format!("instance_types[{i}]"), |p| {
                p.require("name", !t.name.trim().is_empty(), || "must not be empty".into());
                p.require("name", !self.instance_types[..i].iter().any(|u| u.name == t.name), || {
                    format!("duplicate instance type name '{}'", t.name)
                });
                for (name, x) in t.capacity.named() {
                    // Every instance serves requests, so it needs some CPU; the other resources may be 0.
                    let field = format!("capacity.{name}");
                    if name == "cpu_cores" {
                        p.positive(&field, x)
                    } else {
                        p.non_negative(&field, x)
                    };
                }
                p.non_negative("price_usd_per_hour", t.price_usd_per_hour);
                p.positive("billing.granularity_s", t.billing.granularity_s);
                p.non_negative("billing.minimum_s", t.billing.minimum_s);
                p.under("provisioning_delay", |p| t.provisioning_delay.check(p));
                p.non_negative("warmup_s", t.warmup_s);
                p.within("warmup_capacity_fraction", t.warmup_capacity_fraction, Interval::closed(0.0, 1.0));
                p.non_negative("termination_delay_s", t.termination_delay_s);
                p.at_least("max_count", t.max_count.into(), 1.0, "");
                p.at_most("min_count", t.min_count.into(), t.max_count.into(), "max_count");
                p.at_most("initial_count", t.initial_count.into(), t.max_count.into(), "max_count");
            });
        }
        // The fleet keeps a record per instance (and the request-level model a slot per server): bound what a
        // run could hold before it starts.
        let most: u64 = self.instance_types.iter().map(|t| t.max_count as u64).sum();
        p.require("instance_types", most <= MAX_INSTANCES, || {
            format!(
                "max_count adds up to {most} instances, more than {MAX_INSTANCES} (a fleet of that size would need \
                 about {:.0} GiB); lower max_count",
                most as f64 * 200.0 / (1u64 << 30) as f64
            )
        });
        if self.scaling_index().is_none() && !self.instance_types.is_empty() {
            let known: Vec<&str> = self.instance_types.iter().map(|t| t.name.as_str()).collect();
            p.add("scaling_type", format!("names no instance type; known: {}", known.join(", ")));
        }
        for (name, limit) in [
            ("cpu_cores", self.quota.cpu_cores),
            ("memory_gib", self.quota.memory_gib),
            ("storage_gib", self.quota.storage_gib),
            ("network_gbps", self.quota.network_gbps),
        ] {
            if let Some(l) = limit {
                p.non_negative(&format!("quota.{name}"), l);
            }
        }
        let mut initial = Resources::default();
        for t in &self.instance_types {
            initial.add_scaled(&t.capacity, t.initial_count as f64);
        }
        p.require("quota", self.quota.admits(&initial), || "the initial instances already exceed the quota".into());
        if let Some(f) = &self.failures {
            p.positive("failures.mean_time_between_failures_s", f.mean_time_between_failures_s);
            p.non_negative("failures.replacement_delay_s", f.replacement_delay_s);
        }
    }

    /// Every problem (paths below the cluster).
    pub fn problems(&self) -> Vec<Problem> {
        let mut p = Problems::new();
        self.check(&mut p);
        p.into_vec()
    }

    /// Servers of the static pools: every type but the scaling one at its initial count (what a controller
    /// may count on beside the scaled group).
    pub fn static_servers(&self, per_request: &Resources) -> u32 {
        let st = self.scaling_index();
        self.instance_types
            .iter()
            .enumerate()
            .filter(|(i, _)| Some(*i) != st)
            .map(|(_, t)| t.initial_count * Self::servers_per_instance(t, per_request))
            .sum()
    }

    /// Capacity of the static pools: every type but the scaling one at its initial count, resource by resource
    /// (what a stated memory or network demand may count on beside the scaled group).
    pub fn static_capacity(&self) -> Resources {
        let st = self.scaling_index();
        let mut total = Resources::default();
        for (_, t) in self.instance_types.iter().enumerate().filter(|(i, _)| Some(*i) != st) {
            total.add_scaled(&t.capacity, f64::from(t.initial_count));
        }
        total
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
        let mut p = Problems::new();
        self.check(&mut p);
        p.positive("cores_per_request", per_request.cpu_cores);
        if !p.is_empty() {
            return Err(p.iter().map(|x| x.to_string()).collect::<Vec<_>>().join("\n"));
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
            ledger: super::ledger::Ledger::new(self.instance_types.iter().map(|t| t.billing).collect()),
            alive: 0,
            max_alive: 0,
            inst_s_acc: 0.0,
            inst_since_s: 0.0,
            ready_servers: 0,
            ready_server_s_acc: 0.0,
            ready_since_s: 0.0,
            counters: FleetCounters::default(),
            delay_draws: seed.draws("provisioning"),
            failure_draws: seed.draws("failures"),
            recent_ready: std::collections::VecDeque::new(),
        })
    }
}
