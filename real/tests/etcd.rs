//! What only the store on etcd does (issue 14; `conductor store --etcd`): it survives losing
//! quorum without granting anything. What every backend must do is in `conformance.rs`. The
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
