use super::*;

const F: &str = "scenarios/x.toml";

fn parse(src: &str) -> Result<Scenario, ScenarioError> {
    parse_str(src, F, &[], None)
}

fn parse_set(src: &str, sets: &[&str]) -> Result<Scenario, ScenarioError> {
    let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
    parse_str(src, F, &sets, None)
}

/// The error's message, asserting it names the file and contains every fragment.
fn err(r: Result<Scenario, ScenarioError>, fragments: &[&str]) -> String {
    let e = match r {
        Ok(s) => panic!("expected an error containing {fragments:?}, got Ok({s:?})"),
        Err(e) => e.to_string(),
    };
    assert!(
        e.starts_with(F),
        "message does not start with the file: {e}"
    );
    for f in fragments {
        assert!(e.contains(f), "message lacks {f:?}: {e}");
    }
    e
}

fn ms(m: u64) -> Duration {
    Duration::from_millis(m)
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

#[test]
fn minimal_file_takes_every_default() {
    let s = parse("name = \"x\"").unwrap();
    assert_eq!(s.name, "x");
    assert_eq!(s.description, "");
    assert_eq!(s.seed, 1);
    assert_eq!(
        (s.duration, s.warmup, s.drain),
        (secs(3600), secs(0), secs(600))
    );
    let c = &s.cluster;
    assert_eq!(
        (c.conductors, c.hosts, c.rpc_workers, c.pool_workers),
        (1, 1, 64, 10)
    );
    assert_eq!(c.overflow, Overflow::CallerRuns);
    assert_eq!(c.routing, Routing::RoundRobin);
    assert_eq!(c.ordering, Ordering::None);
    assert!(!c.fencing);
    assert_eq!(c.lease_ttl, secs(10));
    assert_eq!(c.recovery, RecoveryPolicy::Zun);
    assert_eq!(
        (c.reconcile_interval, c.orphan_after),
        (secs(60), secs(120))
    );
    assert!(s.api.validate_state);
    assert_eq!(s.api.async_rpc, RpcKind::Call);
    assert_eq!(s.api.rpc_timeout, secs(60));
    assert_eq!(s.bus.prefetch, 0);
    assert_eq!(
        (s.network.latency_min, s.network.latency_max, s.network.loss),
        (ms(1), ms(10), 0.0)
    );
    let w = &s.workload;
    assert_eq!(w.model, Model::Ops);
    assert_eq!(w.arrival, Arrival::Poisson { rate: 1.0 });
    assert_eq!(w.containers, 1000);
    assert_eq!(w.pick, Pick::Uniform);
    assert_eq!(w.mix, vec![(OpKind::Start, 1.0)]);
    assert_eq!(
        w.lifecycle,
        vec![OpKind::Create, OpKind::Start, OpKind::Stop, OpKind::Delete]
    );
    assert_eq!(w.gap, Dist::Exp { mean: secs(1) });
    assert_eq!(s.client.timeout, Duration::ZERO);
    assert!(s.client.retry_on.is_empty());
    assert_eq!(s.backend.default, Dist::Exp { mean: secs(1) });
    assert!(s.backend.per_op.is_empty());
    assert_eq!(s.backend.failure_rate, 0.0);
    let r = &s.retry;
    assert_eq!(r.policy, Backoff::FullJitter);
    assert_eq!((r.base, r.cap, r.max_attempts), (ms(100), secs(10), 5));
    assert_eq!((r.budget_ratio, r.budget_min_per_s), (0.0, 0.0));
    assert!(s.faults.is_empty());
    assert!(s.nemesis.is_none());
    assert_eq!(s.checks.invariants, checker::Invariant::ALL.to_vec());
    assert!(s.checks.expect.is_empty());
    assert_eq!(s.slo, Slo::default());
}

#[test]
fn defaults_toml_agrees_with_the_built_in_defaults() {
    let a = parse(DEFAULTS_TOML).unwrap();
    let b = parse("name = \"example\"").unwrap();
    assert_eq!(a, b);
}

const FULL: &str = r#"
name = "full.run-1"
description = "every key"
seed = 42
duration = "2h"
warmup = "5m"
drain = "15m"

[cluster]
conductors = 3
hosts = 2
rpc_workers = 32
pool_workers = 8
overflow = "queue"
routing = "affinity"
ordering = "distributed-lock"
fencing = true
lease_ttl = "5s"
recovery = "none"
reconcile_interval = "0s"
orphan_after = "30s"

[api]
validate_state = false
async_rpc = "cast"
rpc_timeout = "30s"

[bus]
prefetch = 16

[network]
latency = { min = "2ms", max = "20ms" }
loss = 0.01

[workload]
model = "ops"
arrival = { kind = "bursty", rate = 2.0, burst_rate = 20.0, on = "10s", off = "50s" }
containers = 500
pick = { zipf = { s = 1.1 } }
mix = { start = 2.0, stop = 1, show = 0.5, kill = 0.0 }
lifecycle = ["create", "start", "logs", "delete"]
gap = { dist = "lognormal", median = "1s", p99 = "10s" }

[client]
timeout = "30s"
retry_on = ["conflict", "timeout"]

[backend]
default = { dist = "uniform", min = "100ms", max = "300ms" }
create = { dist = "constant", value = "2s" }
logs = { dist = "empirical", samples = ["1ms", 2.5, 3] }
failure_rate = 0.05

[retry]
policy = "decorrelated"
base = "50ms"
cap = "5s"
max_attempts = 7
budget = { ratio = 0.2, min_per_s = 10 }

[[faults]]
kind = "kill"
at = "10m"
node = "conductor-1"
restart_after = "30s"

[[faults]]
kind = "partition"
at = "20m"
groups = [["conductor-1", "bus"], ["conductor-2", "store"]]
oneway = true
duration = "1m"

[[faults]]
kind = "isolate"
at = "21m"
node = "store"
duration = "10s"

[[faults]]
kind = "pause"
at = "22m"
node = "api"
duration = "10s"

[[faults]]
kind = "clog"
at = "23m"
nodes = ["conductor-2", "conductor-3"]
duration = "10s"

[[faults]]
kind = "latency"
at = "24m"
min = "10ms"
max = "1s"
duration = "1m"

[[faults]]
kind = "slow-host"
at = "25m"
node = "host-2"
factor = 3.5
duration = "1m"

[[faults]]
kind = "host-errors"
at = "26m"
node = "host-1"
rate = 0.5
duration = "1m"

[nemesis]
kinds = ["partition", "kill", "slow-host"]
targets = ["conductor-1", "host-1"]
mean_interval = "2m"
mean_duration = "15s"

[checks]
invariants = ["exclusive", "no-lost-ops", "exclusive"]
expect = ["exclusive"]

[slo]
exhaustion_ratio_max = 0.01
p99_max = "5s"
"#;

#[test]
fn full_file_parses_every_key() {
    let s = parse(FULL).unwrap();
    assert_eq!(s.name, "full.run-1");
    assert_eq!(s.seed, 42);
    assert_eq!(s.cluster.conductors, 3);
    assert_eq!(s.cluster.ordering, Ordering::DistributedLock);
    assert_eq!(s.cluster.reconcile_interval, Duration::ZERO);
    assert_eq!(s.api.async_rpc, RpcKind::Cast);
    assert_eq!(s.bus.prefetch, 16);
    assert_eq!(
        (s.network.latency_min, s.network.latency_max),
        (ms(2), ms(20))
    );
    assert_eq!(
        s.workload.arrival,
        Arrival::Bursty {
            rate: 2.0,
            burst_rate: 20.0,
            on: secs(10),
            off: secs(50)
        }
    );
    // time-weighted: (20 × 10 + 2 × 50) / 60 = 5
    assert!((s.workload.arrival.mean_rate() - 5.0).abs() < 1e-12);
    assert_eq!(s.workload.pick, Pick::Zipf { s: 1.1 });
    // ALL order, zero weights dropped
    assert_eq!(
        s.workload.mix,
        vec![
            (OpKind::Start, 2.0),
            (OpKind::Stop, 1.0),
            (OpKind::Show, 0.5)
        ]
    );
    assert_eq!(s.workload.lifecycle[2], OpKind::Logs);
    assert_eq!(s.client.retry_on, vec![RetryOn::Conflict, RetryOn::Timeout]);
    assert_eq!(s.backend.per_op.len(), 2);
    assert_eq!(
        s.backend.dist(OpKind::Create),
        &Dist::Constant { value: secs(2) }
    );
    assert_eq!(
        s.backend.dist(OpKind::Logs),
        &Dist::Empirical {
            samples: vec![ms(1), Duration::from_micros(2500), ms(3)]
        }
    );
    assert_eq!(s.backend.dist(OpKind::Stop).mean(), ms(200));
    assert_eq!(s.retry.policy, Backoff::Decorrelated);
    assert_eq!(
        (s.retry.budget_ratio, s.retry.budget_min_per_s),
        (0.2, 10.0)
    );
    assert_eq!(s.faults.len(), 8);
    assert_eq!(
        s.faults[0],
        Fault {
            at: secs(600),
            kind: FaultKind::Kill(fault::Kill {
                node: Node::Conductor(0),
                restart_after: Some(secs(30))
            })
        }
    );
    match &s.faults[1].kind {
        FaultKind::Partition(fault::Partition {
            groups,
            oneway,
            duration,
        }) => {
            assert_eq!(groups.len(), 2);
            assert!(*oneway);
            assert_eq!(*duration, secs(60));
        }
        k => panic!("{k:?}"),
    }
    let mut names: Vec<&str> = s.faults.iter().map(|f| f.kind.name()).collect();
    assert_eq!(names.remove(0), "kill");
    names.insert(2, "kill");
    let kinds: Vec<&str> = fault::Kind::ALL.iter().map(|k| k.name()).collect();
    assert_eq!(names, kinds);
    let n = s.nemesis.as_ref().unwrap();
    assert_eq!(
        n.kinds,
        vec![
            fault::Kind::Partition,
            fault::Kind::Kill,
            fault::Kind::SlowHost
        ]
    );
    assert_eq!(n.mean_interval, secs(120));
    assert_eq!(
        s.checks.invariants,
        [checker::Invariant::Exclusive, checker::Invariant::NoLostOps]
    );
    assert_eq!(s.checks.expect, [checker::Invariant::Exclusive]);
    use reports::slo::{Latency, Measure, Percentile};
    assert_eq!(
        s.slo.limit(&Measure::ExhaustionRatio),
        Some(SloLimit::Number(0.01))
    );
    assert_eq!(
        s.slo
            .limit(&Measure::Latency(Latency::Complete, Percentile::P99)),
        Some(SloLimit::Duration(secs(5)))
    );
}

#[test]
fn serialised_scenario_loads_again_identically() {
    let s = parse(FULL).unwrap();
    let text = toml::to_string(&s).unwrap();
    let back = parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_eq!(s, back, "{text}");
    let d = parse("name = \"x\"").unwrap();
    let text = toml::to_string(&d).unwrap();
    assert_eq!(parse(&text).unwrap(), d, "{text}");
    // and JSON for the reports
    let j = serde_json::to_value(&s).unwrap();
    assert_eq!(j["network"]["latency"]["min"], "2ms");
    assert_eq!(j["faults"][0]["kind"], "kill");
    assert_eq!(j["workload"]["mix"]["start"], 2.0);
}

#[test]
fn unknown_keys_are_named_with_the_expected_ones() {
    let e = err(
        parse("name = \"x\"\n[cluster]\npool_wrokers = 3"),
        &[
            "unknown key `cluster.pool_wrokers`",
            "expected one of: conductors, hosts",
            "pool_workers",
        ],
    );
    assert!(e.starts_with("scenarios/x.toml: unknown key"), "{e}");
    err(
        parse("name = \"x\"\ncolour = 1"),
        &["unknown key `colour`", "name, description"],
    );
    err(
        parse("name = \"x\"\n[network]\nlatency = { min = \"1ms\", maxx = \"2ms\" }"),
        &["unknown key `network.latency.maxx`", "min, max"],
    );
    err(
        parse("name = \"x\"\n[workload]\narrival = { kind = \"poisson\", rate = 1, on = \"1s\" }"),
        &["unknown key `workload.arrival.on`", "kind, rate"],
    );
    err(
        parse("name = \"x\"\n[[faults]]\nkind = \"kill\"\nat = \"1m\"\nnode = \"api\"\nduration = \"1s\""),
        &["unknown key `faults[0].duration`", "kind, at, node, restart_after"],
    );
    err(
        parse("name = \"x\"\n[backend]\nstrat = { dist = \"exp\", mean = \"1s\" }"),
        &[
            "unknown key `backend.strat`",
            "default, failure_rate, create, start",
        ],
    );
}

#[test]
fn wrong_types_say_what_was_expected_and_found() {
    err(
        parse("name = \"x\"\n[cluster]\npool_workers = \"ten\""),
        &[
            "key `cluster.pool_workers`",
            "expected an integer in 1..=100000",
            "the string \"ten\"",
        ],
    );
    err(
        parse("name = \"x\"\n[cluster]\npool_workers = -3"),
        &["key `cluster.pool_workers`: expected an integer in 1..=100000, got -3"],
    );
    err(
        parse("name = \"x\"\nduration = 60"),
        &["key `duration`", "expected a duration", "the integer 60"],
    );
    err(
        parse("name = \"x\"\nduration = \"soon\""),
        &["key `duration`", "expected a duration", "\"soon\""],
    );
    err(
        parse("name = \"x\"\n[api]\nvalidate_state = 1"),
        &["key `api.validate_state`", "true or false"],
    );
    err(
        parse("name = \"x\"\ncluster = 3"),
        &["key `cluster`", "expected a table", "the integer 3"],
    );
    err(
        parse("name = \"x\"\n[cluster]\noverflow = \"drop\""),
        &[
            "key `cluster.overflow`",
            "\"caller-runs\" | \"reject\"",
            "\"drop\"",
        ],
    );
    err(parse("name = 5"), &["key `name`", "expected a string"]);
    err(parse("description = \"d\""), &["key `name`", "required"]);
    err(parse("name = \"a/b\""), &["key `name`", "[A-Za-z0-9._-]"]);
    err(parse("name = \"..\""), &["key `name`"]);
    err(parse("name = \"\""), &["key `name`"]);
    err(parse("name = \"x\"\nseed = -1"), &["key `seed`", "0..="]);
}

#[test]
fn bad_numbers_are_refused() {
    err(
        parse("name = \"x\"\n[workload]\narrival = { kind = \"poisson\", rate = -2.0 }"),
        &[
            "key `workload.arrival.rate`",
            "expected a finite number > 0",
            "-2",
        ],
    );
    err(
        parse("name = \"x\"\n[workload]\narrival = { kind = \"constant\", rate = nan }"),
        &["key `workload.arrival.rate`", "finite"],
    );
    err(
        parse("name = \"x\"\n[workload]\narrival = { kind = \"poisson\", rate = inf }"),
        &["key `workload.arrival.rate`", "finite"],
    );
    err(
        parse("name = \"x\"\n[workload]\narrival = { kind = \"ramp\", from = 0, to = 0 }"),
        &["key `workload.arrival`", "both 0"],
    );
    err(
        parse("name = \"x\"\n[network]\nloss = 1.0"),
        &["key `network.loss`", "[0, 1)"],
    );
    err(
        parse("name = \"x\"\n[backend]\nfailure_rate = 1.5"),
        &["key `backend.failure_rate`", "[0, 1]"],
    );
    err(
        parse("name = \"x\"\n[retry]\nmax_attempts = 101"),
        &["key `retry.max_attempts`", "1..=100"],
    );
    err(
        parse("name = \"x\"\n[retry]\nbase = \"20s\""),
        &["key `retry.base`", "base <= cap"],
    );
    err(
        parse("name = \"x\"\n[slo]\nexhaustion_ratio_max = 2"),
        &["key `slo.exhaustion_ratio_max`"],
    );
    err(
        parse("name = \"x\"\n[workload]\npick = { zipf = { s = 0 } }"),
        &["key `workload.pick.zipf.s`", "> 0"],
    );
    err(
        parse("name = \"x\"\n[cluster]\nconductors = 1001"),
        &["key `cluster.conductors`", "1..=1000"],
    );
    err(
        parse("name = \"x\"\n[workload]\ncontainers = 0"),
        &["key `workload.containers`"],
    );
}

#[test]
fn pick_accepts_both_forms() {
    let a = parse("name = \"x\"\n[workload]\npick = { zipf = { s = 1.5 } }").unwrap();
    let b = parse("name = \"x\"\n[workload]\npick = { kind = \"zipf\", s = 1.5 }").unwrap();
    assert_eq!(a.workload.pick, Pick::Zipf { s: 1.5 });
    assert_eq!(a.workload.pick, b.workload.pick);
    let c = parse("name = \"x\"\n[workload]\npick = { kind = \"uniform\" }").unwrap();
    assert_eq!(c.workload.pick, Pick::Uniform);
    err(
        parse("name = \"x\"\n[workload]\npick = \"zipf\""),
        &["key `workload.pick`", "s = 1.1"],
    );
    err(
        parse("name = \"x\"\n[workload]\npick = \"gauss\""),
        &["key `workload.pick`", "\"uniform\""],
    );
}

#[test]
fn durations_are_bounded() {
    err(
        parse("name = \"x\"\nduration = \"31days\""),
        &["key `duration`", "30-day"],
    );
    err(
        parse("name = \"x\"\nduration = \"29days\"\ndrain = \"2days\""),
        &["key `drain`", "30-day"],
    );
    err(
        parse("name = \"x\"\nduration = \"99999999999999999999999s\""),
        &["key `duration`", "expected a duration"],
    );
    err(
        parse("name = \"x\"\nduration = \"0s\""),
        &["key `duration`", "greater than 0s"],
    );
    err(
        parse("name = \"x\"\nwarmup = \"1h\""),
        &["key `warmup`", "less than `duration`"],
    );
    err(
        parse("name = \"x\"\n[cluster]\nlease_ttl = \"0s\""),
        &["key `cluster.lease_ttl`"],
    );
    let ok = parse("name = \"x\"\nduration = \"29days\"\ndrain = \"1day\"\n[workload]\narrival = { kind = \"poisson\", rate = 0.001 }");
    assert!(ok.is_ok(), "{ok:?}");
}

#[test]
fn latency_bounds_must_differ() {
    err(
        parse("name = \"x\"\n[network]\nlatency = { min = \"5ms\", max = \"5ms\" }"),
        &["key `network.latency.min`", "min < max"],
    );
    err(
        parse("name = \"x\"\n[network]\nlatency = { min = \"5ms\", max = \"61s\" }"),
        &["key `network.latency.max`", "at most 60s"],
    );
    err(
        parse("name = \"x\"\n[[faults]]\nkind = \"latency\"\nat = \"0s\"\nmin = \"1s\"\nmax = \"1s\"\nduration = \"1s\""),
        &["key `faults[0].min`", "min < max"],
    );
    // only max given: min keeps its default
    let s = parse("name = \"x\"\n[network]\nlatency = { max = \"5ms\" }").unwrap();
    assert_eq!(
        (s.network.latency_min, s.network.latency_max),
        (ms(1), ms(5))
    );
}

#[test]
fn too_many_ops_is_refused() {
    err(
        parse("name = \"x\"\nduration = \"30days\"\ndrain = \"0s\"\n[workload]\narrival = { kind = \"poisson\", rate = 100.0 }"),
        &["key `workload.arrival`", "over the limit of 1e8"],
    );
    err(
        parse("name = \"x\"\n[workload]\narrival = { kind = \"constant\", rate = 1e300 }"),
        &["1e8"],
    );
    // ramp: the midpoint rate; 3600 s × (0 + 60000)/2 = 1.08e8
    err(
        parse("name = \"x\"\n[workload]\narrival = { kind = \"ramp\", from = 0, to = 60000 }"),
        &["1e8"],
    );
    let s = parse("name = \"x\"\n[workload]\narrival = { kind = \"ramp\", from = 0, to = 50000 }")
        .unwrap();
    assert!((s.expected_ops() - 9e7).abs() < 1.0);
    // lifecycle: × the number of ops per container
    err(
        parse("name = \"x\"\n[workload]\nmodel = \"lifecycle\"\narrival = { kind = \"poisson\", rate = 10000 }"),
        &["lifecycle ops", "1e8"],
    );
}

#[test]
fn host_links_are_bounded_unless_by_host() {
    // By-host: each conductor links only the hosts it owns, so the largest cluster is valid.
    let s =
        parse("name = \"x\"\n[cluster]\nconductors = 1000\nhosts = 1000\nrouting = \"by-host\"")
            .unwrap();
    assert_eq!((s.cluster.conductors, s.cluster.hosts), (1000, 1000));
    // Any other routing may link every pair: 1000 × 1000 is over the limit, 500 × 1000 is not.
    for routing in ["round-robin", "affinity"] {
        err(
            parse(&format!(
                "name = \"x\"\n[cluster]\nconductors = 1000\nhosts = 1000\nrouting = \"{routing}\""
            )),
            &[
                "key `cluster.hosts`",
                "conductors × hosts at most 500000 unless routing is \"by-host\"",
                &format!("under {routing}"),
                "got 1000 × 1000",
            ],
        );
        parse(&format!(
            "name = \"x\"\n[cluster]\nconductors = 500\nhosts = 1000\nrouting = \"{routing}\""
        ))
        .unwrap();
    }
}

#[test]
fn unknown_nodes_are_refused() {
    let base = "name = \"x\"\n[cluster]\nconductors = 2\n[[faults]]\nat = \"1m\"\n";
    err(
        parse(&format!("{base}kind = \"kill\"\nnode = \"conductor-9\"")),
        &[
            "scenarios/x.toml: key `faults[0].node`: unknown node `conductor-9` (this scenario has conductor-1..conductor-2, host-1..host-1, api, bus, store)",
        ],
    );
    err(
        parse(&format!("{base}kind = \"kill\"\nnode = \"client\"")),
        &["unknown node `client`"],
    );
    err(
        parse(&format!("{base}kind = \"kill\"\nnode = \"conductor-01\"")),
        &["unknown node"],
    );
    err(
        parse(&format!("{base}kind = \"kill\"\nnode = \"conductor-0\"")),
        &["unknown node"],
    );
    err(
        parse(&format!("{base}kind = \"kill\"")),
        &["key `faults[0].node`", "required"],
    );
    err(
        parse(&format!(
            "{base}kind = \"slow-host\"\nnode = \"conductor-1\"\nfactor = 2\nduration = \"1s\""
        )),
        &["key `faults[0].node`", "expected a host node"],
    );
    err(
        parse(&format!(
            "{base}kind = \"partition\"\ngroups = [[\"api\"]]\nduration = \"1s\""
        )),
        &["key `faults[0].groups`", "at least 2 groups"],
    );
    err(
        parse(&format!(
            "{base}kind = \"partition\"\ngroups = [[\"api\"], []]\nduration = \"1s\""
        )),
        &["key `faults[0].groups[1]`", "non-empty"],
    );
    err(
        parse(&format!("{base}kind = \"partition\"\ngroups = [[\"api\", \"bus\"], [\"bus\"]]\nduration = \"1s\"")),
        &["key `faults[0].groups[1]`", "`bus` is in more than one group"],
    );
    err(
        parse(&format!(
            "{base}kind = \"partition\"\ngroups = [[\"api\"], [\"host-2\"]]\nduration = \"1s\""
        )),
        &["key `faults[0].groups[1][0]`", "unknown node `host-2`"],
    );
    err(
        parse(&format!("{base}kind = \"quake\"")),
        &["key `faults[0].kind`", "\"partition\""],
    );
    err(
        parse("name = \"x\"\n[[faults]]\nkind = \"pause\"\nat = \"2h\"\nnode = \"api\"\nduration = \"1s\""),
        &["key `faults[0].at`", "before the end of the load phase"],
    );
    err(
        parse("name = \"x\"\n[nemesis]\ntargets = [\"conductor-3\"]"),
        &["key `nemesis.targets[0]`", "unknown node"],
    );
    err(
        parse("name = \"x\"\n[nemesis]\nkinds = [\"host-errors\"]"),
        &["key `nemesis.targets`", "needs a host"],
    );
    err(
        parse("name = \"x\"\n[nemesis]\nkinds = [\"boom\"]"),
        &["key `nemesis.kinds[0]`"],
    );
    err(
        parse("name = \"x\"\n[nemesis]\nmean_interval = \"1ms\""),
        &["key `nemesis.mean_interval`", "1e6"],
    );
    let s = parse("name = \"x\"\n[nemesis]").unwrap();
    let n = s.nemesis.unwrap();
    assert_eq!(n.kinds, vec![fault::Kind::Partition, fault::Kind::Kill]);
    assert!(n.targets.is_empty());
    assert_eq!((n.mean_interval, n.mean_duration), (secs(300), secs(20)));
}

#[test]
fn mix_and_ops_are_validated() {
    err(
        parse("name = \"x\"\n[workload]\nmix = { strat = 1.0 }"),
        &[
            "key `workload.mix.strat`",
            "unknown op `strat`",
            "expected one of: create, start",
        ],
    );
    err(
        parse("name = \"x\"\n[workload]\nmix = { start = 0 }"),
        &["key `workload.mix`", "positive weight"],
    );
    err(
        parse("name = \"x\"\n[workload]\nmix = { start = -1 }"),
        &["key `workload.mix.start`", ">= 0"],
    );
    err(
        parse("name = \"x\"\n[workload]\nmix = {}"),
        &["key `workload.mix`"],
    );
    err(
        parse("name = \"x\"\n[workload]\nlifecycle = [\"create\", \"launch\"]"),
        &["key `workload.lifecycle[1]`", "unknown op `launch`"],
    );
    err(
        parse("name = \"x\"\n[workload]\nmodel = \"lifecycle\"\nlifecycle = []"),
        &["key `workload.lifecycle`", "at least one op"],
    );
}

#[test]
fn distributions_are_validated() {
    let d = |s: &str| parse(&format!("name = \"x\"\n[backend]\ndefault = {s}"));
    err(
        d("{ mean = \"1s\" }"),
        &["key `backend.default.dist`", "required"],
    );
    err(
        d("{ dist = \"normal\" }"),
        &["key `backend.default.dist`", "\"exp\""],
    );
    err(
        d("{ dist = \"exp\", mean = \"0s\" }"),
        &["key `backend.default.mean`"],
    );
    err(
        d("{ dist = \"exp\", value = \"1s\" }"),
        &["unknown key `backend.default.value`", "dist, mean"],
    );
    err(
        d("{ dist = \"uniform\", min = \"2s\", max = \"1s\" }"),
        &["key `backend.default.min`", "min <= max"],
    );
    err(
        d("{ dist = \"lognormal\", median = \"2s\", p99 = \"1s\" }"),
        &["key `backend.default.p99`", "p99 > median"],
    );
    err(
        d("{ dist = \"lognormal\", median = \"1ns\", p99 = \"29days\" }"),
        &["key `backend.default`", "30-day"],
    );
    err(
        d("{ dist = \"empirical\" }"),
        &["key `backend.default`", "exactly one of `file`"],
    );
    err(
        d("{ dist = \"empirical\", samples = [] }"),
        &["key `backend.default.samples`", "at least one"],
    );
    err(
        d("{ dist = \"empirical\", samples = [\"1s\", -1] }"),
        &["key `backend.default.samples[1]`"],
    );
    err(d("\"exp\""), &["key `backend.default`", "expected a table"]);
    // lognormal mean: median × exp(σ²/2), σ = ln(p99/median)/z99
    let s = d("{ dist = \"lognormal\", median = \"1s\", p99 = \"10s\" }").unwrap();
    let sigma = 10f64.ln() / Z99;
    let want = (sigma * sigma / 2.0).exp();
    assert!((s.backend.default.mean().as_secs_f64() - want).abs() < 1e-6);
    assert_eq!(
        Dist::Empirical {
            samples: vec![ms(1), ms(4)]
        }
        .mean(),
        Duration::from_micros(2500)
    );
}

#[test]
fn empirical_file_loads_relative_to_the_base_dir() {
    let dir = std::env::temp_dir().join(format!("scenario-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("samples.txt"),
        "# service times\n250ms\n\n1.5   # a plain number: milliseconds\n2s # trailing comment\n",
    )
    .unwrap();
    std::fs::write(dir.join("bad.txt"), "1ms\n2ms\nfast\n").unwrap();
    std::fs::write(dir.join("empty.txt"), "# nothing\n\n").unwrap();
    let toml_of = |file: &str| {
        format!("name = \"x\"\n[backend]\nstart = {{ dist = \"empirical\", file = \"{file}\" }}")
    };
    let s = parse_str(&toml_of("samples.txt"), F, &[], Some(&dir)).unwrap();
    assert_eq!(
        s.backend.dist(OpKind::Start),
        &Dist::Empirical {
            samples: vec![ms(250), Duration::from_micros(1500), secs(2)]
        }
    );
    let e = parse_str(&toml_of("bad.txt"), F, &[], Some(&dir))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("key `backend.start.file`")
            && e.contains("bad.txt line 3")
            && e.contains("`fast`"),
        "{e}"
    );
    let e = parse_str(&toml_of("empty.txt"), F, &[], Some(&dir))
        .unwrap_err()
        .to_string();
    assert!(e.contains("no samples"), "{e}");
    let e = parse_str(&toml_of("missing.txt"), F, &[], Some(&dir))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("key `backend.start.file`") && e.contains("cannot read"),
        "{e}"
    );
    // load(): relative to the scenario file's directory
    let scn = dir.join("s.toml");
    std::fs::write(&scn, toml_of("samples.txt")).unwrap();
    let s2 = load(&scn, &[]).unwrap();
    assert_eq!(s2.backend, s.backend);
    let e = load(&dir.join("nope.toml"), &[]).unwrap_err().to_string();
    assert!(e.contains("nope.toml") && e.contains("cannot read"), "{e}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn toml_syntax_errors_carry_file_and_line() {
    let e = parse("name = \"x\"\n\n[cluster\nhosts = 2\n").unwrap_err();
    match &e {
        ScenarioError::Syntax { line, .. } => assert_eq!(*line, 3),
        other => panic!("{other:?}"),
    }
    let m = e.to_string();
    assert!(m.starts_with("scenarios/x.toml:3:"), "{m}");
    assert!(m.contains("invalid TOML"), "{m}");
    let m = parse("name = \"x\"\nseed = 1\nseed = 2\n")
        .unwrap_err()
        .to_string();
    assert!(m.starts_with("scenarios/x.toml:3:"), "{m}");
}

#[test]
fn set_overrides_apply_before_validation() {
    let s = parse_set(
        "name = \"x\"",
        &[
            "cluster.pool_workers=20",
            "workload.arrival.rate=5",
            "network.latency.max=50ms",
            "description=hello world",
            "workload.mix.stop=0.5",
            "backend.create={dist=\"constant\", value=\"2s\"}",
            "checks.invariants=[]",
            "duration=2h",
        ],
    )
    .unwrap();
    assert_eq!(s.cluster.pool_workers, 20);
    assert_eq!(s.workload.arrival, Arrival::Poisson { rate: 5.0 });
    assert_eq!(
        (s.network.latency_min, s.network.latency_max),
        (ms(1), ms(50))
    );
    assert_eq!(s.description, "hello world");
    assert_eq!(
        s.workload.mix,
        vec![(OpKind::Start, 1.0), (OpKind::Stop, 0.5)]
    );
    assert_eq!(
        s.backend.dist(OpKind::Create),
        &Dist::Constant { value: secs(2) }
    );
    assert!(s.checks.invariants.is_empty());
    assert_eq!(s.duration, secs(7200));

    // file values are overridden; later sets win
    let s = parse_set(
        "name = \"x\"\n[cluster]\npool_workers = 3",
        &["cluster.pool_workers=4", "cluster.pool_workers=5", "name=y"],
    )
    .unwrap();
    assert_eq!((s.cluster.pool_workers, s.name.as_str()), (5, "y"));

    // arrays: by index, and appending
    let src = "name = \"x\"\n[[faults]]\nkind = \"kill\"\nat = \"1m\"\nnode = \"api\"";
    let s = parse_set(src, &["faults[0].node=bus", "faults.0.at=2m"]).unwrap();
    assert_eq!(
        s.faults[0],
        Fault {
            at: secs(120),
            kind: FaultKind::Kill(fault::Kill {
                node: Node::Bus,
                restart_after: None
            })
        }
    );
    let s = parse_set(
        src,
        &[
            "faults[1].kind=isolate",
            "faults[1].at=3m",
            "faults[1].node=store",
            "faults[1].duration=5s",
        ],
    )
    .unwrap();
    assert_eq!(s.faults.len(), 2);
    let s = parse_set(
        "name = \"x\"",
        &[
            "faults[0].kind=kill",
            "faults[0].at=1m",
            "faults[0].node=api",
        ],
    )
    .unwrap();
    assert_eq!(s.faults.len(), 1);
    let s = parse_set("name = \"x\"", &["nemesis.kinds=[\"kill\"]"]).unwrap();
    assert_eq!(s.nemesis.unwrap().kinds, vec![fault::Kind::Kill]);

    // typos are caught by the normal validation
    err(
        parse_set("name = \"x\"", &["cluster.pool_wrokers=3"]),
        &["unknown key `cluster.pool_wrokers`"],
    );
    err(
        parse_set("name = \"x\"", &["cluster.pool_workers=many"]),
        &["key `cluster.pool_workers`", "\"many\""],
    );
}

#[test]
fn bad_sets_are_refused() {
    err(
        parse_set("name = \"x\"", &["foo"]),
        &["scenarios/x.toml: --set `foo`: expected KEY=VALUE"],
    );
    err(parse_set("name = \"x\"", &["=3"]), &["--set `=3`", "KEY"]);
    err(
        parse_set("name = \"x\"", &["cluster..hosts=3"]),
        &["--set `cluster..hosts=3`"],
    );
    err(
        parse_set("name = \"x\"", &["name.first=3"]),
        &["--set `name.first=3`", "`name` is a string, not a table"],
    );
    err(
        parse_set("name = \"x\"", &["faults[3].at=1m"]),
        &["--set `faults[3].at=1m`", "out of range"],
    );
    err(
        parse_set("name = \"x\"", &["faults[x].at=1m"]),
        &["--set", "index"],
    );
    err(
        parse_set("name = \"x\"\n[cluster]", &["cluster[0]=1"]),
        &["--set", "not an array"],
    );
}

#[test]
fn check_supported_accepts_every_feature_and_refuses_fencing_without_tokens() {
    let ok = "name = \"x\"\n[checks]\ninvariants = []\n";
    let s = parse(ok).unwrap();
    check_supported(&s, F).unwrap();
    let s = parse(&format!("{ok}[cluster]\nfencing = true")).unwrap();
    let e = check_supported(&s, F).unwrap_err();
    assert!(matches!(e, ScenarioError::Invalid { .. }), "{e:?}");
    let m = e.to_string();
    assert!(
        m.starts_with(F) && m.contains("key `cluster.fencing`") && m.contains("distributed-lock"),
        "{m}"
    );
    for ordering in ["distributed-lock", "state-check"] {
        let s = parse(&format!(
            "{ok}[cluster]\nfencing = true\nordering = \"{ordering}\""
        ))
        .unwrap();
        check_supported(&s, F).unwrap();
    }
    let s = parse("name = \"x\"").unwrap();
    check_supported(&s, F).unwrap();
    let s = parse("name = \"x\"\n[checks]\nexpect = [\"exclusive\"]").unwrap();
    check_supported(&s, F).unwrap();
    let s = parse(&format!("{ok}[cluster]\noverflow = \"queue\"\nrecovery = \"none\"\nrouting = \"affinity\"\nordering = \"local-lock-fair\"\n[api]\nasync_rpc = \"cast\"\n[workload]\npick = {{ zipf = {{ s = 1.2 }} }}\narrival = {{ kind = \"ramp\", from = 1, to = 3 }}\n[slo]\np99_max = \"5s\"")).unwrap();
    check_supported(&s, F).unwrap();
    let s = parse(&format!("{ok}[[faults]]\nkind = \"kill\"\nat = \"1m\"\nnode = \"api\"\n[nemesis]\n[workload]\nmodel = \"lifecycle\"\n[client]\ntimeout = \"1s\"\nretry_on = [\"error\"]")).unwrap();
    check_supported(&s, F).unwrap();
}

#[test]
fn checks_expand_and_validate() {
    let s = parse("name = \"x\"\n[checks]\ninvariants = [\"exclusive\", \"all\"]").unwrap();
    assert_eq!(s.checks.invariants, checker::Invariant::ALL.to_vec());
    err(
        parse("name = \"x\"\n[checks]\ninvariants = [\"exclusiv\"]"),
        &["key `checks.invariants[0]`", "\"create-before-use\""],
    );
    err(
        parse("name = \"x\"\n[checks]\ninvariants = [\"exclusive\"]\nexpect = [\"converges\"]"),
        &[
            "key `checks.expect`",
            "`converges`",
            "not in `checks.invariants`",
        ],
    );
    err(
        parse("name = \"x\"\n[checks]\nexpect = [\"all\"]"),
        &["key `checks.expect[0]`"],
    );
}

/// A tiny deterministic LCG (no rand dependency).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

#[test]
fn mutated_scenarios_never_panic() {
    let mut rng = Lcg(0x5eed);
    let interesting: &[&[u8]] = &[
        b"0",
        b"-",
        b"9",
        b"\"",
        b"[",
        b"]",
        b"{",
        b"}",
        b"=",
        b".",
        b"\n",
        b"#",
        b"e",
        b"1e309",
        b"nan",
        b"inf",
        b"0s",
        b"99999999999999999999",
        b"days",
        b"host-0",
        b"conductor-4",
        b"-9223372036854775808",
        b"[[faults]]\n",
        b"\xff",
        b"\xc3\xa9",
    ];
    let (mut ok, mut semantic) = (0, 0);
    // SCENARIO_FUZZ_ITERS=200000 for a longer run
    let iters: usize = std::env::var("SCENARIO_FUZZ_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    for i in 0..iters {
        let mut bytes = FULL.as_bytes().to_vec();
        let edits = 1 + rng.below(4);
        for _ in 0..edits {
            let at = rng.below(bytes.len() + 1);
            match rng.below(4) {
                0 if at < bytes.len() => bytes[at] ^= 1 << rng.below(8),
                1 if at < bytes.len() => {
                    let n = 1 + rng.below(8);
                    bytes.drain(at..(at + n).min(bytes.len()));
                }
                2 => {
                    let ins = interesting[rng.below(interesting.len())];
                    bytes.splice(at..at, ins.iter().copied());
                }
                _ if at < bytes.len() => {
                    let n = 1 + rng.below(16);
                    let end = (at + n).min(bytes.len());
                    let dup: Vec<u8> = bytes[at..end].to_vec();
                    bytes.splice(at..at, dup);
                }
                _ => {}
            }
        }
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let sets: Vec<String> = if i % 5 == 0 {
            let k = [
                "cluster.hosts",
                "faults[0].at",
                "workload.arrival",
                "x",
                "network.latency.min",
            ];
            let v = ["0", "\"1s\"", "{kind=\"ramp\"}", "[1,", "1e999"];
            vec![format!(
                "{}={}",
                k[rng.below(k.len())],
                v[rng.below(v.len())]
            )]
        } else {
            Vec::new()
        };
        let r = std::panic::catch_unwind(|| {
            let r = parse_str(&text, F, &sets, None);
            if let Ok(s) = &r {
                let _ = check_supported(s, F);
                let _ = toml::to_string(s);
                for d in std::iter::once(&s.backend.default)
                    .chain(s.backend.per_op.iter().map(|(_, d)| d))
                {
                    let _ = d.mean();
                }
                let _ = s.expected_ops();
            }
            r.map(|_| ()).map_err(|e| e.to_string())
        });
        match r {
            Err(_) => panic!("parse_str panicked on mutation {i}:\n{text}\nsets: {sets:?}"),
            Ok(Ok(())) => ok += 1,
            Ok(Err(m)) => {
                assert!(m.starts_with(F), "{m}");
                if !m.contains("invalid TOML") {
                    semantic += 1;
                }
            }
        }
    }
    // the mutations must reach the validation, not only the TOML parser
    assert!(
        ok > 0 && semantic > 200,
        "{ok} parsed, {semantic} refused by validation"
    );
}

#[test]
fn checks_messages_name_the_registry_in_table_order() {
    // The messages as they were when the names were a list of their own.
    let e = err(
        parse("name = \"x\"\n[checks]\ninvariants = [\"exclusiv\"]"),
        &[],
    );
    assert!(
        e.ends_with(
            "key `checks.invariants[0]`: expected an invariant (\"all\" | \"create-before-use\" | \
             \"no-use-after-delete\" | \"exclusive\" | \"per-container-order\" | \
             \"at-most-once\" | \"no-lost-ops\" | \"no-stuck-state\" | \"converges\" | \
             \"blocking-inline\"), got the string \"exclusiv\""
        ),
        "{e}"
    );
    let e = err(parse("name = \"x\"\n[checks]\nexpect = [\"all\"]"), &[]);
    assert!(
        e.ends_with(
            "key `checks.expect[0]`: expected an invariant (\"create-before-use\" | \
             \"no-use-after-delete\" | \"exclusive\" | \"per-container-order\" | \
             \"at-most-once\" | \"no-lost-ops\" | \"no-stuck-state\" | \"converges\" | \
             \"blocking-inline\"), got the string \"all\""
        ),
        "{e}"
    );
    err(
        parse("name = \"x\"\n[checks]\ninvariants = \"all\""),
        &["key `checks.invariants`: expected an array of strings, got the string \"all\""],
    );
    // Duplicates dropped, the order written kept; the effective scenario names them.
    let s =
        parse("name = \"x\"\n[checks]\ninvariants = [\"converges\", \"exclusive\", \"converges\"]")
            .unwrap();
    use checker::Invariant::{Converges, Exclusive};
    assert_eq!(s.checks.invariants, [Converges, Exclusive]);
    assert_eq!(
        s.checks.judged().iter().collect::<Vec<_>>(),
        [Exclusive, Converges]
    );
    let toml = toml::to_string(&s.checks).unwrap();
    assert!(
        toml.contains("invariants = [\"converges\", \"exclusive\"]"),
        "{toml}"
    );
}

// ----- load shapes: schedule and trace --------------------------------------------------------

#[test]
fn schedule_parses_with_its_phases() {
    let s = parse(
        "name = \"x\"\nduration = \"10m\"\n[workload]\narrival = { kind = \"schedule\", phases = [{ rate = 10.0, for = \"1m\" }, { rate = 30.0, for = \"30s\" }, { rate = 10.0, for = \"2m\" }] }\n",
    )
    .unwrap();
    let Arrival::Schedule { phases, repeat } = &s.workload.arrival else {
        panic!("{:?}", s.workload.arrival)
    };
    assert_eq!(phases.len(), 3);
    assert_eq!(*repeat, Repeat::Times(1));
    // Phases over the load: the last rate holds to the end; equal neighbours merge.
    let p = s.workload.arrival.phases(s.duration).unwrap();
    assert_eq!(
        p,
        vec![
            (secs(0), secs(60), 10.0),
            (secs(60), secs(90), 30.0),
            (secs(90), secs(600), 10.0)
        ]
    );
    // 10/s for 570 s + 30/s for 30 s.
    assert!(
        (s.expected_ops() - 6600.0).abs() < 1e-6,
        "{}",
        s.expected_ops()
    );
    let f = parse(
        "name = \"x\"\nduration = \"10m\"\n[workload]\narrival = { kind = \"schedule\", phases = [{ rate = 1.0, for = \"1m\" }, { rate = 0.0, for = \"1m\" }], repeat = \"forever\" }\n",
    )
    .unwrap();
    let p = f.workload.arrival.phases(f.duration).unwrap();
    assert_eq!(p.len(), 10);
    assert_eq!(p[9], (secs(540), secs(600), 0.0));
    // A poisson load is one phase; a ramp has none.
    let q = parse("name = \"x\"\nduration = \"10m\"\n").unwrap();
    assert_eq!(
        q.workload.arrival.phases(q.duration),
        Some(vec![(secs(0), secs(600), 1.0)])
    );
}

#[test]
fn schedule_arrivals_follow_the_phases() {
    let a = Arrival::Schedule {
        phases: vec![
            Phase {
                rate: 100.0,
                length: secs(10),
            },
            Phase {
                rate: 0.0,
                length: secs(10),
            },
        ],
        repeat: Repeat::Forever,
    };
    let v: Vec<u64> = workload::Arrivals::new(&a, 3, secs(100)).collect();
    // 5 plays of 10 s at 100/s: ~5000 arrivals, none in the zero phases.
    assert!((v.len() as f64 - 5000.0).abs() < 4.0 * 71.0, "{}", v.len());
    assert!(
        v.iter().all(|&t| (t / 10_000_000) % 2 == 0),
        "an arrival in a 0-rate phase"
    );
    assert!(v.windows(2).all(|w| w[0] <= w[1]));
    // The same seed, the same arrivals.
    let w: Vec<u64> = workload::Arrivals::new(&a, 3, secs(100)).collect();
    assert_eq!(v, w);
    // Played once, then the last rate (0) holds: nothing after 20 s.
    let once = Arrival::Schedule {
        phases: vec![
            Phase {
                rate: 100.0,
                length: secs(10),
            },
            Phase {
                rate: 0.0,
                length: secs(10),
            },
        ],
        repeat: Repeat::Times(1),
    };
    let v: Vec<u64> = workload::Arrivals::new(&once, 3, secs(100)).collect();
    assert!(v.iter().all(|&t| t < 10_000_000));
    assert!(v.len() > 900);
}

#[test]
fn schedule_bad_input() {
    let base = "name = \"x\"\nduration = \"10m\"\n[workload]\narrival = ";
    let bad = |arrival: &str, frags: &[&str]| err(parse(&format!("{base}{arrival}\n")), frags);
    bad(
        "{ kind = \"schedule\" }",
        &["workload.arrival.phases", "required"],
    );
    bad(
        "{ kind = \"schedule\", phases = [] }",
        &["workload.arrival.phases", "1 to"],
    );
    bad(
        "{ kind = \"schedule\", phases = [{ rate = -1.0, for = \"1s\" }] }",
        &["workload.arrival.phases[0].rate", ">= 0"],
    );
    bad(
        "{ kind = \"schedule\", phases = [{ rate = 1.0, for = \"0s\" }] }",
        &["workload.arrival.phases[0].for", "greater than 0s"],
    );
    bad(
        "{ kind = \"schedule\", phases = [{ rate = 0.0, for = \"1s\" }] }",
        &["workload.arrival.phases", "above 0"],
    );
    bad(
        "{ kind = \"schedule\", phases = [{ rate = 1.0, for = \"1s\", x = 1 }] }",
        &["workload.arrival.phases[0].x"],
    );
    bad(
        "{ kind = \"schedule\", phases = [{ rate = 1.0, for = \"1s\" }], repeat = 0 }",
        &["workload.arrival.repeat", "1..="],
    );
    bad(
        "{ kind = \"schedule\", phases = [{ rate = 1.0, for = \"1s\" }], repeat = \"always\" }",
        &["workload.arrival.repeat", "forever"],
    );
    bad(
        "{ kind = \"schedule\", phases = [{ rate = 1.0, for = \"1ms\" }, { rate = 2.0, for = \"1ms\" }], repeat = \"forever\" }",
        &["workload.arrival", "100000 phases"],
    );
}

/// Writes `files` into a fresh directory and parses `src` as a file there.
fn parse_in_dir(tag: &str, src: &str, files: &[(&str, &str)]) -> Result<Scenario, ScenarioError> {
    let dir = std::env::temp_dir().join(format!("scenario-trace-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for (name, body) in files {
        std::fs::write(dir.join(name), body).unwrap();
    }
    let r = parse_str(src, F, &[], Some(&dir));
    let _ = std::fs::remove_dir_all(&dir);
    r
}

const TRACE_BASE: &str = "name = \"x\"\nduration = \"10s\"\n[workload]\narrival = ";

#[test]
fn trace_of_times_replays_them() {
    let src = format!("{TRACE_BASE}{{ kind = \"trace\", file = \"t.csv\", scale = 2.0 }}\n");
    let s = parse_in_dir(
        "times",
        &src,
        &[("t.csv", "time_s\n0.5\n# a comment\n1.25\n1.25\n20\n")],
    )
    .unwrap();
    let Arrival::Trace(t) = &s.workload.arrival else {
        panic!()
    };
    assert_eq!(
        t.data,
        TraceData::Times(vec![500_000, 1_250_000, 1_250_000, 20_000_000])
    );
    // Scale 2: each time twice; the one past `duration` is not sent.
    let v: Vec<u64> = workload::Arrivals::new(&s.workload.arrival, 1, s.duration).collect();
    assert_eq!(
        v,
        vec![500_000, 500_000, 1_250_000, 1_250_000, 1_250_000, 1_250_000]
    );
    let p = s.workload.arrival.phases(s.duration).unwrap();
    assert_eq!(p[0], (secs(0), secs(1), 2.0));
    assert_eq!(p[1], (secs(1), secs(2), 4.0));
    assert_eq!(p.last().unwrap().2, 0.0);
}

#[test]
fn trace_of_counts_spreads_them_over_their_interval() {
    let src = format!(
        "{TRACE_BASE}{{ kind = \"trace\", file = \"c.csv\", format = \"counts\", interval = \"2s\" }}\n"
    );
    let s = parse_in_dir("counts", &src, &[("c.csv", "100\n0\n50\n")]).unwrap();
    let Arrival::Trace(t) = &s.workload.arrival else {
        panic!()
    };
    assert_eq!(
        t.data,
        TraceData::Counts(vec![
            (0, 2_000_000, 100),
            (2_000_000, 4_000_000, 0),
            (4_000_000, 6_000_000, 50)
        ])
    );
    let v: Vec<u64> = workload::Arrivals::new(&s.workload.arrival, 1, s.duration).collect();
    assert_eq!(v.len(), 150);
    assert!(v.windows(2).all(|w| w[0] <= w[1]));
    assert_eq!(v.iter().filter(|&&t| t < 2_000_000).count(), 100);
    assert!(v.iter().all(|&t| !(2_000_000..4_000_000).contains(&t)));
    assert_eq!(
        v,
        workload::Arrivals::new(&s.workload.arrival, 1, s.duration).collect::<Vec<_>>(),
        "deterministic"
    );
    assert_ne!(
        v,
        workload::Arrivals::new(&s.workload.arrival, 2, s.duration).collect::<Vec<_>>(),
        "spread by the seed's stream"
    );
    // With start times: an interval ends where the next starts.
    let s = parse_in_dir(
        "counts2",
        &src,
        &[("c.csv", "start_s,count\n0,10\n1,20\n5,5\n")],
    )
    .unwrap();
    let Arrival::Trace(t) = &s.workload.arrival else {
        panic!()
    };
    assert_eq!(
        t.data,
        TraceData::Counts(vec![
            (0, 1_000_000, 10),
            (1_000_000, 5_000_000, 20),
            (5_000_000, 7_000_000, 5)
        ])
    );
}

#[test]
fn bad_trace_files_name_the_file_and_line() {
    let times = format!("{TRACE_BASE}{{ kind = \"trace\", file = \"t.csv\" }}\n");
    let counts =
        format!("{TRACE_BASE}{{ kind = \"trace\", file = \"t.csv\", format = \"counts\" }}\n");
    let cases: [(&str, &str, &[&str]); 8] = [
        (&times, "1\n2\n1.5\n", &["t.csv line 3", "go back"]),
        (&times, "1\n-2\n", &["t.csv line 2", ">= 0"]),
        (&times, "1\nabc\n", &["t.csv line 2", "number of seconds"]),
        (&times, "# nothing\n\n", &["t.csv", "no arrivals"]),
        (&counts, "3\n-1\n", &["t.csv line 2", "count"]),
        (&counts, "0,3\n0,4\n", &["t.csv line 2", "must increase"]),
        (&counts, "0\n0\n", &["t.csv", "no arrivals"]),
        (&counts, "0,3\n4\n", &["t.csv line 2", "every line"]),
    ];
    for (i, (src, body, frags)) in cases.iter().enumerate() {
        let e = err(
            parse_in_dir(&format!("bad{i}"), src, &[("t.csv", body)]),
            frags,
        );
        assert!(e.contains("workload.arrival.file"), "{e}");
    }
    err(
        parse_in_dir("missing", &times, &[]),
        &[
            "workload.arrival.file",
            "cannot read the trace file",
            "t.csv",
        ],
    );
    err(
        parse_in_dir(
            "interval",
            &format!("{TRACE_BASE}{{ kind = \"trace\", file = \"t.csv\", interval = \"1s\" }}\n"),
            &[("t.csv", "1\n")],
        ),
        &["workload.arrival.interval", "counts"],
    );
    err(
        parse_in_dir(
            "scale",
            &format!("{TRACE_BASE}{{ kind = \"trace\", file = \"t.csv\", scale = 0 }}\n"),
            &[("t.csv", "1\n")],
        ),
        &["workload.arrival.scale", "> 0"],
    );
}

// ----- the client's own retries -----------------------------------------------------------------

#[test]
fn client_retry_absent_takes_retry() {
    let s = parse(
        "name = \"x\"\n[retry]\npolicy = \"fixed\"\nmax_attempts = 3\nbudget = { ratio = 0.1, min_per_s = 2.0 }\n",
    )
    .unwrap();
    assert_eq!(s.client.retry, None);
    assert_eq!(s.client.wait_for, WaitFor::Answer);
    assert_eq!(s.client.instances, 1);
    assert!(!s.client.retry_same_op);
    let r = s.client_retry();
    assert_eq!((r.policy, r.max_attempts), (Backoff::Fixed, 3));
    assert_eq!(
        r.budget,
        ClientBudget::Ratio {
            ratio: 0.1,
            min_per_s: 2.0
        }
    );
    assert_eq!((r.throttling, r.breaker), (None, None));
}

#[test]
fn client_cancel_parses_and_echoes_only_when_set() {
    let none = parse("name = \"x\"\n").unwrap();
    assert_eq!(none.client.cancel, Cancel::None);
    let echoed = toml::to_string(&none).unwrap();
    assert!(!echoed.contains("cancel"), "{echoed}");
    for (word, want) in [("bus-ttl", Cancel::BusTtl), ("deadline", Cancel::Deadline)] {
        let s = parse(&format!(
            "name = \"x\"\n[client]\ntimeout = \"3s\"\ncancel = \"{word}\"\n"
        ))
        .unwrap();
        assert_eq!(s.client.cancel, want);
        let echoed = toml::to_string(&s).unwrap();
        assert!(echoed.contains(&format!("cancel = \"{word}\"")), "{echoed}");
    }
}

#[test]
fn client_retry_parses_every_key() {
    use conductor::retry::{BreakerConfig, FinagleBudgetConfig, RatioTrip, ThrottleConfig, Trip};
    let s = parse(
        "name = \"x\"\n[retry]\npolicy = \"fixed\"\nbase = \"50ms\"\n[client]\nwait_for = \"done\"\ninstances = 4\n[client.retry]\nmax_attempts = 7\nbudget = { ttl = \"5s\", min_per_s = 3, percent = 0.5 }\nthrottling = { max_tokens = 10, token_ratio = 0.1 }\nbreaker = { failures = 5, failure_ratio = 0.25, window = \"20s\", min_requests = 8, open_for = \"2s\", probes = 2 }\n",
    )
    .unwrap();
    assert_eq!(s.client.wait_for, WaitFor::Done);
    assert_eq!(s.client.instances, 4);
    let r = s.client.retry.clone().unwrap();
    // Absent keys take [retry]'s.
    assert_eq!(
        (r.policy, r.base, r.cap),
        (Backoff::Fixed, ms(50), secs(10))
    );
    assert_eq!(r.max_attempts, 7);
    assert_eq!(
        r.budget,
        ClientBudget::Finagle(FinagleBudgetConfig {
            ttl_us: 5_000_000,
            min_per_s: 3,
            percent: 0.5
        })
    );
    assert_eq!(
        r.throttling,
        Some(ThrottleConfig {
            max_milli: 10_000,
            ratio_milli: 100
        })
    );
    assert_eq!(
        r.breaker,
        Some(BreakerConfig {
            trip: Trip {
                consecutive: Some(5),
                ratio: Some(RatioTrip {
                    permille: 250,
                    window_us: 20_000_000,
                    min_requests: 8
                })
            },
            open_us: 2_000_000,
            probes: 2
        })
    );
    assert_eq!(s.client_retry(), r);
    // A table without a budget: unlimited (Finagle's "no budget"), not [retry]'s.
    let s = parse("name = \"x\"\n[retry]\nbudget = { ratio = 0.1 }\n[client.retry]\n").unwrap();
    assert_eq!(s.client_retry().budget, ClientBudget::Unlimited);
    // Budget keys default to Finagle's.
    let s = parse("name = \"x\"\n[client.retry]\nbudget = {}\n").unwrap();
    assert_eq!(
        s.client_retry().budget,
        ClientBudget::Finagle(FinagleBudgetConfig::DEFAULT)
    );
}

#[test]
fn client_retry_echoes_back() {
    let s = parse(
        "name = \"x\"\n[client]\nwait_for = \"done\"\n[client.retry]\nbudget = { ttl = \"5s\", min_per_s = 0, percent = 0.0 }\nthrottling = { max_tokens = 2.5, token_ratio = 0.125 }\nbreaker = { failure_ratio = 0.5, open_for = \"1s\" }\n",
    )
    .unwrap();
    let echoed = toml::to_string(&s).unwrap();
    let back = parse(&echoed).unwrap();
    assert_eq!(back, s, "{echoed}");
}

#[test]
fn client_bad_input() {
    let base = "name = \"x\"\n";
    let bad = |body: &str, frags: &[&str]| err(parse(&format!("{base}{body}\n")), frags);
    bad(
        "[client]\nwait_for = \"end\"",
        &["client.wait_for", "\"answer\" | \"done\""],
    );
    bad("[client]\ninstances = 0", &["client.instances", "1..=1000"]);
    bad(
        "[client]\nretry_same_op = \"yes\"",
        &["client.retry_same_op", "expected true or false"],
    );
    bad(
        "[client]\ntimeout = \"2s\"\ncancel = \"ttl\"",
        &["client.cancel", "\"none\" | \"bus-ttl\" | \"deadline\""],
    );
    bad(
        "[client]\ncancel = \"deadline\"",
        &["client.cancel", "needs a client.timeout"],
    );
    bad(
        "[client.retry]\npolicy = \"linear\"",
        &["client.retry.policy", "a retry policy"],
    );
    bad("[client.retry]\nfoo = 1", &["client.retry.foo", "expected"]);
    bad(
        "[client.retry]\nbase = \"20s\"",
        &["client.retry.base", "base <= cap"],
    );
    bad(
        "[client.retry]\nmax_attempts = 0",
        &["client.retry.max_attempts", "1..=100"],
    );
    bad(
        "[client.retry]\nbudget = { ttl = \"500ms\" }",
        &["client.retry.budget.ttl", "1s to 60s"],
    );
    bad(
        "[client.retry]\nbudget = { ttl = \"61s\" }",
        &["client.retry.budget.ttl", "1s to 60s"],
    );
    bad(
        "[client.retry]\nbudget = { min_per_s = -1 }",
        &["client.retry.budget.min_per_s", "0..="],
    );
    bad(
        "[client.retry]\nbudget = { percent = -0.1 }",
        &["client.retry.budget.percent", ">= 0"],
    );
    bad(
        "[client.retry]\nbudget = { percent = 1001 }",
        &["client.retry.budget.percent", "[0, 1000]"],
    );
    bad(
        "[client.retry]\nbudget = { ratio = 0.1 }",
        &["client.retry.budget.ratio", "ttl, min_per_s, percent"],
    );
    bad(
        "[client.retry]\nthrottling = { token_ratio = 0.1 }",
        &["client.retry.throttling.max_tokens", "required"],
    );
    bad(
        "[client.retry]\nthrottling = { max_tokens = 1001, token_ratio = 0.1 }",
        &["client.retry.throttling.max_tokens", "(0, 1000]"],
    );
    bad(
        "[client.retry]\nthrottling = { max_tokens = 0, token_ratio = 0.1 }",
        &["client.retry.throttling.max_tokens", "> 0"],
    );
    bad(
        "[client.retry]\nthrottling = { max_tokens = 10, token_ratio = -1 }",
        &["client.retry.throttling.token_ratio", "> 0"],
    );
    bad(
        "[client.retry]\nthrottling = { max_tokens = 10, token_ratio = 0.0001 }",
        &["client.retry.throttling.token_ratio", "0.001"],
    );
    bad(
        "[client.retry]\nbreaker = { open_for = \"1s\" }",
        &["client.retry.breaker.failures", "failure_ratio"],
    );
    bad(
        "[client.retry]\nbreaker = { failures = -3 }",
        &["client.retry.breaker.failures", "1..="],
    );
    bad(
        "[client.retry]\nbreaker = { failures = 3, open_for = \"-1s\" }",
        &["client.retry.breaker.open_for", "duration"],
    );
    bad(
        "[client.retry]\nbreaker = { failure_ratio = 1.5 }",
        &["client.retry.breaker.failure_ratio", "[0, 1]"],
    );
    bad(
        "[client.retry]\nbreaker = { failure_ratio = 0.5, min_requests = 0 }",
        &["client.retry.breaker.min_requests", "1..="],
    );
    bad(
        "[client.retry]\nbreaker = { failures = 3, window = \"1s\" }",
        &["client.retry.breaker.window", "failure_ratio"],
    );
    bad(
        "[client.retry]\nbreaker = { failures = 3, probes = 0 }",
        &["client.retry.breaker.probes", "1..="],
    );
}

#[test]
fn every_slo_objective_parses_in_order_and_echoes_back() {
    use reports::slo::{Latency, Measure, Percentile};
    let src = "name = \"x\"\n[slo]\ngoodput_min = 5\naccept_p99_max = \"2s\"\np999_max = \"1m\"\n\
               failed_ratio_max = 0.01\nrejected_ratio_max = 0.5\nexhaustion_ratio_max = 0.1\n\
               [slo.by_op.create]\np99_max = \"30s\"\np50_max = \"8s\"\n\
               [slo.by_op.start]\np90_max = \"1s\"\n";
    let s = parse(src).unwrap();
    let keys: Vec<String> = s.slo.objectives.iter().map(|o| o.measure.key()).collect();
    assert_eq!(
        keys,
        [
            "exhaustion_ratio_max",
            "p999_max",
            "failed_ratio_max",
            "rejected_ratio_max",
            "goodput_min",
            "accept_p99_max",
            "by_op.create.p50_max",
            "by_op.create.p99_max",
            "by_op.start.p90_max",
        ]
    );
    let create = Measure::Latency(Latency::Op("create".into()), Percentile::P99);
    assert_eq!(s.slo.limit(&create), Some(SloLimit::Duration(secs(30))));
    assert_eq!(
        s.slo
            .objectives()
            .iter()
            .find(|o| o.measure == create)
            .unwrap()
            .limit,
        30_000.0
    );
    // Echoed back to TOML and parsed again: the same objectives.
    let text = toml::to_string(&s).unwrap();
    let again = parse(&text).unwrap();
    assert_eq!(again.slo, s.slo, "{text}");
}

#[test]
fn bad_slo_limits_name_file_key_and_expectation() {
    for (body, key, want) in [
        ("failed_ratio_max = 1.5", "slo.failed_ratio_max", "[0, 1]"),
        (
            "rejected_ratio_max = -0.1",
            "slo.rejected_ratio_max",
            "[0, 1]",
        ),
        ("failed_ratio_max = nan", "slo.failed_ratio_max", "[0, 1]"),
        (
            "exhaustion_ratio_max = inf",
            "slo.exhaustion_ratio_max",
            "[0, 1]",
        ),
        ("goodput_min = -1", "slo.goodput_min", ">= 0"),
        ("goodput_min = nan", "slo.goodput_min", ">= 0"),
        ("accept_p99_max = \"-1s\"", "slo.accept_p99_max", "duration"),
        ("accept_p99_max = 5", "slo.accept_p99_max", "duration"),
        ("p98_max = \"1s\"", "slo.p98_max", "p99_max"),
        (
            "[slo.by_op.launch]\np99_max = \"1s\"",
            "slo.by_op.launch",
            "create",
        ),
        (
            "[slo.by_op.create]\nmax = \"1s\"",
            "slo.by_op.create.max",
            "p99_max",
        ),
        (
            "[slo.by_op.create]\np99_max = -3",
            "slo.by_op.create.p99_max",
            "duration",
        ),
    ] {
        let e = err(
            parse(&format!("name = \"x\"\n[slo]\n{body}\n")),
            &[&format!("`{key}`"), want],
        );
        assert!(!e.is_empty());
    }
}

const MIXED: &str = "name = \"x\"\n[workload]\nmodel = \"mixed\"\narrival = { kind = \"poisson\", rate = 1.0 }\nops_arrival = { kind = \"poisson\", rate = 5.0 }\ncontainers = 50\nmix = { start = 1.0, stop = 1.0, pause = 0.5, unpause = 0.5 }\n";

#[test]
fn the_mixed_model_parses_and_refuses_bad_input() {
    let s = parse(&format!(
        "{MIXED}initial = {{ running = 0.7, stopped = 0.2, paused = 0.1 }}\n"
    ))
    .unwrap();
    assert_eq!(s.workload.model, Model::Mixed);
    assert_eq!(s.workload.ops_arrival, Some(Arrival::Poisson { rate: 5.0 }));
    assert_eq!(s.workload.initial.paused, 0.1);
    // 1/s × 3600 s × 4 lifecycle ops + 5/s × 3600 s.
    assert!((s.expected_ops() - 3600.0 * 9.0).abs() < 1.0);
    // The defaults: every container running; not echoed.
    let d = parse(MIXED).unwrap();
    assert!(d.workload.initial.is_default());
    let no_ops = MIXED.replace("ops_arrival = { kind = \"poisson\", rate = 5.0 }\n", "");
    err(parse(&no_ops), &["key `workload.ops_arrival`", "required"]);
    err(
        parse(&format!(
            "{MIXED}initial = {{ running = 0.7, stopped = 0.2 }}\n"
        )),
        &["key `workload.initial`", "summing to 1", "0.9"],
    );
    err(
        parse(&format!("{MIXED}initial = {{ running = 1.5 }}\n")),
        &["key `workload.initial.running`"],
    );
    err(
        parse(&format!(
            "{MIXED}initial = {{ running = -0.5, stopped = 1.5 }}\n"
        )),
        &["key `workload.initial.running`"],
    );
    err(
        parse(&format!("{MIXED}initial = {{ deleted = 1.0 }}\n")),
        &[
            "workload.initial.deleted",
            "created, running, stopped, paused",
        ],
    );
    err(
        parse(&MIXED.replace("mix = {", "mix = { create = 1.0,")),
        &["key `workload.mix.create`", "lifecycle"],
    );
    err(
        parse(&format!("{MIXED}lifecycle = []\n")),
        &["key `workload.lifecycle`", "at least one op"],
    );
    err(
        parse(&MIXED.replace(
            "ops_arrival = { kind = \"poisson\", rate = 5.0 }",
            "ops_arrival = { kind = \"poisson\" }",
        )),
        &["key `workload.ops_arrival.rate`", "required"],
    );
    // Keys of the mixed model on another model.
    err(
        parse("name = \"x\"\n[workload]\nops_arrival = { kind = \"poisson\", rate = 1.0 }\n"),
        &["key `workload.ops_arrival`", "mixed model"],
    );
    err(
        parse("name = \"x\"\n[workload]\ninitial = { running = 1.0 }\n"),
        &["key `workload.initial`", "mixed model"],
    );
}

#[test]
fn the_mixed_models_ops_follow_each_containers_state() {
    use crate::client::{ClientConfig, Schedule};
    use conductor::op::Status;
    let s = parse(&format!(
        "name = \"x\"\nduration = \"10m\"\n{}initial = {{ running = 0.7, stopped = 0.2, paused = 0.1 }}\n",
        MIXED.replacen("name = \"x\"\n", "", 1)
    ))
    .unwrap();
    // The initial shares are met to within a container.
    let counts = |st: Status| {
        (0..50)
            .filter(|&i| workload::initial_status(&s.workload.initial, i) == st)
            .count()
    };
    for (st, want) in [
        (Status::Running, 35),
        (Status::Stopped, 10),
        (Status::Paused, 5),
    ] {
        assert!(counts(st).abs_diff(want) <= 1, "{st:?}: {}", counts(st));
    }
    let cfg = ClientConfig::new(&s, 3);
    let mut sch = Schedule::new(&cfg).unwrap();
    let mut state: Vec<Status> = (0..50)
        .map(|i| workload::initial_status(&s.workload.initial, i))
        .collect();
    let (mut ops, mut lifecycle, mut last_t) = (0, 0, 0);
    let mut ids = std::collections::BTreeSet::new();
    while let Some(t) = sch.next_due() {
        assert!(t >= last_t, "time went back");
        last_t = t;
        let op = sch.issue().unwrap();
        assert!(ids.insert(op.id), "id {} twice", op.id);
        if op.container < 50 {
            // Every op on a pre-created container is one Zun allows from the state the
            // previous ops left it in, and does something.
            let st = state[op.container as usize];
            assert!(
                workload::follows_state(op.kind, st),
                "{} on a {st:?} container",
                op.kind
            );
            state[op.container as usize] = op.kind.result_status().unwrap_or(st);
            assert_eq!(op.id % 2, 0);
            ops += 1;
        } else {
            assert_eq!(op.id % 2, 1);
            lifecycle += 1;
        }
    }
    // 5/s and 1/s × 4 steps over 600 s.
    assert!((ops as f64 - 3000.0).abs() < 4.0 * 55.0, "{ops}");
    assert!(
        (lifecycle as f64 - 2400.0).abs() < 4.0 * 4.0 * 25.0,
        "{lifecycle}"
    );
    // Same seed, same schedule.
    let again: Vec<_> = {
        let mut sch = Schedule::new(&cfg).unwrap();
        std::iter::from_fn(|| sch.next_due().and_then(|_| sch.issue()))
            .take(100)
            .map(|o| (o.id, o.container, o.kind, o.intended_us))
            .collect()
    };
    let first: Vec<_> = {
        let mut sch = Schedule::new(&cfg).unwrap();
        std::iter::from_fn(|| sch.next_due().and_then(|_| sch.issue()))
            .take(100)
            .map(|o| (o.id, o.container, o.kind, o.intended_us))
            .collect()
    };
    assert_eq!(again, first);
}

#[test]
fn check_warns_of_workloads_that_measure_refusals() {
    // The false PASS of issue 12: creates, starts and stops on the `ops` model.
    let s =
        parse("name = \"x\"\n[workload]\nmix = { create = 40.0, start = 100.0, stop = 100.0 }\n")
            .unwrap();
    let w = guard::static_warnings(&s);
    assert!(
        w.iter()
            .any(|m| m.contains("creates") && m.contains("mixed")),
        "{w:?}"
    );
    assert!(
        w.iter().any(|m| m.contains("refuses on a running")),
        "{w:?}"
    );
    // A mixed mix that strands paused containers.
    let s = parse(&MIXED.replace(", pause = 0.5, unpause = 0.5", ", pause = 0.5")).unwrap();
    let w = guard::static_warnings(&s);
    assert!(w.iter().any(|m| m.contains("Paused")), "{w:?}");
    // A sensible mixed workload: no warning.
    let s = parse(MIXED).unwrap();
    assert!(
        guard::static_warnings(&s).is_empty(),
        "{:?}",
        guard::static_warnings(&s)
    );
    // A run mostly refused, and one with ops in flight at the end.
    let o = guard::Outcome {
        submitted: 100,
        rejected: 44,
        accepted: 56,
        failed: 0,
        lost: 1,
    };
    let w = guard::run_warnings(&parse("name = \"x\"").unwrap(), &o);
    assert!(
        w[0].starts_with("44% of the requests were refused") && w[0].contains("mixed"),
        "{w:?}"
    );
    assert!(
        w[1].contains("1 op in flight") && w[1].contains("`drain`"),
        "{w:?}"
    );
    let o = guard::Outcome {
        submitted: 100,
        rejected: 5,
        accepted: 95,
        failed: 2,
        lost: 0,
    };
    assert!(guard::run_warnings(&parse("name = \"x\"").unwrap(), &o).is_empty());
}

/// A histogram's distribution at `backend.default`.
fn hist(h: &str) -> Result<Scenario, ScenarioError> {
    parse(&format!(
        "name = \"x\"\n[backend]\ndefault = {{ dist = \"empirical\", histogram = {h} }}\n"
    ))
}

#[test]
fn histograms_parse_and_refuse_bad_input() {
    let s =
        hist("{ cumulative = true, le = [0.5, \"1s\", \"+Inf\"], counts = [2, 4, 4] }").unwrap();
    let Dist::Histogram { histogram: h } = &s.backend.default else {
        panic!("{:?}", s.backend.default)
    };
    assert_eq!(
        (h.le.clone(), h.counts.clone()),
        (vec![0.5, 1.0], vec![2.0, 2.0, 0.0])
    );
    // Midpoints 0.25 and 0.75, equally weighted.
    assert!((s.backend.default.mean().as_secs_f64() - 0.5).abs() < 1e-9);
    let k = "key `backend.default.histogram";
    err(
        hist("{ le = [1], counts = [1] }"),
        &[&format!("{k}.cumulative`"), "required"],
    );
    err(
        hist("{ cumulative = false, le = [2, 1], counts = [1, 1] }"),
        &[&format!("{k}.counts[1]`"), "increase strictly"],
    );
    err(
        hist("{ cumulative = false, le = [1, 2], counts = [1, -1] }"),
        &[&format!("{k}.counts[1]`"), "count >= 0"],
    );
    err(
        hist("{ cumulative = true, le = [1, 2], counts = [5, 3] }"),
        &[&format!("{k}.counts[1]`"), "must not decrease"],
    );
    err(
        hist("{ cumulative = true, le = [], counts = [] }"),
        &[&format!("{k}.counts[0]`"), "no buckets"],
    );
    err(
        hist("{ cumulative = false, le = [1], counts = [0] }"),
        &[&format!("{k}.counts[0]`"), "every count is zero"],
    );
    err(
        hist("{ cumulative = false, le = [1, 2], counts = [1] }"),
        &[&format!("{k}.counts`"), "one count per bound"],
    );
    err(
        hist("{ cumulative = true, le = [1, \"+Inf\"], counts = [1, 3] }"),
        &[&format!("{k}.counts[1]`"), "+Inf", "tail"],
    );
    err(
        hist("{ cumulative = true, le = [1, \"+Inf\"], counts = [1, 3], tail = { kind = \"uniform\", max = \"500ms\" } }"),
        &["above the last bound"],
    );
    err(
        hist("{ cumulative = true, le = [1, \"+Inf\"], counts = [1, 3], tail = { kind = \"exp\", max = \"5s\" } }"),
        &[&format!("{k}.tail.max`"), "not a key"],
    );
    err(
        hist("{ cumulative = true, le = [1, \"+Inf\"], counts = [1, 3], tail = { kind = \"pareto\" } }"),
        &[&format!("{k}.tail.kind`")],
    );
    err(
        hist("{ cumulative = true, le = [\"fast\"], counts = [1] }"),
        &[&format!("{k}.le[0]`")],
    );
    err(
        hist("{ cumulative = true }"),
        &[&format!("{k}`"), "`le` and `counts`"],
    );
    // The tail is honoured: the +Inf bucket's draws lie beyond the last bound.
    let s = hist("{ cumulative = true, le = [1, \"+Inf\"], counts = [1, 2], tail = { kind = \"uniform\", max = \"3s\" } }").unwrap();
    assert!((s.backend.default.mean().as_secs_f64() - (0.5 + 2.0) / 2.0).abs() < 1e-9);
}

#[test]
fn histogram_files_are_read_with_line_numbers() {
    let dir = std::env::temp_dir().join(format!("scenario-hist-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("prom.txt"),
        "# HELP create_seconds\nx_bucket{op=\"create\",le=\"0.5\"} 10\nx_bucket{op=\"create\",le=\"1\"} 30\nx_bucket{op=\"create\",le=\"+Inf\"} 30\n",
    )
    .unwrap();
    std::fs::write(dir.join("plain.txt"), "0.5 10\n1, 20\n").unwrap();
    std::fs::write(dir.join("unsorted.txt"), "# le count\n1 10\n\n0.5 20\n").unwrap();
    std::fs::write(dir.join("decreasing.txt"), "0.5 10\n1 5\n").unwrap();
    std::fs::write(dir.join("negative.txt"), "0.5 10\n1 -5\n").unwrap();
    std::fs::write(dir.join("garbage.txt"), "0.5 10\n1 lots\n").unwrap();
    std::fs::write(dir.join("empty.txt"), "# nothing\n").unwrap();
    let toml_of = |file: &str, cum: bool| {
        format!("name = \"x\"\n[backend]\ncreate = {{ dist = \"empirical\", histogram = {{ file = \"{file}\", cumulative = {cum} }} }}")
    };
    let load = |f: &str, cum: bool| parse_str(&toml_of(f, cum), F, &[], Some(&dir));
    let a = load("prom.txt", true).unwrap();
    let b = load("plain.txt", false).unwrap();
    assert_eq!(
        a.backend.dist(OpKind::Create),
        b.backend.dist(OpKind::Create)
    );
    for (f, cum, line, what) in [
        ("unsorted.txt", false, 4, "increase strictly"),
        ("decreasing.txt", true, 2, "must not decrease"),
        ("negative.txt", false, 2, "count >= 0"),
        ("garbage.txt", false, 2, "expected a count"),
    ] {
        let e = load(f, cum).unwrap_err().to_string();
        assert!(
            e.starts_with(F)
                && e.contains("key `backend.create.histogram.file`")
                && e.contains(&format!("{f} line {line}"))
                && e.contains(what),
            "{e}"
        );
    }
    let e = load("empty.txt", true).unwrap_err().to_string();
    assert!(e.contains("empty.txt") && e.contains("no buckets"), "{e}");
    let e = load("missing.txt", true).unwrap_err().to_string();
    assert!(e.contains("cannot read the histogram file"), "{e}");
}

#[test]
fn coordination_on_etcd_names_its_members() {
    let s = parse("name = \"x\"").unwrap();
    assert_eq!(s.cluster.coordination, Engine::Store);
    assert_eq!(s.cluster.etcd_members, None);
    let s = parse("name = \"x\"\n[cluster]\ncoordination = \"etcd\"").unwrap();
    assert_eq!(
        (s.cluster.coordination, s.cluster.etcd_members),
        (Engine::Etcd, Some(3))
    );
    let s = parse_set(
        "name = \"x\"",
        &["cluster.coordination=etcd", "cluster.etcd_members=5"],
    )
    .unwrap();
    assert_eq!(s.cluster.etcd_members, Some(5));
    let kill = |node: &str| {
        format!(
            "name = \"x\"\n[cluster]\ncoordination = \"etcd\"\n[[faults]]\nat = \"1m\"\nkind = \"kill\"\nnode = \"{node}\""
        )
    };
    assert!(parse(&kill("etcd-3")).is_ok());
    err(
        parse(&kill("etcd-4")),
        &["unknown node `etcd-4`", "etcd-1..etcd-3"],
    );
    err(
        parse("name = \"x\"\n[[faults]]\nat = \"1m\"\nkind = \"kill\"\nnode = \"etcd-1\""),
        &["unknown node `etcd-1`"],
    );
    err(
        parse("name = \"x\"\n[cluster]\netcd_members = 3"),
        &["cluster.etcd_members", "coordination = \"etcd\""],
    );
    err(
        parse("name = \"x\"\n[cluster]\ncoordination = \"zookeeper\""),
        &["cluster.coordination", "store", "etcd"],
    );
    err(
        parse("name = \"x\"\n[cluster]\ncoordination = \"etcd\"\netcd_members = 10"),
        &["cluster.etcd_members"],
    );
}
