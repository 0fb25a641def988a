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
//! no libtorch (fast start; see that module).

pub mod batch;
pub mod card;
pub mod dagger;
pub mod data;
pub mod expert;
pub mod facts;
pub mod fit;
pub mod forecast_cloning;
pub mod forecaster;
pub mod model;
pub mod net;
pub mod policy;
pub mod runtime;
pub mod spec;
pub mod torch;

/// One libtorch (intra-op) thread on the calling thread. Parallelism comes from running scenarios side by
/// side; with libtorch's default of one thread per core, two-core training took up to 30 times longer in a
/// measurement (../shared/notes/torch-setup.md). (The inter-op pool is left alone: libtorch refuses to resize
/// it once any thread has used it, and prescale's models never use it.)
pub fn init_torch() {
    tch::set_num_threads(1);
}
