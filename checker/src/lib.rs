//! The history checker: judges the nine invariants (docs/design-matrix.md) on the stream of events a simulated
//! run records, as they happen, then on a final snapshot of the store and the hosts taken at the
//! end of the drain; or on the JSON-lines logs a real deployment wrote ([`history`]).
//!
//! The invariants are a registry ([`invariants`]): one file each, holding its name, kind, doc
//! and judging code. The [`Checker`] feeds them the events and keeps their state.
//!
//! The simulator sees the truth at the hosts, so the checker judges the omniscient history:
//! [`Event::Applied`] says what each host did to each container and when, whatever the API or
//! the conductors believed.
//!
//! **Streaming, bounded memory.** Nothing is kept per event. Per `(container, host)` the checker
//! keeps a fixed-size state (its life — never created, created by which op and when, deleted by
//! which op and when —, the latest host interval seen, the highest sequence number applied;
//! each op kept with its host interval, so that a violation gives both ops' intervals) plus,
//! for `at-most-once`, a ring of the last [`CHANGERS_KEPT`] op ids that changed the container's
//! state at that host (cleared when a delete completes: a later op re-applied there is judged by
//! `no-use-after-delete` or `per-container-order` instead). An op re-applied after more than
//! [`CHANGERS_KEPT`] other state changes of its container escapes `at-most-once`: that is the
//! price of the bound. `no-lost-ops` keeps the blocking ops accepted and not yet answered
//! (in-flight work); async ops are judged by the store's op records at the end of the drain.
//! Memory therefore follows live containers and in-flight ops, not the length of the run. Each
//! invariant lists at most [`LISTED_PER_INVARIANT`] violations per seed and counts the rest.
//!
//! **Order.** Hosts record [`Event::Applied`] when an op ends there, right after changing the
//! container's truth, so the events of one host arrive in end order, which is also the order in
//! which the truth changed: `exclusive` only needs the latest end seen per container, and the
//! lifecycle follows the truth step by step.
//!
//! [`Event::Applied`]: conductor::recorder::Event::Applied

#![warn(missing_docs)]

mod checker;
pub mod final_state;
pub mod history;
pub mod invariants;
mod set;
mod snapshot;
mod state;
mod violation;

pub use checker::Checker;
pub use invariants::at_most_once::CHANGERS_KEPT;
pub use invariants::{Invariant, Kind, Spec};
pub use set::{InvariantSet, UnknownInvariant};
pub use snapshot::{FinalOp, FinalRecord, Snapshot};
pub use violation::{sim_time, Findings, Involved, OpRef, Span, Violation, LISTED_PER_INVARIANT};

#[cfg(test)]
mod tests;
