//! Retry policies: the backoff between attempts, and what may refuse a retry the backoff would
//! allow — one file each: [`RatioBudget`] (`[retry].budget`, the conductor's and legacy
//! clients'), [`FinagleBudget`] (Finagle's `RetryBudget` exactly, `[client.retry].budget`),
//! [`Throttle`] (gRPC retry throttling, gRFC A6) and [`Breaker`] (a circuit breaker), over one
//! windowed counter ([`WindowedAdder`]).
//!
//! Used by the conductor's `state-check` re-queue and by the simulated client's retries. Plain
//! code on purpose (no runtime, no `rand`): the same op must get the same delays in every run and
//! in every configuration compared with one seed (common random numbers), whatever the scheduler
//! does, so the jitter is a pure function of (key, attempt) — splitmix64 — rather than a draw from
//! a shared generator whose position depends on what else happened first.
//!
//! The formulas are those of AWS's "Exponential Backoff and Jitter" (Marc Brooker, 2015), with
//! `n` = the retry number (1 for the first retry):
//!
//! | policy | delay before retry `n` |
//! |---|---|
//! | fixed | `base` |
//! | exponential | `e(n) = min(cap, base·2^(n−1))` |
//! | full jitter | `U(0, e(n))` |
//! | equal jitter | `e(n)/2 + U(0, e(n)/2)` |
//! | decorrelated | `min(cap, U(base, 3·prev))`, `prev` = the previous delay (`base` before the first) |

use std::time::Duration;

mod breaker;
mod finagle;
mod ratio_budget;
mod throttle;
mod window;

pub use breaker::{Breaker, BreakerConfig, BreakerState, RatioTrip, Trip};
pub use finagle::{FinagleBudget, FinagleBudgetConfig};
pub use ratio_budget::RatioBudget;
pub use throttle::{Throttle, ThrottleConfig};
pub use window::WindowedAdder;

/// Today's name of the `[retry].budget` budget, kept for its users.
pub type RetryBudget = RatioBudget;

crate::keyword_enum! {
    /// `retry.policy`: how the delay between attempts grows (see the module's table).
    pub enum Backoff, "a retry policy" {
        /// No retries at all: every failure is final.
        None = "none",
        /// Always `base`.
        Fixed = "fixed",
        /// `min(cap, base·2^(n−1))`, no jitter (retries of ops that failed together stay
        /// together).
        Exponential = "exponential",
        /// Half the exponential delay plus a uniform draw over the other half.
        EqualJitter = "equal-jitter",
        /// Uniform over `[0, exponential delay]`: AWS's recommendation for contention.
        FullJitter = "full-jitter",
        /// `min(cap, U(base, 3·prev))`: grows from the previous delay rather than the attempt
        /// number.
        Decorrelated = "decorrelated",
    }
}

/// A backoff with its bounds and the number of attempts allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RetryPolicy {
    /// How the delay grows.
    pub backoff: Backoff,
    /// The first delay (the scale of every policy).
    pub base: Duration,
    /// No delay exceeds it (`fixed` returns `base` even if it is larger).
    pub cap: Duration,
    /// Attempts in all, the first included: `1` means no retry.
    pub max_attempts: u32,
}

impl RetryPolicy {
    /// A policy that never retries.
    pub const NEVER: RetryPolicy = RetryPolicy {
        backoff: Backoff::None,
        base: Duration::ZERO,
        cap: Duration::ZERO,
        max_attempts: 1,
    };

    /// Delay before attempt `next` (2 = first retry) of the request keyed `key` (e.g. an op id),
    /// `prev` = the previous delay (decorrelated needs it; pass `Duration::ZERO` before the first
    /// retry); `None` = give up (policy `none`, or `next > max_attempts`).
    ///
    /// Attempt 1 (or 0) is the original request and goes at once: `Some(0)`. The result depends
    /// only on the arguments, so a replayed run, or another configuration with the same seed,
    /// waits exactly as long before the same retry.
    pub fn delay(&self, next: u32, prev: Duration, key: u64) -> Option<Duration> {
        if next <= 1 {
            return Some(Duration::ZERO);
        }
        if self.backoff == Backoff::None || next > self.max_attempts {
            return None;
        }
        let n = next - 1; // the retry number, 1 for the first retry
        let u = unit(key, next);
        let base = self.base.as_nanos();
        let cap = self.cap.as_nanos();
        let exp = || {
            // base·2^(n−1), saturating long before 2^127 overflows.
            let shift = (n - 1).min(100);
            base.checked_shl(shift)
                .filter(|v| v >> shift == base)
                .unwrap_or(u128::MAX)
                .min(cap)
        };
        let nanos = match self.backoff {
            Backoff::None => unreachable!("handled above"),
            Backoff::Fixed => base,
            Backoff::Exponential => exp(),
            Backoff::FullJitter => scale(exp(), u),
            Backoff::EqualJitter => {
                let e = exp();
                let half = e / 2;
                half + scale(e - half, u)
            }
            Backoff::Decorrelated => {
                let prev = if prev.is_zero() {
                    base
                } else {
                    prev.as_nanos()
                };
                let hi = prev.saturating_mul(3).max(base);
                (base + scale(hi - base, u)).min(cap)
            }
        };
        Some(nanos_to_duration(nanos))
    }
}

/// `x·u` for `u` in [0, 1), in integer nanoseconds (exact enough: 53-bit `u`).
fn scale(x: u128, u: f64) -> u128 {
    // f64 holds durations up to ~104 days to the nanosecond; beyond, rounding is harmless.
    ((x as f64) * u) as u128
}

fn nanos_to_duration(n: u128) -> Duration {
    let secs = u64::try_from(n / 1_000_000_000).unwrap_or(u64::MAX);
    Duration::new(secs, (n % 1_000_000_000) as u32)
}

/// splitmix64's increment, 2⁶⁴/φ: odd, and its multiples are spread over the whole range.
pub const GOLDEN_GAMMA: u64 = 0x9e37_79b9_7f4a_7c15;

/// splitmix64 (one step and its finaliser): a well-mixed 64-bit function of its input. The one
/// copy in the workspace's conductor crate: the ring, the unfair lock, the retry jitter, the
/// network's streams and the real load generator all hash with it.
pub fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(GOLDEN_GAMMA);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A uniform draw in [0, 1) keyed by (key, attempt): independent across keys and attempts.
fn unit(key: u64, attempt: u32) -> f64 {
    let h = splitmix64(splitmix64(key) ^ u64::from(attempt).wrapping_mul(0xd6e8_feb8_6659_fd93));
    (h >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(backoff: Backoff) -> RetryPolicy {
        RetryPolicy {
            backoff,
            base: Duration::from_millis(100),
            cap: Duration::from_secs(10),
            max_attempts: 8,
        }
    }

    const MS: fn(u64) -> Duration = Duration::from_millis;

    #[test]
    fn first_attempt_goes_at_once() {
        for b in [Backoff::None, Backoff::Fixed, Backoff::FullJitter] {
            assert_eq!(p(b).delay(1, Duration::ZERO, 7), Some(Duration::ZERO));
        }
    }

    #[test]
    fn gives_up() {
        assert_eq!(p(Backoff::None).delay(2, Duration::ZERO, 1), None);
        assert_eq!(p(Backoff::Fixed).delay(8, Duration::ZERO, 1), Some(MS(100)));
        assert_eq!(p(Backoff::Fixed).delay(9, Duration::ZERO, 1), None);
        let once = RetryPolicy {
            max_attempts: 1,
            ..p(Backoff::Exponential)
        };
        assert_eq!(once.delay(2, Duration::ZERO, 1), None);
    }

    #[test]
    fn exponential_doubles_then_caps() {
        let e = p(Backoff::Exponential);
        let d: Vec<_> = (2..=8)
            .map(|n| e.delay(n, Duration::ZERO, 3).unwrap())
            .collect();
        assert_eq!(
            d,
            [100, 200, 400, 800, 1600, 3200, 6400].map(MS).to_vec(),
            "base·2^(n−1)"
        );
        let big = RetryPolicy {
            max_attempts: 100,
            ..e
        };
        assert_eq!(
            big.delay(100, Duration::ZERO, 3),
            Some(Duration::from_secs(10))
        );
    }

    #[test]
    fn jitter_bounds() {
        for key in 0..2000u64 {
            for n in 2..=8 {
                let e = p(Backoff::Exponential)
                    .delay(n, Duration::ZERO, key)
                    .unwrap();
                let full = p(Backoff::FullJitter)
                    .delay(n, Duration::ZERO, key)
                    .unwrap();
                assert!(full <= e);
                let eq = p(Backoff::EqualJitter)
                    .delay(n, Duration::ZERO, key)
                    .unwrap();
                assert!(eq >= e / 2 && eq <= e, "{eq:?} vs {e:?}");
                let prev = MS(1 + key % 5000);
                let dec = p(Backoff::Decorrelated).delay(n, prev, key).unwrap();
                let hi = (prev * 3).max(MS(100));
                assert!(dec >= MS(100) && dec <= hi.min(Duration::from_secs(10)));
            }
        }
    }

    #[test]
    fn full_jitter_is_uniform() {
        // Mean of U(0, 100 ms) over many keys ≈ 50 ms.
        let n = 20_000u64;
        let sum: f64 = (0..n)
            .map(|k| {
                p(Backoff::FullJitter)
                    .delay(2, Duration::ZERO, k)
                    .unwrap()
                    .as_secs_f64()
            })
            .sum();
        let mean = sum / n as f64;
        assert!((mean - 0.05).abs() < 0.001, "mean {mean}");
    }

    #[test]
    fn deterministic_and_keyed() {
        let f = p(Backoff::FullJitter);
        assert_eq!(
            f.delay(3, Duration::ZERO, 42),
            f.delay(3, Duration::ZERO, 42)
        );
        assert_ne!(
            f.delay(3, Duration::ZERO, 42),
            f.delay(3, Duration::ZERO, 43)
        );
        assert_ne!(
            f.delay(3, Duration::ZERO, 42),
            f.delay(4, Duration::ZERO, 42)
        );
    }

    #[test]
    fn decorrelated_grows_from_prev() {
        let d = p(Backoff::Decorrelated);
        let mut prev = Duration::ZERO;
        let mut seen_large = false;
        for n in 2..=8 {
            prev = d.delay(n, prev, 11).unwrap();
            seen_large |= prev > MS(300);
        }
        assert!(seen_large, "should grow past 3·base in 7 retries");
    }
}
