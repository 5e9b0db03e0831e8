//! The client's state machine: the schedule of requests, the attempts in flight with their
//! deadlines, and the retry decisions (policy, attempt limit, budget, throttling, breaker).

use super::{Attempt, AttemptFailure, ClientConfig, Gate, Outcome, Schedule};
use crate::{Cancel, RetryOn, WaitFor};
use conductor::cancel::Deadline;
use conductor::idempotency::KeyReuse;
use conductor::proto::{Answer, OpSpec};
use conductor::retry::RetryPolicy;
use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

/// The open-loop client without a runtime. Its driver calls, in time order:
///
/// - [`next_due`](Self::next_due), waits until that time, [`issue`](Self::issue) and sends the
///   op as [`Attempt::first`];
/// - before sending any attempt, [`sending`](Self::sending); then [`sent`](Self::sent) once it
///   is on the wire, or [`unsendable`](Self::unsendable) when there is no connection;
/// - on an answer, a lost connection or a passed [`next_deadline`](Self::next_deadline),
///   [`outcome`](Self::outcome) / [`expire`](Self::expire), and performs the [`Ended`] it gets:
///   records it and, for [`Next::Retry`], sends the retry at its time.
pub struct ClientMachine {
    schedule: Option<Schedule>,
    timeout_us: Option<u64>,
    retry_on: Vec<RetryOn>,
    wait_for: WaitFor,
    /// `client.retry_same_op`: retries re-send the op under its first id.
    same_op: bool,
    cancel: Cancel,
    policy: RetryPolicy,
    gate: Gate,
    /// Attempts sent and not ended, by attempt id, with the time (µs) each was sent. With
    /// `same_op` the attempts of one request share an id, one outstanding at a time.
    outstanding: BTreeMap<u64, (Attempt, u64)>,
    /// (deadline µs, attempt id, attempt number), deadlines in send order = time order (one
    /// timeout for all); the number tells a retry under the same id from the attempt before.
    deadlines: VecDeque<(u64, u64, u32)>,
    /// Retries decided and not sent yet (waiting out their delay).
    retries_waiting: u64,
    /// With `same_op` and `wait_for = "done"`: requests being retried, by op id, with their
    /// op's end once seen (`Some(ok)`). The op is the same for every attempt: once it is
    /// terminal it stays so, and a retry answered by its key learns it as a poll would.
    retrying: BTreeMap<u64, Option<bool>>,
}

/// What became of an attempt, and what the client does next: the driver records it and acts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ended {
    /// The attempt that ended.
    pub attempt: Attempt,
    /// What went wrong, `None` for success. A [`AttemptFailure::Timeout`] counts as a timeout
    /// and an [`AttemptFailure::Unreachable`] as undelivered, whatever comes next.
    pub failure: Option<AttemptFailure>,
    /// What the client does about the request.
    pub next: Next,
    /// The request's final answer came from the API and is timed from its first attempt's
    /// intended time: not when it is retried, and not for a refusal (a 409 or 503, which the
    /// API counts).
    pub answered: bool,
    /// When the attempt was sent (µs since the start; for one never sent, when it ended).
    pub sent_us: u64,
}

impl Ended {
    /// The request succeeded (by this attempt) before the client gave up on it: goodput.
    pub fn is_goodput(&self) -> bool {
        self.failure.is_none()
    }
}

/// The client's decision about a request whose attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Nothing more: success, or a failure `retry_on` does not cover.
    Done,
    /// Send `attempt` at `at` (offset from the run's start).
    Retry {
        /// The next attempt (its `prev` is the delay waited).
        attempt: Attempt,
        /// When to send it: the end of the ended attempt plus the policy's delay.
        at: Duration,
    },
    /// A failure `retry_on` covers, but the attempt limit, the budget or the throttle refuses
    /// a retry, or the breaker refused to send the attempt.
    GaveUp,
}

impl Ended {
    /// The trace note for a retry or a give-up; `None` when the request is simply done.
    pub fn note(&self) -> Option<String> {
        let a = &self.attempt;
        let why = self.failure.map_or("", AttemptFailure::name);
        let head = format!(
            "op {} {} c{}: {why} on attempt {}",
            a.op.id, a.op.kind, a.op.container, a.number
        );
        match &self.next {
            Next::Done => None,
            Next::Retry { attempt, .. } => Some(format!(
                "{head}, attempt {} in {:?}",
                attempt.number, attempt.prev
            )),
            Next::GaveUp => Some(format!("{head}, gave up")),
        }
    }
}

impl ClientMachine {
    /// A client that has sent nothing yet.
    pub fn new(cfg: &ClientConfig) -> Self {
        ClientMachine {
            schedule: Schedule::new(cfg),
            timeout_us: (!cfg.timeout.is_zero()).then_some(cfg.timeout.as_micros() as u64),
            retry_on: cfg.retry_on.clone(),
            wait_for: cfg.wait_for,
            same_op: cfg.same_op,
            cancel: cfg.cancel,
            policy: cfg.policy,
            gate: Gate::new(&cfg.retry),
            outstanding: BTreeMap::new(),
            deadlines: VecDeque::new(),
            retries_waiting: 0,
            retrying: BTreeMap::new(),
        }
    }

    /// `attempt` as it goes on the wire when sent at `services_now_us` (µs on the services'
    /// clock: the run's under simulation, the UNIX epoch's for real): under its own id, with
    /// the deadline `client.cancel` gives it — the moment the client will time out on it.
    pub fn wire(&self, attempt: &Attempt, services_now_us: u64) -> OpSpec {
        OpSpec {
            deadline: self
                .timeout_us
                .and_then(|t| Deadline::of(self.cancel, services_now_us, t)),
            ..attempt.wire()
        }
    }

    /// Whether the workload sends anything at all (if not, the client need not connect).
    pub fn sends_anything(&self) -> bool {
        self.schedule.is_some()
    }

    /// Whether attempts time out (`client.timeout` is not zero): the driver then watches
    /// [`next_deadline`](Self::next_deadline).
    pub fn has_timeout(&self) -> bool {
        self.timeout_us.is_some()
    }

    /// The intended time (µs since the start) of the next new request; `None` when the
    /// workload has no more.
    pub fn next_due(&mut self) -> Option<u64> {
        self.schedule.as_mut()?.next_due()
    }

    /// The request announced by [`next_due`](Self::next_due), to be sent now as its first
    /// attempt.
    pub fn issue(&mut self) -> Option<OpSpec> {
        self.schedule.as_mut()?.issue()
    }

    /// Requests scheduled and not sent yet (a lifecycle's later steps, the due request, retries
    /// waiting out their delay): the drain waits for them as for requests in flight.
    pub fn pending(&self) -> u64 {
        self.schedule.as_ref().map_or(0, Schedule::pending) + self.retries_waiting
    }

    /// `attempt` is being sent at `now_us`: a first attempt deposits its share in the retry
    /// budget; a retry is no longer waiting. `false` when the breaker is open: the attempt is
    /// not sent, and [`refused`](Self::refused) says what became of it.
    pub fn sending(&mut self, attempt: &Attempt, now_us: u64) -> bool {
        if attempt.is_first() {
            self.gate.request(now_us);
        } else {
            self.retries_waiting = self.retries_waiting.saturating_sub(1);
        }
        self.gate.admit(now_us)
    }

    /// `attempt`, which [`sending`](Self::sending) refused at `now_us` (the breaker is open),
    /// fails fast: the request is given up.
    pub fn refused(&mut self, attempt: Attempt, now_us: u64) -> Ended {
        self.retrying.remove(&attempt.op.id);
        Ended {
            attempt,
            failure: Some(AttemptFailure::BreakerOpen),
            next: Next::GaveUp,
            answered: false,
            sent_us: now_us,
        }
    }

    /// Attempts sent and not ended.
    pub fn in_flight(&self) -> u32 {
        self.outstanding.len() as u32
    }

    /// Whether the client waits for ops to become terminal (`client.wait_for = "done"`): the
    /// driver then reports them with [`terminal`](Self::terminal).
    pub fn waits_for_done(&self) -> bool {
        self.wait_for == WaitFor::Done
    }

    /// The op of attempt `id` became terminal at `now_us` (`ok`: done) — with
    /// `wait_for = "done"`, the end of the attempt if it is still outstanding; `None` otherwise
    /// (it timed out, or the client does not wait for ops to finish). With `retry_same_op`, a
    /// request whose retry waits out its delay remembers the end: the retry, answered by the
    /// op's key, ends with it.
    pub fn terminal(&mut self, id: u64, ok: bool, now_us: u64) -> Option<Ended> {
        if self.wait_for != WaitFor::Done {
            return None;
        }
        let Some((attempt, sent_us)) = self.outstanding.remove(&id) else {
            if let Some(end) = self.retrying.get_mut(&id) {
                *end = Some(ok);
            }
            return None;
        };
        Some(self.decide(attempt, Outcome::Terminal { ok }, sent_us, now_us))
    }

    /// `attempt` went on the wire at `now_us`: it is outstanding until its outcome, and times
    /// out `client.timeout` later. `true` when its deadline is the only one (a driver waiting
    /// for a first deadline should wake).
    pub fn sent(&mut self, attempt: Attempt, now_us: u64) -> bool {
        let id = attempt.id();
        self.outstanding.insert(id, (attempt, now_us));
        match self.timeout_us {
            Some(t) => {
                self.deadlines.push_back((now_us + t, id, attempt.number));
                self.deadlines.len() == 1
            }
            None => false,
        }
    }

    /// `attempt` could not be sent at `now_us` (no connection to the API): it ends
    /// [`Outcome::Undelivered`] at once.
    pub fn unsendable(&mut self, attempt: Attempt, now_us: u64) -> Ended {
        self.decide(attempt, Outcome::Undelivered, now_us, now_us)
    }

    /// Attempt `id` ended with `how` at `now_us`; `None` when it had ended already (answered, or
    /// timed out before this late answer came) — or, with `wait_for = "done"`, when `how` is the
    /// API's 202: the attempt goes on until its op is terminal ([`terminal`](Self::terminal)) or
    /// its deadline passes. A refusal because the id's op is still in flight
    /// ([`KeyReuse::InFlight`]) is no end either: the op's own answer (or end) comes under the
    /// same id, and the attempt waits for it until its deadline. With `retry_same_op` and
    /// `wait_for = "done"`, any answer to a retry whose op is known terminal ends it as the op
    /// ended.
    pub fn outcome(&mut self, id: u64, how: Outcome, now_us: u64) -> Option<Ended> {
        if let Outcome::Answer(answer) = how {
            if let Some(&Some(ok)) = self.retrying.get(&id) {
                let (attempt, sent_us) = self.outstanding.remove(&id)?;
                return Some(self.decide(attempt, Outcome::Terminal { ok }, sent_us, now_us));
            }
            if answer == Answer::Refused(KeyReuse::InFlight)
                || (self.wait_for == WaitFor::Done && answer == Answer::Accepted)
            {
                return None;
            }
        }
        let (attempt, sent_us) = self.outstanding.remove(&id)?;
        Some(self.decide(attempt, how, sent_us, now_us))
    }

    /// The earliest deadline (µs since the start) not yet expired: [`expire`](Self::expire) is
    /// due then.
    pub fn next_deadline(&self) -> Option<u64> {
        self.deadlines.front().map(|&(deadline, ..)| deadline)
    }

    /// The earliest deadline passed (call at or after [`next_deadline`](Self::next_deadline)):
    /// its attempt, if still outstanding, ends [`Outcome::TimedOut`] (a later attempt under
    /// the same id keeps its own deadline).
    pub fn expire(&mut self, now_us: u64) -> Option<Ended> {
        let (_, id, number) = self.deadlines.pop_front()?;
        if self.outstanding.get(&id)?.0.number != number {
            return None;
        }
        self.outcome(id, Outcome::TimedOut, now_us)
    }

    /// What to do about `attempt`, sent at `sent_us`, which ended with `how` at `now_us`.
    fn decide(&mut self, attempt: Attempt, how: Outcome, sent_us: u64, now_us: u64) -> Ended {
        let failure = AttemptFailure::of(&how);
        // An id that named another op is the client's bug: asking again cannot help.
        let misused = matches!(how, Outcome::Answer(Answer::Refused(r)) if !r.retryable());
        let retryable = !misused && failure.is_some_and(|f| self.retry_on.contains(&f.retry_on()));
        self.gate.outcome(now_us, failure, retryable);
        let next = if retryable {
            self.retry(&attempt, now_us)
        } else {
            Next::Done
        };
        if self.same_op && self.wait_for == WaitFor::Done {
            match next {
                Next::Retry { .. } => {
                    let end = match how {
                        Outcome::Terminal { ok } => Some(ok),
                        _ => None,
                    };
                    let known = self.retrying.entry(attempt.op.id).or_insert(None);
                    *known = known.or(end);
                }
                Next::Done | Next::GaveUp => {
                    self.retrying.remove(&attempt.op.id);
                }
            }
        }
        // Refusals are counted by the API, not timed.
        let answered = !matches!(next, Next::Retry { .. })
            && matches!(how, Outcome::Answer(a) if !matches!(a, Answer::Conflict(_) | Answer::Unavailable));
        Ended {
            attempt,
            failure,
            next,
            answered,
            sent_us,
        }
    }

    /// A retry of `attempt` after the policy's delay, if the attempt limit and then the budget
    /// allow one (the budget is asked only when the policy would retry).
    fn retry(&mut self, attempt: &Attempt, now_us: u64) -> Next {
        let number = attempt.number + 1;
        let Some(delay) = self.policy.delay(number, attempt.prev, attempt.op.id) else {
            return Next::GaveUp;
        };
        if !self.gate.try_retry(now_us) {
            return Next::GaveUp;
        }
        self.retries_waiting += 1;
        Next::Retry {
            attempt: Attempt {
                op: attempt.op,
                number,
                prev: delay,
                same_op: self.same_op,
            },
            at: Duration::from_micros(now_us) + delay,
        }
    }
}
