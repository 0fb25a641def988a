//! The feedback loop of the seed (§4): what really happened judges what was forecast, and the safety margin
//! learns from it.
//!
//! At each control tick a forecasting controller first settles the one-step forecast it made at the previous
//! tick: the actual value `y` of the interval that just ended is compared with forecast `f` and margin `m`;
//! the variance controller learns the error (and the interval's SLO misses), and the realised coverage — the
//! share of judged steps with `y <= f + m` — is counted. Then, after forecasting anew, the controller leaves the
//! new one-step forecast and margin here to be judged at the next tick. The predictive controller runs one
//! loop for the request rate and one for an explicit memory demand ([`crate::predictive`]).

use crate::variance::VarianceController;

/// One signal's feedback loop: the forecast awaiting judgement and the coverage so far.
#[derive(Clone, Debug, Default)]
pub struct Feedback {
    pending: Option<(f64, f64)>,
    judged: u64,
    covered: u64,
}

impl Feedback {
    /// A loop with nothing pending.
    pub fn new() -> Self {
        Self::default()
    }

    /// Judges the forecast pending for the interval that ended with the actual value `y` (and the share
    /// `slow_fraction` of its completions that missed the SLO): `variance` learns from it and coverage is
    /// counted. Returns the forecast judged, if one was pending.
    pub fn judge(&mut self, y: f64, slow_fraction: f64, variance: &mut dyn VarianceController) -> Option<f64> {
        let (f, m) = self.pending.take()?;
        variance.update(f, m, y, slow_fraction);
        self.judged += 1;
        if y <= f + m {
            self.covered += 1;
        }
        Some(f)
    }

    /// Leaves the one-step forecast and margin made now, to be judged at the next tick.
    pub fn expect(&mut self, forecast: f64, margin: f64) {
        self.pending = Some((forecast, margin));
    }

    /// Realised coverage: the share of judged steps whose value stayed within forecast + margin (NaN before
    /// any was judged).
    pub fn coverage(&self) -> f64 {
        if self.judged > 0 { self.covered as f64 / self.judged as f64 } else { f64::NAN }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::variance::FixedMargin;

    #[test]
    fn judges_what_was_expected_once_and_counts_coverage() {
        let mut v = FixedMargin { absolute: 1.0, percent: 0.0 };
        let mut fb = Feedback::new();
        assert_eq!(fb.judge(5.0, 0.0, &mut v), None, "nothing pending at the first tick");
        assert!(fb.coverage().is_nan());
        fb.expect(10.0, 1.0);
        assert_eq!(fb.judge(10.5, 0.0, &mut v), Some(10.0));
        assert_eq!(fb.judge(10.5, 0.0, &mut v), None, "judged once");
        fb.expect(10.0, 1.0);
        fb.judge(12.0, 0.0, &mut v);
        assert_eq!(fb.coverage(), 0.5);
    }
}
