//! The default demo (`prescale` with no arguments, or `prescale demo`): the whole workbench on two worlds,
//! a synthetic flash crowd and the test period of a real trace shipped in the repository (NAB ELB, MIT).
//!
//! 1. **Train** the learned agents from `training/` into `<out>/demo/models/` (reused on a later run when they
//!    load and pass their card checks): a GRU forecaster on the trace's first 70 %, and behavioural-cloning
//!    policies with and without DAgger on the flash crowd's *history* (two other crowds) and on the trace's
//!    first 70 %.
//! 2. **Sweep** `experiments/demo-flash-crowd.ron` and `experiments/demo-elb.ron` (HPA, a classical predictive
//!    controller, forecast cloning, BC with and without DAgger, the oracle; five seeds) in parallel, resumable.
//! 3. **Report**: `<out>/demo/report.md` (both experiments' tables with 95 % CIs and paired differences against
//!    the HPA) and the figures of `prescale plot` for each.
//!
//! `--quick` (for tests) trains for two epochs and one DAgger round and sweeps one seed.

use std::fmt::Write as _;
use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use prescale_agents::neural::model::Model;

use crate::lab::sweep::{SweepOptions, sweep};

/// Training files of the demo, in `training/`.
const TRAININGS: [&str; 5] = ["gru-elb", "bc-flash-crowd", "bc-flash-crowd-no-dagger", "bc-elb", "bc-elb-no-dagger"];
/// Experiment files of the demo, in `experiments/`.
const EXPERIMENTS: [&str; 2] = ["demo-flash-crowd", "demo-elb"];

fn quick_text(text: &str) -> String {
    let mut t = text.to_string();
    for (from, to) in [
        ("seeds: [1, 2, 3, 4, 5]", "seeds: [1]"),
        ("rounds: 3", "rounds: 1"),
        ("seeds: [11, 12, 13, 14]", "seeds: [11]"),
        ("seeds: [11, 12]", "seeds: [11]"),
    ] {
        t = t.replace(from, to);
    }
    // Two epochs at most.
    let mut out = String::new();
    let mut rest = t.as_str();
    while let Some(i) = rest.find("max_epochs: ") {
        out.push_str(&rest[..i]);
        out.push_str("max_epochs: 2");
        rest = &rest[i + "max_epochs: ".len()..];
        rest = rest.trim_start_matches(|c: char| c.is_ascii_digit());
    }
    out.push_str(rest);
    out
}

/// Runs the demo into `<out>/demo/`.
///
/// # Errors
/// Training, sweep, plotting or I/O problems.
pub fn run(out: &Path, quick: bool, quiet: bool) -> Result<ExitCode> {
    let t0 = Instant::now();
    let demo = out.join("demo");
    let models = demo.join("models");
    std::fs::create_dir_all(&models).with_context(|| format!("creating {}", models.display()))?;
    let models_abs = models.canonicalize().unwrap_or(models.clone());
    println!(
        "prescale {} demo: flash crowd + NAB ELB trace; HPA vs classical predictive vs forecast cloning vs BC (with and \
         without DAgger) vs oracle{}",
        env!("CARGO_PKG_VERSION"),
        if quick { " (quick)" } else { "" }
    );
    // The inputs, as in the repository (models are named relative to experiments/).
    let work = demo.join("inputs");
    crate::files::embedded::write_inputs(&work, |text| {
        let text = text.replace("\"../results/demo/models", &format!("\"{}", models_abs.display()));
        if quick { quick_text(&text) } else { text }
    })?;
    // 1. Models.
    let mut retrained = false;
    for name in TRAININGS {
        let dir = models.join(name);
        if Model::load(&dir).is_ok() {
            println!("  model {name}: reusing {}", dir.display());
            continue;
        }
        let file = work.join("training").join(format!("{name}.ron"));
        let t = Instant::now();
        let trained = crate::neural::train::train(&file, &models, quiet)?;
        let m = &trained.model.card.metrics;
        let fig = |k: &str| m.get(k).map_or(String::new(), |v| format!("{k} {v:.3}"));
        println!(
            "  model {name}: trained in {:.1} s ({}{})",
            t.elapsed().as_secs_f64(),
            fig("test_mase_h1"),
            fig("test_slo_violation_minutes")
        );
        retrained = true;
    }
    // 2. Sweeps.
    let mut report = String::new();
    writeln!(
        report,
        "# prescale demo\n\nTwo worlds, five seeds each (`prescale demo`; models in `models/`, trained from `training/`). \
         Each section is the experiment's own report: means with 95 % confidence intervals over seeds, and paired \
         differences and ratios against the HPA (Kubernetes, as its controller runs it) on the same seeds. Figures: `<experiment>/plots/`.\n"
    )?;
    for name in EXPERIMENTS {
        let file = work.join("experiments").join(format!("{name}.ron"));
        if retrained {
            // Results of other weights must not be mixed in.
            let _ = std::fs::remove_dir_all(demo.join(name));
        }
        let o = sweep(
            &file,
            &SweepOptions { out_root: demo.clone(), threads: None, quiet, batch_runs: false, shard: None },
        )?;
        for (id, e) in &o.failed {
            println!("  failed: {id}: {e}");
        }
        if !o.failed.is_empty() {
            bail!("{} runs of {name} failed", o.failed.len());
        }
        if o.interrupted {
            bail!(
                "interrupted (Ctrl-C): {} of {} runs of {name} are finished; run the same command again to resume",
                o.finished,
                o.cells
            );
        }
        let figures = crate::plot::plot(&o.dir)?;
        println!(
            "  {name}: {} runs ({} reused); report {}/report.md, {} figures",
            o.ran + o.skipped,
            o.skipped,
            o.dir.display(),
            figures.len() / 2
        );
        let sub = std::fs::read_to_string(o.dir.join("report.md"))?;
        // The experiment's report, one heading level down, with its two main figures under its title.
        for (i, line) in sub.lines().enumerate() {
            if line.starts_with('#') {
                writeln!(report, "#{line}")?;
            } else {
                writeln!(report, "{line}")?;
            }
            if i == 0 {
                writeln!(report, "\n![cost vs SLO]({name}/plots/pareto.png)\n![bars with CIs]({name}/plots/bars.png)")?;
            }
        }
        writeln!(report)?;
    }
    let path = demo.join("report.md");
    crate::files::results::write_atomically(&path, &report)?;
    println!("report: {} ({:.0} s)", path.display(), t0.elapsed().as_secs_f64());
    Ok(ExitCode::SUCCESS)
}
