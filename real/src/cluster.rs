//! `conductor cluster SCENARIO --out DIR`: a scenario run for real, judged Jepsen's way. It
//! starts the deployment of the scenario's `[cluster]` on loopback (the store, the bus, the
//! hosts, the conductors and the API, one process each, every one logging to DIR), drives the
//! scenario's open-loop client against the API, takes the scenario's `[[faults]]` of kind
//! `kill` (SIGKILL, then a new process on the same address after `restart_after`) and `pause`
//! (SIGSTOP, then SIGCONT) on schedule, heals at the end of the load phase, drains, stops every
//! service with SIGTERM (the store and the hosts write their final state), and judges the
//! merged logs with the simulator's checker, liveness included. Exit status as `conductor-sim
//! run`: 0 when exactly the expected invariants broke (`[checks] expect`), 1 otherwise or when a
//! service misbehaved (exited on its own, wrote no final state), 2 on bad input.
//!
//! Network faults (`partition`, `isolate`, `clog`, `latency`) would need to cut or slow
//! loopback links, which takes special rights (network namespaces, `tc`); host faults act on
//! the simulator's host model. Such faults, and a `[nemesis]`, are refused as bad input.

use crate::command::{BadInput, Command};
use crate::drive::{Client, Tally};
use crate::flags::positive_duration;
use crate::procs::Procs;
use crate::service::shutdown;
use anyhow::Context;
use checker::history::{check_files, HistoryFindings};
use scenario::client::ClientConfig;
use scenario::fault::{micros, FaultWorld, Step};
use scenario::{Model, Node, Scenario};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;
use tokio::time::Instant;

/// The most processes one real run may start (conductors and hosts together, besides the
/// api, the bus and the store).
const MAX_PROCESSES: u32 = 64;
/// The most store processes one real run may start.
const MAX_STORES: u32 = 3;
/// The longest load phase, and the longest drain, of a real run.
const MAX_PHASE: Duration = Duration::from_secs(3600);
/// How long a service told to stop may take to exit.
const STOP_PATIENCE: Duration = Duration::from_secs(15);
/// How long the conductors are given to join the bus before the client starts (they announce
/// nothing; every service they need is already listening).
pub(crate) const SETTLE: Duration = Duration::from_millis(500);
/// How often the harness looks at its processes between faults.
const WATCH: Duration = Duration::from_millis(500);

/// Runs a scenario for real on loopback and judges its history (see `docs/real-mode.md`).
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The scenario file (TOML): its `[cluster]`, `[api]`, `[bus]`, `[workload]`, `[client]`,
    /// `[backend]`, `[[faults]]` (kill and pause) and `[checks]`.
    scenario: PathBuf,
    /// Overrides a scenario key by its dotted path, e.g. `--set cluster.ordering=none`.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    sets: Vec<String>,
    /// Where the logs, the processes' stderr, `history.json` and `cluster.json` go (emptied
    /// of earlier logs first).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// The load phase [default: the scenario's `duration`]; faults at or after its end are
    /// not taken.
    #[arg(long = "for", value_name = "DURATION", value_parser = positive_duration)]
    load: Option<Duration>,
    /// The drain after the load phase, every fault healed [default: the scenario's `drain`].
    #[arg(long, value_name = "DURATION", value_parser = crate::flags::duration)]
    drain: Option<Duration>,
    /// The seed of the workload and the service times [default: the scenario's `seed`].
    #[arg(long)]
    seed: Option<u64>,
    /// Keep the store's locks, leases, membership and fencing tokens in the etcd cluster at
    /// these client URLs (the store's `--etcd`; a binary built with the feature `etcd`). The
    /// cluster is the caller's to start and stop (`scripts/etcd-run`).
    #[arg(long, value_name = "URL,...", value_delimiter = ',')]
    etcd: Vec<String>,
    /// Store processes serving the deployment on one journal, one primary at a time (the
    /// others standbys that take over when it dies); the api and the conductors are given
    /// every address. A fault on `store` takes the primary.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=MAX_STORES as i64))]
    stores: u32,
}

impl Command for Args {
    fn flag_problem(&self) -> Option<String> {
        crate::flags::etcd_problem(&self.etcd)
    }

    async fn run(self) -> anyhow::Result<ExitCode> {
        let scn = scenario::load(&self.scenario, &self.sets).map_err(|e| BadInput(e.to_string()))?;
        if scn.workload.model == Model::Mixed && !scn.workload.initial.is_default() {
            return Err(BadInput(format!(
                "{}: workload.initial: a real cluster pre-creates running containers only; \
                 remove `workload.initial` (every container running) or run it in the simulator",
                self.scenario.display()
            ))
            .into());
        }
        let plan = Plan::new(&self, &scn)?;
        std::fs::create_dir_all(&self.out)
            .with_context(|| format!("cannot create {}", self.out.display()))?;
        clear_logs(&self.out)?;
        let bin = std::env::current_exe().context("cannot find the conductor binary")?;
        let mut procs = Procs::new(bin, self.out.clone());
        // Every process is stopped by its PID when `procs` drops: after an error, or when the
        // harness is interrupted (SIGINT/SIGTERM) in the middle of the run.
        let outcome = tokio::select! {
            r = run(&self, &scn, &plan, &mut procs) => r?,
            r = shutdown() => {
                r?;
                anyhow::bail!("interrupted: every service started was killed");
            }
        };
        report(&self, &scn, &plan, &procs, outcome)
    }
}

/// What the run does, computed before anything starts: the phases and the fault schedule.
struct Plan {
    seed: u64,
    load: Duration,
    drain: Duration,
    /// `(µs from the start, fault index, step)`, in time order.
    steps: Vec<(u64, usize, Step)>,
}

/// The world primitives a fault kind needs, recorded without acting: the kinds a real run can
/// take use only kills and pauses.
#[derive(Default)]
struct Probe {
    unsupported: Vec<&'static str>,
}

impl FaultWorld for Probe {
    fn clog_node(&mut self, _: Node) {
        self.unsupported.push("cutting a node off the network");
    }
    fn unclog_node(&mut self, _: Node) {}
    fn clog_link(&mut self, _: Node, _: Node) {
        self.unsupported.push("cutting a link");
    }
    fn unclog_link(&mut self, _: Node, _: Node) {}
    fn kill(&mut self, node: Node) {
        self.member(node);
    }
    fn restart(&mut self, _: Node) {}
    fn pause(&mut self, node: Node) {
        self.member(node);
    }
    fn resume(&mut self, _: Node) {}
    fn latency(&mut self, _: usize, b: Option<(Duration, Duration)>) {
        if b.is_some() {
            self.unsupported.push("changing the network's latency");
        }
    }
    fn slow_host(&mut self, _: usize, _: u32, f: Option<f64>) {
        if f.is_some() {
            self.unsupported.push("slowing a host's model");
        }
    }
    fn host_errors(&mut self, _: usize, _: u32, r: Option<f64>) {
        if r.is_some() {
            self.unsupported.push("failing a host's model");
        }
    }
}

impl Probe {
    /// An etcd member is not a process of the run: the simulator's `etcd-N` targets are
    /// faulted for real from outside (`scripts/etcd-run` kills and restarts members), never
    /// silently skipped.
    fn member(&mut self, node: Node) {
        if matches!(node, Node::Etcd(_)) {
            self.unsupported
                .push("an etcd member, which a real run does not start (scripts/etcd-run faults them)");
        }
    }
}

/// The process table as the fault kinds see the world.
impl FaultWorld for Procs {
    fn clog_node(&mut self, _: Node) {}
    fn unclog_node(&mut self, _: Node) {}
    fn clog_link(&mut self, _: Node, _: Node) {}
    fn unclog_link(&mut self, _: Node, _: Node) {}
    fn kill(&mut self, node: Node) {
        Procs::kill(self, node);
    }
    fn restart(&mut self, node: Node) {
        Procs::restart(self, node);
    }
    fn pause(&mut self, node: Node) {
        Procs::pause(self, node);
    }
    fn resume(&mut self, node: Node) {
        Procs::resume(self, node);
    }
    fn latency(&mut self, _: usize, _: Option<(Duration, Duration)>) {}
    fn slow_host(&mut self, _: usize, _: u32, _: Option<f64>) {}
    fn host_errors(&mut self, _: usize, _: u32, _: Option<f64>) {}
}

impl Plan {
    /// The plan of `scn` under the flags, or why the scenario cannot run for real.
    fn new(a: &Args, scn: &Scenario) -> Result<Plan, BadInput> {
        let file = a.scenario.display();
        let c = &scn.cluster;
        if c.conductors + c.hosts > MAX_PROCESSES {
            return Err(BadInput(format!(
                "{file}: cluster.conductors + cluster.hosts is {}; a real run starts at most \
                 {MAX_PROCESSES} of them on this machine",
                c.conductors + c.hosts
            )));
        }
        if scn.nemesis.is_some() {
            return Err(BadInput(format!(
                "{file}: [nemesis]: a real run takes only the scheduled [[faults]] (of kinds \
                 kill and pause); remove the [nemesis] section"
            )));
        }
        let load = a.load.unwrap_or(scn.duration);
        let drain = a.drain.unwrap_or(scn.drain);
        for (what, d) in [("the load phase", load), ("the drain", drain)] {
            if d > MAX_PHASE {
                return Err(BadInput(format!(
                    "{file}: {what} lasts {}; a real run's phases last at most {} (use --for \
                     and --drain)",
                    humantime::format_duration(d),
                    humantime::format_duration(MAX_PHASE)
                )));
            }
        }
        let seed = a.seed.unwrap_or(scn.seed);
        let end = micros(load);
        let mut steps = Vec::new();
        for (i, f) in scn.faults.iter().enumerate() {
            let mut probe = Probe::default();
            let fsteps = f.kind.steps(micros(f.at), seed, i);
            for (_, step) in &fsteps {
                f.kind.apply(&mut probe, i, step);
            }
            if let Some(what) = probe.unsupported.first() {
                return Err(BadInput(format!(
                    "{file}: faults[{i}]: kind `{}` needs {what}, which a real run on loopback \
                     cannot do without special rights (network namespaces, tc); real runs take \
                     faults of kinds kill and pause",
                    f.kind.name()
                )));
            }
            steps.extend(
                fsteps
                    .into_iter()
                    .filter(|(t, _)| *t < end)
                    .map(|(t, s)| (t, i, s)),
            );
        }
        if !c.coordination.is_store() && a.etcd.is_empty() {
            return Err(BadInput(format!(
                "{file}: cluster.coordination = \"{}\": a real run keeps its coordination in \
                 the etcd cluster given by --etcd URL,... (scripts/etcd-run starts one); without \
                 it the store would keep it itself",
                c.coordination
            )));
        }
        // Stable: steps at one time keep the schedule's order.
        steps.sort_by_key(|(t, _, _)| *t);
        Ok(Plan {
            seed,
            load,
            drain,
            steps,
        })
    }
}

/// Removes the logs and journals of an earlier run from `dir`, so that the history judged is
/// this run's and every service starts empty.
pub(crate) fn clear_logs(dir: &Path) -> anyhow::Result<()> {
    for e in std::fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))? {
        let p = e?.path();
        let ext = p.extension().and_then(|e| e.to_str());
        if matches!(ext, Some("jsonl" | "stderr" | "journal")) {
            std::fs::remove_file(&p).with_context(|| format!("cannot remove {}", p.display()))?;
        }
    }
    Ok(())
}

/// What a run gives the report.
struct Outcome {
    tally: Tally,
    unfinished: u64,
}

/// The flags every service of the cluster shares with the API: the conductors and the routing.
fn cluster_flags(scn: &Scenario) -> Vec<String> {
    let c = &scn.cluster;
    vec![
        "--conductors".into(),
        c.conductors.to_string(),
        "--routing".into(),
        c.routing.to_string(),
        "--lease-ttl".into(),
        humantime::format_duration(c.lease_ttl).to_string(),
    ]
}

/// The containers the store and the hosts pre-create: the `ops` and `mixed` models' (running:
/// the store's and the hosts' `--containers` pre-create running containers only, so `Args::run`
/// refuses a `mixed` scenario with other `initial` states).
fn precreated(scn: &Scenario) -> u64 {
    match scn.workload.model {
        Model::Ops | Model::Mixed => u64::from(scn.workload.containers),
        Model::Lifecycle => 0,
    }
}

/// The store's flags for an etcd cluster: none without one.
fn etcd_args(endpoints: &[String]) -> Vec<String> {
    if endpoints.is_empty() {
        return Vec::new();
    }
    vec!["--etcd".to_string(), endpoints.join(",")]
}

/// How to start a scenario's deployment on loopback (`cluster`, `calibrate`).
pub(crate) struct Deploy<'a> {
    /// The scenario.
    pub scn: &'a Scenario,
    /// Its file, which the hosts read their `[backend]` from.
    pub file: &'a Path,
    /// The overrides the hosts apply to it.
    pub sets: &'a [String],
    /// The seed of the service times.
    pub seed: u64,
    /// Where the logs and journals go.
    pub out: &'a Path,
    /// The store's etcd cluster, if any.
    pub etcd: &'a [String],
    /// Where the API also serves Zun's API over HTTP, if anywhere.
    pub http: Option<std::net::SocketAddr>,
    /// Whether the store and the hosts keep a synced write-ahead journal (to survive the
    /// kills of `[[faults]]`); without one nothing waits for the disk, as in the simulator.
    pub journals: bool,
    /// Store processes on the one journal: a primary and `stores - 1` standbys (needs
    /// `journals`).
    pub stores: u32,
}

/// Starts the store, the bus, the hosts, the conductors and the API of `d.scn` in `procs`,
/// each logging into `d.out`: the API's address.
pub(crate) fn start_deployment(d: &Deploy, procs: &mut Procs) -> anyhow::Result<std::net::SocketAddr> {
    let (scn, a_out) = (d.scn, d.out);
    let c = &scn.cluster;
    let s = |v: &str| v.to_string();
    let hosts = c.hosts.to_string();
    let containers = precreated(scn).to_string();
    let durable = |n: Node| {
        let file = a_out.join(format!("{n}.journal")).display().to_string();
        if d.journals {
            vec![s("--journal"), file, s("--sync")]
        } else {
            Vec::new()
        }
    };
    let store_args: Vec<String> = vec![
        s("store"),
        s("--hosts"),
        hosts.clone(),
        s("--containers"),
        containers.clone(),
    ]
    .into_iter()
    .chain(durable(Node::Store))
    .chain(etcd_args(d.etcd))
    .collect();
    procs.start(Node::Store, store_args.clone(), true, true)?;
    // The standbys: each binds its port at once and announces it (`standby ADDR`), but
    // listens only once it takes over; the api and the conductors are given every address.
    // They share the primary's journal, so there are none without one.
    for replica in 1..d.stores {
        procs.start_replica(Node::Store, replica, store_args.clone())?;
    }
    procs.start(
        Node::Bus,
        vec![s("bus"), s("--prefetch"), scn.bus.prefetch.to_string()],
        true,
        true,
    )?;
    let scenario_file = std::fs::canonicalize(d.file)
        .with_context(|| format!("cannot read {}", d.file.display()))?;
    for h in 0..c.hosts {
        let mut args = vec![
            s("host"),
            s("--index"),
            h.to_string(),
            s("--hosts"),
            hosts.clone(),
            s("--containers"),
            containers.clone(),
            s("--scenario"),
            scenario_file.display().to_string(),
            s("--seed"),
            d.seed.to_string(),
        ];
        // A host keeps its containers' truth and the highest token it has seen across its
        // restarts, as a Docker daemon does.
        args.extend(durable(Node::Host(h)));
        for set in d.sets {
            args.extend([s("--set"), set.clone()]);
        }
        if c.fencing {
            args.push(s("--fencing"));
        }
        procs.start(Node::Host(h), args, true, true)?;
    }
    let addr = |n: Node| {
        procs
            .addr(n)
            .map(|a| a.to_string())
            .with_context(|| format!("{n} has no address"))
    };
    let store = procs
        .store_addrs()
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",");
    let bus = addr(Node::Bus)?;
    let host_addrs: Vec<String> = (0..c.hosts)
        .map(|h| addr(Node::Host(h)))
        .collect::<anyhow::Result<_>>()?;
    for i in 0..c.conductors {
        let mut args = vec![
            s("conductor"),
            s("--index"),
            i.to_string(),
            s("--bus"),
            bus.clone(),
            s("--store"),
            store.clone(),
            s("--rpc-workers"),
            c.rpc_workers.to_string(),
            s("--pool-workers"),
            c.pool_workers.to_string(),
            s("--overflow"),
            c.overflow.to_string(),
            s("--ordering"),
            c.ordering.to_string(),
            s("--recovery"),
            c.recovery.to_string(),
            s("--reconcile-interval"),
            humantime::format_duration(c.reconcile_interval).to_string(),
            s("--orphan-after"),
            humantime::format_duration(c.orphan_after).to_string(),
            s("--retry-policy"),
            scn.retry.policy.to_string(),
            s("--retry-base"),
            humantime::format_duration(scn.retry.base).to_string(),
            s("--retry-cap"),
            humantime::format_duration(scn.retry.cap).to_string(),
            s("--retry-max-attempts"),
            scn.retry.max_attempts.to_string(),
        ];
        args.extend(cluster_flags(scn));
        args.push(s("--host"));
        args.extend(host_addrs.iter().cloned());
        procs.start(Node::Conductor(i), args, false, true)?;
    }
    let mut args = vec![
        s("api"),
        s("--store"),
        store.clone(),
        s("--bus"),
        bus.clone(),
        s("--async-rpc"),
        scn.api.async_rpc.to_string(),
        s("--rpc-timeout"),
        humantime::format_duration(scn.api.rpc_timeout).to_string(),
    ];
    if scn.api.validate_state {
        args.push(s("--validate-state"));
    }
    if let Some(http) = d.http {
        args.extend([s("--http"), http.to_string()]);
    }
    args.extend(cluster_flags(scn));
    procs.start(Node::Api, args, true, true)?;
    procs.addr(Node::Api).context("the API has no address")
}

/// Starts the deployment, drives the client and the faults, drains and stops every service.
async fn run(a: &Args, scn: &Scenario, plan: &Plan, procs: &mut Procs) -> anyhow::Result<Outcome> {
    let api = start_deployment(
        &Deploy {
            scn,
            file: &a.scenario,
            sets: &a.sets,
            seed: plan.seed,
            out: &a.out,
            etcd: &a.etcd,
            http: None,
            journals: true,
            stores: a.stores,
        },
        procs,
    )?;

    // The conductors join the bus on their own; give them a moment so the first requests find
    // them (the open-loop client does not wait for anyone).
    watch_until(procs, Instant::now() + SETTLE).await;

    let mut cfg = ClientConfig::new(scn, plan.seed);
    cfg.duration = plan.load;
    let start = Instant::now();
    let client = Client::start(&cfg, api, start);
    let at = |us: u64| start + Duration::from_micros(us);
    for &(t, i, step) in &plan.steps {
        watch_until(procs, at(t)).await;
        scn.faults[i].kind.apply(procs, i, &step);
    }
    watch_until(procs, at(micros(plan.load))).await;
    procs.heal();
    let end = at(micros(plan.load + plan.drain));
    // The drain lasts its whole length: recovery, the reconciler and the sweeper still work
    // after the last answer, and the liveness invariants judge where they got to.
    watch_until(procs, end).await;
    let tally = client.tally();
    let unfinished = client.unfinished();
    procs.watch();
    stop_deployment(scn, procs);
    Ok(Outcome { tally, unfinished })
}

/// Stops every service of `scn`'s deployment by its PID (SIGTERM, then SIGKILL after
/// [`STOP_PATIENCE`]): the front first (nothing more is taken), then what holds the final state.
pub(crate) fn stop_deployment(scn: &Scenario, procs: &mut Procs) {
    let c = &scn.cluster;
    let mut front = vec![Node::Api];
    front.extend((0..c.conductors).map(Node::Conductor));
    procs.stop(&front, STOP_PATIENCE);
    let mut back = vec![Node::Store, Node::Bus];
    back.extend((0..c.hosts).map(Node::Host));
    procs.stop(&back, STOP_PATIENCE);
}

/// Sleeps until `t`, looking at the processes every [`WATCH`] (one that exited on its own is
/// noted).
async fn watch_until(procs: &mut Procs, t: Instant) {
    loop {
        let now = Instant::now();
        if now >= t {
            return;
        }
        tokio::time::sleep_until(t.min(now + WATCH)).await;
        procs.watch();
    }
}

/// Judges the logs, prints and writes the report, and decides the exit status.
fn report(
    a: &Args,
    scn: &Scenario,
    plan: &Plan,
    procs: &Procs,
    outcome: Outcome,
) -> anyhow::Result<ExitCode> {
    let logs = procs.logs();
    let found: HistoryFindings = match check_files(&logs, scn.checks.judged()) {
        Ok(f) => f,
        Err(e) => anyhow::bail!("the history cannot be judged: {e}"),
    };
    let broken: Vec<&str> = found.findings.counts.keys().map(String::as_str).collect();
    let expect: Vec<&str> = scn.checks.expect.iter().map(|i| i.name()).collect();
    let unexpected: Vec<&str> = broken
        .iter()
        .copied()
        .filter(|b| !expect.contains(b))
        .collect();
    let missing: Vec<&str> = expect
        .iter()
        .copied()
        .filter(|e| !broken.contains(e))
        .collect();
    let mut problems = procs.problems.clone();
    if let Some(why) = &found.not_judged_why {
        problems.push(format!("liveness not judged: {why}"));
    }
    let restarts = procs.restarts();
    let t = &outcome.tally;

    let mut out = String::new();
    let c = &scn.cluster;
    out += &format!(
        "cluster    {}: api, bus, {}, {} conductor{}, {} host{} on loopback; ordering {}, \
         routing {}; load {}, drain {}, seed {}\n",
        scn.name,
        match a.stores {
            1 => "store".to_string(),
            n => format!("{n} stores (one primary)"),
        },
        c.conductors,
        if c.conductors == 1 { "" } else { "s" },
        c.hosts,
        if c.hosts == 1 { "" } else { "s" },
        c.ordering,
        c.routing,
        humantime::format_duration(plan.load),
        humantime::format_duration(plan.drain),
        plan.seed
    );
    out += &format!(
        "client     {} requests, {} retries: {} ok, {} conflict, {} error, {} gave up; {} \
         attempts timed out, {} undelivered; {} unfinished\n",
        t.requests,
        t.retries,
        t.ok,
        t.conflict,
        t.error,
        t.gave_up,
        t.timed_out,
        t.undelivered,
        outcome.unfinished
    );
    let faults: Vec<String> = plan
        .steps
        .iter()
        .filter(|(_, _, s)| matches!(s, Step::Begin))
        .map(|(t, i, _)| {
            format!(
                "{} at {}",
                scn.faults[*i].kind.label(),
                humantime::format_duration(Duration::from_millis(t / 1000))
            )
        })
        .collect();
    out += &format!(
        "faults     {}\n",
        if faults.is_empty() {
            "none".to_string()
        } else {
            faults.join(", ")
        }
    );
    let r: Vec<String> = restarts.iter().map(|(n, k)| format!("{n} {k}")).collect();
    out += &format!(
        "restarts   {}\n",
        if r.is_empty() {
            "none".to_string()
        } else {
            r.join(", ")
        }
    );
    out += &found.to_string();
    for p in &problems {
        out += &format!("problem    {p}\n");
    }
    let ok = unexpected.is_empty() && missing.is_empty() && problems.is_empty();
    out += &format!(
        "verdict    {}{}{}\n",
        if ok { "ok" } else { "FAILED" },
        if unexpected.is_empty() {
            String::new()
        } else {
            format!("; unexpected violations of {}", unexpected.join(", "))
        },
        if missing.is_empty() {
            String::new()
        } else {
            format!("; expected violations not found: {}", missing.join(", "))
        },
    );

    let summary = serde_json::json!({
        "scenario": scn.name,
        "seed": plan.seed,
        "stores": a.stores,
        "load_s": plan.load.as_secs_f64(),
        "drain_s": plan.drain.as_secs_f64(),
        "client": t,
        "unfinished": outcome.unfinished,
        "restarts": restarts,
        "faults": faults,
        "violations": found.violations(),
        "counts": found.findings.counts,
        "expected": expect,
        "unexpected": unexpected,
        "missing_expected": missing,
        "problems": problems,
        "ok": ok,
        "logs": logs.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
    });
    let write = |name: &str, v: &serde_json::Value| -> anyhow::Result<()> {
        let p = a.out.join(name);
        let mut s = serde_json::to_string_pretty(v)?;
        s.push('\n');
        std::fs::write(&p, s).with_context(|| format!("cannot write {}", p.display()))
    };
    write("history.json", &found.to_json())?;
    write("cluster.json", &summary)?;
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(out.as_bytes()).and_then(|()| stdout.flush());
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
