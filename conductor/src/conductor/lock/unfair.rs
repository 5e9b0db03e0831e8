//! The unfair in-process lock (Zun's `@synchronized(uuid)`): like a thread lock, the next
//! holder is whoever the scheduler wakes first, so a later op can overtake an earlier one.

use super::{acquired, LockGuard, Queue, Table, Unlock};
use crate::conductor::Conductor;
use crate::proto::Task;
use crate::retry::splitmix64;
use std::collections::VecDeque;
use tokio::sync::oneshot;

/// One container's unfair lock.
#[derive(Default)]
struct Waiters {
    /// Whether a worker holds the lock.
    held: bool,
    /// The workers waiting, woken in no particular order.
    waiters: VecDeque<oneshot::Sender<()>>,
    /// Releases so far: the pick among waiters is keyed on it.
    releases: u64,
}

impl Queue for Waiters {
    fn idle(&self) -> bool {
        !self.held && self.waiters.is_empty()
    }
}

impl Waiters {
    /// Nobody waits for a free lock: a release hands it to a waiter if one is left.
    fn check(&self) {
        debug_assert!(
            self.held || self.waiters.is_empty(),
            "{} workers wait for a free lock",
            self.waiters.len()
        );
    }

    /// Hands the lock to any waiter: the pick is a hash of the container and the release
    /// count, standing for the scheduler's whim, and the same in every run.
    fn release(&mut self, key: u64) {
        debug_assert!(self.held, "container {key}: released a lock nobody held");
        self.held = false;
        while !self.waiters.is_empty() {
            let n = self.waiters.len() as u64;
            let i = (splitmix64(key ^ splitmix64(self.releases)) % n) as usize;
            self.releases += 1;
            if let Some(tx) = self.waiters.remove(i) {
                // A waiter gone meanwhile (its conductor is going down) is skipped.
                if tx.send(()).is_ok() {
                    self.held = true;
                    break;
                }
            }
        }
        self.check();
    }
}

/// Per-container unfair in-process locks (the `local-lock` strategy's).
#[derive(Debug, Default)]
pub struct UnfairLocks {
    table: Table<Waiters>,
}

impl UnfairLocks {
    /// Waits for the container's lock; a wait is recorded as [`LockWait`]. The lock is held
    /// until the guard is dropped.
    ///
    /// [`LockWait`]: crate::recorder::Event::LockWait
    pub async fn lock<'a>(&'a self, cx: &Conductor, task: &Task) -> LockGuard<'a> {
        let rx = self.table.entry(task.op.container, |q| {
            let rx = if !q.held {
                q.held = true;
                None
            } else {
                let (tx, rx) = oneshot::channel();
                q.waiters.push_back(tx);
                Some(rx)
            };
            q.check();
            rx
        });
        acquired(cx, task, self, rx).await
    }
}

impl Unlock for UnfairLocks {
    fn unlock(&self, key: u64) {
        let found = self.table.existing(key, |q| q.release(key));
        // A waiter wakes only when it is handed the lock, so every guard is a holder's; and a
        // held lock is not idle, so its entry is still there.
        debug_assert!(
            found.is_some(),
            "container {key}: a held lock lost its entry"
        );
    }
}
