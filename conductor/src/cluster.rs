//! How a cluster of conductors shares the work: which conductor's queue an op goes to
//! (`routing`), and how ops on one container are kept apart (`ordering`).

use crate::proto::Route;
// The ordering keywords are defined next to the strategies they name, in their registry.
pub use crate::conductor::ordering::Ordering;
// A fixed, well-mixed hash: the ring must not depend on a process's random hasher seed.
use crate::retry::splitmix64;

crate::keyword_enum! {
    /// `cluster.routing`: which conductor an op goes to.
    pub enum Routing, "a routing" {
        /// Every op on the shared topic, consumed round-robin (Magnum 2015).
        RoundRobin = "round-robin",
        /// Each container's ops to the conductor that owns its host (Zun), no failover.
        ByHost = "by-host",
        /// A consistent-hash ring over the live conductors (tooz's partitioner).
        Affinity = "affinity",
    }
}

/// The conductor (index) that owns host `host` among `conductors` (`by-host`).
pub fn host_owner(host: u32, conductors: u32) -> u32 {
    host % conductors.max(1)
}

/// Points per member on the ring (tooz's default partitions).
const POINTS: u64 = 32;

/// The member owning `container` on a consistent-hash ring over `members` (each with
/// `POINTS` points): the first point clockwise of the container's hash. `None` without
/// members. Removing a member moves only the containers it owned.
pub fn ring_owner(members: &[u32], container: u64) -> Option<u32> {
    let h = splitmix64(container ^ 0x636F_6E74_6169_6E65);
    let mut best: Option<(u64, u32)> = None;
    let mut first: Option<(u64, u32)> = None;
    for &m in members {
        for k in 0..POINTS {
            let p = splitmix64((u64::from(m) << 8) ^ k ^ 0x6D65_6D62_6572_0000);
            if first.is_none_or(|(f, fm)| (p, m) < (f, fm)) {
                first = Some((p, m));
            }
            if p >= h && best.is_none_or(|(b, bm)| (p, m) < (b, bm)) {
                best = Some((p, m));
            }
        }
    }
    best.or(first).map(|(_, m)| m)
}

/// Where an op on `container` (placed on `host`) goes under `routing`, given the live members
/// (for `affinity`; every conductor when none is known to be alive).
pub fn route(
    routing: Routing,
    conductors: u32,
    members: &[u32],
    container: u64,
    host: u32,
) -> Route {
    match routing {
        Routing::RoundRobin => Route::Topic,
        Routing::ByHost => Route::Conductor(host_owner(host, conductors)),
        Routing::Affinity => {
            let all: Vec<u32>;
            let ring = if members.is_empty() {
                all = (0..conductors.max(1)).collect();
                &all
            } else {
                members
            };
            Route::Conductor(ring_owner(ring, container).unwrap_or(0))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ring_moves_only_the_departed_members_containers() {
        let all = [0, 1, 2, 3];
        let without = [0, 1, 3];
        let mut counts = [0u32; 4];
        for c in 0..4000u64 {
            let a = ring_owner(&all, c).unwrap();
            counts[a as usize] += 1;
            let b = ring_owner(&without, c).unwrap();
            if a != 2 {
                assert_eq!(a, b, "container {c} moved though its owner stayed");
            } else {
                assert_ne!(b, 2);
            }
        }
        // Spread: every member gets a fair share (32 points each: within a factor of 2).
        for n in counts {
            assert!((500..=1500).contains(&n), "{counts:?}");
        }
        assert_eq!(ring_owner(&[], 7), None);
    }

    #[test]
    fn routes() {
        assert_eq!(route(Routing::RoundRobin, 3, &[], 5, 2), Route::Topic);
        assert_eq!(route(Routing::ByHost, 3, &[], 5, 4), Route::Conductor(1));
        let r = route(Routing::Affinity, 3, &[], 5, 0);
        assert!(matches!(r, Route::Conductor(i) if i < 3));
    }
}
