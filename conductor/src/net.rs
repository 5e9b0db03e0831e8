//! The transport the services talk through: real TCP with length-delimited frames, or the
//! in-memory network that the simulator uses. Services see only [`Link`], [`Reader`] and
//! [`Listener`], so the same code runs both ways.

use crate::mem::{MemLink, MemListener, MemNet, MemReader};
use crate::proto::{Msg, Refusal};
use crate::wire::{self, TcpLink, TcpReader, WireError};
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncWriteExt, ReadHalf};
use tokio::net::{TcpListener, TcpStream};

/// What a listening service puts up with from its peers (real TCP only: the simulator's
/// network has neither file descriptors nor byte streams).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Connections open at once; one more is refused with [`Refusal::TooManyConnections`].
    pub max_connections: u32,
    /// How long a frame may take to arrive once its first byte has (slow senders).
    pub frame_deadline: Duration,
}

impl Limits {
    /// The default connection limit: below the usual open-file limit of 1,024 (`ulimit -n`),
    /// leaving room for the service's own connections and files.
    pub const DEFAULT_MAX_CONNECTIONS: u32 = 1000;
    /// The default frame deadline.
    pub const DEFAULT_FRAME_DEADLINE: Duration = Duration::from_secs(10);
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: Self::DEFAULT_MAX_CONNECTIONS,
            frame_deadline: Self::DEFAULT_FRAME_DEADLINE,
        }
    }
}

/// A service's warning about its peers or its sockets, on stderr (the event log, when it is
/// on stderr too, is JSON lines: give `--log FILE` to keep the two apart).
pub fn warn(msg: std::fmt::Arguments<'_>) {
    eprintln!("conductor: warning: {msg}");
}

/// The first and the largest pause after a failed `accept`.
const ACCEPT_BACKOFF: (Duration, Duration) = (Duration::from_millis(5), Duration::from_secs(1));

/// A TCP listener that never gives up: a failed `accept` (out of file descriptors, buffers, a
/// connection aborted before it was taken) is retried after a pause that doubles up to a
/// second, and warned about once per burst of failures; beyond `max_connections` a
/// connection is told why and closed.
pub struct TcpServer {
    listener: TcpListener,
    limits: Limits,
    /// Connections open now (each holds a [`Slot`]).
    open: Arc<AtomicU32>,
    /// Failed accepts since the last one that worked.
    failures: u64,
}

/// A place in a [`TcpServer`]'s count of open connections, given back when dropped.
struct Slot(Arc<AtomicU32>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Whether an `accept` error concerns only the connection being taken (retried at once): the
/// others (EMFILE, ENFILE, ENOBUFS, ENOMEM…) last until something is freed, so they wait.
fn per_connection(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionRefused
            | io::ErrorKind::Interrupted
    )
}

impl TcpServer {
    /// The next connection within the limits; waits out (and warns about) failed accepts.
    async fn accept(&mut self) -> (TcpLink, TcpReader<ReadHalf<TcpStream>>, SocketAddr) {
        let mut backoff = ACCEPT_BACKOFF.0;
        loop {
            let (stream, peer) = match self.listener.accept().await {
                Ok(c) => c,
                Err(e) => {
                    if self.failures == 0 {
                        warn(format_args!(
                            "{}: accept failed: {e}; retrying with backoff up to {} \
                             (warned once until an accept succeeds)",
                            self.local(),
                            humantime::format_duration(ACCEPT_BACKOFF.1)
                        ));
                    }
                    self.failures += 1;
                    if !per_connection(&e) {
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(ACCEPT_BACKOFF.1);
                    }
                    continue;
                }
            };
            if self.failures > 0 {
                warn(format_args!(
                    "{}: accepting again after {} failed accepts",
                    self.local(),
                    self.failures
                ));
                self.failures = 0;
            }
            let open = self.open.load(Ordering::Relaxed);
            if open >= self.limits.max_connections {
                self.refuse(stream, peer, open);
                continue;
            }
            self.open.fetch_add(1, Ordering::Relaxed);
            let slot: Arc<dyn Send + Sync> = Arc::new(Slot(self.open.clone()));
            let (l, r) =
                wire::attach_accepted(stream, Some(self.limits.frame_deadline), Some(slot));
            return (l, r, peer);
        }
    }

    /// Tells a connection beyond the limit why it is closed, then closes it.
    fn refuse(&self, stream: TcpStream, peer: SocketAddr, open: u32) {
        let limit = self.limits.max_connections;
        warn(format_args!(
            "{}: refused a connection from {peer}: {open} connections open, the limit is \
             {limit} (--max-connections)",
            self.local()
        ));
        let mut frame = Vec::new();
        wire::encode(
            &Msg::Refused(Refusal::TooManyConnections { limit }),
            &mut frame,
        );
        // A few bytes that a fresh socket's send buffer takes at once; a peer that does not
        // even take those is closed on after a second anyway.
        tokio::spawn(async move {
            let mut stream = stream;
            let _ = tokio::time::timeout(Duration::from_secs(1), stream.write_all(&frame)).await;
        });
    }

    fn local(&self) -> String {
        self.listener
            .local_addr()
            .map_or_else(|_| "listener".into(), |a| a.to_string())
    }
}

/// Frames this process's TCP links delivered to their readers: the real counterpart of the
/// in-memory network's deliveries ([`MemNet::messages`]), one process per service.
static TCP_FRAMES: AtomicU64 = AtomicU64::new(0);

/// Frames delivered to a reader over TCP in this process so far (every link: the services'
/// and the HTTP front's hand-over to the API, which stands for the simulated client's link).
pub fn tcp_frames_delivered() -> u64 {
    TCP_FRAMES.load(Ordering::Relaxed)
}

/// Which network to use; cheap to clone.
#[derive(Clone)]
pub enum Net {
    /// Real TCP.
    Tcp,
    /// The in-memory network (simulated under madsim).
    Mem(MemNet),
}

impl std::fmt::Debug for Net {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Net::Tcp => "Net::Tcp",
            Net::Mem(_) => "Net::Mem",
        })
    }
}

impl Net {
    /// Listens on `addr` with the default [`Limits`].
    pub async fn bind(&self, addr: SocketAddr) -> io::Result<Listener> {
        self.bind_with(addr, Limits::default()).await
    }

    /// Listens on `addr`, holding its peers to `limits`.
    pub async fn bind_with(&self, addr: SocketAddr, limits: Limits) -> io::Result<Listener> {
        Ok(match self {
            Net::Tcp => Listener::Tcp(TcpServer {
                listener: TcpListener::bind(addr).await?,
                limits,
                open: Arc::default(),
                failures: 0,
            }),
            Net::Mem(net) => Listener::Mem(net.bind(addr)?),
        })
    }

    /// A real TCP listener bound elsewhere (a store standby reserves its port before it
    /// listens) as a listener of this crate, holding its peers to `limits`.
    pub fn tcp_listener(listener: TcpListener, limits: Limits) -> Listener {
        Listener::Tcp(TcpServer {
            listener,
            limits,
            open: Arc::default(),
            failures: 0,
        })
    }

    /// Connects from the node at `from` (used by the in-memory network for partitions) to `to`.
    pub async fn connect(&self, from: IpAddr, to: SocketAddr) -> io::Result<(Link, Reader)> {
        Ok(match self {
            Net::Tcp => {
                let (l, r) = wire::attach(TcpStream::connect(to).await?);
                (Link::Tcp(l), Reader::Tcp(r, to))
            }
            Net::Mem(net) => {
                let (l, r) = net.connect(from, to)?;
                (Link::Mem(l), Reader::Mem(r))
            }
        })
    }
}

/// A listening socket.
pub enum Listener {
    /// Real TCP.
    Tcp(TcpServer),
    /// In memory.
    Mem(MemListener),
}

impl Listener {
    /// The next incoming connection. Over TCP it never fails (see [`TcpServer`]); the
    /// in-memory network fails when it is gone.
    pub async fn accept(&mut self) -> io::Result<(Link, Reader)> {
        match self {
            Listener::Tcp(l) => {
                let (l, r, peer) = l.accept().await;
                Ok((Link::Tcp(l), Reader::Tcp(r, peer)))
            }
            Listener::Mem(l) => match l.accept().await {
                Some((l, r)) => Ok((Link::Mem(l), Reader::Mem(r))),
                None => Err(io::Error::new(io::ErrorKind::NotConnected, "network gone")),
            },
        }
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        match self {
            Listener::Tcp(l) => l.listener.local_addr(),
            Listener::Mem(l) => Ok(l.local_addr()),
        }
    }
}

/// The sending side of a connection; cheap to clone; sending never waits.
#[derive(Clone)]
pub enum Link {
    /// Real TCP.
    Tcp(TcpLink),
    /// In memory.
    Mem(MemLink),
}

impl Link {
    /// Sends `msg`. Returns false if the connection is gone.
    pub fn send(&self, msg: Msg) -> bool {
        match self {
            Link::Tcp(l) => l.send(msg),
            Link::Mem(l) => l.send(msg),
        }
    }

    /// Whether the connection is gone.
    pub fn is_closed(&self) -> bool {
        match self {
            Link::Tcp(l) => l.is_closed(),
            Link::Mem(l) => l.is_closed(),
        }
    }
}

/// The receiving side of a connection.
pub enum Reader {
    /// Real TCP, with the peer's address (named when it misbehaves).
    Tcp(TcpReader<ReadHalf<TcpStream>>, SocketAddr),
    /// In memory.
    Mem(MemReader),
}

impl Reader {
    /// The next message; `Ok(None)` when the peer closed the connection. A peer that sends
    /// what is not a frame (too large, undecodable, stalled half-way) is warned about by its
    /// address, and its connection is to be closed.
    pub async fn next(&mut self) -> Result<Option<Msg>, WireError> {
        match self {
            Reader::Tcp(r, peer) => {
                let got = r.next().await;
                if let Ok(Some(_)) = &got {
                    TCP_FRAMES.fetch_add(1, Ordering::Relaxed);
                }
                if let Err(e) = &got {
                    if !matches!(e, WireError::Io(_)) {
                        warn(format_args!("closing the connection with {peer}: {e}"));
                    }
                }
                got
            }
            Reader::Mem(r) => Ok(r.next().await),
        }
    }
}
