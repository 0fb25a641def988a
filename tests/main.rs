//! prescale's integration tests, as one test binary (one link of the library, one build): one module per
//! concern, each with its own module docs. `cargo test --release --test integration MODULE::` runs one module
//! (e.g. `live::`), and a test's name is `MODULE::NAME`.

mod common;

mod bad_input;
mod cli;
mod conformance;
mod experiments;
mod external;
mod fast_start;
mod fidelity;
mod live;
mod neural;
mod pipeline;
mod scenarios;
mod shards;
mod stages;
mod structure;
mod sweep_reliability;
