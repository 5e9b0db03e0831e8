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

pub mod client;
#[cfg(test)]
mod documented;
mod error;
pub mod fault;
pub mod host_model;
mod node;
mod op;
mod parse;
pub mod rng;
mod ser;
mod set;
#[cfg(test)]
mod tests;
pub mod workload;

pub use error::ScenarioError;
pub use fault::{Fault, FaultKind};
pub use node::{Node, NodeSet};
pub use op::{OpKind, UnknownOp};

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
    let scn = load(path, sets)?;
    Ok(format!(
        "{}: ok — {} ({} conductor(s), {} pool workers each, about {:.0} ops over {})",
        path.display(),
        scn.name,
        scn.cluster.conductors,
        scn.cluster.pool_workers,
        scn.expected_ops(),
        humantime::format_duration(scn.duration),
    ))
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
pub use conductor::cluster::{Ordering, Routing};
pub use conductor::conductor::{Overflow, RecoveryPolicy};
pub use conductor::keyword::Keyword;
pub use conductor::retry::Backoff;

conductor::keyword_enum! {
    /// `workload.model`: how the workload generates requests.
    pub enum Model, "a workload model" {
        /// `mix` over pre-created containers.
        Ops = "ops",
        /// Each new container runs through `lifecycle`.
        Lifecycle = "lifecycle",
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
            Model::Lifecycle => self.workload.lifecycle.len() as f64,
        };
        self.workload.arrival.mean_rate() * self.duration.as_secs_f64() * per_arrival
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

/// `[client]`.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Client {
    /// How long the client waits for an answer; zero = forever.
    #[serde(with = "ser::dur")]
    pub timeout: Duration,
    /// Which outcomes the client retries, using `[retry]` (no duplicates, in file order).
    pub retry_on: Vec<RetryOn>,
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

/// `[slo]`: absent keys are not judged.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Slo {
    /// The largest acceptable exhaustion ratio, in [0, 1].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exhaustion_ratio_max: Option<f64>,
    /// The largest acceptable p99 completion latency.
    #[serde(with = "ser::opt_dur", skip_serializing_if = "Option::is_none")]
    pub p99_max: Option<Duration>,
}
