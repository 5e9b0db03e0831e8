//! `partition`: nodes in different groups cannot reach each other.

use super::{length, names, Draw, FaultWorld, Spec, Step};
use crate::node::Node;
use crate::parse::{array, Nodes, Tb, R};
use rand::seq::SliceRandom;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use std::collections::HashSet;
use std::time::Duration;

/// Nodes in different groups cannot reach each other. TOML:
/// `groups = [["conductor-1"], ["bus", "store"]]`, `oneway = false`, `duration = "30s"`.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Partition {
    /// At least two non-empty groups; each node in at most one.
    pub groups: Vec<Vec<Node>>,
    /// Cut traffic in one direction only (default false).
    pub oneway: bool,
    /// How long it lasts (> 0).
    #[serde(with = "crate::ser::dur")]
    pub duration: Duration,
}

impl Partition {
    /// The links it cuts: between nodes of different groups; with `oneway`, only from an
    /// earlier group to a later one (connections still fail both ways, as TCP's handshake
    /// needs both directions).
    fn links(&self) -> Vec<(Node, Node)> {
        let mut out = Vec::new();
        for (i, gi) in self.groups.iter().enumerate() {
            for gj in self.groups.iter().skip(i + 1) {
                for &a in gi {
                    for &b in gj {
                        out.push((a, b));
                        if !self.oneway {
                            out.push((b, a));
                        }
                    }
                }
            }
        }
        out
    }
}

impl Spec for Partition {
    const NAME: &'static str = "partition";
    const KEYS: &'static [&'static str] = &["groups", "oneway", "duration"];

    fn parse(t: &Tb, nodes: &Nodes) -> R<Self> {
        let cx = t.cx;
        let gkey = t.key("groups");
        let groups_v = array(cx, &gkey, t.req("groups")?, "arrays of node names")?;
        if groups_v.len() < 2 {
            return Err(cx.invalid(
                &gkey,
                format!("expected at least 2 groups, got {}", groups_v.len()),
            ));
        }
        let mut seen: HashSet<Node> = HashSet::new();
        let mut groups = Vec::with_capacity(groups_v.len());
        for (i, g) in groups_v.iter().enumerate() {
            let k = format!("{gkey}[{i}]");
            let members = nodes.list(cx, &k, g)?;
            if members.is_empty() {
                return Err(cx.invalid(&k, "expected a non-empty group of nodes"));
            }
            for m in &members {
                if !seen.insert(*m) {
                    return Err(cx.invalid(&k, format!("node `{m}` is in more than one group")));
                }
            }
            groups.push(members);
        }
        Ok(Partition {
            groups,
            oneway: t.bool("oneway", false)?,
            duration: length(t)?,
        })
    }

    /// A random non-empty part of the targets (at most half when there are several) against
    /// every other node of the world.
    fn draw(cx: &Draw, rng: &mut ChaCha8Rng) -> Option<Self> {
        let mut shuffled = cx.targets.to_vec();
        shuffled.shuffle(rng);
        let k = rng.gen_range(1..=(cx.targets.len() / 2).max(1));
        let side: Vec<Node> = shuffled[..k].to_vec();
        let rest: Vec<Node> = cx
            .nodes
            .iter()
            .filter(|x| !side.contains(x))
            .copied()
            .collect();
        if rest.is_empty() {
            return None;
        }
        Some(Partition {
            groups: vec![side, rest],
            oneway: false,
            duration: cx.len,
        })
    }

    fn lasts(&self) -> Option<Duration> {
        Some(self.duration)
    }

    fn apply(&self, world: &mut dyn FaultWorld, _index: usize, step: &Step) {
        let begin = matches!(step, Step::Begin);
        for (a, b) in self.links() {
            if begin {
                world.clog_link(a, b);
            } else {
                world.unclog_link(a, b);
            }
        }
    }

    fn label(&self) -> String {
        let groups: Vec<String> = self.groups.iter().map(|g| names(g)).collect();
        format!(
            "partition{} {}",
            if self.oneway { " (one way)" } else { "" },
            groups.join(" | ")
        )
    }
}
