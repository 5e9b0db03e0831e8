//! The one fold of the services' [`Event`]s into a seed's [`SeedMetrics`]: pool arrivals and
//! exhaustion (with the batches of the one-seed interval), pool and RPC occupancy, caller-runs,
//! hold times, backlog waits, accepted, refused, deduplicated, completed and failed ops with
//! their completion latency, re-queues, give-ups and cancellations. The simulator's recorder
//! calls it for every event as it happens; `conductor load --recorder` and `conductor calibrate`
//! call it on the JSON-lines history a real deployment wrote, so both report the same figures
//! by the same definitions.

use conductor::recorder::Event;
use reports::SeedMetrics;

/// Batches the load phase is cut into for a one-seed confidence interval: enough for a t
/// interval, few enough that each batch is long against a hold time.
pub const BATCHES: usize = 20;

/// Where the statistics window puts an event: what the fold needs besides the metrics.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    /// When the load phase ended (µs), once it has: occupancy levels stop there.
    pub load_end_us: Option<u64>,
    /// The length of one batch of the load phase (µs), for batch means.
    pub batch_us: u64,
}

impl Window {
    /// The window of a load phase of `load_us` after a warm-up of `warmup_us`, still running.
    pub fn new(load_us: u64, warmup_us: u64) -> Self {
        Window {
            load_end_us: None,
            batch_us: (load_us.saturating_sub(warmup_us) / BATCHES as u64).max(1),
        }
    }
}

/// What an event meant beyond the metrics, for a recorder that follows ops in flight.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Effect {
    /// An attempt ended (refused, answered by its key, or terminal): one fewer in flight.
    pub settled: bool,
    /// The op that became terminal, `(id, done)`.
    pub terminal: Option<(u64, bool)>,
}

/// Prepares `m` for [`fold`]: one batch counter per batch.
pub fn start(m: &mut SeedMetrics) {
    m.batches = vec![(0, 0); BATCHES];
}

/// Folds event `ev` recorded at `now` (µs on the clock of `m`'s warm-up and of the ops'
/// intended times) into `m`.
#[inline]
pub fn fold(m: &mut SeedMetrics, w: &Window, now: u64, ev: &Event) -> Effect {
    let counting = m.counting(now);
    let mut fx = Effect::default();
    match *ev {
        Event::Accepted { op, .. } if m.counting(op.intended_us) => m.accepted += 1,
        Event::Rejected { op } => {
            if m.counting(op.intended_us) {
                m.rejected += 1;
            }
            fx.settled = true;
        }
        // Answered by its key: no event of the op follows this attempt.
        Event::Deduplicated { op, .. } => {
            if m.counting(op.intended_us) {
                m.deduplicated += 1;
            }
            fx.settled = true;
        }
        Event::PoolArrival {
            conductor,
            exhausted,
            ..
        } => {
            m.pool_arrival(now, conductor as usize, exhausted);
            if counting {
                // Arrivals after the load phase (the last requests in flight) count in the
                // last batch.
                let b = ((now - m.warmup_us) / w.batch_us).min(BATCHES as u64 - 1) as usize;
                if let Some(batch) = m.batches.get_mut(b) {
                    batch.0 += 1;
                    batch.1 += u64::from(exhausted);
                }
            }
        }
        Event::PoolBusy { conductor, busy } => {
            m.timeline.pool_set(now, conductor as usize, busy);
            if let (Some(l), None) = (m.pool_busy.get_mut(conductor as usize), w.load_end_us) {
                l.set(now, busy);
            }
        }
        Event::RpcBusy { conductor, busy } => {
            m.timeline.rpc_set(now, conductor as usize, busy);
            if let (Some(l), None) = (m.rpc_busy.get_mut(conductor as usize), w.load_end_us) {
                l.set(now, busy);
            }
        }
        Event::CallerRuns { .. } if counting => m.caller_runs += 1,
        Event::Hold { hold_us, .. } if counting => m.hold.record(hold_us),
        Event::BacklogWait { wait_us, .. } => {
            m.timeline.backlog_wait(now, wait_us);
            if counting {
                m.backlog_wait.record(wait_us);
            }
        }
        Event::Terminal { op, ok } => {
            fx.terminal = Some((op.id, ok));
            if m.counting(op.intended_us) {
                if ok {
                    m.completed += 1;
                } else {
                    m.failed += 1;
                }
            }
            // Timed from the intended send time, and counted by it (as the op counters are).
            m.record_complete(
                op.intended_us,
                op.kind.name(),
                now.saturating_sub(op.intended_us),
            );
            fx.settled = true;
        }
        Event::NotReady { .. } => {
            // A re-queue is a retry of the conductor's: in the retries series always.
            m.timeline.retry(now);
            if counting {
                m.retry_attempts += 1;
            }
        }
        Event::GaveUp { .. } if counting => m.gave_up += 1,
        Event::Cancelled { op, .. } if m.counting(op.intended_us) => m.cancelled += 1,
        // A real deployment's frames, counted over the whole run as the simulator's network
        // counts its deliveries (warm-up and drain included).
        Event::Frames { delivered } => m.messages += delivered,
        // Counted only inside the statistics window (guards above), or not counted.
        Event::Accepted { .. }
        | Event::CallerRuns { .. }
        | Event::Hold { .. }
        | Event::GaveUp { .. }
        | Event::Cancelled { .. }
        | Event::Applied { .. }
        | Event::Recovered { .. }
        | Event::Reconciled { .. }
        | Event::Orphaned { .. }
        | Event::LockWait { .. } => {}
    }
    fx
}
