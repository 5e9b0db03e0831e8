//! The client (docs/scenario.md, `[client]`, `[retry]`, `[workload] model = "lifecycle"`): retries
//! amplify the load as the policy and the budget say, timeouts are counted and retried, and the
//! lifecycle model sends each new container its ops in order.

use scenario::Scenario;
use tests::{parse, run_one};

/// Five simulated minutes, one conductor, `start` on pre-created running containers with Zun's
/// state validation: every request is a 409.
fn conflicts(extra: &str) -> Scenario {
    parse(
        &format!(
            r#"name = "client"
duration = "5m"
drain = "1m"
[api]
validate_state = true
[workload]
arrival = {{ kind = "poisson", rate = 5.0 }}
containers = 100
mix = {{ start = 1.0 }}
[backend]
default = {{ dist = "exp", mean = "100ms" }}
[checks]
invariants = []
{extra}"#
        ),
        &[],
    )
}

#[test]
fn no_retries_no_amplification() {
    let m = run_one(&conflicts(""), 1);
    assert_eq!(m.rejected, m.submitted);
    assert_eq!((m.retry_attempts, m.gave_up), (0, 0));
    assert_eq!(m.sent_total, m.submitted);
}

#[test]
fn retries_on_conflict_amplify_up_to_max_attempts() {
    let m = run_one(
        &conflicts("[client]\nretry_on = [\"conflict\"]\n[retry]\npolicy = \"fixed\"\nbase = \"100ms\"\nmax_attempts = 3"),
        1,
    );
    // Every attempt is refused: three attempts per request, then the client gives up.
    assert!(m.submitted > 1000);
    assert_eq!(m.gave_up, m.submitted);
    assert_eq!(m.retry_attempts, 2 * m.gave_up);
    assert_eq!(m.rejected, m.submitted + m.retry_attempts);
    assert_eq!(m.sent_total, m.submitted + m.retry_attempts);
    assert_eq!(m.lost, 0);
    // The same arrivals as without retries (open loop: retries never hold up arrivals).
    let plain = run_one(&conflicts(""), 1);
    assert_eq!(plain.submitted, m.submitted);
}

#[test]
fn a_retry_budget_caps_the_amplification() {
    let m = run_one(
        &conflicts("[client]\nretry_on = [\"conflict\"]\n[retry]\npolicy = \"exponential\"\nbase = \"10ms\"\nmax_attempts = 5\nbudget = { ratio = 0.2, min_per_s = 0.0 }"),
        1,
    );
    let amp = (m.submitted + m.retry_attempts) as f64 / m.submitted as f64;
    // At most 20% more requests (plus the first window's rounding), instead of 5×.
    assert!(amp > 1.1 && amp <= 1.21, "amplification {amp}");
    assert_eq!(m.gave_up, m.submitted);
}

#[test]
fn client_timeouts_are_counted_and_retried() {
    // The API paused for 20 s: requests sent then time out after 1 s and are retried.
    let m = run_one(
        &conflicts("[[faults]]\nkind = \"pause\"\nat = \"1m\"\nnode = \"api\"\nduration = \"20s\"\n[client]\ntimeout = \"1s\"\nretry_on = [\"timeout\"]\n[retry]\npolicy = \"fixed\"\nbase = \"500ms\"\nmax_attempts = 4"),
        1,
    );
    assert!(m.timeouts > 50, "timeouts {}", m.timeouts);
    assert!(m.retry_attempts > 50, "retries {}", m.retry_attempts);
    assert!(m.gave_up > 0);
    // Every attempt, timed out or not, is eventually refused (a 409) once the API resumes.
    assert_eq!(m.rejected, m.submitted + m.retry_attempts);
}

fn lifecycle(validate: bool, gap: &str) -> Scenario {
    parse(
        &format!(
            r#"name = "lifecycle"
duration = "5m"
drain = "10m"
[cluster]
hosts = 2
pool_workers = 50
[api]
validate_state = {validate}
[workload]
model = "lifecycle"
arrival = {{ kind = "poisson", rate = 2.0 }}
lifecycle = ["create", "start", "stop", "delete"]
gap = {gap}
[backend]
default = {{ dist = "exp", mean = "200ms" }}
[checks]
invariants = []
"#
        ),
        &[],
    )
}

#[test]
fn lifecycle_containers_get_every_op() {
    let m = run_one(&lifecycle(false, r#"{ dist = "exp", mean = "5s" }"#), 1);
    // Four requests per new container, every one of them terminal (some fail at the host: with
    // exponential gaps and no ordering in the conductor, a start can reach the host before its
    // create did).
    assert_eq!(m.submitted % 4, 0, "{}", m.submitted);
    assert!(m.submitted > 4 * 400, "{}", m.submitted);
    assert_eq!(m.completed + m.failed, m.submitted);
    assert!(m.failed < m.submitted / 20, "{}", m.failed);
    assert_eq!(m.lost, 0);
    let n = m.submitted / 4;
    for op in ["create", "start", "stop", "delete"] {
        assert_eq!(m.by_op.get(op).map(|h| h.len()), Some(n), "{op}");
    }
}

#[test]
fn lifecycle_in_order_passes_state_validation() {
    // With Zun's validation, a start before its create finished, or a delete of a running
    // container, is a 409. Gaps much longer than the ops keep most in order; the ones that
    // are not are refused, never lost.
    let m = run_one(
        &lifecycle(true, r#"{ dist = "constant", value = "5s" }"#),
        1,
    );
    assert_eq!(m.submitted % 4, 0);
    assert_eq!(m.rejected, 0, "constant 5 s gaps, 200 ms ops: in order");
    assert_eq!(m.completed, m.submitted);
}

/// A trace writer into shared memory.
#[derive(Clone, Default)]
struct Buf(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Buf {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn lifecycle_ops_reach_the_api_in_order() {
    use std::collections::BTreeMap;
    let scn = lifecycle(false, r#"{ dist = "exp", mean = "2s" }"#);
    let buf = Buf::default();
    let trace = sim::trace::Trace::new(Box::new(buf.clone()), None);
    let m = std::thread::spawn(move || {
        sim::world::run_seed_with(&scn, 1, sim::world::RunOptions { trace: Some(trace) })
    })
    .join()
    .expect("the seed's thread")
    .expect("a run");
    let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
    // `accepted op ID KIND cCONTAINER seq SEQ`, per container.
    let mut by_container: BTreeMap<u64, Vec<(u64, u64, String)>> = BTreeMap::new();
    for line in text.lines() {
        let Some(rest) = line.split("accepted op ").nth(1) else {
            continue;
        };
        let w: Vec<&str> = rest.split_whitespace().collect();
        let (id, kind, c, seq) = (w[0], w[1], w[2], w[4]);
        let c: u64 = c.trim_start_matches('c').parse().unwrap();
        by_container.entry(c).or_default().push((
            seq.parse().unwrap(),
            id.parse().unwrap(),
            kind.to_string(),
        ));
    }
    assert_eq!(by_container.len() as u64 * 4, m.submitted);
    for (c, mut ops) in by_container {
        ops.sort();
        let kinds: Vec<&str> = ops.iter().map(|o| o.2.as_str()).collect();
        assert_eq!(
            kinds,
            ["create", "start", "stop", "delete"],
            "container {c}"
        );
        // Sequence numbers follow the lifecycle, and so do the request ids (send order).
        assert!(
            ops.windows(2)
                .all(|w| w[1].0 == w[0].0 + 1 && w[1].1 > w[0].1),
            "{c}: {ops:?}"
        );
    }
}

#[test]
fn the_client_reconnects_after_the_api_restarts_and_retries_what_it_could_not_send() {
    let base = |retry: &str| {
        parse(
            &format!(
                r#"name = "api-kill"
duration = "5m"
drain = "5m"
[api]
validate_state = false
[workload]
arrival = {{ kind = "poisson", rate = 5.0 }}
containers = 100
[backend]
default = {{ dist = "exp", mean = "100ms" }}
[[faults]]
kind = "kill"
at = "1m"
node = "api"
restart_after = "30s"
[checks]
invariants = []
{retry}"#
            ),
            &[],
        )
    };
    // Without retries: what was sent while the API was down is refused at once (no connection),
    // and the client reconnects when it is back.
    let m = run_one(&base(""), 1);
    assert!(
        m.rejected > 100 && m.rejected < 200,
        "about 30 s × 5/s refused: {}",
        m.rejected
    );
    assert!(m.completed > m.submitted - m.rejected - 5);
    // Retrying errors every second, up to a minute: nothing is given up.
    let r = run_one(
        &base("[client]\nretry_on = [\"error\"]\n[retry]\npolicy = \"fixed\"\nbase = \"1s\"\nmax_attempts = 60"),
        1,
    );
    assert_eq!(r.gave_up, 0);
    assert!(r.retry_attempts > 1000, "{}", r.retry_attempts);
    assert!(
        r.completed + 5 >= r.submitted,
        "{} of {}",
        r.completed,
        r.submitted
    );
}
