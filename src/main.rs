//! The `prescale` command. All work happens in [`prescale::cli::run`]; `main` maps its outcome to an exit code
//! and prints the one error message.
//!
//! This binary does not load libtorch (fast start, see `prescale::neural::gate`): a command that needs it is
//! re-run on the same command line by `prescale-torch`, built beside this one.

use std::process::ExitCode;

fn main() -> ExitCode {
    prescale_agents::neural::runtime::on_missing(prescale::neural::gate::reexec_in_torch);
    prescale::cli::main()
}
