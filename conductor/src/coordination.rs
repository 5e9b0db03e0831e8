//! Where the store keeps its coordination state: in itself (the default: its own maps,
//! journalled), or in an outside engine (etcd, in real mode with `conductor store --etcd`). An
//! outside engine holds locks, leases, membership and fencing tokens, so that a store process
//! holds none of them: it can die, and another can serve the same deployment, without a lock
//! or a member being forgotten.
//!
//! The store's connection loop asks the engine first; what the engine does not take (the scans
//! of op records, failing an op) the store applies to its records as before.

use crate::proto::{CoordCmd, StoreResp};
use std::collections::BTreeSet;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;
use tokio::time::Instant;

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

/// An etcd-like engine: leased keys and one cluster-wide revision (real etcd in
/// `real/src/etcd.rs`, the simulator's etcd model in `sim/src/etcd.rs`). Each engine says how
/// one attempt of a command is made with its calls; how a command is dispatched, and retried
/// for [`KvEngine::patience`] when the engine does not answer, is this one blanket
/// [`Coordination`] implementation, so that the simulated engine cannot drift from the real one.
pub trait KvEngine: Send + Sync {
    /// Why one attempt failed (no leader, no member reachable, a lapsed lease).
    type Error: std::fmt::Display + Send;

    /// How long a command is retried before the store gives up on it (and closes the
    /// connection that asked).
    fn patience(&self) -> Duration;

    /// One attempt at container `container`'s lock for conductor `owner`: a key created only if
    /// absent, on a lease of `ttl_us`; `Locked` with its creation revision as the fencing token,
    /// or `Held` naming the holder.
    fn lock_container(
        &self,
        container: u64,
        owner: u32,
        ttl_us: u64,
    ) -> impl Future<Output = Result<StoreResp, Self::Error>> + Send;

    /// One attempt at renewing the lock granted under `token`: `Ok`, or `Stale` when the lock is
    /// gone or another's.
    fn renew(
        &self,
        container: u64,
        token: u64,
    ) -> impl Future<Output = Result<StoreResp, Self::Error>> + Send;

    /// One attempt at releasing the lock granted under `token` (and its lease); `Ok` whether or
    /// not it was still held.
    fn unlock(
        &self,
        container: u64,
        token: u64,
    ) -> impl Future<Output = Result<StoreResp, Self::Error>> + Send;

    /// One attempt at member `member`'s heartbeat: its leased key kept alive, or the member
    /// (re)joined under a fresh lease of `ttl_us`.
    fn heartbeat(
        &self,
        member: u32,
        ttl_us: u64,
    ) -> impl Future<Output = Result<StoreResp, Self::Error>> + Send;

    /// One attempt at reading membership: the members that ever joined and those alive now.
    fn members(
        &self,
    ) -> impl Future<Output = Result<(BTreeSet<u32>, BTreeSet<u32>), Self::Error>> + Send;

    /// One attempt at a fresh revision (a write's), as an op's fencing token.
    fn fresh_token(&self) -> impl Future<Output = Result<u64, Self::Error>> + Send;

    /// An attempt of `what` made at `tried` failed with `e` (the real engine reports outages).
    fn failed(&self, _what: &str, _e: &Self::Error, _tried: Instant) {}

    /// An attempt succeeded (the real engine reports an outage's end).
    fn answered(&self) {}
}

/// The first member at or after `from` that joined and is not alive: `Member`, or `NotFound`.
pub fn first_lapsed(joined: &BTreeSet<u32>, alive: &BTreeSet<u32>, from: u32) -> StoreResp {
    joined
        .range(from..)
        .find(|m| !alive.contains(m))
        .map_or(StoreResp::NotFound, |&index| StoreResp::Member { index })
}

/// A lease's TTL in whole seconds, rounded up and at least one (etcd's leases are in seconds;
/// etcd itself raises a TTL below its minimum, about 1.5 × the election timeout).
pub fn lease_ttl_s(ttl_us: u64) -> u64 {
    ttl_us.div_ceil(1_000_000).max(1)
}

/// Runs `attempt` until it succeeds or the engine's patience has passed, backing off
/// 10 ms → 500 ms.
async fn retrying<E, T, F, Fut>(
    engine: &E,
    what: &str,
    mut attempt: F,
) -> Result<T, EngineUnavailable>
where
    E: KvEngine,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E::Error>>,
{
    let start = Instant::now();
    let mut backoff = Duration::from_millis(10);
    loop {
        // An outage starts when the first attempt that failed was made (a call to a member
        // that lost its leader waits up to the request timeout before it fails).
        let tried = Instant::now();
        match attempt().await {
            Ok(v) => {
                engine.answered();
                return Ok(v);
            }
            Err(e) => {
                engine.failed(what, &e, tried);
                if start.elapsed() >= engine.patience() {
                    return Err(EngineUnavailable(format!("{what}: {e}")));
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_millis(500));
            }
        }
    }
}

impl<E: KvEngine> Coordination for E {
    fn handles(&self, cmd: &CoordCmd) -> bool {
        matches!(
            cmd,
            CoordCmd::Lock { .. }
                | CoordCmd::Renew { .. }
                | CoordCmd::Unlock { .. }
                | CoordCmd::Heartbeat { .. }
                | CoordCmd::Lapsed { .. }
        )
    }

    fn coordinate(&self, cmd: CoordCmd) -> Answer<'_, Result<StoreResp, EngineUnavailable>> {
        Box::pin(async move {
            match cmd {
                CoordCmd::Lock {
                    container,
                    owner,
                    ttl_us,
                } => {
                    retrying(self, "lock", || {
                        self.lock_container(container, owner, ttl_us)
                    })
                    .await
                }
                CoordCmd::Renew {
                    container, token, ..
                } => retrying(self, "renew", || self.renew(container, token)).await,
                CoordCmd::Unlock { container, token } => {
                    retrying(self, "unlock", || self.unlock(container, token)).await
                }
                CoordCmd::Heartbeat { member, ttl_us } => {
                    retrying(self, "heartbeat", || self.heartbeat(member, ttl_us)).await
                }
                CoordCmd::Lapsed { from } => {
                    let (joined, alive) = retrying(self, "members", || self.members()).await?;
                    Ok(first_lapsed(&joined, &alive, from))
                }
                other => Err(EngineUnavailable(format!(
                    "not etcd's to answer: {other:?}"
                ))),
            }
        })
    }

    fn token(&self) -> Answer<'_, Result<u64, EngineUnavailable>> {
        Box::pin(async move { retrying(self, "token", || self.fresh_token()).await })
    }
}
