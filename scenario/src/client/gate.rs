//! What may refuse an attempt or a retry that the backoff policy would allow: the retry budget,
//! gRPC retry throttling and the circuit breaker of one client instance (each in
//! `conductor::retry`), fed with every attempt's outcome.

use super::AttemptFailure;
use crate::{ClientBudget, ClientRetry};
use conductor::retry::{Breaker, FinagleBudget, RatioBudget, Throttle};

/// The budget, throttle and breaker of one client instance.
#[derive(Debug, Clone)]
pub struct Gate {
    budget: Budget,
    throttle: Option<Throttle>,
    breaker: Option<Breaker>,
}

#[derive(Debug, Clone)]
enum Budget {
    Unlimited,
    Ratio(RatioBudget),
    Finagle(FinagleBudget),
}

impl Gate {
    /// A fresh gate for `retry`'s budget, throttling and breaker.
    pub fn new(retry: &ClientRetry) -> Self {
        Gate {
            budget: match retry.budget {
                ClientBudget::Unlimited => Budget::Unlimited,
                ClientBudget::Ratio { ratio, min_per_s } => {
                    Budget::Ratio(RatioBudget::new(ratio, min_per_s))
                }
                ClientBudget::Finagle(cfg) => Budget::Finagle(FinagleBudget::new(cfg)),
            },
            throttle: retry.throttling.map(Throttle::new),
            breaker: retry.breaker.map(Breaker::new),
        }
    }

    /// A new request (a first attempt) goes at `now_us`: the budget's deposit.
    pub fn request(&mut self, now_us: u64) {
        match &mut self.budget {
            Budget::Unlimited => {}
            Budget::Ratio(b) => b.request(now_us),
            Budget::Finagle(b) => b.deposit(now_us),
        }
    }

    /// May an attempt (first or retry) be sent at `now_us`? Only an open breaker says no.
    pub fn admit(&mut self, now_us: u64) -> bool {
        self.breaker.as_mut().is_none_or(|b| b.allow(now_us))
    }

    /// An attempt ended at `now_us` with `failure` (`None`: success); `retryable` when
    /// `client.retry_on` covers it. Throttling counts retryable failures and successes (gRFC
    /// A6); the breaker counts successes and failures other than a 409 (the service answered:
    /// the container's state refused the op).
    pub fn outcome(&mut self, now_us: u64, failure: Option<AttemptFailure>, retryable: bool) {
        if let Some(t) = &mut self.throttle {
            match failure {
                None => t.success(),
                Some(_) if retryable => t.failure(),
                Some(_) => {}
            }
        }
        if let Some(b) = &mut self.breaker {
            match failure {
                None => b.record(now_us, true),
                Some(AttemptFailure::Conflict) => {}
                Some(_) => b.record(now_us, false),
            }
        }
    }

    /// May a retry be decided at `now_us`? Throttling first (it takes nothing), then the budget
    /// (which withdraws when it allows).
    pub fn try_retry(&mut self, now_us: u64) -> bool {
        if self.throttle.as_ref().is_some_and(|t| !t.allows_retry()) {
            return false;
        }
        match &mut self.budget {
            Budget::Unlimited => true,
            Budget::Ratio(b) => b.try_retry(now_us),
            Budget::Finagle(b) => b.try_withdraw(now_us),
        }
    }
}
