//! `prescale-gui [PATH] [--run] [--screenshot FILE]`: the workbench window.
//!
//! PATH opens a scenario file, a run folder or a sweep folder; `--run` runs the scenario at once;
//! `--screenshot FILE` writes the window to FILE (PNG) once nothing is running, then closes it (the CI's
//! real-window check under Xvfb); `--check-screenshot FILE` says whether such a file shows a drawn window
//! (exit 1 if it is blank).

use std::process::ExitCode;

fn main() -> ExitCode {
    // Learned controllers (Bc, Neural) in a scenario need libtorch, as in `prescale-torch`.
    prescale::cli::install_torch();
    prescale_gui::window::main(std::env::args().skip(1))
}
