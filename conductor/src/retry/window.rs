//! Finagle's `WindowedAdder`: a sum over a sliding time window, kept as a fixed number of
//! slices, so that what was added more than one window ago no longer counts. Integers only:
//! the same events give the same sums in every run.

/// Slices a window is cut into (Finagle's budgets use 10).
pub const SLICES: usize = 10;

/// A sum over the last `SLICES` slices of `slice_us` each (the current one included).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowedAdder {
    slice_us: u64,
    /// Sums per slice, indexed by slice number modulo `SLICES`.
    slices: [i64; SLICES],
    /// The slice number (time / `slice_us`) `slices` was last advanced to.
    current: u64,
}

impl WindowedAdder {
    /// An empty adder over a window of `window_us` (at least `SLICES` µs).
    pub fn new(window_us: u64) -> Self {
        WindowedAdder {
            slice_us: (window_us / SLICES as u64).max(1),
            slices: [0; SLICES],
            current: 0,
        }
    }

    /// Forgets the slices that left the window by `now_us` (time never goes back; if it did,
    /// the current slice is reused).
    fn advance(&mut self, now_us: u64) {
        let slice = now_us / self.slice_us;
        if slice <= self.current {
            return;
        }
        let gap = slice - self.current;
        if gap >= SLICES as u64 {
            self.slices = [0; SLICES];
        } else {
            for s in self.current + 1..=slice {
                self.slices[(s % SLICES as u64) as usize] = 0;
            }
        }
        self.current = slice;
    }

    /// Adds `x` (negative to take away) at `now_us`.
    pub fn add(&mut self, now_us: u64, x: i64) {
        self.advance(now_us);
        let i = (self.current % SLICES as u64) as usize;
        self.slices[i] = self.slices[i].saturating_add(x);
    }

    /// The sum of what was added within the window ending at `now_us`.
    pub fn sum(&mut self, now_us: u64) -> i64 {
        self.advance(now_us);
        self.slices.iter().fold(0i64, |a, &x| a.saturating_add(x))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adds_expire_with_the_window() {
        let mut w = WindowedAdder::new(10_000_000);
        w.add(0, 5);
        w.add(4_500_000, 3);
        assert_eq!(w.sum(9_999_999), 8);
        // The first slice [0, 1 s) leaves the window at 10 s.
        assert_eq!(w.sum(10_000_000), 3);
        // The slice of 4.5 s, [4 s, 5 s), leaves at 14 s.
        assert_eq!(w.sum(13_999_999), 3);
        assert_eq!(w.sum(14_000_000), 0);
        w.add(100_000_000, -2);
        assert_eq!(w.sum(100_000_000), -2);
    }
}
