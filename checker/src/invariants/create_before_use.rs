//! `create-before-use`: no op reaches a host for a container before its create completed there.

use super::{Judge, Kind, Spec};
use crate::state::{HostOp, IdMap, Life};
use crate::violation::{sim_time, Sink};
use crate::Invariant;
use conductor::op::OpKind;
use conductor::recorder::Event;

/// `create-before-use`'s judging code.
pub(crate) struct Rule;

impl Judge for Rule {
    const SPEC: Spec = Spec {
        name: "create-before-use",
        short: "create→use",
        kind: Kind::Safety,
        doc: "No op reaches a host for a container before its create completed there. Judged \
              at the hosts, on every op applied (blocking ones too). Broken when an op reaches \
              a host where no create of its container completed, or starts there before that \
              create ended; a delete counts only when it reaches a never-created container \
              while its create is pending (after a failed create, deleting is a clean-up).",
    };
    const ON_HOSTS: bool = true;
    /// The containers whose create was accepted and is not yet terminal (container → op id):
    /// a delete reaching the host before such a create completed is the "delete during
    /// create" race; one reaching a container whose create is over (failed, never applied) is
    /// a legitimate clean-up.
    type Run = IdMap<u64, u64>;
    type PerHost = ();

    fn event(creating: &mut Self::Run, _now_us: u64, ev: &Event, _sink: &mut Sink) {
        match *ev {
            Event::Accepted { op, .. } if op.kind == OpKind::Create => {
                creating.insert(op.container, op.id);
            }
            Event::Terminal { op, .. }
                if op.kind == OpKind::Create && creating.get(&op.container) == Some(&op.id) =>
            {
                creating.remove(&op.container);
            }
            _ => {}
        }
    }

    fn applied(creating: &Self::Run, _: &mut (), life: &Life, a: &HostOp, sink: &mut Sink) {
        if a.op.kind == OpKind::Create {
            return;
        }
        let (c, t, me) = (a.op.container, a.end_us, a.me);
        match *life {
            // Deleting a container whose create is over without creating it is a 304.
            Life::Never if a.op.kind == OpKind::Delete && !creating.contains_key(&c) => {}
            Life::Never => sink.report(
                Invariant::CreateBeforeUse,
                c,
                t,
                || vec![me.involved()],
                || {
                    format!(
                        "{} reached {} where no create of the container had completed ({})",
                        a.describe(),
                        a.host_name(),
                        a.outcome()
                    )
                },
            ),
            Life::Exists { by: Some(by) } if a.start_us < by.span.end_us => sink.report(
                Invariant::CreateBeforeUse,
                c,
                t,
                || vec![by.involved(), me.involved()],
                || {
                    format!(
                        "{} started at {} at {}, before {by} completed there at {} ({})",
                        a.describe(),
                        a.host_name(),
                        sim_time(a.start_us),
                        sim_time(by.span.end_us),
                        a.outcome()
                    )
                },
            ),
            _ => {}
        }
    }
}
