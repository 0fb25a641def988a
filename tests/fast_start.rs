//! Fast start: `prescale` does not load libtorch for commands that need no network, re-runs the ones that do in
//! `prescale-torch`, and both binaries compute the same results (see `src/torch_gate.rs`).
//!
//! Whether a process loaded libtorch is read from the dynamic loader itself (glibc's `LD_DEBUG=libs` names
//! every library it opens), so the check does not trust the code under test.

use crate::common;

use std::path::Path;
use std::process::{Command, Output};

use common::{repo, text};

fn run_with_loader_log(bin: &Path, args: &[&str]) -> (Output, bool) {
    let out = Command::new(bin).args(args).current_dir(repo()).env("LD_DEBUG", "libs").output().expect("binary runs");
    let loaded_torch = text(&out).1.lines().any(|l| l.contains("calling init") && l.contains("libtorch_cpu.so"));
    (out, loaded_torch)
}

#[test]
fn commands_without_networks_do_not_load_libtorch_and_the_others_run_in_prescale_torch() {
    let light = Path::new(crate::common::exe("prescale"));
    let torch = Path::new(crate::common::exe("prescale-torch"));
    // The check can fail: prescale-torch does load it.
    let (out, loaded) = run_with_loader_log(torch, &["--version"]);
    assert!(out.status.success());
    assert!(loaded, "the loader log shows libtorch for prescale-torch");
    let d = tempfile::tempdir().unwrap();
    let out_dir = d.path().to_str().unwrap();
    for args in [
        vec!["--version"],
        vec!["validate", "scenarios/flash-crowd.ron", "experiments/provisioning-whatif.ron", "examples/live/serve.ron"],
        vec!["run", "scenarios/flash-crowd.ron", "--quiet", "--out", out_dir],
        vec!["reference", "mmc-steady", "--lambda", "9", "--mu", "1", "--c", "10", "--T", "100", "--seed", "1"],
    ] {
        let (out, loaded) = run_with_loader_log(light, &args);
        assert!(out.status.success(), "{args:?}: {}", text(&out).1.lines().last().unwrap_or(""));
        assert!(!loaded, "prescale {args:?} loaded libtorch");
    }
    // A command that needs a network: re-run in prescale-torch (its answer, libtorch loaded), with the same
    // arguments and exit code.
    let (out, loaded) = run_with_loader_log(light, &["export", "no-such-model-dir"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(loaded, "export re-ran in prescale-torch");
    assert!(text(&out).1.contains("no-such-model-dir"), "{}", text(&out).1);
}

#[test]
fn both_binaries_compute_the_same_bits() {
    let d = tempfile::tempdir().unwrap();
    let mut tables = Vec::new();
    for (bin, name) in [(crate::common::exe("prescale"), "light"), (crate::common::exe("prescale-torch"), "torch")] {
        let out_dir = d.path().join(name);
        let out = Command::new(bin)
            .args(["run", "scenarios/bursty-mmpp.ron", "--quiet", "--out", out_dir.to_str().unwrap()])
            .current_dir(repo())
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out).1);
        let run = std::fs::read_dir(out_dir.join("bursty-mmpp")).unwrap().flatten().next().unwrap().path();
        tables.push(std::fs::read_to_string(run.join("timeseries.csv")).unwrap());
    }
    assert_eq!(tables[0], tables[1]);
}

/// `prescale` alone (copied without `prescale-torch`): what needs no network works; what does says which binary
/// is missing and where it was looked for, exit 2, nothing written; `validate` prints nothing twice.
#[test]
fn without_prescale_torch_beside_it_a_network_command_names_the_missing_binary() {
    let d = tempfile::tempdir().unwrap();
    let alone = d.path().join("prescale");
    std::fs::copy(crate::common::exe("prescale"), &alone).unwrap();
    let ok = Command::new(&alone).args(["validate", "scenarios/flash-crowd.ron"]).current_dir(repo()).output().unwrap();
    assert!(ok.status.success(), "{}", text(&ok).1);
    let scenario = std::fs::read_to_string(repo().join("scenarios/flash-crowd.ron")).unwrap();
    let start = scenario.find("controller:").unwrap();
    let end = start + scenario[start..].find("),").unwrap() + 2;
    let bc = d.path().join("bc.ron");
    std::fs::write(&bc, format!("{}controller: Bc(model: \"m\"),{}", &scenario[..start], &scenario[end..])).unwrap();
    let out_dir = d.path().join("out");
    for args in [
        vec!["validate", "scenarios/flash-crowd.ron", bc.to_str().unwrap()],
        vec!["run", bc.to_str().unwrap(), "--out", out_dir.to_str().unwrap()],
        vec!["train", "training/gru-elb.ron"],
    ] {
        let out = Command::new(&alone).args(&args).current_dir(repo()).output().unwrap();
        let (stdout, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains("prescale-torch") && stderr.contains("not found next to"), "{args:?}: {stderr}");
        assert!(stdout.is_empty(), "{args:?} printed before handing over: {stdout}");
    }
    assert!(!out_dir.exists(), "nothing written");
    // With prescale-torch beside it, the same validate answers once, naming the missing model directory.
    let both = Command::new(crate::common::exe("prescale"))
        .args(["validate", "scenarios/flash-crowd.ron", bc.to_str().unwrap()])
        .current_dir(repo())
        .output()
        .unwrap();
    let (stdout, _) = text(&both);
    assert_eq!(both.status.code(), Some(1), "{stdout}");
    assert_eq!(stdout.matches("flash-crowd.ron: ok").count(), 1, "{stdout}");
    assert!(stdout.contains("controller.model") && stdout.contains("no such model directory"), "{stdout}");
}
