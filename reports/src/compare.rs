//! `compare`: variants of one scenario run on the same seeds, side by side — goodput,
//! amplification, latency, recovery — with paired differences per seed against the first row
//! (`compare.json`, `compare.csv` and the table; keys in docs/outputs.md, "compare").
//!
//! Plain data: the simulator runs the rows and hands here, per row, what each seed measured
//! ([`SeedOutcome`]) and the pooled latency. Every row ran the same seeds with the same
//! arrivals (common random numbers), so the per-seed differences cancel most of the noise the
//! rows share, and small effects show with few seeds (Student t over the differences).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use crate::histo::Histo;
use crate::human;
use crate::recovery::{self, Judgement};
use crate::round;
use crate::stats::{mean_ci95, wilson_ci95};
use crate::sweep::{csv_field, value_text};

/// What one seed of one row measured, after the warm-up.
#[derive(Debug, Clone, PartialEq)]
pub struct SeedOutcome {
    /// The seed.
    pub seed: u64,
    /// Requests offered (first attempts).
    pub offered: u64,
    /// Requests answered successfully before the client gave up on them.
    pub good: u64,
    /// Attempts the client sent, first attempts included.
    pub attempts: u64,
    /// Requests the client gave up on.
    pub gave_up: u64,
    /// p99 of this seed's end-to-end latency, ms.
    pub p99_ms: f64,
    /// The recovery definitions applied to this seed.
    pub judgement: Judgement,
}

/// One row as the simulator hands it over.
#[derive(Debug, Clone)]
pub struct RowInput {
    /// The variant: its value per `--vary` key.
    pub params: BTreeMap<String, serde_json::Value>,
    /// Every seed, in seed order (the same seeds on every row).
    pub seeds: Vec<SeedOutcome>,
    /// The end-to-end latency of every seed, merged.
    pub latency: Histo,
    /// The pooled pool-exhaustion ratio.
    pub exhaustion_ratio: f64,
    /// The load phase measured (duration − warm-up), simulated seconds.
    pub load_s: f64,
    /// The `[slo]` objectives this row failed (empty: passed or nothing judged).
    pub slo_failed: Vec<String>,
}

/// A mean and its 95% confidence interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct MeanCi {
    /// The mean over seeds.
    pub mean: f64,
    /// `[lo, hi]`, Student t over seeds (one seed: the value itself).
    pub ci95: [f64; 2],
}

impl MeanCi {
    /// Of `xs`, rounded to `digits` significant digits.
    fn of(xs: &[f64], digits: usize) -> MeanCi {
        let (m, lo, hi) = mean_ci95(xs);
        let r = |x: f64| round::significant(x, digits);
        MeanCi {
            mean: r(m),
            ci95: [r(lo), r(hi)],
        }
    }
}

/// `latency_ms` of a row: end-to-end latency of the goodput, pooled over seeds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct RowLatency {
    /// Median, ms.
    pub p50: f64,
    /// 99th percentile, ms.
    pub p99: f64,
    /// 99.9th percentile, ms.
    pub p999: f64,
}

pub use crate::recovery::RowRecovery;

/// One row of `compare.json`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CompareRow {
    /// The variant: its value per `--vary` key.
    pub params: BTreeMap<String, serde_json::Value>,
    /// Requests offered per second (first attempts), mean over seeds.
    pub offered: f64,
    /// Goodput per second over seeds.
    pub goodput_per_s: MeanCi,
    /// Attempts sent per seed (first attempts included), mean over seeds.
    pub attempts: f64,
    /// Attempts / requests over seeds.
    pub amplification: MeanCi,
    /// Requests given up per seed, mean over seeds.
    pub gave_up: f64,
    /// Share of the offered requests that did not count as goodput (pooled).
    pub failed_ratio: f64,
    /// The pooled pool-exhaustion ratio.
    pub exhaustion_ratio: f64,
    /// End-to-end latency of the goodput, pooled.
    pub latency_ms: RowLatency,
    /// Recovery after the trigger.
    pub recovery_s: RowRecovery,
    /// `true` when more than half of the seeds were metastable, `false` otherwise, `null` when
    /// some seed could not be judged (the load phase after the trigger was under 10 × its
    /// length).
    pub metastable: Option<bool>,
    /// Seeds judged metastable (the table's `stuck` column and the boundary's fraction).
    #[serde(skip)]
    pub stuck_seeds: u64,
    /// The `[slo]` objectives failed (the command exits 1 when any row fails one).
    #[serde(skip)]
    pub slo_failed: Vec<String>,
}

/// One paired comparison: row `row` minus row `vs`, seed by seed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Paired {
    /// The row compared.
    pub row: usize,
    /// The row it is compared against (the first).
    pub vs: usize,
    /// Goodput per second, `row − vs`, over seeds.
    pub goodput_diff: MeanCi,
    /// Attempts per seed, `row − vs`, over seeds.
    pub attempts_diff: MeanCi,
    /// p99 end-to-end latency (ms), `row − vs`, over seeds (table and CSV only).
    #[serde(skip)]
    pub p99_diff_ms: MeanCi,
}

/// `compare.json`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Compare {
    /// The scenario's name.
    pub scenario: String,
    /// Seeds per row.
    pub seeds: u64,
    /// The first seed (every row ran `first_seed .. first_seed + seeds`).
    pub first_seed: u64,
    /// One row per combination of the `--vary` values, the last axis fastest.
    pub rows: Vec<CompareRow>,
    /// Every row but the first against the first.
    pub paired: Vec<Paired>,
    /// The `--vary` keys, in order (for the table's columns).
    #[serde(skip)]
    pub keys: Vec<String>,
}

fn per_s(n: u64, load_s: f64) -> f64 {
    if load_s > 0.0 {
        n as f64 / load_s
    } else {
        0.0
    }
}

fn amplification(s: &SeedOutcome) -> f64 {
    crate::recovery::amplification(s.attempts, s.offered)
}

fn row_of(r: &RowInput) -> CompareRow {
    let n = r.seeds.len().max(1) as f64;
    let mean = |f: fn(&SeedOutcome) -> u64| r.seeds.iter().map(|s| f(s) as f64).sum::<f64>() / n;
    let goodput: Vec<f64> = r.seeds.iter().map(|s| per_s(s.good, r.load_s)).collect();
    let amp: Vec<f64> = r.seeds.iter().map(amplification).collect();
    let offered: u64 = r.seeds.iter().map(|s| s.offered).sum();
    let good: u64 = r.seeds.iter().map(|s| s.good).sum();
    let judgements: Vec<&Judgement> = r.seeds.iter().map(|s| &s.judgement).collect();
    CompareRow {
        params: r.params.clone(),
        offered: round::significant(
            r.seeds
                .iter()
                .map(|s| per_s(s.offered, r.load_s))
                .sum::<f64>()
                / n,
            6,
        ),
        goodput_per_s: MeanCi::of(&goodput, 6),
        attempts: round::significant(mean(|s| s.attempts), 6),
        amplification: MeanCi::of(&amp, 6),
        gave_up: round::significant(mean(|s| s.gave_up), 6),
        failed_ratio: round::ratio(if offered == 0 {
            0.0
        } else {
            1.0 - (good.min(offered) as f64 / offered as f64)
        }),
        exhaustion_ratio: round::ratio(r.exhaustion_ratio),
        latency_ms: RowLatency {
            p50: round::ms(r.latency.quantile_ms(0.5)),
            p99: round::ms(r.latency.quantile_ms(0.99)),
            p999: round::ms(r.latency.quantile_ms(0.999)),
        },
        recovery_s: RowRecovery::of(&judgements),
        metastable: recovery::row_metastable(&judgements),
        stuck_seeds: recovery::stuck_seeds(&judgements),
        slo_failed: r.slo_failed.clone(),
    }
}

/// The paired differences of `row` against `vs`, seed by seed (the rows' seeds are the same,
/// in the same order).
fn paired(rows: &[RowInput], row: usize, vs: usize) -> Paired {
    let (a, b) = (&rows[row], &rows[vs]);
    let diffs = |f: &dyn Fn(&RowInput, &SeedOutcome) -> f64| -> Vec<f64> {
        a.seeds
            .iter()
            .zip(&b.seeds)
            .map(|(x, y)| f(a, x) - f(b, y))
            .collect()
    };
    Paired {
        row,
        vs,
        goodput_diff: MeanCi::of(&diffs(&|r, s| per_s(s.good, r.load_s)), 6),
        attempts_diff: MeanCi::of(&diffs(&|_, s| s.attempts as f64), 6),
        p99_diff_ms: MeanCi::of(&diffs(&|_, s| s.p99_ms), 6),
    }
}

/// Builds the comparison of `rows` (in plan order; every row's seeds the same, in seed order).
pub fn build(scenario: &str, keys: &[String], first_seed: u64, rows: &[RowInput]) -> Compare {
    Compare {
        scenario: scenario.to_string(),
        seeds: rows.first().map_or(0, |r| r.seeds.len() as u64),
        first_seed,
        rows: rows.iter().map(row_of).collect(),
        paired: (1..rows.len()).map(|i| paired(rows, i, 0)).collect(),
        keys: keys.to_vec(),
    }
}

/// A mean with its interval: `12.3 [11.9, 12.7]`.
fn ci_text(m: &MeanCi, f: &dyn Fn(f64) -> String) -> String {
    format!("{} [{}, {}]", f(m.mean), f(m.ci95[0]), f(m.ci95[1]))
}

fn num(x: f64) -> String {
    let r = round::significant(x, 4);
    if r.abs() >= 1e5 {
        human::compact(r)
    } else {
        format!("{r}")
    }
}

fn signed(x: f64) -> String {
    let r = round::significant(x, 3);
    if r > 0.0 {
        format!("+{r}")
    } else {
        format!("{r}")
    }
}

fn signed_ms(x: f64) -> String {
    if x < 0.0 {
        format!("-{}", human::ms(-x))
    } else if x > 0.0 {
        format!("+{}", human::ms(x))
    } else {
        "0".into()
    }
}

impl Compare {
    /// `compare.json`: pretty-printed, with a trailing newline.
    pub fn to_json(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).expect("a comparison always serialises");
        s.push('\n');
        s
    }

    /// True when some row failed its `[slo]`.
    pub fn any_slo_failed(&self) -> bool {
        self.rows.iter().any(|r| !r.slo_failed.is_empty())
    }

    /// The fraction of seeds stuck (metastable) in row `i`, with its 95% interval (Wilson's,
    /// which stays inside [0, 1] and is not degenerate at 0 or N of N).
    pub fn stuck(&self, i: usize) -> (f64, f64, f64) {
        wilson_ci95(self.rows[i].stuck_seeds, self.seeds)
    }

    /// A row's variant as text: `policy=full-jitter budget=…` (values only, in key order).
    pub fn label(&self, i: usize) -> String {
        let r = &self.rows[i];
        let parts: Vec<String> = self
            .keys
            .iter()
            .map(|k| r.params.get(k).map(value_text).unwrap_or_default())
            .collect();
        parts.join(" ")
    }

    /// The human table for stdout: the rows, then the paired differences against the first.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let last = self.first_seed.saturating_add(self.seeds.saturating_sub(1));
        let _ = writeln!(
            out,
            "{}  {} rows × {} seeds (paired: seeds {}..{} on every row)",
            self.scenario,
            self.rows.len(),
            self.seeds,
            self.first_seed,
            last
        );
        let short: Vec<&str> = self
            .keys
            .iter()
            .map(|k| k.rsplit('.').next().unwrap_or(k))
            .collect();
        let cells: Vec<Vec<String>> = self
            .rows
            .iter()
            .map(|r| {
                self.keys
                    .iter()
                    .map(|k| r.params.get(k).map(value_text).unwrap_or_default())
                    .collect()
            })
            .collect();
        let widths: Vec<usize> = short
            .iter()
            .enumerate()
            .map(|(j, s)| {
                cells
                    .iter()
                    .map(|c| c[j].chars().count())
                    .chain([s.chars().count()])
                    .max()
                    .unwrap_or(1)
            })
            .collect();
        let pad =
            |s: &str, w: usize| format!("{s}{}", " ".repeat(w.saturating_sub(s.chars().count())));
        let mut head = String::new();
        for (s, w) in short.iter().zip(&widths) {
            let _ = write!(head, "{}  ", pad(s, *w));
        }
        let _ = write!(
            head,
            "{:>8}  {:<26}  {:<24}  {:>9}  {:>7}  {:>9}  {:>9}  {:>9}  {:>12}  slo",
            "offered/s",
            "goodput/s [95% CI]",
            "amplification [95% CI]",
            "gave up",
            "failed",
            "p50",
            "p99",
            "recovery",
            "metastable"
        );
        let _ = writeln!(out, "{}", head.trim_end());
        for (i, r) in self.rows.iter().enumerate() {
            let mut line = String::new();
            for (c, w) in cells[i].iter().zip(&widths) {
                let _ = write!(line, "{}  ", pad(c, *w));
            }
            let rec = r.recovery_s.text();
            let meta = recovery::metastable_text(r.metastable, r.stuck_seeds, self.seeds);
            let slo = if r.slo_failed.is_empty() {
                "ok".into()
            } else {
                format!("fail ({})", r.slo_failed.join(", "))
            };
            let _ = write!(
                line,
                "{:>8}  {:<26}  {:<24}  {:>9}  {:>7}  {:>9}  {:>9}  {:>9}  {:>12}  {slo}",
                num(r.offered),
                ci_text(&r.goodput_per_s, &num),
                ci_text(&r.amplification, &num),
                num(r.gave_up),
                human::percent(r.failed_ratio),
                human::ms(r.latency_ms.p50),
                human::ms(r.latency_ms.p99),
                rec,
                meta,
            );
            let _ = writeln!(out, "{}", line.trim_end());
        }
        if !self.paired.is_empty() {
            let _ = writeln!(
                out,
                "paired against row 1 ({}), seed by seed: mean difference [95% CI]",
                self.label(0)
            );
            let w = (1..self.rows.len())
                .map(|i| self.label(i).chars().count())
                .max()
                .unwrap_or(0)
                .max(7);
            let _ = writeln!(
                out,
                "{}  {:<30}  {:<34}  Δ p99",
                pad("variant", w),
                "Δ goodput/s",
                "Δ attempts per seed",
            );
            for p in &self.paired {
                let _ = writeln!(
                    out,
                    "{}  {:<30}  {:<34}  {}",
                    pad(&self.label(p.row), w),
                    ci_text(&p.goodput_diff, &signed),
                    ci_text(&p.attempts_diff, &signed),
                    ci_text(&p.p99_diff_ms, &signed_ms)
                );
            }
        }
        out
    }

    /// `compare.csv`: one line per row, the `--vary` keys first, then the row's figures and its
    /// paired differences against the first row (empty on the first row).
    pub fn to_csv(&self) -> String {
        let mut out = String::new();
        for k in &self.keys {
            let _ = write!(out, "{},", csv_field(k));
        }
        out.push_str(
            "offered_per_s,goodput_per_s,goodput_ci95_lo,goodput_ci95_hi,attempts,\
             amplification,amplification_ci95_lo,amplification_ci95_hi,gave_up,failed_ratio,\
             exhaustion_ratio,p50_ms,p99_ms,p999_ms,recovery_median_s,recovery_max_s,\
             unrecovered_seeds,stuck_seeds,metastable,slo_pass,goodput_diff,goodput_diff_lo,\
             goodput_diff_hi,attempts_diff,attempts_diff_lo,attempts_diff_hi,p99_diff_ms,\
             p99_diff_lo,p99_diff_hi\n",
        );
        let opt = |x: Option<f64>| x.map_or_else(String::new, |v| v.to_string());
        for (i, r) in self.rows.iter().enumerate() {
            for k in &self.keys {
                let v = r.params.get(k).map(value_text).unwrap_or_default();
                let _ = write!(out, "{},", csv_field(&v));
            }
            let diff = |m: Option<&MeanCi>| {
                m.map_or_else(
                    || ",,".to_string(),
                    |m| format!("{},{},{}", m.mean, m.ci95[0], m.ci95[1]),
                )
            };
            let p = i.checked_sub(1).and_then(|j| self.paired.get(j));
            let _ = writeln!(
                out,
                "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}",
                r.offered,
                r.goodput_per_s.mean,
                r.goodput_per_s.ci95[0],
                r.goodput_per_s.ci95[1],
                r.attempts,
                r.amplification.mean,
                r.amplification.ci95[0],
                r.amplification.ci95[1],
                r.gave_up,
                r.failed_ratio,
                r.exhaustion_ratio,
                r.latency_ms.p50,
                r.latency_ms.p99,
                r.latency_ms.p999,
                opt(r.recovery_s.median),
                opt(r.recovery_s.max),
                r.recovery_s.unrecovered_seeds,
                r.stuck_seeds,
                r.metastable.map_or_else(String::new, |b| b.to_string()),
                r.slo_failed.is_empty(),
                diff(p.map(|p| &p.goodput_diff)),
                diff(p.map(|p| &p.attempts_diff)),
                diff(p.map(|p| &p.p99_diff_ms)),
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seed(
        seed: u64,
        good: u64,
        attempts: u64,
        rec: Option<f64>,
        meta: Option<bool>,
    ) -> SeedOutcome {
        SeedOutcome {
            seed,
            offered: 100,
            good,
            attempts,
            gave_up: 100 - good,
            p99_ms: good as f64,
            judgement: Judgement {
                trigger: vec![(10.0, 20.0)],
                recovery_s: rec,
                metastable: meta,
            },
        }
    }

    fn row(v: &str, seeds: Vec<SeedOutcome>) -> RowInput {
        let mut latency = Histo::new();
        for us in [1_000, 2_000, 3_000] {
            latency.record(us);
        }
        RowInput {
            params: [(
                "client.retry.policy".to_string(),
                serde_json::Value::from(v),
            )]
            .into(),
            seeds,
            latency,
            exhaustion_ratio: 0.25,
            load_s: 10.0,
            slo_failed: Vec::new(),
        }
    }

    #[test]
    fn rows_pool_seeds_and_pairs_differ_seed_by_seed() {
        // Seed-to-seed noise shared by both rows (80, 90, 100): the paired difference is exactly
        // 5 goodput a seed, so its interval has no width, while each row's own interval is wide.
        let a = row(
            "none",
            vec![
                seed(1, 80, 300, None, Some(true)),
                seed(2, 90, 200, Some(30.0), Some(false)),
                seed(3, 100, 100, Some(10.0), Some(false)),
            ],
        );
        let b = row(
            "full-jitter",
            vec![
                seed(1, 85, 150, Some(5.0), Some(false)),
                seed(2, 95, 150, Some(4.0), Some(false)),
                seed(3, 100, 150, Some(3.0), Some(false)),
            ],
        );
        let c = build("spike", &["client.retry.policy".into()], 1, &[a, b]);
        assert_eq!(c.seeds, 3);
        let r0 = &c.rows[0];
        assert_eq!(r0.offered, 10.0);
        assert_eq!(r0.goodput_per_s.mean, 9.0);
        assert!(r0.goodput_per_s.ci95[0] < 8.0);
        assert_eq!(r0.attempts, 200.0);
        assert_eq!(r0.amplification.mean, 2.0);
        assert_eq!(r0.failed_ratio, 0.1);
        assert_eq!(
            r0.recovery_s,
            RowRecovery {
                median: Some(20.0),
                max: Some(30.0),
                unrecovered_seeds: 1
            }
        );
        assert_eq!((r0.metastable, r0.stuck_seeds), (Some(false), 1));
        assert_eq!(c.rows[1].recovery_s.median, Some(4.0));
        let p = &c.paired[0];
        assert_eq!((p.row, p.vs), (1, 0));
        // Goodput diffs per seed: 0.5, 0.5, 0.0 per second.
        assert!((p.goodput_diff.mean - 1.0 / 3.0).abs() < 1e-5);
        assert_eq!(p.attempts_diff.mean, -50.0);
        let json = c.to_json();
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        let sorted = |v: &serde_json::Value| {
            let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
            k.sort_unstable();
            k
        };
        assert_eq!(
            sorted(&v),
            ["first_seed", "paired", "rows", "scenario", "seeds"]
        );
        let row_keys = sorted(&v["rows"][0]);
        let mut want = vec![
            "params",
            "offered",
            "goodput_per_s",
            "attempts",
            "amplification",
            "gave_up",
            "failed_ratio",
            "exhaustion_ratio",
            "latency_ms",
            "recovery_s",
            "metastable",
        ];
        want.sort_unstable();
        assert_eq!(row_keys, want);
        assert_eq!(
            sorted(&v["paired"][0]),
            ["attempts_diff", "goodput_diff", "row", "vs"]
        );
        let t = c.table();
        assert!(
            t.contains("spike  2 rows × 3 seeds (paired: seeds 1..3 on every row)"),
            "{t}"
        );
        assert!(t.contains("full-jitter"), "{t}");
        assert!(c.to_csv().lines().count() == 3);
    }

    #[test]
    fn a_row_is_metastable_when_most_seeds_are_and_unjudged_when_one_is() {
        let stuck = row(
            "none",
            vec![
                seed(1, 10, 900, None, Some(true)),
                seed(2, 10, 900, None, Some(true)),
                seed(3, 99, 100, Some(1.0), Some(false)),
            ],
        );
        let open = row(
            "none",
            vec![
                seed(1, 10, 900, None, None),
                seed(2, 10, 900, None, Some(true)),
            ],
        );
        let c = build("s", &[], 1, &[stuck, open]);
        assert_eq!(c.rows[0].metastable, Some(true));
        assert_eq!(c.rows[1].metastable, None);
        let (p, lo, hi) = c.stuck(0);
        assert!((p - 2.0 / 3.0).abs() < 1e-12 && lo > 0.0 && hi < 1.0);
    }
}
