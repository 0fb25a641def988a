//! What the server answers: the KEDA `metrics-api` JSON, `/metrics`, `/healthz` and `/readyz` over HTTP
//! (axum), and the KEDA external scaler over gRPC (tonic), all from the latest tick ([`App`]).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

use anyhow::Result;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::live::config::Mode;
use crate::live::decider::{Counterfactual, Tick};
use crate::live::externalscaler::external_scaler_server::ExternalScaler;
use crate::live::externalscaler::{
    GetMetricSpecResponse, GetMetricsRequest, GetMetricsResponse, IsActiveResponse, MetricSpec, MetricValue,
    ScaledObjectRef,
};

use super::metrics::Metrics;
/// What the endpoints share with the decision thread.
pub(super) struct App {
    pub(super) name: String,
    pub(super) mode: Mode,
    pub(super) controller: String,
    pub(super) latest: RwLock<Option<Tick>>,
    pub(super) counterfactual: RwLock<Counterfactual>,
    pub(super) metrics: Metrics,
    pub(super) loop_alive: AtomicBool,
    /// How long after its instant the latest tick may be served, seconds: the interval (the next tick is due
    /// then) plus `fail_safe.grace_s`. Judged on the wall clock when a request comes, so the grace holds while
    /// a tick's queries are still in flight (a slow Prometheus), not only when a tick ends.
    pub(super) serve_for_s: f64,
}

impl App {
    /// The latest tick if it may be served, else why not.
    pub(super) fn answer(&self) -> Result<Tick, String> {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64());
        self.answer_at(now)
    }

    /// [`Self::answer`] at `now_unix_s`.
    pub(super) fn answer_at(&self, now_unix_s: f64) -> Result<Tick, String> {
        if !self.loop_alive.load(Ordering::Relaxed) {
            return Err("the decision loop stopped".into());
        }
        match &*self.latest.read().expect("not poisoned") {
            None => Err("no decision yet (waiting for the first tick)".into()),
            Some(t) if now_unix_s - t.t_unix_s > self.serve_for_s => Err(format!(
                "no tick has finished for {:.0} s, more than the interval and the grace ({} s): its queries are \
                 still running (a slow or unreachable Prometheus?)",
                now_unix_s - t.t_unix_s,
                self.serve_for_s
            )),
            Some(t) if !t.available => Err(match &t.fault {
                Some(f) => format!("failing for longer than the grace: {}: {}", f.kind.label(), f.message),
                None => "no replicas known yet".into(),
            }),
            Some(t) => Ok(t.clone()),
        }
    }

    pub(super) fn recommendation_json(&self) -> Response {
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

pub(super) async fn recommendation(State(app): State<Arc<App>>) -> Response {
    app.recommendation_json()
}

pub(super) async fn metrics(State(app): State<Arc<App>>) -> Response {
    ([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], app.metrics.text())
        .into_response()
}

pub(super) async fn healthz(State(app): State<Arc<App>>) -> Response {
    if app.loop_alive.load(Ordering::Relaxed) {
        (StatusCode::OK, "ok\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "the decision loop stopped\n").into_response()
    }
}

pub(super) async fn readyz(State(app): State<Arc<App>>) -> Response {
    match app.answer() {
        Ok(_) => (StatusCode::OK, "ready\n").into_response(),
        Err(why) => (StatusCode::SERVICE_UNAVAILABLE, format!("{why}\n")).into_response(),
    }
}

/// The KEDA external scaler over the same state.
pub(super) struct Scaler {
    pub(super) app: Arc<App>,
}

impl Scaler {
    pub(super) fn metric_name(&self) -> String {
        format!("prescale-{}", self.app.name)
    }
    pub(super) fn served(&self) -> Result<u32, tonic::Status> {
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
