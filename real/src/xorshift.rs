//! A small keyed xorshift64* stream: the same key gives the same draws, in any process.

use conductor::retry::{splitmix64, GOLDEN_GAMMA};

/// A keyed xorshift64* stream.
pub struct XorShift(u64);

impl XorShift {
    /// The stream of `key` under `seed`.
    pub fn keyed(seed: u64, key: u64) -> Self {
        // splitmix64 of the key spreads neighbouring ids over the whole state space. Its
        // first step (adding the golden gamma) is taken back: the streams stay those this
        // generator always drew.
        let z = splitmix64((seed ^ key.wrapping_mul(GOLDEN_GAMMA)).wrapping_sub(GOLDEN_GAMMA));
        XorShift(if z == 0 { GOLDEN_GAMMA } else { z })
    }

    /// The next 64 bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A uniform draw in (0, 1].
    pub fn uniform(&mut self) -> f64 {
        ((self.next_u64() >> 11) + 1) as f64 / (1u64 << 53) as f64
    }

    /// An exponential draw with mean 1.
    pub fn exp1(&mut self) -> f64 {
        -self.uniform().ln()
    }
}
