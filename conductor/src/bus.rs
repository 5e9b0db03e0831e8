//! The message bus (RabbitMQ under oslo.messaging): a shared topic consumed round-robin and one
//! queue per conductor. A conductor holds what it was delivered unacknowledged in its backlog, up
//! to `prefetch` messages (0 = unlimited), and acknowledges a message when an RPC slot takes it.
//! A conductor that goes away gets its unacknowledged messages redelivered; what it acknowledged
//! dies with it. Per-conductor queues wait for their conductor. The bus keeps everything in
//! memory: killing it loses every queued message.

use crate::cancel::Deadline;
use crate::net::Link;
use crate::net::Listener;
use crate::proto::{BusRole, Msg, Refusal, Reply, Route, Task};
use crate::recorder::Clock;
use crate::rpc::lock;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::{Arc, Mutex};

/// Bus settings.
#[derive(Clone)]
pub struct BusConfig {
    /// Unacknowledged deliveries a conductor may hold (0 = unlimited).
    pub prefetch: u32,
    /// The services' clock (µs), which ops' bus deadlines are on: the run's clock under
    /// simulation, [`wall_clock_us`](crate::recorder::wall_clock_us) for real.
    pub clock: Clock,
}

#[derive(Debug, Clone, Copy)]
struct Queued {
    tag: u64,
    task: Task,
    corr: u64,
    reply_to: u64,
    route: Route,
}

struct Consumer {
    link: Link,
    conn: u64,
    unacked: BTreeMap<u64, Queued>,
    /// Deliveries on this connection so far.
    delivered: u64,
    /// Acknowledgements of them so far.
    acked: u64,
}

impl Consumer {
    fn new(link: Link, conn: u64) -> Self {
        Consumer {
            link,
            conn,
            unacked: BTreeMap::new(),
            delivered: 0,
            acked: 0,
        }
    }

    /// Every delivery on this connection is acknowledged once or still unacknowledged: the
    /// unacknowledged set holds only what was delivered here, and no tag is acknowledged twice.
    fn check(&self) {
        debug_assert_eq!(
            self.acked + self.unacked.len() as u64,
            self.delivered,
            "consumer connection {}: {} delivered, {} acked, {} unacked",
            self.conn,
            self.delivered,
            self.acked,
            self.unacked.len()
        );
    }
}

#[derive(Default)]
struct State {
    next_tag: u64,
    next_conn: u64,
    topic: VecDeque<Queued>,
    /// Per-conductor queues, created on first use; they outlive their consumer.
    queues: BTreeMap<u32, VecDeque<Queued>>,
    /// The per-conductor queues that may hold something (every one that does; one emptied
    /// since is dropped at the next dispatch): what a dispatch visits, so that the cost of a
    /// message does not grow with the number of conductors.
    filled: BTreeSet<u32>,
    /// Live consumers by conductor index.
    consumers: BTreeMap<u32, Consumer>,
    /// Round-robin cursor over consumers (the index last served).
    cursor: Option<u32>,
    publishers: BTreeMap<u64, Link>,
}

impl State {
    fn window_open(c: &Consumer, prefetch: u32) -> bool {
        prefetch == 0 || c.unacked.len() < prefetch as usize
    }

    fn deliver(c: &mut Consumer, q: Queued) {
        c.link.send(Msg::Deliver {
            tag: q.tag,
            task: q.task,
            corr: q.corr,
            reply_to: q.reply_to,
        });
        let fresh = c.unacked.insert(q.tag, q).is_none();
        // A tag names one publication: a consumer holds it at most once, and a message goes
        // back to a queue only when its consumer has gone.
        debug_assert!(fresh, "tag {} delivered twice to one consumer", q.tag);
        c.delivered += 1;
        c.check();
    }

    /// Moves whatever can move from the queues to consumers with room; a message about to be
    /// delivered past its bus deadline is dead-lettered instead ([`State::dead_letter`]).
    fn dispatch(&mut self, prefetch: u32, clock: &Clock) {
        // Only queues holding something are visited: the cost of a message does not grow with
        // the number of conductors. They are visited in index order, as the map would be.
        let mut dead = Vec::new();
        let mut emptied = Vec::new();
        for &idx in &self.filled {
            let Some(q) = self.queues.get_mut(&idx).filter(|q| !q.is_empty()) else {
                emptied.push(idx);
                continue;
            };
            if let Some(c) = self.consumers.get_mut(&idx) {
                while Self::window_open(c, prefetch) {
                    let Some(m) = q.pop_front() else { break };
                    if expired(&m, clock) {
                        dead.push(m);
                        continue;
                    }
                    Self::deliver(c, m);
                }
            }
            if q.is_empty() {
                emptied.push(idx);
            }
        }
        for idx in emptied {
            self.filled.remove(&idx);
        }
        while !self.topic.is_empty() {
            let Some(idx) = self.next_consumer(prefetch) else {
                break;
            };
            let m = self.topic.pop_front().expect("checked non-empty");
            if expired(&m, clock) {
                dead.push(m);
                continue;
            }
            if let Some(c) = self.consumers.get_mut(&idx) {
                Self::deliver(c, m);
            }
            self.cursor = Some(idx);
        }
        for m in dead {
            self.dead_letter(m);
        }
        // The prefetch window: no consumer holds more unacknowledged deliveries than it allows.
        debug_assert!(
            prefetch == 0
                || self
                    .consumers
                    .values()
                    .all(|c| c.unacked.len() <= prefetch as usize),
            "a consumer holds more than {prefetch} unacknowledged deliveries"
        );
    }

    /// Queues a published message where its route says, and moves what can move.
    fn enqueue(&mut self, q: Queued, prefetch: u32, clock: &Clock) {
        match q.route {
            Route::Topic => self.topic.push_back(q),
            Route::Conductor(i) => {
                self.queues.entry(i).or_default().push_back(q);
                self.filled.insert(i);
            }
        }
        self.dispatch(prefetch, clock);
    }

    /// Whether the message of `tag` still waits in a queue (not delivered, not dropped).
    fn queued(&self, tag: u64) -> bool {
        self.topic.iter().any(|q| q.tag == tag)
            || self.queues.values().flatten().any(|q| q.tag == tag)
    }

    /// Drops every message at the head of a queue whose bus deadline has passed, as RabbitMQ
    /// discards expired messages when they reach the head of their queue; each is
    /// dead-lettered.
    fn expire_heads(&mut self, clock: &Clock) {
        let mut dead = Vec::new();
        for q in std::iter::once(&mut self.topic).chain(self.queues.values_mut()) {
            while q.front().is_some_and(|m| expired(m, clock)) {
                dead.extend(q.pop_front());
            }
        }
        for m in dead {
            self.dead_letter(m);
        }
    }

    /// An expired message goes back to whoever published it (RabbitMQ's dead-letter exchange,
    /// routed to the publisher), which cancels its op in the store; lost if the publisher has
    /// gone (the op's record stays accepted: the orphan sweeper's to find).
    fn dead_letter(&mut self, m: Queued) {
        let msg = Msg::Expired {
            task: m.task,
            corr: m.corr,
        };
        if let Some(p) = self.publishers.get(&m.reply_to) {
            p.send(msg);
        } else if let Some(c) = self.consumers.values().find(|c| c.conn == m.reply_to) {
            c.link.send(msg);
        }
    }

    /// Routes a call's answer to its publisher, if it is still connected.
    fn forward(&self, r: Reply) {
        if let Some(p) = self.publishers.get(&r.reply_to) {
            p.send(Msg::Reply(r));
        }
    }

    /// The next consumer after the cursor, in index order, with an open window.
    fn next_consumer(&self, prefetch: u32) -> Option<u32> {
        let after = self.cursor.map_or(0, |c| c.saturating_add(1));
        self.consumers
            .range(after..)
            .chain(self.consumers.range(..after))
            .find(|(_, c)| Self::window_open(c, prefetch))
            .map(|(i, _)| *i)
    }
}

/// Whether `m` is past its bus deadline (`bus-ttl`): the clock is read only for such messages.
fn expired(m: &Queued, clock: &Clock) -> bool {
    m.task.op.deadline.is_some_and(|d| match d {
        Deadline::Bus(_) => d.expired_on_bus(clock()),
        Deadline::Conductor(_) => false,
    })
}

/// Serves the bus on `listener` until the task is dropped; its queues die with it.
pub async fn serve(mut listener: Listener, cfg: BusConfig) {
    let state = Arc::new(Mutex::new(State::default()));
    while let Ok((link, mut reader)) = listener.accept().await {
        let state = state.clone();
        let cfg = cfg.clone();
        tokio::spawn(async move {
            let Ok(Some(Msg::Hello(role))) = reader.next().await else {
                return;
            };
            let conn = {
                let mut st = lock(&state);
                st.next_conn += 1;
                let conn = st.next_conn;
                match role {
                    BusRole::Publisher => {
                        st.publishers.insert(conn, link.clone());
                    }
                    BusRole::Consumer { index } => {
                        // Like RabbitMQ's exclusive consumer, a second consumer of a live
                        // conductor's index is refused: the first keeps its deliveries (a
                        // silent takeover would strand what the first holds, and two live
                        // owners of one index break restart recovery, which claims ops by it).
                        if let Some(live) = st.consumers.get(&index).filter(|c| !c.link.is_closed())
                        {
                            let live = live.conn;
                            drop(st);
                            crate::net::warn(format_args!(
                                "bus: refused a second consumer with index {index} (connection \
                                 {conn}): connection {live} holds it"
                            ));
                            link.send(Msg::Refused(Refusal::ConsumerIndexTaken { index }));
                            return;
                        }
                        // A reconnecting conductor whose old connection failed replaces it;
                        // what the old one held unacknowledged is redelivered.
                        let old = st
                            .consumers
                            .insert(index, Consumer::new(link.clone(), conn));
                        if let Some(old) = old {
                            requeue(&mut st, old);
                        }
                        st.dispatch(cfg.prefetch, &cfg.clock);
                    }
                }
                conn
            };
            while let Ok(Some(msg)) = reader.next().await {
                let mut st = lock(&state);
                match msg {
                    Msg::Publish {
                        route,
                        task,
                        corr,
                        delay_us,
                    } => {
                        st.next_tag += 1;
                        let q = Queued {
                            tag: st.next_tag,
                            task,
                            corr,
                            reply_to: conn,
                            route,
                        };
                        if delay_us == 0 {
                            st.enqueue(q, cfg.prefetch, &cfg.clock);
                            expire_later(&state, &st, q, &cfg.clock);
                        } else {
                            // A not-before time (RabbitMQ's delayed exchange): held by the bus,
                            // and lost with it like everything it holds.
                            let (state, clock) = (state.clone(), cfg.clock.clone());
                            tokio::spawn(async move {
                                tokio::time::sleep(std::time::Duration::from_micros(delay_us))
                                    .await;
                                let mut st = lock(&state);
                                st.enqueue(q, cfg.prefetch, &clock);
                                expire_later(&state, &st, q, &clock);
                            });
                        }
                    }
                    Msg::Ack { tag, reply } => {
                        if let BusRole::Consumer { index } = role {
                            // Only this connection's deliveries: a departed connection's were
                            // put back when it went, whatever it acknowledged late.
                            if let Some(c) = st.consumers.get_mut(&index).filter(|c| c.conn == conn)
                            {
                                // The conductor acknowledges each delivery once, when an RPC
                                // slot takes it, on the connection it came by.
                                let acked = c.unacked.remove(&tag).is_some();
                                debug_assert!(acked, "tag {tag} acknowledged twice or undelivered");
                                c.acked += u64::from(acked);
                                c.check();
                                // An acknowledgement opens a prefetch window; without one
                                // (prefetch 0) nothing waits for a window, so there is nothing
                                // to move.
                                if acked && cfg.prefetch != 0 {
                                    st.dispatch(cfg.prefetch, &cfg.clock);
                                }
                            }
                        }
                        if let Some(r) = reply {
                            st.forward(r);
                        }
                    }
                    Msg::Reply(r) => st.forward(r),
                    _ => {}
                }
            }
            let mut st = lock(&state);
            match role {
                BusRole::Publisher => {
                    st.publishers.remove(&conn);
                }
                BusRole::Consumer { index } => {
                    if st.consumers.get(&index).is_some_and(|c| c.conn == conn) {
                        if let Some(old) = st.consumers.remove(&index) {
                            requeue(&mut st, old);
                        }
                        st.dispatch(cfg.prefetch, &cfg.clock);
                    }
                }
            }
        });
    }
}

/// A message with a bus deadline that is still queued after its publication: a timer at its
/// deadline drops the expired heads then, so an expired message is dead-lettered in time even
/// when no consumer comes for it. Messages without one cost nothing.
fn expire_later(state: &Arc<Mutex<State>>, st: &State, q: Queued, clock: &Clock) {
    let Some(Deadline::Bus(at)) = q.task.op.deadline else {
        return;
    };
    if !st.queued(q.tag) {
        return;
    }
    let (state, clock) = (state.clone(), clock.clone());
    let wait = at.saturating_sub(clock());
    tokio::spawn(async move {
        tokio::time::sleep(std::time::Duration::from_micros(wait)).await;
        lock(&state).expire_heads(&clock);
    });
}

/// Puts a departed consumer's unacknowledged deliveries back at the front of where they came
/// from, in their original order.
fn requeue(st: &mut State, old: Consumer) {
    for (_, q) in old.unacked.into_iter().rev() {
        match q.route {
            Route::Topic => st.topic.push_front(q),
            Route::Conductor(i) => {
                st.queues.entry(i).or_default().push_front(q);
                st.filled.insert(i);
            }
        }
    }
}
