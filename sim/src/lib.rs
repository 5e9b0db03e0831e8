//! conductor-sim: the deterministic simulator of the reference deployment.
//!
//! Data flows one way: scenario → world → metrics (and, later, history) → report.

#![warn(missing_docs)]

#[cfg(not(madsim))]
compile_error!(
    "the simulator needs `--cfg madsim` (set by .cargo/config.toml); the real build is \
     `RUSTFLAGS= CARGO_TARGET_DIR=target/real cargo build --release -p real`"
);

pub mod client;
pub mod compare;
pub mod corpus;
pub mod ddmin;
pub mod etcd;
pub mod explore;
pub mod faults;
pub mod matrix;
pub mod pages;
pub mod progress;
pub mod recorder;
pub mod reproduction;
pub mod run;
pub mod save;
pub mod schedule_seed;
pub mod shard;
pub mod shrink;
pub mod swarm;
pub mod sweep;
pub mod trace;
pub mod world;
