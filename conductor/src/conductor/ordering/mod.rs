//! Ordering strategies: how ops on one container are kept apart. Each is one file behind the
//! [`Strategy`] trait, and one line of the registry below names it: adding a strategy is a new
//! file here (`my_strategy.rs`, defining `MyStrategy: Strategy + Default`) plus its line in
//! `strategies!` — `MyStrategy = "my-strategy" => my_strategy::MyStrategy,` under its doc
//! comment — which declares the module, re-exports the type and adds the `cluster.ordering`
//! keyword (scenario files, the real binary's `--ordering`, reports).
//!
//! A strategy defined elsewhere (a test's) plugs in through
//! [`ConductorConfig::strategy`](super::ConductorConfig::strategy) with a [`StrategyFactory`].

use super::Conductor;
use crate::proto::Task;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// The registry: each line is `Variant = "keyword" => module::Type` under the variant's doc, and
/// makes the module (`module.rs` in this folder), the re-export of its type, the [`Ordering`]
/// keyword and the strategy it names, built with `Type::default()` for each conductor run.
macro_rules! strategies {
    ($($(#[$vm:meta])* $var:ident = $s:literal => $m:ident :: $ty:ident),+ $(,)?) => {
        $(
            mod $m;
            pub use $m::$ty;
        )+

        crate::keyword_enum! {
            /// `cluster.ordering`: how ops on one container are kept in order (the name of a
            /// registered [`Strategy`]).
            pub enum Ordering, "an ordering strategy" {
                $($(#[$vm])* $var = $s),+
            }
        }

        impl Ordering {
            /// A fresh instance of the strategy this keyword names.
            pub fn strategy(self) -> Box<dyn Strategy> {
                match self {
                    $(Ordering::$var => Box::new($ty::default())),+
                }
            }
        }
    };
}

strategies! {
    /// Nothing: the baseline that shows the races.
    None = "none" => none::NoOrdering,
    /// An in-process lock per container, unfair (Zun's `@synchronized(uuid)`).
    LocalLock = "local-lock" => local_lock::LocalLock,
    /// An in-process lock per container, first come first served.
    LocalLockFair = "local-lock-fair" => local_lock_fair::LocalLockFair,
    /// A lease lock per container in the store, renewed while held.
    DistributedLock = "distributed-lock" => distributed_lock::DistributedLock,
    /// No lock: an op runs only when every earlier op of its container is terminal.
    StateCheck = "state-check" => state_check::StateCheck,
}

/// How an op's run ended: what the conductor does next ([`Strategy::run`]'s answer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// It ran (or failed) and its record is terminal: the conductor records it terminal.
    Done {
        /// Whether the op succeeded.
        ok: bool,
    },
    /// Another conductor runs it, or it is already terminal: a duplicate delivery, dropped.
    Duplicate,
    /// An earlier op of its container is not terminal ([`Take::StateChecked`]): it goes back
    /// to the bus after the retry policy's delay, or is given up when attempts or the retry
    /// budget run out.
    ///
    /// [`Take::StateChecked`]: super::Take::StateChecked
    NotReady,
    /// Its container is in Error, or does not allow it: its record already failed
    /// ([`Conductor::take`] did that); the conductor records it given up.
    Refused,
}

/// Why an op runs: what the store must allow when it is taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempt {
    /// A delivery from the bus (a first dispatch, a re-queue, or the orphan sweeper's).
    Delivered,
    /// Restart recovery runs again an op this conductor had begun before it went down.
    Reissue,
}

/// The future of [`Strategy::run`]: boxed, so that strategies are objects (boxing adds no
/// yield point: the op's awaits are the strategy's own).
pub type RunFuture<'a> = Pin<Box<dyn Future<Output = Outcome> + Send + 'a>>;

/// An ordering strategy: how a conductor runs an async op so that ops on one container are
/// kept apart (or, for `none`, are not).
///
/// The conductor calls [`run`](Strategy::run) on a pool worker (or on an RPC slot, under
/// `caller-runs`, or from restart recovery) and acts on its [`Outcome`]. What a strategy may
/// call is the small API of its context, the [`Conductor`]:
///
/// - the store's take, [`Conductor::take`], with a [`Take`](super::Take): without waiting
///   for the answer, granted, or granted only when every earlier op of the container is
///   terminal (the state check); its `Err` is the outcome to return as it is;
/// - the host call, [`Conductor::call_host`], under a fencing token (the take's, a lock's, or
///   0), and the store write that ends the op, [`Conductor::finish`] — both at once with
///   [`Conductor::complete`];
/// - locks ([`super::lock`]): in-process per container, unfair ([`UnfairLocks`]) or in the
///   order deliveries were taken ([`FairLocks`]), and the store's lease lock ([`Lease`]:
///   lock, renewed while held, unlock), whose token fences;
/// - the retry budget, [`Conductor::deposit_retry_budget`], and the recorder
///   ([`Conductor::record`], [`Conductor::now_us`]).
///
/// A strategy instance lives as long as one conductor process (a restarted conductor gets a
/// fresh one), so in-process state — a lock table — belongs in it. Its calls must not depend
/// on anything but the op and this state: the simulation's determinism is the strategy's.
///
/// [`UnfairLocks`]: super::lock::UnfairLocks
/// [`FairLocks`]: super::lock::FairLocks
/// [`Lease`]: super::lock::Lease
pub trait Strategy: Send + Sync + fmt::Debug + 'static {
    /// An RPC slot took the delivery of async op `task`, before it tries to take a pool
    /// worker (the fair lock joins the container's line here, so that the line follows the
    /// order of the queue the op came from). Must not block. Default: nothing.
    fn on_delivery(&self, task: &Task) {
        let _ = task;
    }

    /// An op that [`on_delivery`](Strategy::on_delivery) saw will not run after all: the pool
    /// rejected it, or its deadline passed while it waited for a worker (the fair lock's line
    /// drops it). Default: nothing.
    fn on_abandon(&self, task: &Task) {
        let _ = task;
    }

    /// Runs async op `task` on conductor `cx`: takes it in the store, calls its host, ends it
    /// in the store, under whatever keeps it apart from its container's other ops.
    fn run<'a>(&'a self, cx: &'a Conductor, task: &'a Task, attempt: Attempt) -> RunFuture<'a>;
}

/// Builds a conductor's strategy each time the conductor starts: in-process state (a lock
/// table) lives as long as the process, and conductors do not share it.
#[derive(Clone)]
pub struct StrategyFactory(Arc<dyn Fn() -> Box<dyn Strategy> + Send + Sync>);

impl StrategyFactory {
    /// A factory calling `make` for each conductor start.
    pub fn new(make: impl Fn() -> Box<dyn Strategy> + Send + Sync + 'static) -> Self {
        StrategyFactory(Arc::new(make))
    }

    /// A factory of `S::default()`.
    pub fn of<S: Strategy + Default>() -> Self {
        Self::new(|| Box::new(S::default()))
    }

    /// A fresh strategy.
    pub fn build(&self) -> Box<dyn Strategy> {
        (self.0)()
    }
}

impl fmt::Debug for StrategyFactory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StrategyFactory({:?})", self.build())
    }
}

impl From<Ordering> for StrategyFactory {
    fn from(o: Ordering) -> Self {
        Self::new(move || o.strategy())
    }
}
