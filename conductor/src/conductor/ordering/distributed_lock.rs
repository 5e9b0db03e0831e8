//! `ordering = "distributed-lock"` (tooz): a lease lock per container in the store, renewed
//! while held, whose token fences the host call.

use super::{Attempt, RunFuture, Strategy};
use crate::conductor::lock::Lease;
use crate::conductor::{Conductor, Take};
use crate::proto::Task;

/// Holds the container's lease lock around the granted take, the host call and the final
/// write. When there is a lock its token fences the host call, not the take's own grant; the
/// lock is released with one try, and one not released lapses with its lease.
#[derive(Debug, Default)]
pub struct DistributedLock;

impl Strategy for DistributedLock {
    fn run<'a>(&'a self, cx: &'a Conductor, task: &'a Task, attempt: Attempt) -> RunFuture<'a> {
        Box::pin(async move {
            let lease = Lease::lock(cx, task).await;
            let outcome = match cx.take(task, Take::Granted, attempt).await {
                Ok(_own) => cx.complete(task, lease.token()).await,
                Err(outcome) => outcome,
            };
            lease.release(cx).await;
            outcome
        })
    }
}
