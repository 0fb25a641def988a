//! `prescale validate`: any mix of scenario, experiment, training and serve files, each checked by its own
//! loader (told apart by the first RON word), every problem with its dotted path, and one line per good file.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Result;
use prescale_agents::neural::card::is_trained;
use prescale_sim::scenario::Sizing;

use crate::files::scenario_io::load_scenario;

/// The first line of a RON text that is not blank or a comment.
fn first_item(text: &str) -> Option<&str> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    text.lines().map(str::trim).find(|l| !l.is_empty() && !l.starts_with("//") && !l.starts_with("#!"))
}

pub(super) fn validate(files: &[PathBuf]) -> Result<ExitCode> {
    // Printed at the end: a file that needs libtorch re-runs the whole command line in `prescale-torch`
    // (see `torch_gate`), which must not repeat what this process printed.
    let mut report = String::new();
    let mut bad = 0;
    for f in files {
        let first = std::fs::read_to_string(f).ok().and_then(|t| first_item(&t).map(str::to_string));
        let mut warnings = Vec::new();
        let outcome = match first.as_deref() {
            Some(l) if l.starts_with("Train") => crate::neural::train::check(f),
            Some(l) if l.starts_with("Serve") => crate::live::config::load_serve(f).map(|l| {
                let c = &l.config;
                format!(
                    "serve '{}': controller {:?}, every {} s, mode {:?}, {} queries, from {}",
                    c.name,
                    controller_name(&c.controller),
                    c.interval_s,
                    c.mode,
                    c.queries.named().len(),
                    c.prometheus.url
                )
            }),
            Some(l) if l.starts_with("Experiment") => crate::lab::experiment::load_experiment(f, Path::new("results"))
                .map(|e| {
                    let cfg = &e.config;
                    let trainings = if e.jobs.is_empty() {
                        String::new()
                    } else {
                        let done = e.jobs.iter().filter(|j| is_trained(&j.dir)).count();
                        format!("; {} training(s) first, {done} already in results/{}/models", e.jobs.len(), cfg.name)
                    };
                    format!(
                        "experiment '{}': {} runs = {} scenario(s) x {} axis combination(s) x {} controller(s) x {} \
                         seed(s){trainings}",
                        cfg.name,
                        e.cells.len(),
                        cfg.scenarios.len(),
                        cfg.axes.iter().map(|a| a.values.len()).product::<usize>(),
                        cfg.controllers.len().max(1),
                        cfg.seeds.len()
                    )
                }),
            _ => load_scenario(f).and_then(|l| l.prepare(l.config.seed)).map(|p| {
                let trace = p.trace_report.as_ref().map(|t| format!("; trace: {}", t.summary())).unwrap_or_default();
                // What the demand asks of the fleet, and a warning where the count limits decide the run.
                let sizing = p.sizing();
                warnings.extend(sizing.iter().flat_map(Sizing::warnings));
                format!(
                    "{} steps of {} s, {:?}, controller {:?}{trace}{}",
                    p.demand.steps(),
                    p.demand.step_s,
                    p.config.fidelity,
                    controller_name(&p.config.controller),
                    sizing.map(|s| format!("; sizing: {}", s.summary())).unwrap_or_default(),
                )
            }),
        };
        match outcome {
            Ok(summary) => {
                writeln!(report, "{}: ok ({summary})", f.display())?;
                for w in warnings {
                    writeln!(report, "  warning: {w}")?;
                }
            }
            Err(diags) => {
                bad += 1;
                writeln!(
                    report,
                    "{}: {} problem{}",
                    f.display(),
                    diags.len(),
                    if diags.len() == 1 { "" } else { "s" }
                )?;
                for d in diags {
                    writeln!(report, "  {d}")?;
                }
            }
        }
    }
    print!("{report}");
    Ok(if bad == 0 { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

pub(super) fn controller_name(c: &prescale_agents::ControllerConfig) -> String {
    use prescale_sim::scenario::ControllerSpec;
    c.name()
}
