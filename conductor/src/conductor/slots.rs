//! The RPC slots: `rpc_workers` of them take deliveries from the bus, in order, into what waits
//! in the conductor's backlog. A slot acknowledges a delivery, hands an async op to the pool
//! (or keeps it, as the overflow policy says) and answers a blocking op inline.

use super::pool::Admission;
use super::Conductor;
use crate::cancel::{cancel, Cancelled};
use crate::op::OpKind;
use crate::proto::{Answer, BusRole, Failure, Msg, Refusal, Reply, StoreCmd, StoreResp, Task};
use crate::recorder::Event;
use crate::rpc::{lock, Unavailable};
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

/// What holds an RPC slot after it took a delivery.
#[derive(Debug, Clone, Copy)]
enum Wait {
    /// A blocking op, answered inline.
    Blocking,
    /// The pool was exhausted and the slot runs the op itself.
    CallerRuns,
    /// The pool was exhausted and the op fails (its final write).
    Reject,
    /// The op's deadline had passed (`client.cancel = "deadline"`): it is cancelled unrun.
    Cancel,
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

/// The slots' counter and the backlog.
#[derive(Default)]
pub(super) struct Slots {
    busy: u32,
    backlog: VecDeque<Delivery>,
}

impl Slots {
    /// No more slots busy than there are, and a delivery waits only while every slot is busy
    /// (a slot frees itself only when the backlog is empty).
    fn check(&self, rpc_workers: u32) {
        debug_assert!(
            self.busy <= rpc_workers,
            "{} RPC slots busy of {rpc_workers}",
            self.busy
        );
        debug_assert!(
            self.backlog.is_empty() || self.busy == rpc_workers,
            "{} deliveries wait while {} of {rpc_workers} slots are busy",
            self.backlog.len(),
            self.busy
        );
    }
}

impl Conductor {
    /// Sends a message on the bus connection, if there is one.
    pub(super) fn send_bus(&self, msg: Msg) -> bool {
        lock(&self.bus).as_ref().is_some_and(|l| l.send(msg))
    }

    /// Consumes the bus for ever. Whatever waited in the backlog when the bus was lost was
    /// never acknowledged, so the bus delivers it again: the backlog is dropped. Returns only
    /// when the bus refuses this conductor (another live one has its index).
    pub(super) async fn consume(self: &Arc<Self>) -> Refusal {
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
                match msg {
                    Msg::Deliver {
                        tag,
                        task,
                        corr,
                        reply_to,
                    } => self.on_deliver(Delivery {
                        tag,
                        task,
                        corr,
                        reply_to,
                        received_us: self.rec.now_us(),
                    }),
                    Msg::Refused(why) => {
                        *lock(&self.bus) = None;
                        return why;
                    }
                    // A message this conductor published (a re-queued op) expired unconsumed
                    // on the bus (`bus-ttl`): its call was answered long ago; cancel the op.
                    Msg::Expired { task, .. } => self.spawn_cancel(task, Cancelled::Expired),
                    _ => {}
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
            let take = if s.busy < self.cfg.rpc_workers {
                s.busy += 1;
                Some(s.busy)
            } else {
                s.backlog.push_back(d);
                None
            };
            s.check(self.cfg.rpc_workers);
            take
        };
        let Some(busy) = take else { return };
        // Most deliveries are handed to a worker at once: a slot holds them for no time, so
        // that part runs here, without a task, and the slot is free again at the same instant.
        let Some(wait) = self.take_now(&d) else {
            let mut s = lock(&self.slots);
            s.busy -= 1;
            s.check(self.cfg.rpc_workers);
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
        self.finish_delivery(&d, wait).await;
        loop {
            let next = {
                let mut s = lock(&self.slots);
                let next = match s.backlog.pop_front() {
                    Some(n) => Ok(n),
                    None => {
                        s.busy -= 1;
                        Err(s.busy)
                    }
                };
                s.check(self.cfg.rpc_workers);
                next
            };
            match next {
                Ok(n) => {
                    if let Some(wait) = self.take_now(&n) {
                        self.finish_delivery(&n, wait).await;
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

    /// An RPC slot takes a delivery: it acknowledges it and, for an async op, tells the
    /// strategy and offers the op to the pool. Everything here happens at once; what must wait
    /// on the slot (a blocking op, or an op the overflow policy keeps on the slot) is returned.
    fn take_now(self: &Arc<Self>, d: &Delivery) -> Option<Wait> {
        let task = d.task;
        // A deadline is judged when a slot takes the op, before anything is spent on it (a
        // strategy's lock, a pool worker, the host): as a gRPC server checks a call's deadline
        // before dispatching it.
        if task
            .op
            .deadline
            .is_some_and(|dl| dl.passed_for_conductor(self.rec.now_us()))
        {
            self.ack(d, None);
            return Some(Wait::Cancel);
        }
        if task.op.kind.is_blocking() {
            self.ack(d, None);
            return Some(Wait::Blocking);
        }
        // Validation and housekeeping are in memory (a fair lock's line is joined here); then
        // the op tries to take a worker.
        self.strategy.on_delivery(&task);
        match self.admit(task) {
            // Handed to a worker, or queued for one: the call's answer goes with the
            // acknowledgement.
            Admission::Worker | Admission::Queued => {
                self.ack(d, Some(Answer::Accepted));
                None
            }
            Admission::CallerRuns => {
                self.ack(d, None);
                self.rec.record(Event::CallerRuns {
                    conductor: self.cfg.index,
                });
                Some(Wait::CallerRuns)
            }
            Admission::Reject => {
                self.ack(d, None);
                Some(Wait::Reject)
            }
        }
    }

    /// The part of taking a delivery that holds the RPC slot.
    async fn finish_delivery(&self, d: &Delivery, wait: Wait) {
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
                self.strategy.on_abandon(&task);
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
            Wait::Cancel => {
                let why = Cancelled::DeadlineExceeded;
                if cancel(&self.store, &self.rec, Some(self.cfg.index), &task, why).await {
                    self.reply(d, Answer::Error(Failure::Cancelled(why)));
                }
            }
        }
    }

    /// A blocking op (logs, exec, show), answered inline: `show` reads the store, the others
    /// call the host unfenced.
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
            match self.call_host(task, 0).await {
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
