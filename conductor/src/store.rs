//! The store: container and op records (the database of Magnum/Zun). Its state outlives the
//! service's process (it is durable across the store's own restarts): the caller owns it.

use crate::net::Listener;
use crate::op::{OpKind, Status};
use crate::proto::{Msg, OpSpec, StoreCmd, StoreResp};
use crate::rpc::lock;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// A container's record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Container {
    /// Zun's status.
    pub status: Status,
    /// The task_state of the op running on it, if any.
    pub task_state: Option<&'static str>,
    /// The host it was placed on at create.
    pub host: u32,
    /// The last sequence number given to one of its ops.
    pub last_seq: u64,
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
}

/// Everything the store holds.
#[derive(Debug, Default)]
pub struct StoreState {
    hosts: u32,
    next_host: u32,
    containers: BTreeMap<u64, Container>,
    ops: BTreeMap<u64, OpRecord>,
}

impl StoreState {
    /// An empty store placing containers round-robin over `hosts` hosts.
    pub fn new(hosts: u32) -> Self {
        StoreState {
            hosts: hosts.max(1),
            ..Default::default()
        }
    }

    /// Records an existing container (pre-created workloads): placed round-robin like a create.
    pub fn precreate(&mut self, container: u64, status: Status) -> u32 {
        let host = self.place();
        self.containers.insert(
            container,
            Container {
                status,
                task_state: None,
                host,
                last_seq: 0,
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

    /// Every container record, in id order.
    pub fn containers(&self) -> impl Iterator<Item = (u64, &Container)> {
        self.containers.iter().map(|(k, v)| (*k, v))
    }

    /// The non-terminal op records, in id order.
    pub fn ops(&self) -> impl Iterator<Item = &OpRecord> {
        self.ops.values()
    }

    /// Applies one command.
    pub fn apply(&mut self, cmd: StoreCmd) -> StoreResp {
        match cmd {
            StoreCmd::Accept { op, validate } => self.accept(op, validate),
            StoreCmd::Begin { op, owner } => {
                let Some(rec) = self.ops.get_mut(&op) else {
                    return StoreResp::NotFound;
                };
                rec.state = OpState::Executing;
                rec.owner = Some(owner);
                let kind = rec.op.kind;
                if let Some(c) = self.containers.get_mut(&rec.op.container) {
                    c.task_state = kind.task_state().map(|(_, t)| t);
                    c.version += 1;
                }
                StoreResp::Ok
            }
            StoreCmd::Finish { op, ok } => {
                let Some(rec) = self.ops.remove(&op) else {
                    return StoreResp::NotFound;
                };
                if let Some(c) = self.containers.get_mut(&rec.op.container) {
                    c.task_state = None;
                    c.status = if ok {
                        rec.op.kind.result_status().unwrap_or(c.status)
                    } else {
                        Status::Error
                    };
                    c.version += 1;
                }
                StoreResp::Ok
            }
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
            self.containers.insert(
                op.container,
                Container {
                    status: Status::Creating,
                    task_state: None,
                    host,
                    last_seq: 0,
                    version: 0,
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
        self.ops.insert(
            op.id,
            OpRecord {
                op,
                seq,
                state: OpState::Accepted,
                owner: None,
            },
        );
        StoreResp::Accepted { seq, host }
    }
}

/// Serves the store on `listener` until the task is dropped.
pub async fn serve(mut listener: Listener, state: Arc<Mutex<StoreState>>) {
    while let Ok((link, mut reader)) = listener.accept().await {
        let state = state.clone();
        tokio::spawn(async move {
            while let Ok(Some(msg)) = reader.next().await {
                match msg {
                    Msg::Store { req, cmd } => {
                        let resp = lock(&state).apply(cmd);
                        link.send(Msg::StoreResp { req, resp });
                    }
                    Msg::StoreWrite(cmd) => {
                        lock(&state).apply(cmd);
                    }
                    _ => {}
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
        }
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
        assert_eq!(s.apply(StoreCmd::Begin { op: 1, owner: 0 }), StoreResp::Ok);
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
}
