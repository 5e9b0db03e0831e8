//! The processes `conductor cluster` starts: one per service of the deployment (the store
//! several, one primary at a time, with `--stores N`), each started again (same address, a new
//! log) after a kill, paused and resumed by signal, and every one stopped by its PID when the
//! table is dropped — however the command ends (an error, Ctrl-C).

use anyhow::{bail, Context};
use scenario::Node;
use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// How long a starting service may take to announce its address.
const ANNOUNCE: Duration = Duration::from_secs(30);
/// Attempts at starting a service again on its address (a port the kernel still holds).
const RESTART_ATTEMPTS: u32 = 10;

/// How long a look at whether a replica listens (is the primary) may take.
const PRIMARY_PROBE: Duration = Duration::from_millis(200);

/// One process of the table: a node of the deployment and which of its replicas (the store's
/// processes serving one deployment; every other node has one, replica 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Proc {
    /// The node it is.
    pub node: Node,
    /// Which of the node's processes (0 for a node of one).
    pub replica: u32,
}

impl Proc {
    /// The node's first (or only) process.
    pub fn of(node: Node) -> Self {
        Proc { node, replica: 0 }
    }
}

/// `store`, then `store-2`, … (the names of logs and of restarts).
impl fmt::Display for Proc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.replica {
            0 => write!(f, "{}", self.node),
            r => write!(f, "{}-{}", self.node, r + 1),
        }
    }
}

/// A signal the table sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// Stop the process (pause).
    Stop,
    /// Let it run again (resume).
    Cont,
    /// Ask it to stop cleanly (the store and the hosts write their final state).
    Term,
}

/// Sends `sig` to process `pid`.
#[cfg(unix)]
fn signal(pid: u32, sig: Signal) -> std::io::Result<()> {
    let sig = match sig {
        Signal::Stop => libc::SIGSTOP,
        Signal::Cont => libc::SIGCONT,
        Signal::Term => libc::SIGTERM,
    };
    let pid = libc::pid_t::try_from(pid).map_err(std::io::Error::other)?;
    // SAFETY: kill(2) has no memory effects; `pid` is a child this table started and has not
    // reaped yet, so it cannot name another process.
    if unsafe { libc::kill(pid, sig) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Sends `sig` to process `pid` (no signals off Unix).
#[cfg(not(unix))]
fn signal(_pid: u32, sig: Signal) -> std::io::Result<()> {
    Err(std::io::Error::other(format!(
        "sending {sig:?} needs Unix signals"
    )))
}

/// One service: how to start it, and its current process.
struct Service {
    /// Its flags, without `--listen` and `--log` (the table adds them).
    args: Vec<String>,
    /// Whether it listens (and announces `listening ADDR`).
    listens: bool,
    /// Whether it writes a log (`--log`; the bus logs only its frames).
    logs_to: bool,
    /// Its address once bound (kept across restarts).
    addr: Option<SocketAddr>,
    /// The running process, if any.
    child: Option<Child>,
    /// Processes started so far (the first is incarnation 0).
    started: u32,
    /// Kills in force (faults compose: the last restart starts it).
    kills: u32,
    /// Pauses in force.
    pauses: u32,
    /// Logs written, one per incarnation.
    logs: Vec<PathBuf>,
}

/// The processes of one deployment. Dropping it kills every process still running.
pub struct Procs {
    bin: PathBuf,
    dir: PathBuf,
    services: BTreeMap<Proc, Service>,
    /// Per node, the replicas its kills in force took, oldest first (the next restart's).
    killed: BTreeMap<Node, VecDeque<u32>>,
    /// Per node, the replicas its pauses in force took, oldest first.
    paused: BTreeMap<Node, VecDeque<u32>>,
    /// What went wrong with a process besides the faults (exits nobody asked for).
    pub problems: Vec<String>,
}

impl Drop for Procs {
    fn drop(&mut self) {
        for s in self.services.values_mut() {
            if let Some(mut c) = s.child.take() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
    }
}

impl Procs {
    /// An empty table starting `bin` (the `conductor` binary) with logs in `dir`.
    pub fn new(bin: PathBuf, dir: PathBuf) -> Self {
        Procs {
            bin,
            dir,
            services: BTreeMap::new(),
            killed: BTreeMap::new(),
            paused: BTreeMap::new(),
            problems: Vec::new(),
        }
    }

    /// Starts `node` (`conductor ARGS…`, with `--log FILE` if it `logs`), and for a listening
    /// service waits for its address.
    pub fn start(
        &mut self,
        node: Node,
        args: Vec<String>,
        listens: bool,
        logs: bool,
    ) -> anyhow::Result<()> {
        self.start_proc(Proc::of(node), args, listens, logs)
    }

    /// Starts another process of `node` (a store standby: it announces the port it holds,
    /// `standby ADDR`, and listens there once the primary is gone).
    pub fn start_replica(
        &mut self,
        node: Node,
        replica: u32,
        args: Vec<String>,
    ) -> anyhow::Result<()> {
        self.start_proc(Proc { node, replica }, args, true, true)
    }

    fn start_proc(
        &mut self,
        node: Proc,
        args: Vec<String>,
        listens: bool,
        logs: bool,
    ) -> anyhow::Result<()> {
        self.services.insert(
            node,
            Service {
                args,
                listens,
                logs_to: logs,
                addr: None,
                child: None,
                started: 0,
                kills: 0,
                pauses: 0,
                logs: Vec::new(),
            },
        );
        self.spawn(node)
    }

    /// The address `node` (its first process) listens on.
    pub fn addr(&self, node: Node) -> Option<SocketAddr> {
        self.services.get(&Proc::of(node))?.addr
    }

    /// The addresses of the store's processes, in replica order.
    pub fn store_addrs(&self) -> Vec<SocketAddr> {
        self.replicas(Node::Store)
            .iter()
            .filter_map(|p| self.services[p].addr)
            .collect()
    }

    /// The processes of `node`, in replica order.
    fn replicas(&self, node: Node) -> Vec<Proc> {
        self.services
            .keys()
            .filter(|p| p.node == node)
            .copied()
            .collect()
    }

    /// The process a fault on `node` takes: the only one, or of several (the store's) the
    /// primary — the one that accepts connections (a standby does not listen); the first
    /// running one if none does at the moment (a takeover under way).
    fn target(&self, node: Node) -> Proc {
        let replicas = self.replicas(node);
        if replicas.len() <= 1 {
            return Proc::of(node);
        }
        let running = |p: &&Proc| self.services[*p].child.is_some();
        replicas
            .iter()
            .filter(running)
            .find(|p| {
                self.services[*p].addr.is_some_and(|a| {
                    std::net::TcpStream::connect_timeout(&a, PRIMARY_PROBE).is_ok()
                })
            })
            .or_else(|| replicas.iter().find(running))
            .copied()
            .unwrap_or(Proc::of(node))
    }

    /// Every log written, in node then incarnation order.
    pub fn logs(&self) -> Vec<PathBuf> {
        self.services
            .values()
            .flat_map(|s| s.logs.iter().cloned())
            .collect()
    }

    /// Restarts per node (processes started after the first), for nodes restarted at least
    /// once, in node order.
    pub fn restarts(&self) -> BTreeMap<String, u32> {
        self.services
            .iter()
            .filter(|(_, s)| s.started > 1)
            .map(|(n, s)| (n.to_string(), s.started - 1))
            .collect()
    }

    fn spawn(&mut self, node: Proc) -> anyhow::Result<()> {
        let mut last = None;
        for attempt in 0..RESTART_ATTEMPTS {
            match self.spawn_once(node) {
                Ok(()) => return Ok(()),
                // The first start binds port 0: no retry can help it.
                Err(e) if self.services[&node].addr.is_none() => return Err(e),
                Err(e) => {
                    last = Some(e);
                    std::thread::sleep(Duration::from_millis(100 * u64::from(attempt + 1)));
                }
            }
        }
        Err(last.unwrap_or_else(|| anyhow::anyhow!("{node} did not start")))
    }

    fn spawn_once(&mut self, node: Proc) -> anyhow::Result<()> {
        let s = self.services.get_mut(&node).expect("a started node");
        let n = s.started;
        let log = self.dir.join(format!("{node}.{n}.jsonl"));
        let err = self.dir.join(format!("{node}.{n}.stderr"));
        let mut cmd = Command::new(&self.bin);
        cmd.args(&s.args);
        if s.logs_to {
            cmd.arg("--log").arg(&log);
        }
        if s.listens {
            let listen = s.addr.map_or("127.0.0.1:0".to_string(), |a| a.to_string());
            cmd.arg("--listen").arg(listen);
        }
        let stderr = std::fs::File::create(&err)
            .with_context(|| format!("cannot create {}", err.display()))?;
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(if s.listens {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stderr(stderr)
            .spawn()
            .with_context(|| format!("cannot start {node} ({})", self.bin.display()))?;
        s.started += 1;
        if s.logs_to {
            s.logs.push(log);
        }
        if s.listens {
            match announced(&mut child, &err) {
                Ok(a) => s.addr = Some(a),
                Err(e) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(e.context(format!("{node} did not start")));
                }
            }
        }
        s.child = Some(child);
        if s.pauses > 0 {
            // Started again while a pause is in force: it is paused as the pause says.
            self.signal(node, Signal::Stop);
        }
        Ok(())
    }

    fn signal(&mut self, node: Proc, sig: Signal) {
        let Some(s) = self.services.get(&node) else {
            return;
        };
        if let Some(c) = &s.child {
            if let Err(e) = signal(c.id(), sig) {
                self.problems.push(format!(
                    "cannot send {sig:?} to {node} (pid {}): {e}",
                    c.id()
                ));
            }
        }
    }

    /// Whether `node`'s process exited although nobody stopped it (noted in `problems`).
    fn exited_on_its_own(&mut self, node: Proc) {
        let Some(s) = self.services.get_mut(&node) else {
            return;
        };
        if let Some(c) = &mut s.child {
            if let Ok(Some(status)) = c.try_wait() {
                let log = s.logs.last().map(|l| l.with_extension("stderr"));
                self.problems.push(format!(
                    "{node} exited on its own ({status}; see {})",
                    log.map_or_else(String::new, |l| l.display().to_string())
                ));
                s.child = None;
            }
        }
    }

    /// Notes every process that exited on its own.
    pub fn watch(&mut self) {
        let procs: Vec<Proc> = self.services.keys().copied().collect();
        for p in procs {
            self.exited_on_its_own(p);
        }
    }

    /// SIGKILLs `node` (the first of the kills in force on the process it takes: of several,
    /// the primary).
    pub fn kill(&mut self, node: Node) {
        let p = self.target(node);
        self.exited_on_its_own(p);
        let Some(s) = self.services.get_mut(&p) else {
            return;
        };
        self.killed.entry(node).or_default().push_back(p.replica);
        s.kills += 1;
        if s.kills == 1 {
            if let Some(mut c) = s.child.take() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
    }

    /// Lifts the oldest kill of `node`; the last on its process starts it again (same address,
    /// a new log; a store's old primary comes back as the standby).
    pub fn restart(&mut self, node: Node) {
        let Some(replica) = self.killed.get_mut(&node).and_then(VecDeque::pop_front) else {
            return;
        };
        let p = Proc { node, replica };
        let Some(s) = self.services.get_mut(&p) else {
            return;
        };
        if s.kills == 0 {
            return;
        }
        s.kills -= 1;
        if s.kills == 0 {
            if let Err(e) = self.spawn(p) {
                self.problems.push(format!("{e:#}"));
            }
        }
    }

    /// SIGSTOPs `node` (the first of the pauses in force on the process it takes: of several,
    /// the primary, which keeps the journal's lock while paused).
    pub fn pause(&mut self, node: Node) {
        let p = self.target(node);
        let Some(s) = self.services.get_mut(&p) else {
            return;
        };
        self.paused.entry(node).or_default().push_back(p.replica);
        s.pauses += 1;
        if s.pauses == 1 {
            self.signal(p, Signal::Stop);
        }
    }

    /// Lifts the oldest pause of `node`; the last on its process SIGCONTs it.
    pub fn resume(&mut self, node: Node) {
        let Some(replica) = self.paused.get_mut(&node).and_then(VecDeque::pop_front) else {
            return;
        };
        let p = Proc { node, replica };
        let Some(s) = self.services.get_mut(&p) else {
            return;
        };
        if s.pauses == 0 {
            return;
        }
        s.pauses -= 1;
        if s.pauses == 0 {
            self.signal(p, Signal::Cont);
        }
    }

    /// Every kill and pause lifted: the heal at the end of the load phase.
    pub fn heal(&mut self) {
        let nodes: Vec<Node> = self.services.keys().map(|p| p.node).collect();
        for n in nodes {
            while self.paused.get(&n).is_some_and(|q| !q.is_empty()) {
                self.resume(n);
            }
            while self.killed.get(&n).is_some_and(|q| !q.is_empty()) {
                self.restart(n);
            }
        }
    }

    /// Stops `nodes` with SIGTERM and waits up to `patience` for each to exit; one that does
    /// not is killed, and one that exits other than 0 is noted in `problems`.
    pub fn stop(&mut self, nodes: &[Node], patience: Duration) {
        let procs: Vec<Proc> = nodes.iter().flat_map(|&n| self.replicas(n)).collect();
        for &n in &procs {
            self.exited_on_its_own(n);
            self.signal(n, Signal::Term);
        }
        let deadline = Instant::now() + patience;
        for &n in &procs {
            let Some(mut c) = self.services.get_mut(&n).and_then(|s| s.child.take()) else {
                continue;
            };
            let status = wait_until(&mut c, deadline);
            match status {
                Some(s) if s.success() => {}
                Some(s) => self
                    .problems
                    .push(format!("{n} exited {s} when told to stop")),
                None => {
                    let _ = c.kill();
                    let _ = c.wait();
                    self.problems.push(format!(
                        "{n} did not stop within {} of SIGTERM: killed",
                        humantime::format_duration(patience)
                    ));
                }
            }
        }
    }
}

/// Waits for `child` to exit until `deadline`; `None` if it is still running then.
fn wait_until(child: &mut Child, deadline: Instant) -> Option<ExitStatus> {
    loop {
        match child.try_wait() {
            Ok(Some(s)) => return Some(s),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            _ => return None,
        }
    }
}

/// The address a starting service announces (`listening ADDR` on its stdout; a store standby's
/// `standby ADDR`, the address it will listen on once it takes over).
fn announced(child: &mut Child, err: &Path) -> anyhow::Result<SocketAddr> {
    let out = child.stdout.take().context("no stdout to read")?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut r = BufReader::new(out);
        let mut line = String::new();
        let _ = r.read_line(&mut line);
        let _ = tx.send(line);
        // Keep reading, so that the service never writes into a closed pipe.
        let _ = std::io::copy(&mut r, &mut std::io::sink());
    });
    let line = rx.recv_timeout(ANNOUNCE).unwrap_or_default();
    let line = line.trim();
    let addr = line
        .strip_prefix("listening ")
        .or_else(|| line.strip_prefix("standby "));
    match addr.map(str::parse) {
        Some(Ok(a)) => Ok(a),
        _ => {
            let why = std::fs::read_to_string(err).unwrap_or_default();
            bail!(
                "no `listening ADDR` within {}: {}",
                humantime::format_duration(ANNOUNCE),
                why.trim()
            )
        }
    }
}
