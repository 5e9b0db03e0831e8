//! Progress inside seeds, for the terminal's bar: the simulated time the seeds of this process
//! have covered, summed over the seeds running at once. A long seed (an hour of simulated time
//! can take twenty seconds of wall time) would otherwise show a blank terminal until it ends.
//!
//! Observation only: the simulation adds to this counter and never reads it, nor does anything
//! it computes, so no answer can depend on it. A relaxed atomic, added to at most once per
//! simulated second of a seed (by its first attempts and its drain's steps), costs a compare
//! per arrival.

use std::sync::atomic::{AtomicU64, Ordering};

/// Simulated µs covered by every seed this process has run or is running.
static COVERED_US: AtomicU64 = AtomicU64::new(0);

/// How far (simulated µs) a seed's clock moves between two reports.
pub const STEP_US: u64 = 1_000_000;

/// Simulated µs covered so far, over all seeds (a bar reads the difference from its start).
pub fn covered_us() -> u64 {
    COVERED_US.load(Ordering::Relaxed)
}

/// One seed's share of the counter.
#[derive(Debug, Default)]
pub struct SeedClock {
    reported_us: u64,
}

impl SeedClock {
    /// The seed's clock reads `now_us`: reported once it has moved a step since the last
    /// report.
    #[inline]
    pub fn at(&mut self, now_us: u64) {
        if now_us >= self.reported_us + STEP_US {
            COVERED_US.fetch_add(now_us - self.reported_us, Ordering::Relaxed);
            self.reported_us = now_us;
        }
    }

    /// The seed has ended: its share is made up to `total_us` (its load phase and its whole
    /// drain — a drain that ended early counts as covered), so that `n` finished seeds have
    /// added exactly `n × total_us`.
    pub fn finish(&mut self, total_us: u64) {
        if total_us > self.reported_us {
            COVERED_US.fetch_add(total_us - self.reported_us, Ordering::Relaxed);
            self.reported_us = total_us;
        }
    }

    /// What this seed has added so far.
    pub fn reported_us(&self) -> u64 {
        self.reported_us
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_reports_by_steps_and_adds_exactly_its_total() {
        let mut c = SeedClock::default();
        c.at(STEP_US / 2);
        assert_eq!(c.reported_us(), 0, "less than a step: nothing yet");
        c.at(STEP_US + 7);
        assert_eq!(c.reported_us(), STEP_US + 7);
        c.at(STEP_US + 9);
        assert_eq!(c.reported_us(), STEP_US + 7, "within the step: unchanged");
        c.finish(10 * STEP_US);
        assert_eq!(c.reported_us(), 10 * STEP_US);
        // A clock past the total (the drain's margin) is never taken back.
        c.finish(5 * STEP_US);
        assert_eq!(c.reported_us(), 10 * STEP_US);
    }
}
