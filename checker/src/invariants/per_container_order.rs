//! `per-container-order`: the ops applied at the host follow their sequence numbers.

use super::{Judge, Kind, Spec};
use crate::state::{HostOp, Life, Seen};
use crate::violation::Sink;
use crate::Invariant;

/// `per-container-order`'s judging code.
pub(crate) struct Rule;

impl Judge for Rule {
    const SPEC: Spec = Spec {
        name: "per-container-order",
        short: "order",
        kind: Kind::Safety,
        doc: "The ops applied at the host follow their sequence numbers. Judged at the hosts, \
              on every async op the host applied (a 304 no-op included; refusals are not \
              applied). Broken when an async op is applied with a lower sequence number than \
              one applied before it on its container; a re-issue of the same op is fine.",
    };
    const ON_HOSTS: bool = true;
    type Run = ();
    /// The op with the highest sequence number applied.
    type PerHost = Option<Seen>;

    fn applied(_: &(), top: &mut Option<Seen>, _: &Life, a: &HostOp, sink: &mut Sink) {
        if a.op.kind.is_blocking() || a.result.is_err() {
            return;
        }
        let me = a.me;
        match *top {
            Some(top) if a.seq < top.op.seq => sink.report(
                Invariant::PerContainerOrder,
                a.op.container,
                a.end_us,
                || vec![top.involved(), me.involved()],
                || {
                    format!(
                        "{} was applied at {} after {top} ({})",
                        a.describe(),
                        a.host_name(),
                        a.outcome()
                    )
                },
            ),
            _ => *top = Some(me),
        }
    }
}
