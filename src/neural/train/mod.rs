//! `prescale train CONFIG` and `prescale export MODEL_DIR`: the front end of [`prescale_agents::neural`].
//!
//! A training file (RON) names a scenario (its demand — a trace replay or a synthetic workload — is the
//! history learned from; or `series` of traces, for one forecaster across all of them), the task, the model
//! and the optimiser:
//!
//! ```ron
//! Train(
//!     name: "gru-elb",
//!     scenario: "../scenarios/nab-elb-replay.ron",
//!     task: Forecast,                      // or Imitate(seeds: [1, 2], dagger: (rounds: 3))
//!     model: (architecture: Gru(hidden: 32), window_steps: 24, horizon_steps: 6, output: Gaussian),
//!     split: (train: 0.7, validation: 0.15),
//!     training: (max_epochs: 40, batch_size: 128, learning_rate: 0.002, patience: 6, seed: 1),
//! )
//! ```
//!
//! The model directory `<out>/<name>/` gets `card.json`, `weights.safetensors`, `curve.csv` (loss per epoch),
//! `dagger.csv` (imitation: one row per round) and `plots/curve.{png,svg}`; it is written to a temporary
//! folder and renamed, so a failed training leaves no half-written model. A non-finite loss stops training,
//! writes the last good checkpoint to `<out>/<name>.last-good/` and exits non-zero.

mod file;
#[cfg(feature = "torch")]
mod run;

pub use file::*;
#[cfg(feature = "torch")]
pub use run::{Trained, export, train, train_loaded};
