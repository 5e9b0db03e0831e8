//! Length-delimited frames of [`Msg`] over a TCP stream (the real transport).
//!
//! A frame is written through to the socket by the sender itself; only when the socket pushes
//! back (real TCP under load) does a writer task take over, so under simulation a message costs
//! no extra task wake-up.

use crate::cancel::Deadline;
use crate::proto::Msg;
use crate::rpc::lock;
use bincode::Options;
use bytes::{Buf, BytesMut};
use std::pin::Pin;
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll, Waker};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::net::TcpStream;
use tokio::sync::Notify;

/// Frames larger than this are a protocol error, refused from their length prefix before
/// anything is allocated for them. The largest message of ours is a page of the reconciler's
/// scan (512 records of at most 20 bytes, about 10 KiB), so 64 KiB leaves room and bounds what a
/// half-sent frame can make a service hold: at most twice this per connection (the read
/// buffer grows by doubling), so `2 × MAX_FRAME × max_connections` in all.
pub const MAX_FRAME: usize = 64 << 10;

fn codec() -> impl Options {
    // The limit also bounds what a length inside a frame (a list's) may make the decoder take.
    bincode::DefaultOptions::new().with_limit(MAX_FRAME as u64)
}

/// Appends one length-prefixed frame holding `msg` to `buf`.
///
/// A frame's body is the message, then its **extensions**: fields added to the format after it
/// shipped, which a binary that predates them never writes. There is one, the deadline of the
/// op the message carries ([`OpSpec::deadline`](crate::proto::OpSpec::deadline)), written only
/// when the op has one; a body that ends with its message is an old frame (no deadline).
pub fn encode(msg: &Msg, buf: &mut Vec<u8>) {
    let start = buf.len();
    buf.extend_from_slice(&[0; 4]);
    // Serializing a plain enum of integers into a Vec cannot fail.
    codec()
        .serialize_into(&mut *buf, msg)
        .expect("encoding into a Vec cannot fail");
    if let Some(d) = msg.op().and_then(|op| op.deadline) {
        codec()
            .serialize_into(&mut *buf, &d)
            .expect("encoding into a Vec cannot fail");
    }
    let len = (buf.len() - start - 4) as u32;
    buf[start..start + 4].copy_from_slice(&len.to_le_bytes());
}

/// Decodes one frame's body (what follows its length prefix): the message and, after it, the
/// extensions [`encode`] writes; anything after those is a bad frame.
pub fn decode(body: &[u8]) -> Result<Msg, WireError> {
    let mut rest = body;
    let mut msg: Msg = codec().allow_trailing_bytes().deserialize_from(&mut rest)?;
    if !rest.is_empty() {
        let deadline: Deadline = codec().deserialize(rest)?;
        match msg.op_mut() {
            Some(op) => op.deadline = Some(deadline),
            None => return Err(WireError::Extension),
        }
    }
    Ok(msg)
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
    /// A frame carried an extension its message has no place for (a deadline after a message
    /// without an op).
    #[error("bad frame: a deadline after a message that carries no op")]
    Extension,
    /// A frame announced an absurd length.
    #[error("a frame of {0} bytes exceeds the limit of {MAX_FRAME}")]
    TooLarge(usize),
    /// A frame began but did not end within the frame deadline (a slow or stuck sender).
    #[error("a frame begun was not finished within {}", humantime::format_duration(*.0))]
    Stalled(std::time::Duration),
}

/// The sending side of a connection; cheap to clone. Sending never waits: a frame is written
/// through at once when the socket takes it (always, under simulation), and otherwise queued for
/// the connection's writer task. A closed connection drops the message, as a dead peer would.
#[derive(Clone)]
pub struct TcpLink {
    inner: Arc<LinkInner>,
}

struct LinkInner {
    state: Mutex<LinkState>,
    /// Wakes the writer task when the socket pushed back, or when the last `TcpLink` is gone.
    wake: Arc<Notify>,
}

impl Drop for LinkInner {
    fn drop(&mut self) {
        self.wake.notify_one();
    }
}

struct LinkState {
    /// The write half, when no writer task is busy with it.
    wr: Option<WriteHalf<TcpStream>>,
    /// Encoded frames not yet accepted by the socket.
    buf: Vec<u8>,
    closed: bool,
}

impl std::fmt::Debug for TcpLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TcpLink").finish_non_exhaustive()
    }
}

/// What writing without waiting achieved.
enum Flushed {
    /// Everything went out.
    Done,
    /// The socket would block: the writer task must finish.
    Blocked,
    /// The connection failed.
    Failed,
}

/// Writes `buf` and flushes without waiting. Polling with a no-op waker is sound because a
/// `Blocked` result hands the job to a task that polls again with its own waker.
fn write_now(wr: &mut WriteHalf<TcpStream>, buf: &mut Vec<u8>) -> Flushed {
    let mut cx = Context::from_waker(Waker::noop());
    let mut written = 0;
    while written < buf.len() {
        match Pin::new(&mut *wr).poll_write(&mut cx, &buf[written..]) {
            Poll::Ready(Ok(0)) | Poll::Ready(Err(_)) => return Flushed::Failed,
            Poll::Ready(Ok(n)) => written += n,
            Poll::Pending => {
                buf.drain(..written);
                return Flushed::Blocked;
            }
        }
    }
    buf.clear();
    match Pin::new(&mut *wr).poll_flush(&mut cx) {
        Poll::Ready(Ok(())) => Flushed::Done,
        Poll::Ready(Err(_)) => Flushed::Failed,
        Poll::Pending => Flushed::Blocked,
    }
}

impl TcpLink {
    /// Queues `msg` for the peer. Returns false if the connection is gone.
    pub fn send(&self, msg: Msg) -> bool {
        let mut st = lock(&self.inner.state);
        if st.closed {
            return false;
        }
        encode(&msg, &mut st.buf);
        let LinkState { wr, buf, closed } = &mut *st;
        let Some(w) = wr.as_mut() else {
            // The writer task holds the socket and will take these bytes too.
            return true;
        };
        match write_now(w, buf) {
            Flushed::Done => {}
            Flushed::Blocked => {
                drop(st);
                self.inner.wake.notify_one();
            }
            Flushed::Failed => *closed = true,
        }
        true
    }

    /// Whether the connection has failed.
    pub fn is_closed(&self) -> bool {
        lock(&self.inner.state).closed
    }
}

/// Finishes writes the socket pushed back on, then returns the socket to the fast path.
async fn writer(inner: Weak<LinkInner>, wake: Arc<Notify>) {
    loop {
        wake.notified().await;
        let Some(inner) = inner.upgrade() else {
            return;
        };
        loop {
            let (mut w, bytes) = {
                let mut st = lock(&inner.state);
                if st.buf.is_empty() || st.closed {
                    break;
                }
                let Some(w) = st.wr.take() else { break };
                (w, std::mem::take(&mut st.buf))
            };
            let ok = w.write_all(&bytes).await.is_ok() && w.flush().await.is_ok();
            let mut st = lock(&inner.state);
            st.wr = Some(w);
            if !ok {
                st.closed = true;
                return;
            }
        }
    }
}

/// The receiving side of a connection.
pub struct TcpReader<R> {
    rd: R,
    buf: BytesMut,
    /// How long a frame may take to arrive once its first byte has (`None`: no deadline).
    frame_deadline: Option<std::time::Duration>,
    /// Holds a place in the listener's connection count while the connection lives.
    _slot: Option<Arc<dyn Send + Sync>>,
}

impl<R: AsyncRead + Unpin> TcpReader<R> {
    /// Wraps a read half.
    pub fn new(rd: R) -> Self {
        TcpReader {
            rd,
            buf: BytesMut::with_capacity(4096),
            frame_deadline: None,
            _slot: None,
        }
    }

    /// The next frame; `Ok(None)` when the peer closed the connection. With a frame deadline,
    /// a frame whose first byte arrived must be complete within it (`Stalled`): an idle
    /// connection may stay as long as it likes, a slow sender may not hold a buffer.
    pub async fn next(&mut self) -> Result<Option<Msg>, WireError> {
        let mut begun: Option<tokio::time::Instant> = None;
        loop {
            if self.buf.len() >= 4 {
                let len = u32::from_le_bytes([self.buf[0], self.buf[1], self.buf[2], self.buf[3]])
                    as usize;
                if len > MAX_FRAME {
                    return Err(WireError::TooLarge(len));
                }
                if self.buf.len() >= 4 + len {
                    let msg = decode(&self.buf[4..4 + len])?;
                    self.buf.advance(4 + len);
                    return Ok(Some(msg));
                }
            }
            let read = match (self.frame_deadline, self.buf.is_empty()) {
                (Some(limit), false) => {
                    let since = *begun.get_or_insert_with(tokio::time::Instant::now);
                    let left = limit.saturating_sub(since.elapsed());
                    tokio::time::timeout(left, self.rd.read_buf(&mut self.buf))
                        .await
                        .map_err(|_| WireError::Stalled(limit))??
                }
                _ => self.rd.read_buf(&mut self.buf).await?,
            };
            if read == 0 {
                return Ok(None);
            }
        }
    }
}

/// Splits a connected stream into a [`TcpLink`] and a [`TcpReader`].
pub fn attach(stream: TcpStream) -> (TcpLink, TcpReader<ReadHalf<TcpStream>>) {
    attach_accepted(stream, None, None)
}

/// [`attach`] for a connection a listener accepted: its reader enforces `frame_deadline`, and
/// holds `slot` (the listener's count of open connections) until it is dropped.
pub fn attach_accepted(
    stream: TcpStream,
    frame_deadline: Option<std::time::Duration>,
    slot: Option<Arc<dyn Send + Sync>>,
) -> (TcpLink, TcpReader<ReadHalf<TcpStream>>) {
    let _ = stream.set_nodelay(true);
    let (rd, wr) = tokio::io::split(stream);
    let wake = Arc::new(Notify::new());
    let inner = Arc::new(LinkInner {
        state: Mutex::new(LinkState {
            wr: Some(wr),
            buf: Vec::with_capacity(256),
            closed: false,
        }),
        wake: wake.clone(),
    });
    tokio::spawn(writer(Arc::downgrade(&inner), wake));
    let mut reader = TcpReader::new(rd);
    reader.frame_deadline = frame_deadline;
    reader._slot = slot;
    (TcpLink { inner }, reader)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::op::OpKind;
    use crate::proto::{Answer, Msg, OpSpec, StoreCmd, Task};

    #[test]
    fn frames_round_trip() {
        let mut buf = Vec::new();
        let a = Msg::Answer {
            id: 7,
            answer: Answer::Accepted,
        };
        encode(&a, &mut buf);
        encode(
            &Msg::Ack {
                tag: u64::MAX,
                reply: None,
            },
            &mut buf,
        );
        let len = u32::from_le_bytes(buf[0..4].try_into().unwrap()) as usize;
        let back: Msg = codec().deserialize(&buf[4..4 + len]).unwrap();
        assert_eq!(back, a);
    }

    fn body(msg: &Msg) -> Vec<u8> {
        let mut buf = Vec::new();
        encode(msg, &mut buf);
        buf.split_off(4)
    }

    /// The frame a binary from before deadlines wrote for `Request(op)`: the op's four fields.
    fn old_request_body(op: &OpSpec) -> Vec<u8> {
        #[derive(serde::Serialize)]
        enum OldMsg {
            Request(u64, u64, OpKind, u64),
        }
        codec()
            .serialize(&OldMsg::Request(
                op.id,
                op.container,
                op.kind,
                op.intended_us,
            ))
            .unwrap()
    }

    #[test]
    fn a_deadline_travels_as_an_extension_and_old_frames_decode_without_one() {
        let op = OpSpec {
            id: 3,
            container: 9,
            kind: OpKind::Start,
            intended_us: 1_000,
            deadline: None,
        };
        // Without a deadline a frame is what it always was, byte for byte.
        assert_eq!(body(&Msg::Request(op)), old_request_body(&op));
        assert_eq!(decode(&old_request_body(&op)).unwrap(), Msg::Request(op));
        for d in [Deadline::Conductor(5_000_000), Deadline::Bus(u64::MAX)] {
            let with = OpSpec {
                deadline: Some(d),
                ..op
            };
            let task = Task {
                op: with,
                seq: 4,
                host: 1,
                call: true,
                attempt: 2,
            };
            for m in [
                Msg::Request(with),
                Msg::Deliver {
                    tag: 1,
                    task,
                    corr: 2,
                    reply_to: 3,
                },
                Msg::Expired { task, corr: 7 },
                Msg::Store {
                    req: 1,
                    cmd: StoreCmd::Accept {
                        op: with,
                        validate: true,
                    },
                },
            ] {
                assert_eq!(decode(&body(&m)).unwrap(), m, "{m:?}");
            }
        }
        // An extension after a message with no op, or garbage after the extension, is refused.
        let mut bad = body(&Msg::Ack {
            tag: 1,
            reply: None,
        });
        bad.extend(codec().serialize(&Deadline::Conductor(1)).unwrap());
        assert!(matches!(decode(&bad), Err(WireError::Extension)));
        let mut long = body(&Msg::Request(OpSpec {
            deadline: Some(Deadline::Conductor(1)),
            ..op
        }));
        long.push(0);
        assert!(decode(&long).is_err());
    }
}
