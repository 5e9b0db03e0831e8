//! Runs the seeds of a scenario in parallel — each seed on a fresh thread with its own runtime —
//! and pools them into a report.

use crate::world::{run_seed, RunError};
use checker::Invariant;
use reports::{build_report, Report, SeedMetrics};
use scenario::{Arrival, Overflow, Scenario};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// How many seeds to run at once by default: the machine's cores.
pub fn default_jobs() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Runs seeds `first .. first + n` of `scn`, at most `jobs` at a time, and returns their metrics
/// in seed order.
pub fn run_seeds(
    scn: &Scenario,
    first: u64,
    n: u64,
    jobs: usize,
) -> Result<Vec<SeedMetrics>, RunError> {
    run_seeds_with(scn, first, n, jobs, &|| {})
}

/// [`run_seeds`], calling `done` as each seed finishes (from the thread that ran it), for
/// progress reporting.
pub fn run_seeds_with(
    scn: &Scenario,
    first: u64,
    n: u64,
    jobs: usize,
    done: &(dyn Fn() + Sync),
) -> Result<Vec<SeedMetrics>, RunError> {
    map_seeds(scn, first, n, jobs, &|_, r| r, done)
        .into_iter()
        .collect()
}

/// Runs seeds `first .. first + n` of `scn`, at most `jobs` at a time, hands each seed's result
/// to `map` as soon as it is done (on the thread that ran it, so that only what `map` keeps
/// stays in memory — `explore` keeps the violations of thousands of seeds, not their
/// histograms), calls `done`, and returns what `map` made, in seed order.
pub fn map_seeds<T: Send>(
    scn: &Scenario,
    first: u64,
    n: u64,
    jobs: usize,
    map: &(dyn Fn(u64, Result<SeedMetrics, RunError>) -> T + Sync),
    done: &(dyn Fn() + Sync),
) -> Vec<T> {
    let seed_of = |i: usize| first.wrapping_add(i as u64);
    let job = |i: usize| {
        let seed = seed_of(i);
        (
            map(seed, on_fresh_thread(seed, || run_seed(scn, seed))),
            false,
        )
    };
    pool(n as usize, jobs, &job, done)
        .into_iter()
        .enumerate()
        .map(|(i, r)| {
            // Every index below `n` is taken by exactly one worker, which stores its result
            // unless its thread died; then the seed counts as aborted.
            r.unwrap_or_else(|| {
                let seed = seed_of(i);
                map(
                    seed,
                    Err(RunError::Aborted {
                        seed,
                        message: "the seed did not run".into(),
                    }),
                )
            })
        })
        .collect()
}

/// [`map_seeds`] that may stop early: after each seed, `stop(result)` (called on the thread
/// that ran it) says whether to stop handing out seeds. Seeds are handed out in order and every
/// seed handed out finishes, so what comes back is always a contiguous prefix of the seeds, in
/// seed order.
pub fn map_seeds_until<T: Send>(
    scn: &Scenario,
    first: u64,
    n: u64,
    jobs: usize,
    map: &(dyn Fn(u64, Result<SeedMetrics, RunError>) -> T + Sync),
    stop: &(dyn Fn(&T) -> bool + Sync),
    done: &(dyn Fn() + Sync),
) -> Vec<T> {
    let job = |i: usize| {
        let seed = first.wrapping_add(i as u64);
        let out = map(seed, on_fresh_thread(seed, || run_seed(scn, seed)));
        let halt = stop(&out);
        (out, halt)
    };
    let results = pool(n as usize, jobs, &job, done);
    // Seeds after the last one that ran were never handed out; a hole before it is a seed
    // whose worker died, aborted as in `map_seeds`.
    let ran = results
        .iter()
        .rposition(Option::is_some)
        .map_or(0, |i| i + 1);
    results
        .into_iter()
        .take(ran)
        .enumerate()
        .map(|(i, r)| {
            r.unwrap_or_else(|| {
                let seed = first.wrapping_add(i as u64);
                map(
                    seed,
                    Err(RunError::Aborted {
                        seed,
                        message: "the seed did not run".into(),
                    }),
                )
            })
        })
        .collect()
}

/// Runs one seed with `run` on a fresh thread — madsim's per-thread state and the determinism
/// of std collections need one per seed — and turns a panic of that thread into an aborted run.
pub fn on_fresh_thread(
    seed: u64,
    run: impl FnOnce() -> Result<SeedMetrics, RunError> + Send,
) -> Result<SeedMetrics, RunError> {
    std::thread::scope(|s| {
        s.spawn(run).join().unwrap_or_else(|_| {
            Err(RunError::Aborted {
                seed,
                message: "the seed's thread panicked".into(),
            })
        })
    })
}

/// Runs jobs `0 .. n`, at most `jobs` at a time, on worker threads; `job(i)` gives the job's
/// result and whether to stop handing out the jobs not yet started. Returns each job's result
/// by index (`None`: never run); `done` is called as each job finishes.
pub(crate) fn pool<T: Send>(
    n: usize,
    jobs: usize,
    job: &(dyn Fn(usize) -> (T, bool) + Sync),
    done: &(dyn Fn() + Sync),
) -> Vec<Option<T>> {
    let results: Mutex<Vec<Option<T>>> = Mutex::new((0..n).map(|_| None).collect());
    let next = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..jobs.clamp(1, n.max(1)) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    break;
                }
                let (out, stop) = job(i);
                results.lock().unwrap_or_else(|e| e.into_inner())[i] = Some(out);
                done();
                if stop {
                    next.store(n, Ordering::Relaxed);
                }
            });
        }
    });
    results.into_inner().unwrap_or_else(|e| e.into_inner())
}

/// The pool's analytic model, when it applies: Poisson arrivals of the `ops` model, one
/// conductor, no faults, no client retries (a retry is an arrival that depends on the pool's
/// state), and an overflow that sends excess work elsewhere (Erlang's loss system). Returns the
/// pool size and the arrival rate of async ops at the pool.
pub fn erlang_model(scn: &Scenario) -> Option<(u32, f64)> {
    let Arrival::Poisson { rate } = scn.workload.arrival else {
        return None;
    };
    let loss = matches!(
        scn.cluster.overflow,
        Overflow::CallerRuns | Overflow::Reject
    );
    if scn.cluster.conductors != 1
        || !loss
        || !scn.faults.is_empty()
        || scn.nemesis.is_some()
        || scn.api.validate_state
        || scn.workload.model != scenario::Model::Ops
        || !scn.client.retry_on.is_empty()
    {
        return None;
    }
    let total: f64 = scn.workload.mix.iter().map(|(_, w)| w).sum();
    let async_share: f64 = scn
        .workload
        .mix
        .iter()
        .filter(|(k, _)| !k.is_blocking())
        .map(|(_, w)| w)
        .sum::<f64>()
        / total;
    Some((scn.cluster.pool_workers, rate * async_share))
}

/// Pools seed metrics into the report of `scn`, judged against its `[checks] expect` and its
/// `[slo]`. The Erlang B reference is at the measured arrival rate at the pool, as a sweep's
/// rows have it; it is left out when the RPC slots filled up: caller-runs then throttles
/// arrivals and the loss model no longer applies (docs/queueing.md).
pub fn report(scn: &Scenario, first: u64, seeds: &[SeedMetrics], wall_s: f64) -> Report {
    let slots_filled = seeds.iter().any(|s| s.rpc_time_full_ratio() > 0.0);
    let slo = crate::sweep::slo_of(scn);
    // The report names the invariants as its JSON does.
    let names = |l: &[Invariant]| l.iter().map(|i| i.name().to_string()).collect::<Vec<_>>();
    let mut rep = build_report(
        &scn.name,
        first,
        seeds,
        &names(&scn.checks.invariants),
        &slo,
        erlang_model(scn)
            .filter(|_| !slots_filled)
            .map(|(workers, _)| workers),
        wall_s,
    );
    rep.expect(&names(&scn.checks.expect));
    if scn.client.cancel != scenario::Cancel::None {
        rep.ops.cancelled = Some(seeds.iter().map(|s| s.cancelled).sum());
    }
    // Seeds merged: each seed's trigger (a nemesis draws its own) joins the union.
    let trigger: Vec<reports::recovery::Window> = seeds
        .iter()
        .flat_map(|m| crate::compare::trigger(scn, m))
        .collect();
    let timeline = crate::sweep::merged_timeline(seeds);
    rep.judged(&crate::compare::judge(scn, &timeline, &trigger));
    rep
}

/// Runs every `(scenario, seed)` job, at most `jobs` at a time, each on a fresh thread, and
/// returns their metrics in job order; `done` is called as each job finishes. For commands
/// that run many configurations at once (a sweep's rows × seeds).
pub fn run_many(
    work: &[(&Scenario, u64)],
    jobs: usize,
    done: &(dyn Fn() + Sync),
) -> Result<Vec<SeedMetrics>, RunError> {
    let job = |i: usize| {
        let (scn, seed) = work[i];
        let r = on_fresh_thread(seed, || run_seed(scn, seed));
        // A failed run stops the handing out of work: the whole command fails anyway.
        let failed = r.is_err();
        (r, failed)
    };
    pool(work.len(), jobs, &job, done)
        .into_iter()
        .map(|r| r.unwrap_or_else(|| Err(RunError::Setup("a run was cancelled".into()))))
        .collect()
}
