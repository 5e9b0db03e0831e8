//! One simulated run: the reference deployment placed on madsim nodes (client, api, bus, store,
//! conductor-1…N, host-1…M), the open-loop client driving it, and the metrics it leaves.

use crate::checker::{Checker, InvariantSet, Snapshot};
use crate::recorder::SimRecorder;
use crate::scenario::{self, Scenario};
use crate::service::Backends;
use crate::trace::Trace;
use crate::workload::{Arrivals, Requests};
use conductor::api::{self, ApiConfig, RpcKind};
use conductor::bus::{self, BusConfig};
use conductor::conductor::{self as cond, ConductorConfig, Overflow};
use conductor::host::{self, HostModel, HostState};
use conductor::mem::{MemNet, MemNetConfig};
use conductor::net::{Listener, Net};
use conductor::op::{Status, Truth};
use conductor::proto::{Answer, Msg, OpSpec};
use conductor::recorder::{Recorder, SharedRecorder};
use conductor::store::{self, StoreState};
use madsim::runtime::{Handle, Runtime};
use reports::SeedMetrics;
use std::collections::BTreeMap;
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
}

impl Addrs {
    /// The layout for `conductors` conductors and `hosts` hosts.
    pub fn new(conductors: u32, hosts: u32) -> Self {
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
        }
    }
}

/// Names of the conductors, `conductor-1…N`.
pub fn conductor_names(n: u32) -> Vec<String> {
    (1..=n).map(|i| format!("conductor-{i}")).collect()
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
    // madsim's own network is unused (the services talk through `MemNet`), so its defaults
    // are fine.
    let cfg = madsim::Config::default();
    if scn.network.latency_min >= scn.network.latency_max {
        return Err(RunError::Setup(
            "network.latency: min must be below max".into(),
        ));
    }
    let mut rt = Runtime::with_seed_and_config(seed, cfg);
    // The guard against a run that never ends: load + drain + a margin.
    let limit = scn.duration + scn.drain + Duration::from_secs(3600);
    rt.set_time_limit(limit);
    let scn = scn.clone();
    let wall = std::time::Instant::now();
    let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        rt.block_on(async move { world(scn, seed, opts).await })
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

fn overflow(o: scenario::Overflow) -> Overflow {
    match o {
        scenario::Overflow::CallerRuns => Overflow::CallerRuns,
        scenario::Overflow::Reject => Overflow::Reject,
        scenario::Overflow::Queue => Overflow::Queue,
        scenario::Overflow::Unbounded => Overflow::Unbounded,
    }
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

async fn world(scn: Scenario, seed: u64, opts: RunOptions) -> SeedMetrics {
    let handle = Handle::current();
    let c = &scn.cluster;
    let addrs = Addrs::new(c.conductors, c.hosts);
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
        Arc::new(wake_at),
    );
    let net = Net::Mem(mem.clone());

    // Durable state: it outlives the nodes that serve it.
    let store_state = Arc::new(Mutex::new(StoreState::new(c.hosts)));
    let host_states: Vec<Arc<Mutex<HostState>>> = (0..c.hosts)
        .map(|_| Arc::new(Mutex::new(HostState::default())))
        .collect();
    {
        let mut st = store_state.lock().unwrap_or_else(|e| e.into_inner());
        for id in 0..u64::from(scn.workload.containers) {
            let h = st.precreate(id, Status::Running);
            host_states[h as usize]
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .set(id, Truth::Running);
            rec.precreated(id, h, Truth::Running);
        }
    }
    let model: Arc<dyn HostModel> = Arc::new(Backends::new(seed, &scn.backend));

    let (s, n) = (store_state.clone(), net.clone());
    let addr = addrs.store;
    place(&handle, "store", addr.ip(), move || {
        let (s, n) = (s.clone(), n.clone());
        // Without a journal serving cannot fail; durability is the state outliving the node.
        async move {
            let _ = store::serve(listen(&n, addr).await, s).await;
        }
    });

    let (addr, n, prefetch) = (addrs.bus, net.clone(), scn.bus.prefetch);
    place(&handle, "bus", addr.ip(), move || {
        let n = n.clone();
        async move { bus::serve(listen(&n, addr).await, BusConfig { prefetch }).await }
    });

    for (i, (&addr, state)) in addrs.hosts.iter().zip(&host_states).enumerate() {
        let (state, model, r, n) = (state.clone(), model.clone(), shared.clone(), net.clone());
        place(&handle, format!("host-{}", i + 1), addr.ip(), move || {
            let (state, model, r, n) = (state.clone(), model.clone(), r.clone(), n.clone());
            async move { host::serve(listen(&n, addr).await, i as u32, state, model, r).await }
        });
    }

    for (i, &addr) in addrs.conductors.iter().enumerate() {
        let cfg = ConductorConfig {
            index: i as u32,
            rpc_workers: c.rpc_workers,
            pool_workers: c.pool_workers,
            overflow: overflow(c.overflow),
            bus: addrs.bus,
            store: addrs.store,
            hosts: addrs.hosts.clone(),
            net: net.clone(),
            ip: addr.ip(),
        };
        let r = shared.clone();
        place(&handle, names[i].clone(), addr.ip(), move || {
            let (cfg, r) = (cfg.clone(), r.clone());
            async move { retrying(|| cond::run(cfg.clone(), r.clone())).await }
        });
    }

    let api_cfg = ApiConfig {
        validate_state: scn.api.validate_state,
        async_rpc: match scn.api.async_rpc {
            scenario::RpcKind::Call => RpcKind::Call,
            scenario::RpcKind::Cast => RpcKind::Cast,
        },
        rpc_timeout: scn.api.rpc_timeout,
        store: addrs.store,
        bus: addrs.bus,
        net: net.clone(),
        ip: addrs.api.ip(),
    };
    let (addr, r) = (addrs.api, shared.clone());
    place(&handle, "api", addr.ip(), move || {
        let (cfg, r) = (api_cfg.clone(), r.clone());
        async move {
            retrying(|| async {
                // Bind once per attempt: a failed start drops the listener with it.
                api::serve(listen(&cfg.net, addr).await, cfg.clone(), r.clone()).await
            })
            .await
        }
    });

    let client = handle.create_node().name("client").ip(addrs.client).build();
    let (r, api_addr, n, client_ip) = (rec.clone(), addrs.api, net.clone(), addrs.client);
    let (arrival, workload, duration) = (
        scn.workload.arrival.clone(),
        scn.workload.clone(),
        scn.duration,
    );
    let start = Instant::now();
    let load = client.spawn(async move {
        drive(
            r, &n, client_ip, api_addr, start, &arrival, &workload, seed, duration,
        )
        .await;
    });
    // A load task that ends early (it cannot: it only sleeps and sends) would still leave the
    // drain below to bound the run.
    let _ = load.await;
    // The load phase lasts `duration`, whenever its last arrival came.
    let load_end = start + scn.duration;
    if Instant::now() < load_end {
        exact_sleep(load_end).await;
    }
    rec.end_load(rec.now_us());
    // Drain: everything sent gets until `drain` to finish; stop as soon as nothing is left.
    let drain_end = start + scn.duration + scn.drain;
    loop {
        let now = Instant::now();
        if now >= drain_end || rec.in_flight() == 0 {
            break;
        }
        let step = Duration::from_secs(1).min(drain_end - now);
        sleep(step).await;
    }
    let end_us = rec.now_us();
    check_final(&rec, end_us, &store_state, &host_states);
    let mut m = rec.finish(end_us);
    m.messages = mem.messages();
    m
}

/// Installs the invariant checker (`[checks] invariants`, none for capacity runs) and the
/// trace in the run's recorder.
fn observe(rec: &SimRecorder, scn: &Scenario, seed: u64, opts: RunOptions) {
    // The scenario's names were validated when it was loaded; an unknown one cannot reach here,
    // and judging nothing is the safe reading if it ever did.
    let on = InvariantSet::from_names(&scn.checks.invariants).unwrap_or_default();
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

/// Starts a node running `init` (run again after a restart) at `ip`.
fn place<F, Fut>(handle: &Handle, name: impl Into<String>, ip: IpAddr, init: F)
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + 'static,
{
    handle.create_node().name(name).ip(ip).init(init).build();
}

/// Arms a simulated timer that wakes `waker` at `at`. Polling a madsim `Sleep` once registers
/// its timer, and madsim never cancels a registered timer, so the `Sleep` can be dropped: this
/// is a timer without a task of its own (one wake-up per network message instead of two).
fn wake_at(at: Instant, waker: std::task::Waker) {
    let mut sleep = exact_sleep(at);
    let mut cx = std::task::Context::from_waker(&waker);
    if std::pin::Pin::new(&mut sleep).poll(&mut cx).is_ready() {
        waker.wake();
    }
}

/// Retries a service's start until it runs to completion, with capped backoff: services start
/// in any order, and one that cannot reach its peers yet tries again.
async fn retrying<F, Fut, E>(mut start: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), E>>,
{
    let mut backoff = Duration::from_millis(10);
    loop {
        if start().await.is_ok() {
            backoff = Duration::from_millis(10);
        }
        sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

/// The open-loop client: sends each request at its intended time, never waiting for answers.
#[allow(clippy::too_many_arguments)]
async fn drive(
    rec: Arc<SimRecorder>,
    net: &Net,
    ip: IpAddr,
    api: SocketAddr,
    start: Instant,
    arrival: &scenario::Arrival,
    workload: &scenario::Workload,
    seed: u64,
    duration: Duration,
) {
    let mut requests = match Requests::new(workload, seed) {
        Some(r) => r,
        None => return,
    };
    let link = loop {
        match net.connect(ip, api).await {
            Ok((link, mut reader)) => {
                let r = rec.clone();
                let outstanding: Arc<Mutex<BTreeMap<u64, u64>>> = Arc::default();
                let o = outstanding.clone();
                tokio::spawn(async move {
                    while let Ok(Some(msg)) = reader.next().await {
                        if let Msg::Answer { id, answer } = msg {
                            let intended = o.lock().unwrap_or_else(|e| e.into_inner()).remove(&id);
                            // Refused ops are counted (by the API), not timed.
                            let refused =
                                matches!(answer, Answer::Conflict(_) | Answer::Unavailable);
                            if let (Some(intended), false) = (intended, refused) {
                                r.answered(intended, r.now_us());
                                if answer == Answer::Timeout {
                                    r.timed_out(intended);
                                }
                            }
                        }
                    }
                });
                break (link, outstanding);
            }
            Err(_) => sleep(Duration::from_millis(10)).await,
        }
    };
    let (link, outstanding) = link;
    for (id, intended_us) in Arrivals::new(arrival, seed, duration).enumerate() {
        // The clock is read through the recorder: `Instant::now()` is dear under madsim.
        if intended_us > rec.now_us() {
            exact_sleep(start + Duration::from_micros(intended_us)).await;
        }
        let (container, kind) = requests.draw();
        let op = OpSpec {
            id: id as u64,
            container,
            kind,
            intended_us,
        };
        rec.submitted(&op);
        if id % 1024 == 1023 {
            // madsim keeps a weak reference to every task ever spawned until asked to count
            // them; counting prunes the dead ones, which keeps memory flat in run length.
            let _ = Handle::current().metrics().num_tasks();
        }
        outstanding
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(op.id, intended_us);
        link.send(Msg::Request(op));
    }
}
