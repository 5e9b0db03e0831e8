//! The human-readable event trace of one seed (`conductor-sim replay --trace`): one line per
//! event, streamed to a writer as the run goes — nothing of the history is kept.
//!
//! A line is the simulated time (`12.345678s`), the node that did it (`api`, `conductor-2`,
//! `host-1`, `nemesis`, `client`, `checker`), and what happened, with the container (`c17`), the
//! op (`op 42 start seq 3`), its attempt and the states it moved between. Violations appear as
//! `checker` lines the moment the checker finds them.

use checker::{sim_time, Violation};
use conductor::cancel::Deadline;
use conductor::recorder::Event;
use scenario::Node;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write;

/// A trace being written.
pub struct Trace {
    out: Box<dyn Write + Send>,
    /// Only lines about this container (and lines about no container, such as faults).
    container: Option<u64>,
    /// The conductor that last handled each op not yet terminal: a `Terminal` event does not
    /// name it. Bounded by the ops in flight.
    handler: BTreeMap<u64, u32>,
    /// Set on the first write error (a closed pipe): the trace stops, the run goes on.
    broken: bool,
    line: String,
}

impl std::fmt::Debug for Trace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Trace")
            .field("container", &self.container)
            .field("broken", &self.broken)
            .finish_non_exhaustive()
    }
}

fn us(d: u64) -> String {
    if d < 1_000 {
        format!("{d}µs")
    } else if d < 1_000_000 {
        format!("{}.{:03}ms", d / 1_000, d % 1_000)
    } else {
        sim_time(d)
    }
}

fn conductor(i: u32) -> String {
    Node::Conductor(i).to_string()
}

impl Trace {
    /// A trace written to `out`, keeping only lines about `container` when given.
    pub fn new(out: Box<dyn Write + Send>, container: Option<u64>) -> Self {
        Trace {
            out,
            container,
            handler: BTreeMap::new(),
            broken: false,
            line: String::new(),
        }
    }

    fn keep(&self, about: Option<u64>) -> bool {
        match (self.container, about) {
            (Some(want), Some(c)) => want == c,
            (Some(_), None) | (None, _) => true,
        }
    }

    fn write(&mut self, t_us: u64, node: &str, text: &str) {
        if self.broken {
            return;
        }
        self.line.clear();
        let _ = writeln!(self.line, "{:>16}  {node:<13} {text}", sim_time(t_us));
        if self.out.write_all(self.line.as_bytes()).is_err() {
            self.broken = true;
        }
    }

    /// A free-form line from `node` (faults, client retries), about `container` if any: lines
    /// about no container are kept by the `--container` filter.
    pub fn note(&mut self, t_us: u64, node: &str, container: Option<u64>, text: &str) {
        if self.keep(container) {
            self.write(t_us, node, text);
        }
    }

    /// A violation, as the checker found it.
    pub fn violation(&mut self, v: &Violation) {
        if self.keep(Some(v.container)) {
            let text = format!("VIOLATION {} c{}: {}", v.invariant, v.container, v.detail);
            self.write(v.t_us, "checker", &text);
        }
    }

    /// One event recorded at `t_us`.
    pub fn event(&mut self, t_us: u64, ev: &Event) {
        if self.broken {
            return;
        }
        let op_line =
            |op: &conductor::proto::OpSpec| format!("op {} {} c{}", op.id, op.kind, op.container);
        let (node, about, text): (String, Option<u64>, String) = match *ev {
            Event::Accepted { op, seq } => (
                "api".into(),
                Some(op.container),
                match op.deadline {
                    None => format!("accepted {} seq {seq}", op_line(&op)),
                    Some(d) => format!(
                        "accepted {} seq {seq}, {} at {}",
                        op_line(&op),
                        match d {
                            Deadline::Bus(_) => "expires on the bus",
                            Deadline::Conductor(_) => "deadline",
                        },
                        sim_time(d.at_us())
                    ),
                },
            ),
            Event::Rejected { op } => ("api".into(), Some(op.container), {
                format!("refused {}", op_line(&op))
            }),
            Event::Deduplicated { op, refused } => ("api".into(), Some(op.container), {
                match refused {
                    None => format!("answered {} again by its key", op_line(&op)),
                    Some(why) => format!("refused {}: {why}", op_line(&op)),
                }
            }),
            Event::PoolArrival {
                conductor: c,
                op,
                exhausted,
            } => {
                self.handler.insert(op.id, c);
                (
                    conductor(c),
                    Some(op.container),
                    format!(
                        "pool arrival {}{}",
                        op_line(&op),
                        if exhausted { ", pool exhausted" } else { "" }
                    ),
                )
            }
            Event::PoolBusy { conductor: c, busy } => {
                (conductor(c), None, format!("pool workers busy {busy}"))
            }
            Event::RpcBusy { conductor: c, busy } => {
                (conductor(c), None, format!("rpc slots busy {busy}"))
            }
            Event::CallerRuns { conductor: c } => (
                conductor(c),
                None,
                "caller-runs: an RPC slot runs the op itself".into(),
            ),
            Event::Hold {
                conductor: c,
                hold_us,
            } => (
                conductor(c),
                None,
                format!("worker released after {}", us(hold_us)),
            ),
            Event::BacklogWait {
                conductor: c,
                wait_us,
            } => (
                conductor(c),
                None,
                format!(
                    "rpc slot took a message after {} in the backlog",
                    us(wait_us)
                ),
            ),
            Event::Terminal { op, ok } => {
                let node = self
                    .handler
                    .remove(&op.id)
                    .map_or_else(|| "conductor".to_string(), conductor);
                (
                    node,
                    Some(op.container),
                    format!("{} {}", if ok { "done" } else { "failed" }, op_line(&op)),
                )
            }
            Event::Applied {
                host,
                conductor: c,
                attempt,
                token,
                op,
                seq,
                start_us,
                end_us,
                before,
                result,
            } => {
                self.handler.insert(op.id, c);
                let what = match result {
                    Ok(after) if after == before => format!("no-op in {after:?}"),
                    Ok(after) => format!("{before:?} -> {after:?}"),
                    Err(e) => format!("refused {e:?} in {before:?}"),
                };
                let token = if token == 0 {
                    String::new()
                } else {
                    format!(" token {token}")
                };
                (
                    Node::Host(host).to_string(),
                    Some(op.container),
                    format!(
                        "applied {} seq {seq} attempt {attempt} from {}{token} over [{}, {}): {what}",
                        op_line(&op),
                        conductor(c),
                        sim_time(start_us),
                        sim_time(end_us)
                    ),
                )
            }
            Event::NotReady {
                conductor: c,
                op,
                seq,
                attempt,
                delay_us,
            } => (
                conductor(c),
                Some(op.container),
                format!(
                    "not ready {} seq {seq} attempt {attempt}: back to the bus for {}",
                    op_line(&op),
                    us(delay_us)
                ),
            ),
            Event::GaveUp {
                conductor: c,
                op,
                seq,
                attempts,
            } => (
                conductor(c),
                Some(op.container),
                format!(
                    "gave up {} seq {seq} after {attempts} attempt(s)",
                    op_line(&op)
                ),
            ),
            Event::Recovered {
                conductor: c,
                op,
                seq,
                action,
            } => (
                conductor(c),
                Some(op.container),
                format!("recovered {} seq {seq}: {action:?}", op_line(&op)),
            ),
            Event::Reconciled {
                conductor: c,
                container,
                from,
                to,
            } => (
                conductor(c),
                Some(container),
                format!("reconciled c{container}: record {from:?} -> {to:?}"),
            ),
            Event::Orphaned {
                conductor: c,
                op,
                seq,
            } => (
                conductor(c),
                Some(op.container),
                format!("dispatched orphan {} seq {seq} again", op_line(&op)),
            ),
            Event::Cancelled {
                conductor: c,
                op,
                seq,
                why,
            } => (
                c.map_or_else(|| "api".into(), conductor),
                Some(op.container),
                format!("cancelled {} seq {seq}: {why}", op_line(&op)),
            ),
            Event::LockWait {
                conductor: c,
                op,
                wait_us,
            } => (
                conductor(c),
                Some(op.container),
                format!(
                    "{} waited {} for the container's lock",
                    op_line(&op),
                    us(wait_us)
                ),
            ),
            // Real processes only: the simulator counts its network's deliveries itself.
            Event::Frames { delivered } => {
                ("net".into(), None, format!("{delivered} frames delivered"))
            }
        };
        // Under a container filter, events about no container (pool levels, holds) go too:
        // only notes (faults) are kept whatever they are about.
        if self.container.is_none() || about == self.container {
            self.write(t_us, &node, &text);
        }
    }

    /// Flushes what was written.
    pub fn flush(&mut self) {
        if !self.broken && self.out.flush().is_err() {
            self.broken = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use conductor::op::{OpKind, Truth};
    use conductor::proto::OpSpec;
    use std::sync::{Arc, Mutex};

    /// A writer the test can read back.
    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);
    impl Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn op(id: u64, container: u64) -> OpSpec {
        OpSpec {
            id,
            container,
            kind: OpKind::Start,
            intended_us: 0,
            deadline: None,
        }
    }

    #[test]
    fn lines_name_the_node_and_filter_by_container() {
        let buf = Buf::default();
        let mut t = Trace::new(Box::new(buf.clone()), Some(3));
        t.event(
            1_500_000,
            &Event::Accepted {
                op: op(1, 3),
                seq: 2,
            },
        );
        t.event(
            1_600_000,
            &Event::Accepted {
                op: op(2, 4),
                seq: 1,
            },
        );
        t.event(
            1_700_000,
            &Event::PoolArrival {
                conductor: 1,
                op: op(1, 3),
                exhausted: true,
            },
        );
        t.event(
            1_800_000,
            &Event::PoolBusy {
                conductor: 1,
                busy: 3,
            },
        );
        t.note(1_900_000, "nemesis", None, "kill conductor-1");
        t.event(
            2_000_000,
            &Event::Applied {
                host: 0,
                conductor: 1,
                attempt: 1,
                token: 0,
                op: op(1, 3),
                seq: 2,
                start_us: 1_750_000,
                end_us: 2_000_000,
                before: Truth::Stopped,
                result: Ok(Truth::Running),
            },
        );
        t.event(
            2_100_000,
            &Event::Terminal {
                op: op(1, 3),
                ok: true,
            },
        );
        t.flush();
        let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 5, "{text}");
        assert!(
            lines[0].trim_start().starts_with("1.500000s  api"),
            "{text}"
        );
        assert!(lines[0].ends_with("accepted op 1 start c3 seq 2"), "{text}");
        assert!(lines[1].contains("conductor-2") && lines[1].contains("pool exhausted"));
        assert!(lines[2].contains("nemesis") && lines[2].contains("kill conductor-1"));
        assert!(
            lines[3].contains("host-1") && lines[3].contains("Stopped -> Running"),
            "{text}"
        );
        // The terminal line names the conductor that handled the op.
        assert!(lines[4].contains("conductor-2") && lines[4].contains("done op 1"));
    }
}
