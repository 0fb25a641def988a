//! Random streams: explicit per-run seeds, independent named streams, and the reference SplitMix64 streams.
//!
//! Every run takes a [`RunSeed`] explicitly (nothing is seeded from the clock or a global) and derives one
//! independent stream per named purpose (`"arrivals"`, `"service"`, `"failures"`, …), so adding a stream
//! for a new purpose never shifts the draws of the others. Models draw through the small [`Draws`] trait,
//! which has two implementations:
//!
//! * [`RandDraws`]: any `rand` generator, with `rand`/`rand_distr` doing the sampling. Named streams of a
//!   [`RunSeed`] are `Xoshiro256PlusPlus` generators (portable and documented bit-stable across platforms).
//! * [`SplitMix64`]: the reference streams of REFERENCE_MODEL §2, with their exact `uniform` and `exp`
//!   formulas, needed for level-X (bit-identical) conformance with the peer simulators.
//!
//! What this module is not: a distribution library. Distributions beyond the uniform and the exponential are
//! sampled with `rand_distr` through [`RandDraws::sample`].

use rand::{Rng, RngExt, SeedableRng};
use rand_distr::{Distribution, Exp1};
use rand_xoshiro::Xoshiro256PlusPlus;

/// The two draws every queueing model needs. Implementations decide *how* they are computed.
pub trait Draws {
    /// A uniform number in `[0, 1)`.
    fn uniform(&mut self) -> f64;
    /// An exponentially distributed number with rate `rate` (mean `1 / rate`).
    fn exp(&mut self, rate: f64) -> f64;
}

const GOLDEN_GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

/// SplitMix64's output function (Steele, Lea & Flood 2014), as REFERENCE_MODEL §2 writes it:
/// `z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9; z = (z ^ (z >> 27)) * 0x94D049BB133111EB; z ^ (z >> 31)`.
#[inline(always)]
pub fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A reference random stream (REFERENCE_MODEL §2): SplitMix64 with
/// `state = mix64(seed ^ (stream << 32))`, `next() = mix64(state += 0x9E3779B97F4A7C15)`,
/// `uniform() = (next() >> 11) * 2^-53` and `exp(r) = -ln(1 - uniform()) / r`.
///
/// `ln` is Rust's `f64::ln`, which calls the platform C library's `log` (glibc on Linux) as the spec
/// requires. Also a [`rand::Rng`], so `rand_distr` can sample from it (such draws are then outside the
/// reference model).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    /// Reference stream number for arrivals.
    pub const ARRIVALS: u64 = 0;
    /// Reference stream number for service times.
    pub const SERVICE: u64 = 1;

    /// Stream `stream` of run `seed`.
    pub fn reference(seed: u64, stream: u64) -> Self {
        SplitMix64 { state: mix64(seed ^ (stream << 32)) }
    }

    /// The next raw 64-bit output.
    #[inline(always)]
    pub fn next_raw(&mut self) -> u64 {
        self.state = self.state.wrapping_add(GOLDEN_GAMMA);
        mix64(self.state)
    }
}

impl Draws for SplitMix64 {
    #[inline(always)]
    fn uniform(&mut self) -> f64 {
        (self.next_raw() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    #[inline(always)]
    fn exp(&mut self, rate: f64) -> f64 {
        -(1.0 - self.uniform()).ln() / rate
    }
}

impl rand::TryRng for SplitMix64 {
    type Error = std::convert::Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        Ok((self.next_raw() >> 32) as u32)
    }
    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        Ok(self.next_raw())
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        for chunk in dst.chunks_mut(8) {
            let bytes = self.next_raw().to_le_bytes();
            chunk.copy_from_slice(&bytes[..chunk.len()]);
        }
        Ok(())
    }
}

/// Draws computed by `rand` and `rand_distr` from any generator `R`: `uniform` is `rand`'s standard
/// `[0, 1)` double (53 random bits), `exp` is `rand_distr`'s ziggurat `Exp1` divided by the rate.
#[derive(Clone, Debug)]
pub struct RandDraws<R> {
    rng: R,
}

impl<R: Rng> RandDraws<R> {
    /// Wraps a generator.
    pub fn new(rng: R) -> Self {
        RandDraws { rng }
    }

    /// A sample of any `rand_distr` distribution from this stream.
    pub fn sample<T, D: Distribution<T>>(&mut self, dist: &D) -> T {
        dist.sample(&mut self.rng)
    }

    /// The underlying generator.
    pub fn rng_mut(&mut self) -> &mut R {
        &mut self.rng
    }
}

impl<R: Rng> Draws for RandDraws<R> {
    #[inline]
    fn uniform(&mut self) -> f64 {
        self.rng.random::<f64>()
    }

    #[inline]
    fn exp(&mut self, rate: f64) -> f64 {
        let e: f64 = Exp1.sample(&mut self.rng);
        e / rate
    }
}

/// The generator behind named streams.
pub type StreamRng = Xoshiro256PlusPlus;

/// The seed of one run, from which every random stream of the run is derived.
///
/// `stream(name)` seeds a [`StreamRng`] with `mix64(seed ^ fnv1a64(name))` (via SplitMix64 seeding inside
/// `seed_from_u64`): streams of different names are independent for practical purposes, and a stream's
/// draws depend only on the run seed and its own name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RunSeed(pub u64);

impl RunSeed {
    /// The 64-bit seed of the stream called `name`.
    pub fn stream_seed(self, name: &str) -> u64 {
        mix64(self.0 ^ fnv1a64(name.as_bytes()))
    }

    /// A fresh generator for the stream called `name`.
    pub fn stream(self, name: &str) -> StreamRng {
        StreamRng::seed_from_u64(self.stream_seed(name))
    }

    /// [`Draws`] on the stream called `name`.
    pub fn draws(self, name: &str) -> RandDraws<StreamRng> {
        RandDraws::new(self.stream(name))
    }
}

/// FNV-1a, 64-bit (Fowler, Noll & Vo): a stable hash of stream names (std's hashers are not stable).
fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Test vectors of REFERENCE_MODEL §2.
    #[test]
    fn reference_vectors() {
        assert_eq!(SplitMix64::reference(1, 0).next_raw(), 0xbfef_8030_ddc2_d772);
        let mut s = SplitMix64::reference(1, SplitMix64::ARRIVALS);
        assert_eq!(s.uniform(), 0.7497482413580301);
        assert_eq!(s.uniform(), 0.37239342287916577);
        assert_eq!(s.uniform(), 0.4382839062845528);
        assert_eq!(SplitMix64::reference(1, SplitMix64::SERVICE).exp(10.0), 0.022123933357526875);
    }

    #[test]
    fn named_streams_are_stable_and_distinct() {
        let seed = RunSeed(42);
        let a1: Vec<u64> = (0..4).map(|_| 0).scan(seed.stream("arrivals"), |r, _| Some(r.next_u64())).collect();
        let a2: Vec<u64> = (0..4).map(|_| 0).scan(seed.stream("arrivals"), |r, _| Some(r.next_u64())).collect();
        let s: Vec<u64> = (0..4).map(|_| 0).scan(seed.stream("service"), |r, _| Some(r.next_u64())).collect();
        assert_eq!(a1, a2);
        assert_ne!(a1, s);
        assert_ne!(RunSeed(43).stream_seed("arrivals"), seed.stream_seed("arrivals"));
        // FNV-1a's published test vector.
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
    }

    #[test]
    fn rand_draws_have_the_right_mean() {
        let mut d = RunSeed(7).draws("service");
        let n = 200_000;
        let mean = (0..n).map(|_| d.exp(4.0)).sum::<f64>() / n as f64;
        // Exp(4): mean 0.25, sd 0.25; 6 standard errors.
        assert!((mean - 0.25).abs() < 6.0 * 0.25 / (n as f64).sqrt(), "mean {mean}");
        let u = (0..n).map(|_| d.uniform()).sum::<f64>() / n as f64;
        assert!((u - 0.5).abs() < 6.0 * (1.0f64 / 12.0).sqrt() / (n as f64).sqrt(), "mean {u}");
    }
}
