//! The command line: flags are parsed in two stages (clap's raw values, then checks across flags), and every
//! error becomes one line naming the flag and what it accepts.

use std::ffi::OsString;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Result, bail};
use clap::{Args, Parser, Subcommand};
use prescale_sim::reference::{
    AUTOSCALE_CHECKS, AutoscaleParams, CheckLine, MMC_CHECKS, MmcParams, run_autoscale, run_mmc,
};
use prescale_sim::scenario::Sizing;
use serde_json::Value;

use crate::bench::{self, BenchArgs};
use crate::output::{key_value_and_result, with_field};
use crate::procinfo::peak_rss_mib;
use crate::results::write_run;
use crate::scenario_io::{Loaded, load_scenario};
use crate::torch_gate::require;
use indicatif::{ProgressBar, ProgressStyle};
use prescale_agents::neural::model::is_trained;

/// prescale: a discrete-event simulator and workbench for predictive autoscaling.
#[derive(Parser, Debug)]
#[command(name = "prescale", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// The built-in demo (what `prescale` with no command does): train the learned agents, sweep the flash
    /// crowd and the NAB ELB trace over HPA, classical predictive, forecast cloning, BC with and without DAgger
    /// and the oracle, five seeds, and write `<out>/demo/report.md` with figures.
    Demo {
        /// Results root folder.
        #[arg(long, value_name = "DIR", default_value = "results")]
        out: PathBuf,
        /// A fast smoke run: two training epochs, one DAgger round, one seed.
        #[arg(long)]
        quick: bool,
        /// No progress bars.
        #[arg(long)]
        quiet: bool,
    },
    /// Run one scenario file and write `<out>/<scenario>/<run-id>/` (scenario.ron, timeseries.csv,
    /// summary.json).
    Run {
        /// Scenario file (RON).
        scenario: PathBuf,
        /// Run seed (integer 0 ..= 2^64 - 1; default: the scenario's).
        #[arg(long, value_name = "SEED", value_parser = seed, allow_hyphen_values = true)]
        seed: Option<u64>,
        /// Results root folder.
        #[arg(long, value_name = "DIR", default_value = "results")]
        out: PathBuf,
        /// Override the scenario's fidelity (what-if: the same world request by request, or as flows).
        #[arg(long, value_enum)]
        fidelity: Option<FidelityArg>,
        /// No progress bar.
        #[arg(long)]
        quiet: bool,
        /// Also write the run as Prometheus data into `<run>/live/`: observations.om (OpenMetrics, for
        /// `promtool tsdb create-blocks-from openmetrics`), decisions.csv and serve.ron, to replay it with
        /// `prescale serve --replay` (see README "Live mode").
        #[arg(long)]
        record_live: bool,
    },
    /// Serve a controller live: read its inputs from Prometheus every interval and serve the recommendation
    /// to KEDA (metrics-api JSON, external scaler gRPC, /metrics), fail-safe; or replay stored data
    /// (`--replay FROM..TO --out FILE`) and write the decisions.
    Serve {
        /// Serve config (RON, `Serve(...)`).
        config: PathBuf,
        /// Replay this span of stored data instead of serving (Unix seconds or ISO-8601 instants, FROM..TO).
        #[arg(long, value_name = "FROM..TO", value_parser = replay_span, allow_hyphen_values = true)]
        replay: Option<(f64, f64)>,
        /// Where a replay writes its decisions (CSV; required with --replay).
        #[arg(long, value_name = "FILE", requires = "replay")]
        out: Option<PathBuf>,
        /// Override `prometheus.url`.
        #[arg(long, value_name = "URL")]
        prometheus: Option<String>,
        /// Override `listen` (HTTP; port 0 picks a free one, printed at start).
        #[arg(long, value_name = "ADDR")]
        listen: Option<String>,
        /// Override `grpc_listen` (gRPC; port 0 picks a free one, printed at start).
        #[arg(long, value_name = "ADDR")]
        grpc_listen: Option<String>,
    },
    /// Write a scenario and a fair-fight experiment for a trace nobody has configured yet: read as a scenario
    /// reads it, scaled so that the fleet has something to decide, sized by `validate`'s sizing.
    Scaffold {
        /// The trace: `FILE[:COLUMN]` (CSV, plain or `.gz`; the column `value`, or the only one beside the
        /// timestamps, unless named).
        #[arg(value_name = "TRACE[:COLUMN]")]
        trace: String,
        /// What the column's values are (a constant factor in fluid mode, which the amplitude absorbs).
        #[arg(long, value_enum, default_value = "requests-per-interval")]
        meaning: crate::scaffold::Meaning,
        /// How the dates are written, where not year first (ISO-8601 and unix timestamps need nothing).
        #[arg(long, value_enum)]
        date_order: Option<crate::scaffold::DateOrder>,
        /// Folder the two files are written to.
        #[arg(long, value_name = "DIR", default_value = ".")]
        out: PathBuf,
        /// Base name of the files and the scenario (default: the trace's file name).
        #[arg(long, value_name = "NAME")]
        name: Option<String>,
        /// Replace the files if they exist.
        #[arg(long)]
        force: bool,
    },
    /// Check scenario, experiment and training files: every problem, with its file, line and dotted path.
    Validate {
        /// Scenario files (RON).
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Run every cell of an experiment in parallel into `<out>/<experiment>/` (resumable; see `runs.csv`,
    /// `report.md`, `manifest.json`).
    Sweep {
        /// Experiment file (RON).
        experiment: PathBuf,
        /// Results root folder.
        #[arg(long, value_name = "DIR", default_value = "results")]
        out: PathBuf,
        /// Worker threads (default: all cores).
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1024))]
        threads: Option<u32>,
        /// No progress bar.
        #[arg(long)]
        quiet: bool,
        /// Run the cells with neural models (BC policies, neural predictors; across controllers, axes and seeds)
        /// in groups of up to 64 sharing one forward pass per model per tick (far fewer passes; results equal
        /// the unbatched ones to float rounding of the forward pass).
        #[arg(long)]
        batch_runs: bool,
        /// Run only shard K of N (0 <= K < N, as $SLURM_ARRAY_TASK_ID): a fixed, balanced part of the cells;
        /// the shards of one N together are every cell once. The tables are then built by --collect.
        #[arg(long, value_name = "K/N", conflicts_with_all = ["collect", "train_only"])]
        shard: Option<crate::sweep::Shard>,
        /// Run nothing: build runs.csv, report.md and manifest.json from the finished cells (after the shards
        /// ran), the same bytes as a whole sweep's; exit 1 naming the cells still missing.
        #[arg(long, conflicts_with_all = ["threads", "batch_runs", "train_only"])]
        collect: bool,
        /// Only train the models the unfinished cells need (the first job of a Slurm submission).
        #[arg(long, conflicts_with = "batch_runs")]
        train_only: bool,
    },
    /// Run an experiment's sweep on Slurm: write a job array (one task per shard, each `prescale sweep
    /// --shard K/N`) and a collect job into `<out>/<experiment>/slurm/`, and with --submit submit them (a rerun
    /// submits only the shards with unfinished cells).
    Slurm {
        /// Experiment file (RON).
        experiment: PathBuf,
        /// Results root folder (on a filesystem the compute nodes share).
        #[arg(long, value_name = "DIR", default_value = "results")]
        out: PathBuf,
        /// Shards, one array task each (default: the experiment's work units, at most 32).
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=100_000))]
        array_size: Option<u32>,
        /// Slurm partition.
        #[arg(long, value_name = "P", value_parser = crate::slurm::check_partition)]
        partition: Option<String>,
        /// Time limit of each job (Slurm's formats: MINUTES, H:M:S, D-H:M, ...).
        #[arg(long, value_name = "T", value_parser = crate::slurm::check_time)]
        time: Option<String>,
        /// CPUs per array task (also each shard's --threads).
        #[arg(long, value_name = "C", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1024))]
        cpus_per_task: u32,
        /// Shards run the cells with neural models in batched groups (see `sweep --batch-runs`); a group is
        /// one work unit, so it stays in one shard.
        #[arg(long)]
        batch_runs: bool,
        /// Submit with sbatch (otherwise only write the scripts and print the sbatch commands).
        #[arg(long)]
        submit: bool,
    },
    /// Redraw the figures of a run folder (timeseries.csv) or a sweep folder (runs.csv) into DIR/plots/.
    Plot {
        /// A run or sweep results folder.
        dir: PathBuf,
        /// Sweeps: the seed whose runs the overlay figures show (default: the first).
        #[arg(long, value_name = "N")]
        seed: Option<u64>,
        /// Sweeps: the hours the overlay figures show, FROM:TO (default: the whole run).
        #[arg(long, value_name = "FROM:TO", value_parser = parse_window_h)]
        window_h: Option<(f64, f64)>,
    },
    /// Run the reference workloads of REFERENCE_MODEL.md, seed 1, against their check values.
    CheckReference,
    /// Run one reference workload of REFERENCE_MODEL.md and print its metrics as the peers do.
    Reference {
        #[command(subcommand)]
        workload: ReferenceWorkload,
    },
    /// Benchmark canonical events/s and peak memory, optionally side by side with peer simulators.
    Bench(BenchArgs),
    /// Train a neural agent (forecast cloning, or behavioural cloning of the hindsight expert with DAgger)
    /// from a training file (RON) into `<out>/<name>/` (card.json, weights.safetensors, curve.csv, plots).
    Train {
        /// Training file (RON).
        config: PathBuf,
        /// Models root folder.
        #[arg(long, value_name = "DIR", default_value = "results/models")]
        out: PathBuf,
        /// No progress bar.
        #[arg(long)]
        quiet: bool,
    },
    /// Forecast accuracy (MAE, MASE) of MLP, GRU, LSTM, Transformer, seasonal naive and Holt-Winters on traces,
    /// by the peers' rolling-origin protocol, with statsforecast's figures beside where they exist.
    ForecastEval {
        /// Traces as FILE[:COLUMN] (default: four traces of ../shared/traces).
        traces: Vec<String>,
        /// Also write the report (Markdown) to this file, after every trace (atomically).
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        /// Also write the figures as CSV (trace, model, source, horizon_steps, mae, mase, fit_s), after every
        /// trace (atomically).
        #[arg(long, value_name = "FILE")]
        csv: Option<PathBuf>,
        /// Models to evaluate, comma-separated (seasonal-naive, holt-winters, mlp, gru, lstm, transformer, and
        /// mlp-window, gru-window, lstm-window, transformer-window: the networks scaled by each window's level;
        /// default: the first six).
        #[arg(long, value_delimiter = ',')]
        models: Vec<String>,
        /// Most training epochs of a network (1 to 100000).
        #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..=100_000))]
        epochs: u32,
        /// Horizons in steps, increasing, comma-separated (default: the peers' 1,5,15).
        #[arg(long, value_delimiter = ',', value_parser = clap::value_parser!(u32).range(1..=10_000))]
        horizons: Vec<u32>,
        /// When models are fitted: once (networks before the first origin, classical online), every-origin (as
        /// the statistical peers: each origin afresh) or fine-tune (networks trained once, then fine-tuned on the
        /// recent window at every origin).
        #[arg(long, value_enum, default_value_t = crate::forecast_eval::Refit::Once)]
        refit: crate::forecast_eval::Refit,
        /// With --refit every-origin: the classical predictors' sliding window, seconds (default 3 days).
        #[arg(long, default_value_t = 259_200.0, value_name = "S")]
        refit_window_s: f64,
        /// With --refit fine-tune: the window each fine-tune trains on, seconds before the origin (default 1 day;
        /// at least the model's window and horizon).
        #[arg(long, default_value_t = 86_400.0, value_name = "S")]
        fine_tune_window_s: f64,
        /// With --refit fine-tune: full-batch Adam steps per origin.
        #[arg(long, default_value_t = 20)]
        fine_tune_steps: u32,
        /// With --refit fine-tune: Adam's learning rate.
        #[arg(long, default_value_t = 5e-4)]
        fine_tune_learning_rate: f64,
        /// A trained forecaster (a model directory, e.g. a global model trained on `series:`) evaluated beside the
        /// models, repeatable: as it is with --refit once (zero-shot on a trace it never saw), fine-tuned at every
        /// origin with --refit fine-tune.
        #[arg(long, value_name = "DIR")]
        trained: Vec<PathBuf>,
        /// The networks' point forecast: mean (a Gaussian output, its mean) or median (trained with the pinball
        /// loss at 0.5: the point that minimises absolute errors, as MAE and MASE score them).
        #[arg(long, value_enum, default_value_t = crate::forecast_eval::PointForecast::Mean)]
        point: crate::forecast_eval::PointForecast,
        /// Networks per model, trained from seeds 1..=N, their point forecasts averaged (1 to 100).
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=100))]
        ensemble: u32,
        /// No progress lines.
        #[arg(long)]
        quiet: bool,
    },
    /// Check a model directory and write its traced, frozen TorchScript (`model.pt`) for use outside Rust.
    Export {
        /// Model directory (written by `prescale train`).
        model_dir: PathBuf,
    },
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum FidelityArg {
    Fluid,
    RequestLevel,
}

#[derive(Subcommand, Debug)]
enum ReferenceWorkload {
    /// M/M/c queue (REFERENCE_MODEL §3).
    MmcSteady(MmcArgs),
    /// Autoscaled cluster under a sine load with the HPA-style controller (REFERENCE_MODEL §4).
    AutoscaleSine(AutoscaleArgs),
}

#[derive(Args, Debug)]
struct MmcArgs {
    /// Arrival rate λ, requests per second (1e-9 to 1e9).
    #[arg(long, value_name = "RATE", value_parser = rate, allow_hyphen_values = true)]
    lambda: f64,
    /// Service rate μ per server, per second (1e-9 to 1e9).
    #[arg(long, value_name = "RATE", value_parser = rate, allow_hyphen_values = true)]
    mu: f64,
    /// Number of servers c (integer >= 1).
    #[arg(long = "c", value_name = "SERVERS", value_parser = servers, allow_hyphen_values = true)]
    c: u32,
    /// Measurement window T, seconds (> 0).
    #[arg(long = "T", value_name = "SECONDS", value_parser = positive_number, allow_hyphen_values = true)]
    t: f64,
    /// Warm-up W, seconds (>= 0; default T / 10).
    #[arg(long, value_name = "SECONDS", value_parser = non_negative_number, allow_hyphen_values = true)]
    warmup: Option<f64>,
    /// Run seed (integer 0 ..= 2^64 - 1).
    #[arg(long, value_name = "SEED", default_value_t = 1, value_parser = seed, allow_hyphen_values = true)]
    seed: u64,
}

#[derive(Args, Debug)]
struct AutoscaleArgs {
    /// Run seed (integer 0 ..= 2^64 - 1).
    #[arg(long, value_name = "SEED", default_value_t = 1, value_parser = seed, allow_hyphen_values = true)]
    seed: u64,
    /// Horizon H, seconds (> 0 and <= 604800, one week).
    #[arg(long, value_name = "SECONDS", default_value_t = 7200.0, value_parser = horizon, allow_hyphen_values = true)]
    horizon: f64,
}

/// Most customers `mmc-steady` may generate: every sojourn is kept for exact quantiles (8 bytes each).
const MAX_MMC_CUSTOMERS: f64 = 5e8;

fn number(s: &str) -> Result<f64, String> {
    s.trim().parse::<f64>().map_err(|_| format!("expected a number, got '{s}'"))
}

fn positive_number(s: &str) -> Result<f64, String> {
    let x = number(s)?;
    if x.is_finite() && x > 0.0 { Ok(x) } else { Err(format!("must be a finite number > 0, got {s}")) }
}

fn rate(s: &str) -> Result<f64, String> {
    let x = number(s)?;
    if (1e-9..=1e9).contains(&x) { Ok(x) } else { Err(format!("must be a rate from 1e-9 to 1e9 per second, got {s}")) }
}

fn non_negative_number(s: &str) -> Result<f64, String> {
    let x = number(s)?;
    if x.is_finite() && x >= 0.0 { Ok(x) } else { Err(format!("must be a finite number >= 0, got {s}")) }
}

fn servers(s: &str) -> Result<u32, String> {
    match s.trim().parse::<u64>() {
        Ok(n) if (1..=1_000_000).contains(&n) => Ok(n as u32),
        _ => Err(format!("must be an integer from 1 to 1000000, got '{s}'")),
    }
}

fn seed(s: &str) -> Result<u64, String> {
    s.trim().parse::<u64>().map_err(|_| format!("must be an integer from 0 to 18446744073709551615, got '{s}'"))
}

fn horizon(s: &str) -> Result<f64, String> {
    let x = positive_number(s)?;
    if x <= 604_800.0 { Ok(x) } else { Err(format!("must be at most 604800 s (one week), got {s}")) }
}

impl MmcArgs {
    /// Second stage: checks that involve several flags.
    fn validate(&self) -> Result<MmcParams> {
        let p = MmcParams {
            lambda: self.lambda,
            mu: self.mu,
            c: self.c,
            t: self.t,
            warmup: self.warmup.unwrap_or(self.t / 10.0),
        };
        let rho = p.rho();
        if rho >= 1.0 {
            bail!("--lambda / (--c × --mu) must be < 1 for a stable queue, got ρ = {rho}");
        }
        let customers = p.lambda * (p.t + p.warmup);
        if customers > MAX_MMC_CUSTOMERS {
            bail!(
                "--lambda × (--T + --warmup) must be at most {MAX_MMC_CUSTOMERS:e} expected customers, got {customers:e}"
            );
        }
        Ok(p)
    }
}

/// Turns a clap error into one line: its message up to the usage block, on one line.
fn one_line(e: &clap::Error) -> String {
    let text = e.render().to_string();
    let head = text.split("\n\n").next().unwrap_or(&text);
    let head = head.strip_prefix("error: ").unwrap_or(head);
    head.split_whitespace().collect::<Vec<_>>().join(" ")
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
            let options = crate::scaffold::Options { trace, meaning, date_order, out, name, force };
            let done = crate::scaffold::scaffold(&options)?;
            println!("{}", done.summary);
            Ok(ExitCode::SUCCESS)
        }
        Command::CheckReference => check_reference(),
        Command::Plot { dir, seed, window_h } => cmd_plot(&dir, &crate::plot::PlotOptions { seed, window_h }),
        Command::Sweep { experiment, out, collect: true, .. } => cmd_collect(&experiment, &out),
        Command::Sweep { experiment, out, train_only: true, quiet, .. } => cmd_train_only(&experiment, &out, quiet),
        Command::Sweep { experiment, out, threads, quiet, batch_runs, shard, .. } => cmd_sweep(
            &experiment,
            crate::sweep::SweepOptions {
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
                &crate::slurm::SlurmOptions {
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
        Command::Reference { workload: ReferenceWorkload::MmcSteady(a) } => {
            let params = a.validate()?;
            let r = run_mmc(params, a.seed);
            print!("{}", key_value_and_result(&with_peak_rss(&r)));
            Ok(ExitCode::SUCCESS)
        }
        Command::Reference { workload: ReferenceWorkload::AutoscaleSine(a) } => {
            let r = run_autoscale(AutoscaleParams { horizon_s: a.horizon, ..AutoscaleParams::default() }, a.seed);
            print!("{}", key_value_and_result(&with_peak_rss(&r)));
            Ok(ExitCode::SUCCESS)
        }
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
            let fine_tune = prescale_agents::neural::forecaster::FineTuneConfig {
                every_s: 3600.0,
                window_s: fine_tune_window_s,
                steps: fine_tune_steps,
                learning_rate: fine_tune_learning_rate,
            };
            let mut opts = crate::forecast_eval::EvalOptions {
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
            (require("prescale forecast-eval").forecast_eval)(traces, &opts, out.as_deref(), csv.as_deref(), quiet)
        }
        Command::Export { model_dir } => {
            (require("prescale export").export)(&model_dir)?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `prescale run`.
fn cmd_run(
    scenario: &Path,
    seed: Option<u64>,
    fidelity: Option<FidelityArg>,
    out: &Path,
    quiet: bool,
    record_live: bool,
) -> Result<ExitCode> {
    let mut loaded = load_scenario(scenario).map_err(|d| crate::scenario_io::diagnostics_error(&d))?;
    if let Some(f) = fidelity {
        loaded.config.fidelity = match f {
            FidelityArg::Fluid => prescale_sim::scenario::Fidelity::Fluid,
            FidelityArg::RequestLevel => prescale_sim::scenario::Fidelity::RequestLevel,
        };
    }
    run_loaded(&loaded, seed, out, quiet, record_live)
}

/// `--replay FROM..TO`.
fn replay_span(s: &str) -> Result<(f64, f64), String> {
    crate::live::serve::parse_span(s)
}

/// `prescale serve`.
fn cmd_serve(
    file: &Path,
    replay: Option<(f64, f64)>,
    out: Option<&Path>,
    prometheus: Option<String>,
    listen: Option<String>,
    grpc_listen: Option<String>,
) -> Result<ExitCode> {
    let mut cfg = crate::live::config::load_serve(file).map_err(|d| crate::scenario_io::diagnostics_error(&d))?.config;
    let overridden = prometheus.is_some() || listen.is_some() || grpc_listen.is_some();
    if let Some(u) = prometheus {
        cfg.prometheus.url = u;
    }
    if let Some(a) = listen {
        cfg.listen = a;
    }
    if let Some(a) = grpc_listen {
        cfg.grpc_listen = a;
    }
    if overridden {
        let problems = cfg.problems();
        if !problems.is_empty() {
            let flag = |p: &str| match p {
                "prometheus.url" => "--prometheus",
                "listen" => "--listen",
                "grpc_listen" => "--grpc-listen",
                _ => "",
            };
            let lines: Vec<String> = problems
                .iter()
                .map(|p| {
                    if flag(&p.path).is_empty() {
                        format!("{}: {p}", file.display())
                    } else {
                        format!("{}: {}", flag(&p.path), p.message)
                    }
                })
                .collect();
            bail!("{}", lines.join("\n"));
        }
    }
    if cfg.controller.model().is_some() {
        require("prescale serve with a learned model");
    }
    let Some((from, to)) = replay else {
        crate::live::serve::serve(cfg)?;
        return Ok(ExitCode::SUCCESS);
    };
    let Some(out) = out else { bail!("--replay needs --out FILE (where the decisions go)") };
    let r = crate::live::serve::replay(&cfg, from, to)?;
    crate::results::write_atomically(out, &crate::live::serve::ticks_csv(&r.ticks))?;
    let s = crate::live::serve::replay_summary(&r.ticks);
    println!(
        "{}: {} ticks ({} failed, {} unavailable) after {} history tick(s)",
        out.display(),
        s["ticks"],
        s["failed"],
        s["unavailable"],
        r.history_ticks
    );
    if cfg.mode == crate::live::config::Mode::Shadow {
        let c = &r.counterfactual;
        println!(
            "shadow: over {:.0} min the running replicas violated the SLO {:.1} min and cost {:.2} USD; {} would have \
             violated it {:.1} min (prevented {:.1}, caused {:.1}) and cost {:.2} USD",
            c.minutes,
            c.actual_violation_minutes,
            c.actual_cost_usd,
            controller_name(&cfg.controller),
            c.shadow_violation_minutes,
            c.prevented_minutes,
            c.caused_minutes,
            c.shadow_cost_usd
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `prescale plot`.
/// `--window-h FROM:TO`: two finite hours, FROM >= 0 and below TO.
fn parse_window_h(s: &str) -> Result<(f64, f64), String> {
    let bad =
        || format!("'{}': expected FROM:TO in hours, 0 <= FROM < TO (e.g. 24:48)", prescale_sim::input::clip(s, 40));
    let (a, b) = s.split_once(':').ok_or_else(bad)?;
    let (a, b): (f64, f64) = (a.trim().parse().map_err(|_| bad())?, b.trim().parse().map_err(|_| bad())?);
    if a.is_finite() && b.is_finite() && 0.0 <= a && a < b { Ok((a, b)) } else { Err(bad()) }
}

fn cmd_plot(dir: &Path, opts: &crate::plot::PlotOptions) -> Result<ExitCode> {
    for f in crate::plot::plot_with(dir, opts)? {
        println!("{}", f.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// `prescale sweep`: the summary line, the damaged and failed cells, and the exit code (1 if a cell failed,
/// 130 after Ctrl-C).
fn cmd_sweep(experiment: &Path, opts: crate::sweep::SweepOptions) -> Result<ExitCode> {
    let o = crate::sweep::sweep(experiment, &opts)?;
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
fn cmd_collect(experiment: &Path, out: &Path) -> Result<ExitCode> {
    let o = crate::sweep::collect(experiment, out)?;
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
fn cmd_train_only(experiment: &Path, out: &Path, quiet: bool) -> Result<ExitCode> {
    let (rows, failed) = crate::sweep::train_models(experiment, out, quiet)?;
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
fn cmd_slurm(experiment: &Path, opts: &crate::slurm::SlurmOptions) -> Result<ExitCode> {
    let p = crate::slurm::slurm(experiment, opts)?;
    println!(
        "{}: {} cells, {} unfinished; {} shards ({} work units), {} to run{}",
        p.dir.display(),
        p.cells,
        p.unfinished,
        p.count,
        p.units,
        p.shards.len(),
        if p.shards.is_empty() { String::new() } else { format!(": array {}", crate::slurm::array_spec(&p.shards)) }
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

/// `prescale train`: the model folder, its metrics and its fit.
pub(crate) fn cmd_train(config: &Path, out: &Path, quiet: bool) -> Result<ExitCode> {
    let t = crate::train::train(config, out, quiet)?;
    println!("model: {}", t.dir.display());
    for (k, v) in &t.model.card.metrics {
        println!("  {k}: {v:.6}");
    }
    let f = &t.model.card.fit;
    println!(
        "  {} parameters, {} epochs ({} kept), {} Adam steps in {:.1} s on {}",
        t.model.card.parameters, f.epochs, f.best_epoch, f.steps, f.wall_s, f.device
    );
    Ok(ExitCode::SUCCESS)
}

/// `prescale forecast-eval` (default: the peers' four traces in `../shared/traces`).
pub(crate) fn cmd_forecast_eval(
    traces: Vec<String>,
    opts: &crate::forecast_eval::EvalOptions,
    out: Option<&Path>,
    csv: Option<&Path>,
    quiet: bool,
) -> Result<ExitCode> {
    let traces = if traces.is_empty() { crate::forecast_eval::default_traces() } else { traces };
    let report = crate::forecast_eval::run(&traces, opts, quiet, &mut |so_far| {
        if let Some(out) = out {
            crate::results::write_atomically(out, &so_far.md)?;
        }
        if let Some(csv) = csv {
            crate::results::write_atomically(csv, &so_far.csv)?;
        }
        Ok(())
    })?;
    print!("{}", report.md);
    Ok(ExitCode::SUCCESS)
}

fn with_peak_rss<T: serde::Serialize>(r: &T) -> Value {
    with_field(r, "peak_rss_mib", peak_rss_mib().map_or(Value::Null, Value::from))
}

/// The first line of a RON text that is not blank or a comment.
fn first_item(text: &str) -> Option<&str> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    text.lines().map(str::trim).find(|l| !l.is_empty() && !l.starts_with("//") && !l.starts_with("#!"))
}

fn validate(files: &[PathBuf]) -> Result<ExitCode> {
    // Printed at the end: a file that needs libtorch re-runs the whole command line in `prescale-torch`
    // (see `torch_gate`), which must not repeat what this process printed.
    let mut report = String::new();
    let mut bad = 0;
    for f in files {
        let first = std::fs::read_to_string(f).ok().and_then(|t| first_item(&t).map(str::to_string));
        let mut warnings = Vec::new();
        let outcome = match first.as_deref() {
            Some(l) if l.starts_with("Train") => crate::train::check(f),
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
            Some(l) if l.starts_with("Experiment") => {
                crate::experiment::load_experiment(f, Path::new("results")).map(|e| {
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
                })
            }
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

fn controller_name(c: &prescale_agents::ControllerConfig) -> String {
    use prescale_sim::scenario::ControllerSpec;
    c.name()
}

fn run_loaded(loaded: &Loaded, seed: Option<u64>, out: &Path, quiet: bool, record_live: bool) -> Result<ExitCode> {
    let seed = loaded.config.seed_or(seed);
    let prepared = loaded.prepare(seed).map_err(|d| crate::scenario_io::diagnostics_error(&d))?;
    if let Some(t) = &prepared.trace_report {
        println!("trace: {}", t.summary());
    }
    let bar = if quiet { ProgressBar::hidden() } else { ProgressBar::new(1000) };
    bar.set_style(
        ProgressStyle::with_template("{spinner} {msg} [{bar:40}] {percent}% (eta {eta})")
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar.set_message(format!("{} seed {seed}", prepared.config.name));
    let mut progress = |f: f64| bar.set_position((f * 1000.0) as u64);
    let (dir, output, wall_s, ticks) = if record_live {
        let t0 = std::time::Instant::now();
        let (o, t) = prescale_sim::scenario::run_recorded(&prepared, seed, &mut progress);
        let wall_s = t0.elapsed().as_secs_f64();
        bar.finish_and_clear();
        (write_run(out, &prepared, &o, seed, wall_s)?, o, wall_s, Some(t))
    } else {
        // The per-step table is formatted and written on another thread while the simulation runs.
        let (dir, o, wall_s) = crate::results::run_and_write(out, &prepared, seed, &mut progress)?;
        bar.finish_and_clear();
        (dir, o, wall_s, None)
    };
    if let Some(ticks) = ticks {
        let r = crate::live::record::recording(&prepared, seed, &ticks);
        crate::live::record::write_recording(&dir.join("live"), &r)?;
        println!(
            "recorded for live replay: {} ticks from {} to {} in {}{}",
            ticks.len(),
            crate::live::record::timestamp(r.span_unix_s.0),
            crate::live::record::timestamp(r.span_unix_s.1),
            dir.join("live").display(),
            if r.inexact_ticks > 0 {
                format!(" ({} ticks not exactly representable)", r.inexact_ticks)
            } else {
                String::new()
            }
        );
    }
    let s = &output.summary;
    println!(
        "{} ({:?}, {} steps of {} s, controller {}, seed {seed}) in {:.1} ms",
        s.scenario,
        s.fidelity,
        output.rows.len(),
        s.step_s,
        s.controller,
        wall_s * 1e3
    );
    println!(
        "  requests {:.0}, failed {:.0}, p50 {:.4} s, p99 {:.4} s",
        s.requests, s.failed_requests, s.latency_p50_s, s.latency_p99_s
    );
    println!(
        "  SLO violated {:.1} min, {:.4} % of requests; cost {:.2} USD; mean utilisation {:.1} %",
        s.slo_violation_minutes,
        100.0 * s.slo_violation_request_fraction,
        s.cost_usd,
        100.0 * s.mean_utilisation
    );
    println!(
        "  over-provisioning {:.1} core-h, under-provisioning {:.1} core-h, {} scaling actions, max {} instances",
        s.over_provisioning_core_hours, s.under_provisioning_core_hours, s.scaling_actions, s.max_instances
    );
    if let Some(sh) = &s.shadow {
        println!(
            "  shadow {}: would have cost {:.2} USD, violated the SLO {:.1} min; prevented {:.1} min, caused {:.1} min",
            sh.controller, sh.cost_usd, sh.slo_violation_minutes, sh.prevented_minutes, sh.caused_minutes
        );
    }
    if s.coverage.is_finite() {
        println!(
            "  forecast MAE {:.2} cores, coverage of forecast + margin {:.1} %, {} steps on the reactive fallback",
            s.forecast_mae_cores,
            100.0 * s.coverage,
            s.fallback_steps
        );
    }
    println!("results: {}", dir.display());
    Ok(ExitCode::SUCCESS)
}

/// Each reference workload, seed 1, against its check values.
fn check_reference() -> Result<ExitCode> {
    println!(
        "prescale {}: reference workloads of REFERENCE_MODEL.md, seed 1, against the check values",
        env!("CARGO_PKG_VERSION")
    );
    println!(
        "(exact = bit-identical to SimPy, Ciw, nexosim and the hand-written loop; means: up to summation order)\n"
    );
    let mut all_ok = true;
    let mut report = |title: String, lines: Vec<CheckLine>, events: u64, wall_s: f64| {
        let ok = lines.iter().all(|l| l.ok);
        all_ok &= ok;
        println!(
            "{title}: {} ({} canonical events in {:.3} s, {:.2} M events/s)",
            if ok { "MATCH" } else { "MISMATCH" },
            events,
            wall_s,
            events as f64 / wall_s / 1e6
        );
        for l in lines.iter().filter(|l| !l.ok) {
            println!("    {}: got {:?}, want {:?}", l.metric, l.got, l.want);
        }
    };
    for check in &MMC_CHECKS {
        let p = MmcParams::set(check.set).expect("known set");
        let r = run_mmc(p, 1);
        report(
            format!("mmc-steady {} (λ={}, μ={}, c={}, T={})", check.set, p.lambda, p.mu, p.c, p.t),
            check.compare(&r),
            r.events,
            r.wall_s,
        );
    }
    for check in &AUTOSCALE_CHECKS {
        let r = run_autoscale(AutoscaleParams { horizon_s: check.horizon_s, ..AutoscaleParams::default() }, 1);
        report(format!("autoscale-sine H={}", check.horizon_s), check.compare(&r), r.events, r.wall_s);
    }
    println!("\n{}", if all_ok { "All check values reproduced." } else { "Some check values differ: see above." });
    Ok(if all_ok { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}
