//! What only the deployment knows, read from its own recorder (`load --recorder DIR`, and
//! always in `calibrate`): the JSON-lines logs the reference deployment's services write
//! (`conductor::recorder::JsonLines`) folded into a seed's metrics by the simulator's own fold
//! (`scenario::fold`) — the pool's arrivals, exhaustion and its batches' interval, occupancy,
//! hold times, the RPC slots, the ops' completion inside the deployment — and judged by the
//! simulator's checker (`checker::history`).
//!
//! The logs' clock is the UNIX epoch in µs; the load phase's start on that clock makes every
//! time (and every op's intended time) relative to the run, as the simulator's are. An op's
//! intended time in the deployment is when the HTTP API received it (its send is not on the
//! deployment's clock), so the deployment's completion latency runs from there.

use anyhow::Context;
use checker::history::{check_files, read_events, HistoryFindings};
use conductor::recorder::Event;
use reports::SeedMetrics;
use scenario::fold::{self, fold, Window};
use scenario::{Node, Scenario};
use std::path::{Path, PathBuf};

/// The deployment's figures for one run.
pub struct Recorded {
    /// The folded metrics: pool, RPC slots, holds, the deployment's counts and completions.
    pub metrics: SeedMetrics,
    /// The checker's verdict on the logs.
    pub findings: HistoryFindings,
    /// The directory read.
    pub dir: PathBuf,
    /// Events folded (inside the run: from the load's start).
    pub events: u64,
}

/// The JSON-lines logs in `dir` (`*.jsonl`), in name order.
pub fn logs(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("--recorder: cannot read {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().and_then(|e| e.to_str()) == Some("jsonl"))
        .collect();
    v.sort();
    if v.is_empty() {
        anyhow::bail!(
            "--recorder {}: no JSON-lines log (*.jsonl) of the deployment's services there",
            dir.display()
        );
    }
    Ok(v)
}

/// Moves an event's op's intended time onto the run's clock (`t0` its start on the epoch).
fn rebase(ev: &mut Event, t0: u64) {
    match ev {
        Event::Accepted { op, .. }
        | Event::Rejected { op }
        | Event::Deduplicated { op, .. }
        | Event::PoolArrival { op, .. }
        | Event::Terminal { op, .. }
        | Event::Applied { op, .. }
        | Event::NotReady { op, .. }
        | Event::GaveUp { op, .. }
        | Event::Cancelled { op, .. } => op.intended_us = op.intended_us.saturating_sub(t0),
        _ => {}
    }
}

/// Reads and folds the logs in `dir` for a run of `scn` whose load phase started at `t0_us`
/// (µs since the UNIX epoch): events before it (a setup phase) are left out, levels close at
/// the end of the load phase as the simulator's do.
pub fn read(dir: &Path, scn: &Scenario, t0_us: u64) -> anyhow::Result<Recorded> {
    let files = logs(dir)?;
    let (events, _torn) = read_events(&files).with_context(|| "--recorder: the logs")?;
    let c = &scn.cluster;
    let names: Vec<String> = (0..c.conductors)
        .map(|i| Node::Conductor(i).to_string())
        .collect();
    let warmup_us = scn.warmup.as_micros() as u64;
    let load_us = scn.duration.as_micros() as u64;
    let mut m = SeedMetrics::new(scn.seed, warmup_us, &names, c.pool_workers, c.rpc_workers);
    fold::start(&mut m);
    let mut w = Window::new(load_us, warmup_us);
    let mut n = 0;
    for (t, mut ev) in events {
        let Some(now) = t.checked_sub(t0_us) else {
            continue;
        };
        if w.load_end_us.is_none() && now >= load_us {
            m.finish(load_us);
            w.load_end_us = Some(load_us);
        }
        rebase(&mut ev, t0_us);
        fold(&mut m, &w, now, &ev);
        n += 1;
    }
    if w.load_end_us.is_none() {
        m.finish(load_us);
    }
    let findings = check_files(&files, scn.checks.judged())
        .map_err(|e| anyhow::anyhow!("--recorder: the history cannot be judged: {e}"))?;
    m.violations = findings
        .findings
        .violations
        .iter()
        .map(|v| v.to_json())
        .collect();
    m.violation_counts = findings.findings.counts.clone();
    Ok(Recorded {
        metrics: m,
        findings,
        dir: dir.to_path_buf(),
        events: n,
    })
}

/// Puts what the deployment knows into the client's pooled metrics `m`: the pool, the RPC
/// slots, the holds, the violations (the client's own counts and latencies stay).
pub fn merge_into(m: &mut SeedMetrics, d: &SeedMetrics) {
    m.arrivals = d.arrivals;
    m.exhausted = d.exhausted;
    m.caller_runs = d.caller_runs;
    m.batches = d.batches.clone();
    m.per_conductor = d.per_conductor.clone();
    m.hold = d.hold.clone();
    m.backlog_wait = d.backlog_wait.clone();
    m.pool_busy = d.pool_busy.clone();
    m.rpc_busy = d.rpc_busy.clone();
    m.messages = d.messages;
    m.violations = d.violations.clone();
    m.violation_counts = d.violation_counts.clone();
}
