//! `pause`: the process stops running but keeps its state and sockets.

use super::{length, node, Draw, FaultWorld, Spec, Step};
use crate::node::Node;
use crate::parse::{Nodes, Tb, R};
use rand_chacha::ChaCha8Rng;
use std::time::Duration;

/// The process stops running but keeps its state and sockets (a long GC pause, a stopped VM).
/// TOML: `node = "bus"`, `duration = "30s"`.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Pause {
    /// The node.
    pub node: Node,
    /// How long it lasts (> 0).
    #[serde(with = "crate::ser::dur")]
    pub duration: Duration,
}

impl Spec for Pause {
    const NAME: &'static str = "pause";
    const KEYS: &'static [&'static str] = &["node", "duration"];

    fn parse(t: &Tb, nodes: &Nodes) -> R<Self> {
        Ok(Pause {
            node: node(t, nodes)?,
            duration: length(t)?,
        })
    }

    /// One target.
    fn draw(cx: &Draw, rng: &mut ChaCha8Rng) -> Option<Self> {
        Some(Pause {
            node: cx.one(rng),
            duration: cx.len,
        })
    }

    fn lasts(&self) -> Option<Duration> {
        Some(self.duration)
    }

    fn apply(&self, world: &mut dyn FaultWorld, _index: usize, step: &Step) {
        if matches!(step, Step::Begin) {
            world.pause(self.node);
        } else {
            world.resume(self.node);
        }
    }

    fn label(&self) -> String {
        format!("{} {}", Self::NAME, self.node)
    }
}
