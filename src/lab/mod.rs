//! The lab: experiment files and their expansion into cells (`experiment`), the training stages they declare
//! (`stages`), sweeps over the cells (`sweep`: shards, locks, batched groups, tables), Slurm job arrays
//! (`slurm`), the sweep report (`report`) with its equal-cost frontiers (`frontier`) and statistics (`stats`),
//! the scaffold for a new trace (`scaffold`), and progress lines for long work (`progress`).

pub mod experiment;
pub mod frontier;
pub mod progress;
pub mod report;
pub mod scaffold;
pub mod slurm;
pub mod stages;
pub mod stats;
pub mod sweep;
