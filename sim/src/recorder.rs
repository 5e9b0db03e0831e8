//! The in-memory recorder of a simulated run: every service reports into one [`SeedMetrics`],
//! stamped with simulated time. Nothing is kept per sample: counters, HDR histograms and
//! time-weighted levels only. The history goes, event by event, to the streaming [`Checker`]
//! (when invariants are judged) and to a [`Trace`] (when one is written); neither keeps it.

use crate::progress::SeedClock;
use crate::trace::Trace;
use checker::{Checker, Snapshot};
use conductor::op::Truth;
use conductor::proto::OpSpec;
use conductor::recorder::{Event, Recorder};
use reports::SeedMetrics;
use scenario::fold::{self, fold, Window};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

/// The recorder shared by every node of one simulated run.
pub struct SimRecorder {
    /// The runtime's clock, read directly: cheaper than `Instant::now()` under madsim.
    time: madsim::time::TimeHandle,
    t0: Duration,
    inner: Mutex<Inner>,
}

struct Inner {
    m: SeedMetrics,
    /// Ops the client sent that have not been answered or finished, for an early end of the drain.
    in_flight: u64,
    /// The statistics window: when the load phase ended (occupancy levels are averaged over
    /// the load phase only) and the batches' length.
    window: Window,
    /// Client retries counted in the statistics: each is an attempt that ends rejected,
    /// terminal or lost, like a first attempt (`retry_attempts` may also count re-queues).
    client_retries: u64,
    /// The invariant checker; `None` when nothing is judged (capacity runs pay nothing).
    checker: Option<Checker>,
    /// The trace being written, if any.
    trace: Option<Trace>,
    /// Where terminal ops go for a client that waits for them (`client.wait_for = "done"`).
    terminal_watch: Option<tokio::sync::mpsc::UnboundedSender<(u64, bool)>>,
    /// This seed's share of the terminal's progress (observation only: never read back).
    clock: SeedClock,
}

impl SimRecorder {
    /// A recorder whose clock starts now (call inside the simulation), for a load phase of
    /// `load_us`.
    pub fn new(mut metrics: SeedMetrics, load_us: u64) -> Self {
        fold::start(&mut metrics);
        let window = Window::new(load_us, metrics.warmup_us);
        let time = madsim::time::TimeHandle::current();
        SimRecorder {
            t0: time.elapsed(),
            time,
            inner: Mutex::new(Inner {
                m: metrics,
                in_flight: 0,
                window,
                client_retries: 0,
                checker: None,
                trace: None,
                terminal_watch: None,
                clock: SeedClock::default(),
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic inside the simulation aborts the run, so a poisoned lock is never observed
        // by a run that goes on; take the data regardless.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The seed's clock reads `now_us` (the drain's steps, which have no arrivals): the
    /// terminal's progress moves on.
    pub fn progress_at(&self, now_us: u64) {
        self.lock().clock.at(now_us);
    }

    /// The seed is over: its share of the progress is made up to `total_us`, its load phase
    /// and whole drain.
    pub fn progress_done(&self, total_us: u64) {
        self.lock().clock.finish(total_us);
    }

    /// The client sent an op.
    pub fn submitted(&self, op: &OpSpec) {
        let now = self.now_us();
        let mut g = self.lock();
        g.in_flight += 1;
        g.m.sent_total += 1;
        g.m.timeline.attempt_sent(now, true);
        g.clock.at(now);
        if g.m.counting(op.intended_us) {
            g.m.submitted += 1;
        }
    }

    /// The client sent a retry of a request (a new op id, the first attempt's intended time).
    pub fn resubmitted(&self, op: &OpSpec) {
        let now = self.now_us();
        let mut g = self.lock();
        g.in_flight += 1;
        g.m.sent_total += 1;
        g.m.timeline.attempt_sent(now, false);
        // The retries series counts every retry when it is sent, warm-up and drain included.
        g.m.timeline.retry(now);
        if g.m.counting(op.intended_us) {
            g.m.retry_attempts += 1;
            g.m.client_retries += 1;
            g.client_retries += 1;
        }
    }

    /// A client attempt intended (its request's first attempt) at `op_intended_us` and sent at
    /// `sent_us` ended at `now_us`; `in_flight` client attempts of instance `client` are left.
    pub fn attempt_ended(
        &self,
        op_intended_us: u64,
        sent_us: u64,
        now_us: u64,
        client: usize,
        in_flight: u32,
    ) {
        let mut g = self.lock();
        g.m.timeline.attempt_ended(now_us, sent_us);
        g.m.timeline.inflight_set(now_us, client, in_flight);
        if g.m.counting(op_intended_us) {
            g.m.attempt.record(now_us.saturating_sub(sent_us));
        }
    }

    /// Client instance `client` has `in_flight` attempts outstanding from `now_us`.
    pub fn client_in_flight(&self, now_us: u64, client: usize, in_flight: u32) {
        self.lock()
            .m
            .timeline
            .inflight_set(now_us, client, in_flight);
    }

    /// A request intended at `op_intended_us` succeeded at `now_us`, before the client gave up
    /// on it: goodput.
    pub fn goodput(&self, op_intended_us: u64, now_us: u64) {
        let mut g = self.lock();
        g.m.timeline.goodput(now_us, op_intended_us);
        if g.m.counting(op_intended_us) {
            g.m.goodput += 1;
            g.m.end_to_end.record(now_us.saturating_sub(op_intended_us));
        }
    }

    /// The client could not send an attempt (no connection to the API): it ends refused.
    pub fn undelivered(&self, op_intended_us: u64) {
        let mut g = self.lock();
        g.in_flight = g.in_flight.saturating_sub(1);
        if g.m.counting(op_intended_us) {
            g.m.rejected += 1;
        }
    }

    /// The client gave up a request: its last attempt failed and no retry was allowed.
    pub fn gave_up(&self, op_intended_us: u64) {
        let now = self.now_us();
        let mut g = self.lock();
        g.m.timeline.gave_up(now);
        if g.m.counting(op_intended_us) {
            g.m.gave_up += 1;
            g.m.client_gave_up += 1;
        }
    }

    /// The client got the API's answer to an op after `now_us`.
    pub fn answered(&self, op_intended_us: u64, now_us: u64) {
        let mut g = self.lock();
        if g.m.counting(op_intended_us) {
            g.m.accept.record(now_us.saturating_sub(op_intended_us));
        }
    }

    /// The API answered a call with a timeout, or the client's own timeout expired.
    pub fn timed_out(&self, op_intended_us: u64) {
        let mut g = self.lock();
        if g.m.counting(op_intended_us) {
            g.m.timeouts += 1;
        }
    }

    /// Sends `(op id, done)` to `tx` for every op that becomes terminal: the client that waits
    /// for its ops (`wait_for = "done"`) learns when they are, as a user polling or watching
    /// the container would (the polling itself is not modelled: it learns at once).
    pub fn watch_terminal(&self, tx: tokio::sync::mpsc::UnboundedSender<(u64, bool)>) {
        self.lock().terminal_watch = Some(tx);
    }

    /// Judges the history with `checker` (install it before the run starts).
    pub fn set_checker(&self, checker: Checker) {
        let mut g = self.lock();
        let echo = g.trace.is_some();
        g.checker = Some(checker);
        if let Some(c) = g.checker.as_mut() {
            c.echo(echo);
        }
    }

    /// Writes a trace of the run to `trace` (install it before the run starts).
    pub fn set_trace(&self, trace: Trace) {
        let mut g = self.lock();
        g.trace = Some(trace);
        if let Some(c) = g.checker.as_mut() {
            c.echo(true);
        }
    }

    /// A container that exists before the run, at `host`, in state `truth` (for the checker).
    pub fn precreated(&self, container: u64, host: u32, truth: Truth) {
        if let Some(c) = self.lock().checker.as_mut() {
            c.precreated(container, host, truth);
        }
    }

    /// Whether invariants are judged.
    pub fn checking(&self) -> bool {
        self.lock().checker.is_some()
    }

    /// Whether a trace is being written: callers can skip building what only a trace reads.
    pub fn tracing(&self) -> bool {
        self.lock().trace.is_some()
    }

    /// A line for the human-readable trace from `node` (fault injector, client retries) about
    /// no container in particular (the `--container` filter keeps it): `text` is only built
    /// when a trace is being written.
    pub fn note(&self, node: &str, text: impl FnOnce() -> String) {
        self.note_about(node, None, text);
    }

    /// [`note`](SimRecorder::note) about one container (the `--container` filter keeps it only
    /// for that container).
    pub fn note_for(&self, node: &str, container: u64, text: impl FnOnce() -> String) {
        self.note_about(node, Some(container), text);
    }

    fn note_about(&self, node: &str, container: Option<u64>, text: impl FnOnce() -> String) {
        let now = self.now_us();
        if let Some(t) = self.lock().trace.as_mut() {
            t.note(now, node, container, &text());
        }
    }

    /// Judges the end of the drain at `end_us` against the final state of the store and the
    /// hosts (call before [`finish`](SimRecorder::finish)).
    pub fn check_final(&self, end_us: u64, snap: &Snapshot) {
        let mut g = self.lock();
        let g = &mut *g;
        if let Some(c) = g.checker.as_mut() {
            c.finish(end_us, snap);
            if let Some(t) = g.trace.as_mut() {
                for v in c.take_fresh() {
                    t.violation(&v);
                }
            }
        }
    }

    /// Ops sent and not yet terminal or refused.
    pub fn in_flight(&self) -> u64 {
        self.lock().in_flight
    }

    /// The load phase ends at `t_us`: occupancy levels close there (the drain that follows
    /// has no arrivals, and would dilute the averages).
    pub fn end_load(&self, t_us: u64) {
        let mut g = self.lock();
        g.window.load_end_us = Some(t_us);
        g.m.finish(t_us);
    }

    /// Ends the run at `end_us` and hands back its metrics.
    pub fn finish(&self, end_us: u64) -> SeedMetrics {
        let mut g = self.lock();
        if g.window.load_end_us.is_none() {
            g.m.finish(end_us);
        }
        g.m.sim_end_us = end_us;
        // The timeline covers the drain too (the levels stop at the end of the load).
        g.m.finish_timeline(end_us);
        // Lost: attempts sent (first and retries), never refused, never terminal, never
        // answered by their key — accepted ops that never finished and requests the API never
        // answered alike.
        g.m.lost = (g.m.submitted + g.client_retries)
            .saturating_sub(g.m.rejected + g.m.completed + g.m.failed + g.m.deduplicated);
        if let Some(c) = g.checker.take() {
            let f = c.findings();
            g.m.violations = f.violations.iter().map(|v| v.to_json()).collect();
            g.m.violation_counts = f.counts;
        }
        if let Some(t) = g.trace.as_mut() {
            t.flush();
        }
        std::mem::replace(&mut g.m, SeedMetrics::new(0, 0, &[], 0, 0))
    }
}

impl Recorder for SimRecorder {
    fn now_us(&self) -> u64 {
        self.time.elapsed().saturating_sub(self.t0).as_micros() as u64
    }

    fn record(&self, ev: Event) {
        let now = self.now_us();
        let mut g = self.lock();
        let g = &mut *g;
        if let Some(c) = g.checker.as_mut() {
            c.observe(now, &ev);
        }
        if let Some(t) = g.trace.as_mut() {
            t.event(now, &ev);
            if let Some(c) = g.checker.as_mut() {
                for v in c.take_fresh() {
                    t.violation(&v);
                }
            }
        }
        g.m.events += 1;
        let fx = fold(&mut g.m, &g.window, now, &ev);
        if fx.settled {
            g.in_flight = g.in_flight.saturating_sub(1);
        }
        if let (Some(t), Some(tx)) = (fx.terminal, &g.terminal_watch) {
            // The client's watcher task runs on the client node: no re-entry here.
            let _ = tx.send(t);
        }
    }
}
