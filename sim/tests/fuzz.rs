//! Fuzzing the scenario front end and the world with mutated scenario files: whatever the
//! input, `check` (parse + check_supported) returns a value — a scenario or an error naming the
//! file — and never panics; a scenario that validates runs to completion (shortened to 20
//! simulated seconds) without a panic inside the simulation.
//!
//! Inputs start from the bundled scenarios' text; mutations delete, insert and replace bytes,
//! swap and duplicate lines, and change numbers and durations to extreme values (-1, 0, 1e30,
//! NaN, "", huge durations). The runs also get `--set` overrides that reach the other code
//! paths of the world (each overflow policy, casts, state validation, failures, bursty and ramp
//! arrivals, every op kind, several conductors).
//!
//! The RNG seed is fixed so that CI is reproducible; set `PROPTEST_RNG_SEED` (and
//! `PROPTEST_CASES`) to explore further.

use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed};
use scenario::{self, Scenario};
use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

const ORIGIN: &str = "fuzz.toml";

fn config(cases: u32) -> Config {
    let mut c = Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    };
    if std::env::var_os("PROPTEST_RNG_SEED").is_none() {
        c.rng_seed = RngSeed::Fixed(0x5eed_c0de);
    }
    if let Some(n) = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        c.cases = n;
    }
    c
}

/// The bundled scenarios' text, in name order.
fn sources() -> Vec<String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios");
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .expect("reading scenarios/")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    paths.sort();
    let v: Vec<String> = paths
        .iter()
        .map(|p| std::fs::read_to_string(p).expect("reading a scenario"))
        .collect();
    assert!(!v.is_empty());
    v
}

/// Values that replace a number.
const NUMBERS: &[&str] = &[
    "-1",
    "0",
    "1",
    "2",
    "0.5",
    "1e30",
    "-1e30",
    "nan",
    "inf",
    "-inf",
    "\"\"",
    "1e-300",
    "4294967296",
    "18446744073709551615",
    "99999999999999999999",
    "true",
    "[]",
    "{}",
    "1000",
    "100001",
    "0.999999",
    "1.0000001",
];

/// Values that replace a quoted duration.
const DURATIONS: &[&str] = &[
    "\"0s\"",
    "\"1ns\"",
    "\"1us\"",
    "\"1ms\"",
    "\"30days\"",
    "\"31days\"",
    "\"99999999999h\"",
    "\"\"",
    "\"-1s\"",
    "\"1e9s\"",
    "\"nan\"",
    "\"1h 1ns\"",
    "10",
    "-5",
    "\"720h\"",
    "\"5 s\"",
];

/// Snippets to insert.
const SNIPPETS: &[&str] = &[
    "=",
    "[",
    "]",
    "\"",
    "{",
    "}",
    "\n",
    "#",
    ",",
    ".",
    "\u{0}",
    "é",
    "\"\"\"",
    "'",
    "\\",
    "\n[[faults]]\nkind = \"kill\"\nnode = \"conductor-1\"\nat = \"1s\"\n",
    "\n[nemesis]\n",
    "\n[slo]\np99_max = \"0s\"\n",
    "\n[cluster]\noverflow = \"queue\"\n",
    "\n[workload]\nmodel = \"lifecycle\"\n",
    "\n[backend]\nstart = { dist = \"empirical\", samples = [] }\n",
    "\nname = \"x\"\n",
    "\n[checks]\ninvariants = [\"all\"]\n",
];

#[derive(Debug, Clone)]
enum Mutation {
    Delete { at: usize, len: usize },
    Insert { at: usize, text: String },
    Byte { at: usize, byte: u8 },
    SwapLines { a: usize, b: usize },
    DupLine { at: usize },
    Number { nth: usize, value: &'static str },
    Duration { nth: usize, value: &'static str },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 1usize..40).prop_map(|(at, len)| Mutation::Delete { at, len }),
        (any::<usize>(), prop::sample::select(SNIPPETS)).prop_map(|(at, t)| Mutation::Insert {
            at,
            text: t.to_string()
        }),
        (any::<usize>(), "[ -~\n]{1,8}").prop_map(|(at, text)| Mutation::Insert { at, text }),
        (any::<usize>(), any::<u8>()).prop_map(|(at, byte)| Mutation::Byte { at, byte }),
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Mutation::SwapLines { a, b }),
        any::<usize>().prop_map(|at| Mutation::DupLine { at }),
        (any::<usize>(), prop::sample::select(NUMBERS))
            .prop_map(|(nth, value)| Mutation::Number { nth, value }),
        (any::<usize>(), prop::sample::select(NUMBERS))
            .prop_map(|(nth, value)| Mutation::Number { nth, value }),
        (any::<usize>(), prop::sample::select(DURATIONS))
            .prop_map(|(nth, value)| Mutation::Duration { nth, value }),
        (any::<usize>(), prop::sample::select(DURATIONS))
            .prop_map(|(nth, value)| Mutation::Duration { nth, value }),
    ]
}

/// Byte ranges of the numbers in `s`: maximal runs of number characters holding a digit, not
/// glued to a word (so `pool_workers` and `p99` are left alone).
fn numbers(s: &str) -> Vec<(usize, usize)> {
    let b = s.as_bytes();
    let is_num = |c: u8| c.is_ascii_digit() || b".-+eE_".contains(&c);
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let glued = i > 0 && (b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_');
        if b[i].is_ascii_digit() && !glued {
            let start = if i > 0 && b[i - 1] == b'-' { i - 1 } else { i };
            let mut j = i;
            while j < b.len() && is_num(b[j]) {
                j += 1;
            }
            out.push((start, j));
            i = j;
        } else {
            i += 1;
        }
    }
    out
}

/// Byte ranges of quoted strings that look like durations (`"10s"`, `"1h"`, `"250ms"`).
fn durations(s: &str) -> Vec<(usize, usize)> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i + 2 < b.len() {
        if b[i] == b'"' && b[i + 1].is_ascii_digit() {
            if let Some(len) = b[i + 1..].iter().position(|&c| c == b'"' || c == b'\n') {
                let end = i + 1 + len;
                if b[end] == b'"' && len <= 12 {
                    out.push((i, end + 1));
                    i = end + 1;
                    continue;
                }
            }
        }
        i += 1;
    }
    out
}

fn replace_nth(s: &str, spans: &[(usize, usize)], nth: usize, value: &str) -> String {
    match spans.get(nth % spans.len().max(1)) {
        Some(&(a, b)) => format!("{}{}{}", &s[..a], value, &s[b..]),
        None => s.to_string(),
    }
}

fn apply(src: &str, m: &Mutation) -> String {
    let mut bytes = src.as_bytes().to_vec();
    let n = bytes.len().max(1);
    match m {
        Mutation::Delete { at, len } => {
            let a = at % n;
            let b = (a + len).min(bytes.len());
            bytes.drain(a.min(bytes.len())..b);
        }
        Mutation::Insert { at, text } => {
            let a = at % (bytes.len() + 1);
            bytes.splice(a..a, text.bytes());
        }
        Mutation::Byte { at, byte } => {
            if !bytes.is_empty() {
                bytes[at % n] = *byte;
            }
        }
        Mutation::SwapLines { a, b } => {
            let mut lines: Vec<&str> = src.split('\n').collect();
            let l = lines.len();
            lines.swap(a % l, b % l);
            return lines.join("\n");
        }
        Mutation::DupLine { at } => {
            let mut lines: Vec<&str> = src.split('\n').collect();
            let i = at % lines.len();
            lines.insert(i, lines[i]);
            return lines.join("\n");
        }
        Mutation::Number { nth, value } => return replace_nth(src, &numbers(src), *nth, value),
        Mutation::Duration { nth, value } => return replace_nth(src, &durations(src), *nth, value),
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

fn mutated(srcs: &[String], pick: usize, ms: &[Mutation]) -> String {
    let mut s = srcs[pick % srcs.len()].clone();
    for m in ms {
        s = apply(&s, m);
    }
    s
}

/// `check` through the library: a scenario or an error, whose message names the file.
fn check(src: &str, sets: &[String]) -> Result<Scenario, String> {
    let r = scenario::parse_str(src, ORIGIN, sets, None)
        .and_then(|s| scenario::check_supported(&s, ORIGIN).map(|()| s));
    r.map_err(|e| {
        let msg = e.to_string();
        assert!(
            msg.starts_with(ORIGIN),
            "an error that does not name the file: {msg:?}"
        );
        assert!(msg.len() > ORIGIN.len() + 5, "an empty error: {msg:?}");
        msg
    })
}

/// Overrides that steer a run through the world's other paths.
const STEERS: &[&str] = &[
    "cluster.overflow=\"reject\"",
    "cluster.overflow=\"queue\"",
    "cluster.overflow=\"unbounded\"",
    "cluster.overflow=\"caller-runs\"",
    "cluster.pool_workers=1",
    "cluster.rpc_workers=1",
    "cluster.conductors=3",
    "cluster.hosts=2",
    "api.validate_state=true",
    "api.async_rpc=\"cast\"",
    "api.rpc_timeout=\"1ms\"",
    "bus.prefetch=1",
    "network.loss=0.5",
    "network.latency={min=\"0s\",max=\"1ms\"}",
    "backend.failure_rate=0.5",
    "backend.default={dist=\"constant\",value=\"0s\"}",
    "backend.default={dist=\"uniform\",min=\"0s\",max=\"2ms\"}",
    "backend.default={dist=\"lognormal\",median=\"1ms\",p99=\"10s\"}",
    "backend.default={dist=\"empirical\",samples=[\"1ms\",2.5,\"3s\"]}",
    "backend.stop={dist=\"exp\",mean=\"1ns\"}",
    "workload.arrival={kind=\"bursty\",rate=1,burst_rate=500,on=\"1s\",off=\"3s\"}",
    "workload.arrival={kind=\"ramp\",from=0,to=300}",
    "workload.arrival={kind=\"constant\",rate=200}",
    "workload.mix={logs=1.0}",
    "workload.mix={create=1,start=1,stop=1,reboot=1,pause=1,unpause=1,kill=1,delete=1,logs=1,exec=1,show=1}",
    "workload.pick={zipf={s=1.1}}",
    "workload.containers=1",
];

/// Runs one seed on its own thread with a wall-clock watchdog.
fn run_guarded(scn: Scenario, seed: u64) -> Result<reports::SeedMetrics, sim::world::RunError> {
    run_within(scn, seed, Duration::from_secs(60))
}

/// Runs one seed on its own thread, panicking if it takes longer than `limit` of wall time.
fn run_within(
    scn: Scenario,
    seed: u64,
    limit: Duration,
) -> Result<reports::SeedMetrics, sim::world::RunError> {
    let (tx, rx) = mpsc::channel();
    let name = format!("{scn:?}");
    std::thread::spawn(move || {
        let _ = tx.send(sim::run::run_seeds(&scn, seed, 1, 1).map(|mut v| v.remove(0)));
    });
    match rx.recv_timeout(limit) {
        Ok(r) => r,
        Err(_) => panic!("a run did not complete within {limit:?} of wall time: {name}"),
    }
}

proptest! {
    #![proptest_config(config(1024))]

    /// `check` never panics and always answers.
    #[test]
    fn check_never_panics(
        pick in any::<usize>(),
        ms in prop::collection::vec(mutation(), 1..6),
        sets in prop::collection::vec(prop::sample::select(STEERS), 0..3),
    ) {
        let srcs = sources();
        let src = mutated(&srcs, pick, &ms);
        let _ = check(&src, &[]);
        let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
        if let Ok(scn) = check(&src, &sets) {
            prop_assert!(scn.expected_ops() <= scenario::MAX_EXPECTED_OPS);
            prop_assert!(scn.duration + scn.drain <= scenario::MAX_DURATION);
            prop_assert!(scn.network.latency_min < scn.network.latency_max);
        }
    }
}

proptest! {
    #![proptest_config(config(256))]

    /// A scenario that validates runs to completion without a panic in the simulation.
    #[test]
    fn valid_scenarios_run(
        pick in any::<usize>(),
        ms in prop::collection::vec(
            prop_oneof![
                (any::<usize>(), prop::sample::select(NUMBERS))
                    .prop_map(|(nth, value)| Mutation::Number { nth, value }),
                (any::<usize>(), prop::sample::select(DURATIONS))
                    .prop_map(|(nth, value)| Mutation::Duration { nth, value }),
                (any::<usize>(), any::<usize>())
                    .prop_map(|(a, b)| Mutation::SwapLines { a, b }),
            ],
            0..3,
        ),
        steers in prop::collection::vec(prop::sample::select(STEERS), 0..4),
        seed in 0u64..1000,
    ) {
        let srcs = sources();
        let src = mutated(&srcs, pick, &ms);
        let mut sets: Vec<String> = steers.iter().map(|s| s.to_string()).collect();
        // Short runs: 20 simulated seconds, then at most 30 s of drain.
        sets.extend(
            ["duration=\"60s\"", "warmup=\"0s\"", "drain=\"30s\""].map(String::from),
        );
        let Ok(scn) = check(&src, &sets) else {
            return Ok(());
        };
        // Keep each case small in wall time.
        if scn.expected_ops() > 20_000.0
            || scn.workload.containers > 100_000
            || scn.cluster.conductors > 16
            || scn.cluster.hosts > 16
        {
            return Ok(());
        }
        match run_guarded(scn.clone(), seed) {
            Ok(m) => {
                prop_assert!(m.accepted + m.rejected <= m.submitted + 1);
                prop_assert!(m.exhausted <= m.arrivals);
                prop_assert!(m.completed + m.failed <= m.accepted);
            }
            Err(sim::world::RunError::Setup(_)) => {}
            Err(e @ sim::world::RunError::Aborted { .. }) => {
                prop_assert!(false, "the simulation panicked: {e}\n{scn:#?}");
            }
        }
    }
}

#[test]
fn mutations_reach_numbers_and_durations() {
    let s = "a = 10\nb_2 = -3.5e2\nd = \"10s\"\nlat = { min = \"1ms\", max = \"10ms\" }\n";
    let n: Vec<&str> = numbers(s).iter().map(|&(a, b)| &s[a..b]).collect();
    // Digits inside quoted durations count too ("10s" → "nans" is a fine mutation).
    assert_eq!(n, ["10", "-3.5e2", "10", "1", "10"]);
    let d: Vec<&str> = durations(s).iter().map(|&(a, b)| &s[a..b]).collect();
    assert_eq!(d, ["\"10s\"", "\"1ms\"", "\"10ms\""]);
    assert_eq!(
        apply(
            s,
            &Mutation::Number {
                nth: 1,
                value: "nan"
            }
        ),
        s.replace("-3.5e2", "nan")
    );
    // The bundled scenarios offer both.
    for src in sources() {
        assert!(numbers(&src).len() >= 3);
        assert!(durations(&src).len() >= 3);
        assert!(check(&src, &[]).is_ok(), "a bundled scenario is refused");
    }
}

/// A bursty arrival process with microsecond bursts over a long run expects few ops, so it
/// validates; its generator must not walk every on/off period one by one.
#[test]
fn bursty_with_tiny_periods_completes() {
    let src = sources()
        .into_iter()
        .find(|s| s.contains("name = \"baseline\""))
        .expect("the baseline");
    let sets: Vec<String> = [
        "workload.arrival={kind=\"bursty\",rate=0.001,burst_rate=0.001,on=\"1us\",off=\"1us\"}",
        "duration=\"29days\"",
        "drain=\"1m\"",
        // The arrival loop is under test, not the background work: a 29-day run would
        // reconcile 42,000 times.
        "cluster.reconcile_interval=\"0s\"",
        "cluster.orphan_after=\"0s\"",
    ]
    .map(String::from)
    .to_vec();
    let scn = check(&src, &sets).expect("valid: about 2 500 ops");
    assert!(scn.expected_ops() < 10_000.0);
    // 29 days of 2 µs periods is 1.25e12 loop turns: a loop per period would run for days, so
    // the watchdog fires. The bound is that, not a speed measure: a correct run takes about a
    // second, and 300 s leaves room for a loaded 2-core CI machine.
    let m = run_within(scn, 1, Duration::from_secs(300)).expect("a run");
    assert!(m.submitted < 10_000);
}
