//! Latency histograms: HDR histograms of microseconds.

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use crate::round;

/// Significant decimal digits kept by every [`Histo`].
pub const SIGFIG: u8 = 3;

/// The largest value recorded as is (2⁴⁵ µs, about 407 days); larger ones are clamped to it.
pub const MAX_US: u64 = 1 << 45;

/// An HDR histogram of durations in **microseconds**: 3 significant figures, lowest
/// discernible value 1 µs, auto-resizing up to [`MAX_US`] (larger values are clamped).
///
/// Memory depends on the range of recorded values, never on how many were recorded.
/// Quantiles are the highest value equivalent to the sample at that rank, so they are exact
/// to within 0.1% (HDR's guarantee at 3 significant figures).
#[derive(Debug, Clone)]
pub struct Histo(Histogram<u64>);

/// The summary of a latency histogram in milliseconds, each rounded to 3 decimals, as it
/// appears under `latency_ms.complete` in `report.json` (plus `count`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Percentiles {
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p999: f64,
    /// Largest recorded value (its highest equivalent value).
    pub max: f64,
    /// Mean.
    pub mean: f64,
    /// Number of recorded values (an addition to the original report keys).
    pub count: u64,
}

impl Histo {
    /// An empty histogram.
    pub fn new() -> Self {
        Histo(Histogram::new(SIGFIG).expect("3 significant figures is a valid HDR setting"))
    }

    /// Records one duration in microseconds. Values above [`MAX_US`] (far beyond any
    /// simulated duration) are clamped to it rather than lost.
    pub fn record(&mut self, us: u64) {
        self.record_n(us, 1);
    }

    fn record_n(&mut self, us: u64, n: u64) {
        if self.0.record_n(us.min(MAX_US), n).is_err() {
            // Only if growing the counts failed; clamp to what the histogram holds.
            self.0.saturating_record_n(us, n);
        }
    }

    /// Adds every value of `other` to this histogram (pooling seeds).
    pub fn merge(&mut self, other: &Histo) {
        if self.0.add(&other.0).is_err() {
            // Not reachable with auto-resize; kept so that a merge can never lose data.
            for v in other.0.iter_recorded() {
                self.record_n(v.value_iterated_to(), v.count_at_value());
            }
        }
    }

    /// Number of recorded values.
    pub fn len(&self) -> u64 {
        self.0.len()
    }

    /// True when nothing has been recorded.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Mean in microseconds (0 when empty).
    pub fn mean_us(&self) -> f64 {
        self.0.mean()
    }

    /// The value at quantile `q` (0..=1) in microseconds (0 when empty).
    pub fn quantile_us(&self, q: f64) -> u64 {
        if self.is_empty() {
            return 0;
        }
        let q = if q.is_nan() { 0.0 } else { q.clamp(0.0, 1.0) };
        self.0.value_at_quantile(q)
    }

    /// The largest recorded value in microseconds (0 when empty).
    pub fn max_us(&self) -> u64 {
        if self.is_empty() {
            0
        } else {
            self.0.max()
        }
    }

    /// The value at quantile `q` in milliseconds, rounded to 3 decimals.
    pub fn quantile_ms(&self, q: f64) -> f64 {
        us_to_ms(self.quantile_us(q) as f64)
    }

    /// The mean in milliseconds, rounded to 3 decimals.
    pub fn mean_ms(&self) -> f64 {
        us_to_ms(self.mean_us())
    }

    /// p50, p90, p99, p99.9, max and mean in milliseconds (3 decimals), and the count.
    pub fn percentiles_ms(&self) -> Percentiles {
        Percentiles {
            p50: self.quantile_ms(0.50),
            p90: self.quantile_ms(0.90),
            p99: self.quantile_ms(0.99),
            p999: self.quantile_ms(0.999),
            max: us_to_ms(self.max_us() as f64),
            mean: self.mean_ms(),
            count: self.len(),
        }
    }

    /// The HdrHistogram percentile spectrum (as `outputPercentileDistribution`, 5 ticks per
    /// half distance): `(percentile 0..=100, value in ms)` pairs, ascending, ending at 100.
    /// Empty when nothing was recorded. Meant for plots (log scale of `1 / (1 - p/100)`).
    pub fn spectrum(&self) -> Vec<(f64, f64)> {
        if self.is_empty() {
            return Vec::new();
        }
        self.0
            .iter_quantiles(5)
            .map(|v| {
                (
                    round::significant(v.quantile_iterated_to() * 100.0, 12),
                    us_to_ms(self.0.highest_equivalent(v.value_iterated_to()) as f64),
                )
            })
            .collect()
    }
}

/// A histogram serialises as its recorded buckets, `[[value_us, count], …]` in ascending order
/// (each value the highest equivalent of its bucket): re-recording them gives back the same
/// counts, hence the same quantiles, mean and maximum, so shards can be merged exactly.
impl Serialize for Histo {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        let mut seq = s.serialize_seq(None)?;
        for v in self.0.iter_recorded() {
            seq.serialize_element(&(v.value_iterated_to(), v.count_at_value()))?;
        }
        seq.end()
    }
}

impl<'de> Deserialize<'de> for Histo {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let pairs = Vec::<(u64, u64)>::deserialize(d)?;
        let mut h = Histo::new();
        for (us, n) in pairs {
            h.record_n(us, n);
        }
        Ok(h)
    }
}

impl Default for Histo {
    fn default() -> Self {
        Histo::new()
    }
}

/// Microseconds to milliseconds, rounded to 3 decimals.
fn us_to_ms(us: f64) -> f64 {
    round::ms(us / 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Within HDR's relative precision at 3 significant figures (and a little slack).
    fn close(got: u64, want: u64) -> bool {
        let tol = (want as f64 * 0.001).max(1.0);
        (got as f64 - want as f64).abs() <= tol
    }

    #[test]
    fn empty_histogram_is_all_zero() {
        let h = Histo::new();
        assert!(h.is_empty());
        assert_eq!(h.len(), 0);
        assert_eq!(h.quantile_us(0.99), 0);
        assert_eq!(h.max_us(), 0);
        assert_eq!(h.mean_us(), 0.0);
        let p = h.percentiles_ms();
        assert_eq!(
            (p.p50, p.p99, p.max, p.mean, p.count),
            (0.0, 0.0, 0.0, 0.0, 0)
        );
        assert!(h.spectrum().is_empty());
    }

    #[test]
    fn percentiles_of_one_to_ten_thousand() {
        // 1..=10_000 µs, uniform: the value at quantile q is q·10_000 µs.
        let mut h = Histo::new();
        for us in 1..=10_000 {
            h.record(us);
        }
        assert_eq!(h.len(), 10_000);
        for (q, want) in [(0.5, 5_000), (0.9, 9_000), (0.99, 9_900), (0.999, 9_990)] {
            let got = h.quantile_us(q);
            assert!(close(got, want), "q={q}: got {got}, want {want}");
        }
        assert!(close(h.max_us(), 10_000));
        assert!((h.mean_us() - 5_000.5).abs() < 5.0, "mean {}", h.mean_us());

        let p = h.percentiles_ms();
        assert!((p.p50 - 5.0).abs() <= 0.005, "{p:?}");
        assert!((p.p99 - 9.9).abs() <= 0.010, "{p:?}");
        assert!((p.p999 - 9.99).abs() <= 0.010, "{p:?}");
        assert!((p.max - 10.0).abs() <= 0.010, "{p:?}");
        assert!((p.mean - 5.0).abs() <= 0.005, "{p:?}");
        assert_eq!(p.count, 10_000);
    }

    #[test]
    fn heavy_tail_is_kept() {
        // 990 fast ops of 2 ms and 10 slow ones of 5 s: p99 is fast, p99.9 is slow.
        let mut h = Histo::new();
        for _ in 0..990 {
            h.record(2_000);
        }
        for _ in 0..10 {
            h.record(5_000_000);
        }
        assert!(close(h.quantile_us(0.5), 2_000));
        assert!(close(h.quantile_us(0.99), 2_000));
        assert!(close(h.quantile_us(0.999), 5_000_000));
        assert!(close(h.max_us(), 5_000_000));
        let want_mean = (990.0 * 2_000.0 + 10.0 * 5_000_000.0) / 1000.0;
        assert!((h.mean_us() - want_mean).abs() / want_mean < 0.001);
    }

    #[test]
    fn merge_equals_recording_everything_in_one() {
        let mut a = Histo::new();
        let mut b = Histo::new();
        let mut all = Histo::new();
        for us in 1..=1_000u64 {
            a.record(us * 7);
            all.record(us * 7);
        }
        for us in 1..=500u64 {
            b.record(us * 1_000);
            all.record(us * 1_000);
        }
        a.merge(&b);
        assert_eq!(a.len(), 1_500);
        for q in [0.0, 0.1, 0.5, 0.9, 0.99, 1.0] {
            assert_eq!(a.quantile_us(q), all.quantile_us(q), "q={q}");
        }
        assert_eq!(a.max_us(), all.max_us());
        assert_eq!(a.percentiles_ms(), all.percentiles_ms());
    }

    #[test]
    fn serde_round_trip_keeps_every_statistic() {
        let mut h = Histo::new();
        for us in 1..=20_000u64 {
            h.record(us * us % 7_919_993 + 3);
        }
        h.record(0);
        h.record(u64::MAX);
        let json = serde_json::to_string(&h).unwrap();
        let back: Histo = serde_json::from_str(&json).unwrap();
        assert_eq!(back.len(), h.len());
        assert_eq!(back.max_us(), h.max_us());
        assert_eq!(back.mean_us().to_bits(), h.mean_us().to_bits());
        for q in [0.0, 0.1, 0.5, 0.9, 0.99, 0.999, 1.0] {
            assert_eq!(back.quantile_us(q), h.quantile_us(q), "q={q}");
        }
        assert_eq!(back.spectrum(), h.spectrum());
        assert_eq!(serde_json::to_string(&back).unwrap(), json);
    }

    #[test]
    fn zero_and_huge_values_are_recorded() {
        let mut h = Histo::new();
        h.record(0);
        h.record(u64::MAX);
        assert_eq!(h.len(), 2);
        assert_eq!(h.quantile_us(0.0), 0);
        assert!(close(h.max_us(), MAX_US));
    }

    #[test]
    fn spectrum_is_ascending_and_ends_at_the_max() {
        let mut h = Histo::new();
        for us in 1..=10_000 {
            h.record(us);
        }
        let s = h.spectrum();
        assert!(s.len() > 10);
        for w in s.windows(2) {
            assert!(w[0].0 <= w[1].0 && w[0].1 <= w[1].1, "{w:?}");
        }
        let (p, ms) = *s.last().unwrap();
        assert_eq!(p, 100.0);
        assert!((ms - 10.0).abs() <= 0.010);
    }
}
