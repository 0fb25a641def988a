//! The predictive pipeline end to end: adaptive conformal coverage on a real trace, the reactive fallback,
//! validation of bad parameters, and the evidence table (`-- --nocapture` prints it).

use crate::common;

use ::prescale::files::scenario_io::load_scenario_text;
use common::{prescale, repo, shared_traces, text};
use prescale_sim::scenario::{self, RunSummary};

/// A scenario over `workload` with `controller`, 4-core instances provisioning in exactly 2 minutes, 10 of
/// them at the start.
fn scenario(name: &str, workload: &str, horizon: &str, controller: &str) -> String {
    scenario_from(name, workload, horizon, controller, 10)
}

fn scenario_from(name: &str, workload: &str, horizon: &str, controller: &str, initial: u32) -> String {
    format!(
        r#"Scenario(name: "{name}", {horizon} step_s: 60, fidelity: Fluid,
          workload: {workload},
          service: (mean_service_s: 0.1, cores_per_request: 1.0),
          cluster: (instance_types: [(name: "m5.xlarge", capacity: (cpu_cores: 4, memory_gib: 16), price_usd_per_hour: 0.192,
                    provisioning_delay: Constant(s: 120), warmup_s: 0, initial_count: {initial}, min_count: 1, max_count: 400)],
                    scaling_type: "m5.xlarge"),
          slo: (latency_quantile: 0.99, latency_threshold_s: 0.5),
          controller: {controller})"#
    )
}

fn run(text: &str) -> RunSummary {
    let l = load_scenario_text(&repo().join("scenarios/inline.ron"), text).unwrap_or_else(|d| panic!("{d:?}"));
    let p = l.prepare(1).unwrap_or_else(|d| panic!("{d:?}"));
    scenario::run(&p, 1, &mut |_| {}).summary
}

const ELB: &str = r#"Trace(path: "traces/nab_elb_request_count_8c0756.csv", metrics: [(column: "value", meaning: RequestsPerInterval)], amplitude_scale: 1000.0)"#;

/// Adaptive conformal inference reaches its nominal coverage (90 %) within ±2 % on a real trace.
#[test]
fn adaptive_conformal_coverage_on_a_real_trace() {
    for predictor in ["LastValue", "HoltWinters(period_s: 86400, fit: true)"] {
        let c = format!(
            "Predictive(predictor: {predictor}, variance: AdaptiveConformal(alpha: 0.1, gamma: 0.005, window_s: 86400), \
             allocator: (target_utilisation: 0.6))"
        );
        let s = run(&scenario("aci", ELB, "", &c));
        eprintln!("{predictor}: coverage {:.4}, forecast MAE {:.3} cores", s.coverage, s.forecast_mae_cores);
        assert!((s.coverage - 0.9).abs() <= 0.02, "{predictor}: coverage {}", s.coverage);
    }
}

/// A predictor facing too little history says so, and the allocator falls back to its reactive rule.
#[test]
fn short_history_falls_back_to_the_reactive_rule() {
    let c = "Predictive(predictor: SeasonalNaive(period_s: 86400), variance: Fixed(percent: 10), allocator: (target_utilisation: 0.6))";
    let s = run(&scenario(
        "fallback",
        "Synthetic(base_rate_per_s: 100.0, components: [Daily(amplitude: 0.5, peak_hour: 14)])",
        "horizon_s: 172800,",
        c,
    ));
    // One day of 1-minute steps before the first seasonal forecast (the first tick sees one step).
    assert_eq!(s.fallback_steps, 1439, "{s:?}");
    assert!(s.coverage > 0.5);
}

#[test]
fn bad_parameters_are_refused_at_validation_with_their_path() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "Predictive(predictor: LastValue, variance: AdaptiveConformal(alpha: 1.5), allocator: (target_utilisation: 0.6))",
            "controller.variance.alpha: must be in (0, 1), got 1.5",
        ),
        (
            "Predictive(predictor: LastValue, variance: Fixed(percent: -5), allocator: (target_utilisation: 0.6))",
            "controller.variance.percent: must be a finite number >= 0, got -5",
        ),
        (
            "Predictive(predictor: SeasonalNaive(period_s: 604800), variance: Fixed(percent: 5), allocator: (target_utilisation: 0.6))",
            "controller.predictor.period_s: needs 604800 s of history, but the run lasts 259200 s",
        ),
        (
            "Predictive(predictor: LastValue, variance: Fixed(percent: 5), allocator: (target_utilisation: 0.6, cost_cap_usd_per_hour: 0.1))",
            "controller.allocator.cost_cap_usd_per_hour: must be >= the price of the minimum fleet (0.1920 USD/h), got 0.1",
        ),
        (
            "Hpa(target_utilisation: 0.6, max_replicas: 10, behavior: (scale_down: (stabilization_window_s: -1, policies: [Pods(value: 0, period_s: 60)])))",
            "controller.behavior.scale_down.stabilization_window_s",
        ),
    ];
    for (controller, want) in cases {
        let f = dir.path().join("s.ron");
        std::fs::write(&f, scenario("bad", "Synthetic(base_rate_per_s: 10.0)", "horizon_s: 259200,", controller))
            .unwrap();
        let out = prescale(&["validate", f.to_str().unwrap()]);
        let (stdout, _) = text(&out);
        assert_eq!(out.status.code(), Some(1), "{controller}: {stdout}");
        assert!(stdout.contains(want), "'{want}' missing from: {stdout}");
    }
    // An unknown name lists the known ones.
    let f = dir.path().join("s.ron");
    std::fs::write(&f, scenario("bad", "Synthetic(base_rate_per_s: 10.0)", "horizon_s: 3600,", "Magic(power: 9)"))
        .unwrap();
    let (stdout, _) = text(&prescale(&["validate", f.to_str().unwrap()]));
    for known in ["Static", "ReferenceHpa", "Hpa", "TargetTracking", "StepScaling", "Predictive"] {
        assert!(stdout.contains(&format!("`{known}`")), "{known} missing from: {stdout}");
    }
}

/// The evidence of the pipeline issue: on the synthetic flash crowd and three real traces, with a 2-minute
/// provisioning delay, SLO-violation minutes, cost and over-provisioning of the reactive baselines, two
/// predictive pipelines and the oracle. The oracle must not be beaten on SLO minutes by more than one step.
#[test]
fn evidence_table() {
    let mut workloads: Vec<(String, String, String)> = vec![
        (
            "flash crowd (synthetic)".into(),
            "Synthetic(base_rate_per_s: 200.0, components: [Daily(amplitude: 0.2, peak_hour: 14.0), FlashCrowd(start_s: 172800, ramp_s: 300, hold_s: 1200, decay_s: 1800, peak_multiplier: 4.0), Noise(sd: 0.05, correlation_s: 300)])".into(),
            "horizon_s: 259200,".into(),
        ),
        ("NAB ELB requests (x1000)".into(), ELB.into(), String::new()),
    ];
    if let Some(dir) = shared_traces() {
        let d = dir.display();
        workloads.push((
            "NASA HTTP Jul95 req/min (x100)".into(),
            format!(r#"Trace(path: "{d}/nasa_http_jul95_requests_1min.csv", metrics: [(column: "value", meaning: RequestsPerInterval)], amplitude_scale: 100.0)"#),
            String::new(),
        ));
        workloads.push((
            "Google 2019 avg CPU (x200 cores)".into(),
            format!(r#"Trace(path: "{d}/google2019_cluster_instance_usage_300s.csv", metrics: [(column: "avg_cpu", meaning: Utilisation(resource: Cpu, percent: false, reference_capacity: 200.0))], policies: (gaps: Interpolate))"#),
            String::new(),
        ));
    }
    let controllers = [
        ("Kubernetes HPA", "Hpa(target_utilisation: 0.6, max_replicas: 400)".to_string()),
        ("target tracking", "TargetTracking(target_utilisation: 0.6, max_instances: 400)".to_string()),
        ("static (mean at 60 %)", String::new()),
        ("Holt-Winters + conformal", "Predictive(predictor: HoltWinters(period_s: 86400, fit: true), variance: AdaptiveConformal(alpha: 0.05), allocator: (target_utilisation: 0.6))".to_string()),
        ("seasonal naive + 20 %", "Predictive(predictor: SeasonalNaive(period_s: 86400), variance: Fixed(percent: 20), allocator: (target_utilisation: 0.6))".to_string()),
        ("oracle", "Predictive(predictor: Oracle, variance: Fixed(percent: 0), allocator: (target_utilisation: 0.6))".to_string()),
    ];
    eprintln!(
        "| workload | controller | SLO-violation min | slow+failed % | cost USD | over-prov core-h | under-prov core-h |"
    );
    eprintln!("|---|---|---|---|---|---|---|");
    for (wname, workload, horizon) in &workloads {
        // The static fleet, and every controller's starting fleet: the mean offered load at 60 % utilisation.
        let probe = run(&scenario("probe", workload, horizon, "Static()"));
        let mean_cores = probe.requests / probe.horizon_s * 0.1;
        let static_n = ((mean_cores / 0.6) / 4.0).ceil() as u32;
        let mut oracle_min = f64::NAN;
        let mut others = Vec::new();
        for (cname, c) in &controllers {
            let c = if c.is_empty() { format!("Static(instances: {static_n})") } else { c.clone() };
            let s = run(&scenario_from("evidence", workload, horizon, &c, static_n));
            eprintln!(
                "| {wname} | {cname} | {:.0} | {:.3} | {:.1} | {:.0} | {:.1} |",
                s.slo_violation_minutes,
                100.0 * s.slo_violation_request_fraction,
                s.cost_usd,
                s.over_provisioning_core_hours,
                s.under_provisioning_core_hours
            );
            if *cname == "oracle" {
                oracle_min = s.slo_violation_minutes;
            } else {
                others.push(s.slo_violation_minutes);
            }
        }
        let best_other = others.iter().copied().fold(f64::INFINITY, f64::min);
        assert!(oracle_min <= best_other + 1.0, "{wname}: the oracle ({oracle_min} min) lost to {best_other} min");
    }
}

/// A workload that states its memory demand (a trace's memory column): the predictive pipeline forecasts
/// it as a second signal and provisions for it; a CPU-only controller does not, and requests fail for lack
/// of memory.
#[test]
fn explicit_memory_demand_is_forecast_and_covered() {
    let dir = tempfile::tempdir().unwrap();
    // Two days of 5-minute rows: CPU flat at 20 % of 200 cores; memory swings daily between 100 and 700 GiB.
    let mut csv = String::from("timestamp,cpu,mem\n");
    for i in 0..576 {
        let t = i * 300;
        let mem = 400.0 + 300.0 * (2.0 * std::f64::consts::PI * t as f64 / 86400.0).sin();
        csv.push_str(&format!("{t},20,{mem}\n"));
    }
    std::fs::write(dir.path().join("mem.csv"), csv).unwrap();
    let workload = format!(
        r#"Trace(path: "{}", metrics: [(column: "cpu", meaning: Utilisation(resource: Cpu, percent: true, reference_capacity: 200.0)),
             (column: "mem", meaning: Utilisation(resource: Memory, percent: false, reference_capacity: 1.0))])"#,
        dir.path().join("mem.csv").display()
    );
    let hpa = run(&scenario("mem", &workload, "", "Hpa(target_utilisation: 0.6, max_replicas: 400)"));
    let pred = run(&scenario(
        "mem",
        &workload,
        "",
        "Predictive(predictor: LastValue, variance: AdaptiveConformal(alpha: 0.05), allocator: (target_utilisation: 0.8))",
    ));
    let oracle = run(&scenario(
        "mem",
        &workload,
        "",
        "Predictive(predictor: Oracle, variance: Fixed(), allocator: (target_utilisation: 0.9))",
    ));
    eprintln!(
        "failed requests: HPA {:.0}, predictive {:.0}, oracle {:.0}",
        hpa.failed_requests, pred.failed_requests, oracle.failed_requests
    );
    assert!(hpa.failed_requests > 0.01 * hpa.requests, "{hpa:?}");
    assert!(pred.failed_requests < 0.01 * hpa.failed_requests, "{pred:?}");
    // Only the start fails: 10 instances hold 160 GiB against 400 GiB wanted until the first order is ready.
    assert!(oracle.failed_requests < 1e-3 * oracle.requests, "{oracle:?}");
}

/// A workload that states its network demand (a trace's network column): a request that finds the READY
/// bandwidth short fails with probability `1 − capacity / demand`, in both fidelities alike; the predictive
/// pipeline forecasts the bandwidth as its own signal and covers it (a CPU-only HPA does not), and with
/// `network: FromRate` it plans as a rate-only agent and fails as the HPA does.
#[test]
fn explicit_network_demand_is_forecast_and_covered() {
    let dir = tempfile::tempdir().unwrap();
    // Two days of 5-minute rows: CPU flat at 20 % of 200 cores; bandwidth swings daily between 100 and 700
    // Gbit/s, on 10-Gbit/s instances.
    let mut csv = String::from("timestamp,cpu,net\n");
    for i in 0..576 {
        let t = i * 300;
        let net = 400.0 + 300.0 * (2.0 * std::f64::consts::PI * t as f64 / 86400.0).sin();
        csv.push_str(&format!("{t},20,{net}\n"));
    }
    std::fs::write(dir.path().join("net.csv"), csv).unwrap();
    let workload = format!(
        r#"Trace(path: "{}", metrics: [(column: "cpu", meaning: Utilisation(resource: Cpu, percent: true, reference_capacity: 200.0)),
             (column: "net", meaning: Utilisation(resource: Network, percent: false, reference_capacity: 1.0))])"#,
        dir.path().join("net.csv").display()
    );
    let with_bandwidth = |text: String| text.replace("memory_gib: 16)", "memory_gib: 16, network_gbps: 10)");
    let predictive = |extra: &str| {
        format!(
            "Predictive(predictor: LastValue, variance: AdaptiveConformal(alpha: 0.05), allocator: (target_utilisation: \
             0.8){extra})"
        )
    };
    let hpa = run(&with_bandwidth(scenario("net", &workload, "", "Hpa(target_utilisation: 0.6, max_replicas: 400)")));
    let pred = run(&with_bandwidth(scenario("net", &workload, "", &predictive(""))));
    let rate_only = run(&with_bandwidth(scenario("net", &workload, "", &predictive(", network: FromRate"))));
    eprintln!(
        "failed requests: HPA {:.0}, predictive {:.0}, predictive rate-only {:.0}",
        hpa.failed_requests, pred.failed_requests, rate_only.failed_requests
    );
    assert!(hpa.failed_requests > 0.3 * hpa.requests, "{hpa:?}");
    assert!(rate_only.failed_requests > 0.3 * rate_only.requests, "{rate_only:?}");
    assert!(pred.failed_requests < 0.01 * hpa.failed_requests, "{pred:?}");

    // The first hour with 10 static instances (100 Gbit/s) against 400–478 Gbit/s: the share failing is
    // 1 − 100 / demand per step, the same in the fluid model and (within sampling error) request by request.
    let static_hour = |fidelity: &str| {
        let text = with_bandwidth(scenario("net", &workload, "horizon_s: 3600,", "Static()"))
            .replace("fidelity: Fluid", &format!("fidelity: {fidelity}"));
        run(&text)
    };
    let expected: f64 = (0..12)
        .map(|i| {
            let net = 400.0 + 300.0 * (2.0 * std::f64::consts::PI * (i * 300) as f64 / 86400.0).sin();
            1.0 - 100.0 / net
        })
        .sum::<f64>()
        / 12.0;
    for fidelity in ["Fluid", "RequestLevel"] {
        let s = static_hour(fidelity);
        let share = s.failed_requests / s.requests;
        eprintln!("{fidelity}: failed share {share:.4}, expected about {expected:.4}");
        assert!((share - expected).abs() < 0.02, "{fidelity}: failed share {share}, expected about {expected}");
    }
}

/// Shadow (forecast-only) mode: an oracle shadowing the HPA-style rule on the flash crowd would have prevented
/// every violated minute and caused none, at about the cost the oracle really has when it acts; a controller
/// shadowing itself prevents and causes nothing.
#[test]
fn shadow_mode_answers_would_it_have_helped() {
    let base = std::fs::read_to_string(repo().join("scenarios/flash-crowd.ron")).unwrap();
    let acting =
        "    controller: ReferenceHpa(target_utilisation: 0.6, tolerance: 0.1, min_instances: 2, max_instances: 80),";
    assert!(base.contains(acting));
    let oracle = "Predictive(predictor: Oracle, variance: Fixed(), allocator: (target_utilisation: 0.6))";
    let shadowed = base.replace(acting, &format!("{acting}\n    shadow: {oracle},"));
    let s = run(&shadowed);
    let sh = s.shadow.clone().expect("a shadow summary");
    eprintln!("acting: {} min, {:.2} USD; shadow: {sh:?}", s.slo_violation_minutes, s.cost_usd);
    assert!(s.slo_violation_minutes > 0.0);
    assert_eq!(sh.prevented_minutes, s.slo_violation_minutes);
    assert_eq!(sh.caused_minutes, 0.0);
    assert_eq!(sh.slo_violation_minutes, 0.0);
    let real = run(&base.replace(acting, &format!("    controller: {oracle},")));
    assert!(
        (sh.cost_usd - real.cost_usd).abs() < 0.05 * real.cost_usd,
        "shadow {} vs acting oracle {}",
        sh.cost_usd,
        real.cost_usd
    );
    // Shadowing itself: same decisions, so differences are the shadow estimate's own error. It ignores the
    // backlog carried between steps and warm-up, so it is optimistic during an overload: measured, it counts 6
    // of the 9 violated minutes (3 "prevented"), and never a caused one.
    let itself = base.replace(acting, &format!("{acting}\n    shadow: ReferenceHpa(target_utilisation: 0.6, tolerance: 0.1, min_instances: 2, max_instances: 80),"));
    let s = run(&itself);
    let sh = s.shadow.unwrap();
    eprintln!("self-shadow: {sh:?}");
    assert_eq!(sh.caused_minutes, 0.0, "{sh:?}");
    assert!(sh.prevented_minutes <= s.slo_violation_minutes / 3.0, "{sh:?}");
    assert!((sh.cost_usd - s.cost_usd).abs() < 0.1 * s.cost_usd, "{sh:?} vs {}", s.cost_usd);
}

/// A slice of a real trace with a warm history: the run starts `history_s` before the slice and the summary
/// scores only the slice — the same requests as a run of the slice alone — with the history reported apart;
/// a predictor that needs a day of history decides from the first scored step, where the cold run falls
/// back to the reactive rule for a day. A history reaching before the trace is refused naming `history_s`.
#[test]
fn a_trace_slice_with_a_warm_history() {
    let sliced = |from: f64| format!("{}, slice: Fraction(from: {from}, to: 1.0))", &ELB[..ELB.len() - 1]);
    let c = "Predictive(predictor: SeasonalNaive(period_s: 86400), variance: Fixed(percent: 10), \
             allocator: (target_utilisation: 0.6))";
    let cold = run(&scenario("cold", &sliced(0.7), "", c));
    let warm = run(&scenario("warm", &sliced(0.7), "history_s: 86400,", c));
    assert_eq!(cold.scored_from_s, 0.0);
    assert!(cold.history.is_none());
    assert_eq!(warm.scored_from_s, 86400.0);
    assert_eq!(warm.horizon_s, cold.horizon_s + 86400.0);
    let h = warm.history.expect("the history's own figures");
    assert!(h.cost_usd > 0.0, "{h:?}");
    assert!((warm.requests - cold.requests).abs() <= 1e-9 * cold.requests, "{} vs {}", warm.requests, cold.requests);
    assert!(cold.fallback_steps >= 1439, "cold start: {} fallback steps", cold.fallback_steps);
    assert_eq!(warm.fallback_steps, 0, "a day of history before the slice");
    // The scored cost is the bill after the history: with it, the whole run's bill.
    let whole = run(&scenario("whole", &sliced(0.7), "history_s: 86400,", "Static(instances: 20)"));
    let h = whole.history.unwrap();
    let instance_h = 20.0 * (whole.horizon_s - whole.scored_from_s) / 3600.0;
    assert!((whole.instance_hours - instance_h).abs() < 1e-6, "{} vs {instance_h}", whole.instance_hours);
    assert!((whole.cost_usd - 0.192 * instance_h).abs() < 1e-6, "{}", whole.cost_usd);
    // The history: 10 instances from the start, 10 more ordered at the first tick (t = 60 s) and billed from then.
    assert!((h.cost_usd - 0.192 * (20.0 * 24.0 - 10.0 / 60.0)).abs() < 1e-6, "{}", h.cost_usd);
    // Not enough trace before the slice.
    let l = load_scenario_text(
        &repo().join("scenarios/inline.ron"),
        &scenario("early", &sliced(0.0), "history_s: 86400,", c),
    )
    .unwrap();
    let Err(err) = l.prepare(1) else { panic!("a history before the trace was accepted") };
    let text = format!("{err:?}");
    assert!(text.contains("history_s") && text.contains("before the slice"), "{text}");
}

/// The scored period cut into time blocks: one per whole day of a long test slice (the last taking the
/// remainder), each by the summary's own definitions, so that the blocks add up to the scored totals; the
/// warm history is in none of them; a short run has four equal blocks.
#[test]
fn time_blocks_add_up_to_the_scored_period() {
    let sliced = format!("{}, slice: Fraction(from: 0.7, to: 1.0))", &ELB[..ELB.len() - 1]);
    let c = "Hpa(target_utilisation: 0.6, max_replicas: 150)";
    let s = run(&scenario("blocks", &sliced, "history_s: 86400,", c));
    let scored_days = (s.horizon_s - s.scored_from_s) / 86400.0;
    assert_eq!(s.blocks.len(), scored_days.floor() as usize, "{scored_days} days scored");
    let mut total = prescale_sim::metrics::PeriodMetrics::default();
    for b in &s.blocks {
        total.add(b);
    }
    let close = |a: f64, b: f64| (a - b).abs() <= 1e-9 * b.abs().max(1.0);
    assert!(close(total.slo_violation_minutes, s.slo_violation_minutes), "{total:?} vs {}", s.slo_violation_minutes);
    assert!(close(total.cost_usd, s.cost_usd), "{} vs {}", total.cost_usd, s.cost_usd);
    assert!(close(total.over_provisioning_core_hours, s.over_provisioning_core_hours));
    assert!(close(total.under_provisioning_core_hours, s.under_provisioning_core_hours));
    // Blocks differ: they are windows of the test period, not copies.
    assert!(s.blocks.windows(2).any(|w| w[0] != w[1]));
    let blocks = prescale_sim::metrics::score_blocks(100, 60.0);
    assert_eq!(blocks, vec![0..25, 25..50, 50..75, 75..100]);
    assert_eq!(prescale_sim::metrics::score_blocks(3 * 1440 + 7, 60.0).last(), Some(&(2880..4327)));
    assert!(prescale_sim::metrics::score_blocks(7, 60.0).is_empty());
}
