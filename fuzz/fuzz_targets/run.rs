//! Random valid worlds, run for a few steps in both fidelities (the structured target): every scenario the
//! generator writes goes through the real reader and validation; whatever validation accepts must run
//! without a panic and give numbers that are numbers (`RunOutput::first_non_finite`), a violating share in
//! [0, 1], non-negative cost, and requests that are conserved (arrived = completed + failed + waiting + in
//! service).
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
struct World {
    rate_per_s: u16,
    daily_amplitude: u8,
    flash: Option<(u8, u8, u8)>,
    step: u8,
    steps: u8,
    mean_service_ms: u16,
    memory_centi_gib: u8,
    cores: u8,
    memory_gib: u8,
    initial: u8,
    min: u8,
    max: u8,
    delay_s: u16,
    lognormal: bool,
    warmup_s: u16,
    price_cents: u16,
    failures: Option<(u16, u16)>,
    controller: u8,
    target_pct: u8,
    quantile: u8,
    threshold_ms: u16,
    seed: u64,
}

impl World {
    fn ron(&self, fidelity: &str) -> String {
        let step_s = [1.0, 10.0, 30.0, 60.0, 300.0][self.step as usize % 5];
        let horizon_s = step_s * (1 + self.steps % 48) as f64;
        let flash = self.flash.map_or(String::new(), |(at, hold, mult)| {
            format!(
                ", FlashCrowd(start_s: {}, ramp_s: {}, hold_s: {}, decay_s: {}, peak_multiplier: {})",
                at as f64 * step_s / 8.0,
                step_s,
                hold as f64 * step_s / 16.0,
                step_s * 2.0,
                1.0 + mult as f64 / 32.0
            )
        });
        let delay = if self.lognormal {
            format!("LogNormal(median_s: {}, sigma: 0.3)", 1 + self.delay_s % 900)
        } else {
            format!("Constant(s: {})", self.delay_s % 900)
        };
        let failures = self.failures.map_or(String::new(), |(mtbf, repl)| {
            format!(
                ", failures: (mean_time_between_failures_s: {}, replacement_delay_s: {})",
                60 + mtbf as u32 * 10,
                repl % 600
            )
        });
        let max = 1 + self.max % 64;
        let target = (5 + self.target_pct % 95) as f64 / 100.0;
        let controller = match self.controller % 7 {
            0 => "Static()".to_string(),
            1 => format!("ReferenceHpa(target_utilisation: {target}, min_instances: 1, max_instances: {max})"),
            2 => format!("Hpa(target_utilisation: {target}, max_replicas: {max})"),
            3 => format!("TargetTracking(target_utilisation: {target})"),
            4 => format!(
                "Predictive(predictor: LastValue, variance: AdaptiveConformal(alpha: 0.05, gamma: 0.005, window_s: 3600), allocator: (target_utilisation: {target}))"
            ),
            5 => format!(
                "Predictive(predictor: MovingAverage(window_s: {}), variance: KSigma(k: 2), allocator: (target_utilisation: {target}))",
                step_s * 4.0
            ),
            _ => format!("Predictive(predictor: Oracle, variance: Fixed(), allocator: (target_utilisation: {target}))"),
        };
        format!(
            r#"Scenario(
    name: "fuzz",
    seed: {seed},
    horizon_s: {horizon_s},
    step_s: {step_s},
    fidelity: {fidelity},
    workload: Synthetic(base_rate_per_s: {rate}, components: [Daily(amplitude: {amp}, peak_hour: 14.0){flash}]),
    service: (mean_service_s: {service}, cores_per_request: 1.0, memory_gib_per_request: {mem}),
    cluster: (
        instance_types: [(name: "m", capacity: (cpu_cores: {cores}, memory_gib: {memory_gib}), price_usd_per_hour: {price},
            provisioning_delay: {delay}, warmup_s: {warmup}, initial_count: {initial}, min_count: {min}, max_count: {max})],
        scaling_type: "m"{failures}
    ),
    slo: (latency_quantile: {quantile}, latency_threshold_s: {threshold}),
    controller: {controller},
)"#,
            seed = self.seed,
            rate = self.rate_per_s as f64 / 10.0,
            amp = (self.daily_amplitude % 100) as f64 / 100.0,
            service = (1 + self.mean_service_ms % 5000) as f64 / 1000.0,
            mem = self.memory_centi_gib as f64 / 100.0,
            cores = 1 + self.cores % 64,
            memory_gib = 1 + self.memory_gib as u32,
            price = self.price_cents as f64 / 100.0,
            warmup = self.warmup_s % 600,
            initial = self.initial % (max + 1),
            min = self.min % (max + 1),
            quantile = [0.5, 0.95, 0.99][self.quantile as usize % 3],
            threshold = (1 + self.threshold_ms % 10_000) as f64 / 1000.0,
        )
    }
}

fuzz_target!(|world: World| {
    for fidelity in ["Fluid", "RequestLevel"] {
        let text = world.ron(fidelity);
        let file = std::path::Path::new("fuzz.ron");
        let Ok(loaded) = prescale::files::scenario_io::load_scenario_text(file, &text) else { return };
        let Ok(prepared) = loaded.prepare(world.seed) else { return };
        // Request-level runs are kept small enough for many executions a second.
        if fidelity == "RequestLevel" && prepared.demand.expected_requests() > 20_000.0 {
            continue;
        }
        let out = prescale_sim::scenario::run(&prepared, world.seed, &mut |_| {});
        let s = &out.summary;
        assert_eq!(out.first_non_finite(), None, "{text}");
        assert!((0.0..=1.0 + 1e-9).contains(&s.slo_violation_request_fraction), "{text}\n{s:?}");
        assert!(s.cost_usd >= 0.0 && s.over_provisioning_core_hours >= 0.0, "{text}\n{s:?}");
        // Whatever arrived completed, failed, is waiting or is in service (at most one per server).
        // (One request per core, cores_per_request being 1; draining and replacement instances at most double
        // the fleet's largest size.)
        let servers = 2.0 * (1 + world.max % 64) as f64 * (1 + world.cores % 64) as f64;
        let gap = s.requests - s.completions - s.failed_requests - s.unfinished_requests;
        let tol = 1e-6 * s.requests.max(1.0);
        assert!(gap > -tol && gap <= servers + tol, "{text}\n{s:?}: {gap}");
        assert_eq!(out.rows.len(), prepared.demand.steps(), "{text}");
    }
});
