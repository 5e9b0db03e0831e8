//! `ordering = "local-lock"`: Zun's `@synchronized(uuid)`, an in-process lock per container
//! that wakes its waiters in no particular order.

use super::{Attempt, RunFuture, Strategy};
use crate::conductor::lock::UnfairLocks;
use crate::conductor::{Conductor, Take};
use crate::proto::Task;

/// Holds the container's unfair in-process lock around the granted take, the host call
/// (fenced by the take's token) and the final write. Conductors do not see each other's locks.
#[derive(Debug, Default)]
pub struct LocalLock {
    locks: UnfairLocks,
}

impl Strategy for LocalLock {
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
