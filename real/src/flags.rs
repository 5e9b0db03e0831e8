//! The flag vocabulary the commands share: value parsers that name what a bad value should have
//! been, and the flag groups several services take (`--log`, `--wait`, the cluster's shape).

use conductor::cluster::Routing;
use conductor::op::OpKind;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::time::Duration;

/// Where a service records its events.
#[derive(clap::Args, Debug)]
pub struct Log {
    /// Write the JSON-lines event log to FILE instead of stderr.
    #[arg(long, value_name = "FILE")]
    pub log: Option<PathBuf>,
}

/// How long a service waits for those it depends on.
#[derive(clap::Args, Debug)]
pub struct Wait {
    /// How long to keep trying to reach the services this one depends on.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = duration)]
    pub wait: Duration,
}

/// What a listening service puts up with from its peers.
#[derive(clap::Args, Debug)]
pub struct Limits {
    /// Connections open at once; one more is told why and closed (keep it below the
    /// open-file limit, `ulimit -n`, less the service's own connections).
    #[arg(long, value_name = "N",
          default_value_t = conductor::net::Limits::DEFAULT_MAX_CONNECTIONS,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub max_connections: u32,
    /// How long a frame may take to arrive once its first byte has; a slower sender is
    /// disconnected (idle connections may stay).
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = positive_duration)]
    pub frame_deadline: Duration,
}

impl Limits {
    /// The limits as the services take them.
    pub fn get(&self) -> conductor::net::Limits {
        conductor::net::Limits {
            max_connections: self.max_connections,
            frame_deadline: self.frame_deadline,
        }
    }
}

/// What the API and every conductor must agree on.
#[derive(clap::Args, Debug)]
pub struct Cluster {
    /// How many conductors there are.
    #[arg(long, default_value_t = 1, value_parser = within(scenario::bounds::CONDUCTORS))]
    pub conductors: u32,
    /// Which conductor's queue an op goes to.
    #[arg(long, value_enum, default_value_t = Routing::RoundRobin)]
    pub routing: Routing,
    /// Lease of locks and membership.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = positive_duration)]
    pub lease_ttl: Duration,
}

/// A `u32` flag within one of the scenario's bounds (the same values as its key).
pub fn within(b: scenario::bounds::Bound) -> clap::builder::RangedI64ValueParser<u32> {
    clap::value_parser!(u32).range(b.range())
}

/// A `--containers` flag: 0 (none pre-created) or a count the scenario accepts.
pub fn containers() -> clap::builder::RangedU64ValueParser<u64> {
    clap::value_parser!(u64).range(0..=u64::from(scenario::bounds::CONTAINERS.hi))
}

/// `HOST:PORT`, an IP address or a name that resolves.
pub fn addr(s: &str) -> Result<SocketAddr, String> {
    if let Ok(a) = s.parse() {
        return Ok(a);
    }
    s.to_socket_addrs()
        .map_err(|e| format!("`{s}` is not HOST:PORT ({e})"))?
        .next()
        .ok_or_else(|| format!("`{s}` resolves to no address"))
}

/// A humantime duration (`500ms`, `10s`, `1m`).
pub fn duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s)
        .map_err(|e| format!("`{s}` is not a duration such as 500ms, 10s or 1m ({e})"))
}

/// A [`duration`] longer than zero.
pub fn positive_duration(s: &str) -> Result<Duration, String> {
    match duration(s)? {
        d if d.is_zero() => Err("must be longer than zero".into()),
        d => Ok(d),
    }
}

/// A finite rate above zero, in requests per second.
pub fn positive_rate(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(r) if r.is_finite() && r > 0.0 => Ok(r),
        _ => Err(format!(
            "`{s}` is not a positive number of requests per second"
        )),
    }
}

/// A probability in [0, 1].
pub fn probability(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(p) if (0.0..=1.0).contains(&p) => Ok(p),
        _ => Err(format!("`{s}` is not a probability between 0 and 1")),
    }
}

/// An op by its scenario name (`start`, `create`, …).
pub fn op_kind(s: &str) -> Result<OpKind, String> {
    s.parse()
        .map_err(|e: conductor::op::UnknownOp| e.to_string())
}

/// `--etcd`'s problem, if any: the flag needs a binary built with the cargo feature `etcd`
/// (off by default: the etcd client's build compiles protos with protoc).
pub fn etcd_problem(endpoints: &[String]) -> Option<String> {
    (!endpoints.is_empty() && !cfg!(feature = "etcd")).then(|| {
        "--etcd needs a conductor built with the cargo feature `etcd` \
         (`--features etcd`; its build needs protoc)"
            .to_string()
    })
}
