//! The run's randomness, kept apart from the scheduler's: every purpose has its own stream keyed
//! by the seed, so two configurations run with one seed see the same arrivals, picks and service
//! times (common random numbers) however their scheduling differs.

use conductor::retry::splitmix64;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// What a stream is for; part of its key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u64)]
pub enum Purpose {
    /// Arrival times.
    Arrivals = 1,
    /// Which container an op acts on.
    Picks = 2,
    /// Which kind of op.
    Mix = 3,
    /// Host service times (keyed per op).
    Service = 4,
    /// Host failures (keyed per op).
    Failure = 5,
    /// The lifecycle model's gaps between one container's requests (keyed per container).
    Gap = 6,
    /// The nemesis: which faults, when, on which nodes.
    Nemesis = 7,
    /// The random parts of scheduled faults (a swizzle-clog's unclog order), per fault.
    Faults = 8,
}

/// A sequential stream for `purpose` and `index` under `seed` (ChaCha8, 2^64 streams per key).
pub fn stream(seed: u64, purpose: Purpose, index: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(splitmix64(seed ^ splitmix64(purpose as u64)));
    rng.set_stream(index);
    rng
}

/// A counter-based draw: the `k`-th uniform in (0, 1) for `(seed, purpose, key)`. Random access
/// by key is what makes per-op values independent of the order in which ops are served.
pub fn keyed_uniform(seed: u64, purpose: Purpose, key: u64, k: u64) -> f64 {
    let h = splitmix64(splitmix64(splitmix64(seed ^ (purpose as u64).rotate_left(56)) ^ key) ^ k);
    // 53 random bits, shifted off zero so that ln(u) is finite.
    ((h >> 11) as f64 + 0.5) / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::RngCore;

    #[test]
    fn streams_are_keyed() {
        let a: Vec<u64> = (0..4)
            .map(|_| stream(1, Purpose::Arrivals, 0).next_u64())
            .collect();
        assert!(a.windows(2).all(|w| w[0] == w[1]));
        assert_ne!(
            stream(1, Purpose::Arrivals, 0).next_u64(),
            stream(1, Purpose::Picks, 0).next_u64()
        );
        assert_ne!(
            stream(1, Purpose::Arrivals, 0).next_u64(),
            stream(2, Purpose::Arrivals, 0).next_u64()
        );
    }

    #[test]
    fn keyed_uniform_is_uniform() {
        let n = 100_000;
        let mean: f64 = (0..n)
            .map(|i| keyed_uniform(7, Purpose::Service, i, 0))
            .sum::<f64>()
            / n as f64;
        assert!((mean - 0.5).abs() < 0.005, "mean {mean}");
        let u = keyed_uniform(7, Purpose::Service, 3, 0);
        assert!(u > 0.0 && u < 1.0);
        assert_eq!(u, keyed_uniform(7, Purpose::Service, 3, 0));
    }
}
