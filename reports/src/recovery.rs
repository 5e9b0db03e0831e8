//! The retry-research definitions — goodput, amplification, trigger, recovered, metastable —
//! as pure functions over per-bucket series, so that `run`, `compare`, `sweep` and the pages
//! judge a run the same way (docs/retry-research.md states them in words).
//!
//! - *goodput*: client requests answered successfully before the client gave up on them (by
//!   whichever attempt), per second;
//! - *amplification*: attempts sent / requests;
//! - *trigger*: the union of the scenario's fault windows and of the arrival schedule's phases
//!   whose rate is above the rate of the phase before the first trigger ([`triggers`]);
//! - *recovered*: from the end of the last trigger, the first time from which goodput /
//!   offered ≥ [`GOODPUT_RATIO`] and a sliding 60 s p99 ≤ [`P99_FACTOR`] × the pre-trigger p99
//!   hold for max(60 s, 5 buckets); the recovery time is that instant minus the trigger's end;
//! - *metastable*: not recovered by the end of the load phase although the offered load after
//!   the trigger is at or below its pre-trigger level — judged only when the load phase lasts
//!   at least [`JUDGED_AFTER`] × the trigger's length after it (else `None`, written `null`).
//!
//! Poisson noise: the goodput condition is a ratio of sums over the whole hold window (not a
//! per-bucket ratio, which at a few requests per bucket would flap), the p99 is taken over 60 s
//! windows, and "at or below the pre-trigger level" allows three standard deviations of the two
//! measured Poisson rates. The tests run calm synthetic series on many seeds.

/// Goodput / offered at or above which a window counts as recovered.
pub const GOODPUT_RATIO: f64 = 0.9;
/// A window's p99 must be at most this many times the pre-trigger p99.
pub const P99_FACTOR: f64 = 1.5;
/// The sliding p99's window and the shortest hold (seconds).
pub const WINDOW_S: f64 = 60.0;
/// The shortest hold, in buckets.
pub const MIN_HOLD_BUCKETS: usize = 5;
/// Metastability is judged only when the load phase lasts at least this many trigger lengths
/// after the trigger.
pub const JUDGED_AFTER: f64 = 10.0;

/// A span of simulated time, `(start_s, end_s)`.
pub type Window = (f64, f64);

/// The union of `windows`: sorted, overlapping or touching spans merged, empty or non-finite
/// ones dropped.
pub fn union(windows: &[Window]) -> Vec<Window> {
    let mut w: Vec<Window> = windows
        .iter()
        .copied()
        .filter(|(a, b)| a.is_finite() && b.is_finite() && b > a)
        .collect();
    w.sort_by(|x, y| x.0.total_cmp(&y.0).then(x.1.total_cmp(&y.1)));
    let mut out: Vec<Window> = Vec::with_capacity(w.len());
    for (a, b) in w {
        match out.last_mut() {
            Some(last) if a <= last.1 => last.1 = last.1.max(b),
            _ => out.push((a, b)),
        }
    }
    out
}

/// One phase of an arrival schedule: `(start_s, end_s, rate_per_s)`, in time order.
pub type Phase = (f64, f64, f64);

/// The trigger: the union of the fault windows and of the schedule's phases whose rate is above
/// the *pre-trigger rate* — the rate of the phase in effect just before the first trigger (the
/// earlier of the first fault and the first phase whose rate rises above its predecessor's),
/// from the first trigger on.
/// Everything is cut at `load_end_s` (faults heal there, arrivals stop).
pub fn triggers(faults: &[Window], phases: &[Phase], load_end_s: f64) -> Vec<Window> {
    let mut all: Vec<Window> = faults
        .iter()
        .map(|&(a, b)| (a, b.min(load_end_s)))
        .collect();
    let fault_start = union(faults).first().map(|w| w.0);
    let rise = phases.windows(2).find(|p| p[1].2 > p[0].2).map(|p| p[1].0);
    let first = match (fault_start, rise) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    if let (Some(t0), Some(p0)) = (first, phases.first()) {
        // The phase in effect just before t0 (the first phase when t0 is its start).
        let base = phases.iter().rev().find(|p| p.0 < t0).map_or(p0.2, |p| p.2);
        all.extend(
            phases
                .iter()
                // Phases before the first trigger are not triggers, whatever their rate.
                .filter(|p| p.2 > base && p.1 > t0)
                .map(|p| (p.0.max(t0), p.1.min(load_end_s))),
        );
    }
    union(&all)
}

/// The p99 latency (ms) of what a run measured over a range of buckets; `None` when nothing was
/// measured there. Whatever keeps latencies per bucket (mergeable histograms) implements it.
pub trait WindowP99 {
    /// The p99 (ms) of the latencies recorded in buckets `from .. to`.
    fn p99_ms(&self, from: usize, to: usize) -> Option<f64>;
}

/// One seed's (or several seeds' merged) per-bucket series: bucket `i` covers
/// `[i × width_s, (i + 1) × width_s)` of simulated time.
pub struct Series<'a> {
    /// Bucket width, seconds.
    pub width_s: f64,
    /// Requests offered (first attempts) per bucket.
    pub offered: &'a [u64],
    /// Requests answered successfully before the client gave up, per bucket.
    pub good: &'a [u64],
    /// Latencies over bucket ranges.
    pub latency: &'a dyn WindowP99,
}

/// What the definitions say about one run.
#[derive(Debug, Clone, PartialEq)]
pub struct Judgement {
    /// The trigger windows (empty: a calm run).
    pub trigger: Vec<Window>,
    /// Seconds from the trigger's end to recovery; `None` without a trigger, or when the run did
    /// not recover within its load phase.
    pub recovery_s: Option<f64>,
    /// `Some(true)` stuck, `Some(false)` not, `None` not judged (see the module doc); a calm run
    /// is `Some(false)`.
    pub metastable: Option<bool>,
}

impl Judgement {
    /// True when a trigger came and went without recovery within the load phase.
    pub fn unrecovered(&self) -> bool {
        !self.trigger.is_empty() && self.recovery_s.is_none()
    }
}

/// Judges `series` against `trigger` (see [`triggers`]), measuring from `warmup_s` and up to
/// `load_end_s` (the end of the load phase).
pub fn judge(series: &Series<'_>, trigger: &[Window], warmup_s: f64, load_end_s: f64) -> Judgement {
    let trigger = union(trigger);
    let (Some(first), Some(last)) = (trigger.first(), trigger.last()) else {
        return Judgement {
            trigger,
            recovery_s: None,
            metastable: Some(false),
        };
    };
    let (t0, t_end) = (first.0, last.1);
    let w = series.width_s.max(1e-9);
    let n_buckets = series.offered.len().min(series.good.len());
    // Buckets wholly inside the load phase.
    let in_load = ((load_end_s / w + 1e-9).floor() as usize).min(n_buckets);
    let hold = ((WINDOW_S / w - 1e-9).ceil() as usize).max(MIN_HOLD_BUCKETS);
    let window = ((WINDOW_S / w - 1e-9).ceil() as usize).clamp(1, hold);
    // Pre-trigger: the whole buckets from the end of the warm-up to the trigger's start.
    let pre_from = ((warmup_s / w - 1e-9).ceil().max(0.0)) as usize;
    let pre_to = ((t0 / w + 1e-9).floor().max(0.0) as usize).min(in_load);
    let pre_p99 = if pre_to > pre_from {
        series.latency.p99_ms(pre_from, pre_to)
    } else {
        None
    };
    let first_after = ((t_end / w - 1e-9).ceil().max(0.0)) as usize;
    let holds = |k: usize| -> bool {
        let offered: u64 = series.offered[k..k + hold].iter().sum();
        let good: u64 = series.good[k..k + hold].iter().sum();
        if offered > 0 && (good as f64) < GOODPUT_RATIO * offered as f64 {
            return false;
        }
        let Some(limit) = pre_p99.map(|p| p * P99_FACTOR) else {
            // Without a pre-trigger p99 only goodput is judged.
            return true;
        };
        (k..=k + hold - window).all(|j| {
            series
                .latency
                .p99_ms(j, j + window)
                .is_none_or(|p| p <= limit)
        })
    };
    let recovered_at =
        (first_after..in_load.saturating_sub(hold - 1)).find(|&k| k + hold <= in_load && holds(k));
    let recovery_s = recovered_at.map(|k| (k as f64 * w - t_end).max(0.0));
    let judged = load_end_s - t_end >= JUDGED_AFTER * (t_end - t0);
    let metastable = if !judged {
        None
    } else if recovery_s.is_some() {
        Some(false)
    } else {
        let rate = |from: usize, to: usize| -> Option<(f64, f64)> {
            (to > from).then(|| {
                let n: u64 = series.offered[from..to].iter().sum();
                (n as f64, (to - from) as f64 * w)
            })
        };
        match (
            rate(pre_from, pre_to),
            rate(first_after.min(in_load), in_load),
        ) {
            (Some((n0, s0)), Some((n1, s1))) => {
                // At or below the pre-trigger rate, allowing three standard deviations of each
                // measured Poisson rate.
                let slack = 3.0 * (n0.sqrt() / s0 + n1.max(1.0).sqrt() / s1);
                Some(n1 / s1 <= n0 / s0 + slack)
            }
            // No pre-trigger or post-trigger load measured: the comparison cannot be made.
            _ => None,
        }
    };
    Judgement {
        trigger,
        recovery_s,
        metastable,
    }
}

/// A finished timeline's end-to-end latency bins, read as windows of buckets.
struct Buckets<'a>(&'a [crate::timeline::Bucket]);

impl WindowP99 for Buckets<'_> {
    fn p99_ms(&self, from: usize, to: usize) -> Option<f64> {
        let mut bins = crate::bins::LatencyBins::new();
        for b in self.0.get(from..to.min(self.0.len()))? {
            bins.merge(&b.e2e);
        }
        bins.quantile_us(0.99).map(|us| us as f64 / 1000.0)
    }
}

/// [`judge`] on a finished [`Timeline`](crate::Timeline) (one seed's, or several seeds' merged:
/// their counts add up): requests offered, goodput and the end-to-end latency of the goodput
/// per bucket.
pub fn judge_timeline(
    t: &crate::Timeline,
    trigger: &[Window],
    warmup_s: f64,
    load_end_s: f64,
) -> Judgement {
    let buckets = t.buckets();
    let offered: Vec<u64> = buckets.iter().map(|b| b.offered).collect();
    let good: Vec<u64> = buckets.iter().map(|b| b.goodput).collect();
    let series = Series {
        width_s: t.width_us() as f64 / 1e6,
        offered: &offered,
        good: &good,
        latency: &Buckets(buckets),
    };
    judge(&series, trigger, warmup_s, load_end_s)
}

/// `recovery_s` of a row of seeds (compare's and sweep's).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct RowRecovery {
    /// Median recovery time of the seeds that recovered, s (`null`: none did, or no trigger).
    pub median: Option<f64>,
    /// The longest recovery time of the seeds that recovered, s.
    pub max: Option<f64>,
    /// Seeds in which a trigger came and the run did not recover within its load phase.
    pub unrecovered_seeds: u64,
}

impl RowRecovery {
    /// Over the seeds' judgements: the recovery times of the seeds that recovered (to the ms)
    /// and the count of those that did not.
    pub fn of(seeds: &[&Judgement]) -> Self {
        let mut rec: Vec<f64> = seeds.iter().filter_map(|j| j.recovery_s).collect();
        let sec = |x: f64| crate::round::decimals(x, 3);
        let max = rec.iter().copied().reduce(f64::max).map(sec);
        RowRecovery {
            median: median(&mut rec).map(sec),
            max,
            unrecovered_seeds: seeds.iter().filter(|j| j.unrecovered()).count() as u64,
        }
    }
}

impl RowRecovery {
    /// For a table: the median (with the count of seeds that never recovered), `never`, or `-`
    /// (no trigger).
    pub fn text(&self) -> String {
        match (self.median, self.unrecovered_seeds) {
            (Some(m), 0) => crate::human::secs(m),
            (Some(m), u) => format!("{} ({u} no)", crate::human::secs(m)),
            (None, 0) => "-".into(),
            (None, _) => "never".into(),
        }
    }
}

/// A row's `metastable` for a table: `yes 3/5` (stuck seeds of all), `no 0/5`, `not judged`.
pub fn metastable_text(metastable: Option<bool>, stuck: u64, seeds: u64) -> String {
    match metastable {
        Some(b) => format!("{} {stuck}/{seeds}", if b { "yes" } else { "no" }),
        None => "not judged".into(),
    }
}

fn median(xs: &mut [f64]) -> Option<f64> {
    if xs.is_empty() {
        return None;
    }
    xs.sort_by(f64::total_cmp);
    let n = xs.len();
    Some(if n % 2 == 1 {
        xs[n / 2]
    } else {
        (xs[n / 2 - 1] + xs[n / 2]) / 2.0
    })
}

/// A row's `metastable`: `true` when most of its seeds are stuck; `None` when some seed was
/// not judged.
pub fn row_metastable(seeds: &[&Judgement]) -> Option<bool> {
    let judged: Option<Vec<bool>> = seeds.iter().map(|j| j.metastable).collect();
    judged.map(|j| 2 * j.iter().filter(|&&b| b).count() > j.len())
}

/// The seeds judged stuck (metastable).
pub fn stuck_seeds(seeds: &[&Judgement]) -> u64 {
    seeds.iter().filter(|j| j.metastable == Some(true)).count() as u64
}

/// `attempts / requests` (1 without requests).
pub fn amplification(attempts: u64, requests: u64) -> f64 {
    if requests == 0 {
        1.0
    } else {
        attempts as f64 / requests as f64
    }
}

/// Goodput per second: `good` requests over `seconds` of load (0 over no time).
pub fn goodput_per_s(good: u64, seconds: f64) -> f64 {
    if seconds > 0.0 {
        good as f64 / seconds
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Latencies as one p99 per bucket, the window's p99 their maximum (a stand-in for merged
    /// histograms that errs on the side of flagging).
    struct PerBucket(Vec<Option<f64>>);
    impl WindowP99 for PerBucket {
        fn p99_ms(&self, from: usize, to: usize) -> Option<f64> {
            self.0[from..to.min(self.0.len())]
                .iter()
                .flatten()
                .copied()
                .reduce(f64::max)
        }
    }

    /// splitmix64: deterministic noise for the synthetic runs.
    fn mix(mut z: u64) -> u64 {
        z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn unit(seed: u64, i: u64) -> f64 {
        (mix(seed.wrapping_mul(1_000_003).wrapping_add(i)) >> 11) as f64 / (1u64 << 53) as f64
    }

    /// A Poisson count of mean `mean` (Knuth's method; means here are small).
    fn poisson(seed: u64, i: u64, mean: f64) -> u64 {
        let l = (-mean).exp();
        let (mut k, mut p) = (0u64, 1.0);
        loop {
            p *= unit(seed, i * 64 + k);
            if p <= l || k > 1_000 {
                return k;
            }
            k += 1;
        }
    }

    /// A synthetic run of `n` buckets of `w` s at `rate`/s: in the buckets of `stuck` only
    /// `stuck_good` of the requests succeed and latency is 10×; otherwise all succeed (each
    /// independently lost with 1% chance) with a noisy p99 around 500 ms.
    fn run(
        seed: u64,
        n: usize,
        w: f64,
        rate: f64,
        stuck: std::ops::Range<usize>,
        stuck_good: f64,
    ) -> (Vec<u64>, Vec<u64>, PerBucket) {
        let mut offered = Vec::new();
        let mut good = Vec::new();
        let mut p99 = Vec::new();
        for i in 0..n {
            let o = poisson(seed, i as u64, rate * w);
            let frac = if stuck.contains(&i) { stuck_good } else { 0.99 };
            let g = (0..o)
                .filter(|j| unit(seed ^ 0xabc, (i as u64) << 20 | j) < frac)
                .count() as u64;
            offered.push(o);
            good.push(g);
            let noise = 1.0 + 0.25 * (unit(seed ^ 0x77, i as u64) - 0.5);
            let base = if stuck.contains(&i) { 5_000.0 } else { 500.0 };
            p99.push((o > 0).then_some(base * noise));
        }
        (offered, good, PerBucket(p99))
    }

    #[test]
    fn union_merges_overlaps_and_drops_empty_spans() {
        let u = union(&[
            (5.0, 6.0),
            (1.0, 2.0),
            (1.5, 3.0),
            (3.0, 4.0),
            (7.0, 7.0),
            (f64::NAN, 1.0),
        ]);
        assert_eq!(u, vec![(1.0, 4.0), (5.0, 6.0)]);
        assert!(union(&[]).is_empty());
    }

    #[test]
    fn the_trigger_is_faults_and_phases_above_the_pre_trigger_rate() {
        // 10/s, then a spike to 30/s for 20 s, back to 10/s, a second spike to 12/s.
        let phases = [
            (0.0, 300.0, 10.0),
            (300.0, 320.0, 30.0),
            (320.0, 500.0, 10.0),
            (500.0, 510.0, 12.0),
            (510.0, 600.0, 10.0),
        ];
        assert_eq!(
            triggers(&[], &phases, 600.0),
            vec![(300.0, 320.0), (500.0, 510.0)]
        );
        // A fault before the spike: the pre-trigger rate is the rate when the fault began.
        assert_eq!(
            triggers(&[(100.0, 130.0)], &phases, 600.0),
            vec![(100.0, 130.0), (300.0, 320.0), (500.0, 510.0)]
        );
        // A ramp down is no trigger; a fault alone is; everything is cut at the load's end.
        let down = [(0.0, 100.0, 20.0), (100.0, 200.0, 10.0)];
        assert!(triggers(&[], &down, 200.0).is_empty());
        assert_eq!(
            triggers(&[(150.0, 900.0)], &down, 200.0),
            vec![(150.0, 200.0)]
        );
        // A fault during the high first phase: phases above 20/s only (none).
        assert_eq!(triggers(&[(50.0, 60.0)], &down, 200.0), vec![(50.0, 60.0)]);
        assert!(triggers(&[], &[], 100.0).is_empty());
    }

    #[test]
    fn a_calm_run_is_never_flagged() {
        // No trigger at all, on many seeds: never metastable.
        for seed in 0..50 {
            let (o, g, l) = run(seed, 300, 4.0, 12.0, 0..0, 0.99);
            let s = Series {
                width_s: 4.0,
                offered: &o,
                good: &g,
                latency: &l,
            };
            let j = judge(&s, &[], 60.0, 1_200.0);
            assert_eq!(j.metastable, Some(false));
            assert_eq!(j.recovery_s, None);
            // A zero-effect "trigger" (a fault that hurt nothing): recovered at once, never stuck.
            let j = judge(&s, &[(300.0, 310.0)], 60.0, 1_200.0);
            assert_eq!(j.metastable, Some(false), "seed {seed}: {j:?}");
            let r = j.recovery_s.expect("a calm run recovers");
            assert!(r <= 2.0 * 4.0, "seed {seed}: recovery {r} s in a calm run");
        }
        // At a low rate (1/s, 4 requests a bucket) too.
        for seed in 0..50 {
            let (o, g, l) = run(seed, 300, 4.0, 1.0, 0..0, 0.99);
            let s = Series {
                width_s: 4.0,
                offered: &o,
                good: &g,
                latency: &l,
            };
            let j = judge(&s, &[(300.0, 310.0)], 60.0, 1_200.0);
            assert_eq!(j.metastable, Some(false), "seed {seed}: {j:?}");
        }
    }

    #[test]
    fn seeds_agree_on_recovery_within_a_few_buckets() {
        // Stuck for 40 buckets after a 10 s trigger at 300 s (buckets 75..77), then well.
        let mut seen = Vec::new();
        for seed in 0..20 {
            let (o, g, l) = run(seed, 300, 4.0, 12.0, 75..117, 0.3);
            let s = Series {
                width_s: 4.0,
                offered: &o,
                good: &g,
                latency: &l,
            };
            let j = judge(&s, &[(300.0, 310.0)], 60.0, 1_200.0);
            assert_eq!(j.metastable, Some(false), "seed {seed}");
            seen.push(j.recovery_s.expect("recovers"));
        }
        let lo = seen.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = seen.iter().copied().fold(0.0, f64::max);
        // Healthy from 468 s on: recovery 158 s after the trigger's end.
        assert!((lo - 158.0).abs() <= 8.0, "{seen:?}");
        assert!(hi - lo <= 3.0 * 4.0, "seeds disagree: {seen:?}");
    }

    #[test]
    fn stuck_until_the_end_is_metastable_unless_the_load_went_up() {
        let (o, g, l) = run(1, 300, 4.0, 12.0, 75..300, 0.3);
        let s = Series {
            width_s: 4.0,
            offered: &o,
            good: &g,
            latency: &l,
        };
        let j = judge(&s, &[(300.0, 310.0)], 60.0, 1_200.0);
        assert_eq!((j.recovery_s, j.metastable), (None, Some(true)));
        assert!(j.unrecovered());
        // The same trigger lasting 200 s: 690 s after it is less than 10 × 200 s: not judged.
        let j = judge(&s, &[(300.0, 510.0)], 60.0, 1_200.0);
        assert_eq!(j.metastable, None);
        // Offered load doubled after the trigger: overload, not metastability.
        let (mut o2, g2, l2) = run(1, 300, 4.0, 12.0, 75..300, 0.3);
        for x in &mut o2[78..] {
            *x *= 2;
        }
        let s = Series {
            width_s: 4.0,
            offered: &o2,
            good: &g2,
            latency: &l2,
        };
        assert_eq!(
            judge(&s, &[(300.0, 310.0)], 60.0, 1_200.0).metastable,
            Some(false)
        );
    }

    #[test]
    fn latency_alone_can_hold_recovery_back() {
        // Every request succeeds, but latency stays 10× after the trigger: not recovered.
        let (o, g, mut l) = run(2, 300, 4.0, 12.0, 0..0, 0.99);
        for p in &mut l.0[76..] {
            *p = Some(5_000.0);
        }
        let s = Series {
            width_s: 4.0,
            offered: &o,
            good: &g,
            latency: &l,
        };
        let j = judge(&s, &[(300.0, 304.0)], 60.0, 1_200.0);
        assert_eq!((j.recovery_s, j.metastable), (None, Some(true)));
    }

    #[test]
    fn ratios() {
        assert_eq!(amplification(0, 0), 1.0);
        assert_eq!(amplification(30, 10), 3.0);
        assert_eq!(goodput_per_s(120, 60.0), 2.0);
        assert_eq!(goodput_per_s(1, 0.0), 0.0);
    }
}
