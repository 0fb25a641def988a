//! The counterfactual of a controller that decides without acting (shadow mode, in a scenario and in live
//! mode): its capacity is what it ordered one lead time earlier ([`lead_time_steps`]'s `h_lo`, the first step
//! an order can serve), whether that capacity meets the SLO is judged by M/M/c ([`violates_slo`]), and the
//! minutes and costs of both fleets are tallied by one definition ([`Counterfactual`]).
//!
//! What it is not: it does not run a controller or a fleet; the callers replay the decisions.

use serde::Serialize;

use crate::controller::lead_time_steps;
use crate::queueing::Latency;

/// Steps (or live ticks) after which a decision's capacity is READY in the counterfactual: `⌈d / Δ⌉`, at
/// least 1, for the scaling type's mean provisioning delay `d` and the step `Δ`.
pub fn ready_lag_steps(mean_provisioning_delay_s: f64, step_s: f64) -> usize {
    lead_time_steps(mean_provisioning_delay_s, step_s, 0.0).0
}

/// Whether `servers` servers (M/M/c, mean service `1/mu` seconds) at `rate_per_s` miss the SLO: the latency
/// quantile `quantile` above `threshold_s`, or the offered load at or beyond their capacity. No demand never
/// violates.
pub fn violates_slo(rate_per_s: f64, mu: f64, servers: f64, quantile: f64, threshold_s: f64) -> bool {
    rate_per_s > 0.0
        && (rate_per_s >= servers * mu || Latency::mmc(rate_per_s, mu, servers as u32).quantile(quantile) > threshold_s)
}

/// What the fleet that acted and the controller that did not would have spent and violated, summed over the
/// intervals observed.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Counterfactual {
    /// Minutes observed.
    pub minutes: f64,
    /// Minutes the acting fleet violated the SLO.
    pub actual_violation_minutes: f64,
    /// Minutes the controller's capacity would have violated it.
    pub shadow_violation_minutes: f64,
    /// Minutes the acting fleet violated it and the controller's capacity would not have.
    pub prevented_minutes: f64,
    /// Minutes the controller's capacity would have violated it and the acting fleet did not.
    pub caused_minutes: f64,
    /// What the acting fleet cost, USD.
    pub actual_cost_usd: f64,
    /// What the controller's allocation would have cost, USD.
    pub shadow_cost_usd: f64,
}

impl Counterfactual {
    /// Adds one interval of `minutes`: whether the acting fleet violated the SLO in it and whether the
    /// controller's capacity would have, and what each cost over it (USD).
    pub fn add(&mut self, minutes: f64, actual: bool, shadow: bool, actual_cost_usd: f64, shadow_cost_usd: f64) {
        self.minutes += minutes;
        if actual {
            self.actual_violation_minutes += minutes;
        }
        if shadow {
            self.shadow_violation_minutes += minutes;
        }
        match (actual, shadow) {
            (true, false) => self.prevented_minutes += minutes,
            (false, true) => self.caused_minutes += minutes,
            _ => {}
        }
        self.actual_cost_usd += actual_cost_usd;
        self.shadow_cost_usd += shadow_cost_usd;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lag_is_the_lead_times_first_step() {
        assert_eq!(ready_lag_steps(120.0, 60.0), 2);
        assert_eq!(ready_lag_steps(110.0, 60.0), 2);
        assert_eq!(ready_lag_steps(0.0, 60.0), 1);
    }

    #[test]
    fn the_slo_test_is_mmc_with_overload_and_idleness_decided_apart() {
        // 10 servers at 1/s: at 5/s the p99 wait is far below 1 s; at 10/s the queue never empties.
        assert!(!violates_slo(5.0, 1.0, 10.0, 0.99, 10.0));
        assert!(violates_slo(10.0, 1.0, 10.0, 0.99, 1e9));
        assert!(!violates_slo(0.0, 1.0, 0.0, 0.99, 0.1));
        // The threshold decides in between: the p99 latency of M/M/10 at 9/s is above 1 s and below 10 s.
        assert!(violates_slo(9.0, 1.0, 10.0, 0.99, 1.0));
        assert!(!violates_slo(9.0, 1.0, 10.0, 0.99, 10.0));
    }

    #[test]
    fn prevented_and_caused_minutes_are_the_two_disagreements() {
        let mut c = Counterfactual::default();
        c.add(1.0, true, false, 2.0, 1.0);
        c.add(1.0, false, true, 2.0, 1.0);
        c.add(1.0, true, true, 2.0, 1.0);
        c.add(1.0, false, false, 2.0, 1.0);
        assert_eq!((c.minutes, c.actual_violation_minutes, c.shadow_violation_minutes), (4.0, 2.0, 2.0));
        assert_eq!((c.prevented_minutes, c.caused_minutes), (1.0, 1.0));
        assert_eq!((c.actual_cost_usd, c.shadow_cost_usd), (8.0, 4.0));
    }
}
