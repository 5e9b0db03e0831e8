//! The final state a real service writes when it is told to stop (SIGTERM), as JSON lines in
//! its history beside its events: the store's container and open op records, each host's
//! containers, each set closed by a trailer that counts its lines. [`FinalStates`] collects
//! them from the history's files and rebuilds the [`Snapshot`] the liveness invariants judge,
//! exactly as the simulator's checker judges its own at the end of the drain.
//!
//! A set without its trailer (the process died while writing it) or whose trailer's counts do
//! not match is not used; a node that wrote several sets (it was stopped, restarted, stopped
//! again) is taken at its last one. The liveness invariants are judged only when the store's
//! set and every one of its hosts' sets are there; otherwise the history says what is missing.

use crate::snapshot::{FinalOp, FinalRecord, Snapshot};
use conductor::host::HostState;
use conductor::op::{OpKind, Status, Truth};
use conductor::proto::OpSpec;
use conductor::store::StoreState;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One line of a final state (its `event` tag starts with `final_`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum FinalLine {
    /// A container record of the store.
    FinalRecord {
        /// The container.
        container: u64,
        /// Its status.
        status: Status,
        /// Its task_state, if one is set (one of the op kinds' task states).
        task_state: Option<String>,
        /// The host its record places it on.
        host: u32,
    },
    /// A non-terminal op record of the store.
    FinalOp {
        /// The op.
        op: OpSpec,
        /// Its sequence number.
        seq: u64,
        /// Its state, as the store names it.
        state: String,
        /// The conductor (index) that owns it.
        owner: Option<u32>,
    },
    /// The store's trailer: it wrote `records` record lines and `ops` op lines, and places
    /// containers on `hosts` hosts.
    FinalStore {
        /// Hosts of the deployment (hosts 0..hosts must each write their state).
        hosts: u32,
        /// Record lines written before it.
        records: u64,
        /// Op lines written before it.
        ops: u64,
    },
    /// A container a host holds.
    FinalTruth {
        /// The host (0-based).
        host: u32,
        /// The container.
        container: u64,
        /// What the host holds.
        truth: Truth,
    },
    /// A host's trailer: it wrote `containers` truth lines before it.
    FinalHost {
        /// The host (0-based).
        host: u32,
        /// Truth lines written before it.
        containers: u64,
    },
}

impl FinalLine {
    /// Whether an event tag names a final-state line rather than an event.
    pub fn is_final_tag(tag: &str) -> bool {
        tag.starts_with("final_")
    }

    /// The store's final state: its records, its open ops, then the trailer.
    pub fn of_store(store: &StoreState, hosts: u32) -> Vec<FinalLine> {
        let snap = Snapshot::capture(store, &[]);
        let mut out: Vec<FinalLine> = snap
            .records
            .iter()
            .map(|r| FinalLine::FinalRecord {
                container: r.container,
                status: r.status,
                task_state: r.task_state.map(str::to_string),
                host: r.host,
            })
            .collect();
        out.extend(snap.ops.iter().map(|o| FinalLine::FinalOp {
            op: o.op,
            seq: o.seq,
            state: o.state.clone(),
            owner: o.owner,
        }));
        out.push(FinalLine::FinalStore {
            hosts,
            records: snap.records.len() as u64,
            ops: snap.ops.len() as u64,
        });
        out
    }

    /// Host `host`'s final state: its containers, then the trailer.
    pub fn of_host(host: u32, state: &HostState) -> Vec<FinalLine> {
        let mut out: Vec<FinalLine> = state
            .containers()
            .map(|(container, truth)| FinalLine::FinalTruth {
                host,
                container,
                truth,
            })
            .collect();
        out.push(FinalLine::FinalHost {
            host,
            containers: out.len() as u64,
        });
        out
    }
}

/// The task_state named `name`, as the store's records hold it.
fn task_state(name: &str) -> Option<&'static str> {
    OpKind::ALL
        .into_iter()
        .filter_map(|k| k.task_state().map(|(_, t)| t))
        .find(|t| *t == name)
}

/// A final state line that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownTaskState(pub String);

/// One node's set being read, or its last complete one.
#[derive(Debug, Default, Clone)]
struct StoreSet {
    records: Vec<FinalRecord>,
    ops: Vec<FinalOp>,
    hosts: u32,
}

/// The final states found in a history, as its lines are read (in each file's line order).
#[derive(Debug, Default)]
pub struct FinalStates {
    /// The store's set being read (lines since its last trailer).
    store_open: StoreSet,
    /// The store's last complete set and its trailer's time.
    store: Option<(u64, StoreSet)>,
    /// Per host: truths since its last trailer.
    host_open: BTreeMap<u32, Vec<(u64, Truth)>>,
    /// Per host: its last complete set and its trailer's time.
    hosts: BTreeMap<u32, (u64, Vec<(u64, Truth)>)>,
    /// Sets dropped, one message each.
    dropped: Vec<String>,
}

impl FinalStates {
    /// Takes one final-state line written at `t_us`; `Err` names a task_state no op kind has.
    pub fn line(&mut self, t_us: u64, line: FinalLine) -> Result<(), UnknownTaskState> {
        match line {
            FinalLine::FinalRecord {
                container,
                status,
                task_state: ts,
                host,
            } => {
                let task_state = match ts {
                    None => None,
                    Some(name) => Some(task_state(&name).ok_or(UnknownTaskState(name))?),
                };
                self.store_open.records.push(FinalRecord {
                    container,
                    status,
                    task_state,
                    host,
                });
            }
            FinalLine::FinalOp {
                op,
                seq,
                state,
                owner,
            } => self.store_open.ops.push(FinalOp {
                op,
                seq,
                state,
                owner,
            }),
            FinalLine::FinalStore {
                hosts,
                records,
                ops,
            } => {
                let mut set = std::mem::take(&mut self.store_open);
                if set.records.len() as u64 == records && set.ops.len() as u64 == ops {
                    set.hosts = hosts;
                    if self.store.as_ref().is_none_or(|(t, _)| *t <= t_us) {
                        self.store = Some((t_us, set));
                    }
                } else {
                    self.dropped.push(format!(
                        "the store's final state at {t_us} µs counts {records} records and \
                         {ops} ops but {} and {} came before it: dropped",
                        set.records.len(),
                        set.ops.len()
                    ));
                }
            }
            FinalLine::FinalTruth {
                host,
                container,
                truth,
            } => self
                .host_open
                .entry(host)
                .or_default()
                .push((container, truth)),
            FinalLine::FinalHost { host, containers } => {
                let set = self.host_open.remove(&host).unwrap_or_default();
                if set.len() as u64 == containers {
                    if self.hosts.get(&host).is_none_or(|(t, _)| *t <= t_us) {
                        self.hosts.insert(host, (t_us, set));
                    }
                } else {
                    self.dropped.push(format!(
                        "host-{}'s final state at {t_us} µs counts {containers} containers but \
                         {} came before it: dropped",
                        u64::from(host) + 1,
                        set.len()
                    ));
                }
            }
        }
        Ok(())
    }

    /// Ends a file: a set left open in it (no trailer: the process died writing it) is
    /// dropped, with a message.
    pub fn end_file(&mut self, file: &str) {
        let open = std::mem::take(&mut self.store_open);
        if !open.records.is_empty() || !open.ops.is_empty() {
            self.dropped.push(format!(
                "{file}: the store's final state has no trailer (its writer stopped): dropped"
            ));
        }
        for (h, _) in std::mem::take(&mut self.host_open) {
            self.dropped.push(format!(
                "{file}: host-{}'s final state has no trailer (its writer stopped): dropped",
                u64::from(h) + 1
            ));
        }
    }

    /// The messages about sets that could not be used.
    pub fn dropped(&self) -> &[String] {
        &self.dropped
    }

    /// The snapshot of the store and every host, and the time of the last trailer (the end
    /// of the run), or why it cannot be built.
    pub fn snapshot(&self) -> Result<(u64, Snapshot), String> {
        let Some((store_t, store)) = &self.store else {
            return Err("the history holds no final state of the store".into());
        };
        let missing: Vec<String> = (0..store.hosts)
            .filter(|h| !self.hosts.contains_key(h))
            .map(|h| format!("host-{}", u64::from(h) + 1))
            .collect();
        if !missing.is_empty() {
            return Err(format!(
                "the history holds no final state of {}",
                missing.join(", ")
            ));
        }
        let mut end = *store_t;
        let mut truths = Vec::new();
        for (&h, (t, set)) in &self.hosts {
            end = end.max(*t);
            truths.extend(set.iter().map(|&(c, truth)| (h, c, truth)));
        }
        Ok((
            end,
            Snapshot {
                records: store.records.clone(),
                ops: store.ops.clone(),
                truths,
            },
        ))
    }
}
