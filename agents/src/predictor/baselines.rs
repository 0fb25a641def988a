//! The benchmark methods of FPP3 §5.2 beside the last value (which lives with the trait): seasonal naive,
//! moving average, exponentially weighted average, and the oracle that reads the true future.

use super::{Forecast, History, NotEnoughHistory, Predictor, Residuals, flat};

/// Seasonal naive with period `m` steps: `ŷ(t+h) = y(t + h − m k)`, `k = ⌈h/m⌉`; `sd(h) = σ₁ √k`.
pub struct SeasonalNaive {
    m: usize,
    h: History,
    r: Residuals,
}

impl SeasonalNaive {
    /// Period `m` steps (e.g. one day of 1-minute steps: 1440).
    pub fn new(m: usize) -> Self {
        SeasonalNaive { m: m.max(1), h: History::new(m.max(1)), r: Residuals::default() }
    }
}

impl Predictor for SeasonalNaive {
    fn name(&self) -> &'static str {
        "seasonal-naive"
    }
    fn min_history(&self) -> usize {
        self.m
    }
    fn observe(&mut self, y: f64) {
        if self.h.seen >= self.m {
            self.r.push(y - self.h.back(self.m));
        }
        self.h.push(y);
    }
    fn forecast(&self, horizon: usize) -> Result<Forecast, NotEnoughHistory> {
        self.h.check(self.m)?;
        let m = self.m;
        let s = self.r.sd();
        Ok(flat(
            |h| {
                let k = h.div_ceil(m);
                self.h.back(m * k - h + 1)
            },
            |h| s * (h.div_ceil(m) as f64).sqrt(),
            horizon,
        ))
    }
}

/// Moving average of the last `w` steps: `ŷ(t+h) = (1/w) Σ y(t−i)`, `sd(h) = σ₁`.
pub struct MovingAverage {
    w: usize,
    h: History,
    r: Residuals,
}

impl MovingAverage {
    /// Window of `w` steps.
    pub fn new(w: usize) -> Self {
        MovingAverage { w: w.max(1), h: History::new(w.max(1)), r: Residuals::default() }
    }
    fn mean(&self) -> f64 {
        self.h.ys.iter().sum::<f64>() / self.h.ys.len() as f64
    }
}

impl Predictor for MovingAverage {
    fn name(&self) -> &'static str {
        "moving-average"
    }
    fn min_history(&self) -> usize {
        self.w
    }
    fn observe(&mut self, y: f64) {
        if self.h.seen >= self.w {
            self.r.push(y - self.mean());
        }
        self.h.push(y);
    }
    fn forecast(&self, horizon: usize) -> Result<Forecast, NotEnoughHistory> {
        self.h.check(self.w)?;
        let (m, s) = (self.mean(), self.r.sd());
        Ok(flat(|_| m, |_| s, horizon))
    }
}

/// Exponentially weighted moving average (simple exponential smoothing): `ℓ(t) = α y(t) + (1−α) ℓ(t−1)`,
/// `ŷ(t+h) = ℓ(t)`, `sd(h) = σ₁ √(1 + (h−1) α²)` (FPP3 Table 8.8, ETS(A,N,N)).
pub struct Ewma {
    alpha: f64,
    level: Option<f64>,
    seen: usize,
    r: Residuals,
}

impl Ewma {
    /// Smoothing `alpha` in (0, 1].
    pub fn new(alpha: f64) -> Self {
        Ewma { alpha, level: None, seen: 0, r: Residuals::default() }
    }
}

impl Predictor for Ewma {
    fn name(&self) -> &'static str {
        "ewma"
    }
    fn min_history(&self) -> usize {
        1
    }
    fn observe(&mut self, y: f64) {
        self.seen += 1;
        self.level = Some(match self.level {
            Some(l) => {
                self.r.push(y - l);
                l + self.alpha * (y - l)
            }
            None => y,
        });
    }
    fn forecast(&self, horizon: usize) -> Result<Forecast, NotEnoughHistory> {
        let l = self.level.ok_or(NotEnoughHistory { have: 0, need: 1 })?;
        let (s, a) = (self.r.sd(), self.alpha);
        Ok(flat(|_| l, |h| s * (1.0 + (h - 1) as f64 * a * a).sqrt(), horizon))
    }
}

/// The oracle: reads the true future (`future[k]` is the signal of step `k`); standard deviation 0. The
/// upper bound for every comparison.
pub struct Oracle {
    future: std::sync::Arc<Vec<f64>>,
    step: usize,
}

impl Oracle {
    /// Knows `future` from step 0 on.
    pub fn new(future: std::sync::Arc<Vec<f64>>) -> Self {
        Oracle { future, step: 0 }
    }
}

impl Predictor for Oracle {
    fn name(&self) -> &'static str {
        "oracle"
    }
    fn min_history(&self) -> usize {
        0
    }
    fn observe(&mut self, _y: f64) {
        self.step += 1;
    }
    fn forecast(&self, horizon: usize) -> Result<Forecast, NotEnoughHistory> {
        let last = self.future.len().saturating_sub(1);
        let mean = (0..horizon).map(|h| self.future[(self.step + h).min(last)]).collect();
        Ok(Forecast { mean, sd: vec![0.0; horizon] })
    }
}
