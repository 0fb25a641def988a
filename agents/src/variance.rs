//! Variance controllers (the seed's §5): from a forecast and the errors seen so far to the safety margin
//! added above the forecast mean, in the forecast's units.
//!
//! Each sees, after every step, what it had predicted, the margin it had added, what happened, and the
//! fraction of requests that missed the SLO ([`VarianceController::update`]). The caller tracks realised
//! coverage (the fraction of steps with `actual ≤ forecast + margin`) the same way for all of them.

use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

use prescale_sim::validate::{Interval, Problems};

/// A safety-margin policy.
pub trait VarianceController: Send {
    /// Short name.
    fn name(&self) -> &'static str;
    /// Margin above `mean` for a forecast with standard deviation `sd`.
    fn margin(&self, mean: f64, sd: f64) -> f64;
    /// Feedback after a step: the forecast and margin made for it, the actual value, and the fraction of the
    /// step's requests slower than the SLO.
    fn update(&mut self, forecast: f64, margin: f64, actual: f64, slow_fraction: f64);
}

/// A fixed margin: `absolute + percent/100 · mean`.
pub struct FixedMargin {
    /// Absolute part, in the forecast's units.
    pub absolute: f64,
    /// Relative part, percent of the forecast mean.
    pub percent: f64,
}

impl VarianceController for FixedMargin {
    fn name(&self) -> &'static str {
        "fixed"
    }
    fn margin(&self, mean: f64, _sd: f64) -> f64 {
        self.absolute + self.percent / 100.0 * mean.max(0.0)
    }
    fn update(&mut self, _f: f64, _m: f64, _a: f64, _s: f64) {}
}

/// `k` standard deviations of the last `window` residuals (`actual − forecast`).
pub struct KSigma {
    k: f64,
    window: usize,
    residuals: VecDeque<f64>,
}

impl KSigma {
    /// `k` σ over `window` steps.
    pub fn new(k: f64, window: usize) -> Self {
        KSigma { k, window: window.max(2), residuals: VecDeque::new() }
    }
}

impl VarianceController for KSigma {
    fn name(&self) -> &'static str {
        "k-sigma"
    }
    fn margin(&self, _mean: f64, sd: f64) -> f64 {
        let n = self.residuals.len();
        if n < 2 {
            return self.k * sd;
        }
        let m = self.residuals.iter().sum::<f64>() / n as f64;
        let var = self.residuals.iter().map(|r| (r - m).powi(2)).sum::<f64>() / (n - 1) as f64;
        self.k * var.sqrt()
    }
    fn update(&mut self, forecast: f64, _m: f64, actual: f64, _s: f64) {
        if self.residuals.len() == self.window {
            self.residuals.pop_front();
        }
        self.residuals.push_back(actual - forecast);
    }
}

/// The predicted `quantile` of a normal forecast distribution: `z_q · sd` (the predictor's own uncertainty).
pub struct PredictedQuantile {
    z: f64,
}

impl PredictedQuantile {
    /// Quantile in (0.5, 1).
    pub fn new(quantile: f64) -> Self {
        PredictedQuantile { z: normal_quantile(quantile) }
    }
}

impl VarianceController for PredictedQuantile {
    fn name(&self) -> &'static str {
        "predicted-quantile"
    }
    fn margin(&self, _mean: f64, sd: f64) -> f64 {
        self.z * sd
    }
    fn update(&mut self, _f: f64, _m: f64, _a: f64, _s: f64) {}
}

/// Standard normal quantile (Acklam's rational approximation, relative error < 1.2e-9; his published
/// coefficients, kept digit for digit).
#[allow(clippy::excessive_precision)]
pub fn normal_quantile(p: f64) -> f64 {
    const A: [f64; 6] = [
        -3.969683028665376e1,
        2.209460984245205e2,
        -2.759285104469687e2,
        1.383577518672690e2,
        -3.066479806614716e1,
        2.506628277459239,
    ];
    const B: [f64; 5] =
        [-5.447609879822406e1, 1.615858368580409e2, -1.556989798598866e2, 6.680131188771972e1, -1.328068155288572e1];
    const C: [f64; 6] = [
        -7.784894002430293e-3,
        -3.223964580411365e-1,
        -2.400758277161838,
        -2.549732539343734,
        4.374664141464968,
        2.938163982698783,
    ];
    const D: [f64; 4] = [7.784695709041462e-3, 3.224671290700398e-1, 2.445134137142996, 3.754408661907416];
    let pl = 0.02425;
    if p < pl {
        let q = (-2.0 * p.ln()).sqrt();
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    } else if p <= 1.0 - pl {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    } else {
        -normal_quantile(1.0 - p)
    }
}

/// Adaptive conformal inference (Gibbs & Candès, "Adaptive Conformal Inference Under Distribution Shift",
/// NeurIPS 2021), one-sided: scores `s = actual − forecast`; the margin is the empirical `(1 − α_t)`-quantile
/// of the last `window` scores; after each step `α_{t+1} = α_t + γ (α − err_t)` with `err_t = 1` when the
/// actual exceeded forecast + margin. Whatever the data, the long-run miscoverage tends to `α`
/// (`|mean err − α| ≤ (max(α_1, 1−α_1) + γ) / (γ T)`). `α_t ≤ 0` gives the largest score seen (the
/// "infinite" interval, made finite); `α_t ≥ 1` a zero-width margin over the smallest score.
pub struct AdaptiveConformal {
    alpha: f64,
    gamma: f64,
    alpha_t: f64,
    window: usize,
    scores: VecDeque<f64>,
    /// The same scores, kept sorted (insert and remove by binary search) so that a quantile is one lookup.
    sorted: Vec<f64>,
}

impl AdaptiveConformal {
    /// Target miscoverage `alpha` in (0, 1), step `gamma` > 0, calibration window in steps.
    pub fn new(alpha: f64, gamma: f64, window: usize) -> Self {
        AdaptiveConformal {
            alpha,
            gamma,
            alpha_t: alpha,
            window: window.max(10),
            scores: VecDeque::new(),
            sorted: Vec::new(),
        }
    }

    /// The current `α_t`.
    pub fn alpha_t(&self) -> f64 {
        self.alpha_t
    }
}

impl VarianceController for AdaptiveConformal {
    fn name(&self) -> &'static str {
        "adaptive-conformal"
    }
    fn margin(&self, _mean: f64, sd: f64) -> f64 {
        if self.scores.is_empty() {
            return 2.0 * sd;
        }
        let s = &self.sorted;
        let n = s.len();
        if self.alpha_t <= 0.0 {
            return s[n - 1].max(0.0) * 1.5 + sd;
        }
        if self.alpha_t >= 1.0 {
            return s[0];
        }
        // The ⌈(1 − α_t)(n + 1)⌉-th smallest score (split-conformal quantile), capped at the largest.
        let k = (((1.0 - self.alpha_t) * (n as f64 + 1.0)).ceil() as usize).clamp(1, n);
        s[k - 1]
    }
    fn update(&mut self, forecast: f64, margin: f64, actual: f64, _s: f64) {
        let err = if actual > forecast + margin { 1.0 } else { 0.0 };
        self.alpha_t += self.gamma * (self.alpha - err);
        if self.scores.len() == self.window
            && let Some(old) = self.scores.pop_front()
        {
            let i = self.sorted.partition_point(|x| x.total_cmp(&old).is_lt());
            self.sorted.remove(i);
        }
        let score = actual - forecast;
        self.scores.push_back(score);
        let i = self.sorted.partition_point(|x| x.total_cmp(&score).is_lt());
        self.sorted.insert(i, score);
    }
}

/// SLO feedback: the margin is a percentage of the forecast, raised by `raise_percent` after every step in
/// which more than `violation_fraction` of requests missed the SLO, and lowered by `decay` (relative, per
/// step) otherwise, within `[min_percent, max_percent]`.
pub struct SloFeedback {
    percent: f64,
    raise_percent: f64,
    decay: f64,
    min_percent: f64,
    max_percent: f64,
    violation_fraction: f64,
}

impl SloFeedback {
    /// Starts at `initial_percent`.
    pub fn new(
        initial_percent: f64,
        raise_percent: f64,
        decay: f64,
        min_percent: f64,
        max_percent: f64,
        violation_fraction: f64,
    ) -> Self {
        SloFeedback { percent: initial_percent, raise_percent, decay, min_percent, max_percent, violation_fraction }
    }
}

impl VarianceController for SloFeedback {
    fn name(&self) -> &'static str {
        "slo-feedback"
    }
    fn margin(&self, mean: f64, _sd: f64) -> f64 {
        self.percent / 100.0 * mean.max(0.0)
    }
    fn update(&mut self, _f: f64, _m: f64, _a: f64, slow_fraction: f64) {
        self.percent = if slow_fraction > self.violation_fraction {
            self.percent + self.raise_percent
        } else {
            self.percent * (1.0 - self.decay)
        }
        .clamp(self.min_percent, self.max_percent);
    }
}

/// A variance controller by name (margins in requests per second or percent of the forecast).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum VarianceConfig {
    /// `absolute_per_s + percent/100 · forecast`.
    Fixed {
        /// Absolute margin, requests per second.
        #[serde(default)]
        absolute_per_s: f64,
        /// Relative margin, percent.
        #[serde(default)]
        percent: f64,
    },
    /// `k` standard deviations of recent residuals.
    KSigma {
        /// Multiplier.
        k: f64,
        /// Window, seconds.
        window_s: f64,
    },
    /// The predicted quantile of a normal forecast.
    PredictedQuantile {
        /// Quantile in (0.5, 1).
        quantile: f64,
    },
    /// Adaptive conformal inference (Gibbs & Candès 2021).
    AdaptiveConformal {
        /// Target miscoverage in (0, 1).
        alpha: f64,
        /// Step size > 0.
        #[serde(default = "aci_gamma")]
        gamma: f64,
        /// Calibration window, seconds.
        #[serde(default = "aci_window")]
        window_s: f64,
    },
    /// Raised after SLO violations, lowered slowly.
    SloFeedback {
        /// Starting margin, percent.
        #[serde(default = "ten")]
        initial_percent: f64,
        /// Raise after a violating step, percentage points.
        #[serde(default = "five")]
        raise_percent: f64,
        /// Relative decay per quiet step.
        #[serde(default = "decay")]
        decay: f64,
        /// Largest margin, percent.
        #[serde(default = "hundred")]
        max_percent: f64,
    },
}

fn aci_gamma() -> f64 {
    0.005
}
fn aci_window() -> f64 {
    86400.0
}
fn ten() -> f64 {
    10.0
}
fn five() -> f64 {
    5.0
}
fn decay() -> f64 {
    0.01
}
fn hundred() -> f64 {
    100.0
}

impl VarianceConfig {
    /// The variance controller this config names, at control step `step_s`.
    pub fn init(&self, step_s: f64) -> Box<dyn VarianceController> {
        let steps = |s: f64| ((s / step_s).round() as usize).max(2);
        match *self {
            VarianceConfig::Fixed { absolute_per_s, percent } => {
                Box::new(FixedMargin { absolute: absolute_per_s, percent })
            }
            VarianceConfig::KSigma { k, window_s } => Box::new(KSigma::new(k, steps(window_s))),
            VarianceConfig::PredictedQuantile { quantile } => Box::new(PredictedQuantile::new(quantile)),
            VarianceConfig::AdaptiveConformal { alpha, gamma, window_s } => {
                Box::new(AdaptiveConformal::new(alpha, gamma, steps(window_s)))
            }
            VarianceConfig::SloFeedback { initial_percent, raise_percent, decay, max_percent } => {
                Box::new(SloFeedback::new(initial_percent, raise_percent, decay, 0.0, max_percent, 0.01))
            }
        }
    }

    /// Checks the parameters into `p` (paths below the variance controller).
    pub fn check(&self, p: &mut Problems) {
        match *self {
            VarianceConfig::Fixed { absolute_per_s, percent } => {
                p.non_negative("absolute_per_s", absolute_per_s);
                p.non_negative("percent", percent);
            }
            VarianceConfig::KSigma { k, window_s } => {
                p.non_negative("k", k);
                p.positive("window_s", window_s);
            }
            VarianceConfig::PredictedQuantile { quantile } => {
                p.within("quantile", quantile, Interval::open(0.5, 1.0));
            }
            VarianceConfig::AdaptiveConformal { alpha, gamma, window_s } => {
                p.within("alpha", alpha, Interval::open(0.0, 1.0));
                p.positive("gamma", gamma);
                p.positive("window_s", window_s);
            }
            VarianceConfig::SloFeedback { initial_percent, raise_percent, decay, max_percent } => {
                p.non_negative("initial_percent", initial_percent);
                p.non_negative("raise_percent", raise_percent);
                p.within("decay", decay, Interval::closed_open(0.0, 1.0));
                p.at_least("max_percent", max_percent, initial_percent, "initial_percent");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normal_quantiles() {
        assert!((normal_quantile(0.975) - 1.959963984540054).abs() < 1e-8);
        assert!((normal_quantile(0.5)).abs() < 1e-12);
        assert!((normal_quantile(0.999) - 3.090232306167813).abs() < 1e-7);
    }

    /// Gibbs & Candès' guarantee holds on any sequence, even an adversarial drift: check it on a shifting
    /// heavy-tailed one (deterministic pseudo-random).
    #[test]
    fn aci_reaches_its_nominal_coverage_on_shifting_data() {
        let mut aci = AdaptiveConformal::new(0.1, 0.005, 500);
        let mut z: u64 = 7;
        let mut misses = 0.0;
        let n = 20_000;
        for t in 0..n {
            z = z.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let u = (z >> 11) as f64 / (1u64 << 53) as f64;
            let scale = if t < n / 2 { 1.0 } else { 4.0 }; // variance shift halfway
            let e = scale * (u / (1.0 - u)).ln(); // logistic noise
            let m = aci.margin(0.0, 1.0);
            if e > m {
                misses += 1.0;
            }
            aci.update(0.0, m, e, 0.0);
        }
        let miss = misses / n as f64;
        assert!((miss - 0.1).abs() < 0.01, "miscoverage {miss}");
    }

    #[test]
    fn slo_feedback_raises_and_decays() {
        let mut s = SloFeedback::new(10.0, 5.0, 0.1, 0.0, 50.0, 0.01);
        s.update(0.0, 0.0, 0.0, 0.05);
        assert!((s.margin(100.0, 0.0) - 15.0).abs() < 1e-12);
        s.update(0.0, 0.0, 0.0, 0.0);
        assert!((s.margin(100.0, 0.0) - 13.5).abs() < 1e-12);
    }
}
