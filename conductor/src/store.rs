//! The store: container and op records (the database of Magnum/Zun). Its state outlives the
//! service's process (it is durable across the store's own restarts): the caller owns it.

use crate::coordination::Coordination;
use crate::idempotency::KeyReuse;
use crate::journal::{Journal, JournalError, MemFile, Recovered};
use crate::net::Listener;
use crate::op::{OpKind, Status};
use crate::proto::{CoordCmd, Msg, OpSpec, OpView, RecordView, StoreCmd, StoreResp};
use crate::rpc::lock;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

/// A container's record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Container {
    /// Zun's status.
    pub status: Status,
    /// The task_state of the op running on it, if any.
    pub task_state: Option<&'static str>,
    /// The op that set `task_state`.
    pub task_op: Option<u64>,
    /// The host it was placed on at create.
    pub host: u32,
    /// The last sequence number given to one of its ops.
    pub last_seq: u64,
    /// The highest sequence number of its ops that a conductor began.
    pub last_begun_seq: u64,
    /// Bumped on every write (compare-and-swap).
    pub version: u64,
}

/// Where an op record is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum OpState {
    /// Persisted by the API.
    Accepted,
    /// A conductor is running it.
    Executing,
}

/// A non-terminal op's record (terminal ones are dropped: memory follows live work, not history).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct OpRecord {
    /// The op.
    pub op: OpSpec,
    /// Its sequence number.
    pub seq: u64,
    /// Its state.
    pub state: OpState,
    /// The conductor running it.
    pub owner: Option<u32>,
    /// Its container's host.
    pub host: u32,
    /// When it was accepted, or last dispatched again by the orphan sweeper (µs).
    pub since_us: u64,
}

/// A lease-held lock on one container.
#[derive(Debug, Clone, Copy)]
struct Lease {
    owner: u32,
    token: u64,
    expires_us: u64,
}

/// Container records by id: hashed, so that an op's lookups cost the same however many
/// containers there are. A fixed seed: nothing iterates it (orders come from `on_host`), and a
/// fixed hasher keeps even its memory layout the same run to run.
type Records = HashMap<u64, Container, foldhash::fast::FixedState>;

/// The store's clock, µs: simulated time under the simulator.
pub type StoreClock = crate::recorder::Clock;

/// Everything the store holds.
#[derive(Default)]
pub struct StoreState {
    hosts: u32,
    next_host: u32,
    containers: Records,
    /// The ids of the containers placed on each host (index = host), in id order: the
    /// reconciler's page of one host is a range of that host's ids only, whatever the other
    /// hosts hold.
    on_host: Vec<BTreeSet<u64>>,
    /// How many records [`StoreState::records_on`] has looked at: the test that a page costs
    /// its own records only, not a scan of other hosts'.
    #[cfg(test)]
    examined: std::cell::Cell<usize>,
    ops: BTreeMap<u64, OpRecord>,
    /// The non-terminal ops by (container, sequence number): `state-check` asks whether an
    /// earlier one is open.
    open: BTreeSet<(u64, u64, u64)>,
    /// Container locks (`distributed-lock`); leases, not durable.
    locks: BTreeMap<u64, Lease>,
    /// The last fencing token granted: tokens only grow, across every container.
    last_token: u64,
    /// Conductors' membership leases (expiry, µs).
    members: BTreeMap<u32, u64>,
    clock: Option<StoreClock>,
    /// Where writes go before they are applied: a file in real mode, an in-memory file under
    /// the simulator; none, and nothing survives the store's process.
    journal: Option<Journal>,
}

/// One record of the store's journal: what changes the store's durable state, in order.
/// Commands are replayed as they were applied; a lock grant and a member's joining are kept as
/// facts (their replay must not depend on when it happens).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
enum Entry {
    Precreate {
        container: u64,
        status: Status,
    },
    Cmd(StoreCmd),
    Coord(CoordCmd),
    /// A container lock granted with its fencing token: the token is durable (a restarted
    /// store never grants a lower one) and so is the lock (its holder keeps it across the
    /// restart, as an etcd lease does: replayed with a full `ttl_us` from the restart).
    Locked {
        container: u64,
        owner: u32,
        token: u64,
        ttl_us: u64,
    },
    /// A lock released by its holder.
    Unlocked {
        container: u64,
        token: u64,
    },
    /// A conductor joined (or joined again after its lease lapsed): a restarted store still
    /// knows it, and sees it lapse `ttl_us` after the restart if it stays silent.
    Joined {
        member: u32,
        ttl_us: u64,
    },
}

impl std::fmt::Debug for StoreState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreState")
            .field("containers", &self.containers.len())
            .field("ops", &self.ops.len())
            .field("locks", &self.locks.len())
            .field("members", &self.members)
            .finish()
    }
}

impl StoreState {
    /// Reads time from `clock` (µs) for leases and op ages; without one, the wall clock since
    /// the first reading.
    pub fn set_clock(&mut self, clock: StoreClock) {
        self.clock = Some(clock);
    }

    fn now_us(&mut self) -> u64 {
        if self.clock.is_none() {
            let start = std::time::Instant::now();
            self.clock = Some(Arc::new(move || start.elapsed().as_micros() as u64));
        }
        self.clock.as_ref().map_or(0, |c| c())
    }

    fn view(&self, r: &OpRecord) -> OpView {
        OpView {
            op: r.op,
            seq: r.seq,
            host: r.host,
            executing: r.state == OpState::Executing,
            superseded: self
                .containers
                .get(&r.op.container)
                .is_some_and(|c| c.last_begun_seq > r.seq),
        }
    }

    /// Makes an op terminal. A create that never began leaves its container in Error rather
    /// than in Creating for ever ("Container failed to create correctly").
    fn close(&mut self, op: u64) -> Option<OpRecord> {
        let rec = self.ops.remove(&op)?;
        let was_open = self.open.remove(&(rec.op.container, rec.seq, op));
        // Every op record is listed among the open ops under its (container, sequence number)
        // until it closes: `state-check` reads that list as the truth of what is pending.
        debug_assert!(
            was_open,
            "op {op} had a record but was not among the open ops"
        );
        self.check_open();
        if rec.op.kind == OpKind::Create && rec.state == OpState::Accepted {
            if let Some(c) = self.containers.get_mut(&rec.op.container) {
                if c.status == Status::Creating {
                    c.status = Status::Error;
                    c.version += 1;
                }
            }
        }
        Some(rec)
    }

    /// The open-op bookkeeping: `open` indexes exactly the records in `ops` (each change to
    /// one is made to the other, so equal sizes and the per-change checks keep them equal).
    fn check_open(&self) {
        debug_assert_eq!(
            self.open.len(),
            self.ops.len(),
            "{} ops open by container, {} op records",
            self.open.len(),
            self.ops.len()
        );
    }

    /// An empty store placing containers round-robin over `hosts` hosts.
    pub fn new(hosts: u32) -> Self {
        let hosts = hosts.max(1);
        StoreState {
            hosts,
            on_host: vec![BTreeSet::new(); hosts as usize],
            ..Default::default()
        }
    }

    /// Opens (or creates) the journal at `path`: replays what it holds into a store placing
    /// containers over `hosts` hosts, and journals every change from then on. With `sync`, each
    /// change is also forced to disk (survives a machine crash, not only a process crash). The
    /// [`Recovered`] says what was replayed and whether a torn tail was cut off.
    pub fn open(
        path: &std::path::Path,
        hosts: u32,
        sync: bool,
    ) -> Result<(Self, Recovered), JournalError> {
        let mut st = StoreState::new(hosts);
        let (journal, recovered) = Journal::open(path, sync, |e| st.replay(e))?;
        st.journal = Some(journal);
        Ok((st, recovered))
    }

    /// Opens the in-memory journal `file` as [`StoreState::open`] opens a file: the simulated
    /// store's restart, reading time from `clock`.
    pub fn open_memory(
        file: &MemFile,
        hosts: u32,
        clock: StoreClock,
    ) -> Result<(Self, Recovered), JournalError> {
        let mut st = StoreState::new(hosts);
        st.set_clock(clock);
        let (journal, recovered) = Journal::open_memory(file, "store", |e| st.replay(e))?;
        st.journal = Some(journal);
        Ok((st, recovered))
    }

    fn replay(&mut self, entry: Entry) {
        let now = self.now_us();
        match entry {
            Entry::Precreate { container, status } => {
                self.insert_precreated(container, status);
            }
            Entry::Cmd(cmd) => {
                self.apply(cmd);
            }
            Entry::Coord(cmd) => {
                self.coordinate(cmd);
            }
            Entry::Locked {
                container,
                owner,
                token,
                ttl_us,
            } => {
                self.last_token = self.last_token.max(token);
                self.locks.insert(
                    container,
                    Lease {
                        owner,
                        token,
                        expires_us: now.saturating_add(ttl_us),
                    },
                );
            }
            Entry::Unlocked { container, token } => {
                if self.locks.get(&container).is_some_and(|l| l.token == token) {
                    self.locks.remove(&container);
                }
            }
            Entry::Joined { member, ttl_us } => {
                self.members.insert(member, now.saturating_add(ttl_us));
            }
        }
    }

    fn log(&mut self, entry: Entry) -> std::io::Result<()> {
        match self.journal.as_mut() {
            Some(j) => j.append(&entry),
            None => Ok(()),
        }
    }

    /// Whether nothing was ever recorded (a fresh store, before any pre-creation).
    pub fn is_empty(&self) -> bool {
        self.containers.is_empty() && self.ops.is_empty()
    }

    /// Applies a command after journalling it, if it changes anything; a journal that cannot
    /// be written refuses the command (the store must not answer what it could lose).
    pub fn apply_durably(&mut self, cmd: StoreCmd) -> std::io::Result<StoreResp> {
        if !matches!(cmd, StoreCmd::Get { .. }) {
            self.log(Entry::Cmd(cmd))?;
        }
        Ok(self.apply(cmd))
    }

    /// Applies a coordination command, journalling what must survive a restart: failed ops,
    /// lock grants (with their fencing tokens) and releases, members joining. Renewals and
    /// heartbeats of a known member are not journalled: a restart gives every lease a full
    /// term anyway. An orphan's new dispatch time is not either: every op's age starts over
    /// with a restart.
    pub fn coordinate_durably(&mut self, cmd: CoordCmd) -> std::io::Result<StoreResp> {
        let entry = match cmd {
            CoordCmd::Fail { .. } | CoordCmd::Cancel { .. } => Some(Entry::Coord(cmd)),
            CoordCmd::Heartbeat { member, ttl_us } => {
                let now = self.now_us();
                let known = self.members.get(&member).is_some_and(|&e| e > now);
                (!known).then_some(Entry::Joined { member, ttl_us })
            }
            _ => None,
        };
        if let Some(e) = entry {
            self.log(e)?;
        }
        let releases = matches!(cmd, CoordCmd::Unlock { container, token }
            if self.locks.get(&container).is_some_and(|l| l.token == token));
        let resp = self.coordinate(cmd);
        // A grant's token is known once granted; it is journalled before it is answered.
        match (cmd, resp) {
            (
                CoordCmd::Lock {
                    container,
                    owner,
                    ttl_us,
                },
                StoreResp::Locked { token },
            ) => self.log(Entry::Locked {
                container,
                owner,
                token,
                ttl_us,
            })?,
            (CoordCmd::Unlock { container, token }, _) if releases => {
                self.log(Entry::Unlocked { container, token })?
            }
            _ => {}
        }
        Ok(resp)
    }

    /// Up to `max` records of containers on `host` after `after`, in id order: a range of that
    /// host's ids, so a page costs its own records, never a look at other hosts'.
    pub fn records_on(&self, host: u32, after: Option<u64>, max: u32) -> Vec<RecordView> {
        let Some(ids) = self.on_host.get(host as usize) else {
            return Vec::new();
        };
        let from = match after {
            None => std::ops::Bound::Unbounded,
            Some(a) => std::ops::Bound::Excluded(a),
        };
        let mut page = Vec::with_capacity((max as usize).min(ids.len()));
        page.extend(
            ids.range((from, std::ops::Bound::Unbounded))
                .take(max as usize)
                .filter_map(|&id| {
                    #[cfg(test)]
                    self.examined.set(self.examined.get() + 1);
                    let c = self.containers.get(&id)?;
                    Some(RecordView {
                        id,
                        status: c.status,
                        busy: c.task_state.is_some(),
                        version: c.version,
                    })
                }),
        );
        page
    }

    /// Puts a container's record, keeping `on_host` in step: a container created again may be
    /// placed on another host than before.
    fn put_record(&mut self, id: u64, c: Container) {
        let host = c.host;
        if let Some(old) = self.containers.insert(id, c) {
            if old.host != host {
                self.on_host[old.host as usize].remove(&id);
            }
        }
        self.on_host[host as usize].insert(id);
    }

    /// Applies one coordination command.
    pub fn coordinate(&mut self, cmd: CoordCmd) -> StoreResp {
        let now = self.now_us();
        match cmd {
            CoordCmd::Lock {
                container,
                owner,
                ttl_us,
            } => {
                if let Some(l) = self.locks.get(&container) {
                    // Held by a live lease, whoever holds it (two workers of one conductor
                    // exclude each other too).
                    if l.expires_us > now {
                        return StoreResp::Held { owner: l.owner };
                    }
                }
                self.last_token += 1;
                let token = self.last_token;
                self.locks.insert(
                    container,
                    Lease {
                        owner,
                        token,
                        expires_us: now.saturating_add(ttl_us),
                    },
                );
                StoreResp::Locked { token }
            }
            CoordCmd::Renew {
                container,
                token,
                ttl_us,
            } => match self.locks.get_mut(&container) {
                Some(l) if l.token == token && l.expires_us > now => {
                    l.expires_us = now.saturating_add(ttl_us);
                    StoreResp::Ok
                }
                _ => StoreResp::Stale { version: 0 },
            },
            CoordCmd::Unlock { container, token } => {
                if self.locks.get(&container).is_some_and(|l| l.token == token) {
                    self.locks.remove(&container);
                }
                StoreResp::Ok
            }
            CoordCmd::Heartbeat { member, ttl_us } => {
                self.members.insert(member, now.saturating_add(ttl_us));
                StoreResp::Ok
            }
            CoordCmd::Lapsed { from } => self
                .members
                .range(from..)
                .find(|(_, &e)| e <= now)
                .map_or(StoreResp::NotFound, |(&index, _)| StoreResp::Member {
                    index,
                }),
            CoordCmd::Owned { owner, from } => self
                .ops
                .range(from..)
                .map(|(_, r)| r)
                .find(|r| r.owner == Some(owner) && r.state == OpState::Executing)
                .map_or(StoreResp::NotFound, |r| StoreResp::Op(self.view(r))),
            CoordCmd::Orphan { from, age_us } => {
                let found = self
                    .ops
                    .range(from..)
                    .map(|(_, r)| r)
                    .find(|r| {
                        r.state == OpState::Accepted && now.saturating_sub(r.since_us) >= age_us
                    })
                    .map(|r| r.op.id);
                let Some(id) = found else {
                    return StoreResp::NotFound;
                };
                // Dispatched again now: its age starts over, so the next sweep leaves it be
                // unless it is orphaned again.
                let rec = self.ops.get_mut(&id).expect("found above");
                rec.since_us = now;
                let rec = *rec;
                StoreResp::Op(self.view(&rec))
            }
            // A cancelled op never ran: terminal as a failure that leaves its container be (the
            // reason is in the journal and the history).
            // A conductor running it (this op's other delivery) keeps it: `Busy`.
            CoordCmd::Cancel { op, .. } => match self.ops.get(&op) {
                None => StoreResp::NotFound,
                Some(r) if r.state == OpState::Executing => StoreResp::Busy,
                Some(_) => self.coordinate(CoordCmd::Fail { op, error: false }),
            },
            CoordCmd::Fail { op, error } => {
                let Some(rec) = self.close(op) else {
                    return StoreResp::NotFound;
                };
                if let Some(c) = self.containers.get_mut(&rec.op.container) {
                    if error {
                        c.status = Status::Error;
                    }
                    // The op's own task_state goes with it; a later op's stays.
                    if error || c.task_op == Some(op) {
                        c.task_state = None;
                        c.task_op = None;
                    }
                    c.version += 1;
                }
                StoreResp::Ok
            }
        }
    }

    /// Records an existing container (pre-created workloads), journalled.
    pub fn precreate_durably(&mut self, container: u64, status: Status) -> std::io::Result<u32> {
        self.log(Entry::Precreate { container, status })?;
        Ok(self.insert_precreated(container, status))
    }

    /// Records an existing container (pre-created workloads): placed round-robin like a create.
    pub fn precreate(&mut self, container: u64, status: Status) -> u32 {
        self.insert_precreated(container, status)
    }

    fn insert_precreated(&mut self, container: u64, status: Status) -> u32 {
        let host = self.place();
        self.put_record(
            container,
            Container {
                status,
                task_state: None,
                task_op: None,
                host,
                last_seq: 0,
                last_begun_seq: 0,
                version: 1,
            },
        );
        host
    }

    fn place(&mut self) -> u32 {
        let h = self.next_host;
        self.next_host = (self.next_host + 1) % self.hosts;
        h
    }

    /// A container's record.
    pub fn container(&self, id: u64) -> Option<&Container> {
        self.containers.get(&id)
    }

    /// Every container record, in id order (a merge of the hosts' ordered ids: for snapshots,
    /// not the op path).
    pub fn containers(&self) -> impl Iterator<Item = (u64, &Container)> {
        let mut ids: Vec<u64> = self.on_host.iter().flatten().copied().collect();
        ids.sort_unstable();
        ids.into_iter()
            .filter_map(|id| self.containers.get(&id).map(|c| (id, c)))
    }

    /// The non-terminal op records, in id order.
    pub fn ops(&self) -> impl Iterator<Item = &OpRecord> {
        self.ops.values()
    }

    /// Applies one command.
    pub fn apply(&mut self, cmd: StoreCmd) -> StoreResp {
        match cmd {
            StoreCmd::Accept { op, validate } => self.accept(op, validate),
            StoreCmd::Begin {
                op,
                owner,
                check,
                reissue,
            } => {
                let Some(rec) = self.ops.get(&op).copied() else {
                    return StoreResp::NotFound;
                };
                if rec.state == OpState::Executing && !(reissue && rec.owner == Some(owner)) {
                    return StoreResp::Busy;
                }
                let container = rec.op.container;
                if check {
                    let earlier = self
                        .open
                        .range((container, 0, 0)..(container, rec.seq, 0))
                        .next()
                        .is_some();
                    if earlier {
                        return StoreResp::NotReady;
                    }
                    let status = self
                        .containers
                        .get(&container)
                        .map_or(Status::Absent, |c| c.status);
                    // Deleting an errored container is how it is cleaned up (Zun allows it).
                    if status == Status::Error && rec.op.kind != OpKind::Delete {
                        return StoreResp::ContainerError;
                    }
                    // Every earlier op is terminal, so the status is what they left: the op
                    // must be allowed from it (a create's own record says Creating).
                    let own_create = rec.op.kind == OpKind::Create && status == Status::Creating;
                    if !own_create && !rec.op.kind.allowed_from(status) {
                        return StoreResp::Conflict(status);
                    }
                }
                if let Some(r) = self.ops.get_mut(&op) {
                    r.state = OpState::Executing;
                    r.owner = Some(owner);
                }
                if let Some(c) = self.containers.get_mut(&container) {
                    c.task_state = rec.op.kind.task_state().map(|(_, t)| t);
                    c.task_op = Some(op);
                    c.last_begun_seq = c.last_begun_seq.max(rec.seq);
                    c.version += 1;
                    // Only an accepted op begins, and its sequence number was given out.
                    debug_assert!(c.last_begun_seq <= c.last_seq, "container {container}");
                }
                self.last_token += 1;
                StoreResp::Began {
                    token: self.last_token,
                }
            }
            StoreCmd::Finish { op, ok } => {
                let Some(rec) = self.close(op) else {
                    return StoreResp::NotFound;
                };
                if let Some(c) = self.containers.get_mut(&rec.op.container) {
                    // Zun resets task_state at the end of every op, whichever set it.
                    c.task_state = None;
                    c.task_op = None;
                    c.status = if ok {
                        rec.op.kind.result_status().unwrap_or(c.status)
                    } else {
                        Status::Error
                    };
                    c.version += 1;
                }
                StoreResp::Ok
            }
            StoreCmd::Abandon { op } => match self.close(op) {
                Some(_) => StoreResp::Ok,
                None => StoreResp::NotFound,
            },
            StoreCmd::Get { container } => match self.containers.get(&container) {
                Some(c) => StoreResp::Record {
                    status: c.status,
                    version: c.version,
                },
                None => StoreResp::NotFound,
            },
            StoreCmd::SetStatus {
                container,
                version,
                status,
            } => match self.containers.get_mut(&container) {
                Some(c) if c.version == version => {
                    c.status = status;
                    c.version += 1;
                    StoreResp::Ok
                }
                Some(c) => StoreResp::Stale { version: c.version },
                None => StoreResp::NotFound,
            },
        }
    }

    fn accept(&mut self, op: OpSpec, validate: bool) -> StoreResp {
        // An op id is its request's idempotency key: an open op keeps its record (replacing
        // it would strand its entry among the open ops, and `state-check` would wait on it
        // for ever).
        if let Some(rec) = self.ops.get(&op.id) {
            return StoreResp::KeyReused(KeyReuse::of_in_flight(&rec.op, &op));
        }
        let status = self
            .containers
            .get(&op.container)
            .map_or(Status::Absent, |c| c.status);
        let fresh = op.kind == OpKind::Create && matches!(status, Status::Absent | Status::Deleted);
        if validate && !op.kind.allowed_from(status) && !fresh {
            return StoreResp::Conflict(status);
        }
        if fresh {
            let host = self.place();
            // A container created again after a delete keeps counting: its ops stay in one
            // sequence, and its version never goes back (compare-and-swap stays safe).
            let (last_seq, last_begun_seq, version) = self
                .containers
                .get(&op.container)
                .map_or((0, 0, 0), |c| (c.last_seq, c.last_begun_seq, c.version));
            self.put_record(
                op.container,
                Container {
                    status: Status::Creating,
                    task_state: None,
                    task_op: None,
                    host,
                    last_seq,
                    last_begun_seq,
                    version,
                },
            );
        }
        let Some(c) = self.containers.get_mut(&op.container) else {
            // No record to route by: nothing can run it.
            return StoreResp::Conflict(Status::Absent);
        };
        c.version += 1;
        if op.kind.is_blocking() {
            return StoreResp::Accepted {
                seq: 0,
                host: c.host,
            };
        }
        c.last_seq += 1;
        let seq = c.last_seq;
        let host = c.host;
        let since_us = self.now_us();
        let earlier = self.ops.insert(
            op.id,
            OpRecord {
                op,
                seq,
                state: OpState::Accepted,
                owner: None,
                host,
                since_us,
            },
        );
        debug_assert!(earlier.is_none(), "op {} accepted twice", op.id);
        let fresh = self.open.insert((op.container, seq, op.id));
        // Sequence numbers only grow per container (a re-created one continues its count), so
        // an accepted op is never already listed.
        debug_assert!(fresh, "op {} got sequence number {seq} twice", op.id);
        self.check_open();
        StoreResp::Accepted { seq, host }
    }
}

/// Serves the store on `listener` until the task is dropped, or until its journal cannot be
/// written (then it stops answering, and the error is returned).
pub async fn serve(listener: Listener, state: Arc<Mutex<StoreState>>) -> std::io::Result<()> {
    serve_with(listener, state, None).await
}

/// Applies a record command; a `Begin` with an `engine` takes its fencing token from it, drawn
/// before the op is taken (an op marked begun whose token could not be had would be refused as
/// busy when asked again). `None`: the engine could not give a token, nothing was applied.
async fn apply_with(
    state: &Mutex<StoreState>,
    engine: Option<&dyn Coordination>,
    cmd: StoreCmd,
) -> Option<std::io::Result<StoreResp>> {
    let token = match (engine, cmd) {
        (Some(e), StoreCmd::Begin { .. }) => Some(e.token().await.ok()?),
        _ => None,
    };
    Some(lock(state).apply_durably(cmd).map(|r| match (r, token) {
        (StoreResp::Began { .. }, Some(token)) => StoreResp::Began { token },
        (r, _) => r,
    }))
}

/// [`serve`] with the coordination commands an outside `engine` [`Coordination::handles`]
/// answered by it, and the fencing tokens of `Begin` drawn from it: the store then holds no
/// coordination state of its own. A command the engine cannot answer closes its connection
/// (after what the engine retried itself): the peer dials again and asks again, as it does when
/// the store dies; nothing is answered that the engine did not grant.
pub async fn serve_with(
    mut listener: Listener,
    state: Arc<Mutex<StoreState>>,
    engine: Option<Arc<dyn Coordination>>,
) -> std::io::Result<()> {
    let failed: Arc<Mutex<Option<std::io::Error>>> = Arc::default();
    let stop = Arc::new(tokio::sync::Notify::new());
    loop {
        let (link, mut reader) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(c) => c,
                Err(e) => return Err(e),
            },
            _ = stop.notified() => {
                let e = lock(&failed).take();
                return Err(e.unwrap_or_else(|| std::io::Error::other("journal failed")));
            }
        };
        let (state, failed, stop) = (state.clone(), failed.clone(), stop.clone());
        let engine = engine.clone();
        tokio::spawn(async move {
            while let Ok(Some(msg)) = reader.next().await {
                let (req, resp) = match msg {
                    Msg::Store { req, cmd } => {
                        let Some(resp) = apply_with(&state, engine.as_deref(), cmd).await else {
                            return;
                        };
                        (Some(req), resp)
                    }
                    Msg::StoreWrite(cmd) => {
                        let Some(resp) = apply_with(&state, engine.as_deref(), cmd).await else {
                            return;
                        };
                        (None, resp)
                    }
                    Msg::Coord { req, cmd } => match engine.as_ref().filter(|e| e.handles(&cmd)) {
                        Some(e) => match e.coordinate(cmd).await {
                            Ok(resp) => (Some(req), Ok(resp)),
                            Err(_) => return,
                        },
                        None => (Some(req), lock(&state).coordinate_durably(cmd)),
                    },
                    Msg::ListRecords {
                        req,
                        host,
                        after,
                        max,
                    } => {
                        let recs = lock(&state).records_on(host, after, max);
                        link.send(Msg::Records { req, recs });
                        continue;
                    }
                    _ => continue,
                };
                let resp = match resp {
                    Ok(resp) => resp,
                    Err(e) => {
                        *lock(&failed) = Some(e);
                        stop.notify_one();
                        return;
                    }
                };
                if let Some(req) = req {
                    link.send(Msg::StoreResp { req, resp });
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(id: u64, container: u64, kind: OpKind) -> OpSpec {
        OpSpec {
            id,
            container,
            kind,
            intended_us: 0,
            deadline: None,
        }
    }

    /// Every host's records, paged as the reconciler pages them, with the number of records
    /// each page looked at.
    fn paged(s: &StoreState, host: u32, max: u32) -> (Vec<RecordView>, Vec<usize>) {
        let (mut all, mut looked) = (Vec::new(), Vec::new());
        let mut after = None;
        loop {
            s.examined.set(0);
            let page = s.records_on(host, after, max);
            looked.push(s.examined.get());
            after = page.last().map(|r| r.id);
            let last = page.len() < max as usize;
            all.extend(page);
            if last {
                return (all, looked);
            }
        }
    }

    /// Issue 15: a host's page of records is a range of that host's containers only. With
    /// hosts interleaved in id order, containers added, one deleted and created again on
    /// another host, and the store restarted from its journal, the pages of each host are
    /// exactly its records in id order, and each page looks at no more records than it
    /// returns (a scan of every container, filtered by host, looks at all 3 hosts' records).
    #[test]
    fn pages_of_a_host_are_its_own_records_only() {
        let file = MemFile::new();
        let clock: StoreClock = Arc::new(|| 0);
        let check = |s: &StoreState| {
            for host in 0..3 {
                let want: Vec<RecordView> = s
                    .containers()
                    .filter(|(_, c)| c.host == host)
                    .map(|(id, c)| RecordView {
                        id,
                        status: c.status,
                        busy: c.task_state.is_some(),
                        version: c.version,
                    })
                    .collect();
                let (got, looked) = paged(s, host, 4);
                assert_eq!(got, want, "host {host}");
                assert!(want.len() > 4, "host {host}: several pages");
                assert_eq!(looked.iter().sum::<usize>(), want.len(), "host {host}");
            }
            assert!(s.records_on(3, None, 4).is_empty(), "no such host");
        };
        let moved = {
            let (mut s, _) = StoreState::open_memory(&file, 3, clock.clone()).unwrap();
            // Ids 0, 10, 20, ... placed round-robin: hosts interleave in id order.
            for i in 0..20 {
                s.precreate_durably(i * 10, Status::Running).unwrap();
            }
            let cmd = |s: &mut StoreState, c| s.apply_durably(c).unwrap();
            // New containers between the old ones, and one with an op running (busy).
            for (op_id, c) in [(1, 5), (2, 15), (3, 205)] {
                cmd(
                    &mut s,
                    StoreCmd::Accept {
                        op: op(op_id, c, OpKind::Create),
                        validate: true,
                    },
                );
            }
            let begin = |op| StoreCmd::Begin {
                op,
                owner: 0,
                check: false,
                reissue: false,
            };
            cmd(&mut s, begin(2));
            // Container 30 (host 0) deleted and created again: placed on the next host.
            let before = s.container(30).unwrap().host;
            cmd(
                &mut s,
                StoreCmd::Accept {
                    op: op(4, 30, OpKind::Delete),
                    validate: false,
                },
            );
            cmd(&mut s, begin(4));
            cmd(&mut s, StoreCmd::Finish { op: 4, ok: true });
            cmd(
                &mut s,
                StoreCmd::Accept {
                    op: op(5, 30, OpKind::Create),
                    validate: true,
                },
            );
            let after = s.container(30).unwrap().host;
            assert_ne!(before, after, "created again elsewhere");
            check(&s);
            (before, after)
        };
        // The journal replayed: the same placement, the same pages.
        let (s, _) = StoreState::open_memory(&file, 3, clock).unwrap();
        assert_eq!(s.container(30).unwrap().host, moved.1);
        assert!(!paged(&s, moved.0, 4).0.iter().any(|r| r.id == 30));
        check(&s);
    }

    #[test]
    fn sequences_and_placement() {
        let mut s = StoreState::new(2);
        let a = s.apply(StoreCmd::Accept {
            op: op(1, 10, OpKind::Create),
            validate: true,
        });
        assert_eq!(a, StoreResp::Accepted { seq: 1, host: 0 });
        let b = s.apply(StoreCmd::Accept {
            op: op(2, 11, OpKind::Create),
            validate: true,
        });
        assert_eq!(b, StoreResp::Accepted { seq: 1, host: 1 });
        // Zun refuses start while Creating; Magnum 2015 does not look.
        let c = s.apply(StoreCmd::Accept {
            op: op(3, 10, OpKind::Start),
            validate: true,
        });
        assert_eq!(c, StoreResp::Conflict(Status::Creating));
        let d = s.apply(StoreCmd::Accept {
            op: op(3, 10, OpKind::Start),
            validate: false,
        });
        assert_eq!(d, StoreResp::Accepted { seq: 2, host: 0 });
        assert_eq!(
            s.apply(StoreCmd::Begin {
                op: 1,
                owner: 0,
                check: false,
                reissue: false,
            }),
            StoreResp::Began { token: 1 }
        );
        assert_eq!(
            s.container(10).unwrap().task_state,
            Some("container_creating")
        );
        assert_eq!(s.apply(StoreCmd::Finish { op: 1, ok: true }), StoreResp::Ok);
        assert_eq!(s.container(10).unwrap().status, Status::Created);
        assert_eq!(
            s.apply(StoreCmd::Finish { op: 1, ok: true }),
            StoreResp::NotFound
        );
        // Ops 2 (a create) and 3 are still open; op 1 is terminal and gone.
        assert_eq!(s.ops().count(), 2);
    }

    #[test]
    fn journal_survives_a_restart() {
        let path = std::env::temp_dir().join(format!(
            "conductor-store-journal-{}.jsonl",
            std::process::id()
        ));
        let _ = std::fs::remove_file(&path);
        let snapshot = |s: &StoreState| {
            (
                s.containers().map(|(k, c)| (k, *c)).collect::<Vec<_>>(),
                // An op's age starts over in a new process (its clock does).
                s.ops()
                    .map(|r| (r.op, r.seq, r.state, r.owner, r.host))
                    .collect::<Vec<_>>(),
            )
        };
        let before = {
            let (mut s, _) = StoreState::open(&path, 2, false).unwrap();
            assert!(s.is_empty());
            s.precreate_durably(1, Status::Running).unwrap();
            let cmds = [
                StoreCmd::Accept {
                    op: op(1, 7, OpKind::Create),
                    validate: true,
                },
                StoreCmd::Accept {
                    op: op(2, 1, OpKind::Stop),
                    validate: true,
                },
                StoreCmd::Begin {
                    op: 1,
                    owner: 3,
                    check: false,
                    reissue: false,
                },
                StoreCmd::Finish { op: 1, ok: true },
                StoreCmd::Get { container: 1 },
            ];
            for c in cmds {
                s.apply_durably(c).unwrap();
            }
            snapshot(&s)
        };
        // A new process: the journal brings back containers, versions, sequences and open ops.
        let (mut again, recovered) = StoreState::open(&path, 2, true).unwrap();
        assert_eq!((recovered.records, recovered.torn), (5, None));
        assert_eq!(snapshot(&again), before);
        assert!(!again.is_empty());
        // And it keeps journalling: the next sequence number follows on.
        let r = again
            .apply_durably(StoreCmd::Accept {
                op: op(3, 7, OpKind::Start),
                validate: true,
            })
            .unwrap();
        assert_eq!(r, StoreResp::Accepted { seq: 2, host: 1 });
        std::fs::write(&path, "{not json\n").unwrap();
        let err = StoreState::open(&path, 2, false).unwrap_err().to_string();
        assert!(err.contains("line 1"), "{err}");
        let _ = std::fs::remove_file(&path);
    }

    /// Defect 1 of issue 11: lock grants were not journalled, so a restarted store granted
    /// tokens lower than ones the hosts had seen (and forgot who held which lock).
    #[test]
    fn fencing_tokens_and_locks_survive_a_restart() {
        let file = MemFile::new();
        let now = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let clock: StoreClock = {
            let n = now.clone();
            Arc::new(move || n.load(std::sync::atomic::Ordering::Relaxed))
        };
        let lock = |s: &mut StoreState, container, owner| {
            s.coordinate_durably(CoordCmd::Lock {
                container,
                owner,
                ttl_us: 1_000,
            })
            .unwrap()
        };
        let mut highest = 0;
        {
            let (mut s, _) = StoreState::open_memory(&file, 1, clock.clone()).unwrap();
            s.precreate_durably(1, Status::Running).unwrap();
            s.apply_durably(StoreCmd::Accept {
                op: op(1, 1, OpKind::Stop),
                validate: false,
            })
            .unwrap();
            // Lock grants and hand-offs draw from one counter; only the hand-offs were
            // journalled before.
            for c in 10..20 {
                let StoreResp::Locked { token } = lock(&mut s, c, 0) else {
                    panic!("free lock refused");
                };
                highest = highest.max(token);
                s.coordinate_durably(CoordCmd::Unlock {
                    container: c,
                    token,
                })
                .unwrap();
            }
            let StoreResp::Began { token } = s
                .apply_durably(StoreCmd::Begin {
                    op: 1,
                    owner: 0,
                    check: false,
                    reissue: false,
                })
                .unwrap()
            else {
                panic!("begin refused");
            };
            highest = highest.max(token);
            let StoreResp::Locked { token } = lock(&mut s, 7, 2) else {
                panic!("free lock refused");
            };
            highest = highest.max(token);
            s.coordinate_durably(CoordCmd::Heartbeat {
                member: 4,
                ttl_us: 500,
            })
            .unwrap();
        }
        now.store(10_000, std::sync::atomic::Ordering::Relaxed);
        let (mut s, _) = StoreState::open_memory(&file, 1, clock).unwrap();
        // The held lock survived with a fresh term; the released ones did not.
        assert_eq!(lock(&mut s, 7, 0), StoreResp::Held { owner: 2 });
        let StoreResp::Locked { token } = lock(&mut s, 10, 0) else {
            panic!("a released lock came back");
        };
        assert!(
            token > highest,
            "token {token} after a restart, {highest} before"
        );
        let StoreResp::Began { token: began } = s
            .apply_durably(StoreCmd::Accept {
                op: op(2, 1, OpKind::Start),
                validate: false,
            })
            .and_then(|_| {
                s.apply_durably(StoreCmd::Begin {
                    op: 2,
                    owner: 0,
                    check: false,
                    reissue: false,
                })
            })
            .unwrap()
        else {
            panic!("begin refused");
        };
        assert!(began > token);
        // The member is known and lapses a full term after the restart.
        assert_eq!(
            s.coordinate(CoordCmd::Lapsed { from: 0 }),
            StoreResp::NotFound
        );
        now.store(10_600, std::sync::atomic::Ordering::Relaxed);
        assert_eq!(
            s.coordinate(CoordCmd::Lapsed { from: 0 }),
            StoreResp::Member { index: 4 }
        );
    }

    #[test]
    fn abandon_and_create_again() {
        let mut s = StoreState::new(1);
        s.precreate(4, Status::Running);
        let accept = |s: &mut StoreState, id, kind| {
            s.apply(StoreCmd::Accept {
                op: op(id, 4, kind),
                validate: false,
            })
        };
        assert_eq!(
            accept(&mut s, 1, OpKind::Stop),
            StoreResp::Accepted { seq: 1, host: 0 }
        );
        // The pool rejected it: the op is gone and the container is not in Error.
        assert_eq!(s.apply(StoreCmd::Abandon { op: 1 }), StoreResp::Ok);
        assert_eq!(s.container(4).unwrap().status, Status::Running);
        assert_eq!(s.ops().count(), 0);
        assert_eq!(
            accept(&mut s, 2, OpKind::Delete),
            StoreResp::Accepted { seq: 2, host: 0 }
        );
        s.apply(StoreCmd::Finish { op: 2, ok: true });
        let version = s.container(4).unwrap().version;
        // Created again: the sequence and the version go on from where they were.
        assert_eq!(
            accept(&mut s, 3, OpKind::Create),
            StoreResp::Accepted { seq: 3, host: 0 }
        );
        assert!(s.container(4).unwrap().version > version);
    }

    #[test]
    fn compare_and_swap() {
        let mut s = StoreState::new(1);
        s.precreate(5, Status::Running);
        let StoreResp::Record { version, .. } = s.apply(StoreCmd::Get { container: 5 }) else {
            panic!("no record");
        };
        let set = |v| StoreCmd::SetStatus {
            container: 5,
            version: v,
            status: Status::Stopped,
        };
        assert_eq!(s.apply(set(version)), StoreResp::Ok);
        // The second writer read the same version: it loses.
        assert_eq!(
            s.apply(set(version)),
            StoreResp::Stale {
                version: version + 1
            }
        );
        assert_eq!(s.container(5).unwrap().status, Status::Stopped);
        assert_eq!(
            s.apply(set(0)),
            StoreResp::Stale {
                version: version + 1
            }
        );
        assert_eq!(
            s.apply(StoreCmd::SetStatus {
                container: 9,
                version: 0,
                status: Status::Error
            }),
            StoreResp::NotFound
        );
    }

    #[test]
    fn checked_begin_follows_sequence_and_status() {
        let mut s = StoreState::new(1);
        let accept = |s: &mut StoreState, id, kind| {
            s.apply(StoreCmd::Accept {
                op: op(id, 9, kind),
                validate: false,
            })
        };
        let begin_as = |s: &mut StoreState, id, owner, reissue| {
            s.apply(StoreCmd::Begin {
                op: id,
                owner,
                check: true,
                reissue,
            })
        };
        let begin = |s: &mut StoreState, id, owner| begin_as(s, id, owner, false);
        accept(&mut s, 1, OpKind::Create);
        accept(&mut s, 2, OpKind::Start);
        accept(&mut s, 3, OpKind::Unpause);
        // The start waits for the create, whoever asks.
        assert_eq!(begin(&mut s, 2, 0), StoreResp::NotReady);
        assert!(matches!(begin(&mut s, 1, 0), StoreResp::Began { .. }));
        // Another conductor cannot take an op that is running, alive or not; nor can its owner
        // take it twice (a second delivery)...
        assert_eq!(begin(&mut s, 1, 1), StoreResp::Busy);
        assert_eq!(begin(&mut s, 1, 0), StoreResp::Busy);
        assert_eq!(begin_as(&mut s, 1, 1, true), StoreResp::Busy);
        // ...but its owner's restart recovery may, under a newer token.
        let StoreResp::Began { token: t1 } = begin_as(&mut s, 1, 0, true) else {
            panic!("owner refused");
        };
        s.apply(StoreCmd::Finish { op: 1, ok: true });
        let StoreResp::Began { token: t2 } = begin(&mut s, 2, 1) else {
            panic!("start refused after the create");
        };
        assert!(t2 > t1);
        s.apply(StoreCmd::Finish { op: 2, ok: true });
        // Unpause on a running container: Zun's table refuses it, without reaching a host.
        assert_eq!(begin(&mut s, 3, 0), StoreResp::Conflict(Status::Running));
        assert_eq!(begin(&mut s, 99, 0), StoreResp::NotFound);
    }

    #[test]
    fn never_begun_create_ends_in_error_and_orphans_are_found() {
        let mut s = StoreState::new(1);
        let now = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let n = now.clone();
        s.set_clock(Arc::new(move || {
            n.load(std::sync::atomic::Ordering::Relaxed)
        }));
        for (id, c) in [(1, 1), (2, 2)] {
            s.apply(StoreCmd::Accept {
                op: op(id, c, OpKind::Create),
                validate: true,
            });
        }
        s.apply(StoreCmd::Begin {
            op: 2,
            owner: 0,
            check: false,
            reissue: false,
        });
        now.store(5_000_000, std::sync::atomic::Ordering::Relaxed);
        let orphan = |s: &mut StoreState| {
            s.coordinate(CoordCmd::Orphan {
                from: 0,
                age_us: 1_000_000,
            })
        };
        // Only the op nobody began is an orphan; found once, its age starts over.
        assert!(matches!(orphan(&mut s), StoreResp::Op(v) if v.op.id == 1 && !v.executing));
        assert_eq!(orphan(&mut s), StoreResp::NotFound);
        assert_eq!(
            s.coordinate(CoordCmd::Fail {
                op: 1,
                error: false
            }),
            StoreResp::Ok
        );
        assert_eq!(s.container(1).unwrap().status, Status::Error);
    }

    #[test]
    fn leases_lock_and_lapse() {
        let mut s = StoreState::new(1);
        let now = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let n = now.clone();
        s.set_clock(Arc::new(move || {
            n.load(std::sync::atomic::Ordering::Relaxed)
        }));
        let lock = |s: &mut StoreState, owner| {
            s.coordinate(CoordCmd::Lock {
                container: 3,
                owner,
                ttl_us: 10,
            })
        };
        let StoreResp::Locked { token: a } = lock(&mut s, 0) else {
            panic!("free lock refused");
        };
        assert_eq!(lock(&mut s, 1), StoreResp::Held { owner: 0 });
        assert_eq!(lock(&mut s, 0), StoreResp::Held { owner: 0 });
        now.store(20, std::sync::atomic::Ordering::Relaxed);
        // The lease lapsed: the holder cannot renew, another takes it with a newer token.
        let renew = CoordCmd::Renew {
            container: 3,
            token: a,
            ttl_us: 10,
        };
        assert!(matches!(s.coordinate(renew), StoreResp::Stale { .. }));
        let StoreResp::Locked { token: b } = lock(&mut s, 1) else {
            panic!("lapsed lock refused");
        };
        assert!(b > a);
        // A stale unlock does not free the new holder's lock.
        s.coordinate(CoordCmd::Unlock {
            container: 3,
            token: a,
        });
        assert_eq!(lock(&mut s, 0), StoreResp::Held { owner: 1 });
        s.coordinate(CoordCmd::Heartbeat {
            member: 2,
            ttl_us: 5,
        });
        // Alive while its lease lasts; lapsed (out of the affinity ring) once it runs out.
        assert_eq!(
            s.coordinate(CoordCmd::Lapsed { from: 0 }),
            StoreResp::NotFound
        );
        now.store(30, std::sync::atomic::Ordering::Relaxed);
        assert_eq!(
            s.coordinate(CoordCmd::Lapsed { from: 0 }),
            StoreResp::Member { index: 2 }
        );
    }
}
