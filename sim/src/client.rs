//! The simulated client's driver: the open-loop client of [`scenario::client`] on the `client`
//! node. The machine decides what is sent when and what becomes of each attempt; this driver
//! performs it under madsim — sleeps until each request's time, keeps the connection to the API,
//! sends, reads answers, watches the timeout deadlines, sleeps out retries' delays — and records
//! what the machine says each attempt was (see [`SimRecorder`]).

use crate::recorder::SimRecorder;
use crate::world::exact_sleep;
use conductor::net::{Link, Net};
use conductor::proto::Msg;
use conductor::recorder::Recorder;
use madsim::runtime::Handle;
use scenario::client::{Attempt, AttemptFailure, ClientMachine, Ended, Next, Outcome};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::Notify;
use tokio::time::Instant;

pub use scenario::client::ClientConfig;

/// Where the client runs: what the simulated world gives it besides the scenario.
#[derive(Clone)]
pub struct Placement {
    /// The client node's address.
    pub ip: IpAddr,
    /// The API.
    pub api: SocketAddr,
    /// The start of the run: intended times are offsets from it.
    pub start: Instant,
}

/// A running client: its `client.instances`, each with its own machine (budget, throttle,
/// breaker) and its own connection to the API.
#[derive(Clone)]
pub struct Client {
    instances: Vec<Arc<Shared>>,
}

impl Client {
    /// Requests scheduled (later lifecycle steps, retries waiting out their backoff) and not sent
    /// yet: the drain waits for them as for requests in flight.
    pub fn pending(&self) -> u64 {
        self.instances
            .iter()
            .map(|s| s.lock().machine.pending())
            .sum()
    }
}

struct Inner {
    link: Option<Link>,
    machine: ClientMachine,
}

struct Shared {
    at: Placement,
    rec: Arc<SimRecorder>,
    net: Net,
    inner: Mutex<Inner>,
    /// Wakes the timeout sweeper when its queue gets a first entry.
    first_deadline: Notify,
    /// This instance's index (`0..client.instances`).
    index: usize,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The simulated instant `us` µs after the start.
    fn instant(&self, us: u64) -> Instant {
        self.at.start + Duration::from_micros(us)
    }
}

/// Starts the client's instances on `node`: each its sender, and its timeout sweeper when there
/// is a timeout; with `wait_for = "done"`, one watcher hands each terminal op to its instance.
pub fn start(
    node: &madsim::runtime::NodeHandle,
    rec: Arc<SimRecorder>,
    net: Net,
    at: Placement,
    cfg: ClientConfig,
) -> Client {
    let n = cfg.instances.max(1);
    let instances: Vec<Arc<Shared>> = (0..n)
        .map(|i| start_instance(node, rec.clone(), net.clone(), at.clone(), cfg.instance(i)))
        .collect();
    if instances[0].lock().machine.waits_for_done() {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        rec.watch_terminal(tx);
        let all = instances.clone();
        node.spawn(async move {
            let first_id_mask = (1u64 << scenario::client::ATTEMPT_SHIFT) - 1;
            while let Some((id, ok)) = rx.recv().await {
                let s = &all[((id & first_id_mask) % u64::from(n)) as usize];
                let now = s.rec.now_us();
                let ended = s.lock().machine.terminal(id, ok, now);
                if let Some(e) = ended {
                    perform(s, e, now);
                }
            }
        });
    }
    Client { instances }
}

fn start_instance(
    node: &madsim::runtime::NodeHandle,
    rec: Arc<SimRecorder>,
    net: Net,
    at: Placement,
    cfg: ClientConfig,
) -> Arc<Shared> {
    let machine = ClientMachine::new(&cfg);
    let shared = Arc::new(Shared {
        inner: Mutex::new(Inner {
            link: None,
            machine,
        }),
        at,
        rec,
        net,
        first_deadline: Notify::new(),
        index: cfg.instance as usize,
    });
    let (timeout, sends) = {
        let g = shared.lock();
        (g.machine.has_timeout(), g.machine.sends_anything())
    };
    if timeout {
        node.spawn(sweep_timeouts(shared.clone()));
    }
    let sh = shared.clone();
    node.spawn(async move {
        if sends {
            drive(&sh).await;
        }
    });
    shared
}

/// Waits until the API accepts a connection (services start in any order).
async fn connect_first(s: &Arc<Shared>) {
    loop {
        if ensure_link(s).await.is_some() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The current link to the API, connecting again if it is gone (the API restarted); `None`
/// when the API refuses.
async fn ensure_link(s: &Arc<Shared>) -> Option<Link> {
    if let Some(l) = &s.lock().link {
        if !l.is_closed() {
            return Some(l.clone());
        }
    }
    let (link, mut reader) = s.net.connect(s.at.ip, s.at.api).await.ok()?;
    s.lock().link = Some(link.clone());
    let sh = s.clone();
    tokio::spawn(async move {
        while let Ok(Some(msg)) = reader.next().await {
            if let Msg::Answer { id, answer } = msg {
                let now = sh.rec.now_us();
                let ended = sh.lock().machine.outcome(id, Outcome::Answer(answer), now);
                if let Some(e) = ended {
                    perform(&sh, e, now);
                }
            }
        }
    });
    Some(link)
}

/// Sends `attempt`.
async fn send(s: &Arc<Shared>, attempt: Attempt) {
    let wire = attempt.wire();
    if attempt.is_first() {
        s.rec.submitted(&wire);
    } else {
        s.rec.resubmitted(&wire);
    }
    let now = s.rec.now_us();
    let admitted = s.lock().machine.sending(&attempt, now);
    if !admitted {
        let ended = s.lock().machine.refused(attempt, now);
        perform(s, ended, now);
        return;
    }
    let Some(link) = ensure_link(s).await else {
        let now = s.rec.now_us();
        let ended = s.lock().machine.unsendable(attempt, now);
        perform(s, ended, now);
        return;
    };
    let now = s.rec.now_us();
    let (first_deadline, in_flight, wire) = {
        let mut g = s.lock();
        // The deadline is the client's own timeout, from the moment the attempt is sent.
        let wire = g.machine.wire(&attempt, now);
        (g.machine.sent(attempt, now), g.machine.in_flight(), wire)
    };
    s.rec.client_in_flight(now, s.index, in_flight);
    if first_deadline {
        s.first_deadline.notify_one();
    }
    if !link.send(Msg::Request(wire)) {
        let ended = {
            let mut g = s.lock();
            g.link = None;
            g.machine.outcome(wire.id, Outcome::Undelivered, now)
        };
        if let Some(e) = ended {
            perform(s, e, now);
        }
    }
}

/// Records what an attempt that ended at `now_us` was, and sends the retry the machine decided
/// at its time.
fn perform(s: &Arc<Shared>, e: Ended, now_us: u64) {
    let rec = &s.rec;
    let intended = e.attempt.op.intended_us;
    let in_flight = s.lock().machine.in_flight();
    rec.attempt_ended(intended, e.sent_us, now_us, s.index, in_flight);
    // What this attempt was, whatever comes next.
    match e.failure {
        Some(AttemptFailure::Timeout) => rec.timed_out(intended),
        // Never sent: refused at the client, as the API would count a refusal.
        Some(AttemptFailure::Unreachable | AttemptFailure::BreakerOpen) => {
            rec.undelivered(intended)
        }
        None => rec.goodput(intended, now_us),
        _ => {}
    }
    let container = e.attempt.op.container;
    match e.next {
        Next::Done => {}
        Next::Retry { attempt, at } => {
            rec.note_for("client", container, || e.note().unwrap_or_default());
            let sh = s.clone();
            let at = s.at.start + at;
            tokio::spawn(async move {
                exact_sleep(at).await;
                send(&sh, attempt).await;
            });
            return;
        }
        Next::GaveUp => {
            rec.gave_up(intended);
            rec.note_for("client", container, || e.note().unwrap_or_default());
        }
    }
    if e.answered {
        rec.answered(intended, now_us);
    }
}

/// Times out attempts unanswered after `client.timeout`.
async fn sweep_timeouts(s: Arc<Shared>) {
    loop {
        let front = s.lock().machine.next_deadline();
        match front {
            None => s.first_deadline.notified().await,
            Some(deadline) => {
                if deadline > s.rec.now_us() {
                    exact_sleep(s.instant(deadline)).await;
                }
                let now = s.rec.now_us();
                let ended = s.lock().machine.expire(now);
                if let Some(e) = ended {
                    perform(&s, e, now);
                }
            }
        }
    }
}

/// Keeps madsim's task list short: it holds a weak reference to every task ever spawned until
/// asked to count them, and counting prunes the dead (memory flat in run length). A count visits
/// every task, live or dead, so it comes once per as many arrivals as there were live tasks at
/// the last count (at least 1,024): its cost per arrival stays the same however many nodes and
/// tasks the cluster has, and the dead entries stay within a few per live one.
struct TaskPruner {
    /// The arrival at which to count next.
    next: u64,
}

impl TaskPruner {
    /// Arrivals between counts, at least.
    const EVERY: u64 = 1024;

    fn new() -> Self {
        TaskPruner {
            next: Self::EVERY - 1,
        }
    }

    /// Counts (and so prunes) the tasks if arrival `n` is due for it.
    fn arrival(&mut self, n: u64) {
        if n >= self.next {
            let live = Handle::current().metrics().num_tasks() as u64;
            self.next = n + live.max(Self::EVERY);
        }
    }
}

/// Sends every request of the schedule at its intended time, without waiting for answers.
async fn drive(s: &Arc<Shared>) {
    connect_first(s).await;
    let mut pruner = TaskPruner::new();
    loop {
        let Some(t) = s.lock().machine.next_due() else {
            return;
        };
        // The clock is read through the recorder: `Instant::now()` is dear under madsim.
        if t > s.rec.now_us() {
            exact_sleep(s.instant(t)).await;
        }
        let Some(op) = s.lock().machine.issue() else {
            return;
        };
        pruner.arrival(op.id);
        send(s, Attempt::first(op)).await;
    }
}
