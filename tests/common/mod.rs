//! Helpers shared by the integration tests: one place that knows how to call the `prescale` binary and
//! where the repository's files are, so that an interface change touches one place.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Runs the `prescale` binary with `args` in the repository root.
pub fn prescale(args: &[&str]) -> Output {
    Command::new(exe("prescale")).args(args).current_dir(repo()).output().expect("prescale runs")
}

/// The package's binary `name` (`prescale` or `prescale-torch`) that cargo built for this test run:
/// `target/<profile>/<name>`, above the test binary's `deps/`. (`cargo test` builds it for `tests/bins.rs`.)
pub fn exe(name: &str) -> &'static str {
    static PRESCALE: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    static TORCH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let cell = match name {
        "prescale" => &PRESCALE,
        "prescale-torch" => &TORCH,
        _ => panic!("the package has no binary {name}"),
    };
    cell.get_or_init(|| {
        let test_binary = std::env::current_exe().expect("the test binary's path");
        let dir = test_binary.parent().and_then(Path::parent).expect("the test binary is in target/<profile>/deps");
        let p = dir.join(name);
        assert!(p.is_file(), "{} is not built: `cargo test --release` builds it (for tests/bins.rs)", p.display());
        p.display().to_string()
    })
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
