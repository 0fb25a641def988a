//! `prescale scaffold`: a scenario and a fair-fight experiment for a trace nobody has configured yet.
//!
//! A new trace otherwise takes the three steps of `experiments/fair-fight/README.md` ("On your own trace") by
//! hand. The scaffold reads the trace as a scenario would (the same reader: its timestamp column and format, its
//! irregularities), picks the scale at which the fleet has something to decide, and writes two files that
//! `prescale validate` accepts and `prescale sweep` runs:
//!
//! - `<name>.ron`, the scenario: fluid, one-minute steps, the trace's last 30 % scored after a warm history
//!   (two days, or a tenth of a shorter trace), `m5.xlarge`-like instances (4 cores, 0.192 USD an hour,
//!   provisioning log-normal around 120 s), a p99 ≤ 0.5 s SLO. `amplitude_scale` is the 1-2-5 number nearest to
//!   what makes the SLO need [`TARGET_P99_INSTANCES`] instances at the rate's 99th percentile (M/M/c, as
//!   `prescale validate` sizes), so that every controller has room above and below; `max_count` is twice what the peak needs, `initial_count` what the mean needs (both
//!   by `prescale validate`'s sizing: M/M/c, Erlang C).
//! - `<name>-fight.ron`, the experiment: the Kubernetes HPA, last value, Holt-Winters and a GRU forecaster
//!   trained on the first 70 % (each with an adaptive conformal margin) swept over their knobs, and the
//!   hindsight expert, hard and priced (its frontier: a violated minute at 0.5–1000 times what the mean fleet
//!   costs a minute), three seeds, baseline `hpa-0.6`.
//!
//! How a column's values become demand (`--meaning`) only sets a constant factor in fluid mode, which the
//! amplitude absorbs; it is written into the scenario so that the scale reads right. Nothing is overwritten
//! unless asked; both files are checked by the loaders `prescale validate` uses before either is written.

use std::fmt::Write as _;
use std::path::{Component, Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use prescale_sim::scenario::instances_for_slo;
use prescale_sim::trace::{DEFAULT_TIME_COLUMN, MissingPolicy, TimestampFormat, Trace, TracePolicies};

use crate::files::scenario_io::{load_scenario_text, parse_trace_text, read_trace_text};
use crate::neural::forecast_eval::{default_column, split_column};

/// The instances of the scaling type the SLO needs at the rate's 99th percentile, at the amplitude the scaffold
/// aims for (before rounding it to a 1-2-5 number).
pub const TARGET_P99_INSTANCES: u32 = 25;
/// The one-minute step of scaffolded scenarios, seconds.
const STEP_S: f64 = 60.0;
/// The scaffolded instance type's price.
const INSTANCE_PRICE_USD_PER_HOUR: f64 = 0.192;
/// The prices of a violated minute the expert's frontier is traced at, as multiples of what the fleet costs a
/// minute at its mean need: from half of it (the expert lets most minutes go) to a thousand times it (it meets
/// every peak it can).
const EXPERT_PRICE_MULTIPLES: [f64; 6] = [0.5, 1.0, 2.0, 5.0, 20.0, 1000.0];

/// What a trace column's values are, as `--meaning` names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Meaning {
    /// Requests counted per row (per the trace's interval).
    RequestsPerInterval,
    /// Requests per second.
    RequestsPerSecond,
    /// CPU utilisation in percent (0–100) of one core's worth of demand, scaled by the amplitude.
    CpuPercent,
}

impl Meaning {
    /// The scenario's `meaning`.
    fn ron(self) -> &'static str {
        match self {
            Meaning::RequestsPerInterval => "RequestsPerInterval",
            Meaning::RequestsPerSecond => "RequestsPerSecond",
            Meaning::CpuPercent => "Utilisation(resource: Cpu, percent: true, reference_capacity: 1.0)",
        }
    }

    /// Requests per second of a value (before the amplitude), with the service of the scaffold (0.1 s, 1 core).
    fn rate_per_s(self, value: f64, interval_s: f64) -> f64 {
        match self {
            Meaning::RequestsPerInterval => value / interval_s,
            Meaning::RequestsPerSecond => value,
            Meaning::CpuPercent => value / 100.0 / 0.1,
        }
    }
}

/// How a trace's dates are written when not year first (`--date-order`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum DateOrder {
    /// `31/01/2024 13:45`.
    DayFirst,
    /// `01/31/2024 13:45`.
    MonthFirst,
}

impl DateOrder {
    fn format(self) -> TimestampFormat {
        match self {
            DateOrder::DayFirst => TimestampFormat::DayFirst,
            DateOrder::MonthFirst => TimestampFormat::MonthFirst,
        }
    }
}

/// What `prescale scaffold` is asked.
#[derive(Clone, Debug)]
pub struct Options {
    /// `TRACE[:COLUMN]`.
    pub trace: String,
    /// What the column's values are.
    pub meaning: Meaning,
    /// How the dates are written, where not year first.
    pub date_order: Option<DateOrder>,
    /// Folder the two files go to.
    pub out: PathBuf,
    /// Base name of the files and of the scenario (default: the trace's file stem).
    pub name: Option<String>,
    /// Replace files that exist.
    pub force: bool,
}

/// What was written.
#[derive(Clone, Debug)]
pub struct Scaffolded {
    /// The scenario file.
    pub scenario: PathBuf,
    /// The experiment file.
    pub experiment: PathBuf,
    /// What `prescale validate` says of each, and what to run next, for people.
    pub summary: String,
}

/// Writes the scenario and the experiment for `opts.trace` (module docs).
///
/// # Errors
/// The trace's own problems (file, line, column), a trace too short to split or without demand, files that
/// exist (without `force`), a name that is no file name, and — a bug — generated files the loaders refuse.
pub fn scaffold(opts: &Options) -> Result<Scaffolded> {
    let (file, named) = split_column(&opts.trace);
    let trace_path = Path::new(file);
    let text = read_trace_text(trace_path).map_err(|d| anyhow!("{d}"))?;
    let column = named.map_or_else(|| default_column(&text), str::to_string);
    // Holes are dropped and filled as gaps, and said in the scenario; everything else as a scenario reads it.
    let policies = TracePolicies {
        missing: MissingPolicy::Drop,
        timestamp_format: opts.date_order.map_or(TimestampFormat::Auto, DateOrder::format),
        ..TracePolicies::default()
    };
    let trace = parse_trace_text(trace_path, &text, DEFAULT_TIME_COLUMN, std::slice::from_ref(&column), &policies)
        .map_err(|d| {
            let d = d.to_string();
            let hint = if d.contains("`timestamp_format: DayFirst` or `MonthFirst`") {
                " (here: --date-order day-first or month-first)"
            } else if named.is_none() && d.contains("no such column") {
                " (name the column: TRACE:COLUMN)"
            } else {
                ""
            };
            anyhow!("{d}{hint}")
        })?;
    let name = match &opts.name {
        Some(n) => n.clone(),
        None => {
            let stem = trace_path.file_stem().and_then(|s| s.to_str()).unwrap_or("trace");
            stem.strip_suffix(".csv").unwrap_or(stem).replace(['.', ' '], "-")
        }
    };
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
        bail!("--name: '{name}' is no file name (letters, digits, '-' and '_')");
    }
    let scenario_path = opts.out.join(format!("{name}.ron"));
    let experiment_path = opts.out.join(format!("{name}-fight.ron"));
    if !opts.force {
        let existing: Vec<String> =
            [&scenario_path, &experiment_path].iter().filter(|p| p.exists()).map(|p| p.display().to_string()).collect();
        if !existing.is_empty() {
            let verb = if existing.len() == 1 { "exists" } else { "exist" };
            bail!("{} {verb}; --force replaces them", existing.join(" and "));
        }
    }
    let plan = Plan::of(&trace, opts.meaning)?;
    std::fs::create_dir_all(&opts.out).with_context(|| format!("creating {}", opts.out.display()))?;
    let trace_ref = relative_to(&opts.out, trace_path)?;
    // First at a provisional fleet, to size it with validate's own sizing; then at that size.
    let draft = scenario_text(opts, &name, &trace_ref, &column, &trace, &plan, (2, 100_000));
    let mut sizing = load_scenario_text(&scenario_path, &draft)
        .and_then(|l| l.prepare(l.config.seed))
        .map_err(|d| anyhow!("the scaffolded scenario does not load (a bug): {}", diagnostics(&d)))?
        .sizing()
        .ok_or_else(|| anyhow!("the scaffolded scenario has no scaling type (a bug)"))?;
    let [mean, _, peak] = sizing.instances;
    let peak = peak.ok_or_else(|| anyhow!("the trace's peak rate needs more instances than prescale sizes"))?;
    let fleet = (mean.unwrap_or(2).max(2), (2 * peak).max(20));
    let scenario = scenario_text(opts, &name, &trace_ref, &column, &trace, &plan, fleet);
    // The fleet's limits change nothing else the sizing reads; the experiment's check below loads the scenario
    // as written.
    sizing.max_count = fleet.1;
    let sized = sizing.summary();
    let experiment = experiment_text(&name, &plan, fleet);
    // The experiment loads its scenario from its file: both are written under temporary names, the experiment
    // checked against the temporary scenario, and renamed last.
    let tmp = |p: &Path, stem: &str| p.with_file_name(format!(".{stem}.scaffold-{}.ron", std::process::id()));
    let (tmp_s, tmp_e) = (tmp(&scenario_path, &name), tmp(&experiment_path, &format!("{name}-fight")));
    let written = || -> Result<usize> {
        std::fs::write(&tmp_s, &scenario).with_context(|| format!("writing {}", tmp_s.display()))?;
        let tmp_name = tmp_s.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let probe = experiment.replace(&format!("[\"{name}.ron\"]"), &format!("[\"{tmp_name}\"]"));
        let runs = crate::lab::experiment::load_experiment_text(&experiment_path, &probe, Path::new("results"))
            .map_err(|d| anyhow!("the scaffolded experiment does not load (a bug): {}", diagnostics(&d)))?
            .cells
            .len();
        std::fs::write(&tmp_e, &experiment).with_context(|| format!("writing {}", tmp_e.display()))?;
        std::fs::rename(&tmp_s, &scenario_path).with_context(|| format!("writing {}", scenario_path.display()))?;
        std::fs::rename(&tmp_e, &experiment_path).with_context(|| format!("writing {}", experiment_path.display()))?;
        Ok(runs)
    };
    let runs = written().inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp_s);
        let _ = std::fs::remove_file(&tmp_e);
    })?;
    let mut summary = String::new();
    writeln!(summary, "trace: {}", trace.report.summary())?;
    writeln!(
        summary,
        "wrote {} (column '{column}' as {}, amplitude_scale {}; sizing: {sized})",
        scenario_path.display(),
        opts.meaning.ron(),
        fmt_num(plan.amplitude)
    )?;
    writeln!(summary, "wrote {} ({runs} runs and one GRU training)", experiment_path.display())?;
    writeln!(summary, "next:\n  prescale validate {} {}", scenario_path.display(), experiment_path.display())?;
    write!(
        summary,
        "  prescale sweep {} --batch-runs && prescale plot results/{name}-fight",
        experiment_path.display()
    )?;
    Ok(Scaffolded { scenario: scenario_path, experiment: experiment_path, summary })
}

/// The numbers the files are written with.
#[derive(Clone, Debug)]
struct Plan {
    /// `amplitude_scale`.
    amplitude: f64,
    /// Warm history before the scored period, seconds.
    history_s: f64,
    /// Whether the trace spans two weeks (the GRU then also sees the day of the week).
    weeks: bool,
    /// The rate's 99th percentile before the amplitude, per second.
    raw_p99_per_s: f64,
}

impl Plan {
    fn of(trace: &Trace, meaning: Meaning) -> Result<Plan> {
        let r = &trace.report;
        let span_s = r.span_s;
        let tested_steps = 0.3 * span_s / STEP_S;
        if tested_steps < 60.0 || span_s * 0.7 / STEP_S < 240.0 {
            bail!(
                "the trace spans {:.1} h: too short to learn from its first 70 % (at least 4 h of one-minute steps) \
                 and score its last 30 % (at least 1 h)",
                span_s / 3600.0
            );
        }
        let mut rates: Vec<f64> =
            trace.columns[0].iter().map(|&v| meaning.rate_per_s(v, r.nominal_interval_s)).collect();
        prescale_sim::stats::sort_samples(&mut rates);
        let p99 = prescale_sim::stats::nearest_rank(&rates, 0.99);
        if p99 <= 0.0 || p99.is_nan() {
            bail!("the trace's 99th percentile is 0: no demand to scale a fleet to");
        }
        let amplitude = nice(target_rate_per_s() / p99);
        let day = 86_400.0;
        let history_s =
            if span_s >= 10.0 * day { 2.0 * day } else { ((0.1 * span_s / 3600.0).floor() * 3600.0).max(3600.0) };
        Ok(Plan { amplitude, history_s, weeks: span_s >= 14.0 * day, raw_p99_per_s: p99 })
    }
}

/// The largest rate at which the scaffold's SLO (p99 ≤ 0.5 s, 0.1 s requests on 4 cores an instance) needs at
/// most [`TARGET_P99_INSTANCES`] instances, per second (bisection on validate's sizing).
fn target_rate_per_s() -> f64 {
    let need = |r: f64| instances_for_slo(r, 10.0, 4, 0, 0.99, 0.5).unwrap_or(u32::MAX);
    let (mut lo, mut hi) = (0.0, 40.0 * f64::from(TARGET_P99_INSTANCES));
    for _ in 0..60 {
        let mid = 0.5 * (lo + hi);
        if need(mid) <= TARGET_P99_INSTANCES { lo = mid } else { hi = mid }
    }
    lo
}

/// The 1-2-5 number nearest to `x` in ratio.
fn nice(x: f64) -> f64 {
    // Parsed from decimal text, so that the number prints as it reads (0.005, not 0.005000000000000001).
    let exponent = x.log10().floor() as i32;
    [1, 2, 5, 10]
        .iter()
        .filter_map(|m| format!("{m}e{exponent}").parse::<f64>().ok())
        .min_by(|a, b| (a / x).ln().abs().total_cmp(&(b / x).ln().abs()))
        .unwrap_or(1.0)
}

/// A number as RON writes a float: `2.0`, `0.005`, `2000.0`.
fn fmt_num(x: f64) -> String {
    let s = format!("{x}");
    if s.contains(['.', 'e', 'E']) { s } else { format!("{s}.0") }
}

fn scenario_text(
    opts: &Options,
    name: &str,
    trace_ref: &str,
    column: &str,
    trace: &Trace,
    plan: &Plan,
    (initial, max): (u32, u32),
) -> String {
    let r = &trace.report;
    let meaning = opts.meaning;
    // The policies the trace needs beyond the defaults, each with its reason.
    let mut notes = String::new();
    let mut policies = Vec::new();
    if let Some(order) = opts.date_order {
        policies.push(format!("timestamp_format: {:?}", order.format()));
    }
    if r.missing_rows > 0 {
        let _ = write!(
            notes,
            "\n        // {} rows hold a missing value: dropped, and the holes they leave filled as gaps.",
            r.missing_rows
        );
        policies.push("missing: Drop".into());
    }
    let missing =
        if policies.is_empty() { notes } else { format!("{notes}\n        policies: ({}),", policies.join(", ")) };
    let zeros = if r.zero_runs > 0 {
        format!(
            "\n        // {} runs of zeros ({} rows): outages or collector drop-outs? `policies: (zero_runs: Missing)` \
             drops them.",
            r.zero_runs, r.zero_run_rows
        )
    } else {
        String::new()
    };
    format!(
        r#"// Scaffolded by `prescale scaffold` from {trace_ref} ({rows} rows, {format} timestamps in column '{tcol}',
// every {interval} s, {days:.1} days). The test period is the trace's last 30 %, after a warm history; the
// experiment {name}-fight.ron learns from the first 70 %. The amplitude makes the SLO need about {target}
// instances at the rate's 99th percentile ({p99:.4} per second as read); change it, the instance type or the
// SLO as your case asks, and check with `prescale validate` (it prints the sizing).
Scenario(
    name: "{name}",
    description: "{name}: last 30 % of the trace after a warm history (scaffolded)",
    seed: 1,
    step_s: {step},
    history_s: {history},
    fidelity: Fluid,
    workload: Trace(
        path: "{trace_ref}",
        timestamp_column: "{tcol}",
        metrics: [(column: "{column}", meaning: {meaning})],{missing}{zeros}
        amplitude_scale: {amplitude},
        slice: Fraction(from: 0.7, to: 1.0),
    ),
    service: (mean_service_s: 0.1, cores_per_request: 1.0, memory_gib_per_request: 0.25),
    cluster: (
        instance_types: [
            (
                name: "m5.xlarge",
                capacity: (cpu_cores: 4, memory_gib: 16, storage_gib: 100, network_gbps: 10),
                price_usd_per_hour: {price},
                provisioning_delay: LogNormal(median_s: 120, sigma: 0.25),
                warmup_s: 60,
                warmup_capacity_fraction: 0.5,
                initial_count: {initial},
                min_count: 2,
                max_count: {max},
            ),
        ],
        scaling_type: "m5.xlarge",
    ),
    slo: (latency_quantile: 0.99, latency_threshold_s: 0.5),
    controller: Hpa(target_utilisation: 0.6, min_replicas: 2, max_replicas: {max}),
)
"#,
        rows = r.rows,
        format = r.timestamp_format,
        tcol = r.timestamp_column,
        interval = r.nominal_interval_s,
        days = r.span_s / 86_400.0,
        p99 = plan.raw_p99_per_s,
        target = TARGET_P99_INSTANCES,
        step = fmt_num(STEP_S),
        history = fmt_num(plan.history_s),
        meaning = meaning.ron(),
        amplitude = fmt_num(plan.amplitude),
        price = fmt_num(INSTANCE_PRICE_USD_PER_HOUR),
    )
}

/// The expert family's prices of a violated minute, USD (1-2-5 numbers, distinct, rising) for a fleet whose
/// mean need is `mean_instances`.
fn expert_prices(mean_instances: u32) -> Vec<f64> {
    let per_min = f64::from(mean_instances.max(1)) * INSTANCE_PRICE_USD_PER_HOUR / 60.0;
    let mut prices: Vec<f64> = EXPERT_PRICE_MULTIPLES.iter().map(|k| nice(k * per_min)).collect();
    prices.dedup();
    prices
}

fn experiment_text(name: &str, plan: &Plan, (mean, max): (u32, u32)) -> String {
    let calendar = if plan.weeks { "Rate, TimeOfDay, DayOfWeek" } else { "Rate, TimeOfDay" };
    // A daily season (on a trace shorter than a day of history it forecasts as the reactive rule until one has
    // passed).
    let seasonal = "HoltWinters(period_s: 86400, fit: true)";
    let aci = "AdaptiveConformal(alpha: 0.05, gamma: 0.005, window_s: 86400)";
    let prices: Vec<String> = expert_prices(mean).into_iter().map(fmt_num).collect();
    let (first_price, prices) = (&prices[0], prices.join(", "));
    format!(
        r#"// Scaffolded by `prescale scaffold`: the fair fight (experiments/fair-fight/README.md) on {name}.ron —
// each controller family swept over its aggressiveness knob, read at equal cost against the Kubernetes HPA and
// at equal SLO minutes against the hindsight expert (report.md): at the hard expert's minutes ("The cost
// floor") and at each point of its frontier, the expert planning at a price of a violated minute from half to
// a thousand times what the mean fleet costs a minute ("The expert's frontier"). A GRU forecaster is trained
// first on the trace's first 70 % (the stage "gru").
//
//   prescale sweep {name}-fight.ron --batch-runs && prescale plot results/{name}-fight
Experiment(
    name: "{name}-fight",
    description: "HPA vs predictive families vs the hindsight expert at equal cost on {name}",
    scenarios: ["{name}.ron"],
    axes: [],
    training: [
        (name: "gru", slice: Fraction(from: 0.0, to: 0.7), task: Forecast,
         model: (architecture: Gru(hidden: 32), inputs: [{calendar}], window_steps: 60, horizon_steps: 10, output: Gaussian),
         training: (max_epochs: 15, batch_size: 256, learning_rate: 0.003, patience: 4, seed: 1, max_batches_per_epoch: 60)),
    ],
    controllers: [
        (name: "hpa", controller: Hpa(target_utilisation: 0.6, min_replicas: 2, max_replicas: {max}),
         knob: (values: [0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9])),
        (name: "last-value-aci", controller: Predictive(predictor: LastValue, variance: {aci},
            allocator: (target_utilisation: 0.6)), knob: (values: [0.4, 0.5, 0.6, 0.7, 0.8, 0.9])),
        (name: "holt-winters-aci", controller: Predictive(predictor: {seasonal}, variance: {aci},
            allocator: (target_utilisation: 0.6)), knob: (values: [0.4, 0.5, 0.6, 0.7, 0.8, 0.9])),
        (name: "gru-aci", controller: Predictive(predictor: Neural(model: "@gru"), variance: {aci},
            allocator: (target_utilisation: 0.6)), knob: (values: [0.4, 0.5, 0.6, 0.7, 0.8, 0.9])),
        (name: "expert", controller: HindsightExpert),
        (name: "expert-priced", controller: PricedHindsightExpert(violation_price_usd_per_min: {first_price}),
         knob: (values: [{prices}])),
    ],
    seeds: [1, 2, 3],
    baseline: "hpa-0.6",
)
"#
    )
}

/// `target` as a path from the folder `from` (relative when both resolve, else absolute).
fn relative_to(from: &Path, target: &Path) -> Result<String> {
    let target = target.canonicalize().with_context(|| format!("resolving {}", target.display()))?;
    let from = from.canonicalize().with_context(|| format!("resolving {}", from.display()))?;
    let (t, f): (Vec<Component>, Vec<Component>) = (target.components().collect(), from.components().collect());
    let common = t.iter().zip(&f).take_while(|(a, b)| a == b).count();
    if common <= 1 {
        return Ok(target.display().to_string());
    }
    let mut rel = PathBuf::new();
    for _ in common..f.len() {
        rel.push("..");
    }
    for c in &t[common..] {
        rel.push(c);
    }
    let s = rel.display().to_string();
    if s.contains('"') || s.contains('\\') {
        bail!("the trace's path {s} holds a quote or a backslash, which a RON string would have to escape");
    }
    Ok(s)
}

fn diagnostics(d: &[crate::files::scenario_io::Diagnostic]) -> String {
    d.iter().map(|x| x.to_string()).collect::<Vec<_>>().join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nice_numbers_are_the_nearest_one_two_five() {
        assert_eq!(nice(1.0), 1.0);
        assert_eq!(nice(2.9), 2.0);
        assert_eq!(nice(3.3), 5.0);
        assert_eq!((nice(0.0065), nice(0.0072)), (0.005, 0.01));
        assert_eq!(fmt_num(nice(0.0065)), "0.005");
        assert_eq!(nice(1700.0), 2000.0);
        assert_eq!(nice(8.0), 10.0);
    }

    #[test]
    fn the_target_rate_needs_the_target_instances_and_a_little_more_needs_more() {
        let r = target_rate_per_s();
        assert_eq!(instances_for_slo(r, 10.0, 4, 0, 0.99, 0.5), Some(TARGET_P99_INSTANCES));
        assert_eq!(instances_for_slo(r * 1.001, 10.0, 4, 0, 0.99, 0.5), Some(TARGET_P99_INSTANCES + 1));
    }

    #[test]
    fn ron_floats_keep_their_point() {
        assert_eq!(fmt_num(2000.0), "2000.0");
        assert_eq!(fmt_num(0.005), "0.005");
        assert_eq!(fmt_num(60.0), "60.0");
    }
}
