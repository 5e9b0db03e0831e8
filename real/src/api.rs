//! `conductor api`: the API (magnum-api / zun-api), persisting ops in the store and sending them
//! through the bus.

use crate::command::Command;
use crate::flags::{addr, positive_duration, Cluster, Limits, Log, Wait};
use crate::service::{self, announce, listen, reach, reach_any, recorder};
use anyhow::{bail, Context};
use conductor::api::{self, ApiConfig, RpcKind};
use conductor::net::Net;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

/// The API (magnum-api / zun-api): persists ops and sends them through the bus.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Address to listen on for clients.
    #[arg(long, value_parser = addr)]
    listen: SocketAddr,
    /// Also serve Zun's container API over HTTP on this address (`POST /v1/containers`, …):
    /// each request becomes an op sent to this API; announced as `http ADDR` on stdout.
    #[arg(long, value_name = "ADDR", value_parser = addr)]
    http: Option<SocketAddr>,
    #[command(flatten)]
    limits: Limits,
    /// The store's address; several, comma-separated, for store processes serving one
    /// deployment (one primary at a time): a connection lost moves on to the next that answers.
    #[arg(long, value_name = "ADDR,...", required = true, value_delimiter = ',', value_parser = addr)]
    store: Vec<SocketAddr>,
    /// The bus's address.
    #[arg(long, value_parser = addr)]
    bus: SocketAddr,
    /// Refuse ops the container's status does not allow (Zun's 409); off = Magnum 2015.
    #[arg(long)]
    validate_state: bool,
    /// How async ops go to the conductors.
    #[arg(long, value_enum, default_value_t = RpcKind::Call)]
    async_rpc: RpcKind,
    /// How long a call waits for the conductor.
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = positive_duration)]
    rpc_timeout: Duration,
    #[command(flatten)]
    cluster: Cluster,
    #[command(flatten)]
    log: Log,
    #[command(flatten)]
    wait: Wait,
}

impl Command for Args {
    async fn run(self) -> anyhow::Result<ExitCode> {
        service::run(serve(self)).await
    }
}

async fn serve(a: Args) -> anyhow::Result<()> {
    let rec = recorder("api", &a.log)?;
    let listener = listen(a.listen, &a.limits).await?;
    if let Some(http) = a.http {
        let own = listener
            .local_addr()
            .context("cannot read the bound address")?;
        let l = tokio::net::TcpListener::bind(http)
            .await
            .with_context(|| format!("cannot listen for HTTP on {http}"))?;
        let local = l.local_addr().context("cannot read the bound HTTP address")?;
        announce(&format!("http {local}"))?;
        tokio::spawn(crate::http_api::serve(l, own, a.limits.get()));
    }
    reach_any("the store", &a.store, a.wait.wait).await?;
    reach("the bus", a.bus, a.wait.wait).await?;
    let cfg = ApiConfig {
        validate_state: a.validate_state,
        async_rpc: a.async_rpc,
        rpc_timeout: a.rpc_timeout,
        routing: a.cluster.routing,
        conductors: a.cluster.conductors,
        lease_ttl: a.cluster.lease_ttl,
        store: a.store[0],
        other_stores: a.store[1..].to_vec(),
        bus: a.bus,
        net: Net::Tcp,
        ip: a.listen.ip(),
    };
    api::serve(listener, cfg, rec).await;
    bail!("the API stopped accepting connections")
}
