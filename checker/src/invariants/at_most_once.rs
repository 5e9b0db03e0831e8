//! `at-most-once`: no op changes the host state twice.
//!
//! Per container and host it keeps a ring of the last [`CHANGERS_KEPT`] op ids that changed the
//! container's state there, cleared when a delete completes (a later op re-applied there is
//! judged by `no-use-after-delete` or `per-container-order` instead). An op re-applied after
//! more than [`CHANGERS_KEPT`] other state changes of its container escapes it: the price of
//! the bound.

use super::{Judge, Kind, Spec};
use crate::state::{HostOp, Life};
use crate::violation::Sink;
use crate::Invariant;

/// Op ids remembered per container and host for `at-most-once` (the last ones that changed its
/// state there).
pub const CHANGERS_KEPT: usize = 32;

/// `at-most-once`'s judging code.
pub(crate) struct Rule;

impl Judge for Rule {
    const SPEC: Spec = Spec {
        name: "at-most-once",
        short: "once",
        kind: Kind::Safety,
        doc: "No op changes the host state twice. Judged at the hosts, on every op that \
              changed its container's state there. Broken when one op id changes a \
              container's state at a host a second time (a re-issue that finds its work done \
              is a no-op, and fine).",
    };
    const ON_HOSTS: bool = true;
    type Run = ();
    type PerHost = Changers;

    fn applied(_: &(), changers: &mut Changers, _: &Life, a: &HostOp, sink: &mut Sink) {
        if a.completes_delete() {
            // A new incarnation starts afresh; an old op re-applied to it is judged by the
            // order of sequence numbers.
            *changers = Changers::default();
        }
        let Ok(after) = a.result else {
            return;
        };
        if after != a.before && !changers.changed_by(a.op.id) {
            let me = a.me;
            sink.report(
                Invariant::AtMostOnce,
                a.op.container,
                a.end_us,
                || vec![me.involved()],
                || {
                    format!(
                        "{} changed the container's state at {} again ({})",
                        a.describe(),
                        a.host_name(),
                        a.outcome()
                    )
                },
            );
        }
    }
}

/// The last op ids that changed the container's state at a host (a ring, allocated on first
/// use).
#[derive(Debug, Default)]
pub(crate) struct Changers {
    ids: Vec<u64>,
    /// Where the next changer goes once the ring is full.
    ring_at: u8,
}

impl Changers {
    /// Remembers that `id` changed the state; false when it had already.
    fn changed_by(&mut self, id: u64) -> bool {
        if self.ids.contains(&id) {
            return false;
        }
        if self.ids.len() < CHANGERS_KEPT {
            self.ids.push(id);
        } else {
            self.ids[self.ring_at as usize] = id;
            self.ring_at = ((self.ring_at as usize + 1) % CHANGERS_KEPT) as u8;
        }
        true
    }
}
