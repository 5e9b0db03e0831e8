//! The store and the hosts at the end of the drain: what the liveness invariants judge.

use conductor::host::HostState;
use conductor::op::{Status, Truth};
use conductor::proto::OpSpec;
use conductor::store::StoreState;

/// A container record at the end of the drain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FinalRecord {
    /// The container.
    pub container: u64,
    /// Its status.
    pub status: Status,
    /// Its task_state, if one is set.
    pub task_state: Option<&'static str>,
    /// The host its record places it on.
    pub host: u32,
}

/// An op record still non-terminal at the end of the drain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FinalOp {
    /// The op.
    pub op: OpSpec,
    /// Its sequence number.
    pub seq: u64,
    /// Its state, as the store names it (e.g. `Executing`).
    pub state: String,
    /// The conductor (index) that owns it, if any.
    pub owner: Option<u32>,
}

/// The store and the hosts at the end of the drain: what the liveness invariants judge.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// Every container record, in container order.
    pub records: Vec<FinalRecord>,
    /// The non-terminal op records, in op id order.
    pub ops: Vec<FinalOp>,
    /// Every container a host holds, as `(host index, container, truth)`.
    pub truths: Vec<(u32, u64, Truth)>,
}

impl Snapshot {
    /// Reads the store's records and every host's truths (host index = position in `hosts`).
    pub fn capture(store: &StoreState, hosts: &[&HostState]) -> Self {
        Snapshot {
            records: store
                .containers()
                .map(|(id, c)| FinalRecord {
                    container: id,
                    status: c.status,
                    task_state: c.task_state,
                    host: c.host,
                })
                .collect(),
            ops: store
                .ops()
                .map(|r| FinalOp {
                    op: r.op,
                    seq: r.seq,
                    state: format!("{:?}", r.state),
                    owner: r.owner,
                })
                .collect(),
            truths: hosts
                .iter()
                .enumerate()
                .flat_map(|(h, st)| st.containers().map(move |(c, t)| (h as u32, c, t)))
                .collect(),
        }
    }
}
