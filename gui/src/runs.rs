//! Runs: one scenario run in the background (the library's [`prescale_sim::scenario::run_unless`], so the
//! numbers are the CLI's), its progress and cancellation, and what the plots draw of a run — from a finished
//! run in memory or from a run folder on disk (`timeseries.csv`, `summary.json`).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;

use prescale::files::scenario_io::Loaded;
use prescale::plot::data::Table;
use prescale_sim::metrics::MetricsRow;

/// The columns the workbench draws, one value per step (NaN where a run has none, e.g. no forecast).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Series {
    /// Step start, hours.
    pub t_h: Vec<f64>,
    /// Demand, cores.
    pub demand_cores: Vec<f64>,
    /// Allocated (ordered) capacity, cores.
    pub allocated_cores: Vec<f64>,
    /// READY capacity, cores.
    pub ready_cores: Vec<f64>,
    /// p99 latency of the step, s.
    pub p99_s: Vec<f64>,
    /// Cost so far, USD.
    pub cost_so_far_usd: Vec<f64>,
    /// The forecast, cores.
    pub forecast_cores: Vec<f64>,
    /// The variance controller's margin, cores.
    pub margin_cores: Vec<f64>,
    /// The margin's realised coverage (0..1).
    pub coverage: Vec<f64>,
}

impl Series {
    /// From a run's rows.
    pub fn of_rows(rows: &[MetricsRow]) -> Series {
        Series {
            t_h: rows.iter().map(|r| r.t_start_s / 3600.0).collect(),
            demand_cores: rows.iter().map(|r| r.demand_cpu_cores).collect(),
            allocated_cores: rows.iter().map(|r| r.allocated_cpu_cores).collect(),
            ready_cores: rows.iter().map(|r| r.ready_cpu_cores).collect(),
            p99_s: rows.iter().map(|r| r.latency_p99_s).collect(),
            // The row's cost is the bill so far.
            cost_so_far_usd: rows.iter().map(|r| r.cost_usd).collect(),
            forecast_cores: rows.iter().map(|r| r.forecast_cpu_cores).collect(),
            margin_cores: rows.iter().map(|r| r.margin_cpu_cores).collect(),
            coverage: rows.iter().map(|r| r.coverage).collect(),
        }
    }

    /// From a run folder's `timeseries.csv` (the same columns as [`Series::of_rows`]).
    ///
    /// # Errors
    /// An unreadable or damaged table, with its file and line.
    pub fn of_table(t: &Table) -> anyhow::Result<Series> {
        Ok(Series {
            t_h: t.f64s("t_start_s")?.into_iter().map(|s| s / 3600.0).collect(),
            demand_cores: t.f64s("demand_cpu_cores")?,
            allocated_cores: t.f64s("allocated_cpu_cores")?,
            ready_cores: t.f64s("ready_cpu_cores")?,
            p99_s: t.f64s("latency_p99_s")?,
            cost_so_far_usd: t.f64s("cost_usd")?,
            forecast_cores: t.f64s("forecast_cpu_cores")?,
            margin_cores: t.f64s("margin_cpu_cores")?,
            coverage: t.f64s("coverage")?,
        })
    }

    /// Whether the run had a forecasting controller (a forecast in some step).
    pub fn has_forecast(&self) -> bool {
        self.forecast_cores.iter().any(|x| x.is_finite()) || self.margin_cores.iter().any(|x| x.is_finite())
    }
}

/// The figures the summary table compares.
#[derive(Clone, Debug, PartialEq)]
pub struct Figures {
    /// Minutes in which the SLO was violated.
    pub slo_violation_minutes: f64,
    /// Cost, USD.
    pub cost_usd: f64,
    /// Over-provisioning, core-hours.
    pub over_provisioning_core_hours: f64,
    /// Under-provisioning, core-hours.
    pub under_provisioning_core_hours: f64,
    /// p99 latency over the run, s.
    pub latency_p99_s: f64,
    /// Scaling actions.
    pub scaling_actions: f64,
}

impl Figures {
    /// The rows of the summary table: label and value.
    pub fn rows(&self) -> [(&'static str, f64); 6] {
        [
            ("SLO-violation minutes", self.slo_violation_minutes),
            ("cost (USD)", self.cost_usd),
            ("over-provisioning (core-h)", self.over_provisioning_core_hours),
            ("under-provisioning (core-h)", self.under_provisioning_core_hours),
            ("p99 latency (s)", self.latency_p99_s),
            ("scaling actions", self.scaling_actions),
        ]
    }

    fn of_summary(s: &prescale_sim::scenario::RunSummary) -> Figures {
        Figures {
            slo_violation_minutes: s.slo_violation_minutes,
            cost_usd: s.cost_usd,
            over_provisioning_core_hours: s.over_provisioning_core_hours,
            under_provisioning_core_hours: s.under_provisioning_core_hours,
            latency_p99_s: s.latency_p99_s,
            scaling_actions: s.scaling_actions as f64,
        }
    }

    fn of_json(v: &serde_json::Value) -> anyhow::Result<Figures> {
        let f = |k: &str| {
            v.get(k).and_then(|x| x.as_f64()).ok_or_else(|| anyhow::anyhow!("summary.json: no number 'summary.{k}'"))
        };
        Ok(Figures {
            slo_violation_minutes: f("slo_violation_minutes")?,
            cost_usd: f("cost_usd")?,
            over_provisioning_core_hours: f("over_provisioning_core_hours")?,
            under_provisioning_core_hours: f("under_provisioning_core_hours")?,
            latency_p99_s: f("latency_p99_s")?,
            scaling_actions: f("scaling_actions")?,
        })
    }
}

/// A finished run, as the workbench shows it.
#[derive(Clone, Debug)]
pub struct RunResult {
    /// How it is named in legends: scenario, controller, seed.
    pub label: String,
    /// The controller's name.
    pub controller: String,
    /// The summary figures.
    pub figures: Figures,
    /// The time series.
    pub series: Series,
    /// The SLO's latency threshold, s.
    pub slo_threshold_s: f64,
}

impl RunResult {
    /// Reads a run folder (`timeseries.csv` and `summary.json`, as `prescale run` and sweeps write them).
    ///
    /// # Errors
    /// A missing or damaged file, named.
    pub fn read_folder(dir: &Path) -> anyhow::Result<RunResult> {
        let table = Table::read(&dir.join("timeseries.csv"))?;
        let series = Series::of_table(&table)?;
        let file = dir.join("summary.json");
        let text = std::fs::read_to_string(&file).map_err(|e| anyhow::anyhow!("reading {}: {e}", file.display()))?;
        let json: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| anyhow::anyhow!("{}: not JSON: {e}", file.display()))?;
        let summary = json.get("summary").ok_or_else(|| anyhow::anyhow!("{}: no 'summary'", file.display()))?;
        let figures = Figures::of_json(summary).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
        let controller = summary.get("controller").and_then(|c| c.as_str()).unwrap_or("?").to_string();
        let scenario = summary.get("scenario").and_then(|c| c.as_str()).unwrap_or("?");
        let seed = summary.get("seed").and_then(|c| c.as_u64()).unwrap_or(0);
        let slo_threshold_s = read_slo(&dir.join("scenario.ron")).unwrap_or(f64::NAN);
        Ok(RunResult {
            label: format!("{scenario} · {controller} · seed {seed}"),
            controller,
            figures,
            series,
            slo_threshold_s,
        })
    }
}

fn read_slo(file: &Path) -> Option<f64> {
    let text = std::fs::read_to_string(file).ok()?;
    let cfg: prescale::files::scenario_io::ScenarioConfig =
        prescale::files::scenario_io::parse_ron(file, &text).ok()?;
    Some(cfg.slo.latency_threshold_s)
}

/// One run in the background: its thread, progress (0..1) and cancellation.
pub struct RunJob {
    /// What is running.
    pub label: String,
    progress: Arc<AtomicU64>,
    cancel: Arc<AtomicBool>,
    handle: Option<JoinHandle<Result<Option<RunResult>, String>>>,
}

/// How a job ended.
pub enum JobEnd {
    /// Finished.
    Done(Box<RunResult>),
    /// Cancelled by the user.
    Cancelled,
    /// Failed: why.
    Failed(String),
}

impl RunJob {
    /// Starts running `loaded` with `seed` on its own thread; `repaint` is called on progress (so that the
    /// window redraws while it runs).
    pub fn start(loaded: Loaded, seed: u64, repaint: impl Fn() + Send + 'static) -> RunJob {
        let progress = Arc::new(AtomicU64::new(0f64.to_bits()));
        let cancel = Arc::new(AtomicBool::new(false));
        let label = format!("{} · {} · seed {seed}", loaded.config.name, controller_name(&loaded));
        let (p, c, l) = (progress.clone(), cancel.clone(), label.clone());
        let handle = std::thread::Builder::new()
            .name("prescale-gui run".into())
            .spawn(move || run(&loaded, seed, l, &p, &c, &repaint))
            .expect("spawning a thread");
        RunJob { label, progress, cancel, handle: Some(handle) }
    }

    /// Fraction done.
    pub fn progress(&self) -> f64 {
        f64::from_bits(self.progress.load(Ordering::Relaxed))
    }

    /// Asks the run to stop (it stops at its next progress report: within 1 % of its steps).
    pub fn cancel(&self) {
        self.cancel.store(true, Ordering::Relaxed);
    }

    /// The end, once the thread has finished; `None` while it runs.
    pub fn poll(&mut self) -> Option<JobEnd> {
        if !self.handle.as_ref().is_some_and(|h| h.is_finished()) {
            return None;
        }
        let h = self.handle.take().expect("checked");
        Some(match h.join() {
            Ok(Ok(Some(r))) => JobEnd::Done(Box::new(r)),
            Ok(Ok(None)) => JobEnd::Cancelled,
            Ok(Err(e)) => JobEnd::Failed(e),
            Err(_) => JobEnd::Failed("the run panicked (see the terminal)".into()),
        })
    }

    /// Waits for the end (tests, and the screenshot mode).
    pub fn wait(mut self) -> JobEnd {
        let h = self.handle.take().expect("not polled to the end");
        match h.join() {
            Ok(Ok(Some(r))) => JobEnd::Done(Box::new(r)),
            Ok(Ok(None)) => JobEnd::Cancelled,
            Ok(Err(e)) => JobEnd::Failed(e),
            Err(_) => JobEnd::Failed("the run panicked".into()),
        }
    }
}

/// The controller's name as runs report it.
pub fn controller_name(loaded: &Loaded) -> String {
    use prescale_sim::scenario::ControllerSpec;
    loaded.config.controller.name()
}

/// One run, as `prescale run` does it (prepare with the seed, run), stopping when `cancel` is set.
fn run(
    loaded: &Loaded,
    seed: u64,
    label: String,
    progress: &AtomicU64,
    cancel: &AtomicBool,
    repaint: &dyn Fn(),
) -> Result<Option<RunResult>, String> {
    let prepared = loaded.prepare(seed).map_err(|d| prescale::files::scenario_io::diagnostics_error(&d).to_string())?;
    let mut report = |f: f64| {
        progress.store(f.to_bits(), Ordering::Relaxed);
        repaint();
    };
    let Some(out) =
        prescale_sim::scenario::run_unless(&prepared, seed, &mut report, &|| cancel.load(Ordering::Relaxed))
    else {
        return Ok(None);
    };
    if let Some(why) = &out.fault {
        return Err(format!("the run failed: {why}"));
    }
    Ok(Some(RunResult {
        label,
        controller: out.summary.controller.clone(),
        figures: Figures::of_summary(&out.summary),
        series: Series::of_rows(&out.rows),
        slo_threshold_s: prepared.config.slo.latency_threshold_s,
    }))
}

/// A path as the workbench shows it (relative to the working directory when it is under it).
pub fn shown(p: &Path) -> String {
    let cwd = std::env::current_dir().unwrap_or_default();
    p.strip_prefix(&cwd).map(PathBuf::from).unwrap_or_else(|_| p.to_path_buf()).display().to_string()
}
