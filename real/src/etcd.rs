//! The store's coordination on etcd (`conductor store --etcd URL,...`, cargo feature `etcd`):
//! locks, leases, membership and fencing tokens are etcd's keys, leases and revisions, so that
//! a store process holds none of them.
//!
//! Under the prefix (`--etcd-prefix`, default `/conductor/`):
//! - `lock/C` — container C's lock: created only if absent (`create_revision == 0`), attached to
//!   a lease of the lock's TTL, kept alive by the holder's renewals; its value is the holder's
//!   index. Its `create_revision` is the **fencing token**: etcd's revision is cluster-wide and
//!   only grows (across member restarts and leader changes), so every later grant's is larger.
//! - `token` — written once per op a conductor begins (`state-check`): the write's revision is
//!   the op's token, from the same counter as the locks'.
//! - `member/M/alive` — conductor M's membership, leased (its heartbeats keep the lease alive);
//!   `member/M/joined` — unleased, so that a member whose lease lapsed is told from one that
//!   never joined (`Lapsed`).
//!
//! A call etcd does not answer (no quorum: the client asks for a leader, so it fails fast) is
//! retried for `patience`, with the outage reported on stderr when it starts and when it ends;
//! after that the store closes the connection and its peer asks again.

use anyhow::Context;
use conductor::coordination::{lease_ttl_s, KvEngine};
use conductor::proto::StoreResp;
use conductor::rpc::lock;
use etcd_client::{
    Client, Compare, CompareOp, ConnectOptions, GetOptions, PutOptions, Txn, TxnOp, TxnOpResponse,
};
use std::collections::BTreeSet;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The store's coordination engine on an etcd cluster.
pub struct Etcd {
    client: Client,
    prefix: String,
    /// How long a call is retried before the connection that asked is closed.
    patience: Duration,
    /// Since when etcd has not answered (an outage under way), for the warnings.
    outage: Mutex<Option<Outage>>,
}

/// An outage under way: calls have failed since `since`.
struct Outage {
    since: Instant,
    /// Whether it was said (it lasted past [`BLIP`]).
    warned: bool,
}

/// How long etcd may fail to answer before it is said to be unavailable: a member down costs
/// a try or two on its endpoint (tens of ms), quorum lost costs seconds.
const BLIP: Duration = Duration::from_millis(250);

type Failed = etcd_client::Error;

/// A lease's TTL in etcd's whole seconds.
fn lease_ttl(ttl_us: u64) -> i64 {
    i64::try_from(lease_ttl_s(ttl_us)).unwrap_or(i64::MAX)
}

/// A revision as a token: etcd's revisions start at 1 and are never negative.
fn token_of(revision: i64) -> u64 {
    u64::try_from(revision).unwrap_or(0)
}

impl Etcd {
    /// Connects to the cluster at `endpoints` (`http://HOST:PORT`; several: the client moves
    /// between them), keys under `prefix`.
    pub async fn connect(
        endpoints: &[String],
        prefix: &str,
        patience: Duration,
    ) -> anyhow::Result<Etcd> {
        let options = ConnectOptions::new()
            // Fail at once without a leader (quorum lost) rather than wait for one.
            .with_require_leader(true)
            .with_timeout(Duration::from_secs(2))
            .with_connect_timeout(Duration::from_secs(1))
            .with_keep_alive(Duration::from_secs(1), Duration::from_secs(1));
        let client = Client::connect(endpoints, Some(options))
            .await
            .with_context(|| format!("cannot connect to etcd at {}", endpoints.join(",")))?;
        Ok(Etcd {
            client,
            prefix: prefix.to_string(),
            patience,
            outage: Mutex::new(None),
        })
    }

    fn key(&self, rest: &str) -> String {
        format!("{}{rest}", self.prefix)
    }

    /// Keeps lease `id` alive once: whether it was still alive.
    async fn keep_alive(c: &mut Client, id: i64) -> Result<bool, Failed> {
        let (mut keeper, mut stream) = c.lease_keep_alive(id).await?;
        keeper.keep_alive().await?;
        Ok(stream.message().await?.is_some_and(|r| r.ttl() > 0))
    }
}

impl KvEngine for Etcd {
    type Error = Failed;

    fn patience(&self) -> Duration {
        self.patience
    }

    fn failed(&self, what: &str, e: &Failed, tried: tokio::time::Instant) {
        let mut outage = lock(&self.outage);
        let o = outage.get_or_insert(Outage {
            since: tried.into_std(),
            warned: false,
        });
        // A blip (one member down: the next try goes to another) is not an outage; one that
        // lasts is said, with when it began.
        if !o.warned && o.since.elapsed() >= BLIP {
            o.warned = true;
            eprintln!(
                "conductor: warning: etcd unavailable for {:.3} s ({what}: {e}); retrying",
                o.since.elapsed().as_secs_f64()
            );
        }
    }

    fn answered(&self) {
        if let Some(o) = lock(&self.outage).take().filter(|o| o.warned) {
            eprintln!(
                "conductor: etcd answers again after {:.3} s unavailable",
                o.since.elapsed().as_secs_f64()
            );
        }
    }

    async fn lock_container(
        &self,
        container: u64,
        owner: u32,
        ttl_us: u64,
    ) -> Result<StoreResp, Failed> {
        let key = self.key(&format!("lock/{container}"));
        let mut c = self.client.clone();
        let lease = c.lease_grant(lease_ttl(ttl_us), None).await?.id();
        let txn = Txn::new()
            .when([Compare::create_revision(key.clone(), CompareOp::Equal, 0)])
            .and_then([TxnOp::put(
                key.clone(),
                owner.to_string(),
                Some(PutOptions::new().with_lease(lease)),
            )])
            .or_else([TxnOp::get(key, None)]);
        let resp = c.txn(txn).await?;
        if resp.succeeded() {
            // The key was created by this transaction: its create_revision is the
            // transaction's revision.
            let revision = resp.header().map_or(0, |h| h.revision());
            return Ok(StoreResp::Locked {
                token: token_of(revision),
            });
        }
        // Held: the lease granted for it is not needed (it would lapse anyway).
        let _ = c.lease_revoke(lease).await;
        let holder = resp
            .op_responses()
            .into_iter()
            .find_map(|r| match r {
                TxnOpResponse::Get(g) => g.kvs().first().map(|kv| kv.value().to_vec()),
                _ => None,
            })
            .and_then(|v| String::from_utf8(v).ok())
            .and_then(|v| v.parse().ok())
            .unwrap_or(u32::MAX);
        Ok(StoreResp::Held { owner: holder })
    }

    async fn renew(&self, container: u64, token: u64) -> Result<StoreResp, Failed> {
        let mut c = self.client.clone();
        let resp = c.get(self.key(&format!("lock/{container}")), None).await?;
        let stale = StoreResp::Stale { version: 0 };
        let Some(kv) = resp.kvs().first() else {
            return Ok(stale);
        };
        if token_of(kv.create_revision()) != token {
            return Ok(stale);
        }
        Ok(if Etcd::keep_alive(&mut c, kv.lease()).await? {
            StoreResp::Ok
        } else {
            stale
        })
    }

    async fn unlock(&self, container: u64, token: u64) -> Result<StoreResp, Failed> {
        let key = self.key(&format!("lock/{container}"));
        let mut c = self.client.clone();
        let revision = i64::try_from(token).unwrap_or(i64::MAX);
        let txn = Txn::new()
            .when([Compare::create_revision(
                key.clone(),
                CompareOp::Equal,
                revision,
            )])
            .and_then([TxnOp::get(key.clone(), None), TxnOp::delete(key, None)]);
        let resp = c.txn(txn).await?;
        if resp.succeeded() {
            let lease = resp.op_responses().into_iter().find_map(|r| match r {
                TxnOpResponse::Get(g) => g.kvs().first().map(|kv| kv.lease()),
                _ => None,
            });
            if let Some(lease) = lease.filter(|&l| l != 0) {
                let _ = c.lease_revoke(lease).await;
            }
        }
        Ok(StoreResp::Ok)
    }

    async fn heartbeat(&self, member: u32, ttl_us: u64) -> Result<StoreResp, Failed> {
        let alive = self.key(&format!("member/{member}/alive"));
        let mut c = self.client.clone();
        let resp = c.get(alive.clone(), None).await?;
        if let Some(kv) = resp.kvs().first() {
            if Etcd::keep_alive(&mut c, kv.lease()).await? {
                return Ok(StoreResp::Ok);
            }
        }
        // Not a member, or its lease lapsed: join (again) under a fresh lease.
        let lease = c.lease_grant(lease_ttl(ttl_us), None).await?.id();
        let txn = Txn::new().and_then([
            TxnOp::put(alive, "", Some(PutOptions::new().with_lease(lease))),
            TxnOp::put(self.key(&format!("member/{member}/joined")), "", None),
        ]);
        c.txn(txn).await?;
        Ok(StoreResp::Ok)
    }

    async fn members(&self) -> Result<(BTreeSet<u32>, BTreeSet<u32>), Failed> {
        let mut c = self.client.clone();
        let prefix = self.key("member/");
        let resp = c
            .get(
                prefix.clone(),
                Some(GetOptions::new().with_prefix().with_keys_only()),
            )
            .await?;
        let (mut joined, mut alive) = (BTreeSet::new(), BTreeSet::new());
        for kv in resp.kvs() {
            let Some(rest) = kv.key().strip_prefix(prefix.as_bytes()) else {
                continue;
            };
            let rest = String::from_utf8_lossy(rest);
            let Some((index, what)) = rest.split_once('/') else {
                continue;
            };
            let Ok(index) = index.parse::<u32>() else {
                continue;
            };
            match what {
                "joined" => joined.insert(index),
                "alive" => alive.insert(index),
                _ => false,
            };
        }
        Ok((joined, alive))
    }

    async fn fresh_token(&self) -> Result<u64, Failed> {
        let mut c = self.client.clone();
        let resp = c.put(self.key("token"), "", None).await?;
        Ok(token_of(resp.header().map_or(0, |h| h.revision())))
    }
}
