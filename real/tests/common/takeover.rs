//! Two store processes on one journal (`conductor store --journal FILE` twice): the second is
//! a standby until the first dies, then serves what the first acknowledged — the same records,
//! the same locks, larger tokens — and answers requests re-sent to it idempotently. Shared by
//! the default tests (coordination in the journal) and the etcd ones (`--etcd`).

use super::store_client::StoreClient;
use super::{start, start_lines, Proc, PATIENCE};
use conductor::op::OpKind;
use conductor::proto::{CoordCmd, OpSpec, StoreCmd, StoreResp};
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

/// A lock request for a minute's lease.
pub fn lock(container: u64, owner: u32) -> CoordCmd {
    CoordCmd::Lock {
        container,
        owner,
        ttl_us: 60_000_000,
    }
}

/// A grant's token (panics on anything else).
pub fn token(r: StoreResp) -> u64 {
    match r {
        StoreResp::Locked { token } | StoreResp::Began { token } => token,
        other => panic!("expected a grant, got {other:?}"),
    }
}

/// The arguments of a store on `journal` with 10 running containers, then `extra`.
fn store_args(journal: &Path, extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = [
        "store",
        "--listen",
        "127.0.0.1:0",
        "--hosts",
        "1",
        "--containers",
        "10",
        "--journal",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.push(journal.display().to_string());
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

/// Starts the primary and then the standby on one journal in `dir`: the processes and their
/// addresses (the standby's is the port it holds).
pub fn primary_and_standby(dir: &Path, extra: &[&str]) -> ((Proc, SocketAddr), (Proc, SocketAddr)) {
    let args = store_args(&dir.join("store.journal"), extra);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (a, addr_a) = start("store-a", &args, true);
    let (b, lines) = start_lines("store-b", &args, 1);
    let addr_b = lines[0]
        .strip_prefix("standby ")
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| {
            panic!(
                "the second store printed {:?}, not `standby ADDR`",
                lines[0]
            )
        });
    ((a, addr_a.expect("the primary listens")), (b, addr_b))
}

/// Connects to `addr` once something listens there (within PATIENCE).
pub async fn connect_when_listening(addr: SocketAddr) -> StoreClient {
    let t0 = Instant::now();
    while tokio::net::TcpStream::connect(addr).await.is_err() {
        assert!(t0.elapsed() < PATIENCE, "nothing listens at {addr}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    StoreClient::connect(addr).await
}

/// The whole check: the standby refuses connections, the primary acknowledges a lock, an op
/// and its begin, is SIGKILLed; the standby takes over with the lock still held and the op
/// still open, answers the op's accept and begin re-sent (as a client whose answer was lost
/// re-sends them) without applying them again, and grants a larger token.
pub async fn standby_takes_over(dir: &Path, extra: &[&str]) {
    let ((mut a, addr_a), (mut b, addr_b)) = primary_and_standby(dir, extra);
    assert!(
        tokio::net::TcpStream::connect(addr_b).await.is_err(),
        "a standby must refuse connections, so that clients move to the primary"
    );
    let mut s = StoreClient::connect(addr_a).await;
    let held = token(s.coord(lock(1, 0)).await);
    let op = OpSpec {
        id: 100,
        container: 2,
        kind: OpKind::Stop,
        intended_us: 0,
        deadline: None,
    };
    let accept = StoreCmd::Accept { op, validate: true };
    let begin = StoreCmd::Begin {
        op: 100,
        owner: 0,
        check: true,
        reissue: false,
    };
    assert!(
        matches!(s.store(accept).await, StoreResp::Accepted { .. }),
        "the primary accepts the op"
    );
    let began = token(s.store(begin).await);
    let record = s.store(StoreCmd::Get { container: 2 }).await;
    b.assert_running();
    let _ = a.child.kill();
    let _ = a.child.wait();

    let mut s = connect_when_listening(addr_b).await;
    assert!(
        matches!(s.store(accept).await, StoreResp::KeyReused(_)),
        "an accept re-sent to the new primary is the op already open, not a second op"
    );
    assert_eq!(
        s.store(begin).await,
        StoreResp::Busy,
        "a begin re-sent to the new primary does not run the op twice"
    );
    assert_eq!(
        s.store(StoreCmd::Get { container: 2 }).await,
        record,
        "the record is as the old primary left it: nothing re-sent was applied again"
    );
    assert_eq!(
        s.coord(lock(1, 1)).await,
        StoreResp::Held { owner: 0 },
        "the lock granted by the old primary is still held"
    );
    let later = token(s.coord(lock(3, 1)).await);
    assert!(
        later > held.max(began),
        "tokens grow across the takeover: {later} after {held} and {began}"
    );
    assert_eq!(
        s.store(StoreCmd::Finish { op: 100, ok: true }).await,
        StoreResp::Ok
    );
    assert_eq!(
        s.store(StoreCmd::Finish { op: 100, ok: true }).await,
        StoreResp::NotFound,
        "a finish re-sent is answered, not applied twice"
    );
    b.assert_running();
}
