//! The store's lease lock on a container (tooz): taken by polling while another holds it,
//! renewed in the background every third of its lease while held, released with one try. A
//! holder that cannot renew loses it without knowing: only the fencing token it carries to the
//! host stops what it does next.

use crate::conductor::{micros, Conductor};
use crate::proto::{CoordCmd, StoreResp, Task};
use crate::recorder::Event;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// A held lease lock on one container.
#[derive(Debug)]
#[must_use = "a lease is renewed until it is released"]
pub struct Lease {
    container: u64,
    token: u64,
    /// Set on release: the renewal task stops at its next wake-up.
    done: Arc<AtomicBool>,
}

impl Lease {
    /// Takes the op's container's lease lock, polling (spaced by the conductor's retry policy)
    /// while another holds it; a wait is recorded as [`Event::LockWait`]. Renewal starts at
    /// once, on the op path's store connection.
    pub async fn lock(cx: &Conductor, task: &Task) -> Lease {
        let container = task.op.container;
        let ttl_us = micros(cx.cfg.lease_ttl).max(1);
        let policy = cx.cfg.retry;
        let t0 = cx.now_us();
        let (mut polls, mut prev) = (1u32, Duration::ZERO);
        let token = loop {
            let cmd = CoordCmd::Lock {
                container,
                owner: cx.cfg.index,
                ttl_us,
            };
            if let StoreResp::Locked { token } = cx.store.coord_until_answered(cmd).await {
                break token;
            }
            // A lock is waited for, not given up: the policy only spaces the polls.
            polls = polls.saturating_add(1);
            let n = polls.min(policy.max_attempts.max(2));
            let d = policy
                .delay(n, prev, task.op.id ^ u64::from(polls))
                .unwrap_or(policy.base)
                .max(Duration::from_millis(1));
            prev = d;
            tokio::time::sleep(d).await;
        };
        if polls > 1 {
            cx.record(Event::LockWait {
                conductor: cx.cfg.index,
                op: task.op,
                wait_us: cx.now_us().saturating_sub(t0),
            });
        }
        let done = Arc::new(AtomicBool::new(false));
        if let Some(store) = cx.store.current() {
            let (d, every) = (done.clone(), cx.cfg.lease_ttl / 3);
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(every).await;
                    if d.load(Ordering::Relaxed) {
                        return;
                    }
                    let renew = CoordCmd::Renew {
                        container,
                        token,
                        ttl_us,
                    };
                    // A holder that cannot renew loses the lock without knowing (tooz): only
                    // fencing at the host stops what it does next.
                    if !matches!(store.coord(renew).await, Ok(StoreResp::Ok)) {
                        return;
                    }
                }
            });
        }
        Lease {
            container,
            token,
            done,
        }
    }

    /// The lock's fencing token: it grows with every grant, so a host that has seen a later
    /// holder's refuses an earlier one's.
    pub fn token(&self) -> u64 {
        self.token
    }

    /// Stops the renewal and releases the lock with one try: a lock not released lapses with
    /// its lease.
    pub async fn release(self, cx: &Conductor) {
        self.done.store(true, Ordering::Relaxed);
        if let Some(c) = cx.store.current() {
            let unlock = CoordCmd::Unlock {
                container: self.container,
                token: self.token,
            };
            let _ = c.coord(unlock).await;
        }
    }
}
