//! What the client machine needs from a scenario: the workload, `[client]` and `[retry]`.

use crate::{RetryOn, Scenario, Workload};
use conductor::retry::{RetryBudget, RetryPolicy};
use std::time::Duration;

/// The client's part of one run of a scenario.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// The run's seed: it keys every stream of the workload.
    pub seed: u64,
    /// The load phase: arrivals come before its end.
    pub duration: Duration,
    /// `[workload]`.
    pub workload: Workload,
    /// `client.timeout` (zero: none).
    pub timeout: Duration,
    /// `client.retry_on`.
    pub retry_on: Vec<RetryOn>,
    /// `[retry]` as a policy.
    pub policy: RetryPolicy,
    /// `[retry] budget`, as it stands before the first request.
    pub budget: RetryBudget,
}

impl ClientConfig {
    /// The client of `scn` run with `seed`.
    pub fn new(scn: &Scenario, seed: u64) -> Self {
        ClientConfig {
            seed,
            duration: scn.duration,
            workload: scn.workload.clone(),
            timeout: scn.client.timeout,
            retry_on: scn.client.retry_on.clone(),
            policy: scn.retry.to_policy(),
            budget: scn.retry.to_budget(),
        }
    }
}
