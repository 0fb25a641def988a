//! Fast start: two binaries from one library, and the gate between them.
//!
//! Loading libtorch costs every process ~0.2 s and ~110 MB before `main`, whether it uses a network or not. A
//! binary links libtorch only if code that calls it is reachable from its `main`, so the library reaches
//! everything that needs libtorch through function pointers installed at start-up:
//! [`prescale_agents::neural::runtime::NeuralRuntime`] for the controllers, predictors and model checks, and
//! [`TorchCommands`] here for the front end's commands (training, export, forecast evaluation of networks, the
//! demo, a sweep's training stages and its batched groups, the neural benchmark).
//!
//! - `prescale` (`src/main.rs`) installs neither. When a command needs them, [`reexec_in_torch`] replaces the
//!   process with `prescale-torch` (next to it) on the same command line, before anything is written — the
//!   commands ask the gate at their start ([`require`]) when they can tell, and the runtime's accessor asks it
//!   otherwise (e.g. a scenario naming a model directory, found while it is validated).
//! - `prescale-torch` (`src/bin/prescale-torch.rs`) calls [`crate::cli::install_torch`] first and runs everything in process.
//!
//! The same library functions run in both, so a result does not depend on the binary that computed it.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::OnceLock;

use anyhow::Result;

use crate::lab::experiment::Cell;

/// The front end's commands that need libtorch.
#[derive(Clone, Copy)]
pub struct TorchCommands {
    /// The built-in demo (`prescale` with no command): output folder, quick, quiet.
    pub demo: fn(&Path, bool, bool) -> Result<ExitCode>,
    /// `prescale train CONFIG --out DIR [--quiet]`.
    pub train: fn(&Path, &Path, bool) -> Result<ExitCode>,
    /// `prescale export MODEL_DIR`.
    pub export: fn(&Path) -> Result<()>,
    /// `prescale forecast-eval`'s networks.
    pub forecast_networks: crate::neural::forecast_eval::NetworkEval,
    /// An experiment's training jobs (see [`crate::lab::stages::train_jobs`]).
    pub train_jobs: TrainJobs,
    /// One batched group of cells (see `lab::sweep::group::run_group`), each cell's outcome.
    pub run_group: fn(&[&Cell], &Path) -> crate::lab::sweep::group::GroupOutcome,
    /// `prescale bench --workload neural`'s lines.
    pub bench_neural: fn() -> Result<Vec<String>>,
    /// `prescale bench --workload serve`'s lines.
    pub bench_serve: fn() -> Result<Vec<String>>,
}

/// The signature of [`crate::lab::stages::train_jobs`]: the jobs, the ones needed, quiet → a row per model and the
/// failed jobs with their errors.
pub type TrainJobs = fn(
    &[crate::lab::stages::Job],
    &std::collections::BTreeSet<usize>,
    bool,
) -> (Vec<serde_json::Value>, std::collections::BTreeMap<usize, String>);

static COMMANDS: OnceLock<TorchCommands> = OnceLock::new();

/// Installs the front end's commands that need libtorch (idempotent): called by
/// [`crate::cli::install_torch`], which fills the table on the top floor so that this module names no command.
pub fn install(commands: TorchCommands) {
    let _ = COMMANDS.set(commands);
}

/// The commands, after making sure this process can run them: in `prescale` (nothing installed) this
/// re-runs the command line in `prescale-torch` and does not return. `why` names the need in messages.
pub fn require(why: &str) -> &'static TorchCommands {
    match COMMANDS.get() {
        Some(c) => c,
        None => reexec_in_torch(why),
    }
}

/// Whether this process has libtorch's side installed.
pub fn installed() -> bool {
    COMMANDS.get().is_some()
}

/// `prescale-torch` next to the running executable.
pub fn torch_binary() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    Some(exe.with_file_name("prescale-torch"))
}

/// Replaces this process with `prescale-torch` on the same arguments (`why` needs libtorch). Exits with 2
/// and a message naming the missing binary if it cannot.
pub fn reexec_in_torch(why: &str) -> ! {
    use std::os::unix::process::CommandExt;
    if !cfg!(feature = "torch") {
        eprintln!(
            "error: {why} needs PyTorch, but this prescale was built without it (the `torch` cargo feature); build \
             with the default features"
        );
        std::process::exit(2);
    }
    let Some(bin) = torch_binary().filter(|b| b.is_file()) else {
        eprintln!(
            "error: {why} needs libtorch, which the `prescale` binary does not load; `prescale-torch` (built beside it \
             by `cargo build --release`) was not found next to {}",
            std::env::current_exe().map_or_else(|_| "this executable".into(), |e| e.display().to_string())
        );
        std::process::exit(2);
    };
    // Output written so far must not be lost or repeated out of order.
    use std::io::Write as _;
    let _ = std::io::stdout().flush();
    let e = std::process::Command::new(&bin).args(std::env::args_os().skip(1)).exec();
    eprintln!("error: {why} needs libtorch: starting {} failed: {e}", bin.display());
    std::process::exit(2);
}
