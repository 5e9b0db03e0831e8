//! `sweep`: a grid of scenario keys run with paired seeds, the sizing recommendation, the
//! headroom of the recommended size, and the files that say so (`sweep.json`, `report.html`,
//! `sweep.csv`, `timeseries.csv`); sharded runs and their merge.
//!
//! Every row runs the same seeds (common random numbers: the same arrivals and service times
//! for every row), so differences between rows are the configuration's, not the dice's.
//! The rows × seeds jobs are numbered `row × seeds + seed_index`; `--shard I/N` takes those
//! whose number `% N == I − 1` and writes their full metrics to `shard.json`, from which
//! [`merge`] rebuilds exactly what one unsharded run would have written.

use crate::run::{report, run_many};
use crate::shard::Shard;
use crate::world::RunError;
use reports::html::{self, Phases};
use reports::sweep::{
    build_row, recommend, GridAxis, Headroom, LoadFactor, LoadProbe, Probe, Size, SloLimits, Sweep,
};
use reports::{SeedMetrics, SloSpec, Timeline};
use scenario::{self, Arrival, Scenario, ScenarioError};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// The most rows a grid may have.
pub const MAX_ROWS: usize = 1_000;

/// The most rows × seeds jobs a sweep may run.
pub const MAX_JOBS: u64 = 100_000;

/// The file a shard writes and [`merge`] reads.
pub const SHARD_FILE: &str = "shard.json";

/// The format tag of [`SHARD_FILE`].
pub const SHARD_FORMAT: &str = "conductor-sim shard v1";

/// Why a sweep could not be run.
#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    /// A malformed or inapplicable `--grid`.
    #[error("--grid `{spec}`: {message}")]
    Grid {
        /// The spec as given.
        spec: String,
        /// What was expected.
        message: String,
    },
    /// The scenario (or one row of it) is not valid.
    #[error(transparent)]
    Scenario(#[from] ScenarioError),
    /// Shard files that cannot be merged.
    #[error("merge: {0}")]
    Merge(String),
    /// A run failed.
    #[error(transparent)]
    Run(#[from] RunError),
    /// A file could not be read or written.
    #[error("{path}: {message}")]
    Io {
        /// The file.
        path: String,
        /// What went wrong.
        message: String,
    },
    /// A plot could not be drawn.
    #[error(transparent)]
    Html(#[from] reports::html::HtmlError),
}

impl SweepError {
    /// True for bad input (exit status 2), false for a run that could not complete.
    pub fn is_bad_input(&self) -> bool {
        matches!(
            self,
            SweepError::Grid { .. } | SweepError::Scenario(_) | SweepError::Merge(_)
        )
    }
}

/// One value of a grid axis.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum GridValue {
    /// An integer (A, B and STEP were all integers, or a listed value was one).
    Int(i64),
    /// A float.
    Float(f64),
    /// A listed value that is not a number (`--grid KEY=V1,V2,…`), as `--set` takes it:
    /// `exponential`, `"5s"`, `true`.
    Text(String),
}

impl GridValue {
    /// As TOML, for `--set`.
    fn toml(&self) -> String {
        match self {
            GridValue::Int(i) => i.to_string(),
            // Debug keeps a decimal point (or an exponent): TOML reads it back as a float.
            GridValue::Float(f) => format!("{f:?}"),
            GridValue::Text(t) => t.clone(),
        }
    }

    fn json(&self) -> serde_json::Value {
        match self {
            GridValue::Int(i) => (*i).into(),
            GridValue::Float(f) => {
                serde_json::Number::from_f64(*f).map_or(serde_json::Value::Null, Into::into)
            }
            GridValue::Text(t) => t.trim_matches('"').into(),
        }
    }

    /// A listed value: an integer, a float, else text.
    fn listed(v: &str) -> GridValue {
        if let Ok(i) = v.parse::<i64>() {
            GridValue::Int(i)
        } else if let Some(f) = v.parse::<f64>().ok().filter(|f| f.is_finite()) {
            GridValue::Float(f)
        } else {
            GridValue::Text(v.to_string())
        }
    }
}

/// One `--grid KEY=A..B[:STEP]`.
#[derive(Debug, Clone, PartialEq)]
pub struct GridSpec {
    /// The spec as given.
    pub spec: String,
    /// The dotted key.
    pub key: String,
    /// A, A + STEP, … up to B inclusive.
    pub values: Vec<GridValue>,
}

/// Parses `KEY=A..B[:STEP]` (A..B inclusive, STEP default 1; integers when A, B and STEP are
/// all integers, else floats), or `KEY=V1,V2,…`: listed values, numbers or not (a policy name,
/// a duration), read as `matrix --vary` reads its axes.
///
/// # Errors
/// [`SweepError::Grid`] naming the spec and what was expected.
pub fn parse_grid(spec: &str) -> Result<GridSpec, SweepError> {
    let bad = |message: String| SweepError::Grid {
        spec: spec.to_string(),
        message,
    };
    let form = "expected KEY=A..B[:STEP] or KEY=V1,V2,…, e.g. cluster.pool_workers=8..20, \
                workload.arrival.rate=4.0..8.0:0.5 or retry.policy=exponential,full-jitter";
    let (key, range) = spec.split_once('=').ok_or_else(|| bad(form.to_string()))?;
    let key = key.trim();
    if key.is_empty() {
        return Err(bad(format!("{form}; KEY is empty")));
    }
    if !range.contains("..") && range.contains(',') {
        let axis = crate::matrix::Axis::parse(spec)
            .map_err(|_| bad(format!("{form}, or KEY=V1,V2,… with at least one value")))?;
        if axis.values.len() > MAX_ROWS {
            return Err(bad(format!("a grid has at most {MAX_ROWS} rows")));
        }
        return Ok(GridSpec {
            spec: spec.to_string(),
            key: key.to_string(),
            values: axis.values.iter().map(|v| GridValue::listed(v)).collect(),
        });
    }
    let (range, step) = match range.split_once(':') {
        Some((r, s)) => (r, Some(s.trim())),
        None => (range, None),
    };
    let (a, b) = range
        .split_once("..")
        .ok_or_else(|| bad(format!("{form}; `{}` has no `..`", range.trim())))?;
    let (a, b) = (a.trim(), b.trim());
    let ints = (
        a.parse::<i64>(),
        b.parse::<i64>(),
        step.map_or(Ok(1), str::parse::<i64>),
    );
    if let (Ok(a), Ok(b), Ok(step)) = ints {
        if b < a {
            return Err(bad(format!("B ({b}) is below A ({a}): expected A <= B")));
        }
        if step <= 0 {
            return Err(bad(format!("STEP must be a positive number, got {step}")));
        }
        let count = (b - a) / step + 1;
        if count as u64 > MAX_ROWS as u64 {
            return Err(bad(format!(
                "{count} values: a grid has at most {MAX_ROWS} rows"
            )));
        }
        return Ok(GridSpec {
            spec: spec.to_string(),
            key: key.to_string(),
            values: (0..count).map(|i| GridValue::Int(a + i * step)).collect(),
        });
    }
    let num = |what: &str, s: &str| -> Result<f64, SweepError> {
        match s.parse::<f64>() {
            Ok(x) if x.is_finite() => Ok(x),
            _ => Err(bad(format!("{what} must be a number, got `{s}`"))),
        }
    };
    let (fa, fb) = (num("A", a)?, num("B", b)?);
    let fs = match step {
        Some(s) => num("STEP", s)?,
        None => 1.0,
    };
    if fb < fa {
        return Err(bad(format!("B ({fb}) is below A ({fa}): expected A <= B")));
    }
    if fs <= 0.0 {
        return Err(bad(format!("STEP must be a positive number, got {fs}")));
    }
    // A small tolerance so that 0.1..0.3:0.1 includes 0.3 despite binary fractions.
    let span = (fb - fa) / fs;
    if span + 1.0 > MAX_ROWS as f64 {
        return Err(bad(format!(
            "about {:.0} values: a grid has at most {MAX_ROWS} rows",
            span + 1.0
        )));
    }
    let count = (span + 1e-9).floor() as i64 + 1;
    Ok(GridSpec {
        spec: spec.to_string(),
        key: key.to_string(),
        values: (0..count)
            .map(|i| GridValue::Float(reports::round::significant(fa + i as f64 * fs, 12)))
            .collect(),
    })
}

/// Where a scenario came from, enough to parse it again (a merge does).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Source {
    /// The scenario file's text.
    pub text: String,
    /// The file as named in messages.
    pub origin: String,
    /// Where relative `empirical` files resolve.
    pub base_dir: Option<PathBuf>,
    /// The `--set` overrides, in order.
    pub sets: Vec<String>,
}

impl Source {
    /// Reads the scenario file at `path` with its overrides.
    ///
    /// # Errors
    /// [`SweepError::Io`] when the file cannot be read (the caller has already validated it).
    pub fn read(path: &Path, sets: &[String]) -> Result<Source, SweepError> {
        let text = std::fs::read_to_string(path).map_err(|e| SweepError::Io {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        let base_dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map(Path::to_path_buf);
        Ok(Source {
            text,
            origin: path.display().to_string(),
            base_dir,
            sets: sets.to_vec(),
        })
    }

    /// The scenario with `extra` overrides applied after the source's own, checked for
    /// support.
    ///
    /// # Errors
    /// The scenario's own error.
    pub fn scenario(&self, extra: &[String]) -> Result<Scenario, ScenarioError> {
        let mut sets = self.sets.clone();
        sets.extend_from_slice(extra);
        scenario::parse_supported(&self.text, &self.origin, &sets, self.base_dir.as_deref())
    }
}

/// One row of the grid.
#[derive(Debug, Clone)]
pub struct Row {
    /// Its grid values by dotted key.
    pub params: BTreeMap<String, serde_json::Value>,
    /// The `--set`s that make it.
    pub sets: Vec<String>,
    /// Its scenario.
    pub scn: Scenario,
}

/// A sweep ready to run: the rows in grid order and the paired seeds.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The scenario's source.
    pub source: Source,
    /// The grid, in the order given.
    pub grid: Vec<GridSpec>,
    /// The rows: the cartesian product, first axis outermost.
    pub rows: Vec<Row>,
    /// The first seed.
    pub first: u64,
    /// Seeds per row.
    pub seeds: u64,
}

impl Plan {
    /// Expands the grid over the source.
    ///
    /// # Errors
    /// [`SweepError::Grid`] for an axis that does not apply to the scenario (unknown key,
    /// wrong type, out of range) or too many rows/jobs; the scenario's error for a row that
    /// is invalid only in combination.
    pub fn new(
        source: Source,
        grid: Vec<GridSpec>,
        first: u64,
        seeds: u64,
    ) -> Result<Plan, SweepError> {
        if grid.is_empty() {
            return Err(SweepError::Grid {
                spec: String::new(),
                message: "expected at least one --grid KEY=A..B[:STEP]".into(),
            });
        }
        let rows_n = grid
            .iter()
            .try_fold(1usize, |acc, g| acc.checked_mul(g.values.len()))
            .filter(|&n| n <= MAX_ROWS)
            .ok_or_else(|| SweepError::Grid {
                spec: grid
                    .iter()
                    .map(|g| g.spec.as_str())
                    .collect::<Vec<_>>()
                    .join(" × "),
                message: format!("the grid has more than {MAX_ROWS} rows"),
            })?;
        if rows_n as u64 * seeds > MAX_JOBS {
            return Err(SweepError::Grid {
                spec: grid[0].spec.clone(),
                message: format!(
                    "{rows_n} rows × {seeds} seeds is over the limit of {MAX_JOBS} runs"
                ),
            });
        }
        // Each axis alone first, so that an unknown or mistyped key is named by its flag.
        for g in &grid {
            for v in [&g.values[0], &g.values[g.values.len() - 1]] {
                let set = format!("{}={}", g.key, v.toml());
                source.scenario(&[set]).map_err(|e| SweepError::Grid {
                    spec: g.spec.clone(),
                    message: e.to_string(),
                })?;
            }
        }
        let mut rows = Vec::with_capacity(rows_n);
        for i in 0..rows_n {
            // Mixed radix, last axis fastest: the first --grid is outermost.
            let mut rest = i;
            let mut picks = vec![GridValue::Int(0); grid.len()];
            for (k, g) in grid.iter().enumerate().rev() {
                picks[k] = g.values[rest % g.values.len()].clone();
                rest /= g.values.len();
            }
            let sets: Vec<String> = grid
                .iter()
                .zip(&picks)
                .map(|(g, v)| format!("{}={}", g.key, v.toml()))
                .collect();
            let params = grid
                .iter()
                .zip(&picks)
                .map(|(g, v)| (g.key.clone(), v.json()))
                .collect();
            let scn = source.scenario(&sets).map_err(|e| SweepError::Grid {
                spec: grid
                    .iter()
                    .map(|g| g.spec.as_str())
                    .collect::<Vec<_>>()
                    .join(" "),
                message: format!("the row {}: {e}", sets.join(", ")),
            })?;
            rows.push(Row { params, sets, scn });
        }
        Ok(Plan {
            source,
            grid,
            rows,
            first,
            seeds,
        })
    }

    /// The number of (row, seed) jobs.
    pub fn jobs(&self) -> u64 {
        self.rows.len() as u64 * self.seeds
    }

    /// The (row, seed) of job `i`.
    pub fn job(&self, i: u64) -> (usize, u64) {
        (
            (i / self.seeds) as usize,
            self.first.wrapping_add(i % self.seeds),
        )
    }

    /// The objectives of the first row: every row's, unless the grid sweeps an `slo.` key
    /// (each row is judged against its own; see [`slo_of`]).
    fn slo(&self) -> SloSpec {
        slo_of(&self.rows[0].scn)
    }
}

/// A scenario's `[slo]` as the reports crate takes it, over its measured load phase.
pub fn slo_of(scn: &Scenario) -> SloSpec {
    SloSpec {
        objectives: scn.slo.objectives(),
        load_s: load_s(scn),
    }
}

/// The measured load phase (duration − warm-up), simulated seconds.
pub fn load_s(scn: &Scenario) -> f64 {
    scn.duration.saturating_sub(scn.warmup).as_secs_f64()
}

/// Runs the jobs of `shard` (every job for [`Shard::ALL`]), at most `jobs` at a time; `done`
/// is called as each finishes. Returns `(job index, metrics)` in job order.
///
/// # Errors
/// The first run that failed.
pub fn run_jobs(
    plan: &Plan,
    shard: Shard,
    jobs: usize,
    done: &(dyn Fn() + Sync),
) -> Result<Vec<(u64, SeedMetrics)>, SweepError> {
    let picked: Vec<u64> = (0..plan.jobs()).filter(|&i| shard.takes(i)).collect();
    let work: Vec<(&Scenario, u64)> = picked
        .iter()
        .map(|&i| {
            let (row, seed) = plan.job(i);
            (&plan.rows[row].scn, seed)
        })
        .collect();
    let metrics = run_many(&work, jobs, done)?;
    Ok(picked.into_iter().zip(metrics).collect())
}

/// What a finished sweep writes.
#[derive(Debug, Clone)]
pub struct Outputs {
    /// The sweep (`sweep.json`, the table, `sweep.csv`).
    pub sweep: Sweep,
    /// `report.html`.
    pub html: String,
    /// `timeseries.csv`: every row's occupancy over time, seeds merged.
    pub timeseries_csv: String,
}

/// Options of the finishing step.
pub struct Finish<'a> {
    /// Search the headroom of the recommended size.
    pub headroom: bool,
    /// `--load-factor F`: recommend the cheapest row that also meets every objective at F ×
    /// its arrival rates.
    pub load_factor: Option<f64>,
    /// Runs at once for the headroom probes.
    pub jobs: usize,
    /// Called with a probe's factor before it runs, and once per seed as it finishes.
    pub progress: &'a (dyn Fn(ProbeEvent) + Sync),
}

/// Progress of the headroom and load-factor searches.
#[derive(Debug, Clone, Copy)]
pub enum ProbeEvent {
    /// A headroom probe at this load factor starts.
    Start(f64),
    /// A load-factor probe of this row (index) starts.
    Row(usize),
    /// One seed of the probe finished.
    Seed,
}

/// Builds everything a sweep writes from every job's metrics (`(job index, metrics)` in any
/// order, each job exactly once), running the headroom probes if asked.
///
/// # Errors
/// [`SweepError::Merge`] when jobs are missing or repeated; a probe's run error.
pub fn finish(
    plan: &Plan,
    results: Vec<(u64, SeedMetrics)>,
    opts: &Finish<'_>,
) -> Result<Outputs, SweepError> {
    let mut slots: Vec<Option<SeedMetrics>> = (0..plan.jobs()).map(|_| None).collect();
    for (i, m) in results {
        let slot = slots
            .get_mut(i as usize)
            .ok_or_else(|| SweepError::Merge(format!("job {i} is outside the grid")))?;
        if slot.replace(m).is_some() {
            return Err(SweepError::Merge(format!("job {i} appears twice")));
        }
    }
    if let Some(i) = slots.iter().position(Option::is_none) {
        return Err(SweepError::Merge(format!(
            "job {i} (row {}, seed {}) is missing: give every shard",
            plan.job(i as u64).0,
            plan.job(i as u64).1
        )));
    }
    let per_row: Vec<Vec<SeedMetrics>> = {
        let mut it = slots.into_iter().flatten();
        (0..plan.rows.len())
            .map(|_| it.by_ref().take(plan.seeds as usize).collect())
            .collect()
    };
    let slo = plan.slo();
    let rows: Vec<_> = plan
        .rows
        .iter()
        .zip(&per_row)
        .map(|(row, seeds)| row_of(plan, row, seeds, row.params.clone()))
        .collect();
    let grid_keys: Vec<&str> = plan.grid.iter().map(|g| g.key.as_str()).collect();
    let (mut best, mut note) = recommend(&rows, &slo, &grid_keys);
    let load_factor = match opts.load_factor {
        Some(f) => {
            let (b, lf) = search_load_factor(plan, &rows, &slo, &grid_keys, f, opts)?;
            best = b;
            if let Some(i) = b {
                note = format!(
                    "the cheapest row (conductors × pool_workers = {}) whose every [slo] holds \
                     with confidence at ×1 and at ×{f} the load",
                    rows[i].cost
                );
            } else {
                note.clone_from(&lf.note);
            }
            Some(lf)
        }
        None => None,
    };
    let headroom = match (best, opts.headroom) {
        (Some(i), true) => Some(search_headroom(plan, i, opts)?),
        _ => None,
    };
    let sweep = Sweep {
        recommendation: best.map(|i| rows[i].params.clone()),
        rows,
        scenario: plan.rows[0].scn.name.clone(),
        seed: plan.first,
        seeds: plan.seeds,
        grid: plan
            .grid
            .iter()
            .map(|g| GridAxis {
                key: g.key.clone(),
                values: g.values.iter().map(|v| v.json()).collect(),
            })
            .collect(),
        slo: SloLimits::of(&slo),
        recommended_row: best,
        recommendation_note: note,
        headroom,
        load_factor,
    };
    let spectra: Vec<html::Spectra> = per_row.iter().map(|s| html::Spectra::of(s)).collect();
    let timelines: Vec<Timeline> = per_row.iter().map(|s| merged_timeline(s)).collect();
    let shown = best.unwrap_or(plan.rows.len() - 1);
    let scn = &plan.rows[shown].scn;
    let samples = timelines[shown].samples();
    let capacity = (
        u64::from(scn.cluster.conductors) * u64::from(scn.cluster.pool_workers),
        u64::from(scn.cluster.conductors) * u64::from(scn.cluster.rpc_workers),
    );
    let html = html::sweep_page(
        &sweep,
        &spectra,
        &html::Occupancy {
            row: shown,
            samples: &samples,
            capacity,
            phases: phases(scn),
        },
        &crate::pages::shading(scn, &per_row[shown]),
    )?;
    let mut csv = String::new();
    let keys: Vec<&str> = plan.grid.iter().map(|g| g.key.as_str()).collect();
    for (i, (row, t)) in plan.rows.iter().zip(&timelines).enumerate() {
        let prefix: Vec<String> = keys
            .iter()
            .map(|k| {
                row.params
                    .get(*k)
                    .map(reports::sweep::value_text)
                    .unwrap_or_default()
            })
            .collect();
        let header: Vec<&str> = if i == 0 { keys.clone() } else { Vec::new() };
        csv.push_str(&timeseries_csv(&header, &prefix, &t.samples(), i == 0));
    }
    Ok(Outputs {
        sweep,
        html,
        timeseries_csv: csv,
    })
}

/// The seeds' timelines merged (seed order; the merge is exact and order-free anyway).
pub fn merged_timeline(seeds: &[SeedMetrics]) -> Timeline {
    let mut it = seeds.iter();
    let Some(first) = it.next() else {
        return Timeline::new();
    };
    let mut t = first.timeline.clone();
    for s in it {
        t.merge(&s.timeline);
    }
    t
}

/// The marks of a scenario's time plots.
pub fn phases(scn: &Scenario) -> Phases {
    Phases {
        warmup_s: scn.warmup.as_secs_f64(),
        load_end_s: scn.duration.as_secs_f64(),
    }
}

/// `timeseries.csv` lines: `prefix` columns (named `header`, written when `with_header`), then
/// one line per bucket.
pub fn timeseries_csv(
    header: &[&str],
    prefix: &[String],
    samples: &[reports::Sample],
    with_header: bool,
) -> String {
    let mut out = String::new();
    if with_header {
        for h in header {
            let _ = write!(out, "{},", reports::sweep::csv_field(h));
        }
        out.push_str(
            "start_s,end_s,pool_busy_mean,pool_busy_max,rpc_busy_mean,rpc_busy_max,\
             backlog_mean,retries_per_s,offered_per_s,goodput_per_s,attempts_per_s,\
             gave_up_per_s,inflight_mean,inflight_max,attempt_ms_mean,e2e_ms_mean,e2e_p99_ms\n",
        );
    }
    let r = |x: f64| reports::round::significant(x, 6);
    for s in samples {
        for p in prefix {
            let _ = write!(out, "{},", reports::sweep::csv_field(p));
        }
        let _ = writeln!(
            out,
            "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}",
            reports::round::decimals(s.start_s, 6),
            reports::round::decimals(s.end_s, 6),
            r(s.pool_mean),
            s.pool_max,
            r(s.rpc_mean),
            s.rpc_max,
            r(s.backlog_mean),
            r(s.retries_per_s),
            r(s.offered_per_s),
            r(s.goodput_per_s),
            r(s.attempts_per_s),
            r(s.gave_up_per_s),
            r(s.inflight_mean),
            s.inflight_max,
            r(s.attempt_ms_mean),
            r(s.e2e_ms_mean),
            r(s.e2e_p99_ms)
        );
    }
    out
}

/// One row judged against its own `[slo]`.
fn row_of(
    plan: &Plan,
    row: &Row,
    seeds: &[SeedMetrics],
    params: BTreeMap<String, serde_json::Value>,
) -> reports::sweep::SweepRow {
    let slo = &slo_of(&row.scn);
    // Wall time stays out of sweep.json: the report's host figures are not read.
    let rep = report(&row.scn, plan.first, seeds, 0.0);
    let judgements: Vec<_> = seeds
        .iter()
        .map(|m| {
            crate::compare::judge(&row.scn, &m.timeline, &crate::compare::trigger(&row.scn, m))
        })
        .collect();
    build_row(
        params,
        &rep,
        seeds,
        &judgements,
        slo,
        Size {
            conductors: row.scn.cluster.conductors,
            pool_workers: row.scn.cluster.pool_workers,
            rpc_workers: row.scn.cluster.rpc_workers,
        },
        slo.load_s,
    )
}

/// The arrival keys a load factor scales, with their values at factor 1: the workload's
/// arrival process and, on the `mixed` model, the ops' one too.
fn rate_keys(scn: &Scenario) -> Vec<(String, f64)> {
    let mut keys = arrival_rate_keys("workload.arrival", &scn.workload.arrival);
    if let Some(ops) = &scn.workload.ops_arrival {
        keys.extend(arrival_rate_keys("workload.ops_arrival", ops));
    }
    keys
}

/// The rate keys of one arrival process at `prefix`, with their values.
fn arrival_rate_keys(prefix: &str, arrival: &Arrival) -> Vec<(String, f64)> {
    let k = |s: &str, v: f64| (format!("{prefix}.{s}"), v);
    match arrival {
        Arrival::Poisson { rate } | Arrival::Constant { rate } => vec![k("rate", *rate)],
        Arrival::Bursty {
            rate, burst_rate, ..
        } => vec![k("rate", *rate), k("burst_rate", *burst_rate)],
        Arrival::Ramp { from, to } => vec![k("from", *from), k("to", *to)],
        Arrival::Schedule { phases, .. } => phases
            .iter()
            .enumerate()
            .map(|(i, p)| k(&format!("phases[{i}].rate"), p.rate))
            .collect(),
        Arrival::Trace(t) => vec![k("scale", t.scale)],
    }
}

/// Row `row` of the plan run at `f` × its arrival rates with the sweep's seeds: the row, or
/// `Err(why)` when the scenario refuses that load (a limit, e.g. too many expected ops).
fn scaled_row(
    plan: &Plan,
    row: usize,
    f: f64,
    opts: &Finish<'_>,
) -> Result<Result<reports::sweep::SweepRow, String>, SweepError> {
    let base = &plan.rows[row];
    let mut sets = base.sets.clone();
    for (k, v) in rate_keys(&base.scn) {
        sets.push(format!("{k}={:?}", v * f));
    }
    let scn = match plan.source.scenario(&sets) {
        Ok(s) => s,
        Err(e) => return Ok(Err(e.to_string())),
    };
    let work: Vec<(&Scenario, u64)> = (0..plan.seeds)
        .map(|i| (&scn, plan.first.wrapping_add(i)))
        .collect();
    let seeds = run_many(&work, opts.jobs, &|| (opts.progress)(ProbeEvent::Seed))?;
    let r = row_of(
        plan,
        &Row {
            params: BTreeMap::new(),
            sets,
            scn: scn.clone(),
        },
        &seeds,
        base.params.clone(),
    );
    Ok(Ok(r))
}

/// `--load-factor F`: the qualifying rows, cheapest first, each run at F × its arrival rates
/// until one still meets every objective with confidence. Returns that row (if any) and what
/// the search did.
fn search_load_factor(
    plan: &Plan,
    rows: &[reports::sweep::SweepRow],
    slo: &SloSpec,
    grid_keys: &[&str],
    f: f64,
    opts: &Finish<'_>,
) -> Result<(Option<usize>, LoadFactor), SweepError> {
    let mut lf = LoadFactor {
        factor: f,
        scaled: rate_keys(&plan.rows[0].scn)
            .into_iter()
            .map(|(k, _)| k)
            .collect(),
        probes: Vec::new(),
        note: String::new(),
    };
    if let Some(why) = reports::sweep::cannot_recommend(slo, grid_keys) {
        lf.note = why;
        return Ok((None, lf));
    }
    let candidates = reports::sweep::qualifying(rows);
    for &i in &candidates {
        (opts.progress)(ProbeEvent::Row(i));
        let r = match scaled_row(plan, i, f, opts)? {
            Ok(r) => r,
            Err(why) => {
                lf.note = format!("stopped at ×{f}, a load the scenario refuses: {why}");
                return Ok((None, lf));
            }
        };
        let pass = r.slo.pass;
        lf.probes.push(LoadProbe {
            row: i,
            params: r.params,
            exhaustion_ratio: r.exhaustion_ratio,
            p99_ms: r.p99_ms,
            accept_p99_ms: r.accept_p99_ms,
            pass,
            failed: r.slo.failed,
        });
        if pass {
            lf.note = format!(
                "probed {} of the {} rows that meet every [slo] at ×1, cheapest first, at ×{f} \
                 the load (the sweep's paired seeds); the first that still meets them",
                lf.probes.len(),
                candidates.len()
            );
            return Ok((Some(i), lf));
        }
    }
    lf.note = if candidates.is_empty() {
        format!(
            "no row meets every [slo] with confidence at ×1 ({} rows): extend the grid",
            rows.len()
        )
    } else {
        format!(
            "none of the {} rows that meet every [slo] at ×1 still meets them at ×{f}: extend \
             the grid",
            candidates.len()
        )
    };
    Ok((None, lf))
}

/// The largest load factor probed.
const MAX_FACTOR: f64 = 16.0;
/// The search stops when the bracket is this narrow (relative).
const PRECISION: f64 = 0.02;

/// Finds how far the recommended row's arrival rates can be scaled before its SLO stops
/// holding with confidence: factors 1.25, 1.5, 2, 3, 5, 9 (then 16) until one fails, then
/// bisection down to 2%. Every probe runs the sweep's seeds (paired with the rows).
fn search_headroom(plan: &Plan, row: usize, opts: &Finish<'_>) -> Result<Headroom, SweepError> {
    let base = &plan.rows[row];
    let keys = rate_keys(&base.scn);
    let base_rate = base.scn.workload.arrival.mean_rate();
    let mut probes: Vec<Probe> = Vec::new();
    // Ok(Err(message)): the scenario refuses that load (a limit), which ends the search.
    let mut probe = |f: f64| -> Result<Result<bool, String>, SweepError> {
        (opts.progress)(ProbeEvent::Start(f));
        let r = match scaled_row(plan, row, f, opts)? {
            Ok(r) => r,
            // Past a scenario limit (e.g. too many expected ops): the search ends there.
            Err(why) => return Ok(Err(why)),
        };
        probes.push(Probe {
            factor: reports::round::significant(f, 6),
            rate_per_s: reports::round::significant(base_rate * f, 6),
            exhaustion_ratio: r.exhaustion_ratio,
            p99_ms: r.p99_ms,
            pass: r.slo.pass,
        });
        Ok(Ok(r.slo.pass))
    };
    let (mut lo, mut hi) = (1.0f64, None::<f64>);
    let mut note = String::new();
    let mut step: f64 = 0.25;
    loop {
        let f = (1.0 + step).min(MAX_FACTOR);
        match probe(f)? {
            Ok(true) => lo = f,
            Ok(false) => {
                hi = Some(f);
                break;
            }
            Err(why) => {
                note = format!("stopped at ×{f}, a load the scenario refuses: {why}");
                break;
            }
        }
        if f >= MAX_FACTOR {
            note = format!("the SLO still holds at ×{MAX_FACTOR} the load; searched no further");
            break;
        }
        step *= 2.0;
    }
    if let Some(mut h) = hi {
        while h / lo - 1.0 > PRECISION {
            let mid = (lo + h) / 2.0;
            match probe(mid)? {
                Ok(true) => lo = mid,
                Ok(false) => h = mid,
                // Between two loads it accepted: not reachable with monotone limits.
                Err(_) => break,
            }
        }
        hi = Some(h);
        note = format!(
            "bisection on the arrival rate to {:.0}% with the sweep's paired seeds",
            PRECISION * 100.0
        );
    }
    Ok(Headroom {
        scaled: keys.iter().map(|(k, _)| k.to_string()).collect(),
        base_rate_per_s: reports::round::significant(base_rate, 6),
        holds_up_to_per_s: reports::round::significant(base_rate * lo, 6),
        fails_at_per_s: hi.map(|h| reports::round::significant(base_rate * h, 6)),
        headroom_ratio: reports::round::significant(lo - 1.0, 6),
        probes,
        note,
    })
}

/// What a shard writes: enough to rebuild the plan, and every job's full metrics.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ShardFile {
    /// [`SHARD_FORMAT`].
    pub format: String,
    /// The command that wrote it (`sweep`).
    pub command: String,
    /// The scenario's source.
    pub source: Source,
    /// The `--grid` specs, in order.
    pub grid: Vec<String>,
    /// The first seed.
    pub first_seed: u64,
    /// Seeds per row.
    pub seeds: u64,
    /// Which shard this is.
    pub shard: Shard,
    /// This shard's jobs: `(job index, metrics)`.
    pub jobs: Vec<(u64, SeedMetrics)>,
}

impl ShardFile {
    /// The shard file of `plan`'s jobs in `results`.
    pub fn new(plan: &Plan, shard: Shard, results: Vec<(u64, SeedMetrics)>) -> Self {
        ShardFile {
            format: SHARD_FORMAT.into(),
            command: "sweep".into(),
            source: plan.source.clone(),
            grid: plan.grid.iter().map(|g| g.spec.clone()).collect(),
            first_seed: plan.first,
            seeds: plan.seeds,
            shard,
            jobs: results,
        }
    }

    /// Reads `dir/shard.json`.
    ///
    /// # Errors
    /// [`SweepError::Merge`] naming the file when it cannot be read or is not a shard file.
    pub fn read(dir: &Path) -> Result<ShardFile, SweepError> {
        let path = dir.join(SHARD_FILE);
        let text = std::fs::read_to_string(&path).map_err(|e| {
            SweepError::Merge(format!(
                "{}: cannot read it ({e}): expected a directory written by `sweep --shard I/N`",
                path.display()
            ))
        })?;
        let f: ShardFile = serde_json::from_str(&text)
            .map_err(|e| SweepError::Merge(format!("{}: not a shard file: {e}", path.display())))?;
        if f.format != SHARD_FORMAT {
            return Err(SweepError::Merge(format!(
                "{}: format `{}`, expected `{SHARD_FORMAT}`",
                path.display(),
                f.format
            )));
        }
        Ok(f)
    }
}

/// Rebuilds one sweep's plan and every job's metrics from the shard files of `dirs`.
///
/// # Errors
/// [`SweepError::Merge`] when the shards are of different sweeps, repeated or incomplete; the
/// scenario's error if it no longer parses.
pub fn merge(dirs: &[PathBuf]) -> Result<(Plan, Vec<(u64, SeedMetrics)>), SweepError> {
    let mut files: Vec<(PathBuf, ShardFile)> = Vec::new();
    for d in dirs {
        files.push((d.clone(), ShardFile::read(d)?));
    }
    let Some((first_dir, first)) = files.first() else {
        return Err(SweepError::Merge(
            "expected at least one shard directory".into(),
        ));
    };
    let count = first.shard.count;
    let mut seen: BTreeMap<u64, &Path> = BTreeMap::new();
    for (dir, f) in &files {
        let same = f.command == first.command
            && f.source == first.source
            && f.grid == first.grid
            && f.first_seed == first.first_seed
            && f.seeds == first.seeds
            && f.shard.count == count;
        if !same {
            return Err(SweepError::Merge(format!(
                "{} and {} are shards of different sweeps (scenario, --set, --grid, seeds or \
                 shard count differ)",
                first_dir.display(),
                dir.display()
            )));
        }
        if let Some(other) = seen.insert(f.shard.index, dir) {
            return Err(SweepError::Merge(format!(
                "shard {}/{count} is given twice: {} and {}",
                f.shard.index,
                other.display(),
                dir.display()
            )));
        }
    }
    let missing: Vec<String> = (1..=count)
        .filter(|i| !seen.contains_key(i))
        .map(|i| format!("{i}/{count}"))
        .collect();
    if !missing.is_empty() {
        return Err(SweepError::Merge(format!(
            "missing shard(s) {}",
            missing.join(", ")
        )));
    }
    let grid = first
        .grid
        .iter()
        .map(|s| parse_grid(s))
        .collect::<Result<Vec<_>, _>>()?;
    let plan = Plan::new(first.source.clone(), grid, first.first_seed, first.seeds)?;
    let results = files.into_iter().flat_map(|(_, f)| f.jobs).collect();
    Ok((plan, results))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grids_parse_inclusive_ranges() {
        let g = parse_grid("cluster.pool_workers=8..12").unwrap();
        assert_eq!(g.key, "cluster.pool_workers");
        assert_eq!(g.values, (8..=12).map(GridValue::Int).collect::<Vec<_>>());
        let g = parse_grid("cluster.pool_workers=8..13:2").unwrap();
        assert_eq!(g.values, [8, 10, 12].map(GridValue::Int));
        let g = parse_grid("workload.arrival.rate=0.1..0.3:0.1").unwrap();
        assert_eq!(g.values, [0.1, 0.2, 0.3].map(GridValue::Float));
        assert_eq!(GridValue::Float(2.0).toml(), "2.0");
        let g = parse_grid("x=5..5").unwrap();
        assert_eq!(g.values, [GridValue::Int(5)]);
        // Listed values, numbers or not.
        let g = parse_grid("retry.policy=exponential, full-jitter").unwrap();
        assert_eq!(
            g.values,
            [
                GridValue::Text("exponential".into()),
                GridValue::Text("full-jitter".into())
            ]
        );
        assert_eq!(g.values[0].json(), serde_json::json!("exponential"));
        let g = parse_grid("cluster.pool_workers=8,12,0.5").unwrap();
        assert_eq!(
            g.values,
            [GridValue::Int(8), GridValue::Int(12), GridValue::Float(0.5)]
        );
    }

    #[test]
    fn bad_grids_say_what_was_expected() {
        for (spec, needle) in [
            ("cluster.pool_workers", "expected KEY=A..B"),
            ("=1..2", "KEY is empty"),
            ("k=1-3", "no `..`"),
            ("k=5..3", "below A"),
            ("k=1..3:0", "STEP must be a positive"),
            ("k=1..3:-1", "STEP must be a positive"),
            ("k=1.0..3.0:-0.5", "STEP must be a positive"),
            ("k=a..3", "A must be a number"),
            ("k=1..x", "B must be a number"),
            ("k=1..2:y", "STEP must be a number"),
            ("k=1..100000", "at most 1000 rows"),
            ("k=0.0..1.0:0.0001", "at most 1000 rows"),
        ] {
            let e = parse_grid(spec).unwrap_err().to_string();
            assert!(e.starts_with(&format!("--grid `{spec}`")), "{e}");
            assert!(e.contains(needle), "{spec}: {e}");
        }
    }
}
