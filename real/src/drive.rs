//! The scenario's open-loop client for real: the simulator's client machine
//! ([`scenario::client`]: the workload's requests at their intended times, timeouts, retries,
//! the budget) driven over TCP and wall-clock time, as `sim/src/client.rs` drives it under
//! madsim. `conductor cluster` runs it in its own process against the deployment's API.

use conductor::net::{Link, Net};
use conductor::proto::Msg;
use conductor::rpc::lock;
use scenario::client::{
    Attempt, AttemptFailure, ClientConfig, ClientMachine, Ended, Next, Outcome,
};
use serde::Serialize;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;
use tokio::time::Instant;

/// What the client sent and what became of it.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Tally {
    /// Requests of the workload sent (first attempts).
    pub requests: u64,
    /// Retries sent.
    pub retries: u64,
    /// Requests whose final answer was accepted or done.
    pub ok: u64,
    /// Requests whose final answer was a 409 conflict.
    pub conflict: u64,
    /// Requests that ended otherwise and were not retried: failed, 503 unavailable, timed out
    /// or never sent.
    pub error: u64,
    /// Attempts that timed out (the client's timeout or the API's RPC timeout).
    pub timed_out: u64,
    /// Attempts that could not be sent (no connection to the API).
    pub undelivered: u64,
    /// Requests given up (attempt limit or budget).
    pub gave_up: u64,
}

struct Inner {
    link: Option<Link>,
    machine: ClientMachine,
    tally: Tally,
}

/// A running client.
pub struct Client {
    shared: Arc<Shared>,
}

struct Shared {
    api: SocketAddr,
    start: Instant,
    inner: Mutex<Inner>,
    /// Wakes the timeout sweeper when its queue gets a first entry.
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

impl Client {
    /// Starts the client of `cfg` against the API at `api`, its intended times counted from
    /// `start`: the sender, and the timeout sweeper when there is a timeout. Its tasks end with
    /// the runtime (the command's end).
    pub fn start(cfg: &ClientConfig, api: SocketAddr, start: Instant) -> Client {
        let shared = Arc::new(Shared {
            api,
            start,
            inner: Mutex::new(Inner {
                link: None,
                machine: ClientMachine::new(cfg),
                tally: Tally::default(),
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
        Client { shared }
    }

    /// What was sent and answered so far.
    pub fn tally(&self) -> Tally {
        lock(&self.shared.inner).tally.clone()
    }

    /// Requests not finished: scheduled and not sent, or sent and not answered.
    pub fn unfinished(&self) -> u64 {
        let g = lock(&self.shared.inner);
        let t = &g.tally;
        let finished = t.ok + t.conflict + t.error + t.gave_up;
        g.machine.pending() + t.requests.saturating_sub(finished)
    }
}

/// The current link to the API, connecting again if it is gone (the API restarted); `None`
/// when the API refuses.
async fn ensure_link(s: &Arc<Shared>) -> Option<Link> {
    if let Some(l) = &lock(&s.inner).link {
        if !l.is_closed() {
            return Some(l.clone());
        }
    }
    let (link, mut reader) = Net::Tcp.connect(s.api.ip(), s.api).await.ok()?;
    lock(&s.inner).link = Some(link.clone());
    let sh = s.clone();
    tokio::spawn(async move {
        while let Ok(Some(msg)) = reader.next().await {
            if let Msg::Answer { id, answer } = msg {
                let now = sh.now_us();
                let ended = lock(&sh.inner)
                    .machine
                    .outcome(id, Outcome::Answer(answer), now);
                if let Some(e) = ended {
                    perform(&sh, e);
                }
            }
        }
    });
    Some(link)
}

/// Sends `attempt`.
async fn send(s: &Arc<Shared>, attempt: Attempt) {
    {
        let mut g = lock(&s.inner);
        if attempt.is_first() {
            g.tally.requests += 1;
        } else {
            g.tally.retries += 1;
        }
        g.machine.sending(&attempt, s.now_us());
    }
    let Some(link) = ensure_link(s).await else {
        let now = s.now_us();
        let ended = lock(&s.inner).machine.unsendable(attempt, now);
        perform(s, ended);
        return;
    };
    let now = s.now_us();
    let (first_deadline, wire) = {
        let mut g = lock(&s.inner);
        // The services' clock is the wall clock (the UNIX epoch's µs): a deadline on it means
        // the same instant to every process, whatever each one's start.
        let wire = g
            .machine
            .wire(&attempt, conductor::recorder::wall_clock_us());
        (g.machine.sent(attempt, now), wire)
    };
    if first_deadline {
        s.first_deadline.notify_one();
    }
    if !link.send(Msg::Request(wire)) {
        let ended = {
            let mut g = lock(&s.inner);
            g.link = None;
            g.machine.outcome(wire.id, Outcome::Undelivered, now)
        };
        if let Some(e) = ended {
            perform(s, e);
        }
    }
}

/// Counts what an attempt was and, for a retry, sends it at its time.
fn perform(s: &Arc<Shared>, e: Ended) {
    let mut g = lock(&s.inner);
    let t = &mut g.tally;
    match e.failure {
        Some(AttemptFailure::Timeout) => t.timed_out += 1,
        Some(AttemptFailure::Unreachable) => t.undelivered += 1,
        _ => {}
    }
    match e.next {
        Next::Retry { attempt, at } => {
            drop(g);
            let sh = s.clone();
            let at = s.start + at;
            tokio::spawn(async move {
                tokio::time::sleep_until(at).await;
                send(&sh, attempt).await;
            });
        }
        Next::GaveUp => t.gave_up += 1,
        Next::Done => match e.failure {
            None => t.ok += 1,
            Some(AttemptFailure::Conflict) => t.conflict += 1,
            Some(_) => t.error += 1,
        },
    }
}

/// Times out attempts unanswered after `client.timeout`.
async fn sweep_timeouts(s: Arc<Shared>) {
    loop {
        let front = lock(&s.inner).machine.next_deadline();
        match front {
            None => s.first_deadline.notified().await,
            Some(deadline) => {
                tokio::time::sleep_until(s.at(deadline)).await;
                let now = s.now_us();
                let ended = lock(&s.inner).machine.expire(now);
                if let Some(e) = ended {
                    perform(&s, e);
                }
            }
        }
    }
}

/// Sends every request of the schedule at its intended time, without waiting for answers.
async fn drive(s: Arc<Shared>) {
    loop {
        let Some(t) = lock(&s.inner).machine.next_due() else {
            return;
        };
        tokio::time::sleep_until(s.at(t)).await;
        let Some(op) = lock(&s.inner).machine.issue() else {
            return;
        };
        send(&s, Attempt::first(op)).await;
    }
}
