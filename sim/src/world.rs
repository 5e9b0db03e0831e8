//! One simulated run: the reference deployment placed on madsim nodes (client, api, bus, store,
//! conductor-1…N, host-1…M), the open-loop client driving it, and the metrics it leaves.

use crate::client::{self, ClientConfig};
use crate::etcd::EtcdCluster;
use crate::faults::{self, Injector, NodeRef, Nodes};
use crate::recorder::SimRecorder;
use crate::trace::Trace;
use checker::{Checker, Kind, Snapshot};
use conductor::api::{self, ApiConfig};
use conductor::bus::{self, BusConfig};
use conductor::cluster::Routing;
use conductor::conductor::{self as cond, ConductorConfig, StrategyFactory};
use conductor::coordination::{Coordination, Engine};
use conductor::host::{self, HostModel, HostState};
use conductor::journal::MemFile;
use conductor::mem::{MemNet, MemNetConfig};
use conductor::net::{Listener, Net};
use conductor::op::Status;
use conductor::recorder::{Recorder, SharedRecorder};
use conductor::store::{self, StoreClock, StoreState};
use madsim::runtime::{Handle, Runtime};
use madsim::task::NodeId;
use reports::SeedMetrics;
use scenario::fault::FaultKind;
use scenario::host_model::{Backends, HostFaults, Sleep};
use scenario::{Model, Node, Scenario};
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::{sleep, Instant};

/// The port every service listens on (each node has its own address).
const PORT: u16 = 7000;

/// Why a run could not complete.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The scenario asks for something the world cannot build.
    #[error("{0}")]
    Setup(String),
    /// The simulation panicked (a bug in the simulator or the deployment, never bad input).
    #[error("seed {seed}: the simulation aborted: {message}")]
    Aborted {
        /// The seed.
        seed: u64,
        /// The panic message.
        message: String,
    },
}

/// Where each node lives.
#[derive(Debug, Clone)]
pub struct Addrs {
    /// The API.
    pub api: SocketAddr,
    /// The bus.
    pub bus: SocketAddr,
    /// The store.
    pub store: SocketAddr,
    /// The client.
    pub client: IpAddr,
    /// The conductors, by index.
    pub conductors: Vec<SocketAddr>,
    /// The hosts, by index.
    pub hosts: Vec<SocketAddr>,
    /// The etcd members, by index (none when the store coordinates).
    pub etcd: Vec<SocketAddr>,
}

impl Addrs {
    /// The layout for `conductors` conductors, `hosts` hosts and `etcd` etcd members.
    pub fn new(conductors: u32, hosts: u32, etcd: u32) -> Self {
        let ip = |a: u8, n: u32| {
            let [_, _, hi, lo] = n.to_be_bytes();
            IpAddr::V4(Ipv4Addr::new(10, a, hi, lo))
        };
        let sock = |a: u8, n: u32| SocketAddr::new(ip(a, n), PORT);
        Addrs {
            api: sock(0, 1),
            bus: sock(0, 2),
            store: sock(0, 3),
            client: ip(0, 4),
            conductors: (1..=conductors).map(|i| sock(1, i)).collect(),
            hosts: (1..=hosts).map(|i| sock(2, i)).collect(),
            etcd: (1..=etcd).map(|i| sock(3, i)).collect(),
        }
    }
}

/// Names of the conductors, `conductor-1…N`.
pub fn conductor_names(n: u32) -> Vec<String> {
    (0..n).map(|i| Node::Conductor(i).to_string()).collect()
}

/// What a run does besides running: none of it changes what happens in the simulation.
#[derive(Debug, Default)]
pub struct RunOptions {
    /// Writes the event trace of the run here (`replay --trace`).
    pub trace: Option<Trace>,
}

/// Runs `scn` with `seed` on the current thread (give each seed a fresh thread) and returns
/// its metrics.
pub fn run_seed(scn: &Scenario, seed: u64) -> Result<SeedMetrics, RunError> {
    run_seed_with(scn, seed, RunOptions::default())
}

/// [`run_seed`] with options (a trace): the same world, the same result.
pub fn run_seed_with(scn: &Scenario, seed: u64, opts: RunOptions) -> Result<SeedMetrics, RunError> {
    run_seed_with_strategy(scn, seed, opts, None)
}

/// [`run_seed_with`], the conductors running `strategy` (if given) instead of the one
/// `cluster.ordering` names: a strategy under test (reports still name `cluster.ordering`).
pub fn run_seed_with_strategy(
    scn: &Scenario,
    seed: u64,
    opts: RunOptions,
    strategy: Option<StrategyFactory>,
) -> Result<SeedMetrics, RunError> {
    // madsim's own network is unused (the services talk through `MemNet`), so its defaults
    // are fine.
    let cfg = madsim::Config::default();
    if scn.network.latency_min >= scn.network.latency_max {
        return Err(RunError::Setup(
            "network.latency: min must be below max".into(),
        ));
    }
    // The runtime's seed drives only the scheduler's choices: every stream of the model is
    // keyed by `seed` itself, so a schedule seed reorders ready tasks and nothing else.
    let mut rt = Runtime::with_seed_and_config(scn.simulation.schedule_seed.unwrap_or(seed), cfg);
    // The guard against a run that never ends: load + drain + a margin.
    let limit = scn.duration + scn.drain + Duration::from_secs(3600);
    rt.set_time_limit(limit);
    let scn = scn.clone();
    let wall = std::time::Instant::now();
    let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        rt.block_on(async move { world(scn, seed, opts, strategy).await })
    }));
    match out {
        Ok(mut m) => {
            m.wall_s = wall.elapsed().as_secs_f64();
            Ok(m)
        }
        Err(p) => Err(RunError::Aborted {
            seed,
            message: panic_message(&p),
        }),
    }
}

fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<String>()
        .cloned()
        .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "panic".into())
}

/// Listens on a node's own address, waiting out the previous incarnation's listener if a
/// restarted node comes back before it was dropped.
async fn listen(net: &Net, addr: SocketAddr) -> Listener {
    loop {
        match net.bind(addr).await {
            Ok(l) => return l,
            Err(_) => sleep(Duration::from_millis(1)).await,
        }
    }
}

async fn world(
    scn: Scenario,
    seed: u64,
    opts: RunOptions,
    strategy: Option<StrategyFactory>,
) -> SeedMetrics {
    let handle = Handle::current();
    let c = &scn.cluster;
    let etcd_members = c.etcd_members.unwrap_or(0);
    let addrs = Addrs::new(c.conductors, c.hosts, etcd_members);
    let names = conductor_names(c.conductors);
    let metrics = SeedMetrics::new(
        seed,
        scn.warmup.as_micros() as u64,
        &names,
        c.pool_workers,
        c.rpc_workers,
    );
    let rec = Arc::new(SimRecorder::new(metrics, scn.duration.as_micros() as u64));
    observe(&rec, &scn, seed, opts);
    let shared: SharedRecorder = rec.clone();
    let mem = MemNet::new(
        MemNetConfig {
            latency_min: scn.network.latency_min,
            latency_max: scn.network.latency_max,
            loss: scn.network.loss,
        },
        seed,
        {
            let time = madsim::time::TimeHandle::current();
            Arc::new(move || time.now_instant())
        },
        {
            let time = madsim::time::TimeHandle::current();
            Arc::new(move |at, waker: &std::task::Waker| wake_at(&time, at, waker))
        },
    );
    let net = Net::Mem(mem.clone());

    // The fault schedule is drawn before the run (scheduled faults and the nemesis's draws),
    // from streams of its own, over every node the injector may act on.
    let fault_nodes: Vec<Node> = [Node::Api, Node::Bus, Node::Store]
        .into_iter()
        .chain((0..c.conductors).map(Node::Conductor))
        .chain((0..c.hosts).map(Node::Host))
        .chain((0..etcd_members).map(Node::Etcd))
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let schedule = faults::schedule(&scn, seed, &fault_nodes);
    // Durable state is what the real services journal, and only that: a service the schedule
    // kills writes the real journal code to an in-memory file that outlives its node, and its
    // restart is rebuilt from that file alone. (A service never killed keeps its state in
    // memory: the same answers, without the journal's cost per write.)
    let killed: std::collections::BTreeSet<Node> = schedule
        .iter()
        .filter_map(|f| match &f.kind {
            FaultKind::Kill(k) => Some(k.node),
            _ => None,
        })
        .collect();
    let store_clock: StoreClock = {
        let r = rec.clone();
        Arc::new(move || r.now_us())
    };
    let store_file = killed.contains(&Node::Store).then(MemFile::new);
    let store_state = Arc::new(Mutex::new(match &store_file {
        Some(f) => {
            StoreState::open_memory(f, c.hosts, store_clock.clone())
                .expect("an empty in-memory journal opens")
                .0
        }
        None => {
            let mut s = StoreState::new(c.hosts);
            s.set_clock(store_clock.clone());
            s
        }
    }));
    let host_files: Vec<Option<MemFile>> = (0..c.hosts)
        .map(|i| killed.contains(&Node::Host(i)).then(MemFile::new))
        .collect();
    let host_states: Vec<Arc<Mutex<HostState>>> = host_files
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let st = match f {
                Some(f) => {
                    HostState::open_memory(f, &Node::Host(i as u32).to_string(), c.fencing)
                        .expect("an empty in-memory journal opens")
                        .0
                }
                None => HostState::with_fencing(c.fencing),
            };
            Arc::new(Mutex::new(st))
        })
        .collect();
    // The `ops` model acts on pre-created containers; the `lifecycle` model creates its own
    // (`containers` is a key of the `ops` model).
    // The `mixed` model's pre-created containers start in its `initial` shares of states.
    if matches!(scn.workload.model, Model::Ops | Model::Mixed) {
        let mut st = store_state.lock().unwrap_or_else(|e| e.into_inner());
        for id in 0..u64::from(scn.workload.containers) {
            let status = match scn.workload.model {
                Model::Mixed => scenario::workload::initial_status(&scn.workload.initial, id),
                _ => Status::Running,
            };
            let truth = scenario::workload::truth_of(status);
            let h = st
                .precreate_durably(id, status)
                .expect("an in-memory journal takes every write");
            host_states[h as usize]
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .set_durably(id, truth)
                .expect("an in-memory journal takes every write");
            rec.precreated(id, h, truth);
        }
    }
    let host_faults = Arc::new(HostFaults::new(c.hosts));
    // Service times end exactly when they should (see `exact_sleep`).
    let host_sleep: Sleep = Arc::new(|d| {
        let at = madsim::time::TimeHandle::current().now_instant() + d;
        Box::pin(exact_sleep(at))
    });
    let model: Arc<dyn HostModel> = Arc::new(Backends::with_faults(
        seed,
        &scn.backend,
        host_faults.clone(),
        host_sleep,
    ));
    // Every node the fault injector may act on.
    let mut nodes = Nodes::new();
    let mut node = |node: Node, id: NodeId, ip: IpAddr| {
        nodes.insert(node, NodeRef { id, ip });
    };

    // With `coordination = "etcd"` the store's locks, leases, membership and tokens are a
    // simulated etcd cluster's, on nodes of their own.
    let etcd = (c.coordination == Engine::Etcd)
        .then(|| EtcdCluster::new(mem.clone(), &addrs.etcd, seed, None));
    if let Some(cluster) = &etcd {
        for (i, &addr) in addrs.etcd.iter().enumerate() {
            let cluster = cluster.clone();
            let id = place(
                &handle,
                Node::Etcd(i as u32).to_string(),
                addr.ip(),
                move || cluster.clone().member(i),
            );
            node(Node::Etcd(i as u32), id, addr.ip());
        }
    }

    // The bus's TTLs are on the services' clock too.
    let bus_clock = store_clock.clone();
    let (s, n, hosts) = (store_state.clone(), net.clone(), c.hosts);
    let addr = addrs.store;
    let id = place(&handle, "store", addr.ip(), move || {
        let (s, n, file, clock) = (
            s.clone(),
            n.clone(),
            store_file.clone(),
            store_clock.clone(),
        );
        // A new client of the engine at every start, as a store process connects anew.
        let engine = etcd
            .as_ref()
            .map(|e| Arc::new(e.client(addr.ip())) as Arc<dyn Coordination>);
        async move {
            // Every start, the first included, is a replay of the journal: the store is what
            // it made durable, nothing more.
            if let Some(f) = &file {
                match StoreState::open_memory(f, hosts, clock) {
                    Ok((st, _)) => *s.lock().unwrap_or_else(|e| e.into_inner()) = st,
                    Err(e) => panic!("the simulated store cannot restart: {e}"),
                }
            }
            // An in-memory journal takes every write: serving cannot fail.
            let _ = store::serve_with(listen(&n, addr).await, s, engine).await;
        }
    });
    node(Node::Store, id, addr.ip());

    let (addr, n, prefetch) = (addrs.bus, net.clone(), scn.bus.prefetch);
    let id = place(&handle, "bus", addr.ip(), move || {
        let (n, clock) = (n.clone(), bus_clock.clone());
        async move { bus::serve(listen(&n, addr).await, BusConfig { prefetch, clock }).await }
    });
    node(Node::Bus, id, addr.ip());

    for (i, ((&addr, state), file)) in addrs
        .hosts
        .iter()
        .zip(&host_states)
        .zip(host_files)
        .enumerate()
    {
        let (state, model, r, n) = (state.clone(), model.clone(), shared.clone(), net.clone());
        let (host_node, fencing) = (Node::Host(i as u32), c.fencing);
        let id = place(&handle, host_node.to_string(), addr.ip(), move || {
            let (state, model, r, n) = (state.clone(), model.clone(), r.clone(), n.clone());
            let file = file.clone();
            async move {
                // As the store: every start is a replay of the host's journal.
                if let Some(f) = &file {
                    match HostState::open_memory(f, &host_node.to_string(), fencing) {
                        Ok((st, _)) => *state.lock().unwrap_or_else(|e| e.into_inner()) = st,
                        Err(e) => panic!("the simulated {host_node} cannot restart: {e}"),
                    }
                }
                // An in-memory journal takes every write: serving cannot fail.
                let _ = host::serve(listen(&n, addr).await, i as u32, state, model, r).await;
            }
        });
        node(host_node, id, addr.ip());
    }

    // One list of the hosts' addresses, shared by every conductor.
    let host_addrs: Arc<[SocketAddr]> = addrs.hosts.clone().into();
    for (i, &addr) in addrs.conductors.iter().enumerate() {
        let cfg = ConductorConfig {
            index: i as u32,
            conductors: c.conductors,
            rpc_workers: c.rpc_workers,
            pool_workers: c.pool_workers,
            overflow: c.overflow,
            routing: c.routing,
            ordering: c.ordering,
            strategy: strategy.clone(),
            lease_ttl: c.lease_ttl,
            recovery: c.recovery,
            reconcile_interval: c.reconcile_interval,
            orphan_after: c.orphan_after,
            membership: c.routing == Routing::Affinity,
            retry: scn.retry.to_policy(),
            budget_ratio: scn.retry.budget_ratio,
            budget_min_per_s: scn.retry.budget_min_per_s,
            bus: addrs.bus,
            store: addrs.store,
            other_stores: Vec::new(),
            hosts: host_addrs.clone(),
            net: net.clone(),
            ip: addr.ip(),
        };
        let r = shared.clone();
        let id = place(&handle, names[i].clone(), addr.ip(), move || {
            let (cfg, r) = (cfg.clone(), r.clone());
            // A refused conductor (a second live one with its index) stops, as the real one
            // exits: the world gives each conductor its own index, so it does not happen.
            async move {
                cond::run(cfg.clone(), r.clone()).await;
            }
        });
        node(Node::Conductor(i as u32), id, addr.ip());
    }

    let api_cfg = ApiConfig {
        validate_state: scn.api.validate_state,
        async_rpc: scn.api.async_rpc,
        rpc_timeout: scn.api.rpc_timeout,
        routing: c.routing,
        conductors: c.conductors,
        lease_ttl: c.lease_ttl,
        store: addrs.store,
        other_stores: Vec::new(),
        bus: addrs.bus,
        net: net.clone(),
        ip: addrs.api.ip(),
    };
    let (addr, r) = (addrs.api, shared.clone());
    let id = place(&handle, "api", addr.ip(), move || {
        let (cfg, r) = (api_cfg.clone(), r.clone());
        async move { api::serve(listen(&cfg.net, addr).await, cfg.clone(), r.clone()).await }
    });
    node(Node::Api, id, addr.ip());

    let start = Instant::now();
    let load_end_us = scn.duration.as_micros() as u64;
    debug_assert!(
        nodes.keys().eq(fault_nodes.iter()),
        "the schedule was drawn over the nodes placed"
    );
    let injector = Arc::new(Injector::new(
        handle.clone(),
        mem.clone(),
        nodes,
        host_faults,
        rec.clone(),
        seed,
    ));
    if !schedule.is_empty() {
        tokio::spawn(injector.clone().run(schedule.clone(), start, load_end_us));
    }

    let client_node = handle.create_node().name("client").ip(addrs.client).build();
    let client = client::start(
        &client_node,
        rec.clone(),
        net.clone(),
        client::Placement {
            ip: addrs.client,
            api: addrs.api,
            start,
        },
        ClientConfig::new(&scn, seed),
    );
    // The load phase lasts `duration`, whenever its last arrival came.
    exact_sleep(start + scn.duration).await;
    // Faults stop with the load: everything heals, then the world drains.
    injector.heal();
    rec.end_load(rec.now_us());
    // Drain: everything sent, and every request still scheduled (a lifecycle's later steps,
    // retries), gets until `drain` to finish. A capacity run stops as soon as nothing is left;
    // when liveness is judged the drain lasts its whole length, since recovery, the
    // reconciler and the orphan sweeper still work after the last answer.
    let liveness = scn
        .checks
        .invariants
        .iter()
        .any(|i| i.kind() == Kind::Liveness);
    let drain_end = start + scn.duration + scn.drain;
    loop {
        let now = Instant::now();
        let idle = rec.in_flight() == 0 && client.pending() == 0;
        if now >= drain_end || (idle && !liveness) {
            break;
        }
        let step = Duration::from_secs(1).min(drain_end - now);
        sleep(step).await;
        rec.progress_at(rec.now_us());
    }
    let end_us = rec.now_us();
    rec.progress_done((scn.duration + scn.drain).as_micros() as u64);
    check_final(&rec, end_us, &store_state, &host_states);
    let mut m = rec.finish(end_us);
    m.messages = mem.messages();
    m.faults = faults::to_json(&schedule);
    m
}

/// Installs the invariant checker (`[checks] invariants`, none for capacity runs) and the
/// trace in the run's recorder.
fn observe(rec: &SimRecorder, scn: &Scenario, seed: u64, opts: RunOptions) {
    let on = scn.checks.judged();
    if !on.is_empty() {
        rec.set_checker(Checker::new(seed, on));
    }
    if let Some(t) = opts.trace {
        rec.set_trace(t);
    }
}

/// Judges the end of the drain: the store's records and op records against the hosts' truths.
fn check_final(
    rec: &SimRecorder,
    end_us: u64,
    store: &Mutex<StoreState>,
    hosts: &[Arc<Mutex<HostState>>],
) {
    if !rec.checking() {
        return;
    }
    let store = store.lock().unwrap_or_else(|e| e.into_inner());
    let guards: Vec<_> = hosts
        .iter()
        .map(|h| h.lock().unwrap_or_else(|e| e.into_inner()))
        .collect();
    let hosts: Vec<&HostState> = guards.iter().map(|g| &**g).collect();
    rec.check_final(end_us, &Snapshot::capture(&store, &hosts));
}

/// A simulated sleep that ends exactly at `at`. madsim, like tokio, makes `sleep_until` last at
/// least 1 ms; that rounding would bunch messages and arrivals less than 1 ms apart (and skew
/// the arrival process at high rates), so the deadline is set again, exactly.
pub fn exact_sleep(at: Instant) -> madsim::time::Sleep {
    let mut sleep = madsim::time::sleep_until(at);
    std::pin::Pin::new(&mut sleep).reset(at);
    sleep
}

/// Starts a node running `init` (run again after a restart) at `ip`; returns its id for the
/// fault injector.
fn place<F, Fut>(handle: &Handle, name: impl Into<String>, ip: IpAddr, init: F) -> NodeId
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + 'static,
{
    handle
        .create_node()
        .name(name)
        .ip(ip)
        .init(init)
        .build()
        .id()
}

/// Arms a simulated timer that wakes `waker` at `at`. Polling a madsim `Sleep` once registers
/// its timer, and madsim never cancels a registered timer, so the `Sleep` can be dropped: this
/// is a timer without a task of its own (one wake-up per network message instead of two). The
/// runtime's time handle is the caller's (no thread-local look-up per message), and the waker is
/// cloned once, by the timer that keeps it.
fn wake_at(time: &madsim::time::TimeHandle, at: Instant, waker: &std::task::Waker) {
    // As `exact_sleep`: madsim's at-least-1-ms deadline, set again exactly.
    let mut sleep = time.sleep_until(at);
    std::pin::Pin::new(&mut sleep).reset(at);
    let mut cx = std::task::Context::from_waker(waker);
    if std::pin::Pin::new(&mut sleep).poll(&mut cx).is_ready() {
        waker.wake_by_ref();
    }
}
