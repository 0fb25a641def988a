//! Predictors: from the observed history of a signal (requests per second, one value per control step) to a
//! forecast with uncertainty for the next `H` steps.
//!
//! Every predictor learns online ([`Predictor::observe`] after each step) and keeps the residuals of its own
//! one-step-ahead forecasts; its forecast standard deviation at horizon `h` is the residual standard
//! deviation `σ₁` (exponentially weighted, λ = 0.02, i.e. about the last 50 steps) times a model-specific
//! growth factor, following Hyndman & Athanasopoulos, *Forecasting: Principles and Practice* (3rd ed.),
//! §5.5 (benchmark methods) and §8.7 (ETS prediction intervals). Each implementation states its formula.
//! A predictor with too little history says so ([`NotEnoughHistory`]) instead of guessing.

use std::collections::VecDeque;
use std::fmt;

use crate::neural::spec::Signal;

mod ar;
mod baselines;
mod config;
pub mod external;
mod holt_winters;

pub use ar::Ar;
pub use baselines::{Ewma, MovingAverage, Oracle, SeasonalNaive};
pub use config::PredictorConfig;
pub use external::ExternalPredictor;
pub use holt_winters::HoltWinters;

/// Forecasts for horizons 1..=H steps ahead.
#[derive(Clone, Debug, PartialEq)]
pub struct Forecast {
    /// Mean forecast per horizon (`mean[h-1]` is `h` steps ahead).
    pub mean: Vec<f64>,
    /// Standard deviation per horizon.
    pub sd: Vec<f64>,
}

/// A predictor was asked for a forecast before it saw enough history.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NotEnoughHistory {
    /// Steps observed.
    pub have: usize,
    /// Steps needed.
    pub need: usize,
}

impl fmt::Display for NotEnoughHistory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "needs {} steps of history, has {}", self.need, self.have)
    }
}

/// A forecaster of one signal.
pub trait Predictor: Send {
    /// Short name.
    fn name(&self) -> &'static str;
    /// Steps of history needed before the first forecast.
    fn min_history(&self) -> usize;
    /// Learns the value of the step that just ended.
    fn observe(&mut self, y: f64);
    /// Forecasts the next `horizon` steps.
    fn forecast(&self, horizon: usize) -> Result<Forecast, NotEnoughHistory>;
    /// Told the forecast the controller acted on (a predictor that keeps its own residuals needs it).
    fn after_forecast(&mut self, _forecast: &Forecast) {}
    /// The mean absolute one-step error (signal units) just before and just after an online model update
    /// made during the last `observe`, if one was made (learned predictors); taken once.
    fn take_update(&mut self) -> Option<(f64, f64)> {
        None
    }
    /// The signals this predictor forecasts besides the request rate (a model with several targets:
    /// `[Memory]`, `[Memory, Network]`, …), in the order [`Predictor::forecast_all`] gives them; none by
    /// default.
    fn other_targets(&self) -> &[Signal] {
        &[]
    }
    /// Told the step's stated memory demand, GiB, and network demand, Gbit/s (NaN when the workload states
    /// none), just before [`Predictor::observe`] learns the step's rate: a model that takes them as inputs
    /// keeps them. Ignored by default.
    fn observe_demand(&mut self, _memory_gib: f64, _network_gbps: f64) {}
    /// The rate's forecast followed by one per [`Predictor::other_targets`] (same horizons), from one model
    /// call where the model allows; the rate's alone by default.
    fn forecast_all(&self, horizon: usize) -> Result<Vec<Forecast>, NotEnoughHistory> {
        Ok(vec![self.forecast(horizon)?])
    }
    /// Told the forecasts the controller acted on, as [`Predictor::forecast_all`] gave them (by default the
    /// rate's goes to [`Predictor::after_forecast`]).
    fn after_forecast_all(&mut self, all: &[Forecast]) {
        if let Some(rate) = all.first() {
            self.after_forecast(rate);
        }
    }
    /// Forward passes of a learned model so far (0 for classical predictors).
    fn model_calls(&self) -> u64 {
        0
    }
    /// Why the predictor cannot forecast as configured (an external process that failed), with the step; a
    /// predictor with a fault forecasts NaN, so the controller holds and the run fails with this message.
    fn fault(&self) -> Option<String> {
        None
    }
}

/// Exponentially weighted residual variance of one-step-ahead forecasts.
#[derive(Clone, Debug, Default)]
pub struct Residuals {
    var: f64,
    n: usize,
}

impl Residuals {
    const LAMBDA: f64 = 0.02;

    /// Adds the residual `e = actual − forecast`.
    pub fn push(&mut self, e: f64) {
        self.n += 1;
        // Start with the plain mean of squares, then weight exponentially.
        let w = (1.0 / self.n as f64).max(Self::LAMBDA);
        self.var += w * (e * e - self.var);
    }

    /// `σ₁`, the residual standard deviation (0 before any residual).
    pub fn sd(&self) -> f64 {
        self.var.sqrt()
    }
}

/// The history every predictor keeps (bounded).
#[derive(Clone, Debug)]
struct History {
    ys: VecDeque<f64>,
    cap: usize,
    seen: usize,
}

impl History {
    fn new(cap: usize) -> Self {
        History { ys: VecDeque::with_capacity(cap.min(1 << 16)), cap: cap.max(1), seen: 0 }
    }
    fn push(&mut self, y: f64) {
        if self.ys.len() == self.cap {
            self.ys.pop_front();
        }
        self.ys.push_back(y);
        self.seen += 1;
    }
    /// The value `k` steps back (`k = 1`: the latest).
    fn back(&self, k: usize) -> f64 {
        self.ys[self.ys.len() - k]
    }
    fn check(&self, need: usize) -> Result<(), NotEnoughHistory> {
        if self.seen >= need { Ok(()) } else { Err(NotEnoughHistory { have: self.seen, need }) }
    }
}

fn flat(mean: impl Fn(usize) -> f64, sd: impl Fn(usize) -> f64, horizon: usize) -> Forecast {
    Forecast { mean: (1..=horizon).map(&mean).collect(), sd: (1..=horizon).map(sd).collect() }
}

/// Last value (naive): `ŷ(t+h) = y(t)`, `sd(h) = σ₁ √h` (random walk).
pub struct LastValue {
    h: History,
    r: Residuals,
}

impl LastValue {
    /// A new predictor.
    pub fn new() -> Self {
        LastValue { h: History::new(1), r: Residuals::default() }
    }
}

impl Default for LastValue {
    fn default() -> Self {
        Self::new()
    }
}

impl Predictor for LastValue {
    fn name(&self) -> &'static str {
        "last-value"
    }
    fn min_history(&self) -> usize {
        1
    }
    fn observe(&mut self, y: f64) {
        if self.h.seen > 0 {
            self.r.push(y - self.h.back(1));
        }
        self.h.push(y);
    }
    fn forecast(&self, horizon: usize) -> Result<Forecast, NotEnoughHistory> {
        self.h.check(1)?;
        let (y, s) = (self.h.back(1), self.r.sd());
        Ok(flat(|_| y, |h| s * (h as f64).sqrt(), horizon))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(p: &mut dyn Predictor, ys: impl IntoIterator<Item = f64>) {
        for y in ys {
            p.observe(y);
        }
    }

    #[test]
    fn not_enough_history_is_said() {
        let mut p = SeasonalNaive::new(10);
        feed(&mut p, [1.0; 9]);
        assert_eq!(p.forecast(3).unwrap_err(), NotEnoughHistory { have: 9, need: 10 });
        p.observe(1.0);
        assert!(p.forecast(3).is_ok());
    }

    #[test]
    fn seasonal_naive_repeats_the_last_season() {
        let mut p = SeasonalNaive::new(4);
        feed(&mut p, [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]);
        assert_eq!(p.forecast(6).unwrap().mean, vec![5.0, 6.0, 7.0, 8.0, 5.0, 6.0]);
    }

    #[test]
    fn holt_winters_learns_trend_and_season_exactly() {
        // y = 100 + 0.5 t + season: HW with any parameters reproduces a noise-free additive series.
        let season = [10.0, -5.0, 0.0, -5.0];
        let y = |t: usize| 100.0 + 0.5 * t as f64 + season[t % 4];
        let mut p = HoltWinters::new(4, 0.3, 0.1, 0.2, false);
        feed(&mut p, (0..40).map(y));
        let f = p.forecast(8).unwrap();
        for (h, m) in f.mean.iter().enumerate() {
            assert!((m - y(40 + h)).abs() < 1e-9, "h={} {m} vs {}", h + 1, y(40 + h));
        }
    }

    #[test]
    fn ar_recovers_its_coefficients() {
        // y(t) = 5 + 0.6 y(t-1) - 0.2 y(t-2) + e, e small deterministic pseudo-noise.
        let mut ys = vec![10.0, 10.0];
        let mut z: u64 = 12345;
        for _ in 0..600 {
            z = z.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let e = ((z >> 11) as f64 / (1u64 << 53) as f64 - 0.5) * 0.2;
            let n = ys.len();
            ys.push(5.0 + 0.6 * ys[n - 1] - 0.2 * ys[n - 2] + e);
        }
        let mut p = Ar::new(2, 500, 50);
        feed(&mut p, ys.iter().copied());
        let c = p.coefficients().unwrap().to_vec();
        assert!((c[1] - 0.6).abs() < 0.05 && (c[2] + 0.2).abs() < 0.05, "{c:?}");
        let f = p.forecast(50).unwrap();
        // Converges to the process mean 5 / (1 - 0.6 + 0.2) = 8.33.
        assert!((f.mean[49] - 5.0 / 0.6).abs() < 0.1);
        assert!(f.sd[49] > f.sd[0]);
    }

    #[test]
    fn ewma_and_moving_average() {
        let mut e = Ewma::new(0.5);
        feed(&mut e, [0.0, 4.0, 8.0]);
        assert_eq!(e.forecast(1).unwrap().mean, vec![5.0]); // 0 -> 2 -> 5
        let mut m = MovingAverage::new(3);
        feed(&mut m, [1.0, 2.0, 3.0, 4.0]);
        assert_eq!(m.forecast(2).unwrap().mean, vec![3.0, 3.0]);
        let mut o = Oracle::new(std::sync::Arc::new(vec![1.0, 2.0, 3.0]));
        o.observe(9.0);
        assert_eq!(o.forecast(3).unwrap().mean, vec![2.0, 3.0, 3.0]);
    }
}
