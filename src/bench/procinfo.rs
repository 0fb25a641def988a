//! Facts about this process and its children from the operating system (Linux `/proc`, `wait4`).

use std::io;
use std::process::{Child, ExitStatus};

/// Peak resident set size of this process so far (`VmHWM` of `/proc/self/status`), in MiB; `None` where
/// the file is unavailable (not Linux).
pub fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// Waits for `child` and returns its exit status with its peak resident set size in MiB (from `wait4`'s
/// resource usage, which covers that child alone).
pub fn wait_with_peak_rss(child: Child) -> io::Result<(ExitStatus, f64)> {
    use std::os::unix::process::ExitStatusExt;
    let pid = child.id() as libc::pid_t;
    let mut status: libc::c_int = 0;
    // SAFETY: rusage is plain old data, zero-initialised; wait4 writes into both out-parameters.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    // Linux reports ru_maxrss in KiB.
    Ok((ExitStatus::from_raw(status), usage.ru_maxrss as f64 / 1024.0))
}
