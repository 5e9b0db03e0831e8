//! Timeouts of one fixed length for many requests, served by one task.
//!
//! A timer per request would cost a wake-up per request even when the answer comes first (a
//! simulated timer cannot be cancelled). All deadlines here are `now + timeout` for one
//! `timeout`, so they arrive in order: a queue suffices, and the sweeper wakes about once per
//! timeout period, expiring what is still waiting and dropping what was answered.

use crate::recorder::SharedRecorder;
use crate::rpc::lock;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;

/// A queue of request deadlines, all of one length.
#[derive(Clone)]
pub struct Deadlines {
    inner: Arc<Inner>,
}

struct Inner {
    timeout_us: u64,
    queue: Mutex<VecDeque<(u64, u64)>>,
    wake: Notify,
}

impl Deadlines {
    /// Deadlines `timeout` after each push.
    pub fn new(timeout: Duration) -> Self {
        Deadlines {
            inner: Arc::new(Inner {
                timeout_us: timeout.as_micros().min(u128::from(u64::MAX)) as u64,
                queue: Mutex::default(),
                wake: Notify::new(),
            }),
        }
    }

    /// Starts the clock for request `id`, sent at `now_us`.
    pub fn push(&self, now_us: u64, id: u64) {
        let mut q = lock(&self.inner.queue);
        let was_empty = q.is_empty();
        q.push_back((now_us.saturating_add(self.inner.timeout_us), id));
        if was_empty {
            self.inner.wake.notify_one();
        }
    }

    /// Runs forever: calls `expire(id)` for each request whose deadline passed. `expire` must
    /// ignore ids that were already answered.
    pub async fn sweep(self, rec: SharedRecorder, expire: impl Fn(u64)) {
        loop {
            let next = lock(&self.inner.queue).front().map(|(at, _)| *at);
            match next {
                None => self.inner.wake.notified().await,
                Some(at) => {
                    let now = rec.now_us();
                    if at > now {
                        tokio::time::sleep(Duration::from_micros(at - now)).await;
                    }
                    let now = rec.now_us();
                    loop {
                        let due = {
                            let mut q = lock(&self.inner.queue);
                            match q.front() {
                                Some(&(at, id)) if at <= now => {
                                    q.pop_front();
                                    Some(id)
                                }
                                _ => None,
                            }
                        };
                        match due {
                            Some(id) => expire(id),
                            None => break,
                        }
                    }
                }
            }
        }
    }
}
