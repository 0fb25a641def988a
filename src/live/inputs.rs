//! From the values Prometheus gives to the [`Observation`] the simulator gives, and back.
//!
//! [`observation`] is the one mapping live mode uses (replays too); [`inputs_of`] is its inverse for a
//! simulated tick, which `prescale run --record-live` writes as Prometheus data: replaying that data through
//! [`observation`] gives the controller the very observation it had in the run (tested bit for bit), which is
//! what makes a replay's decisions comparable with the run's.
//!
//! What live mode cannot see is stated, not invented: `recent_ready_s` is empty (the Kubernetes HPA's
//! readiness rules then treat every READY pod as ready for long), completions equal arrivals, and static
//! pools are taken as READY at their initial count.

use prescale_sim::cluster::ClusterConfig;
use prescale_sim::controller::Observation;

use super::config::ServeConfig;
use super::prom::{FetchError, Sample};

/// What the mapping needs to know of the setting.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Setting {
    /// Control interval, seconds.
    pub interval_s: f64,
    /// Servers (concurrent requests) per replica of the scaling type.
    pub servers_per_instance: u32,
    /// Servers of the static pools (other instance types at their initial count).
    pub static_ready_servers: u32,
    /// CPU cores a request holds.
    pub cores_per_request: f64,
    /// Mean service time, seconds.
    pub mean_service_s: f64,
}

impl Setting {
    /// The setting of a serve config (or of a scenario's cluster and service: the same fields).
    pub fn new(interval_s: f64, cluster: &ClusterConfig, service: &prescale_sim::scenario::ServiceSpec) -> Setting {
        let per = service.per_request();
        let st = cluster.scaling_index().expect("validated");
        Setting {
            interval_s,
            servers_per_instance: ClusterConfig::servers_per_instance(&cluster.instance_types[st], &per),
            static_ready_servers: cluster.static_servers(&per),
            cores_per_request: service.cores_per_request,
            mean_service_s: service.mean_service_s,
        }
    }

    /// The setting of a serve config.
    pub fn of(cfg: &ServeConfig) -> Setting {
        Setting::new(cfg.interval_s, &cfg.cluster, &cfg.service)
    }
}

/// One tick's inputs, checked (finite, not negative).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LiveInputs {
    /// Requests per second over the interval.
    pub request_rate_per_s: f64,
    /// READY replicas.
    pub ready_replicas: u32,
    /// Replicas ordered, not ready yet.
    pub pending_replicas: u32,
    /// Replicas terminating.
    pub draining_replicas: u32,
    /// CPU-seconds used over the interval.
    pub busy_cpu_seconds: Option<f64>,
    /// CPU cores usable on READY replicas.
    pub ready_capacity_cores: Option<f64>,
    /// Requests waiting.
    pub queue_length: Option<f64>,
    /// Fraction of requests slower than the SLO.
    pub slow_fraction: Option<f64>,
    /// Memory demand, GiB.
    pub memory_gib: Option<f64>,
    /// Network demand, Gbit/s.
    pub network_gbps: Option<f64>,
    /// Latency at the SLO's quantile, seconds.
    pub latency_s: Option<f64>,
}

impl LiveInputs {
    /// READY + pending replicas: what a recommendation is measured against.
    pub fn current_replicas(&self) -> u32 {
        self.ready_replicas + self.pending_replicas
    }
}

/// The observation a controller sees at `now_s` (seconds since the controller's clock origin).
pub fn observation(x: &LiveInputs, s: &Setting, now_s: f64) -> Observation {
    let group_servers = match x.ready_capacity_cores {
        Some(c) => (c / s.cores_per_request).round() as u32,
        None => x.ready_replicas * s.servers_per_instance,
    };
    let ready_servers = group_servers + s.static_ready_servers;
    let arrivals = (x.request_rate_per_s * s.interval_s).round() as u64;
    let busy_server_s = match x.busy_cpu_seconds {
        Some(c) => c / s.cores_per_request,
        None => (x.request_rate_per_s * s.mean_service_s).min(ready_servers as f64) * s.interval_s,
    };
    Observation {
        now_s,
        interval_s: s.interval_s,
        busy_server_s,
        ready_instances: x.ready_replicas,
        provisioning_instances: x.pending_replicas,
        draining_instances: x.draining_replicas,
        servers_per_instance: s.servers_per_instance,
        ready_servers,
        static_ready_servers: s.static_ready_servers,
        queue_len: x.queue_length.map_or(0, |q| q.round() as usize),
        arrivals_in_interval: arrivals,
        completions_in_interval: arrivals,
        slow_fraction: x.slow_fraction.unwrap_or(0.0),
        memory_demand_gib: x.memory_gib.unwrap_or(f64::NAN),
        network_demand_gbps: x.network_gbps.unwrap_or(f64::NAN),
        recent_ready_s: Vec::new(),
    }
}

/// The inputs that give back `obs` through [`observation`] (every field a controller reads but
/// `recent_ready_s` and `completions_in_interval`), and whether they give it back exactly: always when
/// `cores_per_request` is a power of two (1 in most scenarios); otherwise `busy_cpu_seconds` is searched a few
/// units in the last place around `busy_server_s · cores_per_request`, and `false` says none maps back onto it.
pub fn inputs_of(obs: &Observation, s: &Setting) -> (LiveInputs, bool) {
    let target = obs.busy_server_s;
    let back = |c: f64| c / s.cores_per_request;
    let v0 = target * s.cores_per_request;
    let mut busy = v0;
    let mut exact = back(v0) == target;
    let (mut up, mut down) = (v0, v0);
    for _ in 0..16 {
        if exact {
            break;
        }
        up = up.next_up();
        down = down.next_down();
        for c in [up, down] {
            if !exact && back(c) == target {
                busy = c;
                exact = true;
            }
        }
    }
    let group_servers = obs.ready_servers - obs.static_ready_servers.min(obs.ready_servers);
    let x = LiveInputs {
        request_rate_per_s: obs.arrivals_in_interval as f64 / s.interval_s,
        ready_replicas: obs.ready_instances,
        pending_replicas: obs.provisioning_instances,
        draining_replicas: obs.draining_instances,
        busy_cpu_seconds: Some(busy),
        ready_capacity_cores: Some(group_servers as f64 * s.cores_per_request),
        queue_length: Some(obs.queue_len as f64),
        slow_fraction: Some(obs.slow_fraction),
        memory_gib: obs.memory_demand_gib.is_finite().then_some(obs.memory_demand_gib),
        network_gbps: obs.network_demand_gbps.is_finite().then_some(obs.network_demand_gbps),
        latency_s: None,
    };
    (x, exact)
}

/// Why a tick could not decide.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FaultKind {
    /// Prometheus could not be reached.
    Unreachable,
    /// Prometheus answered with an error, or several series where one was expected.
    PrometheusError,
    /// An input had no value.
    Missing,
    /// An input's newest sample was older than `fail_safe.max_input_age_s`.
    Stale,
    /// An input was NaN, infinite, negative, above its bound, or a replica count not a whole number.
    Invalid,
    /// The controller failed (a model that answered a non-finite value, or a controller fault).
    Model,
}

impl FaultKind {
    /// Every kind, in order.
    pub const ALL: [FaultKind; 6] = [
        FaultKind::Unreachable,
        FaultKind::PrometheusError,
        FaultKind::Missing,
        FaultKind::Stale,
        FaultKind::Invalid,
        FaultKind::Model,
    ];

    /// The label in logs, CSV and `/metrics`.
    pub fn label(self) -> &'static str {
        match self {
            FaultKind::Unreachable => "unreachable",
            FaultKind::PrometheusError => "prometheus_error",
            FaultKind::Missing => "missing",
            FaultKind::Stale => "stale",
            FaultKind::Invalid => "invalid",
            FaultKind::Model => "model",
        }
    }
}

/// A failed tick: its kind and cause.
#[derive(Clone, Debug, PartialEq)]
pub struct Fault {
    /// The kind.
    pub kind: FaultKind,
    /// What happened, naming the input.
    pub message: String,
}

/// What the source gave for each configured input at a tick (input name, result).
pub type RawInputs = Vec<(&'static str, Result<Option<Sample>, FetchError>)>;

/// A tick's inputs, checked: the inputs or the first fault (in the configured order), the current replicas
/// when READY and pending replicas were read, and the oldest input's age, seconds.
#[derive(Clone, Debug, PartialEq)]
pub struct Checked {
    /// The inputs, or why not.
    pub inputs: Result<LiveInputs, Fault>,
    /// READY + pending replicas, if those inputs were good.
    pub current_replicas: Option<u32>,
    /// Age of the oldest input sample, seconds (NaN if none had a value).
    pub max_age_s: f64,
}

/// The most replicas a count input may say (READY, pending, draining): far above any real deployment, so that
/// an exporter's garbage (a wrapped unsigned integer, 1e10) is invalid input, not a fleet size.
pub const MAX_REPLICAS: f64 = 100_000.0;

/// The most any other input may say (cores, queue length, GiB, …); the request rate is bounded by the
/// scenarios' own limit ([`prescale_sim::scenario::MAX_RATE_PER_S`]).
pub const MAX_INPUT_VALUE: f64 = 1e12;

/// Why `value` of input `name` cannot be used, if it cannot: not finite, negative, above its bound, or a
/// replica count that is not a whole number.
fn invalid(name: &str, value: f64) -> Option<String> {
    let is_count = matches!(name, "ready_replicas" | "pending_replicas" | "draining_replicas");
    let bound = match name {
        _ if is_count => MAX_REPLICAS,
        "request_rate_per_s" => prescale_sim::scenario::MAX_RATE_PER_S,
        _ => MAX_INPUT_VALUE,
    };
    if !(value.is_finite() && value >= 0.0) {
        Some(format!("{name}: {value} is not a finite number >= 0"))
    } else if value > bound {
        Some(format!("{name}: {value} is above {bound}, the most live mode accepts"))
    } else if is_count && (value - value.round()).abs() > 1e-6 {
        Some(format!("{name}: {value} is not a whole number of replicas"))
    } else {
        None
    }
}

/// Checks what the source gave at `t_unix_s`: every input must have a finite, non-negative value within its
/// bound ([`MAX_REPLICAS`] and whole for replica counts, the scenarios' rate limit for the request rate,
/// [`MAX_INPUT_VALUE`] for the rest) no older than `max_age_s`.
pub fn check(raw: &RawInputs, t_unix_s: f64, max_age_s: f64) -> Checked {
    let mut x = LiveInputs::default();
    let mut first: Option<Fault> = None;
    let mut max_age = f64::NAN;
    let mut ready = None;
    let mut pending = Some(0);
    for (name, r) in raw {
        let value = match r {
            Err(e) => {
                let kind = match e {
                    FetchError::Unreachable(_) => FaultKind::Unreachable,
                    FetchError::Error(_) | FetchError::Ambiguous(_) => FaultKind::PrometheusError,
                };
                Err(Fault { kind, message: format!("{name}: {e}") })
            }
            Ok(None) => {
                Err(Fault { kind: FaultKind::Missing, message: format!("{name}: the query returned no value") })
            }
            Ok(Some(s)) => {
                let age = t_unix_s - s.sample_unix_s;
                max_age = if max_age.is_nan() { age } else { max_age.max(age) };
                if let Some(message) = invalid(name, s.value) {
                    Err(Fault { kind: FaultKind::Invalid, message })
                } else if age > max_age_s {
                    Err(Fault {
                        kind: FaultKind::Stale,
                        message: format!("{name}: newest sample is {age:.0} s old, more than {max_age_s} s"),
                    })
                } else {
                    Ok(s.value)
                }
            }
        };
        let v = match value {
            Ok(v) => v,
            Err(f) => {
                match *name {
                    "pending_replicas" => pending = None,
                    "ready_replicas" => ready = None,
                    _ => {}
                }
                first.get_or_insert(f);
                continue;
            }
        };
        let count = || v.round() as u32;
        match *name {
            "request_rate_per_s" => x.request_rate_per_s = v,
            "ready_replicas" => {
                x.ready_replicas = count();
                ready = Some(count());
            }
            "pending_replicas" => {
                x.pending_replicas = count();
                pending = Some(count());
            }
            "draining_replicas" => x.draining_replicas = count(),
            "busy_cpu_seconds" => x.busy_cpu_seconds = Some(v),
            "ready_capacity_cores" => x.ready_capacity_cores = Some(v),
            "queue_length" => x.queue_length = Some(v),
            "slow_fraction" => x.slow_fraction = Some(v.min(1.0)),
            "memory_gib" => x.memory_gib = Some(v),
            "network_gbps" => x.network_gbps = Some(v),
            "latency_s" => x.latency_s = Some(v),
            other => unreachable!("unknown input {other}"),
        }
    }
    let current_replicas = ready.zip(pending).map(|(r, p)| r + p);
    Checked { inputs: first.map_or(Ok(x), Err), current_replicas, max_age_s: max_age }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setting(cores_per_request: f64) -> Setting {
        Setting {
            interval_s: 60.0,
            servers_per_instance: 4,
            static_ready_servers: 8,
            cores_per_request,
            mean_service_s: 0.1,
        }
    }

    /// Observations as runs produce them, with awkward floats: `n` of them from a fixed generator.
    fn observations(n: usize) -> Vec<Observation> {
        let mut rng = 0x9e3779b97f4a7c15_u64;
        let mut next = move || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        (0..n)
            .map(|_| {
                let ready = 1 + (next() % 200) as u32;
                Observation {
                    now_s: 60.0 * (next() % 10_000) as f64,
                    interval_s: 60.0,
                    busy_server_s: (next() % 1_000_000) as f64 * 0.013_7 + (next() % 1000) as f64 / 7.0,
                    ready_instances: ready,
                    provisioning_instances: (next() % 20) as u32,
                    draining_instances: (next() % 3) as u32,
                    servers_per_instance: 4,
                    ready_servers: ready * 4 - (next() % 3) as u32 + 8,
                    static_ready_servers: 8,
                    queue_len: (next() % 500) as usize,
                    arrivals_in_interval: next() % 10_000_000,
                    completions_in_interval: 0,
                    slow_fraction: (next() % 1000) as f64 / 997.0,
                    memory_demand_gib: if next() % 2 == 0 { f64::NAN } else { (next() % 10_000) as f64 / 3.0 },
                    network_demand_gbps: if next() % 2 == 0 { f64::NAN } else { (next() % 1_000) as f64 / 7.0 },
                    recent_ready_s: Vec::new(),
                }
            })
            .collect()
    }

    /// Any observation a run can produce comes back field for field from the inputs recorded for it (the
    /// ground the replay parity stands on) when a request holds a power-of-two number of cores; with other
    /// sizes the few ticks without an exact preimage are flagged, and the others still come back exactly.
    #[test]
    fn recorded_inputs_give_the_observation_back_exactly() {
        for cpr in [1.0, 0.5, 2.0, 0.7, 0.3] {
            let s = setting(cpr);
            let mut inexact = 0;
            for obs in observations(20_000) {
                let (x, exact) = inputs_of(&obs, &s);
                inexact += !exact as u32;
                let back = observation(&x, &s, obs.now_s);
                let expect = Observation { completions_in_interval: back.completions_in_interval, ..obs.clone() };
                if exact {
                    assert_eq!(format!("{back:?}"), format!("{expect:?}"), "cores per request {cpr}");
                } else {
                    assert!((back.busy_server_s - obs.busy_server_s).abs() <= 4.0 * obs.busy_server_s * f64::EPSILON);
                }
            }
            if cpr == 1.0 || cpr == 0.5 || cpr == 2.0 {
                assert_eq!(inexact, 0, "cores per request {cpr}");
            } else {
                // Division by such a size skips about one double in seven: those ticks are flagged, the busy
                // time one unit in the last place off.
                assert!(inexact < 4_000, "cores per request {cpr}: {inexact} of 20,000 inexact");
            }
        }
    }

    /// Each kind of bad input is named as such, and the replicas are still read when they are good.
    #[test]
    fn bad_inputs_are_classified() {
        let ok = |v: f64| Ok(Some(Sample { value: v, sample_unix_s: 1000.0 }));
        let raw: RawInputs =
            vec![("request_rate_per_s", ok(10.0)), ("ready_replicas", ok(3.0)), ("pending_replicas", ok(1.0))];
        let c = check(&raw, 1010.0, 60.0);
        assert_eq!(c.inputs.as_ref().unwrap().request_rate_per_s, 10.0);
        assert_eq!(c.current_replicas, Some(4));
        assert_eq!(c.max_age_s, 10.0);
        let cases: [(Result<Option<Sample>, FetchError>, FaultKind); 5] = [
            (ok(f64::NAN), FaultKind::Invalid),
            (ok(-1.0), FaultKind::Invalid),
            (Ok(None), FaultKind::Missing),
            (Ok(Some(Sample { value: 5.0, sample_unix_s: 900.0 })), FaultKind::Stale),
            (Err(FetchError::Unreachable("refused".into())), FaultKind::Unreachable),
        ];
        for (bad, kind) in cases {
            let raw: RawInputs = vec![("request_rate_per_s", bad), ("ready_replicas", ok(3.0))];
            let c = check(&raw, 1010.0, 60.0);
            let f = c.inputs.unwrap_err();
            assert_eq!(f.kind, kind, "{}", f.message);
            assert!(f.message.starts_with("request_rate_per_s: "), "{}", f.message);
            assert_eq!(c.current_replicas, Some(3));
        }
    }

    /// Absurd counts and rates from a broken exporter are invalid input, never a fleet size: nothing is read as
    /// the current replicas then, so the fail-safe engages instead of scaling the service in.
    #[test]
    fn absurd_counts_and_rates_are_invalid_input() {
        let ok = |v: f64| Ok(Some(Sample { value: v, sample_unix_s: 1000.0 }));
        for (input, value, why) in [
            ("ready_replicas", 0.4, "is not a whole number of replicas"),
            ("ready_replicas", 4_294_967_295.0, "is above 100000"),
            ("ready_replicas", 1e10, "is above 100000"),
            ("pending_replicas", 1e300, "is above 100000"),
            ("draining_replicas", 2.5, "is not a whole number of replicas"),
            ("request_rate_per_s", 1e308, "is above"),
            ("ready_capacity_cores", 1e300, "is above 1000000000000"),
        ] {
            let mut raw: RawInputs =
                vec![("request_rate_per_s", ok(10.0)), ("ready_replicas", ok(3.0)), ("pending_replicas", ok(1.0))];
            match raw.iter_mut().find(|(n, _)| *n == input) {
                Some(entry) => entry.1 = ok(value),
                None => raw.push((input, ok(value))),
            }
            let c = check(&raw, 1010.0, 60.0);
            let f = c.inputs.unwrap_err();
            assert_eq!(f.kind, FaultKind::Invalid, "{input} {value}: {}", f.message);
            assert!(f.message.starts_with(&format!("{input}: ")) && f.message.contains(why), "{}", f.message);
            if input.ends_with("_replicas") && input != "draining_replicas" {
                assert_eq!(c.current_replicas, None, "{input} {value}: no current replicas from a bad count");
            }
        }
        // Whole numbers within the bound are read as they are.
        let raw: RawInputs = vec![("ready_replicas", ok(100_000.0)), ("pending_replicas", ok(0.0))];
        assert_eq!(check(&raw, 1010.0, 60.0).current_replicas, Some(100_000));
    }
}
