//! Helpers shared by the integration tests: one place that knows how to call the `prescale` binary and
//! where the repository's files are, so that an interface change touches one place.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Runs the `prescale` binary with `args` in the repository root.
pub fn prescale(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_prescale")).args(args).current_dir(repo()).output().expect("prescale runs")
}

/// The repository root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `../shared/traces` beside the repository, if present.
pub fn shared_traces() -> Option<PathBuf> {
    let p = repo().join("..").join("shared").join("traces");
    p.is_dir().then_some(p)
}

/// Stdout and stderr as text.
pub fn text(o: &Output) -> (String, String) {
    (String::from_utf8_lossy(&o.stdout).into_owned(), String::from_utf8_lossy(&o.stderr).into_owned())
}

/// Files under `dir`, recursively (relative paths), sorted.
pub fn files_under(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    fn walk(base: &Path, d: &Path, out: &mut Vec<String>) {
        if let Ok(rd) = std::fs::read_dir(d) {
            for e in rd.flatten() {
                let p = e.path();
                if p.is_dir() {
                    walk(base, &p, out);
                } else {
                    out.push(p.strip_prefix(base).unwrap().display().to_string());
                }
            }
        }
    }
    walk(dir, dir, &mut out);
    out.sort();
    out
}
