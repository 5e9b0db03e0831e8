//! The coordination conformance suite (issue 14): one set of checks — lock grant and release,
//! a lease lapsing while its holder is paused, fencing tokens across restarts, membership churn,
//! compare-and-swap races — run against every coordination backend behind [`Backend`]: the
//! store's own (its journal) and, with the cargo feature `etcd`, a real 3-member etcd cluster
//! (`store --etcd`). Both must give the same outcomes; a deliberately wrong backend (a store
//! without a journal: its tokens start over after a restart) must fail the suite.
//!
//! Real build only: `RUSTFLAGS= CARGO_TARGET_DIR=target/real cargo test --release -p real
//! [--features etcd] --test conformance`. Loopback; every process stopped by its handle.
#![cfg(not(madsim))]

use conductor::op::{OpKind, Status};
use conductor::proto::{CoordCmd, OpSpec, StoreCmd, StoreResp};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

mod common;
#[cfg(feature = "etcd")]
use common::etcd::EtcdCluster;
use common::store_client::StoreClient;
use common::{scratch, start, Proc};

/// A coordination backend under test: a store process and whatever keeps its coordination.
trait Backend {
    /// The store's address (it changes when the store restarts).
    fn addr(&self) -> SocketAddr;
    /// `kill -9` of the store process, then a new one on the same journal (and engine).
    fn restart_store(&mut self);
    /// How many servers the coordination engine has (the store itself: one).
    fn members(&self) -> usize;
    /// Whether coordination still answers with one member down (a quorum of the rest).
    fn survives_one_member_down(&self) -> bool;
    /// Kills member `i` of the engine.
    fn kill_member(&mut self, i: usize);
    /// Starts member `i` again and waits until it serves.
    fn restart_member(&mut self, i: usize);
}

/// Starts a store with `extra` flags, its journal (if `journal`) in `dir`; its address.
fn start_store(dir: &Path, journal: bool, extra: &[String]) -> (Proc, SocketAddr) {
    let path = dir.join("store.journal");
    let mut args: Vec<String> = ["store", "--listen", "127.0.0.1:0", "--hosts", "1"]
        .map(String::from)
        .to_vec();
    args.extend(["--containers".to_string(), "10".to_string()]);
    if journal {
        args.extend(["--journal".to_string(), path.display().to_string()]);
    }
    args.extend(extra.iter().cloned());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (p, addr) = start("store", &args, true);
    (p, addr.expect("the store listens"))
}

fn kill(p: &mut Proc) {
    let _ = p.child.kill();
    let _ = p.child.wait();
}

/// The store's own coordination: its maps, durable through its journal (or not: the wrong
/// model).
struct OwnStore {
    dir: PathBuf,
    journal: bool,
    proc: Option<Proc>,
    addr: SocketAddr,
}

impl OwnStore {
    fn start(test: &str, journal: bool) -> OwnStore {
        let dir = scratch(test);
        let (p, addr) = start_store(&dir, journal, &[]);
        OwnStore {
            dir,
            journal,
            proc: Some(p),
            addr,
        }
    }
}

impl Backend for OwnStore {
    fn addr(&self) -> SocketAddr {
        self.addr
    }
    fn restart_store(&mut self) {
        self.kill_member(0);
        self.restart_member(0);
    }
    fn members(&self) -> usize {
        1
    }
    fn survives_one_member_down(&self) -> bool {
        false
    }
    fn kill_member(&mut self, _: usize) {
        if let Some(mut p) = self.proc.take() {
            kill(&mut p);
        }
    }
    fn restart_member(&mut self, _: usize) {
        let (p, addr) = start_store(&self.dir, self.journal, &[]);
        self.proc = Some(p);
        self.addr = addr;
    }
}

/// The store on a real 3-member etcd cluster.
#[cfg(feature = "etcd")]
struct OnEtcd {
    dir: PathBuf,
    etcd: EtcdCluster,
    proc: Proc,
    addr: SocketAddr,
}

#[cfg(feature = "etcd")]
impl OnEtcd {
    fn flags(etcd: &EtcdCluster) -> Vec<String> {
        vec!["--etcd".to_string(), etcd.endpoints()]
    }

    fn start(test: &str) -> OnEtcd {
        let dir = scratch(test);
        let etcd = EtcdCluster::start(test, 3);
        let (proc, addr) = start_store(&dir, true, &Self::flags(&etcd));
        OnEtcd {
            dir,
            etcd,
            proc,
            addr,
        }
    }
}

#[cfg(feature = "etcd")]
impl Backend for OnEtcd {
    fn addr(&self) -> SocketAddr {
        self.addr
    }
    fn restart_store(&mut self) {
        kill(&mut self.proc);
        let (p, addr) = start_store(&self.dir, true, &Self::flags(&self.etcd));
        self.proc = p;
        self.addr = addr;
    }
    fn members(&self) -> usize {
        3
    }
    fn survives_one_member_down(&self) -> bool {
        true
    }
    fn kill_member(&mut self, i: usize) {
        self.etcd.kill(i);
    }
    fn restart_member(&mut self, i: usize) {
        self.etcd.restart(i);
        self.etcd.wait_healthy();
    }
}

/// A check's verdict: `Err` says what did not conform.
type Verdict = Result<(), String>;

macro_rules! ensure {
    ($cond:expr, $($msg:tt)+) => {
        if !$cond {
            return Err(format!($($msg)+));
        }
    };
}

const LONG: Duration = Duration::from_secs(60);
/// How long a 1 s lease may take to be seen lapsed (etcd raises it to its 2 s minimum and its
/// leader checks expiries every half second).
const LAPSE: Duration = Duration::from_secs(10);

fn lock(container: u64, owner: u32, ttl: Duration) -> CoordCmd {
    CoordCmd::Lock {
        container,
        owner,
        ttl_us: ttl.as_micros() as u64,
    }
}

fn renew(container: u64, token: u64) -> CoordCmd {
    CoordCmd::Renew {
        container,
        token,
        ttl_us: LONG.as_micros() as u64,
    }
}

fn unlock(container: u64, token: u64) -> CoordCmd {
    CoordCmd::Unlock { container, token }
}

fn granted(r: StoreResp) -> Result<u64, String> {
    match r {
        StoreResp::Locked { token } | StoreResp::Began { token } => Ok(token),
        other => Err(format!("expected a grant, got {other:?}")),
    }
}

/// Grant, holding, release under the right token only; every grant's token larger.
async fn grant_and_release(b: &mut dyn Backend) -> Verdict {
    let mut s = StoreClient::connect(b.addr()).await;
    let t1 = granted(s.coord(lock(1, 0, LONG)).await)?;
    let held = s.coord(lock(1, 1, LONG)).await;
    ensure!(
        held == StoreResp::Held { owner: 0 },
        "a held lock granted again: {held:?}"
    );
    let t2 = granted(s.coord(lock(2, 1, LONG)).await)?;
    ensure!(t2 > t1, "tokens {t1} then {t2}");
    let r = s.coord(renew(1, t1)).await;
    ensure!(r == StoreResp::Ok, "the holder's renewal: {r:?}");
    s.coord(unlock(1, t2)).await;
    let held = s.coord(lock(1, 1, LONG)).await;
    ensure!(
        held == StoreResp::Held { owner: 0 },
        "released under a wrong token: {held:?}"
    );
    s.coord(unlock(1, t1)).await;
    let t3 = granted(s.coord(lock(1, 1, LONG)).await)?;
    ensure!(t3 > t2, "tokens {t2} then {t3}");
    Ok(())
}

/// A holder that goes silent (paused) loses the lock once its lease runs out, not before; the
/// next holder's token is larger, and the old holder can neither renew nor release.
async fn lease_lapses_while_holder_paused(b: &mut dyn Backend) -> Verdict {
    let mut s = StoreClient::connect(b.addr()).await;
    let ttl = Duration::from_secs(1);
    let old = granted(s.coord(lock(3, 0, ttl)).await)?;
    let t0 = Instant::now();
    let new = loop {
        match s.coord(lock(3, 1, LONG)).await {
            StoreResp::Locked { token } => break token,
            StoreResp::Held { owner: 0 } => {}
            other => return Err(format!("while paused: {other:?}")),
        }
        ensure!(t0.elapsed() < LAPSE, "the lease never lapsed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    ensure!(t0.elapsed() >= ttl, "passed on after {:?}", t0.elapsed());
    ensure!(new > old, "tokens {old} then {new}");
    let r = s.coord(renew(3, old)).await;
    ensure!(
        r == StoreResp::Stale { version: 0 },
        "the old holder renewed: {r:?}"
    );
    s.coord(unlock(3, old)).await;
    let held = s.coord(lock(3, 2, LONG)).await;
    ensure!(
        held == StoreResp::Held { owner: 1 },
        "the old holder released it: {held:?}"
    );
    Ok(())
}

/// Tokens only grow, and held locks stay held, across a `kill -9` of the store and a restart of
/// each of the engine's members in turn; a begun op's token is above every lock's.
async fn tokens_across_restarts(b: &mut dyn Backend) -> Verdict {
    let mut s = StoreClient::connect(b.addr()).await;
    let mut last = granted(s.coord(lock(4, 0, LONG)).await)?;
    b.restart_store();
    let mut s = StoreClient::connect(b.addr()).await;
    let held = s.coord(lock(4, 1, LONG)).await;
    ensure!(
        held == StoreResp::Held { owner: 0 },
        "a lock forgotten by a store restart: {held:?}"
    );
    for i in 0..b.members() {
        b.kill_member(i);
        if b.survives_one_member_down() {
            let t = granted(s.coord(lock(100 + i as u64, 0, LONG)).await)?;
            ensure!(t > last, "token {t} after {last} with member {i} down");
            last = t;
        }
        b.restart_member(i);
        let mut again = StoreClient::connect(b.addr()).await;
        let t = granted(again.coord(lock(200 + i as u64, 0, LONG)).await)?;
        ensure!(t > last, "token {t} after {last} with member {i} back");
        last = t;
        s = again;
    }
    let op = OpSpec {
        id: 7,
        container: 5,
        kind: OpKind::Stop,
        intended_us: 0,
        deadline: None,
    };
    let a = s.store(StoreCmd::Accept { op, validate: true }).await;
    ensure!(matches!(a, StoreResp::Accepted { .. }), "accept: {a:?}");
    let begin = StoreCmd::Begin {
        op: 7,
        owner: 0,
        check: true,
        reissue: false,
    };
    let began = granted(s.store(begin).await)?;
    ensure!(
        began > last,
        "a begun op's token {began} after lock token {last}"
    );
    Ok(())
}

/// Members that heartbeat stay, one that goes silent lapses (after a store restart too), one
/// that never joined is not reported, one that comes back is a member again.
async fn membership_churn(b: &mut dyn Backend) -> Verdict {
    let beat = |member, ttl: Duration| CoordCmd::Heartbeat {
        member,
        ttl_us: ttl.as_micros() as u64,
    };
    let mut s = StoreClient::connect(b.addr()).await;
    for cmd in [
        beat(0, LONG),
        beat(1, Duration::from_secs(1)),
        beat(0, LONG),
    ] {
        let r = s.coord(cmd).await;
        ensure!(r == StoreResp::Ok, "{cmd:?}: {r:?}");
    }
    let r = s.coord(CoordCmd::Lapsed { from: 0 }).await;
    ensure!(r == StoreResp::NotFound, "lapsed at once: {r:?}");
    b.restart_store();
    let mut s = StoreClient::connect(b.addr()).await;
    let t0 = Instant::now();
    loop {
        match s.coord(CoordCmd::Lapsed { from: 0 }).await {
            StoreResp::Member { index: 1 } => break,
            StoreResp::NotFound => {}
            other => return Err(format!("lapsed: {other:?}")),
        }
        ensure!(t0.elapsed() < LAPSE, "member 1 never lapsed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let r = s.coord(CoordCmd::Lapsed { from: 2 }).await;
    ensure!(
        r == StoreResp::NotFound,
        "a member that never joined: {r:?}"
    );
    let r = s.coord(beat(1, LONG)).await;
    ensure!(r == StoreResp::Ok, "member 1 back: {r:?}");
    let r = s.coord(CoordCmd::Lapsed { from: 0 }).await;
    ensure!(r == StoreResp::NotFound, "after member 1 came back: {r:?}");
    Ok(())
}

/// Eight conductors race for one lock and eight writers compare-and-swap one record at the
/// version they all read: exactly one of each wins.
async fn cas_races(b: &mut dyn Backend) -> Verdict {
    let addr = b.addr();
    let racers = (0..8u32).map(|owner| {
        tokio::spawn(async move {
            let mut s = StoreClient::connect(addr).await;
            s.coord(lock(6, owner, LONG)).await
        })
    });
    let mut answers = Vec::new();
    for r in racers {
        answers.push(r.await.map_err(|e| e.to_string())?);
    }
    let winners: Vec<u32> = (0..8u32)
        .filter(|&o| matches!(answers[o as usize], StoreResp::Locked { .. }))
        .collect();
    ensure!(
        winners.len() == 1,
        "lock race winners {winners:?}: {answers:?}"
    );
    let w = winners[0];
    for a in &answers {
        ensure!(
            matches!(a, StoreResp::Locked { .. }) || *a == StoreResp::Held { owner: w },
            "a loser told {a:?}, not Held by {w}"
        );
    }
    let mut s = StoreClient::connect(addr).await;
    let StoreResp::Record { version, .. } = s.store(StoreCmd::Get { container: 7 }).await else {
        return Err("no record of container 7".into());
    };
    let writers = [
        Status::Stopped,
        Status::Paused,
        Status::Error,
        Status::Running,
    ]
    .into_iter()
    .cycle()
    .take(8)
    .map(|status| {
        tokio::spawn(async move {
            let mut s = StoreClient::connect(addr).await;
            let set = StoreCmd::SetStatus {
                container: 7,
                version,
                status,
            };
            s.store(set).await
        })
    });
    let mut ok = 0;
    for w in writers {
        match w.await.map_err(|e| e.to_string())? {
            StoreResp::Ok => ok += 1,
            StoreResp::Stale { version: v } if v > version => {}
            other => return Err(format!("a compare-and-swap loser told {other:?}")),
        }
    }
    ensure!(ok == 1, "{ok} compare-and-swaps won at one version");
    Ok(())
}

/// Every check on `b`: the failures, by check.
async fn suite(b: &mut dyn Backend) -> Vec<(&'static str, String)> {
    let mut failed = Vec::new();
    let mut note = |name, v: Verdict| {
        if let Err(e) = v {
            failed.push((name, e));
        }
    };
    note("grant_and_release", grant_and_release(b).await);
    note(
        "lease_lapses_while_holder_paused",
        lease_lapses_while_holder_paused(b).await,
    );
    note("tokens_across_restarts", tokens_across_restarts(b).await);
    note("membership_churn", membership_churn(b).await);
    note("cas_races", cas_races(b).await);
    failed
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stores_own_coordination_conforms() {
    let mut b = OwnStore::start("conformance-store", true);
    let failed = suite(&mut b).await;
    assert!(
        failed.is_empty(),
        "the store's own coordination: {failed:?}"
    );
}

#[cfg(feature = "etcd")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn coordination_on_etcd_conforms() {
    let mut b = OnEtcd::start("conformance-etcd");
    let failed = suite(&mut b).await;
    assert!(failed.is_empty(), "coordination on etcd: {failed:?}");
}

/// A deliberately wrong backend, a store without a journal (its tokens start over and its locks
/// are forgotten when it restarts), fails the suite where it should, and only there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backend_whose_tokens_start_over_fails_the_suite() {
    let mut b = OwnStore::start("conformance-wrong", false);
    let failed = suite(&mut b).await;
    let names: Vec<&str> = failed.iter().map(|(n, _)| *n).collect();
    assert_eq!(
        names,
        ["tokens_across_restarts", "membership_churn"],
        "{failed:?}"
    );
}
