//! The simulated etcd cluster (`cluster.coordination = "etcd"`): the store's coordination
//! engine on `cluster.etcd_members` madsim nodes `etcd-1…K`, so that locks, leases, membership
//! and fencing tokens survive a store-process kill and are lost only when their lease lapses.
//!
//! What the model keeps of etcd, because verdicts depend on it:
//! - **One replicated keyspace** with a cluster-wide **revision** that only grows (across member
//!   kills and restarts and leader changes: every member fsyncs its log, so a restarted member
//!   comes back with it). A lock is a key created only if absent, on a lease; its
//!   `create_revision` is the fencing token, a begun op's token the revision of a write.
//! - **Leases** of whole seconds, at least etcd's minimum (1.5 × the election timeout, rounded
//!   up: 2 s); they lapse exactly at their TTL after the last keep-alive, and only while a
//!   leader holds a quorum; a new leader gives every lease its full TTL again (etcd's lessor
//!   does so on promotion), so an election never expires a lease early.
//! - **Leadership and quorum** from the world: each member ticks every heartbeat (100 ms);
//!   the leader keeps followers it reaches (both directions of the link open in the simulated
//!   network, the follower ticking: neither killed nor paused); a follower that has not heard
//!   from a leader for its election timeout (1 s + a draw in [0, 1 s), as etcd randomises it)
//!   campaigns and wins with the votes of a majority it reaches whose members have not heard
//!   from a leader for an election timeout either (etcd's check-quorum leases); a leader
//!   without a quorum for an election timeout steps down.
//! - **Requests** from the store: a member killed refuses the connection at once; one paused,
//!   or behind a clog, leaves the call hanging until the client's timeout (2 s, as
//!   `real/src/etcd.rs` sets it); a member that knows no leader fails it at once (the client
//!   asks for a leader); a member whose leader is gone or without quorum, but has not timed
//!   out yet, leaves it hanging. A committed request costs the world's latency: store → member,
//!   member → leader (when they differ), the leader's round trip to a follower, and back.
//!   Nothing is granted without a quorum.
//! - **The client's patience**, as `real/src/etcd.rs`: each call of a command is retried with
//!   backoff 10 ms → 500 ms on the next member for [`PATIENCE`]; past it the store closes the
//!   connection and its peer asks again.
//!
//! What it leaves out: the raft log itself (a committed write is applied to the one keyspace at
//! once), vote splitting and term disruption by a healed member (etcd 3.4 without pre-vote can
//! disrupt a leader; the model's rejoining member waits as a follower), packet loss on the
//! engine's calls (`[network] loss` applies to the services' links only), and the leader's
//! 500 ms expiry sweep (a lease lapses at its TTL, not up to 500 ms later).

use conductor::coordination::{lease_ttl_s, KvEngine};
use conductor::mem::MemNet;
use conductor::proto::StoreResp;
use conductor::retry::splitmix64;
use conductor::rpc::lock;
use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio::time::{sleep, timeout, Instant};

/// etcd's default heartbeat interval.
pub const HEARTBEAT: Duration = Duration::from_millis(100);
/// etcd's default election timeout.
pub const ELECTION: Duration = Duration::from_secs(1);
/// etcd's smallest lease TTL in seconds: 1.5 × the election timeout, rounded up.
pub const MIN_TTL_S: u64 = 2;
/// The client's timeout of one call (`real/src/etcd.rs`: `with_timeout(2 s)`).
pub const CALL_TIMEOUT: Duration = Duration::from_secs(2);
/// How long the store retries a command before it closes the connection that asked
/// (`conductor store --etcd-patience`, default 10 s).
pub const PATIENCE: Duration = Duration::from_secs(10);
/// How long a member may go without ticking before its peers count it gone (killed or paused).
const STALE: Duration = Duration::from_millis(200);

/// A key of the keyspace, typed (the real engine's `lock/C`, `token`, `member/M/…`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Key {
    /// Container C's lock.
    Lock(u64),
    /// The key a begun op writes for its token.
    Token,
    /// Member M's leased membership.
    Alive(u32),
    /// Member M joined once (unleased).
    Joined(u32),
}

/// A key's value and metadata.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Kv {
    /// The lock holder's index (0 for keys without one).
    owner: u32,
    /// The revision that created the key.
    create: u64,
    /// The lease the key lives on (0: none).
    lease: u64,
}

/// A lease: its TTL and when it lapses.
#[derive(Debug, Clone, Copy)]
struct Lease {
    ttl: Duration,
    expires: Instant,
}

/// A call to a member.
#[derive(Debug, Clone, Copy)]
enum Req {
    /// Lease grant of `ttl_s` seconds.
    Grant { ttl_s: u64 },
    /// The lock txn: create `Lock(c)` on `lease` if absent, else read it.
    Lock {
        container: u64,
        owner: u32,
        lease: u64,
    },
    /// Lease revoke (its keys deleted).
    Revoke { lease: u64 },
    /// Range read of one key.
    Get(Key),
    /// One keep-alive of a lease.
    KeepAlive { lease: u64 },
    /// The unlock txn: delete `Lock(c)` if its create revision is `token`.
    Unlock { container: u64, token: u64 },
    /// The join txn: `Alive(m)` on `lease`, `Joined(m)`.
    Join { member: u32, lease: u64 },
    /// Range read of the membership keys.
    Members,
    /// A put of `Token`.
    PutToken,
}

/// A member's answer to a committed call.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Reply {
    Lease(u64),
    Locked(u64),
    Held(u32),
    Kv(Option<Kv>),
    Alive(bool),
    Unlocked(Option<u64>),
    Members(BTreeSet<u32>, BTreeSet<u32>),
    Revision(u64),
    Done,
}

/// Why a call to the simulated etcd failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Failed {
    /// The member's address refused the connection (killed).
    #[error("connection refused")]
    Refused,
    /// No answer within the client's timeout (paused, cut off, or a leader without quorum).
    #[error("request timed out")]
    Timeout,
    /// The member knows no leader (`etcdserver: no leader`).
    #[error("etcdserver: no leader")]
    NoLeader,
    /// A put named a lease that lapsed (`etcdserver: requested lease not found`).
    #[error("etcdserver: requested lease not found")]
    LeaseNotFound,
}

/// A call waiting at a member.
struct Call {
    req: Req,
    reply: oneshot::Sender<Result<Reply, Failed>>,
}

/// A deliberately wrong model, for the conformance suite's test that it catches one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flaw {
    /// The revision counter starts over whenever a store process starts (as if the engine's
    /// state lived in the store): tokens are not monotone across a store restart.
    RevisionRestartsWithStore,
}

/// One member's view.
struct Member {
    /// Where it listens (the world's `etcd-N` node).
    addr: SocketAddr,
    /// When it last ticked: a killed or paused member stops.
    ticked: Option<Instant>,
    /// When it last heard from a leader holding a quorum.
    heard: Instant,
    /// Its current (randomised) election timeout.
    timeout: Duration,
    /// Its calls' queue, served by its node (none before it started).
    inbox: Option<mpsc::UnboundedSender<Call>>,
}

/// The cluster's replicated state and the members' views.
struct State {
    kv: BTreeMap<Key, Kv>,
    revision: u64,
    leases: BTreeMap<u64, Lease>,
    next_lease: u64,
    leader: Option<usize>,
    /// When the leader last held a quorum.
    quorum_at: Instant,
    members: Vec<Member>,
    /// The model's own random stream (election timeouts, call latencies).
    rng: u64,
    flaw: Option<Flaw>,
}

impl State {
    fn draw(&mut self) -> u64 {
        self.rng = self.rng.wrapping_add(conductor::retry::GOLDEN_GAMMA);
        splitmix64(self.rng)
    }

    /// A randomised election timeout in [ELECTION, 2 × ELECTION), as etcd draws it.
    fn election_timeout(&mut self) -> Duration {
        let ms = ELECTION.as_millis() as u64;
        Duration::from_millis(ms + self.draw() % ms)
    }

    fn majority(&self) -> usize {
        self.members.len() / 2 + 1
    }

    /// Whether member `m` is up: not killed (its listener is closed at once by a kill) and
    /// ticking (a paused member stops within [`STALE`]).
    fn fresh(&self, net: &MemNet, m: usize, now: Instant) -> bool {
        let me = &self.members[m];
        me.ticked
            .is_some_and(|t| now.saturating_duration_since(t) <= STALE)
            && net.is_listening(me.addr)
    }

    /// Members `m` reaches both ways that tick, `m` included.
    fn reached(&self, net: &MemNet, m: usize, now: Instant) -> Vec<usize> {
        let a = self.members[m].addr.ip();
        (0..self.members.len())
            .filter(|&p| {
                let b = self.members[p].addr.ip();
                p == m || (self.fresh(net, p, now) && net.reachable(a, b) && net.reachable(b, a))
            })
            .collect()
    }

    fn has_quorum(&self, net: &MemNet, l: usize, now: Instant) -> bool {
        self.fresh(net, l, now) && self.reached(net, l, now).len() >= self.majority()
    }

    /// Lapses every lease past its TTL, deleting its keys (one revision per lease that had
    /// any, as etcd's revoke does).
    fn expire(&mut self, now: Instant) {
        let lapsed: Vec<u64> = self
            .leases
            .iter()
            .filter(|(_, l)| l.expires <= now)
            .map(|(&id, _)| id)
            .collect();
        for id in lapsed {
            self.revoke(id);
        }
    }

    fn revoke(&mut self, id: u64) {
        if self.leases.remove(&id).is_none() {
            return;
        }
        let before = self.kv.len();
        self.kv.retain(|_, kv| kv.lease != id);
        if self.kv.len() != before {
            self.revision += 1;
        }
    }

    /// Applies a committed call.
    fn apply(&mut self, req: Req, now: Instant) -> Result<Reply, Failed> {
        self.expire(now);
        Ok(match req {
            Req::Grant { ttl_s } => {
                let ttl = Duration::from_secs(ttl_s.max(MIN_TTL_S));
                self.next_lease += 1;
                let id = self.next_lease;
                self.leases.insert(
                    id,
                    Lease {
                        ttl,
                        expires: now + ttl,
                    },
                );
                Reply::Lease(id)
            }
            Req::Lock {
                container,
                owner,
                lease,
            } => {
                if let Some(kv) = self.kv.get(&Key::Lock(container)) {
                    return Ok(Reply::Held(kv.owner));
                }
                if !self.leases.contains_key(&lease) {
                    return Err(Failed::LeaseNotFound);
                }
                self.revision += 1;
                let kv = Kv {
                    owner,
                    create: self.revision,
                    lease,
                };
                self.kv.insert(Key::Lock(container), kv);
                Reply::Locked(self.revision)
            }
            Req::Revoke { lease } => {
                self.revoke(lease);
                Reply::Done
            }
            Req::Get(key) => Reply::Kv(self.kv.get(&key).copied()),
            Req::KeepAlive { lease } => Reply::Alive(match self.leases.get_mut(&lease) {
                Some(l) => {
                    l.expires = now + l.ttl;
                    true
                }
                None => false,
            }),
            Req::Unlock { container, token } => match self.kv.get(&Key::Lock(container)).copied() {
                Some(kv) if kv.create == token => {
                    self.kv.remove(&Key::Lock(container));
                    self.revision += 1;
                    Reply::Unlocked(Some(kv.lease))
                }
                _ => Reply::Unlocked(None),
            },
            Req::Join { member, lease } => {
                if !self.leases.contains_key(&lease) {
                    return Err(Failed::LeaseNotFound);
                }
                self.revision += 1;
                let rev = self.revision;
                let create = |k: &Key, kv: &BTreeMap<Key, Kv>| kv.get(k).map_or(rev, |v| v.create);
                let alive = Kv {
                    owner: 0,
                    create: create(&Key::Alive(member), &self.kv),
                    lease,
                };
                let joined = Kv {
                    owner: 0,
                    create: create(&Key::Joined(member), &self.kv),
                    lease: 0,
                };
                self.kv.insert(Key::Alive(member), alive);
                self.kv.insert(Key::Joined(member), joined);
                Reply::Done
            }
            Req::Members => {
                let (mut joined, mut alive) = (BTreeSet::new(), BTreeSet::new());
                for k in self.kv.keys() {
                    match *k {
                        Key::Joined(m) => joined.insert(m),
                        Key::Alive(m) => alive.insert(m),
                        _ => false,
                    };
                }
                Reply::Members(joined, alive)
            }
            Req::PutToken => {
                self.revision += 1;
                let rev = self.revision;
                let create = self.kv.get(&Key::Token).map_or(rev, |v| v.create);
                self.kv.insert(
                    Key::Token,
                    Kv {
                        owner: 0,
                        create,
                        lease: 0,
                    },
                );
                Reply::Revision(rev)
            }
        })
    }
}

/// How a member goes on with a call.
enum Route {
    /// It knows no leader: fail at once.
    NoLeader,
    /// Its leader is gone or without quorum (not yet timed out): the call hangs.
    Hang,
    /// Committed after this long.
    Commit(Duration),
}

/// A simulated etcd cluster: its state, shared by its member nodes and its clients (the
/// store's engine). Cheap to share (`Arc`).
pub struct EtcdCluster {
    state: Mutex<State>,
    net: MemNet,
}

impl EtcdCluster {
    /// A cluster of members at `addrs` on `net`, its random stream from `seed`; `flaw` makes a
    /// deliberately wrong model. Member 0 leads from the start (a deployment's etcd is up
    /// before its services).
    pub fn new(net: MemNet, addrs: &[SocketAddr], seed: u64, flaw: Option<Flaw>) -> Arc<Self> {
        let now = Instant::now();
        let mut st = State {
            kv: BTreeMap::new(),
            revision: 1,
            leases: BTreeMap::new(),
            next_lease: 0,
            leader: Some(0),
            quorum_at: now,
            members: Vec::new(),
            rng: splitmix64(seed ^ 0x6574_6364_0000_0000),
            flaw,
        };
        for &addr in addrs {
            let timeout = st.election_timeout();
            st.members.push(Member {
                addr,
                ticked: None,
                heard: now,
                timeout,
                inbox: None,
            });
        }
        Arc::new(EtcdCluster {
            state: Mutex::new(st),
            net,
        })
    }

    /// The members' addresses.
    pub fn addrs(&self) -> Vec<SocketAddr> {
        lock(&self.state).members.iter().map(|m| m.addr).collect()
    }

    /// The current revision (for tests and reports).
    pub fn revision(&self) -> u64 {
        lock(&self.state).revision
    }

    /// The current leader, if any holds a quorum now.
    pub fn leader(&self) -> Option<usize> {
        let st = lock(&self.state);
        let now = Instant::now();
        st.leader.filter(|&l| st.has_quorum(&self.net, l, now))
    }

    /// Member `m`'s life: what its node runs (again after a restart). Listens on its address
    /// (so that a kill is seen at once), ticks every heartbeat and serves its calls.
    pub async fn member(self: Arc<Self>, m: usize) {
        let addr = lock(&self.state).members[m].addr;
        let _listener = loop {
            match self.net.bind(addr) {
                Ok(l) => break l,
                Err(_) => sleep(Duration::from_millis(1)).await,
            }
        };
        let (tx, mut rx) = mpsc::unbounded_channel();
        {
            let mut st = lock(&self.state);
            let now = Instant::now();
            let me = &mut st.members[m];
            me.inbox = Some(tx);
            me.ticked = Some(now);
            // A restarted member waits a whole election timeout as a follower before it
            // campaigns (it hears the leader's heartbeats meanwhile, if there is one).
            me.heard = now;
        }
        let ticker = self.clone();
        tokio::spawn(async move {
            loop {
                sleep(HEARTBEAT).await;
                ticker.tick(m);
            }
        });
        while let Some(call) = rx.recv().await {
            tokio::spawn(self.clone().serve(m, call));
        }
    }

    /// One heartbeat of member `m`: the leader's keeps (or loses) its followers, a follower
    /// that has heard no leader for its election timeout campaigns.
    fn tick(&self, m: usize) {
        let now = Instant::now();
        let mut st = lock(&self.state);
        st.members[m].ticked = Some(now);
        if st.leader == Some(m) {
            if st.has_quorum(&self.net, m, now) {
                st.quorum_at = now;
                for p in st.reached(&self.net, m, now) {
                    st.members[p].heard = now;
                }
            } else if now.saturating_duration_since(st.quorum_at) >= ELECTION {
                // check-quorum: a leader that has not reached a majority for an election
                // timeout steps down.
                st.leader = None;
            }
            return;
        }
        if now.saturating_duration_since(st.members[m].heard) < st.members[m].timeout {
            return;
        }
        let voters: Vec<usize> = st
            .reached(&self.net, m, now)
            .into_iter()
            .filter(|&p| p == m || now.saturating_duration_since(st.members[p].heard) >= ELECTION)
            .collect();
        st.members[m].timeout = st.election_timeout();
        if voters.len() < st.majority() {
            return;
        }
        st.leader = Some(m);
        st.quorum_at = now;
        for p in voters {
            st.members[p].heard = now;
        }
        // The new leader's lessor gives every lease its full TTL again.
        for l in st.leases.values_mut() {
            l.expires = now + l.ttl;
        }
    }

    /// Where member `m` stands for a call now.
    fn route(&self, m: usize, st: &mut State, now: Instant) -> Route {
        let Some(l) = st.leader else {
            return Route::NoLeader;
        };
        if now.saturating_duration_since(st.members[m].heard) >= st.members[m].timeout {
            return Route::NoLeader;
        }
        let (a, b) = (st.members[m].addr.ip(), st.members[l].addr.ip());
        let linked = l == m || (self.net.reachable(a, b) && self.net.reachable(b, a));
        if !linked || !st.has_quorum(&self.net, l, now) {
            return Route::Hang;
        }
        let hops = if l == m { 2 } else { 3 };
        let d = (0..hops).map(|_| latency(&self.net, st)).sum();
        Route::Commit(d)
    }

    /// Serves one call at member `m` (a task of its node: a pause stops it, a kill drops it).
    async fn serve(self: Arc<Self>, m: usize, call: Call) {
        let route = {
            let mut st = lock(&self.state);
            let now = Instant::now();
            self.route(m, &mut st, now)
        };
        match route {
            Route::NoLeader => {
                let _ = call.reply.send(Err(Failed::NoLeader));
            }
            Route::Hang => sleep(CALL_TIMEOUT).await,
            Route::Commit(d) => {
                sleep(d).await;
                // Committed only if the leader still holds its quorum (else it hangs).
                let applied = {
                    let mut st = lock(&self.state);
                    let now = Instant::now();
                    let quorum = st.leader.is_some_and(|l| st.has_quorum(&self.net, l, now));
                    quorum.then(|| st.apply(call.req, now))
                };
                match applied {
                    Some(r) => {
                        let _ = call.reply.send(r);
                    }
                    None => sleep(CALL_TIMEOUT).await,
                }
            }
        }
    }

    /// One call from `from` to member `m`, as the client makes it.
    async fn call(&self, from: IpAddr, m: usize, req: Req) -> Result<Reply, Failed> {
        let (addr, inbox, there) = {
            let mut st = lock(&self.state);
            let member = &st.members[m];
            let (addr, inbox) = (member.addr, member.inbox.clone());
            (addr, inbox, latency(&self.net, &mut st))
        };
        let Some(inbox) = inbox.filter(|_| self.net.is_listening(addr)) else {
            return Err(Failed::Refused);
        };
        let open = self.net.reachable(from, addr.ip()) && self.net.reachable(addr.ip(), from);
        if !open {
            sleep(CALL_TIMEOUT).await;
            return Err(Failed::Timeout);
        }
        let (tx, rx) = oneshot::channel();
        sleep(there).await;
        if inbox.send(Call { req, reply: tx }).is_err() {
            return Err(Failed::Refused);
        }
        match timeout(CALL_TIMEOUT.saturating_sub(there), rx).await {
            Ok(Ok(r)) => {
                let back = latency(&self.net, &mut lock(&self.state));
                sleep(back).await;
                r
            }
            // The member died with the call.
            Ok(Err(_)) => Err(Failed::Refused),
            Err(_) => Err(Failed::Timeout),
        }
    }

    /// A client of the cluster for the store at `from` (made at each start of the store).
    pub fn client(self: &Arc<Self>, from: IpAddr) -> SimEtcd {
        {
            let mut st = lock(&self.state);
            if st.flaw == Some(Flaw::RevisionRestartsWithStore) {
                st.revision = 1;
            }
        }
        SimEtcd {
            cluster: self.clone(),
            from,
            next: AtomicUsize::new(0),
            patience: PATIENCE,
        }
    }
}

/// One draw of the world's one-way latency, `[min, max)` of its current settings.
fn latency(net: &MemNet, st: &mut State) -> Duration {
    let cfg = net.config();
    let (lo, hi) = (
        cfg.latency_min.as_micros() as u64,
        cfg.latency_max.as_micros() as u64,
    );
    let span = hi.saturating_sub(lo).max(1);
    Duration::from_micros(lo + st.draw() % span)
}

/// The store's coordination engine on a simulated etcd cluster: the real engine's calls
/// (`real/src/etcd.rs`), made to the cluster's members over the simulated world.
pub struct SimEtcd {
    cluster: Arc<EtcdCluster>,
    from: IpAddr,
    /// The member calls go to; a failure moves on to the next (the client's balancer).
    next: AtomicUsize,
    patience: Duration,
}

impl SimEtcd {
    async fn call(&self, req: Req) -> Result<Reply, Failed> {
        let n = self.cluster.addrs().len();
        let m = self.next.load(Ordering::Relaxed) % n;
        let r = self.cluster.call(self.from, m, req).await;
        if r.is_err() {
            self.next.store((m + 1) % n, Ordering::Relaxed);
        }
        r
    }
}

impl KvEngine for SimEtcd {
    type Error = Failed;

    fn patience(&self) -> Duration {
        self.patience
    }

    async fn lock_container(
        &self,
        container: u64,
        owner: u32,
        ttl_us: u64,
    ) -> Result<StoreResp, Failed> {
        let Reply::Lease(lease) = self
            .call(Req::Grant {
                ttl_s: lease_ttl_s(ttl_us),
            })
            .await?
        else {
            unreachable!("a grant answers a lease")
        };
        let r = self
            .call(Req::Lock {
                container,
                owner,
                lease,
            })
            .await?;
        match r {
            Reply::Locked(token) => Ok(StoreResp::Locked { token }),
            Reply::Held(owner) => {
                // The lease granted for it is not needed (it would lapse anyway).
                let _ = self.call(Req::Revoke { lease }).await;
                Ok(StoreResp::Held { owner })
            }
            other => unreachable!("the lock txn answered {other:?}"),
        }
    }

    async fn renew(&self, container: u64, token: u64) -> Result<StoreResp, Failed> {
        let stale = StoreResp::Stale { version: 0 };
        let Reply::Kv(kv) = self.call(Req::Get(Key::Lock(container))).await? else {
            unreachable!("a get answers a key")
        };
        let Some(kv) = kv.filter(|kv| kv.create == token) else {
            return Ok(stale);
        };
        let alive = self.call(Req::KeepAlive { lease: kv.lease }).await?;
        Ok(if alive == Reply::Alive(true) {
            StoreResp::Ok
        } else {
            stale
        })
    }

    async fn unlock(&self, container: u64, token: u64) -> Result<StoreResp, Failed> {
        if let Reply::Unlocked(Some(lease)) = self.call(Req::Unlock { container, token }).await? {
            if lease != 0 {
                let _ = self.call(Req::Revoke { lease }).await;
            }
        }
        Ok(StoreResp::Ok)
    }

    async fn heartbeat(&self, member: u32, ttl_us: u64) -> Result<StoreResp, Failed> {
        if let Reply::Kv(Some(kv)) = self.call(Req::Get(Key::Alive(member))).await? {
            if self.call(Req::KeepAlive { lease: kv.lease }).await? == Reply::Alive(true) {
                return Ok(StoreResp::Ok);
            }
        }
        // Not a member, or its lease lapsed: join (again) under a fresh lease.
        let Reply::Lease(lease) = self
            .call(Req::Grant {
                ttl_s: lease_ttl_s(ttl_us),
            })
            .await?
        else {
            unreachable!("a grant answers a lease")
        };
        self.call(Req::Join { member, lease }).await?;
        Ok(StoreResp::Ok)
    }

    async fn members(&self) -> Result<(BTreeSet<u32>, BTreeSet<u32>), Failed> {
        let Reply::Members(joined, alive) = self.call(Req::Members).await? else {
            unreachable!("a range answers the members")
        };
        Ok((joined, alive))
    }

    async fn fresh_token(&self) -> Result<u64, Failed> {
        match self.call(Req::PutToken).await? {
            Reply::Revision(r) => Ok(r),
            other => unreachable!("a put answered {other:?}"),
        }
    }
}
