//! The journals of the real store and host (issue 11): `kill -9` loses no fencing token, lock,
//! truth or token seen; a torn last line is cut off with a warning naming the bytes; a corrupt
//! line stops the service with exit 2 naming the file and the line. Loopback only; every wait
//! bounded by PATIENCE; every process killed by its handle when the test ends.
//!
//! Real build only (the binary refuses to run under `--cfg madsim`): run with
//! `RUSTFLAGS= CARGO_TARGET_DIR=target/real cargo test --release -p real`.
#![cfg(not(madsim))]

use conductor::op::{HostError, OpKind, Truth};
use conductor::proto::{CoordCmd, HostCmd, HostResp, Msg, OpSpec, StoreResp};
use conductor::wire;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Instant;
use tokio::net::TcpStream;

mod common;
use common::{scratch, start, Proc, BIN, PATIENCE};

/// Sends coordination commands to the store at `addr`, one at a time; their answers.
async fn coordinate(addr: SocketAddr, cmds: &[CoordCmd]) -> Vec<StoreResp> {
    let stream = TcpStream::connect(addr)
        .await
        .expect("connect to the store");
    let (link, mut reader) = wire::attach(stream);
    let mut out = Vec::new();
    for (req, &cmd) in cmds.iter().enumerate() {
        assert!(link.send(Msg::Coord {
            req: req as u64,
            cmd
        }));
        let answer = async {
            loop {
                match reader.next().await.expect("read from the store") {
                    Some(Msg::StoreResp { resp, .. }) => return resp,
                    Some(_) => {}
                    None => panic!("the store closed the connection"),
                }
            }
        };
        out.push(
            tokio::time::timeout(PATIENCE, answer)
                .await
                .expect("the store answers within PATIENCE"),
        );
    }
    out
}

fn lock(container: u64, owner: u32) -> CoordCmd {
    CoordCmd::Lock {
        container,
        owner,
        ttl_us: 60_000_000,
    }
}

fn store(journal: &Path) -> (Proc, SocketAddr) {
    let j = journal.to_str().unwrap();
    let args = [
        "store",
        "--listen",
        "127.0.0.1:0",
        "--hosts",
        "1",
        "--containers",
        "4",
    ];
    let (p, a) = start("store", &[&args[..], &["--journal", j]].concat(), true);
    (p, a.unwrap())
}

/// Defect 1: lock grants were not journalled, so a store restarted after `kill -9` granted
/// fencing tokens lower than ones the hosts had seen (and forgot the locks held).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fencing_tokens_and_locks_survive_kill_9_of_the_store() {
    let dir = scratch("journal-tokens");
    let journal = dir.join("store.jsonl");
    let (mut p, addr) = store(&journal);
    let mut cmds = Vec::new();
    for c in 0..20 {
        cmds.push(lock(c, 0));
    }
    cmds.push(lock(99, 1));
    let answers = coordinate(addr, &cmds).await;
    let highest = answers
        .iter()
        .map(|r| match r {
            StoreResp::Locked { token } => *token,
            other => panic!("a free lock refused: {other:?}"),
        })
        .max()
        .unwrap();
    let release: Vec<_> = (0..20)
        .map(|c| CoordCmd::Unlock {
            container: c,
            token: match answers[c as usize] {
                StoreResp::Locked { token } => token,
                _ => unreachable!(),
            },
        })
        .collect();
    coordinate(addr, &release).await;
    p.child.kill().expect("SIGKILL the store");
    p.child.wait().expect("reap the store");

    let (_p, addr) = store(&journal);
    let after = coordinate(addr, &[lock(5, 2), lock(99, 2)]).await;
    match after[0] {
        StoreResp::Locked { token } => assert!(
            token > highest,
            "token {token} after the restart, {highest} before"
        ),
        other => panic!("a released lock is still held: {other:?}"),
    }
    assert_eq!(
        after[1],
        StoreResp::Held { owner: 1 },
        "a held lock was forgotten"
    );
}

/// Sends one op to the host at `addr` under fencing token `token`; its answer.
async fn to_host(addr: SocketAddr, id: u64, kind: OpKind, token: u64) -> HostResp {
    let stream = TcpStream::connect(addr).await.expect("connect to the host");
    let (link, mut reader) = wire::attach(stream);
    let cmd = HostCmd {
        op: OpSpec {
            id,
            container: 0,
            kind,
            intended_us: 0,
            deadline: None,
        },
        seq: id,
        attempt: 1,
        conductor: 0,
        token,
    };
    assert!(link.send(Msg::Host { req: id, cmd }));
    let answer = async {
        loop {
            match reader.next().await.expect("read from the host") {
                Some(Msg::HostResp { resp, .. }) => return resp,
                Some(_) => {}
                None => panic!("the host closed the connection"),
            }
        }
    };
    tokio::time::timeout(PATIENCE, answer)
        .await
        .expect("the host answers within PATIENCE")
}

/// Deliverable 4: a host keeps its containers' truths and the newest token it saw across
/// `kill -9`, as Docker keeps its containers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_keeps_truths_and_tokens_across_kill_9() {
    let dir = scratch("journal-host");
    let journal = dir.join("host.jsonl");
    let j = journal.to_str().unwrap();
    let args = [
        "host",
        "--listen",
        "127.0.0.1:0",
        "--index",
        "0",
        "--containers",
        "1",
        "--service",
        "1ms",
        "--service-dist",
        "const",
        "--fencing",
        "--journal",
        j,
    ];
    let (mut p, addr) = start("host", &args, true);
    let addr = addr.unwrap();
    assert_eq!(to_host(addr, 1, OpKind::Stop, 50).await, Ok(Truth::Stopped));
    p.child.kill().expect("SIGKILL the host");
    p.child.wait().expect("reap the host");
    // `--containers 1` again: ignored, the journal holds the host (container 0 is stopped).
    let (_p, addr) = start("host", &args, true);
    let addr = addr.unwrap();
    assert_eq!(
        to_host(addr, 2, OpKind::Start, 40).await,
        Err(HostError::Fenced),
        "a token older than one seen before the restart was admitted"
    );
    assert_eq!(
        to_host(addr, 3, OpKind::Start, 51).await,
        Ok(Truth::Running)
    );
}

/// Runs `conductor ARGS…` with stderr read line by line; the process and its stderr lines.
fn spawn_reading_stderr(args: &[&str]) -> (Proc, mpsc::Receiver<String>) {
    let mut child = Command::new(BIN)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn the store");
    let err = child.stderr.take().expect("piped stderr");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(err).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let p = Proc {
        name: "store".into(),
        child,
    };
    (p, rx)
}

/// Defect 5: a torn last line stopped the store from starting, and a changed digit was
/// replayed silently.
#[test]
fn a_torn_tail_is_cut_with_a_warning_and_a_corrupt_line_exits_2() {
    let dir = scratch("journal-torn");
    let journal = dir.join("store.jsonl");
    let j = journal.to_str().unwrap();
    {
        let (mut p, _) = store(&journal);
        p.child.kill().expect("SIGKILL the store");
        let _ = p.child.wait();
    }
    let whole = std::fs::read(&journal).unwrap();
    assert_eq!(
        whole.iter().filter(|&&b| b == b'\n').count(),
        4,
        "4 pre-creations"
    );
    // A crash mid-write: 7 bytes of a record, no newline.
    let mut torn = whole.clone();
    torn.extend_from_slice(b"1234abc");
    std::fs::write(&journal, &torn).unwrap();
    let args = [
        "store",
        "--listen",
        "127.0.0.1:0",
        "--hosts",
        "1",
        "--journal",
        j,
    ];
    let (mut p, stderr) = spawn_reading_stderr(&args);
    let warning = stderr
        .recv_timeout(PATIENCE)
        .expect("the store warns about the torn tail");
    assert!(
        warning.contains("warning: journal")
            && warning.contains(j)
            && warning.contains(&format!("7 bytes at offset {}", whole.len())),
        "{warning}"
    );
    // It starts and keeps running on the journal cut back to its whole records.
    let deadline = Instant::now() + PATIENCE;
    while std::fs::read(&journal).unwrap() != whole {
        assert!(Instant::now() < deadline, "the torn tail was not cut off");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    std::thread::sleep(std::time::Duration::from_millis(200));
    p.assert_running();
    drop(p);

    // `"container":2` -> `"container":92` in the third record: a checksum mismatch.
    let text = String::from_utf8(whole).unwrap();
    let changed = text.replacen("\"container\":2", "\"container\":92", 1);
    assert_ne!(changed, text);
    std::fs::write(&journal, changed).unwrap();
    let (mut p, stderr) = spawn_reading_stderr(&args);
    let deadline = Instant::now() + PATIENCE;
    let status = loop {
        if let Some(s) = p.child.try_wait().unwrap() {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "the store did not stop on a corrupt journal"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    // Its stderr to the end (the reader stops at end-of-file, which the exit brought).
    let mut lines = Vec::new();
    while let Ok(line) = stderr.recv_timeout(PATIENCE) {
        lines.push(line);
    }
    let message = lines.join("\n");
    assert_eq!(status.code(), Some(2), "{message}");
    assert!(
        message.contains(j) && message.contains("line 3") && message.contains("checksum"),
        "{message}"
    );
}
