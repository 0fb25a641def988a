//! prescale's integration tests: one module per concern, each with its own module docs. They are modules of the
//! library's test binary (`src/lib.rs` includes this file under `cfg(test)`: one link of the library for all
//! of them and the unit tests), and run the binaries cargo builds for `tests/bins.rs`. `cargo test --release
//! --lib integration::MODULE::` runs one module (e.g. `integration::live::`); a test's name is
//! `integration::MODULE::NAME`.

pub(crate) mod common;

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
