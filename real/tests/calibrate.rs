//! `conductor calibrate`, for real on loopback against the simulator built beside it
//! (`target/release/conductor-sim`, `cargo build --release -p sim`): a short time-scaled
//! baseline agrees (every compared row within its 99% interval, exit 0); the same run with hosts
//! twice as slow as the scenario says is flagged (exit 1, `agree: false`, the hold time and the
//! exhaustion ratio named); bad input exits 2 with a message.
//!
//! Run with `RUSTFLAGS= CARGO_TARGET_DIR=target/real cargo test --release -p real --test calibrate`.
#![cfg(not(madsim))]

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

mod common;
use common::{scratch, BIN};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn sim_bin() -> PathBuf {
    let p = root().join("target/release/conductor-sim");
    assert!(
        p.is_file(),
        "{} is missing: build the simulator first with `cargo build --release -p sim`",
        p.display()
    );
    p
}

/// One calibration at a time: each starts a whole deployment and a simulator on this machine's
/// two cores, and two at once (the test harness runs tests in parallel) slow each other's
/// hosts — a real half measured on a machine the simulated half does not model (CI saw the
/// hold 4% long and the agreement test fail).
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn calibrate(args: &[&str]) -> Output {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    Command::new(BIN)
        .current_dir(root())
        .arg("calibrate")
        .args(args)
        .output()
        .expect("conductor runs")
}

fn text(o: &Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A 30-second load phase of the baseline at 20× (its hour compressed to three minutes, then a
/// sixth of it), with 8 simulated seeds. Not faster: at 60× a hold is 18 ms, and on a loaded
/// 2-core CI machine the real deployment's scheduling delays (about 1 ms a hold, which no
/// simulated network latency stands for) put the hold and the exhaustion ratio outside their
/// intervals; at 20× a hold is 50 ms and the same delays are within the seeds' spread (measured
/// here with a busy loop on one of the two cores: hold 50.87 ms real against [48.40, 53.12]).
fn short(out: &Path, extra: &[&str]) -> (Output, Value) {
    let sim = sim_bin();
    let mut args = vec![
        "scenarios/baseline.toml",
        "--time-scale",
        "20",
        "--set",
        "duration=\"10m\"",
        "--seeds",
        "8",
        "--sim-bin",
        sim.to_str().expect("utf-8"),
        "--out",
        out.to_str().expect("utf-8"),
    ];
    args.extend_from_slice(extra);
    let o = calibrate(&args);
    let j = std::fs::read_to_string(out.join("calibration.json"))
        .unwrap_or_else(|e| panic!("no calibration.json ({e}):\n{}", text(&o)));
    (
        o,
        serde_json::from_str(&j).expect("calibration.json is JSON"),
    )
}

fn row<'a>(v: &'a Value, metric: &str) -> &'a Value {
    v["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .find(|r| r["metric"] == metric)
        .unwrap_or_else(|| panic!("no row {metric} in {v}"))
}

#[test]
fn a_time_scaled_baseline_agrees_with_the_simulation() {
    let dir = scratch("calibrate-agree");
    let (o, v) = short(&dir, &[]);
    let t = text(&o);
    assert_eq!(v["scenario"], "baseline", "{v}");
    assert_eq!(v["time_scale"], 20.0, "{v}");
    for m in [
        "arrivals",
        "exhaustion_ratio",
        "accept_p99_ms",
        "complete_p50_ms",
        "complete_p99_ms",
        "mean_hold_ms",
        "messages_per_op",
    ] {
        let r = row(&v, m);
        assert!(
            r["real"].is_number() && r["simulated"].is_number(),
            "{m}: {r}"
        );
        assert_eq!(r["within"], true, "{m} is not within its interval:\n{t}");
    }
    // What is fitted is shown, never judged.
    assert!(row(&v, "accept_p50_ms")["within"].is_null(), "{v}");
    assert_eq!(v["agree"], true, "{t}");
    assert_eq!(o.status.code(), Some(0), "{t}");
    assert!(t.contains("comparisons, each on a 99% interval"), "{t}");
    assert!(t.contains("time scale 20"), "{t}");
    let html = std::fs::read_to_string(dir.join("calibration.html")).expect("calibration.html");
    assert!(
        html.contains("complete-spectrum") && html.contains("simulated"),
        "the page"
    );
}

#[test]
fn hosts_twice_as_slow_are_flagged() {
    let dir = scratch("calibrate-slow");
    let (o, v) = short(&dir, &["--real-slowdown", "2"]);
    let t = text(&o);
    assert_eq!(v["agree"], false, "{t}");
    assert_eq!(o.status.code(), Some(1), "{t}");
    for m in ["mean_hold_ms", "exhaustion_ratio"] {
        assert_eq!(row(&v, m)["within"], false, "{m}:\n{t}");
    }
    assert!(
        t.contains("agree      NO: ") && t.contains("mean_hold_ms"),
        "{t}"
    );
    let hold = row(&v, "mean_hold_ms");
    let (sim, real) = (
        hold["simulated"].as_f64().unwrap(),
        hold["real"].as_f64().unwrap(),
    );
    assert!(
        real > 1.6 * sim,
        "hosts twice as slow hold about twice as long: {hold}"
    );
}

#[test]
fn bad_input_exits_2_with_a_message() {
    let dir = scratch("calibrate-bad");
    let out = dir.to_str().expect("utf-8");
    for x in ["0", "-1", "NaN", "inf", "x"] {
        let flag = format!("--time-scale={x}");
        let o = calibrate(&["scenarios/baseline.toml", &flag, "--out", out]);
        assert_eq!(o.status.code(), Some(2), "--time-scale {x}: {}", text(&o));
        assert!(text(&o).contains("--time-scale"), "{}", text(&o));
    }
    // What the real half would not do (fault the deployment, coordinate on etcd) is refused
    // before anything starts.
    for (set, says) in [
        (
            r#"faults=[{kind="kill",at="1s",node="host-1",restart_after="1s"}]"#,
            "calibrate compares a fault-free run",
        ),
        (
            "cluster.coordination=etcd",
            "cluster.coordination = \"etcd\"",
        ),
    ] {
        let o = calibrate(&["scenarios/baseline.toml", "--set", set, "--out", out]);
        assert_eq!(o.status.code(), Some(2), "{set}: {}", text(&o));
        assert!(text(&o).contains(says), "{set}: {}", text(&o));
    }
    let o = calibrate(&[
        "scenarios/baseline.toml",
        "--sim-bin",
        "/nonexistent/conductor-sim",
        "--out",
        out,
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("cargo build --release -p sim"),
        "{}",
        text(&o)
    );
    // Nothing listens on a port just bound and closed.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let sim = sim_bin();
    let target = format!("http://127.0.0.1:{port}");
    let o = calibrate(&[
        "scenarios/baseline.toml",
        "--target",
        &target,
        "--sim-bin",
        sim.to_str().expect("utf-8"),
        "--out",
        out,
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("cannot reach"), "{}", text(&o));
}
