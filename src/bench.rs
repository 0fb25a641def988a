//! `prescale bench`: canonical events per second and peak memory of the reference workloads, optionally side
//! by side with peer simulators run on the same machine in the same session.
//!
//! Every run is a separate process (prescale itself is re-invoked as `prescale reference …`), so that peak
//! memory is that run's alone (`wait4`'s `ru_maxrss`) and no run warms the caches of the next. Runs of the
//! different programs are interleaved (round-robin) so that drifting machine load spreads evenly over them.
//! Events/s use each program's in-process wall time (REFERENCE_MODEL §1), from its `RESULT` line.

use std::fmt::Write as _;
use std::process::{Command, ExitCode, Stdio};

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use serde_json::Value;

use crate::procinfo::wait_with_peak_rss;

/// Targets of the simulator-core issue, canonical events per second on this 2-core machine.
const TARGET_MMC_EVENTS_PER_S: f64 = 7e6;
const TARGET_AUTOSCALE_EVENTS_PER_S: f64 = 5e6;

#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Runs per program and workload (the median is reported).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=100))]
    runs: u32,
    /// Which workloads to run.
    #[arg(long, value_enum, default_value_t = Workloads::All)]
    workload: Workloads,
    /// A peer to run beside prescale, as LABEL=COMMAND. The workload's arguments (`mmc-steady --lambda …`)
    /// replace `{}` in COMMAND, or are appended if it has none (e.g. `nexosim=path/to/nexosim_model`,
    /// `heap=path/to/nexosim_model {} --engine heap`). Repeatable.
    #[arg(long = "peer", value_name = "LABEL=COMMAND", value_parser = peer)]
    peers: Vec<(String, String)>,
    /// Also write the table (Markdown) to this file.
    #[arg(long, value_name = "FILE")]
    out: Option<std::path::PathBuf>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Workloads {
    /// mmc-steady set C (request-level, child processes).
    Mmc,
    /// autoscale-sine (request-level, child processes).
    Autoscale,
    /// Fluid mode: 30 days at 1-minute steps, in process.
    Fluid,
    /// A sweep of 1,000 fluid runs of 7 days at 1-minute steps on 1 and 2 threads, in process.
    Sweep,
    /// Neural agents: libtorch forward cost by batch size, torch calls per simulated step (in process).
    Neural,
    /// All of the above.
    All,
}

/// The fluid benchmark scenario: 30 days at 1-minute steps, daily and weekly cycle with noise, 12 instances.
fn fluid_scenario(controller: &str) -> String {
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
/// (See also [`bench_neural`].)
fn bench_sweep(runs: usize) -> Result<Vec<String>> {
    use rayon::prelude::*;
    let text = fluid_scenario("ReferenceHpa(target_utilisation: 0.6, max_instances: 100)")
        .replace("horizon_s: 2592000", "horizon_s: 604800");
    let loaded = crate::scenario_io::load_scenario_text(std::path::Path::new("bench-sweep.ron"), &text)
        .map_err(|d| anyhow::anyhow!("{d:?}"))?;
    let mut walls = Vec::new();
    let mut checks = Vec::new();
    for threads in [1usize, 2] {
        let pool = rayon::ThreadPoolBuilder::new()
            .start_handler(|_| prescale_agents::neural::init_torch())
            .num_threads(threads)
            .build()?;
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
fn bench_fluid(runs: u32) -> Result<Vec<String>> {
    let mut lines = Vec::new();
    for (label, controller) in
        [("Static", "Static()"), ("ReferenceHpa", "ReferenceHpa(target_utilisation: 0.6, max_instances: 100)")]
    {
        let loaded = crate::scenario_io::load_scenario_text(
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

fn peer(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((l, c)) if !l.trim().is_empty() && !c.trim().is_empty() => Ok((l.trim().into(), c.trim().into())),
        _ => Err(format!("expected LABEL=COMMAND, got '{s}'")),
    }
}

struct Workload {
    name: &'static str,
    args: &'static [&'static str],
    target_events_per_s: f64,
}

const MMC_C: Workload = Workload {
    name: "mmc-steady C (λ 900, μ 10, c 100, T 2000)",
    args: &["mmc-steady", "--lambda", "900", "--mu", "10", "--c", "100", "--T", "2000", "--seed", "1"],
    target_events_per_s: TARGET_MMC_EVENTS_PER_S,
};
const AUTOSCALE: Workload = Workload {
    name: "autoscale-sine (H 7200)",
    args: &["autoscale-sine", "--seed", "1"],
    target_events_per_s: TARGET_AUTOSCALE_EVENTS_PER_S,
};

struct Program {
    label: String,
    argv: Vec<String>,
}

struct RunResult {
    wall_s: f64,
    events: u64,
    peak_rss_mib: f64,
    result: Value,
}

fn run_once(p: &Program, w: &Workload) -> Result<RunResult> {
    let mut argv: Vec<&str> = Vec::new();
    for a in &p.argv {
        if a == "{}" { argv.extend(w.args) } else { argv.push(a) }
    }
    if !p.argv.iter().any(|a| a == "{}") {
        argv.extend(w.args);
    }
    let child = Command::new(argv[0])
        .args(&argv[1..])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {} ({})", p.label, p.argv.join(" ")))?;
    let mut child = child;
    let mut stdout = String::new();
    let mut stderr = String::new();
    use std::io::Read;
    child.stdout.take().expect("piped").read_to_string(&mut stdout)?;
    child.stderr.take().expect("piped").read_to_string(&mut stderr)?;
    let (status, peak_rss_mib) = wait_with_peak_rss(child)?;
    if !status.success() {
        bail!("{} failed ({status}): {}", p.label, stderr.trim());
    }
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("RESULT "))
        .with_context(|| format!("{} printed no RESULT line", p.label))?;
    let result: Value = serde_json::from_str(line).with_context(|| format!("{}: RESULT is not JSON", p.label))?;
    let wall_s = result["wall_s"].as_f64().with_context(|| format!("{}: RESULT has no wall_s", p.label))?;
    let events = result["events"].as_u64().with_context(|| format!("{}: RESULT has no events", p.label))?;
    Ok(RunResult { wall_s, events, peak_rss_mib, result })
}

fn median(xs: &mut [f64]) -> f64 {
    xs.sort_by(f64::total_cmp);
    let n = xs.len();
    if n % 2 == 1 { xs[n / 2] } else { (xs[n / 2 - 1] + xs[n / 2]) / 2.0 }
}

/// The metrics whose values must agree between programs that implement the reference exactly.
const EXACT_KEYS: [&str; 6] = ["arrivals", "events", "p50_sojourn", "p99_sojourn", "p_wait", "instance_seconds"];

fn same_results(a: &Value, b: &Value) -> bool {
    EXACT_KEYS.iter().all(|k| a.get(k) == b.get(k))
}

/// Runs the benchmark and prints the table.
pub fn run(args: &BenchArgs) -> Result<ExitCode> {
    let exe = std::env::current_exe().context("locating the prescale executable")?;
    let mut programs = vec![Program {
        label: format!("prescale {}", env!("CARGO_PKG_VERSION")),
        argv: vec![exe.display().to_string(), "reference".into()],
    }];
    for (label, cmd) in &args.peers {
        programs.push(Program { label: label.clone(), argv: cmd.split_whitespace().map(String::from).collect() });
    }
    let workloads: Vec<&Workload> = match args.workload {
        Workloads::Mmc => vec![&MMC_C],
        Workloads::Autoscale => vec![&AUTOSCALE],
        Workloads::Fluid | Workloads::Sweep | Workloads::Neural => vec![],
        Workloads::All => vec![&MMC_C, &AUTOSCALE],
    };
    let mut table = String::new();
    writeln!(
        table,
        "| program | workload | runs | canonical events | median wall s (in-process) | events/s (median) | min..max wall s | peak RSS MiB | prescale speed-up | results identical to prescale |"
    )?;
    writeln!(table, "|---|---|---|---|---|---|---|---|---|---|")?;
    let mut verdicts = Vec::new();
    for &w in &workloads {
        let mut runs: Vec<Vec<RunResult>> = programs.iter().map(|_| Vec::new()).collect();
        for r in 0..args.runs {
            for (p, out) in programs.iter().zip(runs.iter_mut()) {
                eprintln!("[bench] {} — {} — run {}/{}", w.name, p.label, r + 1, args.runs);
                out.push(run_once(p, w)?);
            }
        }
        let own_events_per_s = {
            let mut walls: Vec<f64> = runs[0].iter().map(|r| r.wall_s).collect();
            runs[0][0].events as f64 / median(&mut walls)
        };
        let own_rss = runs[0].iter().map(|r| r.peak_rss_mib).fold(0.0, f64::max);
        for (p, rs) in programs.iter().zip(&runs) {
            let mut walls: Vec<f64> = rs.iter().map(|r| r.wall_s).collect();
            let (min, max) =
                (walls.iter().copied().fold(f64::INFINITY, f64::min), walls.iter().copied().fold(0.0, f64::max));
            let med = median(&mut walls);
            let eps = rs[0].events as f64 / med;
            let rss = rs.iter().map(|r| r.peak_rss_mib).fold(0.0, f64::max);
            let same = same_results(&rs[0].result, &runs[0][0].result);
            writeln!(
                table,
                "| {} | {} | {} | {} | {:.3} | {:.2} M | {:.3}..{:.3} | {:.1} | {:.2}x | {} |",
                p.label,
                w.name,
                rs.len(),
                rs[0].events,
                med,
                eps / 1e6,
                min,
                max,
                rss,
                own_events_per_s / eps,
                if same { "yes" } else { "NO" }
            )?;
            if !std::ptr::eq(p, &programs[0]) && p.label.contains("nexosim") {
                verdicts.push(format!(
                    "{}: peak memory {:.1} MiB vs {} {:.1} MiB ({})",
                    w.name,
                    own_rss,
                    p.label,
                    rss,
                    if own_rss <= rss { "not above: met" } else { "above: NOT met" }
                ));
            }
        }
        verdicts.push(format!(
            "{}: {:.2} M events/s vs target {:.1} M ({:.2}x of target: {})",
            w.name,
            own_events_per_s / 1e6,
            w.target_events_per_s / 1e6,
            own_events_per_s / w.target_events_per_s,
            if own_events_per_s >= w.target_events_per_s { "met" } else { "NOT met" }
        ));
    }
    if matches!(args.workload, Workloads::Fluid | Workloads::All) {
        verdicts.extend(bench_fluid(args.runs)?);
    }
    if matches!(args.workload, Workloads::Sweep | Workloads::All) {
        verdicts.extend(bench_sweep(1000)?);
    }
    if matches!(args.workload, Workloads::Neural | Workloads::All) {
        verdicts.extend(bench_neural()?);
    }
    if !workloads.is_empty() {
        println!("{table}");
    }
    for v in &verdicts {
        println!("- {v}");
    }
    if let Some(path) = &args.out {
        let mut text = table.clone();
        text.push('\n');
        for v in &verdicts {
            writeln!(text, "- {v}")?;
        }
        crate::results::write_atomically(path, &text)?;
        eprintln!("[bench] table written to {}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// Neural agents: the cost of one libtorch forward pass of the demo's GRU (window 30, 6 horizons, Gaussian) by
/// batch size — what batching buys — and, over the 6,100-step NAB ELB test period, the torch calls per
/// simulated step and the time per decision of a neural predictor and of a BC policy (weights untrained: the
/// cost does not depend on them).
fn bench_neural() -> Result<Vec<String>> {
    use prescale_agents::neural::model::{Model, ModelCard, Task};
    use prescale_agents::neural::spec::{Architecture, Input, ModelSpec, OutputKind};
    use prescale_sim::scenario::ControllerSpec;
    let dir = tempfile_dir("prescale-bench-neural")?;
    let mut out = Vec::new();
    let card = |name: &str, inputs: Vec<Input>, horizons: u32, task: Task| {
        let spec = ModelSpec {
            architecture: Architecture::Gru { hidden: 32, layers: 1 },
            inputs,
            window_steps: 30,
            horizon_steps: horizons,
            output: OutputKind::Gaussian,
        };
        let norm = prescale_agents::neural::data::Normaliser { mean: 200.0, sd: 100.0 };
        ModelCard::new(name, task, &spec, 60.0, norm, &Default::default())
    };
    tch::manual_seed(1);
    let forecast = card("bench-gru", vec![Input::Rate, Input::TimeOfDay, Input::DayOfWeek], 6, Task::Forecast);
    let mut m = Model::fresh(forecast, tch::Device::Cpu);
    // Forward cost by batch size.
    let per = 30 * m.card.spec.width();
    for batch in [1usize, 8, 64, 256] {
        let x: Vec<f32> = (0..batch * per).map(|i| 200.0 + (i % 17) as f32).collect();
        let reps = (2000 / batch).max(20);
        let _ = m.predict(&x, batch);
        let t0 = std::time::Instant::now();
        for _ in 0..reps {
            std::hint::black_box(m.predict(&x, batch));
        }
        let us = t0.elapsed().as_secs_f64() / reps as f64 * 1e6;
        out.push(format!(
            "GRU(32) forward, window 30, 6 horizons, batch {batch}: {us:.0} µs per call, {:.1} µs per window",
            us / batch as f64
        ));
    }
    m.save(&dir.join("gru"), &|_| Ok(()))?;
    let policy = card(
        "bench-bc",
        vec![
            Input::Rate,
            Input::TimeOfDay,
            Input::DayOfWeek,
            Input::ReadyCapacity,
            Input::PendingCapacity,
            Input::Backlog,
        ],
        1,
        Task::Policy,
    );
    Model::fresh(policy, tch::Device::Cpu).save(&dir.join("bc"), &|_| Ok(()))?;
    // Runs over the ELB test period (the demo's embedded inputs).
    let inputs = dir.join("inputs");
    crate::embedded::write_inputs(&inputs, |t| t.to_string())?;
    let scenario = inputs.join("scenarios/nab-elb-test.ron");
    let base = std::fs::read_to_string(&scenario)?;
    let hpa = "controller: ReferenceHpa(target_utilisation: 0.6, max_instances: 150),";
    for (label, controller) in [
        ("HPA (no torch)", hpa.to_string()),
        (
            "GRU + ACI (neural predictor)",
            format!(
                "controller: Predictive(predictor: Neural(model: \"{}\"), variance: AdaptiveConformal(alpha: 0.05), allocator: (target_utilisation: 0.6)),",
                dir.join("gru").display()
            ),
        ),
        ("BC policy", format!("controller: Bc(model: \"{}\"),", dir.join("bc").display())),
    ] {
        let text = base.replace(hpa, &controller);
        let loaded =
            crate::scenario_io::load_scenario_text(&scenario, &text).map_err(|d| anyhow::anyhow!("{}", d[0]))?;
        let p = loaded.prepare(1).map_err(|d| anyhow::anyhow!("{}", d[0]))?;
        // Driven step by step so that the controller's own count of forward passes can be read at the end.
        let t0 = std::time::Instant::now();
        let mut controller = p.config.controller.init(&p.init_context(1));
        let mut stepper = p.fluid_stepper(1);
        let mut steps = 0u64;
        while let Some(obs) = stepper.next_observation() {
            let d = controller.decide(&obs);
            stepper.decide(d, controller.diagnostics());
            steps += 1;
        }
        let _ = stepper.finish();
        let wall = t0.elapsed().as_secs_f64();
        let calls = controller.diagnostics().map_or(0, |d| d.model_calls);
        out.push(format!(
            "{label} on the ELB test period: {steps} steps, {calls} torch calls ({:.3} per simulated step), {wall:.3} s ({:.1} µs per step)",
            calls as f64 / steps as f64,
            wall / steps as f64 * 1e6
        ));
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(out)
}

/// A fresh folder under the system's temporary directory.
fn tempfile_dir(prefix: &str) -> Result<std::path::PathBuf> {
    let d = std::env::temp_dir().join(format!("{prefix}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d)?;
    Ok(d)
}
