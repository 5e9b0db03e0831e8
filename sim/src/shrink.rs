//! `shrink`: from a failing seed to a small standalone scenario that breaks the same invariant
//! (DEMi's order, Scott et al., NSDI 2016: the external events first, then the rest).
//!
//! It starts from the schedule the seed actually ran — the nemesis's draws as recorded in
//! `SeedMetrics.faults`, read back as `[[faults]]` — and keeps a reduction only when the same
//! seed still breaks the invariant: the load phase cut after the violation (plus a margin) or
//! halved, [`ddmin`] over the faults, then each remaining fault's nodes (a partition's groups,
//! a clog's nodes), its length and its start, the arrival rate, the lifecycle or the number of
//! containers, the conductors and the hosts. A reduction can shift the interleaving so that the
//! seed stops failing for a reason unrelated to it: before rejecting one, the shrinker tries a
//! few other schedule seeds ([`crate::schedule_seed`]) and notes when one was needed.
//!
//! Every candidate is a whole scenario validated by the parser (written as TOML and read back),
//! so what is kept is always a file that loads. A round's candidates run in parallel and the
//! first that still fails, in a fixed order, is taken: the result does not depend on which run
//! finishes first, and the number of runs counted (and the budget) neither.

use crate::ddmin::ddmin;
use crate::run::{on_fresh_thread, pool};
use crate::schedule_seed;
use crate::world::run_seed;
use checker::{Invariant, Kind};
use scenario::{Arrival, Fault, FaultKind, Model, Node, Scenario};
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

/// The shortest length a fault's duration is halved to.
const MIN_FAULT_LEN: Duration = Duration::from_millis(100);

/// The shortest load phase tried.
const MIN_LOAD: Duration = Duration::from_secs(1);

/// How the shrinker runs.
#[derive(Debug, Clone)]
pub struct Options {
    /// The seed that failed.
    pub seed: u64,
    /// The invariant to keep broken; `None`: the first the seed breaks that the scenario does
    /// not expect (registry order).
    pub invariant: Option<Invariant>,
    /// The most runs it may spend (≥ 1).
    pub max_runs: u64,
    /// Runs at once.
    pub jobs: usize,
    /// Other schedule seeds tried before a reduction is rejected.
    pub alternatives: u64,
    /// Where relative `empirical` files of candidates resolve.
    pub base_dir: Option<PathBuf>,
}

/// The size of a scenario as `shrink` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Size {
    /// `[[faults]]` (and, before, the nemesis's draws).
    pub faults: usize,
    /// Ops the client submitted in the run.
    pub ops: u64,
    /// The load phase.
    pub load: Duration,
    /// Simulated time the run lasted (load and drain).
    pub sim_us: u64,
    /// Conductors.
    pub conductors: u32,
    /// Hosts.
    pub hosts: u32,
}

/// What came of a shrink.
#[derive(Debug, Clone)]
pub struct Shrunk {
    /// The invariant kept broken.
    pub invariant: Invariant,
    /// The reduced scenario: no nemesis, the faults as `[[faults]]`, its schedule seed set
    /// when another than the seed's own was needed.
    pub scenario: Scenario,
    /// The invariants its run breaks (the target among them).
    pub broken: Vec<Invariant>,
    /// The seed's run before.
    pub before: Size,
    /// The reduced scenario's run.
    pub after: Size,
    /// Runs spent (the rounds' candidates up to the first that failed).
    pub runs: u64,
    /// The reductions kept only on another schedule seed, said in words.
    pub reseeded: Vec<String>,
    /// True when the budget ran out before every reduction was tried.
    pub out_of_budget: bool,
}

/// Why there is nothing to shrink.
#[derive(Debug, thiserror::Error)]
pub enum ShrinkError {
    /// The seed breaks nothing to shrink for.
    #[error("{0}")]
    Nothing(String),
    /// The seed's run, or its schedule replayed, could not be completed or did not fail.
    #[error("{0}")]
    Run(String),
}

/// One run's answer about the target.
#[derive(Debug, Clone)]
struct Trial {
    breaks: bool,
    /// When the target first broke, µs (the end of the drain for a liveness invariant).
    first_us: u64,
    broken: Vec<Invariant>,
    size: Size,
}

/// Runs `scn` with `seed` on a fresh thread and judges it for `target`.
pub fn trial(scn: &Scenario, seed: u64, target: Invariant) -> Option<(bool, u64, Vec<Invariant>)> {
    let m = on_fresh_thread(seed, || run_seed(scn, seed)).ok()?;
    let t = judge(scn, &m, target);
    Some((t.breaks, t.first_us, t.broken))
}

fn judge(scn: &Scenario, m: &reports::SeedMetrics, target: Invariant) -> Trial {
    let counts = m.violations_by_invariant();
    let broken: Vec<Invariant> = Invariant::ALL
        .iter()
        .copied()
        .filter(|i| counts.contains_key(i.name()))
        .collect();
    let first_us = m
        .violations
        .iter()
        .filter(|v| v.get("invariant").and_then(|x| x.as_str()) == Some(target.name()))
        .filter_map(|v| v.get("t_us").and_then(serde_json::Value::as_u64))
        .min()
        .unwrap_or(u64::MAX);
    Trial {
        breaks: broken.contains(&target),
        first_us,
        broken,
        size: Size {
            faults: m.faults.len(),
            ops: m.submitted,
            load: scn.duration,
            sim_us: m.sim_end_us,
            conductors: scn.cluster.conductors,
            hosts: scn.cluster.hosts,
        },
    }
}

/// The current best: a scenario that breaks the target, and its run.
#[derive(Debug, Clone)]
struct Best {
    scn: Scenario,
    trial: Trial,
}

struct Shrinker<'a> {
    opts: &'a Options,
    target: Invariant,
    runs: u64,
    out_of_budget: bool,
    reseeded: Vec<String>,
    progress: &'a (dyn Fn(&str, u64) + Sync),
}

impl Shrinker<'_> {
    /// Runs `(scenario, schedule seed)` jobs in parallel, in order, and gives the index of the
    /// first that breaks the target with its trial. Counts the runs up to that one (all when
    /// none does), within the budget.
    fn first_of(&mut self, jobs: &[Scenario]) -> Option<(usize, Trial)> {
        let left = self.opts.max_runs.saturating_sub(self.runs) as usize;
        if left == 0 {
            self.out_of_budget = true;
            return None;
        }
        if jobs.len() > left {
            self.out_of_budget = true;
        }
        let jobs = &jobs[..jobs.len().min(left)];
        let (seed, target) = (self.opts.seed, self.target);
        let job = |i: usize| {
            let scn = &jobs[i];
            let t = on_fresh_thread(seed, || run_seed(scn, seed))
                .ok()
                .map(|m| judge(scn, &m, target));
            // Jobs are handed out in order: once one breaks, every earlier one has started,
            // and the later ones cannot change the answer.
            let stop = t.as_ref().is_some_and(|t| t.breaks);
            (t, stop)
        };
        let results = pool(jobs.len(), self.opts.jobs, &job, &|| {});
        let hit = results
            .iter()
            .position(|r| matches!(r, Some(Some(t)) if t.breaks));
        self.runs += hit.map_or(jobs.len(), |i| i + 1) as u64;
        (self.progress)("", self.runs);
        let i = hit?;
        let t = results.into_iter().nth(i).flatten().flatten()?;
        Some((i, t))
    }

    /// The first of `cands` (in order) that still breaks the target: on the current schedule
    /// seed first, then on each alternative (candidate by candidate). `what` says what the
    /// reduction was, for the note when another schedule seed was needed.
    fn first(&mut self, cands: &[Scenario], what: &dyn Fn(usize) -> String) -> Option<Best> {
        if cands.is_empty() {
            return None;
        }
        if let Some((i, trial)) = self.first_of(cands) {
            return Some(Best {
                scn: cands[i].clone(),
                trial,
            });
        }
        if self.opts.alternatives == 0 || self.out_of_budget {
            return None;
        }
        let mut jobs = Vec::new();
        for c in cands {
            let base = schedule_seed::effective(self.opts.seed, c.simulation.schedule_seed);
            for k in 1..=self.opts.alternatives {
                let mut s = c.clone();
                s.simulation.schedule_seed = Some(schedule_seed::alternative(base, k));
                jobs.push(s);
            }
        }
        let (j, trial) = self.first_of(&jobs)?;
        let i = j / self.opts.alternatives as usize;
        self.reseeded.push(format!(
            "{} kept on schedule seed {} (it stopped failing on the previous one)",
            what(i),
            jobs[j].simulation.schedule_seed.unwrap_or_default()
        ));
        Some(Best {
            scn: jobs[j].clone(),
            trial,
        })
    }

    /// Keeps taking the first failing candidate `gen` makes from the current best until none
    /// fails (or the budget is spent); true when anything was kept.
    fn repeat(
        &mut self,
        best: &mut Best,
        name: &str,
        gen: &dyn Fn(&Best) -> Vec<(String, Scenario)>,
    ) -> bool {
        let mut any = false;
        // Each kept candidate is strictly smaller, so this ends; the bound is a guard.
        for _ in 0..64 {
            (self.progress)(name, self.runs);
            let cands: Vec<(String, Scenario)> = gen(best)
                .into_iter()
                .filter_map(|(w, s)| valid(&s, self.opts).map(|s| (w, s)))
                .collect();
            let scns: Vec<Scenario> = cands.iter().map(|(_, s)| s.clone()).collect();
            match self.first(&scns, &|i| cands[i].0.clone()) {
                Some(b) => {
                    *best = b;
                    any = true;
                }
                None => break,
            }
        }
        any
    }

    /// ddmin over the faults (after trying none at all).
    fn faults(&mut self, best: &mut Best) -> bool {
        (self.progress)("faults", self.runs);
        let faults = best.scn.faults.clone();
        if faults.is_empty() {
            return false;
        }
        let base = best.scn.clone();
        let with = |fs: &[Fault]| {
            let mut s = base.clone();
            s.faults = fs.to_vec();
            s
        };
        if let Some(b) = self.first(&[with(&[])], &|_| "no faults at all".into()) {
            *best = b;
            return true;
        }
        let mut kept: Option<Best> = None;
        let reduced = ddmin(&faults, &mut |cands: &[Vec<Fault>]| {
            let scns: Vec<Scenario> = cands.iter().map(|c| with(c)).collect();
            let b = self.first(&scns, &|i| format!("{} of the faults", cands[i].len()))?;
            let i = cands.iter().position(|c| c.as_slice() == b.scn.faults)?;
            kept = Some(b);
            Some(i)
        });
        match kept {
            Some(b) if b.scn.faults == reduced => {
                *best = b;
                true
            }
            _ => false,
        }
    }
}

/// A candidate as the parser reads it (written as TOML and read back): `None` when it is not
/// a valid scenario (a fault naming a conductor that is gone, say).
fn valid(s: &Scenario, opts: &Options) -> Option<Scenario> {
    let text = toml::to_string(s).ok()?;
    scenario::parse_supported(&text, "shrink", &[], opts.base_dir.as_deref()).ok()
}

/// `d` rounded up to whole seconds.
fn whole_secs(d: Duration) -> Duration {
    Duration::from_secs(d.as_secs() + u64::from(d.subsec_nanos() > 0))
}

/// The scenario with its load phase cut to `d`: faults starting later dropped.
fn cut(s: &Scenario, d: Duration) -> Scenario {
    let mut c = s.clone();
    c.duration = d;
    c.faults.retain(|f| f.at < d);
    if c.warmup >= d {
        c.warmup = Duration::ZERO;
    }
    c
}

/// Load phases to try, shortest first: just after the target first broke (a safety invariant:
/// the violation plus a margin of a tenth, at least 5 s) and halvings of the current one (what
/// finds the cut for a liveness invariant, judged only at the end of the drain).
fn load_cuts(b: &Best) -> Vec<(String, Scenario)> {
    let d = b.scn.duration;
    let mut at: BTreeSet<Duration> = BTreeSet::new();
    if b.trial.first_us < d.as_micros() as u64 {
        let t = Duration::from_micros(b.trial.first_us);
        at.insert(whole_secs(t + (t / 10).max(Duration::from_secs(5))));
    }
    for k in [8, 4, 2] {
        at.insert(whole_secs(d / k).max(MIN_LOAD));
    }
    at.into_iter()
        .filter(|x| *x < d)
        .map(|x| {
            (
                format!("the load phase cut to {}", humantime::format_duration(x)),
                cut(&b.scn, x),
            )
        })
        .collect()
}

/// Half the drain (whole seconds), for a safety invariant only: a liveness one is judged at
/// the end of the drain, and a shorter drain would make "not finished yet" look like "stuck".
fn drain_cuts(b: &Best) -> Vec<(String, Scenario)> {
    let d = b.scn.drain;
    let h = Duration::from_secs((d / 2).as_secs());
    if h >= d {
        return Vec::new();
    }
    let mut s = b.scn.clone();
    s.drain = h;
    vec![(format!("a drain of {}", humantime::format_duration(h)), s)]
}

/// The fault with its length set to `d` (kinds without a length: unchanged).
fn with_len(f: &Fault, d: Duration) -> Fault {
    let mut f = f.clone();
    match &mut f.kind {
        FaultKind::Partition(k) => k.duration = d,
        FaultKind::Isolate(k) => k.duration = d,
        FaultKind::Kill(k) => k.restart_after = k.restart_after.map(|_| d),
        FaultKind::Pause(k) => k.duration = d,
        FaultKind::Clog(k) => k.duration = d,
        FaultKind::Latency(k) => k.duration = d,
        FaultKind::SlowHost(k) => k.duration = d,
        FaultKind::HostErrors(k) => k.duration = d,
    }
    f
}

/// Each fault with one node fewer: out of a partition group of several, a whole group of a
/// partition of more than two, out of a clog of several.
fn fewer_nodes(f: &Fault) -> Vec<Fault> {
    let mut out = Vec::new();
    match &f.kind {
        FaultKind::Partition(p) => {
            for (g, group) in p.groups.iter().enumerate() {
                if p.groups.len() > 2 {
                    let mut q = p.clone();
                    q.groups.remove(g);
                    out.push(FaultKind::Partition(q));
                }
                if group.len() > 1 {
                    for n in 0..group.len() {
                        let mut q = p.clone();
                        q.groups[g].remove(n);
                        out.push(FaultKind::Partition(q));
                    }
                }
            }
        }
        FaultKind::Clog(c) if c.nodes.len() > 1 => {
            for n in 0..c.nodes.len() {
                let mut q = c.clone();
                q.nodes.remove(n);
                out.push(FaultKind::Clog(q));
            }
        }
        _ => {}
    }
    out.into_iter()
        .map(|kind| Fault { at: f.at, kind })
        .collect()
}

fn node_cuts(b: &Best) -> Vec<(String, Scenario)> {
    let mut out = Vec::new();
    for (i, f) in b.scn.faults.iter().enumerate() {
        for g in fewer_nodes(f) {
            let mut s = b.scn.clone();
            s.faults[i] = g;
            out.push((format!("fault {} with fewer nodes", i + 1), s));
        }
    }
    out
}

/// Each fault's length halved (down to 100 ms), and its start moved earlier: to each eighth of
/// the way from the previous fault's start (or the run's), in whole milliseconds.
fn time_cuts(b: &Best) -> Vec<(String, Scenario)> {
    let mut out = Vec::new();
    for (i, f) in b.scn.faults.iter().enumerate() {
        if let Some(d) = f.kind.lasts() {
            let h = Duration::from_millis((d / 2).as_millis() as u64);
            if h >= MIN_FAULT_LEN && h < d {
                let mut s = b.scn.clone();
                s.faults[i] = with_len(f, h);
                out.push((format!("fault {} lasting half as long", i + 1), s));
            }
        }
        let prev = b.scn.faults[..i]
            .iter()
            .map(|p| p.at)
            .max()
            .unwrap_or(Duration::ZERO)
            .min(f.at);
        // Earliest first: the first that still fails is kept, and the load phase follows.
        let gap = f.at - prev;
        for k in 0..8u32 {
            let at = prev + Duration::from_millis((gap * k / 8).as_millis() as u64);
            if f.at - at >= Duration::from_secs(1) {
                let mut s = b.scn.clone();
                s.faults[i].at = at;
                out.push((
                    format!(
                        "fault {} starting at {}",
                        i + 1,
                        humantime::format_duration(at)
                    ),
                    s,
                ));
            }
        }
    }
    out
}

/// Half the arrival rate (Poisson and constant arrivals).
fn rate_cuts(b: &Best) -> Vec<(String, Scenario)> {
    let mut s = b.scn.clone();
    match &mut s.workload.arrival {
        Arrival::Poisson { rate } | Arrival::Constant { rate } if *rate > 0.02 => *rate /= 2.0,
        _ => return Vec::new(),
    }
    vec![("half the arrival rate".into(), s)]
}

/// The lifecycle with one step fewer, or half the containers of the `ops` model.
fn workload_cuts(b: &Best) -> Vec<(String, Scenario)> {
    let w = &b.scn.workload;
    let mut out = Vec::new();
    match w.model {
        Model::Lifecycle => {
            for i in 0..w.lifecycle.len() {
                if w.lifecycle.len() > 1 {
                    let mut s = b.scn.clone();
                    let op = s.workload.lifecycle.remove(i);
                    out.push((format!("the lifecycle without step {} ({op})", i + 1), s));
                }
            }
        }
        Model::Mixed => {
            if w.lifecycle.len() > 1 {
                let mut s = b.scn.clone();
                let op = s.workload.lifecycle.pop();
                let op = op.map_or(String::new(), |o| o.to_string());
                out.push((format!("the lifecycle without its last step ({op})"), s));
            }
            if w.containers > 1 {
                let mut s = b.scn.clone();
                s.workload.containers = w.containers / 2;
                out.push(("half the containers".into(), s));
            }
        }
        Model::Ops if w.containers > 1 => {
            let mut s = b.scn.clone();
            s.workload.containers = w.containers / 2;
            out.push(("half the containers".into(), s));
        }
        Model::Ops => {}
    }
    out
}

/// The fault with every mention of node `from` changed to `to`, through its recorded
/// (`[[faults]]`) form; `None` when it no longer reads back.
fn rename(f: &Fault, from: Node, to: Node) -> Option<Fault> {
    fn walk(v: &mut serde_json::Value, from: &str, to: &str) {
        match v {
            serde_json::Value::String(s) if s == from => *s = to.to_string(),
            serde_json::Value::Array(a) => a.iter_mut().for_each(|x| walk(x, from, to)),
            serde_json::Value::Object(m) => m.values_mut().for_each(|x| walk(x, from, to)),
            _ => {}
        }
    }
    let mut v = serde_json::to_value(f).ok()?;
    walk(&mut v, &from.to_string(), &to.to_string());
    Fault::from_recorded(&v)
}

/// The faults with node `gone` removed from the world and the nodes numbered after it (`of`
/// in all, made by `node`) moved down by one; `None` when a fault names `gone`.
fn renumbered(faults: &[Fault], node: fn(u32) -> Node, gone: u32, of: u32) -> Option<Vec<Fault>> {
    let named = |f: &Fault| rename(f, node(gone), node(of)).as_ref() != Some(f);
    if faults.iter().any(named) {
        return None;
    }
    faults
        .iter()
        .map(|f| ((gone + 1)..of).try_fold(f.clone(), |f, i| rename(&f, node(i), node(i - 1))))
        .collect()
}

/// One conductor fewer, one host fewer: each one no fault names, those after it renumbered.
fn cluster_cuts(b: &Best) -> Vec<(String, Scenario)> {
    let c = &b.scn.cluster;
    let mut out = Vec::new();
    for (of, node, what) in [
        (
            c.conductors,
            Node::Conductor as fn(u32) -> Node,
            "conductor",
        ),
        (c.hosts, Node::Host as fn(u32) -> Node, "host"),
    ] {
        if of < 2 {
            continue;
        }
        for gone in (0..of).rev() {
            let Some(faults) = renumbered(&b.scn.faults, node, gone, of) else {
                continue;
            };
            let mut s = b.scn.clone();
            s.faults = faults;
            if what == "conductor" {
                s.cluster.conductors -= 1;
            } else {
                s.cluster.hosts -= 1;
            }
            out.push((format!("without {}", node(gone)), s));
        }
    }
    out
}

/// The target: the one asked for, else the first broken one the scenario does not expect.
fn pick_target(
    scn: &Scenario,
    asked: Option<Invariant>,
    broken: &[Invariant],
) -> Option<Invariant> {
    match asked {
        Some(i) => broken.contains(&i).then_some(i),
        None => broken
            .iter()
            .copied()
            .find(|i| !scn.checks.expect.contains(i)),
    }
}

/// Shrinks seed `opts.seed` of `scn`; `progress(stage, runs)` is told what it is doing.
///
/// # Errors
/// [`ShrinkError::Nothing`] when the seed breaks nothing to shrink for (or not the invariant
/// asked); [`ShrinkError::Run`] when its run aborted or its recorded schedule, replayed without
/// the nemesis, no longer breaks it on any schedule seed tried.
pub fn shrink(
    scn: &Scenario,
    opts: &Options,
    progress: &(dyn Fn(&str, u64) + Sync),
) -> Result<Shrunk, ShrinkError> {
    let seed = opts.seed;
    let m = on_fresh_thread(seed, || run_seed(scn, seed))
        .map_err(|e| ShrinkError::Run(e.to_string()))?;
    let any = opts.invariant.unwrap_or(Invariant::ALL[0]);
    let first = judge(scn, &m, any);
    let Some(target) = pick_target(scn, opts.invariant, &first.broken) else {
        let broke: Vec<&str> = first.broken.iter().map(|i| i.name()).collect();
        return Err(ShrinkError::Nothing(match opts.invariant {
            Some(i) => format!(
                "seed {seed} does not break {i} (it breaks: {}): nothing to shrink",
                if broke.is_empty() {
                    "nothing".to_string()
                } else {
                    broke.join(", ")
                }
            ),
            None => format!(
                "seed {seed} breaks nothing the scenario does not expect (it breaks: {}): \
                 nothing to shrink",
                if broke.is_empty() {
                    "nothing".to_string()
                } else {
                    broke.join(", ")
                }
            ),
        }));
    };
    let before = first.size;
    let mut s = Shrinker {
        opts,
        target,
        runs: 1,
        out_of_budget: false,
        reseeded: Vec::new(),
        progress,
    };
    // The schedule it ran, as plain faults.
    let mut start = scn.clone();
    start.nemesis = None;
    start.faults = m.faults.iter().filter_map(Fault::from_recorded).collect();
    let start = valid(&start, opts).ok_or_else(|| {
        ShrinkError::Run(format!(
            "seed {seed}: its recorded schedule does not load as [[faults]]"
        ))
    })?;
    let mut best = s
        .first(&[start], &|_| {
            "the recorded schedule without the nemesis".into()
        })
        .ok_or_else(|| {
            ShrinkError::Run(format!(
                "seed {seed}: its recorded schedule, replayed without the nemesis, no longer \
                 breaks {target} on the schedule seeds tried"
            ))
        })?;
    // Passes, in DEMi's order, again while any of them keeps something (bounded).
    for _ in 0..4 {
        let mut any = false;
        any |= s.repeat(&mut best, "load phase", &load_cuts);
        any |= s.faults(&mut best);
        any |= s.repeat(&mut best, "fault nodes", &node_cuts);
        any |= s.repeat(&mut best, "fault times", &time_cuts);
        any |= s.repeat(&mut best, "load phase", &load_cuts);
        any |= s.repeat(&mut best, "arrival rate", &rate_cuts);
        any |= s.repeat(&mut best, "workload", &workload_cuts);
        any |= s.repeat(&mut best, "cluster", &cluster_cuts);
        if target.kind() == Kind::Safety {
            // Kept only if it breaks nothing new: a short drain makes liveness invariants
            // break for want of time, which is not the failure being reproduced.
            let before = best.clone();
            if s.repeat(&mut best, "drain", &drain_cuts) {
                if best
                    .trial
                    .broken
                    .iter()
                    .all(|i| before.trial.broken.contains(i))
                {
                    any = true;
                } else {
                    best = before;
                }
            }
        }
        if !any || s.out_of_budget {
            break;
        }
    }
    Ok(Shrunk {
        invariant: target,
        broken: best.trial.broken.clone(),
        after: best.trial.size,
        scenario: best.scn,
        before,
        runs: s.runs,
        reseeded: s.reseeded,
        out_of_budget: s.out_of_budget,
    })
}
