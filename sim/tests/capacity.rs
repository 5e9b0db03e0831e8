//! Capacity planning with real workloads (issue 12) through the command line: the false PASS of
//! a create/start/stop mix on the `ops` model now warns, the same question on the `mixed` model
//! gets a sensible recommendation from `sweep`, and service times from a Prometheus histogram
//! agree with Erlang B at the histogram's *sampled* mean hold.

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

/// A fresh directory for one test.
fn scratch(name: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("capacity-{name}"));
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

fn json(p: &Path) -> Value {
    let s = std::fs::read_to_string(p).unwrap_or_else(|e| panic!("reading {}: {e}", p.display()));
    serde_json::from_str(&s).expect("valid JSON")
}

fn f(v: &Value, path: &str) -> f64 {
    v.pointer(path)
        .and_then(Value::as_f64)
        .unwrap_or_else(|| panic!("{path} in {v}"))
}

/// The SRE's question of the issue on the `ops` model: ~40 creates/min plus ~200 starts and
/// stops/min, create lognormal median 8 s, p99 40 s, three conductors.
const FALSE_PASS: &str = r#"name = "false-pass"
duration = "10m"
warmup = "1m"
drain = "5m"
[cluster]
conductors = 3
hosts = 6
pool_workers = 12
[api]
validate_state = true
[workload]
arrival = { kind = "poisson", rate = 4.0 }
containers = 2000
mix = { create = 40.0, start = 100.0, stop = 100.0 }
[backend]
default = { dist = "lognormal", median = "2s", p99 = "8s" }
create = { dist = "lognormal", median = "8s", p99 = "40s" }
[checks]
invariants = []
[slo]
exhaustion_ratio_max = 0.01
p99_max = "30s"
"#;

#[test]
fn the_false_pass_of_creates_on_the_ops_model_warns() {
    let dir = scratch("false-pass");
    let file = dir.join("false-pass.toml");
    std::fs::write(&file, FALSE_PASS).unwrap();
    let file = file.display().to_string();
    // `check` tells from the file alone.
    let out = sim(&["check", &file]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(
        err.contains("warning: workload.mix: 17% of the `ops` model's requests are creates")
            && err.contains("model = \"mixed\""),
        "{err}"
    );
    // The run: most starts (on running containers) and every create are refused.
    let o = dir.join("out").display().to_string();
    let out = sim(&["run", &file, "--seeds", "1", "--out", &o]);
    let err = text(&out.stderr);
    let rep = json(&dir.join("out/report.json"));
    let refused = f(&rep, "/ops/rejected") / f(&rep, "/ops/submitted");
    assert!(refused > 0.3, "{refused}");
    assert!(
        err.contains(&format!(
            "warning: {:.0}% of the requests were refused by the API (Zun's state validation",
            refused * 100.0
        )) && err.contains("use `workload.model = \"mixed\"`"),
        "{err}"
    );
    // Without the validation every create holds a worker and fails at the host.
    let out = sim(&[
        "run",
        &file,
        "--seeds",
        "1",
        "--set",
        "api.validate_state=false",
        "--out",
        &o,
    ]);
    let err = text(&out.stderr);
    assert!(
        err.contains("of the accepted ops failed: creates on the `ops` model"),
        "{err}"
    );
    // The objectives that catch it: a failure-ratio SLO fails the run without the validation,
    // a refusal-ratio SLO the run with it (exit 1, the objective named), where the pool's own
    // objectives alone pass both.
    let judged = |sets: &[&str]| {
        let mut args = vec!["run", &file, "--seeds", "1", "--out", &o];
        for s in sets {
            args.extend(["--set", s]);
        }
        let out = sim(&args);
        let rep = json(&dir.join("out/report.json"));
        (out.status.code(), text(&out.stdout), rep)
    };
    let (code, _, rep) = judged(&["api.validate_state=false"]);
    assert_eq!(code, Some(0), "the pool's objectives alone pass: {rep}");
    let (code, stdout, rep) = judged(&["api.validate_state=false", "slo.failed_ratio_max=0.01"]);
    assert_eq!(code, Some(1), "{stdout}");
    assert_eq!(rep.pointer("/slo/pass"), Some(&Value::Bool(false)), "{rep}");
    assert!(stdout.contains("failed_ratio_max"), "{stdout}");
    let (code, stdout, _) = judged(&["slo.rejected_ratio_max=0.05"]);
    assert_eq!(code, Some(1), "{stdout}");
    assert!(stdout.contains("rejected_ratio_max"), "{stdout}");
}

#[test]
fn the_same_question_on_the_mixed_model_gets_a_sensible_recommendation() {
    let dir = scratch("mixed-sweep");
    let file = root().join("scenarios/capacity/zun-like.toml");
    let file = file.display().to_string();
    let out = sim(&["check", &file]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stderr).is_empty(), "{}", text(&out.stderr));
    let o = dir.join("out").display().to_string();
    let out = sim(&[
        "sweep",
        &file,
        "--set",
        "duration=\"30m\"",
        "--grid",
        "cluster.pool_workers=6,9,12,15",
        "--seeds",
        "4",
        "--no-headroom",
        "--out",
        &o,
    ]);
    let stdout = text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        text(&out.stderr)
    );
    let sw = json(&dir.join("out/sweep.json"));
    let rows = sw["rows"].as_array().expect("rows");
    let rec = sw["recommendation"]["cluster.pool_workers"]
        .as_u64()
        .unwrap_or_else(|| panic!("a recommendation: {stdout}"));
    // Sensible: every size from the recommended one up meets the SLO, every smaller one fails,
    // and it is neither the grid's smallest nor its largest (Erlang B: 11 or 12 workers).
    for r in rows {
        let w = r["pool_workers"].as_u64().unwrap();
        let pass = r["slo"]["pass"].as_bool().unwrap();
        assert_eq!(pass, w >= rec, "row {w}: {r}");
    }
    assert!(rec > 6 && rec < 15, "{rec}\n{stdout}");
    // Against Erlang B at the measured load per conductor: the recommended pool is the first
    // whose loss is near 1%, one fewer is well above it.
    let r = rows
        .iter()
        .find(|r| r["pool_workers"].as_u64() == Some(rec))
        .unwrap();
    // Pool arrivals per second per conductor: 4 seeds, 25 measured minutes, 3 conductors.
    let per_conductor = f(r, "/arrivals") / 4.0 / (25.0 * 60.0) / 3.0;
    let a = per_conductor * f(r, "/mean_hold_ms") / 1000.0;
    let eb = |c: u64| (1..=c).fold(1.0, |b: f64, k| a * b / (k as f64 + a * b));
    assert!(eb(rec) < 0.03 && eb(rec - 2) > 0.01, "A = {a}, rec {rec}");
    // A run at the recommended size: no guard rail fires, the API refuses only races.
    let size = format!("cluster.pool_workers={rec}");
    let out = sim(&[
        "run",
        &file,
        "--seeds",
        "1",
        "--set",
        "duration=\"20m\"",
        "--set",
        &size,
        "--out",
        &o,
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        !text(&out.stderr).contains("warning"),
        "{}",
        text(&out.stderr)
    );
    let rep = json(&dir.join("out/report.json"));
    let refused = f(&rep, "/ops/rejected") / f(&rep, "/ops/submitted");
    assert!(refused < 0.05, "{refused}");
}

/// exp(1 s)'s samples (a fixed sequence) in Prometheus's default buckets, cumulative.
fn exp1_histogram(n: u64) -> (Vec<f64>, Vec<u64>) {
    let le = vec![
        0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
    ];
    let mut counts = vec![0u64; le.len() + 1];
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for _ in 0..n {
        // splitmix64: uniform in (0, 1), then the exponential's inverse.
        x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = x;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        let u = ((z >> 11) as f64 + 0.5) / (1u64 << 53) as f64;
        let s = -u.ln();
        let i = le.iter().position(|&b| s <= b).unwrap_or(le.len());
        counts[i] += 1;
    }
    let mut cum = 0;
    let counts = counts
        .into_iter()
        .map(|c| {
            cum += c;
            cum
        })
        .collect();
    (le, counts)
}

#[test]
fn a_histogram_agrees_with_erlang_b_at_its_sampled_mean() {
    let dir = scratch("histogram");
    let (le, counts) = exp1_histogram(100_000);
    let mut lines = String::from("# exp(1 s) in Prometheus's default buckets\n");
    for (b, c) in le.iter().zip(&counts) {
        lines.push_str(&format!("start_seconds_bucket{{le=\"{b}\"}} {c}\n"));
    }
    lines.push_str(&format!(
        "start_seconds_bucket{{le=\"+Inf\"}} {}\n",
        counts[counts.len() - 1]
    ));
    std::fs::write(dir.join("start.prom"), lines).unwrap();
    std::fs::write(
        dir.join("h.toml"),
        r#"name = "histogram"
duration = "40m"
warmup = "1m"
drain = "1m"
[cluster]
pool_workers = 10
overflow = "reject"
hosts = 4
[api]
validate_state = false
[workload]
arrival = { kind = "poisson", rate = 7.0 }
mix = { start = 1.0 }
[backend]
start = { dist = "empirical", histogram = { file = "start.prom", cumulative = true, tail = { kind = "exp", mean = "1s" } } }
[checks]
invariants = []
"#,
    )
    .unwrap();
    let file = dir.join("h.toml").display().to_string();
    // `check` prints the sampled distribution's mean and p99: interpolation within the coarse
    // buckets moves exp(1 s)'s mean to about 1.10 s; its p99 (4.6 s) lies in (2.5 s, 5 s].
    let out = sim(&["check", &file]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let figure = |after: &str| -> f64 {
        let rest =
            &stdout[stdout.find(after).unwrap_or_else(|| panic!("{stdout}")) + after.len()..];
        let num: String = rest
            .chars()
            .take_while(|c| c.is_ascii_digit() || *c == '.')
            .collect();
        num.parse().unwrap_or_else(|_| panic!("{stdout}"))
    };
    let mean = figure("sampled mean ");
    let p99 = figure(", p99 ");
    assert!((mean - 1.10).abs() < 0.02, "{stdout}");
    assert!(p99 > 2.5 && p99 <= 5.0, "{stdout}");
    let o = dir.join("out").display().to_string();
    let out = sim(&["run", &file, "--seeds", "4", "--out", &o]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let rep = json(&dir.join("out/report.json"));
    // The measured hold is the sampled mean plus the store writes around the host call.
    let hold = f(&rep, "/pool/mean_hold_ms") / 1000.0;
    assert!(
        hold > mean && hold < mean * 1.05,
        "hold {hold} vs sampled {mean}"
    );
    let ratio = f(&rep, "/pool/exhaustion_ratio");
    let lo = f(&rep, "/pool/exhaustion_ratio_ci95/0");
    let hi = f(&rep, "/pool/exhaustion_ratio_ci95/1");
    // Student t with 3 degrees of freedom over 4 seeds.
    let se = (hi - lo) / 2.0 / 3.182;
    let lambda = f(&rep, "/pool/arrivals") / 4.0 / (39.0 * 60.0);
    let a = lambda * hold;
    let eb = (1..=10u32).fold(1.0, |b: f64, k| a * b / (f64::from(k) + a * b));
    assert!(
        (ratio - eb).abs() < 3.0 * se,
        "exhaustion {ratio} ± {se} vs Erlang B {eb} at A = {a} (hold {hold} s)"
    );
    // The exponential alone (mean 1 s) would be Erlang B at A = λ × ~1.0 s: distinguishable.
    let eb_naive = (1..=10u32).fold(1.0, |b: f64, k| {
        let a = lambda * (1.0 + hold - mean);
        a * b / (f64::from(k) + a * b)
    });
    assert!(
        (ratio - eb_naive).abs() > 3.0 * se,
        "{ratio} vs {eb_naive} ± {se}"
    );
    // The completion p99 lies in the bucket of the histogram's p99, plus the round trips.
    let lat = f(&rep, "/latency_ms/complete/p99") / 1000.0;
    assert!(lat > 2.5 && lat <= 5.1, "{lat}");
}
