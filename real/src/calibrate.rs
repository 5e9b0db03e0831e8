//! `conductor calibrate SCENARIO [--time-scale X] [--seeds N] [--target URL] [--out DIR]`:
//! one scenario in simulation and against the reference deployment for real, side by side —
//! does the simulator's answer hold for this deployment?
//!
//! 1. The scenario's clock is compressed `X` times (`scenario::time_scale`: durations divided,
//!    rates multiplied) and written once, `scenario.toml`: the simulator and the real hosts
//!    (whose service times follow its `[backend]`) read the same file.
//! 2. The real half: the deployment started on loopback (one process per service, stopped by
//!    PID whatever happens: `cluster`'s start) with Zun's HTTP API, or `--target`; the loopback
//!    round trip measured (median of HTTP ping-pongs to the API); `conductor load` run against
//!    it with `--recorder` on the deployment's logs, so its report has the pool's figures.
//! 3. The simulated half: the `conductor-sim` binary built beside this one (`--sim-bin`), one
//!    run per seed with the network's latency set to half the measured round trip.
//! 4. Each metric's simulated seeds give a 99% prediction interval for one run (Student t
//!    over the seeds: mean ± t·s·√(1 + 1/N)); the real figure is within when it lies inside.
//!    `calibration.json`, `calibration.html` (both spectra), the table on stdout; exit 1 when
//!    a row is not within.
//!
//! The simulation half runs the simulated build as a process rather than a real-time twin:
//! the simulator needs `--cfg madsim` for the whole build, which this binary cannot be, and a
//! twin would be a second simulator to keep equal to the first.

use crate::cluster::{clear_logs, start_deployment, stop_deployment, Deploy, SETTLE};
use crate::command::{BadInput, Command};
use crate::procs::Procs;
use anyhow::Context;
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// The messages a real accept has beyond the simulator's: the HTTP front (`api --http`) hands
/// each request to the API's own listener and its answer back, where the simulated client talks
/// to the API directly.
const HTTP_HOPS: f64 = 2.0;
/// How long the deployment may take to answer its first HTTP request.
const UP_PATIENCE: Duration = Duration::from_secs(30);
/// Past the load phase and the drain, how long `load` may take before it is stopped.
const LOAD_SLACK: Duration = Duration::from_secs(60);
/// The longest one simulated seed may take.
const SIM_PATIENCE: Duration = Duration::from_secs(600);

/// Runs a scenario in simulation and against the reference deployment for real, and tells
/// whether the simulator's figures hold (see `docs/load-testing.md`, "Calibration").
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The scenario file (TOML).
    scenario: PathBuf,
    /// Compress the scenario's clock X times in both halves (durations and service times
    /// divided by X, rates multiplied by X).
    #[arg(long, value_name = "X", default_value_t = 1.0, value_parser = time_scale)]
    time_scale: f64,
    /// Simulated seeds: their spread is the interval each real figure is judged against.
    #[arg(long, value_name = "N", default_value_t = 10, value_parser = clap::value_parser!(u64).range(3..=1000))]
    seeds: u64,
    /// A deployment already running (its Zun-like HTTP API); without it one is started here.
    #[arg(long, value_name = "URL")]
    target: Option<String>,
    /// With --target: the deployment's log directory, for the pool's figures (without it
    /// those rows are not compared).
    #[arg(long, value_name = "DIR", requires = "target")]
    recorder: Option<PathBuf>,
    /// Overrides a scenario key by its dotted path (before the time scale).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    sets: Vec<String>,
    /// Where everything goes [default: `reports/out/<name>/calibrate/`].
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// The simulator [default: `conductor-sim` beside this binary, or in `target/release`].
    #[arg(long, value_name = "FILE")]
    sim_bin: Option<PathBuf>,
    /// Make the real hosts this many times slower than the scenario's `[backend]` (a
    /// deliberate mismatch, to see calibration flag it); 1 = as the scenario says.
    #[arg(long, value_name = "F", default_value_t = 1.0, value_parser = slowdown)]
    real_slowdown: f64,
}

fn time_scale(s: &str) -> Result<f64, String> {
    let x: f64 = s
        .parse()
        .map_err(|_| format!("`{s}` is not a number"))?;
    scenario::time_scale::check_time_scale(x)
}

fn slowdown(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(f) if f.is_finite() && f > 0.0 && f <= 1000.0 => Ok(f),
        _ => Err(format!("`{s}` is not a slowdown factor above 0 and at most 1000")),
    }
}

/// The `conductor-sim` binary: `--sim-bin`, or beside this binary, or in the workspace's
/// `target/release` (this binary lives in `target/real/release`).
fn sim_bin(flag: Option<&Path>) -> Result<PathBuf, BadInput> {
    let build = "build it with `cargo build --release -p sim` (it is target/release/conductor-sim), \
                 or name it with --sim-bin";
    if let Some(p) = flag {
        return if p.is_file() {
            Ok(p.to_path_buf())
        } else {
            Err(BadInput(format!("--sim-bin {}: no such file; {build}", p.display())))
        };
    }
    let me = std::env::current_exe().map_err(|e| BadInput(format!("cannot find myself: {e}")))?;
    let dir = me.parent().unwrap_or(Path::new("."));
    let candidates = [
        dir.join("conductor-sim"),
        dir.join("../../release/conductor-sim"),
        dir.join("../../../release/conductor-sim"),
    ];
    candidates
        .iter()
        .find(|p| p.is_file())
        .cloned()
        .ok_or_else(|| {
            BadInput(format!(
                "the simulator `conductor-sim` is not beside {} nor in target/release; {build}",
                me.display()
            ))
        })
}

/// One HTTP ping-pong's worth of bytes on a keep-alive connection: a request the router
/// answers itself (404), never an op.
fn ping(conn: &mut TcpStream) -> std::io::Result<()> {
    conn.write_all(b"GET /calibrate-ping HTTP/1.1\r\nHost: calibrate\r\n\r\n")?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 1024];
    loop {
        let n = conn.read(&mut chunk)?;
        if n == 0 {
            return Err(std::io::Error::other("closed"));
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            if buf.len() >= end + 4 + len {
                return Ok(());
            }
        }
    }
}

/// Round trips to the API measured on a thread of their own, one every [`PING_EVERY`], while
/// the load runs: the network as the real half has it under its load (the kernel's loopback
/// plus the wake-ups and the queueing for a core that every message of the deployment pays).
struct Pinger {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::JoinHandle<anyhow::Result<Vec<u64>>>,
}

/// How often the pinger measures.
const PING_EVERY: Duration = Duration::from_millis(20);

impl Pinger {
    fn start(addr: SocketAddr) -> anyhow::Result<Pinger> {
        let mut conn = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
            .with_context(|| format!("cannot reach {addr} to measure the round trip"))?;
        conn.set_nodelay(true)?;
        conn.set_read_timeout(Some(Duration::from_secs(5)))?;
        ping(&mut conn).context("the first ping")?;
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut v = Vec::new();
            // Bounded by the stop flag, and by the load's own bound on its run.
            while !flag.load(std::sync::atomic::Ordering::Relaxed) {
                let t = Instant::now();
                ping(&mut conn).context("measuring the round trip")?;
                v.push(t.elapsed().as_micros() as u64);
                std::thread::sleep(PING_EVERY);
            }
            Ok(v)
        });
        Ok(Pinger { stop, thread })
    }

    /// Stops measuring: the median round trip (µs) and how many were measured.
    fn median(self) -> anyhow::Result<(u64, usize)> {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let mut v = self
            .thread
            .join()
            .map_err(|_| anyhow::anyhow!("the round-trip thread panicked"))??;
        if v.is_empty() {
            anyhow::bail!("no round trip was measured");
        }
        v.sort_unstable();
        Ok((v[v.len() / 2], v.len()))
    }
}

/// Waits until the deployment answers a show over HTTP (the conductor has joined the bus).
fn wait_up(addr: SocketAddr) -> anyhow::Result<()> {
    let deadline = Instant::now() + UP_PATIENCE;
    for i in 0u64.. {
        let ok = (|| -> std::io::Result<bool> {
            let mut c = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
            c.set_read_timeout(Some(Duration::from_secs(5)))?;
            // A key of its own, far from any the load's generators use.
            let req = format!(
                "GET /v1/containers/c-0 HTTP/1.1\r\nHost: calibrate\r\nIdempotency-Key: {}\r\n\
                 Connection: close\r\n\r\n",
                18_000_000_000_000_000_000u64 + i
            );
            c.write_all(req.as_bytes())?;
            let mut s = String::new();
            c.read_to_string(&mut s)?;
            // 404: the deployment looked and found no such container (a scenario without
            // pre-created ones): up all the same.
            Ok(s.starts_with("HTTP/1.1 200") || s.starts_with("HTTP/1.1 404"))
        })()
        .unwrap_or(false);
        if ok {
            return Ok(());
        }
        if Instant::now() >= deadline {
            anyhow::bail!(
                "the deployment did not answer a show over HTTP within {}",
                humantime::format_duration(UP_PATIENCE)
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    Ok(())
}

/// Runs `cmd` to its end, killing it (by its PID) after `patience`: its exit code.
fn run_bounded(mut cmd: std::process::Command, what: &str, patience: Duration) -> anyhow::Result<i32> {
    let mut child = cmd
        .stdin(std::process::Stdio::null())
        .spawn()
        .with_context(|| format!("cannot start {what}"))?;
    let deadline = Instant::now() + patience;
    loop {
        if let Some(s) = child.try_wait()? {
            return Ok(s.code().unwrap_or(-1));
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            anyhow::bail!("{what} did not end within {}: killed", humantime::format_duration(patience));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn read_json(p: &Path) -> anyhow::Result<Value> {
    let s = std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display()))?;
    serde_json::from_str(&s).with_context(|| format!("{} is not JSON", p.display()))
}

fn at(v: &Value, path: &str) -> Option<f64> {
    path.split('.').try_fold(v, |v, k| v.get(k))?.as_f64()
}

/// A metric: its name, where the simulator's report has it, where the real one has it (and
/// why not, when it has not).
struct Metric {
    name: &'static str,
    sim: &'static str,
    real: Result<&'static str, &'static str>,
}

const FITTED: &str = "fitted: it sets the simulation's per-message latency";
const NO_POOL: &str =
    "the deployment's own figures (pool, completion) need its logs: give --recorder with --target";

fn metrics(have_recorder: bool) -> Vec<Metric> {
    let pool = |p: &'static str| if have_recorder { Ok(p) } else { Err(NO_POOL) };
    vec![
        Metric { name: "arrivals", sim: "pool.arrivals", real: pool("pool.arrivals") },
        Metric { name: "exhaustion_ratio", sim: "pool.exhaustion_ratio", real: pool("pool.exhaustion_ratio") },
        Metric { name: "accept_p50_ms", sim: "latency_ms.accept.p50", real: Err(FITTED) },
        Metric { name: "accept_p99_ms", sim: "latency_ms.accept.p99", real: Ok("latency_ms.accept.p99") },
        Metric { name: "complete_p50_ms", sim: "latency_ms.complete.p50", real: pool("load.recorder.complete_ms.p50") },
        Metric { name: "complete_p99_ms", sim: "latency_ms.complete.p99", real: pool("load.recorder.complete_ms.p99") },
        Metric { name: "mean_hold_ms", sim: "pool.mean_hold_ms", real: pool("pool.mean_hold_ms") },
        Metric { name: "messages_per_op", sim: "host.messages_per_op", real: pool("host.messages_per_op") },
    ]
}

/// A row of the table.
struct Row {
    metric: &'static str,
    sim: f64,
    lo: f64,
    hi: f64,
    real: Option<f64>,
    within: Option<bool>,
    note: Option<&'static str>,
}

fn row(m: &Metric, sims: &[Value], real: &Value) -> Row {
    let xs: Vec<f64> = sims.iter().filter_map(|r| at(r, m.sim)).collect();
    let n = xs.len() as f64;
    let mean = xs.iter().sum::<f64>() / n.max(1.0);
    let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0).max(1.0);
    // A 99% prediction interval for one more run of the same length: the real run is that run
    // when the simulator is right.
    let half = reports::t99(xs.len().saturating_sub(1)) * var.sqrt() * (1.0 + 1.0 / n.max(1.0)).sqrt();
    let (real_v, note) = match m.real {
        Ok(p) => (at(real, p), None),
        // A fitted figure is shown, never judged.
        Err(FITTED) => (at(real, m.sim), Some(FITTED)),
        Err(why) => (None, Some(why)),
    };
    Row {
        metric: m.name,
        sim: mean,
        lo: mean - half,
        hi: mean + half,
        within: real_v
            .filter(|_| note.is_none())
            .map(|r| r >= mean - half && r <= mean + half),
        real: real_v,
        note: note.or(real_v.is_none().then_some("the real report has no such figure")),
    }
}

fn round(x: f64) -> f64 {
    if x.abs() >= 100.0 {
        (x * 10.0).round() / 10.0
    } else {
        (x * 10_000.0).round() / 10_000.0
    }
}

impl Command for Args {
    async fn run(self) -> anyhow::Result<ExitCode> {
        let scaled = scenario::time_scale::time_scaled(&self.scenario, &self.sets, self.time_scale)
            .map_err(|e| BadInput(e.to_string()))?;
        let scn = scenario::parse_supported(&scaled, &self.scenario.display().to_string(), &[], self.scenario.parent())
            .map_err(|e| BadInput(e.to_string()))?;
        let file = self.scenario.display();
        // The real half runs the workload alone (`load` against a deployment nobody faults) on
        // the store's own coordination: a scenario asking for more would be compared against a
        // simulation of something the real half never did.
        if !scn.faults.is_empty() || scn.nemesis.is_some() {
            return Err(BadInput(format!(
                "{file}: [[faults]]/[nemesis]: calibrate compares a fault-free run (the real \
                 half does not fault the deployment); remove them, or run `conductor cluster` \
                 for faults on a real deployment"
            ))
            .into());
        }
        if !scn.cluster.coordination.is_store() {
            return Err(BadInput(format!(
                "{file}: cluster.coordination = \"{}\": calibrate's deployment keeps its \
                 coordination in its store; remove the key",
                scn.cluster.coordination
            ))
            .into());
        }
        let sim = sim_bin(self.sim_bin.as_deref())?;
        let target = match &self.target {
            Some(t) => {
                let (addr, _) = crate::load::parse_target(t).map_err(BadInput)?;
                TcpStream::connect_timeout(&addr, Duration::from_secs(5)).map_err(|e| {
                    BadInput(format!("--target {t}: cannot reach it ({e})"))
                })?;
                Some(addr)
            }
            None => None,
        };
        let out = self
            .out
            .clone()
            .unwrap_or_else(|| PathBuf::from("reports/out").join(&scn.name).join("calibrate"));
        let logs = out.join("real/logs");
        std::fs::create_dir_all(&logs).with_context(|| format!("cannot create {}", logs.display()))?;
        clear_logs(&logs)?;
        let scaled_file = out.join("scenario.toml");
        std::fs::write(&scaled_file, &scaled)
            .with_context(|| format!("cannot write {}", scaled_file.display()))?;
        let real_file = out.join("real-scenario.toml");
        let real_text = if self.real_slowdown == 1.0 {
            scaled.clone()
        } else {
            scenario::time_scale::slowed_backend(&scaled, self.real_slowdown).map_err(BadInput)?
        };
        std::fs::write(&real_file, &real_text)
            .with_context(|| format!("cannot write {}", real_file.display()))?;
        let me = std::env::current_exe().context("cannot find the conductor binary")?;
        println!(
            "calibrate  {}: time scale {} (load {} + drain {}, rates ×{}, service times ÷{}), {} simulated seeds{}",
            scn.name,
            self.time_scale,
            humantime::format_duration(scn.duration),
            humantime::format_duration(scn.drain),
            self.time_scale,
            self.time_scale,
            self.seeds,
            if self.real_slowdown == 1.0 {
                String::new()
            } else {
                format!("; real hosts {}× slower than [backend] (deliberate mismatch)", self.real_slowdown)
            }
        );

        // The real half.
        let mut procs = Procs::new(me.clone(), logs.clone());
        let (http, recorder) = match target {
            Some(a) => (a, self.recorder.clone()),
            None => {
                // A port of its own for the HTTP API, free a moment ago (the process table reads
                // only the API's `listening ADDR`; another process taking the port in between
                // makes the API fail to start, said as such).
                let http = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
                start_deployment(
                    &Deploy {
                        scn: &scn,
                        file: &real_file,
                        sets: &[],
                        seed: scn.seed,
                        out: &logs,
                        etcd: &[],
                        http: Some(http),
                        // Nothing is killed: no journal, so nothing waits for the disk, as
                        // nothing does in the simulator.
                        journals: false,
                        stores: 1,
                    },
                    &mut procs,
                )?;
                std::thread::sleep(SETTLE);
                wait_up(http)?;
                (http, Some(logs.clone()))
            }
        };
        let real_out = out.join("real");
        let mut load = std::process::Command::new(&me);
        load.arg("load")
            .arg(&real_file)
            .arg("--target")
            .arg(format!("http://{http}"))
            .arg("--out")
            .arg(&real_out)
            .stdout(std::process::Stdio::null());
        if let Some(r) = &recorder {
            load.arg("--recorder").arg(r);
        }
        let pinger = Pinger::start(http)?;
        let code = run_bounded(load, "conductor load", scn.duration + scn.drain + LOAD_SLACK);
        let rtt = pinger.median();
        if target.is_none() {
            stop_deployment(&scn, &mut procs);
        }
        let code = code?;
        if code == 2 || code < 0 {
            anyhow::bail!("conductor load failed (exit {code}); see its messages above");
        }
        let real = read_json(&real_out.join("report.json"))?;
        let (rtt_us, pings) = rtt?;
        let one_way = (rtt_us / 2).max(1);
        println!(
            "network    loopback round trip {rtt_us} µs under the load (median of {pings} HTTP \
             ping-pongs to the API, one every {}): the simulation's network latency set to \
             {one_way} µs each way",
            humantime::format_duration(PING_EVERY)
        );
        for p in &procs.problems {
            eprintln!("warning: {p}");
        }

        // The simulated half. The deployment's messages cost more than a bare ping: each is
        // decoded, acted on and logged by a service waiting for a core. One pilot seed at the
        // ping's latency says how many one-way messages the median accept takes (the
        // simulator's accept is latency alone); the real median accept divided by that count
        // is the per-message latency the real half has, and the simulation gets it. The
        // accept median then fits by construction: it is reported, not compared. The real
        // accept has [`HTTP_HOPS`] more messages: the HTTP front's to the API and back.
        let run_sim = |k: u64, one_way: u64, dir: &Path| -> anyhow::Result<Value> {
            let mut cmd = std::process::Command::new(&sim);
            cmd.arg("run")
                .arg(&scaled_file)
                .arg("--seed")
                .arg((scn.seed + k).to_string())
                .arg("--seeds")
                .arg("1")
                .arg("--out")
                .arg(dir)
                .arg("--set")
                .arg(format!("network.latency.min={one_way}us"))
                .arg("--set")
                .arg(format!("network.latency.max={}us", one_way + 1))
                .stdout(std::process::Stdio::null());
            let c = run_bounded(cmd, "conductor-sim run", SIM_PATIENCE)?;
            if c == 2 || c < 0 {
                anyhow::bail!("conductor-sim run failed (exit {c}) on seed {}", scn.seed + k);
            }
            read_json(&dir.join("report.json"))
        };
        let pilot = run_sim(0, one_way, &out.join("sim/pilot"))?;
        let hops = at(&pilot, "latency_ms.accept.p50").map(|ms| ms * 1e3 / one_way as f64);
        let real_accept = at(&real, "latency_ms.accept.p50").map(|ms| ms * 1e3);
        let latency_us = match (hops, real_accept) {
            (Some(h), Some(r)) if h >= 1.0 && r > 0.0 => (r / (h + HTTP_HOPS)).round().max(1.0) as u64,
            _ => one_way,
        };
        println!(
            "latency    the median accept is {:.1} one-way messages in the simulation; the real \
             median accept {:.0} µs over them and the HTTP front's {HTTP_HOPS}: {latency_us} µs per \
             message, given to the simulation",
            hops.unwrap_or(0.0),
            real_accept.unwrap_or(0.0)
        );
        let mut sims = Vec::new();
        for k in 0..self.seeds {
            sims.push(run_sim(k, latency_us, &out.join(format!("sim/seed-{k}")))?);
        }

        let rows: Vec<Row> = metrics(recorder.is_some())
            .iter()
            .map(|m| row(m, &sims, &real))
            .collect();
        let compared = rows.iter().filter(|r| r.within.is_some()).count();
        let off: Vec<&str> = rows
            .iter()
            .filter(|r| r.within == Some(false))
            .map(|r| r.metric)
            .collect();
        let agree = off.is_empty() && compared > 0;
        write_outputs(&self, &scn, &out, &rows, &sims, &real, rtt_us, latency_us, agree)?;
        print_table(&rows, compared);
        if agree {
            println!("agree      yes: every compared figure lies within its 99% interval");
        } else {
            println!("agree      NO: {} outside the 99% interval", off.join(", "));
        }
        println!(
            "outputs    {}\n           {}",
            out.join("calibration.json").display(),
            out.join("calibration.html").display()
        );
        Ok(if agree { ExitCode::SUCCESS } else { ExitCode::FAILURE })
    }
}

fn print_table(rows: &[Row], compared: usize) {
    println!(
        "{:<18} {:>12} {:>25} {:>12} {:>12}  within",
        "metric", "simulated", "99% interval (one run)", "real", "difference"
    );
    for r in rows {
        let interval = format!("[{:.4}, {:.4}]", round(r.lo), round(r.hi));
        match r.real {
            Some(v) => println!(
                "{:<18} {:>12.4} {:>25} {:>12.4} {:>+12.4}  {}",
                r.metric,
                round(r.sim),
                interval,
                round(v),
                round(v - r.sim),
                match r.within {
                    Some(true) => "yes".to_string(),
                    Some(false) => "NO".to_string(),
                    None => format!("not compared: {}", r.note.unwrap_or("")),
                }
            ),
            None => println!(
                "{:<18} {:>12.4} {:>25} {:>12} {:>12}  not compared: {}",
                r.metric,
                round(r.sim),
                interval,
                "-",
                "-",
                r.note.unwrap_or("")
            ),
        }
    }
    println!(
        "judged     {compared} comparisons, each on a 99% interval: by chance alone about {:.0}% of \
         calibrations that should agree show one row outside",
        (1.0 - 0.99f64.powi(compared as i32)) * 100.0
    );
}

#[allow(clippy::too_many_arguments)]
fn write_outputs(
    a: &Args,
    scn: &scenario::Scenario,
    out: &Path,
    rows: &[Row],
    sims: &[Value],
    real: &Value,
    rtt_us: u64,
    one_way: u64,
    agree: bool,
) -> anyhow::Result<()> {
    let compared = rows.iter().filter(|r| r.within.is_some()).count();
    let json_rows: Vec<Value> = rows
        .iter()
        .map(|r| {
            json!({
                "metric": r.metric,
                "simulated": round(r.sim),
                "real": r.real.map(round),
                "within": r.within,
                "interval99": [round(r.lo), round(r.hi)],
                "difference": r.real.map(|v| round(v - r.sim)),
                "not_compared": r.note.filter(|_| r.within.is_none()),
            })
        })
        .collect();
    let v = json!({
        "scenario": scn.name,
        "time_scale": a.time_scale,
        "rows": json_rows,
        "agree": agree,
        "comparisons": compared,
        "interval": "99% prediction interval for one run from the simulated seeds' spread: mean ± t(0.995, N−1)·s·√(1 + 1/N)",
        "seeds": a.seeds,
        "first_seed": scn.seed,
        "real_slowdown": a.real_slowdown,
        "network": { "round_trip_us": rtt_us, "simulated_latency_us": one_way },
        "load_s": scn.duration.as_secs_f64(),
        "real_exhaustion_ratio_ci95": real.get("pool").and_then(|p| p.get("exhaustion_ratio_ci95")),
        "target": a.target,
    });
    let p = out.join("calibration.json");
    std::fs::write(&p, serde_json::to_string_pretty(&v)? + "\n")
        .with_context(|| format!("cannot write {}", p.display()))?;

    // The spectra at the percentiles both reports hold (simulated: the seeds' mean).
    let points = |v: &Value, base: &str, ps: &[(&str, f64)]| -> Vec<(f64, f64)> {
        ps.iter()
            .filter_map(|(k, p)| at(v, &format!("{base}.{k}")).map(|ms| (*p, ms)))
            .collect()
    };
    let mean_points = |base: &str, ps: &[(&str, f64)]| -> Vec<(f64, f64)> {
        ps.iter()
            .filter_map(|(k, p)| {
                let xs: Vec<f64> = sims.iter().filter_map(|s| at(s, &format!("{base}.{k}"))).collect();
                (!xs.is_empty()).then(|| (*p, xs.iter().sum::<f64>() / xs.len() as f64))
            })
            .collect()
    };
    let full = [("p50", 50.0), ("p90", 90.0), ("p99", 99.0), ("p999", 99.9)];
    let two = [("p50", 50.0), ("p99", 99.0)];
    let complete = reports::html::spectrum_svg(
        "completion latency: simulated vs real",
        &[
            ("simulated".to_string(), mean_points("latency_ms.complete", &full)),
            ("real (from the API's receipt)".to_string(), points(real, "load.recorder.complete_ms", &full)),
        ],
        None,
    )
    .map_err(|e| anyhow::anyhow!("drawing calibration.html: {e}"))?;
    let accept = reports::html::spectrum_svg(
        "accept latency: simulated vs real",
        &[
            ("simulated".to_string(), mean_points("latency_ms.accept", &two)),
            ("real".to_string(), points(real, "latency_ms.accept", &two)),
        ],
        None,
    )
    .map_err(|e| anyhow::anyhow!("drawing calibration.html: {e}"))?;
    let head: Vec<String> = ["metric", "simulated", "99% interval", "real", "difference", "within"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let table: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            vec![
                r.metric.to_string(),
                format!("{}", round(r.sim)),
                format!("[{}, {}]", round(r.lo), round(r.hi)),
                r.real.map_or("-".into(), |v| format!("{}", round(v))),
                r.real.map_or("-".into(), |v| format!("{:+}", round(v - r.sim))),
                match r.within {
                    Some(true) => "yes".into(),
                    Some(false) => "NO".into(),
                    None => format!("not compared: {}", r.note.unwrap_or("")),
                },
            ]
        })
        .collect();
    let mut page = reports::html::Page::new(&format!("{} — calibration", scn.name));
    page.heading(&format!("{} — simulated vs real", scn.name))
        .text(&format!(
            "Time scale {} (load {}, rates ×{}, service times ÷{}); {} simulated seeds; loopback \
             round trip {} µs, simulated latency {} µs each way; {} comparisons on 99% intervals; {}.",
            a.time_scale,
            humantime::format_duration(scn.duration),
            a.time_scale,
            a.time_scale,
            a.seeds,
            rtt_us,
            one_way,
            compared,
            if agree { "agree" } else { "do NOT agree" }
        ))
        .table(&head, &table)
        .figure("complete-spectrum", &complete)
        .figure("accept-spectrum", &accept);
    let p = out.join("calibration.html");
    std::fs::write(&p, page.render()).with_context(|| format!("cannot write {}", p.display()))?;
    Ok(())
}
