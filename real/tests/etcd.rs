//! What only the store on etcd does (issue 14; `conductor store --etcd`): it survives losing
//! quorum without granting anything; two store processes on one journal, their coordination in
//! etcd, hand over from a killed primary to the standby with every lock and token kept, and a
//! deployment on them breaks nothing when the primary is killed mid-load. What every backend must do is in `conformance.rs`. The
//! test starts its own cluster (Debian's etcd 3.4, loopback, random free ports, data on tmpfs)
//! and stops every process by its handle.
//!
//! Real build with the `etcd` feature only: `RUSTFLAGS= CARGO_TARGET_DIR=target/real cargo
//! test --release -p real --features etcd --test etcd`.
#![cfg(all(not(madsim), feature = "etcd"))]

use conductor::proto::{CoordCmd, Msg, StoreResp};
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

mod common;
use common::etcd::EtcdCluster;
use common::store_client::{Reply, StoreClient as Store};
use common::{scratch, start, Proc, PATIENCE};

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

/// The standby takes over from a SIGKILLed primary with coordination in etcd: the lock the old
/// primary granted is still held, tokens grow, re-sent requests are not applied twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standby_on_etcd_takes_over_when_the_primary_dies() {
    let dir = scratch("etcd-takeover");
    let etcd = EtcdCluster::start("takeover", 3);
    let endpoints = etcd.endpoints();
    common::takeover::standby_takes_over(&dir, &["--etcd", &endpoints]).await;
}

/// `conductor cluster --stores 2 --etcd …`: the reference configuration with the primary store
/// and a conductor killed mid-load; the api and the conductors move to the standby, nothing
/// accepted is lost and nothing breaks.
#[test]
fn two_stores_on_etcd_the_primary_killed_break_nothing() {
    let dir = scratch("etcd-two-stores");
    let etcd = EtcdCluster::start("twostores", 3);
    let scenario = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/real/reference.toml");
    let out = std::process::Command::new(common::BIN)
        .arg("cluster")
        .arg(&scenario)
        .arg("--out")
        .arg(&dir)
        .args(["--stores", "2", "--etcd", &etcd.endpoints()])
        .args(["--for", "8s", "--drain", "6s", "--set"])
        .arg(
            r#"faults=[{kind="kill",at="2s",node="conductor-2",restart_after="2s"},{kind="kill",at="4s",node="store",restart_after="1s"}]"#,
        )
        .output()
        .expect("run conductor cluster");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let s: serde_json::Value = std::fs::read_to_string(dir.join("cluster.json"))
        .ok()
        .and_then(|s| serde_json::from_str(&s).ok())
        .unwrap_or(serde_json::Value::Null);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert_eq!(s["violations"], 0, "{s}");
    assert_eq!(s["problems"], serde_json::json!([]), "{s}");
    assert_eq!(s["restarts"]["store"], 1, "{s}");
    assert_eq!(s["unfinished"], 0, "{s}");
    let standby = std::fs::read_to_string(dir.join("store-2.0.stderr")).unwrap_or_default();
    assert!(standby.contains("took over the journal"), "{standby}");
}
