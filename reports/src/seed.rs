//! The metrics of one seed's run.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::histo::Histo;
use crate::level::Level;
use crate::timeline::Timeline;

/// Pool counters of one conductor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConductorCounts {
    /// The conductor's node name, e.g. `conductor-1`.
    pub name: String,
    /// Pool arrivals (async ops that asked for a worker).
    pub arrivals: u64,
    /// Arrivals that found every worker busy.
    pub exhausted: u64,
}

/// Everything measured in one seed's run. All fields are public: the simulator fills them.
///
/// Statistics exclude the warm-up: the recording code asks [`counting`](SeedMetrics::counting)
/// before it bumps a traffic counter or records into a histogram (helpers such as
/// [`pool_arrival`](SeedMetrics::pool_arrival) do it themselves). The [`Level`]s start their
/// window at `warmup_us` on their own and are closed by [`finish`](SeedMetrics::finish).
///
/// It serialises whole (serde): a sharded sweep writes each seed's metrics and `merge` reads
/// them back, exactly (histograms as their buckets, levels and the timeline as integers).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SeedMetrics {
    /// The seed of this run.
    pub seed: u64,
    /// Simulated time (µs) before which nothing is counted in the statistics.
    pub warmup_us: u64,
    /// Requests the client sent (first attempts; retries are counted in `retry_attempts`).
    pub submitted: u64,
    /// Requests the API accepted.
    pub accepted: u64,
    /// Requests the API refused (e.g. 409); counted, not timed.
    pub rejected: u64,
    /// Accepted ops that finished `done`.
    pub completed: u64,
    /// Accepted ops that finished `failed`.
    pub failed: u64,
    /// Accepted ops that never became terminal.
    pub lost: u64,
    /// Pool arrivals over every conductor.
    pub arrivals: u64,
    /// Pool arrivals that found every worker busy, over every conductor.
    pub exhausted: u64,
    /// Ops that an RPC slot ran itself because the pool was exhausted (`caller-runs`).
    pub caller_runs: u64,
    /// Calls the API answered with a timeout (`api.rpc_timeout`).
    pub timeouts: u64,
    /// Requests sent over the whole run, warm-up included (for per-op host figures).
    pub sent_total: u64,
    /// Pool arrivals and exhaustions in consecutive, equal slices of the load phase after the
    /// warm-up (batch means for a one-seed confidence interval); empty when not recorded.
    pub batches: Vec<(u64, u64)>,
    /// Pool counters per conductor; index = conductor index.
    pub per_conductor: Vec<ConductorCounts>,
    /// How long an op held its worker (or the RPC slot that ran it), µs.
    pub hold: Histo,
    /// Latency of ops that became terminal, from the intended send time, µs.
    pub complete: Histo,
    /// Latency of the API's answer, from the intended send time, µs.
    pub accept: Histo,
    /// Completion latency per op name, µs.
    pub by_op: BTreeMap<String, Histo>,
    /// How long a message waited in a conductor's backlog before an RPC slot took it, µs.
    pub backlog_wait: Histo,
    /// Busy pool workers per conductor (threshold = `pool_workers`).
    pub pool_busy: Vec<Level>,
    /// Busy RPC slots per conductor (threshold = `rpc_workers`).
    pub rpc_busy: Vec<Level>,
    /// Retry attempts (requests sent again by the client or re-queued by the conductor).
    pub retry_attempts: u64,
    /// Ops that ran out of attempts.
    pub gave_up: u64,
    /// Ops cancelled unrun (`client.cancel`), counted by their intended time as `failed` is.
    pub cancelled: u64,
    /// Invariant violations found in this seed's history (filled by the checker): objects with
    /// an `"invariant"` key, the first few of each invariant (the checker bounds the list).
    pub violations: Vec<serde_json::Value>,
    /// Violations found per invariant name, listed in `violations` or not (only invariants
    /// that broke). Empty when nothing counted them: `violations` then stands for itself.
    pub violation_counts: BTreeMap<String, u64>,
    /// The faults this seed actually ran (scheduled and drawn by the nemesis), each in the
    /// scenario's `[[faults]]` form with an `at` time, so a failing seed becomes a plain scenario.
    pub faults: Vec<serde_json::Value>,
    /// Events the services recorded (host statistics).
    pub events: u64,
    /// Network messages delivered (host statistics).
    pub messages: u64,
    /// Wall-clock seconds this seed took (host statistics).
    pub wall_s: f64,
    /// Simulated time (µs) at which the run ended.
    pub sim_end_us: u64,
    /// Occupancy and retries over the whole run (warm-up and drain included), in bounded
    /// memory; closed by [`finish_timeline`](SeedMetrics::finish_timeline).
    #[serde(default)]
    pub timeline: Timeline,
    /// Goodput: requests answered successfully before the client gave up on them, by whichever
    /// attempt (counted by intended time, after the warm-up).
    #[serde(default)]
    pub goodput: u64,
    /// The client's retries alone (`retry_attempts` also counts the conductors' re-queues).
    #[serde(default)]
    pub client_retries: u64,
    /// Requests the client gave up on (`gave_up` also counts the conductors' give-ups).
    #[serde(default)]
    pub client_gave_up: u64,
    /// Latency of each client attempt, from its send to its end (answer, timeout or refusal),
    /// µs.
    #[serde(default)]
    pub attempt: Histo,
    /// End-to-end latency of the goodput, from the request's intended time to its success, µs.
    #[serde(default)]
    pub end_to_end: Histo,
    /// Requests the API answered by their key without running anything (a retry under the
    /// same op id, `client.retry_same_op`): the stored answer, or a refusal.
    #[serde(default)]
    pub deduplicated: u64,
}

impl SeedMetrics {
    /// Empty metrics for one seed, with one [`ConductorCounts`] and one pair of levels per
    /// conductor name, in the given order.
    pub fn new(
        seed: u64,
        warmup_us: u64,
        conductor_names: &[String],
        pool_workers: u32,
        rpc_workers: u32,
    ) -> Self {
        SeedMetrics {
            seed,
            warmup_us,
            submitted: 0,
            accepted: 0,
            rejected: 0,
            completed: 0,
            failed: 0,
            lost: 0,
            arrivals: 0,
            exhausted: 0,
            caller_runs: 0,
            timeouts: 0,
            sent_total: 0,
            batches: Vec::new(),
            per_conductor: conductor_names
                .iter()
                .map(|name| ConductorCounts {
                    name: name.clone(),
                    arrivals: 0,
                    exhausted: 0,
                })
                .collect(),
            hold: Histo::new(),
            complete: Histo::new(),
            accept: Histo::new(),
            by_op: BTreeMap::new(),
            backlog_wait: Histo::new(),
            pool_busy: conductor_names
                .iter()
                .map(|_| Level::with_full(warmup_us, pool_workers))
                .collect(),
            rpc_busy: conductor_names
                .iter()
                .map(|_| Level::with_full(warmup_us, rpc_workers))
                .collect(),
            retry_attempts: 0,
            gave_up: 0,
            cancelled: 0,
            violations: Vec::new(),
            violation_counts: BTreeMap::new(),
            faults: Vec::new(),
            events: 0,
            messages: 0,
            wall_s: 0.0,
            sim_end_us: 0,
            timeline: Timeline::new(),
            goodput: 0,
            client_retries: 0,
            client_gave_up: 0,
            attempt: Histo::new(),
            end_to_end: Histo::new(),
            deduplicated: 0,
        }
    }

    /// True when an event at `t_us` counts in the statistics (`t_us >= warmup_us`).
    pub fn counting(&self, t_us: u64) -> bool {
        t_us >= self.warmup_us
    }

    /// Records a pool arrival at conductor index `conductor` at `t_us` (after the warm-up
    /// only): bumps `arrivals`, and `exhausted` when it found every worker busy, in the totals
    /// and in `per_conductor`. An unknown index counts in the totals only.
    pub fn pool_arrival(&mut self, t_us: u64, conductor: usize, exhausted: bool) {
        if !self.counting(t_us) {
            return;
        }
        self.arrivals += 1;
        self.exhausted += u64::from(exhausted);
        if let Some(c) = self.per_conductor.get_mut(conductor) {
            c.arrivals += 1;
            c.exhausted += u64::from(exhausted);
        }
    }

    /// Records the completion latency `us` of an op named `op` that became terminal at
    /// `t_us` (after the warm-up only), in `complete` and in `by_op[op]`.
    pub fn record_complete(&mut self, t_us: u64, op: &str, us: u64) {
        if !self.counting(t_us) {
            return;
        }
        self.complete.record(us);
        match self.by_op.get_mut(op) {
            Some(h) => h.record(us),
            None => {
                let mut h = Histo::new();
                h.record(us);
                self.by_op.insert(op.to_string(), h);
            }
        }
    }

    /// Closes every level at `end_us` and records it as `sim_end_us`.
    pub fn finish(&mut self, end_us: u64) {
        for l in self.pool_busy.iter_mut().chain(self.rpc_busy.iter_mut()) {
            l.finish(end_us);
        }
        self.sim_end_us = end_us;
    }

    /// Records a retry attempt at `t_us`: in the timeline always, in `retry_attempts` after
    /// the warm-up only.
    pub fn retry(&mut self, t_us: u64) {
        self.timeline.retry(t_us);
        if self.counting(t_us) {
            self.retry_attempts += 1;
        }
    }

    /// Closes the timeline at `end_us` (the end of the run, drain included).
    pub fn finish_timeline(&mut self, end_us: u64) {
        self.timeline.finish(end_us);
    }

    /// The exhaustion ratio of each batch, when at least two batches saw arrivals.
    pub fn batch_ratios(&self) -> Option<Vec<f64>> {
        let ratios: Vec<f64> = self
            .batches
            .iter()
            .filter(|(a, _)| *a > 0)
            .map(|&(a, e)| e as f64 / a as f64)
            .collect();
        (ratios.len() >= 2).then_some(ratios)
    }

    /// Violations found per invariant name: `violation_counts`, or when that is empty, the
    /// listed `violations` counted by their `"invariant"` key.
    pub fn violations_by_invariant(&self) -> BTreeMap<String, u64> {
        if !self.violation_counts.is_empty() {
            return self.violation_counts.clone();
        }
        let mut out = BTreeMap::new();
        for v in &self.violations {
            if let Some(name) = v.get("invariant").and_then(serde_json::Value::as_str) {
                *out.entry(name.to_string()).or_insert(0) += 1;
            }
        }
        out
    }

    /// This seed's exhaustion ratio, `exhausted / arrivals` (0 without arrivals).
    pub fn exhaustion_ratio(&self) -> f64 {
        ratio(self.exhausted, self.arrivals)
    }

    /// Sum over conductors (in index order) of the time-average busy pool workers.
    pub fn mean_busy(&self) -> f64 {
        self.pool_busy.iter().map(Level::mean).sum()
    }

    /// Sum over conductors (in index order) of the time-average busy RPC slots.
    pub fn mean_busy_slots(&self) -> f64 {
        self.rpc_busy.iter().map(Level::mean).sum()
    }

    /// Average over conductors of the fraction of time a conductor's pool was full
    /// (0 without conductors).
    pub fn time_full_ratio(&self) -> f64 {
        mean_of(self.pool_busy.iter().map(Level::full_ratio))
    }

    /// Average over conductors of the fraction of time every RPC slot was busy.
    pub fn rpc_time_full_ratio(&self) -> f64 {
        mean_of(self.rpc_busy.iter().map(Level::full_ratio))
    }
}

/// `num / den`, 0 when `den` is 0.
pub(crate) fn ratio(num: u64, den: u64) -> f64 {
    if den == 0 {
        0.0
    } else {
        num as f64 / den as f64
    }
}

/// The mean of an iterator of floats, summed in order (0 when empty).
pub(crate) fn mean_of(xs: impl Iterator<Item = f64>) -> f64 {
    let (sum, n) = xs.fold((0.0, 0usize), |(s, n), x| (s + x, n + 1));
    if n == 0 {
        0.0
    } else {
        sum / n as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(n: usize) -> Vec<String> {
        (1..=n).map(|i| format!("conductor-{i}")).collect()
    }

    #[test]
    fn new_sets_up_one_entry_per_conductor() {
        let m = SeedMetrics::new(7, 1_000, &names(3), 10, 64);
        assert_eq!(m.seed, 7);
        assert_eq!(m.per_conductor.len(), 3);
        assert_eq!(m.per_conductor[2].name, "conductor-3");
        assert_eq!(m.pool_busy.len(), 3);
        assert_eq!(m.pool_busy[0].capacity(), Some(10));
        assert_eq!(m.rpc_busy[1].capacity(), Some(64));
        assert_eq!(m.pool_busy[0].from_us(), 1_000);
        assert!(!m.counting(999));
        assert!(m.counting(1_000));
    }

    #[test]
    fn helpers_respect_the_warmup() {
        let mut m = SeedMetrics::new(1, 100, &names(2), 2, 4);
        m.pool_arrival(50, 0, true); // warm-up: ignored
        m.pool_arrival(100, 0, false);
        m.pool_arrival(150, 1, true);
        m.pool_arrival(160, 9, true); // unknown conductor: totals only
        assert_eq!((m.arrivals, m.exhausted), (3, 2));
        assert_eq!(
            (m.per_conductor[0].arrivals, m.per_conductor[0].exhausted),
            (1, 0)
        );
        assert_eq!(
            (m.per_conductor[1].arrivals, m.per_conductor[1].exhausted),
            (1, 1)
        );
        assert!((m.exhaustion_ratio() - 2.0 / 3.0).abs() < 1e-12);

        m.record_complete(10, "start", 5_000); // warm-up: ignored
        m.record_complete(200, "start", 1_000);
        m.record_complete(200, "stop", 2_000);
        assert_eq!(m.complete.len(), 2);
        assert_eq!(m.by_op.len(), 2);
        assert_eq!(m.by_op["start"].len(), 1);
    }

    #[test]
    fn serde_round_trip_is_exact() {
        let mut m = SeedMetrics::new(3, 100, &names(2), 4, 8);
        m.pool_arrival(200, 1, true);
        m.record_complete(300, "start", 12_345);
        m.hold.record(999);
        m.pool_busy[1].set(150, 3);
        m.timeline.pool_set(150, 1, 3);
        m.timeline.backlog_wait(400, 50);
        m.retry(450);
        m.violations = vec![serde_json::json!({"invariant": "exclusive"})];
        m.batches = vec![(1, 1), (0, 0)];
        m.wall_s = 0.25;
        m.finish(1_000);
        m.finish_timeline(1_200);
        let json = serde_json::to_string(&m).unwrap();
        let back: SeedMetrics = serde_json::from_str(&json).unwrap();
        assert_eq!(serde_json::to_string(&back).unwrap(), json);
        assert_eq!(back.per_conductor, m.per_conductor);
        assert_eq!(back.pool_busy, m.pool_busy);
        assert!(back.timeline == m.timeline);
        assert_eq!(
            back.by_op["start"].quantile_us(0.5),
            m.by_op["start"].quantile_us(0.5)
        );
        assert_eq!(back.retry_attempts, 1);
        assert_eq!((back.wall_s, back.sim_end_us), (0.25, 1_000));
    }

    #[test]
    fn finish_closes_levels_and_aggregates() {
        let mut m = SeedMetrics::new(1, 0, &names(2), 2, 4);
        m.pool_busy[0].set(0, 2); // full the whole time
        m.pool_busy[1].set(0, 1); // half busy, never full
        m.rpc_busy[0].set(50, 4); // full half the time
        m.finish(100);
        assert_eq!(m.sim_end_us, 100);
        assert!((m.mean_busy() - 3.0).abs() < 1e-12);
        assert!((m.time_full_ratio() - 0.5).abs() < 1e-12);
        assert!((m.mean_busy_slots() - 2.0).abs() < 1e-12);
        assert!((m.rpc_time_full_ratio() - 0.25).abs() < 1e-12);
    }
}
