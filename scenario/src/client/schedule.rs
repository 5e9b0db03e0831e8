//! The open-loop schedule: which request is due next and when, by the workload's model. Every
//! time and op comes from keyed streams of the seed, never from what the system did.

use super::ClientConfig;
use crate::host_model::sample;
use crate::rng::{keyed_uniform, Purpose};
use crate::workload::{Arrivals, Requests, StatefulRequests};
use crate::{Dist, Model};
use conductor::op::OpKind;
use conductor::proto::OpSpec;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::iter::Peekable;

/// The requests of one run in intended-time order: [`Schedule::next_due`] says when the next
/// one is meant to go, [`Schedule::issue`] hands it over at that time.
pub struct Schedule {
    model: ModelSchedule,
    /// This client instance, and how many there are: an instance issues its share of the
    /// requests (an `ops` arrival by its index, a lifecycle by its container) — an `ops`
    /// request under its arrival's index, as one client would, a lifecycle's k-th under
    /// `k × instances + instance` (one instance cannot know the others' order), so ids stay
    /// unique and one instance gives today's ids.
    instance: u64,
    instances: u64,
    /// The request whose time [`Schedule::next_due`] gave and that is not issued yet.
    due: Option<Due>,
}

/// A request taken from the model's streams, waiting for its time.
#[derive(Debug, Clone, Copy)]
struct Due {
    /// Intended time, µs since the start.
    t: u64,
    /// Lifecycle: the container and its step; `ops`: unused (the op is drawn at issue).
    container: u64,
    step: usize,
    /// What deals it to an instance: the arrival's index (`ops`), the container's index among
    /// the new ones (lifecycle).
    owner: u64,
    /// Which part of the model it comes from.
    part: Part,
}

/// The two kinds of request a model makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    /// An op on a pre-created container.
    Ops,
    /// A step of a new container's lifecycle.
    Lifecycle,
}

/// The draws of ops on pre-created containers: the `ops` model's (the mix as it is) or the
/// `mixed` model's (the mix among the ops the container's state allows).
/// (Boxed as a whole where it is held, in [`OpsPart`]: the variants' sizes do not matter.)
#[allow(clippy::large_enum_variant)]
enum Draws {
    Plain(Requests),
    Stateful(StatefulRequests),
}

impl Draws {
    fn draw(&mut self) -> (u64, OpKind) {
        match self {
            Draws::Plain(r) => r.draw(),
            Draws::Stateful(r) => r.draw(),
        }
    }
}

/// Ops on pre-created containers, one per arrival.
struct OpsPart {
    arrivals: Peekable<Arrivals>,
    /// Boxed: its generators are most of the schedule's size.
    requests: Box<Draws>,
    /// Arrivals taken off the stream.
    taken: u64,
}

/// New containers, each going through `steps`.
struct LifecyclePart {
    arrivals: Peekable<Arrivals>,
    steps: Vec<OpKind>,
    gap: Dist,
    seed: u64,
    /// Later steps: (intended µs, container index, step); the container breaks ties in time,
    /// so the order — hence the request ids — is a function of the seed alone.
    later: BinaryHeap<Reverse<(u64, u64, usize)>>,
    next_container: u64,
    next_id: u64,
    /// The first new container's id (after the `mixed` model's pre-created ones).
    first_container: u64,
}

enum ModelSchedule {
    /// `ops`: each arrival is one op on a pre-created container.
    Ops(OpsPart),
    /// `lifecycle`: each arrival is a new container that goes through `steps`.
    Lifecycle(Box<LifecyclePart>),
    /// `mixed`: both, merged in time order (a tie goes to the lifecycle).
    Mixed(OpsPart, Box<LifecyclePart>),
}

impl OpsPart {
    fn peek(&mut self) -> Option<u64> {
        self.arrivals.peek().copied()
    }

    fn take(&mut self) -> Option<Due> {
        self.arrivals.next().map(|t| {
            self.taken += 1;
            Due {
                t,
                container: 0,
                step: 0,
                owner: self.taken - 1,
                part: Part::Ops,
            }
        })
    }

    fn issue(&mut self, due: Due) -> OpSpec {
        let (container, kind) = self.requests.draw();
        OpSpec {
            // The arrival's index, whichever instance sends it (with one instance, the count
            // of requests issued): the op's service time is keyed by it.
            id: due.owner,
            container,
            kind,
            intended_us: due.t,
            deadline: None,
        }
    }
}

impl LifecyclePart {
    fn new(w: &crate::Workload, arrivals: Arrivals, seed: u64, first_container: u64) -> Self {
        LifecyclePart {
            arrivals: arrivals.peekable(),
            steps: w.lifecycle.clone(),
            gap: w.gap.clone(),
            seed,
            later: BinaryHeap::new(),
            next_container: 0,
            next_id: 0,
            first_container,
        }
    }

    fn peek(&mut self) -> Option<u64> {
        let a = self.arrivals.peek().copied();
        let l = self.later.peek().map(|r| r.0 .0);
        match (a, l) {
            (Some(a), Some(l)) => Some(a.min(l)),
            (a, l) => a.or(l),
        }
    }

    fn take(&mut self) -> Option<Due> {
        let arrival = self.arrivals.peek().copied();
        let step = self.later.peek().map(|r| r.0);
        let (t, container, step) = match (arrival, step) {
            (None, None) => return None,
            (Some(a), Some(st)) if st.0 < a => {
                self.later.pop();
                st
            }
            (Some(a), _) => {
                self.arrivals.next();
                self.next_container += 1;
                (a, self.next_container - 1, 0)
            }
            (None, Some(st)) => {
                self.later.pop();
                st
            }
        };
        Some(Due {
            t,
            container,
            step,
            owner: container,
            part: Part::Lifecycle,
        })
    }

    fn issue(&mut self, due: Due) -> OpSpec {
        let Due {
            t, container, step, ..
        } = due;
        if step + 1 < self.steps.len() {
            let at = t.saturating_add(gap_us(&self.gap, self.seed, container, step + 1));
            self.later.push(Reverse((at, container, step + 1)));
        }
        self.next_id += 1;
        OpSpec {
            id: self.next_id - 1,
            container: self.first_container + container,
            kind: self.steps[step],
            intended_us: t,
            deadline: None,
        }
    }
}

impl Schedule {
    /// The schedule of `cfg`'s workload; `None` when it sends nothing at all (an `ops` mix with
    /// no positive weight, an empty `lifecycle`), so that the client need not even connect.
    pub fn new(cfg: &ClientConfig) -> Option<Self> {
        let w = &cfg.workload;
        let arrivals = Arrivals::new(&w.arrival, cfg.seed, cfg.duration);
        let model = match w.model {
            Model::Ops => ModelSchedule::Ops(OpsPart {
                requests: Box::new(Draws::Plain(Requests::new(w, cfg.seed)?)),
                arrivals: arrivals.peekable(),
                taken: 0,
            }),
            Model::Lifecycle => {
                if w.lifecycle.is_empty() {
                    return None;
                }
                ModelSchedule::Lifecycle(Box::new(LifecyclePart::new(w, arrivals, cfg.seed, 0)))
            }
            Model::Mixed => {
                let ops_arrival = w.ops_arrival.as_ref()?;
                let ops = OpsPart {
                    requests: Box::new(Draws::Stateful(StatefulRequests::new(w, cfg.seed)?)),
                    arrivals: Arrivals::on_stream(ops_arrival, cfg.seed, cfg.duration, 1)
                        .peekable(),
                    taken: 0,
                };
                let life =
                    LifecyclePart::new(w, arrivals, cfg.seed, u64::from(w.containers.max(1)));
                ModelSchedule::Mixed(ops, Box::new(life))
            }
        };
        Some(Schedule {
            model,
            instance: u64::from(cfg.instance),
            instances: u64::from(cfg.instances.max(1)),
            due: None,
        })
    }

    /// The intended time (µs since the start) of the next request, `None` when every request
    /// has been issued. Asking again before [`Schedule::issue`] gives the same time.
    pub fn next_due(&mut self) -> Option<u64> {
        while self.due.is_none() {
            let d = self.model.take_next()?;
            if d.owner % self.instances == self.instance {
                self.due = Some(d);
            } else {
                // Another instance's: its draws are taken all the same, so that every
                // instance sees the streams where one client would.
                self.model.skip(d);
            }
        }
        self.due.map(|d| d.t)
    }

    /// The request [`Schedule::next_due`] announced, to be sent now (a lifecycle schedules its
    /// container's next step); `None` if none was announced.
    pub fn issue(&mut self) -> Option<OpSpec> {
        let due = self.due.take()?;
        let mut op = self.model.issue(due);
        let dealt = |id: u64| id * self.instances + self.instance;
        match (&self.model, due.part) {
            (ModelSchedule::Lifecycle(_), _) => op.id = dealt(op.id),
            // The mixed model's ids: even for ops on pre-created containers, odd for the new
            // containers' steps, so that the two parts never share one.
            (ModelSchedule::Mixed(..), Part::Ops) => op.id *= 2,
            (ModelSchedule::Mixed(..), Part::Lifecycle) => op.id = 2 * dealt(op.id) + 1,
            (ModelSchedule::Ops(_), _) => {}
        }
        Some(op)
    }

    /// Requests scheduled and not issued: a lifecycle's later steps, and the due one.
    pub fn pending(&self) -> u64 {
        let later = match &self.model {
            ModelSchedule::Ops(_) => 0,
            ModelSchedule::Lifecycle(l) | ModelSchedule::Mixed(_, l) => l.later.len() as u64,
        };
        later + u64::from(self.due.is_some())
    }
}

impl ModelSchedule {
    /// Takes the next request off the streams (arrivals, or a lifecycle's later steps).
    fn take_next(&mut self) -> Option<Due> {
        match self {
            ModelSchedule::Ops(o) => o.take(),
            ModelSchedule::Lifecycle(l) => l.take(),
            ModelSchedule::Mixed(o, l) => match (o.peek(), l.peek()) {
                (None, None) => None,
                (Some(a), Some(b)) if a < b => o.take(),
                (Some(_), None) => o.take(),
                _ => l.take(),
            },
        }
    }

    /// Passes over `due`, another instance's request: an op's pick and mix are drawn (and
    /// dropped); a lifecycle's container is another instance's altogether (its later steps
    /// are never scheduled here).
    fn skip(&mut self, due: Due) {
        if let (ModelSchedule::Ops(o) | ModelSchedule::Mixed(o, _), Part::Ops) = (self, due.part) {
            o.requests.draw();
        }
    }

    /// The op of `due`, under the next request id.
    fn issue(&mut self, due: Due) -> OpSpec {
        match (self, due.part) {
            (ModelSchedule::Ops(o) | ModelSchedule::Mixed(o, _), Part::Ops) => o.issue(due),
            (ModelSchedule::Lifecycle(l) | ModelSchedule::Mixed(_, l), _) => l.issue(due),
            (ModelSchedule::Ops(o), Part::Lifecycle) => o.issue(due),
        }
    }
}

/// The gap before step `step` of container `container`'s lifecycle, keyed by both (common
/// random numbers: the same container waits the same in every configuration).
fn gap_us(gap: &Dist, seed: u64, container: u64, step: usize) -> u64 {
    let key = container.wrapping_mul(1 << 16) ^ step as u64;
    sample(gap, |k| keyed_uniform(seed, Purpose::Gap, key, k)).as_micros() as u64
}
