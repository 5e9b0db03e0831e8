//! Validation of the TOML tree into a [`Scenario`]: a hand-written walker that knows every
//! key's dotted path, so each error names it.

use super::*;
use std::collections::BTreeMap;
use std::io::Read;
use std::path::PathBuf;
use toml::{Table, Value};

/// The largest scenario (or empirical samples) file read, in bytes.
pub(super) const MAX_FILE_BYTES: u64 = 64 << 20;

pub(crate) type R<T> = Result<T, ScenarioError>;

/// Where messages point: the file name, and the directory relative files resolve against.
pub(super) struct Cx<'a> {
    pub origin: &'a str,
    pub base_dir: Option<&'a Path>,
}

impl Cx<'_> {
    pub(crate) fn invalid(&self, key: &str, message: impl Into<String>) -> ScenarioError {
        ScenarioError::Invalid {
            origin: self.origin.to_string(),
            key: key.to_string(),
            message: message.into(),
        }
    }
}

/// Reads at most `cap` bytes of UTF-8 text (a larger file, a FIFO fed forever, `/dev/zero`
/// are errors, not hangs or OOMs).
pub(super) fn read_capped(path: &Path, cap: u64) -> Result<String, String> {
    let f = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let mut buf = Vec::new();
    f.take(cap + 1)
        .read_to_end(&mut buf)
        .map_err(|e| e.to_string())?;
    if buf.len() as u64 > cap {
        return Err(format!("the file is larger than {} MiB", cap >> 20));
    }
    String::from_utf8(buf).map_err(|e| format!("not UTF-8 text ({e})"))
}

/// Parses TOML text into a table; a syntax error carries the file, line and column.
pub(super) fn toml_table(src: &str, origin: &str) -> R<Table> {
    src.parse::<Table>().map_err(|e| {
        let (line, column) = match e.span() {
            Some(span) => line_col(src, span.start),
            None => (1, 1),
        };
        ScenarioError::Syntax {
            origin: origin.to_string(),
            line,
            column,
            message: e.message().trim().to_string(),
        }
    })
}

fn line_col(src: &str, offset: usize) -> (usize, usize) {
    let mut end = offset.min(src.len());
    while !src.is_char_boundary(end) {
        end -= 1;
    }
    let before = &src[..end];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// What was found, for "expected X, got Y" on a type mismatch.
fn found(v: &Value) -> String {
    match v {
        Value::String(s) => {
            let mut q: String = s.chars().take(60).collect();
            if q.len() < s.len() {
                q.push('…');
            }
            format!("the string {q:?}")
        }
        Value::Integer(i) => format!("the integer {i}"),
        Value::Float(f) => format!("the float {f}"),
        Value::Boolean(b) => format!("the boolean {b}"),
        Value::Datetime(d) => format!("the datetime {d}"),
        Value::Array(_) => "an array".to_string(),
        Value::Table(_) => "a table".to_string(),
    }
}

// ----- scalar conversions -------------------------------------------------------------------

fn int(cx: &Cx, key: &str, v: &Value, lo: i64, hi: i64) -> R<i64> {
    let want = || format!("expected an integer in {lo}..={hi}");
    match v {
        Value::Integer(i) if (lo..=hi).contains(i) => Ok(*i),
        Value::Integer(i) => Err(cx.invalid(key, format!("{}, got {i}", want()))),
        _ => Err(cx.invalid(key, format!("{}, got {}", want(), found(v)))),
    }
}

fn int_u32(cx: &Cx, key: &str, v: &Value, lo: u32, hi: u32) -> R<u32> {
    let i = int(cx, key, v, i64::from(lo), i64::from(hi))?;
    u32::try_from(i).map_err(|_| cx.invalid(key, format!("expected an integer in {lo}..={hi}")))
}

/// A check on a float.
#[derive(Clone, Copy)]
pub(crate) enum F {
    /// > 0
    Pos,
    /// >= 0
    NonNeg,
    /// [0, 1]
    Unit,
    /// [0, 1)
    UnitOpen,
}

impl F {
    fn ok(self, x: f64) -> bool {
        x.is_finite()
            && match self {
                F::Pos => x > 0.0,
                F::NonNeg => x >= 0.0,
                F::Unit => (0.0..=1.0).contains(&x),
                F::UnitOpen => (0.0..1.0).contains(&x),
            }
    }
    fn want(self) -> &'static str {
        match self {
            F::Pos => "expected a finite number > 0",
            F::NonNeg => "expected a finite number >= 0",
            F::Unit => "expected a number in [0, 1]",
            F::UnitOpen => "expected a number in [0, 1)",
        }
    }
}

fn float(cx: &Cx, key: &str, v: &Value, check: F) -> R<f64> {
    let x = match v {
        Value::Float(f) => *f,
        Value::Integer(i) => *i as f64,
        _ => return Err(cx.invalid(key, format!("{}, got {}", check.want(), found(v)))),
    };
    if check.ok(x) {
        Ok(x)
    } else {
        Err(cx.invalid(key, format!("{}, got {x}", check.want())))
    }
}

fn boolean(cx: &Cx, key: &str, v: &Value) -> R<bool> {
    match v {
        Value::Boolean(b) => Ok(*b),
        _ => Err(cx.invalid(key, format!("expected true or false, got {}", found(v)))),
    }
}

fn string<'v>(cx: &Cx, key: &str, v: &'v Value) -> R<&'v str> {
    match v {
        Value::String(s) => Ok(s),
        _ => Err(cx.invalid(key, format!("expected a string, got {}", found(v)))),
    }
}

/// A check on a duration (every duration is also at most [`MAX_DURATION`]).
#[derive(Clone, Copy, PartialEq)]
pub(crate) enum D {
    /// >= 0
    Any,
    /// > 0
    Pos,
}

const DUR_HINT: &str = "a duration like \"250ms\", \"10s\" or \"1h\"";

fn parse_dur(s: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(s.trim()).map_err(|e| e.to_string())?;
    if d > MAX_DURATION {
        return Err("over the 30-day limit on any duration".to_string());
    }
    Ok(d)
}

fn dur(cx: &Cx, key: &str, v: &Value, check: D) -> R<Duration> {
    let d = match v {
        Value::String(s) => parse_dur(s)
            .map_err(|e| cx.invalid(key, format!("expected {DUR_HINT}, got {}: {e}", found(v))))?,
        Value::Integer(0) => Duration::ZERO,
        _ => return Err(cx.invalid(key, format!("expected {DUR_HINT}, got {}", found(v)))),
    };
    if check == D::Pos && d.is_zero() {
        return Err(cx.invalid(key, "expected a duration greater than 0s, got 0s"));
    }
    Ok(d)
}

fn keyword<K: Keyword>(cx: &Cx, key: &str, v: &Value) -> R<K> {
    let want = || {
        let names: Vec<String> = K::ALL.iter().map(|k| format!("\"{}\"", k.name())).collect();
        format!("expected {} ({})", K::WHAT, names.join(" | "))
    };
    let s = match v {
        Value::String(s) => s,
        _ => return Err(cx.invalid(key, format!("{}, got {}", want(), found(v)))),
    };
    K::ALL
        .iter()
        .copied()
        .find(|k| k.name() == s)
        .ok_or_else(|| cx.invalid(key, format!("{}, got {}", want(), found(v))))
}

/// One of a fixed list of names (a union's tag, a fault kind, an invariant).
fn one_of<'n>(cx: &Cx, key: &str, v: &Value, what: &str, names: &[&'n str]) -> R<&'n str> {
    let want = || {
        let q: Vec<String> = names.iter().map(|n| format!("\"{n}\"")).collect();
        format!("expected {what} ({})", q.join(" | "))
    };
    let s = match v {
        Value::String(s) => s,
        _ => return Err(cx.invalid(key, format!("{}, got {}", want(), found(v)))),
    };
    names
        .iter()
        .copied()
        .find(|n| *n == s)
        .ok_or_else(|| cx.invalid(key, format!("{}, got {}", want(), found(v))))
}

pub(crate) fn array<'v>(cx: &Cx, key: &str, v: &'v Value, what: &str) -> R<&'v [Value]> {
    match v {
        Value::Array(a) => Ok(a),
        _ => Err(cx.invalid(
            key,
            format!("expected an array of {what}, got {}", found(v)),
        )),
    }
}

fn table<'v>(cx: &Cx, key: &str, v: &'v Value, hint: &str) -> R<&'v Table> {
    match v {
        Value::Table(t) => Ok(t),
        _ => Err(cx.invalid(key, format!("expected a table{hint}, got {}", found(v)))),
    }
}

// ----- tables -------------------------------------------------------------------------------

/// A table being read (`None`: absent, every key takes its default), with its dotted path.
pub(crate) struct Tb<'a> {
    pub(crate) cx: &'a Cx<'a>,
    path: String,
    t: Option<&'a Table>,
}

impl<'a> Tb<'a> {
    /// Opens a table, refusing keys not in `allowed`.
    fn open(cx: &'a Cx<'a>, path: String, t: Option<&'a Table>, allowed: &[&str]) -> R<Self> {
        #[cfg(test)]
        accepted::note(&path, allowed);
        if let Some(t) = t {
            if let Some(k) = t.keys().find(|k| !allowed.contains(&k.as_str())) {
                return Err(ScenarioError::UnknownKey {
                    origin: cx.origin.to_string(),
                    key: join(&path, k),
                    expected: allowed.join(", "),
                });
            }
        }
        Ok(Tb { cx, path, t })
    }

    /// Opens the sub-table `k` (absent: an empty one).
    fn sub(&self, k: &str, allowed: &[&str]) -> R<Tb<'a>> {
        let key = self.key(k);
        let t = match self.get(k) {
            None => None,
            Some(v) => Some(table(self.cx, &key, v, "")?),
        };
        Tb::open(self.cx, key, t, allowed)
    }

    pub(crate) fn key(&self, k: &str) -> String {
        join(&self.path, k)
    }

    fn get(&self, k: &str) -> Option<&'a Value> {
        self.t.and_then(|t| t.get(k))
    }

    fn has(&self, k: &str) -> bool {
        self.get(k).is_some()
    }

    pub(crate) fn req(&self, k: &str) -> R<&'a Value> {
        self.get(k)
            .ok_or_else(|| self.cx.invalid(&self.key(k), "required key is missing"))
    }

    fn u32(&self, k: &str, default: u32, lo: u32, hi: u32) -> R<u32> {
        self.get(k)
            .map_or(Ok(default), |v| int_u32(self.cx, &self.key(k), v, lo, hi))
    }

    /// [`Tb::u32`] within a bound the real services' flags share.
    fn bounded(&self, k: &str, default: u32, b: bounds::Bound) -> R<u32> {
        self.u32(k, default, b.lo, b.hi)
    }

    fn f64(&self, k: &str, default: f64, check: F) -> R<f64> {
        self.get(k)
            .map_or(Ok(default), |v| float(self.cx, &self.key(k), v, check))
    }

    pub(crate) fn req_f64(&self, k: &str, check: F) -> R<f64> {
        float(self.cx, &self.key(k), self.req(k)?, check)
    }

    fn opt_f64(&self, k: &str, check: F) -> R<Option<f64>> {
        self.get(k)
            .map(|v| float(self.cx, &self.key(k), v, check))
            .transpose()
    }

    pub(crate) fn bool(&self, k: &str, default: bool) -> R<bool> {
        self.get(k)
            .map_or(Ok(default), |v| boolean(self.cx, &self.key(k), v))
    }

    fn dur(&self, k: &str, default: Duration, check: D) -> R<Duration> {
        self.get(k)
            .map_or(Ok(default), |v| dur(self.cx, &self.key(k), v, check))
    }

    pub(crate) fn req_dur(&self, k: &str, check: D) -> R<Duration> {
        dur(self.cx, &self.key(k), self.req(k)?, check)
    }

    pub(crate) fn opt_dur(&self, k: &str, check: D) -> R<Option<Duration>> {
        self.get(k)
            .map(|v| dur(self.cx, &self.key(k), v, check))
            .transpose()
    }

    fn kw<K: Keyword>(&self, k: &str, default: K) -> R<K> {
        self.get(k)
            .map_or(Ok(default), |v| keyword(self.cx, &self.key(k), v))
    }

    fn string(&self, k: &str, default: &str) -> R<String> {
        self.get(k).map_or(Ok(default.to_string()), |v| {
            string(self.cx, &self.key(k), v).map(str::to_string)
        })
    }
}

// ----- nodes --------------------------------------------------------------------------------

/// The nodes of a cluster, for reading node names at their keys.
pub(crate) struct Nodes(pub(crate) NodeSet);

impl Nodes {
    /// The node named at `key`.
    pub(crate) fn node(&self, cx: &Cx, key: &str, v: &Value) -> R<Node> {
        let s = match v {
            Value::String(s) => s,
            _ => {
                return Err(cx.invalid(
                    key,
                    format!(
                        "expected a node name ({}), got {}",
                        self.0.describe(),
                        found(v)
                    ),
                ))
            }
        };
        self.0.parse(s).map_err(|m| cx.invalid(key, m))
    }

    /// The host named at `key`.
    pub(crate) fn host(&self, cx: &Cx, key: &str, v: &Value) -> R<Node> {
        let n = self.node(cx, key, v)?;
        self.0.host(n).map_err(|m| cx.invalid(key, m))
    }

    /// A list of node names; duplicates are errors.
    pub(crate) fn list(&self, cx: &Cx, key: &str, v: &Value) -> R<Vec<Node>> {
        let a = array(cx, key, v, "node names")?;
        let mut out: Vec<Node> = Vec::new();
        for (i, e) in a.iter().enumerate() {
            let k = format!("{key}[{i}]");
            let n = self.node(cx, &k, e)?;
            if out.contains(&n) {
                return Err(cx.invalid(&k, format!("node `{n}` is listed twice")));
            }
            out.push(n);
        }
        Ok(out)
    }
}

// ----- the scenario -------------------------------------------------------------------------

const TOP_KEYS: &[&str] = &[
    "name",
    "description",
    "seed",
    "duration",
    "warmup",
    "drain",
    "cluster",
    "api",
    "bus",
    "network",
    "workload",
    "client",
    "backend",
    "retry",
    "faults",
    "nemesis",
    "checks",
    "slo",
    "simulation",
    "target",
];

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn ms(m: u64) -> Duration {
    Duration::from_millis(m)
}

fn fmt_dur(d: Duration) -> String {
    humantime::format_duration(d).to_string()
}

pub(super) fn scenario(cx: &Cx, root: &Table) -> R<Scenario> {
    let top = Tb::open(cx, String::new(), Some(root), TOP_KEYS)?;

    let name = match top.get("name") {
        None => {
            return Err(cx.invalid(
                "name",
                "required key is missing (the scenario's name, e.g. name = \"baseline\")",
            ))
        }
        Some(v) => string(cx, "name", v)?.to_string(),
    };
    let name_ok = !name.is_empty()
        && name.len() <= 128
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if !name_ok {
        return Err(cx.invalid(
            "name",
            format!(
                "expected a non-empty name of at most 128 characters from [A-Za-z0-9._-] \
                 (it names the report directory), got {:?}",
                name.chars().take(60).collect::<String>()
            ),
        ));
    }
    let description = top.string("description", "")?;
    let seed = match top.get("seed") {
        None => 1,
        Some(v) => int(cx, "seed", v, 0, i64::MAX)? as u64,
    };
    let duration = top.dur("duration", secs(3600), D::Pos)?;
    let warmup = top.dur("warmup", Duration::ZERO, D::Any)?;
    let drain = top.dur("drain", secs(600), D::Any)?;
    if warmup >= duration {
        return Err(cx.invalid(
            "warmup",
            format!(
                "expected less than `duration` ({}), got {}",
                fmt_dur(duration),
                fmt_dur(warmup)
            ),
        ));
    }
    match duration.checked_add(drain) {
        Some(total) if total <= MAX_DURATION => {}
        _ => {
            return Err(cx.invalid(
                "drain",
                format!(
                    "duration + drain ({} + {}) is over the 30-day limit",
                    fmt_dur(duration),
                    fmt_dur(drain)
                ),
            ))
        }
    }

    let cluster = cluster(&top.sub("cluster", CLUSTER_KEYS)?)?;
    let nodes = Nodes(NodeSet {
        conductors: cluster.conductors,
        hosts: cluster.hosts,
        etcd: cluster.etcd_members.unwrap_or(0),
    });
    let api = api(&top.sub("api", &["validate_state", "async_rpc", "rpc_timeout"])?)?;
    let bus = {
        let t = top.sub("bus", &["prefetch"])?;
        Bus {
            prefetch: t.u32("prefetch", 0, 0, 10_000_000)?,
        }
    };
    let network = network(&top.sub("network", &["latency", "loss"])?)?;
    let workload = workload(&top.sub("workload", WORKLOAD_KEYS)?)?;
    let backend = backend(&top)?;
    let retry = retry(&top.sub(
        "retry",
        &["policy", "base", "cap", "max_attempts", "budget"],
    )?)?;
    let client = client(&top.sub("client", CLIENT_KEYS)?, &retry)?;
    let faults = match top.get("faults") {
        None => Vec::new(),
        Some(v) => {
            let a = array(cx, "faults", v, "tables ([[faults]])")?;
            let mut out = Vec::with_capacity(a.len());
            for (i, f) in a.iter().enumerate() {
                out.push(fault(cx, &format!("faults[{i}]"), f, &nodes, duration)?);
            }
            out
        }
    };
    let nemesis = match top.get("nemesis") {
        None => None,
        Some(v) => {
            let t = table(cx, "nemesis", v, "")?;
            let t = Tb::open(
                cx,
                "nemesis".into(),
                Some(t),
                &[
                    "kinds",
                    "targets",
                    "mean_interval",
                    "mean_duration",
                    "swarm",
                ],
            )?;
            Some(nemesis(&t, &nodes, duration)?)
        }
    };
    let checks = checks(&top.sub("checks", &["invariants", "expect"])?)?;
    let slo = slo(&top)?;
    let simulation = {
        let t = top.sub("simulation", &["schedule_seed"])?;
        Simulation {
            schedule_seed: match t.get("schedule_seed") {
                None => None,
                Some(v) => Some(int(cx, &t.key("schedule_seed"), v, 0, i64::MAX)? as u64),
            },
        }
    };

    let target = target(&top.sub("target", TARGET_KEYS)?)?;

    let s = Scenario {
        target,
        name,
        description,
        seed,
        duration,
        warmup,
        drain,
        cluster,
        api,
        bus,
        network,
        workload,
        client,
        backend,
        retry,
        faults,
        nemesis,
        checks,
        slo,
        simulation,
    };

    if matches!(
        s.workload.arrival,
        Arrival::Schedule { .. } | Arrival::Trace(_)
    ) && s.workload.arrival.phases(s.duration).is_none()
    {
        return Err(cx.invalid(
            "workload.arrival",
            format!(
                "over `duration` ({}) the load plays more than {MAX_PHASES} phases; make them longer or repeat them less",
                fmt_dur(s.duration)
            ),
        ));
    }
    if let Some(a) = &s.workload.ops_arrival {
        if a.phases(s.duration).is_none() {
            return Err(cx.invalid(
                "workload.ops_arrival",
                format!(
                    "over `duration` ({}) the load plays more than {MAX_PHASES} phases; make them longer or repeat them less",
                    fmt_dur(s.duration)
                ),
            ));
        }
    }
    let ops = s.expected_ops();
    if !ops.is_finite() || ops > MAX_EXPECTED_OPS {
        return Err(cx.invalid(
            "workload.arrival",
            format!(
                "the scenario expects about {ops:.3e} operations (mean rate {}/s × duration {}{}), \
                 over the limit of 1e8 operations per run; lower the rate or the duration",
                s.workload.arrival.mean_rate(),
                fmt_dur(s.duration),
                if s.workload.model == Model::Lifecycle {
                    format!(" × {} lifecycle ops", s.workload.lifecycle.len())
                } else {
                    String::new()
                }
            ),
        ));
    }
    Ok(s)
}

const CLUSTER_KEYS: &[&str] = &[
    "conductors",
    "hosts",
    "rpc_workers",
    "pool_workers",
    "overflow",
    "routing",
    "ordering",
    "fencing",
    "lease_ttl",
    "recovery",
    "reconcile_interval",
    "orphan_after",
    "coordination",
    "etcd_members",
];

/// The host links a run may hold at most. A conductor connects to a host when it first calls it
/// (and keeps the link): a by-host conductor calls only the hosts it owns, so a by-host cluster
/// holds one link per host whatever its size; under the other routings any conductor may call
/// any host, and a long run ends up linking every pair. Each link (two pipes, two reader tasks,
/// the client's correlation table) takes about 2 KB, so this many is about 1 GB.
pub const MAX_CONDUCTOR_HOST_LINKS: u64 = 500_000;

fn cluster(t: &Tb) -> R<Cluster> {
    let conductors = t.bounded("conductors", 1, bounds::CONDUCTORS)?;
    let hosts = t.bounded("hosts", 1, bounds::HOSTS)?;
    let routing = t.kw("routing", Routing::RoundRobin)?;
    if routing != Routing::ByHost
        && u64::from(conductors) * u64::from(hosts) > MAX_CONDUCTOR_HOST_LINKS
    {
        return Err(t.cx.invalid(
            &t.key("hosts"),
            format!(
                "expected conductors × hosts at most {MAX_CONDUCTOR_HOST_LINKS} unless routing \
                 is \"by-host\" (under {routing} any conductor may call, and so link to, any \
                 host), got {conductors} × {hosts}"
            ),
        ));
    }
    let coordination = t.kw("coordination", Engine::Store)?;
    let etcd_members = match coordination {
        Engine::Etcd => Some(t.bounded("etcd_members", 3, bounds::ETCD_MEMBERS)?),
        Engine::Store if t.has("etcd_members") => {
            return Err(t.cx.invalid(
                &t.key("etcd_members"),
                "etcd members are simulated only with `coordination = \"etcd\"` (the store \
                 coordinates by default)"
                    .to_string(),
            ))
        }
        Engine::Store => None,
    };
    Ok(Cluster {
        conductors,
        hosts,
        rpc_workers: t.bounded("rpc_workers", 64, bounds::RPC_WORKERS)?,
        pool_workers: t.bounded("pool_workers", 10, bounds::POOL_WORKERS)?,
        overflow: t.kw("overflow", Overflow::CallerRuns)?,
        routing,
        ordering: t.kw("ordering", Ordering::None)?,
        fencing: t.bool("fencing", false)?,
        lease_ttl: t.dur("lease_ttl", secs(10), D::Pos)?,
        recovery: t.kw("recovery", RecoveryPolicy::Zun)?,
        reconcile_interval: t.dur("reconcile_interval", secs(60), D::Any)?,
        orphan_after: t.dur("orphan_after", secs(120), D::Any)?,
        coordination,
        etcd_members,
    })
}

fn api(t: &Tb) -> R<Api> {
    Ok(Api {
        validate_state: t.bool("validate_state", true)?,
        async_rpc: t.kw("async_rpc", RpcKind::Call)?,
        rpc_timeout: t.dur("rpc_timeout", secs(60), D::Pos)?,
    })
}

fn network(t: &Tb) -> R<Network> {
    let lat = t.sub("latency", &["min", "max"])?;
    let latency_min = lat.dur("min", ms(1), D::Any)?;
    let latency_max = lat.dur("max", ms(10), D::Any)?;
    check_latency(t.cx, &lat, latency_min, latency_max)?;
    Ok(Network {
        latency_min,
        latency_max,
        loss: t.f64("loss", 0.0, F::UnitOpen)?,
    })
}

pub(crate) fn check_latency(cx: &Cx, t: &Tb, min: Duration, max: Duration) -> R<()> {
    if max > MAX_LATENCY {
        return Err(cx.invalid(
            &t.key("max"),
            format!("expected at most 60s, got {}", fmt_dur(max)),
        ));
    }
    if min >= max {
        return Err(cx.invalid(
            &t.key("min"),
            format!(
                "expected min < max strictly (the simulated network panics on equal bounds), \
                 got min = {}, max = {}",
                fmt_dur(min),
                fmt_dur(max)
            ),
        ));
    }
    Ok(())
}

const WORKLOAD_KEYS: &[&str] = &[
    "model",
    "arrival",
    "containers",
    "pick",
    "mix",
    "lifecycle",
    "gap",
    "ops_arrival",
    "initial",
];

const INITIAL_KEYS: &[&str] = &["created", "running", "stopped", "paused"];

/// `workload.initial`: shares in [0, 1] summing to 1.
fn initial(t: &Tb) -> R<Initial> {
    let i = Initial {
        created: t.f64("created", 0.0, F::Unit)?,
        running: t.f64("running", 0.0, F::Unit)?,
        stopped: t.f64("stopped", 0.0, F::Unit)?,
        paused: t.f64("paused", 0.0, F::Unit)?,
    };
    let sum: f64 = i.shares().iter().map(|(_, x)| x).sum();
    if (sum - 1.0).abs() > 1e-9 {
        return Err(t.cx.invalid(
            &t.path,
            format!(
                "expected shares of the pre-created containers' states ({}) summing to 1, got \
                 {}",
                INITIAL_KEYS.join(", "),
                (sum * 1e9).round() / 1e9
            ),
        ));
    }
    Ok(i)
}

fn workload(t: &Tb) -> R<Workload> {
    let cx = t.cx;
    let model = t.kw("model", Model::Ops)?;
    let arrival = match t.get("arrival") {
        None => Arrival::Poisson { rate: 1.0 },
        Some(v) => arrival(cx, &t.key("arrival"), v)?,
    };
    let containers = t.bounded("containers", 1000, bounds::CONTAINERS)?;
    let pick = match t.get("pick") {
        None => Pick::Uniform,
        Some(v) => pick(cx, &t.key("pick"), v)?,
    };
    let mix = match t.get("mix") {
        None => vec![(OpKind::Start, 1.0)],
        Some(v) => mix(cx, &t.key("mix"), v)?,
    };
    let lifecycle = match t.get("lifecycle") {
        None => vec![OpKind::Create, OpKind::Start, OpKind::Stop, OpKind::Delete],
        Some(v) => {
            let key = t.key("lifecycle");
            let a = array(cx, &key, v, "op names")?;
            if a.len() > 1000 {
                return Err(cx.invalid(&key, "expected at most 1000 ops"));
            }
            let mut out = Vec::with_capacity(a.len());
            for (i, e) in a.iter().enumerate() {
                out.push(op(cx, &format!("{key}[{i}]"), e)?);
            }
            if out.is_empty() && model == Model::Lifecycle {
                return Err(cx.invalid(&key, "expected at least one op for the lifecycle model"));
            }
            out
        }
    };
    let gap = match t.get("gap") {
        None => Dist::Exp { mean: secs(1) },
        Some(v) => dist(cx, &t.key("gap"), v)?,
    };
    let mixed_only = |k: &str| {
        cx.invalid(
            &t.key(k),
            format!("a key of the mixed model; set `workload.model = \"mixed\"` (it is `{model}`) or remove it"),
        )
    };
    let ops_arrival =
        match (t.get("ops_arrival"), model) {
            (None, Model::Mixed) => return Err(cx.invalid(
                &t.key("ops_arrival"),
                "required key is missing: the mixed model's arrivals of ops on the pre-created \
                 containers, like { kind = \"poisson\", rate = 3.3 } (`arrival` is the new \
                 containers')",
            )),
            (None, _) => None,
            (Some(v), Model::Mixed) => Some(self::arrival(cx, &t.key("ops_arrival"), v)?),
            (Some(_), _) => return Err(mixed_only("ops_arrival")),
        };
    let initial = match (t.has("initial"), model) {
        (false, _) => Initial::default(),
        (true, Model::Mixed) => initial(&t.sub("initial", INITIAL_KEYS)?)?,
        (true, _) => return Err(mixed_only("initial")),
    };
    if model == Model::Mixed {
        if lifecycle.is_empty() {
            return Err(cx.invalid(
                &t.key("lifecycle"),
                "expected at least one op for the mixed model",
            ));
        }
        if mix.iter().any(|(k, _)| *k == OpKind::Create) {
            return Err(cx.invalid(
                &t.key("mix.create"),
                "the mixed model's `mix` acts on pre-created containers, which exist already; \
                 new containers are created by `lifecycle` at the rate of `arrival`",
            ));
        }
    }
    Ok(Workload {
        model,
        arrival,
        containers,
        pick,
        mix,
        lifecycle,
        gap,
        ops_arrival,
        initial,
    })
}

fn op_names() -> String {
    OpKind::ALL
        .iter()
        .map(|o| o.name())
        .collect::<Vec<_>>()
        .join(", ")
}

fn op(cx: &Cx, key: &str, v: &Value) -> R<OpKind> {
    let s = match v {
        Value::String(s) => s,
        _ => {
            return Err(cx.invalid(
                key,
                format!("expected an op name ({}), got {}", op_names(), found(v)),
            ))
        }
    };
    OpKind::ALL
        .iter()
        .copied()
        .find(|o| o.name() == s)
        .ok_or_else(|| {
            cx.invalid(
                key,
                format!("unknown op `{s}` (expected one of: {})", op_names()),
            )
        })
}

fn mix(cx: &Cx, key: &str, v: &Value) -> R<Vec<(OpKind, f64)>> {
    let t = table(
        cx,
        key,
        v,
        " of op weights like { start = 1.0, stop = 0.5 }",
    )?;
    let mut w = [0.0f64; 11];
    for (k, v) in t {
        let kk = join(key, k);
        let o = op(cx, &kk, &Value::String(k.clone()))?;
        w[o.index()] = float(cx, &kk, v, F::NonNeg)?;
    }
    let out: Vec<(OpKind, f64)> = OpKind::ALL
        .iter()
        .copied()
        .zip(w)
        .filter(|(_, w)| *w > 0.0)
        .collect();
    if out.is_empty() {
        return Err(cx.invalid(key, "expected at least one op with a positive weight"));
    }
    let total: f64 = out.iter().map(|(_, w)| w).sum();
    if !total.is_finite() {
        return Err(cx.invalid(key, "the weights' sum is not finite"));
    }
    Ok(out)
}

fn arrival(cx: &Cx, key: &str, v: &Value) -> R<Arrival> {
    let t = table(cx, key, v, " like { kind = \"poisson\", rate = 1.0 }")?;
    let kind_key = join(key, "kind");
    let kinds = ["poisson", "constant", "bursty", "ramp", "schedule", "trace"];
    let kind = match t.get("kind") {
        None => return Err(cx.invalid(&kind_key, "required key is missing")),
        Some(k) => one_of(cx, &kind_key, k, "an arrival kind", &kinds)?,
    };
    let open = |allowed: &[&str]| Tb::open(cx, key.to_string(), Some(t), allowed);
    Ok(match kind {
        "poisson" => Arrival::Poisson {
            rate: open(&["kind", "rate"])?.req_f64("rate", F::Pos)?,
        },
        "constant" => Arrival::Constant {
            rate: open(&["kind", "rate"])?.req_f64("rate", F::Pos)?,
        },
        "bursty" => {
            let t = open(&["kind", "rate", "burst_rate", "on", "off"])?;
            Arrival::Bursty {
                rate: t.req_f64("rate", F::Pos)?,
                burst_rate: t.req_f64("burst_rate", F::Pos)?,
                on: t.req_dur("on", D::Pos)?,
                off: t.req_dur("off", D::Pos)?,
            }
        }
        "schedule" => schedule(&open(&["kind", "phases", "repeat"])?)?,
        "trace" => Arrival::Trace(trace(&open(&[
            "kind", "file", "format", "interval", "scale",
        ])?)?),
        _ => {
            let t = open(&["kind", "from", "to"])?;
            let from = t.req_f64("from", F::NonNeg)?;
            let to = t.req_f64("to", F::NonNeg)?;
            if from == 0.0 && to == 0.0 {
                return Err(cx.invalid(key, "expected `from` or `to` above 0, got both 0"));
            }
            Arrival::Ramp { from, to }
        }
    })
}

/// `{ kind = "schedule", phases = [{ rate, for }, …], repeat = N | "forever" }`.
fn schedule(t: &Tb) -> R<Arrival> {
    let cx = t.cx;
    let key = t.key("phases");
    let a = array(
        cx,
        &key,
        t.req("phases")?,
        "phases like { rate = 10.0, for = \"1m\" }",
    )?;
    if a.is_empty() || a.len() > MAX_PHASES {
        return Err(cx.invalid(
            &key,
            format!("expected 1 to {MAX_PHASES} phases, got {}", a.len()),
        ));
    }
    let mut phases = Vec::with_capacity(a.len());
    for (i, v) in a.iter().enumerate() {
        let k = format!("{key}[{i}]");
        let p = Tb::open(
            cx,
            k.clone(),
            Some(table(cx, &k, v, " like { rate = 10.0, for = \"1m\" }")?),
            &["rate", "for"],
        )?;
        phases.push(Phase {
            rate: p.req_f64("rate", F::NonNeg)?,
            length: p.req_dur("for", D::Pos)?,
        });
    }
    if phases.iter().all(|p| p.rate == 0.0) {
        return Err(cx.invalid(&key, "expected at least one phase with a rate above 0"));
    }
    let repeat = match t.get("repeat") {
        None => Repeat::Times(1),
        Some(Value::String(s)) if s == "forever" => Repeat::Forever,
        Some(v @ Value::Integer(_)) => {
            Repeat::Times(int_u32(cx, &t.key("repeat"), v, 1, 1_000_000)?)
        }
        Some(v) => {
            return Err(cx.invalid(
                &t.key("repeat"),
                format!(
                    "expected a number of plays (1 or more) or \"forever\", got {}",
                    found(v)
                ),
            ))
        }
    };
    Ok(Arrival::Schedule { phases, repeat })
}

/// The most records of a trace file.
const MAX_TRACE_RECORDS: usize = 10_000_000;

/// `{ kind = "trace", file, format = "times" | "counts", interval = "1s", scale = 1.0 }`: the
/// file read and checked line by line.
fn trace(t: &Tb) -> R<Trace> {
    let cx = t.cx;
    let key = t.key("file");
    let name = string(cx, &key, t.req("file")?)?.to_string();
    if name.is_empty() {
        return Err(cx.invalid(&key, "expected a file name, got an empty string"));
    }
    let format = t.kw("format", TraceFormat::Times)?;
    let interval = t.dur("interval", secs(1), D::Pos)?;
    if t.has("interval") && format == TraceFormat::Times {
        return Err(cx.invalid(
            &t.key("interval"),
            "only for `format = \"counts\"` (a times trace has its own times)",
        ));
    }
    let scale = t.f64("scale", 1.0, F::Pos)?;
    let (path, text) = read_data_file(cx, &key, &name, "trace")?;
    let bad = |line: usize, what: String| {
        cx.invalid(&key, format!("{} line {line}: {what}", path.display()))
    };
    // Seconds (a plain number >= 0) to µs.
    let secs_us = |line: usize, s: &str| -> R<u64> {
        let x: f64 = s.trim().parse().map_err(|_| {
            bad(
                line,
                format!("expected a number of seconds, got `{}`", s.trim()),
            )
        })?;
        if !x.is_finite() || x < 0.0 {
            return Err(bad(line, format!("expected seconds >= 0, got {x}")));
        }
        if x > MAX_DURATION.as_secs_f64() {
            return Err(bad(
                line,
                "over the 30-day limit on any duration".to_string(),
            ));
        }
        Ok((x * 1e6).round() as u64)
    };
    let width = interval.as_micros() as u64;
    let mut times: Vec<u64> = Vec::new();
    let mut counts: Vec<(u64, u64, u64)> = Vec::new();
    let mut header_ok = true;
    let mut with_times: Option<bool> = None;
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let body = raw.split('#').next().unwrap_or("").trim();
        if body.is_empty() {
            continue;
        }
        // A CSV header (the first record, not a number) is skipped.
        let first_field = body.split(',').next().unwrap_or("").trim();
        if std::mem::take(&mut header_ok) && first_field.parse::<f64>().is_err() {
            continue;
        }
        match format {
            TraceFormat::Times => {
                let t_us = secs_us(line, body.split(',').next().unwrap_or(""))?;
                if let Some(&prev) = times.last() {
                    if t_us < prev {
                        return Err(bad(
                            line,
                            format!(
                                "times must not go back: {} s after {} s",
                                t_us as f64 / 1e6,
                                prev as f64 / 1e6
                            ),
                        ));
                    }
                }
                times.push(t_us);
            }
            TraceFormat::Counts => {
                let fields: Vec<&str> = body.split(',').map(str::trim).collect();
                let (start, count) = match fields.as_slice() {
                    [c] => (None, *c),
                    [s, c] => (Some(secs_us(line, s)?), *c),
                    _ => {
                        return Err(bad(
                            line,
                            format!("expected `count` or `start_s,count`, got `{body}`"),
                        ))
                    }
                };
                let n: u64 = count.parse().map_err(|_| {
                    bad(
                        line,
                        format!("expected a count (an integer >= 0), got `{count}`"),
                    )
                })?;
                if *with_times.get_or_insert(start.is_some()) != start.is_some() {
                    return Err(bad(
                        line,
                        "every line has `start_s,count` or every line has `count` alone"
                            .to_string(),
                    ));
                }
                let start = match start {
                    None => counts.len() as u64 * width,
                    Some(s) => {
                        if let Some(prev) = counts.last_mut() {
                            if s <= prev.0 {
                                return Err(bad(
                                    line,
                                    format!(
                                        "start times must increase: {} s after {} s",
                                        s as f64 / 1e6,
                                        prev.0 as f64 / 1e6
                                    ),
                                ));
                            }
                            // The previous interval ends where this one starts.
                            prev.1 = s;
                        }
                        s
                    }
                };
                counts.push((start, start.saturating_add(width), n));
            }
        }
        if times.len() + counts.len() > MAX_TRACE_RECORDS {
            return Err(bad(line, format!("more than {MAX_TRACE_RECORDS} records")));
        }
    }
    let data = match format {
        TraceFormat::Times if !times.is_empty() => TraceData::Times(times),
        TraceFormat::Counts if counts.iter().any(|c| c.2 > 0) => TraceData::Counts(counts),
        _ => {
            return Err(cx.invalid(
                &key,
                format!(
                    "{}: no arrivals (expected at least one {})",
                    path.display(),
                    if format == TraceFormat::Times {
                        "arrival time"
                    } else {
                        "interval with a count above 0"
                    }
                ),
            ))
        }
    };
    Ok(Trace {
        file: name,
        format,
        interval,
        scale,
        data,
    })
}

fn pick(cx: &Cx, key: &str, v: &Value) -> R<Pick> {
    let want = "expected \"uniform\", { zipf = { s = 1.1 } } or { kind = \"zipf\", s = 1.1 }";
    match v {
        Value::String(s) if s == "uniform" => Ok(Pick::Uniform),
        Value::String(s) if s == "zipf" => {
            Err(cx.invalid(key, "zipf needs its exponent: { zipf = { s = 1.1 } }"))
        }
        Value::Table(t) if t.contains_key("kind") => {
            let kind_key = join(key, "kind");
            let kind = one_of(cx, &kind_key, &t["kind"], "a pick", &["uniform", "zipf"])?;
            if kind == "uniform" {
                Tb::open(cx, key.to_string(), Some(t), &["kind"])?;
                Ok(Pick::Uniform)
            } else {
                let t = Tb::open(cx, key.to_string(), Some(t), &["kind", "s"])?;
                Ok(Pick::Zipf {
                    s: t.req_f64("s", F::Pos)?,
                })
            }
        }
        Value::Table(t) => {
            let tb = Tb::open(cx, key.to_string(), Some(t), &["zipf", "uniform", "kind"])?;
            if t.len() != 1 {
                return Err(cx.invalid(key, format!("{want}, got a table with {} keys", t.len())));
            }
            if tb.has("uniform") {
                tb.sub("uniform", &[])?;
                return Ok(Pick::Uniform);
            }
            let z = tb.sub("zipf", &["s"])?;
            Ok(Pick::Zipf {
                s: z.req_f64("s", F::Pos)?,
            })
        }
        _ => Err(cx.invalid(key, format!("{want}, got {}", found(v)))),
    }
}

/// Parses a distribution of durations at `key`.
fn dist(cx: &Cx, key: &str, v: &Value) -> R<Dist> {
    let t = table(cx, key, v, " like { dist = \"exp\", mean = \"1s\" }")?;
    let tag_key = join(key, "dist");
    let kinds = ["exp", "constant", "uniform", "lognormal", "empirical"];
    let kind = match t.get("dist") {
        None => return Err(cx.invalid(&tag_key, "required key is missing")),
        Some(k) => one_of(cx, &tag_key, k, "a distribution", &kinds)?,
    };
    let open = |allowed: &[&str]| Tb::open(cx, key.to_string(), Some(t), allowed);
    Ok(match kind {
        "exp" => Dist::Exp {
            mean: open(&["dist", "mean"])?.req_dur("mean", D::Pos)?,
        },
        "constant" => Dist::Constant {
            value: open(&["dist", "value"])?.req_dur("value", D::Any)?,
        },
        "uniform" => {
            let t = open(&["dist", "min", "max"])?;
            let (min, max) = (t.req_dur("min", D::Any)?, t.req_dur("max", D::Any)?);
            if min > max {
                return Err(cx.invalid(
                    &t.key("min"),
                    format!(
                        "expected min <= max, got min = {}, max = {}",
                        fmt_dur(min),
                        fmt_dur(max)
                    ),
                ));
            }
            Dist::Uniform { min, max }
        }
        "lognormal" => {
            let t = open(&["dist", "median", "p99"])?;
            let (median, p99) = (t.req_dur("median", D::Pos)?, t.req_dur("p99", D::Pos)?);
            if p99 <= median {
                return Err(cx.invalid(
                    &t.key("p99"),
                    format!(
                        "expected p99 > median, got median = {}, p99 = {}",
                        fmt_dur(median),
                        fmt_dur(p99)
                    ),
                ));
            }
            let d = Dist::Lognormal { median, p99 };
            let mean = d.mean();
            if mean > MAX_DURATION {
                return Err(cx.invalid(
                    key,
                    "this lognormal's mean is over the 30-day limit; bring p99 closer to the median",
                ));
            }
            d
        }
        _ => {
            let t = open(&["dist", "file", "samples", "histogram"])?;
            if t.has("histogram") {
                if t.has("file") || t.has("samples") {
                    return Err(cx.invalid(
                        key,
                        "an empirical distribution takes one of `file`, `samples` or `histogram`",
                    ));
                }
                let h = t.sub("histogram", HISTOGRAM_KEYS)?;
                return Ok(Dist::Histogram {
                    histogram: histogram(&h)?,
                });
            }
            let samples =
                match (t.get("file"), t.get("samples")) {
                    (Some(f), None) => empirical_file(cx, &t.key("file"), f)?,
                    (None, Some(s)) => empirical_inline(cx, &t.key("samples"), s)?,
                    _ => return Err(cx.invalid(
                        key,
                        "an empirical distribution needs exactly one of `file` (one sample per \
                         line) or `samples` (an array)",
                    )),
                };
            Dist::Empirical { samples }
        }
    })
}

const HISTOGRAM_KEYS: &[&str] = &["le", "counts", "cumulative", "file", "tail"];

/// A histogram's `le` bound: a number of seconds (Prometheus's unit), a duration, or `+Inf`
/// (`None`).
fn le_bound(s: &str) -> Result<Option<f64>, String> {
    let s = s.trim().trim_matches('"');
    if matches!(s, "+Inf" | "Inf" | "+inf" | "inf") {
        return Ok(None);
    }
    match s.parse::<f64>() {
        Ok(x) if x.is_finite() => Ok(Some(x)),
        Ok(_) => Err("expected a finite bound or `+Inf`".into()),
        Err(_) => parse_dur(s)
            .map(|d| Some(d.as_secs_f64()))
            .map_err(|e| format!("expected seconds, a duration or `+Inf`: {e}")),
    }
}

/// `…histogram`: `le` and `counts` inline, or `file`; `cumulative` explicit; `tail` for the
/// `+Inf` bucket.
fn histogram(t: &Tb) -> R<crate::histogram::Histogram> {
    use crate::histogram::{Histogram, Tail};
    let cx = t.cx;
    let cumulative = match t.get("cumulative") {
        None => {
            return Err(cx.invalid(
                &t.key("cumulative"),
                "required key is missing: `true` when each bucket counts every observation up \
                 to its bound (Prometheus's `_bucket` series), `false` when it counts its own",
            ))
        }
        Some(v) => boolean(cx, &t.key("cumulative"), v)?,
    };
    let tail = match t.get("tail") {
        None => None,
        Some(_) => {
            let tk = t.key("tail");
            let tt = t.sub("tail", &["kind", "mean", "max"])?;
            let kind = match tt.get("kind") {
                None => return Err(cx.invalid(&join(&tk, "kind"), "required key is missing")),
                Some(k) => one_of(cx, &join(&tk, "kind"), k, "a tail", &["exp", "uniform"])?,
            };
            let other = if kind == "exp" { "max" } else { "mean" };
            if tt.has(other) {
                return Err(cx.invalid(
                    &tt.key(other),
                    format!("not a key of the `{kind}` tail (exp takes `mean`, uniform `max`)"),
                ));
            }
            Some(match kind {
                "exp" => Tail::Exp {
                    mean: tt.req_dur("mean", D::Pos)?,
                },
                _ => Tail::Uniform {
                    max: tt.req_dur("max", D::Pos)?,
                },
            })
        }
    };
    let (rows, where_) = match (t.get("file"), t.get("le"), t.get("counts")) {
        (Some(f), None, None) => {
            let key = t.key("file");
            let (name, rows, lines) = histogram_file(cx, &key, f)?;
            (rows, Where::File { key, name, lines })
        }
        (None, Some(le), Some(counts)) => {
            let (lk, ck) = (t.key("le"), t.key("counts"));
            let le = array(cx, &lk, le, "bucket bounds (seconds, durations, \"+Inf\")")?;
            let counts = array(cx, &ck, counts, "counts")?;
            if le.len() != counts.len() {
                return Err(cx.invalid(
                    &ck,
                    format!(
                        "expected one count per bound: {} bounds, {} counts",
                        le.len(),
                        counts.len()
                    ),
                ));
            }
            let mut rows = Vec::with_capacity(le.len());
            for (i, (b, c)) in le.iter().zip(counts).enumerate() {
                let b = match b {
                    Value::String(s) => le_bound(s),
                    Value::Integer(n) => Ok(Some(*n as f64)),
                    Value::Float(x) => le_bound(&x.to_string()),
                    v => Err(format!(
                        "expected seconds, a duration or \"+Inf\", got {}",
                        found(v)
                    )),
                }
                .map_err(|m| cx.invalid(&format!("{lk}[{i}]"), m))?;
                let c = match c {
                    Value::Integer(n) => *n as f64,
                    Value::Float(x) => *x,
                    v => {
                        return Err(cx.invalid(
                            &format!("{ck}[{i}]"),
                            format!("expected a count >= 0, got {}", found(v)),
                        ))
                    }
                };
                rows.push((b, c));
            }
            (rows, Where::Inline { key: ck })
        }
        _ => {
            return Err(cx.invalid(
                &t.path,
                "a histogram needs `le` and `counts` (arrays of one length) or `file` (lines \
                 `<le> <count>` or Prometheus `_bucket{le=\"…\"} <count>` lines)",
            ))
        }
    };
    Histogram::from_rows(&rows, cumulative, tail).map_err(|(i, m)| match where_ {
        Where::Inline { key } => cx.invalid(&format!("{key}[{i}]"), m),
        Where::File { key, name, lines } => {
            let line = lines.get(i).copied().unwrap_or(0);
            cx.invalid(&key, format!("{name} line {line}: {m}"))
        }
    })
}

/// Where a histogram's rows came from, for messages.
enum Where {
    Inline {
        key: String,
    },
    File {
        key: String,
        name: String,
        lines: Vec<usize>,
    },
}

/// A histogram file's rows with their line numbers: `<le> <count>` (whitespace or a comma
/// between), or a Prometheus exposition line `…_bucket{…le="0.5"…} 12`; `#` starts a comment.
#[allow(clippy::type_complexity)]
fn histogram_file(
    cx: &Cx,
    key: &str,
    v: &Value,
) -> R<(String, Vec<(Option<f64>, f64)>, Vec<usize>)> {
    let name = string(cx, key, v)?;
    let (_, text) = read_data_file(cx, key, name, "histogram")?;
    let mut rows = Vec::new();
    let mut lines = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let body = line.split('#').next().unwrap_or("").trim();
        if body.is_empty() {
            continue;
        }
        let bad = |m: String| {
            cx.invalid(
                key,
                format!(
                    "{name} line {}: {m}, in `{}`",
                    i + 1,
                    body.chars().take(80).collect::<String>()
                ),
            )
        };
        let (b, c) = if let Some(at) = body.find("le=\"") {
            let rest = &body[at + 4..];
            let end = rest
                .find('"')
                .ok_or_else(|| bad("an unterminated `le=\"`".into()))?;
            let count = body.rsplit(char::is_whitespace).next().unwrap_or("");
            (&rest[..end], count)
        } else {
            let mut it = body
                .split(|c: char| c.is_whitespace() || c == ',')
                .filter(|s| !s.is_empty());
            match (it.next(), it.next(), it.next()) {
                (Some(b), Some(c), None) => (b, c),
                _ => return Err(bad("expected `<le> <count>`".into())),
            }
        };
        let b = le_bound(b).map_err(bad)?;
        let c: f64 = c
            .parse()
            .map_err(|_| bad(format!("expected a count, got `{c}`")))?;
        rows.push((b, c));
        lines.push(i + 1);
        if rows.len() > MAX_SAMPLES {
            return Err(cx.invalid(key, format!("{name}: more than {MAX_SAMPLES} buckets")));
        }
    }
    if rows.is_empty() {
        return Err(cx.invalid(
            key,
            format!("{name}: no buckets (expected `<le> <count>` lines)"),
        ));
    }
    Ok((name.to_string(), rows, lines))
}

/// One empirical sample: a humantime duration, or a plain number of milliseconds.
fn sample(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let numeric = s.starts_with(|c: char| c.is_ascii_digit() || ".-+".contains(c));
    match s.parse::<f64>() {
        Ok(ms) if numeric => ms_sample(ms),
        _ => parse_dur(s),
    }
}

fn ms_sample(ms: f64) -> Result<Duration, String> {
    if !ms.is_finite() || ms < 0.0 {
        return Err("expected a finite number of milliseconds >= 0".to_string());
    }
    match Duration::try_from_secs_f64(ms / 1000.0) {
        Ok(d) if d <= MAX_DURATION => Ok(d),
        _ => Err("over the 30-day limit on any duration".to_string()),
    }
}

/// The text of a data file (a trace, a histogram, samples) named `name` by `key`: a relative
/// path is the scenario file's directory's. Errors name the key, the kind of file and why.
fn read_data_file(cx: &Cx, key: &str, name: &str, kind: &str) -> R<(PathBuf, String)> {
    if name.is_empty() {
        return Err(cx.invalid(key, "expected a file name, got an empty string"));
    }
    let p = Path::new(name);
    let path = match cx.base_dir {
        Some(b) if p.is_relative() => b.join(p),
        _ => p.to_path_buf(),
    };
    let text = read_capped(&path, MAX_FILE_BYTES).map_err(|e| {
        cx.invalid(
            key,
            format!("cannot read the {kind} file `{}`: {e}", path.display()),
        )
    })?;
    Ok((path, text))
}

const MAX_SAMPLES: usize = 10_000_000;

fn empirical_file(cx: &Cx, key: &str, v: &Value) -> R<Vec<Duration>> {
    let name = string(cx, key, v)?;
    let (_, text) = read_data_file(cx, key, name, "samples")?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let body = line.split('#').next().unwrap_or("").trim();
        if body.is_empty() {
            continue;
        }
        let d = sample(body).map_err(|e| {
            cx.invalid(
                key,
                format!(
                    "{name} line {}: expected {DUR_HINT} or a number of milliseconds, got `{}`: {e}",
                    i + 1,
                    body.chars().take(60).collect::<String>()
                ),
            )
        })?;
        out.push(d);
        if out.len() > MAX_SAMPLES {
            return Err(cx.invalid(key, format!("{name}: more than {MAX_SAMPLES} samples")));
        }
    }
    if out.is_empty() {
        return Err(cx.invalid(key, format!("{name}: no samples (expected at least one)")));
    }
    Ok(out)
}

fn empirical_inline(cx: &Cx, key: &str, v: &Value) -> R<Vec<Duration>> {
    let a = array(cx, key, v, "durations or numbers of milliseconds")?;
    let mut out = Vec::with_capacity(a.len());
    for (i, e) in a.iter().enumerate() {
        let k = format!("{key}[{i}]");
        let d = match e {
            Value::String(s) => parse_dur(s),
            Value::Integer(n) => ms_sample(*n as f64),
            Value::Float(f) => ms_sample(*f),
            _ => Err(format!("got {}", found(e))),
        }
        .map_err(|m| {
            cx.invalid(
                &k,
                format!("expected {DUR_HINT} or a number of milliseconds: {m}"),
            )
        })?;
        out.push(d);
    }
    if out.is_empty() {
        return Err(cx.invalid(key, "expected at least one sample"));
    }
    Ok(out)
}

const CLIENT_KEYS: &[&str] = &[
    "timeout",
    "retry_on",
    "wait_for",
    "cancel",
    "instances",
    "retry_same_op",
    "retry",
];

fn client(t: &Tb, legacy: &Retry) -> R<Client> {
    let timeout = t.dur("timeout", Duration::ZERO, D::Any)?;
    let wait_for = t.kw("wait_for", WaitFor::Answer)?;
    let cancel = t.kw("cancel", Cancel::None)?;
    // A deadline is the client's timeout: without one there is nothing to cancel by.
    if cancel != Cancel::None && timeout.is_zero() {
        return Err(t.cx.invalid(
            &t.key("cancel"),
            format!(
                "\"{cancel}\" needs a client.timeout to cancel by (set client.timeout, or \
                 cancel = \"none\")"
            ),
        ));
    }
    let instances = t.u32("instances", 1, 1, 1000)?;
    let retry_same_op = t.bool("retry_same_op", false)?;
    let retry = if t.has("retry") {
        Some(client_retry(
            &t.sub(
                "retry",
                &[
                    "policy",
                    "base",
                    "cap",
                    "max_attempts",
                    "budget",
                    "throttling",
                    "breaker",
                ],
            )?,
            legacy,
        )?)
    } else {
        None
    };
    let mut retry_on: Vec<RetryOn> = Vec::new();
    if let Some(v) = t.get("retry_on") {
        let key = t.key("retry_on");
        for (i, e) in array(t.cx, &key, v, "strings")?.iter().enumerate() {
            let r: RetryOn = keyword(t.cx, &format!("{key}[{i}]"), e)?;
            if !retry_on.contains(&r) {
                retry_on.push(r);
            }
        }
    }
    Ok(Client {
        timeout,
        retry_on,
        wait_for,
        cancel,
        instances,
        retry_same_op,
        retry,
    })
}

/// `[client.retry]`: keys absent take `[retry]`'s (`legacy`) values; `budget`, `throttling`
/// and `breaker` absent are off.
fn client_retry(t: &Tb, legacy: &Retry) -> R<ClientRetry> {
    use conductor::retry::{BreakerConfig, FinagleBudgetConfig, RatioTrip, ThrottleConfig, Trip};
    let policy = t.kw("policy", legacy.policy)?;
    let base = t.dur("base", legacy.base, D::Any)?;
    let cap = t.dur("cap", legacy.cap, D::Any)?;
    if base > cap {
        return Err(t.cx.invalid(
            &t.key("base"),
            format!(
                "expected base <= cap, got base = {}, cap = {}",
                fmt_dur(base),
                fmt_dur(cap)
            ),
        ));
    }
    let max_attempts = t.u32("max_attempts", legacy.max_attempts, 1, 100)?;
    let budget = if t.has("budget") {
        let b = t.sub("budget", &["ttl", "min_per_s", "percent"])?;
        let d = FinagleBudgetConfig::DEFAULT;
        let ttl = b.dur("ttl", Duration::from_micros(d.ttl_us), D::Pos)?;
        if ttl < secs(1) || ttl > secs(60) {
            return Err(t.cx.invalid(
                &b.key("ttl"),
                format!(
                    "expected a duration from 1s to 60s (Finagle's bounds), got {}",
                    fmt_dur(ttl)
                ),
            ));
        }
        let percent = b.f64("percent", d.percent, F::NonNeg)?;
        if percent > 1000.0 {
            return Err(t.cx.invalid(
                &b.key("percent"),
                format!("expected a number in [0, 1000] (0.2 = 20%), got {percent}"),
            ));
        }
        ClientBudget::Finagle(FinagleBudgetConfig {
            ttl_us: ttl.as_micros() as u64,
            min_per_s: b.u32("min_per_s", d.min_per_s, 0, 1_000_000)?,
            percent,
        })
    } else {
        ClientBudget::Unlimited
    };
    let throttling = if t.has("throttling") {
        let th = t.sub("throttling", &["max_tokens", "token_ratio"])?;
        let max = th.req_f64("max_tokens", F::Pos)?;
        if max > 1000.0 {
            return Err(t.cx.invalid(
                &th.key("max_tokens"),
                format!("expected a number in (0, 1000] (gRFC A6), got {max}"),
            ));
        }
        let ratio = th.req_f64("token_ratio", F::Pos)?;
        let (max_milli, ratio_milli) = ((max * 1000.0).round(), (ratio * 1000.0).round());
        if max_milli < 1.0 || !(1.0..=1e9).contains(&ratio_milli) {
            return Err(t.cx.invalid(
                &th.key(if max_milli < 1.0 { "max_tokens" } else { "token_ratio" }),
                "expected at least 0.001 (tokens are counted to three decimals, as in gRFC A6), and token_ratio at most 1e6",
            ));
        }
        Some(ThrottleConfig {
            max_milli: max_milli as u64,
            ratio_milli: ratio_milli as u64,
        })
    } else {
        None
    };
    let breaker = if t.has("breaker") {
        let b = t.sub(
            "breaker",
            &[
                "failures",
                "failure_ratio",
                "window",
                "min_requests",
                "open_for",
                "probes",
            ],
        )?;
        let consecutive = match b.get("failures") {
            None => None,
            Some(v) => Some(int_u32(t.cx, &b.key("failures"), v, 1, 1_000_000)?),
        };
        let ratio = match b.opt_f64("failure_ratio", F::Unit)? {
            None => {
                for k in ["window", "min_requests"] {
                    if b.has(k) {
                        return Err(t.cx.invalid(
                            &b.key(k),
                            "only with `failure_ratio` (the ratio it qualifies)",
                        ));
                    }
                }
                None
            }
            Some(r) => {
                let permille = (r * 1000.0).round();
                if permille < 1.0 {
                    return Err(t.cx.invalid(
                        &b.key("failure_ratio"),
                        format!("expected a ratio in (0, 1], to three decimals, got {r}"),
                    ));
                }
                Some(RatioTrip {
                    permille: permille as u32,
                    window_us: b.dur("window", secs(10), D::Pos)?.as_micros() as u64,
                    min_requests: b.u32("min_requests", 10, 1, 1_000_000)?,
                })
            }
        };
        if consecutive.is_none() && ratio.is_none() {
            return Err(t.cx.invalid(
                &b.key("failures"),
                "a breaker needs `failures` (consecutive failures that open it) or `failure_ratio` (over `window`, with `min_requests`), or both",
            ));
        }
        Some(BreakerConfig {
            trip: Trip { consecutive, ratio },
            open_us: b.dur("open_for", secs(5), D::Pos)?.as_micros() as u64,
            probes: b.u32("probes", 1, 1, 1_000_000)?,
        })
    } else {
        None
    };
    Ok(ClientRetry {
        policy,
        base,
        cap,
        max_attempts,
        budget,
        throttling,
        breaker,
    })
}

fn backend(top: &Tb) -> R<Backend> {
    let mut allowed = vec!["default", "failure_rate"];
    allowed.extend(OpKind::ALL.iter().map(|o| o.name()));
    let t = top.sub("backend", &allowed)?;
    let default = match t.get("default") {
        None => Dist::Exp { mean: secs(1) },
        Some(v) => dist(t.cx, &t.key("default"), v)?,
    };
    let mut per_op = Vec::new();
    for o in OpKind::ALL {
        if let Some(v) = t.get(o.name()) {
            per_op.push((o, dist(t.cx, &t.key(o.name()), v)?));
        }
    }
    Ok(Backend {
        default,
        per_op,
        failure_rate: t.f64("failure_rate", 0.0, F::Unit)?,
    })
}

fn retry(t: &Tb) -> R<Retry> {
    let policy = t.kw("policy", Backoff::FullJitter)?;
    let base = t.dur("base", ms(100), D::Any)?;
    let cap = t.dur("cap", secs(10), D::Any)?;
    if base > cap {
        return Err(t.cx.invalid(
            &t.key("base"),
            format!(
                "expected base <= cap, got base = {}, cap = {}",
                fmt_dur(base),
                fmt_dur(cap)
            ),
        ));
    }
    let max_attempts = t.u32("max_attempts", 5, 1, 100)?;
    let b = t.sub("budget", &["ratio", "min_per_s"])?;
    Ok(Retry {
        policy,
        base,
        cap,
        max_attempts,
        budget_ratio: b.f64("ratio", 0.0, F::NonNeg)?,
        budget_min_per_s: b.f64("min_per_s", 0.0, F::NonNeg)?,
    })
}

fn fault(cx: &Cx, key: &str, v: &Value, nodes: &Nodes, run: Duration) -> R<Fault> {
    let t = table(cx, key, v, " ([[faults]] entry)")?;
    let kind_key = join(key, "kind");
    let kind = match t.get("kind") {
        None => return Err(cx.invalid(&kind_key, "required key is missing")),
        Some(k) => keyword::<fault::Kind>(cx, &kind_key, k)?,
    };
    let mut allowed = vec!["kind", "at"];
    allowed.extend_from_slice(kind.keys());
    let t = Tb::open(cx, key.to_string(), Some(t), &allowed)?;
    let at = t.req_dur("at", D::Any)?;
    if at >= run {
        return Err(cx.invalid(
            &t.key("at"),
            format!(
                "expected a time before the end of the load phase (duration = {}), got {}",
                fmt_dur(run),
                fmt_dur(at)
            ),
        ));
    }
    Ok(Fault {
        at,
        kind: kind.parse(&t, nodes)?,
    })
}

/// A `[[faults]]` entry of a recorded schedule (see [`Fault::from_recorded`]).
pub(crate) fn recorded_fault(v: &Value) -> Option<Fault> {
    let cx = Cx {
        origin: "recorded schedule",
        base_dir: None,
    };
    fault(&cx, "faults[0]", v, &Nodes(NodeSet::ANY), Duration::MAX).ok()
}

fn nemesis(t: &Tb, nodes: &Nodes, run: Duration) -> R<Nemesis> {
    let cx = t.cx;
    let kinds = match t.get("kinds") {
        None => vec![fault::Kind::Partition, fault::Kind::Kill],
        Some(v) => {
            let key = t.key("kinds");
            let mut out: Vec<fault::Kind> = Vec::new();
            for (i, e) in array(cx, &key, v, "strings")?.iter().enumerate() {
                let k: fault::Kind = keyword(cx, &format!("{key}[{i}]"), e)?;
                if !out.contains(&k) {
                    out.push(k);
                }
            }
            out
        }
    };
    if kinds.is_empty() {
        return Err(cx.invalid(&t.key("kinds"), "expected at least one fault kind"));
    }
    let targets = match t.get("targets") {
        None => Vec::new(),
        Some(v) => nodes.list(cx, &t.key("targets"), v)?,
    };
    if let Some(k) = kinds.iter().find(|k| k.needs_host()) {
        if !targets.iter().any(Node::is_host) {
            return Err(cx.invalid(
                &t.key("targets"),
                format!("kind `{k}` needs a host among the targets (empty = the conductors)"),
            ));
        }
    }
    let mean_interval = t.dur("mean_interval", secs(300), D::Pos)?;
    let mean_duration = t.dur("mean_duration", secs(20), D::Pos)?;
    let expected = run.as_secs_f64() / mean_interval.as_secs_f64();
    if expected > MAX_NEMESIS_FAULTS {
        return Err(cx.invalid(
            &t.key("mean_interval"),
            format!(
                "the nemesis would draw about {expected:.3e} faults over {}, over the limit of \
                 1e6; raise mean_interval",
                fmt_dur(run)
            ),
        ));
    }
    Ok(Nemesis {
        kinds,
        targets,
        mean_interval,
        mean_duration,
        swarm: t.bool("swarm", false)?,
    })
}

/// `[slo]`: every key of the registry (`reports::slo`), each checked for its unit — ratios
/// in [0, 1], rates finite and >= 0, latencies durations — and `[slo.by_op.KIND]` for the op
/// kinds only.
fn slo(top: &Tb) -> R<Slo> {
    use reports::slo::{Latency, Measure, Unit};
    let keys = Slo::keys();
    let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
    let t = top.sub("slo", &refs)?;
    let mut objectives = Vec::new();
    let mut read = |t: &Tb, key: &str, measure: Measure| -> R<()> {
        let limit = match measure.unit() {
            Unit::Ratio => t.opt_f64(key, F::Unit)?.map(SloLimit::Number),
            Unit::PerS => t.opt_f64(key, F::NonNeg)?.map(SloLimit::Number),
            Unit::Ms => t.opt_dur(key, D::Any)?.map(SloLimit::Duration),
        };
        if let Some(limit) = limit {
            objectives.push(SloObjective { measure, limit });
        }
        Ok(())
    };
    for m in Slo::measures() {
        read(&t, &m.key(), m)?;
    }
    let kinds: Vec<&str> = OpKind::ALL.iter().map(|o| o.name()).collect();
    let by_op = t.sub("by_op", &kinds)?;
    for kind in OpKind::ALL {
        if !by_op.has(kind.name()) {
            continue;
        }
        let of = Latency::Op(kind.name().to_string());
        let keys = slo::latency_keys(&of);
        let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
        let k = by_op.sub(kind.name(), &refs)?;
        for (key, m) in keys.iter().zip(slo::latencies(of.clone())) {
            read(&k, key, m)?;
        }
    }
    Ok(Slo { objectives })
}

fn checks(t: &Tb) -> R<Checks> {
    let invariants = invariant_list(t, "invariants", true)?.unwrap_or(Invariant::ALL.to_vec());
    let expect = invariant_list(t, "expect", false)?.unwrap_or_default();
    for e in &expect {
        if !invariants.contains(e) {
            return Err(t.cx.invalid(
                &t.key("expect"),
                format!("`{e}` is expected to break but is not in `checks.invariants`"),
            ));
        }
    }
    Ok(Checks { invariants, expect })
}

/// A `[checks]` list of invariants by name (duplicates dropped, first occurrence kept); with
/// `all`, `"all"` may stand for every invariant, in the checker's table order. `None`: absent.
fn invariant_list(t: &Tb, k: &str, all: bool) -> R<Option<Vec<Invariant>>> {
    let Some(v) = t.get(k) else {
        return Ok(None);
    };
    let key = t.key(k);
    let a = array(t.cx, &key, v, "strings")?;
    let mut names: Vec<&str> = Vec::new();
    if all {
        names.push("all");
    }
    names.extend(Invariant::ALL.iter().map(|i| i.name()));
    let mut out: Vec<Invariant> = Vec::new();
    let mut every = false;
    for (i, e) in a.iter().enumerate() {
        // Only `"all"` is among the names and no invariant's.
        match Invariant::from_name(one_of(
            t.cx,
            &format!("{key}[{i}]"),
            e,
            "an invariant",
            &names,
        )?) {
            Some(inv) if !out.contains(&inv) => out.push(inv),
            Some(_) => {}
            None => every = true,
        }
    }
    Ok(Some(if every { Invariant::ALL.to_vec() } else { out }))
}

// ----- [target] -----------------------------------------------------------------------------

const TARGET_KEYS: &[&str] = &[
    "base_path",
    "routes",
    "headers",
    "env_headers",
    "connections",
    "max_in_flight",
    "late_after",
    "setup",
    "teardown",
];

/// A header name or value as HTTP allows it: visible ASCII (and spaces inside a value).
fn header_text(cx: &Cx, key: &str, s: &str, name: bool) -> R<()> {
    let ok = !s.is_empty()
        && s.len() <= 8192
        && s.bytes().all(|b| {
            if name {
                b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
            } else {
                (0x20..0x7f).contains(&b) || b == b'\t'
            }
        });
    if ok {
        Ok(())
    } else if name {
        Err(cx.invalid(
            key,
            format!("expected a header name (letters, digits, `-`), got {s:?}"),
        ))
    } else {
        Err(cx.invalid(
            key,
            "expected a header value of printable ASCII, 1 to 8192 characters",
        ))
    }
}

/// A table of strings by header name (`[target] headers`, `env_headers`).
fn header_table(t: &Tb, k: &str, values_are_headers: bool) -> R<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    let Some(v) = t.get(k) else {
        return Ok(out);
    };
    let key = t.key(k);
    for (name, v) in table(t.cx, &key, v, " of header name = string")? {
        let hk = join(&key, name);
        header_text(t.cx, &hk, name, true)?;
        let value = string(t.cx, &hk, v)?;
        if values_are_headers {
            header_text(t.cx, &hk, value, false)?;
        } else if value.is_empty() || value.contains(['=', '\0']) {
            return Err(t.cx.invalid(&hk, "expected an environment variable's name"));
        }
        out.insert(name.to_string(), value.to_string());
    }
    Ok(out)
}

/// A path template: starts with `/`, printable ASCII without spaces.
fn path_text(cx: &Cx, key: &str, s: &str, empty_ok: bool) -> R<()> {
    let ok = (s.is_empty() && empty_ok)
        || (s.starts_with('/') && s.len() <= 2048 && s.bytes().all(|b| (0x21..0x7f).contains(&b)));
    if ok {
        Ok(())
    } else {
        Err(cx.invalid(
            key,
            format!("expected a path starting with `/`, printable ASCII without spaces, got {s:?}"),
        ))
    }
}

fn target(t: &Tb) -> R<Target> {
    let d = Target::default();
    let base_path = t.string("base_path", "")?;
    path_text(t.cx, &t.key("base_path"), &base_path, true)?;
    if base_path.ends_with('/') {
        return Err(t.cx.invalid(
            &t.key("base_path"),
            "expected no trailing `/` (routes start with one)",
        ));
    }
    let mut routes = Vec::new();
    if let Some(v) = t.get("routes") {
        let a = array(t.cx, &t.key("routes"), v, "tables ([[target.routes]])")?;
        for (i, r) in a.iter().enumerate() {
            let key = format!("{}[{i}]", t.key("routes"));
            let r = Tb::open(
                t.cx,
                key.clone(),
                Some(table(t.cx, &key, r, "")?),
                &["op", "method", "path", "body"],
            )?;
            let op = op(t.cx, &r.key("op"), r.req("op")?)?;
            let method = keyword(t.cx, &r.key("method"), r.req("method")?)?;
            let path = string(t.cx, &r.key("path"), r.req("path")?)?.to_string();
            path_text(t.cx, &r.key("path"), &path, false)?;
            let body = r.string("body", "")?;
            if body.len() > 65_536 {
                return Err(t.cx.invalid(&r.key("body"), "expected at most 64 KiB"));
            }
            routes.push(Route {
                op,
                method,
                path,
                body,
            });
        }
    }
    Ok(Target {
        base_path,
        routes,
        headers: header_table(t, "headers", true)?,
        env_headers: header_table(t, "env_headers", false)?,
        connections: t.u32("connections", d.connections, 1, 100_000)?,
        max_in_flight: t.u32("max_in_flight", d.max_in_flight, 1, 10_000_000)?,
        late_after: t.dur("late_after", d.late_after, D::Pos)?,
        setup: t.bool("setup", d.setup)?,
        teardown: t.bool("teardown", d.teardown)?,
    })
}

/// The keys the parser accepts, as it opens tables: collected by the test that checks every one
/// is documented in docs/scenario.md.
#[cfg(test)]
pub(crate) mod accepted {
    use std::cell::RefCell;
    use std::collections::BTreeSet;

    thread_local! {
        static SEEN: RefCell<BTreeSet<String>> = const { RefCell::new(BTreeSet::new()) };
    }

    /// Notes the keys `allowed` in the table at `path` (array indices dropped: `faults[2]` is
    /// `faults`).
    pub(crate) fn note(path: &str, allowed: &[&str]) {
        let mut base = String::new();
        let mut depth = 0;
        for c in path.chars() {
            match c {
                '[' => depth += 1,
                ']' => depth -= 1,
                _ if depth == 0 => base.push(c),
                _ => {}
            }
        }
        SEEN.with(|s| {
            let mut s = s.borrow_mut();
            for k in allowed {
                s.insert(super::join(&base, k));
            }
        });
    }

    /// Every key noted on this thread so far.
    pub(crate) fn seen() -> BTreeSet<String> {
        SEEN.with(|s| s.borrow().clone())
    }
}
