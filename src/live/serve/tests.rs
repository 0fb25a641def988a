use super::*;
use crate::live::config::Mode;

/// A good tick at Unix time 1.4e9: 4 replicas, 5 recommended and served, no diagnostics.
fn good_tick() -> Tick {
    Tick {
        t_unix_s: 1_400_000_000.0,
        now_s: 60.0,
        current_replicas: Some(4),
        controller_replicas: Some(5),
        recommended_replicas: Some(5),
        served_replicas: Some(5),
        diagnostics: None,
        fault: None,
        available: true,
        max_input_age_s: 2.0,
    }
}

#[test]
fn replay_spans_parse() {
    assert_eq!(parse_span("100..160"), Ok((100.0, 160.0)));
    assert_eq!(parse_span("2014-04-10T00:00:00Z..2014-04-10T01:00:00Z"), Ok((1397088000.0, 1397091600.0)));
    assert!(parse_span("160..100").unwrap_err().contains("FROM <= TO"));
    assert!(parse_span("yesterday").is_err());
}

/// A controller that plans memory (and network) shows each loop's forecast, margin and coverage in
/// `/metrics` (only where the configuration reads that demand) and in the replay CSV, in its own columns.
#[test]
fn per_resource_loops_are_exported() {
    use prescale_sim::controller::{DemandDiagnostics, Diagnostics};
    let memory = DemandDiagnostics { forecast: 41.5, margin: 3.25, coverage: 0.875 };
    let tick = Tick {
        diagnostics: Some(Diagnostics {
            forecast_cpu_cores: 10.0,
            margin_cpu_cores: 1.0,
            coverage: 0.9,
            memory: Some(memory),
            ..Diagnostics::default()
        }),
        ..good_tick()
    };
    let m = Metrics::new("svc", Mode::Act, true, false);
    m.update(&tick, &Counterfactual::default(), 0.001);
    let text = m.text();
    for want in [
        "prescale_memory_forecast_gib{service=\"svc\"} 41.5",
        "prescale_memory_margin_gib{service=\"svc\"} 3.25",
        "prescale_memory_coverage_ratio{service=\"svc\"} 0.875",
    ] {
        assert!(text.contains(want), "{want} in\n{text}");
    }
    assert!(!text.contains("prescale_network"), "no network query, no network gauges:\n{text}");
    let none = Metrics::new("svc", Mode::Act, false, false).text();
    assert!(!none.contains("prescale_memory") && !none.contains("prescale_network"), "{none}");

    let csv = ticks_csv(&[tick.clone(), Tick { diagnostics: None, ..tick }]);
    let lines: Vec<Vec<&str>> = csv.lines().map(|l| l.split(',').collect()).collect();
    let col = |name: &str| lines[0].iter().position(|c| *c == name).unwrap_or_else(|| panic!("{name}"));
    assert_eq!(lines[1][col("memory_forecast_gib")], "41.5");
    assert_eq!(lines[1][col("memory_margin_gib")], "3.25");
    assert_eq!(lines[1][col("memory_coverage")], "0.875");
    assert_eq!(lines[1][col("network_forecast_gbps")], "");
    assert_eq!(lines[2][col("memory_forecast_gib")], "", "no diagnostics, empty cells");
    assert!(lines.iter().all(|l| l.len() == lines[0].len()), "{csv}");
    assert_eq!(lines[1][col("recommended_replicas")], "5");
}

/// The grace is judged on the wall clock when a request comes: a tick whose successor has not finished (its
/// queries hang on a slow Prometheus) is served until the interval and the grace have passed, then refused.
#[test]
fn the_grace_holds_while_a_ticks_queries_are_in_flight() {
    let app = App {
        name: "svc".into(),
        mode: Mode::Act,
        controller: "hpa".into(),
        latest: RwLock::new(Some(good_tick())),
        counterfactual: RwLock::new(Counterfactual::default()),
        metrics: Metrics::new("svc", Mode::Act, false, false),
        loop_alive: AtomicBool::new(true),
        serve_for_s: 15.0 + 10.0,
    };
    assert_eq!(app.answer_at(1_400_000_024.0).map(|t| t.served_replicas), Ok(Some(5)), "within the grace");
    let e = app.answer_at(1_400_000_026.0).unwrap_err();
    assert!(e.contains("no tick has finished for 26 s, more than the interval and the grace (25 s)"), "{e}");
}
