//! `ordering = "none"`: no guard at all, the baseline that shows the races.

use super::{Attempt, RunFuture, Strategy};
use crate::conductor::{Conductor, Take};
use crate::proto::Task;

/// Runs every op at once: the take goes without waiting for the store's answer (the
/// connection keeps it ahead of the final write, and nothing here depends on its answer), then
/// the host call, unfenced, and the final write.
#[derive(Debug, Default)]
pub struct NoOrdering;

impl Strategy for NoOrdering {
    fn run<'a>(&'a self, cx: &'a Conductor, task: &'a Task, attempt: Attempt) -> RunFuture<'a> {
        Box::pin(async move {
            match cx.take(task, Take::Unconfirmed, attempt).await {
                Ok(token) => cx.complete(task, token).await,
                Err(outcome) => outcome,
            }
        })
    }
}
