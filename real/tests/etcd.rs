//! The store's coordination on a real 3-member etcd cluster (issue 14; `conductor store
//! --etcd`): locks are leased keys whose `create_revision` is the fencing token, membership is
//! one leased key per conductor, `state-check`'s tokens are revisions too. Each test starts its
//! own cluster (Debian's etcd 3.4, loopback, random free ports, data on tmpfs) and stops every
//! process by its handle.
//!
//! Real build with the `etcd` feature only: `RUSTFLAGS= CARGO_TARGET_DIR=target/real cargo
//! test --release -p real --features etcd --test etcd`.
#![cfg(all(not(madsim), feature = "etcd"))]

use conductor::op::{OpKind, Status};
use conductor::proto::{CoordCmd, Msg, OpSpec, StoreCmd, StoreResp};
use conductor::wire;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};
use tokio::io::ReadHalf;
use tokio::net::TcpStream;

mod common;
use common::etcd::EtcdCluster;
use common::{scratch, start, Proc, PATIENCE};

/// One store connection, asking one thing at a time.
struct Store {
    link: wire::TcpLink,
    reader: wire::TcpReader<ReadHalf<TcpStream>>,
    next: u64,
}

/// What became of a request.
#[derive(Debug, PartialEq)]
enum Reply {
    Answer(StoreResp),
    /// The store closed the connection without answering (etcd did not answer in time).
    Closed,
}

impl Store {
    async fn connect(addr: SocketAddr) -> Store {
        let stream = TcpStream::connect(addr)
            .await
            .expect("connect to the store");
        let (link, reader) = wire::attach(stream);
        Store {
            link,
            reader,
            next: 0,
        }
    }

    async fn ask(&mut self, msg: impl FnOnce(u64) -> Msg) -> Reply {
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

    async fn coord(&mut self, cmd: CoordCmd) -> StoreResp {
        match self.ask(|req| Msg::Coord { req, cmd }).await {
            Reply::Answer(r) => r,
            Reply::Closed => panic!("the store closed the connection on {cmd:?}"),
        }
    }

    async fn store(&mut self, cmd: StoreCmd) -> StoreResp {
        match self.ask(|req| Msg::Store { req, cmd }).await {
            Reply::Answer(r) => r,
            Reply::Closed => panic!("the store closed the connection on {cmd:?}"),
        }
    }
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
        StoreResp::Locked { token } | StoreResp::Began { token } => token,
        other => panic!("expected a grant, got {other:?}"),
    }
}

/// Starts a store on etcd with its journal in `dir`; its address.
fn store(dir: &Path, etcd: &EtcdCluster, patience: &str) -> (Proc, SocketAddr) {
    let journal = dir.join("store.journal");
    let endpoints = etcd.endpoints();
    let (p, addr) = start(
        "store",
        &[
            "store",
            "--listen",
            "127.0.0.1:0",
            "--hosts",
            "1",
            "--containers",
            "10",
            "--journal",
            journal.to_str().expect("utf-8 path"),
            "--etcd",
            &endpoints,
            "--etcd-patience",
            patience,
        ],
        true,
    );
    (p, addr.expect("the store listens"))
}

const LONG: Duration = Duration::from_secs(60);

/// Lock grant, holding and release; every grant's token larger than the one before; a lease
/// that lapses while its holder is silent (paused) passes the lock on, with a larger token, and
/// the old holder's renewal and release are refused; tokens keep growing across a `kill -9` of
/// the store and of each etcd member in turn, and `state-check`'s tokens come from the same
/// counter.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn locks_and_fencing_tokens_live_in_etcd() {
    let dir = scratch("etcd-locks");
    let mut etcd = EtcdCluster::start("locks", 3);
    let (mut store_p, addr) = store(&dir, &etcd, "10s");
    let mut s = Store::connect(addr).await;

    let t1 = token(s.coord(lock(1, 0, LONG)).await);
    assert_eq!(
        s.coord(lock(1, 1, LONG)).await,
        StoreResp::Held { owner: 0 }
    );
    let t2 = token(s.coord(lock(2, 1, LONG)).await);
    assert!(t2 > t1, "a later grant's token is larger: {t1} then {t2}");
    let renew = CoordCmd::Renew {
        container: 1,
        token: t1,
        ttl_us: LONG.as_micros() as u64,
    };
    assert_eq!(s.coord(renew).await, StoreResp::Ok);
    // A release under a wrong token leaves the lock held.
    s.coord(CoordCmd::Unlock {
        container: 1,
        token: t2,
    })
    .await;
    assert_eq!(
        s.coord(lock(1, 1, LONG)).await,
        StoreResp::Held { owner: 0 }
    );
    s.coord(CoordCmd::Unlock {
        container: 1,
        token: t1,
    })
    .await;
    let t3 = token(s.coord(lock(1, 1, LONG)).await);
    assert!(t3 > t2);

    // Holder 0 takes container 3 under a short lease and goes silent.
    let short = Duration::from_secs(1);
    let t4 = token(s.coord(lock(3, 0, short)).await);
    let taken_at = Instant::now();
    let t5 = loop {
        match s.coord(lock(3, 1, LONG)).await {
            StoreResp::Locked { token } => break token,
            StoreResp::Held { owner } => assert_eq!(owner, 0),
            other => panic!("unexpected {other:?}"),
        }
        assert!(taken_at.elapsed() < PATIENCE, "the lease never lapsed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(
        taken_at.elapsed() >= short,
        "the lock passed on before its lease ran out"
    );
    assert!(t5 > t4, "the next holder's token is larger: {t4} then {t5}");
    let stale = CoordCmd::Renew {
        container: 3,
        token: t4,
        ttl_us: LONG.as_micros() as u64,
    };
    assert_eq!(s.coord(stale).await, StoreResp::Stale { version: 0 });

    // The store dies: the locks are etcd's, so they are still held, and tokens still grow.
    drop(s);
    let _ = store_p.child.kill();
    let _ = store_p.child.wait();
    let (_store_p, addr) = store(&dir, &etcd, "10s");
    let mut s = Store::connect(addr).await;
    assert_eq!(
        s.coord(lock(3, 0, LONG)).await,
        StoreResp::Held { owner: 1 }
    );
    let mut last = token(s.coord(lock(4, 0, LONG)).await);
    assert!(last > t5);

    // Each member killed and started again in turn (the leader among them): tokens only grow.
    for i in 0..3 {
        etcd.kill(i);
        let t = token(s.coord(lock(10 + i as u64, 0, LONG)).await);
        assert!(t > last, "token {t} after {last} with member {i} down");
        etcd.restart(i);
        etcd.wait_healthy();
        let t2 = token(s.coord(lock(20 + i as u64, 0, LONG)).await);
        assert!(t2 > t, "token {t2} after {t} with member {i} back");
        last = t2;
    }

    // `state-check`'s tokens: a begun op's token is a revision too, above every lock's.
    let op = OpSpec {
        id: 7,
        container: 5,
        kind: OpKind::Stop,
        intended_us: 0,
    };
    assert!(matches!(
        s.store(StoreCmd::Accept { op, validate: true }).await,
        StoreResp::Accepted { .. }
    ));
    let began = token(
        s.store(StoreCmd::Begin {
            op: 7,
            owner: 0,
            check: true,
            reissue: false,
        })
        .await,
    );
    assert!(
        began > last,
        "a begun op's token {began} after lock token {last}"
    );
    assert_eq!(
        s.store(StoreCmd::Finish { op: 7, ok: true }).await,
        StoreResp::Ok
    );
    assert_eq!(
        s.store(StoreCmd::Get { container: 5 }).await,
        StoreResp::Record {
            status: Status::Stopped,
            version: 4
        }
    );
}

/// Membership is one leased key per conductor: a member that heartbeats is not lapsed, one that
/// goes silent lapses after its lease, one that never joined is not reported; a store restart
/// forgets none of it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn membership_lives_in_etcd() {
    let dir = scratch("etcd-members");
    let etcd = EtcdCluster::start("members", 3);
    let (mut store_p, addr) = store(&dir, &etcd, "10s");
    let mut s = Store::connect(addr).await;
    let beat = |member, ttl: Duration| CoordCmd::Heartbeat {
        member,
        ttl_us: ttl.as_micros() as u64,
    };
    assert_eq!(s.coord(beat(0, LONG)).await, StoreResp::Ok);
    assert_eq!(
        s.coord(beat(1, Duration::from_secs(1))).await,
        StoreResp::Ok
    );
    assert_eq!(s.coord(beat(0, LONG)).await, StoreResp::Ok);
    assert_eq!(
        s.coord(CoordCmd::Lapsed { from: 0 }).await,
        StoreResp::NotFound
    );
    drop(s);
    let _ = store_p.child.kill();
    let _ = store_p.child.wait();
    let (_store_p, addr) = store(&dir, &etcd, "10s");
    let mut s = Store::connect(addr).await;
    // Member 1 stays silent: it lapses (member 2 never joined and is not reported).
    let t0 = Instant::now();
    loop {
        match s.coord(CoordCmd::Lapsed { from: 0 }).await {
            StoreResp::Member { index } => {
                assert_eq!(index, 1);
                break;
            }
            StoreResp::NotFound => {}
            other => panic!("unexpected {other:?}"),
        }
        assert!(t0.elapsed() < PATIENCE, "member 1 never lapsed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        s.coord(CoordCmd::Lapsed { from: 2 }).await,
        StoreResp::NotFound
    );
    // It comes back: a member again.
    assert_eq!(s.coord(beat(1, LONG)).await, StoreResp::Ok);
    assert_eq!(
        s.coord(CoordCmd::Lapsed { from: 0 }).await,
        StoreResp::NotFound
    );
}

/// With two of three members down (quorum lost) no lock is granted: the store retries for its
/// patience, then closes the connection unanswered; with the members back, locks are granted
/// again, with larger tokens, and the lock held before the outage is still held.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quorum_loss_makes_locks_unavailable_not_unsafe() {
    let dir = scratch("etcd-quorum");
    let mut etcd = EtcdCluster::start("quorum", 3);
    let (_store_p, addr) = store(&dir, &etcd, "2s");
    let mut s = Store::connect(addr).await;
    let before = token(s.coord(lock(1, 0, LONG)).await);
    etcd.kill(1);
    etcd.kill(2);
    let t0 = Instant::now();
    let reply = s
        .ask(|req| Msg::Coord {
            req,
            cmd: lock(2, 1, LONG),
        })
        .await;
    assert_eq!(
        reply,
        Reply::Closed,
        "no lock may be granted without quorum"
    );
    assert!(
        t0.elapsed() >= Duration::from_secs(2),
        "the store gave up before its patience"
    );
    etcd.restart(1);
    etcd.restart(2);
    etcd.wait_healthy();
    let mut s = Store::connect(addr).await;
    let t0 = Instant::now();
    let after = loop {
        match s
            .ask(|req| Msg::Coord {
                req,
                cmd: lock(2, 1, LONG),
            })
            .await
        {
            Reply::Answer(r) => break token(r),
            Reply::Closed => {
                assert!(t0.elapsed() < PATIENCE, "etcd never answered again");
                s = Store::connect(addr).await;
            }
        }
    };
    assert!(after > before);
    assert_eq!(
        s.coord(lock(1, 1, LONG)).await,
        StoreResp::Held { owner: 0 }
    );
}
