//! An in-memory network of message links, driven by tokio's clock: under madsim that clock is
//! simulated, so this is the simulator's wire.
//!
//! Why not madsim's TcpStream: it costs several thousand instructions per message (SipHash table
//! look-ups, a boxed timer, an async stream, byte framing), and a container op crosses the
//! network a dozen times. Here a message is moved, not encoded, and costs one timer. Semantics
//! follow madsim's TCP, which the design builds on:
//! - a link is reliable and ordered; each message takes a latency drawn uniformly from
//!   `[min, max)` and never overtakes the one before it;
//! - `loss` does not drop messages: a lost transmission is retried after a backoff that starts at
//!   1 ms and doubles up to 10 s (TCP retransmission), delaying the stream;
//! - a clogged link holds what is sent on it until it is unclogged (then it goes out with a fresh
//!   latency); what was already in flight still arrives;
//! - connecting across a clog, or to an address nobody listens on, fails at once
//!   (`ConnectionRefused`);
//! - when one end of a link is dropped (its process died), the other end reads what was already
//!   sent and then end-of-stream; sending to a dropped end fails.
//!
//! Randomness: each pipe (one direction of a link) draws its latencies from its own generator,
//! seeded by (run seed, from, to, the how-many-th pipe between that pair). Traffic on other
//! connections — a reconciler, membership heartbeats — then cannot reshuffle the latencies of
//! an op's own connections: two configurations run with one seed see the same network where
//! their traffic is the same (common random numbers).

use crate::proto::Msg;
use crate::retry::{splitmix64, GOLDEN_GAMMA};
use crate::rpc::lock;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::future::poll_fn;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::task::{Poll, Waker};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// The first retransmission backoff after a loss.
const FIRST_BACKOFF: Duration = Duration::from_millis(1);
/// The largest retransmission backoff.
const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// Link settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MemNetConfig {
    /// Smallest one-way latency.
    pub latency_min: Duration,
    /// Largest one-way latency (exclusive; `min` when equal).
    pub latency_max: Duration,
    /// Probability that a transmission is lost and must be retried.
    pub loss: f64,
}

/// A source of the current time. Under madsim, `Instant::now()` goes through an intercepted
/// `clock_gettime`, which costs more than the rest of a message; the simulator hands in its
/// runtime's clock instead.
pub type Clock = Arc<dyn Fn() -> Instant + Send + Sync>;

/// Wakes a task at a given time (at once if it has passed). A message costs one timer and one
/// wake-up of its reader: the sender arms the reader's timer rather than waking the reader to arm
/// it itself. The waker is lent: a timer that keeps it clones it once.
pub type Timer = Arc<dyn Fn(Instant, &Waker) + Send + Sync>;

/// A [`Timer`] from tokio: a small task per wake-up (for real time, where timers are cheap).
pub fn task_timer() -> Timer {
    Arc::new(|at, waker: &Waker| {
        let waker = waker.clone();
        tokio::spawn(async move {
            tokio::time::sleep_until(at).await;
            waker.wake();
        });
    })
}

/// The system's clock (`tokio::time::Instant::now`).
pub fn system_clock() -> Clock {
    Arc::new(Instant::now)
}

/// The network: listeners, link state and the latency generator. Cheap to clone.
#[derive(Clone)]
pub struct MemNet {
    inner: Arc<Mutex<NetState>>,
    clock: Clock,
    timer: Timer,
    /// What a send needs to know without locking the network.
    flags: Arc<NetFlags>,
}

/// The part of the network's state that every message consults, readable without the
/// network's lock: a message on an open link (the common case) then locks its pipe only.
struct NetFlags {
    /// Whether any clog is set: only then must a send look at the clogs (under the lock).
    clogs: AtomicBool,
    /// Bumped by [`MemNet::set_config`]: a pipe whose copy of the settings is older reads
    /// them again.
    epoch: AtomicU64,
    /// Messages delivered by pipes that are gone (the live ones count their own).
    retired: AtomicU64,
}

type Accepted = (MemLink, MemReader);

struct NetState {
    cfg: MemNetConfig,
    /// The run's seed, part of every pipe's key.
    seed: u64,
    /// Pipes opened so far per (from, to): the last part of a new pipe's key.
    pipes: BTreeMap<(IpAddr, IpAddr), u64>,
    listeners: BTreeMap<SocketAddr, mpsc::UnboundedSender<Accepted>>,
    clogged_out: BTreeSet<IpAddr>,
    clogged_in: BTreeSet<IpAddr>,
    clogged_links: BTreeSet<(IpAddr, IpAddr)>,
    /// Pipes holding messages sent while their link was clogged.
    held: Vec<Weak<Mutex<Pipe>>>,
    /// Every pipe still alive, for the count of deliveries (pruned as it grows).
    pipes_alive: Vec<Weak<Mutex<Pipe>>>,
}

impl NetState {
    /// Whether any clog is set.
    fn any_clog(&self) -> bool {
        !(self.clogged_out.is_empty()
            && self.clogged_in.is_empty()
            && self.clogged_links.is_empty())
    }

    fn clogged(&self, from: IpAddr, to: IpAddr) -> bool {
        (!self.clogged_out.is_empty() && self.clogged_out.contains(&from))
            || (!self.clogged_in.is_empty() && self.clogged_in.contains(&to))
            || (!self.clogged_links.is_empty() && self.clogged_links.contains(&(from, to)))
    }

    /// The seed of the next pipe from `from` to `to`.
    fn pipe_seed(&mut self, from: IpAddr, to: IpAddr) -> u64 {
        let n = self.pipes.entry((from, to)).or_insert(0);
        let k = *n;
        *n += 1;
        let mut h = splitmix64(self.seed ^ 0x6E65_7477_6F72_6B00);
        for part in [ip_bits(from), ip_bits(to), k] {
            h = splitmix64(h ^ part);
        }
        h
    }
}

/// An address as 64 bits for hashing (IPv6 folded).
fn ip_bits(ip: IpAddr) -> u64 {
    match ip {
        IpAddr::V4(a) => u64::from(u32::from(a)),
        IpAddr::V6(a) => {
            let v = u128::from(a);
            (v as u64) ^ ((v >> 64) as u64).rotate_left(32)
        }
    }
}

/// A pipe's latency generator: SplitMix64, small, fast, and enough for latencies.
struct PipeRng(u64);

impl PipeRng {
    fn next_u64(&mut self) -> u64 {
        // The state steps by the golden gamma and each step is finalised: splitmix64 of the
        // state before the step.
        let z = splitmix64(self.0);
        self.0 = self.0.wrapping_add(GOLDEN_GAMMA);
        z
    }

    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// One message's delay under `cfg`: retransmissions after losses, then the latency.
    fn delay(&mut self, cfg: &MemNetConfig) -> Duration {
        let mut extra = Duration::ZERO;
        if cfg.loss > 0.0 {
            // The number of lost transmissions is geometric: drawn at once, not one loss at a
            // time (a loss near 1 would otherwise spin), and their backoffs summed in closed form.
            let u = 1.0 - self.unit();
            let losses = (u.ln() / cfg.loss.ln()).floor();
            extra = retransmission_delay(if losses.is_finite() { losses } else { f64::MAX });
        }
        let (lo, hi) = (
            cfg.latency_min.as_nanos() as u64,
            cfg.latency_max.as_nanos() as u64,
        );
        let span = hi.saturating_sub(lo);
        let lat = if span == 0 {
            lo
        } else {
            lo + self.next_u64() % span
        };
        extra + Duration::from_nanos(lat)
    }
}

/// The total backoff of `losses` retransmissions: 1 ms, doubling, capped at 10 s each; at most
/// a year, so that the clock cannot overflow (a link that lossy is down for the run).
fn retransmission_delay(losses: f64) -> Duration {
    let first = FIRST_BACKOFF.as_secs_f64();
    let cap = MAX_BACKOFF.as_secs_f64();
    // Backoffs double while below the cap: 1, 2, 4 … ms, then the cap for the rest.
    let doubling = (cap / first).log2().ceil();
    let secs = if losses <= doubling {
        first * (2f64.powf(losses) - 1.0)
    } else {
        first * (2f64.powf(doubling) - 1.0) + (losses - doubling) * cap
    };
    Duration::from_secs_f64(secs.clamp(0.0, 365.0 * 86_400.0))
}

/// One direction of a link.
struct Pipe {
    from: IpAddr,
    to: IpAddr,
    queue: VecDeque<(Instant, Msg)>,
    /// Sent while the link was clogged, waiting for it to open.
    held: VecDeque<Msg>,
    last_arrival: Option<Instant>,
    /// This pipe's own latency generator.
    rng: PipeRng,
    /// The reader's waker, while it waits.
    waker: Option<Waker>,
    /// The arrival time a wake-up is armed for.
    armed: Option<Instant>,
    timer: Timer,
    senders_alive: bool,
    receiver_alive: bool,
    /// The link settings as of `epoch` ([`NetFlags::epoch`]).
    cfg: MemNetConfig,
    epoch: u64,
    /// Messages this pipe delivered (counted under its lock: no shared counter per message).
    delivered: u64,
    /// Where the count goes when the pipe is dropped.
    flags: Arc<NetFlags>,
}

impl Drop for Pipe {
    fn drop(&mut self) {
        self.flags
            .retired
            .fetch_add(self.delivered, Ordering::Relaxed);
    }
}

impl Pipe {
    fn new(
        net: &MemNet,
        st: &mut NetState,
        from: IpAddr,
        to: IpAddr,
        seed: u64,
    ) -> Arc<Mutex<Pipe>> {
        let pipe = Arc::new(Mutex::new(Pipe {
            from,
            to,
            queue: VecDeque::new(),
            held: VecDeque::new(),
            last_arrival: None,
            rng: PipeRng(seed),
            waker: None,
            armed: None,
            timer: net.timer.clone(),
            senders_alive: true,
            receiver_alive: true,
            cfg: st.cfg,
            epoch: net.flags.epoch.load(Ordering::Relaxed),
            delivered: 0,
            flags: net.flags.clone(),
        }));
        // Pruned when the list doubles: connections come and go with faults, the cost stays
        // proportional to the connections made.
        if st.pipes_alive.len() == st.pipes_alive.capacity() {
            st.pipes_alive.retain(|w| w.strong_count() > 0);
        }
        st.pipes_alive.push(Arc::downgrade(&pipe));
        pipe
    }

    /// Records the reader's waker; a different waker needs its wake-up armed again.
    fn register(&mut self, waker: &Waker) {
        if !self.waker.as_ref().is_some_and(|w| w.will_wake(waker)) {
            self.waker = Some(waker.clone());
            self.armed = None;
        }
    }

    /// Makes sure the waiting reader wakes when the message due at `at` arrives.
    fn arm(&mut self, at: Instant) {
        if self.armed == Some(at) {
            return;
        }
        if let Some(w) = &self.waker {
            (self.timer)(at, w);
            self.armed = Some(at);
        }
    }

    /// Queues `msg` to arrive after `delay`, behind whatever is ahead of it.
    fn enqueue(&mut self, now: Instant, delay: Duration, msg: Msg) {
        let mut at = now + delay;
        if let Some(last) = self.last_arrival {
            at = at.max(last);
        }
        self.last_arrival = Some(at);
        self.queue.push_back((at, msg));
        if self.queue.len() == 1 {
            self.arm(at);
        }
    }
}

impl MemNet {
    /// A network with these link settings, its latencies drawn from `seed`, its time read
    /// from `clock` and kept by `timer`.
    pub fn new(cfg: MemNetConfig, seed: u64, clock: Clock, timer: Timer) -> Self {
        MemNet {
            clock,
            timer,
            flags: Arc::new(NetFlags {
                clogs: AtomicBool::new(false),
                epoch: AtomicU64::new(0),
                retired: AtomicU64::new(0),
            }),
            inner: Arc::new(Mutex::new(NetState {
                cfg,
                seed,
                pipes: BTreeMap::new(),
                listeners: BTreeMap::new(),
                clogged_out: BTreeSet::new(),
                clogged_in: BTreeSet::new(),
                clogged_links: BTreeSet::new(),
                held: Vec::new(),
                pipes_alive: Vec::new(),
            })),
        }
    }

    /// Messages delivered so far.
    pub fn messages(&self) -> u64 {
        let st = lock(&self.inner);
        // A pipe that is gone has added its count to `retired`, and one that upgrades cannot go
        // while it is read: never counted twice. (One being dropped on another thread at this
        // very moment may be missed by this reading; the simulator runs on one thread.)
        let live: u64 = st
            .pipes_alive
            .iter()
            .filter_map(Weak::upgrade)
            .map(|p| lock(&p).delivered)
            .sum();
        live + self.flags.retired.load(Ordering::Relaxed)
    }

    /// Changes the link settings from now on.
    pub fn set_config(&self, cfg: MemNetConfig) {
        let mut st = lock(&self.inner);
        st.cfg = cfg;
        self.flags.epoch.fetch_add(1, Ordering::Relaxed);
    }

    /// The link settings.
    pub fn config(&self) -> MemNetConfig {
        lock(&self.inner).cfg
    }

    /// Starts listening on `addr`.
    pub fn bind(&self, addr: SocketAddr) -> io::Result<MemListener> {
        let mut st = lock(&self.inner);
        if st.listeners.get(&addr).is_some_and(|l| !l.is_closed()) {
            return Err(io::Error::new(
                io::ErrorKind::AddrInUse,
                format!("address already in use: {addr}"),
            ));
        }
        let (tx, rx) = mpsc::unbounded_channel();
        st.listeners.insert(addr, tx);
        Ok(MemListener {
            addr,
            rx,
            net: Arc::downgrade(&self.inner),
        })
    }

    /// Connects from the node at `from` to the listener at `to`.
    pub fn connect(&self, from: IpAddr, to: SocketAddr) -> io::Result<(MemLink, MemReader)> {
        let mut st = lock(&self.inner);
        let refused = || io::Error::new(io::ErrorKind::ConnectionRefused, "connection refused");
        if st.clogged(from, to.ip()) || st.clogged(to.ip(), from) {
            return Err(refused());
        }
        if st.listeners.get(&to).is_none_or(|l| l.is_closed()) {
            return Err(refused());
        }
        let (up_seed, down_seed) = (st.pipe_seed(from, to.ip()), st.pipe_seed(to.ip(), from));
        let up = Pipe::new(self, &mut st, from, to.ip(), up_seed);
        let down = Pipe::new(self, &mut st, to.ip(), from, down_seed);
        let server = (MemLink::new(self, &down), MemReader::new(self, up.clone()));
        let sent = st.listeners.get(&to).map(|l| l.send(server).is_ok());
        if sent != Some(true) {
            st.listeners.remove(&to);
            return Err(refused());
        }
        Ok((MemLink::new(self, &up), MemReader::new(self, down)))
    }

    /// Closes every listener of the node at `ip` at once (its process was killed): madsim drops
    /// a killed node's tasks — and the listeners they own — only as its scheduler reaches them,
    /// and a connect in between would be accepted by a dead process.
    pub fn close_listeners(&self, ip: IpAddr) {
        let mut st = lock(&self.inner);
        st.listeners.retain(|addr, _| addr.ip() != ip);
    }

    /// Whether a message sent now from `from` to `to` would go out (no clog holds it): for
    /// models that reason about connectivity without sending (the simulated etcd's quorum).
    pub fn reachable(&self, from: IpAddr, to: IpAddr) -> bool {
        !lock(&self.inner).clogged(from, to)
    }

    /// Whether something listens on `addr` (a killed node's listeners are closed at once).
    pub fn is_listening(&self, addr: SocketAddr) -> bool {
        lock(&self.inner)
            .listeners
            .get(&addr)
            .is_some_and(|l| !l.is_closed())
    }

    /// Holds everything `node` sends (`out`) and/or receives (`in_`) until unclogged.
    pub fn clog_node(&self, node: IpAddr, in_: bool, out: bool) {
        let mut st = lock(&self.inner);
        if in_ {
            st.clogged_in.insert(node);
        }
        if out {
            st.clogged_out.insert(node);
        }
        self.flags.clogs.store(st.any_clog(), Ordering::Relaxed);
    }

    /// Opens what [`MemNet::clog_node`] closed.
    pub fn unclog_node(&self, node: IpAddr, in_: bool, out: bool) {
        let mut st = lock(&self.inner);
        if in_ {
            st.clogged_in.remove(&node);
        }
        if out {
            st.clogged_out.remove(&node);
        }
        self.flags.clogs.store(st.any_clog(), Ordering::Relaxed);
        self.release(&mut st);
    }

    /// Holds everything sent from `from` to `to`.
    pub fn clog_link(&self, from: IpAddr, to: IpAddr) {
        let mut st = lock(&self.inner);
        st.clogged_links.insert((from, to));
        self.flags.clogs.store(true, Ordering::Relaxed);
    }

    /// Opens the link from `from` to `to`.
    pub fn unclog_link(&self, from: IpAddr, to: IpAddr) {
        let mut st = lock(&self.inner);
        st.clogged_links.remove(&(from, to));
        self.flags.clogs.store(st.any_clog(), Ordering::Relaxed);
        self.release(&mut st);
    }

    /// Sends out what waited on links that are open again.
    fn release(&self, st: &mut NetState) {
        let now = (self.clock)();
        let held = std::mem::take(&mut st.held);
        for weak in held {
            let Some(pipe) = weak.upgrade() else { continue };
            let mut p = lock(&pipe);
            if st.clogged(p.from, p.to) {
                drop(p);
                st.held.push(weak);
                continue;
            }
            while let Some(msg) = p.held.pop_front() {
                let cfg = st.cfg;
                let d = p.rng.delay(&cfg);
                p.enqueue(now, d, msg);
            }
        }
    }
}

/// A listening address of the in-memory network; dropping it stops accepting.
pub struct MemListener {
    addr: SocketAddr,
    rx: mpsc::UnboundedReceiver<Accepted>,
    net: Weak<Mutex<NetState>>,
}

impl MemListener {
    /// The next incoming link; `None` once the network is gone.
    pub async fn accept(&mut self) -> Option<Accepted> {
        self.rx.recv().await
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for MemListener {
    fn drop(&mut self) {
        self.rx.close();
        if let Some(net) = self.net.upgrade() {
            let mut st = lock(&net);
            // A listener bound again since has an open channel of its own: leave it.
            if st.listeners.get(&self.addr).is_some_and(|l| l.is_closed()) {
                st.listeners.remove(&self.addr);
            }
        }
    }
}

/// The sending end of a link; clones share it. When the last clone is dropped the peer reads
/// end-of-stream after what was sent.
#[derive(Clone)]
pub struct MemLink {
    end: Arc<SendEnd>,
}

struct SendEnd {
    net: Weak<Mutex<NetState>>,
    flags: Arc<NetFlags>,
    clock: Clock,
    pipe: Arc<Mutex<Pipe>>,
}

impl Drop for SendEnd {
    fn drop(&mut self) {
        let mut p = lock(&self.pipe);
        p.senders_alive = false;
        // With messages still queued the reader's armed wake-up comes; it sees the end after.
        if p.queue.is_empty() {
            if let Some(w) = p.waker.take() {
                w.wake();
            }
        }
    }
}

impl MemLink {
    fn new(net: &MemNet, pipe: &Arc<Mutex<Pipe>>) -> Self {
        MemLink {
            end: Arc::new(SendEnd {
                net: Arc::downgrade(&net.inner),
                flags: net.flags.clone(),
                clock: net.clock.clone(),
                pipe: pipe.clone(),
            }),
        }
    }

    /// Sends `msg`; false if the peer is gone.
    pub fn send(&self, msg: Msg) -> bool {
        // The network's lock only when a clog is set or the settings changed (the lock order,
        // network then pipe, is the same on both paths).
        if self.end.flags.clogs.load(Ordering::Relaxed) {
            return self.send_locked(msg);
        }
        if self.end.net.strong_count() == 0 {
            return false;
        }
        let mut p = lock(&self.end.pipe);
        if !p.receiver_alive {
            return false;
        }
        if !p.held.is_empty() || p.epoch != self.end.flags.epoch.load(Ordering::Relaxed) {
            drop(p);
            return self.send_locked(msg);
        }
        let cfg = p.cfg;
        let d = p.rng.delay(&cfg);
        p.enqueue((self.end.clock)(), d, msg);
        true
    }

    /// [`MemLink::send`] under the network's lock: clogs to look at, or settings to refresh.
    fn send_locked(&self, msg: Msg) -> bool {
        let Some(net) = self.end.net.upgrade() else {
            return false;
        };
        let mut st = lock(&net);
        let mut p = lock(&self.end.pipe);
        if !p.receiver_alive {
            return false;
        }
        p.cfg = st.cfg;
        p.epoch = self.end.flags.epoch.load(Ordering::Relaxed);
        if !p.held.is_empty() || st.clogged(p.from, p.to) {
            if p.held.is_empty() {
                st.held.push(Arc::downgrade(&self.end.pipe));
            }
            p.held.push_back(msg);
            return true;
        }
        let d = p.rng.delay(&st.cfg);
        drop(st);
        p.enqueue((self.end.clock)(), d, msg);
        true
    }

    /// Whether the peer is gone.
    pub fn is_closed(&self) -> bool {
        !lock(&self.end.pipe).receiver_alive
    }
}

/// The receiving end of a link.
pub struct MemReader {
    pipe: Arc<Mutex<Pipe>>,
    clock: Clock,
}

impl MemReader {
    fn new(net: &MemNet, pipe: Arc<Mutex<Pipe>>) -> Self {
        MemReader {
            pipe,
            clock: net.clock.clone(),
        }
    }

    /// The next message, when it arrives; `None` at end-of-stream.
    pub async fn next(&mut self) -> Option<Msg> {
        poll_fn(|cx| {
            let mut p = lock(&self.pipe);
            match p.queue.front() {
                Some(&(at, _)) if at <= (self.clock)() => {
                    let (_, msg) = p.queue.pop_front().expect("the front exists");
                    p.delivered += 1;
                    Poll::Ready(Some(msg))
                }
                Some(&(at, _)) => {
                    p.register(cx.waker());
                    p.arm(at);
                    Poll::Pending
                }
                None if !p.senders_alive => Poll::Ready(None),
                None => {
                    p.register(cx.waker());
                    // Nothing to wait for yet: the next message arms the wake-up.
                    p.armed = None;
                    Poll::Pending
                }
            }
        })
        .await
    }
}

impl Drop for MemReader {
    fn drop(&mut self) {
        let mut p = lock(&self.pipe);
        p.receiver_alive = false;
        p.queue.clear();
        p.held.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::Msg;
    use std::net::Ipv4Addr;

    fn ip(n: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(10, 0, 0, n))
    }

    fn net(min_ms: u64, max_ms: u64) -> MemNet {
        MemNet::new(
            MemNetConfig {
                latency_min: Duration::from_millis(min_ms),
                latency_max: Duration::from_millis(max_ms),
                loss: 0.0,
            },
            7,
            system_clock(),
            task_timer(),
        )
    }

    fn ack(tag: u64) -> Msg {
        Msg::Ack { tag, reply: None }
    }

    #[tokio::test]
    async fn ordered_delayed_and_closed() {
        let net = net(2, 5);
        let addr = SocketAddr::new(ip(1), 7000);
        let mut listener = net.bind(addr).unwrap();
        assert!(net.bind(addr).is_err(), "a second bind must fail");
        let (link, mut reader) = net.connect(ip(2), addr).unwrap();
        let (back, mut server) = listener.accept().await.unwrap();
        let t0 = Instant::now();
        for tag in 0..100 {
            assert!(link.send(ack(tag)));
        }
        for tag in 0..100 {
            assert_eq!(server.next().await, Some(ack(tag)), "FIFO order");
        }
        let took = t0.elapsed();
        assert!(
            took >= Duration::from_millis(2) && took < Duration::from_millis(50),
            "{took:?}"
        );
        assert_eq!(net.messages(), 100);
        // The sender goes away: the reader sees the end of the stream.
        drop(link);
        assert_eq!(server.next().await, None);
        // The client's reader goes away: sending to it fails.
        assert!(back.send(ack(0)));
        assert_eq!(reader.next().await, Some(ack(0)));
        drop(reader);
        assert!(!back.send(ack(1)));
        assert!(back.is_closed());
    }

    #[test]
    fn retransmission_delay_matches_the_doubling_backoff() {
        let mut backoff = FIRST_BACKOFF;
        let mut total = Duration::ZERO;
        for losses in 0..40u32 {
            let got = retransmission_delay(f64::from(losses));
            assert!(
                got.abs_diff(total) < Duration::from_micros(1),
                "{losses}: {got:?} vs {total:?}"
            );
            total += backoff;
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
        assert_eq!(
            retransmission_delay(f64::MAX),
            Duration::from_secs(365 * 86_400)
        );
    }

    #[tokio::test]
    async fn refused_and_clogged() {
        let net = net(1, 2);
        let addr = SocketAddr::new(ip(1), 7000);
        assert!(net.connect(ip(2), addr).is_err(), "nobody listens");
        let mut listener = net.bind(addr).unwrap();
        net.clog_link(ip(2), ip(1));
        assert!(net.connect(ip(2), addr).is_err(), "a clog refuses connects");
        net.unclog_link(ip(2), ip(1));
        let (link, _r) = net.connect(ip(2), addr).unwrap();
        let (_l, mut server) = listener.accept().await.unwrap();
        net.clog_node(ip(1), true, false);
        assert!(link.send(ack(1)));
        let waited = tokio::time::timeout(Duration::from_millis(100), server.next()).await;
        assert!(waited.is_err(), "held while clogged");
        net.unclog_node(ip(1), true, false);
        assert_eq!(server.next().await, Some(ack(1)), "released after the clog");
        drop(listener);
        assert!(
            net.connect(ip(2), addr).is_err(),
            "a dropped listener refuses"
        );
    }
}
