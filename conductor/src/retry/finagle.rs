//! Finagle's `RetryBudget(ttl, minRetriesPerSec, percentCanRetry)`, as Finagle defines it
//! (`com.twitter.finagle.service.RetryBudget.apply`, `TokenRetryBudget`):
//!
//! - every request **deposits** (1000 tokens when `percent > 0`, none when `percent = 0`);
//! - every retry **withdraws** `⌊1000 / percent⌋` tokens (1000 when `percent = 0`), allowed
//!   while `⌊(deposits − withdrawals in the window + reserve) / withdrawal⌋ >= 1`;
//! - deposits and withdrawals **expire** after `ttl` (1 to 60 s; a windowed adder of 10 slices);
//! - the **reserve** is `min_per_s × ⌊ttl in s⌋ × withdrawal` tokens that never expire: about
//!   `min_per_s` retries per second for a client with little traffic;
//! - `percent = 0` and `min_per_s = 0` is Finagle's `Empty` budget: **no retry, ever**;
//! - no budget configured at all is unlimited (that is the caller's `Option::None`).
//!
//! Unlike [`super::RatioBudget`] (`[retry].budget`), `percent = 0` does not mean "unlimited".

use super::window::WindowedAdder;

/// Finagle's `ScaleFactor`: tokens per deposit.
const SCALE: f64 = 1000.0;

/// The budget's parameters: `[client.retry] budget = { ttl, min_per_s, percent }`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FinagleBudgetConfig {
    /// How long deposits count, µs (1 to 60 s).
    pub ttl_us: u64,
    /// Retries per second always allowed (`minRetriesPerSec`, an integer >= 0).
    pub min_per_s: u32,
    /// Retries allowed per request (`percentCanRetry`, in [0, 1000]; 0.2 = 20%).
    pub percent: f64,
}

impl FinagleBudgetConfig {
    /// Finagle's defaults: 10 s, 10 per second, 20%.
    pub const DEFAULT: FinagleBudgetConfig = FinagleBudgetConfig {
        ttl_us: 10_000_000,
        min_per_s: 10,
        percent: 0.2,
    };
}

/// A Finagle retry budget in use (see the module's text).
#[derive(Debug, Clone)]
pub struct FinagleBudget {
    /// Finagle's `Empty`: `percent = 0` and `min_per_s = 0`.
    empty: bool,
    deposit: i64,
    withdrawal: i64,
    reserve: i64,
    tokens: WindowedAdder,
}

impl FinagleBudget {
    /// A fresh budget (one per client instance). Parameters out of Finagle's ranges are the
    /// parser's to refuse; here they are clamped into them.
    pub fn new(cfg: FinagleBudgetConfig) -> Self {
        let ttl_us = cfg.ttl_us.clamp(1_000_000, 60_000_000);
        let percent = if cfg.percent.is_finite() {
            cfg.percent.clamp(0.0, 1000.0)
        } else {
            0.0
        };
        let empty = cfg.min_per_s == 0 && percent == 0.0;
        let (deposit, withdrawal) = if percent == 0.0 {
            (0, SCALE as i64)
        } else {
            (SCALE as i64, ((SCALE / percent) as i64).max(1))
        };
        let reserve = i64::from(cfg.min_per_s)
            .saturating_mul((ttl_us / 1_000_000) as i64)
            .saturating_mul(withdrawal);
        FinagleBudget {
            empty,
            deposit,
            withdrawal,
            reserve,
            tokens: WindowedAdder::new(ttl_us),
        }
    }

    /// A request was sent at `now_us`: `deposit()`.
    pub fn deposit(&mut self, now_us: u64) {
        if !self.empty && self.deposit != 0 {
            self.tokens.add(now_us, self.deposit);
        }
    }

    /// Retries the budget would allow at `now_us` (Finagle's `balance`).
    pub fn balance(&mut self, now_us: u64) -> i64 {
        if self.empty {
            return 0;
        }
        self.tokens.sum(now_us).saturating_add(self.reserve) / self.withdrawal
    }

    /// May a retry go at `now_us`? If so, `tryWithdraw()` takes its tokens.
    pub fn try_withdraw(&mut self, now_us: u64) -> bool {
        if self.balance(now_us) >= 1 {
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

    fn budget(ttl_s: u64, min_per_s: u32, percent: f64) -> FinagleBudget {
        FinagleBudget::new(FinagleBudgetConfig {
            ttl_us: ttl_s * 1_000_000,
            min_per_s,
            percent,
        })
    }

    #[test]
    fn empty_never_retries() {
        let mut b = budget(10, 0, 0.0);
        for t in 0..100 {
            b.deposit(t);
        }
        assert_eq!(b.balance(100), 0);
        assert!(!b.try_withdraw(100));
    }

    #[test]
    fn deposit_then_withdraw_step_by_step() {
        // 50%: a deposit is 1000 tokens, a withdrawal 2000: two requests pay for one retry.
        let mut b = budget(10, 0, 0.5);
        b.deposit(0);
        assert_eq!(b.balance(0), 0, "half a retry is not a retry");
        assert!(!b.try_withdraw(0));
        b.deposit(1);
        assert_eq!(b.balance(1), 1);
        assert!(b.try_withdraw(2));
        assert_eq!(b.balance(2), 0);
        assert!(!b.try_withdraw(3));
        // 20% of 100 requests: exactly 20 retries.
        let mut b = budget(10, 0, 0.2);
        for i in 0..100 {
            b.deposit(i * 1000);
        }
        assert_eq!((0..100).filter(|_| b.try_withdraw(200_000)).count(), 20);
    }

    #[test]
    fn deposits_expire_after_ttl() {
        let mut b = budget(2, 0, 1.0);
        for i in 0..10 {
            b.deposit(i);
        }
        assert_eq!(b.balance(1_999_999), 10);
        // The 2 s window has 10 slices of 200 ms: the deposits of slice 0 leave at 2 s.
        assert_eq!(b.balance(2_000_000), 0);
        assert!(!b.try_withdraw(2_000_000));
    }

    #[test]
    fn the_reserve_never_expires_and_needs_no_traffic() {
        // min 10/s over a 10 s ttl: 100 retries with no request at all.
        let mut b = budget(10, 10, 0.2);
        assert_eq!((0..1000).filter(|_| b.try_withdraw(5_000_000)).count(), 100);
        // The withdrawals expire with the window; the reserve is whole again.
        assert_eq!(b.balance(16_000_000), 100);
        // percent 0 with a reserve: deposits add nothing, the reserve alone pays.
        let mut b = budget(1, 3, 0.0);
        for t in 0..1000 {
            b.deposit(t);
        }
        assert_eq!((0..10).filter(|_| b.try_withdraw(1000)).count(), 3);
    }

    #[test]
    fn percent_above_one_allows_several_retries_per_request() {
        // Finagle allows percentCanRetry up to 1000: 3.0 = three retries per request.
        let mut b = budget(10, 0, 3.0);
        b.deposit(0);
        assert_eq!(b.balance(0), 3);
    }
}
