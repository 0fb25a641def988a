//! Additive Holt-Winters (ETS(A,A,A)), optionally fitted on a grid once four seasons are seen.

use super::{Forecast, History, NotEnoughHistory, Predictor, Residuals};

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
