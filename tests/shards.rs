//! Sweeps cut into shards and merged (issue 18): the split is a partition of the cells, a collect of the
//! shards' cells writes the same bytes as a whole sweep, missing and failed cells are named, the locks keep
//! shards beside each other but never beside a whole sweep — and the same on a real single-node Slurm cluster
//! (started by `scripts/slurm-cluster.sh` in a loopback-only network namespace): a 4-task job array, one task
//! killed mid-way, the resubmission of only that shard, and byte-identical tables and figures.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::{repo, text};

const EXP: &str = "experiments/provisioning-whatif.ron";
const NAME: &str = "provisioning-whatif";

fn prescale_env(args: &[&str], env: &[(&str, &str)]) -> (Output, String) {
    let mut cmd = Command::new(crate::common::exe("prescale"));
    cmd.current_dir(repo()).args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let o = cmd.output().unwrap();
    let (a, b) = text(&o);
    (o, format!("{a}{b}"))
}

fn run(args: &[&str]) -> (Output, String) {
    prescale_env(args, &[])
}

fn bytes(p: PathBuf) -> Vec<u8> {
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// The experiment's cells, as the library expands them.
fn cells(out: &Path) -> Vec<prescale::lab::experiment::Cell> {
    prescale::lab::experiment::load_experiment(&repo().join(EXP), out).unwrap().cells
}

/// A whole sweep of the experiment (plus its figures) into `out`, once per test binary.
fn whole(out: &Path) -> PathBuf {
    let (o, all) = run(&["sweep", EXP, "--quiet", "--out", out.to_str().unwrap()]);
    assert!(o.status.success(), "{all}");
    let (o, all) = run(&["plot", out.join(NAME).to_str().unwrap()]);
    assert!(o.status.success(), "{all}");
    out.join(NAME)
}

/// runs.csv and report.md of `a` and `b` equal byte for byte, and (when both were drawn) every figure.
fn assert_same_tables(a: &Path, b: &Path, figures: bool) {
    for f in ["runs.csv", "report.md"] {
        assert!(bytes(a.join(f)) == bytes(b.join(f)), "{f} differs between {} and {}", a.display(), b.display());
    }
    if figures {
        let names = common::files_under(&a.join("plots"));
        assert!(names.len() >= 8, "{names:?}");
        assert_eq!(names, common::files_under(&b.join("plots")));
        for n in names {
            assert!(bytes(a.join("plots").join(&n)) == bytes(b.join("plots").join(&n)), "figure {n} differs");
        }
    }
}

#[test]
fn the_split_is_a_balanced_partition_fixed_by_the_experiment() {
    let d = tempfile::tempdir().unwrap();
    let cells = cells(d.path());
    assert_eq!(cells.len(), 36);
    assert_eq!(prescale::lab::sweep::work_units(&cells, false), 36, "no BC groups here: each cell is its own unit");
    for n in [1, 2, 3, 4, 7, 36, 50] {
        let a = prescale::lab::sweep::shard_assignment(&cells, n, false);
        assert_eq!(a, prescale::lab::sweep::shard_assignment(&cells, n, false), "a function of the experiment");
        let mut per = vec![0usize; n];
        for &k in &a {
            assert!(k < n);
            per[k] += 1;
        }
        let used: Vec<usize> = per.iter().copied().filter(|&c| c > 0).collect();
        assert_eq!(per.iter().sum::<usize>(), 36, "every cell in exactly one shard");
        assert!(used.iter().max().unwrap() - used.iter().min().unwrap() <= 1, "balanced to one cell: {per:?}");
        // Every controller's cells spread over the shards (cost balance when controllers differ in cost).
        if n == 4 {
            for ctl in ["hpa", "oracle"] {
                let shards: std::collections::BTreeSet<usize> =
                    cells.iter().zip(&a).filter(|(c, _)| c.controller == ctl).map(|(_, k)| *k).collect();
                assert!(shards.len() >= 3, "{ctl}: {shards:?}");
            }
        }
    }
    for bad in ["3/3", "0/0", "-1/2", "1", "a/b", "1/100001"] {
        let (o, all) = run(&["sweep", EXP, &format!("--shard={bad}"), "--out", d.path().to_str().unwrap()]);
        assert!(!o.status.success() && all.contains("expected K/N with 0 <= K < N"), "{bad}: {all}");
    }
    let (o, all) = run(&["sweep", EXP, "--shard", "0/2", "--collect"]);
    assert!(!o.status.success() && all.contains("cannot be used with"), "{all}");
}

#[test]
fn shards_then_collect_equal_a_whole_sweep_byte_for_byte_and_name_what_is_missing() {
    let d = tempfile::tempdir().unwrap();
    let a = whole(&d.path().join("a"));
    let out = d.path().join("b");
    let outs = out.to_str().unwrap();
    let (o, all) = run(&["sweep", EXP, "--collect", "--out", outs]);
    assert!(!o.status.success() && all.contains("nothing to collect"), "{all}");
    // Shard 1 of 3 loses a cell to a failure; shard 2 has not run.
    let assignment = prescale::lab::sweep::shard_assignment(&cells(&out), 3, false);
    let cells = cells(&out);
    let in_shard = |k: usize| cells.iter().zip(&assignment).filter(move |(_, s)| **s == k).map(|(c, _)| c.id.clone());
    let failing = in_shard(1).nth(3).unwrap();
    let (o, all) = run(&["sweep", EXP, "--quiet", "--shard", "0/3", "--out", outs]);
    assert!(o.status.success() && all.contains("shard 0/3 (12 cells): 12 runs done now"), "{all}");
    let (o, all) =
        prescale_env(&["sweep", EXP, "--quiet", "--shard", "1/3", "--out", outs], &[("PRESCALE_FAIL_CELL", &failing)]);
    assert_eq!(o.status.code(), Some(1), "{all}");
    assert!(!out.join(NAME).join("runs.csv").exists(), "a shard writes no tables");
    let (o, all) = run(&["sweep", EXP, "--collect", "--out", outs]);
    assert_eq!(o.status.code(), Some(1), "{all}");
    assert!(all.contains("23 of 36 cells finished") && all.contains("13 cells missing"), "{all}");
    assert!(
        all.contains(&format!("missing: {failing}: failed in shard 1/3: failure injected by PRESCALE_FAIL_CELL")),
        "{all}"
    );
    for id in in_shard(2) {
        assert!(all.contains(&format!("missing: {id}: not run")), "{id}: {all}");
    }
    let manifest: serde_json::Value = serde_json::from_slice(&bytes(out.join(NAME).join("manifest.json"))).unwrap();
    assert_eq!(manifest["missing"].as_array().unwrap().len(), 13);
    assert_eq!(manifest["shards"].as_array().unwrap().len(), 2);
    // Rerunning shard 1 runs only its failed cell; shard 2 runs; then the tables are a whole sweep's.
    let (o, all) = run(&["sweep", EXP, "--quiet", "--shard", "1/3", "--out", outs]);
    assert!(o.status.success() && all.contains("1 runs done now, 11 finished before"), "{all}");
    let (o, all) = run(&["sweep", EXP, "--quiet", "--shard", "2/3", "--out", outs]);
    assert!(o.status.success(), "{all}");
    let (o, all) = run(&["sweep", EXP, "--collect", "--out", outs]);
    assert!(o.status.success() && all.contains("36 of 36 cells finished"), "{all}");
    let (o, all) = run(&["plot", out.join(NAME).to_str().unwrap()]);
    assert!(o.status.success(), "{all}");
    assert_same_tables(&a, &out.join(NAME), true);
    // A whole sweep over the same folder finds every cell finished.
    let (o, all) = run(&["sweep", EXP, "--quiet", "--out", outs]);
    assert!(o.status.success() && all.contains("0 runs done now, 36 finished before"), "{all}");
    assert_same_tables(&a, &out.join(NAME), false);
}

#[test]
fn shards_run_side_by_side_but_never_beside_a_whole_sweep_or_twice() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("o");
    std::fs::create_dir_all(&out).unwrap();
    let outs = out.to_str().unwrap();
    // `flock` (util-linux) holds the locks as a running shard would.
    let hold = |args: &[&str]| {
        let child = Command::new("flock").args(args).arg("sleep").arg("30").spawn().expect("flock (util-linux) runs");
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_millis(50));
            if Path::new(args.last().unwrap()).exists() {
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(200));
        child
    };
    let whole_lock = out.join(format!(".{NAME}.lock"));
    let shard_lock = out.join(format!(".{NAME}.shard-0-of-3.lock"));
    let mut a = hold(&["--shared", whole_lock.to_str().unwrap()]);
    let mut b = hold(&[shard_lock.to_str().unwrap()]);
    let (o, all) = run(&["sweep", EXP, "--quiet", "--out", outs]);
    assert!(!o.status.success() && all.contains("is being written by another sweep"), "{all}");
    let (o, all) = run(&["sweep", EXP, "--collect", "--out", outs]);
    assert!(!o.status.success() && all.contains("is being written by another sweep"), "{all}");
    let (o, all) = run(&["sweep", EXP, "--quiet", "--shard", "0/3", "--out", outs]);
    assert!(!o.status.success() && all.contains("shard-0-of-3 is already running"), "{all}");
    let (o, all) = run(&["sweep", EXP, "--quiet", "--shard", "1/3", "--out", outs]);
    assert!(o.status.success(), "a shard runs beside another: {all}");
    for c in [&mut a, &mut b] {
        let _ = c.kill();
        let _ = c.wait();
    }
}

#[test]
fn slurm_scripts_are_written_and_bad_options_named() {
    let d = tempfile::tempdir().unwrap();
    let outs = d.path().join("o");
    let outs = outs.to_str().unwrap();
    let (o, all) =
        run(&["slurm", EXP, "--out", outs, "--array-size", "5", "--partition", "debug", "--time", "0:30:00"]);
    assert!(o.status.success(), "{all}");
    assert!(all.contains("36 cells, 36 unfinished; 5 shards (36 work units), 5 to run: array 0-4"), "{all}");
    assert!(all.contains("sbatch --parsable --dependency=afterany:$SHARDS"), "{all}");
    let s = String::from_utf8(bytes(d.path().join("o").join(NAME).join("slurm/shards.sbatch"))).unwrap();
    for want in [
        "#SBATCH --partition=debug",
        "#SBATCH --time=0:30:00",
        "#SBATCH --array=0-4",
        &format!("#SBATCH --chdir={}", repo().display()),
        "'experiments/../scenarios/flash-crowd.ron'",
        "--shard \"$SLURM_ARRAY_TASK_ID/5\" --threads 1",
    ] {
        assert!(s.contains(want), "{want}: {s}");
    }
    // More shards than work units: one per unit.
    let (o, all) = run(&["slurm", EXP, "--out", outs, "--array-size", "100"]);
    assert!(o.status.success() && all.contains("36 shards (36 work units)"), "{all}");
    for (flag, value, want) in [
        ("--time", "2h", "expected a Slurm time limit"),
        ("--partition", "a;b", "expected a partition name"),
        ("--array-size", "0", "--array-size"),
        ("--cpus-per-task", "0", "--cpus-per-task"),
    ] {
        let (o, all) = run(&["slurm", EXP, "--out", outs, flag, value]);
        assert!(!o.status.success() && all.contains(want), "{flag} {value}: {all}");
    }
    // An invalid experiment writes nothing.
    std::fs::write(d.path().join("bad.ron"), "Experiment(name: \"bad\", scenarios: [\"nope.ron\"], seeds: [1])")
        .unwrap();
    let (o, all) = run(&["slurm", d.path().join("bad.ron").to_str().unwrap(), "--out", outs]);
    assert!(!o.status.success() && all.contains("nope.ron"), "{all}");
    assert!(!d.path().join("o/bad").exists());
}

/// A single-node Slurm cluster for one test, stopped (by the process ids its script recorded) when dropped.
struct Cluster {
    dir: PathBuf,
    enter: Vec<String>,
    conf: String,
}

impl Cluster {
    /// `None` (with the reason printed) where a network namespace cannot be created.
    fn start(dir: &Path) -> Option<Cluster> {
        let o = Command::new("bash")
            .arg(repo().join("scripts/slurm-cluster.sh"))
            .args(["start", dir.to_str().unwrap()])
            .output()
            .unwrap();
        let (_, err) = text(&o);
        if o.status.code() == Some(3) {
            eprintln!("SKIPPED: the Slurm test needs a network namespace, which cannot be created here: {err}");
            return None;
        }
        assert!(o.status.success(), "the Slurm cluster did not start: {err}");
        let env = std::fs::read_to_string(dir.join("env")).unwrap();
        let get = |k: &str| env.lines().find_map(|l| l.strip_prefix(&format!("{k}="))).unwrap().to_string();
        Some(Cluster {
            dir: dir.to_path_buf(),
            enter: get("RUN_IN").split_whitespace().map(str::to_string).collect(),
            conf: get("SLURM_CONF"),
        })
    }

    /// `cmd args` inside the namespace, with this cluster's configuration.
    fn run(&self, cmd: &str, args: &[&str], env: &[(&str, &str)]) -> (Output, String) {
        let mut c = Command::new(&self.enter[0]);
        c.args(&self.enter[1..]).arg(cmd).args(args).current_dir(repo()).env("SLURM_CONF", &self.conf);
        for (k, v) in env {
            c.env(k, v);
        }
        let o = c.output().unwrap();
        let (a, b) = text(&o);
        (o, format!("{a}{b}"))
    }

    /// Waits until none of `jobs` is queued or running.
    fn wait(&self, jobs: &[String]) {
        let t0 = Instant::now();
        loop {
            let (o, all) = self.run("squeue", &["-h", "-o", "%F"], &[]);
            assert!(o.status.success(), "{all}");
            if !all.lines().any(|l| jobs.iter().any(|j| j == l.trim())) {
                return;
            }
            assert!(t0.elapsed() < Duration::from_secs(240), "jobs {jobs:?} still queued after 240 s: {all}");
            std::thread::sleep(Duration::from_millis(300));
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(repo().join("scripts/slurm-cluster.sh"))
            .args(["stop", self.dir.to_str().unwrap()])
            .status();
    }
}

/// The job ids `prescale slurm --submit` printed.
fn job_ids(out: &str) -> Vec<String> {
    out.lines().filter_map(|l| l.split_once(": job ").map(|(_, id)| id.trim().to_string())).collect()
}

#[test]
fn a_slurm_job_array_runs_the_sweep_and_a_resubmission_finishes_a_killed_shard() {
    let d = tempfile::tempdir().unwrap();
    let Some(cluster) = Cluster::start(&d.path().join("slurm")) else { return };
    let a = whole(&d.path().join("a"));
    let out = d.path().join("b");
    let outs = out.to_str().unwrap();
    let cells = cells(&out);
    let assignment = prescale::lab::sweep::shard_assignment(&cells, 4, false);
    let shard2: Vec<&str> =
        cells.iter().zip(&assignment).filter(|(_, k)| **k == 2).map(|(c, _)| c.id.as_str()).collect();
    assert_eq!(shard2.len(), 9);
    // Array task 2 is killed (SIGKILL, as by a node failure or `scancel --signal=KILL`) when it reaches its
    // second cell; the environment of the submission reaches every task.
    let exe = crate::common::exe("prescale");
    let (o, all) = cluster.run(
        exe,
        &["slurm", EXP, "--out", outs, "--array-size", "4", "--submit"],
        &[("PRESCALE_KILL_AT_CELL", shard2[1])],
    );
    assert!(o.status.success(), "{all}");
    assert!(all.contains("4 shards (36 work units), 4 to run: array 0-3"), "{all}");
    let jobs = job_ids(&all);
    assert_eq!(jobs.len(), 2, "the array and the collect: {all}");
    cluster.wait(&jobs);
    let dir = out.join(NAME);
    let runs = |id: &str| dir.join("runs").join(id).exists();
    assert!(runs(shard2[0]), "the killed task's first cell is finished and kept");
    assert!(shard2[1..].iter().all(|id| !runs(id)), "the rest of task 2 never ran");
    for k in [0, 1, 3] {
        assert!(dir.join(format!("shards/{k}-of-4.json")).exists(), "task {k} reported");
    }
    assert!(!dir.join("shards/2-of-4.json").exists(), "a killed task writes no report");
    // The collect job ran after the failed array (afterany) and named what is missing.
    let logs = common::files_under(&dir.join("slurm/logs"));
    let collect_log = logs.iter().find(|l| l.starts_with("collect-")).expect("a collect log");
    let log = String::from_utf8(bytes(dir.join("slurm/logs").join(collect_log))).unwrap();
    assert!(
        log.contains("28 of 36 cells finished") && log.contains(&format!("missing: {}: not run", shard2[1])),
        "{log}"
    );
    let task2 = logs.iter().find(|l| l.starts_with("shards-") && l.ends_with("_2.out")).expect("task 2's log");
    let (o, all) = run(&["sweep", EXP, "--collect", "--out", outs]);
    assert_eq!(o.status.code(), Some(1), "{all}");
    assert!(!dir.join("plots").exists(), "no figures of an incomplete experiment");
    // The resubmission runs only shard 2 (its 8 missing cells), and the result is a whole sweep's, byte for byte.
    let (o, all) = cluster.run(exe, &["slurm", EXP, "--out", outs, "--array-size", "4", "--submit"], &[]);
    assert!(o.status.success(), "{all}");
    assert!(all.contains("36 cells, 8 unfinished; 4 shards (36 work units), 1 to run: array 2"), "{all}");
    let jobs = job_ids(&all);
    cluster.wait(&jobs);
    let report = String::from_utf8(bytes(dir.join("shards/2-of-4.json"))).unwrap();
    assert!(report.contains("\"ran_now\": 8") && report.contains("\"skipped_finished\": 1"), "{report} ({task2})");
    assert_same_tables(&a, &dir, true);
    let (o, all) = run(&["sweep", EXP, "--collect", "--out", outs]);
    assert!(o.status.success() && all.contains("36 of 36 cells finished"), "{all}");
    // Everything finished: nothing to run, only a collect.
    let (o, all) = cluster.run(exe, &["slurm", EXP, "--out", outs, "--array-size", "4"], &[]);
    assert!(o.status.success() && all.contains("0 unfinished") && all.contains("0 to run"), "{all}");

    // An experiment that trains its model: a training job first, the array after it (afterok); the shards find
    // the model trained and reuse it.
    let staged = d.path().join("staged.ron");
    std::fs::write(
        &staged,
        format!(
            r#"Experiment(
    name: "staged",
    scenarios: ["{scenario}"],
    training: [(name: "gru", slice: Fraction(from: 0.0, to: 0.69), task: Forecast,
        model: (architecture: Gru(hidden: 8), window_steps: 24, horizon_steps: 8, output: Gaussian),
        training: (max_epochs: 2, batch_size: 256, max_batches_per_epoch: 4))],
    controllers: [
        (name: "hpa", controller: Hpa(target_utilisation: 0.6, max_replicas: 150)),
        (name: "gru-aci", controller: Predictive(predictor: Neural(model: "@gru"), variance: AdaptiveConformal(alpha: 0.05), allocator: (target_utilisation: 0.6))),
    ],
    seeds: [1, 2],
)"#,
            scenario = repo().join("scenarios/nab-elb-test.ron").display()
        ),
    )
    .unwrap();
    let (o, all) =
        cluster.run(exe, &["slurm", staged.to_str().unwrap(), "--out", outs, "--array-size", "2", "--submit"], &[]);
    assert!(o.status.success(), "{all}");
    assert!(all.contains("submitted train: job") && all.contains("2 to run: array 0-1"), "{all}");
    let jobs = job_ids(&all);
    assert_eq!(jobs.len(), 3, "{all}");
    cluster.wait(&jobs);
    let logs = dir.parent().unwrap().join("staged/slurm/logs");
    let names = common::files_under(&logs);
    let read_log = |prefix: &str| {
        let f = names.iter().find(|n| n.starts_with(prefix)).unwrap_or_else(|| panic!("{prefix} log in {names:?}"));
        std::fs::read_to_string(logs.join(f)).unwrap()
    };
    assert!(read_log("train-").contains("(trained)"), "{}", read_log("train-"));
    assert!(read_log("collect-").contains("4 of 4 cells finished"), "{}", read_log("collect-"));
    for k in 0..2 {
        let r = std::fs::read_to_string(dir.parent().unwrap().join(format!("staged/shards/{k}-of-2.json"))).unwrap();
        assert!(!r.contains("\"trained\""), "the shards reuse the model the training job made: {r}");
    }
}
