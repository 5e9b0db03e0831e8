//! The HTTP API (`conductor api --http`) and `conductor load`, for real on loopback: the API
//! speaks Zun's container API (202/204/200, Zun's 409 message, idempotency keys, 404, 413,
//! keep-alive); `load` runs a bundled scenario against the reference deployment and its report
//! has every scheduled arrival sent, send lateness, `run`'s JSON keys and the `[slo]` judged; a
//! SIGSTOPped API shows in the max and the tail; bad targets (nothing listening, not HTTP,
//! a 5xx storm, never answering) end in clear errors or counted failures within the drain, never a hang.
//!
//! Run with `RUSTFLAGS= CARGO_TARGET_DIR=target/real cargo test --release -p real --test load`.
#![cfg(not(madsim))]

use serde_json::Value;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

mod common;
use common::{scratch, start, start_lines, Proc, BIN};

fn scenario(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../scenarios/real")
        .join(name)
}

/// The reference deployment on loopback (one conductor, one host whose service times are the
/// scenario's `[backend]`), its API serving HTTP: the processes and the HTTP address.
struct Deployment {
    procs: Vec<Proc>,
    http: SocketAddr,
}

impl Deployment {
    fn start(scn: &Path, containers: u64, validate: bool) -> Deployment {
        let c = containers.to_string();
        let (store, s) = start(
            "store",
            &[
                "store",
                "--listen",
                "127.0.0.1:0",
                "--hosts",
                "1",
                "--containers",
                &c,
            ],
            true,
        );
        let store_addr = s.expect("store address").to_string();
        let (bus, b) = start("bus", &["bus", "--listen", "127.0.0.1:0"], true);
        let bus_addr = b.expect("bus address").to_string();
        let scn_s = scn.to_str().expect("utf-8 path");
        let (host, h) = start(
            "host",
            &[
                "host",
                "--listen",
                "127.0.0.1:0",
                "--index",
                "0",
                "--hosts",
                "1",
                "--containers",
                &c,
                "--scenario",
                scn_s,
                "--log",
                "/dev/null",
            ],
            true,
        );
        let host_addr = h.expect("host address").to_string();
        let (conductor, _) = start(
            "conductor",
            &[
                "conductor",
                "--index",
                "0",
                "--bus",
                &bus_addr,
                "--store",
                &store_addr,
                "--host",
                &host_addr,
                "--pool-workers",
                "8",
                "--log",
                "/dev/null",
            ],
            false,
        );
        let mut api_args = vec![
            "api",
            "--listen",
            "127.0.0.1:0",
            "--http",
            "127.0.0.1:0",
            "--store",
            &store_addr,
            "--bus",
            &bus_addr,
            "--log",
            "/dev/null",
            "--rpc-timeout",
            "20s",
        ];
        if validate {
            api_args.push("--validate-state");
        }
        let (api, lines) = start_lines("api", &api_args, 2);
        let http: SocketAddr = lines[1]
            .strip_prefix("http ")
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("the api printed {lines:?}, not `http ADDR` second"));
        let d = Deployment {
            procs: vec![store, bus, host, conductor, api],
            http,
        };
        // Until the conductor consumes, an op can reach the bus before it subscribed: one show
        // answered 200 says the deployment is up (not counted by any test).
        let deadline = Instant::now() + Duration::from_secs(30);
        for i in 0u64.. {
            // A fresh key each time: a key keeps the answer it was given.
            let k = (900_000_000 + i).to_string();
            let (status, _) =
                d.request("GET", "/v1/containers/c-0", &[("Idempotency-Key", &k)], "");
            if status == 200 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the deployment never answered a show: {status}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        d
    }

    fn api(&self) -> u32 {
        self.procs[4].child.id()
    }

    /// One HTTP/1.1 request on a connection of its own: the status and the body.
    fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> (u16, String) {
        let mut s = TcpStream::connect(self.http).expect("connect to the HTTP API");
        s.set_read_timeout(Some(Duration::from_secs(30)))
            .expect("timeout");
        s.write_all(raw(method, path, headers, body, true).as_bytes())
            .expect("send");
        let mut text = String::new();
        let _ = s.read_to_string(&mut text);
        parse(&text)
    }
}

fn raw(method: &str, path: &str, headers: &[(&str, &str)], body: &str, close: bool) -> String {
    let mut r = format!(
        "{method} {path} HTTP/1.1\r\nHost: test\r\nContent-Length: {}\r\n",
        body.len()
    );
    if close {
        r.push_str("Connection: close\r\n");
    }
    for (k, v) in headers {
        r.push_str(&format!("{k}: {v}\r\n"));
    }
    r.push_str("\r\n");
    r.push_str(body);
    r
}

fn parse(text: &str) -> (u16, String) {
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_string();
    (status, body)
}

fn json(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body:?}"))
}

#[test]
fn the_http_api_speaks_zuns_container_api() {
    let d = Deployment::start(&scenario("load.toml"), 10, true);
    let key = |k: &'static str| [("Idempotency-Key", k)];

    let (s, b) = d.request(
        "POST",
        "/v1/containers",
        &key("1"),
        r#"{"name": "web", "image": "cirros"}"#,
    );
    assert_eq!(s, 202, "{b}");
    let c = json(&b);
    assert_eq!(c["name"], "web");
    assert_eq!(c["status"], "Creating");
    let uuid = c["uuid"].as_str().expect("a uuid").to_string();
    // The same key, the same op: the stored answer, nothing runs twice.
    let (s, _) = d.request("POST", "/v1/containers", &key("1"), r#"{"name": "web"}"#);
    assert_eq!(s, 202);
    // The same key for another op: 422.
    let (s, b) = d.request("POST", "/v1/containers/web/start", &key("1"), "");
    assert_eq!(s, 422, "{b}");
    // By UUID or by name.
    let (s, b) = d.request("GET", &format!("/v1/containers/{uuid}"), &key("2"), "");
    assert_eq!(s, 200, "{b}");
    assert_eq!(json(&b)["uuid"], uuid.as_str());
    let (s, b) = d.request("GET", "/v1/containers/c-3", &key("3"), "");
    assert_eq!((s, json(&b)["name"].clone()), (200, Value::from("c-3")));
    let (s, b) = d.request("GET", "/v1/containers/c-3/logs", &key("4"), "");
    assert_eq!(s, 200, "{b}");
    assert!(json(&b).get("logs").is_some());
    let (s, b) = d.request(
        "POST",
        "/v1/containers/c-3/execute",
        &key("5"),
        r#"{"command": "true"}"#,
    );
    assert_eq!(s, 200, "{b}");
    for (k, action) in [("6", "start"), ("7", "stop")] {
        let (s, b) = d.request("POST", &format!("/v1/containers/c-5/{action}"), &key(k), "");
        assert!(s == 202 || s == 409, "{action}: {s} {b}");
    }
    // Running: Zun's table refuses a delete, with Zun's message.
    let (s, b) = d.request("DELETE", "/v1/containers/c-4", &key("10"), "");
    assert_eq!(s, 409, "{b}");
    assert_eq!(
        json(&b)["errors"][0]["detail"],
        "Cannot delete container c-4 in Running state."
    );
    // Stopped, it is deleted (204; retried under fresh keys until the stop has run); then its
    // state (Deleting or Deleted) forbids a start.
    let (s, b) = d.request("POST", "/v1/containers/c-4/stop", &key("11"), "");
    assert_eq!(s, 202, "{b}");
    let deadline = Instant::now() + Duration::from_secs(20);
    for i in 0u64.. {
        let k = (1000 + i).to_string();
        let (s, b) = d.request(
            "DELETE",
            "/v1/containers/c-4",
            &[("Idempotency-Key", &k)],
            "",
        );
        if s == 204 {
            break;
        }
        assert!(s == 409 && Instant::now() < deadline, "{s} {b}");
        std::thread::sleep(Duration::from_millis(100));
    }
    // Once the delete has begun (its record Deleting, then Deleted), a start is refused.
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut i = 2000u64;
    let b = loop {
        std::thread::sleep(Duration::from_millis(200));
        i += 1;
        let k = i.to_string();
        let (s, b) = d.request(
            "GET",
            "/v1/containers/c-4/logs",
            &[("Idempotency-Key", &k)],
            "",
        );
        // Logs are refused from Deleting and Deleted: the delete has begun.
        if s == 409 {
            let (s, b) = d.request("POST", "/v1/containers/c-4/start", &key("12"), "");
            assert_eq!(s, 409, "{b}");
            break b;
        }
        assert!(Instant::now() < deadline, "the delete never began: {s} {b}");
    };
    let detail = json(&b)["errors"][0]["detail"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        detail.starts_with("Cannot start container c-4 in Delet"),
        "{detail}"
    );
    // What is not the API.
    let (s, _) = d.request("GET", "/v1/containers/nosuch", &key("15"), "");
    assert_eq!(s, 404);
    let (s, _) = d.request("POST", "/v1/containers/c-3/dance", &key("13"), "");
    assert_eq!(s, 404);
    let (s, _) = d.request("POST", "/v1/containers", &key("abc"), "{}");
    assert_eq!(s, 400);
    let big = format!(r#"{{"name": "x", "pad": "{}"}}"#, "a".repeat(100_000));
    let (s, _) = d.request("POST", "/v1/containers", &key("14"), &big);
    assert_eq!(s, 413);
    // Keep-alive: two requests on one connection, both answered.
    let mut conn = TcpStream::connect(d.http).expect("connect");
    conn.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let two = raw("GET", "/v1/containers/c-1", &key("20"), "", false)
        + &raw("GET", "/v1/containers/c-2", &key("21"), "", true);
    conn.write_all(two.as_bytes()).expect("send");
    let mut text = String::new();
    let _ = conn.read_to_string(&mut text);
    assert_eq!(text.matches("HTTP/1.1 200").count(), 2, "{text}");
}

/// Runs `conductor load SCENARIO --target URL --out DIR ARGS…`: its output, its report, and
/// how long it took.
fn load(scn: &Path, target: &str, dir: &Path, args: &[&str]) -> (Output, Value, Duration) {
    let t0 = Instant::now();
    let out = Command::new(BIN)
        .arg("load")
        .arg(scn)
        .arg("--target")
        .arg(target)
        .arg("--out")
        .arg(dir)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run conductor load");
    let took = t0.elapsed();
    let report = std::fs::read_to_string(dir.join("report.json"))
        .ok()
        .and_then(|s| serde_json::from_str(&s).ok())
        .unwrap_or(Value::Null);
    (out, report, took)
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The keys of `run`'s report.json, two levels deep (the same code builds both).
fn run_keys() -> Vec<(String, Vec<String>)> {
    let m = reports::SeedMetrics::new(1, 0, &["conductor-1".into()], 1, 1);
    let slo = reports::SloSpec {
        objectives: vec![reports::slo::Objective {
            measure: reports::slo::Measure::Latency(
                reports::slo::Latency::Complete,
                reports::slo::Percentile::named("p99").expect("p99 is a percentile"),
            ),
            limit: 1.0,
        }],
        load_s: 1.0,
    };
    let rep = reports::build_report("x", 1, &[m], &[], &slo, None, 0.0);
    keys(&serde_json::from_str(&rep.to_json()).expect("json"))
}

fn keys(v: &Value) -> Vec<(String, Vec<String>)> {
    v.as_object()
        .expect("an object")
        .iter()
        .map(|(k, v)| {
            let sub = v
                .as_object()
                .map(|o| o.keys().cloned().collect())
                .unwrap_or_default();
            (k.clone(), sub)
        })
        .collect()
}

/// The requests the scenario's schedule holds for its seed, counted with the simulator's own
/// client machine.
fn scheduled(scn: &Path, duration: Option<Duration>) -> u64 {
    let mut s = scenario::load(scn, &[]).expect("the scenario loads");
    if let Some(d) = duration {
        s.duration = d;
    }
    let cfg = scenario::client::ClientConfig::new(&s, s.seed);
    let mut m = scenario::client::ClientMachine::new(&cfg);
    let mut n = 0;
    while m.next_due().is_some() && m.issue().is_some() {
        n += 1;
    }
    n
}

#[test]
fn load_sends_every_scheduled_arrival_and_judges_the_slo() {
    let scn = scenario("load.toml");
    let d = Deployment::start(&scn, 50, false);
    let target = format!("http://{}", d.http);
    let dir = scratch("load_sends_every_scheduled_arrival");
    let (out, r, took) = load(&scn, &target, &dir, &["--progress"]);
    assert!(out.status.success(), "{}", text(&out));
    let want = scheduled(&scn, None);
    assert!(want > 300, "the seed's schedule holds {want}");
    let l = &r["load"];
    assert_eq!(l["scheduled"], want, "{l}");
    assert_eq!(l["sent"], want, "{l}");
    assert_eq!(l["all_sent"], true);
    assert_eq!(r["ops"]["submitted"], want);
    assert_eq!(l["unanswered"], 0, "{l}");
    assert_eq!(
        l["lateness_ms"]["count"], want,
        "every send's lateness measured: {l}"
    );
    assert!(l["lateness_ms"]["max"].is_number() && l["behind"]["count"].is_number());
    assert!(
        l["errors"]["connect"] == 0 && l["errors"]["protocol"] == 0,
        "{l}"
    );
    // run's keys, two levels deep; the pool's values absent.
    let got = keys(&r);
    for (k, sub) in run_keys() {
        let mine = got
            .iter()
            .find(|(g, _)| *g == k)
            .unwrap_or_else(|| panic!("report.json lacks `{k}`"));
        assert_eq!(mine.1, sub, "the keys of `{k}`");
    }
    assert!(r["pool"]["exhaustion_ratio"].is_null());
    assert_eq!(r["slo"]["pass"], true, "{}", r["slo"]);
    assert_eq!(r["slo"]["checks"][0]["name"], "p99_max");
    assert!(r["latency_ms"]["complete"]["count"].as_u64() >= Some(want - 5));
    assert!(took < Duration::from_secs(20 + 10 + 15), "took {took:?}");
    assert!(dir.join("report.html").is_file());

    // A p99 no deployment can meet: the SLO is judged, exit 1.
    let dir = scratch("load_breaches_an_slo");
    let (out, r, _) = load(
        &scn,
        &target,
        &dir,
        &["--duration", "3s", "--set", "slo.p99_max=1us"],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert_eq!(r["slo"]["pass"], false, "{}", r["slo"]);
    assert_eq!(
        r["load"]["sent"],
        scheduled(&scn, Some(Duration::from_secs(3)))
    );
}

#[test]
fn a_paused_api_shows_in_the_max_and_the_tail() {
    let scn = scenario("load.toml");
    let d = Deployment::start(&scn, 50, false);
    let target = format!("http://{}", d.http);
    let dir = scratch("a_paused_api_shows");
    let api = d.api() as i32;
    let pauser = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(3));
        // SAFETY: signals to a child process of this test, by its PID.
        unsafe { libc::kill(api, libc::SIGSTOP) };
        std::thread::sleep(Duration::from_secs(5));
        unsafe { libc::kill(api, libc::SIGCONT) };
    });
    let (out, r, _) = load(
        &scn,
        &target,
        &dir,
        &["--duration", "12s", "--set", "slo.p99_max=1h"],
    );
    pauser.join().expect("the pauser");
    assert!(out.status.success(), "{}", text(&out));
    let c = &r["latency_ms"]["complete"];
    let (max, p99, p50) = (
        c["max"].as_f64().unwrap_or(0.0),
        c["p99"].as_f64().unwrap_or(0.0),
        c["p50"].as_f64().unwrap_or(f64::MAX),
    );
    // Requests due during the 5 s pause wait for it from their intended time: the first of
    // them almost 5 s, and they are about 40% of the run's.
    assert!(max >= 4_500.0, "max {max} ms: {c}");
    assert!(p99 >= 3_000.0, "p99 {p99} ms: {c}");
    assert!(p50 < max / 2.0, "p50 {p50} ms: {c}");
    assert_eq!(r["load"]["unanswered"], 0, "{}", r["load"]);
}

/// A TCP server that does `what` with each connection (for targets that are not HTTP).
fn server(what: fn(TcpStream)) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = l.local_addr().expect("addr");
    std::thread::spawn(move || {
        for s in l.incoming().flatten() {
            std::thread::spawn(move || what(s));
        }
    });
    addr
}

/// An HTTP/1.1 server that answers every request of a keep-alive connection at once, 500 and
/// 503 in turn (a 5xx storm), reading each request's head and its `Content-Length` body.
fn answer_every_request_with_5xx(mut s: TcpStream) {
    let mut buf: Vec<u8> = Vec::new();
    let mut chunk = [0u8; 4096];
    let mut answered = 0u64;
    loop {
        while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let len = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok())
                .unwrap_or(0);
            if buf.len() < end + 4 + len {
                break;
            }
            buf.drain(..end + 4 + len);
            let status = if answered.is_multiple_of(2) {
                "500 Internal Server Error"
            } else {
                "503 Service Unavailable"
            };
            answered += 1;
            let body = r#"{"errors": [{"status": 500, "title": "storm"}]}"#;
            let resp = format!(
                "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                body.len()
            );
            if s.write_all(resp.as_bytes()).is_err() {
                return;
            }
        }
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

#[test]
fn bad_targets_end_in_clear_errors_or_counted_failures() {
    let scn = scenario("load.toml");
    // Nothing listens: said at once.
    let free = TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr");
    let dir = scratch("bad_target_unreachable");
    let (out, _, took) = load(&scn, &format!("http://{free}"), &dir, &["--duration", "2s"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("cannot reach the target"),
        "{}",
        text(&out)
    );
    assert!(took < Duration::from_secs(10), "took {took:?}");

    // Not HTTP: every answer is a protocol error, counted, and said.
    let garbage = server(|mut s| {
        let mut buf = [0u8; 1024];
        let _ = s.read(&mut buf);
        let _ = s.write_all(b"SSH-2.0-OpenSSH_9.2\r\n");
    });
    let dir = scratch("bad_target_not_http");
    let (out, r, took) = load(
        &scn,
        &format!("http://{garbage}"),
        &dir,
        &["--duration", "2s", "--drain", "3s"],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("an HTTP server?"), "{}", text(&out));
    assert!(
        r["load"]["errors"]["protocol"].as_u64() > Some(10),
        "{}",
        r["load"]
    );
    assert!(took < Duration::from_secs(15), "took {took:?}");

    // Never answers, the client without a timeout: the drain bounds the run, and what is
    // unanswered is counted.
    let silent = server(|s| {
        std::thread::sleep(Duration::from_secs(60));
        drop(s);
    });
    let dir = scratch("bad_target_silent");
    let (out, r, took) = load(
        &scn,
        &format!("http://{silent}"),
        &dir,
        &[
            "--duration",
            "2s",
            "--drain",
            "2s",
            "--set",
            "client.timeout=0s",
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(r["load"]["unanswered"].as_u64() > Some(10), "{}", r["load"]);
    assert!(took < Duration::from_secs(12), "took {took:?}");
    // With a timeout: the attempts time out, counted.
    let dir = scratch("bad_target_silent_timeout");
    let (out, r, took) = load(
        &scn,
        &format!("http://{silent}"),
        &dir,
        &[
            "--duration",
            "2s",
            "--drain",
            "3s",
            "--set",
            "client.timeout=1s",
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(r["rpc"]["timeouts"].as_u64() > Some(10), "{}", r["rpc"]);
    assert!(took < Duration::from_secs(12), "took {took:?}");

    // A 5xx storm: every request answered 500 or 503 at once. Each failure counted by status,
    // each request retried by the `[client.retry]` policy up to its attempt limit and then
    // given up, the run ended within load + drain, and the goodput objective judged broken.
    let storm = server(answer_every_request_with_5xx);
    let dir = scratch("bad_target_5xx_storm");
    let (out, r, took) = load(
        &scn,
        &format!("http://{storm}"),
        &dir,
        &[
            "--duration",
            "2s",
            "--drain",
            "3s",
            "--set",
            "client.retry_on=[\"error\"]",
            "--set",
            "client.retry={ max_attempts = 3, base = \"10ms\", cap = \"50ms\" }",
            "--set",
            "slo.goodput_min=1",
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let l = &r["load"];
    let sent = l["sent"].as_u64().unwrap_or(0);
    assert!(sent > 10, "{l}");
    assert_eq!(l["sent"], l["scheduled"], "{l}");
    assert_eq!(l["retries_sent"], 2 * sent, "two retries per request: {l}");
    let by = |s: &str| l["statuses"][s].as_u64().unwrap_or(0);
    assert!(by("500") > 0 && by("503") > 0, "{l}");
    assert_eq!(
        by("500") + by("503"),
        3 * sent,
        "every attempt answered: {l}"
    );
    assert_eq!(r["retries"]["gave_up"], sent, "{}", r["retries"]);
    assert_eq!(r["slo"]["pass"], false, "{}", r["slo"]);
    assert!(took < Duration::from_secs(2 + 3 + 5), "took {took:?}");

    // Bad flags and bad headers: exit 2, naming what.
    let dir = scratch("bad_target_flags");
    let (out, _, _) = load(&scn, "https://example.com", &dir, &[]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("expected http://HOST:PORT"),
        "{}",
        text(&out)
    );
    let (out, _, _) = load(
        &scn,
        &format!("http://{free}"),
        &dir,
        &[
            "--set",
            "target.env_headers={x-auth-token=\"CONDUCTOR_TEST_UNSET_TOKEN\"}",
        ],
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("CONDUCTOR_TEST_UNSET_TOKEN"),
        "{}",
        text(&out)
    );
}
