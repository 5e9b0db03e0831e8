//! A container host (Docker on a bay node): applies ops after their service time, keeps each
//! container's ground truth, answers 304-style no-ops, and does not serialise ops on one container.

use crate::net::Listener;
use crate::op::{HostError, Truth};
use crate::proto::{HostCmd, Msg};
use crate::recorder::{Event, SharedRecorder};
use crate::rpc::lock;
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Decides how long an op takes at a host and whether it fails. The simulator keys both on the
/// op's identity so that two configurations see the same values (common random numbers).
pub trait HostModel: Send + Sync + 'static {
    /// How long host `host` spends on this attempt of `cmd`.
    fn service_time(&self, host: u32, cmd: &HostCmd) -> Duration;
    /// Whether this attempt fails in the backend.
    fn fails(&self, host: u32, cmd: &HostCmd) -> bool;
    /// Waits out a service time. tokio's timers have a 1 ms granularity; a simulator can do
    /// better and keep sub-millisecond service times exact.
    fn sleep(&self, d: Duration) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        Box::pin(tokio::time::sleep(d))
    }
}

/// A host's ground truth, durable across the host's restarts: the caller owns it.
#[derive(Debug, Default)]
pub struct HostState {
    containers: BTreeMap<u64, Truth>,
    /// The newest fencing token seen per container.
    tokens: BTreeMap<u64, u64>,
    /// Refuse stale tokens (`fencing = true`).
    fencing: bool,
}

impl HostState {
    /// A host that refuses an op whose fencing token is older than one it has seen for the
    /// container (`fencing = true`).
    pub fn with_fencing(fencing: bool) -> Self {
        HostState {
            fencing,
            ..Default::default()
        }
    }

    /// Admits a token: false if fencing is on and a newer one was seen (token 0: an op not
    /// under a lock, never refused).
    fn admit(&mut self, container: u64, token: u64) -> bool {
        if !self.fencing || token == 0 {
            return true;
        }
        let seen = self.tokens.entry(container).or_insert(0);
        if token < *seen {
            return false;
        }
        *seen = token;
        true
    }

    /// The truth about one container.
    pub fn truth(&self, container: u64) -> Truth {
        self.containers
            .get(&container)
            .copied()
            .unwrap_or(Truth::Absent)
    }

    /// Sets a container's truth (pre-created workloads).
    pub fn set(&mut self, container: u64, truth: Truth) {
        if truth == Truth::Absent {
            self.containers.remove(&container);
        } else {
            self.containers.insert(container, truth);
        }
    }

    /// Every container on the host, in id order.
    pub fn containers(&self) -> impl Iterator<Item = (u64, Truth)> + '_ {
        self.containers.iter().map(|(k, v)| (*k, *v))
    }
}

/// Serves host `index` on `listener` until the task is dropped.
pub async fn serve(
    mut listener: Listener,
    index: u32,
    state: Arc<Mutex<HostState>>,
    model: Arc<dyn HostModel>,
    rec: SharedRecorder,
) {
    while let Ok((link, mut reader)) = listener.accept().await {
        let (state, model, rec) = (state.clone(), model.clone(), rec.clone());
        tokio::spawn(async move {
            while let Ok(Some(msg)) = reader.next().await {
                let (req, cmd) = match msg {
                    Msg::Host { req, cmd } => (req, cmd),
                    Msg::ListTruths { req, after, max } => {
                        let from = match after {
                            None => std::ops::Bound::Unbounded,
                            Some(a) => std::ops::Bound::Excluded(a),
                        };
                        let truths = lock(&state)
                            .containers
                            .range((from, std::ops::Bound::Unbounded))
                            .take(max as usize)
                            .map(|(k, v)| (*k, *v))
                            .collect();
                        link.send(Msg::Truths { req, truths });
                        continue;
                    }
                    _ => continue,
                };
                let (state, model, rec, link) =
                    (state.clone(), model.clone(), rec.clone(), link.clone());
                tokio::spawn(async move {
                    let start_us = rec.now_us();
                    let c = cmd.op.container;
                    // A stale token is refused on arrival, before the op touches anything, and
                    // again when it would apply: a newer holder may have come meanwhile.
                    let admitted = lock(&state).admit(c, cmd.token);
                    if admitted {
                        model.sleep(model.service_time(index, &cmd)).await;
                    }
                    let fails = model.fails(index, &cmd);
                    let (before, result) = {
                        let mut st = lock(&state);
                        let before = st.truth(c);
                        let result = if !admitted || !st.admit(c, cmd.token) {
                            Err(HostError::Fenced)
                        } else if fails {
                            Err(HostError::Backend)
                        } else {
                            before.apply(cmd.op.kind).map(|next| {
                                let now = next.unwrap_or(before);
                                st.set(cmd.op.container, now);
                                now
                            })
                        };
                        (before, result)
                    };
                    rec.record(Event::Applied {
                        host: index,
                        conductor: cmd.conductor,
                        attempt: cmd.attempt,
                        token: cmd.token,
                        op: cmd.op,
                        seq: cmd.seq,
                        start_us,
                        end_us: rec.now_us(),
                        before,
                        result,
                    });
                    link.send(Msg::HostResp { req, resp: result });
                });
            }
        });
    }
}
