//! Level-S conformance: `mmc-steady` against M/M/c queueing theory (Erlang C), sets A, B and C of
//! REFERENCE_MODEL §3.2, over independent seeds.
//!
//! Theory (FIFO M/M/c, a = λ/μ, θ = cμ − λ; the formulas of the peers' `erlang_c.py`):
//! Erlang B by recursion `B_0 = 1, B_k = a B_{k−1} / (k + a B_{k−1})`; `C = P(W>0) = c B_c / (c − a(1 − B_c))`;
//! `E[W] = C/θ`; `E[S] = E[W] + 1/μ`;
//! `P(S>t) = (1−C) e^{−μt} + C (θ e^{−μt} − μ e^{−θt}) / (θ − μ)`; quantiles by bisection.
//!
//! For each set and metric, a Student-t confidence interval of the mean over seeds must contain the theory.
//! There are 18 intervals (3 sets × 6 metrics); each is drawn at level 1 − 0.05/18 (Bonferroni) so that the
//! family of them is a 95 % confidence statement. A second test runs the same procedure on a LIFO queue —
//! same P(W>0) and E[W] (work conservation), different sojourn distribution — and checks that the procedure
//! rejects it: the test can fail.

use prescale_sim::reference::{MmcParams, MmcResult, run_mmc_with};
use prescale_sim::service::QueueDiscipline;
use statrs::distribution::{ContinuousCDF, StudentsT};

struct Theory {
    p_wait: f64,
    mean_wait: f64,
    mean_sojourn: f64,
    p50: f64,
    p95: f64,
    p99: f64,
}

fn erlang_c(lambda: f64, mu: f64, c: u32) -> f64 {
    let a = lambda / mu;
    let mut b = 1.0;
    for k in 1..=c {
        b = a * b / (k as f64 + a * b);
    }
    c as f64 * b / (c as f64 - a * (1.0 - b))
}

fn sojourn_tail(t: f64, lambda: f64, mu: f64, c: u32) -> f64 {
    let cc = erlang_c(lambda, mu, c);
    let th = c as f64 * mu - lambda;
    let tail = if (th - mu).abs() < 1e-12 * mu {
        (1.0 + mu * t) * (-mu * t).exp()
    } else {
        (th * (-mu * t).exp() - mu * (-th * t).exp()) / (th - mu)
    };
    (1.0 - cc) * (-mu * t).exp() + cc * tail
}

fn sojourn_quantile(q: f64, lambda: f64, mu: f64, c: u32) -> f64 {
    let (mut lo, mut hi) = (0.0, 1.0 / mu);
    while sojourn_tail(hi, lambda, mu, c) > 1.0 - q {
        hi *= 2.0;
    }
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if sojourn_tail(mid, lambda, mu, c) > 1.0 - q { lo = mid } else { hi = mid }
    }
    0.5 * (lo + hi)
}

fn theory(p: &MmcParams) -> Theory {
    let cc = erlang_c(p.lambda, p.mu, p.c);
    let th = p.c as f64 * p.mu - p.lambda;
    Theory {
        p_wait: cc,
        mean_wait: cc / th,
        mean_sojourn: cc / th + 1.0 / p.mu,
        p50: sojourn_quantile(0.50, p.lambda, p.mu, p.c),
        p95: sojourn_quantile(0.95, p.lambda, p.mu, p.c),
        p99: sojourn_quantile(0.99, p.lambda, p.mu, p.c),
    }
}

/// REFERENCE_MODEL §3.4's table (6 significant digits) checks the Rust theory before it judges simulations.
#[test]
fn theory_matches_the_reference_table() {
    let table = [
        ('A', [0.409180, 0.204590, 1.204590, 0.912145, 3.32827, 4.94611]),
        ('B', [0.506457, 0.101291, 1.101291, 0.807916, 3.11495, 4.72439]),
        ('C', [0.216940, 0.0021694, 0.1021694, 0.0716929, 0.301955, 0.462899]),
    ];
    for (set, want) in table {
        let t = theory(&MmcParams::set(set).unwrap());
        let got = [t.p_wait, t.mean_wait, t.mean_sojourn, t.p50, t.p95, t.p99];
        for (g, w) in got.iter().zip(want) {
            assert!(((g - w) / w).abs() < 5e-6, "set {set}: theory {g} vs table {w}");
        }
    }
}

/// Seeds and window per set: enough replications for tight intervals, short enough for CI.
fn plan(set: char) -> (MmcParams, u64) {
    let mut p = MmcParams::set(set).unwrap();
    let seeds = match set {
        'A' => 24,
        'B' => {
            p.t = 5000.0;
            p.warmup = 500.0;
            16
        }
        _ => {
            p.t = 500.0;
            p.warmup = 50.0;
            24
        }
    };
    (p, seeds)
}

const METRICS: [&str; 6] = ["p_wait", "mean_wait", "mean_sojourn", "p50_sojourn", "p95_sojourn", "p99_sojourn"];
const FAMILY_LEVEL: f64 = 0.95;
const INTERVALS: f64 = 18.0;

fn metric(r: &MmcResult, i: usize) -> f64 {
    [r.p_wait, r.mean_wait, r.mean_sojourn, r.p50_sojourn, r.p95_sojourn, r.p99_sojourn][i]
}

/// For one set: each metric's mean over seeds, half-width of its interval, and the theory value; seeds are
/// run on two threads (results do not depend on it: each run owns its state).
fn intervals(set: char, discipline: QueueDiscipline) -> Vec<(&'static str, f64, f64, f64)> {
    let (p, n) = plan(set);
    let seeds: Vec<u64> = (1..=n).collect();
    let runs: Vec<MmcResult> = std::thread::scope(|s| {
        let halves: Vec<_> = seeds
            .chunks(seeds.len().div_ceil(2))
            .map(|chunk| {
                s.spawn(move || chunk.iter().map(|&seed| run_mmc_with(p, seed, discipline)).collect::<Vec<_>>())
            })
            .collect();
        halves.into_iter().flat_map(|h| h.join().unwrap()).collect()
    });
    let th = theory(&p);
    let want = [th.p_wait, th.mean_wait, th.mean_sojourn, th.p50, th.p95, th.p99];
    let alpha = (1.0 - FAMILY_LEVEL) / INTERVALS;
    let t_crit = StudentsT::new(0.0, 1.0, (n - 1) as f64).unwrap().inverse_cdf(1.0 - alpha / 2.0);
    (0..6)
        .map(|i| {
            let xs: Vec<f64> = runs.iter().map(|r| metric(r, i)).collect();
            let m = xs.iter().sum::<f64>() / n as f64;
            let var = xs.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1) as f64;
            (METRICS[i], m, t_crit * (var / n as f64).sqrt(), want[i])
        })
        .collect()
}

fn misses(set: char, discipline: QueueDiscipline) -> Vec<String> {
    let rows = intervals(set, discipline);
    for (name, m, hw, want) in &rows {
        // Shown with `cargo test --release -p prescale-sim integration::erlang_c -- --nocapture`.
        eprintln!(
            "{discipline:?} set {set} {name:>12}: {m:.6} ± {hw:.6}  theory {want:.6}  ({:+.2} half-widths)",
            (m - want) / hw
        );
    }
    rows.into_iter()
        .filter(|(_, m, hw, want)| (m - want).abs() > *hw)
        .map(|(name, m, hw, want)| format!("set {set} {name}: {m:.6} ± {hw:.6} excludes theory {want:.6}"))
        .collect()
}

#[test]
fn fifo_agrees_with_erlang_c_on_sets_a_b_c() {
    let all: Vec<String> = ['A', 'B', 'C'].into_iter().flat_map(|s| misses(s, QueueDiscipline::Fifo)).collect();
    assert!(all.is_empty(), "simulation disagrees with Erlang C:\n{}", all.join("\n"));
}

#[test]
fn the_same_procedure_rejects_a_lifo_queue() {
    let m = misses('A', QueueDiscipline::Lifo);
    // Work conservation keeps P(W>0) and the means; the sojourn tail must give LIFO away.
    assert!(m.iter().any(|l| l.contains("p99_sojourn")), "LIFO was not detected: {m:?}");
    assert!(!m.iter().any(|l| l.contains("p_wait")), "P(W>0) should not depend on the discipline: {m:?}");
}
