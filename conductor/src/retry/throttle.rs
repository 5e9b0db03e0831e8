//! gRPC retry throttling, as gRFC A6 ("gRPC Retry Design", *Throttling Retry Attempts*)
//! defines it, per client:
//!
//! - `token_count` starts at `max_tokens` (in (0, 1000]);
//! - every failed attempt **whose outcome is retryable** takes 1 token off; every successful
//!   attempt gives `token_ratio` back (> 0, three decimals); the count stays in
//!   `[0, max_tokens]`;
//! - a retry is sent only while `token_count > max_tokens / 2`.
//!
//! Kept in integer milli-tokens (A6 keeps `token_ratio` to three decimals for exactly this
//! reason), so that every run gives the same decisions.

/// `[client.retry] throttling = { max_tokens, token_ratio }`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottleConfig {
    /// `max_tokens`, in milli-tokens (1..=1_000_000).
    pub max_milli: u64,
    /// `token_ratio`, in milli-tokens per success (>= 1).
    pub ratio_milli: u64,
}

/// The throttle of one client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Throttle {
    cfg: ThrottleConfig,
    count_milli: u64,
}

impl Throttle {
    /// A full throttle: `token_count = max_tokens`.
    pub fn new(cfg: ThrottleConfig) -> Self {
        Throttle {
            cfg,
            count_milli: cfg.max_milli,
        }
    }

    /// The current count, in milli-tokens.
    pub fn count_milli(&self) -> u64 {
        self.count_milli
    }

    /// An attempt failed with a retryable outcome: one token off (not below 0).
    pub fn failure(&mut self) {
        self.count_milli = self.count_milli.saturating_sub(1000);
    }

    /// An attempt succeeded: `token_ratio` back (not above `max_tokens`).
    pub fn success(&mut self) {
        self.count_milli = (self.count_milli + self.cfg.ratio_milli).min(self.cfg.max_milli);
    }

    /// Whether a retry may be sent now: `token_count > max_tokens / 2`.
    pub fn allows_retry(&self) -> bool {
        // count > max / 2  ⇔  2·count > max, exact in integers.
        2 * self.count_milli > self.cfg.max_milli
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a6_step_by_step() {
        // max_tokens = 10, token_ratio = 0.1 (the gRFC's example configuration).
        let mut t = Throttle::new(ThrottleConfig {
            max_milli: 10_000,
            ratio_milli: 100,
        });
        assert_eq!(t.count_milli(), 10_000);
        assert!(t.allows_retry());
        for want in [9_000, 8_000, 7_000, 6_000] {
            t.failure();
            assert_eq!(t.count_milli(), want);
            assert!(t.allows_retry(), "{want} > 5000");
        }
        t.failure();
        assert_eq!(t.count_milli(), 5_000);
        assert!(!t.allows_retry(), "5 is not > 10/2");
        t.success();
        assert_eq!(t.count_milli(), 5_100);
        assert!(t.allows_retry());
        // Clamped at 0 and at max_tokens.
        for _ in 0..20 {
            t.failure();
        }
        assert_eq!(t.count_milli(), 0);
        for _ in 0..200 {
            t.success();
        }
        assert_eq!(t.count_milli(), 10_000);
    }

    #[test]
    fn fractional_max_tokens_threshold_is_exact() {
        // max_tokens = 3: retries while count > 1.5, i.e. at 2 but not at 1.5.
        let mut t = Throttle::new(ThrottleConfig {
            max_milli: 3_000,
            ratio_milli: 500,
        });
        t.failure(); // 2
        assert!(t.allows_retry());
        t.failure(); // 1
        t.success(); // 1.5
        assert_eq!(t.count_milli(), 1_500);
        assert!(!t.allows_retry());
    }
}
