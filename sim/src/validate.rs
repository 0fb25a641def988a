//! One validation vocabulary for every crate: a [`Problems`] collector that records each problem with its
//! dotted path, and the rules the configs share, so the same rule reads the same wherever it is broken.
//!
//! A config checks itself into a collector (`fn check(&self, p: &mut Problems)`), and a config that holds
//! another nests it with [`Problems::under`]: the inner config names its own fields and the collector adds the
//! prefix. The wording of each shared rule lives here once:
//!
//! | rule | message |
//! |---|---|
//! | [`Problems::positive`] | `must be a finite number > 0, got x` |
//! | [`Problems::non_negative`] | `must be a finite number >= 0, got x` |
//! | [`Problems::within`] | `must be in (0, 1], got x` (any [`Interval`]) |
//! | [`Problems::count_within`] | `must be from 1 to 48, got n` |
//! | [`Problems::at_least`] | `must be >= step_s (60), got x` |
//! | [`Problems::at_most`] | `must be <= max_count (10), got n` |
//!
//! ```
//! use prescale_sim::validate::{Interval, Problems};
//! let mut p = Problems::new();
//! p.under("allocator", |p| {
//!     p.within("target_utilisation", 1.5, Interval::open_closed(0.0, 1.0));
//! });
//! p.positive("step_s", f64::NAN);
//! let text: Vec<String> = p.into_vec().iter().map(|x| x.to_string()).collect();
//! assert_eq!(text, [
//!     "allocator.target_utilisation: must be in (0, 1], got 1.5",
//!     "step_s: must be a finite number > 0, got NaN",
//! ]);
//! ```

use serde::Serialize;

/// One problem of a config, with its dotted path (`cluster.instance_types[1].price_usd_per_hour`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// Dotted path of the field (empty: the file as a whole).
    pub path: String,
    /// What is wrong and what was expected.
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.path.is_empty() { f.write_str(&self.message) } else { write!(f, "{}: {}", self.path, self.message) }
    }
}

/// `prefix` and `field` joined into one dotted path: `a` + `b` → `a.b`, `a` + `[2].b` → `a[2].b`, and an
/// empty part leaves the other.
pub fn join_path(prefix: &str, field: &str) -> String {
    match (prefix.is_empty(), field.is_empty()) {
        (true, _) => field.to_string(),
        (false, true) => prefix.to_string(),
        (false, false) if field.starts_with('[') => format!("{prefix}{field}"),
        (false, false) => format!("{prefix}.{field}"),
    }
}

/// `60` or `step_s (60)`.
fn bound(x: f64, what: &str) -> String {
    if what.is_empty() { format!("{x}") } else { format!("{what} ({x})") }
}

/// An interval of real numbers, each end open or closed; shown in the usual notation, `(0, 1]`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Interval {
    lo: f64,
    lo_closed: bool,
    hi: f64,
    hi_closed: bool,
}

impl Interval {
    /// `(lo, hi)`.
    pub const fn open(lo: f64, hi: f64) -> Self {
        Interval { lo, lo_closed: false, hi, hi_closed: false }
    }
    /// `[lo, hi]`.
    pub const fn closed(lo: f64, hi: f64) -> Self {
        Interval { lo, lo_closed: true, hi, hi_closed: true }
    }
    /// `(lo, hi]`.
    pub const fn open_closed(lo: f64, hi: f64) -> Self {
        Interval { lo, lo_closed: false, hi, hi_closed: true }
    }
    /// `[lo, hi)`.
    pub const fn closed_open(lo: f64, hi: f64) -> Self {
        Interval { lo, lo_closed: true, hi, hi_closed: false }
    }
    /// Whether `x` lies in the interval (NaN never does).
    pub fn contains(&self, x: f64) -> bool {
        let above = if self.lo_closed { x >= self.lo } else { x > self.lo };
        let below = if self.hi_closed { x <= self.hi } else { x < self.hi };
        above && below
    }
}

impl std::fmt::Display for Interval {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (l, r) = (if self.lo_closed { '[' } else { '(' }, if self.hi_closed { ']' } else { ')' });
        write!(f, "{l}{}, {}{r}", self.lo, self.hi)
    }
}

/// Collects every problem of a config with its dotted path (see the module doc).
#[derive(Clone, Debug, Default)]
pub struct Problems {
    prefix: String,
    list: Vec<Problem>,
}

impl Problems {
    /// An empty collector at the root (paths as given).
    pub fn new() -> Self {
        Self::default()
    }

    /// Records `message` at `field` (below the current prefix; `""` = the prefix itself).
    pub fn add(&mut self, field: &str, message: impl Into<String>) {
        self.list.push(Problem { path: join_path(&self.prefix, field), message: message.into() });
    }

    /// Runs `check` with `field` added to the prefix, so what it records sits below `field`.
    pub fn under<R>(&mut self, field: &str, check: impl FnOnce(&mut Self) -> R) -> R {
        let outer = std::mem::take(&mut self.prefix);
        self.prefix = join_path(&outer, field);
        let r = check(self);
        self.prefix = outer;
        r
    }

    /// Records each of `problems` below `field` (paths already relative to it).
    pub fn extend_under(&mut self, field: &str, problems: impl IntoIterator<Item = Problem>) {
        let at = join_path(&self.prefix, field);
        self.list.extend(problems.into_iter().map(|p| Problem { path: join_path(&at, &p.path), message: p.message }));
    }

    /// Records `message()` at `field` unless `ok`; returns `ok`.
    pub fn require(&mut self, field: &str, ok: bool, message: impl FnOnce() -> String) -> bool {
        if !ok {
            self.add(field, message());
        }
        ok
    }

    /// `x` must be a finite number > 0.
    pub fn positive(&mut self, field: &str, x: f64) -> bool {
        self.require(field, x.is_finite() && x > 0.0, || format!("must be a finite number > 0, got {x}"))
    }

    /// `x` must be a finite number >= 0.
    pub fn non_negative(&mut self, field: &str, x: f64) -> bool {
        self.require(field, x.is_finite() && x >= 0.0, || format!("must be a finite number >= 0, got {x}"))
    }

    /// `x` must lie in `range`.
    pub fn within(&mut self, field: &str, x: f64, range: Interval) -> bool {
        self.require(field, range.contains(x), || format!("must be in {range}, got {x}"))
    }

    /// The whole number `n` must be from `lo` to `hi` (both included).
    pub fn count_within(&mut self, field: &str, n: u64, lo: u64, hi: u64) -> bool {
        self.require(field, (lo..=hi).contains(&n), || format!("must be from {lo} to {hi}, got {n}"))
    }

    /// `x` must be at least `min`, which is `what` (a field or a derived figure, named in the message; `""`
    /// for a plain number).
    pub fn at_least(&mut self, field: &str, x: f64, min: f64, what: &str) -> bool {
        self.require(field, x >= min, || format!("must be >= {}, got {x}", bound(min, what)))
    }

    /// `x` must be at most `max`, which is `what` (`""` for a plain number).
    pub fn at_most(&mut self, field: &str, x: f64, max: f64, what: &str) -> bool {
        self.require(field, x <= max, || format!("must be <= {}, got {x}", bound(max, what)))
    }

    /// No problem recorded.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// How many problems are recorded.
    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// The problems, in the order they were found.
    pub fn iter(&self) -> impl Iterator<Item = &Problem> {
        self.list.iter()
    }

    /// The problems, in the order they were found.
    pub fn into_vec(self) -> Vec<Problem> {
        self.list
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_nest_and_indices_join_without_a_dot() {
        let mut p = Problems::new();
        p.under("cluster", |p| {
            p.under("instance_types[1]", |p| p.add("name", "must not be empty"));
            p.add("", "whole");
        });
        p.extend_under("controller", [Problem { path: "[0].x".into(), message: "m".into() }]);
        let paths: Vec<_> = p.iter().map(|x| x.path.clone()).collect();
        assert_eq!(paths, ["cluster.instance_types[1].name", "cluster", "controller[0].x"]);
    }

    #[test]
    fn rules_pass_what_they_promise_and_refuse_the_rest() {
        let mut p = Problems::new();
        assert!(p.positive("a", 1e-300) && !p.positive("a", 0.0) && !p.positive("a", f64::INFINITY));
        assert!(p.non_negative("b", 0.0) && !p.non_negative("b", -0.5) && !p.non_negative("b", f64::NAN));
        assert!(p.within("c", 1.0, Interval::open_closed(0.0, 1.0)) && !p.within("c", 0.0, Interval::open(0.0, 1.0)));
        assert!(
            p.within("c", 0.0, Interval::closed_open(0.0, 1.0)) && !p.within("c", 1.0, Interval::closed_open(0.0, 1.0))
        );
        assert!(!p.within("c", f64::NAN, Interval::closed(0.0, 1.0)));
        assert!(p.count_within("d", 48, 1, 48) && !p.count_within("d", 0, 1, 48));
        assert!(p.at_least("e", 60.0, 60.0, "step_s") && !p.at_least("e", f64::NAN, 60.0, "step_s"));
        assert!(p.at_most("f", 3.0, 3.0, "max_count") && !p.at_most("f", 4.0, 3.0, "max_count"));
        assert!(!p.at_least("g", 0.0, 1.0, ""));
        let text: Vec<String> = p.iter().map(|x| x.to_string()).collect();
        assert_eq!(
            text,
            [
                "a: must be a finite number > 0, got 0",
                "a: must be a finite number > 0, got inf",
                "b: must be a finite number >= 0, got -0.5",
                "b: must be a finite number >= 0, got NaN",
                "c: must be in (0, 1), got 0",
                "c: must be in [0, 1), got 1",
                "c: must be in [0, 1], got NaN",
                "d: must be from 1 to 48, got 0",
                "e: must be >= step_s (60), got NaN",
                "f: must be <= max_count (3), got 4",
                "g: must be >= 1, got 0",
            ]
        );
    }
}
