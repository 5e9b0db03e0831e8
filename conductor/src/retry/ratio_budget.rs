//! The `[retry].budget` budget (`ratio`, `min_per_s`), as the conductor's re-queue and the
//! client without a `[client.retry]` table apply it.
//!
//! It is Finagle's token budget with a fixed 10 s window, **except** at the edges: `ratio <= 0`
//! means *no budget* (every retry allowed, `min_per_s` ignored), where Finagle's
//! `percentCanRetry = 0` allows only the `minRetriesPerSec` reserve (and both 0 allows nothing).
//! [`super::FinagleBudget`] is Finagle's definition exactly; this one keeps the answers of
//! existing scenario files.

use super::window::{WindowedAdder, SLICES};

/// Finagle's default time-to-live of deposits.
const WINDOW_US: u64 = 10_000_000;
const SCALE: i64 = 1000;

/// Each request deposits `ratio` tokens, a retry withdraws one; `min_per_s` retries per second
/// are always allowed; deposits expire after 10 s. `ratio` 0 = no budget (always allowed).
///
/// Why a budget: a per-request attempt limit still multiplies the load by `max_attempts` when
/// everything fails (a retry storm); a budget caps retries at a fraction of recent traffic.
/// As in Finagle's `TokenRetryBudget`, tokens are integers (a deposit is 1000, a withdrawal
/// `1000 / ratio`) kept in a windowed adder of 10 slices, and the `min_per_s` reserve is a fixed
/// balance of `min_per_s × window` withdrawals that retries inside the window draw on first.
#[derive(Debug, Clone)]
pub struct RatioBudget {
    /// No budget at all (`ratio == 0`): every retry allowed.
    unlimited: bool,
    deposit: i64,
    withdrawal: i64,
    reserve: i64,
    tokens: WindowedAdder,
}

impl RatioBudget {
    /// A budget allowing `ratio` retries per request over the last 10 s, plus `min_per_s`
    /// retries per second whatever the traffic. `ratio <= 0` (or not finite) = no budget.
    pub fn new(ratio: f64, min_per_s: f64) -> Self {
        let unlimited = !(ratio.is_finite() && ratio > 0.0);
        let withdrawal = if unlimited {
            SCALE
        } else {
            ((SCALE as f64 / ratio) as i64).max(1)
        };
        let min_per_s = if min_per_s.is_finite() {
            min_per_s.max(0.0)
        } else {
            0.0
        };
        let reserve = (min_per_s * (WINDOW_US / 1_000_000) as f64 * withdrawal as f64)
            .min(i64::MAX as f64 / 4.0) as i64;
        debug_assert_eq!(SLICES, 10);
        RatioBudget {
            unlimited,
            deposit: SCALE,
            withdrawal,
            reserve,
            tokens: WindowedAdder::new(WINDOW_US),
        }
    }

    /// A request (first attempt) was sent at `now_us`: deposit its share of retries.
    pub fn request(&mut self, now_us: u64) {
        if !self.unlimited {
            self.tokens.add(now_us, self.deposit);
        }
    }

    /// May a retry go at `now_us`? If so its token is withdrawn.
    pub fn try_retry(&mut self, now_us: u64) -> bool {
        if self.unlimited {
            return true;
        }
        let balance = self.tokens.sum(now_us).saturating_add(self.reserve);
        if balance >= self.withdrawal {
            self.tokens.add(now_us, -self.withdrawal);
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    type RetryBudget = RatioBudget;

    #[test]
    fn no_budget_always_allows() {
        let mut b = RetryBudget::new(0.0, 0.0);
        assert!((0..1000).all(|i| b.try_retry(i)));
    }

    #[test]
    fn budget_ratio() {
        // 20% of 100 requests: 20 retries, then refused.
        let mut b = RetryBudget::new(0.2, 0.0);
        for i in 0..100 {
            b.request(i * 1000);
        }
        let ok = (0..100).filter(|_| b.try_retry(200_000)).count();
        assert_eq!(ok, 20);
        // The deposits expire after the 10 s window.
        let mut b = RetryBudget::new(0.2, 0.0);
        for i in 0..100 {
            b.request(i * 1000);
        }
        assert!(!b.try_retry(11_000_000));
    }

    #[test]
    fn budget_min_per_s() {
        // No traffic at all: 10 retries per second over the 10 s window = 100 allowed.
        let mut b = RetryBudget::new(0.2, 10.0);
        let ok = (0..1000).filter(|_| b.try_retry(5_000_000)).count();
        assert_eq!(ok, 100);
        // Withdrawals expire with the window: more are allowed later.
        assert!(b.try_retry(20_000_000));
    }
}
