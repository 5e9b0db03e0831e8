//! `exclusive`: the host intervals of async ops on one container never overlap.

use super::{Judge, Kind, Spec};
use crate::state::{HostOp, Life, Seen};
use crate::violation::{sim_time, Sink};
use crate::Invariant;

/// `exclusive`'s judging code.
pub(crate) struct Rule;

impl Judge for Rule {
    const SPEC: Spec = Spec {
        name: "exclusive",
        short: "exclusive",
        kind: Kind::Safety,
        doc: "The host intervals of async ops on one container never overlap. Judged at the \
              hosts, on every async op applied (blocking ops are excluded). Broken when two \
              async ops' intervals [start, end) on one container at one host overlap.",
    };
    const ON_HOSTS: bool = true;
    type Run = ();
    /// The op with the latest end among the async host intervals seen.
    type PerHost = Option<Seen>;

    fn applied(_: &(), last: &mut Option<Seen>, _: &Life, a: &HostOp, sink: &mut Sink) {
        if a.op.kind.is_blocking() {
            return;
        }
        let me = a.me;
        // Events come in end order, so the interval overlaps an earlier one exactly when it
        // starts before the latest end seen.
        if let Some(prev) = *last {
            if a.start_us < prev.span.end_us {
                let until = prev.span.end_us;
                sink.report(
                    Invariant::Exclusive,
                    a.op.container,
                    a.end_us,
                    || vec![prev.involved(), me.involved()],
                    || {
                        format!(
                            "{} ran at {} over [{}, {}) while {prev} was still running there \
                             (until {})",
                            a.describe(),
                            a.host_name(),
                            sim_time(a.start_us),
                            sim_time(a.end_us),
                            sim_time(until)
                        )
                    },
                );
            }
        }
        if last.is_none_or(|l| a.end_us >= l.span.end_us) {
            *last = Some(me);
        }
    }
}
