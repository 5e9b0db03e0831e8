//! The orphan sweeper: an accepted op that no conductor began after `orphan_after` (its
//! message died with a conductor or the bus) is dispatched again. Every conductor sweeps; the
//! store hands each orphan to one sweeper (finding it starts its age over), so none is
//! dispatched twice by two sweepers.

use super::{micros, ring_members, Conductor};
use crate::cluster::{self, Routing};
use crate::proto::{CoordCmd, Msg, StoreResp, Task};
use crate::recorder::Event;
use crate::rpc::Unavailable;
use std::sync::Arc;
use std::time::Duration;

impl Conductor {
    /// Sweeps for ever, every half of `orphan_after` (at least every 10 ms).
    pub(super) async fn sweeper(self: Arc<Self>) {
        let every = (self.cfg.orphan_after / 2).max(Duration::from_millis(10));
        let age_us = micros(self.cfg.orphan_after);
        loop {
            tokio::time::sleep(every).await;
            let Ok(store) = self.coord.get().await else {
                continue;
            };
            let members = if self.cfg.routing == Routing::Affinity {
                match ring_members(&store, self.cfg.conductors).await {
                    Ok(m) => m,
                    Err(Unavailable) => continue,
                }
            } else {
                Vec::new()
            };
            let mut from = 0;
            loop {
                let Ok(StoreResp::Op(v)) = store.coord(CoordCmd::Orphan { from, age_us }).await
                else {
                    break;
                };
                from = v.op.id + 1;
                self.rec.record(Event::Orphaned {
                    conductor: self.cfg.index,
                    op: v.op,
                    seq: v.seq,
                });
                let route = cluster::route(
                    self.cfg.routing,
                    self.cfg.conductors,
                    &members,
                    v.op.container,
                    v.host,
                );
                self.send_bus(Msg::Publish {
                    route,
                    task: Task {
                        op: v.op,
                        seq: v.seq,
                        host: v.host,
                        call: false,
                        attempt: 1,
                    },
                    corr: 0,
                    delay_us: 0,
                });
            }
        }
    }
}
