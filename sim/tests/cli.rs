//! The command line's contract (DESIGN.md, "CLI"): exit status 0 when every judged SLO holds,
//! 1 on a failed SLO, 2 on bad input with a message naming the file, the key and what was
//! expected; `run` writes report.json with every key of the contract.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_conductor-sim");

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("sim lives in the workspace")
        .to_path_buf()
}

fn baseline() -> PathBuf {
    root().join("scenarios/baseline.toml")
}

/// A fresh directory for one test.
fn scratch(name: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("cli-{name}"));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("creating a scratch directory");
    d
}

fn sim(args: &[&str], cwd: &Path) -> Output {
    Command::new(BIN)
        .args(args)
        .current_dir(cwd)
        .output()
        .expect("running conductor-sim")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The baseline's text with `edit` applied (must change it).
fn edited(edit: impl Fn(&str) -> String) -> String {
    let src = std::fs::read_to_string(baseline()).expect("reading the baseline");
    let out = edit(&src);
    assert_ne!(out, src, "the edit changed nothing");
    out
}

fn replace(from: &'static str, to: &'static str) -> impl Fn(&str) -> String {
    move |s: &str| s.replacen(from, to, 1)
}

/// Expects exit status 2 and a stderr that contains every one of `needles`.
fn refused(what: &str, out: &Output, needles: &[&str]) {
    let err = text(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{what}: expected exit 2, got {:?}\nstdout: {}\nstderr: {err}",
        out.status.code(),
        text(&out.stdout)
    );
    for n in needles {
        assert!(
            err.contains(n),
            "{what}: stderr does not mention {n:?}:\n{err}"
        );
    }
    assert!(!err.contains("panicked"), "{what}: a panic:\n{err}");
}

#[test]
fn bad_scenarios_are_refused_with_a_clear_message() {
    let dir = scratch("bad");
    // (file name, edited text, what stderr must mention besides the file name)
    let cases: Vec<(&str, String, Vec<&str>)> = vec![
        (
            "typo.toml",
            edited(replace("pool_workers = 10", "pool_wrokers = 10")),
            vec!["cluster.pool_wrokers", "unknown key", "pool_workers"],
        ),
        (
            "negative-rate.toml",
            edited(replace("rate = 8.0", "rate = -1.0")),
            vec!["workload.arrival.rate", "> 0", "-1"],
        ),
        (
            "overflow.toml",
            edited(replace("overflow = \"caller-runs\"", "overflow = \"drop\"")),
            vec![
                "cluster.overflow",
                "drop",
                "caller-runs",
                "reject",
                "queue",
                "unbounded",
            ],
        ),
        (
            "latency.toml",
            edited(|s| format!("{s}\n[network]\nlatency = {{ min = \"5ms\", max = \"5ms\" }}\n")),
            vec!["network.latency", "min", "max"],
        ),
        (
            "long.toml",
            edited(replace("duration = \"1h\"", "duration = \"31days\"")),
            vec!["duration", "30"],
        ),
        (
            "many-ops.toml",
            edited(|s| {
                s.replacen("rate = 8.0", "rate = 100000.0", 1).replacen(
                    "duration = \"1h\"",
                    "duration = \"20days\"",
                    1,
                )
            }),
            vec!["workload.arrival", "1e8"],
        ),
        (
            "nameless.toml",
            edited(|s| {
                s.lines()
                    .filter(|l| !l.starts_with("name ="))
                    .collect::<Vec<_>>()
                    .join("\n")
            }),
            vec!["`name`", "missing"],
        ),
        (
            "syntax.toml",
            edited(replace("pool_workers = 10", "pool_workers = = 10")),
            vec!["invalid TOML", ":"],
        ),
        (
            "ordering.toml",
            edited(replace(
                "overflow = \"caller-runs\"",
                "overflow = \"caller-runs\"\nordering = \"state-check\"",
            )),
            vec!["cluster.ordering", "state-check", "not built yet"],
        ),
        (
            "workers.toml",
            edited(replace("pool_workers = 10", "pool_workers = 0")),
            vec!["cluster.pool_workers", "1..="],
        ),
        (
            "unknown-table.toml",
            edited(|s| format!("{s}\n[clutser]\nhosts = 2\n")),
            vec!["clutser", "unknown key"],
        ),
    ];
    for (file, src, needles) in &cases {
        std::fs::write(dir.join(file), src).expect("writing a scenario");
        for cmd in ["check", "run"] {
            let out = sim(&[cmd, file], &dir);
            let mut want = vec![*file];
            want.extend(needles);
            refused(&format!("{cmd} {file}"), &out, &want);
        }
    }
    // Nothing was run, so nothing was written.
    assert!(!dir.join("reports").exists());
}

#[test]
fn bad_command_lines_are_refused() {
    let dir = scratch("args");
    let b = baseline();
    let b = b.to_str().expect("a UTF-8 path");
    refused(
        "--set without =",
        &sim(&["check", b, "--set", "cluster.pool_workers"], &dir),
        &[
            "baseline.toml",
            "--set",
            "cluster.pool_workers",
            "KEY=VALUE",
        ],
    );
    refused(
        "--set of an unknown key",
        &sim(&["check", b, "--set", "cluster.pool_wrokers=3"], &dir),
        &["baseline.toml", "cluster.pool_wrokers", "pool_workers"],
    );
    refused(
        "--set of a bad value",
        &sim(&["check", b, "--set", "cluster.overflow=\"drop\""], &dir),
        &["baseline.toml", "cluster.overflow", "drop"],
    );
    refused(
        "a file that does not exist",
        &sim(&["check", "no/such/scenario.toml"], &dir),
        &["no/such/scenario.toml", "cannot read"],
    );
    refused(
        "run of a file that does not exist",
        &sim(&["run", "missing.toml"], &dir),
        &["missing.toml"],
    );
    refused(
        "an unknown command",
        &sim(&["frobnicate"], &dir),
        &["frobnicate"],
    );
    refused("no scenario", &sim(&["run"], &dir), &["SCENARIO"]);
    refused(
        "zero seeds",
        &sim(&["run", b, "--seeds", "0"], &dir),
        &["--seeds"],
    );
}

#[test]
fn every_bundled_scenario_checks() {
    let dir = root().join("scenarios");
    let mut n = 0;
    for e in std::fs::read_dir(&dir).expect("reading scenarios/") {
        let p = e.expect("a directory entry").path();
        if p.extension().is_none_or(|x| x != "toml") {
            continue;
        }
        let out = sim(&["check", p.to_str().expect("UTF-8")], &dir);
        assert_eq!(
            out.status.code(),
            Some(0),
            "check {}: {}{}",
            p.display(),
            text(&out.stdout),
            text(&out.stderr)
        );
        assert!(text(&out.stdout).contains("ok"), "{}", text(&out.stdout));
        n += 1;
    }
    assert!(n >= 4, "only {n} bundled scenarios");
}

/// Every key DESIGN.md's report.json lists, as paths of object keys.
const CONTRACT: &[&str] = &[
    "scenario",
    "seed",
    "seeds",
    "ops.submitted",
    "ops.accepted",
    "ops.rejected",
    "ops.completed",
    "ops.failed",
    "ops.lost",
    "pool.arrivals",
    "pool.exhausted",
    "pool.exhaustion_ratio",
    "pool.time_full_ratio",
    "pool.mean_busy",
    "pool.mean_hold_ms",
    "pool.per_conductor",
    "pool.exhaustion_ratio_ci95",
    "pool.erlang_b",
    "rpc.caller_runs",
    "rpc.mean_busy_slots",
    "rpc.backlog_wait_ms.p50",
    "rpc.backlog_wait_ms.p99",
    "latency_ms.complete.p50",
    "latency_ms.complete.p90",
    "latency_ms.complete.p99",
    "latency_ms.complete.p999",
    "latency_ms.complete.max",
    "latency_ms.complete.mean",
    "latency_ms.accept.p50",
    "latency_ms.accept.p99",
    "latency_ms.by_op.start.p50",
    "latency_ms.by_op.start.p99",
    "retries.attempts",
    "retries.amplification",
    "retries.gave_up",
    "invariants.checked",
    "invariants.violations",
    "slo.pass",
    "slo.failed",
    "per_seed",
    "host.wall_s",
    "host.events",
    "host.messages",
    "host.sim_ops_per_wall_s",
];

fn get<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(v, |v, k| v.get(k))
}

fn read_report(path: &Path) -> Value {
    let s =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_json::from_str(&s).unwrap_or_else(|e| panic!("{}: not JSON: {e}", path.display()))
}

#[test]
fn run_writes_the_report_of_the_contract() {
    let dir = scratch("run");
    let b = baseline();
    let args = [
        "run",
        b.to_str().expect("UTF-8"),
        "--set",
        "duration=\"10m\"",
        "--seeds",
        "2",
        "--out",
        "out",
    ];
    let out = sim(&args, &dir);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert!(
        text(&out.stdout).contains("report"),
        "{}",
        text(&out.stdout)
    );
    let path = dir.join("out/report.json");
    let rep = read_report(&path);
    for key in CONTRACT {
        assert!(
            get(&rep, key).is_some(),
            "report.json lacks `{key}`:\n{rep:#}"
        );
    }
    assert_eq!(rep["scenario"], "baseline");
    assert_eq!(rep["seed"], 1);
    assert_eq!(rep["seeds"], 2);
    assert_eq!(rep["slo"]["pass"], true);
    let per_seed = rep["per_seed"].as_array().expect("per_seed is an array");
    assert_eq!(per_seed.len(), 2);
    for (i, s) in per_seed.iter().enumerate() {
        for k in [
            "seed",
            "arrivals",
            "exhausted",
            "exhaustion_ratio",
            "violations",
        ] {
            assert!(s.get(k).is_some(), "per_seed[{i}] lacks `{k}`");
        }
        assert_eq!(s["seed"], 1 + i as u64);
    }
    let pc = &rep["pool"]["per_conductor"][0];
    assert_eq!(pc["name"], "conductor-1");
    assert!(pc["arrivals"].as_u64().is_some_and(|a| a > 0));
    let ops = rep["ops"]["submitted"].as_u64().expect("a count");
    assert!(ops > 5_000, "{ops} ops in 2 × 10 minutes at 8/s");
    let ratio = rep["pool"]["exhaustion_ratio"].as_f64().expect("a ratio");
    let (exh, arr) = (
        rep["pool"]["exhausted"].as_f64().expect("n"),
        rep["pool"]["arrivals"].as_f64().expect("n"),
    );
    assert!((ratio - exh / arr).abs() < 1e-5, "{ratio} vs {exh}/{arr}");
    // host.sim_ops_per_wall_s = ops.submitted / host.wall_s (wall_s is rounded to 1 ms).
    let wall = rep["host"]["wall_s"].as_f64().expect("seconds");
    let rate = rep["host"]["sim_ops_per_wall_s"].as_f64().expect("a rate");
    if wall >= 0.05 {
        let want = ops as f64 / wall;
        assert!(
            (rate / want - 1.0).abs() <= 0.0006 / wall + 1e-3,
            "sim_ops_per_wall_s {rate} vs {ops} / {wall}"
        );
    }
    assert!(rate > 0.0);

    // The same command again: the same bytes, `host` aside.
    let again = sim(&[&args[..6], &["--out", "again"]].concat(), &dir);
    assert_eq!(again.status.code(), Some(0), "{}", text(&again.stderr));
    let mut a = rep.clone();
    let mut b = read_report(&dir.join("again/report.json"));
    a.as_object_mut().expect("object").remove("host");
    b.as_object_mut().expect("object").remove("host");
    assert_eq!(a, b, "two runs of the same seeds differ");
}

#[test]
fn run_writes_to_reports_out_by_default() {
    let dir = scratch("default-out");
    let b = baseline();
    let out = sim(
        &[
            "run",
            b.to_str().expect("UTF-8"),
            "--set",
            "duration=\"2m\"",
            "--seed",
            "7",
        ],
        &dir,
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let rep = read_report(&dir.join("reports/out/baseline/report.json"));
    assert_eq!(rep["seed"], 7);
    assert_eq!(rep["seeds"], 1);
}

#[test]
fn a_failed_slo_exits_1() {
    let dir = scratch("slo");
    let b = baseline();
    // The baseline's pool is exhausted ≈ 13% of the time: a 1% objective fails.
    let out = sim(
        &[
            "run",
            b.to_str().expect("UTF-8"),
            "--set",
            "duration=\"10m\"",
            "--set",
            "slo.exhaustion_ratio_max=0.01",
            "--out",
            "out",
        ],
        &dir,
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let rep = read_report(&dir.join("out/report.json"));
    assert_eq!(rep["slo"]["pass"], false);
    assert_eq!(rep["slo"]["failed"][0], "exhaustion_ratio_max");

    // And a p99 objective below the service time fails the same way.
    let out = sim(
        &[
            "run",
            b.to_str().expect("UTF-8"),
            "--set",
            "duration=\"10m\"",
            "--set",
            "slo.p99_max=\"100ms\"",
            "--out",
            "p99",
        ],
        &dir,
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let rep = read_report(&dir.join("p99/report.json"));
    assert_eq!(rep["slo"]["failed"][0], "p99_max");
}

#[test]
fn bad_faults_are_refused_with_a_clear_message() {
    let dir = scratch("bad-faults");
    // The baseline has one conductor and one host.
    let cases: Vec<(&str, &str, Vec<&str>)> = vec![
        (
            "unknown-node.toml",
            "[[faults]]\nkind = \"kill\"\nat = \"1m\"\nnode = \"conductor-9\"\n",
            vec![
                "faults[0].node",
                "unknown node `conductor-9`",
                "conductor-1..conductor-1",
            ],
        ),
        (
            "unknown-kind.toml",
            "[[faults]]\nkind = \"meteor\"\nat = \"1m\"\nnode = \"api\"\n",
            vec!["faults[0].kind", "meteor", "partition", "host-errors"],
        ),
        (
            "negative-duration.toml",
            "[[faults]]\nkind = \"pause\"\nat = \"1m\"\nnode = \"api\"\nduration = \"-5s\"\n",
            vec!["faults[0].duration", "-5s"],
        ),
        (
            "nemesis-kind.toml",
            "[nemesis]\nkinds = [\"kill\", \"flood\"]\n",
            vec!["nemesis.kinds[1]", "flood"],
        ),
        (
            "nemesis-target.toml",
            "[nemesis]\ntargets = [\"host-7\"]\n",
            vec!["nemesis.targets[0]", "unknown node `host-7`"],
        ),
    ];
    for (file, extra, needles) in &cases {
        let src = edited(|s| format!("{s}\n{extra}"));
        std::fs::write(dir.join(file), src).expect("writing a scenario");
        for cmd in ["check", "run"] {
            let out = sim(&[cmd, file], &dir);
            let mut want = vec![*file];
            want.extend(needles);
            refused(&format!("{cmd} {file}"), &out, &want);
        }
    }
    assert!(!dir.join("reports").exists());
}
