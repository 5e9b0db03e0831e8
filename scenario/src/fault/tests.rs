//! The registry: each kind's name, reading back, label, steps, and how it applies and heals
//! through the world's primitives.

use super::*;
use conductor::keyword::Keyword;
use serde_json::json;

/// A world that writes down the primitives it is asked for.
#[derive(Default)]
struct Log(Vec<String>);

impl FaultWorld for Log {
    fn clog_node(&mut self, node: Node) {
        self.0.push(format!("clog {node}"));
    }
    fn unclog_node(&mut self, node: Node) {
        self.0.push(format!("unclog {node}"));
    }
    fn clog_link(&mut self, from: Node, to: Node) {
        self.0.push(format!("cut {from}>{to}"));
    }
    fn unclog_link(&mut self, from: Node, to: Node) {
        self.0.push(format!("mend {from}>{to}"));
    }
    fn kill(&mut self, node: Node) {
        self.0.push(format!("kill {node}"));
    }
    fn restart(&mut self, node: Node) {
        self.0.push(format!("restart {node}"));
    }
    fn pause(&mut self, node: Node) {
        self.0.push(format!("pause {node}"));
    }
    fn resume(&mut self, node: Node) {
        self.0.push(format!("resume {node}"));
    }
    fn latency(&mut self, fault: usize, bounds: Option<(Duration, Duration)>) {
        self.0.push(format!("latency {fault} {bounds:?}"));
    }
    fn slow_host(&mut self, fault: usize, host: u32, factor: Option<f64>) {
        self.0.push(format!("slow {fault} host{host} {factor:?}"));
    }
    fn host_errors(&mut self, fault: usize, host: u32, rate: Option<f64>) {
        self.0.push(format!("errors {fault} host{host} {rate:?}"));
    }
}

/// Reads a recorded entry, which must be a fault.
fn fault(v: serde_json::Value) -> Fault {
    Fault::from_recorded(&v).unwrap_or_else(|| panic!("not a fault: {v}"))
}

/// Every step of `f` (the 3rd fault of seed 1's schedule), taken in time order in a fresh world.
fn run(f: &Fault) -> (Vec<u64>, Vec<String>) {
    let mut steps = f.kind.steps(micros(f.at), 1, 3);
    steps.sort_by_key(|s| s.0);
    let mut w = Log::default();
    for (_, s) in &steps {
        f.kind.apply(&mut w, 3, s);
    }
    (steps.iter().map(|s| s.0).collect(), w.0)
}

#[test]
fn every_kind_is_registered_once_in_design_order() {
    let names: Vec<&str> = Kind::ALL.iter().map(|k| k.name()).collect();
    assert_eq!(
        names,
        [
            "partition",
            "isolate",
            "kill",
            "pause",
            "clog",
            "latency",
            "slow-host",
            "host-errors"
        ]
    );
    for k in Kind::ALL {
        assert_eq!(Kind::from_name(k.name()), Some(*k));
        assert_eq!(k.to_string(), k.name());
        assert_eq!(serde_json::to_value(k).unwrap(), json!(k.name()));
    }
    let hosts: Vec<&str> = Kind::ALL
        .iter()
        .filter(|k| k.needs_host())
        .map(|k| k.name())
        .collect();
    assert_eq!(hosts, ["slow-host", "host-errors"]);
}

#[test]
fn recorded_faults_read_back_with_their_labels_and_lengths() {
    let cases = [
        (
            json!({"at": "10s", "kind": "partition", "groups": [["conductor-1"], ["api", "bus", "store", "host-1"]], "oneway": false, "duration": "5s"}),
            "partition conductor-1 | api,bus +2 more",
            Some(5.0),
        ),
        (
            json!({"at": "1s", "kind": "partition", "groups": [["conductor-1", "conductor-12"], ["bus"]], "oneway": true, "duration": "5s"}),
            "partition (one way) conductor-1,conductor-12 | bus",
            Some(5.0),
        ),
        (
            json!({"at": "1s", "kind": "isolate", "node": "store", "duration": "2s"}),
            "isolate store",
            Some(2.0),
        ),
        (
            json!({"at": "1s", "kind": "kill", "node": "conductor-3", "restart_after": "32s 96ms"}),
            "kill conductor-3",
            Some(32.096),
        ),
        (
            json!({"at": "1s", "kind": "kill", "node": "conductor-1"}),
            "kill conductor-1 (no restart)",
            None,
        ),
        (
            json!({"at": "1s", "kind": "pause", "node": "bus", "duration": "1m"}),
            "pause bus",
            Some(60.0),
        ),
        (
            json!({"at": "1s", "kind": "clog", "nodes": ["conductor-1", "bus", "store", "api"], "duration": "4s"}),
            "clog conductor-1,bus +2 more",
            Some(4.0),
        ),
        (
            json!({"at": "1s", "kind": "latency", "min": "10ms", "max": "100ms", "duration": "4s"}),
            "latency 10ms..100ms",
            Some(4.0),
        ),
        (
            json!({"at": "1s", "kind": "slow-host", "node": "host-2", "factor": 2.5, "duration": "4s"}),
            "slow-host host-2 x2.5",
            Some(4.0),
        ),
        (
            json!({"at": "1s", "kind": "slow-host", "node": "host-2", "factor": 3.0, "duration": "4s"}),
            "slow-host host-2 x3",
            Some(4.0),
        ),
        (
            json!({"at": "1s", "kind": "host-errors", "node": "host-1", "rate": 0.4, "duration": "4s"}),
            "host-errors host-1 40%",
            Some(4.0),
        ),
    ];
    for (v, label, lasts) in cases {
        let f = fault(v.clone());
        assert_eq!(f.kind.label(), label, "{v}");
        assert_eq!(f.kind.lasts().map(|d| d.as_secs_f64()), lasts, "{v}");
        // And it is written back as it was read.
        assert_eq!(serde_json::to_value(&f).unwrap(), v);
    }
    for bad in [
        json!("not a fault"),
        json!({"at": "never", "kind": "pause", "node": "store", "duration": "1s"}),
        json!({"at": "1s", "kind": "quake", "duration": "1s"}),
        json!({"at": "1s", "kind": "slow-host", "node": "store", "factor": 2.0, "duration": "1s"}),
    ] {
        assert_eq!(Fault::from_recorded(&bad), None, "{bad}");
    }
}

#[test]
fn each_kind_applies_and_heals_itself_through_the_primitives() {
    let cases = [
        (
            json!({"at": "1s", "kind": "partition", "groups": [["conductor-1"], ["bus", "store"]], "duration": "2s"}),
            vec![1_000_000, 3_000_000],
            vec![
                "cut conductor-1>bus",
                "cut bus>conductor-1",
                "cut conductor-1>store",
                "cut store>conductor-1",
                "mend conductor-1>bus",
                "mend bus>conductor-1",
                "mend conductor-1>store",
                "mend store>conductor-1",
            ],
        ),
        (
            json!({"at": "1s", "kind": "partition", "groups": [["api"], ["bus"], ["store"]], "oneway": true, "duration": "2s"}),
            vec![1_000_000, 3_000_000],
            vec![
                "cut api>bus",
                "cut api>store",
                "cut bus>store",
                "mend api>bus",
                "mend api>store",
                "mend bus>store",
            ],
        ),
        (
            json!({"at": "1s", "kind": "isolate", "node": "store", "duration": "2s"}),
            vec![1_000_000, 3_000_000],
            vec!["clog store", "unclog store"],
        ),
        (
            json!({"at": "1s", "kind": "kill", "node": "conductor-2", "restart_after": "2s"}),
            vec![1_000_000, 3_000_000],
            vec!["kill conductor-2", "restart conductor-2"],
        ),
        (
            // Without `restart_after`, only the heal brings it back.
            json!({"at": "1s", "kind": "kill", "node": "conductor-2"}),
            vec![1_000_000],
            vec!["kill conductor-2"],
        ),
        (
            json!({"at": "1s", "kind": "pause", "node": "bus", "duration": "2s"}),
            vec![1_000_000, 3_000_000],
            vec!["pause bus", "resume bus"],
        ),
        (
            json!({"at": "1s", "kind": "latency", "min": "10ms", "max": "100ms", "duration": "2s"}),
            vec![1_000_000, 3_000_000],
            vec!["latency 3 Some((10ms, 100ms))", "latency 3 None"],
        ),
        (
            json!({"at": "1s", "kind": "slow-host", "node": "host-2", "factor": 2.5, "duration": "2s"}),
            vec![1_000_000, 3_000_000],
            vec!["slow 3 host1 Some(2.5)", "slow 3 host1 None"],
        ),
        (
            json!({"at": "1s", "kind": "host-errors", "node": "host-1", "rate": 0.4, "duration": "2s"}),
            vec![1_000_000, 3_000_000],
            vec!["errors 3 host0 Some(0.4)", "errors 3 host0 None"],
        ),
    ];
    for (v, times, calls) in cases {
        let (t, log) = run(&fault(v.clone()));
        assert_eq!(t, times, "{v}");
        assert_eq!(log, calls, "{v}");
    }
}

#[test]
fn a_clog_swizzles_its_nodes() {
    let f = fault(
        json!({"at": "1s", "kind": "clog", "nodes": ["conductor-1", "bus", "store", "api"], "duration": "8s"}),
    );
    let (t, log) = run(&f);
    // One slot of 8 s / 8 per node: clogs in list order from the start, then unclogs from
    // half-way, in an order of the fault's own stream.
    assert_eq!(
        t,
        [1, 2, 3, 4, 5, 6, 7, 8]
            .map(|s: u64| s * 1_000_000)
            .to_vec()
    );
    assert_eq!(
        log[..4],
        ["clog conductor-1", "clog bus", "clog store", "clog api"]
    );
    let mut unclogged: Vec<&str> = log[4..]
        .iter()
        .map(|l| l.strip_prefix("unclog ").unwrap())
        .collect();
    unclogged.sort();
    assert_eq!(unclogged, ["api", "bus", "conductor-1", "store"]);
    // Begin and End are not a clog's steps.
    let mut w = Log::default();
    f.kind.apply(&mut w, 0, &Step::Begin);
    f.kind.apply(&mut w, 0, &Step::End);
    assert!(w.0.is_empty());
    // The unclog order is the fault's: another place in the schedule, another order (for
    // some place among a few).
    let order = |i: usize| -> Vec<(u64, Step)> { f.kind.steps(0, 1, i) };
    assert!((0..8).any(|i| order(i) != order(3)));
    assert_eq!(order(3), order(3));
}
