//! The streaming checker of one history: feeds every event to the invariants judged, in the
//! registry's order, and keeps per (container, host) the state they share and their own.

use crate::invariants::{PerHost, Runs};
use crate::state::{HostOp, IdMap, Life, Seen};
use crate::violation::{Findings, OpRef, Sink, Span, Violation};
use crate::{Invariant, InvariantSet, Snapshot};
use conductor::op::{HostError, Truth};
use conductor::recorder::Event;

/// The streaming checker of one seed. Feed it [`precreated`](Checker::precreated) containers,
/// then every event with [`observe`](Checker::observe), then the final state with
/// [`finish`](Checker::finish).
#[derive(Debug)]
pub struct Checker {
    on: InvariantSet,
    /// Whether any invariant judged on `Applied` events is on.
    host_checks: bool,
    containers: IdMap<(u64, u32), PerHost>,
    runs: Runs,
    sink: Sink,
}

impl Checker {
    /// A checker of the invariants `on` for the run of `seed`.
    pub fn new(seed: u64, on: InvariantSet) -> Self {
        Checker {
            on,
            host_checks: !on.and(Invariant::ON_HOSTS).is_empty(),
            containers: IdMap::default(),
            runs: Runs::default(),
            sink: Sink::new(seed, on),
        }
    }

    /// The invariants judged.
    pub fn invariants(&self) -> InvariantSet {
        self.on
    }

    /// Also queues every violation for [`take_fresh`](Checker::take_fresh) (a trace prints
    /// them as they are found).
    pub fn echo(&mut self, on: bool) {
        self.sink.echo = on;
    }

    /// The violations found since the last call (only with [`echo`](Checker::echo) on).
    pub fn take_fresh(&mut self) -> Vec<Violation> {
        std::mem::take(&mut self.sink.fresh)
    }

    /// Whether violations are waiting in [`take_fresh`](Checker::take_fresh).
    pub fn has_fresh(&self) -> bool {
        !self.sink.fresh.is_empty()
    }

    /// A container that exists before the run starts, at `host`, in state `truth`.
    pub fn precreated(&mut self, container: u64, host: u32, truth: Truth) {
        if !self.host_checks || truth == Truth::Absent {
            return;
        }
        self.containers.entry((container, host)).or_default().life = Life::Exists { by: None };
    }

    /// Judges one event recorded at `now_us`.
    pub fn observe(&mut self, now_us: u64, ev: &Event) {
        self.runs.event(self.on, now_us, ev, &mut self.sink);
        if let Event::Applied {
            host,
            conductor,
            attempt,
            op,
            seq,
            start_us,
            end_us,
            before,
            result,
            ..
        } = *ev
        {
            // A stale token refused before anything was touched: the fencing did its job.
            if !self.host_checks || result == Err(HostError::Fenced) {
                return;
            }
            let a = HostOp {
                host,
                conductor,
                attempt,
                op,
                seq,
                start_us,
                end_us,
                before,
                result,
                me: Seen {
                    op: OpRef::of(&op, seq),
                    span: Span { start_us, end_us },
                },
            };
            let cs = self.containers.entry((op.container, host)).or_default();
            self.runs.applied(self.on, cs, &a, &mut self.sink);
        }
    }

    /// Judges the end of the drain at `end_us`: the accepted ops never terminal, and the
    /// store's records against the hosts' truths.
    pub fn finish(&mut self, end_us: u64, snap: &Snapshot) {
        self.runs.finish(self.on, end_us, snap, &mut self.sink);
    }

    /// What was found: listed violations in table order, and the counts.
    pub fn findings(&self) -> Findings {
        self.sink.findings()
    }
}
