//! The lab's commands: `prescale sweep` (and its `--collect` and `--train-only`), `prescale slurm`, `prescale plot`.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;

pub(super) fn cmd_plot(dir: &Path, opts: &crate::plot::PlotOptions) -> Result<ExitCode> {
    for f in crate::plot::plot_with(dir, opts)? {
        println!("{}", f.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// `prescale sweep`: the summary line, the damaged and failed cells, and the exit code (1 if a cell failed,
/// 130 after Ctrl-C).
pub(super) fn cmd_sweep(experiment: &Path, opts: crate::lab::sweep::SweepOptions) -> Result<ExitCode> {
    let o = crate::lab::sweep::sweep(experiment, &opts)?;
    println!(
        "{}{}: {} runs done now, {} finished before (verified, skipped), {} damaged (run again), {} failed",
        o.dir.display(),
        opts.shard.map(|s| format!(" shard {s} ({} cells)", o.cells)).unwrap_or_default(),
        o.ran,
        o.skipped,
        o.damaged.len(),
        o.failed.len()
    );
    if o.batched.groups > 0 {
        let b = o.batched;
        println!(
            "batched inference: {} groups, {} model calls in {} forward passes ({:.1}x fewer)",
            b.groups,
            b.model_calls,
            b.forward_passes,
            b.model_calls as f64 / b.forward_passes.max(1) as f64
        );
    }
    for (id, e) in &o.damaged {
        println!("  damaged: {id}: {e}");
    }
    for (id, e) in &o.failed {
        println!("  failed: {id}: {e}");
    }
    if let Some(s) = opts.shard {
        println!(
            "shard report: {}/shards/{}-of-{}.json (tables: prescale sweep {} --collect)",
            o.dir.display(),
            s.index,
            s.count,
            experiment.display()
        );
    } else {
        println!("results: {}/runs.csv, {}/report.md", o.dir.display(), o.dir.display());
    }
    if o.interrupted {
        eprintln!(
            "interrupted (Ctrl-C): {} of {} runs are finished and in the tables; run the same command again to \
             resume with the other {}",
            o.finished,
            o.cells,
            o.cells - o.finished
        );
        return Ok(ExitCode::from(130));
    }
    Ok(if o.failed.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

/// `prescale sweep --collect`: the tables, and the cells still missing (exit 1 if any).
pub(super) fn cmd_collect(experiment: &Path, out: &Path) -> Result<ExitCode> {
    let o = crate::lab::sweep::collect(experiment, out)?;
    println!("{}: {} of {} cells finished", o.dir.display(), o.finished, o.cells);
    println!("results: {}/runs.csv, {}/report.md", o.dir.display(), o.dir.display());
    if o.missing.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    eprintln!("{} cells missing (the tables hold only the finished ones):", o.missing.len());
    for (id, why) in &o.missing {
        eprintln!("  missing: {id}: {why}");
    }
    eprintln!(
        "rerun their shards (`prescale slurm {} --submit` submits only those), then collect again",
        experiment.display()
    );
    Ok(ExitCode::from(1))
}

/// `prescale sweep --train-only`: each model and what happened to it (exit 1 if one failed).
pub(super) fn cmd_train_only(experiment: &Path, out: &Path, quiet: bool) -> Result<ExitCode> {
    let (rows, failed) = crate::lab::sweep::train_models(experiment, out, quiet)?;
    for r in &rows {
        println!(
            "model {}: {} ({})",
            r["stage"].as_str().unwrap_or(""),
            r["dir"].as_str().unwrap_or(""),
            r["state"].as_str().unwrap_or("")
        );
    }
    for (stage, e) in &failed {
        eprintln!("training stage '{stage}' failed: {e}");
    }
    Ok(if failed.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

/// `prescale slurm`: the scripts, the shards to run and the jobs submitted (or the commands to submit them).
pub(super) fn cmd_slurm(experiment: &Path, opts: &crate::lab::slurm::SlurmOptions) -> Result<ExitCode> {
    let p = crate::lab::slurm::slurm(experiment, opts)?;
    println!(
        "{}: {} cells, {} unfinished; {} shards ({} work units), {} to run{}",
        p.dir.display(),
        p.cells,
        p.unfinished,
        p.count,
        p.units,
        p.shards.len(),
        if p.shards.is_empty() {
            String::new()
        } else {
            format!(": array {}", crate::lab::slurm::array_spec(&p.shards))
        }
    );
    if opts.submit {
        for (what, id) in &p.jobs {
            println!("submitted {what}: job {id}");
        }
    } else {
        println!("scripts written; submit them with (or rerun with --submit):");
        for c in &p.commands {
            println!("  {c}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
