//! The cluster: instance types, their lifecycle, cost and capacity — shared by both fidelities.
//!
//! [`ClusterConfig`] is plain serde data (what a scenario file says); [`ClusterConfig::init`] turns it into a
//! [`Fleet`], the runtime value that owns every instance ever created. The fleet implements the lifecycle
//! PROVISIONING → READY (warming, then full capacity) → DRAINING → TERMINATING → gone, random failures with
//! replacement, scale actions in the order of REFERENCE_MODEL §4.5 step 7 (cancel PROVISIONING highest number
//! first, then drain READY highest number first), quotas, and billing with granularity and minimum billed
//! time. It schedules its own lifecycle events ([`FleetEvent`]) into the engine through any event type that
//! wraps them, and tells the model owning it what changed ([`FleetChange`]) so that the model can move
//! requests (the request-level model) or work (the fluid model).
//!
//! What it is not: it does not know requests. Busy servers per instance are kept here only because a
//! draining instance leaves when its last request completes.
//!
//! Code map: `config` (the schema and its validation), `fleet` (the runtime), `ledger` (what the lifecycle
//! adds up to — instances by state, usable servers, the bill — kept on every change, so a tick costs O(types)),
//! `invariants` (the fleet and its ledger held against walks over the instances).

mod config;
mod fleet;
mod invariants;
mod ledger;

pub use crate::resources::Resources;
pub use config::*;
pub use fleet::*;

use serde::{Deserialize, Serialize};

use crate::controller::{Observation, ScaleDecision, TickLoad};
use crate::engine::Context;
use crate::metrics::{StepLoad, StepSample};
use crate::rng::{Draws, RandDraws, RunSeed, StreamRng};
use crate::time::SimTime;
use crate::validate::{Interval, Problem, Problems};
