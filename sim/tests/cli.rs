//! The command line's contract (docs/outputs.md, "CLI"): exit status 0 when every judged SLO holds,
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
            "fencing.toml",
            edited(replace(
                "overflow = \"caller-runs\"",
                "overflow = \"caller-runs\"\nfencing = true",
            )),
            vec!["cluster.fencing", "distributed-lock", "state-check"],
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
    let retry = dir.join("retry");
    let entries = std::fs::read_dir(&dir)
        .expect("reading scenarios/")
        .chain(std::fs::read_dir(&retry).expect("reading scenarios/retry/"));
    for e in entries {
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
    // Each retry scenario says what it shows and the compare command that shows it.
    for e in std::fs::read_dir(&retry).expect("reading scenarios/retry/") {
        let p = e.expect("a directory entry").path();
        let src = std::fs::read_to_string(&p).expect("reading a scenario");
        assert!(
            src.contains("description") && src.contains("conductor-sim compare scenarios/retry/"),
            "{}: needs a description with its compare command",
            p.display()
        );
    }
}

/// A short baseline for compare: 3 minutes.
fn short_baseline(dir: &Path) -> String {
    let p = dir.join("short.toml");
    std::fs::write(
        &p,
        edited(replace("duration = \"1h\"", "duration = \"3m\"")),
    )
    .expect("writing the scenario");
    p.to_str().expect("UTF-8").to_string()
}

#[test]
fn compare_refuses_bad_axes() {
    let dir = scratch("compare-bad");
    let b = short_baseline(&dir);
    let b = b.as_str();
    refused(
        "no --vary",
        &sim(&["compare", b, "--seeds", "1"], &dir),
        &["short.toml", "--vary", "KEY=V1,V2"],
    );
    refused(
        "no values",
        &sim(
            &["compare", b, "--seeds", "1", "--vary", "cluster.overflow="],
            &dir,
        ),
        &[
            "short.toml",
            "--vary `cluster.overflow=`",
            "at least one value",
        ],
    );
    refused(
        "no key",
        &sim(&["compare", b, "--seeds", "1", "--vary", "reject"], &dir),
        &["short.toml", "--vary `reject`", "KEY=V1,V2"],
    );
    refused(
        "an unknown key",
        &sim(
            &[
                "compare",
                b,
                "--seeds",
                "1",
                "--vary",
                "cluster.overflwo=reject",
            ],
            &dir,
        ),
        &["short.toml", "--vary", "cluster.overflwo"],
    );
    refused(
        "an unknown value",
        &sim(
            &[
                "compare",
                b,
                "--seeds",
                "1",
                "--vary",
                "cluster.overflow=reject,drop",
            ],
            &dir,
        ),
        &["short.toml", "--vary", "cluster.overflow", "drop"],
    );
    refused(
        "a value bringing a bad key along",
        &sim(
            &[
                "compare",
                b,
                "--seeds",
                "1",
                "--vary",
                "cluster.overflow=reject+cluster.pool_workers=-1",
            ],
            &dir,
        ),
        &["short.toml", "--vary", "cluster.pool_workers"],
    );
    refused(
        "zero seeds",
        &sim(
            &[
                "compare",
                b,
                "--seeds",
                "0",
                "--vary",
                "cluster.overflow=reject",
            ],
            &dir,
        ),
        &["--seeds"],
    );
}

#[test]
fn compare_is_paired_deterministic_and_exits_1_on_a_failed_slo() {
    let dir = scratch("compare");
    let b = short_baseline(&dir);
    let args = |out: &'static str| {
        vec![
            "compare".to_string(),
            b.clone(),
            "--seeds".into(),
            "2".into(),
            "--jobs".into(),
            "2".into(),
            "--csv".into(),
            "--vary".into(),
            "cluster.overflow=caller-runs,reject".into(),
            "--vary".into(),
            "cluster.pool_workers=8,12".into(),
            "--set".into(),
            "slo.exhaustion_ratio_max=1.0".into(),
            "--set".into(),
            "slo.p99_max=\"1h\"".into(),
            "--out".into(),
            out.into(),
        ]
    };
    let run = |out: &'static str| {
        let a = args(out);
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        sim(&a, &dir)
    };
    let one = run("a");
    assert_eq!(one.status.code(), Some(0), "{}", text(&one.stderr));
    let table = text(&one.stdout);
    assert!(
        table.contains("4 rows × 2 seeds (paired: seeds 1..2 on every row)"),
        "{table}"
    );
    assert!(table.contains("paired against row 1"), "{table}");
    let two = run("b");
    for f in ["compare.json", "compare.csv", "report.html"] {
        let x = std::fs::read(dir.join("a").join(f)).expect("first output");
        let y = std::fs::read(dir.join("b").join(f)).expect("second output");
        assert!(x == y, "{f} differs between two identical compares");
    }
    assert_eq!(two.status.code(), Some(0));
    let c = read_report(&dir.join("a/compare.json"));
    let rows = c["rows"].as_array().expect("rows");
    assert_eq!(rows.len(), 4);
    assert_eq!(rows[1]["params"]["cluster.overflow"], "caller-runs");
    assert_eq!(rows[1]["params"]["cluster.pool_workers"], 12);
    // Paired: the same arrivals on every row, so the same requests offered.
    for r in rows {
        assert_eq!(r["offered"], rows[0]["offered"], "{r}");
        for k in ["goodput_per_s", "amplification"] {
            assert!(
                r[k]["ci95"].as_array().is_some_and(|a| a.len() == 2),
                "{k}: {r}"
            );
        }
        assert_eq!(r["metastable"], false, "a calm run is never flagged: {r}");
        assert!(r["recovery_s"]["median"].is_null());
    }
    let paired = c["paired"].as_array().expect("paired");
    assert_eq!(paired.len(), 3);
    assert_eq!(
        (paired[0]["row"].as_u64(), paired[0]["vs"].as_u64()),
        (Some(1), Some(0))
    );
    let csv = std::fs::read_to_string(dir.join("a/compare.csv")).expect("compare.csv");
    assert_eq!(csv.lines().count(), 5);
    assert!(csv.starts_with("cluster.overflow,cluster.pool_workers,offered_per_s,"));
    let html = std::fs::read_to_string(dir.join("a/report.html")).expect("report.html");
    assert!(html.contains("Goodput over time") && html.contains("The boundary"));

    // A row failing its [slo] exits 1 (p99 under the service time fails on every row).
    let mut a = args("slo");
    a.extend(["--set".into(), "slo.p99_max=\"10ms\"".into()]);
    let a: Vec<&str> = a.iter().map(String::as_str).collect();
    let out = sim(&a, &dir);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("fail (p99_max)"));
}

/// Every key the report.json contract lists (docs/outputs.md), as paths of object keys.
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

// ---- The checker's commands: explore, replay, [checks] expect ----

fn races() -> PathBuf {
    root().join("scenarios/races-no-ordering.toml")
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("a UTF-8 path")
}

/// Runs and expects exit status `code`, returning stdout.
fn expect_code(what: &str, args: &[&str], cwd: &Path, code: i32) -> String {
    let out = sim(args, cwd);
    assert_eq!(
        out.status.code(),
        Some(code),
        "{what}: expected exit {code}\nstdout: {}\nstderr: {}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert!(!text(&out.stderr).contains("panicked"), "{what}: a panic");
    text(&out.stdout)
}

#[test]
fn explore_writes_explore_json_and_fails_on_unexpected_violations() {
    let dir = scratch("explore");
    let r = races();
    let r = path_str(&r);
    // Nothing expected: every seed breaks the ordering invariants, so every seed fails. Three
    // conductors on the shared topic (Magnum 2015) race the ops of one container.
    let base = [
        "explore",
        r,
        "--seeds",
        "4",
        "--seed",
        "3",
        "--set",
        "checks.expect=[]",
        "--set",
        "cluster.conductors=3",
    ];
    let stdout = expect_code(
        "explore, nothing expected",
        &[&base[..], &["--out", "a", "--jobs", "2"]].concat(),
        &dir,
        1,
    );
    assert!(stdout.contains("failing    4 seed(s)"), "{stdout}");
    assert!(
        stdout.contains("reproduce  conductor-sim replay")
            && stdout
                .contains("--seed 3 --trace --set 'checks.expect=[]' --set cluster.conductors=3"),
        "{stdout}"
    );
    let a = std::fs::read_to_string(dir.join("a/explore.json")).expect("explore.json");
    let v: Value = serde_json::from_str(&a).expect("JSON");
    assert_eq!(v["seeds"], 4);
    let failing = v["failing"].as_array().expect("failing is an array");
    assert_eq!(failing.len(), 4);
    for (i, f) in failing.iter().enumerate() {
        assert_eq!(f["seed"], 3 + i as u64);
        assert!(f["faults"].is_array());
        let vs = f["violations"].as_array().expect("violations");
        assert!(!vs.is_empty());
        for viol in vs {
            for k in [
                "invariant",
                "container",
                "t_us",
                "time",
                "ops",
                "seed",
                "detail",
            ] {
                assert!(viol.get(k).is_some(), "a violation lacks `{k}`: {viol}");
            }
            assert_eq!(viol["seed"], f["seed"]);
        }
    }
    // by_invariant counts seeds.
    for name in ["exclusive", "per-container-order"] {
        assert_eq!(v["by_invariant"][name], 4, "{v:#}");
    }
    // The same inputs give the same bytes, however many seeds run at once.
    expect_code(
        "explore again",
        &[&base[..], &["--out", "b", "--jobs", "1"]].concat(),
        &dir,
        1,
    );
    let b = std::fs::read_to_string(dir.join("b/explore.json")).expect("explore.json");
    assert_eq!(a, b, "two explorations of the same seeds differ");

    // A shard runs its block of the seeds and finds the same failing seeds in it.
    expect_code(
        "explore --shard 2/2",
        &[&base[..], &["--out", "shard", "--shard", "2/2"]].concat(),
        &dir,
        1,
    );
    let sh: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("shard/explore.json")).expect("explore.json"),
    )
    .expect("JSON");
    assert_eq!(
        (sh["seeds"].as_u64(), sh["first_seed"].as_u64()),
        (Some(2), Some(5))
    );
    assert_eq!(sh["shard"], "2/2");
    assert_eq!(sh["failing"][0], v["failing"][2]);

    // Replaying a failing seed shows the violations explore reported.
    let seed = failing[1]["seed"].as_u64().expect("a seed").to_string();
    let stdout = expect_code(
        "replay of a failing seed",
        &[
            "replay",
            r,
            "--seed",
            &seed,
            "--set",
            "checks.expect=[]",
            "--set",
            "cluster.conductors=3",
            "--out",
            "replay",
        ],
        &dir,
        1,
    );
    assert!(stdout.contains("violations "), "{stdout}");
    let rep = read_report(&dir.join("replay/report.json"));
    assert_eq!(rep["invariants"]["violations"], failing[1]["violations"]);
    assert_eq!(rep["seed"].to_string(), seed);

    // With the scenario's own expectations, the same seeds pass.
    let stdout = expect_code(
        "explore, as expected",
        &["explore", r, "--seeds", "3", "--out", "c"],
        &dir,
        0,
    );
    assert!(stdout.contains("failing    0 seed(s)"), "{stdout}");
    let c: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("c/explore.json")).expect("explore.json"),
    )
    .expect("JSON");
    assert_eq!(c["failing"], serde_json::json!([]));
    assert_eq!(c["by_invariant"]["exclusive"], 3);
}

/// The trace lines of a replay's stdout (everything before the violations list).
fn trace_lines(stdout: &str) -> Vec<&str> {
    stdout
        .lines()
        .take_while(|l| !l.starts_with("violations "))
        .collect()
}

#[test]
fn replay_traces_are_deterministic_and_filter_by_container() {
    let dir = scratch("replay");
    let r = races();
    let args = ["replay", path_str(&r), "--seed", "2", "--trace"];
    let one = expect_code("replay --trace", &args, &dir, 0);
    let two = expect_code("replay --trace again", &args, &dir, 0);
    let (t1, t2) = (trace_lines(&one), trace_lines(&two));
    assert!(t1.len() > 1000, "{} trace lines", t1.len());
    assert_eq!(t1, t2, "two traces of one seed differ");
    // Every line: a simulated time, a node, what happened.
    for l in &t1 {
        let mut words = l.split_whitespace();
        let time = words.next().expect("a time");
        assert!(time.ends_with('s') && time.contains('.'), "not a time: {l}");
        let node = words.next().expect("a node");
        assert!(
            node == "api"
                || node == "checker"
                || node == "conductor"
                || node.starts_with("conductor-")
                || node.starts_with("host-"),
            "unexpected node in: {l}"
        );
    }
    assert!(t1.iter().any(|l| l.contains("VIOLATION exclusive")));
    // The summary follows the trace.
    assert!(one.contains("invariants 7 checked"), "{one}");

    let mut filtered = args.to_vec();
    filtered.extend(["--container", "2"]);
    let only = expect_code("replay --container", &filtered, &dir, 0);
    let lines = trace_lines(&only);
    assert!(!lines.is_empty());
    assert!(
        lines.len() < t1.len() / 2,
        "{} of {}",
        lines.len(),
        t1.len()
    );
    for l in &lines {
        assert!(l.contains(" c2"), "a line about another container: {l}");
    }
    // The filtered trace is the full trace's lines about the container, in order.
    let about: Vec<&str> = t1
        .iter()
        .copied()
        .filter(|l| l.contains(" c2 ") || l.contains(" c2:") || l.ends_with(" c2"))
        .collect();
    assert_eq!(lines, about);

    // Without --trace: the violations and the summary only.
    let quiet = expect_code(
        "replay without --trace",
        &["replay", path_str(&r), "--seed", "2", "--out", "quiet"],
        &dir,
        0,
    );
    assert!(quiet.starts_with("violations "), "{quiet}");
    // The same world as `run` and with a trace: the same report, `host` aside.
    expect_code(
        "replay --trace --out",
        &[&args[..], &["--out", "traced"]].concat(),
        &dir,
        0,
    );
    expect_code(
        "run of the same seed",
        &["run", path_str(&r), "--seed", "2", "--out", "run"],
        &dir,
        0,
    );
    let strip = |d: &str| {
        let mut v = read_report(&dir.join(d).join("report.json"));
        v.as_object_mut().expect("an object").remove("host");
        v
    };
    assert_eq!(strip("quiet"), strip("run"), "replay and run differ");
    assert_eq!(strip("traced"), strip("run"), "tracing changed the run");
}

#[test]
fn checks_expect_decides_the_exit_status() {
    let dir = scratch("expect");
    let r = races();
    let r = path_str(&r);
    let short = ["--set", "duration=\"1m\"", "--out", "out"];
    // Exactly the expected invariants break: pass.
    expect_code(
        "run as expected",
        &[&["run", r][..], &short].concat(),
        &dir,
        0,
    );
    let rep = read_report(&dir.join("out/report.json"));
    let inv = &rep["invariants"];
    assert_eq!(inv["expected"].as_array().map(Vec::len), Some(4));
    assert_eq!(inv["unexpected"], serde_json::json!([]));
    assert_eq!(inv["missing_expected"], serde_json::json!([]));
    assert!(inv["counts"]["exclusive"].as_u64().is_some_and(|n| n > 0));
    assert!(rep["per_seed"][0]["violations"]
        .as_u64()
        .is_some_and(|n| n > 0));
    // A violation not expected: fail.
    let set = "checks.expect=[\"exclusive\"]";
    expect_code(
        "run with an unexpected violation",
        &[&["run", r, "--set", set][..], &short].concat(),
        &dir,
        1,
    );
    let rep = read_report(&dir.join("out/report.json"));
    assert!(rep["invariants"]["unexpected"]
        .as_array()
        .is_some_and(|u| u.iter().any(|n| n == "per-container-order")));
    // An expected violation that did not happen: fail.
    let set = "checks.expect=[\"create-before-use\", \"no-use-after-delete\", \"exclusive\", \"per-container-order\", \"blocking-inline\"]";
    let stdout = expect_code(
        "run with an expected violation missing",
        &[&["run", r, "--set", set][..], &short].concat(),
        &dir,
        1,
    );
    assert!(
        stdout.contains("expected but held: blocking-inline"),
        "{stdout}"
    );
    let rep = read_report(&dir.join("out/report.json"));
    assert_eq!(
        rep["invariants"]["missing_expected"],
        serde_json::json!(["blocking-inline"])
    );
    // Nothing judged: nothing found, whatever happens.
    expect_code(
        "run judging nothing",
        &[
            &["run", r, "--set", "checks={invariants=[], expect=[]}"][..],
            &short,
        ]
        .concat(),
        &dir,
        0,
    );
    let rep = read_report(&dir.join("out/report.json"));
    assert_eq!(rep["invariants"]["violations"], serde_json::json!([]));
}

#[test]
fn checker_commands_refuse_bad_input() {
    let dir = scratch("checker-args");
    let r = races();
    let r = path_str(&r);
    refused(
        "an unknown invariant",
        &sim(
            &["run", r, "--set", "checks.invariants=[\"exclusiv\"]"],
            &dir,
        ),
        &[
            "races-no-ordering.toml",
            "checks.invariants",
            "exclusiv",
            "exclusive",
        ],
    );
    let src = std::fs::read_to_string(r).expect("reading the scenario");
    std::fs::write(
        dir.join("typo.toml"),
        src.replacen("\"at-most-once\",", "\"at-most-one\",", 1),
    )
    .expect("writing a scenario");
    let commands: [&[&str]; 4] = [
        &["check"],
        &["run"],
        &["explore", "--seeds", "2"],
        &["replay", "--seed", "1"],
    ];
    for cmd in commands {
        let mut args = vec![cmd[0], "typo.toml"];
        args.extend(&cmd[1..]);
        refused(
            &format!("{} with an unknown invariant", cmd[0]),
            &sim(&args, &dir),
            &["typo.toml", "checks.invariants", "at-most-one"],
        );
    }
    refused(
        "an expectation not judged",
        &sim(
            &[
                "check",
                r,
                "--set",
                "checks={invariants=[\"exclusive\"], expect=[\"converges\"]}",
            ],
            &dir,
        ),
        &["checks.expect", "converges"],
    );
    refused(
        "replay without --seed",
        &sim(&["replay", r, "--trace"], &dir),
        &["races-no-ordering.toml", "replay needs --seed"],
    );
    refused(
        "explore without --seeds",
        &sim(&["explore", r], &dir),
        &["races-no-ordering.toml", "explore needs --seeds"],
    );
    refused(
        "explore with a bad shard",
        &sim(&["explore", r, "--seeds", "4", "--shard", "5/4"], &dir),
        &["--shard", "5/4", "I/N"],
    );
    refused(
        "explore with zero seeds",
        &sim(&["explore", r, "--seeds", "0"], &dir),
        &["--seeds"],
    );
    refused(
        "replay of a bad container id",
        &sim(&["replay", r, "--seed", "1", "--container", "two"], &dir),
        &["--container", "two"],
    );
    assert!(!dir.join("reports").exists());
}

/// Determinism with faults: the reference under random partitions and kills of conductors, the
/// bus and the store gives the same explore.json (fault schedules included) and the same trace,
/// byte for byte, run after run and whatever the parallelism; and replay reproduces what
/// explore found on a known-bad design under faults.
#[test]
fn faults_are_deterministic_in_explore_and_replay() {
    let dir = scratch("faults-determinism");
    let reference = root().join("scenarios/reference.toml");
    let reference = path_str(&reference);
    let explore = |out: &str, jobs: &str| {
        expect_code(
            "explore of the reference",
            &[
                "explore",
                reference,
                "--seeds",
                "3",
                "--set",
                "duration=\"5m\"",
                "--jobs",
                jobs,
                "--out",
                out,
            ],
            &dir,
            0,
        );
        std::fs::read(dir.join(out).join("explore.json")).expect("explore.json")
    };
    let (a, b) = (explore("a", "1"), explore("b", "2"));
    assert_eq!(a, b, "explore.json differs between two runs");
    let v: Value = serde_json::from_slice(&a).expect("JSON");
    assert_eq!(v["seeds"], 3);
    let trace = || {
        expect_code(
            "replay of the reference with a trace",
            &[
                "replay",
                reference,
                "--seed",
                "2",
                "--trace",
                "--set",
                "duration=\"5m\"",
            ],
            &dir,
            0,
        )
    };
    let (t1, t2) = (trace(), trace());
    // Everything but the wall-clock figures of the summary's `host` line.
    let (l1, l2) = (trace_lines(&t1), trace_lines(&t2));
    assert!(l1.len() > 1000, "a trace of {} lines", l1.len());
    assert_eq!(l1, l2, "the trace differs between two runs");
    assert!(
        t1.contains("nemesis") && t1.contains(" begin: "),
        "the trace shows the faults"
    );

    // A known-bad design under faults: the violations explore reports for a seed are those
    // replay finds for it.
    let bad = root().join("scenarios/thread-state-check.toml");
    let bad = path_str(&bad);
    expect_code(
        "explore of a known-bad design, nothing expected",
        &[
            "explore",
            bad,
            "--seeds",
            "2",
            "--set",
            "checks.expect=[]",
            "--out",
            "bad",
        ],
        &dir,
        1,
    );
    let ex: Value =
        serde_json::from_slice(&std::fs::read(dir.join("bad/explore.json")).expect("explore.json"))
            .expect("JSON");
    let failing = &ex["failing"][0];
    let seed = failing["seed"].as_u64().expect("a failing seed");
    assert!(
        !failing["faults"].as_array().expect("faults").is_empty(),
        "the failing seed ran faults"
    );
    let seed_arg = seed.to_string();
    expect_code(
        "replay of the failing seed",
        &[
            "replay",
            bad,
            "--seed",
            &seed_arg,
            "--set",
            "checks.expect=[]",
            "--out",
            "replayed",
        ],
        &dir,
        1,
    );
    let rep = read_report(&dir.join("replayed/report.json"));
    assert_eq!(
        rep["invariants"]["violations"], failing["violations"],
        "replay of seed {seed} found other violations than explore"
    );
}

#[test]
fn shrink_refuses_bad_input_and_says_when_there_is_nothing_to_shrink() {
    let dir = scratch("shrink-bad");
    let races = races();
    let r = path_str(&races);
    refused(
        "an unknown invariant",
        &sim(
            &["shrink", r, "--seed", "1", "--invariant", "exclusiv"],
            &dir,
        ),
        &["--invariant exclusiv", "exclusive", "per-container-order"],
    );
    refused(
        "no seed",
        &sim(&["shrink", r, "--invariant", "exclusive"], &dir),
        &["--seed"],
    );
    refused(
        "no runs",
        &sim(&["shrink", r, "--seed", "1", "--max-runs", "0"], &dir),
        &["--max-runs"],
    );
    // A capacity run judges nothing, so it breaks nothing: nothing to shrink, exit 1, no file.
    let out = dir.join("none.toml");
    let stdout = expect_code(
        "nothing to shrink",
        &[
            "shrink",
            path_str(&baseline()),
            "--seed",
            "1",
            "--set",
            "duration=\"2m\"",
            "--out",
            path_str(&out),
        ],
        &dir,
        1,
    );
    assert!(stdout.contains("nothing to shrink"), "{stdout}");
    assert!(!out.exists());
}

#[test]
fn explore_stops_after_failing_seeds_and_on_a_time_budget() {
    let dir = scratch("explore-stop");
    let races = races();
    let r = path_str(&races);
    let read = |out: &Path| -> Value {
        serde_json::from_str(&std::fs::read_to_string(out.join("explore.json")).unwrap()).unwrap()
    };
    // --stop-after 2: the first two failing seeds in seed order, and no seed after the second.
    let out = dir.join("after");
    let stdout = expect_code(
        "stop-after",
        &[
            "explore",
            r,
            "--seeds",
            "50",
            "--stop-after",
            "2",
            "--set",
            "checks.expect=[]",
            "--out",
            path_str(&out),
        ],
        &dir,
        1,
    );
    let v = read(&out);
    let failing = v["failing"].as_array().unwrap();
    assert_eq!(failing.len(), 2, "{v}");
    let last = failing[1]["seed"].as_u64().unwrap();
    let first = v["first_seed"].as_u64().unwrap();
    assert_eq!(v["seeds"].as_u64().unwrap(), last - first + 1, "{v}");
    assert!(
        stdout.contains("hunt ") && stdout.contains("conductor-sim shrink"),
        "{stdout}"
    );
    // --for: however fast the machine, a contiguous prefix of at least one seed, said in the
    // file; every failing seed inside it.
    let out = dir.join("budget");
    let _ = sim(
        &[
            "explore",
            r,
            "--seeds",
            "100000",
            "--for",
            "1ms",
            "--out",
            path_str(&out),
        ],
        &dir,
    );
    let v = read(&out);
    let ran = v["seeds"].as_u64().unwrap();
    assert!((1..100_000).contains(&ran), "{v}");
    assert_eq!(v["stopped"]["requested"], 100_000, "{v}");
    assert_eq!(v["stopped"]["by"], "time budget", "{v}");
    for f in v["failing"].as_array().unwrap() {
        assert!(f["seed"].as_u64().unwrap() < first + ran, "{v}");
    }
    refused(
        "a bad budget",
        &sim(&["explore", r, "--seeds", "3", "--for", "soon"], &dir),
        &["--for"],
    );
}

#[test]
fn every_new_objective_is_judged_in_run_and_written_with_limit_value_and_verdict() {
    let dir = scratch("objectives");
    let b = baseline();
    let out = sim(
        &[
            "run",
            b.to_str().expect("UTF-8"),
            "--set",
            "duration=\"3m\"",
            "--set",
            "slo.failed_ratio_max=0.0",
            "--set",
            "slo.rejected_ratio_max=0.0",
            "--set",
            "slo.goodput_min=1000",
            "--set",
            "slo.accept_p99_max=\"1us\"",
            "--set",
            "slo.p999_max=\"1h\"",
            "--set",
            "slo.by_op.start.p50_max=\"1h\"",
            "--set",
            "slo.by_op.start.p99_max=\"1ms\"",
            "--out",
            "out",
        ],
        &dir,
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let rep = read_report(&dir.join("out/report.json"));
    let failed: Vec<&str> = rep["slo"]["failed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    // The baseline fails nothing and refuses nothing; 8 starts per second are not 1000.
    assert_eq!(
        failed,
        ["goodput_min", "accept_p99_max", "by_op.start.p99_max"],
        "{}",
        rep["slo"]
    );
    let checks = rep["slo"]["checks"].as_array().unwrap();
    let names: Vec<&str> = checks.iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "exhaustion_ratio_max",
            "p99_max",
            "p999_max",
            "failed_ratio_max",
            "rejected_ratio_max",
            "goodput_min",
            "accept_p99_max",
            "by_op.start.p50_max",
            "by_op.start.p99_max"
        ]
    );
    let goodput = &checks[5];
    assert_eq!(goodput["limit"], 1000.0);
    let g = goodput["value"].as_f64().unwrap();
    assert!(
        (7.0..9.0).contains(&g),
        "goodput {g}/s at 8 arrivals per second"
    );
    assert_eq!(
        checks[6]["value"], rep["latency_ms"]["accept"]["p99"],
        "accept_p99_max measures latency_ms.accept.p99"
    );
    assert_eq!(
        checks[8]["value"],
        rep["latency_ms"]["by_op"]["start"]["p99"]
    );
    let summary = text(&out.stdout);
    assert!(summary.contains("goodput_min"), "{summary}");
    assert!(summary.contains("(min 1000/s) FAIL"), "{summary}");
}

#[test]
fn bad_objectives_exit_2_naming_file_key_and_expectation() {
    let dir = scratch("bad-objectives");
    let b = baseline();
    for (set, needles) in [
        (
            "slo.failed_ratio_max=1.5",
            &["slo.failed_ratio_max", "[0, 1]"][..],
        ),
        (
            "slo.rejected_ratio_max=nan",
            &["slo.rejected_ratio_max", "[0, 1]"],
        ),
        ("slo.goodput_min=-2", &["slo.goodput_min", ">= 0"]),
        (
            "slo.by_op.launch.p99_max=\"1s\"",
            &["slo.by_op.launch", "create"],
        ),
        ("slo.p98_max=\"1s\"", &["slo.p98_max", "p999_max"]),
    ] {
        let out = sim(
            &[
                "run",
                b.to_str().expect("UTF-8"),
                "--set",
                set,
                "--out",
                "out",
            ],
            &dir,
        );
        let mut n = vec!["baseline.toml"];
        n.extend_from_slice(needles);
        refused(set, &out, &n);
    }
}

#[test]
fn a_closed_stdout_ends_quietly_with_the_usual_status() {
    use std::process::Stdio;
    let dir = scratch("pipe");
    let b = baseline();
    let mut child = Command::new(BIN)
        .args([
            "run",
            b.to_str().expect("UTF-8"),
            "--set",
            "duration=\"2m\"",
            "--out",
            "out",
        ])
        .current_dir(&dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("running conductor-sim");
    // `| head -0`: the reader goes away before anything is written.
    drop(child.stdout.take());
    let out = child.wait_with_output().expect("waiting for conductor-sim");
    let err = text(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
    // The baseline meets its SLO: the status is the run's own, 0 (a panic would be 101).
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(dir.join("out/report.json").exists());
}

#[test]
fn an_unwritable_out_is_refused_before_the_run() {
    let dir = scratch("unwritable");
    let b = baseline();
    // A directory no one can create files in, root included. Found after the run, this would
    // be exit 3 (a report that could not be written) after an hour of simulated time.
    let out = sim(
        &["run", b.to_str().expect("UTF-8"), "--out", "/proc/self"],
        &dir,
    );
    refused(
        "--out /proc/self",
        &out,
        &["--out /proc/self", "cannot write in it"],
    );
    let out = sim(
        &[
            "sweep",
            b.to_str().expect("UTF-8"),
            "--grid",
            "cluster.pool_workers=9..10",
            "--seeds",
            "1",
            "--out",
            "/proc/self",
        ],
        &dir,
    );
    refused(
        "sweep --out /proc/self",
        &out,
        &["--out /proc/self", "cannot write in it"],
    );
}

#[test]
fn run_computes_erlang_b_from_the_measured_arrival_rate() {
    let dir = scratch("erlang-measured");
    let b = baseline();
    let out = sim(
        &[
            "run",
            b.to_str().expect("UTF-8"),
            "--set",
            "duration=\"5m\"",
            "--seeds",
            "2",
            "--out",
            "out",
        ],
        &dir,
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let rep = read_report(&dir.join("out/report.json"));
    let e = &rep["pool"]["erlang_b"];
    // 5 minutes less the 1-minute warm-up, two seeds.
    let measured = rep["pool"]["arrivals"].as_f64().unwrap() / 2.0 / 240.0;
    let lambda = e["arrival_rate_per_s"].as_f64().unwrap();
    assert!((lambda - measured).abs() < 1e-5, "{lambda} vs {measured}");
    // Not the configured 8/s (the seeds' counts are not exactly 8 × 240 each).
    assert_ne!(lambda, 8.0);
    let a = lambda * rep["pool"]["mean_hold_ms"].as_f64().unwrap() / 1e3;
    assert!((e["offered_erlangs"].as_f64().unwrap() - a).abs() < 1e-4);
}
