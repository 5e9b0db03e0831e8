//! The HTTP client's connection pool: at most `connections` HTTP/1.1 keep-alive connections to
//! the target, reused; a request that finds every connection busy waits for one, and that wait
//! is counted (an open-loop sender never waits silently). A request answered with a whole
//! response gives its connection back; one that failed or was abandoned drops it. The pool is
//! dialled in full before the load starts ([`Pool::warm`]), as wrk and oha do: a dial in the
//! middle of an open-loop run costs a round trip or more (a SYN retried after 1 s on a busy
//! listener) and would show as lateness that the sender did not cause by being slow.

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::client::conn::http1::SendRequest;
use hyper::Request;
use hyper_util::rt::TokioIo;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::sync::Semaphore;

/// How long dialling the target may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The most connections dialled before the load ([`Pool::warm`]); beyond, they are dialled
/// when a request needs one.
pub const WARM_AT_MOST: u32 = 1024;

/// The largest response body read (the rest is not waited for: the connection is dropped).
const MAX_RESPONSE: usize = 1 << 20;

/// Why a request got no HTTP answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendError {
    /// The target could not be dialled (refused, unreachable, or not within
    /// [`CONNECT_TIMEOUT`]): the request never left.
    Connect,
    /// The connection failed or did not speak HTTP/1.1 (a non-HTTP port, a closed connection,
    /// a response too large): the request may have reached the target.
    Protocol,
}

/// The pool.
pub struct Pool {
    addr: SocketAddr,
    idle: Mutex<Vec<SendRequest<Full<Bytes>>>>,
    slots: Arc<Semaphore>,
    /// Connections dialled.
    pub dialled: AtomicU64,
    /// Requests that found every connection busy and waited for one.
    pub waited: AtomicU64,
}

impl Pool {
    /// A pool of at most `connections` connections to `addr`.
    pub fn new(addr: SocketAddr, connections: u32) -> Pool {
        Pool {
            addr,
            idle: Mutex::new(Vec::new()),
            slots: Arc::new(Semaphore::new(connections.max(1) as usize)),
            dialled: AtomicU64::new(0),
            waited: AtomicU64::new(0),
        }
    }

    /// Sends `req` once it has a connection; `on_wire` is called then (the send time). The
    /// answer's status, or why there is none.
    pub async fn send(
        &self,
        req: Request<Full<Bytes>>,
        on_wire: impl FnOnce(),
    ) -> Result<u16, SendError> {
        let permit = match self.slots.clone().try_acquire_owned() {
            Ok(p) => p,
            Err(_) => {
                self.waited.fetch_add(1, Ordering::Relaxed);
                self.slots
                    .clone()
                    .acquire_owned()
                    .await
                    .map_err(|_| SendError::Connect)?
            }
        };
        let mut conn = self.take().await?;
        on_wire();
        let resp = conn
            .send_request(req)
            .await
            .map_err(|_| SendError::Protocol)?;
        let status = resp.status().as_u16();
        // The whole body, so that the connection can carry the next request.
        Limited::new(resp.into_body(), MAX_RESPONSE)
            .collect()
            .await
            .map_err(|_| SendError::Protocol)?;
        crate::load::lock(&self.idle).push(conn);
        drop(permit);
        Ok(status)
    }

    /// Dials the pool's connections (at most `limit`, and [`WARM_AT_MOST`]), all at once,
    /// before the load: the number dialled (a dial that fails is left to be retried when a
    /// request needs it).
    pub async fn warm(self: &Arc<Self>, limit: u32) -> u32 {
        let mut set = tokio::task::JoinSet::new();
        let want = (self.slots.available_permits() as u32).min(limit).min(WARM_AT_MOST);
        for _ in 0..want {
            let pool = self.clone();
            set.spawn(async move { pool.dial().await });
        }
        let mut n = 0;
        while let Some(r) = set.join_next().await {
            if let Ok(Ok(c)) = r {
                crate::load::lock(&self.idle).push(c);
                n += 1;
            }
        }
        n
    }

    /// An idle connection that is still open, or a new one.
    async fn take(&self) -> Result<SendRequest<Full<Bytes>>, SendError> {
        loop {
            let Some(mut c) = crate::load::lock(&self.idle).pop() else {
                break;
            };
            if !c.is_closed() && c.ready().await.is_ok() {
                return Ok(c);
            }
        }
        self.dial().await
    }

    /// A new connection to the target.
    async fn dial(&self) -> Result<SendRequest<Full<Bytes>>, SendError> {
        let stream = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(self.addr))
            .await
            .map_err(|_| SendError::Connect)?
            .map_err(|_| SendError::Connect)?;
        let _ = stream.set_nodelay(true);
        self.dialled.fetch_add(1, Ordering::Relaxed);
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|_| SendError::Protocol)?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(sender)
    }
}
