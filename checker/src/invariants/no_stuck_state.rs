//! `no-stuck-state`: no record is left in a transient status or task_state by the end of the
//! drain.

use super::{Judge, Kind, Spec};
use crate::snapshot::Snapshot;
use crate::violation::Sink;
use crate::Invariant;
use conductor::op::Status;

/// `no-stuck-state`'s judging code.
pub(crate) struct Rule;

impl Judge for Rule {
    const SPEC: Spec = Spec {
        name: "no-stuck-state",
        short: "stuck",
        kind: Kind::Liveness,
        doc: "No record is left in a transient status or task_state by the end of the drain. \
              Judged at the end of the drain, on the store's container records. Broken when a \
              record is Creating or Deleting, or has a task_state.",
    };
    type Run = ();
    type PerHost = ();

    fn finish(_: &mut (), end_us: u64, snap: &Snapshot, sink: &mut Sink) {
        for r in &snap.records {
            let transient = matches!(r.status, Status::Creating | Status::Deleting);
            if transient || r.task_state.is_some() {
                sink.report(
                    Invariant::NoStuckState,
                    r.container,
                    end_us,
                    Vec::new,
                    || {
                        format!(
                            "the record is left in {:?}{} at the end of the drain",
                            r.status,
                            r.task_state
                                .map_or_else(String::new, |t| format!(" with task_state {t}"))
                        )
                    },
                );
            }
        }
    }
}
