//! `conductor host`: a container host applying ops after their service time, drawn as the
//! simulator's hosts draw them ([`Backends`]: keyed by op and attempt, common random numbers),
//! from a scenario's `[backend]` or from the `--service*` flags.

use crate::command::{BadInput, Command};
use crate::flags::{addr, containers, duration, probability, within, Limits, Log};
use crate::journal;
use crate::service::{self, json_lines, listen};
use anyhow::{bail, Context};
use checker::final_state::FinalLine;
use conductor::rpc::lock;
use clap::ValueEnum;
use conductor::host::{self, HostState};
use conductor::op::Truth;
use scenario::host_model::{Backends, Sleep};
use scenario::{Backend, Dist};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A container host: applies ops after their service time.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Address to listen on.
    #[arg(long, value_parser = addr)]
    listen: SocketAddr,
    #[command(flatten)]
    limits: Limits,
    /// This host's index (host-N has index N-1).
    #[arg(long)]
    index: u32,
    /// Number of hosts in the deployment (to know which pre-created containers are here).
    #[arg(long, default_value_t = 1, value_parser = within(scenario::bounds::HOSTS))]
    hosts: u32,
    /// Containers 0..N pre-created (running) in the store: this host holds those with
    /// c % hosts == index, as the store places them.
    #[arg(long, default_value_t = 0, value_parser = containers())]
    containers: u64,
    /// Mean service time of an op (its value with `--service-dist const`).
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = duration,
          conflicts_with = "scenario")]
    service: Duration,
    /// Service-time distribution.
    #[arg(long, value_enum, default_value_t = ServiceDist::Exp, conflicts_with = "scenario")]
    service_dist: ServiceDist,
    /// Probability that an op fails in the backend.
    #[arg(long, default_value_t = 0.0, value_parser = probability, conflicts_with = "scenario")]
    failure_rate: f64,
    /// Take the service times (every op's distribution) and the failure rate from this
    /// scenario file's `[backend]`, validated as `conductor check` does.
    #[arg(long, value_name = "FILE")]
    scenario: Option<PathBuf>,
    /// Overrides a key of `--scenario` by its dotted path, e.g.
    /// `--set backend.failure_rate=0.01`.
    #[arg(long = "set", value_name = "KEY=VALUE", requires = "scenario")]
    sets: Vec<String>,
    /// Seed of the service-time and failure draws, keyed by op id and attempt [default: the
    /// scenario's `seed`, else 1].
    #[arg(long)]
    seed: Option<u64>,
    /// Refuse an op whose fencing token is older than one seen for its container.
    #[arg(long)]
    fencing: bool,
    /// Keep the containers' truths and the newest fencing token seen per container across
    /// the host's restarts: a write-ahead journal of checksummed JSON lines (the store's
    /// format), replayed at start. `--containers` is ignored when it already holds a host.
    #[arg(long, value_name = "FILE")]
    journal: Option<PathBuf>,
    /// With --journal, force each write to disk before acting on it (survives a machine crash).
    #[arg(long, requires = "journal")]
    sync: bool,
    #[command(flatten)]
    log: Log,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum ServiceDist {
    Const,
    Exp,
}

impl Command for Args {
    fn flag_problem(&self) -> Option<String> {
        (self.index >= self.hosts).then(|| {
            format!(
                "--index {} is out of range: with --hosts {} it must be below {}",
                self.index, self.hosts, self.hosts
            )
        })
    }

    async fn run(self) -> anyhow::Result<ExitCode> {
        let log = json_lines(&format!("host-{}", u64::from(self.index) + 1), &self.log)?;
        let mut st = match &self.journal {
            Some(path) => journal::open(path, |p| HostState::open(p, self.fencing, self.sync))?,
            None => HostState::with_fencing(self.fencing),
        };
        if st.is_empty() {
            // The store places pre-created container c on host c % hosts (round-robin from 0).
            for id in (u64::from(self.index)..self.containers).step_by(self.hosts as usize) {
                st.set_durably(id, Truth::Running)
                    .context("cannot write the journal")?;
            }
        }
        let state = Arc::new(Mutex::new(st));
        let at_stop = {
            let (state, log, index) = (state.clone(), log.clone(), self.index);
            // What the host holds when it is told to stop: `check-history`'s liveness.
            move || {
                for line in FinalLine::of_host(index, &lock(&state)) {
                    log.write(&line);
                }
            }
        };
        service::run_then(serve(self, state, log), at_stop).await
    }
}

async fn serve(
    a: Args,
    state: Arc<Mutex<HostState>>,
    rec: Arc<conductor::recorder::JsonLines>,
) -> anyhow::Result<()> {
    let (backend, seed) = a.backend()?;
    let sleep: Sleep = Arc::new(|d| Box::pin(precise_sleep(d)));
    let model = Arc::new(Backends::new(seed, &backend, sleep));
    let listener = listen(a.listen, &a.limits).await?;
    host::serve(listener, a.index, state, model, rec)
        .await
        .context("the host stopped")?;
    bail!("the host stopped accepting connections")
}

/// The last stretch of a service time slept on a blocking thread rather than on tokio's timer.
const FINE: Duration = Duration::from_millis(2);

/// Sleeps `d` to within tens of microseconds: tokio's timer has whole-millisecond ticks and
/// rounds every deadline up (half a millisecond added to a mean service time, which a
/// calibration against the simulator sees in the hold time and the exhaustion ratio), so the
/// bulk goes on tokio's timer and the last [`FINE`] on a blocking thread, held that long at
/// most.
async fn precise_sleep(d: Duration) {
    let end = tokio::time::Instant::now() + d;
    if d > FINE {
        tokio::time::sleep(d - FINE).await;
    }
    let rest = end.saturating_duration_since(tokio::time::Instant::now());
    if !rest.is_zero() {
        let _ = tokio::task::spawn_blocking(move || std::thread::sleep(rest)).await;
    }
}

impl Args {
    /// The backend and the seed of its draws: the scenario's, or the `--service*` flags'.
    fn backend(&self) -> Result<(Backend, u64), BadInput> {
        match &self.scenario {
            Some(path) => {
                let scn = scenario::load(path, &self.sets).map_err(|e| BadInput(e.to_string()))?;
                Ok((scn.backend, self.seed.unwrap_or(scn.seed)))
            }
            None => {
                let default = match self.service_dist {
                    ServiceDist::Const => Dist::Constant {
                        value: self.service,
                    },
                    ServiceDist::Exp => Dist::Exp { mean: self.service },
                };
                let backend = Backend {
                    default,
                    per_op: Vec::new(),
                    failure_rate: self.failure_rate,
                };
                Ok((backend, self.seed.unwrap_or(1)))
            }
        }
    }
}
