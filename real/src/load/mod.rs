//! `conductor load SCENARIO --target http://HOST:PORT`: the scenario's workload against a live
//! HTTP target, in wall-clock time. The simulator's own client machine (the same random streams:
//! the same seed sends the same ops in the same order at the same offsets) sends each request
//! at its intended time, open loop, over a pool of keep-alive connections; every latency is
//! measured from the intended time (no coordinated omission) into HDR histograms; a send that
//! leaves late is measured and counted behind schedule. It writes `report.json` with `run`'s
//! keys (what only the simulator knows, marked absent) and a `load` object of its own, judges
//! `[slo]` (exit 1 on a breach) and shows live progress on a terminal. See
//! `docs/load-testing.md`.

mod phases;
mod pool;
pub(crate) mod recorder;
mod report;
mod request;
mod sender;

use crate::command::{BadInput, Command};
use crate::flags::positive_duration;
use anyhow::Context;
use pool::Pool;
use request::Requests;
use scenario::client::ClientConfig;
use scenario::{Scenario, WaitFor};
use sender::{Sender, Setup};
use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::time::Instant;

/// The longest load phase, and the longest drain.
const MAX_PHASE: Duration = Duration::from_secs(24 * 3600);

/// How often progress is shown.
const PROGRESS_EVERY: Duration = Duration::from_secs(1);

/// Runs a scenario's workload against a live HTTP target (see `docs/load-testing.md`).
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The scenario file (TOML): its `[workload]`, `[client]`, `[retry]`, `[target]`, `[slo]`.
    scenario: PathBuf,
    /// The target, `http://HOST:PORT` (Zun's container API unless `[target]` says otherwise).
    #[arg(long, value_name = "URL")]
    target: String,
    /// The load phase [default: the scenario's `duration`].
    #[arg(long, value_name = "DURATION", value_parser = positive_duration)]
    duration: Option<Duration>,
    /// How long to wait after the load phase for answers still due [default: the scenario's
    /// `drain`]; what is unanswered then is counted lost.
    #[arg(long, value_name = "DURATION", value_parser = crate::flags::duration)]
    drain: Option<Duration>,
    /// The seed of the workload [default: the scenario's `seed`].
    #[arg(long)]
    seed: Option<u64>,
    /// Overrides a scenario key by its dotted path, e.g. `--set workload.arrival.rate=50`.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    sets: Vec<String>,
    /// Where `report.json` and `report.html` go [default: `reports/out/<name>/load/`].
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Show progress every second even when stderr is not a terminal.
    #[arg(long)]
    progress: bool,
    /// The sender's threads: 1 runs it on one thread (the least CPU per request); more, on a
    /// multi-threaded runtime of that many workers (more of a busy machine's CPU).
    #[arg(long, value_name = "N", default_value_t = 1,
          value_parser = clap::value_parser!(u16).range(1..=256))]
    threads: u16,
    /// The reference deployment's log directory (its services' `--log` files, `*.jsonl`):
    /// after the drain the report takes the pool, the RPC slots and the checker's verdict
    /// from them instead of marking them absent.
    #[arg(long, value_name = "DIR")]
    recorder: Option<PathBuf>,
}

/// A lock that survives a panic elsewhere (nothing here panics while holding one).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// `http://HOST:PORT[/]` → the address and the authority (`HOST:PORT`).
pub(crate) fn parse_target(url: &str) -> Result<(SocketAddr, String), String> {
    let rest = url.strip_prefix("http://").ok_or_else(|| {
        format!("--target `{url}`: expected http://HOST:PORT (https is not supported)")
    })?;
    let authority = rest.strip_suffix('/').unwrap_or(rest);
    if authority.is_empty() || authority.contains('/') {
        return Err(format!(
            "--target `{url}`: expected http://HOST:PORT without a path (give a base path \
             as `target.base_path`)"
        ));
    }
    let addr = crate::flags::addr(authority).map_err(|e| format!("--target: {e}"))?;
    Ok((addr, authority.to_string()))
}

impl Args {
    /// The scenario with the flags' overrides, refused when the run cannot be made over HTTP.
    fn scenario(&self) -> Result<Scenario, BadInput> {
        let mut scn =
            scenario::load(&self.scenario, &self.sets).map_err(|e| BadInput(e.to_string()))?;
        if let Some(d) = self.duration {
            scn.duration = d;
        }
        if let Some(d) = self.drain {
            scn.drain = d;
        }
        if let Some(s) = self.seed {
            scn.seed = s;
        }
        if scn.duration > MAX_PHASE || scn.drain > MAX_PHASE {
            return Err(BadInput(format!(
                "{}: the load phase and the drain of a live run are at most 24 h each",
                self.scenario.display()
            )));
        }
        if scn.warmup >= scn.duration {
            return Err(BadInput(format!(
                "{}: warmup must be shorter than the load phase",
                self.scenario.display()
            )));
        }
        if scn.client.wait_for == WaitFor::Done {
            return Err(BadInput(format!(
                "{}: client.wait_for = \"done\" needs to see ops become terminal, which an HTTP \
                 answer does not tell; use \"answer\" with `load`",
                self.scenario.display()
            )));
        }
        Ok(scn)
    }
}

impl Command for Args {
    /// The run goes on a runtime of its own thread: with `--threads 1` (the default) a
    /// single-threaded one, where the sender, its connections and their answers wake one
    /// another on one thread's queue instead of across worker threads (a futex and an eventfd
    /// write per hand-over, most of what a request costs the sender); with more, a
    /// multi-threaded one of that many workers, which keeps more of a busy machine's CPU
    /// (docs/load-testing.md, "The sender's own ceiling").
    async fn run(self) -> anyhow::Result<ExitCode> {
        tokio::task::spawn_blocking(move || {
            let mut rt = if self.threads == 1 {
                tokio::runtime::Builder::new_current_thread()
            } else {
                let mut b = tokio::runtime::Builder::new_multi_thread();
                b.worker_threads(self.threads as usize);
                b
            };
            rt.enable_all()
                .build()
                .context("cannot start the sender's runtime")?
                .block_on(self.load())
        })
        .await
        .context("the sender's thread failed")?
    }
}

impl Args {
    /// The run itself (see [`Args::run`] for where it runs).
    async fn load(self) -> anyhow::Result<ExitCode> {
        let (addr, authority) = parse_target(&self.target).map_err(BadInput)?;
        if let Some(d) = &self.recorder {
            recorder::logs(d).map_err(|e| BadInput(e.to_string()))?;
        }
        let scn = self.scenario()?;
        let requests =
            Arc::new(Requests::new(&authority, &scn.target).map_err(|e| BadInput(format!(
                "{}: {e}",
                self.scenario.display()
            )))?);
        let out = self
            .out
            .clone()
            .unwrap_or_else(|| PathBuf::from("reports/out").join(&scn.name).join("load"));
        std::fs::create_dir_all(&out)
            .with_context(|| format!("cannot create {}", out.display()))?;
        // An unreachable target is said at once, not after a whole load phase of failures.
        tokio::time::timeout(pool::CONNECT_TIMEOUT, tokio::net::TcpStream::connect(addr))
            .await
            .map_err(|_| anyhow::anyhow!("cannot reach the target {}: no answer within {}", self.target, humantime::format_duration(pool::CONNECT_TIMEOUT)))?
            .with_context(|| format!("cannot reach the target {}", self.target))?;

        let pool = Arc::new(Pool::new(addr, scn.target.connections));
        let wall = std::time::Instant::now();
        let setup = if scn.target.setup {
            Some(phases::setup(&scn, &pool, &requests).await)
        } else {
            None
        };

        let cfg = ClientConfig::new(&scn, scn.seed);
        let scheduled = phases::scheduled(&cfg);
        // The connections open before the schedule's time zero (see `Pool::warm`); no more
        // than could ever be busy at once.
        pool.warm(scn.target.max_in_flight).await;
        let start = Instant::now();
        // The load's start on the deployment's clock (its logs are stamped in µs since the
        // UNIX epoch).
        let t0_us = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_micros() as u64);
        let warmup_us = scn.warmup.as_micros() as u64;
        let senders: Vec<Sender> = (0..cfg.instances)
            .map(|i| {
                Sender::start(Setup {
                    cfg: cfg.instance(i),
                    start,
                    pool: pool.clone(),
                    requests: requests.clone(),
                    max_in_flight: scn.target.max_in_flight,
                    late_after: scn.target.late_after,
                    metrics: reports::SeedMetrics::new(scn.seed, warmup_us, &[], 1, 1),
                })
            })
            .collect();
        let show = self.progress || std::io::stderr().is_terminal();
        let load_end = start + scn.duration;
        let drain_end = load_end + scn.drain;
        let mut tick = tokio::time::interval_at(start + PROGRESS_EVERY, PROGRESS_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let interrupted = loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = tokio::time::sleep_until(drain_end) => break false,
                r = crate::service::shutdown() => { r?; break true; }
            }
            let now = Instant::now();
            if show {
                phases::progress(&senders, start, now);
            }
            let unfinished: u64 = senders.iter().map(Sender::unfinished).sum();
            if now >= load_end && unfinished == 0 {
                break false;
            }
        };
        let end_us = start.elapsed().as_micros() as u64;
        let parts: Vec<_> = senders.into_iter().map(|s| s.finish(end_us)).collect();
        let teardown = if scn.target.teardown && !interrupted {
            Some(phases::teardown(&scn, &pool, &requests, &parts, setup.as_ref()).await)
        } else {
            None
        };
        let recorder = match &self.recorder {
            Some(dir) => Some(recorder::read(dir, &scn, t0_us)?),
            None => None,
        };
        let rep = report::Load {
            scn: &scn,
            target: &self.target,
            scheduled,
            parts,
            pool: &pool,
            setup,
            teardown,
            wall_s: wall.elapsed().as_secs_f64(),
            interrupted,
            recorder,
        }
        .write(&out)?;
        Ok(rep)
    }
}
