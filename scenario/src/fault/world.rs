//! The primitive actions a fault takes on the world. The simulator's fault injector implements
//! them on its madsim nodes and in-memory network; the fault kinds say how they apply and heal
//! themselves in these terms, so that this crate builds without the simulated runtime.
//!
//! Every primitive is counted by the world: faults overlap (a scheduled partition during a
//! nemesis kill), and the end of one never lifts another's. A node or host the world does not
//! have is ignored.

use crate::node::Node;
use std::time::Duration;

/// What faults do to the world, one primitive at a time (see the module's doc).
pub trait FaultWorld {
    /// Cuts `node` off in both directions.
    fn clog_node(&mut self, node: Node);
    /// Lifts one [`Self::clog_node`] of `node`.
    fn unclog_node(&mut self, node: Node);
    /// Cuts the link from `from` to `to` (one direction).
    fn clog_link(&mut self, from: Node, to: Node);
    /// Lifts one [`Self::clog_link`] of that link.
    fn unclog_link(&mut self, from: Node, to: Node);
    /// Kills `node`'s process: its memory is lost, its durable state stays.
    fn kill(&mut self, node: Node);
    /// Lifts one [`Self::kill`] of `node`: the last one restarts it.
    fn restart(&mut self, node: Node);
    /// Stops `node`'s process, keeping its state and sockets.
    fn pause(&mut self, node: Node);
    /// Lifts one [`Self::pause`] of `node`: the last one resumes it.
    fn resume(&mut self, node: Node);
    /// Sets the network latency bounds of fault `fault` (`Some((min, max))`, from its start) or
    /// lifts them (`None`, at its end); the latest fault in force wins, none: the scenario's.
    fn latency(&mut self, fault: usize, bounds: Option<(Duration, Duration)>);
    /// Sets fault `fault`'s service-time factor on host `host` (0-based; `None` lifts it);
    /// factors in force multiply.
    fn slow_host(&mut self, fault: usize, host: u32, factor: Option<f64>);
    /// Sets fault `fault`'s failure rate on host `host` (0-based; `None` lifts it); rates in
    /// force fail independently.
    fn host_errors(&mut self, fault: usize, host: u32, rate: Option<f64>);
}
