//! The open-loop client's logic, free of any runtime: what to send when, and what to do with
//! each attempt's outcome. A driver — the simulator's client node, or later a real load
//! generator on wall-clock time — feeds it events (a request is due, an attempt was sent, an
//! answer came, a deadline passed) and performs its decisions (send, sleep until, record); the
//! machine itself never sleeps, spawns or touches a network (sans-IO, as quinn-proto or h2's
//! state machines).
//!
//! - **Open loop.** Arrivals (and a lifecycle's later steps) are generated from keyed streams
//!   ahead of and independent of what the system does; a slow answer never delays the next
//!   request. Latency is measured from the *intended* send time — for a retried request, from the
//!   first attempt's (no coordinated omission).
//! - **Timeout** (`client.timeout`, 0 = wait forever): an attempt unanswered that long after it
//!   was sent counts as timed out (`timeouts`) and, with `retry_on` containing `timeout`, is
//!   retried; a late answer to it is ignored (the op may still finish at the API's side).
//! - **Retries** (`client.retry_on` with `[retry]`): a 409 (`conflict`), a timeout (`timeout`),
//!   an error answer or a 503 or a refused connection (`error`) sends the same logical request
//!   again as a **new** request to the API — id `original + attempt·2^40`, so its service time
//!   and failure are drawn afresh but deterministically — after the policy's delay, if the
//!   attempt limit and the budget allow; otherwise the request `gave_up`. Retries are timers of
//!   their own: they never hold up new arrivals.
//! - **Lifecycle model**: each arrival is a new container (ids from 0 upwards: with `lifecycle`
//!   no container is pre-created, `containers` being a key of the `ops` model); it gets the
//!   `lifecycle` ops in order, separated by gaps drawn from `gap` (keyed by container and step),
//!   each sent without waiting for the previous one's answer. `duration` bounds the *arrivals*:
//!   a lifecycle started in the load phase runs to its end, its later steps sent during the drain
//!   (a user who created a container deletes it, whenever the test's load phase ends).
//!
//! Accounting (the driver records it as [`Ended`] says): `submitted` counts logical requests
//! (first attempts), `retry_attempts` the retries sent, `sent_total` every attempt; each attempt
//! ends rejected, terminal or lost at the API. Requests scheduled and not yet sent are
//! [`ClientMachine::pending`], which keeps the drain going until they are out.
//!
//! Times are offsets from the run's start: µs where they come from the recorder's clock, a
//! [`std::time::Duration`] where a retry's delay (nanoseconds) is added to one.

mod attempt;
mod config;
mod gate;
mod machine;
mod outcome;
mod schedule;
#[cfg(test)]
mod tests;

pub use attempt::{Attempt, ATTEMPT_SHIFT};
pub use config::ClientConfig;
pub use gate::Gate;
pub use machine::{ClientMachine, Ended, Next};
pub use outcome::{AttemptFailure, Outcome};
pub use schedule::Schedule;
