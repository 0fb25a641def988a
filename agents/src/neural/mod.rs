//! Neural agents on libtorch (tch), cut by stage: networks over multivariate input windows ([`net`],
//! [`spec`]); training data ([`data`]: frames, windows, split, normalisation) and the training loop ([`fit`]);
//! the model directory with its card and TorchScript export ([`model`]); the two tasks — forecast cloning
//! ([`forecast_cloning`]) and behavioural cloning of the hindsight expert with DAgger ([`dagger`]); and what acts
//! at run time — a model as a [`crate::predictor::Predictor`] with online fine-tuning ([`forecaster`]), the
//! expert ([`expert`]) and the learned policy as a controller ([`policy`]).
//!
//! libtorch runs single-threaded: call [`init_torch`] once at start-up (front ends do), before any rayon
//! work; the setting is per thread, so rayon pools call it in their start handler too.
//!
//! The configurations reach the models through [`runtime`], so that a binary that installs no runtime links
//! no libtorch (fast start; see that module). Built without the `torch` feature (default on), the crate has
//! only the torch-free modules — [`facts`], [`card`], [`spec`], [`data`], [`expert`], [`runtime`] — and no
//! runtime can be installed: a learned model in a configuration is refused by its check, naming the feature.

#[cfg(feature = "torch")]
pub mod batch;
pub mod card;
#[cfg(feature = "torch")]
pub mod dagger;
pub mod data;
pub mod expert;
pub mod facts;
#[cfg(feature = "torch")]
pub mod fit;
#[cfg(feature = "torch")]
pub mod forecast_cloning;
#[cfg(feature = "torch")]
pub mod forecaster;
#[cfg(feature = "torch")]
pub mod model;
#[cfg(feature = "torch")]
pub mod net;
#[cfg(feature = "torch")]
pub mod policy;
pub mod runtime;
pub mod spec;
#[cfg(feature = "torch")]
pub mod torch;

/// One libtorch (intra-op) thread on the calling thread. Parallelism comes from running scenarios side by
/// side; with libtorch's default of one thread per core, two-core training took up to 30 times longer in a
/// measurement (../shared/notes/torch-setup.md). (The inter-op pool is left alone: libtorch refuses to resize
/// it once any thread has used it, and prescale's models never use it.)
#[cfg(feature = "torch")]
pub fn init_torch() {
    tch::set_num_threads(1);
}
