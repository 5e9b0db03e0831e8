//! The answer to the thread, pinned: which invariants each design breaks, and that the design
//! the project recommends breaks none — under random partitions and kills of the conductors,
//! the bus and the store.

use scenario::{self, Node, Scenario};
use sim::run::run_seeds;
use std::collections::BTreeSet;
use tests::workspace_root;

fn load(name: &str, sets: &[&str]) -> Scenario {
    let path = workspace_root().join("scenarios").join(name);
    let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
    let scn = scenario::load(&path, &sets).unwrap_or_else(|e| panic!("{name}: {e}"));
    scenario::check_supported(&scn, name).unwrap_or_else(|e| panic!("{name}: {e}"));
    scn
}

/// The invariants each seed of `first .. first + n` broke, in seed order.
fn broken(scn: &Scenario, first: u64, n: u64) -> Vec<BTreeSet<String>> {
    run_seeds(scn, first, n, 2)
        .unwrap_or_else(|e| panic!("{}: {e}", scn.name))
        .iter()
        .map(|m| {
            m.violations_by_invariant()
                .into_iter()
                .filter(|(_, n)| *n > 0)
                .map(|(k, _)| k)
                .collect()
        })
        .collect()
}

/// Each known-bad design breaks exactly what its scenario says it breaks, on every seed tried.
#[test]
fn each_known_bad_design_breaks_what_it_is_known_to_break() {
    let cases = [
        "thread-phase0-local-map.toml",
        "thread-one-conductor.toml",
        "thread-distributed-lock.toml",
        "thread-state-check.toml",
        "regressions/stuck-creating.toml",
        "regressions/unfair-lock.toml",
        "regressions/delete-during-create.toml",
        "regressions/lost-cast.toml",
        "races-no-ordering.toml",
    ];
    for name in cases {
        let scn = load(name, &[]);
        let expect: BTreeSet<String> = scn
            .checks
            .expect
            .iter()
            .map(|i| i.name().to_string())
            .collect();
        assert!(
            !expect.is_empty(),
            "{name}: a known-bad design names what it breaks"
        );
        for (i, got) in broken(&scn, 1, 4).into_iter().enumerate() {
            assert_eq!(got, expect, "{name}, seed {}", i + 1);
        }
    }
}

/// The two designs the thread started from — no ordering, and Zun's in-process lock — with
/// round-robin routing and no state validation reach a host with an op before its container's
/// create completed there, within 20 seeds.
#[test]
fn no_ordering_and_local_lock_show_create_before_use_within_20_seeds() {
    for ordering in ["none", "local-lock"] {
        let set = format!("cluster.ordering=\"{ordering}\"");
        let scn = load(
            "thread-phase0-local-map.toml",
            &[
                &set,
                "cluster.routing=\"round-robin\"",
                "api.validate_state=false",
                "checks.expect=[]",
            ],
        );
        let first =
            (1..=20u64).find(|&seed| broken(&scn, seed, 1)[0].contains("create-before-use"));
        assert!(
            first.is_some(),
            "{ordering}: no create-before-use in 20 seeds"
        );
    }
}

/// The reference configuration holds every invariant, safety and liveness, on 200 seeds of
/// random partitions and kills of conductors, the bus and the store.
#[test]
fn the_reference_holds_every_invariant_under_faults() {
    let scn = load("reference.toml", &[]);
    assert_eq!(scn.checks.invariants.len(), 9, "every invariant is judged");
    assert!(scn.checks.expect.is_empty());
    let nemesis = scn.nemesis.as_ref().expect("random faults");
    for t in [Node::Bus, Node::Store, Node::Conductor(0)] {
        assert!(nemesis.targets.contains(&t), "{t} is a target");
    }
    let metrics = run_seeds(&scn, 1, 200, 2).expect("the reference runs");
    let mut faults = 0;
    for m in &metrics {
        assert!(
            m.violations.is_empty(),
            "seed {}: {:?}",
            m.seed,
            m.violations
        );
        faults += m.faults.len();
        assert!(m.completed > 0, "seed {}: nothing completed", m.seed);
    }
    // The faults did happen: about 20 per seed.
    assert!(faults > 200 * 10, "only {faults} faults over 200 seeds");
}

/// The fair lock with an op delivered twice (the orphan sweeper dispatches an op again while
/// its first delivery waits in its container's line, and the pool rejects some copies): each
/// delivery keeps its own place and its own wake-up, so no worker runs without the lock. The
/// old line let the second wait replace the first's wake-up (that worker ran unlocked:
/// `exclusive` broke on each of these seeds, `no-use-after-delete` on two) and dropped both
/// places when one copy was rejected. `create-before-use` is what `reject` itself breaks (a
/// rejected create, then the user's next op), whatever the lock.
#[test]
fn the_fair_lock_keeps_each_delivery_of_an_op_apart() {
    let scn = load(
        "matrix/calm.toml",
        &[
            "cluster.ordering=\"local-lock-fair\"",
            "cluster.routing=\"by-host\"",
            "cluster.orphan_after=\"5s\"",
            "cluster.pool_workers=3",
            "cluster.overflow=\"reject\"",
        ],
    );
    for (i, got) in broken(&scn, 1, 3).into_iter().enumerate() {
        let unexpected: Vec<&String> = got.iter().filter(|k| *k != "create-before-use").collect();
        assert!(unexpected.is_empty(), "seed {}: {unexpected:?}", i + 1);
    }
}

/// Seed 76 of the reference on etcd: the store, isolated, closed conductor-1's connection when
/// its engine ran out of patience, dropping the answer to a `Begin` it had applied (its token
/// drawn just before the isolation): asked again, the store said Busy, and the op stayed
/// Executing under a live conductor that no sweeper takes back. Every invariant holds now.
#[test]
fn a_begin_whose_answer_was_lost_is_taken_again_by_its_owner() {
    let scn = load("reference.toml", &["cluster.coordination=\"etcd\""]);
    let got = broken(&scn, 76, 1);
    assert_eq!(got, vec![BTreeSet::new()], "seed 76 on etcd");
}

/// The reference configuration on the simulated etcd (`cluster.coordination = "etcd"`), with
/// the etcd members among the nemesis's targets (kills, partitions, isolations: a leader lost,
/// quorum lost at times) as well as the conductors, the bus and the store: no safety invariant
/// breaks, and ops still complete. (Liveness is not pinned here; see docs/design-matrix.md,
/// "On etcd".)
#[test]
fn the_reference_keeps_safety_on_etcd_under_faults_of_its_members() {
    let scn = load(
        "reference.toml",
        &[
            "cluster.coordination=\"etcd\"",
            "nemesis.targets=[\"conductor-1\", \"conductor-2\", \"conductor-3\", \"bus\", \"store\", \"etcd-1\", \"etcd-2\", \"etcd-3\"]",
        ],
    );
    let safety: BTreeSet<String> = scn
        .checks
        .invariants
        .iter()
        .filter(|i| i.kind() == checker::Kind::Safety)
        .map(|i| i.name().to_string())
        .collect();
    assert!(safety.len() >= 5, "{safety:?}");
    let metrics = run_seeds(&scn, 1, 20, 2).expect("the reference runs on etcd");
    let mut etcd_faults = 0;
    for m in &metrics {
        let broken: Vec<_> = m
            .violations
            .iter()
            .filter(|v| safety.contains(v["invariant"].as_str().unwrap_or("")))
            .collect();
        assert!(broken.is_empty(), "seed {}: {broken:?}", m.seed);
        assert!(m.completed > 0, "seed {}: nothing completed", m.seed);
        etcd_faults += m
            .faults
            .iter()
            .filter(|f| f.to_string().contains("etcd-"))
            .count();
    }
    assert!(
        etcd_faults > 20,
        "only {etcd_faults} faults hit etcd members"
    );
}
