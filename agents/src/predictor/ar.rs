//! AR(p) by ordinary least squares, refitted on a schedule.

use super::{Forecast, History, NotEnoughHistory, Predictor, Residuals};

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
    /// The fitted coefficients `[c, φ_1, …, φ_p]` (intercept first), once a fit has run.
    pub fn coefficients(&self) -> Option<&[f64]> {
        self.coef.as_deref()
    }

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
