//! The `[slo]` objectives: a small registry of what a scenario may bound, each item with its
//! key, its doc, its unit, which way its limit goes and how it is measured — once, for
//! `run`'s report.json and for `sweep`'s rows (which judge with confidence).
//!
//! The scenario parser reads the keys from here ([`Measure::SCALARS`], [`Percentile::ALL`],
//! [`Latency`]), so a new objective is one match arm in each method of [`Measure`] and a
//! row in docs/scenario.md.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::histo::Histo;
use crate::report::Ops;
use crate::round;
use crate::stats::{binomial_ci95, mean_ci95};

/// Which way a limit goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Bound {
    /// The measured value must be at or under the limit (`…_max`).
    #[default]
    Max,
    /// The measured value must be at or over the limit (`…_min`).
    Min,
}

/// The unit of a limit and of its measured value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Unit {
    /// A ratio in [0, 1].
    #[default]
    Ratio,
    /// Milliseconds (a duration in the scenario file).
    Ms,
    /// Per simulated second of the measured load phase.
    PerS,
}

/// A percentile the latency objectives take: `p50` … `p9999`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Percentile(u8);

/// The percentiles, by name and quantile.
const PERCENTILES: [(&str, f64); 7] = [
    ("p50", 0.50),
    ("p75", 0.75),
    ("p90", 0.90),
    ("p95", 0.95),
    ("p99", 0.99),
    ("p999", 0.999),
    ("p9999", 0.9999),
];

impl Percentile {
    /// Every percentile an objective may bound, in increasing order.
    pub const ALL: [Percentile; 7] = [
        Percentile(0),
        Percentile(1),
        Percentile(2),
        Percentile(3),
        Percentile(4),
        Percentile(5),
        Percentile(6),
    ];

    /// The 99th percentile.
    pub const P99: Percentile = Percentile(4);

    /// Its name: `p50`, `p999`, …
    pub fn name(self) -> &'static str {
        PERCENTILES[self.0 as usize].0
    }

    /// Its quantile in (0, 1).
    pub fn q(self) -> f64 {
        PERCENTILES[self.0 as usize].1
    }

    /// The percentile named `name`.
    pub fn named(name: &str) -> Option<Percentile> {
        Percentile::ALL.into_iter().find(|p| p.name() == name)
    }
}

/// Which latency a percentile objective bounds.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Latency {
    /// Completion latency of every op that became terminal, from its intended send time
    /// (`latency_ms.complete`): key `pNN_max`.
    Complete,
    /// The API's answer, from the intended send time (`latency_ms.accept`): key
    /// `accept_pNN_max`. Under `caller-runs` the figure that moves with the pool's size.
    Accept,
    /// Completion latency of one op kind (`latency_ms.by_op.KIND`): key
    /// `by_op.KIND.pNN_max`.
    Op(String),
}

/// What an objective measures.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Measure {
    /// `exhaustion_ratio_max`.
    ExhaustionRatio,
    /// `failed_ratio_max`.
    FailedRatio,
    /// `rejected_ratio_max`.
    RejectedRatio,
    /// `goodput_min`.
    GoodputPerS,
    /// `pNN_max`, `accept_pNN_max`, `by_op.KIND.pNN_max`.
    Latency(Latency, Percentile),
}

impl Measure {
    /// The objectives that are not percentiles, in the order they are judged.
    pub const SCALARS: [Measure; 4] = [
        Measure::ExhaustionRatio,
        Measure::FailedRatio,
        Measure::RejectedRatio,
        Measure::GoodputPerS,
    ];

    /// The key under `[slo]`: `exhaustion_ratio_max`, `accept_p99_max`,
    /// `by_op.create.p99_max`.
    pub fn key(&self) -> String {
        match self {
            Measure::ExhaustionRatio => "exhaustion_ratio_max".into(),
            Measure::FailedRatio => "failed_ratio_max".into(),
            Measure::RejectedRatio => "rejected_ratio_max".into(),
            Measure::GoodputPerS => "goodput_min".into(),
            Measure::Latency(Latency::Complete, p) => format!("{}_max", p.name()),
            Measure::Latency(Latency::Accept, p) => format!("accept_{}_max", p.name()),
            Measure::Latency(Latency::Op(op), p) => format!("by_op.{op}.{}_max", p.name()),
        }
    }

    /// What it bounds and how it is measured (docs/scenario.md says the same).
    pub fn doc(&self) -> &'static str {
        match self {
            Measure::ExhaustionRatio => {
                "pool arrivals that found every worker busy / pool arrivals; a sweep judges \
                 the upper bound of its 95% interval"
            }
            Measure::FailedRatio => {
                "ops accepted that finished failed / ops accepted; a sweep judges the upper \
                 bound of the binomial 95% interval"
            }
            Measure::RejectedRatio => {
                "requests the API refused / requests submitted; a sweep judges the upper bound \
                 of the binomial 95% interval"
            }
            Measure::GoodputPerS => {
                "goodput (requests answered successfully before the client gave up on them, \
                 docs/retry-research.md) per second of the measured load phase, the mean over \
                 seeds; a sweep judges the lower bound of its 95% interval"
            }
            Measure::Latency(Latency::Complete, _) => {
                "the percentile of the pooled completion latency (nothing completed fails it)"
            }
            Measure::Latency(Latency::Accept, _) => {
                "the percentile of the pooled time to the API's answer (nothing answered \
                 fails it)"
            }
            Measure::Latency(Latency::Op(_), _) => {
                "the percentile of the pooled completion latency of one op kind (none of that \
                 kind completed fails it)"
            }
        }
    }

    /// The unit of its limit.
    pub fn unit(&self) -> Unit {
        match self {
            Measure::ExhaustionRatio | Measure::FailedRatio | Measure::RejectedRatio => Unit::Ratio,
            Measure::GoodputPerS => Unit::PerS,
            Measure::Latency(..) => Unit::Ms,
        }
    }

    /// Which way its limit goes.
    pub fn bound(&self) -> Bound {
        match self {
            Measure::GoodputPerS => Bound::Min,
            _ => Bound::Max,
        }
    }

    /// `(value, judged)`: the pooled value, and the figure compared with the limit — the
    /// value itself, or with `confident` its 95% bound on the failing side. `None`: nothing to
    /// measure (no latency recorded), which fails the objective.
    pub fn measure(&self, m: &Measured<'_>, confident: bool) -> Option<(f64, f64)> {
        let ratio = |k: u64, n: u64| {
            let v = crate::seed::ratio(k, n);
            let hi = if confident { binomial_ci95(k, n).2 } else { v };
            (v, hi)
        };
        match self {
            Measure::ExhaustionRatio => Some((
                m.exhaustion_ratio,
                if confident {
                    m.exhaustion_ci95[1]
                } else {
                    m.exhaustion_ratio
                },
            )),
            Measure::FailedRatio => Some(ratio(m.ops.failed, m.ops.accepted)),
            Measure::RejectedRatio => Some(ratio(m.ops.rejected, m.ops.submitted)),
            Measure::GoodputPerS => {
                let per_s: Vec<f64> = m
                    .goodput_per_seed
                    .iter()
                    .map(|&g| {
                        if m.load_s > 0.0 {
                            g as f64 / m.load_s
                        } else {
                            0.0
                        }
                    })
                    .collect();
                let (mean, lo, _) = mean_ci95(&per_s);
                let lo = if confident && per_s.len() > 1 {
                    lo.max(0.0)
                } else {
                    mean
                };
                Some((mean, lo))
            }
            Measure::Latency(of, p) => {
                let h = match of {
                    Latency::Complete => Some(m.complete),
                    Latency::Accept => Some(m.accept),
                    Latency::Op(op) => m.by_op.get(op),
                }?;
                if h.is_empty() {
                    return None;
                }
                let v = h.quantile_ms(p.q());
                Some((v, v))
            }
        }
    }
}

/// One objective: what, and its limit (in [`Measure::unit`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Objective {
    /// What is bounded.
    pub measure: Measure,
    /// The limit: a ratio, ms, or per second.
    pub limit: f64,
}

/// What the objectives are measured on: one run's seeds pooled.
#[derive(Debug, Clone, Copy)]
pub struct Measured<'a> {
    /// Op counters summed over seeds.
    pub ops: Ops,
    /// The pooled exhaustion ratio (unrounded).
    pub exhaustion_ratio: f64,
    /// Its 95% interval, as report.json has it.
    pub exhaustion_ci95: [f64; 2],
    /// Pooled completion latency.
    pub complete: &'a Histo,
    /// Pooled accept latency.
    pub accept: &'a Histo,
    /// Pooled completion latency per op name.
    pub by_op: &'a BTreeMap<String, Histo>,
    /// Each seed's goodput, in seed order.
    pub goodput_per_seed: &'a [u64],
    /// The measured load phase (duration − warm-up), simulated seconds.
    pub load_s: f64,
}

/// One judged objective (report.json `slo.checks`, sweep.json `rows[].slo.checks`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SloCheck {
    /// The objective's key under `[slo]` (`p99_max`, `by_op.create.p99_max`, …).
    pub name: String,
    /// The limit (a ratio, ms, or per second).
    pub limit: f64,
    /// The measured value, in the same unit (0 when nothing was measured).
    pub value: f64,
    /// Whether it holds.
    pub pass: bool,
    /// The unit (text summary and tables).
    #[serde(skip)]
    pub unit: Unit,
    /// Which way the limit goes.
    #[serde(skip)]
    pub bound: Bound,
    /// The figure compared with the limit when judged with confidence (a sweep's rows).
    #[serde(skip)]
    pub judged: f64,
}

/// Judges every objective on `m`, in the order given. With `confident` each is judged on its
/// 95% bound on the failing side (a sweep's rows); otherwise on the pooled value (`run`).
pub fn judge(objectives: &[Objective], m: &Measured<'_>, confident: bool) -> Vec<SloCheck> {
    objectives
        .iter()
        .map(|o| {
            let measured = o.measure.measure(m, confident);
            let (value, judged) = measured.unwrap_or((0.0, 0.0));
            let pass = measured.is_some()
                && match o.measure.bound() {
                    Bound::Max => judged <= o.limit,
                    Bound::Min => judged >= o.limit,
                };
            let round = |x: f64| match o.measure.unit() {
                Unit::Ms => round::ms(x),
                Unit::Ratio | Unit::PerS => round::ratio(x),
            };
            SloCheck {
                name: o.measure.key(),
                limit: o.limit,
                value: round(value),
                pass,
                unit: o.measure.unit(),
                bound: o.measure.bound(),
                judged: round(judged),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn histo(values_ms: &[u64]) -> Histo {
        let mut h = Histo::new();
        for v in values_ms {
            h.record(v * 1000);
        }
        h
    }

    struct Fixture {
        complete: Histo,
        accept: Histo,
        by_op: BTreeMap<String, Histo>,
        goodput: Vec<u64>,
    }

    fn fixture() -> Fixture {
        Fixture {
            // 1..=100 ms: p50 = 50 ms, p99 = 99 ms.
            complete: histo(&(1..=100).collect::<Vec<_>>()),
            accept: histo(&[5; 100]),
            by_op: BTreeMap::from([("create".to_string(), histo(&[1000; 10]))]),
            goodput: vec![100, 120],
        }
    }

    fn measured(f: &Fixture) -> Measured<'_> {
        Measured {
            ops: Ops {
                submitted: 1000,
                accepted: 800,
                rejected: 200,
                completed: 780,
                failed: 20,
                lost: 0,
                cancelled: None,
            },
            exhaustion_ratio: 0.05,
            exhaustion_ci95: [0.03, 0.07],
            complete: &f.complete,
            accept: &f.accept,
            by_op: &f.by_op,
            goodput_per_seed: &f.goodput,
            load_s: 10.0,
        }
    }

    fn one(measure: Measure, limit: f64, confident: bool) -> SloCheck {
        let f = fixture();
        judge(&[Objective { measure, limit }], &measured(&f), confident).remove(0)
    }

    #[test]
    fn keys_name_every_objective() {
        let keys: Vec<String> = Measure::SCALARS.iter().map(Measure::key).collect();
        assert_eq!(
            keys,
            [
                "exhaustion_ratio_max",
                "failed_ratio_max",
                "rejected_ratio_max",
                "goodput_min"
            ]
        );
        let p999 = Percentile::named("p999").unwrap();
        assert_eq!(p999.q(), 0.999);
        assert_eq!(
            Measure::Latency(Latency::Op("create".into()), p999).key(),
            "by_op.create.p999_max"
        );
        assert_eq!(
            Measure::Latency(Latency::Accept, Percentile::P99).key(),
            "accept_p99_max"
        );
        assert_eq!(Percentile::named("p98"), None);
        for m in Measure::SCALARS {
            assert!(!m.doc().is_empty());
        }
    }

    #[test]
    fn exhaustion_ratio_is_the_pooled_ratio_or_its_upper_bound() {
        assert!(one(Measure::ExhaustionRatio, 0.06, false).pass);
        let c = one(Measure::ExhaustionRatio, 0.06, true);
        assert!(!c.pass && c.value == 0.05 && c.judged == 0.07, "{c:?}");
    }

    #[test]
    fn failed_ratio_is_failed_over_accepted() {
        let c = one(Measure::FailedRatio, 0.025, false);
        assert!(c.pass && c.value == 0.025, "{c:?}");
        // 20 of 800: the binomial upper bound is above 2.5%.
        let c = one(Measure::FailedRatio, 0.025, true);
        assert!(!c.pass && c.judged > 0.025, "{c:?}");
        assert!(!one(Measure::FailedRatio, 0.01, false).pass);
    }

    #[test]
    fn rejected_ratio_is_rejected_over_submitted() {
        let c = one(Measure::RejectedRatio, 0.2, false);
        assert!(c.pass && c.value == 0.2, "{c:?}");
        assert!(!one(Measure::RejectedRatio, 0.19, false).pass);
    }

    #[test]
    fn goodput_is_a_floor_per_second() {
        // 10/s and 12/s: mean 11/s.
        let c = one(Measure::GoodputPerS, 11.0, false);
        assert!(c.pass && c.value == 11.0 && c.bound == Bound::Min, "{c:?}");
        assert!(!one(Measure::GoodputPerS, 11.5, false).pass);
        // Two seeds this far apart: the lower bound is far under the mean.
        assert!(!one(Measure::GoodputPerS, 11.0, true).pass);
    }

    #[test]
    fn latency_percentiles_of_each_source() {
        let p50 = Percentile::named("p50").unwrap();
        let c = one(Measure::Latency(Latency::Complete, p50), 50.1, false);
        assert!(c.pass && (c.value - 50.0).abs() < 0.1, "{c:?}");
        let c = one(
            Measure::Latency(Latency::Complete, Percentile::P99),
            98.0,
            false,
        );
        assert!(!c.pass && (c.value - 99.0).abs() < 0.1, "{c:?}");
        assert!(
            one(
                Measure::Latency(Latency::Accept, Percentile::P99),
                5.01,
                false
            )
            .pass
        );
        assert!(
            !one(
                Measure::Latency(Latency::Accept, Percentile::P99),
                4.9,
                false
            )
            .pass
        );
        let create = Measure::Latency(Latency::Op("create".into()), Percentile::P99);
        assert!(!one(create.clone(), 999.0, false).pass);
        assert!(one(create, 1001.0, false).pass);
        // An op kind that never completed has no latency: the objective fails.
        let stop = one(
            Measure::Latency(Latency::Op("stop".into()), Percentile::P99),
            1e9,
            false,
        );
        assert!(!stop.pass && stop.value == 0.0);
    }
}
