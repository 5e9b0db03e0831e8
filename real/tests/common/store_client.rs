//! A test's connection to a store: one request at a time, answered or closed within PATIENCE.

use super::PATIENCE;
use conductor::proto::{CoordCmd, Msg, StoreCmd, StoreResp};
use conductor::wire;
use std::net::SocketAddr;
use tokio::io::ReadHalf;
use tokio::net::TcpStream;

/// One store connection, asking one thing at a time.
pub struct StoreClient {
    link: wire::TcpLink,
    reader: wire::TcpReader<ReadHalf<TcpStream>>,
    next: u64,
}

/// What became of a request.
#[derive(Debug, PartialEq)]
pub enum Reply {
    /// The store's answer.
    Answer(StoreResp),
    /// The store closed the connection without answering.
    Closed,
}

impl StoreClient {
    /// Connects to the store at `addr`.
    pub async fn connect(addr: SocketAddr) -> StoreClient {
        let stream = TcpStream::connect(addr)
            .await
            .expect("connect to the store");
        let (link, reader) = wire::attach(stream);
        StoreClient {
            link,
            reader,
            next: 0,
        }
    }

    /// Sends `msg(req)` and waits for its answer, or for the connection to close.
    pub async fn ask(&mut self, msg: impl FnOnce(u64) -> Msg) -> Reply {
        self.next += 1;
        assert!(self.link.send(msg(self.next)), "send to the store");
        let answer = async {
            loop {
                match self.reader.next().await {
                    Ok(Some(Msg::StoreResp { resp, .. })) => return Reply::Answer(resp),
                    Ok(Some(_)) => {}
                    _ => return Reply::Closed,
                }
            }
        };
        tokio::time::timeout(PATIENCE, answer)
            .await
            .expect("the store answers (or closes) within PATIENCE")
    }

    /// A coordination command's answer (panics if the store closed the connection).
    pub async fn coord(&mut self, cmd: CoordCmd) -> StoreResp {
        match self.ask(|req| Msg::Coord { req, cmd }).await {
            Reply::Answer(r) => r,
            Reply::Closed => panic!("the store closed the connection on {cmd:?}"),
        }
    }

    /// A record command's answer (panics if the store closed the connection).
    pub async fn store(&mut self, cmd: StoreCmd) -> StoreResp {
        match self.ask(|req| Msg::Store { req, cmd }).await {
            Reply::Answer(r) => r,
            Reply::Closed => panic!("the store closed the connection on {cmd:?}"),
        }
    }
}
