//! Common random numbers (docs/ARCHITECTURE.md, determinism): arrivals, container picks and service times
//! come from their own keyed streams, never from the scheduler's RNG, so two configurations
//! run with the same seed see the same workload and the same service times however their
//! scheduling differs. Here: a pool of 5 and a pool of 50 workers.

use conductor::host::HostModel;
use conductor::op::OpKind;
use conductor::proto::{HostCmd, OpSpec};
use reports::SeedMetrics;
use scenario::host_model::Backends;
use scenario::workload::{Arrivals, Requests};
use scenario::Scenario;
use tests::{run_one, Capacity};

/// Half an hour at 8 ops/s, no warm-up, with `workers` workers.
fn pool(workers: u32, overflow: &'static str) -> Scenario {
    Capacity::new(workers, 8.0)
        .overflow(overflow)
        .duration(1800, 0)
        .scenario()
}

fn arrivals(scn: &Scenario, seed: u64) -> Vec<u64> {
    Arrivals::new(&scn.workload.arrival, seed, scn.duration).collect()
}

fn requests(scn: &Scenario, seed: u64, n: usize) -> Vec<(u64, OpKind)> {
    let mut r = Requests::new(&scn.workload, seed).expect("a valid mix");
    (0..n).map(|_| r.draw()).collect()
}

#[test]
fn the_workload_does_not_depend_on_the_pool() {
    let (small, big) = (pool(5, "caller-runs"), pool(50, "caller-runs"));
    for seed in [1, 2, 77] {
        let a = arrivals(&small, seed);
        assert!(a.len() > 10_000, "{}", a.len());
        assert_eq!(a, arrivals(&big, seed), "seed {seed}: arrival times differ");
        assert_eq!(
            requests(&small, seed, a.len()),
            requests(&big, seed, a.len()),
            "seed {seed}: container picks or op kinds differ"
        );
    }
    // …while another seed is another workload.
    assert_ne!(arrivals(&small, 1), arrivals(&small, 2));
    assert_ne!(requests(&small, 1, 1000), requests(&small, 2, 1000));
}

#[test]
fn service_times_are_keyed_by_op_not_by_order() {
    let (small, big) = (pool(5, "caller-runs"), pool(50, "caller-runs"));
    let (a, b) = (
        Backends::new(3, &small.backend, no_sleep()),
        Backends::new(3, &big.backend, no_sleep()),
    );
    let cmd = |id: u64, host: u32| HostCmd {
        op: OpSpec {
            id,
            container: id % 1000,
            kind: OpKind::Start,
            intended_us: id * 1000,
            deadline: None,
        },
        seq: id,
        attempt: 1,
        conductor: host,
        token: 0,
    };
    let forward: Vec<_> = (0..5000).map(|i| a.service_time(0, &cmd(i, 0))).collect();
    // The other configuration, asked in reverse order, from another host and conductor.
    let mut backward: Vec<_> = (0..5000)
        .rev()
        .map(|i| b.service_time(3, &cmd(i, 7)))
        .collect();
    backward.reverse();
    assert_eq!(forward, backward);
    let other_seed = Backends::new(4, &small.backend, no_sleep());
    assert_ne!(forward[0], other_seed.service_time(0, &cmd(0, 0)));
}

/// The same seed with 5 and with 50 workers: the same requests reach the API, at the same
/// intended times, whatever the pool does with them.
#[test]
fn runs_with_different_pools_see_the_same_arrivals() {
    let seed = 5;
    let (small, big) = (pool(5, "caller-runs"), pool(50, "caller-runs"));
    let (s, b) = (run_one(&small, seed), run_one(&big, seed));
    let n = arrivals(&small, seed).len() as u64;
    assert_eq!(s.submitted, n);
    assert_eq!(b.submitted, n);
    assert_eq!(s.arrivals, b.arrivals);
    // The pools behave very differently…
    assert!(
        s.exhaustion_ratio() > 0.3 && b.exhaustion_ratio() == 0.0,
        "{} vs {}",
        s.exhaustion_ratio(),
        b.exhaustion_ratio()
    );
    // …yet each op's service time is the same draw: the mean hold differs only by network
    // jitter (round trips of a few ms, averaged over ~14 000 ops), far less than the
    // difference between two seeds.
    let rel = |x: &SeedMetrics, y: &SeedMetrics| (x.hold.mean_us() / y.hold.mean_us() - 1.0).abs();
    let other = run_one(&big, seed + 1);
    eprintln!(
        "  mean hold: pool 5 {:.1} µs, pool 50 {:.1} µs, pool 50 seed {} {:.1} µs",
        s.hold.mean_us(),
        b.hold.mean_us(),
        seed + 1,
        other.hold.mean_us()
    );
    assert!(
        rel(&s, &b) < 0.001,
        "same seed: hold means differ by {}",
        rel(&s, &b)
    );
    assert!(
        rel(&other, &b) > 10.0 * rel(&s, &b),
        "another seed looks the same"
    );
    assert_eq!(s.hold.len(), b.hold.len());
}

/// With an unbounded pool the pool size changes only what counts as exhausted: both runs take
/// the same path through every service, so every service time, hold and latency is identical.
#[test]
fn unbounded_pools_of_any_size_run_identically() {
    let seed = 9;
    let (s, b) = (
        run_one(&pool(5, "unbounded"), seed),
        run_one(&pool(50, "unbounded"), seed),
    );
    assert_eq!(s.submitted, b.submitted);
    assert_eq!(s.arrivals, b.arrivals);
    assert_eq!(s.hold.len(), b.hold.len());
    assert_eq!(s.hold.mean_us(), b.hold.mean_us(), "service draws differ");
    assert_eq!(s.hold.max_us(), b.hold.max_us());
    for q in [0.1, 0.5, 0.9, 0.99] {
        assert_eq!(s.hold.quantile_us(q), b.hold.quantile_us(q), "hold q{q}");
        assert_eq!(
            s.complete.quantile_us(q),
            b.complete.quantile_us(q),
            "complete q{q}"
        );
    }
    assert_eq!(s.complete.mean_us(), b.complete.mean_us());
    assert_eq!(s.mean_busy(), b.mean_busy());
    assert_eq!(s.sim_end_us, b.sim_end_us);
    // Only the bookkeeping against the pool size differs.
    assert!(
        s.exhausted > b.exhausted,
        "{} vs {}",
        s.exhausted,
        b.exhausted
    );
}

/// The draws are all these tests look at: the hosts never sleep here.
fn no_sleep() -> scenario::host_model::Sleep {
    std::sync::Arc::new(|_| Box::pin(async {}))
}
