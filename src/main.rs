//! The `prescale` command. All work happens in [`prescale::cli::run`]; `main` only maps its outcome to an
//! exit code and prints the one error message.

use std::process::ExitCode;

fn main() -> ExitCode {
    match prescale::cli::run(std::env::args_os()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
