//! Fault injection: the scheduled `[[faults]]` and the faults the `[nemesis]` draws, run against
//! the world's nodes, and the heal at the end of the load phase.
//!
//! The whole schedule is known before the run starts: scheduled faults come from the file, and the
//! nemesis draws from its own stream (`rng::stream(seed, Nemesis, 0)`), never from the scheduler
//! or from what the system did. So the same seed runs the same faults in every configuration
//! (common random numbers), and the schedule written to `SeedMetrics.faults` (in `[[faults]]`
//! form) replays as a plain scenario.
//!
//! How each kind acts:
//! - network faults (`partition`, `isolate`, `clog`, `latency`) go through [`MemNet`] — the
//!   services' network — never madsim's `NetSim`, which they do not use;
//! - process faults (`kill`, `pause`) go through madsim's `Handle::kill/restart/pause/resume`;
//!   a restart re-runs the node's init closure, and durable state (store, host truths) lives in
//!   `Arc`s outside the nodes;
//! - host faults (`slow-host`, `host-errors`) set per-host overrides that the host model
//!   ([`scenario::host_model::Backends`]) reads, its draws still keyed per op.
//!
//! Faults may overlap (a scheduled partition during a nemesis kill): every clog, kill and pause
//! is reference-counted, so the end of one fault never lifts another's. At the end of the load
//! phase [`Injector::heal`] lifts everything at once: unclogs, restarts killed nodes, resumes
//! paused ones, restores the latency and clears the host overrides. The world then drains.

use crate::recorder::SimRecorder;
use crate::world::exact_sleep;
use conductor::mem::{MemNet, MemNetConfig};
use conductor::recorder::{Event, Recorder};
use madsim::runtime::Handle;
use madsim::task::NodeId;
use rand::seq::SliceRandom;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rand_distr::Exp1;
use scenario::host_model::HostFaults;
use scenario::rng::{stream, Purpose};
use scenario::{Fault, FaultKind, Nemesis, Scenario};
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::time::Instant;

/// A node of the world as the injector knows it.
#[derive(Debug, Clone, Copy)]
pub struct NodeRef {
    /// madsim's id, for kill/restart/pause/resume.
    pub id: NodeId,
    /// Its address on the [`MemNet`].
    pub ip: IpAddr,
}

/// The world's nodes by name (`api`, `bus`, `store`, `conductor-N`, `host-N`), in name order.
pub type Nodes = BTreeMap<String, NodeRef>;

/// The schedule of one seed: the file's `[[faults]]` followed by the nemesis's draws, each with
/// its start time. Node names are those the scenario validated.
pub fn schedule(scn: &Scenario, seed: u64, names: &[String]) -> Vec<Fault> {
    let mut out = scn.faults.clone();
    if let Some(n) = &scn.nemesis {
        out.extend(nemesis(n, scn, seed, names));
    }
    out
}

/// Rounds to whole milliseconds: drawn times stay readable in the recorded schedule, and the
/// recorded schedule is exactly the one run.
fn ms(secs: f64) -> Duration {
    Duration::from_millis((secs * 1e3).round().clamp(1.0, 1e15) as u64)
}

/// The nemesis's faults over the load phase. One fault at a time: after an exponential interval
/// (mean `mean_interval`) a kind is drawn uniformly from `kinds` and lasts an exponential time
/// (mean `mean_duration`); the next interval starts when it ends. The targets default to the
/// conductors; the parameters no key gives are fixed here (documented in README, "Faults").
pub fn nemesis(n: &Nemesis, scn: &Scenario, seed: u64, names: &[String]) -> Vec<Fault> {
    let mut rng: ChaCha8Rng = stream(seed, Purpose::Nemesis, 0);
    let targets: Vec<String> = if n.targets.is_empty() {
        crate::world::conductor_names(scn.cluster.conductors)
    } else {
        n.targets.clone()
    };
    let hosts: Vec<&String> = targets.iter().filter(|t| t.starts_with("host-")).collect();
    let end = scn.duration.as_secs_f64();
    let mut t = 0.0;
    let mut out = Vec::new();
    loop {
        t += rng.sample::<f64, _>(Exp1) * n.mean_interval.as_secs_f64();
        if t >= end || n.kinds.is_empty() || targets.is_empty() {
            break;
        }
        let at = ms(t).min(scn.duration - Duration::from_millis(1).min(scn.duration));
        let kind = n.kinds[rng.gen_range(0..n.kinds.len())].as_str();
        let len = ms(rng.sample::<f64, _>(Exp1) * n.mean_duration.as_secs_f64());
        let one = |rng: &mut ChaCha8Rng| targets[rng.gen_range(0..targets.len())].clone();
        let fk = match kind {
            "partition" => {
                // A random non-empty part of the targets (at most half when there are several)
                // against every other node of the world.
                let mut shuffled = targets.clone();
                shuffled.shuffle(&mut rng);
                let k = rng.gen_range(1..=(targets.len() / 2).max(1));
                let side: Vec<String> = shuffled[..k].to_vec();
                let rest: Vec<String> = names
                    .iter()
                    .filter(|x| !side.contains(x))
                    .cloned()
                    .collect();
                if rest.is_empty() {
                    continue;
                }
                FaultKind::Partition {
                    groups: vec![side, rest],
                    oneway: false,
                    duration: len,
                }
            }
            "isolate" => FaultKind::Isolate {
                node: one(&mut rng),
                duration: len,
            },
            "kill" => FaultKind::Kill {
                node: one(&mut rng),
                restart_after: Some(len),
            },
            "pause" => FaultKind::Pause {
                node: one(&mut rng),
                duration: len,
            },
            "clog" => {
                let mut shuffled = targets.clone();
                shuffled.shuffle(&mut rng);
                let k = rng.gen_range(1..=targets.len());
                FaultKind::Clog {
                    nodes: shuffled[..k].to_vec(),
                    duration: len,
                }
            }
            "latency" => {
                // Ten times the configured network: from its max to 10 × its max.
                let lo = scn.network.latency_max;
                let hi = (lo * 10).min(scenario::MAX_LATENCY);
                if hi <= lo {
                    continue;
                }
                FaultKind::Latency {
                    min: lo,
                    max: hi,
                    duration: len,
                }
            }
            "slow-host" if !hosts.is_empty() => FaultKind::SlowHost {
                node: hosts[rng.gen_range(0..hosts.len())].clone(),
                // Between 2× and 10× slower, to one decimal.
                factor: (rng.gen_range(2.0..10.0f64) * 10.0).round() / 10.0,
                duration: len,
            },
            "host-errors" if !hosts.is_empty() => FaultKind::HostErrors {
                node: hosts[rng.gen_range(0..hosts.len())].clone(),
                // Between 10% and 90% of ops fail, to two decimals.
                rate: (rng.gen_range(0.1..0.9f64) * 100.0).round() / 100.0,
                duration: len,
            },
            _ => continue,
        };
        out.push(Fault { at, kind: fk });
        t += len.as_secs_f64();
    }
    out
}

/// One step of the schedule.
#[derive(Debug, Clone)]
enum Step {
    /// The fault starts (every kind but `clog`, whose nodes clog one by one).
    Begin,
    /// The fault ends.
    End,
    /// A swizzle-clog clogs one more of its nodes.
    ClogOne(IpAddr),
    /// A swizzle-clog unclogs one of its nodes.
    UnclogOne(IpAddr),
}

/// What the injector has in force, reference-counted so overlapping faults compose.
#[derive(Default)]
struct State {
    /// Nodes clogged in both directions (isolate, clog).
    nodes: BTreeMap<IpAddr, u32>,
    /// Clogged links (partitions).
    links: BTreeMap<(IpAddr, IpAddr), u32>,
    /// Killed nodes: how many kills hold each down.
    killed: BTreeMap<String, u32>,
    /// Paused nodes.
    paused: BTreeMap<String, u32>,
    /// Latency faults in force, by fault index, in start order (the latest wins).
    latency: Vec<(usize, MemNetConfig)>,
    /// Slow-host factors in force per host index, by fault index (they multiply).
    slow: BTreeMap<u32, Vec<(usize, f64)>>,
    /// Host error rates in force per host index, by fault index (independent failures).
    errors: BTreeMap<u32, Vec<(usize, f64)>>,
    /// Set by the heal: later steps do nothing.
    healed: bool,
}

/// Runs faults against the world.
pub struct Injector {
    handle: Handle,
    net: MemNet,
    nodes: Nodes,
    base: MemNetConfig,
    hosts: Arc<HostFaults>,
    rec: Arc<SimRecorder>,
    seed: u64,
    state: Mutex<State>,
}

impl Injector {
    /// An injector for the world's `nodes` on `net` (whose current settings are the base the
    /// heal restores), with host overrides in `hosts`.
    pub fn new(
        handle: Handle,
        net: MemNet,
        nodes: Nodes,
        hosts: Arc<HostFaults>,
        rec: Arc<SimRecorder>,
        seed: u64,
    ) -> Self {
        Injector {
            handle,
            base: net.config(),
            net,
            nodes,
            hosts,
            rec,
            seed,
            state: Mutex::default(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `faults` from `start`; steps at or after `load_end` (µs from start) are left to the
    /// heal. Returns when the last step before `load_end` has run.
    pub async fn run(self: Arc<Self>, faults: Vec<Fault>, start: Instant, load_end_us: u64) {
        let mut steps: Vec<(u64, usize, usize, Step)> = Vec::new();
        let us = |d: Duration| d.as_micros().min(u128::from(u64::MAX)) as u64;
        for (i, f) in faults.iter().enumerate() {
            let at = us(f.at);
            let mut push = |t: u64, s: Step| {
                let n = steps.len();
                steps.push((t, n, i, s));
            };
            match &f.kind {
                FaultKind::Clog { nodes, duration } => {
                    // FoundationDB's swizzle: clog the nodes one by one over the first half of
                    // the fault, unclog them in a random order over the second half.
                    let d = us(*duration);
                    let n = nodes.len().max(1) as u64;
                    let slot = d / (2 * n);
                    let ips: Vec<IpAddr> = nodes.iter().filter_map(|x| self.ip(x)).collect();
                    for (k, ip) in ips.iter().enumerate() {
                        push(at + k as u64 * slot, Step::ClogOne(*ip));
                    }
                    let mut order = ips.clone();
                    let mut rng: ChaCha8Rng = stream(self.seed, Purpose::Faults, i as u64);
                    order.shuffle(&mut rng);
                    for (k, ip) in order.iter().enumerate() {
                        push(at + d / 2 + k as u64 * slot, Step::UnclogOne(*ip));
                    }
                }
                FaultKind::Kill { restart_after, .. } => {
                    push(at, Step::Begin);
                    if let Some(r) = restart_after {
                        push(at.saturating_add(us(*r)), Step::End);
                    }
                }
                k => {
                    push(at, Step::Begin);
                    push(at.saturating_add(us(duration_of(k))), Step::End);
                }
            }
        }
        steps.retain(|s| s.0 < load_end_us);
        steps.sort_by_key(|s| (s.0, s.1));
        for (t, _, i, step) in steps {
            exact_sleep(start + Duration::from_micros(t)).await;
            self.apply(i, &faults[i], &step);
        }
    }

    fn ip(&self, name: &str) -> Option<IpAddr> {
        self.nodes.get(name).map(|n| n.ip)
    }

    fn host_index(name: &str) -> Option<u32> {
        name.strip_prefix("host-")?
            .parse::<u32>()
            .ok()?
            .checked_sub(1)
    }

    fn clog_node(&self, st: &mut State, ip: IpAddr) {
        let c = st.nodes.entry(ip).or_insert(0);
        *c += 1;
        if *c == 1 {
            self.net.clog_node(ip, true, true);
        }
    }

    fn unclog_node(&self, st: &mut State, ip: IpAddr) {
        if let Some(c) = st.nodes.get_mut(&ip) {
            *c -= 1;
            if *c == 0 {
                st.nodes.remove(&ip);
                self.net.unclog_node(ip, true, true);
            }
        }
    }

    fn clog_link(&self, st: &mut State, a: IpAddr, b: IpAddr) {
        let c = st.links.entry((a, b)).or_insert(0);
        *c += 1;
        if *c == 1 {
            self.net.clog_link(a, b);
        }
    }

    fn unclog_link(&self, st: &mut State, a: IpAddr, b: IpAddr) {
        if let Some(c) = st.links.get_mut(&(a, b)) {
            *c -= 1;
            if *c == 0 {
                st.links.remove(&(a, b));
                self.net.unclog_link(a, b);
            }
        }
    }

    /// The links a partition cuts: between nodes of different groups; with `oneway`, only from
    /// an earlier group to a later one (connections still fail both ways, as TCP's handshake
    /// needs both directions).
    fn partition_links(&self, groups: &[Vec<String>], oneway: bool) -> Vec<(IpAddr, IpAddr)> {
        let ips: Vec<Vec<IpAddr>> = groups
            .iter()
            .map(|g| g.iter().filter_map(|n| self.ip(n)).collect())
            .collect();
        let mut out = Vec::new();
        for (i, gi) in ips.iter().enumerate() {
            for gj in ips.iter().skip(i + 1) {
                for &a in gi {
                    for &b in gj {
                        out.push((a, b));
                        if !oneway {
                            out.push((b, a));
                        }
                    }
                }
            }
        }
        out
    }

    fn set_latency(&self, st: &State) {
        let cfg = st.latency.last().map_or(self.base, |(_, c)| *c);
        self.net.set_config(cfg);
    }

    fn set_host(&self, st: &State, host: u32) {
        let factor: f64 = st
            .slow
            .get(&host)
            .map_or(1.0, |v| v.iter().map(|(_, f)| f).product());
        let ok: f64 = st
            .errors
            .get(&host)
            .map_or(1.0, |v| v.iter().map(|(_, r)| 1.0 - r).product());
        self.hosts.set(host, factor, 1.0 - ok);
    }

    fn kill(&self, st: &mut State, name: &str) {
        let Some(n) = self.nodes.get(name) else {
            return;
        };
        let c = st.killed.entry(name.to_string()).or_insert(0);
        *c += 1;
        if *c == 1 {
            self.handle.kill(n.id);
            self.net.close_listeners(n.ip);
            // A dead conductor's workers and slots are busy with nothing: its occupancy drops
            // to zero (its restart starts from zero, reporting as it goes).
            let index = name
                .strip_prefix("conductor-")
                .and_then(|i| i.parse::<u32>().ok())
                .and_then(|i| i.checked_sub(1));
            if let Some(conductor) = index {
                self.rec.record(Event::PoolBusy { conductor, busy: 0 });
                self.rec.record(Event::RpcBusy { conductor, busy: 0 });
            }
        }
    }

    fn restart(&self, st: &mut State, name: &str) {
        let Some(n) = self.nodes.get(name) else {
            return;
        };
        if let Some(c) = st.killed.get_mut(name) {
            *c -= 1;
            if *c == 0 {
                st.killed.remove(name);
                self.handle.restart(n.id);
                // A pause still in force holds the new incarnation too.
                if st.paused.contains_key(name) {
                    self.handle.pause(n.id);
                }
            }
        }
    }

    fn pause(&self, st: &mut State, name: &str) {
        let Some(n) = self.nodes.get(name) else {
            return;
        };
        let c = st.paused.entry(name.to_string()).or_insert(0);
        *c += 1;
        if *c == 1 {
            self.handle.pause(n.id);
        }
    }

    fn resume(&self, st: &mut State, name: &str) {
        let Some(n) = self.nodes.get(name) else {
            return;
        };
        if let Some(c) = st.paused.get_mut(name) {
            *c -= 1;
            if *c == 0 {
                st.paused.remove(name);
                self.handle.resume(n.id);
            }
        }
    }

    fn apply(&self, i: usize, f: &Fault, step: &Step) {
        let mut g = self.lock();
        if g.healed {
            return;
        }
        let st = &mut *g;
        let begin = matches!(step, Step::Begin);
        match (&f.kind, step) {
            (FaultKind::Clog { .. }, Step::ClogOne(ip)) => self.clog_node(st, *ip),
            (FaultKind::Clog { .. }, Step::UnclogOne(ip)) => self.unclog_node(st, *ip),
            (FaultKind::Partition { groups, oneway, .. }, _) => {
                for (a, b) in self.partition_links(groups, *oneway) {
                    if begin {
                        self.clog_link(st, a, b);
                    } else {
                        self.unclog_link(st, a, b);
                    }
                }
            }
            (FaultKind::Isolate { node, .. }, _) => {
                if let Some(ip) = self.ip(node) {
                    if begin {
                        self.clog_node(st, ip);
                    } else {
                        self.unclog_node(st, ip);
                    }
                }
            }
            (FaultKind::Kill { node, .. }, _) => {
                if begin {
                    self.kill(st, node);
                } else {
                    self.restart(st, node);
                }
            }
            (FaultKind::Pause { node, .. }, _) => {
                if begin {
                    self.pause(st, node);
                } else {
                    self.resume(st, node);
                }
            }
            (FaultKind::Latency { min, max, .. }, _) => {
                if begin {
                    let cfg = MemNetConfig {
                        latency_min: *min,
                        latency_max: *max,
                        ..self.base
                    };
                    st.latency.push((i, cfg));
                } else {
                    st.latency.retain(|(j, _)| *j != i);
                }
                self.set_latency(st);
            }
            (FaultKind::SlowHost { node, factor, .. }, _) => {
                if let Some(h) = Self::host_index(node) {
                    let v = st.slow.entry(h).or_default();
                    if begin {
                        v.push((i, *factor));
                    } else {
                        v.retain(|(j, _)| *j != i);
                    }
                    self.set_host(st, h);
                }
            }
            (FaultKind::HostErrors { node, rate, .. }, _) => {
                if let Some(h) = Self::host_index(node) {
                    let v = st.errors.entry(h).or_default();
                    if begin {
                        v.push((i, *rate));
                    } else {
                        v.retain(|(j, _)| *j != i);
                    }
                    self.set_host(st, h);
                }
            }
            (FaultKind::Clog { .. }, _) => {}
        }
        drop(g);
        self.rec.note("nemesis", || {
            let what = match step {
                Step::Begin => "begin".to_string(),
                Step::End => "end".to_string(),
                Step::ClogOne(ip) => format!("clog {ip}"),
                Step::UnclogOne(ip) => format!("unclog {ip}"),
            };
            format!("fault {i} {} {what}: {}", f.kind.name(), describe(f))
        });
    }

    /// Lifts every fault in force (the end of the load phase): unclogs every node and link,
    /// restarts every killed node, resumes every paused one, restores the network's settings
    /// and clears the host overrides. Steps still scheduled do nothing afterwards.
    pub fn heal(&self) {
        let mut g = self.lock();
        let st = &mut *g;
        st.healed = true;
        let any = !st.nodes.is_empty()
            || !st.links.is_empty()
            || !st.killed.is_empty()
            || !st.paused.is_empty()
            || !st.latency.is_empty()
            || !st.slow.is_empty()
            || !st.errors.is_empty();
        for ip in std::mem::take(&mut st.nodes).into_keys() {
            self.net.unclog_node(ip, true, true);
        }
        for (a, b) in std::mem::take(&mut st.links).into_keys() {
            self.net.unclog_link(a, b);
        }
        let paused = std::mem::take(&mut st.paused);
        for name in std::mem::take(&mut st.killed).into_keys() {
            if let Some(n) = self.nodes.get(&name) {
                self.handle.restart(n.id);
            }
        }
        for name in paused.into_keys() {
            if let Some(n) = self.nodes.get(&name) {
                self.handle.resume(n.id);
            }
        }
        st.latency.clear();
        self.net.set_config(self.base);
        st.slow.clear();
        st.errors.clear();
        self.hosts.clear();
        drop(g);
        if any {
            self.rec
                .note("nemesis", || "heal: every fault lifted".to_string());
        }
    }
}

/// How long a fault with a `duration` key lasts (kill has none: zero).
fn duration_of(k: &FaultKind) -> Duration {
    match k {
        FaultKind::Partition { duration, .. }
        | FaultKind::Isolate { duration, .. }
        | FaultKind::Pause { duration, .. }
        | FaultKind::Clog { duration, .. }
        | FaultKind::Latency { duration, .. }
        | FaultKind::SlowHost { duration, .. }
        | FaultKind::HostErrors { duration, .. } => *duration,
        FaultKind::Kill { .. } => Duration::ZERO,
    }
}

/// A fault in its `[[faults]]` form, on one line, for the trace.
fn describe(f: &Fault) -> String {
    serde_json::to_string(f).unwrap_or_default()
}

/// A fault schedule in `[[faults]]` form, for `SeedMetrics.faults`.
pub fn to_json(faults: &[Fault]) -> Vec<serde_json::Value> {
    faults
        .iter()
        .filter_map(|f| serde_json::to_value(f).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use scenario::parse_str;

    fn scn(extra: &str) -> Scenario {
        let src = format!(
            "name = \"x\"\nduration = \"1h\"\n[cluster]\nconductors = 3\nhosts = 2\n{extra}"
        );
        parse_str(&src, "x.toml", &[], None).unwrap()
    }

    #[test]
    fn nemesis_is_deterministic_and_in_bounds() {
        let s = scn(
            "[nemesis]\nkinds = [\"partition\", \"kill\", \"pause\", \"clog\", \"latency\", \"isolate\", \"slow-host\", \"host-errors\"]\ntargets = [\"conductor-1\", \"conductor-2\", \"host-1\"]\nmean_interval = \"1m\"\nmean_duration = \"10s\"",
        );
        let names: Vec<String> = ["api", "bus", "store", "conductor-1", "conductor-2"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let a = schedule(&s, 5, &names);
        let b = schedule(&s, 5, &names);
        assert_eq!(a, b);
        assert_ne!(a, schedule(&s, 6, &names));
        assert!(a.len() > 20, "about 1h / 70s faults: {}", a.len());
        let mut kinds: Vec<&str> = a.iter().map(|f| f.kind.name()).collect();
        kinds.sort();
        kinds.dedup();
        assert_eq!(kinds.len(), 8, "{kinds:?}");
        // One at a time, every one inside the load phase.
        let mut end = Duration::ZERO;
        for f in &a {
            assert!(f.at >= end && f.at < s.duration, "{f:?}");
            end = f.at + duration_of(&f.kind);
            if let FaultKind::Kill { restart_after, .. } = &f.kind {
                end = f.at + restart_after.unwrap();
            }
        }
        // The recorded form parses back as the same faults.
        let json = to_json(&a);
        let toml: Vec<toml::Value> = json
            .iter()
            .map(|j| serde_json::from_value(j.clone()).unwrap())
            .collect();
        let mut doc = toml::map::Map::new();
        doc.insert("faults".into(), toml::Value::Array(toml));
        let text = toml::to_string(&doc).unwrap();
        let back = scn(&text);
        assert_eq!(back.faults, a, "{text}");
    }

    #[test]
    fn default_targets_are_the_conductors() {
        let s = scn("[nemesis]\nkinds = [\"kill\"]\nmean_interval = \"1m\"");
        let f = schedule(&s, 1, &[]);
        assert!(!f.is_empty());
        for x in f {
            match x.kind {
                FaultKind::Kill { node, .. } => assert!(node.starts_with("conductor-")),
                k => panic!("{k:?}"),
            }
        }
    }
}
