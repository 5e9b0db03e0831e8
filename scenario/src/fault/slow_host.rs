//! `slow-host`: a host's service times × `factor`.

use super::{host, length, Draw, FaultWorld, Spec, Step};
use crate::node::Node;
use crate::parse::{Nodes, Tb, F, R};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use std::time::Duration;

/// A host's service times × `factor` (a degraded disk, a noisy neighbour). TOML:
/// `node = "host-1"`, `factor = 5.0`, `duration = "10m"`.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct SlowHost {
    /// The host (`host-N`).
    pub node: Node,
    /// The factor (finite, > 0).
    pub factor: f64,
    /// How long it lasts (> 0).
    #[serde(with = "crate::ser::dur")]
    pub duration: Duration,
}

impl Spec for SlowHost {
    const NAME: &'static str = "slow-host";
    const KEYS: &'static [&'static str] = &["node", "factor", "duration"];
    const NEEDS_HOST: bool = true;

    fn parse(t: &Tb, nodes: &Nodes) -> R<Self> {
        Ok(SlowHost {
            node: host(t, nodes)?,
            factor: t.req_f64("factor", F::Pos)?,
            duration: length(t)?,
        })
    }

    /// One host of the targets, between 2× and 10× slower, to one decimal.
    fn draw(cx: &Draw, rng: &mut ChaCha8Rng) -> Option<Self> {
        if cx.hosts.is_empty() {
            return None;
        }
        Some(SlowHost {
            node: cx.hosts[rng.gen_range(0..cx.hosts.len())],
            factor: (rng.gen_range(2.0..10.0f64) * 10.0).round() / 10.0,
            duration: cx.len,
        })
    }

    fn lasts(&self) -> Option<Duration> {
        Some(self.duration)
    }

    fn apply(&self, world: &mut dyn FaultWorld, index: usize, step: &Step) {
        if let Node::Host(h) = self.node {
            let factor = matches!(step, Step::Begin).then_some(self.factor);
            world.slow_host(index, h, factor);
        }
    }

    fn label(&self) -> String {
        let factor = format!("{:.3}", self.factor);
        format!(
            "slow-host {} x{}",
            self.node,
            factor.trim_end_matches('0').trim_end_matches('.')
        )
    }
}
