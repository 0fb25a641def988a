//! The reference workloads of the peers' REFERENCE_MODEL.md (version 1.0), on prescale's engine.
//!
//! `mmc-steady` (§3) and `autoscale-sine` (§4) are configurations of [`ServiceModel`] driven by the
//! reference SplitMix64 streams (§2), so that their results are bit-identical to SimPy, Ciw, nexosim and the
//! hand-written loop (level X). The check values of §3.5 and §4.9 are kept here ([`MMC_CHECKS`],
//! [`AUTOSCALE_CHECKS`]) for the conformance tests and the default demo.
//!
//! Wall time (`wall_s`) covers building the model, running it and computing the statistics, as §1 asks.

use std::time::Instant;

use serde::Serialize;

use crate::cluster::{ClusterConfig, Resources};
use crate::controller::{ReferenceHpa, Static};
use crate::rng::{RunSeed, SplitMix64};
use crate::service::{QueueDiscipline, ServiceConfig, ServiceModel};
use crate::workload::{ExpServiceTimes, PoissonArrivals, SineRate, ThinnedArrivals};

/// The engine name printed in results.
pub fn engine_name() -> String {
    format!("prescale {}", env!("CARGO_PKG_VERSION"))
}

/// Parameters of `mmc-steady` (§3.2).
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct MmcParams {
    /// Arrival rate λ, per second.
    pub lambda: f64,
    /// Service rate μ per server, per second.
    pub mu: f64,
    /// Servers.
    pub c: u32,
    /// Measurement window T, seconds.
    #[serde(rename = "T")]
    pub t: f64,
    /// Warm-up W, seconds (default T / 10).
    pub warmup: f64,
}

impl MmcParams {
    /// Parameter set A, B or C of §3.2 with its default T and W = T / 10.
    pub fn set(name: char) -> Option<MmcParams> {
        let (lambda, mu, c, t) = match name.to_ascii_uppercase() {
            'A' => (8.0, 1.0, 10, 20000.0),
            'B' => (95.0, 1.0, 100, 20000.0),
            'C' => (900.0, 10.0, 100, 2000.0),
            _ => return None,
        };
        Some(MmcParams { lambda, mu, c, t, warmup: t / 10.0 })
    }

    /// Offered load per server, ρ = λ / (c μ).
    pub fn rho(&self) -> f64 {
        self.lambda / (self.c as f64 * self.mu)
    }
}

/// Result of `mmc-steady` (§3.3), fields in the peers' order.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MmcResult {
    /// Always `"mmc-steady"`.
    pub scenario: &'static str,
    /// Parameters, flattened.
    #[serde(flatten)]
    pub params: MmcParams,
    /// Run seed.
    pub seed: u64,
    /// Customers arriving in `[W, W + T)`.
    pub customers: u64,
    /// Mean wait over those customers.
    pub mean_wait: f64,
    /// Fraction of them that waited.
    pub p_wait: f64,
    /// Mean sojourn.
    pub mean_sojourn: f64,
    /// Nearest-rank sojourn quantiles.
    pub p50_sojourn: f64,
    /// See `p50_sojourn`.
    pub p95_sojourn: f64,
    /// See `p50_sojourn`.
    pub p99_sojourn: f64,
    /// All arrivals, warm-up included.
    pub arrivals: u64,
    /// All departures.
    pub departures: u64,
    /// Canonical events: arrivals + departures.
    pub events: u64,
    /// Instant of the last departure.
    pub end_time: f64,
    /// `prescale <version>`.
    pub engine: String,
    /// Threads used by the run.
    pub threads: u32,
    /// Wall time of build + run + statistics.
    pub wall_s: f64,
    /// `events / wall_s`.
    pub events_per_s: f64,
}

/// Runs `mmc-steady` with `params` and `seed` (FIFO, as the reference prescribes).
pub fn run_mmc(params: MmcParams, seed: u64) -> MmcResult {
    run_mmc_with(params, seed, QueueDiscipline::Fifo)
}

/// Runs `mmc-steady` with another queue discipline (not part of the reference; for what-if and for showing
/// that the statistical tests detect a wrong discipline).
pub fn run_mmc_with(params: MmcParams, seed: u64, discipline: QueueDiscipline) -> MmcResult {
    let t0 = Instant::now();
    let end = params.warmup + params.t;
    let cfg = ServiceConfig {
        cluster: ClusterConfig::homogeneous(params.c, 1, 0.0, 1),
        per_request: Resources { cpu_cores: 1.0, ..Resources::default() },
        control_interval_s: None,
        horizon_s: None,
        discipline,
        record_from_s: params.warmup,
        record_until_s: end,
        memory_demand_gib: None,
        network_demand_gbps: None,
        step_stats_slo_s: None,
    };
    let arrivals = PoissonArrivals::new(SplitMix64::reference(seed, SplitMix64::ARRIVALS), params.lambda, end);
    let service = ExpServiceTimes::new(SplitMix64::reference(seed, SplitMix64::SERVICE), params.mu);
    let mut model = ServiceModel::new(cfg, arrivals, service, Box::new(Static::hold()), RunSeed(seed))
        .expect("mmc-steady parameters are validated by the caller");
    let expected = params.lambda * params.t;
    model.reserve_samples((expected + 6.0 * expected.sqrt() + 16.0) as usize);
    let rep = model.run();
    let wall_s = t0.elapsed().as_secs_f64();
    let events = rep.counters.arrivals + rep.counters.departures;
    MmcResult {
        scenario: "mmc-steady",
        params,
        seed,
        customers: rep.recorded,
        mean_wait: rep.mean_wait_s,
        p_wait: rep.p_wait,
        mean_sojourn: rep.mean_sojourn_s,
        p50_sojourn: rep.p50_sojourn_s,
        p95_sojourn: rep.p95_sojourn_s,
        p99_sojourn: rep.p99_sojourn_s,
        arrivals: rep.counters.arrivals,
        departures: rep.counters.departures,
        events,
        end_time: rep.last_departure_s,
        engine: engine_name(),
        threads: 1,
        wall_s,
        events_per_s: events as f64 / wall_s,
    }
}

/// Constants of `autoscale-sine` (§4); only the horizon is a CLI option of the reference.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct AutoscaleParams {
    /// Horizon H, seconds.
    pub horizon_s: f64,
    /// Mean arrival rate, per second.
    pub lambda_base: f64,
    /// Relative amplitude of the sine.
    pub lambda_amp: f64,
    /// Period of the sine, seconds.
    pub period_s: f64,
    /// Thinning bound LMAX.
    pub lambda_max: f64,
    /// Service rate per server (mean service 0.1 s).
    pub mu: f64,
    /// Servers per instance.
    pub servers_per_instance: u32,
    /// READY instances at time zero.
    pub initial_instances: u32,
    /// Controller interval, seconds.
    pub interval_s: f64,
    /// Provisioning delay, seconds.
    pub provisioning_delay_s: f64,
}

impl Default for AutoscaleParams {
    fn default() -> Self {
        AutoscaleParams {
            horizon_s: 7200.0,
            lambda_base: 1000.0,
            lambda_amp: 0.5,
            period_s: 3600.0,
            lambda_max: 1500.0,
            mu: 10.0,
            servers_per_instance: 4,
            initial_instances: 30,
            interval_s: 15.0,
            provisioning_delay_s: 60.0,
        }
    }
}

/// Result of `autoscale-sine` (§4.8), fields in the peers' order.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AutoscaleResult {
    /// Always `"autoscale-sine"`.
    pub scenario: &'static str,
    /// Run seed.
    pub seed: u64,
    /// Horizon H, seconds.
    pub horizon: f64,
    /// Requests completed before H.
    pub served: u64,
    /// Mean wait over served requests.
    pub mean_wait: f64,
    /// Mean sojourn over served requests.
    pub mean_sojourn: f64,
    /// Nearest-rank sojourn quantiles.
    pub p50_sojourn: f64,
    /// See `p50_sojourn`.
    pub p99_sojourn: f64,
    /// Cost: integral of live instances over `[0, H]`.
    pub instance_seconds: f64,
    /// Most live instances at once.
    pub max_instances: u32,
    /// Live instances at H.
    pub final_instances: u32,
    /// Instances ordered.
    pub launched: u64,
    /// PROVISIONING instances removed.
    pub cancelled: u64,
    /// READY instances switched to DRAINING.
    pub drained: u64,
    /// Arrivals before H.
    pub arrivals: u64,
    /// Departures before H (= served).
    pub departures: u64,
    /// Controller ticks.
    pub ticks: u64,
    /// PROVISIONING → READY changes.
    pub ready_events: u64,
    /// Canonical events.
    pub events: u64,
    /// `prescale <version>`.
    pub engine: String,
    /// Threads used by the run.
    pub threads: u32,
    /// Wall time of build + run + statistics.
    pub wall_s: f64,
    /// `events / wall_s`.
    pub events_per_s: f64,
}

/// Runs `autoscale-sine` with `seed`.
pub fn run_autoscale(params: AutoscaleParams, seed: u64) -> AutoscaleResult {
    let t0 = Instant::now();
    let h = params.horizon_s;
    let hpa = ReferenceHpa::reference();
    let cfg = ServiceConfig {
        cluster: ClusterConfig::homogeneous(
            params.servers_per_instance,
            params.initial_instances,
            params.provisioning_delay_s,
            hpa.max_instances,
        ),
        per_request: Resources { cpu_cores: 1.0, ..Resources::default() },
        control_interval_s: Some(params.interval_s),
        horizon_s: Some(h),
        discipline: QueueDiscipline::Fifo,
        record_from_s: 0.0,
        record_until_s: f64::INFINITY,
        memory_demand_gib: None,
        network_demand_gbps: None,
        step_stats_slo_s: None,
    };
    let curve = SineRate { base_per_s: params.lambda_base, amplitude: params.lambda_amp, period_s: params.period_s };
    let arrivals = ThinnedArrivals::new(SplitMix64::reference(seed, SplitMix64::ARRIVALS), curve, params.lambda_max, h);
    let service = ExpServiceTimes::new(SplitMix64::reference(seed, SplitMix64::SERVICE), params.mu);
    let mut model = ServiceModel::new(cfg, arrivals, service, Box::new(hpa), RunSeed(seed))
        .expect("autoscale-sine parameters are validated by the caller");
    let expected = params.lambda_base * h;
    model.reserve_samples((expected + 6.0 * expected.sqrt() + 16.0) as usize);
    let rep = model.run();
    let wall_s = t0.elapsed().as_secs_f64();
    let (c, f) = (rep.counters, rep.fleet);
    let events = rep.canonical_events();
    AutoscaleResult {
        scenario: "autoscale-sine",
        seed,
        horizon: h,
        served: c.departures,
        mean_wait: rep.mean_wait_s,
        mean_sojourn: rep.mean_sojourn_s,
        p50_sojourn: rep.p50_sojourn_s,
        p99_sojourn: rep.p99_sojourn_s,
        instance_seconds: rep.instance_seconds,
        max_instances: rep.max_instances,
        final_instances: rep.final_instances,
        launched: f.launched,
        cancelled: f.cancelled,
        drained: f.drained,
        arrivals: c.arrivals,
        departures: c.departures,
        ticks: c.ticks,
        ready_events: f.ready_events,
        events,
        engine: engine_name(),
        threads: 1,
        wall_s,
        events_per_s: events as f64 / wall_s,
    }
}

/// Check values of `mmc-steady` (§3.5), seed 1, default T and W.
#[derive(Clone, Copy, Debug)]
pub struct MmcCheck {
    /// Parameter set (A, B or C).
    pub set: char,
    /// Exact values.
    pub customers: u64,
    /// Exact.
    pub arrivals: u64,
    /// Exact.
    pub events: u64,
    /// Exact.
    pub p_wait: f64,
    /// Exact.
    pub p50_sojourn: f64,
    /// Exact.
    pub p95_sojourn: f64,
    /// Exact.
    pub p99_sojourn: f64,
    /// Exact.
    pub end_time: f64,
    /// Up to summation order (relative 1e-12).
    pub mean_wait: f64,
    /// Up to summation order (relative 1e-12).
    pub mean_sojourn: f64,
}

/// §3.5. The means are the hand-written loop's full-precision values (the table gives them rounded).
pub const MMC_CHECKS: [MmcCheck; 3] = [
    MmcCheck {
        set: 'A',
        customers: 159907,
        arrivals: 175891,
        events: 351782,
        p_wait: 0.40310930728485933,
        p50_sojourn: 0.9002744950666965,
        p95_sojourn: 3.336764447583846,
        p99_sojourn: 4.98092418223132,
        end_time: 22004.088835420185,
        mean_wait: 0.2006412857816526,
        mean_sojourn: 1.1973625088849302,
    },
    MmcCheck {
        set: 'B',
        customers: 1902242,
        arrivals: 2092021,
        events: 4184042,
        p_wait: 0.5203743792850752,
        p50_sojourn: 0.8198657998727867,
        p95_sojourn: 3.130166981049115,
        p99_sojourn: 4.7380115932101035,
        end_time: 22005.64856783433,
        mean_wait: 0.11121372954214931,
        mean_sojourn: 1.1118258138395838,
    },
    MmcCheck {
        set: 'C',
        customers: 1802031,
        arrivals: 1981866,
        events: 3963732,
        p_wait: 0.2250066730261577,
        p50_sojourn: 0.07190387831155931,
        p95_sojourn: 0.30218061577210165,
        p99_sojourn: 0.4633236491124535,
        end_time: 2200.396260313656,
        mean_wait: 0.0023230526200730033,
        mean_sojourn: 0.10241121637125045,
    },
];

/// Check values of `autoscale-sine` (§4.9), seed 1.
#[derive(Clone, Copy, Debug)]
pub struct AutoscaleCheck {
    /// Horizon H.
    pub horizon_s: f64,
    /// Exact.
    pub arrivals: u64,
    /// Exact.
    pub served: u64,
    /// Exact.
    pub ticks: u64,
    /// Exact.
    pub ready_events: u64,
    /// Exact.
    pub events: u64,
    /// Exact.
    pub p50_sojourn: f64,
    /// Exact.
    pub p99_sojourn: f64,
    /// Exact.
    pub instance_seconds: f64,
    /// Exact.
    pub max_instances: u32,
    /// Exact.
    pub final_instances: u32,
    /// Exact.
    pub launched: u64,
    /// Exact.
    pub cancelled: u64,
    /// Exact.
    pub drained: u64,
    /// Up to summation order.
    pub mean_sojourn: f64,
    /// Up to summation order.
    pub mean_wait: f64,
}

/// §4.9. Means: full-precision values printed by nexosim 1.0.0 for H = 7200 (the table's rounded values
/// for H = 900, which are given to 12–15 digits).
pub const AUTOSCALE_CHECKS: [AutoscaleCheck; 2] = [
    AutoscaleCheck {
        horizon_s: 7200.0,
        arrivals: 7198188,
        served: 7198077,
        ticks: 479,
        ready_events: 83,
        events: 14396827,
        p50_sojourn: 0.06928624223996849,
        p99_sojourn: 0.4609164999010318,
        instance_seconds: 299520.0,
        max_instances: 60,
        final_instances: 38,
        launched: 87,
        cancelled: 4,
        drained: 75,
        mean_sojourn: 0.10001769019014856,
        mean_wait: 4.281711370921784e-6,
    },
    AutoscaleCheck {
        horizon_s: 900.0,
        arrivals: 1187139,
        served: 1186992,
        ticks: 59,
        ready_events: 28,
        events: 2374218,
        p50_sojourn: 0.06938092362315729,
        p99_sojourn: 0.4606285593008579,
        instance_seconds: 47520.0,
        max_instances: 58,
        final_instances: 58,
        launched: 29,
        cancelled: 1,
        drained: 0,
        mean_sojourn: 0.100133058677527,
        mean_wait: 2.54374108571e-5,
    },
];

/// One compared metric of a conformance check.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CheckLine {
    /// Metric name.
    pub metric: &'static str,
    /// Value of this run.
    pub got: f64,
    /// Check value.
    pub want: f64,
    /// Whether the metric must match bit for bit (else: relative 1e-12, or 1e-10 for means that the
    /// reference gives rounded).
    pub exact: bool,
    /// Whether it matches.
    pub ok: bool,
}

fn line(metric: &'static str, got: f64, want: f64, tolerance: Option<f64>) -> CheckLine {
    let ok = match tolerance {
        None => got.to_bits() == want.to_bits(),
        Some(rel) => ((got - want) / want).abs() < rel,
    };
    CheckLine { metric, got, want, exact: tolerance.is_none(), ok }
}

impl MmcCheck {
    /// Compares a seed-1 run of this set with the check values.
    pub fn compare(&self, r: &MmcResult) -> Vec<CheckLine> {
        vec![
            line("customers", r.customers as f64, self.customers as f64, None),
            line("arrivals", r.arrivals as f64, self.arrivals as f64, None),
            line("events", r.events as f64, self.events as f64, None),
            line("p_wait", r.p_wait, self.p_wait, None),
            line("p50_sojourn", r.p50_sojourn, self.p50_sojourn, None),
            line("p95_sojourn", r.p95_sojourn, self.p95_sojourn, None),
            line("p99_sojourn", r.p99_sojourn, self.p99_sojourn, None),
            line("end_time", r.end_time, self.end_time, None),
            line("mean_wait", r.mean_wait, self.mean_wait, Some(1e-12)),
            line("mean_sojourn", r.mean_sojourn, self.mean_sojourn, Some(1e-12)),
        ]
    }
}

impl AutoscaleCheck {
    /// Compares a seed-1 run with this horizon with the check values.
    pub fn compare(&self, r: &AutoscaleResult) -> Vec<CheckLine> {
        let mean_rel = if self.horizon_s == 7200.0 { 1e-12 } else { 1e-10 };
        vec![
            line("arrivals", r.arrivals as f64, self.arrivals as f64, None),
            line("served", r.served as f64, self.served as f64, None),
            line("ticks", r.ticks as f64, self.ticks as f64, None),
            line("ready_events", r.ready_events as f64, self.ready_events as f64, None),
            line("events", r.events as f64, self.events as f64, None),
            line("p50_sojourn", r.p50_sojourn, self.p50_sojourn, None),
            line("p99_sojourn", r.p99_sojourn, self.p99_sojourn, None),
            line("instance_seconds", r.instance_seconds, self.instance_seconds, None),
            line("max_instances", r.max_instances as f64, self.max_instances as f64, None),
            line("final_instances", r.final_instances as f64, self.final_instances as f64, None),
            line("launched", r.launched as f64, self.launched as f64, None),
            line("cancelled", r.cancelled as f64, self.cancelled as f64, None),
            line("drained", r.drained as f64, self.drained as f64, None),
            line("mean_sojourn", r.mean_sojourn, self.mean_sojourn, Some(mean_rel)),
            line("mean_wait", r.mean_wait, self.mean_wait, Some(mean_rel)),
        ]
    }
}
