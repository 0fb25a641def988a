//! M/M/c queueing formulas (Erlang 1917; Kleinrock, *Queueing Systems* vol. 1, §3.5), for the fluid model.
//!
//! With arrival rate λ, service rate μ per server, c servers, offered load `a = λ/μ < c` and
//! `θ = cμ − λ`:
//!
//! * Erlang B by recursion `B_0 = 1, B_k = a B_{k−1} / (k + a B_{k−1})`, computed as `r_k = 1/B_k =
//!   1 + (k/a) r_{k−1}`;
//! * Erlang C `C = P(W > 0) = c B_c / (c − a (1 − B_c))`;
//! * sojourn tail `P(S > t) = (1−C) e^{−μt} + C (θ e^{−μt} − μ e^{−θt}) / (θ − μ)` (θ = μ: `C (1 + μt) e^{−μt}`
//!   in the second term), FIFO.
//!
//! Speed: the recursion starts at `k0 = ⌊a − 10√a⌋` from the asymptote `r ≈ a / (a − k)` instead of at 0 —
//! the start error is multiplied by `Π k/a ≈ e^{−50}` before `k` reaches `a`, and the relative error never
//! grows after — and stops early when `c > a + 12√a + 10`, where `C < 1e-30`. A unit test compares it with
//! the full recursion.

/// Erlang C, `P(W > 0)` for an M/M/c queue with offered load `a = λ/μ` and `c` servers; 1 when `a >= c`.
pub fn erlang_c(a: f64, c: u32) -> f64 {
    let cf = c as f64;
    if a >= cf {
        return 1.0;
    }
    if a <= 0.0 {
        return 0.0;
    }
    if cf > a + 12.0 * a.sqrt() + 10.0 {
        return 0.0;
    }
    let k0 = (a - 10.0 * a.sqrt()).floor().max(0.0) as u32;
    let mut r = if k0 == 0 { 1.0 } else { a / (a - k0 as f64) };
    for k in k0 + 1..=c {
        r = 1.0 + (k as f64 / a) * r;
    }
    let b = 1.0 / r;
    cf * b / (cf - a * (1.0 - b))
}

/// The latency (sojourn) distribution of one fluid step.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Latency {
    /// Stationary M/M/c: wait probability `c_wait`, `θ = cμ − λ`, service rate `mu`.
    Mmc {
        /// Erlang C.
        c_wait: f64,
        /// `cμ − λ`.
        theta: f64,
        /// Service rate per server.
        mu: f64,
    },
    /// A fixed delay (backlog ahead) plus an exponential service: `d + Exp(μ)`.
    Shifted {
        /// Delay, seconds.
        delay_s: f64,
        /// Service rate.
        mu: f64,
    },
}

impl Latency {
    /// The stationary M/M/c sojourn distribution for `lambda`, `mu`, `c` (requires `λ < cμ`).
    pub fn mmc(lambda: f64, mu: f64, c: u32) -> Latency {
        Latency::Mmc { c_wait: erlang_c(lambda / mu, c), theta: c as f64 * mu - lambda, mu }
    }

    /// `P(S > t)`.
    pub fn tail(&self, t: f64) -> f64 {
        match *self {
            Latency::Mmc { c_wait, theta, mu } => {
                let es = (-mu * t).exp();
                if c_wait == 0.0 {
                    return es;
                }
                let second = if (theta - mu).abs() < 1e-9 * mu {
                    (1.0 + mu * t) * es
                } else {
                    (theta * es - mu * (-theta * t).exp()) / (theta - mu)
                };
                (1.0 - c_wait) * es + c_wait * second
            }
            Latency::Shifted { delay_s, mu } => {
                if t <= delay_s {
                    1.0
                } else {
                    (-mu * (t - delay_s)).exp()
                }
            }
        }
    }

    /// `(P(S > t), density at t)`, sharing the exponentials.
    pub fn tail_and_density(&self, t: f64) -> (f64, f64) {
        match *self {
            Latency::Mmc { c_wait, theta, mu } => {
                let es = (-mu * t).exp();
                if c_wait == 0.0 {
                    return (es, mu * es);
                }
                let (second_tail, second_density) = if (theta - mu).abs() < 1e-9 * mu {
                    ((1.0 + mu * t) * es, mu * mu * t * es)
                } else {
                    let et = (-theta * t).exp();
                    ((theta * es - mu * et) / (theta - mu), theta * mu * (es - et) / (theta - mu))
                };
                ((1.0 - c_wait) * es + c_wait * second_tail, (1.0 - c_wait) * mu * es + c_wait * second_density)
            }
            Latency::Shifted { .. } => (self.tail(t), self.density(t)),
        }
    }

    /// The density of `S` at `t` (for Newton steps).
    fn density(&self, t: f64) -> f64 {
        match *self {
            Latency::Mmc { c_wait, theta, mu } => {
                let es = (-mu * t).exp();
                let second = if (theta - mu).abs() < 1e-9 * mu {
                    mu * mu * t * es
                } else {
                    theta * mu * (es - (-theta * t).exp()) / (theta - mu)
                };
                (1.0 - c_wait) * mu * es + c_wait * second
            }
            Latency::Shifted { delay_s, mu } => {
                if t <= delay_s {
                    0.0
                } else {
                    mu * (-mu * (t - delay_s)).exp()
                }
            }
        }
    }

    /// Closed-form bounds `(lo, hi)` on the `q`-quantile: the service quantile below; above, the service and
    /// wait quantiles at `q' = (1 + q) / 2` added (`P(W + B > w' + b') ≤ P(W > w') + P(B > b') = 1 − q`).
    pub fn quantile_bounds(&self, q: f64) -> (f64, f64) {
        let p = 1.0 - q;
        match *self {
            Latency::Shifted { delay_s, mu } => {
                let t = delay_s - p.ln() / mu;
                (t, t)
            }
            Latency::Mmc { c_wait, theta, mu } => {
                let half = 0.5 * p;
                let wait = if c_wait > half { (c_wait / half).ln() / theta } else { 0.0 };
                (-p.ln() / mu, -half.ln() / mu + wait)
            }
        }
    }

    /// The `q`-quantile of `S` (`0 < q < 1`), to about 1e-12 relative.
    pub fn quantile(&self, q: f64) -> f64 {
        let p = 1.0 - q;
        match *self {
            Latency::Shifted { delay_s, mu } => delay_s - p.ln() / mu,
            Latency::Mmc { c_wait: 0.0, mu, .. } => -p.ln() / mu,
            Latency::Mmc { c_wait, theta, mu } => {
                // The service quantile is a lower bound; the sum of the service and wait quantiles is an upper
                // bound in practice (checked and widened if not).
                let (mut lo, mut hi) = (-p.ln() / mu, -p.ln() / mu + (c_wait / p).ln().max(0.0) / theta + 1e-12);
                while self.tail(hi) > p {
                    hi *= 2.0;
                }
                // Newton steps, kept inside a shrinking bracket (bisection when a step leaves it).
                let mut x = lo;
                for _ in 0..100 {
                    let f = self.tail(x) - p;
                    if f > 0.0 {
                        lo = x;
                    } else {
                        hi = x;
                    }
                    let d = self.density(x);
                    let newton = x + f / d;
                    if d > 0.0 && (newton - x).abs() <= 1e-14 * x {
                        return newton;
                    }
                    if hi - lo <= 1e-14 * hi {
                        break;
                    }
                    x = if d > 0.0 && newton > lo && newton < hi { newton } else { 0.5 * (lo + hi) };
                }
                0.5 * (lo + hi)
            }
        }
    }
}

/// The `q`-quantile of a mixture of latency distributions with weights `w` (e.g. requests per step):
/// the `t` with `Σ w_k P_k(S > t) = (1 − q) Σ w_k`. Newton's method on the mixture tail (its derivative is
/// minus the mixture density), kept inside a bracket made of the components' closed-form quantile bounds
/// ([`Latency::quantile_bounds`]; the mixture's quantile lies between the components' smallest and largest
/// quantiles), with bisection when a step leaves it; to 1e-12 relative. Typically 5–10 passes over the
/// components.
///
/// `known`, if given, holds each part's own `q`-quantile (already computed by the caller): the bracket is
/// then their range and the start their weighted mean, which saves most passes.
pub fn mixture_quantile(parts: &[(f64, Latency)], q: f64, known: Option<&[f64]>) -> f64 {
    let (mut lo, mut hi, mut start, mut total) = (f64::INFINITY, 0.0f64, 0.0, 0.0);
    let mut live = Vec::with_capacity(parts.len());
    for (k, &(w, l)) in parts.iter().enumerate() {
        if w <= 0.0 {
            continue;
        }
        let (a, b) = match known {
            Some(qs) if qs[k].is_finite() => (qs[k], qs[k]),
            _ => l.quantile_bounds(q),
        };
        lo = lo.min(a);
        hi = hi.max(b);
        start += w * 0.5 * (a + b);
        total += w;
        live.push((w, l));
    }
    if total <= 0.0 {
        return f64::NAN;
    }
    let parts = live;
    let target = (1.0 - q) * total;
    let mut x = start / total;
    for _ in 0..100 {
        let (mut tail, mut density) = (0.0, 0.0);
        for (w, l) in &parts {
            let (t, d) = l.tail_and_density(x);
            tail += w * t;
            density += w * d;
        }
        let g = tail - target;
        if g > 0.0 {
            lo = x;
        } else {
            hi = x;
        }
        let newton = x + g / density;
        let next = if density > 0.0 && newton > lo && newton < hi { newton } else { 0.5 * (lo + hi) };
        if (next - x).abs() <= 1e-12 * x || hi - lo <= 1e-12 * hi {
            return next;
        }
        x = next;
    }
    x
}

#[cfg(test)]
mod tests {
    use super::*;

    fn erlang_c_full(a: f64, c: u32) -> f64 {
        let mut b = 1.0;
        for k in 1..=c {
            b = a * b / (k as f64 + a * b);
        }
        c as f64 * b / (c as f64 - a * (1.0 - b))
    }

    #[test]
    fn fast_erlang_c_equals_the_full_recursion() {
        for &(a, c) in
            &[(8.0, 10), (95.0, 100), (90.0, 100), (0.5, 1), (3.7, 4), (450.0, 500), (2000.0, 2100), (60.0, 200)]
        {
            let (fast, full) = (erlang_c(a, c), erlang_c_full(a, c));
            assert!((fast - full).abs() <= 1e-12 * full.max(1e-300) || full < 1e-30, "a={a} c={c}: {fast} vs {full}");
        }
        // REFERENCE_MODEL §3.4.
        assert!((erlang_c(8.0, 10) - 0.409180).abs() < 1e-6);
        assert!((erlang_c(90.0, 100) - 0.216940).abs() < 1e-6);
    }

    #[test]
    fn quantiles_match_the_reference_table() {
        // REFERENCE_MODEL §3.4, sets A, B, C: S p50, p95, p99.
        for (lambda, mu, c, want) in [
            (8.0, 1.0, 10, [0.912145, 3.32827, 4.94611]),
            (95.0, 1.0, 100, [0.807916, 3.11495, 4.72439]),
            (900.0, 10.0, 100, [0.0716929, 0.301955, 0.462899]),
        ] {
            let l = Latency::mmc(lambda, mu, c);
            for (q, w) in [0.5, 0.95, 0.99].into_iter().zip(want) {
                let got = l.quantile(q);
                assert!(((got - w) / w).abs() < 5e-6, "λ={lambda} q={q}: {got} vs {w}");
                assert!((l.tail(got) - (1.0 - q)).abs() < 1e-9);
            }
        }
    }

    #[test]
    fn quantile_bounds_hold() {
        for l in [
            Latency::mmc(8.0, 1.0, 10),
            Latency::mmc(95.0, 1.0, 100),
            Latency::mmc(1.0, 1.0, 10),
            Latency::Shifted { delay_s: 3.0, mu: 2.0 },
        ] {
            for q in [0.5, 0.9, 0.99, 0.999] {
                let (lo, hi) = l.quantile_bounds(q);
                let t = l.quantile(q);
                assert!(lo <= t * (1.0 + 1e-12) && t <= hi * (1.0 + 1e-12), "{l:?} q={q}: {lo} <= {t} <= {hi}");
            }
        }
    }

    #[test]
    fn mixture_quantile_of_identical_parts_is_the_part_quantile() {
        let l = Latency::mmc(8.0, 1.0, 10);
        let m = mixture_quantile(&[(3.0, l), (5.0, l)], 0.99, None);
        let q = l.quantile(0.99);
        assert!((mixture_quantile(&[(3.0, l), (5.0, l)], 0.99, Some(&[q, q])) - q).abs() < 1e-8);
        assert!((m - l.quantile(0.99)).abs() < 1e-8);
        let s = Latency::Shifted { delay_s: 2.0, mu: 1.0 };
        assert!((s.quantile(0.5) - (2.0 + 2f64.ln())).abs() < 1e-12);
        // Half the weight on each: P(S > t) averaged.
        let m = mixture_quantile(&[(1.0, l), (1.0, s)], 0.9, None);
        let hinted = mixture_quantile(&[(1.0, l), (1.0, s)], 0.9, Some(&[l.quantile(0.9), s.quantile(0.9)]));
        assert!((m - hinted).abs() < 1e-9 * m);
        assert!(((0.5 * (l.tail(m) + s.tail(m))) - 0.1).abs() < 1e-8);
    }
}
