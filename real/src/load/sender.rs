//! The open-loop sender: the simulator's client machine ([`scenario::client`]: the workload's
//! requests at their intended times, `[client]` timeouts and retries, the budget) driven over
//! HTTP and wall-clock time, as `real/src/drive.rs` drives it over the binary protocol. Every
//! latency is measured from the request's intended time; a send that leaves later than
//! intended is measured (its lateness) and, past `target.late_after`, counted behind schedule.

use super::pool::{Pool, SendError};
use super::request::Requests;
use super::lock;
use crate::zun;
use conductor::op::OpKind;
use conductor::proto::Answer;
use reports::{Histo, SeedMetrics};
use scenario::client::{Attempt, AttemptFailure, ClientConfig, ClientMachine, Ended, Next, Outcome};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{Notify, Semaphore};
use tokio::time::Instant;

/// What the sender saw, beyond the report's metrics.
#[derive(Debug, Default)]
pub struct Seen {
    /// First attempts sent (the workload's requests).
    pub requests: u64,
    /// Retries sent.
    pub retries: u64,
    /// Lateness of each send (from its intended time to its leaving on a connection), µs.
    pub lateness: Histo,
    /// Sends later than `target.late_after`.
    pub behind: u64,
    /// Answers by HTTP status.
    pub statuses: BTreeMap<u16, u64>,
    /// Attempts whose target could not be dialled.
    pub connect_errors: u64,
    /// Attempts whose connection failed or did not speak HTTP.
    pub protocol_errors: u64,
    /// Attempts that waited for an in-flight slot (`target.max_in_flight`).
    pub waited_in_flight: u64,
    /// Containers whose create was answered 2xx and that no 2xx delete removed since.
    pub live: BTreeSet<u64>,
}

struct Inner {
    machine: ClientMachine,
    m: SeedMetrics,
    seen: Seen,
}

/// A running sender (one per `client.instances`).
pub struct Sender {
    shared: Arc<Shared>,
}

struct Shared {
    start: Instant,
    pool: Arc<Pool>,
    requests: Arc<Requests>,
    in_flight: Semaphore,
    late_after_us: u64,
    /// How long an HTTP request may go unanswered before it is abandoned (its connection
    /// dropped): the client's timeout, when it has one.
    abandon: Option<Duration>,
    inner: Mutex<Inner>,
    first_deadline: Notify,
}

impl Shared {
    fn now_us(&self) -> u64 {
        self.start.elapsed().as_micros() as u64
    }

    fn at(&self, us: u64) -> Instant {
        self.start + Duration::from_micros(us)
    }
}

/// How the sender is set up.
pub struct Setup {
    /// The instance's client.
    pub cfg: ClientConfig,
    /// The time every intended time counts from.
    pub start: Instant,
    /// The connection pool, shared by every instance.
    pub pool: Arc<Pool>,
    /// The requests' shapes.
    pub requests: Arc<Requests>,
    /// `target.max_in_flight`.
    pub max_in_flight: u32,
    /// `target.late_after`.
    pub late_after: Duration,
    /// The metrics it fills (warm-up from the scenario).
    pub metrics: SeedMetrics,
}

impl Sender {
    /// Starts the sender: its schedule and, with a timeout, the timeout sweeper. Its tasks end
    /// with the runtime.
    pub fn start(s: Setup) -> Sender {
        let abandon = (!s.cfg.timeout.is_zero()).then_some(s.cfg.timeout);
        let shared = Arc::new(Shared {
            start: s.start,
            pool: s.pool,
            requests: s.requests,
            in_flight: Semaphore::new(s.max_in_flight.max(1) as usize),
            late_after_us: s.late_after.as_micros() as u64,
            abandon,
            inner: Mutex::new(Inner {
                machine: ClientMachine::new(&s.cfg),
                m: s.metrics,
                seen: Seen::default(),
            }),
            first_deadline: Notify::new(),
        });
        let (timeout, sends) = {
            let g = lock(&shared.inner);
            (g.machine.has_timeout(), g.machine.sends_anything())
        };
        if timeout {
            tokio::spawn(sweep_timeouts(shared.clone()));
        }
        if sends {
            tokio::spawn(drive(shared.clone()));
        }
        Sender { shared }
    }

    /// Requests not finished: scheduled and not sent, or sent and not ended.
    pub fn unfinished(&self) -> u64 {
        let g = lock(&self.shared.inner);
        g.machine.pending() + u64::from(g.machine.in_flight())
    }

    /// Attempts in flight now.
    pub fn in_flight(&self) -> u32 {
        lock(&self.shared.inner).machine.in_flight()
    }

    /// Reads the metrics and what was seen so far.
    pub fn read<T>(&self, f: impl FnOnce(&SeedMetrics, &Seen) -> T) -> T {
        let g = lock(&self.shared.inner);
        f(&g.m, &g.seen)
    }

    /// The metrics and what was seen, at the end (what is still in flight counts as lost).
    pub fn finish(self, end_us: u64) -> (SeedMetrics, Seen) {
        let mut g = lock(&self.shared.inner);
        let mut m = std::mem::replace(
            &mut g.m,
            SeedMetrics::new(0, 0, &[], 1, 1),
        );
        m.lost = u64::from(g.machine.in_flight()) + g.machine.pending();
        m.finish(end_us);
        m.finish_timeline(end_us);
        (m, std::mem::take(&mut g.seen))
    }
}

/// Counts `attempt` as being sent at `now_us` and asks the machine (the breaker may refuse
/// it): `Some` when it is to go on the wire, `None` when it ended at once (recorded).
fn begin(g: &mut Inner, attempt: Attempt, now_us: u64) -> Option<Attempt> {
    let intended = attempt.op.intended_us;
    g.m.sent_total += 1;
    g.m.timeline.attempt_sent(now_us, attempt.is_first());
    if attempt.is_first() {
        g.seen.requests += 1;
        if g.m.counting(intended) {
            g.m.submitted += 1;
        }
    } else {
        g.seen.retries += 1;
        g.m.timeline.retry(now_us);
        if g.m.counting(intended) {
            g.m.retry_attempts += 1;
            g.m.client_retries += 1;
        }
    }
    if g.machine.sending(&attempt, now_us) {
        return Some(attempt);
    }
    let e = g.machine.refused(attempt, now_us);
    // A refused attempt gives its request up ([`ClientMachine::refused`]): no retry comes of it.
    let _ = record(g, e, now_us);
    None
}

/// Sends `attempt`, which [`begin`] let go, on the wire: waits for an in-flight slot (counted),
/// builds its request, and hands its HTTP answer (or why there is none) to the machine.
async fn transmit(s: Arc<Shared>, attempt: Attempt) {
    let wire = attempt.wire();
    let permit = match s.in_flight.try_acquire() {
        Ok(p) => p,
        Err(_) => {
            lock(&s.inner).seen.waited_in_flight += 1;
            match s.in_flight.acquire().await {
                Ok(p) => p,
                Err(_) => return,
            }
        }
    };
    // When the attempt was due: its intended time for a first attempt, its retry time else.
    let due_us = if attempt.is_first() {
        wire.intended_us
    } else {
        s.now_us()
    };
    let req = s.requests.build(wire.kind, wire.container, wire.id);
    let mut wired = false;
    let on_wire = || {
        wired = true;
        let now = s.now_us();
        let late = now.saturating_sub(due_us);
        let mut g = lock(&s.inner);
        g.seen.lateness.record(late);
        if late > s.late_after_us {
            g.seen.behind += 1;
        }
        if g.machine.sent(attempt, now) {
            s.first_deadline.notify_one();
        }
    };
    let sending = s.pool.send(req, on_wire);
    let result = match s.abandon {
        // A little past the client's timeout: the machine has counted it by then.
        Some(t) => tokio::time::timeout(t + Duration::from_millis(100), sending)
            .await
            .unwrap_or(Err(SendError::Protocol)),
        None => sending.await,
    };
    drop(permit);
    let now = s.now_us();
    let retry = {
        let mut g = lock(&s.inner);
        let outcome = answered(&mut g, wire.kind, wire.container, wire.intended_us, result);
        let ended = if outcome == Outcome::Undelivered || !wired {
            // Never on the wire (not dialled, or abandoned while waiting for a connection):
            // the machine has not seen it sent.
            Some(g.machine.unsendable(attempt, now))
        } else {
            g.machine.outcome(wire.id, outcome, now)
        };
        ended.and_then(|e| record(&mut g, e, now))
    };
    if let Some(r) = retry {
        schedule_retry(&s, r);
    }
}

/// Counts an HTTP answer (or why there is none) of an op of `kind` on `container` intended at
/// `intended_us`,
/// and says what it is to the client machine.
fn answered(
    g: &mut Inner,
    kind: OpKind,
    container: u64,
    intended_us: u64,
    result: Result<u16, SendError>,
) -> Outcome {
    let counting = g.m.counting(intended_us);
    match result {
        Ok(status) => {
            *g.seen.statuses.entry(status).or_insert(0) += 1;
            if (200..300).contains(&status) {
                match kind {
                    OpKind::Create => {
                        g.seen.live.insert(container);
                    }
                    OpKind::Delete => {
                        g.seen.live.remove(&container);
                    }
                    _ => {}
                }
            }
            let mut a = zun::answer_of_status(status);
            if a == Answer::Accepted && kind.is_blocking() {
                a = Answer::Done;
            }
            if a == Answer::Accepted && counting {
                g.m.accepted += 1;
            }
            if a == Answer::Done && counting {
                g.m.accepted += 1;
                g.m.completed += 1;
            }
            if matches!(a, Answer::Conflict(_) | Answer::Unavailable) && counting {
                g.m.rejected += 1;
            }
            Outcome::Answer(a)
        }
        Err(SendError::Connect) => {
            g.seen.connect_errors += 1;
            Outcome::Undelivered
        }
        Err(SendError::Protocol) => {
            g.seen.protocol_errors += 1;
            Outcome::Answer(Answer::Error(conductor::proto::Failure::Unavailable))
        }
    }
}

/// A retry the machine decided: the attempt and when it is due (offset from the start).
type Retry = (Attempt, Duration);

/// Sends retry `r` at its time, on a task of its own.
fn schedule_retry(s: &Arc<Shared>, (attempt, at): Retry) {
    let sh = s.clone();
    let at = s.start + at;
    tokio::spawn(async move {
        tokio::time::sleep_until(at).await;
        let now = sh.now_us();
        let go = {
            let mut g = lock(&sh.inner);
            begin(&mut g, attempt, now)
        };
        if let Some(a) = go {
            transmit(sh, a).await;
        }
    });
}

/// Records what an attempt that ended at `now_us` was (as the simulator's recorder does); the
/// retry the machine decided, for the caller to schedule once the lock is released.
fn record(g: &mut Inner, e: Ended, now_us: u64) -> Option<Retry> {
    let intended = e.attempt.op.intended_us;
    let in_flight = g.machine.in_flight();
    let counting = g.m.counting(intended);
    g.m.timeline.attempt_ended(now_us, e.sent_us);
    g.m.timeline.inflight_set(now_us, 0, in_flight);
    if counting {
        g.m.attempt.record(now_us.saturating_sub(e.sent_us));
    }
    match e.failure {
        Some(AttemptFailure::Timeout) if counting => g.m.timeouts += 1,
        Some(AttemptFailure::Unreachable | AttemptFailure::BreakerOpen) if counting => {
            g.m.rejected += 1
        }
        None => {
            g.m.timeline.goodput(now_us, intended);
            if counting {
                g.m.goodput += 1;
                g.m.end_to_end.record(now_us.saturating_sub(intended));
            }
        }
        _ => {}
    }
    match e.next {
        Next::Done => {}
        Next::Retry { attempt, at } => return Some((attempt, at)),
        Next::GaveUp => {
            g.m.timeline.gave_up(now_us);
            if counting {
                g.m.gave_up += 1;
                g.m.client_gave_up += 1;
            }
        }
    }
    if e.answered && counting {
        let us = now_us.saturating_sub(intended);
        g.m.accept.record(us);
        // Over HTTP the op's completion is not seen: the answer's latency stands for it.
        g.m.record_complete(intended, e.attempt.op.kind.name(), us);
    }
    None
}

/// Times out attempts unanswered after `client.timeout`: every deadline passed, in one wake.
async fn sweep_timeouts(s: Arc<Shared>) {
    let mut retries = Vec::new();
    loop {
        let front = {
            let mut g = lock(&s.inner);
            let now = s.now_us();
            loop {
                match g.machine.next_deadline() {
                    Some(d) if d <= now => {
                        if let Some(e) = g.machine.expire(now) {
                            retries.extend(record(&mut g, e, now));
                        }
                    }
                    other => break other,
                }
            }
        };
        for r in retries.drain(..) {
            schedule_retry(&s, r);
        }
        match front {
            None => s.first_deadline.notified().await,
            Some(deadline) => tokio::time::sleep_until(s.at(deadline)).await,
        }
    }
}

/// Sends every request of the schedule at its intended time, without waiting for answers:
/// each send is a task of its own, so a slow answer never delays the next send. The timer
/// wakes at most once a millisecond (tokio's resolution) and a sender at thousands a second
/// has several requests due per wake: every request whose time has come is taken, counted and
/// handed to a task in one wake, under one lock, in schedule order — never one sleep each.
async fn drive(s: Arc<Shared>) {
    let mut due = Vec::new();
    loop {
        let next = {
            let mut g = lock(&s.inner);
            let now = s.now_us();
            loop {
                match g.machine.next_due() {
                    Some(t) if t <= now => match g.machine.issue() {
                        Some(op) => due.extend(begin(&mut g, Attempt::first(op), now)),
                        None => break None,
                    },
                    other => break other,
                }
            }
        };
        for a in due.drain(..) {
            tokio::spawn(transmit(s.clone(), a));
        }
        match next {
            Some(t) => tokio::time::sleep_until(s.at(t)).await,
            None => return,
        }
    }
}

/// Connections dialled and requests that waited for a connection, of `pool`.
pub fn pool_counts(pool: &Pool) -> (u64, u64) {
    (
        pool.dialled.load(Ordering::Relaxed),
        pool.waited.load(Ordering::Relaxed),
    )
}
