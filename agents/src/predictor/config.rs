//! The `predictor:` part of a predictive controller: which predictor, its parameters in seconds, its
//! validation against the scenario's step and horizon, and `init` into a runtime [`Predictor`].

use std::path::Path;
use std::sync::Arc;

use prescale_sim::validate::{Interval, Problems};
use serde::{Deserialize, Serialize};

use super::*;
use crate::neural::facts::{FineTuneConfig, ModelFacts, RefitConfig, Task};
use crate::neural::runtime::check_model;

/// A predictor by name (periods and windows in seconds; they become steps of the scenario's `step_s`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum PredictorConfig {
    /// `ŷ = y(t)`.
    LastValue,
    /// The value one period ago (daily: 86400, weekly: 604800).
    SeasonalNaive {
        /// Period, seconds.
        period_s: f64,
    },
    /// Mean of the last window.
    MovingAverage {
        /// Window, seconds.
        window_s: f64,
    },
    /// Exponentially weighted moving average.
    Ewma {
        /// Smoothing in (0, 1].
        alpha: f64,
    },
    /// Additive Holt-Winters.
    HoltWinters {
        /// Season, seconds.
        period_s: f64,
        /// Level smoothing in (0, 1).
        #[serde(default = "hw_alpha")]
        alpha: f64,
        /// Trend smoothing in (0, 1).
        #[serde(default = "hw_beta")]
        beta: f64,
        /// Seasonal smoothing in (0, 1).
        #[serde(default = "hw_gamma")]
        gamma: f64,
        /// Choose the smoothing parameters from the first four seasons.
        #[serde(default)]
        fit: bool,
    },
    /// Autoregression by least squares.
    Ar {
        /// Order.
        p: u32,
        /// Fitting window, seconds.
        window_s: f64,
        /// Refit schedule, seconds.
        refit_every_s: f64,
    },
    /// Reads the true future (upper bound).
    Oracle,
    /// A trained forecasting model (forecast cloning): a model directory written by `prescale train`,
    /// relative to the file that names it; optionally fine-tuned online.
    Neural {
        /// Model directory.
        model: String,
        /// Online fine-tuning.
        #[serde(default)]
        fine_tune: Option<FineTuneConfig>,
        /// Scheduled refits from fresh weights on a sliding window.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        refit: Option<RefitConfig>,
    },
    /// A predictor outside Rust: a child process speaking JSON lines (`examples/external/README.md`), started
    /// once per run (and once more for an explicit memory demand).
    External {
        /// Program and arguments; a program named by a path with a `/` is relative to `dir`.
        command: Vec<String>,
        /// Working folder of the child, relative to the file that names it (default: that file's folder).
        #[serde(default)]
        dir: Option<String>,
        /// Longest wait for one answer, seconds (at start-up and per tick).
        #[serde(default = "external_timeout_s")]
        timeout_s: f64,
    },
}

fn external_timeout_s() -> f64 {
    10.0
}

fn hw_alpha() -> f64 {
    0.2
}
fn hw_beta() -> f64 {
    0.05
}
fn hw_gamma() -> f64 {
    0.15
}

impl PredictorConfig {
    /// History the predictor needs, seconds.
    pub fn history_s(&self, step_s: f64) -> f64 {
        match self {
            PredictorConfig::LastValue | PredictorConfig::Ewma { .. } => step_s,
            PredictorConfig::SeasonalNaive { period_s } => *period_s,
            PredictorConfig::MovingAverage { window_s } => *window_s,
            PredictorConfig::HoltWinters { period_s, .. } => 2.0 * period_s,
            PredictorConfig::Ar { p, .. } => (3 * p + 2) as f64 * step_s,
            PredictorConfig::Oracle => 0.0,
            PredictorConfig::Neural { model, .. } => {
                crate::neural::card::read_card(Path::new(model)).map_or(0.0, |c| c.spec.window_steps as f64 * step_s)
            }
            // The child says when it has enough (`wait`).
            PredictorConfig::External { .. } => step_s,
        }
    }

    /// The runtime predictor of `signal` (`requests_per_s` or `memory_gib`: what an external predictor is told).
    pub(crate) fn init(
        &self,
        step_s: f64,
        oracle_future: &Arc<Vec<f64>>,
        start_unix_s: f64,
        seed: u64,
        signal: &'static str,
    ) -> Box<dyn Predictor> {
        let steps = |s: f64| ((s / step_s).round() as usize).max(1);
        use crate::predictor::*;
        match *self {
            PredictorConfig::LastValue => Box::new(LastValue::new()),
            PredictorConfig::SeasonalNaive { period_s } => Box::new(SeasonalNaive::new(steps(period_s))),
            PredictorConfig::MovingAverage { window_s } => Box::new(MovingAverage::new(steps(window_s))),
            PredictorConfig::Ewma { alpha } => Box::new(Ewma::new(alpha)),
            PredictorConfig::HoltWinters { period_s, alpha, beta, gamma, fit } => {
                Box::new(HoltWinters::new(steps(period_s), alpha, beta, gamma, fit))
            }
            PredictorConfig::Ar { p, window_s, refit_every_s } => {
                Box::new(Ar::new(p as usize, steps(window_s), steps(refit_every_s)))
            }
            PredictorConfig::Oracle => Box::new(Oracle::new(oracle_future.clone())),
            PredictorConfig::Neural { ref model, ref fine_tune, ref refit } => {
                (crate::neural::runtime::runtime("a neural predictor").expect("checked when validated").forecaster)(
                    Path::new(model),
                    start_unix_s,
                    step_s,
                    fine_tune.clone(),
                    refit.clone(),
                )
            }
            PredictorConfig::External { ref command, ref dir, timeout_s } => {
                let hello = external::Hello { signal, step_s, seed, start_unix_s };
                Box::new(ExternalPredictor::start(command, dir.as_deref().map(Path::new), timeout_s, &hello))
            }
        }
    }

    /// Checks the predictor into `p` (paths below `predictor`); `needed_steps` is the allocator's farthest
    /// horizon.
    pub(crate) fn check(
        &self,
        p: &mut Problems,
        step_s: f64,
        horizon_s: Option<f64>,
        needed_steps: Option<u32>,
        planned: Option<&ModelFacts>,
    ) {
        match *self {
            PredictorConfig::SeasonalNaive { period_s } => {
                p.at_least("period_s", period_s, step_s, "step_s");
            }
            PredictorConfig::MovingAverage { window_s } => {
                p.at_least("window_s", window_s, step_s, "step_s");
            }
            PredictorConfig::Ewma { alpha } => {
                p.within("alpha", alpha, Interval::open_closed(0.0, 1.0));
            }
            PredictorConfig::HoltWinters { period_s, alpha, beta, gamma, .. } => {
                p.at_least("period_s", period_s, 2.0 * step_s, "2 steps");
                p.within("alpha", alpha, Interval::open(0.0, 1.0));
                p.within("beta", beta, Interval::open(0.0, 1.0));
                p.within("gamma", gamma, Interval::open(0.0, 1.0));
            }
            PredictorConfig::Ar { p: order, window_s, refit_every_s } => {
                p.count_within("p", order.into(), 1, 48);
                let need = (3 * order + 2) as f64 * step_s;
                p.require("window_s", window_s >= need, || {
                    format!("must cover at least 3p + 2 steps ({need} s), got {window_s}")
                });
                p.at_least("refit_every_s", refit_every_s, step_s, "step_s");
            }
            PredictorConfig::LastValue | PredictorConfig::Oracle => {}
            PredictorConfig::External { ref command, ref dir, timeout_s } => {
                crate::external::check_command(p, command, dir.as_deref(), timeout_s);
                return;
            }
            PredictorConfig::Neural { ref model, ref fine_tune, ref refit } => {
                // The model directory is read once here; every check below uses its card.
                let Some(card) = check_model(p, model, Task::Forecast, step_s, planned) else { return };
                let (window, horizons) = (card.spec.window_steps as usize, card.spec.horizon_steps);
                if let Some(ft) = fine_tune {
                    p.under("fine_tune", |p| ft.check(p, step_s, window, horizons as usize));
                }
                if let Some(r) = refit {
                    p.under("refit", |p| r.check(p, step_s, window, horizons as usize));
                }
                if let Some(h_hi) = needed_steps {
                    p.require("model", horizons >= h_hi, || {
                        format!(
                            "{model}: forecasts {horizons} steps ahead, the allocator needs {h_hi} (provisioning \
                             delay, one step and warm-up); train with horizon_steps >= {h_hi}"
                        )
                    });
                }
                return;
            }
        }
        let hist = self.history_s(step_s);
        let field = match self {
            PredictorConfig::SeasonalNaive { .. } | PredictorConfig::HoltWinters { .. } => "period_s",
            PredictorConfig::MovingAverage { .. } | PredictorConfig::Ar { .. } => "window_s",
            _ => "",
        };
        // Bounded also where no horizon bounds it (a live server): the history is kept in memory, in steps.
        let (max_s, max_steps) = (prescale_sim::scenario::MAX_HORIZON_S, prescale_sim::scenario::MAX_STEPS);
        if !(hist <= max_s && hist / step_s <= max_steps) {
            p.add(
                field,
                format!(
                    "needs {hist:e} s of history; at most {max_s} s (400 days) and {max_steps:e} steps of {step_s} s"
                ),
            );
        } else if let Some(h) = horizon_s
            && hist >= h
        {
            p.add(field, format!("needs {hist} s of history, but the run lasts {h} s: it would never forecast"));
        }
    }
}
