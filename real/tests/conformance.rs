//! The coordination conformance suite (issue 14): one set of checks — lock grant and release,
//! a lease lapsing while its holder is paused, fencing tokens across restarts, membership churn,
//! compare-and-swap races — run against every coordination backend behind [`Backend`]: the
//! store's own (its journal) and, with the cargo feature `etcd`, a real 3-member etcd cluster
//! (`store --etcd`). Both must give the same outcomes; a deliberately wrong backend (a store
//! without a journal: its tokens start over after a restart) must fail the suite.
//!
//! The checks themselves are `conformance/checks.rs`, shared with the simulator's suite
//! (`sim/tests/conformance.rs`, against its etcd model): this file has the real backends.
//!
//! Real build only: `RUSTFLAGS= CARGO_TARGET_DIR=target/real cargo test --release -p real
//! [--features etcd] --test conformance`. Loopback; every process stopped by its handle.
#![cfg(not(madsim))]

use conductor::proto::{CoordCmd, StoreCmd, StoreResp};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[path = "conformance/checks.rs"]
mod checks;
mod common;
use checks::{suite, Backend, Boxed, Conn, Connector};
#[cfg(feature = "etcd")]
use common::etcd::EtcdCluster;
use common::store_client::StoreClient;
use common::{scratch, start, Proc};

impl Conn for StoreClient {
    fn coord(&mut self, cmd: CoordCmd) -> Boxed<'_, StoreResp> {
        Box::pin(StoreClient::coord(self, cmd))
    }
    fn store(&mut self, cmd: StoreCmd) -> Boxed<'_, StoreResp> {
        Box::pin(StoreClient::store(self, cmd))
    }
}

/// Connections to the store at `addr`.
fn connector(addr: SocketAddr) -> Connector {
    Arc::new(move || {
        Box::pin(async move { Box::new(StoreClient::connect(addr).await) as Box<dyn Conn> })
    })
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
    fn kill(&mut self, _: usize) {
        if let Some(mut p) = self.proc.take() {
            kill(&mut p);
        }
    }

    fn restart(&mut self, _: usize) {
        let (p, addr) = start_store(&self.dir, self.journal, &[]);
        self.proc = Some(p);
        self.addr = addr;
    }

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
    fn connector(&self) -> Connector {
        connector(self.addr)
    }
    fn restart_store(&mut self) -> Boxed<'_, ()> {
        self.kill(0);
        self.restart(0);
        Box::pin(async {})
    }
    fn members(&self) -> usize {
        1
    }
    fn survives_one_member_down(&self) -> bool {
        false
    }
    fn kill_member(&mut self, i: usize) -> Boxed<'_, ()> {
        self.kill(i);
        Box::pin(async {})
    }
    fn restart_member(&mut self, i: usize) -> Boxed<'_, ()> {
        self.restart(i);
        Box::pin(async {})
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
    fn connector(&self) -> Connector {
        connector(self.addr)
    }
    fn restart_store(&mut self) -> Boxed<'_, ()> {
        kill(&mut self.proc);
        let (p, addr) = start_store(&self.dir, true, &Self::flags(&self.etcd));
        self.proc = p;
        self.addr = addr;
        Box::pin(async {})
    }
    fn members(&self) -> usize {
        3
    }
    fn survives_one_member_down(&self) -> bool {
        true
    }
    fn kill_member(&mut self, i: usize) -> Boxed<'_, ()> {
        self.etcd.kill(i);
        Box::pin(async {})
    }
    fn restart_member(&mut self, i: usize) -> Boxed<'_, ()> {
        self.etcd.restart(i);
        self.etcd.wait_healthy();
        Box::pin(async {})
    }
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
