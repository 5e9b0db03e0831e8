//! `clog`: FoundationDB's swizzle-clog.

use super::{length, micros, names, Draw, FaultWorld, Spec, Step};
use crate::node::Node;
use crate::parse::{Nodes, Tb, R};
use crate::rng::{stream, Purpose};
use rand::seq::SliceRandom;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use std::time::Duration;

/// Swizzle-clog: clog the nodes one by one over the first half of the fault, unclog them in a
/// random order over the second half. TOML: `nodes = ["conductor-1", "bus"]`,
/// `duration = "1m"`.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Clog {
    /// The nodes (at least one, no duplicates).
    pub nodes: Vec<Node>,
    /// How long it lasts (> 0).
    #[serde(with = "crate::ser::dur")]
    pub duration: Duration,
}

impl Spec for Clog {
    const NAME: &'static str = "clog";
    const KEYS: &'static [&'static str] = &["nodes", "duration"];

    fn parse(t: &Tb, nodes: &Nodes) -> R<Self> {
        let k = t.key("nodes");
        let list = nodes.list(t.cx, &k, t.req("nodes")?)?;
        if list.is_empty() {
            return Err(t.cx.invalid(&k, "expected at least one node"));
        }
        Ok(Clog {
            nodes: list,
            duration: length(t)?,
        })
    }

    /// A random non-empty part of the targets.
    fn draw(cx: &Draw, rng: &mut ChaCha8Rng) -> Option<Self> {
        let mut shuffled = cx.targets.to_vec();
        shuffled.shuffle(rng);
        let k = rng.gen_range(1..=cx.targets.len());
        Some(Clog {
            nodes: shuffled[..k].to_vec(),
            duration: cx.len,
        })
    }

    fn lasts(&self) -> Option<Duration> {
        Some(self.duration)
    }

    /// One slot of `duration / (2 × nodes)` per node: clogs in list order from the start,
    /// unclogs from half-way in an order drawn from the fault's own stream.
    fn steps(&self, at: u64, seed: u64, index: usize) -> Vec<(u64, Step)> {
        let d = micros(self.duration);
        let n = self.nodes.len().max(1) as u64;
        let slot = d / (2 * n);
        let mut v = Vec::with_capacity(2 * self.nodes.len());
        for (k, node) in self.nodes.iter().enumerate() {
            v.push((at + k as u64 * slot, Step::ClogOne(*node)));
        }
        let mut order = self.nodes.clone();
        let mut rng: ChaCha8Rng = stream(seed, Purpose::Faults, index as u64);
        order.shuffle(&mut rng);
        for (k, node) in order.iter().enumerate() {
            v.push((at + d / 2 + k as u64 * slot, Step::UnclogOne(*node)));
        }
        v
    }

    fn apply(&self, world: &mut dyn FaultWorld, _index: usize, step: &Step) {
        match step {
            Step::ClogOne(node) => world.clog_node(*node),
            Step::UnclogOne(node) => world.unclog_node(*node),
            Step::Begin | Step::End => {}
        }
    }

    fn label(&self) -> String {
        format!("clog {}", names(&self.nodes))
    }
}
