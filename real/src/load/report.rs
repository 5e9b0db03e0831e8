//! `load`'s report: the metrics of every sender pooled into `run`'s `report.json` (the same
//! keys; what only the simulator or the deployment's recorder knows — the pool, the RPC slots,
//! the checker — set to `null` and listed in `load.absent`), plus a `load` object of its own
//! (the schedule and what was sent of it, send lateness and how far behind schedule, statuses,
//! errors, the connection pool, setup and teardown), `report.html`, and the summary on stdout.

use super::phases::Phase;
use super::pool::Pool;
use super::recorder::{merge_into, Recorded};
use super::sender::{pool_counts, Seen};
use anyhow::Context;
use reports::{build_report, Histo, SeedMetrics, SloSpec};
use scenario::Scenario;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::ExitCode;

/// The keys of `report.json` a live run over HTTP cannot know without the deployment's
/// recorder (`--recorder`), set to `null`: the executor pool and the RPC slots live in the
/// conductors, the invariants need the history.
pub const ABSENT: &[&str] = &[
    "pool.arrivals",
    "pool.exhausted",
    "pool.exhaustion_ratio",
    "pool.time_full_ratio",
    "pool.mean_busy",
    "pool.mean_hold_ms",
    "pool.exhaustion_ratio_ci95",
    "pool.workers",
    "rpc.caller_runs",
    "rpc.mean_busy_slots",
    "rpc.backlog_wait_ms",
    "rpc.time_full_ratio",
    "rpc.slots",
];

/// Everything the report is made of.
pub struct Load<'a> {
    /// The scenario as run.
    pub scn: &'a Scenario,
    /// `--target`.
    pub target: &'a str,
    /// Requests the schedule holds (fixed by the seed).
    pub scheduled: u64,
    /// Each sender's metrics and what it saw.
    pub parts: Vec<(SeedMetrics, Seen)>,
    /// The connection pool.
    pub pool: &'a Pool,
    /// The setup, if one ran.
    pub setup: Option<Phase>,
    /// The teardown, if one ran.
    pub teardown: Option<Phase>,
    /// Wall-clock seconds of the whole command.
    pub wall_s: f64,
    /// Stopped by SIGINT/SIGTERM before the end.
    pub interrupted: bool,
    /// The deployment's own figures (`--recorder`), if its logs were read.
    pub recorder: Option<Recorded>,
}

/// Adds `b`'s counters and histograms into `a` (senders of one run, not seeds).
fn add(a: &mut SeedMetrics, b: &SeedMetrics) {
    a.submitted += b.submitted;
    a.accepted += b.accepted;
    a.rejected += b.rejected;
    a.completed += b.completed;
    a.failed += b.failed;
    a.lost += b.lost;
    a.timeouts += b.timeouts;
    a.sent_total += b.sent_total;
    a.retry_attempts += b.retry_attempts;
    a.gave_up += b.gave_up;
    a.goodput += b.goodput;
    a.client_retries += b.client_retries;
    a.client_gave_up += b.client_gave_up;
    a.complete.merge(&b.complete);
    a.accept.merge(&b.accept);
    a.attempt.merge(&b.attempt);
    a.end_to_end.merge(&b.end_to_end);
    for (op, h) in &b.by_op {
        a.by_op.entry(op.clone()).or_default().merge(h);
    }
    a.timeline.merge(&b.timeline);
    a.sim_end_us = a.sim_end_us.max(b.sim_end_us);
}

fn ms(us: u64) -> f64 {
    reports::round::ms(us as f64 / 1e3)
}

impl Load<'_> {
    /// Writes `report.json` and `report.html` into `out`, prints the summary; the exit status
    /// (1 when an SLO failed, or nothing was answered at all).
    pub fn write(self, out: &Path) -> anyhow::Result<ExitCode> {
        let scn = self.scn;
        let mut parts = self.parts.into_iter();
        let (mut m, mut seen) = parts.next().unwrap_or_else(|| {
            (
                SeedMetrics::new(scn.seed, 0, &[], 1, 1),
                Seen::default(),
            )
        });
        for (pm, ps) in parts {
            add(&mut m, &pm);
            seen.requests += ps.requests;
            seen.retries += ps.retries;
            seen.lateness.merge(&ps.lateness);
            seen.behind += ps.behind;
            for (s, n) in ps.statuses {
                *seen.statuses.entry(s).or_insert(0) += n;
            }
            seen.connect_errors += ps.connect_errors;
            seen.protocol_errors += ps.protocol_errors;
            seen.waited_in_flight += ps.waited_in_flight;
        }
        m.wall_s = self.wall_s;
        let rec = self.recorder;
        if let Some(r) = &rec {
            merge_into(&mut m, &r.metrics);
        }
        // The exhaustion ratio and an op's failure after its 202 live in the conductors and
        // the store: not judged here, and said so.
        let (objectives, unseen): (Vec<_>, Vec<_>) =
            scn.slo.objectives().into_iter().partition(|o| {
                match o.measure {
                    reports::slo::Measure::ExhaustionRatio => rec.is_some(),
                    reports::slo::Measure::FailedRatio => false,
                    _ => true,
                }
            });
        let slo = SloSpec {
            objectives,
            load_s: scn.duration.saturating_sub(scn.warmup).as_secs_f64(),
        };
        let not_judged: Vec<String> = unseen
            .iter()
            .map(|o| {
                format!(
                    "slo.{}: {}",
                    o.measure.key(),
                    "not visible over HTTP (it is measured inside the deployment)"
                )
            })
            .collect();
        let judged: Vec<String> = match &rec {
            Some(r) => r.findings.judged.iter().map(|i| i.name().to_string()).collect(),
            None => Vec::new(),
        };
        let mut rep = build_report(
            &scn.name,
            scn.seed,
            std::slice::from_ref(&m),
            &judged,
            &slo,
            None,
            self.wall_s,
        );
        if rec.is_some() {
            let expect: Vec<String> = scn.checks.expect.iter().map(|i| i.name().to_string()).collect();
            rep.expect(&expect);
        }
        let mut v: Value = serde_json::from_str(&rep.to_json()).context("the report's JSON")?;
        let absent: &[&str] = if rec.is_some() { &[] } else { ABSENT };
        for path in absent {
            let (a, b) = path.split_once('.').unwrap_or((path, ""));
            if let Some(slot) = v.get_mut(a).and_then(|o| o.get_mut(b)) {
                *slot = Value::Null;
            }
        }
        if rec.is_none() {
            if let Some(p) = v.get_mut("pool").and_then(|p| p.get_mut("per_conductor")) {
                *p = json!([]);
            }
        }
        let recorder = rec.as_ref().map(|r| {
            let d = &r.metrics;
            json!({
                "dir": r.dir.display().to_string(),
                "events": r.events,
                "accepted": d.accepted,
                "completed": d.completed,
                "failed": d.failed,
                "complete_ms": {
                    "p50": d.complete.quantile_ms(0.5),
                    "p90": d.complete.quantile_ms(0.9),
                    "p99": d.complete.quantile_ms(0.99),
                    "p999": d.complete.quantile_ms(0.999),
                    "mean": reports::round::ms(d.complete.mean_ms()),
                    "count": d.complete.len(),
                },
                "complete_note": "from the HTTP API's receipt of each op to its end, on the deployment's clock",
                "liveness_not_judged": r.findings.not_judged_why,
            })
        });
        let absent_list: Vec<&str> = if rec.is_some() {
            Vec::new()
        } else {
            ABSENT.iter().chain(["pool.per_conductor", "invariants"].iter()).copied().collect()
        };
        let statuses: BTreeMap<String, u64> = seen
            .statuses
            .iter()
            .map(|(s, n)| (s.to_string(), *n))
            .collect();
        let (dialled, waited) = pool_counts(self.pool);
        let late = &seen.lateness;
        let answered: u64 = seen.statuses.values().sum();
        let load = json!({
            "target": self.target,
            "duration_s": scn.duration.as_secs_f64(),
            "drain_s": scn.drain.as_secs_f64(),
            "scheduled": self.scheduled,
            "sent": seen.requests,
            "retries_sent": seen.retries,
            "all_sent": seen.requests == self.scheduled,
            "lateness_ms": lateness(late),
            "behind": {
                "late_after_ms": scn.target.late_after.as_secs_f64() * 1e3,
                "count": seen.behind,
                "max_ms": ms(late.max_us()),
            },
            "answered": answered,
            "statuses": statuses,
            "errors": {
                "connect": seen.connect_errors,
                "protocol": seen.protocol_errors,
            },
            "unanswered": m.lost,
            "connections": {
                "limit": scn.target.connections,
                "dialled": dialled,
                "waited": waited,
            },
            "in_flight": {
                "limit": scn.target.max_in_flight,
                "waited": seen.waited_in_flight,
            },
            "absent": absent_list,
            "recorder": recorder,
            "not_judged": not_judged,
            "latency_note": "latency_ms.complete is each request's answer as the client saw it, \
                             from its intended time (an op's completion is not visible over HTTP)",
            "setup": self.setup,
            "teardown": self.teardown,
            "interrupted": self.interrupted,
        });
        if let Value::Object(o) = &mut v {
            o.insert("load".into(), load);
        }
        let path = out.join("report.json");
        let text = serde_json::to_string_pretty(&v).context("the report's JSON")? + "\n";
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        let page = reports::html::run_page(
            &rep,
            &reports::html::Spectra::of(std::slice::from_ref(&m)),
            &m.timeline.samples(),
            &reports::html::FaultShading {
                windows: Vec::new(),
                note: String::new(),
            },
            reports::html::Phases {
                warmup_s: scn.warmup.as_secs_f64(),
                load_end_s: scn.duration.as_secs_f64(),
            },
            &[],
        )
        .map_err(|e| anyhow::anyhow!("drawing report.html: {e}"))?;
        let html = out.join("report.html");
        std::fs::write(&html, page).with_context(|| format!("writing {}", html.display()))?;

        let c = &m.complete;
        println!(
            "{}  seed {}  against {}  {:.1} s",
            scn.name, scn.seed, self.target, self.wall_s
        );
        println!(
            "sent       {} of {} scheduled  retries {}  answered {}  unanswered {}",
            seen.requests, self.scheduled, seen.retries, answered, m.lost
        );
        println!(
            "statuses   {}",
            seen.statuses
                .iter()
                .map(|(s, n)| format!("{s}: {n}"))
                .collect::<Vec<_>>()
                .join("  ")
        );
        println!(
            "errors     connect {}  protocol {}  timeouts {}",
            seen.connect_errors, seen.protocol_errors, m.timeouts
        );
        println!(
            "latency    p50 {:.1} ms  p99 {:.1} ms  p99.9 {:.1} ms  max {:.1} ms (from intended send times)",
            c.quantile_ms(0.5),
            c.quantile_ms(0.99),
            c.quantile_ms(0.999),
            ms(c.max_us())
        );
        println!(
            "behind     {} sends later than {} (send lateness p99 {:.1} ms, max {:.1} ms)",
            seen.behind,
            humantime::format_duration(scn.target.late_after),
            late.quantile_ms(0.99),
            ms(late.max_us())
        );
        println!(
            "pool       {} connections dialled (limit {}), {} requests waited for one, {} for an in-flight slot",
            dialled, scn.target.connections, waited, seen.waited_in_flight
        );
        for check in &rep.slo.checks {
            println!(
                "slo        {} {} (limit {}, value {})",
                check.name,
                if check.pass { "pass" } else { "FAIL" },
                check.limit,
                check.value
            );
        }
        for n in &not_judged {
            println!("slo        not judged: {n}");
        }
        println!("report     {}\n           {}", path.display(), html.display());
        if seen.behind > 0 {
            eprintln!(
                "warning: {} of {} sends left later than {} after their intended time (max {:.1} ms): \
                 the sender fell behind its schedule, so the target saw less load than scheduled",
                seen.behind,
                seen.requests + seen.retries,
                humantime::format_duration(scn.target.late_after),
                ms(late.max_us())
            );
        }
        if seen.requests > 0 && answered == 0 {
            eprintln!(
                "error: no request was answered over HTTP ({} connect errors, {} protocol errors, \
                 {} unanswered): is {} an HTTP server?",
                seen.connect_errors, seen.protocol_errors, m.lost, self.target
            );
            return Ok(ExitCode::FAILURE);
        }
        Ok(if rep.slo.pass && !self.interrupted {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        })
    }
}

/// The lateness histogram in milliseconds.
fn lateness(h: &Histo) -> Value {
    json!({
        "p50": h.quantile_ms(0.5),
        "p99": h.quantile_ms(0.99),
        "p999": h.quantile_ms(0.999),
        "max": ms(h.max_us()),
        "count": h.len(),
    })
}
