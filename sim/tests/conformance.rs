//! The coordination conformance suite against the simulator (issue 14, Deliver 3): the checks
//! of `real/tests/conformance/checks.rs` — the very file the real suite runs against real
//! processes and a real 3-member etcd cluster — run under madsim against the simulated store
//! on the simulated etcd model (`sim/src/etcd.rs`, 3 members), and against the simulated store's
//! own coordination. They must pass on both, as on the real ones; a deliberately wrong model
//! (its revision counter starts over when a store process starts) must fail exactly
//! `tokens_across_restarts`.
//!
//! Also here: what only the etcd model does, which the scenario runs' verdicts hang on — a kill
//! of the store keeps a held lock, a lease lapses at its TTL and not before, and with quorum
//! lost nothing is granted, then grants resume with larger tokens.

#[path = "../../real/tests/conformance/checks.rs"]
mod checks;

use checks::{suite, Backend, Boxed, Conn, Connector, CHECKS};
use conductor::coordination::Coordination;
use conductor::journal::MemFile;
use conductor::mem::{task_timer, MemNet, MemNetConfig};
use conductor::net::Net;
use conductor::op::Status;
use conductor::proto::{CoordCmd, StoreCmd, StoreResp};
use conductor::rpc::RpcClient;
use conductor::store::{self, StoreState};
use madsim::runtime::{Handle, Runtime};
use madsim::task::NodeId;
use sim::etcd::{EtcdCluster, Flaw, ELECTION};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::{sleep, Instant};

const STORE: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 3)), 7000);
const CLIENT: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 4));

fn member_addr(i: usize) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 3, 0, i as u8 + 1)), 7000)
}

/// A connection of the test's client to the simulated store.
struct SimConn(RpcClient);

impl Conn for SimConn {
    fn coord(&mut self, cmd: CoordCmd) -> Boxed<'_, StoreResp> {
        Box::pin(async move {
            self.0
                .coord(cmd)
                .await
                .unwrap_or_else(|_| panic!("the store closed the connection on {cmd:?}"))
        })
    }
    fn store(&mut self, cmd: StoreCmd) -> Boxed<'_, StoreResp> {
        Box::pin(async move {
            self.0
                .store(cmd)
                .await
                .unwrap_or_else(|_| panic!("the store closed the connection on {cmd:?}"))
        })
    }
}

/// A simulated deployment's store (10 containers on 1 host, journalled) and what keeps its
/// coordination: the etcd model's members, or (none) the store itself.
struct SimBackend {
    net: MemNet,
    store: NodeId,
    members: Vec<NodeId>,
    etcd: Option<Arc<EtcdCluster>>,
}

impl SimBackend {
    /// Places the nodes; `members` = 0: the store's own coordination.
    fn start(seed: u64, members: usize, flaw: Option<Flaw>) -> SimBackend {
        let handle = Handle::current();
        let cfg = MemNetConfig {
            latency_min: Duration::from_millis(1),
            latency_max: Duration::from_millis(10),
            loss: 0.0,
        };
        let net = MemNet::new(cfg, seed, conductor::mem::system_clock(), task_timer());
        let addrs: Vec<SocketAddr> = (0..members).map(member_addr).collect();
        let etcd = (members > 0).then(|| EtcdCluster::new(net.clone(), &addrs, seed, flaw));
        let member_ids = addrs
            .iter()
            .enumerate()
            .map(|(i, a)| {
                let cluster = etcd.clone().expect("members are etcd's");
                handle
                    .create_node()
                    .name(format!("etcd-{}", i + 1))
                    .ip(a.ip())
                    .init(move || cluster.clone().member(i))
                    .build()
                    .id()
            })
            .collect();
        let file = MemFile::new();
        let t0 = Instant::now();
        let clock: store::StoreClock = Arc::new(move || t0.elapsed().as_micros() as u64);
        {
            let (mut st, _) = StoreState::open_memory(&file, 1, clock.clone()).expect("opens");
            for id in 0..10 {
                st.precreate_durably(id, Status::Running).expect("written");
            }
        }
        let (n, e) = (Net::Mem(net.clone()), etcd.clone());
        let store = handle
            .create_node()
            .name("store")
            .ip(STORE.ip())
            .init(move || {
                let (n, file, clock) = (n.clone(), file.clone(), clock.clone());
                let engine = e
                    .as_ref()
                    .map(|e| Arc::new(e.client(STORE.ip())) as Arc<dyn Coordination>);
                async move {
                    let (st, _) = StoreState::open_memory(&file, 1, clock).expect("replays");
                    let listener = loop {
                        match n.bind(STORE).await {
                            Ok(l) => break l,
                            Err(_) => sleep(Duration::from_millis(1)).await,
                        }
                    };
                    let _ = store::serve_with(listener, Arc::new(Mutex::new(st)), engine).await;
                }
            })
            .build()
            .id();
        SimBackend {
            net,
            store,
            members: member_ids,
            etcd,
        }
    }

    fn kill_node(&self, id: NodeId, ip: IpAddr) {
        Handle::current().kill(id);
        self.net.close_listeners(ip);
    }
}

impl Backend for SimBackend {
    fn connector(&self) -> Connector {
        let net = Net::Mem(self.net.clone());
        Arc::new(move || {
            let net = net.clone();
            Box::pin(async move {
                // The store may be coming back from a restart: dial until it listens.
                loop {
                    if let Ok(c) = RpcClient::connect(&net, CLIENT, STORE).await {
                        return Box::new(SimConn(c)) as Box<dyn Conn>;
                    }
                    sleep(Duration::from_millis(10)).await;
                }
            })
        })
    }
    fn restart_store(&mut self) -> Boxed<'_, ()> {
        self.kill_node(self.store, STORE.ip());
        Handle::current().restart(self.store);
        Box::pin(async {})
    }
    fn members(&self) -> usize {
        self.members.len().max(1)
    }
    fn survives_one_member_down(&self) -> bool {
        self.members.len() >= 3
    }
    fn kill_member(&mut self, i: usize) -> Boxed<'_, ()> {
        match self.members.get(i) {
            Some(&id) => self.kill_node(id, member_addr(i).ip()),
            None => self.kill_node(self.store, STORE.ip()),
        }
        Box::pin(async {})
    }
    fn restart_member(&mut self, i: usize) -> Boxed<'_, ()> {
        Handle::current().restart(self.members.get(i).copied().unwrap_or(self.store));
        Box::pin(async {})
    }
}

/// Runs `f` on a fresh simulated world with `seed`.
fn simulate<F, Fut, T>(seed: u64, f: F) -> T
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = T>,
{
    let mut rt = Runtime::with_seed_and_config(seed, madsim::Config::default());
    rt.set_time_limit(Duration::from_secs(3600));
    rt.block_on(f())
}

/// The failed checks' names on a backend of `members` etcd members (0: the store's own).
fn failed_checks(seed: u64, members: usize, flaw: Option<Flaw>) -> Vec<&'static str> {
    let failed = simulate(seed, || async move {
        let mut b = SimBackend::start(seed, members, flaw);
        suite(&mut b).await
    });
    eprintln!("{members} members, {flaw:?}: {failed:?}");
    failed.into_iter().map(|(n, _)| n).collect()
}

#[test]
fn the_etcd_model_conforms() {
    for seed in [1, 2] {
        assert_eq!(failed_checks(seed, 3, None), [] as [&str; 0], "seed {seed}");
    }
}

#[test]
fn the_simulated_stores_own_coordination_conforms() {
    assert_eq!(failed_checks(1, 0, None), [] as [&str; 0]);
}

/// The wrong model — tokens start over whenever a store process starts — fails the suite
/// exactly where the real suite's wrong backend fails on tokens, and nowhere else.
#[test]
fn a_model_whose_revision_starts_over_fails_the_suite() {
    assert_eq!(
        failed_checks(1, 3, Some(Flaw::RevisionRestartsWithStore)),
        [CHECKS[2]]
    );
    assert_eq!(CHECKS[2], "tokens_across_restarts");
}

fn lock(container: u64, owner: u32, ttl: Duration) -> CoordCmd {
    CoordCmd::Lock {
        container,
        owner,
        ttl_us: ttl.as_micros() as u64,
    }
}

fn token(r: StoreResp) -> u64 {
    match r {
        StoreResp::Locked { token } => token,
        other => panic!("expected a grant, got {other:?}"),
    }
}

/// A kill of the store keeps a held lock (its lease lives in etcd); the store's own
/// coordination without a journal would forget it.
#[test]
fn a_store_kill_keeps_a_held_lock() {
    simulate(3, || async {
        let mut b = SimBackend::start(3, 3, None);
        let mut s = b.connect().await;
        let t = token(s.coord(lock(1, 0, Duration::from_secs(30))).await);
        b.restart_store().await;
        let mut s = b.connect().await;
        assert_eq!(
            s.coord(lock(1, 1, Duration::from_secs(30))).await,
            StoreResp::Held { owner: 0 }
        );
        let t2 = token(s.coord(lock(2, 1, Duration::from_secs(30))).await);
        assert!(t2 > t, "{t} then {t2}");
    });
}

/// A lease lapses at its TTL (raised to etcd's 2 s minimum), not before: the lock stays held
/// up to it and is granted again, with a larger token, just after.
#[test]
fn a_lease_lapses_only_after_its_ttl() {
    simulate(4, || async {
        let b = SimBackend::start(4, 3, None);
        let mut s = b.connect().await;
        let t0 = Instant::now();
        let old = token(s.coord(lock(3, 0, Duration::from_millis(300))).await);
        let granted_in = t0.elapsed();
        let new = loop {
            match s.coord(lock(3, 1, Duration::from_secs(30))).await {
                StoreResp::Locked { token } => break token,
                StoreResp::Held { owner: 0 } => {}
                other => panic!("{other:?}"),
            }
            sleep(Duration::from_millis(20)).await;
        };
        let lapsed = t0.elapsed();
        assert!(new > old);
        // etcd's minimum TTL is 2 s; the grant and the polls cost a few round trips of 1-10 ms.
        assert!(lapsed >= Duration::from_secs(2), "lapsed after {lapsed:?}");
        assert!(
            lapsed < Duration::from_secs(2) + granted_in + Duration::from_millis(200),
            "lapsed after {lapsed:?}"
        );
    });
}

/// With two of three members down (quorum lost) nothing is granted: the store retries for its
/// patience and closes the connection. With them back, after an election, grants resume with
/// larger tokens, and the lock held before is still held.
#[test]
fn quorum_loss_grants_nothing_then_grants_resume_with_larger_tokens() {
    simulate(5, || async {
        let mut b = SimBackend::start(5, 3, None);
        let etcd = b.etcd.clone().expect("etcd");
        let mut s = b.connect().await;
        let before = token(s.coord(lock(1, 0, Duration::from_secs(600))).await);
        b.kill_member(0).await;
        b.kill_member(1).await;
        let rev = etcd.revision();
        let t0 = Instant::now();
        let net = Net::Mem(b.net.clone());
        let c = RpcClient::connect(&net, CLIENT, STORE)
            .await
            .expect("dials");
        let r = c.coord(lock(2, 1, Duration::from_secs(30))).await;
        assert!(r.is_err(), "granted without quorum: {r:?}");
        assert!(
            t0.elapsed() >= sim::etcd::PATIENCE,
            "gave up after {:?}",
            t0.elapsed()
        );
        assert_eq!(etcd.revision(), rev, "a write without quorum");
        assert_eq!(etcd.leader(), None);
        b.restart_member(0).await;
        b.restart_member(1).await;
        let t1 = Instant::now();
        let mut s2 = b.connect().await;
        let after = token(s2.coord(lock(2, 1, Duration::from_secs(30))).await);
        assert!(after > before, "{before} then {after}");
        // Not before an election could be held (the leader was among the killed).
        assert!(t1.elapsed() < ELECTION * 4, "took {:?}", t1.elapsed());
        assert_eq!(
            s.coord(lock(1, 2, Duration::from_secs(30))).await,
            StoreResp::Held { owner: 0 }
        );
    });
}
