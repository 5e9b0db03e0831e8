//! The coordination conformance checks (issue 14), written once against an abstract
//! [`Backend`] and run by two suites: `real/tests/conformance.rs` (real processes: the store's
//! own coordination, a real 3-member etcd cluster) and `sim/tests/conformance.rs` (the
//! simulator's etcd model under madsim, included there with `#[path]`). The same bodies judge
//! both, so "the same outcomes" is one code path, not two copies that could drift.
//!
//! Time is tokio's (simulated under madsim, real otherwise); a backend's restarts and kills are
//! its own (process signals, or madsim's node kills).

use conductor::op::{OpKind, Status};
use conductor::proto::{CoordCmd, OpSpec, StoreCmd, StoreResp};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// A boxed future, for the object-safe traits below.
pub type Boxed<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One connection to the store, asking one thing at a time (panics if the store closes the
/// connection without answering: no check expects that).
pub trait Conn: Send {
    /// A coordination command's answer.
    fn coord(&mut self, cmd: CoordCmd) -> Boxed<'_, StoreResp>;
    /// A record command's answer.
    fn store(&mut self, cmd: StoreCmd) -> Boxed<'_, StoreResp>;
}

/// Opens a fresh connection to the store, from any task.
pub type Connector = Arc<dyn Fn() -> Boxed<'static, Box<dyn Conn>> + Send + Sync>;

/// A coordination backend under test: a store process and whatever keeps its coordination.
pub trait Backend {
    /// Opens connections to the store as it is now (its address may change on a restart).
    fn connector(&self) -> Connector;
    /// A fresh connection to the store.
    fn connect(&self) -> Boxed<'static, Box<dyn Conn>> {
        (self.connector())()
    }
    /// `kill -9` of the store process, then a new one on the same journal (and engine).
    fn restart_store(&mut self) -> Boxed<'_, ()>;
    /// How many servers the coordination engine has (the store itself: one).
    fn members(&self) -> usize;
    /// Whether coordination still answers with one member down (a quorum of the rest).
    fn survives_one_member_down(&self) -> bool;
    /// Kills member `i` of the engine.
    fn kill_member(&mut self, i: usize) -> Boxed<'_, ()>;
    /// Starts member `i` again and waits until it serves.
    fn restart_member(&mut self, i: usize) -> Boxed<'_, ()>;
}

/// The checks by name, in the order [`suite`] runs them.
pub const CHECKS: [&str; 5] = [
    "grant_and_release",
    "lease_lapses_while_holder_paused",
    "tokens_across_restarts",
    "membership_churn",
    "cas_races",
];

/// A check's verdict: `Err` says what did not conform.
pub type Verdict = Result<(), String>;

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
    let mut s = b.connect().await;
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
    let mut s = b.connect().await;
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
    let mut s = b.connect().await;
    let mut last = granted(s.coord(lock(4, 0, LONG)).await)?;
    b.restart_store().await;
    let mut s = b.connect().await;
    let held = s.coord(lock(4, 1, LONG)).await;
    ensure!(
        held == StoreResp::Held { owner: 0 },
        "a lock forgotten by a store restart: {held:?}"
    );
    for i in 0..b.members() {
        b.kill_member(i).await;
        if b.survives_one_member_down() {
            let t = granted(s.coord(lock(100 + i as u64, 0, LONG)).await)?;
            ensure!(t > last, "token {t} after {last} with member {i} down");
            last = t;
        }
        b.restart_member(i).await;
        let mut again = b.connect().await;
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
    let mut s = b.connect().await;
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
    b.restart_store().await;
    let mut s = b.connect().await;
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
    let connect = b.connector();
    let racers = (0..8u32).map(|owner| {
        let connect = connect.clone();
        tokio::spawn(async move {
            let mut s = connect().await;
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
    let mut s = b.connect().await;
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
        let connect = connect.clone();
        tokio::spawn(async move {
            let mut s = connect().await;
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
pub async fn suite(b: &mut dyn Backend) -> Vec<(&'static str, String)> {
    let mut failed = Vec::new();
    let mut note = |name, v: Verdict| {
        if let Err(e) = v {
            failed.push((name, e));
        }
    };
    note(CHECKS[0], grant_and_release(b).await);
    note(CHECKS[1], lease_lapses_while_holder_paused(b).await);
    note(CHECKS[2], tokens_across_restarts(b).await);
    note(CHECKS[3], membership_churn(b).await);
    note(CHECKS[4], cas_races(b).await);
    failed
}
