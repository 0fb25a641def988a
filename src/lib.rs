//! prescale's front ends over the simulator and agents crates. No simulation logic lives here: every command
//! is a layer over calls into `prescale-sim` and `prescale-agents` that other front ends can make too.
//!
//! The rooms, by floor (a module imports only from rooms on its own floor or below; ARCHITECTURE.md draws it):
//!
//! | room | what it is | what it is not |
//! |---|---|---|
//! | [`files`] | reading scenarios, RON paths and spans, writing a run's files and CSV rows, embedded inputs | no runs |
//! | [`lab`] | experiments, their training stages, sweeps (shards, locks, batched groups, tables), Slurm, reports, frontiers, statistics, scaffold | no command-line parsing |
//! | [`plot`] | figures from results folders | no simulation |
//! | [`neural`] | the front end's libtorch side: training, export, forecast evaluation, and the gate between the two binaries | no controllers (those are `prescale-agents`) |
//! | [`live`] | `prescale serve`: Prometheus in, KEDA out | no files but its own |
//! | [`mod@bench`] | `prescale bench`'s workloads, and process facts | no assertions |
//! | [`cli`] | the clap schema, the dispatch table, one module per command, printing | no logic another front end would need |

pub mod bench;
pub mod cli;
pub mod files;
pub mod lab;
pub mod live;
pub mod neural;
pub mod plot;

// The integration tests (tests/main.rs, one module per concern) are modules of the library's one test binary,
// naming the crate as users do: one link of the library instead of two. They need PyTorch. The binaries they
// run are built by cargo for tests/bins.rs, the package's one integration test.
#[cfg(all(test, feature = "torch"))]
extern crate self as prescale;
#[cfg(all(test, feature = "torch"))]
#[path = "../tests/main.rs"]
mod integration;
#[cfg(all(test, feature = "torch"))]
pub(crate) use integration::common;
