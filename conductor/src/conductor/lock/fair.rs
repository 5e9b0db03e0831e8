//! The fair in-process lock (the thread's Phase 0 job queue keyed by container): ops hold a
//! container's lock in the order their deliveries were taken, whether or not their worker has
//! come for it yet.

use super::{acquired, LockGuard, Queue, Table, Unlock};
use crate::conductor::Conductor;
use crate::proto::Task;
use std::collections::{BTreeMap, VecDeque};
use tokio::sync::oneshot;

/// One container's line.
#[derive(Default)]
struct Line {
    /// Whether a worker holds the lock.
    held: bool,
    /// The ops in the order their deliveries were taken.
    order: VecDeque<u64>,
    /// The workers waiting, by op.
    waiting: BTreeMap<u64, oneshot::Sender<()>>,
}

impl Line {
    /// Gives the free lock to the first op in line, if its worker waits for it.
    fn grant_next(&mut self) {
        if self.held {
            return;
        }
        if let Some(head) = self.order.front().copied() {
            if let Some(tx) = self.waiting.remove(&head) {
                self.order.pop_front();
                self.held = true;
                // A worker gone meanwhile (its conductor is going down) passes its turn on.
                if tx.send(()).is_ok() {
                    return;
                }
                self.held = false;
                self.grant_next();
            }
        }
    }

    /// The line's rule: a free lock is not owed to the head of the line (it would have been
    /// granted at once).
    ///
    /// What does not hold, and is not asserted: that every waiting worker is in line, and that
    /// a guard is always a holder's. An op delivered twice (the orphan sweeper dispatches it
    /// again while its first delivery waits) is in line twice: its second worker's wait
    /// replaces the first's, which wakes without the lock and, done, frees it from whoever
    /// holds it; and if the pool rejects one copy, leaving the line takes both places.
    fn check(&self) {
        debug_assert!(
            self.held
                || self
                    .order
                    .front()
                    .is_none_or(|h| !self.waiting.contains_key(h)),
            "the head of the line waits for a free lock"
        );
    }
}

impl Queue for Line {
    /// No one holds the lock or is in line (a worker waiting out of line, see [`Line::check`],
    /// is forgotten with the entry and wakes without the lock).
    fn idle(&self) -> bool {
        !self.held && self.order.is_empty()
    }
}

/// Per-container fair in-process locks (the `local-lock-fair` strategy's).
#[derive(Debug, Default)]
pub struct FairLocks {
    table: Table<Line>,
}

impl FairLocks {
    /// The op takes its place at the end of its container's line (when its delivery is taken,
    /// so that the line follows the order of the queue it came from).
    pub fn join(&self, task: &Task) {
        self.table.entry(task.op.container, |q| {
            q.order.push_back(task.op.id);
            q.check();
        });
    }

    /// An op that will not run after all leaves its container's line.
    pub fn leave(&self, task: &Task) {
        self.table.existing(task.op.container, |q| {
            q.order.retain(|&o| o != task.op.id);
            q.grant_next();
            q.check();
        });
    }

    /// Waits for the op's turn at its container's lock; a wait is recorded as [`LockWait`].
    /// An op that is not in line (restart recovery runs it) joins at its end. The lock is held
    /// until the guard is dropped.
    ///
    /// [`LockWait`]: crate::recorder::Event::LockWait
    pub async fn lock<'a>(&'a self, cx: &Conductor, task: &Task) -> LockGuard<'a> {
        let rx = self.table.entry(task.op.container, |q| {
            if !q.order.contains(&task.op.id) {
                q.order.push_back(task.op.id);
            }
            let rx = if !q.held && q.order.front() == Some(&task.op.id) {
                q.order.pop_front();
                q.held = true;
                None
            } else {
                let (tx, rx) = oneshot::channel();
                q.waiting.insert(task.op.id, tx);
                Some(rx)
            };
            q.check();
            rx
        });
        acquired(cx, task, self, rx).await
    }
}

impl Unlock for FairLocks {
    /// Hands the lock to the next op in line, if its worker waits for it.
    fn unlock(&self, key: u64) {
        self.table.existing(key, |q| {
            q.held = false;
            q.grant_next();
            q.check();
        });
    }
}
