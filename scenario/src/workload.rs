//! The open-loop workload: when each request is meant to be sent, which container it acts on and
//! what it does. Each comes from its own keyed stream (common random numbers), generated ahead of
//! and independent of what the system does with the requests.

use crate::rng::{stream, Purpose};
use crate::{Arrival, Initial, Phase, Pick, Repeat, TraceData, Workload};
use conductor::op::{OpKind, Status, Truth};
use rand::distributions::{Distribution, WeightedIndex};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Exp1, Zipf};
use std::time::Duration;

/// The arrival process: intended send times in µs since the run's start.
pub struct Arrivals {
    kind: Arrival,
    rng: ChaCha8Rng,
    /// Current time in seconds (f64 keeps sub-µs gaps from accumulating rounding).
    t: f64,
    end: f64,
    /// Arrivals produced so far.
    count: u64,
    /// A trace's arrivals of the current interval (sorted), and the next interval's index.
    replay: Replay,
}

/// Where a trace's replay is.
#[derive(Default)]
struct Replay {
    /// The current interval's (or time's) arrivals, µs, in the order they are handed out
    /// (reversed: popped from the end).
    pending: Vec<u64>,
    /// The next record of the trace to expand.
    next: usize,
}

impl Arrivals {
    /// Arrivals of `kind` over `[0, duration)` for `seed`.
    pub fn new(kind: &Arrival, seed: u64, duration: Duration) -> Self {
        Self::on_stream(kind, seed, duration, 0)
    }

    /// Arrivals of `kind` over `[0, duration)` for `seed`, drawn from the arrivals stream
    /// `index` (0: the workload's `arrival`; 1: the `mixed` model's `ops_arrival`, a second
    /// process independent of the first).
    pub fn on_stream(kind: &Arrival, seed: u64, duration: Duration, index: u64) -> Self {
        Arrivals {
            kind: kind.clone(),
            rng: stream(seed, Purpose::Arrivals, index),
            t: 0.0,
            end: duration.as_secs_f64(),
            count: 0,
            replay: Replay::default(),
        }
    }

    /// The next arrival of a trace, µs, or `None` when it is over.
    fn replay(&mut self) -> Option<u64> {
        let Arrival::Trace(tr) = &self.kind else {
            return None;
        };
        let scale = tr.scale;
        loop {
            if let Some(t) = self.replay.pending.pop() {
                return Some(t);
            }
            let i = self.replay.next;
            self.replay.next += 1;
            // `scale` copies of each record: the whole part always, the fraction by a draw.
            let copies = |rng: &mut ChaCha8Rng, n: u64| -> u64 {
                let x = n as f64 * scale;
                let whole = x.floor();
                whole as u64 + u64::from(rng.gen::<f64>() < x - whole)
            };
            match &tr.data {
                TraceData::Empty => return None,
                TraceData::Times(v) => {
                    let &t = v.get(i)?;
                    let n = copies(&mut self.rng, 1);
                    self.replay
                        .pending
                        .extend(std::iter::repeat_n(t, n as usize));
                }
                TraceData::Counts(c) => {
                    let &(a, b, n) = c.get(i)?;
                    let n = copies(&mut self.rng, n);
                    // Spread uniformly over the interval by the arrivals stream, sorted.
                    let mut ts: Vec<u64> = (0..n).map(|_| self.rng.gen_range(a..b)).collect();
                    ts.sort_unstable_by(|x, y| y.cmp(x));
                    self.replay.pending = ts;
                }
            }
        }
    }

    fn exp1(&mut self) -> f64 {
        self.rng.sample(Exp1)
    }

    fn advance(&mut self) -> f64 {
        match self.kind {
            Arrival::Poisson { rate } => self.t + self.exp1() / rate,
            // The k-th arrival at k / rate: computed, not accumulated, so that rounding cannot
            // add or drop an arrival at the end.
            Arrival::Constant { rate } => self.count as f64 / rate,
            Arrival::Bursty {
                rate,
                burst_rate,
                on,
                off,
            } => {
                // Exact inversion of the piecewise-constant integrated rate: off first, then on.
                let (on, off) = (on.as_secs_f64(), off.as_secs_f64());
                let period = on + off;
                let mut need = self.exp1();
                let mut t = self.t;
                // Whole periods are skipped at once: with short periods and low rates a step per
                // period would take longer than the run.
                let per_period = rate * off + burst_rate * on;
                if per_period <= 0.0 {
                    return self.end;
                }
                if need > per_period {
                    let whole = (need / per_period).floor();
                    t += whole * period;
                    need -= whole * per_period;
                    if t >= self.end {
                        return t;
                    }
                }
                loop {
                    let phase = t % period;
                    let (r, left) = if phase < off {
                        (rate, off - phase)
                    } else {
                        (burst_rate, period - phase)
                    };
                    if r > 0.0 && r * left >= need {
                        break t + need / r;
                    }
                    need -= r * left;
                    t += left;
                    if t >= self.end {
                        break t;
                    }
                }
            }
            Arrival::Schedule { ref phases, repeat } => {
                // The field, not `exp1()`: `phases` borrows `self.kind`.
                let need: f64 = self.rng.sample(Exp1);
                schedule_advance(phases, repeat, self.t, need, self.end)
            }
            // Replayed in `next`.
            Arrival::Trace(_) => self.end,
            Arrival::Ramp { from, to } => {
                // Thinning (Lewis–Shedler) against the larger end rate.
                let max = from.max(to);
                let mut t = self.t;
                loop {
                    t += self.exp1() / max;
                    if t >= self.end {
                        break t;
                    }
                    let r = from + (to - from) * (t / self.end);
                    if self.rng.gen::<f64>() * max < r {
                        break t;
                    }
                }
            }
        }
    }
}

impl Iterator for Arrivals {
    type Item = u64;
    fn next(&mut self) -> Option<u64> {
        if matches!(self.kind, Arrival::Trace(_)) {
            let t = self.replay()?;
            if t as f64 >= self.end * 1e6 {
                return None;
            }
            self.count += 1;
            return Some(t);
        }
        let t = self.advance();
        if t >= self.end {
            return None;
        }
        self.t = t;
        self.count += 1;
        Some((t * 1e6) as u64)
    }
}

/// The time (s) at which the integrated rate of a schedule, from `t`, reaches `need`: the exact
/// inversion of a piecewise-constant rate, as for `bursty` (whole plays of the list are skipped
/// at once when `repeat` is `forever`). `end` or beyond when the load phase ends first.
fn schedule_advance(phases: &[Phase], repeat: Repeat, t: f64, mut need: f64, end: f64) -> f64 {
    let cycle: f64 = phases.iter().map(|p| p.length.as_secs_f64()).sum();
    let per_cycle: f64 = phases.iter().map(|p| p.rate * p.length.as_secs_f64()).sum();
    let last_rate = phases.last().map_or(0.0, |p| p.rate);
    let mut t = t;
    let played_out = |t: f64| match repeat {
        Repeat::Forever => false,
        Repeat::Times(n) => t >= cycle * f64::from(n),
    };
    loop {
        if t >= end {
            return t;
        }
        if cycle <= 0.0 || played_out(t) {
            // The last phase's rate holds to the end.
            return if last_rate > 0.0 {
                t + need / last_rate
            } else {
                end
            };
        }
        let k = (t / cycle).floor();
        // Find the phase `t` is in, and walk phase by phase.
        let mut pos = t - k * cycle;
        let mut start = k * cycle;
        for p in phases {
            let len = p.length.as_secs_f64();
            if pos >= len {
                pos -= len;
                start += len;
                continue;
            }
            let left = len - pos;
            if p.rate > 0.0 && p.rate * left >= need {
                return t + need / p.rate;
            }
            need -= p.rate * left;
            t += left;
            pos = 0.0;
            start += len;
            if t >= end {
                return t;
            }
        }
        // The end of a play (rounding may leave `t` a hair short of it): skip whole plays when
        // the need spans them.
        t = t.max(start);
        if repeat == Repeat::Forever && per_cycle > 0.0 && need > per_cycle {
            let whole = (need / per_cycle).floor();
            t += whole * cycle;
            need -= whole * per_cycle;
        }
    }
}

/// Which container and which op, per arrival.
pub struct Requests {
    picks: ChaCha8Rng,
    mix_rng: ChaCha8Rng,
    containers: u64,
    zipf: Option<Zipf<f64>>,
    kinds: Vec<OpKind>,
    mix: WeightedIndex<f64>,
}

impl Requests {
    /// The picks and mix of `w` for `seed`; `None` if the mix has no positive weight.
    pub fn new(w: &Workload, seed: u64) -> Option<Self> {
        let kinds: Vec<OpKind> = w.mix.iter().map(|(k, _)| *k).collect();
        let mix = WeightedIndex::new(w.mix.iter().map(|(_, x)| *x)).ok()?;
        let containers = u64::from(w.containers.max(1));
        let zipf = match w.pick {
            Pick::Uniform => None,
            Pick::Zipf { s } => Some(Zipf::new(containers, s).ok()?),
        };
        Some(Requests {
            picks: stream(seed, Purpose::Picks, 0),
            mix_rng: stream(seed, Purpose::Mix, 0),
            containers,
            zipf,
            kinds,
            mix,
        })
    }

    /// Draws the next request's container and op.
    pub fn draw(&mut self) -> (u64, OpKind) {
        let c = self.pick();
        (c, self.kinds[self.mix.sample(&mut self.mix_rng)])
    }

    /// Draws the next request's container.
    fn pick(&mut self) -> u64 {
        match &self.zipf {
            None => self.picks.gen_range(0..self.containers),
            Some(z) => (z.sample(&mut self.picks) as u64)
                .saturating_sub(1)
                .min(self.containers - 1),
        }
    }
}

/// The state pre-created container `id` starts in under `initial`: a low-discrepancy sequence
/// (the golden-ratio fractions of the ids), so that every run — simulated or real, any seed —
/// gives the same container the same state, the shares are met to within one container, and
/// each state is spread evenly over the ids (hence over the hosts and the Zipf ranks).
pub fn initial_status(initial: &Initial, id: u64) -> Status {
    const PHI_INV: f64 = 0.618_033_988_749_894_9;
    let u = ((id as f64 + 0.5) * PHI_INV).fract();
    let mut acc = 0.0;
    let mut last = Status::Running;
    for (status, share) in initial.shares() {
        if share <= 0.0 {
            continue;
        }
        acc += share;
        last = status;
        if u < acc {
            return status;
        }
    }
    // Rounding left the sum a hair under 1: the last state with a share.
    last
}

/// What the host holds for a container whose record is in `status` (pre-created containers).
pub fn truth_of(status: Status) -> Truth {
    match status {
        Status::Created => Truth::Created,
        Status::Stopped => Truth::Stopped,
        Status::Paused => Truth::Paused,
        _ => Truth::Running,
    }
}

/// Whether the `mixed` model sends `kind` to a container the client believes is in `status`:
/// Zun's table allows it and it does something (a blocking op reads; an async op other than
/// a reboot moves the container to another status — stopping a stopped container is allowed
/// but a no-op, and no operator sends it on purpose).
pub fn follows_state(kind: OpKind, status: Status) -> bool {
    kind.allowed_from(status)
        && (kind.is_blocking()
            || kind == OpKind::Reboot
            || kind.result_status().is_some_and(|s| s != status))
}

/// The `mixed` model's ops on pre-created containers: which container (as [`Requests`]) and
/// which op, drawn from the mix among the ops that follow the container's state as the client
/// last left it (the status its last op sent would leave; open loop, it never waits to know).
pub struct StatefulRequests {
    picks: Requests,
    mix_rng: ChaCha8Rng,
    mix: Vec<(OpKind, f64)>,
    state: Vec<Status>,
}

impl StatefulRequests {
    /// The `mixed` model's ops of `w` for `seed`; `None` if the mix has no positive weight.
    pub fn new(w: &Workload, seed: u64) -> Option<Self> {
        let picks = Requests::new(w, seed)?;
        let n = picks.containers;
        Some(StatefulRequests {
            picks,
            mix_rng: stream(seed, Purpose::Mix, 1),
            mix: w.mix.clone(),
            state: (0..n).map(|id| initial_status(&w.initial, id)).collect(),
        })
    }

    /// Draws the next request's container and op, and moves the container to the state the op
    /// would leave it in.
    pub fn draw(&mut self) -> (u64, OpKind) {
        let c = self.picks.pick();
        let status = self.state[c as usize];
        let u: f64 = self.mix_rng.gen();
        let allowed = |k: OpKind| follows_state(k, status);
        let total: f64 = self
            .mix
            .iter()
            .filter(|(k, _)| allowed(*k))
            .map(|(_, w)| w)
            .sum();
        // No op of the mix follows this state (`check` warns of such a mix): the op is drawn
        // from the whole mix, and the API will refuse it as a real one would.
        let everything = total <= 0.0;
        let total = if everything {
            self.mix.iter().map(|(_, w)| w).sum()
        } else {
            total
        };
        let mut x = u * total;
        let mut kind = self.mix[self.mix.len() - 1].0;
        for &(k, w) in &self.mix {
            if !everything && !allowed(k) {
                continue;
            }
            kind = k;
            if x < w {
                break;
            }
            x -= w;
        }
        if let Some(s) = kind.result_status() {
            if kind.allowed_from(status) {
                self.state[c as usize] = s;
            }
        }
        (c, kind)
    }
}

/// The statuses the `mixed` model's pre-created containers can reach (from the `initial`
/// shares, by the ops of the mix that follow each state) at which no op of the mix follows
/// the state: ops drawn there are refused. `check` warns of them.
pub fn dead_ends(w: &Workload) -> Vec<Status> {
    let mut seen: Vec<Status> = w
        .initial
        .shares()
        .iter()
        .filter(|(_, x)| *x > 0.0)
        .map(|(s, _)| *s)
        .collect();
    let mut i = 0;
    while i < seen.len() {
        let s = seen[i];
        for (k, _) in &w.mix {
            if follows_state(*k, s) {
                if let Some(next) = k.result_status() {
                    if !seen.contains(&next) {
                        seen.push(next);
                    }
                }
            }
        }
        i += 1;
    }
    seen.into_iter()
        .filter(|s| !w.mix.iter().any(|(k, _)| follows_state(*k, *s)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(a: Arrival, secs: u64) -> usize {
        Arrivals::new(&a, 1, Duration::from_secs(secs)).count()
    }

    #[test]
    fn rates_are_honoured() {
        let n = count(Arrival::Poisson { rate: 100.0 }, 1000);
        assert!((n as f64 - 100_000.0).abs() < 4.0 * 316.0, "{n}");
        assert_eq!(count(Arrival::Constant { rate: 10.0 }, 100), 1000);
        let b = count(
            Arrival::Bursty {
                rate: 10.0,
                burst_rate: 100.0,
                on: Duration::from_secs(1),
                off: Duration::from_secs(9),
            },
            1000,
        );
        assert!((b as f64 - 19_000.0).abs() < 4.0 * 138.0, "{b}");
        let r = count(
            Arrival::Ramp {
                from: 0.0,
                to: 200.0,
            },
            1000,
        );
        assert!((r as f64 - 100_000.0).abs() < 4.0 * 316.0, "{r}");
    }

    #[test]
    fn arrivals_are_ordered_and_bounded() {
        let v: Vec<u64> =
            Arrivals::new(&Arrival::Poisson { rate: 50.0 }, 3, Duration::from_secs(10)).collect();
        assert!(v.windows(2).all(|w| w[0] <= w[1]));
        assert!(v.iter().all(|&t| t < 10_000_000));
    }
}
