//! `converges`: by the end of the drain every record agrees with its host's truth.

use super::{Judge, Kind, Spec};
use crate::snapshot::Snapshot;
use crate::violation::Sink;
use crate::Invariant;
use conductor::op::{Status, Truth};
use std::collections::BTreeMap;

/// `converges`'s judging code.
pub(crate) struct Rule;

impl Judge for Rule {
    const SPEC: Spec = Spec {
        name: "converges",
        short: "converge",
        kind: Kind::Liveness,
        doc: "By the end of the drain every record agrees with its host's truth. Judged at the \
              end of the drain, on the store's records against the hosts' containers. Broken \
              when a record disagrees with its host (Created, Running, Stopped, Paused each \
              with itself; Deleted with absent; Error with nothing), or a host holds a \
              container its record does not place there.",
    };
    type Run = ();
    type PerHost = ();

    fn finish(_: &mut (), end_us: u64, snap: &Snapshot, sink: &mut Sink) {
        let truths: BTreeMap<(u64, u32), Truth> =
            snap.truths.iter().map(|&(h, c, t)| ((c, h), t)).collect();
        let placed: BTreeMap<u64, u32> =
            snap.records.iter().map(|r| (r.container, r.host)).collect();
        for r in &snap.records {
            let truth = truths
                .get(&(r.container, r.host))
                .copied()
                .unwrap_or(Truth::Absent);
            if !agrees(r.status, truth) {
                sink.report(Invariant::Converges, r.container, end_us, Vec::new, || {
                    format!(
                        "the record says {:?} but host-{} holds {truth:?} at the end of the drain",
                        r.status,
                        r.host + 1,
                    )
                });
            }
        }
        for (&(c, h), &truth) in &truths {
            if truth != Truth::Absent && placed.get(&c) != Some(&h) {
                sink.report(Invariant::Converges, c, end_us, Vec::new, || {
                    let record = placed.get(&c).map_or_else(
                        || "the store has no record of it".to_string(),
                        |p| format!("its record places it on host-{}", p + 1),
                    );
                    format!(
                        "host-{} holds the container ({truth:?}) but {record}",
                        h + 1
                    )
                });
            }
        }
    }
}

/// Whether a record's status says what the host holds.
fn agrees(status: Status, truth: Truth) -> bool {
    matches!(
        (status, truth),
        (Status::Created, Truth::Created)
            | (Status::Running, Truth::Running)
            | (Status::Stopped, Truth::Stopped)
            | (Status::Paused, Truth::Paused)
            | (Status::Deleted | Status::Absent, Truth::Absent)
    )
}
