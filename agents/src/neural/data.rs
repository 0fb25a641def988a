//! Training data: per-step frames, windows cut from them, a time-ordered split with no leakage between its
//! parts, and normalisation fitted on the training part only.

use prescale_sim::validate::{Interval, Problems};
use serde::{Deserialize, Serialize};

use super::spec::ModelSpec;

/// Per-step signals of one series: `width` unnormalised inputs per step (in the spec's column order) and the
/// step's target value (requests per second).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Frames {
    /// Inputs per row.
    pub width: usize,
    /// `steps × width` values.
    pub inputs: Vec<f64>,
    /// One target per step.
    pub target: Vec<f64>,
}

impl Frames {
    /// Steps in the series.
    pub fn steps(&self) -> usize {
        self.target.len()
    }
}

/// Affine normalisation of rate-like values, fitted on training data only: `z = (x − mean) / sd`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Normaliser {
    /// Mean of the training rates, requests per second.
    pub mean: f64,
    /// Standard deviation of the training rates (at least 1e-6), requests per second.
    pub sd: f64,
}

impl Normaliser {
    /// Fits mean and standard deviation of `xs`.
    pub fn fit(xs: &[f64]) -> Normaliser {
        let n = xs.len().max(1) as f64;
        let mean = xs.iter().sum::<f64>() / n;
        let var = xs.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / n;
        Normaliser { mean, sd: var.sqrt().max(1e-6) }
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

/// Input windows and their targets, normalised, ready for tensors.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Windows {
    /// `n × window × width`.
    pub x: Vec<f32>,
    /// `n × horizons`.
    pub y: Vec<f32>,
    /// Windows.
    pub n: usize,
}

impl Windows {
    /// Appends another set (same shapes).
    pub fn extend(&mut self, other: &Windows) {
        self.x.extend_from_slice(&other.x);
        self.y.extend_from_slice(&other.y);
        self.n += other.n;
    }
}

/// Which inputs of a row are rate-like (normalised like the target).
pub fn rate_mask(spec: &ModelSpec) -> Vec<bool> {
    spec.inputs.iter().flat_map(|i| std::iter::repeat_n(i.is_rate(), i.columns().len())).collect()
}

/// Cuts the windows whose last input step is in `ends`: inputs are steps `k − window + 1 ..= k`, targets
/// steps `k + offset .. k + offset + horizons` (forecasting: offset 1; imitation: offset 0, one horizon).
/// Windows that would reach outside the series are skipped.
pub fn windows(
    frames: &Frames,
    spec: &ModelSpec,
    norm: &Normaliser,
    offset: usize,
    ends: std::ops::Range<usize>,
) -> Windows {
    let (l, w, h) = (spec.window_steps as usize, frames.width, spec.horizon_steps as usize);
    let mask = rate_mask(spec);
    let mut out = Windows::default();
    for k in ends {
        if k + 1 < l || k + offset + h > frames.steps() {
            continue;
        }
        for s in k + 1 - l..=k {
            for (j, v) in frames.inputs[s * w..(s + 1) * w].iter().enumerate() {
                out.x.push(if mask[j] { norm.z(*v) } else { *v } as f32);
            }
        }
        for s in k + offset..k + offset + h {
            out.y.push(norm.z(frames.target[s]) as f32);
        }
        out.n += 1;
    }
    out
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
