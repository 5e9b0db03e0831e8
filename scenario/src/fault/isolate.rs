//! `isolate`: one node against the rest.

use super::{length, node, Draw, FaultWorld, Spec, Step};
use crate::node::Node;
use crate::parse::{Nodes, Tb, R};
use rand_chacha::ChaCha8Rng;
use std::time::Duration;

/// One node against the rest: cut off in both directions. TOML: `node = "store"`,
/// `duration = "30s"`.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Isolate {
    /// The node.
    pub node: Node,
    /// How long it lasts (> 0).
    #[serde(with = "crate::ser::dur")]
    pub duration: Duration,
}

impl Spec for Isolate {
    const NAME: &'static str = "isolate";
    const KEYS: &'static [&'static str] = &["node", "duration"];

    fn parse(t: &Tb, nodes: &Nodes) -> R<Self> {
        Ok(Isolate {
            node: node(t, nodes)?,
            duration: length(t)?,
        })
    }

    /// One target.
    fn draw(cx: &Draw, rng: &mut ChaCha8Rng) -> Option<Self> {
        Some(Isolate {
            node: cx.one(rng),
            duration: cx.len,
        })
    }

    fn lasts(&self) -> Option<Duration> {
        Some(self.duration)
    }

    fn apply(&self, world: &mut dyn FaultWorld, _index: usize, step: &Step) {
        if matches!(step, Step::Begin) {
            world.clog_node(self.node);
        } else {
            world.unclog_node(self.node);
        }
    }

    fn label(&self) -> String {
        format!("{} {}", Self::NAME, self.node)
    }
}
