//! Occupancy over time in bounded memory: busy pool workers, busy RPC slots and backlog
//! occupancy summed over the conductors, retries, and the client's view (requests offered,
//! goodput, attempts, gave-ups, attempts in flight, per-attempt and end-to-end latency with a
//! small latency histogram per bucket), in at most [`MAX_BUCKETS`] time buckets.
//!
//! Buckets start [`BASE_WIDTH_US`] (2¹³ µs, about 8 ms) wide from simulated time 0. When the run reaches past the
//! last bucket, adjacent pairs merge and the width doubles (adaptive coarsening), so a
//! 30-day run costs the same memory as a one-minute one. Widths are always `BASE_WIDTH_US ×
//! 2^k`, so two timelines (two seeds, two shards) can always be brought to the coarser of the
//! two widths and added bucket by bucket.
//!
//! Every accumulator is an integer (value × µs areas in `u128`, µs, counts): merging is exact
//! and does not depend on the order of the seeds, which keeps merged shards byte-identical to
//! one run.

use serde::{Deserialize, Serialize};

use crate::bins::LatencyBins;

/// The most buckets a timeline holds.
pub const MAX_BUCKETS: usize = 512;

/// The width of a bucket before any coarsening (µs): 2¹³ µs ≈ 8.2 ms. A power of two, so that
/// finding an event's bucket is a shift, not a division (it runs several times per op).
pub const BASE_WIDTH_US: u64 = 1 << BASE_SHIFT;

/// `log2(BASE_WIDTH_US)`.
const BASE_SHIFT: u32 = 13;

/// One time bucket, `[i × width, (i + 1) × width)`. Areas are value × µs; `covered_us` is how
/// much simulated time (summed over seeds) the bucket saw.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bucket {
    /// Simulated µs covered, summed over merged seeds.
    pub covered_us: u64,
    /// Busy pool workers × µs.
    pub pool_area: u128,
    /// The most pool workers busy at once.
    pub pool_max: u32,
    /// Busy RPC slots × µs.
    pub rpc_area: u128,
    /// The most RPC slots busy at once.
    pub rpc_max: u32,
    /// Messages waiting in the backlogs × µs (each message's wait spread over the buckets it
    /// spans, attributed when an RPC slot takes it).
    pub backlog_area: u128,
    /// Retry attempts (the client's retries and the conductors' re-queues).
    pub retries: u64,
    /// Requests offered: first attempts the client sent.
    #[serde(default)]
    pub offered: u64,
    /// Attempts the client sent, first attempts included.
    #[serde(default)]
    pub attempts: u64,
    /// Goodput: requests answered successfully before the client gave up on them, by whichever
    /// attempt, counted when the success came.
    #[serde(default)]
    pub goodput: u64,
    /// Requests the client gave up on (its attempts, budget, throttle or breaker refused
    /// another), counted when it gave up.
    #[serde(default)]
    pub gave_up: u64,
    /// Client attempts in flight × µs.
    #[serde(default)]
    pub inflight_area: u128,
    /// The most client attempts in flight at once.
    #[serde(default)]
    pub inflight_max: u32,
    /// Attempts that ended here (answered, timed out or undelivered).
    #[serde(default)]
    pub attempt_n: u64,
    /// Their latencies summed, from the attempt's send to its end, µs.
    #[serde(default)]
    pub attempt_us: u128,
    /// End-to-end latencies of the goodput counted here summed (µs, from the request's intended
    /// time to its success); their count is `e2e.len()`.
    #[serde(default)]
    pub e2e_us: u128,
    /// The end-to-end latencies of the goodput counted here, binned (for windowed percentiles).
    #[serde(default)]
    pub e2e: LatencyBins,
}

impl Bucket {
    /// Adds `other` (the next bucket in time, or the same bucket of another seed): sums add
    /// up, maxima take the larger.
    fn add(&mut self, other: &Bucket) {
        self.covered_us += other.covered_us;
        self.pool_area += other.pool_area;
        self.pool_max = self.pool_max.max(other.pool_max);
        self.rpc_area += other.rpc_area;
        self.rpc_max = self.rpc_max.max(other.rpc_max);
        self.backlog_area += other.backlog_area;
        self.retries += other.retries;
        self.offered += other.offered;
        self.attempts += other.attempts;
        self.goodput += other.goodput;
        self.gave_up += other.gave_up;
        self.inflight_area += other.inflight_area;
        self.inflight_max = self.inflight_max.max(other.inflight_max);
        self.attempt_n += other.attempt_n;
        self.attempt_us += other.attempt_us;
        self.e2e_us += other.e2e_us;
        self.e2e.merge(&other.e2e);
    }
}

/// A piecewise-constant total over the conductors, integrated into the buckets.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Total {
    /// Each conductor's current value; the total is their sum.
    per_conductor: Vec<u32>,
    total: u32,
    /// Integrated up to here (µs).
    last_us: u64,
}

/// The occupancy of one run (or of several seeds merged), in bounded memory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timeline {
    width_us: u64,
    /// `log2(width_us)`.
    shift: u32,
    /// `MAX_BUCKETS × width_us`: a time at or past it needs coarsening.
    limit_us: u64,
    /// The latest time any series reached (µs).
    end_us: u64,
    /// Seeds merged into this timeline.
    seeds: u32,
    buckets: Vec<Bucket>,
    pool: Total,
    rpc: Total,
    /// Client attempts in flight (one entry per client instance).
    #[serde(default)]
    inflight: Total,
}

/// One row of a finished timeline, for plots and CSV: means are time-weighted over the
/// bucket and over the seeds that covered it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    /// Bucket start, simulated seconds.
    pub start_s: f64,
    /// Bucket end, simulated seconds.
    pub end_s: f64,
    /// Mean busy pool workers (summed over conductors).
    pub pool_mean: f64,
    /// Most pool workers busy at once in any seed.
    pub pool_max: u32,
    /// Mean busy RPC slots (summed over conductors).
    pub rpc_mean: f64,
    /// Most RPC slots busy at once in any seed.
    pub rpc_max: u32,
    /// Mean number of messages waiting in the backlogs.
    pub backlog_mean: f64,
    /// Retry attempts per simulated second (averaged over seeds).
    pub retries_per_s: f64,
    /// Requests offered (first attempts sent) per second.
    pub offered_per_s: f64,
    /// Goodput per second: requests answered successfully before the client gave up on them.
    pub goodput_per_s: f64,
    /// Client attempts sent per second, first attempts included.
    pub attempts_per_s: f64,
    /// Requests given up per second.
    pub gave_up_per_s: f64,
    /// Mean client attempts in flight.
    pub inflight_mean: f64,
    /// Most client attempts in flight at once in any seed.
    pub inflight_max: u32,
    /// Mean latency of the attempts that ended in the bucket, ms (0 when none).
    pub attempt_ms_mean: f64,
    /// Mean end-to-end latency of the goodput of the bucket, ms (0 when none).
    pub e2e_ms_mean: f64,
    /// p99 end-to-end latency of the goodput of the bucket, ms (0 when none).
    pub e2e_p99_ms: f64,
}

#[derive(Clone, Copy)]
enum Which {
    Pool,
    Rpc,
    Inflight,
}

impl Default for Timeline {
    fn default() -> Self {
        Timeline::new()
    }
}

impl Timeline {
    /// An empty timeline of one seed.
    pub fn new() -> Self {
        Timeline {
            width_us: BASE_WIDTH_US,
            shift: BASE_SHIFT,
            limit_us: BASE_WIDTH_US * MAX_BUCKETS as u64,
            end_us: 0,
            seeds: 1,
            buckets: Vec::new(),
            pool: Total::default(),
            rpc: Total::default(),
            inflight: Total::default(),
        }
    }

    /// The current bucket width (µs).
    pub fn width_us(&self) -> u64 {
        self.width_us
    }

    /// The number of buckets in use (at most [`MAX_BUCKETS`]).
    pub fn len(&self) -> usize {
        self.buckets.len()
    }

    /// True when nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.buckets.is_empty()
    }

    /// Seeds merged into this timeline.
    pub fn seeds(&self) -> u32 {
        self.seeds
    }

    /// Conductor `conductor`'s busy pool workers became `busy` at `t_us`.
    pub fn pool_set(&mut self, t_us: u64, conductor: usize, busy: u32) {
        self.set(Which::Pool, t_us, conductor, busy);
    }

    /// Conductor `conductor`'s busy RPC slots became `busy` at `t_us`.
    pub fn rpc_set(&mut self, t_us: u64, conductor: usize, busy: u32) {
        self.set(Which::Rpc, t_us, conductor, busy);
    }

    /// A message taken from a backlog at `t_us` had waited `wait_us`: it occupied the backlog
    /// over `[t_us − wait_us, t_us)`.
    pub fn backlog_wait(&mut self, t_us: u64, wait_us: u64) {
        self.reach(t_us);
        let from = t_us.saturating_sub(wait_us);
        self.spread(from, t_us, |b, dt| b.backlog_area += u128::from(dt));
    }

    /// One retry attempt at `t_us`.
    pub fn retry(&mut self, t_us: u64) {
        self.reach(t_us);
        let i = self.index(t_us);
        self.bucket(i).retries += 1;
    }

    /// The client sent an attempt at `t_us` (`first`: a new request, counted as offered).
    pub fn attempt_sent(&mut self, t_us: u64, first: bool) {
        self.reach(t_us);
        let i = self.index(t_us);
        let b = self.bucket(i);
        b.attempts += 1;
        b.offered += u64::from(first);
    }

    /// A client attempt sent at `sent_us` ended at `t_us` (answered, timed out, undelivered).
    pub fn attempt_ended(&mut self, t_us: u64, sent_us: u64) {
        self.reach(t_us);
        let i = self.index(t_us);
        let b = self.bucket(i);
        b.attempt_n += 1;
        b.attempt_us += u128::from(t_us.saturating_sub(sent_us));
    }

    /// A request intended at `intended_us` succeeded at `t_us`, before the client gave up.
    pub fn goodput(&mut self, t_us: u64, intended_us: u64) {
        self.reach(t_us);
        let i = self.index(t_us);
        let b = self.bucket(i);
        let us = t_us.saturating_sub(intended_us);
        b.goodput += 1;
        b.e2e_us += u128::from(us);
        b.e2e.record(us);
    }

    /// The client gave a request up at `t_us`.
    pub fn gave_up(&mut self, t_us: u64) {
        self.reach(t_us);
        let i = self.index(t_us);
        self.bucket(i).gave_up += 1;
    }

    /// Client instance `client`'s attempts in flight became `n` at `t_us`.
    pub fn inflight_set(&mut self, t_us: u64, client: usize, n: u32) {
        self.set(Which::Inflight, t_us, client, n);
    }

    /// The `q` quantile (0..=1) of the end-to-end latency, ms, of the goodput counted in the
    /// buckets that start in `[from_s, to_s)` (simulated seconds), seeds merged: e.g. a sliding
    /// 60 s p99 is `e2e_quantile_ms(t − 60, t, 0.99)`. `None` when no goodput fell there. The
    /// window is rounded to whole buckets ([`width_us`](Timeline::width_us)).
    pub fn e2e_quantile_ms(&self, from_s: f64, to_s: f64, q: f64) -> Option<f64> {
        let w = self.width_us as f64 / 1e6;
        let mut bins = LatencyBins::new();
        for (i, b) in self.buckets.iter().enumerate() {
            let start = i as f64 * w;
            if start >= from_s && start < to_s {
                bins.merge(&b.e2e);
            }
        }
        bins.quantile_us(q).map(|us| us as f64 / 1000.0)
    }

    /// The finished buckets themselves, in time order (bucket `i` covers
    /// `[i × width_us, (i + 1) × width_us)`): the raw integer counts behind
    /// [`samples`](Timeline::samples).
    pub fn buckets(&self) -> &[Bucket] {
        &self.buckets
    }

    /// Integrates every level up to `end_us` and closes the timeline there.
    pub fn finish(&mut self, end_us: u64) {
        self.reach(end_us);
        self.integrate(Which::Pool, end_us);
        self.integrate(Which::Rpc, end_us);
        self.integrate(Which::Inflight, end_us);
        // Coverage is the part of each bucket before the end: set once, at the end, so that
        // backlog and retries (which have no level of their own) share it.
        let w = self.width_us;
        let n = if end_us == 0 {
            0
        } else {
            (((end_us - 1) >> self.shift) as usize + 1).min(MAX_BUCKETS)
        };
        while self.buckets.len() < n {
            self.buckets.push(Bucket::default());
        }
        let last = self.buckets.len().saturating_sub(1);
        for (i, b) in self.buckets.iter_mut().enumerate() {
            let start = i as u64 * w;
            let cap = if i == last && i == MAX_BUCKETS - 1 {
                u64::MAX
            } else {
                w
            };
            b.covered_us = end_us.saturating_sub(start).min(cap);
        }
    }

    /// Adds `other` (another seed's finished timeline) to this one: both are brought to the
    /// coarser width, then areas, coverage and retries add up and maxima take the larger.
    pub fn merge(&mut self, other: &Timeline) {
        let mut other = other.clone();
        while other.width_us < self.width_us {
            other.coarsen();
        }
        while self.width_us < other.width_us {
            self.coarsen();
        }
        if self.buckets.len() < other.buckets.len() {
            self.buckets.resize(other.buckets.len(), Bucket::default());
        }
        for (a, b) in self.buckets.iter_mut().zip(&other.buckets) {
            a.add(b);
        }
        self.end_us = self.end_us.max(other.end_us);
        self.seeds += other.seeds;
        // A merged timeline is finished: the live per-conductor values mean nothing any more,
        // and dropping them keeps merging independent of the order of the seeds.
        self.pool = Total::default();
        self.rpc = Total::default();
        self.inflight = Total::default();
    }

    /// The buckets as samples, in time order (empty until [`finish`](Timeline::finish)).
    pub fn samples(&self) -> Vec<Sample> {
        let w = self.width_us;
        self.buckets
            .iter()
            .enumerate()
            .filter(|(_, b)| b.covered_us > 0)
            .map(|(i, b)| {
                let cov = b.covered_us as f64;
                let start = i as u64 * w;
                // Time per seed covered by the bucket, for the retry rate averaged over seeds.
                let per_seed_s = cov / 1e6;
                Sample {
                    start_s: start as f64 / 1e6,
                    end_s: (start + w).min(self.end_us.max(start)) as f64 / 1e6,
                    pool_mean: b.pool_area as f64 / cov,
                    pool_max: b.pool_max,
                    rpc_mean: b.rpc_area as f64 / cov,
                    rpc_max: b.rpc_max,
                    backlog_mean: b.backlog_area as f64 / cov,
                    retries_per_s: b.retries as f64 / per_seed_s,
                    offered_per_s: b.offered as f64 / per_seed_s,
                    goodput_per_s: b.goodput as f64 / per_seed_s,
                    attempts_per_s: b.attempts as f64 / per_seed_s,
                    gave_up_per_s: b.gave_up as f64 / per_seed_s,
                    inflight_mean: b.inflight_area as f64 / cov,
                    inflight_max: b.inflight_max,
                    attempt_ms_mean: mean_ms(b.attempt_us, b.attempt_n),
                    e2e_ms_mean: mean_ms(b.e2e_us, b.goodput),
                    e2e_p99_ms: b.e2e.quantile_us(0.99).map_or(0.0, |us| us as f64 / 1000.0),
                }
            })
            .collect()
    }

    fn total(&mut self, which: Which) -> &mut Total {
        match which {
            Which::Pool => &mut self.pool,
            Which::Rpc => &mut self.rpc,
            Which::Inflight => &mut self.inflight,
        }
    }

    fn set(&mut self, which: Which, t_us: u64, conductor: usize, value: u32) {
        self.reach(t_us);
        self.integrate(which, t_us);
        let tot = self.total(which);
        if tot.per_conductor.len() <= conductor {
            tot.per_conductor.resize(conductor + 1, 0);
        }
        let old = std::mem::replace(&mut tot.per_conductor[conductor], value);
        tot.total = tot.total.saturating_sub(old).saturating_add(value);
        let total = tot.total;
        let i = self.index(t_us);
        let b = self.bucket(i);
        match which {
            Which::Pool => b.pool_max = b.pool_max.max(total),
            Which::Rpc => b.rpc_max = b.rpc_max.max(total),
            Which::Inflight => b.inflight_max = b.inflight_max.max(total),
        }
    }

    /// Integrates the current total of `which` from its last time up to `t_us`.
    fn integrate(&mut self, which: Which, t_us: u64) {
        let tot = self.total(which);
        let (from, value) = (tot.last_us, tot.total);
        if t_us <= from {
            return;
        }
        tot.last_us = t_us;
        if value == 0 {
            return;
        }
        let v = u128::from(value);
        // The level held over the whole span: every bucket it touches saw at least `value`.
        self.spread(from, t_us, |b, dt| match which {
            Which::Pool => {
                b.pool_area += v * u128::from(dt);
                b.pool_max = b.pool_max.max(value);
            }
            Which::Rpc => {
                b.rpc_area += v * u128::from(dt);
                b.rpc_max = b.rpc_max.max(value);
            }
            Which::Inflight => {
                b.inflight_area += v * u128::from(dt);
                b.inflight_max = b.inflight_max.max(value);
            }
        });
    }

    /// Calls `f(bucket, overlap_us)` for every bucket that `[from, to)` overlaps.
    fn spread(&mut self, from: u64, to: u64, mut f: impl FnMut(&mut Bucket, u64)) {
        let w = self.width_us;
        let mut t = from;
        while t < to {
            let i = self.index(t);
            // The last bucket takes whatever lies past it (only beyond 2⁵⁴ µs).
            let bucket_end = if i == MAX_BUCKETS - 1 {
                u64::MAX
            } else {
                (i as u64 + 1) * w
            };
            let upto = to.min(bucket_end);
            f(self.bucket(i), upto - t);
            t = upto;
        }
    }

    /// Makes room for time `t_us`: coarsens until it falls within [`MAX_BUCKETS`] buckets.
    fn reach(&mut self, t_us: u64) {
        // Past 2⁵⁴ µs (570 years) the last bucket simply takes everything.
        while t_us >= self.limit_us && self.shift < 54 {
            self.coarsen();
        }
        self.end_us = self.end_us.max(t_us);
    }

    /// Merges adjacent pairs of buckets and doubles the width.
    fn coarsen(&mut self) {
        let merged = self
            .buckets
            .chunks(2)
            .map(|pair| {
                let mut b = pair[0].clone();
                if let Some(c) = pair.get(1) {
                    b.add(c);
                }
                b
            })
            .collect();
        self.buckets = merged;
        self.width_us *= 2;
        self.shift += 1;
        self.limit_us = self.limit_us.saturating_mul(2);
    }

    fn index(&self, t_us: u64) -> usize {
        ((t_us >> self.shift) as usize).min(MAX_BUCKETS - 1)
    }

    fn bucket(&mut self, i: usize) -> &mut Bucket {
        if self.buckets.len() <= i {
            self.buckets.resize(i + 1, Bucket::default());
        }
        &mut self.buckets[i]
    }
}

/// `sum_us / n` in ms, 0 when `n` is 0.
fn mean_ms(sum_us: u128, n: u64) -> f64 {
    if n == 0 {
        0.0
    } else {
        sum_us as f64 / n as f64 / 1000.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_are_time_weighted_per_bucket() {
        let mut t = Timeline::new();
        // Buckets of w = 8192 µs. Conductor 0: 2 busy on [0, w/2), 4 busy on [w/2, 2w);
        // conductor 1: 1 busy from w.
        let w = BASE_WIDTH_US;
        t.pool_set(0, 0, 2);
        t.pool_set(w / 2, 0, 4);
        t.pool_set(w, 1, 1);
        t.finish(2 * w);
        let s = t.samples();
        assert_eq!(s.len(), 2);
        assert!((s[0].pool_mean - 3.0).abs() < 1e-12, "{:?}", s[0]);
        assert_eq!(s[0].pool_max, 4);
        assert!((s[1].pool_mean - 5.0).abs() < 1e-12, "{:?}", s[1]);
        assert_eq!(s[1].pool_max, 5);
        assert_eq!((s[1].start_s, s[1].end_s), (0.008192, 0.016384));
    }

    #[test]
    fn memory_is_bounded_and_coarsening_keeps_the_integral() {
        let mut t = Timeline::new();
        // One level change a second for 30 days: 1 busy on odd seconds.
        let day = 86_400_000_000u64;
        let mut at = 0;
        let mut v = 0;
        while at < 30 * day {
            t.pool_set(at, 0, v);
            v ^= 1;
            at += 1_000_000;
        }
        t.finish(30 * day);
        assert!(t.len() <= MAX_BUCKETS);
        let s = t.samples();
        let area: f64 = s.iter().map(|x| x.pool_mean * (x.end_s - x.start_s)).sum();
        let want = 30.0 * 86_400.0 / 2.0;
        assert!((area - want).abs() / want < 1e-9, "{area} vs {want}");
        assert!(s.iter().all(|x| x.pool_max == 1));
    }

    #[test]
    fn backlog_waits_spread_over_the_buckets_they_span() {
        let mut t = Timeline::new();
        // One message waited 2.5 buckets, taken at 3 buckets: it was in the backlog on
        // [w/2, 3w).
        let w = BASE_WIDTH_US;
        t.backlog_wait(3 * w, 5 * w / 2);
        t.retry(w + 1);
        t.finish(4 * w);
        let s = t.samples();
        assert_eq!(s.len(), 4);
        let means: Vec<f64> = s.iter().map(|x| x.backlog_mean).collect();
        assert_eq!(means, [0.5, 1.0, 1.0, 0.0]);
        assert_eq!(s[1].retries_per_s, 1e6 / w as f64); // 1 in one bucket
    }

    #[test]
    fn merging_seeds_of_different_lengths_is_exact_and_order_free() {
        let mut a = Timeline::new();
        a.pool_set(0, 0, 2);
        a.finish(10_000_000); // coarsened to fit 10 s
        let mut b = Timeline::new();
        b.pool_set(0, 0, 4);
        b.rpc_set(0, 0, 1);
        b.finish(2_000_000);
        let mut ab = a.clone();
        ab.merge(&b);
        let mut ba = b.clone();
        ba.merge(&a);
        assert!(ab == ba, "merge depends on the order");
        assert_eq!(ab.seeds(), 2);
        let s = ab.samples();
        // Where both seeds ran, the mean is 3; afterwards only a's 2.
        assert!((s[0].pool_mean - 3.0).abs() < 1e-12);
        assert!((s.last().unwrap().pool_mean - 2.0).abs() < 1e-12);
        assert_eq!(s[0].pool_max, 4);
    }

    #[test]
    fn client_series_per_bucket() {
        let mut t = Timeline::new();
        let w = BASE_WIDTH_US;
        t.attempt_sent(0, true);
        t.inflight_set(0, 0, 1);
        t.attempt_sent(w / 2, false);
        t.inflight_set(w / 2, 0, 2);
        t.attempt_ended(w + 10, 0);
        t.inflight_set(w + 10, 0, 1);
        t.goodput(w + 10, 0);
        t.gave_up(w + 20);
        t.inflight_set(w + 20, 0, 0);
        t.finish(2 * w);
        let s = t.samples();
        let per_s = 1e6 / w as f64;
        assert_eq!(s[0].offered_per_s, per_s);
        assert_eq!(s[0].attempts_per_s, 2.0 * per_s);
        assert!((s[0].inflight_mean - 1.5).abs() < 1e-12);
        assert_eq!(s[0].inflight_max, 2);
        assert_eq!(s[1].goodput_per_s, per_s);
        assert_eq!(s[1].gave_up_per_s, per_s);
        assert!((s[1].attempt_ms_mean - (w + 10) as f64 / 1000.0).abs() < 1e-9);
        assert!(s[1].e2e_p99_ms >= (w + 10) as f64 / 1000.0);
        assert!(t.e2e_quantile_ms(0.0, 1.0, 0.99).is_some());
        assert!(t.e2e_quantile_ms(0.0, w as f64 / 1e6, 0.99).is_none());
        // A merged pair of seeds keeps the counts exactly.
        let mut m = t.clone();
        m.merge(&t);
        assert_eq!(m.buckets()[1].goodput, 2);
        assert_eq!(m.buckets()[1].e2e.len(), 2);
    }

    #[test]
    fn the_end_of_time_does_not_hang() {
        let mut t = Timeline::new();
        t.pool_set(u64::MAX - 1, 0, 1);
        t.retry(u64::MAX);
        t.finish(u64::MAX);
        assert!(t.len() <= MAX_BUCKETS);
    }

    #[test]
    fn serde_round_trip_is_exact() {
        let mut a = Timeline::new();
        a.pool_set(0, 3, u32::MAX);
        a.finish(30 * 86_400_000_000);
        let json = serde_json::to_string(&a).unwrap();
        let back: Timeline = serde_json::from_str(&json).unwrap();
        assert!(a == back, "the round trip changed the timeline");
    }
}
