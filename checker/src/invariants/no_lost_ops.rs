//! `no-lost-ops`: every accepted op is terminal by the end of the drain.
//!
//! Async ops are judged by their store records at the end (a conductor killed between its
//! final write and its report leaves an op terminal in the store with no `Terminal` event);
//! blocking ops have no record, only their answer, so the blocking ops accepted and not yet
//! answered are kept as the history goes (in-flight work).

use super::{Judge, Kind, Spec};
use crate::snapshot::{FinalOp, Snapshot};
use crate::state::IdMap;
use crate::violation::{sim_time, OpRef, Sink};
use crate::Invariant;
use conductor::recorder::Event;
use std::collections::BTreeMap;

/// `no-lost-ops`'s judging code.
pub(crate) struct Rule;

impl Judge for Rule {
    const SPEC: Spec = Spec {
        name: "no-lost-ops",
        short: "lost",
        kind: Kind::Liveness,
        doc: "Every accepted op is terminal by the end of the drain: no async op's record is \
              left non-terminal in the store, and every blocking op was answered by a \
              conductor. Judged at the end of the drain, on the store's op records and the \
              blocking ops accepted and never answered. Broken when an op record is still \
              non-terminal in the store, or a blocking op was never answered.",
    };
    /// The accepted blocking ops not yet answered, by op id.
    type Run = IdMap<u64, Pending>;
    type PerHost = ();

    fn event(pending: &mut Self::Run, now_us: u64, ev: &Event, _sink: &mut Sink) {
        match *ev {
            Event::Accepted { op, seq } if op.kind.is_blocking() => {
                pending.insert(
                    op.id,
                    Pending {
                        op: OpRef::of(&op, seq),
                        container: op.container,
                        accepted_us: now_us,
                    },
                );
            }
            Event::Terminal { op, .. } if op.kind.is_blocking() => {
                pending.remove(&op.id);
            }
            _ => {}
        }
    }

    fn finish(pending: &mut Self::Run, end_us: u64, snap: &Snapshot, sink: &mut Sink) {
        // One list in op id order: the blocking ops never answered and the op records still
        // non-terminal in the store (the report's order must not depend on the hash map's).
        let mut lost: BTreeMap<u64, Result<Pending, &FinalOp>> = std::mem::take(pending)
            .into_iter()
            .map(|(id, p)| (id, Ok(p)))
            .collect();
        for r in &snap.ops {
            lost.insert(r.op.id, Err(r));
        }
        for l in lost.values() {
            match l {
                Ok(p) => sink.report(
                    Invariant::NoLostOps,
                    p.container,
                    end_us,
                    || vec![p.op.into()],
                    || {
                        format!(
                            "blocking {} accepted at {} was never answered by a conductor",
                            p.op,
                            sim_time(p.accepted_us)
                        )
                    },
                ),
                Err(r) => {
                    let op = OpRef::of(&r.op, r.seq);
                    sink.report(
                        Invariant::NoLostOps,
                        r.op.container,
                        end_us,
                        || vec![op.into()],
                        || {
                            format!(
                                "{op} is still {} in the store at the end of the drain",
                                describe_op_record(r)
                            )
                        },
                    );
                }
            }
        }
    }
}

/// An accepted blocking op not yet answered.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Pending {
    op: OpRef,
    container: u64,
    accepted_us: u64,
}

fn describe_op_record(r: &FinalOp) -> String {
    match r.owner {
        Some(o) => format!("{} (owner conductor-{})", r.state, o + 1),
        None => format!("{} (no owner)", r.state),
    }
}
