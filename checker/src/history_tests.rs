//! Hand-written JSON-lines histories, as the real services' recorder writes them.

use super::*;

/// Writes `text` to a file of its own for the test `name` and returns its path.
fn file(name: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("checker-history-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

fn op(id: u64, container: u64, kind: &str) -> String {
    format!(r#"{{"id":{id},"container":{container},"kind":"{kind}","intended_us":0}}"#)
}

fn accepted(t: u64, id: u64, container: u64, kind: &str, seq: u64) -> String {
    format!(
        r#"{{"t_us":{t},"node":"api","event":"accepted","op":{},"seq":{seq}}}"#,
        op(id, container, kind)
    )
}

fn terminal(t: u64, id: u64, container: u64, kind: &str) -> String {
    format!(
        r#"{{"t_us":{t},"node":"conductor-1","event":"terminal","op":{},"ok":true}}"#,
        op(id, container, kind)
    )
}

/// A host's `applied` line, recorded at its end.
#[allow(clippy::too_many_arguments)]
fn applied(
    id: u64,
    container: u64,
    kind: &str,
    seq: u64,
    (start, end): (u64, u64),
    before: &str,
    result: &str,
) -> String {
    format!(
        r#"{{"t_us":{end},"node":"host-1","event":"applied","host":0,"conductor":0,"attempt":1,"token":0,"op":{},"seq":{seq},"start_us":{start},"end_us":{end},"before":"{before}","result":{result}}}"#,
        op(id, container, kind)
    )
}

fn lines(ls: &[String]) -> String {
    ls.iter().map(|l| format!("{l}\n")).collect()
}

#[test]
fn a_clean_create_then_start_breaks_nothing() {
    let api = file(
        "clean-api.jsonl",
        &lines(&[
            accepted(1_000, 1, 7, "Create", 1),
            accepted(1_001, 2, 7, "Start", 2),
        ]),
    );
    let host = file(
        "clean-host.jsonl",
        &lines(&[
            applied(
                1,
                7,
                "Create",
                1,
                (1_010, 1_050),
                "Absent",
                r#"{"Ok":"Created"}"#,
            ),
            applied(
                2,
                7,
                "Start",
                2,
                (1_060, 1_090),
                "Created",
                r#"{"Ok":"Running"}"#,
            ),
        ]),
    );
    let cond = file(
        "clean-conductor.jsonl",
        &lines(&[
            terminal(1_055, 1, 7, "Create"),
            terminal(1_095, 2, 7, "Start"),
        ]),
    );
    let h = check_files(&[api, host, cond], InvariantSet::all()).unwrap();
    assert_eq!(h.events, 6);
    assert_eq!(h.files.len(), 3);
    assert_eq!(h.pre_existing, 0);
    assert_eq!(h.violations(), 0, "{h}");
    assert!(h.findings.violations.is_empty());
    assert!(h.warnings.is_empty());
    // The liveness invariants need the final state, which a history does not hold: not
    // judged, and said so.
    let liveness: InvariantSet = Invariant::ALL
        .into_iter()
        .filter(|i| i.kind() == Kind::Liveness)
        .collect();
    assert!(liveness.contains(Invariant::NoLostOps) && liveness.contains(Invariant::Converges));
    assert_eq!(h.not_judged, liveness);
    assert_eq!(h.judged, InvariantSet::all().without(liveness));
    assert!(h.judged.contains(Invariant::CreateBeforeUse));
    let text = h.to_string();
    assert!(
        text.contains("not judged no-lost-ops, no-stuck-state, converges (liveness"),
        "{text}"
    );
    assert!(text.contains("violations 0 found"), "{text}");
    let j = h.to_json();
    assert_eq!(j["events"], 6);
    assert_eq!(j["not_judged"][0], "no-lost-ops");
    assert_eq!(j["violations"], serde_json::json!([]));
}

#[test]
fn a_start_applied_before_its_create_breaks_create_before_use() {
    // The create was accepted first, but the host applied the start first: it found nothing.
    let api = file(
        "early-api.jsonl",
        &lines(&[
            accepted(1_000, 1, 7, "Create", 1),
            accepted(1_001, 2, 7, "Start", 2),
        ]),
    );
    let host = file(
        "early-host.jsonl",
        &lines(&[
            applied(
                2,
                7,
                "Start",
                2,
                (1_010, 1_020),
                "Absent",
                r#"{"Err":"NoSuchContainer"}"#,
            ),
            applied(
                1,
                7,
                "Create",
                1,
                (1_030, 1_060),
                "Absent",
                r#"{"Ok":"Created"}"#,
            ),
        ]),
    );
    let h = check_files(&[host, api], InvariantSet::all()).unwrap();
    assert_eq!(h.events, 4);
    assert_eq!(h.violations(), 1, "{h}");
    let v = &h.findings.violations[0];
    assert_eq!(v.invariant, Invariant::CreateBeforeUse);
    assert_eq!((v.container, v.t_us), (7, 1_020));
    assert_eq!(v.ops[0].op.id, 2);
    assert_eq!(
        v.ops[0].span,
        Some(crate::Span {
            start_us: 1_010,
            end_us: 1_020
        })
    );
    // Printed as the simulator prints a violation.
    let text = h.to_string();
    assert!(
        text.contains("violations 1 found, 1 listed\n  0.001020s create-before-use container 7: op 2 (start seq 2"),
        "{text}"
    );
    assert_eq!(h.findings.counts["create-before-use"], 1);
    // Not asked, not judged.
    let only: InvariantSet = [Invariant::Exclusive].into_iter().collect();
    let files = h.files.clone();
    assert_eq!(check_files(&files, only).unwrap().violations(), 0);
}

#[test]
fn a_container_found_at_its_host_existed_before_the_history() {
    // Pre-created by the store and the host before anything was recorded.
    let host = file(
        "pre-host.jsonl",
        &lines(&[
            applied(1, 3, "Stop", 1, (10, 20), "Running", r#"{"Ok":"Stopped"}"#),
            applied(2, 3, "Start", 2, (30, 40), "Stopped", r#"{"Ok":"Running"}"#),
        ]),
    );
    let h = check_files(&[host], InvariantSet::all()).unwrap();
    assert_eq!(h.pre_existing, 1);
    assert_eq!(h.violations(), 0, "{h}");
}

#[test]
fn a_torn_last_line_is_dropped_with_a_warning() {
    let mut text = lines(&[
        accepted(1_000, 1, 7, "Create", 1),
        applied(
            1,
            7,
            "Create",
            1,
            (1_010, 1_050),
            "Absent",
            r#"{"Ok":"Created"}"#,
        ),
    ]);
    let torn = applied(
        2,
        7,
        "Start",
        2,
        (1_060, 1_090),
        "Created",
        r#"{"Ok":"Running"}"#,
    );
    text.push_str(&torn[..torn.len() / 2]);
    let p = file("torn.jsonl", &text);
    let h = check_files(std::slice::from_ref(&p), InvariantSet::all()).unwrap();
    assert_eq!(h.events, 2);
    assert_eq!(h.warnings.len(), 1);
    assert!(
        h.warnings[0].starts_with(&format!("{}:3: a torn last line", p.display())),
        "{:?}",
        h.warnings
    );
    assert!(h.to_string().contains("warning    "), "{h}");
    // A last line whole without its newline is an event like any other.
    let p = file(
        "unterminated.jsonl",
        text.trim_end_matches(|c| c != '\n').trim_end(),
    );
    let h = check_files(&[p], InvariantSet::all()).unwrap();
    assert_eq!((h.events, h.warnings.len()), (2, 0));
}

#[test]
fn a_malformed_line_is_an_error_naming_file_and_line() {
    let text = lines(&[
        accepted(1_000, 1, 7, "Create", 1),
        r#"{"t_us":1001,"node":"api","event":"accepted","op":{"id":2}}"#.to_string(),
        accepted(1_002, 3, 7, "Start", 2),
    ]);
    let p = file("malformed.jsonl", &text);
    let e = check_files(std::slice::from_ref(&p), InvariantSet::all()).unwrap_err();
    assert!(
        matches!(e, HistoryError::Malformed { line: 2, .. }),
        "{e:?}"
    );
    let msg = e.to_string();
    assert!(
        msg.starts_with(&format!("{}:2: not an event", p.display())),
        "{msg}"
    );
    // Not valid JSON at all, and a blank line: errors too, never skipped.
    for (bad, what) in [("not json", "expected"), ("", "EOF")] {
        let p = file(
            "bad.jsonl",
            &format!(
                "{}{bad}\n{}",
                lines(&[accepted(1, 1, 1, "Create", 1)]),
                lines(&[accepted(2, 2, 1, "Start", 2)])
            ),
        );
        let msg = check_files(&[p], InvariantSet::all())
            .unwrap_err()
            .to_string();
        assert!(msg.contains("bad.jsonl:2: ") && msg.contains(what), "{msg}");
    }
    // A file that cannot be read names it.
    let missing = PathBuf::from("/nonexistent/history.jsonl");
    let msg = check_files(&[missing], InvariantSet::all())
        .unwrap_err()
        .to_string();
    assert!(
        msg.starts_with("/nonexistent/history.jsonl: cannot read it"),
        "{msg}"
    );
}

#[test]
fn every_event_the_recorder_writes_reads_back() {
    use conductor::op::{HostError, OpKind, Status};
    use conductor::proto::OpSpec;
    use conductor::recorder::{JsonLines, Recorder, Recovery};
    use std::sync::{Arc, Mutex};

    /// A writer whose bytes the test can read afterwards.
    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let op = OpSpec {
        id: 4,
        container: 2,
        kind: OpKind::Stop,
        intended_us: 9,
        deadline: None,
    };
    let all = [
        Event::Accepted { op, seq: 3 },
        Event::Rejected { op },
        Event::PoolArrival {
            conductor: 1,
            op,
            exhausted: true,
        },
        Event::PoolBusy {
            conductor: 1,
            busy: 2,
        },
        Event::RpcBusy {
            conductor: 1,
            busy: 2,
        },
        Event::CallerRuns { conductor: 0 },
        Event::Hold {
            conductor: 0,
            hold_us: 5,
        },
        Event::BacklogWait {
            conductor: 0,
            wait_us: 5,
        },
        Event::Terminal { op, ok: false },
        Event::Applied {
            host: 1,
            conductor: 0,
            attempt: 2,
            token: 7,
            op,
            seq: 3,
            start_us: 10,
            end_us: 20,
            before: Truth::Running,
            result: Err(HostError::Fenced),
        },
        Event::NotReady {
            conductor: 0,
            op,
            seq: 3,
            attempt: 1,
            delay_us: 100,
        },
        Event::GaveUp {
            conductor: 0,
            op,
            seq: 3,
            attempts: 4,
        },
        Event::Recovered {
            conductor: 0,
            op,
            seq: 3,
            action: Recovery::ForceDeleted,
        },
        Event::Reconciled {
            conductor: 0,
            container: 2,
            from: Status::Creating,
            to: Status::Running,
        },
        Event::Orphaned {
            conductor: 0,
            op,
            seq: 3,
        },
        Event::LockWait {
            conductor: 0,
            op,
            wait_us: 8,
        },
    ];
    let buf = Buf::default();
    let rec = JsonLines::new("conductor-1", Box::new(buf.clone()));
    let before = rec.now_us();
    for ev in all {
        rec.record(ev);
    }
    let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
    let p = file("every-event.jsonl", &text);
    let mut warnings = Vec::new();
    let back = read(&p, &mut warnings, &mut FinalStates::default()).unwrap();
    assert!(warnings.is_empty());
    assert_eq!(back.iter().map(|(_, e)| *e).collect::<Vec<_>>(), all);
    // Wall-clock time since the UNIX epoch: after 2020, and never going back within one file.
    assert!(back
        .iter()
        .all(|(t, _)| *t >= before && *t > 1_577_836_800_000_000));
}

/// The final state lines the real store and host write when stopped, as the recorder writes
/// them (`FinalLine::of_store`, `of_host`), at `t`.
fn final_lines(t: u64, node: &str, ls: &[crate::final_state::FinalLine]) -> Vec<String> {
    ls.iter()
        .map(|l| {
            let mut v = serde_json::to_value(l).unwrap();
            let m = v.as_object_mut().unwrap();
            m.insert("t_us".into(), t.into());
            m.insert("node".into(), node.into());
            serde_json::to_string(&v).unwrap()
        })
        .collect()
}

/// A create then a start of container 7 on host 0, applied and terminal: the events of a
/// clean history, in three files.
fn clean_events(tag: &str) -> Vec<PathBuf> {
    vec![
        file(
            &format!("{tag}-api.jsonl"),
            &lines(&[
                accepted(1_000, 1, 7, "Create", 1),
                accepted(1_001, 2, 7, "Start", 2),
            ]),
        ),
        file(
            &format!("{tag}-host.jsonl"),
            &lines(&[
                applied(
                    1,
                    7,
                    "Create",
                    1,
                    (1_010, 1_050),
                    "Absent",
                    r#"{"Ok":"Created"}"#,
                ),
                applied(
                    2,
                    7,
                    "Start",
                    2,
                    (1_060, 1_090),
                    "Created",
                    r#"{"Ok":"Running"}"#,
                ),
            ]),
        ),
        file(
            &format!("{tag}-conductor.jsonl"),
            &lines(&[
                terminal(1_055, 1, 7, "Create"),
                terminal(1_095, 2, 7, "Start"),
            ]),
        ),
    ]
}

#[test]
fn final_states_let_the_liveness_invariants_be_judged() {
    use crate::final_state::FinalLine;
    use conductor::op::{Status, Truth};
    let record = |status| FinalLine::FinalRecord {
        container: 7,
        status,
        task_state: None,
        host: 0,
    };
    let store = |status| {
        vec![
            record(status),
            FinalLine::FinalStore {
                hosts: 1,
                records: 1,
                ops: 0,
            },
        ]
    };
    let host = vec![
        FinalLine::FinalTruth {
            host: 0,
            container: 7,
            truth: Truth::Running,
        },
        FinalLine::FinalHost {
            host: 0,
            containers: 1,
        },
    ];
    // The store and the host agree: every invariant judged, none broken.
    let mut files = clean_events("final-ok");
    files.push(file(
        "final-ok-store-final.jsonl",
        &lines(&final_lines(2_000, "store", &store(Status::Running))),
    ));
    files.push(file(
        "final-ok-host-final.jsonl",
        &lines(&final_lines(2_001, "host-1", &host)),
    ));
    let h = check_files(&files, InvariantSet::all()).unwrap();
    assert!(h.final_state, "{h}");
    assert_eq!(h.judged, InvariantSet::all());
    assert!(h.not_judged.is_empty() && h.not_judged_why.is_none(), "{h}");
    assert_eq!(h.violations(), 0, "{h}");
    // Final lines are not events.
    assert_eq!(h.events, 6, "{h}");

    // The record says Stopped while the host runs it: `converges` breaks, at the last final
    // state's time.
    let mut files = clean_events("final-diverged");
    files.push(file(
        "final-diverged-store-final.jsonl",
        &lines(&final_lines(2_000, "store", &store(Status::Stopped))),
    ));
    files.push(file(
        "final-diverged-host-final.jsonl",
        &lines(&final_lines(2_001, "host-1", &host)),
    ));
    let h = check_files(&files, InvariantSet::all()).unwrap();
    assert_eq!(h.findings.counts.get("converges"), Some(&1), "{h}");
    assert!(
        h.to_string()
            .contains("converges container 7: the record says Stopped but host-1 holds Running"),
        "{h}"
    );

    // An op left executing in the store: `no-lost-ops`.
    let mut lost = store(Status::Running);
    lost.insert(
        1,
        FinalLine::FinalOp {
            op: conductor::proto::OpSpec {
                id: 3,
                container: 7,
                kind: conductor::op::OpKind::Stop,
                intended_us: 0,
                deadline: None,
            },
            seq: 3,
            state: "Executing".into(),
            owner: Some(1),
        },
    );
    lost[2] = FinalLine::FinalStore {
        hosts: 1,
        records: 1,
        ops: 1,
    };
    let mut files = clean_events("final-lost");
    files.push(file(
        "final-lost-store-final.jsonl",
        &lines(&final_lines(2_000, "store", &lost)),
    ));
    files.push(file(
        "final-lost-host-final.jsonl",
        &lines(&final_lines(2_001, "host-1", &host)),
    ));
    let h = check_files(&files, InvariantSet::all()).unwrap();
    assert_eq!(h.findings.counts.get("no-lost-ops"), Some(&1), "{h}");
    assert!(
        h.to_string()
            .contains("is still Executing (owner conductor-2) in the store"),
        "{h}"
    );
}

#[test]
fn an_incomplete_final_state_is_not_judged_and_says_why() {
    use crate::final_state::FinalLine;
    use conductor::op::Status;
    let store = final_lines(
        2_000,
        "store",
        &[
            FinalLine::FinalRecord {
                container: 7,
                status: Status::Running,
                task_state: None,
                host: 0,
            },
            FinalLine::FinalStore {
                hosts: 2,
                records: 1,
                ops: 0,
            },
        ],
    );
    // The host's state never came: liveness is not judged, naming what is missing.
    let mut files = clean_events("final-missing");
    files.push(file("final-missing-store.jsonl", &lines(&store)));
    let h = check_files(&files, InvariantSet::all()).unwrap();
    assert!(!h.final_state);
    assert_eq!(
        h.not_judged_why.as_deref(),
        Some("the history holds no final state of host-1, host-2")
    );
    assert!(h.judged.contains(Invariant::Exclusive));
    assert!(!h.judged.contains(Invariant::Converges));

    // A store's state cut off before its trailer is dropped with a warning.
    let mut files = clean_events("final-torn");
    files.push(file("final-torn-store.jsonl", &lines(&store[..1])));
    let h = check_files(&files, InvariantSet::all()).unwrap();
    assert_eq!(
        h.not_judged_why.as_deref(),
        Some("the history holds no final state of the store")
    );
    assert!(
        h.warnings.iter().any(|w| w.contains("has no trailer")),
        "{:?}",
        h.warnings
    );

    // A task_state no op has is bad input naming the line.
    let bad = store[0].replace(r#""task_state":null"#, r#""task_state":"container_flying""#);
    let p = file("final-bad-store.jsonl", &lines(&[bad]));
    let e = check_files(&[p], InvariantSet::all())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("final-bad-store.jsonl:1:") && e.contains("container_flying"),
        "{e}"
    );
}
