//! Request/response over a [`Link`]: many requests in flight on one connection, matched to their
//! responses by a correlation id.

use crate::net::{Link, Net};
use crate::op::Truth;
use crate::proto::{CoordCmd, HostCmd, HostResp, Msg, RecordView, StoreCmd, StoreResp};
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use tokio::sync::oneshot;

/// The peer could not be reached or went away before answering.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("peer unavailable")]
pub struct Unavailable;

/// Who waits for a response: a task, or a callback run where the response is read (no task
/// wake-up; services that are event-driven use it on their hot path).
enum Waiter {
    Task(oneshot::Sender<Msg>),
    Then(Box<dyn FnOnce(Result<Msg, Unavailable>) + Send>),
}

impl Waiter {
    fn resolve(self, msg: Result<Msg, Unavailable>) {
        match (self, msg) {
            (Waiter::Task(tx), Ok(m)) => {
                let _ = tx.send(m);
            }
            // Dropping the sender fails the waiting task.
            (Waiter::Task(_), Err(_)) => {}
            (Waiter::Then(f), m) => f(m),
        }
    }
}

#[derive(Default)]
struct Pending {
    next: u64,
    closed: bool,
    waiting: BTreeMap<u64, Waiter>,
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
                    Msg::StoreResp { req, .. }
                    | Msg::HostResp { req, .. }
                    | Msg::Records { req, .. }
                    | Msg::Truths { req, .. } => req,
                    _ => continue,
                };
                let waiter = lock(&p).waiting.remove(&req);
                if let Some(w) = waiter {
                    w.resolve(Ok(msg));
                }
            }
            let orphans = {
                let mut p = lock(&p);
                p.closed = true;
                std::mem::take(&mut p.waiting)
            };
            for (_, w) in orphans {
                w.resolve(Err(Unavailable));
            }
        });
        Ok(RpcClient { link, pending })
    }

    /// Whether the connection has gone away.
    pub fn is_closed(&self) -> bool {
        lock(&self.pending).closed || self.link.is_closed()
    }

    /// Sends the request `make(req)` with `waiter` registered for its response; gives the
    /// waiter back if the connection is gone.
    fn send(&self, make: impl FnOnce(u64) -> Msg, waiter: Waiter) -> Result<(), Waiter> {
        let mut p = lock(&self.pending);
        if p.closed {
            return Err(waiter);
        }
        p.next += 1;
        let req = p.next;
        p.waiting.insert(req, waiter);
        if !self.link.send(make(req)) {
            return Err(p.waiting.remove(&req).expect("just inserted"));
        }
        Ok(())
    }

    async fn call(&self, make: impl FnOnce(u64) -> Msg) -> Result<Msg, Unavailable> {
        let (tx, rx) = oneshot::channel();
        self.send(make, Waiter::Task(tx)).map_err(|_| Unavailable)?;
        rx.await.map_err(|_| Unavailable)
    }

    /// Sends a store command; `then` runs with the response where it is received (or at once,
    /// with `Unavailable`, if the connection is gone).
    pub fn store_then(
        &self,
        cmd: StoreCmd,
        then: impl FnOnce(Result<StoreResp, Unavailable>) + Send + 'static,
    ) {
        let waiter = Waiter::Then(Box::new(move |m: Result<Msg, Unavailable>| {
            then(match m {
                Ok(Msg::StoreResp { resp, .. }) => Ok(resp),
                _ => Err(Unavailable),
            })
        }));
        if let Err(w) = self.send(|req| Msg::Store { req, cmd }, waiter) {
            w.resolve(Err(Unavailable));
        }
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

    /// Sends a coordination command to the store and waits for its response.
    pub async fn coord(&self, cmd: CoordCmd) -> Result<StoreResp, Unavailable> {
        match self.call(|req| Msg::Coord { req, cmd }).await? {
            Msg::StoreResp { resp, .. } => Ok(resp),
            _ => Err(Unavailable),
        }
    }

    /// Up to `max` records of containers on `host` after `after` (a store).
    pub async fn list_records(
        &self,
        host: u32,
        after: Option<u64>,
        max: u32,
    ) -> Result<Vec<RecordView>, Unavailable> {
        match self
            .call(|req| Msg::ListRecords {
                req,
                host,
                after,
                max,
            })
            .await?
        {
            Msg::Records { recs, .. } => Ok(recs),
            _ => Err(Unavailable),
        }
    }

    /// Up to `max` containers after `after` with their truth (a host).
    pub async fn list_truths(
        &self,
        after: Option<u64>,
        max: u32,
    ) -> Result<Vec<(u64, Truth)>, Unavailable> {
        match self.call(|req| Msg::ListTruths { req, after, max }).await? {
            Msg::Truths { truths, .. } => Ok(truths),
            _ => Err(Unavailable),
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
/// few map operations); a poisoned lock is still consistent, so take it. The one such helper of
/// the conductor crate (and of its real binary).
pub fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A connection to a request/response service that dials again once it is lost: the peer may
/// die and come back (a restarted store or host), or be cut off for a while. Given several
/// addresses (store processes serving one deployment, one primary at a time: a standby does not
/// listen), a dial that fails moves on to the next, so that the connection follows the primary.
pub struct Redial {
    net: Net,
    from: IpAddr,
    /// The addresses, tried in turn from `at`; one for every service but a replicated store.
    addrs: Vec<SocketAddr>,
    cur: Mutex<Current>,
}

/// The live connection, and the address the next dial tries first.
#[derive(Default)]
struct Current {
    conn: Option<Arc<RpcClient>>,
    at: usize,
}

impl Redial {
    /// A dialer from `from` to `addr`; nothing is dialled until the first use.
    pub fn new(net: &Net, from: IpAddr, addr: SocketAddr) -> Self {
        Self::over(net, from, addr, &[])
    }

    /// A dialer from `from` to `first`, moving on to `others` in turn (and round again) when a
    /// dial fails; with no others it is [`Redial::new`].
    pub fn over(net: &Net, from: IpAddr, first: SocketAddr, others: &[SocketAddr]) -> Self {
        let mut addrs = vec![first];
        addrs.extend_from_slice(others);
        Redial {
            net: net.clone(),
            from,
            addrs,
            cur: Mutex::default(),
        }
    }

    /// The live connection, if there is one (no dialling: for callers that cannot wait).
    pub fn current(&self) -> Option<Arc<RpcClient>> {
        lock(&self.cur)
            .conn
            .as_ref()
            .filter(|c| !c.is_closed())
            .cloned()
    }

    /// The live connection, dialling if there is none: each address once at most, from the
    /// one that answered last (one dial for a single address).
    pub async fn get(&self) -> Result<Arc<RpcClient>, Unavailable> {
        if let Some(c) = self.current() {
            return Ok(c);
        }
        let first = lock(&self.cur).at;
        for k in 0..self.addrs.len() {
            let at = (first + k) % self.addrs.len();
            let Ok(c) = RpcClient::connect(&self.net, self.from, self.addrs[at]).await else {
                continue;
            };
            let c = Arc::new(c);
            let mut cur = lock(&self.cur);
            // Another caller may have dialled meanwhile: keep one connection.
            return match cur.conn.as_ref().filter(|c| !c.is_closed()) {
                Some(existing) => Ok(existing.clone()),
                None => {
                    cur.conn = Some(c.clone());
                    cur.at = at;
                    Ok(c)
                }
            };
        }
        // None answered: the next dial starts from the next address (the one tried first may
        // be a primary that died, its successor not yet listening).
        let mut cur = lock(&self.cur);
        cur.at = (first + 1) % self.addrs.len();
        Err(Unavailable)
    }

    /// Sends a store command, dialling again and retrying with capped backoff until the store
    /// answers: for writes that must land (a job board whose store comes back).
    pub async fn store_until_answered(&self, cmd: StoreCmd) -> StoreResp {
        self.until_answered(|req| Msg::Store { req, cmd }).await
    }

    /// [`Redial::store_until_answered`] for coordination commands.
    pub async fn coord_until_answered(&self, cmd: CoordCmd) -> StoreResp {
        self.until_answered(|req| Msg::Coord { req, cmd }).await
    }

    /// [`Redial::store_until_answered`], telling also whether an earlier ask went unanswered
    /// (its connection lost): the store may have applied that ask, so an answer to a command
    /// that is not idempotent may be about the caller's own lost ask.
    pub async fn store_until_answered_asked_again(&self, cmd: StoreCmd) -> (StoreResp, bool) {
        self.until_answered_counting(|req| Msg::Store { req, cmd })
            .await
    }

    async fn until_answered(&self, make: impl Fn(u64) -> Msg) -> StoreResp {
        self.until_answered_counting(make).await.0
    }

    async fn until_answered_counting(&self, make: impl Fn(u64) -> Msg) -> (StoreResp, bool) {
        let mut backoff = std::time::Duration::from_millis(10);
        let mut asked = false;
        loop {
            if let Ok(c) = self.get().await {
                match c.call(&make).await {
                    Ok(Msg::StoreResp { resp, .. }) => return (resp, asked),
                    // Sent, and the connection went away before an answer came.
                    Err(Unavailable) => asked = true,
                    Ok(_) => {}
                }
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(std::time::Duration::from_secs(2));
        }
    }
}
