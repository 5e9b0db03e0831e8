//! The locks a strategy may hold around an op: in-process per container, unfair
//! ([`UnfairLocks`]) or first come first served ([`FairLocks`]), and the store's lease lock
//! ([`Lease`]). The two in-process locks share only their per-container table and their guard.

mod fair;
mod lease;
mod unfair;

pub use fair::FairLocks;
pub use lease::Lease;
pub use unfair::UnfairLocks;

use super::Conductor;
use crate::proto::Task;
use crate::recorder::Event;
use crate::rpc::lock;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Mutex;
use tokio::sync::oneshot;

/// One container's lock state, as a lock keeps it in its [`Table`].
trait Queue: Default + Send {
    /// Nobody holds it, waits for it or is in line for it: its entry can go.
    fn idle(&self) -> bool;
}

/// The per-container lock table: an entry exists while its container's lock is not idle, so
/// memory follows the containers being worked on.
struct Table<Q>(Mutex<BTreeMap<u64, Q>>);

impl<Q> Default for Table<Q> {
    fn default() -> Self {
        Table(Mutex::default())
    }
}

impl<Q> fmt::Debug for Table<Q> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} containers locked", lock(&self.0).len())
    }
}

impl<Q: Queue> Table<Q> {
    /// Runs `f` on container `key`'s entry, made if there is none; drops it if left idle.
    fn entry<R>(&self, key: u64, f: impl FnOnce(&mut Q) -> R) -> R {
        let mut m = lock(&self.0);
        let q = m.entry(key).or_default();
        let r = f(q);
        if q.idle() {
            m.remove(&key);
        }
        r
    }

    /// Runs `f` on container `key`'s entry if there is one; drops it if left idle.
    fn existing<R>(&self, key: u64, f: impl FnOnce(&mut Q) -> R) -> Option<R> {
        let mut m = lock(&self.0);
        let q = m.get_mut(&key)?;
        let r = f(q);
        if q.idle() {
            m.remove(&key);
        }
        Some(r)
    }
}

/// What a [`LockGuard`] releases through: the lock hands container `key`'s lock on, or
/// leaves it free.
trait Unlock: Sync {
    fn unlock(&self, key: u64);
}

/// Holds a container's in-process lock; dropping it hands the lock on.
#[must_use = "the lock is released when the guard is dropped"]
pub struct LockGuard<'a> {
    lock: &'a dyn Unlock,
    key: u64,
}

impl fmt::Debug for LockGuard<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LockGuard(container {})", self.key)
    }
}

impl Drop for LockGuard<'_> {
    fn drop(&mut self) {
        self.lock.unlock(self.key);
    }
}

/// Waits for the lock if its table said to (`rx`), recording how long, and returns its guard.
async fn acquired<'a>(
    cx: &Conductor,
    task: &Task,
    lock: &'a dyn Unlock,
    rx: Option<oneshot::Receiver<()>>,
) -> LockGuard<'a> {
    if let Some(rx) = rx {
        let t0 = cx.now_us();
        let _ = rx.await;
        cx.record(Event::LockWait {
            conductor: cx.index(),
            op: task.op,
            wait_us: cx.now_us().saturating_sub(t0),
        });
    }
    LockGuard {
        lock,
        key: task.op.container,
    }
}
