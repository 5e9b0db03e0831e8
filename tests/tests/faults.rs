//! Fault injection (docs/scenario.md, `[[faults]]`): every kind has a visible effect, the nemesis is
//! deterministic, the world heals at the end of the load phase and drains, and a killed node
//! behaves like a dead process on the simulated network.

use conductor::mem::{system_clock, task_timer, MemNet, MemNetConfig};
use conductor::proto::Msg;
use reports::SeedMetrics;
use scenario::Scenario;
use sim::run::{report, run_seeds};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;
use tests::{parse, run_one};

/// Ten simulated minutes, three conductors, two hosts, 5 ops/s of `start` with 500 ms service,
/// no 409s; `extra` is appended (faults, a nemesis, overrides of whole tables).
fn scn(extra: &str) -> Scenario {
    let src = format!(
        r#"name = "faults"
duration = "10m"
drain = "10m"
[cluster]
conductors = 3
hosts = 2
pool_workers = 20
[api]
validate_state = false
[workload]
arrival = {{ kind = "poisson", rate = 5.0 }}
containers = 100
[backend]
default = {{ dist = "exp", mean = "500ms" }}
[checks]
invariants = []
{extra}"#
    );
    parse(&src, &[])
}

fn fault(body: &str) -> Scenario {
    scn(&format!("[[faults]]\n{body}"))
}

fn accept_p(m: &SeedMetrics, q: f64) -> f64 {
    m.accept.quantile_us(q) as f64 / 1e3
}

fn mean_hold_ms(m: &SeedMetrics) -> f64 {
    m.hold.mean_ms()
}

#[test]
fn network_faults_delay_the_accept() {
    let base = run_one(&scn(""), 1);
    assert!(accept_p(&base, 0.99) < 500.0, "{}", accept_p(&base, 0.99));
    let cases = [
        // The bus cut off from everyone for a minute: calls wait for it.
        "kind = \"partition\"\nat = \"2m\"\ngroups = [[\"bus\"], [\"api\", \"store\", \"conductor-1\", \"conductor-2\", \"conductor-3\"]]\nduration = \"1m\"",
        "kind = \"isolate\"\nat = \"2m\"\nnode = \"api\"\nduration = \"1m\"",
        "kind = \"pause\"\nat = \"2m\"\nnode = \"store\"\nduration = \"30s\"",
        "kind = \"clog\"\nat = \"2m\"\nnodes = [\"bus\", \"store\"]\nduration = \"1m\"",
    ];
    for body in cases {
        let m = run_one(&fault(body), 1);
        assert!(
            accept_p(&m, 0.99) > 10_000.0,
            "{body}: accept p99 {} ms",
            accept_p(&m, 0.99)
        );
        // Nothing is lost: clogs and pauses delay, they do not drop; the heal and the drain
        // let everything finish.
        assert_eq!(m.lost, 0, "{body}");
        assert_eq!(m.completed, m.submitted, "{body}");
        assert_eq!(m.faults.len(), 1, "{body}");
    }
}

#[test]
fn latency_fault_slows_every_message() {
    let base = run_one(&scn(""), 1);
    let m = run_one(
        &fault(
            "kind = \"latency\"\nat = \"0s\"\nmin = \"100ms\"\nmax = \"200ms\"\nduration = \"10m\"",
        ),
        1,
    );
    // An accepted call crosses the network several times: at least 4 × 100 ms.
    assert!(accept_p(&m, 0.5) > 400.0, "{}", accept_p(&m, 0.5));
    assert!(accept_p(&base, 0.5) < 100.0);
}

#[test]
fn slow_host_multiplies_the_hold() {
    let base = run_one(&scn(""), 1);
    // Both hosts 3× slower for the whole run: holds (host call + a few ms of store writes)
    // about 3× longer, op for op (common random numbers).
    let m = run_one(
        &scn("[[faults]]\nkind = \"slow-host\"\nat = \"0s\"\nnode = \"host-1\"\nfactor = 3.0\nduration = \"10m\"\n[[faults]]\nkind = \"slow-host\"\nat = \"0s\"\nnode = \"host-2\"\nfactor = 3.0\nduration = \"10m\""),
        1,
    );
    let ratio = mean_hold_ms(&m) / mean_hold_ms(&base);
    assert!((ratio - 3.0).abs() < 0.15, "hold ratio {ratio}");
}

#[test]
fn host_errors_fail_at_the_rate() {
    let m = run_one(
        &fault("kind = \"host-errors\"\nat = \"0s\"\nnode = \"host-1\"\nrate = 0.4\nduration = \"10m\""),
        1,
    );
    // Half the containers live on host-1: 20% of the ops fail.
    let share = m.failed as f64 / m.submitted as f64;
    let sd = (0.2 * 0.8 / m.submitted as f64).sqrt();
    assert!(
        (share - 0.2).abs() < 4.0 * sd + 0.01,
        "failed share {share}"
    );
    assert_eq!(m.lost, 0);
}

#[test]
fn a_killed_conductor_serves_again_after_its_restart() {
    let kill = |restart: &str| {
        run_one(
            &fault(&format!(
                "kind = \"kill\"\nat = \"1m\"\nnode = \"conductor-1\"\n{restart}"
            )),
            1,
        )
    };
    let back = kill("restart_after = \"1m\"");
    let down = kill("");
    let share = |m: &SeedMetrics| m.per_conductor[0].arrivals as f64 / m.arrivals as f64;
    // Down for 1 of 10 minutes: about 9/10 of its third; down until the heal: 1/10 of it.
    assert!(share(&back) > 0.25, "restarted: {}", share(&back));
    assert!(share(&down) < 0.06, "down: {}", share(&down));
    // Down until the heal, it restarts for the drain and the others carried the load.
    assert_eq!(
        down.completed + down.failed + down.lost + down.rejected,
        down.submitted
    );
    assert_eq!(
        back.faults[0]["restart_after"], "1m",
        "the schedule as run: {:?}",
        back.faults
    );
}

fn nemesis_scn() -> Scenario {
    scn(r#"[nemesis]
kinds = ["partition", "isolate", "pause", "clog", "latency", "slow-host", "host-errors", "kill"]
targets = ["api", "bus", "store", "conductor-1", "conductor-2", "host-1", "host-2"]
mean_interval = "30s"
mean_duration = "10s""#)
}

#[test]
fn the_nemesis_is_deterministic() {
    let s = nemesis_scn();
    let a = run_seeds(&s, 3, 1, 1).unwrap();
    let b = run_seeds(&s, 3, 1, 1).unwrap();
    assert!(a[0].faults.len() > 5, "{:?}", a[0].faults);
    assert_eq!(a[0].faults, b[0].faults);
    let ra = report(&s, 3, &a, 1.0).to_json_without_host();
    let rb = report(&s, 3, &b, 2.0).to_json_without_host();
    assert!(ra == rb, "two runs of seed 3 differ:\n{ra}\n---\n{rb}");
    // Another seed, other faults.
    let c = run_seeds(&s, 4, 1, 1).unwrap();
    assert_ne!(a[0].faults, c[0].faults);
}

#[test]
fn the_recorded_schedule_replays_as_a_plain_scenario() {
    let s = nemesis_scn();
    let a = run_one(&s, 5);
    // The faults the nemesis ran, written as [[faults]] of a scenario without a nemesis.
    let mut text = String::new();
    for f in &a.faults {
        text.push_str("[[faults]]\n");
        for (k, v) in f.as_object().expect("a fault is a table") {
            text.push_str(&format!("{k} = {}\n", toml_value(v)));
        }
    }
    let plain = scn(&text);
    let b = run_one(&plain, 5);
    assert_eq!(a.faults, b.faults);
    assert_eq!(
        (a.submitted, a.completed, a.failed, a.lost, a.arrivals),
        (b.submitted, b.completed, b.failed, b.lost, b.arrivals)
    );
}

/// A JSON value of a `[[faults]]` entry (strings, numbers, booleans, arrays of those) as TOML.
fn toml_value(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Array(a) => {
            let items: Vec<String> = a.iter().map(toml_value).collect();
            format!("[{}]", items.join(", "))
        }
        other => other.to_string(),
    }
}

#[test]
fn everything_is_answered_after_the_heal() {
    // Faults that delay but never drop, on every node, drawn often: once they heal at the end of
    // the load phase, the drain finishes every op.
    let s = scn(r#"[nemesis]
kinds = ["partition", "isolate", "pause", "clog", "latency", "slow-host"]
targets = ["api", "bus", "store", "conductor-1", "conductor-2", "conductor-3", "host-1", "host-2"]
mean_interval = "20s"
mean_duration = "15s""#);
    for seed in [1, 2] {
        let m = run_one(&s, seed);
        assert!(m.faults.len() > 10);
        assert_eq!(m.lost, 0, "seed {seed}");
        assert_eq!(
            m.completed + m.failed + m.rejected,
            m.submitted,
            "seed {seed}"
        );
        // The drain ended early: nothing was left.
        assert!(
            m.sim_end_us < 20 * 60 * 1_000_000,
            "seed {seed}: {}",
            m.sim_end_us
        );
    }
}

fn ip(n: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(10, 9, 0, n))
}

fn ack(tag: u64) -> Msg {
    Msg::Ack { tag, reply: None }
}

#[test]
fn a_killed_node_closes_its_links_refuses_connects_and_binds_again_after_a_restart() {
    let rt = madsim::runtime::Runtime::with_seed_and_config(1, madsim::Config::default());
    rt.block_on(async {
        let net = MemNet::new(
            MemNetConfig {
                latency_min: Duration::from_millis(1),
                latency_max: Duration::from_millis(2),
                loss: 0.0,
            },
            1,
            system_clock(),
            task_timer(),
        );
        let addr = SocketAddr::new(ip(1), 7000);
        let n = net.clone();
        let handle = madsim::runtime::Handle::current();
        // An echo server that binds as the world's services do: retrying while the previous
        // incarnation's listener is still there.
        let server = handle
            .create_node()
            .name("echo")
            .ip(addr.ip())
            .init(move || {
                let n = n.clone();
                async move {
                    let mut l = loop {
                        match n.bind(addr) {
                            Ok(l) => break l,
                            Err(_) => tokio::time::sleep(Duration::from_millis(1)).await,
                        }
                    };
                    while let Some((link, mut reader)) = l.accept().await {
                        tokio::spawn(async move {
                            while let Some(m) = reader.next().await {
                                link.send(m);
                            }
                        });
                    }
                }
            })
            .build();
        tokio::time::sleep(Duration::from_millis(10)).await;
        let (link, mut reader) = net.connect(ip(2), addr).expect("the server listens");
        assert!(link.send(ack(1)));
        assert_eq!(reader.next().await, Some(ack(1)));

        // As the fault injector kills: the process, and at once its listening ports.
        handle.kill(server.id());
        net.close_listeners(addr.ip());
        assert!(
            net.connect(ip(2), addr).is_err(),
            "a killed node's listener is gone: connects are refused"
        );
        let end = tokio::time::timeout(Duration::from_secs(1), reader.next()).await;
        assert_eq!(
            end,
            Ok(None),
            "the peer of a killed node reads end-of-stream"
        );
        assert!(!link.send(ack(2)), "sending to a killed node fails");
        assert!(net.connect(ip(2), addr).is_err(), "still refused");

        handle.restart(server.id());
        tokio::time::sleep(Duration::from_millis(10)).await;
        let (link, mut reader) = net
            .connect(ip(2), addr)
            .expect("the restarted node binds again");
        assert!(link.send(ack(3)));
        assert_eq!(reader.next().await, Some(ack(3)));
    });
}
