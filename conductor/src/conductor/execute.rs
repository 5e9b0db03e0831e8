//! An async op's run: the strategy runs it, and its [`Outcome`] says what follows — the
//! terminal event, nothing for a duplicate, a re-queue with backoff (within the retry budget)
//! for an op that was not ready, or giving it up.

use super::{micros, Attempt, Conductor, Outcome};
use crate::cluster::Routing;
use crate::proto::{CoordCmd, Msg, Route, Task};
use crate::recorder::Event;
use crate::rpc::lock;
use std::time::Duration;

impl Conductor {
    /// Runs an async op that came from the bus under the strategy (on a pool worker, or on an
    /// RPC slot under `caller-runs`), and records how long it held what ran it.
    pub(super) async fn execute(&self, task: Task) {
        let start = self.rec.now_us();
        let outcome = self.strategy.run(self, &task, Attempt::Delivered).await;
        let end = self.rec.now_us();
        self.rec.record(Event::Hold {
            conductor: self.cfg.index,
            hold_us: end.saturating_sub(start),
        });
        self.conclude(task, outcome).await;
    }

    /// Records how an op's run ended, and re-queues or gives up an op that was not ready.
    pub(super) async fn conclude(&self, task: Task, outcome: Outcome) {
        match outcome {
            Outcome::Done { ok } => self.rec.record(Event::Terminal { op: task.op, ok }),
            Outcome::Duplicate => {}
            Outcome::NotReady => self.requeue(task).await,
            Outcome::Refused => self.give_up(task).await,
        }
    }

    /// The op goes back to the bus with a not-before time from the retry policy, or is given
    /// up when attempts or the retry budget run out.
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
}
