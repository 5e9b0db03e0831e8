//! The API (magnum-api / zun-api): validates state (Zun's 409) if asked, persists the op with its
//! per-container sequence number, and sends it through the bus as a call (answered once the
//! conductor hands it to a worker) or a cast (answered as soon as it is published). Blocking ops
//! are always calls with `rpc_timeout`.

use crate::deadline::Deadlines;
use crate::net::{Link, Listener, Net};
use crate::proto::{
    Answer, BusRole, Failure, Msg, OpSpec, Reply, Route, StoreCmd, StoreResp, Task,
};
use crate::recorder::{Event, SharedRecorder};
use crate::rpc::{lock, RpcClient, Unavailable};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How the API hands async ops to the conductors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RpcKind {
    /// Wait for the conductor's answer (the seed).
    Call,
    /// Fire and forget (the Magnum spec, Zun).
    Cast,
}

/// The API's settings.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// Refuse ops the container's status does not allow (409).
    pub validate_state: bool,
    /// Call or cast for async ops.
    pub async_rpc: RpcKind,
    /// How long a call waits for the conductor.
    pub rpc_timeout: Duration,
    /// The store.
    pub store: SocketAddr,
    /// The bus.
    pub bus: SocketAddr,
    /// The network.
    pub net: Net,
    /// This node's address.
    pub ip: IpAddr,
}

/// Why the API could not start.
#[derive(Debug, thiserror::Error)]
#[error("cannot reach {what} at {addr}: {source}")]
pub struct ApiError {
    what: &'static str,
    addr: SocketAddr,
    source: std::io::Error,
}

/// Calls waiting for the conductor's answer: correlation id → the client's connection and op.
type Waiting = Arc<Mutex<BTreeMap<u64, (Link, u64)>>>;

struct Shared {
    cfg: ApiConfig,
    rec: SharedRecorder,
    store: RpcClient,
    bus: Link,
    next_corr: Mutex<u64>,
    waiting: Waiting,
    timeouts: Deadlines,
}

/// Answers a waiting call, if it still waits.
fn answer(waiting: &Waiting, corr: u64, answer: Answer) {
    let w = lock(waiting).remove(&corr);
    if let Some((client, id)) = w {
        client.send(Msg::Answer { id, answer });
    }
}

/// Serves the API on `listener` until the task is dropped.
///
/// The API is event-driven: a request moves on when the store's or the bus's answer is read,
/// without a task of its own, so an op costs the API no task wake-ups beyond its messages.
pub async fn serve(
    mut listener: Listener,
    cfg: ApiConfig,
    rec: SharedRecorder,
) -> Result<(), ApiError> {
    let store = RpcClient::connect(&cfg.net, cfg.ip, cfg.store)
        .await
        .map_err(|source| ApiError {
            what: "the store",
            addr: cfg.store,
            source,
        })?;
    let (bus, mut bus_reader) =
        cfg.net
            .connect(cfg.ip, cfg.bus)
            .await
            .map_err(|source| ApiError {
                what: "the bus",
                addr: cfg.bus,
                source,
            })?;
    bus.send(Msg::Hello(BusRole::Publisher));
    let waiting: Waiting = Arc::default();
    let w = waiting.clone();
    tokio::spawn(async move {
        while let Ok(Some(msg)) = bus_reader.next().await {
            if let Msg::Reply(Reply {
                corr, answer: a, ..
            }) = msg
            {
                answer(&w, corr, a);
            }
        }
        // The bus is gone: no call will be answered.
        let lost = std::mem::take(&mut *lock(&w));
        for (_, (client, id)) in lost {
            client.send(Msg::Answer {
                id,
                answer: Answer::Error(Failure::Unavailable),
            });
        }
    });
    let timeouts = Deadlines::new(cfg.rpc_timeout);
    tokio::spawn(timeouts.clone().sweep(rec.clone(), {
        let w = waiting.clone();
        move |corr| answer(&w, corr, Answer::Timeout)
    }));
    let me = Arc::new(Shared {
        cfg,
        rec,
        store,
        bus,
        next_corr: Mutex::new(0),
        waiting,
        timeouts,
    });
    while let Ok((link, mut reader)) = listener.accept().await {
        let me = me.clone();
        tokio::spawn(async move {
            while let Ok(Some(msg)) = reader.next().await {
                if let Msg::Request(op) = msg {
                    me.request(op, &link);
                }
            }
        });
    }
    Ok(())
}

impl Shared {
    /// A client's request: persist it, then go on in [`Shared::persisted`].
    fn request(self: &Arc<Self>, op: OpSpec, client: &Link) {
        let (me, client) = (self.clone(), client.clone());
        self.store.store_then(
            StoreCmd::Accept {
                op,
                validate: self.cfg.validate_state,
            },
            move |resp| {
                if let Some(answer) = me.persisted(op, &client, resp) {
                    client.send(Msg::Answer { id: op.id, answer });
                }
            },
        );
    }

    /// The store's answer to persisting `op`: refuse it, or publish it. Returns the answer to
    /// give the client now, or `None` when it comes with the conductor's reply.
    fn persisted(
        &self,
        op: OpSpec,
        client: &Link,
        resp: Result<StoreResp, Unavailable>,
    ) -> Option<Answer> {
        let (seq, host) = match resp {
            Ok(StoreResp::Accepted { seq, host }) => (seq, host),
            Ok(StoreResp::Conflict(status)) => {
                self.rec.record(Event::Rejected { op });
                return Some(Answer::Conflict(status));
            }
            _ => {
                self.rec.record(Event::Rejected { op });
                return Some(Answer::Unavailable);
            }
        };
        self.rec.record(Event::Accepted { op, seq });
        let call = op.kind.is_blocking() || self.cfg.async_rpc == RpcKind::Call;
        let task = Task {
            op,
            seq,
            host,
            call,
        };
        let route = Route::Topic;
        if !call {
            let sent = self.bus.send(Msg::Publish {
                route,
                task,
                corr: 0,
            });
            return Some(if sent {
                Answer::Accepted
            } else {
                Answer::Error(Failure::Unavailable)
            });
        }
        let corr = {
            let mut n = lock(&self.next_corr);
            *n += 1;
            *n
        };
        lock(&self.waiting).insert(corr, (client.clone(), op.id));
        if !self.bus.send(Msg::Publish { route, task, corr }) {
            lock(&self.waiting).remove(&corr);
            return Some(Answer::Error(Failure::Unavailable));
        }
        self.timeouts.push(self.rec.now_us(), corr);
        None
    }
}
