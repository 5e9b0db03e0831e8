//! What the services report about themselves. Under simulation the recorder feeds metrics and
//! the history in memory; for real, [`JsonLines`] writes one JSON object per event (which the
//! checker reads back: events deserialise).

use crate::cancel::Cancelled;
use crate::idempotency::KeyReuse;
use crate::op::{HostError, Status, Truth};
use crate::proto::OpSpec;
use crate::rpc::lock;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

/// One thing a service did. Times are µs on the recorder's clock, from [`Recorder::now_us`]
/// (since the run's start under simulation, since the UNIX epoch for [`JsonLines`]).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// The API accepted and persisted an op.
    Accepted {
        /// The op.
        op: OpSpec,
        /// Its sequence number.
        seq: u64,
    },
    /// The API refused an op (409, or the store was unreachable).
    Rejected {
        /// The op.
        op: OpSpec,
    },
    /// The API answered a request by its key (its op id, [`crate::idempotency`]) without
    /// running anything: the stored answer of the op first sent under that id (`refused:
    /// None`), or a refusal (the op still in flight, or the id naming another op). Only a
    /// client that re-sends an id (`client.retry_same_op`) causes it.
    Deduplicated {
        /// The request as sent.
        op: OpSpec,
        /// Why it was refused, `None` when the stored answer was given again.
        refused: Option<KeyReuse>,
    },
    /// An op tried to take a pool worker.
    PoolArrival {
        /// Conductor index.
        conductor: u32,
        /// The op (a blocking op here breaks `blocking-inline`).
        op: OpSpec,
        /// Whether every worker was busy.
        exhausted: bool,
    },
    /// A conductor's busy pool workers changed to `busy`.
    PoolBusy {
        /// Conductor index.
        conductor: u32,
        /// Workers now busy.
        busy: u32,
    },
    /// A conductor's busy RPC slots changed to `busy`.
    RpcBusy {
        /// Conductor index.
        conductor: u32,
        /// Slots now busy.
        busy: u32,
    },
    /// An RPC slot ran an async op itself (`caller-runs` on exhaustion).
    CallerRuns {
        /// Conductor index.
        conductor: u32,
    },
    /// An op released the worker (or slot) that ran it after holding it `hold_us`.
    Hold {
        /// Conductor index.
        conductor: u32,
        /// Host call plus the store writes around it.
        hold_us: u64,
    },
    /// An RPC slot took a message that had waited `wait_us` in the conductor's backlog.
    BacklogWait {
        /// Conductor index.
        conductor: u32,
        /// The wait.
        wait_us: u64,
    },
    /// An op became terminal (async: its final store write; blocking: its answer).
    Terminal {
        /// The op.
        op: OpSpec,
        /// Done (true) or failed.
        ok: bool,
    },
    /// A host applied (or refused) an op; `start_us..end_us` is its interval at the host.
    Applied {
        /// Host index.
        host: u32,
        /// The conductor that sent it.
        conductor: u32,
        /// Which attempt of the op this is (1 for the first; re-issues count up).
        attempt: u32,
        /// The fencing token it carried (0: none).
        token: u64,
        /// The op.
        op: OpSpec,
        /// Its sequence number.
        seq: u64,
        /// When the host began it.
        start_us: u64,
        /// When it ended.
        end_us: u64,
        /// The container's state before.
        before: Truth,
        /// The outcome: the state after, or the refusal.
        result: Result<Truth, HostError>,
    },
    /// `state-check`: an op found an earlier op of its container not terminal and goes back to
    /// the bus for another attempt after `delay_us`.
    NotReady {
        /// Conductor index.
        conductor: u32,
        /// The op.
        op: OpSpec,
        /// Its sequence number.
        seq: u64,
        /// The attempt that was not ready (1 for the first).
        attempt: u32,
        /// The not-before delay of the next attempt.
        delay_us: u64,
    },
    /// An op was given up without running: `state-check` ran out of attempts or retry budget,
    /// or its container is in Error.
    GaveUp {
        /// Conductor index.
        conductor: u32,
        /// The op.
        op: OpSpec,
        /// Its sequence number.
        seq: u64,
        /// Attempts made.
        attempts: u32,
    },
    /// A conductor that started found an op it owned unfinished and acted on it (restart
    /// recovery, `recovery = "zun"`).
    Recovered {
        /// Conductor index.
        conductor: u32,
        /// The op.
        op: OpSpec,
        /// Its sequence number.
        seq: u64,
        /// What it did.
        action: Recovery,
    },
    /// The reconciler found a record disagreeing with its host and repaired it.
    Reconciled {
        /// Conductor index.
        conductor: u32,
        /// The container.
        container: u64,
        /// The record's status before.
        from: Status,
        /// The status written (from the host's truth).
        to: Status,
    },
    /// The orphan sweeper dispatched again an op no live conductor owned.
    Orphaned {
        /// Conductor index (the sweeper's).
        conductor: u32,
        /// The op.
        op: OpSpec,
        /// Its sequence number.
        seq: u64,
    },
    /// A conductor waited for a container's lock (`local-lock*`, `distributed-lock`).
    LockWait {
        /// Conductor index.
        conductor: u32,
        /// The op.
        op: OpSpec,
        /// How long it waited.
        wait_us: u64,
    },
    /// An op was cancelled unrun because its client had stopped waiting (`client.cancel`): its
    /// record is terminal in the store; a `Terminal` (failed) event follows. Recorded by the
    /// conductor that dropped it past its deadline, or by the publisher its expired message was
    /// dead-lettered to.
    Cancelled {
        /// The conductor that cancelled it (`None`: the API, its expired message's publisher).
        conductor: Option<u32>,
        /// The op.
        op: OpSpec,
        /// Its sequence number.
        seq: u64,
        /// Why.
        why: Cancelled,
    },
    /// A real process's TCP links delivered `delivered` frames to their readers since its
    /// previous `Frames` event (written every 250 ms and at a clean stop). The simulator never
    /// records it: it counts its network's deliveries itself.
    Frames {
        /// Frames delivered since the previous report.
        delivered: u64,
    },
}

/// What restart recovery did with an unfinished op (Zun's `_init_container`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Recovery {
    /// A create left half-done: the container goes to Error.
    MarkedError,
    /// A delete left half-done: deleted again, forcibly.
    ForceDeleted,
    /// Issued again (starting, stopping, …).
    Reissued,
    /// Not issued again: a later op of the container has started; the op fails.
    Superseded,
}

/// The interface through which services report events. Implementations must be cheap: it is
/// called several times per op.
pub trait Recorder: Send + Sync + 'static {
    /// Now, in µs since the run's start (since the UNIX epoch for [`JsonLines`]).
    fn now_us(&self) -> u64;
    /// Records one event.
    fn record(&self, ev: Event);
}

/// A shared recorder handle.
pub type SharedRecorder = Arc<dyn Recorder>;

/// A clock reading µs, handed to a service that needs the services' time without a recorder
/// (the bus's TTLs, the store's leases).
pub type Clock = Arc<dyn Fn() -> u64 + Send + Sync>;

/// Wall-clock µs since the UNIX epoch: the real services' common time base (a clock set before
/// 1970 reads as 0 rather than failing the service).
pub fn wall_clock_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// A recorder that writes JSON lines (real mode): `{"t_us":…,"node":…,"event":…}`. Its time
/// ([`now_us`](Recorder::now_us), `t_us` and the times inside events) is wall-clock µs since the
/// UNIX epoch, so that the logs of several processes merge on one time base.
pub struct JsonLines {
    node: String,
    out: Mutex<Box<dyn Write + Send>>,
}

impl JsonLines {
    /// Records to `out`, tagging each line with `node`.
    pub fn new(node: impl Into<String>, out: Box<dyn Write + Send>) -> Self {
        JsonLines {
            node: node.into(),
            out: Mutex::new(out),
        }
    }
}

impl Recorder for JsonLines {
    fn now_us(&self) -> u64 {
        wall_clock_us()
    }

    fn record(&self, ev: Event) {
        self.write(&ev);
    }
}

impl JsonLines {
    /// Writes one line `{"t_us":…,"node":…, …body}` stamped now: an event, or another record
    /// of the same log (the final state a real store or host writes when it stops). `body`
    /// must serialise as a map.
    pub fn write<T: Serialize>(&self, body: &T) {
        #[derive(Serialize)]
        struct Line<'a, T> {
            t_us: u64,
            node: &'a str,
            #[serde(flatten)]
            body: &'a T,
        }
        let line = Line {
            t_us: self.now_us(),
            node: &self.node,
            body,
        };
        if let Ok(s) = serde_json::to_string(&line) {
            let mut out = lock(&self.out);
            let _ = writeln!(out, "{s}");
            let _ = out.flush();
        }
    }
}

/// A recorder that drops everything (for services nobody observes).
pub struct Null;

impl Recorder for Null {
    fn now_us(&self) -> u64 {
        0
    }
    fn record(&self, _ev: Event) {}
}
