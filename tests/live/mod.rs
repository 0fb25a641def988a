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

mod replay;
mod serving;

use crate::common;

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
    let mut c = Command::new(crate::common::exe("prescale"));
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
