//! Fault injection: the scheduled `[[faults]]` and the faults the `[nemesis]` draws, run against
//! the world's nodes, and the heal at the end of the load phase.
//!
//! The whole schedule is known before the run starts: scheduled faults come from the file, and the
//! nemesis draws from its own stream (`rng::stream(seed, Nemesis, 0)`), never from the scheduler
//! or from what the system did. So the same seed runs the same faults in every configuration
//! (common random numbers), and the schedule written to `SeedMetrics.faults` (in `[[faults]]`
//! form) replays as a plain scenario.
//!
//! Each kind says how it is drawn, scheduled, applied and healed in its own file
//! (`scenario::fault`); the injector gives it the world's primitives ([`FaultWorld`]):
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
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rand_distr::Exp1;
use scenario::fault::{micros, Draw, FaultWorld, Step};
use scenario::host_model::HostFaults;
use scenario::rng::{stream, Purpose};
use scenario::{Fault, Nemesis, Node, Scenario};
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

/// The world's nodes (`api`, `bus`, `store`, `conductor-N`, `host-N`), in name order.
pub type Nodes = BTreeMap<Node, NodeRef>;

/// The schedule of one seed: the file's `[[faults]]` followed by the nemesis's draws, each with
/// its start time. `names` are every node of the world, in name order.
pub fn schedule(scn: &Scenario, seed: u64, names: &[Node]) -> Vec<Fault> {
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
/// (mean `mean_duration`); the kind then draws its parameters (its file says how) and the next
/// interval starts when it ends; a kind that fits nothing in this world is skipped. The targets
/// default to the conductors; the parameters no key gives are fixed by each kind (documented in
/// README, "Faults").
pub fn nemesis(n: &Nemesis, scn: &Scenario, seed: u64, names: &[Node]) -> Vec<Fault> {
    let mut rng: ChaCha8Rng = stream(seed, Purpose::Nemesis, 0);
    let targets: Vec<Node> = if n.targets.is_empty() {
        (0..scn.cluster.conductors).map(Node::Conductor).collect()
    } else {
        n.targets.clone()
    };
    let mix = if n.swarm {
        crate::swarm::draw(n, &targets, &mut rng)
    } else {
        crate::swarm::Mix::whole(n, &targets)
    };
    let (kinds, targets) = (mix.kinds, mix.targets);
    let hosts: Vec<Node> = targets.iter().copied().filter(Node::is_host).collect();
    let end = scn.duration.as_secs_f64();
    let mut t = 0.0;
    let mut out = Vec::new();
    loop {
        t += rng.sample::<f64, _>(Exp1) * mix.mean_interval.as_secs_f64();
        if t >= end || kinds.is_empty() || targets.is_empty() {
            break;
        }
        let at = ms(t).min(scn.duration - Duration::from_millis(1).min(scn.duration));
        let kind = kinds[rng.gen_range(0..kinds.len())];
        let len = ms(rng.sample::<f64, _>(Exp1) * mix.mean_duration.as_secs_f64());
        let cx = Draw {
            targets: &targets,
            hosts: &hosts,
            nodes: names,
            network: &scn.network,
            len,
        };
        let Some(drawn) = kind.draw(&cx, &mut rng) else {
            continue;
        };
        out.push(Fault { at, kind: drawn });
        t += len.as_secs_f64();
    }
    out
}

/// What the injector has in force, reference-counted so overlapping faults compose.
#[derive(Default)]
struct State {
    /// Nodes clogged in both directions (isolate, clog).
    nodes: BTreeMap<IpAddr, u32>,
    /// Clogged links (partitions).
    links: BTreeMap<(IpAddr, IpAddr), u32>,
    /// Killed nodes: how many kills hold each down (in name order: the heal restarts them in
    /// it).
    killed: BTreeMap<Node, u32>,
    /// Paused nodes.
    paused: BTreeMap<Node, u32>,
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
        for (i, f) in faults.iter().enumerate() {
            for (t, s) in f.kind.steps(micros(f.at), self.seed, i) {
                let n = steps.len();
                steps.push((t, n, i, s));
            }
        }
        steps.retain(|s| s.0 < load_end_us);
        steps.sort_by_key(|s| (s.0, s.1));
        for (t, _, i, step) in steps {
            exact_sleep(start + Duration::from_micros(t)).await;
            self.apply(i, &faults[i], &step);
        }
    }

    fn ip(&self, node: Node) -> Option<IpAddr> {
        self.nodes.get(&node).map(|n| n.ip)
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

    fn kill(&self, st: &mut State, node: Node) {
        let Some(n) = self.nodes.get(&node) else {
            return;
        };
        let c = st.killed.entry(node).or_insert(0);
        *c += 1;
        if *c == 1 {
            self.handle.kill(n.id);
            self.net.close_listeners(n.ip);
            // A dead conductor's workers and slots are busy with nothing: its occupancy drops
            // to zero (its restart starts from zero, reporting as it goes).
            if let Node::Conductor(conductor) = node {
                self.rec.record(Event::PoolBusy { conductor, busy: 0 });
                self.rec.record(Event::RpcBusy { conductor, busy: 0 });
            }
        }
    }

    fn restart(&self, st: &mut State, node: Node) {
        let Some(n) = self.nodes.get(&node) else {
            return;
        };
        if let Some(c) = st.killed.get_mut(&node) {
            *c -= 1;
            if *c == 0 {
                st.killed.remove(&node);
                self.handle.restart(n.id);
                // A pause still in force holds the new incarnation too.
                if st.paused.contains_key(&node) {
                    self.handle.pause(n.id);
                }
            }
        }
    }

    fn pause(&self, st: &mut State, node: Node) {
        let Some(n) = self.nodes.get(&node) else {
            return;
        };
        let c = st.paused.entry(node).or_insert(0);
        *c += 1;
        if *c == 1 {
            self.handle.pause(n.id);
        }
    }

    fn resume(&self, st: &mut State, node: Node) {
        let Some(n) = self.nodes.get(&node) else {
            return;
        };
        if let Some(c) = st.paused.get_mut(&node) {
            *c -= 1;
            if *c == 0 {
                st.paused.remove(&node);
                self.handle.resume(n.id);
            }
        }
    }

    fn apply(&self, i: usize, f: &Fault, step: &Step) {
        let mut g = self.lock();
        if g.healed {
            return;
        }
        f.kind.apply(
            &mut Acting {
                inj: self,
                st: &mut g,
            },
            i,
            step,
        );
        drop(g);
        self.rec.note("nemesis", || {
            let ip = |n: &Node| {
                self.ip(*n)
                    .map_or_else(|| n.to_string(), |ip| ip.to_string())
            };
            let what = match step {
                Step::Begin => "begin".to_string(),
                Step::End => "end".to_string(),
                Step::ClogOne(n) => format!("clog {}", ip(n)),
                Step::UnclogOne(n) => format!("unclog {}", ip(n)),
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
        for node in std::mem::take(&mut st.killed).into_keys() {
            if let Some(n) = self.nodes.get(&node) {
                self.handle.restart(n.id);
            }
        }
        for node in paused.into_keys() {
            if let Some(n) = self.nodes.get(&node) {
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

/// The injector with its state locked: the world a fault kind acts on.
struct Acting<'a> {
    inj: &'a Injector,
    st: &'a mut State,
}

impl FaultWorld for Acting<'_> {
    fn clog_node(&mut self, node: Node) {
        if let Some(ip) = self.inj.ip(node) {
            self.inj.clog_node(self.st, ip);
        }
    }

    fn unclog_node(&mut self, node: Node) {
        if let Some(ip) = self.inj.ip(node) {
            self.inj.unclog_node(self.st, ip);
        }
    }

    fn clog_link(&mut self, from: Node, to: Node) {
        if let (Some(a), Some(b)) = (self.inj.ip(from), self.inj.ip(to)) {
            self.inj.clog_link(self.st, a, b);
        }
    }

    fn unclog_link(&mut self, from: Node, to: Node) {
        if let (Some(a), Some(b)) = (self.inj.ip(from), self.inj.ip(to)) {
            self.inj.unclog_link(self.st, a, b);
        }
    }

    fn kill(&mut self, node: Node) {
        self.inj.kill(self.st, node);
    }

    fn restart(&mut self, node: Node) {
        self.inj.restart(self.st, node);
    }

    fn pause(&mut self, node: Node) {
        self.inj.pause(self.st, node);
    }

    fn resume(&mut self, node: Node) {
        self.inj.resume(self.st, node);
    }

    fn latency(&mut self, fault: usize, bounds: Option<(Duration, Duration)>) {
        match bounds {
            Some((latency_min, latency_max)) => {
                let cfg = MemNetConfig {
                    latency_min,
                    latency_max,
                    ..self.inj.base
                };
                self.st.latency.push((fault, cfg));
            }
            None => self.st.latency.retain(|(j, _)| *j != fault),
        }
        self.inj.set_latency(self.st);
    }

    fn slow_host(&mut self, fault: usize, host: u32, factor: Option<f64>) {
        let v = self.st.slow.entry(host).or_default();
        match factor {
            Some(f) => v.push((fault, f)),
            None => v.retain(|(j, _)| *j != fault),
        }
        self.inj.set_host(self.st, host);
    }

    fn host_errors(&mut self, fault: usize, host: u32, rate: Option<f64>) {
        let v = self.st.errors.entry(host).or_default();
        match rate {
            Some(r) => v.push((fault, r)),
            None => v.retain(|(j, _)| *j != fault),
        }
        self.inj.set_host(self.st, host);
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
    use scenario::{parse_str, FaultKind};

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
        let names: Vec<Node> = vec![
            Node::Api,
            Node::Bus,
            Node::Store,
            Node::Conductor(0),
            Node::Conductor(1),
        ];
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
            end = f.at + f.kind.lasts().unwrap();
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
                FaultKind::Kill(k) => assert!(matches!(k.node, Node::Conductor(_))),
                k => panic!("{k:?}"),
            }
        }
    }
}
