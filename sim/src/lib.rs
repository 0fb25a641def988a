//! prescale-sim: the discrete-event engine of prescale and its request-level service model.
//!
//! * [`engine`]: virtual time, the future-event list, [`engine::Model`] and [`engine::Simulation`].
//! * [`rng`]: per-run seeds, named random streams, and the reference SplitMix64 streams.
//! * [`workload`] and [`demand`]: arrival processes, service-time samplers, synthetic demand; [`trace`]: replayed
//!   CSV traces.
//! * [`cluster`]: instance types, the fleet's lifecycle, billing, quotas, failures.
//! * [`service`] (request-level) and [`fluid`] (flows per step, [`queueing`] formulas): the two fidelities.
//! * [`scenario`]: scenario configs, validation, the runner and the metrics ([`metrics`]).
//! * [`controller`]: the seam every autoscaler plugs into, with `Static` and the reference HPA rule;
//!   [`observe`]: per-tick data out of a controller a model owns (recorded runs, shadows, DAgger labels).
//! * [`mod@reference`]: the two workloads of the peers' REFERENCE_MODEL.md, reproduced exactly.
//!
//! This crate is a leaf: it depends on no ML, GUI, plotting, CLI or thread-pool crate, and holds no global
//! state, so any number of runs can proceed in parallel and a run is a function of its inputs and seed.

pub mod cluster;
pub mod controller;
pub mod counterfactual;
pub mod demand;
pub mod engine;
pub mod fluid;
pub mod input;
pub mod iso8601;
pub mod metrics;
pub mod observe;
pub mod queue;
pub mod queueing;
pub mod reference;
pub mod resources;
pub mod rng;
pub mod scenario;
pub mod service;
pub mod stats;
pub mod table;
pub mod time;
pub mod trace;
pub mod validate;
pub mod workload;

pub use engine::{Context, Model, Simulation, Stop};
pub use time::SimTime;

// The tests beyond the modules' own (sim/tests/: the reference model, Erlang C, properties over random
// scenarios) are modules of the library's one test binary, naming the crate as users do: one link, not two.
#[cfg(test)]
extern crate self as prescale_sim;
#[cfg(test)]
#[path = "../tests/main.rs"]
mod integration;
