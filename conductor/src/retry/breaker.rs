//! A circuit breaker (Nygard, *Release It!*; resilience4j's state machine):
//!
//! - **closed**: attempts go; it trips **open** after `failures` consecutive failures, or when
//!   the failures over a sliding `window` reach `failure_ratio` of at least `min_requests`
//!   attempts;
//! - **open** for `open_for`: attempts fail fast, without being sent;
//! - then **half-open**: up to `probes` attempts go through; the first probe to succeed closes it
//!   (the counts start afresh), the first to fail opens it again for `open_for`.
//!
//! Outcomes are counted as their answers come, whenever the attempt was sent. Integers only
//! (the ratio in per-mille), so every run decides alike.

use super::window::WindowedAdder;

/// What trips a closed breaker (at least one of the two is set).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Trip {
    /// Trip after this many consecutive failures.
    pub consecutive: Option<u32>,
    /// Trip when failures / attempts over the window reach `permille` / 1000, once the window
    /// holds at least `min_requests` attempts.
    pub ratio: Option<RatioTrip>,
}

/// The failure-ratio condition of a [`Trip`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RatioTrip {
    /// The failure ratio, per mille (1..=1000).
    pub permille: u32,
    /// The sliding window, µs.
    pub window_us: u64,
    /// Attempts the window must hold before the ratio counts (>= 1).
    pub min_requests: u32,
}

/// `[client.retry] breaker`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerConfig {
    /// When to open.
    pub trip: Trip,
    /// How long it stays open, µs.
    pub open_us: u64,
    /// Probe attempts let through when half-open (>= 1).
    pub probes: u32,
}

/// Where a breaker is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    /// Attempts go.
    Closed,
    /// Attempts fail fast until the time (µs) given.
    Open {
        /// When it turns half-open.
        until_us: u64,
    },
    /// Probes go, up to `probes` at once.
    HalfOpen {
        /// Probes sent and not answered yet.
        probing: u32,
    },
}

/// One client's breaker.
#[derive(Debug, Clone)]
pub struct Breaker {
    cfg: BreakerConfig,
    state: BreakerState,
    consecutive: u32,
    attempts: WindowedAdder,
    failures: WindowedAdder,
    /// Times it opened.
    opened: u64,
}

impl Breaker {
    /// A closed breaker.
    pub fn new(cfg: BreakerConfig) -> Self {
        let window = cfg.trip.ratio.map_or(1_000_000, |r| r.window_us);
        Breaker {
            cfg,
            state: BreakerState::Closed,
            consecutive: 0,
            attempts: WindowedAdder::new(window),
            failures: WindowedAdder::new(window),
            opened: 0,
        }
    }

    /// The state at `now_us` (an open breaker whose time is up is half-open).
    pub fn state(&mut self, now_us: u64) -> BreakerState {
        if let BreakerState::Open { until_us } = self.state {
            if now_us >= until_us {
                self.state = BreakerState::HalfOpen { probing: 0 };
            }
        }
        self.state
    }

    /// How many times it has opened.
    pub fn opened(&self) -> u64 {
        self.opened
    }

    /// May an attempt be sent at `now_us`? Half-open, a `true` counts it as a probe.
    pub fn allow(&mut self, now_us: u64) -> bool {
        match self.state(now_us) {
            BreakerState::Closed => true,
            BreakerState::Open { .. } => false,
            BreakerState::HalfOpen { probing } => {
                if probing < self.cfg.probes {
                    self.state = BreakerState::HalfOpen {
                        probing: probing + 1,
                    };
                    true
                } else {
                    false
                }
            }
        }
    }

    /// An attempt's outcome came at `now_us`: `ok` = success.
    pub fn record(&mut self, now_us: u64, ok: bool) {
        match self.state(now_us) {
            BreakerState::Open { .. } => {}
            BreakerState::HalfOpen { .. } => {
                if ok {
                    self.close();
                } else {
                    self.open(now_us);
                }
            }
            BreakerState::Closed => {
                self.consecutive = if ok { 0 } else { self.consecutive + 1 };
                self.attempts.add(now_us, 1);
                self.failures.add(now_us, i64::from(!ok));
                if self.trips(now_us) {
                    self.open(now_us);
                }
            }
        }
    }

    fn trips(&mut self, now_us: u64) -> bool {
        let t = self.cfg.trip;
        if t.consecutive.is_some_and(|n| self.consecutive >= n) {
            return true;
        }
        match t.ratio {
            None => false,
            Some(r) => {
                let n = self.attempts.sum(now_us);
                let f = self.failures.sum(now_us);
                n >= i64::from(r.min_requests) && f * 1000 >= i64::from(r.permille) * n
            }
        }
    }

    fn open(&mut self, now_us: u64) {
        self.opened += 1;
        self.state = BreakerState::Open {
            until_us: now_us.saturating_add(self.cfg.open_us),
        };
    }

    fn close(&mut self) {
        let window = self.cfg.trip.ratio.map_or(1_000_000, |r| r.window_us);
        self.state = BreakerState::Closed;
        self.consecutive = 0;
        self.attempts = WindowedAdder::new(window);
        self.failures = WindowedAdder::new(window);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn consecutive(n: u32, probes: u32) -> Breaker {
        Breaker::new(BreakerConfig {
            trip: Trip {
                consecutive: Some(n),
                ratio: None,
            },
            open_us: 1_000,
            probes,
        })
    }

    #[test]
    fn state_machine_step_by_step() {
        let mut b = consecutive(3, 1);
        b.record(0, false);
        b.record(1, false);
        b.record(2, true); // a success resets the run
        b.record(3, false);
        b.record(4, false);
        assert_eq!(b.state(4), BreakerState::Closed);
        assert!(b.allow(4));
        b.record(5, false);
        assert_eq!(b.state(5), BreakerState::Open { until_us: 1_005 });
        assert!(!b.allow(6), "open: fail fast");
        assert!(!b.allow(1_004));
        // Half-open at 1 005: one probe, the next attempt waits for its answer.
        assert!(b.allow(1_005));
        assert_eq!(b.state(1_005), BreakerState::HalfOpen { probing: 1 });
        assert!(!b.allow(1_006));
        // The probe fails: open again.
        b.record(1_010, false);
        assert_eq!(b.state(1_010), BreakerState::Open { until_us: 2_010 });
        assert_eq!(b.opened(), 2);
        // The next probe succeeds: closed, counts afresh.
        assert!(b.allow(2_010));
        b.record(2_020, true);
        assert_eq!(b.state(2_020), BreakerState::Closed);
        b.record(2_021, false);
        b.record(2_022, false);
        assert_eq!(b.state(2_022), BreakerState::Closed);
    }

    #[test]
    fn failure_ratio_over_a_window_with_a_minimum() {
        let mut b = Breaker::new(BreakerConfig {
            trip: Trip {
                consecutive: None,
                ratio: Some(RatioTrip {
                    permille: 500,
                    window_us: 10_000_000,
                    min_requests: 10,
                }),
            },
            open_us: 5_000_000,
            probes: 2,
        });
        // 4 failures of 8: half, but under the minimum of 10 attempts.
        for i in 0..8 {
            b.record(i, i % 2 == 0);
        }
        assert_eq!(b.state(8), BreakerState::Closed);
        b.record(9, true); // 9 attempts, 4 failures
        b.record(10, false); // 10 attempts, 5 failures: 50%
        assert!(matches!(b.state(10), BreakerState::Open { .. }));
        // Two probes half-open.
        assert!(b.allow(5_000_010));
        assert!(b.allow(5_000_011));
        assert!(!b.allow(5_000_012));
    }

    #[test]
    fn old_failures_leave_the_window() {
        let mut b = Breaker::new(BreakerConfig {
            trip: Trip {
                consecutive: None,
                ratio: Some(RatioTrip {
                    permille: 500,
                    window_us: 1_000_000,
                    min_requests: 4,
                }),
            },
            open_us: 1,
            probes: 1,
        });
        b.record(0, false);
        b.record(1, false);
        b.record(2, false);
        // A second later they are gone: 1 failure of 4 recent attempts is not 50%.
        for t in [1_500_000, 1_500_001, 1_500_002] {
            b.record(t, true);
        }
        b.record(1_500_003, false);
        assert_eq!(b.state(1_500_003), BreakerState::Closed);
    }
}
