//! `conductor check-history` on the logs a real deployment wrote: a small deployment of the
//! `conductor` binary on loopback (one process per service, `--log FILE` each) creates
//! containers and then starts them; the checker finds nothing broken in their merged logs.
//! And on hand-made histories: a start applied before its create breaks `create-before-use`;
//! a malformed line is bad input naming the file and the line.
//!
//! Run with `RUSTFLAGS= CARGO_TARGET_DIR=target/real cargo test --release -p real`.
#![cfg(not(madsim))]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_conductor");

/// The bound on every wait: far beyond what these runs need.
const PATIENCE: Duration = Duration::from_secs(30);

/// A child process killed when the test ends, however it ends.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `conductor ARGS…`; for a listening service, waits for its `listening ADDR` line.
fn start(name: &str, args: &[&str], listens: bool) -> (Proc, Option<String>) {
    let mut child = Command::new(BIN)
        .args(args)
        .stdin(Stdio::null())
        .stdout(if listens {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {name}: {e}"));
    let addr = listens.then(|| {
        let out = child.stdout.take().expect("piped stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(out).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx
            .recv_timeout(PATIENCE)
            .unwrap_or_else(|_| panic!("{name} did not announce its address"));
        let addr: SocketAddr = line
            .trim()
            .strip_prefix("listening ")
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("{name} printed {line:?}, not `listening ADDR`"));
        addr.to_string()
    });
    (Proc(child), addr)
}

fn scratch(test: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(test);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create the scratch dir");
    dir
}

/// The whole lines of a log holding `"event":"terminal"` and `"ok":true` (the last line may
/// still be being written).
fn done(log: &Path) -> usize {
    std::fs::read_to_string(log).map_or(0, |t| {
        t.lines()
            .filter(|l| l.contains(r#""event":"terminal""#) && l.contains(r#""ok":true"#))
            .count()
    })
}

fn check_history(args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("check-history")
        .args(args)
        .output()
        .expect("run conductor check-history")
}

fn client(api: &str, op: &str, first_id: &str) {
    // 4 ops over 40 ms, one to each of containers 0..3.
    let out = Command::new(BIN)
        .args([
            "client",
            "--api",
            api,
            "--rate",
            "100",
            "--duration",
            "40ms",
            "--containers",
            "4",
            "--op",
            op,
            "--first-id",
            first_id,
            "--drain",
            "30s",
        ])
        .stderr(Stdio::inherit())
        .output()
        .expect("run the client");
    assert!(
        out.status.success(),
        "client --op {op}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn a_real_deployments_logs_break_nothing() {
    let dir = scratch("a_real_deployments_logs_break_nothing");
    let log = |name: &str| dir.join(format!("{name}.jsonl"));
    let s = |p: PathBuf| p.to_str().expect("utf-8 path").to_string();
    // No pre-created containers: every container the history uses, it creates.
    let (_store, store_a) = start(
        "store",
        &["store", "--listen", "127.0.0.1:0", "--hosts", "2"],
        true,
    );
    let store_a = store_a.unwrap();
    let (_bus, bus_a) = start("bus", &["bus", "--listen", "127.0.0.1:0"], true);
    let bus_a = bus_a.unwrap();
    let mut hosts = Vec::new();
    let mut host_addrs = Vec::new();
    for i in 0..2 {
        let name = format!("host-{}", i + 1);
        let (p, a) = start(
            &name,
            &[
                "host",
                "--listen",
                "127.0.0.1:0",
                "--index",
                &i.to_string(),
                "--hosts",
                "2",
                "--service",
                "5ms",
                "--log",
                &s(log(&name)),
            ],
            true,
        );
        hosts.push(p);
        host_addrs.push(a.unwrap());
    }
    let mut args = vec![
        "conductor",
        "--index",
        "0",
        "--bus",
        &bus_a,
        "--store",
        &store_a,
        "--host",
    ];
    args.extend(host_addrs.iter().map(String::as_str));
    let conductor_log = s(log("conductor-1"));
    args.extend(["--log", &conductor_log]);
    let (_conductor, _) = start("conductor-1", &args, false);
    let api_log = s(log("api"));
    let (_api, api_a) = start(
        "api",
        &[
            "api",
            "--listen",
            "127.0.0.1:0",
            "--store",
            &store_a,
            "--bus",
            &bus_a,
            "--log",
            &api_log,
        ],
        true,
    );
    let api_a = api_a.unwrap();

    // Create four containers, wait until the creates are done, then start them.
    let wait_done = |n: usize| {
        let deadline = Instant::now() + PATIENCE;
        while done(&log("conductor-1")) < n {
            assert!(
                Instant::now() < deadline,
                "{} of {n} ops done after {PATIENCE:?}",
                done(&log("conductor-1"))
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    client(&api_a, "create", "1");
    wait_done(4);
    client(&api_a, "start", "101");
    wait_done(8);

    let logs = [log("api"), log("conductor-1"), log("host-1"), log("host-2")];
    let logs: Vec<String> = logs.into_iter().map(s).collect();
    let files: Vec<&str> = logs.iter().map(String::as_str).collect();
    let out = check_history(&files);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("violations 0 found"), "{stdout}");
    assert!(
        stdout.contains("not judged no-lost-ops, no-stuck-state, converges"),
        "{stdout}"
    );

    let mut args = files.clone();
    args.push("--json");
    let out = check_history(&args);
    assert_eq!(out.status.code(), Some(0));
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    // 8 accepted, 8 terminal, 8 applied, and the pool's events.
    assert!(j["events"].as_u64().is_some_and(|n| n >= 24), "{j}");
    assert_eq!(j["pre_existing"], 0, "every container was created: {j}");
    assert_eq!(j["judged"][0], "create-before-use", "{j}");
    assert_eq!(j["violations"], serde_json::json!([]), "{j}");
}

/// A host's `applied` line as the recorder writes it, recorded at the op's end.
fn applied(
    id: u64,
    kind: &str,
    seq: u64,
    (start, end): (u64, u64),
    before: &str,
    result: &str,
) -> String {
    format!(
        r#"{{"t_us":{end},"node":"host-1","event":"applied","host":0,"conductor":0,"attempt":1,"token":0,"op":{{"id":{id},"container":5,"kind":"{kind}","intended_us":0}},"seq":{seq},"start_us":{start},"end_us":{end},"before":"{before}","result":{result}}}"#
    )
}

#[test]
fn a_start_before_its_create_breaks_create_before_use() {
    let dir = scratch("a_start_before_its_create_breaks_create_before_use");
    let p = dir.join("host-1.jsonl");
    let history = [
        applied(
            2,
            "Start",
            2,
            (1_000, 1_010),
            "Absent",
            r#"{"Err":"NoSuchContainer"}"#,
        ),
        applied(
            1,
            "Create",
            1,
            (1_020, 1_050),
            "Absent",
            r#"{"Ok":"Created"}"#,
        ),
    ];
    std::fs::write(&p, history.map(|l| l + "\n").concat()).unwrap();
    let path = p.to_str().unwrap();
    let out = check_history(&[path]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains(
            "violations 1 found, 1 listed\n  0.001010s create-before-use container 5: op 2 (start \
             seq 2"
        ),
        "{stdout}"
    );
    // Judging only another invariant finds nothing.
    let out = check_history(&[path, "--invariants", "exclusive,at-most-once"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn bad_input_exits_2_naming_what_is_wrong() {
    let dir = scratch("bad_input_exits_2_naming_what_is_wrong");
    let p = dir.join("api.jsonl");
    std::fs::write(
        &p,
        "{\"t_us\":1,\"node\":\"api\",\"event\":\"rejected\",\"op\":{\"id\":1,\"container\":0,\"kind\":\"Start\",\"intended_us\":0}}\nnot an event\n",
    )
    .unwrap();
    let path = p.to_str().unwrap();
    let missing = dir.join("missing.jsonl");
    for (args, says) in [
        (vec![path], format!("{path}:2: not an event")),
        (
            vec![missing.to_str().unwrap()],
            format!("{}: cannot read it", missing.display()),
        ),
        (
            vec![path, "--invariants", "exclusiv"],
            "unknown invariant `exclusiv`".to_string(),
        ),
        (vec![], "FILE".to_string()),
    ] {
        let out = check_history(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(&says), "{args:?}: {stderr}");
    }
}
