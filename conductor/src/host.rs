//! A container host (Docker on a bay node): applies ops after their service time, keeps each
//! container's ground truth, answers 304-style no-ops, and does not serialise ops on one container.

use crate::journal::{Journal, JournalError, MemFile, Recovered};
use crate::net::Listener;
use crate::op::{HostError, Truth};
use crate::proto::{HostCmd, Msg};
use crate::recorder::{Event, SharedRecorder};
use crate::rpc::lock;
use serde::{Deserialize, Serialize};
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

/// A host's ground truth, durable across the host's restarts: the caller owns it, and with a
/// journal it is rebuilt from what was journalled (as Docker keeps its containers' state on
/// disk across a daemon restart).
#[derive(Debug, Default)]
pub struct HostState {
    containers: BTreeMap<u64, Truth>,
    /// The newest fencing token seen per container.
    tokens: BTreeMap<u64, u64>,
    /// Refuse stale tokens (`fencing = true`).
    fencing: bool,
    /// Where every change goes before it is acted on: a file in real mode, an in-memory file
    /// under the simulator.
    journal: Option<Journal>,
}

/// One record of a host's journal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
enum Entry {
    /// A container's truth changed.
    Truth { container: u64, truth: Truth },
    /// A newer fencing token was seen for a container.
    Token { container: u64, token: u64 },
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

    /// Opens (or creates) the host's journal at `path` and rebuilds the truths and the tokens
    /// seen from it; every change is journalled from then on (`sync`: forced to disk).
    pub fn open(
        path: &std::path::Path,
        fencing: bool,
        sync: bool,
    ) -> Result<(Self, Recovered), JournalError> {
        let mut st = HostState::with_fencing(fencing);
        let (journal, recovered) = Journal::open(path, sync, |e| st.replay(e))?;
        st.journal = Some(journal);
        Ok((st, recovered))
    }

    /// Opens the in-memory journal `file` as [`HostState::open`] opens a file: the simulated
    /// host's restart (`name` names it in messages).
    pub fn open_memory(
        file: &MemFile,
        name: &str,
        fencing: bool,
    ) -> Result<(Self, Recovered), JournalError> {
        let mut st = HostState::with_fencing(fencing);
        let (journal, recovered) = Journal::open_memory(file, name, |e| st.replay(e))?;
        st.journal = Some(journal);
        Ok((st, recovered))
    }

    fn replay(&mut self, entry: Entry) {
        match entry {
            Entry::Truth { container, truth } => self.put(container, truth),
            Entry::Token { container, token } => {
                self.tokens.insert(container, token);
            }
        }
    }

    /// Whether the host holds nothing (a fresh journal, before any pre-creation).
    pub fn is_empty(&self) -> bool {
        self.containers.is_empty() && self.tokens.is_empty()
    }

    fn log(&mut self, entry: Entry) -> std::io::Result<()> {
        match self.journal.as_mut() {
            Some(j) => j.append(&entry),
            None => Ok(()),
        }
    }

    /// Admits a token: false if fencing is on and a newer one was seen (token 0: an op not
    /// under a lock, never refused). A newer token is journalled before it is admitted: a
    /// restarted host still refuses what it refused before.
    fn admit(&mut self, container: u64, token: u64) -> std::io::Result<bool> {
        if !self.fencing || token == 0 {
            return Ok(true);
        }
        let seen = self.tokens.get(&container).copied().unwrap_or(0);
        if token < seen {
            return Ok(false);
        }
        if token > seen {
            self.log(Entry::Token { container, token })?;
            self.tokens.insert(container, token);
        }
        Ok(true)
    }

    /// The truth about one container.
    pub fn truth(&self, container: u64) -> Truth {
        self.containers
            .get(&container)
            .copied()
            .unwrap_or(Truth::Absent)
    }

    /// Sets a container's truth (pre-created workloads), journalled.
    pub fn set_durably(&mut self, container: u64, truth: Truth) -> std::io::Result<()> {
        if self.truth(container) != truth {
            self.log(Entry::Truth { container, truth })?;
        }
        self.put(container, truth);
        Ok(())
    }

    /// Sets a container's truth (pre-created workloads), without journalling it.
    pub fn set(&mut self, container: u64, truth: Truth) {
        self.put(container, truth);
    }

    fn put(&mut self, container: u64, truth: Truth) {
        if truth == Truth::Absent {
            self.containers.remove(&container);
        } else {
            self.containers.insert(container, truth);
        }
    }

    /// Up to `max` containers after `after` (`None`: from the first) with their truth, in id
    /// order: one page of the reconciler's listing, a range of the host's own containers.
    pub fn truths_after(&self, after: Option<u64>, max: u32) -> Vec<(u64, Truth)> {
        let from = match after {
            None => std::ops::Bound::Unbounded,
            Some(a) => std::ops::Bound::Excluded(a),
        };
        let mut page = Vec::with_capacity((max as usize).min(self.containers.len()));
        page.extend(
            self.containers
                .range((from, std::ops::Bound::Unbounded))
                .take(max as usize)
                .map(|(k, v)| (*k, *v)),
        );
        page
    }

    /// Every container on the host, in id order.
    pub fn containers(&self) -> impl Iterator<Item = (u64, Truth)> + '_ {
        self.containers.iter().map(|(k, v)| (*k, *v))
    }
}

/// Serves host `index` on `listener` until the task is dropped, or until its journal cannot
/// be written (then it stops answering, and the error is returned: a host must not report what
/// it could forget).
pub async fn serve(
    mut listener: Listener,
    index: u32,
    state: Arc<Mutex<HostState>>,
    model: Arc<dyn HostModel>,
    rec: SharedRecorder,
) -> std::io::Result<()> {
    let failed: Arc<Mutex<Option<std::io::Error>>> = Arc::default();
    let stop = Arc::new(tokio::sync::Notify::new());
    loop {
        let (link, mut reader) = tokio::select! {
            accepted = listener.accept() => accepted?,
            _ = stop.notified() => {
                let e = lock(&failed).take();
                return Err(e.unwrap_or_else(|| std::io::Error::other("journal failed")));
            }
        };
        let (state, model, rec) = (state.clone(), model.clone(), rec.clone());
        let (failed, stop) = (failed.clone(), stop.clone());
        tokio::spawn(async move {
            while let Ok(Some(msg)) = reader.next().await {
                let (req, cmd) = match msg {
                    Msg::Host { req, cmd } => (req, cmd),
                    Msg::ListTruths { req, after, max } => {
                        let truths = lock(&state).truths_after(after, max);
                        link.send(Msg::Truths { req, truths });
                        continue;
                    }
                    _ => continue,
                };
                let (state, model, rec, link) =
                    (state.clone(), model.clone(), rec.clone(), link.clone());
                let (failed, stop) = (failed.clone(), stop.clone());
                tokio::spawn(async move {
                    let start_us = rec.now_us();
                    let c = cmd.op.container;
                    let fail = |e| {
                        *lock(&failed) = Some(e);
                        stop.notify_one();
                    };
                    // A stale token is refused on arrival, before the op touches anything, and
                    // again when it would apply: a newer holder may have come meanwhile.
                    let admitted = match lock(&state).admit(c, cmd.token) {
                        Ok(a) => a,
                        Err(e) => return fail(e),
                    };
                    if admitted {
                        model.sleep(model.service_time(index, &cmd)).await;
                    }
                    let fails = model.fails(index, &cmd);
                    let (before, result) = {
                        let mut st = lock(&state);
                        let before = st.truth(c);
                        let admitted = match admitted.then(|| st.admit(c, cmd.token)) {
                            None => false,
                            Some(Ok(a)) => a,
                            Some(Err(e)) => return fail(e),
                        };
                        let result = if !admitted {
                            Err(HostError::Fenced)
                        } else if fails {
                            Err(HostError::Backend)
                        } else {
                            match before.apply(cmd.op.kind) {
                                Ok(next) => {
                                    let now = next.unwrap_or(before);
                                    if let Err(e) = st.set_durably(c, now) {
                                        return fail(e);
                                    }
                                    Ok(now)
                                }
                                Err(e) => Err(e),
                            }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Deliverable 4 of issue 11: a host keeps its truths and the newest token it has seen
    /// across its own restarts.
    #[test]
    fn truths_and_tokens_survive_a_restart() {
        let file = MemFile::new();
        {
            let (mut h, _) = HostState::open_memory(&file, "host-1", true).unwrap();
            assert!(h.is_empty());
            h.set_durably(1, Truth::Running).unwrap();
            h.set_durably(2, Truth::Running).unwrap();
            h.set_durably(2, Truth::Absent).unwrap();
            assert!(h.admit(1, 40).unwrap());
            assert!(h.admit(1, 41).unwrap());
            assert!(!h.admit(1, 39).unwrap());
        }
        let (mut h, r) = HostState::open_memory(&file, "host-1", true).unwrap();
        // Three truths and two tokens (an equal or refused token writes nothing).
        assert_eq!(r.records, 5);
        assert_eq!(h.containers().collect::<Vec<_>>(), [(1, Truth::Running)]);
        // A restarted host still refuses a token older than one it saw.
        assert!(!h.admit(1, 40).unwrap());
        assert!(h.admit(1, 41).unwrap());
    }
}
