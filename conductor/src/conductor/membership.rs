//! Membership (tooz's group membership): a conductor keeps a lease in the store alive while it
//! runs, and the affinity ring is made of the conductors whose lease has not lapsed.

use super::{micros, Conductor};
use crate::proto::{CoordCmd, StoreResp};
use crate::rpc::{RpcClient, Unavailable};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

impl Conductor {
    /// Keeps this conductor's membership lease alive: a heartbeat every third of the lease.
    pub(super) async fn heartbeat(self: Arc<Self>) {
        let ttl_us = micros(self.cfg.lease_ttl).max(1);
        let every = (self.cfg.lease_ttl / 3).max(Duration::from_millis(1));
        loop {
            if let Ok(c) = self.coord.get().await {
                let _ = c
                    .coord(CoordCmd::Heartbeat {
                        member: self.cfg.index,
                        ttl_us,
                    })
                    .await;
            }
            tokio::time::sleep(every).await;
        }
    }
}

/// The members of the affinity ring: every one of the `conductors`, but those whose membership
/// lease ran out (tooz's partitioner drops a member that stops heartbeating; one still starting
/// has not joined and is not dropped).
pub async fn ring_members(store: &RpcClient, conductors: u32) -> Result<Vec<u32>, Unavailable> {
    let mut lapsed = BTreeSet::new();
    let mut from = 0;
    while let StoreResp::Member { index } = store.coord(CoordCmd::Lapsed { from }).await? {
        lapsed.insert(index);
        match index.checked_add(1) {
            Some(f) => from = f,
            None => break,
        }
    }
    Ok((0..conductors).filter(|c| !lapsed.contains(c)).collect())
}
