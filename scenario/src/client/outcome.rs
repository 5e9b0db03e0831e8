//! How an attempt ended, as the client sees it, and which `retry_on` entry covers it.

use crate::RetryOn;
use conductor::idempotency::KeyReuse;
use conductor::proto::Answer;
use std::fmt;

/// How an attempt ended, as the client sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The API answered.
    Answer(Answer),
    /// No answer within `client.timeout`.
    TimedOut,
    /// It could not be sent: no connection to the API.
    Undelivered,
    /// The op became terminal (`ok`: done), for a client that waits for it
    /// (`client.wait_for = "done"`).
    Terminal {
        /// Done rather than failed.
        ok: bool,
    },
}

/// An outcome other than success, by the `retry_on` entry that retries it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptFailure {
    /// A 409: the container's state refused the op.
    Conflict,
    /// An error answer (the op failed after it was accepted) or a 503 (it could not be
    /// persisted).
    Error,
    /// The client's own timeout, or the API's RPC timeout answered as such.
    Timeout,
    /// No connection to the API: the attempt never left the client.
    Unreachable,
    /// The client's circuit breaker is open: the attempt was not sent.
    BreakerOpen,
}

impl AttemptFailure {
    /// The failure `outcome` is, `None` for success (accepted, or done).
    pub fn of(outcome: &Outcome) -> Option<Self> {
        match outcome {
            Outcome::Answer(Answer::Accepted | Answer::Done) | Outcome::Terminal { ok: true } => {
                None
            }
            Outcome::Terminal { ok: false } => Some(AttemptFailure::Error),
            // A 409 either way: the container's state, or the op's id still in flight (ask
            // again later); a 422 (the id named another op) is an error.
            Outcome::Answer(Answer::Conflict(_) | Answer::Refused(KeyReuse::InFlight)) => {
                Some(AttemptFailure::Conflict)
            }
            Outcome::Answer(Answer::Refused(KeyReuse::Mismatch)) => Some(AttemptFailure::Error),
            Outcome::Answer(Answer::Unavailable | Answer::Error(_)) => Some(AttemptFailure::Error),
            Outcome::Answer(Answer::Timeout) | Outcome::TimedOut => Some(AttemptFailure::Timeout),
            Outcome::Undelivered => Some(AttemptFailure::Unreachable),
        }
    }

    /// The `client.retry_on` entry that retries this failure (a refused connection is an error).
    pub fn retry_on(self) -> RetryOn {
        match self {
            AttemptFailure::Conflict => RetryOn::Conflict,
            // A breaker's refusal is never retried (the client gives the request up); it is
            // an error for what it says about the service.
            AttemptFailure::Error | AttemptFailure::Unreachable | AttemptFailure::BreakerOpen => {
                RetryOn::Error
            }
            AttemptFailure::Timeout => RetryOn::Timeout,
        }
    }

    /// Its name in the client's trace notes.
    pub fn name(self) -> &'static str {
        match self {
            AttemptFailure::Conflict => "conflict",
            AttemptFailure::Error => "error",
            AttemptFailure::Timeout => "timeout",
            AttemptFailure::Unreachable => "unreachable",
            AttemptFailure::BreakerOpen => "breaker-open",
        }
    }
}

impl fmt::Display for AttemptFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
