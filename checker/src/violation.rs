//! What the checker reports: a broken invariant ([`Violation`]), the ops it involves with their
//! host intervals, and the findings of one history ([`Findings`]), kept by a [`Sink`] that lists
//! the first [`LISTED_PER_INVARIANT`] violations of each invariant and counts the rest.

use crate::Invariant;
use conductor::op::OpKind;
use conductor::proto::OpSpec;
use std::collections::BTreeMap;
use std::fmt;

/// Violations listed per invariant and seed; the rest are only counted.
pub const LISTED_PER_INVARIANT: usize = 20;

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
    pub(crate) fn of(op: &OpSpec, seq: u64) -> Self {
        OpRef {
            id: op.id,
            kind: op.kind,
            seq,
        }
    }
}

impl fmt::Display for OpRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "op {} ({} seq {})", self.id, self.kind, self.seq)
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

/// What the checker found in one seed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Findings {
    /// The listed violations: by invariant in table order, then in the order found.
    pub violations: Vec<Violation>,
    /// Violations found per invariant name, listed or not (only invariants with some).
    pub counts: BTreeMap<String, u64>,
}

/// The violations of one invariant: the first ones, and how many there were in all.
#[derive(Debug, Default, Clone)]
pub(crate) struct Found {
    listed: Vec<Violation>,
    total: u64,
}

/// Where violations go: apart from the invariants' state, so that it can be written while a
/// container's state is borrowed.
#[derive(Debug)]
pub(crate) struct Sink {
    seed: u64,
    on: crate::InvariantSet,
    found: [Found; Invariant::COUNT],
    /// When set, every violation is also queued in `fresh` (for a trace).
    pub(crate) echo: bool,
    pub(crate) fresh: Vec<Violation>,
}

impl Sink {
    /// A sink for the run of `seed` that keeps the violations of the invariants `on`.
    pub(crate) fn new(seed: u64, on: crate::InvariantSet) -> Self {
        Sink {
            seed,
            on,
            found: Default::default(),
            echo: false,
            fresh: Vec::new(),
        }
    }

    /// Counts a violation of `invariant` (if judged), and keeps it if it is among the first
    /// ones or a trace wants it; `detail` is only built then.
    pub(crate) fn report(
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

    /// What was found: listed violations in table order, and the counts.
    pub(crate) fn findings(&self) -> Findings {
        let mut out = Findings::default();
        for i in Invariant::ALL {
            let f = &self.found[i as usize];
            out.violations.extend(f.listed.iter().cloned());
            if f.total > 0 {
                out.counts.insert(i.name().to_string(), f.total);
            }
        }
        out
    }
}
