//! `conductor`: runs one service of the reference deployment for real, over TCP and wall-clock
//! time, or drives a deployment as an open-loop client.
//!
//! ```text
//! conductor store     --listen ADDR --hosts N [--containers N]
//! conductor bus       --listen ADDR [--prefetch N]
//! conductor host      --listen ADDR --index I [--hosts N] [--containers N] [--service 1s]
//!                     [--service-dist const|exp] [--failure-rate 0.0] [--seed S]
//! conductor conductor --index I --bus ADDR --store ADDR --host ADDR... [--rpc-workers 64]
//!                     [--pool-workers 10] [--overflow caller-runs|reject|queue|unbounded]
//! conductor api       --listen ADDR --store ADDR --bus ADDR [--validate-state]
//!                     [--async-rpc call|cast] [--rpc-timeout 60s]
//! conductor client    --api ADDR --rate R --duration 10s --containers N [--op start] [--json]
//! ```
//!
//! A service that listens prints `listening ADDR` on stdout once it is bound (so `--listen
//! 127.0.0.1:0` works), then records its events as JSON lines on stderr or `--log FILE` (the
//! store and the bus have none to record). The api and the conductor wait up to `--wait 30s` for the services
//! they connect to, so the processes may start in any order. Each runs until SIGINT/SIGTERM
//! (exit 0) or until it fails (exit 1). Bad flags exit 2. The client exits 0 when every request
//! was answered (whatever the answer), 1 otherwise.
//!
//! This is the real build only (`RUSTFLAGS= CARGO_TARGET_DIR=target/real cargo build --release
//! -p conductor`); under `--cfg madsim` the binary only says so.

#[cfg(madsim)]
fn main() -> std::process::ExitCode {
    eprintln!(
        "error: the `conductor` binary runs services over real TCP and needs the real build: \
         `RUSTFLAGS= CARGO_TARGET_DIR=target/real cargo build --release -p conductor`"
    );
    std::process::ExitCode::from(2)
}

#[cfg(not(madsim))]
fn main() -> std::process::ExitCode {
    real::main()
}

#[cfg(not(madsim))]
mod real {
    use anyhow::{bail, Context};
    use clap::error::ErrorKind;
    use clap::{Args, CommandFactory, Parser, Subcommand, ValueEnum};
    use conductor::api::{self, ApiConfig, RpcKind};
    use conductor::bus::{self, BusConfig};
    use conductor::cluster::{Ordering, Routing};
    use conductor::conductor::{self as cond, ConductorConfig, Overflow, RecoveryPolicy};
    use conductor::host::{self, HostModel, HostState};
    use conductor::net::{Listener, Net};
    use conductor::op::{OpKind, Status, Truth};
    use conductor::proto::{Answer, HostCmd, Msg, OpSpec};
    use conductor::recorder::{JsonLines, SharedRecorder};
    use conductor::retry::{splitmix64, Backoff, RetryPolicy, GOLDEN_GAMMA};
    use conductor::rpc::lock;
    use conductor::store::{self, StoreState};
    use conductor::wire;
    use serde::Serialize;
    use std::future::Future;
    use std::io::Write;
    use std::net::{IpAddr, Ipv4Addr, SocketAddr, ToSocketAddrs};
    use std::path::PathBuf;
    use std::process::ExitCode;
    use std::sync::{Arc, Mutex};
    use std::time::Duration;
    use tokio::net::TcpStream;
    use tokio::time::Instant;

    /// The most ops one `client` run may plan (its intended send times are kept in memory).
    const MAX_CLIENT_OPS: u64 = 10_000_000;

    #[derive(Parser, Debug)]
    #[command(
        name = "conductor",
        version,
        about = "Runs one service of the conductor-sim reference deployment over real TCP, or \
                 drives a deployment as an open-loop client"
    )]
    struct Cli {
        #[command(subcommand)]
        cmd: Cmd,
    }

    #[derive(Subcommand, Debug)]
    enum Cmd {
        /// The API (magnum-api / zun-api): persists ops and sends them through the bus.
        Api(ApiArgs),
        /// The message bus: a shared topic and one queue per conductor.
        Bus(BusArgs),
        /// The store (the database), with `--containers` containers pre-created, running.
        Store(StoreArgs),
        /// A container host: applies ops after their service time.
        Host(HostArgs),
        /// A conductor: RPC slots, the executor pool and its overflow policy.
        Conductor(ConductorArgs),
        /// An open-loop load generator: sends requests to the API at their intended times.
        Client(ClientArgs),
    }

    /// Where a service records its events.
    #[derive(Args, Debug)]
    struct Log {
        /// Write the JSON-lines event log to FILE instead of stderr.
        #[arg(long, value_name = "FILE")]
        log: Option<PathBuf>,
    }

    /// How long a service waits for those it depends on.
    #[derive(Args, Debug)]
    struct Wait {
        /// How long to keep trying to reach the services this one depends on.
        #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = duration)]
        wait: Duration,
    }

    #[derive(Args, Debug)]
    struct ApiArgs {
        /// Address to listen on for clients.
        #[arg(long, value_parser = addr)]
        listen: SocketAddr,
        /// The store's address.
        #[arg(long, value_parser = addr)]
        store: SocketAddr,
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
        cluster: ClusterArgs,
        #[command(flatten)]
        log: Log,
        #[command(flatten)]
        wait: Wait,
    }

    #[derive(Args, Debug)]
    struct BusArgs {
        /// Address to listen on.
        #[arg(long, value_parser = addr)]
        listen: SocketAddr,
        /// Unacknowledged deliveries a conductor may hold (0 = unlimited).
        #[arg(long, default_value_t = 0)]
        prefetch: u32,
        // The bus records no events, so it takes no --log.
    }

    #[derive(Args, Debug)]
    struct StoreArgs {
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
        /// Keep the store durable across its restarts: a write-ahead journal of JSON lines,
        /// replayed at start.
        #[arg(long, value_name = "FILE")]
        journal: Option<PathBuf>,
        /// With --journal, force each write to disk before answering (survives a machine crash).
        #[arg(long, requires = "journal")]
        sync: bool,
        // The store records no events, so it takes no --log.
    }

    #[derive(Args, Debug)]
    struct HostArgs {
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

    #[derive(Args, Debug)]
    struct ConductorArgs {
        /// This conductor's index (conductor-N has index N-1).
        #[arg(long)]
        index: u32,
        /// The bus's address.
        #[arg(long, value_parser = addr)]
        bus: SocketAddr,
        /// The store's address.
        #[arg(long, value_parser = addr)]
        store: SocketAddr,
        /// The hosts' addresses, in index order.
        #[arg(long = "host", value_name = "ADDR", required = true, num_args = 1.., value_parser = addr)]
        hosts: Vec<SocketAddr>,
        /// RPC slots taking deliveries from the bus.
        #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..))]
        rpc_workers: u32,
        /// Executor pool workers.
        #[arg(long, default_value_t = 10)]
        pool_workers: u32,
        /// What an async op does when every pool worker is busy.
        #[arg(long, value_enum, default_value_t = Overflow::CallerRuns)]
        overflow: Overflow,
        #[command(flatten)]
        cluster: ClusterArgs,
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
        #[command(flatten)]
        log: Log,
        #[command(flatten)]
        wait: Wait,
    }

    /// What the API and every conductor must agree on.
    #[derive(Args, Debug)]
    struct ClusterArgs {
        /// How many conductors there are.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
        conductors: u32,
        /// Which conductor's queue an op goes to.
        #[arg(long, value_enum, default_value_t = Routing::RoundRobin)]
        routing: Routing,
        /// Lease of locks and membership.
        #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = positive_duration)]
        lease_ttl: Duration,
    }

    #[derive(Args, Debug)]
    struct ClientArgs {
        /// The API's address.
        #[arg(long, value_parser = addr)]
        api: SocketAddr,
        /// Requests per second (mean rate with `--arrival poisson`).
        #[arg(long, value_parser = positive_rate)]
        rate: f64,
        /// How long to send for.
        #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = positive_duration)]
        duration: Duration,
        /// Containers 0..N the requests go to, round-robin.
        #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
        containers: u64,
        /// The op every request asks for.
        #[arg(long, default_value = "start", value_parser = op_kind)]
        op: OpKind,
        /// Arrival process.
        #[arg(long, value_enum, default_value_t = Arrival::Constant)]
        arrival: Arrival,
        /// Seed of the Poisson arrivals.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// First op id (ids must be unique across clients of one deployment).
        #[arg(long, default_value_t = 1)]
        first_id: u64,
        /// After the last send, how long to wait for outstanding answers.
        #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = duration)]
        drain: Duration,
        /// How long to keep trying to reach the API.
        #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = duration)]
        wait: Duration,
        /// Print the summary as one JSON object.
        #[arg(long)]
        json: bool,
    }

    #[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
    enum ServiceDist {
        Const,
        Exp,
    }

    #[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
    enum Arrival {
        Constant,
        Poisson,
    }

    fn addr(s: &str) -> Result<SocketAddr, String> {
        if let Ok(a) = s.parse() {
            return Ok(a);
        }
        s.to_socket_addrs()
            .map_err(|e| format!("`{s}` is not HOST:PORT ({e})"))?
            .next()
            .ok_or_else(|| format!("`{s}` resolves to no address"))
    }

    fn duration(s: &str) -> Result<Duration, String> {
        humantime::parse_duration(s)
            .map_err(|e| format!("`{s}` is not a duration such as 500ms, 10s or 1m ({e})"))
    }

    fn positive_duration(s: &str) -> Result<Duration, String> {
        match duration(s)? {
            d if d.is_zero() => Err("must be longer than zero".into()),
            d => Ok(d),
        }
    }

    fn positive_rate(s: &str) -> Result<f64, String> {
        match s.parse::<f64>() {
            Ok(r) if r.is_finite() && r > 0.0 => Ok(r),
            _ => Err(format!(
                "`{s}` is not a positive number of requests per second"
            )),
        }
    }

    fn probability(s: &str) -> Result<f64, String> {
        match s.parse::<f64>() {
            Ok(p) if (0.0..=1.0).contains(&p) => Ok(p),
            _ => Err(format!("`{s}` is not a probability between 0 and 1")),
        }
    }

    fn op_kind(s: &str) -> Result<OpKind, String> {
        s.parse()
            .map_err(|e: conductor::op::UnknownOp| e.to_string())
    }

    /// Exits 2 with a usage error about subcommand `sub`, naming what is wrong.
    fn usage(sub: &str, msg: impl std::fmt::Display) -> ! {
        let mut cli = Cli::command();
        cli.build();
        match cli.find_subcommand_mut(sub) {
            Some(sub) => sub.error(ErrorKind::ValueValidation, msg).exit(),
            None => cli.error(ErrorKind::ValueValidation, msg).exit(),
        }
    }

    pub fn main() -> ExitCode {
        let cli = Cli::parse();
        // Cross-flag checks clap cannot express: still usage errors (exit 2).
        match &cli.cmd {
            Cmd::Host(h) if h.index >= h.hosts => usage(
                "host",
                format!(
                    "--index {} is out of range: with --hosts {} it must be below {}",
                    h.index, h.hosts, h.hosts
                ),
            ),
            Cmd::Client(c) => {
                let planned = c.rate * c.duration.as_secs_f64();
                if planned > MAX_CLIENT_OPS as f64 {
                    usage(
                        "client",
                        format!(
                            "--rate {} for --duration {} plans {planned:.0} requests; at most \
                         {MAX_CLIENT_OPS} per run",
                            c.rate,
                            humantime::format_duration(c.duration)
                        ),
                    );
                }
            }
            _ => {}
        }
        let rt = match tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
        {
            Ok(rt) => rt,
            Err(e) => {
                eprintln!("error: cannot start the runtime: {e}");
                return ExitCode::FAILURE;
            }
        };
        match rt.block_on(run(cli.cmd)) {
            Ok(code) => code,
            Err(e) => {
                eprintln!("error: {e:#}");
                ExitCode::FAILURE
            }
        }
    }

    async fn run(cmd: Cmd) -> anyhow::Result<ExitCode> {
        match cmd {
            Cmd::Api(a) => service(api_main(a)).await,
            Cmd::Bus(a) => service(bus_main(a)).await,
            Cmd::Store(a) => service(store_main(a)).await,
            Cmd::Host(a) => service(host_main(a)).await,
            Cmd::Conductor(a) => service(conductor_main(a)).await,
            Cmd::Client(a) => client_main(a).await,
        }
    }

    /// Runs a service until it fails or a shutdown signal arrives.
    async fn service(fut: impl Future<Output = anyhow::Result<()>>) -> anyhow::Result<ExitCode> {
        tokio::select! {
            r = fut => r.map(|()| ExitCode::SUCCESS),
            r = shutdown() => r.map(|()| ExitCode::SUCCESS),
        }
    }

    async fn shutdown() -> anyhow::Result<()> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            let mut term = signal(SignalKind::terminate()).context("cannot watch SIGTERM")?;
            tokio::select! {
                r = tokio::signal::ctrl_c() => r.context("cannot watch SIGINT")?,
                _ = term.recv() => {}
            }
        }
        #[cfg(not(unix))]
        tokio::signal::ctrl_c()
            .await
            .context("cannot watch Ctrl-C")?;
        Ok(())
    }

    fn recorder(node: &str, log: &Log) -> anyhow::Result<SharedRecorder> {
        let out: Box<dyn Write + Send> = match &log.log {
            Some(path) => Box::new(std::io::BufWriter::new(
                std::fs::File::create(path)
                    .with_context(|| format!("cannot create the log {}", path.display()))?,
            )),
            None => Box::new(std::io::stderr()),
        };
        Ok(Arc::new(JsonLines::new(node, out)))
    }

    /// Binds `addr` and announces the bound address on stdout (`listening ADDR`).
    async fn listen(addr: SocketAddr) -> anyhow::Result<Listener> {
        let l = Net::Tcp
            .bind(addr)
            .await
            .with_context(|| format!("cannot listen on {addr}"))?;
        let local = l.local_addr().context("cannot read the bound address")?;
        let mut out = std::io::stdout().lock();
        writeln!(out, "listening {local}").context("cannot write to stdout")?;
        out.flush().context("cannot write to stdout")?;
        Ok(l)
    }

    /// Waits until something accepts connections at `addr`, for at most `wait`.
    async fn reach(what: &str, addr: SocketAddr, wait: Duration) -> anyhow::Result<TcpStream> {
        let deadline = Instant::now() + wait;
        loop {
            match TcpStream::connect(addr).await {
                Ok(s) => return Ok(s),
                Err(e) if Instant::now() >= deadline => bail!(
                    "cannot reach {what} at {addr} within {}: {e}",
                    humantime::format_duration(wait)
                ),
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }

    async fn api_main(a: ApiArgs) -> anyhow::Result<()> {
        let rec = recorder("api", &a.log)?;
        let listener = listen(a.listen).await?;
        reach("the store", a.store, a.wait.wait).await?;
        reach("the bus", a.bus, a.wait.wait).await?;
        let cfg = ApiConfig {
            validate_state: a.validate_state,
            async_rpc: a.async_rpc,
            rpc_timeout: a.rpc_timeout,
            routing: a.cluster.routing,
            conductors: a.cluster.conductors,
            lease_ttl: a.cluster.lease_ttl,
            store: a.store,
            bus: a.bus,
            net: Net::Tcp,
            ip: a.listen.ip(),
        };
        api::serve(listener, cfg, rec).await;
        bail!("the API stopped accepting connections")
    }

    async fn bus_main(a: BusArgs) -> anyhow::Result<()> {
        let listener = listen(a.listen).await?;
        bus::serve(
            listener,
            BusConfig {
                prefetch: a.prefetch,
            },
        )
        .await;
        bail!("the bus stopped accepting connections")
    }

    async fn store_main(a: StoreArgs) -> anyhow::Result<()> {
        let mut st = match &a.journal {
            Some(path) => StoreState::open(path, a.hosts, a.sync)?,
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

    async fn host_main(a: HostArgs) -> anyhow::Result<()> {
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

    async fn conductor_main(a: ConductorArgs) -> anyhow::Result<()> {
        let rec = recorder(&format!("conductor-{}", u64::from(a.index) + 1), &a.log)?;
        reach("the store", a.store, a.wait.wait).await?;
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
                backoff: Backoff::FullJitter,
                base: Duration::from_millis(100),
                cap: Duration::from_secs(10),
                max_attempts: 5,
            },
            budget_ratio: 0.0,
            budget_min_per_s: 0.0,
            bus: a.bus,
            store: a.store,
            hosts: a.hosts,
            net: Net::Tcp,
            ip: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        };
        cond::run(cfg, rec).await;
        Ok(())
    }

    /// A small keyed xorshift64* stream: the same key gives the same draws, in any process.
    struct XorShift(u64);

    impl XorShift {
        fn keyed(seed: u64, key: u64) -> Self {
            // splitmix64 of the key spreads neighbouring ids over the whole state space. Its
            // first step (adding the golden gamma) is taken back: the streams stay those this
            // generator always drew.
            let z = splitmix64((seed ^ key.wrapping_mul(GOLDEN_GAMMA)).wrapping_sub(GOLDEN_GAMMA));
            XorShift(if z == 0 { GOLDEN_GAMMA } else { z })
        }

        fn next_u64(&mut self) -> u64 {
            let mut x = self.0;
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            self.0 = x;
            x.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }

        /// A uniform draw in (0, 1].
        fn uniform(&mut self) -> f64 {
            ((self.next_u64() >> 11) + 1) as f64 / (1u64 << 53) as f64
        }

        /// An exponential draw with mean 1.
        fn exp1(&mut self) -> f64 {
            -self.uniform().ln()
        }
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

    /// The intended send times (µs from the start), in order.
    fn plan(a: &ClientArgs) -> Vec<u64> {
        let end = a.duration.as_secs_f64();
        let mut out = Vec::new();
        match a.arrival {
            Arrival::Constant => {
                let mut i = 0u64;
                loop {
                    let t = i as f64 / a.rate;
                    if t >= end {
                        break;
                    }
                    out.push((t * 1e6) as u64);
                    i += 1;
                }
            }
            Arrival::Poisson => {
                let mut rng = XorShift::keyed(a.seed, 0);
                let mut t = rng.exp1() / a.rate;
                while t < end {
                    out.push((t * 1e6) as u64);
                    t += rng.exp1() / a.rate;
                }
            }
        }
        out
    }

    #[derive(Default, Serialize)]
    struct Answers {
        accepted: u64,
        done: u64,
        conflict: u64,
        error: u64,
        timeout: u64,
    }

    #[derive(Default)]
    struct Tally {
        answers: Answers,
        answered: u64,
        duplicate: u64,
        /// Accept latencies (µs from the intended send time) of accepted and done ops.
        latencies: Vec<u64>,
        seen: Vec<bool>,
    }

    #[derive(Serialize)]
    struct Latency {
        p50: f64,
        p90: f64,
        p99: f64,
        max: f64,
        mean: f64,
    }

    #[derive(Serialize)]
    struct Summary {
        op: &'static str,
        sent: u64,
        answered: u64,
        unanswered: u64,
        answers: Answers,
        /// Accept latency in ms from the intended send time (accepted and done ops only).
        accept_ms: Latency,
        intended_rate: f64,
        achieved_rate: f64,
        max_send_lag_ms: f64,
        /// Time spent sending.
        send_s: f64,
        /// Time until the last answer (or the end of the drain).
        wall_s: f64,
    }

    fn latency(mut v: Vec<u64>) -> Latency {
        v.sort_unstable();
        let ms = |us: u64| us as f64 / 1000.0;
        let q = |p: f64| {
            if v.is_empty() {
                return 0.0;
            }
            // Nearest rank.
            let rank = ((p * v.len() as f64).ceil() as usize).clamp(1, v.len());
            ms(v[rank - 1])
        };
        Latency {
            p50: q(0.50),
            p90: q(0.90),
            p99: q(0.99),
            max: v.last().map_or(0.0, |&x| ms(x)),
            mean: if v.is_empty() {
                0.0
            } else {
                ms(v.iter().sum::<u64>()) / v.len() as f64
            },
        }
    }

    async fn client_main(a: ClientArgs) -> anyhow::Result<ExitCode> {
        let plan = Arc::new(plan(&a));
        let n = plan.len() as u64;
        let stream = reach("the API", a.api, a.wait).await?;
        let (link, mut reader) = wire::attach(stream);
        let start = Instant::now();
        let tally = Arc::new(Mutex::new(Tally {
            seen: vec![false; plan.len()],
            ..Tally::default()
        }));

        let (t, p, first_id) = (tally.clone(), plan.clone(), a.first_id);
        let answers = tokio::spawn(async move {
            loop {
                let msg = match reader.next().await {
                    Ok(Some(m)) => m,
                    Ok(None) => return Err(anyhow::anyhow!("the API closed the connection")),
                    Err(e) => return Err(anyhow::Error::new(e).context("reading from the API")),
                };
                let Msg::Answer { id, answer } = msg else {
                    continue;
                };
                let now = start.elapsed().as_micros() as u64;
                let mut t = lock(&t);
                let Some(i) = id
                    .checked_sub(first_id)
                    .filter(|&i| i < p.len() as u64)
                    .map(|i| i as usize)
                else {
                    continue;
                };
                if std::mem::replace(&mut t.seen[i], true) {
                    t.duplicate += 1;
                    continue;
                }
                t.answered += 1;
                match answer {
                    Answer::Accepted => {
                        t.answers.accepted += 1;
                        t.latencies.push(now.saturating_sub(p[i]));
                    }
                    Answer::Done => {
                        t.answers.done += 1;
                        t.latencies.push(now.saturating_sub(p[i]));
                    }
                    Answer::Conflict(_) => t.answers.conflict += 1,
                    Answer::Timeout => t.answers.timeout += 1,
                    // Failed, or refused because a service was unavailable.
                    _ => t.answers.error += 1,
                }
                if t.answered == p.len() as u64 {
                    return Ok(());
                }
            }
        });

        let mut max_lag = Duration::ZERO;
        for (i, &at) in plan.iter().enumerate() {
            let intended = start + Duration::from_micros(at);
            tokio::time::sleep_until(intended).await;
            max_lag = max_lag.max(Instant::now().saturating_duration_since(intended));
            let op = OpSpec {
                id: a.first_id.wrapping_add(i as u64),
                container: i as u64 % a.containers,
                kind: a.op,
                intended_us: at,
            };
            if !link.send(Msg::Request(op)) {
                bail!("lost the connection to the API after {i} requests");
            }
        }
        let sent_s = start.elapsed().as_secs_f64();

        let mut lost = None;
        if n > 0 {
            match tokio::time::timeout(a.drain, answers).await {
                Ok(Ok(Ok(()))) => {}
                Ok(Ok(Err(e))) => lost = Some(e),
                Ok(Err(e)) => lost = Some(anyhow::Error::new(e).context("the answer reader")),
                Err(_) => {}
            }
        }
        let wall_s = start.elapsed().as_secs_f64();
        let t = std::mem::take(&mut *lock(&tally));
        let summary = Summary {
            op: a.op.name(),
            sent: n,
            answered: t.answered,
            unanswered: n - t.answered,
            answers: t.answers,
            accept_ms: latency(t.latencies),
            intended_rate: a.rate,
            achieved_rate: if sent_s > 0.0 { n as f64 / sent_s } else { 0.0 },
            max_send_lag_ms: max_lag.as_secs_f64() * 1000.0,
            send_s: sent_s,
            wall_s,
        };
        print_summary(&summary, a.json)?;
        if let Some(e) = lost {
            eprintln!("error: {e:#}");
        }
        if t.duplicate > 0 {
            eprintln!("error: {} answers came twice", t.duplicate);
        }
        Ok(if summary.unanswered == 0 && t.duplicate == 0 {
            ExitCode::SUCCESS
        } else {
            if summary.unanswered > 0 {
                eprintln!(
                    "error: {} of {} requests unanswered after a drain of {}",
                    summary.unanswered,
                    n,
                    humantime::format_duration(a.drain)
                );
            }
            ExitCode::FAILURE
        })
    }

    fn print_summary(s: &Summary, json: bool) -> anyhow::Result<()> {
        let mut out = std::io::stdout().lock();
        if json {
            writeln!(out, "{}", serde_json::to_string(s)?)?;
        } else {
            let l = &s.accept_ms;
            let a = &s.answers;
            writeln!(
                out,
                "sent {} {} requests in {:.2} s ({:.1}/s intended, {:.1}/s achieved, max send \
                 lag {:.1} ms); last answer after {:.2} s",
                s.sent,
                s.op,
                s.send_s,
                s.intended_rate,
                s.achieved_rate,
                s.max_send_lag_ms,
                s.wall_s
            )?;
            writeln!(
                out,
                "answered {} (accepted {}, done {}, conflict {}, error {}, timeout {}), unanswered {}",
                s.answered, a.accepted, a.done, a.conflict, a.error, a.timeout, s.unanswered
            )?;
            writeln!(
                out,
                "accept latency ms: p50 {:.2}  p90 {:.2}  p99 {:.2}  max {:.2}  mean {:.2}",
                l.p50, l.p90, l.p99, l.max, l.mean
            )?;
        }
        out.flush()?;
        Ok(())
    }
}
