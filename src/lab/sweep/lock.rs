//! The sweep's lock files: one exclusive lock per results folder while a sweep, a collect or the training
//! stage writes it, and a lock per shard; the holder ("process … on … since …") written into the file so that a
//! refused run names who holds it.

use std::path::Path;

use anyhow::{Context, Result, bail};

use crate::files::results::open_lock;

/// Takes the lock of `f` (at `path`, for messages) without waiting, `shared` or exclusive: `Ok(false)` when
/// another process holds it in a way that excludes this one.
pub(super) fn take(f: &std::fs::File, path: &Path, shared: bool) -> Result<bool> {
    let r = if shared { f.try_lock_shared() } else { f.try_lock() };
    match r {
        Ok(()) => Ok(true),
        Err(std::fs::TryLockError::WouldBlock) => Ok(false),
        Err(std::fs::TryLockError::Error(e)) => Err(e).with_context(|| format!("locking {}", path.display())),
    }
}

/// Writes who holds `f` (process id and start time), for the message of the next one that cannot take it.
pub(super) fn write_holder(f: &mut std::fs::File, what: &str) -> Result<()> {
    use std::io::{Seek, Write};
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    f.set_len(0)?;
    f.rewind()?;
    write!(
        f,
        "{what}process {} on {} since {}",
        std::process::id(),
        host_name(),
        crate::files::results::utc_stamp(now)
    )?;
    f.flush()?;
    Ok(())
}

pub(super) fn read_holder(f: &mut std::fs::File) -> String {
    use std::io::{Read, Seek};
    let mut holder = String::new();
    let _ = f.rewind();
    let _ = f.read_to_string(&mut holder);
    let holder = holder.trim();
    if holder.is_empty() { "holder unknown".to_string() } else { holder.to_string() }
}

/// This machine's host name (for lock holders and shard reports; "unknown" if it cannot be read).
pub(crate) fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown".into())
}

/// The exclusive lock of `<out_root>/<name>/`: a file `.<name>.lock` beside the folder, locked for as long as
/// the returned handle lives (the operating system releases it when the process ends, however it ends). A whole
/// sweep, a collect and `prescale slurm` take it; shards share it ([`lock_part`]).
///
/// # Errors
/// Another sweep holds it, or shards do (each named by the process id, host and start time it wrote), or the
/// file cannot be made.
pub(crate) fn lock_experiment(out_root: &Path, name: &str) -> Result<std::fs::File> {
    std::fs::create_dir_all(out_root).with_context(|| format!("creating {}", out_root.display()))?;
    let path = out_root.join(format!(".{name}.lock"));
    let mut f = open_lock(&path)?;
    if !take(&f, &path, false)? {
        // Shards hold it shared and name themselves in their own lock files.
        let prefix = format!(".{name}.");
        let mut holders = Vec::new();
        for e in std::fs::read_dir(out_root)?.flatten() {
            let file = e.file_name().to_string_lossy().into_owned();
            if let Some(part) = file.strip_prefix(&prefix).and_then(|r| r.strip_suffix(".lock"))
                && let Ok(mut g) = open_lock(&e.path())
                && !take(&g, &e.path(), false).unwrap_or(true)
            {
                holders.push(format!("{part}: {}", read_holder(&mut g)));
            }
        }
        holders.sort();
        let holder = if holders.is_empty() { read_holder(&mut f) } else { holders.join("; ") };
        bail!(
            "{} is being written by another sweep ({holder}); wait for it to finish or use another --out",
            out_root.join(name).display(),
        );
    }
    write_holder(&mut f, "")?;
    Ok(f)
}

/// The locks of one part of a sweep (a shard `K-of-N`, or `train`): the experiment's lock shared (so parts run
/// side by side but never beside a whole sweep or a collect) and the part's own `.<name>.<part>.lock`
/// exclusively (so one part never runs twice at once).
///
/// # Errors
/// A whole sweep or collect holds the experiment, or another process runs this part.
pub(crate) fn lock_part(out_root: &Path, name: &str, part: &str) -> Result<[std::fs::File; 2]> {
    std::fs::create_dir_all(out_root).with_context(|| format!("creating {}", out_root.display()))?;
    let path = out_root.join(format!(".{name}.lock"));
    let mut whole = open_lock(&path)?;
    if !take(&whole, &path, true)? {
        bail!(
            "{} is being written by another sweep ({}); wait for it to finish or use another --out",
            out_root.join(name).display(),
            read_holder(&mut whole)
        );
    }
    let own_path = out_root.join(format!(".{name}.{part}.lock"));
    let mut own = open_lock(&own_path)?;
    if !take(&own, &own_path, false)? {
        bail!(
            "{} {part} is already running ({}); wait for it to finish",
            out_root.join(name).display(),
            read_holder(&mut own)
        );
    }
    let slurm = std::env::var("SLURM_JOB_ID").map(|j| format!("Slurm job {j}, ")).unwrap_or_default();
    write_holder(&mut own, &slurm)?;
    Ok([whole, own])
}
