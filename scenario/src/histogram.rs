//! Service times from a Prometheus-style histogram: bucket upper bounds (`le`) with counts,
//! sampled by linear interpolation within the bucket (the first bucket from 0), the `+Inf`
//! bucket's values drawn from a stated tail beyond the last finite bound.

use crate::ser;
use std::time::Duration;

/// The `+Inf` bucket's values: a histogram says only how many observations lie beyond its last
/// finite bound, so the scenario states how far beyond.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Tail {
    /// The last finite bound plus an exponential excess with this mean: the maximum-entropy
    /// choice when all one knows (or assumes) of the tail is its mean.
    Exp {
        /// The mean excess over the last finite bound (> 0).
        #[serde(with = "ser::dur")]
        mean: Duration,
    },
    /// Uniform between the last finite bound and `max`: for a tail bounded by a timeout.
    Uniform {
        /// The largest value (> the last finite bound).
        #[serde(with = "ser::dur")]
        max: Duration,
    },
}

/// A histogram of durations, validated: finite bounds strictly increasing and > 0, counts per
/// bucket (not cumulative) >= 0 with a positive total, a tail when the `+Inf` bucket counts.
#[derive(Debug, Clone, PartialEq)]
pub struct Histogram {
    /// The finite upper bounds, seconds, strictly increasing.
    pub le: Vec<f64>,
    /// Observations per bucket: one per finite bound, then the `+Inf` bucket's.
    pub counts: Vec<f64>,
    /// The `+Inf` bucket's values (required when its count is positive).
    pub tail: Option<Tail>,
}

impl serde::Serialize for Histogram {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        // Echoed inline, per bucket: what the run used, whatever the input's form.
        #[derive(serde::Serialize)]
        #[serde(untagged)]
        enum Le {
            Finite(f64),
            Inf(&'static str),
        }
        let mut le: Vec<Le> = self.le.iter().map(|&x| Le::Finite(x)).collect();
        le.push(Le::Inf("+Inf"));
        let mut st = s.serialize_struct("Histogram", 4)?;
        st.serialize_field("le", &le)?;
        st.serialize_field("counts", &self.counts)?;
        st.serialize_field("cumulative", &false)?;
        if let Some(t) = &self.tail {
            st.serialize_field("tail", t)?;
        }
        st.end()
    }
}

impl Histogram {
    /// Builds a histogram from `(bound, count)` rows in input order (`None` bound: `+Inf`,
    /// last only), counts cumulative or per bucket. The error is `(row index, message)`.
    pub fn from_rows(
        rows: &[(Option<f64>, f64)],
        cumulative: bool,
        tail: Option<Tail>,
    ) -> Result<Self, (usize, String)> {
        if rows.is_empty() {
            return Err((
                0,
                "no buckets (expected at least one `le` bound with a count)".into(),
            ));
        }
        let mut le = Vec::with_capacity(rows.len());
        let mut counts = Vec::with_capacity(rows.len() + 1);
        let mut prev_cum = 0.0;
        let mut inf = None;
        for (i, &(b, c)) in rows.iter().enumerate() {
            if !c.is_finite() || c < 0.0 {
                return Err((i, format!("expected a count >= 0, got {c}")));
            }
            if inf.is_some() {
                return Err((i, "a bucket after `+Inf` (it must be the last)".into()));
            }
            let per = if cumulative {
                if c < prev_cum {
                    return Err((
                        i,
                        format!(
                            "cumulative counts must not decrease, got {c} after {prev_cum} \
                             (per-bucket counts? set `cumulative = false`)"
                        ),
                    ));
                }
                let d = c - prev_cum;
                prev_cum = c;
                d
            } else {
                c
            };
            match b {
                None => inf = Some(per),
                Some(x) => {
                    if !x.is_finite() || x <= 0.0 {
                        return Err((i, format!("expected a bound > 0 seconds, got {x}")));
                    }
                    if let Some(&last) = le.last() {
                        if x <= last {
                            return Err((
                                i,
                                format!(
                                    "bounds must increase strictly, got {x} after {last} (sort \
                                     the buckets by `le`)"
                                ),
                            ));
                        }
                    }
                    if x > 30.0 * 86_400.0 {
                        return Err((i, "over the 30-day limit on any duration".into()));
                    }
                    le.push(x);
                    counts.push(per);
                }
            }
        }
        if le.is_empty() {
            return Err((
                0,
                "no finite bound (expected at least one before `+Inf`)".into(),
            ));
        }
        let inf = inf.unwrap_or(0.0);
        counts.push(inf);
        if counts.iter().sum::<f64>() <= 0.0 {
            return Err((
                0,
                "every count is zero (expected at least one observation)".into(),
            ));
        }
        let last = le[le.len() - 1];
        match tail {
            None if inf > 0.0 => {
                return Err((
                    rows.len() - 1,
                    format!(
                        "the `+Inf` bucket holds {inf} observations beyond {last} s: state their \
                         tail, `tail = {{ kind = \"exp\", mean = \"…\" }}` (the last bound plus an \
                         exponential excess) or `tail = {{ kind = \"uniform\", max = \"…\" }}`"
                    ),
                ))
            }
            Some(Tail::Uniform { max }) if max.as_secs_f64() <= last => {
                return Err((
                    rows.len() - 1,
                    format!("the tail's max must be above the last bound {last} s"),
                ))
            }
            _ => {}
        }
        Ok(Histogram { le, counts, tail })
    }

    /// Observations in all.
    pub fn observations(&self) -> f64 {
        self.counts.iter().sum()
    }

    /// The value (seconds) at probability `u` in (0, 1): linear within the bucket, the first
    /// from 0, the `+Inf` bucket by its tail.
    pub fn quantile(&self, u: f64) -> f64 {
        let total = self.observations();
        let target = u.clamp(0.0, 1.0) * total;
        let mut before = 0.0;
        let last = self.le[self.le.len() - 1];
        for (i, &c) in self.counts.iter().enumerate() {
            let is_tail = i == self.le.len();
            if c <= 0.0 || (target >= before + c && !is_tail) {
                before += c;
                continue;
            }
            let v = ((target - before) / c).clamp(0.0, 1.0);
            if is_tail {
                return match self.tail {
                    Some(Tail::Exp { mean }) => last - mean.as_secs_f64() * (1.0 - v).ln(),
                    Some(Tail::Uniform { max }) => last + (max.as_secs_f64() - last) * v,
                    None => last,
                };
            }
            let lo = if i == 0 { 0.0 } else { self.le[i - 1] };
            return lo + (self.le[i] - lo) * v;
        }
        // u at 1 with an empty `+Inf` bucket: the top of the last bucket with observations.
        last
    }

    /// The sampled distribution's mean (seconds): bucket midpoints, the tail's mean.
    pub fn mean(&self) -> f64 {
        let total = self.observations();
        let last = self.le[self.le.len() - 1];
        let mut sum = 0.0;
        for (i, &c) in self.counts.iter().enumerate() {
            let mid = if i == self.le.len() {
                match self.tail {
                    Some(Tail::Exp { mean }) => last + mean.as_secs_f64(),
                    Some(Tail::Uniform { max }) => (last + max.as_secs_f64()) / 2.0,
                    None => last,
                }
            } else {
                let lo = if i == 0 { 0.0 } else { self.le[i - 1] };
                (lo + self.le[i]) / 2.0
            };
            sum += c * mid;
        }
        sum / total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Prometheus's default buckets.
    const DEFAULT: [f64; 11] = [
        0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
    ];

    /// exp(1 s)'s expected counts in the default buckets (per bucket), the `+Inf` one last.
    fn exp1() -> Histogram {
        let cdf = |x: f64| 1.0 - (-x).exp();
        let mut rows: Vec<(Option<f64>, f64)> = DEFAULT
            .iter()
            .map(|&b| (Some(b), (cdf(b) * 1e6).round()))
            .collect();
        rows.push((None, 1e6));
        Histogram::from_rows(
            &rows,
            true,
            Some(Tail::Exp {
                mean: Duration::from_secs(1),
            }),
        )
        .unwrap()
    }

    #[test]
    fn interpolation_moves_the_mean_of_coarse_buckets() {
        let h = exp1();
        // Midpoints of the coarse upper buckets overstate exp(1 s)'s mean (1 s) by about 10%.
        let m = h.mean();
        assert!((m - 1.10).abs() < 0.01, "{m}");
        // The sampled mean agrees with the computed one.
        let n = 200_000;
        let s: f64 = (0..n)
            .map(|i| h.quantile((i as f64 + 0.5) / n as f64))
            .sum::<f64>()
            / n as f64;
        assert!((s - m).abs() < 0.002, "{s} vs {m}");
        // exp(1 s)'s p99 is 4.6 s: in the (2.5, 5] bucket.
        let p99 = h.quantile(0.99);
        assert!(p99 > 2.5 && p99 <= 5.0, "{p99}");
    }

    #[test]
    fn bad_rows_are_refused_with_their_index() {
        let e = |rows: &[(Option<f64>, f64)], cum| Histogram::from_rows(rows, cum, None).err();
        assert_eq!(e(&[], true).map(|x| x.0), Some(0));
        assert_eq!(
            e(&[(Some(1.0), 1.0), (Some(0.5), 2.0)], true).map(|x| x.0),
            Some(1)
        );
        assert_eq!(
            e(&[(Some(1.0), 5.0), (Some(2.0), 3.0)], true).map(|x| x.0),
            Some(1)
        );
        assert_eq!(e(&[(Some(1.0), -1.0)], false).map(|x| x.0), Some(0));
        assert!(e(&[(Some(1.0), 0.0)], false).is_some());
        // A `+Inf` bucket with observations needs a tail.
        assert_eq!(
            e(&[(Some(1.0), 1.0), (None, 2.0)], true).map(|x| x.0),
            Some(1)
        );
        assert!(e(&[(Some(1.0), 1.0), (None, 1.0)], true).is_none());
    }
}
