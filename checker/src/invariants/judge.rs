//! What each invariant of the registry provides: its facts ([`Spec`]) and its judging code
//! ([`Judge`]), the hooks the checker calls.

use crate::snapshot::Snapshot;
use crate::state::{HostOp, Life};
use crate::violation::Sink;
use conductor::recorder::Event;
use std::fmt::Debug;

conductor::keyword_enum! {
    /// When an invariant is judged, and so what a history must hold to judge it.
    pub enum Kind, "an invariant kind" {
        /// Nothing bad ever happens: judged on every event as it is recorded; a violation is a
        /// moment of the history.
        Safety = "safety",
        /// Something good eventually happens: judged once, at the end of the drain, on the
        /// final state of the store and the hosts (a [`Snapshot`]).
        Liveness = "liveness",
    }
}

/// The facts of one invariant, as the registry lists them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Spec {
    /// Its name in scenarios (`[checks]`), reports and on the command line.
    pub name: &'static str,
    /// Its name in narrow tables (the design matrix's columns).
    pub short: &'static str,
    /// Safety or liveness.
    pub kind: Kind,
    /// What it means, when it is judged, how it breaks.
    pub doc: &'static str,
}

/// The judging code of one invariant: its facts, the state it keeps and the hooks the checker
/// calls, each invariant's in the registry's order. A hook is only called while its invariant
/// is judged, and does nothing unless the invariant overrides it; the registry's macro calls
/// each by its type, so dispatch is static and an unused hook costs nothing.
pub(crate) trait Judge {
    /// Its facts.
    const SPEC: Spec;
    /// Whether it is judged on what the hosts did ([`applied`](Judge::applied)): the checker
    /// keeps state per container and host only while one such invariant is judged.
    const ON_HOSTS: bool = false;
    /// What it keeps over the whole history (`()` if nothing).
    type Run: Default + Debug;
    /// What it keeps per container and host (`()` if nothing): one lives in every
    /// container's state for the whole run, so keep it small.
    type PerHost: Default + Debug;

    /// Every event, as it is recorded at `now_us` (an [`Event::Applied`] too, before
    /// [`applied`](Judge::applied)).
    #[inline(always)]
    fn event(_run: &mut Self::Run, _now_us: u64, _ev: &Event, _sink: &mut Sink) {}

    /// An op a host applied or refused (not a fenced refusal: the fencing did its job), with
    /// the container's `life` at that host before it; `mine` is this invariant's state for
    /// the container and host. The events of one host come in the order their ops ended.
    #[inline(always)]
    fn applied(
        _run: &Self::Run,
        _mine: &mut Self::PerHost,
        _life: &Life,
        _a: &HostOp,
        _sink: &mut Sink,
    ) {
    }

    /// The end of the drain at `end_us`, with the final state of the store and the hosts.
    #[inline(always)]
    fn finish(_run: &mut Self::Run, _end_us: u64, _snap: &Snapshot, _sink: &mut Sink) {}
}
