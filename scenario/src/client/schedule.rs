//! The open-loop schedule: which request is due next and when, by the workload's model. Every
//! time and op comes from keyed streams of the seed, never from what the system did.

use super::ClientConfig;
use crate::host_model::sample;
use crate::rng::{keyed_uniform, Purpose};
use crate::workload::{Arrivals, Requests};
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
    /// What deals it to an instance: the arrival's index (`ops`), the container (lifecycle).
    owner: u64,
}

enum ModelSchedule {
    /// `ops`: each arrival is one op on a pre-created container.
    Ops {
        arrivals: Arrivals,
        /// Boxed: its generators are most of the schedule's size.
        requests: Box<Requests>,
        /// The next request id: the arrival's index.
        next_id: u64,
        /// Arrivals taken off the stream.
        taken: u64,
    },
    /// `lifecycle`: each arrival is a new container that goes through `steps`.
    Lifecycle {
        arrivals: Peekable<Arrivals>,
        steps: Vec<OpKind>,
        gap: Dist,
        seed: u64,
        /// Later steps: (intended µs, container, step); the container breaks ties in time, so
        /// the order — hence the request ids — is a function of the seed alone.
        later: BinaryHeap<Reverse<(u64, u64, usize)>>,
        next_container: u64,
        next_id: u64,
    },
}

impl Schedule {
    /// The schedule of `cfg`'s workload; `None` when it sends nothing at all (an `ops` mix with
    /// no positive weight, an empty `lifecycle`), so that the client need not even connect.
    pub fn new(cfg: &ClientConfig) -> Option<Self> {
        let w = &cfg.workload;
        let arrivals = Arrivals::new(&w.arrival, cfg.seed, cfg.duration);
        let model = match w.model {
            Model::Ops => ModelSchedule::Ops {
                requests: Box::new(Requests::new(w, cfg.seed)?),
                arrivals,
                next_id: 0,
                taken: 0,
            },
            Model::Lifecycle => {
                if w.lifecycle.is_empty() {
                    return None;
                }
                ModelSchedule::Lifecycle {
                    arrivals: arrivals.peekable(),
                    steps: w.lifecycle.clone(),
                    gap: w.gap.clone(),
                    seed: cfg.seed,
                    later: BinaryHeap::new(),
                    next_container: 0,
                    next_id: 0,
                }
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
        if matches!(self.model, ModelSchedule::Lifecycle { .. }) {
            op.id = op.id * self.instances + self.instance;
        }
        Some(op)
    }

    /// Requests scheduled and not issued: a lifecycle's later steps, and the due one.
    pub fn pending(&self) -> u64 {
        let later = match &self.model {
            ModelSchedule::Ops { .. } => 0,
            ModelSchedule::Lifecycle { later, .. } => later.len() as u64,
        };
        later + u64::from(self.due.is_some())
    }
}

impl ModelSchedule {
    /// Takes the next request off the streams (arrivals, or a lifecycle's later steps).
    fn take_next(&mut self) -> Option<Due> {
        match self {
            ModelSchedule::Ops {
                arrivals, taken, ..
            } => arrivals.next().map(|t| {
                *taken += 1;
                Due {
                    t,
                    container: 0,
                    step: 0,
                    owner: *taken - 1,
                }
            }),
            ModelSchedule::Lifecycle {
                arrivals,
                later,
                next_container,
                ..
            } => {
                let arrival = arrivals.peek().copied();
                let step = later.peek().map(|r| r.0);
                let (t, container, step) = match (arrival, step) {
                    (None, None) => return None,
                    (Some(a), Some(st)) if st.0 < a => {
                        later.pop();
                        st
                    }
                    (Some(a), _) => {
                        arrivals.next();
                        *next_container += 1;
                        (a, *next_container - 1, 0)
                    }
                    (None, Some(st)) => {
                        later.pop();
                        st
                    }
                };
                Some(Due {
                    t,
                    container,
                    step,
                    owner: container,
                })
            }
        }
    }

    /// Passes over `due`, another instance's request: an `ops` arrival's pick and mix are drawn
    /// (and dropped); a lifecycle's container is another instance's altogether (its later
    /// steps are never scheduled here).
    fn skip(&mut self, _due: Due) {
        if let ModelSchedule::Ops { requests, .. } = self {
            requests.draw();
        }
    }

    /// The op of `due`, under the next request id.
    fn issue(&mut self, due: Due) -> OpSpec {
        match self {
            ModelSchedule::Ops {
                requests, next_id, ..
            } => {
                let (container, kind) = requests.draw();
                *next_id += 1;
                OpSpec {
                    // The arrival's index, whichever instance sends it (with one instance,
                    // the count of requests issued): the op's service time is keyed by it.
                    id: due.owner,
                    container,
                    kind,
                    intended_us: due.t,
                    deadline: None,
                }
            }
            ModelSchedule::Lifecycle {
                steps,
                gap,
                seed,
                later,
                next_id,
                ..
            } => {
                let Due {
                    t, container, step, ..
                } = due;
                if step + 1 < steps.len() {
                    let at = t.saturating_add(gap_us(gap, *seed, container, step + 1));
                    later.push(Reverse((at, container, step + 1)));
                }
                *next_id += 1;
                OpSpec {
                    id: *next_id - 1,
                    container,
                    kind: steps[step],
                    intended_us: t,
                    deadline: None,
                }
            }
        }
    }
}

/// The gap before step `step` of container `container`'s lifecycle, keyed by both (common
/// random numbers: the same container waits the same in every configuration).
fn gap_us(gap: &Dist, seed: u64, container: u64, step: usize) -> u64 {
    let key = container.wrapping_mul(1 << 16) ^ step as u64;
    sample(gap, |k| keyed_uniform(seed, Purpose::Gap, key, k)).as_micros() as u64
}
