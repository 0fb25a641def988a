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

/// Additive Holt-Winters (ETS(A,A,A) in error-correction form, FPP3 §8.3):
/// `ℓ = α (y − s(t−m)) + (1−α)(ℓ + b)`, `b = β* (ℓ − ℓ_prev) + (1−β*) b`, `s(t) = γ (y − ℓ_prev − b_prev) +
/// (1−γ) s(t−m)`; `ŷ(t+h) = ℓ + h b + s(t + h − m k)`, `k = ⌈h/m⌉`;
/// `sd(h) = σ₁ √(1 + Σ_{j=1}^{h−1} c_j²)`, `c_j = α (1 + j β) + γ [j mod m = 0]` with `β = α β*`.
/// Initialised from the first two seasons (trend: difference of the season means over `m`; level: season 1's
/// mean carried to its end; seasonal indices: season 1 minus the trend line through its mean). With `fit`, the smoothing parameters are chosen once,
/// when four seasons have been seen, by the least one-step squared error over a grid
/// (α ∈ {0.05, 0.1, 0.2, 0.4, 0.7}, β* ∈ {0.01, 0.05, 0.2}, γ ∈ {0.05, 0.15, 0.4}).
pub struct HoltWinters {
    m: usize,
    alpha: f64,
    beta: f64,
    gamma: f64,
    fit: bool,
    fitted: bool,
    h: History,
    state: Option<(f64, f64, Vec<f64>, usize)>, // level, trend, seasonal (ring), position
    r: Residuals,
}

impl HoltWinters {
    /// Period `m` steps; smoothing parameters; `fit` to choose them from the data.
    pub fn new(m: usize, alpha: f64, beta: f64, gamma: f64, fit: bool) -> Self {
        let m = m.max(2);
        HoltWinters {
            m,
            alpha,
            beta,
            gamma,
            fit,
            fitted: false,
            h: History::new(4 * m),
            state: None,
            r: Residuals::default(),
        }
    }

    /// Level, trend and seasonal state after running over `ys` from the two-season initialisation, and
    /// the one-step squared error on the way.
    fn run(ys: &[f64], m: usize, a: f64, b: f64, g: f64) -> ((f64, f64, Vec<f64>, usize), f64) {
        let s1: f64 = ys[..m].iter().sum::<f64>() / m as f64;
        let s2: f64 = ys[m..2 * m].iter().sum::<f64>() / m as f64;
        let mut level = s1;
        let mut trend = (s2 - s1) / m as f64;
        let centre = (m as f64 - 1.0) / 2.0;
        let mut season: Vec<f64> =
            ys[..m].iter().enumerate().map(|(i, y)| y - (s1 + trend * (i as f64 - centre))).collect();
        // The initial level is for the middle of season 1; move it to its end.
        level += trend * (m as f64 - 1.0) / 2.0;
        let mut sse = 0.0;
        let mut pos = 0;
        for &y in &ys[m..] {
            let (l0, b0) = (level, trend);
            let e = y - (l0 + b0 + season[pos]);
            sse += e * e;
            level = a * (y - season[pos]) + (1.0 - a) * (l0 + b0);
            trend = b * (level - l0) + (1.0 - b) * b0;
            season[pos] = g * (y - l0 - b0) + (1.0 - g) * season[pos];
            pos = (pos + 1) % m;
        }
        ((level, trend, season, pos), sse)
    }

    fn update(&mut self, y: f64) {
        let (a, b, g) = (self.alpha, self.beta, self.gamma);
        if let Some((level, trend, season, pos)) = &mut self.state {
            let (l0, b0) = (*level, *trend);
            self.r.push(y - (l0 + b0 + season[*pos]));
            *level = a * (y - season[*pos]) + (1.0 - a) * (l0 + b0);
            *trend = b * (*level - l0) + (1.0 - b) * b0;
            season[*pos] = g * (y - l0 - b0) + (1.0 - g) * season[*pos];
            *pos = (*pos + 1) % self.m;
        }
    }
}

impl Predictor for HoltWinters {
    fn name(&self) -> &'static str {
        "holt-winters"
    }
    fn min_history(&self) -> usize {
        2 * self.m
    }
    fn observe(&mut self, y: f64) {
        self.h.push(y);
        let m = self.m;
        if self.state.is_some() {
            self.update(y);
        } else if self.h.seen == 2 * m {
            let ys: Vec<f64> = self.h.ys.iter().copied().collect();
            self.state = Some(Self::run(&ys, m, self.alpha, self.beta, self.gamma).0);
        }
        if self.fit && !self.fitted && self.h.seen == 4 * m {
            let ys: Vec<f64> = self.h.ys.iter().copied().collect();
            let mut best = (f64::INFINITY, self.alpha, self.beta, self.gamma);
            for a in [0.05, 0.1, 0.2, 0.4, 0.7] {
                for b in [0.01, 0.05, 0.2] {
                    for g in [0.05, 0.15, 0.4] {
                        let sse = Self::run(&ys, m, a, b, g).1;
                        if sse < best.0 {
                            best = (sse, a, b, g);
                        }
                    }
                }
            }
            (self.alpha, self.beta, self.gamma) = (best.1, best.2, best.3);
            let (state, sse) = Self::run(&ys, m, self.alpha, self.beta, self.gamma);
            self.state = Some(state);
            self.r = Residuals::default();
            self.r.push((sse / (ys.len() - m) as f64).sqrt());
            self.fitted = true;
        }
    }
    fn forecast(&self, horizon: usize) -> Result<Forecast, NotEnoughHistory> {
        let Some((level, trend, season, pos)) = &self.state else {
            return Err(NotEnoughHistory { have: self.h.seen, need: 2 * self.m });
        };
        let m = self.m;
        let (a, b, g) = (self.alpha, self.alpha * self.beta, self.gamma);
        let s = self.r.sd();
        let mut acc: f64 = 1.0;
        let mut sd = Vec::with_capacity(horizon);
        for h in 1..=horizon {
            sd.push(s * acc.sqrt());
            let c = a * (1.0 + h as f64 * b) + if h % m == 0 { g } else { 0.0 };
            acc += c * c;
        }
        let mean = (1..=horizon).map(|h| level + h as f64 * trend + season[(pos + h - 1) % m]).collect();
        Ok(Forecast { mean, sd })
    }
}

/// AR(p) with intercept, by ordinary least squares on the last `window` steps, refitted every `refit_every`
/// steps: `y(t) = c + Σ φ_i y(t−i) + e`; forecasts recursively; `sd(h) = σ₁ √(Σ_{j<h} ψ_j²)` with the MA(∞)
/// weights `ψ_0 = 1`, `ψ_j = Σ_{i=1}^{min(j,p)} φ_i ψ_{j−i}`.
pub struct Ar {
    p: usize,
    refit_every: usize,
    h: History,
    coef: Option<Vec<f64>>, // c, φ_1..φ_p
    since_fit: usize,
    r: Residuals,
}

impl Ar {
    /// Order `p`, fitting window and refit schedule, in steps.
    pub fn new(p: usize, window: usize, refit_every: usize) -> Self {
        let p = p.max(1);
        // The history kept is the fitting window.
        Ar {
            p,
            refit_every: refit_every.max(1),
            h: History::new(window.max(3 * p + 2)),
            coef: None,
            since_fit: 0,
            r: Residuals::default(),
        }
    }

    fn one_step(&self, coef: &[f64]) -> f64 {
        coef[0] + (1..=self.p).map(|i| coef[i] * self.h.back(i)).sum::<f64>()
    }

    /// Least squares by the normal equations, solved with partial pivoting; `None` if singular.
    fn fit(&self) -> Option<Vec<f64>> {
        let ys: Vec<f64> = self.h.ys.iter().copied().collect();
        let k = self.p + 1;
        let mut xtx = vec![vec![0.0; k]; k];
        let mut xty = vec![0.0; k];
        for t in self.p..ys.len() {
            let x: Vec<f64> = std::iter::once(1.0).chain((1..=self.p).map(|i| ys[t - i])).collect();
            for i in 0..k {
                xty[i] += x[i] * ys[t];
                for j in 0..k {
                    xtx[i][j] += x[i] * x[j];
                }
            }
        }
        // Tiny ridge so that constant stretches do not make the system singular.
        for (i, row) in xtx.iter_mut().enumerate() {
            row[i] += 1e-9 * (1.0 + row[i].abs());
        }
        solve(xtx, xty)
    }
}

/// Solves `a x = b` by Gaussian elimination with partial pivoting.
fn solve(mut a: Vec<Vec<f64>>, mut b: Vec<f64>) -> Option<Vec<f64>> {
    let n = b.len();
    for col in 0..n {
        let piv = (col..n).max_by(|&i, &j| a[i][col].abs().total_cmp(&a[j][col].abs()))?;
        if a[piv][col].abs() < 1e-300 {
            return None;
        }
        a.swap(col, piv);
        b.swap(col, piv);
        let (top, rest) = a.split_at_mut(col + 1);
        let pivot_row = &top[col];
        for (k, row) in rest.iter_mut().enumerate() {
            let f = row[col] / pivot_row[col];
            for (x, p) in row[col..].iter_mut().zip(&pivot_row[col..]) {
                *x -= f * p;
            }
            b[col + 1 + k] -= f * b[col];
        }
    }
    let mut x = vec![0.0; n];
    for row in (0..n).rev() {
        let s: f64 = (row + 1..n).map(|c| a[row][c] * x[c]).sum();
        x[row] = (b[row] - s) / a[row][row];
    }
    x.iter().all(|v| v.is_finite()).then_some(x)
}

impl Predictor for Ar {
    fn name(&self) -> &'static str {
        "ar"
    }
    fn min_history(&self) -> usize {
        3 * self.p + 2
    }
    fn observe(&mut self, y: f64) {
        if let Some(c) = &self.coef
            && self.h.seen >= self.p
        {
            self.r.push(y - self.one_step(c));
        }
        self.h.push(y);
        self.since_fit += 1;
        if self.h.seen >= self.min_history() && (self.coef.is_none() || self.since_fit >= self.refit_every) {
            if let Some(c) = self.fit() {
                self.coef = Some(c);
            }
            self.since_fit = 0;
        }
    }
    fn forecast(&self, horizon: usize) -> Result<Forecast, NotEnoughHistory> {
        let coef = self.coef.as_ref().ok_or(NotEnoughHistory { have: self.h.seen, need: self.min_history() })?;
        let p = self.p;
        let mut past: Vec<f64> = (1..=p).map(|i| self.h.back(i)).collect(); // past[0] = latest
        let mut mean = Vec::with_capacity(horizon);
        for _ in 0..horizon {
            let y = coef[0] + (0..p).map(|i| coef[i + 1] * past[i]).sum::<f64>();
            mean.push(y);
            past.insert(0, y);
            past.truncate(p);
        }
        let mut psi = vec![1.0];
        for j in 1..horizon {
            psi.push((1..=j.min(p)).map(|i| coef[i] * psi[j - i]).sum());
        }
        let s = self.r.sd();
        let mut acc = 0.0;
        let sd = psi.iter().map(|w| {
            acc += w * w;
            s * acc.sqrt()
        });
        Ok(Forecast { mean, sd: sd.collect() })
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
        let c = p.coef.clone().unwrap();
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
