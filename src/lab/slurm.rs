//! `prescale slurm`: an experiment's sweep as a Slurm job array, one array task per shard, and a collect job.
//!
//! The scripts go to `<out>/<experiment>/slurm/`: `train.sbatch` (only when models must be trained first),
//! `shards.sbatch` (array task K runs `prescale sweep EXP --shard K/N`) and `collect.sbatch` (`prescale sweep EXP
//! --collect`, then the figures). With `--submit` they are submitted with `sbatch`: the array after the training
//! (`afterok`), the collect after the array (`afterany`, so that it also runs — and names the failed cells — when
//! an array task failed; `afterok` would leave it pending forever). `submitted.json` records the job ids. A rerun
//! submits only the shards that still have unfinished cells (same `N`: the split is a function of the experiment),
//! and refuses while an earlier submission's jobs are still queued or running.
//!
//! Every path in the scripts is the one this command was given, run from the folder it was started in
//! (`#SBATCH --chdir`), so the cells' scenario paths — and with them `runs.csv` — are those of a local sweep: the
//! results folder, the experiment, its scenarios, traces and models, and the `prescale` binary must be on a
//! filesystem the compute nodes share. The shard script checks each of them on its node before running.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use crate::lab::experiment::{Experiment, load_experiment};
use crate::lab::sweep::{jobs_of, lock_experiment, open_results, shard_assignment, unfinished, work_units};

/// Options of `prescale slurm`.
#[derive(Clone, Debug)]
pub struct SlurmOptions {
    /// Results root (the experiment's folder goes below it).
    pub out_root: PathBuf,
    /// Shards (array tasks); default: the work units, at most [`DEFAULT_MAX_ARRAY`].
    pub array_size: Option<usize>,
    /// `#SBATCH --partition`.
    pub partition: Option<String>,
    /// `#SBATCH --time` (Slurm's formats: `M`, `M:S`, `H:M:S`, `D-H`, `D-H:M`, `D-H:M:S`).
    pub time: Option<String>,
    /// `#SBATCH --cpus-per-task`, and each shard's `--threads`.
    pub cpus_per_task: u32,
    /// Shards run with `--batch-runs`.
    pub batch_runs: bool,
    /// Submit with `sbatch` (else only write the scripts and print the commands).
    pub submit: bool,
}

/// Default cap on the number of shards when `--array-size` is not given.
pub const DEFAULT_MAX_ARRAY: usize = 32;

/// What `prescale slurm` wrote and (with `--submit`) submitted.
#[derive(Clone, Debug)]
pub struct SlurmPlan {
    /// `<out>/<experiment>/slurm/`.
    pub dir: PathBuf,
    /// Shards `N`.
    pub count: usize,
    /// The work units (see [`crate::lab::sweep::shard_assignment`]); `count` was capped to it.
    pub units: usize,
    /// Cells of the experiment, and of those, unfinished.
    pub cells: usize,
    /// See `cells`.
    pub unfinished: usize,
    /// The shards with unfinished cells (the array's indices).
    pub shards: Vec<usize>,
    /// The `sbatch` command lines (to run by hand without `--submit`).
    pub commands: Vec<String>,
    /// Job ids when submitted: `(what, id)` for `train`, `shards`, `collect`.
    pub jobs: Vec<(String, String)>,
}

/// Checks a Slurm time limit: minutes, `M:S`, `H:M:S`, `D-H`, `D-H:M`, `D-H:M:S`, or `UNLIMITED`/`INFINITE`.
///
/// # Errors
/// Any other text, with the accepted forms.
pub fn check_time(t: &str) -> std::result::Result<String, String> {
    let bad = || {
        format!(
            "'{}': expected a Slurm time limit: MINUTES, M:S, H:M:S, D-H, D-H:M or D-H:M:S (e.g. 30, 2:00:00, 1-12)",
            prescale_sim::input::clip(t, 40)
        )
    };
    if matches!(t, "UNLIMITED" | "INFINITE") {
        return Ok(t.to_string());
    }
    let num = |s: &str| !s.is_empty() && s.len() <= 6 && s.bytes().all(|b| b.is_ascii_digit());
    let (days, rest) = match t.split_once('-') {
        Some((d, r)) => (Some(d), r),
        None => (None, t),
    };
    let parts: Vec<&str> = rest.split(':').collect();
    let ok = days.is_none_or(num) && parts.iter().all(|p| num(p)) && parts.len() <= 3;
    if ok { Ok(t.to_string()) } else { Err(bad()) }
}

/// Checks a Slurm partition name (letters, digits, `_ . -`, and `,` between several).
///
/// # Errors
/// An empty name or another character.
pub fn check_partition(p: &str) -> std::result::Result<String, String> {
    let ok = !p.is_empty()
        && p.len() <= 200
        && p.split(',').all(|x| !x.is_empty() && x.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b)));
    if ok {
        Ok(p.to_string())
    } else {
        Err(format!(
            "'{}': expected a partition name (letters, digits, '_', '.', '-'; several separated by ',')",
            prescale_sim::input::clip(p, 40)
        ))
    }
}

/// Array indices as Slurm's `--array` list: runs of consecutive indices as ranges (`0-3,5,7-9`).
pub fn array_spec(indices: &[usize]) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < indices.len() {
        let mut j = i;
        while j + 1 < indices.len() && indices[j + 1] == indices[j] + 1 {
            j += 1;
        }
        out.push(if i == j { indices[i].to_string() } else { format!("{}-{}", indices[i], indices[j]) });
        i = j + 1;
    }
    out.join(",")
}

/// Quotes `s` for a POSIX shell (single quotes).
fn sh(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// The files a node needs to run the experiment's cells, as this process names them: the experiment, its
/// scenario files, their traces and the model directories controllers name (those that exist now: models a
/// training stage writes are outputs).
fn inputs(file: &Path, exp: &Experiment) -> Vec<String> {
    let mut out = vec![file.display().to_string()];
    for c in &exp.cells {
        out.push(c.scenario_file.display().to_string());
        if let prescale_sim::scenario::WorkloadConfig::Trace(t) = &c.scenario.config.workload {
            out.push(c.scenario_file.parent().unwrap_or(Path::new(".")).join(&t.path).display().to_string());
        }
        if let Some(m) = c.scenario.config.controller.clone().model_mut()
            && Path::new(m.as_str()).exists()
        {
            out.push(m.clone());
        }
    }
    let mut seen = std::collections::HashSet::new();
    out.retain(|p| seen.insert(p.clone()));
    out
}

/// Writes the batch scripts of the experiment in `file` and, with `opts.submit`, submits them.
///
/// # Errors
/// An invalid experiment (every problem, before anything is written); a results folder holding another
/// experiment or being written; bad options; with `--submit`: `sbatch` missing or failing, or an earlier
/// submission of this folder still queued or running.
///
/// Why one function: the order of its steps is the contract (validate, lock, check the queue, write every
/// script, then submit in dependency order), and each step uses what the previous ones found.
pub fn slurm(file: &Path, opts: &SlurmOptions) -> Result<SlurmPlan> {
    let exp = load_experiment(file, &opts.out_root).map_err(|d| crate::files::scenario_io::diagnostics_error(&d))?;
    let cfg = &exp.config;
    let root = opts.out_root.join(&cfg.name);
    let units = work_units(&exp.cells, opts.batch_runs);
    let count = match opts.array_size {
        Some(0) => bail!("--array-size must be at least 1"),
        Some(n) => n.min(units).max(1),
        None => units.clamp(1, DEFAULT_MAX_ARRAY),
    };
    if let Some(t) = &opts.time {
        check_time(t).map_err(|e| anyhow::anyhow!("--time {e}"))?;
    }
    if let Some(p) = &opts.partition {
        check_partition(p).map_err(|e| anyhow::anyhow!("--partition {e}"))?;
    }
    if opts.cpus_per_task == 0 {
        bail!("--cpus-per-task must be at least 1");
    }
    let exe = std::env::current_exe().context("locating the prescale binary")?;
    let cwd = std::env::current_dir().context("reading the current folder")?;
    let dir = root.join("slurm");
    // The results folder is made here, once, before any shard starts (and refused if it holds another
    // experiment); the lock keeps a local sweep or collect out meanwhile.
    {
        let _lock = lock_experiment(&opts.out_root, &cfg.name)?;
        open_results(cfg, &root)?;
        std::fs::create_dir_all(dir.join("logs")).with_context(|| format!("creating {}", dir.display()))?;
    }
    // What is still to run (verified, as a shard will): its shards, and the models it needs that are missing.
    let todo = unfinished(&exp.cells, &root);
    let mut shards: Vec<usize> = shard_assignment(&exp.cells, count, opts.batch_runs)
        .into_iter()
        .zip(&todo)
        .filter(|(_, t)| **t)
        .map(|(k, _)| k)
        .collect();
    shards.sort_unstable();
    shards.dedup();
    let unfinished = todo.iter().filter(|t| **t).count();
    let needs_training = jobs_of(exp.cells.iter().zip(&todo).filter(|(_, t)| **t).map(|(c, _)| c))
        .into_iter()
        .any(|j| !prescale_agents::neural::card::is_trained(&exp.jobs[j].dir));

    let exp_arg = sh(&file.display().to_string());
    let out_arg = sh(&opts.out_root.display().to_string());
    let exe_arg = sh(&exe.display().to_string());
    let logs = cwd.join(&dir).join("logs");
    let head = |job: &str, extra: &[String]| {
        let mut h = vec![
            "#!/bin/bash".to_string(),
            format!(
                "# Written by `prescale slurm` for experiment '{}' ({} cells, {count} shards).",
                cfg.name,
                exp.cells.len()
            ),
            format!("#SBATCH --job-name=prescale-{}-{job}", cfg.name),
            format!("#SBATCH --chdir={}", cwd.display()),
            // An array task's log by array job and index; the single jobs' by job id.
            format!("#SBATCH --output={}/{job}-{}.out", logs.display(), if job == "shards" { "%A_%a" } else { "%j" }),
        ];
        if let Some(p) = &opts.partition {
            h.push(format!("#SBATCH --partition={p}"));
        }
        if let Some(t) = &opts.time {
            h.push(format!("#SBATCH --time={t}"));
        }
        h.extend(extra.iter().cloned());
        h.push("set -u".to_string());
        h.push(format!("PRESCALE={exe_arg}"));
        h.join("\n") + "\n"
    };
    let check: String = {
        let files: Vec<String> = std::iter::once(exe.display().to_string()).chain(inputs(file, &exp)).collect();
        let list = files.iter().map(|f| sh(f)).collect::<Vec<_>>().join(" \\\n    ");
        format!(
            "# Inputs, checked on the node: they must be on a filesystem shared with the submitting machine.\n\
             for f in \\\n    {list}; do\n    \
             [ -e \"$f\" ] || {{ echo \"prescale slurm: $f is missing on $(hostname) (not on a shared filesystem?)\" >&2; exit 2; }}\n\
             done\n"
        )
    };
    let batch = if opts.batch_runs { " --batch-runs" } else { "" };
    let cpus = opts.cpus_per_task;
    let train = format!(
        "{}{check}exec \"$PRESCALE\" sweep {exp_arg} --out {out_arg} --train-only --threads {cpus}\n",
        head("train", &[format!("#SBATCH --cpus-per-task={cpus}")])
    );
    let shard_script = format!(
        "{}{check}exec \"$PRESCALE\" sweep {exp_arg} --out {out_arg} --shard \"$SLURM_ARRAY_TASK_ID/{count}\" \
         --threads {cpus} --quiet{batch}\n",
        head("shards", &[format!("#SBATCH --cpus-per-task={cpus}"), format!("#SBATCH --array=0-{}", count - 1)])
    );
    let collect_script = format!(
        "{}\"$PRESCALE\" sweep {exp_arg} --out {out_arg} --collect\nrc=$?\n\
         # The figures of a complete experiment.\n\
         if [ \"$rc\" = 0 ]; then \"$PRESCALE\" plot {} || rc=$?; fi\nexit $rc\n",
        head("collect", &["#SBATCH --cpus-per-task=1".to_string()]),
        sh(&root.display().to_string())
    );
    let write_script = |name: &str, text: &str| -> Result<PathBuf> {
        let p = dir.join(name);
        crate::files::results::write_atomically(&p, text)?;
        Ok(p)
    };
    let train_file = write_script("train.sbatch", &train)?;
    let shards_file = write_script("shards.sbatch", &shard_script)?;
    let collect_file = write_script("collect.sbatch", &collect_script)?;

    let spec = array_spec(&shards);
    let mut commands = Vec::new();
    if needs_training && !shards.is_empty() {
        commands.push(format!("sbatch --parsable {}", train_file.display()));
        commands
            .push(format!("sbatch --parsable --dependency=afterok:$TRAIN --array={spec} {}", shards_file.display()));
    } else if !shards.is_empty() {
        commands.push(format!("sbatch --parsable --array={spec} {}", shards_file.display()));
    }
    commands.push(if shards.is_empty() {
        format!("sbatch --parsable {}", collect_file.display())
    } else {
        format!("sbatch --parsable --dependency=afterany:$SHARDS {}", collect_file.display())
    });

    let mut jobs = Vec::new();
    if opts.submit {
        let record = dir.join("submitted.json");
        still_running(&record)?;
        let mut after_train = None;
        if needs_training && !shards.is_empty() {
            let id = sbatch(&[], &train_file)?;
            after_train = Some(format!("--dependency=afterok:{id}"));
            jobs.push(("train".to_string(), id));
        }
        let mut after_shards = None;
        if !shards.is_empty() {
            let mut args = vec![format!("--array={spec}")];
            args.extend(after_train);
            let id = sbatch(&args, &shards_file)?;
            after_shards = Some(format!("--dependency=afterany:{id}"));
            jobs.push(("shards".to_string(), id));
        }
        let id = sbatch(&after_shards.into_iter().collect::<Vec<_>>(), &collect_file)?;
        jobs.push(("collect".to_string(), id));
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        let v = json!({
            "submitted": crate::files::results::utc_stamp(now),
            "shards": count,
            "array": spec,
            "jobs": jobs.iter().map(|(w, id)| json!({"job": w, "id": id})).collect::<Vec<_>>(),
        });
        crate::files::results::write_atomically(&record, &serde_json::to_string_pretty(&v)?)?;
    }
    Ok(SlurmPlan { dir, count, units, cells: exp.cells.len(), unfinished, shards, commands, jobs })
}

/// Refuses while jobs of the submission recorded in `record` are still known to Slurm (queued or running).
fn still_running(record: &Path) -> Result<()> {
    let Ok(text) = std::fs::read_to_string(record) else { return Ok(()) };
    let ids: Vec<String> = serde_json::from_str::<Value>(&text)
        .ok()
        .and_then(|v| v.get("jobs").and_then(Value::as_array).cloned())
        .unwrap_or_default()
        .iter()
        .filter_map(|j| j.get("id").and_then(Value::as_str).map(str::to_string))
        .collect();
    if ids.is_empty() {
        return Ok(());
    }
    // All jobs' array job ids (%F; a plain job's own id): an id of a finished, purged job is simply absent.
    let out = Command::new("squeue")
        .args(["-h", "-o", "%F"])
        .output()
        .context("running squeue (is Slurm's client on the PATH?)")?;
    if !out.status.success() {
        bail!("squeue failed: {}", String::from_utf8_lossy(&out.stderr).trim());
    }
    let queued: std::collections::BTreeSet<String> =
        String::from_utf8_lossy(&out.stdout).lines().map(|l| l.trim().to_string()).collect();
    let running: Vec<&String> = ids.iter().filter(|i| queued.contains(*i)).collect();
    if !running.is_empty() {
        bail!(
            "jobs {} of the earlier submission ({}) are still queued or running: wait for them (squeue) or cancel them \
             (scancel) before submitting again",
            running.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", "),
            record.display()
        );
    }
    Ok(())
}

/// `sbatch --parsable ARGS SCRIPT`: the job id.
fn sbatch(args: &[String], script: &Path) -> Result<String> {
    let out = Command::new("sbatch")
        .arg("--parsable")
        .args(args)
        .arg(script)
        .output()
        .context("running sbatch (is Slurm's client on the PATH?)")?;
    if !out.status.success() {
        bail!("sbatch {} {} failed: {}", args.join(" "), script.display(), String::from_utf8_lossy(&out.stderr).trim());
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let id = text.trim().split(';').next().unwrap_or("").to_string();
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
        bail!("sbatch answered '{}', not a job id", prescale_sim::input::clip(text.trim(), 80));
    }
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn array_lists_and_limits() {
        assert_eq!(array_spec(&[0, 1, 2, 3]), "0-3");
        assert_eq!(array_spec(&[0, 2, 3, 5, 7, 8, 9]), "0,2-3,5,7-9");
        assert_eq!(array_spec(&[]), "");
        for ok in ["30", "30:00", "2:00:00", "1-12", "1-12:30", "1-12:30:00", "UNLIMITED"] {
            assert!(check_time(ok).is_ok(), "{ok}");
        }
        for bad in ["", "1h", "1:2:3:4", "-1", "1-", "a-1", "1--2", "1:"] {
            assert!(check_time(bad).unwrap_err().contains("Slurm time limit"), "{bad}");
        }
        assert!(check_partition("debug,gpu-a100").is_ok());
        assert!(check_partition("debug;rm").is_err() && check_partition("").is_err() && check_partition("a,").is_err());
        assert_eq!(sh("it's"), r"'it'\''s'");
    }
}
