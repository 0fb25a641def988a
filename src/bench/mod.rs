//! `prescale bench`: canonical events per second and peak memory of the reference workloads, optionally side
//! by side with peer simulators run on the same machine in the same session.
//!
//! Every run is a separate process (prescale itself is re-invoked as `prescale reference …`), started through
//! `prescale-measure` (a small process, as GNU `time` is), so that peak memory is that run's alone (`wait4`'s
//! `ru_maxrss` of a child that did not replace a big address space at exec) and no run warms the caches of
//! the next. Runs of the
//! different programs are interleaved (round-robin) so that drifting machine load spreads evenly over them.
//! Events/s use each program's in-process wall time (REFERENCE_MODEL §1), from its `RESULT` line.

use std::fmt::Write as _;
use std::process::{Command, ExitCode, Stdio};

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use serde_json::Value;

use crate::bench::procinfo::wait_with_peak_rss;

mod fluid;
#[cfg(feature = "torch")]
mod neural;
pub mod procinfo;
#[cfg(feature = "torch")]
mod serve;

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
    /// Process start: `prescale --version`, `prescale validate` of a shipped scenario, a 28-day fluid run, and
    /// `prescale-torch --version`, as whole processes (wall and peak memory).
    Start,
    /// How simulation time grows with the fleet (10 → 10,000 instances) and the horizon (1 day → 1 year), both
    /// fidelities, in process (not part of `all`: about a minute).
    Scaling,
    /// Live mode: `prescale serve`'s decision latency per tick (HPA, Holt-Winters + ACI, GRU + ACI, BC at
    /// batch 1) and its serving process's peak memory (not part of `all`: about 30 s).
    Serve,
    /// All of the above.
    All,
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
    // Through `prescale-measure` (next to this executable), so that the program's peak memory is its own and
    // not this process's high-water mark inherited at exec (see src/bin/prescale-measure.rs).
    let rss_file = std::env::temp_dir().join(format!("prescale-bench-rss-{}", std::process::id()));
    let mut cmd = match measurer() {
        Some(m) => {
            let mut c = Command::new(m);
            c.arg(&rss_file).args(&argv);
            c
        }
        None => {
            let mut c = Command::new(argv[0]);
            c.args(&argv[1..]);
            c
        }
    };
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {} ({})", p.label, p.argv.join(" ")))?;
    let mut stdout = String::new();
    let mut stderr = String::new();
    use std::io::Read;
    child.stdout.take().expect("piped").read_to_string(&mut stdout)?;
    child.stderr.take().expect("piped").read_to_string(&mut stderr)?;
    let (status, direct_rss_mib) = wait_with_peak_rss(child)?;
    if !status.success() {
        bail!("{} failed ({status}): {}", p.label, stderr.trim());
    }
    let peak_rss_mib = match measurer() {
        Some(_) => {
            let text = std::fs::read_to_string(&rss_file)
                .with_context(|| format!("reading {} (written by prescale-measure)", rss_file.display()))?;
            let _ = std::fs::remove_file(&rss_file);
            let kib: f64 = text
                .strip_prefix("maxrss_kib ")
                .and_then(|v| v.trim().parse().ok())
                .with_context(|| format!("{}: expected 'maxrss_kib N', got '{}'", rss_file.display(), text.trim()))?;
            kib / 1024.0
        }
        None => direct_rss_mib,
    };
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("RESULT "))
        .with_context(|| format!("{} printed no RESULT line", p.label))?;
    let result: Value = serde_json::from_str(line).with_context(|| format!("{}: RESULT is not JSON", p.label))?;
    let wall_s = result["wall_s"].as_f64().with_context(|| format!("{}: RESULT has no wall_s", p.label))?;
    let events = result["events"].as_u64().with_context(|| format!("{}: RESULT has no events", p.label))?;
    Ok(RunResult { wall_s, events, peak_rss_mib, result })
}

/// Whole-process cost of starting: the median wall time (measured outside, spawn to exit) and the peak memory
/// (through `prescale-measure`) of a few commands of `prescale` (which does not load libtorch) and of
/// `prescale-torch --version`; goals of the performance issue: `validate` < 30 ms and < 20 MB, a fluid run's
/// process within 1.5x of its simulation.
fn start(prescale: &std::path::Path, runs: u32) -> Result<Vec<String>> {
    let torch = prescale.with_file_name("prescale-torch");
    let out_dir = std::env::temp_dir().join(format!("prescale-bench-start-{}", std::process::id()));
    let scenarios = crate::files::embedded::INPUTS
        .iter()
        .find(|(p, _)| p.ends_with("scenarios/flash-crowd.ron"))
        .map(|(_, t)| *t)
        .context("the embedded flash-crowd scenario")?;
    std::fs::create_dir_all(&out_dir)?;
    let flash = out_dir.join("flash-crowd.ron");
    std::fs::write(&flash, scenarios)?;
    let long = out_dir.join("bench-fluid-28d.ron");
    let long_text = fluid::fluid_scenario("ReferenceHpa(target_utilisation: 0.6, max_instances: 100)")
        .replace("horizon_s: 2592000", "horizon_s: 2419200");
    std::fs::write(&long, &long_text)?;
    // The simulation repeated in this process (warm: its memory already mapped; nothing formatted or written).
    let loaded =
        crate::files::scenario_io::load_scenario_text(&long, &long_text).map_err(|d| anyhow::anyhow!("{d:?}"))?;
    let prepared = loaded.prepare(loaded.config.seed_or(None)).map_err(|d| anyhow::anyhow!("{d:?}"))?;
    let mut sims: Vec<f64> = (0..runs.max(3))
        .map(|_| {
            let t0 = std::time::Instant::now();
            let out = prescale_sim::scenario::run(&prepared, loaded.config.seed_or(None), &mut |_| {});
            std::hint::black_box(out);
            t0.elapsed().as_secs_f64()
        })
        .collect();
    let warm_sim_ms = median(&mut sims) * 1e3;
    let (f, l, o) =
        (flash.display().to_string(), long.display().to_string(), out_dir.join("out").display().to_string());
    let cases: Vec<(&str, &std::path::Path, Vec<&str>)> = vec![
        ("prescale --version", prescale, vec!["--version"]),
        ("prescale validate flash-crowd.ron", prescale, vec!["validate", &f]),
        ("prescale run (fluid, 28 days, 40,320 steps)", prescale, vec!["run", &l, "--quiet", "--out", &o]),
        ("prescale-torch --version", &torch, vec!["--version"]),
    ];
    let mut lines = Vec::new();
    for (label, bin, args) in cases {
        if !bin.is_file() {
            lines.push(format!("{label}: {} not found, skipped", bin.display()));
            continue;
        }
        let mut walls = Vec::new();
        let mut rss: f64 = 0.0;
        let mut sims_ms = Vec::new();
        for _ in 0..runs.max(3) {
            let rss_file = out_dir.join("rss");
            let mut cmd = match measurer() {
                Some(m) => {
                    let mut c = Command::new(m);
                    c.arg(&rss_file).arg(bin).args(&args);
                    c
                }
                None => {
                    let mut c = Command::new(bin);
                    c.args(&args);
                    c
                }
            };
            let t0 = std::time::Instant::now();
            let out = cmd.stderr(Stdio::null()).output().with_context(|| format!("starting {label}"))?;
            walls.push(t0.elapsed().as_secs_f64());
            if !out.status.success() {
                bail!("{label} failed ({})", out.status);
            }
            if let Some(kib) = std::fs::read_to_string(&rss_file)
                .ok()
                .and_then(|t| t.strip_prefix("maxrss_kib ").and_then(|v| v.trim().parse::<f64>().ok()))
            {
                rss = rss.max(kib / 1024.0);
            }
            // `prescale run` says its simulation time: "... in 41.3 ms".
            if let Some(ms) = String::from_utf8_lossy(&out.stdout)
                .lines()
                .next()
                .and_then(|l| l.rsplit_once(" in "))
                .and_then(|(_, t)| t.strip_suffix(" ms"))
                .and_then(|t| t.parse::<f64>().ok())
            {
                sims_ms.push(ms);
            }
        }
        let wall = median(&mut walls);
        let mut line = format!("{label}: {:.1} ms, {rss:.1} MiB as a process (median of {})", wall * 1e3, walls.len());
        if label.contains("validate") {
            line.push_str(&format!(
                " — goal < 30 ms and < 20 MB: {}",
                if wall < 0.03 && rss < 20.0 { "met" } else { "NOT met" }
            ));
        }
        if !sims_ms.is_empty() {
            let sim_ms = median(&mut sims_ms);
            let ratio = wall * 1e3 / sim_ms;
            line.push_str(&format!(
                "; its simulation {sim_ms:.1} ms as the run reports it, process/simulation {ratio:.2}x (goal <= 1.5x: \
                 {}); the same simulation repeated in one process (memory already mapped) {warm_sim_ms:.1} ms, \
                 {:.2}x. The 11 MB per-step table is formatted and written on another thread while the run goes on",
                if ratio <= 1.5 { "met" } else { "NOT met" },
                wall * 1e3 / warm_sim_ms
            ));
        }
        lines.push(line);
    }
    let _ = std::fs::remove_dir_all(&out_dir);
    Ok(lines)
}

/// `prescale-measure` beside this executable, if it is there (a cargo build makes both).
fn measurer() -> Option<std::path::PathBuf> {
    let m = std::env::current_exe().ok()?.with_file_name("prescale-measure");
    m.is_file().then_some(m)
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

/// The neural benchmark's lines (reached through `torch_gate`: it needs libtorch).
#[cfg(feature = "torch")]
pub(crate) fn neural_costs() -> Result<Vec<String>> {
    neural::costs()
}

/// The live-mode benchmark's lines (reached through `torch_gate`: its learned controllers need libtorch).
#[cfg(feature = "torch")]
pub(crate) fn serve_costs() -> Result<Vec<String>> {
    serve::costs()
}

/// Runs the benchmark and prints the table.
///
/// Why one function: the table is its output, one section per workload in a fixed order, each a few calls
/// into the workload modules and the rows they print.
pub fn run(args: &BenchArgs) -> Result<ExitCode> {
    // The neural part needs libtorch: ask for it before anything runs (in `prescale` this re-runs the command
    // line in `prescale-torch`).
    let torch = matches!(args.workload, Workloads::Neural | Workloads::Serve | Workloads::All)
        .then(|| crate::neural::gate::require("prescale bench --workload neural / serve"));
    // The `prescale` binary (which does not load libtorch) runs the reference workloads, also when this is
    // `prescale-torch` (as for `--workload all`, which includes the neural part).
    let current = std::env::current_exe().context("locating the prescale executable")?;
    let exe = Some(current.with_file_name("prescale")).filter(|p| p.is_file()).unwrap_or(current);
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
        Workloads::Fluid
        | Workloads::Sweep
        | Workloads::Neural
        | Workloads::Scaling
        | Workloads::Start
        | Workloads::Serve => vec![],
        Workloads::All => vec![&MMC_C, &AUTOSCALE],
    };
    let mut table = String::new();
    if !workloads.is_empty() {
        writeln!(
            table,
            "| program | workload | runs | canonical events | median wall s (in-process) | events/s (median) | min..max wall s | peak RSS MiB | prescale speed-up | results identical to prescale |"
        )?;
        writeln!(table, "|---|---|---|---|---|---|---|---|---|---|")?;
    }
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
            if !std::ptr::eq(p, &programs[0]) && p.label.contains("heap") {
                let (speed, memory) = (own_events_per_s / eps, own_rss / rss);
                verdicts.push(format!(
                    "{}: vs {}: speed {speed:.2}x (goal >= 0.85x: {}), peak memory {memory:.2}x (goal <= 1.2x: {})",
                    w.name,
                    p.label,
                    if speed >= 0.85 { "met" } else { "NOT met" },
                    if memory <= 1.2 { "met" } else { "NOT met" }
                ));
            }
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
        verdicts.extend(fluid::thirty_days(args.runs)?);
    }
    if matches!(args.workload, Workloads::Sweep | Workloads::All) {
        verdicts.extend(fluid::sweep(1000)?);
    }
    if matches!(args.workload, Workloads::Serve) {
        verdicts.extend((torch.expect("asked for above").bench_serve)()?);
    }
    if matches!(args.workload, Workloads::Neural | Workloads::All) {
        verdicts.extend((torch.expect("asked for above").bench_neural)()?);
    }
    if matches!(args.workload, Workloads::Start | Workloads::All) {
        verdicts.extend(start(&exe, args.runs)?);
    }
    if args.workload == Workloads::Scaling {
        let (tables, v) = fluid::scaling(args.runs)?;
        table.push_str(&tables);
        verdicts.extend(v);
    }
    if !workloads.is_empty() || args.workload == Workloads::Scaling {
        println!("{table}");
    }
    for v in &verdicts {
        println!("- {v}");
    }
    if !workloads.is_empty() && measurer().is_none() {
        let note = "peak memory measured directly: prescale-measure is not beside this executable, so a program's \
                    figure includes this process's pages at exec (an over-estimate)";
        println!("- {note}");
        verdicts.push(note.to_string());
    }
    if let Some(path) = &args.out {
        let mut text = table.clone();
        text.push('\n');
        for v in &verdicts {
            writeln!(text, "- {v}")?;
        }
        crate::files::results::write_atomically(path, &text)?;
        eprintln!("[bench] table written to {}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}
