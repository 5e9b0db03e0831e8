//! Helpers shared by the cross-crate integration tests in `tests/tests/*.rs`.
//!
//! The tests build small capacity scenarios from TOML text ([`capacity`]), run their seeds in
//! parallel ([`run`]), and compare what the simulator measured with queueing theory using
//! per-seed statistics ([`Stats`]).

use reports::SeedMetrics;
use scenario::{self, Scenario};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Seeds run at once: the test machine has 2 cores.
pub const JOBS: usize = 2;

/// The workspace root (the parent of this crate).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests crate lives inside the workspace")
        .to_path_buf()
}

/// Every bundled scenario file: `scenarios/*.toml`, the retry experiments
/// `scenarios/retry/*.toml`, then the kept reproductions `scenarios/regressions/*.toml`, each
/// folder in name order.
pub fn bundled_scenarios() -> Vec<PathBuf> {
    let root = workspace_root().join("scenarios");
    let mut out = Vec::new();
    for dir in [root.clone(), root.join("retry"), root.join("regressions")] {
        let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect();
        v.sort();
        out.extend(v);
    }
    out
}

/// Parses scenario text with `--set` overrides and checks that the simulator supports it;
/// panics with the error's message otherwise (a test's own scenario must be valid).
pub fn parse(src: &str, sets: &[&str]) -> Scenario {
    let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
    let scn = scenario::parse_str(src, "test.toml", &sets, None)
        .unwrap_or_else(|e| panic!("test scenario refused: {e}\n{src}"));
    scenario::check_supported(&scn, "test.toml")
        .unwrap_or_else(|e| panic!("test scenario not supported: {e}"));
    scn
}

/// The pieces of a pure capacity scenario: Poisson arrivals, no invariants, no faults, and by
/// default one conductor and no state validation.
#[derive(Debug, Clone)]
pub struct Capacity {
    /// Pool workers.
    pub workers: u32,
    /// Arrival rate (ops per second, every op async unless `mix` says otherwise).
    pub rate: f64,
    /// `cluster.overflow`.
    pub overflow: &'static str,
    /// `[backend] default`, as an inline TOML table.
    pub service: String,
    /// Load phase, simulated seconds.
    pub duration_s: u64,
    /// Warm-up, simulated seconds.
    pub warmup_s: u64,
    /// `workload.mix`, as an inline TOML table.
    pub mix: String,
    /// RPC slots.
    pub rpc_workers: u32,
    /// Conductors (round-robin on the shared topic).
    pub conductors: u32,
    /// `api.validate_state` (Zun's 409s).
    pub validate_state: bool,
    /// `network.latency`, as an inline TOML table.
    pub latency: String,
}

impl Capacity {
    /// `workers` workers, `rate` ops/s, exponential service of mean 1 s, caller-runs, one hour
    /// with a one-minute warm-up, only `start` ops.
    pub fn new(workers: u32, rate: f64) -> Self {
        Capacity {
            workers,
            rate,
            overflow: "caller-runs",
            service: r#"{ dist = "exp", mean = "1s" }"#.into(),
            duration_s: 3600,
            warmup_s: 60,
            mix: "{ start = 1.0 }".into(),
            rpc_workers: 64,
            conductors: 1,
            validate_state: false,
            latency: r#"{ min = "1ms", max = "10ms" }"#.into(),
        }
    }

    /// With this network latency (an inline TOML table).
    pub fn latency(mut self, l: &str) -> Self {
        self.latency = l.into();
        self
    }

    /// With this overflow policy.
    pub fn overflow(mut self, o: &'static str) -> Self {
        self.overflow = o;
        self
    }

    /// With this service-time distribution (an inline TOML table).
    pub fn service(mut self, s: &str) -> Self {
        self.service = s.into();
        self
    }

    /// With this load phase and warm-up, in simulated seconds.
    pub fn duration(mut self, duration_s: u64, warmup_s: u64) -> Self {
        self.duration_s = duration_s;
        self.warmup_s = warmup_s;
        self
    }

    /// With this op mix (an inline TOML table).
    pub fn mix(mut self, m: &str) -> Self {
        self.mix = m.into();
        self
    }

    /// With this many RPC slots.
    pub fn rpc_workers(mut self, n: u32) -> Self {
        self.rpc_workers = n;
        self
    }

    /// With this many conductors.
    pub fn conductors(mut self, n: u32) -> Self {
        self.conductors = n;
        self
    }

    /// With Zun's state validation on or off.
    pub fn validate_state(mut self, on: bool) -> Self {
        self.validate_state = on;
        self
    }

    /// The scenario's TOML text.
    pub fn toml(&self) -> String {
        format!(
            r#"name = "test-capacity"
description = "generated by the tests crate"
seed = 1
duration = "{dur}s"
warmup = "{warm}s"
drain = "10m"

[cluster]
conductors = {conductors}
hosts = 4
rpc_workers = {rpc}
pool_workers = {c}
overflow = "{overflow}"

[api]
validate_state = {validate}

[network]
latency = {latency}

[workload]
arrival = {{ kind = "poisson", rate = {rate:?} }}
containers = 1000
mix = {mix}

[backend]
default = {service}

[checks]
invariants = []
"#,
            dur = self.duration_s,
            warm = self.warmup_s,
            rpc = self.rpc_workers,
            conductors = self.conductors,
            validate = self.validate_state,
            c = self.workers,
            overflow = self.overflow,
            rate = self.rate,
            mix = self.mix,
            service = self.service,
            latency = self.latency,
        )
    }

    /// The validated scenario.
    pub fn scenario(&self) -> Scenario {
        parse(&self.toml(), &[])
    }
}

/// Runs seeds `first .. first + n` of `scn` ([`JOBS`] at a time), panicking on a run error,
/// and prints how long it took (visible with `--nocapture`).
pub fn run(scn: &Scenario, first: u64, n: u64) -> Vec<SeedMetrics> {
    let t = Instant::now();
    let out = sim::run::run_seeds(scn, first, n, JOBS)
        .unwrap_or_else(|e| panic!("{}: run failed: {e}", scn.name));
    let ops: u64 = out.iter().map(|m| m.submitted).sum();
    eprintln!(
        "  ran {} seed(s) of {} ({} ops) in {:.2}s",
        n,
        scn.name,
        ops,
        t.elapsed().as_secs_f64()
    );
    out
}

/// Runs one seed of `scn` on a fresh thread (madsim needs one per run).
pub fn run_one(scn: &Scenario, seed: u64) -> SeedMetrics {
    run(scn, seed, 1).pop().expect("one seed")
}

/// The statistics window of a seed in seconds: from the end of the warm-up to the end of the
/// run (the drain included), the window of its time-weighted levels.
pub fn window_s(m: &SeedMetrics) -> f64 {
    m.sim_end_us.saturating_sub(m.warmup_us) as f64 / 1e6
}

/// The arrival rate at the pool during the load phase of `scn`, measured on seed `m`: pool
/// arrivals counted after the warm-up over the load phase after the warm-up.
pub fn measured_rate(scn: &Scenario, m: &SeedMetrics) -> f64 {
    m.arrivals as f64 / (scn.duration - scn.warmup).as_secs_f64()
}

/// The offered load a seed measured, in erlangs: its arrival rate times its mean hold time.
pub fn offered(scn: &Scenario, m: &SeedMetrics) -> f64 {
    measured_rate(scn, m) * m.hold.mean_us() / 1e6
}

/// Mean and standard error (sample sd / √n) of per-seed values.
#[derive(Debug, Clone, Copy)]
pub struct Stats {
    /// The mean.
    pub mean: f64,
    /// The sample standard deviation (n − 1).
    pub sd: f64,
    /// The standard error of the mean.
    pub se: f64,
    /// How many values.
    pub n: usize,
}

impl Stats {
    /// The statistics of `xs` (at least two values).
    pub fn of(xs: &[f64]) -> Self {
        let n = xs.len();
        assert!(n >= 2, "need at least two seeds, got {n}");
        let nf = n as f64;
        let mean = xs.iter().sum::<f64>() / nf;
        let sd = (xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (nf - 1.0)).sqrt();
        Stats {
            mean,
            sd,
            se: sd / nf.sqrt(),
            n,
        }
    }
}

impl std::fmt::Display for Stats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:.5} ± {:.5} (se, n = {})", self.mean, self.se, self.n)
    }
}

/// Asserts that per-seed differences `measured_i − predicted_i` average to zero within
/// `max(k·SE, floor)`, and that the test has power: `k·SE <= max_tol` (a run so noisy that
/// anything passes is a failure too). Returns the statistics of the differences.
pub fn assert_agrees(
    what: &str,
    measured: &[f64],
    predicted: &[f64],
    k: f64,
    floor: f64,
    max_tol: f64,
) -> Stats {
    assert_eq!(measured.len(), predicted.len());
    let diffs: Vec<f64> = measured.iter().zip(predicted).map(|(m, p)| m - p).collect();
    let d = Stats::of(&diffs);
    let m = Stats::of(measured);
    let p = predicted.iter().sum::<f64>() / predicted.len() as f64;
    let tol = (k * d.se).max(floor);
    eprintln!("  {what}: measured {m}, predicted {p:.5}, difference {d}, tolerance {tol:.5}");
    assert!(
        k * d.se <= max_tol,
        "{what}: the seeds disagree too much to judge: {k}·SE = {:.5} > {max_tol} \
         (measured {m}, per-seed {measured:?})",
        k * d.se
    );
    assert!(
        d.mean.abs() <= tol,
        "{what}: measured {m} vs predicted {p:.5}: difference {:.5} exceeds {tol:.5} \
         ({k} SE = {:.5}, floor {floor}); per-seed measured {measured:?}, predicted {predicted:?}",
        d.mean,
        k * d.se
    );
    d
}

/// `P(N >= c)` for `N ~ Poisson(a)`: the probability that an arrival at an infinite-server
/// system offered `a` erlangs finds at least `c` busy (PASTA).
pub fn poisson_tail(c: u32, a: f64) -> f64 {
    let mut term = (-a).exp();
    let mut below = 0.0;
    for k in 0..c {
        below += term;
        term *= a / f64::from(k + 1);
    }
    (1.0 - below).max(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_and_tail() {
        let s = Stats::of(&[1.0, 3.0]);
        assert_eq!(s.mean, 2.0);
        assert!((s.sd - 2f64.sqrt()).abs() < 1e-12);
        assert!((s.se - 1.0).abs() < 1e-12);
        assert!((poisson_tail(1, 2.0) - (1.0 - (-2.0f64).exp())).abs() < 1e-12);
        assert_eq!(poisson_tail(0, 3.0), 1.0);
    }

    #[test]
    fn capacity_scenario_is_valid() {
        let scn = Capacity::new(10, 8.0).overflow("reject").scenario();
        assert_eq!(scn.cluster.pool_workers, 10);
        assert!(sim::run::erlang_model(&scn).is_some());
        assert!(!bundled_scenarios().is_empty());
    }
}
