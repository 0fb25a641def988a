//! prescale-agents: the autoscaling agents that plug into the simulator's controller seam
//! ([`prescale_sim::controller::Controller`]).
//!
//! This crate will hold the predictors (classical and behavioural-cloning models on tch), the variance
//! controllers that set safety margins, the resource prediction module and the proactive allocator, and the
//! reactive baselines they are compared with (the full Kubernetes HPA, target tracking, step scaling).
//! For now the controllers that exist are the simulator's own (`Static`, `ReferenceHpa`); nothing here
//! pretends to be more.

pub use prescale_sim::controller::{Controller, Observation, ScaleDecision};
