//! The client's own retry behaviour and its metrics, end to end (docs/scenario.md `[client]`,
//! `[client.retry]`; docs/outputs.md, the client series): retries show in the retries series
//! when they happen, `wait_for = "done"` times out ops that wait in a queue, goodput counts only
//! what the client still waited for, and instances keep the workload's streams.

use scenario::Scenario;
use tests::{parse, run_one, workspace_root};

/// `scenarios/retry/bus-outage.toml` (a 30 s bus outage at 5 min under 2 s timeouts and retries),
/// cut to 7 minutes with `sets`.
fn storm(sets: &[&str]) -> Scenario {
    let path = workspace_root().join("scenarios/retry/bus-outage.toml");
    let mut all = vec!["duration=\"7m\"", "drain=\"2m\""];
    all.extend_from_slice(sets);
    let sets: Vec<String> = all.iter().map(|s| s.to_string()).collect();
    scenario::load(&path, &sets).expect("the bundled scenario loads")
}

#[test]
fn a_bus_outage_shows_in_the_retries_series() {
    let m = run_one(&storm(&[]), 1);
    assert!(m.client_retries > 100, "{} retries", m.client_retries);
    let s = m.timeline.samples();
    let rate_in = |from: f64, to: f64| -> f64 {
        let xs: Vec<f64> = s
            .iter()
            .filter(|x| x.start_s >= from && x.end_s <= to)
            .map(|x| x.retries_per_s * (x.end_s - x.start_s))
            .collect();
        xs.iter().sum::<f64>() / (to - from)
    };
    // Before the outage nothing times out; during it and just after, the retries come.
    let before = rate_in(60.0, 290.0);
    let during = rate_in(300.0, 345.0);
    assert!(before < 0.1, "retries/s before the outage: {before}");
    assert!(during > 5.0, "retries/s during the outage: {during}");
    // The series counts every retry, warm-up and drain included.
    let total: u64 = m.timeline.buckets().iter().map(|b| b.retries).sum();
    assert!(total >= m.client_retries, "{total} < {}", m.client_retries);
    // Goodput drops during the outage and comes back.
    let goodput = |from: f64, to: f64| -> f64 {
        s.iter()
            .filter(|x| x.start_s >= from && x.end_s <= to)
            .map(|x| x.goodput_per_s * (x.end_s - x.start_s))
            .sum::<f64>()
            / (to - from)
    };
    assert!(goodput(100.0, 290.0) > 10.0);
    assert!(goodput(302.0, 328.0) < 1.0, "{}", goodput(302.0, 328.0));
    assert!(goodput(380.0, 420.0) > 10.0);
    // Goodput: successes before the client gave up, never more than the requests.
    assert!(m.goodput < m.submitted && m.goodput > m.submitted * 8 / 10);
    assert!(m.client_gave_up > 0);
    assert!(m.end_to_end.len() == m.goodput);
    assert!(m.attempt.len() >= m.submitted);
    // With an empty Finagle budget nothing is retried at all.
    let none = run_one(
        &storm(&["client.retry={ budget = { percent = 0.0, min_per_s = 0 } }"]),
        1,
    );
    assert_eq!(none.client_retries, 0);
    assert_eq!(none.submitted, m.submitted, "the same arrivals");
}

/// One conductor with 2 workers and `overflow = "queue"` at about 1.6× their capacity: ops wait
/// for a worker longer and longer.
fn queued(client: &str) -> Scenario {
    parse(
        &format!(
            r#"name = "queued"
duration = "2m"
drain = "30s"
[cluster]
pool_workers = 2
overflow = "queue"
[api]
validate_state = false
[workload]
arrival = {{ kind = "poisson", rate = 8.0 }}
mix = {{ start = 1.0 }}
[backend]
default = {{ dist = "exp", mean = "400ms" }}
[checks]
invariants = []
[client]
timeout = "2s"
{client}"#
        ),
        &[],
    )
}

#[test]
fn wait_for_done_times_out_ops_waiting_in_the_queue() {
    // Waiting for the API's answer, a queued op is answered at once: it never times out.
    let answer = run_one(&queued(""), 3);
    assert_eq!(answer.timeouts, 0);
    assert_eq!(answer.goodput, answer.submitted);
    // Waiting for the op to be done, the queue's wait counts: most time out.
    let done = run_one(&queued("wait_for = \"done\""), 3);
    assert_eq!(done.submitted, answer.submitted, "the same arrivals");
    assert!(
        done.timeouts > done.submitted / 4,
        "{} of {}",
        done.timeouts,
        done.submitted
    );
    assert!(done.goodput + done.timeouts <= done.submitted);
    assert!(done.end_to_end.quantile_us(0.99) <= 2_000_000);
    // Retrying the timed-out ones adds work nobody waits for: more attempts, less goodput.
    let retried = run_one(
        &queued("wait_for = \"done\"\nretry_on = [\"timeout\"]\n[client.retry]\npolicy = \"none\"\nmax_attempts = 1"),
        3,
    );
    assert_eq!(retried.client_retries, 0, "policy none");
    let storm = run_one(
        &queued("wait_for = \"done\"\nretry_on = [\"timeout\"]\n[client.retry]\npolicy = \"fixed\"\nbase = \"0s\"\nmax_attempts = 3"),
        3,
    );
    assert!(storm.client_retries > 0);
    assert!(
        storm.goodput <= done.goodput,
        "{} > {}",
        storm.goodput,
        done.goodput
    );
}

#[test]
fn instances_share_the_load_as_one_client_would() {
    let one = run_one(&queued(""), 5);
    let three = run_one(&queued("instances = 3"), 5);
    // The same requests under the same ids; only the network differs (three connections).
    assert_eq!(one.submitted, three.submitted);
    let (a, b) = (one.completed as f64, three.completed as f64);
    assert!((a - b).abs() <= 0.02 * a, "{a} vs {b}");
}
