//! Statistics of results shared by the sweep report and the figures: means with Student-t confidence intervals.

use statrs::distribution::{ContinuousCDF, StudentsT};

/// Mean and half-width of the 95 % Student-t interval (NaN half-width below two values).
pub fn mean_ci95(xs: &[f64]) -> (f64, f64) {
    let n = xs.len();
    if n == 0 {
        return (f64::NAN, f64::NAN);
    }
    let m = xs.iter().sum::<f64>() / n as f64;
    if n < 2 {
        return (m, f64::NAN);
    }
    let var = xs.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1) as f64;
    let t = StudentsT::new(0.0, 1.0, (n - 1) as f64).map(|d| d.inverse_cdf(0.975)).unwrap_or(f64::NAN);
    (m, t * (var / n as f64).sqrt())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_interval_is_student_t() {
        // n = 3, mean 2, sample sd 1: half-width t(0.975, 2) / sqrt(3) = 4.302653 / 1.732051.
        let (m, hw) = mean_ci95(&[1.0, 2.0, 3.0]);
        assert_eq!(m, 2.0);
        assert!((hw - 4.302_652_729_7 / 3f64.sqrt()).abs() < 1e-6, "{hw}");
        assert!(mean_ci95(&[5.0]).1.is_nan() && mean_ci95(&[]).0.is_nan());
    }
}
