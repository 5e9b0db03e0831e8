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
    /// The ops in the order their deliveries were taken: an op delivered twice (the orphan
    /// sweeper dispatched it again while its first delivery waited) is in line twice, once per
    /// delivery.
    order: VecDeque<u64>,
    /// The workers waiting, by op: one per delivery of it that came for the lock, in the
    /// order they came (two deliveries of one op are two workers, each owed its own grant).
    waiting: BTreeMap<u64, VecDeque<oneshot::Sender<()>>>,
}

impl Line {
    /// Gives the free lock to the first op in line, if its worker waits for it.
    fn grant_next(&mut self) {
        if self.held {
            return;
        }
        if let Some(head) = self.order.front().copied() {
            if let Some(tx) = self.take_waiter(head) {
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

    /// The first worker waiting for `op`'s turn, if any.
    fn take_waiter(&mut self, op: u64) -> Option<oneshot::Sender<()>> {
        let ws = self.waiting.get_mut(&op)?;
        let tx = ws.pop_front();
        if ws.is_empty() {
            self.waiting.remove(&op);
        }
        tx
    }

    /// The line's rules: a free lock is not owed to the head of the line (it would have been
    /// granted at once), and every waiting worker has its place in line (an op delivered
    /// twice has two places and may have two workers waiting; neither replaces the other).
    fn check(&self) {
        debug_assert!(
            self.held
                || self
                    .order
                    .front()
                    .is_none_or(|h| !self.waiting.contains_key(h)),
            "the head of the line waits for a free lock"
        );
        debug_assert!(
            self.waiting.iter().all(|(op, ws)| {
                !ws.is_empty() && ws.len() <= self.order.iter().filter(|&o| o == op).count()
            }),
            "a worker waits without a place in line"
        );
    }
}

impl Queue for Line {
    /// No one holds the lock or is in line (so no one waits: see [`Line::check`]).
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

    /// A delivery of an op that will not run after all leaves its container's line: one
    /// place, the last it holds (another delivery of the op keeps its own).
    pub fn leave(&self, task: &Task) {
        self.table.existing(task.op.container, |q| {
            if let Some(at) = q.order.iter().rposition(|&o| o == task.op.id) {
                q.order.remove(at);
            }
            q.grant_next();
            q.check();
        });
    }

    /// Waits for the op's turn at its container's lock; a wait is recorded as [`LockWait`].
    /// An op with fewer places in line than workers coming for it (restart recovery runs it
    /// without a delivery) joins at its end. The lock is held until the guard is dropped.
    ///
    /// [`LockWait`]: crate::recorder::Event::LockWait
    pub async fn lock<'a>(&'a self, cx: &Conductor, task: &Task) -> LockGuard<'a> {
        let rx = self.table.entry(task.op.container, |q| {
            let id = task.op.id;
            let places = q.order.iter().filter(|&&o| o == id).count();
            let waiting = q.waiting.get(&id).map_or(0, VecDeque::len);
            if places <= waiting {
                q.order.push_back(id);
            }
            let rx = if !q.held && q.order.front() == Some(&task.op.id) {
                q.order.pop_front();
                q.held = true;
                None
            } else {
                let (tx, rx) = oneshot::channel();
                q.waiting.entry(task.op.id).or_default().push_back(tx);
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
