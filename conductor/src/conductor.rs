//! The conductor (magnum-conductor / zun-compute): `rpc_workers` RPC slots take deliveries from
//! the bus; async ops go to an executor pool of `pool_workers`, and when it is exhausted the
//! `overflow` policy decides (the seed's Phase 0); blocking ops are answered inline on the slot.

use crate::net::{Link, Net};
use crate::proto::{Answer, BusRole, Failure, HostCmd, Msg, Reply, StoreCmd, StoreResp, Task};
use crate::recorder::{Event, SharedRecorder};
use crate::rpc::{lock, RpcClient, Unavailable};
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use tokio::sync::Notify;

/// What happens to an async op that finds every pool worker busy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Overflow {
    /// The RPC slot runs the op itself and only then answers (the seed; CallerRunsPolicy).
    CallerRuns,
    /// The op fails at once (futurist's RejectedSubmission).
    Reject,
    /// The op waits for a worker (futurist's default unbounded queue).
    Queue,
    /// No limit: every op gets a worker at once (Zun's `spawn_n`).
    Unbounded,
}

/// A conductor's settings.
#[derive(Debug, Clone)]
pub struct ConductorConfig {
    /// Its index (conductor-N has index N−1).
    pub index: u32,
    /// RPC slots taking deliveries from the bus.
    pub rpc_workers: u32,
    /// Executor pool workers.
    pub pool_workers: u32,
    /// Policy on pool exhaustion.
    pub overflow: Overflow,
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

/// Why a conductor stopped.
#[derive(Debug, thiserror::Error)]
pub enum ConductorError {
    /// A service it needs could not be reached at start.
    #[error("cannot reach {what} at {addr}: {source}")]
    Connect {
        /// Which service.
        what: &'static str,
        /// Its address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The bus connection ended.
    #[error("lost the bus")]
    BusLost,
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

struct Shared {
    cfg: ConductorConfig,
    rec: SharedRecorder,
    store: RpcClient,
    hosts: Vec<RpcClient>,
    bus: Link,
    slots: Mutex<Slots>,
    pool: Mutex<Pool>,
}

/// Runs a conductor until its bus connection ends.
pub async fn run(cfg: ConductorConfig, rec: SharedRecorder) -> Result<(), ConductorError> {
    let (net, ip) = (&cfg.net, cfg.ip);
    let connect = |what, addr| async move {
        RpcClient::connect(net, ip, addr)
            .await
            .map_err(|source| ConductorError::Connect { what, addr, source })
    };
    let store = connect("the store", cfg.store).await?;
    let mut hosts = Vec::with_capacity(cfg.hosts.len());
    for &addr in &cfg.hosts {
        hosts.push(connect("a host", addr).await?);
    }
    let (bus, mut reader) =
        cfg.net
            .connect(cfg.ip, cfg.bus)
            .await
            .map_err(|source| ConductorError::Connect {
                what: "the bus",
                addr: cfg.bus,
                source,
            })?;
    bus.send(Msg::Hello(BusRole::Consumer { index: cfg.index }));
    let me = Arc::new(Shared {
        cfg,
        rec,
        store,
        hosts,
        bus,
        slots: Mutex::default(),
        pool: Mutex::default(),
    });
    while let Ok(Some(msg)) = reader.next().await {
        if let Msg::Deliver {
            tag,
            task,
            corr,
            reply_to,
        } = msg
        {
            me.on_deliver(Delivery {
                tag,
                task,
                corr,
                reply_to,
                received_us: me.rec.now_us(),
            });
        }
    }
    Err(ConductorError::BusLost)
}

impl Shared {
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
            self.bus.send(Msg::Reply(r));
        }
    }

    /// Acknowledges the delivery: the slot has taken it, and from now on it dies with this
    /// conductor. An answer already known travels with the acknowledgement.
    fn ack(&self, d: &Delivery, answer: Option<Answer>) {
        let reply = answer.and_then(|a| Self::reply_of(d, a));
        self.bus.send(Msg::Ack { tag: d.tag, reply });
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
        // Validation and housekeeping are in memory; then the op tries to take a worker.
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
                // The op never ran: its record goes, the container's status stays.
                let _ = self.store.store(StoreCmd::Abandon { op: task.op.id }).await;
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

    /// Runs an async op: the store write that takes it, the host call, the store write that ends it.
    async fn execute(&self, task: Task) {
        let start = self.rec.now_us();
        // An unreachable store or host fails the op.
        let ok = self.run_op(&task).await.unwrap_or_default();
        let end = self.rec.now_us();
        self.rec.record(Event::Hold {
            conductor: self.cfg.index,
            hold_us: end.saturating_sub(start),
        });
        self.rec.record(Event::Terminal { op: task.op, ok });
    }

    async fn run_op(&self, task: &Task) -> Result<bool, Unavailable> {
        // The hand-off state is written without waiting: the connection keeps it ahead of the
        // final write, and nothing here depends on its answer.
        self.store.store_write(StoreCmd::Begin {
            op: task.op.id,
            owner: self.cfg.index,
            check: false,
        })?;
        let ok = self.host_call(task).await.is_ok_and(|r| r.is_ok());
        self.store
            .store(StoreCmd::Finish { op: task.op.id, ok })
            .await?;
        Ok(ok)
    }

    async fn host_call(&self, task: &Task) -> Result<crate::proto::HostResp, Unavailable> {
        let host = self.hosts.get(task.host as usize).ok_or(Unavailable)?;
        host.host(HostCmd {
            op: task.op,
            seq: task.seq,
            attempt: 1,
            conductor: self.cfg.index,
            token: 0,
        })
        .await
    }

    async fn blocking(&self, task: &Task) -> Answer {
        use crate::op::OpKind;
        let ok = if task.op.kind == OpKind::Show {
            matches!(
                self.store
                    .store(StoreCmd::Get {
                        container: task.op.container
                    })
                    .await,
                Ok(StoreResp::Record { .. })
            )
        } else {
            match self.host_call(task).await {
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
}
