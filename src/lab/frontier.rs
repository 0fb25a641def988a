//! Equal-cost comparison of controller families. A family is a controller swept over its aggressiveness
//! knob (the HPA's target utilisation, a predictive controller's margin or target, a BC policy's action
//! quantile): its members are points (cost, SLO-violation minutes), and its **frontier** is the lower-left
//! envelope of those points — the fewest SLO minutes reachable at each cost — joined by straight lines (a
//! mixture of two settings over time would reach the segment between them). Against a baseline family, each
//! family is read at the baseline's own points: its SLO minutes at the baseline's cost, and its cost at the
//! baseline's SLO minutes, by interpolation on the frontier, never by extrapolation.

/// A point of a family: (cost, SLO-violation minutes).
pub type Point = (f64, f64);

/// The frontier of `points`: the points no other point beats on both cost and SLO minutes (ties: the cheaper
/// one), by increasing cost and strictly decreasing SLO minutes. Non-finite points are left out.
pub fn frontier(points: &[Point]) -> Vec<Point> {
    let mut p: Vec<Point> = points.iter().copied().filter(|(c, s)| c.is_finite() && s.is_finite()).collect();
    p.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.total_cmp(&b.1)));
    let mut out: Vec<Point> = Vec::new();
    for q in p {
        if out.last().is_none_or(|l| q.1 < l.1) {
            out.push(q);
        }
    }
    out
}

/// The frontier's SLO minutes at `cost` (linear between its points), if `cost` lies within its cost range.
pub fn slo_at_cost(front: &[Point], cost: f64) -> Option<f64> {
    interpolate(front.iter().map(|&(c, s)| (c, s)), cost)
}

/// The frontier's cost at `slo` SLO minutes (linear between its points), if `slo` lies within its range.
pub fn cost_at_slo(front: &[Point], slo: f64) -> Option<f64> {
    // SLO minutes fall as cost rises: read the frontier from its cheap, bad end backwards.
    interpolate(front.iter().rev().map(|&(c, s)| (s, c)), slo)
}

/// The frontier read at a reference point `(cost, slo)`: (its SLO minutes at that cost, its cost at those SLO
/// minutes), each as a ratio to the reference's own figure; `None` where the reading falls outside the
/// frontier's range or the reference's figure is 0.
pub fn ratios_at(front: &[Point], (cost, slo): Point) -> (Option<f64>, Option<f64>) {
    let slo_ratio = slo_at_cost(front, cost).filter(|_| slo > 0.0).map(|y| y / slo);
    let cost_ratio = cost_at_slo(front, slo).filter(|_| cost > 0.0).map(|c| c / cost);
    (slo_ratio, cost_ratio)
}

/// `y(x)` on the polyline through `(x, y)` points with non-decreasing `x`; `None` outside `[x_first, x_last]`.
fn interpolate(points: impl Iterator<Item = (f64, f64)>, x: f64) -> Option<f64> {
    let pts: Vec<(f64, f64)> = points.collect();
    let (first, last) = (pts.first()?, pts.last()?);
    if !(x >= first.0 && x <= last.0) {
        return None;
    }
    for w in pts.windows(2) {
        let ((x0, y0), (x1, y1)) = (w[0], w[1]);
        if x <= x1 {
            return Some(if x1 > x0 { y0 + (y1 - y0) * (x - x0) / (x1 - x0) } else { y0.min(y1) });
        }
    }
    Some(last.1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_frontier_keeps_what_nothing_beats() {
        // (12, 9) is beaten by (11, 8); (14, 8) by (11, 8); (20, 1) and (16, 3) stay.
        let f = frontier(&[(12.0, 9.0), (11.0, 8.0), (20.0, 1.0), (14.0, 8.0), (16.0, 3.0), (f64::NAN, 0.0)]);
        assert_eq!(f, vec![(11.0, 8.0), (16.0, 3.0), (20.0, 1.0)]);
    }

    #[test]
    fn readings_interpolate_and_never_extrapolate() {
        let f = frontier(&[(10.0, 10.0), (20.0, 4.0), (30.0, 0.0)]);
        assert_eq!(slo_at_cost(&f, 15.0), Some(7.0));
        assert_eq!(slo_at_cost(&f, 30.0), Some(0.0));
        assert_eq!(slo_at_cost(&f, 9.0), None);
        assert_eq!(slo_at_cost(&f, 31.0), None);
        assert_eq!(cost_at_slo(&f, 2.0), Some(25.0));
        assert_eq!(cost_at_slo(&f, 10.0), Some(10.0));
        assert_eq!(cost_at_slo(&f, 11.0), None);
        // One point: a reading only at that point.
        let one = frontier(&[(5.0, 3.0)]);
        assert_eq!((slo_at_cost(&one, 5.0), slo_at_cost(&one, 6.0)), (Some(3.0), None));
    }
}
