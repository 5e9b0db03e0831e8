//! The executor pool: `pool_workers` workers run async ops, started on demand and parked when
//! idle; an op that finds them all busy meets the [`Overflow`] policy.

use super::Conductor;
use crate::cancel::{cancel, Cancelled};
use crate::proto::Task;
use crate::recorder::Event;
use crate::rpc::lock;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use tokio::sync::Notify;

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

/// What became of an op offered to the pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Admission {
    /// A worker runs it.
    Worker,
    /// It waits in the pool's queue (`overflow = "queue"`).
    Queued,
    /// The pool is exhausted: the RPC slot runs it (`caller-runs`).
    CallerRuns,
    /// The pool is exhausted: it fails (`reject`).
    Reject,
}

/// The pool's counter, its queue and its parked workers.
#[derive(Default)]
pub(super) struct Pool {
    busy: u32,
    /// Ops waiting for a worker (`overflow = "queue"`).
    queue: VecDeque<Task>,
    /// Workers with nothing to do, waiting to be handed an op.
    idle: Vec<Arc<Parked>>,
}

impl Pool {
    /// Workers are started only when none is parked, so busy and parked ones together are at
    /// most `pool_workers` (more only when unbounded); a worker parks only when the queue is
    /// empty, and an op queues only when every worker is busy.
    fn check(&self, pool_workers: u32, overflow: Overflow) {
        if overflow != Overflow::Unbounded {
            debug_assert!(
                self.busy as usize + self.idle.len() <= pool_workers as usize,
                "{} pool workers busy and {} parked of {pool_workers}",
                self.busy,
                self.idle.len()
            );
        }
        debug_assert!(
            self.idle.is_empty() || self.queue.is_empty(),
            "{} workers parked while {} ops wait for one",
            self.idle.len(),
            self.queue.len()
        );
    }
}

/// A pool worker's mailbox: it sleeps on `wake` until an op is put in `job`.
#[derive(Default)]
pub(super) struct Parked {
    job: Mutex<Option<Task>>,
    wake: Notify,
}

impl Conductor {
    /// Offers an async op to the pool: a parked worker is handed it, or a new one starts (up to
    /// `pool_workers`, or any number when unbounded); otherwise the overflow policy decides.
    pub(super) fn admit(self: &Arc<Self>, task: Task) -> Admission {
        let (workers, overflow) = (self.cfg.pool_workers, self.cfg.overflow);
        let (busy, parked) = {
            let mut p = lock(&self.pool);
            let taken = if p.busy < workers || overflow == Overflow::Unbounded {
                p.busy += 1;
                (Some(p.busy), p.idle.pop())
            } else {
                if overflow == Overflow::Queue {
                    p.queue.push_back(task);
                }
                (None, None)
            };
            p.check(workers, overflow);
            taken
        };
        // Unbounded never refuses, but an arrival beyond `pool_workers` still found them busy.
        let exhausted = busy.is_none_or(|b| b > workers);
        self.rec.record(Event::PoolArrival {
            conductor: self.cfg.index,
            op: task.op,
            exhausted,
        });
        let Some(busy) = busy else {
            return match overflow {
                Overflow::CallerRuns => Admission::CallerRuns,
                Overflow::Reject => Admission::Reject,
                // Queued above; a worker that frees up takes it.
                Overflow::Queue => Admission::Queued,
                Overflow::Unbounded => unreachable!("unbounded always takes a worker"),
            };
        };
        self.rec.record(Event::PoolBusy {
            conductor: self.cfg.index,
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
        Admission::Worker
    }

    /// The next op of the pool's queue a worker should start: one whose deadline has passed
    /// while it waited for a worker is cancelled instead (`client.cancel = "deadline"`; the
    /// store write on a task of its own, so the worker goes on at once).
    fn pop_live(self: &Arc<Self>, p: &mut Pool) -> Option<Task> {
        loop {
            let task = p.queue.pop_front()?;
            let now = self.rec.now_us();
            if !task
                .op
                .deadline
                .is_some_and(|d| d.passed_for_conductor(now))
            {
                return Some(task);
            }
            // The strategy saw its delivery (a fair lock's line holds it): it will not run.
            self.strategy.on_abandon(&task);
            self.spawn_cancel(task, Cancelled::DeadlineExceeded);
        }
    }

    /// Cancels `task` in the store on a task of its own, so that the caller (a worker taking
    /// the queue's next op, the bus reader) goes on at once.
    pub(super) fn spawn_cancel(self: &Arc<Self>, task: Task, why: Cancelled) {
        let me = self.clone();
        tokio::spawn(async move {
            cancel(&me.store, &me.rec, Some(me.cfg.index), &task, why).await;
        });
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
                    let next = match self.pop_live(&mut p) {
                        Some(n) => Ok(n),
                        None => {
                            p.busy -= 1;
                            p.idle.push(me.clone());
                            Err(p.busy)
                        }
                    };
                    p.check(self.cfg.pool_workers, self.cfg.overflow);
                    next
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
}
