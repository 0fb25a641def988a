//! Fluid vs request-level: the two fidelities agree within stated bounds on mid-sized cases, and where
//! they do not (transients after sudden changes) the test says by how much. `cargo test --release --test
//! fidelity -- --nocapture` prints the figures.

use ::prescale::files::scenario_io::load_scenario_text;
use prescale_sim::scenario::{self, RunOutput};

fn scenario(fidelity: &str, workload: &str, horizon_s: u32, controller: &str, initial: u32) -> String {
    format!(
        r#"Scenario(name: "fidelity", horizon_s: {horizon_s}, step_s: 60, fidelity: {fidelity},
          workload: {workload},
          service: (mean_service_s: 0.1),
          cluster: (instance_types: [(name: "m", capacity: (cpu_cores: 4, memory_gib: 16), price_usd_per_hour: 0.2,
                    billing: (granularity_s: 1, minimum_s: 0), provisioning_delay: Constant(s: 60),
                    initial_count: {initial}, max_count: 100)], scaling_type: "m"),
          slo: (latency_quantile: 0.99, latency_threshold_s: 0.6),
          controller: {controller})"#
    )
}

fn run(text: &str) -> RunOutput {
    let l = load_scenario_text(std::path::Path::new("fidelity.ron"), text).unwrap_or_else(|d| panic!("{d:?}"));
    let p = l.prepare(3).unwrap();
    scenario::run(&p, 3, &mut |_| {})
}

fn both(workload: &str, horizon_s: u32, controller: &str, initial: u32) -> (RunOutput, RunOutput) {
    (
        run(&scenario("Fluid", workload, horizon_s, controller, initial)),
        run(&scenario("RequestLevel", workload, horizon_s, controller, initial)),
    )
}

/// The figures the README quotes, printed with `-- --nocapture`.
fn show(case: &str, f: &RunOutput, r: &RunOutput) {
    for (name, o) in [("fluid", f), ("request-level", r)] {
        let s = &o.summary;
        eprintln!(
            "{case:>12} {name:>13}: p50 {:.4} s, p99 {:.4} s, slow+failed {:.4} %, violated {} min, cost {:.3} USD, \
             utilisation {:.3}, actions {}",
            s.latency_p50_s,
            s.latency_p99_s,
            100.0 * s.slo_violation_request_fraction,
            s.slo_violation_minutes,
            s.cost_usd,
            s.mean_utilisation,
            s.scaling_actions
        );
    }
}

fn rel(a: f64, b: f64) -> f64 {
    (a - b).abs() / b.abs()
}

fn mean_step(out: &RunOutput, f: impl Fn(&scenario::MetricsRow) -> f64) -> f64 {
    let xs: Vec<f64> = out.rows.iter().map(f).filter(|x| x.is_finite()).collect();
    xs.iter().sum::<f64>() / xs.len() as f64
}

/// Steady M/M/40 at ρ = 0.75 for two hours, static fleet: fluid is exact theory, request-level samples it.
#[test]
fn steady_static_agrees_closely() {
    let (f, r) = both("Synthetic(base_rate_per_s: 300.0)", 7200, "Static()", 10);
    let (fs, rs) = (&f.summary, &r.summary);
    show("steady", &f, &r);
    assert_eq!(fs.cost_usd, rs.cost_usd, "same fleet, same bill");
    assert!(rel(fs.latency_p50_s, rs.latency_p50_s) < 0.02, "p50 {} vs {}", fs.latency_p50_s, rs.latency_p50_s);
    assert!(rel(fs.latency_p99_s, rs.latency_p99_s) < 0.02, "p99 {} vs {}", fs.latency_p99_s, rs.latency_p99_s);
    assert!((fs.mean_utilisation - rs.mean_utilisation).abs() < 0.01);
    assert!((fs.slo_violation_request_fraction - rs.slo_violation_request_fraction).abs() < 0.003);
    let (fp99, rp99) = (mean_step(&f, |x| x.latency_p99_s), mean_step(&r, |x| x.latency_p99_s));
    assert!(rel(fp99, rp99) < 0.03, "mean step p99 {fp99} vs {rp99}");
}

/// A day of diurnal load with the HPA-style controller: the fleets scale alike.
#[test]
fn diurnal_autoscaled_agrees_on_cost_and_utilisation() {
    let (f, r) = both(
        "Synthetic(base_rate_per_s: 100.0, components: [Daily(amplitude: 0.5, peak_hour: 14.0)])",
        86400,
        "ReferenceHpa(target_utilisation: 0.6, max_instances: 100)",
        4,
    );
    let (fs, rs) = (&f.summary, &r.summary);
    show("diurnal", &f, &r);
    assert!(rel(fs.cost_usd, rs.cost_usd) < 0.05, "cost {} vs {}", fs.cost_usd, rs.cost_usd);
    assert!((fs.mean_utilisation - rs.mean_utilisation).abs() < 0.03);
    assert!(rel(fs.latency_p99_s, rs.latency_p99_s) < 0.10, "p99 {} vs {}", fs.latency_p99_s, rs.latency_p99_s);
    assert!((fs.slo_violation_request_fraction - rs.slo_violation_request_fraction).abs() < 0.01);
}

/// Where they part: a sudden 4x crowd overloads the cluster for a few minutes. Both see the violations in
/// the same window, but the fluid backlog model and the request-level queue disagree on how bad the tail is
/// during the transient; the bounds here are the ones measured, with margin.
#[test]
fn flash_crowd_transient_is_where_they_differ() {
    let (f, r) = both(
        "Synthetic(base_rate_per_s: 100.0, components: [FlashCrowd(start_s: 3600, ramp_s: 60, hold_s: 900, decay_s: 600, peak_multiplier: 4.0)])",
        10800,
        "ReferenceHpa(target_utilisation: 0.6, max_instances: 100)",
        5,
    );
    let (fs, rs) = (&f.summary, &r.summary);
    show("flash crowd", &f, &r);
    let window = |o: &RunOutput| -> Vec<usize> {
        o.rows.iter().enumerate().filter(|(_, x)| x.slo_violated == 1).map(|(i, _)| i).collect()
    };
    let (fw, rw) = (window(&f), window(&r));
    eprintln!("violated steps: fluid {fw:?}\n                request {rw:?}");
    assert!(!fw.is_empty() && !rw.is_empty());
    assert!(fw.iter().chain(&rw).all(|&i| (60..=80).contains(&i)), "violations outside the crowd's onset");
    assert!(rel(fs.cost_usd, rs.cost_usd) < 0.05, "cost {} vs {}", fs.cost_usd, rs.cost_usd);
    // Measured: fluid counts 9.0 % slow requests, request-level 8.4 % (seed 3).
    let (a, b) = (fs.slo_violation_request_fraction, rs.slo_violation_request_fraction);
    assert!(rel(a, b) < 0.2, "slow fraction {a} vs {b}");
}

/// More overload never lowers the SLO-violating share (issue 11): requests still waiting at the horizon count
/// as violating. A static fleet of 4 instances (16 servers, 160 requests/s at 0.1 s each) under a constant
/// load from 100 % to 400 % of its capacity, in both fidelities; before the rule the share *fell* past
/// saturation, because the worse the overload the more requests were still queued, counted nowhere.
/// (Below saturation the fluid model is not monotone at ρ → 1: M/M/c waits diverge there, while at exactly
/// ρ = 1 the fluid step holds no backlog; the README's fidelity section says so.)
#[test]
fn more_overload_never_lowers_the_violating_share() {
    for fidelity in ["Fluid", "RequestLevel"] {
        let mut last = -1.0;
        for load in [1.0, 1.1, 1.25, 1.5, 2.0, 3.0, 4.0] {
            let rate = 160.0 * load;
            let w = format!("Synthetic(base_rate_per_s: {rate}, components: [])");
            let out = run(&scenario(fidelity, &w, 1800, "Static()", 4));
            let s = &out.summary;
            let share = s.slo_violation_request_fraction;
            eprintln!("{fidelity:>12} load {load:>3}: share {share:.4}, unfinished {:.0}", s.unfinished_requests);
            assert!(share >= last - 1e-9, "{fidelity}: load {load} gives {share}, below {last} at less load");
            assert!((0.0..=1.0).contains(&share));
            // Conservation: everything that arrived completed, failed or is still waiting (or in service).
            let in_service_max = 16.0;
            let gap = s.requests - s.completions - s.failed_requests - s.unfinished_requests;
            assert!((-1e-6..=in_service_max + 1e-6).contains(&gap), "{fidelity} load {load}: {gap}");
            last = share;
        }
        assert!(last > 0.7, "{fidelity}: at 4x capacity most requests miss the SLO ({last})");
    }
}
