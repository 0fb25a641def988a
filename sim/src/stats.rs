//! Sample statistics with the definitions of REFERENCE_MODEL §1: nearest-rank quantiles and arithmetic means
//! over the same sample set.

/// Nearest-rank `q`-quantile of an ascending slice: `x(k)` with `k = max(1, ceil(q * n))` (1-based).
/// `NaN` for an empty slice.
pub fn nearest_rank(sorted: &[f64], q: f64) -> f64 {
    let n = sorted.len();
    if n == 0 {
        return f64::NAN;
    }
    let k = ((q * n as f64).ceil() as usize).clamp(1, n);
    sorted[k - 1]
}

/// Arithmetic mean, summed left to right (`NaN` for an empty slice).
pub fn mean(xs: &[f64]) -> f64 {
    xs.iter().sum::<f64>() / xs.len() as f64
}

/// Sorts samples ascending in place (total order; samples are finite).
pub fn sort_samples(xs: &mut [f64]) {
    xs.sort_unstable_by(f64::total_cmp);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_definition() {
        let xs: Vec<f64> = (1..=10).map(f64::from).collect();
        assert_eq!(nearest_rank(&xs, 0.0), 1.0); // k = max(1, 0)
        assert_eq!(nearest_rank(&xs, 0.5), 5.0); // ceil(5) = 5
        assert_eq!(nearest_rank(&xs, 0.51), 6.0); // ceil(5.1) = 6
        assert_eq!(nearest_rank(&xs, 0.99), 10.0);
        assert_eq!(nearest_rank(&xs, 1.0), 10.0);
        assert!(nearest_rank(&[], 0.5).is_nan());
    }
}
