//! The open-loop client: sends each request at its intended time, never waiting for answers,
//! with the `[client]` timeout and retries and the two workload models.
//!
//! - **Open loop.** Arrivals (and a lifecycle's later steps) are generated from keyed streams
//!   ahead of and independent of what the system does; a slow answer never delays the next
//!   request. Latency is measured from the *intended* send time — for a retried request, from the
//!   first attempt's (no coordinated omission).
//! - **Timeout** (`client.timeout`, 0 = wait forever): an attempt unanswered that long after it
//!   was sent counts as timed out (`timeouts`) and, with `retry_on` containing `timeout`, is
//!   retried; a late answer to it is ignored (the op may still finish at the API's side).
//! - **Retries** (`client.retry_on` with `[retry]`): a 409 (`conflict`), a timeout (`timeout`),
//!   an error answer or a 503 or a refused connection (`error`) sends the same logical request
//!   again as a **new** request to the API — id `original + attempt·2^40`, so its service time
//!   and failure are drawn afresh but deterministically — after the policy's delay, if the
//!   attempt limit and the budget allow; otherwise the request `gave_up`. Retries are timers of
//!   their own: they never hold up new arrivals.
//! - **Lifecycle model**: each arrival is a new container (ids from 0 upwards: with `lifecycle`
//!   no container is pre-created, `containers` being a key of the `ops` model); it gets the
//!   `lifecycle` ops in order, separated by gaps drawn from `gap` (keyed by container and step),
//!   each sent without waiting for the previous one's answer. `duration` bounds the *arrivals*:
//!   a lifecycle started in the load phase runs to its end, its later steps sent during the drain
//!   (a user who created a container deletes it, whenever the test's load phase ends).
//!
//! Accounting: `submitted` counts logical requests (first attempts), `retry_attempts` the
//! retries sent, `sent_total` every attempt; each attempt ends rejected, terminal or lost at the
//! API (see [`SimRecorder`]). Requests scheduled and not yet sent are [`Client::pending`], which
//! keeps the drain going until they are out.

use crate::recorder::SimRecorder;
use crate::world::exact_sleep;
use conductor::net::{Link, Net};
use conductor::proto::{Answer, Msg, OpSpec};
use conductor::recorder::Recorder;
use conductor::retry::{RetryBudget, RetryPolicy};
use madsim::runtime::Handle;
use scenario::host_model::sample;
use scenario::rng::{keyed_uniform, Purpose};
use scenario::workload::{Arrivals, Requests};
use scenario::{self, Model, RetryOn};
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::Notify;
use tokio::time::Instant;

/// The bit a retry's attempt number is shifted to in its request id: ids of first attempts stay
/// below 2^40 (at most 10^8 requests per run), so every attempt has an id of its own.
pub const ATTEMPT_SHIFT: u32 = 40;

/// What the client needs to run.
#[derive(Clone)]
pub struct ClientConfig {
    /// The client node's address.
    pub ip: IpAddr,
    /// The API.
    pub api: SocketAddr,
    /// The start of the run: intended times are offsets from it.
    pub start: Instant,
    /// The run's seed.
    pub seed: u64,
    /// The load phase: arrivals come before its end.
    pub duration: Duration,
    /// `[workload]`.
    pub workload: scenario::Workload,
    /// `client.timeout` (zero: none).
    pub timeout: Duration,
    /// `client.retry_on`.
    pub retry_on: Vec<RetryOn>,
    /// `[retry]` as a policy.
    pub policy: RetryPolicy,
    /// `[retry] budget` as parameters (ratio, min per second).
    pub budget: (f64, f64),
}

/// A running client.
#[derive(Clone)]
pub struct Client {
    pending: Arc<AtomicU64>,
}

impl Client {
    /// Requests scheduled (later lifecycle steps, retries waiting out their backoff) and not sent
    /// yet: the drain waits for them as for requests in flight.
    pub fn pending(&self) -> u64 {
        self.pending.load(Ordering::Relaxed)
    }
}

/// An attempt sent and not answered.
#[derive(Clone, Copy)]
struct Outstanding {
    /// The logical request: its first attempt's id and intended time.
    op: OpSpec,
    /// 1 for the first attempt.
    attempt: u32,
    /// The delay waited before this attempt (decorrelated jitter grows from it).
    prev: Duration,
}

/// How an attempt ended, as the client sees it.
enum Outcome {
    /// The API answered.
    Answer(Answer),
    /// No answer within `client.timeout`.
    TimedOut,
    /// It could not be sent: no connection to the API.
    Undelivered,
}

struct Inner {
    link: Option<Link>,
    outstanding: BTreeMap<u64, Outstanding>,
    budget: RetryBudget,
    /// (deadline µs, attempt id), deadlines in send order = time order (one timeout for all).
    deadlines: VecDeque<(u64, u64)>,
}

struct Shared {
    cfg: ClientConfig,
    rec: Arc<SimRecorder>,
    net: Net,
    inner: Mutex<Inner>,
    pending: Arc<AtomicU64>,
    /// Wakes the timeout sweeper when its queue gets a first entry.
    first_deadline: Notify,
    retry_conflict: bool,
    retry_timeout: bool,
    retry_error: bool,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Starts the client on `node`: the sender, and the timeout sweeper when there is a timeout.
pub fn start(
    node: &madsim::runtime::NodeHandle,
    rec: Arc<SimRecorder>,
    net: Net,
    cfg: ClientConfig,
) -> Client {
    let pending = Arc::new(AtomicU64::new(0));
    let shared = Arc::new(Shared {
        retry_conflict: cfg.retry_on.contains(&RetryOn::Conflict),
        retry_timeout: cfg.retry_on.contains(&RetryOn::Timeout),
        retry_error: cfg.retry_on.contains(&RetryOn::Error),
        inner: Mutex::new(Inner {
            link: None,
            outstanding: BTreeMap::new(),
            budget: RetryBudget::new(cfg.budget.0, cfg.budget.1),
            deadlines: VecDeque::new(),
        }),
        cfg,
        rec,
        net,
        pending: pending.clone(),
        first_deadline: Notify::new(),
    });
    if !shared.cfg.timeout.is_zero() {
        node.spawn(sweep_timeouts(shared.clone()));
    }
    node.spawn(async move {
        match shared.cfg.workload.model {
            Model::Ops => drive_ops(&shared).await,
            Model::Lifecycle => drive_lifecycle(&shared).await,
        }
    });
    Client { pending }
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
    let (link, mut reader) = s.cfg_connect().await?;
    s.lock().link = Some(link.clone());
    let sh = s.clone();
    tokio::spawn(async move {
        while let Ok(Some(msg)) = reader.next().await {
            if let Msg::Answer { id, answer } = msg {
                outcome(&sh, id, Outcome::Answer(answer));
            }
        }
    });
    Some(link)
}

impl Shared {
    async fn cfg_connect(&self) -> Option<(Link, conductor::net::Reader)> {
        self.net.connect(self.cfg.ip, self.cfg.api).await.ok()
    }
}

/// Sends attempt `attempt` of the logical request `op`.
async fn send(s: &Arc<Shared>, op: OpSpec, attempt: u32, prev: Duration) {
    let wire = OpSpec {
        id: op.id + (u64::from(attempt - 1) << ATTEMPT_SHIFT),
        ..op
    };
    if attempt == 1 {
        s.rec.submitted(&wire);
        s.lock().budget.request(s.rec.now_us());
    } else {
        s.rec.resubmitted(&wire);
    }
    let Some(link) = ensure_link(s).await else {
        s.lock()
            .outstanding
            .insert(wire.id, Outstanding { op, attempt, prev });
        outcome(s, wire.id, Outcome::Undelivered);
        return;
    };
    {
        let mut g = s.lock();
        g.outstanding
            .insert(wire.id, Outstanding { op, attempt, prev });
        if !s.cfg.timeout.is_zero() {
            let deadline = s.rec.now_us() + s.cfg.timeout.as_micros() as u64;
            g.deadlines.push_back((deadline, wire.id));
            if g.deadlines.len() == 1 {
                s.first_deadline.notify_one();
            }
        }
    }
    if !link.send(Msg::Request(wire)) {
        s.lock().link = None;
        outcome(s, wire.id, Outcome::Undelivered);
    }
}

/// Handles the end of attempt `id`: records it, and retries or gives up.
fn outcome(s: &Arc<Shared>, id: u64, how: Outcome) {
    let Some(o) = s.lock().outstanding.remove(&id) else {
        // Answered already, or timed out and a late answer arrives: nothing to do.
        return;
    };
    let intended = o.op.intended_us;
    let rec = &s.rec;
    let (retryable, why) = match &how {
        Outcome::Answer(Answer::Accepted | Answer::Done) => (false, ""),
        Outcome::Answer(Answer::Conflict(_)) => (s.retry_conflict, "conflict"),
        Outcome::Answer(Answer::Unavailable | Answer::Error(_)) => (s.retry_error, "error"),
        Outcome::Answer(Answer::Timeout) | Outcome::TimedOut => (s.retry_timeout, "timeout"),
        Outcome::Undelivered => (s.retry_error, "unreachable"),
    };
    // What this attempt was, whatever comes next.
    match &how {
        Outcome::Answer(Answer::Timeout) | Outcome::TimedOut => rec.timed_out(intended),
        Outcome::Undelivered => rec.undelivered(intended),
        _ => {}
    }
    if retryable {
        let now = rec.now_us();
        let next = o.attempt + 1;
        let delay = s.cfg.policy.delay(next, o.prev, o.op.id);
        let allowed = delay.is_some() && s.lock().budget.try_retry(now);
        if let (Some(d), true) = (delay, allowed) {
            rec.note_for("client", o.op.container, || {
                format!(
                    "op {} {} c{}: {why} on attempt {}, attempt {next} in {d:?}",
                    o.op.id, o.op.kind, o.op.container, o.attempt
                )
            });
            s.pending.fetch_add(1, Ordering::Relaxed);
            let sh = s.clone();
            let at = s.cfg.start + Duration::from_micros(now) + d;
            tokio::spawn(async move {
                exact_sleep(at).await;
                sh.pending.fetch_sub(1, Ordering::Relaxed);
                send(&sh, o.op, next, d).await;
            });
            return;
        }
        rec.gave_up(intended);
        rec.note_for("client", o.op.container, || {
            format!(
                "op {} {} c{}: {why} on attempt {}, gave up",
                o.op.id, o.op.kind, o.op.container, o.attempt
            )
        });
    }
    // The final answer: timed from the first attempt's intended time; refusals are counted by
    // the API, not timed.
    if let Outcome::Answer(a) = how {
        if !matches!(a, Answer::Conflict(_) | Answer::Unavailable) {
            rec.answered(intended, rec.now_us());
        }
    }
}

/// Times out attempts unanswered after `client.timeout`.
async fn sweep_timeouts(s: Arc<Shared>) {
    loop {
        let front = s.lock().deadlines.front().copied();
        match front {
            None => s.first_deadline.notified().await,
            Some((deadline, id)) => {
                if deadline > s.rec.now_us() {
                    exact_sleep(s.cfg.start + Duration::from_micros(deadline)).await;
                }
                s.lock().deadlines.pop_front();
                outcome(&s, id, Outcome::TimedOut);
            }
        }
    }
}

/// Keeps madsim's task list short: it holds a weak reference to every task ever spawned until
/// asked to count them, and counting prunes the dead (memory flat in run length).
fn prune_tasks(n: u64) {
    if n % 1024 == 1023 {
        let _ = Handle::current().metrics().num_tasks();
    }
}

/// The `ops` model: each arrival is one op on a pre-created container.
async fn drive_ops(s: &Arc<Shared>) {
    let Some(mut requests) = Requests::new(&s.cfg.workload, s.cfg.seed) else {
        return;
    };
    connect_first(s).await;
    let arrivals = Arrivals::new(&s.cfg.workload.arrival, s.cfg.seed, s.cfg.duration);
    for (id, intended_us) in arrivals.enumerate() {
        // The clock is read through the recorder: `Instant::now()` is dear under madsim.
        if intended_us > s.rec.now_us() {
            exact_sleep(s.cfg.start + Duration::from_micros(intended_us)).await;
        }
        let (container, kind) = requests.draw();
        let op = OpSpec {
            id: id as u64,
            container,
            kind,
            intended_us,
        };
        prune_tasks(id as u64);
        send(s, op, 1, Duration::ZERO).await;
    }
}

/// The gap before step `step` of container `container`'s lifecycle, keyed by both (common
/// random numbers: the same container waits the same in every configuration).
fn gap(s: &Shared, container: u64, step: usize) -> u64 {
    let key = container.wrapping_mul(1 << 16) ^ step as u64;
    let seed = s.cfg.seed;
    sample(&s.cfg.workload.gap, |k| {
        keyed_uniform(seed, Purpose::Gap, key, k)
    })
    .as_micros() as u64
}

/// The `lifecycle` model: each arrival is a new container that goes through `lifecycle`.
async fn drive_lifecycle(s: &Arc<Shared>) {
    let steps = s.cfg.workload.lifecycle.clone();
    if steps.is_empty() {
        return;
    }
    connect_first(s).await;
    let mut arrivals =
        Arrivals::new(&s.cfg.workload.arrival, s.cfg.seed, s.cfg.duration).peekable();
    // Later steps: (intended µs, container, step); the container breaks ties in time, so the
    // order — hence the request ids — is a function of the seed alone.
    let mut later: BinaryHeap<Reverse<(u64, u64, usize)>> = BinaryHeap::new();
    let (mut next_container, mut next_id) = (0u64, 0u64);
    loop {
        let arrival = arrivals.peek().copied();
        let step = later.peek().map(|r| r.0);
        let (t, container, k) = match (arrival, step) {
            (None, None) => return,
            (Some(a), Some(st)) if st.0 < a => {
                later.pop();
                s.pending.fetch_sub(1, Ordering::Relaxed);
                st
            }
            (Some(a), _) => {
                arrivals.next();
                next_container += 1;
                (a, next_container - 1, 0)
            }
            (None, Some(st)) => {
                later.pop();
                s.pending.fetch_sub(1, Ordering::Relaxed);
                st
            }
        };
        if t > s.rec.now_us() {
            // The step is still pending while the client waits for its time.
            s.pending.fetch_add(1, Ordering::Relaxed);
            exact_sleep(s.cfg.start + Duration::from_micros(t)).await;
            s.pending.fetch_sub(1, Ordering::Relaxed);
        }
        if k + 1 < steps.len() {
            let at = t.saturating_add(gap(s, container, k + 1));
            later.push(Reverse((at, container, k + 1)));
            s.pending.fetch_add(1, Ordering::Relaxed);
        }
        let op = OpSpec {
            id: next_id,
            container,
            kind: steps[k],
            intended_us: t,
        };
        prune_tasks(next_id);
        next_id += 1;
        send(s, op, 1, Duration::ZERO).await;
    }
}
