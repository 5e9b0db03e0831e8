//! `blocking-inline`: no blocking op is ever a pool arrival.

use super::{Judge, Kind, Spec};
use crate::violation::{OpRef, Sink};
use crate::Invariant;
use conductor::recorder::Event;

/// `blocking-inline`'s judging code.
pub(crate) struct Rule;

impl Judge for Rule {
    const SPEC: Spec = Spec {
        name: "blocking-inline",
        short: "inline",
        kind: Kind::Safety,
        doc: "No blocking op was ever a pool arrival: blocking ops run inline in their RPC \
              slot. Judged at the pools, on every pool arrival. Broken when a blocking op \
              (logs, exec, show) arrives at a conductor's pool.",
    };
    type Run = ();
    type PerHost = ();

    fn event(_: &mut (), now_us: u64, ev: &Event, sink: &mut Sink) {
        if let Event::PoolArrival { conductor, op, .. } = *ev {
            if op.kind.is_blocking() {
                sink.report(
                    Invariant::BlockingInline,
                    op.container,
                    now_us,
                    || vec![OpRef::of(&op, 0).into()],
                    || {
                        format!(
                            "blocking op {} ({}) arrived at the pool of conductor-{}",
                            op.id,
                            op.kind,
                            conductor + 1
                        )
                    },
                );
            }
        }
    }
}
