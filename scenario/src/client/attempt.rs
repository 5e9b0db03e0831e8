//! One attempt at a logical request, and the request id it travels under.

use conductor::proto::OpSpec;
use std::time::Duration;

/// The bit a retry's attempt number is shifted to in its request id: ids of first attempts stay
/// below 2^40 (at most 10^8 requests per run), so every attempt has an id of its own.
pub const ATTEMPT_SHIFT: u32 = 40;

/// Attempt `number` of the logical request `op`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attempt {
    /// The logical request: its first attempt's id and intended time.
    pub op: OpSpec,
    /// 1 for the first attempt.
    pub number: u32,
    /// The delay waited before this attempt (decorrelated jitter grows from it); zero for the
    /// first.
    pub prev: Duration,
    /// A retry of the same op under the same id (`client.retry_same_op`) rather than a new op.
    pub same_op: bool,
}

impl Attempt {
    /// The first attempt at `op`, sent at its intended time.
    pub fn first(op: OpSpec) -> Self {
        Attempt {
            op,
            number: 1,
            prev: Duration::ZERO,
            same_op: false,
        }
    }

    /// Whether this is the first attempt (a new logical request) rather than a retry.
    pub fn is_first(&self) -> bool {
        self.number == 1
    }

    /// The request id this attempt is sent under: `op.id + (number − 1)·2^ATTEMPT_SHIFT`, a new
    /// op whose service time and failure at the hosts are drawn afresh (they are keyed by the
    /// id); with `same_op`, `op.id` itself — the idempotency key the API dedupes by, the op
    /// keeping its draws.
    pub fn id(&self) -> u64 {
        if self.same_op {
            self.op.id
        } else {
            self.op.id + (u64::from(self.number - 1) << ATTEMPT_SHIFT)
        }
    }

    /// The request as it goes to the API: the logical op under this attempt's id.
    pub fn wire(&self) -> OpSpec {
        OpSpec {
            id: self.id(),
            ..self.op
        }
    }
}
