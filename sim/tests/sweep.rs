//! `conductor-sim sweep` and `merge` through the command line: bad grid specs exit 2 naming
//! the flag, the same sweep gives the same bytes twice, and shards merged give exactly what
//! one unsharded sweep writes.

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

fn baseline() -> String {
    root().join("scenarios/baseline.toml").display().to_string()
}

/// A fresh directory for one test.
fn scratch(name: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("sweep-{name}"));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("creating a scratch directory");
    d
}

fn sim(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .output()
        .expect("running conductor-sim")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn ok(what: &str, out: &Output) {
    assert_eq!(
        out.status.code(),
        Some(0),
        "{what}: exit {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        text(&out.stdout),
        text(&out.stderr)
    );
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("reading {}: {e}", p.display()))
}

/// A small sweep of the baseline: 10 simulated minutes, 3 pool sizes, 3 paired seeds, with a
/// tight SLO so that the headroom search runs too.
fn small_sweep<'a>(out: &'a str, extra: &[&'a str]) -> Vec<String> {
    let mut v: Vec<String> = [
        "sweep",
        &baseline(),
        "--set",
        "duration=\"10m\"",
        "--set",
        "slo.exhaustion_ratio_max=0.2",
        "--grid",
        "cluster.pool_workers=9..11",
        "--seeds",
        "3",
        "--csv",
        "--out",
        out,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    v.extend(extra.iter().map(|s| s.to_string()));
    v
}

fn run_sweep(args: &[String]) -> Output {
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    sim(&refs)
}

#[test]
fn the_same_sweep_gives_the_same_bytes() {
    let dir = scratch("determinism");
    let (a, b) = (dir.join("a"), dir.join("b"));
    let out_a = run_sweep(&small_sweep(a.to_str().unwrap(), &["--jobs", "2"]));
    ok("first sweep", &out_a);
    let out_b = run_sweep(&small_sweep(b.to_str().unwrap(), &["--jobs", "1"]));
    ok("second sweep", &out_b);
    for f in ["sweep.json", "report.html", "sweep.csv", "timeseries.csv"] {
        assert!(
            read(&a.join(f)) == read(&b.join(f)),
            "{f} differs between two identical sweeps"
        );
    }
    let v: Value = serde_json::from_str(&read(&a.join("sweep.json"))).unwrap();
    let rows = v["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[0]["params"]["cluster.pool_workers"], 9);
    for key in ["exhaustion_ratio", "p99_ms", "throughput_per_s"] {
        assert!(rows[0].get(key).is_some(), "rows[].{key}");
    }
    assert!(
        rows[0]["exhaustion_ratio"]["ci95"]
            .as_array()
            .unwrap()
            .len()
            == 2
    );
    assert!(v.get("recommendation").is_some());
    assert!(v.get("host").is_none(), "no wall time in sweep.json");
    // The table on stdout names every row and the recommendation.
    let table = text(&out_a.stdout);
    assert!(table.contains("pool_workers"), "{table}");
    assert!(table.contains("recommendation"), "{table}");
    // Paired seeds: every row ran seeds 1..3 — the same arrivals, so more workers can only
    // help each seed.
    let per_seed = |r: &Value| -> Vec<f64> {
        r["per_seed_exhaustion_ratio"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap())
            .collect()
    };
    let (r9, r11) = (per_seed(&rows[0]), per_seed(&rows[2]));
    assert_eq!(r9.len(), 3);
    for (x, y) in r9.iter().zip(&r11) {
        assert!(
            y < x,
            "11 workers exhausted more often than 9 on one seed: {y} vs {x}"
        );
    }
    // The HTML is one self-contained file with its plots inline.
    let html = read(&a.join("report.html"));
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(html.matches("<svg").count() >= 4, "plots inline");
    assert!(!html.contains("<script src") && !html.contains("<link"));
}

#[test]
fn shards_merged_equal_the_unsharded_sweep() {
    let dir = scratch("shards");
    let whole = dir.join("whole");
    ok(
        "unsharded",
        &run_sweep(&small_sweep(whole.to_str().unwrap(), &[])),
    );
    let (s1, s2) = (dir.join("s1"), dir.join("s2"));
    let o1 = run_sweep(&small_sweep(s1.to_str().unwrap(), &["--shard", "1/2"]));
    ok("shard 1/2", &o1);
    assert!(text(&o1.stdout).contains("shard 1/2"));
    assert!(
        !s1.join("sweep.json").exists(),
        "a shard writes no sweep.json"
    );
    ok(
        "shard 2/2",
        &run_sweep(&small_sweep(s2.to_str().unwrap(), &["--shard", "2/2"])),
    );
    let merged = dir.join("merged");
    // Shards given in any order.
    let m = sim(&[
        "merge",
        s2.to_str().unwrap(),
        s1.to_str().unwrap(),
        "--csv",
        "--jobs",
        "2",
        "--out",
        merged.to_str().unwrap(),
    ]);
    ok("merge", &m);
    for f in ["sweep.json", "report.html", "sweep.csv", "timeseries.csv"] {
        assert!(
            read(&whole.join(f)) == read(&merged.join(f)),
            "{f}: merged shards differ from the unsharded sweep"
        );
    }
    // The headroom search ran at the merge, with the same seeds: part of the equality.
    let v: Value = serde_json::from_str(&read(&merged.join("sweep.json"))).unwrap();
    assert!(
        !v["headroom"]["probes"].as_array().unwrap().is_empty(),
        "{}",
        v["headroom"]
    );
    // A missing shard, or one given twice, is bad input.
    let missing = sim(&[
        "merge",
        s1.to_str().unwrap(),
        "--out",
        dir.join("x").to_str().unwrap(),
    ]);
    assert_eq!(missing.status.code(), Some(2), "{}", text(&missing.stderr));
    assert!(text(&missing.stderr).contains("missing shard(s) 2/2"));
    let twice = sim(&["merge", s1.to_str().unwrap(), s1.to_str().unwrap()]);
    assert_eq!(twice.status.code(), Some(2));
    assert!(text(&twice.stderr).contains("given twice"));
    let not_a_shard = sim(&["merge", whole.to_str().unwrap()]);
    assert_eq!(not_a_shard.status.code(), Some(2));
    assert!(text(&not_a_shard.stderr).contains("shard.json"));
}

#[test]
fn bad_grid_specs_exit_2_naming_the_flag() {
    let b = baseline();
    let cases: [(&[&str], &[&str]); 10] = [
        (
            &["--grid", "cluster.pool_wrokers=1..3"],
            &["--grid `cluster.pool_wrokers=1..3`", "unknown key"],
        ),
        (
            &["--grid", "cluster.pool_workers=12..8"],
            &["--grid", "below A"],
        ),
        (
            &["--grid", "cluster.pool_workers=8..12:0"],
            &["--grid", "STEP must be a positive"],
        ),
        (
            &["--grid", "cluster.pool_workers=8..12:-2"],
            &["--grid", "STEP must be a positive"],
        ),
        (
            &["--grid", "cluster.pool_workers=eight..12"],
            &["--grid", "A must be a number"],
        ),
        (
            &["--grid", "cluster.pool_workers"],
            &["--grid", "expected KEY=A..B[:STEP]"],
        ),
        (
            &["--grid", "cluster.pool_workers=1..2000"],
            &["--grid", "at most 1000 rows"],
        ),
        (
            &[
                "--grid",
                "cluster.pool_workers=1..100",
                "--grid",
                "cluster.rpc_workers=1..100",
            ],
            &["--grid", "more than 1000 rows"],
        ),
        (
            &["--grid", "cluster.overflow=1..2"],
            &["--grid `cluster.overflow=1..2`", "cluster.overflow"],
        ),
        // Listed keywords are taken (as compare's and matrix's), and a bad one is named.
        (
            &["--grid", "cluster.overflow=queue,sideways"],
            &[
                "--grid `cluster.overflow=queue,sideways`",
                "cluster.overflow",
                "sideways",
            ],
        ),
    ];
    for (extra, needles) in cases {
        let mut args = vec!["sweep", b.as_str(), "--seeds", "1"];
        args.extend_from_slice(extra);
        let out = sim(&args);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{extra:?}: {err}");
        for n in needles {
            assert!(err.contains(n), "{extra:?}: stderr lacks {n:?}: {err}");
        }
        assert!(!err.contains("panicked"), "{err}");
    }
    let no_grid = sim(&["sweep", b.as_str(), "--seeds", "1"]);
    assert_eq!(no_grid.status.code(), Some(2));
    assert!(text(&no_grid.stderr).contains("at least one --grid"));
    let bad_shard = sim(&[
        "sweep",
        b.as_str(),
        "--seeds",
        "1",
        "--grid",
        "cluster.pool_workers=8..9",
        "--shard",
        "3/2",
    ]);
    assert_eq!(bad_shard.status.code(), Some(2));
    assert!(text(&bad_shard.stderr).contains("--shard `3/2`: expected I/N"));
}

#[test]
fn run_writes_report_html_and_timeseries_csv() {
    let dir = scratch("run-html");
    let out = sim(&[
        "run",
        &baseline(),
        "--set",
        "duration=\"5m\"",
        "--seeds",
        "2",
        "--csv",
        "--out",
        dir.to_str().unwrap(),
    ]);
    ok("run", &out);
    let html = read(&dir.join("report.html"));
    assert!(html.contains("Exhaustion ratio against pool size"));
    assert!(html.contains("Completion latency by percentile"));
    assert!(html.contains("busy pool workers"));
    let csv = read(&dir.join("timeseries.csv"));
    let mut lines = csv.lines();
    assert!(lines
        .next()
        .unwrap()
        .starts_with("start_s,end_s,pool_busy_mean"));
    let n = lines.count();
    assert!((10..=512).contains(&n), "{n} buckets");
    // report.json keeps its keys: no time series in it.
    let rep: Value = serde_json::from_str(&read(&dir.join("report.json"))).unwrap();
    assert!(rep.get("timeseries").is_none());
}

#[test]
fn no_qualifying_row_is_said_not_an_error() {
    let dir = scratch("none");
    let out = sim(&[
        "sweep",
        &baseline(),
        "--set",
        "duration=\"3m\"",
        "--set",
        "slo.exhaustion_ratio_max=0.0001",
        "--grid",
        "cluster.pool_workers=6..7",
        "--seeds",
        "2",
        "--out",
        dir.to_str().unwrap(),
    ]);
    ok("sweep with an SLO no row meets", &out);
    let table = text(&out.stdout);
    assert!(
        table.contains("recommendation  none: no row meets"),
        "{table}"
    );
    let v: Value = serde_json::from_str(&read(&dir.join("sweep.json"))).unwrap();
    assert!(v["recommendation"].is_null());
    assert!(v["headroom"].is_null());
    assert!(v["rows"][0]["slo"]["failed"][0] == "exhaustion_ratio_max");
}

#[test]
fn each_row_is_judged_against_its_own_slo() {
    let dir = scratch("own-slo");
    let out = sim(&[
        "sweep",
        &baseline(),
        "--set",
        "duration=\"3m\"",
        "--grid",
        "slo.exhaustion_ratio_max=0.05..0.45:0.4",
        // A size key with one value: a grid without one recommends nothing.
        "--grid",
        "cluster.pool_workers=10..10",
        "--seeds",
        "1",
        "--no-headroom",
        "--out",
        dir.to_str().unwrap(),
    ]);
    ok("sweep over an SLO key", &out);
    let v: Value = serde_json::from_str(&read(&dir.join("sweep.json"))).unwrap();
    assert_eq!(v["rows"][0]["slo"]["pass"], false);
    assert_eq!(v["rows"][1]["slo"]["pass"], true);
    assert_eq!(v["recommendation"]["slo.exhaustion_ratio_max"], 0.45);
}

fn scenario(name: &str) -> String {
    root().join("scenarios").join(name).display().to_string()
}

#[test]
fn run_with_faults_shades_the_schedule_it_ran() {
    let dir = scratch("run-faults");
    let out = sim(&[
        "run",
        &baseline(),
        "--set",
        "duration=\"4m\"",
        "--set",
        "faults=[{kind=\"kill\",at=\"1m\",node=\"conductor-1\",restart_after=\"30s\"},\
                 {kind=\"pause\",at=\"3m\",node=\"store\",duration=\"20s\"}]",
        "--seeds",
        "2",
        "--out",
        dir.to_str().unwrap(),
    ]);
    // The kill may break the baseline's SLO (exit 1): the report is written either way.
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "run with faults: {}",
        text(&out.stderr)
    );
    let html = read(&dir.join("report.html"));
    // Occupancy (three panels) and retries: each fault labelled in every time plot.
    assert_eq!(html.matches("kill conductor-1").count(), 4, "kill label");
    assert_eq!(html.matches("pause store").count(), 4, "pause label");
    assert!(
        html.contains("Shaded: the 2 fault(s) every seed ran"),
        "the note says whose schedule is shaded"
    );
    // A run without faults says nothing of them.
    let calm = scratch("run-calm");
    ok(
        "run without faults",
        &sim(&[
            "run",
            &baseline(),
            "--set",
            "duration=\"2m\"",
            "--out",
            calm.to_str().unwrap(),
        ]),
    );
    assert!(!read(&calm.join("report.html")).contains("Shaded:"));
}

#[test]
fn a_run_with_violations_draws_their_timelines() {
    let dir = scratch("run-races");
    let out = sim(&[
        "run",
        &scenario("races-no-ordering.toml"),
        "--out",
        dir.to_str().unwrap(),
    ]);
    ok("races-no-ordering (its violations are expected)", &out);
    let rep: Value = serde_json::from_str(&read(&dir.join("report.json"))).unwrap();
    let v = &rep["invariants"]["violations"];
    let exclusive = v
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["invariant"] == "exclusive")
        .expect("an exclusive violation");
    // The checker gives each op's host interval, and the two of `exclusive` overlap.
    let ops = exclusive["ops"].as_array().unwrap();
    assert_eq!(ops.len(), 2);
    let span = |o: &Value| {
        (
            o["start_us"].as_u64().unwrap(),
            o["end_us"].as_u64().unwrap(),
        )
    };
    let ((a0, a1), (b0, b1)) = (span(&ops[0]), span(&ops[1]));
    assert!(a0 < b1 && b0 < a1, "[{a0}, {a1}) and [{b0}, {b1}) overlap");
    let html = read(&dir.join("report.html"));
    assert!(html.contains("Violation timelines"));
    for inv in [
        "create-before-use",
        "no-use-after-delete",
        "exclusive",
        "per-container-order",
    ] {
        assert!(
            html.contains(&format!("{inv}: container ")),
            "a timeline of {inv}"
        );
    }
    assert!(html.contains("involved"), "the ops involved are labelled");
    // replay --out writes the same kind of page for one seed.
    let rdir = scratch("replay-races");
    let out = sim(&[
        "replay",
        &scenario("races-no-ordering.toml"),
        "--seed",
        "1",
        "--out",
        rdir.to_str().unwrap(),
    ]);
    ok("replay --out", &out);
    let replayed = read(&rdir.join("report.html"));
    assert!(replayed.contains("Violation timelines"));
    assert!(text(&out.stdout).contains("report.html"));
}

#[test]
fn explore_writes_a_deterministic_report_html() {
    let dir = scratch("explore-html");
    let explore = |out: &Path, jobs: &str| {
        sim(&[
            "explore",
            &scenario("thread-state-check.toml"),
            "--seeds",
            "4",
            "--jobs",
            jobs,
            "--set",
            "checks.expect=[]",
            "--out",
            out.to_str().unwrap(),
        ])
    };
    let (a, b) = (dir.join("a"), dir.join("b"));
    let out = explore(&a, "2");
    assert_eq!(out.status.code(), Some(1), "every seed breaks exclusive");
    assert_eq!(explore(&b, "1").status.code(), Some(1));
    let html = read(&a.join("report.html"));
    assert!(
        html == read(&b.join("report.html")),
        "report.html differs between two identical explorations"
    );
    assert!(text(&out.stdout).contains("report.html"));
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(html.contains("Seeds in which each invariant broke"));
    assert!(html.contains("Failing seeds"));
    assert!(html.contains("Seed 1: fault schedule"));
    assert!(
        html.contains("exclusive: container "),
        "the first seed's timeline"
    );
    assert!(html.contains("kill conductor-"), "its faults");
    assert!(!html.contains("<script src") && !html.contains("<link"));
}

#[test]
fn a_rate_only_sweep_recommends_nothing_and_says_why() {
    let dir = scratch("rate-only");
    let out = sim(&[
        "sweep",
        &baseline(),
        "--set",
        "duration=\"3m\"",
        "--grid",
        "workload.arrival.rate=4.0..8.0:4.0",
        "--seeds",
        "1",
        "--csv",
        "--out",
        dir.to_str().unwrap(),
    ]);
    ok("a sweep of the arrival rate alone", &out);
    let table = text(&out.stdout);
    assert!(table.contains("recommendation  none: the grid"), "{table}");
    assert!(table.contains("no size key"), "{table}");
    // The headroom search needs a recommendation: it does not run, and says nothing of it.
    assert!(!table.contains("with the headroom search"), "{table}");
    let v: Value = serde_json::from_str(&read(&dir.join("sweep.json"))).unwrap();
    assert!(v["recommendation"].is_null());
    // Both rows pass the baseline's SLO: the cheapest would have been the lowest rate.
    assert_eq!(v["rows"][0]["slo"]["pass"], true);
    assert!(v["recommendation_note"]
        .as_str()
        .unwrap()
        .contains("cluster.pool_workers"));
    // sweep.csv: the old columns first, unchanged, then the new ones.
    let csv = read(&dir.join("sweep.csv"));
    let header = csv.lines().next().unwrap();
    assert!(
        header.starts_with(
            "workload.arrival.rate,exhaustion_ratio_mean,ci95_lo,ci95_hi,p50_ms,p99_ms,\
             throughput_per_s,mean_hold_ms,conductors,pool_workers,cost,erlang_b,\
             erlang_b_flagged,slo_pass,recommended,recovery_median_s,recovery_max_s,\
             unrecovered_seeds,stuck_seeds,metastable,accept_p99_ms,rpc_slots,slo_failed,\
             slo.exhaustion_ratio_max,slo.p99_max"
        ),
        "{header}"
    );
    // The accept p99 is in the table and in each row.
    assert!(table.contains("accept p99"), "{table}");
    assert!(v["rows"][1]["accept_p99_ms"].as_f64().unwrap() > 0.0);
}

#[test]
fn a_load_factor_recommends_a_size_that_holds_at_the_higher_load() {
    // E_B(c, 8) for c = 10..13: 0.12, 0.084, 0.055, 0.034; at 1.5 × the load (12 erlangs)
    // the same sizes block 0.30, 0.24, 0.19, 0.14: a 10% objective needs more workers.
    let dir = scratch("load-factor");
    let run = |extra: &[&str], out: &str| {
        let o = dir.join(out);
        let mut args = vec![
            "sweep".to_string(),
            baseline(),
            "--set".into(),
            "duration=\"10m\"".into(),
            "--set".into(),
            "slo.exhaustion_ratio_max=0.1".into(),
            "--grid".into(),
            "cluster.pool_workers=10..18:2".into(),
            "--seeds".into(),
            "2".into(),
            "--no-headroom".into(),
            "--out".into(),
            o.display().to_string(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = sim(&args);
        ok("sweep", &out);
        let v: Value = serde_json::from_str(&read(&o.join("sweep.json"))).unwrap();
        (v, text(&out.stdout))
    };
    let (plain, _) = run(&[], "plain");
    let (scaled, table) = run(&["--load-factor", "1.5"], "scaled");
    let workers = |v: &Value| {
        v["recommendation"]["cluster.pool_workers"]
            .as_i64()
            .unwrap()
    };
    assert!(
        workers(&scaled) > workers(&plain),
        "×1.5 recommends {} workers, ×1 {}\n{table}",
        workers(&scaled),
        workers(&plain)
    );
    let lf = &scaled["load_factor"];
    assert_eq!(lf["factor"], 1.5);
    assert_eq!(lf["scaled"][0], "workload.arrival.rate");
    let probes = lf["probes"].as_array().unwrap();
    // The cheapest row of ×1 was probed first and failed at ×1.5; the last probe holds.
    assert_eq!(probes[0]["params"]["cluster.pool_workers"], workers(&plain));
    assert_eq!(probes[0]["pass"], false);
    assert_eq!(probes.last().unwrap()["pass"], true);
    assert!(plain.get("load_factor").is_none());
    assert!(table.contains("load factor     ×1.5"), "{table}");
    assert!(table.contains("the load-factor search (×1.5)"), "{table}");
    assert!(!table.contains("headroom search"), "{table}");
    // A load factor that is not a positive number is bad input.
    for bad in ["0", "-1", "nan", "inf"] {
        // `--load-factor=-1`: a separate `-1` would read as a flag.
        let flag = format!("--load-factor={bad}");
        let out = sim(&[
            "sweep",
            &baseline(),
            "--grid",
            "cluster.pool_workers=9..10",
            "--seeds",
            "1",
            &flag,
        ]);
        assert_eq!(out.status.code(), Some(2), "{bad}: {}", text(&out.stderr));
        assert!(
            text(&out.stderr).contains("--load-factor"),
            "{}",
            text(&out.stderr)
        );
    }
}
