//! The hosts' model of the backend: service times and failures, drawn per op from keyed
//! streams (common random numbers), with the fault injector's per-host overrides.
//!
//! Plain code: how a service time is slept is the runtime's business, so the sleep is handed
//! in ([`Sleep`]) — simulated time under madsim, wall-clock time in the real host.

use crate::rng::{keyed_uniform, Purpose};
use crate::{Backend, Dist};
use conductor::host::HostModel;
use conductor::op::OpKind;
use conductor::proto::HostCmd;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Per-host overrides set by the fault injector (`slow-host`, `host-errors`) and read by
/// [`Backends`] on every op. Atomics: one relaxed load per op when no fault is in force.
pub struct HostFaults {
    /// Whether any override is in force (the common case skips the per-host loads).
    any: AtomicBool,
    /// Per host: the service-time factor, as f64 bits (1.0 = none).
    factor: Vec<AtomicU64>,
    /// Per host: the extra failure probability, as f64 bits (0.0 = none).
    rate: Vec<AtomicU64>,
}

impl HostFaults {
    /// No overrides, for `hosts` hosts.
    pub fn new(hosts: u32) -> Self {
        HostFaults {
            any: AtomicBool::new(false),
            factor: (0..hosts).map(|_| AtomicU64::new(1f64.to_bits())).collect(),
            rate: (0..hosts).map(|_| AtomicU64::new(0f64.to_bits())).collect(),
        }
    }

    /// Host `host`'s service times × `factor`, and it fails an extra `rate` of its ops.
    pub fn set(&self, host: u32, factor: f64, rate: f64) {
        if let (Some(f), Some(r)) = (self.factor.get(host as usize), self.rate.get(host as usize)) {
            f.store(factor.to_bits(), Ordering::Relaxed);
            r.store(rate.to_bits(), Ordering::Relaxed);
            self.any.store(true, Ordering::Relaxed);
        }
    }

    /// Lifts every override.
    pub fn clear(&self) {
        for f in &self.factor {
            f.store(1f64.to_bits(), Ordering::Relaxed);
        }
        for r in &self.rate {
            r.store(0f64.to_bits(), Ordering::Relaxed);
        }
        self.any.store(false, Ordering::Relaxed);
    }

    /// Host `host`'s (factor, extra failure rate).
    fn get(&self, host: u32) -> (f64, f64) {
        if !self.any.load(Ordering::Relaxed) {
            return (1.0, 0.0);
        }
        let load = |v: &Vec<AtomicU64>, d: f64| {
            v.get(host as usize)
                .map_or(d, |a| f64::from_bits(a.load(Ordering::Relaxed)))
        };
        (load(&self.factor, 1.0), load(&self.rate, 0.0))
    }
}

/// Draws a duration from `dist` with the uniforms `u(0)`, `u(1)`, … .
pub fn sample(dist: &Dist, u: impl Fn(u64) -> f64) -> Duration {
    let secs = match dist {
        Dist::Exp { mean } => -mean.as_secs_f64() * (1.0 - u(0)).ln(),
        Dist::Constant { value } => return *value,
        Dist::Uniform { min, max } => {
            min.as_secs_f64() + (max.as_secs_f64() - min.as_secs_f64()) * u(0)
        }
        Dist::Lognormal { median, .. } => {
            // Box–Muller: one standard normal from two uniforms.
            let z = (-2.0 * u(0).ln()).sqrt() * (std::f64::consts::TAU * u(1)).cos();
            median.as_secs_f64() * (dist.lognormal_sigma() * z).exp()
        }
        Dist::Empirical { samples } => {
            let i = ((u(0) * samples.len() as f64) as usize).min(samples.len().saturating_sub(1));
            return samples.get(i).copied().unwrap_or_default();
        }
        Dist::Histogram { histogram } => histogram.quantile(u(0)),
    };
    // Capped at 30 days so that a far tail cannot overflow the simulated clock.
    Duration::from_secs_f64(secs.clamp(0.0, 30.0 * 86_400.0))
}

/// How the host sleeps for a service time: the runtime's timer.
pub type Sleep = Arc<dyn Fn(Duration) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

/// The hosts' model of the backend: per-op service-time distributions and a failure rate, keyed
/// by the op's id and attempt (common random numbers across configurations).
pub struct Backends {
    seed: u64,
    by_op: Vec<Dist>,
    failure_rate: f64,
    faults: Arc<HostFaults>,
    sleep: Sleep,
}

impl Backends {
    /// The backend of a scenario, for the run with `seed`, without faults, sleeping with
    /// `sleep`.
    pub fn new(seed: u64, backend: &Backend, sleep: Sleep) -> Self {
        Self::with_faults(seed, backend, Arc::new(HostFaults::new(0)), sleep)
    }

    /// The backend of a scenario, for the run with `seed`, with the fault injector's per-host
    /// overrides in `faults`, sleeping with `sleep`.
    pub fn with_faults(
        seed: u64,
        backend: &Backend,
        faults: Arc<HostFaults>,
        sleep: Sleep,
    ) -> Self {
        Backends {
            seed,
            by_op: OpKind::ALL
                .iter()
                .map(|k| backend.dist(*k).clone())
                .collect(),
            failure_rate: backend.failure_rate,
            faults,
            sleep,
        }
    }

    fn key(cmd: &HostCmd) -> u64 {
        cmd.op.id.wrapping_mul(1 << 8) ^ u64::from(cmd.attempt)
    }
}

impl HostModel for Backends {
    fn service_time(&self, host: u32, cmd: &HostCmd) -> Duration {
        let key = Self::key(cmd);
        let d = sample(&self.by_op[cmd.op.kind.index()], |k| {
            keyed_uniform(self.seed, Purpose::Service, key, k)
        });
        // A slow host scales the op's own draw: the same op is slower by exactly the factor.
        let f = self.faults.get(host).0;
        if f == 1.0 {
            d
        } else {
            Duration::from_secs_f64((d.as_secs_f64() * f).clamp(0.0, 30.0 * 86_400.0))
        }
    }

    fn fails(&self, host: u32, cmd: &HostCmd) -> bool {
        // Independent failure causes combine as 1 − (1 − base)(1 − extra); compared with the
        // op's one keyed draw, an op that fails without the fault fails with it too.
        let extra = self.faults.get(host).1;
        let rate = 1.0 - (1.0 - self.failure_rate) * (1.0 - extra);
        rate > 0.0 && keyed_uniform(self.seed, Purpose::Failure, Self::key(cmd), 0) < rate
    }

    fn sleep(&self, d: Duration) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        (self.sleep)(d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mean_of(d: &Dist) -> f64 {
        let n = 200_000u64;
        (0..n)
            .map(|i| sample(d, |k| keyed_uniform(3, Purpose::Service, i, k)).as_secs_f64())
            .sum::<f64>()
            / n as f64
    }

    #[test]
    fn sample_means_match() {
        let s = Duration::from_secs;
        for d in [
            Dist::Exp { mean: s(1) },
            Dist::Uniform {
                min: s(1),
                max: s(3),
            },
            Dist::Lognormal {
                median: Duration::from_millis(500),
                p99: s(4),
            },
        ] {
            let want = d.mean().as_secs_f64();
            let got = mean_of(&d);
            assert!((got - want).abs() / want < 0.02, "{d:?}: {got} vs {want}");
        }
    }

    #[test]
    fn host_faults_keep_each_ops_draws() {
        use conductor::proto::OpSpec;
        let backend = Backend {
            default: Dist::Exp {
                mean: Duration::from_secs(1),
            },
            per_op: Vec::new(),
            failure_rate: 0.1,
        };
        let faults = Arc::new(HostFaults::new(2));
        let no_sleep: Sleep = Arc::new(|_| Box::pin(async {}));
        let b = Backends::with_faults(9, &backend, faults.clone(), no_sleep);
        let cmd = |id| HostCmd {
            op: OpSpec {
                id,
                container: 1,
                kind: OpKind::Start,
                intended_us: 0,
                deadline: None,
            },
            seq: 1,
            attempt: 1,
            conductor: 0,
            token: 0,
        };
        let before: Vec<(Duration, bool)> = (0..2000)
            .map(|i| (b.service_time(0, &cmd(i)), b.fails(0, &cmd(i))))
            .collect();
        faults.set(0, 3.0, 0.5);
        let mut failed = 0;
        for (i, (d, f)) in before.iter().enumerate() {
            let c = cmd(i as u64);
            // The same op, exactly `factor` slower; it fails if it failed before (and more do).
            let slow = b.service_time(0, &c).as_secs_f64();
            assert!((slow - 3.0 * d.as_secs_f64()).abs() < 1e-6, "{i}");
            let now = b.fails(0, &c);
            assert!(!f || now, "{i}");
            failed += usize::from(now);
            // The other host is untouched.
            assert_eq!(b.service_time(1, &c), *d);
        }
        // 1 − 0.9 × 0.5 = 55% fail.
        let share = failed as f64 / 2000.0;
        assert!((share - 0.55).abs() < 0.045, "{share}");
        faults.clear();
        assert_eq!(b.service_time(0, &cmd(7)), before[7].0);
    }
}
