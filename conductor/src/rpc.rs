//! Request/response over a [`Link`]: many requests in flight on one connection, matched to their
//! responses by a correlation id.

use crate::proto::{HostCmd, HostResp, Msg, StoreCmd, StoreResp};
use crate::net::{Link, Net};
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use tokio::sync::oneshot;

/// The peer could not be reached or went away before answering.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("peer unavailable")]
pub struct Unavailable;

#[derive(Default)]
struct Pending {
    next: u64,
    closed: bool,
    waiting: BTreeMap<u64, oneshot::Sender<Msg>>,
}

/// A client of a request/response service (the store or a host).
pub struct RpcClient {
    link: Link,
    pending: Arc<Mutex<Pending>>,
}

impl RpcClient {
    /// Connects from `from` to `addr` and starts the task that matches responses to requests.
    pub async fn connect(net: &Net, from: IpAddr, addr: SocketAddr) -> std::io::Result<RpcClient> {
        let (link, mut reader) = net.connect(from, addr).await?;
        let pending = Arc::new(Mutex::new(Pending::default()));
        let p = pending.clone();
        tokio::spawn(async move {
            while let Ok(Some(msg)) = reader.next().await {
                let req = match msg {
                    Msg::StoreResp { req, .. } | Msg::HostResp { req, .. } => req,
                    _ => continue,
                };
                let waiter = lock(&p).waiting.remove(&req);
                if let Some(tx) = waiter {
                    let _ = tx.send(msg);
                }
            }
            // Dropping the senders fails every request still waiting.
            let mut p = lock(&p);
            p.closed = true;
            p.waiting.clear();
        });
        Ok(RpcClient { link, pending })
    }

    /// Whether the connection has gone away.
    pub fn is_closed(&self) -> bool {
        lock(&self.pending).closed || self.link.is_closed()
    }

    async fn call(&self, make: impl FnOnce(u64) -> Msg) -> Result<Msg, Unavailable> {
        let (tx, rx) = oneshot::channel();
        {
            let mut p = lock(&self.pending);
            if p.closed {
                return Err(Unavailable);
            }
            p.next += 1;
            let req = p.next;
            p.waiting.insert(req, tx);
            if !self.link.send(make(req)) {
                p.waiting.remove(&req);
                return Err(Unavailable);
            }
        }
        rx.await.map_err(|_| Unavailable)
    }

    /// Sends a store command and waits for its response.
    pub async fn store(&self, cmd: StoreCmd) -> Result<StoreResp, Unavailable> {
        match self.call(|req| Msg::Store { req, cmd }).await? {
            Msg::StoreResp { resp, .. } => Ok(resp),
            _ => Err(Unavailable),
        }
    }

    /// Sends a store write without waiting for its answer; it is applied before any command
    /// sent after it on this connection.
    pub fn store_write(&self, cmd: StoreCmd) -> Result<(), Unavailable> {
        if self.link.send(Msg::StoreWrite(cmd)) {
            Ok(())
        } else {
            Err(Unavailable)
        }
    }

    /// Sends a host command and waits for its response.
    pub async fn host(&self, cmd: HostCmd) -> Result<HostResp, Unavailable> {
        match self.call(|req| Msg::Host { req, cmd }).await? {
            Msg::HostResp { resp, .. } => Ok(resp),
            _ => Err(Unavailable),
        }
    }
}

/// Locks a mutex whose holder cannot have panicked mid-update (every critical section here is a
/// few map operations); a poisoned lock is still consistent, so take it.
pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
