//! The registry of invariants: the nine of docs/design-matrix.md, one file each in this directory, listed once
//! below in the order of that table (the order of every report).
//!
//! Each file holds everything about its invariant: its [`Spec`] (name, short name, safety or
//! liveness, what it means, when it is judged and how it breaks) and its judging code (a
//! `Judge`: the state it keeps and the checker's hooks it overrides). The list generates
//! [`Invariant`], the checker's per-(container, host) state and the calls to every hook, so
//! adding an invariant is a new file here plus its line in the list.

mod judge;

pub(crate) use judge::Judge;
pub use judge::{Kind, Spec};

use crate::snapshot::Snapshot;
use crate::state::{HostOp, Life};
use crate::violation::Sink;
use crate::InvariantSet;
use conductor::recorder::Event;
use std::fmt;

/// Defines the registry from its list: `Variant => module` per invariant, `module.rs` holding
/// its `Rule: Judge`.
macro_rules! registry {
    ($($var:ident => $module:ident),+ $(,)?) => {
        $(pub mod $module;)+

        /// One of the nine invariants; each is described in its own file of
        /// [`invariants`](crate::invariants).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum Invariant {
            $(
                #[doc = concat!("See [`", stringify!($module), "`].")]
                $var,
            )+
        }

        impl Invariant {
            /// How many invariants there are.
            pub const COUNT: usize = [$(Invariant::$var),+].len();

            /// Every invariant, in the order of docs/design-matrix.md's table.
            pub const ALL: [Invariant; Invariant::COUNT] = [$(Invariant::$var),+];

            /// Its facts: name, short name, kind, doc.
            pub fn spec(self) -> Spec {
                match self {
                    $(Invariant::$var => <$module::Rule as Judge>::SPEC,)+
                }
            }

            /// The invariants judged on what the hosts did.
            pub(crate) const ON_HOSTS: InvariantSet = InvariantSet::of(
                0 $(| if <$module::Rule as Judge>::ON_HOSTS { 1 << Invariant::$var as u16 } else { 0 })+
            );
        }

        /// What the checker keeps per container and host: the container's life there, shared,
        /// and each invariant's own state.
        #[derive(Debug, Default)]
        pub(crate) struct PerHost {
            /// Where the container stands at the host.
            pub(crate) life: Life,
            $(pub(crate) $module: <$module::Rule as Judge>::PerHost,)+
        }

        /// What each invariant keeps over the whole history.
        #[derive(Debug, Default)]
        pub(crate) struct Runs {
            $($module: <$module::Rule as Judge>::Run,)+
        }

        impl Runs {
            /// Calls every judged invariant's [`Judge::event`].
            #[inline(always)]
            pub(crate) fn event(&mut self, on: InvariantSet, now_us: u64, ev: &Event, sink: &mut Sink) {
                $(
                    if on.contains(Invariant::$var) {
                        <$module::Rule as Judge>::event(&mut self.$module, now_us, ev, sink);
                    }
                )+
            }

            /// Calls every judged invariant's [`Judge::applied`], then follows the container's
            /// life through the op.
            #[inline(always)]
            pub(crate) fn applied(&self, on: InvariantSet, cs: &mut PerHost, a: &HostOp, sink: &mut Sink) {
                $(
                    if on.contains(Invariant::$var) {
                        <$module::Rule as Judge>::applied(&self.$module, &mut cs.$module, &cs.life, a, sink);
                    }
                )+
                cs.life.follow(a);
            }

            /// Calls every judged invariant's [`Judge::finish`].
            pub(crate) fn finish(&mut self, on: InvariantSet, end_us: u64, snap: &Snapshot, sink: &mut Sink) {
                $(
                    if on.contains(Invariant::$var) {
                        <$module::Rule as Judge>::finish(&mut self.$module, end_us, snap, sink);
                    }
                )+
            }
        }
    };
}

registry! {
    CreateBeforeUse => create_before_use,
    NoUseAfterDelete => no_use_after_delete,
    Exclusive => exclusive,
    PerContainerOrder => per_container_order,
    AtMostOnce => at_most_once,
    NoLostOps => no_lost_ops,
    NoStuckState => no_stuck_state,
    Converges => converges,
    BlockingInline => blocking_inline,
}

impl Invariant {
    /// The name used in scenarios and reports.
    pub fn name(self) -> &'static str {
        self.spec().name
    }

    /// The name in narrow tables (the design matrix's columns).
    pub fn short(self) -> &'static str {
        self.spec().short
    }

    /// Safety or liveness.
    pub fn kind(self) -> Kind {
        self.spec().kind
    }

    /// What it means, when it is judged, how it breaks.
    pub fn doc(self) -> &'static str {
        self.spec().doc
    }

    /// The invariant named `name`.
    pub fn from_name(name: &str) -> Option<Invariant> {
        Invariant::ALL.into_iter().find(|i| i.name() == name)
    }
}

impl conductor::keyword::Keyword for Invariant {
    const WHAT: &'static str = "an invariant";
    const ALL: &'static [Invariant] = &Invariant::ALL;
    fn name(self) -> &'static str {
        Invariant::name(self)
    }
}

impl fmt::Display for Invariant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl serde::Serialize for Invariant {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        // As serde's derive does for a unit variant (and the keyword enums): its name in JSON
        // and TOML.
        s.serialize_unit_variant("Invariant", *self as u32, self.name())
    }
}

impl<'de> serde::Deserialize<'de> for Invariant {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        conductor::keyword::deserialize_keyword(d, "Invariant")
    }
}
