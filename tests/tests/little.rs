//! Little's law on the pool (docs/queueing.md): the time-average number of busy workers
//! equals the rate of ops the workers serve times the mean hold time,
//! L = λ_served × E[hold]; for a loss system λ_served = λ × (1 − B).
//!
//! The busy level (`SeedMetrics::pool_busy`, time-weighted from the end of the warm-up to the
//! end of the run), the hold-time histogram and the arrival counters are recorded by different
//! events, so agreement checks that the three tell the same story. Each policy runs 4 seeds of
//! one simulated hour; every seed must agree within 1%, and the mean over seeds within 0.5%.
//! The loss-system case is also checked against theory, λ × (1 − E_B(c, A)) × E[hold], and the
//! callers' side of caller-runs: mean busy RPC slots = λ × B × E[hold].

use reports::{erlang_b, SeedMetrics};
use tests::{measured_rate, offered, run, window_s, Capacity, Stats};

const SEEDS: u64 = 4;
/// Per-seed relative tolerance.
const TOL_SEED: f64 = 0.01;
/// Relative tolerance of the mean over seeds.
const TOL_MEAN: f64 = 0.005;

/// Asserts L ≈ λ_served × E[hold] for every seed, where `served(m)` is the number of ops the
/// pool's workers ran (after the warm-up). Returns the per-seed mean busy workers.
fn little(what: &str, seeds: &[SeedMetrics], served: fn(&SeedMetrics) -> u64) -> Vec<f64> {
    let mut rel = Vec::new();
    let mut busy = Vec::new();
    for m in seeds {
        let l = m.mean_busy();
        // Ops are served over the whole window (the drain too): rate over the window.
        let lambda = served(m) as f64 / window_s(m);
        let want = lambda * m.hold.mean_us() / 1e6;
        let r = l / want - 1.0;
        eprintln!(
            "  {what}: seed {}: mean busy {l:.4}, λ_served·E[hold] = {lambda:.4}/s × {:.4}s = {want:.4} ({:+.3}%)",
            m.seed,
            m.hold.mean_us() / 1e6,
            100.0 * r
        );
        assert!(
            r.abs() <= TOL_SEED,
            "{what}: seed {}: mean busy workers {l:.4} vs λ_served × E[hold] = {want:.4} \
             (off by {:+.2}%, tolerance {}%)",
            m.seed,
            100.0 * r,
            100.0 * TOL_SEED
        );
        rel.push(r);
        busy.push(l);
    }
    let s = Stats::of(&rel);
    assert!(
        s.mean.abs() <= TOL_MEAN,
        "{what}: mean relative error {:+.3}% over seeds exceeds {}%",
        100.0 * s.mean,
        100.0 * TOL_MEAN
    );
    busy
}

#[test]
fn loss_pool_caller_runs() {
    let c = 10;
    let scn = Capacity::new(c, 8.0).scenario();
    let seeds = run(&scn, 1, SEEDS);
    little("caller-runs", &seeds, |m| m.arrivals - m.exhausted);
    for m in &seeds {
        // Theory: λ × (1 − E_B(c, A)) × E[hold], with λ over the load phase.
        let lambda = measured_rate(&scn, m);
        let hold = m.hold.mean_us() / 1e6;
        let b = erlang_b(c, offered(&scn, m));
        let theory =
            lambda * (1.0 - b) * hold * (scn.duration - scn.warmup).as_secs_f64() / window_s(m);
        let l = m.mean_busy();
        assert!(
            (l / theory - 1.0).abs() <= TOL_SEED,
            "seed {}: mean busy {l:.4} vs λ(1 − E_B)E[hold] = {theory:.4}",
            m.seed
        );
        assert!(l < f64::from(c));
        // The callers carry the rest: every exhausted op held an RPC slot for its hold time.
        let callers = m.mean_busy_slots();
        let want = m.caller_runs as f64 / window_s(m) * hold;
        assert!(
            (callers / want - 1.0).abs() <= 0.03,
            "seed {}: mean busy RPC slots {callers:.4} vs λ·B·E[hold] = {want:.4}",
            m.seed
        );
    }
}

#[test]
fn loss_pool_reject() {
    // No warm-up: every counter then covers the same ops, so the accounting is exact.
    let scn = Capacity::new(5, 5.0)
        .overflow("reject")
        .duration(3600, 0)
        .scenario();
    let seeds = run(&scn, 11, SEEDS);
    little("reject", &seeds, |m| m.arrivals - m.exhausted);
    for m in &seeds {
        // Rejected ops never hold anything; every rejection is a failure.
        assert_eq!(m.hold.len(), m.arrivals - m.exhausted, "seed {}", m.seed);
        assert_eq!(m.failed, m.exhausted, "seed {}", m.seed);
        assert_eq!(m.completed, m.hold.len(), "seed {}", m.seed);
    }
}

#[test]
fn queue_pool_serves_everything() {
    let c = 10;
    // No warm-up: every counter then covers the same ops, so the accounting is exact.
    let scn = Capacity::new(c, 8.0)
        .overflow("queue")
        .duration(3600, 0)
        .scenario();
    let seeds = run(&scn, 21, SEEDS);
    let busy = little("queue", &seeds, |m| m.arrivals);
    for (m, l) in seeds.iter().zip(busy) {
        assert!(l < f64::from(c), "seed {}: {l}", m.seed);
        assert_eq!(m.hold.len(), m.arrivals, "seed {}", m.seed);
        assert_eq!(m.completed, m.submitted, "seed {}", m.seed);
    }
}

#[test]
fn unbounded_pool_exceeds_its_size() {
    let c = 10;
    let scn = Capacity::new(c, 12.0).overflow("unbounded").scenario();
    let seeds = run(&scn, 31, SEEDS);
    let busy = little("unbounded", &seeds, |m| m.arrivals);
    for (m, l) in seeds.iter().zip(busy) {
        // 12 erlangs offered to 10 "workers" that never refuse: more than 10 busy on average.
        assert!(
            l > f64::from(c),
            "seed {}: mean busy {l} not above {c}",
            m.seed
        );
    }
}
