//! The bookkeeping the invariants share: the op a host applied as the checker reads it
//! ([`HostOp`]), an op kept with its host interval ([`Seen`]), where a container stands at a
//! host ([`Life`]), and the cheap hash of the checker's maps.

use crate::violation::{Involved, OpRef, Span};
use conductor::op::{HostError, OpKind, Truth};
use conductor::proto::OpSpec;
use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};

/// A cheap, fixed hash of integer keys (FxHash's multiply-rotate): the checker looks a map up
/// on most events, and SipHash would cost more than the judgment. No order of these maps
/// reaches the output: what is reported from them is sorted first.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct IdHasher(u64);

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

/// A hash map keyed by ids, with [`IdHasher`].
pub(crate) type IdMap<K, V> = HashMap<K, V, BuildHasherDefault<IdHasher>>;

/// An op applied at a host, with its interval there: what the checker keeps of the ops it may
/// name later, so that a violation can show both ops' intervals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Seen {
    pub(crate) op: OpRef,
    pub(crate) span: Span,
}

impl Seen {
    /// The op as a violation names it, with its interval.
    pub(crate) fn involved(self) -> Involved {
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

/// Where a container stands at one host, as far as the history shows.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) enum Life {
    /// No create ever completed there.
    #[default]
    Never,
    /// It exists since the end of `by`, its create (`None`: pre-created before the run).
    Exists { by: Option<Seen> },
    /// Its delete `by` completed (at the end of its span).
    Deleted { by: Seen },
}

impl Life {
    /// Follows the container's truth through `a`, judged already: a create that created it,
    /// a delete that removed it.
    pub(crate) fn follow(&mut self, a: &HostOp) {
        if a.op.kind == OpKind::Create {
            if a.before == Truth::Absent && a.result == Ok(Truth::Created) {
                *self = Life::Exists { by: Some(a.me) };
            }
        } else if a.completes_delete() {
            *self = Life::Deleted { by: a.me };
        }
    }
}

/// An op as a host applied it: the fields of an [`Event::Applied`](conductor::recorder::Event)
/// the checker reads, and the op kept with its interval (`me`).
pub(crate) struct HostOp {
    pub(crate) host: u32,
    pub(crate) conductor: u32,
    pub(crate) attempt: u32,
    pub(crate) op: OpSpec,
    pub(crate) seq: u64,
    pub(crate) start_us: u64,
    pub(crate) end_us: u64,
    pub(crate) before: Truth,
    pub(crate) result: Result<Truth, HostError>,
    /// The op with its host interval, as a later violation would name it.
    pub(crate) me: Seen,
}

impl HostOp {
    /// Whether this is a delete that removed the container from the host.
    pub(crate) fn completes_delete(&self) -> bool {
        self.op.kind == OpKind::Delete
            && self.before != Truth::Absent
            && self.result == Ok(Truth::Absent)
    }

    /// The op as a violation's detail describes it.
    pub(crate) fn describe(&self) -> String {
        format!(
            "op {} ({} seq {}, attempt {}, from conductor-{})",
            self.op.id,
            self.op.kind,
            self.seq,
            self.attempt,
            self.conductor + 1
        )
    }

    /// The host, as the trace names it.
    pub(crate) fn host_name(&self) -> String {
        format!("host-{}", self.host + 1)
    }

    /// What the op did to the container there.
    pub(crate) fn outcome(&self) -> String {
        match self.result {
            Ok(after) if after == self.before => format!("no-op in {after:?}"),
            Ok(after) => format!("{:?} -> {after:?}", self.before),
            Err(e) => format!("refused in {:?}: {e:?}", self.before),
        }
    }
}
