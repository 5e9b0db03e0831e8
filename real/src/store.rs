//! `conductor store`: the store (the database), optionally durable through a journal.

use crate::command::Command;
use crate::flags::{addr, containers, within, Limits, Log};
use crate::journal;
use crate::primary;
use crate::service::{self, json_lines};
use anyhow::{bail, Context};
use checker::final_state::FinalLine;
use conductor::coordination::Coordination;
use conductor::op::Status;
use conductor::rpc::lock;
use conductor::store::{self, StoreState};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex, OnceLock};

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
    /// stops the store, exit 2). The store holds an exclusive lock on it: a second store
    /// process given the same FILE is a standby (`standby ADDR` on stdout, not listening)
    /// until the first exits or dies, then replays the journal and serves.
    #[arg(long, value_name = "FILE")]
    journal: Option<PathBuf>,
    /// With --journal, force each write to disk before answering (survives a machine crash).
    #[arg(long, requires = "journal")]
    sync: bool,
    /// The store records no events; on SIGINT/SIGTERM it writes its final state (records and
    /// open ops) as JSON lines to this log, for `check-history`'s liveness invariants.
    #[command(flatten)]
    log: Log,
    /// Keep locks, leases, membership and fencing tokens in the etcd cluster at these client
    /// URLs (`http://HOST:PORT`, comma-separated) instead of in this process; records and op
    /// records stay in the journal. Needs the binary built with the cargo feature `etcd`.
    #[arg(long, value_name = "URL,...", value_delimiter = ',')]
    etcd: Vec<String>,
    /// With --etcd, the prefix of every key this deployment keeps there.
    #[arg(long, value_name = "PREFIX", default_value = "/conductor/", requires = "etcd")]
    etcd_prefix: String,
    /// With --etcd, how long a call etcd does not answer (no quorum) is retried before the
    /// connection that asked is closed (its peer dials again and asks again).
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = crate::flags::positive_duration, requires = "etcd")]
    etcd_patience: std::time::Duration,
}

impl Command for Args {
    fn flag_problem(&self) -> Option<String> {
        crate::flags::etcd_problem(&self.etcd)
    }

    async fn run(self) -> anyhow::Result<ExitCode> {
        let log = json_lines("store", &self.log)?;
        let hosts = self.hosts;
        // Set once the store is the journal's primary and has replayed it: a standby told to
        // stop has no state of its own to write.
        let state: Arc<OnceLock<Arc<Mutex<StoreState>>>> = Arc::default();
        let at_stop = {
            let state = state.clone();
            move || {
                if let Some(st) = state.get() {
                    for line in FinalLine::of_store(&lock(st), hosts) {
                        log.write(&line);
                    }
                }
            }
        };
        service::run_then(serve(self, state), at_stop).await
    }
}

impl Args {
    /// The outside coordination engine, if `--etcd` names one.
    #[cfg(feature = "etcd")]
    async fn engine(&self) -> anyhow::Result<Option<Arc<dyn Coordination>>> {
        if self.etcd.is_empty() {
            return Ok(None);
        }
        let etcd = crate::etcd::Etcd::connect(&self.etcd, &self.etcd_prefix, self.etcd_patience)
            .await?;
        Ok(Some(Arc::new(etcd)))
    }

    /// Without the `etcd` feature there is none (`flag_problem` refused `--etcd`).
    #[cfg(not(feature = "etcd"))]
    async fn engine(&self) -> anyhow::Result<Option<Arc<dyn Coordination>>> {
        Ok(None)
    }

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

async fn serve(a: Args, slot: Arc<OnceLock<Arc<Mutex<StoreState>>>>) -> anyhow::Result<()> {
    let engine = a.engine().await?;
    // The port first (a standby keeps it, refusing connections), then the journal's one
    // writer: a standby waits here until the primary is gone.
    let socket = service::reserve(a.listen)?;
    let primary = match &a.journal {
        Some(path) => {
            let at = socket.local_addr().context("cannot read the bound address")?;
            Some(primary::take(path, at, a.sync).await?)
        }
        None => None,
    };
    let st = Arc::new(Mutex::new(a.open()?));
    let _ = slot.set(st.clone());
    let listener = service::listen_reserved(socket, &a.limits)?;
    if let Some(t) = primary.as_ref().and_then(|p| p.took_over) {
        // The takeover's cost: replaying what the old primary journalled.
        eprintln!(
            "conductor: primary: listening {:.3} s after taking the journal (its replay)",
            t.elapsed().as_secs_f64()
        );
    }
    store::serve_with(listener, st, engine)
        .await
        .context("the store stopped")?;
    bail!("the store stopped accepting connections")
}
