//! Each overflow policy does what docs/scenario.md says of `cluster.overflow`:
//! - `caller-runs`: the RPC slot runs the op itself and only then answers, so every exhaustion
//!   is a caller run and the API's answer waits (accept latency's tail grows to service times);
//! - `reject`: the op fails fast: every exhaustion is a failure, nothing runs on a caller;
//! - `queue`: the op waits for a worker: nothing fails, and the fraction that waited and the
//!   mean wait agree with Erlang C;
//! - `unbounded`: every op gets a worker at once: arrivals beyond `pool_workers` count as
//!   exhausted (at the Poisson tail of an infinite-server system) but nothing waits or fails,
//!   and the mean busy count can exceed `pool_workers`;
//! - blocking ops (`logs`, `exec`, `show`) are never pool arrivals.
//!
//! Runs with no warm-up where counters must match exactly (each counter then covers the same
//! ops); one simulated hour per seed.

use conductor::op::OpKind;
use reports::{erlang_c, erlang_c_wait, SeedMetrics};
use scenario::workload::{Arrivals, Requests};
use scenario::Scenario;
use tests::{assert_agrees, offered, poisson_tail, run, Capacity, Stats};

const C: u32 = 10;

/// One hour at 8 ops/s against 10 workers (≈ 8.3 erlangs with the hold's overhead), no
/// warm-up.
fn point(overflow: &'static str) -> Scenario {
    Capacity::new(C, 8.0)
        .overflow(overflow)
        .duration(3600, 0)
        .scenario()
}

fn no_loss(what: &str, m: &SeedMetrics) {
    assert_eq!(m.lost, 0, "{what}: seed {}: lost ops", m.seed);
    assert_eq!(m.rejected, 0, "{what}: seed {}: API refusals", m.seed);
    assert_eq!(m.accepted, m.submitted, "{what}: seed {}", m.seed);
    assert_eq!(
        m.completed + m.failed,
        m.accepted,
        "{what}: seed {}: every accepted op ends",
        m.seed
    );
    assert_eq!(
        m.arrivals, m.submitted,
        "{what}: seed {}: all async",
        m.seed
    );
}

#[test]
fn caller_runs_makes_the_api_wait() {
    let cr = run(&point("caller-runs"), 1, 2);
    let ub = run(&point("unbounded"), 1, 2);
    for (m, u) in cr.iter().zip(&ub) {
        no_loss("caller-runs", m);
        assert!(m.exhausted > 0, "seed {}: no exhaustion", m.seed);
        assert_eq!(m.caller_runs, m.exhausted, "seed {}", m.seed);
        assert_eq!(m.failed, 0, "seed {}", m.seed);
        assert_eq!(m.completed, m.submitted, "seed {}", m.seed);
        // Exhausted ops (≈ 13%) are answered only after their hold time (≈ 1 s, exp): the
        // p99 of the answer is a service time, not a network round trip.
        let p99 = m.accept.quantile_ms(0.99);
        let p99_unbounded = u.accept.quantile_ms(0.99);
        eprintln!(
            "  seed {}: accept p99 caller-runs {p99:.1} ms, unbounded {p99_unbounded:.1} ms",
            m.seed
        );
        assert!(
            p99 > 1000.0 && p99 > 10.0 * p99_unbounded,
            "seed {}: accept p99 {p99} ms under caller-runs vs {p99_unbounded} ms unbounded",
            m.seed
        );
        // The median op found a free worker: answered after network hops only.
        assert!(m.accept.quantile_ms(0.5) < 200.0, "seed {}", m.seed);
    }
}

#[test]
fn reject_fails_fast() {
    let rj = run(&point("reject"), 1, 2);
    for m in &rj {
        no_loss("reject", m);
        assert!(m.exhausted > 0, "seed {}: no exhaustion", m.seed);
        assert_eq!(m.failed, m.exhausted, "seed {}", m.seed);
        assert_eq!(m.caller_runs, 0, "seed {}", m.seed);
        assert_eq!(m.completed, m.arrivals - m.exhausted, "seed {}", m.seed);
        // Nobody waits for a worker: the answer is a few network hops, failure or not.
        let p99 = m.accept.quantile_ms(0.99);
        assert!(p99 < 200.0, "seed {}: accept p99 {p99} ms", m.seed);
        // A rejected op's completion is its refusal: the tail is the accepted ops' service.
        assert_eq!(m.complete.len(), m.submitted, "seed {}", m.seed);
    }
}

#[test]
fn queue_waits_as_erlang_c_says() {
    const SEEDS: u64 = 8;
    let scn = point("queue");
    let q = run(&scn, 1, SEEDS);
    // The same seeds without a limit: identical arrivals and service times (common random
    // numbers), so their completion minus hold is the overhead of the path without waiting.
    let ub = run(&point("unbounded"), 1, SEEDS);
    let mut p_wait = Vec::new();
    let mut p_pred = Vec::new();
    let mut wq = Vec::new();
    let mut wq_pred = Vec::new();
    for (m, u) in q.iter().zip(&ub) {
        no_loss("queue", m);
        assert!(m.exhausted > 0, "seed {}: nothing waited", m.seed);
        assert_eq!(m.failed, 0, "seed {}", m.seed);
        assert_eq!(m.caller_runs, 0, "seed {}", m.seed);
        assert_eq!(m.completed, m.submitted, "seed {}", m.seed);
        // The API is answered once the op is queued: no service time in the answer.
        let p99 = m.accept.quantile_ms(0.99);
        assert!(p99 < 200.0, "seed {}: accept p99 {p99} ms", m.seed);
        let a = offered(&scn, m);
        let hold_s = m.hold.mean_us() / 1e6;
        p_wait.push(m.exhaustion_ratio());
        p_pred.push(erlang_c(C, a));
        let overhead = (u.complete.mean_us() - u.hold.mean_us()) / 1e6;
        wq.push((m.complete.mean_us() - m.hold.mean_us()) / 1e6 - overhead);
        // Allen–Cunneen: Wq(M/G/c) ≈ Wq(M/M/c) × (1 + CV²) / 2. The hold is the exponential
        // service (mean 1 s, variance 1 s²) plus a few ms of nearly constant round trips.
        let cv2 = (1.0 / hold_s).powi(2);
        wq_pred.push(erlang_c_wait(C, a, hold_s) * (1.0 + cv2) / 2.0);
    }
    // The hold time is exponential plus a few ms of store and network round trips, a little
    // less variable than M/M/c assumes: floors of 2% (P(wait)) and 4% (Wq) besides 3 SE.
    let pc = p_pred.iter().sum::<f64>() / p_pred.len() as f64;
    assert_agrees(
        "P(wait) vs Erlang C",
        &p_wait,
        &p_pred,
        3.0,
        0.02 * pc,
        0.2 * pc,
    );
    let w = wq_pred.iter().sum::<f64>() / wq_pred.len() as f64;
    assert_agrees("Wq (s) vs Erlang C", &wq, &wq_pred, 3.0, 0.04 * w, 0.3 * w);
    // And the wait is real: an unbounded pool's ops do not wait at all.
    let s = Stats::of(&wq);
    assert!(s.mean > 0.1, "mean wait {s}");
}

#[test]
fn unbounded_never_waits_nor_fails() {
    // 12 erlangs offered to 10 workers that never refuse.
    let c = 10;
    let scn = Capacity::new(c, 12.0)
        .overflow("unbounded")
        .duration(3600, 0)
        .scenario();
    let ub = run(&scn, 1, 4);
    let mut measured = Vec::new();
    let mut predicted = Vec::new();
    for m in &ub {
        no_loss("unbounded", m);
        assert_eq!(m.failed, 0, "seed {}", m.seed);
        assert_eq!(m.caller_runs, 0, "seed {}", m.seed);
        assert!(
            m.exhausted > 0,
            "seed {}: nobody beyond the pool size",
            m.seed
        );
        // Nothing waits: the answer is network hops, and completion is hold plus hops.
        let p99 = m.accept.quantile_ms(0.99);
        assert!(p99 < 200.0, "seed {}: accept p99 {p99} ms", m.seed);
        let extra_ms = (m.complete.mean_us() - m.hold.mean_us()) / 1e3;
        assert!(
            (0.0..200.0).contains(&extra_ms),
            "seed {}: completion exceeds hold by {extra_ms} ms on average",
            m.seed
        );
        // More than `pool_workers` busy on average.
        assert!(
            m.mean_busy() > f64::from(c),
            "seed {}: {}",
            m.seed,
            m.mean_busy()
        );
        // An arrival finds at least c busy with the Poisson tail of M/G/∞ (PASTA).
        measured.push(m.exhaustion_ratio());
        predicted.push(poisson_tail(c, offered(&scn, m)));
    }
    let p = predicted.iter().sum::<f64>() / predicted.len() as f64;
    assert_agrees(
        "unbounded P(N >= c)",
        &measured,
        &predicted,
        3.0,
        0.02 * p,
        0.1 * p,
    );
}

/// Blocking ops are answered on the RPC slot and never reach the pool: with an even mix of
/// `start` and the three blocking ops, pool arrivals are exactly the `start` requests the
/// workload stream drew.
#[test]
fn blocking_ops_are_never_pool_arrivals() {
    let scn = Capacity::new(C, 8.0)
        .mix("{ start = 1.0, logs = 1.0, exec = 1.0, show = 1.0 }")
        .duration(1800, 0)
        .scenario();
    let seeds = run(&scn, 1, 2);
    for m in &seeds {
        // Replay the workload's own streams: how many requests, and how many were `start`.
        let n = Arrivals::new(&scn.workload.arrival, m.seed, scn.duration).count() as u64;
        let mut req = Requests::new(&scn.workload, m.seed).expect("a valid mix");
        let starts = (0..n).filter(|_| req.draw().1 == OpKind::Start).count() as u64;
        eprintln!(
            "  seed {}: submitted {}, starts {starts}, pool arrivals {}",
            m.seed, m.submitted, m.arrivals
        );
        assert_eq!(m.submitted, n, "seed {}", m.seed);
        assert_eq!(
            m.arrivals, starts,
            "seed {}: pool arrivals vs starts",
            m.seed
        );
        let share = m.arrivals as f64 / m.submitted as f64;
        assert!(
            (share - 0.25).abs() < 0.02,
            "seed {}: async share {share}",
            m.seed
        );
        assert_eq!(m.lost, 0, "seed {}", m.seed);
        assert_eq!(m.failed, 0, "seed {}", m.seed);
        assert_eq!(m.completed, m.submitted, "seed {}", m.seed);
        // Only the async ops held a worker or a caller.
        assert_eq!(m.hold.len(), starts, "seed {}", m.seed);
        for op in ["logs", "exec", "show", "start"] {
            assert!(
                m.by_op.contains_key(op),
                "seed {}: no {op} completed",
                m.seed
            );
        }
    }
}
