//! Live mode: `prescale serve` runs the controller a scenario names against a real Prometheus and serves its
//! recommendation to KEDA, fail-safe; `prescale serve --replay` steps a virtual clock over stored data and
//! writes the decisions, which equal those of `prescale run` on the same observations.
//!
//! - [`config`]: the `Serve(…)` file, checked like a scenario (same `service`, `cluster`, `slo`, `controller`).
//! - [`prom`]: the Prometheus HTTP API client (instant and range queries, with each value's sample time).
//! - [`inputs`]: query results → checked inputs → the simulator's `Observation` (and back, for recordings).
//! - [`decider`]: the decision loop's body — controller, fail-safe, rate limits, shadow counterfactual.
//! - [`record`]: a simulated run as Prometheus data (`prescale run --record-live`).
//! - [`serve`]: the loop on a clock, the HTTP endpoints (axum) and the KEDA external scaler (tonic); replays.

pub mod config;
pub mod decider;
#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub mod externalscaler;
pub mod inputs;
pub mod prom;
pub mod record;
pub mod serve;
