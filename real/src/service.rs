//! What every service process does around its service: record events, listen and announce the
//! bound address, reach the services it depends on, and run until it fails or is told to stop.

use crate::flags::{Limits, Log};
use anyhow::{bail, Context};
use conductor::net::{tcp_frames_delivered, Listener, Net};
use conductor::recorder::{Event, JsonLines, Recorder, SharedRecorder};
use std::future::Future;
use std::io::Write;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::time::Instant;

/// Runs a service until it fails or a shutdown signal arrives.
pub async fn run(fut: impl Future<Output = anyhow::Result<()>>) -> anyhow::Result<ExitCode> {
    run_then(fut, || {}).await
}

/// Runs a service until it fails or a shutdown signal arrives; on the signal, does `at_stop`
/// (the store and the hosts write their final state) before exiting 0.
pub async fn run_then(
    fut: impl Future<Output = anyhow::Result<()>>,
    at_stop: impl FnOnce(),
) -> anyhow::Result<ExitCode> {
    tokio::select! {
        r = fut => r.map(|()| ExitCode::SUCCESS),
        r = shutdown() => {
            r?;
            report_frames();
            at_stop();
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Waits for SIGINT or SIGTERM (Ctrl-C off Unix).
pub async fn shutdown() -> anyhow::Result<()> {
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

/// The JSON-lines recorder of node `node`, writing to `--log FILE` or stderr.
pub fn recorder(node: &str, log: &Log) -> anyhow::Result<SharedRecorder> {
    Ok(json_lines(node, log)?)
}

/// The process's log, once opened: where its frame counts go.
static LOG: OnceLock<Arc<JsonLines>> = OnceLock::new();
/// Frames already reported in [`Event::Frames`] events.
static REPORTED: AtomicU64 = AtomicU64::new(0);
/// How often the frames delivered are reported.
const FRAMES_EVERY: Duration = Duration::from_millis(250);

/// Records the frames delivered since the last report, if any.
fn report_frames() {
    if let Some(log) = LOG.get() {
        let now = tcp_frames_delivered();
        let before = REPORTED.swap(now, Ordering::Relaxed);
        if now > before {
            log.record(Event::Frames {
                delivered: now - before,
            });
        }
    }
}

/// The JSON-lines log of node `node` (`--log FILE` or stderr), for events and final states.
/// The first one a process opens also gets its frame counts every [`FRAMES_EVERY`] (and once
/// more at a clean stop): the real figure of the simulator's network deliveries.
pub fn json_lines(node: &str, log: &Log) -> anyhow::Result<Arc<JsonLines>> {
    let rec = open_json_lines(node, log)?;
    if LOG.set(rec.clone()).is_ok() {
        tokio::spawn(async {
            let mut tick = tokio::time::interval(FRAMES_EVERY);
            loop {
                tick.tick().await;
                report_frames();
            }
        });
    }
    Ok(rec)
}

fn open_json_lines(node: &str, log: &Log) -> anyhow::Result<Arc<JsonLines>> {
    let out: Box<dyn Write + Send> = match &log.log {
        Some(path) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(path)
                .with_context(|| format!("cannot create the log {}", path.display()))?,
        )),
        None => Box::new(std::io::stderr()),
    };
    Ok(Arc::new(JsonLines::new(node, out)))
}

/// Binds `addr` and announces the bound address on stdout (`listening ADDR`); peers are held
/// to `limits`.
pub async fn listen(addr: SocketAddr, limits: &Limits) -> anyhow::Result<Listener> {
    let l = Net::Tcp
        .bind_with(addr, limits.get())
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    let local = l.local_addr().context("cannot read the bound address")?;
    announce(&format!("listening {local}"))?;
    Ok(l)
}

/// A TCP socket bound to `addr` and not listening yet: the port is this process's (a store
/// standby's, so that no other can take it before the takeover), and a connection to it is
/// refused, so that clients try the next store.
pub fn reserve(addr: SocketAddr) -> anyhow::Result<tokio::net::TcpSocket> {
    let socket = match addr {
        SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4(),
        SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6(),
    }
    .context("cannot open a socket")?;
    // As `TcpListener::bind` does: a restart may bind while old connections linger.
    socket
        .set_reuseaddr(true)
        .context("cannot set SO_REUSEADDR")?;
    socket
        .bind(addr)
        .with_context(|| format!("cannot listen on {addr}"))?;
    Ok(socket)
}

/// Starts listening on the `reserve`d `socket` and announces the address as [`listen`] does.
pub fn listen_reserved(socket: tokio::net::TcpSocket, limits: &Limits) -> anyhow::Result<Listener> {
    let l = socket.listen(1024).context("cannot listen")?;
    let local = l.local_addr().context("cannot read the bound address")?;
    announce(&format!("listening {local}"))?;
    Ok(Net::tcp_listener(l, limits.get()))
}

/// Prints `line` on stdout at once (what a parent process waits for).
pub fn announce(line: &str) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}").context("cannot write to stdout")?;
    out.flush().context("cannot write to stdout")
}

/// Waits until something accepts connections at one of `addrs` (tried in turn: store
/// processes of which one, the primary, listens), for at most `wait`.
pub async fn reach_any(what: &str, addrs: &[SocketAddr], wait: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + wait;
    loop {
        for &addr in addrs {
            if TcpStream::connect(addr).await.is_ok() {
                return Ok(());
            }
        }
        if Instant::now() >= deadline {
            let all: Vec<String> = addrs.iter().map(ToString::to_string).collect();
            bail!(
                "cannot reach {what} at {} within {}",
                all.join(" or "),
                humantime::format_duration(wait)
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until something accepts connections at `addr`, for at most `wait`.
pub async fn reach(what: &str, addr: SocketAddr, wait: Duration) -> anyhow::Result<TcpStream> {
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
