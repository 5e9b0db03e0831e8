//! `shrink` pinned on two failing seeds of bundled scenarios: each reduces to a standalone
//! scenario (no nemesis) that still breaks the same invariant with at most 4 faults and a load
//! phase at most half the original's.

use checker::Invariant;
use sim::shrink::{shrink, trial, Options};
use tests::workspace_root;

fn pin(file: &str, sets: &[&str], seed: u64, invariant: Invariant) {
    let path = workspace_root().join("scenarios").join(file);
    let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
    let scn = scenario::load(&path, &sets).expect("a bundled scenario loads");
    let opts = Options {
        seed,
        invariant: Some(invariant),
        max_runs: 300,
        jobs: 2,
        alternatives: 2,
        base_dir: path.parent().map(|p| p.to_path_buf()),
    };
    let s = shrink(&scn, &opts, &|_, _| {}).expect("the seed fails and shrinks");
    let what = format!(
        "{file} seed {seed} {invariant}: {:?} -> {:?}",
        s.before, s.after
    );
    assert_eq!(s.invariant, invariant);
    assert!(s.scenario.nemesis.is_none(), "{what}");
    assert!(s.after.faults <= 4, "{what}");
    assert!(s.after.load * 2 <= s.before.load, "{what}");
    assert!(s.after.ops < s.before.ops, "{what}");
    // The reduced scenario, run on its own, breaks the invariant.
    let (breaks, _, _) = trial(&s.scenario, seed, invariant).expect("the run completes");
    assert!(breaks, "{what}");
}

#[test]
fn thread_state_check_overlap_shrinks_to_one_kill() {
    pin("thread-state-check.toml", &[], 1, Invariant::Exclusive);
}

#[test]
fn kills_with_a_fair_lock_by_host_overlap_shrinks_to_one_kill() {
    pin(
        "matrix/kills.toml",
        &[
            "cluster.ordering=local-lock-fair",
            "cluster.routing=by-host",
        ],
        1,
        Invariant::Exclusive,
    );
}
