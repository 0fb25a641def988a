//! Live mode against a real Prometheus server (Debian `prometheus`, installed by `scripts/setup-live.sh`),
//! started by these tests on 127.0.0.1 with a temporary config and data folder, and stopped by its process id:
//!
//! - replay parity: a run recorded with `prescale run --record-live`, loaded with `promtool tsdb
//!   create-blocks-from openmetrics`, replayed by `prescale serve --replay` gives the run's decisions, forecasts
//!   and margins bit for bit (cold, and warmed over a history window from the middle of the run);
//! - serving: Prometheus scrapes a stand-in for the application's exporter (this test's own HTTP thread) every
//!   second; `prescale serve` reads it, answers the KEDA metrics-api JSON, the external scaler over gRPC,
//!   `/metrics` (scraped back by the same Prometheus), `/healthz`, `/readyz`; shadow mode serves the running
//!   replicas; then the fail-safe: the exporter goes down (missing inputs: held, then 503 / UNAVAILABLE after
//!   the grace), comes back (recovers), and Prometheus itself is stopped (unreachable: held, then 503).

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{repo, text};

/// A binary of the Debian packages, or a failure naming how to install it.
fn tool(name: &str) -> PathBuf {
    for dir in std::env::var("PATH").unwrap_or_default().split(':').chain(["/usr/bin", "/usr/sbin"]) {
        let p = Path::new(dir).join(name);
        if p.is_file() {
            return p;
        }
    }
    panic!("{name} not found: install Prometheus with scripts/setup-live.sh (Debian package prometheus)");
}

/// The live-server tests run one at a time: the load test saturates both cores, and the fail-safe test
/// counts on scrapes and ticks every second.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A Prometheus server on 127.0.0.1 with its own folder; stopped (by its pid) when dropped.
struct Prometheus {
    child: Option<Child>,
    url: String,
    _dir: tempfile::TempDir,
}

impl Prometheus {
    /// Starts one over `blocks` (OpenMetrics text loaded with promtool first, if any), scraping `targets`
    /// every second.
    fn start(openmetrics: Option<&Path>, targets: &[String]) -> Prometheus {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir_all(&data).unwrap();
        if let Some(om) = openmetrics {
            let o = Command::new(tool("promtool"))
                .args(["tsdb", "create-blocks-from", "openmetrics"])
                .arg(om)
                .arg(&data)
                .output()
                .unwrap();
            assert!(o.status.success(), "promtool: {}", String::from_utf8_lossy(&o.stderr));
        }
        let mut yml = String::from("global: {scrape_interval: 1s, evaluation_interval: 1s}\nscrape_configs:\n");
        for (i, t) in targets.iter().enumerate() {
            yml.push_str(&format!("  - job_name: t{i}\n    static_configs: [{{targets: ['{t}']}}]\n"));
        }
        std::fs::write(dir.path().join("prom.yml"), yml).unwrap();
        let port = free_port();
        let child = Command::new(tool("prometheus"))
            .arg(format!("--config.file={}", dir.path().join("prom.yml").display()))
            .arg(format!("--storage.tsdb.path={}", data.display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            // Recorded runs may lie decades back: keep every block.
            .arg("--storage.tsdb.retention.time=100000d")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("log")).unwrap())
            .spawn()
            .unwrap();
        let url = format!("http://127.0.0.1:{port}");
        let p = Prometheus { child: Some(child), url, _dir: dir };
        let t0 = Instant::now();
        while http_get(&format!("{}/-/ready", p.url)).0 != 200 {
            assert!(t0.elapsed() < Duration::from_secs(30), "Prometheus did not become ready");
            std::thread::sleep(Duration::from_millis(100));
        }
        p
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().ok();
            c.wait().ok();
        }
    }

    /// An instant query's single value, if any.
    fn value(&self, query: &str) -> Option<f64> {
        let (code, body) = http_get(&format!("{}/api/v1/query?query={}", self.url, urlencode(query)));
        assert_eq!(code, 200, "{body}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        v["data"]["result"][0]["value"][1].as_str().map(|s| s.parse().unwrap())
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        self.stop();
    }
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' | b'.' | b'-' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A plain HTTP/1.1 GET: status and body.
fn http_get(url: &str) -> (u16, String) {
    let rest = url.strip_prefix("http://").unwrap();
    let (host, path) = rest.split_once('/').map_or((rest, "/".to_string()), |(h, p)| (h, format!("/{p}")));
    let Ok(mut s) = std::net::TcpStream::connect(host) else { return (0, String::new()) };
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").unwrap();
    let mut raw = String::new();
    if s.read_to_string(&mut raw).is_err() {
        return (0, String::new());
    }
    let code = raw.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = raw.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    // Chunked bodies (axum) carry their sizes on lines of their own; keep only the payload lines.
    let body = if raw.to_ascii_lowercase().contains("transfer-encoding: chunked") {
        let mut out = String::new();
        let mut rest = body;
        while let Some((size, after)) = rest.split_once("\r\n") {
            let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
            if n == 0 {
                break;
            }
            out.push_str(&after[..n]);
            rest = &after[n + 2..];
        }
        out
    } else {
        body.to_string()
    };
    (code, body)
}

fn prescale() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_prescale"));
    c.current_dir(repo());
    c
}

/// The only run folder under `root/<scenario>/`.
fn run_dir(root: &Path, scenario: &str) -> PathBuf {
    let mut dirs: Vec<_> = std::fs::read_dir(root.join(scenario)).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(dirs.len(), 1);
    dirs.pop().unwrap()
}

/// A one-day flash crowd (synthetic, so its clock starts at the Unix epoch) with `controller`.
fn scenario(dir: &Path, name: &str, controller: &str) -> PathBuf {
    let text = std::fs::read_to_string(repo().join("scenarios/flash-crowd.ron")).unwrap();
    let start = text.find("controller:").unwrap();
    let text = format!("{}controller: {controller},\n)\n", &text[..start])
        .replace("name: \"flash-crowd\"", &format!("name: \"{name}\""))
        .replace("horizon_s: 21600", "horizon_s: 86400");
    let p = dir.join(format!("{name}.ron"));
    std::fs::write(&p, text).unwrap();
    p
}

/// A day of a CPU + memory trace (generated here, one row a minute from the Unix epoch: both daily, the memory
/// a quarter-day later) under a predictive controller that plans both (`memory` left at `Forecast`).
fn memory_scenario(dir: &Path) -> PathBuf {
    let mut csv = String::from("timestamp,cpu_util_percent,mem_util_percent\n");
    for k in 0..=1440 {
        let day = k as f64 / 1440.0 * std::f64::consts::TAU;
        csv.push_str(&format!("{},{:.3},{:.3}\n", k * 60, 50.0 + 25.0 * day.sin(), 40.0 + 20.0 * day.cos()));
    }
    std::fs::write(dir.join("cpu-memory.csv"), csv).unwrap();
    let text = r#"Scenario(
    name: "live-memory",
    step_s: 60,
    fidelity: Fluid,
    workload: Trace(
        path: "cpu-memory.csv",
        timestamp_column: "timestamp",
        metrics: [
            (column: "cpu_util_percent", meaning: Utilisation(resource: Cpu, percent: true, reference_capacity: 100)),
            (column: "mem_util_percent", meaning: Utilisation(resource: Memory, percent: true, reference_capacity: 400)),
        ],
        policies: (timestamp_format: RelativeSeconds),
    ),
    service: (mean_service_s: 0.1, cores_per_request: 1.0, memory_gib_per_request: 0.05),
    cluster: (
        instance_types: [(name: "m", capacity: (cpu_cores: 8, memory_gib: 32), price_usd_per_hour: 0.384,
            provisioning_delay: Constant(s: 120), initial_count: 10, max_count: 200)],
        scaling_type: "m",
    ),
    slo: (latency_quantile: 0.99, latency_threshold_s: 0.5),
    controller: Predictive(predictor: Ar(p: 6, window_s: 3600, refit_every_s: 600),
        variance: AdaptiveConformal(alpha: 0.05, gamma: 0.01, window_s: 3600), allocator: (target_utilisation: 0.6)),
)"#;
    let p = dir.join("live-memory.ron");
    std::fs::write(&p, text).unwrap();
    p
}

/// `prescale serve CONFIG --replay SPAN --prometheus URL --out CSV`: its output and stdout + stderr.
fn replay(config: &Path, span: &str, prom: &str, csv: &Path) -> (std::process::Output, String) {
    let o = prescale()
        .args(["serve", "--replay", span, "--prometheus", prom, "--out"])
        .arg(csv)
        .arg(config)
        .output()
        .unwrap();
    let (so, se) = text(&o);
    (o, format!("{so}{se}"))
}

/// The position of column `name` in a CSV's header.
fn column(csv: &str, name: &str) -> usize {
    let header = csv.lines().next().unwrap_or_default();
    header.split(',').position(|c| c == name).unwrap_or_else(|| panic!("no column {name} in {header}"))
}

/// The replay's columns that the recording has, row by row.
fn leading_columns(csv: &str, n: usize) -> Vec<String> {
    csv.lines().map(|l| l.split(',').take(n).collect::<Vec<_>>().join(",")).collect()
}

/// Equal row for row, or the first row that differs.
fn assert_same_rows(replayed: &[String], recorded: &[String], what: &str) {
    if let Some((i, (a, b))) = replayed.iter().zip(recorded).enumerate().find(|(_, (a, b))| a != b) {
        panic!("{what}: row {i} differs:\n  replayed {a}\n  recorded {b}");
    }
    assert_eq!(replayed.len(), recorded.len(), "{what}: rows");
}

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
        assert!(l.contains(",prometheus_error,\"request_rate_per_s: Prometheus error: HTTP 400: bad_data"), "{l}");
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
    use prescale::live::externalscaler::external_scaler_client::ExternalScalerClient;
    use prescale::live::externalscaler::{GetMetricsRequest, ScaledObjectRef};
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
/// with the recommendation; the answer latencies are printed (`cargo test --release --test live load --
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
            use prescale::live::externalscaler::external_scaler_client::ExternalScalerClient;
            use prescale::live::externalscaler::{GetMetricsRequest, ScaledObjectRef};
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
