//! `ordering = "local-lock-fair"`: the thread's Phase 0 job queue keyed by container, an
//! in-process lock per container granted in the order the deliveries were taken.

use super::{Attempt, RunFuture, Strategy};
use crate::conductor::lock::FairLocks;
use crate::conductor::{Conductor, Take};
use crate::proto::Task;

/// Like [`LocalLock`](super::LocalLock), but first come first served: an op joins its
/// container's line when its delivery is taken ([`Strategy::on_delivery`]), before any worker
/// runs it, and leaves it if the pool rejects it ([`Strategy::on_abandon`]).
#[derive(Debug, Default)]
pub struct LocalLockFair {
    locks: FairLocks,
}

impl Strategy for LocalLockFair {
    fn on_delivery(&self, task: &Task) {
        self.locks.join(task);
    }

    fn on_abandon(&self, task: &Task) {
        self.locks.leave(task);
    }

    fn run<'a>(&'a self, cx: &'a Conductor, task: &'a Task, attempt: Attempt) -> RunFuture<'a> {
        Box::pin(async move {
            let _held = self.locks.lock(cx, task).await;
            match cx.take(task, Take::Granted, attempt).await {
                Ok(token) => cx.complete(task, token).await,
                Err(outcome) => outcome,
            }
        })
    }
}
