//! `no-use-after-delete`: nothing but an idempotent delete reaches a container after its delete
//! completed.

use super::{Judge, Kind, Spec};
use crate::state::{HostOp, Life};
use crate::violation::{sim_time, Sink};
use crate::Invariant;
use conductor::op::OpKind;

/// `no-use-after-delete`'s judging code.
pub(crate) struct Rule;

impl Judge for Rule {
    const SPEC: Spec = Spec {
        name: "no-use-after-delete",
        short: "delete→use",
        kind: Kind::Safety,
        doc: "Nothing but an idempotent delete reaches a container after its delete completed. \
              Judged at the hosts, on every op applied. Broken when, after a delete completed \
              at the host, anything but a delete reaches the container there, except a create \
              sent after that delete (a higher sequence number: a new incarnation).",
    };
    const ON_HOSTS: bool = true;
    type Run = ();
    type PerHost = ();

    fn applied(_: &(), _: &mut (), life: &Life, a: &HostOp, sink: &mut Sink) {
        let Life::Deleted { by } = *life else {
            return;
        };
        let (c, t, me) = (a.op.container, a.end_us, a.me);
        if a.op.kind == OpKind::Create {
            if a.seq < by.op.seq {
                sink.report(
                    Invariant::NoUseAfterDelete,
                    c,
                    t,
                    || vec![by.involved(), me.involved()],
                    || {
                        format!(
                            "{}, sent before {by}, reached {} after that delete completed at {} \
                             ({})",
                            a.describe(),
                            a.host_name(),
                            sim_time(by.span.end_us),
                            a.outcome()
                        )
                    },
                );
            }
        } else if a.op.kind != OpKind::Delete {
            sink.report(
                Invariant::NoUseAfterDelete,
                c,
                t,
                || vec![by.involved(), me.involved()],
                || {
                    format!(
                        "{} reached {} after {by} completed there at {} ({})",
                        a.describe(),
                        a.host_name(),
                        sim_time(by.span.end_us),
                        a.outcome()
                    )
                },
            );
        }
    }
}
