//! The conductor (magnum-conductor / zun-compute): `rpc_workers` RPC slots take deliveries from
//! the bus; async ops go to an executor pool of `pool_workers`, and when it is exhausted the
//! `overflow` policy decides (the seed's Phase 0); blocking ops are answered inline on the slot.

use crate::cluster::{self, Ordering, Routing};
use crate::net::{Link, Net};
use crate::op::{OpKind, Status, Truth};
use crate::proto::{
    Answer, BusRole, CoordCmd, Failure, HostCmd, HostResp, Msg, RecordView, Reply, Route, StoreCmd,
    StoreResp, Task,
};
use crate::recorder::{Event, Recovery, SharedRecorder};
use crate::retry::{splitmix64, RetryBudget, RetryPolicy};
use crate::rpc::{lock, Redial, Unavailable};
use std::collections::{BTreeMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering as AtomicOrdering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{oneshot, Notify};

crate::keyword_enum! {
    /// `cluster.overflow`: what happens to an async op that finds every pool worker busy.
    pub enum Overflow, "an overflow policy" {
        /// The RPC slot runs the op itself and only then answers (the proposal;
        /// CallerRunsPolicy).
        CallerRuns = "caller-runs",
        /// The op fails at once (futurist's RejectedSubmission).
        Reject = "reject",
        /// The op waits for a worker (futurist's default unbounded queue).
        Queue = "queue",
        /// No limit: every op gets a worker at once (Zun's `spawn_n`).
        Unbounded = "unbounded",
    }
}

crate::keyword_enum! {
    /// `cluster.recovery`: what a restarting conductor does with the ops it owned.
    pub enum RecoveryPolicy, "a recovery policy" {
        /// Zun's `_init_container`: a create goes to Error, a delete is done again, anything
        /// else is issued again unless superseded.
        Zun = "zun",
        /// Nothing.
        None = "none",
    }
}

/// A conductor's settings.
#[derive(Debug, Clone)]
pub struct ConductorConfig {
    /// Its index (conductor-N has index N−1).
    pub index: u32,
    /// How many conductors the cluster has.
    pub conductors: u32,
    /// RPC slots taking deliveries from the bus.
    pub rpc_workers: u32,
    /// Executor pool workers.
    pub pool_workers: u32,
    /// Policy on pool exhaustion.
    pub overflow: Overflow,
    /// How ops reach conductors (where an op goes back to when it is re-queued).
    pub routing: Routing,
    /// How ops on one container are kept apart.
    pub ordering: Ordering,
    /// Lease of a distributed lock and of membership.
    pub lease_ttl: Duration,
    /// Restart recovery of the ops it owned.
    pub recovery: RecoveryPolicy,
    /// Period of the reconciler (zero: off).
    pub reconcile_interval: Duration,
    /// Age after which an op no live conductor owns is dispatched again (zero: off).
    pub orphan_after: Duration,
    /// Keep a membership lease in the store (affinity routing needs to know who is alive).
    pub membership: bool,
    /// `state-check`'s re-queue delays and attempts; the lock's polling.
    pub retry: RetryPolicy,
    /// Retry budget: ratio of retries to first attempts (0: none).
    pub budget_ratio: f64,
    /// Retry budget: retries per second always allowed.
    pub budget_min_per_s: f64,
    /// The bus.
    pub bus: SocketAddr,
    /// The store.
    pub store: SocketAddr,
    /// The hosts, by index.
    pub hosts: Vec<SocketAddr>,
    /// The network.
    pub net: Net,
    /// This node's address.
    pub ip: IpAddr,
}

impl ConductorConfig {
    /// A lone conductor as the foundation ran it: no ordering, no recovery, no background work.
    #[allow(clippy::too_many_arguments)]
    pub fn single(
        rpc_workers: u32,
        pool_workers: u32,
        overflow: Overflow,
        bus: SocketAddr,
        store: SocketAddr,
        hosts: Vec<SocketAddr>,
        net: Net,
        ip: IpAddr,
    ) -> Self {
        ConductorConfig {
            index: 0,
            conductors: 1,
            rpc_workers,
            pool_workers,
            overflow,
            routing: Routing::RoundRobin,
            ordering: Ordering::None,
            lease_ttl: Duration::from_secs(10),
            recovery: RecoveryPolicy::None,
            reconcile_interval: Duration::ZERO,
            orphan_after: Duration::ZERO,
            membership: false,
            retry: RetryPolicy::NEVER,
            budget_ratio: 0.0,
            budget_min_per_s: 0.0,
            bus,
            store,
            hosts,
            net,
            ip,
        }
    }
}

/// What holds an RPC slot after it took a delivery.
#[derive(Debug, Clone, Copy)]
enum Wait {
    /// A blocking op, answered inline.
    Blocking,
    /// The pool was exhausted and the slot runs the op itself.
    CallerRuns,
    /// The pool was exhausted and the op fails (its final write).
    Reject,
}

/// A delivery waiting for, or held by, an RPC slot.
#[derive(Debug, Clone, Copy)]
struct Delivery {
    tag: u64,
    task: Task,
    corr: u64,
    reply_to: u64,
    /// When it reached this conductor's backlog (µs).
    received_us: u64,
}

#[derive(Default)]
struct Slots {
    busy: u32,
    backlog: VecDeque<Delivery>,
}

#[derive(Default)]
struct Pool {
    busy: u32,
    /// Ops waiting for a worker (`overflow = "queue"`).
    queue: VecDeque<Task>,
    /// Workers with nothing to do, waiting to be handed an op.
    idle: Vec<Arc<Parked>>,
}

/// A pool worker's mailbox: it sleeps on `wake` until an op is put in `job`.
#[derive(Default)]
struct Parked {
    job: Mutex<Option<Task>>,
    wake: Notify,
}

/// Waiters for one container's in-process lock (`local-lock*`).
#[derive(Default)]
struct LockQueue {
    /// Whether a worker holds the lock.
    held: bool,
    /// Unfair: the workers waiting, woken in no particular order.
    waiters: VecDeque<oneshot::Sender<()>>,
    /// Releases so far: the unfair lock's pick among waiters is keyed on it.
    releases: u64,
    /// Fair: the ops in the order their deliveries were taken (the Phase 0 job queue keyed by
    /// container), whether or not their worker has come for the lock yet.
    order: VecDeque<u64>,
    /// Fair: the workers waiting, by op.
    waiting: BTreeMap<u64, oneshot::Sender<()>>,
}

impl LockQueue {
    /// Fair: gives the free lock to the first op in line, if its worker waits for it.
    fn grant_next(&mut self) {
        if self.held {
            return;
        }
        if let Some(head) = self.order.front().copied() {
            if let Some(tx) = self.waiting.remove(&head) {
                self.order.pop_front();
                self.held = true;
                // A worker gone meanwhile (its conductor is going down) passes its turn on.
                if tx.send(()).is_err() {
                    self.held = false;
                    self.grant_next();
                }
            }
        }
    }

    fn idle(&self) -> bool {
        !self.held && self.waiters.is_empty() && self.order.is_empty()
    }
}

/// How an op's run ended.
enum Outcome {
    /// It ran (or failed) and its record is terminal.
    Done(bool),
    /// Another conductor runs it, or it is already terminal: a duplicate delivery.
    Duplicate,
    /// `state-check`: an earlier op of its container is not terminal.
    NotReady,
    /// `state-check`: its container is in Error; the op failed without running.
    Refused,
}

struct Shared {
    cfg: ConductorConfig,
    rec: SharedRecorder,
    /// The op path's store connection.
    store: Redial,
    /// Background work's store connection (heartbeats, scans, the reconciler): its traffic
    /// does not queue behind, or reorder, the ops' own.
    coord: Redial,
    hosts: Vec<Redial>,
    /// The reconciler's host connections, apart from the ops' for the same reason.
    scan_hosts: Vec<Redial>,
    bus: Mutex<Option<Link>>,
    slots: Mutex<Slots>,
    pool: Mutex<Pool>,
    locks: Mutex<BTreeMap<u64, LockQueue>>,
    budget: Mutex<RetryBudget>,
}

/// Runs a conductor: restart recovery first (Zun's `init_containers`), then it consumes the bus
/// for ever, dialling it again whenever it is lost; membership, the reconciler and the orphan
/// sweeper run beside it.
pub async fn run(cfg: ConductorConfig, rec: SharedRecorder) {
    let dial = |addr| Redial::new(&cfg.net, cfg.ip, addr);
    let me = Arc::new(Shared {
        store: dial(cfg.store),
        coord: dial(cfg.store),
        hosts: cfg.hosts.iter().map(|&a| dial(a)).collect(),
        scan_hosts: cfg.hosts.iter().map(|&a| dial(a)).collect(),
        budget: Mutex::new(RetryBudget::new(cfg.budget_ratio, cfg.budget_min_per_s)),
        cfg,
        rec,
        bus: Mutex::new(None),
        slots: Mutex::default(),
        pool: Mutex::default(),
        locks: Mutex::default(),
    });
    // The ops' own connections first: each connection draws its latencies from a stream keyed
    // by its rank between its two ends, so dialling them before any background connection
    // keeps an op's latencies the same whatever background work is configured.
    let _ = me.store.get().await;
    for h in &me.hosts {
        let _ = h.get().await;
    }
    if me.cfg.membership {
        tokio::spawn(me.clone().heartbeat());
    }
    if me.cfg.recovery == RecoveryPolicy::Zun {
        me.recover().await;
    }
    if !me.cfg.reconcile_interval.is_zero() {
        tokio::spawn(me.clone().reconciler());
    }
    if !me.cfg.orphan_after.is_zero() {
        tokio::spawn(me.clone().sweeper());
    }
    me.consume().await;
}

/// The status a record should have for what its host holds.
pub fn status_of(truth: Truth) -> Status {
    match truth {
        Truth::Absent => Status::Deleted,
        Truth::Created => Status::Created,
        Truth::Running => Status::Running,
        Truth::Stopped => Status::Stopped,
        Truth::Paused => Status::Paused,
    }
}

fn micros(d: Duration) -> u64 {
    d.as_micros().min(u128::from(u64::MAX)) as u64
}

/// Holds a container's in-process lock; releasing it wakes a waiter.
struct LocalGuard<'a> {
    me: &'a Shared,
    container: u64,
}

impl Drop for LocalGuard<'_> {
    fn drop(&mut self) {
        self.me.unlock_local(self.container);
    }
}

impl Shared {
    fn send_bus(&self, msg: Msg) -> bool {
        lock(&self.bus).as_ref().is_some_and(|l| l.send(msg))
    }

    /// Consumes the bus for ever. Whatever waited in the backlog when the bus was lost was
    /// never acknowledged, so the bus delivers it again: the backlog is dropped.
    async fn consume(self: &Arc<Self>) {
        let mut backoff = Duration::from_millis(10);
        loop {
            let (link, mut reader) = match self.cfg.net.connect(self.cfg.ip, self.cfg.bus).await {
                Ok(c) => c,
                Err(_) => {
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(2));
                    continue;
                }
            };
            backoff = Duration::from_millis(10);
            link.send(Msg::Hello(BusRole::Consumer {
                index: self.cfg.index,
            }));
            *lock(&self.bus) = Some(link);
            while let Ok(Some(msg)) = reader.next().await {
                if let Msg::Deliver {
                    tag,
                    task,
                    corr,
                    reply_to,
                } = msg
                {
                    self.on_deliver(Delivery {
                        tag,
                        task,
                        corr,
                        reply_to,
                        received_us: self.rec.now_us(),
                    });
                }
            }
            *lock(&self.bus) = None;
            lock(&self.slots).backlog.clear();
            tokio::time::sleep(backoff).await;
        }
    }

    fn on_deliver(self: &Arc<Self>, d: Delivery) {
        let take = {
            let mut s = lock(&self.slots);
            if s.busy < self.cfg.rpc_workers {
                s.busy += 1;
                Some(s.busy)
            } else {
                s.backlog.push_back(d);
                None
            }
        };
        let Some(busy) = take else { return };
        // Most deliveries are handed to a worker at once: a slot holds them for no time, so
        // that part runs here, without a task, and the slot is free again at the same instant.
        let Some(wait) = self.take_now(&d) else {
            lock(&self.slots).busy -= 1;
            return;
        };
        self.rec.record(Event::RpcBusy {
            conductor: self.cfg.index,
            busy,
        });
        let me = self.clone();
        tokio::spawn(async move { me.slot(d, wait).await });
    }

    /// One RPC slot: finishes a delivery that had to wait, then takes whatever waits in the
    /// backlog.
    async fn slot(self: Arc<Self>, d: Delivery, wait: Wait) {
        self.finish(&d, wait).await;
        loop {
            let next = {
                let mut s = lock(&self.slots);
                match s.backlog.pop_front() {
                    Some(n) => Ok(n),
                    None => {
                        s.busy -= 1;
                        Err(s.busy)
                    }
                }
            };
            match next {
                Ok(n) => {
                    if let Some(wait) = self.take_now(&n) {
                        self.finish(&n, wait).await;
                    }
                }
                Err(busy) => {
                    self.rec.record(Event::RpcBusy {
                        conductor: self.cfg.index,
                        busy,
                    });
                    return;
                }
            }
        }
    }

    fn reply_of(d: &Delivery, answer: Answer) -> Option<Reply> {
        d.task.call.then_some(Reply {
            reply_to: d.reply_to,
            corr: d.corr,
            answer,
        })
    }

    fn reply(&self, d: &Delivery, answer: Answer) {
        if let Some(r) = Self::reply_of(d, answer) {
            self.send_bus(Msg::Reply(r));
        }
    }

    /// Acknowledges the delivery: the slot has taken it, and from now on it dies with this
    /// conductor. An answer already known travels with the acknowledgement.
    fn ack(&self, d: &Delivery, answer: Option<Answer>) {
        let reply = answer.and_then(|a| Self::reply_of(d, a));
        self.send_bus(Msg::Ack { tag: d.tag, reply });
        self.rec.record(Event::BacklogWait {
            conductor: self.cfg.index,
            wait_us: self.rec.now_us().saturating_sub(d.received_us),
        });
    }

    /// An RPC slot takes a delivery: it acknowledges it and, for an async op, validates and
    /// tries to take a pool worker. Everything here happens at once; what must wait on the slot
    /// (a blocking op, or an op the overflow policy keeps on the slot) is returned.
    fn take_now(self: &Arc<Self>, d: &Delivery) -> Option<Wait> {
        let me = self.cfg.index;
        let task = d.task;
        if task.op.kind.is_blocking() {
            self.ack(d, None);
            return Some(Wait::Blocking);
        }
        // Validation and housekeeping are in memory (a fair lock's line is joined here); then
        // the op tries to take a worker.
        self.reserve(&task);
        let (busy, parked) = {
            let mut p = lock(&self.pool);
            if p.busy < self.cfg.pool_workers || self.cfg.overflow == Overflow::Unbounded {
                p.busy += 1;
                (Some(p.busy), p.idle.pop())
            } else {
                if self.cfg.overflow == Overflow::Queue {
                    p.queue.push_back(task);
                }
                (None, None)
            }
        };
        // Unbounded never refuses, but an arrival beyond `pool_workers` still found them busy.
        let exhausted = busy.is_none_or(|b| b > self.cfg.pool_workers);
        self.rec.record(Event::PoolArrival {
            conductor: me,
            op: task.op,
            exhausted,
        });
        if let Some(busy) = busy {
            self.rec.record(Event::PoolBusy {
                conductor: me,
                busy,
            });
            match parked {
                Some(w) => {
                    *lock(&w.job) = Some(task);
                    w.wake.notify_one();
                }
                // Workers start on demand, up to `pool_workers` (more only when unbounded).
                None => {
                    let (this, w) = (self.clone(), Arc::new(Parked::default()));
                    *lock(&w.job) = Some(task);
                    tokio::spawn(async move { this.worker(w).await });
                }
            }
            // Handed to a worker: the call's answer goes with the acknowledgement.
            self.ack(d, Some(Answer::Accepted));
            return None;
        }
        match self.cfg.overflow {
            Overflow::CallerRuns => {
                self.ack(d, None);
                self.rec.record(Event::CallerRuns { conductor: me });
                Some(Wait::CallerRuns)
            }
            Overflow::Reject => {
                self.ack(d, None);
                Some(Wait::Reject)
            }
            // Queued above; a worker that frees up takes it.
            Overflow::Queue => {
                self.ack(d, Some(Answer::Accepted));
                None
            }
            Overflow::Unbounded => unreachable!("unbounded always takes a worker"),
        }
    }

    /// The part of taking a delivery that holds the RPC slot.
    async fn finish(&self, d: &Delivery, wait: Wait) {
        let task = d.task;
        match wait {
            Wait::Blocking => {
                let answer = self.blocking(&task).await;
                self.reply(d, answer);
                self.rec.record(Event::Terminal {
                    op: task.op,
                    ok: answer == Answer::Done,
                });
            }
            Wait::CallerRuns => {
                self.execute(task).await;
                self.reply(d, Answer::Accepted);
            }
            Wait::Reject => {
                self.unreserve(&task);
                // The op never ran: its record goes, the container's status stays.
                self.store
                    .store_until_answered(StoreCmd::Abandon { op: task.op.id })
                    .await;
                self.rec.record(Event::Terminal {
                    op: task.op,
                    ok: false,
                });
                self.reply(d, Answer::Error(Failure::PoolRejected));
            }
        }
    }

    /// A pool worker: runs the op it is handed and whatever waits in the pool's queue, then
    /// parks until the next one.
    async fn worker(self: Arc<Self>, me: Arc<Parked>) {
        loop {
            let taken = lock(&me.job).take();
            let Some(mut task) = taken else {
                me.wake.notified().await;
                continue;
            };
            loop {
                self.execute(task).await;
                let next = {
                    let mut p = lock(&self.pool);
                    match p.queue.pop_front() {
                        Some(n) => Ok(n),
                        None => {
                            p.busy -= 1;
                            p.idle.push(me.clone());
                            Err(p.busy)
                        }
                    }
                };
                match next {
                    Ok(n) => task = n,
                    Err(busy) => {
                        self.rec.record(Event::PoolBusy {
                            conductor: self.cfg.index,
                            busy,
                        });
                        break;
                    }
                }
            }
        }
    }

    /// Runs an async op under the ordering strategy: the store write that takes it, the host
    /// call, the store write that ends it.
    async fn execute(&self, task: Task) {
        let start = self.rec.now_us();
        let outcome = self.run_ordered(&task, false).await;
        let end = self.rec.now_us();
        self.rec.record(Event::Hold {
            conductor: self.cfg.index,
            hold_us: end.saturating_sub(start),
        });
        self.conclude(task, outcome).await;
    }

    /// Records how an op's run ended, and re-queues or gives up an op that was not ready.
    async fn conclude(&self, task: Task, outcome: Outcome) {
        match outcome {
            Outcome::Done(ok) => self.rec.record(Event::Terminal { op: task.op, ok }),
            Outcome::Duplicate => {}
            Outcome::NotReady => self.requeue(task).await,
            Outcome::Refused => self.give_up(task).await,
        }
    }

    /// Runs an op under the ordering strategy; `reissue`: restart recovery runs again an op
    /// this conductor had begun.
    async fn run_ordered(&self, task: &Task, reissue: bool) -> Outcome {
        match self.cfg.ordering {
            Ordering::None => self.run_plain(task, reissue).await,
            Ordering::LocalLock | Ordering::LocalLockFair => {
                let _guard = self.lock_local(task).await;
                self.run_checked(task, 0, false, reissue).await
            }
            Ordering::DistributedLock => {
                let (token, done) = self.lock_distributed(task).await;
                let out = self.run_checked(task, token, false, reissue).await;
                done.store(true, AtomicOrdering::Relaxed);
                // One try: a lock not released lapses with its lease.
                if let Some(c) = self.store.current() {
                    let container = task.op.container;
                    let _ = c.coord(CoordCmd::Unlock { container, token }).await;
                }
                out
            }
            Ordering::StateCheck => {
                if task.attempt <= 1 {
                    lock(&self.budget).request(self.rec.now_us());
                }
                self.run_checked(task, 0, true, reissue).await
            }
        }
    }

    /// No guard at all (`ordering = "none"`): the hand-off write goes without waiting (the
    /// connection keeps it ahead of the final write, and nothing here depends on its answer).
    async fn run_plain(&self, task: &Task, reissue: bool) -> Outcome {
        let Ok(store) = self.store.get().await else {
            return Outcome::Done(false);
        };
        let begin = StoreCmd::Begin {
            op: task.op.id,
            owner: self.cfg.index,
            check: false,
            reissue,
        };
        if store.store_write(begin).is_err() {
            return Outcome::Done(false);
        }
        let ok = self.host_call(task, 0).await.is_ok_and(|r| r.is_ok());
        self.store
            .store_until_answered(StoreCmd::Finish { op: task.op.id, ok })
            .await;
        Outcome::Done(ok)
    }

    /// Takes the op in the store first (refused for a duplicate, or, with `check`, for an op
    /// whose predecessors are not all terminal), then runs it.
    async fn run_checked(&self, task: &Task, token: u64, check: bool, reissue: bool) -> Outcome {
        let begin = StoreCmd::Begin {
            op: task.op.id,
            owner: self.cfg.index,
            check,
            reissue,
        };
        let token = match self.store.store_until_answered(begin).await {
            // The lock's token fences when there is a lock; otherwise the op's own grant.
            StoreResp::Began { token: own } => {
                if token == 0 {
                    own
                } else {
                    token
                }
            }
            StoreResp::NotReady => return Outcome::NotReady,
            StoreResp::ContainerError | StoreResp::Conflict(_) => {
                let fail = CoordCmd::Fail {
                    op: task.op.id,
                    error: false,
                };
                self.store.coord_until_answered(fail).await;
                return Outcome::Refused;
            }
            _ => return Outcome::Duplicate,
        };
        let ok = self.host_call(task, token).await.is_ok_and(|r| r.is_ok());
        self.store
            .store_until_answered(StoreCmd::Finish { op: task.op.id, ok })
            .await;
        Outcome::Done(ok)
    }

    /// `state-check`: the op goes back to the bus with a not-before time from the retry
    /// policy, or is given up when attempts or the retry budget run out.
    async fn requeue(&self, task: Task) {
        let policy = self.cfg.retry;
        let next = task.attempt.saturating_add(1);
        let key = task.op.id;
        // Decorrelated jitter grows from the previous delay: replayed, it costs nothing to keep.
        let prev = (2..next).fold(Duration::ZERO, |p, n| policy.delay(n, p, key).unwrap_or(p));
        let delay = policy.delay(next, prev, key);
        let allowed = delay.is_some() && lock(&self.budget).try_retry(self.rec.now_us());
        let Some(delay) = delay.filter(|_| allowed) else {
            self.give_up(task).await;
            return;
        };
        let delay_us = micros(delay).max(1);
        self.rec.record(Event::NotReady {
            conductor: self.cfg.index,
            op: task.op,
            seq: task.seq,
            attempt: task.attempt,
            delay_us,
        });
        let route = match self.cfg.routing {
            Routing::RoundRobin => Route::Topic,
            Routing::ByHost | Routing::Affinity => Route::Conductor(self.cfg.index),
        };
        // Its call was answered when a worker took it; what goes back is a cast. If the bus is
        // gone the op stays accepted in the store, for the orphan sweeper.
        self.send_bus(Msg::Publish {
            route,
            task: Task {
                attempt: next,
                call: false,
                ..task
            },
            corr: 0,
            delay_us,
        });
    }

    /// Fails an op that will not run (its record is terminal; the container is left as is).
    async fn give_up(&self, task: Task) {
        let fail = CoordCmd::Fail {
            op: task.op.id,
            error: false,
        };
        self.store.coord_until_answered(fail).await;
        self.rec.record(Event::GaveUp {
            conductor: self.cfg.index,
            op: task.op,
            seq: task.seq,
            attempts: task.attempt,
        });
        self.rec.record(Event::Terminal {
            op: task.op,
            ok: false,
        });
    }

    fn fair(&self) -> bool {
        self.cfg.ordering == Ordering::LocalLockFair
    }

    /// Fair lock: the op takes its place in its container's line as its delivery is taken,
    /// before any worker runs it, so the line follows the order of the queue it came from.
    fn reserve(&self, task: &Task) {
        if self.fair() && !task.op.kind.is_blocking() {
            lock(&self.locks)
                .entry(task.op.container)
                .or_default()
                .order
                .push_back(task.op.id);
        }
    }

    /// Fair lock: an op that will not run after all leaves the line.
    fn unreserve(&self, task: &Task) {
        if !self.fair() {
            return;
        }
        let mut m = lock(&self.locks);
        let c = task.op.container;
        if let Some(q) = m.get_mut(&c) {
            q.order.retain(|&o| o != task.op.id);
            q.grant_next();
            if q.idle() {
                m.remove(&c);
            }
        }
    }

    /// Waits for the container's in-process lock.
    async fn lock_local(&self, task: &Task) -> LocalGuard<'_> {
        let container = task.op.container;
        let rx = {
            let mut m = lock(&self.locks);
            let q = m.entry(container).or_default();
            if self.fair() {
                // An op that was not in line (restart recovery) joins at its end.
                if !q.order.contains(&task.op.id) {
                    q.order.push_back(task.op.id);
                }
                if !q.held && q.order.front() == Some(&task.op.id) {
                    q.order.pop_front();
                    q.held = true;
                    None
                } else {
                    let (tx, rx) = oneshot::channel();
                    q.waiting.insert(task.op.id, tx);
                    Some(rx)
                }
            } else if !q.held {
                q.held = true;
                None
            } else {
                let (tx, rx) = oneshot::channel();
                q.waiters.push_back(tx);
                Some(rx)
            }
        };
        if let Some(rx) = rx {
            let t0 = self.rec.now_us();
            let _ = rx.await;
            self.rec.record(Event::LockWait {
                conductor: self.cfg.index,
                op: task.op,
                wait_us: self.rec.now_us().saturating_sub(t0),
            });
        }
        LocalGuard {
            me: self,
            container,
        }
    }

    /// Hands the lock on: to the next op in line (fair), or to any waiter (unfair: like a
    /// thread lock, the next holder is whoever the scheduler wakes first, so a later op can
    /// overtake an earlier one).
    fn unlock_local(&self, container: u64) {
        let mut m = lock(&self.locks);
        let Some(q) = m.get_mut(&container) else {
            return;
        };
        q.held = false;
        if self.fair() {
            q.grant_next();
        } else {
            while !q.waiters.is_empty() {
                let n = q.waiters.len() as u64;
                let i = (splitmix64(container ^ splitmix64(q.releases)) % n) as usize;
                q.releases += 1;
                if let Some(tx) = q.waiters.remove(i) {
                    if tx.send(()).is_ok() {
                        q.held = true;
                        break;
                    }
                }
            }
        }
        if q.idle() {
            m.remove(&container);
        }
    }

    /// Takes the container's lease lock in the store, polling while another holds it, and
    /// renews it every third of its lease until `done` is set. Returns its fencing token.
    async fn lock_distributed(&self, task: &Task) -> (u64, Arc<AtomicBool>) {
        let container = task.op.container;
        let ttl_us = micros(self.cfg.lease_ttl).max(1);
        let policy = self.cfg.retry;
        let t0 = self.rec.now_us();
        let (mut polls, mut prev) = (1u32, Duration::ZERO);
        let token = loop {
            let cmd = CoordCmd::Lock {
                container,
                owner: self.cfg.index,
                ttl_us,
            };
            if let StoreResp::Locked { token } = self.store.coord_until_answered(cmd).await {
                break token;
            }
            // A lock is waited for, not given up: the policy only spaces the polls.
            polls = polls.saturating_add(1);
            let n = polls.min(policy.max_attempts.max(2));
            let d = policy
                .delay(n, prev, task.op.id ^ u64::from(polls))
                .unwrap_or(policy.base)
                .max(Duration::from_millis(1));
            prev = d;
            tokio::time::sleep(d).await;
        };
        if polls > 1 {
            self.rec.record(Event::LockWait {
                conductor: self.cfg.index,
                op: task.op,
                wait_us: self.rec.now_us().saturating_sub(t0),
            });
        }
        let done = Arc::new(AtomicBool::new(false));
        if let Some(store) = self.store.current() {
            let (d, every) = (done.clone(), self.cfg.lease_ttl / 3);
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(every).await;
                    if d.load(AtomicOrdering::Relaxed) {
                        return;
                    }
                    let renew = CoordCmd::Renew {
                        container,
                        token,
                        ttl_us,
                    };
                    // A holder that cannot renew loses the lock without knowing (tooz): only
                    // fencing at the host stops what it does next.
                    if !matches!(store.coord(renew).await, Ok(StoreResp::Ok)) {
                        return;
                    }
                }
            });
        }
        (token, done)
    }

    async fn host_call(&self, task: &Task, token: u64) -> Result<HostResp, Unavailable> {
        let host = self.hosts.get(task.host as usize).ok_or(Unavailable)?;
        host.get()
            .await?
            .host(HostCmd {
                op: task.op,
                seq: task.seq,
                attempt: task.attempt,
                conductor: self.cfg.index,
                token,
            })
            .await
    }

    async fn blocking(&self, task: &Task) -> Answer {
        let ok = if task.op.kind == OpKind::Show {
            let get = StoreCmd::Get {
                container: task.op.container,
            };
            match self.store.get().await {
                Ok(c) => matches!(c.store(get).await, Ok(StoreResp::Record { .. })),
                Err(_) => false,
            }
        } else {
            match self.host_call(task, 0).await {
                Ok(Ok(_)) => true,
                Ok(Err(e)) => return Answer::Error(Failure::Host(e)),
                Err(Unavailable) => false,
            }
        };
        if ok {
            Answer::Done
        } else {
            Answer::Error(Failure::Unavailable)
        }
    }

    /// Keeps this conductor's membership lease alive.
    async fn heartbeat(self: Arc<Self>) {
        let ttl_us = micros(self.cfg.lease_ttl).max(1);
        let every = (self.cfg.lease_ttl / 3).max(Duration::from_millis(1));
        loop {
            if let Ok(c) = self.coord.get().await {
                let _ = c
                    .coord(CoordCmd::Heartbeat {
                        member: self.cfg.index,
                        ttl_us,
                    })
                    .await;
            }
            tokio::time::sleep(every).await;
        }
    }

    /// Restart recovery (Zun's `_init_container`): every op this conductor owned and did not
    /// finish — a create goes to Error, a delete is done again, anything else is issued again
    /// unless a later op of its container has started.
    async fn recover(&self) {
        let mut from = 0;
        loop {
            let scan = CoordCmd::Owned {
                owner: self.cfg.index,
                from,
            };
            let StoreResp::Op(v) = self.coord.coord_until_answered(scan).await else {
                return;
            };
            from = v.op.id + 1;
            let task = Task {
                op: v.op,
                seq: v.seq,
                host: v.host,
                call: false,
                attempt: 2,
            };
            let action = match v.op.kind {
                OpKind::Create => Recovery::MarkedError,
                OpKind::Delete => Recovery::ForceDeleted,
                _ if v.superseded => Recovery::Superseded,
                _ => Recovery::Reissued,
            };
            self.rec.record(Event::Recovered {
                conductor: self.cfg.index,
                op: v.op,
                seq: v.seq,
                action,
            });
            match action {
                Recovery::MarkedError | Recovery::Superseded => {
                    let fail = CoordCmd::Fail {
                        op: v.op.id,
                        error: action == Recovery::MarkedError,
                    };
                    self.coord.coord_until_answered(fail).await;
                    self.rec.record(Event::Terminal {
                        op: v.op,
                        ok: false,
                    });
                }
                Recovery::ForceDeleted | Recovery::Reissued => {
                    let outcome = self.run_ordered(&task, true).await;
                    self.conclude(task, outcome).await;
                }
            }
        }
    }

    /// Zun's periodic sync: every `reconcile_interval`, the records of the containers on the
    /// hosts this conductor owns are compared with what the hosts hold, and a record that
    /// disagrees (and has no op running) takes the host's truth.
    async fn reconciler(self: Arc<Self>) {
        const PAGE: u32 = 512;
        let n = self.cfg.hosts.len() as u32;
        loop {
            tokio::time::sleep(self.cfg.reconcile_interval).await;
            for h in
                (0..n).filter(|&h| cluster::host_owner(h, self.cfg.conductors) == self.cfg.index)
            {
                let _ = self.reconcile_host(h, PAGE).await;
            }
        }
    }

    async fn reconcile_host(&self, h: u32, page: u32) -> Result<(), Unavailable> {
        // Records first, then the host: a record read before the truth can only be older than
        // it, and any op that begins after the read bumps the record's version, so the
        // compare-and-swap below refuses to write a truth that an op has moved past.
        let store = self.coord.get().await?;
        let recs = read_pages(
            page,
            |r: &RecordView| r.id,
            |after| store.list_records(h, after, page),
        )
        .await?;
        let host = self
            .scan_hosts
            .get(h as usize)
            .ok_or(Unavailable)?
            .get()
            .await?;
        let truths: BTreeMap<u64, Truth> = read_pages(
            page,
            |(k, _): &(u64, Truth)| *k,
            |after| host.list_truths(after, page),
        )
        .await?
        .into_iter()
        .collect();
        for r in &recs {
            if r.busy || matches!(r.status, Status::Creating | Status::Deleting) {
                continue;
            }
            let truth = truths.get(&r.id).copied().unwrap_or(Truth::Absent);
            let want = status_of(truth);
            if r.status == want {
                continue;
            }
            let set = StoreCmd::SetStatus {
                container: r.id,
                version: r.version,
                status: want,
            };
            if store.store(set).await? == StoreResp::Ok {
                self.rec.record(Event::Reconciled {
                    conductor: self.cfg.index,
                    container: r.id,
                    from: r.status,
                    to: want,
                });
            }
        }
        Ok(())
    }

    /// The orphan sweeper: an accepted op that no conductor began after `orphan_after` (its
    /// message died with a conductor or the bus) is dispatched again. Every conductor sweeps;
    /// the store hands each orphan to one sweeper (finding it starts its age over), so none is
    /// dispatched twice by two sweepers.
    async fn sweeper(self: Arc<Self>) {
        let every = (self.cfg.orphan_after / 2).max(Duration::from_millis(10));
        let age_us = micros(self.cfg.orphan_after);
        loop {
            tokio::time::sleep(every).await;
            let Ok(store) = self.coord.get().await else {
                continue;
            };
            let members = if self.cfg.routing == Routing::Affinity {
                match ring_members(&store, self.cfg.conductors).await {
                    Ok(m) => m,
                    Err(Unavailable) => continue,
                }
            } else {
                Vec::new()
            };
            let mut from = 0;
            loop {
                let Ok(StoreResp::Op(v)) = store.coord(CoordCmd::Orphan { from, age_us }).await
                else {
                    break;
                };
                from = v.op.id + 1;
                self.rec.record(Event::Orphaned {
                    conductor: self.cfg.index,
                    op: v.op,
                    seq: v.seq,
                });
                let route = cluster::route(
                    self.cfg.routing,
                    self.cfg.conductors,
                    &members,
                    v.op.container,
                    v.host,
                );
                self.send_bus(Msg::Publish {
                    route,
                    task: Task {
                        op: v.op,
                        seq: v.seq,
                        host: v.host,
                        call: false,
                        attempt: 1,
                    },
                    corr: 0,
                    delay_us: 0,
                });
            }
        }
    }
}

/// Reads a listing page by page: `fetch(after)` gives up to `page` items following the key
/// `after` (`None`: from the start), in key order; a short page is the last.
async fn read_pages<T, Fut>(
    page: u32,
    key: impl Fn(&T) -> u64,
    fetch: impl Fn(Option<u64>) -> Fut,
) -> Result<Vec<T>, Unavailable>
where
    Fut: std::future::Future<Output = Result<Vec<T>, Unavailable>>,
{
    let mut all = Vec::new();
    let mut after = None;
    loop {
        let got = fetch(after).await?;
        after = got.last().map(&key);
        let last = got.len() < page as usize;
        all.extend(got);
        if last {
            return Ok(all);
        }
    }
}

/// The members of the affinity ring: every one of the `conductors`, but those whose membership
/// lease ran out (tooz's partitioner drops a member that stops heartbeating; one still starting
/// has not joined and is not dropped).
pub async fn ring_members(
    store: &crate::rpc::RpcClient,
    conductors: u32,
) -> Result<Vec<u32>, Unavailable> {
    let mut lapsed = std::collections::BTreeSet::new();
    let mut from = 0;
    while let StoreResp::Member { index } = store.coord(CoordCmd::Lapsed { from }).await? {
        lapsed.insert(index);
        match index.checked_add(1) {
            Some(f) => from = f,
            None => break,
        }
    }
    Ok((0..conductors).filter(|c| !lapsed.contains(c)).collect())
}
