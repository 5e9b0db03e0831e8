//! The history checker: judges DESIGN.md's nine invariants on the stream of events a simulated
//! run records, as they happen, then on a final snapshot of the store and the hosts taken at the
//! end of the drain.
//!
//! The simulator sees the truth at the hosts, so the checker judges the omniscient history:
//! [`Event::Applied`] says what each host did to each container and when, whatever the API or
//! the conductors believed.
//!
//! **Streaming, bounded memory.** Nothing is kept per event. Per `(container, host)` the checker
//! keeps a fixed-size state (its life — never created, created by which op and when, deleted by
//! which op and when —, the latest host interval seen, the highest sequence number applied;
//! each op kept with its host interval, so that a violation gives both ops' intervals) plus,
//! for `at-most-once`, a ring of the last [`CHANGERS_KEPT`] op ids that changed the container's
//! state at that host (cleared when a delete completes: a later op re-applied there is judged by
//! `no-use-after-delete` or `per-container-order` instead). An op re-applied after more than
//! [`CHANGERS_KEPT`] other state changes of its container escapes `at-most-once`: that is the
//! price of the bound. `no-lost-ops` keeps the blocking ops accepted and not yet answered
//! (in-flight work); async ops are judged by the store's op records at the end of the drain.
//! Memory therefore follows live containers and in-flight ops, not the length of the run. Each
//! invariant lists at most [`LISTED_PER_INVARIANT`] violations per seed and counts the rest.
//!
//! **Order.** Hosts record [`Event::Applied`] when an op ends there, right after changing the
//! container's truth, so the events of one host arrive in end order, which is also the order in
//! which the truth changed: `exclusive` only needs the latest end seen per container, and the
//! lifecycle follows the truth step by step.

use conductor::host::HostState;
use conductor::op::{HostError, OpKind, Status, Truth};
use conductor::proto::OpSpec;
use conductor::recorder::Event;
use conductor::store::StoreState;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};

/// Violations listed per invariant and seed; the rest are only counted.
pub const LISTED_PER_INVARIANT: usize = 20;

/// Op ids remembered per container and host for `at-most-once` (the last ones that changed its
/// state there).
pub const CHANGERS_KEPT: usize = 32;

/// One of DESIGN.md's invariants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Invariant {
    /// No op reaches a host for a container before its `create` completed there.
    CreateBeforeUse,
    /// Nothing but an idempotent `delete` reaches a container after its delete completed.
    NoUseAfterDelete,
    /// The host intervals of async ops on one container never overlap.
    Exclusive,
    /// The ops applied at the host follow their sequence numbers.
    PerContainerOrder,
    /// No op changes the host state twice.
    AtMostOnce,
    /// Every accepted op is terminal by the end of the drain: no async op's record is left
    /// non-terminal in the store, and every blocking op was answered by a conductor.
    NoLostOps,
    /// No record is left in a transient status or task_state by the end of the drain.
    NoStuckState,
    /// By the end of the drain every record agrees with its host's truth.
    Converges,
    /// No blocking op was ever a pool arrival.
    BlockingInline,
}

impl Invariant {
    /// Every invariant, in the order of DESIGN.md's table (and of `scenario::INVARIANTS`).
    pub const ALL: [Invariant; 9] = [
        Invariant::CreateBeforeUse,
        Invariant::NoUseAfterDelete,
        Invariant::Exclusive,
        Invariant::PerContainerOrder,
        Invariant::AtMostOnce,
        Invariant::NoLostOps,
        Invariant::NoStuckState,
        Invariant::Converges,
        Invariant::BlockingInline,
    ];

    /// The name used in scenarios and reports.
    pub fn name(self) -> &'static str {
        match self {
            Invariant::CreateBeforeUse => "create-before-use",
            Invariant::NoUseAfterDelete => "no-use-after-delete",
            Invariant::Exclusive => "exclusive",
            Invariant::PerContainerOrder => "per-container-order",
            Invariant::AtMostOnce => "at-most-once",
            Invariant::NoLostOps => "no-lost-ops",
            Invariant::NoStuckState => "no-stuck-state",
            Invariant::Converges => "converges",
            Invariant::BlockingInline => "blocking-inline",
        }
    }

    /// The invariant named `name`.
    pub fn from_name(name: &str) -> Option<Invariant> {
        Invariant::ALL.into_iter().find(|i| i.name() == name)
    }

    fn bit(self) -> u16 {
        1 << self as u16
    }
}

impl fmt::Display for Invariant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A name that is not an invariant.
#[derive(Debug, thiserror::Error)]
#[error("unknown invariant `{0}` (expected one of: create-before-use, no-use-after-delete, exclusive, per-container-order, at-most-once, no-lost-ops, no-stuck-state, converges, blocking-inline)")]
pub struct UnknownInvariant(pub String);

/// A set of invariants (the ones judged).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct InvariantSet(u16);

impl InvariantSet {
    /// Every invariant.
    pub fn all() -> Self {
        Invariant::ALL.into_iter().collect()
    }

    /// The invariants named in `names` (`"all"` stands for every one).
    ///
    /// # Errors
    /// [`UnknownInvariant`] for the first name that is neither an invariant nor `"all"`.
    pub fn from_names<S: AsRef<str>>(names: &[S]) -> Result<Self, UnknownInvariant> {
        let mut set = InvariantSet::default();
        for n in names {
            let n = n.as_ref();
            if n == "all" {
                return Ok(InvariantSet::all());
            }
            set.0 |= Invariant::from_name(n)
                .ok_or_else(|| UnknownInvariant(n.to_string()))?
                .bit();
        }
        Ok(set)
    }

    /// Whether `i` is in the set.
    pub fn contains(self, i: Invariant) -> bool {
        self.0 & i.bit() != 0
    }

    /// Whether the set is empty.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The invariants in the set, in table order.
    pub fn iter(self) -> impl Iterator<Item = Invariant> {
        Invariant::ALL
            .into_iter()
            .filter(move |i| self.contains(*i))
    }

    fn any(self, of: &[Invariant]) -> bool {
        of.iter().any(|i| self.contains(*i))
    }
}

impl FromIterator<Invariant> for InvariantSet {
    fn from_iter<T: IntoIterator<Item = Invariant>>(iter: T) -> Self {
        InvariantSet(iter.into_iter().fold(0, |s, i| s | i.bit()))
    }
}

/// Simulated time as the trace and the reports print it: seconds with six decimals, `12.345678s`.
pub fn sim_time(t_us: u64) -> String {
    format!("{}.{:06}s", t_us / 1_000_000, t_us % 1_000_000)
}

/// An op a violation involves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpRef {
    /// The op id.
    pub id: u64,
    /// Its kind.
    pub kind: OpKind,
    /// Its sequence number (0 for blocking ops).
    pub seq: u64,
}

impl OpRef {
    fn of(op: &OpSpec, seq: u64) -> Self {
        OpRef {
            id: op.id,
            kind: op.kind,
            seq,
        }
    }
}

/// A host interval `[start_us, end_us)`, µs of simulated time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    /// When the op began at the host.
    pub start_us: u64,
    /// When it ended there.
    pub end_us: u64,
}

/// An op a violation involves, with its host interval where the checker knows it: for the
/// invariants judged on what the hosts did (`create-before-use`, `no-use-after-delete`,
/// `exclusive`, `per-container-order`, `at-most-once`); not for the end-of-drain ones nor
/// `blocking-inline`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Involved {
    /// The op.
    pub op: OpRef,
    /// Its interval at the host, if known.
    pub span: Option<Span>,
}

impl From<OpRef> for Involved {
    fn from(op: OpRef) -> Self {
        Involved { op, span: None }
    }
}

/// An op applied at a host, with its interval there: what the checker keeps of the ops it may
/// name later, so that a violation can show both ops' intervals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Seen {
    op: OpRef,
    span: Span,
}

impl Seen {
    fn involved(self) -> Involved {
        Involved {
            op: self.op,
            span: Some(self.span),
        }
    }
}

impl fmt::Display for Seen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.op.fmt(f)
    }
}

impl fmt::Display for OpRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "op {} ({} seq {})", self.id, self.kind, self.seq)
    }
}

/// One broken invariant: where, when, which ops.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// The invariant.
    pub invariant: Invariant,
    /// The seed of the run.
    pub seed: u64,
    /// The container.
    pub container: u64,
    /// When it was seen, µs of simulated time (for end-of-drain judgments, the end of the run).
    pub t_us: u64,
    /// The ops involved, earliest first, with their host intervals where known.
    pub ops: Vec<Involved>,
    /// One line saying what happened.
    pub detail: String,
}

impl Violation {
    /// The violation as `report.json` and `explore.json` hold it (an object with an
    /// `"invariant"` key). Each op is `{"id", "kind", "seq"}`, plus `"start_us"` and
    /// `"end_us"` (its host interval) where the checker knows it.
    pub fn to_json(&self) -> serde_json::Value {
        let ops: Vec<serde_json::Value> = self
            .ops
            .iter()
            .map(|o| {
                let mut j =
                    serde_json::json!({"id": o.op.id, "kind": o.op.kind.name(), "seq": o.op.seq});
                if let (Some(s), Some(m)) = (o.span, j.as_object_mut()) {
                    m.insert("start_us".into(), s.start_us.into());
                    m.insert("end_us".into(), s.end_us.into());
                }
                j
            })
            .collect();
        serde_json::json!({
            "invariant": self.invariant.name(),
            "seed": self.seed,
            "container": self.container,
            "t_us": self.t_us,
            "time": sim_time(self.t_us),
            "ops": ops,
            "detail": self.detail,
        })
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} container {}: {}",
            sim_time(self.t_us),
            self.invariant,
            self.container,
            self.detail
        )
    }
}

/// A container record at the end of the drain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FinalRecord {
    /// The container.
    pub container: u64,
    /// Its status.
    pub status: Status,
    /// Its task_state, if one is set.
    pub task_state: Option<&'static str>,
    /// The host its record places it on.
    pub host: u32,
}

/// An op record still non-terminal at the end of the drain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FinalOp {
    /// The op.
    pub op: OpSpec,
    /// Its sequence number.
    pub seq: u64,
    /// Its state, as the store names it (e.g. `Executing`).
    pub state: String,
    /// The conductor (index) that owns it, if any.
    pub owner: Option<u32>,
}

/// The store and the hosts at the end of the drain: what the liveness invariants judge.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// Every container record, in container order.
    pub records: Vec<FinalRecord>,
    /// The non-terminal op records, in op id order.
    pub ops: Vec<FinalOp>,
    /// Every container a host holds, as `(host index, container, truth)`.
    pub truths: Vec<(u32, u64, Truth)>,
}

impl Snapshot {
    /// Reads the store's records and every host's truths (host index = position in `hosts`).
    pub fn capture(store: &StoreState, hosts: &[&HostState]) -> Self {
        Snapshot {
            records: store
                .containers()
                .map(|(id, c)| FinalRecord {
                    container: id,
                    status: c.status,
                    task_state: c.task_state,
                    host: c.host,
                })
                .collect(),
            ops: store
                .ops()
                .map(|r| FinalOp {
                    op: r.op,
                    seq: r.seq,
                    state: format!("{:?}", r.state),
                    owner: r.owner,
                })
                .collect(),
            truths: hosts
                .iter()
                .enumerate()
                .flat_map(|(h, st)| st.containers().map(move |(c, t)| (h as u32, c, t)))
                .collect(),
        }
    }
}

/// A cheap, fixed hash of integer keys (FxHash's multiply-rotate): the checker looks a map up
/// on most events, and SipHash would cost more than the judgment. No order of these maps
/// reaches the output: what is reported from them is sorted first.
#[derive(Debug, Default, Clone, Copy)]
struct IdHasher(u64);

impl IdHasher {
    fn add(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.add(u64::from(*b));
        }
    }
    fn write_u32(&mut self, n: u32) {
        self.add(u64::from(n));
    }
    fn write_u64(&mut self, n: u64) {
        self.add(n);
    }
}

type IdMap<K, V> = HashMap<K, V, BuildHasherDefault<IdHasher>>;

/// Where a container stands at one host, as far as the history shows.
#[derive(Debug, Clone, Copy, Default)]
enum Life {
    /// No create ever completed there.
    #[default]
    Never,
    /// It exists since the end of `by`, its create (`None`: pre-created before the run).
    Exists { by: Option<Seen> },
    /// Its delete `by` completed (at the end of its span).
    Deleted { by: Seen },
}

/// What the checker keeps per container and host.
#[derive(Debug, Default)]
struct Cs {
    life: Life,
    /// `exclusive`: the op with the latest end among the async host intervals seen.
    last: Option<Seen>,
    /// `per-container-order`: the op with the highest sequence number applied.
    top: Option<Seen>,
    /// `at-most-once`: the last op ids that changed the state (a ring, allocated on first use).
    changers: Vec<u64>,
    /// Where the next changer goes once the ring is full.
    ring_at: u8,
}

impl Cs {
    /// Remembers that `id` changed the state; false when it had already.
    fn changed_by(&mut self, id: u64) -> bool {
        if self.changers.contains(&id) {
            return false;
        }
        if self.changers.len() < CHANGERS_KEPT {
            self.changers.push(id);
        } else {
            self.changers[self.ring_at as usize] = id;
            self.ring_at = ((self.ring_at as usize + 1) % CHANGERS_KEPT) as u8;
        }
        true
    }
}

/// An accepted blocking op not yet answered.
#[derive(Debug, Clone, Copy)]
struct Pending {
    op: OpRef,
    container: u64,
    accepted_us: u64,
}

/// The violations of one invariant: the first ones, and how many there were in all.
#[derive(Debug, Default, Clone)]
struct Found {
    listed: Vec<Violation>,
    total: u64,
}

/// What the checker found in one seed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Findings {
    /// The listed violations: by invariant in table order, then in the order found.
    pub violations: Vec<Violation>,
    /// Violations found per invariant name, listed or not (only invariants with some).
    pub counts: BTreeMap<String, u64>,
}

/// The streaming checker of one seed. Feed it [`precreated`](Checker::precreated) containers,
/// then every event with [`observe`](Checker::observe), then the final state with
/// [`finish`](Checker::finish).
#[derive(Debug)]
pub struct Checker {
    on: InvariantSet,
    /// Whether any invariant judged on `Applied` events is on.
    host_checks: bool,
    containers: IdMap<(u64, u32), Cs>,
    pending: IdMap<u64, Pending>,
    /// Containers whose create was accepted and is not yet terminal (container → op id): a
    /// delete reaching the host before such a create completed is the "delete during create"
    /// race; one reaching a container whose create is over (failed, never applied) is a
    /// legitimate clean-up.
    creating: IdMap<u64, u64>,
    sink: Sink,
}

/// Where violations go: a field of its own, so that it can be written while a container's
/// state is borrowed.
#[derive(Debug)]
struct Sink {
    seed: u64,
    on: InvariantSet,
    found: [Found; 9],
    /// When set, every violation is also queued in `fresh` (for a trace).
    echo: bool,
    fresh: Vec<Violation>,
}

impl Sink {
    /// Counts a violation of `invariant` (if judged), and keeps it if it is among the first
    /// ones or a trace wants it; `detail` is only built then.
    fn report(
        &mut self,
        invariant: Invariant,
        container: u64,
        t_us: u64,
        ops: impl FnOnce() -> Vec<Involved>,
        detail: impl FnOnce() -> String,
    ) {
        if !self.on.contains(invariant) {
            return;
        }
        let f = &mut self.found[invariant as usize];
        f.total += 1;
        let keep = f.listed.len() < LISTED_PER_INVARIANT;
        if !keep && !self.echo {
            return;
        }
        let v = Violation {
            invariant,
            seed: self.seed,
            container,
            t_us,
            ops: ops(),
            detail: detail(),
        };
        if self.echo {
            self.fresh.push(v.clone());
        }
        if keep {
            f.listed.push(v);
        }
    }
}

const HOST_CHECKS: [Invariant; 5] = [
    Invariant::CreateBeforeUse,
    Invariant::NoUseAfterDelete,
    Invariant::Exclusive,
    Invariant::PerContainerOrder,
    Invariant::AtMostOnce,
];

impl Checker {
    /// A checker of the invariants `on` for the run of `seed`.
    pub fn new(seed: u64, on: InvariantSet) -> Self {
        Checker {
            on,
            host_checks: on.any(&HOST_CHECKS),
            containers: IdMap::default(),
            pending: IdMap::default(),
            creating: IdMap::default(),
            sink: Sink {
                seed,
                on,
                found: Default::default(),
                echo: false,
                fresh: Vec::new(),
            },
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
        let lost = self.on.contains(Invariant::NoLostOps);
        if self.host_checks {
            match *ev {
                Event::Accepted { op, .. } if op.kind == OpKind::Create => {
                    self.creating.insert(op.container, op.id);
                }
                Event::Terminal { op, .. }
                    if op.kind == OpKind::Create
                        && self.creating.get(&op.container) == Some(&op.id) =>
                {
                    self.creating.remove(&op.container);
                }
                _ => {}
            }
        }
        match *ev {
            // Async ops are judged by their store records at the end (a conductor killed
            // between its final write and its report leaves an op terminal in the store with
            // no `Terminal` event); blocking ops have no record, only their answer.
            Event::Accepted { op, seq } if lost && op.kind.is_blocking() => {
                self.pending.insert(
                    op.id,
                    Pending {
                        op: OpRef::of(&op, seq),
                        container: op.container,
                        accepted_us: now_us,
                    },
                );
            }
            Event::Terminal { op, .. } if lost && op.kind.is_blocking() => {
                self.pending.remove(&op.id);
            }
            Event::PoolArrival { conductor, op, .. } if op.kind.is_blocking() => {
                self.sink.report(
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
            Event::Applied {
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
            } if self.host_checks => {
                self.applied(&Applied {
                    host,
                    conductor,
                    attempt,
                    op,
                    seq,
                    start_us,
                    end_us,
                    before,
                    result,
                });
            }
            _ => {}
        }
    }

    fn applied(&mut self, a: &Applied) {
        // A stale token refused before anything was touched: the fencing did its job.
        if a.result == Err(HostError::Fenced) {
            return;
        }
        let me = Seen {
            op: OpRef::of(&a.op, a.seq),
            span: Span {
                start_us: a.start_us,
                end_us: a.end_us,
            },
        };
        let (c, t) = (a.op.container, a.end_us);
        let create_pending = self.creating.contains_key(&c);
        let sink = &mut self.sink;
        let cs = self.containers.entry((c, a.host)).or_default();
        // Lifecycle: create-before-use and no-use-after-delete.
        if a.op.kind == OpKind::Create {
            if let Life::Deleted { by } = cs.life {
                if a.seq < by.op.seq {
                    sink.report(Invariant::NoUseAfterDelete, c, t, || vec![by.involved(), me.involved()], || {
                        format!(
                            "{}, sent before {by}, reached {} after that delete completed at {} ({})",
                            a.describe(),
                            a.host_name(),
                            sim_time(by.span.end_us),
                            a.outcome()
                        )
                    });
                }
            }
            if a.before == Truth::Absent && a.result == Ok(Truth::Created) {
                cs.life = Life::Exists { by: Some(me) };
            }
        } else {
            match cs.life {
                // Deleting a container whose create is over without creating it is a 304.
                Life::Never if a.op.kind == OpKind::Delete && !create_pending => {}
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
                Life::Deleted { by } if a.op.kind != OpKind::Delete => sink.report(
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
                ),
                _ => {}
            }
            if a.op.kind == OpKind::Delete
                && a.before != Truth::Absent
                && a.result == Ok(Truth::Absent)
            {
                cs.life = Life::Deleted { by: me };
                // A new incarnation starts afresh; an old op re-applied to it is judged by
                // the order of sequence numbers.
                cs.changers = Vec::new();
                cs.ring_at = 0;
            }
        }
        if !a.op.kind.is_blocking() {
            // exclusive: events come in end order, so the interval overlaps an earlier one
            // exactly when it starts before the latest end seen.
            if let Some(prev) = cs.last {
                if a.start_us < prev.span.end_us {
                    let until = prev.span.end_us;
                    sink.report(Invariant::Exclusive, c, t, || vec![prev.involved(), me.involved()], || {
                        format!(
                            "{} ran at {} over [{}, {}) while {prev} was still running there (until {})",
                            a.describe(),
                            a.host_name(),
                            sim_time(a.start_us),
                            sim_time(a.end_us),
                            sim_time(until)
                        )
                    });
                }
            }
            if cs.last.is_none_or(|l| a.end_us >= l.span.end_us) {
                cs.last = Some(me);
            }
            if a.result.is_ok() {
                match cs.top {
                    Some(top) if a.seq < top.op.seq => sink.report(
                        Invariant::PerContainerOrder,
                        c,
                        t,
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
                    _ => cs.top = Some(me),
                }
            }
        }
        if let Ok(after) = a.result {
            if after != a.before && !cs.changed_by(a.op.id) {
                sink.report(
                    Invariant::AtMostOnce,
                    c,
                    t,
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

    /// Judges the end of the drain at `end_us`: the accepted ops never terminal, and the
    /// store's records against the hosts' truths.
    pub fn finish(&mut self, end_us: u64, snap: &Snapshot) {
        let on = self.on;
        let sink = &mut self.sink;
        if on.contains(Invariant::NoLostOps) {
            // One list in op id order: the blocking ops never answered and the op records still
            // non-terminal in the store (the report's order must not depend on the hash map's).
            let mut lost: BTreeMap<u64, Result<Pending, &FinalOp>> =
                std::mem::take(&mut self.pending)
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
        if on.contains(Invariant::NoStuckState) {
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
        if on.contains(Invariant::Converges) {
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

    /// What was found: listed violations in table order, and the counts.
    pub fn findings(&self) -> Findings {
        let mut out = Findings::default();
        for i in Invariant::ALL {
            let f = &self.sink.found[i as usize];
            out.violations.extend(f.listed.iter().cloned());
            if f.total > 0 {
                out.counts.insert(i.name().to_string(), f.total);
            }
        }
        out
    }
}

fn describe_op_record(r: &FinalOp) -> String {
    match r.owner {
        Some(o) => format!("{} (owner conductor-{})", r.state, o + 1),
        None => format!("{} (no owner)", r.state),
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

/// The fields of an [`Event::Applied`] the checker reads.
struct Applied {
    host: u32,
    conductor: u32,
    attempt: u32,
    op: OpSpec,
    seq: u64,
    start_us: u64,
    end_us: u64,
    before: Truth,
    result: Result<Truth, HostError>,
}

impl Applied {
    fn describe(&self) -> String {
        format!(
            "op {} ({} seq {}, attempt {}, from conductor-{})",
            self.op.id,
            self.op.kind,
            self.seq,
            self.attempt,
            self.conductor + 1
        )
    }

    fn host_name(&self) -> String {
        format!("host-{}", self.host + 1)
    }

    fn outcome(&self) -> String {
        match self.result {
            Ok(after) if after == self.before => format!("no-op in {after:?}"),
            Ok(after) => format!("{:?} -> {after:?}", self.before),
            Err(e) => format!("refused in {:?}: {e:?}", self.before),
        }
    }
}

#[cfg(test)]
mod tests;
