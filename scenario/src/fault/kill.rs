//! `kill`: the process dies, losing memory; durable state stays.

use super::{node, Draw, FaultWorld, Spec, Step};
use crate::node::Node;
use crate::parse::{Nodes, Tb, D, R};
use rand_chacha::ChaCha8Rng;
use std::time::Duration;

/// The process dies, losing memory; durable state (the store's, the hosts' truths) stays.
/// TOML: `node = "conductor-1"`, optionally `restart_after = "30s"`.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Kill {
    /// The node.
    pub node: Node,
    /// When it restarts after the kill; `None`: down until the heal at the end of
    /// `duration`.
    #[serde(
        with = "crate::ser::opt_dur",
        skip_serializing_if = "Option::is_none"
    )]
    pub restart_after: Option<Duration>,
}

impl Spec for Kill {
    const NAME: &'static str = "kill";
    const KEYS: &'static [&'static str] = &["node", "restart_after"];

    fn parse(t: &Tb, nodes: &Nodes) -> R<Self> {
        Ok(Kill {
            node: node(t, nodes)?,
            restart_after: t.opt_dur("restart_after", D::Any)?,
        })
    }

    /// One target, restarted after the drawn length.
    fn draw(cx: &Draw, rng: &mut ChaCha8Rng) -> Option<Self> {
        Some(Kill {
            node: cx.one(rng),
            restart_after: Some(cx.len),
        })
    }

    fn lasts(&self) -> Option<Duration> {
        self.restart_after
    }

    fn apply(&self, world: &mut dyn FaultWorld, _index: usize, step: &Step) {
        if matches!(step, Step::Begin) {
            world.kill(self.node);
        } else {
            world.restart(self.node);
        }
    }

    fn label(&self) -> String {
        match self.restart_after {
            None => format!("kill {} (no restart)", self.node),
            Some(_) => format!("kill {}", self.node),
        }
    }
}
