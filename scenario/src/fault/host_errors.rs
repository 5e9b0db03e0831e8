//! `host-errors`: a host fails ops at `rate`.

use super::{host, length, Draw, FaultWorld, Spec, Step};
use crate::node::Node;
use crate::parse::{Nodes, Tb, F, R};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use std::time::Duration;

/// A host fails ops at `rate` (on top of `backend.failure_rate`). TOML: `node = "host-1"`,
/// `rate = 0.5`, `duration = "10m"`.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct HostErrors {
    /// The host (`host-N`).
    pub node: Node,
    /// Failure probability in [0, 1].
    pub rate: f64,
    /// How long it lasts (> 0).
    #[serde(with = "crate::ser::dur")]
    pub duration: Duration,
}

impl Spec for HostErrors {
    const NAME: &'static str = "host-errors";
    const KEYS: &'static [&'static str] = &["node", "rate", "duration"];
    const NEEDS_HOST: bool = true;

    fn parse(t: &Tb, nodes: &Nodes) -> R<Self> {
        Ok(HostErrors {
            node: host(t, nodes)?,
            rate: t.req_f64("rate", F::Unit)?,
            duration: length(t)?,
        })
    }

    /// One host of the targets, failing between 10% and 90% of ops, to two decimals.
    fn draw(cx: &Draw, rng: &mut ChaCha8Rng) -> Option<Self> {
        if cx.hosts.is_empty() {
            return None;
        }
        Some(HostErrors {
            node: cx.hosts[rng.gen_range(0..cx.hosts.len())],
            rate: (rng.gen_range(0.1..0.9f64) * 100.0).round() / 100.0,
            duration: cx.len,
        })
    }

    fn lasts(&self) -> Option<Duration> {
        Some(self.duration)
    }

    fn apply(&self, world: &mut dyn FaultWorld, index: usize, step: &Step) {
        if let Node::Host(h) = self.node {
            let rate = matches!(step, Step::Begin).then_some(self.rate);
            world.host_errors(index, h, rate);
        }
    }

    fn label(&self) -> String {
        format!("host-errors {} {:.0}%", self.node, self.rate * 100.0)
    }
}
