//! Property tests of the engine's invariants (proptest): the clock never goes backwards, same-instant events
//! keep insertion order, requests are conserved at any stop, busy servers never exceed the capacity of their
//! instances, and the same seed gives identical results.

use prescale_sim::cluster::ClusterConfig;
use prescale_sim::controller::{ReferenceHpa, Static};
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
