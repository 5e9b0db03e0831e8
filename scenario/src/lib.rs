//! Scenarios: the TOML files that describe one experiment (every key in docs/scenario.md).
//!
//! [`load`] / [`parse_str`] read a file, apply `--set KEY=VALUE` overrides to its TOML tree,
//! then validate the whole schema into a typed [`Scenario`] with every default filled in.
//! Every input problem is a [`ScenarioError`] naming the file, the dotted key and what was
//! expected; no input makes this module panic, hang or overflow.
//!
//! [`check_supported`] then refuses values each valid but not sensible together; [`load`] and
//! [`parse_supported`] do both steps, and [`check`] is what the `check` commands print.
//!
//! [`Scenario`] serialises (serde) back to the scenario's own TOML form — durations as
//! humantime strings, `network.latency`, `retry.budget`, per-op `[backend]` keys, `mix` as a
//! table — so the effective scenario can be echoed and loaded again.

#![warn(missing_docs)]

use checker::{Invariant, InvariantSet};
use std::path::Path;
use std::time::Duration;

pub mod bounds;
pub mod client;
#[cfg(test)]
mod documented;
mod error;
pub mod fault;
pub mod fold;
pub mod guard;
pub mod histogram;
pub mod host_model;
mod node;
mod op;
mod parse;
pub mod rng;
mod ser;
mod set;
pub mod slo;
mod target;
#[cfg(test)]
mod tests;
pub mod time_scale;
pub mod workload;

pub use error::ScenarioError;
pub use fault::{Fault, FaultKind};
pub use node::{Node, NodeSet};
pub use op::{OpKind, UnknownOp};
pub use slo::{Slo, SloLimit, SloObjective};
pub use target::{Method, Route, Target};

/// The longest duration any key may have, and the limit on `duration + drain`: 30 days.
pub const MAX_DURATION: Duration = Duration::from_secs(30 * 24 * 3600);

/// The most operations a scenario may expect to submit (mean arrival rate × `duration`).
pub const MAX_EXPECTED_OPS: f64 = 1e8;

/// The most faults a `[nemesis]` may expect to draw (`duration / mean_interval`).
pub const MAX_NEMESIS_FAULTS: f64 = 1e6;

/// The largest network latency bound (`network.latency.max`, a `latency` fault's `max`).
pub const MAX_LATENCY: Duration = Duration::from_secs(60);

/// The effective scenario file, as docs/scenario.md documents it, with every default written out
/// (no `[[faults]]`, `[nemesis]` or `[slo]`, which are absent by default).
///
/// A `--set` that creates a table the file does not have starts from that table's defaults
/// here (so `--set workload.arrival.rate=5` keeps `kind = "poisson"`).
pub const DEFAULTS_TOML: &str = r#"name = "example"
description = ""
seed = 1
duration = "1h"
warmup = "0s"
drain = "10m"

[cluster]
conductors = 1
hosts = 1
rpc_workers = 64
pool_workers = 10
overflow = "caller-runs"
routing = "round-robin"
ordering = "none"
fencing = false
lease_ttl = "10s"
recovery = "zun"
reconcile_interval = "60s"
orphan_after = "2m"

[api]
validate_state = true
async_rpc = "call"
rpc_timeout = "60s"

[bus]
prefetch = 0

[network]
latency = { min = "1ms", max = "10ms" }
loss = 0.0

[workload]
model = "ops"
arrival = { kind = "poisson", rate = 1.0 }
containers = 1000
pick = "uniform"
mix = { start = 1.0 }
lifecycle = ["create", "start", "stop", "delete"]
gap = { dist = "exp", mean = "1s" }

[client]
timeout = "0s"
retry_on = []
wait_for = "answer"
cancel = "none"
instances = 1
retry_same_op = false

[backend]
default = { dist = "exp", mean = "1s" }
failure_rate = 0.0

[retry]
policy = "full-jitter"
base = "100ms"
cap = "10s"
max_attempts = 5
budget = { ratio = 0.0, min_per_s = 0.0 }

[checks]
invariants = ["all"]
expect = []

[target]
base_path = ""
connections = 64
max_in_flight = 10000
late_after = "10ms"
setup = false
teardown = false
"#;

/// Reads the scenario file at `path`, applies the `--set KEY=VALUE` overrides in order, and
/// validates the result, [`check_supported`] included: the one loader every command uses.
/// Relative `empirical` files resolve against the file's directory. Messages name the file as
/// `path` is written.
///
/// # Errors
/// [`ScenarioError::Read`] if the file cannot be read (or is over 64 MiB), else as
/// [`parse_supported`].
pub fn load(path: &Path, sets: &[String]) -> Result<Scenario, ScenarioError> {
    let origin = path.display().to_string();
    let src =
        parse::read_capped(path, parse::MAX_FILE_BYTES).map_err(|message| ScenarioError::Read {
            origin: origin.clone(),
            path: origin.clone(),
            message,
        })?;
    let base = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    parse_supported(&src, &origin, sets, Some(base))
}

/// What `check SCENARIO [--set …]` prints for a valid file, in the simulator and the real
/// binary alike: the file, the scenario's name and its size.
///
/// # Errors
/// As [`load`].
pub fn check(path: &Path, sets: &[String]) -> Result<String, ScenarioError> {
    check_with_warnings(path, sets).map(|(line, _)| line)
}

/// [`check`], and the guard rails' warnings about the scenario ([`guard::static_warnings`]),
/// for stderr.
///
/// # Errors
/// As [`load`].
pub fn check_with_warnings(
    path: &Path,
    sets: &[String],
) -> Result<(String, Vec<String>), ScenarioError> {
    let scn = load(path, sets)?;
    let mut line = format!(
        "{}: ok — {} ({} conductor(s), {} pool workers each, about {:.0} ops over {})",
        path.display(),
        scn.name,
        scn.cluster.conductors,
        scn.cluster.pool_workers,
        scn.expected_ops(),
        humantime::format_duration(scn.duration),
    );
    for (what, d) in std::iter::once(("default", &scn.backend.default))
        .chain(scn.backend.per_op.iter().map(|(k, d)| (k.name(), d)))
    {
        if let Dist::Histogram { histogram: h } = d {
            line.push_str(&format!(
                "\n  backend.{what}: histogram of {} observations, sampled mean {}, p99 {}",
                h.observations(),
                fmt_secs(h.mean()),
                fmt_secs(h.quantile(0.99)),
            ));
        }
    }
    Ok((line, guard::static_warnings(&scn)))
}

/// Seconds for a person: `1.104 s`, `12.5 ms`.
fn fmt_secs(s: f64) -> String {
    if s >= 1.0 {
        format!("{s:.3} s")
    } else {
        format!("{:.3} ms", s * 1000.0)
    }
}

/// [`parse_str`] then [`check_supported`]: scenario text as every command takes it.
///
/// # Errors
/// As [`parse_str`], then as [`check_supported`].
pub fn parse_supported(
    src: &str,
    origin: &str,
    sets: &[String],
    base_dir: Option<&Path>,
) -> Result<Scenario, ScenarioError> {
    let scn = parse_str(src, origin, sets, base_dir)?;
    check_supported(&scn, origin)?;
    Ok(scn)
}

/// Parses scenario text `src`, applies the `--set KEY=VALUE` overrides in order, and validates
/// the result. `origin` names the file in messages; relative `empirical` files resolve against
/// `base_dir` (`None`: the current directory).
///
/// # Errors
/// The first problem found: [`ScenarioError::Syntax`] (with line and column),
/// [`ScenarioError::Set`] for a malformed override, [`ScenarioError::UnknownKey`], or
/// [`ScenarioError::Invalid`] (wrong type, out of range, inconsistent, over a limit).
pub fn parse_str(
    src: &str,
    origin: &str,
    sets: &[String],
    base_dir: Option<&Path>,
) -> Result<Scenario, ScenarioError> {
    let mut root = parse::toml_table(src, origin)?;
    for s in sets {
        set::apply(origin, &mut root, s)?;
    }
    let cx = parse::Cx { origin, base_dir };
    parse::scenario(&cx, &root)
}

/// Refuses a scenario whose keys are each valid but do not make sense together: today, fencing
/// without a source of tokens. (Every feature of the contract is built.)
///
/// # Errors
/// [`ScenarioError::Invalid`] naming the key and what was expected.
pub fn check_supported(s: &Scenario, origin: &str) -> Result<(), ScenarioError> {
    if s.cluster.fencing
        && !matches!(
            s.cluster.ordering,
            Ordering::DistributedLock | Ordering::StateCheck
        )
    {
        return Err(ScenarioError::Invalid {
            origin: origin.to_string(),
            key: "cluster.fencing".into(),
            message: format!(
                "fencing tokens come from the distributed lock or the state check's hand-off: expected `ordering = \"distributed-lock\"` or `\"state-check\"` with `fencing = true` (got `{}`)",
                s.cluster.ordering.name()
            ),
        });
    }
    Ok(())
}

pub use conductor::api::RpcKind;
pub use conductor::cancel::Cancel;
pub use conductor::cluster::{Ordering, Routing};
pub use conductor::conductor::{Overflow, RecoveryPolicy};
pub use conductor::coordination::Engine;
pub use conductor::keyword::Keyword;
pub use conductor::retry::Backoff;

conductor::keyword_enum! {
    /// `workload.model`: how the workload generates requests.
    pub enum Model, "a workload model" {
        /// `mix` over pre-created containers.
        Ops = "ops",
        /// Each new container runs through `lifecycle`.
        Lifecycle = "lifecycle",
        /// Both at once: new containers arrive (`arrival`) and run through `lifecycle` while
        /// ops arrive (`ops_arrival`) on pre-created containers (`containers`, starting in the
        /// `initial` shares of states), each op drawn from `mix` among those the container's
        /// state allows.
        Mixed = "mixed",
    }
}

conductor::keyword_enum! {
    /// An entry of `client.retry_on`: which answers the client retries.
    pub enum RetryOn, "a retryable outcome" {
        /// A 409 conflict.
        Conflict = "conflict",
        /// A client timeout.
        Timeout = "timeout",
        /// Any other error.
        Error = "error",
    }
}

/// A whole, validated scenario with every default filled in.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Scenario {
    /// The scenario's name (required; `[A-Za-z0-9._-]+`: it names the report directory).
    pub name: String,
    /// Free text.
    pub description: String,
    /// The first seed.
    pub seed: u64,
    /// The load phase, simulated time (> 0, at most 30 days with `drain`).
    #[serde(with = "ser::dur")]
    pub duration: Duration,
    /// The start of the load phase excluded from statistics (< `duration`).
    #[serde(with = "ser::dur")]
    pub warmup: Duration,
    /// How long the world drains after the load phase, faults healed.
    #[serde(with = "ser::dur")]
    pub drain: Duration,
    /// `[cluster]`.
    pub cluster: Cluster,
    /// `[api]`.
    pub api: Api,
    /// `[bus]`.
    pub bus: Bus,
    /// `[network]`.
    pub network: Network,
    /// `[workload]`.
    pub workload: Workload,
    /// `[client]`.
    pub client: Client,
    /// `[backend]`.
    pub backend: Backend,
    /// `[retry]`.
    pub retry: Retry,
    /// `[[faults]]`, in file order.
    pub faults: Vec<Fault>,
    /// `[nemesis]`, if present.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nemesis: Option<Nemesis>,
    /// `[checks]`.
    pub checks: Checks,
    /// `[slo]`.
    pub slo: Slo,
    /// `[simulation]`: how the simulator runs the scenario (not what it models).
    #[serde(skip_serializing_if = "Simulation::is_default")]
    pub simulation: Simulation,
    /// `[target]`: how `conductor load` speaks to a live HTTP target (the simulator ignores it).
    #[serde(skip_serializing_if = "Target::is_default")]
    pub target: Target,
}

/// `[simulation]`: knobs of the simulator itself, absent = the run every seed always ran.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Simulation {
    /// Reseeds only the scheduler's choices (the madsim runtime's seed: which ready task runs
    /// next), keeping the workload's, the network's, the host model's and the faults' streams,
    /// which stay keyed by the run's seed. `None`: the runtime is seeded with the run's seed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schedule_seed: Option<u64>,
}

impl Simulation {
    /// True when nothing is set (serialisation leaves the table out).
    pub fn is_default(&self) -> bool {
        *self == Simulation::default()
    }
}

impl Scenario {
    /// The number of operations the workload is expected to submit over `duration`
    /// (mean arrival rate × duration; × the lifecycle's length for the `lifecycle` model).
    pub fn expected_ops(&self) -> f64 {
        let per_arrival = match self.workload.model {
            Model::Ops => 1.0,
            Model::Lifecycle | Model::Mixed => self.workload.lifecycle.len() as f64,
        };
        let d = self.duration.as_secs_f64();
        let ops_on_existing = match (&self.workload.model, &self.workload.ops_arrival) {
            (Model::Mixed, Some(a)) => a.mean_rate_over(self.duration) * d,
            _ => 0.0,
        };
        self.workload.arrival.mean_rate_over(self.duration) * d * per_arrival + ops_on_existing
    }
}

/// `[cluster]`: the conductors and the hosts.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Cluster {
    /// Number of conductors, 1..=1000.
    pub conductors: u32,
    /// Number of container hosts, 1..=1000.
    pub hosts: u32,
    /// RPC slots per conductor, 1..=100000.
    pub rpc_workers: u32,
    /// Executor pool workers per conductor, 1..=100000.
    pub pool_workers: u32,
    /// What happens when the pool is exhausted.
    pub overflow: Overflow,
    /// How ops reach conductors.
    pub routing: Routing,
    /// The ordering strategy.
    pub ordering: Ordering,
    /// Whether the distributed lock's token is checked by the host.
    pub fencing: bool,
    /// TTL of the store's leases (> 0).
    #[serde(with = "ser::dur")]
    pub lease_ttl: Duration,
    /// What a restarting conductor does with its non-terminal records.
    pub recovery: RecoveryPolicy,
    /// The reconciler's period (zero = off).
    #[serde(with = "ser::dur")]
    pub reconcile_interval: Duration,
    /// After how long an unowned accepted op is dispatched again (zero = off).
    #[serde(with = "ser::dur")]
    pub orphan_after: Duration,
    /// What keeps locks, leases, membership and fencing tokens (echoed only when not the
    /// default `store`, so that reports of store runs stay as they were).
    #[serde(skip_serializing_if = "Engine::is_store")]
    pub coordination: Engine,
    /// The simulated etcd cluster's members, 1..=9 (only with `coordination = "etcd"`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub etcd_members: Option<u32>,
}

/// `[api]`.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Api {
    /// Zun's state validation (409 on a forbidden transition); false = Magnum 2015.
    pub validate_state: bool,
    /// Whether async ops are RPC calls or casts.
    pub async_rpc: RpcKind,
    /// The timeout of the API's RPC calls (> 0).
    #[serde(with = "ser::dur")]
    pub rpc_timeout: Duration,
}

/// `[bus]`.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Bus {
    /// Unacknowledged messages a conductor may hold in its backlog; 0 = unlimited.
    pub prefetch: u32,
}

/// `[network]`. In TOML: `latency = { min = "1ms", max = "10ms" }`, `loss = 0.0`.
#[derive(Debug, Clone, PartialEq)]
pub struct Network {
    /// Lower latency bound (`network.latency.min`), strictly below `latency_max`.
    pub latency_min: Duration,
    /// Upper latency bound (`network.latency.max`), at most 60 s.
    pub latency_max: Duration,
    /// Packet loss rate in [0, 1) (madsim delays the stream; it never drops bytes).
    pub loss: f64,
}

/// `[workload]`.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Workload {
    /// How requests are generated.
    pub model: Model,
    /// The arrival process (of ops for `ops`, of new containers for `lifecycle`).
    pub arrival: Arrival,
    /// Pre-created containers for the `ops` model, 1..=10 000 000.
    pub containers: u32,
    /// How the `ops` model picks a container.
    pub pick: Pick,
    /// The `ops` model's op weights: positive weights only, in [`OpKind::ALL`] order, at
    /// least one.
    #[serde(serialize_with = "ser::mix")]
    pub mix: Vec<(OpKind, f64)>,
    /// The `lifecycle` model's ops, in order, per new container.
    #[serde(serialize_with = "ser::ops")]
    pub lifecycle: Vec<OpKind>,
    /// The `lifecycle` model's gap between one container's requests.
    pub gap: Dist,
    /// The `mixed` model's arrivals of ops on pre-created containers (`None` for the other
    /// models, required for `mixed`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ops_arrival: Option<Arrival>,
    /// The `mixed` model's shares of the pre-created containers' initial states.
    #[serde(skip_serializing_if = "Initial::is_default")]
    pub initial: Initial,
}

/// `workload.initial`: the shares of the `mixed` model's pre-created containers that start in
/// each state, each in [0, 1], summing to 1. TOML: `{ running = 0.7, stopped = 0.2,
/// paused = 0.1 }` (absent states: 0; the table absent: every container running).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Initial {
    /// Created, never started.
    pub created: f64,
    /// Running.
    pub running: f64,
    /// Stopped.
    pub stopped: f64,
    /// Paused.
    pub paused: f64,
}

impl Default for Initial {
    fn default() -> Self {
        Initial {
            created: 0.0,
            running: 1.0,
            stopped: 0.0,
            paused: 0.0,
        }
    }
}

impl Initial {
    /// True when every container starts running (serialisation leaves the table out).
    pub fn is_default(&self) -> bool {
        *self == Initial::default()
    }

    /// The shares with their statuses, in a fixed order.
    pub fn shares(&self) -> [(conductor::op::Status, f64); 4] {
        use conductor::op::Status;
        [
            (Status::Created, self.created),
            (Status::Running, self.running),
            (Status::Stopped, self.stopped),
            (Status::Paused, self.paused),
        ]
    }
}

/// `workload.arrival`: the arrival process; rates are per second, finite, > 0.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Arrival {
    /// Poisson arrivals at `rate`.
    Poisson {
        /// Arrivals per second.
        rate: f64,
    },
    /// Evenly spaced arrivals at `rate`.
    Constant {
        /// Arrivals per second.
        rate: f64,
    },
    /// Poisson arrivals at `burst_rate` during `on` windows and at `rate` during `off` windows.
    Bursty {
        /// Arrivals per second outside bursts.
        rate: f64,
        /// Arrivals per second during bursts.
        burst_rate: f64,
        /// Length of a burst (> 0).
        #[serde(with = "ser::dur")]
        on: Duration,
        /// Length of the gap between bursts (> 0).
        #[serde(with = "ser::dur")]
        off: Duration,
    },
    /// Poisson arrivals whose rate goes linearly from `from` to `to` over `duration`
    /// (both >= 0, not both 0).
    Ramp {
        /// Arrivals per second at the start.
        from: f64,
        /// Arrivals per second at the end of `duration`.
        to: f64,
    },
    /// Poisson arrivals whose rate follows `phases` in order, the list played `repeat` times
    /// (a spike, a diurnal day); after the last phase its rate holds to the end of `duration`.
    Schedule {
        /// The phases, in order (at least one, at most [`MAX_PHASES`]).
        phases: Vec<Phase>,
        /// How many times the list is played.
        repeat: Repeat,
    },
    /// A recorded load replayed: arrival times, or counts per interval spread uniformly over
    /// their interval by the arrivals stream; `scale` multiplies the rate.
    Trace(Trace),
}

/// The most phases of an `arrival = { kind = "schedule" }` list, and of the phases it plays
/// over `duration` (repeats expanded): what [`Arrival::phases`] may return.
pub const MAX_PHASES: usize = 100_000;

/// One phase of a schedule: `{ rate, for }`.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Phase {
    /// Arrivals per second (>= 0, finite).
    pub rate: f64,
    /// How long it lasts (> 0).
    #[serde(rename = "for", with = "ser::dur")]
    pub length: Duration,
}

/// `repeat` of a schedule: a number of plays, or `"forever"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Repeat {
    /// Played this many times (>= 1), then the last phase's rate holds.
    Times(u32),
    /// Played again and again to the end of `duration`.
    Forever,
}

/// `arrival = { kind = "trace", file, format, interval, scale }`, its file read.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Trace {
    /// The file as written in the scenario (relative paths resolve against the scenario's
    /// directory).
    pub file: String,
    /// `"times"` or `"counts"`.
    pub format: TraceFormat,
    /// The width of a count's interval when the file gives no times (`counts` only).
    #[serde(with = "ser::dur")]
    pub interval: Duration,
    /// Multiplies the rate (> 0).
    pub scale: f64,
    /// The recorded load: arrival times, or `(start, end, count)` intervals, in µs.
    #[serde(skip)]
    pub data: TraceData,
}

conductor::keyword_enum! {
    /// `workload.arrival.format` of a trace: what its lines are.
    pub enum TraceFormat, "a trace format" {
        /// One arrival time per line, seconds since the start, non-decreasing.
        Times = "times",
        /// One count per line (`count`, or `start_s,count` CSV), an interval each.
        Counts = "counts",
    }
}

/// A trace file's contents.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum TraceData {
    /// Arrival times, µs, non-decreasing.
    #[default]
    Empty,
    /// Arrival times, µs, non-decreasing.
    Times(Vec<u64>),
    /// `(start µs, end µs, count)`, in time order, not overlapping.
    Counts(Vec<(u64, u64, u64)>),
}

impl Repeat {
    /// Whether play `k` (0 for the first) happens.
    fn plays(self, k: u64) -> bool {
        match self {
            Repeat::Times(n) => k < u64::from(n),
            Repeat::Forever => true,
        }
    }
}

impl serde::Serialize for Repeat {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Repeat::Times(n) => s.serialize_u32(*n),
            Repeat::Forever => s.serialize_str("forever"),
        }
    }
}

impl Arrival {
    /// The mean arrival rate per second over the load phase (bursty: time-weighted; ramp: the
    /// midpoint).
    pub fn mean_rate(&self) -> f64 {
        match *self {
            Arrival::Poisson { rate } | Arrival::Constant { rate } => rate,
            Arrival::Bursty {
                rate,
                burst_rate,
                on,
                off,
            } => {
                let (on, off) = (on.as_secs_f64(), off.as_secs_f64());
                if on + off > 0.0 {
                    (burst_rate * on + rate * off) / (on + off)
                } else {
                    rate
                }
            }
            Arrival::Ramp { from, to } => (from + to) / 2.0,
            // Without the duration: over one play of the list.
            Arrival::Schedule { ref phases, .. } => {
                let (n, t) = phases.iter().fold((0.0, 0.0), |(n, t), p| {
                    (
                        n + p.rate * p.length.as_secs_f64(),
                        t + p.length.as_secs_f64(),
                    )
                });
                if t > 0.0 {
                    n / t
                } else {
                    0.0
                }
            }
            Arrival::Trace(ref tr) => {
                let (n, end_us) = tr.data.totals();
                if end_us == 0 {
                    0.0
                } else {
                    n as f64 * tr.scale / (end_us as f64 / 1e6)
                }
            }
        }
    }

    /// The mean rate over `[0, duration)`: for a schedule or a trace, what is expected to
    /// arrive in the load phase divided by its length; else [`mean_rate`](Arrival::mean_rate).
    pub fn mean_rate_over(&self, duration: Duration) -> f64 {
        let d = duration.as_secs_f64();
        match self {
            Arrival::Schedule { .. } | Arrival::Trace(_) if d > 0.0 => {
                match self.phases(duration) {
                    Some(p) => {
                        p.iter()
                            .map(|(a, b, r)| r * (b.as_secs_f64() - a.as_secs_f64()))
                            .sum::<f64>()
                            / d
                    }
                    None => self.mean_rate(),
                }
            }
            _ => self.mean_rate(),
        }
    }

    /// The load's phases over `[0, duration)`: `(start, end, rate per second)` in time order,
    /// covering the load phase without gaps, each of constant rate — for finding the trigger
    /// windows of a load spike (the phases whose rate is above the one before the first
    /// trigger). `poisson` and `constant` are one phase; `bursty` its off and on windows;
    /// `schedule` its phases, repeats played out and the last rate held to the end; `trace`
    /// its intervals (a `times` trace: one phase per second, at its arrivals × scale) with rate
    /// 0 between and after them. `None` for `ramp` (no constant phases), and when there would
    /// be more than [`MAX_PHASES`].
    pub fn phases(&self, duration: Duration) -> Option<Vec<(Duration, Duration, f64)>> {
        let end = duration;
        let mut out: Vec<(Duration, Duration, f64)> = Vec::new();
        // Appends [a, b) at `rate`, merging with the previous phase when the rate is the same.
        let push =
            |out: &mut Vec<(Duration, Duration, f64)>, a: Duration, b: Duration, rate: f64| {
                let (a, b) = (a.min(end), b.min(end));
                if a >= b {
                    return;
                }
                match out.last_mut() {
                    Some(last) if last.2 == rate && last.1 == a => last.1 = b,
                    _ => out.push((a, b, rate)),
                }
            };
        match self {
            Arrival::Poisson { rate } | Arrival::Constant { rate } => {
                push(&mut out, Duration::ZERO, end, *rate)
            }
            Arrival::Ramp { .. } => return None,
            Arrival::Bursty {
                rate,
                burst_rate,
                on,
                off,
            } => {
                let period = *on + *off;
                let n = end.as_secs_f64() / period.as_secs_f64();
                // Not finite (a zero period cannot be: `on`, `off` > 0) or too many.
                if !n.is_finite() || 2.0 * n > MAX_PHASES as f64 {
                    return None;
                }
                let mut t = Duration::ZERO;
                while t < end {
                    push(&mut out, t, t + *off, *rate);
                    push(&mut out, t + *off, t + period, *burst_rate);
                    t += period;
                }
            }
            Arrival::Schedule { phases, repeat } => {
                let cycle: Duration = phases.iter().map(|p| p.length).sum();
                let mut t = Duration::ZERO;
                let mut k = 0u64;
                while t < end && repeat.plays(k) {
                    for p in phases {
                        push(&mut out, t, t + p.length, p.rate);
                        t += p.length;
                        if out.len() > MAX_PHASES {
                            return None;
                        }
                    }
                    k += 1;
                    if cycle.is_zero() {
                        break;
                    }
                }
                let last = phases.last().map_or(0.0, |p| p.rate);
                push(&mut out, t, end, last);
            }
            Arrival::Trace(tr) => {
                let mut t = Duration::ZERO;
                match &tr.data {
                    TraceData::Empty => {}
                    TraceData::Counts(c) => {
                        for &(a, b, n) in c {
                            let (a, b) = (Duration::from_micros(a), Duration::from_micros(b));
                            push(&mut out, t, a, 0.0);
                            let rate = n as f64 * tr.scale / (b - a).as_secs_f64();
                            push(&mut out, a, b, rate);
                            t = b;
                            if out.len() > MAX_PHASES {
                                return None;
                            }
                        }
                    }
                    TraceData::Times(v) => {
                        let mut i = 0;
                        while t < end && i < v.len() {
                            let next = t + Duration::from_secs(1);
                            let until = next.as_micros() as u64;
                            let from = i;
                            while i < v.len() && v[i] < until {
                                i += 1;
                            }
                            push(&mut out, t, next, (i - from) as f64 * tr.scale);
                            t = next;
                            if out.len() > MAX_PHASES {
                                return None;
                            }
                        }
                    }
                }
                push(&mut out, t, end, 0.0);
            }
        }
        Some(out)
    }
}

impl TraceData {
    /// Arrivals recorded, and the end of the recording (µs).
    pub fn totals(&self) -> (u64, u64) {
        match self {
            TraceData::Empty => (0, 0),
            TraceData::Times(v) => (v.len() as u64, v.last().map_or(0, |&t| t + 1)),
            TraceData::Counts(c) => (
                c.iter().map(|&(_, _, n)| n).sum(),
                c.last().map_or(0, |&(_, b, _)| b),
            ),
        }
    }
}

/// `workload.pick`: how the `ops` model picks a container. TOML: `"uniform"`,
/// `{ zipf = { s = 1.1 } }` or `{ kind = "zipf", s = 1.1 }`.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Pick {
    /// Every container equally likely.
    Uniform,
    /// Zipf over the containers with exponent `s` (> 0).
    Zipf {
        /// The exponent.
        s: f64,
    },
}

/// A distribution of durations (service times, gaps). TOML: `{ dist = "exp", mean = "1s" }`,
/// `{ dist = "constant", value = … }`, `{ dist = "uniform", min = …, max = … }`,
/// `{ dist = "lognormal", median = …, p99 = … }`, `{ dist = "empirical", file = "x.txt" }`
/// (or `samples = ["1ms", 2.5, …]`; plain numbers are milliseconds).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(tag = "dist", rename_all = "lowercase")]
pub enum Dist {
    /// Exponential with this mean (> 0).
    Exp {
        /// The mean.
        #[serde(with = "ser::dur")]
        mean: Duration,
    },
    /// Always this value.
    Constant {
        /// The value.
        #[serde(with = "ser::dur")]
        value: Duration,
    },
    /// Uniform in [min, max] (min <= max).
    Uniform {
        /// Lower bound.
        #[serde(with = "ser::dur")]
        min: Duration,
        /// Upper bound.
        #[serde(with = "ser::dur")]
        max: Duration,
    },
    /// Lognormal with this median and 99th percentile (p99 > median > 0).
    Lognormal {
        /// The median.
        #[serde(with = "ser::dur")]
        median: Duration,
        /// The 99th percentile.
        #[serde(with = "ser::dur")]
        p99: Duration,
    },
    /// Drawn uniformly from these samples (at least one).
    Empirical {
        /// The samples, in file order.
        #[serde(serialize_with = "ser::durs")]
        samples: Vec<Duration>,
    },
    /// Drawn from a Prometheus-style histogram (`dist = "empirical"` with `histogram`):
    /// linear within the bucket, the `+Inf` bucket by its stated tail.
    #[serde(rename = "empirical")]
    Histogram {
        /// The histogram.
        histogram: histogram::Histogram,
    },
}

/// The standard normal's 99th percentile, z such that Φ(z) = 0.99.
pub const Z99: f64 = 2.326_347_874_040_840_8;

impl Dist {
    /// The lognormal's σ from its median and p99: ln(p99 / median) / z₀.₉₉ (0 for other
    /// distributions).
    pub fn lognormal_sigma(&self) -> f64 {
        match *self {
            Dist::Lognormal { median, p99 } => {
                (p99.as_secs_f64() / median.as_secs_f64()).ln() / Z99
            }
            _ => 0.0,
        }
    }

    /// The distribution's mean (saturating at `Duration::MAX`; validated scenarios keep it
    /// within 30 days).
    pub fn mean(&self) -> Duration {
        match self {
            Dist::Exp { mean } => *mean,
            Dist::Constant { value } => *value,
            Dist::Uniform { min, max } => {
                let sum = min.as_nanos() + max.as_nanos();
                nanos_to_duration(sum / 2)
            }
            Dist::Lognormal { median, .. } => {
                let sigma = self.lognormal_sigma();
                let m = median.as_secs_f64() * (sigma * sigma / 2.0).exp();
                Duration::try_from_secs_f64(m).unwrap_or(Duration::MAX)
            }
            Dist::Empirical { samples } => {
                if samples.is_empty() {
                    return Duration::ZERO;
                }
                let sum: u128 = samples.iter().map(|d| d.as_nanos()).sum();
                nanos_to_duration(sum / samples.len() as u128)
            }
            Dist::Histogram { histogram } => {
                Duration::try_from_secs_f64(histogram.mean()).unwrap_or(Duration::MAX)
            }
        }
    }
}

fn nanos_to_duration(n: u128) -> Duration {
    let secs = n / 1_000_000_000;
    let nanos = (n % 1_000_000_000) as u32;
    match u64::try_from(secs) {
        Ok(s) => Duration::new(s, nanos),
        Err(_) => Duration::MAX,
    }
}

conductor::keyword_enum! {
    /// `client.wait_for`: what an attempt's timeout covers.
    pub enum WaitFor, "what the client waits for" {
        /// The API's answer (202 for an async op): today's client.
        Answer = "answer",
        /// The op becoming terminal: the client waits (as a user or an orchestrator polling
        /// until the container is in its state) and times out when that takes too long.
        Done = "done",
    }
}

/// `[client]`.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Client {
    /// How long the client waits for an answer; zero = forever.
    #[serde(with = "ser::dur")]
    pub timeout: Duration,
    /// Which outcomes the client retries, using `[client.retry]` (no duplicates, in file order).
    pub retry_on: Vec<RetryOn>,
    /// What the timeout covers.
    pub wait_for: WaitFor,
    /// What happens to an attempt the client timed out on (`none` unless `timeout` is set).
    #[serde(skip_serializing_if = "Cancel::is_none")]
    pub cancel: Cancel,
    /// Client processes, 1..=1000, each with its own budget, throttle and breaker; requests are
    /// dealt among them round-robin (a lifecycle's container to one client).
    pub instances: u32,
    /// `client.retry_same_op`: a retry re-sends the same op under the same id (the idempotency
    /// key the API dedupes by) rather than a new op under a new id. Left out of the echo when
    /// false (today's client), so files written back stay as they were.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub retry_same_op: bool,
    /// `[client.retry]`, when the file has one; `None`: the client retries with `[retry]`
    /// (see [`Scenario::client_retry`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry: Option<ClientRetry>,
}

/// The client's own retry behaviour, `[client.retry]`: its keys absent take `[retry]`'s
/// values, except `budget`, `throttling` and `breaker`, which are absent (unlimited, off).
#[derive(Debug, Clone, PartialEq)]
pub struct ClientRetry {
    /// The backoff policy.
    pub policy: Backoff,
    /// The first delay (<= `cap`).
    pub base: Duration,
    /// The largest delay.
    pub cap: Duration,
    /// Attempts in all, first included, 1..=100.
    pub max_attempts: u32,
    /// The retry budget.
    pub budget: ClientBudget,
    /// gRPC retry throttling (gRFC A6), if any.
    pub throttling: Option<conductor::retry::ThrottleConfig>,
    /// A circuit breaker, if any.
    pub breaker: Option<conductor::retry::BreakerConfig>,
}

/// The client's retry budget.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ClientBudget {
    /// No budget: every retry the policy allows goes.
    Unlimited,
    /// `[retry].budget` (no `[client.retry]` table): `ratio` 0 = unlimited.
    Ratio {
        /// Retries per request.
        ratio: f64,
        /// Retries per second whatever the traffic.
        min_per_s: f64,
    },
    /// Finagle's `RetryBudget` exactly (`[client.retry].budget`).
    Finagle(conductor::retry::FinagleBudgetConfig),
}

impl ClientRetry {
    /// The policy as the client applies it.
    pub fn to_policy(&self) -> conductor::retry::RetryPolicy {
        conductor::retry::RetryPolicy {
            backoff: self.policy,
            base: self.base,
            cap: self.cap,
            max_attempts: self.max_attempts,
        }
    }
}

impl Scenario {
    /// The client's retry behaviour: `[client.retry]`, or without one `[retry]`'s policy and
    /// budget, as before `[client.retry]` existed.
    pub fn client_retry(&self) -> ClientRetry {
        match &self.client.retry {
            Some(r) => r.clone(),
            None => ClientRetry {
                policy: self.retry.policy,
                base: self.retry.base,
                cap: self.retry.cap,
                max_attempts: self.retry.max_attempts,
                budget: ClientBudget::Ratio {
                    ratio: self.retry.budget_ratio,
                    min_per_s: self.retry.budget_min_per_s,
                },
                throttling: None,
                breaker: None,
            },
        }
    }
}

/// `[backend]`: host service times per op, and host failures.
#[derive(Debug, Clone, PartialEq)]
pub struct Backend {
    /// Service time of the ops not named in `per_op`.
    pub default: Dist,
    /// Service times of named ops (TOML keys named after ops), in [`OpKind::ALL`] order.
    pub per_op: Vec<(OpKind, Dist)>,
    /// Probability in [0, 1] that a host fails an op.
    pub failure_rate: f64,
}

impl Backend {
    /// The service-time distribution of `op`: its own if named, else `default`.
    pub fn dist(&self, op: OpKind) -> &Dist {
        self.per_op
            .iter()
            .find(|(o, _)| *o == op)
            .map(|(_, d)| d)
            .unwrap_or(&self.default)
    }
}

/// `[retry]`: the re-queue / client retry policy. In TOML the budget is
/// `budget = { ratio = 0.0, min_per_s = 0.0 }`.
#[derive(Debug, Clone, PartialEq)]
pub struct Retry {
    /// The backoff policy.
    pub policy: Backoff,
    /// The first delay (<= `cap`).
    pub base: Duration,
    /// The largest delay.
    pub cap: Duration,
    /// Attempts in all, first included, 1..=100.
    pub max_attempts: u32,
    /// `retry.budget.ratio` (>= 0): retries allowed per request; 0 = no budget.
    pub budget_ratio: f64,
    /// `retry.budget.min_per_s` (>= 0): retries allowed per second whatever the ratio.
    pub budget_min_per_s: f64,
}

impl Retry {
    /// The policy as the conductor and the client apply it.
    pub fn to_policy(&self) -> conductor::retry::RetryPolicy {
        conductor::retry::RetryPolicy {
            backoff: self.policy,
            base: self.base,
            cap: self.cap,
            max_attempts: self.max_attempts,
        }
    }

    /// A fresh retry budget from `retry.budget` (one per client or conductor).
    pub fn to_budget(&self) -> conductor::retry::RetryBudget {
        conductor::retry::RetryBudget::new(self.budget_ratio, self.budget_min_per_s)
    }
}

/// `[nemesis]`: random faults.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Nemesis {
    /// The fault kinds it draws from (no duplicates, at least one).
    pub kinds: Vec<fault::Kind>,
    /// The nodes it targets (no duplicates); empty = the conductors.
    pub targets: Vec<Node>,
    /// Mean time between faults (> 0).
    #[serde(with = "ser::dur")]
    pub mean_interval: Duration,
    /// Mean length of a fault (> 0).
    #[serde(with = "ser::dur")]
    pub mean_duration: Duration,
    /// Swarm testing: each seed draws, from the nemesis's own stream, a non-empty subset of
    /// `kinds` and of the targets, and scales both means by random intensities, before it
    /// draws its faults (`false`: every seed uses the whole mix).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub swarm: bool,
}

/// `[checks]`.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Checks {
    /// The invariants judged, in the order written (`"all"` expanded in the checker's table
    /// order, no duplicates).
    pub invariants: Vec<Invariant>,
    /// The invariants the scenario is meant to break (a subset of `invariants`).
    pub expect: Vec<Invariant>,
}

impl Checks {
    /// The invariants judged, as the checker takes them.
    pub fn judged(&self) -> InvariantSet {
        self.invariants.iter().copied().collect()
    }
}
