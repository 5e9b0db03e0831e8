//! The reference deployment that conductor-sim tests: the conductor (RPC slots, the executor pool
//! and its overflow policy) and the api, bus, store and host services around it.
//!
//! Plain tokio code: under `--cfg madsim` the `tokio` it uses is madsim's simulation, otherwise it
//! is real tokio over real TCP. Services talk only through [`wire`] frames and report what they do
//! through a [`recorder::Recorder`].

#![warn(missing_docs)]

pub mod api;
pub mod bus;
pub mod cancel;
pub mod cluster;
pub mod conductor;
pub mod coordination;
pub mod host;
pub mod idempotency;
pub mod journal;
pub mod keyword;
pub mod mem;
pub mod net;
pub mod op;
pub mod proto;
pub mod recorder;
pub mod retry;
pub mod rpc;
pub mod store;
pub mod wire;
