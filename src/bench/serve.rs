//! Live mode's costs: the decision latency of `prescale serve` per tick (the controller and the fail-safe
//! around it, inputs already read) for a reactive, a classical forecasting and two learned controllers at
//! batch 1, over the inputs of a recorded episode (the NAB ELB test period under the reference HPA: 6,000
//! ticks), and the peak memory of a serving process. The Prometheus round trip is not in it (it depends on
//! the server; `prescale_decision_seconds` in `/metrics` measures the whole tick live).

use anyhow::{Context, Result};
use prescale_sim::scenario::ControllerSpec;

use crate::live::config::{FailSafe, Mode, PrometheusConfig, Queries, ServeConfig};
use crate::live::decider::Decider;
use crate::live::inputs::{Checked, Setting, inputs_of};

/// Nearest-rank percentile of sorted values.
fn pct(sorted: &[f64], q: f64) -> f64 {
    sorted[((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1]
}

/// The bench's lines.
///
/// Why one function: the bench's lines in the order printed, each measured by a few calls on one decider and
/// one set of recorded inputs.
pub(super) fn costs() -> Result<Vec<String>> {
    let dir = super::neural::tempfile_dir("prescale-bench-serve")?;
    super::neural::fresh_forecaster(&dir.join("gru"))?;
    super::neural::fresh_policy(&dir.join("bc"))?;
    let inputs = dir.join("inputs");
    crate::files::embedded::write_inputs(&inputs, |t| t.to_string())?;
    let loaded = crate::files::scenario_io::load_scenario(&inputs.join("scenarios/nab-elb-test.ron"))
        .map_err(|d| anyhow::anyhow!("{}", d[0]))?;
    let p = loaded.prepare(1).map_err(|d| anyhow::anyhow!("{}", d[0]))?;
    let (_, ticks) = prescale_sim::scenario::run_recorded(&p, 1, &mut |_| {});
    let cfg = &p.config;
    let setting = Setting::new(p.demand.step_s, &cfg.cluster, &cfg.service);
    let serve = |controller: &str| -> Result<ServeConfig> {
        let controller =
            crate::files::scenario_io::ron_options().from_str(controller).with_context(|| controller.to_string())?;
        Ok(ServeConfig {
            name: "bench".into(),
            prometheus: PrometheusConfig { url: "http://127.0.0.1:9".into(), timeout_s: 1.0 },
            queries: Queries {
                request_rate_per_s: "r".into(),
                ready_replicas: "n".into(),
                pending_replicas: None,
                draining_replicas: None,
                busy_cpu_seconds: None,
                ready_capacity_cores: None,
                queue_length: None,
                slow_fraction: None,
                memory_gib: None,
                network_gbps: None,
                latency_s: None,
            },
            interval_s: p.demand.step_s,
            history_s: 0.0,
            service: cfg.service.clone(),
            cluster: cfg.cluster.clone(),
            slo: cfg.slo.clone(),
            controller,
            mode: Mode::Act,
            listen: "127.0.0.1:0".into(),
            grpc_listen: "127.0.0.1:0".into(),
            fail_safe: FailSafe::default(),
            behavior: Some(Default::default()),
            seed: 1,
        })
    };
    let controllers = [
        ("Kubernetes HPA", "Hpa(target_utilisation: 0.6, max_replicas: 150)".to_string()),
        (
            "Holt-Winters + ACI",
            "Predictive(predictor: HoltWinters(period_s: 86400), variance: AdaptiveConformal(alpha: 0.05, gamma: \
             0.005, window_s: 86400), allocator: (target_utilisation: 0.6))"
                .into(),
        ),
        (
            "GRU(32) + ACI",
            format!(
                "Predictive(predictor: Neural(model: \"{}\"), variance: AdaptiveConformal(alpha: 0.05), allocator: \
                 (target_utilisation: 0.6))",
                dir.join("gru").display()
            ),
        ),
        ("BC policy GRU(32)", format!("Bc(model: \"{}\")", dir.join("bc").display())),
    ];
    let mut out = Vec::new();
    let mut configs = Vec::new();
    for (label, c) in &controllers {
        let sc = serve(c)?;
        let problems = sc.problems();
        anyhow::ensure!(problems.is_empty(), "{label}: {}", problems[0]);
        let mut d = Decider::new(&sc, p.demand.start_unix_s);
        let mut lat = Vec::with_capacity(ticks.len());
        for t in &ticks {
            let (x, _) = inputs_of(&t.obs, &setting);
            let current = Some(x.current_replicas());
            let checked = Checked { inputs: Ok(x), current_replicas: current, max_age_s: 0.0 };
            let t0 = std::time::Instant::now();
            std::hint::black_box(d.tick(p.demand.start_unix_s + t.obs.now_s, checked));
            lat.push(t0.elapsed().as_secs_f64() * 1e6);
        }
        lat.sort_by(f64::total_cmp);
        out.push(format!(
            "serve decision latency, {label} ({}), {} ticks at batch 1: p50 {:.1} µs, p99 {:.1} µs, max {:.1} µs",
            sc.controller.name(),
            lat.len(),
            pct(&lat, 0.5),
            pct(&lat, 0.99),
            lat.last().copied().unwrap_or(f64::NAN)
        ));
        configs.push((label, sc));
    }
    // Peak memory of a serving process once it is up (controller built, model loaded, endpoints bound; it
    // ticks against an unreachable Prometheus): classical controllers in `prescale`, learned ones re-run in
    // `prescale-torch` (the same process id).
    let exe = std::env::current_exe()?;
    for (label, sc) in configs {
        let file = dir.join("serve.ron");
        std::fs::write(&file, sc.to_ron())?;
        let mut child = std::process::Command::new(exe.with_file_name("prescale"))
            .arg("serve")
            .arg(&file)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()?;
        let mut up = false;
        let mut lines = std::io::BufRead::lines(std::io::BufReader::new(child.stdout.take().expect("piped")));
        for l in lines.by_ref().map_while(Result::ok) {
            if l.starts_with("grpc ") {
                up = true;
                break;
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(500));
        let status = std::fs::read_to_string(format!("/proc/{}/status", child.id())).unwrap_or_default();
        let kib = |key: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(key))
                .and_then(|r| r.split_whitespace().next()?.parse::<f64>().ok())
        };
        let (hwm, threads) = (kib("VmHWM:"), kib("Threads:"));
        child.kill().ok();
        let o = child.wait_with_output()?;
        anyhow::ensure!(up, "{label}: the server did not start: {}", String::from_utf8_lossy(&o.stderr).trim());
        out.push(format!(
            "serve process, {label}: peak RSS {:.1} MiB, {} threads",
            hwm.unwrap_or(f64::NAN) / 1024.0,
            threads.unwrap_or(f64::NAN)
        ));
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(out)
}
