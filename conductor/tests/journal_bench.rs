//! Append throughput of the store's journal (run by hand: `cargo test --release -p conductor
//! --test journal_bench -- --ignored --nocapture`): a figure to compare formats, never a pass/fail.

use conductor::op::{OpKind, Status};
use conductor::proto::{OpSpec, StoreCmd};
use conductor::store::StoreState;
use std::time::Instant;

fn run(sync: bool, ops: u64) {
    let path = std::env::temp_dir().join(format!(
        "conductor-journal-bench-{}-{sync}.jsonl",
        std::process::id()
    ));
    let _ = std::fs::remove_file(&path);
    let (mut s, _) = StoreState::open(&path, 1, sync).unwrap();
    s.precreate_durably(0, Status::Running).unwrap();
    let t = Instant::now();
    for id in 1..=ops {
        let op = OpSpec {
            id,
            container: 0,
            kind: OpKind::Stop,
            intended_us: id,
            deadline: None,
        };
        s.apply_durably(StoreCmd::Accept {
            op,
            validate: false,
        })
        .unwrap();
        s.apply_durably(StoreCmd::Finish { op: id, ok: true })
            .unwrap();
    }
    let secs = t.elapsed().as_secs_f64();
    let bytes = std::fs::metadata(&path).unwrap().len();
    println!(
        "sync={sync}: {} appends in {secs:.3} s = {:.0} appends/s, {:.1} bytes/append",
        2 * ops,
        2.0 * ops as f64 / secs,
        bytes as f64 / (2 * ops + 1) as f64
    );
    let t = Instant::now();
    let again = StoreState::open(&path, 1, false).unwrap();
    println!(
        "  replay of {} records: {:.3} s",
        2 * ops + 1,
        t.elapsed().as_secs_f64()
    );
    drop(again);
    let _ = std::fs::remove_file(&path);
}

#[test]
#[ignore = "a measurement, run by hand"]
fn journal_append_throughput() {
    run(false, 100_000);
    run(true, 1_000);
}
