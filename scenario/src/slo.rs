//! `[slo]`: the objectives a scenario states, typed as the file has them (ratios and rates as
//! numbers, latencies as durations), in the order they are judged. What each one means and
//! how it is measured is the registry in `reports::slo`; this is its scenario-file side.

use reports::slo::{Latency, Measure, Objective, Percentile};
use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};
use std::collections::BTreeMap;
use std::time::Duration;

/// A limit as the scenario file gives it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SloLimit {
    /// A ratio in [0, 1] or a rate per second.
    Number(f64),
    /// A latency.
    Duration(Duration),
}

impl SloLimit {
    /// In the unit the reports judge it in (ms for a duration).
    pub fn value(self) -> f64 {
        match self {
            SloLimit::Number(x) => x,
            SloLimit::Duration(d) => d.as_secs_f64() * 1e3,
        }
    }
}

/// One objective of `[slo]`.
#[derive(Debug, Clone, PartialEq)]
pub struct SloObjective {
    /// What it bounds.
    pub measure: Measure,
    /// Its limit.
    pub limit: SloLimit,
}

/// `[slo]`: the objectives present, in the order they are judged (absent keys are not
/// judged): `exhaustion_ratio_max`, the completion percentiles (`p50_max` … `p9999_max`),
/// `failed_ratio_max`, `rejected_ratio_max`, `goodput_min`, the accept percentiles, then
/// `by_op` by op kind and percentile.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Slo {
    /// The objectives.
    pub objectives: Vec<SloObjective>,
}

impl Slo {
    /// The objectives as the reports judge them.
    pub fn objectives(&self) -> Vec<Objective> {
        self.objectives
            .iter()
            .map(|o| Objective {
                measure: o.measure.clone(),
                limit: o.limit.value(),
            })
            .collect()
    }

    /// The limit of `measure`, as the file gives it.
    pub fn limit(&self, measure: &Measure) -> Option<SloLimit> {
        self.objectives
            .iter()
            .find(|o| &o.measure == measure)
            .map(|o| o.limit)
    }

    /// The keys `[slo]` itself accepts (`by_op` included), in the order judged.
    pub(crate) fn keys() -> Vec<String> {
        let mut k = vec![Measure::ExhaustionRatio.key()];
        k.extend(latency_keys(&Latency::Complete));
        k.extend(Measure::SCALARS[1..].iter().map(Measure::key));
        k.extend(latency_keys(&Latency::Accept));
        k.push("by_op".into());
        k
    }

    /// The measures of `[slo]`'s own keys, in the order judged (the keys of [`Slo::keys`]
    /// but `by_op`).
    pub(crate) fn measures() -> Vec<Measure> {
        let mut m = vec![Measure::ExhaustionRatio];
        m.extend(latencies(Latency::Complete));
        m.extend(Measure::SCALARS[1..].iter().cloned());
        m.extend(latencies(Latency::Accept));
        m
    }
}

/// Every percentile objective of one latency, in increasing order.
pub(crate) fn latencies(of: Latency) -> Vec<Measure> {
    Percentile::ALL
        .iter()
        .map(|p| Measure::Latency(of.clone(), *p))
        .collect()
}

/// The keys of [`latencies`] relative to their table (`p99_max`, `accept_p99_max`; a
/// `by_op.KIND` table's own `p99_max`).
pub(crate) fn latency_keys(of: &Latency) -> Vec<String> {
    Percentile::ALL
        .iter()
        .map(|p| match of {
            Latency::Accept => format!("accept_{}_max", p.name()),
            Latency::Complete | Latency::Op(_) => format!("{}_max", p.name()),
        })
        .collect()
}

/// A limit back in the file's form.
struct L(SloLimit);

impl Serialize for L {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            SloLimit::Number(x) => s.serialize_f64(x),
            SloLimit::Duration(d) => s.serialize_str(&humantime::format_duration(d).to_string()),
        }
    }
}

impl Serialize for Slo {
    /// Back to `[slo]`: the plain keys, then `by_op` as a table of tables (TOML wants the
    /// tables last).
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut by_op: BTreeMap<&str, BTreeMap<String, L>> = BTreeMap::new();
        let mut map = s.serialize_map(None)?;
        for o in &self.objectives {
            match &o.measure {
                Measure::Latency(Latency::Op(op), p) => {
                    by_op
                        .entry(op.as_str())
                        .or_default()
                        .insert(format!("{}_max", p.name()), L(o.limit));
                }
                m => map.serialize_entry(&m.key(), &L(o.limit))?,
            }
        }
        if !by_op.is_empty() {
            map.serialize_entry("by_op", &by_op)?;
        }
        map.end()
    }
}
