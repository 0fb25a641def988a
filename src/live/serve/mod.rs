//! The live server and its replays.
//!
//! `prescale serve CONFIG`: a decision thread ticks on the wall clock (ticks at multiples of `interval_s` in
//! Unix time), reads every input as of the tick from Prometheus, and hands it to the [`Decider`]; a tokio
//! runtime serves the latest tick over HTTP (axum: the KEDA `metrics-api` JSON, `/metrics`, `/healthz`,
//! `/readyz`) and gRPC (tonic: the KEDA external scaler). Every tick is logged to stderr as one line.
//!
//! `prescale serve CONFIG --replay FROM..TO`: the same [`Decider`] over a virtual clock, the inputs read with
//! range queries (each step evaluated as an instant query at that time), the ticks written as CSV.

mod http;
mod metrics;
mod replay;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use axum::routing::get;

use super::config::ServeConfig;
use super::decider::{Counterfactual, Decider, Tick};
use super::externalscaler::external_scaler_server::ExternalScalerServer;
use super::prom::Prometheus;
use super::record::timestamp;

use http::{App, Scaler};
use metrics::Metrics;
pub use replay::{Replay, fetch_at, fetch_range, parse_span, replay, replay_summary, ticks_csv, warmed_decider};

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
        serve_for_s: cfg.interval_s + cfg.fail_safe.grace_s,
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
            .route("/api/v1/recommendation", get(http::recommendation))
            .route("/metrics", get(http::metrics))
            .route("/healthz", get(http::healthz))
            .route("/readyz", get(http::readyz))
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

#[cfg(test)]
mod tests;
