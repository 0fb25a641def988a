//! `prescale-measure FILE COMMAND [ARGS…]`: runs COMMAND (stdin, stdout and stderr passed through), waits for
//! it and writes its peak resident set size to FILE as `maxrss_kib <n>`; exits with COMMAND's status.
//!
//! Why it exists: on Linux a program's `ru_maxrss` starts from the high-water mark of the address space it
//! replaced at `exec` — the parent's, when the parent spawns it directly (measured: a 500 MB parent makes
//! `/bin/true` report 513 MB). `prescale bench` runs each program through this small process, as GNU
//! `time -f %M` does, so that a peer is charged its own pages, not prescale's. It links nothing but libc.

use std::process::{Command, ExitCode};

fn main() -> ExitCode {
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    if args.len() < 2 {
        eprintln!("usage: prescale-measure FILE COMMAND [ARGS…]");
        return ExitCode::from(2);
    }
    let (out, command, rest) = (&args[0], &args[1], &args[2..]);
    let child = match Command::new(command).args(rest).spawn() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("prescale-measure: cannot start {}: {e}", command.to_string_lossy());
            return ExitCode::from(127);
        }
    };
    let mut status: libc::c_int = 0;
    // SAFETY: rusage is plain old data, zero-initialised; wait4 writes into both out-parameters.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::wait4(child.id() as libc::pid_t, &mut status, 0, &mut usage) } < 0 {
        eprintln!("prescale-measure: wait4: {}", std::io::Error::last_os_error());
        return ExitCode::from(125);
    }
    // Linux reports ru_maxrss in KiB.
    if let Err(e) = std::fs::write(out, format!("maxrss_kib {}\n", usage.ru_maxrss)) {
        eprintln!("prescale-measure: writing {}: {e}", out.to_string_lossy());
        return ExitCode::from(125);
    }
    if libc::WIFEXITED(status) {
        ExitCode::from(libc::WEXITSTATUS(status) as u8)
    } else {
        // Killed by a signal: the shell's convention.
        ExitCode::from((128 + libc::WTERMSIG(status)) as u8)
    }
}
