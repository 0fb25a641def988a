//! `prescale-torch`: the `prescale` command with libtorch loaded — everything `prescale` does, plus what needs
//! neural networks (training, export, BC policies and neural predictors in runs and sweeps, the demo).
//! `prescale` re-runs a command line here when it needs libtorch (see `prescale::neural::gate`); it can also be
//! called directly.

use std::process::ExitCode;

fn main() -> ExitCode {
    prescale::cli::install_torch();
    prescale::cli::main()
}
