//! The API (magnum-api / zun-api): validates state (Zun's 409) if asked, persists the op with its
//! per-container sequence number, and sends it through the bus as a call (answered once the
//! conductor hands it to a worker) or a cast (answered as soon as it is published). Blocking ops
//! are always calls with `rpc_timeout`.

use crate::cancel::{cancel, Cancelled};
use crate::cluster::{self, Routing};
use crate::idempotency::{Claim, Keys};
use crate::net::{Link, Listener, Net};
use crate::proto::{Answer, BusRole, Failure, Msg, OpSpec, Reply, StoreCmd, StoreResp, Task};
use crate::recorder::{Event, SharedRecorder};
use crate::rpc::{lock, Redial, Unavailable};
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;

crate::keyword_enum! {
    /// `api.async_rpc`: how the API hands async ops to the conductors.
    pub enum RpcKind, "an RPC kind" {
        /// Wait for the conductor's answer (the proposal).
        Call = "call",
        /// Fire and forget (the Magnum spec, Zun).
        Cast = "cast",
    }
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
    /// Which conductor's queue an op goes to.
    pub routing: Routing,
    /// How many conductors there are.
    pub conductors: u32,
    /// Membership lease (affinity reads the live members every third of it).
    pub lease_ttl: Duration,
    /// The store.
    pub store: SocketAddr,
    /// Further store processes serving the same deployment (one primary at a time), dialled
    /// in turn when `store` cannot be reached; empty for one store.
    pub other_stores: Vec<SocketAddr>,
    /// The bus.
    pub bus: SocketAddr,
    /// The network.
    pub net: Net,
    /// This node's address.
    pub ip: IpAddr,
}

/// A call waiting for the conductor's answer.
struct Call {
    /// The client's connection.
    client: Link,
    /// The op's id.
    id: u64,
    /// When it was published (µs), for its timeout.
    sent_us: u64,
}

/// Calls waiting for the conductor's answer, by correlation id. Ids grow with publication time
/// and every call has the same timeout, so the first entry is always the next to time out.
type Waiting = Arc<Mutex<BTreeMap<u64, Call>>>;

/// The requests' idempotency keys (their op ids), with the answers given under them.
type Keyring = Arc<Mutex<Keys>>;

/// Answers the request `id` on `client` after its op was persisted: the key keeps the answer.
fn give(keys: &Keyring, client: &Link, id: u64, answer: Answer) {
    lock(keys).answered(id, answer);
    client.send(Msg::Answer { id, answer });
}

struct Shared {
    cfg: ApiConfig,
    rec: SharedRecorder,
    store: Redial,
    bus: Mutex<Option<Link>>,
    /// The live conductors, for `affinity`.
    members: Mutex<Vec<u32>>,
    next_corr: Mutex<u64>,
    waiting: Waiting,
    keys: Keyring,
    /// Wakes the timeout sweeper when the first call starts waiting.
    first_call: Arc<Notify>,
    /// Told when the bus is first dialled: requests are read only from then on.
    bus_up: Notify,
}

/// Answers a waiting call, if it still waits.
fn answer(waiting: &Waiting, keys: &Keyring, corr: u64, answer: Answer) {
    let w = lock(waiting).remove(&corr);
    if let Some(call) = w {
        give(keys, &call.client, call.id, answer);
    }
}

/// Serves the API on `listener` until the task is dropped. The store and the bus are dialled
/// again whenever they are lost; meanwhile requests are refused (503) or fail.
///
/// The API is event-driven: a request moves on when the store's or the bus's answer is read,
/// without a task of its own, so an op costs the API no task wake-ups beyond its messages.
pub async fn serve(mut listener: Listener, cfg: ApiConfig, rec: SharedRecorder) {
    let waiting: Waiting = Arc::default();
    let keys: Keyring = Arc::default();
    let first_call = Arc::new(Notify::new());
    tokio::spawn(time_out(
        waiting.clone(),
        keys.clone(),
        first_call.clone(),
        rec.clone(),
        cfg.rpc_timeout,
    ));
    let me = Arc::new(Shared {
        store: Redial::over(&cfg.net, cfg.ip, cfg.store, &cfg.other_stores),
        cfg,
        rec,
        bus: Mutex::new(None),
        members: Mutex::default(),
        next_corr: Mutex::new(0),
        waiting,
        keys,
        first_call,
        bus_up: Notify::new(),
    });
    // The store first, however long it takes to come up: the first requests find it dialled.
    let mut backoff = Duration::from_millis(1);
    while me.store.get().await.is_err() {
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(1));
    }
    tokio::spawn(me.clone().keep_bus());
    if me.cfg.routing == Routing::Affinity {
        tokio::spawn(me.clone().watch_members());
    }
    // Then, over TCP, the bus: a real API process is reached as soon as it announces its port,
    // and a request read before its first dial to the bus is done would be refused (503) by an
    // API that has only just started, which a client cannot tell from an outage; unread, it
    // waits in its connection. Not in the simulated world, where every node starts at time
    // zero: waiting there would reorder the first task polls and so move every simulated
    // answer, for a window (one dial, under a millisecond) that a scenario's arrivals almost
    // never fall in.
    if matches!(me.cfg.net, Net::Tcp) {
        me.bus_up.notified().await;
    }
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
}

/// Answers `Timeout` to every call that waited `timeout`. It wakes once per oldest waiting call
/// (a simulated timer cannot be cancelled, so a timer per call would cost a wake-up per call),
/// and keeps nothing but the calls still waiting.
async fn time_out(
    waiting: Waiting,
    keys: Keyring,
    first_call: Arc<Notify>,
    rec: SharedRecorder,
    timeout: Duration,
) {
    let timeout_us = timeout.as_micros().min(u128::from(u64::MAX)) as u64;
    loop {
        let oldest = lock(&waiting)
            .first_key_value()
            .map(|(_, c)| c.sent_us.saturating_add(timeout_us));
        let Some(due) = oldest else {
            first_call.notified().await;
            continue;
        };
        let now = rec.now_us();
        if due > now {
            tokio::time::sleep(Duration::from_micros(due - now)).await;
            continue;
        }
        loop {
            let expired = {
                let mut w = lock(&waiting);
                match w.first_key_value() {
                    Some((_, c)) if c.sent_us.saturating_add(timeout_us) <= now => w.pop_first(),
                    _ => None,
                }
            };
            match expired {
                // The op was persisted and may still run: a retry under its key is told it
                // timed out, and nothing runs twice.
                Some((_, call)) => give(&keys, &call.client, call.id, Answer::Timeout),
                None => break,
            }
        }
    }
}

impl Shared {
    /// Keeps a publisher connection to the bus, dialling again when it is lost; the calls
    /// waiting when it goes fail (their ops are persisted: the orphan sweeper can find them).
    async fn keep_bus(self: Arc<Self>) {
        let mut backoff = Duration::from_millis(10);
        loop {
            let Ok((link, mut reader)) = self.cfg.net.connect(self.cfg.ip, self.cfg.bus).await
            else {
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(2));
                continue;
            };
            backoff = Duration::from_millis(10);
            link.send(Msg::Hello(BusRole::Publisher));
            *lock(&self.bus) = Some(link);
            self.bus_up.notify_one();
            while let Ok(Some(msg)) = reader.next().await {
                match msg {
                    Msg::Reply(Reply {
                        corr, answer: a, ..
                    }) => answer(&self.waiting, &self.keys, corr, a),
                    // An op of ours expired on the bus unconsumed (`bus-ttl`): cancelled in the
                    // store, and its call (if it still waits) answered so.
                    Msg::Expired { task, corr } => {
                        let why = Cancelled::Expired;
                        let me = self.clone();
                        tokio::spawn(async move {
                            cancel(&me.store, &me.rec, None, &task, why).await;
                            if corr != 0 {
                                let a = Answer::Error(Failure::Cancelled(why));
                                answer(&me.waiting, &me.keys, corr, a);
                            }
                        });
                    }
                    _ => {}
                }
            }
            *lock(&self.bus) = None;
            let lost = std::mem::take(&mut *lock(&self.waiting));
            for (_, call) in lost {
                give(
                    &self.keys,
                    &call.client,
                    call.id,
                    Answer::Error(Failure::Unavailable),
                );
            }
            tokio::time::sleep(backoff).await;
        }
    }

    /// Reads the ring's members every third of a lease (`affinity`).
    async fn watch_members(self: Arc<Self>) {
        let every = (self.cfg.lease_ttl / 3).max(Duration::from_millis(1));
        loop {
            if let Ok(c) = self.store.get().await {
                if let Ok(m) = crate::conductor::ring_members(&c, self.cfg.conductors).await {
                    *lock(&self.members) = m;
                }
            }
            tokio::time::sleep(every).await;
        }
    }

    fn send_bus(&self, msg: Msg) -> bool {
        lock(&self.bus).as_ref().is_some_and(|l| l.send(msg))
    }

    /// A client's request: by its key, answer it again or refuse it, or persist it and go on
    /// in [`Shared::persisted`].
    fn request(self: &Arc<Self>, op: OpSpec, client: &Link) {
        let claim = lock(&self.keys).claim(&op);
        match claim {
            Claim::Fresh => self.fresh(op, client),
            Claim::Replay(answer) => {
                self.rec.record(Event::Deduplicated { op, refused: None });
                client.send(Msg::Answer { id: op.id, answer });
            }
            Claim::Refused(why) => {
                self.rec.record(Event::Deduplicated {
                    op,
                    refused: Some(why),
                });
                client.send(Msg::Answer {
                    id: op.id,
                    answer: Answer::Refused(why),
                });
            }
        }
    }

    /// Refuses a request whose op was not persisted: its key is free again.
    fn refuse(&self, op: OpSpec, client: &Link, answer: Answer) {
        lock(&self.keys).release(op.id);
        client.send(Msg::Answer { id: op.id, answer });
    }

    /// A request under a new key: persist it, then go on in [`Shared::persisted`].
    fn fresh(self: &Arc<Self>, op: OpSpec, client: &Link) {
        let Some(store) = self.store.current() else {
            // The store connection is gone: dial it again for this request (a refused dial
            // fails at once), and refuse (503) if it cannot be reached.
            let (me, client) = (self.clone(), client.clone());
            tokio::spawn(async move {
                match me.store.get().await {
                    Ok(_) if me.store.current().is_some() => me.fresh(op, &client),
                    _ => {
                        me.rec.record(Event::Rejected { op });
                        me.refuse(op, &client, Answer::Unavailable);
                    }
                }
            });
            return;
        };
        let (me, client) = (self.clone(), client.clone());
        store.store_then(
            StoreCmd::Accept {
                op,
                validate: self.cfg.validate_state,
            },
            move |resp| me.persisted(op, &client, resp),
        );
    }

    /// The store's answer to persisting `op`: refuse it, or publish it and answer it now (a
    /// cast) or with the conductor's reply (a call).
    fn persisted(&self, op: OpSpec, client: &Link, resp: Result<StoreResp, Unavailable>) {
        if let Some(answer) = self.publish(op, client, resp) {
            give(&self.keys, client, op.id, answer);
        }
    }

    /// [`Shared::persisted`] once the op is known persisted: publishes it; the answer to give
    /// now, or `None` when it comes with the conductor's reply.
    fn publish(
        &self,
        op: OpSpec,
        client: &Link,
        resp: Result<StoreResp, Unavailable>,
    ) -> Option<Answer> {
        let (seq, host) = match resp {
            Ok(StoreResp::Accepted { seq, host }) => (seq, host),
            Ok(StoreResp::Conflict(status)) => {
                self.rec.record(Event::Rejected { op });
                self.refuse(op, client, Answer::Conflict(status));
                return None;
            }
            // The store holds an open op under this id (another API took the key, or this one
            // before its restart): refused as this API would (recorded as deduplicated, not as a refusal).
            Ok(StoreResp::KeyReused(why)) => {
                self.rec.record(Event::Deduplicated {
                    op,
                    refused: Some(why),
                });
                self.refuse(op, client, Answer::Refused(why));
                return None;
            }
            _ => {
                self.rec.record(Event::Rejected { op });
                self.refuse(op, client, Answer::Unavailable);
                return None;
            }
        };
        self.rec.record(Event::Accepted { op, seq });
        let call = op.kind.is_blocking() || self.cfg.async_rpc == RpcKind::Call;
        let task = Task {
            op,
            seq,
            host,
            call,
            attempt: 1,
        };
        // Only `affinity` reads the ring's members: the other routings take no lock for them.
        let route = if self.cfg.routing == Routing::Affinity {
            let members = lock(&self.members);
            cluster::route(
                self.cfg.routing,
                self.cfg.conductors,
                &members,
                op.container,
                host,
            )
        } else {
            cluster::route(
                self.cfg.routing,
                self.cfg.conductors,
                &[],
                op.container,
                host,
            )
        };
        if !call {
            let sent = self.send_bus(Msg::Publish {
                route,
                task,
                corr: 0,
                delay_us: 0,
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
        let call = Call {
            client: client.clone(),
            id: op.id,
            sent_us: self.rec.now_us(),
        };
        let first = {
            let mut w = lock(&self.waiting);
            w.insert(corr, call);
            w.len() == 1
        };
        if first {
            self.first_call.notify_one();
        }
        if !self.send_bus(Msg::Publish {
            route,
            task,
            corr,
            delay_us: 0,
        }) {
            lock(&self.waiting).remove(&corr);
            return Some(Answer::Error(Failure::Unavailable));
        }
        None
    }
}
