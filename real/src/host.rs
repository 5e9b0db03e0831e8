//! `conductor host`: a container host applying ops after their service time.

use crate::command::Command;
use crate::flags::{addr, duration, probability, Log};
use crate::service::{self, listen, recorder};
use crate::xorshift::XorShift;
use anyhow::bail;
use clap::ValueEnum;
use conductor::host::{self, HostModel, HostState};
use conductor::op::Truth;
use conductor::proto::HostCmd;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A container host: applies ops after their service time.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Address to listen on.
    #[arg(long, value_parser = addr)]
    listen: SocketAddr,
    /// This host's index (host-N has index N-1).
    #[arg(long)]
    index: u32,
    /// Number of hosts in the deployment (to know which pre-created containers are here).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    hosts: u32,
    /// Containers 0..N pre-created (running) in the store: this host holds those with
    /// c % hosts == index, as the store places them.
    #[arg(long, default_value_t = 0)]
    containers: u64,
    /// Mean service time of an op (its value with `--service-dist const`).
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = duration)]
    service: Duration,
    /// Service-time distribution.
    #[arg(long, value_enum, default_value_t = ServiceDist::Exp)]
    service_dist: ServiceDist,
    /// Probability that an op fails in the backend.
    #[arg(long, default_value_t = 0.0, value_parser = probability)]
    failure_rate: f64,
    /// Seed of the service-time and failure draws (keyed by op id and attempt).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Refuse an op whose fencing token is older than one seen for its container.
    #[arg(long)]
    fencing: bool,
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
        service::run(serve(self)).await
    }
}

async fn serve(a: Args) -> anyhow::Result<()> {
    let rec = recorder(&format!("host-{}", u64::from(a.index) + 1), &a.log)?;
    let mut st = HostState::with_fencing(a.fencing);
    // The store places pre-created container c on host c % hosts (round-robin from 0).
    for id in (u64::from(a.index)..a.containers).step_by(a.hosts as usize) {
        st.set(id, Truth::Running);
    }
    let model = Arc::new(SimpleModel {
        seed: a.seed,
        service: a.service,
        dist: a.service_dist,
        failure_rate: a.failure_rate,
    });
    let listener = listen(a.listen).await?;
    host::serve(listener, a.index, Arc::new(Mutex::new(st)), model, rec).await;
    bail!("the host stopped accepting connections")
}

/// Constant or exponential service times and a failure rate, keyed by op id and attempt.
struct SimpleModel {
    seed: u64,
    service: Duration,
    dist: ServiceDist,
    failure_rate: f64,
}

impl SimpleModel {
    fn draws(&self, cmd: &HostCmd) -> XorShift {
        XorShift::keyed(
            self.seed,
            cmd.op.id.wrapping_mul(1 << 8) ^ u64::from(cmd.attempt),
        )
    }
}

impl HostModel for SimpleModel {
    fn service_time(&self, _host: u32, cmd: &HostCmd) -> Duration {
        match self.dist {
            ServiceDist::Const => self.service,
            ServiceDist::Exp => {
                let secs = self.service.as_secs_f64() * self.draws(cmd).exp1();
                Duration::try_from_secs_f64(secs).unwrap_or(Duration::MAX)
            }
        }
    }

    fn fails(&self, _host: u32, cmd: &HostCmd) -> bool {
        if self.failure_rate <= 0.0 {
            return false;
        }
        let mut d = self.draws(cmd);
        d.next_u64(); // the first draw is the service time's
        d.uniform() <= self.failure_rate
    }
}
