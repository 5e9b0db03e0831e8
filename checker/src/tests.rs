//! Hand-written histories: every invariant both broken and kept, and the edge cases (a 304
//! re-issue, a re-create after a delete, fenced refusals, blocking ops).

use super::*;
use conductor::op::OpKind::*;
use conductor::op::{HostError, OpKind, Status, Truth};
use conductor::proto::OpSpec;
use conductor::recorder::Event;
use std::collections::BTreeMap;
use Invariant::*;

fn spec(id: u64, container: u64, kind: OpKind) -> OpSpec {
    OpSpec {
        id,
        container,
        kind,
        intended_us: 0,
        deadline: None,
    }
}

/// An op applied at host 0 by conductor 0, first attempt, no token.
#[allow(clippy::too_many_arguments)]
fn applied(
    id: u64,
    container: u64,
    kind: OpKind,
    seq: u64,
    (start_us, end_us): (u64, u64),
    before: Truth,
    result: Result<Truth, HostError>,
) -> Event {
    on_host(
        0,
        id,
        container,
        kind,
        seq,
        (start_us, end_us),
        before,
        result,
    )
}

#[allow(clippy::too_many_arguments)]
fn on_host(
    host: u32,
    id: u64,
    container: u64,
    kind: OpKind,
    seq: u64,
    (start_us, end_us): (u64, u64),
    before: Truth,
    result: Result<Truth, HostError>,
) -> Event {
    Event::Applied {
        host,
        conductor: 0,
        attempt: 1,
        token: 0,
        op: spec(id, container, kind),
        seq,
        start_us,
        end_us,
        before,
        result,
    }
}

/// Feeds `events` (each observed at its end time, or at `t` for the others) to a checker of
/// every invariant, with container 1 pre-created Running on host 0, then an empty final
/// snapshot; returns the counts per invariant.
fn run(events: &[Event]) -> BTreeMap<String, u64> {
    run_with(InvariantSet::all(), events, &Snapshot::default()).counts
}

fn run_with(on: InvariantSet, events: &[Event], snap: &Snapshot) -> Findings {
    let mut c = Checker::new(9, on);
    c.precreated(1, 0, Truth::Running);
    let mut t = 0;
    for ev in events {
        if let Event::Applied { end_us, .. } = ev {
            t = *end_us;
        }
        c.observe(t, ev);
    }
    c.finish(t + 1, snap);
    c.findings()
}

fn counts(pairs: &[(Invariant, u64)]) -> BTreeMap<String, u64> {
    pairs
        .iter()
        .map(|(i, n)| (i.name().to_string(), *n))
        .collect()
}

const OK: fn(Truth) -> Result<Truth, HostError> = Ok;

#[test]
fn create_before_use_held() {
    // Container 2 is created, then used after the create completed.
    let h = [
        applied(1, 2, Create, 1, (0, 10), Truth::Absent, OK(Truth::Created)),
        applied(2, 2, Start, 2, (10, 20), Truth::Created, OK(Truth::Running)),
        applied(3, 2, Logs, 0, (25, 26), Truth::Running, OK(Truth::Running)),
        // A pre-created container needs no create.
        applied(4, 1, Stop, 1, (30, 40), Truth::Running, OK(Truth::Stopped)),
    ];
    assert_eq!(run(&h), counts(&[]));
}

#[test]
fn create_before_use_violated() {
    // A start reaches a container that was never created: the host says 404.
    let h = [applied(
        1,
        2,
        Start,
        2,
        (0, 10),
        Truth::Absent,
        Err(HostError::NoSuchContainer),
    )];
    let f = run_with(InvariantSet::all(), &h, &Snapshot::default());
    assert_eq!(f.counts, counts(&[(CreateBeforeUse, 1)]));
    let v = &f.violations[0];
    assert_eq!((v.container, v.t_us, v.seed), (2, 10, 9));
    assert_eq!(
        v.ops,
        [Involved {
            op: OpRef {
                id: 1,
                kind: Start,
                seq: 2
            },
            span: Some(Span {
                start_us: 0,
                end_us: 10
            }),
        }]
    );
    assert!(v.detail.contains("NoSuchContainer"), "{}", v.detail);
    let j = v.to_json();
    assert_eq!(j["invariant"], "create-before-use");
    assert_eq!(j["ops"][0]["kind"], "start");
    assert_eq!(j["time"], "0.000010s");

    // A start that began at the host before the create completed there (they overlap, too).
    let h = [
        applied(1, 2, Create, 1, (0, 10), Truth::Absent, OK(Truth::Created)),
        applied(2, 2, Start, 2, (5, 12), Truth::Created, OK(Truth::Running)),
    ];
    assert_eq!(run(&h), counts(&[(CreateBeforeUse, 1), (Exclusive, 1)]));

    // The "delete during create" race: a delete reaches the host while the container's create
    // is still pending (accepted, not terminal).
    let delete_first = applied(2, 2, Delete, 2, (0, 10), Truth::Absent, OK(Truth::Absent));
    let h = [
        Event::Accepted {
            op: spec(1, 2, Create),
            seq: 1,
        },
        delete_first,
    ];
    assert_eq!(run(&h), counts(&[(CreateBeforeUse, 1)]));
    // But once the create is over without creating anything (it failed), deleting is the
    // clean-up, a 304 at the host.
    let h = [
        Event::Accepted {
            op: spec(1, 2, Create),
            seq: 1,
        },
        Event::Terminal {
            op: spec(1, 2, Create),
            ok: false,
        },
        delete_first,
    ];
    assert_eq!(run(&h), counts(&[]));

    // Blocking ops count too (but are not judged by `exclusive`).
    let h = [
        applied(1, 2, Create, 1, (0, 10), Truth::Absent, OK(Truth::Created)),
        applied(2, 2, Exec, 0, (3, 11), Truth::Created, OK(Truth::Created)),
    ];
    assert_eq!(run(&h), counts(&[(CreateBeforeUse, 1)]));
}

#[test]
fn no_use_after_delete_held() {
    let h = [
        applied(1, 1, Delete, 1, (0, 10), Truth::Running, OK(Truth::Absent)),
        // A second delete is idempotent.
        applied(2, 1, Delete, 2, (20, 30), Truth::Absent, OK(Truth::Absent)),
        // A re-create sent after the delete: a new incarnation, in order.
        applied(3, 1, Create, 3, (30, 40), Truth::Absent, OK(Truth::Created)),
        applied(4, 1, Start, 4, (40, 50), Truth::Created, OK(Truth::Running)),
    ];
    assert_eq!(run(&h), counts(&[]));
}

#[test]
fn no_use_after_delete_violated() {
    let h = [
        applied(1, 1, Delete, 2, (0, 10), Truth::Running, OK(Truth::Absent)),
        // A stop sent before the delete arrives after it.
        applied(
            2,
            1,
            Stop,
            1,
            (20, 30),
            Truth::Absent,
            Err(HostError::NoSuchContainer),
        ),
    ];
    let f = run_with(InvariantSet::all(), &h, &Snapshot::default());
    assert_eq!(f.counts, counts(&[(NoUseAfterDelete, 1)]));
    assert_eq!(
        f.violations[0]
            .ops
            .iter()
            .map(|o| o.op.id)
            .collect::<Vec<_>>(),
        [1, 2]
    );

    // A create sent before the delete re-creates the container after it (and is out of order).
    let h = [
        applied(1, 1, Delete, 3, (0, 10), Truth::Running, OK(Truth::Absent)),
        applied(2, 1, Create, 2, (20, 30), Truth::Absent, OK(Truth::Created)),
    ];
    assert_eq!(
        run(&h),
        counts(&[(NoUseAfterDelete, 1), (PerContainerOrder, 1)])
    );
}

#[test]
fn recreate_on_another_host_is_a_new_container_there() {
    let h = [
        on_host(
            0,
            1,
            1,
            Delete,
            1,
            (0, 10),
            Truth::Running,
            OK(Truth::Absent),
        ),
        on_host(
            1,
            2,
            1,
            Create,
            2,
            (10, 20),
            Truth::Absent,
            OK(Truth::Created),
        ),
        on_host(
            1,
            3,
            1,
            Start,
            3,
            (20, 30),
            Truth::Created,
            OK(Truth::Running),
        ),
    ];
    assert_eq!(run(&h), counts(&[]));
    // But a late op at the old host still reaches a deleted container.
    let mut late = h.to_vec();
    late.push(on_host(
        0,
        4,
        1,
        Stop,
        4,
        (30, 40),
        Truth::Absent,
        Err(HostError::NoSuchContainer),
    ));
    assert_eq!(run(&late), counts(&[(NoUseAfterDelete, 1)]));
}

#[test]
fn exclusive_held_and_violated() {
    // Back to back: [0, 10) then [10, 20) do not overlap.
    let held = [
        applied(1, 1, Stop, 1, (0, 10), Truth::Running, OK(Truth::Stopped)),
        applied(2, 1, Start, 2, (10, 20), Truth::Stopped, OK(Truth::Running)),
    ];
    assert_eq!(run(&held), counts(&[]));
    // [0, 30) and [10, 20): the second ends first and overlaps.
    let broken = [
        applied(2, 1, Stop, 2, (10, 20), Truth::Running, OK(Truth::Stopped)),
        applied(1, 1, Start, 1, (0, 30), Truth::Stopped, OK(Truth::Running)),
    ];
    let f = run_with(InvariantSet::all(), &broken, &Snapshot::default());
    // The later-ending op carries the lower sequence number: out of order too.
    assert_eq!(f.counts, counts(&[(Exclusive, 1), (PerContainerOrder, 1)]));
    let v = &f.violations[0];
    assert_eq!(v.invariant, Exclusive);
    assert_eq!(v.ops.iter().map(|o| o.op.id).collect::<Vec<_>>(), [2, 1]);
    // Both ops carry their host intervals, in the JSON too: what the timeline draws.
    let spans: Vec<_> = v
        .ops
        .iter()
        .map(|o| o.span.map(|s| (s.start_us, s.end_us)))
        .collect();
    assert_eq!(spans, [Some((10, 20)), Some((0, 30))]);
    let j = v.to_json();
    assert_eq!(
        (&j["ops"][0]["start_us"], &j["ops"][0]["end_us"]),
        (&serde_json::json!(10), &serde_json::json!(20))
    );
    assert_eq!(j["ops"][1]["start_us"], 0);
    // Other containers and blocking ops do not count.
    let other = [
        applied(1, 1, Stop, 1, (0, 20), Truth::Running, OK(Truth::Stopped)),
        applied(2, 3, Create, 1, (0, 10), Truth::Absent, OK(Truth::Created)),
        applied(3, 1, Logs, 0, (5, 25), Truth::Stopped, OK(Truth::Stopped)),
    ];
    assert_eq!(run(&other), counts(&[]));
}

#[test]
fn per_container_order_held_and_violated() {
    let held = [
        applied(1, 1, Stop, 1, (0, 10), Truth::Running, OK(Truth::Stopped)),
        // A re-issue of the same op (equal seq), a 304 no-op: fine.
        applied(1, 1, Stop, 1, (10, 20), Truth::Stopped, OK(Truth::Stopped)),
        applied(2, 1, Start, 2, (20, 30), Truth::Stopped, OK(Truth::Running)),
        // Refused ops are not applied: their order is not judged.
        applied(
            3,
            1,
            Unpause,
            1,
            (30, 40),
            Truth::Running,
            Err(HostError::Conflict),
        ),
    ];
    assert_eq!(run(&held), counts(&[]));
    let broken = [
        applied(2, 1, Start, 3, (0, 10), Truth::Running, OK(Truth::Running)),
        applied(1, 1, Stop, 2, (10, 20), Truth::Running, OK(Truth::Stopped)),
    ];
    let f = run_with(InvariantSet::all(), &broken, &Snapshot::default());
    assert_eq!(f.counts, counts(&[(PerContainerOrder, 1)]));
    assert_eq!(f.violations[0].ops[0].op.seq, 3);
    assert_eq!(f.violations[0].ops[1].op.seq, 2);
    let spans: Vec<_> = f.violations[0].ops.iter().map(|o| o.span).collect();
    assert_eq!(
        spans,
        [
            Some(Span {
                start_us: 0,
                end_us: 10
            }),
            Some(Span {
                start_us: 10,
                end_us: 20
            })
        ]
    );
}

#[test]
fn at_most_once_held_and_violated() {
    // A re-issued op that finds its work done is a 304 no-op: fine.
    let held = [
        applied(7, 1, Stop, 1, (0, 10), Truth::Running, OK(Truth::Stopped)),
        applied(7, 1, Stop, 1, (10, 20), Truth::Stopped, OK(Truth::Stopped)),
    ];
    assert_eq!(run(&held), counts(&[]));
    // The same op changing the state twice (a re-issue after a later op undid it).
    let broken = [
        applied(7, 1, Stop, 1, (0, 10), Truth::Running, OK(Truth::Stopped)),
        applied(8, 1, Start, 2, (10, 20), Truth::Stopped, OK(Truth::Running)),
        applied(7, 1, Stop, 1, (20, 30), Truth::Running, OK(Truth::Stopped)),
    ];
    assert_eq!(
        run(&broken),
        counts(&[(PerContainerOrder, 1), (AtMostOnce, 1)])
    );
}

#[test]
fn the_ring_forgets_beyond_its_bound() {
    // Op 1 changes the state, then CHANGERS_KEPT other ops do, then op 1 again: the ring no
    // longer holds it (documented), while a re-change within the bound is caught.
    let mut h = vec![applied(
        1,
        1,
        Stop,
        1,
        (0, 1),
        Truth::Running,
        OK(Truth::Stopped),
    )];
    let mut truth = Truth::Stopped;
    for i in 0..CHANGERS_KEPT as u64 {
        let (kind, next) = if truth == Truth::Stopped {
            (Start, Truth::Running)
        } else {
            (Stop, Truth::Stopped)
        };
        h.push(applied(
            100 + i,
            1,
            kind,
            1,
            (2 + 2 * i, 3 + 2 * i),
            truth,
            OK(next),
        ));
        truth = next;
    }
    let again = |truth| {
        let next = if truth == Truth::Running {
            Truth::Stopped
        } else {
            Truth::Running
        };
        applied(1, 1, Stop, 1, (1000, 1001), truth, OK(next))
    };
    let mut forgotten = h.clone();
    forgotten.push(again(truth));
    assert_eq!(run(&forgotten), counts(&[]));
    let mut caught = h[..10].to_vec();
    caught.push(again(Truth::Stopped));
    assert_eq!(run(&caught), counts(&[(AtMostOnce, 1)]));
}

#[test]
fn fenced_refusals_are_ignored() {
    let h = [
        // On a container never created, and overlapping each other: refused, so nothing.
        applied(
            1,
            2,
            Start,
            2,
            (0, 10),
            Truth::Absent,
            Err(HostError::Fenced),
        ),
        applied(
            2,
            2,
            Stop,
            1,
            (5, 12),
            Truth::Absent,
            Err(HostError::Fenced),
        ),
        applied(3, 1, Stop, 1, (0, 20), Truth::Running, OK(Truth::Stopped)),
        applied(
            4,
            1,
            Start,
            2,
            (5, 25),
            Truth::Stopped,
            Err(HostError::Fenced),
        ),
    ];
    assert_eq!(run(&h), counts(&[]));
}

fn accepted(id: u64, container: u64, kind: OpKind, seq: u64) -> Event {
    Event::Accepted {
        op: spec(id, container, kind),
        seq,
    }
}

fn terminal(id: u64, container: u64, kind: OpKind) -> Event {
    Event::Terminal {
        op: spec(id, container, kind),
        ok: true,
    }
}

#[test]
fn no_lost_ops_held_and_violated() {
    let held = [
        accepted(1, 1, Stop, 1),
        accepted(2, 1, Logs, 0),
        terminal(2, 1, Logs),
        terminal(1, 1, Stop),
        // An async op whose conductor died between its final write and its report: terminal
        // in the store (no record left), without a `Terminal` event.
        accepted(4, 1, Start, 2),
    ];
    assert_eq!(run(&held), counts(&[]));
    // A blocking op never answered, an async op still executing, and one whose record was left
    // behind although it was reported terminal.
    let broken = [
        accepted(1, 1, Stop, 1),
        accepted(2, 1, Logs, 0),
        accepted(3, 1, Start, 2),
        terminal(3, 1, Start),
    ];
    let snap = Snapshot {
        ops: vec![
            FinalOp {
                op: spec(1, 1, Stop),
                seq: 1,
                state: "Executing".into(),
                owner: Some(0),
            },
            FinalOp {
                op: spec(3, 1, Start),
                seq: 2,
                state: "Accepted".into(),
                owner: None,
            },
        ],
        ..Snapshot::default()
    };
    let f = run_with(InvariantSet::all(), &broken, &snap);
    assert_eq!(f.counts, counts(&[(NoLostOps, 3)]));
    let ids: Vec<u64> = f.violations.iter().map(|v| v.ops[0].op.id).collect();
    assert_eq!(ids, [1, 2, 3]);
    // No host interval for what the end of the drain judges: no keys in the JSON either.
    assert!(f.violations[0].ops[0].span.is_none());
    assert!(f.violations[0].to_json()["ops"][0]
        .get("start_us")
        .is_none());
    assert!(f.violations[0]
        .detail
        .contains("Executing (owner conductor-1)"));
    assert!(
        f.violations[1].detail.contains("never answered"),
        "{}",
        f.violations[1].detail
    );
}

fn record(container: u64, status: Status, task_state: Option<&'static str>) -> FinalRecord {
    FinalRecord {
        container,
        status,
        task_state,
        host: 0,
    }
}

#[test]
fn no_stuck_state_held_and_violated() {
    let held = Snapshot {
        records: vec![
            record(1, Status::Running, None),
            record(2, Status::Deleted, None),
        ],
        truths: vec![(0, 1, Truth::Running)],
        ..Snapshot::default()
    };
    assert!(run_with(InvariantSet::all(), &[], &held).counts.is_empty());
    let broken = Snapshot {
        records: vec![
            record(1, Status::Running, Some("container_stopping")),
            record(2, Status::Creating, None),
            record(3, Status::Deleting, None),
        ],
        truths: vec![(0, 1, Truth::Running), (0, 2, Truth::Created)],
        ..Snapshot::default()
    };
    let on: InvariantSet = [NoStuckState].into_iter().collect();
    let f = run_with(on, &[], &broken);
    assert_eq!(f.counts, counts(&[(NoStuckState, 3)]));
    assert!(f.violations[0].detail.contains("container_stopping"));
}

#[test]
fn converges_held_and_violated() {
    let held = Snapshot {
        records: vec![
            record(1, Status::Running, None),
            record(2, Status::Stopped, None),
            record(3, Status::Deleted, None),
            record(4, Status::Paused, None),
            record(5, Status::Created, None),
        ],
        truths: vec![
            (0, 1, Truth::Running),
            (0, 2, Truth::Stopped),
            (0, 4, Truth::Paused),
            (0, 5, Truth::Created),
        ],
        ..Snapshot::default()
    };
    assert!(run_with(InvariantSet::all(), &[], &held).counts.is_empty());
    let broken = Snapshot {
        records: vec![
            // The record says Running, the host holds it stopped.
            record(1, Status::Running, None),
            // Error agrees with nothing.
            record(2, Status::Error, None),
            // Deleted, but still on the host.
            record(3, Status::Deleted, None),
        ],
        truths: vec![
            (0, 1, Truth::Stopped),
            (0, 2, Truth::Stopped),
            (0, 3, Truth::Running),
            // A container with no record at all, and one on a host its record does not name.
            (0, 9, Truth::Running),
            (1, 1, Truth::Created),
        ],
        ..Snapshot::default()
    };
    let f = run_with([Converges].into_iter().collect(), &[], &broken);
    assert_eq!(f.counts, counts(&[(Converges, 5)]));
    let containers: Vec<u64> = f.violations.iter().map(|v| v.container).collect();
    assert_eq!(containers, [1, 2, 3, 1, 9]);
    assert!(
        f.violations[3].detail.contains("host-2"),
        "{}",
        f.violations[3].detail
    );
}

#[test]
fn blocking_inline_held_and_violated() {
    let arrival = |id, kind| Event::PoolArrival {
        conductor: 1,
        op: spec(id, 1, kind),
        exhausted: false,
    };
    assert_eq!(run(&[arrival(1, Start), arrival(2, Delete)]), counts(&[]));
    let f = run_with(
        InvariantSet::all(),
        &[arrival(1, Start), arrival(2, Exec)],
        &Snapshot::default(),
    );
    assert_eq!(f.counts, counts(&[(BlockingInline, 1)]));
    assert!(f.violations[0].detail.contains("conductor-2"));
}

#[test]
fn only_the_chosen_invariants_are_judged() {
    let h = [
        applied(
            1,
            2,
            Start,
            2,
            (0, 10),
            Truth::Absent,
            Err(HostError::NoSuchContainer),
        ),
        applied(3, 1, Stop, 1, (0, 20), Truth::Running, OK(Truth::Stopped)),
        applied(4, 1, Start, 2, (5, 25), Truth::Stopped, OK(Truth::Running)),
        accepted(5, 1, Exec, 0),
    ];
    assert_eq!(
        run(&h),
        counts(&[(CreateBeforeUse, 1), (Exclusive, 1), (NoLostOps, 1)])
    );
    let only: InvariantSet = [Exclusive].into_iter().collect();
    let f = run_with(only, &h, &Snapshot::default());
    assert_eq!(f.counts, counts(&[(Exclusive, 1)]));
    let none = InvariantSet::default();
    assert_eq!(
        run_with(none, &h, &Snapshot::default()),
        Findings::default()
    );
}

#[test]
fn listing_is_bounded_and_counting_is_not() {
    // 25 overlapping stops on one container: every one after the first overlaps.
    let h: Vec<Event> = (0..26)
        .map(|i| {
            applied(
                i,
                1,
                Stop,
                1,
                (0, 100 + i),
                Truth::Stopped,
                OK(Truth::Stopped),
            )
        })
        .collect();
    let f = run_with(InvariantSet::all(), &h, &Snapshot::default());
    assert_eq!(f.counts, counts(&[(Exclusive, 25)]));
    assert_eq!(f.violations.len(), LISTED_PER_INVARIANT);
    // In the order found.
    assert!(f.violations.windows(2).all(|w| w[0].t_us < w[1].t_us));
}

#[test]
fn echo_hands_every_violation_to_a_trace() {
    let mut c = Checker::new(1, InvariantSet::all());
    c.echo(true);
    c.precreated(1, 0, Truth::Running);
    for i in 0..30 {
        c.observe(
            100 + i,
            &applied(
                i,
                1,
                Stop,
                1,
                (0, 100 + i),
                Truth::Stopped,
                OK(Truth::Stopped),
            ),
        );
    }
    assert!(c.has_fresh());
    assert_eq!(c.take_fresh().len(), 29);
    assert!(!c.has_fresh());
    assert_eq!(c.findings().violations.len(), LISTED_PER_INVARIANT);
}

#[test]
fn what_is_kept_per_container_stays_small() {
    // The checker keeps one of these per (container, host) for the whole run: the host
    // intervals it keeps for the timelines of violations must not make it balloon.
    let size = std::mem::size_of::<invariants::PerHost>();
    assert!(size <= 160, "PerHost is {size} bytes");
}

#[test]
fn invariant_names_round_trip() {
    for i in Invariant::ALL {
        assert_eq!(Invariant::from_name(i.name()), Some(i));
    }
    assert_eq!(
        InvariantSet::from_names(&["all"]).unwrap(),
        InvariantSet::all()
    );
    let two = InvariantSet::from_names(&["exclusive", "converges"]).unwrap();
    assert_eq!(two.iter().collect::<Vec<_>>(), [Exclusive, Converges]);
    assert!(InvariantSet::from_names::<&str>(&[]).unwrap().is_empty());
    let e = InvariantSet::from_names(&["exclusiv"])
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("exclusiv") && e.contains("create-before-use"),
        "{e}"
    );
    assert_eq!(sim_time(12_345_678), "12.345678s");
    assert_eq!(sim_time(5), "0.000005s");
}

#[test]
fn the_registry_describes_every_invariant_once() {
    use std::collections::BTreeSet;
    let names: BTreeSet<&str> = Invariant::ALL.iter().map(|i| i.name()).collect();
    let shorts: BTreeSet<&str> = Invariant::ALL.iter().map(|i| i.short()).collect();
    assert_eq!(names.len(), Invariant::COUNT);
    assert_eq!(shorts.len(), Invariant::COUNT);
    for (n, i) in Invariant::ALL.into_iter().enumerate() {
        assert_eq!(i as usize, n, "ALL is in declaration order");
        assert!(!i.doc().is_empty(), "{i} has a doc");
    }
    // The contract's table (docs/design-matrix.md), in its order (a new invariant comes
    // after these): six safety invariants and three liveness ones.
    assert_eq!(
        Invariant::ALL.map(|i| i.name())[..9],
        [
            "create-before-use",
            "no-use-after-delete",
            "exclusive",
            "per-container-order",
            "at-most-once",
            "no-lost-ops",
            "no-stuck-state",
            "converges",
            "blocking-inline",
        ]
    );
    let liveness: Vec<Invariant> = Invariant::ALL[..9]
        .iter()
        .copied()
        .filter(|i| i.kind() == Kind::Liveness)
        .collect();
    assert_eq!(liveness, [NoLostOps, NoStuckState, Converges]);
    // Judged at the hosts: the five the per-(container, host) state serves.
    assert!(Invariant::ON_HOSTS
        .iter()
        .collect::<Vec<_>>()
        .starts_with(&[
            CreateBeforeUse,
            NoUseAfterDelete,
            Exclusive,
            PerContainerOrder,
            AtMostOnce
        ]));
    assert!(
        !Invariant::ON_HOSTS.contains(NoLostOps) && !Invariant::ON_HOSTS.contains(BlockingInline)
    );
    // Names in JSON and TOML, as the keyword enums.
    assert_eq!(
        serde_json::to_string(&AtMostOnce).unwrap(),
        "\"at-most-once\""
    );
    assert_eq!(
        serde_json::from_str::<Invariant>("\"converges\"").unwrap(),
        Converges
    );
    assert!(serde_json::from_str::<Invariant>("\"convergez\"").is_err());
}

#[test]
fn a_cancelled_op_is_not_lost_and_a_lost_one_still_is() {
    use conductor::cancel::Cancelled;
    use conductor::proto::{CoordCmd, StoreCmd, StoreResp};
    use conductor::store::StoreState;
    // The store as the run leaves it: op 1 cancelled past its deadline (terminal), op 2
    // accepted and never run (lost), op 3 begun by a conductor (its cancel is refused: running
    // ops are never cancelled, so it is still open, and lost at the end).
    let mut store = StoreState::new(1);
    store.precreate(1, Status::Stopped);
    for id in 1..=3 {
        let op = spec(id, 1, Start);
        let resp = store.apply(StoreCmd::Accept {
            op,
            validate: false,
        });
        assert!(matches!(resp, StoreResp::Accepted { .. }), "{resp:?}");
    }
    let begin = StoreCmd::Begin {
        op: 3,
        owner: 0,
        check: false,
        reissue: false,
    };
    assert!(matches!(store.apply(begin), StoreResp::Began { .. }));
    let cancel = |op| CoordCmd::Cancel {
        op,
        why: Cancelled::DeadlineExceeded,
    };
    assert_eq!(store.coordinate(cancel(1)), StoreResp::Ok);
    assert_eq!(store.coordinate(cancel(1)), StoreResp::NotFound, "terminal");
    assert_eq!(store.coordinate(cancel(3)), StoreResp::Busy, "running");
    let snap = Snapshot::capture(&store, &[]);
    let cancelled = |id, kind, seq| Event::Cancelled {
        conductor: Some(0),
        op: spec(id, 1, kind),
        seq,
        why: Cancelled::DeadlineExceeded,
    };
    let failed = |id, kind| Event::Terminal {
        op: spec(id, 1, kind),
        ok: false,
    };
    let events = [
        accepted(1, 1, Start, 1),
        accepted(2, 1, Start, 2),
        accepted(3, 1, Start, 3),
        cancelled(1, Start, 1),
        failed(1, Start),
        // A blocking op cancelled at the conductor: no record, answered by its cancellation.
        accepted(4, 1, Logs, 0),
        cancelled(4, Logs, 0),
        failed(4, Logs),
    ];
    let f = run_with(InvariantSet::all(), &events, &snap);
    // Only the genuinely lost ops are judged lost (op 3's begun record also leaves its
    // container's task_state set, and the snapshot has no host: those are op 3's doing).
    assert_eq!(f.counts.get("no-lost-ops"), Some(&2), "{:?}", f.violations);
    let lost: Vec<u64> = f
        .violations
        .iter()
        .filter(|v| v.invariant == NoLostOps)
        .map(|v| v.ops[0].op.id)
        .collect();
    assert_eq!(lost, [2, 3]);
    // Nothing is said about the cancelled ops, by any invariant.
    for v in &f.violations {
        assert!(
            v.ops.iter().all(|o| ![1, 4].contains(&o.op.id)),
            "a cancelled op judged: {v:?}"
        );
    }
    // The cancelled ops' own part of the history breaks nothing: without the lost ones, clean.
    let clean = Snapshot {
        ops: Vec::new(),
        ..snap.clone()
    };
    let kept: Vec<Event> = events
        .iter()
        .filter(|e| !matches!(e, Event::Accepted { op, .. } if op.id == 2 || op.id == 3))
        .copied()
        .collect();
    let f = run_with([NoLostOps].into_iter().collect(), &kept, &clean);
    assert!(f.violations.is_empty(), "{:?}", f.violations);
}
