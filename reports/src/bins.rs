//! A small latency histogram for one time bucket: sparse, log-linear bins of microseconds.
//!
//! The timeline keeps one per bucket (at most [`crate::timeline::MAX_BUCKETS`]) so that a
//! sliding-window percentile of end-to-end latency (a 60 s p99) can be computed after the run.
//! An HDR histogram per bucket would cost kilobytes each even when empty of most values; these
//! keep only the bins that were hit: 16 per octave (relative error under 6.25%), values below
//! 16 µs exact. Counts are integers, so merging buckets, seeds or shards is exact and
//! independent of order.

use serde::{Deserialize, Serialize};

/// Sub-bins per octave (a power of two).
const SUB: u64 = 16;
/// `log2(SUB)`.
const SUB_BITS: u32 = 4;

/// A sparse log-linear histogram of microseconds: `(bin, count)` pairs in bin order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LatencyBins(Vec<(u16, u64)>);

/// The bin of `us`: the value itself below [`SUB`], else 16 bins per octave.
fn bin_of(us: u64) -> u16 {
    if us < SUB {
        return us as u16;
    }
    let e = 63 - us.leading_zeros(); // >= SUB_BITS
    let sub = (us >> (e - SUB_BITS)) & (SUB - 1);
    (SUB + u64::from(e - SUB_BITS) * SUB + sub) as u16
}

/// The largest value (µs) that falls in bin `b` (HDR's "highest equivalent value").
fn bin_high(b: u16) -> u64 {
    let b = u64::from(b);
    if b < SUB {
        return b;
    }
    let e = (b - SUB) / SUB + u64::from(SUB_BITS);
    let sub = (b - SUB) % SUB;
    let shift = (e - u64::from(SUB_BITS)) as u32;
    let lo = (SUB + sub).checked_shl(shift).unwrap_or(u64::MAX);
    lo.saturating_add((1u64 << shift) - 1)
}

impl LatencyBins {
    /// An empty histogram.
    pub fn new() -> Self {
        LatencyBins(Vec::new())
    }

    /// Records one value in µs.
    pub fn record(&mut self, us: u64) {
        self.add_n(bin_of(us), 1);
    }

    fn add_n(&mut self, b: u16, n: u64) {
        match self.0.binary_search_by_key(&b, |&(k, _)| k) {
            Ok(i) => self.0[i].1 += n,
            Err(i) => self.0.insert(i, (b, n)),
        }
    }

    /// Adds every count of `other`.
    pub fn merge(&mut self, other: &LatencyBins) {
        for &(b, n) in &other.0 {
            self.add_n(b, n);
        }
    }

    /// Values recorded.
    pub fn len(&self) -> u64 {
        self.0.iter().map(|&(_, n)| n).sum()
    }

    /// True when nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The value (µs, its bin's highest) at quantile `q` in [0, 1]; `None` when empty.
    pub fn quantile_us(&self, q: f64) -> Option<u64> {
        let total = self.len();
        if total == 0 {
            return None;
        }
        let q = if q.is_nan() { 0.0 } else { q.clamp(0.0, 1.0) };
        let rank = ((q * total as f64).ceil() as u64).clamp(1, total);
        let mut seen = 0;
        for &(b, n) in &self.0 {
            seen += n;
            if seen >= rank {
                return Some(bin_high(b));
            }
        }
        self.0.last().map(|&(b, _)| bin_high(b))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bins_are_monotone_and_cover_their_values() {
        let mut prev = 0;
        for us in (0..5000u64).chain([1 << 20, (1 << 40) + 12345, u64::MAX / 3]) {
            let b = bin_of(us);
            assert!(b >= prev || us > 5000);
            prev = b;
            let hi = bin_high(b);
            assert!(hi >= us, "{us} in bin {b} up to {hi}");
            assert!((hi - us) as f64 <= us as f64 / 16.0 + 1.0, "{us}: {hi}");
        }
    }

    #[test]
    fn quantiles_and_merge() {
        let mut a = LatencyBins::new();
        assert_eq!(a.quantile_us(0.99), None);
        for us in 1..=100u64 {
            a.record(us * 1000);
        }
        let p99 = a.quantile_us(0.99).unwrap();
        assert!((99_000..=99_000 + 99_000 / 16).contains(&p99), "{p99}");
        let p50 = a.quantile_us(0.5).unwrap();
        assert!((50_000..=53_200).contains(&p50), "{p50}");
        let mut b = LatencyBins::new();
        b.record(10_000_000);
        let mut ab = a.clone();
        ab.merge(&b);
        let mut ba = b.clone();
        ba.merge(&a);
        assert_eq!(ab, ba);
        assert_eq!(ab.len(), 101);
        assert!(ab.quantile_us(1.0).unwrap() >= 10_000_000);
    }
}
