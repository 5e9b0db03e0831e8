//! What the real-mode tests share: the `conductor` binary, a process that dies with the test,
//! starting a service and reading the address it announces, a fresh scratch directory.
//!
//! Each integration test file is its own crate, so each uses only part of this.
#![allow(dead_code)]

pub mod etcd;
pub mod store_client;
pub mod takeover;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The real build's `conductor` binary.
pub const BIN: &str = env!("CARGO_BIN_EXE_conductor");

/// How long any one wait of a test may last.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// A child process killed when the test ends, however it ends.
pub struct Proc {
    /// The service, for messages.
    pub name: String,
    /// The process.
    pub child: Child,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Proc {
    /// Fails the test if the process has exited.
    pub fn assert_running(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!("{} exited early: {status}", self.name);
        }
    }
}

/// Starts `conductor ARGS…`; for a listening service, waits for its `listening ADDR` line.
pub fn start(name: &str, args: &[&str], listens: bool) -> (Proc, Option<SocketAddr>) {
    start_with(name, Command::new(BIN), args, Stdio::inherit(), listens)
}

/// Starts `cmd ARGS…` (the binary, or a wrapper such as `prlimit … -- BIN`) with its stderr
/// going to `stderr`; for a listening service, waits for its `listening ADDR` line.
pub fn start_with(
    name: &str,
    mut cmd: Command,
    args: &[&str],
    stderr: Stdio,
    listens: bool,
) -> (Proc, Option<SocketAddr>) {
    let mut child = cmd
        .args(args)
        .stdin(Stdio::null())
        .stdout(if listens {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stderr(stderr)
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
        line.trim()
            .strip_prefix("listening ")
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("{name} printed {line:?}, not `listening ADDR`"))
    });
    (
        Proc {
            name: name.to_string(),
            child,
        },
        addr,
    )
}

/// A fresh, empty directory for `test`.
pub fn scratch(test: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(test);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create the scratch dir");
    dir
}

/// Starts `conductor ARGS…` and returns the first `n` lines it prints on stdout (a service
/// announcing several addresses: the api's `listening ADDR`, then `http ADDR`).
pub fn start_lines(name: &str, args: &[&str], n: usize) -> (Proc, Vec<String>) {
    let mut child = Command::new(BIN)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {name}: {e}"));
    let out = child.stdout.take().expect("piped stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut r = BufReader::new(out);
        for _ in 0..n {
            let mut line = String::new();
            if r.read_line(&mut line).unwrap_or(0) == 0 {
                break;
            }
            let _ = tx.send(line.trim().to_string());
        }
        // Keep reading so that the service never blocks on a full pipe.
        let _ = std::io::copy(&mut r, &mut std::io::sink());
    });
    let lines = (0..n)
        .map(|_| {
            rx.recv_timeout(PATIENCE)
                .unwrap_or_else(|_| panic!("{name} did not print {n} lines"))
        })
        .collect();
    (
        Proc {
            name: name.to_string(),
            child,
        },
        lines,
    )
}
