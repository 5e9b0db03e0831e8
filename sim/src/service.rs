//! Service times and failures at the hosts, drawn per op from keyed streams.

use crate::rng::{keyed_uniform, Purpose};
use crate::scenario::{Backend, Dist};
use conductor::host::HostModel;
use conductor::op::OpKind;
use conductor::proto::HostCmd;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

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
    };
    // Capped at 30 days so that a far tail cannot overflow the simulated clock.
    Duration::from_secs_f64(secs.clamp(0.0, 30.0 * 86_400.0))
}

/// The hosts' model of the backend: per-op service-time distributions and a failure rate, keyed
/// by the op's id and attempt (common random numbers across configurations).
pub struct Backends {
    seed: u64,
    by_op: Vec<Dist>,
    failure_rate: f64,
}

impl Backends {
    /// The backend of a scenario, for the run with `seed`.
    pub fn new(seed: u64, backend: &Backend) -> Self {
        Backends {
            seed,
            by_op: OpKind::ALL
                .iter()
                .map(|k| backend.dist(*k).clone())
                .collect(),
            failure_rate: backend.failure_rate,
        }
    }

    fn key(cmd: &HostCmd) -> u64 {
        cmd.op.id.wrapping_mul(1 << 8) ^ u64::from(cmd.attempt)
    }
}

impl HostModel for Backends {
    fn service_time(&self, _host: u32, cmd: &HostCmd) -> Duration {
        let key = Self::key(cmd);
        sample(&self.by_op[cmd.op.kind.index()], |k| {
            keyed_uniform(self.seed, Purpose::Service, key, k)
        })
    }

    fn fails(&self, _host: u32, cmd: &HostCmd) -> bool {
        self.failure_rate > 0.0
            && keyed_uniform(self.seed, Purpose::Failure, Self::key(cmd), 0) < self.failure_rate
    }

    fn sleep(&self, d: Duration) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        let at = madsim::time::TimeHandle::current().now_instant() + d;
        Box::pin(crate::world::exact_sleep(at))
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
}
