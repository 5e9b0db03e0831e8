//! The messages the services exchange. One enum for every link keeps the codec single and lets a
//! message be forwarded (bus) without re-encoding its meaning.

use crate::cancel::{Cancelled, Deadline};
use crate::idempotency::KeyReuse;
use crate::op::{HostError, OpKind, Status, Truth};
use serde::{Deserialize, Serialize};

/// An operation as the client asked for it.
///
/// Serialised in two shapes: in JSON (histories, traces, journals) a struct whose `deadline`
/// appears only when set, so files without one read as "no deadline" and files of runs without
/// `client.cancel` keep their bytes; in binary (the TCP frames) the four fields it always had,
/// the deadline riding after the message as a frame extension ([`crate::wire`]) so that frames
/// of a binary that predates it still decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpSpec {
    /// Unique id, assigned by the client; also the key of the op's random service time.
    pub id: u64,
    /// The container it acts on.
    pub container: u64,
    /// What it does.
    pub kind: OpKind,
    /// When the client meant to send it (µs since the run's start): latency is measured from here.
    pub intended_us: u64,
    /// When its client stops waiting for it, and who drops it past that (`client.cancel`);
    /// `None`: it runs whenever its turn comes.
    pub deadline: Option<Deadline>,
}

/// [`OpSpec`] as JSON has it.
#[derive(Serialize, Deserialize)]
#[serde(rename = "OpSpec")]
struct OpSpecJson {
    id: u64,
    container: u64,
    kind: OpKind,
    intended_us: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    deadline: Option<Deadline>,
}

/// [`OpSpec`] as binary frames have it (the deadline is a frame extension).
type OpSpecBin = (u64, u64, OpKind, u64);

impl Serialize for OpSpec {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let OpSpec {
            id,
            container,
            kind,
            intended_us,
            deadline,
        } = *self;
        if s.is_human_readable() {
            OpSpecJson {
                id,
                container,
                kind,
                intended_us,
                deadline,
            }
            .serialize(s)
        } else {
            (id, container, kind, intended_us).serialize(s)
        }
    }
}

impl<'de> Deserialize<'de> for OpSpec {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if d.is_human_readable() {
            let j = OpSpecJson::deserialize(d)?;
            Ok(OpSpec {
                id: j.id,
                container: j.container,
                kind: j.kind,
                intended_us: j.intended_us,
                deadline: j.deadline,
            })
        } else {
            let (id, container, kind, intended_us) = OpSpecBin::deserialize(d)?;
            Ok(OpSpec {
                id,
                container,
                kind,
                intended_us,
                deadline: None,
            })
        }
    }
}

/// An op after the API accepted and persisted it: what travels on the bus to a conductor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Task {
    /// The op.
    pub op: OpSpec,
    /// Its per-container sequence number (0 for blocking ops, which are not sequenced).
    pub seq: u64,
    /// Index of the host the container lives on.
    pub host: u32,
    /// Whether the API waits for the conductor's answer (call) or not (cast).
    pub call: bool,
    /// Which dispatch of the op this is: 1 from the API, more when it went back to the bus
    /// (`state-check`'s "not ready") or was dispatched again (orphan sweeper).
    pub attempt: u32,
}

/// The API's (or the conductor's) answer to an op.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Answer {
    /// Accepted: an async op handed to the pool (202).
    Accepted,
    /// A blocking op ran and succeeded.
    Done,
    /// Refused because of the container's state (409).
    Conflict(Status),
    /// Refused because the op could not be persisted (503): never accepted.
    Unavailable,
    /// Failed after it was accepted: the pool rejected it, the host refused it, or a service was
    /// unreachable.
    Error(Failure),
    /// The API's RPC to the conductor timed out (`rpc_timeout`).
    Timeout,
    /// Refused by its idempotency key, the op id (409 while the first request with it is in
    /// flight, 422 when it named a different op): nothing ran.
    Refused(KeyReuse),
}

/// Why an op failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Failure {
    /// `overflow = "reject"` and every pool worker was busy.
    PoolRejected,
    /// The host refused or failed the op.
    Host(HostError),
    /// A service the op needed was unreachable.
    Unavailable,
    /// The op was dropped unrun: its client had stopped waiting (`client.cancel`).
    Cancelled(Cancelled),
}

/// Requests to the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum StoreCmd {
    /// Persist a new op (API): validate the container's state if asked, assign the next sequence
    /// number, place the container on a host at create.
    Accept {
        /// The op.
        op: OpSpec,
        /// Zun's 409 check.
        validate: bool,
    },
    /// A conductor takes an op: the op becomes `executing` with this owner, the container gets
    /// the op's task_state, and the answer (`Began`) carries a fresh fencing token. Refused
    /// (`Busy`) while it runs — alive or not, only its owner's restart recovery (`reissue`) may
    /// run it again — and `NotFound` once it is terminal. With `check`
    /// (`state-check`) it is also refused while an op of the container with a lower sequence
    /// number is not terminal (`NotReady`), when the container is in Error (`ContainerError`;
    /// a delete excepted), and when the container's status does not allow the op
    /// (`Conflict`, Zun's table).
    Begin {
        /// The op's id.
        op: u64,
        /// The owning conductor's index.
        owner: u32,
        /// Check that every earlier op of the container is terminal.
        check: bool,
        /// Restart recovery issuing again an op this owner had begun (allowed only then: a
        /// second delivery of a running op must not run it twice).
        reissue: bool,
    },
    /// The op is terminal: `done` or `failed`; the container's status follows.
    Finish {
        /// The op's id.
        op: u64,
        /// Whether it succeeded.
        ok: bool,
    },
    /// The op never ran (the pool rejected it): it becomes terminal (failed) and the
    /// container's record is left as it was.
    Abandon {
        /// The op's id.
        op: u64,
    },
    /// Read a container's record (blocking `show`).
    Get {
        /// The container.
        container: u64,
    },
    /// Compare-and-swap a container's status: applied only if the record is still at
    /// `version` (as read by `Get`), which makes read-modify-write safe between writers.
    SetStatus {
        /// The container.
        container: u64,
        /// The version the writer read.
        version: u64,
        /// The new status.
        status: Status,
    },
}

/// Leases, locks and scans: the coordination half of the store (etcd / tooz in the real
/// systems). Kept apart from [`StoreCmd`]'s record writes only for reading's sake.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CoordCmd {
    /// Take the lock of `container` for `ttl_us` if it is free or its lease ran out: `Locked`
    /// with a fencing token that grows with every grant, or `Held`.
    Lock {
        /// The container.
        container: u64,
        /// The conductor asking.
        owner: u32,
        /// The lease.
        ttl_us: u64,
    },
    /// Extend a held lock's lease: `Ok`, or `Stale` if it ran out and was taken (or freed).
    Renew {
        /// The container.
        container: u64,
        /// The token it was granted with.
        token: u64,
        /// The new lease, from now.
        ttl_us: u64,
    },
    /// Release a lock (ignored unless `token` still holds it).
    Unlock {
        /// The container.
        container: u64,
        /// The token it was granted with.
        token: u64,
    },
    /// Keep conductor `member`'s membership lease alive for `ttl_us` (tooz's heartbeat).
    Heartbeat {
        /// The conductor.
        member: u32,
        /// The lease, from now.
        ttl_us: u64,
    },
    /// The first member with index ≥ `from` whose lease has run out (`Member`), or
    /// `NotFound`: a conductor that joined and went silent (one that never joined is starting).
    Lapsed {
        /// Where to start.
        from: u32,
    },
    /// The first non-terminal op with id ≥ `from` owned by `owner` (`Op`), or `NotFound` (restart
    /// recovery's scan).
    Owned {
        /// The conductor.
        owner: u32,
        /// Where to start (the last op id seen + 1; 0 to start).
        from: u64,
    },
    /// The first op with id ≥ `from` that no conductor has begun, accepted (or last dispatched)
    /// at least `age_us` ago (`Op`), or `NotFound` (the orphan sweeper's scan; the op's age
    /// starts over). Begun ops are their owner's: its restart recovery brings them back.
    Orphan {
        /// Where to start (the last op id seen + 1; 0 to start).
        from: u64,
        /// How old it must be.
        age_us: u64,
    },
    /// Fail op `op` without running it again (`Ok`; `NotFound` if it is already terminal):
    /// with `error` its container goes to Error (a create that restart recovery found half
    /// done), without it the container's record is left as it is (an op superseded by a later
    /// one, or given up by `state-check`).
    Fail {
        /// The op.
        op: u64,
        /// Whether the container goes to Error.
        error: bool,
    },
    /// Cancel op `op`, which no conductor began, for `why` (`Ok`; `Busy` if a conductor runs
    /// it — another delivery of it —, `NotFound` if it is terminal already): terminal as
    /// [`Fail`](CoordCmd::Fail) without `error` makes it; the reason is journalled.
    Cancel {
        /// The op.
        op: u64,
        /// Why.
        why: Cancelled,
    },
}

/// An op record as a scan returns it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpView {
    /// The op.
    pub op: OpSpec,
    /// Its sequence number.
    pub seq: u64,
    /// Its container's host.
    pub host: u32,
    /// Whether a conductor began it.
    pub executing: bool,
    /// Whether an op of the same container with a higher sequence number has begun (or ended):
    /// Zun re-issues an interrupted op only when nothing later has started.
    pub superseded: bool,
}

/// The store's answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum StoreResp {
    /// An op was persisted.
    Accepted {
        /// Its sequence number within its container.
        seq: u64,
        /// The container's host.
        host: u32,
    },
    /// The op is not allowed in the container's current status.
    Conflict(Status),
    /// A write was applied.
    Ok,
    /// The op or container named does not exist.
    NotFound,
    /// A record (answer to `Get`).
    Record {
        /// Its status.
        status: Status,
        /// Its version, for a later `SetStatus`.
        version: u64,
    },
    /// A compare-and-swap lost: the record moved on to this version.
    Stale {
        /// The record's current version.
        version: u64,
    },
    /// `Begin`: another conductor runs the op.
    Busy,
    /// `Begin`: the op is taken, under this fencing token.
    Began {
        /// The token (grows with every grant, across containers).
        token: u64,
    },
    /// `Begin` with `check`: an earlier op of the container is not terminal.
    NotReady,
    /// `Begin` with `check`: the container is in Error.
    ContainerError,
    /// A lock was granted with this fencing token.
    Locked {
        /// The token.
        token: u64,
    },
    /// The lock is held by another, live lease.
    Held {
        /// The holder.
        owner: u32,
    },
    /// A member (answer to `Lapsed`).
    Member {
        /// Its index.
        index: u32,
    },
    /// An op record (answer to a scan).
    Op(OpView),
    /// `Accept`: an op with this id is open already (the same op: in flight; another:
    /// mismatch); nothing was persisted.
    KeyReused(KeyReuse),
}

/// A container record as the reconciler's scan returns it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordView {
    /// The container.
    pub id: u64,
    /// Its status.
    pub status: Status,
    /// Whether an op is running on it (a task_state is set).
    pub busy: bool,
    /// Its version, for a later `SetStatus`.
    pub version: u64,
}

/// Requests to a host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostCmd {
    /// The op to apply.
    pub op: OpSpec,
    /// Its sequence number, for the record of what reached the host.
    pub seq: u64,
    /// Which attempt this is of the op (1 for the first), part of its service-time key.
    pub attempt: u32,
    /// Index of the conductor that sends it.
    pub conductor: u32,
    /// The fencing token of the lock it runs under (0: none); a host with fencing on refuses a
    /// token older than one it has seen for the container.
    pub token: u64,
}

/// A host's answer: the container's state after the op, or why it refused.
pub type HostResp = Result<Truth, HostError>;

/// Who a bus consumer or publisher is, sent first on every bus connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum BusRole {
    /// A publisher (the API); replies to its calls come back on this connection.
    Publisher,
    /// A conductor consuming the shared topic and its own queue.
    Consumer {
        /// The conductor's index.
        index: u32,
    },
}

/// Where a message goes on the bus.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Route {
    /// The shared topic, consumed round-robin.
    Topic,
    /// One conductor's own queue.
    Conductor(u32),
}

/// Every frame on every link. Not `Copy`: bulk answers (the reconciler's) carry lists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Msg {
    /// Client → API: please run this op.
    Request(OpSpec),
    /// API → client: the answer to request `id`.
    Answer {
        /// The op's id.
        id: u64,
        /// The answer.
        answer: Answer,
    },
    /// To the store, `req` to match the response.
    Store {
        /// Correlation id.
        req: u64,
        /// The command.
        cmd: StoreCmd,
    },
    /// From the store.
    StoreResp {
        /// Correlation id.
        req: u64,
        /// The response.
        resp: StoreResp,
    },
    /// To a host.
    Host {
        /// Correlation id.
        req: u64,
        /// The command.
        cmd: HostCmd,
    },
    /// From a host.
    HostResp {
        /// Correlation id.
        req: u64,
        /// The response.
        resp: HostResp,
    },
    /// First frame on a bus connection.
    Hello(BusRole),
    /// Publisher → bus: enqueue a task; `corr` is the publisher's id for the reply of a call.
    Publish {
        /// Where to.
        route: Route,
        /// The task.
        task: Task,
        /// Correlation id for the reply (calls only).
        corr: u64,
        /// Not before this many µs from now (0: at once), for a re-queued op.
        delay_us: u64,
    },
    /// Bus → conductor: a delivery, held unacknowledged in the conductor's backlog.
    Deliver {
        /// Delivery tag.
        tag: u64,
        /// The task.
        task: Task,
        /// Correlation id of the call, echoed in the reply.
        corr: u64,
        /// The publisher connection to route the reply to.
        reply_to: u64,
    },
    /// Conductor → bus: an RPC slot took the delivery (it is no longer redelivered). When the
    /// answer to a call is known at that same instant it rides along instead of costing a
    /// message of its own.
    Ack {
        /// Delivery tag.
        tag: u64,
        /// The reply to forward to the publisher, if already known.
        reply: Option<Reply>,
    },
    /// Conductor → bus → publisher: the answer to a call.
    Reply(Reply),
    /// A store write whose answer nobody waits for (the connection keeps it in order with the
    /// writes after it).
    StoreWrite(StoreCmd),
    /// To the store: a coordination command, `req` to match the response (`StoreResp`).
    Coord {
        /// Correlation id.
        req: u64,
        /// The command.
        cmd: CoordCmd,
    },
    /// To the store: up to `max` records of containers placed on `host`, after `after` in id
    /// order (the reconciler's scan, as Zun's periodic sync reads its host's rows at once).
    ListRecords {
        /// Correlation id.
        req: u64,
        /// The host.
        host: u32,
        /// The last container seen (`None` to start).
        after: Option<u64>,
        /// Page size.
        max: u32,
    },
    /// From the store: a page of records (fewer than asked: the last page).
    Records {
        /// Correlation id.
        req: u64,
        /// The records.
        recs: Vec<RecordView>,
    },
    /// To a host: up to `max` of its containers after `after`, with their truth (`docker ps
    /// -a`); not an op (nothing is applied, nothing recorded).
    ListTruths {
        /// Correlation id.
        req: u64,
        /// The last container seen (`None` to start).
        after: Option<u64>,
        /// Page size.
        max: u32,
    },
    /// From a host: a page of truths (fewer than asked: the last page).
    Truths {
        /// Correlation id.
        req: u64,
        /// (container, truth), in id order.
        truths: Vec<(u64, Truth)>,
    },
    /// A service's last frame on a connection it turns away, saying why.
    Refused(Refusal),
    /// Bus → publisher: a message of its expired unconsumed (`bus-ttl`) and was dropped — the
    /// dead letter, routed back to whoever published it, which cancels the op in the store.
    Expired {
        /// The task the message carried.
        task: Task,
        /// Correlation id of the call (0 for a cast).
        corr: u64,
    },
}

/// The one list of the messages that carry an op, as a match returning it (by reference or by
/// mutable reference): [`Msg::op`] and [`Msg::op_mut`] cannot disagree.
macro_rules! msg_op {
    ($msg:expr, $($r:tt)+) => {
        match $msg {
            Msg::Request(op)
            | Msg::Store {
                cmd: StoreCmd::Accept { op, .. },
                ..
            }
            | Msg::StoreWrite(StoreCmd::Accept { op, .. })
            | Msg::StoreResp {
                resp: StoreResp::Op(OpView { op, .. }),
                ..
            }
            | Msg::Host {
                cmd: HostCmd { op, .. },
                ..
            } => Some(op),
            Msg::Publish { task, .. } | Msg::Deliver { task, .. } | Msg::Expired { task, .. } => {
                Some($($r)+ task.op)
            }
            _ => None,
        }
    };
}

impl Msg {
    /// The op this message carries, if any (at most one does): whose deadline a frame's
    /// extension carries ([`crate::wire`]).
    pub fn op(&self) -> Option<&OpSpec> {
        msg_op!(self, &)
    }

    /// [`Msg::op`], to change: where a frame's extension puts the op's deadline back.
    pub fn op_mut(&mut self) -> Option<&mut OpSpec> {
        msg_op!(self, &mut)
    }
}

/// Why a service turned a connection away, sent as the connection's last frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Refusal {
    /// The service already holds its limit of open connections.
    TooManyConnections {
        /// The limit (`--max-connections`).
        limit: u32,
    },
    /// The bus: a live conductor already consumes with this index (RabbitMQ's exclusive
    /// consumer: a second one is refused, the first keeps its deliveries).
    ConsumerIndexTaken {
        /// The index.
        index: u32,
    },
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::TooManyConnections { limit } => write!(
                f,
                "too many connections: the service holds its limit of {limit} open connections"
            ),
            Refusal::ConsumerIndexTaken { index } => write!(
                f,
                "a live conductor with index {index} already consumes from the bus \
                 (two conductors were given --index {index})"
            ),
        }
    }
}

/// The answer to a call, on its way back to the publisher.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reply {
    /// The publisher connection (copied by the conductor from `Deliver`).
    pub reply_to: u64,
    /// The publisher's correlation id.
    pub corr: u64,
    /// The answer.
    pub answer: Answer,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_names_a_deadline_only_when_there_is_one() {
        let op = OpSpec {
            id: 1,
            container: 2,
            kind: OpKind::Stop,
            intended_us: 3,
            deadline: None,
        };
        let old = r#"{"id":1,"container":2,"kind":"Stop","intended_us":3}"#;
        assert_eq!(serde_json::to_string(&op).unwrap(), old);
        assert_eq!(serde_json::from_str::<OpSpec>(old).unwrap(), op);
        let with = OpSpec {
            deadline: Some(Deadline::Conductor(4_000_000)),
            ..op
        };
        let j = serde_json::to_string(&with).unwrap();
        assert_eq!(
            j,
            r#"{"id":1,"container":2,"kind":"Stop","intended_us":3,"deadline":{"conductor":4000000}}"#
        );
        assert_eq!(serde_json::from_str::<OpSpec>(&j).unwrap(), with);
    }
}
