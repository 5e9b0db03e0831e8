//! `conductor store`: the store (the database), optionally durable through a journal.

use crate::command::Command;
use crate::flags::{addr, containers, within, Limits, Log};
use crate::journal;
use crate::service::{self, json_lines, listen};
use anyhow::{bail, Context};
use checker::final_state::FinalLine;
use conductor::op::Status;
use conductor::rpc::lock;
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
    #[command(flatten)]
    limits: Limits,
    /// Number of hosts containers are placed on (round-robin).
    #[arg(long, value_parser = within(scenario::bounds::HOSTS))]
    hosts: u32,
    /// Containers 0..N to pre-create, running; container c is placed on host c % hosts.
    /// Ignored when the journal already holds a store.
    #[arg(long, default_value_t = 0, value_parser = containers())]
    containers: u64,
    /// Keep the store durable across its restarts: a write-ahead journal of checksummed JSON
    /// lines, replayed at start (a torn last line is cut off with a warning; a corrupt one
    /// stops the store, exit 2).
    #[arg(long, value_name = "FILE")]
    journal: Option<PathBuf>,
    /// With --journal, force each write to disk before answering (survives a machine crash).
    #[arg(long, requires = "journal")]
    sync: bool,
    /// The store records no events; on SIGINT/SIGTERM it writes its final state (records and
    /// open ops) as JSON lines to this log, for `check-history`'s liveness invariants.
    #[command(flatten)]
    log: Log,
}

impl Command for Args {
    async fn run(self) -> anyhow::Result<ExitCode> {
        let log = json_lines("store", &self.log)?;
        let hosts = self.hosts;
        let state = Arc::new(Mutex::new(self.open()?));
        let at_stop = {
            let state = state.clone();
            move || {
                for line in FinalLine::of_store(&lock(&state), hosts) {
                    log.write(&line);
                }
            }
        };
        service::run_then(serve(self, state), at_stop).await
    }
}

impl Args {
    /// The store's state: replayed from the journal, or fresh with the pre-created containers.
    fn open(&self) -> anyhow::Result<StoreState> {
        let mut st = match &self.journal {
            Some(path) => {
                journal::open(path, |path| StoreState::open(path, self.hosts, self.sync))?
            }
            None => StoreState::new(self.hosts),
        };
        if st.is_empty() {
            for id in 0..self.containers {
                st.precreate_durably(id, Status::Running)
                    .context("cannot write the journal")?;
            }
        }
        Ok(st)
    }
}

async fn serve(a: Args, st: Arc<Mutex<StoreState>>) -> anyhow::Result<()> {
    let listener = listen(a.listen, &a.limits).await?;
    store::serve(listener, st)
        .await
        .context("the store stopped")?;
    bail!("the store stopped accepting connections")
}
