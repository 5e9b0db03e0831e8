//! `conductor conductor`: one conductor, with its RPC slots, executor pool and overflow policy.

use crate::command::Command;
use crate::flags::{addr, duration, within, Cluster, Log, Wait};
use scenario::bounds;
use crate::service::{self, reach, reach_any, recorder};
use anyhow::bail;
use conductor::cluster::{Ordering, Routing};
use conductor::conductor::{self as cond, ConductorConfig, Overflow, RecoveryPolicy};
use conductor::net::Net;
use conductor::retry::{Backoff, RetryPolicy};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::ExitCode;
use std::time::Duration;

/// A conductor: RPC slots, the executor pool and its overflow policy.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// This conductor's index (conductor-N has index N-1).
    #[arg(long)]
    index: u32,
    /// The bus's address.
    #[arg(long, value_parser = addr)]
    bus: SocketAddr,
    /// The store's address; several, comma-separated, for store processes serving one
    /// deployment (one primary at a time): a connection lost moves on to the next that answers.
    #[arg(long, value_name = "ADDR,...", required = true, value_delimiter = ',', value_parser = addr)]
    store: Vec<SocketAddr>,
    /// The hosts' addresses, in index order.
    #[arg(long = "host", value_name = "ADDR", required = true, num_args = 1.., value_parser = addr)]
    hosts: Vec<SocketAddr>,
    /// RPC slots taking deliveries from the bus.
    #[arg(long, default_value_t = 64, value_parser = within(bounds::RPC_WORKERS))]
    rpc_workers: u32,
    /// Executor pool workers.
    #[arg(long, default_value_t = 10, value_parser = within(bounds::POOL_WORKERS))]
    pool_workers: u32,
    /// What an async op does when every pool worker is busy.
    #[arg(long, value_enum, default_value_t = Overflow::CallerRuns)]
    overflow: Overflow,
    #[command(flatten)]
    cluster: Cluster,
    /// How ops on one container are kept apart.
    #[arg(long, value_enum, default_value_t = Ordering::None)]
    ordering: Ordering,
    /// Restart recovery of the ops this conductor owned (`--recovery` alone: zun).
    #[arg(long, value_enum, default_value_t = RecoveryPolicy::None, num_args = 0..=1,
          default_missing_value = "zun")]
    recovery: RecoveryPolicy,
    /// Period of the reconciler (0s: off).
    #[arg(long, value_name = "DURATION", default_value = "0s", value_parser = humantime::parse_duration)]
    reconcile_interval: Duration,
    /// Age after which an op nobody live owns is dispatched again (0s: off).
    #[arg(long, value_name = "DURATION", default_value = "0s", value_parser = humantime::parse_duration)]
    orphan_after: Duration,
    /// Backoff of `state-check`'s re-queued ops (a scenario's `retry.policy`).
    #[arg(long, value_enum, default_value_t = Backoff::FullJitter)]
    retry_policy: Backoff,
    /// The first re-queue delay (`retry.base`).
    #[arg(long, value_name = "DURATION", default_value = "100ms", value_parser = duration)]
    retry_base: Duration,
    /// The largest re-queue delay (`retry.cap`).
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = duration)]
    retry_cap: Duration,
    /// Attempts in all, first included, before `state-check` gives an op up
    /// (`retry.max_attempts`).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=100))]
    retry_max_attempts: u32,
    #[command(flatten)]
    log: Log,
    #[command(flatten)]
    wait: Wait,
}

impl Command for Args {
    fn flag_problem(&self) -> Option<String> {
        (self.retry_base > self.retry_cap).then(|| {
            format!(
                "--retry-base {} is above --retry-cap {}",
                humantime::format_duration(self.retry_base),
                humantime::format_duration(self.retry_cap)
            )
        })
    }

    async fn run(self) -> anyhow::Result<ExitCode> {
        service::run(serve(self)).await
    }
}

async fn serve(a: Args) -> anyhow::Result<()> {
    let rec = recorder(&format!("conductor-{}", u64::from(a.index) + 1), &a.log)?;
    reach_any("the store", &a.store, a.wait.wait).await?;
    for (i, &h) in a.hosts.iter().enumerate() {
        reach(&format!("host-{}", i + 1), h, a.wait.wait).await?;
    }
    reach("the bus", a.bus, a.wait.wait).await?;
    let cfg = ConductorConfig {
        index: a.index,
        conductors: a.cluster.conductors,
        rpc_workers: a.rpc_workers,
        pool_workers: a.pool_workers,
        overflow: a.overflow,
        routing: a.cluster.routing,
        ordering: a.ordering,
        strategy: None,
        lease_ttl: a.cluster.lease_ttl,
        recovery: a.recovery,
        reconcile_interval: a.reconcile_interval,
        orphan_after: a.orphan_after,
        membership: a.cluster.routing == Routing::Affinity,
        retry: RetryPolicy {
            backoff: a.retry_policy,
            base: a.retry_base,
            cap: a.retry_cap,
            max_attempts: a.retry_max_attempts,
        },
        budget_ratio: 0.0,
        budget_min_per_s: 0.0,
        bus: a.bus,
        store: a.store[0],
        other_stores: a.store[1..].to_vec(),
        hosts: a.hosts.into(),
        net: Net::Tcp,
        ip: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
    };
    let refused = cond::run(cfg, rec).await;
    bail!("the bus refused conductor --index {}: {refused}", a.index)
}
