//! The live server and its replays.
//!
//! `prescale serve CONFIG`: a decision thread ticks on the wall clock (ticks at multiples of `interval_s` in
//! Unix time), reads every input as of the tick from Prometheus, and hands it to the [`Decider`]; a tokio
//! runtime serves the latest tick over HTTP (axum: the KEDA `metrics-api` JSON, `/metrics`, `/healthz`,
//! `/readyz`) and gRPC (tonic: the KEDA external scaler). Every tick is logged to stderr as one line.
//!
//! `prescale serve CONFIG --replay FROM..TO`: the same [`Decider`] over a virtual clock, the inputs read with
//! range queries (each step evaluated as an instant query at that time), the ticks written as CSV.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use serde_json::json;

use super::config::{Mode, ServeConfig};
use super::decider::{Counterfactual, Decider, Tick};
use super::externalscaler::external_scaler_server::{ExternalScaler, ExternalScalerServer};
use super::externalscaler::{
    GetMetricSpecResponse, GetMetricsRequest, GetMetricsResponse, IsActiveResponse, MetricSpec, MetricValue,
    ScaledObjectRef,
};
use super::inputs::{Checked, FaultKind, RawInputs, check};
use super::prom::{Prometheus, millis};
use super::record::{cell, timestamp};

/// The inputs of every tick from `start` to `end` (Unix seconds, step `interval_s`), each checked.
///
/// # Errors
/// None: a query that fails makes every tick of the range fail with its cause (as a live tick would).
pub fn fetch_range(prom: &Prometheus, cfg: &ServeConfig, start: f64, end: f64) -> Vec<(f64, Checked)> {
    let step = cfg.interval_s;
    let series: Vec<_> = cfg.queries.named().into_iter().map(|(n, q)| (n, prom.range(q, start, end, step))).collect();
    let n = if end >= start { ((end - start) / step).round() as usize + 1 } else { 0 };
    (0..n)
        .map(|k| {
            let t = start + k as f64 * step;
            let raw: RawInputs = series
                .iter()
                .map(|(name, r)| (*name, r.as_ref().map(|m| m.get(&millis(t)).copied()).map_err(Clone::clone)))
                .collect();
            (t, check(&raw, t, cfg.fail_safe.max_input_age_s))
        })
        .collect()
}

/// The inputs as of `t` (instant queries).
pub fn fetch_at(prom: &Prometheus, cfg: &ServeConfig, t: f64) -> Checked {
    let raw: RawInputs = cfg.queries.named().into_iter().map(|(n, q)| (n, prom.instant(q, t))).collect();
    check(&raw, t, cfg.fail_safe.max_input_age_s)
}

/// The decider of `cfg` for a first served tick at `first_unix_s`, warmed over `history_s` before it.
/// Returns it with the number of history ticks it decided on.
pub fn warmed_decider(prom: &Prometheus, cfg: &ServeConfig, first_unix_s: f64) -> (Decider, usize) {
    let origin = first_unix_s - cfg.history_s - cfg.interval_s;
    let mut d = Decider::new(cfg, origin);
    let mut fed = 0;
    if cfg.history_s > 0.0 {
        for (t, c) in fetch_range(prom, cfg, first_unix_s - cfg.history_s, first_unix_s - cfg.interval_s) {
            if let Ok(x) = c.inputs {
                d.warm(t, &x);
                fed += 1;
            }
        }
    }
    (d, fed)
}

/// Replays `[from, to]` (Unix seconds): every tick as the live server would have decided it.
///
/// # Errors
/// Prometheus not reachable at all (a replay of nothing is refused rather than written as failed ticks).
pub fn replay(cfg: &ServeConfig, from: f64, to: f64) -> Result<Replay> {
    let prom = Prometheus::new(&cfg.prometheus.url, cfg.prometheus.timeout_s);
    if !prom.ready() {
        bail!("Prometheus at {} is not reachable or not ready (GET /-/ready)", cfg.prometheus.url);
    }
    let (mut d, history_ticks) = warmed_decider(&prom, cfg, from);
    let ticks = fetch_range(&prom, cfg, from, to).into_iter().map(|(t, c)| d.tick(t, c)).collect();
    Ok(Replay { ticks, history_ticks, counterfactual: d.counterfactual().clone() })
}

/// What a replay gives.
pub struct Replay {
    /// Every tick of the span.
    pub ticks: Vec<Tick>,
    /// History ticks the controller decided on before the span.
    pub history_ticks: usize,
    /// Shadow mode's counterfactual over the span (zeros when acting).
    pub counterfactual: Counterfactual,
}

/// The replay CSV: the recording's columns first (`decisions.csv` of `prescale run --record-live`), then
/// what the server would have served and why a tick failed.
pub fn ticks_csv(ticks: &[Tick]) -> String {
    let mut out = format!(
        "{},recommended_replicas,served_replicas,available,fault_kind,fault\n",
        super::record::DECISION_COLUMNS
    );
    let n = |x: Option<u32>| x.map(|v| v.to_string()).unwrap_or_default();
    for t in ticks {
        let d = t.diagnostics;
        let fault = t.fault.as_ref();
        let message = fault.map(|f| format!("\"{}\"", f.message.replace('"', "\"\""))).unwrap_or_default();
        out.push_str(&format!(
            "{},{},{},{},{},{},{}{},{},{},{},{},{}\n",
            timestamp(t.t_unix_s),
            t.now_s,
            n(t.current_replicas),
            n(t.controller_replicas),
            cell(d.map(|d| d.forecast_cpu_cores)),
            cell(d.map(|d| d.margin_cpu_cores)),
            cell(d.map(|d| d.coverage)),
            super::record::resource_cells(d.as_ref()),
            n(t.recommended_replicas),
            n(t.served_replicas),
            t.available as u8,
            fault.map_or("", |f| f.kind.label()),
            message,
        ));
    }
    out
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabel {
    kind: String,
}

/// What `/metrics` exposes.
struct Metrics {
    registry: Registry,
    recommended: Gauge<f64, AtomicU64>,
    served: Gauge<f64, AtomicU64>,
    controller: Gauge<f64, AtomicU64>,
    current: Gauge<f64, AtomicU64>,
    forecast: Gauge<f64, AtomicU64>,
    margin: Gauge<f64, AtomicU64>,
    coverage: Gauge<f64, AtomicU64>,
    available: Gauge<f64, AtomicU64>,
    input_age: Gauge<f64, AtomicU64>,
    decision_seconds: Histogram,
    ticks: Counter,
    errors: Family<KindLabel, Counter>,
    shadow: [Gauge<f64, AtomicU64>; 7],
    /// Forecast, margin and coverage of the memory and the network loops (registered only where the
    /// configuration reads that demand, so that a controller that plans no such resource shows none).
    resources: [[Gauge<f64, AtomicU64>; 3]; 2],
}

impl Metrics {
    fn new(name: &str, mode: Mode, memory: bool, network: bool) -> Metrics {
        let mut registry = Registry::with_labels(std::iter::once(("service".into(), name.to_string().into())));
        let g = |r: &mut Registry, n: &str, h: &str| {
            let g = Gauge::<f64, AtomicU64>::default();
            r.register(n, h, g.clone());
            g
        };
        let recommended =
            g(&mut registry, "prescale_recommended_replicas", "Replicas recommended (after fail-safe and rate limits)");
        let served = g(
            &mut registry,
            "prescale_served_replicas",
            "Replicas served to KEDA (the recommendation; the current replicas in shadow mode)",
        );
        let controller =
            g(&mut registry, "prescale_controller_replicas", "The controller's own answer before the limits");
        let current = g(&mut registry, "prescale_current_replicas", "READY + pending replicas read from Prometheus");
        let forecast = g(&mut registry, "prescale_forecast_cpu_cores", "Demand forecast for the interval, CPU cores");
        let margin = g(&mut registry, "prescale_margin_cpu_cores", "Safety margin of the last decision, CPU cores");
        let coverage = g(
            &mut registry,
            "prescale_coverage_ratio",
            "Realised coverage: share of intervals with demand within forecast + margin",
        );
        let available = g(
            &mut registry,
            "prescale_available",
            "1 while a recommendation is served, 0 while answering 503 / UNAVAILABLE",
        );
        let input_age =
            g(&mut registry, "prescale_input_age_seconds", "Age of the oldest input sample at the last tick");
        let decision_seconds = Histogram::new(exponential_buckets(0.000_1, 4.0, 10));
        registry.register(
            "prescale_decision_seconds",
            "Time to read the inputs and decide, seconds",
            decision_seconds.clone(),
        );
        let ticks = Counter::default();
        registry.register("prescale_ticks", "Control ticks", ticks.clone());
        let errors = Family::<KindLabel, Counter>::default();
        registry.register("prescale_errors", "Failed ticks by kind", errors.clone());
        for k in FaultKind::ALL {
            let _ = errors.get_or_create(&KindLabel { kind: k.label().into() });
        }
        let shadow_names = [
            ("prescale_shadow_minutes", "Shadow mode: minutes observed"),
            ("prescale_shadow_actual_violation_minutes", "Shadow mode: minutes the running replicas violated the SLO"),
            (
                "prescale_shadow_violation_minutes",
                "Shadow mode: minutes the controller's replicas would have violated the SLO",
            ),
            (
                "prescale_shadow_prevented_minutes",
                "Shadow mode: violations the controller would have prevented, minutes",
            ),
            ("prescale_shadow_caused_minutes", "Shadow mode: violations the controller would have caused, minutes"),
            ("prescale_shadow_actual_cost_usd", "Shadow mode: price of the running replicas, USD"),
            ("prescale_shadow_cost_usd", "Shadow mode: price of the controller's replicas, USD"),
        ];
        let shadow = shadow_names.map(|(n, h)| {
            let gauge = Gauge::<f64, AtomicU64>::default();
            if mode == Mode::Shadow {
                registry.register(n, h, gauge.clone());
            }
            gauge
        });
        let resource_names = [
            (
                memory,
                [
                    ("prescale_memory_forecast_gib", "Memory demand forecast for the interval, GiB"),
                    ("prescale_memory_margin_gib", "Safety margin of the memory loop, GiB"),
                    ("prescale_memory_coverage_ratio", "Memory loop's realised coverage"),
                ],
            ),
            (
                network,
                [
                    ("prescale_network_forecast_gbps", "Network demand forecast for the interval, Gbit/s"),
                    ("prescale_network_margin_gbps", "Safety margin of the network loop, Gbit/s"),
                    ("prescale_network_coverage_ratio", "Network loop's realised coverage"),
                ],
            ),
        ];
        let resources = resource_names.map(|(read, names)| {
            names.map(|(n, h)| {
                let gauge = Gauge::<f64, AtomicU64>::default();
                if read {
                    registry.register(n, h, gauge.clone());
                }
                gauge
            })
        });
        Metrics {
            resources,
            registry,
            recommended,
            served,
            controller,
            current,
            forecast,
            margin,
            coverage,
            available,
            input_age,
            decision_seconds,
            ticks,
            errors,
            shadow,
        }
    }

    fn update(&self, t: &Tick, cf: &Counterfactual, decision_s: f64) {
        let set = |g: &Gauge<f64, AtomicU64>, v: Option<f64>| {
            if let Some(v) = v {
                g.set(v);
            }
        };
        set(&self.recommended, t.recommended_replicas.map(f64::from));
        set(&self.served, t.served_replicas.map(f64::from));
        set(&self.controller, t.controller_replicas.map(f64::from));
        set(&self.current, t.current_replicas.map(f64::from));
        if let Some(d) = t.diagnostics {
            set(&self.forecast, d.forecast_cpu_cores.is_finite().then_some(d.forecast_cpu_cores));
            set(&self.margin, d.margin_cpu_cores.is_finite().then_some(d.margin_cpu_cores));
            set(&self.coverage, d.coverage.is_finite().then_some(d.coverage));
            for (gauges, r) in self.resources.iter().zip([d.memory, d.network]) {
                if let Some(r) = r {
                    for (g, x) in gauges.iter().zip([r.forecast, r.margin, r.coverage]) {
                        set(g, x.is_finite().then_some(x));
                    }
                }
            }
        }
        self.available.set(t.available as u8 as f64);
        set(&self.input_age, t.max_input_age_s.is_finite().then_some(t.max_input_age_s));
        self.decision_seconds.observe(decision_s);
        self.ticks.inc();
        if let Some(f) = &t.fault {
            self.errors.get_or_create(&KindLabel { kind: f.kind.label().into() }).inc();
        }
        let v = [
            cf.minutes,
            cf.actual_violation_minutes,
            cf.shadow_violation_minutes,
            cf.prevented_minutes,
            cf.caused_minutes,
            cf.actual_cost_usd,
            cf.shadow_cost_usd,
        ];
        for (g, x) in self.shadow.iter().zip(v) {
            g.set(x);
        }
    }

    fn text(&self) -> String {
        let mut s = String::new();
        prometheus_client::encoding::text::encode(&mut s, &self.registry).expect("writing to memory");
        s
    }
}

/// What the endpoints share with the decision thread.
struct App {
    name: String,
    mode: Mode,
    controller: String,
    latest: RwLock<Option<Tick>>,
    counterfactual: RwLock<Counterfactual>,
    metrics: Metrics,
    loop_alive: AtomicBool,
}

impl App {
    /// The latest tick if it may be served, else why not.
    fn answer(&self) -> Result<Tick, String> {
        if !self.loop_alive.load(Ordering::Relaxed) {
            return Err("the decision loop stopped".into());
        }
        match &*self.latest.read().expect("not poisoned") {
            None => Err("no decision yet (waiting for the first tick)".into()),
            Some(t) if !t.available => Err(match &t.fault {
                Some(f) => format!("failing for longer than the grace: {}: {}", f.kind.label(), f.message),
                None => "no replicas known yet".into(),
            }),
            Some(t) => Ok(t.clone()),
        }
    }

    fn recommendation_json(&self) -> Response {
        match self.answer() {
            Ok(t) => {
                let d = t.diagnostics.unwrap_or_default();
                let num = |x: f64| if x.is_finite() { json!(x) } else { serde_json::Value::Null };
                let mut body = json!({
                    "desiredReplicas": t.served_replicas,
                    "currentReplicas": t.current_replicas,
                    "controllerReplicas": t.controller_replicas,
                    "forecastCpuCores": t.diagnostics.map(|_| num(d.forecast_cpu_cores)),
                    "marginCpuCores": t.diagnostics.map(|_| num(d.margin_cpu_cores)),
                    "coverage": t.diagnostics.map(|_| num(d.coverage)),
                    "memory": d.memory.map(|r| json!({
                        "forecastGib": num(r.forecast), "marginGib": num(r.margin), "coverage": num(r.coverage)
                    })),
                    "network": d.network.map(|r| json!({
                        "forecastGbps": num(r.forecast), "marginGbps": num(r.margin), "coverage": num(r.coverage)
                    })),
                    "mode": match self.mode { Mode::Act => "act", Mode::Shadow => "shadow" },
                    "controller": self.controller,
                    "inputsAgeSeconds": num(t.max_input_age_s),
                    "decidedAtUnixSeconds": t.t_unix_s,
                    "degraded": t.fault.as_ref().map(|f| json!({"kind": f.kind.label(), "cause": f.message})),
                });
                if self.mode == Mode::Shadow {
                    body["shadowReplicas"] = json!(t.recommended_replicas);
                    body["counterfactual"] = json!(*self.counterfactual.read().expect("not poisoned"));
                }
                ([(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response()
            }
            Err(why) => (
                StatusCode::SERVICE_UNAVAILABLE,
                [(header::CONTENT_TYPE, "application/json")],
                json!({"error": why}).to_string(),
            )
                .into_response(),
        }
    }
}

async fn recommendation(State(app): State<Arc<App>>) -> Response {
    app.recommendation_json()
}

async fn metrics(State(app): State<Arc<App>>) -> Response {
    ([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], app.metrics.text())
        .into_response()
}

async fn healthz(State(app): State<Arc<App>>) -> Response {
    if app.loop_alive.load(Ordering::Relaxed) {
        (StatusCode::OK, "ok\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "the decision loop stopped\n").into_response()
    }
}

async fn readyz(State(app): State<Arc<App>>) -> Response {
    match app.answer() {
        Ok(_) => (StatusCode::OK, "ready\n").into_response(),
        Err(why) => (StatusCode::SERVICE_UNAVAILABLE, format!("{why}\n")).into_response(),
    }
}

/// The KEDA external scaler over the same state.
struct Scaler {
    app: Arc<App>,
}

impl Scaler {
    fn metric_name(&self) -> String {
        format!("prescale-{}", self.app.name)
    }
    fn served(&self) -> Result<u32, tonic::Status> {
        self.app
            .answer()
            .map_err(tonic::Status::unavailable)?
            .served_replicas
            .ok_or_else(|| tonic::Status::unavailable("no replicas known yet"))
    }
}

#[tonic::async_trait]
impl ExternalScaler for Scaler {
    async fn is_active(
        &self,
        _req: tonic::Request<ScaledObjectRef>,
    ) -> Result<tonic::Response<IsActiveResponse>, tonic::Status> {
        Ok(tonic::Response::new(IsActiveResponse { result: self.served()? > 0 }))
    }

    type StreamIsActiveStream = tonic::codegen::BoxStream<IsActiveResponse>;

    async fn stream_is_active(
        &self,
        _req: tonic::Request<ScaledObjectRef>,
    ) -> Result<tonic::Response<Self::StreamIsActiveStream>, tonic::Status> {
        Err(tonic::Status::unimplemented("prescale serve is polled (external scaler), not pushed (external-push)"))
    }

    async fn get_metric_spec(
        &self,
        _req: tonic::Request<ScaledObjectRef>,
    ) -> Result<tonic::Response<GetMetricSpecResponse>, tonic::Status> {
        // Target 1 per replica: KEDA's HPA (AverageValue) then follows the served replicas exactly. The
        // deprecated integer fields are filled too, for KEDA releases that still read them.
        #[allow(deprecated)]
        Ok(tonic::Response::new(GetMetricSpecResponse {
            metric_specs: vec![MetricSpec { metric_name: self.metric_name(), target_size: 1, target_size_float: 1.0 }],
        }))
    }

    async fn get_metrics(
        &self,
        _req: tonic::Request<GetMetricsRequest>,
    ) -> Result<tonic::Response<GetMetricsResponse>, tonic::Status> {
        let n = self.served()?;
        #[allow(deprecated)]
        Ok(tonic::Response::new(GetMetricsResponse {
            metric_values: vec![MetricValue {
                metric_name: self.metric_name(),
                metric_value: n as i64,
                metric_value_float: n as f64,
            }],
        }))
    }
}

fn unix_now() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
}

fn log_tick(t: &Tick) {
    let n = |x: Option<u32>| x.map_or("-".to_string(), |v| v.to_string());
    let what = match &t.fault {
        Some(f) => {
            format!(" HOLD ({}: {}){}", f.kind.label(), f.message, if t.available { "" } else { " UNAVAILABLE" })
        }
        None => String::new(),
    };
    eprintln!(
        "prescale serve: t={} current={} controller={} recommended={} served={}{what}",
        timestamp(t.t_unix_s),
        n(t.current_replicas),
        n(t.controller_replicas),
        n(t.recommended_replicas),
        n(t.served_replicas)
    );
}

/// The decision thread: a tick at every multiple of the interval, forever.
fn decision_loop(cfg: ServeConfig, prom: Prometheus, mut d: Decider, first: f64, app: Arc<App>) {
    let mut t = first;
    loop {
        let wait = t - unix_now();
        if wait > 0.0 {
            std::thread::sleep(Duration::from_secs_f64(wait));
        }
        let started = Instant::now();
        let tick = d.tick(t, fetch_at(&prom, &cfg, t));
        let decision_s = started.elapsed().as_secs_f64();
        log_tick(&tick);
        *app.counterfactual.write().expect("not poisoned") = d.counterfactual().clone();
        app.metrics.update(&tick, d.counterfactual(), decision_s);
        *app.latest.write().expect("not poisoned") = Some(tick);
        t += cfg.interval_s;
        let behind = ((unix_now() - t) / cfg.interval_s).floor();
        if behind >= 1.0 {
            eprintln!("prescale serve: {behind} tick(s) skipped (a tick took longer than the interval)");
            t += behind * cfg.interval_s;
        }
    }
}

/// Binds `addr` (port 0: any free port).
fn bind(addr: &str, what: &str) -> Result<std::net::TcpListener> {
    let l = std::net::TcpListener::bind(addr).with_context(|| format!("cannot listen on {addr} ({what})"))?;
    l.set_nonblocking(true)?;
    Ok(l)
}

/// `prescale serve`: runs until killed.
pub fn serve(cfg: ServeConfig) -> Result<()> {
    let http = bind(&cfg.listen, "listen")?;
    let grpc = bind(&cfg.grpc_listen, "grpc_listen")?;
    let (http_addr, grpc_addr): (SocketAddr, SocketAddr) = (http.local_addr()?, grpc.local_addr()?);
    let prom = Prometheus::new(&cfg.prometheus.url, cfg.prometheus.timeout_s);
    let first = (unix_now() / cfg.interval_s).ceil() * cfg.interval_s;
    let (d, fed) = warmed_decider(&prom, &cfg, first);
    let app = Arc::new(App {
        name: cfg.name.clone(),
        mode: cfg.mode,
        controller: d.controller_name().to_string(),
        latest: RwLock::new(None),
        counterfactual: RwLock::new(Counterfactual::default()),
        metrics: Metrics::new(
            &cfg.name,
            cfg.mode,
            cfg.queries.memory_gib.is_some(),
            cfg.queries.network_gbps.is_some(),
        ),
        loop_alive: AtomicBool::new(true),
    });
    println!(
        "prescale serve {}: controller {}, mode {:?}, every {} s from {}; warmed on {fed} history tick(s)",
        cfg.name,
        d.controller_name(),
        cfg.mode,
        cfg.interval_s,
        cfg.prometheus.url
    );
    println!("http {http_addr} (/api/v1/recommendation, /metrics, /healthz, /readyz)");
    println!("grpc {grpc_addr} (KEDA external scaler)");
    use std::io::Write as _;
    std::io::stdout().flush()?;
    let loop_app = app.clone();
    std::thread::Builder::new().name("decisions".into()).spawn(move || {
        let alive = loop_app.clone();
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| decision_loop(cfg, prom, d, first, loop_app)));
        alive.loop_alive.store(false, Ordering::Relaxed);
        if r.is_err() {
            eprintln!("prescale serve: the decision loop panicked; /healthz now answers 503");
        }
    })?;
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    rt.block_on(async move {
        let router = axum::Router::new()
            .route("/api/v1/recommendation", get(recommendation))
            .route("/metrics", get(metrics))
            .route("/healthz", get(healthz))
            .route("/readyz", get(readyz))
            .with_state(app.clone());
        let http = tokio::net::TcpListener::from_std(http)?;
        let grpc = tokio::net::TcpListener::from_std(grpc)?;
        let http_server = async move { axum::serve(http, router).await.context("HTTP server") };
        let grpc_server = async move {
            tonic::transport::Server::builder()
                .add_service(ExternalScalerServer::new(Scaler { app }))
                .serve_with_incoming(tonic::transport::server::TcpIncoming::from(grpc))
                .await
                .context("gRPC server")
        };
        tokio::try_join!(http_server, grpc_server).map(|_| ())
    })
}

/// `FROM..TO` of `--replay`: Unix seconds or ISO-8601 instants.
pub fn parse_span(s: &str) -> Result<(f64, f64), String> {
    let bad = || {
        format!(
            "'{}': expected FROM..TO, each Unix seconds or an ISO-8601 instant (e.g. 2014-04-10T00:00:00Z), FROM <= TO",
            prescale_sim::input::clip(s, 60)
        )
    };
    let (a, b) = s.split_once("..").ok_or_else(bad)?;
    let one = |x: &str| {
        let x = x.trim();
        x.parse::<f64>().ok().filter(|v| v.is_finite()).or_else(|| prescale_sim::iso8601::parse_iso8601(x))
    };
    match (one(a), one(b)) {
        (Some(a), Some(b)) if a <= b => Ok((a, b)),
        _ => Err(bad()),
    }
}

/// Summary figures of a replay (for the command's output).
pub fn replay_summary(ticks: &[Tick]) -> BTreeMap<&'static str, usize> {
    let mut m = BTreeMap::new();
    m.insert("ticks", ticks.len());
    m.insert("failed", ticks.iter().filter(|t| t.fault.is_some()).count());
    m.insert("unavailable", ticks.iter().filter(|t| !t.available).count());
    m
}

#[cfg(test)]
mod tests {
    use super::*;

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
            t_unix_s: 1_400_000_000.0,
            now_s: 60.0,
            current_replicas: Some(4),
            controller_replicas: Some(5),
            recommended_replicas: Some(5),
            served_replicas: Some(5),
            diagnostics: Some(Diagnostics {
                forecast_cpu_cores: 10.0,
                margin_cpu_cores: 1.0,
                coverage: 0.9,
                memory: Some(memory),
                ..Diagnostics::default()
            }),
            fault: None,
            available: true,
            max_input_age_s: 2.0,
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
}
