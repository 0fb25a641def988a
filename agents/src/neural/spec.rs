//! What a neural model is, as plain config: architecture, inputs, window, horizons, output kind.

use prescale_sim::validate::{Problem, Problems};
use serde::{Deserialize, Serialize};

/// The network body; every body ends in a linear head with `horizon_steps × outputs` units.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum Architecture {
    /// A multilayer perceptron on the flattened lag window (ReLU between layers).
    Mlp {
        /// Width of each hidden layer.
        hidden: Vec<u32>,
    },
    /// A gated recurrent unit over the window; the last hidden state feeds the head.
    Gru {
        /// Hidden units.
        hidden: u32,
        /// Stacked layers.
        #[serde(default = "one")]
        layers: u32,
    },
    /// A long short-term memory network over the window; the last hidden state feeds the head.
    Lstm {
        /// Hidden units.
        hidden: u32,
        /// Stacked layers.
        #[serde(default = "one")]
        layers: u32,
    },
    /// A small pre-norm Transformer encoder (Vaswani et al. 2017) with learned positions; the last position
    /// feeds the head.
    Transformer {
        /// Model width (divisible by `heads`).
        d_model: u32,
        /// Attention heads.
        heads: u32,
        /// Encoder layers.
        layers: u32,
        /// Feed-forward width (default `4 · d_model`).
        #[serde(default)]
        feed_forward: Option<u32>,
    },
}

fn one() -> u32 {
    1
}

impl Architecture {
    /// Short name (`gru`, `lstm`, …).
    pub fn name(&self) -> &'static str {
        match self {
            Architecture::Mlp { .. } => "mlp",
            Architecture::Gru { .. } => "gru",
            Architecture::Lstm { .. } => "lstm",
            Architecture::Transformer { .. } => "transformer",
        }
    }
}

/// What the network predicts per horizon.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum OutputKind {
    /// One value, trained with mean squared error.
    Point,
    /// Mean and log-variance of a normal distribution, trained with the Gaussian negative log-likelihood.
    Gaussian,
    /// The given quantile levels (sorted, in (0, 1)), trained with the pinball loss.
    Quantiles(Vec<f64>),
}

/// The index of the quantile level nearest `q` (0 for an empty list).
pub fn nearest_level(levels: &[f64], q: f64) -> usize {
    levels.iter().enumerate().min_by(|a, b| (a.1 - q).abs().total_cmp(&(b.1 - q).abs())).map_or(0, |(i, _)| i)
}

impl OutputKind {
    /// Values per horizon.
    pub fn width(&self) -> usize {
        match self {
            OutputKind::Point => 1,
            OutputKind::Gaussian => 2,
            OutputKind::Quantiles(q) => q.len(),
        }
    }
}

/// One input signal. Rate-like inputs share the target's normalisation; calendar inputs are (sin, cos) pairs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Input {
    /// Request rate of the step, requests per second.
    Rate,
    /// Time of day at the end of the step (sin, cos of a 24 h cycle).
    TimeOfDay,
    /// Day of the week at the end of the step (sin, cos of a 7 d cycle).
    DayOfWeek,
    /// Requests per second the READY instances can serve (servers / mean service time).
    ReadyCapacity,
    /// Requests per second the PROVISIONING instances will serve.
    PendingCapacity,
    /// Waiting requests per second of control interval (queue length / interval).
    Backlog,
    /// The waiting requests, bounded and log-scaled: `ln(1 + queue / (READY capacity × interval))` — the log of
    /// one plus the control intervals the READY servers would need to serve the queue (a queue over one
    /// request per second of interval when nothing is READY), at most `ln(1 + 1000)` ([`LOG_BACKLOG_CAP`]).
    /// Unitless and not scaled by the rate's normalisation, so a backlog far beyond any in training (a crowd,
    /// an outage) stays within the range the network has seen, where `Backlog` grows without bound.
    LogBacklog,
    /// Memory demand of the step, GiB (a workload that states it: a trace's memory column).
    Memory,
    /// Network demand of the step, Gbit/s (a workload that states it: a trace's network column).
    Network,
}

/// A signal a model sees and may forecast; each has its own normalisation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Signal {
    /// The request rate, requests per second (with the cluster-state inputs, which are in the same unit).
    Rate,
    /// The memory demand, GiB.
    Memory,
    /// The network demand, Gbit/s.
    Network,
}

impl Signal {
    /// The input that carries the signal's own history.
    pub fn input(self) -> Input {
        match self {
            Signal::Rate => Input::Rate,
            Signal::Memory => Input::Memory,
            Signal::Network => Input::Network,
        }
    }

    /// The unit suffix of the signal's figures (`per_s`, `gib`, `gbps`).
    pub fn unit(self) -> &'static str {
        match self {
            Signal::Rate => "per_s",
            Signal::Memory => "gib",
            Signal::Network => "gbps",
        }
    }
}

impl Input {
    /// Column names in the model's input tensor.
    pub fn columns(self) -> &'static [&'static str] {
        match self {
            Input::Rate => &["rate_per_s"],
            Input::TimeOfDay => &["time_of_day_sin", "time_of_day_cos"],
            Input::DayOfWeek => &["day_of_week_sin", "day_of_week_cos"],
            Input::ReadyCapacity => &["ready_capacity_per_s"],
            Input::PendingCapacity => &["pending_capacity_per_s"],
            Input::Backlog => &["backlog_per_s"],
            Input::LogBacklog => &["log_backlog_intervals"],
            Input::Memory => &["memory_gib"],
            Input::Network => &["network_gbps"],
        }
    }

    /// Whether the input is in requests per second (and normalised like the rate).
    pub fn is_rate(self) -> bool {
        self.signal() == Some(Signal::Rate)
    }

    /// The signal whose normalisation the input shares (`None` for calendar inputs, which are in [-1, 1]).
    pub fn signal(self) -> Option<Signal> {
        match self {
            Input::Rate | Input::ReadyCapacity | Input::PendingCapacity | Input::Backlog => Some(Signal::Rate),
            Input::Memory => Some(Signal::Memory),
            Input::Network => Some(Signal::Network),
            Input::TimeOfDay | Input::DayOfWeek | Input::LogBacklog => None,
        }
    }

    /// Whether the input describes the cluster's state (available only inside the simulator or a live
    /// system, not from a trace).
    pub fn is_state(self) -> bool {
        matches!(self, Input::ReadyCapacity | Input::PendingCapacity | Input::Backlog | Input::LogBacklog)
    }
}

/// The most control intervals of READY capacity [`Input::LogBacklog`] counts: its value is at most
/// `ln(1 + LOG_BACKLOG_CAP)`.
pub const LOG_BACKLOG_CAP: f64 = 1000.0;

/// [`Input::LogBacklog`] of `queue` waiting requests with `ready_capacity_per_s` READY over an interval of
/// `interval_s`.
pub fn log_backlog(queue: f64, ready_capacity_per_s: f64, interval_s: f64) -> f64 {
    let intervals = queue / (ready_capacity_per_s * interval_s).max(1.0);
    intervals.clamp(0.0, LOG_BACKLOG_CAP).ln_1p()
}

/// How rate-like values (the rate, cluster-state inputs, the target) are scaled before the network sees them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Level {
    /// By the training data's mean and standard deviation (fixed once trained): a level the training data
    /// never reached puts the inputs outside what the network has seen.
    #[default]
    Global,
    /// First divided by each window's own level (the mean of its `Rate` column, floored at 5 % of the training
    /// mean, [`super::data::WINDOW_FLOOR_SHARE`]; a memory or network signal by the mean of its own column),
    /// then by the training ratios' mean and standard deviation; outputs are multiplied back by their signal's
    /// level. The network sees and predicts ratios to the recent level, so a level shift after training leaves
    /// its inputs in the range it was trained on (the instance normalisation of RevIN, Kim et al. 2022, by the
    /// window mean).
    Window,
}

impl Level {
    /// Whether this is the default (left out of written cards, so cards from before the option read the same).
    pub fn is_global(&self) -> bool {
        *self == Level::Global
    }
}

/// A network: architecture, inputs, window and outputs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSpec {
    /// The body.
    pub architecture: Architecture,
    /// Input signals, in order.
    #[serde(default = "default_inputs")]
    pub inputs: Vec<Input>,
    /// Steps of history in one input window.
    pub window_steps: u32,
    /// Horizons predicted: 1..=horizon_steps steps ahead (1 for a policy).
    #[serde(default = "one")]
    pub horizon_steps: u32,
    /// The output kind.
    #[serde(default = "gaussian")]
    pub output: OutputKind,
    /// How rate-like values are scaled (default `Global`).
    #[serde(default, skip_serializing_if = "Level::is_global")]
    pub level: Level,
    /// The signals predicted, the request rate first (default `[Rate]`); each needs its own history among the
    /// inputs. The output has one row per horizon and target, horizon-major: row `(h − 1) · targets + t`.
    #[serde(default = "default_targets", skip_serializing_if = "is_rate_only")]
    pub targets: Vec<Signal>,
}

fn default_inputs() -> Vec<Input> {
    vec![Input::Rate, Input::TimeOfDay, Input::DayOfWeek]
}

/// `[Rate]`, the default targets.
pub fn default_targets() -> Vec<Signal> {
    vec![Signal::Rate]
}

fn is_rate_only(t: &[Signal]) -> bool {
    t == [Signal::Rate]
}

fn gaussian() -> OutputKind {
    OutputKind::Gaussian
}

impl ModelSpec {
    /// Input columns, in tensor order.
    pub fn columns(&self) -> Vec<String> {
        self.inputs.iter().flat_map(|i| i.columns().iter().map(|c| c.to_string())).collect()
    }

    /// The column of the `Rate` input in a row, if the spec has one.
    pub fn rate_column(&self) -> Option<usize> {
        let mut col = 0;
        for i in &self.inputs {
            if *i == Input::Rate {
                return Some(col);
            }
            col += i.columns().len();
        }
        None
    }

    /// Output rows per window: horizons × targets (horizon-major).
    pub fn output_rows(&self) -> usize {
        self.horizon_steps as usize * self.targets.len()
    }

    /// The signals the model sees (each normalised on its own): the rate always, memory and network when an
    /// input carries them.
    pub fn signals(&self) -> Vec<Signal> {
        let mut s: Vec<Signal> = self.inputs.iter().filter_map(|i| i.signal()).collect();
        s.push(Signal::Rate);
        s.sort();
        s.dedup();
        s
    }

    /// The column of a signal's own input in a row, if the spec has it.
    pub fn column_of(&self, signal: Signal) -> Option<usize> {
        let mut col = 0;
        for i in &self.inputs {
            if *i == signal.input() {
                return Some(col);
            }
            col += i.columns().len();
        }
        None
    }

    /// Width of one input row.
    pub fn width(&self) -> usize {
        self.inputs.iter().map(|i| i.columns().len()).sum()
    }

    /// Trainable parameters of the network this spec builds (`net::Net`: body and linear head; the
    /// Transformer's with its input projection, attention, feed-forward and layer norms), counted before any
    /// is allocated.
    pub fn parameter_count(&self) -> u64 {
        let width = self.width() as u64;
        let head_out = self.output_rows() as u64 * self.output.width() as u64;
        let linear = |i: u64, o: u64| i * o + o;
        let body_out;
        let body = match &self.architecture {
            Architecture::Mlp { hidden } => {
                let mut i = self.window_steps as u64 * width;
                let mut n = 0;
                for &h in hidden {
                    n += linear(i, h as u64);
                    i = h as u64;
                }
                body_out = i;
                n
            }
            Architecture::Gru { hidden, layers } | Architecture::Lstm { hidden, layers } => {
                let gates = if matches!(self.architecture, Architecture::Gru { .. }) { 3 } else { 4 };
                let h = *hidden as u64;
                body_out = h;
                (0..*layers as u64).map(|l| gates * (h * if l == 0 { width } else { h } + h * h + 2 * h)).sum()
            }
            Architecture::Transformer { d_model, layers, feed_forward, .. } => {
                let d = *d_model as u64;
                let ff = feed_forward.map_or(4 * d, u64::from);
                body_out = d;
                // Input projection, positions, final norm; per layer qkv + out, feed-forward, two norms.
                linear(width, d)
                    + self.window_steps as u64 * d
                    + 2 * d
                    + *layers as u64 * (4 * linear(d, d) + linear(d, ff) + linear(ff, d) + 4 * d)
            }
        };
        body + linear(body_out, head_out)
    }

    /// Checks the spec into `p`.
    pub fn check(&self, p: &mut Problems) {
        let before = p.len();
        p.count_within("window_steps", self.window_steps.into(), 1, 4096);
        p.count_within("horizon_steps", self.horizon_steps.into(), 1, 1024);
        p.require("inputs", !self.inputs.is_empty(), || "must list at least one input".into());
        let mut seen = std::collections::HashSet::new();
        for (i, input) in self.inputs.iter().enumerate() {
            p.require(&format!("inputs[{i}]"), seen.insert(*input), || format!("{input:?} is listed twice"));
        }
        p.require("level", self.level == Level::Global || self.inputs.contains(&Input::Rate), || {
            "Window scales by the window's mean rate: the inputs must include Rate".into()
        });
        p.require("targets", self.targets.first() == Some(&Signal::Rate), || {
            format!("the first target must be Rate (the request rate the allocator plans on), got {:?}", self.targets)
        });
        let mut seen_targets = std::collections::HashSet::new();
        for (i, t) in self.targets.iter().enumerate() {
            p.require(&format!("targets[{i}]"), seen_targets.insert(*t), || format!("{t:?} is listed twice"));
            p.require(&format!("targets[{i}]"), *t == Signal::Rate || self.inputs.contains(&t.input()), || {
                format!("forecasting {t:?} needs its history: add {:?} to the inputs", t.input())
            });
        }
        p.under("architecture", |p| match &self.architecture {
            Architecture::Mlp { hidden } => {
                p.require("hidden", !hidden.is_empty(), || "must list at least one layer width".into());
                for (i, h) in hidden.iter().enumerate() {
                    p.count_within(&format!("hidden[{i}]"), (*h).into(), 1, 4096);
                }
            }
            Architecture::Gru { hidden, layers } | Architecture::Lstm { hidden, layers } => {
                p.count_within("hidden", (*hidden).into(), 1, 4096);
                p.count_within("layers", (*layers).into(), 1, 8);
            }
            Architecture::Transformer { d_model, heads, layers, feed_forward } => {
                p.count_within("d_model", (*d_model).into(), 1, 1024);
                p.require("heads", *heads >= 1 && d_model % heads.max(&1) == 0, || {
                    format!("must be >= 1 and divide d_model ({d_model}), got {heads}")
                });
                p.count_within("layers", (*layers).into(), 1, 8);
                if let Some(ff) = feed_forward {
                    p.count_within("feed_forward", (*ff).into(), 1, 8192);
                }
            }
        });
        if let OutputKind::Quantiles(q) = &self.output {
            p.require("output", !q.is_empty(), || "Quantiles must list at least one level".into());
            p.require("output", q.iter().all(|x| *x > 0.0 && *x < 1.0) && q.windows(2).all(|w| w[0] < w[1]), || {
                format!("quantile levels must be increasing and in (0, 1), got {q:?}")
            });
        }
        // What training would allocate: weights, gradients and Adam's two moments, 4 bytes each (counted
        // only for a spec whose sizes are otherwise valid).
        if p.len() == before {
            let n = self.parameter_count();
            p.require("architecture", n <= MAX_PARAMETERS, || {
                format!(
                    "the network has {n} parameters ({:.1} GiB with gradients and Adam's state), more than \
                     {MAX_PARAMETERS}; use fewer or narrower layers or a shorter window",
                    n as f64 * 16.0 / (1u64 << 30) as f64
                )
            });
        }
    }

    /// Every problem of the spec (paths below it).
    pub fn problems(&self) -> Vec<Problem> {
        let mut p = Problems::new();
        self.check(&mut p);
        p.into_vec()
    }
}

/// Most trainable parameters a network may have (40 M: 0.6 GiB with gradients and Adam's state).
pub const MAX_PARAMETERS: u64 = 40_000_000;

/// Calendar features of an instant (seconds since the Unix epoch): time of day and day of week as (sin, cos).
/// 1970-01-01 was a Thursday; the week cycle starts on Monday 00:00.
pub fn calendar(t_unix_s: f64) -> [f32; 4] {
    use std::f64::consts::TAU;
    let day = (t_unix_s / 86_400.0).rem_euclid(1.0);
    let week = ((t_unix_s + 3.0 * 86_400.0) / 604_800.0).rem_euclid(1.0);
    [(TAU * day).sin() as f32, (TAU * day).cos() as f32, (TAU * week).sin() as f32, (TAU * week).cos() as f32]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calendar_has_the_documented_phase() {
        // Midnight: time-of-day angle 0 (sin 0, cos 1). Monday 1970-01-05 00:00: week angle 0.
        let c = calendar(4.0 * 86_400.0);
        assert!(c[0].abs() < 1e-6 && (c[1] - 1.0).abs() < 1e-6);
        assert!(c[2].abs() < 1e-6 && (c[3] - 1.0).abs() < 1e-6);
        // Noon: angle π.
        let c = calendar(12.0 * 3600.0);
        assert!((c[1] + 1.0).abs() < 1e-6);
    }

    #[test]
    fn bad_specs_are_named_by_path() {
        let s = ModelSpec {
            architecture: Architecture::Transformer { d_model: 30, heads: 4, layers: 1, feed_forward: None },
            inputs: vec![Input::Rate, Input::Rate],
            window_steps: 0,
            horizon_steps: 5,
            output: OutputKind::Quantiles(vec![0.9, 0.5]),
            level: Level::Global,
            targets: default_targets(),
        };
        let paths: Vec<String> = s.problems().into_iter().map(|p| p.path).collect();
        assert_eq!(paths, ["window_steps", "inputs[1]", "architecture.heads", "output"]);
        let s = ModelSpec { inputs: vec![Input::TimeOfDay], level: Level::Window, window_steps: 4, ..s };
        let paths: Vec<String> = s.problems().into_iter().map(|p| p.path).collect();
        assert_eq!(paths, ["level", "architecture.heads", "output"]);
        let s = ModelSpec {
            inputs: vec![Input::Rate, Input::Memory],
            targets: vec![Signal::Memory, Signal::Rate, Signal::Memory],
            level: Level::Window,
            ..s
        };
        let paths: Vec<String> = s.problems().into_iter().map(|p| p.path).collect();
        assert_eq!(paths, ["targets", "targets[2]", "architecture.heads", "output"]);
        let s =
            ModelSpec { inputs: vec![Input::Rate], targets: vec![Signal::Rate, Signal::Memory, Signal::Network], ..s };
        let paths: Vec<String> = s.problems().into_iter().map(|p| p.path).collect();
        assert_eq!(paths, ["targets[1]", "targets[2]", "architecture.heads", "output"]);
    }

    /// Two targets over five horizons give ten output rows; the signals seen are the rate and memory.
    #[test]
    fn a_two_target_spec_has_a_row_per_horizon_and_target() {
        let s = ModelSpec {
            architecture: Architecture::Mlp { hidden: vec![4] },
            inputs: vec![Input::Rate, Input::Memory, Input::TimeOfDay],
            window_steps: 3,
            horizon_steps: 5,
            output: OutputKind::Gaussian,
            level: Level::Global,
            targets: vec![Signal::Rate, Signal::Memory],
        };
        assert!(s.problems().is_empty(), "{:?}", s.problems());
        assert_eq!(s.output_rows(), 10);
        assert_eq!(s.signals(), [Signal::Rate, Signal::Memory]);
        assert_eq!((s.column_of(Signal::Memory), s.column_of(Signal::Network)), (Some(1), None));
        // 3 steps x 4 columns -> 4 hidden -> 10 rows x 2 outputs.
        assert_eq!(s.parameter_count(), (12 * 4 + 4) + (4 * 20 + 20));
    }
}
