//! Restart recovery (Zun's `_init_container`): a conductor that starts acts on every op it
//! owned and did not finish before it went down.

use super::{Attempt, Conductor};
use crate::op::OpKind;
use crate::proto::{CoordCmd, StoreResp, Task};
use crate::recorder::{Event, Recovery};

crate::keyword_enum! {
    /// `cluster.recovery`: what a restarting conductor does with the ops it owned.
    pub enum RecoveryPolicy, "a recovery policy" {
        /// Zun's `_init_container`: a create goes to Error, a delete is done again, anything
        /// else is issued again unless superseded.
        Zun = "zun",
        /// Nothing.
        None = "none",
    }
}

impl Conductor {
    /// Every op this conductor owned and did not finish — a create goes to Error, a delete is
    /// done again, anything else is issued again unless a later op of its container has
    /// started. Runs before the conductor consumes the bus.
    pub(super) async fn recover(&self) {
        let mut from = 0;
        loop {
            let scan = CoordCmd::Owned {
                owner: self.cfg.index,
                from,
            };
            let StoreResp::Op(v) = self.coord.coord_until_answered(scan).await else {
                return;
            };
            from = v.op.id + 1;
            let task = Task {
                op: v.op,
                seq: v.seq,
                host: v.host,
                call: false,
                attempt: 2,
            };
            let action = match v.op.kind {
                OpKind::Create => Recovery::MarkedError,
                OpKind::Delete => Recovery::ForceDeleted,
                _ if v.superseded => Recovery::Superseded,
                _ => Recovery::Reissued,
            };
            self.rec.record(Event::Recovered {
                conductor: self.cfg.index,
                op: v.op,
                seq: v.seq,
                action,
            });
            match action {
                Recovery::MarkedError | Recovery::Superseded => {
                    let fail = CoordCmd::Fail {
                        op: v.op.id,
                        error: action == Recovery::MarkedError,
                    };
                    self.coord.coord_until_answered(fail).await;
                    self.rec.record(Event::Terminal {
                        op: v.op,
                        ok: false,
                    });
                }
                Recovery::ForceDeleted | Recovery::Reissued => {
                    let outcome = self.strategy.run(self, &task, Attempt::Reissue).await;
                    self.conclude(task, outcome).await;
                }
            }
        }
    }
}
