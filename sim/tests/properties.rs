//! Property tests of the engine's invariants (proptest): the clock never goes backwards, same-instant events
//! keep insertion order, requests are conserved at any stop, busy servers never exceed the capacity of their
//! instances, and the same seed gives identical results.

use prescale_sim::cluster::ClusterConfig;
use prescale_sim::controller::{ReferenceHpa, Static};
use prescale_sim::demand::PiecewiseArrivals;
use prescale_sim::queue::EventQueue;
use prescale_sim::rng::{RandDraws, RunSeed, StreamRng};
use prescale_sim::service::{QueueDiscipline, ServiceConfig, ServiceModel, ServiceReport};
use prescale_sim::workload::{ExpServiceTimes, SineRate, ThinnedArrivals};
use prescale_sim::{SimTime, Simulation};
use proptest::prelude::*;

type Model = ServiceModel<ThinnedArrivals<RandDraws<StreamRng>, SineRate>, ExpServiceTimes<RandDraws<StreamRng>>>;

#[derive(Clone, Debug)]
struct Case {
    seed: u64,
    servers_per_instance: u32,
    initial_instances: u32,
    base_rate_per_s: f64,
    amplitude: f64,
    period_s: f64,
    service_rate_per_s: f64,
    interval_s: f64,
    provisioning_delay_s: f64,
    target: f64,
    tolerance: f64,
    max_instances: u32,
    horizon_s: f64,
    lifo: bool,
    hpa: bool,
}

fn cases() -> impl Strategy<Value = Case> {
    (
        (any::<u64>(), 1u32..6, 0u32..6, 0.5f64..20.0, 0.0f64..0.95, 30.0f64..600.0, 0.2f64..5.0),
        (
            1.0f64..60.0,
            0.0f64..120.0,
            0.2f64..0.95,
            0.0f64..0.3,
            1u32..40,
            50.0f64..600.0,
            any::<bool>(),
            any::<bool>(),
        ),
    )
        .prop_map(|((seed, spi, n0, base, amp, period, mu), (iv, delay, target, tol, max, h, lifo, hpa))| Case {
            seed,
            servers_per_instance: spi,
            initial_instances: n0,
            base_rate_per_s: base,
            amplitude: amp,
            period_s: period,
            service_rate_per_s: mu,
            interval_s: iv,
            provisioning_delay_s: delay,
            target,
            tolerance: tol,
            max_instances: max,
            horizon_s: h,
            lifo,
            hpa,
        })
}

fn model(c: &Case) -> Model {
    let seed = RunSeed(c.seed);
    let cfg = ServiceConfig {
        cluster: ClusterConfig::homogeneous(c.servers_per_instance, c.initial_instances, c.provisioning_delay_s, 1000),
        per_request: prescale_sim::cluster::Resources { cpu_cores: 1.0, ..Default::default() },
        control_interval_s: Some(c.interval_s),
        horizon_s: Some(c.horizon_s),
        discipline: if c.lifo { QueueDiscipline::Lifo } else { QueueDiscipline::Fifo },
        record_from_s: 0.0,
        record_until_s: f64::INFINITY,
        memory_demand_gib: None,
        network_demand_gbps: None,
        step_stats_slo_s: None,
    };
    let curve = SineRate { base_per_s: c.base_rate_per_s, amplitude: c.amplitude, period_s: c.period_s };
    let max_rate = c.base_rate_per_s * (1.0 + c.amplitude);
    let arrivals = ThinnedArrivals::new(seed.draws("arrivals"), curve, max_rate, c.horizon_s);
    let service = ExpServiceTimes::new(seed.draws("service"), c.service_rate_per_s);
    let controller: Box<dyn prescale_sim::controller::Controller> = if c.hpa {
        Box::new(ReferenceHpa {
            target_utilisation: c.target,
            tolerance: c.tolerance,
            min_instances: 1,
            max_instances: c.max_instances,
        })
    } else {
        Box::new(Static::at(c.max_instances.min(8)))
    };
    ServiceModel::new(cfg, arrivals, service, controller, seed).expect("valid case")
}

/// Steps a case event by event, checking the invariants after each; returns the report.
fn stepped(c: &Case) -> Result<ServiceReport, TestCaseError> {
    let mut sim: Simulation<Model> = model(c).into_simulation();
    let end = SimTime::from_secs(c.horizon_s);
    let mut last = SimTime::ZERO;
    while sim.peek_time().is_some_and(|t| t < end) {
        let t = sim.step().expect("an event was pending");
        prop_assert!(t >= last, "time went backwards: {t:?} after {last:?}");
        last = t;
        if let Err(e) = sim.model().check_invariants() {
            return Err(TestCaseError::fail(format!("at {t:?}: {e}")));
        }
    }
    sim.run_until(end);
    prop_assert_eq!(sim.now(), end);
    Ok(sim.into_model().finish(c.horizon_s))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn invariants_hold_after_every_event(c in cases()) {
        let rep = stepped(&c)?;
        let (k, f) = (rep.counters, rep.fleet);
        prop_assert!(k.departures <= k.arrivals);
        prop_assert!(rep.instance_seconds >= 0.0);
        prop_assert!(rep.max_instances >= rep.final_instances);
        prop_assert!(f.launched >= f.cancelled + f.ready_events);
    }

    #[test]
    fn same_seed_same_bits_and_stepping_equals_running(c in cases()) {
        let a = format!("{:?}", model(&c).run());
        let b = format!("{:?}", model(&c).run());
        prop_assert_eq!(&a, &b);
        let s = format!("{:?}", stepped(&c)?);
        prop_assert_eq!(&a, &s);
    }

    #[test]
    fn queue_pops_in_time_then_insertion_order(ops in prop::collection::vec((0u8..8, any::<bool>()), 1..400)) {
        // Reference: a list kept sorted by (time, insertion number), popped from the front.
        let mut q = EventQueue::new();
        let mut reference: Vec<(u8, usize)> = Vec::new();
        let mut now = 0u8;
        for (i, (dt, pop)) in ops.into_iter().enumerate() {
            if pop {
                let got = q.pop();
                let want = if reference.is_empty() { None } else { Some(reference.remove(0)) };
                prop_assert_eq!(got.map(|(t, id): (SimTime, usize)| (t.as_secs() as u8, id)), want);
                if let Some((t, _)) = want { now = t; }
            } else {
                // Never schedule before the last popped instant, as the engine guarantees.
                let t = now.saturating_add(dt % 4);
                q.push(SimTime::from_secs(t as f64), i);
                let pos = reference.partition_point(|&(rt, _)| rt <= t);
                reference.insert(pos, (t, i));
            }
        }
    }
}

/// Mixed fleets with warm-up, termination delays, random provisioning delays, failures and memory pressure.
#[derive(Clone, Debug)]
struct FleetCase {
    seed: u64,
    types: Vec<(f64, u32, f64, f64, f64)>, // cores, initial, warm-up s, warm-up fraction, termination s
    scaling: usize,
    mtbf_s: f64,
    replacement_s: f64,
    rates: Vec<f64>,
    memory_gib: Option<Vec<f64>>,
    hpa: bool,
    mixes: Vec<Vec<u32>>,
    quota_extra_cores: Option<f64>,
}

/// A controller that orders a given sequence of instance mixes, one per tick (exercises `ScaleDecision::Mix`
/// on every type).
struct Mixes(Vec<Vec<u32>>, usize);

impl prescale_sim::controller::Controller for Mixes {
    fn name(&self) -> &str {
        "mixes"
    }
    fn decide(&mut self, _obs: &prescale_sim::controller::Observation) -> prescale_sim::controller::ScaleDecision {
        self.1 += 1;
        match self.0.get(self.1 - 1) {
            Some(m) => prescale_sim::controller::ScaleDecision::Mix { instances: m.clone() },
            None => prescale_sim::controller::ScaleDecision::Hold,
        }
    }
}

fn fleet_cases() -> impl Strategy<Value = FleetCase> {
    let ty = (1.0f64..9.0, 0u32..4, 0.0f64..60.0, 0.0f64..1.0, 0.0f64..40.0);
    (
        any::<u64>(),
        prop::collection::vec(ty, 1..3),
        any::<prop::sample::Index>(),
        20.0f64..2000.0,
        0.0f64..90.0,
        prop::collection::vec(0.0f64..40.0, 3..10),
        prop::option::of(prop::collection::vec(0.0f64..30.0, 10)),
        any::<bool>(),
        prop::collection::vec(prop::collection::vec(0u32..14, 2), 0..10),
        prop::option::of(0.0f64..30.0),
    )
        .prop_map(|(seed, types, idx, mtbf_s, replacement_s, rates, memory_gib, hpa, mixes, quota_extra_cores)| {
            FleetCase {
                seed,
                scaling: idx.index(types.len()),
                types,
                mtbf_s,
                replacement_s,
                rates,
                memory_gib,
                hpa,
                mixes,
                quota_extra_cores,
            }
        })
}

type FleetModel = ServiceModel<PiecewiseArrivals<RandDraws<StreamRng>>, ExpServiceTimes<RandDraws<StreamRng>>>;

fn fleet_model(c: &FleetCase) -> FleetModel {
    use prescale_sim::cluster::{Billing, Delay, Failures, InstanceTypeConfig, Resources};
    let step = 60.0;
    let instance_types: Vec<InstanceTypeConfig> = c
        .types
        .iter()
        .enumerate()
        .map(|(i, &(cores, initial, warmup_s, frac, term))| InstanceTypeConfig {
            name: format!("t{i}"),
            capacity: Resources { cpu_cores: cores.floor(), memory_gib: 4.0 * cores.floor(), ..Resources::default() },
            price_usd_per_hour: 0.1,
            // Per second, per minute and per hour (with and without a minimum), as clouds bill.
            billing: [
                Billing { granularity_s: 60.0, minimum_s: 60.0 },
                Billing { granularity_s: 1.0, minimum_s: 60.0 },
                Billing { granularity_s: 3600.0, minimum_s: 3600.0 },
                Billing { granularity_s: 1.0, minimum_s: 0.0 },
            ][(c.seed % 4) as usize],
            provisioning_delay: Delay::Uniform { min_s: 10.0, max_s: 90.0 },
            warmup_s,
            warmup_capacity_fraction: frac,
            termination_delay_s: term,
            initial_count: initial,
            min_count: 0,
            max_count: 12,
        })
        .collect();
    let initial_cores: f64 = instance_types.iter().map(|t| t.capacity.cpu_cores * t.initial_count as f64).sum();
    let cluster = ClusterConfig {
        scaling_type: format!("t{}", c.scaling),
        instance_types,
        quota: prescale_sim::cluster::Quota {
            cpu_cores: c.quota_extra_cores.map(|x| initial_cores + x),
            ..Default::default()
        },
        failures: Some(Failures { mean_time_between_failures_s: c.mtbf_s, replacement_delay_s: c.replacement_s }),
    };
    let horizon = step * c.rates.len() as f64;
    let cfg = ServiceConfig {
        cluster,
        per_request: Resources { cpu_cores: 1.0, ..Resources::default() },
        control_interval_s: Some(step),
        horizon_s: Some(horizon),
        discipline: QueueDiscipline::Fifo,
        record_from_s: 0.0,
        record_until_s: f64::INFINITY,
        memory_demand_gib: c.memory_gib.clone().map(|m| (step, m)),
        network_demand_gbps: None,
        step_stats_slo_s: Some(0.5),
    };
    let seed = RunSeed(c.seed);
    let arrivals = PiecewiseArrivals::new(seed.draws("arrivals"), c.rates.clone(), step);
    let service = ExpServiceTimes::new(seed.draws("service"), 1.0);
    let controller: Box<dyn prescale_sim::controller::Controller> = if !c.mixes.is_empty() {
        let n = c.types.len();
        Box::new(Mixes(c.mixes.iter().map(|m| m[..n.min(m.len())].to_vec()).collect(), 0))
    } else if c.hpa {
        Box::new(ReferenceHpa { target_utilisation: 0.6, tolerance: 0.1, min_instances: 0, max_instances: 12 })
    } else {
        Box::new(Static::at(3))
    };
    ServiceModel::new(cfg, arrivals, service, controller, seed).expect("valid case")
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn fleet_features_keep_the_invariants(c in fleet_cases()) {
        let horizon = SimTime::from_secs(60.0 * c.rates.len() as f64);
        let mut sim = fleet_model(&c).into_simulation();
        let mut last = SimTime::ZERO;
        while sim.peek_time().is_some_and(|t| t < horizon) {
            let t = sim.step().expect("pending");
            prop_assert!(t >= last);
            last = t;
            if let Err(e) = sim.model().check_invariants() {
                return Err(TestCaseError::fail(format!("at {t:?}: {e}")));
            }
            // The ledger's bill in constant time is the walk's, bit for bit (whole-second billing).
            let fleet = sim.model().fleet();
            let (fast, walk) = (fleet.cost_usd(t.as_secs()), fleet.cost_usd_by_walk(t.as_secs()));
            prop_assert_eq!(fast.to_bits(), walk.to_bits(), "at {:?}: ledger {} vs walk {}", t, fast, walk);
        }
        let rep = sim.into_model().finish(horizon.as_secs());
        let k = rep.counters;
        prop_assert!(k.departures + k.failed <= k.arrivals);
        prop_assert_eq!(rep.steps.len(), c.rates.len());
        let failed_in_steps: f64 = rep.steps.iter().map(|s| s.failed).sum();
        prop_assert_eq!(failed_in_steps, k.failed as f64);
        prop_assert!(rep.steps.windows(2).all(|w| w[0].cost_usd <= w[1].cost_usd + 1e-12), "cost never decreases");
        // Same seed, same bits.
        let again = fleet_model(&c).run();
        prop_assert_eq!(format!("{:?}", again), format!("{:?}", rep));
    }
}
