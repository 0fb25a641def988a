//! Demand: what the workload asks of the cluster, step by step, and the request arrivals it implies.
//!
//! Every workload — synthetic or a replayed trace — becomes a [`DemandSeries`]: a request rate per simulation
//! step (piecewise constant), plus explicit per-resource demands where a trace provides them. Both
//! fidelities consume the same series: the fluid model directly, the request-level model through
//! [`PiecewiseArrivals`] (a Poisson process whose rate is constant within each step — exact, by the memoryless
//! property, with no thinning). A series is a function of the workload config and the run seed only.
//!
//! Synthetic rates (requests per second) are `base · Π component multipliers`, each component documented with
//! its formula in [`Component`]. Deterministic components are evaluated at the step's midpoint; random ones
//! (noise, Markov-modulated bursts) draw from their own named streams.

use serde::{Deserialize, Serialize};

use crate::rng::{Draws, RandDraws, RunSeed, StreamRng};
use crate::validate::{Interval, Problems};
use crate::workload::ArrivalProcess;

/// One multiplicative component of a synthetic rate curve.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum Component {
    /// Daily seasonality: `1 + amplitude · cos(2π (t/86400 − peak_hour/24))`.
    Daily {
        /// Relative amplitude in [0, 1).
        amplitude: f64,
        /// Hour of the day (0–24) at which the rate peaks.
        peak_hour: f64,
    },
    /// Weekly seasonality: `1 + amplitude · cos(2π (t/604800 − peak_day/7))`; day 0 starts at t = 0.
    Weekly {
        /// Relative amplitude in [0, 1).
        amplitude: f64,
        /// Day of the week (0–7) at which the rate peaks.
        peak_day: f64,
    },
    /// Linear trend: `max(0, 1 + growth_per_day · t / 86400)`.
    Trend {
        /// Relative growth per day (0.01 = +1 % of the initial rate per day).
        growth_per_day: f64,
    },
    /// A flash crowd: 1 before `start_s`; rises linearly to `peak_multiplier` over `ramp_s`; holds for
    /// `hold_s`; then decays back as `1 + (peak − 1) · exp(−(t − t_decay) / decay_s)`.
    FlashCrowd {
        /// Start of the ramp, seconds.
        start_s: f64,
        /// Duration of the ramp, seconds (0 = a jump).
        ramp_s: f64,
        /// Time at the peak, seconds.
        hold_s: f64,
        /// Time constant of the decay, seconds.
        decay_s: f64,
        /// Rate at the peak relative to the normal rate (> 0).
        peak_multiplier: f64,
    },
    /// A step change: `multiplier` from `at_s` on, 1 before.
    Step {
        /// Instant of the change, seconds.
        at_s: f64,
        /// Rate after the change relative to before (>= 0).
        multiplier: f64,
    },
    /// Multiplicative noise `exp(x_k − sd²/2)` with `x` an AR(1) process of stationary standard deviation
    /// `sd` and correlation time `correlation_s` (`x_k = φ x_{k−1} + sd √(1−φ²) z_k`, `φ = exp(−Δ/τ)`), mean
    /// 1. Stream `"noise"`.
    Noise {
        /// Standard deviation of the log-multiplier.
        sd: f64,
        /// Correlation time, seconds (0 = independent per step).
        correlation_s: f64,
    },
    /// Markov-modulated bursts (MMPP): a continuous-time Markov chain over `states`, each held for an
    /// exponential time with its mean, then leaving to another state chosen uniformly; the multiplier is the
    /// current state's, averaged over each step. Starts in state 0. Stream `"bursts"`.
    MarkovBursts {
        /// The chain's states.
        states: Vec<BurstState>,
    },
}

/// One state of [`Component::MarkovBursts`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BurstState {
    /// Rate multiplier in this state (>= 0).
    pub multiplier: f64,
    /// Mean holding time, seconds (> 0).
    pub mean_duration_s: f64,
}

impl Component {
    /// Checks the parameters into `p` (fields named below the component).
    pub fn check(&self, p: &mut Problems) {
        match self {
            Component::Daily { amplitude, peak_hour } => {
                p.within("amplitude", *amplitude, Interval::closed_open(0.0, 1.0));
                p.within("peak_hour", *peak_hour, Interval::closed(0.0, 24.0));
            }
            Component::Weekly { amplitude, peak_day } => {
                p.within("amplitude", *amplitude, Interval::closed_open(0.0, 1.0));
                p.within("peak_day", *peak_day, Interval::closed(0.0, 7.0));
            }
            Component::Trend { growth_per_day } => {
                p.require("growth_per_day", growth_per_day.is_finite() && *growth_per_day > -1.0, || {
                    format!("must be a finite number > -1, got {growth_per_day}")
                });
            }
            Component::FlashCrowd { start_s, ramp_s, hold_s, decay_s, peak_multiplier } => {
                p.non_negative("start_s", *start_s);
                p.non_negative("ramp_s", *ramp_s);
                p.non_negative("hold_s", *hold_s);
                p.positive("decay_s", *decay_s);
                p.positive("peak_multiplier", *peak_multiplier);
            }
            Component::Step { at_s, multiplier } => {
                p.non_negative("at_s", *at_s);
                p.non_negative("multiplier", *multiplier);
            }
            Component::Noise { sd, correlation_s } => {
                p.within("sd", *sd, Interval::closed(0.0, 3.0));
                p.non_negative("correlation_s", *correlation_s);
            }
            Component::MarkovBursts { states } => {
                p.require("states", states.len() >= 2, || format!("must list at least 2 states, got {}", states.len()));
                for (i, st) in states.iter().enumerate() {
                    p.under(&format!("states[{i}]"), |p| {
                        p.non_negative("multiplier", st.multiplier);
                        p.positive("mean_duration_s", st.mean_duration_s);
                    });
                }
            }
        }
    }

    /// Deterministic multiplier at `t_s` (1 for the random components, which [`synthetic_rates`] applies).
    pub fn multiplier_at(&self, t_s: f64) -> f64 {
        use std::f64::consts::TAU;
        match *self {
            Component::Daily { amplitude, peak_hour } => {
                1.0 + amplitude * (TAU * (t_s / 86400.0 - peak_hour / 24.0)).cos()
            }
            Component::Weekly { amplitude, peak_day } => {
                1.0 + amplitude * (TAU * (t_s / 604800.0 - peak_day / 7.0)).cos()
            }
            Component::Trend { growth_per_day } => (1.0 + growth_per_day * t_s / 86400.0).max(0.0),
            Component::FlashCrowd { start_s, ramp_s, hold_s, decay_s, peak_multiplier } => {
                let (up, top) = (start_s + ramp_s, start_s + ramp_s + hold_s);
                if t_s < start_s {
                    1.0
                } else if t_s < up {
                    1.0 + (peak_multiplier - 1.0) * (t_s - start_s) / ramp_s
                } else if t_s < top {
                    peak_multiplier
                } else {
                    1.0 + (peak_multiplier - 1.0) * (-(t_s - top) / decay_s).exp()
                }
            }
            Component::Step { at_s, multiplier } => {
                if t_s >= at_s {
                    multiplier
                } else {
                    1.0
                }
            }
            Component::Noise { .. } | Component::MarkovBursts { .. } => 1.0,
        }
    }
}

/// The rate per step of a synthetic workload: `base · Π multipliers`, `steps` steps of `step_s`.
pub fn synthetic_rates(
    base_rate_per_s: f64,
    components: &[Component],
    step_s: f64,
    steps: usize,
    seed: RunSeed,
) -> Vec<f64> {
    let mut rates: Vec<f64> = (0..steps)
        .map(|k| {
            let mid = (k as f64 + 0.5) * step_s;
            components.iter().fold(base_rate_per_s, |r, c| r * c.multiplier_at(mid))
        })
        .collect();
    for c in components {
        match c {
            Component::Noise { sd, correlation_s } => {
                let mut draws = seed.draws("noise");
                let phi = if *correlation_s > 0.0 { (-step_s / correlation_s).exp() } else { 0.0 };
                let innovation = sd * (1.0 - phi * phi).sqrt();
                let mut x: f64 = sd * draws.sample::<f64, _>(&rand_distr::StandardNormal);
                for r in rates.iter_mut() {
                    *r *= (x - 0.5 * sd * sd).exp();
                    x = phi * x + innovation * draws.sample::<f64, _>(&rand_distr::StandardNormal);
                }
            }
            Component::MarkovBursts { states } => {
                let mut draws = seed.draws("bursts");
                let mut state = 0usize;
                let mut t = 0.0;
                let mut next_switch = draws.exp(1.0 / states[0].mean_duration_s);
                for (k, r) in rates.iter_mut().enumerate() {
                    let end = (k + 1) as f64 * step_s;
                    // Time-average of the state's multiplier over the step.
                    let mut integral = 0.0;
                    while next_switch < end {
                        integral += states[state].multiplier * (next_switch - t);
                        t = next_switch;
                        let other = (draws.uniform() * (states.len() - 1) as f64) as usize;
                        state = if other >= state { (other + 1).min(states.len() - 1) } else { other };
                        next_switch = t + draws.exp(1.0 / states[state].mean_duration_s);
                    }
                    integral += states[state].multiplier * (end - t);
                    t = end;
                    *r *= integral / step_s;
                }
            }
            _ => {}
        }
    }
    rates
}

/// Demand per simulation step. `rate_per_s[k]` holds over `[k·step_s, (k+1)·step_s)`.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct DemandSeries {
    /// Step length, seconds.
    pub step_s: f64,
    /// Request rate per step, requests per second.
    pub rate_per_s: Vec<f64>,
    /// Explicit memory demand per step, GiB (from a trace), if any.
    pub memory_gib: Option<Vec<f64>>,
    /// Explicit network demand per step, Gbit/s (from a trace), if any.
    pub network_gbps: Option<Vec<f64>>,
    /// Explicit storage demand per step, GiB (from a trace), if any.
    pub storage_gib: Option<Vec<f64>>,
    /// Wall-clock instant of step 0, seconds since 1970-01-01T00:00:00 (the trace's first timestamp plus its
    /// start offset; 0 for synthetic workloads, whose day starts at midnight). Time-of-day and day-of-week
    /// features of learned agents are taken from it.
    pub start_unix_s: f64,
}

impl DemandSeries {
    /// Number of steps.
    pub fn steps(&self) -> usize {
        self.rate_per_s.len()
    }

    /// Expected number of requests over the whole series.
    pub fn expected_requests(&self) -> f64 {
        self.rate_per_s.iter().sum::<f64>() * self.step_s
    }
}

/// A Poisson process with a piecewise-constant rate (`rates[k]` over `[k·step, (k+1)·step)`), generated step
/// by step: exponential gaps at the step's rate; a gap that would cross the step's end is discarded and the
/// process restarts at the next step's start (exact by memorylessness). Steps with rate 0 have no arrivals.
#[derive(Clone, Debug)]
pub struct PiecewiseArrivals<D> {
    draws: D,
    rates: Vec<f64>,
    step_s: f64,
    k: usize,
    t_s: f64,
}

impl<D: Draws> PiecewiseArrivals<D> {
    /// Arrivals following `rates` (per second, one per step of `step_s`).
    pub fn new(draws: D, rates: Vec<f64>, step_s: f64) -> Self {
        PiecewiseArrivals { draws, rates, step_s, k: 0, t_s: 0.0 }
    }
}

impl<D: Draws> ArrivalProcess for PiecewiseArrivals<D> {
    fn next_arrival_s(&mut self) -> Option<f64> {
        while self.k < self.rates.len() {
            let end = (self.k + 1) as f64 * self.step_s;
            let rate = self.rates[self.k];
            if rate > 0.0 {
                let t = self.t_s + self.draws.exp(rate);
                if t < end {
                    self.t_s = t;
                    return Some(t);
                }
            }
            self.k += 1;
            self.t_s = end;
        }
        None
    }
}

/// Draws for request arrivals of a run.
pub fn arrival_draws(seed: RunSeed) -> RandDraws<StreamRng> {
    seed.draws("arrivals")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flash_crowd_shape() {
        let f =
            Component::FlashCrowd { start_s: 100.0, ramp_s: 100.0, hold_s: 50.0, decay_s: 10.0, peak_multiplier: 5.0 };
        assert_eq!(f.multiplier_at(50.0), 1.0);
        assert_eq!(f.multiplier_at(150.0), 3.0);
        assert_eq!(f.multiplier_at(220.0), 5.0);
        assert!((f.multiplier_at(260.0) - (1.0 + 4.0 * (-1.0f64).exp())).abs() < 1e-12);
    }

    #[test]
    fn seasonality_peaks_where_asked() {
        let d = Component::Daily { amplitude: 0.5, peak_hour: 14.0 };
        assert!((d.multiplier_at(14.0 * 3600.0) - 1.5).abs() < 1e-12);
        assert!((d.multiplier_at(2.0 * 3600.0) - 0.5).abs() < 1e-12);
    }

    #[test]
    fn noise_has_mean_one_and_bursts_follow_their_states() {
        let r = synthetic_rates(100.0, &[Component::Noise { sd: 0.3, correlation_s: 0.0 }], 60.0, 100_000, RunSeed(1));
        let mean = r.iter().sum::<f64>() / r.len() as f64;
        assert!((mean - 100.0).abs() < 0.5, "mean {mean}");
        let states = vec![
            BurstState { multiplier: 1.0, mean_duration_s: 3000.0 },
            BurstState { multiplier: 4.0, mean_duration_s: 1000.0 },
        ];
        let r = synthetic_rates(10.0, &[Component::MarkovBursts { states }], 60.0, 200_000, RunSeed(2));
        // Stationary: time fractions 3/4 and 1/4, mean multiplier 1.75.
        let mean = r.iter().sum::<f64>() / r.len() as f64;
        assert!((mean - 17.5).abs() < 0.3, "mean {mean}");
        assert!(r.iter().all(|&x| (10.0 - 1e-9..=40.0 + 1e-9).contains(&x)));
    }

    #[test]
    fn piecewise_poisson_counts_match_rates() {
        let rates = vec![0.0, 50.0, 5.0, 0.0, 200.0];
        let mut p = PiecewiseArrivals::new(RunSeed(9).draws("arrivals"), rates.clone(), 100.0);
        let mut counts = [0f64; 5];
        let mut last = 0.0;
        while let Some(t) = p.next_arrival_s() {
            assert!(t >= last);
            last = t;
            counts[(t / 100.0) as usize] += 1.0;
        }
        for (c, r) in counts.iter().zip(&rates) {
            let e = r * 100.0;
            assert!((c - e).abs() <= 5.0 * e.sqrt() + 1e-9, "{counts:?}");
        }
    }
}
