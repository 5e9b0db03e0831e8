//! Two store processes serving one deployment (issue 14): primary and standby on one journal,
//! and the api and the conductors given a list of store addresses (`--store A,B`). The standby
//! takes over when the primary dies, with what the primary acknowledged and answers re-sent
//! requests without applying them twice; a client whose first store address is dead moves on;
//! a bad list is refused (exit 2, naming the flag). Coordination in the journal here; the same
//! on etcd is in `etcd.rs`.
//!
//! Run with `RUSTFLAGS= CARGO_TARGET_DIR=target/real cargo test --release -p real --test stores`.
#![cfg(not(madsim))]

use std::path::Path;
use std::process::{Command, Stdio};

mod common;
use common::{scratch, start, BIN};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standby_takes_over_when_the_primary_dies() {
    let dir = scratch("a_standby_takes_over_when_the_primary_dies");
    common::takeover::standby_takes_over(&dir, &[]).await;
}

/// An address nothing listens on (the kernel just gave it out and it was let go).
fn dead_addr() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("its address").to_string()
}

#[test]
fn the_api_and_a_conductor_whose_first_store_is_dead_move_on() {
    let dir = scratch("the_api_and_a_conductor_whose_first_store_is_dead_move_on");
    let s = |p: &Path| p.to_str().expect("utf-8 path").to_string();
    let (_store, live) = start(
        "store",
        &[
            "store",
            "--listen",
            "127.0.0.1:0",
            "--hosts",
            "1",
            "--containers",
            "4",
            "--journal",
            &s(&dir.join("store.journal")),
        ],
        true,
    );
    let stores = format!("{},{}", dead_addr(), live.expect("the store listens"));
    let (_bus, bus) = start("bus", &["bus", "--listen", "127.0.0.1:0"], true);
    let bus = bus.expect("the bus listens").to_string();
    let (_host, host) = start(
        "host-1",
        &[
            "host",
            "--listen",
            "127.0.0.1:0",
            "--index",
            "0",
            "--hosts",
            "1",
            "--containers",
            "4",
            "--service",
            "5ms",
            "--log",
            &s(&dir.join("host-1.jsonl")),
        ],
        true,
    );
    let host = host.expect("the host listens").to_string();
    let (_conductor, _) = start(
        "conductor-1",
        &[
            "conductor",
            "--index",
            "0",
            "--bus",
            &bus,
            "--store",
            &stores,
            "--host",
            &host,
            "--log",
            &s(&dir.join("conductor-1.jsonl")),
        ],
        false,
    );
    let (_api, api) = start(
        "api",
        &[
            "api",
            "--listen",
            "127.0.0.1:0",
            "--store",
            &stores,
            "--bus",
            &bus,
            "--log",
            &s(&dir.join("api.jsonl")),
        ],
        true,
    );
    let api = api.expect("the api listens").to_string();
    let out = Command::new(BIN)
        .args([
            "client",
            "--api",
            &api,
            "--rate",
            "40",
            "--duration",
            "500ms",
            "--containers",
            "4",
            "--op",
            "start",
            "--drain",
            "30s",
            "--json",
        ])
        .stderr(Stdio::inherit())
        .output()
        .expect("run the client");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "client: {}\n{stdout}", out.status);
    let summary: serde_json::Value = serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("client summary {stdout:?}: {e}"));
    assert_eq!(summary["sent"], 20, "{summary}");
    assert_eq!(summary["answers"]["accepted"], 20, "{summary}");
}

#[test]
fn a_store_list_with_an_empty_item_or_a_bad_address_exits_2_naming_the_flag() {
    let dead = dead_addr();
    for stores in [
        format!("{dead},,{dead}"),
        format!("{dead},"),
        format!("{dead},nowhere"),
    ] {
        for args in [
            vec![
                "api",
                "--listen",
                "127.0.0.1:0",
                "--bus",
                &dead,
                "--store",
                &stores,
            ],
            vec![
                "conductor",
                "--index",
                "0",
                "--bus",
                &dead,
                "--host",
                &dead,
                "--store",
                &stores,
            ],
        ] {
            let out = Command::new(BIN)
                .args(&args)
                .output()
                .expect("run conductor");
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
            assert!(stderr.contains("--store"), "{args:?}: {stderr}");
        }
    }
}
