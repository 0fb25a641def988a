//! Fluid-mode benchmarks, in process: one 30-day run, a sweep on 1 and 2 threads, and how the cost grows with
//! the fleet and the horizon.

use anyhow::Result;

use super::median;

/// The fluid benchmark scenario: 30 days at 1-minute steps, daily and weekly cycle with noise, 12 instances.
pub(super) fn fluid_scenario(controller: &str) -> String {
    format!(
        r#"Scenario(name: "bench-fluid-30d", horizon_s: 2592000, step_s: 60, fidelity: Fluid,
          workload: Synthetic(base_rate_per_s: 200.0, components: [Daily(amplitude: 0.5, peak_hour: 14.0),
                    Weekly(amplitude: 0.2, peak_day: 2.0), Noise(sd: 0.05, correlation_s: 600)]),
          service: (mean_service_s: 0.1),
          cluster: (instance_types: [(name: "m", capacity: (cpu_cores: 4, memory_gib: 16), price_usd_per_hour: 0.2,
                    provisioning_delay: Constant(s: 120), initial_count: 12, max_count: 100)], scaling_type: "m"),
          slo: (latency_quantile: 0.99, latency_threshold_s: 0.5),
          controller: {controller})"#
    )
}

/// Times `runs` fluid runs of 7 days at 1-minute steps (the 30-day benchmark scenario cut to a week, one seed
/// per run, the HPA-style controller), on a rayon pool of 1 and of 2 threads; results are computed, not
/// written (the simulation's scaling, not the disk's).
///
/// (See also [`super::neural::costs`].)
pub(super) fn sweep(runs: usize) -> Result<Vec<String>> {
    use rayon::prelude::*;
    let text = fluid_scenario("ReferenceHpa(target_utilisation: 0.6, max_instances: 100)")
        .replace("horizon_s: 2592000", "horizon_s: 604800");
    let loaded = crate::files::scenario_io::load_scenario_text(std::path::Path::new("bench-sweep.ron"), &text)
        .map_err(|d| anyhow::anyhow!("{d:?}"))?;
    let mut walls = Vec::new();
    let mut checks = Vec::new();
    for threads in [1usize, 2] {
        // Classical controllers only: no libtorch thread set-up.
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build()?;
        let t0 = std::time::Instant::now();
        let costs: Vec<f64> = pool.install(|| {
            (0..runs as u64)
                .into_par_iter()
                .map(|seed| {
                    let p = loaded.prepare(seed).expect("valid benchmark scenario");
                    prescale_sim::scenario::run(&p, seed, &mut |_| {}).summary.cost_usd
                })
                .collect()
        });
        walls.push(t0.elapsed().as_secs_f64());
        checks.push(costs);
    }
    let same = checks[0] == checks[1];
    Ok(vec![format!(
        "sweep of {runs} fluid runs of 7 days at 1-minute steps: 1 thread {:.2} s ({:.2} ms per run), 2 threads {:.2} s \
         ({:.2} ms per run): speed-up {:.2}x (target >= 1.8x: {}); results identical on both: {}",
        walls[0],
        walls[0] / runs as f64 * 1e3,
        walls[1],
        walls[1] / runs as f64 * 1e3,
        walls[0] / walls[1],
        if walls[0] / walls[1] >= 1.8 { "met" } else { "NOT met" },
        if same { "yes" } else { "NO" }
    )])
}

/// Times the fluid runs in process: median of `runs` (simulation only: the demand series is prepared once).
pub(super) fn thirty_days(runs: u32) -> Result<Vec<String>> {
    let mut lines = Vec::new();
    for (label, controller) in
        [("Static", "Static()"), ("ReferenceHpa", "ReferenceHpa(target_utilisation: 0.6, max_instances: 100)")]
    {
        let loaded = crate::files::scenario_io::load_scenario_text(
            std::path::Path::new("bench-fluid.ron"),
            &fluid_scenario(controller),
        )
        .map_err(|d| anyhow::anyhow!("{d:?}"))?;
        let t0 = std::time::Instant::now();
        let prepared = loaded.prepare(1).map_err(|d| anyhow::anyhow!("{d:?}"))?;
        let prepare_s = t0.elapsed().as_secs_f64();
        let steps = prepared.demand.steps();
        let mut walls: Vec<f64> = (0..runs.max(3))
            .map(|_| {
                let t = std::time::Instant::now();
                let out = prescale_sim::scenario::run(&prepared, 1, &mut |_| {});
                std::hint::black_box(out);
                t.elapsed().as_secs_f64()
            })
            .collect();
        let med = median(&mut walls);
        lines.push(format!(
            "fluid, 30 days at 1-minute steps ({steps} steps), {label}: {:.1} ms per run (median of {}; {:.2} µs per \
             step; demand preparation {:.1} ms once){}",
            med * 1e3,
            walls.len(),
            med / steps as f64 * 1e6,
            prepare_s * 1e3,
            if label == "Static" {
                format!(" — target < 50 ms: {}", if med < 0.05 { "met" } else { "NOT met" })
            } else {
                String::new()
            }
        ));
    }
    Ok(lines)
}

/// The scaling scenario: the benchmark's daily and weekly cycle at `20 · fleet` requests/s (about half of
/// `fleet` 4-server instances busy on average), `fleet` instances from the start; `Static` keeps them, the HPA
/// moves around them (up to 4×).
fn scaling_scenario(fleet: u32, horizon_s: u64, fidelity: &str, controller: &str) -> String {
    fluid_scenario(controller)
        .replace("horizon_s: 2592000", &format!("horizon_s: {horizon_s}"))
        .replace("fidelity: Fluid", &format!("fidelity: {fidelity}"))
        .replace("base_rate_per_s: 200.0", &format!("base_rate_per_s: {}.0", 20 * fleet))
        .replace("initial_count: 12, max_count: 100", &format!("initial_count: {fleet}, max_count: {}", 4 * fleet))
}

struct Timed {
    wall_s: f64,
    steps: usize,
    mean_instances: f64,
    requests: f64,
    completions: f64,
}

/// Median in-process time of `runs` runs of one scenario text (the demand prepared once, outside the timing).
fn time_runs(text: &str, runs: u32) -> Result<Timed> {
    let loaded = crate::files::scenario_io::load_scenario_text(std::path::Path::new("bench-scaling.ron"), text)
        .map_err(|d| anyhow::anyhow!("{d:?}"))?;
    let prepared = loaded.prepare(1).map_err(|d| anyhow::anyhow!("{d:?}"))?;
    let steps = prepared.demand.steps();
    let mut last = None;
    let mut walls: Vec<f64> = (0..runs)
        .map(|_| {
            let t = std::time::Instant::now();
            let out = prescale_sim::scenario::run(&prepared, 1, &mut |_| {});
            let wall = t.elapsed().as_secs_f64();
            last = Some(out);
            wall
        })
        .collect();
    let out = last.expect("at least one run");
    let s = &out.summary;
    Ok(Timed {
        wall_s: median(&mut walls),
        steps,
        mean_instances: s.instance_hours * 3600.0 / s.horizon_s,
        requests: s.requests,
        completions: s.completions,
    })
}

/// How simulation time grows with the fleet and with the horizon, both fidelities, as Markdown tables (the
/// README's scaling table) and the flat-step-cost verdict: 30 days with ~1,200 instances within 1.5× of ~12.
pub(super) fn scaling(runs: u32) -> Result<(String, Vec<String>)> {
    use std::fmt::Write as _;
    let runs = runs.max(1);
    let mut t = String::new();
    let day = 86_400u64;
    writeln!(t, "Fluid, 30 days at 1-minute steps (43,200 steps), by fleet size:\n")?;
    writeln!(t, "| fleet (initial) | controller | mean instances | ms per run | µs per step | vs fleet 12 |")?;
    writeln!(t, "|---|---|---|---|---|---|")?;
    let mut by_fleet = Vec::new();
    for (label, controller) in [
        ("Static", "Static()".to_string()),
        ("ReferenceHpa", "ReferenceHpa(target_utilisation: 0.6, max_instances: 1000000)".to_string()),
    ] {
        let mut base = None;
        for fleet in [12u32, 120, 1_200, 12_000] {
            eprintln!("[bench] scaling: fluid, {label}, fleet {fleet}");
            let r = time_runs(&scaling_scenario(fleet, 30 * day, "Fluid", &controller), runs)?;
            let base_s = *base.get_or_insert(r.wall_s);
            writeln!(
                t,
                "| {fleet} | {label} | {:.0} | {:.1} | {:.2} | {:.2}x |",
                r.mean_instances,
                r.wall_s * 1e3,
                r.wall_s / r.steps as f64 * 1e6,
                r.wall_s / base_s
            )?;
            by_fleet.push((label, fleet, r.wall_s / base_s));
        }
    }
    writeln!(t, "\nFluid, ~12 instances (ReferenceHpa), by horizon:\n")?;
    writeln!(t, "| horizon | steps | ms per run | µs per step |")?;
    writeln!(t, "|---|---|---|---|")?;
    for (label, days) in [("1 day", 1u64), ("7 days", 7), ("30 days", 30), ("1 year", 365)] {
        eprintln!("[bench] scaling: fluid, horizon {label}");
        let r = time_runs(
            &scaling_scenario(12, days * day, "Fluid", "ReferenceHpa(target_utilisation: 0.6, max_instances: 100)"),
            runs,
        )?;
        writeln!(t, "| {label} | {} | {:.1} | {:.2} |", r.steps, r.wall_s * 1e3, r.wall_s / r.steps as f64 * 1e6)?;
    }
    writeln!(
        t,
        "\nRequest-level (ReferenceHpa), by fleet size: the daily cycle scaled to 20 requests/s per initial instance, \
         for 2 M / (20 · fleet) seconds, at least 10 minutes (events = arrivals + departures + ticks):\n"
    )?;
    writeln!(t, "| fleet (initial) | horizon | requests | s per run | M events/s | vs fleet 12 |")?;
    writeln!(t, "|---|---|---|---|---|---|")?;
    let mut base = None;
    for fleet in [12u32, 120, 1_200, 12_000] {
        let rate = 20.0 * fleet as f64;
        let horizon_s = ((2e6 / rate / 60.0).round() as u64 * 60).max(600);
        eprintln!("[bench] scaling: request-level, fleet {fleet}");
        let r = time_runs(
            &scaling_scenario(
                fleet,
                horizon_s,
                "RequestLevel",
                "ReferenceHpa(target_utilisation: 0.6, max_instances: 1000000)",
            ),
            runs,
        )?;
        let events_per_s = (r.requests + r.completions + r.steps as f64) / r.wall_s;
        let base_eps = *base.get_or_insert(events_per_s);
        writeln!(
            t,
            "| {fleet} | {} s | {:.2} M | {:.2} | {:.2} | {:.2}x |",
            horizon_s,
            r.requests / 1e6,
            r.wall_s,
            events_per_s / 1e6,
            events_per_s / base_eps
        )?;
    }
    writeln!(
        t,
        "\nRequest-level, ~12 instances (ReferenceHpa, the cycle scaled to 240 requests/s), by horizon (a year would be 7.6 G \
         requests: hours on this machine, which is what the fluid fidelity is for):\n"
    )?;
    writeln!(t, "| horizon | requests | s per run | M events/s |")?;
    writeln!(t, "|---|---|---|---|")?;
    for (label, horizon_s) in [("1 hour", 3_600u64), ("6 hours", 6 * 3_600), ("1 day", day)] {
        eprintln!("[bench] scaling: request-level, horizon {label}");
        let r = time_runs(
            &scaling_scenario(
                12,
                horizon_s,
                "RequestLevel",
                "ReferenceHpa(target_utilisation: 0.6, max_instances: 100)",
            ),
            runs,
        )?;
        let events_per_s = (r.requests + r.completions + r.steps as f64) / r.wall_s;
        writeln!(t, "| {label} | {:.2} M | {:.2} | {:.2} |", r.requests / 1e6, r.wall_s, events_per_s / 1e6)?;
    }
    let verdicts = by_fleet
        .iter()
        .filter(|(_, fleet, _)| *fleet == 1_200)
        .map(|(label, _, ratio)| {
            format!(
                "flat step cost, fluid 30 days, {label}: fleet 1,200 takes {ratio:.2}x fleet 12 (goal <= 1.5x: {})",
                if *ratio <= 1.5 { "met" } else { "NOT met" }
            )
        })
        .collect();
    Ok((t, verdicts))
}
