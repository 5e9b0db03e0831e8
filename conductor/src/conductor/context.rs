//! What a [`Strategy`](super::Strategy) may call on the [`Conductor`] it runs in: take its op in
//! the store ([`Take`]), call the host under a fencing token, end the op in the store, deposit
//! in the retry budget, and record events. The locks it may hold are in [`super::lock`].
//!
//! Every call here is one the built-in strategies make, in the order they make it: a strategy
//! is the sequence of these calls (and of lock calls) that it chooses.

use super::{Attempt, Conductor, ConductorConfig, Outcome};
use crate::proto::{CoordCmd, HostCmd, HostResp, StoreCmd, StoreResp, Task};
use crate::recorder::Event;
use crate::rpc::{lock, Unavailable};

/// How a strategy takes its op in the store (the `Begin` write that marks it executing and
/// owned by this conductor).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Take {
    /// Sent without waiting for the answer (`ordering = "none"`): the connection keeps it ahead
    /// of the op's final write, and nothing waits on it. A duplicate delivery is not detected,
    /// and there is no grant: the token is 0 (unfenced).
    Unconfirmed,
    /// Waits for the store's grant: a duplicate delivery (another conductor runs the op, or it
    /// is terminal) is refused; the grant's token fences the host call.
    Granted,
    /// [`Take::Granted`], and only when every earlier op of the container is terminal and its
    /// status allows the op (`state-check`): otherwise the op is not ready, or refused.
    StateChecked,
}

impl Conductor {
    /// This conductor's settings.
    pub fn config(&self) -> &ConductorConfig {
        &self.cfg
    }

    /// This conductor's index (conductor-N has index N−1).
    pub fn index(&self) -> u32 {
        self.cfg.index
    }

    /// Now, in µs since the run's start (the recorder's clock).
    pub fn now_us(&self) -> u64 {
        self.rec.now_us()
    }

    /// Records an event (e.g. [`Event::LockWait`] for a lock of the strategy's own).
    pub fn record(&self, ev: Event) {
        self.rec.record(ev);
    }

    /// Takes the op in the store, `how` says how. `Ok(token)`: the op is this conductor's to
    /// run, under the fencing token (0 when [`Take::Unconfirmed`]). `Err(outcome)`: it must
    /// not run, and the strategy returns `outcome` as it is — a duplicate, not ready, refused
    /// (its record already failed), or failed because the store is unreachable.
    ///
    /// `attempt` is [`Attempt::Reissue`] when restart recovery runs again an op this conductor
    /// had begun (the store allows that only then).
    pub async fn take(&self, task: &Task, how: Take, attempt: Attempt) -> Result<u64, Outcome> {
        let begin = StoreCmd::Begin {
            op: task.op.id,
            owner: self.cfg.index,
            check: how == Take::StateChecked,
            reissue: attempt == Attempt::Reissue,
        };
        if how == Take::Unconfirmed {
            let Ok(store) = self.store.get().await else {
                return Err(Outcome::Done { ok: false });
            };
            if store.store_write(begin).is_err() {
                return Err(Outcome::Done { ok: false });
            }
            return Ok(0);
        }
        let alone = lock(&self.taking).insert(task.op.id);
        let (mut answer, asked_again) = self.store.store_until_answered_asked_again(begin).await;
        if answer == StoreResp::Busy && asked_again && alone && attempt != Attempt::Reissue {
            // The first ask may have begun the op for this conductor and its answer been lost
            // with the connection (a store whose engine ran out of patience closes it): the op
            // is then Executing under this conductor, which is alive, so no sweeper would ever
            // take it back. Take it again as recovery does: the store allows that only to the
            // owner, and a fresh token fences whatever the lost ask's holder might still do.
            let reissue = StoreCmd::Begin {
                op: task.op.id,
                owner: self.cfg.index,
                check: how == Take::StateChecked,
                reissue: true,
            };
            answer = self.store.store_until_answered(reissue).await;
        }
        if !matches!(answer, StoreResp::Began { .. }) && alone {
            lock(&self.taking).remove(&task.op.id);
        }
        match answer {
            StoreResp::Began { token } => Ok(token),
            StoreResp::NotReady => Err(Outcome::NotReady),
            StoreResp::ContainerError | StoreResp::Conflict(_) => {
                let fail = CoordCmd::Fail {
                    op: task.op.id,
                    error: false,
                };
                self.store.coord_until_answered(fail).await;
                Err(Outcome::Refused)
            }
            _ => Err(Outcome::Duplicate),
        }
    }

    /// Sends the op to its host under the fencing token `token` (0: none) and waits for the
    /// host's answer.
    pub async fn call_host(&self, task: &Task, token: u64) -> Result<HostResp, Unavailable> {
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

    /// Ends a taken op in the store, done (`ok`) or failed — the container's status follows —
    /// retrying until the store answers. Returns the outcome to report.
    pub async fn finish(&self, task: &Task, ok: bool) -> Outcome {
        self.store
            .store_until_answered(StoreCmd::Finish { op: task.op.id, ok })
            .await;
        lock(&self.taking).remove(&task.op.id);
        Outcome::Done { ok }
    }

    /// Runs a taken op: the host call under `token`, then [`Conductor::finish`] with whether
    /// the host applied it.
    pub async fn complete(&self, task: &Task, token: u64) -> Outcome {
        let ok = self.call_host(task, token).await.is_ok_and(|r| r.is_ok());
        self.finish(task, ok).await
    }

    /// A first attempt deposits its share of retries in the retry budget, which re-queueing a
    /// not-ready op ([`Outcome::NotReady`]) withdraws from.
    pub fn deposit_retry_budget(&self) {
        lock(&self.budget).request(self.rec.now_us());
    }
}
