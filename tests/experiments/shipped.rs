//! The shipped experiments on the shared traces: fair fight, level shift, priced expert, memory-bound, scaffold.

use super::*;

/// The fair fight of `experiments/fair-fight/` (four real traces of ../shared/traces, three delays, families
/// swept over their knobs, a trained GRU per trace) validates as shipped: every scenario, stage and
/// controller, and no stage learns from a scored period.
#[test]
fn the_fair_fight_validates_on_the_shared_traces() {
    if common::shared_traces().is_none() {
        eprintln!("skipped: ../shared/traces is not beside the repository");
        return;
    }
    validates_as_shipped(
        "experiments/fair-fight/fair-fight.ron",
        "936 runs = 4 scenario(s) x 3 axis combination(s) x 26 controller(s) x 3 seed(s); 4 training(s) first",
    );
}

/// The level-shift experiment of `experiments/level-shift/` validates as shipped, and its trace is what its
/// README says: the scored last 30 % runs at a mean at least 3x below the first 35 % its models learn from.
#[test]
fn the_level_shift_experiment_validates_and_its_trace_shifts_threefold() {
    let Some(traces) = common::shared_traces() else {
        eprintln!("skipped: ../shared/traces is not beside the repository");
        return;
    };
    validates_as_shipped(
        "experiments/level-shift/level-shift.ron",
        "138 runs = 1 scenario(s) x 1 axis combination(s) x 46 controller(s) x 3 seed(s); 3 training(s) first",
    );
    let text = std::fs::read_to_string(traces.join("nab_ec2_network_in_257a54.csv")).unwrap();
    let v: Vec<f64> = text.lines().skip(1).map(|l| l.rsplit(',').next().unwrap().parse().unwrap()).collect();
    let mean = |x: &[f64]| x.iter().sum::<f64>() / x.len() as f64;
    let n = v.len();
    let (train, test) = (mean(&v[..n * 35 / 100]), mean(&v[n * 70 / 100..]));
    assert!(train / test >= 3.0, "training mean {train}, test mean {test}");
}

/// What level adaptation can reach on that shift (`experiments/level-shift/level-oracle.ron`, README "What level
/// adaptation can reach"): a predictor told the future level exactly — it fails the run if its reading of the
/// trace disagrees with what the run observes — tracks the demand to a few percent of its mean, and yet at the
/// hindsight expert's SLO minutes it costs well over 1.3x the expert: the gap the issue's goal measures is the
/// bursts, not the level. Reduced grid: one seed, three settings.
#[test]
fn knowing_the_future_level_does_not_bring_the_cost_near_the_clairvoyant_expert() {
    let Some(traces) = common::shared_traces() else {
        eprintln!("skipped: ../shared/traces is not beside the repository");
        return;
    };
    validates_as_shipped(
        "experiments/level-shift/level-oracle.ron",
        "45 runs = 1 scenario(s) x 1 axis combination(s) x 15 controller(s) x 3 seed(s)",
    );
    let dir = tempfile::tempdir().unwrap();
    let exp = format!(
        r#"Experiment(name: "level", scenarios: ["{scenario}"], axes: [],
            controllers: [
                (name: "level", controller: Predictive(
                    predictor: External(command: ["python3", "{oracle}", "{trace}", "--scale", "0.4"], timeout_s: 60),
                    variance: AdaptiveConformal(alpha: 0.05, gamma: 0.005, window_s: 86400),
                    allocator: (target_utilisation: 0.6)), knob: (values: [0.2, 0.3, 0.6])),
                (name: "expert", controller: HindsightExpert),
            ],
            seeds: [1], baseline: "level-0.6")"#,
        scenario = repo().join("experiments/level-shift/ec2-network-in.ron").display(),
        oracle = repo().join("experiments/level-shift/level_oracle.py").display(),
        trace = traces.join("nab_ec2_network_in_257a54.csv").display(),
    );
    let report = sweep_report(dir.path(), "level", &exp);
    for run in runs_csv(&dir.path().join("r/level/runs.csv")).iter().filter(|r| r["controller"].starts_with("level-")) {
        // The test period's mean demand is about 30 cores; its bursts reach 166.
        let m: f64 = run["forecast_mae_cores"].parse().unwrap();
        assert!(m < 2.0, "{}: forecast MAE {m} cores", run["controller"]);
    }
    let floor = report.split("The cost floor").nth(1).expect("the cost floor section");
    let row = floor.lines().find(|l| l.starts_with("| level |")).unwrap_or_else(|| panic!("{floor}"));
    let r =
        ratio(row.split(" | ").nth(2).unwrap()).unwrap_or_else(|| panic!("not read at the expert's minutes: {row}"));
    assert!(r > 2.0, "the level oracle at {r}x the expert's cost at its SLO minutes: {row}");
}

/// The expert's frontier (`PricedHindsightExpert` swept over its price): a dearer violated minute buys fewer
/// violated minutes for more instance cost, the dearest is the hard expert (which meets every peak it can), and
/// report.md reads another family at each point — at or above the expert's cost (it knows the future), and on
/// this shift the HPA within 1.5x of it at the cheapest point's minutes (README, level-shift: 1.13x). A negative
/// price is refused by its path.
#[test]
fn the_priced_expert_traces_the_experts_frontier_and_families_are_read_against_it() {
    if common::shared_traces().is_none() {
        eprintln!("skipped: ../shared/traces is not beside the repository");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let exp = format!(
        r#"Experiment(name: "frontier", scenarios: ["{}"], axes: [],
            controllers: [
                (name: "hpa", controller: Hpa(target_utilisation: 0.6, min_replicas: 2, max_replicas: 400), knob: (values: [0.6, 0.7, 0.8, 0.9])),
                (name: "expert", controller: HindsightExpert),
                (name: "priced", controller: PricedHindsightExpert(violation_price_usd_per_min: 1.0), knob: (values: [0.03, 0.1, 1000])),
            ],
            seeds: [1], baseline: "hpa-0.6")"#,
        repo().join("experiments/level-shift/ec2-network-in.ron").display()
    );
    let report = sweep_report(dir.path(), "frontier", &exp);
    let runs = runs_csv(&dir.path().join("r/frontier/runs.csv"));
    let point = |name: &str| {
        let r = runs.iter().find(|r| r["controller"] == name).unwrap_or_else(|| panic!("no run of {name}"));
        (r["slo_violation_minutes"].parse::<f64>().unwrap(), r["cost_usd"].parse::<f64>().unwrap())
    };
    let (cheap, mid, dear, hard) = (point("priced-0.03"), point("priced-0.1"), point("priced-1000"), point("expert"));
    assert!(cheap.0 > mid.0 && mid.0 > dear.0, "minutes fall as the price rises: {cheap:?} {mid:?} {dear:?}");
    assert!(cheap.1 < mid.1 && mid.1 < dear.1, "cost rises with the price: {cheap:?} {mid:?} {dear:?}");
    assert_eq!(dear.0, hard.0, "at a price no instance outweighs, the priced expert is the hard one");
    assert!((dear.1 - hard.1).abs() <= 1e-9 * hard.1, "{dear:?} vs {hard:?}");

    let section = report.split("The expert's frontier: `priced`").nth(1).expect("the expert's frontier section");
    let rows: Vec<&str> = section.lines().filter(|l| l.starts_with("| hpa |")).collect();
    assert_eq!(rows.len(), 3, "one row per point of the frontier: {section}");
    for r in &rows {
        if let Some(x) = ratio(r.split(" | ").nth(5).unwrap()) {
            assert!(x >= 1.0, "a family under the clairvoyant expert's frontier: {r}");
        }
    }
    let at_cheap = rows.iter().find(|r| r.contains("| priced-0.03 |")).unwrap();
    let x = ratio(at_cheap.split(" | ").nth(5).unwrap()).unwrap_or_else(|| panic!("not read: {at_cheap}"));
    assert!(x < 1.5, "the HPA at {x}x the expert at the expert's {} minutes: {at_cheap}", cheap.0);

    let bad = exp.replace("knob: (values: [0.03, 0.1, 1000])", "knob: (values: [-0.5])");
    std::fs::write(dir.path().join("bad.ron"), bad).unwrap();
    let o = prescale(&["validate", dir.path().join("bad.ron").to_str().unwrap()]);
    let (out, err) = text(&o);
    assert!(!o.status.success(), "{out}");
    assert!(
        format!("{out}{err}").contains("controllers[2].knob.values[0]") && format!("{out}{err}").contains(">= 0"),
        "{out}{err}"
    );
}

/// Issue 13's level-shift goal, end to end on one seed (`experiments/level-shift/README.md`, "Read on the
/// expert's frontier"): the window-level GRU trained for the median on the busy first 35 % of the EC2 trace
/// (about 6 s), run on the quiet last 30 % (3.3x lower) with a conformal margin, costs at most 1.3x the
/// hindsight expert at equal SLO minutes — read at the expert's point near 90 minutes (priced at 0.03 USD a
/// violated minute), which its settings 0.85–0.9 bracket (README: 1.23x, measured at 0.875 directly).
#[test]
fn after_a_threefold_level_shift_the_median_gru_costs_within_1_3x_of_the_expert_at_equal_slo_minutes() {
    let Some(traces) = common::shared_traces() else {
        eprintln!("skipped: ../shared/traces is not beside the repository");
        return;
    };
    assert!(traces.join("nab_ec2_network_in_257a54.csv").exists());
    let dir = tempfile::tempdir().unwrap();
    let exp = format!(
        r#"Experiment(name: "shift", scenarios: ["{}"], axes: [],
            training: [
                (name: "gru-window-median", slice: Fraction(from: 0.0, to: 0.35), task: Forecast,
                 model: (architecture: Gru(hidden: 32), inputs: [Rate, TimeOfDay], window_steps: 60, horizon_steps: 6, output: Quantiles([0.5]), level: Window),
                 training: (max_epochs: 15, batch_size: 256, learning_rate: 0.003, patience: 4, seed: 1, max_batches_per_epoch: 60)),
            ],
            controllers: [
                (name: "gru", controller: Predictive(predictor: Neural(model: "@gru-window-median"),
                    variance: AdaptiveConformal(alpha: 0.05, gamma: 0.005, window_s: 86400),
                    allocator: (target_utilisation: 0.6)), knob: (values: [0.85, 0.9])),
                (name: "expert", controller: PricedHindsightExpert(violation_price_usd_per_min: 0.03), knob: (values: [0.03, 0.5])),
            ],
            seeds: [1], baseline: "gru-0.85")"#,
        repo().join("experiments/level-shift/ec2-network-in.ron").display()
    );
    let report = sweep_report(dir.path(), "shift", &exp);
    let section = report.split("The expert's frontier: `expert`").nth(1).expect("the expert's frontier section");
    let row = section.lines().find(|l| l.starts_with("| gru |") && l.contains("| expert-0.03 |")).unwrap();
    let r = ratio(row.split(" | ").nth(5).unwrap()).unwrap_or_else(|| panic!("the GRU is not read there: {row}"));
    assert!((1.0..=1.3).contains(&r), "the median GRU at {r}x the expert at equal SLO minutes: {row}");
}

/// `prescale validate FILE` succeeds and states `plan` (runs and trainings).
fn validates_as_shipped(file: &str, plan: &str) {
    let o = prescale(&["validate", file]);
    let (out, _) = text(&o);
    assert!(o.status.success() && out.contains(plan), "{file}: {out}");
}

/// The fair fight's claim on the NASA HTTP trace, end to end on a reduced grid (one delay, one seed, no
/// training): Holt-Winters + conformal margin, read on its cost–SLO frontier at the HPA's own costs, has at most
/// half the HPA's SLO-violation minutes (experiments/fair-fight/README.md measures 0.07–0.14), and no family
/// undercuts the hindsight expert's cost at the expert's SLO minutes.
#[test]
fn on_nasa_http_prediction_beats_the_hpa_at_equal_cost() {
    if common::shared_traces().is_none() {
        eprintln!("skipped: ../shared/traces is not beside the repository");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let exp = format!(
        r#"Experiment(name: "nasa", scenarios: ["{}"],
            axes: [(path: "cluster.instance_types[0].provisioning_delay", values: ["LogNormal(median_s: 120, sigma: 0.25)"])],
            controllers: [
                (name: "hpa", controller: Hpa(target_utilisation: 0.6, min_replicas: 2, max_replicas: 400), knob: (values: [0.4, 0.5, 0.6, 0.7])),
                (name: "hw", controller: Predictive(predictor: HoltWinters(period_s: 86400, fit: true),
                    variance: AdaptiveConformal(alpha: 0.05, gamma: 0.005, window_s: 86400), allocator: (target_utilisation: 0.6)),
                 knob: (values: [0.5, 0.6, 0.7, 0.8, 0.9])),
                (name: "expert", controller: HindsightExpert),
            ],
            seeds: [1], baseline: "hpa-0.6")"#,
        repo().join("experiments/fair-fight/nasa-http.ron").display()
    );
    let report = sweep_report(dir.path(), "nasa", &exp);
    let section = report.split("Equal-cost comparison with the `hpa` family").nth(1).expect("the section");
    let (section, floor) = section.split_once("The cost floor").expect("the cost floor");
    let read_at = slo_ratios_at_equal_cost(section, "hw");
    assert!(!read_at.is_empty(), "the frontier is read at some HPA setting: {section}");
    assert!(read_at.iter().all(|r| *r <= 0.5), "SLO minutes at equal cost over 0.5x the HPA's: {read_at:?}\n{section}");
    for l in floor.lines().filter(|l| l.starts_with("| hpa |") || l.starts_with("| hw |")) {
        if let Some(r) = ratio(l.split(" | ").nth(2).unwrap()) {
            assert!(r >= 1.0, "a family under the clairvoyant expert's cost: {l}");
        }
    }
}

/// The memory- and network-bound experiments of `experiments/multi-resource/` validate as shipped (their two
/// training stages, one with targets [Rate, Memory] or [Rate, Network], bound to the scenario's stated
/// demand), and the memory-bound claim holds on a reduced grid without training: the classical multi-resource
/// family (a second Holt-Winters for the memory, its own margin), read at the rate-only family's costs, has at
/// most half its SLO-violation minutes (experiments/multi-resource/README.md measures 0.0009x). The sweep runs
/// from another folder with a relative `--out`, as a user would.
#[test]
fn on_a_memory_bound_trace_the_multi_resource_agent_beats_the_rate_only_one_at_equal_cost() {
    if common::shared_traces().is_none() {
        eprintln!("skipped: ../shared/traces is not beside the repository");
        return;
    }
    let plan = "102 runs = 1 scenario(s) x 1 axis combination(s) x 34 controller(s) x 3 seed(s); 2 training(s) first";
    validates_as_shipped("experiments/multi-resource/memory-bound.ron", plan);
    validates_as_shipped("experiments/multi-resource/network-bound.ron", plan);
    validates_as_shipped(
        "experiments/multi-resource/bc-memory.ron",
        "38 runs = 1 scenario(s) x 1 axis combination(s) x 19 controller(s) x 2 seed(s); 9 training(s) first",
    );
    // A stage's model, with a relative results folder, is where the sweep trains it (relative to where the
    // command runs), not below the experiment's folder.
    let e = load_experiment(&repo().join("experiments/multi-resource/memory-bound.ron"), Path::new("results")).unwrap();
    let models = std::env::current_dir().unwrap().join("results/memory-bound/models");
    let cell = e.cells.iter().find(|c| c.controller == "gru-mem-0.6").expect("a gru-mem cell");
    let model = cell.scenario.config.controller.model().expect("a model").to_string();
    assert!(Path::new(&model).starts_with(&models), "{model} is not under {}", models.display());
    let dir = tempfile::tempdir().unwrap();
    let predictive = |memory: &str| {
        format!(
            "Predictive(predictor: HoltWinters(period_s: 86400, fit: true), variance: AdaptiveConformal(alpha: 0.05, \
             gamma: 0.005, window_s: 86400), allocator: (target_utilisation: 0.6){memory})"
        )
    };
    let exp = format!(
        r#"Experiment(name: "mem", scenarios: ["{}"],
            controllers: [
                (name: "rate-only", controller: {}, knob: (values: [0.3, 0.4, 0.5, 0.6])),
                (name: "mem", controller: {}, knob: (values: [0.6, 0.8, 0.9, 0.95])),
            ],
            seeds: [1], baseline: "rate-only-0.5")"#,
        repo().join("experiments/multi-resource/alibaba-memory.ron").display(),
        predictive(", memory: FromRate"),
        predictive("")
    );
    let file = dir.path().join("mem.ron");
    std::fs::write(&file, exp).unwrap();
    let o = std::process::Command::new(crate::common::exe("prescale"))
        .args(["sweep", file.to_str().unwrap(), "--quiet", "--out", "r"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o).1);
    let report = read(dir.path().join("r/mem/report.md"));
    let section = report.split("Equal-cost comparison with the `rate-only` family").nth(1).expect("the section");
    let read_at = slo_ratios_at_equal_cost(section, "mem");
    assert!(!read_at.is_empty(), "the frontier is read at some rate-only setting: {section}");
    assert!(read_at.iter().all(|r| *r <= 0.5), "SLO minutes at equal cost over 0.5x the rate-only's: {read_at:?}");
}

/// `prescale scaffold` on a trace as an exporter writes it (semicolons, unix milliseconds, a hole, a run of
/// zeros): two files that validate, a scenario sized by validate's own sizing around the scaffold's target, that
/// runs; nothing overwritten without `--force`; a trace too short or without demand refused by name.
#[test]
fn a_new_trace_is_scaffolded_into_a_scenario_and_a_fight_that_validate_and_run() {
    let d = tempfile::tempdir().unwrap();
    // Five days at five minutes: a daily cycle, one empty cell, an hour of zeros.
    let mut csv = String::from("time_ms;rps\n");
    for i in 0..1440u64 {
        let t_ms = 1_700_000_000_000 + 300_000 * i;
        let day = (i % 288) as f64 / 288.0;
        let v = 50.0 + 30.0 * (2.0 * std::f64::consts::PI * day).sin() + (i % 7) as f64;
        let cell = match i {
            100 => String::new(),
            500..=511 => "0".to_string(),
            _ => format!("{v:.2}"),
        };
        csv.push_str(&format!("{t_ms};{cell}\n"));
    }
    std::fs::write(d.path().join("exported.csv"), &csv).unwrap();
    let out = d.path().join("cfg");
    let args = |extra: &[&str]| {
        let mut a: Vec<String> =
            vec!["scaffold".into(), d.path().join("exported.csv").to_str().unwrap().into(), "--out".into()];
        a.push(out.to_str().unwrap().to_string());
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };
    let run = |a: Vec<String>| prescale(&a.iter().map(String::as_str).collect::<Vec<_>>());
    let o = run(args(&["--meaning", "requests-per-second"]));
    let (stdout, stderr) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{stdout}{stderr}");
    for needle in [
        "unix-milliseconds timestamps (column 'time_ms'), nominal interval 300 s",
        "rows with a missing value 1 (dropped)",
        "column 'rps' as RequestsPerSecond, amplitude_scale ",
        "runs and one GRU training",
        "prescale sweep ",
    ] {
        assert!(stdout.contains(needle), "'{needle}' missing from: {stdout}");
    }
    let (scenario, fight) = (out.join("exported.ron"), out.join("exported-fight.ron"));
    // 26 controllers (three families of six settings, the HPA's seven, the hard expert) and the expert's
    // frontier: five or six prices (two multiples may round to one 1-2-5 number), rising; three seeds each.
    let fight_text = std::fs::read_to_string(&fight).unwrap();
    let prices: Vec<f64> = fight_text
        .split("PricedHindsightExpert(")
        .nth(1)
        .and_then(|t| t.split("values: [").nth(1))
        .and_then(|t| t.split(']').next())
        .unwrap_or_else(|| panic!("no expert's frontier in {fight_text}"))
        .split(", ")
        .map(|v| v.parse().unwrap())
        .collect();
    assert!((5..=6).contains(&prices.len()) && prices.windows(2).all(|w| w[0] < w[1]), "{prices:?}");
    let runs = 3 * (26 + prices.len());
    assert!(stdout.contains(&format!("({runs} runs and one GRU training)")), "{runs} runs: {stdout}");
    let scenario_text = std::fs::read_to_string(&scenario).unwrap();
    assert!(scenario_text.contains("policies: (missing: Drop)"), "{scenario_text}");
    assert!(scenario_text.contains("1 runs of zeros (12 rows)"), "{scenario_text}");
    assert!(scenario_text.contains("path: \"../exported.csv\""), "relative to the scenario: {scenario_text}");
    // Both validate; the p99 rate needs about the target (a 1-2-5 amplitude: within a factor of 1.6 of it).
    let v = prescale(&["validate", scenario.to_str().unwrap(), fight.to_str().unwrap()]);
    let (vout, verr) = text(&v);
    assert_eq!(v.status.code(), Some(0), "{vout}{verr}");
    assert!(!vout.contains("warning"), "{vout}");
    let p99_need: u32 = vout
        .split("the SLO needs ")
        .nth(1)
        .and_then(|s| s.split(" / ").nth(1))
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or_else(|| panic!("no sizing in: {vout}"));
    let target = prescale::lab::scaffold::TARGET_P99_INSTANCES as f64;
    assert!((target / 1.6..=target * 1.6).contains(&(p99_need as f64)), "p99 needs {p99_need}: {vout}");
    // The scenario runs as it is.
    let r =
        prescale(&["run", scenario.to_str().unwrap(), "--out", d.path().join("results").to_str().unwrap(), "--quiet"]);
    assert_eq!(r.status.code(), Some(0), "{:?}", text(&r));
    // Nothing is overwritten unless asked.
    let before = std::fs::read_to_string(&fight).unwrap();
    let again = run(args(&[]));
    assert_ne!(again.status.code(), Some(0));
    assert!(text(&again).1.contains("exist; --force replaces them"), "{:?}", text(&again));
    assert_eq!(std::fs::read_to_string(&fight).unwrap(), before);
    assert_eq!(run(args(&["--force"])).status.code(), Some(0));
    // A trace too short to split, and one without demand.
    std::fs::write(d.path().join("short.csv"), "timestamp,value\n0,1\n60,2\n120,3\n").unwrap();
    std::fs::write(
        d.path().join("idle.csv"),
        (0..2000).fold("timestamp,value\n".to_string(), |s, i| s + &format!("{},0\n", 60 * i)),
    )
    .unwrap();
    for (file, needle) in [("short.csv", "too short to learn from"), ("idle.csv", "99th percentile is 0")] {
        let o = prescale(&["scaffold", d.path().join(file).to_str().unwrap(), "--out", out.to_str().unwrap()]);
        assert_ne!(o.status.code(), Some(0), "{file}");
        assert!(text(&o).1.contains(needle), "{file}: {:?}", text(&o));
    }
    // Dates written day first: refused with the flag to say so, then read as stated.
    let day_first: String = (0..1440u32).fold("Date,Requests\n".to_string(), |s, i| {
        let (day, minute) = (1 + i / 288, (i % 288) * 5);
        s + &format!("{day:02}/03/2024 {:02}:{:02},{}\n", minute / 60, minute % 60, 40 + i % 13)
    });
    std::fs::write(d.path().join("day-first.csv"), day_first).unwrap();
    let df = |extra: &[&str]| {
        let (trace, to) = (d.path().join("day-first.csv"), d.path().join("df"));
        let mut a = vec!["scaffold", trace.to_str().unwrap(), "--out", to.to_str().unwrap()];
        a.extend_from_slice(extra);
        prescale(&a)
    };
    let o = df(&[]);
    assert!(text(&o).1.contains("--date-order day-first or month-first"), "{:?}", text(&o));
    let o = df(&["--date-order", "day-first"]);
    assert_eq!(o.status.code(), Some(0), "{:?}", text(&o));
    assert!(
        text(&o).0.contains("1440 rows, day-first timestamps (column 'Date'), nominal interval 300 s"),
        "{:?}",
        text(&o)
    );
    let names: Vec<String> =
        std::fs::read_dir(&out).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    assert_eq!(names.len(), 2, "only the two files, no temporary ones: {names:?}");
}
