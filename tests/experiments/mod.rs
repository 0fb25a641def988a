//! Experiment files: validation names every bad path and value before any run; expansion yields stable,
//! unique cell ids with the axis values and controllers applied.

mod shipped;
mod sweeps;

use crate::common;

use std::path::Path;

use ::prescale::lab::experiment::load_experiment;
use common::{prescale, repo, text};

fn out_root() -> &'static std::path::Path {
    std::path::Path::new("results")
}

fn sweep(out: &std::path::Path, extra: &[&str], env: Option<(&str, &str)>) -> std::process::Output {
    let mut cmd = std::process::Command::new(crate::common::exe("prescale"));
    cmd.current_dir(repo())
        .args(["sweep", "experiments/provisioning-whatif.ron", "--quiet", "--out", out.to_str().unwrap()])
        .args(extra);
    if let Some((k, v)) = env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

/// Writes the experiment `exp` (named `name`) into `dir`, sweeps it into `dir/r` and returns its report.
fn sweep_report(dir: &std::path::Path, name: &str, exp: &str) -> String {
    let file = dir.join(format!("{name}.ron"));
    std::fs::write(&file, exp).unwrap();
    let o = std::process::Command::new(crate::common::exe("prescale"))
        .args(["sweep", file.to_str().unwrap(), "--quiet", "--out", dir.join("r").to_str().unwrap()])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o).1);
    read(dir.join("r").join(name).join("report.md"))
}

fn read(p: std::path::PathBuf) -> String {
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// A sweep's `runs.csv` as one map of column to cell per run (no cell there holds a comma).
fn runs_csv(path: &Path) -> Vec<std::collections::HashMap<String, String>> {
    let text = read(path.to_path_buf());
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().expect("a header").split(',').collect();
    lines.map(|l| header.iter().map(|h| h.to_string()).zip(l.split(',').map(String::from)).collect()).collect()
}

/// A report's equal-cost table, the rows of `family`: the SLO-minute ratios read at a baseline member's cost
/// (the mean before any `±`), where the family's range allowed a reading.
fn slo_ratios_at_equal_cost(section: &str, family: &str) -> Vec<f64> {
    section
        .lines()
        .filter(|l| l.starts_with(&format!("| {family} |")))
        .filter_map(|l| ratio(l.split(" | ").nth(3).unwrap()))
        .collect()
}

/// A report cell's mean (`0.41 ± 0.03` → 0.41); `None` for `–`.
fn ratio(cell: &str) -> Option<f64> {
    cell.split(" ± ").next().unwrap().trim().parse::<f64>().ok()
}
