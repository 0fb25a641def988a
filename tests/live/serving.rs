//! Serving KEDA against a real Prometheus, the fail-safe, bad serve configs, learned models, and load on the endpoints.

use super::*;

/// The application's metrics as Prometheus scrapes them: a stand-in exporter this test controls (what it
/// exposes, or HTTP 503 while it is "down").
struct Exporter {
    addr: String,
    up: Arc<AtomicBool>,
    body: Arc<Mutex<String>>,
}

/// The exporter's normal text: 120 requests/s on 3 READY replicas, none pending.
const APP: &str = "app_requests_per_second 120\napp_ready_replicas 3\napp_pending_replicas 0\n";

impl Exporter {
    fn start(body: &str) -> Exporter {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap().to_string();
        let up = Arc::new(AtomicBool::new(true));
        let body = Arc::new(Mutex::new(body.to_string()));
        let (flag, text) = (up.clone(), body.clone());
        std::thread::spawn(move || {
            for s in l.incoming() {
                let Ok(mut s) = s else { continue };
                let mut line = String::new();
                let mut r = BufReader::new(s.try_clone().unwrap());
                r.read_line(&mut line).ok();
                while r.read_line(&mut line).is_ok_and(|n| n > 2) {}
                let reply = if flag.load(Ordering::Relaxed) {
                    let body = text.lock().unwrap().clone();
                    format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\n\
                         Connection: close\r\n\r\n{body}",
                        body.len()
                    )
                } else {
                    "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_string()
                };
                s.write_all(reply.as_bytes()).ok();
            }
        });
        Exporter { addr, up, body }
    }

    fn expose(&self, body: &str) {
        *self.body.lock().unwrap() = body.to_string();
    }

    /// The normal text with every sample stamped at one instant, forever: Prometheus keeps that one sample
    /// (no staleness marker for explicit timestamps), which ages. The instant is 3 s ahead (three scrapes): the first
    /// scrape that sees timestamps writes a staleness marker at its own (earlier) time, which the sample must
    /// follow to be the newest.
    fn freeze(&self) {
        let ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() + 3000;
        self.expose(&APP.lines().map(|l| format!("{l} {ms}\n")).collect::<String>());
    }
}

/// `prescale serve` as a child process; killed by its pid when dropped.
struct Server {
    child: Child,
    http: String,
    grpc: String,
    log: Arc<Mutex<String>>,
}

impl Server {
    fn start(config: &Path, prom: &str, http_port: u16) -> Server {
        let mut child = prescale()
            .arg("serve")
            .arg(config)
            .args(["--prometheus", prom, "--listen", &format!("127.0.0.1:{http_port}"), "--grpc-listen", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let (mut http, mut grpc) = (String::new(), String::new());
        for _ in 0..3 {
            let mut line = String::new();
            out.read_line(&mut line).unwrap();
            if let Some(r) = line.strip_prefix("http ") {
                http = r.split(' ').next().unwrap().to_string();
            }
            if let Some(r) = line.strip_prefix("grpc ") {
                grpc = r.split(' ').next().unwrap().to_string();
            }
        }
        assert!(!http.is_empty() && !grpc.is_empty(), "addresses printed at start");
        let log = Arc::new(Mutex::new(String::new()));
        let sink = log.clone();
        let err = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for l in BufReader::new(err).lines().map_while(Result::ok) {
                sink.lock().unwrap().push_str(&format!("{l}\n"));
            }
        });
        Server { child, http: format!("http://{http}"), grpc: format!("http://{grpc}"), log }
    }

    fn get(&self, path: &str) -> (u16, String) {
        http_get(&format!("{}{path}", self.http))
    }

    fn recommendation(&self) -> (u16, serde_json::Value) {
        let (code, body) = self.get("/api/v1/recommendation");
        (code, serde_json::from_str(&body).unwrap_or(serde_json::Value::Null))
    }

    /// Waits until `ok` holds for the recommendation endpoint's answer.
    fn wait_for(&self, what: &str, ok: impl Fn(u16, &serde_json::Value) -> bool) -> (u16, serde_json::Value) {
        let t0 = Instant::now();
        loop {
            let (code, v) = self.recommendation();
            if ok(code, &v) {
                return (code, v);
            }
            assert!(
                t0.elapsed() < Duration::from_secs(30),
                "{what}: last answer {code} {v}\n{}",
                self.log.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// A sample of the exposition, by its full name with labels.
    fn metric(&self, series: &str) -> Option<f64> {
        let (code, body) = self.get("/metrics");
        assert_eq!(code, 200);
        body.lines().find_map(|l| l.strip_prefix(series).and_then(|r| r.trim().parse().ok()))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

/// The KEDA external scaler's three calls, through the generated client.
fn grpc_calls(addr: &str) -> (Result<bool, tonic::Code>, Result<f64, tonic::Code>, Result<f64, tonic::Code>) {
    use ::prescale::live::externalscaler::external_scaler_client::ExternalScalerClient;
    use ::prescale::live::externalscaler::{GetMetricsRequest, ScaledObjectRef};
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let mut c = ExternalScalerClient::connect(addr.to_string()).await.unwrap();
        let r = ScaledObjectRef { name: "web".into(), namespace: "default".into(), ..Default::default() };
        let active = c.is_active(r.clone()).await.map(|x| x.into_inner().result).map_err(|s| s.code());
        let spec = c
            .get_metric_spec(r.clone())
            .await
            .map(|x| x.into_inner().metric_specs[0].target_size_float)
            .map_err(|s| s.code());
        let req = GetMetricsRequest { scaled_object_ref: Some(r), metric_name: "prescale-web".into() };
        let value =
            c.get_metrics(req).await.map(|x| x.into_inner().metric_values[0].metric_value_float).map_err(|s| s.code());
        (active, spec, value)
    })
}

fn serve_config(dir: &Path, name: &str, mode: &str) -> PathBuf {
    let text = format!(
        r#"// A service at 120 requests/s on 3 READY replicas of 4 servers: 12 of 12 servers busy, so the
// reference HPA rule at 60 % asks ceil(3 * 1.0 / 0.6) = 5 replicas.
Serve(
    name: "web",
    prometheus: (url: "http://127.0.0.1:9", timeout_s: 2),
    queries: (
        request_rate_per_s: "app_requests_per_second",
        ready_replicas: "sum(app_ready_replicas)",
        pending_replicas: "app_pending_replicas",
    ),
    interval_s: 1,
    service: (mean_service_s: 0.1, cores_per_request: 1.0),
    cluster: (
        instance_types: [(name: "pod", capacity: (cpu_cores: 4, memory_gib: 16), price_usd_per_hour: 0.192,
            provisioning_delay: Constant(s: 2), initial_count: 3, min_count: 1, max_count: 50)],
        scaling_type: "pod",
    ),
    slo: (latency_quantile: 0.99, latency_threshold_s: 0.5),
    controller: ReferenceHpa(target_utilisation: 0.6, max_instances: 50),
    mode: {mode},
    fail_safe: (max_input_age_s: 5, grace_s: 4),
    behavior: None,
)
"#
    );
    let p = dir.join(format!("{name}.ron"));
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn serves_keda_and_fails_safe_against_a_real_prometheus() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let exporter = Exporter::start(APP);
    let (act_port, shadow_port) = (free_port(), free_port());
    let mut prom = Prometheus::start(
        None,
        &[exporter.addr.clone(), format!("127.0.0.1:{act_port}"), format!("127.0.0.1:{shadow_port}")],
    );
    let act = Server::start(&serve_config(dir.path(), "act", "Act"), &prom.url, act_port);
    let shadow = Server::start(&serve_config(dir.path(), "shadow", "Shadow"), &prom.url, shadow_port);

    // Acting: KEDA's metrics-api with valueLocation "desiredReplicas" and targetValue "1" reads 5.
    let (_, v) = act.wait_for("a recommendation", |c, _| c == 200);
    assert_eq!(v["desiredReplicas"], 5, "{v}");
    assert_eq!((v["currentReplicas"].clone(), v["mode"].clone()), (3.into(), "act".into()), "{v}");
    assert!(v["inputsAgeSeconds"].as_f64().unwrap() < 5.0, "{v}");
    assert_eq!(act.get("/healthz").0, 200);
    assert_eq!(act.get("/readyz").0, 200);
    assert_eq!(act.metric("prescale_recommended_replicas{service=\"web\"}"), Some(5.0));
    // Every kind is exposed from the start (the first ticks may have missed the first scrape).
    assert!(act.metric("prescale_errors_total{service=\"web\",kind=\"model\"}") == Some(0.0));
    assert_eq!(grpc_calls(&act.grpc), (Ok(true), Ok(1.0), Ok(5.0)));
    // Prometheus scrapes the exposition too (KEDA's `format: prometheus` reads the same text).
    let t0 = Instant::now();
    while prom.value(&format!("prescale_recommended_replicas{{instance=\"127.0.0.1:{act_port}\"}}")) != Some(5.0) {
        assert!(t0.elapsed() < Duration::from_secs(20), "Prometheus did not scrape prescale serve");
        std::thread::sleep(Duration::from_millis(250));
    }

    // Shadow: serves the running replicas, shows its own beside them, and counts the counterfactual.
    let (_, v) = shadow.wait_for("a shadow answer", |c, _| c == 200);
    assert_eq!((v["desiredReplicas"].clone(), v["shadowReplicas"].clone()), (3.into(), 5.into()), "{v}");
    assert_eq!(v["mode"], "shadow");
    shadow.wait_for("counterfactual minutes", |_, v| v["counterfactual"]["minutes"].as_f64().unwrap_or(0.0) > 0.05);
    assert!(shadow.metric("prescale_shadow_minutes{service=\"web\"}").unwrap() > 0.0);
    assert_eq!(act.metric("prescale_shadow_minutes{service=\"web\"}"), None, "acting servers do not expose them");

    // Each bad input in turn: the recommendation holds (never lower) with the cause, then after the grace the
    // server answers 503 / UNAVAILABLE, and the first good tick serves again.
    let cases: [(&str, &dyn Fn(), &str); 4] = [
        ("a NaN sample", &|| exporter.expose(&APP.replace("120", "NaN")), "invalid"),
        ("samples that stop advancing", &|| exporter.freeze(), "stale"),
        (
            "the exporter down: its series go stale in Prometheus, the queries empty",
            &|| exporter.up.store(false, Ordering::Relaxed),
            "missing",
        ),
        (
            "a series that is gone (empty result)",
            &|| exporter.expose(&APP.replace("app_pending_replicas 0\n", "")),
            "missing",
        ),
    ];
    for (what, break_it, kind) in cases {
        break_it();
        let (_, v) = act.wait_for(what, |c, v| c == 200 && !v["degraded"].is_null());
        assert_eq!(v["degraded"]["kind"], kind, "{what}: {v}\n{}", act.log.lock().unwrap());
        assert_eq!(v["desiredReplicas"], 5, "{what}: held: {v}");
        let cause = format!("{kind}: ");
        act.wait_for(&format!("{what}: 503 after the grace"), |c, v| {
            c == 503 && v["error"].as_str().is_some_and(|e| e.contains(&cause))
        });
        assert_eq!(act.get("/readyz").0, 503);
        assert_eq!(act.get("/healthz").0, 200, "alive, not ready");
        let (active, spec, value) = grpc_calls(&act.grpc);
        assert_eq!((active, value), (Err(tonic::Code::Unavailable), Err(tonic::Code::Unavailable)), "{what}");
        assert_eq!(spec, Ok(1.0), "the spec does not depend on the inputs");
        assert!(act.metric(&format!("prescale_errors_total{{service=\"web\",kind=\"{kind}\"}}")).unwrap() > 0.0);
        assert_eq!(act.metric("prescale_available{service=\"web\"}"), Some(0.0));
        if kind == "invalid" {
            shadow.wait_for("shadow mode fails safe too", |c, _| c == 503);
        }
        exporter.up.store(true, Ordering::Relaxed);
        exporter.expose(APP);
        let (_, v) = act.wait_for(&format!("{what}: recovery"), |c, v| c == 200 && v["degraded"].is_null());
        assert_eq!(v["desiredReplicas"], 5);
    }

    // Prometheus itself goes away: unreachable, held, then 503.
    prom.stop();
    let (_, v) = act.wait_for("held while Prometheus is unreachable", |c, v| c == 200 && !v["degraded"].is_null());
    assert_eq!(v["degraded"]["kind"], "unreachable", "{v}");
    assert_eq!(v["desiredReplicas"], 5);
    act.wait_for("503 while Prometheus stays away", |c, _| c == 503);
    assert!(act.metric("prescale_errors_total{service=\"web\",kind=\"unreachable\"}").unwrap() > 0.0);
    let (sum, count) = (
        act.metric("prescale_decision_seconds_sum{service=\"web\"}").unwrap(),
        act.metric("prescale_decision_seconds_count{service=\"web\"}").unwrap(),
    );
    println!(
        "live tick (three instant queries + decision) on loopback: mean {:.2} ms over {count} ticks",
        sum / count * 1e3
    );
    let log = act.log.lock().unwrap().clone();
    assert!(log.contains("HOLD (missing: request_rate_per_s: the query returned no value)"), "{log}");
    assert!(log.contains("HOLD (invalid: request_rate_per_s: NaN is not a finite number >= 0)"), "{log}");
    assert!(log.contains("HOLD (stale: request_rate_per_s: newest sample is"), "{log}");
    assert!(log.contains("HOLD (missing: pending_replicas: the query returned no value)"), "{log}");
    assert!(log.contains("HOLD (unreachable: request_rate_per_s: Prometheus unreachable"), "{log}");
}

/// Bad serve configs and flags: named by file, line and path (or flag), exit 2, nothing served.
#[test]
fn bad_serve_configs_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let good = std::fs::read_to_string(serve_config(dir.path(), "good", "Act")).unwrap();
    let cases = [
        (
            good.replace(
                "controller: ReferenceHpa(target_utilisation: 0.6, max_instances: 50)",
                "controller: HindsightExpert",
            ),
            "controller: knows the future",
        ),
        (good.replace("interval_s: 1,", "interval_s: -1,"), ":11: interval_s: must be in (0, 86400]"),
        (good.replace("grace_s: 4", "grace_s: -4"), "fail_safe.grace_s: must be a finite number >= 0"),
        (
            good.replace("request_rate_per_s: \"app_requests_per_second\"", "request_rate_per_s: \" \""),
            "queries.request_rate_per_s: must be a PromQL query",
        ),
        (
            good.replace("mode: Act", "mode: Sometimes"),
            ":20: Unexpected variant named `Sometimes` in enum `Mode`, expected either `Act` or `Shadow`",
        ),
    ];
    for (body, expect) in cases {
        let f = dir.path().join("bad.ron");
        std::fs::write(&f, body).unwrap();
        let o = prescale().arg("serve").arg(&f).output().unwrap();
        let (_, se) = text(&o);
        assert_eq!(o.status.code(), Some(2), "{se}");
        assert!(se.contains(expect) && se.contains("bad.ron"), "expected '{expect}' in: {se}");
        let o = prescale().arg("validate").arg(&f).output().unwrap();
        assert_eq!(o.status.code(), Some(1));
    }
    let f = dir.path().join("good.ron");
    let o = prescale().arg("serve").arg(&f).args(["--listen", "localhost"]).output().unwrap();
    let (_, se) = text(&o);
    assert_eq!(o.status.code(), Some(2));
    assert!(se.contains("--listen: must be an address and port"), "{se}");
    let o = prescale().arg("serve").arg(&f).args(["--replay", "200..100", "--out", "x.csv"]).output().unwrap();
    let (_, se) = text(&o);
    assert_eq!(o.status.code(), Some(2));
    assert!(se.contains("--replay") && se.contains("FROM <= TO"), "{se}");
    let o = prescale().arg("validate").arg(&f).arg("examples/live/serve.ron").output().unwrap();
    let (so, se) = text(&o);
    assert!(o.status.success(), "{so}{se}");
    assert_eq!(so.matches("ok (serve 'web'").count(), 2, "{so}");
}

/// A learned model serves like any controller: a GRU forecaster trained here on a one-day flash crowd,
/// behind the adaptive conformal margin, recorded in a run and replayed through `prescale serve` (which runs
/// it in `prescale-torch`), decides and forecasts as in the run; a model directory whose weights changed
/// after training is refused at start-up with the file named, exit 2.
#[test]
fn learned_models_replay_exactly_and_tampered_ones_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    scenario(dir.path(), "live-history", "HindsightExpert");
    let train = dir.path().join("gru-live.ron");
    std::fs::write(
        &train,
        r#"Train(
    name: "gru-live",
    scenario: "live-history.ron",
    task: Forecast,
    model: (architecture: Gru(hidden: 8), window_steps: 16, horizon_steps: 5, output: Gaussian),
    training: (max_epochs: 3, batch_size: 128, learning_rate: 0.003, patience: 3, seed: 7, max_batches_per_epoch: 10),
)
"#,
    )
    .unwrap();
    let models = dir.path().join("models");
    let o = prescale().args(["train", "--quiet", "--out"]).arg(&models).arg(&train).output().unwrap();
    let (so, se) = text(&o);
    assert!(o.status.success(), "{so}{se}");
    let model = models.join("gru-live");
    let controller = format!(
        "Predictive(predictor: Neural(model: \"{}\"), variance: AdaptiveConformal(alpha: 0.05, gamma: 0.01, \
         window_s: 3600), allocator: (target_utilisation: 0.6))",
        model.display()
    );
    let s = scenario(dir.path(), "live-gru", &controller);
    let out = dir.path().join("results");
    let o = prescale().args(["run", "--quiet", "--record-live", "--out"]).arg(&out).arg(&s).output().unwrap();
    let (so, se) = text(&o);
    assert!(o.status.success(), "{so}{se}");
    let live = run_dir(&out, "live-gru").join("live");
    let prom = Prometheus::start(Some(&live.join("observations.om")), &[]);
    let csv = dir.path().join("gru.csv");
    let (o, said) = replay(&live.join("serve.ron"), "60..86340", &prom.url, &csv);
    assert!(o.status.success() && said.contains("1439 ticks (0 failed, 0 unavailable)"), "{said}");
    let recorded = std::fs::read_to_string(live.join("decisions.csv")).unwrap();
    let columns = recorded.lines().next().unwrap().split(',').count();
    let replayed = std::fs::read_to_string(&csv).unwrap();
    assert_same_rows(&leading_columns(&replayed, columns), &leading_columns(&recorded, columns), "GRU + ACI");
    let forecasts = recorded.lines().skip(1).filter(|l| !l.split(',').nth(4).unwrap().is_empty()).count();
    assert!(forecasts > 1400, "the network forecast at nearly every tick ({forecasts})");

    // Weights changed after the card was written: refused before anything is served.
    let weights = model.join("weights.safetensors");
    let mut bytes = std::fs::read(&weights).unwrap();
    let n = bytes.len();
    bytes[n - 1] ^= 0x01;
    std::fs::write(&weights, bytes).unwrap();
    let o = prescale()
        .arg("serve")
        .arg(live.join("serve.ron"))
        .args(["--prometheus", &prom.url, "--listen", "127.0.0.1:0", "--grpc-listen", "127.0.0.1:0"])
        .output()
        .unwrap();
    let (so, se) = text(&o);
    assert_eq!(o.status.code(), Some(2), "{so}{se}");
    assert!(se.contains("serve.ron") && se.contains("does not match weights_sha256"), "{se}");
    assert!(!so.contains("http "), "nothing served: {so}");
}

/// Percentile (nearest rank) of sorted seconds, in milliseconds.
fn pct_ms(sorted: &[f64], q: f64) -> f64 {
    let i = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i] * 1e3
}

/// A bounded load on loopback: 200 HTTP clients (keep-alive) on the JSON endpoint and 200 gRPC clients on
/// `GetMetrics`, at once, for 10 s, while the decision loop ticks every second: every answer is a success
/// with the recommendation; the answer latencies are printed (`cargo test --release --lib integration::live::load --
/// --nocapture`).
#[test]
fn load_on_the_endpoints_answers_every_request() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let exporter = Exporter::start(APP);
    let prom = Prometheus::start(None, std::slice::from_ref(&exporter.addr));
    let server = Server::start(&serve_config(dir.path(), "load", "Act"), &prom.url, free_port());
    server.wait_for("a recommendation", |c, _| c == 200);
    let duration = Duration::from_secs(10);
    let url = format!("{}/api/v1/recommendation", server.http);
    let http: Vec<_> = (0..200)
        .map(|_| {
            let url = url.clone();
            std::thread::spawn(move || {
                let agent: ureq::Agent = ureq::Agent::config_builder()
                    .http_status_as_error(false)
                    .timeout_global(Some(Duration::from_secs(10)))
                    .build()
                    .into();
                let (mut lat, mut errors) = (Vec::new(), Vec::new());
                let t0 = Instant::now();
                while t0.elapsed() < duration {
                    let t = Instant::now();
                    match agent.get(&url).call() {
                        Ok(mut r) => {
                            let body = r.body_mut().read_to_string().unwrap_or_default();
                            lat.push(t.elapsed().as_secs_f64());
                            if r.status() != 200 || !body.contains("\"desiredReplicas\":5") {
                                errors.push(format!("{} {body}", r.status()));
                            }
                        }
                        Err(e) => errors.push(e.to_string()),
                    }
                }
                (lat, errors)
            })
        })
        .collect();
    let grpc = {
        let addr = server.grpc.clone();
        std::thread::spawn(move || {
            use ::prescale::live::externalscaler::external_scaler_client::ExternalScalerClient;
            use ::prescale::live::externalscaler::{GetMetricsRequest, ScaledObjectRef};
            let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
            rt.block_on(async move {
                let tasks: Vec<_> = (0..200)
                    .map(|_| {
                        let addr = addr.clone();
                        tokio::spawn(async move {
                            let mut c = ExternalScalerClient::connect(addr).await.unwrap();
                            let req = GetMetricsRequest {
                                scaled_object_ref: Some(ScaledObjectRef { name: "web".into(), ..Default::default() }),
                                metric_name: "prescale-web".into(),
                            };
                            let (mut lat, mut errors) = (Vec::new(), Vec::new());
                            let t0 = Instant::now();
                            while t0.elapsed() < duration {
                                let t = Instant::now();
                                match c.get_metrics(req.clone()).await {
                                    Ok(r) if r.get_ref().metric_values[0].metric_value_float == 5.0 => {
                                        lat.push(t.elapsed().as_secs_f64())
                                    }
                                    Ok(r) => errors.push(format!("{:?}", r.get_ref())),
                                    Err(s) => errors.push(s.to_string()),
                                }
                            }
                            (lat, errors)
                        })
                    })
                    .collect();
                let mut all = (Vec::new(), Vec::new());
                for t in tasks {
                    let (l, e) = t.await.unwrap();
                    all.0.extend(l);
                    all.1.extend(e);
                }
                all
            })
        })
    };
    let (mut http_lat, mut http_err) = (Vec::new(), Vec::new());
    for h in http {
        let (l, e) = h.join().unwrap();
        http_lat.extend(l);
        http_err.extend(e);
    }
    let (mut grpc_lat, grpc_err) = grpc.join().unwrap();
    for (what, lat, err) in [("HTTP JSON", &mut http_lat, &http_err), ("gRPC GetMetrics", &mut grpc_lat, &grpc_err)] {
        lat.sort_by(f64::total_cmp);
        println!(
            "load {what}: 200 clients x 10 s: {} answers ({:.0}/s), {} errors; latency p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            lat.len(),
            lat.len() as f64 / 10.0,
            err.len(),
            pct_ms(lat, 0.5),
            pct_ms(lat, 0.99),
            lat.last().unwrap() * 1e3
        );
        assert!(err.is_empty(), "{what}: {} errors, first: {}", err.len(), err[0]);
        assert!(lat.len() > 1000, "{what}: {} answers", lat.len());
    }
    assert!(
        server.log.lock().unwrap().lines().filter(|l| l.contains("recommended=5")).count() >= 8,
        "the loop kept ticking"
    );
}
