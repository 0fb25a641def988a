//! The simulator's tests through its public interface: exact agreement with the reference model, Erlang C
//! against the peers' implementation, and properties over random scenarios. A module of the library's test
//! binary (`src/lib.rs` includes it under `cfg(test)`; one link of the crate instead of two): `cargo test
//! --release -p prescale-sim integration::erlang_c` runs one of them.

mod erlang_c;
mod properties;
mod reference_exact;
