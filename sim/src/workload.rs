//! Request arrival processes and service-time samplers for the request-level service model.
//!
//! An [`ArrivalProcess`] yields absolute arrival instants in increasing order until it is exhausted; a
//! [`ServiceTimes`] sampler yields one service time per request, drawn when the request starts service.
//! Both are generic over [`Draws`], so the same process runs on `rand` streams or on the reference
//! SplitMix64 streams, and both make exactly the draws REFERENCE_MODEL §3.1 and §4.1 prescribe — no more
//! (a draw the model text does not mention must not be made).

use crate::rng::Draws;

/// A source of request arrival instants (seconds since the start of the run, non-decreasing).
pub trait ArrivalProcess {
    /// The next arrival instant, or `None` when the process generates no more arrivals.
    fn next_arrival_s(&mut self) -> Option<f64>;
}

/// A source of service times (seconds).
pub trait ServiceTimes {
    /// The service time of the request that starts service now.
    fn sample_s(&mut self) -> f64;
}

/// A homogeneous Poisson process: `a(n+1) = a(n) + exp(rate)`, generated while `a < stop_before_s`; the
/// first candidate at or after `stop_before_s` is discarded and ends the process (REFERENCE_MODEL §3.1).
#[derive(Clone, Debug)]
pub struct PoissonArrivals<D> {
    draws: D,
    rate_per_s: f64,
    last_s: f64,
    stop_before_s: f64,
    done: bool,
}

impl<D: Draws> PoissonArrivals<D> {
    /// Arrivals at `rate_per_s` from time zero until `stop_before_s` (may be `f64::INFINITY`).
    pub fn new(draws: D, rate_per_s: f64, stop_before_s: f64) -> Self {
        PoissonArrivals { draws, rate_per_s, last_s: 0.0, stop_before_s, done: false }
    }
}

impl<D: Draws> ArrivalProcess for PoissonArrivals<D> {
    #[inline]
    fn next_arrival_s(&mut self) -> Option<f64> {
        if self.done {
            return None;
        }
        self.last_s += self.draws.exp(self.rate_per_s);
        if self.last_s < self.stop_before_s {
            Some(self.last_s)
        } else {
            self.done = true;
            None
        }
    }
}

/// A time-varying arrival rate, requests per second.
pub trait RateCurve {
    /// `λ(t)` at `t_s` seconds.
    fn rate_per_s(&self, t_s: f64) -> f64;
}

/// `λ(t) = base · (1 + amplitude · sin(2π t / period))`, evaluated left to right as REFERENCE_MODEL §4.1
/// writes it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SineRate {
    /// Mean rate, requests per second.
    pub base_per_s: f64,
    /// Relative amplitude (0.5: the rate swings between 0.5 and 1.5 times the base).
    pub amplitude: f64,
    /// Period of the swing, seconds.
    pub period_s: f64,
}

impl RateCurve for SineRate {
    #[inline]
    fn rate_per_s(&self, t_s: f64) -> f64 {
        self.base_per_s * (1.0 + self.amplitude * (2.0 * std::f64::consts::PI * t_s / self.period_s).sin())
    }
}

/// A non-homogeneous Poisson process by thinning (Lewis & Shedler 1979): candidates at rate `λmax`
/// (`t = t + exp(λmax)`; stop once `t ≥ stop_before_s`), each accepted iff `u · λmax < λ(t)` with a fresh
/// uniform `u`. Exact as long as `λ(t) ≤ λmax` everywhere (the caller's promise).
#[derive(Clone, Debug)]
pub struct ThinnedArrivals<D, C> {
    draws: D,
    curve: C,
    rate_max_per_s: f64,
    candidate_s: f64,
    stop_before_s: f64,
}

impl<D: Draws, C: RateCurve> ThinnedArrivals<D, C> {
    /// Arrivals following `curve`, bounded by `rate_max_per_s`, from zero until `stop_before_s`.
    pub fn new(draws: D, curve: C, rate_max_per_s: f64, stop_before_s: f64) -> Self {
        ThinnedArrivals { draws, curve, rate_max_per_s, candidate_s: 0.0, stop_before_s }
    }
}

impl<D: Draws, C: RateCurve> ArrivalProcess for ThinnedArrivals<D, C> {
    #[inline]
    fn next_arrival_s(&mut self) -> Option<f64> {
        loop {
            if self.candidate_s >= self.stop_before_s {
                return None;
            }
            self.candidate_s += self.draws.exp(self.rate_max_per_s);
            if self.candidate_s >= self.stop_before_s {
                return None;
            }
            if self.draws.uniform() * self.rate_max_per_s < self.curve.rate_per_s(self.candidate_s) {
                return Some(self.candidate_s);
            }
        }
    }
}

/// Exponential service times with rate `rate_per_s` (mean `1 / rate_per_s`).
#[derive(Clone, Debug)]
pub struct ExpServiceTimes<D> {
    draws: D,
    rate_per_s: f64,
}

impl<D: Draws> ExpServiceTimes<D> {
    /// Service at `rate_per_s` completions per second per busy server.
    pub fn new(draws: D, rate_per_s: f64) -> Self {
        ExpServiceTimes { draws, rate_per_s }
    }
}

impl<D: Draws> ServiceTimes for ExpServiceTimes<D> {
    #[inline]
    fn sample_s(&mut self) -> f64 {
        self.draws.exp(self.rate_per_s)
    }
}

/// A process from a fixed list of arrival instants (for tests and replay of recorded requests).
#[derive(Clone, Debug)]
pub struct ListedArrivals {
    times_s: std::vec::IntoIter<f64>,
}

impl ListedArrivals {
    /// Arrivals at the given instants, which must be finite, non-negative and non-decreasing.
    pub fn new(times_s: Vec<f64>) -> Result<Self, String> {
        if let Some(i) = times_s.iter().position(|t| !(t.is_finite() && *t >= 0.0)) {
            return Err(format!("arrival {i} at {} s is not a finite instant >= 0", times_s[i]));
        }
        if let Some(i) = times_s.windows(2).position(|w| w[1] < w[0]) {
            return Err(format!("arrival {} at {} s is before arrival {i}", i + 1, times_s[i + 1]));
        }
        Ok(ListedArrivals { times_s: times_s.into_iter() })
    }
}

impl ArrivalProcess for ListedArrivals {
    fn next_arrival_s(&mut self) -> Option<f64> {
        self.times_s.next()
    }
}

/// Fixed service times from a list, cycling (for tests).
#[derive(Clone, Debug)]
pub struct CyclicServiceTimes {
    times_s: Vec<f64>,
    next: usize,
}

impl CyclicServiceTimes {
    /// Service times taken in order from `times_s`, starting again at the end. `times_s` must not be empty.
    pub fn new(times_s: Vec<f64>) -> Self {
        assert!(!times_s.is_empty(), "CyclicServiceTimes needs at least one time");
        CyclicServiceTimes { times_s, next: 0 }
    }
}

impl ServiceTimes for CyclicServiceTimes {
    fn sample_s(&mut self) -> f64 {
        let t = self.times_s[self.next];
        self.next = (self.next + 1) % self.times_s.len();
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::{RunSeed, SplitMix64};

    #[test]
    fn poisson_stops_at_first_candidate_past_the_end() {
        let mut p = PoissonArrivals::new(SplitMix64::reference(1, 0), 8.0, 1.0);
        let got: Vec<f64> = std::iter::from_fn(|| p.next_arrival_s()).collect();
        assert!(got.windows(2).all(|w| w[0] < w[1]) && got.iter().all(|&t| t < 1.0));
        assert_eq!(p.next_arrival_s(), None);
        // First arrival = first exp(8) draw of stream 0 of seed 1.
        assert_eq!(got.first().copied(), Some(SplitMix64::reference(1, 0).exp(8.0)).filter(|&t| t < 1.0));
    }

    #[test]
    fn thinning_follows_the_rate_curve() {
        let curve = SineRate { base_per_s: 100.0, amplitude: 0.5, period_s: 100.0 };
        let mut p = ThinnedArrivals::new(RunSeed(3).draws("arrivals"), curve, 150.0, 10_000.0);
        let mut bins = [0u64; 4];
        while let Some(t) = p.next_arrival_s() {
            bins[((t % 100.0) / 25.0) as usize] += 1;
        }
        // Expected per quarter-period over 100 periods: 100 · 25 · (1 ± 0.5 · 2/π) per period.
        let hi = 100.0 * 2500.0 * (1.0 + 1.0 / std::f64::consts::PI);
        let lo = 100.0 * 2500.0 * (1.0 - 1.0 / std::f64::consts::PI);
        let expected = [hi, hi, lo, lo];
        for (n, e) in bins.iter().zip(expected) {
            assert!((*n as f64 - e).abs() < 5.0 * e.sqrt(), "bins {bins:?} vs {expected:?}");
        }
    }

    #[test]
    fn listed_arrivals_are_checked() {
        assert!(ListedArrivals::new(vec![0.0, 1.0, 0.5]).is_err());
        assert!(ListedArrivals::new(vec![f64::NAN]).is_err());
        let mut l = ListedArrivals::new(vec![0.0, 0.0, 2.0]).unwrap();
        assert_eq!((l.next_arrival_s(), l.next_arrival_s(), l.next_arrival_s()), (Some(0.0), Some(0.0), Some(2.0)));
    }
}
