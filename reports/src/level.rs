//! Time-weighted levels: the time average of a piecewise-constant quantity.

/// A piecewise-constant level (busy pool workers, busy RPC slots, …) integrated over time.
///
/// The level changes only through [`set`](Level::set) and [`add`](Level::add), each at a
/// simulated time in microseconds. Statistics cover the window from `from_us` (the end of the
/// warm-up) to the last time seen, normally the one given to [`finish`](Level::finish); before
/// `from_us` the value is tracked but nothing is counted. A `Level` built with
/// [`with_full`](Level::with_full) also measures how long the level was at or above a
/// threshold (the pool's capacity: the time the pool was full).
///
/// Integrals are exact (`u128` of value × µs); memory is constant. Times must not go
/// backwards: an earlier time than the last one is treated as the last one.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Level {
    from_us: u64,
    last_us: u64,
    value: u32,
    threshold: Option<u32>,
    area: u128,
    full_us: u64,
}

impl Level {
    /// A level at 0 whose statistics start at `from_us`, with no "full" threshold.
    pub fn new(from_us: u64) -> Self {
        Level {
            from_us,
            last_us: 0,
            value: 0,
            threshold: None,
            area: 0,
            full_us: 0,
        }
    }

    /// A level at 0 whose statistics start at `from_us`, which also measures the time spent at
    /// a value `>= capacity` (see [`full_ratio`](Level::full_ratio)).
    pub fn with_full(from_us: u64, capacity: u32) -> Self {
        Level {
            threshold: Some(capacity),
            ..Level::new(from_us)
        }
    }

    /// The threshold given to [`with_full`](Level::with_full), if any.
    pub fn capacity(&self) -> Option<u32> {
        self.threshold
    }

    /// The start of the statistics window (µs).
    pub fn from_us(&self) -> u64 {
        self.from_us
    }

    /// The last time seen (µs): the end of the window once [`finish`](Level::finish) ran.
    pub fn last_us(&self) -> u64 {
        self.last_us
    }

    /// Sets the level to `value` at time `t_us`.
    pub fn set(&mut self, t_us: u64, value: u32) {
        self.advance(t_us);
        self.value = value;
    }

    /// Changes the level by `delta` at time `t_us`, saturating at 0 and `u32::MAX`.
    pub fn add(&mut self, t_us: u64, delta: i32) {
        self.advance(t_us);
        self.value = self.value.saturating_add_signed(delta);
    }

    /// The current value.
    pub fn value(&self) -> u32 {
        self.value
    }

    /// Closes the window at `end_us`: the current value counts up to that time. Calling it
    /// again with a later time extends the window.
    pub fn finish(&mut self, end_us: u64) {
        self.advance(end_us);
    }

    /// The length of the statistics window so far (µs): from `from_us` to the last time seen.
    pub fn window_us(&self) -> u64 {
        self.last_us.saturating_sub(self.from_us)
    }

    /// The time average of the level over the window (0 for an empty window).
    pub fn mean(&self) -> f64 {
        match self.window_us() {
            0 => 0.0,
            w => self.area as f64 / w as f64,
        }
    }

    /// Time (µs) within the window spent at a value `>=` the threshold (0 without one).
    pub fn time_at_or_above_us(&self) -> u64 {
        self.full_us
    }

    /// The fraction of the window spent at a value `>=` the threshold: the time the pool was
    /// full (0 without a threshold or for an empty window).
    pub fn full_ratio(&self) -> f64 {
        match self.window_us() {
            0 => 0.0,
            w => self.full_us as f64 / w as f64,
        }
    }

    /// Integrates the current value from the last time seen up to `t_us`, counting only the
    /// part after `from_us`.
    fn advance(&mut self, t_us: u64) {
        if t_us <= self.last_us {
            return;
        }
        let start = self.last_us.max(self.from_us);
        if t_us > start {
            let dt = t_us - start;
            self.area += u128::from(self.value) * u128::from(dt);
            if self.threshold.is_some_and(|c| self.value >= c) {
                self.full_us += dt;
            }
        }
        self.last_us = t_us;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_function_without_warmup() {
        // 0 on [0,10), 4 on [10,30), 1 on [30,40): area 80 + 10 = 90 over 40.
        let mut l = Level::new(0);
        l.set(10, 4);
        l.set(30, 1);
        l.finish(40);
        assert_eq!(l.value(), 1);
        assert_eq!(l.window_us(), 40);
        assert!((l.mean() - 90.0 / 40.0).abs() < 1e-12, "{}", l.mean());
        assert_eq!(l.full_ratio(), 0.0);
        assert_eq!(l.capacity(), None);
    }

    #[test]
    fn warmup_is_excluded_but_the_value_is_tracked() {
        // Warm-up until 100. Level 5 from 0, +3 at 50 (=8, still warm-up), -6 at 150 (=2),
        // finish at 200: counted 8 on [100,150) and 2 on [150,200) → (400 + 100) / 100 = 5.
        let mut l = Level::new(100);
        l.set(0, 5);
        l.add(50, 3);
        assert_eq!(l.value(), 8);
        l.add(150, -6);
        l.finish(200);
        assert_eq!(l.window_us(), 100);
        assert!((l.mean() - 5.0).abs() < 1e-12, "{}", l.mean());
    }

    #[test]
    fn full_ratio_counts_time_at_or_above_capacity() {
        // Capacity 3, warm-up until 10.
        // [0,20): 3 (full, but only [10,20) counts: 10 µs)
        // [20,50): 2 → not full
        // [50,70): 4 (over capacity counts as full: 20 µs)
        // [70,110): 3 (full: 40 µs) → 70 of 100 µs full.
        let mut l = Level::with_full(10, 3);
        l.set(0, 3);
        l.add(20, -1);
        l.add(50, 2);
        l.add(70, -1);
        l.finish(110);
        assert_eq!(l.capacity(), Some(3));
        assert_eq!(l.time_at_or_above_us(), 70);
        assert!((l.full_ratio() - 0.7).abs() < 1e-12, "{}", l.full_ratio());
        // mean: 3·10 + 2·30 + 4·20 + 3·40 = 290 over 100.
        assert!((l.mean() - 2.9).abs() < 1e-12, "{}", l.mean());
    }

    #[test]
    fn empty_window_and_edge_cases() {
        let mut l = Level::with_full(1_000, 2);
        l.set(10, 7);
        l.finish(500); // ends before the warm-up does
        assert_eq!(l.mean(), 0.0);
        assert_eq!(l.full_ratio(), 0.0);
        // Going below zero saturates; time going backwards changes the value, not the integral.
        l.add(600, -100);
        assert_eq!(l.value(), 0);
        l.set(400, 2);
        l.finish(2_000);
        assert_eq!(l.window_us(), 1_000);
        assert!((l.mean() - 2.0).abs() < 1e-12);
        assert!((l.full_ratio() - 1.0).abs() < 1e-12);
    }

    #[test]
    fn long_runs_do_not_overflow() {
        // 30 days of µs at u32::MAX.
        let mut l = Level::new(0);
        l.set(0, u32::MAX);
        l.finish(30 * 86_400 * 1_000_000);
        assert!((l.mean() - f64::from(u32::MAX)).abs() < 1.0);
    }
}
