//! `compare`: every combination of some `--vary` values of one scenario (retry policies,
//! budgets, breakers), each run on the same seeds, with goodput, amplification, latency and
//! recovery side by side and paired differences per seed against the first row
//! (`compare.json`, `compare.csv`, `report.html`).
//!
//! The axes are `matrix`'s ([`Axis`]: `KEY=V1,V2,…`, a value bringing keys along after `+`);
//! the rows are built over one [`Source`] as `sweep`'s are, and the (row, seed) jobs run
//! together at most `jobs` at a time. Every row runs seeds `first .. first + seeds`: common
//! random numbers, so each seed's arrivals are the same on every row.

use crate::matrix::{combinations, label, Axis};
use crate::run::{report, run_many};
use crate::sweep::{merged_timeline, Source};
use crate::world::RunError;
use reports::compare::{Compare, RowInput, SeedOutcome};
use reports::compare_page::VariantSeries;
use reports::recovery::{self, Judgement, Phase, Window};
use reports::{Histo, SeedMetrics, Timeline};
use scenario::{Scenario, ScenarioError};
use std::collections::BTreeMap;

/// The most rows a comparison may have.
pub const MAX_ROWS: usize = 1_000;

/// The most rows × seeds runs a comparison may make.
pub const MAX_RUNS: u64 = 100_000;

/// Why a comparison could not be made.
#[derive(Debug, thiserror::Error)]
pub enum CompareError {
    /// A malformed or inapplicable `--vary`.
    #[error("--vary `{spec}`: {message}")]
    Vary {
        /// The spec as given (empty when the flag is missing).
        spec: String,
        /// What was expected.
        message: String,
    },
    /// The scenario, or a combination of values, is not valid.
    #[error(transparent)]
    Scenario(#[from] ScenarioError),
    /// A run failed.
    #[error(transparent)]
    Run(#[from] RunError),
}

impl CompareError {
    /// True for bad input (exit status 2).
    pub fn is_bad_input(&self) -> bool {
        !matches!(self, CompareError::Run(_))
    }
}

/// One row: a combination of values.
#[derive(Debug, Clone)]
pub struct Variant {
    /// Its value per `--vary` key (a number when the value is one, else its text).
    pub params: BTreeMap<String, serde_json::Value>,
    /// The `--set`s that make it.
    pub sets: Vec<String>,
    /// Its scenario.
    pub scn: Scenario,
}

/// A comparison ready to run.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The axes, in the order given.
    pub axes: Vec<Axis>,
    /// The rows: the cartesian product, the last axis fastest.
    pub rows: Vec<Variant>,
    /// The first seed.
    pub first: u64,
    /// Seeds per row.
    pub seeds: u64,
}

/// A value as `params` shows it: a number when it is one, else the value as given.
fn param(v: &str) -> serde_json::Value {
    if let Ok(i) = v.parse::<i64>() {
        return i.into();
    }
    match v.parse::<f64>() {
        Ok(f) if f.is_finite() => {
            serde_json::Number::from_f64(f).map_or_else(|| v.into(), serde_json::Value::Number)
        }
        _ => serde_json::Value::String(label(v)),
    }
}

impl Plan {
    /// Parses the `--vary` specs and expands them over `source`.
    ///
    /// # Errors
    /// [`CompareError::Vary`] for a spec without key or values, or one whose key or value the
    /// scenario refuses (named by its flag); the scenario's error for a row that is invalid
    /// only in combination.
    pub fn new(
        source: &Source,
        vary: &[String],
        first: u64,
        seeds: u64,
    ) -> Result<Plan, CompareError> {
        if vary.is_empty() {
            return Err(CompareError::Vary {
                spec: String::new(),
                message: "expected at least one --vary KEY=V1,V2,…".into(),
            });
        }
        let axes: Vec<Axis> = vary
            .iter()
            .map(|v| {
                Axis::parse(v).map_err(|_| CompareError::Vary {
                    spec: v.clone(),
                    message: "expected KEY=V1,V2,… with a key and at least one value".into(),
                })
            })
            .collect::<Result<_, _>>()?;
        let n = axes
            .iter()
            .try_fold(1usize, |acc, a| acc.checked_mul(a.values.len()))
            .filter(|&n| n <= MAX_ROWS)
            .ok_or_else(|| CompareError::Vary {
                spec: vary.join(" "),
                message: format!("more than {MAX_ROWS} combinations"),
            })?;
        if n as u64 * seeds > MAX_RUNS {
            return Err(CompareError::Vary {
                spec: vary.join(" "),
                message: format!("{n} rows × {seeds} seeds is over the limit of {MAX_RUNS} runs"),
            });
        }
        // Each value alone first, so that an unknown key or a refused value is named by its flag.
        for (a, spec) in axes.iter().zip(vary) {
            for v in &a.values {
                source
                    .scenario(&a.sets(v))
                    .map_err(|e| CompareError::Vary {
                        spec: spec.clone(),
                        message: e.to_string(),
                    })?;
            }
        }
        let mut rows = Vec::with_capacity(n);
        for combo in combinations(&axes) {
            let sets: Vec<String> = combo.iter().flat_map(|(i, v)| axes[*i].sets(v)).collect();
            let params = combo
                .iter()
                .map(|(i, v)| (axes[*i].key.clone(), param(v)))
                .collect();
            let scn = source.scenario(&sets)?;
            rows.push(Variant { params, sets, scn });
        }
        Ok(Plan {
            axes,
            rows,
            first,
            seeds,
        })
    }

    /// The number of (row, seed) runs.
    pub fn runs(&self) -> u64 {
        self.rows.len() as u64 * self.seeds
    }
}

/// The phases of `scn`'s arrivals as `(start_s, end_s, rate)` over the load phase
/// ([`Arrival::phases`](scenario::Arrival::phases)); none for a ramp (no constant phases: no
/// load trigger).
pub fn phases(scn: &Scenario) -> Vec<Phase> {
    scn.workload
        .arrival
        .phases(scn.duration)
        .unwrap_or_default()
        .into_iter()
        .map(|(a, b, r)| (a.as_secs_f64(), b.as_secs_f64(), r))
        .collect()
}

/// The trigger of one seed: its fault windows and the schedule's phases above the pre-trigger
/// rate.
pub fn trigger(scn: &Scenario, m: &SeedMetrics) -> Vec<Window> {
    let load_end = scn.duration.as_secs_f64();
    let faults: Vec<Window> = crate::pages::fault_windows(&m.faults, load_end)
        .0
        .into_iter()
        .map(|(a, b, _)| (a, b))
        .collect();
    recovery::triggers(&faults, &phases(scn), load_end)
}

/// The definitions applied to one seed (or seeds merged into `timeline`) of `scn`.
pub fn judge(scn: &Scenario, timeline: &Timeline, trigger: &[Window]) -> Judgement {
    recovery::judge_timeline(
        timeline,
        trigger,
        scn.warmup.as_secs_f64(),
        scn.duration.as_secs_f64(),
    )
}

/// What compare reads of one seed's metrics.
pub fn outcome(scn: &Scenario, m: &SeedMetrics) -> SeedOutcome {
    SeedOutcome {
        seed: m.seed,
        offered: m.submitted,
        good: m.goodput,
        attempts: m.submitted + m.client_retries,
        gave_up: m.client_gave_up,
        p99_ms: m.end_to_end.quantile_ms(0.99),
        judgement: judge(scn, &m.timeline, &trigger(scn, m)),
    }
}

/// What a finished comparison has: the rows' figures and, for the page, each row's seeds
/// merged.
pub struct Outcome {
    /// `compare.json`, the table and the CSV.
    pub compare: Compare,
    /// Each row's timeline, seeds merged.
    pub timelines: Vec<Timeline>,
    /// Each row's end-to-end latency, seeds merged.
    pub latency: Vec<Histo>,
    /// The first row's first seed's trigger (shaded on the page).
    pub trigger: Vec<Window>,
}

/// Runs every (row, seed) of `plan`, at most `jobs` at a time (`done` as each run finishes),
/// and builds the comparison.
///
/// # Errors
/// The first run that failed.
pub fn run(plan: &Plan, jobs: usize, done: &(dyn Fn() + Sync)) -> Result<Outcome, CompareError> {
    let work: Vec<(&Scenario, u64)> = plan
        .rows
        .iter()
        .flat_map(|r| (0..plan.seeds).map(move |i| (&r.scn, plan.first.wrapping_add(i))))
        .collect();
    let mut metrics = run_many(&work, jobs, done)?.into_iter();
    let mut inputs = Vec::with_capacity(plan.rows.len());
    let mut timelines = Vec::with_capacity(plan.rows.len());
    let mut latency = Vec::with_capacity(plan.rows.len());
    let mut first_trigger = Vec::new();
    for (i, row) in plan.rows.iter().enumerate() {
        let seeds: Vec<SeedMetrics> = metrics.by_ref().take(plan.seeds as usize).collect();
        if i == 0 {
            if let Some(m) = seeds.first() {
                first_trigger = trigger(&row.scn, m);
            }
        }
        // The pooled report judges the row's [slo] exactly as `run` does.
        let rep = report(&row.scn, plan.first, &seeds, 0.0);
        let mut e2e = Histo::new();
        for s in &seeds {
            e2e.merge(&s.end_to_end);
        }
        inputs.push(RowInput {
            params: row.params.clone(),
            seeds: seeds.iter().map(|m| outcome(&row.scn, m)).collect(),
            latency: e2e.clone(),
            exhaustion_ratio: rep.pool.exhaustion_ratio,
            load_s: row
                .scn
                .duration
                .saturating_sub(row.scn.warmup)
                .as_secs_f64(),
            slo_failed: rep.slo.failed.clone(),
        });
        timelines.push(merged_timeline(&seeds));
        latency.push(e2e);
    }
    let keys: Vec<String> = plan.axes.iter().map(|a| a.key.clone()).collect();
    let name = plan.rows.first().map_or("", |r| r.scn.name.as_str());
    Ok(Outcome {
        compare: reports::compare::build(name, &keys, plan.first, &inputs),
        timelines,
        latency,
        trigger: first_trigger,
    })
}

/// compare's `report.html`: the first row's time marks and trigger, every row's curves.
///
/// # Errors
/// A plot that could not be drawn.
pub fn page(
    plan: &Plan,
    outcome: &Outcome,
    table: &str,
) -> Result<String, reports::html::HtmlError> {
    let series: Vec<VariantSeries> = outcome
        .timelines
        .iter()
        .zip(&outcome.latency)
        .map(|(t, h)| {
            let samples = t.samples();
            let mid = |s: &reports::Sample| (s.start_s + s.end_s) / 2.0;
            VariantSeries {
                goodput: samples.iter().map(|s| (mid(s), s.goodput_per_s)).collect(),
                retries: samples.iter().map(|s| (mid(s), s.retries_per_s)).collect(),
                spectrum: h.spectrum(),
            }
        })
        .collect();
    let phases = plan
        .rows
        .first()
        .map(|r| crate::sweep::phases(&r.scn))
        .unwrap_or_default();
    reports::compare_page::compare_page(&outcome.compare, table, &series, &outcome.trigger, phases)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_are_numbers_when_they_are_numbers() {
        assert_eq!(param("12"), serde_json::json!(12));
        assert_eq!(param("0.5"), serde_json::json!(0.5));
        assert_eq!(param("full-jitter"), serde_json::json!("full-jitter"));
        assert_eq!(
            param("exponential+client.retry.budget.ratio=0.1"),
            serde_json::json!("exponential + ratio=0.1")
        );
    }
}
