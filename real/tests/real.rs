//! The reference deployment for real: real tokio, real TCP on loopback, wall-clock time.
//!
//! In-process tests start the store, the bus, hosts, a conductor and the API as tasks of one
//! runtime and drive them as a client over TCP; one test runs the `conductor` binary, one process
//! per service, and drives it with `conductor client`. Nothing here depends on the machine's
//! speed beyond generous timeouts.
//!
//! Run with `RUSTFLAGS= CARGO_TARGET_DIR=target/real cargo test --release -p real`.
#![cfg(not(madsim))]

use conductor::api::{self, ApiConfig, RpcKind};
use conductor::bus::{self, BusConfig};
use conductor::conductor::{self as cond, ConductorConfig, Overflow};
use conductor::host::{self, HostModel, HostState};
use conductor::net::{Listener, Net};
use conductor::op::{HostError, OpKind, Status, Truth};
use conductor::proto::{Answer, Failure, HostCmd, HostResp, Msg, OpSpec};
use conductor::recorder::{Event, Recorder, SharedRecorder};
use conductor::store::{self, StoreState};
use conductor::wire;
use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;

mod common;
use common::{scratch, start, BIN, PATIENCE};

/// Counts what the services report.
#[derive(Default)]
struct Counts {
    /// Ops a host applied successfully (by id: each must appear once).
    applied_ok: BTreeSet<u64>,
    /// Ops a host refused or failed.
    applied_err: u64,
    /// Ops applied more than once.
    applied_twice: u64,
    terminal_ok: u64,
    terminal_failed: u64,
    arrivals: u64,
    exhausted: u64,
    caller_runs: u64,
}

struct Counting {
    start: Instant,
    counts: Mutex<Counts>,
}

impl Counting {
    fn new() -> Arc<Self> {
        Arc::new(Counting {
            start: Instant::now(),
            counts: Mutex::default(),
        })
    }

    fn with<T>(&self, f: impl FnOnce(&Counts) -> T) -> T {
        f(&self.counts.lock().unwrap())
    }
}

impl Recorder for Counting {
    fn now_us(&self) -> u64 {
        self.start.elapsed().as_micros() as u64
    }

    fn record(&self, ev: Event) {
        let mut c = self.counts.lock().unwrap();
        match ev {
            Event::Applied { op, result, .. } => {
                if result.is_ok() {
                    if !c.applied_ok.insert(op.id) {
                        c.applied_twice += 1;
                    }
                } else {
                    c.applied_err += 1;
                }
            }
            Event::Terminal { ok: true, .. } => c.terminal_ok += 1,
            Event::Terminal { ok: false, .. } => c.terminal_failed += 1,
            Event::PoolArrival { exhausted, .. } => {
                c.arrivals += 1;
                c.exhausted += u64::from(exhausted);
            }
            Event::CallerRuns { .. } => c.caller_runs += 1,
            _ => {}
        }
    }
}

/// Every op takes the same time at the host and none fails.
struct Fixed(Duration);

impl HostModel for Fixed {
    fn service_time(&self, _host: u32, _cmd: &HostCmd) -> Duration {
        self.0
    }
    fn fails(&self, _host: u32, _cmd: &HostCmd) -> bool {
        false
    }
}

struct Setup {
    hosts: u32,
    containers: u64,
    async_rpc: RpcKind,
    pool_workers: u32,
    overflow: Overflow,
    service: Duration,
}

/// A deployment running as tasks of the test's runtime; dropping it stops them.
struct Deployment {
    api: SocketAddr,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for Deployment {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

async fn bind() -> (Listener, SocketAddr) {
    let l = Net::Tcp
        .bind(SocketAddr::new(LOOPBACK, 0))
        .await
        .expect("bind");
    let a = l.local_addr().expect("local addr");
    (l, a)
}

/// Starts every service on loopback. All listeners are bound before anything connects, so no
/// start order can fail.
async fn deploy(s: &Setup, rec: SharedRecorder) -> Deployment {
    let (store_l, store_a) = bind().await;
    let (bus_l, bus_a) = bind().await;
    let (api_l, api_a) = bind().await;
    let mut hosts = Vec::new();
    for _ in 0..s.hosts {
        hosts.push(bind().await);
    }

    let mut st = StoreState::new(s.hosts);
    let mut host_states: Vec<_> = (0..s.hosts).map(|_| HostState::default()).collect();
    for id in 0..s.containers {
        let h = st.precreate(id, Status::Running);
        host_states[h as usize].set(id, Truth::Running);
    }

    let store_state = Arc::new(Mutex::new(st));
    let mut tasks = vec![tokio::spawn(async move {
        // Without a journal the store cannot fail: it serves until the test ends.
        let _ = store::serve(store_l, store_state).await;
    })];
    tasks.push(tokio::spawn(bus::serve(
        bus_l,
        BusConfig {
            prefetch: 0,
            clock: Arc::new(conductor::recorder::wall_clock_us),
        },
    )));
    let model: Arc<dyn HostModel> = Arc::new(Fixed(s.service));
    let mut host_addrs = Vec::new();
    for (i, ((l, a), state)) in hosts.into_iter().zip(host_states).enumerate() {
        host_addrs.push(a);
        let (model, rec) = (model.clone(), rec.clone());
        tasks.push(tokio::spawn(async move {
            // Without a journal the host cannot fail: it serves until the test ends.
            let _ = host::serve(l, i as u32, Arc::new(Mutex::new(state)), model, rec).await;
        }));
    }
    let cfg = ConductorConfig::single(
        64,
        s.pool_workers,
        s.overflow,
        bus_a,
        store_a,
        host_addrs,
        Net::Tcp,
        LOOPBACK,
    );
    let r = rec.clone();
    tasks.push(tokio::spawn(async move {
        let refused = cond::run(cfg, r).await;
        panic!("the bus refused the conductor: {refused}");
    }));
    let cfg = ApiConfig {
        validate_state: false,
        async_rpc: s.async_rpc,
        rpc_timeout: PATIENCE,
        routing: conductor::cluster::Routing::RoundRobin,
        conductors: 1,
        lease_ttl: Duration::from_secs(10),
        store: store_a,
        other_stores: Vec::new(),
        bus: bus_a,
        net: Net::Tcp,
        ip: LOOPBACK,
    };
    tasks.push(tokio::spawn(async move {
        api::serve(api_l, cfg, rec).await;
    }));
    Deployment { api: api_a, tasks }
}

/// Sends `n` ops at once, as one client on one connection, and collects every answer by op id.
async fn drive(api: SocketAddr, n: u64, containers: u64, kind: OpKind) -> BTreeMap<u64, Answer> {
    let stream = TcpStream::connect(api).await.expect("connect to the api");
    let (link, mut reader) = wire::attach(stream);
    for i in 0..n {
        let sent = link.send(Msg::Request(OpSpec {
            id: i + 1,
            container: i % containers,
            kind,
            intended_us: 0,
            deadline: None,
        }));
        assert!(sent, "the api connection closed");
    }
    let mut answers = BTreeMap::new();
    let collect = async {
        while (answers.len() as u64) < n {
            match reader.next().await.expect("read an answer") {
                Some(Msg::Answer { id, answer }) => {
                    assert!(
                        answers.insert(id, answer).is_none(),
                        "op {id} answered twice"
                    );
                }
                Some(other) => panic!("unexpected message from the api: {other:?}"),
                None => panic!("the api closed the connection"),
            }
        }
    };
    tokio::time::timeout(PATIENCE, collect)
        .await
        .unwrap_or_else(|_| panic!("{} of {n} ops answered within {PATIENCE:?}", answers.len()));
    answers
}

/// Waits until `done` holds of the counts, or fails the test after [`PATIENCE`].
async fn settle(rec: &Counting, what: &str, done: impl Fn(&Counts) -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !rec.with(&done) {
        assert!(
            Instant::now() < deadline,
            "{what}: not reached within {PATIENCE:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

const OPS: u64 = 200;

/// Two pool workers, 50 ms at the host and 200 ops sent at once: the pool is exhausted and the
/// RPC slots run ops themselves (caller-runs), and still every op is accepted and applied once.
async fn caller_runs(async_rpc: RpcKind) {
    let rec = Counting::new();
    let setup = Setup {
        hosts: 2,
        containers: 10,
        async_rpc,
        pool_workers: 2,
        overflow: Overflow::CallerRuns,
        service: Duration::from_millis(50),
    };
    let d = deploy(&setup, rec.clone()).await;
    let answers = drive(d.api, OPS, setup.containers, OpKind::Start).await;
    assert_eq!(answers.len() as u64, OPS);
    for (id, a) in &answers {
        assert_eq!(*a, Answer::Accepted, "op {id}");
    }
    settle(&rec, "every op terminal", |c| {
        c.terminal_ok + c.terminal_failed >= OPS
    })
    .await;
    rec.with(|c| {
        assert_eq!(c.terminal_ok, OPS, "ops done");
        assert_eq!(c.terminal_failed, 0, "ops failed");
        // Every container is where the store placed it: no host answered 404.
        assert_eq!(c.applied_err, 0, "ops the hosts refused");
        assert_eq!(c.applied_ok.len() as u64, OPS, "ops applied");
        assert_eq!(c.applied_twice, 0, "ops applied twice");
        assert_eq!(c.arrivals, OPS, "pool arrivals");
        assert!(c.exhausted > 0, "the pool of 2 was never exhausted");
        assert!(c.caller_runs > 0, "no RPC slot ran an op itself");
        assert!(c.caller_runs <= c.exhausted);
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn call_exhausts_the_pool_and_callers_run() {
    caller_runs(RpcKind::Call).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cast_exhausts_the_pool_and_callers_run() {
    caller_runs(RpcKind::Cast).await;
}

/// `reject`: the ops that find the pool busy fail fast and never reach a host.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reject_fails_what_finds_the_pool_busy() {
    let rec = Counting::new();
    let setup = Setup {
        hosts: 1,
        containers: 10,
        async_rpc: RpcKind::Call,
        pool_workers: 2,
        overflow: Overflow::Reject,
        service: Duration::from_millis(50),
    };
    let d = deploy(&setup, rec.clone()).await;
    let answers = drive(d.api, OPS, setup.containers, OpKind::Start).await;
    let rejected = answers
        .values()
        .filter(|a| **a == Answer::Error(Failure::PoolRejected))
        .count() as u64;
    let accepted = answers.values().filter(|a| **a == Answer::Accepted).count() as u64;
    assert_eq!(accepted + rejected, OPS, "{answers:?}");
    assert!(rejected > 0, "the pool of 2 never rejected");
    settle(&rec, "every op terminal", |c| {
        c.terminal_ok + c.terminal_failed >= OPS
    })
    .await;
    rec.with(|c| {
        assert_eq!(c.terminal_ok, accepted);
        assert_eq!(c.terminal_failed, rejected);
        assert_eq!(c.applied_ok.len() as u64, accepted);
        assert_eq!(c.exhausted, rejected);
        assert_eq!(c.caller_runs, 0);
    });
}

/// `queue`: every op is accepted at once and waits for a worker.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn queue_accepts_everything_and_drains() {
    let rec = Counting::new();
    let setup = Setup {
        hosts: 3,
        containers: 9,
        async_rpc: RpcKind::Call,
        pool_workers: 4,
        overflow: Overflow::Queue,
        service: Duration::from_millis(5),
    };
    let d = deploy(&setup, rec.clone()).await;
    let answers = drive(d.api, OPS, setup.containers, OpKind::Reboot).await;
    assert!(
        answers.values().all(|a| *a == Answer::Accepted),
        "{answers:?}"
    );
    settle(&rec, "every op applied", |c| c.terminal_ok >= OPS).await;
    rec.with(|c| {
        assert_eq!(c.applied_ok.len() as u64, OPS);
        assert_eq!(c.applied_err, 0);
        assert!(c.exhausted > 0);
        assert_eq!(c.caller_runs, 0);
    });
}

/// The binary's hosts assume that pre-created container c lives on host c % hosts.
#[test]
fn precreate_places_round_robin() {
    for hosts in 1..=5u32 {
        let mut st = StoreState::new(hosts);
        for c in 0..23u64 {
            assert_eq!(
                u64::from(st.precreate(c, Status::Running)),
                c % u64::from(hosts)
            );
        }
    }
}

// ---- the `conductor` binary, one process per service ----

/// The events of a JSON-lines log named `event` for which `keep` holds.
fn count_events(log: &Path, event: &str, keep: impl Fn(&serde_json::Value) -> bool) -> usize {
    let Ok(text) = std::fs::read_to_string(log) else {
        return 0;
    };
    text.lines()
        // The last line may still be being written.
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["event"] == event && keep(v))
        .count()
}

#[test]
fn binary_services_answer_a_client() {
    let dir = scratch("binary_services_answer_a_client");
    let log = |name: &str| dir.join(format!("{name}.jsonl"));
    let (hosts, containers) = (2u32, 8u64);
    let s = |p: &Path| p.to_str().expect("utf-8 path").to_string();

    let (mut store, store_a) = start(
        "store",
        &[
            "store",
            "--listen",
            "127.0.0.1:0",
            "--hosts",
            &hosts.to_string(),
            "--containers",
            &containers.to_string(),
        ],
        true,
    );
    let store_a = store_a.unwrap().to_string();
    let (mut bus, bus_a) = start("bus", &["bus", "--listen", "127.0.0.1:0"], true);
    let bus_a = bus_a.unwrap().to_string();
    let mut host_procs = Vec::new();
    let mut host_addrs = Vec::new();
    for i in 0..hosts {
        let name = format!("host-{}", i + 1);
        let (p, a) = start(
            &name,
            &[
                "host",
                "--listen",
                "127.0.0.1:0",
                "--index",
                &i.to_string(),
                "--hosts",
                &hosts.to_string(),
                "--containers",
                &containers.to_string(),
                "--service",
                "20ms",
                "--service-dist",
                "exp",
                "--log",
                &s(&log(&name)),
            ],
            true,
        );
        host_procs.push(p);
        host_addrs.push(a.unwrap().to_string());
    }
    let mut args = vec![
        "conductor",
        "--index",
        "0",
        "--bus",
        &bus_a,
        "--store",
        &store_a,
        "--rpc-workers",
        "16",
        "--pool-workers",
        "2",
        "--overflow",
        "caller-runs",
        "--host",
    ];
    args.extend(host_addrs.iter().map(String::as_str));
    let conductor_log = s(&log("conductor-1"));
    args.extend(["--log", &conductor_log]);
    let (mut conductor, _) = start("conductor-1", &args, false);
    let (mut api, api_a) = start(
        "api",
        &[
            "api",
            "--listen",
            "127.0.0.1:0",
            "--store",
            &store_a,
            "--bus",
            &bus_a,
            "--async-rpc",
            "call",
            "--rpc-timeout",
            "30s",
            "--log",
            &s(&log("api")),
        ],
        true,
    );
    let api_a = api_a.unwrap().to_string();

    // 50 ops over 250 ms, then up to 30 s for their answers.
    let out = Command::new(BIN)
        .args([
            "client",
            "--api",
            &api_a,
            "--rate",
            "200",
            "--duration",
            "250ms",
            "--containers",
            &containers.to_string(),
            "--op",
            "start",
            "--drain",
            "30s",
            "--json",
        ])
        .stderr(Stdio::inherit())
        .output()
        .expect("run the client");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "client: {}\n{stdout}", out.status);
    let summary: serde_json::Value = serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("client summary {stdout:?}: {e}"));
    let n = 50;
    assert_eq!(summary["sent"], n, "{summary}");
    assert_eq!(summary["answered"], n, "{summary}");
    assert_eq!(summary["unanswered"], 0, "{summary}");
    assert_eq!(summary["answers"]["accepted"], n, "{summary}");
    assert!(summary["accept_ms"]["p99"].as_f64().is_some(), "{summary}");

    // A worker answers before it runs the op: wait for the hosts and the conductor to finish.
    let applied = || -> usize {
        (1..=hosts)
            .map(|i| {
                count_events(&log(&format!("host-{i}")), "applied", |v| {
                    v["result"].get("Ok").is_some()
                })
            })
            .sum()
    };
    let done = || {
        count_events(&log("conductor-1"), "terminal", |v| {
            v["ok"] == serde_json::Value::Bool(true)
        })
    };
    let deadline = Instant::now() + PATIENCE;
    while applied() < n || done() < n {
        assert!(
            Instant::now() < deadline,
            "after {PATIENCE:?}: {} applied, {} done of {n}",
            applied(),
            done()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(applied(), n);
    assert_eq!(done(), n);
    // Both hosts held their share of the pre-created containers.
    for i in 1..=hosts {
        assert!(count_events(&log(&format!("host-{i}")), "applied", |_| true) > 0);
    }
    assert_eq!(count_events(&log("api"), "accepted", |_| true), n);

    for p in [&mut store, &mut bus, &mut conductor, &mut api]
        .into_iter()
        .chain(host_procs.iter_mut())
    {
        p.assert_running();
    }
}

/// Sends `kind` ops with ids `ids` on container 0 to the host at `addr` as a conductor would;
/// their answers by id, and how long each took.
async fn to_host(
    addr: SocketAddr,
    kind: OpKind,
    ids: &[u64],
) -> BTreeMap<u64, (HostResp, Duration)> {
    let stream = TcpStream::connect(addr).await.expect("connect to the host");
    let (link, mut reader) = wire::attach(stream);
    let mut sent = BTreeMap::new();
    for &id in ids {
        let cmd = HostCmd {
            op: OpSpec {
                id,
                container: 0,
                kind,
                intended_us: 0,
                deadline: None,
            },
            seq: id,
            attempt: 1,
            conductor: 0,
            token: 0,
        };
        sent.insert(id, Instant::now());
        assert!(link.send(Msg::Host { req: id, cmd }), "send to the host");
    }
    let mut out = BTreeMap::new();
    let collect = async {
        while out.len() < ids.len() {
            match reader.next().await.expect("read from the host") {
                Some(Msg::HostResp { req, resp }) => {
                    out.insert(req, (resp, sent[&req].elapsed()));
                }
                Some(_) => {}
                None => panic!("the host closed the connection"),
            }
        }
    };
    tokio::time::timeout(PATIENCE, collect)
        .await
        .expect("the host answers within PATIENCE");
    out
}

/// The ids among `ids` that `backend` with `seed` fails, as the simulator's hosts draw them.
fn predicted_failures(
    backend: &scenario::Backend,
    seed: u64,
    kind: OpKind,
    ids: &[u64],
) -> BTreeSet<u64> {
    let no_sleep: scenario::host_model::Sleep = Arc::new(|_| Box::pin(async {}));
    let model = scenario::host_model::Backends::new(seed, backend, no_sleep);
    ids.iter()
        .copied()
        .filter(|&id| {
            let cmd = HostCmd {
                op: OpSpec {
                    id,
                    container: 0,
                    kind,
                    intended_us: 0,
                    deadline: None,
                },
                seq: id,
                attempt: 1,
                conductor: 0,
                token: 0,
            };
            model.fails(0, &cmd)
        })
        .collect()
}

fn backend_failures(answers: &BTreeMap<u64, (HostResp, Duration)>) -> BTreeSet<u64> {
    answers
        .iter()
        .filter(|(_, (r, _))| *r == Err(HostError::Backend))
        .map(|(id, _)| *id)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_host_draws_from_the_scenarios_backend() {
    let dir = scratch("binary_host_draws_from_the_scenarios_backend");
    let file = dir.join("host.toml");
    let base = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/baseline.toml");
    std::fs::copy(base, &file).expect("copy the baseline scenario");
    let file = file.to_str().expect("utf-8 path").to_string();
    let sets = [
        "seed=11",
        "backend.default={dist=\"constant\", value=\"300ms\"}",
        "backend.start={dist=\"uniform\", min=\"1ms\", max=\"2ms\"}",
        "backend.failure_rate=0.5",
    ];
    let ids: Vec<u64> = (1..=40).collect();
    let host = |extra: &[&str]| {
        let mut args = vec![
            "host",
            "--listen",
            "127.0.0.1:0",
            "--index",
            "0",
            "--containers",
            "1",
        ];
        args.extend_from_slice(extra);
        start("host", &args, true)
    };

    // The scenario's failure rate with its seed: exactly the simulator's failures, per op.
    let mut args = vec!["--scenario", file.as_str()];
    for s in &sets {
        args.extend(["--set", s]);
    }
    let (mut p, addr) = host(&args);
    let sets_owned: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
    let scn = scenario::load(Path::new(&file), &sets_owned).expect("a valid scenario");
    let starts = to_host(addr.unwrap(), OpKind::Start, &ids).await;
    let failed = backend_failures(&starts);
    assert_eq!(
        failed,
        predicted_failures(&scn.backend, 11, OpKind::Start, &ids)
    );
    assert!(!failed.is_empty() && failed.len() < ids.len(), "{failed:?}");
    // Per-op distributions: a stop takes the default's 300 ms, a start far less.
    let stops = to_host(addr.unwrap(), OpKind::Stop, &[100]).await;
    assert!(stops[&100].1 >= Duration::from_millis(300), "{stops:?}");
    assert!(
        starts
            .values()
            .all(|(_, took)| *took < Duration::from_millis(300)),
        "{starts:?}"
    );
    p.assert_running();
    drop(p);

    // --seed overrides the scenario's.
    args.extend(["--seed", "12"]);
    let (_p, addr) = host(&args);
    let failed = backend_failures(&to_host(addr.unwrap(), OpKind::Start, &ids).await);
    assert_eq!(
        failed,
        predicted_failures(&scn.backend, 12, OpKind::Start, &ids)
    );

    // The old flags are a backend of one distribution, drawn the same way.
    let (_p, addr) = host(&[
        "--service",
        "1ms",
        "--service-dist",
        "const",
        "--failure-rate",
        "0.5",
        "--seed",
        "3",
    ]);
    let failed = backend_failures(&to_host(addr.unwrap(), OpKind::Start, &ids).await);
    let flags = scenario::Backend {
        default: scenario::Dist::Constant {
            value: Duration::from_millis(1),
        },
        per_op: Vec::new(),
        failure_rate: 0.5,
    };
    assert_eq!(failed, predicted_failures(&flags, 3, OpKind::Start, &ids));
}

#[test]
fn binary_host_refuses_a_bad_scenario_as_check_does() {
    let dir = scratch("binary_host_refuses_a_bad_scenario_as_check_does");
    let base = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/baseline.toml");
    std::fs::copy(base, dir.join("host.toml")).expect("copy the baseline scenario");
    let run = |args: &[&str]| {
        Command::new(BIN)
            .args(args)
            .current_dir(&dir)
            .output()
            .expect("run conductor")
    };
    let bad = ["--scenario", "host.toml", "--set", "backend.failure_rate=2"];
    let mut host = vec!["host", "--listen", "127.0.0.1:0", "--index", "0"];
    host.extend(bad);
    let out = run(&host);
    let check = run(&["check", "host.toml", "--set", "backend.failure_rate=2"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("backend.failure_rate"), "{err}");
    assert_eq!(err, String::from_utf8_lossy(&check.stderr));
    assert_eq!(check.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "",
        "refused before listening"
    );

    // The scenario's backend replaces the service flags: both at once is a usage error.
    for args in [
        &["--scenario", "host.toml", "--service", "1s"][..],
        &["--set", "seed=2"][..],
    ] {
        let mut host = vec!["host", "--listen", "127.0.0.1:0", "--index", "0"];
        host.extend(args);
        let out = run(&host);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains("--scenario"), "{args:?}: {err}");
    }
}

#[test]
fn binary_refuses_bad_flags_with_status_2() {
    for (args, says) in [
        (
            &[
                "host",
                "--listen",
                "127.0.0.1:0",
                "--index",
                "3",
                "--hosts",
                "2",
            ][..],
            "--index 3 is out of range",
        ),
        (&["bus", "--listen", "nowhere"][..], "nowhere"),
        (
            &["api", "--listen", "127.0.0.1:0", "--store", "127.0.0.1:1"][..],
            "--bus",
        ),
        (
            &[
                "conductor",
                "--index",
                "0",
                "--bus",
                "127.0.0.1:1",
                "--store",
                "127.0.0.1:1",
            ][..],
            "--host",
        ),
        (
            &[
                "conductor",
                "--index",
                "0",
                "--bus",
                "127.0.0.1:1",
                "--store",
                "127.0.0.1:1",
                "--host",
                "127.0.0.1:1",
                "--overflow",
                "drop",
            ][..],
            "drop",
        ),
        (
            &[
                "client",
                "--api",
                "127.0.0.1:1",
                "--rate",
                "0",
                "--containers",
                "1",
            ][..],
            "positive",
        ),
        (
            &[
                "client",
                "--api",
                "127.0.0.1:1",
                "--rate",
                "1",
                "--containers",
                "1",
                "--duration",
                "ten seconds",
            ][..],
            "not a duration",
        ),
        (
            &[
                "client",
                "--api",
                "127.0.0.1:1",
                "--rate",
                "1",
                "--containers",
                "1",
                "--op",
                "x",
            ][..],
            "unknown op",
        ),
        (&["scheduler"][..], "scheduler"),
    ] {
        let out = Command::new(BIN)
            .args(args)
            .output()
            .expect("run conductor");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }
}
