//! The fault kinds (`[[faults]] kind`, `[nemesis] kinds`): a registry with one file per kind.
//!
//! Each kind's file holds everything about it: its name, keys and doc, how its `[[faults]]`
//! entry is read and validated, how the nemesis draws one at random, the steps it takes over
//! time, how it applies and heals itself through the primitives of a [`FaultWorld`], and its
//! label in fault windows. The kinds are listed once, in the `registry!` invocation below, in
//! docs/scenario.md's order; [`Kind`] and [`FaultKind`] are generated from that list.
//!
//! Adding a kind: write its file (a struct implementing this module's `Spec` trait) and add
//! one line to the list.

use crate::node::Node;
use crate::parse::{Nodes, Tb, D, R};
use crate::Network;
use rand_chacha::ChaCha8Rng;
use std::fmt;
use std::time::Duration;

#[cfg(test)]
mod tests;
mod world;
pub use world::FaultWorld;

/// One `[[faults]]` entry. TOML: `kind = "kill"`, `at = "10m"`, then the kind's keys.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Fault {
    /// When it starts, from the start of the run (< `duration`).
    #[serde(with = "crate::ser::dur")]
    pub at: Duration,
    /// What it does.
    #[serde(flatten)]
    pub kind: FaultKind,
}

impl Fault {
    /// A fault of a recorded schedule (`SeedMetrics.faults`, the `[[faults]]` form that
    /// [`serde::Serialize`] writes), read back as the parser reads a `[[faults]]` entry; node
    /// names are not bounded by a cluster's size. `None` for an entry of another shape.
    pub fn from_recorded(v: &serde_json::Value) -> Option<Fault> {
        let v: toml::Value = serde_json::from_value(v.clone()).ok()?;
        crate::parse::recorded_fault(&v)
    }
}

/// One step of a fault's schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// The fault starts (every kind but `clog`, whose nodes clog one by one).
    Begin,
    /// The fault ends.
    End,
    /// A swizzle-clog clogs one more of its nodes.
    ClogOne(Node),
    /// A swizzle-clog unclogs one of its nodes.
    UnclogOne(Node),
}

/// A duration in whole microseconds (saturating), the unit of the injector's schedule.
pub fn micros(d: Duration) -> u64 {
    d.as_micros().min(u128::from(u64::MAX)) as u64
}

/// What the nemesis draws a fault against.
#[derive(Debug, Clone, Copy)]
pub struct Draw<'a> {
    /// The nemesis's targets (`[nemesis] targets`, else the conductors), at least one.
    pub targets: &'a [Node],
    /// The hosts among the targets, in target order.
    pub hosts: &'a [Node],
    /// Every node of the world, in name order.
    pub nodes: &'a [Node],
    /// The scenario's network (a `latency` fault scales its bound).
    pub network: &'a Network,
    /// How long the drawn fault lasts (already drawn).
    pub len: Duration,
}

impl Draw<'_> {
    /// One target, uniformly.
    pub fn one(&self, rng: &mut ChaCha8Rng) -> Node {
        use rand::Rng;
        self.targets[rng.gen_range(0..self.targets.len())]
    }
}

/// Node names as a label: up to three, then how many more.
pub(crate) fn names(list: &[Node]) -> String {
    let list: Vec<String> = list.iter().map(Node::to_string).collect();
    match list.len() {
        0..=3 => list.join(","),
        n => format!("{} +{} more", list[..2].join(","), n - 2),
    }
}

/// The `node` key of an entry.
pub(crate) fn node(t: &Tb, nodes: &Nodes) -> R<Node> {
    nodes.node(t.cx, &t.key("node"), t.req("node")?)
}

/// The `node` key of an entry, which must name a host.
pub(crate) fn host(t: &Tb, nodes: &Nodes) -> R<Node> {
    nodes.host(t.cx, &t.key("node"), t.req("node")?)
}

/// The `duration` key of an entry (> 0).
pub(crate) fn length(t: &Tb) -> R<Duration> {
    t.req_dur("duration", D::Pos)
}

/// One fault kind: what its file defines. The registry dispatches to it through [`Kind`] and
/// [`FaultKind`].
pub(crate) trait Spec: Sized {
    /// Its name in scenario files.
    const NAME: &'static str;
    /// The keys of its `[[faults]]` entry besides `kind` and `at`.
    const KEYS: &'static [&'static str];
    /// Whether the nemesis can draw it only against a host among its targets.
    const NEEDS_HOST: bool = false;

    /// Reads the entry's own keys (`t`'s keys are already checked against [`Self::KEYS`]).
    fn parse(t: &Tb, nodes: &Nodes) -> R<Self>;

    /// A random fault of this kind from the nemesis's stream, or `None` when none fits this
    /// world (the nemesis then draws the next interval).
    fn draw(cx: &Draw, rng: &mut ChaCha8Rng) -> Option<Self>;

    /// How long it lasts from its start; `None`: until the heal at the end of the load phase.
    fn lasts(&self) -> Option<Duration>;

    /// Its steps, at µs from the start of the run, for a fault starting at `at` (µs); `seed`
    /// and `index` (the fault's place in the schedule) key any stream of its own. By default:
    /// it begins at `at` and ends when [`Self::lasts`] says.
    fn steps(&self, at: u64, seed: u64, index: usize) -> Vec<(u64, Step)> {
        let _ = (seed, index);
        let mut v = vec![(at, Step::Begin)];
        if let Some(d) = self.lasts() {
            v.push((at.saturating_add(micros(d)), Step::End));
        }
        v
    }

    /// Takes `step` in `world`; `index` is the fault's place in the schedule (faults of one
    /// kind in force together are told apart by it).
    fn apply(&self, world: &mut dyn FaultWorld, index: usize, step: &Step);

    /// A short label for fault windows (`kill conductor-3`).
    fn label(&self) -> String;
}

/// Writes a fault's entry with its `kind` first: `{ kind = "kill", node = …, … }`.
#[derive(serde::Serialize)]
struct Tagged<'a, T> {
    kind: &'static str,
    #[serde(flatten)]
    fault: &'a T,
}

/// The registry: each line names a kind's file and its struct, in docs/scenario.md's order (the
/// order of [`Kind::ALL`] and of the kinds listed in messages).
macro_rules! registry {
    ($($file:ident :: $Type:ident,)*) => {
        $(mod $file;)*
        $(pub use $file::$Type;)*

        /// What a fault does, with its parameters (docs/scenario.md, `[[faults]]`). Node names are
        /// validated against the cluster.
        #[derive(Debug, Clone, PartialEq)]
        pub enum FaultKind {
            $(
                #[doc = concat!("See [`", stringify!($Type), "`].")]
                $Type($Type),
            )*
        }

        /// Which kind a fault is, without its parameters (`[nemesis] kinds`).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Kind {
            $(
                #[doc = concat!("See [`", stringify!($Type), "`].")]
                $Type,
            )*
        }

        impl Kind {
            /// Every kind, in the registry's order.
            pub const ALL: &'static [Kind] = &[$(Kind::$Type,)*];

            /// Its name in scenario files.
            pub fn name(self) -> &'static str {
                match self {
                    $(Kind::$Type => <$Type as Spec>::NAME,)*
                }
            }

            /// Whether the nemesis needs a host among its targets to draw it.
            pub fn needs_host(self) -> bool {
                match self {
                    $(Kind::$Type => <$Type as Spec>::NEEDS_HOST,)*
                }
            }

            /// The keys of its `[[faults]]` entry besides `kind` and `at`.
            pub(crate) fn keys(self) -> &'static [&'static str] {
                match self {
                    $(Kind::$Type => <$Type as Spec>::KEYS,)*
                }
            }

            /// Reads an entry of this kind.
            pub(crate) fn parse(self, t: &Tb, nodes: &Nodes) -> R<FaultKind> {
                match self {
                    $(Kind::$Type => <$Type as Spec>::parse(t, nodes).map(FaultKind::$Type),)*
                }
            }

            /// A random fault of this kind from the nemesis's stream (`None`: none fits).
            pub fn draw(self, cx: &Draw, rng: &mut ChaCha8Rng) -> Option<FaultKind> {
                match self {
                    $(Kind::$Type => <$Type as Spec>::draw(cx, rng).map(FaultKind::$Type),)*
                }
            }
        }

        impl FaultKind {
            /// Which kind it is.
            pub fn kind(&self) -> Kind {
                match self {
                    $(FaultKind::$Type(_) => Kind::$Type,)*
                }
            }

            /// How long it lasts from its start; `None`: until the heal at the end of the
            /// load phase (a kill without `restart_after`).
            pub fn lasts(&self) -> Option<Duration> {
                match self {
                    $(FaultKind::$Type(k) => k.lasts(),)*
                }
            }

            /// Its steps, at µs from the start of the run, for a fault starting at `at` (µs),
            /// the `index`th of the schedule of `seed`.
            pub fn steps(&self, at: u64, seed: u64, index: usize) -> Vec<(u64, Step)> {
                match self {
                    $(FaultKind::$Type(k) => k.steps(at, seed, index),)*
                }
            }

            /// Takes `step` of the `index`th fault of the schedule in `world`.
            pub fn apply(&self, world: &mut dyn FaultWorld, index: usize, step: &Step) {
                match self {
                    $(FaultKind::$Type(k) => k.apply(world, index, step),)*
                }
            }

            /// A short label for fault windows (`kill conductor-3`).
            pub fn label(&self) -> String {
                match self {
                    $(FaultKind::$Type(k) => k.label(),)*
                }
            }
        }

        impl serde::Serialize for FaultKind {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                match self {
                    $(FaultKind::$Type(fault) => Tagged {
                        kind: <$Type as Spec>::NAME,
                        fault,
                    }
                    .serialize(s),)*
                }
            }
        }
    };
}

registry! {
    partition::Partition,
    isolate::Isolate,
    kill::Kill,
    pause::Pause,
    clog::Clog,
    latency::Latency,
    slow_host::SlowHost,
    host_errors::HostErrors,
}

impl FaultKind {
    /// The kind's name as in scenario files.
    pub fn name(&self) -> &'static str {
        self.kind().name()
    }
}

/// The kinds are a keyword set: `[nemesis] kinds` and `[[faults]] kind` read them as the
/// scenario reads every keyword, with the same messages.
impl conductor::keyword::Keyword for Kind {
    const WHAT: &'static str = "a fault kind";
    const ALL: &'static [Kind] = Kind::ALL;
    fn name(self) -> &'static str {
        Kind::name(self)
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A kind serialises as its name (`[nemesis] kinds = ["kill"]`).
impl serde::Serialize for Kind {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}
