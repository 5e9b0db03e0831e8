//! The human-readable text summary of a [`Report`], for stdout.

use std::fmt::Write as _;

use crate::human;
use crate::report::{ConductorRow, Report, ShortPercentiles};
use crate::seed::ratio;
use crate::slo::{Bound, Unit};

impl Report {
    /// A compact, aligned, human-readable summary for stdout (several lines, ending with a
    /// newline): counters with thousands separators, durations humanised.
    pub fn summary(&self) -> String {
        const W: usize = 11; // label column
        let mut out = String::new();
        // Title.
        let seeds = match self.seeds {
            0 => "no seeds".to_string(),
            1 => format!("seed {}", self.seed),
            n => format!(
                "seeds {}..{} ({n})",
                self.seed,
                self.seed.saturating_add(n - 1)
            ),
        };
        let mut title = format!("{}  {seeds}", self.scenario);
        if let Some(first) = self.per_seed.first() {
            let sim_max = self.per_seed.iter().map(|s| s.sim_s).fold(0.0, f64::max);
            let _ = write!(title, "  simulated {} per seed", human::secs(sim_max));
            if first.warmup_s > 0.0 {
                let _ = write!(title, " (warm-up {} excluded)", human::secs(first.warmup_s));
            }
        }
        let _ = writeln!(out, "{title}");
        let mut line = |label: &str, text: String| {
            let _ = writeln!(out, "{label:<W$}{}", text.trim_end());
        };

        let o = &self.ops;
        line(
            "ops",
            format!(
                "submitted {}  accepted {}  rejected {}  completed {}  failed {}  lost {}",
                human::count(o.submitted),
                human::count(o.accepted),
                human::count(o.rejected),
                human::count(o.completed),
                human::count(o.failed),
                human::count(o.lost)
            ),
        );

        let p = &self.pool;
        let mut pool = format!(
            "arrivals {}  exhausted {}  ratio {} [{}, {}]",
            human::count(p.arrivals),
            human::count(p.exhausted),
            human::ratio(p.exhaustion_ratio),
            human::ratio(p.exhaustion_ratio_ci95[0]),
            human::ratio(p.exhaustion_ratio_ci95[1]),
        );
        if let Some(e) = &p.erlang_b {
            let _ = write!(
                pool,
                "  Erlang B {} (A = {:.2} on {} workers)",
                human::ratio(e.blocking),
                e.offered_erlangs,
                e.workers
            );
        }
        line("pool", pool);
        line(
            "",
            format!(
                "mean busy {:.2} / {} workers  full {} of the time  mean hold {}",
                p.mean_busy,
                human::count(p.workers),
                human::percent(p.time_full_ratio),
                human::ms(p.mean_hold_ms)
            ),
        );
        if p.per_conductor.len() > 1 {
            let worst = p
                .per_conductor
                .iter()
                .map(|c| (ratio(c.exhausted, c.arrivals), c))
                .fold(None::<(f64, &ConductorRow)>, |best, (r, c)| match best {
                    Some((b, _)) if b >= r => best,
                    _ => Some((r, c)),
                });
            if let Some((r, c)) = worst {
                line(
                    "",
                    format!(
                        "{} conductors, highest ratio {} at {} ({} arrivals)",
                        p.per_conductor.len(),
                        human::ratio(r),
                        c.name,
                        human::count(c.arrivals)
                    ),
                );
            }
        }

        let r = &self.rpc;
        line(
            "rpc",
            format!(
                "caller-runs {}  mean busy slots {:.2} / {}  all busy {} of the time  \
                 backlog wait p50 {}  p99 {}{}",
                human::count(r.caller_runs),
                r.mean_busy_slots,
                human::count(r.slots),
                human::percent(r.time_full_ratio),
                human::ms(r.backlog_wait_ms.p50),
                human::ms(r.backlog_wait_ms.p99),
                if r.timeouts > 0 {
                    format!("  timeouts {}", human::count(r.timeouts))
                } else {
                    String::new()
                }
            ),
        );

        let l = &self.latency_ms;
        let name_w = l.by_op.keys().map(String::len).max().unwrap_or(0).max(8);
        let c = &l.complete;
        line(
            "latency",
            format!(
                "{:<name_w$}  p50 {}  p90 {}  p99 {}  p99.9 {}  max {}  mean {}  ({})",
                "complete",
                human::ms(c.p50),
                human::ms(c.p90),
                human::ms(c.p99),
                human::ms(c.p999),
                human::ms(c.max),
                human::ms(c.mean),
                human::count(c.count)
            ),
        );
        let short = |name: &str, s: &ShortPercentiles| {
            format!(
                "{name:<name_w$}  p50 {}  p99 {}  ({})",
                human::ms(s.p50),
                human::ms(s.p99),
                human::count(s.count)
            )
        };
        line("", short("accept", &l.accept));
        for (op, s) in &l.by_op {
            line("", short(op, s));
        }

        let t = &self.retries;
        line(
            "retries",
            format!(
                "attempts {}  amplification {:.3}  gave up {}",
                human::count(t.attempts),
                t.amplification,
                human::count(t.gave_up)
            ),
        );

        if !self.trigger.is_empty() {
            let rec = self.recovery_s.map_or_else(
                || "not within the load phase".to_string(),
                |r| format!("after {}", human::secs(r)),
            );
            let meta = match self.metastable {
                Some(true) => "metastable",
                Some(false) => "not metastable",
                None => "metastability not judged (load phase too short after the trigger)",
            };
            let windows: Vec<String> = self
                .trigger
                .iter()
                .take(3)
                .map(|[a, b]| format!("{}–{}", human::secs(*a), human::secs(*b)))
                .collect();
            let more = if self.trigger.len() > 3 {
                format!(" +{} more", self.trigger.len() - 3)
            } else {
                String::new()
            };
            line(
                "recovery",
                format!(
                    "trigger {}{more}  recovered {rec}  {meta}",
                    windows.join(", ")
                ),
            );
        }

        let inv = &self.invariants;
        let total: u64 = inv
            .counts
            .values()
            .sum::<u64>()
            .max(inv.violations.len() as u64);
        let mut invariants = format!(
            "{} checked  {} violations",
            inv.checked.len(),
            human::count(total)
        );
        if !inv.counts.is_empty() {
            let each: Vec<String> = inv
                .counts
                .iter()
                .map(|(k, n)| format!("{k} {}", human::count(*n)))
                .collect();
            let _ = write!(invariants, " ({})", each.join(", "));
        } else {
            let broken = self.violated_invariants();
            if !broken.is_empty() {
                let _ = write!(invariants, " ({})", broken.join(", "));
            }
        }
        if !inv.expected.is_empty() {
            let verdict = if inv.unexpected.is_empty() && inv.missing_expected.is_empty() {
                "as expected".to_string()
            } else {
                let mut parts = Vec::new();
                if !inv.unexpected.is_empty() {
                    parts.push(format!("unexpected: {}", inv.unexpected.join(", ")));
                }
                if !inv.missing_expected.is_empty() {
                    parts.push(format!(
                        "expected but held: {}",
                        inv.missing_expected.join(", ")
                    ));
                }
                parts.join("; ")
            };
            let _ = write!(
                invariants,
                "  expected to break: {} ({verdict})",
                inv.expected.join(", ")
            );
        }
        line("invariants", invariants);

        let mut slo = if self.slo.checks.is_empty() {
            "nothing judged".to_string()
        } else if self.slo.pass {
            "PASS".to_string()
        } else {
            "FAIL".to_string()
        };
        for ch in &self.slo.checks {
            let verdict = if ch.pass { "ok" } else { "FAIL" };
            let (value, limit) = match ch.unit {
                Unit::Ms => (human::ms(ch.value), human::ms(ch.limit)),
                Unit::Ratio => (human::ratio(ch.value), human::ratio(ch.limit)),
                Unit::PerS => (format!("{}/s", ch.value), format!("{}/s", ch.limit)),
            };
            let bound = match ch.bound {
                Bound::Max => "max",
                Bound::Min => "min",
            };
            let _ = write!(slo, "  {} {value} ({bound} {limit}) {verdict}", ch.name);
        }
        line("slo", slo);

        let h = &self.host;
        line(
            "host",
            format!(
                "{} seed{} in {} wall  {} events  {} messages ({:.1} per op)  {} simulated ops / wall-s  ({} per core)",
                self.seeds,
                if self.seeds == 1 { "" } else { "s" },
                human::secs(h.wall_s),
                human::compact(h.events as f64),
                human::compact(h.messages as f64),
                h.messages_per_op,
                human::compact(h.sim_ops_per_wall_s),
                human::compact(h.sim_ops_per_core_s)
            ),
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use crate::report::tests::seed;
    use crate::report::{build_report, SloSpec};

    #[test]
    fn summary_reads_well() {
        let seeds = [
            seed(1, [60, 40], [6, 2], 100),
            seed(2, [50, 50], [10, 0], 200),
        ];
        let slo = SloSpec::of(Some(0.01), Some(5_000.0));
        let r = build_report("baseline", 1, &seeds, &[], &slo, Some(2), 2.0);
        let s = r.summary();
        println!("{s}");
        assert!(s.starts_with(
            "baseline  seeds 1..2 (2)  simulated 11.0 s per seed (warm-up 1.00 s excluded)\n"
        ));
        assert!(s.contains("ops        submitted 300  accepted 270  rejected 30"));
        assert!(s.contains("ratio 0.0900 ["));
        assert!(s.contains("Erlang B 0.0769 (A = 0.50 on 2 workers)"));
        assert!(s.contains("mean busy 2.50 / 4 workers  full 50.0% of the time  mean hold 500 ms"));
        assert!(s.contains("start     p50 100 ms  p99 200 ms  (200)"));
        assert!(s.contains("complete  p50 200 ms"));
        assert!(s.contains("exhaustion_ratio_max 0.0900 (max 0.0100) FAIL"));
        assert!(s.contains("p99_max 200 ms (max 5.00 s) ok"));
        assert!(s.contains("slo        FAIL"));
        assert!(s.contains("2 violations (exclusive 2)"), "{s}");
        let mut expected = r.clone();
        expected.expect(&["exclusive".to_string()]);
        assert!(
            expected
                .summary()
                .contains("expected to break: exclusive (as expected)"),
            "{}",
            expected.summary()
        );
        expected.expect(&["converges".to_string()]);
        assert!(expected
            .summary()
            .contains("(unexpected: exclusive; expected but held: converges)"));
        assert!(
            s.contains(
                "host       2 seeds in 2.00 s wall  2,000 events  1,000 messages (3.3 per op)  150"
            ),
            "{s}"
        );
        assert!(s.ends_with('\n'));
        assert_eq!(s, r.summary());
    }
}
