//! Replay parity: a recorded run replayed through Prometheus decides bit for bit as it did.

use super::*;

/// Recorded runs replay to the same decisions, forecasts and margins: cold from the first tick, and warmed
/// over the first half from the middle; for a forecasting controller and a reactive one.
#[test]
fn replays_decide_as_the_recorded_runs_did() {
    let dir = tempfile::tempdir().unwrap();
    let controllers = [
        (
            "live-ar",
            "Predictive(predictor: Ar(p: 6, window_s: 3600, refit_every_s: 600), variance: AdaptiveConformal(alpha: \
             0.05, gamma: 0.01, window_s: 3600), allocator: (target_utilisation: 0.6))",
        ),
        ("live-ref-hpa", "ReferenceHpa(target_utilisation: 0.6, min_instances: 2, max_instances: 80)"),
    ];
    let out = dir.path().join("results");
    let mut all = String::new();
    for (name, c) in controllers {
        let s = scenario(dir.path(), name, c);
        let o = prescale().args(["run", "--quiet", "--record-live", "--out"]).arg(&out).arg(&s).output().unwrap();
        let (so, se) = text(&o);
        assert!(o.status.success(), "{so}{se}");
        assert!(so.contains("recorded for live replay: 1439 ticks"), "{so}");
        let om = std::fs::read_to_string(run_dir(&out, name).join("live/observations.om")).unwrap();
        all.push_str(om.strip_suffix("# EOF\n").unwrap());
    }
    // A controller that plans memory too (its own Ar and margin for it), on a day of a trace that states a
    // memory demand beside the CPU: its memory loop replays as recorded, column for column.
    let mem = memory_scenario(dir.path());
    let o = prescale().args(["run", "--quiet", "--record-live", "--out"]).arg(&out).arg(&mem).output().unwrap();
    let (so, se) = text(&o);
    assert!(o.status.success(), "{so}{se}");
    let om = std::fs::read_to_string(run_dir(&out, "live-memory").join("live/observations.om")).unwrap();
    all.push_str(om.strip_suffix("# EOF\n").unwrap());
    all.push_str("# EOF\n");
    let om = dir.path().join("both.om");
    std::fs::write(&om, all).unwrap();
    let prom = Prometheus::start(Some(&om), &[]);
    for (name, _) in controllers {
        let live = run_dir(&out, name).join("live");
        let recorded = std::fs::read_to_string(live.join("decisions.csv")).unwrap();
        let columns = recorded.lines().next().unwrap().split(',').count();
        // Cold: every tick of the day.
        let csv = dir.path().join(format!("{name}.csv"));
        let (o, said) = replay(&live.join("serve.ron"), "60..86340", &prom.url, &csv);
        assert!(o.status.success(), "{said}");
        assert!(said.contains("1439 ticks (0 failed, 0 unavailable)"), "{said}");
        let replayed = std::fs::read_to_string(&csv).unwrap();
        assert_same_rows(
            &leading_columns(&replayed, columns),
            &leading_columns(&recorded, columns),
            &format!("{name}: cold replay"),
        );
        if name == "live-ar" {
            let forecasts = recorded.lines().skip(1).filter(|l| !l.split(',').nth(4).unwrap().is_empty()).count();
            assert!(forecasts > 1000, "the forecasting controller forecast ({forecasts} ticks)");
        }
        // Warm: the controller decides on the first 12 hours (answers discarded), then serves from 12:01.
        let serve =
            std::fs::read_to_string(live.join("serve.ron")).unwrap().replace("history_s: 0.0", "history_s: 43200.0");
        let warm_cfg = dir.path().join(format!("{name}-warm.ron"));
        std::fs::write(&warm_cfg, serve).unwrap();
        let csv = dir.path().join(format!("{name}-warm.csv"));
        let (o, said) = replay(&warm_cfg, "43260..86340", &prom.url, &csv);
        assert!(o.status.success(), "{said}");
        assert!(said.contains("719 ticks (0 failed, 0 unavailable) after 720 history tick(s)"), "{said}");
        let replayed = std::fs::read_to_string(&csv).unwrap();
        let second_half: Vec<String> = leading_columns(&recorded, columns)
            .into_iter()
            .enumerate()
            .filter(|(i, _)| *i == 0 || *i > 720)
            .map(|(_, l)| l)
            .collect();
        assert_same_rows(&leading_columns(&replayed, columns), &second_half, &format!("{name}: warm replay"));
    }
    let live = run_dir(&out, "live-memory").join("live");
    let recorded = std::fs::read_to_string(live.join("decisions.csv")).unwrap();
    let serve = std::fs::read_to_string(live.join("serve.ron")).unwrap();
    assert!(serve.contains("memory_gib: \"prescale_sim_memory_gib{"), "the memory demand is read: {serve}");
    let columns = recorded.lines().next().unwrap().split(',').count();
    let csv = dir.path().join("live-memory.csv");
    let (o, said) = replay(&live.join("serve.ron"), "60..86400", &prom.url, &csv);
    assert!(o.status.success(), "{said}");
    let replayed = std::fs::read_to_string(&csv).unwrap();
    assert_same_rows(&leading_columns(&replayed, columns), &leading_columns(&recorded, columns), "memory: cold replay");
    let (forecast, coverage) = (column(&recorded, "memory_forecast_gib"), column(&recorded, "memory_coverage"));
    let rows: Vec<Vec<&str>> = recorded.lines().skip(1).map(|l| l.split(',').collect()).collect();
    let forecasts = rows.iter().filter(|c| !c[forecast].is_empty()).count();
    assert!(forecasts > 1000, "the memory loop forecast ({forecasts} of {} ticks)", rows.len());
    let last: f64 = rows.last().unwrap()[coverage].parse().unwrap();
    assert!((0.5..=1.0).contains(&last), "memory coverage {last}");
    assert!(rows.iter().all(|c| c[column(&recorded, "network_forecast_gbps")].is_empty()), "no network loop");

    // Shadow mode over the same stored data: every tick serves the running replicas and keeps the
    // controller's own beside them; the counterfactual is summed over the span.
    let live = run_dir(&out, "live-ar").join("live");
    let shadow_cfg = dir.path().join("shadow.ron");
    let acting = std::fs::read_to_string(live.join("serve.ron")).unwrap();
    assert!(acting.contains("mode: Act,"));
    std::fs::write(&shadow_cfg, acting.replace("mode: Act,", "mode: Shadow,")).unwrap();
    let csv = dir.path().join("shadow.csv");
    let (o, said) = replay(&shadow_cfg, "60..86340", &prom.url, &csv);
    assert!(o.status.success(), "{said}");
    assert!(said.contains("shadow: over 1439 min the running replicas violated the SLO"), "{said}");
    let rows = std::fs::read_to_string(&csv).unwrap();
    let (current, own) = (column(&rows, "current_replicas"), column(&rows, "controller_replicas"));
    let (recommended, served) = (column(&rows, "recommended_replicas"), column(&rows, "served_replicas"));
    let mut differ = 0;
    for l in rows.lines().skip(1) {
        let c: Vec<&str> = l.split(',').collect();
        assert_eq!(c[served], c[current], "served = current replicas: {l}");
        assert_eq!(c[recommended], c[own], "recommended = the controller's own (no limits): {l}");
        differ += (c[recommended] != c[current]) as usize;
    }
    assert!(differ > 100, "the controller's own answer differs from the running replicas at {differ} ticks");

    // A query Prometheus refuses (bad PromQL): every tick fails as prometheus_error, with Prometheus' reason,
    // and nothing is recommended that the data did not support.
    let broken = dir.path().join("broken-query.ron");
    let q = "request_rate_per_s: \"prescale_sim_request_rate_per_s{scenario=\\\"live-ar\\\",seed=\\\"1\\\"}\"";
    assert!(acting.contains(q), "{acting}");
    std::fs::write(&broken, acting.replace(q, "request_rate_per_s: \"sum(rate(\"")).unwrap();
    let csv = dir.path().join("broken.csv");
    let (o, said) = replay(&broken, "60..600", &prom.url, &csv);
    // (the grace is 5 intervals: unavailable from t = 360 s on)
    assert!(o.status.success(), "{said}");
    assert!(said.contains("10 ticks (10 failed, 5 unavailable)"), "{said}");
    let rows = std::fs::read_to_string(&csv).unwrap();
    let (current_at, own_at, held_at) = (
        column(&rows, "current_replicas"),
        column(&rows, "controller_replicas"),
        column(&rows, "recommended_replicas"),
    );
    let first_current: u32 = rows.lines().nth(1).unwrap().split(',').nth(current_at).unwrap().parse().unwrap();
    for l in rows.lines().skip(1) {
        // The message is a CSV cell, quoted only where it must be (it holds no comma or quote here).
        assert!(l.contains(",prometheus_error,request_rate_per_s: Prometheus error: HTTP 400: bad_data"), "{l}");
        let c: Vec<&str> = l.split(',').collect();
        let (current, held): (u32, u32) = (c[current_at].parse().unwrap(), c[held_at].parse().unwrap());
        assert_eq!(c[own_at], "", "no controller answer: {l}");
        // Never lower: the first tick's replicas, held while the running ones fall below them.
        assert_eq!(held, first_current.max(current), "{l}");
    }

    // Nothing to replay from: refused with the cause, nothing written.
    let csv = dir.path().join("never.csv");
    let nowhere = format!("http://127.0.0.1:{}", free_port());
    let (o, said) = replay(&run_dir(&out, "live-ar").join("live/serve.ron"), "60..120", &nowhere, &csv);
    assert_eq!(o.status.code(), Some(2), "{said}");
    assert!(said.contains("is not reachable"), "{said}");
    assert!(!csv.exists());
}
