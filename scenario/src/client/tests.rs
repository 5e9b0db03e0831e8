//! The client machine's decisions, event by event, without a runtime.

use super::*;
use crate::workload::{Arrivals, Requests};
use crate::{parse_str, RetryOn};
use conductor::idempotency::KeyReuse;
use conductor::op::{OpKind, Status};
use conductor::proto::{Answer, Failure, OpSpec};
use conductor::retry::{Backoff, RetryPolicy};
use std::time::Duration;

/// The client of a scenario whose `[client]` and `[retry]` tables are `extra`.
fn config(extra: &str) -> ClientConfig {
    let src = format!(
        "name = \"x\"\nduration = \"10s\"\n[workload]\narrival = {{ kind = \"poisson\", rate = 20.0 }}\n{extra}"
    );
    ClientConfig::new(&parse_str(&src, "x.toml", &[], None).unwrap(), 7)
}

/// A machine retrying `retry_on` with `policy`, no timeout, no budget.
fn retrying(retry_on: &[RetryOn], policy: RetryPolicy) -> ClientMachine {
    let mut cfg = config("");
    cfg.retry_on = retry_on.to_vec();
    cfg.policy = policy;
    ClientMachine::new(&cfg)
}

fn policy(backoff: Backoff, max_attempts: u32) -> RetryPolicy {
    RetryPolicy {
        backoff,
        base: Duration::from_millis(100),
        cap: Duration::from_secs(5),
        max_attempts,
    }
}

fn op(id: u64) -> OpSpec {
    OpSpec {
        id,
        container: 3,
        kind: OpKind::Start,
        intended_us: 1_000,
        deadline: None,
    }
}

const ERROR: Outcome = Outcome::Answer(Answer::Error(Failure::PoolRejected));
const CONFLICT: Outcome = Outcome::Answer(Answer::Conflict(Status::Running));

/// Sends `a` at `now` and ends it with `how` at `now + 10 ms`.
fn send_and_end(m: &mut ClientMachine, a: Attempt, now: u64, how: Outcome) -> Ended {
    m.sending(&a, now);
    m.sent(a, now);
    m.outcome(a.id(), how, now + 10_000).expect("outstanding")
}

#[test]
fn attempt_ids_carry_the_attempt_number() {
    let first = Attempt::first(op(5));
    assert!(first.is_first());
    assert_eq!(first.id(), 5);
    let third = Attempt { number: 3, ..first };
    assert!(!third.is_first());
    assert_eq!(third.id(), 5 + (2 << ATTEMPT_SHIFT));
    assert_eq!(
        third.wire(),
        OpSpec {
            id: 5 + (2 << 40),
            ..op(5)
        },
        "a retry is the same op under a new id"
    );
}

#[test]
fn failures_by_retry_on_entry() {
    use AttemptFailure as F;
    let cases = [
        (Outcome::Answer(Answer::Accepted), None),
        (Outcome::Answer(Answer::Done), None),
        (CONFLICT, Some((F::Conflict, RetryOn::Conflict))),
        (ERROR, Some((F::Error, RetryOn::Error))),
        (
            Outcome::Answer(Answer::Unavailable),
            Some((F::Error, RetryOn::Error)),
        ),
        (
            Outcome::Answer(Answer::Timeout),
            Some((F::Timeout, RetryOn::Timeout)),
        ),
        (Outcome::TimedOut, Some((F::Timeout, RetryOn::Timeout))),
        (Outcome::Undelivered, Some((F::Unreachable, RetryOn::Error))),
    ];
    for (how, want) in cases {
        let got = AttemptFailure::of(&how).map(|f| (f, f.retry_on()));
        assert_eq!(got, want, "{how:?}");
    }
}

#[test]
fn success_is_done_and_timed() {
    let mut m = retrying(
        &[RetryOn::Conflict, RetryOn::Error, RetryOn::Timeout],
        policy(Backoff::Fixed, 5),
    );
    let e = send_and_end(
        &mut m,
        Attempt::first(op(1)),
        0,
        Outcome::Answer(Answer::Accepted),
    );
    assert_eq!((e.failure, e.next, e.answered), (None, Next::Done, true));
    assert_eq!(e.note(), None);
    assert_eq!(
        m.outcome(1, Outcome::Answer(Answer::Done), 20_000),
        None,
        "ended once"
    );
}

#[test]
fn retry_on_filters_outcomes() {
    // Only conflicts are retried: an error answer is final (and timed), a 503 final (untimed).
    let p = policy(Backoff::Fixed, 5);
    let mut m = retrying(&[RetryOn::Conflict], p);
    let e = send_and_end(&mut m, Attempt::first(op(1)), 0, CONFLICT);
    assert!(matches!(e.next, Next::Retry { .. }), "{e:?}");
    assert!(!e.answered, "a retried request has no final answer yet");
    let e = send_and_end(&mut m, Attempt::first(op(2)), 0, ERROR);
    assert_eq!(
        (e.failure, e.next, e.answered),
        (Some(AttemptFailure::Error), Next::Done, true)
    );
    let e = send_and_end(
        &mut m,
        Attempt::first(op(3)),
        0,
        Outcome::Answer(Answer::Unavailable),
    );
    assert_eq!(
        (e.next, e.answered),
        (Next::Done, false),
        "a 503 is counted by the API"
    );
    let e = send_and_end(&mut m, Attempt::first(op(4)), 0, Outcome::TimedOut);
    assert_eq!(
        (e.failure, e.next),
        (Some(AttemptFailure::Timeout), Next::Done)
    );

    // Nothing retried: a conflict is final and untimed.
    let mut m = retrying(&[], p);
    let e = send_and_end(&mut m, Attempt::first(op(1)), 0, CONFLICT);
    assert_eq!(
        (e.failure, e.next, e.answered),
        (Some(AttemptFailure::Conflict), Next::Done, false)
    );

    // `error` covers a refused connection.
    let mut m = retrying(&[RetryOn::Error], p);
    let a = Attempt::first(op(9));
    m.sending(&a, 0);
    let e = m.unsendable(a, 0);
    assert_eq!(e.failure, Some(AttemptFailure::Unreachable));
    assert!(matches!(e.next, Next::Retry { .. }), "{e:?}");
}

#[test]
fn retry_goes_under_the_next_id_after_the_policy_delay() {
    let p = policy(Backoff::FullJitter, 5);
    let mut m = retrying(&[RetryOn::Error], p);
    let e = send_and_end(&mut m, Attempt::first(op(42)), 0, ERROR);
    let delay = p.delay(2, Duration::ZERO, 42).unwrap();
    let Next::Retry { attempt, at } = e.next else {
        panic!("{e:?}")
    };
    assert_eq!(attempt.number, 2);
    assert_eq!(attempt.id(), 42 + (1 << ATTEMPT_SHIFT));
    assert_eq!(
        attempt.op,
        op(42),
        "the logical request, its intended time kept"
    );
    assert_eq!(attempt.prev, delay);
    assert_eq!(
        at,
        Duration::from_micros(10_000) + delay,
        "from the attempt's end"
    );
    assert_eq!(
        e.note().unwrap(),
        format!("op 42 start c3: error on attempt 1, attempt 2 in {delay:?}")
    );
}

#[test]
fn delays_follow_each_policy() {
    for backoff in [
        Backoff::Fixed,
        Backoff::Exponential,
        Backoff::EqualJitter,
        Backoff::FullJitter,
        Backoff::Decorrelated,
    ] {
        let p = policy(backoff, 6);
        let mut m = retrying(&[RetryOn::Timeout], p);
        let mut a = Attempt::first(op(11));
        let mut prev = Duration::ZERO;
        let mut now = 0;
        for number in 2..=6 {
            let e = send_and_end(&mut m, a, now, Outcome::TimedOut);
            let want = p.delay(number, prev, 11).unwrap();
            let Next::Retry { attempt, at } = e.next else {
                panic!("{backoff}: {e:?}")
            };
            assert_eq!(attempt.prev, want, "{backoff} retry {number}");
            assert_eq!(at, Duration::from_micros(now + 10_000) + want);
            prev = want;
            now = at.as_micros() as u64;
            a = attempt;
        }
        let e = send_and_end(&mut m, a, now, Outcome::TimedOut);
        assert_eq!(e.next, Next::GaveUp, "{backoff}: 6 attempts in all");
    }
    let mut m = retrying(&[RetryOn::Timeout], policy(Backoff::None, 5));
    let e = send_and_end(&mut m, Attempt::first(op(1)), 0, Outcome::TimedOut);
    assert_eq!(e.next, Next::GaveUp, "policy none never retries");
}

#[test]
fn max_attempts_then_gives_up_with_the_last_answer() {
    let mut m = retrying(&[RetryOn::Error], policy(Backoff::Fixed, 3));
    let mut a = Attempt::first(op(8));
    for number in 2..=3 {
        let e = send_and_end(&mut m, a, 0, ERROR);
        let Next::Retry { attempt, .. } = e.next else {
            panic!("{e:?}")
        };
        assert_eq!(attempt.number, number);
        a = attempt;
    }
    let e = send_and_end(&mut m, a, 0, ERROR);
    assert_eq!(e.next, Next::GaveUp);
    assert!(
        e.answered,
        "the last error answer is the request's final answer"
    );
    assert_eq!(
        e.note().unwrap(),
        "op 8 start c3: error on attempt 3, gave up"
    );
    // A timeout answer from the API counts as a timeout and, given up, as the final answer.
    let mut m = retrying(&[RetryOn::Timeout], policy(Backoff::Fixed, 1));
    let e = send_and_end(
        &mut m,
        Attempt::first(op(1)),
        0,
        Outcome::Answer(Answer::Timeout),
    );
    assert_eq!(
        (e.failure, e.next, e.answered),
        (Some(AttemptFailure::Timeout), Next::GaveUp, true)
    );
}

#[test]
fn exhausted_budget_gives_up() {
    // Ratio 0.5: each request deposits half a retry; two requests, one retry.
    let mut cfg =
        config("[retry]\npolicy = \"fixed\"\nbudget = { ratio = 0.5, min_per_s = 0.0 }\n");
    cfg.retry_on = vec![RetryOn::Error];
    let mut m = ClientMachine::new(&cfg);
    let (a, b) = (Attempt::first(op(1)), Attempt::first(op(2)));
    for x in [a, b] {
        m.sending(&x, 0);
        m.sent(x, 0);
    }
    let e = m.outcome(a.id(), ERROR, 100).unwrap();
    assert!(matches!(e.next, Next::Retry { .. }), "{e:?}");
    let e = m.outcome(b.id(), ERROR, 100).unwrap();
    assert_eq!(e.next, Next::GaveUp, "the budget is spent");
    assert_eq!(
        e.note().unwrap(),
        "op 2 start c3: error on attempt 1, gave up"
    );
}

#[test]
fn timeouts_expire_in_send_order_and_late_answers_are_ignored() {
    let mut m = ClientMachine::new(&config("[client]\ntimeout = \"2s\"\n"));
    assert!(m.has_timeout());
    assert_eq!(m.next_deadline(), None);
    let (a, b) = (Attempt::first(op(1)), Attempt::first(op(2)));
    m.sending(&a, 100);
    assert!(m.sent(a, 100), "the first deadline wakes the watcher");
    m.sending(&b, 300);
    assert!(!m.sent(b, 300));
    assert_eq!(m.next_deadline(), Some(2_000_100));
    let e = m.expire(2_000_100).unwrap();
    assert_eq!(e.attempt, a);
    assert_eq!(
        (e.failure, e.next, e.answered),
        (Some(AttemptFailure::Timeout), Next::Done, false)
    );
    assert_eq!(
        m.outcome(1, Outcome::Answer(Answer::Accepted), 2_500_000),
        None,
        "late"
    );
    // b answered in time: its deadline passes with nothing to end.
    assert!(m
        .outcome(2, Outcome::Answer(Answer::Accepted), 400)
        .is_some());
    assert_eq!(m.next_deadline(), Some(2_000_300));
    assert_eq!(m.expire(2_000_300), None);
    assert_eq!(m.next_deadline(), None);

    let mut m = ClientMachine::new(&config(""));
    assert!(!m.has_timeout(), "timeout 0 waits forever");
    let a = Attempt::first(op(1));
    m.sending(&a, 0);
    assert!(!m.sent(a, 0));
    assert_eq!(m.next_deadline(), None);
}

#[test]
fn pending_counts_waiting_retries_until_sent() {
    let mut m = retrying(&[RetryOn::Error], policy(Backoff::Fixed, 5));
    assert_eq!(m.pending(), 0);
    let e = send_and_end(&mut m, Attempt::first(op(1)), 0, ERROR);
    let Next::Retry { attempt, .. } = e.next else {
        panic!("{e:?}")
    };
    assert_eq!(m.pending(), 1);
    m.sending(&attempt, 100_000);
    assert_eq!(m.pending(), 0);
}

#[test]
fn ops_schedule_follows_the_workload_streams() {
    let cfg = config("containers = 50\nmix = { start = 1.0, stop = 2.0 }\n");
    let mut m = ClientMachine::new(&cfg);
    assert!(m.sends_anything());
    let times: Vec<u64> = Arrivals::new(&cfg.workload.arrival, 7, cfg.duration).collect();
    let mut req = Requests::new(&cfg.workload, 7).unwrap();
    assert!(times.len() > 100);
    for (id, &t) in times.iter().enumerate() {
        assert_eq!(m.next_due(), Some(t));
        assert_eq!(m.next_due(), Some(t), "asking again changes nothing");
        assert_eq!(m.pending(), 1, "the due request");
        let (container, kind) = req.draw();
        let want = OpSpec {
            id: id as u64,
            container,
            kind,
            intended_us: t,
            deadline: None,
        };
        assert_eq!(m.issue(), Some(want));
        assert_eq!(m.pending(), 0);
    }
    assert_eq!((m.next_due(), m.issue()), (None, None));
}

#[test]
fn lifecycle_schedule_runs_each_container_through_its_steps() {
    let cfg = config(
        "model = \"lifecycle\"\nlifecycle = [\"create\", \"start\", \"delete\"]\ngap = { dist = \"exp\", mean = \"1s\" }\n",
    );
    let mut m = ClientMachine::new(&cfg);
    let arrivals: Vec<u64> = Arrivals::new(&cfg.workload.arrival, 7, cfg.duration).collect();
    let mut sent: Vec<OpSpec> = Vec::new();
    let mut max_pending = 0;
    while let Some(t) = m.next_due() {
        max_pending = max_pending.max(m.pending());
        let op = m.issue().unwrap();
        assert_eq!(op.intended_us, t);
        sent.push(op);
    }
    assert_eq!(m.pending(), 0);
    assert!(max_pending > 1, "later steps are pending");
    assert_eq!(
        sent.len(),
        3 * arrivals.len(),
        "every lifecycle runs to its end"
    );
    assert!(
        sent.iter().enumerate().all(|(i, o)| o.id == i as u64),
        "ids in send order"
    );
    assert!(
        sent.windows(2)
            .all(|w| w[0].intended_us <= w[1].intended_us),
        "time order"
    );
    for (c, &t) in arrivals.iter().enumerate() {
        let steps: Vec<&OpSpec> = sent.iter().filter(|o| o.container == c as u64).collect();
        let kinds: Vec<OpKind> = steps.iter().map(|o| o.kind).collect();
        assert_eq!(kinds, [OpKind::Create, OpKind::Start, OpKind::Delete]);
        assert_eq!(
            steps[0].intended_us, t,
            "container {c} arrives with its create"
        );
        assert!(steps
            .windows(2)
            .all(|w| w[0].intended_us <= w[1].intended_us));
    }
    // The same seed, the same schedule (common random numbers).
    let mut again = ClientMachine::new(&cfg);
    let replay: Vec<OpSpec> =
        std::iter::from_fn(|| again.next_due().and_then(|_| again.issue())).collect();
    assert_eq!(replay, sent);
}

#[test]
fn empty_workloads_send_nothing() {
    // The parser refuses both; a config built by other means may still have them.
    let mut cfg = config("model = \"lifecycle\"\nlifecycle = [\"create\"]\n");
    assert!(ClientMachine::new(&cfg).sends_anything());
    cfg.workload.lifecycle.clear();
    let mut m = ClientMachine::new(&cfg);
    assert!(
        !m.sends_anything(),
        "an empty lifecycle: not even a connection"
    );
    assert_eq!((m.next_due(), m.pending()), (None, 0));
    let mut cfg = config("");
    for (_, w) in &mut cfg.workload.mix {
        *w = 0.0;
    }
    assert!(
        !ClientMachine::new(&cfg).sends_anything(),
        "no positive weight"
    );
}

const ACCEPTED: Outcome = Outcome::Answer(Answer::Accepted);

#[test]
fn wait_for_done_times_out_while_the_op_waits_and_retries() {
    // The API answers 202 at once (as under `overflow = "queue"`), but the op waits for a
    // worker longer than the timeout: with "done" the attempt times out and is retried.
    let mut m = ClientMachine::new(&config(
        "[client]\ntimeout = \"2s\"\nwait_for = \"done\"\nretry_on = [\"timeout\"]\n[retry]\npolicy = \"fixed\"\n",
    ));
    assert!(m.waits_for_done());
    let a = Attempt::first(op(1));
    assert!(m.sending(&a, 0));
    m.sent(a, 0);
    assert_eq!(m.outcome(1, ACCEPTED, 5_000), None, "a 202 does not end it");
    assert_eq!(m.in_flight(), 1);
    let e = m.expire(2_000_000).expect("timed out");
    assert_eq!(e.failure, Some(AttemptFailure::Timeout));
    assert!(!e.is_goodput());
    assert_eq!(e.sent_us, 0);
    let Next::Retry { attempt, at } = e.next else {
        panic!("{e:?}")
    };
    assert_eq!(at, Duration::from_millis(2_100));
    // The first attempt's op finishes late: ignored, it was given up.
    assert_eq!(m.terminal(1, true, 2_050_000), None);
    assert!(m.sending(&attempt, 2_100_000));
    m.sent(attempt, 2_100_000);
    assert_eq!(m.outcome(attempt.id(), ACCEPTED, 2_105_000), None);
    let e = m
        .terminal(attempt.id(), true, 3_000_000)
        .expect("done in time");
    assert!(e.is_goodput());
    assert_eq!((e.next, e.sent_us), (Next::Done, 2_100_000));
    // Its deadline passes with nothing to end.
    assert_eq!(m.expire(4_100_000), None);
    // An op that ends failed is an error.
    let b = Attempt::first(op(2));
    m.sending(&b, 0);
    m.sent(b, 0);
    let e = m.terminal(2, false, 10).unwrap();
    assert_eq!(
        (e.failure, e.next),
        (Some(AttemptFailure::Error), Next::Done)
    );
}

#[test]
fn wait_for_answer_ends_at_the_202() {
    let mut m = ClientMachine::new(&config("[client]\ntimeout = \"2s\"\n"));
    assert!(!m.waits_for_done());
    let a = Attempt::first(op(1));
    m.sending(&a, 0);
    m.sent(a, 0);
    assert_eq!(m.terminal(1, true, 10), None, "not watched");
    let e = m.outcome(1, ACCEPTED, 20).unwrap();
    assert!(e.is_goodput());
    assert_eq!(m.expire(2_000_000), None);
}

#[test]
fn finagle_empty_budget_never_retries() {
    let mut cfg = config(
        "[client]\nretry_on = [\"error\"]\n[client.retry]\npolicy = \"fixed\"\nbudget = { percent = 0.0, min_per_s = 0 }\n",
    );
    cfg.retry_on = vec![RetryOn::Error];
    let mut m = ClientMachine::new(&cfg);
    for i in 0..50 {
        let e = send_and_end(&mut m, Attempt::first(op(i)), i * 1000, ERROR);
        assert_eq!(e.next, Next::GaveUp);
    }
    // Without a budget key: unlimited.
    let mut m = ClientMachine::new(&config(
        "[client]\nretry_on = [\"error\"]\n[client.retry]\npolicy = \"fixed\"\n",
    ));
    for i in 0..50 {
        let e = send_and_end(&mut m, Attempt::first(op(i)), i * 1000, ERROR);
        assert!(matches!(e.next, Next::Retry { .. }));
    }
}

#[test]
fn throttling_stops_retries_below_half_the_tokens() {
    // max_tokens 4: retries while the count is above 2 — two failures leave 2.
    let mut m = ClientMachine::new(&config(
        "[client]\nretry_on = [\"error\"]\n[client.retry]\npolicy = \"fixed\"\nthrottling = { max_tokens = 4, token_ratio = 1 }\n",
    ));
    let e = send_and_end(&mut m, Attempt::first(op(1)), 0, ERROR);
    assert!(matches!(e.next, Next::Retry { .. }), "3 > 2");
    let e = send_and_end(&mut m, Attempt::first(op(2)), 0, ERROR);
    assert_eq!(e.next, Next::GaveUp, "2 is not > 2");
    // Successes give tokens back: 2 + 1 + 1 = 4; a failure takes one, and 3 > 2 retries.
    send_and_end(&mut m, Attempt::first(op(3)), 0, ACCEPTED);
    send_and_end(&mut m, Attempt::first(op(4)), 0, ACCEPTED);
    let e = send_and_end(&mut m, Attempt::first(op(5)), 0, ERROR);
    assert!(matches!(e.next, Next::Retry { .. }), "4 − 1 = 3 > 2");
    // A failure retry_on does not cover takes nothing.
    let mut m = ClientMachine::new(&config(
        "[client]\nretry_on = [\"error\"]\n[client.retry]\nthrottling = { max_tokens = 3, token_ratio = 1 }\n",
    ));
    for i in 0..5 {
        send_and_end(&mut m, Attempt::first(op(i)), 0, CONFLICT);
    }
    let e = send_and_end(&mut m, Attempt::first(op(9)), 0, ERROR);
    assert!(matches!(e.next, Next::Retry { .. }));
}

#[test]
fn an_open_breaker_refuses_attempts_until_a_probe_succeeds() {
    let mut m = ClientMachine::new(&config(
        "[client]\nretry_on = [\"error\"]\n[client.retry]\nmax_attempts = 1\nbreaker = { failures = 2, open_for = \"1s\" }\n",
    ));
    send_and_end(&mut m, Attempt::first(op(1)), 0, ERROR);
    send_and_end(&mut m, Attempt::first(op(2)), 0, ERROR);
    // Open from 10 ms (the second failure) to 1.01 s.
    let c = Attempt::first(op(3));
    assert!(!m.sending(&c, 20_000));
    let e = m.refused(c, 20_000);
    assert_eq!(
        (e.failure, e.next, e.answered),
        (Some(AttemptFailure::BreakerOpen), Next::GaveUp, false)
    );
    assert_eq!(
        e.note().unwrap(),
        "op 3 start c3: breaker-open on attempt 1, gave up"
    );
    // Half-open: one probe; it succeeds and closes the breaker.
    let p = Attempt::first(op(4));
    assert!(m.sending(&p, 1_010_000));
    assert!(
        !m.sending(&Attempt::first(op(5)), 1_010_001),
        "one probe at a time"
    );
    m.sent(p, 1_010_000);
    m.outcome(4, ACCEPTED, 1_020_000).unwrap();
    assert!(m.sending(&Attempt::first(op(6)), 1_030_000));
}

#[test]
fn instances_deal_the_requests_and_keep_the_streams() {
    let one = config("[client]\ninstances = 1\n");
    let mut whole = ClientMachine::new(&one);
    let mut all = Vec::new();
    while whole.next_due().is_some() {
        all.push(whole.issue().unwrap());
    }
    let three = config("[client]\ninstances = 3\n");
    let mut dealt = Vec::new();
    for i in 0..3 {
        let mut m = ClientMachine::new(&three.instance(i));
        let mut mine = Vec::new();
        while m.next_due().is_some() {
            mine.push(m.issue().unwrap());
        }
        // `ops`: each request under its arrival's index, dealt round-robin.
        assert!(mine.iter().all(|o| o.id % 3 == u64::from(i)));
        dealt.extend(mine);
    }
    dealt.sort_by_key(|o| (o.intended_us, o.id));
    assert_eq!(dealt.len(), all.len());
    // The same requests, ids included (service times are keyed by them).
    assert_eq!(dealt, all);
    let mut ids: Vec<u64> = dealt.iter().map(|o| o.id).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), all.len(), "unique ids");
}

const IN_FLIGHT: Outcome = Outcome::Answer(Answer::Refused(KeyReuse::InFlight));

/// A client that re-sends the same op (`retry_same_op = true`), timing out after 2 s and
/// retrying timeouts and errors at once, with `[client]` extras `extra`.
fn same_op(extra: &str) -> ClientMachine {
    ClientMachine::new(&config(&format!(
        "[client]\ntimeout = \"2s\"\nretry_same_op = true\nretry_on = [\"timeout\", \"error\"]\n{extra}[retry]\npolicy = \"fixed\"\nbase = \"0s\"\nmax_attempts = 4\n"
    )))
}

/// The retry `e` decided, sent at `now`.
fn resend(m: &mut ClientMachine, e: &Ended, now: u64) -> Attempt {
    let Next::Retry { attempt, .. } = e.next else {
        panic!("not retried: {e:?}")
    };
    assert!(m.sending(&attempt, now));
    m.sent(attempt, now);
    attempt
}

#[test]
fn a_same_op_retry_keeps_the_id_and_a_new_op_retry_does_not() {
    let mut m = same_op("");
    let first = Attempt::first(op(42));
    let e = send_and_end(&mut m, first, 0, ERROR);
    let retry = resend(&mut m, &e, 10_000);
    assert_eq!((retry.number, retry.id()), (2, 42), "{retry:?}");
    assert_eq!(retry.wire(), op(42), "the same op under the same id");
    // Without the key: a new op under a new id (today's client).
    let mut m = ClientMachine::new(&config(
        "[client]\nretry_on = [\"error\"]\n[retry]\npolicy = \"fixed\"\nbase = \"0s\"\n",
    ));
    let e = send_and_end(&mut m, first, 0, ERROR);
    let Next::Retry { attempt, .. } = e.next else {
        panic!("{e:?}")
    };
    assert_eq!(attempt.id(), 42 + (1 << ATTEMPT_SHIFT));
}

#[test]
fn in_flight_keeps_waiting_for_the_op_and_its_answer_ends_the_retry() {
    let mut m = same_op("");
    let a = Attempt::first(op(7));
    m.sending(&a, 0);
    m.sent(a, 0);
    // The first attempt times out (its call still waits for a worker) and is re-sent at once.
    let e = m.expire(2_000_000).expect("timed out");
    assert_eq!(e.failure, Some(AttemptFailure::Timeout));
    let retry = resend(&mut m, &e, 2_000_000);
    // The API: that op is still in flight. Not an end — the client waits for it.
    assert_eq!(m.outcome(7, IN_FLIGHT, 2_001_000), None);
    assert_eq!(m.in_flight(), 1);
    // The first call's answer comes under the same id: it is the retry's.
    let e = m
        .outcome(7, ACCEPTED, 3_000_000)
        .expect("the op's answer ends the retry");
    assert_eq!((e.attempt, e.next, e.failure), (retry, Next::Done, None));
    assert_eq!(e.sent_us, 2_000_000);
    // Had it not come, the retry times out at its own deadline and is retried by the policy.
    let mut m = same_op("");
    m.sending(&a, 0);
    m.sent(a, 0);
    let e = m.expire(2_000_000).unwrap();
    let retry = resend(&mut m, &e, 2_000_000);
    assert_eq!(m.outcome(7, IN_FLIGHT, 2_001_000), None);
    let e = m.expire(4_000_000).expect("the retry's own deadline");
    assert_eq!(e.attempt, retry);
    assert_eq!(e.failure, Some(AttemptFailure::Timeout));
    assert!(matches!(e.next, Next::Retry { attempt, .. } if attempt.number == 3));
}

#[test]
fn an_earlier_attempts_deadline_does_not_end_a_retry_under_its_id() {
    let mut m = same_op("");
    let a = Attempt::first(op(3));
    m.sending(&a, 0);
    m.sent(a, 0);
    // Answered with an error after 0.5 s: retried at once, under the same id.
    let e = m.outcome(3, ERROR, 500_000).unwrap();
    let retry = resend(&mut m, &e, 500_000);
    // The first attempt's deadline (2 s) passes: the retry is not the attempt it was set for.
    assert_eq!(m.next_deadline(), Some(2_000_000));
    assert_eq!(m.expire(2_000_000), None);
    assert_eq!(m.in_flight(), 1);
    let e = m.expire(2_500_000).expect("the retry's deadline");
    assert_eq!(e.attempt, retry);
}

#[test]
fn an_id_reused_for_another_op_is_not_retried_and_fails() {
    let mut m = same_op("");
    let e = send_and_end(
        &mut m,
        Attempt::first(op(9)),
        0,
        Outcome::Answer(Answer::Refused(KeyReuse::Mismatch)),
    );
    assert_eq!(
        (e.failure, e.next, e.is_goodput()),
        (Some(AttemptFailure::Error), Next::Done, false),
        "a client bug: asking again cannot help"
    );
    assert_eq!(m.pending(), 0);
}

#[test]
fn with_done_a_retry_learns_that_its_op_ended_while_it_waited() {
    let mut m = ClientMachine::new(&config(
        "[client]\ntimeout = \"2s\"\nwait_for = \"done\"\nretry_same_op = true\nretry_on = [\"timeout\", \"error\"]\n[retry]\npolicy = \"fixed\"\nbase = \"1s\"\nmax_attempts = 4\n",
    ));
    let a = Attempt::first(op(5));
    m.sending(&a, 0);
    m.sent(a, 0);
    assert_eq!(m.outcome(5, ACCEPTED, 1_000), None);
    let e = m.expire(2_000_000).unwrap();
    let Next::Retry { attempt, at } = e.next else {
        panic!("{e:?}")
    };
    assert_eq!(at, Duration::from_secs(3));
    // The op is done while the retry waits out its delay: nothing is outstanding to end.
    assert_eq!(m.terminal(5, true, 2_500_000), None);
    assert!(m.sending(&attempt, 3_000_000));
    m.sent(attempt, 3_000_000);
    // The API answers the retry by its key (the stored 202); the client sees the op done.
    let e = m
        .outcome(5, ACCEPTED, 3_001_000)
        .expect("ended by the op's end");
    assert!(e.is_goodput(), "{e:?}");
    assert_eq!((e.next, e.sent_us), (Next::Done, 3_000_000));
    // An op that ended failed stays failed: every re-send under its key learns it again.
    let b = Attempt::first(op(6));
    m.sending(&b, 0);
    m.sent(b, 0);
    let e = m.terminal(6, false, 100).unwrap();
    assert_eq!(e.failure, Some(AttemptFailure::Error));
    let Next::Retry { attempt, .. } = e.next else {
        panic!("{e:?}")
    };
    m.sending(&attempt, 1_000_100);
    m.sent(attempt, 1_000_100);
    let e = m.outcome(6, ACCEPTED, 1_001_000).expect("known failed");
    assert_eq!(e.failure, Some(AttemptFailure::Error));
    assert!(matches!(e.next, Next::Retry { attempt, .. } if attempt.number == 3));
}
