//! Schedule seeds (`[simulation] schedule_seed`, `--schedule-seed`): the madsim runtime's seed,
//! which decides only the scheduler's choices (which ready task runs next, where two events
//! fall at the same instant); the workload's, the network's, the host model's and the faults'
//! streams stay keyed by the run's seed. A reduction that shifts the interleaving can make a
//! seed stop failing for reasons that have nothing to do with the reduction: `shrink` then
//! tries a few other schedule seeds, and the regression corpus judges each kept reproduction
//! over a few ("breaks on at least one of K"), so a change of timing elsewhere does not flip it.

/// The schedule seed a run of `seed` uses: the scenario's, else the seed itself (what every run
/// did before schedule seeds existed).
pub fn effective(seed: u64, schedule_seed: Option<u64>) -> u64 {
    schedule_seed.unwrap_or(seed)
}

/// The `k`-th alternative to schedule seed `base` (k ≥ 1; k = 0 is `base`): the next ones, so
/// that a reproduction's schedule seed stays short to read (the runtime mixes its seed itself:
/// neighbouring seeds give unrelated schedules). Kept below 2^63: a scenario key is a TOML
/// integer.
pub fn alternative(base: u64, k: u64) -> u64 {
    base.wrapping_add(k) % (i64::MAX as u64)
}

/// The `k` schedule seeds a reproduction is judged over: `base` then `k − 1` alternatives.
pub fn judged_over(base: u64, k: u64) -> Vec<u64> {
    (0..k.max(1)).map(|i| alternative(base, i)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alternatives_differ_and_fit_a_toml_integer() {
        let v = judged_over(7, 5);
        assert_eq!(v[0], 7);
        let set: std::collections::BTreeSet<u64> = v.iter().copied().collect();
        assert_eq!(set.len(), 5);
        assert!(v.iter().all(|s| *s <= i64::MAX as u64));
        assert_eq!(effective(3, None), 3);
        assert_eq!(effective(3, Some(9)), 9);
    }
}
