//! The retry-research acceptance points (docs/retry-research.md): the spike scenario is
//! metastable without a budget on every seed, and recovers in finite time with a Finagle budget,
//! gRFC A6 throttling or a circuit breaker; the same scenario without its spike is never
//! flagged; over spike size × spike length the frontier between "recovers" and "stuck" is
//! monotone. Every row runs the same seeds (common random numbers). Outside the remedies' test
//! the load phase is cut to 8 minutes (the spike ends at 3m 20s: more than 10 × its 20 s before
//! the end, so judged); the remedies get the scenario's 15 (the budget drains the backlog at
//! the pool's spare 1.2 ops/s: a few minutes).

use sim::compare::{self, Plan};
use sim::sweep::Source;
use std::path::Path;
use tests::JOBS;

const SEEDS: u64 = 3;

fn spike(sets: &[String]) -> Source {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/retry/spike.toml");
    Source::read(&path, sets).expect("reading the spike scenario")
}

fn run(vary: &[&str]) -> reports::compare::Compare {
    run_with(&["duration=\"8m\"".to_string()], vary)
}

fn run_with(sets: &[String], vary: &[&str]) -> reports::compare::Compare {
    let vary: Vec<String> = vary.iter().map(|s| s.to_string()).collect();
    let plan = Plan::new(&spike(sets), &vary, 1, SEEDS).expect("a valid comparison");
    compare::run(&plan, JOBS, &|| {})
        .expect("the runs complete")
        .compare
}

#[test]
fn the_spike_is_metastable_without_a_budget_and_each_remedy_recovers() {
    let c = run_with(
        &[],
        &["client.retry.policy=fixed,\
         fixed+client.retry.budget={ ttl = \"10s\", min_per_s = 0, percent = 0.1 },\
         fixed+client.retry.throttling={ max_tokens = 10, token_ratio = 0.1 },\
         fixed+client.retry.breaker={ failures = 5, open_for = \"5s\" }"],
    );
    let none = &c.rows[0];
    assert_eq!(none.metastable, Some(true), "{}", c.table());
    assert_eq!(none.stuck_seeds, SEEDS, "every seed stuck: {}", c.table());
    assert_eq!(none.recovery_s.unrecovered_seeds, SEEDS);
    for (i, r) in c.rows.iter().enumerate().skip(1) {
        assert_eq!(r.metastable, Some(false), "row {i}: {}", c.table());
        assert_eq!(
            (r.stuck_seeds, r.recovery_s.unrecovered_seeds),
            (0, 0),
            "row {i}: {}",
            c.table()
        );
        let max = r.recovery_s.max.expect("a finite recovery time");
        assert!(
            max < 300.0,
            "row {i} recovered only after {max} s: {}",
            c.table()
        );
        // Paired on the same arrivals: the remedy's goodput is higher on the seeds' average,
        // with an interval above 0, and it sends fewer attempts.
        let p = &c.paired[i - 1];
        assert!(p.goodput_diff.ci95[0] > 0.0, "row {i}: {}", c.table());
        assert!(p.attempts_diff.ci95[1] < 0.0, "row {i}: {}", c.table());
        assert_eq!(r.offered, none.offered, "rows are paired");
    }
}

#[test]
fn without_its_spike_the_run_is_never_flagged() {
    // The spike's phase at the base rate: no trigger, with or without retries.
    let c = run(&[
        "workload.arrival.phases[1].rate=8.0",
        "client.retry.max_attempts=1,6",
    ]);
    for r in &c.rows {
        assert_eq!(r.metastable, Some(false), "{}", c.table());
        assert_eq!(r.stuck_seeds, 0);
        assert_eq!(r.recovery_s.median, None);
        assert_eq!(r.recovery_s.unrecovered_seeds, 0);
    }
}

#[test]
fn the_boundary_over_spike_size_and_length_is_monotone() {
    let rates = ["10.0", "16.0", "20.0"];
    let lengths = ["5s", "10s", "20s"];
    let c = run(&[
        &format!("workload.arrival.phases[1].rate={}", rates.join(",")),
        &format!("workload.arrival.phases[1].for={}", lengths.join(",")),
    ]);
    let stuck = |i: usize, j: usize| c.rows[i * lengths.len() + j].stuck_seeds;
    // The frontier: a cell where every seed is stuck has every bigger or longer cell stuck too,
    // and a cell where none is has every smaller or shorter cell clean too.
    for i in 0..rates.len() {
        for j in 0..lengths.len() {
            for (k, l) in (i..rates.len()).flat_map(|k| (j..lengths.len()).map(move |l| (k, l))) {
                if stuck(i, j) == SEEDS {
                    assert_eq!(
                        stuck(k, l),
                        SEEDS,
                        "({i},{j}) stuck but not ({k},{l}):\n{}",
                        c.table()
                    );
                }
                if stuck(k, l) == 0 {
                    assert_eq!(
                        stuck(i, j),
                        0,
                        "({k},{l}) clean but not ({i},{j}):\n{}",
                        c.table()
                    );
                }
            }
        }
    }
    // The biggest spike sticks every seed; the smallest not all of them.
    assert_eq!(stuck(2, 2), SEEDS, "{}", c.table());
    assert!(stuck(0, 0) < SEEDS, "{}", c.table());
}

/// The spike (8 minutes) with `client.retry_same_op` set to `same_op`, on seed 1.
fn spike_seed(same_op: bool) -> reports::SeedMetrics {
    let scn = spike(&[
        "duration=\"8m\"".to_string(),
        format!("client.retry_same_op={same_op}"),
        "checks.invariants=[\"at-most-once\"]".to_string(),
    ])
    .scenario(&[])
    .expect("a valid scenario");
    sim::world::run_seed(&scn, 1).expect("the run completes")
}

#[test]
fn a_retry_of_the_same_op_is_answered_by_its_key_and_runs_once() {
    let new = spike_seed(false);
    let same = spike_seed(true);
    let attempts = |m: &reports::SeedMetrics| m.submitted + m.client_retries;
    let figures = |m: &reports::SeedMetrics| {
        format!(
            "submitted {}, retries {}, accepted {}, pool arrivals {}, deduplicated {}, done {}, \
             goodput {}, violations {:?}",
            m.submitted,
            m.client_retries,
            m.accepted,
            m.arrivals,
            m.deduplicated,
            m.completed,
            m.goodput,
            m.violation_counts
        )
    };
    let (n, s) = (figures(&new), figures(&same));
    // New ops: every retry is persisted and run as an op of its own.
    assert!(new.client_retries > new.submitted, "{n}");
    assert!(new.accepted > new.submitted * 3 / 2, "{n}");
    assert_eq!(new.deduplicated, 0, "{n}");
    // The same op: retries are sent (and counted as attempts) but answered by the key: each
    // request is stored and run at most once, fewer ops stored than attempts sent.
    assert!(same.client_retries > 0, "{s}");
    assert!(same.accepted <= same.submitted, "{s}");
    assert!(attempts(&same) > same.accepted, "{s}");
    assert!(same.deduplicated >= same.client_retries * 9 / 10, "{s}");
    // No duplicate work: the pool runs one op per request (counted from the warm-up on, so
    // a few of the first requests' ops fall on either side of it).
    assert!(
        same.arrivals <= same.submitted + same.submitted / 100,
        "{s}"
    );
    assert!(new.arrivals > same.arrivals * 3 / 2, "{n} / {s}");
    assert!(same.violation_counts.is_empty() && new.violation_counts.is_empty());
    // Nothing lost to the accounting: every attempt sent is settled by the end of the drain
    // (answered by its key, or its op terminal).
    assert_eq!(same.lost, 0, "{s}");
    // And the queue never fills with copies: the spike does not stick.
    assert!(same.goodput > 3 * new.goodput, "{n} / {s}");
}

#[test]
fn deadlines_cancel_the_spikes_dead_work_but_do_not_end_the_storm() {
    // The same spike with the client's deadline carried by each op: a conductor cancels every
    // queued attempt whose client has given up instead of running it. That is not enough here
    // (docs/retry-research.md): the retries still arrive faster than the pool serves, so its
    // FIFO queue stays as deep as the timeout, and what the pool starts is always the live
    // attempt nearest its deadline, which finishes too late. The storm goes on without dead
    // work; a budget, throttling or a breaker is what ends it.
    let c = run(&["client.cancel=none,deadline"]);
    let (none, deadline) = (&c.rows[0], &c.rows[1]);
    assert_eq!(none.metastable, Some(true), "{}", c.table());
    assert_eq!(deadline.metastable, Some(true), "{}", c.table());
    assert_eq!(deadline.stuck_seeds, SEEDS, "{}", c.table());
    assert_eq!(deadline.offered, none.offered, "rows are paired");
    // Seed by seed, no worse than running the dead attempts.
    assert!(c.paired[0].goodput_diff.mean >= 0.0, "{}", c.table());

    // What the conductor did instead: most attempts were cancelled unrun, none lost.
    let scn = spike(&[
        "duration=\"8m\"".into(),
        "client.cancel=\"deadline\"".into(),
    ])
    .scenario(&[])
    .expect("a valid scenario");
    let seeds = sim::run::run_seeds(&scn, 1, 1, JOBS).expect("the run completes");
    let rep = sim::run::report(&scn, 1, &seeds, 0.0);
    let cancelled = rep.ops.cancelled.expect("counted with client.cancel set");
    assert!(
        cancelled > rep.ops.completed,
        "{cancelled} cancelled: {:?}",
        rep.ops
    );
    assert_eq!(rep.ops.lost, 0, "{:?}", rep.ops);
}

/// The bus outage (the bus paused 30 s under 2 s client timeouts), cut short, with the
/// liveness invariants judged.
fn bus_outage(cancel: &str) -> (scenario::Scenario, reports::Report) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/retry/bus-outage.toml");
    let sets = [
        "duration=\"6m\"".to_string(),
        "drain=\"2m\"".to_string(),
        "checks.invariants=[\"no-lost-ops\", \"no-stuck-state\"]".to_string(),
        format!("client.cancel=\"{cancel}\""),
    ];
    let scn = scenario::load(&path, &sets).expect("the bus-outage scenario");
    let seeds = sim::run::run_seeds(&scn, 1, 2, JOBS).expect("the runs complete");
    let rep = sim::run::report(&scn, 1, &seeds, 0.0);
    (scn, rep)
}

#[test]
fn bus_ttl_drops_what_expired_during_a_bus_outage_and_loses_nothing() {
    let (_, ttl) = bus_outage("bus-ttl");
    let (_, none) = bus_outage("none");
    let cancelled = ttl.ops.cancelled.expect("counted with client.cancel set");
    // Everything published into the paused bus waited longer than its 2 s TTL.
    assert!(cancelled > 100, "{cancelled} cancelled: {:?}", ttl.ops);
    assert_eq!(ttl.ops.lost, 0, "{:?}", ttl.ops);
    assert!(ttl.ops.failed >= cancelled, "{:?}", ttl.ops);
    assert!(
        ttl.invariants.violations.is_empty(),
        "{:?}",
        ttl.invariants.violations
    );
    // Without a TTL the same messages are delivered after the outage and run: nothing is
    // cancelled (the key is absent) and more pool work is done for the same requests.
    assert_eq!(none.ops.cancelled, None);
    assert_eq!(none.ops.submitted, ttl.ops.submitted, "paired seeds");
    assert!(
        none.pool.arrivals > ttl.pool.arrivals + cancelled / 2,
        "pool arrivals {} without a TTL, {} with",
        none.pool.arrivals,
        ttl.pool.arrivals
    );
}
