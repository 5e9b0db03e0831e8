//! `conductor bus`: the message bus, a shared topic and one queue per conductor.

use crate::command::Command;
use crate::flags::{addr, Limits, Log};
use crate::service::{self, listen};
use anyhow::bail;
use conductor::bus::{self, BusConfig};
use std::net::SocketAddr;
use std::process::ExitCode;

/// The message bus: a shared topic and one queue per conductor.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Address to listen on.
    #[arg(long, value_parser = addr)]
    listen: SocketAddr,
    #[command(flatten)]
    limits: Limits,
    /// Unacknowledged deliveries a conductor may hold (0 = unlimited).
    #[arg(long, default_value_t = 0)]
    prefetch: u32,
    /// The log: the bus records no op's events, only the frames its links delivered.
    #[command(flatten)]
    log: Log,
}

impl Command for Args {
    async fn run(self) -> anyhow::Result<ExitCode> {
        service::run(serve(self)).await
    }
}

async fn serve(a: Args) -> anyhow::Result<()> {
    service::recorder("bus", &a.log)?;
    let listener = listen(a.listen, &a.limits).await?;
    bus::serve(
        listener,
        BusConfig {
            prefetch: a.prefetch,
            clock: std::sync::Arc::new(conductor::recorder::wall_clock_us),
        },
    )
    .await;
    bail!("the bus stopped accepting connections")
}
