//! Cancellation: what happens to an op whose client stopped waiting for it (`client.cancel`).
//!
//! A client that times out on an attempt usually leaves its op to run anyway: it keeps its place
//! in the bus and the conductor's queues, and a retry adds a second op behind it — what turns a
//! short overload into a retry storm. Two ways out exist in the systems this deployment models:
//!
//! - **bus TTL** (oslo.messaging publishes a call with `expiration = timeout`, RabbitMQ's
//!   per-message TTL): the bus drops a message that no conductor consumed before it expired;
//! - **deadline propagation** (gRPC's `grpc-timeout`, Finagle's deadlines): the client's deadline
//!   travels with the op, and the conductor drops an op whose deadline has passed before it
//!   starts it.
//!
//! Either way the op never runs; it becomes terminal as *cancelled* ([`Cancelled`]), which the
//! checker counts apart from failures and never as a lost op.

use crate::proto::{CoordCmd, StoreResp, Task};
use crate::recorder::{Event, SharedRecorder};
use crate::rpc::Redial;
use serde::{Deserialize, Serialize};

crate::keyword_enum! {
    /// `client.cancel`: what happens to an attempt its client timed out on.
    pub enum Cancel, "a cancel mode" {
        /// Nothing: the op keeps its place and runs when its turn comes (today's behaviour).
        None = "none",
        /// The op's message expires on the bus at the client's deadline if no conductor has
        /// consumed it by then (RabbitMQ's per-message TTL, as oslo.messaging publishes calls).
        BusTtl = "bus-ttl",
        /// The client's deadline travels with the op; a conductor drops an op whose deadline
        /// has passed before it takes a pool worker for it.
        Deadline = "deadline",
    }
}

impl Cancel {
    /// Whether this is [`Cancel::None`] (today's behaviour; a scenario echoes the key only
    /// when it is set otherwise).
    pub fn is_none(&self) -> bool {
        *self == Cancel::None
    }
}

/// When an op's client stops waiting for it (µs on the services' clock: the run's clock under
/// simulation, the UNIX epoch for real), and who drops the op past it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Deadline {
    /// `bus-ttl`: the bus drops the op's message if it is still queued at this time.
    Bus(u64),
    /// `deadline`: a conductor drops the op if it has not started it by this time.
    Conductor(u64),
}

impl Deadline {
    /// The deadline of an attempt sent at `sent_us` with the client's `timeout_us`, as `mode`
    /// says (`None` for [`Cancel::None`]).
    pub fn of(mode: Cancel, sent_us: u64, timeout_us: u64) -> Option<Deadline> {
        let at = sent_us.saturating_add(timeout_us);
        match mode {
            Cancel::None => None,
            Cancel::BusTtl => Some(Deadline::Bus(at)),
            Cancel::Deadline => Some(Deadline::Conductor(at)),
        }
    }

    /// The time (µs) past which the op is dropped.
    pub fn at_us(self) -> u64 {
        match self {
            Deadline::Bus(t) | Deadline::Conductor(t) => t,
        }
    }

    /// Whether the bus must drop the op's message at `now_us` (a bus TTL that has run out).
    pub fn expired_on_bus(self, now_us: u64) -> bool {
        matches!(self, Deadline::Bus(t) if now_us >= t)
    }

    /// Whether a conductor must drop the op rather than start it at `now_us`.
    pub fn passed_for_conductor(self, now_us: u64) -> bool {
        matches!(self, Deadline::Conductor(t) if now_us >= t)
    }
}

crate::keyword_enum! {
    /// Why an op was cancelled: the terminal failure reason of an op that never ran because its
    /// client had stopped waiting (the history's `cancelled` event and the store's journal).
    pub enum Cancelled, "a cancellation reason" {
        /// A conductor found its deadline passed before starting it (`deadline`).
        DeadlineExceeded = "deadline_exceeded",
        /// Its message expired on the bus before a conductor consumed it (`bus-ttl`).
        Expired = "expired",
    }
}

/// Cancels `task`'s op, which never ran, for `why`: an async op's record becomes terminal in
/// the store (waiting for the store as a final write does), then the history says why and that
/// it ended (`Cancelled`, then `Terminal` failed — a client waiting for it to be done sees a
/// failure). `false`, recording nothing, when the store says another delivery of the op runs it
/// or it is terminal already: this copy was a duplicate. A blocking op has no record. `by`:
/// the cancelling conductor (`None`: the API).
pub async fn cancel(
    store: &Redial,
    rec: &SharedRecorder,
    by: Option<u32>,
    task: &Task,
    why: Cancelled,
) -> bool {
    if !task.op.kind.is_blocking() {
        let cmd = CoordCmd::Cancel {
            op: task.op.id,
            why,
        };
        if store.coord_until_answered(cmd).await != StoreResp::Ok {
            return false;
        }
    }
    rec.record(Event::Cancelled {
        conductor: by,
        op: task.op,
        seq: task.seq,
        why,
    });
    rec.record(Event::Terminal {
        op: task.op,
        ok: false,
    });
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_mode_names_who_drops_the_op_and_when() {
        assert_eq!(Deadline::of(Cancel::None, 10, 5), None);
        let bus = Deadline::of(Cancel::BusTtl, 10, 5).unwrap();
        assert_eq!(bus, Deadline::Bus(15));
        assert!(!bus.expired_on_bus(14) && bus.expired_on_bus(15));
        assert!(
            !bus.passed_for_conductor(100),
            "the bus's TTL is not the conductor's"
        );
        let d = Deadline::of(Cancel::Deadline, 10, 5).unwrap();
        assert_eq!(d.at_us(), 15);
        assert!(!d.passed_for_conductor(14) && d.passed_for_conductor(15));
        assert!(
            !d.expired_on_bus(100),
            "a deadline is the conductor's to judge"
        );
        assert_eq!(
            Deadline::of(Cancel::Deadline, u64::MAX, 5).unwrap().at_us(),
            u64::MAX
        );
    }
}
