//! prescale's front ends over the simulator and agents crates: the command line, the live server (`live`),
//! output formatting and benchmarks. No simulation logic lives here; every command is a thin layer over calls
//! into `prescale-sim` and `prescale-agents` that other front ends can make too.

pub mod bench;
pub mod cli;
mod csv_rows;
pub mod demo;
pub mod embedded;
pub mod experiment;
pub mod forecast_eval;
pub mod frontier;
pub mod live;
pub mod output;
pub mod plot;
pub mod procinfo;
pub mod progress;
pub mod report;
pub mod results;
pub mod ron_paths;
pub mod scaffold;
pub mod scenario_io;
pub mod slurm;
pub mod stages;
pub mod stats;
pub mod sweep;
pub mod torch_gate;
pub mod train;
