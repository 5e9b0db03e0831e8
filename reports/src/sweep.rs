//! A sizing sweep: one row per grid point, the recommendation, the headroom, `sweep.json` and
//! `sweep.csv` (keys in docs/outputs.md, "sweep.json").
//!
//! Plain data: the simulator runs the rows (and the headroom probes) and hands their pooled
//! [`Report`]s and seed metrics here. Nothing here reads a clock, so the same inputs give the
//! same bytes — which is what lets merged shards equal one run.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use crate::histo::Histo;
use crate::human;
use crate::recovery::{self, Judgement, RowRecovery};
use crate::report::{Report, SloSpec};
use crate::round;
use crate::seed::SeedMetrics;
use crate::slo::{judge as judge_objectives, Bound, Measured, SloCheck, Unit};

/// The grid keys that size a deployment: a sweep recommends only when its grid has one of
/// them (sweeping the arrival rate alone would "recommend" the lowest rate, the cheapest).
pub const SIZE_KEYS: [(&str, &str); 3] = [
    ("cluster.conductors", "conductors: part of the cost"),
    (
        "cluster.pool_workers",
        "pool workers per conductor: part of the cost",
    ),
    (
        "cluster.rpc_workers",
        "RPC slots per conductor: break ties of equal cost, fewer first",
    ),
];

/// `exhaustion_ratio` of a row: the mean over seeds and its 95% confidence interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct RatioCi {
    /// Mean of the per-seed ratios (one seed: its ratio).
    pub mean: f64,
    /// `[lo, hi]`: Student t over seeds (one seed: batch means), within [0, 1].
    pub ci95: [f64; 2],
}

/// Erlang B beside a row, where the analytic model applies.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct RowErlang {
    /// λ: pool arrivals per simulated second of the measured load phase, averaged over seeds.
    pub arrival_rate_per_s: f64,
    /// `A = λ × measured mean hold`, erlangs.
    pub offered_erlangs: f64,
    /// `E_B(c, A)`.
    pub blocking: f64,
    /// True when `blocking` lies outside the row's confidence interval.
    pub flagged: bool,
}

/// Whether a row meets every `[slo]` objective *with confidence*.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RowSlo {
    /// True when every judged objective holds (and at least one is judged).
    pub pass: bool,
    /// The objectives that do not hold, by key: `"exhaustion_ratio_max"` (the upper ci95
    /// bound is above the limit), `"p99_max"` (the pooled p99 is above the limit, or nothing
    /// completed), `"accept_p99_max"`, `"by_op.create.p99_max"`, … (see [`crate::slo`]).
    pub failed: Vec<String>,
    /// Added: every objective with its limit, its pooled value and whether it holds (judged
    /// on `judged`: the 95% bound on the failing side where the objective has one).
    pub checks: Vec<RowCheck>,
}

/// One objective of a row (`rows[].slo.checks`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RowCheck {
    /// The objective's key under `[slo]`.
    pub name: String,
    /// The limit.
    pub limit: f64,
    /// The pooled measured value.
    pub value: f64,
    /// The figure compared with the limit (the value, or its 95% bound).
    pub judged: f64,
    /// Whether it holds.
    pub pass: bool,
}

impl From<&SloCheck> for RowCheck {
    fn from(c: &SloCheck) -> Self {
        RowCheck {
            name: c.name.clone(),
            limit: c.limit,
            value: c.value,
            judged: c.judged,
            pass: c.pass,
        }
    }
}

/// One row of `sweep.json`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SweepRow {
    /// The grid values of this row, by dotted key.
    pub params: BTreeMap<String, serde_json::Value>,
    /// The exhaustion ratio over seeds.
    pub exhaustion_ratio: RatioCi,
    /// p99 of the pooled completion latency, ms.
    pub p99_ms: f64,
    /// Ops completed per simulated second of the measured load phase, averaged over seeds.
    pub throughput_per_s: f64,
    /// p50 of the pooled completion latency, ms.
    pub p50_ms: f64,
    /// Pooled exhaustion ratio (`exhausted / arrivals`).
    pub pooled_exhaustion_ratio: f64,
    /// Pool arrivals, summed over seeds.
    pub arrivals: u64,
    /// Exhaustions, summed over seeds.
    pub exhausted: u64,
    /// Mean hold time (pooled), ms.
    pub mean_hold_ms: f64,
    /// Conductors of this row.
    pub conductors: u32,
    /// Pool workers per conductor of this row.
    pub pool_workers: u32,
    /// `conductors × pool_workers`: what the recommendation minimises.
    pub cost: u64,
    /// Erlang B, where the analytic model applies.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub erlang_b: Option<RowErlang>,
    /// The SLO judged with confidence.
    pub slo: RowSlo,
    /// Each seed's exhaustion ratio, in seed order.
    pub per_seed_exhaustion_ratio: Vec<f64>,
    /// Added: p99 of the pooled accept latency (the API's answer), ms — under `caller-runs`
    /// the figure that moves with the pool's size.
    pub accept_p99_ms: f64,
    /// Added: `conductors × rpc_workers`: breaks ties of equal `cost`.
    pub rpc_slots: u64,
    /// Recovery after the trigger (docs/retry-research.md) over the seeds; `null` when no
    /// seed had a trigger.
    pub recovery_s: Option<RowRecovery>,
    /// Whether most seeds stayed stuck after the trigger; `null` without a trigger, or when a
    /// seed was not judged.
    pub metastable: Option<bool>,
    /// Seeds judged stuck (metastable).
    pub stuck_seeds: u64,
}

/// The headroom of the recommended size: how far the arrival rate can grow before it stops
/// meeting its SLO (with confidence), found with the same paired seeds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Headroom {
    /// The arrival keys scaled together (e.g. `["workload.arrival.rate"]`).
    pub scaled: Vec<String>,
    /// The row's mean arrival rate, per second.
    pub base_rate_per_s: f64,
    /// The highest mean arrival rate probed at which the SLO still held, per second.
    pub holds_up_to_per_s: f64,
    /// The lowest mean arrival rate probed at which it failed, per second (`None`: it held
    /// up to the search's limit).
    pub fails_at_per_s: Option<f64>,
    /// `holds_up_to / base − 1`.
    pub headroom_ratio: f64,
    /// Every probe, in the order run.
    pub probes: Vec<Probe>,
    /// Why the search stopped where it did.
    pub note: String,
}

/// One headroom probe: the recommended row at a scaled arrival rate.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Probe {
    /// The load factor applied to the row's arrival rates.
    pub factor: f64,
    /// The mean arrival rate probed, per second.
    pub rate_per_s: f64,
    /// The exhaustion ratio's mean and interval.
    pub exhaustion_ratio: RatioCi,
    /// Pooled p99, ms.
    pub p99_ms: f64,
    /// The SLO held with confidence.
    pub pass: bool,
}

/// One `--grid` axis as it appears in `sweep.json`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GridAxis {
    /// Dotted key.
    pub key: String,
    /// Its values, in order.
    pub values: Vec<serde_json::Value>,
}

/// The objectives the rows were judged against, as in `sweep.json`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SloLimits {
    /// `[slo] exhaustion_ratio_max`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exhaustion_ratio_max: Option<f64>,
    /// `[slo] p99_max`, in ms.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub p99_max_ms: Option<f64>,
    /// Added: every objective, in the order judged.
    pub objectives: Vec<SloLimit>,
}

/// One objective of `sweep.json`'s `slo.objectives`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SloLimit {
    /// Its key under `[slo]`.
    pub name: String,
    /// The limit.
    pub limit: f64,
    /// `ratio`, `ms` or `per_s`.
    pub unit: Unit,
    /// `max` or `min`.
    pub bound: Bound,
}

impl SloLimits {
    /// The limits of `slo`.
    pub fn of(slo: &SloSpec) -> SloLimits {
        use crate::slo::{Latency, Measure, Percentile};
        SloLimits {
            exhaustion_ratio_max: slo.limit(&Measure::ExhaustionRatio),
            p99_max_ms: slo.limit(&Measure::Latency(Latency::Complete, Percentile::P99)),
            objectives: slo
                .objectives
                .iter()
                .map(|o| SloLimit {
                    name: o.measure.key(),
                    limit: o.limit,
                    unit: o.measure.unit(),
                    bound: o.measure.bound(),
                })
                .collect(),
        }
    }
}

/// `sweep --load-factor F`: the cheapest row that also meets every objective at F × its
/// arrival rates, probed cheapest first with the sweep's paired seeds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LoadFactor {
    /// F.
    pub factor: f64,
    /// The arrival keys scaled together.
    pub scaled: Vec<String>,
    /// Every probe, in the order run (cheapest qualifying row first; the search stops at the
    /// first that holds).
    pub probes: Vec<LoadProbe>,
    /// How the recommendation was chosen, or why there is none.
    pub note: String,
}

/// One row probed at the load factor.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LoadProbe {
    /// Index of the row in `rows`.
    pub row: usize,
    /// Its params.
    pub params: BTreeMap<String, serde_json::Value>,
    /// The exhaustion ratio's mean and interval at the factor.
    pub exhaustion_ratio: RatioCi,
    /// Pooled p99, ms.
    pub p99_ms: f64,
    /// Pooled accept p99, ms.
    pub accept_p99_ms: f64,
    /// Whether every objective held with confidence at the factor.
    pub pass: bool,
    /// The objectives that failed.
    pub failed: Vec<String>,
}

/// `sweep.json`. Holds no wall-clock figure: the same scenario, grid and seeds give the same
/// bytes, sharded or not.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Sweep {
    /// The rows, in grid order (first `--grid` outermost).
    pub rows: Vec<SweepRow>,
    /// The recommended row's params; `None` when no row qualifies.
    pub recommendation: Option<BTreeMap<String, serde_json::Value>>,
    /// Scenario name.
    pub scenario: String,
    /// The first seed; every row ran seeds `seed .. seed + seeds − 1` (paired).
    pub seed: u64,
    /// Seeds per row.
    pub seeds: u64,
    /// The grid.
    pub grid: Vec<GridAxis>,
    /// The objectives.
    pub slo: SloLimits,
    /// Index of the recommended row in `rows`.
    pub recommended_row: Option<usize>,
    /// How the recommendation was chosen, or why there is none.
    pub recommendation_note: String,
    /// The recommended size's headroom (absent without a recommendation, or when not
    /// searched).
    pub headroom: Option<Headroom>,
    /// Added: the load-factor search (`sweep --load-factor`; absent without it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub load_factor: Option<LoadFactor>,
}

/// The mean and interval of a row's exhaustion ratio, from its pooled report and seeds.
pub fn ratio_ci(report: &Report, seeds: &[SeedMetrics]) -> RatioCi {
    let mean = match seeds {
        [] => 0.0,
        [one] => one.exhaustion_ratio(),
        _ => seeds.iter().map(SeedMetrics::exhaustion_ratio).sum::<f64>() / seeds.len() as f64,
    };
    RatioCi {
        mean: round::ratio(mean),
        ci95: report.pool.exhaustion_ratio_ci95,
    }
}

/// Judges the objectives with confidence, each on its 95% bound on the failing side where it
/// has one (the upper ci95 bound of the exhaustion ratio, the binomial bound of the failed and
/// rejected ratios, the lower bound of goodput per second) and on the pooled percentile for
/// latencies. With no objective at all nothing is judged and the row does not pass (there is
/// nothing to size against).
pub fn judge(slo: &SloSpec, m: &Measured<'_>) -> RowSlo {
    let checks = judge_objectives(&slo.objectives, m, true);
    let failed: Vec<String> = checks
        .iter()
        .filter(|c| !c.pass)
        .map(|c| c.name.clone())
        .collect();
    RowSlo {
        pass: slo.judges_anything() && failed.is_empty(),
        failed,
        checks: checks.iter().map(RowCheck::from).collect(),
    }
}

/// Ops completed per simulated second of the measured load phase (`load_s`), averaged over
/// seeds.
pub fn throughput(seeds: &[SeedMetrics], load_s: f64) -> f64 {
    if seeds.is_empty() || load_s <= 0.0 {
        return 0.0;
    }
    let done: u64 = seeds.iter().map(|s| s.completed).sum();
    round::decimals(done as f64 / seeds.len() as f64 / load_s, 3)
}

/// What a row's size is, for the recommendation's cost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Size {
    /// Conductors.
    pub conductors: u32,
    /// Pool workers per conductor.
    pub pool_workers: u32,
    /// RPC slots per conductor.
    pub rpc_workers: u32,
}

/// Builds one row from its pooled report (see `sim::run::report`) and its seeds, in seed order,
/// with each seed's recovery judgement. `load_s` is the measured load phase (duration −
/// warm-up), simulated seconds.
pub fn build_row(
    params: BTreeMap<String, serde_json::Value>,
    report: &Report,
    seeds: &[SeedMetrics],
    judgements: &[Judgement],
    slo: &SloSpec,
    size: Size,
    load_s: f64,
) -> SweepRow {
    let judged: Vec<&Judgement> = judgements.iter().collect();
    let triggered = judged.iter().any(|j| !j.trigger.is_empty());
    let ci = ratio_ci(report, seeds);
    let p99_ms = report.latency_ms.complete.p99;
    // The report's Erlang B is at the *measured* arrival rate at the pool
    // (`erlang::measured_rate`): the rows share their seeds (common random numbers), so a
    // configured rate would carry the same luck of the arrival counts into every row and flag
    // them together.
    let erlang_b = report.pool.erlang_b.map(|e| RowErlang {
        arrival_rate_per_s: e.arrival_rate_per_s,
        offered_erlangs: e.offered_erlangs,
        blocking: e.blocking,
        flagged: e.blocking < ci.ci95[0] || e.blocking > ci.ci95[1],
    });
    let (mut complete, mut accept) = (Histo::new(), Histo::new());
    let mut by_op: BTreeMap<String, Histo> = BTreeMap::new();
    for s in seeds {
        complete.merge(&s.complete);
        accept.merge(&s.accept);
        for (op, h) in &s.by_op {
            by_op.entry(op.clone()).or_default().merge(h);
        }
    }
    let goodput: Vec<u64> = seeds.iter().map(|s| s.goodput).collect();
    let measured = Measured {
        ops: report.ops,
        exhaustion_ratio: report.pool.exhaustion_ratio,
        exhaustion_ci95: ci.ci95,
        complete: &complete,
        accept: &accept,
        by_op: &by_op,
        goodput_per_seed: &goodput,
        load_s,
    };
    SweepRow {
        params,
        exhaustion_ratio: ci,
        p99_ms,
        throughput_per_s: throughput(seeds, load_s),
        p50_ms: report.latency_ms.complete.p50,
        pooled_exhaustion_ratio: report.pool.exhaustion_ratio,
        arrivals: report.pool.arrivals,
        exhausted: report.pool.exhausted,
        mean_hold_ms: report.pool.mean_hold_ms,
        conductors: size.conductors,
        pool_workers: size.pool_workers,
        cost: u64::from(size.conductors) * u64::from(size.pool_workers),
        erlang_b,
        slo: judge(slo, &measured),
        per_seed_exhaustion_ratio: report.per_seed.iter().map(|s| s.exhaustion_ratio).collect(),
        accept_p99_ms: report.latency_ms.accept.p99,
        rpc_slots: u64::from(size.conductors) * u64::from(size.rpc_workers),
        recovery_s: triggered.then(|| RowRecovery::of(&judged)),
        metastable: if triggered {
            recovery::row_metastable(&judged)
        } else {
            None
        },
        stuck_seeds: recovery::stuck_seeds(&judged),
    }
}

/// The grid keys among `keys` that size a deployment ([`SIZE_KEYS`]).
pub fn size_keys<'k>(keys: &[&'k str]) -> Vec<&'k str> {
    keys.iter()
        .copied()
        .filter(|k| SIZE_KEYS.iter().any(|(s, _)| s == k))
        .collect()
}

/// The rows whose every objective holds with confidence, cheapest first: fewest
/// `conductors × pool_workers`, then fewest RPC slots, then grid order.
pub fn qualifying(rows: &[SweepRow]) -> Vec<usize> {
    let mut q: Vec<usize> = (0..rows.len()).filter(|&i| rows[i].slo.pass).collect();
    // A stable sort: grid order breaks what cost and slots leave tied.
    q.sort_by_key(|&i| (rows[i].cost, rows[i].rpc_slots));
    q
}

/// Why a sweep cannot recommend, before looking at its rows: no objective, or no size key in
/// its grid (`grid_keys`).
pub fn cannot_recommend(slo: &SloSpec, grid_keys: &[&str]) -> Option<String> {
    if !slo.judges_anything() {
        return Some("the scenario has no [slo] objective to size against".to_string());
    }
    if size_keys(grid_keys).is_empty() {
        let sizes: Vec<&str> = SIZE_KEYS.iter().map(|(k, _)| *k).collect();
        return Some(format!(
            "the grid ({}) has no size key ({}): its rows differ in something other than the \
             deployment's size, so the cheapest passing row would not be a size to deploy; \
             add --grid {}=… to size against this load",
            grid_keys.join(", "),
            sizes.join(", "),
            sizes[1]
        ));
    }
    None
}

/// The recommended row: the cheapest (fewest `conductors × pool_workers`, then RPC slots)
/// whose SLO holds with confidence, ties broken by grid order; with the note saying how, or
/// why there is none (no objective, no size key among `grid_keys`, no qualifying row).
pub fn recommend(rows: &[SweepRow], slo: &SloSpec, grid_keys: &[&str]) -> (Option<usize>, String) {
    if let Some(why) = cannot_recommend(slo, grid_keys) {
        return (None, why);
    }
    let q = qualifying(rows);
    let best = q.first().copied();
    let note = match best {
        Some(i) => format!(
            "the cheapest row (conductors × pool_workers = {}) whose every [slo] holds with \
             confidence (upper ci95 bound of the exhaustion ratio and pooled p99 under their \
             limits); {} of {} rows qualify",
            rows[i].cost,
            q.len(),
            rows.len()
        ),
        None => format!(
            "no row meets every [slo] with confidence ({} rows): extend the grid",
            rows.len()
        ),
    };
    (best, note)
}

impl Sweep {
    /// `sweep.json`: pretty-printed, with a trailing newline.
    pub fn to_json(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).expect("a sweep always serialises");
        s.push('\n');
        s
    }

    /// `sweep.csv`: one line per row, the grid keys first.
    pub fn to_csv(&self) -> String {
        let mut out = String::new();
        let keys: Vec<&str> = self.grid.iter().map(|a| a.key.as_str()).collect();
        for k in &keys {
            let _ = write!(out, "{},", csv_field(k));
        }
        out.push_str(
            "exhaustion_ratio_mean,ci95_lo,ci95_hi,p50_ms,p99_ms,throughput_per_s,\
             mean_hold_ms,conductors,pool_workers,cost,erlang_b,erlang_b_flagged,slo_pass,\
             recommended,recovery_median_s,recovery_max_s,unrecovered_seeds,stuck_seeds,\
             metastable,accept_p99_ms,rpc_slots,slo_failed",
        );
        // One column per objective: the figure it was judged on.
        for o in &self.slo.objectives {
            let _ = write!(out, ",{}", csv_field(&format!("slo.{}", o.name)));
        }
        out.push('\n');
        for (i, r) in self.rows.iter().enumerate() {
            for k in &keys {
                let v = r.params.get(*k).map(value_text).unwrap_or_default();
                let _ = write!(out, "{},", csv_field(&v));
            }
            let (eb, flag) = match r.erlang_b {
                Some(e) => (e.blocking.to_string(), e.flagged.to_string()),
                None => (String::new(), String::new()),
            };
            let opt = |x: Option<f64>| x.map_or_else(String::new, |v| v.to_string());
            let rec = r.recovery_s.as_ref();
            let _ = write!(
                out,
                "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}",
                r.exhaustion_ratio.mean,
                r.exhaustion_ratio.ci95[0],
                r.exhaustion_ratio.ci95[1],
                r.p50_ms,
                r.p99_ms,
                r.throughput_per_s,
                r.mean_hold_ms,
                r.conductors,
                r.pool_workers,
                r.cost,
                eb,
                flag,
                r.slo.pass,
                self.recommended_row == Some(i),
                opt(rec.and_then(|x| x.median)),
                opt(rec.and_then(|x| x.max)),
                rec.map_or_else(String::new, |x| x.unrecovered_seeds.to_string()),
                if rec.is_some() {
                    r.stuck_seeds.to_string()
                } else {
                    String::new()
                },
                r.metastable.map_or_else(String::new, |b| b.to_string()),
            );
            let _ = write!(
                out,
                ",{},{},{}",
                r.accept_p99_ms,
                r.rpc_slots,
                csv_field(&r.slo.failed.join(" "))
            );
            for o in &self.slo.objectives {
                let v = r
                    .slo
                    .checks
                    .iter()
                    .find(|c| c.name == o.name)
                    .map(|c| c.judged.to_string())
                    .unwrap_or_default();
                let _ = write!(out, ",{v}");
            }
            out.push('\n');
        }
        out
    }

    /// The human table for stdout: one line per row, then the recommendation and headroom.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let last = self.seed.saturating_add(self.seeds.saturating_sub(1));
        let _ = writeln!(
            out,
            "{}  {} rows × {} seeds (paired: seeds {}..{} on every row)",
            self.scenario,
            self.rows.len(),
            self.seeds,
            self.seed,
            last
        );
        let keys: Vec<&str> = self.grid.iter().map(|a| a.key.as_str()).collect();
        let short: Vec<&str> = keys
            .iter()
            .map(|k| k.rsplit('.').next().unwrap_or(k))
            .collect();
        // As wide as the key's short name and its widest value (a policy name is wider than
        // "policy").
        let widths: Vec<usize> = short
            .iter()
            .zip(&keys)
            .map(|(s, k)| {
                self.rows
                    .iter()
                    .map(|r| {
                        r.params
                            .get(*k)
                            .map_or(0, |v| value_text(v).chars().count())
                    })
                    .fold(s.len().max(6), usize::max)
            })
            .collect();
        let mut head = String::new();
        for (s, w) in short.iter().zip(&widths) {
            let _ = write!(head, "{s:>w$}  ");
        }
        let _ = write!(
            head,
            "{:<28}  {:>8}  {:>9}  {:>9}  {:>10}  {:>10}  slo",
            "exhaustion [95% CI]", "erlang_b", "p50", "p99", "accept p99", "done/s"
        );
        // Recovery and metastability, appended when some row had a trigger: the slo cells
        // padded to one width, so that the new columns line up.
        let slo_cells: Vec<String> = self
            .rows
            .iter()
            .enumerate()
            .map(|(i, r)| self.slo_cell(i, r))
            .collect();
        let recovery = self.rows.iter().any(|r| r.recovery_s.is_some());
        let slo_w = slo_cells
            .iter()
            .map(|c| c.chars().count())
            .fold(3, usize::max);
        if recovery {
            let _ = write!(
                head,
                "{:w$}  {:>9}  metastable",
                "",
                "recovery",
                w = slo_w.saturating_sub(3)
            );
        }
        let _ = writeln!(out, "{}", head.trim_end());
        for (i, r) in self.rows.iter().enumerate() {
            let mut line = String::new();
            for (k, w) in keys.iter().zip(&widths) {
                let v = r.params.get(*k).map(value_text).unwrap_or_default();
                let _ = write!(line, "{v:>w$}  ");
            }
            let ci = format!(
                "{} [{}, {}]",
                human::ratio(r.exhaustion_ratio.mean),
                human::ratio(r.exhaustion_ratio.ci95[0]),
                human::ratio(r.exhaustion_ratio.ci95[1])
            );
            let eb = match r.erlang_b {
                Some(e) if e.flagged => format!("{}!", human::ratio(e.blocking)),
                Some(e) => human::ratio(e.blocking),
                None => "-".to_string(),
            };
            let slo = &slo_cells[i];
            let _ = write!(
                line,
                "{ci:<28}  {eb:>8}  {:>9}  {:>9}  {:>10}  {:>10}  {slo}",
                human::ms(r.p50_ms),
                human::ms(r.p99_ms),
                human::ms(r.accept_p99_ms),
                format!("{:.2}", r.throughput_per_s),
            );
            if recovery {
                let (rec, meta) = match &r.recovery_s {
                    Some(x) => (
                        x.text(),
                        recovery::metastable_text(r.metastable, r.stuck_seeds, self.seeds),
                    ),
                    None => ("-".to_string(), "-".to_string()),
                };
                let pad = slo_w - slo.chars().count();
                let _ = write!(line, "{:pad$}  {rec:>9}  {meta}", "");
            }
            let _ = writeln!(out, "{}", line.trim_end());
        }
        if self
            .rows
            .iter()
            .any(|r| r.erlang_b.is_some_and(|e| e.flagged))
        {
            let _ = writeln!(
                out,
                "  ! Erlang B outside the row's 95% interval (expect about 1 row in 20 by chance)"
            );
        }
        match (&self.recommendation, self.recommended_row) {
            (Some(params), Some(i)) => {
                let p: Vec<String> = params
                    .iter()
                    .map(|(k, v)| format!("{k} = {}", value_text(v)))
                    .collect();
                let _ = writeln!(
                    out,
                    "recommendation  {}  (conductors × pool_workers = {})",
                    p.join(", "),
                    self.rows[i].cost
                );
            }
            _ => {
                let _ = writeln!(out, "recommendation  none: {}", self.recommendation_note);
            }
        }
        if let Some(lf) = &self.load_factor {
            let _ = writeln!(out, "load factor     ×{}: {}", lf.factor, lf.note);
        }
        if let Some(h) = &self.headroom {
            let fails = match h.fails_at_per_s {
                Some(f) => format!(", fails at {}/s", rate_text(f)),
                None => String::new(),
            };
            let _ = writeln!(
                out,
                "headroom        holds up to {}/s ({:+.1}% over {}/s){fails}; {}",
                rate_text(h.holds_up_to_per_s),
                h.headroom_ratio * 100.0,
                rate_text(h.base_rate_per_s),
                h.note
            );
        }
        out
    }
}

impl Sweep {
    /// Row `i`'s slo cell in the table: `ok`, `-` (nothing judged) or `fail (…)`, with the
    /// recommendation's mark.
    fn slo_cell(&self, i: usize, r: &SweepRow) -> String {
        let slo = if r.slo.pass {
            "ok".to_string()
        } else if r.slo.failed.is_empty() {
            "-".to_string()
        } else {
            format!("fail ({})", r.slo.failed.join(", "))
        };
        let mark = if self.recommended_row == Some(i) {
            "  <- recommended"
        } else {
            ""
        };
        format!("{slo}{mark}")
    }
}

/// A rate with 4 significant digits.
fn rate_text(r: f64) -> String {
    let r = round::significant(r, 4);
    format!("{r}")
}

/// A grid value as text: integers as they are, floats in their shortest form.
pub fn value_text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Quotes a CSV field when it needs it (RFC 4180).
pub fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GRID: [&str; 1] = ["cluster.pool_workers"];

    fn histo(ms: f64) -> Histo {
        let mut h = Histo::new();
        for _ in 0..100 {
            h.record((ms * 1e3) as u64);
        }
        h
    }

    /// A row of `cost` workers: exhaustion upper bound `hi`, completion p99 `p99`, accept p99
    /// `accept`, create p99 `create` (ms).
    fn row_with(cost: u64, hi: f64, p99: f64, accept: f64, create: f64, slo: &SloSpec) -> SweepRow {
        let ci = RatioCi {
            mean: hi / 2.0,
            ci95: [0.0, hi],
        };
        let (complete, accept_h) = (histo(p99), histo(accept));
        let by_op = BTreeMap::from([("create".to_string(), histo(create))]);
        let m = Measured {
            ops: crate::report::Ops::default(),
            exhaustion_ratio: hi / 2.0,
            exhaustion_ci95: ci.ci95,
            complete: &complete,
            accept: &accept_h,
            by_op: &by_op,
            goodput_per_seed: &[],
            load_s: 1.0,
        };
        SweepRow {
            params: BTreeMap::from([("cluster.pool_workers".to_string(), cost.into())]),
            exhaustion_ratio: ci,
            p99_ms: p99,
            throughput_per_s: 1.0,
            p50_ms: 1.0,
            pooled_exhaustion_ratio: hi / 2.0,
            arrivals: 100,
            exhausted: 1,
            mean_hold_ms: 1.0,
            conductors: 1,
            pool_workers: cost as u32,
            cost,
            erlang_b: None,
            slo: judge(slo, &m),
            per_seed_exhaustion_ratio: vec![],
            accept_p99_ms: accept,
            rpc_slots: 8,
            recovery_s: None,
            metastable: None,
            stuck_seeds: 0,
        }
    }

    fn row(cost: u64, hi: f64, p99: f64, slo: &SloSpec) -> SweepRow {
        row_with(cost, hi, p99, 1.0, 1.0, slo)
    }

    fn objective(key: &str, limit: f64) -> crate::slo::Objective {
        use crate::slo::{Latency, Measure, Percentile};
        let measure = match key {
            "accept_p99_max" => Measure::Latency(Latency::Accept, Percentile::P99),
            "by_op.create.p99_max" => {
                Measure::Latency(Latency::Op("create".into()), Percentile::P99)
            }
            _ => unreachable!("{key}"),
        };
        crate::slo::Objective { measure, limit }
    }

    #[test]
    fn accept_and_per_op_objectives_move_the_recommendation() {
        // Rows of 4, 6, 8 workers: the accept p99 falls with size (caller-runs), the create
        // p99 too but later; the pooled p99 and the exhaustion ratio meet their limits on all.
        let base = SloSpec::of(Some(0.5), Some(10_000.0));
        let rows_for = |slo: &SloSpec| {
            vec![
                row_with(4, 0.1, 500.0, 12_000.0, 900.0, slo),
                row_with(6, 0.1, 500.0, 60.0, 900.0, slo),
                row_with(8, 0.1, 500.0, 50.0, 300.0, slo),
            ]
        };
        let (best, _) = recommend(&rows_for(&base), &base, &GRID);
        assert_eq!(best, Some(0), "nothing but the pooled objectives binds");
        let mut accept = base.clone();
        accept.objectives.push(objective("accept_p99_max", 100.0));
        let rows = rows_for(&accept);
        assert_eq!(recommend(&rows, &accept, &GRID).0, Some(1));
        assert_eq!(rows[0].slo.failed, ["accept_p99_max"]);
        let mut create = base.clone();
        create
            .objectives
            .push(objective("by_op.create.p99_max", 500.0));
        let rows = rows_for(&create);
        assert_eq!(recommend(&rows, &create, &GRID).0, Some(2));
        assert_eq!(rows[1].slo.failed, ["by_op.create.p99_max"]);
        let check = &rows[1].slo.checks[2];
        assert_eq!((check.limit, check.pass), (500.0, false));
        assert!((check.value - 900.0).abs() < 1.0, "{check:?}");
    }

    #[test]
    fn a_grid_without_a_size_key_recommends_nothing() {
        let slo = SloSpec::of(Some(0.5), None);
        let rows = vec![row(8, 0.1, 1.0, &slo), row(8, 0.2, 1.0, &slo)];
        let (best, note) = recommend(&rows, &slo, &["workload.arrival.rate"]);
        assert_eq!(best, None);
        assert!(note.contains("no size key"), "{note}");
        assert!(note.contains("workload.arrival.rate"), "{note}");
        for k in ["cluster.conductors", "cluster.rpc_workers"] {
            assert_eq!(
                recommend(&rows, &slo, &[k, "workload.arrival.rate"]).0,
                Some(0)
            );
        }
    }

    #[test]
    fn equal_cost_rows_go_to_fewer_rpc_slots() {
        let slo = SloSpec::of(Some(0.5), None);
        let mut rows = vec![row(8, 0.1, 1.0, &slo), row(8, 0.1, 1.0, &slo)];
        rows[0].rpc_slots = 16;
        assert_eq!(qualifying(&rows), [1, 0]);
    }

    #[test]
    fn recommendation_is_the_cheapest_confident_row() {
        let slo = SloSpec::of(Some(0.05), Some(100.0));
        let rows = vec![
            row(12, 0.20, 50.0, &slo),  // ratio fails
            row(14, 0.049, 50.0, &slo), // ok
            row(13, 0.04, 150.0, &slo), // p99 fails
            row(14, 0.01, 10.0, &slo),  // ok, same cost, later in grid order
            row(16, 0.001, 1.0, &slo),  // ok, dearer
        ];
        let (best, note) = recommend(&rows, &slo, &GRID);
        assert_eq!(best, Some(1), "{note}");
        assert_eq!(rows[0].slo.failed, ["exhaustion_ratio_max"]);
        assert_eq!(rows[2].slo.failed, ["p99_max"]);
        // The upper bound, not the mean, is judged: a mean under the limit is not enough.
        let straddles = row(20, 0.06, 1.0, &slo);
        assert!(straddles.exhaustion_ratio.mean < 0.05 && !straddles.slo.pass);
    }

    #[test]
    fn no_row_or_no_slo_gives_no_recommendation() {
        let slo = SloSpec::of(Some(0.01), None);
        let rows = vec![row(1, 0.5, 1.0, &slo), row(2, 0.3, 1.0, &slo)];
        let (best, note) = recommend(&rows, &slo, &GRID);
        assert_eq!(best, None);
        assert!(note.contains("no row"), "{note}");
        let none = SloSpec::default();
        let rows = vec![row(1, 0.5, 1.0, &none)];
        assert!(!rows[0].slo.pass);
        let (best, note) = recommend(&rows, &none, &GRID);
        assert_eq!(best, None);
        assert!(note.contains("no [slo]"), "{note}");
    }

    fn sweep(rows: Vec<SweepRow>) -> Sweep {
        Sweep {
            rows,
            recommendation: None,
            scenario: "s".into(),
            seed: 1,
            seeds: 2,
            grid: vec![GridAxis {
                key: "cluster.pool_workers".into(),
                values: vec![],
            }],
            slo: SloLimits {
                exhaustion_ratio_max: None,
                p99_max_ms: None,
                objectives: vec![],
            },
            recommended_row: None,
            recommendation_note: "n".into(),
            headroom: None,
            load_factor: None,
        }
    }

    #[test]
    fn recovery_columns_are_appended_and_empty_without_a_trigger() {
        let none = SloSpec::default();
        let calm = sweep(vec![row(1, 0.5, 1.0, &none)]);
        let j = calm.to_json();
        assert!(j.contains("\"recovery_s\": null") && j.contains("\"metastable\": null"));
        assert!(!calm.table().contains("recovery"), "{}", calm.table());
        let csv = calm.to_csv();
        let (head, _) = csv.split_once('\n').unwrap();
        assert!(
            head.contains(
                "slo_pass,recommended,recovery_median_s,recovery_max_s,unrecovered_seeds,\
                 stuck_seeds,metastable,"
            ),
            "{head}"
        );
        // The cells of row `line` under the recovery columns.
        let recovery_cells = |csv: &str, line: usize| -> Vec<String> {
            let head: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
            let cells: Vec<&str> = csv.lines().nth(line).unwrap().split(',').collect();
            let at = head.iter().position(|h| *h == "recovery_median_s").unwrap();
            cells[at..at + 5].iter().map(|c| c.to_string()).collect()
        };
        assert_eq!(recovery_cells(&csv, 1), ["", "", "", "", ""], "{csv}");

        let mut stuck = row(2, 0.5, 1.0, &none);
        stuck.recovery_s = Some(RowRecovery {
            median: Some(12.5),
            max: Some(20.0),
            unrecovered_seeds: 1,
        });
        stuck.metastable = Some(false);
        stuck.stuck_seeds = 1;
        let s = sweep(vec![row(1, 0.5, 1.0, &none), stuck]);
        let t = s.table();
        let lines: Vec<&str> = t.lines().collect();
        assert!(lines[1].ends_with("slo   recovery  metastable"), "{t}");
        assert!(lines[2].ends_with("  -  -"), "{t}");
        assert!(lines[3].ends_with("  12.5 s (1 no)  no 1/2"), "{t}");
        let csv = s.to_csv();
        assert_eq!(
            recovery_cells(&csv, 2),
            ["12.5", "20", "1", "1", "false"],
            "{csv}"
        );
    }

    #[test]
    fn csv_quotes_what_needs_it() {
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"x\""), "\"say \"\"x\"\"\"");
        assert_eq!(csv_field("plain"), "plain");
    }
}
