//! Virtual time.
//!
//! [`SimTime`] is an instant of simulated time in seconds since the start of a run, stored as an IEEE-754
//! double so that every statistic is computed from exact times (REFERENCE_MODEL §1: "Time is in seconds,
//! stored as IEEE-754 double"). It is never negative, never NaN and never infinite: the constructor refuses
//! such values, which lets the event queue order instants by their bit patterns.
//!
//! Durations stay plain `f64` seconds with an `_s` suffix in their names (`provisioning_delay_s`); adding one
//! to a `SimTime` gives a `SimTime` and re-checks the invariant.

use std::fmt;
use std::ops::Add;

/// An instant of virtual time, in seconds since the start of the run.
///
/// Invariant: finite and `>= 0.0`, and never `-0.0` (normalised to `+0.0`), so that for two instants
/// `a < b` exactly when `a.to_bits() < b.to_bits()`.
#[derive(Clone, Copy, PartialEq, Default)]
pub struct SimTime(f64);

impl SimTime {
    /// The start of every run.
    pub const ZERO: SimTime = SimTime(0.0);

    /// An instant `secs` seconds after the start of the run.
    ///
    /// # Panics
    /// If `secs` is negative, NaN or infinite: such an instant is a bug in the model that computed it.
    #[inline]
    #[track_caller]
    pub fn from_secs(secs: f64) -> SimTime {
        match SimTime::try_from_secs(secs) {
            Some(t) => t,
            None => panic!("SimTime must be finite and >= 0 s, got {secs}"),
        }
    }

    /// Like [`SimTime::from_secs`], but `None` instead of a panic for a negative, NaN or infinite value.
    #[inline]
    pub fn try_from_secs(secs: f64) -> Option<SimTime> {
        // `x >= 0.0` is false for NaN; adding +0.0 turns -0.0 into +0.0.
        (secs >= 0.0 && secs.is_finite()).then_some(SimTime(secs + 0.0))
    }

    /// Seconds since the start of the run.
    #[inline]
    pub fn as_secs(self) -> f64 {
        self.0
    }

    /// A key that orders instants like `<` does on the times (valid because of the type's invariant).
    #[inline]
    pub(crate) fn order_key(self) -> u64 {
        self.0.to_bits()
    }

    /// Inverse of [`SimTime::order_key`]; only for keys made by it.
    #[inline]
    pub(crate) fn from_order_key(key: u64) -> SimTime {
        SimTime(f64::from_bits(key))
    }
}

impl Eq for SimTime {}

impl PartialOrd for SimTime {
    #[inline]
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for SimTime {
    #[inline]
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.order_key().cmp(&other.order_key())
    }
}

impl Add<f64> for SimTime {
    type Output = SimTime;
    /// `t + d_s`: the instant `d_s` seconds after `t`.
    #[inline]
    #[track_caller]
    fn add(self, d_s: f64) -> SimTime {
        SimTime::from_secs(self.0 + d_s)
    }
}

impl fmt::Debug for SimTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}s", self.0)
    }
}

impl fmt::Display for SimTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} s", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_invalid_instants() {
        assert!(SimTime::try_from_secs(-1e-300).is_none());
        assert!(SimTime::try_from_secs(f64::NAN).is_none());
        assert!(SimTime::try_from_secs(f64::INFINITY).is_none());
        assert_eq!(SimTime::try_from_secs(-0.0).unwrap().order_key(), 0);
    }

    #[test]
    fn bit_order_matches_numeric_order() {
        let xs = [0.0, 5e-324, 1e-300, 0.1, 0.5, 1.0, 1.0 + f64::EPSILON, 7200.0, 1e300];
        for w in xs.windows(2) {
            let (a, b) = (SimTime::from_secs(w[0]), SimTime::from_secs(w[1]));
            assert!(a < b && a.order_key() < b.order_key());
        }
    }
}
