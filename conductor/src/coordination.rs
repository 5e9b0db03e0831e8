//! Where the store keeps its coordination state: in itself (the default: its own maps,
//! journalled), or in an outside engine (etcd, in real mode with `conductor store --etcd`). An
//! outside engine holds locks, leases, membership and fencing tokens, so that a store process
//! holds none of them: it can die, and another can serve the same deployment, without a lock
//! or a member being forgotten.
//!
//! The store's connection loop asks the engine first; what the engine does not take (the scans
//! of op records, failing an op) the store applies to its records as before.

use crate::proto::{CoordCmd, StoreResp};
use std::future::Future;
use std::pin::Pin;

/// A future an engine answers with, boxed so the trait stays object-safe.
pub type Answer<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The engine could not answer (no quorum, no member reachable): the store retries, then
/// closes the connection so that its peer asks again.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("coordination engine unavailable: {0}")]
pub struct EngineUnavailable(pub String);

/// An outside coordination engine.
pub trait Coordination: Send + Sync {
    /// Whether the engine, rather than the store's own state, answers `cmd`.
    fn handles(&self, cmd: &CoordCmd) -> bool;

    /// Answers a command it [`Coordination::handles`], as the store's own state would
    /// (`Locked`/`Held`, `Ok`/`Stale`, `Member`/`NotFound`).
    fn coordinate(&self, cmd: CoordCmd) -> Answer<'_, Result<StoreResp, EngineUnavailable>>;

    /// A fresh fencing token for an op a conductor begins (`state-check`): larger than every
    /// token the engine gave before, lock tokens included.
    fn token(&self) -> Answer<'_, Result<u64, EngineUnavailable>>;
}

crate::keyword_enum! {
    /// `cluster.coordination`: what keeps the deployment's locks, leases, membership and
    /// fencing tokens.
    pub enum Engine, "a coordination engine" {
        /// The store process itself (its maps, journalled): what a store restart does not
        /// journal, it forgets.
        Store = "store",
        /// An etcd cluster beside the store (`conductor store --etcd`; in the simulator, a
        /// simulated etcd cluster of its own nodes): locks are leased keys, tokens revisions.
        Etcd = "etcd",
    }
}

impl Engine {
    /// Whether this is the store's own coordination (the default).
    pub fn is_store(&self) -> bool {
        *self == Engine::Store
    }
}
