//! The pooled report of a run over one or more seeds: `report.json` and its text summary.
//!
//! Field names and their order follow the report.json contract (docs/outputs.md); keys this crate adds come
//! after the documented keys of their object.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::erlang::erlang_b;
use crate::histo::{Histo, Percentiles};
use crate::round;
use crate::seed::{ratio, SeedMetrics};
pub use crate::slo::SloCheck;
use crate::slo::{judge, Measure, Measured, Objective};
use crate::stats::{binomial_ci95, mean_ci95};

/// The service-level objectives of a scenario's `[slo]` table (none: nothing is judged), and
/// the measured load phase the per-second objectives and Erlang B's arrival rate divide by.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SloSpec {
    /// The objectives, in the order they are judged (see [`crate::slo`]).
    pub objectives: Vec<Objective>,
    /// The measured load phase (duration − warm-up), simulated seconds.
    pub load_s: f64,
}

impl SloSpec {
    /// True when there is at least one objective to judge.
    pub fn judges_anything(&self) -> bool {
        !self.objectives.is_empty()
    }

    /// The spec of the two original objectives (tests), over a load phase of 100 s.
    #[cfg(test)]
    pub(crate) fn of(exhaustion_ratio_max: Option<f64>, p99_max_ms: Option<f64>) -> SloSpec {
        let mut objectives = Vec::new();
        if let Some(limit) = exhaustion_ratio_max {
            objectives.push(Objective {
                measure: Measure::ExhaustionRatio,
                limit,
            });
        }
        if let Some(limit) = p99_max_ms {
            objectives.push(Objective {
                measure: Measure::Latency(
                    crate::slo::Latency::Complete,
                    crate::slo::Percentile::P99,
                ),
                limit,
            });
        }
        SloSpec {
            objectives,
            load_s: 100.0,
        }
    }

    /// The limit of `measure`, if the spec has it.
    pub fn limit(&self, measure: &Measure) -> Option<f64> {
        self.objectives
            .iter()
            .find(|o| &o.measure == measure)
            .map(|o| o.limit)
    }
}

/// The pooled report (`report.json`). Build it with [`build_report`].
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Scenario name.
    pub scenario: String,
    /// The first seed; the run covers `seed .. seed + seeds - 1`.
    pub seed: u64,
    /// How many seeds were pooled.
    pub seeds: u64,
    /// Op counters, summed over seeds.
    pub ops: Ops,
    /// The executor pool.
    pub pool: Pool,
    /// The RPC slots.
    pub rpc: Rpc,
    /// Latencies in milliseconds, from pooled histograms.
    pub latency_ms: Latency,
    /// Retries.
    pub retries: Retries,
    /// Invariants judged and violations found.
    pub invariants: Invariants,
    /// Service-level objectives.
    pub slo: Slo,
    /// One entry per seed, in seed order.
    pub per_seed: Vec<PerSeed>,
    /// Host (wall-clock) statistics: the only part that differs between identical runs.
    pub host: Host,
    /// Added: the trigger windows `[[start_s, end_s], …]` (fault windows and load phases above
    /// the pre-trigger rate; docs/retry-research.md), empty for a calm run.
    pub trigger: Vec<[f64; 2]>,
    /// Added: seconds from the trigger's end until the run recovered (`null`: no trigger, or no
    /// recovery within the load phase).
    pub recovery_s: Option<f64>,
    /// Added: stuck after the trigger although the load went back (`null`: not judged, the load
    /// phase after the trigger was under 10 × its length).
    pub metastable: Option<bool>,
}

/// `ops`: op counters summed over seeds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Ops {
    /// Requests sent (first attempts).
    pub submitted: u64,
    /// Accepted by the API.
    pub accepted: u64,
    /// Refused by the API.
    pub rejected: u64,
    /// Finished `done`.
    pub completed: u64,
    /// Finished `failed`.
    pub failed: u64,
    /// Never became terminal.
    pub lost: u64,
    /// Added, with `client.cancel` set: ops cancelled unrun because their client had stopped
    /// waiting (past their deadline at a conductor, or expired on the bus); counted in `failed`
    /// too, never in `lost`. Absent when the client cancels nothing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cancelled: Option<u64>,
}

/// `pool`: the executor pool, summed over conductors and pooled over seeds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Pool {
    /// Pool arrivals.
    pub arrivals: u64,
    /// Arrivals that found every worker busy.
    pub exhausted: u64,
    /// `exhausted / arrivals` over the pooled counts (0 without arrivals).
    pub exhaustion_ratio: f64,
    /// Average over conductors of the fraction of time a conductor's pool was full, averaged
    /// over seeds.
    pub time_full_ratio: f64,
    /// Sum over conductors of the time-average busy workers, averaged over seeds.
    pub mean_busy: f64,
    /// Mean hold time (pooled histogram), ms.
    pub mean_hold_ms: f64,
    /// Arrivals and exhaustions per conductor, summed over seeds by conductor index.
    pub per_conductor: Vec<ConductorRow>,
    /// Added: 95% confidence interval of the exhaustion ratio, `[lo, hi]` within [0, 1]:
    /// Student t over the per-seed ratios, or the binomial normal approximation for one seed.
    pub exhaustion_ratio_ci95: [f64; 2],
    /// Added: pool workers summed over conductors (the capacity `mean_busy` is measured
    /// against).
    pub workers: u64,
    /// Added when an offered load was given to [`build_report`]: Erlang B's prediction.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub erlang_b: Option<ErlangB>,
}

/// One row of `pool.per_conductor`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConductorRow {
    /// Node name.
    pub name: String,
    /// Pool arrivals.
    pub arrivals: u64,
    /// Exhaustions.
    pub exhausted: u64,
}

/// `pool.erlang_b` (added): the loss-system prediction for the measured load.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ErlangB {
    /// Workers `c` of the pool the prediction is for.
    pub workers: u32,
    /// Arrival rate given, per second.
    pub arrival_rate_per_s: f64,
    /// `A = λ × mean hold time` (pooled), erlangs.
    pub offered_erlangs: f64,
    /// `E_B(c, A)`: the predicted exhaustion ratio.
    pub blocking: f64,
}

/// `rpc`: the RPC slots.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Rpc {
    /// Ops run on an RPC slot because the pool was exhausted, summed.
    pub caller_runs: u64,
    /// Sum over conductors of the time-average busy RPC slots, averaged over seeds.
    pub mean_busy_slots: f64,
    /// Backlog wait before an RPC slot took the message (pooled), ms.
    pub backlog_wait_ms: ShortPercentiles,
    /// Added: average over conductors of the fraction of time every RPC slot was busy,
    /// averaged over seeds.
    pub time_full_ratio: f64,
    /// Added: RPC slots summed over conductors.
    pub slots: u64,
    /// Added: calls the API answered with a timeout, summed.
    pub timeouts: u64,
}

/// `{p50, p99}` of a pooled histogram in ms (3 decimals), plus the count (added).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ShortPercentiles {
    /// Median, ms.
    pub p50: f64,
    /// 99th percentile, ms.
    pub p99: f64,
    /// Number of values.
    pub count: u64,
}

impl ShortPercentiles {
    fn of(h: &Histo) -> Self {
        ShortPercentiles {
            p50: h.quantile_ms(0.50),
            p99: h.quantile_ms(0.99),
            count: h.len(),
        }
    }
}

/// `latency_ms`: latencies from pooled histograms.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Latency {
    /// Ops that became terminal, from the intended send time.
    pub complete: Percentiles,
    /// The API's answer, from the intended send time.
    pub accept: ShortPercentiles,
    /// Completion latency per op name, in name order.
    pub by_op: BTreeMap<String, ShortPercentiles>,
    /// Added: each client attempt, from its send to its end (answer, timeout, refusal).
    pub attempt: ShortPercentiles,
    /// Added: end-to-end latency of the goodput, from the request's intended time to its
    /// success (by whichever attempt).
    pub end_to_end: ShortPercentiles,
}

/// `retries`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Retries {
    /// Retry attempts, summed.
    pub attempts: u64,
    /// `(submitted + attempts) / submitted` (1 without submissions).
    pub amplification: f64,
    /// Ops that ran out of attempts, summed.
    pub gave_up: u64,
    /// Added: the client's retries alone, summed (`attempts` counts re-queues too).
    pub client_retries: u64,
    /// Added: requests the client gave up on, summed (`gave_up` counts the conductors' too).
    pub client_gave_up: u64,
    /// Added: goodput, requests answered successfully before the client gave up on them,
    /// summed.
    pub goodput: u64,
    /// Added: `goodput / ops.submitted` (0 without submissions).
    pub goodput_ratio: f64,
}

/// `invariants`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Invariants {
    /// The invariants judged.
    pub checked: Vec<String>,
    /// Every seed's violations, concatenated in seed order (the checker lists the first few
    /// of each invariant per seed; `counts` has them all).
    pub violations: Vec<serde_json::Value>,
    /// Added: violations found per invariant over every seed, listed or not (name order; only
    /// invariants that broke).
    pub counts: BTreeMap<String, u64>,
    /// Added: the invariants the scenario is meant to break (`[checks] expect`).
    pub expected: Vec<String>,
    /// Added: invariants that broke and were not expected to.
    pub unexpected: Vec<String>,
    /// Added: expected invariants that did not break.
    pub missing_expected: Vec<String>,
}

/// `slo`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Slo {
    /// True when no judged objective failed.
    pub pass: bool,
    /// The failed objectives by key under `[slo]`: `"exhaustion_ratio_max"`, `"p99_max"`,
    /// `"by_op.create.p99_max"`, …
    pub failed: Vec<String>,
    /// Added: every judged objective with its limit and measured value.
    pub checks: Vec<SloCheck>,
}

/// One entry of `per_seed`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PerSeed {
    /// The seed.
    pub seed: u64,
    /// Pool arrivals.
    pub arrivals: u64,
    /// Exhaustions.
    pub exhausted: u64,
    /// `exhausted / arrivals`.
    pub exhaustion_ratio: f64,
    /// Number of violations found in this seed.
    pub violations: u64,
    /// Added: ops finished `done`.
    pub completed: u64,
    /// Added: p99 of this seed's completion latency, ms.
    pub p99_ms: f64,
    /// Added: this seed's `mean_busy`.
    pub mean_busy: f64,
    /// Added: warm-up, simulated seconds.
    pub warmup_s: f64,
    /// Added: simulated time at the end of the run, seconds.
    pub sim_s: f64,
}

/// `host`: wall-clock statistics (not reproducible).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Host {
    /// Wall-clock seconds of the whole run.
    pub wall_s: f64,
    /// Simulator events, summed.
    pub events: u64,
    /// Network messages delivered, summed.
    pub messages: u64,
    /// `ops.submitted / wall_s` (0 when `wall_s` is 0).
    pub sim_ops_per_wall_s: f64,
    /// Network messages per submitted op.
    pub messages_per_op: f64,
    /// `ops.submitted` over the seeds' own wall times summed: the speed of one core, however
    /// many seeds ran in parallel.
    pub sim_ops_per_core_s: f64,
}

/// The report without `host`, borrowing a [`Report`]; same key order.
#[derive(Serialize)]
struct Reproducible<'a> {
    scenario: &'a str,
    seed: u64,
    seeds: u64,
    ops: &'a Ops,
    pool: &'a Pool,
    rpc: &'a Rpc,
    latency_ms: &'a Latency,
    retries: &'a Retries,
    invariants: &'a Invariants,
    slo: &'a Slo,
    per_seed: &'a [PerSeed],
    trigger: &'a [[f64; 2]],
    recovery_s: Option<f64>,
    metastable: Option<bool>,
}

/// Pools the metrics of `seeds` (in seed order, the first being `base_seed`) into a report.
///
/// Counters are summed, histograms merged, floats summed in seed order then divided.
/// `invariants_checked` lists the invariants judged; `slo` the objectives; `wall_s` the
/// wall-clock time of the whole run. With `erlang_b_workers = Some(c)` the pool gains
/// Erlang B's prediction for `c` workers at `A = λ × pooled mean hold time`, λ the *measured*
/// pool arrival rate ([`crate::erlang::measured_rate`], as a sweep's rows have it).
pub fn build_report(
    scenario: &str,
    base_seed: u64,
    seeds: &[SeedMetrics],
    invariants_checked: &[String],
    slo: &SloSpec,
    erlang_b_workers: Option<u32>,
    wall_s: f64,
) -> Report {
    let n = seeds.len();
    let sum = |f: fn(&SeedMetrics) -> u64| seeds.iter().map(f).sum::<u64>();
    // Floats: summed in seed order, then divided by the number of seeds.
    let avg = |f: fn(&SeedMetrics) -> f64| {
        if n == 0 {
            0.0
        } else {
            seeds.iter().map(f).sum::<f64>() / n as f64
        }
    };

    let mut hold = Histo::new();
    let mut complete = Histo::new();
    let mut accept = Histo::new();
    let mut backlog_wait = Histo::new();
    let mut by_op: BTreeMap<String, Histo> = BTreeMap::new();
    let mut attempt = Histo::new();
    let mut end_to_end = Histo::new();
    let mut per_conductor: Vec<ConductorRow> = Vec::new();
    let mut violations = Vec::new();
    let mut violation_counts: BTreeMap<String, u64> = BTreeMap::new();
    for s in seeds {
        hold.merge(&s.hold);
        complete.merge(&s.complete);
        accept.merge(&s.accept);
        backlog_wait.merge(&s.backlog_wait);
        attempt.merge(&s.attempt);
        end_to_end.merge(&s.end_to_end);
        for (op, h) in &s.by_op {
            by_op.entry(op.clone()).or_default().merge(h);
        }
        for (i, c) in s.per_conductor.iter().enumerate() {
            if i == per_conductor.len() {
                per_conductor.push(ConductorRow {
                    name: c.name.clone(),
                    arrivals: 0,
                    exhausted: 0,
                });
            }
            per_conductor[i].arrivals += c.arrivals;
            per_conductor[i].exhausted += c.exhausted;
        }
        violations.extend(s.violations.iter().cloned());
        for (name, n) in s.violations_by_invariant() {
            *violation_counts.entry(name).or_insert(0) += n;
        }
    }

    let ops = Ops {
        submitted: sum(|s| s.submitted),
        accepted: sum(|s| s.accepted),
        rejected: sum(|s| s.rejected),
        completed: sum(|s| s.completed),
        failed: sum(|s| s.failed),
        lost: sum(|s| s.lost),
        cancelled: None,
    };

    let arrivals = sum(|s| s.arrivals);
    let exhausted = sum(|s| s.exhausted);
    let exhaustion_ratio = ratio(exhausted, arrivals);
    let (lo, hi) = match seeds {
        [] => (0.0, 0.0),
        // One seed: batch means when the run recorded batches (exhaustions come in runs, so
        // the binomial interval is too narrow), else the binomial interval.
        [one] => match one.batch_ratios() {
            Some(ratios) => {
                let (_, lo, hi) = mean_ci95(&ratios);
                let half = (hi - lo) / 2.0;
                let r = one.exhaustion_ratio();
                ((r - half).clamp(0.0, 1.0), (r + half).clamp(0.0, 1.0))
            }
            None => {
                let (_, lo, hi) = binomial_ci95(one.exhausted, one.arrivals);
                (lo, hi)
            }
        },
        _ => {
            let ratios: Vec<f64> = seeds.iter().map(SeedMetrics::exhaustion_ratio).collect();
            let (_, lo, hi) = mean_ci95(&ratios);
            (lo.clamp(0.0, 1.0), hi.clamp(0.0, 1.0))
        }
    };
    let capacity = |levels: &[crate::level::Level]| {
        levels
            .iter()
            .map(|l| u64::from(l.capacity().unwrap_or(0)))
            .sum::<u64>()
    };
    let erlang = erlang_b_workers.map(|c| {
        let lambda = crate::erlang::measured_rate(arrivals, n, slo.load_s);
        let a = lambda * hold.mean_ms() / 1e3;
        ErlangB {
            workers: c,
            arrival_rate_per_s: round::ratio(lambda),
            offered_erlangs: round::ratio(a),
            blocking: round::ratio(erlang_b(c, a)),
        }
    });
    let pool = Pool {
        arrivals,
        exhausted,
        exhaustion_ratio: round::ratio(exhaustion_ratio),
        time_full_ratio: round::ratio(avg(SeedMetrics::time_full_ratio)),
        mean_busy: round::ratio(avg(SeedMetrics::mean_busy)),
        mean_hold_ms: hold.mean_ms(),
        per_conductor,
        exhaustion_ratio_ci95: [round::ratio(lo), round::ratio(hi)],
        workers: seeds.first().map_or(0, |s| capacity(&s.pool_busy)),
        erlang_b: erlang,
    };

    let rpc = Rpc {
        caller_runs: sum(|s| s.caller_runs),
        mean_busy_slots: round::ratio(avg(SeedMetrics::mean_busy_slots)),
        backlog_wait_ms: ShortPercentiles::of(&backlog_wait),
        time_full_ratio: round::ratio(avg(SeedMetrics::rpc_time_full_ratio)),
        slots: seeds.first().map_or(0, |s| capacity(&s.rpc_busy)),
        timeouts: sum(|s| s.timeouts),
    };

    let latency_ms = Latency {
        complete: complete.percentiles_ms(),
        accept: ShortPercentiles::of(&accept),
        by_op: by_op
            .iter()
            .map(|(op, h)| (op.clone(), ShortPercentiles::of(h)))
            .collect(),
        attempt: ShortPercentiles::of(&attempt),
        end_to_end: ShortPercentiles::of(&end_to_end),
    };

    let attempts = sum(|s| s.retry_attempts);
    let retries = Retries {
        attempts,
        amplification: if ops.submitted == 0 {
            1.0
        } else {
            round::ratio((ops.submitted + attempts) as f64 / ops.submitted as f64)
        },
        gave_up: sum(|s| s.gave_up),
        client_retries: sum(|s| s.client_retries),
        client_gave_up: sum(|s| s.client_gave_up),
        goodput: sum(|s| s.goodput),
        goodput_ratio: round::ratio(ratio(sum(|s| s.goodput), ops.submitted)),
    };

    let goodput_per_seed: Vec<u64> = seeds.iter().map(|s| s.goodput).collect();
    let checks = judge(
        &slo.objectives,
        &Measured {
            ops,
            exhaustion_ratio,
            exhaustion_ci95: [round::ratio(lo), round::ratio(hi)],
            complete: &complete,
            accept: &accept,
            by_op: &by_op,
            goodput_per_seed: &goodput_per_seed,
            load_s: slo.load_s,
        },
        false,
    );
    let failed: Vec<String> = checks
        .iter()
        .filter(|c| !c.pass)
        .map(|c| c.name.clone())
        .collect();

    let per_seed = seeds
        .iter()
        .map(|s| PerSeed {
            seed: s.seed,
            arrivals: s.arrivals,
            exhausted: s.exhausted,
            exhaustion_ratio: round::ratio(s.exhaustion_ratio()),
            violations: s.violations_by_invariant().values().sum(),
            completed: s.completed,
            p99_ms: s.complete.quantile_ms(0.99),
            mean_busy: round::ratio(s.mean_busy()),
            warmup_s: round::decimals(s.warmup_us as f64 / 1e6, 6),
            sim_s: round::decimals(s.sim_end_us as f64 / 1e6, 6),
        })
        .collect();

    let host = Host {
        wall_s: round::decimals(wall_s, 3),
        events: sum(|s| s.events),
        messages: sum(|s| s.messages),
        sim_ops_per_wall_s: if wall_s > 0.0 {
            round::decimals(ops.submitted as f64 / wall_s, 1)
        } else {
            0.0
        },
        // Messages flow during the warm-up too: divide by every request sent.
        messages_per_op: {
            let sent = sum(|s| s.sent_total.max(s.submitted));
            if sent > 0 {
                round::decimals(sum(|s| s.messages) as f64 / sent as f64, 2)
            } else {
                0.0
            }
        },
        sim_ops_per_core_s: {
            let core_s: f64 = seeds.iter().map(|s| s.wall_s).sum();
            if core_s > 0.0 {
                round::decimals(ops.submitted as f64 / core_s, 1)
            } else {
                0.0
            }
        },
    };

    Report {
        scenario: scenario.to_string(),
        seed: base_seed,
        seeds: n as u64,
        ops,
        pool,
        rpc,
        latency_ms,
        retries,
        invariants: Invariants {
            checked: invariants_checked.to_vec(),
            violations,
            unexpected: violation_counts.keys().cloned().collect(),
            counts: violation_counts,
            expected: Vec::new(),
            missing_expected: Vec::new(),
        },
        slo: Slo {
            pass: failed.is_empty(),
            failed,
            checks,
        },
        per_seed,
        host,
        trigger: Vec::new(),
        recovery_s: None,
        metastable: Some(false),
    }
}

impl Report {
    /// `report.json`: pretty-printed, keys in the contract's order, with a trailing newline.
    pub fn to_json(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).expect("a report always serialises");
        s.push('\n');
        s
    }

    /// The report without its `host` object, as a JSON value: what must be identical
    /// between two runs of the same scenario, seeds and binary.
    pub fn without_host(&self) -> serde_json::Value {
        serde_json::to_value(self.reproducible()).expect("a report always serialises")
    }

    /// [`to_json`](Report::to_json) without the `host` object: the bytes that must be
    /// identical between two runs of the same scenario, seeds and binary.
    pub fn to_json_without_host(&self) -> String {
        let mut s =
            serde_json::to_string_pretty(&self.reproducible()).expect("a report always serialises");
        s.push('\n');
        s
    }

    /// True when every judged SLO holds and exactly the expected invariants broke: none
    /// unexpected, none expected missing (see [`expect`](Report::expect)).
    pub fn passed(&self) -> bool {
        self.slo.pass
            && self.invariants.unexpected.is_empty()
            && self.invariants.missing_expected.is_empty()
    }

    /// Judges the violations against `[checks] expect`: the invariants the scenario is meant
    /// to break. Fills `invariants.expected`, `unexpected` and `missing_expected`.
    pub fn expect(&mut self, expect: &[String]) {
        let broken = self.violated_invariants();
        let inv = &mut self.invariants;
        inv.expected = expect.to_vec();
        inv.unexpected = broken
            .iter()
            .filter(|b| !expect.contains(b))
            .cloned()
            .collect();
        inv.missing_expected = expect
            .iter()
            .filter(|e| !broken.contains(e))
            .cloned()
            .collect();
    }

    /// The distinct invariant names that broke, in name order: those counted in
    /// `invariants.counts`, and any other named by a violation's `"invariant"` field.
    pub fn violated_invariants(&self) -> Vec<String> {
        let mut names: std::collections::BTreeSet<&str> = self
            .invariants
            .violations
            .iter()
            .filter_map(|v| v.get("invariant").and_then(serde_json::Value::as_str))
            .collect();
        names.extend(self.invariants.counts.keys().map(String::as_str));
        names.into_iter().map(str::to_string).collect()
    }

    fn reproducible(&self) -> Reproducible<'_> {
        Reproducible {
            scenario: &self.scenario,
            seed: self.seed,
            seeds: self.seeds,
            ops: &self.ops,
            pool: &self.pool,
            rpc: &self.rpc,
            latency_ms: &self.latency_ms,
            retries: &self.retries,
            invariants: &self.invariants,
            slo: &self.slo,
            per_seed: &self.per_seed,
            trigger: &self.trigger,
            recovery_s: self.recovery_s,
            metastable: self.metastable,
        }
    }

    /// Records what the recovery definitions said about the run (a calm run until told).
    pub fn judged(&mut self, j: &crate::recovery::Judgement) {
        self.trigger = j
            .trigger
            .iter()
            .map(|&(a, b)| [round::decimals(a, 6), round::decimals(b, 6)])
            .collect();
        self.recovery_s = j.recovery_s.map(|r| round::decimals(r, 3));
        self.metastable = j.metastable;
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use serde_json::json;

    pub(crate) fn names(n: usize) -> Vec<String> {
        (1..=n).map(|i| format!("conductor-{i}")).collect()
    }

    /// A seed with two conductors of 2 workers, warm-up 1 s, run to 11 s.
    pub(crate) fn seed(
        seed: u64,
        arrivals: [u64; 2],
        exhausted: [u64; 2],
        lat_ms: u64,
    ) -> SeedMetrics {
        let mut m = SeedMetrics::new(seed, 1_000_000, &names(2), 2, 4);
        m.submitted = 100 * seed;
        m.accepted = 90 * seed;
        m.rejected = 10 * seed;
        m.completed = 80 * seed;
        m.failed = 5 * seed;
        m.lost = 5 * seed;
        m.caller_runs = exhausted[0] + exhausted[1];
        for (i, (&a, &e)) in arrivals.iter().zip(&exhausted).enumerate() {
            for k in 0..a {
                m.pool_arrival(2_000_000, i, k < e);
            }
        }
        for _ in 0..100 {
            m.hold.record(500_000); // 0.5 s
            m.record_complete(2_000_000, "start", lat_ms * 1_000);
            m.accept.record(10_000);
            m.backlog_wait.record(1_000);
        }
        m.record_complete(2_000_000, "stop", 3 * lat_ms * 1_000);
        m.pool_busy[0].set(0, 2); // conductor 1 full all the time
        m.pool_busy[1].set(6_000_000, 1); // conductor 2: 1 busy for the last half
        m.rpc_busy[0].set(1_000_000, 1);
        m.retry_attempts = 10 * seed;
        m.gave_up = seed;
        m.violations = vec![json!({"invariant": "exclusive", "seed": seed})];
        m.events = 1_000;
        m.messages = 500;
        m.wall_s = 0.5;
        m.finish(11_000_000);
        m
    }

    fn checked() -> Vec<String> {
        vec!["exclusive".to_string(), "no-lost-ops".to_string()]
    }

    fn two_seed_report(slo: &SloSpec) -> Report {
        let seeds = [
            seed(1, [60, 40], [6, 2], 100),
            seed(2, [50, 50], [10, 0], 200),
        ];
        // A load phase of 100 s: 200 arrivals over 2 seeds are 1 per second.
        let slo = SloSpec {
            load_s: 100.0,
            ..slo.clone()
        };
        build_report("baseline", 1, &seeds, &checked(), &slo, Some(2), 2.0)
    }

    #[test]
    fn pools_two_seeds() {
        let r = two_seed_report(&SloSpec::default());
        assert_eq!((r.scenario.as_str(), r.seed, r.seeds), ("baseline", 1, 2));
        assert_eq!(
            r.ops,
            Ops {
                submitted: 300,
                accepted: 270,
                rejected: 30,
                completed: 240,
                failed: 15,
                lost: 15,
                cancelled: None,
            }
        );
        // Pool counters summed, ratio of the pooled counts.
        assert_eq!((r.pool.arrivals, r.pool.exhausted), (200, 18));
        assert!((r.pool.exhaustion_ratio - 0.09).abs() < 1e-12);
        assert_eq!(r.pool.per_conductor.len(), 2);
        assert_eq!(
            r.pool.per_conductor[0],
            ConductorRow {
                name: "conductor-1".into(),
                arrivals: 110,
                exhausted: 16
            }
        );
        assert_eq!(
            (
                r.pool.per_conductor[1].arrivals,
                r.pool.per_conductor[1].exhausted
            ),
            (90, 2)
        );
        // Levels: conductor 1 at 2 (full), conductor 2 at 1 for half of [1 s, 11 s].
        assert!(
            (r.pool.mean_busy - 2.5).abs() < 1e-9,
            "{}",
            r.pool.mean_busy
        );
        assert!((r.pool.time_full_ratio - 0.5).abs() < 1e-9);
        assert_eq!(r.pool.workers, 4);
        assert!(
            (r.pool.mean_hold_ms - 500.0).abs() <= 0.5,
            "{}",
            r.pool.mean_hold_ms
        );
        // Per-seed ratios 0.08 and 0.10: t(1) interval is wide; its low end is clipped to 0.
        let [lo, hi] = r.pool.exhaustion_ratio_ci95;
        let half = 12.706_205 * 0.01; // s = √2·0.01, /√2
        assert_eq!(lo, 0.0);
        assert!((hi - (0.09 + half)).abs() < 1e-5, "{hi}");
        // Erlang B at A = 1/s × 0.5 s for 2 workers: (0.125) / (1 + 0.5 + 0.125).
        let e = r.pool.erlang_b.unwrap();
        assert!((e.offered_erlangs - 0.5).abs() < 1e-3);
        assert!((e.blocking - 0.125 / 1.625).abs() < 1e-3);
        // RPC.
        assert_eq!(r.rpc.caller_runs, 18);
        assert!((r.rpc.mean_busy_slots - 1.0).abs() < 1e-9);
        assert_eq!(r.rpc.slots, 8);
        assert!((r.rpc.backlog_wait_ms.p99 - 1.0).abs() <= 0.001);
        assert_eq!(r.rpc.backlog_wait_ms.count, 200);
        // Histograms merged: 100 starts at 100 ms, 100 at 200 ms, stops at 300 and 600 ms;
        // the median is the 101st value.
        let c = &r.latency_ms.complete;
        assert_eq!(c.count, 202);
        assert!((c.p50 - 200.0).abs() <= 0.2, "{c:?}");
        assert!((c.mean - 30_900.0 / 202.0).abs() <= 0.2, "{c:?}");
        assert!((r.latency_ms.by_op["start"].p50 - 100.0).abs() <= 0.1);
        assert!((c.p90 - 200.0).abs() <= 0.2, "{c:?}");
        assert!((c.max - 600.0).abs() <= 0.6, "{c:?}");
        assert_eq!(
            r.latency_ms.by_op.keys().collect::<Vec<_>>(),
            ["start", "stop"]
        );
        assert_eq!(r.latency_ms.by_op["stop"].count, 2);
        assert!((r.latency_ms.by_op["stop"].p99 - 600.0).abs() <= 0.6);
        assert!((r.latency_ms.accept.p50 - 10.0).abs() <= 0.01);
        // Retries: (300 + 30) / 300.
        assert_eq!(r.retries.attempts, 30);
        assert!((r.retries.amplification - 1.1).abs() < 1e-12);
        assert_eq!(r.retries.gave_up, 3);
        // Violations concatenated in seed order.
        assert_eq!(r.invariants.checked, checked());
        assert_eq!(r.invariants.violations.len(), 2);
        assert_eq!(r.invariants.violations[1]["seed"], 2);
        assert_eq!(r.violated_invariants(), ["exclusive"]);
        assert!(!r.passed()); // violations
                              // Per seed kept.
        assert_eq!(r.per_seed.len(), 2);
        let s1 = &r.per_seed[0];
        assert_eq!(
            (s1.seed, s1.arrivals, s1.exhausted, s1.violations),
            (1, 100, 8, 1)
        );
        assert!((s1.exhaustion_ratio - 0.08).abs() < 1e-12);
        assert!((r.per_seed[1].exhaustion_ratio - 0.1).abs() < 1e-12);
        assert!((r.per_seed[1].p99_ms - 200.0).abs() <= 0.2);
        assert_eq!((s1.warmup_s, s1.sim_s), (1.0, 11.0));
        // Host.
        assert_eq!((r.host.events, r.host.messages), (2_000, 1_000));
        assert_eq!(r.host.wall_s, 2.0);
        assert_eq!(r.host.sim_ops_per_wall_s, 150.0);
    }

    #[test]
    fn json_is_byte_identical_and_keeps_design_key_order() {
        let a = two_seed_report(&SloSpec::default());
        let b = two_seed_report(&SloSpec::default());
        assert_eq!(a.to_json(), b.to_json());
        assert_eq!(a.to_json_without_host(), b.to_json_without_host());
        assert_eq!(a.to_json(), a.to_json());
        let json = a.to_json();
        assert!(json.ends_with("}\n"));

        // Top level, in order.
        let top = [
            "scenario",
            "seed",
            "seeds",
            "ops",
            "pool",
            "rpc",
            "latency_ms",
            "retries",
            "invariants",
            "slo",
            "per_seed",
            "host",
            "trigger",
            "recovery_s",
            "metastable",
        ];
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(v.as_object().unwrap().len(), top.len());
        let pos = |key: &str, from: usize| {
            json[from..]
                .find(&format!("\"{key}\":"))
                .map(|p| p + from)
                .unwrap_or_else(|| panic!("missing key {key}"))
        };
        let mut at = 0;
        for key in top {
            let p = pos(key, at);
            assert!(p >= at, "{key} out of order");
            at = p;
        }
        // Documented keys of each object, in order.
        let objects: [(&str, &[&str]); 8] = [
            (
                "ops",
                &[
                    "submitted",
                    "accepted",
                    "rejected",
                    "completed",
                    "failed",
                    "lost",
                ],
            ),
            (
                "pool",
                &[
                    "arrivals",
                    "exhausted",
                    "exhaustion_ratio",
                    "time_full_ratio",
                    "mean_busy",
                    "mean_hold_ms",
                    "per_conductor",
                ],
            ),
            (
                "rpc",
                &["caller_runs", "mean_busy_slots", "backlog_wait_ms"],
            ),
            ("complete", &["p50", "p90", "p99", "p999", "max", "mean"]),
            ("retries", &["attempts", "amplification", "gave_up"]),
            ("invariants", &["checked", "violations"]),
            ("slo", &["pass", "failed"]),
            (
                "host",
                &["wall_s", "events", "messages", "sim_ops_per_wall_s"],
            ),
        ];
        for (object, keys) in objects {
            let mut at = pos(object, 0);
            for key in keys {
                let p = pos(key, at);
                assert!(p > at, "{object}.{key} out of order");
                at = p;
            }
            let obj = v
                .pointer(&format!("/{object}"))
                .or_else(|| v.pointer(&format!("/latency_ms/{object}")))
                .unwrap();
            for key in keys {
                assert!(obj.get(key).is_some(), "{object}.{key} missing");
            }
        }
        for key in [
            "seed",
            "arrivals",
            "exhausted",
            "exhaustion_ratio",
            "violations",
        ] {
            assert!(v["per_seed"][0].get(key).is_some(), "per_seed.{key}");
        }
        assert!(v["per_seed"][0]["violations"].is_u64());
        assert!(v["latency_ms"]["accept"]["p99"].is_f64());
        assert!(v["rpc"]["backlog_wait_ms"]["p50"].is_f64());
        assert_eq!(v["pool"]["per_conductor"][1]["name"], "conductor-2");

        // Without host: the same, minus `host`.
        let nh = a.without_host();
        assert!(nh.get("host").is_none());
        let mut full = v.clone();
        full.as_object_mut().unwrap().remove("host");
        assert_eq!(nh, full);
        // Up to `per_seed`, the same bytes (the added keys follow `host`).
        let nh_json = a.to_json_without_host();
        let cut = nh_json.find(",\n  \"trigger\"").expect("the added keys");
        assert!(json.starts_with(&nh_json[..cut]));

        // Only host changes when wall time changes.
        let seeds = [
            seed(1, [60, 40], [6, 2], 100),
            seed(2, [50, 50], [10, 0], 200),
        ];
        let c = build_report(
            "baseline",
            1,
            &seeds,
            &checked(),
            &SloSpec::of(None, None),
            Some(2),
            9.0,
        );
        assert_ne!(a.to_json(), c.to_json());
        assert_eq!(a.to_json_without_host(), c.to_json_without_host());
    }

    #[test]
    fn slo_pass_and_fail() {
        // Pooled ratio 0.09; pooled p99: 202 values, the 200th is at 200 ms.
        let pass = two_seed_report(&SloSpec::of(Some(0.1), Some(1_000.0)));
        assert!(pass.slo.pass);
        assert!(pass.slo.failed.is_empty());
        assert_eq!(pass.slo.checks.len(), 2);

        let ratio_fails = two_seed_report(&SloSpec::of(Some(0.01), Some(1_000.0)));
        assert!(!ratio_fails.slo.pass);
        assert_eq!(ratio_fails.slo.failed, ["exhaustion_ratio_max"]);

        let both_fail = two_seed_report(&SloSpec::of(Some(0.0), Some(150.0)));
        assert_eq!(both_fail.slo.failed, ["exhaustion_ratio_max", "p99_max"]);
        let p99 = &both_fail.slo.checks[1];
        assert_eq!(
            (p99.name.as_str(), p99.limit, p99.pass),
            ("p99_max", 150.0, false)
        );
        assert!((p99.value - 200.0).abs() <= 0.2);

        let p99_only = two_seed_report(&SloSpec::of(None, Some(199.0)));
        assert_eq!(p99_only.slo.failed, ["p99_max"]);

        let unjudged = two_seed_report(&SloSpec::default());
        assert!(unjudged.slo.pass && unjudged.slo.checks.is_empty());
        assert_eq!(unjudged.to_json().matches("\"failed\": []").count(), 1);
    }

    #[test]
    fn passed_needs_slo_and_no_violations() {
        let mut s = seed(1, [10, 0], [0, 0], 100);
        s.violations.clear();
        let ok = build_report(
            "x",
            1,
            std::slice::from_ref(&s),
            &[],
            &SloSpec::default(),
            None,
            1.0,
        );
        assert!(ok.passed());
        let slo = SloSpec::of(None, Some(1.0));
        let bad = build_report("x", 1, &[s], &[], &slo, None, 1.0);
        assert!(!bad.passed());
    }

    #[test]
    fn expectations_decide_the_verdict() {
        let mut s = seed(1, [10, 0], [0, 0], 100);
        s.violations = vec![
            json!({"invariant": "exclusive"}),
            json!({"invariant": "exclusive"}),
            json!({"invariant": "per-container-order"}),
        ];
        // The checker listed three but counted more.
        s.violation_counts = [
            ("exclusive".to_string(), 30),
            ("per-container-order".to_string(), 1),
        ]
        .into_iter()
        .collect();
        let mut r = build_report("x", 1, &[s], &checked(), &SloSpec::default(), None, 1.0);
        assert_eq!(r.invariants.counts["exclusive"], 30);
        assert_eq!(r.per_seed[0].violations, 31);
        assert_eq!(
            r.invariants.unexpected,
            ["exclusive", "per-container-order"]
        );
        assert!(!r.passed());
        let both = ["exclusive".to_string(), "per-container-order".to_string()];
        r.expect(&both);
        assert!(r.passed(), "{:?}", r.invariants);
        assert_eq!(r.invariants.expected, both);
        r.expect(&both[..1]);
        assert_eq!(r.invariants.unexpected, ["per-container-order"]);
        assert!(!r.passed());
        let mut three = both.to_vec();
        three.push("converges".to_string());
        r.expect(&three);
        assert_eq!(r.invariants.missing_expected, ["converges"]);
        assert!(r.invariants.unexpected.is_empty());
        assert!(!r.passed());
        let v: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
        for key in [
            "checked",
            "violations",
            "counts",
            "expected",
            "unexpected",
            "missing_expected",
        ] {
            assert!(v["invariants"].get(key).is_some(), "invariants.{key}");
        }
    }

    #[test]
    fn one_seed_with_batches_uses_batch_means() {
        let mut s = seed(3, [900, 100], [90, 10], 100);
        // Ten batches of 100 arrivals; exhaustions alternate 5 and 15 (ratio 0.1 overall).
        s.batches = (0..10)
            .map(|i| (100, if i % 2 == 0 { 5 } else { 15 }))
            .collect();
        let r = build_report("x", 3, &[s], &[], &SloSpec::default(), None, 1.0);
        let [lo, hi] = r.pool.exhaustion_ratio_ci95;
        // sd of the batch ratios = 0.0527, se = 0.01667, t(9) = 2.262: half-width 0.0377,
        // wider than the binomial 0.0186.
        assert!(
            (hi - lo - 2.0 * 2.262_157 * 0.052_705 / 10f64.sqrt()).abs() < 1e-4,
            "{lo} {hi}"
        );
        assert!(((lo + hi) / 2.0 - 0.1).abs() < 1e-5, "{lo} {hi}");
    }

    #[test]
    fn one_seed_uses_the_binomial_interval() {
        let s = seed(3, [900, 100], [90, 10], 100);
        let r = build_report("x", 3, &[s], &[], &SloSpec::default(), None, 1.0);
        assert!((r.pool.exhaustion_ratio - 0.1).abs() < 1e-12);
        let half = 1.959_964 * (0.1f64 * 0.9 / 1_000.0).sqrt();
        let [lo, hi] = r.pool.exhaustion_ratio_ci95;
        assert!((lo - (0.1 - half)).abs() < 1e-5, "{lo}");
        assert!((hi - (0.1 + half)).abs() < 1e-5, "{hi}");
        assert!(r.pool.erlang_b.is_none());
        assert!(!r.to_json().contains("erlang_b"));
        assert_eq!(r.per_seed.len(), 1);
    }

    #[test]
    fn empty_inputs_give_a_valid_zero_report() {
        let r = build_report("empty", 1, &[], &[], &SloSpec::default(), Some(10), 0.0);
        assert_eq!(r.seeds, 0);
        assert_eq!(r.pool.exhaustion_ratio, 0.0);
        assert_eq!(r.pool.exhaustion_ratio_ci95, [0.0, 0.0]);
        assert_eq!(r.retries.amplification, 1.0);
        assert_eq!(r.host.sim_ops_per_wall_s, 0.0);
        assert_eq!(r.latency_ms.complete.p99, 0.0);
        let v: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
        assert_eq!(v["pool"]["erlang_b"]["blocking"], 0.0);
        // A seed whose whole run was warm-up.
        let s = SeedMetrics::new(1, u64::MAX, &names(1), 10, 64);
        let r = build_report("warm", 1, &[s], &[], &SloSpec::default(), None, 1.0);
        assert_eq!(r.pool.mean_busy, 0.0);
        // Nothing is null but a calm run's recovery time (there was nothing to recover from).
        let json = r.to_json().replace("\"recovery_s\": null", "");
        assert!(!json.contains("null"), "{json}");
    }
}
