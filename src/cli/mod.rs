//! The command line: the clap schema (`args`), this dispatch table, and one module per command (or family of
//! commands). Flags are parsed in two stages (clap's raw values, then checks across flags), and every error
//! becomes one line naming the flag and what it accepts.
//!
//! What it is not: no logic another front end would need; each command calls the library's rooms and prints.

mod args;
#[cfg(feature = "torch")]
pub mod demo;
mod lab;
pub mod output;
mod reference;
mod run;
mod serve;
mod train;
mod validate;

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Result, bail};
use clap::Parser;

use crate::bench;
#[cfg(feature = "torch")]
use crate::neural::gate::TorchCommands;
use crate::neural::gate::require;
use args::{Cli, Command, one_line};
use lab::{cmd_collect, cmd_plot, cmd_slurm, cmd_sweep, cmd_train_only};
use reference::{check_reference, cmd_reference};
use run::cmd_run;
use serve::cmd_serve;
use validate::validate;

#[cfg(feature = "torch")]
/// Installs libtorch's side in this process: the agents' neural runtime and the front end's commands that need
/// it (what `prescale-torch` does first; tests that use models in process call it too). Idempotent. It lives
/// here, on the top floor, because the table names commands from every room.
pub fn install_torch() {
    prescale_agents::neural::torch::install_torch();
    crate::neural::gate::install(TorchCommands {
        demo: demo::run,
        train: train::cmd_train,
        export: crate::neural::train::export,
        forecast_networks: crate::neural::forecast_eval::NETWORKS,
        train_jobs: crate::lab::stages::train_jobs,
        run_group: crate::lab::sweep::group::run_group,
        bench_neural: crate::bench::neural_costs,
        bench_serve: crate::bench::serve_costs,
    });
}

/// The body of both binaries' `main` (`prescale` and `prescale-torch`): runs this process's command line and maps
/// its outcome to an exit code, printing the one error message.
pub fn main() -> ExitCode {
    match run(std::env::args_os()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// Runs the command line `args` (program name first) and returns the exit code.
pub fn run<I: IntoIterator<Item = OsString>>(args: I) -> Result<ExitCode> {
    if let Some(rt) = prescale_agents::neural::runtime::installed() {
        (rt.init_thread)();
    }
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            use clap::error::ErrorKind::*;
            return match e.kind() {
                DisplayHelp | DisplayVersion | DisplayHelpOnMissingArgumentOrSubcommand => {
                    e.print()?;
                    Ok(ExitCode::from(e.exit_code() as u8))
                }
                _ => bail!("{}", one_line(&e)),
            };
        }
    };
    match cli.command.unwrap_or(Command::Demo { out: PathBuf::from("results"), quick: false, quiet: false }) {
        Command::Demo { out, quick, quiet } => (require("the demo (it trains agents)").demo)(&out, quick, quiet),
        Command::Run { scenario, seed, out, fidelity, quiet, record_live } => {
            cmd_run(&scenario, seed, fidelity, &out, quiet, record_live)
        }
        Command::Serve { config, replay, out, prometheus, listen, grpc_listen } => {
            cmd_serve(&config, replay, out.as_deref(), prometheus, listen, grpc_listen)
        }
        Command::Validate { files } => validate(&files),
        Command::Scaffold { trace, meaning, date_order, out, name, force } => {
            let options = crate::lab::scaffold::Options { trace, meaning, date_order, out, name, force };
            let done = crate::lab::scaffold::scaffold(&options)?;
            println!("{}", done.summary);
            Ok(ExitCode::SUCCESS)
        }
        Command::CheckReference => check_reference(),
        Command::Plot { dir, seed, window_h } => cmd_plot(&dir, &crate::plot::PlotOptions { seed, window_h }),
        Command::Sweep { experiment, out, collect: true, .. } => cmd_collect(&experiment, &out),
        Command::Sweep { experiment, out, train_only: true, quiet, .. } => cmd_train_only(&experiment, &out, quiet),
        Command::Sweep { experiment, out, threads, quiet, batch_runs, shard, .. } => cmd_sweep(
            &experiment,
            crate::lab::sweep::SweepOptions {
                out_root: out,
                threads: threads.map(|t| t as usize),
                quiet,
                batch_runs,
                shard,
            },
        ),
        Command::Slurm { experiment, out, array_size, partition, time, cpus_per_task, batch_runs, submit } => {
            cmd_slurm(
                &experiment,
                &crate::lab::slurm::SlurmOptions {
                    out_root: out,
                    array_size: array_size.map(|n| n as usize),
                    partition,
                    time,
                    cpus_per_task,
                    batch_runs,
                    submit,
                },
            )
        }
        Command::Reference { workload } => cmd_reference(workload),
        Command::Bench(args) => bench::run(&args),
        Command::Train { config, out, quiet } => (require("prescale train").train)(&config, &out, quiet),
        Command::ForecastEval {
            traces,
            out,
            csv,
            models,
            epochs,
            horizons,
            refit,
            refit_window_s,
            fine_tune_window_s,
            fine_tune_steps,
            fine_tune_learning_rate,
            trained,
            point,
            ensemble,
            quiet,
        } => {
            let fine_tune = prescale_agents::neural::facts::FineTuneConfig {
                every_s: 3600.0,
                window_s: fine_tune_window_s,
                steps: fine_tune_steps,
                learning_rate: fine_tune_learning_rate,
            };
            let mut opts = crate::neural::forecast_eval::EvalOptions {
                epochs,
                refit,
                refit_window_s,
                fine_tune,
                trained,
                point,
                ensemble,
                ..Default::default()
            };
            if !horizons.is_empty() {
                opts.horizons = horizons.into_iter().map(|h| h as usize).collect();
            }
            if !models.is_empty() {
                opts.models = models;
            }
            if opts.needs_torch() {
                // Networks: in `prescale-torch` (this re-runs the command line there unless it is this process).
                let why = format!("prescale forecast-eval with {}", opts.networks_named());
                opts.networks = Some(require(&why).forecast_networks);
            }
            train::cmd_forecast_eval(traces, &opts, out.as_deref(), csv.as_deref(), quiet)
        }
        Command::Export { model_dir } => {
            (require("prescale export").export)(&model_dir)?;
            Ok(ExitCode::SUCCESS)
        }
    }
}
