//! The API (magnum-api / zun-api): validates state (Zun's 409) if asked, persists the op with its
//! per-container sequence number, and sends it through the bus as a call (answered once the
//! conductor hands it to a worker) or a cast (answered as soon as it is published). Blocking ops
//! are always calls with `rpc_timeout`.

use crate::proto::{
    Answer, BusRole, Failure, Msg, OpSpec, Reply, Route, StoreCmd, StoreResp, Task,
};
use crate::recorder::{Event, SharedRecorder};
use crate::deadline::Deadlines;
use crate::rpc::{lock, RpcClient};
use crate::net::{Link, Listener, Net};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::oneshot;

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

type Waiting = Arc<Mutex<BTreeMap<u64, oneshot::Sender<Answer>>>>;

struct Shared {
    cfg: ApiConfig,
    rec: SharedRecorder,
    store: RpcClient,
    bus: Link,
    next_corr: Mutex<u64>,
    waiting: Waiting,
    timeouts: Deadlines,
}

/// Serves the API on `listener` until the task is dropped.
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
            if let Msg::Reply(Reply { corr, answer, .. }) = msg {
                let tx = lock(&w).remove(&corr);
                if let Some(tx) = tx {
                    let _ = tx.send(answer);
                }
            }
        }
        lock(&w).clear();
    });
    let timeouts = Deadlines::new(cfg.rpc_timeout);
    tokio::spawn(timeouts.clone().sweep(rec.clone(), {
        let w = waiting.clone();
        move |corr| {
            if let Some(tx) = lock(&w).remove(&corr) {
                let _ = tx.send(Answer::Timeout);
            }
        }
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
                    let (me, link) = (me.clone(), link.clone());
                    tokio::spawn(async move {
                        let answer = me.handle(op).await;
                        link.send(Msg::Answer { id: op.id, answer });
                    });
                }
            }
        });
    }
    Ok(())
}

impl Shared {
    async fn handle(&self, op: OpSpec) -> Answer {
        let persisted = self
            .store
            .store(StoreCmd::Accept {
                op,
                validate: self.cfg.validate_state,
            })
            .await;
        let (seq, host) = match persisted {
            Ok(StoreResp::Accepted { seq, host }) => (seq, host),
            Ok(StoreResp::Conflict(status)) => {
                self.rec.record(Event::Rejected { op });
                return Answer::Conflict(status);
            }
            _ => {
                self.rec.record(Event::Rejected { op });
                return Answer::Error(Failure::Unavailable);
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
            return if self.bus.send(Msg::Publish {
                route,
                task,
                corr: 0,
            }) {
                Answer::Accepted
            } else {
                Answer::Error(Failure::Unavailable)
            };
        }
        let (tx, rx) = oneshot::channel();
        let corr = {
            let mut n = lock(&self.next_corr);
            *n += 1;
            *n
        };
        lock(&self.waiting).insert(corr, tx);
        if !self.bus.send(Msg::Publish { route, task, corr }) {
            lock(&self.waiting).remove(&corr);
            return Answer::Error(Failure::Unavailable);
        }
        self.timeouts.push(self.rec.now_us(), corr);
        // The sender is dropped on timeout (by the sweeper) or when the bus connection is lost.
        rx.await.unwrap_or(Answer::Error(Failure::Unavailable))
    }
}
