//! `conductor cluster`: short real runs of the bundled real scenarios on loopback, judged by
//! the simulator's checker. The reference configuration, with a conductor and the store killed
//! and started again mid-load, breaks none of the nine invariants (liveness judged on the final
//! states the store and the hosts write when stopped); the same run with `ordering = "none"`
//! shows violations (the check can fail). And scenarios a real run cannot take are refused.
//!
//! Run with `RUSTFLAGS= CARGO_TARGET_DIR=target/real cargo test --release -p real`.
#![cfg(not(madsim))]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

mod common;
use common::{scratch, BIN};

fn scenario(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../scenarios/real")
        .join(name)
}

/// Runs `conductor cluster SCENARIO --out DIR ARGS…`: its output, and `cluster.json`.
fn cluster(scn: &str, dir: &Path, args: &[&str]) -> (Output, serde_json::Value) {
    let out = Command::new(BIN)
        .arg("cluster")
        .arg(scenario(scn))
        .arg("--out")
        .arg(dir)
        .args(args)
        .output()
        .expect("run conductor cluster");
    let summary = std::fs::read_to_string(dir.join("cluster.json"))
        .ok()
        .and_then(|s| serde_json::from_str(&s).ok())
        .unwrap_or(serde_json::Value::Null);
    (out, summary)
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A short run: 8 s of load with a conductor and the store killed, 6 s of drain.
const SHORT: &[&str] = &[
    "--for",
    "8s",
    "--drain",
    "6s",
    "--set",
    r#"faults=[{kind="kill",at="2s",node="conductor-2",restart_after="2s"},{kind="kill",at="5s",node="store",restart_after="1s"}]"#,
];

#[test]
fn the_reference_run_for_real_breaks_nothing() {
    let dir = scratch("the_reference_run_for_real_breaks_nothing");
    let (out, s) = cluster("reference.toml", &dir, SHORT);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(s["violations"], 0, "{s}");
    assert_eq!(s["problems"], serde_json::json!([]), "{s}");
    assert_eq!(s["restarts"]["conductor-2"], 1, "{s}");
    assert_eq!(s["restarts"]["store"], 1, "{s}");
    assert!(
        s["client"]["requests"].as_u64().is_some_and(|n| n > 50),
        "{s}"
    );
    // The liveness invariants were judged on the final states, not skipped.
    let h: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("history.json")).unwrap()).unwrap();
    assert_eq!(h["final_state"], true, "{h}");
    assert_eq!(h["not_judged"], serde_json::json!([]), "{h}");
    assert!(
        text(&out).contains("judged     create-before-use,") && text(&out).contains("converges"),
        "{}",
        text(&out)
    );
}

/// Two store processes on one journal: the primary killed mid-load (`SHORT`'s store fault
/// takes the primary), the standby takes over, the api and the conductors move to it, and the
/// old primary comes back as the standby; nothing accepted is lost (liveness judged on the new
/// primary's final state) and nothing breaks.
#[test]
fn two_stores_the_primary_killed_break_nothing() {
    let dir = scratch("two_stores_the_primary_killed_break_nothing");
    let mut args = vec!["--stores", "2"];
    args.extend(SHORT);
    let (out, s) = cluster("reference.toml", &dir, &args);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(s["violations"], 0, "{s}");
    assert_eq!(s["problems"], serde_json::json!([]), "{s}");
    assert_eq!(s["stores"], 2, "{s}");
    assert_eq!(s["restarts"]["store"], 1, "{s}");
    assert_eq!(s["unfinished"], 0, "{s}");
    let standby = std::fs::read_to_string(dir.join("store-2.0.stderr")).unwrap_or_default();
    assert!(standby.contains("took over the journal"), "{standby}");
    let h: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("history.json")).unwrap()).unwrap();
    assert_eq!(h["final_state"], true, "{h}");
    assert_eq!(h["not_judged"], serde_json::json!([]), "{h}");
}

#[test]
fn without_ordering_the_real_run_shows_races() {
    let dir = scratch("without_ordering_the_real_run_shows_races");
    let (out, s) = cluster("no-ordering.toml", &dir, SHORT);
    let t = text(&out);
    assert!(
        s["counts"]["exclusive"].as_u64().is_some_and(|n| n > 0),
        "no exclusive violation: {s}\n{t}"
    );
    assert!(s["violations"].as_u64().is_some_and(|n| n > 0), "{s}");
    assert_eq!(s["problems"], serde_json::json!([]), "{s}\n{t}");
    assert!(t.contains("exclusive container"), "{t}");
}

#[test]
fn faults_a_real_run_cannot_take_are_refused() {
    let dir = scratch("faults_a_real_run_cannot_take_are_refused");
    for (set, says) in [
        (
            r#"faults=[{kind="partition",at="1s",duration="1s",groups=[["api"],["store"]]}]"#,
            "faults[0]: kind `partition` needs cutting a link",
        ),
        (
            r#"nemesis={kinds=["kill"],mean_interval="10s",mean_duration="1s"}"#,
            "[nemesis]",
        ),
    ] {
        let (out, _) = cluster("reference.toml", &dir, &["--set", set]);
        assert_eq!(out.status.code(), Some(2), "{set}: {}", text(&out));
        assert!(text(&out).contains(says), "{set}: {}", text(&out));
    }
    // The simulator's etcd model is not what a real run without `--etcd` has, and its member
    // nodes are not processes of the run: refused, never silently run on the store or skipped.
    for (sets, says) in [
        (
            &["cluster.coordination=etcd"][..],
            "cluster.coordination = \"etcd\": a real run keeps its coordination in the etcd \
             cluster given by --etcd",
        ),
        (
            &[
                "cluster.coordination=etcd",
                r#"faults=[{kind="kill",at="1s",node="etcd-1",restart_after="1s"}]"#,
            ][..],
            "faults[0]: kind `kill` needs an etcd member, which a real run does not start",
        ),
    ] {
        let args: Vec<&str> = sets.iter().flat_map(|s| ["--set", *s]).collect();
        let (out, _) = cluster("reference.toml", &dir, &args);
        assert_eq!(out.status.code(), Some(2), "{sets:?}: {}", text(&out));
        assert!(text(&out).contains(says), "{sets:?}: {}", text(&out));
    }
}
