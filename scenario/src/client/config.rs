//! What the client machine needs from a scenario: the workload, `[client]` and the client's
//! retry behaviour (`[client.retry]`, or `[retry]` without one).

use crate::{Cancel, ClientRetry, RetryOn, Scenario, WaitFor, Workload};
use conductor::retry::RetryPolicy;
use std::time::Duration;

/// The client's part of one run of a scenario, for one client instance.
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
    /// `client.wait_for`.
    pub wait_for: WaitFor,
    /// `client.retry_same_op`: retries travel under their request's first id.
    pub same_op: bool,
    /// `client.cancel`: the deadline each attempt carries.
    pub cancel: Cancel,
    /// The backoff policy (of `[client.retry]`, else `[retry]`).
    pub policy: RetryPolicy,
    /// The budget, throttling and breaker (of `[client.retry]`, else `[retry]`'s budget).
    pub retry: ClientRetry,
    /// This instance, `0..instances`.
    pub instance: u32,
    /// `client.instances`: requests are dealt among the instances.
    pub instances: u32,
}

impl ClientConfig {
    /// Instance 0 of the client of `scn` run with `seed` (of `client.instances`).
    pub fn new(scn: &Scenario, seed: u64) -> Self {
        let retry = scn.client_retry();
        ClientConfig {
            seed,
            duration: scn.duration,
            workload: scn.workload.clone(),
            timeout: scn.client.timeout,
            retry_on: scn.client.retry_on.clone(),
            wait_for: scn.client.wait_for,
            same_op: scn.client.retry_same_op,
            cancel: scn.client.cancel,
            policy: retry.to_policy(),
            retry,
            instance: 0,
            instances: scn.client.instances.max(1),
        }
    }

    /// The configuration of instance `i` (`0..instances`).
    pub fn instance(&self, i: u32) -> Self {
        ClientConfig {
            instance: i,
            ..self.clone()
        }
    }
}
