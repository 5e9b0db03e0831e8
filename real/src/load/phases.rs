//! What `load` does around the load phase: the schedule's size (fixed by the seed, counted
//! before the run), the optional setup (create the `ops` model's pre-existing containers) and
//! teardown (delete what the run made), and the live progress line.

use super::pool::Pool;
use super::request::Requests;
use super::sender::{Seen, Sender};
use reports::SeedMetrics;
use scenario::client::{ClientConfig, ClientMachine};
use scenario::{Model, OpKind, Scenario};
use serde::Serialize;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// Op ids of the setup's creates start here, the teardown's deletes at [`TEARDOWN_IDS`]: apart
/// from the workload's ids and from each other.
const SETUP_IDS: u64 = 1 << 60;
/// See [`SETUP_IDS`].
const TEARDOWN_IDS: u64 = (1 << 60) + (1 << 56);
/// How long one setup or teardown request may take.
const PHASE_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// The requests the workload schedules (every instance's): what the seed fixes.
pub fn scheduled(cfg: &ClientConfig) -> u64 {
    let mut n = 0;
    for i in 0..cfg.instances {
        let mut m = ClientMachine::new(&cfg.instance(i));
        while m.next_due().is_some() {
            if m.issue().is_none() {
                break;
            }
            n += 1;
        }
    }
    n
}

/// What a setup or teardown did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Phase {
    /// Containers it acted on.
    pub containers: u64,
    /// Answered 2xx.
    pub ok: u64,
    /// Already there (a create answered 409) or already gone (a delete answered 404).
    pub already: u64,
    /// Anything else: another status, no answer, or none within 30 s.
    pub failed: u64,
    /// How long it took, in seconds.
    pub wall_s: f64,
    /// The containers answered 2xx (not written).
    #[serde(skip)]
    pub done: BTreeSet<u64>,
}

/// Sends `kind` to every container of `containers`, as many at once as the pool has
/// connections, op ids from `first_id`.
async fn each(
    pool: &Arc<Pool>,
    requests: &Arc<Requests>,
    kind: OpKind,
    containers: Vec<u64>,
    first_id: u64,
    already_status: u16,
) -> Phase {
    let t0 = Instant::now();
    let mut phase = Phase {
        containers: containers.len() as u64,
        ..Phase::default()
    };
    let mut set = tokio::task::JoinSet::new();
    for (i, c) in containers.into_iter().enumerate() {
        let (pool, requests) = (pool.clone(), requests.clone());
        set.spawn(async move {
            let req = requests.build(kind, c, first_id + i as u64);
            let r = tokio::time::timeout(PHASE_REQUEST_TIMEOUT, pool.send(req, || {})).await;
            (c, r.ok().and_then(Result::ok))
        });
    }
    while let Some(r) = set.join_next().await {
        match r {
            Ok((c, Some(s))) if (200..300).contains(&s) => {
                phase.ok += 1;
                phase.done.insert(c);
            }
            Ok((_, Some(s))) if s == already_status => phase.already += 1,
            _ => phase.failed += 1,
        }
    }
    phase.wall_s = t0.elapsed().as_secs_f64();
    phase
}

/// Creates the `ops` model's containers (`c-0` … `c-(N-1)`); a lifecycle workload makes its
/// own and has none to create.
pub async fn setup(scn: &Scenario, pool: &Arc<Pool>, requests: &Arc<Requests>) -> Phase {
    let containers = match scn.workload.model {
        Model::Ops => (0..u64::from(scn.workload.containers)).collect(),
        _ => Vec::new(),
    };
    let p = each(pool, requests, OpKind::Create, containers, SETUP_IDS, 409).await;
    eprintln!(
        "setup      {} containers: {} created, {} already there, {} failed ({:.1} s)",
        p.containers, p.ok, p.already, p.failed, p.wall_s
    );
    p
}

/// Deletes what the run made: the setup's containers and every container a create made that
/// no delete of the workload removed.
pub async fn teardown(
    _scn: &Scenario,
    pool: &Arc<Pool>,
    requests: &Arc<Requests>,
    parts: &[(SeedMetrics, Seen)],
    setup: Option<&Phase>,
) -> Phase {
    let mut live: BTreeSet<u64> = BTreeSet::new();
    for (_, seen) in parts {
        live.extend(seen.live.iter().copied());
    }
    if let Some(s) = setup {
        live.extend(s.done.iter().copied());
    }
    let p = each(
        pool,
        requests,
        OpKind::Delete,
        live.into_iter().collect(),
        TEARDOWN_IDS,
        404,
    )
    .await;
    eprintln!(
        "teardown   {} containers: {} deleted, {} already gone, {} failed ({:.1} s)",
        p.containers, p.ok, p.already, p.failed, p.wall_s
    );
    p
}

/// One progress line on stderr: elapsed, rate sent, answered, errors, in flight, behind
/// schedule, p99 so far.
pub fn progress(senders: &[Sender], start: Instant, now: Instant) {
    let t = now.duration_since(start).as_secs_f64().max(1e-9);
    let (mut sent, mut answered, mut errors, mut behind, mut in_flight) = (0, 0, 0, 0, 0u64);
    let mut accept = reports::Histo::new();
    for s in senders {
        in_flight += u64::from(s.in_flight());
        s.read(|m, seen| {
            sent += seen.requests + seen.retries;
            answered += seen.statuses.values().sum::<u64>();
            errors += seen.connect_errors
                + seen.protocol_errors
                + seen
                    .statuses
                    .iter()
                    .filter(|(s, _)| **s >= 400)
                    .map(|(_, n)| n)
                    .sum::<u64>();
            behind += seen.behind;
            accept.merge(&m.accept);
        });
    }
    eprintln!(
        "load {t:6.1}s  sent {sent} ({:.1}/s)  answered {answered}  errors {errors}  \
         in flight {in_flight}  behind {behind}  p99 {:.1} ms",
        sent as f64 / t,
        accept.quantile_ms(0.99)
    );
}
