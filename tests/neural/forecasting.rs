//! `prescale forecast-eval` and the global model trained across series.

use super::*;

/// `forecast-eval` takes the models and the epochs to run, writes its report after every trace, and names
/// the known models when given an unknown one.
#[test]
fn forecast_eval_takes_models_and_epochs() {
    let d = tempfile::tempdir().unwrap();
    let trace = common::repo().join("scenarios/traces/nab_elb_request_count_8c0756.csv");
    let out = d.path().join("eval.md");
    let o = prescale(&[
        "forecast-eval",
        trace.to_str().unwrap(),
        "--models",
        "seasonal-naive,mlp",
        "--epochs",
        "1",
        "--out",
        out.to_str().unwrap(),
        "--csv",
        d.path().join("eval.csv").to_str().unwrap(),
        "--quiet",
    ]);
    assert!(o.status.success(), "{}", text(&o).1);
    let md = std::fs::read_to_string(&out).unwrap();
    assert!(md.contains("| seasonal naive |") && md.contains("| mlp |"), "{md}");
    // The same figures as a table: one row per model and horizon, MASE = MAE / the scale the report states.
    let csv = std::fs::read_to_string(d.path().join("eval.csv")).unwrap();
    let mut lines = csv.lines();
    assert_eq!(lines.next(), Some("trace,model,source,horizon_steps,mae,mase,fit_s"));
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    assert_eq!(rows.iter().filter(|r| r[2] == "prescale").count(), 2 * 3, "{csv}");
    let sn1 = rows.iter().find(|r| r[1] == "seasonal naive" && r[3] == "1").expect("seasonal naive at h=1");
    let (mae, mase): (f64, f64) = (sn1[4].parse().unwrap(), sn1[5].parse().unwrap());
    let md_row = md.lines().find(|l| l.starts_with("| seasonal naive |")).unwrap();
    assert!(
        md_row.contains(&format!("| {mae:.4} |")) && md_row.contains(&format!("| {mase:.3} |")),
        "{md_row} vs {sn1:?}"
    );
    assert!(!md.contains("| gru |") && !md.contains("Holt-Winters (fitted)"), "{md}");
    // Refitted at every origin as the peers do, at chosen horizons: the seasonal naive forecast reads one
    // season back whatever the refit, so its row is the same; the columns are the horizons asked for.
    let every = d.path().join("every.md");
    let o = prescale(&[
        "forecast-eval",
        trace.to_str().unwrap(),
        "--models",
        "seasonal-naive,holt-winters,mlp",
        "--epochs",
        "1",
        "--refit",
        "every-origin",
        "--horizons",
        "1,5,15",
        "--out",
        every.to_str().unwrap(),
        "--quiet",
    ]);
    assert!(o.status.success(), "{}", text(&o).1);
    let every = std::fs::read_to_string(&every).unwrap();
    let row = |md: &str, model: &str| {
        md.lines()
            .find(|l| l.starts_with(&format!("| {model} |")))
            .map(|l| l.rsplitn(3, " | ").nth(2).unwrap().to_string())
    };
    assert_eq!(row(&md, "seasonal naive"), row(&every, "seasonal naive"), "{md}\n{every}");
    assert!(every.contains("Refitted at every origin") && every.contains("| Holt-Winters (fitted) |"), "{every}");
    // Fine-tuned at every origin, beside a network scaled by its window's level: the classical rows are those
    // of a single fit.
    let tuned = d.path().join("tuned.md");
    let o = prescale(&[
        "forecast-eval",
        trace.to_str().unwrap(),
        "--models",
        "seasonal-naive,mlp,mlp-window",
        "--epochs",
        "1",
        "--refit",
        "fine-tune",
        "--fine-tune-steps",
        "5",
        "--out",
        tuned.to_str().unwrap(),
        "--quiet",
    ]);
    assert!(o.status.success(), "{}", text(&o).1);
    let tuned = std::fs::read_to_string(&tuned).unwrap();
    assert!(tuned.contains("fine-tuned at every origin (5 Adam steps") && tuned.contains("| mlp-window |"), "{tuned}");
    assert_eq!(row(&md, "seasonal naive"), row(&tuned, "seasonal naive"), "{md}\n{tuned}");
    let o = prescale(&["forecast-eval", trace.to_str().unwrap(), "--refit", "fine-tune", "--fine-tune-steps", "0"]);
    assert!(text(&o).1.contains("--fine-tune-steps: must be 1 to 10000, got 0"), "{}", text(&o).1);
    let o = prescale(&[
        "forecast-eval",
        trace.to_str().unwrap(),
        "--models",
        "seasonal-naive",
        "--horizons",
        "1,30",
        "--quiet",
    ]);
    assert!(text(&o).0.contains("| model | MAE h=1 | MAE h=30 | MASE h=1 | MASE h=30 |"), "{}", text(&o).0);
    let o = prescale(&["forecast-eval", trace.to_str().unwrap(), "--horizons", "5,1", "--quiet"]);
    assert!(text(&o).1.contains("--horizons: steps ahead, increasing"), "{}", text(&o).1);
    let bad = prescale(&["forecast-eval", trace.to_str().unwrap(), "--models", "prophet", "--quiet"]);
    assert_ne!(bad.status.code(), Some(0));
    assert!(text(&bad).1.contains("unknown model 'prophet'; known: seasonal-naive"), "{}", text(&bad).1);
}

/// MAE and MASE score absolute errors, which the median minimises: on a skewed series (a request a step, and a
/// burst of 20 one step in ten, at random) a network trained for the median (`--point median`) scores about
/// the median's error (one step in ten off by 19: MAE 1.9) and one trained for the mean (a Gaussian) about the
/// mean's (2.9: MAE 3.4). `--ensemble` averages networks from several seeds and says so.
#[test]
fn forecast_eval_scores_the_median_where_absolute_errors_count() {
    let d = tempfile::tempdir().unwrap();
    let trace = d.path().join("bursts.csv");
    let mut csv = String::from("timestamp,value\n");
    for k in 0..12 * 288u64 {
        let u = ((k as f64 * 12.9898).sin() * 43_758.545).fract().abs();
        csv += &format!("{},{}\n", 1_400_000_000 + k * 300, if u < 0.1 { 20 } else { 1 });
    }
    std::fs::write(&trace, csv).unwrap();
    let mae_h1 = |point: &str, ensemble: &str| {
        let out = d.path().join(format!("{point}-{ensemble}.md"));
        let o = prescale(&[
            "forecast-eval",
            trace.to_str().unwrap(),
            "--models",
            "mlp",
            "--epochs",
            "5",
            "--point",
            point,
            "--ensemble",
            ensemble,
            "--out",
            out.to_str().unwrap(),
            "--quiet",
        ]);
        assert!(o.status.success(), "{}", text(&o).1);
        let md = std::fs::read_to_string(&out).unwrap();
        let row = md.lines().find(|l| l.starts_with("| mlp |")).unwrap_or_else(|| panic!("{md}")).to_string();
        (row.split(" | ").nth(1).unwrap().parse::<f64>().unwrap(), md)
    };
    let (median, md) = mae_h1("median", "1");
    assert!(md.contains("the median output (pinball loss at 0.5) scored"), "{md}");
    let (mean, md) = mae_h1("mean", "1");
    assert!(md.contains("Gaussian output, its mean scored") && md.contains("seed 1,"), "{md}");
    assert!(median < 2.4 && mean > 2.9, "median-trained MAE {median}, mean-trained {mean}");
    let (two, md) = mae_h1("median", "2");
    assert!(md.contains("seeds 1..2 with their point forecasts averaged"), "{md}");
    assert!(two < 2.4, "two median networks averaged: MAE {two}");
    let o = prescale(&["forecast-eval", trace.to_str().unwrap(), "--ensemble", "0"]);
    assert!(!o.status.success() && text(&o).1.contains("--ensemble"), "{}", text(&o).1);
}

/// A daily trace as CSV (`timestamp,value`, unix seconds) at `level` and `step_s`, `days` long.
fn daily_csv(path: &Path, level: f64, step_s: u64, days: u64) {
    let mut csv = String::from("timestamp,value\n");
    for k in 0..days * 86_400 / step_s {
        let t = 1_400_000_000 + k * step_s;
        let day = (std::f64::consts::TAU * (t % 86_400) as f64 / 86_400.0).sin();
        let noise = 0.05 * ((k as f64 * 12.9898).sin() * 43_758.545).fract();
        csv += &format!("{t},{}\n", level * (1.0 + 0.5 * day + noise));
    }
    std::fs::write(path, csv).unwrap();
}

/// A global forecaster end to end: a training file names series (traces in other units and steps) instead of
/// a scenario; the model folder says how it did on each (`series.csv`); `forecast-eval --trained` scores it on
/// a trace it never saw, as it is and fine-tuned; a scenario at yet another step may use it; bad series are
/// named at their line.
#[test]
fn a_global_model_trains_on_series_and_forecasts_a_trace_it_never_saw() {
    let d = tempfile::tempdir().unwrap();
    daily_csv(&d.path().join("a.csv"), 0.3, 300, 6);
    daily_csv(&d.path().join("b.csv"), 5000.0, 3600, 30);
    let text_of = |series: &str, level: &str| {
        format!(
            r#"Train(
    name: "glob",
    series: [{series}],
    task: Forecast,
    model: (architecture: Mlp(hidden: [16]), inputs: [Rate, TimeOfDay], window_steps: 24, horizon_steps: 5, output: Gaussian, level: {level}),
    training: (max_epochs: 3, batch_size: 64, patience: 3, seed: 1, max_batches_per_epoch: 10),
)
"#
        )
    };
    let file = d.path().join("glob.ron");
    std::fs::write(&file, text_of("\"a.csv\", \"b.csv:value\"", "Window")).unwrap();
    let out = d.path().join("m");
    let o = prescale(&["train", file.to_str().unwrap(), "--out", out.to_str().unwrap(), "--quiet"]);
    assert!(o.status.success(), "{}", text(&o).1);
    let dir = out.join("glob");
    let card: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("card.json")).unwrap()).unwrap();
    assert_eq!((card["any_step"].as_bool(), card["data"]["series"].as_u64()), (Some(true), Some(2)), "{card}");
    let series = std::fs::read_to_string(dir.join("series.csv")).unwrap();
    assert!(series.starts_with("label,steps,step_s,") && series.lines().count() == 3, "{series}");
    assert!(series.contains("a [value],1728,300.0,") && series.contains("b [value],720,3600.0,"), "{series}");

    // On the ELB trace, which it never saw: as it is, and fine-tuned at every origin.
    let trace = common::repo().join("scenarios/traces/nab_elb_request_count_8c0756.csv");
    for (refit, row) in [("once", "| glob (trained) |"), ("fine-tune", "| glob (trained, fine-tuned) |")] {
        let o = prescale(&[
            "forecast-eval",
            trace.to_str().unwrap(),
            "--models",
            "seasonal-naive",
            "--horizons",
            "1,5",
            "--trained",
            dir.to_str().unwrap(),
            "--refit",
            refit,
            "--fine-tune-steps",
            "2",
            "--quiet",
        ]);
        let (so, se) = text(&o);
        assert!(o.status.success(), "{se}");
        let line = so.lines().find(|l| l.starts_with(row)).unwrap_or_else(|| panic!("no {row} in {so}"));
        let mase: Vec<f64> = line.split(" | ").skip(3).take(2).map(|c| c.parse().unwrap()).collect();
        assert!(mase.iter().all(|m| m.is_finite() && *m > 0.0), "{line}");
    }
    // Beyond its horizons: the flag and what to choose.
    let o = prescale(&[
        "forecast-eval",
        trace.to_str().unwrap(),
        "--models",
        "seasonal-naive",
        "--trained",
        dir.to_str().unwrap(),
        "--quiet",
    ]);
    assert!(text(&o).1.contains("forecasts 5 steps ahead, the evaluation's horizons reach 15"), "{}", text(&o).1);

    // A scenario stepping 60 s may use it (trained at 300 s and 3600 s: any step).
    let s = scenario(d.path(), &neural_predictive(&dir));
    let o = prescale(&["validate", s.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o).0);

    // A series that does not exist, named at its line; a global level refused at its path.
    std::fs::write(&file, text_of("\"a.csv\",\n        \"missing.csv\"", "Global")).unwrap();
    let o = prescale(&["validate", file.to_str().unwrap()]);
    let (so, _) = text(&o);
    assert!(!o.status.success(), "{so}");
    assert!(so.contains("glob.ron:4: series[1]: cannot read the trace") && so.contains("missing.csv"), "{so}");
    assert!(so.contains("model.level: a model across series needs level: Window"), "{so}");
    std::fs::write(
        &file,
        text_of("\"a.csv\"", "Window").replace("    series:", "    scenario: \"nn-test.ron\",\n    series:"),
    )
    .unwrap();
    let o = prescale(&["validate", file.to_str().unwrap()]);
    assert!(text(&o).0.contains("series: name a scenario or series, not both"), "{}", text(&o).0);

    // Balanced: each series gives at most 100 training windows (the 6-day 5-minute series had ~1,150).
    std::fs::write(
        &file,
        text_of("\"a.csv\", \"b.csv\"", "Window").replace("    task:", "    max_windows_per_series: 100,\n    task:"),
    )
    .unwrap();
    let o = prescale(&["train", file.to_str().unwrap(), "--out", out.to_str().unwrap(), "--quiet"]);
    assert!(o.status.success(), "{}", text(&o).1);
    let card: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("card.json")).unwrap()).unwrap();
    let w: Vec<u64> = card["data"]["windows"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap()).collect();
    assert!(w[0] == 200 && w[1] <= 2 * 22, "windows {w:?}: 100 training windows from each series");
    let series = std::fs::read_to_string(dir.join("series.csv")).unwrap();
    assert!(series.lines().skip(1).all(|l| l.split(',').nth(3) == Some("100")), "{series}");
    // Only a model across series is balanced.
    let one = text_of("", "Window")
        .replace("    series: [],", "    scenario: \"nn-test.ron\",\n    max_windows_per_series: 100,");
    std::fs::write(&file, one).unwrap();
    let o = prescale(&["validate", file.to_str().unwrap()]);
    assert!(
        text(&o).0.contains("max_windows_per_series: balances the series of a model across series"),
        "{}",
        text(&o).0
    );
}
