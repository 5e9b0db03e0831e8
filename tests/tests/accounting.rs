//! Counters and histograms tell one consistent story (docs/outputs.md, "report.json"):
//! - `pool` sums over conductors, `mean_busy` too, and round-robin spreads the arrivals evenly;
//! - `complete` covers the ops that became terminal; rejected ops (the API's 409s) are counted,
//!   not timed.

use tests::{run, window_s, Capacity};

/// Three conductors of 4 workers on the shared topic: the pool's numbers are sums.
#[test]
fn three_conductors_sum_up() {
    let scn = Capacity::new(4, 9.0)
        .conductors(3)
        .duration(1800, 0)
        .scenario();
    assert!(
        sim::run::erlang_model(&scn).is_none(),
        "not a single loss system"
    );
    let seeds = run(&scn, 1, 2);
    for m in &seeds {
        assert_eq!(m.per_conductor.len(), 3);
        assert_eq!(m.pool_busy.len(), 3);
        let arrivals: u64 = m.per_conductor.iter().map(|c| c.arrivals).sum();
        let exhausted: u64 = m.per_conductor.iter().map(|c| c.exhausted).sum();
        assert_eq!(arrivals, m.arrivals, "seed {}", m.seed);
        assert_eq!(exhausted, m.exhausted, "seed {}", m.seed);
        assert_eq!(m.arrivals, m.submitted, "seed {}", m.seed);
        // Round-robin: each conductor takes a third, give or take one.
        for c in &m.per_conductor {
            assert!(
                c.arrivals.abs_diff(m.arrivals / 3) <= 1,
                "seed {}: {} took {} of {}",
                m.seed,
                c.name,
                c.arrivals,
                m.arrivals
            );
            assert!(
                c.exhausted > 0,
                "seed {}: {} never exhausted",
                m.seed,
                c.name
            );
        }
        // Little's law for the sum of the pools.
        let want = (m.arrivals - m.exhausted) as f64 / window_s(m) * m.hold.mean_us() / 1e6;
        let busy = m.mean_busy();
        assert!(
            (busy / want - 1.0).abs() < 0.01,
            "seed {}: mean busy {busy} vs {want}",
            m.seed
        );
        assert!(busy < 12.0 && busy > 4.0, "seed {}: {busy}", m.seed);
        assert_eq!(m.caller_runs, m.exhausted, "seed {}", m.seed);
    }
    let rep = sim::run::report(&scn, 1, &seeds, 0.0);
    assert_eq!(rep.pool.workers, 12);
    assert_eq!(rep.pool.per_conductor.len(), 3);
    assert_eq!(rep.pool.per_conductor[2].name, "conductor-3");
    let mean_busy = (seeds[0].mean_busy() + seeds[1].mean_busy()) / 2.0;
    assert!((rep.pool.mean_busy - mean_busy).abs() < 1e-5);
}

/// With Zun's state validation, a stop on a stopped container is refused (409): refused ops
/// are counted in `rejected`, and only accepted ops become terminal and are timed.
#[test]
fn refused_ops_are_counted_not_completed() {
    let scn = Capacity::new(10, 8.0)
        .mix("{ start = 1.0, stop = 1.0, pause = 1.0 }")
        .validate_state(true)
        .duration(600, 0)
        .scenario();
    let m = &run(&scn, 1, 1)[0];
    assert!(m.rejected > 0, "no 409s");
    assert_eq!(m.accepted + m.rejected, m.submitted);
    assert_eq!(m.completed + m.failed + m.lost, m.accepted);
    assert_eq!(m.complete.len(), m.completed + m.failed);
    // Only accepted async ops reach the pool.
    assert_eq!(m.arrivals, m.accepted);
}

/// The contract (docs/outputs.md): "`accept` is the API's answer; rejected ops are counted, not timed".
#[test]
fn refused_ops_are_not_timed() {
    let scn = Capacity::new(10, 8.0)
        .mix("{ start = 1.0, stop = 1.0, pause = 1.0 }")
        .validate_state(true)
        .duration(600, 0)
        .scenario();
    let m = &run(&scn, 1, 1)[0];
    assert!(m.rejected > 0, "no 409s");
    assert_eq!(
        m.accept.len(),
        m.accepted,
        "accept latency counts {} answers for {} accepted and {} refused ops",
        m.accept.len(),
        m.accepted,
        m.rejected
    );
}
