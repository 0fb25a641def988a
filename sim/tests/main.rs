//! The simulator's integration tests, as one test binary: exact agreement with the reference model, Erlang C
//! against the peers' implementation, and properties over random scenarios.

mod erlang_c;
mod properties;
mod reference_exact;
