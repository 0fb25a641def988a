use super::*;

/// [`test_setting`] with a price of a violated minute.
fn setting(price_usd_per_min: Option<f64>) -> PolicySetting {
    PolicySetting { violation_price_usd_per_min: price_usd_per_min, ..test_setting() }
}

/// A steady 200 requests per second with one-step spikes to 1,500 every 7 steps.
fn spiky() -> Arc<Vec<f64>> {
    Arc::new((0..200).map(|k| if k % 7 == 3 { 1500.0 } else { 200.0 }).collect())
}

/// With a price, the expert orders the cheapest count up to the hard order: at a price of zero the least
/// the fleet may hold, as the price grows as few violated minutes as the hard order leaves (no more
/// instances), and a one-step spike is covered where leaving it short leaves a backlog that takes long to
/// drain, while a slight overload that only slows requests is left short when its minute is cheap.
#[test]
fn a_priced_expert_trades_instances_against_violated_minutes() {
    let hard = HindsightExpert::new(setting(None), spiky());
    let (h_lo, h_hi) = hard.s.horizons();
    assert_eq!((h_lo, h_hi), (2, 4));
    let minutes = |e: &HindsightExpert, k: usize, b: f64, n: u32| {
        let h = hard.label(k, b);
        let at = |price: f64| e.window_costs(k, b, h, price).find(|c| c.0 == n).unwrap().1;
        at(1.0) - at(0.0) // one minute per one-minute step at 1 USD per minute
    };
    let free = HindsightExpert::new(setting(Some(0.0)), spiky());
    let dear = HindsightExpert::new(setting(Some(1e6)), spiky());
    let priced = [0.001, 0.05].map(|price| (price, HindsightExpert::new(setting(Some(price)), spiky())));
    for k in 0..150 {
        for backlog in [0.0, 5_000.0, 200_000.0] {
            let h = hard.label(k, backlog);
            assert_eq!(free.label(k, backlog), 1);
            let n = dear.label(k, backlog);
            assert!(n <= h, "k {k}: {n} > hard {h}");
            let (got, least) = (minutes(&dear, k, backlog, n), minutes(&dear, k, backlog, h));
            assert!((got - least).abs() < 1e-9, "k {k}, backlog {backlog}: {got} min vs {least}");
            for (price, e) in &priced {
                let price = *price;
                let best = e.window_costs(k, backlog, h, price).map(|c| c.1).fold(f64::INFINITY, f64::min);
                let got = e.window_costs(k, backlog, h, price).find(|c| c.0 == e.label(k, backlog)).unwrap().1;
                assert_eq!(got, best);
            }
        }
    }
    // A spike of 1,500 requests per second left to the base fleet queues about 75,000 requests, which stay
    // queued through the spike's step, the rest of the window and the lead time of what is ordered next:
    // above the price at which those minutes cost what the spike's instances do, the expert serves the spike
    // (at most its one step slow: one violated minute); below it, it leaves the spike to the base fleet.
    let (base, spike) = (hard.n_min(200.0), hard.n_min(1500.0));
    assert!(spike > base + 20, "{base} {spike}");
    assert_eq!(hard.label(0, 0.0), spike);
    let short = minutes(&hard, 0, 0.0, base);
    assert!(short >= 1.0 + 1.0 + h_lo as f64, "{short} violated minutes");
    let even = (spike - base) as f64 * h_hi as f64 * 0.12 / 60.0 / short;
    let served = HindsightExpert::new(setting(Some(2.0 * even)), spiky()).label(0, 0.0);
    assert!(served > base && minutes(&hard, 0, 0.0, served) <= 1.0 + 1e-9, "{served}");
    assert_eq!(HindsightExpert::new(setting(Some(0.5 * even)), spiky()).label(0, 0.0), base);
    // A steady rate a little above what one instance fewer serves fast enough, but below what it serves at
    // all: one instance fewer only slows requests (no backlog), so a cheap minute leaves it short.
    let lambda = (1..200).map(|x| x as f64 * 5.0).find(|&r| {
        let n = hard.n_min(r);
        n > 2 && ((n - 1) * 4) as f64 * 10.0 > r * 1.02
    });
    let lambda = lambda.expect("a rate whose n_min - 1 is stable");
    let flat = |price| HindsightExpert::new(setting(price), Arc::new(vec![lambda; 50]));
    let need = hard.n_min(lambda);
    assert_eq!(flat(None).label(0, 0.0), need);
    assert!(flat(Some(0.0001)).label(0, 0.0) < need);
    assert_eq!(flat(Some(10.0)).label(0, 0.0), need);
}

/// The cost-to-go is the least cost of the rest of the run over every sequence of counts, by brute force on
/// a short run at four prices (the fluid backlog exact there, interpolated on the programme's grid; the
/// values kept in single precision), and never less than holding the minimum throughout.
#[test]
fn the_cost_to_go_is_the_least_cost_of_every_plan() {
    let rates = vec![150.0, 400.0, 600.0, 80.0, 450.0];
    for price in [0.0005, 0.003, 0.02, 1.0] {
        let s = PolicySetting { max_instances: 30, ..setting(Some(price)) };
        let e = HindsightExpert::new(s.clone(), Arc::new(rates.clone()));
        let v = e.cost_to_go().expect("priced");
        let cap = |n: u32| (n * s.servers_per_instance) as f64 / s.mean_service_s;
        let (hold, minute) = (s.instance_price_usd_per_hour / 60.0, price);
        // Every plan of counts 1..=30 over five steps: 30^5 is too many, so every count up to two above the
        // least that serves each step (`n_min`, at most 17 here) and the maximum.
        let choices: Vec<Vec<u32>> = rates.iter().map(|&r| (1..=e.n_min(r) + 2).chain([30]).collect()).collect();
        let mut best = f64::INFINITY;
        let mut plan = vec![0usize; rates.len()];
        'plans: loop {
            let (mut q, mut cost) = (0.0_f64, 0.0);
            for (k, &i) in plan.iter().enumerate() {
                let n = choices[k][i];
                q = (q + (rates[k] - cap(n)) * 60.0).max(0.0);
                let violated = n < e.n_min(rates[k]) || q > cap(n) * s.slo_threshold_s;
                cost += n as f64 * hold + if violated { minute } else { 0.0 };
            }
            best = best.min(cost);
            for k in 0..plan.len() {
                plan[k] += 1;
                if plan[k] < choices[k].len() {
                    continue 'plans;
                }
                plan[k] = 0;
            }
            break;
        }
        let dp = v.at(0, 0.0);
        // Measured: equal to single precision (0.0125, 0.025, 0.092 and 0.094 USD): the best plans clear the
        // backlog, whose grid point 0 is exact.
        assert!((dp - best).abs() <= 1e-6 * best, "price {price}: programme {dp} vs brute force {best}");
        assert!(dp >= rates.len() as f64 * hold - 1e-12);
        assert_eq!(v.at(rates.len(), 1e9), 0.0, "nothing counts after the run");
    }
}

/// `n_min` by bisection ([`instances_for_slo`]) gives what the walk count by count it replaced gave, bit for
/// bit, over rates from idle to beyond the largest count, with and without static pools and count limits.
#[test]
fn n_min_is_the_walk_it_replaced() {
    use prescale_sim::queueing::Latency;
    let walk = |s: &PolicySetting, lambda: f64| {
        let mu = 1.0 / s.mean_service_s;
        let lower = ((lambda / mu - s.static_servers as f64) / s.servers_per_instance as f64).floor().max(0.0);
        let mut n = (lower as u32).max(s.min_instances).min(s.max_instances);
        while n < s.max_instances {
            let c = n * s.servers_per_instance + s.static_servers;
            if c > 0
                && lambda < c as f64 * mu
                && (lambda <= 0.0 || Latency::mmc(lambda, mu, c).quantile(s.slo_quantile) <= s.slo_threshold_s)
            {
                break;
            }
            n += 1;
        }
        n
    };
    let mut checked = 0;
    for (spi, pools, min, max) in [(4, 0, 1, 200), (1, 0, 0, 50), (8, 13, 2, 120), (4, 40, 0, 10), (2, 0, 5, 5)] {
        for threshold_s in [0.5, 0.2, 0.4] {
            let s = PolicySetting {
                servers_per_instance: spi,
                static_servers: pools,
                min_instances: min,
                max_instances: max,
                slo_threshold_s: threshold_s,
                ..test_setting()
            };
            let e = HindsightExpert::new(s.clone(), Arc::new(vec![]));
            for lambda in (0..800).map(|i| i as f64 * 9.7).chain([f64::NAN, -1.0, 0.001, 1e7]) {
                assert_eq!(e.n_min(lambda), walk(&s, lambda), "{spi} {pools} {min} {max} {threshold_s}: λ {lambda}");
                checked += 1;
            }
        }
    }
    assert_eq!(checked, 5 * 3 * 804);
}

/// The critical ratio is `60 p / (60 p + c)` and absent where either price is zero or the SLO is hard.
#[test]
fn the_cost_ratio_weighs_a_short_step_against_an_idle_instance() {
    let tau = setting(Some(0.01)).cost_ratio().unwrap();
    assert!((tau - 0.6 / 0.72).abs() < 1e-12, "{tau}");
    assert_eq!(setting(None).cost_ratio(), None);
    assert_eq!(setting(Some(0.0)).cost_ratio(), None);
    let free = PolicySetting { instance_price_usd_per_hour: 0.0, ..setting(Some(0.01)) };
    assert_eq!(free.cost_ratio(), None);
}

/// A stated memory or network demand is a floor on the order: `⌈(demand − pools) / per instance⌉` of the
/// binding resource over the decision's horizons, with a price too; unstated (NaN) it is no floor.
#[test]
fn stated_memory_and_network_are_floors_on_the_order() {
    let resources = FleetResources {
        memory_gib_per_instance: 32.0,
        network_gbps_per_instance: 10.0,
        static_memory_gib: 640.0,
        static_network_gbps: 100.0,
    };
    assert_eq!(resources.instances_for(900.0, f64::NAN), 9, "(900 - 640) / 32 = 8.1");
    assert_eq!(resources.instances_for(900.0, 250.0), 15, "the network binds: (250 - 100) / 10");
    assert_eq!(resources.instances_for(100.0, 50.0), 0, "the pools hold both");
    assert_eq!(resources.instances_for(f64::NAN, f64::NAN), 0);
    assert_eq!(FleetResources::default().instances_for(900.0, 250.0), 0, "nothing per instance: not planned");

    // 40 requests/s (one 4-server instance) and a memory step to 1,600 GiB at step 30 (30 instances).
    let memory: Vec<f64> = (0..60).map(|k| if k >= 30 { 1600.0 } else { 300.0 }).collect();
    let with = |price| {
        let s = PolicySetting { resources, ..setting(price) };
        HindsightExpert::new(s, Arc::new(vec![40.0; 60])).with_demand(Some(&memory), None)
    };
    let (_, h_hi) = setting(None).horizons();
    for price in [None, Some(0.0), Some(1e6)] {
        let (e, plain) = (with(price), HindsightExpert::new(setting(price), Arc::new(vec![40.0; 60])));
        // Before the step comes within the horizons, the rate decides; from then on the memory does.
        assert_eq!(e.label(30 - h_hi - 1, 0.0), plain.label(30 - h_hi - 1, 0.0), "{price:?}");
        assert_eq!(e.label(30 - h_hi, 0.0), 30, "{price:?}");
        assert_eq!(e.label(45, 0.0), 30, "{price:?}");
    }
    assert_eq!(with(None).with_demand(None, None).label(45, 0.0), 30, "no demand named: unchanged");
}
