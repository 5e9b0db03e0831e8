//! A conductor's settings: what the scenario (or the real binary's flags) configures.

use super::ordering::{Ordering, StrategyFactory};
use super::pool::Overflow;
use super::recovery::RecoveryPolicy;
use crate::cluster::Routing;
use crate::net::Net;
use crate::retry::RetryPolicy;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

/// A conductor's settings.
#[derive(Debug, Clone)]
pub struct ConductorConfig {
    /// Its index (conductor-N has index N−1).
    pub index: u32,
    /// How many conductors the cluster has.
    pub conductors: u32,
    /// RPC slots taking deliveries from the bus.
    pub rpc_workers: u32,
    /// Executor pool workers.
    pub pool_workers: u32,
    /// Policy on pool exhaustion.
    pub overflow: Overflow,
    /// How ops reach conductors (where an op goes back to when it is re-queued).
    pub routing: Routing,
    /// How ops on one container are kept apart: the registered strategy of that name runs,
    /// unless `strategy` overrides it.
    pub ordering: Ordering,
    /// A strategy to run instead of the one `ordering` names (a strategy under test, defined
    /// outside this crate); `ordering` still names the configuration in reports.
    pub strategy: Option<StrategyFactory>,
    /// Lease of a distributed lock and of membership.
    pub lease_ttl: Duration,
    /// Restart recovery of the ops it owned.
    pub recovery: RecoveryPolicy,
    /// Period of the reconciler (zero: off).
    pub reconcile_interval: Duration,
    /// Age after which an op no live conductor owns is dispatched again (zero: off).
    pub orphan_after: Duration,
    /// Keep a membership lease in the store (affinity routing needs to know who is alive).
    pub membership: bool,
    /// `state-check`'s re-queue delays and attempts; the lock's polling.
    pub retry: RetryPolicy,
    /// Retry budget: ratio of retries to first attempts (0: none).
    pub budget_ratio: f64,
    /// Retry budget: retries per second always allowed.
    pub budget_min_per_s: f64,
    /// The bus.
    pub bus: SocketAddr,
    /// The store.
    pub store: SocketAddr,
    /// Further store processes serving the same deployment (one primary at a time), dialled
    /// in turn when `store` cannot be reached; empty for one store.
    pub other_stores: Vec<SocketAddr>,
    /// The hosts, by index (shared: every conductor of a large cluster holds the list).
    pub hosts: Arc<[SocketAddr]>,
    /// The network.
    pub net: Net,
    /// This node's address.
    pub ip: IpAddr,
}

impl ConductorConfig {
    /// A lone conductor as the foundation ran it: no ordering, no recovery, no background work.
    #[allow(clippy::too_many_arguments)]
    pub fn single(
        rpc_workers: u32,
        pool_workers: u32,
        overflow: Overflow,
        bus: SocketAddr,
        store: SocketAddr,
        hosts: Vec<SocketAddr>,
        net: Net,
        ip: IpAddr,
    ) -> Self {
        ConductorConfig {
            index: 0,
            conductors: 1,
            rpc_workers,
            pool_workers,
            overflow,
            routing: Routing::RoundRobin,
            ordering: Ordering::None,
            strategy: None,
            lease_ttl: Duration::from_secs(10),
            recovery: RecoveryPolicy::None,
            reconcile_interval: Duration::ZERO,
            orphan_after: Duration::ZERO,
            membership: false,
            retry: RetryPolicy::NEVER,
            budget_ratio: 0.0,
            budget_min_per_s: 0.0,
            bus,
            store,
            other_stores: Vec::new(),
            hosts: hosts.into(),
            net,
            ip,
        }
    }
}
