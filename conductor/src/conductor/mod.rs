//! The conductor (magnum-conductor / zun-compute): `rpc_workers` RPC slots take deliveries from
//! the bus; async ops go to an executor pool of `pool_workers`, and when it is exhausted the
//! `overflow` policy decides (the seed's Phase 0); blocking ops are answered inline on the slot.
//!
//! One concept per file:
//!
//! | file | what |
//! |---|---|
//! | `config` | the settings, [`ConductorConfig`] |
//! | `slots` | the RPC slots: bus deliveries, the backlog, acknowledgements, blocking ops |
//! | `pool` | the executor pool and its [`Overflow`] policy |
//! | `execute` | an async op's run under the strategy, and what its [`Outcome`] asks for |
//! | [`context`] | what a strategy may call on the [`Conductor`]: [`Take`], the host call, the retry budget, the recorder |
//! | [`ordering`] | the [`Strategy`] trait and the registry of strategies, one file each |
//! | [`lock`] | the locks a strategy may hold: in-process fair and unfair, the store's lease |
//! | `recovery` | restart recovery ([`RecoveryPolicy`]) |
//! | `reconciler` | the periodic sync of records with the hosts' truth |
//! | `sweeper` | the orphan sweeper |
//! | `membership` | the membership lease and the affinity ring's members |
//! | `links` | the host connections, made on demand ([`HostLinks`]) |

mod config;
pub mod context;
mod execute;
mod links;
pub mod lock;
mod membership;
pub mod ordering;
mod pool;
mod reconciler;
mod recovery;
mod slots;
mod sweeper;

pub use config::ConductorConfig;
pub use context::Take;
pub use links::HostLinks;
pub use membership::ring_members;
pub use ordering::{Attempt, Ordering, Outcome, RunFuture, Strategy, StrategyFactory};
pub use pool::Overflow;
pub use recovery::RecoveryPolicy;

use crate::cluster;
use crate::net::Link;
use crate::proto::Refusal;
use crate::recorder::SharedRecorder;
use crate::retry::RetryBudget;
use crate::rpc::Redial;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A running conductor: its settings, its connections, its RPC slots and pool, and the
/// strategy it runs ops under. Strategies see it as their context: its public methods
/// ([`context`]) are what a strategy may call.
pub struct Conductor {
    cfg: ConductorConfig,
    rec: SharedRecorder,
    /// The op path's store connection.
    store: Redial,
    /// Background work's store connection (heartbeats, scans, the reconciler): its traffic
    /// does not queue behind, or reorder, the ops' own.
    coord: Redial,
    /// The ops' host connections, each made when an op first calls its host.
    hosts: HostLinks,
    /// The reconciler's host connections, apart from the ops' for the same reason.
    scan_hosts: HostLinks,
    bus: Mutex<Option<Link>>,
    slots: Mutex<slots::Slots>,
    pool: Mutex<pool::Pool>,
    budget: Mutex<RetryBudget>,
    /// Ops a worker of this conductor is taking or has begun and not finished: a second
    /// delivery of one of them must not take it again when a `Begin` answer was lost
    /// ([`Conductor::take`]). An entry left by a path that never finishes only disables that
    /// retake, the behaviour without it.
    taking: Mutex<std::collections::BTreeSet<u64>>,
    /// This run's instance: in-process state such as a lock table dies with the process.
    strategy: Box<dyn Strategy>,
}

/// Runs a conductor: restart recovery first (Zun's `init_containers`), then it consumes the bus
/// for ever, dialling it again whenever it is lost; membership, the reconciler and the orphan
/// sweeper run beside it. Returns only when the bus refuses it (another live conductor has
/// its index): a misconfiguration, never silently shadowed.
pub async fn run(cfg: ConductorConfig, rec: SharedRecorder) -> Refusal {
    let strategy = match &cfg.strategy {
        Some(factory) => factory.build(),
        None => cfg.ordering.strategy(),
    };
    let me = Arc::new(Conductor {
        store: Redial::over(&cfg.net, cfg.ip, cfg.store, &cfg.other_stores),
        coord: Redial::over(&cfg.net, cfg.ip, cfg.store, &cfg.other_stores),
        hosts: HostLinks::new(&cfg.net, cfg.ip, &cfg.hosts),
        scan_hosts: HostLinks::new(&cfg.net, cfg.ip, &cfg.hosts),
        budget: Mutex::new(RetryBudget::new(cfg.budget_ratio, cfg.budget_min_per_s)),
        cfg,
        rec,
        bus: Mutex::new(None),
        slots: Mutex::default(),
        pool: Mutex::default(),
        taking: Mutex::default(),
        strategy,
    });
    // The ops' own connections first: each connection draws its latencies from a stream keyed
    // by its rank between its two ends, so dialling them before any background connection
    // keeps an op's latencies the same whatever background work is configured. Of the hosts,
    // those this conductor owns: the only ones a by-host conductor calls, and the only ones
    // the reconciler scans (its connection to a host then always comes after the ops'). Any
    // other host is dialled when an op first calls it, and kept.
    let _ = me.store.get().await;
    for h in 0..me.hosts.len() {
        if cluster::host_owner(h as u32, me.cfg.conductors) == me.cfg.index {
            if let Some(link) = me.hosts.get(h) {
                let _ = link.get().await;
            }
        }
    }
    if me.cfg.membership {
        tokio::spawn(me.clone().heartbeat());
    }
    if me.cfg.recovery == RecoveryPolicy::Zun {
        me.recover().await;
    }
    if !me.cfg.reconcile_interval.is_zero() {
        tokio::spawn(me.clone().reconciler());
    }
    if !me.cfg.orphan_after.is_zero() {
        tokio::spawn(me.clone().sweeper());
    }
    me.consume().await
}

/// A duration in whole µs, saturating (the wire's unit for leases and delays).
fn micros(d: Duration) -> u64 {
    d.as_micros().min(u128::from(u64::MAX)) as u64
}
