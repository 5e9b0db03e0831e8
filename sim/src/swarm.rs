//! Swarm testing (Groce et al., "Swarm Testing", ISSTA 2012): with `[nemesis] swarm = true`
//! each seed runs its own fault mix — a random non-empty subset of the nemesis's kinds and of
//! its targets, and random intensities — instead of every kind against every target at the
//! configured rate. A mix that leaves kills out lets partitions run long enough to matter; one
//! that targets a single conductor lets its faults pile up; rare failures that the full mix
//! masks (one fault healing what another would have exposed) show up on some seeds.
//!
//! The mix is drawn first from the nemesis's own stream, so it depends on the seed alone and
//! the rest of the nemesis's draws follow from it as before.

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use scenario::fault::Kind;
use scenario::{Nemesis, Node};
use std::time::Duration;

/// The smallest and largest factor an intensity draw scales a mean by (log-uniform between).
pub const INTENSITY: (f64, f64) = (0.25, 4.0);

/// One seed's fault mix.
#[derive(Debug, Clone, PartialEq)]
pub struct Mix {
    /// The kinds drawn from, in the nemesis's order.
    pub kinds: Vec<Kind>,
    /// The targets acted on, in the nemesis's order.
    pub targets: Vec<Node>,
    /// Mean time between faults.
    pub mean_interval: Duration,
    /// Mean length of a fault.
    pub mean_duration: Duration,
}

impl Mix {
    /// The nemesis as configured: every kind, every target, its means (no swarm).
    pub fn whole(n: &Nemesis, targets: &[Node]) -> Mix {
        Mix {
            kinds: n.kinds.clone(),
            targets: targets.to_vec(),
            mean_interval: n.mean_interval,
            mean_duration: n.mean_duration,
        }
    }
}

/// Keeps each item with probability ½; an empty draw keeps one item, uniformly.
fn subset<T: Copy>(items: &[T], rng: &mut ChaCha8Rng) -> Vec<T> {
    let mut out: Vec<T> = items
        .iter()
        .copied()
        .filter(|_| rng.gen_bool(0.5))
        .collect();
    if out.is_empty() && !items.is_empty() {
        out.push(items[rng.gen_range(0..items.len())]);
    }
    out
}

/// A log-uniform factor in [`INTENSITY`].
fn intensity(rng: &mut ChaCha8Rng) -> f64 {
    let (lo, hi) = (INTENSITY.0.ln(), INTENSITY.1.ln());
    rng.gen_range(lo..hi).exp()
}

/// Scales a duration, staying at least 1 ms (the nemesis's resolution).
fn scale(d: Duration, f: f64) -> Duration {
    Duration::from_secs_f64((d.as_secs_f64() * f).max(1e-3))
}

/// Draws a seed's mix from the nemesis's stream: kinds and targets each kept with probability
/// ½ (at least one of each), both means scaled by independent log-uniform factors in
/// [`INTENSITY`]. A kind that needs a host keeps one of the targets' hosts (the parser made
/// sure the targets have one).
pub fn draw(n: &Nemesis, targets: &[Node], rng: &mut ChaCha8Rng) -> Mix {
    let kinds = subset(&n.kinds, rng);
    let mut chosen = subset(targets, rng);
    let hosts: Vec<Node> = targets.iter().copied().filter(Node::is_host).collect();
    let needs_host = kinds.iter().any(|k| k.needs_host());
    if needs_host && !chosen.iter().any(Node::is_host) && !hosts.is_empty() {
        let h = hosts[rng.gen_range(0..hosts.len())];
        chosen.push(h);
        // Back in the nemesis's order.
        chosen.sort_by_key(|c| targets.iter().position(|t| t == c));
    }
    Mix {
        kinds,
        targets: chosen,
        mean_interval: scale(n.mean_interval, intensity(rng)),
        mean_duration: scale(n.mean_duration, intensity(rng)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn nemesis() -> Nemesis {
        Nemesis {
            kinds: vec![Kind::Partition, Kind::Kill, Kind::SlowHost],
            targets: vec![],
            mean_interval: Duration::from_secs(60),
            mean_duration: Duration::from_secs(10),
            swarm: true,
        }
    }

    #[test]
    fn mixes_vary_by_seed_and_stay_valid() {
        let n = nemesis();
        let targets = [Node::Conductor(0), Node::Conductor(1), Node::Host(0)];
        let mut seen = std::collections::BTreeSet::new();
        for seed in 0..200u64 {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let m = draw(&n, &targets, &mut rng);
            assert!(!m.kinds.is_empty() && !m.targets.is_empty(), "{m:?}");
            if m.kinds.contains(&Kind::SlowHost) {
                assert!(m.targets.iter().any(Node::is_host), "{m:?}");
            }
            let f = m.mean_interval.as_secs_f64() / 60.0;
            assert!((0.25..=4.0).contains(&f), "{f}");
            // Same seed, same mix.
            let mut again = ChaCha8Rng::seed_from_u64(seed);
            assert_eq!(draw(&n, &targets, &mut again), m);
            seen.insert(format!("{:?}{:?}", m.kinds, m.targets));
        }
        // Many different mixes, not one.
        assert!(seen.len() > 10, "{}", seen.len());
        assert_eq!(Mix::whole(&n, &targets).kinds.len(), 3);
    }
}
