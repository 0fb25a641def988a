//! The clap schema of `prescale`: every command and flag with its help text, and the value parsers that turn
//! a flag's text into a checked value (one line naming the flag and what it accepts on failure).

use std::path::PathBuf;

use anyhow::{Result, bail};
use clap::{Args, Parser, Subcommand};
use prescale_sim::reference::MmcParams;

use crate::bench::BenchArgs;

/// prescale: a discrete-event simulator and workbench for predictive autoscaling.
#[derive(Parser, Debug)]
#[command(name = "prescale", version, about, long_about = None)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Option<Command>,
}

#[derive(Subcommand, Debug)]
pub(crate) enum Command {
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
        meaning: crate::lab::scaffold::Meaning,
        /// How the dates are written, where not year first (ISO-8601 and unix timestamps need nothing).
        #[arg(long, value_enum)]
        date_order: Option<crate::lab::scaffold::DateOrder>,
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
        shard: Option<crate::lab::sweep::Shard>,
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
        #[arg(long, value_name = "P", value_parser = crate::lab::slurm::check_partition)]
        partition: Option<String>,
        /// Time limit of each job (Slurm's formats: MINUTES, H:M:S, D-H:M, ...).
        #[arg(long, value_name = "T", value_parser = crate::lab::slurm::check_time)]
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
        #[arg(long, value_enum, default_value_t = crate::neural::forecast_eval::Refit::Once)]
        refit: crate::neural::forecast_eval::Refit,
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
        #[arg(long, value_enum, default_value_t = crate::neural::forecast_eval::PointForecast::Mean)]
        point: crate::neural::forecast_eval::PointForecast,
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
pub(crate) enum FidelityArg {
    Fluid,
    RequestLevel,
}

#[derive(Subcommand, Debug)]
pub(crate) enum ReferenceWorkload {
    /// M/M/c queue (REFERENCE_MODEL §3).
    MmcSteady(MmcArgs),
    /// Autoscaled cluster under a sine load with the HPA-style controller (REFERENCE_MODEL §4).
    AutoscaleSine(AutoscaleArgs),
}

#[derive(Args, Debug)]
pub(crate) struct MmcArgs {
    /// Arrival rate λ, requests per second (1e-9 to 1e9).
    #[arg(long, value_name = "RATE", value_parser = rate, allow_hyphen_values = true)]
    pub(crate) lambda: f64,
    /// Service rate μ per server, per second (1e-9 to 1e9).
    #[arg(long, value_name = "RATE", value_parser = rate, allow_hyphen_values = true)]
    pub(crate) mu: f64,
    /// Number of servers c (integer >= 1).
    #[arg(long = "c", value_name = "SERVERS", value_parser = servers, allow_hyphen_values = true)]
    pub(crate) c: u32,
    /// Measurement window T, seconds (> 0).
    #[arg(long = "T", value_name = "SECONDS", value_parser = positive_number, allow_hyphen_values = true)]
    pub(crate) t: f64,
    /// Warm-up W, seconds (>= 0; default T / 10).
    #[arg(long, value_name = "SECONDS", value_parser = non_negative_number, allow_hyphen_values = true)]
    pub(crate) warmup: Option<f64>,
    /// Run seed (integer 0 ..= 2^64 - 1).
    #[arg(long, value_name = "SEED", default_value_t = 1, value_parser = seed, allow_hyphen_values = true)]
    pub(crate) seed: u64,
}

#[derive(Args, Debug)]
pub(crate) struct AutoscaleArgs {
    /// Run seed (integer 0 ..= 2^64 - 1).
    #[arg(long, value_name = "SEED", default_value_t = 1, value_parser = seed, allow_hyphen_values = true)]
    pub(crate) seed: u64,
    /// Horizon H, seconds (> 0 and <= 604800, one week).
    #[arg(long, value_name = "SECONDS", default_value_t = 7200.0, value_parser = horizon, allow_hyphen_values = true)]
    pub(crate) horizon: f64,
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
    pub(super) fn validate(&self) -> Result<MmcParams> {
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

/// `--replay FROM..TO`.
fn replay_span(s: &str) -> Result<(f64, f64), String> {
    crate::live::serve::parse_span(s)
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

/// Turns a clap error into one line: its message up to the usage block, on one line.
pub(super) fn one_line(e: &clap::Error) -> String {
    let text = e.render().to_string();
    let head = text.split("\n\n").next().unwrap_or(&text);
    let head = head.strip_prefix("error: ").unwrap_or(head);
    head.split_whitespace().collect::<Vec<_>>().join(" ")
}
