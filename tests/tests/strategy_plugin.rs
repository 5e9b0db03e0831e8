//! An ordering strategy is a plug-in: strategies defined here, outside the conductor crate,
//! through its public `Strategy` trait and context API only, run in the simulator in place of
//! the scenario's `cluster.ordering`, and the checker judges what they do.
//!
//! The scenario is the thread's Phase 0 with ordering `none`, round-robin routing and no state
//! validation: it breaks `create-before-use` on the seed the test picks.

use conductor::conductor::lock::FairLocks;
use conductor::conductor::{Attempt, Conductor, RunFuture, Strategy, StrategyFactory, Take};
use conductor::proto::Task;
use reports::SeedMetrics;
use scenario::Scenario;
use sim::run::on_fresh_thread;
use sim::world::{run_seed_with_strategy, RunOptions};
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tests::workspace_root;

/// A strategy of the test's own, sound: the fair in-process lock around the store's state-check
/// take (a combination the registry does not have). The lock keeps this conductor's ops of a
/// container in delivery order; the state check keeps the cluster's.
#[derive(Debug)]
struct CheckedFairLock {
    locks: FairLocks,
    /// Ops run, shared by every conductor's instance: proof that this strategy ran.
    runs: Arc<AtomicU64>,
}

impl Strategy for CheckedFairLock {
    fn on_delivery(&self, task: &Task) {
        self.locks.join(task);
    }

    fn on_abandon(&self, task: &Task) {
        self.locks.leave(task);
    }

    fn run<'a>(&'a self, cx: &'a Conductor, task: &'a Task, attempt: Attempt) -> RunFuture<'a> {
        Box::pin(async move {
            self.runs.fetch_add(1, Ordering::Relaxed);
            let _held = self.locks.lock(cx, task).await;
            if task.attempt <= 1 {
                cx.deposit_retry_budget();
            }
            match cx.take(task, Take::StateChecked, attempt).await {
                Ok(token) => cx.complete(task, token).await,
                Err(outcome) => outcome,
            }
        })
    }
}

/// A strategy of the test's own, unsound on purpose: the same fair lock, but the take does not
/// wait for the store, so nothing orders two conductors' ops of one container.
#[derive(Debug)]
struct LockOnly {
    locks: FairLocks,
    runs: Arc<AtomicU64>,
}

impl Strategy for LockOnly {
    fn on_delivery(&self, task: &Task) {
        self.locks.join(task);
    }

    fn on_abandon(&self, task: &Task) {
        self.locks.leave(task);
    }

    fn run<'a>(&'a self, cx: &'a Conductor, task: &'a Task, attempt: Attempt) -> RunFuture<'a> {
        Box::pin(async move {
            self.runs.fetch_add(1, Ordering::Relaxed);
            let _held = self.locks.lock(cx, task).await;
            let token = match cx.take(task, Take::Unconfirmed, attempt).await {
                Ok(t) => t,
                Err(outcome) => return outcome,
            };
            let ok = cx.call_host(task, token).await.is_ok_and(|r| r.is_ok());
            cx.finish(task, ok).await
        })
    }
}

/// The built-in `state-check`, written again here from the public API alone.
#[derive(Debug, Default)]
struct StateCheckAgain;

impl Strategy for StateCheckAgain {
    fn run<'a>(&'a self, cx: &'a Conductor, task: &'a Task, attempt: Attempt) -> RunFuture<'a> {
        Box::pin(async move {
            if task.attempt <= 1 {
                cx.deposit_retry_budget();
            }
            match cx.take(task, Take::StateChecked, attempt).await {
                Ok(token) => cx.complete(task, token).await,
                Err(outcome) => outcome,
            }
        })
    }
}

/// Phase 0 under `ordering`, judged on every invariant.
fn phase0(ordering: &str) -> Scenario {
    let name = "thread-phase0-local-map.toml";
    let path = workspace_root().join("scenarios").join(name);
    let sets: Vec<String> = [
        format!("cluster.ordering=\"{ordering}\""),
        "cluster.routing=\"round-robin\"".into(),
        "api.validate_state=false".into(),
        "checks.expect=[]".into(),
    ]
    .into();
    let scn = scenario::load(&path, &sets).unwrap_or_else(|e| panic!("{name}: {e}"));
    scenario::check_supported(&scn, name).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert!(
        scn.checks.invariants.len() >= 9,
        "every invariant is judged"
    );
    scn
}

/// Runs one seed, under `strategy` if given.
fn run(scn: &Scenario, seed: u64, strategy: Option<StrategyFactory>) -> SeedMetrics {
    on_fresh_thread(seed, || {
        run_seed_with_strategy(scn, seed, RunOptions::default(), strategy)
    })
    .unwrap_or_else(|e| panic!("{}: {e}", scn.name))
}

fn broken(m: &SeedMetrics) -> BTreeSet<String> {
    m.violations_by_invariant()
        .into_iter()
        .filter(|(_, n)| *n > 0)
        .map(|(k, _)| k)
        .collect()
}

/// A factory whose instances count their runs in `runs`.
fn counted<S: Strategy>(
    runs: &Arc<AtomicU64>,
    make: impl Fn(Arc<AtomicU64>) -> S + Send + Sync + 'static,
) -> StrategyFactory {
    let runs = runs.clone();
    StrategyFactory::new(move || Box::new(make(runs.clone())))
}

/// The first seed on which `none` breaks create-before-use.
fn racy_seed() -> u64 {
    let none = phase0("none");
    (1..=10u64)
        .find(|&seed| broken(&run(&none, seed, None)).contains("create-before-use"))
        .expect("none breaks create-before-use within 10 seeds")
}

/// A sound strategy of the test's own, run where `none` is configured, breaks nothing on a
/// seed where `none` breaks create-before-use: the conductors ran it, not the scenario's.
#[test]
fn a_sound_plugin_holds_where_none_breaks() {
    let seed = racy_seed();
    let runs = Arc::new(AtomicU64::new(0));
    let factory = counted(&runs, |runs| CheckedFairLock {
        locks: FairLocks::default(),
        runs,
    });
    let m = run(&phase0("none"), seed, Some(factory));
    assert!(runs.load(Ordering::Relaxed) > 0, "the plug-in never ran");
    assert!(m.completed > 0, "seed {seed}: nothing completed");
    assert!(
        m.violations.is_empty(),
        "seed {seed}: the sound plug-in broke {:?}: {:?}",
        broken(&m),
        m.violations.first()
    );
}

/// An unsound strategy of the test's own, run where `state-check` is configured (which holds
/// on that seed), is caught by the checker breaking create-before-use.
#[test]
fn an_unsound_plugin_is_caught() {
    let seed = racy_seed();
    let checked = phase0("state-check");
    assert!(
        run(&checked, seed, None).violations.is_empty(),
        "seed {seed}: the built-in state-check holds"
    );
    let runs = Arc::new(AtomicU64::new(0));
    let factory = counted(&runs, |runs| LockOnly {
        locks: FairLocks::default(),
        runs,
    });
    let m = run(&checked, seed, Some(factory));
    assert!(runs.load(Ordering::Relaxed) > 0, "the plug-in never ran");
    assert!(
        broken(&m).contains("create-before-use"),
        "seed {seed}: the unsound plug-in got away with {:?}",
        broken(&m)
    );
}

/// The public API is enough to write a built-in strategy again: the copy makes the very same
/// run, message for message, as `ordering = "state-check"`.
#[test]
fn a_plugin_copy_of_state_check_runs_the_same() {
    let scn = phase0("state-check");
    let without_wall = |m: &SeedMetrics| {
        let mut v = serde_json::to_value(m).expect("metrics serialise");
        v.as_object_mut().expect("an object").remove("wall_s");
        v
    };
    for seed in 1..=2 {
        let builtin = run(&scn, seed, None);
        let copy = run(&scn, seed, Some(StrategyFactory::of::<StateCheckAgain>()));
        assert!(builtin.retry_attempts > 0, "seed {seed}: nothing re-queued");
        assert_eq!(
            without_wall(&builtin),
            without_wall(&copy),
            "seed {seed}: the copy ran differently"
        );
    }
}
