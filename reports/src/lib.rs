//! Metrics and reports for conductor-sim.
//!
//! Plain Rust: this crate knows nothing of madsim or of the simulator. Data flows one way:
//! the simulator fills one [`SeedMetrics`] per seed (counters, [`Histo`] latency histograms,
//! [`Level`] time-weighted levels), then [`build_report`] pools the seeds into a [`Report`]
//! that serialises to `report.json` (keys in docs/outputs.md) and prints a human summary.
//!
//! Nothing here stores per-sample data: histograms have a fixed resolution (HDR, 3 significant
//! figures), levels keep running integrals, counters are counters. Memory does not grow with
//! the length of a run.
//!
//! Determinism: no `HashMap` anywhere, sums of floats are taken in seed (and conductor) order,
//! and every float that reaches JSON is rounded to a fixed number of decimals or significant
//! digits, so the same inputs give the same bytes.

#![warn(missing_docs)]

pub mod axis;
mod bins;
pub mod compare;
pub mod compare_page;
mod erlang;
mod histo;
pub mod html;
pub mod human;
mod level;
pub mod recovery;
mod report;
pub mod round;
mod seed;
pub mod slo;
mod stats;
mod summary;
pub mod sweep;
mod timeline;

pub use bins::LatencyBins;
pub use erlang::{erlang_b, erlang_c, erlang_c_wait, measured_rate};
pub use histo::{Histo, Percentiles};
pub use level::Level;
pub use report::{build_report, Report, SloSpec};
pub use seed::{ConductorCounts, SeedMetrics};
pub use stats::{mean_ci95, t99, wilson_ci95};
pub use timeline::{Bucket, Sample, Timeline};
