//! Length-delimited frames of [`Msg`] over a TCP stream.
//!
//! Each connection has a writer task fed by an unbounded channel: whatever is queued when it wakes
//! goes out in one write and one flush, so frames produced in the same instant share a network
//! message (as a real kernel would coalesce them) while the sender never waits.

use crate::proto::Msg;
use bincode::Options;
use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadHalf};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

/// Frames larger than this are a protocol error (no message of ours comes close).
const MAX_FRAME: usize = 1 << 20;

fn codec() -> impl Options {
    bincode::DefaultOptions::new()
}

/// Appends one length-prefixed frame holding `msg` to `buf`.
pub fn encode(msg: &Msg, buf: &mut Vec<u8>) {
    let start = buf.len();
    buf.extend_from_slice(&[0; 4]);
    // Serializing a plain enum of integers into a Vec cannot fail.
    codec()
        .serialize_into(&mut *buf, msg)
        .expect("encoding into a Vec cannot fail");
    let len = (buf.len() - start - 4) as u32;
    buf[start..start + 4].copy_from_slice(&len.to_le_bytes());
}

/// A wire-level error: the peer went away or sent something that is not a frame.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    /// The connection failed.
    #[error("connection: {0}")]
    Io(#[from] std::io::Error),
    /// A frame did not decode.
    #[error("bad frame: {0}")]
    Decode(#[from] bincode::Error),
    /// A frame announced an absurd length.
    #[error("frame of {0} bytes exceeds the limit")]
    TooLarge(usize),
}

/// The sending side of a connection; cheap to clone. Sending never waits: a closed connection
/// drops the message, as a dead TCP peer would.
#[derive(Clone, Debug)]
pub struct Link {
    tx: mpsc::UnboundedSender<Msg>,
}

impl Link {
    /// Queues `msg` for the peer. Returns false if the connection is gone.
    pub fn send(&self, msg: Msg) -> bool {
        self.tx.send(msg).is_ok()
    }

    /// Whether the connection's writer is gone.
    pub fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }
}

/// The receiving side of a connection.
pub struct Reader<R> {
    rd: R,
    buf: BytesMut,
}

impl<R: AsyncRead + Unpin> Reader<R> {
    /// Wraps a read half.
    pub fn new(rd: R) -> Self {
        Reader {
            rd,
            buf: BytesMut::with_capacity(4096),
        }
    }

    /// The next frame; `Ok(None)` when the peer closed the connection.
    pub async fn next(&mut self) -> Result<Option<Msg>, WireError> {
        loop {
            if self.buf.len() >= 4 {
                let len = u32::from_le_bytes([self.buf[0], self.buf[1], self.buf[2], self.buf[3]])
                    as usize;
                if len > MAX_FRAME {
                    return Err(WireError::TooLarge(len));
                }
                if self.buf.len() >= 4 + len {
                    let msg = codec().deserialize(&self.buf[4..4 + len])?;
                    self.buf.advance(4 + len);
                    return Ok(Some(msg));
                }
            }
            if self.rd.read_buf(&mut self.buf).await? == 0 {
                return Ok(None);
            }
        }
    }
}

/// Splits a connected stream into a [`Link`] (with its writer task) and a [`Reader`].
pub fn attach(stream: TcpStream) -> (Link, Reader<ReadHalf<TcpStream>>) {
    let _ = stream.set_nodelay(true);
    let (rd, wr) = tokio::io::split(stream);
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(write_loop(wr, rx));
    (Link { tx }, Reader::new(rd))
}

async fn write_loop<W: AsyncWrite + Unpin>(mut wr: W, mut rx: mpsc::UnboundedReceiver<Msg>) {
    let mut buf = Vec::with_capacity(4096);
    while let Some(msg) = rx.recv().await {
        buf.clear();
        encode(&msg, &mut buf);
        while let Ok(more) = rx.try_recv() {
            encode(&more, &mut buf);
        }
        if wr.write_all(&buf).await.is_err() || wr.flush().await.is_err() {
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::{Answer, Msg};

    #[test]
    fn frames_round_trip() {
        let mut buf = Vec::new();
        let a = Msg::Answer {
            id: 7,
            answer: Answer::Accepted,
        };
        encode(&a, &mut buf);
        encode(&Msg::Ack { tag: u64::MAX }, &mut buf);
        let len = u32::from_le_bytes(buf[0..4].try_into().unwrap()) as usize;
        let back: Msg = codec().deserialize(&buf[4..4 + len]).unwrap();
        assert_eq!(back, a);
    }
}
