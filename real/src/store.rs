//! `conductor store`: the store (the database), optionally durable through a journal.

use crate::command::Command;
use crate::flags::addr;
use crate::journal;
use crate::service::{self, listen};
use anyhow::{bail, Context};
use conductor::op::Status;
use conductor::store::{self, StoreState};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

/// The store (the database), with `--containers` containers pre-created, running.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Address to listen on.
    #[arg(long, value_parser = addr)]
    listen: SocketAddr,
    /// Number of hosts containers are placed on (round-robin).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    hosts: u32,
    /// Containers 0..N to pre-create, running; container c is placed on host c % hosts.
    /// Ignored when the journal already holds a store.
    #[arg(long, default_value_t = 0)]
    containers: u64,
    /// Keep the store durable across its restarts: a write-ahead journal of checksummed JSON
    /// lines, replayed at start (a torn last line is cut off with a warning; a corrupt one
    /// stops the store, exit 2).
    #[arg(long, value_name = "FILE")]
    journal: Option<PathBuf>,
    /// With --journal, force each write to disk before answering (survives a machine crash).
    #[arg(long, requires = "journal")]
    sync: bool,
    // The store records no events, so it takes no --log.
}

impl Command for Args {
    async fn run(self) -> anyhow::Result<ExitCode> {
        service::run(serve(self)).await
    }
}

async fn serve(a: Args) -> anyhow::Result<()> {
    let mut st = match &a.journal {
        Some(path) => journal::open(path, |path| StoreState::open(path, a.hosts, a.sync))?,
        None => StoreState::new(a.hosts),
    };
    if st.is_empty() {
        for id in 0..a.containers {
            st.precreate_durably(id, Status::Running)
                .context("cannot write the journal")?;
        }
    }
    let listener = listen(a.listen).await?;
    store::serve(listener, Arc::new(Mutex::new(st)))
        .await
        .context("the store stopped")?;
    bail!("the store stopped accepting connections")
}
