//! The transport the services talk through: real TCP with length-delimited frames, or the
//! in-memory network that the simulator uses. Services see only [`Link`], [`Reader`] and
//! [`Listener`], so the same code runs both ways.

use crate::mem::{MemLink, MemListener, MemNet, MemReader};
use crate::proto::Msg;
use crate::wire::{self, TcpLink, TcpReader, WireError};
use std::io;
use std::net::{IpAddr, SocketAddr};
use tokio::io::ReadHalf;
use tokio::net::{TcpListener, TcpStream};

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
    /// Listens on `addr`.
    pub async fn bind(&self, addr: SocketAddr) -> io::Result<Listener> {
        Ok(match self {
            Net::Tcp => Listener::Tcp(TcpListener::bind(addr).await?),
            Net::Mem(net) => Listener::Mem(net.bind(addr)?),
        })
    }

    /// Connects from the node at `from` (used by the in-memory network for partitions) to `to`.
    pub async fn connect(&self, from: IpAddr, to: SocketAddr) -> io::Result<(Link, Reader)> {
        Ok(match self {
            Net::Tcp => {
                let (l, r) = wire::attach(TcpStream::connect(to).await?);
                (Link::Tcp(l), Reader::Tcp(r))
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
    Tcp(TcpListener),
    /// In memory.
    Mem(MemListener),
}

impl Listener {
    /// The next incoming connection.
    pub async fn accept(&mut self) -> io::Result<(Link, Reader)> {
        match self {
            Listener::Tcp(l) => {
                let (s, _) = l.accept().await?;
                let (l, r) = wire::attach(s);
                Ok((Link::Tcp(l), Reader::Tcp(r)))
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
            Listener::Tcp(l) => l.local_addr(),
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
    /// Real TCP.
    Tcp(TcpReader<ReadHalf<TcpStream>>),
    /// In memory.
    Mem(MemReader),
}

impl Reader {
    /// The next message; `Ok(None)` when the peer closed the connection.
    pub async fn next(&mut self) -> Result<Option<Msg>, WireError> {
        match self {
            Reader::Tcp(r) => r.next().await,
            Reader::Mem(r) => Ok(r.next().await),
        }
    }
}
