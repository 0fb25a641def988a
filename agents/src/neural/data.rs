//! Training data: per-step frames, windows cut from them, a time-ordered split with no leakage between its
//! parts, and normalisation fitted on the training part only.

use prescale_sim::validate::{Interval, Problems};
use serde::{Deserialize, Serialize};

use super::spec::{Input, Level, ModelSpec, Signal};

/// Per-step signals of one series: `width` unnormalised inputs per step (in the spec's column order) and the
/// step's target values (one per target of the spec, in its order: requests per second, GiB, Gbit/s).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Frames {
    /// Inputs per row.
    pub width: usize,
    /// `steps × width` values.
    pub inputs: Vec<f64>,
    /// `steps × targets` values (one per step for a rate-only model).
    pub target: Vec<f64>,
}

impl Frames {
    /// Steps in the series.
    pub fn steps(&self) -> usize {
        self.inputs.len() / self.width.max(1)
    }

    /// Target values per step.
    pub fn targets(&self) -> usize {
        self.target.len() / self.steps().max(1)
    }

    /// Target `t`'s value at each step of `steps`.
    pub fn target_series(&self, t: usize, steps: std::ops::Range<usize>) -> Vec<f64> {
        let n = self.targets();
        steps.map(|k| self.target[k * n + t]).collect()
    }
}

/// The share of a signal's training mean below which a window-level model does not scale a window by its level
/// (the floor of [`Normaliser::level_floor_per_s`]). Intermittent series (requests per 5 minutes of a rarely
/// used service: mostly a few, sometimes none) otherwise give ratios of a burst to a near-idle window of
/// hundreds, which the network learns to expect everywhere. Measured with `forecast-eval --models gru-window`
/// (MASE at h = 1, the peers' protocol) against 0.1 %: NAB Twitter CVS 7.57 -> 0.58, PFE 7.64 -> 0.56, KO 1.96
/// -> 1.05, AMZN 0.72 -> 0.58; NASA, Google CPU, ELB, RDS, EC2 network and Wikipedia unchanged (their windows
/// never come near it); Twitter AAPL 0.31 -> 0.33. A model trained across series floors each series' windows at
/// the same share ([`series_floor`]).
pub const WINDOW_FLOOR_SHARE: f64 = 0.05;

/// Affine normalisation of rate-like values, fitted on training data only: `z = (x − mean) / sd`; with
/// [`Level::Window`], of their ratios to the window's level: `z = (x / level − mean) / sd`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Normaliser {
    /// Mean of the training rates, requests per second (with a window level: of the training ratios, unitless).
    pub mean: f64,
    /// Standard deviation of the training rates (at least 1e-6), requests per second (with a window level: of
    /// the ratios).
    pub sd: f64,
    /// With [`Level::Window`]: the least level a window is scaled by ([`WINDOW_FLOOR_SHARE`] of the training
    /// mean), in the signal's unit (requests per second for the rate; GiB, Gbit/s for memory and network), so
    /// that an idle window does not divide by zero. Absent with [`Level::Global`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level_floor_per_s: Option<f64>,
}

impl Normaliser {
    /// Fits mean and standard deviation of `xs`.
    pub fn fit(xs: &[f64]) -> Normaliser {
        let n = xs.len().max(1) as f64;
        let mean = xs.iter().sum::<f64>() / n;
        let var = xs.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / n;
        Normaliser { mean, sd: var.sqrt().max(1e-6), level_floor_per_s: None }
    }

    /// The normalisation `spec` asks for, given `raw`, the training targets' own ([`Normaliser::fit`]) and
    /// `train_windows`, which cuts the training windows under a given normaliser: [`Level::Global`] is `raw`;
    /// [`Level::Window`] fits the targets' ratios to their windows' levels, floored at [`WINDOW_FLOOR_SHARE`]
    /// of `raw`'s mean.
    pub fn fit_for(spec: &ModelSpec, raw: Normaliser, train_windows: impl Fn(&Normaliser) -> Windows) -> Normaliser {
        match spec.level {
            Level::Global => raw,
            Level::Window => {
                let unit = Normaliser::window_unit(raw.mean);
                let ratios: Vec<f64> = train_windows(&unit).y.iter().map(|v| *v as f64).collect();
                Normaliser { level_floor_per_s: unit.level_floor_per_s, ..Normaliser::fit(&ratios) }
            }
        }
    }
    /// The identity normaliser with a window level's floor for a signal whose training mean is `mean`:
    /// [`WINDOW_FLOOR_SHARE`] of it (at least 1e-9), so that an idle window does not divide by zero; windows cut
    /// under it hold the ratios the [`Level::Window`] normalisers are fitted on.
    pub fn window_unit(mean: f64) -> Normaliser {
        Normaliser { mean: 0.0, sd: 1.0, level_floor_per_s: Some((WINDOW_FLOOR_SHARE * mean.abs()).max(1e-9)) }
    }

    /// Normalises.
    pub fn z(&self, x: f64) -> f64 {
        (x - self.mean) / self.sd
    }
    /// Undoes [`Normaliser::z`].
    pub fn x(&self, z: f64) -> f64 {
        z * self.sd + self.mean
    }
}

/// The normalisers of a model's signals: the rate's (shared by every rate-like column and by the window
/// level) and, for a model that sees the memory or network demand, theirs (each fitted on its input column).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Norms {
    /// The request rate's.
    pub rate: Normaliser,
    /// The memory demand's, GiB.
    pub memory: Option<Normaliser>,
    /// The network demand's, Gbit/s.
    pub network: Option<Normaliser>,
}

impl From<Normaliser> for Norms {
    fn from(rate: Normaliser) -> Norms {
        Norms { rate, memory: None, network: None }
    }
}

impl Norms {
    /// Every signal's normaliser for a forecasting `spec` (targets one step on), fitted on the training steps
    /// `train` of `frames`, given `raw`, the training rate targets' own fit ([`Normaliser::fit`]). With
    /// [`Level::Global`]: the rate's is `raw`, every other signal's its input column's fit. With
    /// [`Level::Window`]: each signal is first divided by each window's level of it (its input column's mean,
    /// floored at [`WINDOW_FLOOR_SHARE`] of its training mean), and the fits are of those ratios — the rate's
    /// on the targets, as [`Normaliser::fit_for`], the others' on their input columns.
    pub fn fit(spec: &ModelSpec, raw: Normaliser, frames: &Frames, train: std::ops::Range<usize>) -> Norms {
        let width = frames.width;
        let column = |col: usize| -> Vec<f64> { train.clone().map(|k| frames.inputs[k * width + col]).collect() };
        match spec.level {
            Level::Global => {
                let fit = |s: Signal| spec.column_of(s).map(|c| Normaliser::fit(&column(c)));
                Norms { rate: raw, memory: fit(Signal::Memory), network: fit(Signal::Network) }
            }
            Level::Window => {
                let unit = Normaliser::window_unit;
                let unit_of = |s: Signal| spec.column_of(s).map(|c| unit(Normaliser::fit(&column(c)).mean));
                let u =
                    Norms { rate: unit(raw.mean), memory: unit_of(Signal::Memory), network: unit_of(Signal::Network) };
                let w = windows(frames, spec, &u, 1, Split::ends(&train, 1, spec.horizon_steps as usize));
                let with_floor = |xs: Vec<f64>, floor: &Normaliser| Normaliser {
                    level_floor_per_s: floor.level_floor_per_s,
                    ..Normaliser::fit(&xs)
                };
                // Targets per horizon, the rate first (checked); inputs `width` per row.
                let nt = spec.targets.len();
                let rate = with_floor(w.y.iter().step_by(nt).map(|v| *v as f64).collect(), &u.rate);
                let ratios = |s: Signal, floor: Option<Normaliser>| {
                    let (c, floor) = (spec.column_of(s)?, floor?);
                    Some(with_floor(w.x.iter().skip(c).step_by(width).map(|v| *v as f64).collect(), &floor))
                };
                Norms { rate, memory: ratios(Signal::Memory, u.memory), network: ratios(Signal::Network, u.network) }
            }
        }
    }

    /// The normaliser of `s`.
    ///
    /// # Panics
    /// If the model does not see `s` (the card check makes sure every signal of the spec has one).
    pub fn of(&self, s: Signal) -> &Normaliser {
        let n = match s {
            Signal::Rate => Some(&self.rate),
            Signal::Memory => self.memory.as_ref(),
            Signal::Network => self.network.as_ref(),
        };
        n.unwrap_or_else(|| panic!("checked: the model has a normaliser for {s:?}"))
    }

    /// `(mean, sd)` per input column: a signal's columns by its normaliser, calendar columns as they are (0, 1).
    pub fn columns(&self, spec: &ModelSpec) -> Vec<(f64, f64)> {
        let of = |i: Input| i.signal().map_or((0.0, 1.0), |s| (self.of(s).mean, self.of(s).sd));
        spec.inputs.iter().flat_map(|i| std::iter::repeat_n(of(*i), i.columns().len())).collect()
    }

    /// `(mean, sd)` per output row (horizon-major, then target).
    pub fn rows(&self, spec: &ModelSpec) -> Vec<(f64, f64)> {
        let per: Vec<(f64, f64)> = spec.targets.iter().map(|s| (self.of(*s).mean, self.of(*s).sd)).collect();
        (0..spec.horizon_steps).flat_map(|_| per.iter().copied()).collect()
    }
}

/// Input windows and their targets, normalised, ready for tensors.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Windows {
    /// `n × window × width`.
    pub x: Vec<f32>,
    /// `n × horizons × targets`.
    pub y: Vec<f32>,
    /// Each window's level per target (`n × targets`; 1 with [`Level::Global`]), in the target's unit: a
    /// normalised error times `sd`
    /// times this is in requests per second.
    pub level: Vec<f32>,
    /// Windows.
    pub n: usize,
}

impl Windows {
    /// At most `k` of the windows, drawn without replacement by `seed` and kept in their order (all of them when
    /// there are no more than `k`).
    pub fn sample(&self, k: usize, seed: u64) -> Windows {
        if self.n <= k {
            return self.clone();
        }
        use rand::SeedableRng;
        let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(seed);
        let mut keep = rand::seq::index::sample(&mut rng, self.n, k).into_vec();
        keep.sort_unstable();
        let (sx, sy, sl) = (self.x.len() / self.n, self.y.len() / self.n, self.level.len() / self.n);
        let mut w = Windows { n: k, ..Windows::default() };
        for i in keep {
            w.x.extend_from_slice(&self.x[i * sx..(i + 1) * sx]);
            w.y.extend_from_slice(&self.y[i * sy..(i + 1) * sy]);
            w.level.extend_from_slice(&self.level[i * sl..(i + 1) * sl]);
        }
        w
    }

    /// Appends another set (same shapes).
    pub fn extend(&mut self, other: &Windows) {
        self.x.extend_from_slice(&other.x);
        self.y.extend_from_slice(&other.y);
        self.level.extend_from_slice(&other.level);
        self.n += other.n;
    }
}

/// Which inputs of a row are rate-like (normalised like the target).
pub fn rate_mask(spec: &ModelSpec) -> Vec<bool> {
    spec.inputs.iter().flat_map(|i| std::iter::repeat_n(i.is_rate(), i.columns().len())).collect()
}

/// Cuts the windows whose last input step is in `ends`: inputs are steps `k − window + 1 ..= k`, targets
/// steps `k + offset .. k + offset + horizons` (forecasting: offset 1; imitation: offset 0, one horizon),
/// each step's targets in the spec's order. Windows that would reach outside the series are skipped. Every
/// column and target is normalised by its signal's normaliser in `norms`; with a level floor in the rate's (a
/// [`Level::Window`] spec), every signal's values (inputs and targets) are first divided by the window's level
/// of that signal (its input column's mean over the window, at least its floor).
pub fn windows(
    frames: &Frames,
    spec: &ModelSpec,
    norms: &Norms,
    offset: usize,
    ends: std::ops::Range<usize>,
) -> Windows {
    let (l, w, h) = (spec.window_steps as usize, frames.width, spec.horizon_steps as usize);
    let signals = spec.signals();
    let index = |s: Signal| signals.iter().position(|x| *x == s).expect("every signal of the spec");
    // Per column its signal's index (None: calendar), per target its signal's.
    let column_signal: Vec<Option<usize>> =
        spec.inputs.iter().flat_map(|i| std::iter::repeat_n(i.signal().map(index), i.columns().len())).collect();
    let target_signal: Vec<usize> = spec.targets.iter().map(|s| index(*s)).collect();
    let columns: Vec<Option<Normaliser>> = spec
        .inputs
        .iter()
        .flat_map(|i| std::iter::repeat_n(i.signal().map(|s| *norms.of(s)), i.columns().len()))
        .collect();
    let targets: Vec<Normaliser> = spec.targets.iter().map(|s| *norms.of(*s)).collect();
    let nt = targets.len();
    let level_of = window_levels(spec, norms);
    let mut out = Windows::default();
    for k in ends {
        if k + 1 < l || k + offset + h > frames.steps() {
            continue;
        }
        let window = &frames.inputs[(k + 1 - l) * w..(k + 1) * w];
        let levels = level_of.as_ref().map_or_else(|| vec![1.0; signals.len()], |f| f(window));
        for row in window.chunks_exact(w) {
            for (j, v) in row.iter().enumerate() {
                let scaled = column_signal[j].map_or(*v, |i| v / levels[i]);
                out.x.push(columns[j].map_or(scaled, |n| n.z(scaled)) as f32);
            }
        }
        for s in k + offset..k + offset + h {
            for (t, n) in targets.iter().enumerate() {
                out.y.push(n.z(frames.target[s * nt + t] / levels[target_signal[t]]) as f32);
            }
        }
        out.level.extend(target_signal.iter().map(|i| levels[*i] as f32));
        out.n += 1;
    }
    out
}

/// With level floors in `norms` (a [`Level::Window`] spec): each signal's level over a window of rows
/// (`window × width` values), in [`ModelSpec::signals`] order: the mean of the signal's own input column, at
/// least its floor.
fn window_levels(spec: &ModelSpec, norms: &Norms) -> Option<impl Fn(&[f64]) -> Vec<f64>> {
    norms.rate.level_floor_per_s?;
    let width = spec.width();
    let cols: Vec<(usize, f64)> = spec
        .signals()
        .into_iter()
        .map(|s| {
            let col = spec.column_of(s).expect("validated: a Window level needs each signal's own input");
            (col, norms.of(s).level_floor_per_s.expect("checked: every signal of a Window model has a floor"))
        })
        .collect();
    Some(move |window: &[f64]| {
        let rows = window.len() / width;
        cols.iter()
            .map(|&(col, floor)| {
                let sum: f64 = window.chunks_exact(width).map(|r| r[col]).sum();
                (sum / rows.max(1) as f64).max(floor)
            })
            .collect()
    })
}

/// A time-ordered split of a series: training, validation and test steps, by the fraction of targets.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Split {
    /// Fraction of the series for training (first).
    pub train: f64,
    /// Fraction for validation (next); the rest is the test period.
    pub validation: f64,
}

impl Default for Split {
    fn default() -> Self {
        Split { train: 0.7, validation: 0.15 }
    }
}

impl Split {
    /// Step ranges `[0, a)`, `[a, b)`, `[b, n)` of a series of `n` steps.
    pub fn ranges(&self, n: usize) -> [std::ops::Range<usize>; 3] {
        let a = ((n as f64 * self.train).round() as usize).min(n);
        let b = ((n as f64 * (self.train + self.validation)).round() as usize).clamp(a, n);
        [0..a, a..b, b..n]
    }

    /// The window ends whose targets (`k + offset .. k + offset + h`) all lie in `targets`: no window of one
    /// part sees a target of another.
    pub fn ends(targets: &std::ops::Range<usize>, offset: usize, h: usize) -> std::ops::Range<usize> {
        let start = targets.start.saturating_sub(offset);
        let end = (targets.end + 1).saturating_sub(offset + h);
        start..end.max(start)
    }

    /// Checks the fractions into `p`.
    pub fn check(&self, p: &mut Problems) {
        p.within("train", self.train, Interval::open(0.0, 1.0));
        p.require("validation", self.validation > 0.0 && self.train + self.validation < 1.0, || {
            format!("must be > 0 and leave a test period (train + validation < 1), got {}", self.validation)
        });
    }
}

/// The window unit (identity, with a level floor) a model trained across series learns a series of training
/// mean `mean` at: floored at [`WINDOW_FLOOR_SHARE`] (the global model's `GLOBAL_TRAINING_FLOOR_SHARE`) of it. Fine-tuning on a new series uses the same.
pub fn series_floor(mean: f64) -> Normaliser {
    Normaliser::window_unit(mean)
}

/// A policy's normalisation, fitted on the decisions `range` of each frames: the raw fit of their targets (the
/// expert's orders as capacity), and every signal's normaliser — the rate's the one `spec` asks for on the raw
/// fit ([`Normaliser::fit_for`]: with a window level, of the targets' ratios to their windows' levels), the
/// stated memory's and network's (Global level only) their input columns' fits. Training and in-run refits
/// (`BcPolicy`'s `refit`) both fit it this way.
#[cfg_attr(not(feature = "torch"), allow(dead_code))]
pub(super) fn policy_normaliser(spec: &ModelSpec, parts: &[(&Frames, std::ops::Range<usize>)]) -> (Normaliser, Norms) {
    let targets: Vec<f64> = parts.iter().flat_map(|(f, r)| f.target[r.clone()].iter().copied()).collect();
    let raw = Normaliser::fit(&targets);
    let rate = Normaliser::fit_for(spec, raw, |unit| {
        let mut w = Windows::default();
        for (f, r) in parts {
            w.extend(&windows(f, spec, &Norms::from(*unit), 0, Split::ends(r, 0, 1)));
        }
        w
    });
    let column = |s: Signal| {
        let c = spec.column_of(s)?;
        let xs: Vec<f64> = parts.iter().flat_map(|(f, r)| r.clone().map(move |k| f.inputs[k * f.width + c])).collect();
        Some(Normaliser::fit(&xs))
    };
    (raw, Norms { rate, memory: column(Signal::Memory), network: column(Signal::Network) })
}
