//! `ordering = "state-check"` (Adrian Otto's alternative in the thread): no lock; an op runs
//! only when every earlier op of its container is terminal, and otherwise goes back to the bus.

use super::{Attempt, RunFuture, Strategy};
use crate::conductor::{Conductor, Take};
use crate::proto::Task;

/// Takes the op with the store's state check: [`Take::StateChecked`] refuses it while an
/// earlier op of its container is open ([`Outcome::NotReady`](super::Outcome::NotReady): the
/// conductor re-queues it with backoff, withdrawing from the retry budget that first attempts
/// deposit in), or when its container is in Error.
#[derive(Debug, Default)]
pub struct StateCheck;

impl Strategy for StateCheck {
    fn run<'a>(&'a self, cx: &'a Conductor, task: &'a Task, attempt: Attempt) -> RunFuture<'a> {
        Box::pin(async move {
            if task.attempt <= 1 {
                cx.deposit_retry_budget();
            }
            match cx.take(task, Take::StateChecked, attempt).await {
                Ok(token) => cx.complete(task, token).await,
                Err(outcome) => outcome,
            }
        })
    }
}
