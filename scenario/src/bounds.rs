//! The bounds of the scenario's integer keys that the real services' flags share: one home for
//! each, so `conductor store --containers N` and `workload.containers = N` accept the same
//! values (the parser checks a scenario against these, the real binary's flags too).

use std::ops::RangeInclusive;

/// The accepted values of one integer key, inclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bound {
    /// Smallest accepted value.
    pub lo: u32,
    /// Largest accepted value.
    pub hi: u32,
}

impl Bound {
    /// The range as clap's ranged parsers take it.
    pub fn range(self) -> RangeInclusive<i64> {
        i64::from(self.lo)..=i64::from(self.hi)
    }
}

/// `cluster.conductors`.
pub const CONDUCTORS: Bound = Bound { lo: 1, hi: 1000 };
/// `cluster.hosts`.
pub const HOSTS: Bound = Bound { lo: 1, hi: 1000 };
/// `cluster.rpc_workers`.
pub const RPC_WORKERS: Bound = Bound { lo: 1, hi: 100_000 };
/// `cluster.pool_workers`: a pool of no worker runs nothing.
pub const POOL_WORKERS: Bound = Bound { lo: 1, hi: 100_000 };
/// `workload.containers` (pre-created containers; the real services' `--containers` also take
/// 0, none).
pub const CONTAINERS: Bound = Bound {
    lo: 1,
    hi: 10_000_000,
};
/// `cluster.etcd_members`: the simulated etcd cluster's size (etcd advises at most 7; 9 leaves
/// room for an experiment).
pub const ETCD_MEMBERS: Bound = Bound { lo: 1, hi: 9 };

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_are_ranges() {
        for b in [CONDUCTORS, HOSTS, RPC_WORKERS, POOL_WORKERS, CONTAINERS] {
            assert!(b.lo <= b.hi && b.range().contains(&i64::from(b.hi)));
            assert!(!b.range().contains(&(i64::from(b.hi) + 1)));
        }
    }
}
